/* test_train_sparse.c — the trainer on projections drawn by a connector
 * (src/train/sparse.c): each is drawn as the simulator draws it and trained
 * as a dense matrix whose absent synapses stay exactly 0.
 *
 *  a. The mask: after several Adam and AdamW steps (with weight decay) the
 *     absent synapses are exactly 0 and most present ones moved.
 *  b. Gradients: in -> h (ann, linear) by fixed_probability, h -> out (lif)
 *     one_to_one. The loss and output spikes against a forward pass in
 *     double written here from the equations; every present weight's
 *     gradient against fourth-order central differences of the trainer's
 *     loss (entries whose perturbation flips an output spike skipped, as in
 *     test_train_dag.c); every absent weight's gradient exactly 0.
 *  c. Instantiation: for each rule the trainer accepts, its weight matrix
 *     holds what the simulator draws with the same seed (read back through
 *     soma_sim_write_connectivity): the same pairs, multapses summed, the
 *     same per-synapse weights. What the trainer refuses is refused by name
 *     and leaves the net sparse.
 *  d. A trained sparse network (Fashion-MNIST, fixed_probability from the
 *     input, fixed_indegree to the output) in the simulator gives the
 *     trainer's output spike counts, also after a model file round trip.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

/* ------------------------------------------------------------ helpers */
static char tmp[512]; /* this run's scratch directory (t_tmpdir empties it: called once) */

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
static void test_mask(int optimizer) {
    enum { D = 16, H = 24, O = 4, B = 8, T = 8 };
    soma_net *net = NULL;
    CHECK(soma_net_create(&net) == 0);
    size_t in, h, out;
    soma_net_add_pop(net, "in", "input", D, &in);
    soma_net_add_pop(net, "h", "lif", H, &h);
    soma_net_add_pop(net, "out", "lif", O, &out);
    soma_connector c;
    soma_connector_default(&c, SOMA_CONN_RULE_FIXED_PROBABILITY);
    c.p = 0.3;
    CHECK_MSG(soma_net_connect(net, in, h, &c, "uniform(0.2, 0.6)", NULL, SOMA_PORT_BY_SIGN, NULL) == 0, "%s",
              soma_net_errmsg(net));
    soma_net_connect_dense(net, h, out, 1);
    soma_train_opts to;
    soma_data_opts d;
    soma_train_opts_default(&to);
    soma_data_opts_default(&d);
    to.batch = B;
    to.threads = 1;
    to.optimizer = optimizer;
    to.lr = 0.05f;
    to.weight_decay = 0.1f;
    to.seed = 3;
    d.steps = T;
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, net, &to, &d) == 0, "%s", soma_net_errmsg(net));
    if (!tr) {
        soma_net_free(net);
        return;
    }
    soma_tensor w = tensor(net, "in->h.weight");
    CHECK(w.rows == H && w.cols == D);
    float w0[H * D];
    memcpy(w0, w.data, sizeof w0);
    size_t present = 0;
    for (size_t k = 0; k < H * D; k++) present += w0[k] != 0.0f; /* drawn weights are >= 0.2 */
    CHECK_MSG(present > H * D / 8 && present < H * D / 2, "%zu of %d synapses at p = 0.3", present, H * D);
    float x[T * B * D];
    uint8_t y[B];
    for (int step = 0; step < 6; step++) {
        random_batch(x, sizeof x / sizeof x[0], y, B, O, 100 + (uint64_t)step);
        CHECK(soma_train_grad(tr, x, 0, y, B, NULL, NULL) == 0);
        CHECK(soma_train_apply(tr) == 0);
    }
    size_t moved = 0, leaked = 0;
    for (size_t k = 0; k < H * D; k++) {
        if (w0[k] == 0.0f) leaked += w.data[k] != 0.0f;
        else moved += w.data[k] != w0[k];
    }
    CHECK_MSG(leaked == 0, "optimizer %d: %zu absent synapses took a weight", optimizer, leaked);
    CHECK_MSG(moved * 10 >= present * 9, "optimizer %d: only %zu of %zu present synapses moved", optimizer, moved,
              present);
    soma_train_free(tr);
    soma_net_free(net);
}

