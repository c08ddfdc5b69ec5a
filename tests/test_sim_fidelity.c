/* test_sim_fidelity.c — the simulator against Brian2 on whole networks
 * (fixtures from tests/gen_brian_fidelity.py, which runs Brian2 2.5, numpy
 * target, float64, on soma's own connectivity; CI needs no Brian2).
 *
 * 1. tests/fidelity/net100.yaml: 50 input spike trains drive 100 lif_cuba
 *    neurons (80 exc, 20 inh, recurrent, per-synapse weights, delays 1-3 ms)
 *    for 1 s. First soma's connectivity is compared with the one Brian2 used
 *    (tests/fixtures/fid_conn.csv), so a changed connector shows up as such
 *    and not as a spike mismatch. Then every Brian2 spike (neuron, step) is
 *    matched one-to-one to a soma spike of the same neuron within +-1 step;
 *    the criterion is >= 99 % of the spikes matched, both ways.
 *    Tighter, at what is measured (99.63 %): >= 99.5 % of Brian2's spikes
 *    at the very same step. The float32 bias lif_cuba once had (P v with P
 *    = exp(-dt/tau) rounded) gave 98.5 %, and passed the one-step criterion.
 *    Within one neuron spikes are >= 50 steps apart (refractoriness), so a
 *    spike can be within one step of at most one spike of the other side and
 *    the matching is unique.
 * 2. examples/cuba.yaml (4000 neurons, 1 s) for seeds 1..10: soma's mean
 *    rate per population over the seeds within 1.5 % of Brian2's mean on
 *    the same seeds' connectivity (tests/fixtures/fid_cuba_rates.csv;
 *    measured +0.47 % exc, +0.04 % inh). Paired by seed the difference has
 *    an sd of 1.9 % (exc), so the mean of ten has a standard error of
 *    ~0.6 %: 1.5 % is 2.5 standard errors. tau_i x 1.03 moves the means by
 *    -2.1 % / -2.5 % and fails it; a refractory period one step longer
 *    moves them by less than the noise (+0.7 %): test_sim_models checks
 *    lif_cuba's refractory period step by step instead.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

static char test_dir[1024], examples_dir[1024];

/* ------------------------------------------------------------ files */

typedef struct syn_row {
    long pre, post, dsteps;
    float w;
} syn_row;

static int cmp_syn(const void *a, const void *b) {
    const syn_row *x = a, *y = b;
    if (x->pre != y->pre) return x->pre < y->pre ? -1 : 1;
    if (x->post != y->post) return x->post < y->post ? -1 : 1;
    return 0;
}

/* Connectivity CSV: "pre,post,weight,D" with D a delay in ms (dt_ms > 0,
 * converted to steps) or in steps (dt_ms == 0). Sorted by (pre, post). */
static syn_row *read_conn(const char *path, double dt_ms, size_t *n) {
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "cannot read %s", path);
    *n = 0;
    if (!f) return NULL;
    size_t cap = 1024;
    syn_row *r = malloc(cap * sizeof *r);
    char line[256];
    while (r && fgets(line, sizeof line, f)) {
        long a, b;
        double w, d;
        if (sscanf(line, "%ld,%ld,%lf,%lf", &a, &b, &w, &d) != 4) continue; /* header */
        if (*n == cap) {
            syn_row *g = realloc(r, 2 * cap * sizeof *r);
            if (!g) break;
            r = g, cap *= 2;
        }
        r[*n].pre = a, r[*n].post = b, r[*n].w = (float)w;
        r[*n].dsteps = dt_ms > 0 ? lround(d / dt_ms) : lround(d);
        (*n)++;
    }
    fclose(f);
    if (r) qsort(r, *n, sizeof *r, cmp_syn);
    return r;
}

/* Spike CSV "step,neuron" ('#' lines and the header skipped). */
static soma_spike *read_spikes(const char *path, size_t *n) {
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "cannot read %s", path);
    *n = 0;
    if (!f) return NULL;
    size_t cap = 1024;
    soma_spike *s = malloc(cap * sizeof *s);
    char line[256];
    while (s && fgets(line, sizeof line, f)) {
        unsigned long st, id;
        if (line[0] == '#' || sscanf(line, "%lu,%lu", &st, &id) != 2) continue;
        if (*n == cap) {
            soma_spike *g = realloc(s, 2 * cap * sizeof *s);
            if (!g) break;
            s = g, cap *= 2;
        }
        s[*n].step = (uint32_t)st, s[*n].id = (uint32_t)id;
        (*n)++;
    }
    fclose(f);
    return s;
}

