/* test_train_selfproj.c — a sparse projection of a population onto itself
 * (a connector from h to h) trained as h's recurrent weights with a fixed
 * 0/1 mask (src/train/sparse.c draws it; trainer.c runs it as the
 * population's recurrence on the previous step's spikes).
 *
 *  a. The mask: after Adam steps the absent synapses of h -> h are exactly
 *     0 and most present ones moved.
 *  b. Gradients: in -> h (ann, linear, h -> h fixed_probability) -> out
 *     (lif). Loss and output spikes against a forward pass in double
 *     (h[t] = W x[t] + b + R h[t-1]); every present weight of R against
 *     fourth-order central differences of the trainer's loss (perturbations
 *     that flip an output spike skipped); absent ones' gradients exactly 0.
 *  c. The trainer's drawn pairs and weights equal the simulator's synapses
 *     (soma_sim_write_connectivity) for small_world and fixed_probability.
 *  d. Trained on Fashion-MNIST, the net gives the trainer's output counts
 *     in the simulator (which delays the projection by one step), also
 *     after a model file round trip.
 *  e. Refused by name: a self-projection beside recurrent: true, two
 *     self-projections, a delay other than one step.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

static char tmp[512];

static soma_tensor tensor(soma_net *net, const char *name) {
    soma_tensor t;
    memset(&t, 0, sizeof t);
    CHECK_MSG(soma_net_tensor_find(net, name, &t) == 0, "no tensor %s: %s", name, soma_net_errmsg(net));
    return t;
}

static void random_batch(float *x, size_t nx, uint8_t *y, size_t B, size_t classes, uint64_t seed) {
    soma_rng rng;
    soma_rng_init(&rng, seed, 0);
    for (size_t i = 0; i < nx; i++) x[i] = soma_rng_uniform(&rng);
    for (size_t b = 0; b < B; b++) y[b] = (uint8_t)(soma_rng_u32(&rng) % classes);
}

/* ------------------------------------------------------------ a. mask */
static void test_mask(void) {
    enum { D = 16, H = 24, O = 4, B = 8, T = 8 };
    soma_net *net = NULL;
    CHECK(soma_net_create(&net) == 0);
    size_t in, h, out;
    soma_net_add_pop(net, "in", "input", D, &in);
    soma_net_add_pop(net, "h", "lif", H, &h);
    soma_net_add_pop(net, "out", "lif", O, &out);
    soma_net_connect_dense(net, in, h, 1);
    soma_connector c;
    soma_connector_default(&c, SOMA_CONN_RULE_SMALL_WORLD);
    c.k = 4;
    c.p = 0.2;
    CHECK_MSG(soma_net_connect(net, h, h, &c, "uniform(0.2, 0.6)", NULL, SOMA_PORT_BY_SIGN, NULL) == 0, "%s",
              soma_net_errmsg(net));
    soma_net_connect_dense(net, h, out, 1);
    soma_train_opts to;
    soma_data_opts d;
    soma_train_opts_default(&to);
    soma_data_opts_default(&d);
    to.batch = B;
    to.threads = 1;
    to.optimizer = SOMA_OPTIMIZER_ADAM;
    to.lr = 0.05f;
    to.seed = 3;
    d.steps = T;
    /* Enough input that h spikes, so that its recurrence carries gradient. */
    CHECK(soma_net_init_weights(net, 2) == 0);
    soma_tensor wi = tensor(net, "in->h.weight");
    for (size_t k = 0; k < wi.rows * wi.cols; k++) wi.data[k] = 0.3f * wi.data[k] + 0.08f;
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, net, &to, &d) == 0, "%s", soma_net_errmsg(net));
    if (!tr) {
        soma_net_free(net);
        return;
    }
    soma_tensor w = tensor(net, "h->h.weight");
    CHECK(w.rows == H && w.cols == H);
    float w0[H * H];
    memcpy(w0, w.data, sizeof w0);
    size_t present = 0;
    for (size_t k = 0; k < H * H; k++) present += w0[k] != 0.0f; /* drawn weights are >= 0.2 */
    CHECK_MSG(present >= H * 3 && present <= H * 4, "%zu synapses of small_world k = 4", present);
    float x[T * B * D];
    uint8_t y[B];
    for (int step = 0; step < 6; step++) {
        random_batch(x, sizeof x / sizeof x[0], y, B, O, 100 + (uint64_t)step);
        CHECK(soma_train_grad(tr, x, 0, y, B, NULL, NULL) == 0);
        CHECK(soma_train_apply(tr) == 0);
    }
    size_t moved = 0, leaked = 0;
    for (size_t k = 0; k < H * H; k++) {
        if (w0[k] == 0.0f) leaked += w.data[k] != 0.0f;
        else moved += w.data[k] != w0[k];
    }
    CHECK_MSG(leaked == 0, "%zu absent synapses of h -> h took a weight", leaked);
    CHECK_MSG(moved * 10 >= present * 9, "only %zu of %zu present synapses of h -> h moved", moved, present);
    soma_train_free(tr);
    soma_net_free(net);
}

