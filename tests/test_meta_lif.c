/* test_meta_lif.c — the meta LIF model (src/models/meta_lif.c):
 *   1. descriptors, and a deterministic forward trace worked out by hand with
 *      u_reset != 0 (membrane U and spikes at every step);
 *   2. deterministic backward against central finite differences of a
 *      double-precision reference forward in which the output spike is
 *      sigmoid(k(U - theta)) (the "sigmoid" surrogate with slope k) and the
 *      reset signal R_t = H(U_{t-1} - theta) stays a hard step: din, dbeta,
 *      dtheta, du_reset and dU_{-1};
 *   3. probabilistic mode: same (rng_key, row0, step) gives the same spikes
 *      (also when the batch is split into rows), another key other spikes,
 *      the firing rate of a neuron held at p ~ 0.3 is p within 5 sigma, and the
 *      backward is the straight-through din = ds * p(1-p)/T, with the reset
 *      signal equal to the spike the forward drew;
 *   4. through the trainer: bit-identical losses with 1 and 2 threads, the
 *      loss falls over 3 epochs, and an experiment file loads.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/model.h"
#include "soma.h"
#include "testlib.h"

#define MAXN 8
#define MAXB 4
#define MAXT 16
#define NEAR_REL(x, y, tol) (fabs((double)(x) - (double)(y)) <= (tol) * fmax(1.0, fmax(fabs((double)(x)), fabs((double)(y)))))

enum { K_BETA, K_THETA, K_URESET, K_TEMP, K_N };

typedef struct params {
    float v[SOMA_MAX_PARAMS][MAXN];
} params;

static const soma_model *meta(void) {
    const soma_model *m = soma_model_find("meta_lif");
    CHECK(m != NULL);
    return m;
}

static void test_descriptors(void) {
    const soma_model *m = meta();
    if (!m) return;
    static const char *const names[] = {"beta", "threshold", "u_reset", "temperature"};
    static const float defs[] = {0.95f, 1.0f, 0.0f, 0.0f};
    CHECK(m->n_params == K_N && m->n_state == 1 && m->spiking == 1 && strcmp(m->state_names[0], "v") == 0);
    for (int k = 0; k < K_N && (size_t)k < m->n_params; k++) {
        CHECK_MSG(strcmp(m->params[k].name, names[k]) == 0, "param %d is %s", k, m->params[k].name);
        CHECK(m->params[k].def == defs[k]);
        CHECK(m->params[k].learnable == (k != K_TEMP));
    }
    CHECK(m->params[K_URESET].lo == -1e6f && m->params[K_URESET].hi == 1e6f);
    CHECK(m->params[K_TEMP].lo == 0.0f && m->params[K_TEMP].hi == 1e3f);
}

static void make_args(params *p, soma_model_args *a, float *scratch, const float *beta, const float *theta,
                      const float *ur, float temp, size_t N) {
    memset(a, 0, sizeof *a);
    for (size_t j = 0; j < N; j++) {
        p->v[K_BETA][j] = beta[j];
        p->v[K_THETA][j] = theta[j];
        p->v[K_URESET][j] = ur[j];
        p->v[K_TEMP][j] = temp;
    }
    for (int k = 0; k < K_N; k++) a->prm[k] = p->v[k];
    a->surrogate = SOMA_SURROGATE_SIGMOID;
    a->surrogate_param = 4.0f;
    a->scratch = scratch;
}

/* T forward steps (a->step = t). in [T][B][N]; tape [(T+1)][B][N], index 0 = u0 (zero if NULL). */
static void run_forward(const soma_model *m, soma_model_args *a, const float *in, size_t T, size_t B, size_t N,
                        const float *u0, float *tape, float *s) {
    size_t RB = B * N;
    if (u0) memcpy(tape, u0, RB * sizeof *tape);
    else memset(tape, 0, RB * sizeof *tape);
    for (size_t t = 0; t < T; t++) {
        const float *prev[1] = {tape + t * RB};
        float *cur[1] = {tape + (t + 1) * RB};
        a->step = t;
        m->forward(a, prev, cur, s + t * RB, in + t * RB, B, N);
    }
}

