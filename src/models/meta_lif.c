/* meta_lif.c — LIF with learnable intrinsic parameters (the "meta neuron")
 * and an optional probabilistic firing mode.
 *
 *   reset signal:   R[t] = S[t-1], the previous spike, detached from the graph
 *   membrane:       U[t] = (1 - R[t])*beta*U[t-1] + R[t]*u_reset + I[t]
 *   deterministic (temperature = 0):
 *                   S[t] = H(U[t] - theta), backward with the configured surrogate dS/dU
 *   probabilistic (temperature T > 0):
 *                   p[t] = sigmoid((U[t] - theta)/T),  S[t] ~ Bernoulli(p[t])
 *                   backward: straight-through estimator dS/dU := dp/dU = p(1-p)/T
 *                   (the score-function / REINFORCE estimator is not used)
 *
 * beta, theta and u_reset may all be learned per layer or per neuron:
 *   dL/du_reset = R*dL/dU, dL/dbeta = (1-R)*U[t-1]*dL/dU, dL/dtheta = -dL/dS * dS/dU
 * (R is detached, so theta gets no gradient through the reset).
 *
 * Random draws: the uniform for (batch row r, step t, neuron j) is word j%4 of
 * soma_philox(rng_key + r * 0x9E3779B97F4A7C15, t * ceil(N/4) + j/4), r = row0 + b:
 * one Philox key per row and a counter per (step, neuron group), so spikes
 * depend only on (rng_key, r, t, j) — not on threads or chunking — and no
 * two (r, t, j) share a draw for any number of steps. With only
 * the membrane in the state, R[t] in probabilistic mode is recomputed by
 * redrawing S[t-1] from U[t-1] with the same counter (step - 1), by the same
 * function that drew it; at step 0 the state is the rest state and R = 0.
 * Neurons with temperature 0 in a probabilistic layer fire deterministically.
 * Source: learnable intrinsic parameters (beta, theta, reset) as in the "meta
 * neuron" work listed in MODELS.md; the probabilistic variant with
 * p = sigmoid((U - theta)/T) is inferred there, not taken from a paper.
 */
#include <math.h>
#include "models/model.h"

enum { P_BETA, P_THETA, P_URESET, P_TEMP };
static const soma_param_desc params[] = {
    {"beta", 0.95f, 0.0f, 1.0f, "", 1, NULL, "membrane decay per step"},
    {"threshold", 1.0f, 1e-6f, 1e6f, "", 1, NULL, "firing threshold"},
    {"u_reset", 0.0f, -1e6f, 1e6f, "", 1, NULL, "membrane value after a spike"},
    {"temperature", 0.0f, 0.0f, 1e3f, "", 0, NULL, "firing temperature: 0 deterministic, > 0 Bernoulli(sigmoid((U-theta)/T))"},
};
static const char *const state_names[] = {"v"};

/* 1 if any neuron of the layer fires probabilistically. */
static int any_prob(const float *temp, size_t N) {
    int p = 0;
    for (size_t j = 0; j < N; j++) p |= temp[j] > 0.0f;
    return p;
}

/* Spikes of one row at step `step` from membrane u. Both the forward draw and
 * the recomputed reset signal of the next step go through this one function,
 * so they are bit-identical. */
static __attribute__((noinline)) void prob_row(uint64_t key, size_t row, size_t step, const float *restrict u,
                                               const float *restrict th, const float *restrict temp,
                                               float *restrict out, size_t N) {
    size_t G = (N + 3) / 4;
    uint64_t rkey = key + (uint64_t)row * 0x9E3779B97F4A7C15ull, ctr0 = (uint64_t)step * (uint64_t)G;
    for (size_t k = 0; k < G; k++) {
        uint32_t w[4];
        soma_philox(rkey, ctr0 + k, w);
        size_t end = 4 * k + 4 < N ? 4 * k + 4 : N;
        for (size_t j = 4 * k; j < end; j++) {
            float x = u[j] - th[j];
            float invT = temp[j] > 0.0f ? 1.0f / temp[j] : 0.0f;
            float p = 1.0f / (1.0f + expf(-x * invT));
            float det = x > 0.0f ? 1.0f : 0.0f, sto = soma_u32_to_unit(w[j & 3]) < p ? 1.0f : 0.0f;
            out[j] = temp[j] > 0.0f ? sto : det;
        }
    }
}

/* Reset signal R[t] of one row (0/1) into r. */
static void reset_row(const soma_model_args *a, int prob, size_t b, const float *restrict up,
                      const float *restrict th, const float *restrict temp, float *restrict r, size_t N) {
    if (!prob || a->step == 0) {
        if (!prob)
            for (size_t j = 0; j < N; j++) r[j] = up[j] > th[j] ? 1.0f : 0.0f;
        else /* step 0: U[-1] is the rest state; deterministic neurons still follow H */
            for (size_t j = 0; j < N; j++) r[j] = temp[j] > 0.0f ? 0.0f : (up[j] > th[j] ? 1.0f : 0.0f);
    } else
        prob_row(a->rng_key, a->row0 + b, a->step - 1, up, th, temp, r, N);
}

