/* test_cfc.c — the closed-form continuous-time cell: its forward (every
 * state variable, every mode, fused and per-head products, with and without
 * mixed memory) against a double-precision reference written here from the
 * equations; a whole net's loss against the same reference; the backward of
 * the whole trainer against finite differences of its loss for every tensor
 * and learnable parameter (all modes, mixed memory or not, hidden or output
 * layer, time-varying and constant input, recurrent); mixed memory's
 * initialisation; the model.soma round trip; bad parameter values. */
#include <stdlib.h>
#include <string.h>
#include "models/model.h"
#include "soma.h"
#include "testlib.h"

enum { MODE_DEFAULT, MODE_NO_GATE, MODE_MINIMAL };
#define MAXN 8

static const soma_model *cfc(void) { return soma_model_find("cfc"); }

/* Double reference of one population's cell: weights [out][in]. With mixed
 * memory (mix) the LSTM's L = [Wl_in | Wl_h] ([4N][2N], gate blocks g, i, f,
 * o as ncps) and bias bl. */
typedef struct ref_cell {
    int mode, N, mix;
    double dt, A[MAXN], wt[MAXN];
    double U[MAXN][MAXN], W[4][MAXN][MAXN], bu[MAXN], bh[4][MAXN];
    double L[4 * MAXN][2 * MAXN], bl[4 * MAXN];
} ref_cell;

static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

/* ncps' LSTMCell: from x, h = h_{t-1} and cs = c_{t-1} (overwritten by c_t),
 * hl = og tanh(c_t); G gets gt, ig, fg, og ([4N]). */
static void ref_lstm(const ref_cell *c, const double *h, double *cs, const double *x, double *hl, double *G) {
    int N = c->N;
    for (int j = 0; j < N; j++) {
        double p[4];
        for (int k = 0; k < 4; k++) {
            int r = k * N + j;
            p[k] = c->bl[r];
            for (int i = 0; i < N; i++) p[k] += c->L[r][i] * x[i] + c->L[r][N + i] * h[i];
        }
        G[j] = tanh(p[0]), G[N + j] = sigm(p[1]), G[2 * N + j] = sigm(p[2] + 1.0), G[3 * N + j] = sigm(p[3]);
        cs[j] = G[2 * N + j] * cs[j] + G[N + j] * G[j];
        hl[j] = G[3 * N + j] * tanh(cs[j]);
    }
}

/* One step from h (overwritten) and the input current x; z, f1, f2, g get
 * the step's intermediates as the model stores them. */
static void ref_step(const ref_cell *c, double *h, const double *x, double *z, double *f1, double *f2, double *g) {
    int N = c->N;
    for (int j = 0; j < N; j++) {
        double p = x[j] + c->bu[j];
        for (int i = 0; i < N; i++) p += c->U[j][i] * h[i];
        z[j] = 1.7159 * tanh(0.666 * p);
    }
    for (int j = 0; j < N; j++) {
        double q[4];
        for (int k = 0; k < 4; k++) {
            q[k] = c->bh[k][j];
            for (int i = 0; i < N; i++) q[k] += c->W[k][j][i] * z[i];
        }
        if (c->mode == MODE_MINIMAL) {
            f1[j] = q[0];
            g[j] = exp(-c->dt * (fabs(c->wt[j]) + fabs(q[0])));
            f2[j] = 0;
            h[j] = -c->A[j] * g[j] * q[0] + c->A[j];
        } else {
            f1[j] = tanh(q[0]);
            f2[j] = tanh(q[1]);
            g[j] = 1.0 / (1.0 + exp(-(q[2] * c->dt + q[3])));
            h[j] = c->mode == MODE_NO_GATE ? f1[j] + g[j] * f2[j] : f1[j] * (1 - g[j]) + g[j] * f2[j];
        }
    }
}

/* A fixed, irregular value for entry i of tensor k. */
static float wval(int k, int i, float scale) { return scale * sinf(1.37f * (float)i + 0.91f * (float)k + 0.3f); }

/* ---------------------------------------------------------------- forward trace through the vtable */
#define TB 2
#define TN 3
#define TT 4

