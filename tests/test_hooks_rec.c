/* test_hooks_rec.c — the sites of a population's recurrent weights,
 * `h->h.in` (its outputs of the previous step as the recurrent product
 * reads them) and `h->h.out` (the product W x added to its input), in the
 * trainer.
 *
 * Net: in (5) -> h (ann, linear, recurrent, 6) -> out (lif, 4), loss
 * ce_mem, T = 6, a batch of 4 in one chunk. A linear hidden layer keeps
 * the loss smooth in the recurrent current, so its gradient is a
 * derivative that finite differences can check.
 *  a. the sites are listed, with proj = projection count + population;
 *  b. READ at h->h.out sees W s[t-1] of what READ at h.spikes saw;
 *  c. MASK 0 at h->h.out, and at h->h.in, give the loss of the same net
 *     with its recurrent weights set to 0;
 *  d. GRAD at h->h.out equals central differences of the loss in that
 *     current (an OVERRIDE hook adds +-eps to one value), and GRAD at
 *     h->h.in sees W^T of it;
 *  e. GRAD set to 0 at h->h.out leaves the recurrent weights no gradient;
 *     hooks that change nothing change no gradient (bit for bit).
 * And in the simulator (f): a recurrent iaf_psc_delta population driven by
 * a current; READ at h->h.out sees W s[t-1] (its spikes of the step
 * before, seen by READ at h.spikes); MASK 0 there gives the spikes of the
 * same net with zero recurrent weights; with 1 and 2 threads.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

#define D 5
#define NH 6
#define NO 4
#define B 4
#define T 6

static float xin[T * B * D];
static uint8_t yl[B];
static float spk[T][B][NH], rout[T][B][NH], gout[T][B][NH], gin[T][B][NH];
static int eps_t = -1, eps_b, eps_j;
static float eps_v;

static int rd_spk(void *u, const soma_hook_event *ev) {
    (void)u;
    for (size_t r = 0; r < ev->batch; r++) memcpy(spk[ev->step][ev->row0 + r], ev->data + r * ev->n, NH * sizeof(float));
    return 0;
}
static int rd_out(void *u, const soma_hook_event *ev) {
    (void)u;
    for (size_t r = 0; r < ev->batch; r++) memcpy(rout[ev->step][ev->row0 + r], ev->data + r * ev->n, NH * sizeof(float));
    return 0;
}
static int rd_gout(void *u, const soma_hook_event *ev) {
    (void)u;
    for (size_t r = 0; r < ev->batch; r++) memcpy(gout[ev->step][ev->row0 + r], ev->data + r * ev->n, NH * sizeof(float));
    return 0;
}
static int rd_gin(void *u, const soma_hook_event *ev) {
    (void)u;
    for (size_t r = 0; r < ev->batch; r++) memcpy(gin[ev->step][ev->row0 + r], ev->data + r * ev->n, NH * sizeof(float));
    return 0;
}
static int zero(void *u, const soma_hook_event *ev) {
    (void)u;
    memset(ev->data, 0, ev->batch * ev->n * sizeof(float));
    return 0;
}
static int nudge(void *u, const soma_hook_event *ev) { /* OVERRIDE: add eps_v to one value */
    (void)u;
    if ((int)ev->step == eps_t && (size_t)eps_b >= ev->row0 && (size_t)eps_b < ev->row0 + ev->batch)
        ev->data[(eps_b - ev->row0) * ev->n + eps_j] += eps_v;
    return 0;
}

static soma_net *make_net(size_t *hpop) {
    soma_net *net = NULL;
    size_t in, h, o;
    int st = soma_net_create(&net);
    st |= soma_net_add_pop(net, "in", "input", D, &in);
    st |= soma_net_add_pop(net, "h", "ann", NH, &h);
    st |= soma_net_set_param(net, h, "activation", 2.0f);
    st |= soma_net_set_recurrent(net, h, 1);
    st |= soma_net_add_pop(net, "out", "lif", NO, &o);
    st |= soma_net_set_param(net, o, "beta", 0.85f);
    st |= soma_net_connect_dense(net, in, h, 1);
    st |= soma_net_connect_dense(net, h, o, 1);
    st |= soma_net_init_weights(net, 9);
    CHECK_MSG(st == 0, "net: %s", soma_net_errmsg(net));
    if (hpop) *hpop = h;
    return net;
}

static soma_trainer *make_trainer(soma_net *net) {
    soma_train_opts to;
    soma_data_opts d;
    soma_train_opts_default(&to);
    to.loss = SOMA_LOSS_CE_MEM;
    to.batch = B;
    to.threads = 1;
    soma_data_opts_default(&d);
    d.steps = T;
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, net, &to, &d) == 0, "%s", soma_net_errmsg(net));
    return tr;
}

