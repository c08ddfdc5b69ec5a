/* test_ultralif.c — the UltraLIF neuron: a hand-computed trace, the
 * log-sum-exp limit (max as eps -> 0), the exact backward against finite
 * differences of a double-precision reference for every input and parameter,
 * and the whole trainer (UltraPLIF with learned eps, rate penalty) against
 * finite differences of its loss — the network is smooth, so they apply. */
#include <stdlib.h>
#include <string.h>
#include "models/model.h"
#include "soma.h"
#include "testlib.h"

#define NB 2
#define NN 3
#define NT 5

static const soma_model *ul(void) { return soma_model_find("ultralif"); }

/* Library forward over NT steps; tape[t] holds the 3 state arrays after step t. */
static void lib_forward(float prm[3][NN], const float *I, float tape[NT + 1][3][NB * NN], float s[NT][NB * NN]) {
    float sp[NN * 4];
    soma_model_args a = {0};
    for (int k = 0; k < 3; k++) a.prm[k] = prm[k];
    a.scratch = sp;
    memset(tape, 0, sizeof(float) * 3 * NB * NN);
    for (int t = 0; t < NT; t++) {
        const float *prev[3] = {tape[t][0], tape[t][1], tape[t][2]};
        float *cur[3] = {tape[t + 1][0], tape[t + 1][1], tape[t + 1][2]};
        ul()->forward(&a, prev, cur, s[t], I + t * NB * NN, NB, NN);
    }
}

/* Double reference: L = sum_t c.s + a.V with V, s from the equations. */
static double ref_loss(const double prm[3][NN], const double *I, const double *c, const double *av) {
    double L = 0, v[NB * NN] = {0};
    for (int t = 0; t < NT; t++)
        for (int b = 0; b < NB; b++)
            for (int j = 0; j < NN; j++) {
                int i = b * NN + j;
                double eps = exp(prm[1][j]), p = v[i] + prm[0][j], q = I[t * NB * NN + i], m = p > q ? p : q;
                double u = m + eps * log(exp((p - m) / eps) + exp((q - m) / eps));
                double s = 1 / (1 + exp(-(u - prm[2][j]) / eps));
                v[i] = u * (1 - s);
                L += c[t * NB * NN + i] * s + av[t * NB * NN + i] * v[i];
            }
    return L;
}

static void test_trace_and_limit(void) {
    CHECK(ul() && ul()->graded && ul()->rate_output && ul()->n_state == 3);
    /* eps 1, tau 0.9, theta 1; inputs 1, 0.5, 2 (worked out in double):
     * V1 = log(0.9 e^0 + e^1) = 1.2859993, s = sigmoid(0.2859993) = 0.5710164, V = V1 (1 - s) = 0.5516726
     * V1 = log(0.9 e^0.5516726 + e^0.5) = 1.1666635, s = 0.5415697, V = 0.5348339
     * V1 = log(0.9 e^0.5348339 + e^2) = 2.1889128, s = 0.7665466, V = 0.5110092 */
    float prm[3][NN];
    for (int j = 0; j < NN; j++) prm[0][j] = logf(0.9f), prm[1][j] = 0.0f, prm[2][j] = 1.0f;
    float I[NT * NB * NN] = {0}, tape[NT + 1][3][NB * NN], s[NT][NB * NN];
    float in3[3] = {1.0f, 0.5f, 2.0f};
    for (int t = 0; t < 3; t++) I[t * NB * NN] = in3[t];
    lib_forward(prm, I, tape, s);
    double eu[3] = {1.2859993, 1.1666635, 2.1889128}, es[3] = {0.5710164, 0.5415697, 0.7665466},
           ev[3] = {0.5516726, 0.5348339, 0.5110092};
    for (int t = 0; t < 3; t++) {
        CHECK_NEAR(tape[t + 1][1][0], eu[t], 2e-6);
        CHECK_NEAR(s[t][0], es[t], 2e-6);
        CHECK_NEAR(tape[t + 1][0][0], ev[t], 2e-6);
        CHECK_NEAR(tape[t + 1][2][0], in3[t], 0);
    }
    /* small eps: LSE -> max(V + L, I) within eps*ln 2 */
    for (int j = 0; j < NN; j++) prm[1][j] = logf(0.1f);
    float I2[NT * NB * NN];
    for (int i = 0; i < NT * NB * NN; i++) I2[i] = (float)((i * 7) % 11) * 0.3f - 1.0f;
    lib_forward(prm, I2, tape, s);
    for (int t = 0; t < NT; t++)
        for (int i = 0; i < NB * NN; i++) {
            float a = tape[t][0][i] + logf(0.9f), b = I2[t * NB * NN + i], mx = a > b ? a : b;
            float u = tape[t + 1][1][i];
            CHECK(u >= mx - 1e-5f && u <= mx + 0.1f * 0.6931472f + 1e-5f);
        }
}