static void trace_mode(int mode, int fused, int mix) {
    /* weights: U, W1, W2, Wa, Wb, b_u, b1, b2, ba, bb. The four heads are
     * back to back (fused product) or apart (one product each). */
    float block[4 * TN * TN + 4 * 7], U[TN * TN], bias[5][TN];
    const float *w[SOMA_MAX_WEIGHTS] = {0};
    ref_cell c = {.mode = mode, .N = TN, .dt = 0.7, .mix = mix};
    float L[4 * TN * 2 * TN], bl[4 * TN], zero = 0.0f; /* mixed memory's lstm_w, lstm_b */
    for (int i = 0; i < 4 * TN * 2 * TN; i++) L[i] = wval(20, i, 0.6f), c.L[i / (2 * TN)][i % (2 * TN)] = L[i];
    for (int i = 0; i < 4 * TN; i++) bl[i] = wval(21, i, 0.3f), c.bl[i] = bl[i];
    for (int i = 0; i < TN * TN; i++) U[i] = wval(0, i, 0.8f), c.U[i / TN][i % TN] = U[i];
    for (int k = 0; k < 4; k++) {
        float *p = block + (fused ? k * TN * TN : k * (TN * TN + 7));
        w[1 + k] = p;
        for (int i = 0; i < TN * TN; i++) p[i] = wval(1 + k, i, 0.9f), c.W[k][i / TN][i % TN] = p[i];
    }
    for (int k = 0; k < 5; k++)
        for (int j = 0; j < TN; j++) {
            bias[k][j] = wval(10 + k, j, 0.4f);
            if (k == 0) c.bu[j] = bias[k][j];
            else c.bh[k - 1][j] = bias[k][j];
        }
    w[0] = U;
    for (int k = 0; k < 5; k++) w[5 + k] = bias[k];
    w[10] = mix ? L : &zero, w[11] = mix ? bl : &zero;
    float prm[5][TN];
    for (int j = 0; j < TN; j++) {
        prm[0][j] = (float)mode, prm[1][j] = 0.7f, prm[4][j] = (float)mix;
        prm[2][j] = 1.0f + 0.25f * (float)j, prm[3][j] = -0.4f + 0.3f * (float)j;
        c.A[j] = prm[2][j], c.wt[j] = prm[3][j];
    }
    soma_model_args a = {0};
    for (int k = 0; k < 5; k++) a.prm[k] = prm[k];
    for (int k = 0; k < 12; k++) a.w[k] = w[k];
    const float setv[5] = {(float)mode, 0.7f, 1.0f, 0.0f, (float)mix}; /* the set values that size things */
    CHECK(cfc()->scratch_floats(setv, TN) == 5 * TN);
    float work[5 * TN * TB], sp[2 * TN];
    a.work = work, a.scratch = sp;
    /* states: h, z, ff1, ff2, gate, c, h_lstm, lstm_gates (the last 4N wide) */
    float tape[TT + 1][8][TB * 4 * TN], s[TB * TN], in[TT][TB * TN];
    for (int k = 0; k < 8; k++) {
        size_t wd = cfc()->state_width(setv, TN, (size_t)k);
        CHECK(wd == (k >= 5 && !mix ? 0 : k == 3 && mode == MODE_MINIMAL ? 0 : k == 7 ? 4 * TN : TN));
    }
    memset(tape, 0, sizeof tape);
    for (int t = 0; t < TT; t++)
        for (int i = 0; i < TB * TN; i++) in[t][i] = 1.5f * sinf(0.8f * (float)(t * TB * TN + i)) + 0.2f;
    double h[TB][TN] = {{0}}, cs[TB][TN] = {{0}};
    for (int t = 0; t < TT; t++) {
        const float *prev[8];
        float *cur[8];
        for (int k = 0; k < 8; k++) prev[k] = tape[t][k], cur[k] = tape[t + 1][k];
        cfc()->forward(&a, prev, cur, s, in[t], TB, TN);
        for (int b = 0; b < TB; b++) {
            double x[TN], z[TN], f1[TN], f2[TN], g[TN], hl[TN], G[4 * TN];
            for (int j = 0; j < TN; j++) x[j] = in[t][b * TN + j];
            if (mix) {
                ref_lstm(&c, h[b], cs[b], x, hl, G);
                for (int j = 0; j < TN; j++) {
                    CHECK_NEAR(tape[t + 1][5][b * TN + j], cs[b][j], 2e-6);
                    CHECK_NEAR(tape[t + 1][6][b * TN + j], hl[j], 2e-6);
                }
                for (int j = 0; j < 4 * TN; j++) CHECK_NEAR(tape[t + 1][7][b * 4 * TN + j], G[j], 2e-6);
                memcpy(h[b], hl, sizeof hl);
            }
            ref_step(&c, h[b], x, z, f1, f2, g);
            for (int j = 0; j < TN; j++) {
                int i = b * TN + j;
                CHECK_NEAR(tape[t + 1][0][i], h[b][j], 2e-6);
                CHECK_NEAR(s[i], h[b][j], 2e-6);
                CHECK_NEAR(tape[t + 1][1][i], z[j], 2e-6);
                CHECK_NEAR(tape[t + 1][2][i], f1[j], 2e-6);
                if (mode != MODE_MINIMAL) CHECK_NEAR(tape[t + 1][3][i], f2[j], 2e-6);
                CHECK_NEAR(tape[t + 1][4][i], g[j], 2e-6);
            }
        }
    }
}

/* One value worked out by hand, so the reference itself is pinned: N = 1,
 * all weights 0.5, biases 0, dt 1, input 1, h0 = 0, default mode:
 * z = 1.7159 tanh(0.666) = 0.9992416, q = 0.5 z = 0.4996208,
 * ff1 = ff2 = tanh(q) = 0.4618189, g = sigmoid(2q) = 0.7309094, h = ff1. */
