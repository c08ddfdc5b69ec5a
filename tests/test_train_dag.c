/* test_train_dag.c — the trainer on networks that are not chains: skip
 * connections and several projections summed into one population.
 *
 * Each net's loss (ce_mem) and output spikes are checked against a forward
 * pass in double written here from the equations (I = sum of W x + b over
 * the projections into a population, the sources' outputs of the same
 * step; lif with subtractive reset; ann linear), and its gradients against
 * fourth-order central differences of the trainer's own loss, with the
 * entries whose perturbation flips an output spike skipped (as in
 * test_train_fd.c). Gradients that cross a hidden spiking layer are
 * surrogates, not derivatives, so with spiking hidden layers only the
 * output population's incoming projections are checked; with linear
 * hidden layers every tensor is.
 *
 *  A: in -> h (lif) -> out (lif), plus in -> out      (skip from the input;
 *     h's sparse spikes take the gather path)
 *  B: in -> h1 (ann) -> h2 (ann) -> out (lif), plus h1 -> out   (h1 feeds two
 *     projections: its gradient is their sum)
 *  C: as B with spiking h1, h2 (forward only: the gather into two consumers)
 *  D: in -> a -> b -> out, a -> c -> out, b -> c (ann a, b, c): b's gradient is
 *     out's part plus the part of c's further projection, added second
 *  E: in -> c1 -> c2 -> out (convolutions), c1 -> out: c1's gradient is the
 *     dense skip's part plus the convolution's (which overwrites its output
 *     buffer: computed aside and added); gradients only
 * Then what the trainer refuses, by name: a cycle through two populations,
 * two output populations, two populations fed by the input only, a dense
 * projection with a delay or port of its own, a MASK on a further
 * projection's input. Hooks at a further projection's output: MASK 0 = the
 * net without it; GRAD = central differences of the loss in that output;
 * GRAD 0 cuts the gradient of everything behind it.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

#define D 16 /* 1x4x4 for the conv net */
#define NOUT 4
#define B 10
#define T 6
#define MAXL 40 /* the deep nets (F, G, H) */
#define MAXP 48
#define MAXN 16

typedef struct netdef {
    const char *name;
    int nl;                      /* layers after the input, in order */
    const char *lname[MAXL];
    const char *model[MAXL];     /* "lif" or "ann" (linear) */
    size_t size[MAXL];
    int np;
    int from[MAXP], to[MAXP];    /* -1: the input */
    int spiking_hidden;
    int conv[MAXP];              /* 1: a 3x3 convolution, stride 1, padding 1, between 2x4x4 maps (input 1x4x4) */
    float gain;                  /* deep nets: factor on the weights between hidden layers (0: as the small nets) */
    int stride;                  /* deep nets: finite differences on every stride-th entry (0: every one) */
} netdef;

static const netdef NET_A = {"A (skip from the input)", 2, {"h", "out"}, {"lif", "lif"}, {12, NOUT}, 3,
                             {-1, 0, -1}, {0, 1, 1}, 1, {0}, 0.0f, 0};
static const netdef NET_B = {"B (h1 feeds h2 and out)", 3, {"h1", "h2", "out"}, {"ann", "ann", "lif"}, {6, 5, NOUT}, 4,
                             {-1, 0, 1, 0}, {0, 1, 2, 2}, 0, {0}, 0.0f, 0};
static const netdef NET_D = {"D (b feeds out first, then c as a further projection)", 4, {"a", "b", "c", "out"},
                             {"ann", "ann", "ann", "lif"}, {6, 5, 4, NOUT}, 6, {-1, 0, 0, 1, 2, 1}, {0, 1, 2, 2, 3, 3}, 0, {0}, 0.0f, 0};
static const netdef NET_E = {"E (conv c1 feeds conv c2 and out)", 3, {"c1", "c2", "out"}, {"ann", "ann", "lif"},
                             {32, 32, NOUT}, 4, {-1, 0, 1, 0}, {0, 1, 2, 2}, 0, {1, 1, 0, 0}, 0.0f, 0};
static const netdef NET_C = {"C (spiking h1 feeds h2 and out)", 3, {"h1", "h2", "out"}, {"lif", "lif", "lif"},
                             {12, 10, NOUT}, 4, {-1, 0, 1, 0}, {0, 1, 2, 2}, 1, {0}, 0.0f, 0};

