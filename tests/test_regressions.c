#include <math.h>
#include <stdio.h>
/* test_regressions.c — one test per fixed bug, named after it. */
#include <stdlib.h>
#include <string.h>
#include "models/model.h"
#include "soma.h"
#include "testlib.h"

static soma_net *small_net(size_t n_out) {
    soma_net *net;
    soma_net_create(&net);
    size_t in, hid, out;
    soma_net_add_pop(net, "in", "input", 6, &in);
    soma_net_add_pop(net, "hidden", "lif", 12, &hid);
    soma_net_add_pop(net, "out", "lif", n_out, &out);
    soma_net_connect_dense(net, in, hid, 1);
    soma_net_connect_dense(net, hid, out, 1);
    soma_net_init_weights(net, 4);
    return net;
}

/* Each epoch must visit the samples in its own shuffled order: training on
 * epoch 0's order every epoch passed the whole suite (issue 11). One epoch
 * run as epoch 1 must end with other weights than the same epoch run as
 * epoch 0 from the same start, and epoch 0 run twice with the same ones. */
static void regression_epoch_order(void) {
    enum { NS = 192, DIM = 6 };
    static uint8_t x[NS * DIM], y[NS];
    uint32_t r = 12345u;
    for (size_t i = 0; i < NS * DIM; i++) r = r * 1664525u + 1013904223u, x[i] = (uint8_t)(r >> 24);
    for (size_t i = 0; i < NS; i++) y[i] = (uint8_t)(i % 3);
    soma_dataset ds = {.n = NS, .dim = DIM, .rows = 1, .cols = DIM, .classes = 3, .x = x, .y = y};
    float w[3][72];
    for (int run = 0; run < 3; run++) {
        soma_net *net = small_net(3);
        soma_train_opts o;
        soma_data_opts d;
        soma_train_opts_default(&o);
        soma_data_opts_default(&d);
        d.steps = 4;
        o.batch = 32;
        o.threads = 1;
        soma_trainer *tr = NULL;
        CHECK(soma_train_create(&tr, net, &o, &d) == 0);
        soma_epoch_result res;
        CHECK(soma_train_epoch(tr, &ds, run == 2 ? 1 : 0, NULL, NULL, &res) == 0);
        soma_tensor t;
        CHECK(soma_net_tensor_find(net, "in->hidden.weight", &t) == 0 && t.rows * t.cols == 72);
        memcpy(w[run], t.data, sizeof w[run]);
        soma_train_free(tr);
        soma_net_free(net);
    }
    CHECK_MSG(memcmp(w[0], w[1], sizeof w[0]) == 0, "epoch 0 twice gave different weights");
    CHECK_MSG(memcmp(w[0], w[2], sizeof w[0]) != 0, "epochs 0 and 1 visited the samples in the same order");
}

/* A surrogate named without its parameter ran with fast_sigmoid's 25. */
static void regression_surrogate_default_param(void) {
    const char *dir = t_tmpdir("regressions");
    char path[600], err[512];
    snprintf(path, sizeof path, "%s/atan.yaml", dir);
    const char *yaml = "network:\n  populations:\n    in: {model: input, size: 6}\n    out: {model: lif, size: 3}\n"
                       "  projections:\n    - {from: in, to: out}\n"
                       "train: {surrogate: atan}\n";
    t_write_file(path, yaml, strlen(yaml));
    soma_net *net = NULL;
    soma_data_opts d;
    soma_train_opts o;
    CHECK(soma_experiment_load(path, &net, &d, &o, err, sizeof err) == 0);
    CHECK(o.surrogate == SOMA_SURROGATE_ATAN);
    soma_trainer *tr = NULL;
    CHECK(net && soma_train_create(&tr, net, &o, &d) == 0);
    CHECK(tr && soma_train_options(tr)->surrogate_param == 2.0f);
    soma_train_free(tr);
    soma_net_free(net);
    soma_train_opts_default(&o);
    o.surrogate = SOMA_SURROGATE_TRIANGULAR;
    net = small_net(3);
    CHECK(soma_train_create(&tr, net, &o, &d) == 0);
    CHECK(tr && soma_train_options(tr)->surrogate_param == 1.0f);
    soma_train_free(tr);
    soma_net_free(net);
}

