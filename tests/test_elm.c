/* test_elm.c — the Expressive Leaky Memory neuron (src/models/elm.c):
 *   1. descriptors, weight shapes (v1, Branch-ELM, default hidden width 2N)
 *      and the log-spaced initial memory time constants;
 *   2. forward against an independent double-precision implementation of
 *      the equations, state by state (m, traces, hidden and output of the
 *      MLP), through the vtable with weights set via soma_net_tensor_find,
 *      for v1, branches dividing N and branches not dividing N; and the
 *      trainer's ce_last loss on the whole net against the same reference;
 *   3. the trainer's gradients of every tensor (projection, MLP weights,
 *      ln tau_m, learned tau_s and lambda) against finite differences of its
 *      loss, with time-varying and time-constant input;
 *   4. a short training run (the loss falls);
 *   5. model-file round trip (parameters, weights, identical loss and
 *      predictions) and bad parameter values rejected with a clear message,
 *      from the API and from an experiment file.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/model.h"
#include "soma.h"
#include "testlib.h"

enum { K_LAMBDA, K_DT, K_TAU_S, K_BRANCHES, K_HIDDEN, K_N };
#define MAXN 8
#define MAXH 8
#define MAXI 16
#define MAXB 2
#define MAXT 5

static const soma_model *elm(void) { return soma_model_find("elm"); }

/* A net in(D) -> hidden elm(N) -> out ann linear(C). */
static soma_net *build(size_t D, size_t N, size_t C, float branches, float hidden, uint64_t seed) {
    soma_net *net = NULL;
    size_t in, hid, out;
    int ok = soma_net_create(&net) == 0;
    ok = ok && soma_net_add_pop(net, "in", "input", D, &in) == 0;
    ok = ok && soma_net_add_pop(net, "hidden", "elm", N, &hid) == 0;
    ok = ok && soma_net_add_pop(net, "out", "ann", C, &out) == 0;
    ok = ok && soma_net_set_param(net, out, "activation", 2.0f) == 0; /* linear */
    ok = ok && soma_net_set_param(net, hid, "branches", branches) == 0;
    ok = ok && soma_net_set_param(net, hid, "mlp_hidden", hidden) == 0;
    ok = ok && soma_net_connect_dense(net, in, hid, 1) == 0;
    ok = ok && soma_net_connect_dense(net, hid, out, 1) == 0;
    ok = ok && soma_net_init_weights(net, seed) == 0;
    CHECK_MSG(ok, "building the elm net: %s", net ? soma_net_errmsg(net) : "no net");
    return net;
}

static float *tensor(soma_net *net, const char *name, size_t rows, size_t cols) {
    soma_tensor t;
    if (soma_net_tensor_find(net, name, &t) != 0) {
        CHECK_MSG(0, "no tensor %s", name);
        return NULL;
    }
    CHECK_MSG(t.rows == rows && t.cols == cols, "%s is %zux%zu, expected %zux%zu", name, t.rows, t.cols, rows, cols);
    return t.data;
}

/* ------------------------------------------- 1. descriptors and shapes */

static void test_descriptors(void) {
    const soma_model *m = elm();
    CHECK(m != NULL);
    if (!m) return;
    static const char *const names[] = {"lambda", "dt", "tau_s", "branches", "mlp_hidden"};
    static const float defs[] = {5.0f, 1.0f, 5.0f, 0.0f, 0.0f};
    CHECK(m->n_params == K_N && m->n_state == 4 && m->graded && m->spiking && !m->rate_output);
    for (int k = 0; k < K_N && (size_t)k < m->n_params; k++) {
        CHECK_MSG(strcmp(m->params[k].name, names[k]) == 0, "param %d is %s", k, m->params[k].name);
        CHECK(m->params[k].def == defs[k]);
    }
    CHECK(strcmp(m->state_names[0], "m") == 0 && m->n_weights == 5);

    /* v1, N = 5, default hidden 2N = 10: w1 [10][5 + 5] */
    soma_net *net = build(3, 5, 2, 0.0f, 0.0f, 1);
    tensor(net, "hidden.w1", 10, 10);
    tensor(net, "hidden.b1", 1, 10);
    tensor(net, "hidden.w2", 5, 10);
    tensor(net, "hidden.b2", 1, 5);
    float *ltm = tensor(net, "hidden.log_tau_m", 1, 5);
    if (ltm) /* tau_m log-spaced 1 .. 1000 */
        for (int j = 0; j < 5; j++) CHECK_NEAR(ltm[j], log(1000.0) * j / 4.0, 1e-6);
    float *w1 = tensor(net, "hidden.w1", 10, 10);
    if (w1) { /* torch.nn.Linear's bound 1/sqrt(fan_in), and not all equal */
        int in_range = 1, varied = 0;
        for (int i = 0; i < 100; i++) in_range &= fabsf(w1[i]) <= 1.0f / sqrtf(10.0f), varied |= w1[i] != w1[0];
        CHECK(in_range && varied);
    }
    soma_net_free(net);
    /* Branch-ELM, N = 6, 3 branches, hidden 4: w1 [4][3 + 6] */
    net = build(3, 6, 2, 3.0f, 4.0f, 1);
    tensor(net, "hidden.w1", 4, 9);
    tensor(net, "hidden.w2", 6, 4);
    soma_net_free(net);
}

