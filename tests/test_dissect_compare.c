/* test_dissect_compare.c — two models on the same inputs, on the chain
 * in -> h1 -> h2 -> out of test_dissect_patch.c:
 *
 * compare (soma_dissect_compare_run):
 * - a model against an identical copy: RMS exactly 0 everywhere, equal
 *   accuracies;
 * - against a copy with one h1 neuron's incoming weights changed: that
 *   neuron's RMS is nonzero, every other h1 neuron's exactly 0;
 * - the RMS equals a double computation from the models' pooled values
 *   recorded by the test's own READ hooks (all samples in one batch, where
 *   compare runs several);
 * - refusals: a population of another size or name, data options that
 *   change the encoding; the files.
 *
 * patch --from-model (soma_dissect_patch_opts.from):
 * - from an identical model nothing changes;
 * - two models that differ only upstream of h2: patching all of h2 gives
 *   the other model's output counts exactly, target by target;
 * - refusals: the site's size, the encoding. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

#define NS 24 /* samples */
#define T 12
#define D 4
#define H1 6
#define H2 5
#define NO 3

/* The chain; h1_size lets a test build a shape mismatch. */
static soma_net *chain_net(size_t h1_size, const char *h2_name) {
    soma_net *net = NULL;
    size_t in, h1, h2, out;
    int st = soma_net_create(&net);
    st |= soma_net_add_pop(net, "in", "input", D, &in);
    st |= soma_net_add_pop(net, "h1", "lif", h1_size, &h1);
    st |= soma_net_add_pop(net, h2_name, "lif", H2, &h2);
    st |= soma_net_add_pop(net, "out", "lif", NO, &out);
    st |= soma_net_set_param(net, h1, "beta", 0.7f);
    st |= soma_net_set_param(net, h2, "beta", 0.7f);
    st |= soma_net_connect_dense(net, in, h1, 1);
    st |= soma_net_connect_dense(net, h1, h2, 1);
    st |= soma_net_connect_dense(net, h2, out, 1);
    st |= soma_net_init_weights(net, 1);
    CHECK_MSG(st == 0, "chain net: %s", soma_net_errmsg(net));
    char names[3][64];
    snprintf(names[0], sizeof names[0], "in->h1.weight");
    snprintf(names[1], sizeof names[1], "h1->%s.weight", h2_name);
    snprintf(names[2], sizeof names[2], "%s->out.weight", h2_name);
    const float gain[3] = {4.0f, 3.0f, 3.0f};
    for (int k = 0; k < 3; k++) {
        soma_tensor w;
        CHECK(soma_net_tensor_find(net, names[k], &w) == 0);
        for (size_t i = 0; i < w.rows * w.cols; i++) w.data[i] *= gain[k];
    }
    return net;
}

static void chain_data(soma_dataset *ds, uint8_t *x, uint8_t *y) {
    soma_rng r;
    soma_rng_init(&r, 5, 0);
    for (size_t i = 0; i < NS; i++) {
        y[i] = (uint8_t)(i % NO);
        for (size_t j = 0; j < D; j++) x[i * D + j] = (uint8_t)(soma_rng_u32(&r) % 256);
    }
    memset(ds, 0, sizeof *ds);
    ds->n = NS, ds->dim = D, ds->rows = 1, ds->cols = D, ds->classes = NO, ds->x = x, ds->y = y;
}

/* One model: its net, trainer and data options. */
typedef struct model {
    soma_net *net;
    soma_trainer *tr;
    soma_data_opts d;
    soma_dissect_ctx cx;
} model;

static soma_dataset g_ds;
static uint8_t g_x[NS * D], g_y[NS];

static void model_make(model *m, soma_net *net, int steps, uint64_t seed) {
    memset(m, 0, sizeof *m);
    m->net = net;
    soma_train_opts to;
    soma_train_opts_default(&to);
    to.batch = 8, to.threads = 2, to.seed = seed;
    soma_data_opts_default(&m->d);
    m->d.steps = steps;
    m->d.encoding = SOMA_ENCODING_RATE; /* random spikes keyed by the seed: both models must get x's */
    CHECK_MSG(soma_train_create(&m->tr, net, &to, &m->d) == 0, "trainer: %s", soma_net_errmsg(net));
    m->cx = (soma_dissect_ctx){m->tr, net, &m->d, &g_ds};
}

