/* test_physical_train.c — physical neuron models in the trainer (one model
 * vtable for both executors, src/models/model.h):
 *   1. lif's tau_m: beta = (float)exp(-dt/tau_m) from prepare, bit for bit
 *      through the trainer at the net's dt; refused next to a set or learned
 *      beta; soma_train_sync prepares again;
 *   2. the training half of iaf_psc_delta, iaf_psc_exp and lif_cuba: forward
 *      over [B][N] gives bit for bit the floats of sim_step for instances
 *      whose only input is port e, over hundreds of steps with spikes and
 *      refractory periods;
 *   3. their backward against central finite differences of a
 *      double-precision reference of the same step (the models' own float
 *      constants), in which the output spike seen by the loss is replaced by
 *      sigmoid(p x), x = (V - V_th)/(V_th - V_reset) — whose derivative is
 *      the "sigmoid" surrogate with slope p — while the spike that resets
 *      and the refractory clamp stay hard steps (detached, as in backward):
 *      without spikes, and with spikes and refractory periods;
 *   4. a small network of each trains by BPTT through the public trainer
 *      API (the loss falls), and starts from rest (V = E_L), not zero; the
 *      trainer refuses V_reset >= V_th (the surrogate's scale).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/model.h"
#include "soma.h"
#include "testlib.h"

#define MAXN 24
#define MAXR 48 /* rows B*N */
#define MAXT 700

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double urand(void) { /* xorshift64*, uniform in [0, 1) */
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return (double)((rng * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---------------------------------------------- a population by the vtable */
typedef struct inst {
    const soma_model *m;
    size_t N;
    float dt;
    float prm[SOMA_MAX_PARAMS][MAXN];
    const float *pp[SOMA_MAX_PARAMS];
    float drv[SOMA_MAX_DERIVED][MAXN];
    float *dp[SOMA_MAX_DERIVED];
} inst;

static void inst_init(inst *p, const char *model, size_t N, float dt) {
    memset(p, 0, sizeof *p);
    p->m = soma_model_find(model);
    p->N = N, p->dt = dt;
    for (size_t k = 0; k < p->m->n_params; k++) {
        for (size_t j = 0; j < N; j++) p->prm[k][j] = p->m->params[k].def;
        p->pp[k] = p->prm[k];
    }
    for (size_t k = 0; k < SOMA_MAX_DERIVED; k++) p->dp[k] = p->drv[k];
}
static void inst_set(inst *p, const char *name, size_t j, float v) {
    int k = soma__model_param_index(p->m, name);
    CHECK_MSG(k >= 0, "%s has no %s", p->m->name, name);
    if (k >= 0) p->prm[k][j] = v;
}
static float inst_get(const inst *p, const char *name, size_t j) {
    return p->prm[soma__model_param_index(p->m, name)][j];
}
static void inst_prepare(inst *p) { p->m->prepare(p->pp, p->N, p->dt, 0, p->dp); }
static void train_args(const inst *p, soma_model_args *a, float *scratch) {
    memset(a, 0, sizeof *a);
    for (size_t k = 0; k < p->m->n_params; k++) a->prm[k] = p->pp[k];
    a->drv = (const float *const *)p->dp;
    a->dt = p->dt;
    a->surrogate = SOMA_SURROGATE_SIGMOID;
    a->surrogate_param = 4.0f;
    a->scratch = scratch;
}

/* ------------------------------------------------------- 1. lif and tau_m */

/* in(5) -> hidden lif(7) -> out lif(3), weights from seed 3. */
static soma_net *lif_net(double dt, float tau_m, float beta, soma_learn learn_beta) {
    soma_net *net;
    soma_net_create(&net);
    size_t in, h, o;
    soma_net_add_pop(net, "in", "input", 5, &in);
    soma_net_add_pop(net, "hidden", "lif", 7, &h);
    soma_net_add_pop(net, "out", "lif", 3, &o);
    if (dt > 0) soma_net_set_dt(net, dt);
    if (tau_m > 0) CHECK(soma_net_set_param(net, h, "tau_m", tau_m) == 0);
    if (beta > 0) CHECK(soma_net_set_param(net, h, "beta", beta) == 0);
    if (learn_beta) CHECK(soma_net_set_learn(net, h, "beta", learn_beta) == 0);
    soma_net_connect_dense(net, in, h, 1);
    soma_net_connect_dense(net, h, o, 1);
    CHECK(soma_net_init_weights(net, 3) == 0);
    return net;
}

typedef struct run {
    double loss;
    uint8_t spk[12 * 4 * 7];
    float grad[200];
    size_t ng;
} run;

/* One batch (4 samples, 12 steps, direct input): loss, hidden spikes, all gradients. */
static int lif_run(soma_net *net, run *r) {
    soma_train_opts o;
    soma_train_opts_default(&o);
    o.batch = 4, o.threads = 1, o.loss = SOMA_LOSS_CE_MEM;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.encoding = SOMA_ENCODING_DIRECT, d.steps = 12;
    soma_trainer *tr = NULL;
    int st = soma_train_create(&tr, net, &o, &d);
    if (st) return st;
    float x[4 * 5];
    uint8_t y[4] = {0, 1, 2, 1};
    for (int i = 0; i < 20; i++) x[i] = 1.5f * (float)((i * 7) % 11) / 10.0f;
    CHECK(soma_train_grad(tr, x, 1, y, 4, &r->loss, NULL) == 0);
    CHECK(soma_train_record(tr, x, 1, 4, 1, r->spk) == 0);
    r->ng = 0;
    for (size_t i = 0; i < soma_net_tensor_count(net); i++) {
        soma_tensor t;
        soma_train_tensor(tr, i, &t);
        for (size_t k = 0; k < t.rows * t.cols && r->ng < 200; k++) r->grad[r->ng++] = t.grad[k];
    }
    soma_train_free(tr);
    return 0;
}
static int same_run(const run *a, const run *b) {
    return memcmp(&a->loss, &b->loss, sizeof a->loss) == 0 && memcmp(a->spk, b->spk, sizeof a->spk) == 0 &&
           a->ng == b->ng && memcmp(a->grad, b->grad, a->ng * sizeof(float)) == 0;
}

static void test_lif_tau_m(void) {
    /* prepare: tau_m 10 ms at dt 1 ms is (float)exp(-0.1), one rounding; beta otherwise. */
    inst p;
    inst_init(&p, "lif", 2, 1.0f);
    inst_set(&p, "tau_m", 0, 10.0f);
    inst_set(&p, "beta", 1, 0.8f);
    inst_prepare(&p);
    CHECK(p.m->n_derived == 1 && p.drv[0][0] == (float)exp(-0.1) && p.drv[0][1] == 0.8f);

    const float b01 = (float)exp(-0.1), b02 = (float)exp(-0.2);
    run r_tau, r_beta, r_dt, r_sync;
    soma_net *a = lif_net(1.0, 10.0f, 0, 0), *b = lif_net(1.0, 0, b01, 0);
    CHECK(lif_run(a, &r_tau) == 0 && lif_run(b, &r_beta) == 0);
    size_t nspk = 0;
    for (size_t i = 0; i < sizeof r_tau.spk; i++) nspk += r_tau.spk[i];
    CHECK_MSG(nspk > 20 && nspk < sizeof r_tau.spk - 20, "%zu hidden spikes", nspk);
    CHECK_MSG(same_run(&r_tau, &r_beta), "tau_m 10 ms at dt 1 ms: loss %.9g, beta (float)exp(-0.1): %.9g", r_tau.loss,
              r_beta.loss);
    soma_net_free(b);
    /* The net's dt is the one prepare sees: at the default 0.1 ms the same tau_m is another beta. */
    soma_net *c = lif_net(0, 10.0f, 0, 0);
    CHECK(lif_run(c, &r_dt) == 0);
    CHECK(!same_run(&r_dt, &r_tau));
    soma_net_free(c);

    /* soma_train_sync prepares again: tau_m 5 ms set after creation gives beta (float)exp(-0.2). */
    soma_train_opts o;
    soma_train_opts_default(&o);
    o.batch = 4, o.threads = 1, o.loss = SOMA_LOSS_CE_MEM;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.encoding = SOMA_ENCODING_DIRECT, d.steps = 12;
    soma_trainer *tr = NULL;
    CHECK(soma_train_create(&tr, a, &o, &d) == 0);
    CHECK(soma_net_set_param(a, 1, "tau_m", 5.0f) == 0);
    CHECK(soma_train_sync(tr) == 0);
    float x[4 * 5];
    for (int i = 0; i < 20; i++) x[i] = 1.5f * (float)((i * 7) % 11) / 10.0f;
    CHECK(soma_train_record(tr, x, 1, 4, 1, r_sync.spk) == 0);
    soma_train_free(tr);
    soma_net *e = lif_net(1.0, 0, b02, 0);
    run r_b02;
    CHECK(lif_run(e, &r_b02) == 0);
    CHECK_MSG(memcmp(r_sync.spk, r_b02.spk, sizeof r_sync.spk) == 0, "after soma_train_sync, tau_m 5 ms");
    CHECK(memcmp(r_sync.spk, r_tau.spk, sizeof r_sync.spk) != 0);
    soma_net_free(e);
    soma_net_free(a);

    /* Both stated: refused by the trainer, naming both. */
    soma_net *f = lif_net(1.0, 10.0f, 0.9f, 0);
    CHECK(lif_run(f, &r_tau) == SOMA_STATUS_INVALID);
    const char *msg = soma_net_errmsg(f);
    CHECK_MSG(strstr(msg, "hidden") && strstr(msg, "beta") && strstr(msg, "tau_m"), "message: %s", msg);
    soma_net_free(f);
    soma_net *g = lif_net(1.0, 10.0f, 0, SOMA_LEARN_LAYER);
    CHECK(lif_run(g, &r_tau) == SOMA_STATUS_INVALID);
    msg = soma_net_errmsg(g);
    CHECK_MSG(strstr(msg, "learned") && strstr(msg, "tau_m"), "message: %s", msg);
    soma_net_free(g);
    /* A learned beta is prepared again after every optimizer step: the
     * trainer that stepped runs as one created afresh on the stepped net. */
    soma_net *h = lif_net(1.0, 0, 0, SOMA_LEARN_NEURON);
    CHECK(soma_train_create(&tr, h, &o, &d) == 0);
    uint8_t y[4] = {0, 1, 2, 1};
    double l0, l1, l2;
    CHECK(soma_train_grad(tr, x, 1, y, 4, &l0, NULL) == 0);
    CHECK(soma_train_apply(tr) == 0);
    CHECK(soma_train_grad(tr, x, 1, y, 4, &l1, NULL) == 0);
    soma_trainer *fresh = NULL;
    CHECK(soma_train_create(&fresh, h, &o, &d) == 0);
    CHECK(soma_train_grad(fresh, x, 1, y, 4, &l2, NULL) == 0);
    CHECK_MSG(l1 == l2 && l1 != l0, "learned beta: loss %.9g before the step, %.9g after, %.9g afresh", l0, l1, l2);
    soma_train_free(fresh);
    soma_train_free(tr);
    soma_net_free(h);
}

/* ------------------------------------- 2. forward = sim_step, bit for bit */

/* Per-neuron parameters that give spikes and refractory periods. */
static void physical_params(inst *p, const char *model) {
    for (size_t j = 0; j < p->N; j++) {
        float f = (float)j;
        if (!strcmp(model, "iaf_psc_delta")) {
            inst_set(p, "I_e", j, 300.0f + 8.0f * f);
            inst_set(p, "tau_m", j, 8.0f + 0.5f * f);
            inst_set(p, "V_th", j, -55.0f + 0.25f * (float)(j % 4));
            inst_set(p, "t_ref", j, 0.5f + 0.3f * (float)(j % 5));
        } else if (!strcmp(model, "iaf_psc_exp")) {
            inst_set(p, "I_e", j, 320.0f + 6.0f * f);
            inst_set(p, "tau_syn_ex", j, 1.5f + 0.1f * f);
            inst_set(p, "tau_m", j, 9.0f + 0.25f * f);
            inst_set(p, "t_ref", j, 0.5f + 0.3f * (float)(j % 5));
        } else {
            inst_set(p, "tau_m", j, 15.0f + 0.5f * f);
            inst_set(p, "tau_e", j, 4.0f + 0.2f * f);
            inst_set(p, "e_l", j, -52.0f + 0.25f * f);
            inst_set(p, "t_ref", j, 0.5f + 0.3f * (float)(j % 5));
        }
    }
}

static void test_forward_is_sim_step(const char *model, float wlo, float whi) {
    enum { N = 20, B = 2, T = 600 };
    inst p;
    inst_init(&p, model, N, 0.1f);
    const soma_model *m = p.m;
    CHECK(m && m->forward && m->sim_step && m->sim_init);
    if (!m || !m->forward) return;
    physical_params(&p, model);
    inst_prepare(&p);
    size_t ns = m->n_state;
    static float sim_st[B][SOMA_MAX_STATE][N], tape[2][SOMA_MAX_STATE][B * N];
    float win[B][N], wzero[B][N], xin[B * N], s[B * N], scratch[2 * N];
    uint8_t spk[B][N];
    for (size_t b = 0; b < B; b++) { /* both start from the model's default initial state */
        float *st[SOMA_MAX_STATE], *row[SOMA_MAX_STATE];
        for (size_t k = 0; k < ns; k++) st[k] = sim_st[b][k], row[k] = tape[0][k] + b * N;
        m->sim_init(p.pp, st, N);
        m->sim_init(p.pp, row, N);
    }
    soma_model_args a;
    train_args(&p, &a, scratch);
    size_t spikes = 0, held = 0, bad = 0;
    for (size_t t = 0; t < T; t++) {
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < N; j++) {
                float w = urand() < 0.3 ? (float)(wlo + (whi - wlo) * urand()) : 0.0f;
                win[b][j] = w, wzero[b][j] = 0.0f, xin[b * N + j] = w;
            }
        for (size_t b = 0; b < B; b++) {
            float *st[SOMA_MAX_STATE], *in[2] = {win[b], wzero[b]};
            for (size_t k = 0; k < ns; k++) st[k] = sim_st[b][k];
            for (size_t j = 0; j < N; j++) held += st[ns - 1][j] >= 0.5f;
            soma_sim_args sa = {.prm = p.pp, .drv = (const float *const *)p.dp, .uniform = 0, .dt = p.dt, .step = t};
            m->sim_step(&sa, st, in, spk[b], 0, N);
        }
        const float *prev[SOMA_MAX_STATE];
        float *cur[SOMA_MAX_STATE];
        for (size_t k = 0; k < ns; k++) prev[k] = tape[t % 2][k], cur[k] = tape[(t + 1) % 2][k];
        m->forward(&a, prev, cur, s, xin, B, N);
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < N; j++) {
                int ok = s[b * N + j] == (float)spk[b][j];
                for (size_t k = 0; k < ns; k++) ok &= memcmp(&cur[k][b * N + j], &sim_st[b][k][j], sizeof(float)) == 0;
                if (!ok && bad++ < 3)
                    fprintf(stderr, "%s: t %zu row %zu neuron %zu: trainer V %.9g s %g, simulator V %.9g s %d\n", model,
                            t, b, j, (double)cur[0][b * N + j], (double)s[b * N + j], (double)sim_st[b][0][j],
                            spk[b][j]);
                spikes += spk[b][j];
            }
    }
    CHECK_MSG(bad == 0, "%s: %zu neuron steps differ", model, bad);
    CHECK_MSG(spikes > 100 && held > 300, "%s: %zu spikes, %zu refractory neuron steps", model, spikes, held);
}

/* --------------------------------------- 3. backward = finite differences */

enum { M_DELTA, M_EXP, M_CUBA };

/* Double reference of T steps over R = B*N rows: in [T][R], st0 [ns][R]
 * (initial state), loss = sum c*V + a*sigmoid(p x) over steps and rows;
 * spikes [T][R] gets the hard spikes (may be NULL). The constants are the
 * model's float ones, widened. */
static double ref_loss(int which, const inst *p, const double *in, const double *st0, size_t T, size_t R,
                       const float *ca, const float *cc, double slope, uint8_t *spikes) {
    double V[MAXR], X1[MAXR], X2[MAXR], RF[MAXR], L = 0.0;
    size_t N = p->N, ns = p->m->n_state;
    for (size_t k = 0; k < R; k++)
        V[k] = st0[k], X1[k] = ns > 2 ? st0[R + k] : 0.0, X2[k] = ns > 2 ? st0[2 * R + k] : 0.0,
        RF[k] = st0[(ns - 1) * R + k];
    for (size_t t = 0; t < T; t++)
        for (size_t k = 0; k < R; k++) {
            size_t j = k % N;
            const float *const *d = (const float *const *)p->dp;
            double w = in[t * R + k], pre, th, vr, x, el = 0.0;
            int active = RF[k] < 0.5, s;
            if (which == M_CUBA) {
                th = inst_get(p, "v_th", j), vr = inst_get(p, "v_reset", j), el = inst_get(p, "e_l", j);
                double e = X1[k] + w, g = X2[k];
                double xn = V[k] + d[0][j] * (el - V[k]) + d[1][j] * e + d[2][j] * g; /* Q, Pe, Pi */
                X1[k] = d[3][j] * e, X2[k] = d[4][j] * g;
                pre = active ? xn : V[k];
                s = active && xn > th;
                x = (xn - th) / (th - vr);
                L += ca[t * R + k] * (active ? 1.0 / (1.0 + exp(-slope * x)) : 0.0);
                V[k] = s ? vr : pre;
                RF[k] = s ? d[5][j] : (active ? RF[k] : RF[k] - 1.0);
            } else {
                el = inst_get(p, "E_L", j), th = inst_get(p, "V_th", j), vr = inst_get(p, "V_reset", j);
                double I = inst_get(p, "I_e", j), y = V[k] - el, yn;
                if (which == M_DELTA) yn = d[0][j] * y + d[1][j] * I + w; /* P22, P20 */
                else {
                    yn = d[0][j] * y + d[2][j] * X1[k] + d[3][j] * X2[k] + d[1][j] * I; /* P22 P21ex P21in P20 */
                    X1[k] = d[4][j] * X1[k] + w, X2[k] = d[5][j] * X2[k];
                }
                pre = active ? yn : y;
                s = pre >= th - el;
                x = (pre - (th - el)) / (th - vr);
                L += ca[t * R + k] / (1.0 + exp(-slope * x));
                V[k] = s ? vr : pre + el;
                RF[k] = s ? d[which == M_DELTA ? 2 : 6][j] : (active ? RF[k] : RF[k] - 1.0);
            }
            L += cc[t * R + k] * V[k];
            if (spikes) spikes[t * R + k] = (uint8_t)s;
        }
    return L;
}

/* spiking = 0: thresholds out of reach; 1: spikes and refractory periods. */
static void test_backward_fd(const char *model, int which, int spiking) {
    enum { N = 3, B = 2, R = B * N, T = 80 };
    inst p;
    inst_init(&p, model, N, 0.5f);
    const soma_model *m = p.m;
    if (!m || !m->backward) {
        CHECK(m && m->backward);
        return;
    }
    size_t ns = m->n_state;
    double wscale = which == M_EXP ? 300.0 : 3.0, st0[SOMA_MAX_STATE * R];
    for (size_t j = 0; j < N; j++) {
        if (which == M_CUBA) {
            inst_set(&p, "e_l", j, spiking ? -40.0f - 2.0f * (float)j : -60.0f);
            inst_set(&p, "v_th", j, spiking ? -50.0f : -30.0f);
            inst_set(&p, "t_ref", j, 1.0f + (float)j);
        } else {
            inst_set(&p, "I_e", j, spiking ? 500.0f + 50.0f * (float)j : 0.0f);
            inst_set(&p, "V_th", j, spiking ? -55.0f : -30.0f);
            inst_set(&p, "t_ref", j, 1.0f + (float)j);
        }
    }
    inst_prepare(&p);
    float fin[T * R], ca[T * R], cc[T * R], fst0[SOMA_MAX_STATE][R];
    double din_in[T * R];
    for (size_t i = 0; i < T * R; i++) {
        fin[i] = urand() < 0.5 ? (float)(wscale * (urand() - 0.3)) : 0.0f;
        ca[i] = (float)(urand() - 0.5), cc[i] = (float)(0.1 * (urand() - 0.5));
        din_in[i] = fin[i];
    }
    for (size_t k = 0; k < R; k++) {
        float el = which == M_CUBA ? inst_get(&p, "e_l", k % N) : inst_get(&p, "E_L", k % N);
        fst0[0][k] = el + (float)(4.0 * (urand() - 0.5));
        for (size_t v = 1; v < ns; v++) fst0[v][k] = 0.0f;
        if (ns > 2) fst0[1][k] = (float)(0.2 * wscale * urand());
        if (k == 1) fst0[ns - 1][k] = 3.0f; /* starts refractory: V held */
    }
    for (size_t v = 0; v < ns; v++)
        for (size_t k = 0; k < R; k++) st0[v * R + k] = fst0[v][k];

    /* forward tape, float */
    static float tape[T + 1][SOMA_MAX_STATE][R];
    float s[T][R], scratch[2 * N];
    for (size_t v = 0; v < ns; v++) memcpy(tape[0][v], fst0[v], sizeof fst0[v]);
    soma_model_args a;
    train_args(&p, &a, scratch);
    const float slope = 4.0f;
    a.surrogate_param = slope;
    for (size_t t = 0; t < T; t++) {
        const float *prev[SOMA_MAX_STATE];
        float *cur[SOMA_MAX_STATE];
        for (size_t v = 0; v < ns; v++) prev[v] = tape[t][v], cur[v] = tape[t + 1][v];
        m->forward(&a, prev, cur, s[t], fin + t * R, B, N);
    }
    uint8_t rspk[T * R];
    ref_loss(which, &p, din_in, st0, T, R, ca, cc, slope, rspk);
    size_t nspk = 0, mism = 0;
    for (size_t i = 0; i < T * R; i++) nspk += rspk[i], mism += rspk[i] != (uint8_t)s[i / R][i % R];
    CHECK_MSG(mism == 0, "%s: the float forward and the reference disagree on %zu spikes", model, mism);
    if (spiking) CHECK_MSG(nspk >= 8, "%s: only %zu spikes", model, nspk);
    else CHECK_MSG(nspk == 0, "%s: %zu spikes", model, nspk);

    /* backward */
    float dst[SOMA_MAX_STATE][R], din[T * R];
    memset(dst, 0, sizeof dst);
    float *dstate[SOMA_MAX_STATE], *dprm[SOMA_MAX_PARAMS] = {0};
    for (size_t v = 0; v < ns; v++) dstate[v] = dst[v];
    for (size_t t = T; t-- > 0;) {
        const float *prev[SOMA_MAX_STATE], *cur[SOMA_MAX_STATE];
        for (size_t v = 0; v < ns; v++) prev[v] = tape[t][v], cur[v] = tape[t + 1][v];
        a.in = fin + t * R;
        m->backward(&a, prev, cur, dstate, ca + t * R, cc + t * R, din + t * R, dprm, B, N);
    }

    /* central differences */
    const double h = 1e-4 * wscale;
    double worst = 0.0;
    size_t checked = 0, sig_changed = 0;
    uint8_t sp[T * R], sm[T * R];
    for (size_t i = 0; i < T * R + 2 * R; i++) {
        double *x = i < T * R ? &din_in[i] : &st0[(i - T * R < R ? 0 : 1) * R + (i - T * R) % R];
        if (i >= T * R + R && ns <= 2) break; /* delta has no current state */
        double x0 = *x, hh = i < T * R ? h : (i < T * R + R ? 1e-3 : h);
        *x = x0 + hh;
        double lp = ref_loss(which, &p, din_in, st0, T, R, ca, cc, slope, sp);
        *x = x0 - hh;
        double lm = ref_loss(which, &p, din_in, st0, T, R, ca, cc, slope, sm);
        *x = x0;
        if (memcmp(sp, sm, sizeof sp) != 0) {
            sig_changed++;
            continue;
        }
        double fd = (lp - lm) / (2.0 * hh);
        double an = i < T * R ? din[i] : (i < T * R + R ? dst[0][i - T * R] : dst[1][i - T * R - R]);
        double err = fabs(fd - an) / fmax(1e-2, fmax(fabs(fd), fabs(an)));
        if (err > 1e-4)
            fprintf(stderr, "%s spiking %d: %s %zu: analytic %.8g, differences %.8g\n", model, spiking,
                    i < T * R ? "input" : "initial state", i < T * R ? i : i - T * R, an, fd);
        if (err > worst) worst = err;
        checked++;
    }
    CHECK_MSG(sig_changed <= 2, "%s: %zu differences crossed a threshold", model, sig_changed);
    CHECK_MSG(checked > T * R, "%s: %zu checked", model, checked);
    CHECK_MSG(worst < 1e-4, "%s spiking %d: worst relative error %.3g", model, spiking, worst);
}

/* ------------------------------------------------- 4. a network trains */

static void test_network_trains(const char *model) {
    enum { D = 6, H = 10, C = 2, B = 8, T = 20 };
    soma_net *net;
    soma_net_create(&net);
    size_t in, h, o;
    CHECK(soma_net_add_pop(net, "in", "input", D, &in) == 0);
    CHECK_MSG(soma_net_add_pop(net, "hidden", model, H, &h) == 0, "%s", soma_net_errmsg(net));
    CHECK(soma_net_add_pop(net, "out", model, C, &o) == 0);
    soma_net_set_dt(net, 1.0);
    for (size_t pop = h; pop <= o; pop++) {
        if (!strcmp(model, "iaf_psc_exp")) soma_net_set_param(net, pop, "C_m", 2.0f); /* pA weights move V by mV */
        if (!strcmp(model, "lif_cuba")) { /* silent without input; fast enough for 20 steps of 1 ms */
            soma_net_set_param(net, pop, "e_l", -60.0f);
            soma_net_set_param(net, pop, "tau_m", 5.0f);
            soma_net_set_param(net, pop, "tau_e", 2.0f);
            soma_net_set_param(net, pop, "t_ref", 2.0f);
            soma_net_set_param(net, pop, "v_th", -56.0f);
            soma_net_set_param(net, pop, "v_reset", -64.0f);
        }
        if (strcmp(model, "lif_cuba")) soma_net_set_param(net, pop, "V_th", -62.0f);
    }
    soma_net_connect_dense(net, in, h, 1);
    soma_net_connect_dense(net, h, o, 1);
    CHECK(soma_net_init_weights(net, 5) == 0);
    soma_train_opts opt;
    soma_train_opts_default(&opt);
    opt.batch = B, opt.threads = 1, opt.loss = SOMA_LOSS_CE_COUNT, opt.lr = 5e-2f;
    opt.surrogate = SOMA_SURROGATE_FAST_SIGMOID, opt.surrogate_param = 5.0f;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.encoding = SOMA_ENCODING_DIRECT, d.steps = T, d.gain = 12.0f;
    soma_trainer *tr = NULL;
    int st = soma_train_create(&tr, net, &opt, &d);
    CHECK_MSG(st == 0, "%s: %s", model, soma_net_errmsg(net));
    if (st) {
        soma_net_free(net);
        return;
    }
    /* Two classes: which half of the input is on. */
    float x[B * D];
    uint8_t y[B];
    for (size_t b = 0; b < B; b++) {
        y[b] = (uint8_t)(b % 2);
        for (size_t i = 0; i < D; i++) x[b * D + i] = ((i < D / 2) == (y[b] == 0)) ? 0.5f + 0.05f * (float)b : 0.05f;
    }
    double first = 0, loss = 0;
    for (int it = 0; it < 60; it++) {
        CHECK(soma_train_grad(tr, x, 1, y, B, &loss, NULL) == 0);
        if (it == 0) first = loss;
        CHECK(soma_train_apply(tr) == 0);
    }
    CHECK_MSG(loss < 0.7 * first, "%s: loss %.4g -> %.4g", model, first, loss);

    /* With no weights nothing fires: every sample starts at rest (V = E_L),
     * not at 0 mV, which is above threshold. */
    for (size_t i = 0; i < soma_net_tensor_count(net); i++) {
        soma_tensor t;
        soma_net_tensor(net, i, &t);
        memset(t.data, 0, t.rows * t.cols * sizeof(float));
    }
    CHECK(soma_train_sync(tr) == 0);
    uint8_t spk[T * B * H];
    CHECK(soma_train_record(tr, x, 1, B, h, spk) == 0);
    size_t n = 0;
    for (size_t i = 0; i < sizeof spk; i++) n += spk[i];
    CHECK_MSG(n == 0, "%s: %zu spikes without input", model, n);
    soma_train_free(tr);
    soma_net_free(net);
}

/* The surrogate is scaled by V_th - V_reset: the trainer refuses a reset at or above threshold. */
static void test_reset_above_threshold_refused(void) {
    soma_net *net;
    soma_net_create(&net);
    size_t in, h;
    soma_net_add_pop(net, "in", "input", 2, &in);
    soma_net_add_pop(net, "cells", "iaf_psc_exp", 3, &h);
    soma_net_set_param(net, h, "V_reset", -55.0f); /* = V_th */
    soma_net_connect_dense(net, in, h, 1);
    soma_train_opts o;
    soma_train_opts_default(&o);
    soma_data_opts d;
    soma_data_opts_default(&d);
    soma_trainer *tr = NULL;
    CHECK(soma_train_create(&tr, net, &o, &d) == SOMA_STATUS_INVALID && !tr);
    const char *msg = soma_net_errmsg(net);
    CHECK_MSG(strstr(msg, "cells") && strstr(msg, "reset potential") && strstr(msg, "threshold"), "message: %s", msg);
    soma_net_free(net);
}

int main(void) {
    test_reset_above_threshold_refused();
    test_lif_tau_m();
    test_forward_is_sim_step("iaf_psc_delta", -3.0f, 8.0f);
    test_forward_is_sim_step("iaf_psc_exp", -400.0f, 1500.0f);
    test_forward_is_sim_step("lif_cuba", -6.0f, 12.0f);
    for (int spiking = 0; spiking < 2; spiking++) {
        test_backward_fd("iaf_psc_delta", M_DELTA, spiking);
        test_backward_fd("iaf_psc_exp", M_EXP, spiking);
        test_backward_fd("lif_cuba", M_CUBA, spiking);
    }
    test_network_trains("iaf_psc_delta");
    test_network_trains("iaf_psc_exp");
    test_network_trains("lif_cuba");
    return t_report("test_physical_train");
}
