/* dense.c — dense affine projection kernels (see dense.h). The trainer picks
 * BLAS or the spike-driven form per call from the measured spike density:
 * a gather costs one row of W^T per spike, a GEMM costs the full product. */
#include <cblas.h>
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <string.h>
#include "proj/dense.h"
#include "core/vec.h"

size_t soma__spike_index(const float *restrict s, size_t N, uint32_t *restrict idx) {
    size_t n = 0, j = 0;
#if defined(__AVX512F__)
    /* Compare 16 at a time and compress the indices of the set lanes. */
    __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512 zero = _mm512_setzero_ps();
    for (; j + 16 <= N; j += 16) {
        __mmask16 m = _mm512_cmp_ps_mask(_mm512_loadu_ps(s + j), zero, _CMP_NEQ_UQ);
        if (!m) continue;
        __m512i ix = _mm512_add_epi32(lane, _mm512_set1_epi32((int)j));
        _mm512_mask_compressstoreu_epi32(idx + n, m, ix);
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

size_t soma__spike_count_zero(const float *restrict s, size_t N) {
    uint32_t c = 0;
    for (size_t j = 0; j < N; j++) c += s[j] == 0.0f;
    return c;
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

void soma__dense_forward_csr(float *out, const float *x, const size_t *ptr, const uint32_t *col, const float *wT,
                             const float *bias, size_t R, size_t Nin, size_t Nout, size_t o0, size_t o1) {
    size_t ld = soma__ldw(Nout);
    for (size_t r = 0; r < R; r++) {
        float *restrict o = out + r * Nout;
        const float *xr = x + r * Nin;
        for (size_t i = o0; i < o1; i++) o[i] = bias ? bias[i] : 0.0f;
        for (size_t k = ptr[r]; k < ptr[r + 1]; k++) {
            const float xv = xr[col[k]];
            const float *restrict wr = wT + (size_t)col[k] * ld;
            for (size_t i = o0; i < o1; i++) o[i] += xv * wr[i];
        }
    }
}

void soma__dense_dweightT_csr(float *dwT, const float *x, const size_t *ptr, const uint32_t *col, const float *din,
                              size_t R, size_t Nin, size_t Nout, size_t o0, size_t o1) {
    size_t ld = soma__ldw(Nout);
    for (size_t r = 0; r < R; r++) {
        const float *restrict g = din + r * Nout;
        const float *xr = x + r * Nin;
        for (size_t k = ptr[r]; k < ptr[r + 1]; k++) {
            const float xv = xr[col[k]];
            float *restrict d = dwT + (size_t)col[k] * ld;
            for (size_t i = o0; i < o1; i++) d[i] += xv * g[i];
        }
    }
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

/* dst[c][r] = src[r][c] with row strides ld_dst and ld_src, in 32x32 tiles. */
static void transpose_strided(float *restrict dst, size_t ld_dst, const float *restrict src, size_t ld_src,
                              size_t rows, size_t cols) {
    const size_t B = 32;
    for (size_t r0 = 0; r0 < rows; r0 += B)
        for (size_t c0 = 0; c0 < cols; c0 += B)
            for (size_t r = r0; r < r0 + B && r < rows; r++)
                for (size_t c = c0; c < c0 + B && c < cols; c++) dst[c * ld_dst + r] = src[r * ld_src + c];
}

void soma__transpose_pad(float *dst, const float *src, size_t rows, size_t cols, size_t ld) {
    memset(dst, 0, cols * ld * sizeof *dst);
    transpose_strided(dst, ld, src, cols, rows, cols);
}

void soma__transpose_ld(float *dst, const float *src, size_t rows, size_t cols, size_t ld) {
    transpose_strided(dst, rows, src, ld, rows, cols);
}