static void model_free(model *m) {
    soma_train_free(m->tr);
    soma_net_free(m->net);
}

static soma_dissect_opts opts(void) {
    soma_dissect_opts o;
    soma_dissect_opts_default(&o);
    o.batch = 10; /* several batches, the last one partial */
    return o;
}

static const soma_dissect_compare_pop *pop_named(const soma_dissect_compare *c, const char *name) {
    for (size_t k = 0; k < c->npops; k++)
        if (!strcmp(c->pops[k].name, name)) return &c->pops[k];
    return NULL;
}

static soma_dissect_compare *compare(model *a, model *b) {
    soma_dissect_opts o = opts();
    soma_dissect_compare *c = NULL;
    char err[512] = "";
    int st = soma_dissect_compare_run(&a->cx, &b->cx, &o, 5, &c, err, sizeof err);
    CHECK_MSG(st == 0 && c, "compare: %s", err);
    return c;
}

/* ------------------------------------------------------------ compare */

static void test_self(void) {
    model a, b;
    model_make(&a, chain_net(H1, "h2"), T, 3);
    model_make(&b, chain_net(H1, "h2"), T, 99); /* the encoding is a's: b's seed does not matter */
    soma_dissect_compare *c = compare(&a, &b);
    if (c) {
        CHECK(c->npops == 3 && c->samples == NS && c->steps == T);
        size_t nonzero = 0;
        for (size_t k = 0; k < c->npops; k++) {
            for (size_t i = 0; i < c->pops[k].size; i++) nonzero += c->pops[k].rms[i] != 0.0;
            nonzero += c->pops[k].mean_rms != 0.0;
        }
        CHECK_MSG(nonzero == 0, "a model against its copy: %zu nonzero RMS", nonzero);
        CHECK(c->accuracy == c->accuracy2 && c->ntop == 5 && c->top_rms[0] == 0.0);
        soma_dissect_compare_free(c);
    }
    model_free(&a), model_free(&b);
}

/* Pooled values [NS][n] of population pop of model m: one batch of all
 * samples, the test's own READ hook. */
typedef struct pooled {
    double v[NS][H1 > H2 ? H1 : H2];
    size_t n;
} pooled;

static int pooled_cb(void *user, const soma_hook_event *ev) {
    pooled *p = user;
    for (size_t r = 0; r < ev->batch; r++)
        for (size_t i = 0; i < ev->n && i < p->n; i++) p->v[ev->row0 + r][i] += ev->data[r * ev->n + i];
    return 0;
}

static void record(model *m, const char *pop, size_t n, pooled *p) {
    memset(p, 0, sizeof *p);
    p->n = n;
    char site[64];
    snprintf(site, sizeof site, "%s.spikes", pop);
    soma_hooks *h = NULL;
    CHECK(soma_hooks_create(&h) == 0);
    CHECK(soma_hooks_add(h, site, SOMA_HOOK_READ, pooled_cb, p) == 0);
    CHECK(soma_train_set_hooks(m->tr, h) == 0);
    soma_hooks_free(h);
    size_t idx[NS];
    for (size_t i = 0; i < NS; i++) idx[i] = i;
    float *xb = malloc(soma_encode_size(&m->d, &g_ds, NS) * sizeof *xb);
    uint8_t pred[NS];
    int tc;
    CHECK(soma_encode(&m->d, &g_ds, idx, NS, soma_train_options(m->tr)->seed, SOMA_EVAL_STREAM, xb, &tc) == 0);
    CHECK(soma_train_predict(m->tr, xb, tc, NS, pred) == 0);
    soma_train_set_hooks(m->tr, NULL);
    free(xb);
}

/* One h1 neuron's incoming weights changed: its RMS only, in h1; and the
 * RMS of every population against the double computation. */
