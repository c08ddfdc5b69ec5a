/* dissect_prune.c — `soma dissect MODEL prune --fraction F[,F2,...] [--by
 * rate|wina|attribution] [--finetune N] [--out DIR]`: remove the
 * lowest-scored fraction of each hidden population's neurons, save the
 * smaller models, and report accuracy, parameters and evaluation speed
 * before and after (docs/dissect.md, "prune"). Parsing, progress and
 * printing only: the work and the files are soma_dissect_prune_*. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

#define MAX_FRACTIONS 32

static void usage(FILE *f) {
    fprintf(f, "usage: soma dissect MODEL prune --fraction F[,F2,...] [--by rate|wina|attribution] [--finetune N]\n"
               "                          [--calib N] [--repeats N] [--data DIR] [--out DIR] [--limit N] [--threads N] [--batch N]\n"
               "  --fraction   share of each hidden population's neurons removed, in [0, 1); several: a sweep\n"
               "  --by         score of a neuron, lowest removed first (default wina)\n"
               "  --finetune   epochs of training of the pruned model on the train split (may be fractional; default 0)\n"
               "  --calib      training samples the scores are computed on (default 5000; 0 = all)\n"
               "  --repeats    timed test-set evaluations per model, median reported (default 3)\n"
               "  --limit      test samples evaluated (default all)\n");
}

static int progress(void *user, const char *phase, size_t done, size_t total) {
    (void)user;
    fprintf(stderr, "\r  %-8s %zu/%zu", phase, done, total);
    if (done >= total) fprintf(stderr, "\n");
    return 0;
}

/* "0.25,0.5" into fr[0..*n). */
static int parse_fractions(const char *text, double *fr, size_t *n) {
    *n = 0;
    const char *p = text;
    while (p && *p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || (*end && *end != ',') || !(v >= 0 && v < 1) || *n == MAX_FRACTIONS) {
            fprintf(stderr, "soma dissect prune: --fraction '%s': expected up to %d fractions in [0, 1), e.g. 0.5 or 0.25,0.5,0.75\n",
                    text, MAX_FRACTIONS);
            return 2;
        }
        fr[(*n)++] = v;
        p = *end ? end + 1 : end;
    }
    if (!*n) return fprintf(stderr, "soma dissect prune: --fraction F is needed (e.g. --fraction 0.5)\n"), 2;
    return 0;
}

