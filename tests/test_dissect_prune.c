/* test_dissect_prune.c — soma dissect prune's library half.
 *
 * A random spiking chain in (12) -> h1 (24 lif, recurrent, per-neuron
 * learned beta) -> h2 (16 lif) -> out (5 lif), weights scaled up so that
 * hidden neurons fire: pruning neurons must give the outputs (spike counts
 * of every output neuron for every sample, hence the predictions) of the
 * full net with those neurons' spikes zeroed by a MASK hook — exactly. Also:
 * the weights land where they should, the parameter count of the pruned
 * net by hand, a pruned model saved and loaded, the selection (lowest
 * first, ties to the lower index), the scores against their definitions,
 * a whole run (fractions 0 and 0.5, half an epoch of fine-tuning, files),
 * and the refusals (input, output, range, twice, all, convolutions, bad
 * fractions and score names). A graded (ReLU) chain: the same up to the
 * rounding of dense products over fewer terms (1e-5 relative).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

#define NS 64
#define DIM 12
#define NC 5
#define T 12
enum { IN = 0, H1 = 1, H2 = 2, OUT = 3 };
static const size_t SIZES[4] = {DIM, 24, 16, NC};

static soma_net *chain_net(void) {
    soma_net *net = NULL;
    int st = soma_net_create(&net);
    st |= soma_net_add_pop(net, "in", "input", SIZES[IN], NULL);
    st |= soma_net_add_pop(net, "h1", "lif", SIZES[H1], NULL);
    st |= soma_net_add_pop(net, "h2", "lif", SIZES[H2], NULL);
    st |= soma_net_add_pop(net, "out", "lif", SIZES[OUT], NULL);
    st |= soma_net_set_param(net, H1, "beta", 0.8f);
    st |= soma_net_set_learn(net, H1, "beta", SOMA_LEARN_NEURON);
    st |= soma_net_set_recurrent(net, H1, 1);
    st |= soma_net_connect_dense(net, IN, H1, 1);
    st |= soma_net_connect_dense(net, H1, H2, 1);
    st |= soma_net_connect_dense(net, H2, OUT, 1);
    st |= soma_net_init_weights(net, 5);
    CHECK_MSG(st == 0, "chain net: %s", soma_net_errmsg(net));
    /* Larger weights make the hidden layers fire; per-neuron betas differ. */
    soma_rng rng;
    soma_rng_init(&rng, 9, 1);
    for (size_t i = 0; i < soma_net_tensor_count(net); i++) {
        soma_tensor t;
        soma_net_tensor(net, i, &t);
        int beta = strstr(t.name, ".beta") != NULL;
        for (size_t j = 0; j < t.rows * t.cols; j++)
            t.data[j] = beta ? 0.5f + 0.45f * soma_rng_uniform(&rng) : t.data[j] * (strstr(t.name, "h1->h1") ? 1.5f : 3.0f);
    }
    return net;
}

static void chain_data(soma_dataset *ds, uint8_t *x, uint8_t *y) {
    soma_rng rng;
    soma_rng_init(&rng, 3, 0);
    for (size_t i = 0; i < NS; i++) {
        y[i] = (uint8_t)(i % NC);
        for (size_t j = 0; j < DIM; j++) x[i * DIM + j] = (uint8_t)(soma_rng_u32(&rng) & 0xff);
    }
    memset(ds, 0, sizeof *ds);
    ds->n = NS, ds->dim = DIM, ds->rows = 1, ds->cols = DIM, ds->classes = NC, ds->x = x, ds->y = y;
}

static soma_trainer *trainer_for(soma_net *net, soma_data_opts *d) {
    soma_train_opts to;
    soma_train_opts_default(&to);
    to.batch = 16, to.threads = 2, to.lr = 1e-3f;
    soma_data_opts_default(d);
    d->steps = T;
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, net, &to, d) == 0, "trainer: %s", soma_net_errmsg(net));
    return tr;
}

/* MASK hook: zero the listed neurons of a population. */
typedef struct zero_ctx {
    const soma_dissect_neuron *set;
    size_t n, pop;
} zero_ctx;
static int zero_cb(void *user, const soma_hook_event *ev) {
    const zero_ctx *z = user;
    for (size_t r = 0; r < ev->batch; r++)
        for (size_t k = 0; k < z->n; k++)
            if (z->set[k].pop == z->pop) ev->data[r * ev->n + z->set[k].index] = 0.0f;
    return 0;
}