static void test_hand_value(void) {
    ref_cell c = {.mode = MODE_DEFAULT, .N = 1, .dt = 1};
    c.U[0][0] = 0.5;
    for (int k = 0; k < 4; k++) c.W[k][0][0] = 0.5;
    double h = 0, x = 1, z, f1, f2, g;
    ref_step(&c, &h, &x, &z, &f1, &f2, &g);
    CHECK_NEAR(z, 1.7159 * tanh(0.666), 1e-12);
    CHECK_NEAR(z, 0.99924155, 1e-7);
    CHECK_NEAR(f1, 0.46181886, 1e-7);
    CHECK_NEAR(g, 0.73090943, 1e-7);
    CHECK_NEAR(h, 0.46181886, 1e-7);
}

/* The same with mixed memory: the LSTM's weights all 0.5 too, bias 0, c0 = 0:
 * p = 0.5, gt = tanh(0.5) = 0.46211716, ig = og = sigmoid(0.5) = 0.62245933,
 * fg = sigmoid(1.5) = 0.81757448, c = ig gt = 0.28764914, hl = og tanh(c) =
 * 0.17426972; then the CfC from hl: z = 1.7159 tanh(0.666 (1 + 0.5 hl)) =
 * 1.06282931, ff1 = tanh(0.5 z) = 0.48646172, g = sigmoid(z) = 0.74323086. */
static void test_hand_value_mixed(void) {
    ref_cell c = {.mode = MODE_DEFAULT, .N = 1, .dt = 1, .mix = 1};
    c.U[0][0] = 0.5;
    for (int k = 0; k < 4; k++) c.W[k][0][0] = 0.5, c.L[k][0] = c.L[k][1] = 0.5;
    double h = 0, cs = 0, x = 1, hl, G[4], z, f1, f2, g;
    ref_lstm(&c, &h, &cs, &x, &hl, G);
    CHECK_NEAR(G[0], 0.46211716, 1e-7);
    CHECK_NEAR(G[1], 0.62245933, 1e-7);
    CHECK_NEAR(G[2], 0.81757448, 1e-7);
    CHECK_NEAR(G[3], 0.62245933, 1e-7);
    CHECK_NEAR(cs, 0.28764914, 1e-7);
    CHECK_NEAR(hl, 0.17426972, 1e-7);
    h = hl;
    ref_step(&c, &h, &x, &z, &f1, &f2, &g);
    CHECK_NEAR(z, 1.06282931, 1e-7);
    CHECK_NEAR(f1, 0.48646172, 1e-7);
    CHECK_NEAR(g, 0.74323086, 1e-7);
    CHECK_NEAR(h, 0.48646172, 1e-7);
}

static void test_trace(void) {
    CHECK(cfc() && cfc()->graded && cfc()->spiking && !cfc()->rate_output && cfc()->n_state == 8 &&
          cfc()->n_weights == 12);
    for (int mix = 0; mix < 2; mix++)
        for (int mode = 0; mode < 3; mode++) {
            trace_mode(mode, 1, mix);
            trace_mode(mode, 0, mix);
        }
}

/* ---------------------------------------------------------------- nets */
/* in (D) -> hidden cfc (N) -> out ann linear (C), or in -> cfc (C) as output. */
static soma_net *build(int mode, size_t D, size_t N, size_t C, int cfc_out, int recurrent, int learn, int mix) {
    soma_net *net;
    soma_net_create(&net);
    size_t in, hid, out;
    soma_net_add_pop(net, "in", "input", D, &in);
    soma_net_add_pop(net, "hidden", "cfc", cfc_out ? C : N, &hid);
    CHECK(soma_net_set_param(net, hid, "mode", (float)mode) == 0);
    CHECK(soma_net_set_param(net, hid, "dt", 0.8f) == 0);
    CHECK(soma_net_set_param(net, hid, "mixed_memory", (float)mix) == 0);
    if (mode == MODE_MINIMAL) CHECK(soma_net_set_param(net, hid, "w_tau", 0.3f) == 0);
    if (learn) {
        CHECK(soma_net_set_learn(net, hid, "A", SOMA_LEARN_NEURON) == 0);
        CHECK(soma_net_set_learn(net, hid, "w_tau", SOMA_LEARN_LAYER) == 0);
    }
    if (recurrent) soma_net_set_recurrent(net, hid, 1);
    soma_net_connect_dense(net, in, hid, 1);
    if (!cfc_out) {
        soma_net_add_pop(net, "out", "ann", C, &out);
        soma_net_set_param(net, out, "activation", 2.0f);
        soma_net_connect_dense(net, hid, out, 1);
    }
    CHECK(soma_net_init_weights(net, 11) == 0);
    return net;
}

