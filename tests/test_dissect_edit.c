/* test_dissect_edit.c — the trainer's learn masks and soma dissect edit's
 * library half.
 *
 * A spiking chain in (12) -> h1 (24 lif, recurrent, per-neuron learned
 * beta) -> out (5 lif) on a learnable synthetic problem (class c lights
 * inputs 2c and 2c+1 above the noise). Freezing: with SGD (momentum),
 * Adam and AdamW with weight decay, after steps that filled the
 * optimizer's moments, a frozen entry stays bit-identical through more
 * steps, its gradient reads 0, the set's own entries change, and the
 * set's parameter count is the one by hand. Editing: suppress lowers the
 * targeted class's test accuracy, enhance raises the weakest class's,
 * nothing outside the set moves (compared here, not only by the run's
 * own check), the edited model saved and loaded equals the net, the files
 * are written; bad sets are refused naming the neuron.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

#define DIM 12
#define NC 5
#define T 8
#define NTRAIN 500
#define NTEST 250
enum { IN = 0, H1 = 1, OUT = 2 };

static soma_net *chain_net(void) {
    soma_net *net = NULL;
    int st = soma_net_create(&net);
    st |= soma_net_add_pop(net, "in", "input", DIM, NULL);
    st |= soma_net_add_pop(net, "h1", "lif", 24, NULL);
    st |= soma_net_add_pop(net, "out", "lif", NC, NULL);
    st |= soma_net_set_param(net, H1, "beta", 0.8f);
    st |= soma_net_set_learn(net, H1, "beta", SOMA_LEARN_NEURON);
    st |= soma_net_set_recurrent(net, H1, 1);
    st |= soma_net_connect_dense(net, IN, H1, 1);
    st |= soma_net_connect_dense(net, H1, OUT, 1);
    st |= soma_net_init_weights(net, 5);
    CHECK_MSG(st == 0, "chain net: %s", soma_net_errmsg(net));
    return net;
}

static void make_data(soma_dataset *ds, uint8_t *x, uint8_t *y, size_t n, uint64_t seed) {
    soma_rng rng;
    soma_rng_init(&rng, seed, 0);
    for (size_t i = 0; i < n; i++) {
        y[i] = (uint8_t)(soma_rng_u32(&rng) % NC);
        for (size_t j = 0; j < DIM; j++) x[i * DIM + j] = (uint8_t)(soma_rng_u32(&rng) % 90);
        x[i * DIM + 2 * y[i]] = (uint8_t)(150 + soma_rng_u32(&rng) % 100);
        x[i * DIM + 2 * y[i] + 1] = (uint8_t)(150 + soma_rng_u32(&rng) % 100);
    }
    memset(ds, 0, sizeof *ds);
    ds->n = n, ds->dim = DIM, ds->rows = 1, ds->cols = DIM, ds->classes = NC, ds->x = x, ds->y = y;
}

static soma_trainer *trainer_for(soma_net *net, soma_data_opts *d, int optimizer, float wd, float lr) {
    soma_train_opts to;
    soma_train_opts_default(&to);
    to.batch = 25, to.threads = 2, to.lr = lr, to.optimizer = optimizer, to.weight_decay = wd, to.momentum = 0.9f;
    soma_data_opts_default(d);
    d->steps = T;
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, net, &to, d) == 0, "trainer: %s", soma_net_errmsg(net));
    return tr;
}

static float *snapshot(soma_net *net) {
    float *s = malloc(soma_net_param_count(net) * sizeof *s);
    for (size_t t = 0, off = 0; t < soma_net_tensor_count(net); t++) {
        soma_tensor te;
        soma_net_tensor(net, t, &te);
        memcpy(s + off, te.data, te.rows * te.cols * sizeof(float)), off += te.rows * te.cols;
    }
    return s;
}

/* Whether entry j of tensor te belongs to the test's set {h1:3, h1:7, out:1}:
 * rows 3 and 7 of in->h1 and h1->h1, their biases and betas; row 1 of
 * h1->out and its bias. */
static int in_set(const soma_tensor *te, size_t j) {
    size_t r = j / te->cols, c = j % te->cols;
    if (!strcmp(te->name, "in->h1.weight") || !strcmp(te->name, "h1->h1.weight")) return r == 3 || r == 7;
    if (!strcmp(te->name, "in->h1.bias") || !strcmp(te->name, "h1.beta")) return c == 3 || c == 7;
    if (!strcmp(te->name, "h1->out.weight")) return r == 1;
    if (!strcmp(te->name, "h1->out.bias")) return c == 1;
    return 0;
}

