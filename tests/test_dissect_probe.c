/* test_dissect_probe.c — the linear probe (select --by probe).
 *
 * 1. soma_dissect_probe_fit against a reference written here: the same
 *    L2-penalised logistic regression on standardised values solved by
 *    Newton's method in double (Gaussian elimination on the 7 x 7 system)
 *    on a small noisy problem; weights, bias and objective must agree.
 * 2. A wired net in(24) -> h ann relu(24) (identity weights) -> out: h[5]
 *    is 1 for class 1 and 0 for class 0 (it separates class 1 perfectly),
 *    the other 23 neurons are pseudo-random noise. The probe for class 1
 *    ranks h[5] first with z > 3, and the cut --z 3 selects h[5] alone.
 *    T = 2 with direct input: max-pooling over the steps is the value. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

static uint32_t lcg(uint32_t *r) { return *r = *r * 1664525u + 1013904223u; }

/* Newton on f(w, b) = mean softplus(m) - y m + l2/2 |w|^2 with standardised z. */
#define RH 6
#define RN 120
static void reference(const float *x, const uint8_t *y, double l2, double *w, double *b, double *fobj) {
    double mu[RH] = {0}, sd[RH] = {0}, z[RN][RH];
    for (int s = 0; s < RN; s++)
        for (int j = 0; j < RH; j++) mu[j] += x[s * RH + j] / (double)RN;
    for (int s = 0; s < RN; s++)
        for (int j = 0; j < RH; j++) sd[j] += (x[s * RH + j] - mu[j]) * (x[s * RH + j] - mu[j]) / (double)RN;
    for (int s = 0; s < RN; s++)
        for (int j = 0; j < RH; j++) z[s][j] = (x[s * RH + j] - mu[j]) / sqrt(sd[j]);
    double th[RH + 1] = {0}; /* w, then b */
    for (int it = 0; it < 50; it++) {
        double g[RH + 1] = {0}, A[RH + 1][RH + 2] = {{0}};
        for (int s = 0; s < RN; s++) {
            double m = th[RH], f[RH + 1];
            for (int j = 0; j < RH; j++) m += th[j] * z[s][j], f[j] = z[s][j];
            f[RH] = 1;
            double p = 1 / (1 + exp(-m)), r = p - y[s], c = p * (1 - p);
            for (int a = 0; a <= RH; a++) {
                g[a] += r * f[a] / RN;
                for (int q = 0; q <= RH; q++) A[a][q] += c * f[a] * f[q] / RN;
            }
        }
        for (int j = 0; j < RH; j++) g[j] += l2 * th[j], A[j][j] += l2;
        for (int a = 0; a <= RH; a++) A[a][RH + 1] = g[a];
        for (int k = 0; k <= RH; k++) /* elimination (A is positive definite: no pivoting) */
            for (int a = k + 1; a <= RH; a++) {
                double q = A[a][k] / A[k][k];
                for (int c = k; c <= RH + 1; c++) A[a][c] -= q * A[k][c];
            }
        double d[RH + 1];
        for (int a = RH; a >= 0; a--) {
            double v = A[a][RH + 1];
            for (int c = a + 1; c <= RH; c++) v -= A[a][c] * d[c];
            d[a] = v / A[a][a];
        }
        for (int a = 0; a <= RH; a++) th[a] -= d[a];
    }
    double f = 0, ww = 0;
    for (int s = 0; s < RN; s++) {
        double m = th[RH];
        for (int j = 0; j < RH; j++) m += th[j] * z[s][j];
        f += (m > 0 ? m + log1p(exp(-m)) : log1p(exp(m))) - y[s] * m;
    }
    for (int j = 0; j < RH; j++) w[j] = th[j], ww += th[j] * th[j];
    *b = th[RH];
    *fobj = f / RN + 0.5 * l2 * ww;
}

static void fit_vs_reference(void) {
    float x[RN * RH];
    uint8_t y[RN];
    uint32_t r = 7;
    for (int s = 0; s < RN; s++) {
        double t = 0;
        for (int j = 0; j < RH; j++) {
            x[s * RH + j] = (float)(lcg(&r) >> 8) / (float)(1 << 24) * (float)(j + 1); /* different scales */
            t += (j == 0 ? 2.0 : j == 1 ? -1.0 : 0.0) * x[s * RH + j] / (j + 1);
        }
        y[s] = (uint8_t)(t + 0.6 * ((double)(lcg(&r) >> 8) / (1 << 24) - 0.5) > 0.5); /* noisy: not separable */
    }
    for (int k = 0; k < 2; k++) {
        double l2 = k ? 1e-1 : 1e-2, w[RH], wr[RH], br, fr;
        reference(x, y, l2, wr, &br, &fr);
        soma_dissect_probe_opts po;
        soma_dissect_probe_opts_default(&po);
        po.l2 = l2, po.tol = 1e-10, po.iters = 20000;
        soma_dissect_probe_result res;
        char err[256];
        CHECK_MSG(soma_dissect_probe_fit(x, y, RN, RH, &po, w, &res, err, sizeof err) == 0, "fit: %s", err);
        printf("l2 %g: %zu steps, max |g| %.3g\n", l2, res.iters, res.grad_max);
        CHECK_MSG(res.converged, "converged after %zu steps, max |g| %g", res.iters, res.grad_max);
        for (int j = 0; j < RH; j++) CHECK_NEAR(w[j], wr[j], 1e-7);
        CHECK_NEAR(res.bias, br, 1e-7);
        CHECK_NEAR(res.objective, fr, 1e-10);
        CHECK(fabs(wr[0]) > 0.3 && wr[0] > 0 && wr[1] < 0); /* the reference found the planted signs */
    }
    /* bad input is named */
    uint8_t none[RN] = {0};
    double w[RH];
    char err[256] = "";
    CHECK(soma_dissect_probe_fit(x, none, RN, RH, NULL, w, NULL, err, sizeof err) == SOMA_STATUS_INVALID && strstr(err, "both groups"));
}

