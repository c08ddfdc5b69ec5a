/* test_ann.c — the non-spiking dense layer ("ann": relu, gelu, linear):
 * forward values, backward against finite differences through the vtable,
 * whole-trainer finite differences on all-graded networks (which exercise
 * the dense paths a graded layer takes, recurrence included), experiment
 * files, and training an MLP and a hybrid spiking/non-spiking network. */
#include <stdlib.h>
#include <string.h>
#include "models/model.h"
#include "soma.h"
#include "testlib.h"

static const soma_model *ann(void) { return soma_model_find("ann"); }

static void run_forward(int act, const float *in, float *u, float *s, size_t n) {
    float act_v = (float)act, scratch[64];
    soma_model_args a = {0};
    float actarr[16];
    for (int i = 0; i < 16; i++) actarr[i] = act_v;
    a.prm[0] = actarr;
    a.scratch = scratch;
    float zero[16] = {0};
    const float *prev[1] = {zero};
    float *cur[1] = {u};
    ann()->forward(&a, prev, cur, s, in, 1, n);
}

static void test_forward(void) {
    CHECK(ann() != NULL && ann()->graded == 1);
    float in[4] = {-1.0f, 0.0f, 1.0f, 2.5f}, u[4], s[4];
    run_forward(0, in, u, s, 4);
    CHECK(s[0] == 0.0f && s[1] == 0.0f && s[2] == 1.0f && s[3] == 2.5f);
    CHECK(u[0] == -1.0f && u[3] == 2.5f);
    run_forward(1, in, u, s, 4);
    /* gelu(x) = x Phi(x): Phi(1) = 0.841344746, Phi(-1) = 0.158655254, Phi(2.5) = 0.993790335 */
    CHECK_NEAR(s[0], -0.158655254, 1e-6);
    CHECK_NEAR(s[1], 0.0, 1e-7);
    CHECK_NEAR(s[2], 0.841344746, 1e-6);
    CHECK_NEAR(s[3], 2.5 * 0.993790335, 1e-6);
    run_forward(2, in, u, s, 4);
    CHECK(s[0] == -1.0f && s[3] == 2.5f);
}

/* L = sum c*S + a*U; backward vs central differences in the input. */
static void test_backward_fd(void) {
    soma_rng r;
    soma_rng_init(&r, 9, 1);
    for (int act = 0; act < 3; act++) {
        size_t n = 10;
        float in[10], c[10], av[10], u[10], s[10], din[10];
        for (size_t i = 0; i < n; i++) {
            in[i] = 3.0f * soma_rng_uniform(&r) - 1.5f;
            if (act == 0 && fabsf(in[i]) < 0.05f) in[i] = 0.3f; /* keep relu away from its kink */
            c[i] = 2.0f * soma_rng_uniform(&r) - 1.0f;
            av[i] = 2.0f * soma_rng_uniform(&r) - 1.0f;
        }
        run_forward(act, in, u, s, n);
        float actarr[16], scratch[64];
        for (int i = 0; i < 16; i++) actarr[i] = (float)act;
        soma_model_args a = {0};
        a.prm[0] = actarr;
        a.scratch = scratch;
        float zero[16] = {0}, dst[16] = {0};
        const float *prev[1] = {zero}, *cur[1] = {u};
        float *dstate[1] = {dst};
        float *dprm[SOMA_MAX_PARAMS] = {0};
        ann()->backward(&a, prev, cur, dstate, c, av, din, dprm, 1, n);
        for (size_t i = 0; i < n; i++) {
            double h = 1e-3, lp = 0, lm = 0;
            float x[10], uu[10], ss[10];
            memcpy(x, in, sizeof x);
            x[i] = in[i] + (float)h;
            run_forward(act, x, uu, ss, n);
            for (size_t k = 0; k < n; k++) lp += (double)c[k] * ss[k] + (double)av[k] * uu[k];
            x[i] = in[i] - (float)h;
            run_forward(act, x, uu, ss, n);
            for (size_t k = 0; k < n; k++) lm += (double)c[k] * ss[k] + (double)av[k] * uu[k];
            CHECK_NEAR(din[i], (lp - lm) / (2 * h), 2e-3);
        }
    }
}

/* An all-graded network is smooth (away from relu kinks), so the whole
 * trainer's gradient can be checked by finite differences of its loss. */
static void trainer_fd(int act, int recurrent, int tc, int loss) {
    size_t B = 6, D = 5;
    int T = 4;
    soma_net *net;
    soma_net_create(&net);
    size_t in, hid, out;
    soma_net_add_pop(net, "in", "input", D, &in);
    soma_net_add_pop(net, "hidden", "ann", 7, &hid);
    soma_net_add_pop(net, "out", "ann", 3, &out);
    soma_net_set_param(net, hid, "activation", (float)act);
    soma_net_set_param(net, out, "activation", 2.0f);
    if (recurrent) soma_net_set_recurrent(net, hid, 1);
    soma_net_connect_dense(net, in, hid, 1);
    soma_net_connect_dense(net, hid, out, 1);
    soma_net_init_weights(net, 21);
    soma_train_opts o;
    soma_train_opts_default(&o);
    o.batch = B;
    o.threads = 2;
    o.loss = loss;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.steps = T;
    d.readout = SOMA_READOUT_MEMBRANE;
    soma_trainer *tr;
    CHECK(soma_train_create(&tr, net, &o, &d) == 0);
    soma_rng r;
    soma_rng_init(&r, 5, 2);
    size_t nx = tc ? B * D : (size_t)T * B * D;
    float *x = malloc(nx * sizeof *x);
    for (size_t i = 0; i < nx; i++) x[i] = 2.0f * soma_rng_uniform(&r) - 0.5f;
    uint8_t y[6] = {0, 1, 2, 1, 0, 2};
    char label[80];
    snprintf(label, sizeof label, "act %d rec %d tc %d loss %d", act, recurrent, tc, loss);
    size_t skipped, checked = t_check_trainer_fd(tr, net, x, tc, y, B, 3, 3e-2, &skipped, label);
    /* the two step sizes disagree only through float noise, rarely */
    CHECK_MSG(skipped * 10 < checked, "%s: %zu of %zu entries skipped", label, skipped, checked);
    free(x);
    soma_train_free(tr);
    soma_net_free(net);
}

