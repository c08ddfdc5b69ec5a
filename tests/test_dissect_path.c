/* test_dissect_path.c — soma_dissect_path_run on a wired graded net whose
 * influential path and most-active path are known and differ.
 *
 * in(2) -> h1 ann relu(3) -> h2 ann relu(4) -> out ann linear(2), loss
 * ce_count, direct input (class 0: in = (1, 0); class 1: in = (0, 1)):
 *   h1[0] = relu(in0 + in1 + 2) = 3       the most active of h1
 *   h1[1] = relu(2 in0)                   class 0's carrier
 *   h1[2] = relu(2 in1)                   class 1's carrier
 *   h2[0] = relu(3 h1[1])                 class 0: 6, but only through h1[1]
 *   h2[1] = relu(2 h1[2])                 class 1: 4
 *   h2[2] = relu(2.5 h1[0]) = 7.5         the most active of h2, feeds nothing
 *   h2[3] = relu(0.5 h1[0]) = 1.5         a second, small way into out0
 *   out0 = h2[0] + h2[3], out1 = h2[1] + 2
 * For class 0, layer h1 adds h1[1] (out0 7.5 -> 1.5 without it; h1[0]
 * moves it to 6 only). In h2, h2[0] has the largest IG on its own, but
 * jointly with h1[1] it adds nothing (it is already 0 when h1[1] is):
 * the joint IG picks h2[3], the one way into out0 that does not go
 * through the path. So the influential path is h1[1] -> h2[3] (an
 * individual ranking would give h2[0]), the most-active path h1[0] ->
 * h2[2]. Zeroing the influential path sends every class-0 sample to class
 * 1 (out0 0 < 2); zeroing the most active leaves them (out0 6 > 2). The PNG
 * and result.json are written. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

#define NS 20

static void set_tensor(soma_net *net, const char *name, const float *v, size_t n) {
    soma_tensor t;
    int st = soma_net_tensor_find(net, name, &t);
    CHECK_MSG(st == 0 && t.rows * t.cols == n, "tensor %s", name);
    if (st == 0 && t.rows * t.cols == n) memcpy(t.data, v, n * sizeof *v);
}

int main(void) {
    soma_net *net = NULL;
    size_t in, h1, h2, out;
    int st = soma_net_create(&net);
    st |= soma_net_add_pop(net, "in", "input", 2, &in);
    st |= soma_net_add_pop(net, "h1", "ann", 3, &h1);
    st |= soma_net_add_pop(net, "h2", "ann", 4, &h2);
    st |= soma_net_add_pop(net, "out", "ann", 2, &out);
    st |= soma_net_set_param(net, out, "activation", 2.0f); /* linear */
    st |= soma_net_connect_dense(net, in, h1, 1);
    st |= soma_net_connect_dense(net, h1, h2, 1);
    st |= soma_net_connect_dense(net, h2, out, 1);
    st |= soma_net_init_weights(net, 1);
    CHECK_MSG(st == 0, "net: %s", soma_net_errmsg(net));
    const float w1[] = {1, 1, 2, 0, 0, 2}, b1[] = {2, 0, 0};
    const float w2[] = {0, 3, 0, 0, 0, 2, 2.5f, 0, 0, 0.5f, 0, 0}, b2[] = {0, 0, 0, 0};
    const float w3[] = {1, 0, 0, 1, 0, 1, 0, 0}, b3[] = {0, 2};
    set_tensor(net, "in->h1.weight", w1, 6), set_tensor(net, "in->h1.bias", b1, 3);
    set_tensor(net, "h1->h2.weight", w2, 12), set_tensor(net, "h1->h2.bias", b2, 4);
    set_tensor(net, "h2->out.weight", w3, 8), set_tensor(net, "h2->out.bias", b3, 2);

    uint8_t x[NS * 2], y[NS];
    for (size_t i = 0; i < NS; i++) y[i] = (uint8_t)(i % 2), x[2 * i] = y[i] ? 0 : 255, x[2 * i + 1] = y[i] ? 255 : 0;
    soma_dataset ds = {0};
    ds.n = NS, ds.dim = 2, ds.rows = 1, ds.cols = 2, ds.classes = 2, ds.x = x, ds.y = y;
    soma_train_opts to;
    soma_train_opts_default(&to);
    to.batch = 32, to.threads = 2, to.loss = SOMA_LOSS_CE_COUNT;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.steps = 2;
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, net, &to, &d) == 0, "trainer: %s", soma_net_errmsg(net));
    soma_dissect_ctx cx = {tr, net, &d, &ds};
    soma_dissect_opts o;
    soma_dissect_opts_default(&o);
    char err[512];
    soma_dissect_stats *s = NULL;
    CHECK_MSG(soma_dissect_stats_run(&cx, &o, &s, err, sizeof err) == 0, "stats: %s", err);
    soma_dissect_path p;
    st = soma_dissect_path_run(&cx, &o, s, 0, 0, &p, err, sizeof err);
    CHECK_MSG(st == 0, "path: %s", err);
    CHECK(p.layers == 2 && p.steps == 20 && p.samples == NS / 2 && p.cls == 0);
    CHECK_MSG(p.ig[0].pop == h1 && p.ig[0].index == 1 && p.ig[1].pop == h2 && p.ig[1].index == 3,
              "influential path h1[%zu] -> h2[%zu]; expected h1[1] -> h2[3]", p.ig[0].index, p.ig[1].index);
    CHECK_MSG(p.active[0].index == 0 && p.active[1].index == 2, "most active h1[%zu] -> h2[%zu]; expected h1[0] -> h2[2]",
              p.active[0].index, p.active[1].index);
    CHECK_NEAR(p.active_rate[0], 3.0, 1e-5);
    CHECK_NEAR(p.active_rate[1], 7.5, 1e-5);
    /* joint IG grows along the path: P(class 0) from the path at 0 to the clean input */
    CHECK_MSG(p.ig_joint[0] > 0.1 && p.ig_joint[1] > p.ig_joint[0], "joint IG %g, %g", p.ig_joint[0], p.ig_joint[1]);
    CHECK_NEAR(p.class_before, 1.0, 1e-12);
    CHECK_NEAR(p.class_after_ig, 0.0, 1e-12);
    CHECK_NEAR(p.class_after_active, 1.0, 1e-12);
    CHECK_NEAR(p.acc_after_ig, 0.5, 1e-12);
    const char *dir = t_tmpdir("dissect_path");
    CHECK_MSG(soma_dissect_write_path(s, &p, "wired", dir, err, sizeof err) == 0, "write: %s", err);
    char path[1024];
    size_t n = 0;
    snprintf(path, sizeof path, "%s/path.png", dir);
    void *png = t_read_file(path, &n);
    CHECK(png && n > 1000);
    free(png);
    snprintf(path, sizeof path, "%s/result.json", dir);
    char *js = t_read_file(path, &n);
    CHECK(js && strstr(js, "\"influential_path\": [{\"pop\": \"h1\", \"index\": 1,") && strstr(js, "\"most_active_path\": [{\"pop\": \"h1\", \"index\": 0,"));
    free(js);
    /* a bad class is named */
    CHECK(soma_dissect_path_run(&cx, &o, s, 5, 0, &p, err, sizeof err) == SOMA_STATUS_INVALID && strstr(err, "class 5"));
    soma_dissect_stats_free(s);
    soma_train_free(tr);
    soma_net_free(net);
    return t_report("test_dissect_path");
}
