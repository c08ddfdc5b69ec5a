/* dense.c — dense affine projection kernels (see dense.h). The trainer picks
 * BLAS or the spike-driven form per call from the measured spike density:
 * a gather costs one row of W^T per spike, a GEMM costs the full product. */
#include <cblas.h>
#if defined(__AVX__)
#include <immintrin.h>
#endif
#include <string.h>
#include "proj/dense.h"
#include "core/vec.h"

size_t soma__spike_index(const float *restrict s, size_t N, uint32_t *restrict idx) {
    size_t n = 0, j = 0;
#if defined(__AVX512F__)
    /* Compare 16 at a time and compress the indices of the set lanes: in a
     * register, then one full store (the compressing store to memory is
     * microcoded and many times slower on AMD Zen 4). The store writes 16
     * lanes at idx + n with n <= j, so it stays inside idx[0..N). */
    __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512 zero = _mm512_setzero_ps();
    for (; j + 16 <= N; j += 16) {
        __mmask16 m = _mm512_cmp_ps_mask(_mm512_loadu_ps(s + j), zero, _CMP_NEQ_UQ);
        if (!m) continue;
        __m512i ix = _mm512_add_epi32(lane, _mm512_set1_epi32((int)j));
        _mm512_storeu_si512((void *)(idx + n), _mm512_maskz_compress_epi32(m, ix));
        n += (size_t)__builtin_popcount((unsigned)m);
    }
#elif defined(__AVX2__)
    __m256 zero = _mm256_setzero_ps();
    for (; j + 8 <= N; j += 8) {
        unsigned m = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(s + j), zero, _CMP_NEQ_UQ));
        while (m) {
            idx[n++] = (uint32_t)(j + (size_t)__builtin_ctz(m));
            m &= m - 1;
        }
    }
#endif
    for (; j < N; j++)
        if (s[j] != 0.0f) idx[n++] = (uint32_t)j;
    return n;
}

size_t soma__spike_count(const float *restrict s, size_t N) {
    uint32_t c = 0; /* integer sum: vectorizes, unlike a float reduction without -ffast-math */
    for (size_t j = 0; j < N; j++) c += s[j] != 0.0f;
    return c;
}

static void init_rows(float *restrict out, const float *restrict bias, size_t R, size_t Nout) {
    for (size_t r = 0; r < R; r++) {
        if (bias) memcpy(out + r * Nout, bias, Nout * sizeof *out);
        else memset(out + r * Nout, 0, Nout * sizeof *out);
    }
}

void soma__dense_forward_blas(float *out, const float *x, const float *w, const float *bias, size_t R, size_t Nin,
                              size_t Nout, int acc) {
    if (!acc) init_rows(out, bias, R, Nout);
    if (R == 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)Nout, (int)Nin, 1.0f, x, (int)Nin, w, (int)Nin,
                1.0f, out, (int)Nout);
}


/* Narrow layers (Nout <= 64) accumulate in a padded local row of whole
 * 16-float vectors; wide ones straight into the output row. */
#define NARROW 64

void soma__dense_forward_spikes(float *out, const uint32_t *idx, const uint32_t *cnt, size_t stride, const float *wT,
                                const float *bias, size_t R, size_t Nout, int acc) {
    size_t ld = soma__ldw(Nout);
    if (Nout <= NARROW) {
        for (size_t r = 0; r < R; r++) {
            float t[NARROW] __attribute__((aligned(64)));
            float *o = out + r * Nout;
            for (size_t i = 0; i < NARROW; i++) t[i] = 0.0f;
            for (size_t i = 0; i < Nout; i++) t[i] = acc ? o[i] : bias ? bias[i] : 0.0f;
            const uint32_t *ix = idx + r * stride;
            for (size_t k = 0; k < cnt[r]; k++) {
                const float *restrict wr = wT + (size_t)ix[k] * ld;
                for (size_t v = 0; v < ld; v += 16)
                    for (size_t i = 0; i < 16; i++) t[v + i] += wr[v + i];
            }
            for (size_t i = 0; i < Nout; i++) o[i] = t[i];
        }
        return;
    }
    if (!acc) init_rows(out, bias, R, Nout);
    for (size_t r = 0; r < R; r++) {
        float *restrict o = out + r * Nout;
        const uint32_t *ix = idx + r * stride;
        for (size_t k = 0; k < cnt[r]; k++) {
            const float *restrict wr = wT + (size_t)ix[k] * ld;
            for (size_t i = 0; i < Nout; i++) o[i] += wr[i];
        }
    }
}

