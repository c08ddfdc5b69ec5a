/* test_train_deep.c — a network deeper than the trainer once took (16
 * trained populations) trains and then runs in the event-driven simulator
 * with the trainer's output spike counts on Fashion-MNIST test samples.
 *
 * in -> h1 -> ... -> h39 -> out: 39 hidden lif layers of 24 neurons. The
 * weights between hidden layers are scaled up from their default so that
 * spikes reach the output through all of them. As in test_sim_trained.c,
 * the simulator delivers each projection one step later and starts each
 * population at its depth, so the output's counts over T steps from its
 * start are the trainer's; rounding (BLAS or gathers against synaptic
 * events) may flip a membrane within rounding of its threshold on one side
 * only: at least 95 of 100 samples identical, at most 1 % of the spikes
 * different. (Gradients of deep nets: test_train_dag.c.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

enum { NS = 100, HID = 39, NH = 24 };

static void test_deep_in_sim(void) {
    soma_data_opts d;
    soma_data_opts_default(&d);
    snprintf(d.dataset, sizeof d.dataset, "fashion-mnist");
    d.encoding = SOMA_ENCODING_DIRECT;
    d.steps = 12;
    d.limit_train = 256;
    d.limit_test = NS;
    soma_dataset train, test;
    char err[512];
    int rc = soma_data_load(&d, &train, &test, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc) return;
    soma_net *net;
    soma_net_create(&net);
    size_t in, prev, out;
    soma_net_add_pop(net, "in", "input", 784, &in);
    prev = in;
    for (int l = 0; l < HID; l++) {
        char nm[16];
        size_t h;
        snprintf(nm, sizeof nm, "h%d", l + 1);
        soma_net_add_pop(net, nm, "lif", NH, &h);
        soma_net_set_param(net, h, "beta", 0.9f);
        soma_net_connect_dense(net, prev, h, 1);
        prev = h;
    }
    soma_net_add_pop(net, "out", "lif", 10, &out);
    soma_net_connect_dense(net, prev, out, 1);
    CHECK(soma_net_init_weights(net, 3) == 0);
    for (size_t i = 0; i < soma_net_tensor_count(net); i++) {
        soma_tensor t;
        soma_net_tensor(net, i, &t);
        float k = strstr(t.name, "in->") == t.name ? 4.0f : strstr(t.name, ".weight") ? 2.0f : 1.0f;
        for (size_t e = 0; e < t.rows * t.cols; e++) t.data[e] *= k;
    }
    soma_train_opts o;
    soma_train_opts_default(&o);
    o.batch = 64;
    o.threads = 2;
    o.seed = 11;
    o.lr = 1e-3f;
    soma_trainer *tr = NULL;
    rc = soma_train_create(&tr, net, &o, &d);
    CHECK_MSG(rc == 0, "%s", soma_net_errmsg(net));
    if (rc) goto out;
    soma_epoch_result res;
    CHECK(soma_train_epoch(tr, &train, 0, NULL, NULL, &res) == 0);

    size_t T = (size_t)d.steps, idx[NS];
    for (size_t k = 0; k < NS; k++) idx[k] = k;
    float *x = malloc(soma_encode_size(&d, &test, NS) * sizeof(float));
    uint8_t *spk = malloc(T * NS * 10), *hs = malloc(T * NS * NH);
    uint32_t ref[NS][10], got[NS][10];
    int tc;
    CHECK(soma_encode(&d, &test, idx, NS, o.seed, 0xE7A1u, x, &tc) == 0);
    CHECK(soma_train_record(tr, x, tc, NS, out, spk) == 0);
    CHECK(soma_train_record(tr, x, tc, NS, out - 1, hs) == 0);
    long hsum = 0;
    for (size_t i = 0; i < T * NS * NH; i++) hsum += hs[i];
    CHECK_MSG(hsum > 0, "the last hidden layer never spikes: the depth is not exercised");
    memset(ref, 0, sizeof ref);
    long total = 0;
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < NS; b++)
            for (size_t c = 0; c < 10; c++) ref[b][c] += spk[(t * NS + b) * 10 + c], total += spk[(t * NS + b) * 10 + c];
    rc = soma_sim_run_samples(net, &d, &test, idx, NS, o.seed, 2, &got[0][0], err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    size_t same = 0;
    long diff = 0;
    for (size_t b = 0; b < NS; b++) {
        int eq = 1;
        for (size_t c = 0; c < 10; c++) {
            eq &= ref[b][c] == got[b][c];
            diff += labs((long)ref[b][c] - (long)got[b][c]);
        }
        same += (size_t)eq;
    }
    printf("%d layers: loss %.4f; last hidden layer %ld spikes; %zu of %d samples with identical output counts; "
           "%ld of %ld spikes differ\n", HID + 1, res.loss, hsum, same, NS, diff, total);
    CHECK_MSG(total > 2 * NS, "only %ld output spikes: nothing to compare", total);
    CHECK_MSG(same >= 95 && (double)diff <= 0.01 * (double)total, "%zu identical, %ld of %ld spikes differ", same, diff,
              total);
    free(x);
    free(spk);
    free(hs);
out:
    soma_train_free(tr);
    soma_net_free(net);
    soma_data_free(&train);
    soma_data_free(&test);
}

int main(void) {
    test_deep_in_sim();
    return t_report("test_train_deep");
}
