/* test_ultradlif.c — the UltraDLIF neuron (UltraLIF with gap-junction
 * diffusion over a ring): a hand-computed trace, the vanishing-coupling limit
 * (UltraLIF), the exact backward against finite differences of a
 * double-precision reference for every input and parameter (N = 5, 2, 1: the
 * ring's general case and its two degenerate ones), the whole trainer against
 * finite differences of its loss, and an experiment file that uses it. */
#include <stdlib.h>
#include <string.h>
#include "models/model.h"
#include "soma.h"
#include "testlib.h"

#define BM 2
#define NM 5
#define TM 4
#define RM (BM * NM)

static const soma_model *udl(void) { return soma_model_find("ultradlif"); }

/* Library forward of model m over T steps of B rows of N neurons; tape[t]
 * holds the 3 state arrays after step t (tape[0] = zeros). prm[k] = [N]. */
static void lib_forward(const soma_model *m, float prm[4][NM], const float *I, size_t B, size_t N, int T,
                        float tape[TM + 1][3][RM], float s[TM][RM]) {
    float sp[2 * NM];
    soma_model_args a = {0};
    for (size_t k = 0; k < m->n_params; k++) a.prm[k] = prm[k];
    a.scratch = sp;
    memset(tape, 0, sizeof(float) * 3 * RM);
    for (int t = 0; t < T; t++) {
        const float *prev[3] = {tape[t][0], tape[t][1], tape[t][2]};
        float *cur[3] = {tape[t + 1][0], tape[t + 1][1], tape[t + 1][2]};
        m->forward(&a, prev, cur, s[t], I + (size_t)t * B * N, B, N);
    }
}

/* Double reference: L = sum_t c.s + a.V with V, s from the equations. */
static double ref_loss(const double prm[4][NM], const double *I, const double *c, const double *av, int B, int N,
                       int T) {
    double L = 0, v[RM] = {0}, nv[RM];
    for (int t = 0; t < T; t++) {
        for (int b = 0; b < B; b++)
            for (int j = 0; j < N; j++) {
                int i = b * N + j, il = b * N + (j + N - 1) % N, ir = b * N + (j + 1) % N;
                double eps = exp(prm[1][j]);
                double x[4] = {v[i] + prm[0][j], v[il] + prm[3][j], v[ir] + prm[3][j], I[t * B * N + i]};
                double m = x[0], sum = 0;
                for (int k = 1; k < 4; k++) m = x[k] > m ? x[k] : m;
                for (int k = 0; k < 4; k++) sum += exp((x[k] - m) / eps);
                double u = m + eps * log(sum);
                double s = 1 / (1 + exp(-(u - prm[2][j]) / eps));
                nv[i] = u * (1 - s);
                L += c[t * B * N + i] * s + av[t * B * N + i] * nv[i];
            }
        memcpy(v, nv, sizeof(double) * (size_t)(B * N));
    }
    return L;
}