/* Loss of one batch with the hooks (site, kind, fn) given, NULL-terminated. */
static double loss_with(soma_trainer *tr, const char *const *site, const int *kind, soma_hook_fn const *fn, size_t n) {
    soma_hooks *h = NULL;
    soma_hooks_create(&h);
    for (size_t i = 0; i < n; i++) CHECK(soma_hooks_add(h, site[i], kind[i], fn[i], NULL) == 0);
    int st = soma_train_set_hooks(tr, h);
    CHECK_MSG(st == 0, "set hooks: %s", soma_train_errmsg(tr));
    soma_hooks_free(h);
    double loss = NAN;
    CHECK(soma_train_grad(tr, xin, 0, yl, B, &loss, NULL) == 0);
    return loss;
}

static void grads(soma_net *net, soma_trainer *tr, float *g, size_t cap, size_t *n) {
    *n = 0;
    for (size_t i = 0; i < soma_net_tensor_count(net); i++) {
        soma_tensor t;
        soma_train_tensor(tr, i, &t);
        for (size_t e = 0; e < t.rows * t.cols && *n < cap; e++) g[(*n)++] = t.grad[e];
    }
}

/* ------------------------------------------------------------ simulator */
#define SN 24
#define SSTEPS 400
static float sspk[SSTEPS][SN], sout[SSTEPS][SN];
static int s_rd_spk(void *u, const soma_hook_event *ev) {
    (void)u;
    if (ev->step < SSTEPS) memcpy(&sspk[ev->step][ev->first], ev->data, ev->n * sizeof(float));
    return 0;
}
static int s_rd_out(void *u, const soma_hook_event *ev) {
    (void)u;
    if (ev->step < SSTEPS) memcpy(&sout[ev->step][ev->first], ev->data, ev->n * sizeof(float));
    return 0;
}

/* Spikes (step, id) of the recurrent net run for SSTEPS steps, with the hooks
 * given; rec_zero: its recurrent weights set to 0. Returns the count. */
static size_t sim_run(int threads, int rec_zero, const char *const *site, const int *kind, soma_hook_fn const *fn,
                      size_t nh, soma_spike *out, size_t cap) {
    soma_net *net = NULL;
    size_t h;
    int st = soma_net_create(&net);
    st |= soma_net_add_pop(net, "h", "iaf_psc_delta", SN, &h);
    st |= soma_net_set(net, h, "I_e", "400pA + 20pA*i");
    st |= soma_net_set_recurrent(net, h, 1);
    st |= soma_net_init_weights(net, 4);
    CHECK_MSG(st == 0, "sim net: %s", soma_net_errmsg(net));
    soma_tensor rw;
    CHECK(soma_net_tensor_find(net, "h->h.weight", &rw) == 0);
    for (size_t e = 0; e < rw.rows * rw.cols; e++) rw.data[e] = rec_zero ? 0.0f : (float)((e * 7) % 11) * 0.3f - 1.2f;
    static float W[SN * SN];
    memcpy(W, rw.data, sizeof W);
    soma_sim_opts o;
    soma_sim_opts_default(&o);
    o.threads = threads;
    soma_sim *sim = NULL;
    char err[512];
    size_t n = 0;
    if (soma_sim_create(&sim, net, &o, err, sizeof err) == 0) {
        soma_hooks *hk = NULL;
        soma_hooks_create(&hk);
        for (size_t i = 0; i < nh; i++) CHECK(soma_hooks_add(hk, site[i], kind[i], fn[i], NULL) == 0);
        CHECK_MSG(soma_sim_set_hooks(sim, hk) == 0, "%s", soma_sim_errmsg(sim));
        soma_hooks_free(hk);
        CHECK(soma_sim_run(sim, SSTEPS * 0.1, NULL, NULL) == 0);
        size_t ns = 0;
        const soma_spike *sp = soma_sim_spikes(sim, &ns);
        for (size_t k = 0; k < ns && n < cap; k++) out[n++] = sp[k];
    } else CHECK_MSG(0, "%s", err);
    /* READ at h->h.out = W s[t-1] */
    if (nh == 2 && !rec_zero) {
        double worst = 0;
        size_t nz = 0;
        for (int t = 1; t < SSTEPS; t++)
            for (int j = 0; j < SN; j++) {
                double want = 0;
                for (int i = 0; i < SN; i++) want += (double)W[j * SN + i] * sspk[t - 1][i];
                worst = fmax(worst, fabs(sout[t][j] - want));
                nz += want != 0;
            }
        CHECK_MSG(worst < 1e-4 && nz > 50, "simulator, READ at h->h.out: %g off W s[t-1] (%zu nonzero)", worst, nz);
    }
    soma_sim_free(sim);
    soma_net_free(net);
    return n;
}

