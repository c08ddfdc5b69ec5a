/* sparsify.c — activation sparsity of matrix products (soma dissect
 * sparsify): per sample and step keep only some inputs x of a dense
 * projection W (WINA: the k largest |x_i| ||W[:, i]||_2; topk: the k largest
 * |x_i|; TEAL: |x_i| above a threshold taken from a calibration histogram on
 * training samples), zero the rest, and measure accuracy, the fraction of
 * inputs dropped, the error of the product against the dense one and the
 * eval time against the dense eval.
 *
 * Built only on hooks: a READ hook on `<from>.spikes` keeps the values the
 * projection will read (the source layer runs before it in every chunk),
 * a MASK hook on `<from>-><to>.in` writes the kept inputs' mask (so the
 * trainer may take its sparse product: soma_train_set_mask_sparse), and a
 * READ hook on `<from>-><to>.out` sees the product for the error. Chunks
 * of a batch cover disjoint rows, so the hooks write batch-wide buffers
 * indexed by row0 without locks. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/json.h"
#include "core/file.h"
#include "soma.h"

static const char *const method_names[] = {"wina", "teal", "topk"};

int soma_sparsify_method_parse(const char *text, int *method, char *err, size_t errlen) {
    for (int m = 0; m < 3; m++)
        if (text && !strcmp(text, method_names[m])) {
            *method = m;
            return 0;
        }
    return soma__errf(err, errlen, SOMA_STATUS_INVALID, "sparsify method '%s'; expected wina, teal or topk",
                      text ? text : "");
}

const char *soma_sparsify_method_name(int method) {
    return method >= 0 && method < 3 ? method_names[method] : "?";
}

size_t soma_sparsify_keep_count(size_t d, double sparsity) {
    if (!(sparsity > 0.0)) return d;
    if (sparsity >= 1.0) return 0;
    /* the slack makes 1000 x (1 - 0.3) = 699.999... count as 700 */
    double k = floor((double)d * (1.0 - sparsity) + 1e-9);
    return k < 0 ? 0 : k > (double)d ? d : (size_t)k;
}

/* a ranks before b: larger score, ties to the lower index (a strict total
 * order, so any selection gives the same set) */
static int better(const float *sc, uint32_t a, uint32_t b) { return sc[a] > sc[b] || (sc[a] == sc[b] && a < b); }

/* Move the k best of ix[0..n) (by `better`) into ix[0..k), in any order. */
static void select_top(const float *sc, uint32_t *ix, size_t n, size_t k) {
    size_t lo = 0, hi = n; /* the k-th best lies in [lo, hi) */
    while (hi - lo > 1) {
        uint32_t p = ix[lo + (hi - lo) / 2];
        /* three-way split of [lo, hi) around p: better | p | worse */
        size_t i = lo, j = hi;
        for (size_t q = lo; q < j;) {
            if (ix[q] == p) q++;
            else if (better(sc, ix[q], p)) {
                uint32_t t = ix[q];
                ix[q] = ix[i], ix[i] = t;
                i++, q++;
            } else {
                j--;
                uint32_t t = ix[q];
                ix[q] = ix[j], ix[j] = t;
            }
        }
        /* [lo, i) better, [i, j) is p alone, [j, hi) worse */
        if (k < i) hi = i;
        else if (k >= j) lo = j;
        else return;
    }
}

/* score[d] scratch, ix[d] scratch */
static void mask_row(int method, const float *x, const float *colnorm, size_t d, size_t k, float thr, float *mask,
                     float *sc, uint32_t *ix) {
    if (method == SOMA_SPARSIFY_TEAL) {
        for (size_t i = 0; i < d; i++) mask[i] = thr <= 0.0f || fabsf(x[i]) >= thr ? 1.0f : 0.0f;
        return;
    }
    if (k >= d) {
        for (size_t i = 0; i < d; i++) mask[i] = 1.0f;
        return;
    }
    size_t pos = 0;
    for (size_t i = 0; i < d; i++) {
        sc[i] = fabsf(x[i]) * (method == SOMA_SPARSIFY_WINA ? colnorm[i] : 1.0f);
        mask[i] = 0.0f;
        if (sc[i] > 0.0f) ix[pos++] = (uint32_t)i;
    }
    if (pos <= k) { /* every positive score, then zero scores by index */
        size_t need = k - pos;
        for (size_t i = 0; i < d; i++)
            if (sc[i] > 0.0f) mask[i] = 1.0f;
            else if (need) mask[i] = 1.0f, need--;
        return;
    }
    select_top(sc, ix, pos, k);
    for (size_t j = 0; j < k; j++) mask[ix[j]] = 1.0f;
}

