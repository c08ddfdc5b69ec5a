/* test_dissect_sparsify.c — activation sparsity of matrix products.
 *
 * 1. The trainer's sparse product under a MASK hook on `h->out.in` against
 *    its dense reference (threshold 0) with the same mask, for a graded
 *    (ReLU) and a spiking (LIF) source: the products (`h->out.out`, READ)
 *    agree to 1e-5 relative (not bit for bit: BLAS blocks its sums, the
 *    gather adds the kept inputs in increasing order), the sparse path is
 *    really taken (soma_train_mask_sparse_rows counts every row) and the
 *    dense one is not; a mask of ones keeps the usual path bit for bit.
 * 2. WINA, topk and TEAL masks on hand-made rows (ties to the lower index,
 *    zero scores included), TEAL's threshold from a histogram, k.
 * 3. soma_dissect_sparsify_run: sparsity 0 gives the dense predictions
 *    exactly (relative error 0, same accuracy, which is
 *    soma_train_evaluate's); at s = 0.6 WINA and topk drop at least 60 %
 *    of the inputs; a bad site is named.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

#define D 20  /* inputs */
#define H 300 /* hidden */
#define C 7   /* outputs */
#define B 24  /* samples */

static soma_net *make_net(const char *hidden_model) {
    soma_net *net = NULL;
    size_t in, hid, out;
    int st = soma_net_create(&net);
    st |= soma_net_add_pop(net, "in", "input", D, &in);
    st |= soma_net_add_pop(net, "h", hidden_model, H, &hid);
    st |= soma_net_add_pop(net, "out", "ann", C, &out);
    if (!strcmp(hidden_model, "ann")) st |= soma_net_set_param(net, hid, "activation", 0.0f); /* relu */
    else st |= soma_net_set_param(net, hid, "threshold", 0.3f);
    st |= soma_net_set_param(net, out, "activation", 2.0f); /* linear */
    st |= soma_net_connect_dense(net, in, hid, 1);
    st |= soma_net_connect_dense(net, hid, out, 1);
    st |= soma_net_init_weights(net, 7);
    CHECK_MSG(st == 0, "net: %s", soma_net_errmsg(net));
    return net;
}

static soma_trainer *trainer_for(soma_net *net, soma_data_opts *d, size_t T) {
    soma_train_opts to;
    soma_train_opts_default(&to);
    to.batch = 8; /* several chunks per batch */
    to.threads = 2;
    to.loss = SOMA_LOSS_CE_MEM;
    soma_data_opts_default(d);
    d->steps = (int)T;
    d->readout = SOMA_READOUT_MEMBRANE;
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, net, &to, d) == 0, "trainer: %s", soma_net_errmsg(net));
    return tr;
}

/* ------------------------------------------------ 1. executor */

typedef struct rec {
    float *out; /* [T][B][C] */
    size_t T;
    int ones;   /* mask of ones */
} rec;

/* Drops ~80 % of the inputs by a hash of (sample, step, input): the same
 * mask whatever the chunking. */
static int drop_cb(void *user, const soma_hook_event *ev) {
    const rec *r = user;
    if (r->ones) return 0;
    for (size_t b = 0; b < ev->batch; b++)
        for (size_t i = 0; i < ev->n; i++) {
            uint32_t k = (uint32_t)((ev->row0 + b) * 7919u + ev->step * 104729u + i * 2654435761u);
            k ^= k >> 13, k *= 0x5bd1e995u, k ^= k >> 15;
            ev->data[b * ev->n + i] = (k % 10) < 2 ? 1.0f : 0.0f;
        }
    return 0;
}
static int out_cb(void *user, const soma_hook_event *ev) {
    rec *r = user;
    memcpy(r->out + (ev->step * B + ev->row0) * C, ev->data, ev->batch * ev->n * sizeof(float));
    return 0;
}

