/* rng.c — Philox-4x32-10 counter-based random numbers (Salmon et al., SC'11).
 * A value depends only on (key, counter), so streams can be split by sample,
 * neuron or step and computed on any thread in any order with identical
 * results. */
#include "soma.h"
#include "core/rng.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void soma_philox(uint64_t key, uint64_t counter, uint32_t out[4]) {
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* n consecutive blocks (key, ctr0 .. ctr0+n-1) into out[4n]: the same words
 * as soma_philox, computed lane-parallel so the rounds run across blocks
 * (one block alone is a chain of dependent multiplies). This is the plain C
 * form; GCC vectorizes it, but with 64-bit multiplies (vpmullq) and
 * permutes, so x86 with AVX-512 takes philox_n_avx512 below. */
#if !defined(__AVX512F__)
static void philox_n_c(uint64_t key, uint64_t ctr0, size_t n, uint32_t *restrict out) {
    enum { W = 16 };
    for (size_t base = 0; base < n; base += W) {
        size_t m = n - base < W ? n - base : W;
        uint32_t c0[W], c1[W], c2[W], c3[W];
        for (size_t i = 0; i < W; i++) {
            uint64_t c = ctr0 + base + i;
            c0[i] = (uint32_t)c, c1[i] = (uint32_t)(c >> 32), c2[i] = 0, c3[i] = 0;
        }
        uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
        for (int r = 0; r < 10; r++) {
            for (size_t i = 0; i < W; i++) {
                uint64_t p0 = (uint64_t)PHILOX_M0 * c0[i], p1 = (uint64_t)PHILOX_M1 * c2[i];
                uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[i] ^ k0;
                uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[i] ^ k1;
                c1[i] = (uint32_t)p1;
                c3[i] = (uint32_t)p0;
                c0[i] = n0;
                c2[i] = n2;
            }
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        for (size_t i = 0; i < m; i++) {
            uint32_t *o = out + 4 * (base + i);
            o[0] = c0[i], o[1] = c1[i], o[2] = c2[i], o[3] = c3[i];
        }
    }
}
#endif

#if defined(__AVX512F__)
/* 16 lanes of 32x32 -> 64-bit products a*m as high and low words:
 * vpmuludq multiplies the even lanes, a second one the odd lanes shifted
 * down, and two blends put the halves back in lane order. */
static inline __attribute__((always_inline)) void mulhilo16(__m512i a, __m512i m, __m512i *hi, __m512i *lo) {
    __m512i pe = _mm512_mul_epu32(a, m), po = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    *lo = _mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64(po, 32));
    *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 32), po);
}

/* G groups of 16 blocks (from block `base`) in one pass: the ten rounds of
 * a group are a chain of dependent multiplies, so several groups are
 * interleaved to keep the multiplier busy. Blocks past n are computed and
 * dropped. */