int soma_sparsify_mask_row(int method, const float *x, const float *colnorm, size_t d, size_t k, float threshold,
                           float *mask) {
    if (!x || !mask || method < 0 || method > 2 || (method == SOMA_SPARSIFY_WINA && !colnorm))
        return SOMA_STATUS_INVALID;
    float *sc = malloc((d ? d : 1) * sizeof *sc);
    uint32_t *ix = malloc((d ? d : 1) * sizeof *ix);
    if (!sc || !ix) {
        free(sc), free(ix);
        return SOMA_STATUS_NOMEM;
    }
    mask_row(method, x, colnorm, d, k, threshold, mask, sc, ix);
    free(sc), free(ix);
    return 0;
}

/* ------------------------------------------------- TEAL's histogram */
/* |x| in log2 bins of 1/16 octave from 2^-40 to 2^24 (4.4 % wide), exact
 * zeros apart. Candidate thresholds are the bins' lower edges: the
 * fraction of values below edge j is known exactly from the counts. */
#define HB_PER_OCT 16
#define HB_LO (-40)
#define HB_N (64 * HB_PER_OCT)
typedef struct hist {
    double zeros, n;
    double bin[HB_N];
} hist;

static void hist_add(hist *h, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        h->n += 1.0;
        if (a == 0.0f) {
            h->zeros += 1.0;
            continue;
        }
        double b = floor(((double)log2f(a) - HB_LO) * HB_PER_OCT);
        size_t j = b < 0 ? 0 : b >= HB_N ? HB_N - 1 : (size_t)b;
        h->bin[j] += 1.0;
    }
}
static float hist_edge(size_t j) { return (float)exp2((double)j / HB_PER_OCT + HB_LO); }

/* The threshold t (keep |x| >= t; 0 keeps all) whose fraction of values
 * below it is closest to s; ties to the lower threshold. */
static float hist_threshold(const hist *h, double s) {
    if (!(s > 0.0) || h->n == 0.0) return 0.0f;
    double below = h->zeros, best = fabs(below / h->n - s);
    float t = 0.0f;
    for (size_t j = 0; j < HB_N; j++) {
        double f = below / h->n; /* below edge j (j = 0: the zeros only) */
        if (j && fabs(f - s) < best) best = fabs(f - s), t = hist_edge(j);
        below += h->bin[j];
    }
    if (fabs(1.0 - s) < best) t = INFINITY; /* drop everything */
    return t;
}

float soma_sparsify_teal_threshold(const float *values, size_t n, double sparsity) {
    hist *h = calloc(1, sizeof *h);
    if (!h) return NAN;
    hist_add(h, values, n);
    float t = hist_threshold(h, sparsity);
    free(h);
    return t;
}

/* ------------------------------------------------------------ the run */

typedef struct sp_run sp_run;
typedef struct sp_site {
    sp_run *run;
    char name[150];   /* "<from>-><to>" */
    size_t d, nout;
    float *colnorm;   /* [d]: ||W[:, i]||_2 */
    float *vals;      /* [T][B][d]: the source's values of this batch */
    float *ref;       /* [T][B][nout]: the dense product of this batch */
    float *scr;       /* [d] scores (hooks are serialized: one scratch suffices) */
    uint32_t *ix;     /* [d] candidates of the top-k selection */
    hist *h;          /* TEAL calibration */
    float thr;        /* TEAL threshold of the config run */
    size_t k;         /* WINA/topk: inputs kept per row */
} sp_site;

enum { PH_CALIB, PH_DENSE, PH_SPARSE, PH_TIME };
struct sp_run {
    size_t T, B, ns;
    sp_site *s;
    int phase, method;
    double zeros, total;      /* inputs zero after the mask (PH_SPARSE) or as they come (PH_DENSE) */
    double err_num, err_den;  /* sum (y - y_dense)^2, sum y_dense^2 */
};

