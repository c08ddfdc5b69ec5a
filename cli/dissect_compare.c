/* dissect_compare.c — two models in `soma dissect`: `MODEL compare MODEL2`
 * (per-neuron RMS difference of pooled activations, soma_dissect_compare_*)
 * and the second model of `MODEL patch SITE --from-model MODEL2`. Parsing,
 * loading, progress and printing only. */
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: soma dissect MODEL compare MODEL2 [--top N] [--data DIR] [--out DIR] [--limit N] [--threads N] [--batch N]\n"
               "  per-neuron RMS over samples of the difference of pooled activations (sum over steps) between\n"
               "  MODEL and MODEL2 on MODEL's test samples (same populations and sizes, same encoding)\n");
}

static int progress(void *user, const char *phase, size_t done, size_t total) {
    (void)user;
    fprintf(stderr, "\r  %-8s %zu/%zu samples", phase, done, total);
    if (done == total) fprintf(stderr, "\n");
    return 0;
}

/* Load MODEL2 and build its trainer (threads as the first model's). */
static int load_second(const char *path, int threads, soma_net **net, soma_data_opts *d, soma_trainer **tr) {
    char err[1024];
    soma_train_opts to;
    if (soma_model_load(path, net, d, &to, err, sizeof err)) return fprintf(stderr, "soma: %s\n", err), 1;
    to.threads = threads;
    if (soma_train_create(tr, *net, &to, d)) return fprintf(stderr, "soma: %s: %s\n", path, soma_net_errmsg(*net)), 1;
    return 0;
}

int cli_dissect_patch_from_model(const soma_dissect_ctx *x, const soma_dissect_opts *o, const char *model, const char *site,
                                 const char *model2, size_t samples, int cls, const char *out) {
    soma_net *net2 = NULL;
    soma_trainer *tr2 = NULL;
    soma_data_opts d2;
    soma_dissect_patch *p = NULL;
    char err[1024];
    int rc = 1;
    if (load_second(model2, soma_train_options(x->tr)->threads, &net2, &d2, &tr2)) goto done;
    soma_dissect_ctx y = {tr2, net2, &d2, NULL};
    soma_dissect_patch_opts po = {site, 0, samples, cls, NULL, NULL, &y, model2};
    int st = soma_dissect_patch_run(x, o, &po, &p, err, sizeof err);
    if (st) {
        fprintf(stderr, "soma dissect patch: %s\n", err);
        rc = st == SOMA_STATUS_INVALID || st == SOMA_STATUS_NOTFOUND ? 2 : 1;
        goto done;
    }
    printf("%s: patched %s (%zu of %zu neurons) from %s on each of %zu targets (accuracy %.2f%% there)\n", model, p->site,
           p->nneurons, p->site_size, model2, p->n, 100.0 * p->accuracy_source);
    printf("  mean effect %.4f (1 = %s's output, 0 = none); %zu of %zu targets changed output\n", p->mean_effect, model2,
           p->changed, p->n);
    printf("  prediction flipped to %s's: %zu of %zu (%.1f%%); patched prediction = its: %zu\n", model2, p->flips,
           p->flip_candidates, 100.0 * p->flip_fraction, p->to_source);
    if (soma_dissect_write_patch(p, model, out, err, sizeof err)) {
        fprintf(stderr, "soma: %s\n", err);
        goto done;
    }
    printf("wrote %s/result.json, patch.png\n", out);
    rc = 0;
done:
    soma_dissect_patch_free(p);
    soma_train_free(tr2);
    soma_net_free(net2);
    return rc;
}