static soma_trainer *trainer(soma_net *net, int loss, size_t B, int T, int threads) {
    soma_train_opts o;
    soma_train_opts_default(&o);
    o.batch = B;
    o.threads = threads;
    o.loss = loss;
    o.optimizer = SOMA_OPTIMIZER_ADAM;
    o.lr = 1e-2f;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.encoding = SOMA_ENCODING_SEQUENCE;
    d.readout = SOMA_READOUT_LAST;
    d.steps = T;
    soma_trainer *tr = NULL;
    int rc = soma_train_create(&tr, net, &o, &d);
    CHECK_MSG(rc == 0, "trainer: %s", tr ? soma_train_errmsg(tr) : "");
    return tr;
}

static float *inputs(size_t n, uint64_t seed) {
    soma_rng r;
    soma_rng_init(&r, seed, 1);
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = 2.0f * soma_rng_uniform(&r) - 0.7f;
    return x;
}

static const float *tensor(soma_net *net, const char *name, size_t *rows, size_t *cols) {
    soma_tensor t;
    int rc = soma_net_tensor_find(net, name, &t);
    CHECK_MSG(rc == 0, "no tensor %s", name);
    if (rc) return NULL;
    if (rows) *rows = t.rows;
    if (cols) *cols = t.cols;
    return t.data;
}

/* Every tensor of the net set to fixed values; the reference reads them back by name. */
static void set_all(soma_net *net) {
    size_t nt = soma_net_tensor_count(net);
    for (size_t k = 0; k < nt; k++) {
        soma_tensor t;
        soma_net_tensor(net, k, &t);
        int is_prm = strcmp(t.name, "hidden.A") == 0 || strcmp(t.name, "hidden.w_tau") == 0;
        if (!is_prm && t.rows * t.cols == 1 && strncmp(t.name, "hidden.", 7) == 0) continue; /* minimal's placeholders */
        for (size_t i = 0; i < t.rows * t.cols; i++)
            t.data[i] = is_prm ? 0.8f + 0.3f * wval((int)k, (int)i, 1.0f) : wval((int)k, (int)i, 0.7f);
    }
}

static void ref_from_net(soma_net *net, ref_cell *c, int mode, size_t N, int mix) {
    memset(c, 0, sizeof *c);
    c->mode = mode, c->N = (int)N, c->dt = 0.8f, c->mix = mix;
    static const char *heads[4] = {"hidden.W1", "hidden.W2", "hidden.Wa", "hidden.Wb"};
    static const char *hb[4] = {"hidden.b1", "hidden.b2", "hidden.ba", "hidden.bb"};
    size_t r = 0, cl = 0;
    const float *U = tensor(net, "hidden.U", &r, &cl), *bu = tensor(net, "hidden.b_u", NULL, NULL);
    CHECK(r == N && cl == N);
    for (size_t j = 0; j < N; j++) {
        c->bu[j] = bu[j];
        for (size_t i = 0; i < N; i++) c->U[j][i] = U[j * N + i];
    }
    for (int k = 0; k < 4; k++) {
        const float *W = tensor(net, heads[k], &r, &cl), *b = tensor(net, hb[k], NULL, NULL);
        if (mode == MODE_MINIMAL && k > 0) {
            CHECK(r == 1 && cl == 1 && W[0] == 0.0f); /* minimal mode: no ff2, time_a, time_b */
            continue;
        }
        CHECK(r == N && cl == N);
        for (size_t j = 0; j < N; j++) {
            c->bh[k][j] = b[j];
            for (size_t i = 0; i < N; i++) c->W[k][j][i] = W[j * N + i];
        }
    }
    const float *L = tensor(net, "hidden.lstm_w", &r, &cl), *bl = tensor(net, "hidden.lstm_b", NULL, NULL);
    if (!mix) CHECK(r == 1 && cl == 1 && L[0] == 0.0f && bl[0] == 0.0f); /* unused placeholders */
    else {
        CHECK(r == 4 * N && cl == 2 * N);
        for (size_t j = 0; j < 4 * N; j++) {
            c->bl[j] = bl[j];
            for (size_t i = 0; i < 2 * N; i++) c->L[j][i] = L[j * 2 * N + i];
        }
    }
    for (size_t j = 0; j < N; j++) c->A[j] = 1.0, c->wt[j] = 0.3f;
    soma_tensor t;
    if (soma_net_tensor_find(net, "hidden.A", &t) == 0)
        for (size_t j = 0; j < N; j++) c->A[j] = t.data[t.cols == 1 ? 0 : j];
    if (soma_net_tensor_find(net, "hidden.w_tau", &t) == 0)
        for (size_t j = 0; j < N; j++) c->wt[j] = t.data[t.cols == 1 ? 0 : j];
}

