/* train.c — `soma train FILE.yaml`: train a network by BPTT, show progress,
 * save model.soma after every epoch, and write metrics.json, curves.png and
 * raster.png. A non-finite loss or Ctrl-C stops training and leaves the last
 * good model.soma on disk. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"

static volatile sig_atomic_t interrupted = 0;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

typedef struct bar_state {
    int tty;
    int epochs;
    double last_draw;
} bar_state;

/* Progress bar on a terminal: batch, loss, running accuracy, samples/s, ETA. */
static int progress(void *user, const soma_progress *p) {
    bar_state *bs = user;
    if (interrupted) return 1;
    if (!bs->tty) return 0;
    double t = soma_clock_seconds();
    if (p->batch != p->batches && t - bs->last_draw < 0.1) return 0;
    bs->last_draw = t;
    int width = 24, filled = (int)((double)width * (double)p->batch / (double)p->batches);
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    double eta = p->samples_per_second > 0 ? p->elapsed_seconds * ((double)p->batches / (double)p->batch - 1.0) : 0.0;
    fprintf(stderr, "\repoch %d/%d [%s] %ld/%ld  loss %.4f  acc %5.1f%%  %.0f samples/s  ETA %3.0fs ", p->epoch + 1,
            bs->epochs, bar, p->batch, p->batches, p->loss, 100.0 * p->accuracy, p->samples_per_second, eta);
    fflush(stderr);
    return 0;
}