/* ------------------------------------------------------ 1. hand trace */

/* B = 1, N = 2, T = 6, deterministic (temperature 0); dyadic values, exact in float.
 * R[t] = S[t-1]; U = R ? u_reset + I : beta*U[t-1] + I; S = U > theta.
 * j=0: beta 1/2, theta 1, u_reset -1/2, input 0.75 constant
 *   t0: 0.75 -> 0;  t1: 0.375+0.75 = 1.125 -> 1;  t2: R: -0.5+0.75 = 0.25 -> 0;
 *   t3: 0.125+0.75 = 0.875 -> 0;  t4: 0.4375+0.75 = 1.1875 -> 1;  t5: R: 0.25 -> 0
 * j=1: beta 3/4, theta 1/2, u_reset 1/4, inputs 0.625 0.5 0.125 0.75 0.5 0
 *   t0: 0.625 -> 1;  t1: R: 0.25+0.5 = 0.75 -> 1 (reset to zero would give 0.5 -> 0);
 *   t2: R: 0.25+0.125 = 0.375 -> 0;  t3: 0.28125+0.75 = 1.03125 -> 1;
 *   t4: R: 0.25+0.5 = 0.75 -> 1;  t5: R: 0.25+0 = 0.25 -> 0 */
static void test_trace(void) {
    const soma_model *m = meta();
    if (!m) return;
    const float beta[2] = {0.5f, 0.75f}, theta[2] = {1.0f, 0.5f}, ur[2] = {-0.5f, 0.25f};
    const float in[12] = {0.75f, 0.625f, 0.75f, 0.5f, 0.75f, 0.125f, 0.75f, 0.75f, 0.75f, 0.5f, 0.75f, 0.0f};
    const double U[12] = {0.75, 0.625, 1.125, 0.75, 0.25, 0.375, 0.875, 1.03125, 1.1875, 0.75, 0.25, 0.25};
    const int S[12] = {0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0};
    float scratch[2 * MAXN], tape[7 * 2], s[12];
    params p;
    soma_model_args a;
    make_args(&p, &a, scratch, beta, theta, ur, 0.0f, 2);
    a.rng_key = 99; /* ignored in deterministic mode */
    run_forward(m, &a, in, 6, 1, 2, NULL, tape, s);
    for (size_t e = 0; e < 12; e++) {
        CHECK_MSG(tape[2 + e] == (float)U[e], "U[t=%zu][j=%zu] = %.9g, expected %.9g", e / 2, e % 2,
                  (double)tape[2 + e], U[e]);
        CHECK_MSG(s[e] == (float)S[e], "S[t=%zu][j=%zu] = %g, expected %d", e / 2, e % 2, (double)s[e], S[e]);
    }
}

/* ------------------------------------------ 2. backward vs finite differences */

typedef struct refp {
    double beta[MAXN], theta[MAXN], ur[MAXN];
} refp;

/* L = sum a*U_t + c*sigmoid(k(U_t - theta)); margin = min |U - theta| over t = -1..T-1. */
static double ref_forward(size_t T, size_t B, size_t N, double k, const double *I, const refp *p, const double *u0,
                          const double *a, const double *c, double *U, double *margin, int *spikes, int *resets) {
    size_t RB = B * N;
    double u[MAXB * MAXN], L = 0.0, mg = 1e300;
    int ns = 0, nr = 0;
    memcpy(u, u0, RB * sizeof *u);
    for (size_t i = 0; i < RB; i++) mg = fmin(mg, fabs(u0[i] - p->theta[i % N]));
    for (size_t t = 0; t < T; t++)
        for (size_t i = 0; i < RB; i++) {
            size_t j = i % N, e = t * RB + i;
            int R = u[i] > p->theta[j];
            nr += R;
            u[i] = (R ? p->ur[j] : p->beta[j] * u[i]) + I[e];
            double x = u[i] - p->theta[j];
            L += a[e] * u[i] + c[e] / (1.0 + exp(-k * x));
            mg = fmin(mg, fabs(x));
            ns += x > 0;
            if (U) U[e] = u[i];
        }
    if (margin) *margin = mg;
    if (spikes) *spikes = ns;
    if (resets) *resets = nr;
    return L;
}

