/* test_hooks.c — named sites and hooks in both executors.
 *
 * Trainer: in (D) -> hid (lif, also with a recurrent projection) -> out
 * (lif, no bias on hid->out), a batch of two chunks on two threads. READ of hid.spikes equals
 * soma_train_record; a zero mask of hid.spikes silences out, a mask of
 * ones and an override that writes the same values change nothing bit for
 * bit (loss, every gradient, out's spikes); an override's pattern is what
 * the next projection reads; GRAD of hid->out.out matches a central
 * difference of the loss against an override that perturbs that site, and
 * GRAD of hid.spikes and of hid->out.in equal W^T times it; GRAD of
 * in->hid.out summed against the input is the input weights' gradient. Simulator:
 * READ of dst.V_m equals soma_sim_record_state's trace (1 and 2 threads), a
 * mask of src.spikes removes exactly the masked neurons' spikes and a zero
 * mask leaves the target unmoved. Both: unknown sites (NOTFOUND, with
 * close names), refused kinds (UNSUPPORTED), a cancelling hook, and a hook
 * set that asks for nothing (or for another population) giving results
 * bit-identical to no hook set; and the same READ hook on the same net in
 * both executors sees the same membranes and spikes.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

#define D 6
#define NH 12
#define NO 4
#define B 10
#define T 6

/* ------------------------------------------------------------ trainer */

static soma_net *make_net(float out_threshold, int recurrent) {
    soma_net *net = NULL;
    size_t in, hid, out;
    int st = soma_net_create(&net);
    st |= soma_net_add_pop(net, "in", "input", D, &in);
    st |= soma_net_add_pop(net, "hid", "lif", NH, &hid);
    st |= soma_net_add_pop(net, "out", "lif", NO, &out);
    st |= soma_net_set_param(net, hid, "beta", 0.8f);
    st |= soma_net_set_param(net, out, "threshold", out_threshold);
    st |= soma_net_connect_dense(net, in, hid, 1);
    st |= soma_net_connect_dense(net, hid, out, 0);
    if (recurrent) st |= soma_net_set_recurrent(net, hid, 1);
    st |= soma_net_init_weights(net, 7);
    CHECK_MSG(st == 0, "net: %s", soma_net_errmsg(net));
    return net;
}

static soma_trainer *make_trainer(soma_net *net, int loss) {
    soma_train_opts to;
    soma_data_opts dopt;
    soma_train_opts_default(&to);
    to.batch = B;
    to.threads = 2;
    to.loss = loss;
    soma_data_opts_default(&dopt);
    dopt.steps = T;
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, net, &to, &dopt) == 0, "%s", soma_net_errmsg(net));
    return tr;
}

static void make_data(float *x, uint8_t *y) {
    soma_rng rng;
    soma_rng_init(&rng, 3, 1);
    for (size_t i = 0; i < B * D; i++) x[i] = 3.0f * soma_rng_uniform(&rng);
    for (size_t b = 0; b < B; b++) y[b] = (uint8_t)(b % NO);
}

/* A [T][B][n] buffer that hooks fill from their events. */
typedef struct tape {
    float v[T * B * 72];
    size_t n;
    int calls, cancel_at, after_cancel;
    float delta;     /* perturbation: added by `perturb` at (t0, b0, i0) */
    size_t t0, b0, i0;
} tape;

static int read_cb(void *user, const soma_hook_event *ev) {
    tape *tp = user;
    tp->n = ev->n;
    tp->calls++;
    for (size_t r = 0; r < ev->batch; r++)
        memcpy(tp->v + (ev->step * B + ev->row0 + r) * ev->n, ev->data + r * ev->n, ev->n * sizeof(float));
    return 0;
}
static int mask_zero_cb(void *user, const soma_hook_event *ev) {
    (void)user;
    for (size_t i = 0; i < ev->batch * ev->n; i++) ev->data[i] = 0.0f;
    return 0;
}
static int mask_keep_cb(void *user, const soma_hook_event *ev) { /* leaves the mask at 1 */
    (void)user, (void)ev;
    return 0;
}
static int same_cb(void *user, const soma_hook_event *ev) { /* writes the values it was given */
    (void)user;
    for (size_t i = 0; i < ev->batch * ev->n; i++) ev->data[i] = ev->data[i] + 0.0f;
    return 0;
}
static float pattern(size_t t, size_t b, size_t i) { return (float)((t + 2 * b + 3 * i) % 4 == 0); }
static int pattern_cb(void *user, const soma_hook_event *ev) {
    (void)user;
    for (size_t r = 0; r < ev->batch; r++)
        for (size_t i = 0; i < ev->n; i++) ev->data[r * ev->n + i] = pattern(ev->step, ev->row0 + r, i);
    return 0;
}
static int half_cb(void *user, const soma_hook_event *ev) {
    (void)user;
    for (size_t r = 0; r < ev->batch; r++)
        for (size_t i = 0; i < ev->n; i++) ev->data[r * ev->n + i] = 0.5f * pattern(ev->step, ev->row0 + r, i);
    return 0;
}
static int perturb_cb(void *user, const soma_hook_event *ev) {
    tape *tp = user;
    if (ev->step == tp->t0 && tp->b0 >= ev->row0 && tp->b0 < ev->row0 + ev->batch)
        ev->data[(tp->b0 - ev->row0) * ev->n + tp->i0] += tp->delta;
    return 0;
}
static int cancel_cb(void *user, const soma_hook_event *ev) {
    tape *tp = user;
    if (tp->cancel_at < 0) tp->after_cancel++;
    tp->calls++;
    if (ev->step == (size_t)tp->cancel_at) {
        tp->cancel_at = -1;
        return 1;
    }
    return 0;
}

/* Loss, all gradients and out's spikes of one batch with the trainer's hooks as set. */
typedef struct result {
    double loss;
    float *grad;
    size_t ngrad;
    uint8_t spk[T * B * NO];
} result;

static size_t out_pop = 2; /* index of "out" in the net being run */
static void run(soma_trainer *tr, const float *x, const uint8_t *y, result *r) {
    CHECK(soma_train_grad(tr, x, 1, y, B, &r->loss, NULL) == 0);
    size_t n = 0;
    soma_tensor t;
    for (size_t i = 0; soma_train_tensor(tr, i, &t) == 0; i++) n += t.rows * t.cols;
    r->grad = malloc(n * sizeof(float));
    r->ngrad = n;
    n = 0;
    for (size_t i = 0; soma_train_tensor(tr, i, &t) == 0; i++) {
        memcpy(r->grad + n, t.grad, t.rows * t.cols * sizeof(float));
        n += t.rows * t.cols;
    }
    CHECK(soma_train_record(tr, x, 1, B, out_pop, r->spk) == 0);
}

