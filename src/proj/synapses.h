/* synapses.h — one projection's synapses as the simulator draws them
 * (synapses.c): the keys its streams use and the weight of each synapse,
 * shared by the simulator (sim.c) and by the trainer, which instantiates a
 * sparse projection as a dense matrix with a mask (train/sparse.c). Both
 * enumerate through soma__connect_each with the same key, so equal seeds
 * give the same synapses. */
#ifndef SOMA_SYNAPSES_H
#define SOMA_SYNAPSES_H
#include <stddef.h>
#include <stdint.h>
#include "core/rng.h"
#include "net/net.h"

/* What a key draws: population values, a projection's connectivity, its
 * per-synapse weights and delays, a Poisson input, neuron noise. */
enum { SOMA__KEY_POP = 1, SOMA__KEY_CONN, SOMA__KEY_WEIGHT, SOMA__KEY_DELAY, SOMA__KEY_DRIVE, SOMA__KEY_NOISE };

/* The key of stream (kind, index) under a run's seed (the simulator's
 * simulate.seed; the trainer's training seed). */
static inline uint64_t soma__sim_key(uint64_t seed, uint64_t kind, uint64_t index) {
    return soma__mix64(soma__mix64(seed * 0x9e3779b97f4a7c15ULL + kind) ^
                       (index * 0xc2b2ae3d27d4eb4fULL + 0x165667b19e3779f9ULL));
}

/* The weight of synapse `edge` of sparse projection pr: the edge list's
 * column when the file has one (w_file), else pr's weight expression drawn
 * with kw = soma__sim_key(seed, SOMA__KEY_WEIGHT, projection index). */
static inline double soma__syn_weight(const soma__proj *pr, uint64_t kw, uint64_t edge, const double *w_file) {
    return w_file ? *w_file : soma__expr_eval(pr->wv.e, kw, edge, 0) * pr->wv.scale;
}

/* Instantiate sparse projection i of net with `seed` as the simulator
 * would: W [to.size][from.size] gets each synapse's weight (multapses
 * summed), mask the same shape gets 1 where at least one synapse exists,
 * 0 elsewhere. Synapses whose delay is not one time step are refused
 * (the trainer feeds a projection within the step): SOMA_STATUS_UNSUPPORTED
 * with the projection and the delay in err. Other errors as
 * soma__connect_each. */
int soma__proj_instantiate(const soma_net *net, size_t i, uint64_t seed, float *W, uint8_t *mask, char *err,
                           size_t errlen);
#endif