static void fd_case(size_t T, size_t B, size_t N, double k, int use_dv, uint64_t seed) {
    const soma_model *m = meta();
    if (!m) return;
    size_t RB = B * N, TRB = T * RB;
    refp p;
    soma_rng rng;
    soma_rng_init(&rng, seed, 0);
    float fb[MAXN], ft[MAXN], fu[MAXN];
    for (size_t j = 0; j < N; j++) {
        fb[j] = 0.5f + 0.45f * soma_rng_uniform(&rng);
        ft[j] = 0.6f + 0.6f * soma_rng_uniform(&rng);
        fu[j] = -0.4f + 0.8f * soma_rng_uniform(&rng);
        p.beta[j] = fb[j], p.theta[j] = ft[j], p.ur[j] = fu[j];
    }
    double I[MAXT * MAXB * MAXN], a[MAXT * MAXB * MAXN], c[MAXT * MAXB * MAXN], U[MAXT * MAXB * MAXN];
    double u0[MAXB * MAXN];
    float fin[MAXT * MAXB * MAXN], fa[MAXT * MAXB * MAXN], fc[MAXT * MAXB * MAXN], fu0[MAXB * MAXN];
    double margin = 0;
    int spikes = 0, resets = 0, tries = 0;
    for (;;) {
        for (size_t i = 0; i < RB; i++) fu0[i] = -0.5f + 2.0f * soma_rng_uniform(&rng), u0[i] = fu0[i];
        for (size_t e = 0; e < TRB; e++) {
            fin[e] = -0.2f + 1.1f * soma_rng_uniform(&rng), I[e] = fin[e];
            fa[e] = use_dv ? 2.0f * soma_rng_uniform(&rng) - 1.0f : 0.0f, a[e] = fa[e];
            fc[e] = 2.0f * soma_rng_uniform(&rng) - 1.0f, c[e] = fc[e];
        }
        ref_forward(T, B, N, k, I, &p, u0, a, c, U, &margin, &spikes, &resets);
        if ((margin >= 1e-3 && resets >= 2) || ++tries > 500) break;
    }
    CHECK_MSG(margin >= 1e-3 && resets >= 2, "seed %llu: no usable draw (margin %g, resets %d)",
              (unsigned long long)seed, margin, resets);

    params pp;
    soma_model_args args;
    float scratch[2 * MAXN], tape[(MAXT + 1) * MAXB * MAXN], s[MAXT * MAXB * MAXN];
    make_args(&pp, &args, scratch, fb, ft, fu, 0.0f, N);
    args.surrogate_param = (float)k;
    run_forward(m, &args, fin, T, B, N, fu0, tape, s);
    int bad_u = 0;
    for (size_t e = 0; e < TRB; e++) bad_u += !NEAR_REL(tape[RB + e], U[e], 1e-5);
    CHECK_MSG(bad_u == 0, "seed %llu: %d tape entries differ from the double reference", (unsigned long long)seed, bad_u);

    float g[MAXB * MAXN], din[MAXT * MAXB * MAXN], dpb[SOMA_MAX_PARAMS][MAXN];
    memset(g, 0, sizeof g), memset(dpb, 0, sizeof dpb);
    float *dprm[SOMA_MAX_PARAMS] = {dpb[0], dpb[1], dpb[2], NULL};
    float *dstate[1] = {g};
    for (size_t t = T; t-- > 0;) {
        const float *prev[1] = {tape + t * RB}, *cur[1] = {tape + (t + 1) * RB};
        args.step = t;
        m->backward(&args, prev, cur, dstate, fc + t * RB, use_dv ? fa + t * RB : NULL, din + t * RB, dprm, B, N);
    }
    const double h = 1e-6, tol = 1e-4;
    double Ip[MAXT * MAXB * MAXN];
    memcpy(Ip, I, TRB * sizeof *I);
    int bad = 0;
    for (size_t e = 0; e < TRB; e++) {
        Ip[e] = I[e] + h;
        double lp = ref_forward(T, B, N, k, Ip, &p, u0, a, c, NULL, NULL, NULL, NULL);
        Ip[e] = I[e] - h;
        double lm = ref_forward(T, B, N, k, Ip, &p, u0, a, c, NULL, NULL, NULL, NULL);
        Ip[e] = I[e];
        double fd = (lp - lm) / (2 * h);
        if (!NEAR_REL(din[e], fd, tol) && bad++ < 5)
            fprintf(stderr, "din[%zu] = %.9g, finite difference %.9g\n", e, (double)din[e], fd);
    }
    CHECK_MSG(bad == 0, "seed %llu: %d of %zu input gradients differ from finite differences",
              (unsigned long long)seed, bad, TRB);
    double st[MAXB * MAXN];
    for (size_t i = 0; i < RB; i++) {
        memcpy(st, u0, RB * sizeof *st);
        st[i] = u0[i] + h;
        double lp = ref_forward(T, B, N, k, I, &p, st, a, c, NULL, NULL, NULL, NULL);
        st[i] = u0[i] - h;
        double lm = ref_forward(T, B, N, k, I, &p, st, a, c, NULL, NULL, NULL, NULL);
        double fd = (lp - lm) / (2 * h);
        CHECK_MSG(NEAR_REL(g[i], fd, tol), "dU_{-1}[%zu] = %.9g, finite difference %.9g", i, (double)g[i], fd);
    }
    struct {
        const char *name;
        int k;
        double *v;
    } ps[3] = {{"beta", K_BETA, p.beta}, {"threshold", K_THETA, p.theta}, {"u_reset", K_URESET, p.ur}};
    for (int q = 0; q < 3; q++) {
        double *v = ps[q].v;
        int nonzero = 0;
        for (size_t j = 0; j < N; j++) {
            double v0 = v[j];
            v[j] = v0 + h;
            double lp = ref_forward(T, B, N, k, I, &p, u0, a, c, NULL, NULL, NULL, NULL);
            v[j] = v0 - h;
            double lm = ref_forward(T, B, N, k, I, &p, u0, a, c, NULL, NULL, NULL, NULL);
            v[j] = v0;
            double fd = (lp - lm) / (2 * h);
            nonzero += fabs(fd) > 1e-3;
            CHECK_MSG(NEAR_REL(dprm[ps[q].k][j], fd, tol), "seed %llu: d%s[%zu] = %.9g, finite difference %.9g",
                      (unsigned long long)seed, ps[q].name, j, (double)dprm[ps[q].k][j], fd);
        }
        CHECK_MSG(nonzero > 0, "seed %llu: d%s is ~0 for every neuron", (unsigned long long)seed, ps[q].name);
    }
}

