/* ultradlif.c — UltraDLIF: the ultradiscretized LIF (see ultralif.c) with
 * gap-junction diffusion between nearest neighbours on a ring of neurons.
 *
 * The sources disagree on the form (MODELS.md, "UltraLIF family"): the paper's
 * README writes V_i <- LSE(V_{i-1}, V_i, V_{i+1}) + I_i, while its code
 * applies the LSE only to the spike input. This file uses neither literally:
 * it ultradiscretizes the Euler LIF with nearest-neighbour diffusion,
 *
 *   linear domain:  v_i' = tau*v_i + kappa*(v_{i-1} + v_{i+1}) + i_i
 *
 * with v = e^{V/eps}, i = e^{I/eps}, tau = e^{L/eps}, kappa = e^{K/eps}
 * (K = log_kappa is used directly as the log-domain coupling, as L = log_tau
 * is in UltraLIF). Chosen because it is derived the same way as UltraLIF
 * (sums become one log-sum-exp, products become sums), keeps the leak L, and
 * reduces exactly to UltraLIF as the coupling vanishes (K -> -inf), whereas
 * "LSE(...) + I" multiplies by the input in the linear domain and drops the
 * leak.
 *
 *   V1_i[t] = LSE_eps(V_i[t-1] + L_i, V_{i-1}[t-1] + K_i, V_{i+1}[t-1] + K_i, I_i[t])
 *   s_i[t]  = sigmoid((V1_i[t] - theta_i)/eps_i)     (output, in (0,1))
 *   V_i[t]  = V1_i[t] * (1 - s_i[t])                 (soft reset, as UltraLIF)
 *   eps     = exp(log_eps), log_eps in [ln 0.1, ln 20]
 *
 * LSE_eps(x_1..x_n) = m + eps*log sum_k exp((x_k - m)/eps), m = max_k x_k.
 * The ring runs over the population's N neurons within each sample row b,
 * indices mod N: for N = 1 both neighbours are the neuron itself (the LSE
 * then has the terms V+L, V+K, V+K, I), for N = 2 both neighbours are the
 * other neuron (its V+K appears twice). The coupling of neuron i to a
 * neighbour uses neuron i's own K_i and eps_i (the receiving neuron's
 * parameters), so per-neuron parameters stay local to each row's update.
 *
 * Parameters: log_tau (L, ln 0.9), log_eps (0), threshold (1), log_kappa
 * (K, ln 0.1; range [-30, 0]; at -30 the coupling is e^{-30/eps} and
 * negligible: the model is UltraLIF).
 *
 * State: 0 = V (after the reset; the membrane), 1 = V1 (before it), 2 = I.
 *
 * Backward (exact; g = dL/dV_i[t] on entry, gs = dL/ds_i[t], q = s(1-s)/eps,
 * p_self, p_left, p_right, p_in the softmax weights exp((x_k - V1)/eps) of the
 * four LSE terms x_self = V_i + L, x_left = V_{i-1} + K, x_right = V_{i+1} + K,
 * x_in = I):
 *   gs'   = gs - g*V1
 *   dV1   = g*(1-s) + gs'*q
 *   dtheta -= gs'*q
 *   deps  += gs'*(-q*(V1-theta)/eps) + dV1*(V1 - sum_k p_k x_k)/eps
 *   dL_i  += dV1*p_self;   dK_i += dV1*(p_left + p_right);   dI_i = dV1*p_in
 *   dV_i[t-1]     += dV1_i*p_self
 *   dV_{i-1}[t-1] += dV1_i*p_left
 *   dV_{i+1}[t-1] += dV1_i*p_right
 *   dlog_eps = deps*eps
 * Each row first consumes g for every neuron (writing the self term into
 * dstate[0] and keeping the neighbour terms in scratch), then adds the
 * neighbour terms, so dstate[0] ends as dL/dV[t-1] of every neuron.
 */
#include <math.h>
#include "models/model.h"
#include "models/ultra.h"

enum { P_LOG_TAU, P_LOG_EPS, P_THETA, P_LOG_KAPPA };
static const soma_param_desc params[] = {
    {"log_tau", -0.105360516f, -20.0f, 0.0f, "", 1, NULL, "ln of the membrane decay tau"},
    {"log_eps", 0.0f, -2.302585093f, 2.995732274f, "", 1, NULL, "ln of the smoothing eps, eps in [0.1, 20]"},
    {"threshold", 1.0f, -1e6f, 1e6f, "", 1, NULL, "threshold of the output sigmoid"},
    {"log_kappa", -2.302585093f, -30.0f, 0.0f, "", 1, NULL,
     "ln of the gap-junction coupling kappa to each ring neighbour (log-domain K)"},
};
static const char *const state_names[] = {"v", "v_pre_reset", "i"};