static void test_one_neuron(void) {
    const size_t K = 2;
    model a, b;
    model_make(&a, chain_net(H1, "h2"), T, 3);
    soma_net *n2 = chain_net(H1, "h2");
    soma_tensor w;
    CHECK(soma_net_tensor_find(n2, "in->h1.weight", &w) == 0 && w.rows == H1 && w.cols == D);
    for (size_t j = 0; j < D; j++) w.data[K * D + j] = -0.5f * w.data[K * D + j] + 0.3f;
    model_make(&b, n2, T, 3);
    soma_dissect_compare *c = compare(&a, &b);
    if (c) {
        const soma_dissect_compare_pop *h1 = pop_named(c, "h1");
        CHECK(h1 && h1->size == H1 && h1->hidden);
        if (h1) {
            CHECK_MSG(h1->rms[K] > 0.0, "the changed neuron h1[%zu]: RMS %g", K, h1->rms[K]);
            for (size_t i = 0; i < H1; i++)
                if (i != K) CHECK_MSG(h1->rms[i] == 0.0, "unchanged h1[%zu]: RMS %g", i, h1->rms[i]);
        }
        /* against the double computation */
        const char *pops[3] = {"h1", "h2", "out"};
        const size_t sizes[3] = {H1, H2, NO};
        size_t checked = 0;
        for (int k = 0; k < 3; k++) {
            static pooled pa, pb;
            record(&a, pops[k], sizes[k], &pa);
            record(&b, pops[k], sizes[k], &pb);
            const soma_dissect_compare_pop *cp = pop_named(c, pops[k]);
            CHECK(cp && cp->size == sizes[k]);
            if (!cp) continue;
            double mean = 0;
            for (size_t i = 0; i < sizes[k]; i++) {
                double s = 0;
                for (size_t n = 0; n < NS; n++) s += (pa.v[n][i] - pb.v[n][i]) * (pa.v[n][i] - pb.v[n][i]);
                double want = sqrt(s / NS);
                mean += want;
                CHECK_NEAR(cp->rms[i], want, 1e-12);
                checked += want > 0;
            }
            CHECK_NEAR(cp->mean_rms, mean / (double)sizes[k], 1e-12);
        }
        CHECK_MSG(checked >= 2, "only %zu neurons differ: the comparison says little", checked);
        /* the top list: sorted, and its first is the largest of all */
        double mx = 0;
        for (size_t k = 0; k < c->npops; k++)
            for (size_t i = 0; i < c->pops[k].size; i++) mx = fmax(mx, c->pops[k].rms[i]);
        CHECK(c->ntop == 5 && c->top_rms[0] == mx);
        for (size_t j = 1; j < c->ntop; j++) CHECK(c->top_rms[j] <= c->top_rms[j - 1]);
        /* the files */
        char err[512] = "";
        const char *dir = t_tmpdir("dissect_compare");
        CHECK_MSG(soma_dissect_write_compare(c, "a", "b", dir, err, sizeof err) == 0, "%s", err);
        char path[1024];
        size_t len;
        snprintf(path, sizeof path, "%s/result.json", dir);
        char *js = t_read_file(path, &len);
        CHECK(js && strstr(js, "\"command\": \"compare\"") && strstr(js, "\"model2\": \"b\"") && strstr(js, "\"mean_rms\"") &&
              strstr(js, "\"name\": \"h1\""));
        free(js);
        snprintf(path, sizeof path, "%s/compare.png", dir);
        js = t_read_file(path, &len);
        CHECK(js && len > 8 && memcmp(js, "\x89PNG", 4) == 0);
        free(js);
        soma_dissect_compare_free(c);
    }
    model_free(&a), model_free(&b);
}