static void json_array(char *buf, size_t cap, const char *key, const double *v, size_t n) {
    size_t len = strlen(buf);
    len += (size_t)snprintf(buf + len, cap - len, "  \"%s\": [", key);
    for (size_t i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%.6g", i ? ", " : "", v[i]);
    if (len < cap) snprintf(buf + len, cap - len, "],\n");
}

int cli_train(int argc, char **argv) {
    const char *file = NULL, *out = "runs/latest", *data_dir = NULL;
    long epochs = -1, max_batches = -1, threads = -1, seed = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--epochs") == 0) {
            if ((epochs = cli_long(a, v, 1, 100000)) < 0) return 2;
            i++;
        } else if (strcmp(a, "--max-batches") == 0) {
            if ((max_batches = cli_long(a, v, 1, 1L << 40)) < 0) return 2;
            i++;
        } else if (strcmp(a, "--threads") == 0) {
            if ((threads = cli_long(a, v, 1, 1024)) < 0) return 2;
            i++;
        } else if (strcmp(a, "--seed") == 0) {
            if ((seed = cli_long(a, v, 0, 0x7fffffffffffffffL)) < 0) return 2;
            i++;
        } else if (strcmp(a, "--out") == 0 || strcmp(a, "--data") == 0) {
            if (!v) {
                fprintf(stderr, "soma train: %s needs a value (a directory)\n", a);
                return 2;
            }
            if (a[2] == 'o') out = v;
            else data_dir = v;
            i++;
        } else if (a[0] == '-') {
            fprintf(stderr, "soma train: unknown option '%s'; expected --epochs, --max-batches, --threads, --seed, --out, --data\n", a);
            return 2;
        } else if (!file) {
            file = a;
        } else {
            fprintf(stderr, "soma train: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!file) {
        fprintf(stderr, "usage: soma train FILE.yaml [--epochs N] [--max-batches N] [--threads N] [--seed S] [--out DIR]\n");
        return 2;
    }
    char err[1024];
    soma_net *net = NULL;
    soma_data_opts dopt;
    soma_train_opts topt;
    int st = soma_experiment_load(file, &net, &dopt, &topt, err, sizeof err);
    if (st) {
        fprintf(stderr, "soma: %s\n", err);
        return 1;
    }
    if (epochs > 0) topt.epochs = (int)epochs;
    if (max_batches > 0) topt.max_batches = max_batches;
    if (threads > 0) topt.threads = (int)threads;
    if (seed >= 0) topt.seed = (uint64_t)seed;
    if (data_dir) snprintf(dopt.dir, sizeof dopt.dir, "%s", data_dir);

    soma_dataset train = {0}, test = {0};
    double t_start = soma_clock_seconds();
    st = soma_data_load(&dopt, &train, &test, err, sizeof err);
    if (st) {
        fprintf(stderr, "soma: %s\n", err);
        soma_net_free(net);
        return 1;
    }
    if (cli_mkdirs(out) != 0) {
        fprintf(stderr, "soma: cannot create output directory '%s'\n", out);
        soma_net_free(net);
        return 1;
    }
    soma_trainer *tr = NULL;
    st = soma_train_create(&tr, net, &topt, &dopt);
    if (st) {
        fprintf(stderr, "soma: %s: %s\n", file, soma_net_errmsg(net));
        soma_data_free(&train), soma_data_free(&test), soma_net_free(net);
        return 1;
    }
    topt.threads = soma_train_options(tr)->threads;
    printf("soma train %s: %zu training and %zu test samples, %zu parameters, %d epoch(s), batch %zu, T = %d, %d thread(s)\n",
           file, train.n, test.n, soma_net_param_count(net), topt.epochs, topt.batch, dopt.steps, topt.threads);
    fflush(stdout);

    char model_path[4200], path[4200];
    snprintf(model_path, sizeof model_path, "%s/model.soma", out);
    signal(SIGINT, on_sigint);
    bar_state bs = {isatty(2), topt.epochs, 0.0};
    int E = topt.epochs;
    double *loss = calloc((size_t)E, sizeof *loss), *tracc = calloc((size_t)E, sizeof *tracc),
           *teacc = calloc((size_t)E, sizeof *teacc);
    double train_sps = 0.0, infer_sps = 0.0, acc = 0.0, train_seconds = 0.0, warm_seconds = 0.0;
    long warm_samples = 0;
    long train_samples = 0;
    int done = 0, rc = 0;
    for (int e = 0; e < E; e++) {
        soma_epoch_result res;
        st = soma_train_epoch(tr, &train, e, progress, &bs, &res);
        if (bs.tty) fprintf(stderr, "\n");
        if (st == SOMA_STATUS_NONFINITE) {
            fprintf(stderr, "soma: training stopped: non-finite loss at epoch %d, batch %ld (%s); %s\n", e + 1,
                    res.bad_batch + 1, soma_train_errmsg(tr),
                    e > 0 ? "the model of the last good epoch stays in place" : "no model was saved");
            rc = 3;
            break;
        }
        if (st == SOMA_STATUS_CANCELLED) {
            fprintf(stderr, "soma: interrupted at epoch %d, batch %ld; %s\n", e + 1, res.batches,
                    e > 0 ? "the model of the last finished epoch stays in place" : "no model was saved");
            rc = 130;
            break;
        }
        if (st) {
            fprintf(stderr, "soma: training failed: %s\n", soma_train_errmsg(tr));
            rc = 1;
            break;
        }
        train_seconds += res.seconds;
        train_samples += (long)((double)res.samples_per_second * res.seconds + 0.5);
        if (res.samples_per_second_after_first > 0) {
            double later = res.seconds - res.first_batch_seconds;
            warm_seconds += later;
            warm_samples += (long)(res.samples_per_second_after_first * later + 0.5);
        }
        st = soma_train_evaluate(tr, &test, dopt.limit_test, &acc, &infer_sps);
        if (st) {
            fprintf(stderr, "soma: evaluation failed: %s\n", soma_train_errmsg(tr));
            rc = 1;
            break;
        }
        loss[e] = res.loss, tracc[e] = res.accuracy, teacc[e] = acc;
        printf("epoch %d/%d  loss %.4f  train acc %.2f%%  test acc %.2f%%  hidden rate %.3f  %.0f samples/s  %.1fs\n",
               e + 1, E, res.loss, 100.0 * res.accuracy, 100.0 * acc, res.spike_rate, res.samples_per_second, res.seconds);
        fflush(stdout);
        st = soma_model_save(model_path, net, &dopt, &topt, err, sizeof err);
        if (st) {
            fprintf(stderr, "soma: %s\n", err);
            rc = 1;
            break;
        }
        done = e + 1;
    }
    signal(SIGINT, SIG_DFL);
    train_sps = train_seconds > 0 ? (double)train_samples / train_seconds : 0.0;
    if (done > 0) {
        /* Hidden-layer raster of the first test samples. */
        size_t nshow = test.n < 4 ? test.n : 4, hidden = 0;
        size_t npop = soma_net_pop_count(net);
        for (size_t i = 0; i < npop; i++) {
            soma_pop_info pi;
            soma_net_pop_info(net, i, &pi);
            if (strcmp(pi.model, "input") != 0) {
                hidden = i;
                break;
            }
        }
        soma_pop_info hp;
        soma_net_pop_info(net, hidden, &hp);
        size_t T = (size_t)dopt.steps, idx[4] = {0, 1, 2, 3};
        float *x = malloc(soma_encode_size(&dopt, &test, nshow) * sizeof(float));
        uint8_t *spk = malloc(T * nshow * hp.size);
        int tc;
        if (x && spk && nshow > 0) {
            soma_encode(&dopt, &test, idx, nshow, topt.seed, SOMA_EVAL_STREAM, x, &tc);
            if (soma_train_record(tr, x, tc, nshow, hidden, spk) == SOMA_STATUS_OK) {
                char title[200];
                snprintf(title, sizeof title, "%s spikes, first %zu test samples", hp.name, nshow);
                snprintf(path, sizeof path, "%s/raster.png", out);
                if (soma_plot_raster(path, spk, T, nshow, hp.size, title, err, sizeof err)) {
                    fprintf(stderr, "soma: %s\n", err);
                    if (rc == 0) rc = 1;
                }
            }
        }
        free(x), free(spk);
        snprintf(path, sizeof path, "%s/curves.png", out);
        if (soma_plot_curves(path, loss, tracc, teacc, (size_t)done, err, sizeof err)) {
            fprintf(stderr, "soma: %s\n", err);
            if (rc == 0) rc = 1;
        }
    }
    /* metrics.json is written even for a stopped run, with what was done. */
    size_t cap = 65536;
    char *js = calloc(cap, 1);
    snprintf(js, cap,
             "{\n  \"experiment\": \"%s\",\n  \"test_accuracy\": %.6f,\n  \"train_samples_per_second\": %.1f,\n"
             "  \"train_samples_per_second_after_first\": %.1f,\n"
             "  \"infer_samples_per_second\": %.1f,\n  \"epochs\": %d,\n  \"seconds\": %.3f,\n  \"peak_rss_bytes\": %lld,\n"
             "  \"threads\": %d,\n  \"seed\": %llu,\n  \"batch\": %zu,\n  \"steps\": %d,\n  \"parameters\": %zu,\n"
             "  \"status\": \"%s\",\n",
             file, done ? teacc[done - 1] : 0.0, train_sps, warm_seconds > 0 ? (double)warm_samples / warm_seconds : 0.0,
             infer_sps, done, soma_clock_seconds() - t_start,
             cli_peak_rss(), topt.threads, (unsigned long long)topt.seed, topt.batch, dopt.steps,
             soma_net_param_count(net),
             rc == 0 ? "ok" : rc == 3 ? "non-finite loss" : rc == 130 ? "interrupted" : "failed");
    json_array(js, cap, "loss", loss, (size_t)done);
    json_array(js, cap, "train_accuracy", tracc, (size_t)done);
    json_array(js, cap, "test_accuracy_per_epoch", teacc, (size_t)done);
    size_t len = strlen(js);
    snprintf(js + len - 2, cap - len + 2, "\n}\n");
    snprintf(path, sizeof path, "%s/metrics.json", out);
    if (cli_write_atomic(path, js) != 0) {
        fprintf(stderr, "soma: cannot write %s: %s\n", path, strerror(errno));
        if (rc == 0) rc = 1;
    }
    if (rc == 0)
        printf("test accuracy: %.2f%% (%s)\nwrote %s/model.soma, metrics.json, curves.png, raster.png\n", 100.0 * acc,
               file, out);
    free(js), free(loss), free(tracc), free(teacc);
    soma_train_free(tr);
    soma_data_free(&train), soma_data_free(&test);
    soma_net_free(net);
    return rc;
}
