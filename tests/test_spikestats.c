/* test_spikestats.c — spike-train statistics and the simulator plots.
 *
 * Statistics are checked three ways: against values worked out by hand on
 * small constructed trains (regular trains, known ISI sequences and count
 * sequences), against a plain double-precision reference that builds every
 * neuron's full count vector from its own spike list (so it shares neither
 * the sorted walk nor the running sums of the library), and against the
 * known values of a discrete Poisson (Bernoulli) process within statistical
 * bounds. The plots are checked to be PNGs of the expected size, with marks
 * and bars where the data put them, and with clear errors. */
#define _POSIX_C_SOURCE 200809L
#include "soma.h"
#include "testlib.h"

#include <cairo.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

/* splitmix64: the test's own generator, independent of the library's. */
static uint64_t sm_state;
static uint64_t sm_next(void) {
    uint64_t z = (sm_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
/* uniform in (0, 1] */
static double sm_unit(void) { return ((double)(sm_next() >> 11) + 1.0) * (1.0 / 9007199254740992.0); }
/* gap of a Bernoulli(p) process: P(k) = (1-p)^(k-1) p, k >= 1 */
static uint64_t geometric(double p) { return 1 + (uint64_t)floor(log(sm_unit()) / log1p(-p)); }

/* Spike trains kept per neuron: tr[i][0..len[i]) are neuron i's steps. */
typedef struct trains {
    size_t n;
    uint32_t **tr;
    size_t *len;
} trains;

static trains trains_new(size_t n) {
    trains t = {n, calloc(n, sizeof(uint32_t *)), calloc(n, sizeof(size_t))};
    return t;
}
static void trains_free(trains *t) {
    for (size_t i = 0; i < t->n; i++) free(t->tr[i]);
    free(t->tr);
    free(t->len);
}
static void trains_set(trains *t, size_t i, const uint32_t *steps, size_t k) {
    t->tr[i] = malloc((k ? k : 1) * sizeof(uint32_t));
    memcpy(t->tr[i], steps, k * sizeof(uint32_t));
    t->len[i] = k;
}
/* Bernoulli(p) train of neuron i over steps [0, T). */
static void trains_poisson(trains *t, size_t i, double p, uint32_t T) {
    size_t cap = 16, k = 0;
    uint32_t *s = malloc(cap * sizeof *s);
    for (uint64_t step = geometric(p) - 1; step < T; step += geometric(p)) {
        if (k == cap) s = realloc(s, (cap *= 2) * sizeof *s);
        s[k++] = (uint32_t)step;
    }
    t->tr[i] = s;
    t->len[i] = k;
}

static int by_step_id(const void *a, const void *b) {
    const soma_spike *x = a, *y = b;
    if (x->step != y->step) return x->step < y->step ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}
/* All spikes as the simulator gives them: sorted by (step, id), ids from first. */
static soma_spike *trains_merge(const trains *t, uint32_t first, size_t *n) {
    size_t tot = 0;
    for (size_t i = 0; i < t->n; i++) tot += t->len[i];
    soma_spike *sp = malloc((tot ? tot : 1) * sizeof *sp);
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++)
        for (size_t j = 0; j < t->len[i]; j++) sp[k++] = (soma_spike){t->tr[i][j], first + (uint32_t)i};
    qsort(sp, tot, sizeof *sp, by_step_id);
    *n = tot;
    return sp;
}

/* The reference: every statistic straight from its definition, two-pass
 * means and variances, full count vectors per neuron (O(N * bins) time and
 * O(bins) memory per neuron, fine for test sizes). */
static soma_spike_stats ref_stats(const trains *t, double dt, uint64_t s0, uint64_t s1, uint64_t wb, uint64_t wf) {
    soma_spike_stats r = {0, NAN, 0, NAN, NAN};
    size_t N = t->n;
    uint64_t B = (s1 - s0) / wb, K = (s1 - s0) / wf;
    double *cb = malloc((B + 1) * sizeof *cb), *cf = malloc((K + 1) * sizeof *cf);
    double *pop = calloc(B + 1, sizeof *pop);
    double *isi = malloc(sizeof(double) * 1);
    double total = 0, cv = 0, fano = 0, var_sum = 0;
    size_t ncv = 0, nf = 0;
    for (size_t i = 0; i < N; i++) {
        /* this neuron's spikes in the window */
        size_t m = 0;
        for (size_t j = 0; j < t->len[i]; j++) m += t->tr[i][j] >= s0 && t->tr[i][j] < s1;
        total += (double)m;
        isi = realloc(isi, (t->len[i] + 1) * sizeof *isi);
        size_t ni = 0;
        int64_t prev = -1;
        memset(cb, 0, (B + 1) * sizeof *cb);
        memset(cf, 0, (K + 1) * sizeof *cf);
        for (size_t j = 0; j < t->len[i]; j++) {
            uint64_t s = t->tr[i][j];
            if (s < s0 || s >= s1) continue;
            if (prev >= 0) isi[ni++] = (double)(s - (uint64_t)prev);
            prev = (int64_t)s;
            uint64_t kb = (s - s0) / wb, kf = (s - s0) / wf;
            if (kb < B) { cb[kb] += 1; pop[kb] += 1; }
            if (kf < K) cf[kf] += 1;
        }
        if (ni >= 2) {
            double mu = 0, v = 0;
            for (size_t j = 0; j < ni; j++) mu += isi[j];
            mu /= (double)ni;
            for (size_t j = 0; j < ni; j++) v += (isi[j] - mu) * (isi[j] - mu);
            cv += sqrt(v / (double)ni) / mu;
            ncv++;
        }
        if (K >= 2) {
            double mu = 0, v = 0;
            for (uint64_t k = 0; k < K; k++) mu += cf[k];
            mu /= (double)K;
            for (uint64_t k = 0; k < K; k++) v += (cf[k] - mu) * (cf[k] - mu);
            if (mu > 0) { fano += v / (double)(K - 1) / mu; nf++; }
        }
        if (B >= 1) {
            double mu = 0, v = 0;
            for (uint64_t k = 0; k < B; k++) mu += cb[k];
            mu /= (double)B;
            for (uint64_t k = 0; k < B; k++) v += (cb[k] - mu) * (cb[k] - mu);
            var_sum += v / (double)B;
        }
    }
    r.rate_hz = total / ((double)N * (double)(s1 - s0) * dt * 1e-3);
    r.cv_neurons = ncv;
    if (ncv) r.cv_isi = cv / (double)ncv;
    if (nf) r.fano = fano / (double)nf;
    if (B >= 2) {
        double mu = 0, v = 0;
        for (uint64_t k = 0; k < B; k++) mu += pop[k] / (double)N;
        mu /= (double)B;
        for (uint64_t k = 0; k < B; k++) v += (pop[k] / (double)N - mu) * (pop[k] / (double)N - mu);
        v /= (double)B;
        if (var_sum > 0) r.synchrony = sqrt(v / (var_sum / (double)N));
    }
    free(cb);
    free(cf);
    free(pop);
    free(isi);
    return r;
}

/* Both NaN, or equal within a relative tolerance. */
static int same(double a, double b, double tol) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return fabs(a - b) <= tol * fmax(1.0, fmax(fabs(a), fabs(b)));
}
static void check_against_ref(const soma_spike_stats *s, const soma_spike_stats *r, const char *what) {
    CHECK_MSG(same(s->rate_hz, r->rate_hz, 1e-12), "%s: rate %.12g vs %.12g", what, s->rate_hz, r->rate_hz);
    CHECK_MSG(same(s->cv_isi, r->cv_isi, 1e-9), "%s: cv %.12g vs %.12g", what, s->cv_isi, r->cv_isi);
    CHECK_MSG(s->cv_neurons == r->cv_neurons, "%s: cv_neurons %zu vs %zu", what, s->cv_neurons, r->cv_neurons);
    CHECK_MSG(same(s->fano, r->fano, 1e-9), "%s: fano %.12g vs %.12g", what, s->fano, r->fano);
    CHECK_MSG(same(s->synchrony, r->synchrony, 1e-9), "%s: chi %.12g vs %.12g", what, s->synchrony, r->synchrony);
}

