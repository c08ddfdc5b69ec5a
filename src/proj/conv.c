/* conv.c — 2-D convolution by im2col and one GEMM per image, followed by
 * optional non-overlapping pooling:
 *
 *   Y[o][y][x]  = sum_{c,i,j} W[o][c][i][j] * X[c][y*s - p + i][x*s - p + j]   (zero outside X)
 *   out[o][u][v] = a * sum_{dy,dx < q} Y[o][u*q + dy][v*q + dx] + b[o]
 *
 * with q the pool size (1 without pooling), a = 1/q^2 for average pooling
 * and 1 for sum pooling or none; max pooling takes the largest Y of each
 * window instead (the first one on ties, as torch), and records which one
 * (arg) for the backward pass. Output rows and columns left over when q
 * does not divide the output size are dropped, as torch's pooling does.
 * The bias is added after pooling: for average pooling this is exactly
 * torch's Conv2d bias followed by AvgPool2d. W is laid out as torch's
 * [C_out][C_in][k][k].
 *
 * Backward: dY = pool^T(dout), dW += dY * cols^T, db += sum(dout),
 * dX = col2im(W^T * dY).
 *
 * Calls take n images at once: their columns sit side by side in one
 * [C_in*k*k][n*OH*OW] matrix, so each product is one GEMM with n times the
 * columns (far faster than n small ones for the shapes of small conv nets).
 */
#include <cblas.h>
#include <string.h>
#include "proj/conv.h"

size_t soma__conv_cols_size(const soma__proj *p) {
    /* im2col's columns, or (spike path) the transposed weights and one image's channel-last output */
    size_t ck = p->cin * p->cv.kernel * p->cv.kernel, HW = p->oh * p->ow, a = ck * HW, b = (ck + HW) * p->cout;
    return a > b ? a : b;
}
size_t soma__conv_out_size(const soma__proj *p) { return p->cout * p->oh * p->ow; }

/* Columns of image x written into cols, a [C_in*k*k][ld] matrix, from column c0 on. */
static void im2col(const soma__proj *p, const float *x, float *cols, size_t ld, size_t c0) {
    size_t k = p->cv.kernel, s = p->cv.stride, pad = p->cv.padding, OH = p->oh, OW = p->ow, H = p->ih, W = p->iw;
    for (size_t c = 0; c < p->cin; c++)
        for (size_t i = 0; i < k; i++)
            for (size_t j = 0; j < k; j++) {
                float *row = cols + ((c * k + i) * k + j) * ld + c0;
                for (size_t y = 0; y < OH; y++) {
                    long iy = (long)(y * s + i) - (long)pad;
                    float *r = row + y * OW;
                    if (iy < 0 || iy >= (long)H) {
                        memset(r, 0, OW * sizeof *r);
                        continue;
                    }
                    const float *xr = x + (c * H + (size_t)iy) * W;
                    if (s == 1) { /* zeros, a copy of the valid run, zeros */
                        long lo = (long)pad - (long)j, hi = (long)W + (long)pad - (long)j;
                        if (lo < 0) lo = 0;
                        if (hi > (long)OW) hi = (long)OW;
                        if (hi < lo) hi = lo;
                        if (lo > 0) memset(r, 0, (size_t)lo * sizeof *r);
                        if (hi > lo) memcpy(r + lo, xr + lo + (long)j - (long)pad, (size_t)(hi - lo) * sizeof *r);
                        if ((long)OW > hi) memset(r + hi, 0, (OW - (size_t)hi) * sizeof *r);
                        continue;
                    }
                    for (size_t xo = 0; xo < OW; xo++) {
                        long ix = (long)(xo * s + j) - (long)pad;
                        r[xo] = ix < 0 || ix >= (long)W ? 0.0f : xr[ix];
                    }
                }
            }
}

