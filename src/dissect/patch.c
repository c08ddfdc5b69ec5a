/* patch.c — activation patching (soma dissect patch), as TransformerLens
 * users know it: run the model on a source sample J and record the values
 * of one site at every step (READ hook); then run each target sample with
 * that site's values (all of them, or listed neurons only) replaced at
 * every step by the source's (OVERRIDE hook), and measure how far the
 * output moves from the target's own (clean) output toward the source's.
 *
 * Built only on the public API (sites, hooks, soma_train_predict). The
 * output is the output population's `<out>.spikes` site summed over the T
 * steps (spike counts; summed values for a graded output), read by a READ
 * hook in the same forward passes that make the predictions. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/json.h"
#include "core/file.h"
#include "dissect/twomodel.h"
#include "soma.h"

/* The stream soma_train_evaluate encodes test samples with (as dissect.c),
 * so the clean predictions are evaluate's. */

/* ------------------------------------------------------------ hooks */

typedef struct rec_ctx { /* the source's site values, [T][n] */
    float *v;
    size_t T, n;
} rec_ctx;

typedef struct over_ctx { /* write the source's values into every row */
    const float *v;
    size_t T, n;
    const size_t *idx; /* neurons to patch; NULL: all n */
    size_t nidx;
} over_ctx;

typedef struct out_ctx { /* output sums per row of the batch, [B][n] */
    double *sum;
    size_t B, n;
} out_ctx;

static int rec_cb(void *user, const soma_hook_event *ev) {
    rec_ctx *c = user;
    if (ev->step >= c->T || ev->n != c->n) return 1; /* not the run this was set up for */
    for (size_t r = 0; r < ev->batch; r++)
        if (ev->row0 + r == 0) memcpy(c->v + ev->step * c->n, ev->data + r * ev->n, c->n * sizeof *c->v);
    return 0;
}

static int over_cb(void *user, const soma_hook_event *ev) {
    const over_ctx *c = user;
    if (ev->step >= c->T || ev->n != c->n) return 1;
    const float *src = c->v + ev->step * c->n;
    for (size_t r = 0; r < ev->batch; r++) {
        float *d = ev->data + r * ev->n;
        if (!c->idx) memcpy(d, src, c->n * sizeof *d);
        else
            for (size_t j = 0; j < c->nidx; j++) d[c->idx[j]] = src[c->idx[j]];
    }
    return 0;
}