/* The trainer's ce_last loss against the double reference of the whole net. */
static void net_loss_mode(int mode, size_t N, int mix) {
    size_t B = 2, D = 3, C = 2;
    int T = 4;
    soma_net *net = build(mode, D, N, C, 0, 0, mode == MODE_MINIMAL, mix);
    set_all(net);
    ref_cell c;
    ref_from_net(net, &c, mode, N, mix);
    const float *Win = tensor(net, "in->hidden.weight", NULL, NULL), *bin = tensor(net, "in->hidden.bias", NULL, NULL);
    const float *Wo = tensor(net, "hidden->out.weight", NULL, NULL), *bo = tensor(net, "hidden->out.bias", NULL, NULL);
    float *x = inputs((size_t)T * B * D, 5);
    uint8_t y[2] = {1, 0};
    double ref = 0;
    for (size_t b = 0; b < B; b++) {
        double h[MAXN] = {0}, cs[MAXN] = {0}, hl[MAXN], xin[MAXN], z[MAXN], f1[MAXN], f2[MAXN], g[MAXN], G[4 * MAXN];
        for (int t = 0; t < T; t++) {
            for (size_t j = 0; j < N; j++) {
                xin[j] = bin[j];
                for (size_t i = 0; i < D; i++) xin[j] += (double)Win[j * D + i] * x[((size_t)t * B + b) * D + i];
            }
            if (mix) { /* hl replaces h_{t-1} */
                ref_lstm(&c, h, cs, xin, hl, G);
                memcpy(h, hl, sizeof h);
            }
            ref_step(&c, h, xin, z, f1, f2, g);
        }
        double lg[2], mx = -1e300, se = 0;
        for (size_t k = 0; k < C; k++) {
            lg[k] = bo[k];
            for (size_t j = 0; j < N; j++) lg[k] += (double)Wo[k * N + j] * h[j];
            mx = fmax(mx, lg[k]);
        }
        for (size_t k = 0; k < C; k++) se += exp(lg[k] - mx);
        ref += (mx + log(se) - lg[y[b]]) / (double)B;
    }
    soma_trainer *tr = trainer(net, SOMA_LOSS_CE_LAST, B, T, 1);
    double loss = -1;
    CHECK(tr && soma_train_grad(tr, x, 0, y, B, &loss, NULL) == 0);
    CHECK_MSG(fabs(loss - ref) < 1e-5, "mode %d N %zu mix %d: trainer loss %.8f, reference %.8f", mode, N, mix, loss,
              ref);
    free(x);
    soma_train_free(tr);
    soma_net_free(net);
}

static void test_net_loss(void) {
    for (int mix = 0; mix < 2; mix++)
        for (int mode = 0; mode < 3; mode++) {
            net_loss_mode(mode, 3, mix); /* heads apart (9 floats padded to 16) */
            net_loss_mode(mode, 4, mix); /* heads back to back: one fused product */
        }
}

/* ---------------------------------------------------------------- backward vs finite differences */
static void fd_case(const char *label, int mode, size_t N, int cfc_out, int recurrent, int tc, int loss, int threads,
                    int mix) {
    size_t B = 3, D = 4, C = 3;
    int T = mix ? 6 : 4; /* mixed memory: c carries over five steps */
    soma_net *net = build(mode, D, N, C, cfc_out, recurrent, mode == MODE_MINIMAL, mix);
    soma_trainer *tr = trainer(net, loss, B, T, threads);
    if (!tr) { soma_net_free(net); return; }
    float *x = inputs((size_t)(tc ? 1 : T) * B * D, 9);
    uint8_t y[3] = {0, 2, 1};
    size_t skipped, checked = t_check_trainer_fd(tr, net, x, tc, y, B, 1, 2e-2, &skipped, label);
    CHECK_MSG(skipped * 10 < checked, "%s: %zu of %zu entries skipped", label, skipped, checked);
    free(x);
    soma_train_free(tr);
    soma_net_free(net);
}

