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
#include "core/vec.h"

static size_t dy_border(const soma__conv_plan *p);
static size_t lists_size(const soma__conv_plan *p);

size_t soma__conv_cols_size(const soma__conv_plan *p) {
    /* im2col's columns; or (spike path) the transposed weights, one image's
     * channel-last output and its pooled copy with the max positions; or
     * (max-pool input gradient) the reordered weights, one image's
     * channel-last input gradient and the window lists. */
    size_t ck = p->cin * p->cv.kernel * p->cv.kernel, HW = p->oh * p->ow, PHW = p->ph * p->pw;
    size_t bd = dy_border(p), HWp = (p->oh + 2 * bd) * (p->ow + 2 * bd);
    size_t a = ck * HW, b = (ck + (HW > HWp ? HW : HWp) + 2 * PHW) * p->cout + lists_size(p),
           c = ck * p->cout + p->cin * p->ih * p->iw + 2 * p->cv.pool_size * p->cv.pool_size * p->cout;
    return a > b ? (a > c ? a : c) : (b > c ? b : c);
}
size_t soma__conv_out_size(const soma__conv_plan *p) { return p->cout * p->oh * p->ow; }

/* Columns of image x written into cols, a [C_in*k*k][ld] matrix, from column c0 on. */
static void im2col(const soma__conv_plan *p, const float *x, float *cols, size_t ld, size_t c0) {
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
static void col2im(const soma__conv_plan *p, const float *cols, size_t ld, size_t c0, float *dx) {
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

/* ---- the spike path: for sparse inputs (spikes, events) the nonzero
 * inputs are listed, and only they are summed, channel-last and vectorised
 * over the output channels (Wt [C_in*k*k][C_out], Yt [OH*OW][C_out]):
 *   forward: Y[pos][.] = sum over the listed inputs v = X[c][iy][ix] in
 *            pos's window of v * Wt[c,i,j][.], accumulated in registers
 *            output by output (a gather: no read-modify-write of Y);
 *   weight gradient: dWt[c,i,j][.] += sum over channel c's listed inputs of
 *            v * dYt[iy+pad-i][ix+pad-j][.], accumulated in registers row
 *            by row of dWt (dYt zero-bordered, so no bounds tests).
 * Stride 1 and kernels up to MAXK; taken where a cost model says it is
 * cheaper than im2col + GEMM (see use_sparse). */
#define MAXK 7

/* 1 if v is not +-0 (NaN counts), by its bits: an integer test, which
 * vectorises where a float comparison would branch on NaN. */
static inline uint32_t nonzero(float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return (u & 0x7fffffffu) != 0;
}

/* Whether the n images x take the spike path (forward, or weight gradient
 * with grad = 1), by a cost model in cycles fitted to single-thread
 * measurements on this project's machine (AVX-512, OpenBLAS 0.3.21), for
 * a 64-channel hidden convolution at spike densities 0.15-1 and a
 * 32-channel first convolution on images:
 *   GEMM:  OH*OW * C_in*k*k * (C_out/16 + 0.5) per image, the 0.5 for
 *          im2col; the weight gradient's GEMM, whose inner dimension is
 *          C_in*k*k, runs at ck/64 of that speed below ck = 64, plus 2 per
 *          column element;
 *   spike: one cycle per 16 output channels for each nonzero and kernel
 *          offset, plus 4 per input (the lists) and one per output value.
 * So the hidden convolution takes the spike path up to about 0.9 density
 * (measured when fitted: 37 against 105 us per image at 0.15, a tie at 0.6;
 * the spike path has become faster since, 25 us at 0.15: see
 * bench/bench_conv.c), and the first convolution of an image net the GEMM
 * forward (22 against 26 us) and the spike-path weight gradient (16
 * against 21 us). */
static int use_sparse(const soma__conv_plan *p, const float *x, size_t xs, size_t n, int grad) {
    if (p->cv.stride != 1 || p->cv.kernel > MAXK || p->path == SOMA__CONV_PATH_GEMM) return 0;
    if (p->path == SOMA__CONV_PATH_SPIKES) return 1;
    size_t D = p->cin * p->ih * p->iw, nz = 0, k = p->cv.kernel;
    for (size_t i = 0; i < n; i++)
        for (size_t e = 0; e < D; e++) nz += nonzero(x[i * xs + e]);
    double C = (double)p->cout, HW = (double)(p->oh * p->ow), ck = (double)(p->cin * k * k), nn = (double)n;
    double gemm = grad ? nn * HW * ck * (C / 16.0 * (ck < 64.0 ? 64.0 / ck : 1.0) + 2.0)
                       : nn * HW * ck * (C / 16.0 + 0.5);
    double spike = (double)nz * (double)(k * k) * (C / 16.0) + nn * (4.0 * (double)D + HW * C);
    return spike < gemm;
}

/* Zero border of the weight gradient's dYt: rows y = iy + pad - i reach
 * from pad - (k-1) to OH - 1 + (k-1-pad). */
static size_t dy_border(const soma__conv_plan *p) {
    return p->cv.kernel - 1 > p->cv.padding ? p->cv.kernel - 1 - p->cv.padding : 0;
}

/* The weight gradient's dYp layout: value (pos, o) at (o/16)*BS + pos*S + o%16.
 * With whole 16-channel vectors, block-major (S = 16, BS = positions*16),
 * so the walk over one block of channels reads 1/(C_out/16) of dYp and
 * stays in L1; otherwise channel-last (S = C_out, BS = 16). */
static void dy_layout(const soma__conv_plan *p, size_t *S, size_t *BS) {
    size_t b = dy_border(p), npos = (p->oh + 2 * b) * (p->ow + 2 * b);
#ifdef SOMA_HAVE_V16
    if (p->cout % 16 == 0) {
        *S = 16, *BS = npos * 16;
        return;
    }
#endif
    (void)npos;
    *S = p->cout, *BS = 16;
}

/* Floats of the nonzero lists of one image (see list_by_pixel and list_by_channel). */
static size_t lists_size(const soma__conv_plan *p) {
    size_t pad = p->cv.padding;
    return (p->ih + 2 * pad) * (p->iw + 2 * pad) + p->cin + 2 + 2 * p->cin * p->ih * p->iw;
}

/* The nonzeros of image x by pixel of the zero-padded input ([H+2pad][W+2pad]):
 * those of pixel P are entries st[P] .. st[P+1], so a run of pixels along a
 * row is one run of entries. Entry m holds the value val[m] and
 * off[m] = (c*k*k + px)*C_out for channel c at padded column px: the weight
 * row Wt[c,i,j] of output column x is then Wt + off[m] + (i*k - x)*C_out. */
static void list_by_pixel(const soma__conv_plan *p, const float *x, uint32_t *st, uint32_t *off, float *val) {
    size_t H = p->ih, W = p->iw, HW = H * W, pad = p->cv.padding, Wp = W + 2 * pad, NP = (H + 2 * pad) * Wp;
    size_t kk = p->cv.kernel * p->cv.kernel, C = p->cout, Ci = p->cin;
    uint32_t m = 0;
    /* pixel by pixel in padded order, channels inner: one pass, and every
     * input written to slot m, which advances only past nonzeros (no branch
     * to mispredict; a zero's slot is overwritten or never read) */
    for (size_t P = 0; P < pad * Wp; P++) st[P] = 0;
    for (size_t iy = 0; iy < H; iy++) {
        size_t P = (iy + pad) * Wp;
        for (size_t e = 0; e < pad; e++) st[P + e] = m;
        for (size_t ix = 0; ix < W; ix++) {
            st[P + pad + ix] = m;
            const float *xp = x + iy * W + ix;
            uint32_t o = (uint32_t)((ix + pad) * C);
            for (size_t c = 0; c < Ci; c++) {
                float v = xp[c * HW];
                off[m] = (uint32_t)(c * kk * C) + o, val[m] = v;
                m += nonzero(v);
            }
        }
        for (size_t e = pad + W; e < Wp; e++) st[P + e] = m;
    }
    for (size_t P = (H + pad) * Wp; P <= NP; P++) st[P] = m;
}

/* The nonzeros of image x by channel: those of channel c are entries
 * st[c] .. st[c+1], entry m with the value val[m] and, in pos[m], the
 * position in the weight gradient's zero-bordered dYp of the output its
 * kernel offset (0, 0) reaches: (iy + pad + b)*(OW + 2b) + ix + pad + b. */
static void list_by_channel(const soma__conv_plan *p, const float *x, uint32_t *st, uint32_t *pos, float *val) {
    size_t H = p->ih, W = p->iw, pad = p->cv.padding, b = dy_border(p), OWp = p->ow + 2 * b;
    uint32_t m = 0;
    for (size_t c = 0; c < p->cin; c++) { /* branch-free, as list_by_pixel */
        st[c] = m;
        for (size_t iy = 0; iy < H; iy++) {
            const float *xr = x + (c * H + iy) * W;
            uint32_t r = (uint32_t)((iy + pad + b) * OWp + pad + b);
            for (size_t ix = 0; ix < W; ix++) {
                float v = xr[ix];
                pos[m] = r + (uint32_t)ix, val[m] = v;
                m += nonzero(v);
            }
        }
    }
    st[p->cin] = m;
}

/* Forward of one image on the spike path: Yt [OH*OW][C] (overwritten).
 * Output by output, kernel row by kernel row: the k pixels a kernel row
 * covers are one run of entries (few, hard-to-predict loop ends). */
static void gather_forward(const soma__conv_plan *p, const float *x, const float *Wt, float *Yt, float *lists) {
    size_t k = p->cv.kernel, pad = p->cv.padding, OH = p->oh, OW = p->ow, C = p->cout;
    size_t Wp = p->iw + 2 * pad, NP = (p->ih + 2 * pad) * Wp;
    uint32_t *st = (uint32_t *)lists, *off = st + NP + 1;
    float *val = (float *)(off + p->cin * p->ih * p->iw);
    list_by_pixel(p, x, st, off, val);
    for (size_t y = 0; y < OH; y++)
        for (size_t xo = 0; xo < OW; xo++) {
            float *restrict yr = Yt + (y * OW + xo) * C;
            size_t o0 = 0;
#ifdef SOMA_HAVE_V16
            for (; o0 + 64 <= C; o0 += 64) { /* 64 channels in four registers */
                v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
                for (size_t i = 0; i < k; i++) {
                    size_t P = (y + i) * Wp + xo;
                    size_t wb = o0 + i * k * C - xo * C; /* wraps below zero; + off[m] is in range */
                    for (uint32_t m = st[P]; m < st[P + k]; m++) {
                        const float *w = Wt + (off[m] + wb);
                        float v = val[m];
                        a0 += v * LOADV(w), a1 += v * LOADV(w + 16), a2 += v * LOADV(w + 32), a3 += v * LOADV(w + 48);
                    }
                }
                STOREV(yr + o0, a0), STOREV(yr + o0 + 16, a1), STOREV(yr + o0 + 32, a2), STOREV(yr + o0 + 48, a3);
            }
            for (; o0 + 16 <= C; o0 += 16) {
                v16 a0 = {0};
                for (size_t i = 0; i < k; i++) {
                    size_t P = (y + i) * Wp + xo;
                    for (uint32_t m = st[P]; m < st[P + k]; m++)
                        a0 += val[m] * LOADV(Wt + (off[m] + o0 + i * k * C - xo * C));
                }
                STOREV(yr + o0, a0);
            }
#endif
            for (size_t o = o0; o < C; o++) yr[o] = 0.0f;
            for (size_t i = 0; o0 < C && i < k; i++) {
                size_t P = (y + i) * Wp + xo;
                for (uint32_t m = st[P]; m < st[P + k]; m++) {
                    const float *restrict w = Wt + (off[m] + i * k * C - xo * C);
                    for (size_t o = o0; o < C; o++) yr[o] += val[m] * w[o];
                }
            }
        }
}

/* Weight gradient of one image on the spike path: dWt [C_in*k*k][C] +=,
 * from dYp, the zero-bordered dYt ([OH+2b][OW+2b][C], b = dy_border).
 * Always inlined with k constant for k = 3, so the k*k accumulators of a
 * 16-channel block are registers. */
static inline __attribute__((always_inline)) void dw_walk_k(const soma__conv_plan *p, const float *x, float *dWt,
                                                            const float *dYp, float *lists, size_t k) {
    size_t C = p->cout, W = p->iw, b = dy_border(p), OWp = p->ow + 2 * b, kk = k * k, S, BS;
    dy_layout(p, &S, &BS);
    uint32_t *st = (uint32_t *)lists, *px = st + p->cin + 1;
    float *val = (float *)(px + p->cin * p->ih * W);
    list_by_channel(p, x, st, px, val);
    size_t o0 = 0;
#ifdef SOMA_HAVE_V16
    for (; o0 + 16 <= C; o0 += 16) /* a block of channels at a time over all inputs: its dYp stays in L1 */
        for (size_t c = 0; c < p->cin; c++) {
            if (st[c] == st[c + 1]) continue;
            float *dw = dWt + c * kk * C + o0;
            const float *blk = dYp + (o0 / 16) * BS;
            v16 a[MAXK * MAXK];
            for (size_t e = 0; e < kk; e++) a[e] = (v16){0};
            for (uint32_t m = st[c]; m < st[c + 1]; m++) {
                /* dYt row y = iy + pad - i sits at y + b in dYp */
                const float *base = blk + px[m] * S;
                float v = val[m];
                for (size_t i = 0; i < k; i++)
                    for (size_t j = 0; j < k; j++) a[i * k + j] += v * LOADV(base - (i * OWp + j) * S);
            }
            for (size_t e = 0; e < kk; e++) STOREV(dw + e * C, LOADV(dw + e * C) + a[e]);
        }
#endif
    for (size_t c = 0; o0 < C && c < p->cin; c++) /* channel-last here (S = C_out) */
        for (uint32_t m = st[c]; m < st[c + 1]; m++) {
            const float *base = dYp + px[m] * S;
            for (size_t i = 0; i < k; i++)
                for (size_t j = 0; j < k; j++) {
                    const float *restrict d = base - (i * OWp + j) * S;
                    float *restrict w = dWt + (c * kk + i * k + j) * C;
                    for (size_t o = o0; o < C; o++) w[o] += val[m] * d[o];
                }
        }
}

static void dw_walk(const soma__conv_plan *p, const float *x, float *dWt, const float *dYp, float *lists) {
    if (p->cv.kernel == 3)
        dw_walk_k(p, x, dWt, dYp, lists, 3);
    else
        dw_walk_k(p, x, dWt, dYp, lists, p->cv.kernel);
}

#ifdef SOMA_HAVE_V16
/* The 2x2 max-pool selection on 16 windows at once: the first maximum in
 * window order 0, 1, 2, 3 (ties keep the earlier one, as torch), and its
 * position in *ix. Branch-free (masks, no float compare under a condition). */
static inline v16 max4(v16 y0, v16 y1, v16 y2, v16 y3, v16i *ix) {
    v16i g01 = y1 > y0, g23 = y3 > y2;
    v16 m01 = (v16)((g01 & (v16i)y1) | (~g01 & (v16i)y0));
    v16 m23 = (v16)((g23 & (v16i)y3) | (~g23 & (v16i)y2));
    v16i hi = m23 > m01;
    *ix = (hi & (2 + (g23 & 1))) | (~hi & (g01 & 1));
    return (v16)((hi & (v16i)m23) | (~hi & (v16i)m01));
}
#endif

static float pool_scale(const soma__conv_plan *p) {
    size_t q = p->cv.pool_size;
    return p->cv.pool == SOMA_POOL_AVG ? 1.0f / (float)(q * q) : 1.0f;
}

void soma__conv_forward(const soma__conv_plan *p, const float *x, size_t xs, float *out, size_t os, size_t n,
                        float *cols, float *tmp, uint8_t *arg) {
    size_t ck = p->cin * p->cv.kernel * p->cv.kernel, HW = p->oh * p->ow, q = p->cv.pool_size, ld = n * HW;
    int sparse = use_sparse(p, x, xs, n, 0);
    if (sparse && p->cv.pool == SOMA_POOL_MAX && p->cv.pool_size == 2) {
        /* cols holds Wt, one image's Yt, then its pooled maxima and their
         * positions, channel-last: the pooling runs along the channels, in
         * vector registers, and only the pooled values are transposed. */
        size_t C = p->cout, PH = p->ph, PW = p->pw, PHW = PH * PW, OW = p->ow;
        float *Wt = cols, *Yt = cols + ck * C, *Pt = Yt + HW * C;
        int32_t *At = (int32_t *)(Pt + PHW * C);
        float *L = Pt + 2 * PHW * C;
        for (size_t o = 0; o < C; o++)
            for (size_t e = 0; e < ck; e++) Wt[e * C + o] = p->w[o * ck + e];
        for (size_t i = 0; i < n; i++) {
            gather_forward(p, x + i * xs, Wt, Yt, L);
            for (size_t u = 0; u < PH; u++)
                for (size_t v = 0; v < PW; v++) {
                    const float *restrict y0 = Yt + (2 * u * OW + 2 * v) * C, *restrict y1 = y0 + C,
                                          *restrict y2 = y0 + OW * C, *restrict y3 = y2 + C;
                    float *restrict pm = Pt + (u * PW + v) * C;
                    int32_t *restrict pa = At + (u * PW + v) * C;
                    size_t o = 0;
#ifdef SOMA_HAVE_V16
                    for (; o + 16 <= C; o += 16) { /* 16 channels at a time */
                        v16i ix;
                        STOREV(pm + o, max4(LOADV(y0 + o), LOADV(y1 + o), LOADV(y2 + o), LOADV(y3 + o), &ix));
                        STOREVI(pa + o, ix);
                    }
#endif
                    for (; o < C; o++) { /* first maximum in window order 0, 1, 2, 3, as below */
                        float m01 = y1[o] > y0[o] ? y1[o] : y0[o], m23 = y3[o] > y2[o] ? y3[o] : y2[o];
                        int32_t i01 = y1[o] > y0[o], i23 = 2 + (y3[o] > y2[o]);
                        int hi = m23 > m01;
                        pm[o] = hi ? m23 : m01;
                        pa[o] = hi ? i23 : i01;
                    }
                }
            for (size_t o = 0; o < C; o++) {
                float b = p->b ? p->b[o] : 0.0f;
                float *dst = out + i * os + o * PHW;
                uint8_t *ag = arg + i * os + o * PHW;
                for (size_t e = 0; e < PHW; e++) dst[e] = Pt[e * C + o] + b, ag[e] = (uint8_t)At[e * C + o];
            }
        }
        return;
    }
    if (sparse) {
        /* cols holds Wt, then one image's Yt; Y [C_out][n*HW] is their transpose. */
        float *Wt = cols, *Yt = cols + ck * p->cout, *L = Yt + HW * p->cout;
        for (size_t o = 0; o < p->cout; o++)
            for (size_t e = 0; e < ck; e++) Wt[e * p->cout + o] = p->w[o * ck + e];
        for (size_t i = 0; i < n; i++) {
            gather_forward(p, x + i * xs, Wt, Yt, L);
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
                    const float *restrict r0 = src + 2 * u * p->ow, *restrict r1 = r0 + p->ow;
                    float *restrict dr = dst + u * PW;
                    uint8_t *restrict ar = ag + u * PW;
                    size_t v = 0;
#ifdef SOMA_HAVE_V16
                    for (; v < PW; v += 16) { /* 16 windows at a time; the last ones from zero-padded copies */
                        size_t nv = PW - v < 16 ? PW - v : 16;
                        float t0[32] = {0}, t1[32] = {0};
                        const float *a = r0 + 2 * v, *c = r1 + 2 * v;
                        if (nv < 16) {
                            memcpy(t0, a, 2 * nv * sizeof(float));
                            memcpy(t1, c, 2 * nv * sizeof(float));
                            a = t0, c = t1;
                        }
                        v16 a0 = LOADV(a), a1 = LOADV(a + 16), c0 = LOADV(c), c1 = LOADV(c + 16);
                        v16i ix;
                        v16 m = max4(EVENV(a0, a1), ODDV(a0, a1), EVENV(c0, c1), ODDV(c0, c1), &ix) + b;
                        for (size_t t = 0; t < nv; t++) dr[v + t] = m[t], ar[v + t] = (uint8_t)ix[t];
                    }
#endif
                    for (; v < PW; v++) {
                        float y0 = r0[2 * v], y1 = r0[2 * v + 1], y2 = r1[2 * v], y3 = r1[2 * v + 1];
                        /* first maximum in window order 0, 1, 2, 3 (ties keep the earlier one) */
                        float m01 = y1 > y0 ? y1 : y0, m23 = y3 > y2 ? y3 : y2;
                        unsigned i01 = y1 > y0, i23 = 2u + (y3 > y2);
                        int hi = m23 > m01;
                        dr[v] = (hi ? m23 : m01) + b;
                        ar[v] = (uint8_t)(hi ? i23 : i01);
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

/* dY [C_out][n*HW] (tmp) = pool^T(dout) (zero where pooling dropped a row or column). */
static void pool_back(const soma__conv_plan *p, const float *dout, size_t ds, size_t n, const uint8_t *arg, float *tmp,
                      float a) {
    size_t HW = p->oh * p->ow, q = p->cv.pool_size, ld = n * HW, PH = p->ph, PW = p->pw, PHW = PH * PW;
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
                        size_t a = ag[u * PW + v], dy = q == 2 ? a >> 1 : a / q, dx = q == 2 ? a & 1 : a % q;
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
}

/* dY of one image, channel-last with a zero border of b (dYp [OH+2b][OW+2b][C_out],
 * overwritten) = pool^T(dout). */
static void pool_back_cl(const soma__conv_plan *p, const float *g, const uint8_t *ag, float *restrict dYp, size_t b) {
    size_t C = p->cout, q = p->cv.pool_size, PH = p->ph, PW = p->pw, PHW = PH * PW, OWp = p->ow + 2 * b, S, BS;
    dy_layout(p, &S, &BS);
    float a = pool_scale(p);
    memset(dYp, 0, (p->oh + 2 * b) * OWp * C * sizeof *dYp);
    size_t woff[64]; /* window position -> offset (no division per element) */
    for (size_t k = 0; k < q * q && k < 64; k++) woff[k] = ((k / q) * OWp + k % q) * S;
    for (size_t o = 0; o < C; o++) {
        float *d0 = dYp + (o / 16) * BS + o % 16 + (b * OWp + b) * S; /* output (0, 0), channel o */
        for (size_t u = 0; u < PH; u++)
            for (size_t v = 0; v < PW; v++) {
                float gv = g[o * PHW + u * PW + v];
                if (p->cv.pool == SOMA_POOL_NONE) {
                    d0[(u * OWp + v) * S] = gv;
                } else if (p->cv.pool == SOMA_POOL_MAX && q <= 8) {
                    d0[(u * q * OWp + v * q) * S + woff[ag[o * PHW + u * PW + v]]] = gv;
                } else if (p->cv.pool == SOMA_POOL_MAX) {
                    unsigned k = ag[o * PHW + u * PW + v];
                    d0[((u * q + k / q) * OWp + v * q + k % q) * S] = gv;
                } else {
                    for (size_t dy = 0; dy < q; dy++)
                        for (size_t dx = 0; dx < q; dx++) d0[((u * q + dy) * OWp + v * q + dx) * S] = a * gv;
                }
            }
    }
}

/* dx of one image (overwritten) under max pooling, where dY is zero but at
 * one position per channel and window: for each window, the channels are
 * listed by the position their maximum took, and each position adds
 * sum_o dY[o] * W[o][.][i][j] to the k*k input pixels it reached, summed in
 * registers over the listed channels. A quarter of the products of the
 * dense W^T * dY (for 2x2 windows), no im2col and no col2im.
 * work: Wr [C_out][k*k][C_in] (already filled), dXt [H*W][C_in], lists
 * [q*q][C_out] of channels and of their dY. */
static inline __attribute__((always_inline)) void maxpool_dx_k(const soma__conv_plan *p, const float *g,
                                                               const uint8_t *ag, const float *Wr, float *dXt,
                                                               uint32_t *lists, float *lg, float *dx, size_t k) {
    size_t C = p->cout, Ci = p->cin, kk = k * k, s = p->cv.stride, pad = p->cv.padding;
    size_t q = p->cv.pool_size, PH = p->ph, PW = p->pw, PHW = PH * PW, H = p->ih, W = p->iw;
    size_t cnt[64];
    memset(dXt, 0, H * W * Ci * sizeof *dXt);
    for (size_t u = 0; u < PH; u++)
        for (size_t v = 0; v < PW; v++) {
            size_t e = u * PW + v;
            memset(cnt, 0, q * q * sizeof cnt[0]);
            for (size_t o = 0; o < C; o++) {
                float gv = g[o * PHW + e];
                if (gv == 0.0f) continue;
                unsigned d = ag[o * PHW + e];
                lists[d * C + cnt[d]] = (uint32_t)o;
                lg[d * C + cnt[d]++] = gv;
            }
            for (size_t d = 0; d < q * q; d++) {
                size_t nl = cnt[d];
                if (!nl) continue;
                const uint32_t *L = lists + d * C;
                const float *G = lg + d * C;
                long y = (long)((u * q + d / q) * s) - (long)pad, x = (long)((v * q + d % q) * s) - (long)pad;
                size_t c0 = 0;
#ifdef SOMA_HAVE_V16
                for (; kk <= 9 && c0 + 32 <= Ci; c0 += 32) { /* 2*k*k accumulators of 32 channels, over the list */
                    v16 acc[2 * 9];
                    for (size_t t = 0; t < 2 * kk; t++) acc[t] = (v16){0};
                    for (size_t m = 0; m < nl; m++) {
                        const float *wr = Wr + L[m] * kk * Ci + c0;
                        float gm = G[m];
                        for (size_t t = 0; t < kk; t++)
                            acc[t] += gm * LOADV(wr + t * Ci), acc[kk + t] += gm * LOADV(wr + t * Ci + 16);
                    }
                    for (size_t i = 0; i < k; i++) {
                        long iy = y + (long)i;
                        if (iy < 0 || iy >= (long)H) continue;
                        for (size_t j = 0; j < k; j++) {
                            long ix = x + (long)j;
                            if (ix < 0 || ix >= (long)W) continue;
                            float *dst = dXt + ((size_t)iy * W + (size_t)ix) * Ci + c0;
                            STOREV(dst, LOADV(dst) + acc[i * k + j]);
                            STOREV(dst + 16, LOADV(dst + 16) + acc[kk + i * k + j]);
                        }
                    }
                }
                for (; c0 + 16 <= Ci; c0 += 16) { /* k*k accumulators of 16 channels, over the list */
                    v16 acc[MAXK * MAXK];
                    for (size_t t = 0; t < kk; t++) acc[t] = (v16){0};
                    for (size_t m = 0; m < nl; m++) {
                        const float *wr = Wr + L[m] * kk * Ci + c0;
                        float gm = G[m];
                        for (size_t t = 0; t < kk; t++) acc[t] += gm * LOADV(wr + t * Ci);
                    }
                    for (size_t i = 0; i < k; i++) {
                        long iy = y + (long)i;
                        if (iy < 0 || iy >= (long)H) continue;
                        for (size_t j = 0; j < k; j++) {
                            long ix = x + (long)j;
                            if (ix < 0 || ix >= (long)W) continue;
                            float *dst = dXt + ((size_t)iy * W + (size_t)ix) * Ci + c0;
                            STOREV(dst, LOADV(dst) + acc[i * k + j]);
                        }
                    }
                }
#endif
                for (size_t i = 0; c0 < Ci && i < k; i++) {
                    long iy = y + (long)i;
                    if (iy < 0 || iy >= (long)H) continue;
                    for (size_t j = 0; j < k; j++) {
                        long ix = x + (long)j;
                        if (ix < 0 || ix >= (long)W) continue;
                        float *restrict dst = dXt + ((size_t)iy * W + (size_t)ix) * Ci;
                        for (size_t m = 0; m < nl; m++) {
                            const float *restrict wr = Wr + (L[m] * kk + i * k + j) * Ci;
                            for (size_t c = c0; c < Ci; c++) dst[c] += G[m] * wr[c];
                        }
                    }
                }
            }
        }
    for (size_t c = 0; c < Ci; c++)
        for (size_t e = 0; e < H * W; e++) dx[c * H * W + e] = dXt[e * Ci + c];
}

static void maxpool_dx(const soma__conv_plan *p, const float *g, const uint8_t *ag, const float *Wr, float *dXt,
                       uint32_t *lists, float *lg, float *dx) {
    if (p->cv.kernel == 3)
        maxpool_dx_k(p, g, ag, Wr, dXt, lists, lg, dx, 3);
    else
        maxpool_dx_k(p, g, ag, Wr, dXt, lists, lg, dx, p->cv.kernel);
}

void soma__conv_backward(const soma__conv_plan *p, const float *x, size_t xs, const float *dout, size_t ds, size_t n,
                         const uint8_t *arg, float *dw, float *db, float *dx, float *cols, float *tmp, float *dcols) {
    size_t ck = p->cin * p->cv.kernel * p->cv.kernel, HW = p->oh * p->ow, q = p->cv.pool_size, ld = n * HW;
    size_t PH = p->ph, PW = p->pw, PHW = PH * PW, C = p->cout;
    float a = pool_scale(p);
    if (db)
        for (size_t i = 0; i < n; i++)
            for (size_t o = 0; o < C; o++) {
                float s = 0.0f;
                for (size_t e = 0; e < PHW; e++) s += dout[i * ds + o * PHW + e];
                db[o] += s;
            }
    int sparse = use_sparse(p, x, xs, n, 1);
    /* Max pooling with at most 64 positions per window (q <= 8) takes the
     * list path for dx (a plan forced to the GEMM path keeps the GEMM, for comparison). */
    int listdx = dx && p->cv.pool == SOMA_POOL_MAX && q <= 8 && p->cv.kernel <= MAXK && p->path != SOMA__CONV_PATH_GEMM;
    int have_tmp = 0;
    if (sparse) {
        /* cols holds dWt, one image's zero-bordered dYt, then its nonzero lists. */
        size_t bd = dy_border(p);
        float *dWt = cols, *dYp = cols + ck * C, *L = dYp + (p->oh + 2 * bd) * (p->ow + 2 * bd) * C;
        memset(dWt, 0, ck * C * sizeof *dWt);
        for (size_t i = 0; i < n; i++) {
            pool_back_cl(p, dout + i * ds, arg ? arg + i * ds : NULL, dYp, bd);
            dw_walk(p, x + i * xs, dWt, dYp, L);
        }
        for (size_t o = 0; o < C; o++)
            for (size_t e = 0; e < ck; e++) dw[o * ck + e] += dWt[e * C + o];
    } else {
        pool_back(p, dout, ds, n, arg, tmp, a);
        have_tmp = 1;
        for (size_t i = 0; i < n; i++) im2col(p, x + i * xs, cols, ld, i * HW);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)C, (int)ck, (int)ld, 1.0f, tmp, (int)ld, cols,
                    (int)ld, 1.0f, dw, (int)ck);
    }
    if (!dx) return;
    if (listdx) {
        size_t k = p->cv.kernel, kk = k * k, Ci = p->cin;
        float *Wr = dcols, *dXt = dcols + ck * C;
        uint32_t *lists = (uint32_t *)(dXt + Ci * p->ih * p->iw);
        float *lg = dXt + Ci * p->ih * p->iw + q * q * C;
        for (size_t o = 0; o < C; o++)
            for (size_t c = 0; c < Ci; c++)
                for (size_t e = 0; e < kk; e++) Wr[(o * kk + e) * Ci + c] = p->w[(o * Ci + c) * kk + e];
        for (size_t i = 0; i < n; i++) maxpool_dx(p, dout + i * ds, arg + i * ds, Wr, dXt, lists, lg, dx + i * xs);
        return;
    }
    if (!have_tmp) pool_back(p, dout, ds, n, arg, tmp, a);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ck, (int)ld, (int)C, 1.0f, p->w, (int)ck, tmp, (int)ld,
                0.0f, dcols, (int)ld);
    for (size_t i = 0; i < n; i++) col2im(p, dcols, ld, i * HW, dx + i * xs);
}