/* ---------------------------------------------------- b. gradients */
enum { GD = 12, GH = 6, GB = 10, GT = 6 };

static soma_net *grad_net(void) {
    soma_net *net = NULL;
    if (soma_net_create(&net)) return NULL;
    size_t in, h, out;
    int st = soma_net_add_pop(net, "in", "input", GD, &in);
    st |= soma_net_add_pop(net, "h", "ann", GH, &h);
    st |= soma_net_set_param(net, h, "activation", 2.0f); /* linear */
    st |= soma_net_add_pop(net, "out", "lif", GH, &out);
    st |= soma_net_set_param(net, out, "beta", 0.85f);
    st |= soma_net_set_param(net, out, "threshold", 1.0f);
    soma_connector c;
    soma_connector_default(&c, SOMA_CONN_RULE_FIXED_PROBABILITY);
    c.p = 0.5;
    st |= soma_net_connect(net, in, h, &c, "uniform(-0.4, 0.9)", NULL, SOMA_PORT_BY_SIGN, NULL);
    soma_connector_default(&c, SOMA_CONN_RULE_ONE_TO_ONE);
    st |= soma_net_connect(net, h, out, &c, "uniform(0.3, 0.8)", NULL, SOMA_PORT_BY_SIGN, NULL);
    CHECK_MSG(st == 0, "building the gradient net: %s", soma_net_errmsg(net));
    return st ? (soma_net_free(net), NULL) : net;
}

static void grad_opts(soma_train_opts *to, soma_data_opts *d) {
    soma_train_opts_default(to);
    to->loss = SOMA_LOSS_CE_MEM;
    to->batch = GB;
    to->threads = 1;
    to->seed = 9;
    soma_data_opts_default(d);
    d->steps = GT;
}

static double fresh_loss(soma_net *net, const float *x, const uint8_t *y, uint8_t *spk) {
    soma_train_opts to;
    soma_data_opts d;
    grad_opts(&to, &d);
    soma_trainer *tr = NULL;
    if (soma_train_create(&tr, net, &to, &d)) {
        CHECK_MSG(0, "soma_train_create: %s", soma_net_errmsg(net));
        return NAN;
    }
    double loss = NAN;
    CHECK(soma_train_grad(tr, x, 0, y, GB, &loss, NULL) == 0);
    CHECK(soma_train_record(tr, x, 0, GB, 2, spk) == 0);
    soma_train_free(tr);
    return loss;
}

/* The net in double: h = W1 x (linear), out: I = W2 h, U = 0.85 U + I - R,
 * S = U > 1, reset by subtraction; ce_mem averaged over steps and samples. */
static double ref_loss(const float *W1, const float *W2, const float *x, const uint8_t *y, uint8_t *spk,
                       double *margin) {
    double total = 0.0, mg = INFINITY;
    for (size_t b = 0; b < GB; b++) {
        double u[GH] = {0};
        for (size_t t = 0; t < GT; t++) {
            const float *xr = x + (t * GB + b) * GD;
            double hv[GH], mx = -INFINITY, sum = 0.0;
            for (size_t j = 0; j < GH; j++) {
                hv[j] = 0.0;
                for (size_t i = 0; i < GD; i++) hv[j] += (double)W1[j * GD + i] * xr[i];
            }
            for (size_t j = 0; j < GH; j++) {
                double in = 0.0;
                for (size_t i = 0; i < GH; i++) in += (double)W2[j * GH + i] * hv[i];
                double r = u[j] > 1.0 ? 1.0 : 0.0;
                u[j] = 0.85 * u[j] + in - r;
                spk[(t * GB + b) * GH + j] = u[j] > 1.0;
                mg = fmin(mg, fabs(u[j] - 1.0));
                mx = fmax(mx, u[j]);
            }
            for (size_t j = 0; j < GH; j++) sum += exp(u[j] - mx);
            total += (mx + log(sum) - u[y[b]]) / (double)GT;
        }
    }
    *margin = mg;
    return total / (double)GB;
}