static void test_backward_fd(void) {
    fd_case(8, 2, 4, 4.0, 1, 11);
    fd_case(8, 2, 4, 4.0, 0, 12);
    fd_case(12, 3, 5, 2.5, 1, 13);
}

/* ------------------------------------------------- 3. probabilistic mode */

static void test_prob_repro(void) {
    const soma_model *m = meta();
    if (!m) return;
    enum { T = 16, B = 3, N = 7 };
    float beta[N], theta[N], ur[N], in[T * B * N];
    soma_rng rng;
    soma_rng_init(&rng, 21, 0);
    for (size_t j = 0; j < N; j++) beta[j] = 0.8f, theta[j] = 1.0f, ur[j] = 0.125f * (float)j - 0.25f;
    for (size_t e = 0; e < T * B * N; e++) in[e] = 0.2f + 0.6f * soma_rng_uniform(&rng);
    float scratch[2 * N], tape1[(T + 1) * B * N], tape2[(T + 1) * B * N], s1[T * B * N], s2[T * B * N];
    params p;
    soma_model_args a;
    make_args(&p, &a, scratch, beta, theta, ur, 0.5f, N);
    a.rng_key = 0x1234;
    run_forward(m, &a, in, T, B, N, NULL, tape1, s1);
    run_forward(m, &a, in, T, B, N, NULL, tape2, s2);
    CHECK(memcmp(s1, s2, sizeof s1) == 0 && memcmp(tape1, tape2, sizeof tape1) == 0);
    size_t nspk = 0;
    for (size_t e = 0; e < T * B * N; e++) nspk += s1[e] != 0.0f;
    CHECK_MSG(nspk > 20 && nspk < T * B * N - 20, "%zu spikes of %d", nspk, T * B * N);
    /* Row by row (row0 = b, B = 1): the same spikes. */
    int same_rows = 1;
    for (size_t b = 0; b < B; b++) {
        float inb[T * N], tb[(T + 1) * N], sb[T * N];
        for (size_t t = 0; t < T; t++) memcpy(inb + t * N, in + (t * B + b) * N, N * sizeof(float));
        a.row0 = b;
        run_forward(m, &a, inb, T, 1, N, NULL, tb, sb);
        for (size_t t = 0; t < T; t++) same_rows &= memcmp(sb + t * N, s1 + (t * B + b) * N, N * sizeof(float)) == 0;
    }
    CHECK_MSG(same_rows, "spikes depend on how the batch is split into rows");
    a.row0 = 0;
    a.rng_key = 0x1235;
    run_forward(m, &a, in, T, B, N, NULL, tape2, s2);
    size_t diff = 0;
    for (size_t e = 0; e < T * B * N; e++) diff += s1[e] != s2[e];
    CHECK_MSG(diff > 10, "another rng_key changes only %zu spikes", diff);
}