static void test_trace(void) {
    CHECK(udl() && udl()->graded && udl()->rate_output && udl()->n_state == 3 && udl()->n_params == 4);
    size_t np;
    const soma_param_desc *d = soma_model_params(udl(), &np);
    CHECK(np == 4 && strcmp(d[3].name, "log_kappa") == 0 && fabs(d[3].def - log(0.1)) < 1e-6 && d[3].lo == -30.0f &&
          d[3].hi == 0.0f && d[3].learnable);
    /* N = 3, B = 1, T = 2; eps 1, tau 0.9, kappa 0.1, theta 1; inputs
     * t0 = (1, 0.5, 2), t1 = (0, 1, -1). Worked out in double:
     * t0 (V = 0 everywhere): V1_j = log(0.9 + 0.1 + 0.1 + e^{I_j})
     *   V1 = (1.3398005, 1.0111358, 2.1387778)
     *   s  = sigmoid(V1 - 1) = (0.5841421, 0.5027839, 0.7574552)
     *   V  = V1 (1 - s)      = (0.5571667, 0.5027530, 0.5187495)
     * t1: V1_0 = log(0.9 e^0.5571667 + 0.1 e^0.5187495 + 0.1 e^0.5027530 + e^0)
     *     V1_1 = log(0.9 e^0.5027530 + 0.1 e^0.5571667 + 0.1 e^0.5187495 + e^1)
     *     V1_2 = log(0.9 e^0.5187495 + 0.1 e^0.5027530 + 0.1 e^0.5571667 + e^-1)
     *   V1 = (1.0662497, 1.5148604, 0.7973770)
     *   s  = (0.5165564, 0.6259452, 0.4495169)
     *   V  = (0.5154716, 0.5666408, 0.4389426) */
    float prm[4][NM];
    for (int j = 0; j < NM; j++) prm[0][j] = logf(0.9f), prm[1][j] = 0.0f, prm[2][j] = 1.0f, prm[3][j] = logf(0.1f);
    float I[6] = {1.0f, 0.5f, 2.0f, 0.0f, 1.0f, -1.0f}, tape[TM + 1][3][RM], s[TM][RM];
    lib_forward(udl(), prm, I, 1, 3, 2, tape, s);
    double eu[2][3] = {{1.3398005, 1.0111358, 2.1387778}, {1.0662497, 1.5148604, 0.7973770}};
    double es[2][3] = {{0.5841421, 0.5027839, 0.7574552}, {0.5165564, 0.6259452, 0.4495169}};
    double ev[2][3] = {{0.5571667, 0.5027530, 0.5187495}, {0.5154716, 0.5666408, 0.4389426}};
    for (int t = 0; t < 2; t++)
        for (int j = 0; j < 3; j++) {
            CHECK_NEAR(tape[t + 1][1][j], eu[t][j], 2e-6);
            CHECK_NEAR(s[t][j], es[t][j], 2e-6);
            CHECK_NEAR(tape[t + 1][0][j], ev[t][j], 2e-6);
            CHECK_NEAR(tape[t + 1][2][j], I[t * 3 + j], 0);
        }
}

/* log_kappa = -30: the coupling vanishes and UltraDLIF is UltraLIF. */
static void test_vanishing_coupling(void) {
    const soma_model *ul = soma_model_find("ultralif");
    CHECK(ul != NULL);
    if (!ul) return;
    soma_rng r;
    soma_rng_init(&r, 5, 1);
    size_t Ns[2] = {5, 1};
    for (int c = 0; c < 2; c++) {
        size_t N = Ns[c];
        float prm[4][NM];
        for (size_t j = 0; j < N; j++) {
            prm[0][j] = logf(0.6f + 0.08f * (float)j);
            prm[1][j] = -0.4f + 0.2f * (float)j;
            prm[2][j] = 0.7f + 0.15f * (float)j;
            prm[3][j] = -30.0f;
        }
        float I[TM * RM], ta[TM + 1][3][RM], sa[TM][RM], tb[TM + 1][3][RM], sb[TM][RM];
        for (size_t i = 0; i < TM * BM * N; i++) I[i] = 3.0f * soma_rng_uniform(&r) - 1.0f;
        lib_forward(udl(), prm, I, BM, N, TM, ta, sa);
        lib_forward(ul, prm, I, BM, N, TM, tb, sb);
        for (int t = 0; t < TM; t++)
            for (size_t i = 0; i < BM * N; i++) {
                CHECK_NEAR(sa[t][i], sb[t][i], 1e-6);
                CHECK_NEAR(ta[t + 1][0][i], tb[t + 1][0][i], 1e-6);
                CHECK_NEAR(ta[t + 1][1][i], tb[t + 1][1][i], 1e-6);
            }
    }
}

