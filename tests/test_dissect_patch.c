/* test_dissect_patch.c — activation patching (soma_dissect_patch_run) on a
 * chain in -> h1 -> h2 -> out whose answers follow from its shape:
 *
 * - patching any site with the sample's own activations changes nothing
 *   (bit-identical outputs and predictions);
 * - patching all of h2's spikes (the last hidden layer: everything
 *   downstream depends only on them), or all of h1's (the chain), from
 *   sample J gives J's output counts exactly, for every target;
 * - patching some of h1's neurons moves the output only part of the way;
 * - with a neuron list only those neurons take the source's values, the
 *   others keep their clean ones (seen by a READ hook, the watch);
 * - the files and the refusals. */
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

static soma_net *chain_net(void) {
    soma_net *net = NULL;
    size_t in, h1, h2, out;
    int st = soma_net_create(&net);
    st |= soma_net_add_pop(net, "in", "input", D, &in);
    st |= soma_net_add_pop(net, "h1", "lif", H1, &h1);
    st |= soma_net_add_pop(net, "h2", "lif", H2, &h2);
    st |= soma_net_add_pop(net, "out", "lif", NO, &out);
    st |= soma_net_set_param(net, h1, "beta", 0.7f);
    st |= soma_net_set_param(net, h2, "beta", 0.7f);
    st |= soma_net_connect_dense(net, in, h1, 1);
    st |= soma_net_connect_dense(net, h1, h2, 1);
    st |= soma_net_connect_dense(net, h2, out, 1);
    st |= soma_net_init_weights(net, 1);
    CHECK_MSG(st == 0, "chain net: %s", soma_net_errmsg(net));
    /* stronger weights so that every layer fires, differently per sample */
    const char *names[3] = {"in->h1.weight", "h1->h2.weight", "h2->out.weight"};
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

typedef struct fixture {
    soma_net *net;
    soma_trainer *tr;
    soma_data_opts d;
    soma_dataset ds;
    uint8_t x[NS * D], y[NS];
    soma_dissect_ctx cx;
    soma_dissect_opts o;
} fixture;

static void setup(fixture *f) {
    f->net = chain_net();
    soma_train_opts to;
    soma_train_opts_default(&to);
    to.batch = 8, to.threads = 2;
    soma_data_opts_default(&f->d);
    f->d.steps = T;
    CHECK_MSG(soma_train_create(&f->tr, f->net, &to, &f->d) == 0, "trainer: %s", soma_net_errmsg(f->net));
    chain_data(&f->ds, f->x, f->y);
    f->cx = (soma_dissect_ctx){f->tr, f->net, &f->d, &f->ds};
    soma_dissect_opts_default(&f->o);
    f->o.batch = 10; /* several batches, the last one partial */
}

static void teardown(fixture *f) {
    soma_train_free(f->tr);
    soma_net_free(f->net);
}

static soma_dissect_patch *patch(fixture *f, const char *site, size_t J) {
    soma_dissect_patch_opts po = {site, J, 0, -1, NULL, NULL, NULL, NULL};
    soma_dissect_patch *p = NULL;
    char err[512] = "";
    int st = soma_dissect_patch_run(&f->cx, &f->o, &po, &p, err, sizeof err);
    CHECK_MSG(st == 0 && p, "patch %s from %zu: %s", site, J, err);
    return p;
}

/* Own activations: target J patched from J is J's clean run, bit for bit;
 * and the clean run of J (in a batch) is the source run of J (alone). */
static void test_own(fixture *f) {
    const char *sites[] = {"h1.spikes", "h2.spikes", "in->h1.out", "h1->h2.out", "h2->out.out", "h1.spikes:0,3"};
    for (size_t s = 0; s < sizeof sites / sizeof *sites; s++) {
        size_t bad = 0;
        for (size_t J = 0; J < NS; J++) {
            soma_dissect_patch *p = patch(f, sites[s], J);
            if (!p) return;
            CHECK(p->n == NS && p->target[J] == J);
            bad += memcmp(p->patched + J * NO, p->clean + J * NO, NO * sizeof(double)) != 0;
            bad += memcmp(p->clean + J * NO, p->source_out, NO * sizeof(double)) != 0;
            bad += p->pred_patched[J] != p->pred_clean[J] || p->pred_clean[J] != p->source_pred;
            bad += !isnan(p->effect[J]);
            soma_dissect_patch_free(p);
        }
        CHECK_MSG(bad == 0, "%s: own activations changed something (%zu)", sites[s], bad);
    }
}

/* The last hidden layer's spikes (and, in a chain, any full hidden layer's)
 * carry everything the output sees: patched output = the source's. */
static void test_full(fixture *f) {
    const char *sites[] = {"h2.spikes", "h1.spikes", "h2->out.out"};
    for (size_t s = 0; s < sizeof sites / sizeof *sites; s++) {
        for (size_t J = 0; J < NS; J += 7) {
            soma_dissect_patch *p = patch(f, sites[s], J);
            if (!p) return;
            size_t bad = 0, differ = 0, preds = 0;
            for (size_t i = 0; i < p->n; i++) {
                bad += memcmp(p->patched + i * NO, p->source_out, NO * sizeof(double)) != 0;
                bad += p->pred_patched[i] != p->source_pred;
                bad += isfinite(p->effect[i]) && p->effect[i] != 1.0;
                differ += memcmp(p->clean + i * NO, p->source_out, NO * sizeof(double)) != 0;
                preds += p->pred_clean[i] != p->source_pred;
            }
            CHECK_MSG(bad == 0, "%s from %zu: %zu targets not at the source's output", sites[s], J, bad);
            CHECK_MSG(differ >= NS / 2, "%s from %zu: only %zu targets differ from the source: the test says nothing", sites[s], J, differ);
            CHECK(p->mean_effect == 1.0 && p->to_source == NS && p->changed == differ);
            CHECK(p->flip_candidates == preds && p->flips == preds);
            if (preds) CHECK(p->flip_fraction == 1.0);
            soma_dissect_patch_free(p);
        }
    }
}

/* Half of h1: part of the way (not none, not all). */
static void test_partial(fixture *f) {
    size_t partial = 0, moved = 0, full = 0, finite = 0;
    for (size_t J = 0; J < NS; J += 5) {
        soma_dissect_patch *p = patch(f, "h1.spikes:0,1,2", J);
        if (!p) return;
        CHECK(p->nneurons == 3 && !p->all && p->neurons[2] == 2);
        for (size_t i = 0; i < p->n; i++) {
            if (!isfinite(p->effect[i])) continue;
            finite++;
            moved += memcmp(p->patched + i * NO, p->clean + i * NO, NO * sizeof(double)) != 0;
            full += memcmp(p->patched + i * NO, p->source_out, NO * sizeof(double)) == 0;
            partial += p->effect[i] != 0.0 && p->effect[i] != 1.0;
        }
        soma_dissect_patch_free(p);
    }
    CHECK_MSG(moved > 0 && partial > 0 && full < finite, "h1 half: %zu of %zu moved, %zu partly, %zu fully", moved, finite, partial, full);
}

/* The neuron list: the watch (a READ hook on the site in the patched pass)
 * sees the source's values at the listed neurons and the clean ones at the
 * others; the clean and source values come from the test's own READ hook. */
typedef struct trace {
    float v[NS][T][H1];
    size_t row_base; /* sample index of row 0 */
    size_t calls;
} trace;

static int trace_cb(void *user, const soma_hook_event *ev) {
    trace *tr = user;
    for (size_t r = 0; r < ev->batch; r++) {
        size_t s = tr->row_base + ev->row0 + r;
        if (s < NS && ev->step < T && ev->n == H1) memcpy(tr->v[s][ev->step], ev->data + r * ev->n, H1 * sizeof(float));
    }
    tr->calls++;
    return 0;
}

/* The patched pass runs batches of o.batch targets in order: rows map to
 * samples by the batch's first; the watch does not know the batch, so the
 * test patches with o.batch >= NS (one batch). */
static void test_subset(fixture *f) {
    static trace clean, watched;
    memset(&clean, 0, sizeof clean), memset(&watched, 0, sizeof watched);
    soma_hooks *h = NULL;
    CHECK(soma_hooks_create(&h) == 0);
    CHECK(soma_hooks_add(h, "h1.spikes", SOMA_HOOK_READ, trace_cb, &clean) == 0);
    CHECK(soma_train_set_hooks(f->tr, h) == 0);
    soma_hooks_free(h);
    size_t idx[NS];
    for (size_t i = 0; i < NS; i++) idx[i] = i;
    float *xb = malloc(soma_encode_size(&f->d, &f->ds, NS) * sizeof *xb);
    uint8_t pred[NS];
    int tc;
    CHECK(soma_encode(&f->d, &f->ds, idx, NS, soma_train_options(f->tr)->seed, 0xE7A1u, xb, &tc) == 0);
    CHECK(soma_train_predict(f->tr, xb, tc, NS, pred) == 0);
    soma_train_set_hooks(f->tr, NULL);
    free(xb);
    size_t J = 4;
    soma_dissect_opts o = f->o;
    o.batch = NS;
    soma_dissect_patch_opts po = {"h1.spikes:1,4", J, 0, -1, trace_cb, &watched, NULL, NULL};
    soma_dissect_patch *p = NULL;
    char err[512] = "";
    CHECK_MSG(soma_dissect_patch_run(&f->cx, &o, &po, &p, err, sizeof err) == 0, "%s", err);
    CHECK(watched.calls > 0);
    size_t bad_listed = 0, bad_other = 0;
    for (size_t s = 0; s < NS; s++)
        for (size_t t = 0; t < T; t++)
            for (size_t i = 0; i < H1; i++) {
                int listed = i == 1 || i == 4;
                float want = listed ? clean.v[J][t][i] : clean.v[s][t][i];
                if (listed) bad_listed += watched.v[s][t][i] != want;
                else bad_other += watched.v[s][t][i] != want;
            }
    CHECK_MSG(bad_listed == 0 && bad_other == 0, "listed neurons off the source: %zu, others off their clean values: %zu",
              bad_listed, bad_other);
    /* the test says something only if each listed neuron, and some other,
     * differ between the source and the targets (the net's dead h1[3] does not) */
    size_t other = 0;
    for (size_t i = 0; i < H1; i++) {
        size_t dif = 0;
        for (size_t s = 0; s < NS; s++)
            for (size_t t = 0; t < T; t++) dif += clean.v[s][t][i] != clean.v[J][t][i];
        if (i == 1 || i == 4) CHECK_MSG(dif > 0, "h1[%zu] is the same in every sample", i);
        else other += dif;
    }
    CHECK(other > 0);
    soma_dissect_patch_free(p);
}

/* Targets by class and count; the files; refusals. */
static void test_targets_files(fixture *f) {
    soma_dissect_patch_opts po = {"h2.spikes", 1, 3, 2, NULL, NULL, NULL, NULL};
    soma_dissect_patch *p = NULL;
    char err[512] = "";
    CHECK_MSG(soma_dissect_patch_run(&f->cx, &f->o, &po, &p, err, sizeof err) == 0, "%s", err);
    if (!p) return;
    CHECK(p->n == 3 && p->target[0] == 2 && p->target[1] == 5 && p->target[2] == 8 && p->label[2] == 2 && p->cls == 2);
    CHECK(p->source == 1 && p->source_label == 1);
    const char *dir = t_tmpdir("dissect_patch");
    CHECK_MSG(soma_dissect_write_patch(p, "chain", dir, err, sizeof err) == 0, "%s", err);
    char path[1024];
    size_t len;
    snprintf(path, sizeof path, "%s/result.json", dir);
    char *js = t_read_file(path, &len);
    CHECK(js && strstr(js, "\"command\": \"patch\"") && strstr(js, "\"site\": \"h2.spikes\"") && strstr(js, "\"mean_effect\": 1,") &&
          strstr(js, "\"sample\": 8") && strstr(js, "\"neurons\": \"all\""));
    free(js);
    snprintf(path, sizeof path, "%s/patch.png", dir);
    js = t_read_file(path, &len);
    CHECK(js && len > 8 && memcmp(js, "\x89PNG", 4) == 0);
    free(js);
    soma_dissect_patch_free(p);

    po = (soma_dissect_patch_opts){"nope.spikes", 0, 0, -1, NULL, NULL, NULL, NULL};
    CHECK(soma_dissect_patch_run(&f->cx, &f->o, &po, &p, err, sizeof err) == SOMA_STATUS_NOTFOUND && !p && strstr(err, "'nope.spikes'"));
    po.site = "h1.spikes:6";
    CHECK(soma_dissect_patch_run(&f->cx, &f->o, &po, &p, err, sizeof err) == SOMA_STATUS_INVALID && strstr(err, "0 to 5"));
    po.site = "h1.spikes:1,1";
    CHECK(soma_dissect_patch_run(&f->cx, &f->o, &po, &p, err, sizeof err) == SOMA_STATUS_INVALID && strstr(err, "twice"));
    po.site = "h1.spikes:";
    CHECK(soma_dissect_patch_run(&f->cx, &f->o, &po, &p, err, sizeof err) == SOMA_STATUS_INVALID);
    po.site = "h1.spikes", po.source = NS;
    CHECK(soma_dissect_patch_run(&f->cx, &f->o, &po, &p, err, sizeof err) == SOMA_STATUS_INVALID && strstr(err, "source sample"));
    po.source = 0, po.cls = NO;
    CHECK(soma_dissect_patch_run(&f->cx, &f->o, &po, &p, err, sizeof err) == SOMA_STATUS_INVALID && strstr(err, "class"));
}

int main(void) {
    fixture f;
    setup(&f);
    if (f.tr) {
        test_own(&f);
        test_full(&f);
        test_partial(&f);
        test_subset(&f);
        test_targets_files(&f);
    }
    teardown(&f);
    return t_report("test_dissect_patch");
}
