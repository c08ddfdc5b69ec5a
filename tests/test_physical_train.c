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
 *      API (the loss falls), and starts from rest (V = E_L), not zero.
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
static void inst_prepare(inst *p) { p->m->prepare(p->pp, p->N, p->dt, 0, p->dp); }

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

int main(void) {
    test_lif_tau_m();
    return t_report("test_physical_train");
}