static void make_data(soma_dataset *ds, size_t n) {
    ds->n = n, ds->dim = 16, ds->rows = 4, ds->cols = 4, ds->classes = 3;
    ds->x = malloc(n * 16);
    ds->y = malloc(n);
    soma_rng r;
    soma_rng_init(&r, 77, 3);
    for (size_t i = 0; i < n; i++) {
        ds->y[i] = (uint8_t)(soma_rng_u32(&r) % 3);
        for (size_t k = 0; k < 16; k++)
            ds->x[i * 16 + k] = (uint8_t)(soma_rng_u32(&r) % 90 + (k % 3 == ds->y[i] ? 160 : 0));
    }
}

/* An MLP (relu, linear readout on the membrane) and a hybrid (spiking hidden,
 * gelu, spiking output) both learn the synthetic task. */
static void test_learns(void) {
    soma_dataset ds = {0};
    make_data(&ds, 240);
    for (int hybrid = 0; hybrid < 2; hybrid++) {
        soma_net *net;
        soma_net_create(&net);
        size_t in, h1, h2, out;
        soma_net_add_pop(net, "in", "input", 16, &in);
        soma_net_add_pop(net, "h1", hybrid ? "lif" : "ann", 24, &h1);
        soma_net_add_pop(net, "h2", "ann", 16, &h2);
        soma_net_add_pop(net, "out", hybrid ? "lif" : "ann", 3, &out);
        soma_net_set_param(net, h2, "activation", hybrid ? 1.0f : 0.0f);
        if (!hybrid) soma_net_set_param(net, out, "activation", 2.0f);
        soma_net_connect_dense(net, in, h1, 1);
        soma_net_connect_dense(net, h1, h2, 1);
        soma_net_connect_dense(net, h2, out, 1);
        soma_train_opts o;
        soma_train_opts_default(&o);
        o.batch = 16;
        o.lr = 5e-3f;
        o.loss = hybrid ? SOMA_LOSS_CE_RATE : SOMA_LOSS_CE_MEM;
        soma_data_opts d;
        soma_data_opts_default(&d);
        d.steps = hybrid ? 8 : 2;
        d.readout = hybrid ? SOMA_READOUT_COUNT : SOMA_READOUT_MEMBRANE;
        soma_trainer *tr;
        CHECK(soma_train_create(&tr, net, &o, &d) == 0);
        soma_epoch_result e0, e;
        CHECK(soma_train_epoch(tr, &ds, 0, NULL, NULL, &e0) == 0);
        for (int k = 1; k < 4; k++) soma_train_epoch(tr, &ds, k, NULL, NULL, &e);
        double acc;
        CHECK(soma_train_evaluate(tr, &ds, 0, &acc, NULL) == 0);
        CHECK_MSG(e.loss < e0.loss && acc > 0.8, "hybrid %d: loss %g -> %g, accuracy %g", hybrid, e0.loss, e.loss, acc);
        soma_train_free(tr);
        soma_net_free(net);
    }
    soma_data_free(&ds);
}

static void test_yaml(void) {
    const char *dir = t_tmpdir("ann");
    char path[600], err[512];
    snprintf(path, sizeof path, "%s/mlp.yaml", dir);
    const char *ok = "network:\n  populations:\n    in: {model: input, size: 4}\n"
                     "    h: {model: ann, size: 8, activation: gelu}\n    out: {model: ann, size: 2, activation: linear}\n"
                     "  projections:\n    - {from: in, to: h}\n    - {from: h, to: out}\n";
    t_write_file(path, ok, strlen(ok));
    soma_net *net = NULL;
    CHECK(soma_experiment_load(path, &net, NULL, NULL, err, sizeof err) == 0);
    float v = -1;
    size_t h;
    CHECK(net && soma_net_find_pop(net, "h", &h) == 0 && soma_net_get_param(net, h, "activation", &v) == 0 && v == 1.0f);
    soma_net_free(net);
    snprintf(path, sizeof path, "%s/bad.yaml", dir);
    const char *bad = "network:\n  populations:\n    in: {model: input, size: 4}\n"
                      "    h: {model: ann, size: 8, activation: tanh}\n";
    t_write_file(path, bad, strlen(bad));
    net = NULL;
    CHECK(soma_experiment_load(path, &net, NULL, NULL, err, sizeof err) != 0);
    CHECK_MSG(strstr(err, ":4:") && strstr(err, "relu") && strstr(err, "gelu"), "%s", err);
}

int main(void) {
    test_forward();
    test_backward_fd();
    /* gelu and linear: smooth everywhere, so finite differences of the
     * float loss are reliable. relu's derivative is checked through the
     * vtable above; in a whole network its kinks make differences unreliable,
     * and it shares every trainer path with gelu. */
    for (int act = 1; act < 3; act++) {
        trainer_fd(act, 0, 1, SOMA_LOSS_CE_MEM);
        trainer_fd(act, 1, 0, SOMA_LOSS_CE_RATE);
    }
    trainer_fd(1, 1, 1, SOMA_LOSS_MSE_COUNT);
    test_learns();
    test_yaml();
    return t_report("test_ann");
}
