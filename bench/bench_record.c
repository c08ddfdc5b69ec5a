/* bench_record.c — what recording one site costs (issue 12: "recording one
 * site costs less than 20 % of an unrecorded eval"). A same-run A/B/C of
 * inference, the variants run alternately with the order rotating, medians
 * of R repeats of wall and process CPU time, printed with the ratios to A:
 *
 *   A  no hooks: the executor's fused path;
 *   B  record pooled: a READ hook on `hidden.spikes` adds each step's values
 *      into a [batch][H] double buffer (dissect's per-sample pooling by sum,
 *      what `soma dissect stats` keeps per sample);
 *   C  record every step: the same hook copies each step's values into a
 *      [T][batch][H] float buffer (a full activation cache, as
 *      TransformerLens' run_with_cache).
 *
 * Trainer: soma_train_predict (forward only) on a synthetic batch, nets
 * 784-1000-10 of `lif` (T 25, inputs fed directly: the fmnist-lif example)
 * and of `ann` (T 1, ReLU: the fmnist-ann MLP). Simulator: a network file
 * (default examples/cuba.yaml) with a READ hook on POP.spikes (default exc)
 * counting spikes per neuron (B) or storing them per step (C).
 *
 * Usage: bench_record [train|sim|all] [repeats] [threads] [batch] [NET.yaml] [POP] [ms] */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "soma.h"

