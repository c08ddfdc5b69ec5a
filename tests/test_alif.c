/* test_alif.c — the adaptive LIF model (src/models/alif.c):
 *   1. forward traces worked out by hand, both reset modes (membrane U,
 *      adaptation b and spikes at every step);
 *   2. backward against central finite differences of a double-precision
 *      reference forward of the same equations, in which the output spike is
 *      sigmoid(k(U - A)) (whose derivative is the "sigmoid" surrogate with
 *      slope k) and the reset signal R_t = H(U_{t-1} - A_{t-1}) stays a hard
 *      step (detached in backward; its finite-difference derivative is 0 away
 *      from a crossing): din, dbeta, dtheta, drho, dgamma and dstate at t = -1;
 *   3. training from the public API (loss falls, rho learns) and the
 *      experiment-file parameters (accepted, and rho out of range rejected);
 *   4. a model-file round trip keeps rho, gamma and learn modes.
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

enum { K_BETA, K_THETA, K_RHO, K_GAMMA, K_RESET, K_N };

/* Per-neuron parameter arrays, descriptor order. */
typedef struct params {
    float v[SOMA_MAX_PARAMS][MAXN];
} params;

static const soma_model *alif(void) {
    const soma_model *m = soma_model_find("alif");
    CHECK(m != NULL);
    return m;
}

/* Checks that the descriptor order is the one this file's K_* indices assume. */
static void test_descriptors(void) {
    const soma_model *m = alif();
    if (!m) return;
    static const char *const names[] = {"beta", "threshold", "rho", "gamma", "reset"};
    static const float defs[] = {0.95f, 1.0f, 0.97f, 0.2f, 0.0f};
    CHECK(m->n_params == K_N && m->n_state == 2 && m->spiking == 1);
    CHECK(strcmp(m->state_names[0], "v") == 0 && strcmp(m->state_names[1], "b") == 0);
    for (int k = 0; k < K_N && (size_t)k < m->n_params; k++) {
        CHECK_MSG(strcmp(m->params[k].name, names[k]) == 0, "param %d is %s", k, m->params[k].name);
        CHECK(m->params[k].def == defs[k]);
        CHECK(m->params[k].learnable == (k != K_RESET));
    }
    CHECK(m->params[K_RHO].lo == 0.0f && m->params[K_RHO].hi == 1.0f);
    CHECK(m->params[K_GAMMA].lo == 0.0f && m->params[K_GAMMA].hi == 1e3f);
    CHECK(m->params[K_RESET].choices && strcmp(m->params[K_RESET].choices[0], "subtract") == 0 &&
          strcmp(m->params[K_RESET].choices[1], "zero") == 0);
}

static void make_args(params *p, soma_model_args *a, float *scratch, int reset, const float *beta, const float *theta,
                      const float *rho, const float *gamma, size_t N) {
    memset(a, 0, sizeof *a);
    for (size_t j = 0; j < N; j++) {
        p->v[K_BETA][j] = beta[j];
        p->v[K_THETA][j] = theta[j];
        p->v[K_RHO][j] = rho[j];
        p->v[K_GAMMA][j] = gamma[j];
        p->v[K_RESET][j] = (float)reset;
    }
    for (int k = 0; k < K_N; k++) a->prm[k] = p->v[k];
    a->reset = reset;
    a->surrogate = SOMA_SURROGATE_SIGMOID;
    a->surrogate_param = 4.0f;
    a->scratch = scratch;
}

/* T forward steps. in [T][B][N]; tape [(T+1)][2][B][N], index 0 the zero state of t = -1. */
static void run_forward(const soma_model *m, const soma_model_args *a, const float *in, size_t T, size_t B, size_t N,
                        float *tape, float *s) {
    size_t RB = B * N;
    memset(tape, 0, 2 * RB * sizeof *tape);
    for (size_t t = 0; t < T; t++) {
        const float *prev[2] = {tape + (t * 2) * RB, tape + (t * 2 + 1) * RB};
        float *cur[2] = {tape + ((t + 1) * 2) * RB, tape + ((t + 1) * 2 + 1) * RB};
        m->forward(a, prev, cur, s + t * RB, in + t * RB, B, N);
    }
}

/* -------------------------------------------------- 1. hand-worked traces */

