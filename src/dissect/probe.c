/* probe.c — a linear probe's view of the hidden neurons (`select --by
 * probe`; docs/dissect.md, "probe"; NeuroStrike in DISSECT.md): a
 * logistic regression, one class against the rest, on every hidden
 * neuron's per-sample value max-pooled over the T steps, each neuron
 * standardised over the samples; a neuron's score is the z-score of its
 * weight among all hidden neurons' weights.
 *
 * The statistics pass keeps sums only, so the probe streams a pass of its
 * own: READ hooks on each hidden `<pop>.spikes` keep the max over steps of
 * every (sample, neuron): samples x hidden floats, the probe's design
 * matrix (10000 samples x 1000 neurons: 40 MB).
 *
 * The fit minimises, over weights w (on standardised values z) and a bias b,
 *
 *   f(w, b) = (1/n) sum_s [log(1 + exp(m_s)) - y_s m_s] + (l2/2) |w|^2,
 *   m_s = b + sum_j w_j z_sj,  z_sj = (x_sj - mean_j) / sd_j
 *
 * (a neuron with sd 0 keeps w_j = 0), by Nesterov's accelerated gradient
 * for strongly convex functions: step 1/L with L = lmax(Z'Z/n)/4 + l2
 * (lmax by power iteration), momentum (sqrt(k) - 1)/(sqrt(k) + 1), k =
 * L/l2, restarted when the step goes uphill against the gradient
 * (O'Donoghue and Candes' gradient restart; f itself is too flat near the
 * optimum to compare in doubles); a plain step that raises f doubles L. It stops when
 * the largest |gradient| is below tol or after iters steps. Z is never
 * formed: m = X (w / sd) + b - (w / sd) . mean, and the gradient is
 * (X'r/n - mean * sum(r)/n) / sd, r = sigmoid(m) - y. Deterministic: one
 * thread, fixed order. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "soma.h"

void soma_dissect_probe_opts_default(soma_dissect_probe_opts *po) {
    memset(po, 0, sizeof *po);
    po->l2 = 1e-2;
    po->iters = 2000;
    po->tol = 1e-6;
}

/* margins m = X v + c (X [n][H] float), in doubles */
static void margins(const float *x, size_t n, size_t H, const double *v, double c, double *m) {
    for (size_t s = 0; s < n; s++) {
        const float *xs = x + s * H;
        double a = c;
        for (size_t j = 0; j < H; j++) a += (double)xs[j] * v[j];
        m[s] = a;
    }
}

/* g = X' r (sums over samples), in doubles */
static void xt_r(const float *x, size_t n, size_t H, const double *r, double *g) {
    memset(g, 0, H * sizeof *g);
    for (size_t s = 0; s < n; s++) {
        const float *xs = x + s * H;
        double rs = r[s];
        if (rs == 0.0) continue;
        for (size_t j = 0; j < H; j++) g[j] += rs * xs[j];
    }
}

static double softplus(double m) { return m > 0 ? m + log1p(exp(-m)) : log1p(exp(m)); }
static double sigmoid(double m) { return m >= 0 ? 1.0 / (1.0 + exp(-m)) : exp(m) / (1.0 + exp(m)); }

typedef struct fit_ws {
    const float *x;
    const uint8_t *pos;
    size_t n, H;
    const double *mu, *isd; /* [H]: mean, 1/sd (0 for a constant neuron) */
    double l2;
    double *v, *m, *r, *g;  /* scratch: [H], [n], [n], [H] */
} fit_ws;

/* f at (w, b); with grad, its gradient into gw [H], *gb. */
static double objective(fit_ws *f, const double *w, double b, double *gw, double *gb) {
    size_t n = f->n, H = f->H;
    double c = b, ww = 0;
    for (size_t j = 0; j < H; j++) f->v[j] = w[j] * f->isd[j], c -= f->v[j] * f->mu[j], ww += w[j] * w[j];
    margins(f->x, n, H, f->v, c, f->m);
    double loss = 0, rsum = 0;
    for (size_t s = 0; s < n; s++) {
        double y = f->pos[s] ? 1.0 : 0.0;
        loss += softplus(f->m[s]) - y * f->m[s];
        f->r[s] = sigmoid(f->m[s]) - y, rsum += f->r[s];
    }
    if (gw) {
        xt_r(f->x, n, H, f->r, f->g);
        for (size_t j = 0; j < H; j++) gw[j] = (f->g[j] / (double)n - f->mu[j] * rsum / (double)n) * f->isd[j] + f->l2 * w[j];
        *gb = rsum / (double)n;
    }
    return loss / (double)n + 0.5 * f->l2 * ww;
}

