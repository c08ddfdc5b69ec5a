/* test_dissect_grad.c — the gradients the trainer hands to GRAD hooks, the
 * ground dissect's attributions (activation x gradient, integrated
 * gradients) stand on, against central finite differences of the loss.
 *
 * For a site S, a row r, a step t and a neuron i: a GRAD hook on S records
 * g = dL/dS[r][t][i] during soma_train_grad (L the batch-mean loss it
 * returns); an OVERRIDE hook on S adds +-eps to that one value in the
 * forward pass, and (L(+eps) - L(-eps)) / (2 eps) must equal g.
 *
 * What is FD-comparable. The trainer differentiates spiking neurons with a
 * surrogate dS/dU, so a gradient that passes through a spike threshold is
 * not the derivative of the loss the forward pass computes (that loss is
 * piecewise constant in anything upstream of a threshold: its finite
 * difference is 0 or a jump). The comparable sites are those whose whole
 * way to the loss is graded:
 *   - `<pop>.spikes` of a lif layer that feeds only graded (ann) layers: the
 *     value passed on is perturbed, the lif's own reset reads its membrane
 *     and carries no gradient (lif.c), so only the graded path below counts;
 *   - `<from>-><to>.out` of a projection into an ann layer (its input current);
 *   - `<pop>.spikes` (the activations) of an ann layer.
 * Not comparable, and not checked here: `<from>-><to>.out` into a lif layer
 * (the surrogate's dS/dU stands where the true derivative is 0 almost
 * everywhere) and anything upstream of a spiking layer.
 *
 * Two nets: in(4) -> h1 lif(6) -> h2 ann gelu(5) -> out ann linear(3) with
 * loss ce_count, and in(4) -> a1 ann gelu(6) -> a2 ann gelu(5) -> out ann
 * linear(3) with loss ce_mem (the membrane path of the loss, dv). Random
 * weights, two samples, T = 5, two threads. Per site the checked values
 * are the one with the largest |g| and a few fixed others; the test also
 * requires the largest |g| to be well above 0 so that it cannot pass on
 * zeros. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

#define T 5
#define B 2
#define D 4

typedef struct probe {
    size_t n;        /* values per row of the site */
    float *grad;     /* [T][B][n]: the gradient the GRAD hook saw */
    size_t r, t, i;  /* the value perturbed */
    float delta;     /* added to it in forward */
} probe;

static int grad_cb(void *user, const soma_hook_event *ev) {
    probe *p = user;
    for (size_t r = 0; r < ev->batch; r++)
        memcpy(p->grad + (ev->step * B + ev->row0 + r) * p->n, ev->data + r * ev->n, p->n * sizeof(float));
    return 0;
}

static int add_cb(void *user, const soma_hook_event *ev) {
    probe *p = user;
    if (ev->step != p->t || p->delta == 0.0f) return 0;
    for (size_t r = 0; r < ev->batch; r++)
        if (ev->row0 + r == p->r) ev->data[r * ev->n + p->i] += p->delta;
    return 0;
}

static double loss_with(soma_trainer *tr, const float *x, const uint8_t *y, probe *p, float delta) {
    double loss = NAN;
    p->delta = delta;
    int st = soma_train_grad(tr, x, 1, y, B, &loss, NULL);
    CHECK_MSG(st == 0, "soma_train_grad: %s", soma_train_errmsg(tr));
    p->delta = 0.0f;
    return loss;
}

