/* vmath.h — float math for hot loops that must vectorize without
 * -ffast-math (libm's calls do not). */
#ifndef SOMA_VMATH_H
#define SOMA_VMATH_H
#include <stdint.h>
#include <string.h>

/* exp(x) in float for hot loops, written so that it vectorizes (libm's expf
 * does not without -ffast-math, and floorf does not under GCC's default
 * -ftrapping-math): x = n ln2 + r with |r| <= ln2/2, n rounded to nearest
 * by adding 1.5*2^23 (Cody-Waite split of ln2 for r), exp(r) by Cephes'
 * expf polynomial, 2^n from the exponent bits. Maximum relative error about
 * 2e-7 over [-87, 88] (checked against double exp in
 * tests/test_sim_models.c); x is clamped to that range, so the result is
 * finite and positive for any finite x (about 1.6e-38 far below). Used by
 * lif_coba, adex, ltc and the UltraLIF family. */
static inline __attribute__((always_inline)) float soma__expf_vec(float x) {
    const float magic = 12582912.0f; /* 1.5 * 2^23: t's low mantissa bits hold round(x log2 e) */
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float t = x * 1.44269504088896341f + magic;
    float n = t - magic;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t tb, mb;
    memcpy(&tb, &t, sizeof tb);
    memcpy(&mb, &magic, sizeof mb);
    int32_t bits = (tb - mb + 127) * (1 << 23);
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* log(1 + y) for y in [0, 1], vectorizable (libm's log1pf is a call): log u
 * of u = 1 + y in [1, 2] by Cephes' logf polynomial around 1 (u halved above
 * sqrt 2), times y / (u - 1), which undoes the rounding of 1 + y (Goldberg's
 * log1p; exact y for u == 1). Relative error below 3e-7 on [0, 1] (checked
 * against double log1p in tests/test_sim_models.c). Used by ltc's softplus
 * and UltraLIF's log-sum-exp, both of which call it with y = e^{-|x|}. */
static inline __attribute__((always_inline)) float soma__log1pf_unit_vec(float y) {
    float u = 1.0f + y, big = u > 1.41421356f ? 1.0f : 0.0f;
    float x = (big != 0.0f ? 0.5f * u : u) - 1.0f, z = x * x;
    float p = 7.0376836292e-2f;
    p = p * x - 1.1514610310e-1f;
    p = p * x + 1.1676998740e-1f;
    p = p * x - 1.2420140846e-1f;
    p = p * x + 1.4249322787e-1f;
    p = p * x - 1.6668057665e-1f;
    p = p * x + 2.0000714765e-1f;
    p = p * x - 2.4999993993e-1f;
    p = p * x + 3.3333331174e-1f;
    float lu = x + (p * x * z - 0.5f * z) + big * 0.693147180559945f;
    /* the division runs for every lane (a nonzero divisor where u == 1):
     * GCC if-converts a conditional division only with AVX-512 masks, and
     * would leave the loop scalar on AVX2 */
    float den = u == 1.0f ? 1.0f : u - 1.0f, r = lu * (y / den);
    return u == 1.0f ? y : r;
}

#endif