/* --------------------------------------------------- hand-made trains */

static void test_regular(void) {
    /* 10 neurons, neuron i fires at steps 10i, 10i+100, ...: 10 ms
     * period at dt 0.1 ms, 20 spikes each in [0, 2000) = 200 ms: 100 Hz,
     * every ISI 100 steps (CV exactly 0), and every 20 ms window (two
     * periods) holds exactly two spikes (Fano exactly 0). */
    trains t = trains_new(10);
    for (size_t i = 0; i < 10; i++) {
        uint32_t s[20];
        for (int k = 0; k < 20; k++) s[k] = (uint32_t)(10 * i + 100 * (size_t)k);
        trains_set(&t, i, s, 20);
    }
    size_t n;
    soma_spike *sp = trains_merge(&t, 0, &n);
    soma_spike_stats st;
    CHECK(soma_spike_stats_compute(sp, n, 0, 10, 0.1, 0, 2000, 1.0, 20.0, &st) == SOMA_STATUS_OK);
    CHECK_NEAR(st.rate_hz, 100.0, 1e-12);
    CHECK(st.cv_isi == 0.0);
    CHECK(st.cv_neurons == 10);
    CHECK(st.fano == 0.0);
    /* a 15 ms window is no multiple of the period: counts alternate 1, 2 */
    CHECK(soma_spike_stats_compute(sp, n, 0, 10, 0.1, 0, 2000, 1.0, 15.0, &st) == SOMA_STATUS_OK);
    CHECK(st.fano > 0.05);
    soma_spike_stats r = ref_stats(&t, 0.1, 0, 2000, 10, 150);
    check_against_ref(&st, &r, "regular, 15 ms windows");
    /* in 1 ms bins the staggered neurons take turns: every bin holds
     * exactly one spike, A is constant and chi = 0; the same trains moved
     * into lock-step give chi = 1 */
    CHECK(st.synchrony == 0.0);
    for (size_t i = 0; i < 10; i++)
        for (size_t k = 0; k < 20; k++) t.tr[i][k] = (uint32_t)(100 * k);
    free(sp);
    sp = trains_merge(&t, 0, &n);
    CHECK(soma_spike_stats_compute(sp, n, 0, 10, 0.1, 0, 2000, 1.0, 20.0, &st) == SOMA_STATUS_OK);
    CHECK_NEAR(st.synchrony, 1.0, 1e-12);
    free(sp);
    trains_free(&t);
}