static int out_cb(void *user, const soma_hook_event *ev) {
    out_ctx *c = user;
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

/* Between two models (--from-model): every target is its own source, so
 * the recorded values are per row, [B][T][n]. */
typedef struct rows_ctx {
    float *v;
    size_t B, T, n;
    const size_t *idx; /* neurons to patch; NULL: all n */
    size_t nidx;
} rows_ctx;

static int rows_rec_cb(void *user, const soma_hook_event *ev) {
    const rows_ctx *c = user;
    if (ev->step >= c->T || ev->n != c->n) return 1;
    for (size_t r = 0; r < ev->batch; r++) {
        size_t b = ev->row0 + r;
        if (b < c->B) memcpy(c->v + (b * c->T + ev->step) * c->n, ev->data + r * ev->n, c->n * sizeof *c->v);
    }
    return 0;
}

static int rows_over_cb(void *user, const soma_hook_event *ev) {
    const rows_ctx *c = user;
    if (ev->step >= c->T || ev->n != c->n) return 1;
    for (size_t r = 0; r < ev->batch; r++) {
        size_t b = ev->row0 + r;
        if (b >= c->B) continue;
        const float *src = c->v + (b * c->T + ev->step) * c->n;
        float *d = ev->data + r * ev->n;
        if (!c->idx) memcpy(d, src, c->n * sizeof *d);
        else
            for (size_t j = 0; j < c->nidx; j++) d[c->idx[j]] = src[c->idx[j]];
    }
    return 0;
}

/* ------------------------------------------------------------ helpers */

int soma_dissect_patch_site_parse(const soma_net *net, const char *text, char *site, size_t sitelen, size_t *size,
                                  size_t *idx, size_t cap, size_t *n, char *err, size_t errlen) {
    if (!net || !text || !site || !sitelen || !size || !n)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "patch site: nothing to read");
    *n = 0;
    const char *colon = strrchr(text, ':');
    size_t len = colon ? (size_t)(colon - text) : strlen(text);
    if (len == 0 || len >= sitelen || len >= 160)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "patch site '%s': expected SITE or SITE:I,J,... (e.g. hidden.spikes:3,5)", text);
    memcpy(site, text, len);
    site[len] = 0;
    size_t si;
    soma_site_info info;
    if (soma_net_site_find(net, site, &si) || soma_net_site(net, si, &info))
        return soma__errf(err, errlen, SOMA_STATUS_NOTFOUND, "patch site '%s': the net has no site '%s' (sites: <pop>.spikes, <pop>.<state>, <from>-><to>.out)",
                          text, site);
    *size = info.size;
    if (!colon) return 0;
    const char *p = colon + 1;
    for (;;) {
        char *end;
        errno = 0;
        if (*p < '0' || *p > '9')
            return soma__errf(err, errlen, SOMA_STATUS_INVALID, "patch site '%s': expected a neuron index after '%s:'", text, site);
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || v >= info.size)
            return soma__errf(err, errlen, SOMA_STATUS_INVALID, "patch site '%s': index %.*s; expected 0 to %zu", text,
                              (int)(end - p), p, info.size - 1);
        if (idx) {
            if (*n >= cap) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "patch site '%s': more than %zu neurons", text, cap);
            for (size_t j = 0; j < *n; j++)
                if (idx[j] == (size_t)v)
                    return soma__errf(err, errlen, SOMA_STATUS_INVALID, "patch site '%s': neuron %llu listed twice", text, v);
            idx[*n] = (size_t)v;
        }
        (*n)++;
        p = end;
        if (*p == ',') { p++; continue; }
        if (*p) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "patch site '%s': unexpected '%c'; expected ','", text, *p);
        return 0;
    }
}

/* The output population: the last population no projection leaves (the
 * trainer takes nets with exactly one). */
static int output_pop(const soma_net *net, size_t *pop, soma_pop_info *pi) {
    int found = 0;
    for (size_t q = 0; q < soma_net_pop_count(net); q++) {
        soma_pop_info info;
        if (soma_net_pop_info(net, q, &info) || strcmp(info.model, "input") == 0) continue;
        int leaves = 0;
        for (size_t j = 0; j < soma_net_proj_count(net); j++) {
            size_t a, b;
            int bias;
            if (soma_net_proj_info(net, j, &a, &b, &bias) == 0 && a == q && b != q) leaves = 1;
        }
        if (!leaves) *pop = q, *pi = info, found = 1;
    }
    return found ? 0 : SOMA_STATUS_NOTFOUND;
}

/* Forward samples idx[0..B) with the hook set installed, output sums into
 * oc->sum [B][C] (zeroed here), predictions into pred. */
static int run_batch(const soma_dissect_ctx *x, const size_t *idx, size_t B, float *xb, out_ctx *oc, uint8_t *pred,
                     char *err, size_t errlen) {
    int tc, st = soma_encode(x->d, x->ds, idx, B, soma_train_options(x->tr)->seed, SOMA_EVAL_STREAM, xb, &tc);
    if (st) return soma__errf(err, errlen, st, "dissect patch: cannot encode sample %zu", idx[0]);
    memset(oc->sum, 0, B * oc->n * sizeof *oc->sum);
    oc->B = B;
    if ((st = soma_train_predict(x->tr, xb, tc, B, pred)))
        return soma__errf(err, errlen, st, "dissect patch: forward pass: %s", soma_train_errmsg(x->tr));
    return 0;
}

