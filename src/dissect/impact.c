/* impact.c — each candidate neuron's measured effect on a class when it is
 * ablated alone (`select --by impact`; docs/dissect.md, "impact"):
 *
 *   impact_i = mean over the class-cls samples of L(with i zeroed) - mean of L (clean)
 *
 * L the trainer's loss of the sample with its label cls, as soma_train_grad
 * returns it (batch mean; rows weighted by their batch's size), a MASK hook
 * on the neuron's `<pop>.spikes` zeroing it at every step. The loss, not
 * class accuracy: accuracy over a class's few hundred samples moves in
 * steps of 1/K and most single neurons change no prediction, so most
 * candidates would tie at 0; the loss is smooth and ranks them all.
 *
 * Each candidate costs one pass over the class's samples, so only the top
 * M hidden neurons by attribution (soma_dissect_attribution, the cheap
 * first-order estimate of the same quantity) are measured; the rest score
 * -inf and are never selected. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "soma.h"

void soma_dissect_impact_opts_default(soma_dissect_impact_opts *io) {
    memset(io, 0, sizeof *io);
    io->candidates_pct = 5.0;
}

typedef struct imp_mask {
    size_t idx; /* the neuron zeroed */
} imp_mask;

static int imp_mask_cb(void *user, const soma_hook_event *ev) {
    const imp_mask *m = user;
    for (size_t r = 0; r < ev->batch; r++) ev->data[r * ev->n + m->idx] = 0.0f;
    return 0;
}

/* Mean loss (label cls) over idx[0..K) in batches of B, with the trainer's hooks as set. */
static int class_loss(const soma_dissect_ctx *x, const size_t *idx, size_t K, size_t B, float *xb, const uint8_t *y,
                      double *out, char *err, size_t errlen) {
    double sum = 0;
    for (size_t k0 = 0; k0 < K; k0 += B) {
        size_t Bb = k0 + B > K ? K - k0 : B;
        int tc, st;
        if ((st = soma_encode(x->d, x->ds, idx + k0, Bb, soma_train_options(x->tr)->seed, SOMA_EVAL_STREAM, xb, &tc)))
            return soma__errf(err, errlen, st, "dissect impact: cannot encode samples");
        double loss;
        if ((st = soma_train_grad(x->tr, xb, tc, y, Bb, &loss, NULL)))
            return soma__errf(err, errlen, st, "dissect impact: loss: %s", soma_train_errmsg(x->tr));
        sum += loss * (double)Bb;
    }
    *out = sum / (double)K;
    return 0;
}