/* ------------------------------------------ 2. forward against doubles */

typedef struct ref {
    size_t N, D, H, I; /* memory units, branches (0 = v1), hidden width, MLP input width */
    double lambda[MAXN], dt, tau_s[MAXN];
    double w1[MAXH * MAXI], b1[MAXH], w2[MAXN * MAXH], b2[MAXN], ltm[MAXN];
} ref;

/* The equations of the ELM paper in double, one step, for one row. */
static void ref_step(const ref *r, const double *mp, const double *sp, const double *in, double *m, double *s,
                     double *z1, double *z2) {
    double u[MAXI] = {0}, h[MAXH];
    size_t Db = r->D ? r->D : r->N;
    for (size_t j = 0; j < r->N; j++) {
        s[j] = exp(-r->dt / r->tau_s[j]) * sp[j] + in[j];
        if (r->D) { /* branch of channel j: floor(j D / N) */
            size_t br = 0;
            while ((br + 1) * r->N <= j * r->D) br++;
            u[br] += s[j];
        } else u[j] = s[j];
    }
    for (size_t j = 0; j < r->N; j++) u[Db + j] = exp(-r->dt / exp(r->ltm[j])) * mp[j];
    for (size_t o = 0; o < r->H; o++) {
        z1[o] = r->b1[o];
        for (size_t i = 0; i < r->I; i++) z1[o] += r->w1[o * r->I + i] * u[i];
        h[o] = z1[o] > 0 ? z1[o] : 0;
    }
    for (size_t j = 0; j < r->N; j++) {
        z2[j] = r->b2[j];
        for (size_t o = 0; o < r->H; o++) z2[j] += r->w2[j * r->H + o] * h[o];
        double km = exp(-r->dt / exp(r->ltm[j]));
        m[j] = km * mp[j] + r->lambda[j] * (1 - km) * 1.7159 * tanh(2.0 / 3.0 * z2[j]);
    }
}

/* Fills the elm tensors of `net` with fixed values and r with the same. */
static void set_weights(soma_net *net, ref *r, size_t N, size_t D, size_t H) {
    r->N = N, r->D = D, r->H = H, r->I = (D ? D : N) + N;
    float *w1 = tensor(net, "hidden.w1", H, r->I), *b1 = tensor(net, "hidden.b1", 1, H);
    float *w2 = tensor(net, "hidden.w2", N, H), *b2 = tensor(net, "hidden.b2", 1, N);
    float *ltm = tensor(net, "hidden.log_tau_m", 1, N);
    if (!w1 || !b1 || !w2 || !b2 || !ltm) return;
    for (size_t i = 0; i < H * r->I; i++) w1[i] = (float)((int)((i * 7 + 3) % 11) - 5) * 0.125f, r->w1[i] = w1[i];
    for (size_t i = 0; i < H; i++) b1[i] = (float)((int)(i % 3) - 1) * 0.25f, r->b1[i] = b1[i];
    for (size_t i = 0; i < N * H; i++) w2[i] = (float)((int)((i * 5 + 1) % 9) - 4) * 0.25f, r->w2[i] = w2[i];
    for (size_t i = 0; i < N; i++) b2[i] = (float)((int)(i % 2) * 2 - 1) * 0.125f, r->b2[i] = b2[i];
    for (size_t i = 0; i < N; i++) ltm[i] = 0.5f * (float)i, r->ltm[i] = ltm[i];
}