static void test_known_isis(void) {
    /* dt 1 ms, window [0, 100) = 0.1 s:
     *  neuron 0 at 0, 10, 30, 60: ISIs 10, 20, 30 -> mean 20, sd sqrt(200/3), CV sqrt(2/3)/2
     *  neuron 1 at 5, 15, 25, 65: ISIs 10, 10, 40 -> mean 20, sd sqrt(200),   CV sqrt(2)/2
     *  neuron 2 at 7, 50:          one ISI -> left out of the CV
     *  neuron 3 silent
     * 10 spikes / (4 neurons * 0.1 s) = 25 Hz. */
    const soma_spike sp[] = {{0, 0}, {5, 1}, {7, 2}, {10, 0}, {15, 1}, {25, 1}, {30, 0}, {50, 2}, {60, 0}, {65, 1}};
    soma_spike_stats st;
    CHECK(soma_spike_stats_compute(sp, 10, 0, 4, 1.0, 0, 100, 10.0, 10.0, &st) == SOMA_STATUS_OK);
    CHECK_NEAR(st.rate_hz, 25.0, 1e-12);
    CHECK(st.cv_neurons == 2);
    CHECK_NEAR(st.cv_isi, (sqrt(2.0 / 3.0) / 2 + sqrt(2.0) / 2) / 2, 1e-12);

    /* ids offset: the same spikes as population [100, 104) of a bigger net,
     * with a foreign neuron 99 and 104 around it that must be skipped */
    soma_spike sp2[16];
    size_t k = 0;
    sp2[k++] = (soma_spike){0, 99};
    for (size_t i = 0; i < 10; i++) {
        sp2[k++] = (soma_spike){sp[i].step, sp[i].id + 100};
        if (i == 4) sp2[k++] = (soma_spike){15, 104};
    }
    sp2[k++] = (soma_spike){70, 99};
    sp2[k++] = (soma_spike){80, 104};
    sp2[k++] = (soma_spike){90, 104};
    soma_spike_stats st2;
    CHECK(soma_spike_stats_compute(sp2, k, 100, 4, 1.0, 0, 100, 10.0, 10.0, &st2) == SOMA_STATUS_OK);
    check_against_ref(&st2, &st, "offset ids");
}

static void test_known_counts(void) {
    /* One neuron, 10-step windows (dt 1 ms), steps [0, 45): spikes at 1, 2 |
     * - | 25 | 31, 33, 38 | 42. Full windows count 2, 0, 1, 3 (the spike
     * at 42 sits in the partial fifth window): mean 1.5, var (1/(K-1))
     * = (0.25 + 2.25 + 0.25 + 2.25) / 3 = 5/3, Fano = 10/9. A silent second
     * neuron does not enter the Fano mean. Chi over the same bins: A = (1,
     * 0, 0.5, 1.5), var A = 0.3125; var s_0 = 1.25, var s_1 = 0; chi =
     * sqrt(0.3125 / 0.625) = sqrt(1/2). Rate: 7 spikes / (2 * 0.045 s). */
    const soma_spike sp[] = {{1, 0}, {2, 0}, {25, 0}, {31, 0}, {33, 0}, {38, 0}, {42, 0}};
    soma_spike_stats st;
    CHECK(soma_spike_stats_compute(sp, 7, 0, 2, 1.0, 0, 45, 10.0, 10.0, &st) == SOMA_STATUS_OK);
    CHECK_NEAR(st.fano, 10.0 / 9.0, 1e-12);
    CHECK_NEAR(st.synchrony, sqrt(0.5), 1e-12);
    CHECK_NEAR(st.rate_hz, 7.0 / (2 * 0.045), 1e-12);
    /* ISIs 1, 23, 6, 2, 5, 4: by hand, mean 41/6 */
    double isi[6] = {1, 23, 6, 2, 5, 4}, mu = 41.0 / 6, v = 0;
    for (int i = 0; i < 6; i++) v += (isi[i] - mu) * (isi[i] - mu);
    CHECK_NEAR(st.cv_isi, sqrt(v / 6) / mu, 1e-12);

    /* Chi of two neurons over 4 bins, by hand:
     *  in phase (1,0,1,0) and (1,0,0,0): A = (1, 0, .5, 0), var A = 11/64,
     *  var s_0 = 1/4, var s_1 = 3/16 -> chi = sqrt((11/64) / (7/32)) = sqrt(11/14);
     *  anti-phase (1,0,1,0) and (0,1,0,1): A constant -> chi = 0. */
    const soma_spike a[] = {{0, 0}, {0, 1}, {20, 0}};
    CHECK(soma_spike_stats_compute(a, 3, 0, 2, 1.0, 0, 40, 10.0, 10.0, &st) == SOMA_STATUS_OK);
    CHECK_NEAR(st.synchrony, sqrt(11.0 / 14.0), 1e-12);
    const soma_spike b[] = {{0, 0}, {10, 1}, {20, 0}, {30, 1}};
    CHECK(soma_spike_stats_compute(b, 4, 0, 2, 1.0, 0, 40, 10.0, 10.0, &st) == SOMA_STATUS_OK);
    CHECK(st.synchrony == 0.0);
    /* bins from ms: 10 ms at dt 0.1 ms (100 steps, though 10/0.1 is not
     * exactly 100 in binary) gives the same as 10 ms at dt 1 scaled up */
    const soma_spike c[] = {{0, 0}, {0, 1}, {200, 0}};
    CHECK(soma_spike_stats_compute(c, 3, 0, 2, 0.1, 0, 400, 10.0, 10.0, &st) == SOMA_STATUS_OK);
    CHECK_NEAR(st.synchrony, sqrt(11.0 / 14.0), 1e-12);
}