static void check_trace(const char *what, const soma_model *m, const soma_model_args *a, const float *in, size_t T,
                        size_t B, size_t N, const double *U, const double *Bv, const int *S) {
    float tape[(MAXT + 1) * 2 * MAXB * MAXN], s[MAXT * MAXB * MAXN];
    for (size_t i = 0; i < T * B * N; i++) s[i] = -1.0f;
    run_forward(m, a, in, T, B, N, tape, s);
    size_t RB = B * N;
    for (size_t t = 0; t < T; t++)
        for (size_t i = 0; i < RB; i++) {
            size_t e = t * RB + i;
            float u = tape[((t + 1) * 2) * RB + i], b = tape[((t + 1) * 2 + 1) * RB + i];
            CHECK_MSG(fabs(u - U[e]) <= 1e-6, "%s: U[t=%zu][b=%zu][j=%zu] = %.9g, expected %.9g", what, t, i / N, i % N,
                      (double)u, U[e]);
            CHECK_MSG(fabs(b - Bv[e]) <= 1e-6, "%s: b[t=%zu][b=%zu][j=%zu] = %.9g, expected %.9g", what, t, i / N,
                      i % N, (double)b, Bv[e]);
            CHECK_MSG(s[e] == (float)S[e], "%s: S[t=%zu][b=%zu][j=%zu] = %g, expected %d", what, t, i / N, i % N,
                      (double)s[e], S[e]);
        }
}

/* Two neurons (all values dyadic, so float is exact):
 *   j=0: beta 1/2, theta 1,   rho 1/2, gamma 1/2
 *   j=1: beta 3/4, theta 1/2, rho 3/4, gamma 1/4
 * A = theta + b; R[t] = S[t-1]; b[t] = rho*b[t-1] + gamma*R[t]. */