int cli_dissect_compare(int argc, char **argv) {
    const char *model = NULL, *model2 = NULL, *data = NULL, *out = "runs/dissect";
    long limit = -1, threads = -1, batch = 256, top = 20;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **str = !strcmp(o, "--data") ? &data : !strcmp(o, "--out") ? &out : NULL;
        long *num = !strcmp(o, "--limit") ? &limit : !strcmp(o, "--threads") ? &threads : !strcmp(o, "--batch") ? &batch
                  : !strcmp(o, "--top") ? &top : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) return usage(stdout), 0;
        if (str || num) {
            if (!v) return fprintf(stderr, "soma dissect compare: %s needs a value\n", o), 2;
            if (str) *str = v;
            else if ((*num = cli_long(o, v, 1, 1L << 40)) < 0) return 2;
            i++;
        } else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "soma dissect compare: unknown option '%s'\n", o);
            return usage(stderr), 2;
        } else if (!model) model = o;
        else if (i == 1 && !strcmp(o, "compare")) continue;
        else if (!model2) model2 = o;
        else return fprintf(stderr, "soma dissect compare: unexpected argument '%s'\n", o), 2;
    }
    if (!model || !model2) return fprintf(stderr, "soma dissect compare: which second model? expected MODEL compare MODEL2\n"), 2;
    char err[1024];
    soma_net *net = NULL, *net2 = NULL;
    soma_data_opts dopt, d2;
    soma_train_opts topt;
    soma_dataset test = {0};
    soma_trainer *tr = NULL, *tr2 = NULL;
    soma_dissect_compare *c = NULL;
    int rc = 1;
    if (soma_model_load(model, &net, &dopt, &topt, err, sizeof err)) return fprintf(stderr, "soma: %s\n", err), 1;
    if (data) snprintf(dopt.dir, sizeof dopt.dir, "%s", data);
    topt.threads = threads > 0 ? (int)threads : 0;
    if (load_second(model2, topt.threads, &net2, &d2, &tr2)) goto done;
    if (soma_data_load(&dopt, NULL, &test, err, sizeof err)) {
        fprintf(stderr, "soma: %s\n", err);
        goto done;
    }
    if (soma_train_create(&tr, net, &topt, &dopt)) {
        fprintf(stderr, "soma: %s: %s\n", model, soma_net_errmsg(net));
        goto done;
    }
    soma_dissect_ctx x = {tr, net, &dopt, &test}, y = {tr2, net2, &d2, NULL};
    int st = soma_dissect_compare_check(&x, &y, err, sizeof err);
    if (st) {
        fprintf(stderr, "soma dissect compare: %s (%s)\n", err, model2);
        rc = 2;
        goto done;
    }
    if (cli_mkdirs(out)) {
        fprintf(stderr, "soma: cannot create output directory '%s'\n", out);
        goto done;
    }
    soma_dissect_opts o;
    soma_dissect_opts_default(&o);
    o.limit = limit > 0 ? (size_t)limit : 0, o.batch = (size_t)batch, o.progress = progress;
    if ((st = soma_dissect_compare_run(&x, &y, &o, (size_t)top, &c, err, sizeof err))) {
        fprintf(stderr, "soma dissect compare: %s\n", err);
        goto done;
    }
    printf("%s vs %s: %zu samples, accuracy %.2f%% vs %.2f%%\n", model, model2, c->samples, 100.0 * c->accuracy,
           100.0 * c->accuracy2);
    for (size_t k = 0; k < c->npops; k++)
        printf("  %-12s %6zu neurons  %s  mean RMS %.4g\n", c->pops[k].name, c->pops[k].size,
               c->pops[k].hidden ? "hidden" : "output", c->pops[k].mean_rms);
    printf("  top %zu by RMS:", c->ntop);
    for (size_t j = 0; j < c->ntop && j < 10; j++) {
        soma_pop_info pi;
        soma_net_pop_info(net, c->top[j].pop, &pi);
        printf(" %s[%zu] %.4g", pi.name, c->top[j].index, c->top_rms[j]);
    }
    printf("%s\n", c->ntop > 10 ? " ..." : "");
    if (soma_dissect_write_compare(c, model, model2, out, err, sizeof err)) {
        fprintf(stderr, "soma: %s\n", err);
        goto done;
    }
    printf("wrote %s/result.json, compare.png\n", out);
    rc = 0;
done:
    soma_dissect_compare_free(c);
    soma_train_free(tr), soma_train_free(tr2);
    soma_data_free(&test);
    soma_net_free(net), soma_net_free(net2);
    return rc;
}