int soma_dissect_impact_scores(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s, size_t cls,
                               const soma_dissect_impact_opts *io, double *score, soma_dissect_impact_result *res, char *err,
                               size_t errlen) {
    if (!x || !x->tr || !x->net || !x->d || !x->ds || !s || !score)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect impact: no context, statistics or output");
    const soma_dataset *ds = x->ds;
    if (cls >= ds->classes)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect impact: class %zu; expected 0 to %zu", cls, ds->classes - 1);
    soma_dissect_impact_opts def;
    soma_dissect_impact_opts_default(&def);
    if (!io) io = &def;
    if (!io->candidates && !(io->candidates_pct > 0 && io->candidates_pct <= 100))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect impact: candidates %g %%; expected a percentage in (0, 100] "
                          "(or a count)", io->candidates_pct);
    size_t H = soma_dissect_hidden_count(s);
    if (!H) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect impact: the net has no hidden population");
    size_t N = o && o->limit && o->limit < ds->n ? o->limit : ds->n, K = 0;
    size_t B = o && o->batch ? o->batch : 256, Bmax = soma_train_options(x->tr)->batch;
    if (Bmax && B > Bmax) B = Bmax; /* soma_train_grad takes at most the training batch */
    for (size_t j = 0; j < N; j++) K += ds->y[j] == cls;
    if (!K) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect impact: no sample of class %zu in the first %zu", cls, N);
    soma_dissect_neuron *cand = malloc(H * sizeof *cand);
    size_t *idx = malloc(K * sizeof *idx), M = 0;
    uint8_t *y = malloc(B);
    float *xb = malloc(soma_encode_size(x->d, ds, B) * sizeof *xb);
    double *attr = malloc(H * sizeof *attr);
    soma_hooks *h = NULL;
    int st = 0;
    if (!cand || !idx || !y || !xb || !attr) {
        st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect impact: out of memory");
        goto done;
    }
    for (size_t j = 0, k = 0; j < N; j++)
        if (ds->y[j] == cls) idx[k++] = j;
    memset(y, (int)cls, B);
    /* candidates: the top M by attribution */
    if ((st = soma_dissect_attribution(x, o, s, cls, attr, NULL, err, errlen))) goto done;
    if ((st = soma_dissect_select_score(s, attr, io->candidates, io->candidates_pct, 0, cand, NULL, H, &M, err, errlen))) goto done;
    double clean;
    soma_train_set_hooks(x->tr, NULL);
    if ((st = class_loss(x, idx, K, B, xb, y, &clean, err, errlen))) goto done;
    for (size_t j = 0; j < H; j++) score[j] = -INFINITY;
    /* the hidden layout: a candidate's position in score */
    soma_dissect_info in;
    soma_dissect_stats_info(s, &in);
    for (size_t c = 0; c < M && !st; c++) {
        size_t off = 0;
        const char *name = NULL;
        for (size_t q = 0; q < in.pops; q++) {
            soma_dissect_pop p;
            soma_dissect_stats_pop(s, q, &p);
            if (!p.hidden) continue;
            if (p.pop == cand[c].pop) {
                name = p.name;
                break;
            }
            off += p.size;
        }
        char site[160];
        snprintf(site, sizeof site, "%s.spikes", name ? name : "");
        imp_mask m = {cand[c].index};
        soma_hooks_free(h), h = NULL;
        if (soma_hooks_create(&h)) {
            st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect impact: out of memory");
            break;
        }
        if ((st = soma_hooks_add(h, site, SOMA_HOOK_MASK, imp_mask_cb, &m))) {
            soma__errf(err, errlen, st, "dissect impact: cannot add a hook on %s", site);
            break;
        }
        if ((st = soma_train_set_hooks(x->tr, h))) {
            soma__errf(err, errlen, st, "dissect impact: %s", soma_train_errmsg(x->tr));
            break;
        }
        double l;
        if ((st = class_loss(x, idx, K, B, xb, y, &l, err, errlen))) break;
        score[off + cand[c].index] = l - clean;
        if (o && o->progress && o->progress(o->user, "impact", c + 1, M))
            st = soma__errf(err, errlen, SOMA_STATUS_CANCELLED, "dissect impact: cancelled after %zu of %zu candidates", c + 1, M);
    }
    soma_train_set_hooks(x->tr, NULL);
    if (res && !st) res->samples = K, res->candidates = M, res->clean_loss = clean;
done:
    soma_hooks_free(h);
    free(cand), free(idx), free(y), free(xb), free(attr);
    return st;
}

int soma_dissect_impact_select(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s, size_t cls,
                               const soma_dissect_impact_opts *io, size_t top, double top_pct, int per_pop,
                               soma_dissect_neuron *out, double *val, size_t cap, size_t *n, char *err, size_t errlen) {
    if (!s || !out || !n) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect impact: no statistics or output");
    *n = 0;
    size_t H = soma_dissect_hidden_count(s);
    double *score = malloc((H ? H : 1) * sizeof *score), *v = malloc((H ? H : 1) * sizeof *v);
    soma_dissect_impact_result r = {0};
    int st = !score || !v ? soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect impact: out of memory")
                          : soma_dissect_impact_scores(x, o, s, cls, io, score, &r, err, errlen);
    if (!st) st = soma_dissect_select_score(s, score, top, top_pct, per_pop, out, v, cap, n, err, errlen);
    if (!st && *n && isinf(v[*n - 1]) && v[*n - 1] < 0) {
        st = soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect impact: %zu neurons asked for but only %zu candidates were "
                        "measured; raise the candidates (--candidates-pct)", *n, r.candidates);
        *n = 0;
    }
    if (!st && val) memcpy(val, v, *n * sizeof *v);
    free(score), free(v);
    return st;
}
