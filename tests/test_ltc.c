/* test_ltc.c — the Liquid Time-Constant cell (src/models/ltc.c):
 *   1. descriptors, weight shapes and the ncps initial ranges;
 *   2. forward of a tiny cell (N = 3, 2 rows, 4 steps, weights set through
 *      soma_net_tensor_find) against a double-precision evaluation of the
 *      equations written out here, every unfold included; and the steady
 *      state of a constant input against the fixed point of the ODE;
 *   3. the whole trainer against finite differences of its loss, for every
 *      tensor: input -> ltc -> linear ann with ce_last and a time-varying
 *      input, and ltc as the output layer (ce_mem, membrane gradient) with a
 *      time-constant input (the accumulated input gradient);
 *   4. a model-file round trip gives the same tensors, loss and predictions;
 *   5. bad parameter values are rejected with a message naming the range.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/model.h"
#include "soma.h"
#include "testlib.h"

enum { W_SMU, W_SSIGMA, W_SW, W_SEREV, W_MU, W_SIGMA, W_W, W_EREV, W_GLEAK, W_VLEAK, W_CM, N_W };
static const char *const wnames[N_W] = {"sensory_mu", "sensory_sigma", "sensory_w", "sensory_erev",
                                        "mu",         "sigma",         "w",         "erev",
                                        "gleak",      "vleak",         "cm"};

static const soma_model *ltc(void) { return soma_model_find("ltc"); }

/* ------------------------------------------------------- 1. descriptors */

static void test_descriptors(void) {
    const soma_model *m = ltc();
    CHECK(m != NULL);
    if (!m) return;
    CHECK(m->graded == 1 && m->spiking == 1 && m->rate_output == 0 && m->n_state == 3);
    CHECK(m->n_params == 2 && strcmp(m->params[0].name, "dt") == 0 && strcmp(m->params[1].name, "unfolds") == 0);
    CHECK(m->params[0].def == 1.0f && m->params[1].def == 6.0f);
    CHECK(m->params[1].lo == 1.0f && m->params[1].hi == 64.0f);
    CHECK(m->n_weights == N_W);
    for (int k = 0; k < N_W && (size_t)k < m->n_weights; k++) CHECK(strcmp(m->weight_names[k], wnames[k]) == 0);
    float prm[2] = {1.0f, 5.0f};
    CHECK(m->state_width(prm, 7, 0) == 7 && m->state_width(prm, 7, 1) == 35 && m->state_width(prm, 7, 2) == 35);
    /* shapes and the ncps initial ranges, on a population of 16 */
    size_t N = 16;
    float *w = malloc(N * N * sizeof *w);
    for (int k = 0; k < N_W; k++) {
        size_t r, c;
        m->weight_shape(prm, N, (size_t)k, &r, &c);
        CHECK(c == N && r == (k < W_GLEAK ? N : 1));
        soma_rng rng;
        soma_rng_init(&rng, 1, (uint64_t)k);
        m->weight_init(prm, N, (size_t)k, w, &rng);
        float lo = 1e9f, hi = -1e9f;
        size_t neg = 0;
        for (size_t i = 0; i < r * c; i++) {
            lo = fminf(lo, w[i]), hi = fmaxf(hi, w[i]);
            neg += w[i] < 0.0f;
        }
        if (k == W_SEREV || k == W_EREV) {
            for (size_t i = 0; i < r * c; i++) CHECK(w[i] == 1.0f || w[i] == -1.0f);
            CHECK_MSG(neg > r * c / 5 && neg < r * c / 2, "%s: %zu of %zu negative", wnames[k], neg, r * c);
            continue;
        }
        float elo = 0.001f, ehi = 1.0f;
        if (k == W_SMU || k == W_MU) elo = 0.3f, ehi = 0.8f;
        if (k == W_SSIGMA || k == W_SIGMA) elo = 3.0f, ehi = 8.0f;
        if (k == W_VLEAK) elo = -0.2f, ehi = 0.2f;
        if (k == W_CM) elo = 0.4f, ehi = 0.6f;
        CHECK_MSG(lo >= elo && hi <= ehi && hi - lo > 0.5f * (ehi - elo), "%s in [%g, %g]", wnames[k], lo, hi);
    }
    free(w);
}

