/* prune.c — soma dissect prune: score the hidden neurons (mean rate, WINA's
 * |x|·‖W[:,i]‖₂, or |activation x gradient| summed over classes), remove
 * the lowest-scored fraction of each hidden population physically, and
 * measure what that costs (accuracy) and buys (parameters, evaluation
 * speed), with optional fine-tuning of the smaller net.
 *
 * Built only on the public API: scores from soma_dissect_stats, READ hooks
 * and soma_dissect_attribution; the smaller net is described again through
 * soma_net_* (as a model file would describe it) and its tensors are
 * filled from the big net's by name; evaluation, timing and fine-tuning go
 * through soma_train_*. A removed neuron is the same as one whose spikes
 * are always 0: its incoming rows, its bias and its own parameters only
 * shape spikes nobody sees, and its outgoing columns only add 0. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "core/file.h"
#include "soma.h"

int soma_dissect_score_parse(const char *text, int *score, char *err, size_t errlen) {
    static const char *const names[] = {"rate", "wina", "attribution"};
    for (int i = 0; i < 3; i++)
        if (text && !strcmp(text, names[i])) return *score = i, 0;
    return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--by '%s': expected rate, wina or attribution",
                      text ? text : "");
}

const char *soma_dissect_score_name(int score) {
    return score == SOMA_DISSECT_SCORE_RATE ? "rate"
         : score == SOMA_DISSECT_SCORE_WINA ? "wina"
         : score == SOMA_DISSECT_SCORE_ATTRIBUTION ? "attribution" : "?";
}

void soma_dissect_prune_opts_default(soma_dissect_prune_opts *po) {
    memset(po, 0, sizeof *po);
    po->score = SOMA_DISSECT_SCORE_WINA;
    po->repeats = 3;
}

/* ------------------------------------------------------------- scores */

/* Sum of |x| per neuron of one hidden population over all rows and steps. */
typedef struct abs_ctx {
    double *sum; /* [N] */
    size_t N;
} abs_ctx;

static int abs_cb(void *user, const soma_hook_event *ev) {
    abs_ctx *c = user;
    if (ev->n != c->N) return 1;
    for (size_t r = 0; r < ev->batch; r++) {
        const float *v = ev->data + r * ev->n;
        for (size_t i = 0; i < c->N; i++) c->sum[i] += fabsf(v[i]);
    }
    return 0;
}

/* Mean |x| per step of every hidden neuron (layout of the hidden scores)
 * over the first `limit` samples, by READ hooks on `<pop>.spikes` during
 * soma_train_predict on samples encoded as soma_train_evaluate does. */
static int mean_abs(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s, double *out,
                    char *err, size_t errlen) {
    soma_dissect_info in;
    soma_dissect_stats_info(s, &in);
    size_t H = soma_dissect_hidden_count(s), N = o && o->limit && o->limit < x->ds->n ? o->limit : x->ds->n;
    size_t B = o && o->batch ? o->batch : 256, T = (size_t)x->d->steps;
    abs_ctx *ctx = calloc(in.pops ? in.pops : 1, sizeof *ctx);
    size_t *idx = malloc(B * sizeof *idx);
    float *xb = malloc(soma_encode_size(x->d, x->ds, B) * sizeof *xb);
    uint8_t *pred = malloc(B);
    soma_hooks *h = NULL;
    int st = !ctx || !idx || !xb || !pred ? SOMA_STATUS_NOMEM : soma_hooks_create(&h);
    if (st) {
        soma__errf(err, errlen, st, "dissect prune: out of memory");
        goto done;
    }
    memset(out, 0, H * sizeof *out);
    for (size_t q = 0, off = 0; q < in.pops; q++) {
        soma_dissect_pop p;
        soma_dissect_stats_pop(s, q, &p);
        if (!p.hidden) continue;
        ctx[q] = (abs_ctx){out + off, p.size};
        off += p.size;
        char site[160];
        snprintf(site, sizeof site, "%s.spikes", p.name);
        if ((st = soma_hooks_add(h, site, SOMA_HOOK_READ, abs_cb, &ctx[q]))) {
            soma__errf(err, errlen, st, "dissect prune: cannot hook %s", site);
            goto done;
        }
    }
    if ((st = soma_train_set_hooks(x->tr, h))) {
        soma__errf(err, errlen, st, "dissect prune: %s", soma_train_errmsg(x->tr));
        goto done;
    }
    for (size_t b0 = 0; b0 < N; b0 += B) {
        size_t Bb = N - b0 < B ? N - b0 : B;
        for (size_t b = 0; b < Bb; b++) idx[b] = b0 + b;
        int tc;
        st = soma_encode(x->d, x->ds, idx, Bb, soma_train_options(x->tr)->seed, SOMA_EVAL_STREAM, xb, &tc);
        if (st) {
            soma__errf(err, errlen, st, "dissect prune: cannot encode samples %zu to %zu", b0, b0 + Bb);
            break;
        }
        if ((st = soma_train_predict(x->tr, xb, tc, Bb, pred))) {
            soma__errf(err, errlen, st, "dissect prune: forward pass: %s", soma_train_errmsg(x->tr));
            break;
        }
        if (o && o->progress && o->progress(o->user, "score", b0 + Bb, N)) {
            st = soma__errf(err, errlen, SOMA_STATUS_CANCELLED, "dissect prune: cancelled");
            break;
        }
    }
    soma_train_set_hooks(x->tr, NULL);
    for (size_t i = 0; i < H; i++) out[i] /= (double)N * (double)T;
done:
    soma_hooks_free(h);
    free(ctx), free(idx), free(xb), free(pred);
    return st;
}

