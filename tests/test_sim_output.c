/* test_sim_output.c — a simulation session and its outputs (src/sim/output.c):
 *   1. metrics.json, parsed back, holds per population the rate (from the
 *      simulator's counters over the measured window) and the CV, Fano
 *      factor and synchrony that soma_spike_stats_compute gives for the
 *      window after the warm-up, and the run's numbers (time, warm-up,
 *      neurons, spikes);
 *   2. the reference-rate comparison: measured rate, reference, relative
 *      difference, in metrics.json too; a population the file does not have
 *      compares as NaN (null);
 *   3. records and plots: spikes.bin (header and count), spikes.csv,
 *      state and population-rate traces, raster.png and rates.png;
 *   4. an atomic write that fails (its temporary file cannot be created, the
 *      folder does not exist, or the rename fails) leaves an earlier
 *      metrics.json intact and no temporary file behind;
 *   5. record.spikes [POP]: the others' statistics are NaN, rates are not. */
#define _POSIX_C_SOURCE 200809L
#include "soma.h"
#include "testlib.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[512];

static const char *net_yaml =
    "network:\n"
    "  dt: 0.1ms\n"
    "  populations:\n"
    "    e: {model: iaf_psc_exp, size: 160, V_m: \"uniform(-70mV, -55mV)\"}\n"
    "    i: {model: iaf_psc_exp, size: 40, V_m: \"uniform(-70mV, -55mV)\"}\n"
    "  projections:\n"
    "    - {from: e, to: [e, i], connect: {rule: fixed_indegree, k: 20}, weight: 40pA, delay: 1.5ms}\n"
    "    - {from: i, to: [e, i], connect: {rule: fixed_indegree, k: 5}, weight: -160pA, delay: 0.8ms}\n"
    "  inputs:\n"
    "    - {to: [e, i], poisson: {rate: 9kHz, weight: 20pA}}\n"
    "simulate:\n"
    "  time: 400ms\n"
    "  warmup: 50ms\n"
    "  reference_rates: {e: 10Hz}\n"
    "  record: {spikes: all, state: [{pop: e, var: V_m, neurons: 2, every: 1ms}]}\n";

/* The number after "KEY": { ... "POP": in a metrics.json text; NaN for null or absent. */
static double json_pop(const char *js, const char *key, const char *pop) {
    char k[128];
    snprintf(k, sizeof k, "\"%s\": {", key);
    const char *p = strstr(js, k);
    if (!p) return -1e300;
    const char *end = strchr(p, '}');
    snprintf(k, sizeof k, "\"%s\": ", pop);
    const char *q = strstr(p, k);
    if (!q || q > end) return -1e300;
    q += strlen(k);
    if (!strncmp(q, "null", 4)) return NAN;
    return strtod(q, NULL);
}

/* The scalar after "KEY": in a metrics.json text. */
static double json_num(const char *js, const char *key) {
    char k[128];
    snprintf(k, sizeof k, "\"%s\": ", key);
    const char *p = strstr(js, k);
    return p ? strtod(p + strlen(k), NULL) : -1e300;
}

/* %.6g round trip: equal to 6 significant digits, or both NaN. */
static int same6(double a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return fabs(a - b) <= 1e-5 * fmax(fabs(a), fabs(b)) + 1e-12;
}