static void test_sim_rec(int threads) {
    static soma_spike a[20000], b[20000], c[20000];
    const char *s2[] = {"h.spikes", "h->h.out"};
    int k2[] = {SOMA_HOOK_READ, SOMA_HOOK_READ};
    soma_hook_fn f2[] = {s_rd_spk, s_rd_out};
    size_t na = sim_run(threads, 0, s2, k2, f2, 2, a, 20000);
    const char *s1[] = {"h->h.out"};
    int k1[] = {SOMA_HOOK_MASK};
    soma_hook_fn f1[] = {zero};
    size_t nb = sim_run(threads, 0, s1, k1, f1, 1, b, 20000);
    size_t nc = sim_run(threads, 1, NULL, NULL, NULL, 0, c, 20000);
    CHECK_MSG(nb == nc && memcmp(b, c, nb * sizeof *b) == 0, "%d threads: MASK 0 at h->h.out: %zu spikes, zero "
              "recurrent weights: %zu", threads, nb, nc);
    CHECK_MSG(na != nc || memcmp(a, c, na * sizeof *a) != 0, "the recurrence changes nothing here");
    CHECK(na > 100);
}

int main(void) {
    test_sim_rec(1);
    test_sim_rec(2);
    soma_rng rng;
    soma_rng_init(&rng, 3, 1);
    for (size_t i = 0; i < sizeof xin / sizeof xin[0]; i++) xin[i] = soma_rng_uniform(&rng);
    for (size_t b = 0; b < B; b++) yl[b] = (uint8_t)(b % NO);
    size_t hp;
    soma_net *net = make_net(&hp);
    if (!net) return t_report("test_hooks_rec");

    /* a. the sites */
    size_t si_in, si_out;
    CHECK(soma_net_site_find(net, "h->h.in", &si_in) == 0);
    CHECK(soma_net_site_find(net, "h->h.out", &si_out) == 0);
    soma_site_info info;
    CHECK(soma_net_site(net, si_out, &info) == 0);
    CHECK(info.kind == SOMA_SITE_PROJ_OUT && info.proj == soma_net_proj_count(net) + hp && info.pop == hp &&
          info.from == hp && info.size == NH);
    CHECK(soma_net_site(net, soma_net_site_count(net), &info) != 0);

    soma_trainer *tr = make_trainer(net);
    if (!tr) return t_report("test_hooks_rec");
    soma_tensor rw;
    CHECK(soma_net_tensor_find(net, "h->h.weight", &rw) == 0);
    float g0[512], g1[512];
    size_t n0, n1;
    double l0 = loss_with(tr, NULL, NULL, NULL, 0);
    grads(net, tr, g0, 512, &n0);

    /* b. READ at h->h.out = W s[t-1] */
    {
        const char *s[] = {"h.spikes", "h->h.out"};
        int k[] = {SOMA_HOOK_READ, SOMA_HOOK_READ};
        soma_hook_fn f[] = {rd_spk, rd_out};
        memset(rout, 0, sizeof rout);
        double l = loss_with(tr, s, k, f, 2);
        CHECK(l == l0);
        double worst = 0;
        for (int t = 1; t < T; t++)
            for (int b = 0; b < B; b++)
                for (int j = 0; j < NH; j++) {
                    double want = 0;
                    for (int i = 0; i < NH; i++) want += (double)rw.data[j * NH + i] * spk[t - 1][b][i];
                    worst = fmax(worst, fabs(rout[t][b][j] - want));
                }
        CHECK_MSG(worst < 1e-5, "READ at h->h.out differs from W s[t-1] by %g", worst);
    }
    /* c. MASK 0 at h->h.out or h->h.in = no recurrent weights */
    {
        const char *so[] = {"h->h.out"}, *si[] = {"h->h.in"};
        int k[] = {SOMA_HOOK_MASK};
        soma_hook_fn f[] = {zero};
        double lo = loss_with(tr, so, k, f, 1), li = loss_with(tr, si, k, f, 1);
        soma_net *n2 = make_net(NULL);
        soma_tensor rw2;
        soma_net_tensor_find(n2, "h->h.weight", &rw2);
        memset(rw2.data, 0, rw2.rows * rw2.cols * sizeof(float));
        soma_trainer *t2 = make_trainer(n2);
        double lz = t2 ? loss_with(t2, NULL, NULL, NULL, 0) : NAN;
        CHECK_MSG(fabs(lo - lz) <= 1e-6 * fabs(lz) && fabs(li - lz) <= 1e-6 * fabs(lz),
                  "masked recurrence: loss %.9g (out) %.9g (in), without recurrent weights %.9g", lo, li, lz);
        CHECK(fabs(lz - l0) > 1e-4); /* the recurrence matters here */
        soma_train_free(t2);
        soma_net_free(n2);
    }
    /* d. GRAD at h->h.out against central differences; GRAD at h->h.in = W^T of it */
    {
        const char *s[] = {"h->h.out", "h->h.in"};
        int k[] = {SOMA_HOOK_GRAD, SOMA_HOOK_GRAD};
        soma_hook_fn f[] = {rd_gout, rd_gin};
        double l = loss_with(tr, s, k, f, 2);
        CHECK(l == l0);
        /* GRAD hooks that write nothing change no gradient: to rounding with
         * the one at h->h.in (its product is computed apart, then added),
         * bit for bit with the one at h->h.out alone (below). */
        grads(net, tr, g1, 512, &n1);
        CHECK(n1 == n0);
        for (size_t i = 0; i < n0 && n1 == n0; i++)
            CHECK_MSG(fabsf(g0[i] - g1[i]) <= 1e-6f * fmaxf(1.0f, fabsf(g0[i])), "gradient %zu: %.9g, with GRAD hooks %.9g",
                      i, g0[i], g1[i]);
        double l1 = loss_with(tr, s, k, f, 1);
        CHECK(l1 == l0);
        grads(net, tr, g1, 512, &n1);
        CHECK(n1 == n0 && memcmp(g0, g1, n0 * sizeof(float)) == 0);
        double worst = 0;
        for (int t = 1; t < T; t++)
            for (int b = 0; b < B; b++)
                for (int j = 0; j < NH; j++) {
                    double want = 0;
                    for (int i = 0; i < NH; i++) want += (double)rw.data[i * NH + j] * gout[t][b][i];
                    worst = fmax(worst, fabs(gin[t][b][j] - want));
                }
        CHECK_MSG(worst < 1e-6, "GRAD at h->h.in differs from W^T GRAD at h->h.out by %g", worst);
        const char *so[] = {"h->h.out"};
        int ko[] = {SOMA_HOOK_OVERRIDE};
        soma_hook_fn fo[] = {nudge};
        int checked = 0;
        for (int t = 1; t < T; t += 2)
            for (int b = 0; b < B; b += 3)
                for (int j = 0; j < NH; j += 2) {
                    eps_t = t, eps_b = b, eps_j = j;
                    const float h = 1e-2f;
                    double f[4];
                    const float m[4] = {1, -1, 2, -2};
                    for (int q = 0; q < 4; q++) {
                        eps_v = m[q] * h;
                        f[q] = loss_with(tr, so, ko, fo, 1);
                    }
                    double fd = (8.0 * (f[0] - f[1]) - (f[2] - f[3])) / (12.0 * h);
                    double g = gout[t][b][j], tol = 5e-3 * fmax(fabs(g), 1e-3) + 4e-7 * fabs(l0) / h;
                    CHECK_MSG(fabs(fd - g) <= tol, "dL/d(h->h.out)[t %d][b %d][%d]: GRAD %.7g, finite difference %.7g", t,
                              b, j, g, fd);
                    checked++;
                }
        CHECK(checked >= 10);
        eps_t = -1;
    }
    /* e. GRAD 0 at h->h.out: no recurrent weight gradient, the others still have one */
    {
        const char *s[] = {"h->h.out"};
        int k[] = {SOMA_HOOK_GRAD};
        soma_hook_fn f[] = {zero};
        loss_with(tr, s, k, f, 1);
        for (size_t i = 0; i < soma_net_tensor_count(net); i++) {
            soma_tensor ti;
            soma_train_tensor(tr, i, &ti);
            double sum = 0;
            for (size_t e = 0; e < ti.rows * ti.cols; e++) sum += fabs(ti.grad[e]);
            if (!strcmp(ti.name, "h->h.weight")) CHECK_MSG(sum == 0.0, "recurrent weight gradient %g with GRAD 0", sum);
            else CHECK_MSG(sum > 0.0, "%s has no gradient", ti.name);
        }
    }
    soma_train_free(tr);
    soma_net_free(net);
    return t_report("test_hooks_rec");
}