static void run_hooked(soma_trainer *tr, const float *x, rec *r, int mask, uint8_t *pred) {
    soma_hooks *h;
    soma_hooks_create(&h);
    if (mask) soma_hooks_add(h, "h->out.in", SOMA_HOOK_MASK, drop_cb, r);
    soma_hooks_add(h, "h->out.out", SOMA_HOOK_READ, out_cb, r);
    CHECK_MSG(soma_train_set_hooks(tr, h) == 0, "hooks: %s", soma_train_errmsg(tr));
    soma_hooks_free(h);
    CHECK_MSG(soma_train_predict(tr, x, 1, B, pred) == 0, "predict: %s", soma_train_errmsg(tr));
    soma_train_set_hooks(tr, NULL);
}

static void test_executor(const char *hidden_model, size_t T) {
    soma_net *net = make_net(hidden_model);
    soma_data_opts d;
    soma_trainer *tr = trainer_for(net, &d, T);
    float x[B * D];
    uint32_t s = 12345;
    for (size_t i = 0; i < B * D; i++) s = s * 1664525u + 1013904223u, x[i] = (float)(s >> 8) / (float)(1u << 24) * 2.0f;
    rec dense = {calloc(T * B * C, sizeof(float)), T, 0}, sparse = {calloc(T * B * C, sizeof(float)), T, 0};
    rec plain = {calloc(T * B * C, sizeof(float)), T, 0}, ones = {calloc(T * B * C, sizeof(float)), T, 1};
    uint8_t pd[B], ps[B], pp[B], po[B];
    size_t r0 = soma_train_mask_sparse_rows(tr);
    /* dense reference: the same mask, the sparse path off */
    CHECK(soma_train_set_mask_sparse(tr, 0.0) == 0);
    run_hooked(tr, x, &dense, 1, pd);
    size_t r1 = soma_train_mask_sparse_rows(tr);
    CHECK_MSG(r1 == r0, "%s: the dense reference took the sparse path (%zu rows)", hidden_model, r1 - r0);
    /* the sparse path whenever the mask changed the input */
    CHECK(soma_train_set_mask_sparse(tr, 1.0) == 0);
    run_hooked(tr, x, &sparse, 1, ps);
    size_t r2 = soma_train_mask_sparse_rows(tr);
    CHECK_MSG(r2 - r1 == T * B, "%s: sparse path rows %zu, expected %zu", hidden_model, r2 - r1, T * B);
    double worst = 0, scale = 0;
    for (size_t i = 0; i < T * B * C; i++) {
        worst = fmax(worst, fabs((double)dense.out[i] - (double)sparse.out[i]));
        scale = fmax(scale, fabs((double)dense.out[i]));
    }
    CHECK_MSG(worst <= 1e-5 * fmax(1.0, scale), "%s: sparse vs dense product: max |diff| %g (scale %g)", hidden_model,
              worst, scale);
    CHECK(memcmp(pd, ps, B) == 0);
    /* the mask changed something (else the test would prove nothing) */
    run_hooked(tr, x, &plain, 0, pp);
    double moved = 0;
    for (size_t i = 0; i < T * B * C; i++) moved = fmax(moved, fabs((double)plain.out[i] - (double)dense.out[i]));
    CHECK_MSG(moved > 1e-3, "%s: the mask did not change the product", hidden_model);
    /* a mask of ones: the usual path, bit for bit, no sparse rows */
    size_t r3 = soma_train_mask_sparse_rows(tr);
    run_hooked(tr, x, &ones, 1, po);
    CHECK(soma_train_mask_sparse_rows(tr) == r3);
    CHECK(memcmp(ones.out, plain.out, T * B * C * sizeof(float)) == 0);
    CHECK(memcmp(po, pp, B) == 0);
    /* an unhooked run takes no sparse row */
    CHECK(soma_train_predict(tr, x, 1, B, po) == 0 && soma_train_mask_sparse_rows(tr) == r3);
    CHECK(memcmp(po, pp, B) == 0);
    CHECK(soma_train_set_mask_sparse(tr, SOMA_TRAIN_MASK_SPARSE_DEFAULT) == 0);
    CHECK(soma_train_set_mask_sparse(tr, 1.5) == SOMA_STATUS_INVALID);
    CHECK(strstr(soma_train_errmsg(tr), "from 0 to 1") != NULL);
    free(dense.out), free(sparse.out), free(plain.out), free(ones.out);
    soma_train_free(tr);
    soma_net_free(net);
}