static void test_gradients(void) {
    soma_net *net = grad_net();
    if (!net) return;
    float x[GT * GB * GD];
    uint8_t y[GB];
    random_batch(x, sizeof x / sizeof x[0], y, GB, GH, 17);
    soma_train_opts to;
    soma_data_opts d;
    grad_opts(&to, &d);
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, net, &to, &d) == 0, "%s", soma_net_errmsg(net));
    if (!tr) {
        soma_net_free(net);
        return;
    }
    double loss0 = NAN;
    CHECK(soma_train_grad(tr, x, 0, y, GB, &loss0, NULL) == 0);
    uint8_t spk0[GT * GB * GH], spk[GT * GB * GH], rspk[GT * GB * GH];
    CHECK(soma_train_record(tr, x, 0, GB, 2, spk0) == 0);
    soma_tensor w1 = tensor(net, "in->h.weight"), w2 = tensor(net, "h->out.weight");
    /* one_to_one: exactly the diagonal. */
    size_t offdiag = 0;
    for (size_t j = 0; j < GH; j++)
        for (size_t i = 0; i < GH; i++) offdiag += (i != j) != (w2.data[j * GH + i] == 0.0f);
    CHECK_MSG(offdiag == 0, "one_to_one: %zu entries off the diagonal pattern", offdiag);
    double margin = 0.0;
    double lref = ref_loss(w1.data, w2.data, x, y, rspk, &margin);
    CHECK_MSG(fabs(loss0 - lref) <= 1e-5 * fabs(lref), "loss %.9g, double reference %.9g", loss0, lref);
    CHECK_MSG(margin > 1e-4, "a membrane within %g of the threshold", margin);
    CHECK_MSG(memcmp(rspk, spk0, sizeof spk0) == 0, "output spikes differ from the reference");
    size_t nspk = 0;
    for (size_t i = 0; i < sizeof spk0; i++) nspk += spk0[i];
    CHECK_MSG(nspk > 0, "no output spikes");

    size_t checked = 0, skipped = 0;
    for (size_t ti = 0; ti < soma_net_tensor_count(net); ti++) {
        soma_tensor t;
        CHECK(soma_train_tensor(tr, ti, &t) == 0);
        size_t n = t.rows * t.cols, absent_nonzero = 0, present = 0, nonzero = 0;
        float *g = malloc(n * sizeof *g), *w0 = malloc(n * sizeof *w0);
        memcpy(g, t.grad, n * sizeof *g);
        memcpy(w0, t.data, n * sizeof *w0);
        double gmax = 0.0;
        for (size_t e = 0; e < n; e++) gmax = fmax(gmax, fabs(g[e]));
        for (size_t e = 0; e < n; e++) {
            if (w0[e] == 0.0f) { /* absent: drawn weights are never exactly 0 */
                absent_nonzero += g[e] != 0.0f;
                continue;
            }
            present++;
            static const double hs[3] = {1e-2, 2e-3, 5e-4};
            static const double mult[4] = {1, -1, 2, -2};
            double f[4], h = 0.0;
            int flipped = 1;
            for (int k = 0; k < 3 && flipped; k++) {
                h = hs[k] * fmax(1.0, fabs(w0[e]));
                flipped = 0;
                for (int q = 0; q < 4 && !flipped; q++) {
                    t.data[e] = (float)(w0[e] + mult[q] * h);
                    f[q] = fresh_loss(net, x, y, spk);
                    if (memcmp(spk, spk0, (GT - 1) * GB * GH) != 0) flipped = 1;
                }
            }
            t.data[e] = w0[e];
            if (flipped) {
                skipped++;
                continue;
            }
            checked++;
            double fd = (8.0 * (f[0] - f[1]) - (f[2] - f[3])) / (12.0 * h);
            double scale = fmax(fmax(fabs(g[e]), 1e-2 * gmax), 1e-9);
            double noise = 4e-7 * fabs(loss0) / h;
            nonzero += g[e] != 0.0f;
            CHECK_MSG(fabs(g[e] - fd) <= 5e-3 * scale + noise, "d loss / d %s[%zu] = %.7g, finite difference %.7g",
                      t.name, e, (double)g[e], fd);
        }
        CHECK_MSG(absent_nonzero == 0, "%s: %zu absent synapses have a gradient", t.name, absent_nonzero);
        CHECK_MSG(present > 0 && present < n, "%s: %zu of %zu synapses present", t.name, present, n);
        CHECK_MSG(nonzero > 0, "%s: every checked gradient is zero", t.name);
        free(g);
        free(w0);
    }
    CHECK_MSG(checked > 0 && skipped * 5 <= checked, "%zu checked, %zu skipped", checked, skipped);
    printf("gradients: %zu entries checked against finite differences, %zu skipped\n", checked, skipped);
    soma_train_free(tr);
    soma_net_free(net);
}

