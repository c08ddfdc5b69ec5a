/* dissect.c — neuron-level analysis of a trained network (soma dissect):
 * statistics of every population's spikes streamed over a data set, average
 * precision of each neuron as a detector of a class, selection of the top
 * neurons, and ablation (zero, mean or scaled) against a random control.
 *
 * Built only on the public API: READ hooks on `<pop>.spikes` gather the
 * values during soma_train_predict, MASK and OVERRIDE hooks ablate. Per
 * sample a neuron's value is the sum over the T steps (the spike count).
 * Nothing holds all activations: per batch one [B][N] sum per population,
 * and for the whole set per neuron the sums by class, a histogram of the
 * per-sample counts per class ([C][N][T+1], from which AP is exact for
 * integer counts) and a small heap of its top samples. For graded
 * populations (real-valued activations, e.g. ann) the rounded histogram is
 * coarse (T = 1: two bins), so the per-sample sums are also kept, [n][N]
 * floats per population while their total stays within
 * SOMA_DISSECT_GRADED_BYTES; they are dropped for populations that turn
 * out to be spiking, and AP of a graded neuron is then exact. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "soma.h"

/* The stream soma_train_evaluate (trainer.c) encodes test samples with, so
 * that dissect's unablated predictions are evaluate's (test_dissect checks). */

typedef struct pstat {
    size_t pop, N;
    char name[64];
    int hidden, graded;
    float *bsum;       /* [B][N]: this batch's sums over steps */
    uint16_t *bnz;     /* [B][N]: this batch's nonzero steps */
    double *sum;       /* [N] */
    double *csum;      /* [C][N] */
    size_t *fired;     /* [N]: samples with a nonzero step */
    size_t *allsteps;  /* [N]: samples nonzero at every step */
    uint32_t *hist;    /* [C][N][T+1]: samples by class and rounded sum */
    float *vals;       /* [n][N]: per-sample sums (kept for graded populations within the bound; else NULL) */
    uint32_t *top_s;   /* [N][k]: min-heap while gathering, sorted best first at the end */
    double *top_v;     /* [N][k] */
    size_t *top_n;     /* [N]: entries in the heap */
    /* results */
    double *rate, *crate, *frac, *sel;
    uint8_t *dead, *sat;
    size_t ndead, nsat;
} pstat;

struct soma_dissect_stats {
    size_t n, C, T, k, np, B;
    size_t *class_n;
    uint8_t *y;        /* [n]: the samples' classes (with any vals kept) */
    double accuracy;
    pstat *p;
};

void soma_dissect_opts_default(soma_dissect_opts *o) {
    memset(o, 0, sizeof *o);
    o->batch = 256;
    o->topk = 5;
}

static size_t opt_batch(const soma_dissect_opts *o) { return o && o->batch ? o->batch : 256; }
static size_t opt_limit(const soma_dissect_opts *o, const soma_dataset *ds) {
    return o && o->limit && o->limit < ds->n ? o->limit : ds->n;
}

/* ------------------------------------------------------------ gathering */

typedef struct read_ctx {
    soma_dissect_stats *s;
    size_t p;
    size_t B; /* rows of this batch */
} read_ctx;

static int read_cb(void *user, const soma_hook_event *ev) {
    read_ctx *c = user;
    pstat *ps = &c->s->p[c->p];
    size_t N = ps->N;
    for (size_t r = 0; r < ev->batch; r++) {
        size_t b = ev->row0 + r;
        if (b >= c->B) continue;
        const float *v = ev->data + r * ev->n;
        float *acc = ps->bsum + b * N;
        uint16_t *nz = ps->bnz + b * N;
        for (size_t i = 0; i < N; i++) {
            float x = v[i];
            acc[i] += x;
            nz[i] += x != 0.0f;
            if (x != 0.0f && x != 1.0f) ps->graded = 1;
        }
    }
    return 0;
}

/* Heap order: a is worse than b (smaller value, or equal value and later sample). */
static int worse(double va, uint32_t sa, double vb, uint32_t sb) { return va < vb || (va == vb && sa > sb); }

static void heap_push(uint32_t *hs, double *hv, size_t *cnt, size_t k, uint32_t smp, double v) {
    size_t n = *cnt;
    if (n < k) { /* sift up */
        size_t i = n++;
        while (i > 0) {
            size_t p = (i - 1) / 2;
            if (!worse(v, smp, hv[p], hs[p])) break;
            hs[i] = hs[p], hv[i] = hv[p];
            i = p;
        }
        hs[i] = smp, hv[i] = v;
        *cnt = n;
        return;
    }
    if (!worse(hv[0], hs[0], v, smp)) return; /* not better than the worst kept */
    size_t i = 0; /* replace the root, sift down */
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        double mv = v;
        uint32_t ms = smp;
        if (l < n && worse(hv[l], hs[l], mv, ms)) m = l, mv = hv[l], ms = hs[l];
        if (r < n && worse(hv[r], hs[r], mv, ms)) m = r;
        if (m == i) break;
        hs[i] = hs[m], hv[i] = hv[m];
        i = m;
    }
    hs[i] = smp, hv[i] = v;
}

static void pstat_free(pstat *p) {
    free(p->bsum), free(p->bnz), free(p->sum), free(p->csum), free(p->fired), free(p->allsteps), free(p->hist);
    free(p->top_s), free(p->top_v), free(p->top_n), free(p->vals);
    free(p->rate), free(p->crate), free(p->frac), free(p->sel), free(p->dead), free(p->sat);
}

void soma_dissect_stats_free(soma_dissect_stats *s) {
    if (!s) return;
    for (size_t i = 0; i < s->np; i++) pstat_free(&s->p[i]);
    free(s->p), free(s->class_n), free(s->y), free(s);
}

/* Populations: all but the input ones; hidden if a projection leaves them. */
static int is_input(const soma_net *net, size_t pop) {
    soma_pop_info pi;
    return soma_net_pop_info(net, pop, &pi) != 0 || strcmp(pi.model, "input") == 0;
}
static int has_out_proj(const soma_net *net, size_t pop) {
    for (size_t j = 0; j < soma_net_proj_count(net); j++) {
        size_t a, b;
        int bias;
        if (soma_net_proj_info(net, j, &a, &b, &bias) == 0 && a == pop && b != pop) return 1;
    }
    return 0;
}