static void test_refusals(void) {
    model a, b;
    model_make(&a, chain_net(H1, "h2"), T, 3);
    soma_dissect_opts o = opts();
    soma_dissect_compare *c = NULL;
    char err[512] = "";
    model_make(&b, chain_net(H1 + 1, "h2"), T, 3);
    CHECK(soma_dissect_compare_run(&a.cx, &b.cx, &o, 5, &c, err, sizeof err) == SOMA_STATUS_INVALID && !c);
    CHECK_MSG(strstr(err, "'h1'") && strstr(err, "7") && strstr(err, "6"), "size mismatch: %s", err);
    model_free(&b);
    model_make(&b, chain_net(H1, "h3"), T, 3);
    CHECK(soma_dissect_compare_run(&a.cx, &b.cx, &o, 5, &c, err, sizeof err) == SOMA_STATUS_INVALID && !c);
    CHECK_MSG(strstr(err, "'h2'"), "missing population: %s", err);
    model_free(&b);
    model_make(&b, chain_net(H1, "h2"), T + 1, 3);
    CHECK(soma_dissect_compare_run(&a.cx, &b.cx, &o, 5, &c, err, sizeof err) == SOMA_STATUS_INVALID && !c);
    CHECK_MSG(strstr(err, "'steps'"), "steps: %s", err);
    b.d.steps = T, b.d.gain = a.d.gain * 2; /* the options compared, not the trainer */
    CHECK(soma_dissect_compare_run(&a.cx, &b.cx, &o, 5, &c, err, sizeof err) == SOMA_STATUS_INVALID && !c);
    CHECK_MSG(strstr(err, "'gain'"), "gain: %s", err);
    b.d.gain = a.d.gain, b.d.encoding = a.d.encoding + 1;
    CHECK(soma_dissect_compare_run(&a.cx, &b.cx, &o, 5, &c, err, sizeof err) == SOMA_STATUS_INVALID && !c);
    CHECK_MSG(strstr(err, "'encoding'"), "encoding: %s", err);
    CHECK(soma_dissect_compare_run(&a.cx, &a.cx, &o, 5, &c, err, sizeof err) == SOMA_STATUS_INVALID && !c && strstr(err, "trainer"));
    b.d.encoding = a.d.encoding, b.d.readout = a.d.readout + 1, b.d.limit_test = 7; /* these do not change the encoding */
    CHECK(soma_dissect_compare_check(&a.cx, &b.cx, err, sizeof err) == 0);
    model_free(&b);
    model_free(&a);
}

/* ------------------------------------------------------------ patch --from-model */

static soma_dissect_patch *patch_from(model *a, model *b, const char *site, char *err, size_t errlen, int *st) {
    soma_dissect_opts o = opts();
    soma_dissect_patch_opts po = {site, 0, 0, -1, NULL, NULL, &b->cx, "b"};
    soma_dissect_patch *p = NULL;
    *st = soma_dissect_patch_run(&a->cx, &o, &po, &p, err, errlen);
    return p;
}

static void test_patch_identical(void) {
    model a, b;
    model_make(&a, chain_net(H1, "h2"), T, 3);
    model_make(&b, chain_net(H1, "h2"), T, 99); /* the encoding is a's */
    const char *sites[] = {"h1.spikes", "h2.spikes", "h1->h2.out", "h1.spikes:0,3"};
    for (size_t s = 0; s < sizeof sites / sizeof *sites; s++) {
        char err[512] = "";
        int st;
        soma_dissect_patch *p = patch_from(&a, &b, sites[s], err, sizeof err, &st);
        CHECK_MSG(st == 0 && p, "%s: %s", sites[s], err);
        if (!p) continue;
        CHECK(p->from_model && p->n == NS && !strcmp(p->from_name, "b"));
        CHECK_MSG(memcmp(p->patched, p->clean, NS * NO * sizeof(double)) == 0 &&
                      memcmp(p->source_each, p->clean, NS * NO * sizeof(double)) == 0 &&
                      memcmp(p->pred_patched, p->pred_clean, NS) == 0 && p->changed == 0 && isnan(p->mean_effect),
                  "%s: patching from an identical model changed something", sites[s]);
        soma_dissect_patch_free(p);
    }
    model_free(&a), model_free(&b);
}

/* b differs from a upstream of h2 only (in->h1 and h1->h2 weights): with
 * all of h2 patched from b, a's output is b's, target by target. */