/* Entries outside the set that differ from s (bitwise), and inside. */
static void diff(soma_net *net, const float *s, size_t *outside, size_t *inside) {
    *outside = *inside = 0;
    for (size_t t = 0, off = 0; t < soma_net_tensor_count(net); t++) {
        soma_tensor te;
        soma_net_tensor(net, t, &te);
        for (size_t j = 0; j < te.rows * te.cols; j++)
            if (memcmp(&te.data[j], &s[off + j], sizeof(float))) (in_set(&te, j) ? (*inside)++ : (*outside)++);
        off += te.rows * te.cols;
    }
}

static const soma_dissect_neuron SET[3] = {{H1, 3}, {H1, 7}, {OUT, 1}};

static void test_freeze(int optimizer, float wd, const soma_dataset *ds) {
    const char *oname = optimizer == SOMA_OPTIMIZER_SGD ? "sgd" : optimizer == SOMA_OPTIMIZER_ADAM ? "adam" : "adamw";
    soma_net *net = chain_net();
    soma_data_opts d;
    soma_trainer *tr = trainer_for(net, &d, optimizer, wd, 1e-2f);
    size_t B = 25, idx[25];
    float *x = malloc(soma_encode_size(&d, ds, B) * sizeof *x);
    uint8_t y[25];
    int tc = 0;
    double loss;
    /* Unfrozen steps first: the moments of every entry are nonzero. */
    for (int s = 0; s < 6; s++) {
        for (size_t k = 0; k < B; k++) idx[k] = (size_t)s * B + k, y[k] = ds->y[idx[k]];
        CHECK(soma_encode(&d, ds, idx, B, 1, 0, x, &tc) == 0);
        CHECK(soma_train_grad(tr, x, tc, y, B, &loss, NULL) == 0);
        CHECK(soma_train_apply(tr) == 0);
    }
    float *s0 = snapshot(net);
    size_t params = 0;
    char err[512] = "";
    CHECK_MSG(soma_dissect_edit_freeze(tr, net, SET, 3, &params, err, sizeof err) == 0, "%s", err);
    /* by hand: h1 neuron 12 + 1 + 24 + 1, out neuron 24 + 1 */
    CHECK_MSG(params == 2 * 38 + 25, "%s: params %zu", oname, params);
    for (int s = 6; s < 12; s++) {
        for (size_t k = 0; k < B; k++) idx[k] = (size_t)s * B + k, y[k] = ds->y[idx[k]];
        CHECK(soma_encode(&d, ds, idx, B, 1, 0, x, &tc) == 0);
        CHECK(soma_train_grad(tr, x, tc, y, B, &loss, NULL) == 0);
        size_t nz_frozen = 0;
        for (size_t t = 0; t < soma_net_tensor_count(net); t++) {
            soma_tensor te;
            soma_train_tensor(tr, t, &te);
            for (size_t j = 0; j < te.rows * te.cols; j++) nz_frozen += !in_set(&te, j) && te.grad[j] != 0.0f;
        }
        CHECK_MSG(nz_frozen == 0, "%s: %zu frozen entries have a gradient", oname, nz_frozen);
        CHECK(soma_train_apply(tr) == 0);
    }
    size_t outside, inside;
    diff(net, s0, &outside, &inside);
    CHECK_MSG(outside == 0, "%s (wd %g): %zu frozen entries changed", oname, wd, outside);
    CHECK_MSG(inside > 60 && inside <= params, "%s: %zu of the set's %zu entries changed", oname, inside, params);
    /* Unfreezing: everything learns again (936 entries are outside the set). */
    for (size_t t = 0; t < soma_net_tensor_count(net); t++) CHECK(soma_train_set_learn_mask(tr, t, NULL) == 0);
    CHECK(soma_train_set_learn_mask(tr, soma_net_tensor_count(net), NULL) == SOMA_STATUS_INVALID);
    free(s0);
    s0 = snapshot(net);
    CHECK(soma_train_grad(tr, x, tc, y, B, &loss, NULL) == 0);
    CHECK(soma_train_apply(tr) == 0);
    diff(net, s0, &outside, &inside);
    CHECK_MSG(outside > 900, "%s: unfrozen, only %zu entries outside the set moved", oname, outside);
    free(s0), free(x);
    soma_train_free(tr);
    soma_net_free(net);
}

