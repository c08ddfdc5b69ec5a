/* test_models.c — the neuron models and surrogate gradients, through the
 * model vtable (src/models/model.h):
 *   1. forward traces worked out by hand for LIF and Synaptic, both reset
 *      modes (membrane, synaptic current and spikes at every step);
 *   2. every surrogate against its closed form, and against the finite
 *      difference of the smooth function it is the derivative of;
 *   3. each model's backward against central finite differences of a
 *      double-precision reference forward of the same equations, in which the
 *      output spike is replaced by sigmoid(k(U - theta)) (whose derivative is
 *      exactly the "sigmoid" surrogate with slope k) and the reset signal
 *      R_t = H(U_{t-1} - theta) stays a hard step (detached in backward; its
 *      finite-difference derivative is 0 away from a crossing).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/model.h"
#include "soma.h"
#include "testlib.h"

#define PI 3.14159265358979323846
#define MAXN 8
#define MAXB 4
#define MAXT 16

/* ------------------------------------------------------------ utilities */

/* Per-neuron parameter arrays in descriptor order, by name. */
typedef struct params {
    float v[SOMA_MAX_PARAMS][MAXN];
    float d[SOMA_MAX_DERIVED][MAXN]; /* what the model's prepare derives (lif: beta) */
    float *dp[SOMA_MAX_DERIVED];
} params;

static int pidx(const soma_model *m, const char *name) {
    int k = soma__model_param_index(m, name);
    if (k < 0) fprintf(stderr, "model %s has no parameter %s\n", m->name, name);
    return k;
}

/* Fill args: every parameter gets its descriptor default, then `beta`,
 * `threshold` and (if the model has it) `alpha` are set per neuron. */
static void make_args(const soma_model *m, params *p, soma_model_args *a, float *scratch, int reset,
                      const float *beta, const float *theta, const float *alpha, size_t N) {
    memset(a, 0, sizeof *a);
    for (size_t k = 0; k < m->n_params; k++) {
        for (size_t j = 0; j < N; j++) p->v[k][j] = m->params[k].def;
        a->prm[k] = p->v[k];
    }
    int kb = pidx(m, "beta"), kt = pidx(m, "threshold"), ka = soma__model_param_index(m, "alpha");
    int kr = soma__model_param_index(m, "reset");
    for (size_t j = 0; j < N; j++) {
        p->v[kb][j] = beta[j];
        p->v[kt][j] = theta[j];
        if (ka >= 0 && alpha) p->v[ka][j] = alpha[j];
        if (kr >= 0) p->v[kr][j] = (float)reset;
    }
    /* As the trainer does: derive the constants (lif's beta) from the values. */
    if (m->prepare) {
        for (size_t k = 0; k < m->n_derived; k++) p->dp[k] = p->d[k];
        a->dt = 1.0f;
        m->prepare(a->prm, N, a->dt, 0, p->dp);
        a->drv = (const float *const *)p->dp;
    }
    a->reset = reset;
    a->surrogate = SOMA_SURROGATE_SIGMOID;
    a->surrogate_param = 4.0f;
    a->scratch = scratch;
}

/* Run T forward steps. in [T][B][N]; tape [(T+1)][ns][B][N] with step t at
 * tape index t+1 and index 0 the zero state of t = -1; s [T][B][N]. */
static void run_forward(const soma_model *m, const soma_model_args *a, const float *in, size_t T, size_t B, size_t N,
                        float *tape, float *s) {
    size_t RB = B * N, ns = m->n_state;
    memset(tape, 0, ns * RB * sizeof *tape);
    for (size_t t = 0; t < T; t++) {
        const float *prev[SOMA_MAX_STATE];
        float *cur[SOMA_MAX_STATE];
        for (size_t k = 0; k < ns; k++) {
            prev[k] = tape + (t * ns + k) * RB;
            cur[k] = tape + ((t + 1) * ns + k) * RB;
        }
        m->forward(a, prev, cur, s + t * RB, in + t * RB, B, N);
    }
}

/* -------------------------------------------------- 1. hand-worked traces */