static void test_patch_upstream(void) {
    model a, b;
    model_make(&a, chain_net(H1, "h2"), T, 3);
    soma_net *n2 = chain_net(H1, "h2");
    const char *up[2] = {"in->h1.weight", "h1->h2.weight"};
    for (int k = 0; k < 2; k++) {
        soma_tensor w;
        CHECK(soma_net_tensor_find(n2, up[k], &w) == 0);
        soma_rng r;
        soma_rng_init(&r, 11, (uint64_t)k);
        for (size_t i = 0; i < w.rows * w.cols; i++) w.data[i] += 1.5f * ((float)(soma_rng_u32(&r) % 1000) / 1000.0f - 0.5f);
    }
    model_make(&b, n2, T, 3);
    char err[512] = "";
    int st;
    soma_dissect_patch *p = patch_from(&a, &b, "h2.spikes", err, sizeof err, &st);
    CHECK_MSG(st == 0 && p, "%s", err);
    if (p) {
        size_t bad = 0, differ = 0;
        for (size_t i = 0; i < NS; i++) {
            bad += memcmp(p->patched + i * NO, p->source_each + i * NO, NO * sizeof(double)) != 0;
            bad += p->pred_patched[i] != p->pred_source[i];
            bad += isfinite(p->effect[i]) && p->effect[i] != 1.0;
            differ += memcmp(p->clean + i * NO, p->source_each + i * NO, NO * sizeof(double)) != 0;
        }
        CHECK_MSG(bad == 0, "%zu targets not at the other model's output", bad);
        CHECK_MSG(differ >= NS / 3, "only %zu targets differ between the models: the test says little", differ);
        CHECK(p->changed == differ && p->to_source == NS && (differ == 0 || p->mean_effect == 1.0));
        char path[1024];
        size_t len;
        const char *dir = t_tmpdir("dissect_patch_from");
        CHECK_MSG(soma_dissect_write_patch(p, "a", dir, err, sizeof err) == 0, "%s", err);
        snprintf(path, sizeof path, "%s/result.json", dir);
        char *js = t_read_file(path, &len);
        CHECK(js && strstr(js, "\"model\": \"b\"") && strstr(js, "\"pred_source\"") && strstr(js, "\"mean_effect\": 1,"));
        free(js);
        soma_dissect_patch_free(p);
    }
    /* one h2 neuron only: part of the way at most, never further */
    p = patch_from(&a, &b, "h2.spikes:1", err, sizeof err, &st);
    CHECK_MSG(st == 0 && p, "%s", err);
    if (p) {
        CHECK(p->nneurons == 1 && !p->all);
        soma_dissect_patch_free(p);
    }
    model_free(&b);
    /* refusals: the site's size, the encoding */
    model_make(&b, chain_net(H1 + 1, "h2"), T, 3);
    p = patch_from(&a, &b, "h1.spikes", err, sizeof err, &st);
    CHECK_MSG(st == SOMA_STATUS_INVALID && !p && strstr(err, "--from-model") && strstr(err, "'h1.spikes'"), "site size: %s", err);
    model_free(&b);
    model_make(&b, chain_net(H1, "h3"), T, 3);
    p = patch_from(&a, &b, "h2.spikes", err, sizeof err, &st);
    CHECK_MSG(st == SOMA_STATUS_NOTFOUND && !p && strstr(err, "--from-model") && strstr(err, "'h2.spikes'"), "missing site: %s", err);
    model_free(&b);
    model_make(&b, chain_net(H1, "h2"), T + 2, 3);
    p = patch_from(&a, &b, "h2.spikes", err, sizeof err, &st);
    CHECK_MSG(st == SOMA_STATUS_INVALID && !p && strstr(err, "'steps'"), "steps: %s", err);
    model_free(&b);
    model_free(&a);
}

int main(void) {
    chain_data(&g_ds, g_x, g_y);
    test_self();
    test_one_neuron();
    test_refusals();
    test_patch_identical();
    test_patch_upstream();
    return t_report("test_dissect_compare");
}