static void test_backward_fd(void) {
    /* mix 0: the plain cell; mix 1: mixed memory, every case again (the
     * LSTM's lstm_w and lstm_b among the tensors checked) */
    for (int mix = 0; mix < 2; mix++) {
        char l[8][64];
        const char *tag = mix ? ", mixed memory" : "";
        for (int k = 0; k < 8; k++) l[k][0] = 0;
        snprintf(l[0], sizeof l[0], "default N5%s", tag);
        snprintf(l[1], sizeof l[1], "default N4 fused%s", tag);
        snprintf(l[2], sizeof l[2], "no_gate N4%s", tag);
        snprintf(l[3], sizeof l[3], "minimal N5 learned A, w_tau%s", tag);
        snprintf(l[4], sizeof l[4], "default output ce_mem, 2 threads%s", tag);
        snprintf(l[5], sizeof l[5], "minimal output ce_mem%s", tag);
        snprintf(l[6], sizeof l[6], "default constant input%s", tag);
        snprintf(l[7], sizeof l[7], "no_gate recurrent%s", tag);
        fd_case(l[0], MODE_DEFAULT, 5, 0, 0, 0, SOMA_LOSS_CE_LAST, 1, mix);
        fd_case(l[1], MODE_DEFAULT, 4, 0, 0, 0, SOMA_LOSS_CE_LAST, 1, mix);
        fd_case(l[2], MODE_NO_GATE, 4, 0, 0, 0, SOMA_LOSS_CE_LAST, 1, mix);
        fd_case(l[3], MODE_MINIMAL, 5, 0, 0, 0, SOMA_LOSS_CE_LAST, 1, mix);
        /* cfc as the output layer: the membrane loss gradient dv reaches h */
        fd_case(l[4], MODE_DEFAULT, 3, 1, 0, 0, SOMA_LOSS_CE_MEM, 2, mix);
        fd_case(l[5], MODE_MINIMAL, 3, 1, 0, 0, SOMA_LOSS_CE_MEM, 1, mix);
        /* a constant input: the first layer sums its input gradient over steps */
        fd_case(l[6], MODE_DEFAULT, 4, 0, 0, 1, SOMA_LOSS_CE_LAST, 1, mix);
        /* an extra recurrent projection of s = h */
        fd_case(l[7], MODE_NO_GATE, 4, 0, 1, 0, SOMA_LOSS_CE_MEM, 1, mix);
    }
}

/* ---------------------------------------------------------------- mixed memory's initialisation */
/* As ncps' LSTMCell: Wl_in xavier_uniform, Wl_h ([4N][N]) with orthonormal
 * columns, lstm_b U(-0.1, 0.1); with mixed_memory = no, 1 x 1 zeros. */
static void test_mixed_init(void) {
    size_t N = 16;
    soma_net *net = build(MODE_DEFAULT, 3, N, 2, 0, 0, 0, 1);
    size_t r = 0, cl = 0;
    const float *L = tensor(net, "hidden.lstm_w", &r, &cl), *bl = tensor(net, "hidden.lstm_b", NULL, &cl);
    CHECK(r == 4 * N && L && bl);
    if (!L || !bl) { soma_net_free(net); return; }
    double bound = sqrt(6.0 / (double)(5 * N)), amax = 0, bmax = 0, orth = 0, ld = 2 * (double)N;
    for (size_t j = 0; j < 4 * N; j++) {
        for (size_t i = 0; i < N; i++) amax = fmax(amax, fabs(L[j * (size_t)ld + i]));
        bmax = fmax(bmax, fabs(bl[j]));
    }
    for (size_t a = 0; a < N; a++)
        for (size_t b = 0; b < N; b++) {
            double d = 0;
            for (size_t j = 0; j < 4 * N; j++) d += (double)L[j * 2 * N + N + a] * L[j * 2 * N + N + b];
            orth = fmax(orth, fabs(d - (a == b)));
        }
    CHECK_MSG(amax <= bound && amax > 0.8 * bound, "Wl_in: max |w| %g, xavier bound %g", amax, bound);
    CHECK_MSG(bmax <= 0.1 && bmax > 0.05, "lstm_b: max |b| %g", bmax);
    CHECK_MSG(orth < 1e-5, "Wl_h: columns not orthonormal (%g)", orth);
    /* The plain cell's tensors are the same draws with or without mixed memory. */
    soma_net *plain = build(MODE_DEFAULT, 3, N, 2, 0, 0, 0, 0);
    const char *same[] = {"hidden.U", "hidden.W1", "hidden.Wb", "hidden.bb", "in->hidden.weight"};
    for (size_t k = 0; k < 5; k++) {
        size_t r1, c1;
        const float *p = tensor(net, same[k], &r1, &c1), *q = tensor(plain, same[k], NULL, NULL);
        CHECK_MSG(p && q && memcmp(p, q, r1 * c1 * sizeof(float)) == 0, "%s differs", same[k]);
    }
    soma_net_free(plain);
    soma_net_free(net);
}