void soma_dissect_patch_free(soma_dissect_patch *p) {
    if (!p) return;
    free(p->source_each), free(p->pred_source);
    free(p->neurons), free(p->target), free(p->label), free(p->pred_clean), free(p->pred_patched);
    free(p->clean), free(p->patched), free(p->source_out), free(p->effect);
    free(p);
}

/* Install hooks (site, kind, fn, user)... plus the output READ hook. */
static int install(const soma_dissect_ctx *x, const char *site, int kind, soma_hook_fn fn, void *user,
                   soma_hook_fn watch, void *watch_user, const char *out_site, out_ctx *oc, char *err, size_t errlen) {
    soma_hooks *h = NULL;
    int st = soma_hooks_create(&h);
    if (st) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect patch: out of memory");
    if (site && (st = soma_hooks_add(h, site, kind, fn, user))) soma__errf(err, errlen, st, "dissect patch: cannot add a hook on %s", site);
    else if (watch && (st = soma_hooks_add(h, site, SOMA_HOOK_READ, watch, watch_user)))
        soma__errf(err, errlen, st, "dissect patch: cannot add the watch hook on %s", site);
    else if ((st = soma_hooks_add(h, out_site, SOMA_HOOK_READ, out_cb, oc)))
        soma__errf(err, errlen, st, "dissect patch: cannot add a hook on %s", out_site);
    else if ((st = soma_train_set_hooks(x->tr, h))) soma__errf(err, errlen, st, "dissect patch: %s", soma_train_errmsg(x->tr));
    soma_hooks_free(h);
    return st;
}

/* --from-model: per batch of targets, encode once (x's encoding), run
 * from recording the site (its outputs: the sources'), x clean, and x with
 * the site overridden by from's values of the same rows. */
static int from_passes(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_patch_opts *po,
                       soma_dissect_patch *p, size_t T, size_t B, const char *out_site, char *err, size_t errlen) {
    const soma_dissect_ctx *y = po->from;
    size_t N = p->n, C = p->outputs, n = p->site_size;
    float *v = malloc(B * T * n * sizeof *v), *xb = malloc(soma_encode_size(x->d, x->ds, B) * sizeof *xb);
    double *osum = malloc(B * C * sizeof *osum);
    uint8_t *pred = malloc(B);
    int st = 0;
    if (!v || !xb || !osum || !pred) {
        st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect patch: out of memory");
        goto done;
    }
    /* from's output population: the same size, its own name */
    size_t opop;
    soma_pop_info opi = {0};
    char out2[160];
    if (output_pop(y->net, &opop, &opi) || opi.size != C) {
        st = soma__errf(err, errlen, SOMA_STATUS_INVALID, "--from-model: its output population has %zu neurons, the model patched's '%s' %zu; expected the same",
                        opi.size, p->output, C);
        goto done;
    }
    snprintf(out2, sizeof out2, "%s.spikes", opi.name);
    out_ctx oc = {osum, B, C};
    rows_ctx rc = {v, B, T, n, p->all ? NULL : p->neurons, p->nneurons};
    uint64_t seed = soma_train_options(x->tr)->seed;
    for (size_t b0 = 0; b0 < N; b0 += B) {
        size_t Bb = b0 + B > N ? N - b0 : B;
        int tc;
        if ((st = soma_encode(x->d, x->ds, p->target + b0, Bb, seed, SOMA_EVAL_STREAM, xb, &tc))) {
            st = soma__errf(err, errlen, st, "dissect patch: cannot encode sample %zu", p->target[b0]);
            goto done;
        }
        oc.B = rc.B = Bb;
        for (int pass = 0; pass < 3; pass++) { /* from (recorded), clean, patched */
            const soma_dissect_ctx *cx = pass ? x : y;
            st = pass == 0   ? install(y, p->site, SOMA_HOOK_READ, rows_rec_cb, &rc, NULL, NULL, out2, &oc, err, errlen)
                 : pass == 1 ? install(x, NULL, 0, NULL, NULL, NULL, NULL, out_site, &oc, err, errlen)
                             : install(x, p->site, SOMA_HOOK_OVERRIDE, rows_over_cb, &rc, po->watch, po->watch_user, out_site,
                                       &oc, err, errlen);
            if (st) goto done;
            memset(osum, 0, Bb * C * sizeof *osum);
            if ((st = soma_train_predict(cx->tr, xb, tc, Bb, pred))) {
                st = soma__errf(err, errlen, st, "dissect patch: %s forward pass: %s", pass ? "model" : "--from-model",
                                soma_train_errmsg(cx->tr));
                goto done;
            }
            double *res = pass == 0 ? p->source_each : pass == 1 ? p->clean : p->patched;
            uint8_t *pr = pass == 0 ? p->pred_source : pass == 1 ? p->pred_clean : p->pred_patched;
            memcpy(res + b0 * C, osum, Bb * C * sizeof *osum);
            memcpy(pr + b0, pred, Bb);
        }
        if (o && o->progress && o->progress(o->user, "patched", b0 + Bb, N)) {
            st = soma__errf(err, errlen, SOMA_STATUS_CANCELLED, "dissect patch: cancelled after %zu of %zu samples", b0 + Bb, N);
            goto done;
        }
    }
done:
    soma_train_set_hooks(y->tr, NULL);
    free(v), free(xb), free(osum), free(pred);
    return st;
}