/* Checks a trace: expected U (state 0), syn (state 1, or NULL) and spikes, all [T][B][N]. */
static void check_trace(const char *what, const soma_model *m, const soma_model_args *a, const float *in, size_t T,
                        size_t B, size_t N, const double *U, const double *C, const int *S) {
    float tape[(MAXT + 1) * SOMA_MAX_STATE * MAXB * MAXN], s[MAXT * MAXB * MAXN];
    for (size_t i = 0; i < T * B * N; i++) s[i] = -1.0f; /* every spike must be written */
    run_forward(m, a, in, T, B, N, tape, s);
    size_t RB = B * N, ns = m->n_state;
    for (size_t t = 0; t < T; t++)
        for (size_t i = 0; i < RB; i++) {
            size_t e = t * RB + i;
            float u = tape[((t + 1) * ns + 0) * RB + i];
            CHECK_MSG(fabs(u - U[e]) <= 1e-5, "%s: U[t=%zu][b=%zu][j=%zu] = %.7g, expected %.7g", what, t, i / N, i % N,
                      (double)u, U[e]);
            CHECK_MSG(s[e] == (float)S[e], "%s: S[t=%zu][b=%zu][j=%zu] = %g, expected %d", what, t, i / N, i % N,
                      (double)s[e], S[e]);
            if (C) {
                float c = tape[((t + 1) * ns + 1) * RB + i];
                CHECK_MSG(fabs(c - C[e]) <= 1e-5, "%s: syn[t=%zu][b=%zu][j=%zu] = %.7g, expected %.7g", what, t, i / N,
                          i % N, (double)c, C[e]);
            }
        }
}

/* Two neurons: j=0 beta 0.5, theta 1 with constant input 0.6;
 *              j=1 beta 0.9, theta 0.5 with input 0.3 0.4 -0.2 0.7 0 0.1. */
static void test_lif_traces(void) {
    const soma_model *m = soma_model_find("lif");
    CHECK(m != NULL);
    if (!m) return;
    CHECK(m->n_state == 1 && m->spiking == 1);
    const float beta[2] = {0.5f, 0.9f}, theta[2] = {1.0f, 0.5f};
    float scratch[2 * MAXN];
    params p;
    soma_model_args a;

    /* Reset by subtraction, B = 1, T = 6.  in[t][0][j]. */
    const float in1[6 * 2] = {0.6f, 0.3f, 0.6f, 0.4f, 0.6f, -0.2f, 0.6f, 0.7f, 0.6f, 0.0f, 0.6f, 0.1f};
    /* j=0: U0 = 0.6
     *      U1 = 0.5*0.6  + 0.6 = 0.9
     *      U2 = 0.5*0.9  + 0.6 = 1.05  > 1: spike
     *      U3 = 0.5*1.05 + 0.6 - 1 = 0.125      (R3 = 1: subtract theta)
     *      U4 = 0.5*0.125 + 0.6 = 0.6625
     *      U5 = 0.5*0.6625 + 0.6 = 0.93125
     * j=1: U0 = 0.3
     *      U1 = 0.9*0.3 + 0.4 = 0.67  > 0.5: spike
     *      U2 = 0.9*0.67 - 0.2 - 0.5 = -0.097
     *      U3 = 0.9*(-0.097) + 0.7 = 0.6127  > 0.5: spike
     *      U4 = 0.9*0.6127 + 0 - 0.5 = 0.05143
     *      U5 = 0.9*0.05143 + 0.1 = 0.146287 */
    const double U1[6 * 2] = {0.6, 0.3, 0.9, 0.67, 1.05, -0.097, 0.125, 0.6127, 0.6625, 0.05143, 0.93125, 0.146287};
    const int S1[6 * 2] = {0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0};
    make_args(m, &p, &a, scratch, 0, beta, theta, NULL, 2);
    check_trace("lif subtract", m, &a, in1, 6, 1, 2, U1, NULL, S1);

    /* Reset to zero, B = 2, T = 6. Row b=0 as above; row b=1: j=0 input 1.2
     * constant, j=1 input 0.6 then 0.  in[t][b][j]. */
    const float in2[6 * 2 * 2] = {0.6f, 0.3f, 1.2f, 0.6f, 0.6f, 0.4f,  1.2f, 0.0f, 0.6f, -0.2f, 1.2f, 0.0f,
                                  0.6f, 0.7f, 1.2f, 0.0f, 0.6f, 0.0f,  1.2f, 0.0f, 0.6f, 0.1f,  1.2f, 0.0f};
    /* b=0 j=0: 0.6, 0.9, 1.05 (spike), then R=1 clears: 0 + 0.6 = 0.6, 0.9, 1.05 (spike)
     * b=0 j=1: 0.3, 0.67 (spike), 0 - 0.2 = -0.2, 0.9*(-0.2) + 0.7 = 0.52 (spike), 0 + 0 = 0, 0 + 0.1 = 0.1
     * b=1 j=0: 1.2 (spike) every step: each step clears the 1.2 and adds 1.2
     * b=1 j=1: 0.6 (spike), then 0 + 0 = 0 for the rest */
    const double U2[6 * 2 * 2] = {0.6, 0.3,  1.2, 0.6, 0.9,  0.67, 1.2, 0.0, 1.05, -0.2, 1.2, 0.0,
                                  0.6, 0.52, 1.2, 0.0, 0.9,  0.0,  1.2, 0.0, 1.05, 0.1,  1.2, 0.0};
    const int S2[6 * 2 * 2] = {0, 0, 1, 1, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 0, 1, 0, 1, 0};
    make_args(m, &p, &a, scratch, 1, beta, theta, NULL, 2);
    check_trace("lif zero", m, &a, in2, 6, 2, 2, U2, NULL, S2);
}