/* T steps through the vtable with the net's own tensors; compares each state with the reference. */
static void check_vtable_trace(const char *what, size_t N, size_t D, size_t H) {
    const size_t B = 2, T = 4;
    soma_net *net = build(2, N, 2, (float)D, (float)H, 5);
    ref r;
    memset(&r, 0, sizeof r);
    set_weights(net, &r, N, D, H);
    r.dt = 1.0;
    float prm[K_N][MAXN];
    for (size_t j = 0; j < N; j++) {
        r.tau_s[j] = 2.0 + (double)j, r.lambda[j] = 3.0;
        prm[K_LAMBDA][j] = 3.0f, prm[K_DT][j] = 1.0f, prm[K_TAU_S][j] = (float)r.tau_s[j];
        prm[K_BRANCHES][j] = (float)D, prm[K_HIDDEN][j] = (float)H;
    }
    soma_model_args a;
    memset(&a, 0, sizeof a);
    for (int k = 0; k < K_N; k++) a.prm[k] = prm[k];
    float scratch[2 * MAXN], work[MAXB * (2 * MAXI + 2 * MAXH + MAXN)];
    a.scratch = scratch;
    a.work = work;
    const char *wn[5] = {"hidden.w1", "hidden.b1", "hidden.w2", "hidden.b2", "hidden.log_tau_m"};
    for (int k = 0; k < 5; k++) {
        soma_tensor t;
        CHECK(soma_net_tensor_find(net, wn[k], &t) == 0);
        a.w[k] = t.data;
    }
    float fprm[SOMA_MAX_PARAMS] = {3.0f, 1.0f, 2.0f, (float)D, (float)H};
    CHECK(elm()->scratch_floats(fprm, N) <= 2 * MAXI + 2 * MAXH + MAXN);
    float st[2][4][MAXB * MAXH], out[MAXB * MAXN], in[MAXB * MAXN];
    double m[MAXB][MAXN] = {{0}}, s[MAXB][MAXN] = {{0}};
    memset(st, 0, sizeof st);
    double maxerr = 0;
    for (size_t t = 0; t < T; t++) {
        const float *prev[4] = {st[t % 2][0], st[t % 2][1], st[t % 2][2], st[t % 2][3]};
        float *cur[4] = {st[(t + 1) % 2][0], st[(t + 1) % 2][1], st[(t + 1) % 2][2], st[(t + 1) % 2][3]};
        for (size_t i = 0; i < B * N; i++) in[i] = (float)((int)((i * 3 + t * 5) % 7) - 3) * 0.5f;
        elm()->forward(&a, prev, cur, out, in, B, N);
        for (size_t b = 0; b < B; b++) {
            double inb[MAXN], mn[MAXN], sn[MAXN], z1[MAXH], z2[MAXN];
            for (size_t j = 0; j < N; j++) inb[j] = in[b * N + j];
            ref_step(&r, m[b], s[b], inb, mn, sn, z1, z2);
            for (size_t j = 0; j < N; j++) {
                m[b][j] = mn[j], s[b][j] = sn[j];
                CHECK_MSG(fabs(cur[0][b * N + j] - mn[j]) <= 1e-5 * fmax(1, fabs(mn[j])),
                          "%s: m[t=%zu][b=%zu][%zu] = %.9g, reference %.9g", what, t, b, j, cur[0][b * N + j], mn[j]);
                CHECK(out[b * N + j] == cur[0][b * N + j]);
                CHECK_NEAR(cur[1][b * N + j], sn[j], 1e-6);
                CHECK_NEAR(cur[3][b * N + j], z2[j], 1e-5);
                maxerr = fmax(maxerr, fabs(cur[0][b * N + j] - mn[j]));
            }
            for (size_t o = 0; o < H; o++) CHECK_NEAR(cur[2][b * H + o], z1[o], 1e-5);
        }
    }
    /* the trace is not trivial: m moved away from 0 */
    double mabs = 0;
    for (size_t j = 0; j < N; j++) mabs += fabs(m[0][j]);
    CHECK_MSG(mabs > 0.1, "%s: |m| = %g", what, mabs);
    soma_net_free(net);
}

/* The whole net through the trainer: ce_last loss against the reference. */
static void check_trainer_loss(size_t D) {
    const size_t Din = 2, N = 4, C = 3, H = 3, B = 2, T = 4;
    soma_net *net = build(Din, N, C, (float)D, (float)H, 9);
    size_t hid;
    soma_net_find_pop(net, "hidden", &hid);
    CHECK(soma_net_set_param(net, hid, "lambda", 2.5f) == 0);
    CHECK(soma_net_set_param(net, hid, "tau_s", 3.0f) == 0);
    CHECK(soma_net_set_param(net, hid, "dt", 0.5f) == 0);
    soma_net_init_weights(net, 9);
    ref r;
    memset(&r, 0, sizeof r);
    set_weights(net, &r, N, D, H);
    r.dt = 0.5;
    for (size_t j = 0; j < N; j++) r.tau_s[j] = 3.0, r.lambda[j] = 2.5;
    float *win = tensor(net, "in->hidden.weight", N, Din), *bin = tensor(net, "in->hidden.bias", 1, N);
    float *wout = tensor(net, "hidden->out.weight", C, N), *bout = tensor(net, "hidden->out.bias", 1, C);
    if (!win || !bin || !wout || !bout) return;
    soma_train_opts o;
    soma_train_opts_default(&o);
    o.batch = B;
    o.threads = 1;
    o.loss = SOMA_LOSS_CE_LAST;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.steps = (int)T;
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, net, &o, &d) == 0, "train_create: %s", soma_net_errmsg(net));
    if (!tr) return;
    float x[4 * 2 * 2];
    for (size_t i = 0; i < T * B * Din; i++) x[i] = (float)((int)((i * 5 + 2) % 9) - 4) * 0.25f;
    uint8_t y[2] = {1, 2};
    double loss = 0;
    CHECK(soma_train_grad(tr, x, 0, y, B, &loss, NULL) == 0);
    double want = 0;
    for (size_t b = 0; b < B; b++) {
        double m[MAXN] = {0}, s[MAXN] = {0};
        for (size_t t = 0; t < T; t++) {
            double in[MAXN], mn[MAXN], sn[MAXN], z1[MAXH], z2[MAXN];
            for (size_t j = 0; j < N; j++) {
                in[j] = bin[j];
                for (size_t k = 0; k < Din; k++) in[j] += (double)win[j * Din + k] * x[(t * B + b) * Din + k];
            }
            ref_step(&r, m, s, in, mn, sn, z1, z2);
            memcpy(m, mn, sizeof m), memcpy(s, sn, sizeof s);
        }
        double z[3], mx = -1e300, se = 0;
        for (size_t c = 0; c < C; c++) {
            z[c] = bout[c];
            for (size_t j = 0; j < N; j++) z[c] += (double)wout[c * N + j] * m[j];
            mx = fmax(mx, z[c]);
        }
        for (size_t c = 0; c < C; c++) se += exp(z[c] - mx);
        want += (mx + log(se) - z[y[b]]) / (double)B;
    }
    CHECK_MSG(fabs(loss - want) <= 1e-5 * fmax(1, fabs(want)), "branches %zu: trainer loss %.9g, reference %.9g", D,
              loss, want);
    soma_train_free(tr);
    soma_net_free(net);
}