static void test_traces(void) {
    const soma_model *m = alif();
    if (!m) return;
    const float beta[2] = {0.5f, 0.75f}, theta[2] = {1.0f, 0.5f}, rho[2] = {0.5f, 0.75f}, gamma[2] = {0.5f, 0.25f};
    float scratch[2 * MAXN];
    params p;
    soma_model_args a;

    /* Reset by subtraction, B = 1, T = 6. j=0 input 0.75 constant;
     * j=1 input 0.625 0.5 0.25 0.75 0.5 0.
     * j=0: t0: b = 0,              U = 0.75,                         A = 1     -> 0
     *      t1: b = 0,              U = 0.375+0.75 = 1.125,           A = 1     -> spike
     *      t2: b = 0+0.5 = 0.5,    U = 0.5625+0.75-1 = 0.3125,       A = 1.5   -> 0   (R=1, subtract A[1] = 1)
     *      t3: b = 0.25,           U = 0.15625+0.75 = 0.90625,       A = 1.25  -> 0   (a LIF would fire here)
     *      t4: b = 0.125,          U = 0.453125+0.75 = 1.203125,     A = 1.125 -> spike
     *      t5: b = 0.0625+0.5 = 0.5625, U = 0.6015625+0.75-1.125 = 0.2265625 (subtract A[4]), A = 1.5625 -> 0
     * j=1: t0: b = 0,              U = 0.625,                        A = 0.5   -> spike
     *      t1: b = 0.25,           U = 0.46875+0.5-0.5 = 0.46875,    A = 0.75  -> 0   (subtract A[0] = 0.5)
     *      t2: b = 0.1875,         U = 0.3515625+0.25 = 0.6015625,   A = 0.6875 -> 0
     *      t3: b = 0.140625,       U = 0.451171875+0.75 = 1.201171875, A = 0.640625 -> spike
     *      t4: b = 0.10546875+0.25 = 0.35546875,
     *                              U = 0.90087890625+0.5-0.640625 = 0.76025390625, A = 0.85546875 -> 0
     *      t5: b = 0.2666015625,   U = 0.5701904296875,             A = 0.7666015625 -> 0 */
    const float in1[6 * 2] = {0.75f, 0.625f, 0.75f, 0.5f, 0.75f, 0.25f, 0.75f, 0.75f, 0.75f, 0.5f, 0.75f, 0.0f};
    const double U1[6 * 2] = {0.75,     0.625,       1.125,    0.46875,       0.3125,    0.6015625,
                              0.90625,  1.201171875, 1.203125, 0.76025390625, 0.2265625, 0.5701904296875};
    const double B1[6 * 2] = {0.0,   0.0,      0.0,   0.25,       0.5,    0.1875,
                              0.25,  0.140625, 0.125, 0.35546875, 0.5625, 0.2666015625};
    const int S1[6 * 2] = {0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0};
    make_args(&p, &a, scratch, 0, beta, theta, rho, gamma, 2);
    check_trace("alif subtract", m, &a, in1, 6, 1, 2, U1, B1, S1);

    /* Reset to zero, B = 2, T = 6. Row b=0 has the inputs above; row b=1:
     * j=0 input 1.375 constant, j=1 input 1 then 0. b is the same as with
     * subtraction wherever the spikes are.
     * b=0 j=0: 0.75; 1.125 (spike, A=1); R clears: 0+0.75 = 0.75 (A=1.5); 0.375+0.75 = 1.125 (A=1.25);
     *          0.5625+0.75 = 1.3125 (A=1.125, spike); 0+0.75 = 0.75 (A=1.5625). b as above.
     * b=0 j=1: 0.625 (spike); 0+0.5 = 0.5 (A=0.75); 0.375+0.25 = 0.625 (A=0.6875);
     *          0.46875+0.75 = 1.21875 (A=0.640625, spike); 0+0.5 = 0.5 (A=0.85546875); 0.375+0 = 0.375. b as above.
     * b=1 j=0: 1.375 (A=1, spike); b = 0.5: 0+1.375 = 1.375 (A=1.5); b = 0.25: 0.6875+1.375 = 2.0625 (A=1.25, spike);
     *          b = 0.125+0.5 = 0.625: 1.375 (A=1.625); b = 0.3125: 2.0625 (A=1.3125, spike); b = 0.65625: 1.375.
     * b=1 j=1: 1 (spike); b = 0.25: 0; then b decays by 3/4: 0.1875, 0.140625, 0.10546875, 0.0791015625; U = 0. */
    const float in2[6 * 2 * 2] = {0.75f, 0.625f, 1.375f, 1.0f, 0.75f, 0.5f,  1.375f, 0.0f, 0.75f, 0.25f, 1.375f, 0.0f,
                                  0.75f, 0.75f,  1.375f, 0.0f, 0.75f, 0.5f,  1.375f, 0.0f, 0.75f, 0.0f,  1.375f, 0.0f};
    const double U2[6 * 2 * 2] = {0.75, 0.625,   1.375,  1.0, 1.125,  0.5, 1.375,  0.0, 0.75, 0.625, 2.0625, 0.0,
                                  1.125, 1.21875, 1.375, 0.0, 1.3125, 0.5, 2.0625, 0.0, 0.75, 0.375, 1.375,  0.0};
    const double B2[6 * 2 * 2] = {0.0,   0.0,        0.0,    0.0,      0.0,    0.25,         0.5,     0.25,
                                  0.5,   0.1875,     0.25,   0.1875,   0.25,   0.140625,     0.625,   0.140625,
                                  0.125, 0.35546875, 0.3125, 0.10546875, 0.5625, 0.2666015625, 0.65625, 0.0791015625};
    const int S2[6 * 2 * 2] = {0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0};
    make_args(&p, &a, scratch, 1, beta, theta, rho, gamma, 2);
    check_trace("alif zero", m, &a, in2, 6, 2, 2, U2, B2, S2);
}

/* ------------------------------------------ 2. backward vs finite differences */

typedef struct fdcase {
    int reset;
    size_t B, N, T;
    double k; /* sigmoid slope of the smooth output spike */
} fdcase;

typedef struct refp {
    double beta[MAXN], theta[MAXN], rho[MAXN], gamma[MAXN];
} refp;

/* Double reference forward of the ALIF equations. I, a, c [T][B][N];
 * L = sum a*U_t + c*sigmoid(k(U_t - A_t)). u0, b0 [B][N]: state at t = -1.
 * U, Bs (may be NULL) get U_t and b_t; *margin gets min |U_t - A_t| (which
 * also bounds every R_t decision), *spikes the number of S_t = 1. */