/* Encode and predict samples b0 .. b0+Bb (the evaluation stream). */
static int predict_batch(soma_trainer *tr, const soma_data_opts *d, const soma_dataset *ds, size_t b0, size_t Bb,
                         size_t *idx, float *x, uint8_t *pred, char *err, size_t errlen) {
    for (size_t b = 0; b < Bb; b++) idx[b] = b0 + b;
    int tc, st = soma_encode(d, ds, idx, Bb, soma_train_options(tr)->seed, SOMA_EVAL_STREAM, x, &tc);
    if (st) return soma__errf(err, errlen, st, "cannot encode samples %zu to %zu", b0, b0 + Bb);
    if ((st = soma_train_predict(tr, x, tc, Bb, pred)))
        return soma__errf(err, errlen, st, "forward pass on samples %zu to %zu: %s", b0, b0 + Bb, soma_train_errmsg(tr));
    return 0;
}

static int check_args(const soma_dissect_ctx *x, char *err, size_t errlen) {
    if (!x || !x->tr || !x->net || !x->d || !x->ds)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect: the context needs a trainer, its net, its data options and a data set");
    const soma_dataset *ds = x->ds;
    const soma_data_opts *d = x->d;
    if (ds->n == 0) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect: the data set is empty");
    if (ds->classes == 0 || ds->classes > SOMA_DISSECT_MAX_CLASSES)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect: the data set has %zu classes; expected 1 to %d",
                          ds->classes, SOMA_DISSECT_MAX_CLASSES);
    if (d->steps < 1 || d->steps > 65535)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect: steps = %d; expected 1 to 65535", d->steps);
    return 0;
}

static void finalize(soma_dissect_stats *s) {
    size_t C = s->C, T = s->T, k = s->k;
    size_t present = 0;
    for (size_t c = 0; c < C; c++) present += s->class_n[c] > 0;
    for (size_t q = 0; q < s->np; q++) {
        pstat *p = &s->p[q];
        size_t N = p->N;
        for (size_t i = 0; i < N; i++) {
            p->rate[i] = p->sum[i] / ((double)s->n * (double)T);
            p->frac[i] = (double)p->fired[i] / (double)s->n;
            p->dead[i] = p->fired[i] == 0;
            p->sat[i] = p->allsteps[i] == s->n || p->rate[i] >= 0.99;
            p->ndead += p->dead[i], p->nsat += p->sat[i];
            double m = 0, m2 = 0;
            for (size_t c = 0; c < C; c++) {
                double r = s->class_n[c] ? p->csum[c * N + i] / ((double)s->class_n[c] * (double)T) : 0.0;
                p->crate[c * N + i] = r;
                if (s->class_n[c]) m += r, m2 += r * r;
            }
            double mean = present ? m / (double)present : 0;
            double sd = present ? sqrt(fmax(0.0, m2 / (double)present - mean * mean)) : 0;
            for (size_t c = 0; c < C; c++) {
                double r = p->crate[c * N + i];
                if (present < 2 || !s->class_n[c]) {
                    p->sel[c * N + i] = 0;
                    continue;
                }
                double others = (m - r) / (double)(present - 1);
                p->sel[c * N + i] = (r - others) / (sd + 1e-6);
            }
            /* the heap, sorted best first (insertion sort: k is small) */
            uint32_t *hs = p->top_s + i * k;
            double *hv = p->top_v + i * k;
            size_t n = p->top_n[i];
            for (size_t a = 1; a < n; a++) {
                uint32_t ss = hs[a];
                double vv = hv[a];
                size_t b = a;
                while (b > 0 && worse(hv[b - 1], hs[b - 1], vv, ss)) hs[b] = hs[b - 1], hv[b] = hv[b - 1], b--;
                hs[b] = ss, hv[b] = vv;
            }
            for (size_t a = n; a < k; a++) hs[a] = UINT32_MAX, hv[a] = 0;
        }
    }
}

