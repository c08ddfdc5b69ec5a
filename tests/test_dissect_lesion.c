/* test_dissect_lesion.c — lesion and stimulate on simulated circuits
 * (soma_dissect_circuit_run, src/dissect/lesion.c):
 *
 *  - a lesioned neuron emits no spike, and the run is bit-identical (every
 *    other neuron's spikes, step for step) to a run without hooks whose
 *    edge list gives its outgoing synapses weight 0;
 *  - its target receives nothing from it during the window, and does
 *    before and after it;
 *  - a window: every spike before it equals the unlesioned run's, the
 *    lesioned neurons are silent inside it and fire again after it;
 *  - stimulate with a constant current: an iaf_psc_delta neuron without
 *    inputs fires with the analytic ISI t_ref + tau_m ln(RI / (RI - (V_th -
 *    V_reset))) inside the window, and not outside it; the others never;
 *  - stimulate with Poisson events that each make a spike: the rate is the
 *    input rate, and the run does not depend on the thread count;
 *  - bad options give an error naming the option. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "soma.h"
#include "testlib.h"

#define NA 20
#define NB 10
#define T_MS 400.0

static char edges_full[600], edges_cut[600];

/* The edge list a -> b: a_i -> b_(i mod NB) and b_((i+3) mod NB), 4 mV,
 * delay 1 ms; in the cut one, the synapses from a's neurons in cut[] weigh 0. */
static void write_edges(const char *path, const size_t *cut, size_t ncut) {
    char buf[4096];
    size_t len = 0;
    for (size_t i = 0; i < NA; i++) {
        int zero = 0;
        for (size_t k = 0; k < ncut; k++) zero |= cut[k] == i;
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%zu,%zu,%s,1.0\n%zu,%zu,%s,1.0\n", i, i % NB,
                                zero ? "0" : "4", i, (i + 3) % NB, zero ? "0" : "4");
    }
    CHECK(t_write_file(path, buf, len) == 0);
}

/* a (iaf_psc_delta, NA, Poisson-driven) -> b (NA... NB, Poisson-driven) by
 * an edge list, and b -> a back (all to all, inhibitory), so that what a
 * lesion changes in b comes back to a. */
static soma_net *make_ab(const char *edges) {
    soma_net *sn = NULL;
    CHECK(soma_net_create(&sn) == 0);
    size_t a, b;
    CHECK(soma_net_add_pop(sn, "a", "iaf_psc_delta", NA, &a) == 0);
    CHECK(soma_net_add_pop(sn, "b", "iaf_psc_delta", NB, &b) == 0);
    CHECK(soma_net_set(sn, a, "V_m", "uniform(-70mV, -55mV)") == 0);
    CHECK(soma_net_set(sn, b, "V_m", "uniform(-70mV, -55mV)") == 0);
    CHECK(soma_net_add_poisson(sn, a, "2kHz", "0.9mV", SOMA_PORT_BY_SIGN) == 0);
    CHECK(soma_net_add_poisson(sn, b, "1.5kHz", "0.9mV", SOMA_PORT_BY_SIGN) == 0);
    soma_connector c;
    soma_connector_default(&c, SOMA_CONN_RULE_FILE);
    c.path = edges;
    CHECK(soma_net_connect(sn, a, b, &c, "0mV", "1ms", SOMA_PORT_BY_SIGN, NULL) == 0);
    soma_connector_default(&c, SOMA_CONN_RULE_ALL_TO_ALL);
    CHECK(soma_net_connect(sn, b, a, &c, "-0.5mV", "1.5ms", SOMA_PORT_BY_SIGN, NULL) == 0);
    return sn;
}

static soma_dissect_circuit *run(const soma_net *sn, const soma_dissect_circuit_opts *o, int threads) {
    soma_sim_opts so;
    soma_sim_opts_default(&so);
    so.threads = threads;
    so.seed = 3;
    soma_dissect_circuit *c = NULL;
    char err[512];
    int rc = soma_dissect_circuit_run(sn, &so, o, &c, err, sizeof err);
    CHECK_MSG(rc == 0 && c, "%s", err);
    return c;
}

static int is_cut(uint32_t id, const size_t *cut, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (id == cut[k]) return 1;
    return 0;
}

