/* ultralif.c — the ultradiscretized LIF neuron (UltraLIF; UltraPLIF when
 * log_tau is learned): the Euler LIF v' = tau*v + i rewritten with
 * v = e^{V/eps}, i = e^{I/eps}, tau = e^{L/eps}, which turns the sum into a
 * log-sum-exp, smooth for eps > 0 and max(V + L, I) as eps -> 0. Every step
 * is differentiable, so gradients are exact: no surrogate.
 *
 *   V1[t] = LSE_eps(V[t-1] + L, I[t])
 *         = m + eps*log(exp((V[t-1] + L - m)/eps) + exp((I[t] - m)/eps)),  m = max of the two
 *   s[t]  = sigmoid((V1[t] - theta)/eps)          (output, in (0,1))
 *   V[t]  = V1[t] * (1 - s[t])                    (soft reset)
 *   eps   = exp(log_eps), log_eps in [ln 0.1, ln 20] (the range clamps eps
 *           to [0.1, 20]; the trainer projects learned values into it)
 *
 * Source: the UltraLIF paper and its code (see MODELS.md): L = ln tau with
 * tau = 0.9 fixed (UltraLIF) or learned (UltraPLIF, init ln 0.9); eps one
 * learnable scalar per layer, init 1; threshold 1 (the ablation code's
 * sigmoid((V - 1)/eps)). Per-neuron learning is allowed too.
 *
 * State: 0 = V (after the reset; the membrane), 1 = V1 (before it), 2 = I.
 * Only V carries to the next step; V1 and I are kept so backward is exact.
 *
 * Backward (g = dL/dV[t] from step t+1 plus any membrane-loss gradient,
 * gs = dL/ds[t]; p_a = exp((V[t-1] + L - V1)/eps) and p_b = 1 - p_a are the
 * LSE's softmax weights, q = s(1-s)/eps):
 *   gs'   = gs - g*V1                    (s enters V through the reset)
 *   dV1   = g*(1-s) + gs'*q
 *   dtheta -= gs'*q
 *   deps  += gs'*(-q*(V1-theta)/eps) + dV1*(V1 - p_a*a - p_b*I)/eps,  a = V[t-1] + L
 *   dL    += dV1*p_a;   dV[t-1] = dV1*p_a;   dI = dV1*p_b
 *   dlog_eps = deps*eps
 */
#include <math.h>
#include "models/model.h"
#include "models/ultra.h"

enum { P_LOG_TAU, P_LOG_EPS, P_THETA };
static const soma_param_desc params[] = {
    {"log_tau", -0.105360516f, -20.0f, 0.0f, "", 1, NULL, "ln of the membrane decay tau (learn it: UltraPLIF)"},
    {"log_eps", 0.0f, -2.302585093f, 2.995732274f, "", 1, NULL, "ln of the smoothing eps, eps in [0.1, 20]"},
    {"threshold", 1.0f, -1e6f, 1e6f, "", 1, NULL, "threshold of the output sigmoid"},
};
static const char *const state_names[] = {"v", "v_pre_reset", "i"};

static void ultra_forward(const soma_model_args *a, const float *const *prev, float *const *cur, float *s,
                          const float *in, size_t B, size_t N) {
    const float *L = a->prm[P_LOG_TAU], *le = a->prm[P_LOG_EPS], *th = a->prm[P_THETA];
    for (size_t b = 0; b < B; b++) {
        const float *vp = prev[0] + b * N, *x = in + b * N;
        float *v = cur[0] + b * N, *v1 = cur[1] + b * N, *ic = cur[2] + b * N, *o = s + b * N;
        for (size_t j = 0; j < N; j++) {
            float eps = expf(le[j]);
            float p = vp[j] + L[j], q = x[j], m = p > q ? p : q;
            float u = m + eps * logf(expf((p - m) / eps) + expf((q - m) / eps));
            v1[j] = u;
            ic[j] = q;
            o[j] = ultra_fire(u, th[j], eps, &v[j]);
        }
    }
}

static void ultra_backward(const soma_model_args *a, const float *const *prev, const float *const *cur,
                           float *const *dstate, const float *ds, const float *dv, float *din,
                           float *const *dprm, size_t B, size_t N) {
    const float *L = a->prm[P_LOG_TAU], *le = a->prm[P_LOG_EPS], *th = a->prm[P_THETA];
    float *dL = dprm[P_LOG_TAU], *dle = dprm[P_LOG_EPS], *dth = dprm[P_THETA];
    float keep = a->din_accumulate ? 1.0f : 0.0f;
    for (size_t b = 0; b < B; b++) {
        const float *vp = prev[0] + b * N, *v1 = cur[1] + b * N, *ic = cur[2] + b * N;
        const float *gs = ds + b * N;
        float *g = dstate[0] + b * N, *gi = din + b * N;
        for (size_t j = 0; j < N; j++) {
            float eps = expf(le[j]), u = v1[j], av = vp[j] + L[j], x = ic[j];
            float gv = g[j] + (dv ? dv[b * N + j] : 0.0f), dtheta, deps;
            float du = ultra_fire_backward(u, th[j], eps, gv, gs[j], &dtheta, &deps);
            float pa = expf((av - u) / eps), pb = expf((x - u) / eps);
            deps += du * (u - pa * av - pb * x) / eps;
            if (dth) dth[j] += dtheta;
            if (dL) dL[j] += du * pa;
            if (dle) dle[j] += deps * eps;
            gi[j] = keep != 0.0f ? gi[j] + du * pb : du * pb;
            g[j] = du * pa;
        }
    }
}

const soma_model soma__model_ultralif = {
    .name = "ultralif",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .n_state = 3,
    .state_names = state_names,
    .spiking = 1,
    .graded = 1,
    .rate_output = 1,
    .forward = ultra_forward,
    .backward = ultra_backward,
};
