/* dense.h — kernels of a dense affine projection out = x W^T + b, forward
 * and backward side by side, in two forms: BLAS for dense inputs and
 * spike-driven gather/scatter for binary inputs given as index lists.
 * Shapes: x [R][Nin], W [Nout][Nin], W^T [Nin][Nout], out [R][Nout]. */
#ifndef SOMA_DENSE_H
#define SOMA_DENSE_H
#include <stddef.h>
#include <stdint.h>

/* Indices of the nonzero entries of a row s[N] into idx, in increasing order;
 * returns their count. idx needs room for N entries: the entries past the
 * count may be written too. */
size_t soma__spike_index(const float *s, size_t N, uint32_t *idx);
/* Entries of a row that are neither 0 nor 1 (0: the row is spikes). */
size_t soma__count_nonbinary(const float *s, size_t N);
/* Number of spikes in a 0/1 row. */
size_t soma__spike_count(const float *s, size_t N);

/* out[r][:] = (acc ? out : bias|0) + x[r] W^T   (BLAS, single-threaded call) */
void soma__dense_forward_blas(float *out, const float *x, const float *w, const float *bias, size_t R, size_t Nin,
                              size_t Nout, int acc);
/* Row stride of transposed weights and their gradients: Nout rounded up to
 * 16 floats, so a narrow layer's row is whole vectors (pad lanes stay 0). */
static inline size_t soma__ldw(size_t Nout) { return (Nout + 15) / 16 * 16; }

/* out[r][:] = (acc ? out : bias|0) + sum_{j in idx[r]} wT[j][:]   (spike-driven
 * gather; wT rows have stride soma__ldw(Nout)) */
void soma__dense_forward_spikes(float *out, const uint32_t *idx, const uint32_t *cnt, size_t stride, const float *wT,
                                const float *bias, size_t R, size_t Nout, int acc);
/* dwT[j][:] += sum over rows r with spike j of din[r][:]   (spike-driven
 * scatter; dwT rows have stride soma__ldw(Nout)) */
void soma__dense_dweight_spikes(float *dwT, const uint32_t *idx, const uint32_t *cnt, size_t stride, const float *din,
                                size_t R, size_t Nout);
/* dwT[Nin][ldw] += x^T din   (BLAS) */
void soma__dense_dweightT_blas(float *dwT, const float *x, const float *din, size_t R, size_t Nin, size_t Nout);
/* dx[R][Nin] = (acc ? dx : 0) + din W   (BLAS, or AXPYs for a narrow layer) */
void soma__dense_dinput(float *dx, const float *din, const float *w, size_t R, size_t Nin, size_t Nout, int acc);
/* Sparse valued input given row by row: row r's nonzero columns are
 * idx[r*stride .. r*stride + cnt[r]), increasing; the values are read from
 * x [R][Nin], or x is NULL when every nonzero is 1 (spikes: the values are
 * not read, and the sums are the same). Forward:
 * out[r][o0:o1] = (bias|0) + sum_j x[r][j] wT[j][o0:o1].
 * Rows are independent, so row ranges can run in parallel. */
void soma__dense_forward_sparse(float *out, const float *x, const uint32_t *idx, const uint32_t *cnt, size_t stride,
                                const float *wT, const float *bias, size_t R, size_t Nin, size_t Nout, size_t o0,
                                size_t o1);
/* dwT[j][o0:o1] += sum_r x[r][j] din[r][o0:o1] over the nonzeros (x NULL:
 * spikes, as above): output ranges can run in parallel, and each entry adds
 * the batch rows in the same order whatever the ranges are. */
void soma__dense_dweightT_sparse(float *dwT, const float *x, const uint32_t *idx, const uint32_t *cnt, size_t stride,
                                 const float *din, size_t R, size_t Nin, size_t Nout, size_t o0, size_t o1);
/* Whether the spike-driven kernels beat BLAS at this density and output
 * width (crossovers measured with bench/bench_kernels). */
int soma__gather_wins(double density, size_t Nout);
/* dst[c][r] = src[r][c] for src [rows][cols] with row stride ld. */
void soma__transpose_ld(float *dst, const float *src, size_t rows, size_t cols, size_t ld);
/* db[:] += sum_r din[r][:] */
void soma__dense_dbias(float *db, const float *din, size_t R, size_t Nout);
/* Transpose src [rows][cols] into dst [cols][ld] (padding lanes set to 0). */
void soma__transpose_pad(float *dst, const float *src, size_t rows, size_t cols, size_t ld);
/* dst[c][r] = src[r][c] for src [rows][cols], row strides ld_src and ld_dst. */
void soma__transpose(float *dst, size_t ld_dst, const float *src, size_t ld_src, size_t rows, size_t cols);
#endif