static void test_backward_fd(void) {
    soma_rng r;
    soma_rng_init(&r, 17, 0);
    float prm[3][NN];
    double dprm0[3][NN];
    for (int j = 0; j < NN; j++) {
        prm[0][j] = logf(0.7f + 0.1f * (float)j);
        prm[1][j] = -0.5f + 0.4f * (float)j;
        prm[2][j] = 0.8f + 0.2f * (float)j;
        for (int k = 0; k < 3; k++) dprm0[k][j] = prm[k][j];
    }
    int n = NT * NB * NN;
    float I[NT * NB * NN], c[NT * NB * NN], av[NT * NB * NN];
    double Id[NT * NB * NN], cd[NT * NB * NN], ad[NT * NB * NN];
    for (int i = 0; i < n; i++) {
        I[i] = 3.0f * soma_rng_uniform(&r) - 1.0f, Id[i] = I[i];
        c[i] = 2.0f * soma_rng_uniform(&r) - 1.0f, cd[i] = c[i];
        av[i] = 2.0f * soma_rng_uniform(&r) - 1.0f, ad[i] = av[i];
    }
    float tape[NT + 1][3][NB * NN], s[NT][NB * NN];
    lib_forward(prm, I, tape, s);
    /* backward through the vtable */
    float sp[NN * 4], dst[3][NB * NN] = {{0}}, din[NT][NB * NN], dp[3][NN] = {{0}};
    soma_model_args a = {0};
    for (int k = 0; k < 3; k++) a.prm[k] = prm[k];
    a.scratch = sp;
    float *dstate[3] = {dst[0], dst[1], dst[2]}, *dprm[SOMA_MAX_PARAMS] = {dp[0], dp[1], dp[2]};
    for (int t = NT - 1; t >= 0; t--) {
        const float *prev[3] = {tape[t][0], tape[t][1], tape[t][2]}, *cur[3] = {tape[t + 1][0], tape[t + 1][1], tape[t + 1][2]};
        ul()->backward(&a, prev, cur, dstate, c + t * NB * NN, av + t * NB * NN, din[t], dprm, NB, NN);
    }
    double h = 1e-6;
    for (int i = 0; i < n; i++) {
        double keep = Id[i];
        Id[i] = keep + h;
        double lp = ref_loss(dprm0, Id, cd, ad);
        Id[i] = keep - h;
        double lm = ref_loss(dprm0, Id, cd, ad);
        Id[i] = keep;
        CHECK_NEAR(din[i / (NB * NN)][i % (NB * NN)], (lp - lm) / (2 * h), 1e-4);
    }
    double pr[3][NN];
    memcpy(pr, dprm0, sizeof pr);
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < NN; j++) {
            double keep = pr[k][j];
            pr[k][j] = keep + h;
            double lp = ref_loss(pr, Id, cd, ad);
            pr[k][j] = keep - h;
            double lm = ref_loss(pr, Id, cd, ad);
            pr[k][j] = keep;
            double fd = (lp - lm) / (2 * h);
            CHECK_MSG(fabs(dp[k][j] - fd) <= 1e-4 * fmax(1.0, fabs(fd)), "param %d neuron %d: backward %g, fd %g", k, j,
                      dp[k][j], fd);
            CHECK(fabs(fd) > 1e-6); /* every parameter matters here */
        }
}

/* in -> ultralif (log_tau per neuron, log_eps per layer, learned) -> ann
 * linear, ce_rate with the rate penalty, time-varying input. */
static void test_trainer_fd(void) {
    size_t B = 5, D = 6;
    int T = 3;
    soma_net *net;
    soma_net_create(&net);
    size_t in, hid, out;
    soma_net_add_pop(net, "in", "input", D, &in);
    soma_net_add_pop(net, "hidden", "ultralif", 8, &hid);
    soma_net_add_pop(net, "out", "ann", 3, &out);
    soma_net_set_param(net, out, "activation", 2.0f);
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
    soma_tensor te;
    CHECK(soma_net_tensor_find(net, "hidden.log_eps", &te) == 0); /* eps is among the checked tensors */
    size_t skipped, checked = t_check_trainer_fd(tr, net, x, 0, y, B, 2, 3e-2, &skipped, "ultralif trainer");
    CHECK_MSG(skipped * 10 < checked, "%zu of %zu entries skipped", skipped, checked);
    free(x);
    soma_train_free(tr);
    soma_net_free(net);
}

int main(void) {
    test_trace_and_limit();
    test_backward_fd();
    test_trainer_fd();
    return t_report("test_ultralif");
}