static soma_net *make_net(const netdef *nd, uint64_t seed, size_t *pops) {
    soma_net *net = NULL;
    if (soma_net_create(&net)) return NULL;
    size_t in = 0;
    int st = soma_net_add_pop(net, "in", "input", D, &in);
    for (int l = 0; l < nd->nl; l++) {
        st |= soma_net_add_pop(net, nd->lname[l], nd->model[l], nd->size[l], &pops[l]);
        if (!strcmp(nd->model[l], "lif")) {
            st |= soma_net_set_param(net, pops[l], "beta", 0.85f);
            st |= soma_net_set_param(net, pops[l], "threshold", 1.0f);
        } else st |= soma_net_set_param(net, pops[l], "activation", 2.0f);
    }
    static const size_t in_shape[3] = {1, 4, 4}, map_shape[3] = {2, 4, 4};
    for (int k = 0; k < nd->np; k++)
        if (nd->conv[k]) {
            size_t f = nd->from[k] < 0 ? in : pops[nd->from[k]], t = pops[nd->to[k]];
            st |= soma_net_set_shape(net, f, f == in ? in_shape : map_shape, 3);
            st |= soma_net_set_shape(net, t, map_shape, 3);
        }
    for (int k = 0; k < nd->np; k++) {
        size_t f = nd->from[k] < 0 ? in : pops[nd->from[k]], t = pops[nd->to[k]];
        soma_conv cv = {3, 1, 1, SOMA_POOL_NONE, 1};
        st |= nd->conv[k] ? soma_net_connect_conv(net, f, t, 1, &cv) : soma_net_connect_dense(net, f, t, 1);
    }
    st |= soma_net_init_weights(net, seed);
    CHECK_MSG(st == 0, "building net %s: %s", nd->name, soma_net_errmsg(net));
    /* Hidden lif layers get a larger input so that they spike now and then. */
    size_t nt = soma_net_tensor_count(net);
    for (size_t i = 0; i < nt; i++) {
        soma_tensor t;
        soma_net_tensor(net, i, &t);
        float k = nd->conv[0] ? (strstr(t.name, "->out.") ? 0.7f : 1.0f) /* fewer output spikes near the threshold */
                  : !nd->spiking_hidden ? 1.0f : strstr(t.name, "in->") == t.name ? 2.0f : strstr(t.name, "->out.") ? 2.0f : 1.0f;
        if (nd->gain > 0.0f && strstr(t.name, "in->") != t.name && !strstr(t.name, "->out.") && strstr(t.name, ".weight"))
            k = nd->gain; /* deep nets: keep the activity from dying out (or growing) over the layers */
        for (size_t e = 0; e < t.rows * t.cols; e++) t.data[e] *= k;
        if (nd->spiking_hidden && strstr(t.name, "->out.bias")) /* the output spikes too, so that its reset takes part */
            for (size_t e = 0; e < t.rows * t.cols; e++) t.data[e] += 0.2f;
    }
    return st ? (soma_net_free(net), NULL) : net;
}

static void opts(soma_train_opts *to, soma_data_opts *dopt) {
    soma_train_opts_default(to);
    to->loss = SOMA_LOSS_CE_MEM;
    to->batch = B;
    to->threads = 1;
    soma_data_opts_default(dopt);
    dopt->steps = T;
}

/* Loss and (optionally) the output spikes of the net through a fresh trainer. */
static double train_loss(soma_net *net, size_t out, const float *x, int tc, const uint8_t *y, uint8_t *spk) {
    soma_train_opts to;
    soma_data_opts dopt;
    opts(&to, &dopt);
    soma_trainer *tr = NULL;
    if (soma_train_create(&tr, net, &to, &dopt)) {
        CHECK_MSG(0, "soma_train_create: %s", soma_net_errmsg(net));
        return NAN;
    }
    double loss = NAN;
    CHECK(soma_train_grad(tr, x, tc, y, B, &loss, NULL) == 0);
    if (spk) CHECK(soma_train_record(tr, x, tc, B, out, spk) == 0);
    soma_train_free(tr);
    return loss;
}

/* The same net in double, from its tensors. spk: output spikes [T][B][NOUT];
 * *margin: the closest any lif membrane came to its threshold. */