/* beta 0, u_reset 0: U[t] = I exactly, so p = sigmoid((I - theta)/T) every step. */
static void test_prob_rate(void) {
    const soma_model *m = meta();
    if (!m) return;
    enum { B = 4, N = 8, STEPS = 2000 };
    float beta[N], theta[N], ur[N], in[B * N], scratch[2 * N], u[2][B * N], s[B * N];
    const float temp = 0.5f;
    float I = 1.0f + temp * logf(0.3f / 0.7f);
    for (size_t j = 0; j < N; j++) beta[j] = 0.0f, theta[j] = 1.0f, ur[j] = 0.0f;
    for (size_t i = 0; i < B * N; i++) in[i] = I;
    params p;
    soma_model_args a;
    make_args(&p, &a, scratch, beta, theta, ur, temp, N);
    a.rng_key = 777;
    memset(u, 0, sizeof u);
    double n1 = 0;
    for (size_t t = 0; t < STEPS; t++) {
        const float *prev[1] = {u[t & 1]};
        float *cur[1] = {u[(t + 1) & 1]};
        a.step = t;
        m->forward(&a, prev, cur, s, in, B, N);
        for (size_t i = 0; i < B * N; i++) n1 += s[i];
    }
    double pe = 1.0 / (1.0 + exp(-((double)I - 1.0) / temp)), n = (double)STEPS * B * N;
    double sigma = sqrt(pe * (1 - pe) / n), mean = n1 / n;
    CHECK_MSG(fabs(pe - 0.3) < 1e-5, "p = %g", pe);
    CHECK_MSG(fabs(mean - pe) <= 5 * sigma, "firing rate %g, expected %g +- %g", mean, pe, 5 * sigma);
}

/* Straight-through backward: at one step t with no gradient from t+1,
 * d = ds * p(1-p)/T (p = sigmoid((U_t - theta)/T) at the tape value),
 * din = d, du_reset = R*d, dbeta = (1-R)*U_{t-1}*d, dtheta = -d,
 * dU_{t-1} = (1-R)*beta*d, with R = the spike the forward drew at t-1. */
