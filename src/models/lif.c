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
 */
#include "models/model.h"

enum { P_BETA, P_THETA, P_RESET };
static const char *const reset_names[] = {"subtract", "zero", NULL};
static const soma_param_desc params[] = {
    {"beta", 0.95f, 0.0f, 1.0f, "", 1, NULL, "membrane decay per step"},
    {"threshold", 1.0f, 1e-6f, 1e6f, "", 1, NULL, "firing threshold"},
    {"reset", 0.0f, 0.0f, 1.0f, "", 0, reset_names, "reset mechanism: subtract or zero"},
};
static const char *const state_names[] = {"v"};

static void lif_forward(const soma_model_args *a, const float *const *prev, float *const *cur, float *s,
                        const float *in, size_t B, size_t N) {
    const float *restrict beta = a->prm[P_BETA], *restrict th = a->prm[P_THETA];
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
    const float *restrict beta = a->prm[P_BETA], *restrict th = a->prm[P_THETA];
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
};