/* ---------------------------------------------------- b. gradients */
enum { GD = 8, GH = 6, GO = 4, GB = 10, GT = 6 };

static soma_net *grad_net(void) {
    soma_net *net = NULL;
    if (soma_net_create(&net)) return NULL;
    size_t in, h, out;
    int st = soma_net_add_pop(net, "in", "input", GD, &in);
    st |= soma_net_add_pop(net, "h", "ann", GH, &h);
    st |= soma_net_set_param(net, h, "activation", 2.0f); /* linear */
    st |= soma_net_add_pop(net, "out", "lif", GO, &out);
    st |= soma_net_set_param(net, out, "beta", 0.85f);
    st |= soma_net_set_param(net, out, "threshold", 1.0f);
    st |= soma_net_connect_dense(net, in, h, 1);
    soma_connector c;
    soma_connector_default(&c, SOMA_CONN_RULE_FIXED_PROBABILITY);
    c.p = 0.5;
    st |= soma_net_connect(net, h, h, &c, "uniform(-0.5, 0.5)", NULL, SOMA_PORT_BY_SIGN, NULL);
    st |= soma_net_connect_dense(net, h, out, 1);
    st |= soma_net_init_weights(net, 4);
    CHECK_MSG(st == 0, "building the gradient net: %s", soma_net_errmsg(net));
    if (!st) { /* the output spikes now and then, so that its reset takes part */
        soma_tensor b2 = tensor(net, "h->out.bias");
        for (size_t j = 0; j < GO; j++) b2.data[j] += 0.6f;
    }
    return st ? (soma_net_free(net), NULL) : net;
}

static void grad_opts(soma_train_opts *to, soma_data_opts *d) {
    soma_train_opts_default(to);
    to->loss = SOMA_LOSS_CE_MEM;
    to->batch = GB;
    to->threads = 1;
    to->seed = 5;
    soma_data_opts_default(d);
    d->steps = GT;
}

static double fresh_loss(soma_net *net, const float *x, const uint8_t *y, uint8_t *spk) {
    soma_train_opts to;
    soma_data_opts d;
    grad_opts(&to, &d);
    soma_trainer *tr = NULL;
    if (soma_train_create(&tr, net, &to, &d)) return NAN;
    double loss = NAN;
    CHECK(soma_train_grad(tr, x, 0, y, GB, &loss, NULL) == 0);
    CHECK(soma_train_record(tr, x, 0, GB, 2, spk) == 0);
    soma_train_free(tr);
    return loss;
}

static double ref_loss(soma_net *net, const float *x, const uint8_t *y, uint8_t *spk, double *margin) {
    soma_tensor w1 = tensor(net, "in->h.weight"), b1 = tensor(net, "in->h.bias"), R = tensor(net, "h->h.weight"),
                w2 = tensor(net, "h->out.weight"), b2 = tensor(net, "h->out.bias");
    double total = 0.0, mg = INFINITY;
    for (size_t b = 0; b < GB; b++) {
        double h[GH] = {0}, hp[GH] = {0}, u[GO] = {0};
        for (size_t t = 0; t < GT; t++) {
            const float *xr = x + (t * GB + b) * GD;
            for (size_t j = 0; j < GH; j++) {
                double a = b1.data[j];
                for (size_t i = 0; i < GD; i++) a += (double)w1.data[j * GD + i] * xr[i];
                for (size_t i = 0; i < GH; i++) a += (double)R.data[j * GH + i] * hp[i];
                h[j] = a;
            }
            memcpy(hp, h, sizeof h);
            double mx = -INFINITY, sum = 0.0;
            for (size_t j = 0; j < GO; j++) {
                double a = b2.data[j];
                for (size_t i = 0; i < GH; i++) a += (double)w2.data[j * GH + i] * h[i];
                double r = u[j] > 1.0 ? 1.0 : 0.0;
                u[j] = 0.85 * u[j] + a - r;
                spk[(t * GB + b) * GO + j] = u[j] > 1.0;
                mg = fmin(mg, fabs(u[j] - 1.0));
                mx = fmax(mx, u[j]);
            }
            for (size_t j = 0; j < GO; j++) sum += exp(u[j] - mx);
            total += (mx + log(sum) - u[y[b]]) / (double)GT;
        }
    }
    *margin = mg;
    return total / (double)GB;
}

