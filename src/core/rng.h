/* rng.h — internal additions to the counter-based RNG of soma.h. */
#ifndef SOMA_RNG_H
#define SOMA_RNG_H
#include <stddef.h>
#include <stdint.h>

/* Blocks (key, ctr0 .. ctr0+n-1) of Philox-4x32-10 into out[4n], equal word
 * for word to n calls of soma_philox. */
void soma__philox_n(uint64_t key, uint64_t ctr0, size_t n, uint32_t *out);

/* A fast keyed hash for per-neuron, per-step noise in the simulator
 * (splitmix64's finaliser, Steele et al. 2014): each neuron is one splitmix64
 * stream seeded by mix(key ^ id), so a draw depends only on (key, id, step),
 * never on the thread that makes it. */
static inline uint64_t soma__mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static inline uint64_t soma__hash64(uint64_t key, uint64_t id, uint64_t step) {
    return soma__mix64(soma__mix64(key ^ (id * 0xd1b54a32d192ed03ULL)) + (step + 1) * 0x9e3779b97f4a7c15ULL);
}
/* Uniform in [0, 1) with 24 bits, from (key, id, step). */
static inline float soma__hash_unit(uint64_t key, uint64_t id, uint64_t step) {
    return (float)(soma__hash64(key, id, step) >> 40) * (1.0f / 16777216.0f);
}
#endif
