/* ig.c — integrated gradients of a target class through hooks (Captum's
 * LayerIntegratedGradients semantics; docs/dissect.md, "integrated
 * gradients").
 *
 * For a set of units (neurons of trainer sites, at every step t), a class
 * K and a sample with clean site values x (recorded by READ hooks on a
 * clean forward pass):
 *
 *   IG_u = sum_t (x_{t,u} - x') * (1/m) sum_{k=1..m} dF/dx_{t,u} at x' + a_k (x - x'),
 *   a_k = (k - 1/2) / m  (the midpoint Riemann rule)
 *
 * Only the set's values are moved along the path (an OVERRIDE hook writes
 * x' + a_k (x - x') over them at every step; the rest of the net computes
 * as usual); dF/dx comes from GRAD hooks on the same sites during
 * soma_train_grad; the GRAD hook then sets them to 0, so that no gradient
 * flows upstream through an overridden value (the trainer passes gradients
 * through overrides unchanged). One soma_train_grad call covers many (sample, a_k)
 * pairs: each row of its batch is one pair, the same encoded sample
 * repeated, so the row's override and gradient are its own.
 *
 * F is computed from the output population's values (READ hook on
 * `<out>.spikes`, or on its first state variable for the membrane losses)
 * the way the trainer's loss computes them (loss.c), with every label K:
 *   logprob  F = -L_K              (the model's own loss, no rate penalty)
 *   prob     F = exp(-L_K)         (softmax probability for ce_count and ce_last;
 *                                   for ce_rate / ce_mem the geometric mean over
 *                                   steps of the per-step probabilities)
 *   logit    F = sum_t S_out[t][K] (the count readout's logit; losses on output
 *                                   spikes only)
 * Gradients: soma_train_grad differentiates the batch-mean loss, so a row's
 * dL_r/dx is the batch size times the hook's value; prob multiplies it by
 * F_r (dP = P dlogP). For logit, a GRAD hook on `<out>.spikes` replaces the
 * loss gradient by d(-z_K)/dS = -onehot(K) at every step (the membrane
 * losses also send a gradient through the membrane, which no hook reaches:
 * logit is refused for them). A rate penalty would add its own gradient to
 * the hidden sites: IG refuses a trainer with one.
 *
 * Each pass checks the per-row losses it computed against the batch mean
 * soma_train_grad returned, so that F and the gradients are of one function. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "soma.h"

void soma_dissect_ig_opts_default(soma_dissect_ig_opts *io) {
    memset(io, 0, sizeof *io);
    io->steps = 64;
    io->target = SOMA_DISSECT_TARGET_PROB;
    io->baseline = 0.0f;
}

static const char *const target_names[] = {"prob", "logprob", "logit"};

int soma_dissect_target_parse(const char *text, int *target, char *err, size_t errlen) {
    for (int k = 0; text && target && k < 3; k++)
        if (!strcmp(text, target_names[k])) return *target = k, 0;
    return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--target '%s': expected prob, logprob or logit", text ? text : "");
}

const char *soma_dissect_target_name(int target) {
    return target >= 0 && target < 3 ? target_names[target] : "unknown";
}

/* ------------------------------------------------------------- the run */

typedef struct ig_site {
    char name[160];
    size_t size;   /* values per row of the site */
    size_t nu;     /* units of the set at this site */
    size_t *idx;   /* [nu]: their indices in the site */
    size_t *unit;  /* [nu]: their positions in the caller's set */
} ig_site;

enum { PASS_CLEAN, PASS_BASE, PASS_ALPHA };

typedef struct ig_run {
    size_t T, C, U, m, K;     /* steps, output neurons, units, path steps, class */
    int pass;
    float base;
    size_t rows;              /* rows of this pass's batch */
    const size_t *slot;       /* [rows]: the chunk's sample slot of each row */
    const float *alpha;       /* [rows] (PASS_ALPHA) */
    float *xc;                /* [slots][T][U]: clean values */
    float *g;                 /* [rows][T][U]: the GRAD hooks' values */
    float *out;               /* [rows][T][C]: the output's values */
    int logit;                /* GRAD on the output writes -onehot(K) */
} ig_run;

