/* test_dissect_wina.c — soma_dissect_wina_scores and select --by wina on a
 * wired graded net whose scores are known by hand.
 *
 * in(2) -> h ann relu(3) -> out ann linear(2), direct input, T = 3; class
 * 0: in = (1, 0), class 1: in = (0, 1).
 *   h[0] = relu(2 in0)      output column (3, 4): norm 5
 *   h[1] = relu(in0 + 1)    output column (1, 0): norm 1
 *   h[2] = relu(3 in0)      output column (0, 0): norm 0 (the most active, scores 0)
 * Class 0: mean |x| = (2, 2, 3), scores (10, 2, 0); class 1: |x| = (0, 1,
 * 0), scores (0, 1, 0). select --by wina --top 1 picks h[0] for class 0
 * and h[1] for class 1. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

#define NS 12

static void set_tensor(soma_net *net, const char *name, const float *v, size_t n) {
    soma_tensor t;
    int st = soma_net_tensor_find(net, name, &t);
    CHECK_MSG(st == 0 && t.rows * t.cols == n, "tensor %s", name);
    if (st == 0 && t.rows * t.cols == n) memcpy(t.data, v, n * sizeof *v);
}

int main(void) {
    soma_net *net = NULL;
    size_t in, h, out;
    int st = soma_net_create(&net);
    st |= soma_net_add_pop(net, "in", "input", 2, &in);
    st |= soma_net_add_pop(net, "h", "ann", 3, &h);
    st |= soma_net_add_pop(net, "out", "ann", 2, &out);
    st |= soma_net_set_param(net, out, "activation", 2.0f);
    st |= soma_net_connect_dense(net, in, h, 1);
    st |= soma_net_connect_dense(net, h, out, 1);
    st |= soma_net_init_weights(net, 1);
    CHECK_MSG(st == 0, "net: %s", soma_net_errmsg(net));
    const float w1[] = {2, 0, 1, 0, 3, 0}, b1[] = {0, 1, 0}, w2[] = {3, 1, 0, 4, 0, 0}, b2[] = {0, 0};
    set_tensor(net, "in->h.weight", w1, 6), set_tensor(net, "in->h.bias", b1, 3);
    set_tensor(net, "h->out.weight", w2, 6), set_tensor(net, "h->out.bias", b2, 2);
    uint8_t x[NS * 2], y[NS];
    for (size_t i = 0; i < NS; i++) y[i] = (uint8_t)(i % 2), x[2 * i] = y[i] ? 0 : 255, x[2 * i + 1] = y[i] ? 255 : 0;
    soma_dataset ds = {0};
    ds.n = NS, ds.dim = 2, ds.rows = 1, ds.cols = 2, ds.classes = 2, ds.x = x, ds.y = y;
    soma_train_opts to;
    soma_train_opts_default(&to);
    to.batch = 8, to.threads = 2;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.steps = 3;
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, net, &to, &d) == 0, "trainer: %s", soma_net_errmsg(net));
    soma_dissect_ctx cx = {tr, net, &d, &ds};
    soma_dissect_opts o;
    soma_dissect_opts_default(&o);
    o.batch = 5; /* several batches of class samples */
    char err[512];
    soma_dissect_stats *s = NULL;
    CHECK_MSG(soma_dissect_stats_run(&cx, &o, &s, err, sizeof err) == 0, "stats: %s", err);
    double sc[3];
    CHECK_MSG(soma_dissect_wina_scores(&cx, &o, s, 0, sc, err, sizeof err) == 0, "wina: %s", err);
    CHECK_NEAR(sc[0], 10.0, 1e-6);
    CHECK_NEAR(sc[1], 2.0, 1e-6);
    CHECK_NEAR(sc[2], 0.0, 1e-9);
    CHECK_MSG(soma_dissect_wina_scores(&cx, &o, s, 1, sc, err, sizeof err) == 0, "wina: %s", err);
    CHECK_NEAR(sc[0], 0.0, 1e-9);
    CHECK_NEAR(sc[1], 1.0, 1e-6);
    CHECK_NEAR(sc[2], 0.0, 1e-9);
    int by = -1;
    CHECK(soma_dissect_by_parse("wina", &by, err, sizeof err) == 0 && by == SOMA_DISSECT_BY_WINA);
    CHECK(!strcmp(soma_dissect_by_name(SOMA_DISSECT_BY_WINA), "wina"));
    for (size_t c = 0; c < 2; c++) {
        soma_dissect_neuron sel[3];
        double val[3];
        size_t n = 0;
        CHECK_MSG(soma_dissect_select(&cx, &o, s, SOMA_DISSECT_BY_WINA, c, 1, 0, 0, sel, val, 3, &n, err, sizeof err) == 0, "select: %s", err);
        CHECK(n == 1 && sel[0].pop == h && sel[0].index == c);
        CHECK_NEAR(val[0], c == 0 ? 10.0 : 1.0, 1e-6);
    }
    CHECK(soma_dissect_wina_scores(&cx, &o, s, 2, sc, err, sizeof err) == SOMA_STATUS_INVALID && strstr(err, "class 2"));
    soma_dissect_stats_free(s);
    soma_train_free(tr);
    soma_net_free(net);
    return t_report("test_dissect_wina");
}