/* Train the chain a few epochs so that the classes are learnt. */
static void base_train(soma_trainer *tr, const soma_dataset *train) {
    for (int e = 0; e < 12; e++) {
        soma_epoch_result res;
        CHECK(soma_train_epoch(tr, train, e, NULL, NULL, &res) == 0);
    }
}

static void test_edit(const soma_dataset *train, const soma_dataset *test) {
    soma_net *net = chain_net();
    soma_data_opts d;
    soma_trainer *tr = trainer_for(net, &d, SOMA_OPTIMIZER_ADAM, 0.0f, 1e-2f);
    base_train(tr, train);
    double acc = 0;
    CHECK(soma_train_evaluate(tr, test, 0, &acc, NULL) == 0);
    CHECK_MSG(acc > 0.6, "base accuracy %.3f: the problem is not learnt", acc);
    soma_dissect_ctx x = {tr, net, &d, test};
    soma_dissect_opts o;
    soma_dissect_opts_default(&o);
    const char *dir = t_tmpdir("test_dissect_edit");
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/edited.soma", dir);

    /* suppress class 2 by training its output neuron and four hidden neurons */
    soma_dissect_neuron set[5] = {{OUT, 2}, {H1, 0}, {H1, 5}, {H1, 9}, {H1, 14}};
    soma_dissect_edit_opts eo;
    soma_dissect_edit_opts_default(&eo);
    eo.set = set, eo.n = 5, eo.cls = 2, eo.goal = SOMA_DISSECT_GOAL_SUPPRESS, eo.epochs = 3, eo.train = train, eo.path = path;
    float *s0 = snapshot(net);
    soma_dissect_edit_result r;
    CHECK_MSG(soma_dissect_edit_run(&x, &o, &eo, &r, err, sizeof err) == 0, "suppress: %s", err);
    CHECK_MSG(r.target_after < r.target_before - 0.2, "suppress: class 2 %.3f -> %.3f", r.target_before, r.target_after);
    CHECK(r.params_changed_outside == 0 && r.params_changed > 0 && r.params_changed <= r.params_selected);
    CHECK_MSG(r.params_selected == 25 + 4 * (12 + 1 + 24 + 1), "selected %zu", r.params_selected);
    /* every entry outside the set bit-identical, by the test's own compare */
    size_t changed_out = 0, off = 0;
    for (size_t t = 0; t < soma_net_tensor_count(net); t++) {
        soma_tensor te;
        soma_net_tensor(net, t, &te);
        for (size_t j = 0; j < te.rows * te.cols; j++) {
            size_t rr = j / te.cols, c = j % te.cols;
            int own = (!strcmp(te.name, "h1->out.weight") && rr == 2) || (!strcmp(te.name, "h1->out.bias") && c == 2);
            const char *nm = te.name;
            int h = !strcmp(nm, "in->h1.weight") || !strcmp(nm, "h1->h1.weight") ? (int)rr
                  : !strcmp(nm, "in->h1.bias") || !strcmp(nm, "h1.beta") ? (int)c : -1;
            own |= h == 0 || h == 5 || h == 9 || h == 14;
            if (!own && memcmp(&te.data[j], &s0[off + j], sizeof(float))) changed_out++;
        }
        off += te.rows * te.cols;
    }
    CHECK_MSG(changed_out == 0, "suppress: %zu entries outside the set changed", changed_out);
    /* the saved model equals the edited net */
    soma_net *ld = NULL;
    CHECK_MSG(soma_model_load(path, &ld, NULL, NULL, err, sizeof err) == 0, "load: %s", err);
    if (ld) {
        size_t bad = 0;
        for (size_t t = 0; t < soma_net_tensor_count(net); t++) {
            soma_tensor a, b;
            soma_net_tensor(net, t, &a);
            if (soma_net_tensor(ld, t, &b) || a.rows != b.rows || a.cols != b.cols) bad++;
            else bad += memcmp(a.data, b.data, a.rows * a.cols * sizeof(float)) != 0;
        }
        CHECK(bad == 0);
        soma_net_free(ld);
    }
    CHECK_MSG(soma_dissect_write_edit(&eo, &r, net, "m.soma", dir, err, sizeof err) == 0, "write: %s", err);
    char f[1100];
    size_t n = 0;
    snprintf(f, sizeof f, "%s/result.json", dir);
    char *js = t_read_file(f, &n);
    CHECK(js && strstr(js, "\"goal\": \"suppress\"") && strstr(js, "\"neurons\": [\"out:2\", \"h1:0\""));
    free(js);
    snprintf(f, sizeof f, "%s/edit.png", dir);
    void *png = t_read_file(f, &n);
    CHECK(png && n > 1000);
    free(png);
    free(s0);

    /* enhance the weakest class of the edited net back up */
    size_t weak = 0;
    for (size_t c = 1; c < NC; c++)
        if (r.class_after[c] < r.class_after[weak]) weak = c;
    soma_dissect_edit_opts_default(&eo);
    eo.set = set, eo.n = 5, eo.cls = weak, eo.goal = SOMA_DISSECT_GOAL_ENHANCE, eo.epochs = 3, eo.train = train;
    soma_dissect_edit_result r2;
    CHECK_MSG(soma_dissect_edit_run(&x, &o, &eo, &r2, err, sizeof err) == 0, "enhance: %s", err);
    CHECK_MSG(r2.target_after > r2.target_before + 0.2, "enhance: class %zu %.3f -> %.3f", weak, r2.target_before,
              r2.target_after);
    CHECK(r2.params_changed_outside == 0);
    soma_train_free(tr);
    soma_net_free(net);
}