static void test_window(void) {
    /* A random set; statistics over [step0, step1) equal the reference on
     * the same window, which differs from the whole run. Ids [50, 250) of a
     * 300-neuron net; the neighbours fire too and must not count. */
    sm_state = 11;
    trains all = trains_new(300);
    for (size_t i = 0; i < 300; i++) trains_poisson(&all, i, 0.002 + 0.006 * sm_unit(), 30000);
    size_t n;
    soma_spike *sp = trains_merge(&all, 0, &n);
    trains pop = {200, all.tr + 50, all.len + 50};
    soma_spike_stats st, r;
    const uint64_t s0 = 7003, s1 = 23457; /* neither on a bin edge nor a window multiple */
    CHECK(soma_spike_stats_compute(sp, n, 50, 200, 0.1, s0, s1, 2.0, 50.0, &st) == SOMA_STATUS_OK);
    r = ref_stats(&pop, 0.1, s0, s1, 20, 500);
    check_against_ref(&st, &r, "window");
    soma_spike_stats whole;
    CHECK(soma_spike_stats_compute(sp, n, 50, 200, 0.1, 0, 30000, 2.0, 50.0, &whole) == SOMA_STATUS_OK);
    r = ref_stats(&pop, 0.1, 0, 30000, 20, 500);
    check_against_ref(&whole, &r, "whole run");
    CHECK(whole.rate_hz != st.rate_hz);

    /* a window past every spike, and one before */
    CHECK(soma_spike_stats_compute(sp, n, 50, 200, 0.1, 40000, 50000, 2.0, 50.0, &st) == SOMA_STATUS_OK);
    CHECK(st.rate_hz == 0 && isnan(st.cv_isi) && st.cv_neurons == 0 && isnan(st.fano) && isnan(st.synchrony));
    /* a window only one bin long: no variance over bins */
    CHECK(soma_spike_stats_compute(sp, n, 50, 200, 0.1, 1000, 1020, 2.0, 2.0, &st) == SOMA_STATUS_OK);
    CHECK(isnan(st.synchrony) && isnan(st.fano));
    r = ref_stats(&pop, 0.1, 1000, 1020, 20, 20);
    check_against_ref(&st, &r, "one bin");
    free(sp);
    trains_free(&all);
}