/* Output spike counts [NS][NC] of net, with set zeroed (n > 0) by MASK hooks on h1 and h2. */
static void counts_of(soma_net *net, const soma_dataset *ds, const soma_dissect_neuron *set, size_t n, uint32_t *counts) {
    soma_data_opts d;
    soma_trainer *tr = trainer_for(net, &d);
    if (!tr) return;
    zero_ctx z1 = {set, n, H1}, z2 = {set, n, H2};
    if (n) {
        soma_hooks *h;
        soma_hooks_create(&h);
        soma_hooks_add(h, "h1.spikes", SOMA_HOOK_MASK, zero_cb, &z1);
        soma_hooks_add(h, "h2.spikes", SOMA_HOOK_MASK, zero_cb, &z2);
        CHECK_MSG(soma_train_set_hooks(tr, h) == 0, "hooks: %s", soma_train_errmsg(tr));
        soma_hooks_free(h);
    }
    size_t idx[NS];
    for (size_t i = 0; i < NS; i++) idx[i] = i;
    CHECK_MSG(soma_train_count_samples(tr, ds, idx, NS, OUT, counts) == 0, "counts: %s", soma_train_errmsg(tr));
    soma_train_free(tr);
}

static size_t chain_params(size_t n1, size_t n2) {
    return DIM * n1 + n1 + n1 * n2 + n2 + n2 * NC + NC /* dense weights and biases */
         + n1 * n1 + n1; /* h1's recurrent weights, its per-neuron beta */
}

