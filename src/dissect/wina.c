/* wina.c — WINA scores of the hidden neurons for a class (`select --by
 * wina`; docs/dissect.md, "wina"):
 *
 *   score_i = mean over the class-cls samples and the T steps of |x_i| x ||W[:, i]||_2
 *
 * x_i the neuron's `<pop>.spikes` value (READ hooks during
 * soma_train_predict), W[:, i] its column in every dense projection leaving
 * the population (the norm taken over all of them together; a population's
 * recurrent weights are not counted). A neuron whose output weights are 0
 * scores 0 however active it is. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "soma.h"

typedef struct wina_pop {
    size_t N, T, rows;
    double *sum; /* [N]: sum of |x| over the samples and steps so far */
} wina_pop;

static int wina_read_cb(void *user, const soma_hook_event *ev) {
    wina_pop *w = user;
    for (size_t r = 0; r < ev->batch; r++) {
        if (ev->row0 + r >= w->rows || ev->step >= w->T) continue;
        const float *v = ev->data + r * ev->n;
        for (size_t i = 0; i < w->N; i++) w->sum[i] += fabsf(v[i]);
    }
    return 0;
}

int soma_dissect_wina_scores(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s, size_t cls,
                             double *score, char *err, size_t errlen) {
    if (!x || !x->tr || !x->net || !x->d || !x->ds || !s || !score)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect wina: no context, statistics or output");
    const soma_net *net = x->net;
    const soma_dataset *ds = x->ds;
    if (cls >= ds->classes) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect wina: class %zu; expected 0 to %zu", cls, ds->classes - 1);
    soma_dissect_info in;
    soma_dissect_stats_info(s, &in);
    size_t T = (size_t)x->d->steps, N = o && o->limit && o->limit < ds->n ? o->limit : ds->n, K = 0;
    for (size_t j = 0; j < N; j++) K += ds->y[j] == cls;
    if (!K) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect wina: no sample of class %zu in the first %zu", cls, N);
    size_t B = o && o->batch ? o->batch : 256;
    wina_pop *wp = calloc(in.pops, sizeof *wp);
    size_t *idx = malloc(B * sizeof *idx);
    uint8_t *pred = malloc(B);
    float *xb = malloc(soma_encode_size(x->d, ds, B) * sizeof *xb);
    soma_hooks *h = NULL;
    int st = 0;
    if (!wp || !idx || !pred || !xb || soma_hooks_create(&h)) {
        st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect wina: out of memory");
        goto done;
    }
    /* column norms first: they need no pass */
    size_t hoff = 0;
    for (size_t q = 0; q < in.pops && !st; q++) {
        soma_dissect_pop p;
        soma_dissect_stats_pop(s, q, &p);
        if (!p.hidden) continue;
        for (size_t i = 0; i < p.size; i++) score[hoff + i] = 0.0;
        for (size_t j = 0; j < soma_net_proj_count(net) && !st; j++) {
            size_t from, to;
            int bias;
            soma_conv cv;
            if (soma_net_proj_info(net, j, &from, &to, &bias) || from != p.pop || to == p.pop) continue;
            if (soma_net_proj_conv(net, j, &cv) == 1) {
                st = soma__errf(err, errlen, SOMA_STATUS_UNSUPPORTED, "dissect wina: %s feeds a convolution; WINA's column norms are "
                                "defined for dense projections only", p.name);
                break;
            }
            soma_pop_info ti;
            soma_net_pop_info(net, to, &ti);
            char name[200];
            snprintf(name, sizeof name, "%s->%s.weight", p.name, ti.name);
            soma_tensor t = {0};
            int found = 0;
            for (size_t k = 0; !found && soma_train_tensor(x->tr, k, &t) == 0; k++) found = !strcmp(t.name, name);
            if (!found || t.cols != p.size) {
                st = soma__errf(err, errlen, SOMA_STATUS_NOTFOUND, "dissect wina: no weight tensor %s of %zu columns", name, p.size);
                break;
            }
            for (size_t r = 0; r < t.rows; r++)
                for (size_t i = 0; i < p.size; i++) score[hoff + i] += (double)t.data[r * t.cols + i] * t.data[r * t.cols + i];
        }
        for (size_t i = 0; i < p.size; i++) score[hoff + i] = sqrt(score[hoff + i]);
        wp[q].N = p.size, wp[q].T = T;
        wp[q].sum = calloc(p.size, sizeof *wp[q].sum);
        if (!wp[q].sum) st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect wina: out of memory");
        char site[160];
        snprintf(site, sizeof site, "%s.spikes", p.name);
        if (!st && (st = soma_hooks_add(h, site, SOMA_HOOK_READ, wina_read_cb, &wp[q])))
            soma__errf(err, errlen, st, "dissect wina: cannot add a hook on %s", site);
        hoff += p.size;
    }
    if (st) goto done;
    if ((st = soma_train_set_hooks(x->tr, h))) {
        soma__errf(err, errlen, st, "dissect wina: %s", soma_train_errmsg(x->tr));
        goto done;
    }
    for (size_t next = 0, seen = 0; seen < K && !st;) {
        size_t Bb = 0;
        for (; next < N && Bb < B; next++)
            if (ds->y[next] == cls) idx[Bb++] = next;
        for (size_t q = 0; q < in.pops; q++) wp[q].rows = Bb;
        int tc;
        if ((st = soma_encode(x->d, ds, idx, Bb, soma_train_options(x->tr)->seed, SOMA_EVAL_STREAM, xb, &tc)))
            soma__errf(err, errlen, st, "dissect wina: cannot encode samples of class %zu", cls);
        else if ((st = soma_train_predict(x->tr, xb, tc, Bb, pred)))
            soma__errf(err, errlen, st, "dissect wina: forward pass: %s", soma_train_errmsg(x->tr));
        seen += Bb;
        if (!st && o && o->progress && o->progress(o->user, "wina", seen, K))
            st = soma__errf(err, errlen, SOMA_STATUS_CANCELLED, "dissect wina: cancelled after %zu of %zu samples", seen, K);
    }
    soma_train_set_hooks(x->tr, NULL);
    hoff = 0;
    for (size_t q = 0; q < in.pops && !st; q++) {
        if (!wp[q].sum) continue;
        for (size_t i = 0; i < wp[q].N; i++) score[hoff + i] *= wp[q].sum[i] / ((double)K * (double)T);
        hoff += wp[q].N;
    }
done:
    soma_hooks_free(h);
    for (size_t q = 0; wp && q < in.pops; q++) free(wp[q].sum);
    free(wp), free(idx), free(pred), free(xb);
    return st;
}
