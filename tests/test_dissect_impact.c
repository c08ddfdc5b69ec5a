/* test_dissect_impact.c — soma_dissect_impact_scores and select --by
 * impact on a wired graded net whose losses are known by hand.
 *
 * in(2) -> h ann relu(3) -> out ann linear(2), direct input, T = 1,
 * ce_rate (softmax cross-entropy of the output values); class 0: in = (1,
 * 0), class 1: in = (0, 1).
 *   h[0] = relu(2 in0), h[1] = relu(in0), h[2] = relu(in1)
 *   out0 = h[0] + 0.5 h[1], out1 = h[2]
 * Class 0: h = (2, 1, 0), logits (2.5, 0), L = log(1 + e^-2.5).
 *   zero h[0]: logits (0.5, 0), L = log(1 + e^-0.5)  (matters most)
 *   zero h[1]: logits (2, 0),   L = log(1 + e^-2)
 *   zero h[2]: no change (0)
 * Candidates by attribution (h[0] > h[1] > h[2] = 0): with 34 % of 3
 * neurons (2) h[2] is not measured and scores -inf. */
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

static double sp(double m) { return log1p(exp(m)); }

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
    const float w1[] = {2, 0, 1, 0, 0, 1}, b1[] = {0, 0, 0}, w2[] = {1, 0.5f, 0, 0, 0, 1}, b2[] = {0, 0};
    set_tensor(net, "in->h.weight", w1, 6), set_tensor(net, "in->h.bias", b1, 3);
    set_tensor(net, "h->out.weight", w2, 6), set_tensor(net, "h->out.bias", b2, 2);
    uint8_t x[NS * 2], y[NS];
    for (size_t i = 0; i < NS; i++) y[i] = (uint8_t)(i % 2), x[2 * i] = y[i] ? 0 : 255, x[2 * i + 1] = y[i] ? 255 : 0;
    soma_dataset ds = {0};
    ds.n = NS, ds.dim = 2, ds.rows = 1, ds.cols = 2, ds.classes = 2, ds.x = x, ds.y = y;
    soma_train_opts to;
    soma_train_opts_default(&to);
    to.batch = 4, to.threads = 2, to.loss = SOMA_LOSS_CE_RATE, to.rate_penalty = 0;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.steps = 1;
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, net, &to, &d) == 0, "trainer: %s", soma_net_errmsg(net));
    soma_dissect_ctx cx = {tr, net, &d, &ds};
    soma_dissect_opts o;
    soma_dissect_opts_default(&o);
    o.batch = 4; /* 6 class samples: a full and a short batch */
    char err[512];
    soma_dissect_stats *s = NULL;
    CHECK_MSG(soma_dissect_stats_run(&cx, &o, &s, err, sizeof err) == 0, "stats: %s", err);
    double sc[3], L0 = sp(-2.5);
    soma_dissect_impact_opts io;
    soma_dissect_impact_opts_default(&io);
    io.candidates_pct = 100;
    soma_dissect_impact_result r;
    CHECK_MSG(soma_dissect_impact_scores(&cx, &o, s, 0, &io, sc, &r, err, sizeof err) == 0, "impact: %s", err);
    CHECK(r.samples == NS / 2 && r.candidates == 3);
    CHECK_NEAR(r.clean_loss, L0, 1e-5);
    CHECK_NEAR(sc[0], sp(-0.5) - L0, 1e-5);
    CHECK_NEAR(sc[1], sp(-2.0) - L0, 1e-5);
    CHECK_NEAR(sc[2], 0.0, 1e-7);
    /* 34 %: two candidates; h[2] is not measured */
    io.candidates_pct = 34;
    CHECK_MSG(soma_dissect_impact_scores(&cx, &o, s, 0, &io, sc, &r, err, sizeof err) == 0, "impact: %s", err);
    CHECK(r.candidates == 2 && isinf(sc[2]) && sc[2] < 0);
    CHECK_NEAR(sc[0], sp(-0.5) - L0, 1e-5);
    soma_dissect_neuron sel[3];
    double val[3];
    size_t n = 0;
    CHECK_MSG(soma_dissect_impact_select(&cx, &o, s, 0, &io, 1, 0, 0, sel, val, 3, &n, err, sizeof err) == 0, "%s", err);
    CHECK(n == 1 && sel[0].pop == h && sel[0].index == 0);
    CHECK_NEAR(val[0], sp(-0.5) - L0, 1e-5);
    err[0] = 0;
    CHECK(soma_dissect_impact_select(&cx, &o, s, 0, &io, 3, 0, 0, sel, val, 3, &n, err, sizeof err) == SOMA_STATUS_INVALID &&
          n == 0 && strstr(err, "candidates"));
    /* through soma_dissect_select (default 5 %: one candidate, the best by attribution) */
    CHECK_MSG(soma_dissect_select(&cx, &o, s, SOMA_DISSECT_BY_IMPACT, 0, 1, 0, 0, sel, val, 3, &n, err, sizeof err) == 0, "%s", err);
    CHECK(n == 1 && sel[0].index == 0);
    int by = -1;
    CHECK(soma_dissect_by_parse("impact", &by, err, sizeof err) == 0 && by == SOMA_DISSECT_BY_IMPACT);
    CHECK(!strcmp(soma_dissect_by_name(SOMA_DISSECT_BY_IMPACT), "impact"));
    /* the weights are untouched (gradients only) */
    soma_tensor t;
    CHECK(soma_net_tensor_find(net, "h->out.weight", &t) == 0 && t.data[1] == 0.5f);
    soma_dissect_stats_free(s);
    soma_train_free(tr);
    soma_net_free(net);
    return t_report("dissect_impact");
}