static void test_equals_ablation(void) {
    soma_net *net = chain_net();
    uint8_t x[NS * DIM], y[NS];
    soma_dataset ds;
    chain_data(&ds, x, y);
    /* every 3rd neuron of h1 (and its first two), every other of h2 */
    soma_dissect_neuron set[40];
    size_t n = 0;
    for (size_t i = 0; i < SIZES[H1]; i++)
        if (i % 3 == 0 || i == 1) set[n++] = (soma_dissect_neuron){H1, i};
    for (size_t i = 1; i < SIZES[H2]; i += 2) set[n++] = (soma_dissect_neuron){H2, i};
    size_t n1 = SIZES[H1] - 9, n2 = SIZES[H2] - 8;
    char err[512] = "";
    soma_net *sm = NULL;
    int st = soma_dissect_prune_net(net, set, n, &sm, err, sizeof err);
    CHECK_MSG(st == 0, "prune: %s", err);
    if (st) goto out;
    soma_pop_info pi;
    soma_net_pop_info(sm, H1, &pi);
    CHECK(pi.size == n1 && pi.recurrent == 1 && !strcmp(pi.name, "h1") && !strcmp(pi.model, "lif"));
    soma_net_pop_info(sm, H2, &pi);
    CHECK(pi.size == n2);
    soma_net_pop_info(sm, OUT, &pi);
    CHECK(pi.size == NC);
    CHECK(soma_net_get_learn(sm, H1, "beta") == SOMA_LEARN_NEURON);
    CHECK(soma_net_param_count(net) == chain_params(SIZES[H1], SIZES[H2]));
    CHECK(soma_net_param_count(sm) == chain_params(n1, n2));

    /* where the weights went: h1's kept neuron 2 (first kept after 0, 1) is its row 0 */
    soma_tensor a, b;
    CHECK(soma_net_tensor_find(net, "in->h1.weight", &a) == 0 && soma_net_tensor_find(sm, "in->h1.weight", &b) == 0);
    CHECK(b.rows == n1 && b.cols == DIM && b.data[0] == a.data[2 * DIM] && b.data[DIM + 5] == a.data[4 * DIM + 5]);
    CHECK(soma_net_tensor_find(net, "h1->h2.weight", &a) == 0 && soma_net_tensor_find(sm, "h1->h2.weight", &b) == 0);
    /* h2's kept rows 0, 2, 4...; h1's kept columns 2, 4, 5, 7, ... */
    CHECK(b.rows == n2 && b.cols == n1 && b.data[0] == a.data[0 * 24 + 2] && b.data[1 * n1 + 2] == a.data[2 * 24 + 5]);
    CHECK(soma_net_tensor_find(net, "h1->h1.weight", &a) == 0 && soma_net_tensor_find(sm, "h1->h1.weight", &b) == 0);
    CHECK(b.rows == n1 && b.cols == n1 && b.data[1 * n1 + 3] == a.data[4 * 24 + 7]);
    CHECK(soma_net_tensor_find(net, "h1.beta", &a) == 0 && soma_net_tensor_find(sm, "h1.beta", &b) == 0);
    CHECK(b.cols == n1 && b.data[0] == a.data[2] && b.data[n1 - 1] == a.data[23]);
    CHECK(soma_net_tensor_find(net, "h1->h2.bias", &a) == 0 && soma_net_tensor_find(sm, "h1->h2.bias", &b) == 0);
    CHECK(b.cols == n2 && b.data[1] == a.data[2]);
    CHECK(soma_net_tensor_find(net, "h2->out.bias", &a) == 0 && soma_net_tensor_find(sm, "h2->out.bias", &b) == 0);
    CHECK(b.cols == NC && memcmp(a.data, b.data, NC * sizeof *a.data) == 0);

    /* the outputs: pruned = ablated, and the ablation matters */
    uint32_t full[NS * NC], abl[NS * NC], pr[NS * NC];
    counts_of(net, &ds, set, 0, full);
    counts_of(net, &ds, set, n, abl);
    counts_of(sm, &ds, NULL, 0, pr);
    CHECK(memcmp(abl, pr, sizeof pr) == 0);
    size_t diff = 0, total = 0;
    for (size_t i = 0; i < NS * NC; i++) diff += abl[i] != full[i], total += full[i];
    CHECK_MSG(diff > 10 && total > NS, "the ablation should change outputs (%zu changed, %zu spikes)", diff, total);

    /* predictions: soma_dissect_evaluate MODE_ZERO on the full net = unablated on the pruned */
    soma_data_opts d1, d2;
    soma_trainer *t1 = trainer_for(net, &d1), *t2 = trainer_for(sm, &d2);
    soma_dissect_ctx c1 = {t1, net, &d1, &ds}, c2 = {t2, sm, &d2, &ds};
    soma_dissect_opts o;
    soma_dissect_opts_default(&o);
    o.batch = 24;
    double acc1, acc2, ca1[NC], ca2[NC];
    uint8_t p1[NS], p2[NS];
    CHECK(soma_dissect_evaluate(&c1, &o, NULL, set, n, SOMA_DISSECT_MODE_ZERO, 0, &acc1, ca1, p1, err, sizeof err) == 0);
    CHECK(soma_dissect_evaluate(&c2, &o, NULL, NULL, 0, SOMA_DISSECT_MODE_ZERO, 0, &acc2, ca2, p2, err, sizeof err) == 0);
    CHECK(memcmp(p1, p2, NS) == 0 && acc1 == acc2);
    soma_train_free(t1), soma_train_free(t2);

    /* saved and loaded, the pruned model gives the same outputs */
    char path[512];
    snprintf(path, sizeof path, "%s/pruned.soma", t_tmpdir("test_dissect_prune"));
    soma_train_opts to;
    soma_train_opts_default(&to);
    CHECK_MSG(soma_model_save(path, sm, &d1, &to, err, sizeof err) == 0, "save: %s", err);
    soma_net *ld = NULL;
    CHECK_MSG(soma_model_load(path, &ld, NULL, NULL, err, sizeof err) == 0, "load: %s", err);
    if (ld) {
        uint32_t again[NS * NC];
        counts_of(ld, &ds, NULL, 0, again);
        CHECK(memcmp(again, pr, sizeof pr) == 0);
        soma_net_free(ld);
    }
    /* pruning nothing copies the net */
    soma_net *same = NULL;
    CHECK(soma_dissect_prune_net(net, NULL, 0, &same, err, sizeof err) == 0);
    if (same) {
        uint32_t c[NS * NC];
        counts_of(same, &ds, NULL, 0, c);
        CHECK(memcmp(c, full, sizeof c) == 0 && soma_net_param_count(same) == soma_net_param_count(net));
        soma_net_free(same);
    }
out:
    soma_net_free(sm);
    soma_net_free(net);
}