static int zero_cb(void *u, const soma_hook_event *ev) {
    (void)u;
    memset(ev->data, 0, ev->batch * ev->n * sizeof(float));
    return 0;
}

static void test_gradients(void) {
    soma_net *net = grad_net();
    if (!net) return;
    float x[GT * GB * GD];
    uint8_t y[GB];
    random_batch(x, sizeof x / sizeof x[0], y, GB, GO, 9);
    soma_train_opts to;
    soma_data_opts d;
    grad_opts(&to, &d);
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, net, &to, &d) == 0, "%s", soma_net_errmsg(net));
    if (!tr) {
        soma_net_free(net);
        return;
    }
    double loss0 = NAN, margin = 0.0;
    CHECK(soma_train_grad(tr, x, 0, y, GB, &loss0, NULL) == 0);
    static uint8_t spk0[GT * GB * GO], spk[GT * GB * GO], rspk[GT * GB * GO];
    CHECK(soma_train_record(tr, x, 0, GB, 2, spk0) == 0);
    double lref = ref_loss(net, x, y, rspk, &margin);
    CHECK_MSG(fabs(loss0 - lref) <= 1e-5 * fabs(lref), "loss %.9g, double reference %.9g", loss0, lref);
    CHECK_MSG(margin > 1e-4 && !memcmp(rspk, spk0, sizeof spk0), "output spikes differ from the reference (margin %g)",
              margin);
    size_t nspk = 0;
    for (size_t i = 0; i < sizeof spk0; i++) nspk += spk0[i];
    CHECK_MSG(nspk > 0, "no output spikes");
    soma_tensor R = tensor(net, "h->h.weight");
    size_t idx = 0;
    for (; idx < soma_net_tensor_count(net); idx++) {
        soma_tensor t;
        soma_net_tensor(net, idx, &t);
        if (t.data == R.data) break;
    }
    soma_tensor tg;
    CHECK(soma_train_tensor(tr, idx, &tg) == 0 && tg.data == R.data);
    size_t checked = 0, skipped = 0, absent = 0, nonzero = 0;
    double gmax = 0.0;
    for (size_t e = 0; e < GH * GH; e++) gmax = fmax(gmax, fabs(tg.grad[e]));
    for (size_t e = 0; e < GH * GH; e++) {
        float w0 = R.data[e], g = tg.grad[e];
        if (w0 == 0.0f) { /* drawn weights are nonzero: an absent synapse */
            absent++;
            CHECK_MSG(g == 0.0f, "absent synapse %zu of h -> h has gradient %g", e, (double)g);
            continue;
        }
        static const double hs[3] = {1e-2, 2e-3, 5e-4};
        static const double mult[4] = {1, -1, 2, -2};
        double f[4], h = 0.0;
        int flipped = 1;
        for (int k = 0; k < 3 && flipped; k++) {
            h = hs[k] * fmax(1.0, fabs(w0));
            flipped = 0;
            for (int q = 0; q < 4 && !flipped; q++) {
                R.data[e] = (float)(w0 + mult[q] * h);
                f[q] = fresh_loss(net, x, y, spk);
                if (memcmp(spk, spk0, (GT - 1) * GB * GO) != 0) flipped = 1;
            }
        }
        R.data[e] = w0;
        if (flipped) {
            skipped++;
            continue;
        }
        checked++;
        nonzero += g != 0.0f;
        double fd = (8.0 * (f[0] - f[1]) - (f[2] - f[3])) / (12.0 * h);
        double scale = fmax(fmax(fabs(g), 1e-2 * gmax), 1e-9), noise = 4e-7 * fabs(loss0) / h;
        CHECK_MSG(fabs(g - fd) <= 5e-3 * scale + noise, "d loss / d h->h.weight[%zu] = %.7g, finite difference %.7g", e,
                  (double)g, fd);
    }
    printf("h -> h gradients: %zu checked against finite differences, %zu skipped, %zu absent (exactly 0)\n", checked,
           skipped, absent);
    CHECK_MSG(checked >= 8 && skipped * 5 <= checked && nonzero * 10 >= checked * 9 && absent > 0,
              "%zu checked (%zu nonzero), %zu skipped, %zu absent", checked, nonzero, skipped, absent);
    /* Its sites are the recurrent weights': MASK 0 at h->h.out = the net with R = 0. */
    soma_hooks *hk = NULL;
    CHECK(soma_hooks_create(&hk) == 0);
    CHECK(soma_hooks_add(hk, "h->h.out", SOMA_HOOK_MASK, zero_cb, NULL) == 0);
    CHECK_MSG(soma_train_set_hooks(tr, hk) == 0, "%s", soma_train_errmsg(tr));
    soma_hooks_free(hk);
    double lm = NAN;
    CHECK(soma_train_grad(tr, x, 0, y, GB, &lm, NULL) == 0);
    float r0[GH * GH];
    memcpy(r0, R.data, sizeof r0);
    memset(R.data, 0, sizeof r0);
    double lz = fresh_loss(net, x, y, spk);
    memcpy(R.data, r0, sizeof r0);
    CHECK_MSG(fabs(lm - lz) <= 1e-6 * fabs(lz) && fabs(lz - loss0) > 1e-4, "MASK 0 at h->h.out: loss %.9g; with R = 0 "
              "%.9g; with R %.9g", lm, lz, loss0);
    soma_train_free(tr);
    soma_net_free(net);
}

