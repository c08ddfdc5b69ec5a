/* test_sim_dense_delay.c — dense projections in the simulator: a delay and
 * a port of their own (soma_net_proj_set_delay / _port, `delay:` and
 * `port:` in a file), and the default delay start(to) - start(from) that
 * keeps skip connections step for step with the trainer's same-step
 * semantics. Every expectation is computed by hand or by a loop here. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

static soma_net *net_new(void) {
    soma_net *sn = NULL;
    CHECK(soma_net_create(&sn) == 0);
    CHECK(soma_net_set_dt(sn, 0.1) == 0);
    return sn;
}

static void set_tensor(soma_net *sn, const char *name, const float *w, size_t n) {
    soma_tensor t;
    int rc = soma_net_tensor_find(sn, name, &t);
    CHECK_MSG(rc == 0 && t.rows * t.cols == n, "tensor %s", name);
    if (rc == 0 && t.rows * t.cols == n) memcpy(t.data, w, n * sizeof *w);
}

static soma_sim *sim_new(soma_net *sn, int threads) {
    soma_sim_opts o;
    soma_sim_opts_default(&o);
    o.threads = threads;
    soma_sim *sim = NULL;
    char err[512];
    int rc = soma_sim_create(&sim, sn, &o, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    return rc ? NULL : sim;
}

/* (a) A spike source feeds an integrator (no leak, no threshold) through a
 * dense projection: V jumps by w exactly `delay` steps after each spike. */
static void test_explicit_delay(void) {
    for (int d = 1; d <= 7; d += 2) {
        soma_net *sn = net_new();
        size_t src, dst, pj = 0;
        CHECK(soma_net_add_pop(sn, "src", "spike_source", 2, &src) == 0);
        CHECK(soma_net_add_pop(sn, "dst", "iaf_psc_delta", 1, &dst) == 0);
        CHECK(soma_net_set(sn, dst, "tau_m", "1e9ms") == 0);
        CHECK(soma_net_set(sn, dst, "V_th", "5000mV") == 0);
        CHECK(soma_net_set(sn, dst, "E_L", "3mV") == 0);
        CHECK(soma_net_set(sn, dst, "V_m", "3mV") == 0);
        uint32_t ids[] = {0, 1, 0};
        double ts[] = {1.0, 2.0, 3.5};
        CHECK(soma_net_set_spikes(sn, src, ids, ts, 3) == 0);
        CHECK(soma_net_connect_dense(sn, src, dst, 0) == 0);
        CHECK(soma_net_init_weights(sn, 1) == 0);
        float w[] = {0.5f, 2.0f};
        set_tensor(sn, "src->dst.weight", w, 2);
        char delay[32];
        snprintf(delay, sizeof delay, "%gms", d * 0.1);
        if (d > 1) CHECK(soma_net_proj_set_delay(sn, pj, delay) == 0);
        double ms = -1;
        int port = -5;
        CHECK(soma_net_proj_timing(sn, pj, &ms, &port) == (d > 1 ? 1 : 0));
        CHECK_NEAR(ms, d > 1 ? d * 0.1 : 0.0, 1e-12);
        CHECK(port == 0);
        soma_sim *sim = sim_new(sn, 1);
        if (!sim) {
            soma_net_free(sn);
            continue;
        }
        size_t idx = 0, rec;
        CHECK(soma_sim_record_state(sim, dst, "V_m", &idx, 1, 1, &rec) == 0);
        CHECK(soma_sim_run(sim, 6.0, NULL, NULL) == 0);
        size_t ns = 0, n, every;
        const float *v = soma_sim_state_data(sim, rec, &ns, &n, &every);
        CHECK(ns == 60 && v);
        int bad = 0;
        /* Without a delay of its own dst starts at step 1 (its depth): step 0
         * holds its initial state (V_m 3 mV). */
        for (size_t s = 0; s < ns && v; s++) {
            long arr[] = {10 + d, 20 + d, 35 + d};
            double wk[] = {0.5, 2.0, 0.5}, want = 3.0;
            for (int k = 0; k < 3; k++) want += (long)s >= arr[k] ? wk[k] : 0.0;
            if (fabs(v[s] - want) > 1e-5) bad++;
        }
        CHECK_MSG(bad == 0, "delay %d steps: %d samples off", d, bad);
        soma_sim_stats st;
        soma_sim_stats_get(sim, &st);
        CHECK(st.min_delay_steps == (size_t)d && st.max_delay_steps == (size_t)d);
        soma_sim_free(sim);
        soma_net_free(sn);
    }
}

