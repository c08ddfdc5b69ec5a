/* dense.c — dense affine projection kernels (see dense.h). The trainer picks
 * BLAS or the spike-driven form per call from the measured spike density:
 * a gather costs one row of W^T per spike, a GEMM costs the full product. */
#include <cblas.h>
#include <string.h>
#include "proj/dense.h"

size_t soma__spike_index(const float *restrict s, size_t N, uint32_t *restrict idx) {
    size_t n = 0;
    size_t j = 0;
    /* Skip runs of zeros eight at a time: spikes are sparse. */
    for (; j + 8 <= N; j += 8) {
        float any = s[j] + s[j + 1] + s[j + 2] + s[j + 3] + s[j + 4] + s[j + 5] + s[j + 6] + s[j + 7];
        if (any == 0.0f) continue;
        for (size_t k = j; k < j + 8; k++)
            if (s[k] != 0.0f) idx[n++] = (uint32_t)k;
    }
    for (; j < N; j++)
        if (s[j] != 0.0f) idx[n++] = (uint32_t)j;
    return n;
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

void soma__dense_forward_spikes(float *out, const uint32_t *idx, const uint32_t *cnt, size_t stride, const float *wT,
                                const float *bias, size_t R, size_t Nout, int acc) {
    if (!acc) init_rows(out, bias, R, Nout);
    for (size_t r = 0; r < R; r++) {
        float *restrict o = out + r * Nout;
        const uint32_t *ix = idx + r * stride;
        for (size_t k = 0; k < cnt[r]; k++) {
            const float *restrict wr = wT + (size_t)ix[k] * Nout;
            for (size_t i = 0; i < Nout; i++) o[i] += wr[i];
        }
    }
}

void soma__dense_dweight_spikes(float *dwT, const uint32_t *idx, const uint32_t *cnt, size_t stride, const float *din,
                                size_t R, size_t Nout) {
    for (size_t r = 0; r < R; r++) {
        const float *restrict g = din + r * Nout;
        const uint32_t *ix = idx + r * stride;
        for (size_t k = 0; k < cnt[r]; k++) {
            float *restrict d = dwT + (size_t)ix[k] * Nout;
            for (size_t i = 0; i < Nout; i++) d[i] += g[i];
        }
    }
}

void soma__dense_dweightT_blas(float *dwT, const float *x, const float *din, size_t R, size_t Nin, size_t Nout) {
    if (R == 0) return;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)Nin, (int)Nout, (int)R, 1.0f, x, (int)Nin, din,
                (int)Nout, 1.0f, dwT, (int)Nout);
}

void soma__dense_dinput_blas(float *dx, const float *din, const float *w, size_t R, size_t Nin, size_t Nout, int acc) {
    if (R == 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)Nin, (int)Nout, 1.0f, din, (int)Nout, w,
                (int)Nin, acc ? 1.0f : 0.0f, dx, (int)Nin);
}

void soma__dense_dbias(float *restrict db, const float *restrict din, size_t R, size_t Nout) {
    for (size_t r = 0; r < R; r++)
        for (size_t i = 0; i < Nout; i++) db[i] += din[r * Nout + i];
}

void soma__transpose(float *restrict dst, const float *restrict src, size_t rows, size_t cols) {
    const size_t B = 32;
    for (size_t r0 = 0; r0 < rows; r0 += B)
        for (size_t c0 = 0; c0 < cols; c0 += B)
            for (size_t r = r0; r < r0 + B && r < rows; r++)
                for (size_t c = c0; c < c0 + B && c < cols; c++) dst[c * rows + r] = src[r * cols + c];
}
