/* edit.c — `soma dissect MODEL edit`: fine-tune only chosen neurons, the
 * rest of the network frozen (NeST, MNAFT; docs/dissect.md, "edit"), and
 * measure how much the targeted class's accuracy moved and how much the
 * other classes moved with it.
 *
 * A neuron's parameters are what computes it: its row of every dense
 * weight matrix into its population (W [to][from], so row `index`), its
 * entry of those projections' biases, its row of the population's own
 * recurrent weights, and its entry of each per-neuron learned parameter
 * (learn: neuron). Shared parameters (learn: layer, convolution kernels,
 * a model's cell weights) belong to no single neuron and stay frozen.
 * Freezing is the trainer's learn mask (soma_train_set_learn_mask): the
 * optimizer skips frozen entries, so they stay bit-identical, and the run
 * checks that by comparing every parameter before and after.
 *
 * Goals (the loss the selected neurons are trained on, train split):
 *   suppress: the trainer's own loss with every class-K sample relabelled
 *             to another class (random-label unlearning, as Graves et al.
 *             2021, "Amnesiac machine learning"): sample i of class K gets
 *             class (K + 1 + h(seed, i) mod (C - 1)) mod C, fixed for the
 *             run, so in expectation K's samples are pushed toward a
 *             uniform distribution over the other classes; the other
 *             samples keep their labels (the rest of the behaviour is held
 *             in place by the normal loss);
 *   enhance:  the normal loss with class-K samples weighted up: each
 *             appears `weight` times per epoch (oversampling, which for a
 *             mean loss is the same as a per-sample weight up to the
 *             batch normalisation).
 * Everything is built on the public trainer API (soma_encode,
 * soma_train_grad, soma_train_apply) and the dissect evaluator. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "core/file.h"
#include "soma.h"

int soma_dissect_goal_parse(const char *text, int *goal, char *err, size_t errlen) {
    if (text && !strcmp(text, "suppress")) return *goal = SOMA_DISSECT_GOAL_SUPPRESS, 0;
    if (text && !strcmp(text, "enhance")) return *goal = SOMA_DISSECT_GOAL_ENHANCE, 0;
    return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--goal '%s': expected suppress or enhance", text ? text : "");
}

const char *soma_dissect_goal_name(int goal) {
    return goal == SOMA_DISSECT_GOAL_SUPPRESS ? "suppress" : goal == SOMA_DISSECT_GOAL_ENHANCE ? "enhance" : "?";
}

void soma_dissect_edit_opts_default(soma_dissect_edit_opts *eo) {
    memset(eo, 0, sizeof *eo);
    eo->goal = SOMA_DISSECT_GOAL_SUPPRESS;
    eo->epochs = 1;
    eo->weight = 4;
    eo->seed = 1;
}

/* Entry j of tensor `name` into mask (at most one row or one entry per
 * neuron); returns the entries set, 0 if the tensor does not exist or its
 * shape is not [size][cols] / [1][size]. */
static size_t mark(soma_net *net, const char *name, size_t size, size_t index, int row, uint8_t **masks) {
    size_t nt = soma_net_tensor_count(net);
    for (size_t t = 0; t < nt; t++) {
        soma_tensor te;
        if (soma_net_tensor(net, t, &te) || strcmp(te.name, name)) continue;
        size_t c = 0;
        if (row && te.rows == size) {
            memset(masks[t] + index * te.cols, 1, te.cols), c = te.cols;
        } else if (!row && te.rows == 1 && te.cols == size) {
            masks[t][index] = 1, c = 1;
        }
        return c;
    }
    return 0;
}