/* Two neurons: j=0 alpha 0.5, beta 0.5, theta 1; j=1 alpha 0.8, beta 0.9, theta 2.
 * Row b=0 input: j=0 0.8 0.8 0 0 0; j=1 1 0.5 0.5 0 1. Row b=1: j=0 zero, j=1 3 then 0. */
static void test_synaptic_traces(void) {
    const soma_model *m = soma_model_find("synaptic");
    CHECK(m != NULL);
    if (!m) return;
    CHECK(m->n_state == 2 && m->spiking == 1);
    const float alpha[2] = {0.5f, 0.8f}, beta[2] = {0.5f, 0.9f}, theta[2] = {1.0f, 2.0f};
    float scratch[2 * MAXN];
    params p;
    soma_model_args a;
    const float in[5 * 2 * 2] = {0.8f, 1.0f, 0.0f, 3.0f, 0.8f, 0.5f, 0.0f, 0.0f, 0.0f, 0.5f,
                                 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f};
    /* Synaptic current (the same for both reset modes):
     * b=0 j=0: 0.8, 0.5*0.8+0.8 = 1.2, 0.6, 0.3, 0.15
     * b=0 j=1: 1, 0.8+0.5 = 1.3, 1.04+0.5 = 1.54, 1.232, 0.9856+1 = 1.9856
     * b=1 j=0: 0 throughout
     * b=1 j=1: 3, 2.4, 1.92, 1.536, 1.2288 */
    const double C[5 * 2 * 2] = {0.8, 1.0,    0.0, 3.0,   1.2,  1.3, 0.0, 2.4,   0.6,  1.54,
                                 0.0, 1.92,   0.3, 1.232, 0.0,  1.536, 0.15, 1.9856, 0.0, 1.2288};

    /* Reset by subtraction:
     * b=0 j=0: U = 0.8; 0.4+1.2 = 1.6 (spike); 0.8+0.6-1 = 0.4; 0.2+0.3 = 0.5; 0.25+0.15 = 0.4
     * b=0 j=1: U = 1; 0.9+1.3 = 2.2 (spike); 1.98+1.54-2 = 1.52; 1.368+1.232 = 2.6 (spike);
     *          2.34+1.9856-2 = 2.3256 (spike)
     * b=1 j=1: U = 3 (spike); 2.7+2.4-2 = 3.1 (spike); 2.79+1.92-2 = 2.71 (spike);
     *          2.439+1.536-2 = 1.975; 1.7775+1.2288 = 3.0063 (spike) */
    const double Us[5 * 2 * 2] = {0.8, 1.0,    0.0, 3.0,   1.6, 2.2, 0.0, 3.1,  0.4, 1.52,
                                  0.0, 2.71,   0.5, 2.6,   0.0, 1.975, 0.4, 2.3256, 0.0, 3.0063};
    const int Ss[5 * 2 * 2] = {0, 0, 0, 1, 1, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1};
    make_args(m, &p, &a, scratch, 0, beta, theta, alpha, 2);
    check_trace("synaptic subtract", m, &a, in, 5, 2, 2, Us, C, Ss);

    /* Reset to zero (the membrane only; the current keeps decaying):
     * b=0 j=0: 0.8; 1.6 (spike); 0 + 0.6 = 0.6; 0.3+0.3 = 0.6; 0.3+0.15 = 0.45
     * b=0 j=1: 1; 2.2 (spike); 0 + 1.54 = 1.54; 1.386+1.232 = 2.618 (spike); 0 + 1.9856 = 1.9856
     * b=1 j=1: 3 (spike); 0 + 2.4 = 2.4 (spike); 0 + 1.92 = 1.92; 1.728+1.536 = 3.264 (spike); 0 + 1.2288 */
    const double Uz[5 * 2 * 2] = {0.8, 1.0,    0.0, 3.0,   1.6, 2.2, 0.0, 2.4,   0.6, 1.54,
                                  0.0, 1.92,   0.6, 2.618, 0.0, 3.264, 0.45, 1.9856, 0.0, 1.2288};
    const int Sz[5 * 2 * 2] = {0, 0, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0};
    make_args(m, &p, &a, scratch, 1, beta, theta, alpha, 2);
    check_trace("synaptic zero", m, &a, in, 5, 2, 2, Uz, C, Sz);
}

