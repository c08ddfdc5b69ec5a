/* rng.c — Philox-4x32-10 counter-based random numbers (Salmon et al., SC'11).
 * A value depends only on (key, counter), so streams can be split by sample,
 * neuron or step and computed on any thread in any order with identical
 * results. */
#include "soma.h"
#include "core/rng.h"

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
 * as soma_philox, computed lane-parallel so the compiler can vectorize the
 * rounds across blocks (one block alone is a chain of dependent multiplies). */
void soma__philox_n(uint64_t key, uint64_t ctr0, size_t n, uint32_t *restrict out) {
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

/* splitmix64 finaliser: turns (seed, stream) into a well-mixed key. */
static uint64_t mix64(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void soma_rng_init(soma_rng *rng, uint64_t seed, uint64_t stream) {
    rng->key = mix64(seed ^ mix64(stream));
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
