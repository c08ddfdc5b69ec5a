/* dissect_sparsify.c — `soma dissect MODEL sparsify --method wina|teal|topk
 * --sparsity S[,S2,...] [--site FROM->TO ...]`: parsing, progress and the
 * printed table; the work and the files are soma_dissect_sparsify_*. */
#include <stdlib.h>
#include <string.h>
#include "cli.h"

#define MAX_LIST 32

static void usage(FILE *f) {
    fprintf(f, "usage: soma dissect MODEL sparsify --method wina|teal|topk[,...] --sparsity S[,S2,...]\n"
               "                          [--site FROM->TO ...] [--calib N] [--repeats R] [--sparse-max D]\n"
               "                          [--data DIR] [--out DIR] [--limit N] [--threads N] [--batch N]\n");
}

static int progress(void *user, const char *phase, size_t done, size_t total) {
    (void)user;
    fprintf(stderr, "\r  %-9s %zu/%zu", phase, done, total);
    if (done == total) fprintf(stderr, "\n");
    return 0;
}

/* "a,b,c" into up to MAX_LIST items of list (copies in buf). */
static size_t split(char *buf, char **list) {
    size_t n = 0;
    for (char *p = strtok(buf, ","); p && n < MAX_LIST; p = strtok(NULL, ",")) list[n++] = p;
    return n;
}

