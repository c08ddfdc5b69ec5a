/* path.c — the layer-progressive influential neuron path of a class
 * (`soma dissect MODEL path --class K`; docs/dissect.md, "path"), after
 * Influential Neuron Path (NeuronPath): keep the path so far; in the next
 * hidden layer add the neuron whose joint integrated gradients with the
 * path so far (the sum over the set of soma_dissect_integrated_gradients,
 * m steps, F = P(class K)) is largest. Its baseline is the per-layer most
 * active neuron for class K (the largest class rate of the statistics).
 * Both paths are then ablated (zeroed) and class K's accuracy measured
 * with soma_dissect_evaluate.
 *
 * Hidden layers are the hidden populations in the net's order. A neuron
 * that is dead on the statistics' samples (0 at every step) keeps its
 * value 0 along any path from a zero baseline, so its joint IG is the
 * path's own: it is not run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/file.h"
#include "soma.h"

int soma_dissect_path_run(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s, size_t cls,
                          size_t steps, soma_dissect_path *out, char *err, size_t errlen) {
    if (!x || !s || !out) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect path: no context, statistics or output");
    memset(out, 0, sizeof *out);
    soma_dissect_info in;
    soma_dissect_stats_info(s, &in);
    if (cls >= in.classes) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect path: class %zu; expected 0 to %zu", cls, in.classes - 1);
    soma_dissect_pop lay[SOMA_DISSECT_PATH_MAX];
    size_t L = 0, total = 0;
    for (size_t q = 0; q < in.pops; q++) {
        soma_dissect_pop p;
        soma_dissect_stats_pop(s, q, &p);
        if (!p.hidden) continue;
        if (L == SOMA_DISSECT_PATH_MAX)
            return soma__errf(err, errlen, SOMA_STATUS_UNSUPPORTED, "dissect path: more than %d hidden populations", SOMA_DISSECT_PATH_MAX);
        lay[L++] = p, total += p.size;
    }
    if (!L) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect path: the net has no hidden population");
    out->cls = cls, out->layers = L, out->steps = steps ? steps : 20;
    soma_dissect_ig_opts io;
    soma_dissect_ig_opts_default(&io);
    io.steps = out->steps, io.target = SOMA_DISSECT_TARGET_PROB;
    soma_dissect_opts oi = o ? *o : (soma_dissect_opts){0};
    oi.progress = NULL; /* one progress line for the whole search, below */
    soma_dissect_neuron set[SOMA_DISSECT_PATH_MAX];
    double attr[SOMA_DISSECT_PATH_MAX], prev = 0;
    size_t done = 0;
    int st = 0;
    for (size_t l = 0; l < L && !st; l++) {
        double best = -INFINITY;
        size_t arg = 0;
        for (size_t i = 0; i < lay[l].size && !st; i++) {
            double joint = prev;
            if (!lay[l].dead[i]) {
                soma_dissect_ig_result r;
                set[l].pop = lay[l].pop, set[l].index = i;
                if ((st = soma_dissect_integrated_gradients(x, &oi, &io, cls, set, l + 1, attr, &r, err, errlen))) break;
                joint = r.sum;
                if (l == 0 || r.samples) out->samples = r.samples;
            }
            if (joint > best) best = joint, arg = i; /* strict: ties to the lower index */
            done++;
            if (o && o->progress && o->progress(o->user, "path", done, total))
                st = soma__errf(err, errlen, SOMA_STATUS_CANCELLED, "dissect path: cancelled after %zu of %zu neurons", done, total);
        }
        if (st) break;
        set[l].pop = lay[l].pop, set[l].index = arg;
        out->ig[l] = set[l], out->ig_joint[l] = best;
        prev = best;
        /* the baseline: the most active neuron of the layer for class cls */
        size_t a = 0;
        for (size_t i = 1; i < lay[l].size; i++)
            if (lay[l].class_rate[cls * lay[l].size + i] > lay[l].class_rate[cls * lay[l].size + a]) a = i;
        out->active[l].pop = lay[l].pop, out->active[l].index = a;
        out->active_rate[l] = lay[l].class_rate[cls * lay[l].size + a];
    }
    if (st) return st;
    double *ca = malloc(in.classes * sizeof *ca);
    if (!ca) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect path: out of memory");
    if (!(st = soma_dissect_evaluate(x, o, s, NULL, 0, SOMA_DISSECT_MODE_ZERO, 0.0f, &out->acc_before, ca, NULL, err, errlen)))
        out->class_before = ca[cls];
    if (!st && !(st = soma_dissect_evaluate(x, o, s, out->ig, L, SOMA_DISSECT_MODE_ZERO, 0.0f, &out->acc_after_ig, ca, NULL, err, errlen)))
        out->class_after_ig = ca[cls];
    if (!st && !(st = soma_dissect_evaluate(x, o, s, out->active, L, SOMA_DISSECT_MODE_ZERO, 0.0f, &out->acc_after_active, ca, NULL, err,
                                            errlen)))
        out->class_after_active = ca[cls];
    free(ca);
    return st;
}