/* Output sums [NS][C] of a graded output, by a READ hook on `out.spikes`. */
typedef struct sum_ctx {
    double *sum;
    size_t b0, C;
} sum_ctx;
static int sum_cb(void *user, const soma_hook_event *ev) {
    sum_ctx *c = user;
    for (size_t r = 0; r < ev->batch; r++)
        for (size_t i = 0; i < c->C; i++) c->sum[(c->b0 + ev->row0 + r) * c->C + i] += ev->data[r * ev->n + i];
    return 0;
}
static void graded_outputs(soma_net *net, const soma_dataset *ds, const soma_dissect_neuron *set, size_t n, double *sum,
                           uint8_t *pred) {
    soma_data_opts d;
    soma_trainer *tr = trainer_for(net, &d);
    if (!tr) return;
    zero_ctx z1 = {set, n, H1}, z2 = {set, n, H2};
    sum_ctx sc = {sum, 0, NC};
    soma_hooks *h;
    soma_hooks_create(&h);
    soma_hooks_add(h, "out.spikes", SOMA_HOOK_READ, sum_cb, &sc);
    if (n) {
        soma_hooks_add(h, "h1.spikes", SOMA_HOOK_MASK, zero_cb, &z1);
        soma_hooks_add(h, "h2.spikes", SOMA_HOOK_MASK, zero_cb, &z2);
    }
    CHECK_MSG(soma_train_set_hooks(tr, h) == 0, "hooks: %s", soma_train_errmsg(tr));
    soma_hooks_free(h);
    memset(sum, 0, NS * NC * sizeof *sum);
    size_t idx[NS];
    for (size_t i = 0; i < NS; i++) idx[i] = i;
    float *x = malloc(soma_encode_size(&d, ds, NS) * sizeof *x);
    int tc = 0;
    CHECK(x && soma_encode(&d, ds, idx, NS, soma_train_options(tr)->seed, SOMA_EVAL_STREAM, x, &tc) == 0);
    CHECK_MSG(x && soma_train_predict(tr, x, tc, NS, pred) == 0, "predict: %s", soma_train_errmsg(tr));
    free(x);
    soma_train_free(tr);
}

/* A graded (ReLU) chain in -> h1 (24 ann) -> h2 (16 ann) -> out (5 ann,
 * linear): dense products over fewer terms may round differently, so the
 * outputs agree to 1e-5 (relative to the largest |output|) and the
 * predictions exactly. */
static void test_graded_chain(void) {
    soma_net *net = NULL;
    int st = soma_net_create(&net);
    st |= soma_net_add_pop(net, "in", "input", SIZES[IN], NULL);
    st |= soma_net_add_pop(net, "h1", "ann", SIZES[H1], NULL);
    st |= soma_net_add_pop(net, "h2", "ann", SIZES[H2], NULL);
    st |= soma_net_add_pop(net, "out", "ann", SIZES[OUT], NULL);
    st |= soma_net_set(net, OUT, "activation", "linear");
    st |= soma_net_connect_dense(net, IN, H1, 1);
    st |= soma_net_connect_dense(net, H1, H2, 1);
    st |= soma_net_connect_dense(net, H2, OUT, 1);
    st |= soma_net_init_weights(net, 8);
    CHECK_MSG(st == 0, "graded net: %s", soma_net_errmsg(net));
    uint8_t x[NS * DIM], y[NS];
    soma_dataset ds;
    chain_data(&ds, x, y);
    soma_dissect_neuron set[20];
    size_t n = 0;
    for (size_t i = 0; i < SIZES[H1]; i += 2) set[n++] = (soma_dissect_neuron){H1, i};
    for (size_t i = 0; i < SIZES[H2]; i += 4) set[n++] = (soma_dissect_neuron){H2, i};
    char err[512] = "";
    soma_net *sm = NULL;
    CHECK_MSG(soma_dissect_prune_net(net, set, n, &sm, err, sizeof err) == 0, "prune: %s", err);
    double full[NS * NC], abl[NS * NC], pr[NS * NC], big = 0, worst = 0, moved = 0;
    uint8_t pf[NS], pa[NS], pp[NS];
    graded_outputs(net, &ds, set, 0, full, pf);
    graded_outputs(net, &ds, set, n, abl, pa);
    if (sm) graded_outputs(sm, &ds, NULL, 0, pr, pp);
    for (size_t i = 0; sm && i < NS * NC; i++) {
        big = fmax(big, fabs(abl[i]));
        worst = fmax(worst, fabs(abl[i] - pr[i]));
        moved = fmax(moved, fabs(abl[i] - full[i]));
    }
    CHECK_MSG(sm && worst <= 1e-5 * big, "pruned vs ablated: max difference %g of %g", worst, big);
    CHECK_MSG(moved > 1e-2 * big, "the ablation should move the outputs (%g of %g)", moved, big);
    CHECK(sm && memcmp(pa, pp, NS) == 0);
    soma_net_free(sm);
    soma_net_free(net);
}