/* ------------------------------------------------- c. instantiation */
enum { NIN = 6, NA = 30 };

static soma_net *inst_net(const soma_connector *c) {
    soma_net *net = NULL;
    if (soma_net_create(&net)) return NULL;
    size_t in, a;
    int st = soma_net_add_pop(net, "in", "input", NIN, &in);
    st |= soma_net_add_pop(net, "a", "lif", NA, &a);
    st |= soma_net_connect_dense(net, in, a, 1);
    if (st || soma_net_connect(net, a, a, c, "uniform(0.1, 1.0)", NULL, SOMA_PORT_BY_SIGN, NULL)) {
        CHECK_MSG(0, "building: %s", soma_net_errmsg(net));
        soma_net_free(net);
        return NULL;
    }
    return net;
}

static void check_rule(const char *label, const soma_connector *c, uint64_t seed) {
    soma_net *ns = inst_net(c), *nt = inst_net(c);
    if (!ns || !nt) goto out;
    CHECK(soma_net_init_weights(ns, 1) == 0);
    soma_sim_opts so;
    soma_sim_opts_default(&so);
    so.seed = seed;
    soma_sim *sim = NULL;
    char err[512], path[1024];
    CHECK_MSG(soma_sim_create(&sim, ns, &so, err, sizeof err) == 0, "%s: %s", label, err);
    if (!sim) goto out;
    snprintf(path, sizeof path, "%s/conn.csv", tmp);
    CHECK(soma_sim_write_connectivity(sim, path) == 0);
    soma_sim_free(sim);
    static double ws[NA * NA];
    static int cnt[NA * NA];
    memset(ws, 0, sizeof ws);
    memset(cnt, 0, sizeof cnt);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) goto out;
    char line[256];
    size_t nsyn = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long pre, post;
        double w, dl;
        if (sscanf(line, "%lu,%lu,%lf,%lf", &pre, &post, &w, &dl) != 4) continue; /* the header */
        if (pre < NIN) continue; /* in -> a */
        CHECK_MSG(pre < NIN + NA && post >= NIN && post < NIN + NA, "%s: synapse %lu -> %lu", label, pre, post);
        if (!(pre < NIN + NA && post >= NIN && post < NIN + NA)) continue;
        size_t k = (post - NIN) * NA + (pre - NIN);
        ws[k] += w;
        cnt[k]++;
        nsyn++;
    }
    fclose(f);
    soma_train_opts to;
    soma_data_opts d;
    soma_train_opts_default(&to);
    soma_data_opts_default(&d);
    to.batch = 4;
    to.threads = 1;
    to.seed = seed;
    d.steps = 4;
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, nt, &to, &d) == 0, "%s: %s", label, soma_net_errmsg(nt));
    if (!tr) goto out;
    soma_tensor w = tensor(nt, "a->a.weight");
    size_t pairs = 0, bad = 0;
    for (size_t k = 0; k < NA * NA; k++) {
        pairs += cnt[k] > 0;
        int same = cnt[k] ? fabs((double)w.data[k] - ws[k]) <= 1e-6 * fmax(1.0, ws[k]) : w.data[k] == 0.0f;
        bad += !same;
    }
    CHECK_MSG(bad == 0, "%s: %zu of %d pairs differ from the simulator's synapses", label, bad, NA * NA);
    CHECK_MSG(nsyn > 0, "%s: no synapses", label);
    printf("%s: %zu synapses on %zu pairs of a -> a equal the simulator's\n", label, nsyn, pairs);
    soma_train_free(tr);