/* ------------------------------------------------- c. instantiation */
enum { NA = 30, NB = 30, NIN = 6 };

/* in -> a (dense), a -> b by connector c. */
static soma_net *inst_net(const soma_connector *c, const char *weight, const char *delay, int port) {
    soma_net *net = NULL;
    if (soma_net_create(&net)) return NULL;
    size_t in, a, b;
    int st = soma_net_add_pop(net, "in", "input", NIN, &in);
    st |= soma_net_add_pop(net, "a", "lif", NA, &a);
    st |= soma_net_add_pop(net, "b", "lif", NB, &b);
    st |= soma_net_connect_dense(net, in, a, 1);
    if (st || soma_net_connect(net, a, b, c, weight, delay, port, NULL)) {
        CHECK_MSG(0, "building: %s", soma_net_errmsg(net));
        soma_net_free(net);
        return NULL;
    }
    return net;
}

static void check_rule(const char *label, const soma_connector *c, uint64_t seed) {
    soma_net *ns = inst_net(c, "uniform(0.1, 1.0)", NULL, SOMA_PORT_BY_SIGN);
    soma_net *nt = inst_net(c, "uniform(0.1, 1.0)", NULL, SOMA_PORT_BY_SIGN);
    if (!ns || !nt) goto out;
    /* The simulator's synapses, summed per pair. */
    CHECK(soma_net_init_weights(ns, 1) == 0);
    soma_sim_opts so;
    soma_sim_opts_default(&so);
    so.seed = seed;
    so.threads = 2;
    soma_sim *sim = NULL;
    char err[512], path[1024];
    CHECK_MSG(soma_sim_create(&sim, ns, &so, err, sizeof err) == 0, "%s: %s", label, err);
    if (!sim) goto out;
    snprintf(path, sizeof path, "%s/conn.csv", tmp);
    CHECK(soma_sim_write_connectivity(sim, path) == 0);
    soma_sim_free(sim);
    static double ws[NB * NA];
    static int cnt[NB * NA];
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
        CHECK_MSG(pre >= NIN && pre < NIN + NA && post >= NIN + NA && post < NIN + NA + NB, "%s: synapse %lu -> %lu",
                  label, pre, post);
        if (!(pre >= NIN && pre < NIN + NA && post >= NIN + NA && post < NIN + NA + NB)) continue;
        size_t k = (post - NIN - NA) * NA + (pre - NIN);
        ws[k] += w;
        cnt[k]++;
        nsyn++;
    }
    fclose(f);
    /* The trainer's matrix from the same seed. */
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
    soma_tensor w = tensor(nt, "a->b.weight");
    size_t pairs = 0, bad = 0, multi = 0;
    for (size_t k = 0; k < NB * NA; k++) {
        pairs += cnt[k] > 0;
        multi += cnt[k] > 1;
        int same = cnt[k] ? fabs((double)w.data[k] - ws[k]) <= 1e-6 * fmax(1.0, ws[k]) : w.data[k] == 0.0f;
        if (!same && bad++ < 3)
            fprintf(stderr, "%s: pair %zu -> %zu: trainer %.9g, simulator %.9g over %d synapses\n", label, k % NA,
                    k / NA, (double)w.data[k], ws[k], cnt[k]);
    }
    CHECK_MSG(bad == 0, "%s: %zu of %d pairs differ from the simulator's synapses", label, bad, NA * NB);
    CHECK_MSG(nsyn > 0, "%s: no synapses", label);
    printf("%s: %zu synapses on %zu pairs (%zu with multapses) equal the simulator's\n", label, nsyn, pairs, multi);
    soma_train_free(tr);
out:
    soma_net_free(ns);
    soma_net_free(nt);
}