static void test_prob_backward(void) {
    const soma_model *m = meta();
    if (!m) return;
    enum { T = 10, B = 2, N = 6 };
    float beta[N], theta[N], ur[N], in[T * B * N];
    soma_rng rng;
    soma_rng_init(&rng, 31, 0);
    for (size_t j = 0; j < N; j++)
        beta[j] = 0.6f + 0.05f * (float)j, theta[j] = 0.8f + 0.05f * (float)j, ur[j] = 0.1f - 0.05f * (float)j;
    for (size_t e = 0; e < T * B * N; e++) in[e] = 0.1f + 0.9f * soma_rng_uniform(&rng);
    const float temp = 0.3f; /* not 1/surrogate slope: the sigmoid surrogate would equal the STE */
    float scratch[2 * N], tape[(T + 1) * B * N], s[T * B * N];
    params p;
    soma_model_args a;
    make_args(&p, &a, scratch, beta, theta, ur, temp, N);
    a.rng_key = 4242;
    a.row0 = 5;
    run_forward(m, &a, in, T, B, N, NULL, tape, s);
    int resets = 0, kept = 0, bad = 0;
    for (size_t t = 1; t < T; t++) {
        float ds[B * N], g[B * N], din[B * N], dpb[3][N];
        for (size_t i = 0; i < B * N; i++) ds[i] = 2.0f * soma_rng_uniform(&rng) - 1.0f, g[i] = 0.0f, din[i] = 0.0f;
        memset(dpb, 0, sizeof dpb);
        float *dprm[SOMA_MAX_PARAMS] = {dpb[0], dpb[1], dpb[2], NULL};
        float *dstate[1] = {g};
        const float *prev[1] = {tape + t * B * N}, *cur[1] = {tape + (t + 1) * B * N};
        a.step = t;
        m->backward(&a, prev, cur, dstate, ds, NULL, din, dprm, B, N);
        double eb[N] = {0}, et[N] = {0}, eu[N] = {0};
        for (size_t i = 0; i < B * N; i++) {
            size_t j = i % N;
            double pr = 1.0 / (1.0 + exp(-((double)cur[0][i] - theta[j]) / temp));
            double d = ds[i] * pr * (1.0 - pr) / temp;
            double R = s[(t - 1) * B * N + i];
            resets += R != 0, kept += R == 0;
            bad += !NEAR_REL(din[i], d, 1e-5);
            bad += !NEAR_REL(g[i], (1 - R) * beta[j] * d, 1e-5);
            eb[j] += (1 - R) * prev[0][i] * d, et[j] -= d, eu[j] += R * d;
        }
        for (size_t j = 0; j < N; j++)
            bad += !NEAR_REL(dpb[0][j], eb[j], 1e-5) + !NEAR_REL(dpb[1][j], et[j], 1e-5) +
                   !NEAR_REL(dpb[2][j], eu[j], 1e-5);
    }
    CHECK_MSG(bad == 0, "%d probabilistic gradients differ from ds*p(1-p)/T", bad);
    CHECK_MSG(resets > 5 && kept > 5, "resets %d, no resets %d", resets, kept);
}

/* ------------------------------------------------- 4. trainer, experiment */

static void make_data(soma_dataset *ds, size_t n) {
    ds->n = n, ds->dim = 6, ds->rows = 2, ds->cols = 3, ds->classes = 3;
    ds->x = malloc(n * ds->dim);
    ds->y = malloc(n);
    soma_rng r;
    soma_rng_init(&r, 5, 1);
    for (size_t i = 0; i < n; i++) {
        ds->y[i] = (uint8_t)(soma_rng_u32(&r) % 3);
        for (size_t k = 0; k < ds->dim; k++)
            ds->x[i * ds->dim + k] = (uint8_t)((soma_rng_u32(&r) % 100) + (k % 3 == ds->y[i] ? 155 : 0));
    }
}