int cli_dissect_prune(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *out = "runs/dissect", *by = "wina", *fractions = NULL;
    long limit = 0, threads = 0, batch = 256, calib = 5000, repeats = 3;
    double ft = 0;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **str = !strcmp(o, "--data") ? &data : !strcmp(o, "--out") ? &out : !strcmp(o, "--by") ? &by
                         : !strcmp(o, "--fraction") ? &fractions : NULL;
        long *num = !strcmp(o, "--limit") ? &limit : !strcmp(o, "--threads") ? &threads : !strcmp(o, "--batch") ? &batch
                  : !strcmp(o, "--calib") ? &calib : !strcmp(o, "--repeats") ? &repeats : NULL;
        if (str) {
            if (!v) return fprintf(stderr, "soma dissect prune: %s needs a value\n", o), 2;
            *str = v, i++;
        } else if (num) {
            long lo = num == &calib || num == &limit ? 0 : 1, hi = num == &repeats ? 64 : 1L << 40;
            if ((*num = cli_long(o, v, lo, hi)) < 0) return 2;
            i++;
        } else if (!strcmp(o, "--finetune")) {
            char *end;
            ft = v ? strtod(v, &end) : -1;
            if (!v || *end || !(ft >= 0 && ft <= 1000))
                return fprintf(stderr, "soma dissect prune: --finetune '%s': expected epochs from 0 to 1000 (e.g. 1 or 0.5)\n", v ? v : ""), 2;
            i++;
        } else if (!strcmp(o, "--help") || !strcmp(o, "-h")) return usage(stdout), 0;
        else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "soma dissect prune: unknown option '%s'\n", o);
            return usage(stderr), 2;
        } else if (!model) model = o;
        else if (strcmp(o, "prune")) return fprintf(stderr, "soma dissect prune: unexpected argument '%s'\n", o), 2;
    }
    double fr[MAX_FRACTIONS];
    size_t nfr = 0;
    int score;
    char err[1024];
    if (!model) return usage(stderr), 2;
    if (!fractions) return fprintf(stderr, "soma dissect prune: --fraction F is needed (e.g. --fraction 0.5)\n"), 2;
    if (parse_fractions(fractions, fr, &nfr)) return 2;
    if (soma_dissect_score_parse(by, &score, err, sizeof err)) return fprintf(stderr, "soma dissect prune: %s\n", err), 2;

    soma_net *net = NULL;
    soma_data_opts dopt;
    soma_train_opts topt;
    if (soma_model_load(model, &net, &dopt, &topt, err, sizeof err)) return fprintf(stderr, "soma: %s\n", err), 1;
    soma_data_opts saved_d = dopt;
    soma_train_opts saved_t = topt;
    if (data) snprintf(dopt.dir, sizeof dopt.dir, "%s", data);
    topt.threads = (int)threads;
    soma_dataset train = {0}, test = {0};
    soma_trainer *tr = NULL;
    soma_dissect_prune_result *res = calloc(nfr, sizeof *res);
    int rc = 1;
    if (!res) {
        fprintf(stderr, "soma: out of memory\n");
        goto done;
    }
    if (soma_data_load(&dopt, &train, &test, err, sizeof err)) {
        fprintf(stderr, "soma: %s\n", err);
        goto done;
    }
    if (soma_train_create(&tr, net, &topt, &dopt)) {
        fprintf(stderr, "soma: %s: %s\n", model, soma_net_errmsg(net));
        goto done;
    }
    if (cli_mkdirs(out)) {
        fprintf(stderr, "soma: cannot create output directory '%s'\n", out);
        goto done;
    }
    soma_dissect_ctx x = {tr, net, &dopt, &test};
    soma_dissect_opts o;
    soma_dissect_opts_default(&o);
    o.limit = (size_t)limit, o.batch = (size_t)batch, o.progress = progress;
    soma_dissect_prune_opts po;
    soma_dissect_prune_opts_default(&po);
    po.fractions = fr, po.nfractions = nfr, po.score = score, po.finetune = ft, po.train = &train;
    po.calib = (size_t)calib, po.repeats = (size_t)repeats, po.dir = out, po.save_data = &saved_d, po.save_train = &saved_t;
    fprintf(stderr, "pruning %s by %s: fractions %s, scores on %ld training samples, fine-tuning %g epoch(s)\n", model, by,
            fractions, calib, ft);
    if (soma_dissect_prune_run(&x, &o, &po, res, err, sizeof err)) {
        fprintf(stderr, "soma dissect prune: %s\n", err);
        goto done;
    }
    printf("%s: pruned by %s; test accuracy and evaluation speed (median of %ld, batch %zu, %d threads)\n", model, by,
           repeats, soma_train_options(tr)->batch, soma_train_options(tr)->threads);
    printf("  dense: %zu hidden neurons, %zu parameters, accuracy %.2f%%, %.0f samples/s\n", res[0].hidden_before,
           res[0].params_before, 100 * res[0].acc_before, res[0].sps_before);
    for (size_t k = 0; k < nfr; k++) {
        const soma_dissect_prune_result *r = &res[k];
        printf("  fraction %g: %zu hidden neurons, %zu parameters (%.1f%%), accuracy %.2f%% pruned", r->fraction,
               r->hidden_after, r->params_after, 100.0 * (double)r->params_after / (double)r->params_before,
               100 * r->acc_pruned);
        if (!isnan(r->acc_finetuned)) printf(", %.2f%% fine-tuned", 100 * r->acc_finetuned);
        printf(", %.0f samples/s (%.2fx)\n", r->sps_after, r->sps_after / r->sps_before);
    }
    if (soma_dissect_write_prune(&po, res, model, out, err, sizeof err)) {
        fprintf(stderr, "soma: %s\n", err);
        goto done;
    }
    printf("wrote %s/result.json%s and the pruned model(s) (%s)\n", out, nfr > 1 ? ", prune.png" : "", res[0].pruned_path);
    rc = 0;
done:
    free(res);
    soma_train_free(tr);
    soma_data_free(&train);
    soma_data_free(&test);
    soma_net_free(net);
    return rc;
}