/* Refusals name the projection and what was expected. */
static void test_refusals(void) {
    soma_net *sn = net_new();
    size_t src, dst, mid;
    CHECK(soma_net_add_pop(sn, "src", "spike_source", 2, &src) == 0);
    CHECK(soma_net_add_pop(sn, "dst", "iaf_psc_exp", 1, &dst) == 0);
    CHECK(soma_net_add_pop(sn, "mid", "iaf_psc_exp", 1, &mid) == 0);
    CHECK(soma_net_connect_dense(sn, src, dst, 0) == 0);
    CHECK(soma_net_proj_set_delay(sn, 0, "0ms") == SOMA_STATUS_INVALID);
    CHECK_MSG(strstr(soma_net_errmsg(sn), "delay of src -> dst = 0 ms is shorter than the time step"), "%s",
              soma_net_errmsg(sn));
    CHECK(soma_net_proj_set_delay(sn, 0, "-1ms") == SOMA_STATUS_INVALID);
    CHECK(soma_net_proj_set_delay(sn, 0, "uniform(1ms, 2ms)") == SOMA_STATUS_INVALID);
    CHECK_MSG(strstr(soma_net_errmsg(sn), "expected a constant"), "%s", soma_net_errmsg(sn));
    CHECK(soma_net_proj_set_delay(sn, 0, "2mV") != 0);
    CHECK(soma_net_proj_set_port(sn, 0, 2) == SOMA_STATUS_INVALID);
    CHECK(soma_net_proj_timing(sn, 0, NULL, NULL) == 0);
    soma_connector c;
    soma_connector_default(&c, SOMA_CONN_RULE_ALL_TO_ALL);
    size_t sp;
    CHECK(soma_net_connect(sn, src, mid, &c, "1pA", "0.1ms", SOMA_PORT_BY_SIGN, &sp) == 0);
    CHECK(soma_net_proj_set_delay(sn, sp, "1ms") == SOMA_STATUS_INVALID);
    CHECK_MSG(strstr(soma_net_errmsg(sn), "sparse"), "%s", soma_net_errmsg(sn));
    CHECK(soma_net_proj_set_port(sn, 99, 0) == SOMA_STATUS_INVALID);
    soma_net_free(sn);
    /* A delay that was valid at one dt but is under a step at the sim's dt. */
    sn = net_new();
    CHECK(soma_net_add_pop(sn, "src", "spike_source", 2, &src) == 0);
    CHECK(soma_net_add_pop(sn, "dst", "iaf_psc_exp", 1, &dst) == 0);
    CHECK(soma_net_connect_dense(sn, src, dst, 0) == 0);
    CHECK(soma_net_proj_set_delay(sn, 0, "0.1ms") == 0);
    CHECK(soma_net_set_dt(sn, 0.5) == 0);
    CHECK(soma_net_init_weights(sn, 1) == 0);
    soma_sim *sim = NULL;
    char err[512] = "";
    CHECK(soma_sim_create(&sim, sn, NULL, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK_MSG(strstr(err, "projection src -> dst: delay 0.1 ms is shorter than the time step 0.5 ms"), "%s", err);
    soma_net_free(sn);
}

/* V_m of one iaf_psc_exp neuron (tau_syn_ex 1 ms, tau_syn_in 8 ms) fed by a
 * spike source through a dense projection of weight w on `port` (-2: none
 * set), or through a sparse one (sparse_port) for reference; 40 steps. */
static void psc_trace(float w, int port, int sparse_port, float *out) {
    soma_net *sn = net_new();
    size_t src, dst;
    CHECK(soma_net_add_pop(sn, "src", "spike_source", 1, &src) == 0);
    CHECK(soma_net_add_pop(sn, "dst", "iaf_psc_exp", 1, &dst) == 0);
    CHECK(soma_net_set(sn, dst, "tau_syn_ex", "1ms") == 0);
    CHECK(soma_net_set(sn, dst, "tau_syn_in", "8ms") == 0);
    CHECK(soma_net_set(sn, dst, "V_th", "1000mV") == 0);
    uint32_t id = 0;
    double t = 0.5;
    CHECK(soma_net_set_spikes(sn, src, &id, &t, 1) == 0);
    if (sparse_port != -2) {
        soma_connector c;
        soma_connector_default(&c, SOMA_CONN_RULE_ALL_TO_ALL);
        char ws[32];
        snprintf(ws, sizeof ws, "%gpA", (double)w);
        CHECK(soma_net_connect(sn, src, dst, &c, ws, "0.1ms", sparse_port, NULL) == 0);
    } else {
        CHECK(soma_net_connect_dense(sn, src, dst, 0) == 0);
        CHECK(soma_net_init_weights(sn, 1) == 0);
        set_tensor(sn, "src->dst.weight", &w, 1);
        if (port != -2) CHECK(soma_net_proj_set_port(sn, 0, port) == 0);
    }
    soma_sim *sim = sim_new(sn, 1);
    if (sim) {
        size_t idx = 0, rec, ns = 0;
        CHECK(soma_sim_record_state(sim, dst, "V_m", &idx, 1, 1, &rec) == 0);
        CHECK(soma_sim_run(sim, 4.0, NULL, NULL) == 0);
        const float *v = soma_sim_state_data(sim, rec, &ns, NULL, NULL);
        CHECK(ns == 40 && v);
        if (ns == 40 && v) memcpy(out, v, 40 * sizeof *out);
        soma_sim_free(sim);
    }
    soma_net_free(sn);
}

/* Over steps 1..39: a population fed by a dense projection starts at step 1
 * (its depth), and a population not started records nothing. */
static float max_diff(const float *a, const float *b) {
    float m = 0;
    for (int i = 1; i < 40; i++) m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}

/* (b) The port selects the synaptic current: a positive weight on port i
 * decays with tau_syn_in, exactly as a sparse synapse fixed on port i. */
static void test_port(void) {
    float dflt[40] = {0}, e[40] = {0}, i[40] = {0}, si[40] = {0}, se[40] = {0}, bs[40] = {0}, sbs[40] = {0};
    psc_trace(300.0f, -2, -2, dflt);
    psc_trace(300.0f, 0, -2, e);
    psc_trace(300.0f, 1, -2, i);
    psc_trace(300.0f, 0, 1, si); /* sparse, port i */
    psc_trace(300.0f, 0, 0, se); /* sparse, port e */
    psc_trace(-300.0f, SOMA_PORT_BY_SIGN, -2, bs);
    psc_trace(-300.0f, 0, SOMA_PORT_BY_SIGN, sbs);
    CHECK(max_diff(dflt, se) == 0.0f); /* no port given: port 0 (e), as before */
    CHECK(max_diff(e, se) == 0.0f);
    CHECK(max_diff(i, si) == 0.0f);
    CHECK(max_diff(bs, sbs) == 0.0f);
    CHECK_MSG(max_diff(i, e) > 1.0f, "port i and port e give the same trace (%g)", (double)max_diff(i, e));
    /* The slower inhibitory current still pushes V up 3 ms after the spike. */
    CHECK(i[39] > e[39] + 1.0f);
    CHECK(bs[39] < -1.0f);
}

/* A dense projection from an input population (computed by its target)
 * with a delay and a port of its own: x is 1 at step 5 only, so the
 * integrator jumps by w at step 5 + d; on port i of iaf_psc_exp the current
 * decays with tau_syn_in. Returns V_m over 40 steps. */
static void pulled_trace(const char *delay, int port, float w, const char *model, float *out) {
    soma_net *sn = net_new();
    size_t in, dst;
    CHECK(soma_net_add_pop(sn, "in", "input", 1, &in) == 0);
    CHECK(soma_net_add_pop(sn, "dst", model, 1, &dst) == 0);
    if (!strcmp(model, "iaf_psc_delta")) {
        CHECK(soma_net_set(sn, dst, "tau_m", "1e9ms") == 0);
        CHECK(soma_net_set(sn, dst, "E_L", "0mV") == 0);
        CHECK(soma_net_set(sn, dst, "V_m", "0mV") == 0);
    } else {
        CHECK(soma_net_set(sn, dst, "tau_syn_ex", "1ms") == 0);
        CHECK(soma_net_set(sn, dst, "tau_syn_in", "8ms") == 0);
    }
    CHECK(soma_net_set(sn, dst, "V_th", "5000mV") == 0);
    CHECK(soma_net_connect_dense(sn, in, dst, 0) == 0);
    CHECK(soma_net_init_weights(sn, 1) == 0);
    set_tensor(sn, "in->dst.weight", &w, 1);
    if (delay) CHECK(soma_net_proj_set_delay(sn, 0, delay) == 0);
    if (port != -2) CHECK(soma_net_proj_set_port(sn, 0, port) == 0);
    soma_sim *sim = sim_new(sn, 1);
    if (sim) {
        float x[40] = {0};
        x[5] = 1.0f;
        CHECK(soma_sim_set_input(sim, in, x, 40, 0) == 0);
        size_t idx = 0, rec, ns = 0;
        CHECK(soma_sim_record_state(sim, dst, "V_m", &idx, 1, 1, &rec) == 0);
        CHECK(soma_sim_run(sim, 4.0, NULL, NULL) == 0);
        const float *v = soma_sim_state_data(sim, rec, &ns, NULL, NULL);
        CHECK(ns == 40 && v);
        if (ns == 40 && v) memcpy(out, v, 40 * sizeof *out);
        soma_sim_free(sim);
    }
    soma_net_free(sn);
}

static void test_pulled(void) {
    float d1[40] = {0}, d4[40] = {0};
    pulled_trace(NULL, -2, 2.5f, "iaf_psc_delta", d1);
    pulled_trace("0.4ms", -2, 2.5f, "iaf_psc_delta", d4);
    int bad = 0;
    for (int s = 1; s < 40; s++) {
        bad += fabsf(d1[s] - (s >= 6 ? 2.5f : 0.0f)) > 1e-5f;  /* default: one step (dst starts at 1) */
        bad += fabsf(d4[s] - (s >= 9 ? 2.5f : 0.0f)) > 1e-5f;  /* 4 steps */
    }
    CHECK_MSG(bad == 0, "%d samples off", bad);
    float e[40] = {0}, i[40] = {0}, bs[40] = {0}, i1[40] = {0};
    pulled_trace(NULL, 0, 300.0f, "iaf_psc_exp", e);
    pulled_trace(NULL, 1, 300.0f, "iaf_psc_exp", i);
    pulled_trace(NULL, SOMA_PORT_BY_SIGN, -300.0f, "iaf_psc_exp", bs);
    pulled_trace(NULL, 1, -300.0f, "iaf_psc_exp", i1);
    CHECK(max_diff(i, e) > 1.0f && i[39] > e[39] + 1.0f);
    CHECK(max_diff(bs, i1) == 0.0f);
}

/* (c) Skip connections with the default delays. A chain in -> g -> h -> k
 * -> out (input, ann linear, lif, lif, lif) and skips in -> out, g -> out
 * (computed by out from a graded source, 3 steps back) and h -> out
 * (spike synapses, 2 steps). lif with beta 0 and reset zero is memoryless:
 * U[t] = I[t], S[t] = H(U - 0.5); out's threshold is never reached, so its
 * v is its input. With the trainer's same-step semantics
 *   g(t) = Wig x(t), h(t) = H(Wgh g(t) - .5), k(t) = H(Whk h(t) - .5),
 *   out(t) = Wko k(t) + Wio x(t) + Wgo g(t) + Who h(t),
 * and the simulator's out.v at step s must be out(s - 4) (out starts at 4). */
enum { NI = 3, NG = 3, NH = 3, NK = 2, NO = 2, T = 12 };
static void test_skip(int threads, int break_it) {
    soma_net *sn = net_new();
    size_t in, g, h, k, out;
    CHECK(soma_net_add_pop(sn, "in", "input", NI, &in) == 0);
    CHECK(soma_net_add_pop(sn, "g", "ann", NG, &g) == 0);
    CHECK(soma_net_add_pop(sn, "h", "lif", NH, &h) == 0);
    CHECK(soma_net_add_pop(sn, "k", "lif", NK, &k) == 0);
    CHECK(soma_net_add_pop(sn, "out", "lif", NO, &out) == 0);
    CHECK(soma_net_set(sn, g, "activation", "linear") == 0);
    size_t lifs[] = {h, k, out};
    for (int j = 0; j < 3; j++) {
        CHECK(soma_net_set(sn, lifs[j], "beta", "0") == 0);
        CHECK(soma_net_set(sn, lifs[j], "reset", "zero") == 0);
        CHECK(soma_net_set(sn, lifs[j], "threshold", j == 2 ? "1e6" : "0.5") == 0);
    }
    CHECK(soma_net_connect_dense(sn, in, g, 0) == 0);
    CHECK(soma_net_connect_dense(sn, g, h, 0) == 0);
    CHECK(soma_net_connect_dense(sn, h, k, 0) == 0);
    CHECK(soma_net_connect_dense(sn, k, out, 0) == 0);
    CHECK(soma_net_connect_dense(sn, in, out, 0) == 0);
    CHECK(soma_net_connect_dense(sn, g, out, 0) == 0);
    CHECK(soma_net_connect_dense(sn, h, out, 0) == 0);
    if (break_it) CHECK(soma_net_proj_set_delay(sn, 6, "0.1ms") == 0); /* h -> out one step: misaligned */
    CHECK(soma_net_init_weights(sn, 1) == 0);
    /* Small integers: every sum is exact in float, no value sits on a threshold. */
    float Wig[NG * NI] = {1, 0, 1, 0, 1, -1, 1, 1, 0};
    float Wgh[NH * NG] = {1, 0, 0, 0, 1, 0, 1, -1, 1};
    float Whk[NK * NH] = {1, 1, 0, 0, -1, 1};
    float Wko[NO * NK] = {100, 0, 0, 100};
    float Wio[NO * NI] = {1, 2, 4, -4, 2, 1};
    float Wgo[NO * NG] = {8, 0, -8, 0, 16, 8};
    float Who[NO * NH] = {32, 64, 0, 0, -32, 64};
    set_tensor(sn, "in->g.weight", Wig, NG * NI);
    set_tensor(sn, "g->h.weight", Wgh, NH * NG);
    set_tensor(sn, "h->k.weight", Whk, NK * NH);
    set_tensor(sn, "k->out.weight", Wko, NO * NK);
    set_tensor(sn, "in->out.weight", Wio, NO * NI);
    set_tensor(sn, "g->out.weight", Wgo, NO * NG);
    set_tensor(sn, "h->out.weight", Who, NO * NH);
    float x[T * NI];
    uint64_t r = 12345;
    for (int i = 0; i < T * NI; i++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)((r >> 33) % 3); /* 0, 1 or 2 */
    }
    /* The trainer's semantics, by hand. */
    float want[T][NO];
    for (int t = 0; t < T; t++) {
        float gv[NG], hv[NH], kv[NK];
        for (int i = 0; i < NG; i++) {
            gv[i] = 0;
            for (int j = 0; j < NI; j++) gv[i] += Wig[i * NI + j] * x[t * NI + j];
        }
        for (int i = 0; i < NH; i++) {
            float u = 0;
            for (int j = 0; j < NG; j++) u += Wgh[i * NG + j] * gv[j];
            hv[i] = u > 0.5f;
        }
        for (int i = 0; i < NK; i++) {
            float u = 0;
            for (int j = 0; j < NH; j++) u += Whk[i * NH + j] * hv[j];
            kv[i] = u > 0.5f;
        }
        for (int i = 0; i < NO; i++) {
            float u = 0;
            for (int j = 0; j < NK; j++) u += Wko[i * NK + j] * kv[j];
            for (int j = 0; j < NI; j++) u += Wio[i * NI + j] * x[t * NI + j];
            for (int j = 0; j < NG; j++) u += Wgo[i * NG + j] * gv[j];
            for (int j = 0; j < NH; j++) u += Who[i * NH + j] * hv[j];
            want[t][i] = u;
        }
    }
    soma_sim *sim = sim_new(sn, threads);
    if (!sim) {
        soma_net_free(sn);
        return;
    }
    CHECK(soma_sim_start_step(sim, g) == 1 && soma_sim_start_step(sim, h) == 2);
    CHECK(soma_sim_start_step(sim, k) == 3 && soma_sim_start_step(sim, out) == 4);
    CHECK(soma_sim_set_input(sim, in, x, T, 0) == 0);
    size_t idx[NO] = {0, 1}, rec, ns = 0;
    CHECK(soma_sim_record_state(sim, out, "v", idx, NO, 1, &rec) == 0);
    CHECK(soma_sim_run(sim, (T + 4) * 0.1, NULL, NULL) == 0);
    const float *v = soma_sim_state_data(sim, rec, &ns, NULL, NULL);
    CHECK(ns == T + 4 && v);
    int bad = 0, nonzero = 0;
    for (int t = 0; t < T && v && ns == T + 4; t++)
        for (int i = 0; i < NO; i++) {
            if (v[(t + 4) * NO + i] != want[t][i]) bad++;
            nonzero += want[t][i] != 0;
        }
    CHECK(nonzero > T);
    if (break_it)
        CHECK_MSG(bad > 0, "an explicit one-step delay on h -> out still matched the aligned run");
    else
        CHECK_MSG(bad == 0, "%d of %d values of out differ from the same-step semantics (threads %d)", bad, T * NO,
                  threads);
    soma_sim_free(sim);
    soma_net_free(sn);
}

/* `delay:` and `port:` on a dense projection in a network file. */
static void test_yaml(void) {
    const char *dir = t_tmpdir("sim_dense_delay");
    char path[1024];
    snprintf(path, sizeof path, "%s/net.yaml", dir);
    const char *ok = "network:\n  dt: 0.1ms\n  populations:\n    src: {model: spike_source, size: 2}\n"
                     "    dst: {model: iaf_psc_exp, size: 3}\n  projections:\n"
                     "    - {from: src, to: dst, kind: dense, bias: false, delay: 0.5ms, port: i}\n";
    CHECK(t_write_file(path, ok, strlen(ok)) == 0);
    soma_net *sn = NULL;
    char err[512] = "";
    int rc = soma_net_load_yaml(path, NULL, 0, &sn, NULL, NULL, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%s", err);
    if (!rc) {
        double ms = 0;
        int port = -3;
        CHECK(soma_net_proj_timing(sn, 0, &ms, &port) == 3);
        CHECK_NEAR(ms, 0.5, 1e-12);
        CHECK(port == 1);
        soma_net_free(sn);
    }
    const char *bad[][2] = {
        {"    - {from: src, to: dst, kind: dense, delay: 0ms}\n", "net.yaml:7: delay of src -> dst = 0 ms is shorter"},
        {"    - {from: src, to: dst, kind: dense, port: x}\n", "port 'x': model iaf_psc_exp has ports e, i, sign"},
        {"    - {from: dst, to: dst, kind: dense, bias: false, delay: 1ms}\n", "'delay' is only valid on a dense"},
        {"    - {from: src, to: dst, kind: dense, weight: 1}\n", "'weight' belongs to a sparse projection"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[1024];
        snprintf(body, sizeof body,
                 "network:\n  dt: 0.1ms\n  populations:\n    src: {model: spike_source, size: 2}\n"
                 "    dst: {model: iaf_psc_exp, size: 3}\n  projections:\n%s", bad[i][0]);
        CHECK(t_write_file(path, body, strlen(body)) == 0);
        sn = NULL;
        err[0] = 0;
        rc = soma_net_load_yaml(path, NULL, 0, &sn, NULL, NULL, NULL, err, sizeof err);
        CHECK_MSG(rc != 0 && strstr(err, bad[i][1]), "case %zu: rc %d, '%s'", i, rc, err);
        soma_net_free(sn);
    }
}

int main(void) {
    test_explicit_delay();
    test_refusals();
    test_port();
    test_pulled();
    test_skip(1, 0);
    test_skip(2, 0);
    test_skip(1, 1);
    test_yaml();
    return t_report("test_sim_dense_delay");
}