/* ------------------------------------------------ 2. masks by hand */

static void check_mask(int method, const float *x, const float *cn, size_t d, size_t k, float thr, const float *want,
                       const char *what) {
    float m[16];
    CHECK(soma_sparsify_mask_row(method, x, cn, d, k, thr, m) == 0);
    CHECK_MSG(memcmp(m, want, d * sizeof(float)) == 0, "%s: mask %g %g %g %g %g %g", what, m[0], m[1], m[2], m[3],
              d > 4 ? m[4] : -1, d > 5 ? m[5] : -1);
}

static void test_masks(void) {
    const float x[6] = {0.5f, -2.0f, 0.0f, 1.0f, 1.0f, -0.25f};
    const float cn[6] = {1.0f, 0.1f, 5.0f, 2.0f, 2.0f, 4.0f};
    /* topk: |x| = .5 2 0 1 1 .25 */
    check_mask(SOMA_SPARSIFY_TOPK, x, NULL, 6, 3, 0, (const float[]){0, 1, 0, 1, 1, 0}, "topk k=3");
    check_mask(SOMA_SPARSIFY_TOPK, x, NULL, 6, 2, 0, (const float[]){0, 1, 0, 1, 0, 0}, "topk k=2 (tie 3/4 to 3)");
    check_mask(SOMA_SPARSIFY_TOPK, x, NULL, 6, 5, 0, (const float[]){1, 1, 0, 1, 1, 1}, "topk k=5");
    check_mask(SOMA_SPARSIFY_TOPK, x, NULL, 6, 0, 0, (const float[]){0, 0, 0, 0, 0, 0}, "topk k=0");
    check_mask(SOMA_SPARSIFY_TOPK, x, NULL, 6, 6, 0, (const float[]){1, 1, 1, 1, 1, 1}, "topk k=d");
    /* WINA: |x| * colnorm = .5 .2 0 2 2 1: the column norm reorders them */
    check_mask(SOMA_SPARSIFY_WINA, x, cn, 6, 3, 0, (const float[]){0, 0, 0, 1, 1, 1}, "wina k=3");
    check_mask(SOMA_SPARSIFY_WINA, x, cn, 6, 1, 0, (const float[]){0, 0, 0, 1, 0, 0}, "wina k=1 (tie 3/4 to 3)");
    check_mask(SOMA_SPARSIFY_WINA, x, cn, 6, 4, 0, (const float[]){1, 0, 0, 1, 1, 1}, "wina k=4");
    /* zero scores rank by index after every positive one */
    const float z[4] = {0, 0, 3, 0};
    check_mask(SOMA_SPARSIFY_TOPK, z, NULL, 4, 2, 0, (const float[]){1, 0, 1, 0}, "topk zero ties");
    /* TEAL: |x| >= threshold; 0 keeps all */
    check_mask(SOMA_SPARSIFY_TEAL, x, NULL, 6, 0, 1.0f, (const float[]){0, 1, 0, 1, 1, 0}, "teal t=1");
    check_mask(SOMA_SPARSIFY_TEAL, x, NULL, 6, 0, 0.0f, (const float[]){1, 1, 1, 1, 1, 1}, "teal t=0");
    CHECK(soma_sparsify_mask_row(SOMA_SPARSIFY_WINA, x, NULL, 6, 3, 0, (float[6]){0}) == SOMA_STATUS_INVALID);
    /* a longer row against a sort: the k best by (score desc, index asc) */
    float xl[300], cl[300], ml[300];
    uint32_t s = 99;
    for (size_t i = 0; i < 300; i++) {
        s = s * 1664525u + 1013904223u;
        xl[i] = (s >> 28) < 5 ? 0.0f : (float)((s >> 20) % 7) - 3.0f; /* many ties */
        cl[i] = 1.0f + (float)(i % 3);
    }
    CHECK(soma_sparsify_mask_row(SOMA_SPARSIFY_WINA, xl, cl, 300, 90, 0, ml) == 0);
    size_t kept = 0, wrong = 0;
    for (size_t i = 0; i < 300; i++) {
        size_t better = 0; /* inputs ranked before i */
        float si = fabsf(xl[i]) * cl[i];
        for (size_t j = 0; j < 300; j++) {
            float sj = fabsf(xl[j]) * cl[j];
            better += sj > si || (sj == si && j < i);
        }
        kept += ml[i] == 1.0f;
        wrong += (better < 90) != (ml[i] == 1.0f);
    }
    CHECK_MSG(kept == 90 && wrong == 0, "wina on 300 inputs: kept %zu, wrong %zu", kept, wrong);
    /* k */
    CHECK(soma_sparsify_keep_count(1000, 0.3) == 700);
    CHECK(soma_sparsify_keep_count(1000, 0.5) == 500);
    CHECK(soma_sparsify_keep_count(10, 0.95) == 0);
    CHECK(soma_sparsify_keep_count(7, 0.0) == 7);
    /* TEAL's threshold: four zeros and 1, 2, 4, 8 */
    const float v[8] = {0, 0, 0, 0, 1, 2, 4, 8};
    CHECK(soma_sparsify_teal_threshold(v, 8, 0.5) == 0.0f);  /* the zeros alone are half */
    float t = soma_sparsify_teal_threshold(v, 8, 0.625);   /* 5 of 8 below: just above 1 */
    CHECK_MSG(t > 1.0f && t <= 2.0f, "teal threshold %g", t);
    float m8[8];
    soma_sparsify_mask_row(SOMA_SPARSIFY_TEAL, v, NULL, 8, 0, t, m8);
    CHECK(m8[4] == 0 && m8[5] == 1 && m8[6] == 1 && m8[7] == 1);
    t = soma_sparsify_teal_threshold(v, 8, 0.75); /* 6 of 8 below: in (2, 4] */
    CHECK_MSG(t > 2.0f && t <= 4.0f, "teal threshold %g", t);
    CHECK(soma_sparsify_teal_threshold(v, 8, 0.95) > 8.0f); /* above every value: drops all */
    CHECK(soma_sparsify_teal_threshold(v, 8, 0.0) == 0.0f);
    int m;
    char err[256];
    CHECK(soma_sparsify_method_parse("teal", &m, err, sizeof err) == 0 && m == SOMA_SPARSIFY_TEAL);
    CHECK(soma_sparsify_method_parse("wanda", &m, err, sizeof err) == SOMA_STATUS_INVALID &&
          strstr(err, "wina, teal or topk"));
}