static void test_empty_and_errors(void) {
    soma_spike_stats st;
    CHECK(soma_spike_stats_compute(NULL, 0, 0, 10, 0.1, 0, 1000, 1.0, 10.0, &st) == SOMA_STATUS_OK);
    CHECK(st.rate_hz == 0 && isnan(st.cv_isi) && st.cv_neurons == 0 && isnan(st.fano) && isnan(st.synchrony));
    const soma_spike sp[] = {{5, 0}, {3, 1}, {9, 0}};
    CHECK(soma_spike_stats_compute(sp, 3, 0, 2, 0.1, 0, 100, 1.0, 1.0, &st) == SOMA_STATUS_INVALID); /* unsorted */
    CHECK(soma_spike_stats_compute(sp, 1, 0, 0, 0.1, 0, 100, 1.0, 1.0, &st) == SOMA_STATUS_INVALID); /* no neurons */
    CHECK(soma_spike_stats_compute(sp, 1, 0, 2, 0.1, 100, 100, 1.0, 1.0, &st) == SOMA_STATUS_INVALID);
    CHECK(soma_spike_stats_compute(sp, 1, 0, 2, 0.0, 0, 100, 1.0, 1.0, &st) == SOMA_STATUS_INVALID);
    CHECK(soma_spike_stats_compute(sp, 1, 0, 2, NAN, 0, 100, 1.0, 1.0, &st) == SOMA_STATUS_INVALID);
    CHECK(soma_spike_stats_compute(sp, 1, 0, 2, 0.1, 0, 100, 0.04, 1.0, &st) == SOMA_STATUS_INVALID);
    CHECK(soma_spike_stats_compute(sp, 1, 0, 2, 0.1, 0, 100, 1.0, -1.0, &st) == SOMA_STATUS_INVALID);
    CHECK(soma_spike_stats_compute(sp, 1, 0, 2, 0.1, 0, 100, 1.0, 1.0, NULL) == SOMA_STATUS_INVALID);
    CHECK(soma_spike_stats_compute(NULL, 3, 0, 2, 0.1, 0, 100, 1.0, 1.0, &st) == SOMA_STATUS_INVALID);
    /* 0.6 of a step rounds up to one */
    CHECK(soma_spike_stats_compute(sp, 1, 0, 2, 0.1, 0, 100, 0.06, 0.06, &st) == SOMA_STATUS_OK);
}

/* ---------------------------------------------------- Poisson trains */

static void test_poisson(void) {
    /* 400 independent Bernoulli trains, p = 0.005 per 0.1 ms step (50 Hz)
     * for 10 s. For this process the ISIs are geometric, CV = sqrt(1-p),
     * and window counts binomial, Fano = 1-p, for any window; chi ->
     * 1/sqrt(N). Bounds are several standard errors wide: the rate's is
     * 0.22 % (200,000 spikes), a neuron's CV estimate from ~500 ISIs has sd
     * ~0.045 (mean of 400: 0.0023), its Fano estimate from K = 100 windows
     * sd ~sqrt(2/99) = 0.14 (mean of 400: 0.007), chi^2 from B = 10,000
     * bins is within ~sqrt(2/B) = 1.4 %. */
    const size_t N = 400;
    const double p = 0.005;
    sm_state = 2024;
    trains t = trains_new(N);
    for (size_t i = 0; i < N; i++) trains_poisson(&t, i, p, 100000);
    size_t n;
    soma_spike *sp = trains_merge(&t, 0, &n);
    soma_spike_stats st;
    CHECK(soma_spike_stats_compute(sp, n, 0, N, 0.1, 0, 100000, 1.0, 100.0, &st) == SOMA_STATUS_OK);
    CHECK_MSG(fabs(st.rate_hz - 50.0) < 0.6, "rate %g", st.rate_hz);
    CHECK_MSG(fabs(st.cv_isi - sqrt(1 - p)) < 0.015, "cv %g", st.cv_isi);
    CHECK(st.cv_neurons == N);
    CHECK_MSG(fabs(st.fano - (1 - p)) < 0.04, "fano %g", st.fano);
    CHECK_MSG(fabs(st.synchrony * sqrt((double)N) - 1) < 0.05, "chi %g, 1/sqrt(N) %g", st.synchrony,
              1 / sqrt((double)N));
    soma_spike_stats r = ref_stats(&t, 0.1, 0, 100000, 10, 1000);
    check_against_ref(&st, &r, "poisson");

    /* the same spike times in every neuron: fully synchronous, chi = 1 */
    for (size_t i = 1; i < N; i++) {
        free(t.tr[i]);
        trains_set(&t, i, t.tr[0], t.len[0]);
    }
    free(sp);
    sp = trains_merge(&t, 0, &n);
    CHECK(soma_spike_stats_compute(sp, n, 0, N, 0.1, 0, 100000, 1.0, 100.0, &st) == SOMA_STATUS_OK);
    CHECK_NEAR(st.synchrony, 1.0, 1e-9);
    free(sp);
    trains_free(&t);
}

/* The microcircuit's largest population (L4E has 21,915 neurons; the whole
 * circuit 77,169) with 1e7 spikes: memory must stay O(size) and time
 * O(spikes), whatever the number of bins. The spikes come straight in
 * (step, id) order from one Bernoulli process over the flattened index
 * step * N + id, i.e. independent Bernoulli trains. Returns the spikes for
 * the plot test (n, N, steps set). */
