/* compare.c — two models on the same inputs (soma dissect MODEL compare
 * MODEL2): the per-neuron RMS difference of pooled activations, the
 * comparative score of "shortcut neurons" (docs/dissect.md, "compare").
 *
 * Each batch is encoded once, for the first model (its data options, its
 * seed, the evaluation stream), and the same floats are fed to both
 * trainers, so both see the same spikes; the data options of the second
 * must agree on everything that changes the encoding. READ hooks on every
 * non-input `<pop>.spikes` of each trainer sum the values over the steps
 * per sample (the statistics pass's pooling); only the running sums of
 * squared differences outlive a batch. Built on sites, hooks and
 * soma_train_predict only. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "core/file.h"
#include "dissect/twomodel.h"
#include "soma.h"

/* ------------------------------------------------------------ checks */

static int is_hidden(const soma_net *net, size_t q) {
    for (size_t j = 0; j < soma_net_proj_count(net); j++) {
        size_t a, b;
        int bias;
        if (soma_net_proj_info(net, j, &a, &b, &bias) == 0 && a == q && b != q) return 1;
    }
    return 0;
}

/* Index of the population called name in net, or SIZE_MAX. */
static size_t pop_by_name(const soma_net *net, const char *name) {
    for (size_t q = 0; q < soma_net_pop_count(net); q++) {
        soma_pop_info pi;
        if (soma_net_pop_info(net, q, &pi) == 0 && strcmp(pi.name, name) == 0) return q;
    }
    return SIZE_MAX;
}

/* The (first) input population's size, or 0. */
static size_t input_size(const soma_net *net, const char **name) {
    for (size_t q = 0; q < soma_net_pop_count(net); q++) {
        soma_pop_info pi;
        if (soma_net_pop_info(net, q, &pi) == 0 && strcmp(pi.model, "input") == 0) return *name = pi.name, pi.size;
    }
    return *name = "?", 0;
}

int soma__dissect_two_check(const soma_dissect_ctx *x, const soma_dissect_ctx *x2, int pops, const char *what, char *err,
                            size_t errlen) {
    if (!x || !x->tr || !x->net || !x->d || !x->ds || !x2 || !x2->tr || !x2->net || !x2->d)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect: two trainers, their nets, data options and a data set are needed");
    const soma_data_opts *a = x->d, *b = x2->d;
    /* every field soma_encode reads besides the data set and the seed */
#define DIFF(field, fmt)                                                                                                  \
    if (a->field != b->field)                                                                                            \
        return soma__errf(err, errlen, SOMA_STATUS_INVALID,                                                              \
                          "%s: data option '" #field "' is " fmt " there, " fmt " in the model dissected; both models "  \
                          "must encode their samples identically",                                                       \
                          what, b->field, a->field)
    DIFF(encoding, "%d");
    DIFF(steps, "%d");
    DIFF(gain, "%g");
    DIFF(threshold, "%g");
    DIFF(tau, "%g");
    DIFF(delta_off, "%d");
    DIFF(bin_ms, "%g");
#undef DIFF
    const char *n1, *n2;
    size_t i1 = input_size(x->net, &n1), i2 = input_size(x2->net, &n2);
    if (i1 != i2)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: input population '%s' has %zu neurons, '%s' in the model dissected %zu",
                          what, n2, i2, n1, i1);
    if (!pops) return 0;
    for (int side = 0; side < 2; side++) { /* x's populations in x2, then x2's in x */
        const soma_net *p = side ? x2->net : x->net, *q = side ? x->net : x2->net;
        for (size_t k = 0; k < soma_net_pop_count(p); k++) {
            soma_pop_info pi, qi;
            if (soma_net_pop_info(p, k, &pi) || strcmp(pi.model, "input") == 0) continue;
            size_t j = pop_by_name(q, pi.name);
            if (j == SIZE_MAX)
                return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: population '%s' is in %s only; expected the same populations in both",
                                  what, pi.name, side ? what : "the model dissected");
            soma_net_pop_info(q, j, &qi);
            if (!side && qi.size != pi.size)
                return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: population '%s' has %zu neurons there, %zu in the model dissected; expected the same sizes",
                                  what, pi.name, qi.size, pi.size);
        }
    }
    return 0;
}

int soma_dissect_compare_check(const soma_dissect_ctx *x, const soma_dissect_ctx *x2, char *err, size_t errlen) {
    return soma__dissect_two_check(x, x2, 1, "MODEL2", err, errlen);
}

/* ------------------------------------------------------------ hooks */

typedef struct pool_ctx { /* one population's sums over steps per row, [B][n] */
    double *sum;
    size_t B, n;
} pool_ctx;

