/* ann.c — a non-spiking dense layer: the population's output is an
 * activation of its input current at each step, so ANN baselines and
 * spiking/non-spiking hybrids train in the same engine.
 *
 *   U[t] = I[t]                       (state 0: the pre-activation, read by
 *                                      membrane losses and readouts)
 *   S[t] = f(U[t]),  f = relu | gelu | linear
 *   relu(x) = max(0, x), relu'(x) = 1 for x > 0 else 0 (as torch)
 *   gelu(x) = x * Phi(x) = x/2 * (1 + erf(x/sqrt 2)) (exact form, torch's
 *             default), gelu'(x) = Phi(x) + x * phi(x)
 *
 * There is no memory across steps: backward is din = (dL/dS * f'(U) + dL/dU).
 * The outputs are real values ("graded"), so layers fed by this one use
 * dense products, never the spike gather. */
#include <math.h>
#include "models/model.h"

enum { P_ACT };
enum { ACT_RELU, ACT_GELU, ACT_LINEAR };
static const char *const act_names[] = {"relu", "gelu", "linear", NULL};
static const soma_param_desc params[] = {
    {"activation", 0.0f, 0.0f, 2.0f, "", 0, act_names, "output function: relu, gelu or linear"},
};
static const char *const state_names[] = {"v"};

static int activation(const soma_model_args *a) { return (int)a->prm[P_ACT][0]; }

static void ann_forward(const soma_model_args *a, const float *const *prev, float *const *cur, float *s,
                        const float *in, size_t B, size_t N) {
    (void)prev;
    int f = activation(a);
    float *restrict u = cur[0], *restrict o = s;
    const float *restrict x = in;
    size_t n = B * N;
    for (size_t i = 0; i < n; i++) u[i] = x[i];
    if (f == ACT_RELU)
        for (size_t i = 0; i < n; i++) o[i] = x[i] > 0.0f ? x[i] : 0.0f;
    else if (f == ACT_GELU)
        for (size_t i = 0; i < n; i++) o[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
    else
        for (size_t i = 0; i < n; i++) o[i] = x[i];
}

static void ann_backward(const soma_model_args *a, const float *const *prev, const float *const *cur,
                         float *const *dstate, const float *ds, const float *dv, float *din,
                         float *const *dprm, size_t B, size_t N) {
    (void)prev, (void)dstate, (void)dprm;
    int f = activation(a);
    const float *restrict u = cur[0], *restrict g = ds;
    float *restrict d = din;
    float keep = a->din_accumulate ? 1.0f : 0.0f;
    size_t n = B * N;
    if (f == ACT_RELU)
        for (size_t i = 0; i < n; i++) d[i] = keep != 0.0f ? d[i] + (u[i] > 0.0f ? g[i] : 0.0f) : (u[i] > 0.0f ? g[i] : 0.0f);
    else if (f == ACT_GELU)
        for (size_t i = 0; i < n; i++) {
            float x = u[i];
            float cdf = 0.5f * (1.0f + erff(x * 0.70710678118654752f));
            float pdf = 0.39894228040143268f * expf(-0.5f * x * x);
            d[i] = keep != 0.0f ? d[i] + g[i] * (cdf + x * pdf) : g[i] * (cdf + x * pdf);
        }
    else
        for (size_t i = 0; i < n; i++) d[i] = keep != 0.0f ? d[i] + g[i] : g[i];
    if (dv)
        for (size_t i = 0; i < n; i++) d[i] += dv[i];
}

const soma_model soma__model_ann = {
    .name = "ann",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .n_state = 1,
    .state_names = state_names,
    .spiking = 1,
    .graded = 1,
    .forward = ann_forward,
    .backward = ann_backward,
};