typedef struct ig_hook {
    ig_run *r;
    const ig_site *s;
} ig_hook;

static int site_fwd_cb(void *user, const soma_hook_event *ev) {
    const ig_hook *h = user;
    ig_run *r = h->r;
    const ig_site *s = h->s;
    size_t T = r->T, U = r->U, t = ev->step;
    if (t >= T) return 0;
    for (size_t q = 0; q < ev->batch; q++) {
        size_t row = ev->row0 + q;
        if (row >= r->rows) continue;
        float *v = ev->data + q * ev->n;
        float *xc = r->xc + (r->slot[row] * T + t) * U;
        if (r->pass == PASS_CLEAN)
            for (size_t j = 0; j < s->nu; j++) xc[s->unit[j]] = v[s->idx[j]];
        else if (r->pass == PASS_BASE)
            for (size_t j = 0; j < s->nu; j++) v[s->idx[j]] = r->base;
        else {
            float a = r->alpha[row];
            for (size_t j = 0; j < s->nu; j++) v[s->idx[j]] = r->base + a * (xc[s->unit[j]] - r->base);
        }
    }
    return 0;
}

static int site_grad_cb(void *user, const soma_hook_event *ev) {
    const ig_hook *h = user;
    ig_run *r = h->r;
    const ig_site *s = h->s;
    size_t T = r->T, U = r->U, t = ev->step;
    if (t >= T) return 0;
    for (size_t q = 0; q < ev->batch; q++) {
        size_t row = ev->row0 + q;
        if (row >= r->rows) continue;
        float *g = ev->data + q * ev->n;
        float *d = r->g + (row * T + t) * U;
        /* The overridden values are constants of the path, not functions
         * of what lies upstream; the trainer passes gradients through an
         * override unchanged, so they are cut here: a set spanning layers
         * would otherwise count an upstream unit's effect twice (through
         * its own value and through the downstream unit's). */
        for (size_t j = 0; j < s->nu; j++) d[s->unit[j]] = g[s->idx[j]], g[s->idx[j]] = 0.0f;
    }
    return 0;
}

static int out_read_cb(void *user, const soma_hook_event *ev) {
    ig_run *r = user;
    if (ev->step >= r->T) return 0;
    for (size_t q = 0; q < ev->batch; q++) {
        size_t row = ev->row0 + q;
        if (row >= r->rows) continue;
        memcpy(r->out + (row * r->T + ev->step) * r->C, ev->data + q * ev->n, r->C * sizeof(float));
    }
    return 0;
}

static int out_grad_cb(void *user, const soma_hook_event *ev) {
    ig_run *r = user;
    for (size_t q = 0; q < ev->batch; q++)
        for (size_t c = 0; c < ev->n; c++) ev->data[q * ev->n + c] = c == r->K ? -1.0f : 0.0f;
    return 0;
}

/* Cross-entropy of z[C] with label y, in double (loss.c's ce_row). */
static double ce(const double *z, size_t C, size_t y) {
    double mx = z[0], sum = 0;
    for (size_t c = 1; c < C; c++) mx = z[c] > mx ? z[c] : mx;
    for (size_t c = 0; c < C; c++) sum += exp(z[c] - mx);
    return mx + log(sum) - z[y];
}