static int cmp_id_step(const void *a, const void *b) {
    const soma_spike *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    if (x->step != y->step) return x->step < y->step ? -1 : 1;
    return 0;
}

/* One-to-one matching of spike lists a and b (each sorted by (id, step)):
 * pairs of the same neuron at most `tol` steps apart, closest first.
 * Returns the number of pairs; *exact gets those at the same step. */
static size_t match(const soma_spike *a, size_t na, const soma_spike *b, size_t nb, uint32_t tol, size_t *exact) {
    uint8_t *used = calloc(nb ? nb : 1, 1);
    size_t m = 0, ex = 0, j0 = 0;
    for (size_t i = 0; i < na && used; i++) {
        while (j0 < nb && (b[j0].id < a[i].id || (b[j0].id == a[i].id && b[j0].step + tol < a[i].step))) j0++;
        size_t best = nb;
        uint32_t bd = tol + 1;
        for (size_t j = j0; j < nb && b[j].id == a[i].id && b[j].step <= a[i].step + tol; j++) {
            uint32_t d = b[j].step > a[i].step ? b[j].step - a[i].step : a[i].step - b[j].step;
            if (!used[j] && d < bd) bd = d, best = j;
        }
        if (best < nb) used[best] = 1, m++, ex += bd == 0;
    }
    free(used);
    *exact = ex;
    return m;
}

/* ------------------------------------------------------------ net100 */

static void test_net100(void) {
    char path[1400], err[600];
    snprintf(path, sizeof path, "%s/fidelity/net100.yaml", test_dir);
    soma_net *sn = NULL;
    soma_sim_file_opts fo;
    int rc = soma_net_load_yaml(path, NULL, 0, &sn, NULL, NULL, &fo, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc) return;
    soma_sim_opts o;
    soma_sim_opts_default(&o);
    o.seed = fo.seed;
    o.threads = 2; /* the result must not depend on the thread count */
    o.record_spikes = 1;
    soma_sim *sim = NULL;
    rc = soma_sim_create(&sim, sn, &o, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc) {
        soma_net_free(sn);
        return;
    }
    double dt = soma_net_dt(sn);

    /* The connectivity Brian2 ran on. */
    snprintf(path, sizeof path, "%s/conn.csv", t_tmpdir("sim_fidelity"));
    CHECK(soma_sim_write_connectivity(sim, path) == 0);
    size_t nc = 0, nf = 0, same = 0;
    syn_row *c = read_conn(path, dt, &nc);
    snprintf(path, sizeof path, "%s/fixtures/fid_conn.csv", test_dir);
    syn_row *fx = read_conn(path, 0, &nf);
    for (size_t k = 0; c && fx && k < nc && k < nf; k++)
        same += c[k].pre == fx[k].pre && c[k].post == fx[k].post && c[k].w == fx[k].w && c[k].dsteps == fx[k].dsteps;
    CHECK_MSG(nc == nf && same == nf && nf > 1000,
              "soma's connectivity of net100.yaml differs from tests/fixtures/fid_conn.csv (%zu vs %zu synapses, "
              "%zu equal): a connector, weight or delay draw changed; regenerate with tests/gen_brian_fidelity.py",
              nc, nf, same);
    long dmin = 1000, dmax = 0;
    for (size_t k = 0; fx && k < nf; k++) dmin = fx[k].dsteps < dmin ? fx[k].dsteps : dmin,
                                          dmax = fx[k].dsteps > dmax ? fx[k].dsteps : dmax;
    CHECK_MSG(dmin == 10 && dmax == 30, "delays %ld..%ld steps; net100.yaml draws 1-3 ms", dmin, dmax);
    free(c);
    free(fx);

    /* Spikes of the 100 neurons (ids from 50 on; 0..49 are the inputs). */
    rc = soma_sim_run(sim, fo.time_ms, NULL, NULL);
    CHECK(rc == 0);
    size_t ns_all = 0, ns = 0, nb = 0;
    const soma_spike *sp = soma_sim_spikes(sim, &ns_all);
    soma_spike *s = malloc((ns_all ? ns_all : 1) * sizeof *s);
    for (size_t k = 0; s && k < ns_all; k++)
        if (sp[k].id >= 50) s[ns++] = sp[k];
    snprintf(path, sizeof path, "%s/fixtures/fid_brian_spikes.csv", test_dir);
    soma_spike *b = read_spikes(path, &nb);
    if (s && b) {
        qsort(s, ns, sizeof *s, cmp_id_step);
        qsort(b, nb, sizeof *b, cmp_id_step);
        size_t ex = 0, ex2 = 0, m = match(b, nb, s, ns, 1, &ex), m2 = match(s, ns, b, nb, 1, &ex2);
        double T = fo.time_ms * 1e-3, rate = (double)nb / (100 * T);
        printf("net100: Brian2 %zu spikes (%.2f Hz), soma %zu; exact step %.2f %% of Brian2's; within one step "
               "%.2f %% of Brian2's, %.2f %% of soma's\n",
               nb, rate, ns, 100.0 * (double)ex / (double)nb, 100.0 * (double)m / (double)nb,
               100.0 * (double)m2 / (double)(ns ? ns : 1));
        CHECK_MSG(rate >= 5 && rate <= 30, "Brian2's net100 rate %.2f Hz; the test wants 5-30 Hz", rate);
        CHECK_MSG((double)m >= 0.99 * (double)nb, "%zu of %zu Brian2 spikes matched within one step", m, nb);
        CHECK_MSG((double)ex >= 0.995 * (double)nb, "%zu of %zu Brian2 spikes at the same step (want >= 99.5 %%)", ex, nb);
        CHECK_MSG((double)m2 >= 0.99 * (double)ns, "%zu of %zu soma spikes matched within one step", m2, ns);
        CHECK(m == m2);
    }
    free(s);
    free(b);
    soma_sim_free(sim);
    soma_net_free(sn);
}