int soma_dissect_stats_run(const soma_dissect_ctx *x, const soma_dissect_opts *o, soma_dissect_stats **out,
                           char *err, size_t errlen) {
    if (!out) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect stats: no output pointer");
    *out = NULL;
    int st = check_args(x, err, errlen);
    if (st) return st;
    soma_dissect_opts def;
    soma_dissect_opts_default(&def);
    if (!o) o = &def;
    if (o->topk > 32)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect stats: topk = %zu; expected 0 to 32", o->topk);
    const soma_net *net = x->net;
    const soma_dataset *ds = x->ds;
    soma_dissect_stats *s = calloc(1, sizeof *s);
    if (!s) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect stats: out of memory");
    s->n = opt_limit(o, ds), s->C = ds->classes, s->T = (size_t)x->d->steps, s->k = o->topk ? o->topk : 5;
    s->B = opt_batch(o);
    size_t np = 0, C = s->C, T = s->T, B = s->B, k = s->k;
    for (size_t q = 0; q < soma_net_pop_count(net); q++) np += !is_input(net, q);
    s->class_n = calloc(C, sizeof *s->class_n);
    s->p = calloc(np ? np : 1, sizeof *s->p);
    int nomem = !s->class_n || !s->p;
    for (size_t q = 0; q < soma_net_pop_count(net) && !nomem; q++) {
        if (is_input(net, q)) continue;
        pstat *p = &s->p[s->np++];
        soma_pop_info pi;
        soma_net_pop_info(net, q, &pi);
        size_t N = pi.size;
        p->pop = q, p->N = N, p->hidden = has_out_proj(net, q);
        snprintf(p->name, sizeof p->name, "%s", pi.name);
        p->bsum = malloc(B * N * sizeof *p->bsum);
        p->bnz = malloc(B * N * sizeof *p->bnz);
        p->sum = calloc(N, sizeof *p->sum);
        p->csum = calloc(C * N, sizeof *p->csum);
        p->fired = calloc(N, sizeof *p->fired);
        p->allsteps = calloc(N, sizeof *p->allsteps);
        p->hist = calloc(C * N * (T + 1), sizeof *p->hist);
        p->top_s = malloc(N * k * sizeof *p->top_s);
        p->top_v = malloc(N * k * sizeof *p->top_v);
        p->top_n = calloc(N, sizeof *p->top_n);
        p->rate = calloc(N, sizeof *p->rate);
        p->crate = calloc(C * N, sizeof *p->crate);
        p->frac = calloc(N, sizeof *p->frac);
        p->sel = calloc(C * N, sizeof *p->sel);
        p->dead = calloc(N, 1);
        p->sat = calloc(N, 1);
        nomem = !p->bsum || !p->bnz || !p->sum || !p->csum || !p->fired || !p->allsteps || !p->hist || !p->top_s ||
                !p->top_v || !p->top_n || !p->rate || !p->crate || !p->frac || !p->sel || !p->dead || !p->sat;
    }
    /* per-sample sums for exact AP of graded populations, while they fit */
    size_t vals_n = 0;
    for (size_t q = 0; q < s->np; q++) vals_n += s->p[q].N;
    if (!nomem && vals_n && s->n <= SOMA_DISSECT_GRADED_BYTES / sizeof(float) / vals_n) {
        s->y = malloc(s->n);
        nomem = !s->y;
        for (size_t q = 0; q < s->np && !nomem; q++) nomem = !(s->p[q].vals = malloc(s->n * s->p[q].N * sizeof(float)));
    }
    read_ctx *rc = calloc(s->np ? s->np : 1, sizeof *rc);
    float *xb = malloc(soma_encode_size(x->d, ds, B) * sizeof *xb);
    size_t *idx = malloc(B * sizeof *idx);
    uint8_t *pred = malloc(B);
    soma_hooks *h = NULL;
    if (nomem || !rc || !xb || !idx || !pred || soma_hooks_create(&h)) {
        st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect stats: out of memory");
        goto done;
    }
    for (size_t q = 0; q < s->np; q++) {
        char site[160];
        snprintf(site, sizeof site, "%s.spikes", s->p[q].name);
        rc[q].s = s, rc[q].p = q;
        if ((st = soma_hooks_add(h, site, SOMA_HOOK_READ, read_cb, &rc[q]))) {
            soma__errf(err, errlen, st, "dissect stats: cannot add a hook on %s", site);
            goto done;
        }
    }
    if ((st = soma_train_set_hooks(x->tr, h))) {
        soma__errf(err, errlen, st, "dissect stats: %s", soma_train_errmsg(x->tr));
        goto done;
    }
    size_t ok = 0;
    for (size_t b0 = 0; b0 < s->n && !st; b0 += B) {
        size_t Bb = b0 + B > s->n ? s->n - b0 : B;
        for (size_t q = 0; q < s->np; q++) {
            rc[q].B = Bb;
            memset(s->p[q].bsum, 0, Bb * s->p[q].N * sizeof *s->p[q].bsum);
            memset(s->p[q].bnz, 0, Bb * s->p[q].N * sizeof *s->p[q].bnz);
        }
        if ((st = predict_batch(x->tr, x->d, ds, b0, Bb, idx, xb, pred, err, errlen))) break;
        for (size_t b = 0; b < Bb; b++) {
            size_t c = ds->y[b0 + b];
            ok += pred[b] == c;
            s->class_n[c]++;
            if (s->y) s->y[b0 + b] = (uint8_t)c;
        }
        for (size_t q = 0; q < s->np; q++) {
            pstat *p = &s->p[q];
            size_t N = p->N;
            for (size_t b = 0; b < Bb; b++) {
                size_t c = ds->y[b0 + b];
                const float *v = p->bsum + b * N;
                const uint16_t *nz = p->bnz + b * N;
                uint32_t *hist = p->hist + c * N * (T + 1);
                double *cs = p->csum + c * N;
                for (size_t i = 0; i < N; i++) {
                    double val = v[i];
                    p->sum[i] += val, cs[i] += val;
                    p->fired[i] += nz[i] > 0;
                    p->allsteps[i] += nz[i] == T;
                    double r = floor(val + 0.5);
                    size_t bin = r <= 0 ? 0 : r >= (double)T ? T : (size_t)r;
                    hist[i * (T + 1) + bin]++;
                    if (p->vals) p->vals[(b0 + b) * N + i] = v[i];
                    if (val != 0.0) heap_push(p->top_s + i * k, p->top_v + i * k, &p->top_n[i], k, (uint32_t)(b0 + b), val);
                }
            }
        }
        if (o->progress && o->progress(o->user, "stats", b0 + Bb, s->n))
            st = soma__errf(err, errlen, SOMA_STATUS_CANCELLED, "dissect stats: cancelled after %zu of %zu samples", b0 + Bb, s->n);
    }
    soma_train_set_hooks(x->tr, NULL);
    s->accuracy = (double)ok / (double)s->n;
    if (!st) finalize(s);
    for (size_t q = 0; q < s->np && !st; q++) /* spiking populations: the histogram is exact */
        if (!s->p[q].graded) free(s->p[q].vals), s->p[q].vals = NULL;
done:
    soma_hooks_free(h);
    free(rc), free(xb), free(idx), free(pred);
    for (size_t q = 0; q < s->np; q++) { /* batch buffers are not kept */
        free(s->p[q].bsum), free(s->p[q].bnz);
        s->p[q].bsum = NULL, s->p[q].bnz = NULL;
    }
    if (st) soma_dissect_stats_free(s);
    else *out = s;
    return st;
}

int soma_dissect_stats_info(const soma_dissect_stats *s, soma_dissect_info *out) {
    if (!s || !out) return SOMA_STATUS_INVALID;
    out->samples = s->n, out->classes = s->C, out->steps = s->T, out->pops = s->np, out->topk = s->k;
    out->class_samples = s->class_n;
    out->accuracy = s->accuracy;
    return 0;
}

int soma_dissect_stats_pop(const soma_dissect_stats *s, size_t i, soma_dissect_pop *out) {
    if (!s || !out || i >= s->np) return SOMA_STATUS_INVALID;
    const pstat *p = &s->p[i];
    out->name = p->name, out->pop = p->pop, out->size = p->N, out->hidden = p->hidden, out->graded = p->graded;
    out->rate = p->rate, out->class_rate = p->crate, out->fire_frac = p->frac, out->selectivity = p->sel;
    out->dead = p->dead, out->saturated = p->sat, out->dead_count = p->ndead, out->saturated_count = p->nsat;
    out->top_sample = p->top_s, out->top_value = p->top_v;
    return 0;
}

/* -------------------------------------------------- average precision */