static void meta_forward(const soma_model_args *a, const float *const *prev, float *const *cur, float *s,
                         const float *in, size_t B, size_t N) {
    const float *restrict beta = a->prm[P_BETA], *restrict th = a->prm[P_THETA];
    const float *restrict ur = a->prm[P_URESET], *restrict temp = a->prm[P_TEMP];
    const int prob = any_prob(temp, N);
    float *restrict r = a->scratch;
    for (size_t b = 0; b < B; b++) {
        const float *restrict up = prev[0] + b * N, *restrict x = in + b * N;
        float *restrict u = cur[0] + b * N, *restrict sp = s + b * N;
        if (!prob) {
            for (size_t j = 0; j < N; j++) {
                float v = (up[j] > th[j] ? ur[j] : beta[j] * up[j]) + x[j];
                u[j] = v;
                sp[j] = v > th[j] ? 1.0f : 0.0f;
            }
        } else {
            reset_row(a, prob, b, up, th, temp, r, N);
            for (size_t j = 0; j < N; j++) u[j] = (r[j] != 0.0f ? ur[j] : beta[j] * up[j]) + x[j];
            prob_row(a->rng_key, a->row0 + b, a->step, u, th, temp, sp, N);
        }
    }
}

/* dS/dU of one neuron: the surrogate, or p(1-p)/T for a probabilistic neuron. */
static inline __attribute__((always_inline)) float meta_dsdu(int sur, float sp, int prob, float x, float T) {
    float g = soma__surrogate(sur, sp, x);
    if (!prob) return g;
    float invT = T > 0.0f ? 1.0f / T : 0.0f;
    float p = 1.0f / (1.0f + expf(-x * invT));
    return T > 0.0f ? p * (1.0f - p) * invT : g;
}

/* One row of the backward step for surrogate `sur` (a constant after
 * inlining). r holds R[t] on entry and dL/dU[t] (d) on exit; d = dL/dU[t]
 * (incoming carry plus this step's spike term); the carry to t-1 is (1-R)*beta*d. */
static inline __attribute__((always_inline)) void meta_bwd_row(int sur, float sp, int prob, float keep,
                                                               float *restrict r, float *restrict dd,
                                                               float *restrict g, float *restrict gi,
                                                               const float *restrict gs, const float *restrict u,
                                                               const float *restrict beta, const float *restrict th,
                                                               const float *restrict temp, float *restrict dth,
                                                               size_t N) {
    for (size_t j = 0; j < N; j++) {
        float ej = gs[j] * meta_dsdu(sur, sp, prob, u[j] - th[j], temp[j]);
        float d = g[j] + ej;
        dd[j] = d;
        gi[j] = keep != 0.0f ? gi[j] + d : d;
        g[j] = (r[j] != 0.0f ? 0.0f : beta[j]) * d;
    }
    if (dth)
        for (size_t j = 0; j < N; j++) dth[j] -= gs[j] * meta_dsdu(sur, sp, prob, u[j] - th[j], temp[j]);
}

static void meta_backward(const soma_model_args *a, const float *const *prev, const float *const *cur,
                          float *const *dstate, const float *ds, const float *dv, float *din,
                          float *const *dprm, size_t B, size_t N) {
    const float *restrict beta = a->prm[P_BETA], *restrict th = a->prm[P_THETA];
    const float *restrict temp = a->prm[P_TEMP];
    float *restrict r = a->scratch, *restrict dd = a->scratch + N;
    float *restrict dbeta = dprm[P_BETA], *restrict dth = dprm[P_THETA], *restrict dur = dprm[P_URESET];
    const int prob = any_prob(temp, N);
    const float sp = a->surrogate_param, keep = a->din_accumulate ? 1.0f : 0.0f;
    for (size_t b = 0; b < B; b++) {
        const float *restrict up = prev[0] + b * N, *restrict u = cur[0] + b * N, *restrict gs = ds + b * N;
        float *restrict g = dstate[0] + b * N, *restrict gi = din + b * N;
        if (dv)
            for (size_t j = 0; j < N; j++) g[j] += dv[b * N + j];
        reset_row(a, prob, b, up, th, temp, r, N);
#define ROW(S) meta_bwd_row(S, sp, prob, keep, r, dd, g, gi, gs, u, beta, th, temp, dth, N)
        SOMA_SURROGATE_DISPATCH(a->surrogate, ROW);
#undef ROW
        if (dbeta)
            for (size_t j = 0; j < N; j++) dbeta[j] += r[j] != 0.0f ? 0.0f : dd[j] * up[j];
        if (dur)
            for (size_t j = 0; j < N; j++) dur[j] += r[j] != 0.0f ? dd[j] : 0.0f;
    }
}

const soma_model soma__model_meta_lif = {
    .name = "meta_lif",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .n_state = 1,
    .state_names = state_names,
    .spiking = 1,
    .forward = meta_forward,
    .backward = meta_backward,
};