/* The trainer's loss of one row with label K from its output values o[T][C]. */
static double row_loss(const soma_train_opts *to, const float *o, size_t T, size_t C, size_t K) {
    double z[SOMA_DISSECT_MAX_CLASSES * 4], L = 0;
    if (C == 0 || T == 0) return NAN;
    z[0] = 0;
    switch (to->loss) {
    case SOMA_LOSS_CE_RATE:
    case SOMA_LOSS_CE_MEM:
        for (size_t t = 0; t < T; t++) {
            for (size_t c = 0; c < C; c++) z[c] = o[t * C + c];
            L += ce(z, C, K) / (double)T;
        }
        return L;
    case SOMA_LOSS_CE_LAST:
        for (size_t c = 0; c < C; c++) z[c] = o[(T - 1) * C + c];
        return ce(z, C, K);
    case SOMA_LOSS_CE_COUNT:
    case SOMA_LOSS_MSE_COUNT: {
        float cnt[SOMA_DISSECT_MAX_CLASSES * 4];
        for (size_t c = 0; c < C; c++) cnt[c] = 0.0f;
        for (size_t t = 0; t < T; t++)
            for (size_t c = 0; c < C; c++) cnt[c] += o[t * C + c]; /* float sums, as loss.c */
        if (to->loss == SOMA_LOSS_CE_COUNT) {
            for (size_t c = 0; c < C; c++) z[c] = cnt[c];
            return ce(z, C, K);
        }
        float on = floorf((float)T * to->correct_rate), off = floorf((float)T * to->incorrect_rate);
        for (size_t c = 0; c < C; c++) {
            double e = (double)cnt[c] - (c == K ? on : off);
            L += e * e;
        }
        return L / (double)C;
    }
    default:
        return NAN;
    }
}

static double row_f(const soma_train_opts *to, int target, const float *o, size_t T, size_t C, size_t K) {
    if (target == SOMA_DISSECT_TARGET_LOGIT) {
        double z = 0;
        for (size_t t = 0; t < T; t++) z += o[t * C + K];
        return z;
    }
    double L = row_loss(to, o, T, C, K);
    return target == SOMA_DISSECT_TARGET_PROB ? exp(-L) : -L;
}

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

/* Units: (site name, index) pairs; a site may appear many times. */
typedef struct ig_units {
    const char *const *site; /* [n] */
    const size_t *index;     /* [n] */
    size_t n;
} ig_units;

static void sites_free(ig_site *s, size_t ns) {
    for (size_t k = 0; s && k < ns; k++) free(s[k].idx), free(s[k].unit);
    free(s);
}

