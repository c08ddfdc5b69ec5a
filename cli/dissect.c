/* dissect.c — `soma dissect MODEL <stats|select|ablate|patch> [options]`:
 * neuron-level analysis of a trained model on its data set's test split
 * (see docs/dissect.md). Parsing, progress and printing only: the
 * statistics, selection, ablation and the files are soma_dissect_*. */
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: soma dissect MODEL stats  [common options] [--topk K]\n"
               "       soma dissect MODEL select --by ap|attribution|ig|wina|probe|impact --group class=K [--top N | --top-pct P] [--per-pop] [common options]\n"
               "                          probe: [--z Z (every neuron with weight z-score > Z)] [--l2 L]; impact: [--candidates-pct P]\n"
               "       soma dissect MODEL ablate POP:I,J,...|class=K|classes [--mode zero|mean|scale:X]\n"
               "                          [--by ap|attribution|ig|wina|probe|impact] [--top N | --top-pct P] [--per-pop] [--draws R] [--seed S]\n"
               "                          [common options]\n"
               "       soma dissect MODEL patch SITE[:I,J,...] --from-sample J|--from-model MODEL2 [--samples N | --class K] [common options]\n"
               "       soma dissect MODEL compare MODEL2 [--top N] [common options]\n"
               "       soma dissect MODEL path --class K [common options]\n"
               "       soma dissect MODEL prune --fraction F[,F2,...] [--by rate|wina|attribution] [--finetune N] [common options]\n"
               "       soma dissect FILE.yaml lesion|stimulate ... (a simulated circuit; soma dissect FILE.yaml lesion --help)\n"
               "       soma dissect MODEL sparsify --method wina|teal|topk --sparsity S[,S2,...] [--site FROM->TO ...] (--help)\n"
               "       soma dissect MODEL edit --neurons POP:I,J,... --group class=K [--goal suppress|enhance] [--epochs N] [--lr X] (--help)\n"
               "common options: [--data DIR] [--out DIR] [--limit N] [--threads N] [--batch N]\n"
               "select, ablate: [--select-on test | train[:N]]  the samples neurons are selected on (default test;\n"
               "                train:N the train split's first N, default 10000): ablation is always measured on the test split\n");
}

static int progress(void *user, const char *phase, size_t done, size_t total) {
    (void)user;
    fprintf(stderr, "\r  %-8s %zu/%zu samples", phase, done, total);
    if (done == total) fprintf(stderr, "\n");
    return 0;
}

typedef struct args {
    const char *model, *cmd, *set, *data, *out, *by, *group, *mode, *select_on, *from_model;
    const char *z, *l2, *cand; /* probe's --z, --l2, impact's --candidates-pct (dissect_probe.c) */
    long limit, threads, batch, topk, top, draws, seed;
    long from_sample, samples, cls; /* patch: -1 where not given */
    double top_pct;
    int per_pop, by_method; /* soma_dissect_by */
} args;