/* dx (one image, overwritten) = the sum of the columns c0.. of cols ([C_in*k*k][ld]) folded back. */
static void col2im(const soma__proj *p, const float *cols, size_t ld, size_t c0, float *dx) {
    size_t k = p->cv.kernel, s = p->cv.stride, pad = p->cv.padding, OH = p->oh, OW = p->ow, H = p->ih, W = p->iw;
    memset(dx, 0, p->cin * H * W * sizeof *dx);
    for (size_t c = 0; c < p->cin; c++)
        for (size_t i = 0; i < k; i++)
            for (size_t j = 0; j < k; j++) {
                const float *row = cols + ((c * k + i) * k + j) * ld + c0;
                for (size_t y = 0; y < OH; y++) {
                    long iy = (long)(y * s + i) - (long)pad;
                    if (iy < 0 || iy >= (long)H) continue;
                    float *xr = dx + (c * H + (size_t)iy) * W;
                    const float *r = row + y * OW;
                    if (s == 1) { /* the valid run, added in place */
                        long lo = (long)pad - (long)j, hi = (long)W + (long)pad - (long)j;
                        if (lo < 0) lo = 0;
                        if (hi > (long)OW) hi = (long)OW;
                        long off = (long)j - (long)pad;
                        for (long xo = lo; xo < hi; xo++) xr[xo + off] += r[xo];
                        continue;
                    }
                    for (size_t xo = 0; xo < OW; xo++) {
                        long ix = (long)(xo * s + j) - (long)pad;
                        if (ix >= 0 && ix < (long)W) xr[ix] += r[xo];
                    }
                }
            }
}

/* ---- the spike path: for sparse inputs (spikes, events), each nonzero
 * input adds its weights to the outputs it reaches, instead of im2col + GEMM:
 *   Y[o][y][x] += v * W[o][c][i][j]  for each nonzero v = X[c][iy][ix], with
 *   y = iy + pad - i, x = ix + pad - j (stride 1),
 * vectorised over o on channel-last copies (Wt [C_in*k*k][C_out], Yt
 * [OH*OW][C_out]); the weight gradient is the same walk with dY. Taken when
 * the n images' density is below SPARSE_DENSITY (measured on the examples'
 * shapes: below about 0.25 it beats the GEMM here). */
#define SPARSE_DENSITY 0.2
int soma__conv_sparse_mode = 0; /* tests: 0 by density, 1 always dense, 2 always sparse */

static int use_sparse(const soma__proj *p, const float *x, size_t xs, size_t n) {
    if (p->cv.stride != 1 || soma__conv_sparse_mode == 1) return 0;
    if (soma__conv_sparse_mode == 2) return 1;
    size_t D = p->cin * p->ih * p->iw, nz = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t e = 0; e < D; e++) nz += x[i * xs + e] != 0.0f;
    return (double)nz < SPARSE_DENSITY * (double)(n * D);
}

/* The walk over the nonzeros v of one image x and the outputs each reaches:
 * forward (grad = 0), Yt[pos] += v * Wt[cij]; weight gradient (grad = 1),
 * Wt[cij] += v * Yt[pos] (then Wt is dWt and Yt is dYt). Yt is [HW][C_out],
 * Wt [C_in*k*k][C_out]. Always inlined with a constant grad, so the
 * innermost loop is a plain vectorised axpy either way. */
static inline __attribute__((always_inline)) void sparse_walk(const soma__proj *p, const float *x, float *Wt,
                                                              float *Yt, int grad) {
    size_t k = p->cv.kernel, pad = p->cv.padding, OH = p->oh, OW = p->ow, H = p->ih, W = p->iw, C = p->cout;
    for (size_t c = 0; c < p->cin; c++)
        for (size_t iy = 0; iy < H; iy++)
            for (size_t ix = 0; ix < W; ix++) {
                float v = x[(c * H + iy) * W + ix];
                if (v == 0.0f) continue;
                for (size_t i = 0; i < k; i++) {
                    long y = (long)iy + (long)pad - (long)i;
                    if (y < 0 || y >= (long)OH) continue;
                    for (size_t j = 0; j < k; j++) {
                        long xo = (long)ix + (long)pad - (long)j;
                        if (xo < 0 || xo >= (long)OW) continue;
                        float *yr = Yt + ((size_t)y * OW + (size_t)xo) * C, *wr = Wt + ((c * k + i) * k + j) * C;
                        float *restrict dst = grad ? wr : yr;
                        const float *restrict src = grad ? yr : wr;
                        for (size_t o = 0; o < C; o++) dst[o] += v * src[o];
                    }
                }
            }
}

