/* synaptic.c — current-based (CuBa) LIF: a synaptic current that decays with
 * alpha feeds a leaky membrane ("Synaptic" in snnTorch).
 *
 *   syn[t] = alpha*syn[t-1] + I[t]
 *   reset by subtraction (default):  U[t] = beta*U[t-1] + syn[t] - R[t]*theta
 *   reset to zero:                   U[t] = beta*(1 - R[t])*U[t-1] + syn[t]
 *   S[t] = H(U[t] - theta),  R[t] = H(U[t-1] - theta) (detached)
 *
 * Reset to zero clears only the membrane, not the synaptic current, as in
 * snnTorch. alpha, beta and theta may be learned. State 0 is U, state 1 syn.
 */
#include "models/model.h"

enum { P_ALPHA, P_BETA, P_THETA, P_RESET };
static const char *const reset_names[] = {"subtract", "zero", NULL};
static const soma_param_desc params[] = {
    {"alpha", 0.9f, 0.0f, 1.0f, "", 1, NULL, "synaptic current decay per step"},
    {"beta", 0.95f, 0.0f, 1.0f, "", 1, NULL, "membrane decay per step"},
    {"threshold", 1.0f, 1e-6f, 1e6f, "", 1, NULL, "firing threshold"},
    {"reset", 0.0f, 0.0f, 1.0f, "", 0, reset_names, "reset mechanism: subtract or zero"},
};
static const char *const state_names[] = {"v", "syn"};

/* One row of neurons; a separate function so that restrict on its
 * parameters lets the compiler vectorize without alias checks. */
static void syn_row(float *restrict u, float *restrict i, float *restrict sp, const float *restrict up,
                    const float *restrict ip, const float *restrict x, const float *restrict alpha,
                    const float *restrict beta, const float *restrict th, int reset, size_t N) {
    if (reset == 0) {
        for (size_t j = 0; j < N; j++) {
            float c = alpha[j] * ip[j] + x[j];
            float r = up[j] > th[j] ? th[j] : 0.0f;
            float v = beta[j] * up[j] + c - r;
            i[j] = c;
            u[j] = v;
            sp[j] = v > th[j] ? 1.0f : 0.0f;
        }
    } else {
        for (size_t j = 0; j < N; j++) {
            float c = alpha[j] * ip[j] + x[j];
            float keep = up[j] > th[j] ? 0.0f : beta[j];
            float v = keep * up[j] + c;
            i[j] = c;
            u[j] = v;
            sp[j] = v > th[j] ? 1.0f : 0.0f;
        }
    }
}

static void syn_forward(const soma_model_args *a, const float *const *prev, float *const *cur, float *s,
                        const float *in, size_t B, size_t N) {
    for (size_t b = 0; b < B; b++)
        syn_row(cur[0] + b * N, cur[1] + b * N, s + b * N, prev[0] + b * N, prev[1] + b * N, in + b * N,
                a->prm[P_ALPHA], a->prm[P_BETA], a->prm[P_THETA], a->reset, N);
}

/* One row of the backward step for surrogate `sur` (a constant after inlining). */
static inline __attribute__((always_inline)) void syn_bwd_row(int sur, float sp, float keep, float *restrict e,
                                                              float *restrict dc, float *restrict gu,
                                                              float *restrict gc, float *restrict gi,
                                                              const float *restrict gs, const float *restrict u,
                                                              const float *restrict alpha, const float *restrict th,
                                                              size_t N) {
    for (size_t j = 0; j < N; j++) {
        float ej = gs[j] * soma__surrogate(sur, sp, u[j] - th[j]);
        float du = gu[j] + ej;
        float c = gc[j] + du;
        e[j] = ej, gu[j] = du, dc[j] = c;
        gi[j] = keep != 0.0f ? gi[j] + c : c;
        gc[j] = alpha[j] * c;
    }
}

static void syn_backward(const soma_model_args *a, const float *const *prev, const float *const *cur,
                         float *const *dstate, const float *ds, const float *dv, float *din,
                         float *const *dprm, size_t B, size_t N) {
    const float *restrict alpha = a->prm[P_ALPHA], *restrict beta = a->prm[P_BETA], *restrict th = a->prm[P_THETA];
    float *restrict e = a->scratch, *restrict dc = a->scratch + N;
    float *restrict dalpha = dprm[P_ALPHA], *restrict dbeta = dprm[P_BETA], *restrict dth = dprm[P_THETA];
    const int sur = a->surrogate, sub = a->reset == 0;
    const float sp = a->surrogate_param, keep = a->din_accumulate ? 1.0f : 0.0f;
    for (size_t b = 0; b < B; b++) {
        const float *restrict up = prev[0] + b * N, *restrict ip = prev[1] + b * N, *restrict u = cur[0] + b * N;
        const float *restrict gs = ds + b * N;
        float *restrict gu = dstate[0] + b * N, *restrict gc = dstate[1] + b * N, *restrict gi = din + b * N;
        if (dv)
            for (size_t j = 0; j < N; j++) gu[j] += dv[b * N + j];
        /* gu becomes dL/dU_t and dc dL/dsyn_t; then the carries to t-1. */
#define ROW(S) syn_bwd_row(S, sp, keep, e, dc, gu, gc, gi, gs, u, alpha, th, N)
        SOMA_SURROGATE_DISPATCH(sur, ROW);
#undef ROW
        if (dalpha)
            for (size_t j = 0; j < N; j++) dalpha[j] += dc[j] * ip[j];
        if (dth)
            for (size_t j = 0; j < N; j++) dth[j] -= e[j] + (sub && up[j] > th[j] ? gu[j] : 0.0f);
        if (sub) {
            if (dbeta)
                for (size_t j = 0; j < N; j++) dbeta[j] += gu[j] * up[j];
            for (size_t j = 0; j < N; j++) gu[j] *= beta[j];
        } else {
            if (dbeta)
                for (size_t j = 0; j < N; j++) dbeta[j] += up[j] > th[j] ? 0.0f : gu[j] * up[j];
            for (size_t j = 0; j < N; j++) gu[j] *= up[j] > th[j] ? 0.0f : beta[j];
        }
    }
}

const soma_model soma__model_synaptic = {
    .name = "synaptic",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .n_state = 2,
    .state_names = state_names,
    .spiking = 1,
    .forward = syn_forward,
    .backward = syn_backward,
};