static int src_read_cb(void *user, const soma_hook_event *ev) {
    sp_site *st = user;
    sp_run *r = st->run;
    if (r->phase == PH_CALIB) {
        hist_add(st->h, ev->data, ev->batch * ev->n);
        return 0;
    }
    memcpy(st->vals + (ev->step * r->B + ev->row0) * st->d, ev->data, ev->batch * ev->n * sizeof(float));
    if (r->phase == PH_DENSE)
        for (size_t i = 0; i < ev->batch * ev->n; i++) r->zeros += ev->data[i] == 0.0f, r->total += 1.0;
    return 0;
}

static int mask_cb(void *user, const soma_hook_event *ev) {
    sp_site *st = user;
    sp_run *r = st->run;
    for (size_t b = 0; b < ev->batch; b++) {
        const float *x = st->vals + (ev->step * r->B + ev->row0 + b) * st->d;
        float *m = ev->data + b * ev->n;
        mask_row(r->method, x, st->colnorm, st->d, st->k, st->thr, m, st->scr, st->ix);
        if (r->phase == PH_SPARSE)
            for (size_t i = 0; i < st->d; i++) r->zeros += x[i] * m[i] == 0.0f, r->total += 1.0;
    }
    return 0;
}

static int out_read_cb(void *user, const soma_hook_event *ev) {
    sp_site *st = user;
    sp_run *r = st->run;
    float *ref = st->ref + (ev->step * r->B + ev->row0) * st->nout;
    size_t n = ev->batch * ev->n;
    if (r->phase == PH_DENSE) memcpy(ref, ev->data, n * sizeof(float));
    else if (r->phase == PH_SPARSE)
        for (size_t i = 0; i < n; i++) {
            double e = (double)ev->data[i] - (double)ref[i];
            r->err_num += e * e, r->err_den += (double)ref[i] * (double)ref[i];
        }
    return 0;
}

void soma_dissect_sparsify_opts_default(soma_dissect_sparsify_opts *o) {
    memset(o, 0, sizeof *o);
    o->calib_limit = 1000;
    o->repeats = 3;
    o->sparse_max = SOMA_TRAIN_MASK_SPARSE_DEFAULT;
}

void soma_dissect_sparsify_free(soma_dissect_sparsify *r) {
    if (!r) return;
    free(r->sites), free(r->rows), free(r->teal_threshold), free(r);
}

static int is_input_pop(const soma_net *net, size_t pop) {
    soma_pop_info pi;
    return soma_net_pop_info(net, pop, &pi) != 0 || strcmp(pi.model, "input") == 0;
}

/* Site "FROM->TO" (a trailing .in is accepted) resolved into st: sizes, the
 * weights' column norms; a clear error if it is not a dense projection
 * from a trained population. */
static int site_setup(const soma_dissect_ctx *x, const char *text, sp_site *st, char *err, size_t errlen) {
    const soma_net *net = x->net;
    char nm[150];
    snprintf(nm, sizeof nm, "%.*s", (int)sizeof nm - 1, text);
    size_t L = strlen(nm);
    if (L > 3 && !strcmp(nm + L - 3, ".in")) nm[L - 3] = 0;
    char in[170], out[170];
    snprintf(in, sizeof in, "%s.in", nm);
    snprintf(out, sizeof out, "%s.out", nm);
    size_t si, so;
    soma_site_info ii, oi;
    if (!strstr(nm, "->") || soma_net_site_find(net, in, &si) || soma_net_site_find(net, out, &so) ||
        soma_net_site(net, si, &ii) || soma_net_site(net, so, &oi))
        return soma__errf(err, errlen, SOMA_STATUS_NOTFOUND,
                          "sparsify: --site '%s': no projection of that name; expected FROM->TO (e.g. hidden->out)", text);
    if (is_input_pop(net, ii.from))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID,
                          "sparsify: --site '%s' reads the input population; expected a projection from a hidden population",
                          text);
    if (ii.from == ii.pop || ii.proj >= soma_net_proj_count(net))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID,
                          "sparsify: --site '%s' is a recurrent projection; expected a feed-forward dense one", text);
    char wname[170];
    snprintf(wname, sizeof wname, "%s.weight", nm);
    soma_tensor t = {0};
    int found = 0;
    for (size_t i = 0; !found && soma_train_tensor(x->tr, i, &t) == 0; i++) found = t.name && !strcmp(t.name, wname);
    if (!found || t.rows != oi.size || t.cols != ii.size)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID,
                          "sparsify: --site '%s' is not a dense projection (weights %zu x %zu expected)", text, oi.size,
                          ii.size);
    snprintf(st->name, sizeof st->name, "%s", nm);
    st->d = ii.size, st->nout = oi.size;
    if (!(st->colnorm = malloc(st->d * sizeof(float))))
        return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "sparsify: out of memory");
    for (size_t i = 0; i < st->d; i++) {
        double q = 0.0;
        for (size_t o = 0; o < st->nout; o++) q += (double)t.data[o * st->d + i] * (double)t.data[o * st->d + i];
        st->colnorm[i] = (float)sqrt(q);
    }
    return 0;
}