static float pool_scale(const soma__proj *p) {
    size_t q = p->cv.pool_size;
    return p->cv.pool == SOMA_POOL_AVG ? 1.0f / (float)(q * q) : 1.0f;
}

void soma__conv_forward(const soma__proj *p, const float *x, size_t xs, float *out, size_t os, size_t n, float *cols,
                        float *tmp, uint8_t *arg) {
    size_t ck = p->cin * p->cv.kernel * p->cv.kernel, HW = p->oh * p->ow, q = p->cv.pool_size, ld = n * HW;
    if (use_sparse(p, x, xs, n)) {
        /* cols holds Wt, then one image's Yt; Y [C_out][n*HW] is their transpose. */
        float *Wt = cols, *Yt = cols + ck * p->cout;
        for (size_t o = 0; o < p->cout; o++)
            for (size_t e = 0; e < ck; e++) Wt[e * p->cout + o] = p->w[o * ck + e];
        for (size_t i = 0; i < n; i++) {
            memset(Yt, 0, HW * p->cout * sizeof *Yt);
            sparse_walk(p, x + i * xs, Wt, Yt, 0);
            for (size_t e = 0; e < HW; e++)
                for (size_t o = 0; o < p->cout; o++) tmp[o * ld + i * HW + e] = Yt[e * p->cout + o];
        }
    } else {
        for (size_t i = 0; i < n; i++) im2col(p, x + i * xs, cols, ld, i * HW);
        /* Y [C_out][n*HW]: all n images in one product. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)p->cout, (int)ld, (int)ck, 1.0f, p->w, (int)ck,
                    cols, (int)ld, 0.0f, tmp, (int)ld);
    }
    size_t PH = p->ph, PW = p->pw, PHW = PH * PW;
    float a = pool_scale(p);
    int pooled = p->cv.pool != SOMA_POOL_NONE;
    for (size_t i = 0; i < n; i++)
        for (size_t o = 0; o < p->cout; o++) {
            float b = p->b ? p->b[o] : 0.0f;
            float *dst = out + i * os + o * PHW;
            const float *src = tmp + o * ld + i * HW;
            if (!pooled) {
                for (size_t e = 0; e < PHW; e++) dst[e] = src[e] + b;
                continue;
            }
            if (p->cv.pool == SOMA_POOL_MAX && q == 2) { /* the usual case, branch-free */
                uint8_t *ag = arg + i * os + o * PHW;
                for (size_t u = 0; u < PH; u++) {
                    const float *r0 = src + 2 * u * p->ow, *r1 = r0 + p->ow;
                    for (size_t v = 0; v < PW; v++) {
                        float y0 = r0[2 * v], y1 = r0[2 * v + 1], y2 = r1[2 * v], y3 = r1[2 * v + 1];
                        /* first maximum in window order 0, 1, 2, 3 (ties keep the earlier one) */
                        float m01 = y1 > y0 ? y1 : y0, m23 = y3 > y2 ? y3 : y2;
                        unsigned i01 = y1 > y0, i23 = 2u + (y3 > y2);
                        int hi = m23 > m01;
                        dst[u * PW + v] = (hi ? m23 : m01) + b;
                        ag[u * PW + v] = (uint8_t)(hi ? i23 : i01);
                    }
                }
                continue;
            }
            if (p->cv.pool == SOMA_POOL_MAX) {
                uint8_t *ag = arg + i * os + o * PHW;
                for (size_t u = 0; u < PH; u++)
                    for (size_t v = 0; v < PW; v++) {
                        float m = src[u * q * p->ow + v * q];
                        unsigned best = 0;
                        for (size_t dy = 0; dy < q; dy++)
                            for (size_t dx = 0; dx < q; dx++) {
                                float y = src[(u * q + dy) * p->ow + v * q + dx];
                                if (y > m) m = y, best = (unsigned)(dy * q + dx);
                            }
                        dst[u * PW + v] = m + b;
                        ag[u * PW + v] = (uint8_t)best;
                    }
                continue;
            }
            for (size_t u = 0; u < PH; u++)
                for (size_t v = 0; v < PW; v++) {
                    float acc = 0.0f;
                    for (size_t dy = 0; dy < q; dy++)
                        for (size_t dx = 0; dx < q; dx++) acc += src[(u * q + dy) * p->ow + v * q + dx];
                    dst[u * PW + v] = a * acc + b;
                }
        }
}