static int same_result(const result *a, const result *b) {
    return memcmp(&a->loss, &b->loss, sizeof a->loss) == 0 && a->ngrad == b->ngrad &&
           memcmp(a->grad, b->grad, a->ngrad * sizeof(float)) == 0 && memcmp(a->spk, b->spk, sizeof a->spk) == 0;
}

static int set1(soma_trainer *tr, const char *site, int kind, soma_hook_fn fn, void *user) {
    soma_hooks *h = NULL;
    CHECK(soma_hooks_create(&h) == 0);
    CHECK(soma_hooks_add(h, site, kind, fn, user) == 0);
    int st = soma_train_set_hooks(tr, h);
    soma_hooks_free(h); /* the trainer keeps a copy */
    return st;
}

static void test_train_sites(void) {
    soma_net *net = make_net(1.0f, 0);
    size_t n = soma_net_site_count(net);
    CHECK(n == 1 + 2 + 2 + 4); /* in.spikes; hid.spikes, hid.v; out.spikes, out.v; 2 per projection */
    const char *want[] = {"in.spikes", "hid.spikes", "out.spikes", "in->hid.in", "in->hid.out", "hid->out.in",
                          "hid->out.out"};
    for (size_t k = 0; k < sizeof want / sizeof *want; k++) {
        size_t i;
        CHECK_MSG(soma_net_site_find(net, want[k], &i) == 0, "%s", want[k]);
    }
    soma_site_info si;
    size_t i;
    CHECK(soma_net_site_find(net, "hid->out.in", &i) == 0 && soma_net_site(net, i, &si) == 0);
    CHECK(si.kind == SOMA_SITE_PROJ_IN && si.size == NH && si.pop == 2 && si.from == 1 && si.proj == 1);
    CHECK(soma_net_site_find(net, "hid.v", &i) == 0 && soma_net_site(net, i, &si) == 0);
    CHECK(si.kind == SOMA_SITE_STATE && si.size == NH && si.state == 0);
    soma_net_free(net);
}

static void test_train_hooks(int recurrent) {
    soma_net *net = make_net(1.0f, recurrent);
    soma_trainer *tr = make_trainer(net, SOMA_LOSS_CE_RATE);
    if (!tr) return;
    float x[B * D];
    uint8_t y[B];
    make_data(x, y);

    /* No hook set at all: the reference. */
    result ref, r;
    run(tr, x, y, &ref);
    int any = 0;
    for (size_t i = 0; i < sizeof ref.spk; i++) any |= ref.spk[i];
    CHECK_MSG(any, "the reference run should have output spikes");

    /* READ of hid.spikes equals soma_train_record's spikes. */
    static tape tp;
    memset(&tp, 0, sizeof tp);
    CHECK(set1(tr, "hid.spikes", SOMA_HOOK_READ, read_cb, &tp) == 0);
    uint8_t hs[T * B * NH];
    CHECK(soma_train_record(tr, x, 1, B, 1, hs) == 0);
    int bad = 0;
    for (size_t i = 0; i < T * B * NH; i++) bad += tp.v[i] != (float)hs[i];
    CHECK_MSG(bad == 0 && tp.n == NH && tp.calls == 2 * T, "%d values differ, %d calls", bad, tp.calls);
    run(tr, x, y, &r); /* a READ changes nothing */
    CHECK(same_result(&ref, &r));
    free(r.grad);

    /* Unasked sites, an empty set and NULL: bit-identical to no hook set. */
    CHECK(set1(tr, "in->hid.out", SOMA_HOOK_READ, read_cb, &tp) == 0);
    run(tr, x, y, &r);
    CHECK(same_result(&ref, &r));
    free(r.grad);
    soma_hooks *empty = NULL;
    CHECK(soma_hooks_create(&empty) == 0);
    CHECK(soma_train_set_hooks(tr, empty) == 0);
    run(tr, x, y, &r);
    CHECK(same_result(&ref, &r));
    free(r.grad);
    soma_hooks_free(empty);

    /* A mask of ones, an override that writes the same values: bit for bit. */
    const char *sites[] = {"hid.spikes", "hid.v", "hid->out.in", "hid->out.out", "in->hid.out", "in.spikes"};
    for (size_t k = 0; k < sizeof sites / sizeof *sites; k++) {
        CHECK(set1(tr, sites[k], SOMA_HOOK_MASK, mask_keep_cb, NULL) == 0);
        run(tr, x, y, &r);
        CHECK_MSG(same_result(&ref, &r), "mask of ones on %s", sites[k]);
        free(r.grad);
        CHECK(set1(tr, sites[k], SOMA_HOOK_OVERRIDE, same_cb, NULL) == 0);
        run(tr, x, y, &r);
        CHECK_MSG(same_result(&ref, &r), "same-value override on %s", sites[k]);
        free(r.grad);
    }

    /* A zero mask on hid.spikes, on what hid->out carries, or on hid's input silences out. */
    const char *silence[] = {"hid.spikes", "hid->out.in", "hid->out.out", "in->hid.out"};
    for (size_t k = 0; k < 4; k++) {
        CHECK(set1(tr, silence[k], SOMA_HOOK_MASK, mask_zero_cb, NULL) == 0);
        uint8_t os[T * B * NO];
        CHECK(soma_train_record(tr, x, 1, B, 2, os) == 0);
        int n1 = 0;
        for (size_t i = 0; i < sizeof os; i++) n1 += os[i];
        CHECK_MSG(n1 == 0, "zero mask on %s: %d output spikes", silence[k], n1);
    }

    /* An override's pattern is what the next projection reads. */
    {
        soma_hooks *h = NULL;
        memset(&tp, 0, sizeof tp);
        CHECK(soma_hooks_create(&h) == 0);
        CHECK(soma_hooks_add(h, "hid.spikes", SOMA_HOOK_OVERRIDE, pattern_cb, NULL) == 0);
        CHECK(soma_hooks_add(h, "hid->out.in", SOMA_HOOK_READ, read_cb, &tp) == 0);
        CHECK(soma_train_set_hooks(tr, h) == 0);
        soma_hooks_free(h);
        uint8_t os[T * B * NO];
        CHECK(soma_train_record(tr, x, 1, B, 2, os) == 0);
        bad = 0;
        for (size_t t = 0; t < T; t++)
            for (size_t b = 0; b < B; b++)
                for (size_t i = 0; i < NH; i++) bad += tp.v[(t * B + b) * NH + i] != pattern(t, b, i);
        CHECK_MSG(bad == 0, "%d values of hid->out.in differ from the override's pattern", bad);
        CHECK(memcmp(os, ref.spk, sizeof os) != 0);
    }

    /* An override with values other than 0/1 reaches the next projection
     * as values (W s), not as spikes (a gather of W's columns). */
    {
        soma_hooks *h = NULL;
        memset(&tp, 0, sizeof tp);
        CHECK(soma_hooks_create(&h) == 0);
        CHECK(soma_hooks_add(h, "hid.spikes", SOMA_HOOK_OVERRIDE, half_cb, NULL) == 0);
        CHECK(soma_hooks_add(h, "hid->out.out", SOMA_HOOK_READ, read_cb, &tp) == 0);
        CHECK(soma_train_set_hooks(tr, h) == 0);
        soma_hooks_free(h);
        uint8_t os[T * B * NO];
        CHECK(soma_train_record(tr, x, 1, B, 2, os) == 0);
        soma_tensor w;
        CHECK(soma_net_tensor_find(net, "hid->out.weight", &w) == 0);
        bad = 0;
        for (size_t t = 0; t < T; t++)
            for (size_t b = 0; b < B; b++)
                for (size_t i = 0; i < NO; i++) {
                    double want = 0;
                    for (size_t j = 0; j < NH; j++) want += (double)w.data[i * NH + j] * 0.5 * pattern(t, b, j);
                    bad += fabs(tp.v[(t * B + b) * NO + i] - want) > 1e-5;
                }
        CHECK_MSG(bad == 0, "%d values of hid->out.out differ from W times the override", bad);
    }

    /* A hook that cancels stops the run; no hook is called after it. */
    memset(&tp, 0, sizeof tp);
    tp.cancel_at = 2;
    CHECK(set1(tr, "out.v", SOMA_HOOK_READ, cancel_cb, &tp) == 0);
    double loss;
    CHECK(soma_train_grad(tr, x, 1, y, B, &loss, NULL) == SOMA_STATUS_CANCELLED);
    CHECK_MSG(strstr(soma_train_errmsg(tr), "out.v") != NULL, "%s", soma_train_errmsg(tr));
    CHECK(tp.after_cancel == 0);

    /* Unknown sites and refused kinds. */
    CHECK(set1(tr, "hid.spike", SOMA_HOOK_READ, read_cb, &tp) == SOMA_STATUS_NOTFOUND);
    CHECK_MSG(strstr(soma_train_errmsg(tr), "close names: hid.spikes, hid.v (") != NULL, "%s", soma_train_errmsg(tr));
    CHECK(set1(tr, "nope.v", SOMA_HOOK_READ, read_cb, &tp) == SOMA_STATUS_NOTFOUND);
    CHECK(set1(tr, "hid.v", SOMA_HOOK_GRAD, read_cb, &tp) == SOMA_STATUS_UNSUPPORTED);
    CHECK(set1(tr, "in->hid.in", SOMA_HOOK_GRAD, read_cb, &tp) == SOMA_STATUS_UNSUPPORTED);
    /* A refused set leaves the trainer's hooks as they were (here: none after NULL). */
    CHECK(soma_train_set_hooks(tr, NULL) == 0);
    run(tr, x, y, &r);
    CHECK(same_result(&ref, &r));
    free(r.grad);
    free(ref.grad);
    soma_train_free(tr);
    soma_net_free(net);
}