static soma_net *make_net(void) {
    soma_net *net = NULL;
    size_t in, hid, out;
    int ok = soma_net_create(&net) == 0;
    ok = ok && soma_net_add_pop(net, "in", "input", 6, &in) == 0;
    ok = ok && soma_net_add_pop(net, "hidden", "meta_lif", 12, &hid) == 0;
    ok = ok && soma_net_add_pop(net, "out", "lif", 3, &out) == 0;
    ok = ok && soma_net_set_param(net, hid, "temperature", 0.5f) == 0;
    ok = ok && soma_net_set_param(net, hid, "u_reset", 0.1f) == 0;
    ok = ok && soma_net_set_learn(net, hid, "beta", SOMA_LEARN_NEURON) == 0;
    ok = ok && soma_net_set_learn(net, hid, "threshold", SOMA_LEARN_NEURON) == 0;
    ok = ok && soma_net_set_learn(net, hid, "u_reset", SOMA_LEARN_NEURON) == 0;
    ok = ok && soma_net_connect_dense(net, in, hid, 1) == 0;
    ok = ok && soma_net_connect_dense(net, hid, out, 1) == 0;
    ok = ok && soma_net_init_weights(net, 9) == 0;
    CHECK_MSG(ok, "building the meta_lif net: %s", net ? soma_net_errmsg(net) : "no net");
    if (!ok) soma_net_free(net);
    return ok ? net : NULL;
}

static void opts(soma_train_opts *o, soma_data_opts *d, int threads) {
    soma_train_opts_default(o);
    o->batch = 16;
    o->lr = 1e-2f;
    o->seed = 3;
    o->threads = threads;
    o->loss = SOMA_LOSS_CE_COUNT;
    soma_data_opts_default(d);
    d->encoding = SOMA_ENCODING_DIRECT;
    d->steps = 10;
    d->gain = 2.0f;
}

static void test_threads(void) {
    soma_dataset ds = {0};
    make_data(&ds, 16);
    double loss[2][2] = {{0}};
    for (int th = 0; th < 2; th++) {
        soma_net *net = make_net();
        if (!net) break;
        soma_train_opts o;
        soma_data_opts d;
        opts(&o, &d, th + 1);
        soma_trainer *tr = NULL;
        CHECK(soma_train_create(&tr, net, &o, &d) == 0);
        if (tr) {
            size_t idx[16];
            for (size_t i = 0; i < 16; i++) idx[i] = i;
            float *x = malloc(soma_encode_size(&d, &ds, 16) * sizeof(float));
            int tc = 0;
            CHECK(soma_encode(&d, &ds, idx, 16, 1, 0, x, &tc) == 0);
            CHECK(soma_train_grad(tr, x, tc, ds.y, 16, &loss[th][0], NULL) == 0);
            CHECK(soma_train_grad(tr, x, tc, ds.y, 16, &loss[th][1], NULL) == 0);
            free(x);
            soma_train_free(tr);
        }
        soma_net_free(net);
    }
    CHECK_MSG(memcmp(loss[0], loss[1], sizeof loss[0]) == 0, "losses %.17g %.17g (1 thread), %.17g %.17g (2)",
              loss[0][0], loss[0][1], loss[1][0], loss[1][1]);
    /* Rows are keyed by their index in the whole batch (row0), not in the
     * chunk: samples 0,1,0,1 draw other hidden spikes in rows 2,3 than in rows 0,1. */
    soma_net *net = make_net();
    soma_trainer *tr = NULL;
    soma_train_opts o;
    soma_data_opts d;
    opts(&o, &d, 1);
    if (net && soma_train_create(&tr, net, &o, &d) == 0) {
        size_t idx[4] = {0, 1, 0, 1}, h = 0;
        float *x = malloc(soma_encode_size(&d, &ds, 4) * sizeof(float));
        uint8_t spk[10 * 4 * 12];
        int tc = 0;
        CHECK(soma_encode(&d, &ds, idx, 4, 1, 0, x, &tc) == 0 && soma_net_find_pop(net, "hidden", &h) == 0);
        CHECK(soma_train_record(tr, x, tc, 4, h, spk) == 0);
        size_t diff = 0;
        for (size_t t = 0; t < 10; t++) diff += memcmp(spk + (t * 4) * 12, spk + (t * 4 + 2) * 12, 2 * 12) != 0;
        CHECK_MSG(diff > 0, "rows 2,3 repeat the draws of rows 0,1");
        free(x);
    } else
        CHECK(0);
    soma_train_free(tr);
    soma_net_free(net);
    /* The second batch draws other spikes: the same input gives another loss. */
    CHECK_MSG(loss[0][0] != loss[0][1], "the draws did not change between batches: %.17g", loss[0][0]);
    soma_data_free(&ds);
}