/* The core: attr[u] = mean over class-cls samples of IG_u; res as the header says. */
static int ig_core(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_ig_opts *io, size_t cls,
                   const ig_units *un, double *attr, soma_dissect_ig_result *res, char *err, size_t errlen) {
    if (!x || !x->tr || !x->net || !x->d || !x->ds)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "integrated gradients: the context needs a trainer, its net, its data options and a data set");
    if (!un->n || !attr) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "integrated gradients: no neuron to attribute");
    soma_dissect_ig_opts def;
    soma_dissect_ig_opts_default(&def);
    if (!io) io = &def;
    const soma_net *net = x->net;
    const soma_dataset *ds = x->ds;
    const soma_train_opts *to = soma_train_options(x->tr);
    size_t m = io->steps ? io->steps : 64, T = (size_t)x->d->steps, U = un->n;
    int target = io->target;
    if (target < 0 || target > SOMA_DISSECT_TARGET_LOGIT)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "integrated gradients: target %d; expected prob, logprob or logit", target);
    if (m > 100000) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "integrated gradients: %zu steps; expected 1 to 100000", m);
    if (!isfinite(io->baseline)) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "integrated gradients: the baseline is not finite");
    if (cls >= ds->classes)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "integrated gradients: class %zu; expected 0 to %zu", cls, ds->classes - 1);
    if (to->rate_penalty != 0.0f)
        return soma__errf(err, errlen, SOMA_STATUS_UNSUPPORTED, "integrated gradients: the trainer has a rate penalty (%g), whose gradient "
                          "would enter dF/dx; create the dissect trainer with rate_penalty = 0", (double)to->rate_penalty);
    /* the output population: the one non-input population no projection leaves */
    size_t P = soma_net_pop_count(net), outp = (size_t)-1, nout = 0;
    for (size_t q = 0; q < P; q++)
        if (!is_input(net, q) && !has_out_proj(net, q)) outp = q, nout++;
    if (nout != 1) return soma__errf(err, errlen, SOMA_STATUS_UNSUPPORTED, "integrated gradients: %zu output populations; expected 1", nout);
    soma_pop_info opi;
    soma_net_pop_info(net, outp, &opi);
    size_t C = opi.size;
    if (C > 4 * SOMA_DISSECT_MAX_CLASSES || cls >= C)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "integrated gradients: class %zu of an output of %zu neurons", cls, C);
    int mem = to->loss == SOMA_LOSS_CE_MEM || to->loss == SOMA_LOSS_CE_LAST;
    if (mem && target == SOMA_DISSECT_TARGET_LOGIT)
        return soma__errf(err, errlen, SOMA_STATUS_UNSUPPORTED, "integrated gradients: target logit needs a loss on output spikes "
                          "(ce_rate, ce_count, mse_count); this model's loss %s reads the membrane, which no gradient hook "
                          "reaches: use target prob or logprob", soma_loss_name(to->loss));
    char outsite[160];
    snprintf(outsite, sizeof outsite, "%s.spikes", opi.name);
    if (mem) { /* the output's first state variable (its membrane) */
        int found = 0;
        for (size_t i = 0; i < soma_net_site_count(net) && !found; i++) {
            soma_site_info si;
            if (soma_net_site(net, i, &si) == 0 && si.kind == SOMA_SITE_STATE && si.pop == outp && si.state == 0)
                snprintf(outsite, sizeof outsite, "%s", si.name), found = 1;
        }
        if (!found) return soma__errf(err, errlen, SOMA_STATUS_UNSUPPORTED, "integrated gradients: the output %s has no membrane site", opi.name);
    }
    /* group the units by site */
    ig_site *sites = calloc(U, sizeof *sites);
    size_t ns = 0;
    if (!sites) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "integrated gradients: out of memory");
    int st = 0;
    for (size_t u = 0; u < U && !st; u++) {
        size_t k = 0;
        while (k < ns && strcmp(sites[k].name, un->site[u])) k++;
        if (k == ns) {
            size_t sid;
            soma_site_info si;
            if (soma_net_site_find(net, un->site[u], &sid) || soma_net_site(net, sid, &si)) {
                st = soma__errf(err, errlen, SOMA_STATUS_NOTFOUND, "integrated gradients: no site '%s' in the net", un->site[u]);
                break;
            }
            if (si.kind == SOMA_SITE_STATE || si.kind == SOMA_SITE_PROJ_IN ||
                (si.kind == SOMA_SITE_SPIKES && (is_input(net, si.pop) || si.pop == outp))) {
                st = soma__errf(err, errlen, SOMA_STATUS_UNSUPPORTED, "integrated gradients: site '%s'; expected a hidden population's "
                                "<pop>.spikes or a projection's <from>-><to>.out (gradient hooks reach those)", un->site[u]);
                break;
            }
            snprintf(sites[k].name, sizeof sites[k].name, "%s", si.name);
            sites[k].size = si.size;
            sites[k].idx = malloc(U * sizeof *sites[k].idx);
            sites[k].unit = malloc(U * sizeof *sites[k].unit);
            ns++;
            if (!sites[k].idx || !sites[k].unit) st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "integrated gradients: out of memory");
        }
        if (st) break;
        if (un->index[u] >= sites[k].size) {
            st = soma__errf(err, errlen, SOMA_STATUS_INVALID, "integrated gradients: neuron %zu of site '%s'; expected 0 to %zu",
                            un->index[u], sites[k].name, sites[k].size - 1);
            break;
        }
        for (size_t j = 0; j < sites[k].nu; j++)
            if (sites[k].idx[j] == un->index[u]) {
                st = soma__errf(err, errlen, SOMA_STATUS_INVALID, "integrated gradients: %s[%zu] is in the set twice", sites[k].name, un->index[u]);
                break;
            }
        if (st) break;
        sites[k].idx[sites[k].nu] = un->index[u], sites[k].unit[sites[k].nu] = u, sites[k].nu++;
    }
    if (st) {
        sites_free(sites, ns);
        return st;
    }
    /* samples of class cls */
    size_t N = o && o->limit && o->limit < ds->n ? o->limit : ds->n, S = 0;
    for (size_t j = 0; j < N; j++) S += ds->y[j] == cls;
    if (S == 0) {
        sites_free(sites, ns);
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "integrated gradients: no sample of class %zu in the first %zu", cls, N);
    }
    size_t R = to->batch; /* rows per soma_train_grad call */
    if (o && o->batch && o->batch < R) R = o->batch;
    if (R < 1) R = 1;
    size_t slots = R / m + 2; /* samples a chunk of R rows can touch */
    ig_run run = {T, C, U, m, cls, PASS_CLEAN, io->baseline, 0, NULL, NULL, NULL, NULL, NULL, target == SOMA_DISSECT_TARGET_LOGIT};
    size_t *smp = malloc(S * sizeof *smp), *slot = malloc(R * sizeof *slot), *idx = malloc(R * sizeof *idx);
    float *alpha = malloc(R * sizeof *alpha);
    run.xc = malloc(slots * T * U * sizeof *run.xc);
    run.g = malloc(R * T * U * sizeof *run.g);
    run.out = malloc(R * T * C * sizeof *run.out);
    double *gsum = calloc(slots * T * U, sizeof *gsum), *fx = calloc(slots, sizeof *fx), *fb = calloc(slots, sizeof *fb);
    double *acc = calloc(U, sizeof *acc);
    float *xb = malloc(soma_encode_size(x->d, ds, R) * sizeof *xb);
    uint8_t *y = malloc(R);
    ig_hook *hk = calloc(ns, sizeof *hk);
    soma_hooks *hc = NULL, *ha = NULL; /* forward-only passes; the path pass */
    if (!smp || !slot || !idx || !alpha || !run.xc || !run.g || !run.out || !gsum || !fx || !fb || !acc || !xb || !y || !hk ||
        soma_hooks_create(&hc) || soma_hooks_create(&ha)) {
        st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "integrated gradients: out of memory");
        goto done;
    }
    for (size_t j = 0, k = 0; j < N; j++)
        if (ds->y[j] == cls) smp[k++] = j;
    run.slot = slot, run.alpha = alpha;
    memset(y, (int)cls, R);
    for (size_t k = 0; k < ns && !st; k++) {
        hk[k].r = &run, hk[k].s = &sites[k];
        if ((st = soma_hooks_add(hc, sites[k].name, SOMA_HOOK_OVERRIDE, site_fwd_cb, &hk[k])) ||
            (st = soma_hooks_add(ha, sites[k].name, SOMA_HOOK_OVERRIDE, site_fwd_cb, &hk[k])) ||
            (st = soma_hooks_add(ha, sites[k].name, SOMA_HOOK_GRAD, site_grad_cb, &hk[k])))
            soma__errf(err, errlen, st, "integrated gradients: cannot add a hook on %s", sites[k].name);
    }
    if (!st && ((st = soma_hooks_add(hc, outsite, SOMA_HOOK_READ, out_read_cb, &run)) ||
                (st = soma_hooks_add(ha, outsite, SOMA_HOOK_READ, out_read_cb, &run)) ||
                (run.logit && (st = soma_hooks_add(ha, outsite, SOMA_HOOK_GRAD, out_grad_cb, &run)))))
        soma__errf(err, errlen, st, "integrated gradients: cannot add a hook on %s", outsite);
    if (st) goto done;
    double sum_fx = 0, sum_fb = 0, sum_gap = 0, sum_absd = 0;
    /* Chunks of whole samples where m <= R (R / m samples each), else one
     * sample over several calls: pairs p = s*m + k run in order. */
    size_t per = R >= m ? R / m : 1;
    for (size_t s0 = 0; s0 < S && !st; s0 += per) {
        size_t ncs = s0 + per > S ? S - s0 : per; /* samples of this chunk, slots 0..ncs */
        memset(gsum, 0, ncs * T * U * sizeof *gsum);
        /* clean and baseline passes: one row per sample */
        for (int pass = PASS_CLEAN; pass <= PASS_BASE && !st; pass++) {
            for (size_t j = 0; j < ncs; j++) idx[j] = smp[s0 + j], slot[j] = j;
            run.pass = pass, run.rows = ncs;
            int tc;
            if ((st = soma_train_set_hooks(x->tr, hc))) {
                soma__errf(err, errlen, st, "integrated gradients: %s", soma_train_errmsg(x->tr));
                break;
            }
            if ((st = soma_encode(x->d, ds, idx, ncs, to->seed, SOMA_EVAL_STREAM, xb, &tc))) {
                soma__errf(err, errlen, st, "integrated gradients: cannot encode samples of class %zu", cls);
                break;
            }
            if ((st = soma_train_predict(x->tr, xb, tc, ncs, y)))
                soma__errf(err, errlen, st, "integrated gradients: forward pass: %s", soma_train_errmsg(x->tr));
            memset(y, (int)cls, R); /* predict wrote its predictions there */
            for (size_t j = 0; j < ncs && !st; j++)
                (pass == PASS_CLEAN ? fx : fb)[j] = row_f(to, target, run.out + j * T * C, T, C, cls);
        }
        if (st) break;
        if ((st = soma_train_set_hooks(x->tr, ha))) {
            soma__errf(err, errlen, st, "integrated gradients: %s", soma_train_errmsg(x->tr));
            break;
        }
        run.pass = PASS_ALPHA;
        for (size_t p0 = 0; p0 < ncs * m && !st; p0 += R) {
            size_t rows = p0 + R > ncs * m ? ncs * m - p0 : R;
            for (size_t r = 0; r < rows; r++) {
                size_t p = p0 + r, j = p / m, k = p % m;
                slot[r] = j, idx[r] = smp[s0 + j], alpha[r] = (float)(((double)k + 0.5) / (double)m);
            }
            run.rows = rows;
            memset(run.g, 0, rows * T * U * sizeof *run.g);
            int tc;
            double loss;
            if ((st = soma_encode(x->d, ds, idx, rows, to->seed, SOMA_EVAL_STREAM, xb, &tc))) {
                soma__errf(err, errlen, st, "integrated gradients: cannot encode samples of class %zu", cls);
                break;
            }
            if ((st = soma_train_grad(x->tr, xb, tc, y, rows, &loss, NULL))) {
                soma__errf(err, errlen, st, "integrated gradients: gradient pass: %s", soma_train_errmsg(x->tr));
                break;
            }
            double lsum = 0;
            for (size_t r = 0; r < rows; r++) {
                const float *orow = run.out + r * T * C;
                double Lr = row_loss(to, orow, T, C, cls);
                lsum += Lr;
                /* dF/dx of this row from the hook's gradient of the batch-mean loss */
                double f = target == SOMA_DISSECT_TARGET_LOGIT ? -1.0 : target == SOMA_DISSECT_TARGET_LOGPROB ? -(double)rows : -(double)rows * exp(-Lr);
                const float *g = run.g + r * T * U;
                double *gs = gsum + slot[r] * T * U;
                for (size_t i = 0; i < T * U; i++) gs[i] += f * g[i];
            }
            if (!(fabs(lsum / (double)rows - loss) <= 1e-4 * fmax(1.0, fabs(loss))))
                st = soma__errf(err, errlen, SOMA_STATUS_UNSUPPORTED, "integrated gradients: the per-row losses (mean %.9g) disagree with "
                                "the trainer's (%.9g): its loss %s is not the one F is computed from", lsum / (double)rows, loss,
                                soma_loss_name(to->loss));
        }
        if (st) break;
        for (size_t j = 0; j < ncs; j++) {
            double tot = 0;
            for (size_t u = 0; u < U; u++) {
                double a = 0;
                for (size_t t = 0; t < T; t++)
                    a += ((double)run.xc[(j * T + t) * U + u] - io->baseline) * gsum[(j * T + t) * U + u] / (double)m;
                acc[u] += a, tot += a;
            }
            double d = fx[j] - fb[j];
            sum_fx += fx[j], sum_fb += fb[j], sum_gap += fabs(tot - d), sum_absd += fabs(d);
        }
        if (o && o->progress && o->progress(o->user, "ig", s0 + ncs, S))
            st = soma__errf(err, errlen, SOMA_STATUS_CANCELLED, "integrated gradients: cancelled after %zu of %zu samples", s0 + ncs, S);
    }
    soma_train_set_hooks(x->tr, NULL);
    if (!st) {
        double sum = 0;
        for (size_t u = 0; u < U; u++) sum += attr[u] = acc[u] / (double)S;
        if (res) {
            memset(res, 0, sizeof *res);
            res->samples = S, res->steps = m, res->target = target;
            res->f_input = sum_fx / (double)S, res->f_baseline = sum_fb / (double)S, res->sum = sum;
            res->gap = sum_absd > 0 ? sum_gap / sum_absd : (sum_gap > 0 ? INFINITY : 0.0);
        }
    }