void soma__dense_dweight_spikes(float *dwT, const uint32_t *idx, const uint32_t *cnt, size_t stride, const float *din,
                                size_t R, size_t Nout) {
    size_t ld = soma__ldw(Nout);
    for (size_t r = 0; r < R; r++) {
        const uint32_t *ix = idx + r * stride;
        if (Nout <= NARROW) {
            float g[NARROW] __attribute__((aligned(64)));
            for (size_t i = 0; i < NARROW; i++) g[i] = i < Nout ? din[r * Nout + i] : 0.0f;
            for (size_t k = 0; k < cnt[r]; k++) {
                float *restrict d = dwT + (size_t)ix[k] * ld;
                for (size_t v = 0; v < ld; v += 16)
                    for (size_t i = 0; i < 16; i++) d[v + i] += g[v + i];
            }
        } else {
            const float *restrict g = din + r * Nout;
            for (size_t k = 0; k < cnt[r]; k++) {
                float *restrict d = dwT + (size_t)ix[k] * ld;
                for (size_t i = 0; i < Nout; i++) d[i] += g[i];
            }
        }
    }
}

void soma__dense_dweightT_blas(float *dwT, const float *x, const float *din, size_t R, size_t Nin, size_t Nout) {
    if (R == 0) return;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Nin, (int)Nout, (int)R, 1.0f, x, (int)Nin, din,
                (int)Nout, 1.0f, dwT, (int)soma__ldw(Nout));
}

void soma__dense_dinput(float *dx, const float *din, const float *w, size_t R, size_t Nin, size_t Nout, int acc) {
    if (R == 0) return;
    if (Nout <= 32) {
        /* A GEMM with a tiny inner dimension wastes its packing: sum the
         * few weight rows into 64-column blocks held in registers, column
         * block outermost so that block's weights stay in L1 for all rows. */
        size_t j0 = 0;
#if defined(__GNUC__)
        for (; j0 + 64 <= Nin; j0 += 64)
            for (size_t r = 0; r < R; r++) {
                float *restrict d = dx + r * Nin + j0;
                const float *restrict g = din + r * Nout;
                v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
                if (acc) a0 = LOADV(d), a1 = LOADV(d + 16), a2 = LOADV(d + 32), a3 = LOADV(d + 48);
                for (size_t o = 0; o < Nout; o++) {
                    const float *wr = w + o * Nin + j0;
                    float go = g[o];
                    a0 += go * LOADV(wr), a1 += go * LOADV(wr + 16), a2 += go * LOADV(wr + 32), a3 += go * LOADV(wr + 48);
                }
                STOREV(d, a0), STOREV(d + 16, a1), STOREV(d + 32, a2), STOREV(d + 48, a3);
            }
        for (; j0 + 16 <= Nin; j0 += 16)
            for (size_t r = 0; r < R; r++) {
                float *restrict d = dx + r * Nin + j0;
                const float *restrict g = din + r * Nout;
                v16 a0 = {0};
                if (acc) a0 = LOADV(d);
                for (size_t o = 0; o < Nout; o++) a0 += g[o] * LOADV(w + o * Nin + j0);
                STOREV(d, a0);
            }
#endif
        for (size_t r = 0; r < R; r++)
            for (size_t j = j0; j < Nin; j++) {
                float a = acc ? dx[r * Nin + j] : 0.0f;
                for (size_t o = 0; o < Nout; o++) a += din[r * Nout + o] * w[o * Nin + j];
                dx[r * Nin + j] = a;
            }
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)Nin, (int)Nout, 1.0f, din, (int)Nout, w,
                (int)Nin, acc ? 1.0f : 0.0f, dx, (int)Nin);
}

#if defined(__GNUC__)
/* The sparse kernels below keep tiles of output columns in registers, in
 * vectors of the machine's width: 64-byte vectors (v16) are right for
 * AVX-512, but GCC spills arrays of them to the stack on AVX2. */
#if defined(__AVX512F__)
#define VW 16
#elif defined(__AVX__)
#define VW 8
#else
#define VW 4
#endif
#define TILE (4 * VW) /* columns per register tile: four vectors */
typedef float vn __attribute__((vector_size(VW * 4)));
typedef float vnu __attribute__((vector_size(VW * 4), aligned(4), may_alias));
#define LOADN(p) (*(const vnu *)(p))
#define STOREN(p, v) (*(vnu *)(p) = (v))

/* Columns c .. c+VW*NV of one sparse row, accumulated in registers: NV
 * vectors start at the bias (or 0) and add x*wT nonzero by nonzero, in the
 * order of the scalar loop below, so the sums are the same bit for bit;
 * only the round trips of the output row through memory per nonzero are
 * gone. The loop is bound by loading the weight rows, so interleaving two
 * rows to break the add chains gains nothing (measured). */