static double ref_loss(soma_net *net, const netdef *nd, const float *x, int tc, const uint8_t *y, uint8_t *spk,
                       double *margin, size_t *hidden_spikes) {
    const float *W[MAXP], *bias[MAXP];
    for (int k = 0; k < nd->np; k++) {
        char nm[96];
        const char *f = nd->from[k] < 0 ? "in" : nd->lname[nd->from[k]], *to = nd->lname[nd->to[k]];
        soma_tensor tw, tb;
        snprintf(nm, sizeof nm, "%s->%s.weight", f, to);
        CHECK_MSG(soma_net_tensor_find(net, nm, &tw) == 0, "no tensor %s", nm);
        snprintf(nm, sizeof nm, "%s->%s.bias", f, to);
        CHECK_MSG(soma_net_tensor_find(net, nm, &tb) == 0, "no tensor %s", nm);
        W[k] = tw.data, bias[k] = tb.data;
    }
    double total = 0.0, mg = INFINITY;
    size_t hs = 0;
    for (size_t b = 0; b < B; b++) {
        double u[MAXL][MAXN] = {{0}}, s[MAXL][MAXN];
        for (size_t t = 0; t < T; t++) {
            const float *xr = x + ((tc ? 0 : t * B) + b) * D;
            for (int l = 0; l < nd->nl; l++) {
                size_t N = nd->size[l];
                double in[MAXN] = {0};
                for (int k = 0; k < nd->np; k++) {
                    if (nd->to[k] != l) continue;
                    size_t Nin = nd->from[k] < 0 ? D : nd->size[nd->from[k]];
                    for (size_t j = 0; j < N; j++) {
                        double a = bias[k][j];
                        for (size_t i = 0; i < Nin; i++)
                            a += (double)W[k][j * Nin + i] * (nd->from[k] < 0 ? (double)xr[i] : s[nd->from[k]][i]);
                        in[j] += a;
                    }
                }
                for (size_t j = 0; j < N; j++) {
                    if (!strcmp(nd->model[l], "lif")) {
                        double r = u[l][j] > 1.0 ? 1.0 : 0.0;
                        u[l][j] = 0.85 * u[l][j] + in[j] - r;
                        s[l][j] = u[l][j] > 1.0;
                        mg = fmin(mg, fabs(u[l][j] - 1.0));
                        if (l + 1 < nd->nl) hs += s[l][j] > 0;
                    } else u[l][j] = s[l][j] = in[j];
                }
            }
            int lo = nd->nl - 1;
            double mx = -INFINITY, sum = 0.0;
            for (size_t j = 0; j < NOUT; j++) {
                spk[(t * B + b) * NOUT + j] = s[lo][j] > 0;
                mx = fmax(mx, u[lo][j]);
            }
            for (size_t j = 0; j < NOUT; j++) sum += exp(u[lo][j] - mx);
            total += (mx + log(sum) - u[lo][y[b]]) / (double)T;
        }
    }
    *margin = mg;
    *hidden_spikes = hs;
    return total / (double)B;
}