/* Hooks of one phase on every site. */
static int set_hooks(soma_trainer *tr, sp_run *r, int src, int mask, int out, char *err, size_t errlen) {
    soma_hooks *h = NULL;
    int st = soma_hooks_create(&h);
    for (size_t i = 0; !st && i < r->ns; i++) {
        char nm[170];
        const char *arrow = strstr(r->s[i].name, "->");
        if (src) {
            snprintf(nm, sizeof nm, "%.*s.spikes", (int)(arrow - r->s[i].name), r->s[i].name);
            st = soma_hooks_add(h, nm, SOMA_HOOK_READ, src_read_cb, &r->s[i]);
        }
        if (!st && mask) {
            snprintf(nm, sizeof nm, "%s.in", r->s[i].name);
            st = soma_hooks_add(h, nm, SOMA_HOOK_MASK, mask_cb, &r->s[i]);
        }
        if (!st && out) {
            snprintf(nm, sizeof nm, "%s.out", r->s[i].name);
            st = soma_hooks_add(h, nm, SOMA_HOOK_READ, out_read_cb, &r->s[i]);
        }
    }
    if (st) {
        soma_hooks_free(h);
        return soma__errf(err, errlen, st, "sparsify: cannot add hooks");
    }
    st = soma_train_set_hooks(tr, soma_hooks_count(h) ? h : NULL);
    soma_hooks_free(h);
    if (st) return soma__errf(err, errlen, st, "sparsify: %s", soma_train_errmsg(tr));
    return 0;
}

static int predict(const soma_dissect_ctx *x, const soma_dataset *ds, size_t b0, size_t Bb, size_t *idx, float *xb,
                   uint8_t *pred, char *err, size_t errlen) {
    for (size_t b = 0; b < Bb; b++) idx[b] = b0 + b;
    int tc, st = soma_encode(x->d, ds, idx, Bb, soma_train_options(x->tr)->seed, SOMA_EVAL_STREAM, xb, &tc);
    if (st) return soma__errf(err, errlen, st, "sparsify: cannot encode samples %zu to %zu", b0, b0 + Bb);
    if ((st = soma_train_predict(x->tr, xb, tc, Bb, pred)))
        return soma__errf(err, errlen, st, "sparsify: forward pass on samples %zu to %zu: %s", b0, b0 + Bb,
                          soma_train_errmsg(x->tr));
    return 0;
}

/* The config c (method-major) into the run's method and every site's k or threshold. */
static void config(sp_run *r, const soma_dissect_sparsify *res, const soma_dissect_sparsify_opts *so, size_t c) {
    size_t m = c / so->nsparsity, q = c % so->nsparsity;
    r->method = so->methods[m];
    for (size_t i = 0; i < r->ns; i++) {
        r->s[i].k = soma_sparsify_keep_count(r->s[i].d, so->sparsity[q]);
        r->s[i].thr = res->teal_threshold[i * so->nsparsity + q];
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_double);
    return n ? (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2])) : NAN;
}