/* The masks of set[0..n) on net: masks[t] [rows x cols] per tensor t. */
static int build_masks(soma_net *net, const soma_dissect_neuron *set, size_t n, uint8_t **masks, size_t *params,
                       char *err, size_t errlen) {
    size_t P = soma_net_pop_count(net), NP = soma_net_proj_count(net), total = 0;
    if (!n) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--neurons: the set is empty; expected POP:I,J,...");
    for (size_t j = 0; j < n; j++) {
        soma_pop_info pi;
        if (set[j].pop >= P || soma_net_pop_info(net, set[j].pop, &pi))
            return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--neurons: neuron %zu of the set: population %zu is not in the net (it has %zu)",
                              j, set[j].pop, P);
        if (set[j].index >= pi.size)
            return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--neurons: %s[%zu] is not in the net: population %s has %zu neurons",
                              pi.name, set[j].index, pi.name, pi.size);
        if (!strcmp(pi.model, "input"))
            return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--neurons: %s[%zu] is an input neuron; it has no parameters to train",
                              pi.name, set[j].index);
        for (size_t k = 0; k < j; k++)
            if (set[k].pop == set[j].pop && set[k].index == set[j].index)
                return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--neurons: %s[%zu] is listed twice", pi.name, set[j].index);
        size_t c = 0;
        char name[400];
        for (size_t i = 0; i < NP; i++) {
            size_t a, b;
            int bias;
            if (soma_net_proj_info(net, i, &a, &b, &bias) || b != set[j].pop || soma_net_proj_conv(net, i, NULL) == 1) continue;
            soma_pop_info fi;
            soma_net_pop_info(net, a, &fi);
            snprintf(name, sizeof name, "%s->%s.weight", fi.name, pi.name);
            c += mark(net, name, pi.size, set[j].index, 1, masks);
            snprintf(name, sizeof name, "%s->%s.bias", fi.name, pi.name);
            if (bias) c += mark(net, name, pi.size, set[j].index, 0, masks);
        }
        if (pi.recurrent) {
            snprintf(name, sizeof name, "%s->%s.weight", pi.name, pi.name);
            c += mark(net, name, pi.size, set[j].index, 1, masks);
        }
        const soma_model *m = soma_model_find(pi.model);
        size_t npar = 0;
        const soma_param_desc *pd = m ? soma_model_params(m, &npar) : NULL;
        for (size_t k = 0; k < npar; k++) {
            snprintf(name, sizeof name, "%s.%s", pi.name, pd[k].name);
            c += mark(net, name, pi.size, set[j].index, 0, masks);
        }
        if (!c)
            return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--neurons: %s[%zu] has no parameters of its own to train (no dense "
                              "projection into %s, no recurrent weights, no per-neuron learned parameter)",
                              pi.name, set[j].index, pi.name);
        total += c;
    }
    if (params) *params = total;
    return 0;
}

/* Per tensor masks in one block: masks[t] points into it. */
static uint8_t **alloc_masks(soma_net *net, uint8_t **block) {
    size_t nt = soma_net_tensor_count(net), tot = 0;
    uint8_t **m = calloc(nt ? nt : 1, sizeof *m);
    for (size_t t = 0; t < nt; t++) {
        soma_tensor te;
        soma_net_tensor(net, t, &te);
        tot += te.rows * te.cols;
    }
    *block = calloc(tot ? tot : 1, 1);
    if (!m || !*block) {
        free(m), free(*block), *block = NULL;
        return NULL;
    }
    for (size_t t = 0, off = 0; t < nt; t++) {
        soma_tensor te;
        soma_net_tensor(net, t, &te);
        m[t] = *block + off, off += te.rows * te.cols;
    }
    return m;
}

int soma_dissect_edit_freeze(soma_trainer *tr, soma_net *net, const soma_dissect_neuron *set, size_t n, size_t *params,
                             char *err, size_t errlen) {
    if (!tr || !net || (!set && n)) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect edit: needs a trainer, its net and a set");
    uint8_t *block = NULL, **masks = alloc_masks(net, &block);
    if (!masks) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect edit: out of memory");
    int st = build_masks(net, set, n, masks, params, err, errlen);
    for (size_t t = 0; !st && t < soma_net_tensor_count(net); t++)
        if ((st = soma_train_set_learn_mask(tr, t, masks[t])))
            soma__errf(err, errlen, st, "dissect edit: %s", soma_train_errmsg(tr));
    free(masks), free(block);
    return st;
}

static int edit_progress(const soma_dissect_opts *o, const char *phase, size_t done, size_t total) {
    return o && o->progress ? o->progress(o->user, phase, done, total) : 0;
}