static void test_refusals(void) {
    soma_net *net = chain_net();
    char err[512] = "";
    soma_net *sm = NULL;
    soma_dissect_neuron bad[2] = {{OUT, 0}, {H1, 0}};
    CHECK(soma_dissect_prune_net(net, bad, 1, &sm, err, sizeof err) == SOMA_STATUS_INVALID && !sm);
    CHECK_MSG(strstr(err, "out is an output population") != NULL, "%s", err);
    bad[0] = (soma_dissect_neuron){IN, 0};
    CHECK(soma_dissect_prune_net(net, bad, 1, &sm, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK_MSG(strstr(err, "in is the input population") != NULL, "%s", err);
    bad[0] = (soma_dissect_neuron){H1, 24};
    CHECK(soma_dissect_prune_net(net, bad, 1, &sm, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK_MSG(strstr(err, "h1[24] is out of range") != NULL, "%s", err);
    bad[0] = (soma_dissect_neuron){H1, 0};
    CHECK(soma_dissect_prune_net(net, bad, 2, &sm, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK_MSG(strstr(err, "h1[0] is listed twice") != NULL, "%s", err);
    soma_dissect_neuron all[16];
    for (size_t i = 0; i < 16; i++) all[i] = (soma_dissect_neuron){H2, i};
    CHECK(soma_dissect_prune_net(net, all, 16, &sm, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK_MSG(strstr(err, "every neuron of h2") != NULL, "%s", err);
    soma_net_free(net);

    /* a convolution's target: refused by name */
    soma_net *cn = NULL;
    size_t dims[3] = {1, 6, 6}, cd[3] = {2, 4, 4};
    soma_conv cv = {3, 1, 0, SOMA_POOL_NONE, 1};
    int st = soma_net_create(&cn);
    st |= soma_net_add_pop(cn, "in", "input", 36, NULL);
    st |= soma_net_add_pop(cn, "c1", "lif", 32, NULL);
    st |= soma_net_add_pop(cn, "out", "lif", 3, NULL);
    st |= soma_net_set_shape(cn, 0, dims, 3);
    st |= soma_net_set_shape(cn, 1, cd, 3);
    st |= soma_net_connect_conv(cn, 0, 1, 1, &cv);
    st |= soma_net_connect_dense(cn, 1, 2, 1);
    st |= soma_net_init_weights(cn, 1);
    CHECK_MSG(st == 0, "conv net: %s", soma_net_errmsg(cn));
    soma_dissect_neuron c = {1, 3};
    CHECK(soma_dissect_prune_net(cn, &c, 1, &sm, err, sizeof err) == SOMA_STATUS_UNSUPPORTED && !sm);
    CHECK_MSG(strstr(err, "c1 is a convolution population") != NULL, "%s", err);
    soma_net_free(cn);

    int sc = -1;
    CHECK(soma_dissect_score_parse("ap", &sc, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK_MSG(strstr(err, "expected rate, wina or attribution") != NULL, "%s", err);
    CHECK(soma_dissect_score_parse("attribution", &sc, err, sizeof err) == 0 && sc == SOMA_DISSECT_SCORE_ATTRIBUTION);
    CHECK(!strcmp(soma_dissect_score_name(SOMA_DISSECT_SCORE_WINA), "wina"));
}

/* Scores against their definitions, and the selection. */
static void test_scores_select(void) {
    soma_net *net = chain_net();
    uint8_t x[NS * DIM], y[NS];
    soma_dataset ds;
    chain_data(&ds, x, y);
    soma_data_opts d;
    soma_trainer *tr = trainer_for(net, &d);
    soma_dissect_ctx cx = {tr, net, &d, &ds};
    soma_dissect_opts o;
    soma_dissect_opts_default(&o);
    o.batch = 24;
    char err[512] = "";
    soma_dissect_stats *s = NULL;
    CHECK_MSG(soma_dissect_stats_run(&cx, &o, &s, err, sizeof err) == 0, "stats: %s", err);
    if (!s) goto out;
    size_t H = soma_dissect_hidden_count(s);
    CHECK(H == 40);
    double rate[40], wina[40], attr[40], sum[40] = {0}, a[40];
    CHECK_MSG(soma_dissect_prune_scores(&cx, &o, s, SOMA_DISSECT_SCORE_RATE, rate, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(soma_dissect_prune_scores(&cx, &o, s, SOMA_DISSECT_SCORE_WINA, wina, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(soma_dissect_prune_scores(&cx, &o, s, SOMA_DISSECT_SCORE_ATTRIBUTION, attr, err, sizeof err) == 0, "%s", err);
    soma_dissect_pop p;
    soma_dissect_stats_pop(s, 0, &p);
    CHECK(p.pop == H1 && p.rate[7] == rate[7]);
    /* wina: spikes are 0/1, so mean |x| = rate; times the norm of the outgoing
     * columns (h1: h1->h2 and the recurrent h1->h1 together; h2: h2->out) */
    soma_tensor w12, w11, w2o;
    soma_net_tensor_find(net, "h1->h2.weight", &w12);
    soma_net_tensor_find(net, "h1->h1.weight", &w11);
    soma_net_tensor_find(net, "h2->out.weight", &w2o);
    size_t fired = 0;
    for (size_t i = 0; i < 40; i++) {
        double nn = 0;
        if (i < 24) {
            for (size_t r = 0; r < 16; r++) nn += (double)w12.data[r * 24 + i] * w12.data[r * 24 + i];
            for (size_t r = 0; r < 24; r++) nn += (double)w11.data[r * 24 + i] * w11.data[r * 24 + i];
        } else
            for (size_t r = 0; r < NC; r++) nn += (double)w2o.data[r * 16 + i - 24] * w2o.data[r * 16 + i - 24];
        CHECK_NEAR(wina[i], rate[i] * sqrt(nn), 1e-9);
        fired += rate[i] > 0;
    }
    CHECK_MSG(fired > 20, "only %zu hidden neurons fire", fired);
    for (size_t c = 0; c < NC; c++) {
        CHECK(soma_dissect_attribution(&cx, &o, s, c, a, NULL, err, sizeof err) == 0);
        for (size_t i = 0; i < 40; i++) sum[i] += fabs(a[i]);
    }
    for (size_t i = 0; i < 40; i++) CHECK_NEAR(attr[i], sum[i], 1e-12);

    /* select: lowest first, ties (and NaN first) to the lower index; floor(f x size) per population */
    double sc[40];
    for (size_t i = 0; i < 40; i++) sc[i] = (double)(i % 5);
    sc[20] = NAN;
    soma_dissect_neuron out[40];
    size_t n = 0;
    CHECK(soma_dissect_prune_select(s, sc, 0.25, out, 40, &n, err, sizeof err) == 0);
    /* h1: 6 of 24: NaN 20, then the 0s 0, 5, 10, 15, then the 1s 1; h2: 4 of 16: 25, 30, 35, 26 */
    CHECK(n == 10);
    size_t want[10][2] = {{H1, 0}, {H1, 1}, {H1, 5}, {H1, 10}, {H1, 15}, {H1, 20}, {H2, 1}, {H2, 2}, {H2, 6}, {H2, 11}};
    for (size_t k = 0; k < n && k < 10; k++)
        CHECK_MSG(out[k].pop == want[k][0] && out[k].index == want[k][1], "selected %zu: %zu:%zu", k, out[k].pop, out[k].index);
    CHECK(soma_dissect_prune_select(s, sc, 0.0, out, 40, &n, err, sizeof err) == 0 && n == 0);
    CHECK(soma_dissect_prune_select(s, sc, 1.0, out, 40, &n, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK_MSG(strstr(err, "--fraction 1: expected a fraction in [0, 1)") != NULL, "%s", err);
out:
    soma_dissect_stats_free(s);
    soma_train_free(tr);
    soma_net_free(net);
}

/* The whole run: fractions 0 and 0.5, half an epoch of fine-tuning, files. */
static void test_run(void) {
    soma_net *net = chain_net();
    uint8_t x[NS * DIM], y[NS];
    soma_dataset ds;
    chain_data(&ds, x, y);
    soma_data_opts d;
    soma_trainer *tr = trainer_for(net, &d);
    soma_dissect_ctx cx = {tr, net, &d, &ds};
    soma_dissect_opts o;
    soma_dissect_opts_default(&o);
    o.batch = 24;
    const char *dir = t_tmpdir("test_dissect_prune_run");
    double fr[2] = {0.0, 0.5};
    soma_dissect_prune_opts po;
    soma_dissect_prune_opts_default(&po);
    CHECK(po.score == SOMA_DISSECT_SCORE_WINA && po.repeats == 3);
    po.fractions = fr, po.nfractions = 2, po.finetune = 0.5, po.train = &ds, po.dir = dir;
    soma_dissect_prune_result res[2];
    char err[512] = "";
    int st = soma_dissect_prune_run(&cx, &o, &po, res, err, sizeof err);
    CHECK_MSG(st == 0, "run: %s", err);
    if (st) goto out;
    double acc;
    soma_train_evaluate(tr, &ds, 0, &acc, NULL);
    CHECK(res[0].acc_before == acc && res[0].acc_pruned == acc && res[0].params_after == res[0].params_before);
    CHECK(res[1].hidden_before == 40 && res[1].hidden_after == 20);
    CHECK(res[1].params_before == chain_params(24, 16) && res[1].params_after == chain_params(12, 8));
    CHECK(res[1].sps_before > 0 && res[1].sps_after > 0 && isfinite(res[1].acc_finetuned) && res[1].finetune_seconds > 0);
    char path[600];
    snprintf(path, sizeof path, "%s/pruned-0.5.soma", dir);
    CHECK(!strcmp(res[1].pruned_path, path));
    soma_net *ld = NULL;
    CHECK_MSG(soma_model_load(path, &ld, NULL, NULL, err, sizeof err) == 0, "%s", err);
    soma_pop_info pi;
    if (ld) {
        CHECK(soma_net_pop_info(ld, H1, &pi) == 0 && pi.size == 12);
        soma_net_free(ld);
    }
    snprintf(path, sizeof path, "%s/finetuned-0.5.soma", dir);
    CHECK(soma_model_load(path, &ld, NULL, NULL, err, sizeof err) == 0);
    soma_net_free(ld);
    CHECK_MSG(soma_dissect_write_prune(&po, res, "m.soma", dir, err, sizeof err) == 0, "%s", err);
    size_t len = 0;
    snprintf(path, sizeof path, "%s/result.json", dir);
    char *js = t_read_file(path, &len);
    CHECK(js && strstr(js, "\"by\": \"wina\"") && strstr(js, "\"params_after\": 461") && strstr(js, "\"accuracy_finetuned\""));
    free(js);
    snprintf(path, sizeof path, "%s/prune.png", dir);
    void *png = t_read_file(path, &len);
    CHECK(png && len > 100);
    free(png);
    /* bad options are named */
    fr[1] = 1.0;
    CHECK(soma_dissect_prune_run(&cx, &o, &po, res, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK_MSG(strstr(err, "--fraction 1") != NULL, "%s", err);
out:
    soma_train_free(tr);
    soma_net_free(net);
}

int main(void) {
    test_equals_ablation();
    test_graded_chain();
    test_refusals();
    test_scores_select();
    test_run();
    return t_report("test_dissect_prune");
}