/* The trainer's tensor named name, or NULL. */
static int find_tensor(soma_trainer *tr, const char *name, soma_tensor *t) {
    for (size_t i = 0; soma_train_tensor(tr, i, t) == 0; i++)
        if (!strcmp(t->name, name)) return 0;
    return SOMA_STATUS_NOTFOUND;
}

/* L2 norm of each neuron's outgoing weight columns, all projections leaving
 * population pop (its recurrent weights too) taken together: norm [N]. */
static int out_norms(const soma_dissect_ctx *x, size_t pop, size_t N, double *norm, char *err, size_t errlen) {
    soma_pop_info src;
    soma_net_pop_info(x->net, pop, &src);
    for (size_t i = 0; i < N; i++) norm[i] = 0;
    size_t np = soma_net_proj_count(x->net), found = 0;
    for (size_t j = 0; j <= np; j++) {
        size_t a, b;
        if (j < np) {
            if (soma_net_proj_info(x->net, j, &a, &b, NULL) || a != pop) continue;
        } else {
            if (!src.recurrent) continue;
            a = b = pop;
        }
        soma_pop_info dst;
        soma_net_pop_info(x->net, b, &dst);
        char name[200];
        snprintf(name, sizeof name, "%s->%s.weight", src.name, dst.name);
        soma_tensor t;
        if (find_tensor(x->tr, name, &t) || t.cols != N)
            return soma__errf(err, errlen, SOMA_STATUS_UNSUPPORTED,
                              "dissect prune: wina needs the dense weights %s (%zu columns); not found", name, N);
        for (size_t r = 0; r < t.rows; r++)
            for (size_t i = 0; i < N; i++) norm[i] += (double)t.data[r * N + i] * t.data[r * N + i];
        found++;
    }
    if (!found) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect prune: no weights leave %s", src.name);
    for (size_t i = 0; i < N; i++) norm[i] = sqrt(norm[i]);
    return 0;
}

int soma_dissect_prune_scores(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s,
                              int score, double *out, char *err, size_t errlen) {
    if (!x || !x->tr || !x->net || !x->d || !x->ds || !s || !out)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect prune: scores need a context, statistics and an output");
    soma_dissect_info in;
    soma_dissect_stats_info(s, &in);
    size_t H = soma_dissect_hidden_count(s);
    if (score == SOMA_DISSECT_SCORE_RATE) {
        for (size_t q = 0, off = 0; q < in.pops; q++) {
            soma_dissect_pop p;
            soma_dissect_stats_pop(s, q, &p);
            if (!p.hidden) continue;
            memcpy(out + off, p.rate, p.size * sizeof *out);
            off += p.size;
        }
        return 0;
    }
    if (score == SOMA_DISSECT_SCORE_WINA) {
        int st = mean_abs(x, o, s, out, err, errlen);
        for (size_t q = 0, off = 0; q < in.pops && !st; q++) {
            soma_dissect_pop p;
            soma_dissect_stats_pop(s, q, &p);
            if (!p.hidden) continue;
            double *norm = malloc(p.size * sizeof *norm);
            if (!norm) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect prune: out of memory");
            st = out_norms(x, p.pop, p.size, norm, err, errlen);
            for (size_t i = 0; i < p.size && !st; i++) out[off + i] *= norm[i];
            free(norm);
            off += p.size;
        }
        return st;
    }
    if (score != SOMA_DISSECT_SCORE_ATTRIBUTION)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect prune: score %d; expected rate, wina or attribution", score);
    double *a = malloc((H ? H : 1) * sizeof *a);
    if (!a) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect prune: out of memory");
    memset(out, 0, H * sizeof *out);
    int st = 0;
    for (size_t c = 0; c < in.classes && !st; c++) {
        if (!in.class_samples[c]) continue; /* no sample: no attribution */
        if (!(st = soma_dissect_attribution(x, o, s, c, a, NULL, err, errlen)))
            for (size_t i = 0; i < H; i++) out[i] += fabs(a[i]);
    }
    free(a);
    return st;
}

