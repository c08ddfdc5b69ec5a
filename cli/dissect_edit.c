/* dissect_edit.c — `soma dissect MODEL edit --neurons SET --group class=K
 * [--goal suppress|enhance] [--epochs N] [--lr X]`: fine-tune only the
 * chosen neurons (the rest frozen) to lower or raise class K's accuracy,
 * report every class's test accuracy before and after and the parameters
 * that changed, and save OUT/edited.soma (docs/dissect.md, "edit").
 * Parsing, progress and printing only: the work and the files are
 * soma_dissect_edit_*. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: soma dissect MODEL edit --neurons POP:I,J,...[+POP2:...] --group class=K [--goal suppress|enhance]\n"
               "                          [--epochs N] [--lr X] [--weight W] [--train-limit N] [--seed S]\n"
               "                          [--data DIR] [--out DIR] [--limit N] [--threads N] [--batch N]\n"
               "  --neurons      the neurons trained (everything else frozen), e.g. from `soma dissect MODEL select`\n"
               "  --group        class=K, the class whose accuracy is targeted\n"
               "  --goal         suppress (K's training samples relabelled to other classes) or enhance (K's samples\n"
               "                 weighted up); default suppress\n"
               "  --epochs       passes over the training split (default 1); --lr the learning rate (default the model's)\n"
               "  --weight       enhance: repeats of each class-K sample per epoch (default 4)\n"
               "  --train-limit  the training split's first N samples (default all); --limit: test samples (default all)\n");
}

static int progress(void *user, const char *phase, size_t done, size_t total) {
    (void)user;
    fprintf(stderr, "\r  %-8s %zu/%zu", phase, done, total);
    if (done >= total) fprintf(stderr, "\n");
    return 0;
}

int cli_dissect_edit(int argc, char **argv) {
    const char *model = NULL, *data = NULL, *out = "runs/dissect", *neurons = NULL, *group = NULL, *goal_s = "suppress";
    long limit = 0, threads = 0, batch = 256, epochs = 1, weight = 4, train_limit = 0, seed = 1;
    double lr = 0;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **str = !strcmp(o, "--data") ? &data : !strcmp(o, "--out") ? &out : !strcmp(o, "--neurons") ? &neurons
                         : !strcmp(o, "--group") ? &group : !strcmp(o, "--goal") ? &goal_s : NULL;
        long *num = !strcmp(o, "--limit") ? &limit : !strcmp(o, "--threads") ? &threads : !strcmp(o, "--batch") ? &batch
                  : !strcmp(o, "--epochs") ? &epochs : !strcmp(o, "--weight") ? &weight
                  : !strcmp(o, "--train-limit") ? &train_limit : !strcmp(o, "--seed") ? &seed : NULL;
        if (str) {
            if (!v) return fprintf(stderr, "soma dissect edit: %s needs a value\n", o), 2;
            *str = v, i++;
        } else if (num) {
            long lo = num == &limit || num == &train_limit || num == &seed || num == &threads ? 0 : 1;
            long hi = num == &epochs ? 1000 : num == &weight ? 1000 : 1L << 40;
            if ((*num = cli_long(o, v, lo, hi)) < 0) return 2;
            i++;
        } else if (!strcmp(o, "--lr")) {
            char *end;
            lr = v ? strtod(v, &end) : -1;
            if (!v || *end || !(lr > 0 && lr < 1e6))
                return fprintf(stderr, "soma dissect edit: --lr '%s': expected a learning rate > 0 (e.g. 1e-3)\n", v ? v : ""), 2;
            i++;
        } else if (!strcmp(o, "--help") || !strcmp(o, "-h")) return usage(stdout), 0;
        else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "soma dissect edit: unknown option '%s'\n", o);
            return usage(stderr), 2;
        } else if (!model) model = o;
        else if (strcmp(o, "edit")) return fprintf(stderr, "soma dissect edit: unexpected argument '%s'\n", o), 2;
    }
    char err[1024];
    int goal;
    if (!model) return usage(stderr), 2;
    if (!neurons) return fprintf(stderr, "soma dissect edit: --neurons POP:I,J,... is needed (e.g. --neurons hidden:3,17)\n"), 2;
    if (!group || strncmp(group, "class=", 6) || !group[6] || strspn(group + 6, "0123456789") != strlen(group + 6))
        return fprintf(stderr, "soma dissect edit: --group '%s': expected class=K (e.g. class=3)\n", group ? group : ""), 2;
    size_t cls = (size_t)strtoul(group + 6, NULL, 10);
    if (soma_dissect_goal_parse(goal_s, &goal, err, sizeof err)) return fprintf(stderr, "soma dissect edit: %s\n", err), 2;

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
    soma_dissect_neuron *set = NULL;
    size_t n = 0, cap = 0, P = soma_net_pop_count(net);
    int rc = 1;
    for (size_t p = 0; p < P; p++) {
        soma_pop_info pi;
        if (!soma_net_pop_info(net, p, &pi)) cap += pi.size;
    }
    if (!(set = malloc((cap ? cap : 1) * sizeof *set))) {
        fprintf(stderr, "soma: out of memory\n");
        goto done;
    }
    if (soma_dissect_set_parse(net, neurons, set, cap, &n, err, sizeof err)) {
        fprintf(stderr, "soma dissect edit: --neurons: %s\n", err);
        rc = 2;
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
    char path[4096];
    snprintf(path, sizeof path, "%s/edited.soma", out);
    soma_dissect_ctx x = {tr, net, &dopt, &test};
    soma_dissect_opts o;
    soma_dissect_opts_default(&o);
    o.limit = (size_t)limit, o.batch = (size_t)batch, o.progress = progress;
    soma_dissect_edit_opts eo;
    soma_dissect_edit_opts_default(&eo);
    eo.set = set, eo.n = n, eo.cls = cls, eo.goal = goal, eo.epochs = (int)epochs, eo.lr = lr, eo.weight = (size_t)weight;
    eo.train = &train, eo.train_limit = (size_t)train_limit, eo.seed = (uint64_t)seed, eo.path = path;
    eo.save_data = &saved_d, eo.save_train = &saved_t;
    soma_dissect_edit_result r;
    fprintf(stderr, "editing %s: %zu neuron(s), goal %s class %zu, %ld epoch(s) on %zu training samples\n", model, n, goal_s,
            cls, epochs, train_limit && (size_t)train_limit < train.n ? (size_t)train_limit : train.n);
    if (soma_dissect_edit_run(&x, &o, &eo, &r, err, sizeof err)) {
        fprintf(stderr, "soma dissect edit: %s\n", err);
        goto done;
    }
    printf("%s: %s class %zu by training %zu neuron(s) (%zu of %zu parameters learn; %zu changed, 0 outside the set)\n",
           model, goal_s, cls, n, r.params_selected, r.params_total, r.params_changed);
    printf("  class %zu: %.2f%% -> %.2f%% (%+.2f points)\n", cls, 100 * r.target_before, 100 * r.target_after,
           100 * (r.target_after - r.target_before));
    printf("  other classes: mean |change| %.2f points\n", 100 * r.others_mean_abs_change);
    for (size_t c = 0; c < r.classes; c++)
        if (c != cls) printf("    class %zu: %.2f%% -> %.2f%%\n", c, 100 * r.class_before[c], 100 * r.class_after[c]);
    printf("  overall: %.2f%% -> %.2f%%\n", 100 * r.acc_before, 100 * r.acc_after);
    if (soma_dissect_write_edit(&eo, &r, net, model, out, err, sizeof err)) {
        fprintf(stderr, "soma: %s\n", err);
        goto done;
    }
    printf("wrote %s/result.json, %s/edit.png, %s\n", out, out, path);
    rc = 0;
done:
    free(set);
    soma_train_free(tr);
    soma_data_free(&train);
    soma_data_free(&test);
    soma_net_free(net);
    return rc;
}