/* GRAD: dL/d(hid->out.out) against central differences of the loss with
 * an override that perturbs one value; dL/d(hid.spikes) = dL/d(hid->out.in)
 * = W^T dL/d(hid->out.out). The output never spikes (threshold 100) and the
 * loss reads its membrane, so the loss is smooth in the site's values. */
static void test_train_grad(void) {
    soma_net *net = make_net(100.0f, 0);
    soma_trainer *tr = make_trainer(net, SOMA_LOSS_CE_MEM);
    if (!tr) return;
    float x[B * D];
    uint8_t y[B];
    make_data(x, y);
    static tape g_out, g_spk, g_in, g_in1;
    memset(&g_in1, 0, sizeof g_in1);
    memset(&g_out, 0, sizeof g_out);
    memset(&g_spk, 0, sizeof g_spk);
    memset(&g_in, 0, sizeof g_in);
    soma_hooks *h = NULL;
    CHECK(soma_hooks_create(&h) == 0);
    CHECK(soma_hooks_add(h, "hid->out.out", SOMA_HOOK_GRAD, read_cb, &g_out) == 0);
    CHECK(soma_hooks_add(h, "hid.spikes", SOMA_HOOK_GRAD, read_cb, &g_spk) == 0);
    CHECK(soma_hooks_add(h, "hid->out.in", SOMA_HOOK_GRAD, read_cb, &g_in) == 0);
    CHECK(soma_hooks_add(h, "in->hid.out", SOMA_HOOK_GRAD, read_cb, &g_in1) == 0);
    CHECK(soma_train_set_hooks(tr, h) == 0);
    soma_hooks_free(h);
    double loss;
    CHECK(soma_train_grad(tr, x, 1, y, B, &loss, NULL) == 0);
    CHECK(g_out.n == NO && g_spk.n == NH && g_in.n == NH);

    soma_tensor w;
    CHECK(soma_net_tensor_find(net, "hid->out.weight", &w) == 0);
    int bad = 0;
    double gmax = 0;
    for (size_t r = 0; r < T * B; r++)
        for (size_t j = 0; j < NH; j++) {
            double s = 0;
            for (size_t i = 0; i < NO; i++) s += (double)w.data[i * NH + j] * g_out.v[r * NO + i];
            gmax = fmax(gmax, fabs(s));
            bad += fabs(s - g_spk.v[r * NH + j]) > 1e-6 || g_in.v[r * NH + j] != g_spk.v[r * NH + j];
        }
    CHECK_MSG(bad == 0 && gmax > 0, "%d gradients of hid.spikes / hid->out.in differ from W^T g", bad);
    /* dL/d(in->hid.out) per step, summed against the (direct, every step's)
     * input, is the input weight gradient the trainer reports. */
    soma_tensor w1;
    CHECK(soma_train_tensor(tr, 0, &w1) == 0 && strcmp(w1.name, "in->hid.weight") == 0);
    bad = 0;
    gmax = 0;
    for (size_t i = 0; i < NH; i++)
        for (size_t d = 0; d < D; d++) {
            double s = 0;
            for (size_t t = 0; t < T; t++)
                for (size_t b = 0; b < B; b++) s += (double)g_in1.v[(t * B + b) * NH + i] * x[b * D + d];
            gmax = fmax(gmax, fabs(s));
            bad += fabs(s - w1.grad[i * D + d]) > 1e-5 + 1e-4 * fabs(s);
        }
    CHECK_MSG(bad == 0 && gmax > 0 && g_in1.n == NH, "%d entries of in->hid.weight's gradient differ from sum g x", bad);

    static tape pt;
    memset(&pt, 0, sizeof pt);
    CHECK(set1(tr, "hid->out.out", SOMA_HOOK_OVERRIDE, perturb_cb, &pt) == 0);
    size_t probes[][3] = {{0, 0, 0}, {2, 3, 1}, {5, 9, 3}, {4, 6, 2}, {1, 5, 0}};
    for (size_t k = 0; k < 5; k++) {
        pt.t0 = probes[k][0], pt.b0 = probes[k][1], pt.i0 = probes[k][2];
        double h2 = 1e-2, lp, lm;
        pt.delta = (float)h2;
        CHECK(soma_train_grad(tr, x, 1, y, B, &lp, NULL) == 0);
        pt.delta = (float)-h2;
        CHECK(soma_train_grad(tr, x, 1, y, B, &lm, NULL) == 0);
        double fd = (lp - lm) / (2 * h2), g = g_out.v[(pt.t0 * B + pt.b0) * NO + pt.i0];
        CHECK_MSG(fabs(fd - g) <= 1e-3 * fmax(1e-3, fabs(g)) + 2e-5, "probe %zu: fd %.7g, grad %.7g", k, fd, g);
    }
    soma_train_free(tr);
    soma_net_free(net);
}