/* ------------------------------------------------------- 2. forward */

#define FN 3
#define FB 2
#define FT 4

/* The equations of ltc.c's header in double: one step from v over K unfolds;
 * vin[k] gets the input of unfold k. Weights as stored (raw w, sw, cm, gleak). */
static double sp(double x) { return log(1.0 + exp(x)); }
static double sg(double x) { return 1.0 / (1.0 + exp(-x)); }
static void ref_step(double *W[N_W], size_t N, size_t K, double dt, const double *x, double *v, double *vin) {
    double ns[16] = {0}, dsum[16] = {0};
    for (size_t j = 0; j < N; j++)
        for (size_t i = 0; i < N; i++) {
            size_t o = i * N + j;
            double a = sp(W[W_SW][o]) * sg(W[W_SSIGMA][o] * (x[i] - W[W_SMU][o]));
            ns[j] += a * W[W_SEREV][o];
            dsum[j] += a;
        }
    for (size_t k = 0; k < K; k++) {
        double nv[16];
        if (vin)
            for (size_t j = 0; j < N; j++) vin[k * N + j] = v[j];
        for (size_t j = 0; j < N; j++) {
            double cmt = sp(W[W_CM][j]) / (dt / (double)K), gl = sp(W[W_GLEAK][j]);
            double num = cmt * v[j] + gl * W[W_VLEAK][j] + ns[j], den = cmt + gl + dsum[j];
            for (size_t i = 0; i < N; i++) {
                size_t o = i * N + j;
                double a = sp(W[W_W][o]) * sg(W[W_SIGMA][o] * (v[i] - W[W_MU][o]));
                num += a * W[W_EREV][o];
                den += a;
            }
            nv[j] = num / (den + 1e-8);
        }
        memcpy(v, nv, N * sizeof *v);
    }
}

/* Fixed weights of the tiny cell, distinct per entry, mixed signs. */
static float fixed_weight(int k, size_t i, size_t j) {
    float fi = (float)i, fj = (float)j;
    switch (k) {
    case W_SMU: return 0.1f + 0.15f * fi - 0.1f * fj;
    case W_SSIGMA: return 2.0f + 0.7f * fi + 0.4f * fj;
    case W_SW: return -0.4f + 0.3f * fi + 0.25f * fj;
    case W_SEREV: return (i + 2 * j) % 3 == 0 ? -1.0f : 1.0f;
    case W_MU: return 0.3f - 0.2f * fi + 0.12f * fj;
    case W_SIGMA: return 4.0f - 0.8f * fi + 0.5f * fj;
    case W_W: return 0.2f - 0.35f * fi + 0.3f * fj;
    case W_EREV: return (2 * i + j) % 3 == 1 ? -1.0f : 1.0f;
    case W_GLEAK: return 0.2f + 0.3f * fj;
    case W_VLEAK: return -0.15f + 0.12f * fj;
    default: return 0.45f + 0.06f * fj; /* cm */
    }
}

/* A net in -> h (ltc, N, dt, K) -> out (linear ann, C); NULL on failure. */
static soma_net *make_net(size_t D, size_t N, size_t C, float dt, float K, int hidden_is_output) {
    soma_net *net = NULL;
    size_t in, hid, out;
    int ok = soma_net_create(&net) == 0;
    ok = ok && soma_net_add_pop(net, "in", "input", D, &in) == 0;
    ok = ok && soma_net_add_pop(net, "h", "ltc", N, &hid) == 0;
    ok = ok && soma_net_set_param(net, hid, "dt", dt) == 0;
    ok = ok && soma_net_set_param(net, hid, "unfolds", K) == 0;
    ok = ok && soma_net_connect_dense(net, in, hid, 1) == 0;
    if (!hidden_is_output) {
        ok = ok && soma_net_add_pop(net, "out", "ann", C, &out) == 0;
        ok = ok && soma_net_set_param(net, out, "activation", 2.0f) == 0;
        ok = ok && soma_net_connect_dense(net, hid, out, 1) == 0;
    }
    CHECK_MSG(ok, "building: %s", net ? soma_net_errmsg(net) : "no net");
    if (!ok) {
        soma_net_free(net);
        return NULL;
    }
    return net;
}