/* Descriptors: names, order-independent lookups and defaults of the registry. */
static void test_registry(void) {
    const soma_model *lif = soma_model_find("lif"), *syn = soma_model_find("synaptic"), *inp = soma_model_find("input");
    CHECK(lif && syn && inp);
    CHECK(soma_model_find("nope") == NULL);
    CHECK(soma_model_find(NULL) == NULL);
    if (!lif || !syn || !inp) return;
    CHECK(inp->spiking == 0);
    CHECK(strcmp(soma_model_name(lif), "lif") == 0);
    CHECK(strcmp(lif->state_names[0], "v") == 0 && strcmp(syn->state_names[1], "syn") == 0);
    size_t n = 0;
    const soma_param_desc *d = soma_model_params(syn, &n);
    CHECK(n == syn->n_params && d == syn->params);
    CHECK(soma__model_param_index(syn, "alpha") >= 0 && soma__model_param_index(lif, "alpha") < 0);
    int kr = soma__model_param_index(lif, "reset");
    CHECK(kr >= 0 && lif->params[kr].choices && strcmp(lif->params[kr].choices[0], "subtract") == 0 &&
          strcmp(lif->params[kr].choices[1], "zero") == 0 && !lif->params[kr].learnable);
    CHECK(lif->params[soma__model_param_index(lif, "beta")].learnable);
    CHECK(syn->params[soma__model_param_index(syn, "alpha")].learnable);
}

/* --------------------------------------------------------- 2. surrogates */

static double smooth_fast_sigmoid(double k, double x) { return x / (1.0 + k * fabs(x)); }
static double smooth_sigmoid(double k, double x) { return 1.0 / (1.0 + exp(-k * x)); }
static double smooth_atan(double a, double x) { return atan(PI * a * x / 2.0) / PI; }

