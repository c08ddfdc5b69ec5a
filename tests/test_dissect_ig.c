/* test_dissect_ig.c — integrated gradients through hooks
 * (soma_dissect_integrated_gradients, soma_dissect_ig_site).
 *
 * Graded MLP: in(6) -> a1 ann gelu(8) -> a2 ann gelu(6) -> out ann
 * linear(3), loss ce_count, direct input, T = 3. F is smooth there, so:
 *   - completeness: the attributions over all neurons of a site sum to
 *     F(x) - F(x') within 1 % (m = 64), for each target (prob, logprob,
 *     logit) and for a projection's `.out` site;
 *   - against an oracle: the test's own double-precision forward of the
 *     same weights (a1's activations h shared by the T steps, logits T z),
 *     with IG_i = h_i mean_k dF/dh_i(a_k h) from central differences of
 *     that forward; for the whole site and for a joint subset;
 *   - rows: the same IG whether one soma_train_grad call holds several
 *     samples' paths (batch 128) or one path takes several calls (batch 16).
 * Spiking net (in -> h lif -> out lif, ce_rate): completeness does not
 * hold (surrogate gradients, F piecewise constant along the path); the gap
 * is printed, not asserted.
 * Refusals: a rate penalty, target logit with a membrane loss, an output
 * population's site. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

#define NS 24
#define D 6
#define H1 8
#define H2 6
#define C 3
#define T 3

static uint8_t X[NS * D], Y[NS];

static void data(soma_dataset *ds) {
    soma_rng r;
    soma_rng_init(&r, 7, 1);
    for (size_t i = 0; i < NS; i++) {
        Y[i] = (uint8_t)(i % C);
        for (size_t j = 0; j < D; j++) X[i * D + j] = (uint8_t)(soma_rng_u32(&r) % 256);
    }
    memset(ds, 0, sizeof *ds);
    ds->n = NS, ds->dim = D, ds->rows = 1, ds->cols = D, ds->classes = C, ds->x = X, ds->y = Y;
}

static soma_net *mlp(void) {
    soma_net *net = NULL;
    size_t in, a, b, out;
    int st = soma_net_create(&net);
    st |= soma_net_add_pop(net, "in", "input", D, &in);
    st |= soma_net_add_pop(net, "a1", "ann", H1, &a);
    st |= soma_net_add_pop(net, "a2", "ann", H2, &b);
    st |= soma_net_add_pop(net, "out", "ann", C, &out);
    st |= soma_net_set_param(net, a, "activation", 1.0f); /* gelu */
    st |= soma_net_set_param(net, b, "activation", 1.0f);
    st |= soma_net_set_param(net, out, "activation", 2.0f); /* linear */
    st |= soma_net_connect_dense(net, in, a, 1);
    st |= soma_net_connect_dense(net, a, b, 1);
    st |= soma_net_connect_dense(net, b, out, 1);
    st |= soma_net_init_weights(net, 11);
    CHECK_MSG(st == 0, "mlp: %s", soma_net_errmsg(net));
    /* larger weights: F moves a good deal between x' and x */
    const char *names[] = {"in->a1.weight", "a1->a2.weight", "a2->out.weight"};
    for (size_t k = 0; k < 3; k++) {
        soma_tensor t;
        soma_net_tensor_find(net, names[k], &t);
        for (size_t i = 0; i < t.rows * t.cols; i++) t.data[i] *= 3.0f;
    }
    return net;
}

static soma_trainer *trainer(soma_net *net, soma_data_opts *d, int loss, size_t batch, float rate_penalty) {
    soma_train_opts to;
    soma_train_opts_default(&to);
    to.batch = batch, to.threads = 2, to.loss = loss, to.rate_penalty = rate_penalty;
    soma_data_opts_default(d);
    d->steps = T;
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, net, &to, d) == 0, "trainer: %s", soma_net_errmsg(net));
    return tr;
}

/* ------------------------------------------------ the oracle's forward */

static double gelu(double x) { return 0.5 * x * (1.0 + erf(x / sqrt(2.0))); }