static void test_forward_trace(void) {
    const soma_model *m = ltc();
    size_t N = FN, K = 3;
    float dt = 0.5f;
    soma_net *net = make_net(2, N, 2, dt, (float)K, 0);
    if (!m || !net) return;
    CHECK(soma_net_init_weights(net, 1) == 0);
    soma_model_args a = {0};
    double wd[N_W][FN * FN], *W[N_W];
    for (int k = 0; k < N_W; k++) {
        char name[64];
        snprintf(name, sizeof name, "h.%s", wnames[k]);
        soma_tensor t;
        CHECK_MSG(soma_net_tensor_find(net, name, &t) == 0, "%s", name);
        size_t rows = k < W_GLEAK ? N : 1;
        CHECK(t.rows == rows && t.cols == N);
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < N; j++) {
                float v = rows == 1 ? fixed_weight(k, 0, j) : fixed_weight(k, i, j);
                t.data[i * N + j] = v;
                wd[k][i * N + j] = v;
            }
        a.w[k] = t.data;
        W[k] = wd[k];
    }
    float pdt[FN], pk[FN], scratch[2 * FN];
    for (size_t j = 0; j < N; j++) pdt[j] = dt, pk[j] = (float)K;
    a.prm[0] = pdt, a.prm[1] = pk;
    a.scratch = scratch;
    float *work = malloc(m->scratch_floats(a.prm[0], N) * FB * sizeof(float));
    a.work = work;
    /* inputs: time-varying, both signs */
    float in[FT][FB * FN];
    for (int t = 0; t < FT; t++)
        for (size_t i = 0; i < FB * N; i++) in[t][i] = 0.9f * sinf(0.7f * (float)t + 1.3f * (float)i) + 0.2f;
    float vbuf[FT + 1][FB * FN] = {{0}}, vu[FT + 1][FB * 3 * FN], rd[FT + 1][FB * 3 * FN], s[FB * FN];
    double vref[FB][FN] = {{0}};
    for (int t = 0; t < FT; t++) {
        const float *prev[3] = {vbuf[t], vu[t], rd[t]};
        float *cur[3] = {vbuf[t + 1], vu[t + 1], rd[t + 1]};
        m->forward(&a, prev, cur, s, in[t], FB, N);
        for (size_t b = 0; b < FB; b++) {
            double x[FN], vin[3 * FN];
            for (size_t i = 0; i < N; i++) x[i] = in[t][b * N + i];
            ref_step(W, N, K, dt, x, vref[b], vin);
            for (size_t j = 0; j < N; j++) {
                CHECK_NEAR(vbuf[t + 1][b * N + j], vref[b][j], 2e-6);
                CHECK(s[b * N + j] == vbuf[t + 1][b * N + j]);
            }
            for (size_t i = 0; i < K * N; i++) CHECK_NEAR(vu[t + 1][b * K * N + i], vin[i], 2e-6);
        }
    }
    /* the trace moves and stays in the convex hull of {v0 = 0, vleak, erev} */
    double spread = 0;
    for (size_t j = 0; j < N; j++) spread = fmax(spread, fabs(vref[0][j] - vref[1][j]));
    CHECK_MSG(spread > 0.1, "rows differ by %g only", spread);
    for (size_t j = 0; j < N; j++) CHECK(fabs(vbuf[FT][j]) <= 1.0f);

    /* Constant input, many steps: v reaches the ODE's fixed point
     * v* = (gleak vleak + sum a erev + ns) / (gleak + sum a + ds), a at v*. */
    float x0[FB * FN];
    for (size_t i = 0; i < FB * N; i++) x0[i] = 0.3f * (float)i - 0.4f;
    for (int t = 0; t < 300; t++) {
        const float *prev[3] = {vbuf[0], vu[0], rd[0]};
        float *cur[3] = {vbuf[1], vu[1], rd[1]};
        m->forward(&a, prev, cur, s, x0, FB, N);
        memcpy(vbuf[0], vbuf[1], sizeof vbuf[0]);
    }
    for (size_t b = 0; b < FB; b++)
        for (size_t j = 0; j < N; j++) {
            double num = sp(W[W_GLEAK][j]) * W[W_VLEAK][j], den = sp(W[W_GLEAK][j]);
            for (size_t i = 0; i < N; i++) {
                size_t o = i * N + j;
                double as = sp(W[W_SW][o]) * sg(W[W_SSIGMA][o] * (x0[b * N + i] - W[W_SMU][o]));
                double ar = sp(W[W_W][o]) * sg(W[W_SIGMA][o] * (vbuf[0][b * N + i] - W[W_MU][o]));
                num += as * W[W_SEREV][o] + ar * W[W_EREV][o];
                den += as + ar;
            }
            CHECK_NEAR(vbuf[0][b * N + j], num / den, 1e-5);
        }
    free(work);
    soma_net_free(net);
}