static void test_training(void) {
    soma_dataset ds = {0};
    make_data(&ds, 120);
    soma_net *net = make_net();
    soma_train_opts o;
    soma_data_opts d;
    opts(&o, &d, 2);
    soma_trainer *tr = NULL;
    int st = net ? soma_train_create(&tr, net, &o, &d) : -1;
    CHECK_MSG(st == 0, "train_create: %s", net ? soma_net_errmsg(net) : "");
    if (st == 0) {
        double loss[3] = {0, 0, 0};
        for (int e = 0; e < 3; e++) {
            soma_epoch_result er;
            CHECK(soma_train_epoch(tr, &ds, e, NULL, NULL, &er) == 0);
            loss[e] = er.loss;
        }
        CHECK_MSG(isfinite(loss[0]) && isfinite(loss[2]) && loss[2] < loss[0], "meta_lif loss %g -> %g -> %g",
                  loss[0], loss[1], loss[2]);
        soma_tensor t;
        CHECK(soma_net_tensor_find(net, "hidden.u_reset", &t) == 0 && t.rows * t.cols == 12);
        int moved = 0;
        if (soma_net_tensor_find(net, "hidden.u_reset", &t) == 0)
            for (size_t i = 0; i < t.rows * t.cols; i++) moved += t.data[i] != 0.1f && isfinite(t.data[i]);
        CHECK_MSG(moved > 0, "u_reset did not move");
        soma_train_free(tr);
    }
    soma_net_free(net);
    soma_data_free(&ds);
}

static void test_experiment(void) {
    const char *dir = t_tmpdir("meta_lif");
    char path[600], err[512] = "";
    snprintf(path, sizeof path, "%s/meta.yaml", dir);
    const char *yaml = "network:\n  populations:\n    in: {model: input, size: 4}\n"
                       "    h: {model: meta_lif, size: 8, temperature: 0.5, learn: {u_reset: neuron}}\n"
                       "    out: {model: lif, size: 2}\n"
                       "  projections:\n    - {from: in, to: h}\n    - {from: h, to: out}\n";
    t_write_file(path, yaml, strlen(yaml));
    soma_net *net = NULL;
    soma_data_opts d;
    soma_train_opts o;
    CHECK_MSG(soma_experiment_load(path, &net, &d, &o, err, sizeof err) == 0, "%s", err);
    if (net) {
        size_t h;
        float v = -1;
        soma_pop_info pi;
        CHECK(soma_net_find_pop(net, "h", &h) == 0);
        CHECK(soma_net_pop_info(net, h, &pi) == 0 && strcmp(pi.model, "meta_lif") == 0 && pi.size == 8);
        CHECK(soma_net_get_param(net, h, "temperature", &v) == 0 && v == 0.5f);
        CHECK(soma_net_get_param(net, h, "u_reset", &v) == 0 && v == 0.0f);
        CHECK(soma_net_get_learn(net, h, "u_reset") == SOMA_LEARN_NEURON);
        CHECK(soma_net_get_learn(net, h, "beta") == SOMA_LEARN_NONE);
        soma_net_free(net);
    }
}

int main(void) {
    test_descriptors();
    test_trace();
    test_backward_fd();
    test_prob_repro();
    test_prob_rate();
    test_prob_backward();
    test_threads();
    test_training();
    test_experiment();
    return t_report("test_meta_lif");
}
