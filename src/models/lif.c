/* lif.c — leaky integrate-and-fire neuron in discrete time ("Leaky" in snnTorch).
 *
 *   reset by subtraction (default):  U[t] = beta*U[t-1] + I[t] - R[t]*theta
 *   reset to zero:                   U[t] = beta*(1 - R[t])*U[t-1] + I[t]
 *   spike:                           S[t] = H(U[t] - theta)
 *   reset signal:                    R[t] = H(U[t-1] - theta), detached from the graph
 *
 * beta in [0,1] is the membrane decay per step, theta the threshold. Both may
 * be learned (per layer or per neuron). Backward uses a surrogate dS/dU at
 * U - theta; the reset signal R carries no gradient (the convention of
 * snnTorch and most BPTT SNN work), but theta does get the gradient of the
 * term R*theta. Source: Eshraghian et al., "Training spiking neural networks
 * using lessons from deep learning", Proc. IEEE 2023.
 *
 * The decay may instead be stated physically, as the membrane time constant
 * tau_m (ms) of the net's time step dt: prepare derives
 *   beta = (float)exp(-dt/tau_m)   (dt, tau_m widened to double, one rounding)
 * so tau_m 10 ms at dt 1 ms runs bit for bit as beta = (float)exp(-0.1),
 * which may differ by one ulp from expf(-0.1f). tau_m = 0 (the default)
 * means "not set": beta is used as given. Both at once is refused (check):
 * beta away from its default, or learned, next to a tau_m.
 */
#include <math.h>
#include <stdio.h>
#include "models/model.h"

enum { P_BETA, P_THETA, P_RESET, P_TAU_M };
enum { D_BETA, N_D }; /* the decay per step the loops use */
static const char *const reset_names[] = {"subtract", "zero", NULL};
static const soma_param_desc params[] = {
    {"beta", 0.95f, 0.0f, 1.0f, "", 1, NULL, "membrane decay per step"},
    {"threshold", 1.0f, 1e-6f, 1e6f, "", 1, NULL, "firing threshold"},
    {"reset", 0.0f, 0.0f, 1.0f, "", 0, reset_names, "reset mechanism: subtract or zero"},
    {"tau_m", 0.0f, 0.0f, 1e9f, "ms", 0, NULL, "membrane time constant, instead of beta (0: use beta)"},
};

/* beta per neuron: from tau_m where set, else the beta parameter (which
 * may be learned: then the trainer prepares again after each step). */
static void prepare(const float *const *prm, size_t N, float dt, int uniform, float *const *drv) {
    for (size_t j = 0; j < (uniform ? 1 : N); j++) {
        double tau = prm[P_TAU_M][j];
        drv[D_BETA][j] = tau > 0.0 ? (float)exp(-(double)dt / tau) : prm[P_BETA][j];
    }
}

/* One decay, stated once: tau_m next to a set or learned beta is refused
 * rather than one silently winning. A beta at its default counts as unset
 * (a population's set values do not record which were written). */
static int check(const float *prm, const soma_learn *learn, char *err, size_t cap) {
    if (!(prm[P_TAU_M] > 0.0f)) return SOMA_STATUS_OK;
    if (learn[P_BETA] != SOMA_LEARN_NONE) {
        snprintf(err, cap, "beta cannot be learned when tau_m (%g ms) sets it; learn neither or drop tau_m",
                 (double)prm[P_TAU_M]);
        return SOMA_STATUS_INVALID;
    }
    if (prm[P_BETA] != params[P_BETA].def) {
        snprintf(err, cap, "beta (%g) and tau_m (%g ms) both set; give one (beta = exp(-dt/tau_m))",
                 (double)prm[P_BETA], (double)prm[P_TAU_M]);
        return SOMA_STATUS_INVALID;
    }
    return SOMA_STATUS_OK;
}
static const char *const state_names[] = {"v"};