/* ------------------------------------------------------------- select */

typedef struct ranked {
    double v;
    size_t i;
} ranked;

static int by_score(const void *pa, const void *pb) {
    const ranked *a = pa, *b = pb;
    int na = isnan(a->v), nb = isnan(b->v);
    if (na != nb) return na ? -1 : 1; /* NaN first: removed first */
    if (!na && a->v != b->v) return a->v < b->v ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}
static int by_neuron(const void *pa, const void *pb) {
    const soma_dissect_neuron *a = pa, *b = pb;
    if (a->pop != b->pop) return a->pop < b->pop ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

int soma_dissect_prune_select(const soma_dissect_stats *s, const double *score, double fraction,
                              soma_dissect_neuron *out, size_t cap, size_t *n, char *err, size_t errlen) {
    if (!s || !score || !n)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect prune: select needs statistics, scores and a count");
    if (!(fraction >= 0 && fraction < 1))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--fraction %g: expected a fraction in [0, 1)", fraction);
    soma_dissect_info in;
    soma_dissect_stats_info(s, &in);
    *n = 0;
    for (size_t q = 0, off = 0; q < in.pops; q++) {
        soma_dissect_pop p;
        soma_dissect_stats_pop(s, q, &p);
        if (!p.hidden) continue;
        size_t k = (size_t)floor(fraction * (double)p.size + 1e-9);
        if (k >= p.size) k = p.size - 1;
        if (*n + k > cap)
            return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect prune: %zu neurons do not fit in %zu", *n + k, cap);
        ranked *r = malloc(p.size * sizeof *r);
        if (!r) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect prune: out of memory");
        for (size_t i = 0; i < p.size; i++) r[i] = (ranked){score[off + i], i};
        qsort(r, p.size, sizeof *r, by_score);
        for (size_t j = 0; j < k; j++) out[(*n)++] = (soma_dissect_neuron){p.pop, r[j].i};
        free(r);
        off += p.size;
    }
    qsort(out, *n, sizeof *out, by_neuron);
    return 0;
}

/* --------------------------------------------------------------- prune */

/* How a tensor of the small net is read from the big one: rows by rmap
 * (NULL: the same rows), columns by cmap (NULL: the same columns). */
typedef struct remap {
    char name[200];
    const size_t *rmap, *cmap;
} remap;

static int has_out_proj(const soma_net *net, size_t pop) {
    for (size_t j = 0; j < soma_net_proj_count(net); j++) {
        size_t a, b;
        if (soma_net_proj_info(net, j, &a, &b, NULL) == 0 && a == pop && b != pop) return 1;
    }
    return 0;
}

/* Describe the small net: every population at its kept size with the big
 * one's parameters, learn modes, recurrence and shape; every projection. */
static int describe(soma_net *net, const size_t *newsize, soma_net *sm, char *err, size_t errlen) {
    int st = soma_net_set_dt(sm, soma_net_dt(net));
    if (st) return soma__errf(err, errlen, st, "dissect prune: time step: %s", soma_net_errmsg(sm));
    size_t npop = soma_net_pop_count(net);
    for (size_t i = 0; i < npop; i++) {
        soma_pop_info pi;
        soma_net_pop_info(net, i, &pi);
        if ((st = soma_net_add_pop(sm, pi.name, pi.model, newsize[i], NULL)))
            return soma__errf(err, errlen, st, "dissect prune: population %s: %s", pi.name, soma_net_errmsg(sm));
        size_t dims[3], nd = 1;
        soma_net_get_shape(net, i, dims, &nd);
        if (nd > 1 && (st = soma_net_set_shape(sm, i, dims, nd)))
            return soma__errf(err, errlen, st, "dissect prune: population %s: shape: %s", pi.name, soma_net_errmsg(sm));
        size_t np = 0;
        const soma_param_desc *pd = soma_model_params(soma_model_find(pi.model), &np);
        for (size_t k = 0; k < np; k++) {
            float v;
            soma_learn l = soma_net_get_learn(net, i, pd[k].name);
            if ((st = soma_net_get_param(net, i, pd[k].name, &v)) || (st = soma_net_set_param(sm, i, pd[k].name, v)) ||
                (l != SOMA_LEARN_NONE && (st = soma_net_set_learn(sm, i, pd[k].name, l))))
                return soma__errf(err, errlen, st, "dissect prune: population %s, parameter %s: %s", pi.name, pd[k].name,
                                  soma_net_errmsg(sm));
        }
        if (pi.recurrent && (st = soma_net_set_recurrent(sm, i, 1)))
            return soma__errf(err, errlen, st, "dissect prune: population %s: recurrent: %s", pi.name, soma_net_errmsg(sm));
    }
    for (size_t j = 0; j < soma_net_proj_count(net); j++) {
        size_t a, b;
        int bias;
        soma_conv cv;
        soma_net_proj_info(net, j, &a, &b, &bias);
        int conv = soma_net_proj_conv(net, j, &cv);
        st = conv == 1 ? soma_net_connect_conv(sm, a, b, bias, &cv) : soma_net_connect_dense(sm, a, b, bias);
        if (st) return soma__errf(err, errlen, st, "dissect prune: projection %zu: %s", j, soma_net_errmsg(sm));
        double ms = 0;
        int port = 0, tm = soma_net_proj_timing(net, j, &ms, &port);
        char ds[64];
        snprintf(ds, sizeof ds, "%.17gms", ms);
        if (tm > 0 && (((tm & 1) && (st = soma_net_proj_set_delay(sm, j, ds))) ||
                       ((tm & 2) && (st = soma_net_proj_set_port(sm, j, port)))))
            return soma__errf(err, errlen, st, "dissect prune: projection %zu: timing: %s", j, soma_net_errmsg(sm));
    }
    return 0;
}

int soma_dissect_prune_net(soma_net *net, const soma_dissect_neuron *set, size_t n, soma_net **out, char *err,
                           size_t errlen) {
    if (!net || !out || (n && !set))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect prune: needs a net, a neuron set and an output");
    *out = NULL;
    size_t npop = soma_net_pop_count(net), np = soma_net_proj_count(net), nt = soma_net_tensor_count(net);
    if (!nt) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect prune: the net has no weights to prune (not trained or loaded)");
    size_t *newsize = calloc(npop, sizeof *newsize), **keep = calloc(npop, sizeof *keep);
    uint8_t *drop = NULL;
    size_t rmcap = 2 * np + 1;
    for (size_t i = 0; i < npop; i++) {
        soma_pop_info pi;
        size_t npar = 0;
        soma_net_pop_info(net, i, &pi);
        soma_model_params(soma_model_find(pi.model), &npar);
        rmcap += 1 + npar;
    }
    remap *rm = calloc(rmcap, sizeof *rm);
    soma_net *sm = NULL;
    size_t total = 0, nrm = 0;
    int st = !newsize || !keep || !rm ? SOMA_STATUS_NOMEM : 0;
    if (st) goto nomem;
    for (size_t i = 0; i < npop; i++) {
        soma_pop_info pi;
        soma_net_pop_info(net, i, &pi);
        newsize[i] = pi.size, total += pi.size;
    }
    if (!(drop = calloc(total ? total : 1, 1))) goto nomem;
    /* Check the set: hidden neurons in range, each once. */
    size_t *first = calloc(npop + 1, sizeof *first);
    if (!first) goto nomem;
    for (size_t i = 0; i < npop; i++) first[i + 1] = first[i] + newsize[i];
    for (size_t k = 0; k < n; k++) {
        size_t p = set[k].pop;
        soma_pop_info pi;
        if (p >= npop) {
            free(first);
            st = soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect prune: population %zu; the net has %zu", p, npop);
            goto done;
        }
        soma_net_pop_info(net, p, &pi);
        if (!strcmp(pi.model, "input") || !has_out_proj(net, p)) {
            free(first);
            st = soma__errf(err, errlen, SOMA_STATUS_INVALID,
                            "dissect prune: %s is %s population; only hidden populations (a projection leaves them) are pruned",
                            pi.name, !strcmp(pi.model, "input") ? "the input" : "an output");
            goto done;
        }
        if (set[k].index >= pi.size || drop[first[p] + set[k].index]) {
            free(first);
            st = soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect prune: neuron %s[%zu] %s", pi.name, set[k].index,
                            set[k].index >= pi.size ? "is out of range" : "is listed twice");
            goto done;
        }
        drop[first[p] + set[k].index] = 1;
        newsize[p]--;
    }
    for (size_t i = 0; i < npop; i++) {
        soma_pop_info pi;
        soma_net_pop_info(net, i, &pi);
        if (newsize[i] == pi.size) continue;
        if (newsize[i] == 0) {
            free(first);
            st = soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect prune: every neuron of %s would go; keep at least one", pi.name);
            goto done;
        }
        size_t dims[3], nd = 1;
        soma_net_get_shape(net, i, dims, &nd);
        int conv = 0;
        for (size_t j = 0; j < np; j++) {
            size_t a, b;
            soma_conv cv;
            soma_net_proj_info(net, j, &a, &b, NULL);
            conv |= (a == i || b == i) && soma_net_proj_conv(net, j, &cv) == 1;
        }
        if (nd > 1 || conv) {
            free(first);
            st = soma__errf(err, errlen, SOMA_STATUS_UNSUPPORTED,
                            "dissect prune: %s is a convolution population (shape or conv projection); pruning removes "
                            "neurons of flat populations reached by dense projections only", pi.name);
            goto done;
        }
        if (!(keep[i] = malloc(newsize[i] * sizeof **keep))) {
            free(first);
            goto nomem;
        }
        for (size_t j = 0, m = 0; j < pi.size; j++)
            if (!drop[first[i] + j]) keep[i][m++] = j;
    }
    free(first);

    /* Which tensors change shape, and how. */
    for (size_t j = 0; j < np; j++) {
        size_t a, b;
        int bias;
        soma_pop_info pa, pb;
        soma_net_proj_info(net, j, &a, &b, &bias);
        soma_net_pop_info(net, a, &pa), soma_net_pop_info(net, b, &pb);
        snprintf(rm[nrm].name, sizeof rm[nrm].name, "%s->%s.weight", pa.name, pb.name);
        rm[nrm].rmap = keep[b], rm[nrm].cmap = keep[a], nrm++;
        snprintf(rm[nrm].name, sizeof rm[nrm].name, "%s->%s.bias", pa.name, pb.name); /* [1][rows] */
        rm[nrm].rmap = NULL, rm[nrm].cmap = keep[b], nrm++;
    }
    for (size_t i = 0; i < npop; i++) {
        soma_pop_info pi;
        soma_net_pop_info(net, i, &pi);
        snprintf(rm[nrm].name, sizeof rm[nrm].name, "%s->%s.weight", pi.name, pi.name);
        rm[nrm].rmap = keep[i], rm[nrm].cmap = keep[i], nrm++;
        size_t npar = 0;
        const soma_param_desc *pd = soma_model_params(soma_model_find(pi.model), &npar);
        for (size_t k = 0; k < npar; k++) {
            if (soma_net_get_learn(net, i, pd[k].name) != SOMA_LEARN_NEURON) continue;
            snprintf(rm[nrm].name, sizeof rm[nrm].name, "%s.%s", pi.name, pd[k].name);
            rm[nrm].rmap = NULL, rm[nrm].cmap = keep[i], nrm++;
        }
    }

    if ((st = soma_net_create(&sm))) goto nomem;
    if ((st = describe(net, newsize, sm, err, errlen))) goto done;
    /* Allocate (and mark initialised, so a trainer keeps them); every tensor is overwritten below. */
    if ((st = soma_net_init_weights(sm, 0))) {
        soma__errf(err, errlen, st, "dissect prune: allocating the weights: %s", soma_net_errmsg(sm));
        goto done;
    }
    size_t snt = soma_net_tensor_count(sm);
    if (snt != nt) {
        st = soma__errf(err, errlen, SOMA_STATUS_UNSUPPORTED, "dissect prune: the pruned net has %zu tensors, the net %zu", snt, nt);
        goto done;
    }
    for (size_t t = 0; t < snt; t++) {
        soma_tensor d, s;
        soma_net_tensor(sm, t, &d);
        if (soma_net_tensor_find(net, d.name, &s)) {
            st = soma__errf(err, errlen, SOMA_STATUS_UNSUPPORTED, "dissect prune: the net has no tensor %s", d.name);
            goto done;
        }
        const remap *r = NULL;
        for (size_t k = 0; k < nrm && !r; k++)
            if (!strcmp(rm[k].name, d.name)) r = &rm[k];
        int same = d.rows == s.rows && d.cols == s.cols;
        if (!r && !same) {
            st = soma__errf(err, errlen, SOMA_STATUS_UNSUPPORTED,
                            "dissect prune: tensor %s (%zux%zu) is a weight of the model's own; its population cannot be pruned",
                            s.name, s.rows, s.cols);
            goto done;
        }
        if (same && (!r || (!r->rmap && !r->cmap))) {
            memcpy(d.data, s.data, d.rows * d.cols * sizeof *d.data);
            continue;
        }
        for (size_t y = 0; y < d.rows; y++) {
            const float *srow = s.data + (r->rmap ? r->rmap[y] : y) * s.cols;
            float *drow = d.data + y * d.cols;
            for (size_t c = 0; c < d.cols; c++) drow[c] = srow[r->cmap ? r->cmap[c] : c];
        }
    }
    *out = sm, sm = NULL;
    st = 0;
    goto done;
nomem:
    st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect prune: out of memory");
done:
    soma_net_free(sm);
    for (size_t i = 0; keep && i < npop; i++) free(keep[i]);
    free(keep), free(newsize), free(drop), free(rm);
    return st;
}