typedef struct scored {
    double v;
    size_t i;
} scored;
static int by_score_desc(const void *a, const void *b) {
    const scored *x = a, *y = b;
    return x->v > y->v ? -1 : x->v < y->v ? 1 : (x->i > y->i) - (x->i < y->i);
}

double soma_dissect_average_precision(const double *score, const uint8_t *positive, size_t n) {
    size_t npos = 0;
    for (size_t i = 0; i < n; i++) npos += positive[i] != 0;
    if (npos == 0) return 0.0;
    scored *o = malloc(n * sizeof *o);
    if (!o) return NAN;
    for (size_t i = 0; i < n; i++) o[i].v = score[i], o[i].i = i;
    qsort(o, n, sizeof *o, by_score_desc);
    double ap = 0;
    size_t tp = 0, fp = 0;
    for (size_t a = 0; a < n;) { /* one threshold per distinct score */
        size_t b = a, dtp = 0;
        while (b < n && o[b].v == o[a].v) dtp += positive[o[b].i] != 0, fp += positive[o[b].i] == 0, b++;
        tp += dtp;
        if (dtp) ap += (double)dtp / (double)npos * (double)tp / (double)(tp + fp);
        a = b;
    }
    free(o);
    return ap;
}

/* The same from the per-class histograms of integer counts (bins 0..T). */
static double ap_hist(const soma_dissect_stats *s, const pstat *p, size_t i, size_t cls) {
    size_t V = s->T + 1, npos = s->class_n[cls];
    if (npos == 0) return 0.0;
    double ap = 0, tp = 0, fp = 0;
    for (size_t v = V; v-- > 0;) {
        double dtp = 0, dfp = 0;
        for (size_t c = 0; c < s->C; c++) {
            double h = p->hist[(c * p->N + i) * V + v];
            if (c == cls) dtp += h;
            else dfp += h;
        }
        tp += dtp, fp += dfp;
        if (dtp > 0) ap += dtp / (double)npos * tp / (tp + fp);
    }
    return ap;
}

/* A graded neuron's AP from its kept per-sample sums (exact); pos [n] and
 * sc [n] are scratch. */
static double ap_vals(const soma_dissect_stats *s, const pstat *p, size_t i, size_t cls, uint8_t *pos, double *sc) {
    for (size_t b = 0; b < s->n; b++) sc[b] = p->vals[b * p->N + i], pos[b] = s->y[b] == cls;
    return soma_dissect_average_precision(sc, pos, s->n);
}

/* AP of every neuron of p for cls into ap [N]: exact from the sums where
 * kept, else from the histogram. */
static int ap_pop(const soma_dissect_stats *s, const pstat *p, size_t cls, double *ap) {
    if (!p->vals) {
        for (size_t j = 0; j < p->N; j++) ap[j] = ap_hist(s, p, j, cls);
        return 0;
    }
    uint8_t *pos = malloc(s->n);
    double *sc = malloc(s->n * sizeof *sc);
    if (!pos || !sc) {
        free(pos), free(sc);
        return SOMA_STATUS_NOMEM;
    }
    for (size_t j = 0; j < p->N; j++) ap[j] = ap_vals(s, p, j, cls, pos, sc);
    free(pos), free(sc);
    return 0;
}

int soma_dissect_ap(const soma_dissect_stats *s, size_t i, size_t cls, double *ap) {
    if (!s || !ap || i >= s->np || cls >= s->C) return SOMA_STATUS_INVALID;
    return ap_pop(s, &s->p[i], cls, ap);
}

int soma_dissect_ap_exact(const soma_dissect_stats *s, size_t i) {
    return s && i < s->np && s->p[i].vals != NULL;
}

size_t soma_dissect_hidden_count(const soma_dissect_stats *s) {
    size_t n = 0;
    for (size_t q = 0; s && q < s->np; q++) n += s->p[q].hidden ? s->p[q].N : 0;
    return n;
}

/* ----------------------------------------------------------- selection */

typedef struct cand {
    double ap;
    size_t q, i; /* index into s->p, neuron */
} cand;
static int by_ap_desc(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->ap != y->ap) return x->ap > y->ap ? -1 : 1;
    if (x->q != y->q) return x->q < y->q ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static size_t how_many(size_t top, double pct, size_t count) {
    size_t m = top ? top : (size_t)ceil(pct / 100.0 * (double)count - 1e-9);
    if (m < 1) m = 1;
    return m > count ? count : m;
}

int soma_dissect_select_score(const soma_dissect_stats *s, const double *score, size_t top, double top_pct, int per_pop,
                              soma_dissect_neuron *out, double *val, size_t cap, size_t *n, char *err, size_t errlen) {
    if (!s || !score || !out || !n) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect select: no statistics, scores or output");
    *n = 0;
    if (!top && !(top_pct > 0 && top_pct <= 100))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect select: top-pct %g; expected a percentage in (0, 100] (or top N)", top_pct);
    size_t H = soma_dissect_hidden_count(s);
    if (H == 0) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect select: the net has no hidden population");
    cand *c = malloc(H * sizeof *c);
    if (!c) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect select: out of memory");
    size_t m = 0, got = 0, h = 0;
    for (size_t q = 0; q < s->np; q++) {
        if (!s->p[q].hidden) continue;
        size_t first = m;
        for (size_t i = 0; i < s->p[q].N; i++) c[m].ap = score[h++], c[m].q = q, c[m].i = i, m++;
        if (per_pop) { /* this population's own top, appended */
            qsort(c + first, m - first, sizeof *c, by_ap_desc);
            size_t take = how_many(top, top_pct, m - first);
            memmove(c + got, c + first, take * sizeof *c);
            got += take;
            m = got;
        }
    }
    if (!per_pop) {
        qsort(c, m, sizeof *c, by_ap_desc);
        got = how_many(top, top_pct, m);
    }
    if (got > cap) {
        free(c);
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect select: %zu neurons selected but room for %zu", got, cap);
    }
    for (size_t j = 0; j < got; j++) {
        out[j].pop = s->p[c[j].q].pop, out[j].index = c[j].i;
        if (val) val[j] = c[j].ap;
    }
    *n = got;
    free(c);
    return 0;
}