static void test_surrogates(void) {
    static const char *const names[] = {"fast_sigmoid", "atan", "sigmoid", "triangular", "straight_through"};
    static const float defaults[] = {25.0f, 2.0f, 25.0f, 1.0f, 1.0f};
    for (int i = 0; i < 5; i++) {
        CHECK(soma_surrogate_find(names[i]) == i);
        CHECK(soma_surrogate_name(i) && strcmp(soma_surrogate_name(i), names[i]) == 0);
        CHECK(soma_surrogate_default_param(i) == defaults[i]);
    }
    CHECK(soma_surrogate_find("heaviside") == -1);
    CHECK(soma_surrogate_find(NULL) == -1);
    CHECK(soma_surrogate_name(5) == NULL && soma_surrogate_name(-1) == NULL);
    CHECK(SOMA_SURROGATE_FAST_SIGMOID == 0 && SOMA_SURROGATE_ATAN == 1 && SOMA_SURROGATE_SIGMOID == 2 &&
          SOMA_SURROGATE_TRIANGULAR == 3 && SOMA_SURROGATE_STRAIGHT_THROUGH == 4);

    static const double xs[] = {-2.0, -0.5, -0.13, -0.02, 0.0, 0.004, 0.07, 0.3, 0.9, 1.7};
    const size_t nx = sizeof xs / sizeof xs[0];
    const double h = 1e-6;
    for (size_t i = 0; i < nx; i++) {
        double x = xs[i];
        float xf = (float)x;
        /* Closed forms at an explicit parameter and at the default (param <= 0). */
        static const double ks[] = {25.0, 5.0, 0.7};
        for (size_t q = 0; q < 3; q++) {
            double k = ks[q];
            double fs = 1.0 / ((k * fabs(x) + 1.0) * (k * fabs(x) + 1.0));
            double sg = k * exp(-k * x) / ((1.0 + exp(-k * x)) * (1.0 + exp(-k * x)));
            double at = (k / 2.0) / (1.0 + (PI * k * x / 2.0) * (PI * k * x / 2.0));
            double tr = fmax(0.0, 1.0 - fabs(x) / k) / k;
            CHECK_NEAR(soma_surrogate_eval(SOMA_SURROGATE_FAST_SIGMOID, (float)k, xf), fs, 1e-5);
            CHECK_NEAR(soma_surrogate_eval(SOMA_SURROGATE_SIGMOID, (float)k, xf), sg, 1e-5);
            CHECK_NEAR(soma_surrogate_eval(SOMA_SURROGATE_ATAN, (float)k, xf), at, 1e-5);
            CHECK_NEAR(soma_surrogate_eval(SOMA_SURROGATE_TRIANGULAR, (float)k, xf), tr, 1e-5);
            CHECK(soma_surrogate_eval(SOMA_SURROGATE_STRAIGHT_THROUGH, (float)k, xf) == 1.0f);
            /* Derivatives of the smooth functions (central difference in double). */
            double dfs = (smooth_fast_sigmoid(k, x + h) - smooth_fast_sigmoid(k, x - h)) / (2 * h);
            double dsg = (smooth_sigmoid(k, x + h) - smooth_sigmoid(k, x - h)) / (2 * h);
            double dat = (smooth_atan(k, x + h) - smooth_atan(k, x - h)) / (2 * h);
            CHECK_NEAR(soma_surrogate_eval(SOMA_SURROGATE_FAST_SIGMOID, (float)k, xf), dfs, 1e-4);
            CHECK_NEAR(soma_surrogate_eval(SOMA_SURROGATE_SIGMOID, (float)k, xf), dsg, 1e-4);
            CHECK_NEAR(soma_surrogate_eval(SOMA_SURROGATE_ATAN, (float)k, xf), dat, 1e-4);
        }
        for (int w = 0; w < 4; w++) {
            float pd = soma_surrogate_default_param(w);
            CHECK(soma_surrogate_eval(w, 0.0f, xf) == soma_surrogate_eval(w, pd, xf));
            CHECK(soma_surrogate_eval(w, -1.0f, xf) == soma_surrogate_eval(w, pd, xf));
        }
        CHECK(soma_surrogate_eval(SOMA_SURROGATE_STRAIGHT_THROUGH, 0.0f, xf) == 1.0f);
        /* The row form agrees with the scalar one. */
        float row_in[3] = {xf, -xf, 0.5f * xf}, row_out[3];
        for (int w = 0; w < 5; w++) {
            soma__surrogate_row(w, 3.0f, row_in, row_out, 3);
            for (int r = 0; r < 3; r++) CHECK(row_out[r] == soma_surrogate_eval(w, 3.0f, row_in[r]));
        }
    }
    /* Spot values worked out by hand. */
    CHECK_NEAR(soma_surrogate_eval(SOMA_SURROGATE_FAST_SIGMOID, 25.0f, 0.04f), 0.25, 1e-6);  /* 1/(1+1)^2 */
    CHECK_NEAR(soma_surrogate_eval(SOMA_SURROGATE_SIGMOID, 25.0f, 0.0f), 6.25, 1e-6);       /* k/4 */
    CHECK_NEAR(soma_surrogate_eval(SOMA_SURROGATE_ATAN, 2.0f, 0.0f), 1.0, 1e-6);            /* a/2 */
    CHECK_NEAR(soma_surrogate_eval(SOMA_SURROGATE_ATAN, 2.0f, (float)(1.0 / PI)), 0.5, 1e-6); /* 1/(1+1) */
    CHECK_NEAR(soma_surrogate_eval(SOMA_SURROGATE_TRIANGULAR, 0.5f, 0.25f), 1.0, 1e-6);    /* (1-0.5)/0.5 */
    CHECK(soma_surrogate_eval(SOMA_SURROGATE_TRIANGULAR, 0.5f, 0.6f) == 0.0f);
    CHECK(soma_surrogate_eval(SOMA_SURROGATE_TRIANGULAR, 0.5f, -0.6f) == 0.0f);
    /* Large |x| must not overflow to NaN. */
    CHECK(isfinite(soma_surrogate_eval(SOMA_SURROGATE_SIGMOID, 25.0f, -100.0f)));
    CHECK(soma_surrogate_eval(SOMA_SURROGATE_SIGMOID, 25.0f, 100.0f) >= 0.0f);
}

/* ------------------------------------------ 3. backward vs finite differences */