static int parse(int argc, char **argv, args *a) {
    memset(a, 0, sizeof *a);
    a->out = "runs/dissect", a->by = "ap", a->mode = "zero";
    a->limit = a->threads = a->from_sample = a->samples = a->cls = -1, a->batch = 256, a->topk = 5, a->draws = 5, a->seed = 1;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **str = !strcmp(o, "--data") ? &a->data : !strcmp(o, "--out") ? &a->out : !strcmp(o, "--by") ? &a->by
                          : !strcmp(o, "--group") ? &a->group : !strcmp(o, "--mode") ? &a->mode
                          : !strcmp(o, "--select-on") ? &a->select_on : !strcmp(o, "--z") ? &a->z : !strcmp(o, "--l2") ? &a->l2
                          : !strcmp(o, "--candidates-pct") ? &a->cand
                          : !strcmp(o, "--from-model") ? &a->from_model : NULL;
        long *num = !strcmp(o, "--limit") ? &a->limit : !strcmp(o, "--threads") ? &a->threads : !strcmp(o, "--batch") ? &a->batch
                  : !strcmp(o, "--topk") ? &a->topk : !strcmp(o, "--top") ? &a->top : !strcmp(o, "--draws") ? &a->draws
                  : !strcmp(o, "--seed") ? &a->seed : !strcmp(o, "--from-sample") ? &a->from_sample
                  : !strcmp(o, "--samples") ? &a->samples : !strcmp(o, "--class") ? &a->cls : NULL;
        if (str) {
            if (!v) return fprintf(stderr, "soma dissect: %s needs a value\n", o), 2;
            *str = v, i++;
        } else if (num) {
            long lo = num == &a->draws || num == &a->seed || num == &a->from_sample || num == &a->cls ? 0 : 1, hi = num == &a->topk ? 32 : 1L << 40;
            if ((*num = cli_long(o, v, lo, hi)) < 0) return 2;
            i++;
        } else if (!strcmp(o, "--top-pct")) {
            char *end;
            a->top_pct = v ? strtod(v, &end) : 0;
            if (!v || *end || !(a->top_pct > 0 && a->top_pct <= 100))
                return fprintf(stderr, "soma dissect: --top-pct '%s': expected a percentage in (0, 100]\n", v ? v : ""), 2;
            i++;
        } else if (!strcmp(o, "--per-pop")) a->per_pop = 1;
        else if (!strcmp(o, "--help") || !strcmp(o, "-h")) return usage(stdout), 3;
        else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "soma dissect: unknown option '%s'\n", o);
            return usage(stderr), 2;
        } else if (!a->model) a->model = o;
        else if (!a->cmd) a->cmd = o;
        else if (!a->set && (!strcmp(a->cmd, "ablate") || !strcmp(a->cmd, "patch"))) a->set = o;
        else return fprintf(stderr, "soma dissect: unexpected argument '%s'\n", o), 2;
    }
    if (a->model && (!strcmp(a->model, "help") || !strcmp(a->model, "--help"))) return usage(stdout), 3;
    if (!a->model || !a->cmd) return usage(stderr), 2;
    if (strcmp(a->cmd, "stats") && strcmp(a->cmd, "select") && strcmp(a->cmd, "ablate") && strcmp(a->cmd, "patch") &&
        strcmp(a->cmd, "path"))
        return fprintf(stderr, "soma dissect: unknown command '%s'; expected stats, select, ablate, patch or path\n", a->cmd), 2;
    if (!strcmp(a->cmd, "path") && a->cls < 0) return fprintf(stderr, "soma dissect path: --class K is needed\n"), 2;
    if (!strcmp(a->cmd, "patch")) {
        if (!a->set) return fprintf(stderr, "soma dissect patch: which site? expected SITE or SITE:I,J,... (e.g. hidden.spikes)\n"), 2;
        if ((a->from_sample < 0) == !a->from_model)
            return fprintf(stderr, "soma dissect patch: one of --from-sample J and --from-model MODEL2 is needed\n"), 2;
        if (a->samples > 0 && a->cls >= 0) return fprintf(stderr, "soma dissect patch: --samples and --class exclude each other\n"), 2;
    }
    if (a->select_on && strcmp(a->select_on, "test") && strncmp(a->select_on, "train", 5))
        return fprintf(stderr, "soma dissect: --select-on '%s': expected test, train or train:N\n", a->select_on), 2;
    if (a->select_on && !strncmp(a->select_on, "train", 5)) {
        const char *t = a->select_on + 5;
        char *end;
        long v = *t == ':' ? strtol(t + 1, &end, 10) : 0;
        if ((*t && *t != ':') || (*t == ':' && (end == t + 1 || *end || v < 1)))
            return fprintf(stderr, "soma dissect: --select-on '%s': expected train:N with N >= 1\n", a->select_on), 2;
    }
    char err[256];
    if (soma_dissect_by_parse(a->by, &a->by_method, err, sizeof err)) return fprintf(stderr, "soma dissect: %s\n", err), 2;
    if (cli_dissect_probe_check(a->by_method, a->z, a->l2, a->cand)) return 2;
    if (!strcmp(a->cmd, "ablate") && !a->set)
        return fprintf(stderr, "soma dissect ablate: which neurons? expected POP:I,J,..., class=K or classes\n"), 2;
    return 0;
}

/* "class=K" into *k (K below classes); -1 if text is not of that form. */
static int class_of(const char *text, size_t classes, size_t *k) {
    if (!text || strncmp(text, "class=", 6)) return -1;
    char *end;
    long v = strtol(text + 6, &end, 10);
    if (end == text + 6 || *end || v < 0 || (size_t)v >= classes) {
        fprintf(stderr, "soma dissect: '%s': expected class=K with K from 0 to %zu\n", text, classes - 1);
        return -2;
    }
    *k = (size_t)v;
    return 0;
}