int soma_dissect_select_ap(const soma_dissect_stats *s, size_t cls, size_t top, double top_pct, int per_pop,
                           soma_dissect_neuron *out, double *ap, size_t cap, size_t *n, char *err, size_t errlen) {
    if (!s || !out || !n) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect select: no statistics or output");
    *n = 0;
    if (cls >= s->C)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect select: class %zu; expected 0 to %zu", cls, s->C - 1);
    size_t H = soma_dissect_hidden_count(s), h = 0;
    double *score = malloc((H ? H : 1) * sizeof *score);
    if (!score) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect select: out of memory");
    int st = 0;
    for (size_t q = 0; q < s->np && !st; q++)
        if (s->p[q].hidden) {
            if ((st = ap_pop(s, &s->p[q], cls, score + h))) soma__errf(err, errlen, st, "dissect select: out of memory");
            h += s->p[q].N;
        }
    if (!st) st = soma_dissect_select_score(s, score, top, top_pct, per_pop, out, ap, cap, n, err, errlen);
    free(score);
    return st;
}

/* --------------------------------------------------------- attribution */

/* Activation x gradient: per hidden population, READ keeps the batch's
 * values s[b][t][i]; GRAD (backward, steps T-1 .. 0 within a chunk) adds
 * s[b][t][i] * (-dL/ds[b][t][i]) into that row's sum. Rows are summed into
 * the doubles in sample order after the batch, so the scores do not depend
 * on the thread count. */
typedef struct attr_ctx {
    size_t N, T, B;  /* neurons, steps, rows of this batch */
    float *act;      /* [B][T][N] */
    float *row;      /* [B][N]: this batch's sum over steps of s * (-dL/ds) */
    double *sum;     /* [N]: over all samples so far */
    float gscale;    /* the batch size: soma_train_grad's loss is the batch mean */
} attr_ctx;

static int attr_read_cb(void *user, const soma_hook_event *ev) {
    attr_ctx *a = user;
    for (size_t r = 0; r < ev->batch; r++) {
        size_t b = ev->row0 + r;
        if (b >= a->B || ev->step >= a->T) continue;
        memcpy(a->act + (b * a->T + ev->step) * a->N, ev->data + r * ev->n, a->N * sizeof *a->act);
    }
    return 0;
}

static int attr_grad_cb(void *user, const soma_hook_event *ev) {
    attr_ctx *a = user;
    for (size_t r = 0; r < ev->batch; r++) {
        size_t b = ev->row0 + r;
        if (b >= a->B || ev->step >= a->T) continue;
        const float *s = a->act + (b * a->T + ev->step) * a->N, *g = ev->data + r * ev->n;
        float *acc = a->row + b * a->N;
        for (size_t i = 0; i < a->N; i++) acc[i] -= s[i] * g[i] * a->gscale;
    }
    return 0;
}

int soma_dissect_attribution(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s,
                             size_t cls, double *score, size_t *samples, char *err, size_t errlen) {
    int st = check_args(x, err, errlen);
    if (st) return st;
    if (!s || !score) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect attribution: no statistics or output");
    const soma_dataset *ds = x->ds;
    if (cls >= ds->classes)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect attribution: class %zu; expected 0 to %zu", cls, ds->classes - 1);
    size_t N = opt_limit(o, ds), T = (size_t)x->d->steps, B = opt_batch(o), Bmax = soma_train_options(x->tr)->batch;
    if (Bmax && B > Bmax) B = Bmax; /* soma_train_grad takes at most the training batch */
    size_t nh = 0, K = 0;
    for (size_t q = 0; q < s->np; q++) nh += s->p[q].hidden;
    for (size_t j = 0; j < N; j++) K += ds->y[j] == cls;
    if (samples) *samples = K;
    if (nh == 0) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect attribution: the net has no hidden population");
    if (K == 0) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect attribution: no sample of class %zu in the first %zu", cls, N);
    attr_ctx *ac = calloc(nh, sizeof *ac);
    float *xb = malloc(soma_encode_size(x->d, ds, B) * sizeof *xb);
    size_t *idx = malloc(B * sizeof *idx);
    uint8_t *y = malloc(B);
    soma_hooks *h = NULL;
    int nomem = !ac || !xb || !idx || !y || soma_hooks_create(&h);
    for (size_t q = 0, a = 0; q < s->np && !nomem; q++) {
        if (!s->p[q].hidden) continue;
        size_t n = s->p[q].N;
        ac[a].N = n, ac[a].T = T;
        ac[a].act = malloc(B * T * n * sizeof *ac[a].act);
        ac[a].row = malloc(B * n * sizeof *ac[a].row);
        ac[a].sum = calloc(n, sizeof *ac[a].sum);
        nomem = !ac[a].act || !ac[a].row || !ac[a].sum;
        char site[160];
        snprintf(site, sizeof site, "%s.spikes", s->p[q].name);
        if (!nomem && ((st = soma_hooks_add(h, site, SOMA_HOOK_READ, attr_read_cb, &ac[a])) ||
                       (st = soma_hooks_add(h, site, SOMA_HOOK_GRAD, attr_grad_cb, &ac[a])))) {
            soma__errf(err, errlen, st, "dissect attribution: cannot add a hook on %s", site);
            goto done;
        }
        a++;
    }
    if (nomem) {
        st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect attribution: out of memory");
        goto done;
    }
    if ((st = soma_train_set_hooks(x->tr, h))) {
        soma__errf(err, errlen, st, "dissect attribution: %s", soma_train_errmsg(x->tr));
        goto done;
    }
    memset(y, (int)cls, B); /* every label K: the loss is class K's */
    size_t next = 0, done_k = 0;
    while (done_k < K && !st) {
        size_t Bb = 0;
        for (; next < N && Bb < B; next++)
            if (ds->y[next] == cls) idx[Bb++] = next;
        int tc;
        if ((st = soma_encode(x->d, ds, idx, Bb, soma_train_options(x->tr)->seed, SOMA_EVAL_STREAM, xb, &tc))) {
            soma__errf(err, errlen, st, "dissect attribution: cannot encode samples of class %zu", cls);
            break;
        }
        for (size_t a = 0; a < nh; a++) {
            ac[a].B = Bb, ac[a].gscale = (float)Bb;
            memset(ac[a].act, 0, Bb * T * ac[a].N * sizeof *ac[a].act);
            memset(ac[a].row, 0, Bb * ac[a].N * sizeof *ac[a].row);
        }
        double loss;
        if ((st = soma_train_grad(x->tr, xb, tc, y, Bb, &loss, NULL))) {
            soma__errf(err, errlen, st, "dissect attribution: gradient of class %zu's loss: %s", cls, soma_train_errmsg(x->tr));
            break;
        }
        for (size_t a = 0; a < nh; a++)
            for (size_t b = 0; b < Bb; b++)
                for (size_t i = 0; i < ac[a].N; i++) ac[a].sum[i] += ac[a].row[b * ac[a].N + i];
        done_k += Bb;
        if (o && o->progress && o->progress(o->user, "attribute", done_k, K))
            st = soma__errf(err, errlen, SOMA_STATUS_CANCELLED, "dissect attribution: cancelled after %zu of %zu samples", done_k, K);
    }
    soma_train_set_hooks(x->tr, NULL);
    for (size_t a = 0, m = 0; a < nh && !st; a++)
        for (size_t i = 0; i < ac[a].N; i++) score[m++] = ac[a].sum[i] / (double)K;
done:
    soma_hooks_free(h);
    for (size_t a = 0; ac && a < nh; a++) free(ac[a].act), free(ac[a].row), free(ac[a].sum);
    free(ac), free(xb), free(idx), free(y);
    return st;
}

