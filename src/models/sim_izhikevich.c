/* sim_izhikevich.c — Izhikevich's simple spiking neuron (E. M. Izhikevich,
 * "Simple model of spiking neurons", IEEE Trans. Neural Networks 14:1569,
 * 2003), for the event-driven simulator.
 *
 *   dv/dt = 0.04 v^2 + 5 v + 140 - u + I,   du/dt = a (b v - u)
 *   v >= v_peak: spike, v = c, u = u + d
 *   I = I_e + I_ext + (weights arriving this step, both ports) + noise
 *
 * Units: the paper's: t in ms, v and c in mV, and u, d, I, weights and
 * noise_sigma in its own current units (mV/ms), written as dimensionless
 * (""); a is per ms. Defaults are the paper's regular-spiking cell: a 0.02,
 * b 0.2, c -65 mV, d 8, v_peak 30 mV (fast spiking: a 0.1, d 2).
 *
 * The scheme is the paper's MATLAB code generalised to a step dt (the paper
 * has dt = 1 ms and 2 substeps):
 *   v += h (0.04 v^2 + 5 v + 140 - u + I), substeps times, h = dt/substeps
 *     ("for numerical stability": the quadratic term makes one Euler step
 *     of 1 ms overshoot)
 *   u += dt a (b v - u)            (with the new v, as the paper)
 *   v >= v_peak: spike, v = c, u += d
 * The paper resets at the start of the next step (fired = find(v >= 30)
 * before integrating); soma resets at the end of the spiking step, which is
 * the same dynamics, and its shortest delay (one step) makes a spike reach
 * its targets in the step the paper adds S(:, fired) to I.
 *
 * I is a current for this step: the summed weights of the inputs that
 * arrive now (the paper's I = I + sum(S(:, fired), 2)), plus I_e and the
 * external input (read in the paper's units), plus a Gaussian noise drawn
 * anew in every step with standard deviation noise_sigma (the paper's
 * thalamic input 5 randn for excitatory, 2 randn for inhibitory cells, drawn
 * once per 1 ms step; at another dt the same sigma gives a noise of another
 * strength). The draw is Box-Muller from soma__hash64(rng_key, neuron,
 * step): u1 = (top 24 bits + 1)/2^24 in (0, 1], u2 = (next 24 bits)/2^24,
 * z = sqrt(-2 ln u1) cos(2 pi u2), so it does not depend on threads.
 *
 * Ports e and i are summed alike (the paper's S has signed entries); two of
 * them so that a projection split by sign works as for the other models.
 * substeps may differ per neuron (a neuron skips the substeps beyond its
 * own). sim_init sets v = -65 mV and u = b v, as the paper (which starts
 * every cell at -65 whatever its c).
 *
 * State: v (mV), u (the paper's units).
 */
#include "core/rng.h"
#include "models/sim_common.h"

enum { P_A, P_B, P_C, P_D, P_V_PEAK, P_I_E, P_SIGMA, P_SUBSTEPS, N_P };
static const soma_param_desc params[] = {
    {"a", 0.02f, 0.0f, 1e3f, "", 0, NULL, "recovery rate (per ms)"},
    {"b", 0.2f, -1e3f, 1e3f, "", 0, NULL, "sensitivity of u to v"},
    {"c", -65.0f, -1e4f, 1e4f, "mV", 0, NULL, "reset potential"},
    {"d", 8.0f, -1e6f, 1e6f, "", 0, NULL, "jump of u at a spike"},
    {"v_peak", 30.0f, -1e4f, 1e4f, "mV", 0, NULL, "spike cutoff (spike when v >= v_peak)"},
    {"I_e", 0.0f, -1e9f, 1e9f, "", 0, NULL, "constant input current (paper's units)"},
    {"noise_sigma", 0.0f, 0.0f, 1e9f, "", 0, NULL, "std of a Gaussian input current drawn each step"},
    {"substeps", 2.0f, 1.0f, 1000.0f, "", 0, NULL, "Euler substeps of v per step (rounded)"},
};
static const char *const state_names[] = {"v", "u"};
static const char *const state_units[] = {"mV", ""};
static const char *const port_names[] = {"e", "i"};

/* D_NMAX and D_NOISE hold the same value in every entry: the largest
 * substep count and whether any neuron has noise. */
enum { D_H, D_NSUB, D_ADT, D_NMAX, D_NOISE, N_D };