int soma_dissect_probe_fit(const float *x, const uint8_t *positive, size_t n, size_t H, const soma_dissect_probe_opts *po,
                           double *w, soma_dissect_probe_result *res, char *err, size_t errlen) {
    if (!x || !positive || !w || !n || !H) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect probe: no samples, neurons or output");
    soma_dissect_probe_opts def;
    soma_dissect_probe_opts_default(&def);
    if (!po) po = &def;
    double l2 = po->l2 > 0 ? po->l2 : def.l2, tol = po->tol > 0 ? po->tol : def.tol;
    size_t iters = po->iters ? po->iters : def.iters;
    if (!isfinite(l2) || !isfinite(tol))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect probe: l2 %g, tol %g; expected finite positive numbers", po->l2, po->tol);
    size_t npos = 0;
    for (size_t s = 0; s < n; s++) npos += positive[s] != 0;
    if (npos == 0 || npos == n)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect probe: %zu of %zu samples are positive; a probe needs both groups", npos, n);
    double *buf = calloc(10 * H + 2 * n, sizeof *buf);
    if (!buf) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect probe: out of memory");
    double *mu = buf, *isd = mu + H, *v = isd + H, *g = v + H, *wx = g + H, *wy = wx + H, *gw = wy + H, *wprev = gw + H,
           *pv = wprev + H, *pz = pv + H, *m = pz + H, *r = m + n;
    /* per-neuron mean and sd over the samples (two passes, doubles) */
    for (size_t s = 0; s < n; s++)
        for (size_t j = 0; j < H; j++) mu[j] += x[s * H + j];
    for (size_t j = 0; j < H; j++) mu[j] /= (double)n;
    for (size_t s = 0; s < n; s++)
        for (size_t j = 0; j < H; j++) {
            double d = x[s * H + j] - mu[j];
            isd[j] += d * d;
        }
    for (size_t j = 0; j < H; j++) {
        double sd = sqrt(isd[j] / (double)n);
        isd[j] = sd > 1e-12 * fmax(1.0, fabs(mu[j])) ? 1.0 / sd : 0.0;
    }
    fit_ws f = {x, positive, n, H, mu, isd, l2, v, m, r, g};
    /* lmax(Z'Z/n) by power iteration from a fixed start */
    double lmax = 1.0;
    for (size_t j = 0; j < H; j++) pv[j] = 1.0 + 0.1 * (double)(j % 7);
    for (int it = 0; it < 50; it++) {
        double nv = 0;
        for (size_t j = 0; j < H; j++) nv += pv[j] * pv[j];
        nv = sqrt(nv);
        if (nv == 0) break;
        double c = 0;
        for (size_t j = 0; j < H; j++) pv[j] /= nv, v[j] = pv[j] * isd[j], c -= v[j] * mu[j];
        margins(x, n, H, v, c, m);
        xt_r(x, n, H, m, g); /* Z'Zp = D (X'm - mu sum(m)), m = Zp (sum(m) = 0 up to rounding) */
        double msum = 0;
        for (size_t s = 0; s < n; s++) msum += m[s];
        double ray = 0;
        for (size_t j = 0; j < H; j++) pz[j] = (g[j] - mu[j] * msum) * isd[j] / (double)n, ray += pz[j] * pv[j];
        lmax = fmax(1.0, ray); /* the bias's direction has curvature up to 1/4 too */
        memcpy(pv, pz, H * sizeof *pv);
    }
    double L = 0.25 * lmax * 1.05 + l2;
    memset(w, 0, H * sizeof *w);
    memset(wx, 0, H * sizeof *wx);
    double bx = 0, by = 0, bprev = 0, gb = 0;
    memcpy(wy, wx, H * sizeof *wy);
    /* start the bias at the log-odds of the positives */
    bx = by = bprev = log((double)npos / (double)(n - npos));
    double fx = 0, gmax = INFINITY;
    size_t it = 0;
    int converged = 0, fresh = 1; /* fresh: y = x, no momentum in the step */
    for (; it < iters; it++) {
        double fy = objective(&f, wy, by, gw, &gb);
        gmax = fabs(gb);
        for (size_t j = 0; j < H; j++) gmax = fmax(gmax, fabs(gw[j]));
        if (gmax < tol) { /* y is the answer */
            memcpy(wx, wy, H * sizeof *wx), bx = by, fx = fy;
            converged = 1;
            break;
        }
        memcpy(wprev, wx, H * sizeof *wprev), bprev = bx;
        for (size_t j = 0; j < H; j++) wx[j] = wy[j] - gw[j] / L;
        bx = by - gb / L;
        if (fresh) { /* a plain gradient step must not rise (beyond rounding): else L is too small */
            double fn = objective(&f, wx, bx, NULL, NULL);
            if (fn > fy + 1e-12 * fmax(1.0, fabs(fy))) {
                memcpy(wx, wprev, H * sizeof *wx), bx = bprev;
                L *= 2.0;
                continue;
            }
        }
        /* gradient restart (O'Donoghue and Candes): momentum only while the step goes downhill */
        double dot = gb * (bx - bprev);
        for (size_t j = 0; j < H; j++) dot += gw[j] * (wx[j] - wprev[j]);
        if (dot > 0 && !fresh) {
            memcpy(wy, wx, H * sizeof *wy), by = bx, fresh = 1;
            continue;
        }
        double k = L / l2, beta = (sqrt(k) - 1.0) / (sqrt(k) + 1.0);
        for (size_t j = 0; j < H; j++) wy[j] = wx[j] + beta * (wx[j] - wprev[j]);
        by = bx + beta * (bx - bprev);
        fresh = 0;
    }
    if (!converged) { /* the gradient at the last iterate, for the report */
        fx = objective(&f, wx, bx, gw, &gb);
        gmax = fabs(gb);
        for (size_t j = 0; j < H; j++) gmax = fmax(gmax, fabs(gw[j]));
        converged = gmax < tol;
    }
    memcpy(w, wx, H * sizeof *w);
    if (res) {
        memset(res, 0, sizeof *res);
        res->samples = n, res->positives = npos, res->iters = it, res->converged = converged;
        res->bias = bx, res->objective = fx, res->grad_max = gmax, res->l2 = l2;
        /* the probe's own accuracy on its samples */
        double c = bx;
        for (size_t j = 0; j < H; j++) v[j] = wx[j] * isd[j], c -= v[j] * mu[j];
        margins(x, n, H, v, c, m);
        size_t ok = 0;
        for (size_t s = 0; s < n; s++) ok += (m[s] > 0) == (positive[s] != 0);
        res->accuracy = (double)ok / (double)n;
    }
    free(buf);
    return 0;
}

