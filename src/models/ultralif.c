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
#include "models/model.h"
#include "models/ultra.h"

enum { P_LOG_TAU, P_LOG_EPS, P_THETA };
static const soma_param_desc params[] = {
    {"log_tau", -0.105360516f, -20.0f, 0.0f, "", 1, NULL, "ln of the membrane decay tau (learn it: UltraPLIF)"},
    {"log_eps", 0.0f, -2.302585093f, 2.995732274f, "", 1, NULL, "ln of the smoothing eps, eps in [0.1, 20]"},
    {"threshold", 1.0f, -1e6f, 1e6f, "", 1, NULL, "threshold of the output sigmoid"},
};
static const char *const state_names[] = {"v", "v_pre_reset", "i"};

/* The per-element loops below are written to vectorize: exp and log1p from
 * core/vmath.h (libm's are calls), eps and 1/eps computed once per neuron
 * into scratch, selects instead of branches, and NULL gradient arrays tested
 * outside the loops. The LSE is taken in its stable form
 * m + eps*log1p(exp(-|a - I|/eps)), m = max(a, I): one exp, not two. */
static void eps_of(const float *restrict le, float *restrict eps, float *restrict ie, size_t N) {
    for (size_t j = 0; j < N; j++) {
        eps[j] = soma__expf_vec(le[j]);
        ie[j] = 1.0f / eps[j];
    }
}

/* One batch row of the forward step. The rows are separate functions with
 * restrict parameters because GCC ignores restrict on pointers declared
 * inside a loop and then gives up on the many-array alias checks. */
static void forward_row(float *restrict v, float *restrict v1, float *restrict ic, float *restrict o,
                        const float *restrict vp, const float *restrict x, const float *restrict L,
                        const float *restrict th, const float *restrict eps, const float *restrict ie, size_t N) {
    for (size_t j = 0; j < N; j++) {
        float p = vp[j] + L[j], q = x[j], m = p > q ? p : q, d = p > q ? q - p : p - q;
        float u = m + eps[j] * soma__log1pf_unit_vec(soma__expf_vec(d * ie[j]));
        v1[j] = u;
        ic[j] = q;
        o[j] = ultra_fire(u, th[j], ie[j], &v[j]);
    }
}

static void ultra_forward(const soma_model_args *a, const float *const *prev, float *const *cur, float *s,
                          const float *in, size_t B, size_t N) {
    float *eps = a->scratch, *ie = a->scratch + N;
    eps_of(a->prm[P_LOG_EPS], eps, ie, N);
    for (size_t b = 0; b < B; b++)
        forward_row(cur[0] + b * N, cur[1] + b * N, cur[2] + b * N, s + b * N, prev[0] + b * N, in + b * N,
                    a->prm[P_LOG_TAU], a->prm[P_THETA], eps, ie, N);
}

/* One batch row of the backward step for n <= ULTRA_TILE neurons: g
 * (dL/dV[t] in, dL/dV[t-1] out) and gi (dL/dI, added to when acc) in place,
 * the per-neuron gradients of theta and log eps into tth and tle. */
#define ULTRA_TILE 64
static void backward_row(float *restrict g, float *restrict gi, float *restrict tth, float *restrict tle,
                         const float *restrict vp, const float *restrict v1, const float *restrict ic,
                         const float *restrict gs, const float *restrict L, const float *restrict th,
                         const float *restrict eps, const float *restrict ie, int acc, size_t n) {
    for (size_t j = 0; j < n; j++) {
        float u = v1[j], av = vp[j] + L[j], x = ic[j], dtheta, deps;
        float du = ultra_fire_backward(u, th[j], ie[j], g[j], gs[j], &dtheta, &deps);
        float pa = soma__expf_vec((av - u) * ie[j]), pb = soma__expf_vec((x - u) * ie[j]);
        deps += du * (u - pa * av - pb * x) * ie[j];
        tth[j] = dtheta;
        tle[j] = deps * eps[j];
        gi[j] = (acc ? gi[j] : 0.0f) + du * pb;
        g[j] = du * pa;
    }
}

static void ultra_backward(const soma_model_args *a, const float *const *prev, const float *const *cur,
                           float *const *dstate, const float *ds, const float *dv, float *din,
                           float *const *dprm, size_t B, size_t N) {
    float *dL = dprm[P_LOG_TAU], *dle = dprm[P_LOG_EPS], *dth = dprm[P_THETA];
    float *eps = a->scratch, *ie = a->scratch + N;
    eps_of(a->prm[P_LOG_EPS], eps, ie, N);
    for (size_t b = 0; b < B; b++) {
        float *g = dstate[0] + b * N;
        if (dv) /* the membrane loss adds to dL/dV[t]; g is rewritten below */
            for (size_t j = 0; j < N; j++) g[j] += dv[b * N + j];
        for (size_t j0 = 0; j0 < N; j0 += ULTRA_TILE) {
            size_t n = N - j0 < ULTRA_TILE ? N - j0 : ULTRA_TILE, o = b * N + j0;
            float tth[ULTRA_TILE], tle[ULTRA_TILE];
            backward_row(g + j0, din + o, tth, tle, prev[0] + o, cur[1] + o, cur[2] + o, ds + o,
                         a->prm[P_LOG_TAU] + j0, a->prm[P_THETA] + j0, eps + j0, ie + j0, a->din_accumulate, n);
            /* NULL (fixed) parameters are tested here, once per tile */
            if (dth)
                for (size_t k = 0; k < n; k++) dth[j0 + k] += tth[k];
            if (dL) /* dL/dL = dV1*p_a, the value just written to g */
                for (size_t k = 0; k < n; k++) dL[j0 + k] += g[j0 + k];
            if (dle)
                for (size_t k = 0; k < n; k++) dle[j0 + k] += tle[k];
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
