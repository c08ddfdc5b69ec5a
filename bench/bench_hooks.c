/* bench_hooks.c — unused hooks cost nothing: a same-run A/B of each
 * executor with no hook set (A), an empty hook set (B) and a set that asks
 * for a site on another, small population (C), run alternately (the order
 * rotating), medians of R repeats each of wall and process CPU time
 * (steadier on a loaded machine), printed with the ratios to A.
 *
 * Trainer: in (784) -> hidden (lif, 1000) -> out (lif, 10), direct input of
 * synthetic data, T = 25, batch 64, 4 soma_train_grad calls per repeat; C
 * reads out.v. Simulator: a network file (default examples/cuba.yaml) plus
 * an unconnected 16-neuron poisson population "probe"; each repeat
 * simulates `ms` milliseconds; C reads probe.spikes.
 *
 * Usage: bench_hooks [train|sim|all] [repeats] [threads] [NET.yaml] [ms] */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "soma.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the process: on a loaded machine it counts the work, not the
 * waits for a core (with 1 thread it is the run's own time). */
static double cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
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

static int noop(void *user, const soma_hook_event *ev) {
    (void)ev;
    ++*(long *)user;
    return 0;
}

static void report(const char *what, double t[3][64], double c[3][64], int R, long calls) {
    double m[3], mc[3];
    for (int k = 0; k < 3; k++) m[k] = median(t[k], R), mc[k] = median(c[k], R);
    printf("%s; medians of %d alternating repeats, wall (CPU):\n", what, R);
    printf("  A no hook set            %9.3f ms (%9.3f)\n", 1e3 * m[0], 1e3 * mc[0]);
    printf("  B empty hook set         %9.3f ms (%9.3f)   B/A = %.4f (%.4f)\n", 1e3 * m[1], 1e3 * mc[1], m[1] / m[0],
           mc[1] / mc[0]);
    printf("  C hook on another pop    %9.3f ms (%9.3f)   C/A = %.4f (%.4f)   %ld hook calls\n", 1e3 * m[2], 1e3 * mc[2],
           m[2] / m[0], mc[2] / mc[0], calls);
}

#define GRADS 4 /* soma_train_grad calls per repeat */
static int bench_train(int R, int threads) {
    enum { D = 784, H = 1000, O = 10, B = 64, T = 25 };
    soma_net *net = NULL;
    size_t in, hid, out;
    int st = soma_net_create(&net);
    st |= soma_net_add_pop(net, "in", "input", D, &in);
    st |= soma_net_add_pop(net, "hidden", "lif", H, &hid);
    st |= soma_net_add_pop(net, "out", "lif", O, &out);
    st |= soma_net_set_param(net, hid, "beta", 0.95f);
    st |= soma_net_set_param(net, out, "beta", 0.95f);
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
    uint8_t y[B];
    soma_rng rng;
    soma_rng_init(&rng, 1, 2);
    for (size_t i = 0; i < (size_t)B * D; i++) x[i] = soma_rng_uniform(&rng) < 0.3f ? soma_rng_uniform(&rng) : 0.0f;
    for (int b = 0; b < B; b++) y[b] = (uint8_t)(b % O);
    soma_hooks *empty = NULL, *other = NULL;
    long calls = 0;
    soma_hooks_create(&empty);
    soma_hooks_create(&other);
    soma_hooks_add(other, "out.v", SOMA_HOOK_READ, noop, &calls);
    double loss, t[3][64], c[3][64];
    soma_train_grad(tr, x, 1, y, B, &loss, NULL); /* warm-up */
    for (int r = 0; r < R; r++)
        for (int j = 0; j < 3; j++) {
            int k = (j + r) % 3; /* the order rotates, so no variant always runs first */
            soma_train_set_hooks(tr, k == 0 ? NULL : k == 1 ? empty : other);
            double t0 = now(), c0 = cpu();
            for (int i = 0; i < GRADS; i++) soma_train_grad(tr, x, 1, y, B, &loss, NULL);
            t[k][r] = now() - t0;
            c[k][r] = cpu() - c0;
        }
    char what[160];
    snprintf(what, sizeof what, "trainer 784-1000-10 lif, T %d, batch %d, %d threads, %d soma_train_grad per repeat", T,
             B, soma_train_options(tr)->threads, GRADS);
    report(what, t, c, R, calls);
    soma_hooks_free(empty);
    soma_hooks_free(other);
    free(x);
    soma_train_free(tr);
    soma_net_free(net);
    return 0;
}

static int bench_sim(int R, int threads, const char *path, double ms) {
    char err[1024];
    soma_net *sn = NULL;
    soma_sim_file_opts fo;
    if (soma_net_load_yaml(path, NULL, 0, &sn, NULL, NULL, &fo, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    size_t probe;
    if (soma_net_add_pop(sn, "probe", "poisson", 16, &probe) || soma_net_set(sn, probe, "rate", "10Hz")) {
        fprintf(stderr, "%s\n", soma_net_errmsg(sn));
        return 1;
    }
    soma_sim_opts o;
    soma_sim_opts_default(&o);
    o.threads = threads;
    o.seed = fo.seed;
    o.record_spikes = 0;
    soma_hooks *empty = NULL, *other = NULL;
    long calls = 0;
    soma_hooks_create(&empty);
    soma_hooks_create(&other);
    soma_hooks_add(other, "probe.spikes", SOMA_HOOK_READ, noop, &calls);
    /* Each repeat builds the same network (same seed) and times the run only. */
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
            if (k) soma_sim_set_hooks(sim, k == 1 ? empty : other);
            double t0 = now(), c0 = cpu();
            soma_sim_run(sim, ms, NULL, NULL);
            t[k][r] = now() - t0;
            c[k][r] = cpu() - c0;
            soma_sim_stats st;
            soma_sim_stats_get(sim, &st);
            memcpy(sha[k], st.spikes_sha256, 32);
            nthreads = st.threads;
            soma_sim_free(sim);
        }
    char what[1200];
    snprintf(what, sizeof what, "simulator %s + probe, %g ms, %d threads (spikes identical A/B/C: %s)", path, ms,
             nthreads, memcmp(sha[0], sha[1], 32) == 0 && memcmp(sha[0], sha[2], 32) == 0 ? "yes" : "NO");
    report(what, t, c, R, calls);
    soma_hooks_free(empty);
    soma_hooks_free(other);
    soma_net_free(sn);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "all";
    int R = argc > 2 ? atoi(argv[2]) : 7;
    int threads = argc > 3 ? atoi(argv[3]) : 0;
    const char *path = argc > 4 ? argv[4] : "examples/cuba.yaml";
    double ms = argc > 5 ? atof(argv[5]) : 200.0;
    if (R < 1 || R > 64 || (strcmp(mode, "train") && strcmp(mode, "sim") && strcmp(mode, "all"))) {
        fprintf(stderr, "usage: bench_hooks [train|sim|all] [repeats 1-64] [threads] [NET.yaml] [ms]\n");
        return 2;
    }
    int rc = 0;
    if (strcmp(mode, "sim")) rc |= bench_train(R, threads);
    if (strcmp(mode, "train")) rc |= bench_sim(R, threads, path, ms);
    return rc;
}