/* ------------------------------------------------------- 3. trainer gradients */

static void fd_case(const char *label, size_t D, size_t N, size_t C, float dt, float K, int hidden_is_output,
                    int loss, int tc, double tol) {
    size_t B = 3;
    int T = 4;
    soma_net *net = make_net(D, N, C, dt, K, hidden_is_output);
    if (!net) return;
    CHECK(soma_net_init_weights(net, 5) == 0);
    soma_train_opts o;
    soma_train_opts_default(&o);
    o.batch = B;
    o.threads = 1;
    o.loss = loss;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.steps = T;
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, net, &o, &d) == 0, "%s: %s", label, soma_net_errmsg(net));
    if (!tr) {
        soma_net_free(net);
        return;
    }
    soma_rng r;
    soma_rng_init(&r, 8, 9);
    size_t nx = (tc ? 1 : (size_t)T) * B * D;
    float *x = malloc(nx * sizeof *x);
    for (size_t i = 0; i < nx; i++) x[i] = 3.0f * soma_rng_uniform(&r) - 1.0f;
    uint8_t y[3] = {0, 1, 2};
    for (size_t i = 0; i < B; i++) y[i] = (uint8_t)(y[i] % C);
    size_t skipped = 0, checked = t_check_trainer_fd(tr, net, x, tc, y, B, 1, tol, &skipped, label);
    CHECK_MSG(checked > 50 && skipped * 10 < checked, "%s: %zu of %zu entries skipped", label, skipped, checked);
    free(x);
    soma_train_free(tr);
    soma_net_free(net);
}

static void test_trainer_fd(void) {
    fd_case("ltc hidden, ce_last", 3, 4, 3, 1.0f, 3.0f, 0, SOMA_LOSS_CE_LAST, 0, 3e-2);
    fd_case("ltc output, ce_mem, constant input", 2, 3, 3, 0.5f, 2.0f, 1, SOMA_LOSS_CE_MEM, 1, 3e-2);
}

/* The ends of the unfolds range: the state widths follow K, the loss and
 * gradients are finite. */