/* ----------------------------------------------------------------- run */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Accuracy (of the first evaluation) and the median samples/s of `repeats`
 * evaluations on the first `limit` samples of ds. */
static int timed_eval(soma_trainer *tr, const soma_dataset *ds, size_t limit, size_t repeats, double *acc, double *sps,
                      char *err, size_t errlen) {
    double v[64];
    if (repeats > 64) repeats = 64;
    for (size_t r = 0; r < repeats; r++) {
        double a;
        int st = soma_train_evaluate(tr, ds, limit, &a, &v[r]);
        if (st) return soma__errf(err, errlen, st, "dissect prune: evaluation: %s", soma_train_errmsg(tr));
        if (r == 0) *acc = a;
    }
    qsort(v, repeats, sizeof *v, cmp_double);
    *sps = repeats % 2 ? v[repeats / 2] : 0.5 * (v[repeats / 2 - 1] + v[repeats / 2]);
    return 0;
}

typedef struct ft_ctx {
    const soma_dissect_opts *o;
    long stop; /* batches to run in this epoch (0: all) */
} ft_ctx;

static int ft_cb(void *user, const soma_progress *p) {
    ft_ctx *c = user;
    long total = c->stop && c->stop < p->batches ? c->stop : p->batches;
    if (c->o && c->o->progress && c->o->progress(c->o->user, "finetune", (size_t)p->batch, (size_t)total)) return 1;
    return c->stop && p->batch >= c->stop ? 2 : 0;
}