int soma_dissect_by_parse(const char *text, int *by, char *err, size_t errlen) {
    if (text && by && !strcmp(text, "ap")) return *by = SOMA_DISSECT_BY_AP, 0;
    if (text && by && !strcmp(text, "attribution")) return *by = SOMA_DISSECT_BY_ATTRIBUTION, 0;
    if (text && by && !strcmp(text, "ig")) return *by = SOMA_DISSECT_BY_IG, 0;
    if (text && by && !strcmp(text, "wina")) return *by = SOMA_DISSECT_BY_WINA, 0;
    if (text && by && !strcmp(text, "probe")) return *by = SOMA_DISSECT_BY_PROBE, 0;
    if (text && by && !strcmp(text, "impact")) return *by = SOMA_DISSECT_BY_IMPACT, 0;
    return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--by '%s': expected ap or attribution, or ig, wina, probe or impact",
                      text ? text : "");
}

const char *soma_dissect_by_name(int by) {
    return by == SOMA_DISSECT_BY_ATTRIBUTION ? "attribution" : by == SOMA_DISSECT_BY_IG ? "ig" : by == SOMA_DISSECT_BY_WINA ? "wina"
           : by == SOMA_DISSECT_BY_PROBE ? "probe" : by == SOMA_DISSECT_BY_IMPACT ? "impact" : "ap";
}

int soma_dissect_select(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s, int by,
                        size_t cls, size_t top, double top_pct, int per_pop, soma_dissect_neuron *out, double *val,
                        size_t cap, size_t *n, char *err, size_t errlen) {
    if (by == SOMA_DISSECT_BY_AP) return soma_dissect_select_ap(s, cls, top, top_pct, per_pop, out, val, cap, n, err, errlen);
    if (by == SOMA_DISSECT_BY_PROBE) /* probe.c */
        return soma_dissect_probe_select(x, o, s, cls, NULL, NAN, top, top_pct, per_pop, out, val, cap, n, NULL, err, errlen);
    if (by == SOMA_DISSECT_BY_IMPACT) /* impact.c */
        return soma_dissect_impact_select(x, o, s, cls, NULL, top, top_pct, per_pop, out, val, cap, n, err, errlen);
    if (by != SOMA_DISSECT_BY_ATTRIBUTION && by != SOMA_DISSECT_BY_IG && by != SOMA_DISSECT_BY_WINA)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect select: method %d", by);
    if (!s || !out || !n) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect select: no statistics or output");
    *n = 0;
    size_t H = soma_dissect_hidden_count(s);
    double *score = malloc((H ? H : 1) * sizeof *score);
    if (!score) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect select: out of memory");
    int st = by == SOMA_DISSECT_BY_IG     ? soma_dissect_ig_scores(x, o, NULL, s, cls, score, err, errlen)
             : by == SOMA_DISSECT_BY_WINA ? soma_dissect_wina_scores(x, o, s, cls, score, err, errlen)
                                          : soma_dissect_attribution(x, o, s, cls, score, NULL, err, errlen);
    if (!st) st = soma_dissect_select_score(s, score, top, top_pct, per_pop, out, val, cap, n, err, errlen);
    free(score);
    return st;
}

/* ------------------------------------------------------------ ablation */

int soma_dissect_mode_parse(const char *text, int *mode, float *scale, char *err, size_t errlen) {
    if (!text || !mode || !scale) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "ablation mode: none given");
    *scale = 1.0f;
    if (strcmp(text, "zero") == 0) return *mode = SOMA_DISSECT_MODE_ZERO, *scale = 0.0f, 0;
    if (strcmp(text, "mean") == 0) return *mode = SOMA_DISSECT_MODE_MEAN, 0;
    if (strncmp(text, "scale:", 6) == 0) {
        char *end;
        errno = 0;
        double v = strtod(text + 6, &end);
        if (!errno && end != text + 6 && !*end && isfinite(v)) return *mode = SOMA_DISSECT_MODE_SCALE, *scale = (float)v, 0;
    }
    return soma__errf(err, errlen, SOMA_STATUS_INVALID, "ablation mode '%s'; expected zero, mean or scale:X (X a number)", text);
}

typedef struct abl_ctx {
    size_t *idx, n; /* neurons of this population */
    float *val;     /* [n]: mask factor (MASK) or value (OVERRIDE) */
} abl_ctx;

static int mask_cb(void *user, const soma_hook_event *ev) {
    const abl_ctx *a = user;
    for (size_t r = 0; r < ev->batch; r++)
        for (size_t j = 0; j < a->n; j++) ev->data[r * ev->n + a->idx[j]] *= a->val[j];
    return 0;
}
static int override_cb(void *user, const soma_hook_event *ev) {
    const abl_ctx *a = user;
    for (size_t r = 0; r < ev->batch; r++)
        for (size_t j = 0; j < a->n; j++) ev->data[r * ev->n + a->idx[j]] = a->val[j];
    return 0;
}