/* ------------------------------------------------------------ the run */

int soma_dissect_patch_run(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_patch_opts *po,
                           soma_dissect_patch **out, char *err, size_t errlen) {
    if (!out) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect patch: no output pointer");
    *out = NULL;
    if (!x || !x->tr || !x->net || !x->d || !x->ds || !po || !po->site)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect patch: needs a trainer, its net, data options, a data set and a site");
    const soma_dataset *ds = x->ds;
    int st0;
    if (ds->n == 0) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect patch: the data set is empty");
    if (x->d->steps < 1) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect patch: steps = %d; expected at least 1", x->d->steps);
    if (po->from && (st0 = soma__dissect_two_check(x, po->from, 0, "--from-model", err, errlen))) return st0;
    if (!po->from && po->source >= ds->n)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect patch: source sample %zu; the data set has %zu (0 to %zu)",
                          po->source, ds->n, ds->n - 1);
    if (po->cls >= 0 && (size_t)po->cls >= ds->classes)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect patch: class %d; expected 0 to %zu", po->cls, ds->classes - 1);
    size_t T = (size_t)x->d->steps, B = o && o->batch ? o->batch : 256;
    size_t lim = o && o->limit && o->limit < ds->n ? o->limit : ds->n;
    soma_dissect_patch *p = calloc(1, sizeof *p);
    if (!p) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect patch: out of memory");
    int st = 0;
    float *src = NULL, *xb = NULL;
    size_t *idx = NULL;
    uint8_t *pred = NULL;
    double *osum = NULL;
    size_t cap = 0;
    {
        char tmp[160];
        size_t size;
        /* a first pass for the site's size, then the list */
        if ((st = soma_dissect_patch_site_parse(x->net, po->site, tmp, sizeof tmp, &size, NULL, 0, &cap, err, errlen)))
            goto fail;
        p->neurons = malloc(size * sizeof *p->neurons);
        if (!p->neurons) goto nomem;
        if ((st = soma_dissect_patch_site_parse(x->net, po->site, p->site, sizeof p->site, &p->site_size, p->neurons, size,
                                                &p->nneurons, err, errlen)))
            goto fail;
        if (po->from) { /* the site in the second model, the same size */
            size_t size2, cnt2;
            if ((st = soma_dissect_patch_site_parse(po->from->net, po->site, tmp, sizeof tmp, &size2, NULL, 0, &cnt2, err, errlen))) {
                char why[512];
                snprintf(why, sizeof why, "%s", err ? err : "");
                st = soma__errf(err, errlen, st, "--from-model: %s", why);
                goto fail;
            }
            if (size2 != p->site_size) {
                st = soma__errf(err, errlen, SOMA_STATUS_INVALID, "--from-model: site '%s' has %zu values there, %zu in the model patched; expected the same size",
                                p->site, size2, p->site_size);
                goto fail;
            }
        }
        p->all = p->nneurons == 0;
        if (p->all) {
            for (size_t i = 0; i < size; i++) p->neurons[i] = i;
            p->nneurons = size;
        }
    }
    size_t opop;
    soma_pop_info opi = {0};
    if (output_pop(x->net, &opop, &opi)) {
        st = soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect patch: the net has no output population");
        goto fail;
    }
    char out_site[160];
    snprintf(out_site, sizeof out_site, "%s.spikes", opi.name);
    snprintf(p->output, sizeof p->output, "%s", opi.name);
    size_t C = p->outputs = opi.size, n = p->site_size;
    p->from_model = po->from != NULL;
    p->accuracy_source = NAN;
    if (po->from) snprintf(p->from_name, sizeof p->from_name, "%s", po->from_name ? po->from_name : "");
    else p->source = po->source, p->source_label = ds->y[po->source];
    p->cls = po->cls;
    /* the targets */
    for (size_t i = 0; i < lim; i++)
        if ((po->cls < 0 || ds->y[i] == (uint8_t)po->cls) && (!po->samples || p->n < po->samples)) p->n++;
    if (!p->n) {
        st = soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect patch: no target sample (class %d among the first %zu)", po->cls, lim);
        goto fail;
    }
    size_t N = p->n;
    p->target = malloc(N * sizeof *p->target), p->label = malloc(N), p->pred_clean = malloc(N), p->pred_patched = malloc(N);
    p->clean = malloc(N * C * sizeof *p->clean), p->patched = malloc(N * C * sizeof *p->patched);
    p->source_out = calloc(C, sizeof *p->source_out), p->effect = malloc(N * sizeof *p->effect);
    src = calloc(T * n, sizeof *src);
    xb = malloc(soma_encode_size(x->d, ds, B) * sizeof *xb);
    idx = malloc(B * sizeof *idx), pred = malloc(B), osum = malloc(B * C * sizeof *osum);
    if (!p->target || !p->label || !p->pred_clean || !p->pred_patched || !p->clean || !p->patched || !p->source_out ||
        !p->effect || !src || !xb || !idx || !pred || !osum)
        goto nomem;
    for (size_t i = 0, m = 0; i < lim && m < N; i++)
        if (po->cls < 0 || ds->y[i] == (uint8_t)po->cls) p->target[m] = i, p->label[m] = ds->y[i], m++;

    if (po->from) {
        p->source_each = malloc(N * C * sizeof *p->source_each), p->pred_source = malloc(N);
        if (!p->source_each || !p->pred_source) goto nomem;
        if ((st = from_passes(x, o, po, p, T, B, out_site, err, errlen))) goto fail;
        size_t right = 0;
        for (size_t i = 0; i < N; i++) right += p->pred_source[i] == p->label[i];
        p->accuracy_source = (double)right / (double)N;
        goto effects;
    }
    /* 1. the source: record the site at every step */
    out_ctx oc = {osum, 1, C};
    rec_ctx rc = {src, T, n};
    if ((st = install(x, p->site, SOMA_HOOK_READ, rec_cb, &rc, NULL, NULL, out_site, &oc, err, errlen))) goto fail;
    idx[0] = po->source;
    if ((st = run_batch(x, idx, 1, xb, &oc, pred, err, errlen))) goto fail;
    memcpy(p->source_out, osum, C * sizeof *osum);
    p->source_pred = pred[0];
    /* 2. clean and 3. patched passes over the targets */
    over_ctx ov = {src, T, n, p->all ? NULL : p->neurons, p->nneurons};
    for (int pass = 0; pass < 2; pass++) {
        if ((st = pass ? install(x, p->site, SOMA_HOOK_OVERRIDE, over_cb, &ov, po->watch, po->watch_user, out_site, &oc, err, errlen)
                       : install(x, NULL, 0, NULL, NULL, NULL, NULL, out_site, &oc, err, errlen)))
            goto fail;
        double *res = pass ? p->patched : p->clean;
        uint8_t *pr = pass ? p->pred_patched : p->pred_clean;
        for (size_t b0 = 0; b0 < N; b0 += B) {
            size_t Bb = b0 + B > N ? N - b0 : B;
            memcpy(idx, p->target + b0, Bb * sizeof *idx);
            if ((st = run_batch(x, idx, Bb, xb, &oc, pred, err, errlen))) goto fail;
            memcpy(res + b0 * C, osum, Bb * C * sizeof *osum);
            memcpy(pr + b0, pred, Bb);
            if (o && o->progress && o->progress(o->user, pass ? "patched" : "clean", b0 + Bb, N)) {
                st = soma__errf(err, errlen, SOMA_STATUS_CANCELLED, "dissect patch: cancelled after %zu of %zu samples", b0 + Bb, N);
                goto fail;
            }
        }
    }