int soma_dissect_sparsify_run(const soma_dissect_ctx *x, const soma_dissect_opts *o,
                              const soma_dissect_sparsify_opts *so, soma_dissect_sparsify **out, char *err,
                              size_t errlen) {
    if (!x || !x->tr || !x->net || !x->d || !x->ds || !so || !out)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "sparsify: missing arguments");
    *out = NULL;
    if (!so->nmethods || !so->methods)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "sparsify: no method; expected wina, teal or topk");
    if (!so->nsparsity || !so->sparsity)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "sparsify: no sparsity; expected values in [0, 1)");
    for (size_t m = 0; m < so->nmethods; m++)
        if (so->methods[m] < 0 || so->methods[m] > 2)
            return soma__errf(err, errlen, SOMA_STATUS_INVALID, "sparsify: method %d; expected wina, teal or topk",
                              so->methods[m]);
    for (size_t q = 0; q < so->nsparsity; q++)
        if (!(so->sparsity[q] >= 0.0 && so->sparsity[q] < 1.0))
            return soma__errf(err, errlen, SOMA_STATUS_INVALID, "sparsify: --sparsity %g; expected a fraction in [0, 1)",
                              so->sparsity[q]);
    const soma_net *net = x->net;
    const soma_dataset *ds = x->ds;
    int teal = 0;
    for (size_t m = 0; m < so->nmethods; m++) teal |= so->methods[m] == SOMA_SPARSIFY_TEAL;
    if (teal && (!so->calib || !so->calib->n))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "sparsify: TEAL needs calibration samples (the training split)");
    size_t B = o && o->batch ? o->batch : 256, N = o && o->limit && o->limit < ds->n ? o->limit : ds->n;
    size_t T = (size_t)x->d->steps, NC = so->nmethods * so->nsparsity;
    if (soma_train_set_mask_sparse(x->tr, so->sparse_max))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "sparsify: %s", soma_train_errmsg(x->tr));
    /* the sites: given, or every feed-forward projection from a hidden population */
    size_t np = soma_net_proj_count(net), cap = so->nsites ? so->nsites : np;
    sp_run r = {T, B, 0, calloc(cap ? cap : 1, sizeof(sp_site)), PH_DENSE, 0, 0, 0, 0, 0};
    soma_dissect_sparsify *res = calloc(1, sizeof *res);
    size_t *idx = malloc(B * sizeof *idx);
    float *xb = malloc(soma_encode_size(x->d, ds, B) * sizeof *xb);
    uint8_t *pd = malloc(B), *ps = malloc(B);
    double *times = malloc((so->repeats ? so->repeats : 1) * (NC + 1) * sizeof *times);
    size_t *okc = calloc(NC, sizeof *okc);
    double *zc = calloc(NC, sizeof *zc), *tc = calloc(NC, sizeof *tc), *en = calloc(NC, sizeof *en),
           *ed = calloc(NC, sizeof *ed);
    int st = 0;
    if (!r.s || !res || !idx || !xb || !pd || !ps || !times || !okc || !zc || !tc || !en || !ed) {
        st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "sparsify: out of memory");
        goto done;
    }
    for (size_t i = 0; i < cap && !st; i++) {
        char nm[170];
        if (so->nsites) snprintf(nm, sizeof nm, "%s", so->sites[i]);
        else {
            size_t a, b;
            int bias;
            soma_pop_info pa, pb;
            if (soma_net_proj_info(net, i, &a, &b, &bias) || a == b || is_input_pop(net, a) ||
                soma_net_pop_info(net, a, &pa) || soma_net_pop_info(net, b, &pb))
                continue;
            snprintf(nm, sizeof nm, "%s->%s", pa.name, pb.name);
        }
        sp_site *s = &r.s[r.ns];
        s->run = &r;
        if ((st = site_setup(x, nm, s, err, errlen))) {
            if (!so->nsites && st == SOMA_STATUS_INVALID) { /* not dense (a conv): not a default site */
                free(s->colnorm), memset(s, 0, sizeof *s), st = 0;
                continue;
            }
            r.ns++;
            goto done;
        }
        r.ns++;
        for (size_t j = 0; j + 1 < r.ns; j++)
            if (!strcmp(r.s[j].name, s->name)) {
                st = soma__errf(err, errlen, SOMA_STATUS_INVALID, "sparsify: --site '%s' given twice", s->name);
                goto done;
            }
        s->vals = malloc(T * B * s->d * sizeof(float));
        s->ref = malloc(T * B * s->nout * sizeof(float));
        s->scr = malloc(s->d * sizeof(float));
        s->ix = malloc(s->d * sizeof(uint32_t));
        s->h = calloc(1, sizeof *s->h);
        if (!s->vals || !s->ref || !s->scr || !s->ix || !s->h) {
            st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "sparsify: out of memory");
            goto done;
        }
    }
    if (!r.ns) {
        st = soma__errf(err, errlen, SOMA_STATUS_INVALID,
                        "sparsify: the net has no dense projection from a hidden population to sparsify");
        goto done;
    }
    res->nsites = r.ns, res->nmethods = so->nmethods, res->nsparsity = so->nsparsity, res->nrows = NC;
    res->samples = N, res->batch = B, res->repeats = so->repeats, res->steps = T;
    res->threads = soma_train_options(x->tr)->threads;
    res->sites = calloc(r.ns, sizeof *res->sites);
    res->rows = calloc(NC, sizeof *res->rows);
    res->teal_threshold = calloc(r.ns * so->nsparsity, sizeof *res->teal_threshold);
    if (!res->sites || !res->rows || !res->teal_threshold) {
        st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "sparsify: out of memory");
        goto done;
    }
    for (size_t i = 0; i < r.ns; i++) snprintf(res->sites[i], sizeof res->sites[i], "%s", r.s[i].name);

    /* TEAL: thresholds from the |x| histogram on calibration samples */
    if (teal) {
        size_t NK = so->calib_limit && so->calib_limit < so->calib->n ? so->calib_limit : so->calib->n;
        float *xk = malloc(soma_encode_size(x->d, so->calib, B) * sizeof *xk);
        if (!xk) {
            st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "sparsify: out of memory");
            goto done;
        }
        r.phase = PH_CALIB;
        if (!(st = set_hooks(x->tr, &r, 1, 0, 0, err, errlen)))
            for (size_t b0 = 0; b0 < NK && !st; b0 += B) {
                size_t Bb = b0 + B > NK ? NK - b0 : B;
                st = predict(x, so->calib, b0, Bb, idx, xk, pd, err, errlen);
                if (!st && o && o->progress && o->progress(o->user, "calibrate", b0 + Bb, NK))
                    st = soma__errf(err, errlen, SOMA_STATUS_CANCELLED, "sparsify: cancelled");
            }
        free(xk);
        if (st) goto done;
        res->calib_samples = NK;
        for (size_t i = 0; i < r.ns; i++)
            for (size_t q = 0; q < so->nsparsity; q++)
                res->teal_threshold[i * so->nsparsity + q] = hist_threshold(r.s[i].h, so->sparsity[q]);
    }

    /* quality: per batch the dense pass (reference products), then every config */
    size_t okd = 0;
    double zd = 0, td = 0;
    for (size_t b0 = 0; b0 < N && !st; b0 += B) {
        size_t Bb = b0 + B > N ? N - b0 : B;
        r.phase = PH_DENSE, r.zeros = r.total = 0;
        if ((st = set_hooks(x->tr, &r, 1, 0, 1, err, errlen)) || (st = predict(x, ds, b0, Bb, idx, xb, pd, err, errlen)))
            break;
        zd += r.zeros, td += r.total;
        for (size_t b = 0; b < Bb; b++) okd += pd[b] == ds->y[b0 + b];
        r.phase = PH_SPARSE;
        for (size_t c = 0; c < NC && !st; c++) {
            config(&r, res, so, c);
            r.zeros = r.total = r.err_num = r.err_den = 0;
            if ((st = set_hooks(x->tr, &r, 1, 1, 1, err, errlen)) || (st = predict(x, ds, b0, Bb, idx, xb, ps, err, errlen)))
                break;
            for (size_t b = 0; b < Bb; b++) okc[c] += ps[b] == ds->y[b0 + b];
            zc[c] += r.zeros, tc[c] += r.total, en[c] += r.err_num, ed[c] += r.err_den;
        }
        if (!st && o && o->progress && o->progress(o->user, "sparsify", b0 + Bb, N))
            st = soma__errf(err, errlen, SOMA_STATUS_CANCELLED, "sparsify: cancelled after %zu of %zu samples", b0 + Bb, N);
    }
    if (st) goto done;
    res->dense_accuracy = (double)okd / (double)N;
    res->dense_sparsity = td > 0 ? zd / td : NAN;
    for (size_t c = 0; c < NC; c++) {
        soma_dissect_sparsify_row *w = &res->rows[c];
        w->method = so->methods[c / so->nsparsity];
        w->sparsity = so->sparsity[c % so->nsparsity];
        w->accuracy = (double)okc[c] / (double)N;
        w->achieved = tc[c] > 0 ? zc[c] / tc[c] : NAN;
        w->rel_error = ed[c] > 0 ? sqrt(en[c] / ed[c]) : NAN;
        w->eval_s = w->speedup = w->sparse_path = NAN;
    }

    /* speed: whole evals, dense (no hooks: the usual path) and each config
     * (only the hooks the method needs), interleaved repeat by repeat */
    size_t R = so->repeats;
    size_t *rows0 = calloc(NC, sizeof *rows0), *rows1 = calloc(NC, sizeof *rows1);
    if (R && (!rows0 || !rows1)) st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "sparsify: out of memory");
    r.phase = PH_TIME;
    for (size_t rep = 0; rep < R && !st; rep++)
        for (size_t c = 0; c <= NC && !st; c++) {
            if (c == NC) st = set_hooks(x->tr, &r, 0, 0, 0, err, errlen);
            else config(&r, res, so, c), st = set_hooks(x->tr, &r, 1, 1, 0, err, errlen);
            if (st) break;
            size_t s0 = soma_train_mask_sparse_rows(x->tr);
            double t0 = soma__now();
            for (size_t b0 = 0; b0 < N && !st; b0 += B) {
                size_t Bb = b0 + B > N ? N - b0 : B;
                st = predict(x, ds, b0, Bb, idx, xb, pd, err, errlen);
            }
            times[c * R + rep] = soma__now() - t0;
            if (c < NC) rows0[c] += N * T, rows1[c] += soma_train_mask_sparse_rows(x->tr) - s0;
            if (!st && o && o->progress && o->progress(o->user, "timing", rep * (NC + 1) + c + 1, R * (NC + 1)))
                st = soma__errf(err, errlen, SOMA_STATUS_CANCELLED, "sparsify: cancelled");
        }
    if (!st && R) {
        res->dense_eval_s = median(times + NC * R, R);
        for (size_t c = 0; c < NC; c++) {
            soma_dissect_sparsify_row *w = &res->rows[c];
            w->eval_s = median(times + c * R, R);
            w->speedup = res->dense_eval_s / w->eval_s;
            /* rows of every sparsified product: samples x steps per site */
            w->sparse_path = rows0[c] ? (double)rows1[c] / ((double)rows0[c] * (double)r.ns) : NAN;
        }
    } else res->dense_eval_s = NAN;
    free(rows0), free(rows1);
