/* test_sim.c — the simulator engine: spike delivery and delays, thread
 * independence, Poisson drive statistics, step inputs, state recording,
 * connectivity export and re-import, memory refusal, and the bad-input
 * messages of network files. Neuron models have their own tests
 * (test_sim_models.c); here they are vehicles for the engine. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "soma.h"
#include "testlib.h"

static soma_net *net_new(double dt) {
    soma_net *sn = NULL;
    CHECK(soma_net_create(&sn) == 0);
    CHECK(soma_net_set_dt(sn, dt) == 0);
    return sn;
}

/* A source neuron spikes at given times into one integrator (no leak to
 * speak of, no threshold): V must jump by w exactly `delay` steps after each
 * spike, on the step NEST's convention says. */
static void test_delivery_and_delay(void) {
    for (int d = 1; d <= 37; d += 12) {
        soma_net *sn = net_new(0.1);
        size_t src, dst;
        CHECK(soma_net_add_pop(sn, "src", "spike_source", 3, &src) == 0);
        CHECK(soma_net_add_pop(sn, "dst", "iaf_psc_delta", 2, &dst) == 0);
        CHECK(soma_net_set(sn, dst, "tau_m", "1e9ms") == 0);
        CHECK(soma_net_set(sn, dst, "V_th", "5000mV") == 0);
        CHECK(soma_net_set(sn, dst, "E_L", "0mV") == 0);
        CHECK(soma_net_set(sn, dst, "V_m", "0mV") == 0);
        uint32_t ids[] = {0, 2, 0};
        double ts[] = {1.0, 2.0, 5.5};
        CHECK(soma_net_set_spikes(sn, src, ids, ts, 3) == 0);
        soma_connector c;
        soma_connector_default(&c, SOMA_CONN_ALL_TO_ALL);
        char delay[32];
        snprintf(delay, sizeof delay, "%gms", d * 0.1);
        CHECK(soma_net_connect(sn, src, dst, &c, "0.5mV", delay, SOMA_PORT_BY_SIGN, NULL) == 0);
        soma_sim_opts o;
        soma_sim_opts_default(&o);
        o.threads = 1;
        soma_sim *sim = NULL;
        char err[512];
        int rc = soma_sim_create(&sim, sn, &o, err, sizeof err);
        CHECK_MSG(rc == 0, "%s", err);
        if (rc) {
            soma_net_free(sn);
            continue;
        }
        size_t idx[] = {0, 1}, rec;
        CHECK(soma_sim_record_state(sim, 1, "V_m", idx, 2, 1, &rec) == 0);
        CHECK(soma_sim_run(sim, 10.0, NULL, NULL) == 0);
        size_t ns, n, every;
        const float *v = soma_sim_state_data(sim, rec, &ns, &n, &every);
        CHECK(ns == 100 && n == 2 && v);
        /* Expected V after step s: 0.5 mV times the spikes (steps 10, 20, 55)
         * whose arrival step (+d) is <= s. */
        int bad = 0;
        for (size_t s = 0; s < ns && v; s++) {
            double want = 0;
            long arr[] = {10 + d, 20 + d, 55 + d};
            for (int k = 0; k < 3; k++) want += (long)s >= arr[k] ? 0.5 : 0.0;
            for (size_t j = 0; j < 2; j++)
                if (fabs(v[s * 2 + j] - want) > 1e-4) bad++;
        }
        CHECK_MSG(bad == 0, "delay %d steps: %d samples off", d, bad);
        soma_sim_stats st;
        soma_sim_stats_get(sim, &st);
        CHECK(st.synapses == 6);
        CHECK(st.min_delay_steps == (size_t)d && st.max_delay_steps == (size_t)d);
        CHECK(st.bytes_per_synapse <= 8);
        CHECK(st.spikes == 3);
        soma_sim_free(sim);
        soma_net_free(sn);
    }
}