typedef struct fdcase {
    int syn;   /* 0 = lif, 1 = synaptic */
    int reset; /* 0 = subtract, 1 = zero */
    size_t B, N, T;
    double k; /* sigmoid slope of the smooth output spike */
} fdcase;

/* Double reference forward. I [T][B][N], a and c [T][B][N]: objective
 * L = sum a*U_t + c*sigmoid(k(U_t - theta)). u0, c0 [B][N] are the state at
 * t = -1. U (may be NULL) gets U_t. *margin gets min |U_t - theta|, *resets
 * the number of steps with R_t = 1. */
static double ref_forward(const fdcase *fc, const double *I, const double *beta, const double *theta,
                          const double *alpha, const double *u0, const double *c0, const double *a, const double *c,
                          double *U, double *margin, int *resets) {
    size_t B = fc->B, N = fc->N, RB = B * N;
    double u[MAXB * MAXN], cur[MAXB * MAXN], L = 0.0, mg = INFINITY;
    int nr = 0;
    memcpy(u, u0, RB * sizeof *u);
    memcpy(cur, c0, RB * sizeof *cur);
    for (size_t t = 0; t < fc->T; t++)
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < N; j++) {
                size_t i = b * N + j, e = t * RB + i;
                double R = u[i] > theta[j] ? 1.0 : 0.0;
                nr += R != 0.0;
                double in = I[e];
                if (fc->syn) {
                    cur[i] = alpha[j] * cur[i] + in;
                    in = cur[i];
                }
                u[i] = fc->reset == 0 ? beta[j] * u[i] + in - R * theta[j] : beta[j] * (1.0 - R) * u[i] + in;
                double st = 1.0 / (1.0 + exp(-fc->k * (u[i] - theta[j])));
                L += a[e] * u[i] + c[e] * st;
                if (U) U[e] = u[i];
                if (fabs(u[i] - theta[j]) < mg) mg = fabs(u[i] - theta[j]);
            }
    if (margin) *margin = mg;
    if (resets) *resets = nr;
    return L;
}

#define NEAR_REL(x, y, tol) (fabs((x) - (y)) <= (tol) * fmax(1.0, fmax(fabs(x), fabs(y))))

/* One model and reset mode: draws data until no |U - theta| < 1e-3 and at
 * least one reset happens, then compares the library's tape with the
 * reference and its backward with finite differences. use_dv = 0 runs the
 * backward with dv = NULL (and a = 0 in the objective). */