static int pool_cb(void *user, const soma_hook_event *ev) {
    pool_ctx *c = user;
    if (ev->n != c->n) return 1;
    for (size_t r = 0; r < ev->batch; r++) {
        size_t b = ev->row0 + r;
        if (b >= c->B) continue;
        double *s = c->sum + b * c->n;
        const float *v = ev->data + r * ev->n;
        for (size_t i = 0; i < c->n; i++) s[i] += v[i];
    }
    return 0;
}

/* ------------------------------------------------------------ the run */

void soma_dissect_compare_free(soma_dissect_compare *c) {
    if (!c) return;
    for (size_t q = 0; q < c->npops && c->pops; q++) free(c->pops[q].rms);
    free(c->pops), free(c->top), free(c->top_rms);
    free(c);
}

typedef struct ranked {
    double v;
    size_t q, i;
} ranked;

static int by_rms(const void *pa, const void *pb) {
    const ranked *a = pa, *b = pb;
    if (a->v != b->v) return a->v > b->v ? -1 : 1;
    if (a->q != b->q) return a->q < b->q ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

int soma_dissect_compare_run(const soma_dissect_ctx *x, const soma_dissect_ctx *x2, const soma_dissect_opts *o, size_t top,
                             soma_dissect_compare **out, char *err, size_t errlen) {
    if (!out) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect compare: no output pointer");
    *out = NULL;
    int st = soma_dissect_compare_check(x, x2, err, errlen);
    if (st) return st;
    if (x->tr == x2->tr) /* each trainer holds one hook set: two are needed */
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect compare: MODEL2 needs a trainer of its own (the same trainer was given twice)");
    const soma_dataset *ds = x->ds;
    if (ds->n == 0) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect compare: the data set is empty");
    if (x->d->steps < 1) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect compare: steps = %d; expected at least 1", x->d->steps);
    size_t B = o && o->batch ? o->batch : 256, N = o && o->limit && o->limit < ds->n ? o->limit : ds->n;
    if (!top) top = 20;
    soma_dissect_compare *c = calloc(1, sizeof *c);
    if (!c) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect compare: out of memory");
    c->samples = N, c->steps = (size_t)x->d->steps;
    size_t P = soma_net_pop_count(x->net), tot = 0;
    pool_ctx *pc = calloc(2 * P, sizeof *pc);
    double *sum = NULL, *sq = NULL;
    float *xb = NULL;
    size_t *idx = NULL;
    uint8_t *pred = NULL, *pred2 = NULL;
    ranked *rk = NULL;
    soma_hooks *h[2] = {NULL, NULL};
    c->pops = calloc(P, sizeof *c->pops);
    if (!pc || !c->pops) goto nomem;
    for (size_t q = 0; q < P; q++) {
        soma_pop_info pi;
        if (soma_net_pop_info(x->net, q, &pi) || strcmp(pi.model, "input") == 0) continue;
        soma_dissect_compare_pop *cp = &c->pops[c->npops++];
        snprintf(cp->name, sizeof cp->name, "%s", pi.name);
        cp->pop = q, cp->size = pi.size, cp->hidden = is_hidden(x->net, q);
        if (!(cp->rms = calloc(pi.size, sizeof *cp->rms))) goto nomem;
        tot += pi.size;
    }
    /* sums [2][B][tot]: each population's block [B][size] at its offset */
    sum = malloc(2 * B * tot * sizeof *sum), sq = calloc(tot, sizeof *sq);
    xb = malloc(soma_encode_size(x->d, ds, B) * sizeof *xb);
    idx = malloc(B * sizeof *idx), pred = malloc(B), pred2 = malloc(B);
    if (!sum || !sq || !xb || !idx || !pred || !pred2) goto nomem;
    for (int m = 0; m < 2; m++) {
        if (soma_hooks_create(&h[m])) goto nomem;
        size_t off = 0;
        for (size_t k = 0; k < c->npops; k++) {
            char site[160];
            snprintf(site, sizeof site, "%s.spikes", c->pops[k].name);
            pc[m * P + k] = (pool_ctx){sum + m * B * tot + B * off, B, c->pops[k].size};
            off += c->pops[k].size;
            if ((st = soma_hooks_add(h[m], site, SOMA_HOOK_READ, pool_cb, &pc[m * P + k]))) {
                st = soma__errf(err, errlen, st, "dissect compare: cannot add a hook on %s", site);
                goto fail;
            }
        }
        soma_trainer *tr = m ? x2->tr : x->tr;
        if ((st = soma_train_set_hooks(tr, h[m]))) {
            st = soma__errf(err, errlen, st, "dissect compare: %s: %s", m ? "MODEL2" : "MODEL", soma_train_errmsg(tr));
            goto fail;
        }
    }
    size_t right = 0, right2 = 0;
    uint64_t seed = soma_train_options(x->tr)->seed;
    for (size_t b0 = 0; b0 < N; b0 += B) {
        size_t Bb = b0 + B > N ? N - b0 : B;
        for (size_t r = 0; r < Bb; r++) idx[r] = b0 + r;
        int tc;
        if ((st = soma_encode(x->d, ds, idx, Bb, seed, SOMA_EVAL_STREAM, xb, &tc))) {
            st = soma__errf(err, errlen, st, "dissect compare: cannot encode sample %zu", b0);
            goto fail;
        }
        for (size_t k = 0; k < 2 * P; k++) pc[k].B = Bb;
        memset(sum, 0, 2 * B * tot * sizeof *sum);
        for (int m = 0; m < 2; m++) {
            soma_trainer *tr = m ? x2->tr : x->tr;
            if ((st = soma_train_predict(tr, xb, tc, Bb, m ? pred2 : pred))) {
                st = soma__errf(err, errlen, st, "dissect compare: %s forward pass: %s", m ? "MODEL2" : "MODEL", soma_train_errmsg(tr));
                goto fail;
            }
        }
        for (size_t r = 0; r < Bb; r++) right += pred[r] == ds->y[b0 + r], right2 += pred2[r] == ds->y[b0 + r];
        /* block k of model m: sum + m B tot + B off_k, rows of size_k */
        size_t off = 0;
        for (size_t k = 0; k < c->npops; k++) {
            size_t n = c->pops[k].size;
            const double *s1 = sum + B * off, *s2 = sum + B * tot + B * off;
            for (size_t r = 0; r < Bb; r++)
                for (size_t i = 0; i < n; i++) {
                    double dv = s1[r * n + i] - s2[r * n + i];
                    sq[off + i] += dv * dv;
                }
            off += n;
        }
        if (o && o->progress && o->progress(o->user, "compare", b0 + Bb, N)) {
            st = soma__errf(err, errlen, SOMA_STATUS_CANCELLED, "dissect compare: cancelled after %zu of %zu samples", b0 + Bb, N);
            goto fail;
        }
    }
    soma_train_set_hooks(x->tr, NULL), soma_train_set_hooks(x2->tr, NULL);
    c->accuracy = (double)right / (double)N, c->accuracy2 = (double)right2 / (double)N;
    if (!(rk = malloc((tot ? tot : 1) * sizeof *rk))) goto nomem;
    size_t off = 0;
    for (size_t k = 0; k < c->npops; k++) {
        soma_dissect_compare_pop *cp = &c->pops[k];
        double m = 0;
        for (size_t i = 0; i < cp->size; i++) {
            cp->rms[i] = sqrt(sq[off + i] / (double)N);
            m += cp->rms[i];
            rk[off + i] = (ranked){cp->rms[i], k, i};
        }
        cp->mean_rms = cp->size ? m / (double)cp->size : 0;
        off += cp->size;
    }
    qsort(rk, tot, sizeof *rk, by_rms);
    c->ntop = top < tot ? top : tot;
    c->top = malloc((c->ntop ? c->ntop : 1) * sizeof *c->top), c->top_rms = malloc((c->ntop ? c->ntop : 1) * sizeof *c->top_rms);
    if (!c->top || !c->top_rms) goto nomem;
    for (size_t j = 0; j < c->ntop; j++) c->top[j] = (soma_dissect_neuron){c->pops[rk[j].q].pop, rk[j].i}, c->top_rms[j] = rk[j].v;
    soma_hooks_free(h[0]), soma_hooks_free(h[1]);
    free(pc), free(sum), free(sq), free(xb), free(idx), free(pred), free(pred2), free(rk);
    *out = c;
    return 0;
nomem:
    st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect compare: out of memory");
fail:
    if (x && x->tr) soma_train_set_hooks(x->tr, NULL);
    if (x2 && x2->tr) soma_train_set_hooks(x2->tr, NULL);
    soma_hooks_free(h[0]), soma_hooks_free(h[1]);
    free(pc), free(sum), free(sq), free(xb), free(idx), free(pred), free(pred2), free(rk);
    soma_dissect_compare_free(c);
    return st;
}

/* ------------------------------------------------------------ files */

static void jnum(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fputs("null", f);
}

#define FIG_RANKS 20
#define FIG_POPS 10

int soma_dissect_write_compare(const soma_dissect_compare *c, const char *model, const char *model2, const char *dir,
                               char *err, size_t errlen) {
    if (!c || !dir) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect compare: nothing to write");
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/result.json", dir);
    FILE *f = soma__tmp_open(path, "w", tmp, sizeof tmp, err, errlen);
    if (!f) return SOMA_STATUS_IO;
    fprintf(f, "{\n  \"command\": \"compare\",\n  \"model\": ");
    soma__json_str(f, model ? model : "");
    fprintf(f, ",\n  \"model2\": ");
    soma__json_str(f, model2 ? model2 : "");
    fprintf(f, ",\n  \"samples\": %zu,\n  \"steps\": %zu,\n  \"pooling\": \"sum over steps\",\n"
               "  \"rms_formula\": \"sqrt(mean over samples of (v_model - v_model2)^2)\",\n  \"accuracy\": ",
            c->samples, c->steps);
    jnum(f, c->accuracy);
    fprintf(f, ",\n  \"accuracy2\": ");
    jnum(f, c->accuracy2);
    fprintf(f, ",\n  \"top\": [");
    for (size_t j = 0; j < c->ntop; j++) {
        const char *name = "?";
        for (size_t k = 0; k < c->npops; k++)
            if (c->pops[k].pop == c->top[j].pop) name = c->pops[k].name;
        fprintf(f, "%s\n    {\"pop\": ", j ? "," : "");
        soma__json_str(f, name);
        fprintf(f, ", \"index\": %zu, \"rms\": ", c->top[j].index);
        jnum(f, c->top_rms[j]);
        fputc('}', f);
    }
    fprintf(f, "\n  ],\n  \"populations\": [");
    for (size_t k = 0; k < c->npops; k++) {
        const soma_dissect_compare_pop *p = &c->pops[k];
        fprintf(f, "%s\n    {\"name\": ", k ? "," : "");
        soma__json_str(f, p->name);
        fprintf(f, ", \"size\": %zu, \"hidden\": %s, \"mean_rms\": ", p->size, p->hidden ? "true" : "false");
        jnum(f, p->mean_rms);
        fprintf(f, ",\n     \"rms\": [");
        for (size_t i = 0; i < p->size; i++) fputs(i ? "," : "", f), jnum(f, p->rms[i]);
        fprintf(f, "]}");
    }
    fprintf(f, "\n  ]\n}\n");
    int st = soma__tmp_commit(f, 0, tmp, path, err, errlen);
    if (st) return st;
    /* the figure: groups are ranks 1..R, one series per population (at most
     * 10): the RMS of its rank-r neuron (no bar past its size) */
    size_t np = c->npops < FIG_POPS ? c->npops : FIG_POPS, R = 0;
    for (size_t k = 0; k < np; k++) R = c->pops[k].size > R ? c->pops[k].size : R;
    R = R < FIG_RANKS ? R : FIG_RANKS;
    if (!np || !R) return 0;
    double *v = malloc(np * R * sizeof *v), *srt = NULL;
    const char **names = malloc(R * sizeof *names), *series[FIG_POPS];
    char(*lab)[16] = malloc(R * sizeof *lab);
    if (!v || !names || !lab) goto nomem;
    for (size_t r = 0; r < R; r++) snprintf(lab[r], sizeof lab[r], "%zu", r + 1), names[r] = lab[r];
    for (size_t k = 0; k < np; k++) {
        const soma_dissect_compare_pop *p = &c->pops[k];
        series[k] = p->name;
        free(srt);
        if (!(srt = malloc((p->size ? p->size : 1) * sizeof *srt))) goto nomem;
        memcpy(srt, p->rms, p->size * sizeof *srt);
        /* the R largest, by selection (R is small) */
        for (size_t r = 0; r < R; r++) {
            if (r >= p->size) {
                v[k * R + r] = NAN;
                continue;
            }
            size_t best = r;
            for (size_t i = r + 1; i < p->size; i++)
                if (srt[i] > srt[best]) best = i;
            double t = srt[r];
            srt[r] = srt[best], srt[best] = t;
            v[k * R + r] = srt[r];
        }
    }
    char title[256];
    snprintf(title, sizeof title, "RMS difference of pooled activations, largest %zu per population (rank 1 = largest)", R);
    snprintf(path, sizeof path, "%s/compare.png", dir);
    st = soma_plot_bars(path, title, "RMS (sum over steps)", R, names, np, series, v, err, errlen);
    free(v), free(srt), free(names), free(lab);
    return st;
nomem:
    free(v), free(srt), free(names), free(lab);
    return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect compare: out of memory");
}
