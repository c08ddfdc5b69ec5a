/* alif.c — adaptive leaky integrate-and-fire neuron (ALIF, the adaptive unit
 * of the LSNN): a LIF whose threshold rises by gamma at each spike and decays
 * back to theta with rho.
 *
 *   adaptation:                      b[t] = rho*b[t-1] + gamma*R[t]
 *   adaptive threshold:              A[t] = theta + b[t]
 *   reset by subtraction (default):  U[t] = beta*U[t-1] + I[t] - R[t]*A[t-1]
 *   reset to zero:                   U[t] = beta*(1 - R[t])*U[t-1] + I[t]
 *   spike:                           S[t] = H(U[t] - A[t])
 *   reset signal:                    R[t] = H(U[t-1] - A[t-1]) = S[t-1], detached from the graph
 *
 * Choices: the adaptation is driven by the previous spike R[t] (so b and U
 * both see a spike one step later, as the reset does, and everything a step
 * needs is in the state at t-1); reset by subtraction removes the threshold
 * the neuron crossed, A[t-1], not theta; b is not scaled by a "beta_a"
 * factor (Bellec et al. write A = theta + beta_a*b; here gamma absorbs it).
 * State 0 is U ("v"), state 1 is b ("b"); at t = -1 both are 0, so A[-1] =
 * theta and R[0] = 0 for theta > 0. beta, theta, rho and gamma may be learned.
 * Source: Bellec et al., "Long short-term memory and learning-to-learn in
 * networks of spiking neurons", NeurIPS 2018 (LSNN).
 *
 * Backward (BPTT, R detached, surrogate sigma = dS/dU at x = U[t] - A[t]).
 * Per step, with gU = dL/dU[t] and gb = dL/db[t] arriving from step t+1
 * (dstate[0], dstate[1]), gs = dL/dS[t], dv = extra dL/dU[t]:
 *   e      = gs*sigma                       (dS/dU = sigma, dS/dA = -sigma)
 *   dU     = gU + dv + e                    total dL/dU[t]
 *   db     = gb - e                         total dL/db[t] (b enters S through -A[t])
 *   dI[t]  = dU                             (din = keep*din + dU, keep = din_accumulate)
 *   U[t] = beta*U[t-1] + ... gives
 *     subtract:  dL/dU[t-1] = beta*dU,          dbeta += dU*U[t-1]
 *     zero:      dL/dU[t-1] = beta*(1-R)*dU,    dbeta += (1-R)*dU*U[t-1]
 *   b[t] = rho*b[t-1] + gamma*R gives
 *     dL/db[t-1] += rho*db,  drho += db*b[t-1],  dgamma += db*R
 *   subtract only, U[t] has -R*A[t-1] = -R*(theta + b[t-1]):
 *     dL/db[t-1] -= R*dU,    dtheta -= R*dU
 *   A[t] = theta + b[t] in S gives dtheta -= e.
 * So dL/db[t-1] = rho*db - (subtract ? R*dU : 0) and
 *    dtheta    -= e + (subtract ? R*dU : 0).
 * R is recomputed from the tape as U[t-1] > theta + b[t-1], the same float
 * expression forward used, so forward and backward agree on every reset.
 */
#include "models/model.h"

enum { P_BETA, P_THETA, P_RHO, P_GAMMA, P_RESET };
static const char *const reset_names[] = {"subtract", "zero", NULL};
static const soma_param_desc params[] = {
    {"beta", 0.95f, 0.0f, 1.0f, "", 1, NULL, "membrane decay per step"},
    {"threshold", 1.0f, 1e-6f, 1e6f, "", 1, NULL, "baseline firing threshold"},
    {"rho", 0.97f, 0.0f, 1.0f, "", 1, NULL, "threshold adaptation decay per step"},
    {"gamma", 0.2f, 0.0f, 1e3f, "", 1, NULL, "threshold increase per spike"},
    {"reset", 0.0f, 0.0f, 1.0f, "", 0, reset_names, "reset mechanism: subtract or zero"},
};
static const char *const state_names[] = {"v", "b"};

/* One row of neurons; a separate function so that restrict on its
 * parameters lets the compiler vectorize without alias checks. */
static void alif_row(float *restrict u, float *restrict bt, float *restrict sp, const float *restrict up,
                     const float *restrict bp, const float *restrict x, const float *restrict beta,
                     const float *restrict th, const float *restrict rho, const float *restrict gam, int reset,
                     size_t N) {
    if (reset == 0) {
        for (size_t j = 0; j < N; j++) {
            float ap = th[j] + bp[j];
            float r = up[j] > ap ? 1.0f : 0.0f;
            float nb = rho[j] * bp[j] + gam[j] * r;
            float v = beta[j] * up[j] + x[j] - r * ap;
            bt[j] = nb;
            u[j] = v;
            sp[j] = v > th[j] + nb ? 1.0f : 0.0f;
        }
    } else {
        for (size_t j = 0; j < N; j++) {
            float ap = th[j] + bp[j];
            float r = up[j] > ap ? 1.0f : 0.0f;
            float nb = rho[j] * bp[j] + gam[j] * r;
            float keep = up[j] > ap ? 0.0f : beta[j];
            float v = keep * up[j] + x[j];
            bt[j] = nb;
            u[j] = v;
            sp[j] = v > th[j] + nb ? 1.0f : 0.0f;
        }
    }
}