typedef struct mlpw {
    const float *w1, *b1, *w2, *b2, *w3, *b3;
} mlpw;

static void weights(soma_net *net, mlpw *w) {
    soma_tensor t;
    soma_net_tensor_find(net, "in->a1.weight", &t), w->w1 = t.data;
    soma_net_tensor_find(net, "in->a1.bias", &t), w->b1 = t.data;
    soma_net_tensor_find(net, "a1->a2.weight", &t), w->w2 = t.data;
    soma_net_tensor_find(net, "a1->a2.bias", &t), w->b2 = t.data;
    soma_net_tensor_find(net, "a2->out.weight", &t), w->w3 = t.data;
    soma_net_tensor_find(net, "a2->out.bias", &t), w->b3 = t.data;
}

/* a1's activations of sample s */
static void layer1(const mlpw *w, size_t s, double *h) {
    for (size_t i = 0; i < H1; i++) {
        double u = w->b1[i];
        for (size_t j = 0; j < D; j++) u += w->w1[i * D + j] * (X[s * D + j] / 255.0);
        h[i] = gelu(u);
    }
}

/* F (target: 0 prob, 1 logprob, 2 logit) of a1's activations h, every step the same */
static double f_of(const mlpw *w, const double *h, size_t K, int target) {
    double z[C], g[H2];
    for (size_t i = 0; i < H2; i++) {
        double u = w->b2[i];
        for (size_t j = 0; j < H1; j++) u += w->w2[i * H1 + j] * h[j];
        g[i] = gelu(u);
    }
    for (size_t c = 0; c < C; c++) {
        double u = w->b3[c];
        for (size_t j = 0; j < H2; j++) u += w->w3[c * H2 + j] * g[j];
        z[c] = T * u; /* ce_count: the sum over the T steps */
    }
    if (target == 2) return z[K];
    double mx = z[0], sum = 0;
    for (size_t c = 1; c < C; c++) mx = fmax(mx, z[c]);
    for (size_t c = 0; c < C; c++) sum += exp(z[c] - mx);
    double lp = z[K] - mx - log(sum);
    return target == 1 ? lp : exp(lp);
}

/* Reference IG over the neurons in[] of a1 (n of them), mean over class-K samples. */
static void ig_ref(const mlpw *w, size_t K, int target, const size_t *in, size_t n, size_t m, double *attr) {
    size_t S = 0;
    for (size_t u = 0; u < n; u++) attr[u] = 0;
    for (size_t s = 0; s < NS; s++) {
        if (Y[s] != K) continue;
        S++;
        double h[H1], p[H1];
        layer1(w, s, h);
        for (size_t k = 0; k < m; k++) {
            double a = (k + 0.5) / (double)m;
            memcpy(p, h, sizeof p);
            for (size_t u = 0; u < n; u++) p[in[u]] = a * h[in[u]];
            for (size_t u = 0; u < n; u++) {
                const double e = 1e-5;
                double keep = p[in[u]];
                p[in[u]] = keep + e;
                double fp = f_of(w, p, K, target);
                p[in[u]] = keep - e;
                double fm = f_of(w, p, K, target);
                p[in[u]] = keep;
                attr[u] += h[in[u]] * (fp - fm) / (2 * e) / (double)m;
            }
        }
    }
    for (size_t u = 0; u < n; u++) attr[u] /= (double)S;
}

static void check_complete(const soma_dissect_ig_result *r, const char *what) {
    double d = r->f_input - r->f_baseline;
    CHECK_MSG(fabs(d) > 1e-3, "%s: F(x) - F(x') = %g: too small to test completeness", what, d);
    CHECK_MSG(fabs(r->sum - d) <= 0.01 * fabs(d), "%s: sum of IG %.6g, F(x) - F(x') %.6g", what, r->sum, d);
    CHECK_MSG(r->gap <= 0.01, "%s: per-sample completeness gap %.4g", what, r->gap);
}