/* A convolution between hidden layers: in (6) -> h (lif, 36 as 1x6x6) ->
 * c (lif, 2x6x6, 3x3 kernel, padding 1) -> out (lif 4, no bias). */
static void test_train_conv(void) {
    soma_net *net = NULL;
    size_t in, hh, cc, out;
    int st = soma_net_create(&net);
    st |= soma_net_add_pop(net, "in", "input", D, &in);
    st |= soma_net_add_pop(net, "h", "lif", 36, &hh);
    st |= soma_net_add_pop(net, "c", "lif", 72, &cc);
    st |= soma_net_add_pop(net, "out", "lif", NO, &out);
    size_t d1[3] = {1, 6, 6}, d2[3] = {2, 6, 6};
    st |= soma_net_set_shape(net, hh, d1, 3);
    st |= soma_net_set_shape(net, cc, d2, 3);
    soma_conv cv = {3, 1, 1, SOMA_POOL_NONE, 1};
    st |= soma_net_connect_dense(net, in, hh, 1);
    st |= soma_net_connect_conv(net, hh, cc, 1, &cv);
    st |= soma_net_connect_dense(net, cc, out, 0);
    st |= soma_net_init_weights(net, 11);
    CHECK_MSG(st == 0, "conv net: %s", soma_net_errmsg(net));
    soma_trainer *tr = st ? NULL : make_trainer(net, SOMA_LOSS_CE_RATE);
    if (!tr) {
        soma_net_free(net);
        return;
    }
    float x[B * D];
    uint8_t y[B];
    make_data(x, y);
    result ref, r;
    out_pop = 3;
    run(tr, x, y, &ref);
    const char *sites[] = {"h.spikes", "h->c.in", "h->c.out", "c.spikes", "c.v"};
    for (size_t k = 0; k < sizeof sites / sizeof *sites; k++) {
        CHECK(set1(tr, sites[k], SOMA_HOOK_MASK, mask_keep_cb, NULL) == 0);
        run(tr, x, y, &r);
        CHECK_MSG(same_result(&ref, &r), "conv net: mask of ones on %s", sites[k]);
        free(r.grad);
    }
    const char *silence[] = {"h->c.out", "c.spikes"};
    for (size_t k = 0; k < 2; k++) {
        CHECK(set1(tr, silence[k], SOMA_HOOK_MASK, mask_zero_cb, NULL) == 0);
        uint8_t os[T * B * NO];
        CHECK(soma_train_record(tr, x, 1, B, 3, os) == 0);
        int n1 = 0;
        for (size_t i = 0; i < sizeof os; i++) n1 += os[i];
        CHECK_MSG(n1 == 0, "conv net: zero mask on %s: %d output spikes", silence[k], n1);
    }
    /* A zero mask on the convolution's input leaves it its bias only: the
     * same as zero weights. */
    CHECK(set1(tr, "h->c.in", SOMA_HOOK_MASK, mask_zero_cb, NULL) == 0);
    static tape tp;
    memset(&tp, 0, sizeof tp);
    soma_hooks *h = NULL;
    CHECK(soma_hooks_create(&h) == 0);
    CHECK(soma_hooks_add(h, "h->c.in", SOMA_HOOK_MASK, mask_zero_cb, NULL) == 0);
    CHECK(soma_hooks_add(h, "h->c.out", SOMA_HOOK_READ, read_cb, &tp) == 0);
    CHECK(soma_train_set_hooks(tr, h) == 0);
    soma_hooks_free(h);
    double loss;
    CHECK(soma_train_grad(tr, x, 1, y, B, &loss, NULL) == 0);
    soma_tensor tb;
    CHECK(soma_net_tensor_find(net, "h->c.bias", &tb) == 0);
    int bad = 0;
    for (size_t rr = 0; rr < T * B; rr++)
        for (size_t i = 0; i < 72; i++) bad += tp.v[rr * 72 + i] != tb.data[i / 36];
    CHECK_MSG(bad == 0 && tp.n == 72, "conv net: %d values of h->c.out are not the bias", bad);
    out_pop = 2;
    free(ref.grad);
    soma_train_free(tr);
    soma_net_free(net);
}

/* One API for both executors: the same READ hook on hid.v and hid.spikes
 * of the same trained-model net, in the trainer (a batch) and in the
 * simulator (one sample at a time, hid starting one step later). Both add
 * in different orders, so values agree to rounding and spikes almost all. */
typedef struct both {
    float v[T + 2][B][NH], s[T + 2][B][NH];
    int sim;
    size_t b_sim;
} both;
static int both_cb(void *user, const soma_hook_event *ev) {
    both *c = user;
    if (ev->step >= T + 2) return 0;
    float(*dst)[B][NH] = strcmp(ev->site, "hid.v") == 0 ? c->v : c->s;
    for (size_t r = 0; r < ev->batch; r++)
        memcpy(&dst[ev->step][c->sim ? c->b_sim : ev->row0 + r][ev->first], ev->data + r * ev->n,
               ev->n * sizeof(float));
    return 0;
}