static void jnum(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fputs("null", f);
}

static const char *pop_name(const soma_dissect_stats *s, size_t pop) {
    soma_dissect_info in;
    soma_dissect_stats_info(s, &in);
    for (size_t q = 0; q < in.pops; q++) {
        soma_dissect_pop p;
        soma_dissect_stats_pop(s, q, &p);
        if (p.pop == pop) return p.name;
    }
    return "?";
}

int soma_dissect_write_path(const soma_dissect_stats *s, const soma_dissect_path *p, const char *model, const char *dir,
                            char *err, size_t errlen) {
    if (!s || !p || !dir || !p->layers) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect path: nothing to write");
    soma_dissect_info in;
    soma_dissect_stats_info(s, &in);
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/result.json", dir);
    FILE *f = soma__tmp_open(path, "w", tmp, sizeof tmp, err, errlen);
    if (!f) return SOMA_STATUS_IO;
    fprintf(f, "{\n  \"command\": \"path\",\n  \"model\": \"");
    for (const char *c = model ? model : ""; *c; c++) {
        if (*c == '"' || *c == '\\') fputc('\\', f);
        if ((unsigned char)*c >= 0x20) fputc(*c, f);
    }
    fprintf(f, "\",\n  \"samples\": %zu,\n  \"class\": %zu,\n  \"class_samples\": %zu,\n  \"ig_steps\": %zu,\n  \"target\": \"prob\",\n",
            in.samples, p->cls, p->samples, p->steps);
    fprintf(f, "  \"influential_path\": [");
    for (size_t l = 0; l < p->layers; l++) {
        fprintf(f, "%s{\"pop\": \"%s\", \"index\": %zu, \"joint_ig\": ", l ? ", " : "", pop_name(s, p->ig[l].pop), p->ig[l].index);
        jnum(f, p->ig_joint[l]);
        fputc('}', f);
    }
    fprintf(f, "],\n  \"most_active_path\": [");
    for (size_t l = 0; l < p->layers; l++) {
        fprintf(f, "%s{\"pop\": \"%s\", \"index\": %zu, \"class_rate\": ", l ? ", " : "", pop_name(s, p->active[l].pop),
                p->active[l].index);
        jnum(f, p->active_rate[l]);
        fputc('}', f);
    }
    fprintf(f, "],\n  \"accuracy_before\": "), jnum(f, p->acc_before);
    fprintf(f, ",\n  \"class_accuracy_before\": "), jnum(f, p->class_before);
    fprintf(f, ",\n  \"influential_ablated\": {\"accuracy\": "), jnum(f, p->acc_after_ig);
    fprintf(f, ", \"class_accuracy\": "), jnum(f, p->class_after_ig);
    fprintf(f, "},\n  \"most_active_ablated\": {\"accuracy\": "), jnum(f, p->acc_after_active);
    fprintf(f, ", \"class_accuracy\": "), jnum(f, p->class_after_active);
    fprintf(f, "}\n}\n");
    int st = soma__tmp_commit(f, 0, tmp, path, err, errlen);
    if (st) return st;
    const char *names[SOMA_DISSECT_PATH_MAX];
    size_t size[SOMA_DISSECT_PATH_MAX], nodes[2 * SOMA_DISSECT_PATH_MAX];
    for (size_t l = 0; l < p->layers; l++) {
        names[l] = pop_name(s, p->ig[l].pop);
        soma_dissect_info i2;
        soma_dissect_stats_info(s, &i2);
        size[l] = 0;
        for (size_t q = 0; q < i2.pops; q++) {
            soma_dissect_pop pp;
            soma_dissect_stats_pop(s, q, &pp);
            if (pp.pop == p->ig[l].pop) size[l] = pp.size;
        }
        nodes[l] = p->ig[l].index, nodes[p->layers + l] = p->active[l].index;
    }
    char t[160], n0[96], n1[96];
    snprintf(t, sizeof t, "Neuron paths for class %zu (IG: P(class), m = %zu)", p->cls, p->steps);
    snprintf(n0, sizeof n0, "influential (ablated: class acc %.1f%% -> %.1f%%)", 100 * p->class_before, 100 * p->class_after_ig);
    snprintf(n1, sizeof n1, "most active (ablated: %.1f%% -> %.1f%%)", 100 * p->class_before, 100 * p->class_after_active);
    const char *pn[2] = {n0, n1};
    snprintf(path, sizeof path, "%s/path.png", dir);
    return soma_plot_path(path, t, p->layers, names, size, 2, pn, nodes, err, errlen);
}