void soma__conv_backward(const soma__proj *p, const float *x, size_t xs, const float *dout, size_t ds, size_t n,
                         const uint8_t *arg, float *dw, float *db, float *dx, float *cols, float *tmp, float *dcols) {
    size_t ck = p->cin * p->cv.kernel * p->cv.kernel, HW = p->oh * p->ow, q = p->cv.pool_size, ld = n * HW;
    size_t PH = p->ph, PW = p->pw, PHW = PH * PW;
    float a = pool_scale(p);
    /* dY [C_out][n*HW] = pool^T(dout) (zero where pooling dropped a row or column). */
    if (p->cv.pool == SOMA_POOL_MAX || (p->cv.pool != SOMA_POOL_NONE && (PH * q != p->oh || PW * q != p->ow)))
        memset(tmp, 0, p->cout * ld * sizeof *tmp);
    for (size_t i = 0; i < n; i++)
        for (size_t o = 0; o < p->cout; o++) {
            const float *g = dout + i * ds + o * PHW;
            float *d = tmp + o * ld + i * HW;
            if (p->cv.pool == SOMA_POOL_NONE) {
                memcpy(d, g, HW * sizeof *d);
                continue;
            }
            if (p->cv.pool == SOMA_POOL_MAX) {
                const uint8_t *ag = arg + i * ds + o * PHW;
                for (size_t u = 0; u < PH; u++)
                    for (size_t v = 0; v < PW; v++) {
                        size_t dy = ag[u * PW + v] / q, dx = ag[u * PW + v] % q;
                        d[(u * q + dy) * p->ow + v * q + dx] = g[u * PW + v];
                    }
                continue;
            }
            for (size_t u = 0; u < PH; u++)
                for (size_t v = 0; v < PW; v++) {
                    float gv = a * g[u * PW + v];
                    for (size_t ddy = 0; ddy < q; ddy++)
                        for (size_t ddx = 0; ddx < q; ddx++) d[(u * q + ddy) * p->ow + v * q + ddx] = gv;
                }
        }
    if (db)
        for (size_t i = 0; i < n; i++)
            for (size_t o = 0; o < p->cout; o++) {
                float s = 0.0f;
                for (size_t e = 0; e < PHW; e++) s += dout[i * ds + o * PHW + e];
                db[o] += s;
            }
    if (use_sparse(p, x, xs, n)) {
        /* cols holds dWt, then one image's dYt. */
        float *dWt = cols, *dYt = cols + ck * p->cout;
        memset(dWt, 0, ck * p->cout * sizeof *dWt);
        for (size_t i = 0; i < n; i++) {
            for (size_t e = 0; e < HW; e++)
                for (size_t o = 0; o < p->cout; o++) dYt[e * p->cout + o] = tmp[o * ld + i * HW + e];
            sparse_walk(p, x + i * xs, dWt, dYt, 1);
        }
        for (size_t o = 0; o < p->cout; o++)
            for (size_t e = 0; e < ck; e++) dw[o * ck + e] += dWt[e * p->cout + o];
    } else {
        for (size_t i = 0; i < n; i++) im2col(p, x + i * xs, cols, ld, i * HW);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)p->cout, (int)ck, (int)ld, 1.0f, tmp, (int)ld, cols,
                    (int)ld, 1.0f, dw, (int)ck);
    }
    if (dx) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ck, (int)ld, (int)p->cout, 1.0f, p->w, (int)ck, tmp,
                    (int)ld, 0.0f, dcols, (int)ld);
        for (size_t i = 0; i < n; i++) col2im(p, dcols, ld, i * HW, dx + i * xs);
    }
}