out:
    soma_net_free(ns);
    soma_net_free(nt);
}

static void test_instantiation(void) {
    soma_connector c;
    soma_connector_default(&c, SOMA_CONN_RULE_SMALL_WORLD);
    c.k = 4;
    c.p = 0.3;
    check_rule("small_world", &c, 7);
    soma_connector_default(&c, SOMA_CONN_RULE_FIXED_PROBABILITY);
    c.p = 0.2;
    check_rule("fixed_probability", &c, 8);
}

/* ------------------------------------------------------ e. refusals */
static void refused(soma_net *net, const char *want, const char *want2) {
    soma_train_opts to;
    soma_data_opts d;
    soma_train_opts_default(&to);
    soma_data_opts_default(&d);
    to.batch = 4;
    d.steps = 4;
    soma_trainer *tr = NULL;
    int st = soma_train_create(&tr, net, &to, &d);
    CHECK_MSG(st == SOMA_STATUS_UNSUPPORTED && strstr(soma_net_errmsg(net), want) && strstr(soma_net_errmsg(net), want2),
              "expected a refusal naming '%s' and '%s'; got %d: %s", want, want2, st, soma_net_errmsg(net));
    soma_train_free(tr);
    soma_net_free(net);
}

static void test_refusals(void) {
    soma_connector c;
    soma_connector_default(&c, SOMA_CONN_RULE_FIXED_PROBABILITY);
    c.p = 0.3;
    soma_net *net = inst_net(&c);
    if (net) {
        soma_net_set_recurrent(net, 1, 1);
        refused(net, "a -> a", "recurrent: true");
    }
    net = inst_net(&c);
    if (net) {
        CHECK(soma_net_connect(net, 1, 1, &c, "0.5", NULL, SOMA_PORT_BY_SIGN, NULL) == 0);
        refused(net, "both connect a -> a", "");
    }
    net = NULL;
    size_t in, a;
    soma_net_create(&net);
    soma_net_add_pop(net, "in", "input", NIN, &in);
    soma_net_add_pop(net, "a", "lif", NA, &a);
    soma_net_connect_dense(net, in, a, 1);
    CHECK(soma_net_connect(net, a, a, &c, "0.5", "2ms", SOMA_PORT_BY_SIGN, NULL) == 0);
    refused(net, "a -> a: delay", "one step");
}

/* ------------------------------------ d. trained, then in the simulator */
enum { NS = 100 };