done:
    soma_train_set_hooks(x->tr, NULL);
    soma_train_set_mask_sparse(x->tr, SOMA_TRAIN_MASK_SPARSE_DEFAULT);
    for (size_t i = 0; r.s && i < r.ns; i++) {
        sp_site *s = &r.s[i];
        free(s->colnorm), free(s->vals), free(s->ref), free(s->scr), free(s->ix), free(s->h);
    }
    free(r.s), free(idx), free(xb), free(pd), free(ps), free(times), free(okc), free(zc), free(tc), free(en), free(ed);
    if (st) soma_dissect_sparsify_free(res);
    else *out = res;
    return st;
}

/* --------------------------------------------------------------- output */


int soma_dissect_write_sparsify(const soma_dissect_sparsify *r, const char *model, const char *dir, char *err,
                                size_t errlen) {
    if (!r || !dir) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "sparsify: nothing to write");
    char path[1200], tmp[1300];
    snprintf(path, sizeof path, "%s/result.json", dir);
    FILE *f = soma__tmp_open(path, "w", tmp, sizeof tmp, err, errlen);
    if (!f) return SOMA_STATUS_IO;
    fprintf(f, "{\n  \"command\": \"sparsify\",\n  \"model\": ");
    soma__json_str(f, model ? model : "");
    fprintf(f, ",\n  \"samples\": %zu,\n  \"steps\": %zu,\n  \"batch\": %zu,\n  \"threads\": %d,\n  \"repeats\": %zu,\n"
               "  \"calibration_samples\": %zu,\n  \"sites\": [",
            r->samples, r->steps, r->batch, r->threads, r->repeats, r->calib_samples);
    for (size_t i = 0; i < r->nsites; i++) {
        if (i) fputc(',', f);
        soma__json_str(f, r->sites[i]);
    }
    fprintf(f, "],\n  \"dense\": {\"accuracy\": ");
    soma__json_num(f, r->dense_accuracy);
    fprintf(f, ", \"sparsity\": ");
    soma__json_num(f, r->dense_sparsity);
    fprintf(f, ", \"eval_s\": ");
    soma__json_num(f, r->dense_eval_s);
    fprintf(f, "},\n  \"results\": [");
    for (size_t c = 0; c < r->nrows; c++) {
        const soma_dissect_sparsify_row *w = &r->rows[c];
        fprintf(f, "%s\n    {\"method\": \"%s\", \"sparsity\": ", c ? "," : "", soma_sparsify_method_name(w->method));
        soma__json_num(f, w->sparsity);
        fprintf(f, ", \"accuracy\": ");
        soma__json_num(f, w->accuracy);
        fprintf(f, ", \"accuracy_drop\": ");
        soma__json_num(f, r->dense_accuracy - w->accuracy);
        fprintf(f, ", \"achieved_sparsity\": ");
        soma__json_num(f, w->achieved);
        fprintf(f, ", \"relative_error\": ");
        soma__json_num(f, w->rel_error);
        fprintf(f, ", \"eval_s\": ");
        soma__json_num(f, w->eval_s);
        fprintf(f, ", \"speedup\": ");
        soma__json_num(f, w->speedup);
        fprintf(f, ", \"sparse_path_fraction\": ");
        soma__json_num(f, w->sparse_path);
        if (w->method == SOMA_SPARSIFY_TEAL) {
            size_t q = c % r->nsparsity;
            fprintf(f, ", \"teal_threshold\": [");
            for (size_t i = 0; i < r->nsites; i++) {
                if (i) fputc(',', f);
                soma__json_num(f, r->teal_threshold[i * r->nsparsity + q]);
            }
            fputc(']', f);
        }
        fputc('}', f);
    }
    fprintf(f, "\n  ]\n}\n");
    int st = soma__tmp_commit(f, ferror(f), tmp, path, err, errlen);
    if (st) return st;
    /* the figure: accuracy (%) per sparsity, one series per method and the dense accuracy */
    size_t G = r->nsparsity, S = r->nmethods + 1;
    double *v = malloc(S * G * sizeof *v);
    char (*gn)[24] = malloc(G * sizeof *gn);
    const char **gp = malloc(G * sizeof *gp), **sp = malloc(S * sizeof *sp);
    if (!v || !gn || !gp || !sp) {
        free(v), free(gn), free(gp), free(sp);
        return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "sparsify: out of memory");
    }
    for (size_t q = 0; q < G; q++) {
        snprintf(gn[q], sizeof gn[q], "s=%.3g", r->rows[q].sparsity);
        gp[q] = gn[q];
        v[(S - 1) * G + q] = 100.0 * r->dense_accuracy;
    }
    for (size_t m = 0; m < r->nmethods; m++) {
        sp[m] = soma_sparsify_method_name(r->rows[m * G].method);
        for (size_t q = 0; q < G; q++) v[m * G + q] = 100.0 * r->rows[m * G + q].accuracy;
    }
    sp[S - 1] = "dense";
    snprintf(path, sizeof path, "%s/sparsify.png", dir);
    st = soma_plot_bars(path, "accuracy vs sparsity of the sparsified products", "accuracy (%)", G, gp, S, sp, v, err,
                        errlen);
    free(v), free(gn), free(gp), free(sp);
    return st;
}