static void check_net(const netdef *nd, int tc, int grads) {
    char what[128];
    snprintf(what, sizeof what, "%s, %s input", nd->name, tc ? "direct" : "time-varying");
    size_t pops[MAXL];
    soma_net *net = make_net(nd, 21, pops);
    if (!net) return;
    size_t out = pops[nd->nl - 1];
    float x[T * B * D];
    uint8_t y[B];
    soma_rng rng;
    soma_rng_init(&rng, 5, (uint64_t)tc);
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = soma_rng_uniform(&rng);
    for (size_t b = 0; b < B; b++) y[b] = (uint8_t)(soma_rng_u32(&rng) % NOUT);

    soma_train_opts to;
    soma_data_opts dopt;
    opts(&to, &dopt);
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, net, &to, &dopt) == 0, "%s: %s", what, soma_net_errmsg(net));
    if (!tr) {
        soma_net_free(net);
        return;
    }
    double loss0 = NAN;
    CHECK(soma_train_grad(tr, x, tc, y, B, &loss0, NULL) == 0);
    uint8_t spk0[T * B * NOUT], spk[T * B * NOUT], rspk[T * B * NOUT];
    CHECK(soma_train_record(tr, x, tc, B, out, spk0) == 0);
    double margin = 1.0;
    size_t hsp = 1;
    double lref = nd->conv[0] ? loss0 : ref_loss(net, nd, x, tc, y, rspk, &margin, &hsp); /* conv: gradients only */
    if (nd->conv[0]) memcpy(rspk, spk0, sizeof rspk);
    CHECK_MSG(fabs(loss0 - lref) <= 1e-5 * fabs(lref), "%s: loss %.9g, double reference %.9g", what, loss0, lref);
    CHECK_MSG(margin > 1e-4, "%s: a membrane within %g of the threshold", what, margin);
    if (margin > 1e-4) CHECK_MSG(memcmp(rspk, spk0, sizeof spk0) == 0, "%s: output spikes differ from the reference", what);
    size_t nhid = nd->size[0]; /* deep nets: all hidden neurons */
    for (int l = 1; nd->gain > 0.0f && l + 1 < nd->nl; l++) nhid += nd->size[l];
    if (nd->spiking_hidden) /* some hidden spikes, but sparse enough for the gather */
        CHECK_MSG(hsp > 0 && hsp < (size_t)(T * B * nhid) / 4, "%s: %zu hidden spikes", what, hsp);
    size_t nspk = 0;
    for (size_t i = 0; i < sizeof spk0; i++) nspk += spk0[i];
    CHECK_MSG(nspk > 0, "%s: no output spikes", what);

    size_t nt = soma_net_tensor_count(net), checked = 0, skipped = 0;
    for (size_t i = 0; i < nt && grads; i++) {
        soma_tensor t;
        CHECK(soma_train_tensor(tr, i, &t) == 0);
        if (nd->spiking_hidden && !strstr(t.name, "->out.")) continue; /* surrogate gradients */
        size_t n = t.rows * t.cols;
        float *g = malloc(n * sizeof *g);
        memcpy(g, t.grad, n * sizeof *g);
        double gmax = 0.0;
        for (size_t e = 0; e < n; e++) gmax = fmax(gmax, fabs(g[e]));
        int nonzero = 0;
        size_t checked0 = checked;
        for (size_t e = 0; e < n; e +=  nd->stride > 0 ? (size_t)nd->stride : 1) {
            float w0 = t.data[e];
            static const double hs[3] = {1e-2, 2e-3, 5e-4};
            static const double mult[4] = {1, -1, 2, -2};
            double f[4], h = 0.0;
            int flipped = 1;
            for (int k = 0; k < 3 && flipped; k++) {
                h = hs[k] * fmax(1.0, fabs(w0));
                flipped = 0;
                for (int q = 0; q < 4 && !flipped; q++) {
                    t.data[e] = (float)(w0 + mult[q] * h);
                    f[q] = train_loss(net, out, x, tc, y, spk);
                    if (memcmp(spk, spk0, (T - 1) * B * NOUT) != 0) flipped = 1;
                }
            }
            t.data[e] = w0;
            if (flipped) {
                skipped++;
                continue;
            }
            checked++;
            double fd = (8.0 * (f[0] - f[1]) - (f[2] - f[3])) / (12.0 * h);
            double scale = fmax(fmax(fabs(g[e]), 1e-2 * gmax), 1e-9);
            nonzero += g[e] != 0.0f;
            /* The float loss is rounded (a few 1e-7 relative) in each of the
             * four evaluations: about 4e-7 |loss| / h in the difference. */
            double noise = 4e-7 * fabs(loss0) / h;
            CHECK_MSG(fabs(g[e] - fd) <= 5e-3 * scale + noise, "%s: d loss / d %s[%zu] = %.7g, finite difference %.7g", what,
                      t.name, e, (double)g[e], fd);
        }
        CHECK_MSG(nonzero > 0 || checked == checked0, "%s: every checked gradient of %s is zero", what, t.name);
        free(g);
    }
    if (grads) CHECK_MSG(checked > 0 && skipped * 5 <= checked, "%s: %zu checked, %zu skipped", what, checked, skipped);
    soma_train_free(tr);
    soma_net_free(net);
}

/* soma_train_create refuses the net, and its message contains `want`. */
static void refused(soma_net *net, const char *want) {
    soma_train_opts to;
    soma_data_opts dopt;
    opts(&to, &dopt);
    soma_trainer *tr = NULL;
    int st = soma_train_create(&tr, net, &to, &dopt);
    CHECK_MSG(st != 0 && strstr(soma_net_errmsg(net), want), "expected a refusal naming '%s'; got %d: %s", want, st,
              soma_net_errmsg(net));
    soma_train_free(tr);
}