static void test_forward(void) {
    if (!elm()) return;
    check_vtable_trace("v1", 3, 0, 4);
    check_vtable_trace("branches 2 of 4", 4, 2, 3);
    check_vtable_trace("branches 3 of 4", 4, 3, 3);
    check_vtable_trace("branches 1", 3, 1, 2);
    check_trainer_loss(0);
    check_trainer_loss(2);
}

/* ------------------------------------ 3a. backward against doubles */

/* L = sum over t, b, j of c[t][b][j] m_t[b][j], from initial states m0, s0. */
static double ref_loss(const ref *r, const double *in, const double *m0, const double *s0, const double *c, size_t B,
                       size_t T) {
    size_t N = r->N;
    double L = 0;
    for (size_t b = 0; b < B; b++) {
        double m[MAXN], s[MAXN];
        memcpy(m, m0 + b * N, N * sizeof *m), memcpy(s, s0 + b * N, N * sizeof *s);
        for (size_t t = 0; t < T; t++) {
            double mn[MAXN], sn[MAXN], z1[MAXH], z2[MAXN];
            ref_step(r, m, s, in + (t * B + b) * N, mn, sn, z1, z2);
            memcpy(m, mn, sizeof m), memcpy(s, sn, sizeof s);
            for (size_t j = 0; j < N; j++) L += c[(t * B + b) * N + j] * m[j];
        }
    }
    return L;
}

/* Central difference of ref_loss in *p. */
static double fd_of(double *p, const ref *r, const double *in, const double *m0, const double *s0, const double *c,
                    size_t B, size_t T) {
    const double h = 1e-6;
    double keep = *p;
    *p = keep + h;
    double lp = ref_loss(r, in, m0, s0, c, B, T);
    *p = keep - h;
    double lm = ref_loss(r, in, m0, s0, c, B, T);
    *p = keep;
    return (lp - lm) / (2 * h);
}

static void check_grad(const char *label, const char *what, size_t i, double got, double want) {
    CHECK_MSG(fabs(got - want) <= 2e-4 * fmax(1.0, fabs(want)), "%s: %s[%zu]: backward %.9g, fd %.9g", label, what, i,
              got, want);
}
#define CHECK_GRAD(what, i, got, want) check_grad(label, what, i, got, want)

/* Every input, initial state, weight and learnable parameter of T steps of
 * the vtable's backward against central differences of the reference; the
 * loss reaches the memory both as the output s (ds) and as the membrane (dv). */