effects:
    soma_train_set_hooks(x->tr, NULL);
    /* 4. the effects (with --from-model each target's own source) */
    double esum = 0;
    size_t ne = 0;
    for (size_t i = 0; i < N; i++) {
        const double *c = p->clean + i * C, *q = p->patched + i * C, *s = p->from_model ? p->source_each + i * C : p->source_out;
        size_t spred = p->from_model ? p->pred_source[i] : p->source_pred;
        double num = 0, den = 0;
        int moved = 0;
        for (size_t k = 0; k < C; k++) num += (q[k] - c[k]) * (s[k] - c[k]), den += (s[k] - c[k]) * (s[k] - c[k]), moved |= q[k] != c[k];
        p->effect[i] = den > 0 ? num / den : NAN;
        if (den > 0) esum += p->effect[i], ne++;
        p->changed += moved;
        p->to_source += p->pred_patched[i] == spred;
        if (p->pred_clean[i] != spred) p->flip_candidates++, p->flips += p->pred_patched[i] == spred;
    }
    p->mean_effect = ne ? esum / (double)ne : NAN;
    p->flip_fraction = p->flip_candidates ? (double)p->flips / (double)p->flip_candidates : NAN;
    free(src), free(xb), free(idx), free(pred), free(osum);
    *out = p;
    return 0;