static int keep(void *user, const soma_hook_event *ev) {
    (void)user, (void)ev;
    return 0;
}

static void test_refusals(void) {
    soma_net *net = NULL;
    size_t in, a, b, c;
    /* a cycle through two populations */
    CHECK(soma_net_create(&net) == 0);
    soma_net_add_pop(net, "in", "input", D, &in);
    soma_net_add_pop(net, "a", "lif", 4, &a);
    soma_net_add_pop(net, "b", "lif", 4, &b);
    soma_net_connect_dense(net, in, a, 1);
    soma_net_connect_dense(net, a, b, 1);
    soma_net_connect_dense(net, b, a, 1);
    refused(net, "cycle");
    soma_net_free(net);
    /* two outputs */
    CHECK(soma_net_create(&net) == 0);
    soma_net_add_pop(net, "in", "input", D, &in);
    soma_net_add_pop(net, "a", "lif", 4, &a);
    soma_net_add_pop(net, "b", "lif", 4, &b);
    soma_net_add_pop(net, "c", "lif", 4, &c);
    soma_net_connect_dense(net, in, a, 1);
    soma_net_connect_dense(net, a, b, 1);
    soma_net_connect_dense(net, a, c, 1);
    refused(net, "project nowhere");
    soma_net_free(net);
    /* two populations fed by the input only */
    CHECK(soma_net_create(&net) == 0);
    soma_net_add_pop(net, "in", "input", D, &in);
    soma_net_add_pop(net, "a", "lif", 4, &a);
    soma_net_add_pop(net, "b", "lif", 4, &b);
    soma_net_add_pop(net, "c", "lif", 4, &c);
    soma_net_connect_dense(net, in, a, 1);
    soma_net_connect_dense(net, in, b, 1);
    soma_net_connect_dense(net, a, c, 1);
    soma_net_connect_dense(net, b, c, 1);
    refused(net, "fed by the input only");
    soma_net_free(net);

    /* a dense projection with a delay or a port of its own (simulator only) */
    CHECK(soma_net_create(&net) == 0);
    soma_net_add_pop(net, "in", "input", D, &in);
    soma_net_add_pop(net, "a", "lif", 4, &a);
    soma_net_connect_dense(net, in, a, 1);
    CHECK(soma_net_proj_set_delay(net, 0, "0.3ms") == 0);
    refused(net, "delay of its own");
    soma_net_free(net);
    CHECK(soma_net_create(&net) == 0);
    soma_net_add_pop(net, "in", "input", D, &in);
    soma_net_add_pop(net, "a", "lif", 4, &a);
    soma_net_connect_dense(net, in, a, 1);
    CHECK(soma_net_proj_set_port(net, 0, 0) == 0);
    refused(net, "port of its own");
    soma_net_free(net);

    /* a further projection's input takes READ only, refused by name otherwise */
    size_t pops[MAXL];
    net = make_net(&NET_B, 3, pops);
    if (!net) return;
    soma_train_opts to;
    soma_data_opts dopt;
    opts(&to, &dopt);
    soma_trainer *tr = NULL;
    CHECK(soma_train_create(&tr, net, &to, &dopt) == 0);
    if (tr) {
        soma_hooks *h = NULL;
        CHECK(soma_hooks_create(&h) == 0);
        CHECK(soma_hooks_add(h, "h2->out.in", SOMA_HOOK_MASK, keep, NULL) == 0);
        CHECK(soma_train_set_hooks(tr, h) == SOMA_STATUS_UNSUPPORTED);
        CHECK_MSG(strstr(soma_train_errmsg(tr), "h2->out.in") != NULL, "%s", soma_train_errmsg(tr));
        soma_hooks_free(h);
        soma_train_free(tr);
    }
    soma_net_free(net);
}

/* ------------------------------------------- hooks on a further projection
 * Net B: out's first projection is h1 -> out, h2 -> out is summed after it. */