static void check_vtable_backward(const char *label, size_t N, size_t D, size_t H) {
    enum { B = 2, T = 5 };
    ref r;
    memset(&r, 0, sizeof r);
    r.N = N, r.D = D, r.H = H, r.I = (D ? D : N) + N, r.dt = 0.8;
    size_t NI = r.I;
    soma_rng g;
    soma_rng_init(&g, 21, N * 16 + D);
#define RND(scale) ((scale) * (2.0f * soma_rng_uniform(&g) - 1.0f))
    float w1[MAXH * MAXI], b1[MAXH], w2[MAXN * MAXH], b2[MAXN], ltm[MAXN], prm[K_N][MAXN];
    for (size_t i = 0; i < H * NI; i++) w1[i] = RND(0.8f), r.w1[i] = w1[i];
    for (size_t i = 0; i < H; i++) b1[i] = RND(0.5f), r.b1[i] = b1[i];
    for (size_t i = 0; i < N * H; i++) w2[i] = RND(0.8f), r.w2[i] = w2[i];
    for (size_t i = 0; i < N; i++) {
        b2[i] = RND(0.3f), r.b2[i] = b2[i];
        ltm[i] = 0.6f * (float)i, r.ltm[i] = ltm[i];
        prm[K_LAMBDA][i] = 1.5f + 0.5f * (float)i, r.lambda[i] = prm[K_LAMBDA][i];
        prm[K_DT][i] = 0.8f;
        prm[K_TAU_S][i] = 1.5f + (float)i, r.tau_s[i] = prm[K_TAU_S][i];
        prm[K_BRANCHES][i] = (float)D, prm[K_HIDDEN][i] = (float)H;
    }
    float in[T * B * MAXN], cs[T * B * MAXN], cv[T * B * MAXN], m0[B * MAXN], s0[B * MAXN];
    double ind[T * B * MAXN], cd[T * B * MAXN], m0d[B * MAXN], s0d[B * MAXN];
    for (size_t i = 0; i < T * B * N; i++) {
        in[i] = RND(1.5f), ind[i] = in[i];
        cs[i] = RND(1.0f), cv[i] = RND(1.0f), cd[i] = (double)cs[i] + (double)cv[i];
    }
    for (size_t i = 0; i < B * N; i++) m0[i] = RND(1.0f), m0d[i] = m0[i], s0[i] = RND(1.0f), s0d[i] = s0[i];
#undef RND
    /* forward through the vtable, keeping every step's state */
    soma_model_args a;
    memset(&a, 0, sizeof a);
    for (int k = 0; k < K_N; k++) a.prm[k] = prm[k];
    float scratch[2 * MAXN], work[B * (2 * MAXI + 2 * MAXH + MAXN)], out[B * MAXN];
    a.scratch = scratch, a.work = work;
    a.w[0] = w1, a.w[1] = b1, a.w[2] = w2, a.w[3] = b2, a.w[4] = ltm;
    static float tape[T + 1][4][B * MAXH];
    memset(tape, 0, sizeof tape);
    memcpy(tape[0][0], m0, B * N * sizeof(float)), memcpy(tape[0][1], s0, B * N * sizeof(float));
    for (size_t t = 0; t < T; t++) {
        const float *prev[4] = {tape[t][0], tape[t][1], tape[t][2], tape[t][3]};
        float *cur[4] = {tape[t + 1][0], tape[t + 1][1], tape[t + 1][2], tape[t + 1][3]};
        elm()->forward(&a, prev, cur, out, in + t * B * N, B, N);
    }
    /* backward */
    float dw1[MAXH * MAXI] = {0}, db1[MAXH] = {0}, dw2[MAXN * MAXH] = {0}, db2[MAXN] = {0}, dltm[MAXN] = {0};
    float dlam[MAXN] = {0}, dtaus[MAXN] = {0}, din[T * B * MAXN];
    float dst[4][B * MAXH];
    for (int k = 0; k < 4; k++)
        for (size_t i = 0; i < B * MAXH; i++) dst[k][i] = k >= 2 ? 7.0f : 0.0f; /* z1, z2 carry nothing */
    a.dw[0] = dw1, a.dw[1] = db1, a.dw[2] = dw2, a.dw[3] = db2, a.dw[4] = dltm;
    float *dprm[SOMA_MAX_PARAMS] = {dlam, NULL, dtaus, NULL, NULL};
    float *dstate[4] = {dst[0], dst[1], dst[2], dst[3]};
    for (size_t t = T; t-- > 0;) {
        const float *prev[4] = {tape[t][0], tape[t][1], tape[t][2], tape[t][3]};
        const float *cur[4] = {tape[t + 1][0], tape[t + 1][1], tape[t + 1][2], tape[t + 1][3]};
        a.in = in + t * B * N;
        elm()->backward(&a, prev, cur, dstate, cs + t * B * N, cv + t * B * N, din + t * B * N, dprm, B, N);
    }
    for (size_t i = 0; i < B * H; i++) CHECK(dst[2][i] == 0.0f);
    for (size_t i = 0; i < B * N; i++) CHECK(dst[3][i] == 0.0f);
    /* against the reference */
    for (size_t i = 0; i < T * B * N; i++) CHECK_GRAD("in", i, din[i], fd_of(&ind[i], &r, ind, m0d, s0d, cd, B, T));
    for (size_t i = 0; i < B * N; i++) {
        CHECK_GRAD("m[-1]", i, dst[0][i], fd_of(&m0d[i], &r, ind, m0d, s0d, cd, B, T));
        CHECK_GRAD("s[-1]", i, dst[1][i], fd_of(&s0d[i], &r, ind, m0d, s0d, cd, B, T));
    }
    double gsum = 0;
    for (size_t i = 0; i < H * NI; i++) {
        double fd = fd_of(&r.w1[i], &r, ind, m0d, s0d, cd, B, T);
        CHECK_GRAD("w1", i, dw1[i], fd);
        gsum += fabs(fd);
    }
    CHECK_MSG(gsum > 1e-2, "%s: w1 gradients all ~0 (%g)", label, gsum);
    for (size_t i = 0; i < H; i++) CHECK_GRAD("b1", i, db1[i], fd_of(&r.b1[i], &r, ind, m0d, s0d, cd, B, T));
    for (size_t i = 0; i < N * H; i++) CHECK_GRAD("w2", i, dw2[i], fd_of(&r.w2[i], &r, ind, m0d, s0d, cd, B, T));
    for (size_t j = 0; j < N; j++) {
        CHECK_GRAD("b2", j, db2[j], fd_of(&r.b2[j], &r, ind, m0d, s0d, cd, B, T));
        double f_ltm = fd_of(&r.ltm[j], &r, ind, m0d, s0d, cd, B, T);
        double f_lam = fd_of(&r.lambda[j], &r, ind, m0d, s0d, cd, B, T);
        double f_tau = fd_of(&r.tau_s[j], &r, ind, m0d, s0d, cd, B, T);
        CHECK_GRAD("log_tau_m", j, dltm[j], f_ltm);
        CHECK_GRAD("lambda", j, dlam[j], f_lam);
        CHECK_GRAD("tau_s", j, dtaus[j], f_tau);
        CHECK_MSG(fabs(f_ltm) > 1e-5 && fabs(f_lam) > 1e-5 && fabs(f_tau) > 1e-5,
                  "%s: neuron %zu: a parameter does not matter (%g %g %g)", label, j, f_ltm, f_lam, f_tau);
    }
    /* din_accumulate adds instead of overwriting */
    float dsum[B * MAXN];
    for (size_t i = 0; i < B * N; i++) dsum[i] = 1.0f;
    memset(dst, 0, sizeof dst);
    a.din_accumulate = 1;
    const float *prev[4] = {tape[T - 1][0], tape[T - 1][1], tape[T - 1][2], tape[T - 1][3]};
    const float *cur[4] = {tape[T][0], tape[T][1], tape[T][2], tape[T][3]};
    elm()->backward(&a, prev, cur, dstate, cs + (T - 1) * B * N, cv + (T - 1) * B * N, dsum, dprm, B, N);
    for (size_t i = 0; i < B * N; i++) CHECK_NEAR(dsum[i], 1.0f + din[(T - 1) * B * N + i], 1e-6);
}