int soma_dissect_evaluate(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s,
                          const soma_dissect_neuron *set, size_t n, int mode, float scale, double *accuracy,
                          double *class_acc, uint8_t *pred_out, char *err, size_t errlen) {
    int st = check_args(x, err, errlen);
    if (st) return st;
    if (n && !set) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect evaluate: %zu neurons but no set", n);
    if (mode < SOMA_DISSECT_MODE_ZERO || mode > SOMA_DISSECT_MODE_SCALE)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect evaluate: mode %d; expected zero, mean or scale", mode);
    if (n && mode == SOMA_DISSECT_MODE_MEAN && !s)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect evaluate: mode mean needs the statistics (mean rates)");
    const soma_net *net = x->net;
    const soma_dataset *ds = x->ds;
    size_t P = soma_net_pop_count(net), B = opt_batch(o), N = opt_limit(o, ds), C = ds->classes;
    abl_ctx *ac = calloc(P, sizeof *ac);
    size_t *cnt = calloc(P, sizeof *cnt);
    float *xb = malloc(soma_encode_size(x->d, ds, B) * sizeof *xb);
    size_t *idx = malloc(B * sizeof *idx), *cn = calloc(C, sizeof *cn), *cok = calloc(C, sizeof *cok);
    uint8_t *pred = malloc(B);
    soma_hooks *h = NULL;
    if (!ac || !cnt || !xb || !idx || !cn || !cok || !pred || soma_hooks_create(&h)) {
        st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect evaluate: out of memory");
        goto done;
    }
    for (size_t j = 0; j < n; j++) {
        soma_pop_info pi;
        if (set[j].pop >= P || soma_net_pop_info(net, set[j].pop, &pi) || set[j].index >= pi.size) {
            st = soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect evaluate: neuron %zu of the set (population %zu, index %zu) is not in the net",
                            j, set[j].pop, set[j].index);
            goto done;
        }
        if (is_input(net, set[j].pop) || !has_out_proj(net, set[j].pop)) {
            st = soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect evaluate: %s[%zu] is not a hidden neuron; only hidden populations may be ablated",
                            pi.name, set[j].index);
            goto done;
        }
        cnt[set[j].pop]++;
    }
    for (size_t q = 0; q < P; q++) {
        if (!cnt[q]) continue;
        ac[q].idx = malloc(cnt[q] * sizeof *ac[q].idx);
        ac[q].val = malloc(cnt[q] * sizeof *ac[q].val);
        if (!ac[q].idx || !ac[q].val) {
            st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect evaluate: out of memory");
            goto done;
        }
    }
    for (size_t j = 0; j < n; j++) {
        size_t q = set[j].pop;
        float v = mode == SOMA_DISSECT_MODE_ZERO ? 0.0f : scale;
        if (mode == SOMA_DISSECT_MODE_MEAN) {
            const pstat *p = NULL;
            for (size_t k = 0; k < s->np; k++)
                if (s->p[k].pop == q) p = &s->p[k];
            if (!p || p->N <= set[j].index) {
                st = soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect evaluate: no mean rate of population %zu in the statistics", q);
                goto done;
            }
            v = (float)p->rate[set[j].index];
        }
        ac[q].idx[ac[q].n] = set[j].index, ac[q].val[ac[q].n] = v, ac[q].n++;
    }
    for (size_t q = 0; q < P; q++) {
        if (!ac[q].n) continue;
        soma_pop_info pi;
        soma_net_pop_info(net, q, &pi);
        char site[160];
        snprintf(site, sizeof site, "%s.spikes", pi.name);
        int mask = mode != SOMA_DISSECT_MODE_MEAN;
        if ((st = soma_hooks_add(h, site, mask ? SOMA_HOOK_MASK : SOMA_HOOK_OVERRIDE, mask ? mask_cb : override_cb, &ac[q]))) {
            soma__errf(err, errlen, st, "dissect evaluate: cannot add a hook on %s", site);
            goto done;
        }
    }
    if ((st = soma_train_set_hooks(x->tr, soma_hooks_count(h) ? h : NULL))) {
        soma__errf(err, errlen, st, "dissect evaluate: %s", soma_train_errmsg(x->tr));
        goto done;
    }
    size_t ok = 0;
    for (size_t b0 = 0; b0 < N && !st; b0 += B) {
        size_t Bb = b0 + B > N ? N - b0 : B;
        if ((st = predict_batch(x->tr, x->d, ds, b0, Bb, idx, xb, pred, err, errlen))) break;
        for (size_t b = 0; b < Bb; b++) {
            size_t c = ds->y[b0 + b];
            cn[c]++;
            cok[c] += pred[b] == c;
            ok += pred[b] == c;
            if (pred_out) pred_out[b0 + b] = pred[b];
        }
        if (o && o->progress && o->progress(o->user, "evaluate", b0 + Bb, N))
            st = soma__errf(err, errlen, SOMA_STATUS_CANCELLED, "dissect evaluate: cancelled after %zu of %zu samples", b0 + Bb, N);
    }
    soma_train_set_hooks(x->tr, NULL);
    if (accuracy) *accuracy = (double)ok / (double)N;
    if (class_acc)
        for (size_t c = 0; c < C; c++) class_acc[c] = cn[c] ? (double)cok[c] / (double)cn[c] : NAN;
done:
    soma_hooks_free(h);
    for (size_t q = 0; ac && q < P; q++) free(ac[q].idx), free(ac[q].val);
    free(ac), free(cnt), free(xb), free(idx), free(cn), free(cok), free(pred);
    return st;
}