static soma_spike *test_large(size_t *np, size_t *Np, uint32_t *stepsp) {
    const size_t N = 77000, target = 10000000;
    const double p = 0.001; /* 10 Hz at 0.1 ms */
    const uint32_t steps = (uint32_t)((double)target / (p * (double)N));
    soma_spike *sp = malloc((target + target / 50) * sizeof *sp);
    CHECK(sp != NULL);
    if (!sp) return NULL;
    sm_state = 77;
    size_t n = 0;
    uint64_t end = (uint64_t)steps * N;
    for (uint64_t x = geometric(p) - 1; x < end && n < target + target / 50; x += geometric(p))
        sp[n++] = (soma_spike){(uint32_t)(x / N), (uint32_t)(x % N)};
    double t0 = soma_clock_seconds();
    soma_spike_stats st;
    CHECK(soma_spike_stats_compute(sp, n, 0, N, 0.1, 0, steps, 1.0, 100.0, &st) == SOMA_STATUS_OK);
    double t1 = soma_clock_seconds();
    printf("large: %zu neurons, %zu spikes over %u steps: %.3f s (1 ms bins, 100 ms windows)\n", N, n, steps,
           t1 - t0);
    /* 1e7 spikes: the rate is within 0.03 % x 5; a neuron's ~130 ISIs give
     * CV with sd ~0.09, averaged over 77,000; chi^2 from ~13,000 bins. */
    CHECK_MSG(fabs(st.rate_hz - 10.0) < 0.02, "rate %g", st.rate_hz);
    CHECK_MSG(fabs(st.cv_isi - sqrt(1 - p)) < 0.02, "cv %g", st.cv_isi);
    CHECK_MSG(fabs(st.fano - (1 - p)) < 0.03, "fano %g", st.fano);
    CHECK_MSG(fabs(st.synchrony * sqrt((double)N) - 1) < 0.06, "chi*sqrt(N) %g", st.synchrony * sqrt((double)N));
    /* fine bins cost no more than coarse ones */
    t0 = soma_clock_seconds();
    CHECK(soma_spike_stats_compute(sp, n, 0, N, 0.1, 0, steps, 0.1, 0.1, &st) == SOMA_STATUS_OK);
    t1 = soma_clock_seconds();
    printf("large: one-step bins and windows: %.3f s\n", t1 - t0);
    *np = n;
    *Np = N;
    *stepsp = steps;
    return sp;
}

/* --------------------------------------------------------------- plots */

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static int has_png_signature(const char *p) {
    size_t n = 0;
    unsigned char *b = t_read_file(p, &n);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    int ok = b && n > 8 && memcmp(b, sig, 8) == 0;
    free(b);
    return ok;
}

static cairo_surface_t *load(const char *p) {
    cairo_surface_t *s = cairo_image_surface_create_from_png(p);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(s);
        return NULL;
    }
    cairo_surface_flush(s);
    return s;
}

static uint32_t pixel(cairo_surface_t *s, int x, int y) {
    uint32_t p;
    memcpy(&p, cairo_image_surface_get_data(s) + (size_t)y * cairo_image_surface_get_stride(s) + 4 * (size_t)x, 4);
    return p & 0xFFFFFFu;
}

/* Pixels in [x0,x1) x [y0,y1) with some channel below 160 (not white
 * background nor light grid). */
static long count_ink(cairo_surface_t *s, int x0, int y0, int x1, int y1) {
    long k = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            uint32_t p = pixel(s, x, y);
            if (((p >> 16) & 255) < 160 || ((p >> 8) & 255) < 160 || (p & 255) < 160) k++;
        }
    return k;
}