int cli_dissect_sparsify(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *out = "runs/dissect", *meth = NULL, *spars = NULL;
    const char *sites[MAX_LIST];
    size_t nsites = 0;
    long limit = -1, threads = -1, batch = 256, calib = 1000, repeats = 3;
    double smax = SOMA_TRAIN_MASK_SPARSE_DEFAULT; /* --sparse-max: the trainer's sparse-product threshold */
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **str = !strcmp(o, "--data") ? &data : !strcmp(o, "--out") ? &out : !strcmp(o, "--method") ? &meth
                          : !strcmp(o, "--sparsity") ? &spars : NULL;
        long *num = !strcmp(o, "--limit") ? &limit : !strcmp(o, "--threads") ? &threads : !strcmp(o, "--batch") ? &batch
                  : !strcmp(o, "--calib") ? &calib : !strcmp(o, "--repeats") ? &repeats : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) return usage(stdout), 0;
        if (!strcmp(o, "--sparse-max")) {
            char *end;
            smax = v ? strtod(v, &end) : -2;
            if (!v || *end || !(smax >= 0.0 && smax <= 1.0))
                return fprintf(stderr, "soma dissect sparsify: --sparse-max '%s': expected a density from 0 (the dense "
                                       "product) to 1 (the sparse product whenever masked)\n", v ? v : ""), 2;
            i++;
            continue;
        }
        if (str || num || !strcmp(o, "--site")) {
            if (!v) return fprintf(stderr, "soma dissect sparsify: %s needs a value\n", o), 2;
            if (str) *str = v;
            else if (num) {
                if ((*num = cli_long(o, v, num == &repeats ? 0 : 1, 1L << 40)) < 0) return 2;
            } else {
                if (nsites == MAX_LIST) return fprintf(stderr, "soma dissect sparsify: at most %d --site\n", MAX_LIST), 2;
                sites[nsites++] = v;
            }
            i++;
        } else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "soma dissect sparsify: unknown option '%s'\n", o);
            return usage(stderr), 2;
        } else if (!model) model = o;
        else if (strcmp(o, "sparsify")) return fprintf(stderr, "soma dissect sparsify: unexpected argument '%s'\n", o), 2;
    }
    if (!model) return usage(stderr), 2;
    if (!meth) return fprintf(stderr, "soma dissect sparsify: --method wina|teal|topk is needed (a list: wina,teal)\n"), 2;
    if (!spars) return fprintf(stderr, "soma dissect sparsify: --sparsity S[,S2,...] is needed (fractions in [0, 1))\n"), 2;
    char mbuf[256], sbuf[512], err[1024];
    char *ml[MAX_LIST], *sl[MAX_LIST];
    snprintf(mbuf, sizeof mbuf, "%s", meth);
    snprintf(sbuf, sizeof sbuf, "%s", spars);
    size_t nm = split(mbuf, ml), ns = split(sbuf, sl);
    int methods[MAX_LIST];
    double sp[MAX_LIST];
    int teal = 0;
    for (size_t m = 0; m < nm; m++) {
        if (soma_sparsify_method_parse(ml[m], &methods[m], err, sizeof err))
            return fprintf(stderr, "soma dissect sparsify: --method: %s\n", err), 2;
        teal |= methods[m] == SOMA_SPARSIFY_TEAL;
    }
    for (size_t q = 0; q < ns; q++) {
        char *end;
        sp[q] = strtod(sl[q], &end);
        if (end == sl[q] || *end || !(sp[q] >= 0.0 && sp[q] < 1.0))
            return fprintf(stderr, "soma dissect sparsify: --sparsity '%s': expected fractions in [0, 1), e.g. 0.5,0.7\n",
                           sl[q]), 2;
    }
    if (!nm || !ns) return fprintf(stderr, "soma dissect sparsify: empty --method or --sparsity list\n"), 2;

    soma_net *net = NULL;
    soma_data_opts dopt;
    soma_train_opts topt;
    if (soma_model_load(model, &net, &dopt, &topt, err, sizeof err)) return fprintf(stderr, "soma: %s\n", err), 1;
    if (data) snprintf(dopt.dir, sizeof dopt.dir, "%s", data);
    topt.threads = threads > 0 ? (int)threads : 0;
    soma_dataset train = {0}, test = {0};
    soma_trainer *tr = NULL;
    soma_dissect_sparsify *res = NULL;
    int rc = 1;
    if (soma_data_load(&dopt, teal ? &train : NULL, &test, err, sizeof err)) {
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
    o.limit = limit > 0 ? (size_t)limit : 0, o.batch = (size_t)batch, o.progress = progress;
    soma_dissect_sparsify_opts so;
    soma_dissect_sparsify_opts_default(&so);
    so.methods = methods, so.nmethods = nm, so.sparsity = sp, so.nsparsity = ns;
    so.sites = sites, so.nsites = nsites;
    so.calib = teal ? &train : NULL, so.calib_limit = (size_t)calib, so.repeats = (size_t)repeats;
    so.sparse_max = smax;
    int st = soma_dissect_sparsify_run(&x, &o, &so, &res, err, sizeof err);
    if (st) {
        fprintf(stderr, "soma dissect sparsify: %s\n", err);
        rc = st == SOMA_STATUS_INVALID || st == SOMA_STATUS_NOTFOUND ? 2 : 1;
        goto done;
    }
    printf("%s: %zu samples, %zu step(s), sites:", model, res->samples, res->steps);
    for (size_t i = 0; i < res->nsites; i++) printf(" %s", res->sites[i]);
    printf("\n  dense: accuracy %.2f%%, inputs already zero %.1f%%, eval %.4f s (median of %zu, batch %zu, %d thread(s))\n",
           100 * res->dense_accuracy, 100 * res->dense_sparsity, res->dense_eval_s, res->repeats, res->batch,
           res->threads);
    printf("  %-6s %8s %10s %8s %10s %10s %9s %8s %7s\n", "method", "sparsity", "accuracy", "drop", "achieved",
           "rel.error", "eval (s)", "speedup", "sparse");
    for (size_t c = 0; c < res->nrows; c++) {
        const soma_dissect_sparsify_row *w = &res->rows[c];
        printf("  %-6s %8.3g %9.2f%% %8.2f %9.1f%% %10.4f %9.4f %7.2fx %6.0f%%\n", soma_sparsify_method_name(w->method),
               w->sparsity, 100 * w->accuracy, 100 * (res->dense_accuracy - w->accuracy), 100 * w->achieved,
               w->rel_error, w->eval_s, w->speedup, 100 * w->sparse_path);
    }
    if (soma_dissect_write_sparsify(res, model, out, err, sizeof err)) {
        fprintf(stderr, "soma: %s\n", err);
        goto done;
    }
    printf("wrote %s/result.json, sparsify.png\n", out);
    rc = 0;
done:
    soma_dissect_sparsify_free(res);
    soma_train_free(tr);
    soma_data_free(&train);
    soma_data_free(&test);
    soma_net_free(net);
    return rc;
}