/* finetune epochs of training (the last one partial: that share of its
 * batches), epochs numbered from 0 for the model's schedule. */
static int finetune(soma_trainer *tr, const soma_dissect_opts *o, const soma_dataset *train, double epochs, char *err,
                    size_t errlen) {
    const soma_train_opts *to = soma_train_options(tr);
    size_t B = to->batch ? to->batch : 1;
    long per = (long)((train->n + B - 1) / B);
    if (to->max_batches > 0 && to->max_batches < per) per = to->max_batches;
    for (int e = 0; (double)e < epochs; e++) {
        double part = epochs - e;
        ft_ctx c = {o, part >= 1 ? 0 : (long)ceil(part * (double)per)};
        if (part < 1 && c.stop < 1) c.stop = 1;
        soma_epoch_result res;
        int st = soma_train_epoch(tr, train, e, ft_cb, &c, &res);
        if (st == SOMA_STATUS_CANCELLED && c.stop && res.batches >= c.stop) st = 0; /* the partial epoch's end */
        if (st) return soma__errf(err, errlen, st, "dissect prune: fine-tuning, epoch %d: %s", e, soma_train_errmsg(tr));
    }
    return 0;
}

static void model_path(char *buf, size_t n, const char *dir, const char *base, size_t nfr, double fr) {
    if (nfr == 1) snprintf(buf, n, "%s/%s.soma", dir, base);
    else snprintf(buf, n, "%s/%s-%g.soma", dir, base, fr);
}