static void test_outputs(void) {
    char path[1024], err[1024] = "";
    snprintf(path, sizeof path, "%s/net.yaml", dir);
    CHECK(t_write_file(path, net_yaml, strlen(net_yaml)) == 0);
    soma_net *net = NULL;
    soma_sim_file_opts fo;
    int rc = soma_net_load_yaml(path, NULL, 0, &net, NULL, NULL, &fo, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc) return;
    /* The loader refuses a reference for a population it lacks; a caller
     * filling the options by hand can still give one. */
    CHECK(fo.n_ref == 1);
    snprintf(fo.ref_pop[1], sizeof fo.ref_pop[1], "nosuch");
    fo.ref_hz[1] = 3.0;
    fo.n_ref = 2;
    soma_sim_opts so;
    soma_sim_opts_default(&so);
    so.threads = 1;
    soma_sim *sim = NULL;
    rc = soma_sim_create(&sim, net, &so, err, sizeof err);
    soma_net_free(net);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc) return;
    soma_sim_session *s = NULL;
    CHECK_MSG(soma_sim_session_create(&s, sim, &fo, "net.yaml", err, sizeof err) == 0, "%s", err);
    if (!s) { soma_sim_free(sim); return; }
    CHECK(soma_sim_session_run(s, NULL, NULL) == 0);

    soma_sim_stats st;
    soma_sim_stats_get(sim, &st);
    soma_sim_summary sum;
    CHECK(soma_sim_session_summary(s, &sum) == 0);
    CHECK(sum.step0 == 500 && sum.step1 == 4500 && st.steps == 4500);
    CHECK_NEAR(sum.time_ms, 400.0, 1e-6); /* dt is 0.1 in float */
    CHECK_NEAR(sum.warmup_ms, 50.0, 1e-6);
    CHECK(sum.cancelled == 0 && sum.spikes_recorded == 1);

    size_t nsp = 0;
    const soma_spike *sp = soma_sim_spikes(sim, &nsp);
    CHECK(sp != NULL && nsp > 100);
    /* The window's own statistics, and the rate from the spikes in it. */
    soma_spike_stats want[2];
    double rate[2] = {0, 0};
    for (size_t p = 0; p < 2; p++) {
        soma_sim_pop_info pi;
        soma_sim_pop(sim, p, &pi);
        CHECK(soma_spike_stats_compute(sp, nsp, (uint32_t)pi.first, pi.size, st.dt_ms, 500, 4500, 1.0, 100.0,
                                       &want[p]) == 0);
        size_t c = 0;
        for (size_t k = 0; k < nsp; k++)
            c += sp[k].step >= 500 && sp[k].id >= pi.first && sp[k].id < pi.first + pi.size;
        rate[p] = (double)c / ((double)pi.size * 4000 * st.dt_ms * 1e-3);
        soma_sim_pop_metrics m;
        CHECK(soma_sim_session_pop_metrics(s, p, &m) == 0);
        CHECK(!strcmp(m.name, p ? "i" : "e") && m.recorded == 1);
        CHECK_NEAR(m.rate_hz, rate[p], 1e-12);
        CHECK_NEAR(m.rate_hz, want[p].rate_hz, 1e-9);
        CHECK(m.cv_isi == want[p].cv_isi && m.fano == want[p].fano && m.synchrony == want[p].synchrony);
    }
    CHECK(rate[0] > 1.0); /* the network fires */

    /* Reference rates. */
    soma_sim_rate_cmp cmp[4];
    CHECK(soma_sim_compare_rates(s, NULL, 0) == 2);
    CHECK(soma_sim_compare_rates(s, cmp, 4) == 2);
    CHECK(!strcmp(cmp[0].pop, "e") && cmp[0].ref_hz == 10.0);
    CHECK_NEAR(cmp[0].rate_hz, rate[0], 1e-12);
    CHECK_NEAR(cmp[0].rel_diff, (rate[0] - 10.0) / 10.0, 1e-12);
    CHECK(!strcmp(cmp[1].pop, "nosuch") && isnan(cmp[1].rate_hz) && isnan(cmp[1].rel_diff));

    /* metrics.json, parsed back. */
    char mpath[1100];
    snprintf(mpath, sizeof mpath, "%s/metrics.json", dir);
    CHECK_MSG(soma_sim_write_metrics(s, mpath, err, sizeof err) == 0, "%s", err);
    size_t nj = 0, n = 0;
    char *js = t_read_file(mpath, &nj);
    CHECK(js != NULL);
    if (js) {
        js = realloc(js, nj + 1);
        js[nj] = 0;
        const char *pops[2] = {"e", "i"};
        for (size_t p = 0; p < 2; p++) {
            CHECK_MSG(same6(json_pop(js, "rate_hz", pops[p]), rate[p]), "rate_hz %s", pops[p]);
            CHECK_MSG(same6(json_pop(js, "cv_isi", pops[p]), want[p].cv_isi), "cv_isi %s", pops[p]);
            CHECK_MSG(same6(json_pop(js, "fano", pops[p]), want[p].fano), "fano %s", pops[p]);
            CHECK_MSG(same6(json_pop(js, "synchrony", pops[p]), want[p].synchrony), "synchrony %s", pops[p]);
        }
        CHECK(same6(json_pop(js, "reference_rate_hz", "e"), 10.0));
        CHECK(same6(json_pop(js, "rate_rel_diff", "e"), (rate[0] - 10.0) / 10.0));
        CHECK(isnan(json_pop(js, "rate_rel_diff", "nosuch")));
        CHECK(json_num(js, "neurons") == 200 && json_num(js, "synapses") == 200 * 25);
        CHECK(json_num(js, "spikes") == (double)nsp);
        CHECK(json_num(js, "time_ms") == 400 && json_num(js, "warmup_ms") == 50 && json_num(js, "threads") == 1);
        CHECK(strstr(js, "\"file\": \"net.yaml\"") && strstr(js, "\"cancelled\": false"));
        CHECK(js[nj - 2] == '}' && js[nj - 1] == '\n');
    }

    /* Records and plots. */
    CHECK_MSG(soma_sim_write_records(s, dir, 1, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(soma_sim_write_plots(s, dir, err, sizeof err) == 0, "%s", err);
    const char *files[] = {"spikes.bin", "spikes.csv", "pop_rate.csv", "state_e_V_m.csv", "raster.png", "rates.png"};
    for (size_t k = 0; k < 6; k++) {
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", dir, files[k]);
        CHECK_MSG(stat(path, &sb) == 0 && sb.st_size > 0, "%s", files[k]);
    }
    snprintf(path, sizeof path, "%s/spikes.bin", dir);
    unsigned char *bin = t_read_file(path, &n);
    CHECK(bin && n == 24 + 8 * nsp && !memcmp(bin, "SOMASPK1", 8));
    if (bin && n == 24 + 8 * nsp) {
        uint64_t c;
        memcpy(&c, bin + 16, 8);
        CHECK(c == nsp && !memcmp(bin + 24, sp, 8 * nsp));
    }
    free(bin);

    /* A failed write leaves the earlier file and no temporary behind: (a) the
     * temporary's name is taken by a folder, (b) the folder does not exist. */
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", mpath, (long)getpid());
    CHECK(mkdir(tmp, 0777) == 0);
    CHECK(soma_sim_write_metrics(s, mpath, err, sizeof err) == SOMA_STATUS_IO);
    CHECK_MSG(strstr(err, "cannot write") != NULL, "%s", err);
    size_t n2 = 0;
    char *js2 = t_read_file(mpath, &n2);
    CHECK(js && js2 && n2 == nj && !memcmp(js, js2, n2));
    free(js2);
    rmdir(tmp);
    snprintf(path, sizeof path, "%s/nosuch/metrics.json", dir);
    CHECK(soma_sim_write_metrics(s, path, err, sizeof err) == SOMA_STATUS_IO);
    CHECK(access(path, F_OK) != 0);
    js2 = t_read_file(mpath, &n2);
    CHECK(js2 != NULL);
    free(js2);
    /* (c) the rename fails (path is a folder that is not empty): the
     * temporary file is removed again. */
    snprintf(path, sizeof path, "%s/blocked", dir);
    snprintf(tmp, sizeof tmp, "%s/blocked/x", dir);
    CHECK(mkdir(path, 0777) == 0 && t_write_file(tmp, "x", 1) == 0);
    CHECK(soma_sim_write_metrics(s, path, err, sizeof err) == SOMA_STATUS_IO);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK_MSG(access(tmp, F_OK) != 0, "%s left behind", tmp);
    free(js);
    soma_sim_session_free(s);
    soma_sim_free(sim);
}

/* record.spikes [i]: e's spikes are not kept, so its statistics are NaN
 * (null in metrics.json) while its rate still comes from the counters. */
static void test_partial_record(void) {
    char path[1024], err[1024] = "";
    snprintf(path, sizeof path, "%s/net.yaml", dir);
    soma_net *net = NULL;
    soma_sim_file_opts fo;
    CHECK(soma_net_load_yaml(path, NULL, 0, &net, NULL, NULL, &fo, err, sizeof err) == 0);
    if (!net) return;
    fo.n_spike_pops = 1;
    snprintf(fo.spike_pops[0], sizeof fo.spike_pops[0], "i");
    fo.time_ms = 100;
    soma_sim_opts so;
    soma_sim_opts_default(&so);
    so.threads = 1;
    soma_sim *sim = NULL;
    CHECK(soma_sim_create(&sim, net, &so, err, sizeof err) == 0);
    soma_net_free(net);
    soma_sim_session *s = NULL;
    CHECK(sim && soma_sim_session_create(&s, sim, &fo, NULL, err, sizeof err) == 0);
    if (!s) { soma_sim_free(sim); return; }
    CHECK(soma_sim_session_run(s, NULL, NULL) == 0);
    soma_sim_pop_metrics m;
    CHECK(soma_sim_session_pop_metrics(s, 0, &m) == 0);
    CHECK(m.recorded == 0 && m.rate_hz > 0 && isnan(m.cv_isi) && isnan(m.fano) && isnan(m.synchrony));
    CHECK(soma_sim_session_pop_metrics(s, 1, &m) == 0 && m.recorded == 1);
    CHECK(soma_sim_session_pop_metrics(s, 2, &m) == SOMA_STATUS_INVALID);
    size_t nsp = 0;
    const soma_spike *sp = soma_sim_spikes(sim, &nsp);
    for (size_t k = 0; sp && k < nsp; k++)
        if (sp[k].id < 160) { CHECK(!"a spike of e was kept"); break; }
    soma_sim_session_free(s);
    soma_sim_free(sim);
}

int main(void) {
    const char *d = t_tmpdir("sim_output");
    if (!d) { fprintf(stderr, "cannot create a scratch directory\n"); return 1; }
    snprintf(dir, sizeof dir, "%s", d);
    test_outputs();
    test_partial_record();
    return t_report("test_sim_output");
}