static void test_backward(void) {
    if (!elm()) return;
    check_vtable_backward("vtable v1", 3, 0, 4);
    check_vtable_backward("vtable branches 2 of 4", 4, 2, 5);
    check_vtable_backward("vtable branches 3 of 5", 5, 3, 4);
}

/* ------------------------------------------ 3b. gradients, whole trainer */

static void check_fd(const char *label, float branches, int tc, int loss) {
    size_t B = 4, D = 3, N = 6;
    int T = 5;
    soma_net *net = build(D, N, 3, branches, 5.0f, 3);
    size_t hid;
    soma_net_find_pop(net, "hidden", &hid);
    CHECK(soma_net_set_param(net, hid, "lambda", 2.0f) == 0);
    CHECK(soma_net_set_learn(net, hid, "tau_s", SOMA_LEARN_NEURON) == 0);
    CHECK(soma_net_set_learn(net, hid, "lambda", SOMA_LEARN_LAYER) == 0);
    soma_net_init_weights(net, 3);
    /* memory time constants 1 .. ~12 steps, so that they matter over T = 5 */
    float *ltm = tensor(net, "hidden.log_tau_m", 1, N);
    for (size_t j = 0; ltm && j < N; j++) ltm[j] = 0.5f * (float)j;
    float *taus = tensor(net, "hidden.tau_s", 1, N);
    for (size_t j = 0; taus && j < N; j++) taus[j] = 2.0f + (float)j;
    /* Every hidden unit stays active (z1 > 0): a finite difference with the
     * steps t_check_trainer_fd takes (1e-2) would otherwise cross relu kinks
     * in many of the B*T*H pre-activations. The relu gate itself is checked
     * exactly in 3a. */
    float *b1 = tensor(net, "hidden.b1", 1, 5);
    for (size_t o = 0; b1 && o < 5; o++) b1[o] = 3.0f;
    soma_train_opts o;
    soma_train_opts_default(&o);
    o.batch = B;
    o.threads = 2;
    o.loss = loss;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.steps = T;
    soma_trainer *tr;
    CHECK(soma_train_create(&tr, net, &o, &d) == 0);
    soma_rng r;
    soma_rng_init(&r, 8, 8);
    size_t nx = (tc ? 1 : (size_t)T) * B * D;
    float *x = malloc(nx * sizeof *x);
    for (size_t i = 0; i < nx; i++) x[i] = 3.0f * soma_rng_uniform(&r) - 1.0f;
    uint8_t y[4] = {0, 1, 2, 1};
    size_t skipped, checked = t_check_trainer_fd(tr, net, x, tc, y, B, 1, 2e-2, &skipped, label);
    CHECK_MSG(skipped * 10 < checked, "%s: %zu of %zu entries skipped", label, skipped, checked);
    CHECK(checked > 100);
    free(x);
    soma_train_free(tr);
    soma_net_free(net);
}