static void alif_forward(const soma_model_args *a, const float *const *prev, float *const *cur, float *s,
                         const float *in, size_t B, size_t N) {
    for (size_t b = 0; b < B; b++)
        alif_row(cur[0] + b * N, cur[1] + b * N, s + b * N, prev[0] + b * N, prev[1] + b * N, in + b * N,
                 a->prm[P_BETA], a->prm[P_THETA], a->prm[P_RHO], a->prm[P_GAMMA], a->reset, N);
}

/* One row of the backward step for surrogate `sur` (a constant after
 * inlining). On exit e = gs*sigma, dd = dL/dU[t], gb = dL/db[t] (the carry
 * to b[t-1] is applied after the parameter gradients, which need it), gu =
 * dL/dU[t-1]. */
static inline __attribute__((always_inline)) void alif_bwd_row(int sur, float sp, int sub, float keep,
                                                               float *restrict e, float *restrict dd,
                                                               float *restrict gu, float *restrict gb,
                                                               float *restrict gi, const float *restrict gs,
                                                               const float *restrict u, const float *restrict bt,
                                                               const float *restrict up, const float *restrict bp,
                                                               const float *restrict beta, const float *restrict th,
                                                               size_t N) {
    if (sub)
        for (size_t j = 0; j < N; j++) {
            float ej = gs[j] * soma__surrogate(sur, sp, u[j] - (th[j] + bt[j]));
            float d = gu[j] + ej;
            e[j] = ej, dd[j] = d;
            gi[j] = keep != 0.0f ? gi[j] + d : d;
            gb[j] -= ej;
            gu[j] = beta[j] * d;
        }
    else
        for (size_t j = 0; j < N; j++) {
            float ej = gs[j] * soma__surrogate(sur, sp, u[j] - (th[j] + bt[j]));
            float d = gu[j] + ej;
            e[j] = ej, dd[j] = d;
            gi[j] = keep != 0.0f ? gi[j] + d : d;
            gb[j] -= ej;
            gu[j] = (up[j] > th[j] + bp[j] ? 0.0f : beta[j]) * d;
        }
}

static void alif_backward(const soma_model_args *a, const float *const *prev, const float *const *cur,
                          float *const *dstate, const float *ds, const float *dv, float *din,
                          float *const *dprm, size_t B, size_t N) {
    const float *restrict beta = a->prm[P_BETA], *restrict th = a->prm[P_THETA], *restrict rho = a->prm[P_RHO];
    float *restrict e = a->scratch, *restrict dd = a->scratch + N;
    float *restrict dbeta = dprm[P_BETA], *restrict dth = dprm[P_THETA], *restrict drho = dprm[P_RHO],
                    *restrict dgam = dprm[P_GAMMA];
    const int sub = a->reset == 0;
    const float sp = a->surrogate_param, keep = a->din_accumulate ? 1.0f : 0.0f;
    for (size_t b = 0; b < B; b++) {
        const float *restrict up = prev[0] + b * N, *restrict bp = prev[1] + b * N;
        const float *restrict u = cur[0] + b * N, *restrict bt = cur[1] + b * N, *restrict gs = ds + b * N;
        float *restrict gu = dstate[0] + b * N, *restrict gb = dstate[1] + b * N, *restrict gi = din + b * N;
        if (dv)
            for (size_t j = 0; j < N; j++) gu[j] += dv[b * N + j];
#define ROW(S) alif_bwd_row(S, sp, sub, keep, e, dd, gu, gb, gi, gs, u, bt, up, bp, beta, th, N)
        SOMA_SURROGATE_DISPATCH(a->surrogate, ROW);
#undef ROW
        if (dbeta) {
            if (sub)
                for (size_t j = 0; j < N; j++) dbeta[j] += dd[j] * up[j];
            else
                for (size_t j = 0; j < N; j++) dbeta[j] += up[j] > th[j] + bp[j] ? 0.0f : dd[j] * up[j];
        }
        if (dth) {
            /* theta enters through A[t] in the spike (-e) and, with subtraction, the reset term -R*A[t-1]. */
            if (sub)
                for (size_t j = 0; j < N; j++) dth[j] -= e[j] + (up[j] > th[j] + bp[j] ? dd[j] : 0.0f);
            else
                for (size_t j = 0; j < N; j++) dth[j] -= e[j];
        }
        if (drho)
            for (size_t j = 0; j < N; j++) drho[j] += gb[j] * bp[j];
        if (dgam)
            for (size_t j = 0; j < N; j++) dgam[j] += up[j] > th[j] + bp[j] ? gb[j] : 0.0f;
        /* Carry to b[t-1]: rho*db, and with subtraction -R*dU from -R*A[t-1]. */
        if (sub)
            for (size_t j = 0; j < N; j++) gb[j] = rho[j] * gb[j] - (up[j] > th[j] + bp[j] ? dd[j] : 0.0f);
        else
            for (size_t j = 0; j < N; j++) gb[j] *= rho[j];
    }
}

const soma_model soma__model_alif = {
    .name = "alif",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .n_state = 2,
    .state_names = state_names,
    .spiking = 1,
    .forward = alif_forward,
    .backward = alif_backward,
};