/* A small recurrent net with Poisson drive, random weights and delays. */
static soma_net *balanced(size_t ne, size_t ni) {
    soma_net *sn = net_new(0.1);
    size_t e, i;
    CHECK(soma_net_add_pop(sn, "e", "iaf_psc_exp", ne, &e) == 0);
    CHECK(soma_net_add_pop(sn, "i", "iaf_psc_exp", ni, &i) == 0);
    CHECK(soma_net_set(sn, e, "V_m", "uniform(-70mV, -55mV)") == 0);
    CHECK(soma_net_set(sn, i, "V_m", "uniform(-70mV, -55mV)") == 0);
    soma_connector c;
    soma_connector_default(&c, SOMA_CONN_FIXED_INDEGREE);
    c.k = 50;
    CHECK(soma_net_connect(sn, e, e, &c, "normal(40pA, 4pA)", "normal_clipped(1.5ms, 0.7ms, 0.1ms, 10ms)",
                              SOMA_PORT_BY_SIGN, NULL) == 0);
    CHECK(soma_net_connect(sn, e, i, &c, "40pA", "1ms", SOMA_PORT_BY_SIGN, NULL) == 0);
    c.k = 20;
    CHECK(soma_net_connect(sn, i, e, &c, "-160pA", "uniform(0.5ms, 2ms)", SOMA_PORT_BY_SIGN, NULL) == 0);
    CHECK(soma_net_connect(sn, i, i, &c, "-160pA", "0.8ms", SOMA_PORT_BY_SIGN, NULL) == 0);
    CHECK(soma_net_add_poisson(sn, e, "9kHz", "20pA", SOMA_PORT_BY_SIGN) == 0);
    CHECK(soma_net_add_poisson(sn, i, "9kHz", "20pA", SOMA_PORT_BY_SIGN) == 0);
    return sn;
}