/* A lesion over the whole run against zeroed outgoing weights. */
static void test_lesion_equals_zero_weights(int threads) {
    static const size_t cut[2] = {3, 7};
    soma_net *full = make_ab(edges_full), *zero = make_ab(edges_cut);
    soma_dissect_circuit_opts o;
    soma_dissect_circuit_opts_default(&o);
    o.action = SOMA_DISSECT_LESION, o.pop = "a", o.neurons = cut, o.nneurons = 2;
    o.t0_ms = 0, o.t1_ms = T_MS, o.time_ms = T_MS;
    soma_dissect_circuit *c = run(full, &o, threads);
    /* The reference: no hooks, the cut synapses weigh 0. */
    soma_sim_opts so;
    soma_sim_opts_default(&so);
    so.threads = threads, so.seed = 3;
    soma_sim *ref = NULL;
    char err[512];
    CHECK_MSG(soma_sim_create(&ref, zero, &so, err, sizeof err) == 0, "%s", err);
    if (c && ref) {
        CHECK(soma_sim_run(ref, T_MS, NULL, NULL) == 0);
        size_t nr = 0, kept = 0, cut_spikes = 0, same = 1, k = 0;
        const soma_spike *sr = soma_sim_spikes(ref, &nr);
        for (size_t i = 0; i < c->nspikes; i++) CHECK(!is_cut(c->spikes[i].id, cut, 2)); /* no spike leaves them */
        for (size_t i = 0; i < nr; i++) {
            if (is_cut(sr[i].id, cut, 2)) { /* the reference's lesioned neurons still fire */
                cut_spikes++;
                continue;
            }
            kept++;
            if (k >= c->nspikes || c->spikes[k].step != sr[i].step || c->spikes[k].id != sr[i].id) same = 0;
            k++;
        }
        CHECK_MSG(same && k == c->nspikes, "threads %d: %zu spikes lesioned, %zu in the reference (less the cut ones)",
                  threads, c->nspikes, kept);
        CHECK_MSG(cut_spikes > 20 && c->nspikes > 500, "a weak test: %zu spikes of the cut neurons, %zu in all",
                  cut_spikes, c->nspikes);
        CHECK(c->n == 2 && c->neurons[0] == 3 && c->neurons[1] == 7);
        CHECK(c->target_rate_hz[1] == 0);
    }
    /* The lesion matters: without it, b fires differently. */
    soma_sim *clean = NULL;
    CHECK(soma_sim_create(&clean, full, &so, err, sizeof err) == 0);
    if (clean && c) {
        CHECK(soma_sim_run(clean, T_MS, NULL, NULL) == 0);
        soma_sim_pop_info pb;
        soma_sim_pop(clean, 1, &pb);
        CHECK_MSG(pb.spikes != c->pops[1].spikes[1], "b's spikes: %llu with and without the lesion",
                  (unsigned long long)pb.spikes);
    }
    soma_sim_free(clean);
    soma_sim_free(ref);
    soma_dissect_circuit_free(c);
    soma_net_free(full);
    soma_net_free(zero);
}

/* src fires regularly (I_e); each of its spikes makes dst fire (20 mV jump
 * over a 15 mV gap, no other input). Lesion src in [100, 200) ms. */
static void test_target_receives_nothing(void) {
    soma_net *sn = NULL;
    CHECK(soma_net_create(&sn) == 0);
    size_t s, d;
    CHECK(soma_net_add_pop(sn, "src", "iaf_psc_delta", 1, &s) == 0);
    CHECK(soma_net_add_pop(sn, "dst", "iaf_psc_delta", 1, &d) == 0);
    CHECK(soma_net_set(sn, s, "I_e", "500pA") == 0);
    soma_connector c;
    soma_connector_default(&c, SOMA_CONN_RULE_ALL_TO_ALL);
    CHECK(soma_net_connect(sn, s, d, &c, "20mV", "1ms", SOMA_PORT_BY_SIGN, NULL) == 0);
    soma_dissect_circuit_opts o;
    soma_dissect_circuit_opts_default(&o);
    size_t idx = 0;
    o.action = SOMA_DISSECT_LESION, o.pop = "src", o.neurons = &idx, o.nneurons = 1;
    o.t0_ms = 100, o.t1_ms = 200, o.time_ms = 300;
    soma_dissect_circuit *r = run(sn, &o, 1);
    if (r) {
        /* no dst spike from 1 ms after the lesion starts to its end + 1 ms */
        size_t in_window = 0, before = 0, after = 0;
        for (size_t i = 0; i < r->nspikes; i++) {
            if (r->spikes[i].id != 1) continue;
            double t = r->spikes[i].step * r->dt_ms;
            in_window += t >= 101 && t < 201;
            before += t < 100;
            after += t >= 201;
        }
        CHECK_MSG(in_window == 0 && before >= 5 && after >= 5, "dst spikes: %zu before, %zu in the window, %zu after",
                  before, in_window, after);
        CHECK(r->pops[0].spikes[1] == 0 && r->pops[0].spikes[0] >= 5 && r->pops[0].spikes[2] >= 5);
    }
    soma_dissect_circuit_free(r);
    soma_net_free(sn);
}