/* soma_train_create refuses the net naming `want`, and the net stays sparse. */
static void refused(soma_net *net, const char *want) {
    if (!net) return;
    soma_train_opts to;
    soma_data_opts d;
    soma_train_opts_default(&to);
    soma_data_opts_default(&d);
    to.batch = 4;
    d.steps = 4;
    soma_trainer *tr = NULL;
    int st = soma_train_create(&tr, net, &to, &d);
    CHECK_MSG(st == SOMA_STATUS_UNSUPPORTED && strstr(soma_net_errmsg(net), want),
              "expected a refusal naming '%s'; got %d: %s", want, st, soma_net_errmsg(net));
    soma_tensor t;
    CHECK_MSG(soma_net_tensor_find(net, "a->b.weight", &t) != 0, "a refused net changed: it has a->b.weight");
    soma_train_free(tr);
    soma_net_free(net);
}

static void test_instantiation(void) {
    soma_connector c;
    soma_connector_default(&c, SOMA_CONN_RULE_ALL_TO_ALL);
    check_rule("all_to_all", &c, 5);
    soma_connector_default(&c, SOMA_CONN_RULE_ONE_TO_ONE);
    check_rule("one_to_one", &c, 5);
    soma_connector_default(&c, SOMA_CONN_RULE_FIXED_PROBABILITY);
    c.p = 0.15;
    check_rule("fixed_probability", &c, 5);
    check_rule("fixed_probability, another seed", &c, 6);
    soma_connector_default(&c, SOMA_CONN_RULE_FIXED_INDEGREE);
    c.k = 12; /* multapses on: some pairs get two synapses, summed */
    check_rule("fixed_indegree with multapses", &c, 5);
    c.multapses = 0;
    check_rule("fixed_indegree", &c, 5);
    soma_connector_default(&c, SOMA_CONN_RULE_FIXED_OUTDEGREE);
    c.k = 7;
    check_rule("fixed_outdegree", &c, 5);
    soma_connector_default(&c, SOMA_CONN_RULE_FIXED_TOTAL);
    c.n = 200;
    check_rule("fixed_total", &c, 5);
    /* An edge list with a repeated pair and a weight column. */
    char path[1024];
    snprintf(path, sizeof path, "%s/edges.csv", tmp);
    const char *edges = "pre,post,weight\n0,1,0.5\n3,2,0.25\n3,2,0.125\n29,29,-0.75\n7,0,1.5\n";
    CHECK(t_write_file(path, edges, strlen(edges)) == 0);
    soma_connector_default(&c, SOMA_CONN_RULE_FILE);
    c.path = path;
    check_rule("file", &c, 5);

    /* Refusals, by name. */
    soma_connector_default(&c, SOMA_CONN_RULE_FIXED_PROBABILITY);
    c.p = 0.2;
    refused(inst_net(&c, "0.5", "2ms", SOMA_PORT_BY_SIGN), "delay 2 ms");
    refused(inst_net(&c, "0.5", "uniform(0.1ms, 1ms)", SOMA_PORT_BY_SIGN), "drawn per synapse");
    const char *dedges = "pre,post,weight,delay\n0,1,0.5,0.1\n3,2,0.25,0.5\n";
    CHECK(t_write_file(path, dedges, strlen(dedges)) == 0);
    soma_connector_default(&c, SOMA_CONN_RULE_FILE);
    c.path = path;
    refused(inst_net(&c, "0.5", NULL, SOMA_PORT_BY_SIGN), "delay of 0.5 ms");
    /* Ports: by sign on a model with two ports (e, i) is refused; the first port is trained. */
    for (int port = SOMA_PORT_BY_SIGN; port <= 0; port++) {
        soma_net *pn = NULL;
        size_t pin, pa, pb;
        CHECK(soma_net_create(&pn) == 0);
        soma_net_add_pop(pn, "in", "input", NIN, &pin);
        soma_net_add_pop(pn, "a", "lif", NA, &pa);
        soma_net_add_pop(pn, "b", "iaf_psc_exp", NB, &pb);
        soma_net_connect_dense(pn, pin, pa, 1);
        soma_connector_default(&c, SOMA_CONN_RULE_FIXED_PROBABILITY);
        c.p = 0.2;
        CHECK_MSG(soma_net_connect(pn, pa, pb, &c, "100pA", NULL, port, NULL) == 0, "%s", soma_net_errmsg(pn));
        if (port == SOMA_PORT_BY_SIGN) {
            refused(pn, "port sign (model iaf_psc_exp has 2 ports)");
            continue;
        }
        soma_train_opts to;
        soma_data_opts d;
        soma_train_opts_default(&to);
        soma_data_opts_default(&d);
        to.batch = 4;
        d.steps = 4;
        soma_trainer *tr = NULL;
        CHECK_MSG(soma_train_create(&tr, pn, &to, &d) == 0, "port e: %s", soma_net_errmsg(pn));
        soma_train_free(tr);
        soma_net_free(pn);
    }
    /* A population onto itself beside its own recurrent: true (one alone is its
     * recurrent weights: test_train_selfproj.c). */
    soma_net *net = NULL;
    size_t in, a;
    CHECK(soma_net_create(&net) == 0);
    soma_net_add_pop(net, "in", "input", NIN, &in);
    soma_net_add_pop(net, "a", "lif", NA, &a);
    soma_net_connect_dense(net, in, a, 1);
    soma_net_set_recurrent(net, a, 1);
    soma_connector_default(&c, SOMA_CONN_RULE_SMALL_WORLD);
    c.k = 4;
    c.p = 0.1;
    CHECK(soma_net_connect(net, a, a, &c, "0.5", NULL, SOMA_PORT_BY_SIGN, NULL) == 0);
    soma_train_opts to;
    soma_data_opts d;
    soma_train_opts_default(&to);
    soma_data_opts_default(&d);
    to.batch = 4;
    d.steps = 4;
    soma_trainer *tr = NULL;
    int st = soma_train_create(&tr, net, &to, &d);
    CHECK_MSG(st == SOMA_STATUS_UNSUPPORTED && strstr(soma_net_errmsg(net), "a -> a") &&
                  strstr(soma_net_errmsg(net), "itself"), "%d: %s", st, soma_net_errmsg(net));
    soma_train_free(tr);
    soma_net_free(net);
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
    soma_connector c;
    soma_connector_default(&c, SOMA_CONN_RULE_FIXED_PROBABILITY);
    c.p = 0.1;
    CHECK(soma_net_connect(net, in, h, &c, "uniform(-0.12, 0.12)", NULL, SOMA_PORT_BY_SIGN, NULL) == 0);
    soma_connector_default(&c, SOMA_CONN_RULE_FIXED_INDEGREE);
    c.k = 30;
    CHECK(soma_net_connect(net, h, out, &c, "uniform(-0.3, 0.3)", NULL, SOMA_PORT_BY_SIGN, NULL) == 0);
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
    static uint32_t ref[NS][10], got[NS][10], got2[NS][10];
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
    printf("sparse net trained one epoch (loss %.4f): %zu of %d samples with identical output counts in the "
           "simulator; %ld of %ld spikes differ\n", res.loss, same, NS, diff, total);
    CHECK_MSG(total > 2 * NS, "only %ld output spikes: nothing to compare", total);
    CHECK_MSG(same >= 97 && (double)diff <= 0.005 * (double)total, "%zu identical, %ld of %ld spikes differ", same, diff,
              total);
    /* The model file keeps the trained weights on the same synapses. */
    char path[1024];
    snprintf(path, sizeof path, "%s/sparse.soma", tmp);
    CHECK_MSG(soma_model_save(path, net, &d, &o, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(soma_model_load(path, &loaded, NULL, NULL, err, sizeof err) == 0, "%s", err);
    if (loaded) {
        soma_tensor a = tensor(net, "in->h.weight"), b = tensor(loaded, "in->h.weight");
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
    const char *dir = t_tmpdir("test_train_sparse");
    if (!dir) return 1;
    snprintf(tmp, sizeof tmp, "%s", dir);
    test_mask(SOMA_OPTIMIZER_ADAM);
    test_mask(SOMA_OPTIMIZER_ADAMW);
    test_gradients();
    test_instantiation();
    test_trained_in_sim();
    return t_report("test_train_sparse");
}