static void test_plot_raster(const char *dir, const soma_spike *big, size_t nbig, size_t Nbig, uint32_t steps) {
    char p[600], q[600], err[512];
    const char *names[2] = {"exc", "inh"};
    const uint32_t first[2] = {0, 100};
    const size_t size[2] = {100, 25};

    /* empty vs one spike of inh's neuron 0 (global id 100) at step 500 of
     * [0, 1000): the raster's pixels differ only in that mark, in inh's
     * colour (tab10 orange), half-way across, at row 100 of 125 from the top */
    snprintf(p, sizeof p, "%s/sim_empty.png", dir);
    CHECK(soma_plot_sim_raster(p, NULL, 0, 2, names, first, size, 0.1, 0, 1000, 0, 5.0, err, sizeof err) ==
          SOMA_STATUS_OK);
    const soma_spike one = {500, 100};
    snprintf(q, sizeof q, "%s/sim_one.png", dir);
    CHECK(soma_plot_sim_raster(q, &one, 1, 2, names, first, size, 0.1, 0, 1000, 0, 5.0, err, sizeof err) ==
          SOMA_STATUS_OK);
    CHECK(has_png_signature(p) && has_png_signature(q));
    cairo_surface_t *a = load(p), *b = load(q);
    CHECK(a && b);
    if (a && b) {
        int w = cairo_image_surface_get_width(a), h = cairo_image_surface_get_height(a);
        CHECK(w == 900 && h == 720);
        /* raster box: x 72..878, y 66..486 (header comment of the layout) */
        const double L = 72, R = 878, T = 66, Bt = 486;
        long ndiff = 0, orange = 0;
        int minx = w, maxx = -1, miny = h, maxy = -1;
        for (int y = (int)T + 1; y < (int)Bt; y++)
            for (int x = (int)L + 1; x < (int)R; x++)
                if (pixel(a, x, y) != pixel(b, x, y)) {
                    ndiff++;
                    orange += pixel(b, x, y) == 0xFF7F0Eu;
                    if (x < minx) minx = x;
                    if (x > maxx) maxx = x;
                    if (y < miny) miny = y;
                    if (y > maxy) maxy = y;
                }
        CHECK(ndiff > 0 && ndiff <= 12);
        CHECK(orange == ndiff);
        double xc = L + (500.5 / 1000) * (R - L), yc = T + (100.5 / 125) * (Bt - T);
        CHECK_MSG(minx >= xc - 3 && maxx <= xc + 3, "mark x %d..%d, expected near %.1f", minx, maxx, xc);
        CHECK_MSG(miny >= yc - 3 && maxy <= yc + 3, "mark y %d..%d, expected near %.1f", miny, maxy, yc);
        /* the rate panel (under y 520) shows the spike as ink: 1 spike /
         * (25 neurons * 5 ms) = 8 Hz in one bin */
        CHECK(count_ink(b, 80, 530, 870, 660) > count_ink(a, 80, 530, 870, 660));
    }
    if (a) cairo_surface_destroy(a);
    if (b) cairo_surface_destroy(b);

    /* the big set, 8 "populations" cut out of it, 100 neurons each shown */
    if (big) {
        const char *pd[8] = {"L23E", "L23I", "L4E", "L4I", "L5E", "L5I", "L6E", "L6I"};
        const size_t pn[8] = {20683, 5834, 21915, 5479, 4850, 1065, 14395, 2948};
        uint32_t pf[8];
        size_t acc = 0;
        for (int k = 0; k < 8; k++) { pf[k] = (uint32_t)acc; acc += pn[k]; }
        CHECK(acc == 77169 && Nbig <= acc);
        snprintf(p, sizeof p, "%s/sim_big.png", dir);
        double t0 = soma_clock_seconds();
        CHECK(soma_plot_sim_raster(p, big, nbig, 8, pd, pf, pn, 0.1, 0, steps, 100, 1.0, err, sizeof err) ==
              SOMA_STATUS_OK);
        printf("raster of %zu spikes: %.3f s\n", nbig, soma_clock_seconds() - t0);
        cairo_surface_t *s = load(p);
        CHECK(s != NULL);
        if (s) {
            /* 10 Hz, 100 rows each over ~13 s: every band is inked */
            for (int k = 0; k < 8; k++) {
                int y0 = 66 + (int)(420.0 * k / 8) + 4, y1 = 66 + (int)(420.0 * (k + 1) / 8) - 4;
                CHECK(count_ink(s, 200, y0, 860, y1) > 1000);
            }
            cairo_surface_destroy(s);
        }
        /* a window inside the run, NULL names */
        snprintf(p, sizeof p, "%s/sim_window.png", dir);
        CHECK(soma_plot_sim_raster(p, big, nbig, 8, NULL, pf, pn, 0.1, 5000, 7000, 50, 0.5, err, sizeof err) ==
              SOMA_STATUS_OK);
        CHECK(has_png_signature(p));
    }

    /* errors: path named, nothing written */
    err[0] = 0;
    CHECK(soma_plot_sim_raster("/nonexistent/dir/r.png", &one, 1, 2, names, first, size, 0.1, 0, 1000, 0, 5.0, err,
                               sizeof err) == SOMA_STATUS_IO);
    CHECK(strncmp(err, "/nonexistent/dir/r.png: ", 24) == 0);
    CHECK(!file_exists("/nonexistent/dir/r.png"));
    snprintf(p, sizeof p, "%s/sim_bad.png", dir);
    err[0] = 0;
    const size_t over[2] = {101, 25};
    CHECK(soma_plot_sim_raster(p, &one, 1, 2, names, first, over, 0.1, 0, 1000, 0, 5.0, err, sizeof err) ==
          SOMA_STATUS_INVALID);
    CHECK(strncmp(err, p, strlen(p)) == 0 && strstr(err, "overlap"));
    CHECK(soma_plot_sim_raster(p, &one, 1, 2, names, first, size, 0.1, 1000, 1000, 0, 5.0, err, sizeof err) ==
          SOMA_STATUS_INVALID);
    CHECK(soma_plot_sim_raster(p, &one, 1, 2, names, first, size, 0.1, 0, 1000, 0, 0.0, err, sizeof err) ==
          SOMA_STATUS_INVALID);
    CHECK(soma_plot_sim_raster(p, &one, 1, 0, names, first, size, 0.1, 0, 1000, 0, 5.0, err, sizeof err) ==
          SOMA_STATUS_INVALID);
    const soma_spike unsorted[2] = {{600, 1}, {500, 2}};
    CHECK(soma_plot_sim_raster(p, unsorted, 2, 2, names, first, size, 0.1, 0, 1000, 0, 5.0, err, sizeof err) ==
          SOMA_STATUS_INVALID);
    CHECK(!file_exists(p));
}