/* A fixed pseudo-random draw for sample i (splitmix64). */
static uint64_t mix(uint64_t seed, uint64_t i) {
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + i + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The training: eo->epochs passes over the first `limit` training samples
 * (class K's repeated eo->weight times for enhance), relabelled for
 * suppress, in seeded shuffled order, one soma_train_grad and
 * soma_train_apply per batch. */
static int train_edit(soma_trainer *tr, const soma_data_opts *d, const soma_dissect_opts *o,
                      const soma_dissect_edit_opts *eo, soma_dissect_edit_result *r, char *err, size_t errlen) {
    const soma_dataset *ds = eo->train;
    const soma_train_opts *to = soma_train_options(tr);
    size_t N = eo->train_limit && eo->train_limit < ds->n ? eo->train_limit : ds->n, C = ds->classes, K = eo->cls;
    size_t rep = eo->goal == SOMA_DISSECT_GOAL_ENHANCE ? (eo->weight ? eo->weight : 1) : 1, M = 0;
    for (size_t i = 0; i < N; i++) M += ds->y[i] == K ? rep : 1;
    size_t B = to->batch ? to->batch : 1;
    size_t *order = malloc((M ? M : 1) * sizeof *order), *perm = malloc((M ? M : 1) * sizeof *perm), *idx = malloc(B * sizeof *idx);
    uint8_t *y = malloc(N ? N : 1), *yb = malloc(B);
    float *xb = malloc(soma_encode_size(d, ds, B) * sizeof *xb);
    int st = 0;
    if (!order || !perm || !idx || !y || !yb || !xb) {
        st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect edit: out of memory");
        goto done;
    }
    r->train_samples = N, r->target_train_samples = 0;
    for (size_t i = 0, m = 0; i < N; i++) {
        y[i] = ds->y[i];
        if (ds->y[i] == K) {
            r->target_train_samples++;
            if (eo->goal == SOMA_DISSECT_GOAL_SUPPRESS) y[i] = (uint8_t)((K + 1 + mix(eo->seed, i) % (C - 1)) % C);
            for (size_t k = 0; k < rep; k++) order[m++] = i;
        } else order[m++] = i;
    }
    size_t nb = (M + B - 1) / B, done_b = 0, total_b = nb * (size_t)eo->epochs;
    double loss_sum = 0;
    for (int e = 0; e < eo->epochs; e++) {
        for (size_t i = 0; i < M; i++) perm[i] = i;
        soma_shuffle(perm, M, eo->seed, (uint64_t)e);
        loss_sum = 0;
        for (size_t b0 = 0; b0 < M; b0 += B) {
            size_t b = M - b0 < B ? M - b0 : B;
            for (size_t k = 0; k < b; k++) idx[k] = order[perm[b0 + k]], yb[k] = y[idx[k]];
            int tc = 0;
            double loss = 0;
            if ((st = soma_encode(d, ds, idx, b, to->seed, (uint64_t)e, xb, &tc)))
                soma__errf(err, errlen, st, "dissect edit: encoding a batch of the training split");
            else if ((st = soma_train_grad(tr, xb, tc, yb, b, &loss, NULL)) || (st = soma_train_apply(tr)))
                soma__errf(err, errlen, st, "dissect edit: epoch %d: %s", e, soma_train_errmsg(tr));
            if (st) goto done;
            loss_sum += loss * (double)b;
            if (edit_progress(o, "edit", ++done_b, total_b)) {
                st = soma__errf(err, errlen, SOMA_STATUS_CANCELLED, "dissect edit: cancelled");
                goto done;
            }
        }
    }
    r->final_loss = M ? loss_sum / (double)M : NAN;
done:
    free(order), free(perm), free(idx), free(y), free(yb), free(xb);
    return st;
}

int soma_dissect_edit_run(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_edit_opts *eo,
                          soma_dissect_edit_result *r, char *err, size_t errlen) {
    if (!x || !x->tr || !x->net || !x->d || !x->ds || !eo || !r)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect edit: needs a context, options and a result");
    if (!eo->train) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect edit: needs the training split");
    size_t C = x->ds->classes;
    if (C < 2 || C > SOMA_DISSECT_MAX_CLASSES || eo->train->classes > C)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect edit: the data set has %zu classes; expected 2 to %d", C,
                          SOMA_DISSECT_MAX_CLASSES);
    if (eo->cls >= C)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--group class=%zu: expected a class from 0 to %zu", eo->cls, C - 1);
    if (eo->goal != SOMA_DISSECT_GOAL_SUPPRESS && eo->goal != SOMA_DISSECT_GOAL_ENHANCE)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--goal %d: expected suppress or enhance", eo->goal);
    if (eo->epochs < 1 || eo->epochs > 1000)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--epochs %d: expected 1 to 1000", eo->epochs);
    if (!(eo->lr >= 0 && eo->lr < 1e6))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--lr %g: expected a learning rate > 0 (0: the model's)", eo->lr);
    soma_net *net = (soma_net *)x->net; /* the edit writes the net's weights: the caller's trainer is synced after */
    memset(r, 0, sizeof *r);
    r->classes = C, r->cls = eo->cls, r->goal = eo->goal, r->epochs = eo->epochs;
    size_t nt = soma_net_tensor_count(net), np = soma_net_param_count(net);
    uint8_t *block = NULL, **masks = alloc_masks(net, &block);
    float *before = malloc((np ? np : 1) * sizeof *before);
    soma_trainer *et = NULL;
    int st = 0;
    if (!masks || !before) {
        st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect edit: out of memory");
        goto done;
    }
    if ((st = build_masks(net, eo->set, eo->n, masks, &r->params_selected, err, errlen))) goto done;
    r->params_total = np, r->neurons = eo->n;
    /* A trainer of its own: the model's options, with the edit's learning
     * rate on a constant schedule. */
    soma_train_opts topt = *soma_train_options(x->tr);
    if (eo->lr > 0) topt.lr = (float)eo->lr;
    topt.schedule = SOMA_SCHEDULE_CONSTANT, topt.epochs = eo->epochs;
    r->lr = topt.lr;
    if ((st = soma_train_create(&et, net, &topt, x->d))) {
        soma__errf(err, errlen, st, "dissect edit: a trainer: %s", soma_net_errmsg(net));
        goto done;
    }
    for (size_t t = 0; t < nt; t++)
        if ((st = soma_train_set_learn_mask(et, t, masks[t]))) {
            soma__errf(err, errlen, st, "dissect edit: %s", soma_train_errmsg(et));
            goto done;
        }
    for (size_t t = 0, off = 0; t < nt; t++) {
        soma_tensor te;
        soma_net_tensor(net, t, &te);
        memcpy(before + off, te.data, te.rows * te.cols * sizeof(float)), off += te.rows * te.cols;
    }
    soma_dissect_ctx ex = {et, x->net, x->d, x->ds};
    if ((st = soma_dissect_evaluate(&ex, o, NULL, NULL, 0, SOMA_DISSECT_MODE_ZERO, 1.0f, &r->acc_before, r->class_before,
                                    NULL, err, errlen)))
        goto done;
    double t0 = soma_clock_seconds();
    if ((st = train_edit(et, x->d, o, eo, r, err, errlen))) goto done;
    r->train_seconds = soma_clock_seconds() - t0;
    if ((st = soma_dissect_evaluate(&ex, o, NULL, NULL, 0, SOMA_DISSECT_MODE_ZERO, 1.0f, &r->acc_after, r->class_after,
                                    NULL, err, errlen)))
        goto done;
    /* The check: only entries of the selected neurons may have changed. */
    for (size_t t = 0, off = 0; t < nt; t++) {
        soma_tensor te;
        soma_net_tensor(net, t, &te);
        for (size_t j = 0; j < te.rows * te.cols; j++)
            if (memcmp(&te.data[j], &before[off + j], sizeof(float))) {
                r->params_changed++;
                if (!masks[t][j]) r->params_changed_outside++;
            }
        off += te.rows * te.cols;
    }
    if (r->params_changed_outside) {
        st = soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect edit: %zu parameters outside the selected neurons changed "
                        "(a frozen entry moved)", r->params_changed_outside);
        goto done;
    }
    r->target_before = r->class_before[eo->cls], r->target_after = r->class_after[eo->cls];
    double sum = 0;
    size_t cnt = 0;
    for (size_t c = 0; c < C; c++)
        if (c != eo->cls && isfinite(r->class_before[c]) && isfinite(r->class_after[c]))
            sum += fabs(r->class_after[c] - r->class_before[c]), cnt++;
    r->others_mean_abs_change = cnt ? sum / (double)cnt : NAN;
    if (eo->path && (st = soma_model_save(eo->path, net, eo->save_data ? eo->save_data : x->d,
                                          eo->save_train ? eo->save_train : soma_train_options(x->tr), err, errlen)))
        goto done;
done:
    soma_train_free(et);
    if (x->tr) soma_train_sync(x->tr); /* the net's weights may have changed under the caller's trainer */
    free(masks), free(block), free(before);
    return st;
}


int soma_dissect_write_edit(const soma_dissect_edit_opts *eo, const soma_dissect_edit_result *r, const soma_net *net,
                            const char *model, const char *dir, char *err, size_t errlen) {
    if (!eo || !r || !dir) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect edit: nothing to write");
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/result.json", dir);
    FILE *f = soma__tmp_open(path, "w", tmp, sizeof tmp, err, errlen);
    if (!f) return SOMA_STATUS_IO;
    fprintf(f, "{\n  \"command\": \"edit\",\n  \"model\": ");
    soma__json_str(f, model ? model : "");
    fprintf(f, ",\n  \"class\": %zu,\n  \"goal\": \"%s\",\n  \"epochs\": %d,\n  \"lr\": ", r->cls,
            soma_dissect_goal_name(r->goal), r->epochs);
    soma__json_num(f, r->lr);
    fprintf(f, ",\n  \"enhance_weight\": %zu,\n  \"train_samples\": %zu,\n  \"target_train_samples\": %zu,\n",
            eo->goal == SOMA_DISSECT_GOAL_ENHANCE ? (eo->weight ? eo->weight : 1) : 1, r->train_samples,
            r->target_train_samples);
    fprintf(f, "  \"neurons\": [");
    for (size_t j = 0; j < eo->n; j++) {
        soma_pop_info pi;
        const char *pn = net && !soma_net_pop_info(net, eo->set[j].pop, &pi) ? pi.name : "?";
        fprintf(f, "%s\"%s:%zu\"", j ? ", " : "", pn, eo->set[j].index);
    }
    fprintf(f, "],\n  \"params_total\": %zu,\n  \"params_selected\": %zu,\n  \"params_changed\": %zu,\n"
               "  \"params_changed_outside\": %zu,\n",
            r->params_total, r->params_selected, r->params_changed, r->params_changed_outside);
    fprintf(f, "  \"accuracy_before\": "), soma__json_num(f, r->acc_before);
    fprintf(f, ",\n  \"accuracy_after\": "), soma__json_num(f, r->acc_after);
    fprintf(f, ",\n  \"target_accuracy_before\": "), soma__json_num(f, r->target_before);
    fprintf(f, ",\n  \"target_accuracy_after\": "), soma__json_num(f, r->target_after);
    fprintf(f, ",\n  \"others_mean_abs_change\": "), soma__json_num(f, r->others_mean_abs_change);
    fprintf(f, ",\n  \"train_seconds\": "), soma__json_num(f, r->train_seconds);
    fprintf(f, ",\n  \"final_loss\": "), soma__json_num(f, r->final_loss);
    fprintf(f, ",\n  \"class_accuracy_before\": [");
    for (size_t c = 0; c < r->classes; c++) fprintf(f, "%s", c ? ", " : ""), soma__json_num(f, r->class_before[c]);
    fprintf(f, "],\n  \"class_accuracy_after\": [");
    for (size_t c = 0; c < r->classes; c++) fprintf(f, "%s", c ? ", " : ""), soma__json_num(f, r->class_after[c]);
    fprintf(f, "],\n  \"edited_model\": ");
    soma__json_str(f, eo->path ? eo->path : "");
    fprintf(f, "\n}\n");
    int st = soma__tmp_commit(f, 0, tmp, path, err, errlen);
    if (st) return st;
    size_t C = r->classes;
    double v[2 * SOMA_DISSECT_MAX_CLASSES];
    char lab[SOMA_DISSECT_MAX_CLASSES][16];
    const char *names[SOMA_DISSECT_MAX_CLASSES];
    for (size_t c = 0; c < C; c++) {
        snprintf(lab[c], sizeof lab[c], c == r->cls ? "%zu*" : "%zu", c), names[c] = lab[c];
        v[c] = 100.0 * r->class_before[c], v[C + c] = 100.0 * r->class_after[c];
    }
    const char *series[2] = {"before", "after"};
    char title[160];
    snprintf(title, sizeof title, "Per-class test accuracy before and after the edit (%s class %zu*, %zu neuron%s)",
             soma_dissect_goal_name(r->goal), r->cls, r->neurons, r->neurons == 1 ? "" : "s");
    snprintf(path, sizeof path, "%s/edit.png", dir);
    return soma_plot_bars(path, title, "accuracy (%)", C, names, 2, series, v, err, errlen);
}