int main(void) {
    char err[512];
    soma_dataset ds;
    data(&ds);
    soma_net *net = mlp();
    soma_data_opts d;
    soma_trainer *tr = trainer(net, &d, SOMA_LOSS_CE_COUNT, 128, 0.0f);
    soma_dissect_ctx x = {tr, net, &d, &ds};
    soma_dissect_opts o;
    soma_dissect_opts_default(&o);
    soma_dissect_ig_opts io;
    soma_dissect_ig_opts_default(&io);
    CHECK(io.steps == 64 && io.target == SOMA_DISSECT_TARGET_PROB && io.baseline == 0.0f);
    mlpw w;
    weights(net, &w);
    size_t all[H1];
    for (size_t i = 0; i < H1; i++) all[i] = i;

    /* whole site, each target: completeness and the oracle */
    for (int target = 0; target < 3; target++) {
        io.target = target;
        double attr[H1], ref[H1];
        soma_dissect_ig_result r;
        int st = soma_dissect_ig_site(&x, &o, &io, 1, "a1.spikes", attr, &r, err, sizeof err);
        CHECK_MSG(st == 0, "ig_site: %s", err);
        CHECK(r.samples == NS / C && r.steps == 64 && r.target == target);
        printf("target %-7s: F(x) %.6f F(x') %.6f sum IG %.6f gap %.2e\n", soma_dissect_target_name(target), r.f_input,
               r.f_baseline, r.sum, r.gap);
        check_complete(&r, soma_dissect_target_name(target));
        ig_ref(&w, 1, target, all, H1, 64, ref);
        double mx = 0;
        for (size_t i = 0; i < H1; i++) mx = fmax(mx, fabs(ref[i]));
        for (size_t i = 0; i < H1; i++)
            CHECK_MSG(fabs(attr[i] - ref[i]) <= 1e-3 * mx + 1e-6, "%s: a1[%zu] IG %.6g, oracle %.6g",
                      soma_dissect_target_name(target), i, attr[i], ref[i]);
    }

    /* a projection's input current: completeness */
    io.target = SOMA_DISSECT_TARGET_PROB;
    {
        double attr[H2];
        soma_dissect_ig_result r;
        int st = soma_dissect_ig_site(&x, &o, &io, 2, "a1->a2.out", attr, &r, err, sizeof err);
        CHECK_MSG(st == 0, "ig_site .out: %s", err);
        check_complete(&r, "a1->a2.out");
    }

    /* a joint subset: the oracle scales only the subset */
    {
        soma_dissect_neuron set[3];
        size_t sub[3] = {0, 3, 5};
        size_t a1;
        soma_net_find_pop(net, "a1", &a1);
        for (size_t j = 0; j < 3; j++) set[j].pop = a1, set[j].index = sub[j];
        double attr[3], ref[3];
        soma_dissect_ig_result r;
        int st = soma_dissect_integrated_gradients(&x, &o, &io, 0, set, 3, attr, &r, err, sizeof err);
        CHECK_MSG(st == 0, "joint: %s", err);
        check_complete(&r, "joint {0,3,5}");
        ig_ref(&w, 0, SOMA_DISSECT_TARGET_PROB, sub, 3, 64, ref);
        for (size_t j = 0; j < 3; j++) CHECK_MSG(fabs(attr[j] - ref[j]) <= 1e-3 * fabs(ref[j]) + 1e-6, "joint a1[%zu]: %.6g vs %.6g", sub[j], attr[j], ref[j]);
        /* the same with one path split over several calls (16 rows each, m = 64) */
        double attr16[3];
        soma_dissect_opts o16 = o;
        o16.batch = 16;
        st = soma_dissect_integrated_gradients(&x, &o16, &io, 0, set, 3, attr16, NULL, err, sizeof err);
        CHECK_MSG(st == 0, "joint, batch 16: %s", err);
        for (size_t j = 0; j < 3; j++) CHECK_NEAR(attr16[j], attr[j], 1e-5);
        /* errors: a neuron twice, an output site */
        set[1] = set[0];
        CHECK(soma_dissect_integrated_gradients(&x, &o, &io, 0, set, 3, attr, NULL, err, sizeof err) == SOMA_STATUS_INVALID);
        CHECK(strstr(err, "twice") != NULL);
        CHECK(soma_dissect_ig_site(&x, &o, &io, 0, "out.spikes", attr, NULL, err, sizeof err) == SOMA_STATUS_UNSUPPORTED);
        CHECK(soma_dissect_ig_site(&x, &o, &io, 0, "nope.spikes", attr, NULL, err, sizeof err) == SOMA_STATUS_NOTFOUND);
        CHECK(soma_dissect_ig_site(&x, &o, &io, 7, "a1.spikes", attr, NULL, err, sizeof err) == SOMA_STATUS_INVALID);
    }
    soma_train_free(tr);

    /* refusals: a rate penalty; logit with a membrane loss */
    {
        double attr[H1];
        tr = trainer(net, &d, SOMA_LOSS_CE_COUNT, 32, 0.1f);
        x.tr = tr;
        CHECK(soma_dissect_ig_site(&x, &o, &io, 0, "a1.spikes", attr, NULL, err, sizeof err) == SOMA_STATUS_UNSUPPORTED);
        CHECK(strstr(err, "rate penalty") != NULL);
        soma_train_free(tr);
        tr = trainer(net, &d, SOMA_LOSS_CE_MEM, 32, 0.0f);
        x.tr = tr;
        io.target = SOMA_DISSECT_TARGET_LOGIT;
        CHECK(soma_dissect_ig_site(&x, &o, &io, 0, "a1.spikes", attr, NULL, err, sizeof err) == SOMA_STATUS_UNSUPPORTED);
        CHECK(strstr(err, "logit") != NULL);
        /* prob with the membrane loss (mean over steps of the per-step CE): complete too */
        io.target = SOMA_DISSECT_TARGET_PROB;
        soma_dissect_ig_result r;
        CHECK(soma_dissect_ig_site(&x, &o, &io, 2, "a1.spikes", attr, &r, err, sizeof err) == 0);
        check_complete(&r, "ce_mem, prob");
        soma_train_free(tr);
    }
    soma_net_free(net);

    /* spiking: in -> h lif -> out lif, ce_rate; completeness is approximate only */
    {
        soma_net *sn = NULL;
        size_t in, h, out;
        int st = soma_net_create(&sn);
        st |= soma_net_add_pop(sn, "in", "input", D, &in);
        st |= soma_net_add_pop(sn, "h", "lif", 16, &h);
        st |= soma_net_add_pop(sn, "out", "lif", C, &out);
        st |= soma_net_set_param(sn, h, "threshold", 0.3f);
        st |= soma_net_set_param(sn, out, "threshold", 0.3f);
        st |= soma_net_connect_dense(sn, in, h, 1);
        st |= soma_net_connect_dense(sn, h, out, 1);
        st |= soma_net_init_weights(sn, 5);
        CHECK_MSG(st == 0, "spiking net: %s", soma_net_errmsg(sn));
        soma_data_opts sd;
        soma_trainer *st_tr = trainer(sn, &sd, SOMA_LOSS_CE_RATE, 64, 0.0f);
        sd.steps = T;
        soma_dissect_ctx sx = {st_tr, sn, &sd, &ds};
        double attr[16];
        soma_dissect_ig_result r;
        io.steps = 64;
        CHECK(soma_dissect_ig_site(&sx, &o, &io, 0, "h.spikes", attr, &r, err, sizeof err) == 0);
        double mx = 0;
        for (size_t i = 0; i < 16; i++) mx = fmax(mx, fabs(attr[i]));
        CHECK(isfinite(r.sum) && isfinite(r.gap));
        printf("spiking h.spikes (lif -> lif, surrogate gradients): F(x) %.5f F(x') %.5f sum IG %.5f, "
               "completeness gap %.3f (not asserted), max |IG| %.4f\n", r.f_input, r.f_baseline, r.sum, r.gap, mx);
        soma_train_free(st_tr);
        soma_net_free(sn);
    }
    return t_report("test_dissect_ig");
}
