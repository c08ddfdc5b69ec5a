/* eval.c — `soma eval MODEL` (test accuracy of a saved model, with its
 * data options overridable) and `soma info MODEL` (architecture). */
#include <stdlib.h>
#include <string.h>
#include "cli.h"

int cli_eval(int argc, char **argv) {
    const char *model = NULL, *data_dir = NULL, *enc = NULL, *readout = NULL;
    long steps = -1, threads = -1, limit = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--data") == 0 || strcmp(a, "--encoding") == 0 || strcmp(a, "--readout") == 0) {
            if (!v) {
                fprintf(stderr, "soma eval: %s needs a value\n", a);
                return 2;
            }
            if (a[2] == 'd') data_dir = v;
            else if (a[2] == 'e') enc = v;
            else readout = v;
            i++;
        } else if (strcmp(a, "--steps") == 0) {
            if ((steps = cli_long(a, v, 1, 100000)) < 0) return 2;
            i++;
        } else if (strcmp(a, "--threads") == 0) {
            if ((threads = cli_long(a, v, 1, 1024)) < 0) return 2;
            i++;
        } else if (strcmp(a, "--limit") == 0) {
            if ((limit = cli_long(a, v, 1, 1L << 40)) < 0) return 2;
            i++;
        } else if (a[0] == '-') {
            fprintf(stderr, "soma eval: unknown option '%s'; expected --data, --steps, --encoding, --readout, --threads, --limit\n", a);
            return 2;
        } else if (!model) model = a;
        else {
            fprintf(stderr, "soma eval: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "usage: soma eval MODEL [--data DIR] [--steps T] [--encoding direct|rate|latency|delta|sequence] [--readout count|membrane|last]\n");
        return 2;
    }
    char err[1024];
    soma_net *net = NULL;
    soma_data_opts dopt;
    soma_train_opts topt;
    if (soma_model_load(model, &net, &dopt, &topt, err, sizeof err)) {
        fprintf(stderr, "soma: %s\n", err);
        return 1;
    }
    if (data_dir) snprintf(dopt.dir, sizeof dopt.dir, "%s", data_dir);
    if (steps > 0) dopt.steps = (int)steps;
    if (threads > 0) topt.threads = (int)threads;
    else topt.threads = 0;
    if (enc) {
        int e = soma_encoding_find(enc);
        if (e < 0) {
            fprintf(stderr, "soma eval: unknown encoding '%s'; expected direct, rate, latency, delta or sequence\n", enc);
            soma_net_free(net);
            return 2;
        }
        dopt.encoding = e;
    }
    if (readout) {
        int r = soma_readout_find(readout);
        if (r < 0) {
            fprintf(stderr, "soma eval: unknown readout '%s'; expected count or membrane\n", readout);
            soma_net_free(net);
            return 2;
        }
        dopt.readout = r;
    }
    soma_dataset train = {0}, test = {0};
    if (soma_data_load(&dopt, NULL, &test, err, sizeof err)) { /* the test split only */
        fprintf(stderr, "soma: %s\n", err);
        soma_net_free(net);
        return 1;
    }
    soma_trainer *tr = NULL;
    int rc = 0;
    if (soma_train_create(&tr, net, &topt, &dopt)) {
        fprintf(stderr, "soma: %s: %s\n", model, soma_net_errmsg(net));
        rc = 1;
    } else {
        double acc, sps;
        if (soma_train_evaluate(tr, &test, limit > 0 ? (size_t)limit : 0, &acc, &sps)) {
            fprintf(stderr, "soma: %s\n", soma_train_errmsg(tr));
            rc = 1;
        } else {
            size_t n = limit > 0 && (size_t)limit < test.n ? (size_t)limit : test.n;
            printf("test accuracy: %.2f%% (%zu samples, T = %d, %s encoding, %s readout, %.0f samples/s)\n", 100.0 * acc,
                   n, dopt.steps, soma_encoding_name(dopt.encoding), soma_readout_name(dopt.readout), sps);
        }
    }
    soma_train_free(tr);
    soma_data_free(&train), soma_data_free(&test);
    soma_net_free(net);
    return rc;
}

int cli_info(int argc, char **argv) {
    if (argc != 1) {
        fprintf(stderr, "usage: soma info MODEL\n");
        return 2;
    }
    char err[1024];
    soma_net *net = NULL;
    soma_data_opts d;
    soma_train_opts t;
    if (soma_model_load(argv[0], &net, &d, &t, err, sizeof err)) {
        fprintf(stderr, "soma: %s\n", err);
        return 1;
    }
    printf("model %s\n", argv[0]);
    cli_print_net(stdout, net);
    printf("data: %s, %s encoding, T = %d, %s readout\n", d.dataset, soma_encoding_name(d.encoding), d.steps,
           soma_readout_name(d.readout));
    printf("trained with: loss %s, optimizer %s (lr %g), batch %zu, surrogate %s (%g), %d epoch(s)\n",
           soma_loss_name(t.loss), soma_optimizer_name(t.optimizer), t.lr, t.batch, soma_surrogate_name(t.surrogate),
           t.surrogate_param > 0.0f ? t.surrogate_param : soma_surrogate_default_param(t.surrogate), t.epochs);
    soma_net_free(net);
    return 0;
}