static void test_both_executors(void) {
    soma_net *net = make_net(1.0f, 0);
    soma_trainer *tr = make_trainer(net, SOMA_LOSS_CE_RATE);
    if (!tr) {
        soma_net_free(net);
        return;
    }
    float x[B * D];
    uint8_t y[B];
    make_data(x, y);
    static both bt, bs;
    memset(&bt, 0, sizeof bt);
    memset(&bs, 0, sizeof bs);
    bs.sim = 1;
    soma_hooks *h = NULL;
    CHECK(soma_hooks_create(&h) == 0);
    CHECK(soma_hooks_add(h, "hid.v", SOMA_HOOK_READ, both_cb, &bt) == 0);
    CHECK(soma_hooks_add(h, "hid.spikes", SOMA_HOOK_READ, both_cb, &bt) == 0);
    CHECK(soma_train_set_hooks(tr, h) == 0);
    uint8_t pred[B];
    CHECK(soma_train_predict(tr, x, 1, B, pred) == 0);
    soma_hooks_free(h);
    CHECK(soma_hooks_create(&h) == 0);
    CHECK(soma_hooks_add(h, "hid.v", SOMA_HOOK_READ, both_cb, &bs) == 0);
    CHECK(soma_hooks_add(h, "hid.spikes", SOMA_HOOK_READ, both_cb, &bs) == 0);
    soma_sim_opts o;
    soma_sim_opts_default(&o);
    o.threads = 1;
    size_t start = 0;
    for (size_t b = 0; b < B; b++) {
        soma_sim *sim = NULL;
        char err[512];
        int rc = soma_sim_create(&sim, net, &o, err, sizeof err);
        CHECK_MSG(rc == 0, "%s", err);
        if (rc) break;
        soma_hooks *bad = NULL;
        CHECK(soma_hooks_create(&bad) == 0);
        CHECK(soma_hooks_add(bad, "in.spikes", SOMA_HOOK_READ, both_cb, &bs) == 0);
        CHECK(soma_sim_set_hooks(sim, bad) == SOMA_STATUS_UNSUPPORTED); /* a graded source */
        soma_hooks_free(bad);
        CHECK(soma_sim_set_hooks(sim, h) == 0);
        CHECK(soma_sim_set_input(sim, 0, x + b * D, T, 1) == 0);
        start = (size_t)soma_sim_start_step(sim, 1);
        bs.b_sim = b;
        CHECK(soma_sim_run(sim, (double)(T + start) * soma_net_dt(net), NULL, NULL) == 0);
        soma_sim_free(sim);
    }
    soma_hooks_free(h);
    size_t vbad = 0, sdiff = 0, spikes = 0;
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < B; b++)
            for (size_t i = 0; i < NH; i++) {
                vbad += fabsf(bt.v[t][b][i] - bs.v[t + start][b][i]) > 1e-4f * fmaxf(1.0f, fabsf(bt.v[t][b][i]));
                sdiff += bt.s[t][b][i] != bs.s[t + start][b][i];
                spikes += bt.s[t][b][i] != 0.0f;
            }
    printf("hid in both executors: %zu trainer spikes, %zu differ; %zu membrane values differ\n", spikes, sdiff, vbad);
    CHECK_MSG(start == 1 && spikes > 20 && sdiff <= spikes / 100 && vbad <= sdiff * T,
              "start %zu, %zu spikes, %zu differ, %zu membrane values differ", start, spikes, sdiff, vbad);
    soma_train_free(tr);
    soma_net_free(net);
}

/* ---------------------------------------------------------- simulator */

#define NS 64