static double now(int process) {
    struct timespec ts;
    clock_gettime(process ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The recorder: pooled sums [rows][size] or every step [steps][rows][size]. */
typedef struct rec {
    double *sum;
    float *all;
    size_t rows, size, steps;
    long calls;
} rec;

static int rec_pooled(void *user, const soma_hook_event *ev) {
    rec *r = user;
    for (size_t b = 0; b < ev->batch; b++) {
        double *dst = r->sum + (ev->row0 + b) * r->size + ev->first;
        const float *src = ev->data + b * ev->n;
        for (size_t i = 0; i < ev->n; i++) dst[i] += src[i];
    }
    r->calls++;
    return 0;
}

static int rec_every(void *user, const soma_hook_event *ev) {
    rec *r = user;
    size_t t = ev->step % r->steps;
    for (size_t b = 0; b < ev->batch; b++)
        memcpy(r->all + (t * r->rows + ev->row0 + b) * r->size + ev->first, ev->data + b * ev->n,
               ev->n * sizeof(float));
    r->calls++;
    return 0;
}

static void report(const char *what, double t[3][64], double c[3][64], int R, long calls_b, long calls_c) {
    double m[3], mc[3];
    for (int k = 0; k < 3; k++) m[k] = median(t[k], R), mc[k] = median(c[k], R);
    printf("%s; medians of %d alternating repeats, wall (CPU):\n", what, R);
    printf("  A no hooks                %9.3f ms (%9.3f)\n", 1e3 * m[0], 1e3 * mc[0]);
    printf("  B record pooled           %9.3f ms (%9.3f)   B/A = %.4f (%.4f)   %ld hook calls\n", 1e3 * m[1],
           1e3 * mc[1], m[1] / m[0], mc[1] / mc[0], calls_b);
    printf("  C record every step       %9.3f ms (%9.3f)   C/A = %.4f (%.4f)   %ld hook calls\n", 1e3 * m[2],
           1e3 * mc[2], m[2] / m[0], mc[2] / mc[0], calls_c);
}

static int bench_train(const char *model, int T, int R, int threads, size_t B) {
    enum { D = 784, H = 1000, O = 10, CALLS = 2 };
    soma_net *net = NULL;
    size_t in, hid, out;
    int st = soma_net_create(&net);
    st |= soma_net_add_pop(net, "in", "input", D, &in);
    st |= soma_net_add_pop(net, "hidden", model, H, &hid);
    st |= soma_net_add_pop(net, "out", model, O, &out);
    if (!strcmp(model, "lif")) {
        st |= soma_net_set_param(net, hid, "beta", 0.95f);
        st |= soma_net_set_param(net, out, "beta", 0.95f);
    }
    st |= soma_net_connect_dense(net, in, hid, 1);
    st |= soma_net_connect_dense(net, hid, out, 1);
    if (st) {
        fprintf(stderr, "net: %s\n", soma_net_errmsg(net));
        return 1;
    }
    soma_train_opts to;
    soma_data_opts dopt;
    soma_train_opts_default(&to);
    to.batch = B;
    to.threads = threads;
    soma_data_opts_default(&dopt);
    dopt.steps = T;
    soma_trainer *tr = NULL;
    if (soma_train_create(&tr, net, &to, &dopt)) {
        fprintf(stderr, "trainer: %s\n", soma_net_errmsg(net));
        return 1;
    }
    float *x = malloc(B * D * sizeof(float));
    uint8_t *pred = malloc(B);
    soma_rng rng;
    soma_rng_init(&rng, 1, 2);
    for (size_t i = 0; i < B * D; i++) x[i] = soma_rng_uniform(&rng) < 0.3f ? soma_rng_uniform(&rng) : 0.0f;
    rec rb = {calloc(B * H, sizeof(double)), NULL, B, H, (size_t)T, 0};
    rec rc = {NULL, malloc((size_t)T * B * H * sizeof(float)), B, H, (size_t)T, 0};
    soma_hooks *hb = NULL, *hc = NULL;
    soma_hooks_create(&hb);
    soma_hooks_create(&hc);
    soma_hooks_add(hb, "hidden.spikes", SOMA_HOOK_READ, rec_pooled, &rb);
    soma_hooks_add(hc, "hidden.spikes", SOMA_HOOK_READ, rec_every, &rc);
    double t[3][64], c[3][64];
    soma_train_predict(tr, x, 1, B, pred); /* warm-up */
    for (int r = 0; r < R; r++)
        for (int j = 0; j < 3; j++) {
            int k = (j + r) % 3; /* the order rotates, so no variant always runs first */
            if (soma_train_set_hooks(tr, k == 0 ? NULL : k == 1 ? hb : hc)) {
                fprintf(stderr, "hooks: %s\n", soma_train_errmsg(tr));
                return 1;
            }
            if (k == 1) memset(rb.sum, 0, B * H * sizeof(double));
            double t0 = now(0), c0 = now(1);
            for (int i = 0; i < CALLS; i++) soma_train_predict(tr, x, 1, B, pred);
            t[k][r] = now(0) - t0;
            c[k][r] = now(1) - c0;
        }
    /* The recordings are what they claim: the pooled sums equal the per-step
     * copies summed (both saw the same forward). */
    double d = 0;
    for (size_t b = 0; b < B; b++)
        for (size_t i = 0; i < H; i++) {
            double s = 0;
            for (int u = 0; u < T; u++) s += rc.all[((size_t)u * B + b) * H + i];
            d += rb.sum[b * H + i] / CALLS - s;
        }
    char what[200];
    snprintf(what, sizeof what, "trainer predict 784-1000-10 %s, T %d, batch %zu, %d threads, %d predict calls per repeat "
             "(pooled = sum of steps: %s)", model, T, B, soma_train_options(tr)->threads, CALLS, d == 0 ? "yes" : "NO");
    report(what, t, c, R, rb.calls, rc.calls);
    soma_hooks_free(hb);
    soma_hooks_free(hc);
    free(rb.sum);
    free(rc.all);
    free(x);
    free(pred);
    soma_train_free(tr);
    soma_net_free(net);
    return d == 0 ? 0 : 1;
}

static int bench_sim(int R, int threads, const char *path, const char *pop, double ms) {
    char err[1024];
    soma_net *sn = NULL;
    soma_sim_file_opts fo;
    if (soma_net_load_yaml(path, NULL, 0, &sn, NULL, NULL, &fo, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    size_t p;
    if (soma_net_find_pop(sn, pop, &p)) {
        fprintf(stderr, "%s: no population '%s'\n", path, pop);
        return 1;
    }
    soma_pop_info pi;
    soma_net_pop_info(sn, p, &pi);
    soma_sim_opts o;
    soma_sim_opts_default(&o);
    o.threads = threads;
    o.seed = fo.seed;
    o.record_spikes = 0;
    size_t steps = (size_t)(ms / soma_net_dt(sn) + 0.5) + 1;
    rec rb = {calloc(pi.size, sizeof(double)), NULL, 1, pi.size, steps, 0};
    rec rc = {NULL, calloc(steps * pi.size, sizeof(float)), 1, pi.size, steps, 0};
    soma_hooks *hb = NULL, *hc = NULL;
    soma_hooks_create(&hb);
    soma_hooks_create(&hc);
    char site[256];
    snprintf(site, sizeof site, "%s.spikes", pop);
    soma_hooks_add(hb, site, SOMA_HOOK_READ, rec_pooled, &rb);
    soma_hooks_add(hc, site, SOMA_HOOK_READ, rec_every, &rc);
    double t[3][64], c[3][64];
    uint8_t sha[3][32];
    int nthreads = 0;
    for (int r = 0; r < R; r++)
        for (int j = 0; j < 3; j++) {
            int k = (j + r) % 3;
            soma_sim *sim = NULL;
            if (soma_sim_create(&sim, sn, &o, err, sizeof err)) {
                fprintf(stderr, "%s\n", err);
                return 1;
            }
            if (k && soma_sim_set_hooks(sim, k == 1 ? hb : hc)) {
                fprintf(stderr, "hooks: %s\n", soma_sim_errmsg(sim));
                return 1;
            }
            double t0 = now(0), c0 = now(1);
            soma_sim_run(sim, ms, NULL, NULL);
            t[k][r] = now(0) - t0;
            c[k][r] = now(1) - c0;
            soma_sim_stats s;
            soma_sim_stats_get(sim, &s);
            memcpy(sha[k], s.spikes_sha256, 32);
            nthreads = s.threads;
            soma_sim_free(sim);
        }
    char what[1200];
    snprintf(what, sizeof what, "simulator %s, %g ms, %d threads, recording %s (spikes identical A/B/C: %s)", path, ms,
             nthreads, site, memcmp(sha[0], sha[1], 32) == 0 && memcmp(sha[0], sha[2], 32) == 0 ? "yes" : "NO");
    report(what, t, c, R, rb.calls, rc.calls);
    soma_hooks_free(hb);
    soma_hooks_free(hc);
    free(rb.sum);
    free(rc.all);
    soma_net_free(sn);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "all";
    int R = argc > 2 ? atoi(argv[2]) : 7;
    int threads = argc > 3 ? atoi(argv[3]) : 0;
    long B = argc > 4 ? atol(argv[4]) : 256;
    const char *path = argc > 5 ? argv[5] : "examples/cuba.yaml";
    const char *pop = argc > 6 ? argv[6] : "exc";
    double ms = argc > 7 ? atof(argv[7]) : 500.0;
    if (R < 1 || R > 64 || B < 1 || B > 4096 || (strcmp(mode, "train") && strcmp(mode, "sim") && strcmp(mode, "all"))) {
        fprintf(stderr, "usage: bench_record [train|sim|all] [repeats 1-64] [threads] [batch 1-4096] [NET.yaml] [POP] [ms]\n");
        return 2;
    }
    int rc = 0;
    if (strcmp(mode, "sim")) {
        rc |= bench_train("lif", 25, R, threads, (size_t)B);
        rc |= bench_train("ann", 1, R, threads, (size_t)B);
    }
    if (strcmp(mode, "train")) rc |= bench_sim(R, threads, path, pop, ms);
    return rc;
}
