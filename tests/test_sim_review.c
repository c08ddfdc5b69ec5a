/* test_sim_review.c — regression tests for simulator bugs found in review:
 * each test is named after the bug it pins down. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "soma.h"
#include "testlib.h"

static soma_net *net_new(double dt) {
    soma_net *sn = NULL;
    CHECK(soma_net_create(&sn) == 0);
    CHECK(soma_net_set_dt(sn, dt) == 0);
    return sn;
}

/* A spike scheduled beyond 2^32 steps was truncated to 32 bits and fired at
 * (step mod 2^32): here at step 10 of a 2 ms run. */
static void test_spike_source_far_future_no_wrap(void) {
    soma_net *sn = net_new(0.1);
    size_t src;
    CHECK(soma_net_add_pop(sn, "src", "spike_source", 1, &src) == 0);
    uint32_t ids[] = {0};
    double ts[] = {(4294967296.0 + 10.0) * (double)0.1f}; /* the sim keeps dt as a float */
    CHECK(soma_net_set_spikes(sn, src, ids, ts, 1) == 0);
    soma_sim_opts o;
    soma_sim_opts_default(&o);
    o.threads = 1;
    soma_sim *sim = NULL;
    char err[512];
    int rc = soma_sim_create(&sim, sn, &o, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    if (!rc) {
        CHECK(soma_sim_run(sim, 2.0, NULL, NULL) == 0);
        size_t n = 99;
        soma_sim_spikes(sim, &n);
        CHECK_MSG(n == 0, "%zu spikes in 2 ms from a spike scheduled after 2^32 steps", n);
        soma_sim_free(sim);
    }
    soma_net_free(sn);
}

/* The memory estimate assumed 64 ring slots: a long delay (2^20 slots) made
 * the input ring far larger than the limit, and it was allocated anyway. */
static void test_memory_limit_counts_long_delay_ring(void) {
    soma_net *sn = net_new(0.1);
    size_t a, b;
    CHECK(soma_net_add_pop(sn, "a", "spike_source", 1, &a) == 0);
    CHECK(soma_net_add_pop(sn, "b", "iaf_psc_delta", 40, &b) == 0);
    soma_connector c;
    soma_connector_default(&c, SOMA_CONN_ALL_TO_ALL);
    /* 10^6 steps: 2^20 slots x 2 ports x 41 neurons x 4 bytes = 344 MB. */
    CHECK(soma_net_connect(sn, a, b, &c, "1mV", "100000ms", SOMA_PORT_BY_SIGN, NULL) == 0);
    soma_sim_opts o;
    soma_sim_opts_default(&o);
    o.threads = 1;
    o.memory_limit = 50e6;
    soma_sim *sim = NULL;
    char err[512] = "";
    int rc = soma_sim_create(&sim, sn, &o, err, sizeof err);
    CHECK_MSG(rc == SOMA_STATUS_NOMEM, "rc %d: a 344 MB input ring was built under a 50 MB limit (%s)", rc, err);
    CHECK_MSG(strstr(err, "GB") != NULL, "message: %s", err);
    soma_sim_free(sim);
    soma_net_free(sn);
}

/* soma_sim_record_state with n = 0: the second run grew the buffer with
 * realloc(p, 0), which frees p and returns NULL; the run then failed with
 * "out of memory" and soma_sim_free freed the buffer again. */
static void test_record_state_zero_neurons_two_runs(void) {
    soma_net *sn = net_new(0.1);
    size_t b;
    CHECK(soma_net_add_pop(sn, "b", "iaf_psc_delta", 4, &b) == 0);
    soma_sim *sim = NULL;
    char err[512];
    int rc = soma_sim_create(&sim, sn, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    if (!rc) {
        size_t rec;
        CHECK(soma_sim_record_state(sim, b, "V_m", NULL, 0, 1, &rec) == 0);
        CHECK(soma_sim_run(sim, 1.0, NULL, NULL) == 0);
        rc = soma_sim_run(sim, 1.0, NULL, NULL);
        CHECK_MSG(rc == 0, "second run: %d %s", rc, soma_sim_errmsg(sim));
        size_t ns = 0, n = 9;
        soma_sim_state_data(sim, rec, &ns, &n, NULL);
        CHECK(n == 0 && ns == 20);
        soma_sim_free(sim);
    }
    soma_net_free(sn);
}

/* A delay drawn per synapse that is too short is found at build time; the
 * message must name the delay's own line (as parse_proj promises), not the
 * connect line. */
static void test_yaml_random_delay_names_delay_line(void) {
    const char *dir = t_tmpdir("test_sim_review");
    char path[1024];
    snprintf(path, sizeof path, "%s/net.yaml", dir);
    const char *text = "network:\n"                                     /* 1 */
                       "  dt: 0.1ms\n"                                  /* 2 */
                       "  populations:\n"                               /* 3 */
                       "    a: {model: poisson, size: 4, rate: 10Hz}\n" /* 4 */
                       "    b: {model: iaf_psc_delta, size: 4}\n"       /* 5 */
                       "  projections:\n"                               /* 6 */
                       "    - from: a\n"                                /* 7 */
                       "      to: b\n"                                  /* 8 */
                       "      connect: {rule: all_to_all}\n"            /* 9 */
                       "      weight: 1mV\n"                            /* 10 */
                       "      delay: uniform(0.001ms, 0.002ms)\n";      /* 11 */
    CHECK(t_write_file(path, text, strlen(text)) == 0);
    soma_net *sn = NULL;
    char err[512] = "";
    int rc = soma_net_load_yaml(path, NULL, 0, &sn, NULL, NULL, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    if (!rc) {
        soma_sim *sim = NULL;
        rc = soma_sim_create(&sim, sn, NULL, err, sizeof err);
        CHECK(rc != 0);
        char want[1100];
        snprintf(want, sizeof want, "%s:11", path);
        CHECK_MSG(strstr(err, want) != NULL, "expected '%s' in: %s", want, err);
        soma_sim_free(sim);
    }
    soma_net_free(sn);
}

/* A from/to list of more than 64 populations was cut to its first 64
 * without a word: the rest got no projection. */
static void test_yaml_long_pop_list_refused(void) {
    const char *dir = t_tmpdir("test_sim_review_list");
    char path[1024];
    snprintf(path, sizeof path, "%s/net.yaml", dir);
    char text[8192];
    size_t len = (size_t)snprintf(text, sizeof text, "network:\n  populations:\n");
    for (int k = 0; k < 65; k++)
        len += (size_t)snprintf(text + len, sizeof text - len, "    p%d: {model: iaf_psc_delta, size: 1}\n", k);
    len += (size_t)snprintf(text + len, sizeof text - len, "  projections:\n    - from: [");
    for (int k = 0; k < 65; k++) len += (size_t)snprintf(text + len, sizeof text - len, "%sp%d", k ? ", " : "", k);
    len += (size_t)snprintf(text + len, sizeof text - len, "]\n      to: p0\n      connect: {rule: all_to_all}\n");
    CHECK(t_write_file(path, text, len) == 0);
    soma_net *sn = NULL;
    char err[512] = "";
    int rc = soma_net_load_yaml(path, NULL, 0, &sn, NULL, NULL, NULL, err, sizeof err);
    char want[1100];
    snprintf(want, sizeof want, "%s:", path);
    CHECK_MSG(rc != 0 && strstr(err, want) && strstr(err, "64"), "rc %d: %s", rc, err);
    soma_net_free(sn);
}

#ifdef _OPENMP
static void on_alarm(int sig) {
    (void)sig;
    static const char m[] = "test_sim_review: soma_sim_run hung (fewer OpenMP threads than sim threads)\n";
    ssize_t w = write(2, m, sizeof m - 1);
    (void)w;
    _exit(1);
}
#endif

/* With threads = 2 but an OpenMP team of one (soma_sim_run called inside a
 * parallel region with nesting off, or OMP_THREAD_LIMIT=1), thread 0 waited
 * forever at the slice barrier for a second thread that never came. */
static void test_run_with_smaller_omp_team_no_hang(void) {
#ifdef _OPENMP
    soma_net *sn = net_new(0.1);
    size_t a, b;
    CHECK(soma_net_add_pop(sn, "a", "poisson", 200, &a) == 0);
    CHECK(soma_net_set(sn, a, "rate", "50Hz") == 0);
    CHECK(soma_net_add_pop(sn, "b", "iaf_psc_delta", 200, &b) == 0);
    soma_connector c;
    soma_connector_default(&c, SOMA_CONN_ALL_TO_ALL);
    CHECK(soma_net_connect(sn, a, b, &c, "0.5mV", "1ms", SOMA_PORT_BY_SIGN, NULL) == 0);
    unsigned char sha[2][32];
    size_t nsp[2] = {0, 0};
    for (int pass = 0; pass < 2; pass++) {
        soma_sim_opts o;
        soma_sim_opts_default(&o);
        o.threads = 2;
        soma_sim *sim = NULL;
        char err[512];
        int rc = soma_sim_create(&sim, sn, &o, err, sizeof err);
        CHECK_MSG(rc == 0, "%s", err);
        if (rc) break;
        if (pass == 0) {
            CHECK(soma_sim_run(sim, 20.0, NULL, NULL) == 0);
        } else {
            signal(SIGALRM, on_alarm);
            alarm(20);
            int lv = omp_get_max_active_levels();
            omp_set_max_active_levels(1);
#pragma omp parallel num_threads(2)
            {
#pragma omp single
                CHECK(soma_sim_run(sim, 20.0, NULL, NULL) == 0);
            }
            omp_set_max_active_levels(lv);
            alarm(0);
        }
        soma_sim_stats st;
        CHECK(soma_sim_stats_get(sim, &st) == 0);
        memcpy(sha[pass], st.spikes_sha256, 32);
        nsp[pass] = st.spikes;
        soma_sim_free(sim);
    }
    CHECK(nsp[0] > 0 && nsp[0] == nsp[1]);
    CHECK(memcmp(sha[0], sha[1], 32) == 0);
    soma_net_free(sn);
#endif
}

int main(void) {
    test_spike_source_far_future_no_wrap();
    test_memory_limit_counts_long_delay_ring();
    test_record_state_zero_neurons_two_runs();
    test_yaml_random_delay_names_delay_line();
    test_run_with_smaller_omp_team_no_hang();
    test_yaml_long_pop_list_refused();
    return t_report("test_sim_review");
}