static void expect_refused(soma_dissect_ctx *x, const soma_dissect_edit_opts *eo, const char *needle) {
    soma_dissect_edit_result r;
    char err[512] = "";
    int st = soma_dissect_edit_run(x, NULL, eo, &r, err, sizeof err);
    CHECK_MSG(st == SOMA_STATUS_INVALID && strstr(err, needle), "expected a refusal naming '%s', got %d '%s'", needle, st, err);
}

static void test_refusals(const soma_dataset *train, const soma_dataset *test) {
    soma_net *net = chain_net();
    soma_data_opts d;
    soma_trainer *tr = trainer_for(net, &d, SOMA_OPTIMIZER_ADAM, 0.0f, 1e-2f);
    soma_dissect_ctx x = {tr, net, &d, test};
    float *s0 = snapshot(net);
    soma_dissect_edit_opts eo;
    soma_dissect_edit_opts_default(&eo);
    eo.train = train, eo.cls = 1;
    soma_dissect_neuron range[2] = {{H1, 3}, {H1, 24}}, input[1] = {{IN, 0}}, twice[3] = {{OUT, 1}, {H1, 2}, {OUT, 1}};
    soma_dissect_neuron nopop[1] = {{7, 0}};
    eo.set = range, eo.n = 2;
    expect_refused(&x, &eo, "h1[24]");
    eo.set = input, eo.n = 1;
    expect_refused(&x, &eo, "in[0]");
    eo.set = twice, eo.n = 3;
    expect_refused(&x, &eo, "out[1] is listed twice");
    eo.set = nopop, eo.n = 1;
    expect_refused(&x, &eo, "population 7");
    eo.set = range, eo.n = 0;
    expect_refused(&x, &eo, "empty");
    eo.set = range, eo.n = 1, eo.cls = NC;
    expect_refused(&x, &eo, "class=5");
    eo.cls = 1, eo.goal = 7;
    expect_refused(&x, &eo, "--goal");
    eo.goal = SOMA_DISSECT_GOAL_ENHANCE, eo.epochs = 0;
    expect_refused(&x, &eo, "--epochs");
    int g = -1;
    char err[256];
    CHECK(soma_dissect_goal_parse("erase", &g, err, sizeof err) == SOMA_STATUS_INVALID && strstr(err, "--goal 'erase'"));
    CHECK(soma_dissect_goal_parse("enhance", &g, err, sizeof err) == 0 && g == SOMA_DISSECT_GOAL_ENHANCE);
    size_t outside, inside;
    diff(net, s0, &outside, &inside);
    CHECK(outside == 0 && inside == 0); /* refused runs touch nothing */
    free(s0);
    soma_train_free(tr);
    soma_net_free(net);
}

int main(void) {
    static uint8_t xtr[NTRAIN * DIM], ytr[NTRAIN], xte[NTEST * DIM], yte[NTEST];
    soma_dataset train, test;
    make_data(&train, xtr, ytr, NTRAIN, 11);
    make_data(&test, xte, yte, NTEST, 12);
    test_freeze(SOMA_OPTIMIZER_SGD, 0.01f, &train);
    test_freeze(SOMA_OPTIMIZER_ADAM, 0.01f, &train);
    test_freeze(SOMA_OPTIMIZER_ADAMW, 0.05f, &train);
    test_edit(&train, &test);
    test_refusals(&train, &test);
    return t_report("test_dissect_edit");
}