static void fd_case(const fdcase *fc, int use_dv, uint64_t seed) {
    const soma_model *m = soma_model_find(fc->syn ? "synaptic" : "lif");
    CHECK(m != NULL);
    if (!m) return;
    const char *what = fc->syn ? (fc->reset ? "synaptic/zero" : "synaptic/subtract")
                               : (fc->reset ? "lif/zero" : "lif/subtract");
    size_t B = fc->B, N = fc->N, T = fc->T, RB = B * N, TRB = T * RB, ns = m->n_state;
    double I[MAXT * MAXB * MAXN], a[MAXT * MAXB * MAXN], c[MAXT * MAXB * MAXN], U[MAXT * MAXB * MAXN];
    double beta[MAXN], theta[MAXN], alpha[MAXN], u0[MAXB * MAXN] = {0}, c0[MAXB * MAXN] = {0};
    for (size_t j = 0; j < N; j++) {
        /* Different per neuron, so a neuron reading another's parameter shows. */
        beta[j] = 0.9 - 0.03 * (double)j;
        theta[j] = 1.0 + 0.05 * (double)j;
        alpha[j] = 0.8 - 0.04 * (double)j;
    }
    soma_rng rng;
    soma_rng_init(&rng, seed, 0);
    int tries = 0, resets = 0;
    double margin = 0.0;
    for (;;) {
        for (size_t e = 0; e < TRB; e++) {
            I[e] = (float)(-0.2 + soma_rng_uniform(&rng)); /* U(-0.2, 0.8), exactly representable in float */
            a[e] = use_dv ? 2.0 * soma_rng_uniform(&rng) - 1.0 : 0.0;
            c[e] = (float)(2.0 * soma_rng_uniform(&rng) - 1.0);
        }
        ref_forward(fc, I, beta, theta, alpha, u0, c0, a, c, U, &margin, &resets);
        if ((margin >= 1e-3 && resets > 0) || ++tries > 200) break;
    }
    CHECK_MSG(margin >= 1e-3 && resets > 0, "%s: no usable draw (margin %g, resets %d)", what, margin, resets);
    CHECK_MSG(resets >= 2, "%s: %d resets", what, resets);

    /* Library forward on the same (float) data. */
    float fbeta[MAXN], ftheta[MAXN], falpha[MAXN], fin[MAXT * MAXB * MAXN], fa[MAXT * MAXB * MAXN],
        fc_[MAXT * MAXB * MAXN];
    for (size_t j = 0; j < N; j++) fbeta[j] = (float)beta[j], ftheta[j] = (float)theta[j], falpha[j] = (float)alpha[j];
    /* The reference then runs on the float-rounded parameters. */
    for (size_t j = 0; j < N; j++) beta[j] = fbeta[j], theta[j] = ftheta[j], alpha[j] = falpha[j];
    for (size_t e = 0; e < TRB; e++) fin[e] = (float)I[e], fa[e] = (float)a[e], fc_[e] = (float)c[e];
    for (size_t e = 0; e < TRB; e++) a[e] = fa[e];
    ref_forward(fc, I, beta, theta, alpha, u0, c0, a, c, U, &margin, &resets);
    params p;
    soma_model_args args;
    float scratch[2 * MAXN];
    make_args(m, &p, &args, scratch, fc->reset, fbeta, ftheta, falpha, N);
    args.surrogate = SOMA_SURROGATE_SIGMOID;
    args.surrogate_param = (float)fc->k;
    float tape[(MAXT + 1) * SOMA_MAX_STATE * MAXB * MAXN], s[MAXT * MAXB * MAXN];
    run_forward(m, &args, fin, T, B, N, tape, s);
    int bad_u = 0, bad_s = 0;
    for (size_t t = 0; t < T; t++)
        for (size_t i = 0; i < RB; i++) {
            double u = tape[((t + 1) * ns) * RB + i], ur = U[t * RB + i];
            if (!NEAR_REL(u, ur, 1e-5)) {
                if (bad_u++ < 5)
                    fprintf(stderr, "%s: tape U[t=%zu][%zu] = %.9g, reference %.9g\n", what, t, i, u, ur);
            }
            int sr = ur > theta[i % N];
            if (s[t * RB + i] != (float)sr) bad_s++;
        }
    CHECK_MSG(bad_u == 0, "%s: %d tape entries differ from the double reference", what, bad_u);
    CHECK_MSG(bad_s == 0, "%s: %d spikes differ from H(U - theta)", what, bad_s);

    /* Library backward: t = T-1 .. 0, dstate zero on entry. */
    float dstate_buf[SOMA_MAX_STATE * MAXB * MAXN] = {0};
    float *dstate[SOMA_MAX_STATE];
    for (size_t k = 0; k < ns; k++) dstate[k] = dstate_buf + k * RB;
    float dprm_buf[SOMA_MAX_PARAMS][MAXN];
    memset(dprm_buf, 0, sizeof dprm_buf);
    float *dprm[SOMA_MAX_PARAMS] = {0};
    int kb = pidx(m, "beta"), kt = pidx(m, "threshold"), ka = soma__model_param_index(m, "alpha");
    dprm[kb] = dprm_buf[kb];
    dprm[kt] = dprm_buf[kt];
    if (ka >= 0) dprm[ka] = dprm_buf[ka];
    float din[MAXT * MAXB * MAXN];
    for (size_t t = T; t-- > 0;) {
        const float *prev[SOMA_MAX_STATE], *cur[SOMA_MAX_STATE];
        for (size_t k = 0; k < ns; k++) {
            prev[k] = tape + (t * ns + k) * RB;
            cur[k] = tape + ((t + 1) * ns + k) * RB;
        }
        m->backward(&args, prev, cur, dstate, fc_ + t * RB, use_dv ? fa + t * RB : NULL, din + t * RB, dprm, B, N);
    }

    /* Finite differences in double. */
    const double h = 1e-6, tol = 1e-4;
    double Ip[MAXT * MAXB * MAXN];
    memcpy(Ip, I, TRB * sizeof *I);
    int bad = 0;
    for (size_t e = 0; e < TRB; e++) {
        Ip[e] = I[e] + h;
        double lp = ref_forward(fc, Ip, beta, theta, alpha, u0, c0, a, c, NULL, NULL, NULL);
        Ip[e] = I[e] - h;
        double lm = ref_forward(fc, Ip, beta, theta, alpha, u0, c0, a, c, NULL, NULL, NULL);
        Ip[e] = I[e];
        double fd = (lp - lm) / (2 * h);
        if (!NEAR_REL(din[e], fd, tol)) {
            if (bad++ < 8)
                fprintf(stderr, "%s%s: din[t=%zu][b=%zu][j=%zu] = %.9g, finite difference %.9g\n", what,
                        use_dv ? "" : " (dv NULL)", e / RB, (e % RB) / N, e % N, (double)din[e], fd);
        }
    }
    CHECK_MSG(bad == 0, "%s: %d of %zu input gradients differ from finite differences", what, bad, TRB);

    /* State at t = -1: dstate on exit holds dL/dstate_{-1}. */
    double up[MAXB * MAXN];
    for (size_t k = 0; k < ns; k++) {
        double *st = k == 0 ? u0 : c0;
        for (size_t i = 0; i < RB; i++) {
            memcpy(up, st, RB * sizeof *up);
            up[i] = st[i] + h;
            double lp = ref_forward(fc, I, beta, theta, alpha, k == 0 ? up : u0, k == 1 ? up : c0, a, c, NULL, NULL, NULL);
            up[i] = st[i] - h;
            double lm = ref_forward(fc, I, beta, theta, alpha, k == 0 ? up : u0, k == 1 ? up : c0, a, c, NULL, NULL, NULL);
            double fd = (lp - lm) / (2 * h);
            CHECK_MSG(NEAR_REL(dstate[k][i], fd, tol), "%s: dstate_{-1}[%zu][%zu] = %.9g, finite difference %.9g", what,
                      k, i, (double)dstate[k][i], fd);
        }
    }

    /* Per-neuron parameters. */
    struct {
        const char *name;
        int k;
        double *v;
    } ps[3] = {{"beta", kb, beta}, {"threshold", kt, theta}, {"alpha", ka, alpha}};
    for (int q = 0; q < 3; q++) {
        if (ps[q].k < 0) continue;
        double *v = ps[q].v;
        for (size_t j = 0; j < N; j++) {
            double v0 = v[j];
            v[j] = v0 + h;
            double lp = ref_forward(fc, I, beta, theta, alpha, u0, c0, a, c, NULL, NULL, NULL);
            v[j] = v0 - h;
            double lm = ref_forward(fc, I, beta, theta, alpha, u0, c0, a, c, NULL, NULL, NULL);
            v[j] = v0;
            double fd = (lp - lm) / (2 * h);
            CHECK_MSG(NEAR_REL(dprm[ps[q].k][j], fd, tol), "%s%s: d%s[%zu] = %.9g, finite difference %.9g", what,
                      use_dv ? "" : " (dv NULL)", ps[q].name, j, (double)dprm[ps[q].k][j], fd);
        }
    }

    /* Without parameter gradients (dprm all NULL) the input gradient is the same. */
    float din2[MAXT * MAXB * MAXN];
    float *nodprm[SOMA_MAX_PARAMS] = {0};
    memset(dstate_buf, 0, sizeof dstate_buf);
    for (size_t t = T; t-- > 0;) {
        const float *prev[SOMA_MAX_STATE], *cur[SOMA_MAX_STATE];
        for (size_t k = 0; k < ns; k++) {
            prev[k] = tape + (t * ns + k) * RB;
            cur[k] = tape + ((t + 1) * ns + k) * RB;
        }
        m->backward(&args, prev, cur, dstate, fc_ + t * RB, use_dv ? fa + t * RB : NULL, din2 + t * RB, nodprm, B, N);
    }
    CHECK_MSG(memcmp(din, din2, TRB * sizeof *din) == 0, "%s: din depends on whether dprm is given", what);
}

static void test_backward_fd(void) {
    for (int syn = 0; syn < 2; syn++)
        for (int reset = 0; reset < 2; reset++) {
            fdcase fc = {syn, reset, 2, 4, 8, 4.0};
            fd_case(&fc, 1, 100 + (uint64_t)(2 * syn + reset));
            fd_case(&fc, 0, 200 + (uint64_t)(2 * syn + reset));
            /* A longer, wider case with another slope. */
            fdcase fc2 = {syn, reset, 3, 5, 12, 2.5};
            fd_case(&fc2, 1, 300 + (uint64_t)(2 * syn + reset));
        }
}

int main(void) {
    test_registry();
    test_lif_traces();
    test_synaptic_traces();
    test_surrogates();
    test_backward_fd();
    return t_report("models");
}