/* ------------------------------------------------------ the pooled pass */

typedef struct probe_pop {
    float *x;         /* the design matrix [n][H] */
    size_t H, off, N; /* row stride, this population's first column, its size */
    size_t b0, rows;  /* this batch's first sample and rows */
} probe_pop;

static int probe_read_cb(void *user, const soma_hook_event *ev) {
    probe_pop *p = user;
    for (size_t q = 0; q < ev->batch; q++) {
        size_t row = ev->row0 + q;
        if (row >= p->rows) continue;
        const float *v = ev->data + q * ev->n;
        float *d = p->x + (p->b0 + row) * p->H + p->off;
        for (size_t i = 0; i < p->N; i++) d[i] = v[i] > d[i] ? v[i] : d[i];
    }
    return 0;
}

int soma_dissect_probe_scores(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s, size_t cls,
                              const soma_dissect_probe_opts *po, double *z, double *weight, soma_dissect_probe_result *res,
                              char *err, size_t errlen) {
    if (!x || !x->tr || !x->net || !x->d || !x->ds || !s || !z)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect probe: no context, statistics or output");
    const soma_dataset *ds = x->ds;
    if (cls >= ds->classes)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect probe: class %zu; expected 0 to %zu", cls, ds->classes - 1);
    soma_dissect_info in;
    soma_dissect_stats_info(s, &in);
    size_t n = o && o->limit && o->limit < ds->n ? o->limit : ds->n, B = o && o->batch ? o->batch : 256;
    size_t H = soma_dissect_hidden_count(s);
    if (!H) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect probe: the net has no hidden population");
    if (n > SOMA_DISSECT_PROBE_BYTES / sizeof(float) / H)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect probe: %zu samples x %zu hidden neurons exceed the probe's "
                          "%zu MiB; use fewer samples (--limit, --select-on train:N)", n, H, SOMA_DISSECT_PROBE_BYTES >> 20);
    float *X = malloc(n * H * sizeof *X);
    probe_pop *pp = calloc(in.pops, sizeof *pp);
    uint8_t *pos = malloc(n), *pred = malloc(B);
    size_t *idx = malloc(B * sizeof *idx);
    float *xb = malloc(soma_encode_size(x->d, ds, B) * sizeof *xb);
    double *w = malloc(H * sizeof *w);
    soma_hooks *h = NULL;
    int st = 0;
    if (!X || !pp || !pos || !pred || !idx || !xb || !w || soma_hooks_create(&h)) {
        st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect probe: out of memory (%zu x %zu floats)", n, H);
        goto done;
    }
    for (size_t q = 0, off = 0; q < in.pops && !st; q++) {
        soma_dissect_pop p;
        soma_dissect_stats_pop(s, q, &p);
        if (!p.hidden) continue;
        pp[q].x = X, pp[q].H = H, pp[q].off = off, pp[q].N = p.size;
        off += p.size;
        char site[160];
        snprintf(site, sizeof site, "%s.spikes", p.name);
        if ((st = soma_hooks_add(h, site, SOMA_HOOK_READ, probe_read_cb, &pp[q])))
            soma__errf(err, errlen, st, "dissect probe: cannot add a hook on %s", site);
    }
    if (st) goto done;
    if ((st = soma_train_set_hooks(x->tr, h))) {
        soma__errf(err, errlen, st, "dissect probe: %s", soma_train_errmsg(x->tr));
        goto done;
    }
    for (size_t i = 0; i < n * H; i++) X[i] = -FLT_MAX; /* max-pooling starts below every value */
    for (size_t b0 = 0; b0 < n && !st; b0 += B) {
        size_t Bb = b0 + B > n ? n - b0 : B;
        for (size_t b = 0; b < Bb; b++) idx[b] = b0 + b, pos[b0 + b] = ds->y[b0 + b] == cls;
        for (size_t q = 0; q < in.pops; q++) pp[q].b0 = b0, pp[q].rows = Bb;
        int tc;
        if ((st = soma_encode(x->d, ds, idx, Bb, soma_train_options(x->tr)->seed, SOMA_EVAL_STREAM, xb, &tc)))
            soma__errf(err, errlen, st, "dissect probe: cannot encode samples %zu to %zu", b0, b0 + Bb);
        else if ((st = soma_train_predict(x->tr, xb, tc, Bb, pred)))
            soma__errf(err, errlen, st, "dissect probe: forward pass: %s", soma_train_errmsg(x->tr));
        if (!st && o && o->progress && o->progress(o->user, "probe", b0 + Bb, n))
            st = soma__errf(err, errlen, SOMA_STATUS_CANCELLED, "dissect probe: cancelled after %zu of %zu samples", b0 + Bb, n);
    }
    soma_train_set_hooks(x->tr, NULL);
    if (st) goto done;
    if ((st = soma_dissect_probe_fit(X, pos, n, H, po, w, res, err, errlen))) goto done;
    double mw = 0, sw = 0;
    for (size_t j = 0; j < H; j++) mw += w[j];
    mw /= (double)H;
    for (size_t j = 0; j < H; j++) sw += (w[j] - mw) * (w[j] - mw);
    sw = sqrt(sw / (double)H);
    for (size_t j = 0; j < H; j++) z[j] = sw > 0 ? (w[j] - mw) / sw : 0.0;
    if (weight) memcpy(weight, w, H * sizeof *w);