/* A lesion in a window: spikes before it are the clean run's. */
static void test_window(void) {
    static const size_t cut[3] = {0, 5, 11};
    soma_net *sn = make_ab(edges_full);
    soma_dissect_circuit_opts o;
    soma_dissect_circuit_opts_default(&o);
    o.action = SOMA_DISSECT_LESION, o.pop = "a", o.neurons = cut, o.nneurons = 3;
    o.t0_ms = 150, o.t1_ms = 250, o.time_ms = T_MS, o.skip_ms = 20;
    soma_dissect_circuit *c = run(sn, &o, 2);
    soma_sim_opts so;
    soma_sim_opts_default(&so);
    so.threads = 2, so.seed = 3;
    soma_sim *clean = NULL;
    char err[512];
    CHECK_MSG(soma_sim_create(&clean, sn, &so, err, sizeof err) == 0, "%s", err);
    if (c && clean) {
        CHECK(soma_sim_run(clean, T_MS, NULL, NULL) == 0);
        size_t nr = 0;
        const soma_spike *sr = soma_sim_spikes(clean, &nr);
        uint64_t s0 = c->step[1], s1 = c->step[2];
        CHECK(s0 == 1500 && s1 == 2500 && c->step[0] == 200 && c->step[3] == 4000);
        size_t i = 0, same = 1;
        for (; i < nr && sr[i].step < s0; i++)
            if (i >= c->nspikes || c->spikes[i].step != sr[i].step || c->spikes[i].id != sr[i].id) same = 0;
        CHECK_MSG(same && i > 100 && c->spikes[i].step >= s0, "spikes before the window differ (%zu compared)", i);
        size_t inside = 0, after = 0, differ = 0;
        for (size_t k = 0; k < c->nspikes; k++) {
            int lesioned = c->spikes[k].id < NA && is_cut(c->spikes[k].id, cut, 3);
            inside += lesioned && c->spikes[k].step >= s0 && c->spikes[k].step < s1;
            after += lesioned && c->spikes[k].step >= s1;
        }
        for (size_t k = i; k < nr && k < c->nspikes; k++)
            differ += c->spikes[k].step != sr[k].step || c->spikes[k].id != sr[k].id;
        CHECK_MSG(inside == 0 && after >= 3, "lesioned neurons: %zu spikes in the window, %zu after it", inside, after);
        CHECK(differ > 0); /* the lesion changed the run from its start on */
        CHECK(c->target_rate_hz[1] == 0 && c->target_rate_hz[0] > 5 && c->target_rate_hz[2] > 5);
        /* the population's rate in each window from the spikes, by hand */
        uint64_t cnt[3] = {0, 0, 0};
        for (size_t k = 0; k < c->nspikes; k++) {
            uint64_t s = c->spikes[k].step;
            if (c->spikes[k].id >= NA) continue;
            for (int w = 0; w < 3; w++) cnt[w] += s >= c->step[w] && s < c->step[w + 1];
        }
        for (int w = 0; w < 3; w++)
            CHECK_NEAR(c->pops[0].rate_hz[w], cnt[w] / (NA * (c->t_ms[w + 1] - c->t_ms[w]) * 1e-3), 1e-6);
        CHECK(isfinite(c->pops[0].cv_isi[0]) && c->pops[0].synchrony[0] > 0 && isfinite(c->pops[0].chi[0]));
    }
    soma_sim_free(clean);
    soma_dissect_circuit_free(c);
    soma_net_free(sn);
}