static void backward_fd(size_t N, uint64_t seed) {
    const int B = BM, T = TM;
    soma_rng r;
    soma_rng_init(&r, seed, 0);
    float prm[4][NM];
    double prd[4][NM];
    for (size_t j = 0; j < N; j++) {
        prm[0][j] = logf(0.7f + 0.05f * (float)j);
        prm[1][j] = -0.5f + 0.25f * (float)j;
        prm[2][j] = 0.8f + 0.15f * (float)j;
        prm[3][j] = logf(0.15f + 0.05f * (float)j);
        for (int k = 0; k < 4; k++) prd[k][j] = prm[k][j];
    }
    size_t RB = (size_t)B * N, n = (size_t)T * RB;
    float I[TM * RM], c[TM * RM], av[TM * RM];
    double Id[TM * RM], cd[TM * RM], ad[TM * RM];
    for (size_t i = 0; i < n; i++) {
        I[i] = 3.0f * soma_rng_uniform(&r) - 1.0f, Id[i] = I[i];
        c[i] = 2.0f * soma_rng_uniform(&r) - 1.0f, cd[i] = c[i];
        av[i] = 2.0f * soma_rng_uniform(&r) - 1.0f, ad[i] = av[i];
    }
    float tape[TM + 1][3][RM], s[TM][RM];
    lib_forward(udl(), prm, I, (size_t)B, N, T, tape, s);
    /* backward through the vtable (scratch of exactly 2N floats) */
    float *sp = malloc(2 * N * sizeof *sp);
    float dst[3][RM] = {{0}}, din[TM][RM], dp[4][NM] = {{0}};
    soma_model_args a = {0};
    for (int k = 0; k < 4; k++) a.prm[k] = prm[k];
    a.scratch = sp;
    float *dstate[3] = {dst[0], dst[1], dst[2]}, *dprm[SOMA_MAX_PARAMS] = {dp[0], dp[1], dp[2], dp[3]};
    for (int t = T - 1; t >= 0; t--) {
        const float *prev[3] = {tape[t][0], tape[t][1], tape[t][2]}, *cur[3] = {tape[t + 1][0], tape[t + 1][1], tape[t + 1][2]};
        udl()->backward(&a, prev, cur, dstate, c + t * RB, av + t * RB, din[t], dprm, (size_t)B, N);
    }
    /* din_accumulate adds to din instead of overwriting it */
    {
        float d2[3][RM] = {{0}}, dn[RM], dq[4][NM] = {{0}};
        float *ds2[3] = {d2[0], d2[1], d2[2]}, *dpr2[SOMA_MAX_PARAMS] = {dq[0], dq[1], dq[2], dq[3]};
        for (size_t i = 0; i < RB; i++) dn[i] = 0.25f;
        a.din_accumulate = 1;
        const float *prev[3] = {tape[T - 1][0], tape[T - 1][1], tape[T - 1][2]},
                    *cur[3] = {tape[T][0], tape[T][1], tape[T][2]};
        udl()->backward(&a, prev, cur, ds2, c + (T - 1) * RB, av + (T - 1) * RB, dn, dpr2, (size_t)B, N);
        a.din_accumulate = 0;
        for (size_t i = 0; i < RB; i++) CHECK_NEAR(dn[i], din[T - 1][i] + 0.25f, 1e-6);
    }
    double h = 1e-6;
    for (size_t i = 0; i < n; i++) {
        double keep = Id[i];
        Id[i] = keep + h;
        double lp = ref_loss(prd, Id, cd, ad, B, (int)N, T);
        Id[i] = keep - h;
        double lm = ref_loss(prd, Id, cd, ad, B, (int)N, T);
        Id[i] = keep;
        CHECK_NEAR(din[i / RB][i % RB], (lp - lm) / (2 * h), 1e-4);
    }
    for (int k = 0; k < 4; k++)
        for (size_t j = 0; j < N; j++) {
            double keep = prd[k][j];
            prd[k][j] = keep + h;
            double lp = ref_loss(prd, Id, cd, ad, B, (int)N, T);
            prd[k][j] = keep - h;
            double lm = ref_loss(prd, Id, cd, ad, B, (int)N, T);
            prd[k][j] = keep;
            double fd = (lp - lm) / (2 * h);
            CHECK_NEAR(dp[k][j], fd, 1e-4);
            CHECK_MSG(fabs(fd) > 1e-6, "N %zu param %d neuron %zu: fd %g", N, k, j, fd); /* every parameter matters */
        }
    free(sp);
}

static void test_backward_fd(void) {
    backward_fd(5, 17);
    backward_fd(2, 18);
    backward_fd(1, 19);
}

/* in -> ultradlif (log_kappa and log_eps per layer, log_tau per neuron,
 * learned) -> ann linear, ce_rate with the rate penalty, time-varying input. */
