/* test_regressions.c — one test per fixed bug, named after it. */
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

static soma_net *small_net(size_t n_out) {
    soma_net *net;
    soma_net_create(&net);
    size_t in, hid, out;
    soma_net_add_pop(net, "in", "input", 6, &in);
    soma_net_add_pop(net, "hidden", "lif", 12, &hid);
    soma_net_add_pop(net, "out", "lif", n_out, &out);
    soma_net_connect_dense(net, in, hid, 1);
    soma_net_connect_dense(net, hid, out, 1);
    soma_net_init_weights(net, 4);
    return net;
}

/* A surrogate named without its parameter ran with fast_sigmoid's 25. */
static void regression_surrogate_default_param(void) {
    const char *dir = t_tmpdir("regressions");
    char path[600], err[512];
    snprintf(path, sizeof path, "%s/atan.yaml", dir);
    const char *yaml = "network:\n  populations:\n    in: {model: input, size: 6}\n    out: {model: lif, size: 3}\n"
                       "  projections:\n    - {from: in, to: out}\n"
                       "train: {surrogate: atan}\n";
    t_write_file(path, yaml, strlen(yaml));
    soma_net *net = NULL;
    soma_data_opts d;
    soma_train_opts o;
    CHECK(soma_experiment_load(path, &net, &d, &o, err, sizeof err) == 0);
    CHECK(o.surrogate == SOMA_SURROGATE_ATAN);
    soma_trainer *tr = NULL;
    CHECK(net && soma_train_create(&tr, net, &o, &d) == 0);
    CHECK(tr && soma_train_options(tr)->surrogate_param == 2.0f);
    soma_train_free(tr);
    soma_net_free(net);
    soma_train_opts_default(&o);
    o.surrogate = SOMA_SURROGATE_TRIANGULAR;
    net = small_net(3);
    CHECK(soma_train_create(&tr, net, &o, &d) == 0);
    CHECK(tr && soma_train_options(tr)->surrogate_param == 1.0f);
    soma_train_free(tr);
    soma_net_free(net);
}

/* Bad data options made soma_encode fail silently and training ran on garbage. */
static void regression_encode_failure_propagates(void) {
    soma_net *net = small_net(3);
    soma_train_opts o;
    soma_train_opts_default(&o);
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.encoding = SOMA_ENCODING_LATENCY;
    d.tau = -1.0f;
    soma_trainer *tr = NULL;
    CHECK(soma_train_create(&tr, net, &o, &d) == SOMA_STATUS_INVALID);
    CHECK(tr == NULL && strstr(soma_net_errmsg(net), "tau") != NULL);
    d.tau = 5.0f;
    d.encoding = 42;
    CHECK(soma_train_create(&tr, net, &o, &d) == SOMA_STATUS_INVALID);
    soma_net_free(net);
}

/* Predictions are bytes: an output layer above 256 classes predicted wrong classes. */
static void regression_wide_output(void) {
    soma_net *net = small_net(300);
    soma_train_opts o;
    soma_train_opts_default(&o);
    soma_data_opts d;
    soma_data_opts_default(&d);
    soma_trainer *tr = NULL;
    CHECK(soma_train_create(&tr, net, &o, &d) == SOMA_STATUS_UNSUPPORTED);
    CHECK(strstr(soma_net_errmsg(net), "256") != NULL);
    soma_net_free(net);
}

/* Weights written directly after the trainer was created were half seen (the
 * transposed copy of the spike gather kept the old ones). */
static void regression_stale_weights(void) {
    soma_net *net = small_net(3);
    soma_train_opts o;
    soma_train_opts_default(&o);
    o.batch = 4;
    o.threads = 1;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.steps = 6;
    soma_trainer *tr;
    CHECK(soma_train_create(&tr, net, &o, &d) == 0);
    float x[24];
    uint8_t y[4] = {0, 1, 2, 0};
    for (int i = 0; i < 24; i++) x[i] = (float)(i % 5) * 0.6f;
    soma_tensor t;
    soma_net_tensor_find(net, "hidden->out.weight", &t);
    for (size_t i = 0; i < t.rows * t.cols; i++) t.data[i] *= 3.0f;
    CHECK(soma_train_sync(tr) == 0);
    double l1, l2;
    CHECK(soma_train_grad(tr, x, 1, y, 4, &l1, NULL) == 0);
    soma_trainer *fresh;
    CHECK(soma_train_create(&fresh, net, &o, &d) == 0);
    CHECK(soma_train_grad(fresh, x, 1, y, 4, &l2, NULL) == 0);
    CHECK(l1 == l2);
    soma_train_free(tr), soma_train_free(fresh);
    soma_net_free(net);
}

int main(void) {
    regression_surrogate_default_param();
    regression_encode_failure_propagates();
    regression_wide_output();
    regression_stale_weights();
    return t_report("test_regressions");
}
