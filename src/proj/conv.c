/* conv.c — 2-D convolution by im2col and one GEMM per image, followed by
 * optional non-overlapping pooling:
 *
 *   Y[o][y][x]  = sum_{c,i,j} W[o][c][i][j] * X[c][y*s - p + i][x*s - p + j]   (zero outside X)
 *   out[o][u][v] = a * sum_{dy,dx < q} Y[o][u*q + dy][v*q + dx] + b[o]
 *
 * with q the pool size (1 without pooling), a = 1/q^2 for average pooling
 * and 1 for sum pooling or none. Output rows and columns left over when q
 * does not divide the output size are dropped, as torch's pooling does.
 * The bias is added after pooling: for average pooling this is exactly
 * torch's Conv2d bias followed by AvgPool2d. W is laid out as torch's
 * [C_out][C_in][k][k].
 *
 * Backward: dY = pool^T(dout), dW += dY * cols^T, db += sum(dout),
 * dX = col2im(W^T * dY).
 */
#include <cblas.h>
#include <string.h>
#include "proj/conv.h"

size_t soma__conv_cols_size(const soma__proj *p) { return p->cin * p->cv.kernel * p->cv.kernel * p->oh * p->ow; }
size_t soma__conv_out_size(const soma__proj *p) { return p->cout * p->oh * p->ow; }

static void im2col(const soma__proj *p, const float *x, float *cols) {
    size_t k = p->cv.kernel, s = p->cv.stride, pad = p->cv.padding, OH = p->oh, OW = p->ow, H = p->ih, W = p->iw;
    for (size_t c = 0; c < p->cin; c++)
        for (size_t i = 0; i < k; i++)
            for (size_t j = 0; j < k; j++) {
                float *row = cols + ((c * k + i) * k + j) * OH * OW;
                for (size_t y = 0; y < OH; y++) {
                    long iy = (long)(y * s + i) - (long)pad;
                    float *r = row + y * OW;
                    if (iy < 0 || iy >= (long)H) {
                        memset(r, 0, OW * sizeof *r);
                        continue;
                    }
                    const float *xr = x + (c * H + (size_t)iy) * W;
                    for (size_t xo = 0; xo < OW; xo++) {
                        long ix = (long)(xo * s + j) - (long)pad;
                        r[xo] = ix < 0 || ix >= (long)W ? 0.0f : xr[ix];
                    }
                }
            }
}

static void col2im(const soma__proj *p, const float *cols, float *dx) {
    size_t k = p->cv.kernel, s = p->cv.stride, pad = p->cv.padding, OH = p->oh, OW = p->ow, H = p->ih, W = p->iw;
    memset(dx, 0, p->cin * H * W * sizeof *dx);
    for (size_t c = 0; c < p->cin; c++)
        for (size_t i = 0; i < k; i++)
            for (size_t j = 0; j < k; j++) {
                const float *row = cols + ((c * k + i) * k + j) * OH * OW;
                for (size_t y = 0; y < OH; y++) {
                    long iy = (long)(y * s + i) - (long)pad;
                    if (iy < 0 || iy >= (long)H) continue;
                    float *xr = dx + (c * H + (size_t)iy) * W;
                    const float *r = row + y * OW;
                    for (size_t xo = 0; xo < OW; xo++) {
                        long ix = (long)(xo * s + j) - (long)pad;
                        if (ix >= 0 && ix < (long)W) xr[ix] += r[xo];
                    }
                }
            }
}

static float pool_scale(const soma__proj *p) {
    size_t q = p->cv.pool_size;
    return p->cv.pool == SOMA_POOL_AVG ? 1.0f / (float)(q * q) : 1.0f;
}

void soma__conv_forward(const soma__proj *p, const float *x, float *out, float *cols, float *tmp) {
    size_t ck = p->cin * p->cv.kernel * p->cv.kernel, HW = p->oh * p->ow, q = p->cv.pool_size;
    im2col(p, x, cols);
    int pooled = p->cv.pool != SOMA_POOL_NONE;
    float *y = pooled ? tmp : out;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)p->cout, (int)HW, (int)ck, 1.0f, p->w, (int)ck, cols,
                (int)HW, 0.0f, y, (int)HW);
    size_t PH = p->ph, PW = p->pw, PHW = PH * PW;
    float a = pool_scale(p);
    for (size_t o = 0; o < p->cout; o++) {
        float b = p->b ? p->b[o] : 0.0f;
        float *dst = out + o * PHW;
        if (!pooled) {
            for (size_t i = 0; i < PHW; i++) dst[i] += b;
            continue;
        }
        const float *src = y + o * HW;
        for (size_t u = 0; u < PH; u++)
            for (size_t v = 0; v < PW; v++) {
                float acc = 0.0f;
                for (size_t dy = 0; dy < q; dy++)
                    for (size_t dx = 0; dx < q; dx++) acc += src[(u * q + dy) * p->ow + v * q + dx];
                dst[u * PW + v] = a * acc + b;
            }
    }
}

void soma__conv_backward(const soma__proj *p, const float *x, const float *dout, float *dw, float *db, float *dx,
                         float *cols, float *tmp, float *dcols) {
    size_t ck = p->cin * p->cv.kernel * p->cv.kernel, HW = p->oh * p->ow, q = p->cv.pool_size;
    size_t PH = p->ph, PW = p->pw, PHW = PH * PW;
    const float *dy = dout;
    if (p->cv.pool != SOMA_POOL_NONE) {
        float a = pool_scale(p);
        memset(tmp, 0, p->cout * HW * sizeof *tmp);
        for (size_t o = 0; o < p->cout; o++)
            for (size_t u = 0; u < PH; u++)
                for (size_t v = 0; v < PW; v++) {
                    float g = a * dout[o * PHW + u * PW + v];
                    for (size_t ddy = 0; ddy < q; ddy++)
                        for (size_t ddx = 0; ddx < q; ddx++) tmp[o * HW + (u * q + ddy) * p->ow + v * q + ddx] = g;
                }
        dy = tmp;
    }
    if (db)
        for (size_t o = 0; o < p->cout; o++) {
            float s = 0.0f;
            for (size_t i = 0; i < PHW; i++) s += dout[o * PHW + i];
            db[o] += s;
        }
    im2col(p, x, cols);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)p->cout, (int)ck, (int)HW, 1.0f, dy, (int)HW, cols,
                (int)HW, 1.0f, dw, (int)ck);
    if (dx) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ck, (int)HW, (int)p->cout, 1.0f, p->w, (int)ck, dy,
                    (int)HW, 0.0f, dcols, (int)HW);
        col2im(p, dcols, dx);
    }
}