/* Constant current into 2 of 4 silent iaf_psc_delta neurons. */
static void test_stimulate_current(void) {
    soma_net *sn = NULL;
    CHECK(soma_net_create(&sn) == 0);
    size_t p;
    CHECK(soma_net_add_pop(sn, "n", "iaf_psc_delta", 4, &p) == 0);
    /* defaults: C_m 250 pF, tau_m 10 ms, t_ref 2 ms, E_L = V_reset = -70 mV, V_th = -55 mV */
    CHECK(soma_net_set(sn, p, "V_m", "-70mV") == 0);
    const double I = 500, R = 10.0 / 250.0 * 1e3, tau = 10, tref = 2, gap = 15; /* R in MOhm: mV / nA */
    double RI = R * I * 1e-3, isi = tref + tau * log(RI / (RI - gap));
    size_t idx[2] = {1, 2};
    soma_dissect_circuit_opts o;
    soma_dissect_circuit_opts_default(&o);
    o.action = SOMA_DISSECT_STIMULATE, o.pop = "n", o.neurons = idx, o.nneurons = 2, o.current_pa = I;
    o.t0_ms = 100, o.t1_ms = 600, o.time_ms = 800;
    soma_dissect_circuit *c = run(sn, &o, 1);
    if (c) {
        size_t n[4] = {0, 0, 0, 0}, outside = 0;
        double first[4] = {0}, last[4] = {0};
        for (size_t k = 0; k < c->nspikes; k++) {
            uint32_t id = c->spikes[k].id;
            double t = c->spikes[k].step * c->dt_ms;
            outside += t < 100 || t >= 600;
            if (!n[id]) first[id] = t;
            last[id] = t, n[id]++;
        }
        CHECK_MSG(n[0] == 0 && n[3] == 0 && outside == 0, "%zu spikes of undriven neurons, %zu outside the window",
                  n[0] + n[3], outside);
        for (int j = 1; j <= 2; j++) {
            double mean_isi = n[j] > 1 ? (last[j] - first[j]) / (double)(n[j] - 1) : 0;
            CHECK_MSG(fabs(mean_isi - isi) <= 0.1 && n[j] >= 30, "neuron %d: %zu spikes, mean ISI %.4f ms, analytic %.4f ms", j,
                      n[j], mean_isi, isi);
            /* the first spike: from rest, without the refractory period */
            CHECK_MSG(fabs(first[j] - 100 - (isi - tref)) <= 0.15, "first spike at %.2f ms", first[j]);
        }
        /* rate in the window: 1 + floor((500 - (isi - tref)) / isi) spikes in 0.5 s */
        double expect = (1 + floor((500 - (isi - tref)) / isi)) / 0.5;
        CHECK_NEAR(c->target_rate_hz[1], expect, 1e-6);
        CHECK(c->target_rate_hz[0] == 0 && c->target_rate_hz[2] == 0);
    }
    soma_dissect_circuit_free(c);
    soma_net_free(sn);
}

/* Poisson events of 20 mV (over the 15 mV gap, no refractory time): each makes a spike. */
static void test_stimulate_poisson(void) {
    soma_net *sn = NULL;
    CHECK(soma_net_create(&sn) == 0);
    size_t p;
    CHECK(soma_net_add_pop(sn, "n", "iaf_psc_delta", 50, &p) == 0);
    CHECK(soma_net_set(sn, p, "V_m", "-70mV") == 0);
    CHECK(soma_net_set(sn, p, "t_ref", "0ms") == 0);
    soma_dissect_circuit_opts o;
    soma_dissect_circuit_opts_default(&o);
    o.action = SOMA_DISSECT_STIMULATE, o.pop = "n", o.fraction = 0.5, o.rate_hz = 100, o.weight = 20;
    o.t0_ms = 100, o.t1_ms = 1100, o.time_ms = 1200, o.seed = 9;
    soma_dissect_circuit *c1 = run(sn, &o, 1), *c2 = run(sn, &o, 2);
    if (c1 && c2) {
        CHECK(c1->n == 25);
        /* 25 neurons x 1 s x 100 Hz: 2500 events, sd 50, so the rate's sd is 2 Hz */
        CHECK_MSG(fabs(c1->target_rate_hz[1] - 100) < 8, "rate %.2f Hz, expected 100", c1->target_rate_hz[1]);
        CHECK(c1->target_rate_hz[0] == 0 && c1->target_rate_hz[2] == 0 && c1->rest_rate_hz[1] == 0);
        CHECK(memcmp(c1->spikes_sha256, c2->spikes_sha256, 32) == 0 && c1->nspikes == c2->nspikes);
        int same_set = c1->n == c2->n && !memcmp(c1->neurons, c2->neurons, c1->n * sizeof *c1->neurons);
        CHECK(same_set);
    }
    soma_dissect_circuit_free(c1);
    soma_dissect_circuit_free(c2);
    soma_net_free(sn);
}