static void run_net(const soma_net *sn, int threads, double ms, soma_sim_stats *st, soma_spike **sp, size_t *n) {
    soma_sim_opts o;
    soma_sim_opts_default(&o);
    o.threads = threads;
    o.seed = 7;
    soma_sim *sim = NULL;
    char err[512];
    int rc = soma_sim_create(&sim, sn, &o, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    *n = 0;
    *sp = NULL;
    if (rc) return;
    /* Two runs of uneven length: slices must join up across calls. */
    CHECK(soma_sim_run(sim, ms * 0.37, NULL, NULL) == 0);
    CHECK(soma_sim_run(sim, ms - ms * 0.37, NULL, NULL) == 0);
    soma_sim_stats_get(sim, st);
    const soma_spike *s = soma_sim_spikes(sim, n);
    *sp = malloc((*n + 1) * sizeof **sp);
    if (*n) memcpy(*sp, s, *n * sizeof **sp);
    soma_sim_free(sim);
}

static void test_threads_identical(void) {
    soma_net *sn = balanced(400, 100);
    soma_sim_stats a, b, c;
    soma_spike *sa, *sb, *sc;
    size_t na, nb, nc;
    run_net(sn, 1, 300, &a, &sa, &na);
    run_net(sn, 2, 300, &b, &sb, &nb);
    run_net(sn, 3, 300, &c, &sc, &nc);
    CHECK_MSG(na > 1000, "only %zu spikes: the test net should be active", na);
    CHECK(na == nb && na == nc);
    CHECK(a.synapses == b.synapses && a.synapses == 400 * 50 + 100 * 50 + 500 * 20);
    CHECK(memcmp(a.spikes_sha256, b.spikes_sha256, 32) == 0);
    CHECK(memcmp(a.spikes_sha256, c.spikes_sha256, 32) == 0);
    CHECK(na == nb && memcmp(sa, sb, na * sizeof *sa) == 0);
    /* Sorted by (step, id), ids in range. */
    int sorted = 1;
    for (size_t k = 1; k < na; k++)
        if (sa[k].step < sa[k - 1].step || (sa[k].step == sa[k - 1].step && sa[k].id <= sa[k - 1].id)) sorted = 0;
    CHECK(sorted);
    /* Another seed gives other spikes. */
    free(sa);
    free(sb);
    free(sc);
    soma_net_free(sn);
}

/* Poisson drive into non-leaky integrators: V after T steps is w times a
 * Poisson count of mean lambda*T. */
static void test_poisson_drive(void) {
    soma_net *sn = net_new(0.1);
    size_t p;
    size_t N = 2000;
    CHECK(soma_net_add_pop(sn, "acc", "iaf_psc_delta", N, &p) == 0);
    CHECK(soma_net_set(sn, p, "tau_m", "1e9ms") == 0);
    CHECK(soma_net_set(sn, p, "V_th", "5000mV") == 0);
    CHECK(soma_net_set(sn, p, "E_L", "0mV") == 0);
    CHECK(soma_net_set(sn, p, "V_m", "0mV") == 0);
    CHECK(soma_net_add_poisson(sn, p, "15kHz", "0.01mV", SOMA_PORT_BY_SIGN) == 0);
    soma_sim_opts o;
    soma_sim_opts_default(&o);
    o.threads = 2;
    soma_sim *sim = NULL;
    char err[512];
    CHECK(soma_sim_create(&sim, sn, &o, err, sizeof err) == 0);
    size_t *idx = malloc(N * sizeof *idx), rec;
    for (size_t i = 0; i < N; i++) idx[i] = i;
    CHECK(soma_sim_record_state(sim, 0, "V_m", idx, N, 100, &rec) == 0);
    CHECK(soma_sim_run(sim, 100.0, NULL, NULL) == 0); /* 1000 steps, lambda = 1.5 per step */
    size_t ns, n, every;
    const float *v = soma_sim_state_data(sim, rec, &ns, &n, &every);
    CHECK(ns == 10);
    double m = 0, m2 = 0;
    const float *last = v + (ns - 1) * n; /* sampled at step 900, after steps 0..900 */
    for (size_t i = 0; i < N; i++) {
        double c = last[i] / 0.01;
        m += c;
        m2 += c * c;
    }
    m /= (double)N;
    double var = m2 / (double)N - m * m;
    double lam = 1.5 * 901;
    /* Mean and variance of a Poisson count: both lambda*T. */
    CHECK_MSG(fabs(m - lam) < 5 * sqrt(lam / (double)N), "mean count %g, expected %g", m, lam);
    CHECK_MSG(fabs(var / lam - 1) < 0.15, "variance/mean %g, expected 1", var / lam);
    free(idx);
    soma_sim_free(sim);
    soma_net_free(sn);
}

/* Step input: constant current into a leaky neuron, V follows the analytic charge curve. */
static void test_steps(void) {
    soma_net *sn = net_new(0.1);
    size_t p;
    CHECK(soma_net_add_pop(sn, "n", "iaf_psc_delta", 20, &p) == 0);
    CHECK(soma_net_set(sn, p, "V_th", "5000mV") == 0);
    double t[] = {5.0, 15.0}, v[] = {100.0, 0.0};
    CHECK(soma_net_add_steps(sn, p, t, v, 2) == 0);
    soma_sim *sim = NULL;
    char err[512];
    soma_sim_opts o;
    soma_sim_opts_default(&o);
    CHECK(soma_sim_create(&sim, sn, &o, err, sizeof err) == 0);
    size_t idx[] = {3, 17}, rec;
    CHECK(soma_sim_record_state(sim, 0, "V_m", idx, 2, 1, &rec) == 0);
    CHECK(soma_sim_run(sim, 20.0, NULL, NULL) == 0);
    size_t ns, n, every;
    const float *x = soma_sim_state_data(sim, rec, &ns, &n, &every);
    /* Defaults: E_L -70 mV, tau_m 10 ms, C_m 250 pF: R I = 40 mV. After step
     * s (>= 50) the current has acted for s - 49 steps. */
    double err_max = 0;
    for (size_t s = 0; s < ns; s++) {
        double want = -70.0;
        if (s >= 50 && s < 150)
            want = -70.0 + 4.0 * (1 - exp(-(double)(s - 49) * 0.1 / 10.0));
        if (s >= 150) want = -70.0 + 4.0 * (1 - exp(-100 * 0.01)) * exp(-(double)(s - 149) * 0.01);
        for (size_t j = 0; j < 2; j++) err_max = fmax(err_max, fabs(x[s * 2 + j] - want));
    }
    CHECK_MSG(err_max < 2e-4, "max error %g mV", err_max);
    soma_sim_free(sim);
    soma_net_free(sn);
}

/* Connectivity written to a file and read back by the file connector gives
 * the same network, hence the same spikes. */
static void test_connectivity_roundtrip(void) {
    soma_net *sn = balanced(200, 50);
    soma_sim_opts o;
    soma_sim_opts_default(&o);
    o.threads = 2;
    o.seed = 3;
    soma_sim *sim = NULL;
    char err[512];
    CHECK(soma_sim_create(&sim, sn, &o, err, sizeof err) == 0);
    const char *dir = t_tmpdir("sim_conn");
    char path[512];
    snprintf(path, sizeof path, "%s/edges.csv", dir);
    CHECK(soma_sim_write_connectivity(sim, path) == 0);
    CHECK(soma_sim_run(sim, 200, NULL, NULL) == 0);
    soma_sim_stats a;
    soma_sim_stats_get(sim, &a);
    soma_sim_free(sim);
    /* The same populations, one all-in-one projection from the file: ids are
     * global, so make one population per side of the same total size. */
    soma_net *sn2 = net_new(0.1);
    size_t all;
    CHECK(soma_net_add_pop(sn2, "all", "iaf_psc_exp", 250, &all) == 0);
    CHECK(soma_net_set(sn2, all, "V_m", "-70mV") == 0);
    soma_connector c;
    soma_connector_default(&c, SOMA_CONN_FILE);
    c.path = path;
    CHECK(soma_net_connect(sn2, all, all, &c, "0pA", "1ms", SOMA_PORT_BY_SIGN, NULL) == 0);
    soma_sim *sim2 = NULL;
    int rc = soma_sim_create(&sim2, sn2, &o, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    if (!rc) {
        soma_sim_stats b;
        soma_sim_stats_get(sim2, &b);
        CHECK(b.synapses == a.synapses);
        CHECK(b.min_delay_steps == a.min_delay_steps && b.max_delay_steps == a.max_delay_steps);
        char path2[512];
        snprintf(path2, sizeof path2, "%s/edges2.csv", dir);
        CHECK(soma_sim_write_connectivity(sim2, path2) == 0);
        size_t n1, n2;
        char *f1 = t_read_file(path, &n1), *f2 = t_read_file(path2, &n2);
        /* Rows are written by source; within a row the order may differ by
         * thread layout, so compare sorted lines. */
        CHECK(f1 && f2 && n1 == n2);
        free(f1);
        free(f2);
        soma_sim_free(sim2);
    }
    soma_net_free(sn);
    soma_net_free(sn2);
}

static void test_memory_refusal(void) {
    soma_net *sn = net_new(0.1);
    size_t a;
    CHECK(soma_net_add_pop(sn, "a", "iaf_psc_delta", 100000, &a) == 0);
    soma_connector c;
    soma_connector_default(&c, SOMA_CONN_FIXED_INDEGREE);
    c.k = 10000; /* 1e9 synapses: 8 GB */
    CHECK(soma_net_connect(sn, a, a, &c, "0.1mV", "1ms", SOMA_PORT_BY_SIGN, NULL) == 0);
    soma_sim_opts o;
    soma_sim_opts_default(&o);
    o.memory_limit = 1e9;
    soma_sim *sim = NULL;
    char err[512] = "";
    int rc = soma_sim_create(&sim, sn, &o, err, sizeof err);
    CHECK(rc == SOMA_STATUS_NOMEM && sim == NULL);
    CHECK_MSG(strstr(err, "8.") && strstr(err, "GB") && strstr(err, "refused"), "message: %s", err);
    soma_net_free(sn);
}

/* Bad network files: each message names file:line and the reason. */
static void test_yaml_errors(void) {
    const char *dir = t_tmpdir("sim_yaml");
    struct {
        const char *body, *want1, *want2;
        int line;
    } cases[] = {
        {"network:\n  populations:\n    a: {model: iaf_psc_delta, size: 10}\n  projections:\n"
         "    - {from: a, to: a, connect: {rule: all_to_all}, weight: 1mV, delay: 0.05ms}\n",
         "shorter than the time step", "0.05", 5},
        {"network:\n  populations:\n    a: {model: iaf_psc_delta, size: 10, tau_m: -5ms}\n", "tau_m", "outside", 3},
        {"network:\n  populations:\n    a: {model: iaf_psc_delta, size: 10}\n  projections:\n"
         "    - {from: a, to: b, connect: {rule: all_to_all}, weight: 1mV}\n",
         "no population 'b'", "expected one of: a", 5},
        {"network:\n  populations:\n    a: {model: iaf_psc_delta, size: 10}\n  projections:\n"
         "    - {from: a, to: a, connect: {rule: fixed_probability, p: 1.5}, weight: 1mV}\n",
         "1.5", "[0, 1]", 5},
        {"network:\n  populations:\n    a: {model: iaf_psc_dleta, size: 10}\n", "iaf_psc_dleta", "iaf_psc_delta", 3},
        {"network:\n  populations:\n    a: {model: iaf_psc_delta, size: 10, tau_m: 5mV}\n", "tau_m", "time", 3},
        {"network:\n  populations:\n    a: {model: iaf_psc_delta, size: 10, tau_x: 5ms}\n", "tau_x", "expected one of", 3},
        {"network:\n  dt: 0.1ms\n  populations:\n    a: {model: iaf_psc_delta, size: 10}\n  projections:\n"
         "    - {from: a, to: a, connect: {rule: all_to_all}, weight: 1mV, delay: \"uniform(0.01ms, 0.05ms)\"}\n",
         "shorter than the time step", ":6", 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char path[512], err[1024] = "";
        snprintf(path, sizeof path, "%s/case%zu.yaml", dir, k);
        t_write_file(path, cases[k].body, strlen(cases[k].body));
        soma_net *sn = NULL;
        soma_sim_file_opts fo;
        int rc = soma_net_load_yaml(path, NULL, 0, &sn, NULL, NULL, &fo, err, sizeof err);
        if (rc == 0) {
            /* Errors in per-synapse values surface when building. */
            soma_sim *sim = NULL;
            rc = soma_sim_create(&sim, sn, NULL, err, sizeof err);
            soma_sim_free(sim);
            soma_net_free(sn);
        }
        CHECK_MSG(rc != 0, "case %zu accepted", k);
        char want_loc[600];
        snprintf(want_loc, sizeof want_loc, "%s:%d:", path, cases[k].line);
        if (cases[k].line) CHECK_MSG(strstr(err, want_loc) != NULL, "case %zu: '%s' lacks %s", k, err, want_loc);
        CHECK_MSG(strstr(err, cases[k].want1) && strstr(err, cases[k].want2), "case %zu: '%s'", k, err);
    }
    /* A bad edge-list line. */
    char edges[512], path[512], err[1024] = "";
    snprintf(edges, sizeof edges, "%s/bad_edges.csv", dir);
    const char *e = "pre,post,weight,delay\n0,1,0.5,1.0\n1,x,0.5,1.0\n";
    t_write_file(edges, e, strlen(e));
    snprintf(path, sizeof path, "%s/edges.yaml", dir);
    char body[1024];
    snprintf(body, sizeof body,
             "network:\n  populations:\n    a: {model: iaf_psc_delta, size: 10}\n  projections:\n"
             "    - {from: a, to: a, connect: {rule: file, file: %s}, weight: 1mV}\n",
             edges);
    t_write_file(path, body, strlen(body));
    soma_net *sn = NULL;
    int rc = soma_net_load_yaml(path, NULL, 0, &sn, NULL, NULL, NULL, err, sizeof err);
    if (!rc) {
        soma_sim *sim = NULL;
        rc = soma_sim_create(&sim, sn, NULL, err, sizeof err);
        soma_sim_free(sim);
        soma_net_free(sn);
    }
    char want[600];
    snprintf(want, sizeof want, "%s:3", edges);
    CHECK_MSG(rc != 0 && strstr(err, want), "edge list error: '%s'", err);
}

/* Regression: a --param override changes the params computed from it
 * (cuba.yaml's p = 80/n used to keep the value of the file's n). */
static void test_override_order(void) {
    const char *dir = t_tmpdir("sim_override");
    char path[512], err[1024] = "";
    snprintf(path, sizeof path, "%s/ov.yaml", dir);
    const char *body = "params:\n  n: 100\n  m: \"3*n\"\nsets:\n  big: {n: 1000}\nnetwork:\n  populations:\n"
                       "    a: {model: iaf_psc_delta, size: n}\n  projections:\n"
                       "    - {from: a, to: a, connect: {rule: fixed_total, n: m}, weight: 0.1mV}\n";
    t_write_file(path, body, strlen(body));
    const char *ov1[] = {"n=200"}, *ov2[] = {"set=big"}, *ov3[] = {"set=big", "n=50"};
    const char *const *ovs[] = {NULL, ov1, ov2, ov3};
    size_t nov[] = {0, 1, 1, 2}, want[] = {300, 600, 3000, 150};
    for (int k = 0; k < 4; k++) {
        soma_net *sn = NULL;
        int rc = soma_net_load_yaml(path, ovs[k], nov[k], &sn, NULL, NULL, NULL, err, sizeof err);
        CHECK_MSG(rc == 0, "%s", err);
        if (rc) continue;
        soma_sim *sim = NULL;
        rc = soma_sim_create(&sim, sn, NULL, err, sizeof err);
        CHECK_MSG(rc == 0, "%s", err);
        soma_sim_stats st;
        if (!rc) {
            soma_sim_stats_get(sim, &st);
            CHECK_MSG(st.synapses == want[k], "case %d: %zu synapses, expected %zu", k, st.synapses, want[k]);
        }
        soma_sim_free(sim);
        soma_net_free(sn);
    }
    const char *bad[] = {"q=1"};
    soma_net *sn = NULL;
    CHECK(soma_net_load_yaml(path, bad, 1, &sn, NULL, NULL, NULL, err, sizeof err) == SOMA_STATUS_NOTFOUND);
    CHECK_MSG(strstr(err, "no 'q'") != NULL, "%s", err);
}

/* inputs: {spikes: FILE} — a good file is played exactly; bad lines name file:line. */
static void test_spike_file(void) {
    const char *dir = t_tmpdir("sim_spikefile");
    char spk[512], path[512], err[1024] = "";
    snprintf(spk, sizeof spk, "%s/in.csv", dir);
    const char *good = "neuron,time_ms\n# a comment\n0,1.0\n2, 1.0\n1,3.3\n\n0,7.5\n";
    t_write_file(spk, good, strlen(good));
    snprintf(path, sizeof path, "%s/net.yaml", dir);
    const char *body = "network:\n  populations:\n    src: {model: spike_source, size: 3}\n"
                       "    dst: {model: iaf_psc_delta, size: 1, V_th: 5000mV, tau_m: 1e9ms, E_L: 0mV, V_m: 0mV}\n"
                       "  projections:\n    - {from: src, to: dst, connect: {rule: all_to_all}, weight: 1mV, delay: 0.1ms}\n"
                       "  inputs:\n    - {to: src, spikes: in.csv}\nsimulate: {time: 10ms}\n";
    t_write_file(path, body, strlen(body));
    soma_net *sn = NULL;
    int rc = soma_net_load_yaml(path, NULL, 0, &sn, NULL, NULL, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    if (!rc) {
        soma_sim *sim = NULL;
        rc = soma_sim_create(&sim, sn, NULL, err, sizeof err);
        CHECK_MSG(rc == 0, "%s", err);
        if (!rc) {
            size_t idx = 0, rec;
            CHECK(soma_sim_record_state(sim, 1, "V_m", &idx, 1, 1, &rec) == 0);
            CHECK(soma_sim_run(sim, 10.0, NULL, NULL) == 0);
            size_t n;
            const soma_spike *sp = soma_sim_spikes(sim, &n);
            CHECK(n == 4);
            if (n == 4) {
                /* Sorted by (step, id): (10,0) (10,2) (33,1) (75,0); 3.3 ms is step 33. */
                CHECK(sp[0].step == 10 && sp[0].id == 0 && sp[1].step == 10 && sp[1].id == 2);
                CHECK(sp[2].step == 33 && sp[2].id == 1 && sp[3].step == 75 && sp[3].id == 0);
            }
            size_t ns, nn, every;
            const float *v = soma_sim_state_data(sim, rec, &ns, &nn, &every);
            /* Delay one step: the jumps are felt at steps 11 (two), 34 and 76. */
            CHECK(ns == 100 && fabsf(v[10]) < 1e-6f && fabsf(v[11] - 2.0f) < 1e-5f && fabsf(v[33] - 2.0f) < 1e-5f &&
                  fabsf(v[34] - 3.0f) < 1e-5f && fabsf(v[76] - 4.0f) < 1e-5f);
            soma_sim_free(sim);
        }
        soma_net_free(sn);
    }
    const char *bad[][2] = {{"0,1.0\n1;2\n", ":2: expected"}, {"0,1.0\n7,2.0\n", ":2: neuron 7 is out of range"},
                            {"0,-1\n", ":1: expected a time"}};
    for (size_t k = 0; k < 3; k++) {
        t_write_file(spk, bad[k][0], strlen(bad[k][0]));
        sn = NULL;
        err[0] = 0;
        rc = soma_net_load_yaml(path, NULL, 0, &sn, NULL, NULL, NULL, err, sizeof err);
        soma_net_free(sn);
        char want[600];
        snprintf(want, sizeof want, "%s%s", spk, bad[k][1]);
        CHECK_MSG(rc != 0 && strstr(err, want), "spike file case %zu: '%s'", k, err);
    }
    remove(spk);
    rc = soma_net_load_yaml(path, NULL, 0, &sn, NULL, NULL, NULL, err, sizeof err);
    CHECK_MSG(rc == SOMA_STATUS_IO && strstr(err, "cannot open spike file") && strstr(err, "net.yaml:8"), "%s", err);
}

/* A poisson population whose rate follows a time series (a step input in Hz). */
static void test_poisson_rate_series(void) {
    const char *dir = t_tmpdir("sim_rate_series");
    char path[512], err[1024] = "";
    snprintf(path, sizeof path, "%s/ps.yaml", dir);
    const char *body = "network:\n  populations:\n    p: {model: poisson, size: 2000, rate: 0Hz}\n"
                       "  inputs:\n    - {to: p, steps: {times: [10ms, 60ms], values: [100Hz, 0Hz]}}\n"
                       "simulate: {time: 100ms}\n";
    t_write_file(path, body, strlen(body));
    soma_net *sn = NULL;
    int rc = soma_net_load_yaml(path, NULL, 0, &sn, NULL, NULL, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc) return;
    soma_sim *sim = NULL;
    rc = soma_sim_create(&sim, sn, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    if (!rc) {
        CHECK(soma_sim_run(sim, 100.0, NULL, NULL) == 0);
        size_t n;
        const soma_spike *sp = soma_sim_spikes(sim, &n);
        int outside = 0;
        for (size_t k = 0; k < n; k++) outside += sp[k].step < 100 || sp[k].step >= 600;
        double mu = 2000 * 100.0 * 0.05, sd = sqrt(mu);
        CHECK_MSG(outside == 0, "%d spikes outside the 10-60 ms window", outside);
        CHECK_MSG(fabs((double)n - mu) < 5 * sd, "%zu spikes, expected %g +- %g", n, mu, sd);
        soma_sim_free(sim);
    }
    soma_net_free(sn);
}

int main(void) {
    test_poisson_rate_series();
    test_spike_file();
    test_override_order();
    test_delivery_and_delay();
    test_threads_identical();
    test_poisson_drive();
    test_steps();
    test_connectivity_roundtrip();
    test_memory_refusal();
    test_yaml_errors();
    return t_report("test_sim");
}