static void prepare(const float *const *prm, size_t N, float dt, int uniform, float *const *drv) {
    size_t n = soma__sim_count(N, uniform);
    float nmax = 1.0f, noise = 0.0f;
    for (size_t j = 0; j < n; j++) {
        float ns = floorf(prm[P_SUBSTEPS][j] + 0.5f);
        ns = ns < 1.0f ? 1.0f : ns;
        drv[D_H][j] = (float)((double)dt / ns);
        drv[D_NSUB][j] = ns;
        drv[D_ADT][j] = (float)((double)prm[P_A][j] * dt);
        nmax = ns > nmax ? ns : nmax;
        if (prm[P_SIGMA][j] != 0.0f) noise = 1.0f;
    }
    for (size_t j = 0; j < n; j++) drv[D_NMAX][j] = nmax, drv[D_NOISE][j] = noise;
}

static void init(const float *const *prm, float *const *state, size_t N) {
    for (size_t j = 0; j < N; j++) state[0][j] = -65.0f, state[1][j] = prm[P_B][j] * -65.0f;
}

/* A standard normal number from one 64-bit hash (Box-Muller). */
static inline float gauss(uint64_t key, uint64_t id, uint64_t step) {
    uint64_t h = soma__hash64(key, id, step);
    float u1 = (float)((h >> 40) + 1) * (1.0f / 16777216.0f);
    float u2 = (float)((h >> 16) & 0xffffffu) * (1.0f / 16777216.0f);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958648f * u2);
}

#define BLOCK 256

/* Neurons [i0, i1) (at most BLOCK): the substeps run as separate passes over
 * the block (v kept in the state array) so that every pass vectorizes. */
SIM_INLINE void row(const int U, const int E, const int Z, const soma_sim_args *a, float *const *st,
                    float *const *in, uint8_t *restrict spk, size_t i0, size_t i1) {
    float *restrict v = st[0], *restrict u = st[1];
    float *restrict we = in[0], *restrict wi = in[1];
    const float *restrict ext = a->ext;
    float I[BLOCK];
    SIM_ARR(H, a->drv[D_H]);
    SIM_ARR(NS, a->drv[D_NSUB]);
    SIM_ARR(ADT, a->drv[D_ADT]);
    SIM_ARR(IE, a->prm[P_I_E]);
    SIM_ARR(SG, a->prm[P_SIGMA]);
    SIM_ARR(B, a->prm[P_B]);
    SIM_ARR(C, a->prm[P_C]);
    SIM_ARR(D, a->prm[P_D]);
    SIM_ARR(VP, a->prm[P_V_PEAK]);
    const int nmax = (int)a->drv[D_NMAX][0];
    for (size_t i = i0; i < i1; i++) {
        I[i - i0] = SIM_AT(IE) + (E ? ext[i] : 0.0f) + we[i] + wi[i];
        we[i] = 0.0f;
        wi[i] = 0.0f;
    }
    if (Z)
        for (size_t i = i0; i < i1; i++) I[i - i0] += SIM_AT(SG) * gauss(a->rng_key, i, a->step);
    for (int k = 0; k < nmax; k++)
        for (size_t i = i0; i < i1; i++) {
            float x = v[i], h = SIM_AT(H);
            float xn = x + h * ((0.04f * x + 5.0f) * x + 140.0f - u[i] + I[i - i0]);
            v[i] = U || (float)k < NS[i] ? xn : x;
        }
    for (size_t i = i0; i < i1; i++) {
        float x = v[i], y = u[i];
        y += SIM_AT(ADT) * (SIM_AT(B) * x - y);
        int s = x >= SIM_AT(VP);
        v[i] = s ? SIM_AT(C) : x;
        u[i] = s ? y + SIM_AT(D) : y;
        spk[i] = (uint8_t)s;
    }
}

static void step(const soma_sim_args *a, float *const *state, float *const *in, uint8_t *spk, size_t i0,
                 size_t i1) {
    const int noise = a->drv[D_NOISE][0] != 0.0f;
    for (size_t b0 = i0; b0 < i1; b0 += BLOCK) {
        size_t b1 = i1 - b0 > BLOCK ? b0 + BLOCK : i1;
#define ROW(U, E)                                              \
    do {                                                       \
        if (noise) row(U, E, 1, a, state, in, spk, b0, b1);   \
        else row(U, E, 0, a, state, in, spk, b0, b1);         \
    } while (0)
        SIM_DISPATCH(a, ROW);
#undef ROW
    }
}

const soma_model soma__model_izhikevich = {
    SIM_MODEL_FIELDS("izhikevich", 2, ""),
};