/* Bad data options made soma_encode fail silently and training ran on garbage. */
static void regression_encode_failure_propagates(void) {
    soma_net *net = small_net(3);
    soma_train_opts o;
    soma_train_opts_default(&o);
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.encoding = SOMA_ENCODING_LATENCY;
    d.tau = -1.0f;
    soma_trainer *tr = NULL;
    CHECK(soma_train_create(&tr, net, &o, &d) == SOMA_STATUS_INVALID);
    CHECK(tr == NULL && strstr(soma_net_errmsg(net), "tau") != NULL);
    d.tau = 5.0f;
    d.encoding = 42;
    CHECK(soma_train_create(&tr, net, &o, &d) == SOMA_STATUS_INVALID);
    soma_net_free(net);
}

/* Predictions are bytes: an output layer above 256 classes predicted wrong classes. */
static void regression_wide_output(void) {
    soma_net *net = small_net(300);
    soma_train_opts o;
    soma_train_opts_default(&o);
    soma_data_opts d;
    soma_data_opts_default(&d);
    soma_trainer *tr = NULL;
    CHECK(soma_train_create(&tr, net, &o, &d) == SOMA_STATUS_UNSUPPORTED);
    CHECK(strstr(soma_net_errmsg(net), "256") != NULL);
    soma_net_free(net);
}

/* Weights written directly after the trainer was created were half seen (the
 * transposed copy of the spike gather kept the old ones). */
static void regression_stale_weights(void) {
    soma_net *net = small_net(3);
    soma_train_opts o;
    soma_train_opts_default(&o);
    o.batch = 4;
    o.threads = 1;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.steps = 6;
    soma_trainer *tr;
    CHECK(soma_train_create(&tr, net, &o, &d) == 0);
    float x[24];
    uint8_t y[4] = {0, 1, 2, 0};
    for (int i = 0; i < 24; i++) x[i] = (float)(i % 5) * 0.6f;
    soma_tensor t;
    soma_net_tensor_find(net, "hidden->out.weight", &t);
    for (size_t i = 0; i < t.rows * t.cols; i++) t.data[i] *= 3.0f;
    CHECK(soma_train_sync(tr) == 0);
    double l1, l2;
    CHECK(soma_train_grad(tr, x, 1, y, 4, &l1, NULL) == 0);
    soma_trainer *fresh;
    CHECK(soma_train_create(&fresh, net, &o, &d) == 0);
    CHECK(soma_train_grad(fresh, x, 1, y, 4, &l2, NULL) == 0);
    CHECK(l1 == l2);
    soma_train_free(tr), soma_train_free(fresh);
    soma_net_free(net);
}