done:
    soma_hooks_free(hc), soma_hooks_free(ha);
    sites_free(sites, ns);
    free(smp), free(slot), free(idx), free(alpha), free(run.xc), free(run.g), free(run.out), free(gsum), free(fx), free(fb);
    free(acc), free(xb), free(y), free(hk);
    return st;
}

/* ------------------------------------------------------------ public */

int soma_dissect_integrated_gradients(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_ig_opts *io,
                                      size_t cls, const soma_dissect_neuron *set, size_t n, double *attr,
                                      soma_dissect_ig_result *res, char *err, size_t errlen) {
    if (!x || !x->net || !set || !n || !attr)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "integrated gradients: no net, set or output");
    char (*names)[160] = malloc(n * sizeof *names);
    const char **site = malloc(n * sizeof *site);
    size_t *index = malloc(n * sizeof *index);
    int st = 0;
    if (!names || !site || !index) st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "integrated gradients: out of memory");
    for (size_t j = 0; j < n && !st; j++) {
        soma_pop_info pi;
        if (soma_net_pop_info(x->net, set[j].pop, &pi)) {
            st = soma__errf(err, errlen, SOMA_STATUS_INVALID, "integrated gradients: neuron %zu's population %zu is not in the net", j, set[j].pop);
            break;
        }
        snprintf(names[j], sizeof names[j], "%s.spikes", pi.name);
        site[j] = names[j], index[j] = set[j].index;
    }
    if (!st) {
        ig_units un = {site, index, n};
        st = ig_core(x, o, io, cls, &un, attr, res, err, errlen);
    }
    free(names), free(site), free(index);
    return st;
}