static double ref_forward(const fdcase *fc, const double *I, const refp *p, const double *u0, const double *b0,
                          const double *a, const double *c, double *U, double *Bs, double *margin, int *spikes) {
    size_t B = fc->B, N = fc->N, RB = B * N;
    double u[MAXB * MAXN], bb[MAXB * MAXN], L = 0.0, mg = INFINITY;
    int ns = 0;
    memcpy(u, u0, RB * sizeof *u);
    memcpy(bb, b0, RB * sizeof *bb);
    for (size_t t = 0; t < fc->T; t++)
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < N; j++) {
                size_t i = b * N + j, e = t * RB + i;
                double Ap = p->theta[j] + bb[i];
                double R = u[i] > Ap ? 1.0 : 0.0;
                u[i] = fc->reset == 0 ? p->beta[j] * u[i] + I[e] - R * Ap : p->beta[j] * (1.0 - R) * u[i] + I[e];
                bb[i] = p->rho[j] * bb[i] + p->gamma[j] * R;
                double A = p->theta[j] + bb[i];
                L += a[e] * u[i] + c[e] / (1.0 + exp(-fc->k * (u[i] - A)));
                if (U) U[e] = u[i];
                if (Bs) Bs[e] = bb[i];
                if (fabs(u[i] - A) < mg) mg = fabs(u[i] - A);
                ns += u[i] > A;
            }
    if (margin) *margin = mg;
    if (spikes) *spikes = ns;
    return L;
}

#define NEAR_REL(x, y, tol) (fabs((x) - (y)) <= (tol) * fmax(1.0, fmax(fabs(x), fabs(y))))

/* Library backward over all steps (dstate zero on entry). accumulate = 1
 * sums din over steps into din[0..RB) as the trainer does (din_accumulate
 * set for every step but the last). */
static void run_backward(const soma_model *m, soma_model_args *args, const fdcase *fc, const float *tape,
                         const float *ds, const float *dv, float *din, float **dstate, float *const *dprm,
                         int accumulate) {
    size_t RB = fc->B * fc->N, T = fc->T;
    memset(dstate[0], 0, RB * sizeof(float));
    memset(dstate[1], 0, RB * sizeof(float));
    for (size_t t = T; t-- > 0;) {
        const float *prev[2] = {tape + (t * 2) * RB, tape + (t * 2 + 1) * RB};
        const float *cur[2] = {tape + ((t + 1) * 2) * RB, tape + ((t + 1) * 2 + 1) * RB};
        args->din_accumulate = accumulate && t != T - 1;
        m->backward(args, prev, cur, dstate, ds + t * RB, dv ? dv + t * RB : NULL, accumulate ? din : din + t * RB,
                    dprm, fc->B, fc->N);
    }
    args->din_accumulate = 0;
}