/* patch: no statistics pass; the library does the three passes and the files. */
static int cmd_patch(const args *a, const soma_dissect_ctx *x, const soma_dissect_opts *o) {
    if (a->from_model) /* dissect_compare.c */
        return cli_dissect_patch_from_model(x, o, a->model, a->set, a->from_model, a->samples > 0 ? (size_t)a->samples : 0,
                                            a->cls >= 0 ? (int)a->cls : -1, a->out);
    char err[1024];
    soma_dissect_patch_opts po = {a->set, (size_t)a->from_sample, a->samples > 0 ? (size_t)a->samples : 0,
                                  a->cls >= 0 ? (int)a->cls : -1, NULL, NULL, NULL, NULL};
    soma_dissect_patch *p = NULL;
    int st = soma_dissect_patch_run(x, o, &po, &p, err, sizeof err);
    if (st) {
        fprintf(stderr, "soma dissect patch: %s\n", err);
        return st == SOMA_STATUS_INVALID || st == SOMA_STATUS_NOTFOUND ? 2 : 1;
    }
    printf("%s: patched %s (%zu of %zu neurons) from sample %zu (label %zu, predicted %zu) into %zu targets\n", a->model,
           p->site, p->nneurons, p->site_size, p->source, p->source_label, p->source_pred, p->n);
    printf("  mean effect %.4f (1 = the source's output, 0 = none); %zu of %zu targets changed output\n", p->mean_effect,
           p->changed, p->n);
    printf("  prediction flipped to the source's: %zu of %zu (%.1f%%); patched prediction = source's: %zu\n", p->flips,
           p->flip_candidates, 100.0 * p->flip_fraction, p->to_source);
    st = soma_dissect_write_patch(p, a->model, a->out, err, sizeof err);
    soma_dissect_patch_free(p);
    if (st) return fprintf(stderr, "soma: %s\n", err), 1;
    printf("wrote %s/result.json, patch.png\n", a->out);
    return 0;
}

