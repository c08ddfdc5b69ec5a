/* sim_poisson.c — Poisson spike generator, an input pseudo-model of the
 * event-driven simulator.
 *
 * Each neuron spikes in a step with probability p = rate dt / 1000 (rate
 * in Hz, dt in ms), independently across neurons and steps: the Bernoulli
 * approximation of a Poisson process on the grid, at most one spike per
 * step (NEST's poisson_generator draws a Poisson count per step instead;
 * the two differ by O((rate dt)^2) per step, 1e-6 at 10 Hz, dt 0.1 ms). The
 * external input, if any, is a rate (Hz) added to `rate` (negative totals
 * give no spikes). The draw is u = soma__hash_unit(rng_key, neuron, step)
 * (24 bits), a spike when u < p, so the spikes depend only on (key, neuron,
 * step), never on how the neurons are split among threads. No ports, no
 * state.
 */
#include "core/rng.h"
#include "models/sim_common.h"

enum { P_RATE, N_P };
static const soma_param_desc params[] = {
    {"rate", 0.0f, 0.0f, 1e9f, "Hz", 0, NULL, "firing rate"},
};

enum { D_P, N_D };

static void prepare(const float *const *prm, size_t N, float dt, int uniform, float *const *drv) {
    for (size_t j = 0; j < soma__sim_count(N, uniform); j++)
        drv[D_P][j] = (float)((double)prm[P_RATE][j] * dt * 1e-3);
}

SIM_INLINE void row(const int U, const int E, const soma_sim_args *a, uint8_t *restrict spk, size_t i0,
                    size_t i1) {
    const float *restrict ext = a->ext;
    const float k = a->dt * 1e-3f;
    SIM_ARR(P, a->drv[D_P]);
    for (size_t i = i0; i < i1; i++) {
        float p = SIM_AT(P) + (E ? ext[i] * k : 0.0f);
        spk[i] = (uint8_t)(soma__hash_unit(a->rng_key, i, a->step) < p);
    }
}

static void step(const soma_sim_args *a, float *const *state, float *const *in, uint8_t *spk, size_t i0,
                 size_t i1) {
    (void)state, (void)in;
#define ROW(U, E) row(U, E, a, spk, i0, i1)
    SIM_DISPATCH(a, ROW);
#undef ROW
}

const soma_model soma__model_poisson = {
    .name = "poisson",
    .params = params,
    .n_params = N_P,
    .n_state = 0,
    .spiking = 1,
    .n_ports = 0,
    .weight_unit = "",
    .n_derived = N_D,
    .prepare = prepare,
    .sim_step = step,
};