static inline __attribute__((always_inline)) void philox_pass(uint64_t key, uint64_t ctr0, size_t n, size_t base,
                                                              uint32_t *restrict out, const int G) {
    const __m512i m0 = _mm512_set1_epi64(PHILOX_M0), m1 = _mm512_set1_epi64(PHILOX_M1);
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512i c0[4], c1[4], c2[4], c3[4];
    for (int g = 0; g < G; g++) {
        /* Counters ctr0 + base + 16g + i split into low and high words; the
         * high word gains a carry where the low word wrapped. */
        uint64_t c = ctr0 + base + 16 * (uint64_t)g;
        __m512i clo = _mm512_set1_epi32((int)(uint32_t)c), chi = _mm512_set1_epi32((int)(uint32_t)(c >> 32));
        __m512i lo = _mm512_add_epi32(clo, lane);
        c0[g] = lo;
        c1[g] = _mm512_mask_add_epi32(chi, _mm512_cmplt_epu32_mask(lo, clo), chi, _mm512_set1_epi32(1));
        c2[g] = _mm512_setzero_si512();
        c3[g] = _mm512_setzero_si512();
    }
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int r = 0; r < 10; r++) {
        __m512i vk0 = _mm512_set1_epi32((int)k0), vk1 = _mm512_set1_epi32((int)k1);
        for (int g = 0; g < G; g++) {
            __m512i h0, l0, h1, l1;
            mulhilo16(c0[g], m0, &h0, &l0);
            mulhilo16(c2[g], m1, &h1, &l1);
            c0[g] = _mm512_ternarylogic_epi32(h1, c1[g], vk0, 0x96); /* three-way xor */
            c2[g] = _mm512_ternarylogic_epi32(h0, c3[g], vk1, 0x96);
            c1[g] = l1;
            c3[g] = l0;
        }
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    for (int g = 0; g < G; g++) {
        size_t b0 = base + 16 * (size_t)g;
        if (b0 >= n) break;
        /* 4x16 words to block order: unpacks put each block's four words
         * together inside 128-bit lanes (u_k's lane L holds block 4L+k),
         * then a 4x4 transpose of the 128-bit lanes. */
        __m512i t0 = _mm512_unpacklo_epi32(c0[g], c1[g]), t1 = _mm512_unpackhi_epi32(c0[g], c1[g]);
        __m512i t2 = _mm512_unpacklo_epi32(c2[g], c3[g]), t3 = _mm512_unpackhi_epi32(c2[g], c3[g]);
        __m512i u0 = _mm512_unpacklo_epi64(t0, t2), u1 = _mm512_unpackhi_epi64(t0, t2);
        __m512i u2 = _mm512_unpacklo_epi64(t1, t3), u3 = _mm512_unpackhi_epi64(t1, t3);
        __m512i v0 = _mm512_shuffle_i32x4(u0, u1, 0x44), v1 = _mm512_shuffle_i32x4(u2, u3, 0x44);
        __m512i v2 = _mm512_shuffle_i32x4(u0, u1, 0xEE), v3 = _mm512_shuffle_i32x4(u2, u3, 0xEE);
        __m512i o[4] = {_mm512_shuffle_i32x4(v0, v1, 0x88), _mm512_shuffle_i32x4(v0, v1, 0xDD),
                        _mm512_shuffle_i32x4(v2, v3, 0x88), _mm512_shuffle_i32x4(v2, v3, 0xDD)};
        size_t m = n - b0 < 16 ? n - b0 : 16; /* blocks of this group to keep */
        for (size_t k = 0; k < 4 && 4 * k < m; k++) {
            size_t keep = m - 4 * k >= 4 ? 16 : 4 * (m - 4 * k); /* words */
            _mm512_mask_storeu_epi32(out + 4 * (b0 + 4 * k), (__mmask16)((1u << keep) - 1u), o[k]);
        }
    }
}

/* Four groups (64 blocks) per pass while they last, then one group at a
 * time, so a row of 196 blocks computes 208, not 256. */
static void philox_n_avx512(uint64_t key, uint64_t ctr0, size_t n, uint32_t *restrict out) {
    size_t base = 0;
    for (; base + 64 <= n; base += 64) philox_pass(key, ctr0, n, base, out, 4);
    for (; base < n; base += 16) philox_pass(key, ctr0, n, base, out, 1);
}
#endif

void soma__philox_n(uint64_t key, uint64_t ctr0, size_t n, uint32_t *restrict out) {
#if defined(__AVX512F__)
    philox_n_avx512(key, ctr0, n, out);
#else
    philox_n_c(key, ctr0, n, out);
#endif
}

/* One splitmix64 step (add the golden gamma, then the finaliser): turns
 * (seed, stream) into a well-mixed key. */
static uint64_t splitmix64(uint64_t z) { return soma__mix64(z + 0x9E3779B97F4A7C15ull); }

void soma_rng_init(soma_rng *rng, uint64_t seed, uint64_t stream) {
    rng->key = splitmix64(seed ^ splitmix64(stream));
    rng->counter = 0;
    rng->avail = 0;
}

uint32_t soma_rng_u32(soma_rng *rng) {
    if (rng->avail == 0) {
        soma_philox(rng->key, rng->counter++, rng->buf);
        rng->avail = 4;
    }
    return rng->buf[4 - rng->avail--];
}

float soma_rng_uniform(soma_rng *rng) { return soma_u32_to_unit(soma_rng_u32(rng)); }