int soma_dissect_ig_site(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_ig_opts *io, size_t cls,
                         const char *site, double *attr, soma_dissect_ig_result *res, char *err, size_t errlen) {
    size_t sid;
    soma_site_info si;
    if (!x || !x->net || !site || !attr) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "integrated gradients: no net, site or output");
    if (soma_net_site_find(x->net, site, &sid) || soma_net_site(x->net, sid, &si))
        return soma__errf(err, errlen, SOMA_STATUS_NOTFOUND, "integrated gradients: no site '%s' in the net", site);
    const char **names = malloc(si.size * sizeof *names);
    size_t *index = malloc(si.size * sizeof *index);
    if (!names || !index) {
        free(names), free(index);
        return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "integrated gradients: out of memory");
    }
    for (size_t i = 0; i < si.size; i++) names[i] = si.name, index[i] = i;
    ig_units un = {names, index, si.size};
    int st = ig_core(x, o, io, cls, &un, attr, res, err, errlen);
    free(names), free(index);
    return st;
}

int soma_dissect_ig_scores(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_ig_opts *io,
                           const soma_dissect_stats *s, size_t cls, double *score, char *err, size_t errlen) {
    if (!x || !s || !score) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "integrated gradients: no statistics or output");
    soma_dissect_info in;
    soma_dissect_stats_info(s, &in);
    size_t h = 0;
    for (size_t q = 0; q < in.pops; q++) {
        soma_dissect_pop p;
        soma_dissect_stats_pop(s, q, &p);
        if (!p.hidden) continue;
        char site[160];
        snprintf(site, sizeof site, "%s.spikes", p.name);
        int st = soma_dissect_ig_site(x, o, io, cls, site, score + h, NULL, err, errlen);
        if (st) return st;
        h += p.size;
    }
    return 0;
}