static void lif_forward(const soma_model_args *a, const float *const *prev, float *const *cur, float *s,
                        const float *in, size_t B, size_t N) {
    const float *restrict beta = a->drv[D_BETA], *restrict th = a->prm[P_THETA];
    for (size_t b = 0; b < B; b++) {
        const float *restrict up = prev[0] + b * N, *restrict x = in + b * N;
        float *restrict u = cur[0] + b * N, *restrict sp = s + b * N;
        if (a->reset == 0) {
            for (size_t j = 0; j < N; j++) {
                float r = up[j] > th[j] ? th[j] : 0.0f;
                float v = beta[j] * up[j] + x[j] - r;
                u[j] = v;
                sp[j] = v > th[j] ? 1.0f : 0.0f;
            }
        } else {
            for (size_t j = 0; j < N; j++) {
                float keep = up[j] > th[j] ? 0.0f : beta[j];
                float v = keep * up[j] + x[j];
                u[j] = v;
                sp[j] = v > th[j] ? 1.0f : 0.0f;
            }
        }
    }
}

/* One row of the backward step for surrogate `sur` (a constant after
 * inlining). e = dL/dS * dS/dU, the gradient reaching U through this step's
 * spike; d = dL/dU; the carry to t-1 is beta*d (0 after a reset to zero). */
static inline __attribute__((always_inline)) void lif_bwd_row(int sur, float sp, int sub, float keep,
                                                              float *restrict e, float *restrict dd,
                                                              float *restrict g, float *restrict gi,
                                                              const float *restrict gs, const float *restrict u,
                                                              const float *restrict up, const float *restrict beta,
                                                              const float *restrict th, size_t N) {
    if (sub)
        for (size_t j = 0; j < N; j++) {
            float ej = gs[j] * soma__surrogate(sur, sp, u[j] - th[j]);
            float d = g[j] + ej;
            e[j] = ej, dd[j] = d;
            gi[j] = keep != 0.0f ? gi[j] + d : d;
            g[j] = beta[j] * d;
        }
    else
        for (size_t j = 0; j < N; j++) {
            float ej = gs[j] * soma__surrogate(sur, sp, u[j] - th[j]);
            float d = g[j] + ej;
            e[j] = ej, dd[j] = d;
            gi[j] = keep != 0.0f ? gi[j] + d : d;
            g[j] = (up[j] > th[j] ? 0.0f : beta[j]) * d;
        }
}

static void lif_backward(const soma_model_args *a, const float *const *prev, const float *const *cur,
                         float *const *dstate, const float *ds, const float *dv, float *din,
                         float *const *dprm, size_t B, size_t N) {
    const float *restrict beta = a->drv[D_BETA], *restrict th = a->prm[P_THETA];
    float *restrict e = a->scratch, *restrict dd = a->scratch + N;
    float *restrict dbeta = dprm[P_BETA], *restrict dth = dprm[P_THETA];
    const int sub = a->reset == 0;
    const float sp = a->surrogate_param, keep = a->din_accumulate ? 1.0f : 0.0f;
    for (size_t b = 0; b < B; b++) {
        const float *restrict up = prev[0] + b * N, *restrict u = cur[0] + b * N, *restrict gs = ds + b * N;
        float *restrict g = dstate[0] + b * N, *restrict gi = din + b * N;
        if (dv)
            for (size_t j = 0; j < N; j++) g[j] += dv[b * N + j];
#define ROW(S) lif_bwd_row(S, sp, sub, keep, e, dd, g, gi, gs, u, up, beta, th, N)
        SOMA_SURROGATE_DISPATCH(a->surrogate, ROW);
#undef ROW
        if (dbeta) {
            if (sub)
                for (size_t j = 0; j < N; j++) dbeta[j] += dd[j] * up[j];
            else
                for (size_t j = 0; j < N; j++) dbeta[j] += up[j] > th[j] ? 0.0f : dd[j] * up[j];
        }
        if (dth) {
            /* theta enters through the spike (-e) and, with subtraction, the reset term -R*theta. */
            if (sub)
                for (size_t j = 0; j < N; j++) dth[j] -= e[j] + (up[j] > th[j] ? dd[j] : 0.0f);
            else
                for (size_t j = 0; j < N; j++) dth[j] -= e[j];
        }
    }
}

const soma_model soma__model_lif = {
    .name = "lif",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .n_state = 1,
    .state_names = state_names,
    .spiking = 1,
    .forward = lif_forward,
    .backward = lif_backward,
    .n_derived = N_D,
    .prepare = prepare,
    .check = check,
};
