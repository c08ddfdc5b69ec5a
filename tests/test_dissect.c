/* test_dissect.c — soma dissect's library half on nets whose answers are
 * known.
 *
 * Wired net: in (2 inputs) -> hid (3 lif) -> out (2 lif). Class 0 samples
 * drive input 0, class 1 samples input 1; hid[0] is wired to fire only for
 * class 0, hid[1] only for class 1, hid[2] never (negative weights and
 * bias); out[0] listens to hid[0], out[1] to hid[1] and fires slowly on its
 * bias alone. So: hid[0] has AP 1 for class 0 and is the one selected;
 * hid[2] is reported dead; zeroing hid[0] sends every class-0 sample to
 * out[1] (class-0 accuracy 1 -> 0) and leaves class 1 at 1; scale:1
 * changes no prediction; the random control is reproducible.
 *
 * Random net: the streamed statistics against soma_train_count_samples
 * (rates, fire fractions, AP from the histograms against AP from the
 * sorted counts) and the unablated accuracy against soma_train_evaluate.
 * AP itself against a hand-computed example with ties.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

#define NS 40 /* samples of the wired set */
#define T 10

static void set_tensor(soma_net *net, const char *name, const float *v, size_t n) {
    soma_tensor t;
    int st = soma_net_tensor_find(net, name, &t);
    CHECK_MSG(st == 0 && t.rows * t.cols == n, "tensor %s", name);
    if (st == 0 && t.rows * t.cols == n) memcpy(t.data, v, n * sizeof *v);
}

static soma_net *wired_net(void) {
    soma_net *net = NULL;
    size_t in, hid, out;
    int st = soma_net_create(&net);
    st |= soma_net_add_pop(net, "in", "input", 2, &in);
    st |= soma_net_add_pop(net, "hid", "lif", 3, &hid);
    st |= soma_net_add_pop(net, "out", "lif", 2, &out);
    st |= soma_net_set_param(net, hid, "beta", 0.5f);
    st |= soma_net_set_param(net, out, "beta", 0.5f);
    st |= soma_net_connect_dense(net, in, hid, 1);
    st |= soma_net_connect_dense(net, hid, out, 1);
    st |= soma_net_init_weights(net, 1);
    CHECK_MSG(st == 0, "wired net: %s", soma_net_errmsg(net));
    const float w1[] = {2, 0, /* hid0 <- in0 */ 0, 2, /* hid1 <- in1 */ -1, -1};
    const float b1[] = {0, 0, -1};
    const float w2[] = {2, 0, 0, /* out0 <- hid0 */ 0, 2, 0};
    const float b2[] = {0, 0.6f}; /* out1 fires every few steps on its own */
    set_tensor(net, "in->hid.weight", w1, 6);
    set_tensor(net, "in->hid.bias", b1, 3);
    set_tensor(net, "hid->out.weight", w2, 6);
    set_tensor(net, "hid->out.bias", b2, 2);
    return net;
}

static void wired_data(soma_dataset *ds, uint8_t *x, uint8_t *y) {
    for (size_t i = 0; i < NS; i++) {
        y[i] = (uint8_t)(i % 2);
        x[2 * i] = y[i] == 0 ? 255 : 0;
        x[2 * i + 1] = y[i] == 1 ? 255 : 0;
    }
    memset(ds, 0, sizeof *ds);
    ds->n = NS, ds->dim = 2, ds->rows = 1, ds->cols = 2, ds->classes = 2, ds->x = x, ds->y = y;
}

static soma_trainer *trainer_for(soma_net *net, soma_data_opts *d) {
    soma_train_opts to;
    soma_train_opts_default(&to);
    to.batch = 8;
    to.threads = 2;
    soma_data_opts_default(d);
    d->steps = T;
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, net, &to, d) == 0, "trainer: %s", soma_net_errmsg(net));
    return tr;
}

static void test_ap_by_hand(void) {
    /* ranks: 0.9 (+) | 0.8 (-, +) tied | 0.3 (-) | 0.1 (+): AP = 1/3 * 1 + 1/3 * 2/3 + 1/3 * 3/5 = 34/45 */
    const double s[] = {0.3, 0.8, 0.9, 0.1, 0.8};
    const uint8_t p[] = {0, 0, 1, 1, 1};
    CHECK_NEAR(soma_dissect_average_precision(s, p, 5), 34.0 / 45.0, 1e-12);
    /* a perfect detector; all tied (AP = prevalence); no positive */
    const double s2[] = {1, 0, 1, 0};
    const uint8_t p2[] = {1, 0, 1, 0};
    CHECK_NEAR(soma_dissect_average_precision(s2, p2, 4), 1.0, 1e-12);
    const double s3[] = {0, 0, 0, 0};
    CHECK_NEAR(soma_dissect_average_precision(s3, p2, 4), 0.5, 1e-12);
    const uint8_t p3[] = {0, 0, 0, 0};
    CHECK(soma_dissect_average_precision(s2, p3, 4) == 0.0);
}