/* ------------------------------------------------ 3. the run */

static void test_run(void) {
    soma_net *net = make_net("ann");
    soma_data_opts d;
    soma_trainer *tr = trainer_for(net, &d, 2);
    d.encoding = SOMA_ENCODING_DIRECT;
    enum { NSMP = 50 };
    uint8_t xs[NSMP * D], ys[NSMP];
    uint32_t s = 777;
    for (size_t i = 0; i < NSMP * D; i++) s = s * 1664525u + 1013904223u, xs[i] = (uint8_t)(s >> 24);
    for (size_t i = 0; i < NSMP; i++) ys[i] = (uint8_t)(i % C);
    soma_dataset ds = {0};
    ds.n = NSMP, ds.dim = D, ds.rows = 1, ds.cols = D, ds.classes = C, ds.x = xs, ds.y = ys;
    soma_dissect_ctx cx = {tr, net, &d, &ds};
    soma_dissect_opts o;
    soma_dissect_opts_default(&o);
    o.batch = 16; /* several batches, the last one partial */
    soma_dissect_sparsify_opts so;
    soma_dissect_sparsify_opts_default(&so);
    const int methods[] = {SOMA_SPARSIFY_WINA, SOMA_SPARSIFY_TEAL, SOMA_SPARSIFY_TOPK};
    const double sp[] = {0.0, 0.6};
    so.methods = methods, so.nmethods = 3, so.sparsity = sp, so.nsparsity = 2, so.calib = &ds, so.repeats = 1;
    soma_dissect_sparsify *r = NULL;
    char err[512] = "";
    int st = soma_dissect_sparsify_run(&cx, &o, &so, &r, err, sizeof err);
    CHECK_MSG(st == 0, "run: %s", err);
    if (!st) {
        double acc;
        CHECK(soma_train_evaluate(tr, &ds, 0, &acc, NULL) == 0);
        CHECK_NEAR(r->dense_accuracy, acc, 0);
        CHECK(r->nsites == 1 && !strcmp(r->sites[0], "h->out") && r->nrows == 6);
        for (size_t c = 0; c < r->nrows; c++) {
            const soma_dissect_sparsify_row *w = &r->rows[c];
            if (w->sparsity == 0.0) {
                CHECK_MSG(w->rel_error == 0.0 && w->accuracy == r->dense_accuracy && w->achieved == r->dense_sparsity,
                          "%s at s=0: error %g, accuracy %g vs %g", soma_sparsify_method_name(w->method), w->rel_error,
                          w->accuracy, r->dense_accuracy);
                CHECK(w->sparse_path == 0.0);
            } else if (w->method != SOMA_SPARSIFY_TEAL) {
                CHECK_MSG(w->achieved >= 0.6 - 1e-12 && w->rel_error > 0, "%s at 0.6: achieved %g",
                          soma_sparsify_method_name(w->method), w->achieved);
            } else CHECK_MSG(fabs(w->achieved - 0.6) < 0.1, "teal at 0.6: achieved %g", w->achieved);
            CHECK(isfinite(w->eval_s) && w->eval_s > 0);
        }
        const char *dir = t_tmpdir("dissect_sparsify");
        CHECK_MSG(soma_dissect_write_sparsify(r, "m.soma", dir, err, sizeof err) == 0, "write: %s", err);
        char p[1024];
        size_t n = 0;
        snprintf(p, sizeof p, "%s/result.json", dir);
        char *js = t_read_file(p, &n);
        CHECK(js && strstr(js, "\"method\": \"wina\"") && strstr(js, "\"teal_threshold\""));
        free(js);
        snprintf(p, sizeof p, "%s/sparsify.png", dir);
        void *png = t_read_file(p, &n);
        CHECK(png && n > 100);
        free(png);
    }
    soma_dissect_sparsify_free(r);
    /* bad sites are named */
    const char *bad[] = {"in->h"};
    so.sites = bad, so.nsites = 1;
    CHECK(soma_dissect_sparsify_run(&cx, &o, &so, &r, err, sizeof err) == SOMA_STATUS_INVALID && strstr(err, "in->h") &&
          strstr(err, "hidden population"));
    const char *none[] = {"h->nope"};
    so.sites = none;
    CHECK(soma_dissect_sparsify_run(&cx, &o, &so, &r, err, sizeof err) == SOMA_STATUS_NOTFOUND && strstr(err, "h->nope"));
    soma_train_free(tr);
    soma_net_free(net);
}

int main(void) {
    test_masks();
    test_executor("ann", 1);
    test_executor("ann", 3);
    test_executor("lif", 4);
    test_run();
    return t_report("test_dissect_sparsify");
}