int cli_dissect(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "prune")) return cli_dissect_prune(argc, argv);
    if (argc >= 2 && (!strcmp(argv[1], "lesion") || !strcmp(argv[1], "stimulate"))) /* simulated circuits */
        return cli_dissect_lesion(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "sparsify")) return cli_dissect_sparsify(argc, argv); /* dissect_sparsify.c */
    if (argc >= 2 && !strcmp(argv[1], "edit")) return cli_dissect_edit(argc, argv); /* dissect_edit.c */
    if (argc >= 2 && !strcmp(argv[1], "compare")) return cli_dissect_compare(argc, argv);   /* dissect_compare.c */
    args a;
    int rc = parse(argc, argv, &a);
    if (rc) return rc == 3 ? 0 : rc;
    char err[1024];
    soma_net *net = NULL;
    soma_data_opts dopt;
    soma_train_opts topt;
    if (soma_model_load(a.model, &net, &dopt, &topt, err, sizeof err)) {
        fprintf(stderr, "soma: %s\n", err);
        return 1;
    }
    if (a.data) snprintf(dopt.dir, sizeof dopt.dir, "%s", a.data);
    topt.threads = a.threads > 0 ? (int)a.threads : 0;
    /* integrated gradients take dF/dx alone: a rate penalty only adds to the
     * training gradient (forward passes are the same without it) */
    if (a.by_method == SOMA_DISSECT_BY_IG || a.by_method == SOMA_DISSECT_BY_IMPACT || !strcmp(a.cmd, "path")) topt.rate_penalty = 0.0f;
    soma_dataset test = {0}, train = {0};
    soma_trainer *tr = NULL;
    soma_dissect_stats *st = NULL, *st_sel = NULL;
    soma_dissect_neuron *set = NULL;
    double *ap = NULL;
    soma_dissect_ablation *res = NULL;
    soma_dissect_neuron **sets = NULL;
    size_t *nset = NULL;
    char (*labels)[32] = NULL;
    const char **lp = NULL;
    size_t nalloc = 0; /* sets[0 .. nalloc) allocated */
    rc = 1;
    int sel_train = a.select_on && !strncmp(a.select_on, "train", 5) && strcmp(a.cmd, "stats") && strcmp(a.cmd, "patch");
    size_t sel_n = sel_train && a.select_on[5] == ':' ? (size_t)strtol(a.select_on + 6, NULL, 10) : 10000;
    if (soma_data_load(&dopt, sel_train ? &train : NULL, &test, err, sizeof err)) { /* the test split (and the train split for --select-on train) */
        fprintf(stderr, "soma: %s\n", err);
        goto done;
    }
    /* a bad class is named before the statistics' pass */
    size_t k = 0;
    int cls = -1, all = a.set && !strcmp(a.set, "classes");
    if (!strcmp(a.cmd, "select")) {
        if (!a.group) {
            fprintf(stderr, "soma dissect select: --group class=K is needed\n");
            rc = 2;
            goto done;
        }
        if ((cls = class_of(a.group, test.classes, &k))) {
            if (cls == -1) fprintf(stderr, "soma dissect: --group '%s': expected class=K\n", a.group);
            rc = 2;
            goto done;
        }
    } else if (!strcmp(a.cmd, "path")) {
        if (a.cls < 0 || (size_t)a.cls >= test.classes) {
            fprintf(stderr, "soma dissect path: --class %ld; expected 0 to %zu\n", a.cls, test.classes - 1);
            rc = 2;
            goto done;
        }
        k = (size_t)a.cls;
    } else if (a.set && (cls = class_of(a.set, test.classes, &k)) == -2) {
        rc = 2;
        goto done;
    }
    if (soma_train_create(&tr, net, &topt, &dopt)) {
        fprintf(stderr, "soma: %s: %s\n", a.model, soma_net_errmsg(net));
        goto done;
    }
    if (cli_mkdirs(a.out)) {
        fprintf(stderr, "soma: cannot create output directory '%s'\n", a.out);
        goto done;
    }
    soma_dissect_ctx x = {tr, net, &dopt, &test};
    soma_dissect_opts o;
    soma_dissect_opts_default(&o);
    o.limit = a.limit > 0 ? (size_t)a.limit : 0, o.batch = (size_t)a.batch, o.topk = (size_t)a.topk;
    o.progress = progress;
    if (!strcmp(a.cmd, "patch")) {
        rc = cmd_patch(&a, &x, &o);
        goto done;
    }
    if (soma_dissect_stats_run(&x, &o, &st, err, sizeof err)) {
        fprintf(stderr, "soma: %s\n", err);
        goto done;
    }
    /* Neurons selected on other samples than those the ablation is measured
     * on (--select-on train): a second statistics pass over the train split. */
    soma_dissect_ctx xs = x;
    soma_dissect_opts os = o;
    const soma_dissect_stats *ss = st;
    if (sel_train) {
        xs.ds = &train;
        os.limit = sel_n;
        fprintf(stderr, "selecting on the train split's first %zu samples\n", sel_n < train.n ? sel_n : train.n);
        if (soma_dissect_stats_run(&xs, &os, &st_sel, err, sizeof err)) {
            fprintf(stderr, "soma: %s\n", err);
            goto done;
        }
        ss = st_sel;
    }
    soma_dissect_info in;
    soma_dissect_stats_info(st, &in);
    size_t C = in.classes, H = soma_dissect_hidden_count(st), cap = H ? H : 1, n = 0;
    double pct = a.top_pct > 0 ? a.top_pct : 1.0; /* default: the top 1 % */
    set = malloc(cap * sizeof *set), ap = malloc(cap * sizeof *ap);
    if (!set || !ap) {
        fprintf(stderr, "soma: out of memory\n");
        goto done;
    }
    printf("%s: %zu samples, accuracy %.2f%%\n", a.model, in.samples, 100.0 * in.accuracy);
    if (!strcmp(a.cmd, "path")) {
        rc = cli_dissect_path(&x, &o, st, a.model, k, a.out);
        goto done;
    }
    if (!strcmp(a.cmd, "stats")) {
        for (size_t q = 0; q < in.pops; q++) {
            soma_dissect_pop p;
            soma_dissect_stats_pop(st, q, &p);
            double m = 0;
            for (size_t i = 0; i < p.size; i++) m += p.rate[i];
            printf("  %-12s %6zu neurons  %s  mean rate %.4f per step  dead %zu  saturated %zu\n", p.name, p.size,
                   p.hidden ? "hidden" : "output", m / (double)p.size, p.dead_count, p.saturated_count);
        }
        if (soma_dissect_write_stats(st, a.model, a.out, err, sizeof err)) goto fail;
        printf("wrote %s/result.json, selectivity.png\n", a.out);
    } else if (!strcmp(a.cmd, "select")) {
        if (cli_dissect_select_by(&xs, &os, ss, a.by_method, k, (size_t)a.top, pct, a.per_pop, a.z, a.l2, a.cand, set, ap, cap, &n,
                                  err, sizeof err))
            goto fail;
        printf("class %zu: %zu neurons selected by %s (best %.4g, last %.4g)\n", k, n, a.by, ap[0], ap[n - 1]);
        if (soma_dissect_write_select_by(st, a.model, a.by_method, k, set, ap, n, a.out, err, sizeof err)) goto fail;
        printf("wrote %s/result.json, %s.png\n", a.out, a.by);
    } else {
        int mode;
        float scale;
        if (soma_dissect_mode_parse(a.mode, &mode, &scale, err, sizeof err)) {
            fprintf(stderr, "soma dissect: %s\n", err);
            rc = 2;
            goto done;
        }
        size_t na = all ? C : 1;
        res = calloc(na, sizeof *res), sets = calloc(na, sizeof *sets), nset = calloc(na, sizeof *nset);
        labels = calloc(na, sizeof *labels), lp = calloc(na, sizeof *lp);
        if (!res || !sets || !nset || !labels || !lp) {
            fprintf(stderr, "soma: out of memory\n");
            goto done;
        }
        for (size_t j = 0; j < na; j++) {
            sets[j] = malloc(cap * sizeof **sets);
            nalloc = j + 1;
            if (!sets[j]) {
                fprintf(stderr, "soma: out of memory\n");
                goto done;
            }
            if (all || cls == 0) {
                size_t c = all ? j : k;
                if (cli_dissect_select_by(&xs, &os, ss, a.by_method, c, (size_t)a.top, pct, a.per_pop, a.z, a.l2, a.cand, sets[j],
                                          NULL, cap, &nset[j], err, sizeof err))
                    goto fail;
                snprintf(labels[j], sizeof labels[j], "class=%zu", c);
            } else {
                if (soma_dissect_set_parse(net, a.set, sets[j], cap, &nset[j], err, sizeof err)) {
                    fprintf(stderr, "soma dissect: %s\n", err);
                    rc = 2;
                    goto done;
                }
                snprintf(labels[j], sizeof labels[j], "%.31s", a.set);
            }
            lp[j] = labels[j];
            fprintf(stderr, "ablating %s (%zu neurons%s%s, %s), %ld random control draw(s)\n", labels[j], nset[j], all || cls == 0 ? " by " : "",
                    all || cls == 0 ? a.by : "", a.mode, a.draws);
            if (soma_dissect_ablate(&x, &o, st, sets[j], nset[j], mode, scale, (size_t)a.draws, (uint64_t)a.seed,
                                    j ? &res[0] : NULL, &res[j], err, sizeof err))
                goto fail;
            if (all || cls == 0) res[j].by = a.by_method, res[j].selected_on_train = sel_train ? (sel_n < train.n ? sel_n : train.n) : 0;
            const soma_dissect_ablation *r = &res[j];
            printf("%-10s %4zu neurons: accuracy %.2f%% -> %.2f%%", labels[j], r->n, 100 * r->acc_before, 100 * r->acc_after);
            if (r->draws) printf(" (random control %.2f%%)", 100 * r->acc_control);
            if (all || cls == 0) {
                size_t c = all ? j : k;
                printf("; class %zu: %.2f%% -> %.2f%%", c, 100 * r->class_before[c], 100 * r->class_after[c]);
                if (r->draws) printf(" (control %.2f%%)", 100 * r->class_control[c]);
            }
            printf("\n");
        }
        if (soma_dissect_write_ablate(st, a.model, res, na, lp, (const soma_dissect_neuron *const *)sets, nset, a.out, err,
                                      sizeof err))
            goto fail;
        printf("wrote %s/result.json, ablate.png\n", a.out);
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "soma: %s\n", err);
    rc = 1;
done:
    for (size_t j = 0; j < nalloc; j++) free(sets[j]);
    free(sets), free(nset), free(labels), free(lp), free(res), free(set), free(ap);
    soma_dissect_stats_free(st);
    soma_dissect_stats_free(st_sel);
    soma_train_free(tr);
    soma_data_free(&test);
    soma_data_free(&train);
    soma_net_free(net);
    return rc;
}