int soma_dissect_prune_run(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_prune_opts *po,
                           soma_dissect_prune_result *res, char *err, size_t errlen) {
    if (!x || !x->tr || !x->net || !x->d || !x->ds || !po || !res || !po->fractions || !po->nfractions)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect prune: needs a context, options with fractions and results");
    if (!po->train) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect prune: needs the training split (scores, fine-tuning)");
    if (!(po->finetune >= 0 && po->finetune <= 1000))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--finetune %g: expected epochs from 0 to 1000", po->finetune);
    for (size_t f = 0; f < po->nfractions; f++)
        if (!(po->fractions[f] >= 0 && po->fractions[f] < 1))
            return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--fraction %g: expected a fraction in [0, 1)", po->fractions[f]);
    if (po->score < 0 || po->score > SOMA_DISSECT_SCORE_ATTRIBUTION)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect prune: score %d; expected rate, wina or attribution", po->score);
    soma_net *net = (soma_net *)x->net; /* the tensors' getters take a mutable net; nothing is written */
    soma_train_opts topt = *soma_train_options(x->tr);
    const soma_data_opts *sd = po->save_data ? po->save_data : x->d;
    const soma_train_opts *stt = po->save_train ? po->save_train : &topt;
    size_t repeats = po->repeats ? po->repeats : 3, limit = o ? o->limit : 0;
    soma_dissect_opts co = o ? *o : (soma_dissect_opts){0};
    co.limit = po->calib;
    soma_dissect_ctx cx = {x->tr, x->net, x->d, po->train};
    soma_dissect_stats *s = NULL;
    double *score = NULL;
    soma_dissect_neuron *set = NULL;
    int st = soma_dissect_stats_run(&cx, &co, &s, err, errlen);
    if (st) return st;
    size_t H = soma_dissect_hidden_count(s);
    if (!H) {
        soma_dissect_stats_free(s);
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect prune: the net has no hidden population (a projection leaves it)");
    }
    score = malloc(H * sizeof *score), set = malloc(H * sizeof *set);
    if (!score || !set) {
        st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect prune: out of memory");
        goto done;
    }
    if ((st = soma_dissect_prune_scores(&cx, &co, s, po->score, score, err, errlen))) goto done;
    double acc0, sps0;
    if ((st = timed_eval(x->tr, x->ds, limit, repeats, &acc0, &sps0, err, errlen))) goto done;
    size_t params0 = soma_net_param_count(net);
    for (size_t f = 0; f < po->nfractions; f++) {
        soma_dissect_prune_result *r = &res[f];
        memset(r, 0, sizeof *r);
        r->fraction = po->fractions[f], r->hidden_before = H, r->params_before = params0;
        r->acc_before = acc0, r->sps_before = sps0, r->acc_finetuned = NAN;
        size_t n = 0;
        if ((st = soma_dissect_prune_select(s, score, r->fraction, set, H, &n, err, errlen))) goto done;
        soma_net *sm = NULL;
        soma_trainer *tr = NULL;
        if ((st = soma_dissect_prune_net(net, set, n, &sm, err, errlen))) goto done;
        r->hidden_after = H - n, r->params_after = soma_net_param_count(sm);
        if (po->dir) {
            model_path(r->pruned_path, sizeof r->pruned_path, po->dir, "pruned", po->nfractions, r->fraction);
            if ((st = soma_model_save(r->pruned_path, sm, sd, stt, err, errlen))) goto one;
        }
        if ((st = soma_train_create(&tr, sm, &topt, x->d))) {
            soma__errf(err, errlen, st, "dissect prune: a trainer for the pruned net: %s", soma_net_errmsg(sm));
            goto one;
        }
        if ((st = timed_eval(tr, x->ds, limit, repeats, &r->acc_pruned, &r->sps_after, err, errlen))) goto one;
        if (po->finetune > 0) {
            double t0 = soma_clock_seconds();
            if ((st = finetune(tr, o, po->train, po->finetune, err, errlen))) goto one;
            r->finetune_seconds = soma_clock_seconds() - t0;
            double sps;
            if ((st = timed_eval(tr, x->ds, limit, 1, &r->acc_finetuned, &sps, err, errlen))) goto one;
            if (po->dir) {
                model_path(r->finetuned_path, sizeof r->finetuned_path, po->dir, "finetuned", po->nfractions, r->fraction);
                if ((st = soma_model_save(r->finetuned_path, sm, sd, stt, err, errlen))) goto one;
            }
        }
    one:
        soma_train_free(tr);
        soma_net_free(sm);
        if (st) goto done;
    }
done:
    soma_dissect_stats_free(s);
    free(score), free(set);
    return st;
}