static void ultrad_forward(const soma_model_args *a, const float *const *prev, float *const *cur, float *s,
                           const float *in, size_t B, size_t N) {
    const float *L = a->prm[P_LOG_TAU], *le = a->prm[P_LOG_EPS], *th = a->prm[P_THETA], *K = a->prm[P_LOG_KAPPA];
    for (size_t b = 0; b < B; b++) {
        const float *vp = prev[0] + b * N, *x = in + b * N;
        float *v = cur[0] + b * N, *v1 = cur[1] + b * N, *ic = cur[2] + b * N, *o = s + b * N;
        for (size_t j = 0; j < N; j++) {
            size_t jl = j ? j - 1 : N - 1, jr = j + 1 < N ? j + 1 : 0;
            float eps = expf(le[j]);
            float xs = vp[j] + L[j], xl = vp[jl] + K[j], xr = vp[jr] + K[j], xi = x[j];
            float m = xs;
            if (xl > m) m = xl;
            if (xr > m) m = xr;
            if (xi > m) m = xi;
            float u = m + eps * logf(expf((xs - m) / eps) + expf((xl - m) / eps) + expf((xr - m) / eps) +
                                     expf((xi - m) / eps));
            v1[j] = u;
            ic[j] = xi;
            o[j] = ultra_fire(u, th[j], 1.0f / eps, &v[j]);
        }
    }
}

static void ultrad_backward(const soma_model_args *a, const float *const *prev, const float *const *cur,
                            float *const *dstate, const float *ds, const float *dv, float *din,
                            float *const *dprm, size_t B, size_t N) {
    const float *L = a->prm[P_LOG_TAU], *le = a->prm[P_LOG_EPS], *th = a->prm[P_THETA], *K = a->prm[P_LOG_KAPPA];
    float *dL = dprm[P_LOG_TAU], *dle = dprm[P_LOG_EPS], *dth = dprm[P_THETA], *dK = dprm[P_LOG_KAPPA];
    float keep = a->din_accumulate ? 1.0f : 0.0f;
    float *to_left = a->scratch, *to_right = a->scratch + N; /* dV1_j*p_left_j, dV1_j*p_right_j */
    for (size_t b = 0; b < B; b++) {
        const float *vp = prev[0] + b * N, *v1 = cur[1] + b * N, *ic = cur[2] + b * N;
        const float *gs = ds + b * N;
        float *g = dstate[0] + b * N, *gi = din + b * N;
        /* pass 1: consume dL/dV[t] of every neuron; the self term replaces it */
        for (size_t j = 0; j < N; j++) {
            size_t jl = j ? j - 1 : N - 1, jr = j + 1 < N ? j + 1 : 0;
            float eps = expf(le[j]), u = v1[j];
            float xs = vp[j] + L[j], xl = vp[jl] + K[j], xr = vp[jr] + K[j], xi = ic[j];
            float gv = g[j] + (dv ? dv[b * N + j] : 0.0f), dtheta, deps;
            float du = ultra_fire_backward(u, th[j], 1.0f / eps, gv, gs[j], &dtheta, &deps);
            float ps = expf((xs - u) / eps), pl = expf((xl - u) / eps), pr = expf((xr - u) / eps),
                  pi = expf((xi - u) / eps);
            deps += du * (u - ps * xs - pl * xl - pr * xr - pi * xi) / eps;
            if (dth) dth[j] += dtheta;
            if (dL) dL[j] += du * ps;
            if (dK) dK[j] += du * (pl + pr);
            if (dle) dle[j] += deps * eps;
            gi[j] = keep != 0.0f ? gi[j] + du * pi : du * pi;
            g[j] = du * ps;
            to_left[j] = du * pl;
            to_right[j] = du * pr;
        }
        /* pass 2: the neighbour terms (for N = 1 and 2 they land on the same
         * neurons as the LSE read them from, so they simply add up) */
        for (size_t j = 0; j < N; j++) {
            size_t jl = j ? j - 1 : N - 1, jr = j + 1 < N ? j + 1 : 0;
            g[jl] += to_left[j];
            g[jr] += to_right[j];
        }
    }
}

const soma_model soma__model_ultradlif = {
    .name = "ultradlif",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .n_state = 3,
    .state_names = state_names,
    .spiking = 1,
    .graded = 1,
    .rate_output = 1,
    .forward = ultrad_forward,
    .backward = ultrad_backward,
};
