/* rng.h — internal additions to the counter-based RNG of soma.h. */
#ifndef SOMA_RNG_H
#define SOMA_RNG_H
#include <stddef.h>
#include <stdint.h>

/* Blocks (key, ctr0 .. ctr0+n-1) of Philox-4x32-10 into out[4n], equal word
 * for word to n calls of soma_philox. */
void soma__philox_n(uint64_t key, uint64_t ctr0, size_t n, uint32_t *out);
#endif