static int x_t = -1, x_b, x_j;
static float x_v;
static float gx[T][B][NOUT];
static int zero_cb(void *u, const soma_hook_event *ev) {
    (void)u;
    memset(ev->data, 0, ev->batch * ev->n * sizeof(float));
    return 0;
}
static int nudge_cb(void *u, const soma_hook_event *ev) {
    (void)u;
    if ((int)ev->step == x_t && (size_t)x_b >= ev->row0 && (size_t)x_b < ev->row0 + ev->batch)
        ev->data[(x_b - ev->row0) * ev->n + x_j] += x_v;
    return 0;
}
static int grad_cb(void *u, const soma_hook_event *ev) {
    (void)u;
    for (size_t r = 0; r < ev->batch; r++) memcpy(gx[ev->step][ev->row0 + r], ev->data + r * ev->n, NOUT * sizeof(float));
    return 0;
}

static double hooked_loss(soma_trainer *tr, const char *site, int kind, soma_hook_fn fn, const float *x,
                          const uint8_t *y) {
    soma_hooks *h = NULL;
    soma_hooks_create(&h);
    if (site) soma_hooks_add(h, site, kind, fn, NULL);
    CHECK_MSG(soma_train_set_hooks(tr, h) == 0, "%s", soma_train_errmsg(tr));
    soma_hooks_free(h);
    double loss = NAN;
    CHECK(soma_train_grad(tr, x, 0, y, B, &loss, NULL) == 0);
    return loss;
}

static void test_extra_hooks(void) {
    size_t pops[MAXL];
    soma_net *net = make_net(&NET_B, 21, pops);
    if (!net) return;
    float x[T * B * D];
    uint8_t y[B];
    soma_rng rng;
    soma_rng_init(&rng, 8, 0);
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = soma_rng_uniform(&rng);
    for (size_t b = 0; b < B; b++) y[b] = (uint8_t)(b % NOUT);
    soma_train_opts to;
    soma_data_opts dopt;
    opts(&to, &dopt);
    soma_trainer *tr = NULL;
    CHECK(soma_train_create(&tr, net, &to, &dopt) == 0);
    if (!tr) return;
    double l0 = hooked_loss(tr, NULL, 0, NULL, x, y);
    /* MASK 0 at h2->out.out = the net without that projection's weights and bias */
    double lm = hooked_loss(tr, "h2->out.out", SOMA_HOOK_MASK, zero_cb, x, y);
    soma_net *n2 = make_net(&NET_B, 21, pops);
    soma_tensor tw, tb;
    soma_net_tensor_find(n2, "h2->out.weight", &tw);
    soma_net_tensor_find(n2, "h2->out.bias", &tb);
    memset(tw.data, 0, tw.rows * tw.cols * sizeof(float));
    memset(tb.data, 0, tb.rows * tb.cols * sizeof(float));
    soma_trainer *t2 = NULL;
    CHECK(soma_train_create(&t2, n2, &to, &dopt) == 0);
    double lz = t2 ? hooked_loss(t2, NULL, 0, NULL, x, y) : NAN;
    CHECK_MSG(fabs(lm - lz) <= 1e-6 * fabs(lz) && fabs(lz - l0) > 1e-4, "MASK 0 at h2->out.out: loss %.9g; without "
              "the projection %.9g; with it %.9g", lm, lz, l0);
    soma_train_free(t2);
    soma_net_free(n2);
    /* GRAD at h2->out.out against central differences (OVERRIDE adds +-h to one value) */
    CHECK(hooked_loss(tr, "h2->out.out", SOMA_HOOK_GRAD, grad_cb, x, y) == l0);
    int checked = 0;
    for (int t = 0; t < T; t += 2)
        for (int b = 0; b < B; b += 4)
            for (int j = 0; j < NOUT; j++) {
                x_t = t, x_b = b, x_j = j;
                const float h = 1e-2f, m[4] = {1, -1, 2, -2};
                double f[4];
                uint8_t s0[T * B * NOUT], s1[T * B * NOUT];
                int flipped = 0;
                x_v = 0;
                hooked_loss(tr, "h2->out.out", SOMA_HOOK_OVERRIDE, nudge_cb, x, y);
                soma_train_record(tr, x, 0, B, pops[2], s0);
                for (int q = 0; q < 4; q++) {
                    x_v = m[q] * h;
                    f[q] = hooked_loss(tr, "h2->out.out", SOMA_HOOK_OVERRIDE, nudge_cb, x, y);
                    soma_train_record(tr, x, 0, B, pops[2], s1);
                    flipped |= memcmp(s0, s1, (T - 1) * B * NOUT) != 0;
                }
                if (flipped) continue;
                double fd = (8.0 * (f[0] - f[1]) - (f[2] - f[3])) / (12.0 * h), g = gx[t][b][j];
                CHECK_MSG(fabs(fd - g) <= 5e-3 * fmax(fabs(g), 1e-3) + 4e-7 * fabs(l0) / h,
                          "dL/d(h2->out.out)[t %d][b %d][%d]: GRAD %.7g, finite difference %.7g", t, b, j, g, fd);
                checked++;
            }
    x_t = -1;
    CHECK_MSG(checked >= 10, "%d values checked", checked);
    /* GRAD 0 there: no gradient for that projection, nor for h1 -> h2 (h2 feeds only it) */
    hooked_loss(tr, "h2->out.out", SOMA_HOOK_GRAD, zero_cb, x, y);
    for (size_t i = 0; i < soma_net_tensor_count(net); i++) {
        soma_tensor t;
        soma_train_tensor(tr, i, &t);
        double sum = 0;
        for (size_t e = 0; e < t.rows * t.cols; e++) sum += fabs(t.grad[e]);
        int cut = strstr(t.name, "h2->out.") || strstr(t.name, "h1->h2.");
        CHECK_MSG(cut ? sum == 0.0 : sum > 0.0, "GRAD 0 at h2->out.out: %s has gradient %g", t.name, sum);
    }
    soma_train_free(tr);
    soma_net_free(net);
}