/* A bad option's error names it. */
static void test_bad_input(void) {
    soma_net *sn = make_ab(edges_full);
    size_t bad_idx = NB + 40, twice[2] = {1, 1}, ok = 1;
    struct {
        const char *pop;
        double fraction;
        const size_t *neurons;
        size_t nn;
        double t0, t1, t;
        int action;
        double cur, rate, w;
        const char *want;
    } cases[] = {
        {"nope", 0.1, NULL, 0, 0, 10, 100, SOMA_DISSECT_LESION, 0, 0, 0, "--pop 'nope'"},
        {"a", 1.5, NULL, 0, 0, 10, 100, SOMA_DISSECT_LESION, 0, 0, 0, "--fraction"},
        {"a", -0.2, NULL, 0, 0, 10, 100, SOMA_DISSECT_LESION, 0, 0, 0, "--fraction"},
        {"a", 0, NULL, 0, 0, 10, 100, SOMA_DISSECT_LESION, 0, 0, 0, "--fraction F or --neurons"},
        {"b", 0, &bad_idx, 1, 0, 10, 100, SOMA_DISSECT_LESION, 0, 0, 0, "--neurons: index 50"},
        {"b", 0, twice, 2, 0, 10, 100, SOMA_DISSECT_LESION, 0, 0, 0, "--neurons: index 1 is listed twice"},
        {"a", 0, &ok, 1, 50, 40, 100, SOMA_DISSECT_LESION, 0, 0, 0, "--window 50:40"},
        {"a", 0, &ok, 1, 50, 150, 100, SOMA_DISSECT_LESION, 0, 0, 0, "--window 50:150"},
        {"a", 0, &ok, 1, 0, 10, -5, SOMA_DISSECT_LESION, 0, 0, 0, "--t -5"},
        {"a", 0, &ok, 1, 0, 10, 100, SOMA_DISSECT_STIMULATE, 0, 0, 0, "--current"},
        {"a", 0, &ok, 1, 0, 10, 100, SOMA_DISSECT_STIMULATE, 0, 50, 0, "--weight"},
        {"a", 0, &ok, 1, 0, 10, 100, SOMA_DISSECT_STIMULATE, 0, -50, 1, "--rate"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        soma_dissect_circuit_opts o;
        soma_dissect_circuit_opts_default(&o);
        o.pop = cases[k].pop, o.fraction = cases[k].fraction, o.neurons = cases[k].neurons, o.nneurons = cases[k].nn;
        o.t0_ms = cases[k].t0, o.t1_ms = cases[k].t1, o.time_ms = cases[k].t, o.action = cases[k].action;
        o.current_pa = cases[k].cur, o.rate_hz = cases[k].rate, o.weight = cases[k].w;
        soma_dissect_circuit *c = NULL;
        char err[512] = "";
        int rc = soma_dissect_circuit_run(sn, NULL, &o, &c, err, sizeof err);
        CHECK_MSG(rc != 0 && !c && strstr(err, cases[k].want), "case %zu: rc %d, message '%s', expected '%s'", k, rc, err,
                  cases[k].want);
        soma_dissect_circuit_free(c);
    }
    soma_net_free(sn);
}

int main(void) {
    const char *dir = t_tmpdir("dissect_lesion");
    static const size_t cut[2] = {3, 7};
    snprintf(edges_full, sizeof edges_full, "%s/edges_full.csv", dir);
    snprintf(edges_cut, sizeof edges_cut, "%s/edges_cut.csv", dir);
    write_edges(edges_full, NULL, 0);
    write_edges(edges_cut, cut, 2);
    test_lesion_equals_zero_weights(1);
    test_lesion_equals_zero_weights(2);
    test_target_receives_nothing();
    test_window();
    test_stimulate_current();
    test_stimulate_poisson();
    test_bad_input();
    return t_report("test_dissect_lesion");
}