/* ---------------------------------------------------------------- model.soma round trip */
static void roundtrip_mode(int mode, int mix) {
    size_t B = 4, D = 3, N = 6, C = 3;
    int T = 5;
    soma_net *net = build(mode, D, N, C, 0, 0, mode == MODE_MINIMAL, mix);
    soma_trainer *tr = trainer(net, SOMA_LOSS_CE_LAST, B, T, 2);
    if (!tr) { soma_net_free(net); return; }
    float *x = inputs((size_t)T * B * D, 21);
    uint8_t y[4] = {0, 1, 2, 1}, p1[4], p2[4];
    double l1, l2;
    for (int k = 0; k < 5; k++) { /* a few Adam steps, so the weights are not the initial ones */
        CHECK(soma_train_grad(tr, x, 0, y, B, &l1, NULL) == 0);
        CHECK(soma_train_apply(tr) == 0);
    }
    CHECK(soma_train_grad(tr, x, 0, y, B, &l1, NULL) == 0);
    CHECK(soma_train_predict(tr, x, 0, B, p1) == 0);
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.encoding = SOMA_ENCODING_SEQUENCE;
    d.steps = T;
    char path[600], err[1024] = "";
    snprintf(path, sizeof path, "%s/cfc%d%d.soma", t_tmpdir("cfc"), mode, mix);
    CHECK_MSG(soma_model_save(path, net, &d, soma_train_options(tr), err, sizeof err) == 0, "save: %s", err);
    soma_net *back = NULL;
    CHECK_MSG(soma_model_load(path, &back, NULL, NULL, err, sizeof err) == 0, "load: %s", err);
    if (back) {
        float v = -1;
        CHECK(soma_net_get_param(back, 1, "mode", &v) == 0 && v == (float)mode);
        CHECK(soma_net_get_param(back, 1, "dt", &v) == 0 && v == 0.8f);
        CHECK(soma_net_get_param(back, 1, "mixed_memory", &v) == 0 && v == (float)mix);
        CHECK(soma_net_tensor_count(back) == soma_net_tensor_count(net));
        for (size_t k = 0; k < soma_net_tensor_count(net); k++) {
            soma_tensor a, b;
            soma_net_tensor(net, k, &a);
            soma_net_tensor(back, k, &b);
            CHECK(strcmp(a.name, b.name) == 0 && a.rows == b.rows && a.cols == b.cols &&
                  memcmp(a.data, b.data, a.rows * a.cols * sizeof(float)) == 0);
        }
        soma_trainer *t2 = trainer(back, SOMA_LOSS_CE_LAST, B, T, 2);
        if (t2) {
            CHECK(soma_train_grad(t2, x, 0, y, B, &l2, NULL) == 0);
            CHECK_MSG(l1 == l2, "mode %d mix %d: loss %.9g before saving, %.9g after loading", mode, mix, l1, l2);
            CHECK(soma_train_predict(t2, x, 0, B, p2) == 0);
            CHECK(memcmp(p1, p2, B) == 0);
        }
        soma_train_free(t2);
        soma_net_free(back);
    }
    free(x);
    soma_train_free(tr);
    soma_net_free(net);
}

static void test_roundtrip(void) {
    for (int mix = 0; mix < 2; mix++)
        for (int mode = 0; mode < 3; mode++) roundtrip_mode(mode, mix);
}

/* ---------------------------------------------------------------- bad values */
static void bad_value(soma_net *net, size_t pop, const char *prm, float v, const char *phrase) {
    int rc = soma_net_set_param(net, pop, prm, v);
    const char *msg = soma_net_errmsg(net);
    CHECK_MSG(rc == SOMA_STATUS_INVALID, "%s = %g accepted", prm, v);
    CHECK_MSG(strstr(msg, phrase) != NULL, "%s = %g: message '%s' lacks '%s'", prm, v, msg, phrase);
}