/* Compare the GRAD hook's values on `site` with finite differences. */
static void check_site(soma_trainer *tr, const soma_net *net, const float *x, const uint8_t *y, const char *site) {
    size_t sid;
    soma_site_info si;
    CHECK_MSG(soma_net_site_find(net, site, &sid) == 0 && soma_net_site(net, sid, &si) == 0, "site %s", site);
    probe p = {si.size, calloc(T * B * si.size, sizeof(float)), 0, 0, 0, 0.0f};
    soma_hooks *h = NULL;
    soma_hooks_create(&h);
    soma_hooks_add(h, site, SOMA_HOOK_OVERRIDE, add_cb, &p);
    soma_hooks_add(h, site, SOMA_HOOK_GRAD, grad_cb, &p);
    int st = soma_train_set_hooks(tr, h);
    CHECK_MSG(st == 0, "hooks on %s: %s", site, soma_train_errmsg(tr));
    soma_hooks_free(h);
    double l0 = loss_with(tr, x, y, &p, 0.0f);
    float *g = malloc(T * B * si.size * sizeof *g);
    memcpy(g, p.grad, T * B * si.size * sizeof *g);
    size_t n = T * B * si.size, best = 0;
    for (size_t k = 1; k < n; k++)
        if (fabsf(g[k]) > fabsf(g[best])) best = k;
    CHECK_MSG(fabsf(g[best]) > 1e-3f, "%s: largest |dL/ds| %g: nothing to compare", site, (double)g[best]);
    size_t pick[5] = {best, 0, n / 3, n / 2, n - 1};
    const float eps = 1e-2f;
    for (size_t k = 0; k < 5; k++) {
        size_t e = pick[k];
        p.t = e / (B * si.size), p.r = (e / si.size) % B, p.i = e % si.size;
        double lp = loss_with(tr, x, y, &p, eps), lm = loss_with(tr, x, y, &p, -eps);
        double fd = (lp - lm) / (2.0 * eps), gv = g[e];
        /* float forward: the loss carries ~1e-7 relative noise, and the
         * central difference an O(eps^2) curvature term */
        double tol = 2e-4 + 2e-2 * fabs(gv);
        CHECK_MSG(fabs(fd - gv) <= tol, "%s[row %zu][t %zu][%zu]: GRAD %.7g, finite difference %.7g (loss %.9g)", site,
                  p.r, p.t, p.i, gv, fd, l0);
    }
    soma_train_set_hooks(tr, NULL);
    free(g), free(p.grad);
}

static soma_net *make_net(const char *h1_model, const char *h1, const char *h2, uint64_t seed) {
    soma_net *net = NULL;
    size_t in, a, b, out;
    int st = soma_net_create(&net);
    st |= soma_net_add_pop(net, "in", "input", D, &in);
    st |= soma_net_add_pop(net, h1, h1_model, 6, &a);
    st |= soma_net_add_pop(net, h2, "ann", 5, &b);
    st |= soma_net_add_pop(net, "out", "ann", 3, &out);
    if (!strcmp(h1_model, "lif")) st |= soma_net_set_param(net, a, "beta", 0.8f), st |= soma_net_set_param(net, a, "threshold", 0.5f);
    else st |= soma_net_set_param(net, a, "activation", 1.0f); /* gelu */
    st |= soma_net_set_param(net, b, "activation", 1.0f);
    st |= soma_net_set_param(net, out, "activation", 2.0f); /* linear */
    st |= soma_net_connect_dense(net, in, a, 1);
    st |= soma_net_connect_dense(net, a, b, 1);
    st |= soma_net_connect_dense(net, b, out, 1);
    st |= soma_net_init_weights(net, seed);
    CHECK_MSG(st == 0, "net: %s", soma_net_errmsg(net));
    return net;
}

static soma_trainer *make_trainer(soma_net *net, int loss) {
    soma_train_opts to;
    soma_train_opts_default(&to);
    to.batch = B, to.threads = 2, to.loss = loss;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.steps = T;
    soma_trainer *tr = NULL;
    CHECK_MSG(soma_train_create(&tr, net, &to, &d) == 0, "trainer: %s", soma_net_errmsg(net));
    return tr;
}

int main(void) {
    float x[B * D] = {0.9f, 0.2f, 0.7f, 0.4f, 0.1f, 0.8f, 0.3f, 1.0f};
    for (size_t k = 0; k < B * D; k++) x[k] *= 2.5f; /* strong enough for h1 to spike */
    uint8_t y[B] = {2, 0};

    soma_net *net = make_net("lif", "h1", "h2", 3);
    soma_trainer *tr = make_trainer(net, SOMA_LOSS_CE_COUNT);
    check_site(tr, net, x, y, "h1.spikes");
    check_site(tr, net, x, y, "h1->h2.out");
    check_site(tr, net, x, y, "h2.spikes");
    check_site(tr, net, x, y, "h2->out.out");
    soma_train_free(tr);
    soma_net_free(net);

    net = make_net("ann", "a1", "a2", 5);
    tr = make_trainer(net, SOMA_LOSS_CE_MEM);
    check_site(tr, net, x, y, "in->a1.out");
    check_site(tr, net, x, y, "a1.spikes");
    check_site(tr, net, x, y, "a1->a2.out");
    check_site(tr, net, x, y, "a2.spikes");
    check_site(tr, net, x, y, "a2->out.out");
    soma_train_free(tr);
    soma_net_free(net);
    return t_report("test_dissect_grad");
}