/* ------------------------------------------------------------- output */


int soma_dissect_write_prune(const soma_dissect_prune_opts *po, const soma_dissect_prune_result *res,
                             const char *model, const char *dir, char *err, size_t errlen) {
    if (!po || !res || !dir) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect prune: nothing to write");
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/result.json", dir);
    FILE *f = soma__tmp_open(path, "w", tmp, sizeof tmp, err, errlen);
    if (!f) return SOMA_STATUS_IO;
    fprintf(f, "{\n  \"command\": \"prune\",\n  \"model\": ");
    soma__json_str(f, model ? model : "");
    fprintf(f, ",\n  \"by\": \"%s\",\n  \"calibration_samples\": %zu,\n  \"finetune_epochs\": ",
            soma_dissect_score_name(po->score), po->calib);
    soma__json_num(f, po->finetune);
    fprintf(f, ",\n  \"timing_repeats\": %zu,\n  \"results\": [", po->repeats ? po->repeats : 3);
    for (size_t k = 0; k < po->nfractions; k++) {
        const soma_dissect_prune_result *r = &res[k];
        fprintf(f, "%s\n    {\"fraction\": ", k ? "," : "");
        soma__json_num(f, r->fraction);
        fprintf(f, ", \"hidden_before\": %zu, \"hidden_after\": %zu, \"params_before\": %zu, \"params_after\": %zu,\n",
                r->hidden_before, r->hidden_after, r->params_before, r->params_after);
        fprintf(f, "     \"accuracy_before\": "), soma__json_num(f, r->acc_before);
        fprintf(f, ", \"accuracy_pruned\": "), soma__json_num(f, r->acc_pruned);
        fprintf(f, ", \"accuracy_finetuned\": "), soma__json_num(f, r->acc_finetuned);
        fprintf(f, ",\n     \"samples_per_second_before\": "), soma__json_num(f, r->sps_before);
        fprintf(f, ", \"samples_per_second_after\": "), soma__json_num(f, r->sps_after);
        fprintf(f, ", \"speedup\": "), soma__json_num(f, r->sps_before > 0 ? r->sps_after / r->sps_before : NAN);
        fprintf(f, ", \"finetune_seconds\": "), soma__json_num(f, r->finetune_seconds);
        fprintf(f, ",\n     \"pruned_model\": "), soma__json_str(f, r->pruned_path);
        fprintf(f, ", \"finetuned_model\": "), soma__json_str(f, r->finetuned_path);
        fprintf(f, "}");
    }
    fprintf(f, "\n  ]\n}\n");
    int st = soma__tmp_commit(f, 0, tmp, path, err, errlen);
    if (st || po->nfractions < 2) return st;
    size_t n = po->nfractions;
    double *v = malloc(2 * n * sizeof *v);
    char(*lab)[32] = malloc(n * sizeof *lab);
    const char **names = malloc(n * sizeof *names);
    if (!v || !lab || !names) {
        free(v), free(lab), free(names);
        return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect prune: out of memory");
    }
    for (size_t k = 0; k < n; k++) {
        snprintf(lab[k], sizeof lab[k], "%g", res[k].fraction), names[k] = lab[k];
        v[k] = 100.0 * res[k].acc_pruned, v[n + k] = 100.0 * res[k].acc_finetuned;
    }
    const char *series[2] = {"pruned", "fine-tuned"};
    char title[128];
    snprintf(title, sizeof title, "Test accuracy after pruning by %s (dense %.2f%%) against the fraction removed",
             soma_dissect_score_name(po->score), 100.0 * res[0].acc_before);
    snprintf(path, sizeof path, "%s/prune.png", dir);
    st = soma_plot_bars(path, title, "accuracy (%)", n, names, po->finetune > 0 ? 2 : 1, series, v, err, errlen);
    free(v), free(lab), free(names);
    return st;
}