static void test_bad_values(void) {
    soma_net *net;
    soma_net_create(&net);
    size_t h;
    soma_net_add_pop(net, "h", "cfc", 4, &h);
    bad_value(net, h, "dt", 0.0f, "h.dt = 0 is outside [1e-06, 1000]");
    bad_value(net, h, "dt", -1.0f, "h.dt = -1 is outside");
    bad_value(net, h, "dt", 1001.0f, "h.dt = 1001 is outside");
    bad_value(net, h, "dt", NAN, "h.dt = nan is outside");
    bad_value(net, h, "mode", 3.0f, "h.mode = 3 is outside [0, 2]");
    bad_value(net, h, "A", 5000.0f, "h.A = 5000 is outside");
    bad_value(net, h, "w_tau", -5000.0f, "h.w_tau = -5000 is outside");
    bad_value(net, h, "mixed_memory", 2.0f, "h.mixed_memory = 2 is outside [0, 1]");
    bad_value(net, h, "mixed_memory", -1.0f, "h.mixed_memory = -1 is outside [0, 1]");
    float v;
    CHECK(soma_net_get_param(net, h, "dt", &v) == 0 && v == 1.0f); /* a rejected value leaves the old one */
    CHECK(soma_net_get_param(net, h, "mode", &v) == 0 && v == 0.0f);
    CHECK(soma_net_set_param(net, h, "dt", 1000.0f) == 0);
    CHECK(soma_net_set_learn(net, h, "dt", SOMA_LEARN_LAYER) != 0); /* dt is not learnable */
    soma_net_free(net);

    /* In an experiment file: an unknown mode names the choices; dt out of range says where. */
    const char *dir = t_tmpdir("cfc_yaml");
    const char *cases[][2] = {
        {"mode: gated", "unknown choice 'gated'; expected one of: default, no_gate, minimal"},
        {"dt: 0", "dt"},
        {"dt: 2000", "dt"},
        {"mixed_memory: maybe", "unknown choice 'maybe'; expected one of: no, yes"},
        {"mixed_memory: true", "unknown choice 'true'; expected one of: no, yes"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char yaml[512], path[700], err[1024] = "";
        snprintf(yaml, sizeof yaml,
                 "network:\n  populations:\n    in: {model: input, size: 2}\n    h: {model: cfc, size: 3, %s}\n"
                 "  projections:\n    - {from: in, to: h}\n",
                 cases[k][0]);
        snprintf(path, sizeof path, "%s/bad%zu.yaml", dir, k);
        CHECK(t_write_file(path, yaml, strlen(yaml)) == 0);
        soma_net *n2 = NULL;
        int rc = soma_experiment_load(path, &n2, NULL, NULL, err, sizeof err);
        CHECK_MSG(rc != 0 && n2 == NULL, "'%s' accepted", cases[k][0]);
        CHECK_MSG(strstr(err, cases[k][1]) && strstr(err, ".yaml:4"), "'%s': message '%s'", cases[k][0], err);
        if (n2) soma_net_free(n2);
    }
    /* mixed_memory: yes in a file gives the LSTM's tensors; no gives placeholders. */
    for (int mix = 0; mix < 2; mix++) {
        char yaml[512], path[700], err[1024] = "";
        snprintf(yaml, sizeof yaml,
                 "network:\n  populations:\n    in: {model: input, size: 2}\n"
                 "    h: {model: cfc, size: 3, mixed_memory: %s}\n  projections:\n    - {from: in, to: h}\n",
                 mix ? "yes" : "no");
        snprintf(path, sizeof path, "%s/mix%d.yaml", dir, mix);
        CHECK(t_write_file(path, yaml, strlen(yaml)) == 0);
        soma_net *n2 = NULL;
        CHECK_MSG(soma_experiment_load(path, &n2, NULL, NULL, err, sizeof err) == 0, "mixed_memory: %s", err);
        if (!n2) continue;
        soma_tensor w, b;
        float v = -1;
        CHECK(soma_net_get_param(n2, 1, "mixed_memory", &v) == 0 && v == (float)mix);
        CHECK(soma_net_tensor_find(n2, "h.lstm_w", &w) == 0 && soma_net_tensor_find(n2, "h.lstm_b", &b) == 0);
        CHECK(w.rows == (mix ? 12u : 1u) && w.cols == (mix ? 6u : 1u) && b.rows == 1 && b.cols == (mix ? 12u : 1u));
        soma_net_free(n2);
    }
}

/* chrono = T_max: forget-gate biases ln U(1, T_max - 1), input-gate biases
 * their negatives (ncps block order g, i, f, o); chrono = 0 keeps ncps'
 * U(-0.1, 0.1) everywhere. */
static void test_chrono_init(void) {
    for (int on = 0; on < 2; on++) {
        soma_net *net = NULL;
        size_t in, h;
        soma_net_create(&net);
        soma_net_add_pop(net, "in", "input", 3, &in);
        soma_net_add_pop(net, "h", "cfc", 8, &h);
        CHECK(soma_net_set_param(net, h, "mixed_memory", 1.0f) == 0);
        CHECK(soma_net_set_param(net, h, "chrono", on ? 200.0f : 0.0f) == 0);
        soma_net_connect_dense(net, in, h, 1);
        CHECK(soma_net_init_weights(net, 4) == 0);
        soma_tensor b;
        CHECK(soma_net_tensor_find(net, "h.lstm_b", &b) == 0 && b.cols == 32);
        float fmax_ = -1e9f, fmin_ = 1e9f;
        int ok = 1;
        for (size_t j = 0; j < 8; j++) {
            float bf = b.data[16 + j], bi = b.data[8 + j];
            fmax_ = bf > fmax_ ? bf : fmax_;
            fmin_ = bf < fmin_ ? bf : fmin_;
            if (on) ok &= bf >= 0.0f && bf <= logf(199.0f) + 1e-5f && bi == -bf;
            else ok &= fabsf(bf) <= 0.1f && fabsf(bi) <= 0.1f;
        }
        for (size_t j = 0; j < 8; j++) ok &= fabsf(b.data[j]) <= 0.1f && fabsf(b.data[24 + j]) <= 0.1f; /* g, o */
        CHECK_MSG(ok, "chrono %d: gate biases out of their ranges", on);
        if (on) CHECK_MSG(fmax_ - fmin_ > 0.5f, "chrono: forget biases are spread (%g..%g)", fmin_, fmax_);
        soma_net_free(net);
    }
    soma_net *net = NULL;
    size_t h;
    soma_net_create(&net);
    soma_net_add_pop(net, "h", "cfc", 4, &h);
    CHECK(soma_net_set_param(net, h, "chrono", -1.0f) == SOMA_STATUS_INVALID);
    soma_net_free(net);
}

int main(void) {
    test_hand_value();
    test_hand_value_mixed();
    test_trace();
    test_net_loss();
    test_backward_fd();
    test_mixed_init();
    test_chrono_init();
    test_roundtrip();
    test_bad_values();
    return t_report("test_cfc");
}