static void test_unfold_extremes(void) {
    static const float Ks[] = {1.0f, 64.0f};
    for (int c = 0; c < 2; c++) {
        size_t B = 2, D = 2;
        int T = 3;
        soma_net *net = make_net(D, 3, 2, 1.0f, Ks[c], 0);
        if (!net) return;
        soma_train_opts o;
        soma_train_opts_default(&o);
        o.batch = B;
        o.threads = 1;
        o.loss = SOMA_LOSS_CE_LAST;
        soma_data_opts d;
        soma_data_opts_default(&d);
        d.steps = T;
        soma_trainer *tr = NULL;
        CHECK(soma_train_create(&tr, net, &o, &d) == 0);
        float x[12];
        for (int i = 0; i < 12; i++) x[i] = 0.25f * (float)(i % 5);
        uint8_t y[2] = {0, 1};
        double loss = NAN;
        CHECK(tr && soma_train_grad(tr, x, 0, y, B, &loss, NULL) == 0);
        CHECK_MSG(isfinite(loss) && loss > 0, "K = %g: loss %g", Ks[c], loss);
        double gsum = 0;
        for (size_t i = 0; tr && i < soma_net_tensor_count(net); i++) {
            soma_tensor t;
            soma_train_tensor(tr, i, &t);
            for (size_t k = 0; k < t.rows * t.cols; k++) gsum += fabs(t.grad[k]);
        }
        CHECK_MSG(isfinite(gsum) && gsum > 0, "K = %g: gradient sum %g", Ks[c], gsum);
        soma_train_free(tr);
        soma_net_free(net);
    }
}

/* ------------------------------------------------------- 4. model file */

static void test_model_file(void) {
    const char *dir = t_tmpdir("ltc_file");
    char path[600], err[512] = "";
    snprintf(path, sizeof path, "%s/ltc.soma", dir);
    size_t D = 3, N = 5, C = 3, B = 4;
    int T = 6;
    soma_net *net = make_net(D, N, C, 0.75f, 4.0f, 0);
    if (!net) return;
    CHECK(soma_net_init_weights(net, 11) == 0);
    soma_data_opts d;
    soma_train_opts o;
    soma_data_opts_default(&d);
    soma_train_opts_default(&o);
    d.steps = T;
    o.batch = B;
    o.threads = 1;
    o.loss = SOMA_LOSS_CE_LAST;
    CHECK_MSG(soma_model_save(path, net, &d, &o, err, sizeof err) == 0, "save: %s", err);
    soma_net *back = NULL;
    CHECK_MSG(soma_model_load(path, &back, NULL, NULL, err, sizeof err) == 0, "load: %s", err);
    if (!back) {
        soma_net_free(net);
        return;
    }
    size_t h;
    float v = 0;
    CHECK(soma_net_find_pop(back, "h", &h) == 0);
    CHECK(soma_net_get_param(back, h, "dt", &v) == 0 && v == 0.75f);
    CHECK(soma_net_get_param(back, h, "unfolds", &v) == 0 && v == 4.0f);
    CHECK(soma_net_tensor_count(back) == soma_net_tensor_count(net));
    for (int k = 0; k < N_W; k++) {
        char name[64];
        snprintf(name, sizeof name, "h.%s", wnames[k]);
        soma_tensor ta, tb;
        CHECK(soma_net_tensor_find(net, name, &ta) == 0 && soma_net_tensor_find(back, name, &tb) == 0);
        CHECK(ta.rows == tb.rows && ta.cols == tb.cols &&
              memcmp(ta.data, tb.data, ta.rows * ta.cols * sizeof(float)) == 0);
    }
    soma_rng r;
    soma_rng_init(&r, 4, 4);
    float *x = malloc((size_t)T * B * D * sizeof *x);
    for (size_t i = 0; i < (size_t)T * B * D; i++) x[i] = 2.0f * soma_rng_uniform(&r);
    uint8_t y[4] = {0, 1, 2, 1}, pa[4], pb[4];
    soma_trainer *t1 = NULL, *t2 = NULL;
    CHECK(soma_train_create(&t1, net, &o, &d) == 0);
    CHECK(soma_train_create(&t2, back, &o, &d) == 0);
    if (t1 && t2) {
        double l1 = 0, l2 = -1;
        CHECK(soma_train_grad(t1, x, 0, y, B, &l1, NULL) == 0);
        CHECK(soma_train_grad(t2, x, 0, y, B, &l2, NULL) == 0);
        CHECK_MSG(l1 == l2 && isfinite(l1), "loss %.9g vs %.9g", l1, l2);
        CHECK(soma_train_predict(t1, x, 0, B, pa) == 0 && soma_train_predict(t2, x, 0, B, pb) == 0);
        CHECK(memcmp(pa, pb, B) == 0);
    }
    soma_train_free(t1);
    soma_train_free(t2);
    free(x);
    soma_net_free(back);
    soma_net_free(net);
}