static void test_plot_rates(const char *dir) {
    char p[600], err[512];
    /* two bars, 1 Hz and 4 Hz: their heights in pixels keep that ratio */
    const char *two[2] = {"a", "b"};
    const double r2[2] = {1.0, 4.0};
    snprintf(p, sizeof p, "%s/rates2.png", dir);
    CHECK(soma_plot_rates(p, 2, two, r2, NULL, err, sizeof err) == SOMA_STATUS_OK);
    CHECK(has_png_signature(p));
    cairo_surface_t *s = load(p);
    CHECK(s != NULL);
    if (s) {
        CHECK(cairo_image_surface_get_width(s) == 900 && cairo_image_surface_get_height(s) == 420);
        /* slots of (900 - 72 - 22) / 2 px from x = 72: centres 273, 676 */
        int h[2] = {0, 0};
        const uint32_t col[2] = {0x1F77B4u, 0xFF7F0Eu};
        for (int k = 0; k < 2; k++)
            for (int y = 0; y < 420; y++) h[k] += pixel(s, k ? 676 : 273, y) == col[k];
        CHECK_MSG(h[0] > 40 && fabs((double)h[1] / h[0] - 4.0) < 0.15, "bar heights %d, %d", h[0], h[1]);
        cairo_surface_destroy(s);
    }

    /* the microcircuit's eight populations with published rates, one NaN */
    const char *pd[8] = {"L23E", "L23I", "L4E", "L4I", "L5E", "L5I", "L6E", "L6I"};
    const double ref[8] = {0.903, 2.965, 4.414, 5.876, 7.569, 8.633, 1.105, 7.829};
    double rate[8] = {0.87, 3.1, 4.2, 6.0, 7.3, NAN, 1.2, 8.1};
    snprintf(p, sizeof p, "%s/rates_pd.png", dir);
    CHECK(soma_plot_rates(p, 8, pd, rate, ref, err, sizeof err) == SOMA_STATUS_OK);
    CHECK(has_png_signature(p));
    /* many long names slant; NULL names number the bars */
    const char *longn[12] = {"excitatory-a", "excitatory-b", "inhibitory-a", "inhibitory-b", "x", "y",
                             "z", "w", "v", "u", "t", "s"};
    double r12[12];
    for (int k = 0; k < 12; k++) r12[k] = 0.5 * k;
    snprintf(p, sizeof p, "%s/rates_long.png", dir);
    CHECK(soma_plot_rates(p, 12, longn, r12, NULL, err, sizeof err) == SOMA_STATUS_OK);
    snprintf(p, sizeof p, "%s/rates_null.png", dir);
    CHECK(soma_plot_rates(p, 12, NULL, r12, r12, err, sizeof err) == SOMA_STATUS_OK);
    CHECK(has_png_signature(p));
    /* all zero: an axis still forms */
    double z[3] = {0, 0, 0};
    snprintf(p, sizeof p, "%s/rates_zero.png", dir);
    CHECK(soma_plot_rates(p, 3, NULL, z, NULL, err, sizeof err) == SOMA_STATUS_OK);

    /* errors */
    err[0] = 0;
    CHECK(soma_plot_rates("/nonexistent/dir/b.png", 8, pd, ref, NULL, err, sizeof err) == SOMA_STATUS_IO);
    CHECK(strncmp(err, "/nonexistent/dir/b.png: ", 24) == 0);
    CHECK(!file_exists("/nonexistent/dir/b.png"));
    snprintf(p, sizeof p, "%s/rates_bad.png", dir);
    rate[5] = -1;
    err[0] = 0;
    CHECK(soma_plot_rates(p, 8, pd, rate, ref, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK(strncmp(err, p, strlen(p)) == 0);
    CHECK(soma_plot_rates(p, 0, pd, ref, NULL, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK(soma_plot_rates(p, 8, pd, NULL, NULL, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK(!file_exists(p));
}

int main(void) {
    test_regular();
    test_known_isis();
    test_known_counts();
    test_window();
    test_empty_and_errors();
    test_poisson();
    size_t nbig = 0, Nbig = 0;
    uint32_t steps = 0;
    soma_spike *big = test_large(&nbig, &Nbig, &steps);

    const char *dir = t_tmpdir("spikestats");
    CHECK(dir != NULL);
    if (dir) {
        char d[512];
        snprintf(d, sizeof d, "%s", dir);
        test_plot_raster(d, big, nbig, Nbig, steps);
        test_plot_rates(d);
        if (!getenv("SOMA_KEEP_PLOTS")) {
            char cmd[600];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
            if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", d);
        } else printf("plots kept in %s\n", d);
    }
    free(big);
    return t_report("test_spikestats");
}