static void fd_case(const fdcase *fc, int use_dv, uint64_t seed) {
    const soma_model *m = alif();
    if (!m) return;
    const char *what = fc->reset ? "alif/zero" : "alif/subtract";
    const char *dvs = use_dv ? "" : " (dv NULL)";
    size_t B = fc->B, N = fc->N, T = fc->T, RB = B * N, TRB = T * RB;
    double I[MAXT * MAXB * MAXN], a[MAXT * MAXB * MAXN], c[MAXT * MAXB * MAXN], U[MAXT * MAXB * MAXN],
        Bs[MAXT * MAXB * MAXN];
    double u0[MAXB * MAXN] = {0}, b0[MAXB * MAXN] = {0};
    refp p;
    for (size_t j = 0; j < N; j++) {
        /* Different per neuron, so a neuron reading another's parameter shows. */
        p.beta[j] = 0.9 - 0.03 * (double)j;
        p.theta[j] = 1.0 + 0.05 * (double)j;
        p.rho[j] = 0.85 - 0.04 * (double)j;
        p.gamma[j] = 0.3 + 0.07 * (double)j;
    }
    /* The reference runs on the float-rounded parameters. */
    float fbeta[MAXN], ftheta[MAXN], frho[MAXN], fgamma[MAXN];
    for (size_t j = 0; j < N; j++) {
        fbeta[j] = (float)p.beta[j], ftheta[j] = (float)p.theta[j], frho[j] = (float)p.rho[j];
        fgamma[j] = (float)p.gamma[j];
        p.beta[j] = fbeta[j], p.theta[j] = ftheta[j], p.rho[j] = frho[j], p.gamma[j] = fgamma[j];
    }
    soma_rng rng;
    soma_rng_init(&rng, seed, 0);
    int tries = 0, spikes = 0;
    double margin = 0.0;
    for (;;) {
        for (size_t e = 0; e < TRB; e++) {
            I[e] = (float)(-0.2 + 1.1 * soma_rng_uniform(&rng)); /* U(-0.2, 0.9), float-representable */
            a[e] = use_dv ? (float)(2.0 * soma_rng_uniform(&rng) - 1.0) : 0.0;
            c[e] = (float)(2.0 * soma_rng_uniform(&rng) - 1.0);
        }
        ref_forward(fc, I, &p, u0, b0, a, c, U, Bs, &margin, &spikes);
        if ((margin >= 1e-3 && spikes > 0) || ++tries > 500) break;
    }
    CHECK_MSG(margin >= 1e-3 && spikes > 0, "%s: no usable draw (margin %g, spikes %d)", what, margin, spikes);
    CHECK_MSG(spikes >= 2, "%s: only %d spikes", what, spikes);

    float fin[MAXT * MAXB * MAXN], fa[MAXT * MAXB * MAXN], fc_[MAXT * MAXB * MAXN];
    for (size_t e = 0; e < TRB; e++) fin[e] = (float)I[e], fa[e] = (float)a[e], fc_[e] = (float)c[e];
    params pp;
    soma_model_args args;
    float scratch[2 * MAXN];
    make_args(&pp, &args, scratch, fc->reset, fbeta, ftheta, frho, fgamma, N);
    args.surrogate_param = (float)fc->k;
    float tape[(MAXT + 1) * 2 * MAXB * MAXN], s[MAXT * MAXB * MAXN];
    run_forward(m, &args, fin, T, B, N, tape, s);
    int bad_u = 0, bad_s = 0;
    for (size_t t = 0; t < T; t++)
        for (size_t i = 0; i < RB; i++) {
            double u = tape[((t + 1) * 2) * RB + i], bt = tape[((t + 1) * 2 + 1) * RB + i];
            double ur = U[t * RB + i], br = Bs[t * RB + i];
            if (!NEAR_REL(u, ur, 1e-5) || !NEAR_REL(bt, br, 1e-5)) {
                if (bad_u++ < 5)
                    fprintf(stderr, "%s: tape U,b[t=%zu][%zu] = %.9g,%.9g, reference %.9g,%.9g\n", what, t, i, u, bt,
                            ur, br);
            }
            if (s[t * RB + i] != (ur > p.theta[i % N] + br ? 1.0f : 0.0f)) bad_s++;
        }
    CHECK_MSG(bad_u == 0, "%s: %d tape entries differ from the double reference", what, bad_u);
    CHECK_MSG(bad_s == 0, "%s: %d spikes differ from H(U - A)", what, bad_s);

    float dbuf[2][MAXB * MAXN], dprm_buf[SOMA_MAX_PARAMS][MAXN];
    float *dstate[2] = {dbuf[0], dbuf[1]};
    memset(dprm_buf, 0, sizeof dprm_buf);
    float *dprm[SOMA_MAX_PARAMS] = {0};
    for (int k = 0; k < K_RESET; k++) dprm[k] = dprm_buf[k];
    float din[MAXT * MAXB * MAXN];
    const float *dv = use_dv ? fa : NULL;
    run_backward(m, &args, fc, tape, fc_, dv, din, dstate, dprm, 0);

    const double h = 1e-6, tol = 1e-4;
    double Ip[MAXT * MAXB * MAXN];
    memcpy(Ip, I, TRB * sizeof *I);
    int bad = 0;
    for (size_t e = 0; e < TRB; e++) {
        Ip[e] = I[e] + h;
        double lp = ref_forward(fc, Ip, &p, u0, b0, a, c, NULL, NULL, NULL, NULL);
        Ip[e] = I[e] - h;
        double lm = ref_forward(fc, Ip, &p, u0, b0, a, c, NULL, NULL, NULL, NULL);
        Ip[e] = I[e];
        double fd = (lp - lm) / (2 * h);
        if (!NEAR_REL(din[e], fd, tol) && bad++ < 8)
            fprintf(stderr, "%s%s: din[t=%zu][b=%zu][j=%zu] = %.9g, finite difference %.9g\n", what, dvs, e / RB,
                    (e % RB) / N, e % N, (double)din[e], fd);
    }
    CHECK_MSG(bad == 0, "%s%s: %d of %zu input gradients differ from finite differences", what, dvs, bad, TRB);

    /* State at t = -1 (U and b): dstate on exit holds dL/dstate_{-1}. */
    double st[MAXB * MAXN];
    for (int k = 0; k < 2; k++) {
        const double *base = k == 0 ? u0 : b0;
        for (size_t i = 0; i < RB; i++) {
            memcpy(st, base, RB * sizeof *st);
            st[i] = base[i] + h;
            double lp = ref_forward(fc, I, &p, k == 0 ? st : u0, k == 1 ? st : b0, a, c, NULL, NULL, NULL, NULL);
            st[i] = base[i] - h;
            double lm = ref_forward(fc, I, &p, k == 0 ? st : u0, k == 1 ? st : b0, a, c, NULL, NULL, NULL, NULL);
            double fd = (lp - lm) / (2 * h);
            CHECK_MSG(NEAR_REL(dstate[k][i], fd, tol), "%s%s: dstate_{-1}[%d][%zu] = %.9g, finite difference %.9g",
                      what, dvs, k, i, (double)dstate[k][i], fd);
        }
    }

    /* Per-neuron parameters. */
    struct {
        const char *name;
        int k;
        double *v;
    } ps[4] = {{"beta", K_BETA, p.beta}, {"threshold", K_THETA, p.theta}, {"rho", K_RHO, p.rho},
               {"gamma", K_GAMMA, p.gamma}};
    for (int q = 0; q < 4; q++) {
        double *v = ps[q].v;
        int nonzero = 0;
        for (size_t j = 0; j < N; j++) {
            double v0 = v[j];
            v[j] = v0 + h;
            double lp = ref_forward(fc, I, &p, u0, b0, a, c, NULL, NULL, NULL, NULL);
            v[j] = v0 - h;
            double lm = ref_forward(fc, I, &p, u0, b0, a, c, NULL, NULL, NULL, NULL);
            v[j] = v0;
            double fd = (lp - lm) / (2 * h);
            nonzero += fabs(fd) > 1e-3;
            CHECK_MSG(NEAR_REL(dprm[ps[q].k][j], fd, tol), "%s%s: d%s[%zu] = %.9g, finite difference %.9g", what, dvs,
                      ps[q].name, j, (double)dprm[ps[q].k][j], fd);
        }
        /* The comparison means something only if the gradient is not ~0 everywhere. */
        CHECK_MSG(nonzero > 0, "%s%s: d%s is ~0 for every neuron", what, dvs, ps[q].name);
    }

    /* Without parameter gradients the input and state gradients are the same. */
    float din2[MAXT * MAXB * MAXN], dbuf2[2][MAXB * MAXN];
    float *dstate2[2] = {dbuf2[0], dbuf2[1]};
    float *nodprm[SOMA_MAX_PARAMS] = {0};
    run_backward(m, &args, fc, tape, fc_, dv, din2, dstate2, nodprm, 0);
    CHECK_MSG(memcmp(din, din2, TRB * sizeof *din) == 0, "%s: din depends on whether dprm is given", what);
    CHECK_MSG(memcmp(dbuf[0], dbuf2[0], RB * sizeof(float)) == 0 && memcmp(dbuf[1], dbuf2[1], RB * sizeof(float)) == 0,
               "%s: dstate depends on whether dprm is given", what);

    /* din_accumulate: one buffer summed over steps equals the sum of the per-step din. */
    float dsum[MAXB * MAXN];
    for (size_t i = 0; i < RB; i++) dsum[i] = 12345.0f; /* the last step must overwrite */
    run_backward(m, &args, fc, tape, fc_, dv, dsum, dstate2, nodprm, 1);
    int bad_acc = 0;
    for (size_t i = 0; i < RB; i++) {
        double ref = 0.0;
        for (size_t t = 0; t < T; t++) ref += din[t * RB + i];
        bad_acc += !NEAR_REL(dsum[i], ref, 1e-5);
    }
    CHECK_MSG(bad_acc == 0, "%s%s: %d summed input gradients differ with din_accumulate", what, dvs, bad_acc);
}