static void test_wired(void) {
    soma_net *net = wired_net();
    soma_data_opts d;
    soma_trainer *tr = trainer_for(net, &d);
    uint8_t x[2 * NS], y[NS];
    soma_dataset ds;
    wired_data(&ds, x, y);
    soma_dissect_ctx cx = {tr, net, &d, &ds};
    soma_dissect_opts o;
    soma_dissect_opts_default(&o);
    o.batch = 16; /* several batches, the last one partial */
    o.topk = 3;
    char err[512] = "";
    soma_dissect_stats *s = NULL;
    int st = soma_dissect_stats_run(&cx, &o, &s, err, sizeof err);
    CHECK_MSG(st == 0, "stats: %s", err);
    if (st) goto out;
    soma_dissect_info in;
    soma_dissect_stats_info(s, &in);
    CHECK(in.samples == NS && in.classes == 2 && in.steps == T && in.pops == 2 && in.topk == 3);
    CHECK(in.class_samples[0] == NS / 2 && in.class_samples[1] == NS / 2);
    CHECK_NEAR(in.accuracy, 1.0, 0);
    soma_dissect_pop h, ou;
    CHECK(soma_dissect_stats_pop(s, 0, &h) == 0 && soma_dissect_stats_pop(s, 1, &ou) == 0);
    CHECK(strcmp(h.name, "hid") == 0 && h.hidden == 1 && h.graded == 0 && h.size == 3);
    CHECK(strcmp(ou.name, "out") == 0 && ou.hidden == 0);
    /* hid0 fires for class 0 only, hid1 for class 1 only, hid2 never */
    CHECK(h.class_rate[0 * 3 + 0] > 0.5 && h.class_rate[1 * 3 + 0] == 0.0);
    CHECK(h.class_rate[1 * 3 + 1] > 0.5 && h.class_rate[0 * 3 + 1] == 0.0);
    CHECK_NEAR(h.fire_frac[0], 0.5, 1e-12);
    CHECK(h.dead[2] == 1 && h.dead[0] == 0 && h.dead[1] == 0 && h.dead_count == 1);
    CHECK(h.fire_frac[2] == 0.0 && h.rate[2] == 0.0);
    /* two classes: sel = (r - r_other) / (|r - r_other| / 2 + eps) = +-2 */
    CHECK_NEAR(h.selectivity[0 * 3 + 0], 2.0, 1e-4);
    CHECK_NEAR(h.selectivity[1 * 3 + 0], -2.0, 1e-4);
    CHECK(h.selectivity[0 * 3 + 2] == 0.0);
    /* top samples of hid0: class-0 samples, equal counts, so the lowest indices */
    CHECK(h.top_sample[0] == 0 && h.top_sample[1] == 2 && h.top_sample[2] == 4);
    CHECK(h.top_value[0] > 0 && h.top_value[0] == h.top_value[2]);
    CHECK(h.top_sample[2 * 3] == UINT32_MAX); /* the dead neuron has none */
    double ap[3];
    CHECK(soma_dissect_ap(s, 0, 0, ap) == 0);
    CHECK_NEAR(ap[0], 1.0, 1e-12);
    CHECK_NEAR(ap[1], 0.5 * 0.5 / 1.0 * 0 + 0.5, 1e-12); /* never fires on class 0: all its class-0 scores tie at 0 */
    CHECK_NEAR(ap[2], 0.5, 1e-12);                       /* dead: AP = prevalence */

    /* select: hid0 for class 0, hid1 for class 1 */
    soma_dissect_neuron sel[3];
    double sap[3];
    size_t n = 0;
    CHECK(soma_dissect_hidden_count(s) == 3);
    st = soma_dissect_select_ap(s, 0, 1, 0, 0, sel, sap, 3, &n, err, sizeof err);
    CHECK_MSG(st == 0 && n == 1 && sel[0].pop == 1 && sel[0].index == 0 && sap[0] == 1.0, "select: %s", err);
    st = soma_dissect_select_ap(s, 1, 1, 0, 0, sel, sap, 3, &n, err, sizeof err); /* ranked, not in index order */
    CHECK(st == 0 && n == 1 && sel[0].index == 1 && sap[0] == 1.0);
    st = soma_dissect_select_ap(s, 1, 0, 50.0, 1, sel, sap, 3, &n, err, sizeof err); /* ceil(1.5) = 2 per population */
    CHECK(st == 0 && n == 2 && sel[0].index == 1 && sap[0] == 1.0);
    CHECK(soma_dissect_select_ap(s, 2, 1, 0, 0, sel, sap, 3, &n, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK(strstr(err, "class 2") != NULL);

    /* ablation: zeroing hid0 breaks class 0 only */
    double acc, ca[2], acc0, ca0[2];
    uint8_t pred0[NS], pred1[NS];
    st = soma_dissect_evaluate(&cx, &o, s, NULL, 0, SOMA_DISSECT_MODE_ZERO, 0, &acc0, ca0, pred0, err, sizeof err);
    CHECK_MSG(st == 0 && acc0 == 1.0 && ca0[0] == 1.0 && ca0[1] == 1.0, "no ablation: %s", err);
    soma_dissect_neuron h0 = {1, 0};
    st = soma_dissect_evaluate(&cx, &o, s, &h0, 1, SOMA_DISSECT_MODE_ZERO, 0, &acc, ca, NULL, err, sizeof err);
    CHECK_MSG(st == 0, "zero: %s", err);
    CHECK(ca[0] == 0.0 && ca[1] == 1.0 && acc == 0.5);
    /* scale:1 changes no prediction, bit for bit */
    soma_dissect_neuron all[3] = {{1, 0}, {1, 1}, {1, 2}};
    st = soma_dissect_evaluate(&cx, &o, s, all, 3, SOMA_DISSECT_MODE_SCALE, 1.0f, &acc, ca, pred1, err, sizeof err);
    CHECK(st == 0 && memcmp(pred0, pred1, NS) == 0 && acc == acc0);
    /* scale:0 is zero */
    st = soma_dissect_evaluate(&cx, &o, s, &h0, 1, SOMA_DISSECT_MODE_SCALE, 0.0f, &acc, ca, NULL, err, sizeof err);
    CHECK(st == 0 && ca[0] == 0.0 && ca[1] == 1.0);
    /* mean: hid0 at its mean rate (about 1/2 per step) on every sample; out0
     * then gets ~1 per step from it on class-1 samples too */
    st = soma_dissect_evaluate(&cx, &o, s, &h0, 1, SOMA_DISSECT_MODE_MEAN, 0, &acc, ca, NULL, err, sizeof err);
    CHECK_MSG(st == 0 && ca[0] == 1.0, "mean: %s", err);
    CHECK(soma_dissect_evaluate(&cx, &o, NULL, &h0, 1, SOMA_DISSECT_MODE_MEAN, 0, &acc, ca, NULL, err, sizeof err) ==
          SOMA_STATUS_INVALID);
    /* outputs are not ablated */
    soma_dissect_neuron o0 = {2, 0};
    CHECK(soma_dissect_evaluate(&cx, &o, s, &o0, 1, SOMA_DISSECT_MODE_ZERO, 0, &acc, ca, NULL, err, sizeof err) ==
          SOMA_STATUS_INVALID);
    CHECK(strstr(err, "out[0]") != NULL);

    /* the full ablation with its random control, twice: reproducible */
    soma_dissect_ablation a1, a2;
    st = soma_dissect_ablate(&cx, &o, s, &h0, 1, SOMA_DISSECT_MODE_ZERO, 0, 6, 42, NULL, &a1, err, sizeof err);
    CHECK_MSG(st == 0, "ablate: %s", err);
    st = soma_dissect_ablate(&cx, &o, s, &h0, 1, SOMA_DISSECT_MODE_ZERO, 0, 6, 42, &a1, &a2, err, sizeof err);
    CHECK(st == 0 && memcmp(&a1, &a2, sizeof a1) == 0);
    CHECK(a1.acc_before == 1.0 && a1.class_after[0] == 0.0 && a1.class_after[1] == 1.0 && a1.draws == 6);
    /* one of three neurons drawn: hid0 about a third of the time, the class-0 control between */
    CHECK(a1.class_control[0] > 0.0 && a1.class_control[0] < 1.0 && a1.class_control[1] == 1.0);

    /* random sets: same population and count, distinct, keyed by (seed, draw) */
    size_t sizes[3] = {2, 12, 4};
    soma_dissect_neuron like[4] = {{1, 0}, {1, 1}, {2, 3}, {1, 5}}, r1[4], r2[4], r3[4];
    CHECK(soma_dissect_random_like(like, 4, sizes, 3, 7, 0, r1, err, sizeof err) == 0);
    CHECK(soma_dissect_random_like(like, 4, sizes, 3, 7, 0, r2, err, sizeof err) == 0);
    CHECK(memcmp(r1, r2, sizeof r1) == 0);
    size_t in1 = 0, in2 = 0, differ = 0;
    for (size_t j = 0; j < 4; j++) {
        in1 += r1[j].pop == 1 && r1[j].index < 12, in2 += r1[j].pop == 2 && r1[j].index < 4;
        for (size_t k = 0; k < j; k++) CHECK(r1[j].pop != r1[k].pop || r1[j].index != r1[k].index);
    }
    CHECK(in1 == 3 && in2 == 1);
    for (uint64_t dr = 1; dr < 8; dr++) {
        CHECK(soma_dissect_random_like(like, 4, sizes, 3, 7, dr, r3, err, sizeof err) == 0);
        differ += memcmp(r1, r3, sizeof r1) != 0;
    }
    CHECK(differ >= 6);
    CHECK(soma_dissect_random_like(like, 4, sizes, 2, 7, 0, r3, err, sizeof err) == SOMA_STATUS_INVALID);
    size_t small[3] = {2, 2, 4}; /* three neurons asked of a population of two */
    CHECK(soma_dissect_random_like(like, 4, small, 3, 7, 0, r3, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK_MSG(strstr(err, "3 neurons of population 1, which has 2") != NULL, "%s", err);

    /* modes and sets by name */
    int mode;
    float sc;
    CHECK(soma_dissect_mode_parse("scale:2.5", &mode, &sc, err, sizeof err) == 0 && mode == SOMA_DISSECT_MODE_SCALE && sc == 2.5f);
    CHECK(soma_dissect_mode_parse("mean", &mode, &sc, err, sizeof err) == 0 && mode == SOMA_DISSECT_MODE_MEAN);
    CHECK(soma_dissect_mode_parse("scale:x", &mode, &sc, err, sizeof err) == SOMA_STATUS_INVALID && strstr(err, "scale:X"));
    soma_dissect_neuron ps[4];
    CHECK(soma_dissect_set_parse(net, "hid:0,2+out:1", ps, 4, &n, err, sizeof err) == 0 && n == 3 && ps[1].pop == 1 &&
          ps[1].index == 2 && ps[2].pop == 2 && ps[2].index == 1);
    CHECK(soma_dissect_set_parse(net, "nope:1", ps, 4, &n, err, sizeof err) == SOMA_STATUS_NOTFOUND && strstr(err, "'nope'"));
    CHECK(soma_dissect_set_parse(net, "hid:3", ps, 4, &n, err, sizeof err) == SOMA_STATUS_INVALID && strstr(err, "0 to 2"));

    /* the files */
    const char *dir = t_tmpdir("dissect");
    char path[1024];
    CHECK_MSG(soma_dissect_write_stats(s, "wired", dir, err, sizeof err) == 0, "%s", err);
    size_t len;
    snprintf(path, sizeof path, "%s/result.json", dir);
    char *js = t_read_file(path, &len);
    CHECK(js && strstr(js, "\"command\": \"stats\"") && strstr(js, "\"dead\": [2]"));
    free(js);
    snprintf(path, sizeof path, "%s/selectivity.png", dir);
    js = t_read_file(path, &len);
    CHECK(js != NULL);
    free(js);
    const soma_dissect_neuron *sets[1] = {&h0};
    const size_t nset[1] = {1};
    const char *labels[1] = {"hid:0"};
    CHECK_MSG(soma_dissect_write_ablate(s, "wired", &a1, 1, labels, sets, nset, dir, err, sizeof err) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/result.json", dir);
    js = t_read_file(path, &len);
    CHECK(js && strstr(js, "\"accuracy_after\": 0.5") && strstr(js, "\"class_after\": [0,1]"));
    free(js);
    snprintf(path, sizeof path, "%s/ablate.png", dir);
    js = t_read_file(path, &len);
    CHECK(js != NULL);
    free(js);
out:
    soma_dissect_stats_free(s);
    soma_train_free(tr);
    soma_net_free(net);
}

/* A random net: stats against the trainer's own counts. */
static void test_random_net(void) {
    enum { D = 6, NH = 12, NO = 3, N = 90 };
    soma_net *net = NULL;
    size_t in, hid, out;
    int st = soma_net_create(&net);
    st |= soma_net_add_pop(net, "in", "input", D, &in);
    st |= soma_net_add_pop(net, "hid", "lif", NH, &hid);
    st |= soma_net_add_pop(net, "out", "lif", NO, &out);
    st |= soma_net_set_param(net, hid, "beta", 0.8f);
    st |= soma_net_connect_dense(net, in, hid, 1);
    st |= soma_net_connect_dense(net, hid, out, 1);
    st |= soma_net_init_weights(net, 5);
    CHECK(st == 0);
    soma_tensor w;
    soma_net_tensor_find(net, "in->hid.weight", &w);
    for (size_t i = 0; i < w.rows * w.cols; i++) w.data[i] *= 3.0f; /* some fire a lot, some a little */
    soma_data_opts d;
    soma_trainer *tr = trainer_for(net, &d);
    d.encoding = SOMA_ENCODING_RATE; /* random input: the evaluation stream must match */
    soma_train_free(tr);
    soma_train_opts to;
    soma_train_opts_default(&to);
    to.batch = 8, to.threads = 2, to.seed = 9;
    CHECK(soma_train_create(&tr, net, &to, &d) == 0);
    uint8_t x[N * D], y[N];
    soma_rng r;
    soma_rng_init(&r, 11, 0);
    for (size_t i = 0; i < N; i++) {
        y[i] = (uint8_t)(i % NO);
        for (size_t j = 0; j < D; j++) x[i * D + j] = (uint8_t)(soma_rng_u32(&r) % (j % NO == y[i] ? 256 : 90));
    }
    soma_dataset ds = {.n = N, .dim = D, .rows = 1, .cols = D, .classes = NO, .x = x, .y = y};
    soma_dissect_ctx cx = {tr, net, &d, &ds};
    soma_dissect_opts o;
    soma_dissect_opts_default(&o);
    o.batch = 32;
    char err[512] = "";
    soma_dissect_stats *s = NULL;
    CHECK_MSG(soma_dissect_stats_run(&cx, &o, &s, err, sizeof err) == 0, "%s", err);
    if (!s) goto out;
    double acc;
    CHECK(soma_train_evaluate(tr, &ds, 0, &acc, NULL) == 0);
    soma_dissect_info info;
    soma_dissect_stats_info(s, &info);
    CHECK_NEAR(info.accuracy, acc, 0);
    double acc2;
    CHECK(soma_dissect_evaluate(&cx, &o, s, NULL, 0, 0, 0, &acc2, NULL, NULL, err, sizeof err) == 0);
    CHECK_NEAR(acc2, acc, 0);
    size_t idx[N];
    for (size_t i = 0; i < N; i++) idx[i] = i;
    uint32_t cnt[N * NH];
    CHECK(soma_train_count_samples(tr, &ds, idx, N, hid, cnt) == 0);
    soma_dissect_pop h;
    soma_dissect_stats_pop(s, 0, &h);
    double sc[N], ap[NH];
    uint8_t pos[N];
    size_t varied = 0;
    for (size_t c = 0; c < NO; c++) {
        CHECK(soma_dissect_ap(s, 0, c, ap) == 0);
        for (size_t i = 0; i < NH; i++) {
            double sum = 0;
            size_t fired = 0;
            for (size_t k = 0; k < N; k++) {
                sc[k] = cnt[k * NH + i], pos[k] = y[k] == c;
                sum += sc[k], fired += sc[k] > 0;
            }
            CHECK_NEAR(ap[i], soma_dissect_average_precision(sc, pos, N), 1e-12);
            if (c == 0) {
                CHECK_NEAR(h.rate[i], sum / (N * (double)T), 1e-12);
                CHECK_NEAR(h.fire_frac[i], fired / (double)N, 1e-12);
                varied += fired > 0 && fired < N;
            }
        }
    }
    CHECK_MSG(varied >= 3, "only %zu neurons fire on some samples but not all", varied);
out:
    soma_dissect_stats_free(s);
    soma_train_free(tr);
    soma_net_free(net);
}

/* The two figures' refusals name the file and what was expected. */
static void test_plots(void) {
    char err[256] = "";
    const char *dir = t_tmpdir("dissect_plots");
    char path[1024];
    snprintf(path, sizeof path, "%s/h.png", dir);
    const double v[6] = {1, -1, 0.5, 0, 2, -2};
    CHECK(soma_plot_heatmap(path, "t", "x", v, 0, 3, NULL, 0, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK(strstr(err, "h.png") && strstr(err, "no values"));
    CHECK_MSG(soma_plot_heatmap(path, "t", "x", v, 2, 3, NULL, 0, err, sizeof err) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/b.png", dir);
    const char *series[11] = {0};
    CHECK(soma_plot_bars(path, "t", "y", 1, NULL, 11, series, v, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK(strstr(err, "b.png") && strstr(err, "1 to 10 series"));
    CHECK_MSG(soma_plot_bars(path, "t", "y", 3, NULL, 2, series, v, err, sizeof err) == 0, "%s", err);
    size_t n;
    void *png = t_read_file(path, &n);
    CHECK(png && n > 8 && memcmp(png, "\x89PNG", 4) == 0);
    free(png);
}

/* A graded hidden layer (ann, relu): its values are activations, summed
 * over the steps; with direct input they are the same every step. */
static void test_graded(void) {
    soma_net *net = NULL;
    size_t in, hid, out;
    int st = soma_net_create(&net);
    st |= soma_net_add_pop(net, "in", "input", 2, &in);
    st |= soma_net_add_pop(net, "hid", "ann", 2, &hid);
    st |= soma_net_add_pop(net, "out", "lif", 2, &out);
    st |= soma_net_connect_dense(net, in, hid, 0);
    st |= soma_net_connect_dense(net, hid, out, 0);
    st |= soma_net_init_weights(net, 1);
    CHECK(st == 0);
    const float w1[] = {0.25f, 0, 0, 0.75f}; /* hid0 = x0 / 4, hid1 = 3 x1 / 4 */
    set_tensor(net, "in->hid.weight", w1, 4);
    soma_data_opts d;
    soma_trainer *tr = trainer_for(net, &d);
    uint8_t x[2 * NS], y[NS];
    soma_dataset ds;
    wired_data(&ds, x, y);
    soma_dissect_ctx cx = {tr, net, &d, &ds};
    char err[256];
    soma_dissect_stats *s = NULL;
    CHECK_MSG(soma_dissect_stats_run(&cx, NULL, &s, err, sizeof err) == 0, "%s", err);
    soma_dissect_pop h;
    if (s && soma_dissect_stats_pop(s, 0, &h) == 0) {
        CHECK(h.graded == 1);
        CHECK_NEAR(h.rate[0], 0.125, 1e-6); /* 0.25 on half the samples */
        CHECK_NEAR(h.class_rate[1 * 2 + 1], 0.75, 1e-6);
        CHECK_NEAR(h.top_value[0], 0.25 * T, 1e-5);
        CHECK(h.saturated[0] == 0 && h.dead[0] == 0);
    }
    soma_dissect_stats_free(s);
    soma_train_free(tr);
    soma_net_free(net);
}

/* The parameter tensors' values, concatenated (to see that attribution
 * changes none of them). */
static float *weights_copy(soma_trainer *tr, size_t *n) {
    float *w = NULL;
    *n = 0;
    soma_tensor t;
    for (size_t i = 0; soma_train_tensor(tr, i, &t) == 0; i++) {
        size_t m = t.rows * t.cols;
        float *g = realloc(w, (*n + m) * sizeof *w);
        if (!g) break;
        w = g;
        memcpy(w + *n, t.data, m * sizeof *w);
        *n += m;
    }
    return w;
}

/* Attribution on the wired net: for class 0 hid0 (which drives out0) has
 * the largest, positive score; hid1 (silent on class 0) and the dead hid2
 * score 0; for class 1 hid1 leads. The scores are the same for batches of
 * 3 and 8 (the loss's 1/B undone), and no weight moves. */
static void test_attribution_wired(void) {
    soma_net *net = wired_net();
    soma_data_opts d;
    soma_trainer *tr = trainer_for(net, &d); /* training batch 8 */
    uint8_t x[2 * NS], y[NS];
    soma_dataset ds;
    wired_data(&ds, x, y);
    soma_dissect_ctx cx = {tr, net, &d, &ds};
    soma_dissect_opts o;
    soma_dissect_opts_default(&o);
    char err[512] = "";
    soma_dissect_stats *s = NULL;
    int st = soma_dissect_stats_run(&cx, &o, &s, err, sizeof err);
    CHECK_MSG(st == 0, "stats: %s", err);
    if (st) goto out;
    size_t nw0, nw1;
    float *w0 = weights_copy(tr, &nw0);
    double acc0, acc1;
    CHECK(soma_train_evaluate(tr, &ds, 0, &acc0, NULL) == 0);
    double a0[3], a1[3], b0[3];
    size_t K = 0;
    o.batch = 256; /* capped at the trainer's 8 */
    CHECK_MSG(soma_dissect_attribution(&cx, &o, s, 0, a0, &K, err, sizeof err) == 0, "%s", err);
    CHECK(K == NS / 2);
    CHECK_MSG(a0[0] > 0 && a0[1] == 0.0 && a0[2] == 0.0, "class 0: %g %g %g", a0[0], a0[1], a0[2]);
    CHECK_MSG(soma_dissect_attribution(&cx, &o, s, 1, a1, NULL, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(a1[1] > 0 && a1[1] > a1[0] && a1[1] > a1[2], "class 1: %g %g %g", a1[0], a1[1], a1[2]);
    o.batch = 3; /* 20 class-0 samples: 6 batches of 3 and one of 2 */
    CHECK_MSG(soma_dissect_attribution(&cx, &o, s, 0, b0, NULL, err, sizeof err) == 0, "%s", err);
    for (int i = 0; i < 3; i++) CHECK_MSG(fabs(b0[i] - a0[i]) <= 1e-4 * fabs(a0[i]), "neuron %d: %.9g vs %.9g", i, b0[i], a0[i]);
    /* the selection, best first, with its scores */
    soma_dissect_neuron sel[3];
    double val[3];
    size_t n = 0;
    CHECK_MSG(soma_dissect_select(&cx, &o, s, SOMA_DISSECT_BY_ATTRIBUTION, 0, 1, 0, 0, sel, val, 3, &n, err, sizeof err) == 0,
              "%s", err);
    CHECK(n == 1 && sel[0].index == 0 && val[0] == b0[0]);
    CHECK_MSG(soma_dissect_select(&cx, &o, s, SOMA_DISSECT_BY_ATTRIBUTION, 1, 0, 100, 0, sel, val, 3, &n, err, sizeof err) == 0,
              "%s", err);
    CHECK(n == 3 && sel[0].index == 1 && val[0] >= val[1] && val[1] >= val[2]);
    /* gradients only: the weights and predictions are as before */
    float *w1 = weights_copy(tr, &nw1);
    CHECK(w0 && w1 && nw0 == nw1 && nw0 > 0 && memcmp(w0, w1, nw0 * sizeof *w0) == 0);
    CHECK(soma_train_evaluate(tr, &ds, 0, &acc1, NULL) == 0 && acc1 == acc0);
    free(w0), free(w1);
    /* the method's name both ways, and a bad one */
    int by = -1;
    CHECK(soma_dissect_by_parse("attribution", &by, err, sizeof err) == 0 && by == SOMA_DISSECT_BY_ATTRIBUTION);
    CHECK(strcmp(soma_dissect_by_name(by), "attribution") == 0);
    CHECK(soma_dissect_by_parse("magic", &by, err, sizeof err) == SOMA_STATUS_INVALID && strstr(err, "ap or attribution"));
    /* the files: by, each neuron's attribution, the figure */
    const char *dir = t_tmpdir("dissect-attr");
    char path[1024];
    size_t len;
    CHECK_MSG(soma_dissect_write_select_by(s, "wired", SOMA_DISSECT_BY_ATTRIBUTION, 1, sel, val, 3, dir, err, sizeof err) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/result.json", dir);
    char *js = t_read_file(path, &len);
    CHECK(js && strstr(js, "\"by\": \"attribution\"") && strstr(js, "\"index\": 1, \"attribution\": "));
    free(js);
    snprintf(path, sizeof path, "%s/attribution.png", dir);
    js = t_read_file(path, &len);
    CHECK(js != NULL);
    free(js);
out:
    soma_dissect_stats_free(s);
    soma_train_free(tr);
    soma_net_free(net);
}

typedef struct fd_mask {
    size_t i;
    float f;
} fd_mask;
static int fd_mask_cb(void *user, const soma_hook_event *ev) {
    const fd_mask *m = user;
    for (size_t r = 0; r < ev->batch; r++) ev->data[r * ev->n + m->i] *= m->f;
    return 0;
}

/* Class k's mean loss over its samples (labels k), neuron i of hid scaled by f. */
static double class_loss(soma_trainer *tr, const soma_data_opts *d, const soma_dataset *ds, size_t k, size_t i, float f) {
    size_t idx[64], B = 0;
    for (size_t j = 0; j < ds->n && B < 64; j++)
        if (ds->y[j] == k) idx[B++] = j;
    float *x = malloc(soma_encode_size(d, ds, B) * sizeof *x);
    uint8_t y[64];
    memset(y, (int)k, sizeof y);
    int tc;
    double loss = NAN;
    soma_hooks *h = NULL;
    fd_mask m = {i, f};
    if (x && soma_encode(d, ds, idx, B, soma_train_options(tr)->seed, 0xE7A1u, x, &tc) == 0 && soma_hooks_create(&h) == 0 &&
        soma_hooks_add(h, "hid.spikes", SOMA_HOOK_MASK, fd_mask_cb, &m) == 0 && soma_train_set_hooks(tr, h) == 0)
        CHECK(soma_train_grad(tr, x, tc, y, B, &loss, NULL) == 0);
    soma_train_set_hooks(tr, NULL);
    soma_hooks_free(h);
    free(x);
    return loss;
}

/* First order on a smooth net (in -> 4 linear ann -> 3 linear ann, the
 * rate-coded cross-entropy): scaling hidden neuron i by (1 + eps) changes
 * class k's mean -L by eps x score_i. Central differences with eps = 1e-2
 * (error O(eps^2)) agree within 2e-5 + 1e-3 |score| (seen: 3e-7) for
 * every neuron and two classes. */
static void test_attribution_fd(void) {
    enum { D = 3, NH = 4, NO = 3, N = 45 };
    soma_net *net = NULL;
    size_t in, hid, out;
    int st = soma_net_create(&net);
    st |= soma_net_add_pop(net, "in", "input", D, &in);
    st |= soma_net_add_pop(net, "hid", "ann", NH, &hid);
    st |= soma_net_add_pop(net, "out", "ann", NO, &out);
    st |= soma_net_set_param(net, hid, "activation", 2.0f); /* linear */
    st |= soma_net_set_param(net, out, "activation", 2.0f);
    st |= soma_net_connect_dense(net, in, hid, 1);
    st |= soma_net_connect_dense(net, hid, out, 1);
    st |= soma_net_init_weights(net, 9);
    CHECK(st == 0);
    soma_train_opts to;
    soma_train_opts_default(&to);
    to.batch = 64, to.threads = 2;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.steps = 4;
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, net, &to, &d) == 0, "%s", soma_net_errmsg(net));
    uint8_t x[D * N], y[N];
    soma_rng r;
    soma_rng_init(&r, 3, 1);
    for (size_t j = 0; j < N; j++) {
        y[j] = (uint8_t)(j % NO);
        for (size_t k = 0; k < D; k++) x[j * D + k] = (uint8_t)(soma_rng_u32(&r) % 200 + (k == y[j] ? 55 : 0));
    }
    soma_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.n = N, ds.dim = D, ds.rows = 1, ds.cols = D, ds.classes = NO, ds.x = x, ds.y = y;
    soma_dissect_ctx cx = {tr, net, &d, &ds};
    soma_dissect_opts o;
    soma_dissect_opts_default(&o);
    o.batch = 7;
    char err[512] = "";
    soma_dissect_stats *s = NULL;
    CHECK_MSG(soma_dissect_stats_run(&cx, &o, &s, err, sizeof err) == 0, "%s", err);
    for (size_t k = 0; s && k < 2; k++) {
        double sc[NH];
        CHECK_MSG(soma_dissect_attribution(&cx, &o, s, k, sc, NULL, err, sizeof err) == 0, "%s", err);
        double big = 0;
        for (size_t i = 0; i < NH; i++) {
            const double eps = 1e-2;
            double lp = class_loss(tr, &d, &ds, k, i, (float)(1 + eps)), lm = class_loss(tr, &d, &ds, k, i, (float)(1 - eps));
            double fd = (lm - lp) / (2 * eps); /* d(-L)/d(eps) */
            CHECK_MSG(fabs(fd - sc[i]) <= 2e-5 + 1e-3 * fabs(sc[i]), "class %zu neuron %zu: fd %.6g, score %.6g", k, i, fd, sc[i]);
            big = fmax(big, fabs(sc[i]));
        }
        CHECK_MSG(big > 1e-2, "class %zu: all scores near 0 (%g): the check would be empty", k, big);
    }
    soma_dissect_stats_free(s);
    soma_train_free(tr);
    soma_net_free(net);
}

int main(void) {
    test_attribution_wired();
    test_attribution_fd();
    test_graded();
    test_plots();
    test_ap_by_hand();
    test_wired();
    test_random_net();
    return t_report("test_dissect");
}