static void test_gradients(void) {
    if (!elm()) return;
    check_fd("elm v1, ce_mem", 0.0f, 0, SOMA_LOSS_CE_MEM);
    check_fd("elm branches 3, ce_last", 3.0f, 0, SOMA_LOSS_CE_LAST);
    check_fd("elm branches 4 of 6, constant input", 4.0f, 1, SOMA_LOSS_CE_MEM);
}

/* ----------------------------------------------------- 4. training */

static void test_training(void) {
    if (!elm()) return;
    soma_dataset ds = {0};
    size_t n = 96;
    ds.n = n, ds.dim = 8, ds.rows = 2, ds.cols = 4, ds.classes = 3;
    ds.x = malloc(n * ds.dim);
    ds.y = malloc(n);
    soma_rng r;
    soma_rng_init(&r, 5, 1);
    for (size_t i = 0; i < n; i++) {
        ds.y[i] = (uint8_t)(soma_rng_u32(&r) % 3);
        for (size_t k = 0; k < ds.dim; k++)
            ds.x[i * ds.dim + k] = (uint8_t)((soma_rng_u32(&r) % 100) + (k % 3 == ds.y[i] ? 155 : 0));
    }
    soma_net *net = build(8, 12, 3, 0.0f, 0.0f, 4);
    soma_train_opts o;
    soma_train_opts_default(&o);
    o.batch = 16, o.lr = 5e-3f, o.seed = 3, o.threads = 1, o.loss = SOMA_LOSS_CE_MEM;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.encoding = SOMA_ENCODING_DIRECT, d.steps = 6, d.readout = SOMA_READOUT_MEMBRANE;
    soma_trainer *tr = NULL;
    CHECK(soma_train_create(&tr, net, &o, &d) == 0);
    if (tr) {
        double loss[3];
        for (int e = 0; e < 3; e++) {
            soma_epoch_result er;
            CHECK(soma_train_epoch(tr, &ds, e, NULL, NULL, &er) == 0);
            loss[e] = er.loss;
        }
        CHECK_MSG(isfinite(loss[2]) && loss[2] < loss[0], "elm loss %g -> %g", loss[0], loss[2]);
        soma_train_free(tr);
    }
    soma_net_free(net);
    soma_data_free(&ds);
}

/* ------------------------------------- 5. model file, bad parameters */

static void test_model_file(void) {
    if (!elm()) return;
    const char *dir = t_tmpdir("elm_file");
    char path[600], err[512] = "";
    snprintf(path, sizeof path, "%s/elm.soma", dir);
    soma_net *net = build(3, 6, 3, 2.0f, 5.0f, 11);
    size_t hid;
    soma_net_find_pop(net, "hidden", &hid);
    CHECK(soma_net_set_param(net, hid, "lambda", 3.5f) == 0);
    CHECK(soma_net_set_param(net, hid, "dt", 0.75f) == 0);
    CHECK(soma_net_set_learn(net, hid, "tau_s", SOMA_LEARN_NEURON) == 0);
    CHECK(soma_net_init_weights(net, 11) == 0);
    float *taus = tensor(net, "hidden.tau_s", 1, 6);
    for (size_t j = 0; taus && j < 6; j++) taus[j] = 1.5f + 0.25f * (float)j; /* as if learned */
    float *ltm = tensor(net, "hidden.log_tau_m", 1, 6);
    for (size_t j = 0; ltm && j < 6; j++) ltm[j] = 0.3f * (float)j;
    soma_data_opts d;
    soma_train_opts o;
    soma_data_opts_default(&d);
    soma_train_opts_default(&o);
    d.steps = 5, o.batch = 4, o.threads = 1, o.loss = SOMA_LOSS_CE_MEM;
    CHECK_MSG(soma_model_save(path, net, &d, &o, err, sizeof err) == 0, "save: %s", err);
    soma_net *back = NULL;
    CHECK_MSG(soma_model_load(path, &back, NULL, NULL, err, sizeof err) == 0, "load: %s", err);
    if (back) {
        size_t h;
        float v = 0;
        CHECK(soma_net_find_pop(back, "hidden", &h) == 0);
        CHECK(soma_net_get_param(back, h, "lambda", &v) == 0 && v == 3.5f);
        CHECK(soma_net_get_param(back, h, "dt", &v) == 0 && v == 0.75f);
        CHECK(soma_net_get_param(back, h, "branches", &v) == 0 && v == 2.0f);
        CHECK(soma_net_get_param(back, h, "mlp_hidden", &v) == 0 && v == 5.0f);
        CHECK(soma_net_get_learn(back, h, "tau_s") == SOMA_LEARN_NEURON);
        CHECK(soma_net_tensor_count(back) == soma_net_tensor_count(net));
        for (size_t i = 0; i < soma_net_tensor_count(net); i++) {
            soma_tensor ta, tb;
            soma_net_tensor(net, i, &ta);
            int found = soma_net_tensor_find(back, ta.name, &tb) == 0;
            CHECK_MSG(found && ta.rows == tb.rows && ta.cols == tb.cols &&
                          memcmp(ta.data, tb.data, ta.rows * ta.cols * sizeof(float)) == 0,
                      "tensor %s differs after the round trip", ta.name);
        }
        /* identical loss and predictions */
        soma_trainer *t1 = NULL, *t2 = NULL;
        CHECK(soma_train_create(&t1, net, &o, &d) == 0);
        CHECK(soma_train_create(&t2, back, &o, &d) == 0);
        if (t1 && t2) {
            float x[5 * 4 * 3];
            for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = (float)((i * 7) % 5) * 0.4f - 0.6f;
            uint8_t y[4] = {0, 1, 2, 0}, p1[4], p2[4];
            double l1 = -1, l2 = -2;
            CHECK(soma_train_grad(t1, x, 0, y, 4, &l1, NULL) == 0);
            CHECK(soma_train_grad(t2, x, 0, y, 4, &l2, NULL) == 0);
            CHECK_MSG(l1 == l2, "loss %.9g before, %.9g after the round trip", l1, l2);
            CHECK(soma_train_predict(t1, x, 0, 4, p1) == 0);
            CHECK(soma_train_predict(t2, x, 0, 4, p2) == 0);
            CHECK(memcmp(p1, p2, 4) == 0);
        }
        soma_train_free(t1);
        soma_train_free(t2);
        soma_net_free(back);
    }
    soma_net_free(net);
}