static inline __attribute__((always_inline)) void sparse_cols(float *restrict o, const float *restrict xr,
                                                              const uint32_t *restrict ix, size_t n,
                                                              const float *restrict wT, size_t ld,
                                                              const float *restrict bias, size_t c, const int NV,
                                                              const int BIN) {
    vn a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    if (bias) {
        a0 = LOADN(bias + c);
        if (NV > 1) a1 = LOADN(bias + c + VW), a2 = LOADN(bias + c + 2 * VW), a3 = LOADN(bias + c + 3 * VW);
    }
    for (size_t k = 0; k < n; k++) {
        const float xv = BIN ? 1.0f : xr[ix[k]];
        const float *restrict wr = wT + (size_t)ix[k] * ld + c;
        a0 += xv * LOADN(wr);
        if (NV > 1) a1 += xv * LOADN(wr + VW), a2 += xv * LOADN(wr + 2 * VW), a3 += xv * LOADN(wr + 3 * VW);
    }
    STOREN(o + c, a0);
    if (NV > 1) STOREN(o + c + VW, a1), STOREN(o + c + 2 * VW, a2), STOREN(o + c + 3 * VW, a3);
}
#endif

/* One row of soma__dense_forward_sparse; BIN: every nonzero is 1, xr unread
 * (x * w is then w exactly, so both forms give the same sums). */
static inline __attribute__((always_inline)) void forward_sparse_row(float *restrict o, const float *restrict xr,
                                                                     const uint32_t *restrict ix, size_t n,
                                                                     const float *restrict wT, size_t ld,
                                                                     const float *restrict bias, size_t o0, size_t o1,
                                                                     const int BIN) {
    size_t c = o0;
#if defined(__GNUC__)
    for (; c + TILE <= o1; c += TILE) sparse_cols(o, xr, ix, n, wT, ld, bias, c, 4, BIN);
    for (; c + VW <= o1; c += VW) sparse_cols(o, xr, ix, n, wT, ld, bias, c, 1, BIN);
#endif
    /* the last columns, fewer than a vector */
    for (size_t i = c; i < o1; i++) o[i] = bias ? bias[i] : 0.0f;
    for (size_t k = 0; k < n; k++) {
        const float xv = BIN ? 1.0f : xr[ix[k]];
        const float *restrict wr = wT + (size_t)ix[k] * ld;
        for (size_t i = c; i < o1; i++) o[i] += xv * wr[i];
    }
}

void soma__dense_forward_sparse(float *out, const float *x, const uint32_t *idx, const uint32_t *cnt, size_t stride,
                                const float *wT, const float *bias, size_t R, size_t Nin, size_t Nout, size_t o0,
                                size_t o1) {
    size_t ld = soma__ldw(Nout);
    for (size_t r = 0; r < R; r++) {
        if (x) forward_sparse_row(out + r * Nout, x + r * Nin, idx + r * stride, cnt[r], wT, ld, bias, o0, o1, 0);
        else forward_sparse_row(out + r * Nout, NULL, idx + r * stride, cnt[r], wT, ld, bias, o0, o1, 1);
    }
}

/* One row of soma__dense_dweightT_sparse, output columns o0..o1; BIN as in
 * forward_sparse_row. */
static inline __attribute__((always_inline)) void dweight_sparse_row(float *restrict dwT, const float *restrict xr,
                                                                     const uint32_t *restrict ix, size_t n,
                                                                     const float *restrict g, size_t ld, size_t o0,
                                                                     size_t o1, const int BIN) {
    size_t c = o0;
#if defined(__GNUC__)
    /* this row's gradient held in registers, a tile of columns at a time */
    for (; c + TILE <= o1; c += TILE) {
        vn g0 = LOADN(g + c), g1 = LOADN(g + c + VW), g2 = LOADN(g + c + 2 * VW), g3 = LOADN(g + c + 3 * VW);
        for (size_t k = 0; k < n; k++) {
            const float xv = BIN ? 1.0f : xr[ix[k]];
            float *restrict d = dwT + (size_t)ix[k] * ld + c;
            STOREN(d, LOADN(d) + xv * g0), STOREN(d + VW, LOADN(d + VW) + xv * g1);
            STOREN(d + 2 * VW, LOADN(d + 2 * VW) + xv * g2), STOREN(d + 3 * VW, LOADN(d + 3 * VW) + xv * g3);
        }
    }
    for (; c + VW <= o1; c += VW) {
        vn g0 = LOADN(g + c);
        for (size_t k = 0; k < n; k++) {
            const float xv = BIN ? 1.0f : xr[ix[k]];
            float *restrict d = dwT + (size_t)ix[k] * ld + c;
            STOREN(d, LOADN(d) + xv * g0);
        }
    }
#endif
    for (size_t k = 0; k < n; k++) {
        const float xv = BIN ? 1.0f : xr[ix[k]];
        float *restrict d = dwT + (size_t)ix[k] * ld;
        for (size_t i = c; i < o1; i++) d[i] += xv * g[i];
    }
}