/* nmnist accepted a negative bin width and binned by the span instead. */
static void regression_nmnist_negative_bin(void) {
    soma_data_opts d;
    soma_data_opts_default(&d);
    snprintf(d.dataset, sizeof d.dataset, "nmnist");
    snprintf(d.dir, sizeof d.dir, "/nonexistent");
    d.encoding = SOMA_ENCODING_SEQUENCE;
    d.bin_ms = -5.0f;
    soma_dataset tr, te;
    char err[512] = "";
    CHECK(soma_data_load(&d, &tr, &te, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK_MSG(strstr(err, "bin_ms") != NULL, "%s", err);
}

/* Rasters of UltraLIF layers were all ones (a probability is never exactly 0). */
static void regression_graded_raster(void) {
    soma_net *net;
    soma_net_create(&net);
    size_t in, h, out;
    soma_net_add_pop(net, "in", "input", 6, &in);
    soma_net_add_pop(net, "h", "ultralif", 20, &h);
    soma_net_add_pop(net, "out", "ann", 3, &out);
    soma_net_connect_dense(net, in, h, 1);
    soma_net_connect_dense(net, h, out, 1);
    soma_net_init_weights(net, 2);
    soma_train_opts o;
    soma_train_opts_default(&o);
    o.batch = 4;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.steps = 5;
    soma_trainer *tr;
    CHECK(soma_train_create(&tr, net, &o, &d) == 0);
    float x[24];
    for (int i = 0; i < 24; i++) x[i] = (float)(i % 7) * 0.4f - 1.0f;
    uint8_t spk[5 * 4 * 20];
    CHECK(soma_train_record(tr, x, 1, 4, h, spk) == 0);
    size_t ones = 0;
    for (size_t i = 0; i < sizeof spk; i++) ones += spk[i];
    CHECK_MSG(ones > 0 && ones < sizeof spk, "%zu of %zu recorded as spikes", ones, sizeof spk);
    soma_train_free(tr);
    soma_net_free(net);
}

/* meta_lif's draws for (row r, step t + 65536) repeated those of (row r + 1, step t). */
static void regression_meta_lif_draws_per_row(void) {
    const soma_model *m = soma_model_find("meta_lif");
    CHECK(m != NULL);
    if (!m) return;
    enum { N = 64 };
    float beta[N], th[N], ur[N], temp[N], u0[N] = {0}, in[N] = {0}, cur[N], s1[N], s2[N], scratch[4 * N];
    for (int j = 0; j < N; j++) beta[j] = 0.9f, th[j] = 0.0f, ur[j] = 0.0f, temp[j] = 1.0f; /* p = 0.5 */
    soma_model_args a = {0};
    a.prm[0] = beta, a.prm[1] = th, a.prm[2] = ur, a.prm[3] = temp;
    a.scratch = scratch;
    a.rng_key = 7;
    const float *prev[1] = {u0};
    float *curp[1] = {cur};
    a.row0 = 0, a.step = 65536;
    m->forward(&a, prev, curp, s1, in, 1, N);
    a.row0 = 1, a.step = 0;
    m->forward(&a, prev, curp, s2, in, 1, N);
    CHECK(memcmp(s1, s2, sizeof s1) != 0);
}

/* A backward call with din_accumulate = 0 overwrites din and must not read
 * it: the trainer's buffers (and a caller's) may hold anything, NaN
 * included, and 0 * NaN is NaN. Found as a rare failure of
 * test_ultradlif, whose din array was uninitialised stack memory. Every
 * model, cells included (their weights drawn by a net), with din full of NaN. */
static void regression_din_not_read(void) {
    enum { B = 2, N = 6 };
    for (size_t m = 0; m < soma_model_count(); m++) {
        const char *name = soma_model_name_at(m);
        const soma_model *md = soma_model_find(name);
        if (!md->spiking || !soma__model_trainable(md)) continue;
        soma_net *net = NULL;
        size_t in, h;
        soma_net_create(&net);
        soma_net_add_pop(net, "in", "input", 3, &in);
        CHECK(soma_net_add_pop(net, "h", name, N, &h) == 0);
        soma_net_connect_dense(net, in, h, 1);
        CHECK(soma_net_init_weights(net, 2) == 0);
        soma_model_args a;
        memset(&a, 0, sizeof a);
        size_t np;
        const soma_param_desc *d = soma_model_params(md, &np);
        float prm[SOMA_MAX_PARAMS][N], pset[SOMA_MAX_PARAMS];
        for (size_t k = 0; k < np; k++) {
            soma_net_get_param(net, h, d[k].name, &pset[k]);
            for (size_t j = 0; j < N; j++) prm[k][j] = pset[k];
            a.prm[k] = prm[k];
        }
        /* As the trainer does: the derived constants for the net's dt. */
        float drv[SOMA_MAX_DERIVED][N], *dp[SOMA_MAX_DERIVED];
        for (size_t k = 0; k < md->n_derived; k++) dp[k] = drv[k];
        a.dt = (float)soma_net_dt(net);
        if (md->prepare) md->prepare(a.prm, N, a.dt, 0, dp);
        a.drv = (const float *const *)dp;
        char tname[200];
        for (size_t k = 0; k < md->n_weights; k++) {
            soma_tensor t;
            snprintf(tname, sizeof tname, "h.%s", md->weight_names[k]);
            CHECK(soma_net_tensor_find(net, tname, &t) == 0);
            a.w[k] = t.data;
            a.dw[k] = calloc(t.rows * t.cols + 1, sizeof(float));
        }
        size_t sw = 0;
        for (size_t k = 0; k < md->n_state; k++) sw += soma__state_width(md, pset, N, k);
        size_t ws = md->scratch_floats ? md->scratch_floats(pset, N) * B : 0;
        float *prev = calloc(sw * B + 1, sizeof(float)), *cur = calloc(sw * B + 1, sizeof(float));
        float *dst = calloc(sw * B + 1, sizeof(float)), *work = calloc(ws + 1, sizeof(float));
        float in_t[B * N], s[B * N], ds[B * N], din[B * N], scratch[2 * N];
        for (size_t i = 0; i < B * N; i++) in_t[i] = 0.3f * (float)(i % 5) - 0.4f, ds[i] = 0.1f * (float)(i % 3) - 0.1f;
        const float *pv[SOMA_MAX_STATE];
        float *cv[SOMA_MAX_STATE], *dv[SOMA_MAX_STATE];
        for (size_t k = 0, off = 0; k < md->n_state; k++) {
            pv[k] = prev + off * B, cv[k] = cur + off * B, dv[k] = dst + off * B;
            off += soma__state_width(md, pset, N, k);
        }
        a.scratch = scratch;
        a.work = work;
        a.surrogate = SOMA_SURROGATE_FAST_SIGMOID;
        a.surrogate_param = 25.0f;
        md->forward(&a, pv, cv, s, in_t, B, N);
        a.in = in_t;
        for (size_t i = 0; i < B * N; i++) din[i] = NAN;
        float *dprm[SOMA_MAX_PARAMS] = {0};
        md->backward(&a, pv, (const float *const *)cv, dv, ds, NULL, din, dprm, B, N);
        int finite = 1;
        for (size_t i = 0; i < B * N; i++) finite &= isfinite(din[i]) != 0;
        CHECK_MSG(finite, "model %s: backward read the NaN already in din", name);
        for (size_t k = 0; k < md->n_weights; k++) free(a.dw[k]);
        free(prev), free(cur), free(dst), free(work);
        soma_net_free(net);
    }
}

/* Cell models run in chunks of 16 samples (trainer.c): a batch of 40 is
 * chunks of 16, 16 and 8, and the gradients do not depend on how many
 * threads take them (1 or 2: bit-identical). */
static void regression_cell_chunks_threads(void) {
    const char *cells[] = {"cfc", "ltc", "elm", "l2mu"};
    enum { B = 40, T = 7, D = 5 };
    static float x[T * B * D];
    uint8_t y[B];
    for (size_t i = 0; i < T * B * D; i++) x[i] = (float)((i * 7919) % 13) / 6.0f - 1.0f;
    for (size_t b = 0; b < B; b++) y[b] = (uint8_t)(b % 4);
    for (int c = 0; c < 4; c++) {
        float *g[2] = {NULL, NULL};
        size_t total = 0;
        double loss[2] = {0, 0};
        for (int th = 1; th <= 2; th++) {
            soma_net *net = NULL;
            size_t in, h, o;
            soma_net_create(&net);
            soma_net_add_pop(net, "in", "input", D, &in);
            soma_net_add_pop(net, "h", cells[c], 12, &h);
            soma_net_add_pop(net, "out", "ann", 4, &o);
            soma_net_set_param(net, o, "activation", 2.0f);
            soma_net_connect_dense(net, in, h, 1);
            soma_net_connect_dense(net, h, o, 1);
            soma_net_init_weights(net, 5);
            soma_train_opts to;
            soma_data_opts d;
            soma_train_opts_default(&to);
            soma_data_opts_default(&d);
            to.batch = B;
            to.threads = th;
            to.loss = SOMA_LOSS_CE_LAST;
            d.steps = T;
            d.encoding = SOMA_ENCODING_SEQUENCE;
            soma_trainer *tr = NULL;
            CHECK_MSG(soma_train_create(&tr, net, &to, &d) == 0, "%s: %s", cells[c], soma_net_errmsg(net));
            if (tr) {
                CHECK(soma_train_grad(tr, x, 0, y, B, &loss[th - 1], NULL) == 0);
                total = 0;
                for (size_t i = 0; i < soma_net_tensor_count(net); i++) {
                    soma_tensor t;
                    soma_train_tensor(tr, i, &t);
                    g[th - 1] = realloc(g[th - 1], (total + t.rows * t.cols) * sizeof(float));
                    memcpy(g[th - 1] + total, t.grad, t.rows * t.cols * sizeof(float));
                    total += t.rows * t.cols;
                }
            }
            soma_train_free(tr);
            soma_net_free(net);
        }
        CHECK_MSG(g[0] && g[1] && loss[0] == loss[1] && memcmp(g[0], g[1], total * sizeof(float)) == 0,
                  "%s: 1 and 2 threads differ (loss %.9g vs %.9g)", cells[c], loss[0], loss[1]);
        free(g[0]);
        free(g[1]);
    }
}

/* lif_cuba stepped v as P v + Q e_l + ... with P = exp(-dt/tau_m) rounded to
 * float: P's rounding error (~3e-8) times |v| ~ 60 mV, remembered for tau_m/dt
 * = 200 steps, biased v by ~1e-4 mV against Brian2's float64 (and flipped
 * near-threshold spikes of tests/test_sim_fidelity.c one step early). Now
 * v + Q (e_l - v) + ...: Q = 1 - P is a small number float holds to full
 * relative precision. Check: one neuron driven by random excitatory and
 * inhibitory spikes (through the engine, delay one step), threshold out of
 * reach, against the same update in double; the mean signed error of v must
 * be within a few float ulps (~4e-6 mV at 60 mV), as unbiased rounding gives. */
static void regression_lif_cuba_float_bias(void) {
    enum { STEPS = 20000 };
    const double dt = 0.1, tm = 20, te = 5, ti = 10, el = -65, we = 1.0, wi = -1.0;
    soma_net *sn = NULL;
    size_t src, cell;
    CHECK(soma_net_create(&sn) == 0);
    CHECK(soma_net_add_pop(sn, "src", "spike_source", 2, &src) == 0);
    CHECK(soma_net_add_pop(sn, "cell", "lif_cuba", 1, &cell) == 0);
    CHECK(soma_net_set(sn, cell, "e_l", "-65mV") == 0);
    CHECK(soma_net_set(sn, cell, "v", "-65mV") == 0);
    CHECK(soma_net_set(sn, cell, "v_th", "100mV") == 0);
    uint32_t *ids = malloc(2 * STEPS * sizeof *ids);
    double *ts = malloc(2 * STEPS * sizeof *ts);
    unsigned char *ev = calloc(STEPS, 1); /* bit 0: exc source fired, bit 1: inh */
    size_t n = 0;
    uint64_t x = 88172645463325252ULL;
    for (size_t s = 0; s < STEPS; s++)
        for (uint32_t k = 0; k < 2; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            if ((double)(x >> 11) * 0x1p-53 < (k ? 0.1 : 0.3)) ids[n] = k, ts[n++] = (double)s * dt, ev[s] |= 1 << k;
        }
    CHECK(soma_net_set_spikes(sn, src, ids, ts, n) == 0);
    soma_connector c;
    soma_connector_default(&c, SOMA_CONN_RULE_FILE);
    const char *dir = t_tmpdir("regressions");
    char path[600], err[512];
    snprintf(path, sizeof path, "%s/cuba_bias_edges.csv", dir);
    const char *edges = "0,0,1.0,0.1\n1,0,-1.0,0.1\n";
    t_write_file(path, edges, strlen(edges));
    c.path = path;
    CHECK(soma_net_connect(sn, src, cell, &c, "0mV", "0.1ms", SOMA_PORT_BY_SIGN, NULL) == 0);
    soma_sim_opts o;
    soma_sim_opts_default(&o);
    o.threads = 1;
    soma_sim *sim = NULL;
    CHECK(soma_sim_create(&sim, sn, &o, err, sizeof err) == 0);
    size_t idx = 0, rec = 0, ns = 0, nn = 0, every = 0;
    if (sim) {
        CHECK(soma_sim_record_state(sim, cell, "v", &idx, 1, 1, &rec) == 0);
        CHECK(soma_sim_run(sim, STEPS * dt, NULL, NULL) == 0);
        const float *v = soma_sim_state_data(sim, rec, &ns, &nn, &every);
        CHECK(ns == STEPS && nn == 1);
        /* Brian2's exact update in double; an input spike of step s is felt in s + 1. */
        double P = exp(-dt / tm), Pe = te / (te - tm) * (exp(-dt / te) - exp(-dt / tm));
        double Pi = ti / (ti - tm) * (exp(-dt / ti) - exp(-dt / tm));
        double V = el, ge = 0, gi = 0, sum = 0, mean_v = 0;
        for (size_t s = 0; s < ns && ns == STEPS; s++) {
            if (s > 0 && (ev[s - 1] & 1)) ge += we;
            if (s > 0 && (ev[s - 1] & 2)) gi += wi;
            V = el + (V - el) * P + ge * Pe + gi * Pi;
            ge *= exp(-dt / te), gi *= exp(-dt / ti);
            sum += (double)v[s] - V, mean_v += V;
        }
        double bias = sum / STEPS;
        mean_v /= STEPS;
        CHECK_MSG(mean_v < -55 && mean_v > -65, "mean v %g mV; expected the drive to keep v near -60 mV", mean_v);
        CHECK_MSG(fabs(bias) < 1e-5, "lif_cuba v biased by %.3g mV against double", bias);
    }
    soma_sim_free(sim);
    soma_net_free(sn);
    free(ids), free(ts), free(ev);
}

/* soma_sim_create kept pointers into the net (names, step-input values):
 * freeing the net after creating the simulator and then running read freed
 * memory. The simulator now compiles everything it needs into its own plan.
 * The freed blocks are reused and scribbled over before the run, which may
 * change a stale read's result; `make asan` reports one for certain (checked:
 * reading the step input through the net again fails there). */
static soma_sim *uaf_sim(soma_net **keep) {
    soma_net *net;
    soma_net_create(&net);
    size_t src, a, b;
    CHECK(soma_net_add_pop(net, "source", "spike_source", 4, &src) == 0);
    CHECK(soma_net_add_pop(net, "alpha", "iaf_psc_exp", 50, &a) == 0);
    CHECK(soma_net_add_pop(net, "beta", "iaf_psc_delta", 30, &b) == 0);
    CHECK(soma_net_set(net, a, "V_m", "uniform(-70mV, -55mV)") == 0);
    CHECK(soma_net_set(net, b, "tau_m", "normal_clipped(10ms, 2ms, 5ms, 15ms)") == 0);
    uint32_t ids[] = {0, 1, 2, 3, 0, 2};
    double ts[] = {1, 2, 3, 4, 10, 12};
    CHECK(soma_net_set_spikes(net, src, ids, ts, 6) == 0);
    double st[] = {0, 20, 60}, sv[] = {300, 450, 0};
    CHECK(soma_net_add_steps(net, a, st, sv, 3) == 0);
    soma_connector c;
    soma_connector_default(&c, SOMA_CONN_RULE_ALL_TO_ALL);
    CHECK(soma_net_connect(net, src, a, &c, "400pA", "1ms", SOMA_PORT_BY_SIGN, NULL) == 0);
    soma_connector_default(&c, SOMA_CONN_RULE_FIXED_PROBABILITY);
    c.p = 0.2;
    CHECK(soma_net_connect(net, a, b, &c, "uniform(1mV, 3mV)", "uniform(1ms, 3ms)", SOMA_PORT_BY_SIGN, NULL) == 0);
    soma_sim_opts o;
    soma_sim_opts_default(&o);
    o.threads = 2;
    soma_sim *sim = NULL;
    char err[512];
    CHECK_MSG(soma_sim_create(&sim, net, &o, err, sizeof err) == 0, "%s", err);
    if (keep)
        *keep = net;
    else
        soma_net_free(net);
    return sim;
}

static void regression_sim_outlives_net(void) {
    soma_net *kept = NULL;
    soma_sim *ref = uaf_sim(&kept), *sim = uaf_sim(NULL);
    if (!ref || !sim) return;
    /* Reuse the freed blocks with garbage: blocks of every size class from
     * 16 bytes to 256 KiB, a few of each. */
    enum { NJUNK = 1024 };
    void *junk[NJUNK];
    size_t nj = 0;
    for (size_t sz = 16; sz <= (256u << 10) && nj + 4 <= NJUNK; sz += sz < 1024 ? 8 : sz / 16)
        for (int r = 0; r < 4; r++) {
            junk[nj] = malloc(sz);
            if (junk[nj]) memset(junk[nj], 0xA5, sz);
            nj++;
        }
    CHECK(soma_sim_run(ref, 100, NULL, NULL) == 0);
    CHECK(soma_sim_run(sim, 100, NULL, NULL) == 0);
    soma_sim_stats a, b;
    soma_sim_stats_get(ref, &a);
    soma_sim_stats_get(sim, &b);
    CHECK_MSG(a.spikes > 20 && a.spikes == b.spikes, "%llu and %llu spikes", (unsigned long long)a.spikes,
              (unsigned long long)b.spikes);
    CHECK(memcmp(a.spikes_sha256, b.spikes_sha256, 32) == 0);
    const char *names[] = {"source", "alpha", "beta"};
    for (size_t p = 0; p < 3; p++) {
        soma_sim_pop_info info;
        CHECK(soma_sim_pop(sim, p, &info) == 0 && strcmp(info.name, names[p]) == 0 &&
              strcmp(info.model, p == 0 ? "spike_source" : p == 1 ? "iaf_psc_exp" : "iaf_psc_delta") == 0);
    }
    for (size_t i = 0; i < nj; i++) free(junk[i]);
    soma_sim_free(ref);
    soma_sim_free(sim);
    soma_net_free(kept);
}

int main(void) {
    regression_epoch_order();
    regression_sim_outlives_net();
    regression_lif_cuba_float_bias();
    regression_cell_chunks_threads();
    regression_din_not_read();
    regression_nmnist_negative_bin();
    regression_graded_raster();
    regression_meta_lif_draws_per_row();
    regression_surrogate_default_param();
    regression_encode_failure_propagates();
    regression_wide_output();
    regression_stale_weights();
    return t_report("test_regressions");
}