/* ------------------------------------------------------------ deep nets
 * More layers than the trainer once took (16): a chain of `nl` layers
 * (the last the lif output), hidden layers of `model` and `n` neurons
 * except layer `ann_at` (ann, linear; -1: none), and optionally a skip
 * connection skip_from -> skip_to and one from the input into in_to. */
static netdef deep_net(const char *name, int nl, const char *model, size_t n, int ann_at, int skip_from, int skip_to,
                       int in_to, float gain) {
    static char names[MAXL][12];
    netdef nd;
    memset(&nd, 0, sizeof nd);
    nd.name = name;
    nd.nl = nl;
    for (int l = 0; l < nl; l++) {
        if (l + 1 < nl) snprintf(names[l], sizeof names[l], "h%d", l + 1);
        nd.lname[l] = l + 1 < nl ? names[l] : "out";
        nd.model[l] = l + 1 == nl ? "lif" : l == ann_at ? "ann" : model;
        nd.size[l] = l + 1 == nl ? NOUT : n;
        nd.from[nd.np] = l - 1, nd.to[nd.np] = l, nd.np++;
    }
    if (skip_from >= 0) nd.from[nd.np] = skip_from, nd.to[nd.np] = skip_to, nd.np++;
    if (in_to > 0) nd.from[nd.np] = -1, nd.to[nd.np] = in_to, nd.np++;
    nd.spiking_hidden = !strcmp(model, "lif");
    nd.gain = gain;
    return nd;
}

static void test_deep(void) {
    /* 40 layers, spiking with one ann in the middle: loss and output spikes
     * against the double reference, the output's gradients against finite
     * differences (the hidden ones are surrogates). */
    netdef F = deep_net("F (40 layers: lif, ann at 20)", 40, "lif", 8, 19, -1, -1, 0, 2.5f);
    /* 40 linear layers: every tensor's gradient crosses up to 39 layers. */
    netdef G = deep_net("G (40 layers: ann)", 40, "ann", 5, -1, -1, -1, 0, 1.7f);
    G.stride = 3;
    /* 20 layers with skip connections h3 -> h15 and in -> h10. */
    netdef H = deep_net("H (20-layer DAG: h3 -> h15, in -> h10)", 20, "ann", 5, -1, 2, 14, 9, 1.7f);
    H.stride = 2;
    for (int tc = 0; tc <= 1; tc++) {
        check_net(&F, tc, 1);
        check_net(&G, tc, 1);
        check_net(&H, tc, 1);
    }
}

int main(void) {
    test_deep();
    for (int tc = 0; tc <= 1; tc++) {
        check_net(&NET_A, tc, 1);
        check_net(&NET_B, tc, 1);
        check_net(&NET_C, tc, 0);
        check_net(&NET_D, tc, 1);
        check_net(&NET_E, tc, 1);
    }
    test_refusals();
    test_extra_hooks();
    return t_report("test_train_dag");
}