static void test_bad_params(void) {
    if (!elm()) return;
    soma_net *net = NULL;
    size_t h;
    soma_net_create(&net);
    soma_net_add_pop(net, "h", "elm", 4, &h);
    static const struct {
        const char *name;
        float value;
        const char *range;
    } bad[] = {{"lambda", -1.0f, "[0, 1000]"},     {"dt", 0.0f, "[0.001, 1000]"},
               {"tau_s", 0.0f, "[0.001, 1e+06]"},  {"branches", -1.0f, "[0, 65536]"},
               {"mlp_hidden", 1e6f, "[0, 65536]"}, {"lambda", NAN, "[0, 1000]"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(soma_net_set_param(net, h, bad[i].name, bad[i].value) == SOMA_STATUS_INVALID);
        const char *msg = soma_net_errmsg(net);
        CHECK_MSG(strstr(msg, bad[i].name) && strstr(msg, bad[i].range), "message: %s", msg);
    }
    CHECK(soma_net_set_param(net, h, "tau_m", 3.0f) == SOMA_STATUS_NOTFOUND);
    float v = 0;
    CHECK(soma_net_get_param(net, h, "lambda", &v) == 0 && v == 5.0f); /* unchanged */
    soma_net_free(net);

    /* experiment file: accepted values, then one out of range */
    const char *dir = t_tmpdir("elm_yaml");
    char path[600], err[512];
    snprintf(path, sizeof path, "%s/elm.yaml", dir);
    const char *yaml = "network:\n  populations:\n    in: {model: input, size: 8}\n"
                       "    h: {model: elm, size: 16, branches: 4, mlp_hidden: 24, lambda: 3, tau_s: 4,"
                       " learn: {tau_s: neuron}}\n"
                       "    out: {model: ann, size: 3, activation: linear}\n"
                       "  projections:\n    - {from: in, to: h}\n    - {from: h, to: out}\n";
    t_write_file(path, yaml, strlen(yaml));
    net = NULL;
    soma_data_opts d;
    soma_train_opts o;
    err[0] = 0;
    CHECK_MSG(soma_experiment_load(path, &net, &d, &o, err, sizeof err) == 0, "%s", err);
    if (net) {
        CHECK(soma_net_find_pop(net, "h", &h) == 0);
        CHECK(soma_net_get_param(net, h, "branches", &v) == 0 && v == 4.0f);
        CHECK(soma_net_get_param(net, h, "mlp_hidden", &v) == 0 && v == 24.0f);
        CHECK(soma_net_get_learn(net, h, "tau_s") == SOMA_LEARN_NEURON);
        tensor(net, "h.w1", 24, 4 + 16);
        soma_net_free(net);
    }
    const char *badyaml = "network:\n  populations:\n    in: {model: input, size: 8}\n"
                          "    h: {model: elm, size: 16, lambda: -2}\n"
                          "  projections:\n    - {from: in, to: h}\n";
    t_write_file(path, badyaml, strlen(badyaml));
    net = NULL;
    err[0] = 0;
    CHECK(soma_experiment_load(path, &net, &d, &o, err, sizeof err) != 0 && net == NULL);
    CHECK_MSG(strstr(err, "lambda") && strstr(err, "[0, 1000]"), "message: %s", err);
}

int main(void) {
    test_descriptors();
    test_forward();
    test_backward();
    test_gradients();
    test_training();
    test_model_file();
    test_bad_params();
    return t_report("test_elm");
}