/* ------------------------------------------------------------ cuba */

static void test_cuba(void) {
    char path[1400], err[600];
    snprintf(path, sizeof path, "%s/fixtures/fid_cuba_rates.csv", test_dir);
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "cannot read %s", path);
    if (!f) return;
    long seeds[64];
    double br[64][2];
    size_t n = 0;
    char line[512];
    while (n < 64 && fgets(line, sizeof line, f))
        if (line[0] != '#' && sscanf(line, "%ld,%lf,%lf", &seeds[n], &br[n][0], &br[n][1]) == 3) n++;
    fclose(f);
    CHECK(n >= 5);

    snprintf(path, sizeof path, "%s/cuba.yaml", examples_dir);
    double sum[2] = {0, 0}, bsum[2] = {0, 0}, sq[2] = {0, 0};
    for (size_t k = 0; k < n; k++) {
        soma_net *sn = NULL;
        soma_sim_file_opts fo;
        int rc = soma_net_load_yaml(path, NULL, 0, &sn, NULL, NULL, &fo, err, sizeof err);
        CHECK_MSG(rc == 0, "%s", err);
        if (rc) return;
        soma_sim_opts o;
        soma_sim_opts_default(&o);
        o.seed = (uint64_t)seeds[k];
        o.threads = 2;
        o.record_spikes = 0;
        soma_sim *sim = NULL;
        rc = soma_sim_create(&sim, sn, &o, err, sizeof err);
        CHECK_MSG(rc == 0, "%s", err);
        if (!rc) rc = soma_sim_run(sim, fo.time_ms, NULL, NULL);
        CHECK(rc == 0);
        CHECK(soma_sim_pop_count(sim) == 2);
        for (size_t p = 0; !rc && p < 2; p++) {
            soma_sim_pop_info pi;
            soma_sim_pop(sim, p, &pi);
            double r = (double)pi.spikes / ((double)pi.size * fo.time_ms * 1e-3);
            sum[p] += r, sq[p] += r * r, bsum[p] += br[k][p];
        }
        soma_sim_free(sim);
        soma_net_free(sn);
    }
    const char *name[2] = {"exc", "inh"};
    for (int p = 0; p < 2; p++) {
        double m = sum[p] / (double)n, bm = bsum[p] / (double)n;
        double sd = sqrt(fmax(0, (sq[p] - (double)n * m * m) / (double)(n - 1)));
        printf("cuba %s: soma %.3f Hz (sd over %zu seeds %.3f), Brian2 %.3f Hz: %+.2f %%\n", name[p], m, n, sd, bm,
               100.0 * (m - bm) / bm);
        CHECK_MSG(fabs(m - bm) <= 0.015 * bm, "cuba %s rate %.3f Hz, Brian2 %.3f Hz (want within 1.5 %%)", name[p], m, bm);
    }
}

int main(void) {
    const char *d = getenv("SOMA_TEST_DIR"), *e = getenv("SOMA_EXAMPLES");
    snprintf(test_dir, sizeof test_dir, "%s", d ? d : "tests");
    snprintf(examples_dir, sizeof examples_dir, "%s", e ? e : "examples");
    test_net100();
    test_cuba();
    return t_report("test_sim_fidelity");
}