void soma__dense_dweightT_sparse(float *dwT, const float *x, const uint32_t *idx, const uint32_t *cnt, size_t stride,
                                 const float *din, size_t R, size_t Nin, size_t Nout, size_t o0, size_t o1) {
    size_t ld = soma__ldw(Nout);
    for (size_t r = 0; r < R; r++) {
        if (x) dweight_sparse_row(dwT, x + r * Nin, idx + r * stride, cnt[r], din + r * Nout, ld, o0, o1, 0);
        else dweight_sparse_row(dwT, NULL, idx + r * stride, cnt[r], din + r * Nout, ld, o0, o1, 1);
    }
}

/* Entries of s[N] that are neither 0 nor 1 (an integer count: vectorizes). */
size_t soma__count_nonbinary(const float *restrict s, size_t N) {
    uint32_t c = 0;
    for (size_t j = 0; j < N; j++) c += (s[j] != 0.0f) & (s[j] != 1.0f);
    return c;
}

int soma__gather_wins(double density, size_t Nout) {
    /* Crossovers measured by bench/bench_kernels (Nin 1000, AVX2/AVX-512):
     * narrow layers gather whole vectors per spike and win up to high
     * densities; wide layers meet BLAS at about a quarter. */
    double cross = Nout <= 16 ? 0.35 : Nout <= 64 ? 0.3 : 0.27;
    return density <= cross;
}

void soma__dense_dbias(float *restrict db, const float *restrict din, size_t R, size_t Nout) {
    for (size_t r = 0; r < R; r++)
        for (size_t i = 0; i < Nout; i++) db[i] += din[r * Nout + i];
}

#if defined(__AVX__)
/* One 8x8 tile: dst[c][r] = src[r][c] for r, c < 8, the classic unpack /
 * shuffle / lane-permute sequence (24 instructions for 64 values instead of
 * 64 scalar loads and stores). */
static inline void transpose8(float *restrict dst, size_t ld_dst, const float *restrict src, size_t ld_src) {
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + ld_src), r2 = _mm256_loadu_ps(src + 2 * ld_src),
           r3 = _mm256_loadu_ps(src + 3 * ld_src), r4 = _mm256_loadu_ps(src + 4 * ld_src),
           r5 = _mm256_loadu_ps(src + 5 * ld_src), r6 = _mm256_loadu_ps(src + 6 * ld_src),
           r7 = _mm256_loadu_ps(src + 7 * ld_src);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
           t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
           t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE),
           u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE),
           u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE),
           u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + ld_dst, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * ld_dst, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * ld_dst, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * ld_dst, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * ld_dst, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * ld_dst, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * ld_dst, _mm256_permute2f128_ps(u3, u7, 0x31));
}
#endif

/* dst[c][r] = src[r][c] with row strides ld_dst and ld_src, in 32x32 tiles
 * (of 8x8 register tiles where AVX is there; the edges one by one). */
static void transpose_strided(float *restrict dst, size_t ld_dst, const float *restrict src, size_t ld_src,
                              size_t rows, size_t cols) {
    const size_t B = 32;
    for (size_t r0 = 0; r0 < rows; r0 += B)
        for (size_t c0 = 0; c0 < cols; c0 += B) {
            size_t r1 = r0 + B < rows ? r0 + B : rows, c1 = c0 + B < cols ? c0 + B : cols, r = r0;
#if defined(__AVX__)
            for (; r + 8 <= r1; r += 8) {
                size_t c = c0;
                for (; c + 8 <= c1; c += 8) transpose8(dst + c * ld_dst + r, ld_dst, src + r * ld_src + c, ld_src);
                for (size_t rr = r; rr < r + 8; rr++)
                    for (size_t cc = c; cc < c1; cc++) dst[cc * ld_dst + rr] = src[rr * ld_src + cc];
            }
#endif
            for (; r < r1; r++)
                for (size_t c = c0; c < c1; c++) dst[c * ld_dst + r] = src[r * ld_src + c];
        }
}

void soma__transpose(float *dst, size_t ld_dst, const float *src, size_t ld_src, size_t rows, size_t cols) {
    transpose_strided(dst, ld_dst, src, ld_src, rows, cols);
}

void soma__transpose_pad(float *dst, const float *src, size_t rows, size_t cols, size_t ld) {
    transpose_strided(dst, ld, src, cols, rows, cols);
    if (ld > rows)
        for (size_t c = 0; c < cols; c++) memset(dst + c * ld + rows, 0, (ld - rows) * sizeof *dst);
}

void soma__transpose_ld(float *dst, const float *src, size_t rows, size_t cols, size_t ld) {
    transpose_strided(dst, rows, src, ld, rows, cols);
}
