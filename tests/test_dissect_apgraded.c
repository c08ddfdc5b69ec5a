/* test_dissect_apgraded.c — soma_dissect_ap on a graded population (ann,
 * T = 1) is exact: it equals soma_dissect_average_precision on the
 * neuron's own per-sample values, read here by a READ hook of the test's
 * own (not dissect's). The rounded-count histogram would have two bins
 * (value < 0.5 or not) and give another AP for values spread over (0, 1).
 *
 * in(2) -> h ann relu(3) -> out ann linear(2), direct input, T = 1;
 * in = (u, v) with u, v pseudo-random bytes, class 1 when u + noise > 128.
 *   h[0] = relu(0.9 in0)            graded, informative, all values in [0, 0.9]
 *   h[1] = relu(0.5 in0 + 0.3 in1)  graded, partly informative
 *   h[2] = relu(0.7 in1)            graded, noise */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

#define NS 300

static void set_tensor(soma_net *net, const char *name, const float *v, size_t n) {
    soma_tensor t;
    int st = soma_net_tensor_find(net, name, &t);
    CHECK_MSG(st == 0 && t.rows * t.cols == n, "tensor %s", name);
    if (st == 0 && t.rows * t.cols == n) memcpy(t.data, v, n * sizeof *v);
}

typedef struct rec {
    float *v; /* [NS][3] */
    size_t b0, rows;
} rec;

static int rec_cb(void *user, const soma_hook_event *ev) {
    rec *r = user;
    for (size_t q = 0; q < ev->batch; q++)
        if (ev->row0 + q < r->rows) memcpy(r->v + (r->b0 + ev->row0 + q) * 3, ev->data + q * ev->n, 3 * sizeof(float));
    return 0;
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
    const float w1[] = {0.9f, 0, 0.5f, 0.3f, 0, 0.7f}, b1[] = {0, 0, 0}, w2[] = {1, 0, 0, 0, 1, 0}, b2[] = {0, 0};
    set_tensor(net, "in->h.weight", w1, 6), set_tensor(net, "in->h.bias", b1, 3);
    set_tensor(net, "h->out.weight", w2, 6), set_tensor(net, "h->out.bias", b2, 2);
    uint8_t x[NS * 2], y[NS];
    uint32_t r = 12345;
    for (size_t i = 0; i < NS; i++) {
        r = r * 1664525u + 1013904223u;
        x[2 * i] = (uint8_t)(r >> 24);
        r = r * 1664525u + 1013904223u;
        x[2 * i + 1] = (uint8_t)(r >> 24);
        r = r * 1664525u + 1013904223u;
        int noise = (int)(r >> 26) - 32; /* -32 .. 31 */
        y[i] = (uint8_t)(x[2 * i] + noise > 128);
    }
    soma_dataset ds = {0};
    ds.n = NS, ds.dim = 2, ds.rows = 1, ds.cols = 2, ds.classes = 2, ds.x = x, ds.y = y;
    soma_train_opts to;
    soma_train_opts_default(&to);
    to.batch = 64, to.threads = 2;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.steps = 1;
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, net, &to, &d) == 0, "trainer: %s", soma_net_errmsg(net));

    /* the neurons' exact values, by a hook of the test's own */
    rec rc = {calloc(NS * 3, sizeof(float)), 0, 0};
    soma_hooks *hk = NULL;
    CHECK(soma_hooks_create(&hk) == 0 && soma_hooks_add(hk, "h.spikes", SOMA_HOOK_READ, rec_cb, &rc) == 0);
    CHECK(soma_train_set_hooks(tr, hk) == 0);
    float *xb = malloc(soma_encode_size(&d, &ds, 50) * sizeof *xb);
    size_t idx[50];
    uint8_t pred[50];
    for (size_t b0 = 0; b0 < NS; b0 += 50) {
        for (size_t b = 0; b < 50; b++) idx[b] = b0 + b;
        int tc;
        CHECK(soma_encode(&d, &ds, idx, 50, to.seed, SOMA_EVAL_STREAM, xb, &tc) == 0);
        rc.b0 = b0, rc.rows = 50;
        CHECK(soma_train_predict(tr, xb, tc, 50, pred) == 0);
    }
    soma_train_set_hooks(tr, NULL);
    soma_hooks_free(hk);

    soma_dissect_ctx cx = {tr, net, &d, &ds};
    soma_dissect_opts o;
    soma_dissect_opts_default(&o);
    o.batch = 37; /* several batches, a short last one */
    char err[512];
    soma_dissect_stats *s = NULL;
    CHECK_MSG(soma_dissect_stats_run(&cx, &o, &s, err, sizeof err) == 0, "stats: %s", err);
    soma_dissect_pop p;
    CHECK(soma_dissect_stats_pop(s, 0, &p) == 0 && p.pop == h && p.graded);
    CHECK(soma_dissect_ap_exact(s, 0) == 1);
    double score[NS];
    uint8_t pos[NS];
    size_t distinct = 0;
    for (size_t c = 0; c < 2; c++) {
        double ap[3];
        CHECK(soma_dissect_ap(s, 0, c, ap) == 0);
        for (size_t i = 0; i < 3; i++) {
            for (size_t b = 0; b < NS; b++) score[b] = rc.v[b * 3 + i], pos[b] = y[b] == c;
            double ref = soma_dissect_average_precision(score, pos, NS);
            CHECK_NEAR(ap[i], ref, 1e-12); /* the same values, the same ranking: exact */
            if (c == 1 && i == 0) CHECK_MSG(ref > 0.8, "h[0] separates class 1: AP %g", ref);
        }
    }
    for (size_t b = 1; b < NS; b++) distinct += rc.v[b * 3] != rc.v[(b - 1) * 3];
    CHECK_MSG(distinct > NS / 2, "h[0]'s values are graded (%zu changes)", distinct);
    /* selection ranks by the exact AP: class 1's best is h[0] */
    soma_dissect_neuron sel[3];
    double val[3];
    size_t n = 0;
    CHECK_MSG(soma_dissect_select_ap(s, 1, 1, 0, 0, sel, val, 3, &n, err, sizeof err) == 0, "select: %s", err);
    CHECK(n == 1 && sel[0].pop == h && sel[0].index == 0);

    soma_dissect_stats_free(s);
    free(xb), free(rc.v);
    soma_train_free(tr);
    soma_net_free(net);
    return t_report("dissect_apgraded");
}