#define NH 24
#define NS 400

static void set_tensor(soma_net *net, const char *name, const float *v, size_t n) {
    soma_tensor t;
    int st = soma_net_tensor_find(net, name, &t);
    CHECK_MSG(st == 0 && t.rows * t.cols == n, "tensor %s", name);
    if (st == 0 && t.rows * t.cols == n) memcpy(t.data, v, n * sizeof *v);
}

static void planted_neuron(void) {
    soma_net *net = NULL;
    size_t in, h, out;
    int st = soma_net_create(&net);
    st |= soma_net_add_pop(net, "in", "input", NH, &in);
    st |= soma_net_add_pop(net, "h", "ann", NH, &h);
    st |= soma_net_add_pop(net, "out", "ann", 2, &out);
    st |= soma_net_set_param(net, out, "activation", 2.0f);
    st |= soma_net_connect_dense(net, in, h, 1);
    st |= soma_net_connect_dense(net, h, out, 1);
    st |= soma_net_init_weights(net, 1);
    CHECK_MSG(st == 0, "net: %s", soma_net_errmsg(net));
    static float w1[NH * NH], b1[NH], w2[2 * NH], b2[2];
    for (int i = 0; i < NH; i++) w1[i * NH + i] = 1;
    set_tensor(net, "in->h.weight", w1, NH * NH), set_tensor(net, "in->h.bias", b1, NH);
    set_tensor(net, "h->out.weight", w2, 2 * NH), set_tensor(net, "h->out.bias", b2, 2);
    static uint8_t x[NS * NH], y[NS];
    uint32_t r = 99;
    for (int s = 0; s < NS; s++) {
        y[s] = (uint8_t)((lcg(&r) >> 16) & 1);
        for (int j = 0; j < NH; j++) x[s * NH + j] = (uint8_t)(lcg(&r) >> 24);
        x[s * NH + 5] = y[s] ? 255 : 0;
    }
    soma_dataset ds = {0};
    ds.n = NS, ds.dim = NH, ds.rows = 1, ds.cols = NH, ds.classes = 2, ds.x = x, ds.y = y;
    soma_train_opts to;
    soma_train_opts_default(&to);
    to.batch = 64, to.threads = 2;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.steps = 2;
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, net, &to, &d) == 0, "trainer: %s", soma_net_errmsg(net));
    soma_dissect_ctx cx = {tr, net, &d, &ds};
    soma_dissect_opts o;
    soma_dissect_opts_default(&o);
    o.batch = 50;
    char err[512];
    soma_dissect_stats *s = NULL;
    CHECK_MSG(soma_dissect_stats_run(&cx, &o, &s, err, sizeof err) == 0, "stats: %s", err);
    double z[NH], w[NH];
    soma_dissect_probe_result res;
    CHECK_MSG(soma_dissect_probe_scores(&cx, &o, s, 1, NULL, z, w, &res, err, sizeof err) == 0, "probe: %s", err);
    CHECK(res.samples == NS && res.converged && res.accuracy == 1.0);
    size_t best = 0;
    for (size_t j = 1; j < NH; j++) best = z[j] > z[best] ? j : best;
    CHECK_MSG(best == 5 && z[5] > 3, "best %zu, z[5] = %g", best, z[5]);
    for (size_t j = 0; j < NH; j++)
        if (j != 5) CHECK_MSG(z[j] < 1.0, "noise neuron %zu: z %g", j, z[j]);
    /* class 0: the same neuron, its weight negative */
    CHECK_MSG(soma_dissect_probe_scores(&cx, &o, s, 0, NULL, z, w, &res, err, sizeof err) == 0, "probe: %s", err);
    CHECK_MSG(z[5] < -3, "class 0: z[5] = %g", z[5]);
    /* --z 3: h[5] alone; top 2 by z: h[5] first */
    soma_dissect_neuron sel[NH];
    double val[NH];
    size_t n = 0;
    CHECK_MSG(soma_dissect_probe_select(&cx, &o, s, 1, NULL, 3.0, 0, 0, 0, sel, val, NH, &n, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(n == 1 && sel[0].pop == h && sel[0].index == 5 && val[0] > 3);
    CHECK_MSG(soma_dissect_select(&cx, &o, s, SOMA_DISSECT_BY_PROBE, 1, 2, 0, 0, sel, val, NH, &n, err, sizeof err) == 0, "%s", err);
    CHECK(n == 2 && sel[0].index == 5);
    /* a cut no neuron passes is an error naming it */
    CHECK(soma_dissect_probe_select(&cx, &o, s, 1, NULL, 50.0, 0, 0, 0, sel, val, NH, &n, NULL, err, sizeof err) ==
              SOMA_STATUS_NOTFOUND && strstr(err, "exceeds 50"));
    int by = -1;
    CHECK(soma_dissect_by_parse("probe", &by, err, sizeof err) == 0 && by == SOMA_DISSECT_BY_PROBE);
    CHECK(!strcmp(soma_dissect_by_name(SOMA_DISSECT_BY_PROBE), "probe"));
    soma_dissect_stats_free(s);
    soma_train_free(tr);
    soma_net_free(net);
}

int main(void) {
    fit_vs_reference();
    planted_neuron();
    return t_report("dissect_probe");
}