nomem:
    st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect patch: out of memory");
fail:
    soma_train_set_hooks(x->tr, NULL);
    free(src), free(xb), free(idx), free(pred), free(osum);
    soma_dissect_patch_free(p);
    return st;
}

/* ------------------------------------------------------------ files */

/* Write text atomically (core/file.h). */
static int write_atomic(const char *path, const char *text, size_t len, char *err, size_t errlen) {
    char tmp[4200];
    FILE *f = soma__tmp_open(path, "w", tmp, sizeof tmp, err, errlen);
    if (!f) return SOMA_STATUS_IO;
    fwrite(text, 1, len, f); /* a short write shows in ferror, checked by the commit */
    return soma__tmp_commit(f, 0, tmp, path, err, errlen);
}

static void jnum(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fputs("null", f);
}
static void jarr(FILE *f, const double *v, size_t n) {
    fputc('[', f);
    for (size_t i = 0; i < n; i++) fputs(i ? "," : "", f), jnum(f, v[i]);
    fputc(']', f);
}

int soma_dissect_write_patch(const soma_dissect_patch *p, const char *model, const char *dir, char *err, size_t errlen) {
    if (!p || !dir) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect patch: nothing to write");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect patch: out of memory");
    size_t C = p->outputs;
    fprintf(f, "{\n  \"command\": \"patch\",\n  \"model\": ");
    soma__json_str(f, model ? model : "");
    fprintf(f, ",\n  \"site\": ");
    soma__json_str(f, p->site);
    fprintf(f, ",\n  \"site_size\": %zu,\n  \"neurons\": ", p->site_size);
    if (p->all) fputs("\"all\"", f);
    else {
        fputc('[', f);
        for (size_t j = 0; j < p->nneurons; j++) fprintf(f, j ? ",%zu" : "%zu", p->neurons[j]);
        fputc(']', f);
    }
    fprintf(f, ",\n  \"output\": ");
    soma__json_str(f, p->output);
    fprintf(f, ",\n  \"output_value\": \"output spikes summed over the steps\",\n  \"source\": ");
    if (p->from_model) { /* each target is its own source, run in the other model */
        fprintf(f, "{\"model\": ");
        soma__json_str(f, p->from_name);
        fprintf(f, ", \"sample\": \"each target\", \"accuracy\": ");
        jnum(f, p->accuracy_source);
    } else {
        fprintf(f, "{\"sample\": %zu, \"label\": %zu, \"prediction\": %zu, \"output\": ", p->source, p->source_label,
                p->source_pred);
        jarr(f, p->source_out, C);
    }
    fprintf(f, "},\n  \"targets\": %zu,\n  \"class\": ", p->n);
    if (p->cls >= 0) fprintf(f, "%d", p->cls);
    else fputs("null", f);
    fprintf(f, ",\n  \"effect_formula\": \"(patched - clean) . (source - clean) / |source - clean|^2\",\n  \"mean_effect\": ");
    jnum(f, p->mean_effect);
    fprintf(f, ",\n  \"flip_fraction\": ");
    jnum(f, p->flip_fraction);
    fprintf(f, ",\n  \"flips\": %zu,\n  \"flip_candidates\": %zu,\n  \"to_source\": %zu,\n  \"changed\": %zu,\n  \"samples\": [",
            p->flips, p->flip_candidates, p->to_source, p->changed);
    for (size_t i = 0; i < p->n; i++) {
        fprintf(f, "%s\n    {\"sample\": %zu, \"label\": %u, \"pred_clean\": %u, \"pred_patched\": %u, \"effect\": ", i ? "," : "",
                p->target[i], p->label[i], p->pred_clean[i], p->pred_patched[i]);
        jnum(f, p->effect[i]);
        fprintf(f, ", \"clean\": "), jarr(f, p->clean + i * C, C);
        fprintf(f, ", \"patched\": "), jarr(f, p->patched + i * C, C);
        if (p->from_model) fprintf(f, ", \"pred_source\": %u, \"source\": ", p->pred_source[i]), jarr(f, p->source_each + i * C, C);
        fputc('}', f);
    }
    fprintf(f, "\n  ]\n}\n");
    int bad = ferror(f) != 0;
    bad |= fclose(f) != 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/result.json", dir);
    int st = bad ? soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect patch: out of memory") : write_atomic(path, buf, len, err, errlen);
    free(buf);
    if (st) return st;
    /* the figure: the effect per target (at most 60; NaN: no bar) */
    size_t m = p->n > 60 ? 60 : p->n;
    const char **names = malloc(m * sizeof *names);
    char(*lab)[24] = malloc(m * sizeof *lab);
    if (!names || !lab) {
        free(names), free(lab);
        return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect patch: out of memory");
    }
    for (size_t i = 0; i < m; i++) snprintf(lab[i], sizeof lab[i], "%zu", p->target[i]), names[i] = lab[i];
    char title[256];
    if (p->from_model)
        snprintf(title, sizeof title, "patching %s from the other model: effect per target (1 = its output, 0 = none)", p->site);
    else
        snprintf(title, sizeof title, "patching %s from sample %zu: effect per target (1 = source's output, 0 = none)", p->site,
                 p->source);
    const char *series[1] = {"effect"};
    snprintf(path, sizeof path, "%s/patch.png", dir);
    st = soma_plot_bars(path, title, "effect", m, names, 1, series, p->effect, err, errlen);
    free(names), free(lab);
    return st;
}