int soma_dissect_random_like(const soma_dissect_neuron *set, size_t n, const size_t *pop_size, size_t npops,
                             uint64_t seed, uint64_t draw, soma_dissect_neuron *out, char *err, size_t errlen) {
    if (n && (!set || !out || !pop_size)) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "random control: no set or sizes");
    size_t *cnt = calloc(npops ? npops : 1, sizeof *cnt), maxn = 0;
    if (!cnt) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "random control: out of memory");
    for (size_t j = 0; j < n; j++) {
        if (set[j].pop >= npops) {
            free(cnt);
            return soma__errf(err, errlen, SOMA_STATUS_INVALID, "random control: neuron %zu's population %zu; expected below %zu", j, set[j].pop, npops);
        }
        cnt[set[j].pop]++;
    }
    for (size_t q = 0; q < npops; q++) {
        if (cnt[q] > pop_size[q]) {
            size_t want = cnt[q];
            free(cnt);
            return soma__errf(err, errlen, SOMA_STATUS_INVALID, "random control: %zu neurons of population %zu, which has %zu",
                              want, q, pop_size[q]);
        }
        if (cnt[q] && pop_size[q] > maxn) maxn = pop_size[q];
    }
    size_t *perm = malloc((maxn ? maxn : 1) * sizeof *perm), m = 0;
    if (!perm) {
        free(cnt);
        return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "random control: out of memory");
    }
    for (size_t q = 0; q < npops; q++) {
        if (!cnt[q]) continue;
        /* a partial Fisher-Yates shuffle: the first cnt[q] of a uniform permutation */
        soma_rng r;
        soma_rng_init(&r, seed ^ (0x9E3779B97F4A7C15ull * (draw + 1)), q);
        for (size_t i = 0; i < pop_size[q]; i++) perm[i] = i;
        for (size_t i = 0; i < cnt[q]; i++) {
            uint64_t u = ((uint64_t)soma_rng_u32(&r) << 32) | soma_rng_u32(&r);
            size_t j = i + (size_t)(u % (pop_size[q] - i));
            size_t t = perm[i];
            perm[i] = perm[j], perm[j] = t;
            out[m].pop = q, out[m].index = perm[i], m++;
        }
    }
    free(perm), free(cnt);
    return 0;
}

int soma_dissect_ablate(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s,
                        const soma_dissect_neuron *set, size_t n, int mode, float scale, size_t draws, uint64_t seed,
                        const soma_dissect_ablation *before, soma_dissect_ablation *out, char *err, size_t errlen) {
    if (!out) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect ablate: no output");
    int st = check_args(x, err, errlen);
    if (st) return st;
    memset(out, 0, sizeof *out);
    size_t C = x->ds->classes, P = soma_net_pop_count(x->net);
    out->classes = C, out->n = n, out->draws = draws, out->mode = mode, out->scale = scale, out->by = -1;
    if (before) {
        out->acc_before = before->acc_before;
        memcpy(out->class_before, before->class_before, sizeof out->class_before);
    } else if ((st = soma_dissect_evaluate(x, o, s, NULL, 0, mode, scale, &out->acc_before, out->class_before, NULL, err, errlen)))
        return st;
    if ((st = soma_dissect_evaluate(x, o, s, set, n, mode, scale, &out->acc_after, out->class_after, NULL, err, errlen)))
        return st;
    size_t *size = malloc(P * sizeof *size);
    soma_dissect_neuron *rs = malloc((n ? n : 1) * sizeof *rs);
    double *ca = malloc(C * sizeof *ca), *sum2 = calloc(C, sizeof *sum2), a2 = 0;
    if (!size || !rs || !ca || !sum2) {
        free(size), free(rs), free(ca), free(sum2);
        return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect ablate: out of memory");
    }
    for (size_t q = 0; q < P; q++) {
        soma_pop_info pi;
        soma_net_pop_info(x->net, q, &pi);
        size[q] = pi.size;
    }
    for (size_t r = 0; r < draws && !st; r++) {
        double a;
        if ((st = soma_dissect_random_like(set, n, size, P, seed, r, rs, err, errlen))) break;
        if ((st = soma_dissect_evaluate(x, o, s, rs, n, mode, scale, &a, ca, NULL, err, errlen))) break;
        out->acc_control += a, a2 += a * a;
        for (size_t c = 0; c < C; c++) out->class_control[c] += ca[c], sum2[c] += ca[c] * ca[c];
    }
    if (!st && draws) {
        double R = (double)draws;
        out->acc_control /= R;
        out->acc_control_sd = sqrt(fmax(0.0, a2 / R - out->acc_control * out->acc_control));
        for (size_t c = 0; c < C; c++) {
            out->class_control[c] /= R;
            out->class_control_sd[c] = sqrt(fmax(0.0, sum2[c] / R - out->class_control[c] * out->class_control[c]));
        }
    } else if (!draws) {
        out->acc_control = out->acc_control_sd = NAN;
        for (size_t c = 0; c < C; c++) out->class_control[c] = out->class_control_sd[c] = NAN;
    }
    free(size), free(rs), free(ca), free(sum2);
    return st;
}

int soma_dissect_set_parse(const soma_net *net, const char *text, soma_dissect_neuron *out, size_t cap, size_t *n,
                           char *err, size_t errlen) {
    if (!net || !text || !n) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "neuron set: nothing to read");
    *n = 0;
    const char *p = text;
    while (*p) {
        const char *colon = strchr(p, ':');
        if (!colon || colon == p || colon - p >= 64)
            return soma__errf(err, errlen, SOMA_STATUS_INVALID, "neuron set '%s': expected POP:I,J,... (e.g. hidden:3,17)", text);
        char name[64];
        memcpy(name, p, (size_t)(colon - p));
        name[colon - p] = 0;
        size_t pop;
        soma_pop_info pi;
        if (soma_net_find_pop(net, name, &pop) || soma_net_pop_info(net, pop, &pi))
            return soma__errf(err, errlen, SOMA_STATUS_NOTFOUND, "neuron set '%s': no population '%s' in the net", text, name);
        p = colon + 1;
        for (;;) {
            char *end;
            errno = 0;
            if (*p < '0' || *p > '9')
                return soma__errf(err, errlen, SOMA_STATUS_INVALID, "neuron set '%s': expected a neuron index after '%s:'", text, name);
            unsigned long long v = strtoull(p, &end, 10);
            if (errno || v >= pi.size)
                return soma__errf(err, errlen, SOMA_STATUS_INVALID, "neuron set '%s': index %.*s of %s; expected 0 to %zu", text,
                                  (int)(end - p), p, name, pi.size - 1);
            if (*n >= cap) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "neuron set '%s': more than %zu neurons", text, cap);
            out[*n].pop = pop, out[*n].index = (size_t)v, (*n)++;
            p = end;
            if (*p == ',') { p++; continue; }
            break;
        }
        if (*p == '+') p++;
        else if (*p) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "neuron set '%s': unexpected '%c'; expected ',' or '+'", text, *p);
    }
    if (!*n) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "neuron set is empty; expected POP:I,J,...");
    return 0;
}