static void test_trained_in_sim(void) {
    soma_data_opts d;
    soma_data_opts_default(&d);
    snprintf(d.dataset, sizeof d.dataset, "fashion-mnist");
    d.encoding = SOMA_ENCODING_RATE;
    d.steps = 12;
    d.limit_train = 1280;
    d.limit_test = NS;
    soma_dataset train, test;
    char err[512];
    int rc = soma_data_load(&d, &train, &test, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc) return;
    soma_net *net, *loaded = NULL;
    soma_net_create(&net);
    size_t in, h, out;
    soma_net_add_pop(net, "in", "input", 784, &in);
    soma_net_add_pop(net, "h", "lif", 100, &h);
    soma_net_set_param(net, h, "beta", 0.9f);
    soma_net_add_pop(net, "out", "lif", 10, &out);
    soma_net_connect_dense(net, in, h, 1);
    soma_connector c;
    soma_connector_default(&c, SOMA_CONN_RULE_FIXED_PROBABILITY);
    c.p = 0.1;
    CHECK(soma_net_connect(net, h, h, &c, "uniform(-0.2, 0.4)", NULL, SOMA_PORT_BY_SIGN, NULL) == 0);
    soma_net_connect_dense(net, h, out, 1);
    soma_train_opts o;
    soma_train_opts_default(&o);
    o.batch = 64;
    o.threads = 2;
    o.seed = 11;
    o.lr = 2e-3f;
    soma_trainer *tr = NULL;
    rc = soma_train_create(&tr, net, &o, &d);
    CHECK_MSG(rc == 0, "%s", soma_net_errmsg(net));
    if (rc) goto out;
    soma_epoch_result res;
    CHECK(soma_train_epoch(tr, &train, 0, NULL, NULL, &res) == 0);
    size_t T = (size_t)d.steps, idx[NS];
    for (size_t k = 0; k < NS; k++) idx[k] = k;
    float *x = malloc(soma_encode_size(&d, &test, NS) * sizeof(float));
    uint8_t *spk = malloc(T * NS * 10);
    static uint32_t ref[NS][10], got[NS][10];
    int tc;
    CHECK(soma_encode(&d, &test, idx, NS, o.seed, SOMA_EVAL_STREAM, x, &tc) == 0);
    CHECK(soma_train_record(tr, x, tc, NS, out, spk) == 0);
    memset(ref, 0, sizeof ref);
    long total = 0;
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < NS; b++)
            for (size_t k = 0; k < 10; k++) ref[b][k] += spk[(t * NS + b) * 10 + k], total += spk[(t * NS + b) * 10 + k];
    rc = soma_sim_run_samples(net, &d, &test, idx, NS, o.seed, 2, &got[0][0], err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    size_t same = 0;
    long diff = 0;
    for (size_t b = 0; b < NS; b++) {
        int eq = 1;
        for (size_t k = 0; k < 10; k++) {
            eq &= ref[b][k] == got[b][k];
            diff += labs((long)ref[b][k] - (long)got[b][k]);
        }
        same += (size_t)eq;
    }
    printf("self-projection net trained one epoch (loss %.4f): %zu of %d samples with identical output counts in the "
           "simulator; %ld of %ld spikes differ\n", res.loss, same, NS, diff, total);
    CHECK_MSG(total > 2 * NS, "only %ld output spikes: nothing to compare", total);
    CHECK_MSG(same >= 97 && (double)diff <= 0.005 * (double)total, "%zu identical, %ld of %ld spikes differ", same, diff,
              total);
    /* The model file keeps the trained recurrent weights (zeros off the drawn synapses). */
    char path[1024];
    static uint32_t got2[NS][10];
    snprintf(path, sizeof path, "%s/selfproj.soma", tmp);
    CHECK_MSG(soma_model_save(path, net, &d, &o, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(soma_model_load(path, &loaded, NULL, NULL, err, sizeof err) == 0, "%s", err);
    if (loaded) {
        soma_tensor a = tensor(net, "h->h.weight"), b = tensor(loaded, "h->h.weight");
        CHECK(a.data && b.data && a.rows == b.rows && a.cols == b.cols &&
              !memcmp(a.data, b.data, a.rows * a.cols * sizeof(float)));
        rc = soma_sim_run_samples(loaded, &d, &test, idx, NS, o.seed, 1, &got2[0][0], err, sizeof err);
        CHECK_MSG(rc == 0, "%s", err);
        CHECK_MSG(!memcmp(got, got2, sizeof got), "the loaded model's simulator counts differ");
    }
    free(x);
    free(spk);
out:
    soma_train_free(tr);
    soma_net_free(net);
    soma_net_free(loaded);
    soma_data_free(&train);
    soma_data_free(&test);
}

int main(void) {
    const char *dir = t_tmpdir("test_train_selfproj");
    if (!dir) return 1;
    snprintf(tmp, sizeof tmp, "%s", dir);
    test_mask();
    test_gradients();
    test_instantiation();
    test_refusals();
    test_trained_in_sim();
    return t_report("test_train_selfproj");
}