/* ------------------------------------------------------- 5. bad values */

static void test_bad_params(void) {
    soma_net *net = NULL;
    size_t h;
    CHECK(soma_net_create(&net) == 0 && soma_net_add_pop(net, "h", "ltc", 4, &h) == 0);
    static const float bad_unfolds[] = {0.0f, -1.0f, 65.0f, 1000.0f};
    for (int i = 0; i < 4; i++) {
        CHECK(soma_net_set_param(net, h, "unfolds", bad_unfolds[i]) == SOMA_STATUS_INVALID);
        const char *msg = soma_net_errmsg(net);
        CHECK_MSG(strstr(msg, "unfolds") && strstr(msg, "[1, 64]"), "message: %s", msg);
    }
    CHECK(soma_net_set_param(net, h, "dt", 0.0f) == SOMA_STATUS_INVALID);
    CHECK_MSG(strstr(soma_net_errmsg(net), "dt"), "message: %s", soma_net_errmsg(net));
    CHECK(soma_net_set_param(net, h, "dt", -1.0f) == SOMA_STATUS_INVALID);
    CHECK(soma_net_set_param(net, h, "unfolds", NAN) == SOMA_STATUS_INVALID);
    float v = 0;
    CHECK(soma_net_get_param(net, h, "unfolds", &v) == 0 && v == 6.0f);
    CHECK(soma_net_set_learn(net, h, "dt", SOMA_LEARN_LAYER) != 0);
    CHECK(soma_net_set_param(net, h, "unfolds", 2.0f) == 0);
    soma_tensor t;
    CHECK(soma_net_tensor_find(net, "h.sigma", &t) == 0 && t.rows == 4 && t.cols == 4);
    soma_net_free(net);

    const char *dir = t_tmpdir("ltc_yaml");
    char path[600], err[512];
    snprintf(path, sizeof path, "%s/ltc.yaml", dir);
    const char *bad = "network:\n  populations:\n    in: {model: input, size: 4}\n"
                      "    h: {model: ltc, size: 8, unfolds: 100}\n"
                      "  projections:\n    - {from: in, to: h}\n";
    t_write_file(path, bad, strlen(bad));
    net = NULL;
    err[0] = 0;
    soma_data_opts d;
    soma_train_opts o;
    CHECK(soma_experiment_load(path, &net, &d, &o, err, sizeof err) != 0);
    CHECK(net == NULL);
    CHECK_MSG(strstr(err, "unfolds") && strstr(err, "[1, 64]"), "message: %s", err);
    const char *good = "network:\n  populations:\n    in: {model: input, size: 4}\n"
                       "    h: {model: ltc, size: 8, unfolds: 3, dt: 0.5}\n"
                       "  projections:\n    - {from: in, to: h}\n";
    t_write_file(path, good, strlen(good));
    err[0] = 0;
    CHECK_MSG(soma_experiment_load(path, &net, &d, &o, err, sizeof err) == 0, "%s", err);
    if (net) {
        CHECK(soma_net_find_pop(net, "h", &h) == 0);
        CHECK(soma_net_get_param(net, h, "unfolds", &v) == 0 && v == 3.0f);
        CHECK(soma_net_get_param(net, h, "dt", &v) == 0 && v == 0.5f);
        soma_net_free(net);
    }
}

int main(void) {
    test_descriptors();
    test_forward_trace();
    test_trainer_fd();
    test_unfold_extremes();
    test_model_file();
    test_bad_params();
    return t_report("test_ltc");
}