static void test_backward_fd(void) {
    for (int reset = 0; reset < 2; reset++) {
        fdcase fc = {reset, 2, 4, 8, 4.0};
        fd_case(&fc, 1, 100 + (uint64_t)reset);
        fd_case(&fc, 0, 200 + (uint64_t)reset);
        fdcase fc2 = {reset, 3, 5, 12, 2.5};
        fd_case(&fc2, 1, 300 + (uint64_t)reset);
    }
}

/* ------------------------------------------------- 3. training, experiment */

static void make_data(soma_dataset *ds, size_t n) {
    ds->n = n, ds->dim = 8, ds->rows = 2, ds->cols = 4, ds->classes = 3;
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

static void test_training(void) {
    soma_dataset ds = {0};
    make_data(&ds, 120);
    soma_net *net = NULL;
    size_t in, hid, out;
    int ok = soma_net_create(&net) == 0;
    ok = ok && soma_net_add_pop(net, "in", "input", 8, &in) == 0;
    ok = ok && soma_net_add_pop(net, "hidden", "alif", 16, &hid) == 0;
    ok = ok && soma_net_add_pop(net, "out", "lif", 3, &out) == 0;
    ok = ok && soma_net_set_param(net, hid, "rho", 0.9f) == 0;
    ok = ok && soma_net_set_param(net, hid, "gamma", 0.5f) == 0;
    ok = ok && soma_net_set_learn(net, hid, "rho", SOMA_LEARN_LAYER) == 0;
    ok = ok && soma_net_connect_dense(net, in, hid, 1) == 0;
    ok = ok && soma_net_connect_dense(net, hid, out, 1) == 0;
    CHECK_MSG(ok, "building the alif net: %s", net ? soma_net_errmsg(net) : "no net");
    soma_train_opts o;
    soma_train_opts_default(&o);
    o.batch = 16;
    o.lr = 1e-2f;
    o.seed = 3;
    o.threads = 1;
    o.loss = SOMA_LOSS_CE_COUNT;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.encoding = SOMA_ENCODING_DIRECT;
    d.steps = 10;
    d.gain = 2.0f;
    soma_trainer *tr = NULL;
    int st = ok ? soma_train_create(&tr, net, &o, &d) : -1;
    CHECK_MSG(st == 0, "train_create: %s", net ? soma_net_errmsg(net) : "");
    if (st == 0) {
        double loss[2] = {0, 0};
        for (int e = 0; e < 2; e++) {
            soma_epoch_result er;
            CHECK(soma_train_epoch(tr, &ds, e, NULL, NULL, &er) == 0);
            loss[e] = er.loss;
        }
        CHECK_MSG(isfinite(loss[0]) && isfinite(loss[1]) && loss[1] < loss[0], "alif loss %g -> %g", loss[0], loss[1]);
        soma_tensor t;
        CHECK(soma_net_tensor_find(net, "hidden.rho", &t) == 0 && t.rows * t.cols == 1);
        if (soma_net_tensor_find(net, "hidden.rho", &t) == 0)
            CHECK_MSG(t.data[0] != 0.9f && isfinite(t.data[0]), "rho did not move: %g", (double)t.data[0]);
        soma_train_free(tr);
    }
    soma_net_free(net);
    soma_data_free(&ds);
}

static void test_experiment(void) {
    const char *dir = t_tmpdir("alif");
    char path[600], err[512];
    snprintf(path, sizeof path, "%s/alif.yaml", dir);
    const char *yaml = "network:\n  populations:\n    in: {model: input, size: 8}\n"
                       "    h: {model: alif, size: 16, rho: 0.9, gamma: 0.5, learn: [rho]}\n"
                       "    out: {model: lif, size: 3}\n"
                       "  projections:\n    - {from: in, to: h}\n    - {from: h, to: out}\n";
    t_write_file(path, yaml, strlen(yaml));
    soma_net *net = NULL;
    soma_data_opts d;
    soma_train_opts o;
    err[0] = 0;
    CHECK_MSG(soma_experiment_load(path, &net, &d, &o, err, sizeof err) == 0, "%s", err);
    if (net) {
        size_t h;
        float v = 0;
        CHECK(soma_net_find_pop(net, "h", &h) == 0);
        soma_pop_info pi;
        CHECK(soma_net_pop_info(net, h, &pi) == 0 && strcmp(pi.model, "alif") == 0 && pi.size == 16);
        CHECK(soma_net_get_param(net, h, "rho", &v) == 0 && v == 0.9f);
        CHECK(soma_net_get_param(net, h, "gamma", &v) == 0 && v == 0.5f);
        CHECK(soma_net_get_param(net, h, "beta", &v) == 0 && v == 0.95f);
        CHECK(soma_net_get_learn(net, h, "rho") == SOMA_LEARN_LAYER);
        CHECK(soma_net_get_learn(net, h, "gamma") == SOMA_LEARN_NONE);
        soma_net_free(net);
    }
    const char *bad = "network:\n  populations:\n    in: {model: input, size: 8}\n"
                      "    h: {model: alif, size: 16, rho: 2}\n"
                      "  projections:\n    - {from: in, to: h}\n";
    t_write_file(path, bad, strlen(bad));
    net = NULL;
    err[0] = 0;
    CHECK(soma_experiment_load(path, &net, &d, &o, err, sizeof err) != 0);
    CHECK(net == NULL);
    CHECK_MSG(strstr(err, "rho") && strstr(err, "[0, 1]"), "message: %s", err);
}

/* ------------------------------------------------------- 4. model file */

static void test_model_file(void) {
    const char *dir = t_tmpdir("alif_file");
    char path[600], err[512] = "";
    snprintf(path, sizeof path, "%s/alif.soma", dir);
    soma_net *net = NULL;
    size_t in, hid, out;
    int ok = soma_net_create(&net) == 0;
    ok = ok && soma_net_add_pop(net, "in", "input", 4, &in) == 0;
    ok = ok && soma_net_add_pop(net, "hidden", "alif", 5, &hid) == 0;
    ok = ok && soma_net_add_pop(net, "out", "lif", 2, &out) == 0;
    ok = ok && soma_net_set_param(net, hid, "rho", 0.8125f) == 0;
    ok = ok && soma_net_set_param(net, hid, "gamma", 0.375f) == 0;
    ok = ok && soma_net_set_param(net, hid, "reset", 1.0f) == 0;
    ok = ok && soma_net_set_learn(net, hid, "rho", SOMA_LEARN_NEURON) == 0;
    ok = ok && soma_net_set_learn(net, hid, "gamma", SOMA_LEARN_LAYER) == 0;
    ok = ok && soma_net_connect_dense(net, in, hid, 1) == 0;
    ok = ok && soma_net_connect_dense(net, hid, out, 1) == 0;
    ok = ok && soma_net_init_weights(net, 11) == 0;
    CHECK_MSG(ok, "building: %s", net ? soma_net_errmsg(net) : "no net");
    soma_tensor t;
    if (ok && soma_net_tensor_find(net, "hidden.rho", &t) == 0)
        for (size_t i = 0; i < t.rows * t.cols; i++) t.data[i] = 0.5f + 0.0625f * (float)i; /* as if learned */
    else
        CHECK(0);
    soma_data_opts d;
    soma_train_opts o;
    soma_data_opts_default(&d);
    soma_train_opts_default(&o);
    CHECK_MSG(ok && soma_model_save(path, net, &d, &o, err, sizeof err) == 0, "save: %s", err);
    soma_net *back = NULL;
    CHECK_MSG(soma_model_load(path, &back, NULL, NULL, err, sizeof err) == 0, "load: %s", err);
    if (back) {
        size_t h;
        float v = 0;
        CHECK(soma_net_find_pop(back, "hidden", &h) == 0);
        soma_pop_info pi;
        CHECK(soma_net_pop_info(back, h, &pi) == 0 && strcmp(pi.model, "alif") == 0 && pi.size == 5);
        CHECK(soma_net_get_param(back, h, "rho", &v) == 0 && v == 0.8125f);
        CHECK(soma_net_get_param(back, h, "gamma", &v) == 0 && v == 0.375f);
        CHECK(soma_net_get_param(back, h, "reset", &v) == 0 && v == 1.0f);
        CHECK(soma_net_get_learn(back, h, "rho") == SOMA_LEARN_NEURON);
        CHECK(soma_net_get_learn(back, h, "gamma") == SOMA_LEARN_LAYER);
        CHECK(soma_net_get_learn(back, h, "beta") == SOMA_LEARN_NONE);
        soma_tensor tb;
        CHECK(soma_net_tensor_find(back, "hidden.rho", &tb) == 0 && tb.rows * tb.cols == 5);
        if (soma_net_tensor_find(back, "hidden.rho", &tb) == 0 && tb.rows * tb.cols == 5)
            for (size_t i = 0; i < 5; i++) CHECK(tb.data[i] == 0.5f + 0.0625f * (float)i);
        CHECK(soma_net_tensor_find(back, "hidden.gamma", &tb) == 0 && tb.rows * tb.cols == 1 &&
              tb.data[0] == 0.375f);
        CHECK(soma_net_param_count(back) == soma_net_param_count(net));
        soma_net_free(back);
    }
    soma_net_free(net);
}

int main(void) {
    test_descriptors();
    test_traces();
    test_backward_fd();
    test_training();
    test_experiment();
    test_model_file();
    return t_report("test_alif");
}