/* src (poisson, 64) -> dst (iaf_psc_delta, 8, no leak to speak of, no threshold). */
static soma_sim *make_sim(int threads, soma_net **out) {
    soma_net *sn = NULL;
    CHECK(soma_net_create(&sn) == 0);
    size_t src, dst;
    CHECK(soma_net_add_pop(sn, "src", "poisson", NS, &src) == 0);
    CHECK(soma_net_set(sn, src, "rate", "200Hz") == 0);
    CHECK(soma_net_add_pop(sn, "dst", "iaf_psc_delta", 8, &dst) == 0);
    CHECK(soma_net_set(sn, dst, "tau_m", "1e9ms") == 0);
    CHECK(soma_net_set(sn, dst, "V_th", "5000mV") == 0);
    CHECK(soma_net_set(sn, dst, "E_L", "0mV") == 0);
    CHECK(soma_net_set(sn, dst, "V_m", "0mV") == 0);
    soma_connector c;
    soma_connector_default(&c, SOMA_CONN_ALL_TO_ALL);
    CHECK(soma_net_connect(sn, src, dst, &c, "0.1mV", "1ms", SOMA_PORT_BY_SIGN, NULL) == 0);
    soma_sim_opts o;
    soma_sim_opts_default(&o);
    o.threads = threads;
    o.seed = 5;
    soma_sim *sim = NULL;
    char err[512];
    int rc = soma_sim_create(&sim, sn, &o, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    *out = sn;
    return sim;
}

#define SIM_STEPS 500 /* 50 ms */
typedef struct trace {
    float v[SIM_STEPS][NS];
    int calls, cancel_at, after_cancel;
} trace;

static int sim_read_cb(void *user, const soma_hook_event *ev) {
    trace *tr = user;
    tr->calls++;
    if (tr->cancel_at < 0) tr->after_cancel++;
    if (ev->step < SIM_STEPS) memcpy(&tr->v[ev->step][ev->first], ev->data, ev->n * sizeof(float));
    if (tr->cancel_at > 0 && ev->step == (size_t)tr->cancel_at) {
        tr->cancel_at = -1;
        return 1;
    }
    return 0;
}
static int sim_mask_half_cb(void *user, const soma_hook_event *ev) { /* silences neurons 0..31 */
    (void)user;
    for (size_t i = 0; i < ev->n; i++)
        if (ev->first + i < NS / 2) ev->data[i] = 0.0f;
    return 0;
}

static int sim_set1(soma_sim *sim, const char *site, int kind, soma_hook_fn fn, void *user) {
    soma_hooks *h = NULL;
    CHECK(soma_hooks_create(&h) == 0);
    CHECK(soma_hooks_add(h, site, kind, fn, user) == 0);
    int st = soma_sim_set_hooks(sim, h);
    soma_hooks_free(h);
    return st;
}

static void test_sim_hooks(int threads) {
    soma_net *sn = NULL;
    /* Reference: no hooks; spikes per source neuron and the fingerprint. */
    soma_sim *sim = make_sim(threads, &sn);
    if (!sim) {
        soma_net_free(sn);
        return;
    }
    CHECK(soma_sim_site_count(sim) == 1 + 1 + 2 + 2 + 2 + 2); /* src.spikes; dst.spikes, V_m, refr; in, out; src.current, src.input, dst.current, dst.input (the simulator's own) */
    soma_site_info si;
    CHECK(soma_sim_site(sim, 5, &si) == 0 && strcmp(si.name, "src->dst.out") == 0 && si.size == 8);
    size_t idx[8] = {0, 1, 2, 3, 4, 5, 6, 7}, rec;
    CHECK(soma_sim_record_state(sim, 1, "V_m", idx, 8, 1, &rec) == 0);
    CHECK(soma_sim_run(sim, SIM_STEPS * 0.1, NULL, NULL) == 0);
    size_t nsp;
    const soma_spike *sp = soma_sim_spikes(sim, &nsp);
    size_t upper = 0;
    for (size_t k = 0; k < nsp; k++) upper += sp[k].id >= NS / 2 && sp[k].id < NS;
    soma_sim_stats ref;
    soma_sim_stats_get(sim, &ref);
    CHECK(ref.spikes > 100 && upper > 0 && upper < ref.spikes);
    soma_sim_free(sim);
    soma_net_free(sn); /* the simulator reads its description while it runs */

    /* READ of dst.V_m equals the recorder; a READ and an unasked
     * population leave the spikes bit-identical. */
    static trace tv, ts;
    memset(&tv, 0, sizeof tv);
    memset(&ts, 0, sizeof ts);
    sim = make_sim(threads, &sn);
    soma_hooks *h = NULL;
    CHECK(soma_hooks_create(&h) == 0);
    CHECK(soma_hooks_add(h, "dst.V_m", SOMA_HOOK_READ, sim_read_cb, &tv) == 0);
    CHECK(soma_hooks_add(h, "src->dst.in", SOMA_HOOK_READ, sim_read_cb, &ts) == 0);
    CHECK(soma_sim_set_hooks(sim, h) == 0);
    soma_hooks_free(h);
    CHECK(soma_sim_record_state(sim, 1, "V_m", idx, 8, 1, &rec) == 0);
    CHECK(soma_sim_run(sim, SIM_STEPS * 0.1, NULL, NULL) == 0);
    size_t rows, n, every;
    const float *v = soma_sim_state_data(sim, rec, &rows, &n, &every);
    int bad = 0;
    for (size_t t = 0; v && t < rows; t++)
        for (size_t j = 0; j < 8; j++) bad += v[t * 8 + j] != tv.v[t][j];
    CHECK_MSG(v && rows == SIM_STEPS && bad == 0 && tv.calls >= SIM_STEPS, "%d samples differ", bad);
    soma_sim_stats st;
    soma_sim_stats_get(sim, &st);
    CHECK(memcmp(st.spikes_sha256, ref.spikes_sha256, 32) == 0);
    /* READ of the projection's input: the source's spikes as 0/1. */
    sp = soma_sim_spikes(sim, &nsp);
    size_t ones = 0;
    for (size_t t = 0; t < SIM_STEPS; t++)
        for (size_t i = 0; i < NS; i++) ones += ts.v[t][i] == 1.0f;
    size_t src_spikes = 0;
    for (size_t k = 0; k < nsp; k++) src_spikes += sp[k].id < NS;
    CHECK_MSG(ones == src_spikes, "src->dst.in saw %zu spikes, src fired %zu", ones, src_spikes);
    soma_sim_free(sim);
    soma_net_free(sn);

    /* An empty hook set: bit-identical. */
    sim = make_sim(threads, &sn);
    CHECK(soma_hooks_create(&h) == 0);
    CHECK(soma_sim_set_hooks(sim, h) == 0);
    soma_hooks_free(h);
    CHECK(soma_sim_run(sim, SIM_STEPS * 0.1, NULL, NULL) == 0);
    soma_sim_stats_get(sim, &st);
    CHECK(memcmp(st.spikes_sha256, ref.spikes_sha256, 32) == 0);
    soma_sim_free(sim);
    soma_net_free(sn);

    /* A mask on src.spikes: exactly the unmasked half's spikes remain
     * (poisson draws do not depend on other neurons). */
    sim = make_sim(threads, &sn);
    CHECK(sim_set1(sim, "src.spikes", SOMA_HOOK_MASK, sim_mask_half_cb, NULL) == 0);
    CHECK(soma_sim_run(sim, SIM_STEPS * 0.1, NULL, NULL) == 0);
    soma_sim_pop_info pi;
    CHECK(soma_sim_pop(sim, 0, &pi) == 0);
    CHECK_MSG(pi.spikes == upper, "masked: %llu spikes, expected %zu", (unsigned long long)pi.spikes, upper);
    soma_sim_free(sim);
    soma_net_free(sn);

    /* A zero mask: the target receives nothing. */
    sim = make_sim(threads, &sn);
    CHECK(sim_set1(sim, "src.spikes", SOMA_HOOK_MASK, mask_zero_cb, NULL) == 0);
    CHECK(soma_sim_record_state(sim, 1, "V_m", idx, 8, 1, &rec) == 0);
    CHECK(soma_sim_run(sim, SIM_STEPS * 0.1, NULL, NULL) == 0);
    v = soma_sim_state_data(sim, rec, &rows, &n, &every);
    bad = 0;
    for (size_t t = 0; v && t < rows * 8; t++) bad += v[t] != 0.0f;
    CHECK(soma_sim_pop(sim, 0, &pi) == 0 && pi.spikes == 0);
    CHECK_MSG(bad == 0, "%d samples of dst.V_m moved", bad);
    soma_sim_free(sim);
    soma_net_free(sn);

    /* Cancel, unknown sites, refused kinds. */
    sim = make_sim(threads, &sn);
    memset(&tv, 0, sizeof tv);
    tv.cancel_at = 100;
    CHECK(sim_set1(sim, "dst.V_m", SOMA_HOOK_READ, sim_read_cb, &tv) == 0);
    CHECK(soma_sim_run(sim, 1000.0, NULL, NULL) == SOMA_STATUS_CANCELLED);
    CHECK_MSG(strstr(soma_sim_errmsg(sim), "dst.V_m") != NULL, "%s", soma_sim_errmsg(sim));
    CHECK(tv.after_cancel == 0);
    soma_sim_stats_get(sim, &st);
    CHECK(st.steps < 10000);
    CHECK(sim_set1(sim, "dst.v", SOMA_HOOK_READ, sim_read_cb, &tv) == SOMA_STATUS_NOTFOUND);
    CHECK_MSG(strstr(soma_sim_errmsg(sim), "close names: dst.spikes, dst.V_m, dst.refr, dst.current, dst.input (") != NULL, "%s",
              soma_sim_errmsg(sim));
    CHECK(sim_set1(sim, "dst.V_m", SOMA_HOOK_GRAD, sim_read_cb, &tv) == SOMA_STATUS_UNSUPPORTED);
    CHECK(sim_set1(sim, "src->dst.out", SOMA_HOOK_GRAD, sim_read_cb, &tv) == SOMA_STATUS_UNSUPPORTED);
    CHECK_MSG(strstr(soma_sim_errmsg(sim), "src->dst.out") != NULL, "%s", soma_sim_errmsg(sim));
    CHECK(sim_set1(sim, "src->dst.in", SOMA_HOOK_MASK, sim_mask_half_cb, NULL) == SOMA_STATUS_UNSUPPORTED);
    soma_sim_free(sim);
    soma_net_free(sn);
}

/* Hooks on a spike_source population: an override adds spikes. */
static int add_spike_cb(void *user, const soma_hook_event *ev) {
    (void)user;
    if (ev->step == 10 && ev->first == 0) ev->data[1] = 1.0f;
    return 0;
}

static void test_sim_source(void) {
    soma_net *sn = NULL;
    CHECK(soma_net_create(&sn) == 0);
    size_t src;
    CHECK(soma_net_add_pop(sn, "src", "spike_source", 3, &src) == 0);
    uint32_t ids[] = {0, 2};
    double t[] = {1.0, 2.0};
    CHECK(soma_net_set_spikes(sn, src, ids, t, 2) == 0);
    soma_sim_opts o;
    soma_sim_opts_default(&o);
    o.threads = 1;
    soma_sim *sim = NULL;
    char err[256];
    CHECK(soma_sim_create(&sim, sn, &o, err, sizeof err) == 0);
    if (!sim) return;
    CHECK(sim_set1(sim, "src.spikes", SOMA_HOOK_OVERRIDE, add_spike_cb, NULL) == 0);
    CHECK(soma_sim_run(sim, 5.0, NULL, NULL) == 0);
    size_t n;
    const soma_spike *sp = soma_sim_spikes(sim, &n);
    CHECK(n == 3 && sp && sp[0].step == 10 && sp[0].id == 0 && sp[1].step == 10 && sp[1].id == 1 &&
          sp[2].step == 20 && sp[2].id == 2);
    soma_sim_free(sim);
    soma_net_free(sn);
}

/* `.out` sites in the simulator: b (40 integrators, no leak, no threshold)
 * is fed by a dense projection a -> b from a spike source (delay 3 steps,
 * synapses), a sparse c -> b (0.5 mV, 2 steps) and a dense in -> b from a
 * constant input population (computed by b, 1 step: b starts at step 1).
 * Each .out hook must see exactly its own projection's input, by hand. */
enum { OB = 40, OT = 60 };
typedef struct out_trace {
    float v[OT][OB];
    int seen[OT];
    int mode; /* 0 read, 1 mask 0, 2 override with 1 */
} out_trace;
static int out_cb(void *user, const soma_hook_event *ev) {
    out_trace *tr = user;
    if (ev->step < OT && ev->size == OB && ev->first + ev->n <= OB) {
        if (tr->mode == 0 || ev->kind == SOMA_HOOK_READ) {
            memcpy(&tr->v[ev->step][ev->first], ev->data, ev->n * sizeof(float));
            tr->seen[ev->step] = 1;
        }
        if (ev->kind == SOMA_HOOK_MASK)
            for (size_t i = 0; i < ev->n; i++) ev->data[i] = 0.0f;
        if (ev->kind == SOMA_HOOK_OVERRIDE)
            for (size_t i = 0; i < ev->n; i++) ev->data[i] = 1.0f;
    }
    return 0;
}
static float out_wab(size_t i, size_t j) { return (float)((int)((i + 2 * j) % 5) - 2); }
static float out_win(size_t i, size_t j) { return (float)((int)(i % 3) - 1 + (int)j); }

static soma_sim *out_sim(int threads, soma_net **out) {
    soma_net *sn = NULL;
    CHECK(soma_net_create(&sn) == 0);
    size_t a, c, in, b;
    CHECK(soma_net_add_pop(sn, "a", "spike_source", 3, &a) == 0);
    CHECK(soma_net_add_pop(sn, "c", "spike_source", 1, &c) == 0);
    CHECK(soma_net_add_pop(sn, "in", "input", 2, &in) == 0);
    CHECK(soma_net_add_pop(sn, "b", "iaf_psc_delta", OB, &b) == 0);
    CHECK(soma_net_set(sn, b, "tau_m", "1e9ms") == 0);
    CHECK(soma_net_set(sn, b, "V_th", "5000mV") == 0);
    CHECK(soma_net_set(sn, b, "E_L", "0mV") == 0);
    CHECK(soma_net_set(sn, b, "V_m", "0mV") == 0);
    uint32_t ia[] = {0, 1, 2, 0}, ic = 0;
    double ta[] = {0.5, 0.5, 1.2, 2.0}, tc = 1.0;
    CHECK(soma_net_set_spikes(sn, a, ia, ta, 4) == 0);
    CHECK(soma_net_set_spikes(sn, c, &ic, &tc, 1) == 0);
    /* a -> z first: a -> b's synapses follow z's in a's rows. */
    size_t z;
    CHECK(soma_net_add_pop(sn, "z", "iaf_psc_delta", 5, &z) == 0);
    CHECK(soma_net_set(sn, z, "V_th", "5000mV") == 0);
    CHECK(soma_net_set(sn, z, "tau_m", "1e9ms") == 0);
    CHECK(soma_net_set(sn, z, "E_L", "0mV") == 0);
    CHECK(soma_net_set(sn, z, "V_m", "0mV") == 0);
    soma_connector cn;
    soma_connector_default(&cn, SOMA_CONN_ALL_TO_ALL);
    CHECK(soma_net_connect(sn, a, z, &cn, "1mV", "0.1ms", SOMA_PORT_BY_SIGN, NULL) == 0);
    CHECK(soma_net_connect_dense(sn, a, b, 0) == 0);
    CHECK(soma_net_proj_set_delay(sn, 1, "0.3ms") == 0);
    CHECK(soma_net_proj_set_port(sn, 1, SOMA_PORT_BY_SIGN) == 0);
    CHECK(soma_net_connect(sn, c, b, &cn, "0.5mV", "0.2ms", SOMA_PORT_BY_SIGN, NULL) == 0);
    CHECK(soma_net_connect_dense(sn, in, b, 0) == 0);
    CHECK(soma_net_init_weights(sn, 1) == 0);
    soma_tensor t;
    CHECK(soma_net_tensor_find(sn, "a->b.weight", &t) == 0 && t.rows == OB && t.cols == 3);
    for (size_t i = 0; i < OB; i++)
        for (size_t j = 0; j < 3; j++) t.data[i * 3 + j] = out_wab(i, j);
    CHECK(soma_net_tensor_find(sn, "in->b.weight", &t) == 0 && t.rows == OB && t.cols == 2);
    for (size_t i = 0; i < OB; i++)
        for (size_t j = 0; j < 2; j++) t.data[i * 2 + j] = out_win(i, j);
    soma_sim_opts o;
    soma_sim_opts_default(&o);
    o.threads = threads;
    soma_sim *sim = NULL;
    char err[512];
    int rc = soma_sim_create(&sim, sn, &o, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    const float x[2] = {1.0f, 2.0f};
    if (sim) CHECK(soma_sim_set_input(sim, in, x, 0, 1) == 0);
    *out = sn;
    return sim;
}

/* Each projection's input to b at step s, by hand: which = 0 a->b, 1 c->b, 2 in->b. */
static float out_want(int which, size_t s, size_t i) {
    if (s < 1) return 0.0f; /* b starts at step 1 */
    if (which == 0) {
        /* a's spikes: neurons 0, 1 at step 5, 2 at step 12, 0 at step 20; delay 3. */
        float v = 0;
        if (s == 8) v += out_wab(i, 0) + out_wab(i, 1);
        if (s == 15) v += out_wab(i, 2);
        if (s == 23) v += out_wab(i, 0);
        return v;
    }
    if (which == 1) return s == 12 ? 0.5f : 0.0f; /* c at step 10, delay 2 */
    return out_win(i, 0) * 1.0f + out_win(i, 1) * 2.0f;
}

/* Run with a hook of `kind` (mode of its trace) on each of the .out sites
 * set in `mask` (bit w: projection w); check the traces and b's V. */
static void out_run(int threads, unsigned hooked, int kind, int mode, int unset) {
    static const char *const site[3] = {"a->b.out", "c->b.out", "in->b.out"};
    static out_trace tr[3];
    soma_net *sn = NULL;
    soma_sim *sim = out_sim(threads, &sn);
    if (!sim) {
        soma_net_free(sn);
        return;
    }
    soma_hooks *h = NULL;
    CHECK(soma_hooks_create(&h) == 0);
    for (int w = 0; w < 3; w++) {
        memset(&tr[w], 0, sizeof tr[w]);
        tr[w].mode = mode;
        if (hooked >> w & 1) {
            CHECK(soma_hooks_add(h, site[w], kind, out_cb, &tr[w]) == 0);
            if (kind != SOMA_HOOK_READ) CHECK(soma_hooks_add(h, site[w], SOMA_HOOK_READ, out_cb, &tr[w]) == 0);
        }
    }
    int rc = soma_sim_set_hooks(sim, h);
    CHECK_MSG(rc == 0, "%s", soma_sim_errmsg(sim));
    soma_hooks_free(h);
    if (unset) CHECK(soma_sim_set_hooks(sim, NULL) == 0); /* the synapses go back: as if never hooked */
    size_t idx[OB], rec;
    for (size_t i = 0; i < OB; i++) idx[i] = i;
    CHECK(soma_sim_record_state(sim, 3, "V_m", idx, OB, 1, &rec) == 0);
    size_t recz;
    CHECK(soma_sim_record_state(sim, 4, "V_m", idx, 5, 1, &recz) == 0);
    CHECK(soma_sim_run(sim, OT * 0.1, NULL, NULL) == 0);
    size_t rows = 0;
    const float *v = soma_sim_state_data(sim, rec, &rows, NULL, NULL);
    CHECK(v && rows == OT);
    int bad_hook = 0, bad_v = 0, seen = 0;
    double acc[OB] = {0};
    for (size_t s = 1; v && s < OT; s++)
        for (size_t i = 0; i < OB; i++) {
            for (int w = 0; w < 3; w++) {
                float want = out_want(w, s, i);
                int on = !unset && (hooked >> w & 1);
                if (on) {
                    seen += i == 0 && tr[w].seen[s];
                    /* READ after MASK sees 0, after OVERRIDE 1. */
                    float got_want = mode == 1 ? 0.0f : mode == 2 ? 1.0f : want;
                    if (tr[w].v[s][i] != got_want) bad_hook++;
                    want = got_want;
                }
                acc[i] += want;
            }
            if (fabs(v[s * OB + i] - acc[i]) > 1e-3) bad_v++;
        }
    int nh = 0;
    for (int w = 0; w < 3; w++) nh += !unset && (hooked >> w & 1);
    CHECK_MSG(seen == nh * (OT - 1), "hooks called on %d of %d steps", seen, nh * (OT - 1));
    CHECK_MSG(bad_hook == 0, "hooked 0x%x kind %d threads %d: %d hook values off", hooked, kind, threads, bad_hook);
    CHECK_MSG(bad_v == 0, "hooked 0x%x kind %d threads %d: %d values of b.V_m off", hooked, kind, threads, bad_v);
    /* z, fed by a through the synapses before a -> b's in a's rows, gets all 4 spikes of 1 mV. */
    const float *vz = soma_sim_state_data(sim, recz, &rows, NULL, NULL);
    for (size_t i = 0; vz && i < 5; i++) CHECK_NEAR(vz[(OT - 1) * 5 + i], 4.0, 1e-4);
    /* The connectivity written while hooked holds the real weights. */
    if (!unset && (hooked & 1)) {
        char path[600];
        snprintf(path, sizeof path, "%s/conn.csv", t_tmpdir("hooks_out"));
        CHECK(soma_sim_write_connectivity(sim, path) == 0);
        size_t n = 0;
        char *txt = t_read_file(path, &n);
        CHECK(txt && strstr(txt, "\n0,6,-2,0.3") && strstr(txt, "\n2,43,-1,0.3"));
        free(txt);
    }
    soma_sim_free(sim);
    soma_net_free(sn);
}

static void test_sim_out(int threads) {
    out_run(threads, 7, SOMA_HOOK_READ, 0, 0);     /* every projection's own part, by hand */
    out_run(threads, 1, SOMA_HOOK_READ, 0, 0);     /* one hooked: the others unchanged */
    out_run(threads, 7, SOMA_HOOK_MASK, 1, 0);     /* all masked: b never moves */
    out_run(threads, 1, SOMA_HOOK_MASK, 1, 0);     /* a -> b silenced, the rest arrives */
    out_run(threads, 4, SOMA_HOOK_MASK, 1, 0);     /* the pulled one silenced */
    out_run(threads, 3, SOMA_HOOK_OVERRIDE, 2, 0); /* 1 mV every step instead */
    out_run(threads, 7, SOMA_HOOK_MASK, 1, 1);     /* set, then removed: nothing changed */
}

int main(void) {
    test_train_sites();
    test_train_hooks(0);
    test_train_hooks(1); /* hid recurrent: its own spikes feed it back */
    test_train_grad();
    test_train_conv();
    test_sim_hooks(1);
    test_sim_hooks(2);
    test_sim_source();
    test_sim_out(1);
    test_sim_out(2);
    test_both_executors();
    return t_report("test_hooks");
}