static void test_trainer_fd(void) {
    size_t B = 5, D = 6;
    int T = 3;
    soma_net *net;
    soma_net_create(&net);
    size_t in, hid, out;
    soma_net_add_pop(net, "in", "input", D, &in);
    CHECK(soma_net_add_pop(net, "hidden", "ultradlif", 6, &hid) == 0);
    soma_net_add_pop(net, "out", "ann", 3, &out);
    soma_net_set_param(net, out, "activation", 2.0f);
    soma_net_set_param(net, hid, "log_kappa", -1.2f);
    CHECK(soma_net_set_learn(net, hid, "log_kappa", SOMA_LEARN_LAYER) == 0);
    soma_net_set_learn(net, hid, "log_tau", SOMA_LEARN_NEURON);
    soma_net_set_learn(net, hid, "log_eps", SOMA_LEARN_LAYER);
    soma_net_connect_dense(net, in, hid, 1);
    soma_net_connect_dense(net, hid, out, 1);
    soma_net_init_weights(net, 3);
    soma_train_opts o;
    soma_train_opts_default(&o);
    o.batch = B;
    o.threads = 2;
    o.loss = SOMA_LOSS_CE_RATE;
    o.rate_penalty = 0.5f;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.steps = T;
    soma_trainer *tr;
    CHECK(soma_train_create(&tr, net, &o, &d) == 0);
    soma_rng r;
    soma_rng_init(&r, 8, 8);
    size_t nx = (size_t)T * B * D;
    float *x = malloc(nx * sizeof *x);
    for (size_t i = 0; i < nx; i++) x[i] = 2.0f * soma_rng_uniform(&r);
    uint8_t y[5] = {0, 1, 2, 0, 1};
    double l0;
    CHECK(soma_train_grad(tr, x, 0, y, B, &l0, NULL) == 0);
    soma_tensor tk;
    int kappa = soma_net_tensor_find(net, "hidden.log_kappa", &tk) == 0;
    CHECK(kappa);
    if (kappa) {
        /* the coupling matters: its gradient is not zero */
        for (size_t i = 0; i < soma_net_tensor_count(net); i++) {
            soma_tensor t;
            soma_train_tensor(tr, i, &t);
            if (strcmp(t.name, "hidden.log_kappa") == 0) CHECK(t.rows * t.cols == 1 && fabs(t.grad[0]) > 1e-6);
        }
    }
    size_t skipped, checked = t_check_trainer_fd(tr, net, x, 0, y, B, 2, 3e-2, &skipped, "ultradlif trainer");
    CHECK_MSG(skipped * 10 < checked, "%zu of %zu entries skipped", skipped, checked);
    free(x);
    soma_train_free(tr);
    soma_net_free(net);
}

/* An experiment file can use the model and learn log_kappa per layer. */
static void test_experiment_yaml(void) {
    const char *dir = t_tmpdir("ultradlif");
    char path[600], err[512];
    snprintf(path, sizeof path, "%s/udlif.yaml", dir);
    const char *yaml = "network:\n  populations:\n    in: {model: input, size: 6}\n"
                       "    hidden: {model: ultradlif, size: 8, learn: {log_kappa: layer}}\n"
                       "    out: {model: ann, size: 3, activation: linear}\n"
                       "  projections:\n    - {from: in, to: hidden}\n    - {from: hidden, to: out}\n"
                       "train: {loss: ce_rate}\n";
    CHECK(t_write_file(path, yaml, strlen(yaml)) == 0);
    soma_net *net = NULL;
    soma_data_opts d;
    soma_train_opts o;
    int rc = soma_experiment_load(path, &net, &d, &o, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    size_t hid;
    CHECK(net && soma_net_find_pop(net, "hidden", &hid) == 0);
    if (net && soma_net_find_pop(net, "hidden", &hid) == 0) {
        soma_pop_info info;
        CHECK(soma_net_pop_info(net, hid, &info) == 0 && strcmp(info.model, "ultradlif") == 0 && info.size == 8);
        CHECK(soma_net_get_learn(net, hid, "log_kappa") == SOMA_LEARN_LAYER);
        CHECK(soma_net_get_learn(net, hid, "log_tau") == SOMA_LEARN_NONE);
        float k;
        CHECK(soma_net_get_param(net, hid, "log_kappa", &k) == 0 && fabsf(k - logf(0.1f)) < 1e-6f);
        soma_trainer *tr = NULL;
        soma_net_init_weights(net, 1);
        CHECK(soma_train_create(&tr, net, &o, &d) == 0);
        soma_train_free(tr);
    }
    soma_net_free(net);
}

int main(void) {
    test_trace();
    test_vanishing_coupling();
    test_backward_fd();
    test_trainer_fd();
    test_experiment_yaml();
    return t_report("test_ultradlif");
}