done:
    soma_hooks_free(h);
    free(X), free(pp), free(pos), free(pred), free(idx), free(xb), free(w);
    return st;
}

int soma_dissect_probe_select(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s, size_t cls,
                              const soma_dissect_probe_opts *po, double zmin, size_t top, double top_pct, int per_pop,
                              soma_dissect_neuron *out, double *val, size_t cap, size_t *n, soma_dissect_probe_result *res,
                              char *err, size_t errlen) {
    if (!s || !out || !n) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect probe: no statistics or output");
    *n = 0;
    if (!isnan(zmin) && !isfinite(zmin))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect probe: z cut %g; expected a finite number", zmin);
    size_t H = soma_dissect_hidden_count(s);
    double *z = malloc((H ? H : 1) * sizeof *z);
    if (!z) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect probe: out of memory");
    int st = soma_dissect_probe_scores(x, o, s, cls, po, z, NULL, res, err, errlen);
    if (!st && !isnan(zmin)) { /* every neuron above the cut (per population with per_pop: the same) */
        size_t above = 0;
        for (size_t j = 0; j < H; j++) above += z[j] > zmin;
        if (!above)
            st = soma__errf(err, errlen, SOMA_STATUS_NOTFOUND, "dissect probe: no hidden neuron's probe z-score exceeds %g for class %zu",
                            zmin, cls);
        else
            st = soma_dissect_select_score(s, z, above, 0, 0, out, val, cap, n, err, errlen);
    } else if (!st)
        st = soma_dissect_select_score(s, z, top, top_pct, per_pop, out, val, cap, n, err, errlen);
    free(z);
    return st;
}
