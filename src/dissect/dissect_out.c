/* dissect_out.c — what `soma dissect` leaves behind: result.json and a
 * figure per command, built only on the getters of dissect.c. Every file is
 * written atomically: to "PATH.tmp.<pid>", flushed, fsync'ed and renamed,
 * so a failed write leaves an earlier file untouched. */
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
#include "soma.h"

/* Indices i where flag[i] is set. */
static void jidx(FILE *f, const uint8_t *flag, size_t n) {
    fputc('[', f);
    int first = 1;
    for (size_t i = 0; i < n; i++)
        if (flag[i]) fprintf(f, first ? "%zu" : ",%zu", i), first = 0;
    fputc(']', f);
}

static void path_in(char *buf, size_t n, const char *dir, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

static void jhead(FILE *f, const char *command, const char *model, const soma_dissect_info *in) {
    fprintf(f, "{\n  \"command\": ");
    soma__json_str(f, command);
    fprintf(f, ",\n  \"model\": ");
    soma__json_str(f, model ? model : "");
    fprintf(f, ",\n  \"samples\": %zu,\n  \"classes\": %zu,\n  \"steps\": %zu,\n  \"pooling\": \"sum\",\n  \"accuracy\": ",
            in->samples, in->classes, in->steps);
    soma__json_num(f, in->accuracy);
    fprintf(f, ",\n  \"class_samples\": [");
    for (size_t c = 0; c < in->classes; c++) fprintf(f, c ? ",%zu" : "%zu", in->class_samples[c]);
    fprintf(f, "]");
}

static const char *pop_name_of(const soma_dissect_stats *s, size_t pop) {
    soma_dissect_info in;
    soma_dissect_stats_info(s, &in);
    for (size_t q = 0; q < in.pops; q++) {
        soma_dissect_pop p;
        if (soma_dissect_stats_pop(s, q, &p) == 0 && p.pop == pop) return p.name;
    }
    return "?";
}

static void jset(FILE *f, const soma_dissect_stats *s, const soma_dissect_neuron *set, const double *ap, size_t n,
                 const char *key) {
    fputc('[', f);
    for (size_t j = 0; j < n; j++) {
        fprintf(f, "%s{\"pop\": ", j ? ", " : "");
        soma__json_str(f, pop_name_of(s, set[j].pop));
        fprintf(f, ", \"index\": %zu", set[j].index);
        if (ap) fprintf(f, ", \"%s\": ", key), soma__json_num(f, ap[j]);
        fputc('}', f);
    }
    fputc(']', f);
}

/* Class labels "0" .. "C-1". */
static char (*class_labels(size_t C, const char **names))[24] {
    char (*lab)[24] = malloc(C * sizeof *lab);
    if (!lab) return NULL;
    for (size_t c = 0; c < C; c++) snprintf(lab[c], sizeof lab[c], "%zu", c), names[c] = lab[c];
    return lab;
}

typedef struct col {
    int cls;
    double sel;
    size_t q, i;
} col;
static int by_pref(const void *a, const void *b) {
    const col *x = a, *y = b;
    if (x->cls != y->cls) return x->cls - y->cls;
    return x->sel > y->sel ? -1 : x->sel < y->sel;
}

static int stats_png(const soma_dissect_stats *s, const soma_dissect_info *in, const char *path, char *err,
                     size_t errlen) {
    /* hidden neurons, sorted by preferred class then selectivity; outputs when there are no hidden ones */
    size_t H = soma_dissect_hidden_count(s), C = in->classes;
    int hidden_only = H > 0;
    if (!H)
        for (size_t q = 0; q < in->pops; q++) {
            soma_dissect_pop p;
            soma_dissect_stats_pop(s, q, &p);
            H += p.size;
        }
    col *cols = malloc((H ? H : 1) * sizeof *cols);
    double *v = malloc((H ? H : 1) * C * sizeof *v);
    const char **names = malloc(C * sizeof *names);
    char(*lab)[24] = names ? class_labels(C, names) : NULL;
    int st;
    if (!cols || !v || !names || !lab) {
        st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: out of memory", path);
        goto done;
    }
    size_t m = 0;
    for (size_t q = 0; q < in->pops; q++) {
        soma_dissect_pop p;
        soma_dissect_stats_pop(s, q, &p);
        if (hidden_only && !p.hidden) continue;
        for (size_t i = 0; i < p.size; i++) {
            int best = 0;
            for (size_t c = 1; c < C; c++)
                if (p.selectivity[c * p.size + i] > p.selectivity[(size_t)best * p.size + i]) best = (int)c;
            cols[m].cls = p.dead[i] ? (int)C : best; /* dead neurons last */
            cols[m].sel = p.selectivity[(size_t)best * p.size + i], cols[m].q = q, cols[m].i = i, m++;
        }
    }
    qsort(cols, m, sizeof *cols, by_pref);
    for (size_t j = 0; j < m; j++) {
        soma_dissect_pop p;
        soma_dissect_stats_pop(s, cols[j].q, &p);
        for (size_t c = 0; c < C; c++) v[c * m + j] = p.selectivity[c * p.size + cols[j].i];
    }
    st = soma_plot_heatmap(path, "class selectivity of hidden neurons", "neurons (sorted by preferred class; dead last)",
                           v, C, m, names, 3.0, err, errlen);
done:
    free(cols), free(v), free(names), free(lab);
    return st;
}

int soma_dissect_write_stats(const soma_dissect_stats *s, const char *model, const char *dir, char *err,
                             size_t errlen) {
    if (!s || !dir) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect stats: no statistics or folder");
    soma_dissect_info in;
    soma_dissect_stats_info(s, &in);
    char path[4096], tmp[4200];
    path_in(path, sizeof path, dir, "result.json");
    FILE *f = soma__tmp_open(path, "w", tmp, sizeof tmp, err, errlen);
    if (!f) return SOMA_STATUS_IO;
    jhead(f, "stats", model, &in);
    fprintf(f, ",\n  \"topk\": %zu,\n  \"selectivity_formula\": \"(r_c - mean of r over other classes) / (sd of r over classes + 1e-6)\",\n  \"populations\": [",
            in.topk);
    for (size_t q = 0; q < in.pops; q++) {
        soma_dissect_pop p;
        soma_dissect_stats_pop(s, q, &p);
        double mean = 0;
        for (size_t i = 0; i < p.size; i++) mean += p.rate[i];
        fprintf(f, "%s\n    {\"name\": ", q ? "," : "");
        soma__json_str(f, p.name);
        fprintf(f, ", \"size\": %zu, \"hidden\": %s, \"graded\": %s, \"mean_rate\": ", p.size, p.hidden ? "true" : "false",
                p.graded ? "true" : "false");
        soma__json_num(f, mean / (double)p.size);
        fprintf(f, ", \"dead_count\": %zu, \"saturated_count\": %zu,\n     \"dead\": ", p.dead_count, p.saturated_count);
        jidx(f, p.dead, p.size);
        fprintf(f, ",\n     \"saturated\": ");
        jidx(f, p.saturated, p.size);
        fprintf(f, ",\n     \"rate\": ");
        soma__json_arr(f, p.rate, p.size);
        fprintf(f, ",\n     \"fire_fraction\": ");
        soma__json_arr(f, p.fire_frac, p.size);
        fprintf(f, ",\n     \"class_rate\": [");
        for (size_t c = 0; c < in.classes; c++) fprintf(f, c ? ",\n       " : "\n       "), soma__json_arr(f, p.class_rate + c * p.size, p.size);
        fprintf(f, "],\n     \"selectivity\": [");
        for (size_t c = 0; c < in.classes; c++) fprintf(f, c ? ",\n       " : "\n       "), soma__json_arr(f, p.selectivity + c * p.size, p.size);
        fprintf(f, "],\n     \"top_samples\": [");
        for (size_t i = 0; i < p.size; i++) {
            fprintf(f, i ? "," : "");
            fputc('[', f);
            int first = 1;
            for (size_t k = 0; k < in.topk; k++) {
                uint32_t smp = p.top_sample[i * in.topk + k];
                if (smp == UINT32_MAX) break;
                fprintf(f, first ? "[%u," : ",[%u,", smp), soma__json_num(f, p.top_value[i * in.topk + k]), fputc(']', f);
                first = 0;
            }
            fputc(']', f);
        }
        fprintf(f, "]}");
    }
    fprintf(f, "\n  ]\n}\n");
    int st = soma__tmp_commit(f, 0, tmp, path, err, errlen);
    if (st) return st;
    path_in(path, sizeof path, dir, "selectivity.png");
    return stats_png(s, &in, path, err, errlen);
}

int soma_dissect_write_select(const soma_dissect_stats *s, const char *model, size_t cls,
                              const soma_dissect_neuron *set, const double *ap, size_t n, const char *dir, char *err,
                              size_t errlen) {
    return soma_dissect_write_select_by(s, model, SOMA_DISSECT_BY_AP, cls, set, ap, n, dir, err, errlen);
}

int soma_dissect_write_select_by(const soma_dissect_stats *s, const char *model, int by, size_t cls,
                                 const soma_dissect_neuron *set, const double *val, size_t n, const char *dir,
                                 char *err, size_t errlen) {
    if (!s || !dir || (n && !set)) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect select: nothing to write");
    soma_dissect_info in;
    soma_dissect_stats_info(s, &in);
    const char *key = soma_dissect_by_name(by);
    int attr = by == SOMA_DISSECT_BY_ATTRIBUTION || by == SOMA_DISSECT_BY_IG || by == SOMA_DISSECT_BY_WINA;
    char path[4096], tmp[4200];
    path_in(path, sizeof path, dir, "result.json");
    FILE *f = soma__tmp_open(path, "w", tmp, sizeof tmp, err, errlen);
    if (!f) return SOMA_STATUS_IO;
    jhead(f, "select", model, &in);
    fprintf(f, ",\n  \"by\": \"%s\",\n  \"group\": \"class=%zu\",\n  \"hidden_neurons\": %zu,\n  \"count\": %zu,\n  \"neurons\": ",
            key, cls, soma_dissect_hidden_count(s), n);
    jset(f, s, set, val, n, key);
    fprintf(f, "\n}\n");
    int st = soma__tmp_commit(f, 0, tmp, path, err, errlen);
    if (st || !n || !val) return st;
    size_t m = n > 60 ? 60 : n;
    const char **names = malloc(m * sizeof *names);
    char(*lab)[48] = malloc(m * sizeof *lab);
    if (!names || !lab) {
        free(names), free(lab);
        return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect select: out of memory");
    }
    for (size_t j = 0; j < m; j++) snprintf(lab[j], sizeof lab[j], "%zu", set[j].index), names[j] = lab[j];
    char title[96];
    int ig = by == SOMA_DISSECT_BY_IG, wina = by == SOMA_DISSECT_BY_WINA;
    int probe = by == SOMA_DISSECT_BY_PROBE, impact = by == SOMA_DISSECT_BY_IMPACT;
    snprintf(title, sizeof title, probe ? "Probe weight z-score for class %zu (best %zu)"
                                  : impact ? "Class %zu loss increase when ablated alone (best %zu)"
                                  : ig ? "Integrated gradients (P(class %zu)) of the selected neurons (best %zu)"
                                  : wina ? "WINA score (mean |x| x column norm), class %zu (best %zu)"
                                  : attr ? "Attribution (activation x gradient) for class %zu (best %zu)"
                                         : "AP for class %zu of the selected neurons (best %zu)", cls, m);
    path_in(path, sizeof path, dir, probe ? "probe.png" : impact ? "impact.png" : ig ? "ig.png" : wina ? "wina.png" : attr ? "attribution.png" : "ap.png");
    const char *series[1] = {probe ? "probe z-score" : impact ? "loss increase" : ig ? "integrated gradients" : wina ? "|x| x ||W[:,i]||"
                             : attr ? "activation x gradient" : "average precision"};
    st = soma_plot_bars(path, title, probe ? "z" : impact ? "loss increase" : ig ? "IG" : wina ? "WINA" : attr ? "attribution" : "AP", m,
                        names, 1, series, val, err, errlen);
    free(names), free(lab);
    return st;
}

static void jabl(FILE *f, const soma_dissect_ablation *a) {
    size_t C = a->classes;
    fprintf(f, "{\"neurons\": %zu, \"draws\": %zu, \"selected_by\": ", a->n, a->draws);
    if (a->by >= SOMA_DISSECT_BY_AP && a->by <= SOMA_DISSECT_BY_IMPACT) soma__json_str(f, soma_dissect_by_name(a->by));
    else fputs("null", f);
    if (a->by < 0) fprintf(f, ", \"selected_on\": null");
    else if (a->selected_on_train) fprintf(f, ", \"selected_on\": \"train:%zu\"", a->selected_on_train);
    else fprintf(f, ", \"selected_on\": \"test\"");
    fprintf(f, ", \"accuracy_before\": ");
    soma__json_num(f, a->acc_before);
    fprintf(f, ", \"accuracy_after\": "), soma__json_num(f, a->acc_after);
    fprintf(f, ", \"accuracy_control\": "), soma__json_num(f, a->acc_control);
    fprintf(f, ", \"accuracy_control_sd\": "), soma__json_num(f, a->acc_control_sd);
    fprintf(f, ",\n     \"class_before\": "), soma__json_arr(f, a->class_before, C);
    fprintf(f, ",\n     \"class_after\": "), soma__json_arr(f, a->class_after, C);
    fprintf(f, ",\n     \"class_control\": "), soma__json_arr(f, a->class_control, C);
    fprintf(f, ",\n     \"class_control_sd\": "), soma__json_arr(f, a->class_control_sd, C);
}

int soma_dissect_write_ablate(const soma_dissect_stats *s, const char *model, const soma_dissect_ablation *res,
                              size_t na, const char *const *labels, const soma_dissect_neuron *const *sets,
                              const size_t *nset, const char *dir, char *err, size_t errlen) {
    if (!s || !res || !na || !dir) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "dissect ablate: nothing to write");
    soma_dissect_info in;
    soma_dissect_stats_info(s, &in);
    size_t C = res[0].classes;
    char path[4096], tmp[4200];
    path_in(path, sizeof path, dir, "result.json");
    FILE *f = soma__tmp_open(path, "w", tmp, sizeof tmp, err, errlen);
    if (!f) return SOMA_STATUS_IO;
    jhead(f, "ablate", model, &in);
    const char *mode = res[0].mode == SOMA_DISSECT_MODE_ZERO ? "zero" : res[0].mode == SOMA_DISSECT_MODE_MEAN ? "mean" : "scale";
    fprintf(f, ",\n  \"mode\": \"%s\",\n  \"scale\": ", mode);
    soma__json_num(f, res[0].scale);
    fprintf(f, ",\n  \"ablations\": [");
    for (size_t k = 0; k < na; k++) {
        fprintf(f, "%s\n    {\"set\": ", k ? "," : "");
        soma__json_str(f, labels && labels[k] ? labels[k] : "");
        fprintf(f, ", \"result\": ");
        jabl(f, &res[k]);
        fputc('}', f);
        if (sets && nset && sets[k]) fprintf(f, ",\n     \"neurons\": "), jset(f, s, sets[k], NULL, nset[k], "ap");
        fputc('}', f);
    }
    fprintf(f, "\n  ]");
    if (na == C && na > 1) { /* the ablation-effect matrix: row = ablated set, column = measured class */
        fprintf(f, ",\n  \"effect_matrix\": [");
        for (size_t k = 0; k < na; k++) {
            fprintf(f, k ? ",\n    [" : "\n    [");
            for (size_t j = 0; j < C; j++) fprintf(f, j ? "," : ""), soma__json_num(f, res[k].class_before[j] - res[k].class_after[j]);
            fprintf(f, "]");
        }
        fprintf(f, "],\n  \"effect_matrix_control\": [");
        for (size_t k = 0; k < na; k++) {
            fprintf(f, k ? ",\n    [" : "\n    [");
            for (size_t j = 0; j < C; j++) fprintf(f, j ? "," : ""), soma__json_num(f, res[k].class_before[j] - res[k].class_control[j]);
            fprintf(f, "]");
        }
        fprintf(f, "]");
    }
    fprintf(f, "\n}\n");
    int st = soma__tmp_commit(f, 0, tmp, path, err, errlen);
    if (st) return st;
    /* the figure: one result's per-class accuracies, or each set's own class */
    double *v = malloc(3 * C * sizeof *v);
    const char **names = malloc(C * sizeof *names);
    char(*lab)[24] = names ? class_labels(C, names) : NULL;
    if (!v || !names || !lab) {
        free(v), free(names), free(lab);
        return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "dissect ablate: out of memory");
    }
    int diag = na == C && na > 1;
    for (size_t c = 0; c < C; c++) {
        const soma_dissect_ablation *a = diag ? &res[c] : &res[0];
        v[c] = 100 * a->class_before[c], v[C + c] = 100 * a->class_after[c], v[2 * C + c] = 100 * a->class_control[c];
    }
    const char *series[3] = {"before", diag ? "after (own class's set ablated)" : "after", "random control (mean)"};
    char title[160];
    if (diag) snprintf(title, sizeof title, "accuracy of each class with its own top set ablated (%s)", mode);
    else snprintf(title, sizeof title, "accuracy per class, %zu neurons ablated (%s)", res[0].n, mode);
    path_in(path, sizeof path, dir, "ablate.png");
    st = soma_plot_bars(path, title, "accuracy (%)", C, names, res[0].draws ? 3 : 2, series, v, err, errlen);
    free(v), free(names), free(lab);
    return st;
}
