/* sim_model.c — `soma sim MODEL.soma` (a trained model) or `soma sim
 * FILE.yaml` whose network has an input population (its weights drawn from
 * the training seed): the network in the event-driven simulator, fed the
 * test set through the trainer's encoders, sample by sample; its output
 * spike counts are set beside the trainer's (soma eval) on the same samples. */
#include <stdlib.h>
#include <string.h>
#include "cli.h"

static int is_model(const char *f) { return strlen(f) > 5 && !strcmp(f + strlen(f) - 5, ".soma"); }

/* soma sim's FILE: the first argument that is neither an option nor an option's value. */
static const char *sim_file(int argc, char **argv) {
    static const char *const valued[] = {"--time", "--warmup", "--out", "--write-connectivity", "--threads", "--seed",
                                         "--set", "--param", "--data", "--encoding", "--steps", "--limit", NULL};
    for (int i = 0; i < argc; i++) {
        if (argv[i][0] == '-') {
            for (size_t k = 0; valued[k]; k++)
                if (!strcmp(argv[i], valued[k])) i++;
            continue;
        }
        return argv[i];
    }
    return NULL;
}

int cli_sim_dataset_file(int argc, char **argv) {
    const char *f = sim_file(argc, argv);
    if (!f) return 0;
    if (is_model(f)) return 1;
    soma_net *net = NULL;
    char err[256];
    if (soma_net_load_yaml(f, NULL, 0, &net, NULL, NULL, NULL, err, sizeof err)) return 0; /* cli_sim reports it */
    int found = 0;
    for (size_t p = 0; p < soma_net_pop_count(net); p++) {
        soma_pop_info info;
        soma_net_pop_info(net, p, &info);
        found |= !strcmp(info.model, "input");
    }
    soma_net_free(net);
    return found;
}

int cli_sim_model(int argc, char **argv) {
    const char *model = NULL, *data_dir = NULL, *enc = NULL;
    long threads = 1, limit = 100, steps = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--data") || !strcmp(a, "--encoding")) {
            if (!v) {
                fprintf(stderr, "soma sim: %s needs a value\n", a);
                return 2;
            }
            if (a[2] == 'd') data_dir = v;
            else enc = v;
            i++;
        } else if (!strcmp(a, "--threads")) {
            if ((threads = cli_long(a, v, 1, 256)) < 0) return 2;
            i++;
        } else if (!strcmp(a, "--limit")) {
            if ((limit = cli_long(a, v, 1, 1L << 30)) < 0) return 2;
            i++;
        } else if (!strcmp(a, "--steps")) {
            if ((steps = cli_long(a, v, 1, 100000)) < 0) return 2;
            i++;
        } else if (a[0] == '-') {
            fprintf(stderr, "soma sim: unknown option '%s' for a model file; expected --data, --encoding, --steps, --limit, --threads\n", a);
            return 2;
        } else if (!model) model = a;
        else {
            fprintf(stderr, "soma sim: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    char err[1024];
    soma_net *net = NULL;
    soma_data_opts d;
    soma_train_opts t;
    if (is_model(model) ? soma_model_load(model, &net, &d, &t, err, sizeof err)
                        : soma_net_load_yaml(model, NULL, 0, &net, &d, &t, NULL, err, sizeof err)) {
        fprintf(stderr, "soma: %s\n", err);
        return 1;
    }
    /* A network file's weights are drawn as the trainer draws them. */
    if (!is_model(model) && soma_net_init_weights(net, t.seed)) {
        fprintf(stderr, "soma: %s: %s\n", model, soma_net_errmsg(net));
        soma_net_free(net);
        return 1;
    }
    if (data_dir) snprintf(d.dir, sizeof d.dir, "%s", data_dir);
    if (steps > 0) d.steps = (int)steps;
    if (enc && (d.encoding = soma_encoding_find(enc)) < 0) {
        fprintf(stderr, "soma sim: unknown encoding '%s'; expected direct, rate, latency, delta or sequence\n", enc);
        soma_net_free(net);
        return 2;
    }
    d.limit_test = (size_t)limit;
    t.threads = (int)threads;
    soma_dataset test = {0};
    soma_trainer *tr = NULL;
    size_t n = 0, C = 0, *idx = NULL, out = soma_net_pop_count(net) - 1;
    uint32_t *sim = NULL, *ref = NULL;
    int rc = 1;
    if (soma_data_load(&d, NULL, &test, err, sizeof err)) {
        fprintf(stderr, "soma: %s\n", err);
        goto done;
    }
    soma_pop_info info;
    soma_net_pop_info(net, out, &info);
    n = test.n < (size_t)limit ? test.n : (size_t)limit;
    C = info.size;
    idx = malloc(n * sizeof *idx);
    sim = calloc(n * C, sizeof *sim);
    ref = calloc(n * C, sizeof *ref);
    if (!idx || !sim || !ref) {
        fprintf(stderr, "soma: out of memory\n");
        goto done;
    }
    for (size_t k = 0; k < n; k++) idx[k] = k;
    double t0 = soma_clock_seconds();
    if (soma_sim_run_samples(net, &d, &test, idx, n, t.seed, (int)threads, sim, err, sizeof err)) {
        fprintf(stderr, "soma: %s: %s\n", model, err);
        goto done;
    }
    double secs = soma_clock_seconds() - t0;
    if (soma_train_create(&tr, net, &t, &d) || soma_train_count_samples(tr, &test, idx, n, out, ref)) {
        fprintf(stderr, "soma: %s: %s\n", model, tr ? soma_train_errmsg(tr) : soma_net_errmsg(net));
        goto done;
    }
    size_t same = 0, correct = 0;
    unsigned long long diff = 0, total = 0;
    for (size_t k = 0; k < n; k++) {
        int eq = 1;
        size_t best = 0;
        for (size_t c = 0; c < C; c++) {
            uint32_t a = sim[k * C + c], b = ref[k * C + c];
            eq &= a == b;
            diff += a > b ? a - b : b - a;
            total += b;
            if (a > sim[k * C + best]) best = c;
        }
        same += (size_t)eq;
        correct += best == test.y[k];
    }
    printf("simulated %zu test samples of %s (%s encoding, T = %d) in %.2f s: accuracy %.2f%% by output spike counts\n",
           n, d.dataset, soma_encoding_name(d.encoding), d.steps, secs, 100.0 * (double)correct / (double)n);
    printf("against the trainer (soma eval) on the same samples: %zu of %zu with identical output counts; %llu of %llu "
           "output spikes differ\n",
           same, n, diff, total);
    rc = 0;
done:
    soma_train_free(tr);
    soma_data_free(&test);
    soma_net_free(net);
    free(idx), free(sim), free(ref);
    return rc;
}
