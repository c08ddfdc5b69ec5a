/* test_train_fd.c — the whole trainer's gradients against finite
 * differences, and the optimizer steps and learning-rate schedules against
 * their closed forms.
 *
 * Gradient check: input (D = 5) -> lif "out" (4 neurons, learnable beta per
 * neuron and threshold per layer), loss ce_mem. The membrane loss depends
 * smoothly on every parameter as long as the spike pattern (hence the reset
 * signal, which backward treats as detached) does not change, so with the
 * pattern held fixed the BPTT gradient is the exact derivative. Each entry is
 * perturbed by +-h and +-2h (fourth-order central difference; the loss is
 * recomputed with soma_train_grad on a fresh trainer, since a trainer caches
 * the parameters it was created or last stepped with), and entries whose
 * perturbation changes any output spike (soma_train_record) are skipped.
 * Both reset modes, direct (time-constant) and time-varying input, a batch
 * of two chunks.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

#define D 5
#define NOUT 4
#define B 10 /* more than one chunk of 8 */
#define T 6
#define PI 3.14159265358979323846

typedef struct setup {
    int reset;      /* 0 subtract, 1 zero */
    int tc;         /* 1 direct input [B][D], 0 time-varying [T][B][D] */
    float xscale;   /* inputs are U(0, xscale) */
    uint64_t seed;
} setup;

static soma_net *make_net(int reset, float beta, uint64_t seed, size_t *out) {
    soma_net *net = NULL;
    size_t in = 0, o = 0;
    int st = soma_net_create(&net);
    CHECK(st == 0);
    if (st) return NULL;
    st |= soma_net_add_pop(net, "in", "input", D, &in);
    st |= soma_net_add_pop(net, "out", "lif", NOUT, &o);
    st |= soma_net_set_param(net, o, "reset", (float)reset);
    st |= soma_net_set_param(net, o, "beta", beta);
    st |= soma_net_set_param(net, o, "threshold", 1.0f);
    st |= soma_net_set_learn(net, o, "beta", SOMA_LEARN_NEURON);
    st |= soma_net_set_learn(net, o, "threshold", SOMA_LEARN_LAYER);
    st |= soma_net_connect_dense(net, in, o, 1);
    st |= soma_net_init_weights(net, seed);
    CHECK_MSG(st == 0, "building the net: %s", soma_net_errmsg(net));
    if (out) *out = o;
    return net;
}

static void base_opts(soma_train_opts *to, soma_data_opts *dopt) {
    soma_train_opts_default(to);
    to->loss = SOMA_LOSS_CE_MEM;
    to->batch = B;
    to->threads = 1;
    soma_data_opts_default(dopt);
    dopt->steps = T;
}

static void make_data(const setup *su, float *x, uint8_t *y) {
    soma_rng rng;
    soma_rng_init(&rng, su->seed, 77);
    size_t n = (su->tc ? 1 : T) * B * D;
    for (size_t i = 0; i < n; i++) x[i] = su->xscale * soma_rng_uniform(&rng);
    for (size_t b = 0; b < B; b++) y[b] = (uint8_t)(soma_rng_u32(&rng) % NOUT);
}

/* Loss (and output spikes [T][B][NOUT], if wanted) of the net as it is now. */
static double eval_loss(soma_net *net, size_t out, const soma_train_opts *to, const soma_data_opts *dopt,
                        const float *x, int tc, const uint8_t *y, uint8_t *spikes) {
    soma_trainer *tr = NULL;
    double loss = NAN;
    if (soma_train_create(&tr, net, to, dopt)) {
        CHECK_MSG(0, "soma_train_create: %s", soma_net_errmsg(net));
        return NAN;
    }
    CHECK(soma_train_grad(tr, x, tc, y, B, &loss, NULL) == 0);
    if (spikes) CHECK(soma_train_record(tr, x, tc, B, out, spikes) == 0);
    soma_train_free(tr);
    return loss;
}

/* The ce_mem loss and output spikes of the net in double, from its tensors
 * (weight, bias, beta per neuron, threshold per layer): I = W x + b,
 * U_t as lif.c's header gives it, loss = mean over b and t of CE(softmax(U_t), y).
 * *margin gets min |U_t - theta|. */
static double ref_loss(soma_net *net, int reset, const float *x, int tc, const uint8_t *y, uint8_t *spikes,
                       double *margin) {
    soma_tensor tw, tb, tbeta, tth;
    CHECK(soma_net_tensor_find(net, "in->out.weight", &tw) == 0);
    CHECK(soma_net_tensor_find(net, "in->out.bias", &tb) == 0);
    CHECK(soma_net_tensor_find(net, "out.beta", &tbeta) == 0);
    CHECK(soma_net_tensor_find(net, "out.threshold", &tth) == 0);
    CHECK(tw.rows == NOUT && tw.cols == D && tbeta.rows * tbeta.cols == NOUT && tth.rows * tth.cols == 1);
    double th = tth.data[0], total = 0.0, mg = INFINITY;
    for (size_t b = 0; b < B; b++) {
        double u[NOUT] = {0};
        for (size_t t = 0; t < T; t++) {
            const float *xr = x + ((tc ? 0 : t * B) + b) * D;
            double mx = -INFINITY, sum = 0.0;
            for (size_t j = 0; j < NOUT; j++) {
                double in = tb.data[j];
                for (size_t i = 0; i < D; i++) in += (double)tw.data[j * D + i] * xr[i];
                double r = u[j] > th ? 1.0 : 0.0;
                u[j] = reset == 0 ? tbeta.data[j] * u[j] + in - r * th : tbeta.data[j] * (1.0 - r) * u[j] + in;
                spikes[(t * B + b) * NOUT + j] = u[j] > th;
                mg = fmin(mg, fabs(u[j] - th));
                mx = fmax(mx, u[j]);
            }
            for (size_t j = 0; j < NOUT; j++) sum += exp(u[j] - mx);
            total += (mx + log(sum) - u[y[b]]) / (double)T;
        }
    }
    *margin = mg;
    return total / (double)B;
}

static void grad_check(const setup *su) {
    char what[96];
    snprintf(what, sizeof what, "%s reset, %s input", su->reset ? "zero" : "subtract", su->tc ? "direct" : "time-varying");
    size_t out = 0;
    soma_net *net = make_net(su->reset, 0.9f, su->seed, &out);
    if (!net) return;
    soma_train_opts to;
    soma_data_opts dopt;
    base_opts(&to, &dopt);
    float x[T * B * D];
    uint8_t y[B];
    make_data(su, x, y);

    soma_trainer *tr = NULL;
    CHECK(soma_train_create(&tr, net, &to, &dopt) == 0);
    if (!tr) {
        soma_net_free(net);
        return;
    }
    double loss0 = NAN;
    CHECK(soma_train_grad(tr, x, su->tc, y, B, &loss0, NULL) == 0);
    CHECK(isfinite(loss0) && loss0 > 0.0);
    uint8_t spk0[T * B * NOUT], spk[T * B * NOUT];
    CHECK(soma_train_record(tr, x, su->tc, B, out, spk0) == 0);
    size_t nspk = 0;
    for (size_t i = 0; i < sizeof spk0; i++) nspk += spk0[i];
    /* The loss value and the spikes against a double forward of the same equations. */
    double margin;
    double lref = ref_loss(net, su->reset, x, su->tc, y, spk, &margin);
    CHECK_MSG(fabs(loss0 - lref) <= 1e-5 * fabs(lref), "%s: loss %.9g, double reference %.9g", what, loss0, lref);
    CHECK_MSG(margin > 1e-4, "%s: a membrane within %g of the threshold", what, margin);
    if (margin > 1e-4) CHECK_MSG(memcmp(spk, spk0, sizeof spk) == 0, "%s: output spikes differ from the reference", what);
    /* Some spikes (so the reset and the threshold's gradient take part), but few. */
    CHECK_MSG(nspk > 0 && nspk < sizeof spk0 / 4, "%s: %zu output spikes of %zu", what, nspk, sizeof spk0);

    size_t nt = soma_net_tensor_count(net);
    CHECK(nt == 4); /* weight, bias, out.beta, out.threshold */
    size_t checked = 0, skipped = 0;
    double worst = 0.0;
    for (size_t i = 0; i < nt; i++) {
        soma_tensor t;
        CHECK(soma_train_tensor(tr, i, &t) == 0);
        size_t n = t.rows * t.cols;
        float *g = malloc(n * sizeof *g);
        memcpy(g, t.grad, n * sizeof *g);
        double gmax = 0.0;
        for (size_t e = 0; e < n; e++) gmax = fmax(gmax, fabs(g[e]));
        int nonzero = 0;
        for (size_t e = 0; e < n; e++) {
            float w0 = t.data[e];
            /* Largest step (fourth-order formula: small truncation, float
             * rounding of the loss ~1e-7 divided by h) whose four
             * perturbations leave the spikes that matter unchanged. */
            static const double hs[3] = {1e-2, 2e-3, 5e-4};
            static const double mult[4] = {1, -1, 2, -2};
            double f[4], h = 0.0;
            int flipped = 1;
            for (int k = 0; k < 3 && flipped; k++) {
                h = hs[k] * fmax(1.0, fabs(w0));
                flipped = 0;
                for (int q = 0; q < 4 && !flipped; q++) {
                    t.data[e] = (float)(w0 + mult[q] * h);
                    f[q] = eval_loss(net, out, &to, &dopt, x, su->tc, y, spk);
                    /* Spikes of the last step reset nothing within the window. */
                    if (memcmp(spk, spk0, (T - 1) * B * NOUT) != 0) flipped = 1;
                }
            }
            t.data[e] = w0;
            if (flipped) {
                skipped++;
                continue;
            }
            checked++;
            double fd = (8.0 * (f[0] - f[1]) - (f[2] - f[3])) / (12.0 * h);
            double scale = fmax(fmax(fabs(g[e]), 1e-2 * gmax), 1e-9);
            double err = fabs(g[e] - fd) / scale;
            if (err > worst) worst = err;
            nonzero += g[e] != 0.0f;
            CHECK_MSG(fabs(g[e] - fd) <= 5e-3 * scale, "%s: d loss / d %s[%zu] = %.7g, finite difference %.7g", what,
                      t.name, e, (double)g[e], fd);
        }
        /* With reset to zero and a membrane loss the threshold only gates the
         * (detached) reset: its gradient is exactly zero. */
        if (su->reset == 1 && strstr(t.name, "threshold"))
            CHECK_MSG(nonzero == 0, "%s: %s has a gradient", what, t.name);
        else CHECK_MSG(nonzero > 0, "%s: every checked gradient of %s is zero", what, t.name);
        free(g);
    }
    /* The base loss is unchanged by the perturbations (each restored exactly). */
    double loss1 = eval_loss(net, out, &to, &dopt, x, su->tc, y, NULL);
    CHECK(loss1 == loss0);
    CHECK_MSG(skipped * 5 <= checked, "%s: %zu entries skipped (spike flips), %zu checked", what, skipped, checked);
    if (getenv("SOMA_TEST_VERBOSE"))
        fprintf(stderr, "%s: loss %.6f, %zu spikes, %zu checked, %zu skipped, worst relative error %.2e\n", what, loss0,
                nspk, checked, skipped, worst);
    soma_train_free(tr);
    soma_net_free(net);
}

/* ------------------------------------------------------------ optimizers */

typedef struct snap {
    size_t n;
    float p[256], g[256];
} snap;

/* Copy every tensor's data and gradient, in tensor order. */
static void take(soma_trainer *tr, soma_net *net, snap *s) {
    s->n = 0;
    size_t nt = soma_net_tensor_count(net);
    for (size_t i = 0; i < nt; i++) {
        soma_tensor t;
        CHECK(soma_train_tensor(tr, i, &t) == 0);
        for (size_t e = 0; e < t.rows * t.cols && s->n < 256; e++, s->n++) {
            s->p[s->n] = t.data[e];
            s->g[s->n] = t.grad[e];
        }
    }
}

/* A trainer on the test net with optimizer options changed by the caller,
 * gradients of one batch computed. */
static soma_trainer *opt_trainer(soma_net **netp, const soma_train_opts *to, const float *x, const uint8_t *y) {
    *netp = make_net(0, 0.8f, 5, NULL);
    if (!*netp) return NULL;
    soma_data_opts dopt;
    soma_train_opts dummy;
    base_opts(&dummy, &dopt);
    soma_trainer *tr = NULL;
    CHECK(soma_train_create(&tr, *netp, to, &dopt) == 0);
    if (!tr) return NULL;
    double loss;
    CHECK(soma_train_grad(tr, x, 1, y, B, &loss, NULL) == 0);
    return tr;
}

static void test_optimizers(void) {
    setup su = {0, 1, 1.0f, 11};
    float x[T * B * D];
    uint8_t y[B];
    make_data(&su, x, y);
    soma_train_opts base;
    soma_data_opts dopt;
    base_opts(&base, &dopt);
    soma_net *net;
    soma_trainer *tr;
    snap s0, s1, s2;

    /* SGD, momentum 0: p -= lr * g exactly. */
    soma_train_opts to = base;
    to.optimizer = SOMA_OPTIMIZER_SGD;
    to.momentum = 0.0f;
    to.lr = 0.1f;
    tr = opt_trainer(&net, &to, x, y);
    if (tr) {
        take(tr, net, &s0);
        CHECK(s0.n == NOUT * D + NOUT + NOUT + 1);
        double gn = 0.0;
        for (size_t i = 0; i < s0.n; i++) gn += fabs(s0.g[i]);
        CHECK(gn > 0.0);
        CHECK(soma_train_apply(tr) == 0);
        take(tr, net, &s1);
        for (size_t i = 0; i < s0.n; i++)
            CHECK_MSG(fabsf(s1.p[i] - (s0.p[i] - 0.1f * s0.g[i])) <= 1e-7f * fmaxf(1.0f, fabsf(s0.p[i])),
                      "sgd: p[%zu] %.9g -> %.9g, grad %.9g", i, (double)s0.p[i], (double)s1.p[i], (double)s0.g[i]);
        /* A non-finite gradient is refused and leaves the weights untouched. */
        soma_tensor t;
        CHECK(soma_train_tensor(tr, 0, &t) == 0);
        t.grad[3] = NAN;
        CHECK(soma_train_apply(tr) == SOMA_STATUS_NONFINITE);
        take(tr, net, &s2);
        CHECK(memcmp(s1.p, s2.p, s1.n * sizeof(float)) == 0);
        soma_train_free(tr);
    }
    soma_net_free(net);

    /* SGD with momentum 0.9 and L2 weight decay, two steps (torch.optim.SGD):
     * buf1 = g1 + wd p0; p1 = p0 - lr buf1; buf2 = 0.9 buf1 + g2 + wd p1; p2 = p1 - lr buf2. */
    to = base;
    to.optimizer = SOMA_OPTIMIZER_SGD;
    to.momentum = 0.9f;
    to.weight_decay = 0.05f;
    to.lr = 0.1f;
    tr = opt_trainer(&net, &to, x, y);
    if (tr) {
        take(tr, net, &s0);
        CHECK(soma_train_apply(tr) == 0);
        double loss;
        CHECK(soma_train_grad(tr, x, 1, y, B, &loss, NULL) == 0);
        take(tr, net, &s1);
        CHECK(soma_train_apply(tr) == 0);
        take(tr, net, &s2);
        for (size_t i = 0; i < s0.n; i++) {
            double buf1 = (double)s0.g[i] + 0.05 * s0.p[i];
            double p1 = s0.p[i] - 0.1 * buf1;
            double buf2 = 0.9 * buf1 + s1.g[i] + 0.05 * p1;
            double p2 = p1 - 0.1 * buf2;
            CHECK_NEAR(s1.p[i], p1, 1e-6);
            CHECK_NEAR(s2.p[i], p2, 1e-6);
        }
        soma_train_free(tr);
    }
    soma_net_free(net);

    /* Adam, first step: m = (1-b1) g, v = (1-b2) g^2, and with bias
     * correction p -= lr g / (|g| + eps), i.e. about lr * sign(g). Second
     * step against the torch formulas in double. */
    const float lr = 0.01f;
    to = base;
    to.optimizer = SOMA_OPTIMIZER_ADAM;
    to.lr = lr;
    to.eps = 1e-8f;
    tr = opt_trainer(&net, &to, x, y);
    if (tr) {
        take(tr, net, &s0);
        CHECK(soma_train_apply(tr) == 0);
        double loss;
        CHECK(soma_train_grad(tr, x, 1, y, B, &loss, NULL) == 0);
        take(tr, net, &s1);
        CHECK(soma_train_apply(tr) == 0);
        take(tr, net, &s2);
        size_t signs = 0;
        for (size_t i = 0; i < s0.n; i++) {
            double g = s0.g[i], step = (s1.p[i] - s0.p[i]) / lr;
            CHECK_MSG(fabs(step + g / (fabs(g) + 1e-8)) <= 1e-4, "adam step 1: p[%zu] moved %.7g lr, grad %.7g", i, step, g);
            if (fabs(g) > 1e-5) {
                signs++;
                CHECK_MSG(fabs(step + (g > 0 ? 1.0 : -1.0)) <= 2e-3, "adam step 1: p[%zu] moved %.7g lr, grad %.7g", i,
                          step, g);
            }
            double b1 = 0.9, b2 = 0.999, g2 = s1.g[i];
            double m = 0.1 * g, v = 0.001 * g * g;
            m = b1 * m + (1 - b1) * g2;
            v = b2 * v + (1 - b2) * g2 * g2;
            double mh = m / (1 - b1 * b1), vh = v / (1 - b2 * b2);
            double p2 = s1.p[i] - lr * mh / (sqrt(vh) + 1e-8);
            CHECK_MSG(fabs(s2.p[i] - p2) <= 1e-4 * lr, "adam step 2: p[%zu] = %.9g, expected %.9g", i, (double)s2.p[i], p2);
        }
        CHECK(signs > s0.n / 2);
        soma_train_free(tr);
    }
    soma_net_free(net);

    /* Adam with weight decay (L2: g + wd p) versus AdamW (decoupled:
     * p (1 - lr wd) - lr g / (|g| + eps)), first step. */
    for (int w = 0; w < 2; w++) {
        to = base;
        to.optimizer = w ? SOMA_OPTIMIZER_ADAMW : SOMA_OPTIMIZER_ADAM;
        to.lr = lr;
        to.weight_decay = 0.5f;
        tr = opt_trainer(&net, &to, x, y);
        if (!tr) {
            soma_net_free(net);
            continue;
        }
        take(tr, net, &s0);
        CHECK(soma_train_apply(tr) == 0);
        take(tr, net, &s1);
        for (size_t i = 0; i < s0.n; i++) {
            double p = s0.p[i], g = s0.g[i], want;
            if (w) want = p * (1.0 - lr * 0.5) - lr * g / (fabs(g) + 1e-8);
            else {
                double gd = g + 0.5 * p;
                want = p - lr * gd / (fabs(gd) + 1e-8);
            }
            CHECK_MSG(fabs(s1.p[i] - want) <= 1e-6 + 1e-4 * lr, "%s: p[%zu] %.9g -> %.9g, expected %.9g (grad %.7g)",
                      w ? "adamw" : "adam+l2", i, p, (double)s1.p[i], want, g);
        }
        soma_train_free(tr);
        soma_net_free(net);
    }

    /* Gradient clipping: the global L2 norm is scaled down to clip_norm
     * (SGD, lr 0.1, so the step is -0.1 * clipped gradient); a larger
     * clip_norm leaves the gradient alone. */
    for (int big = 0; big < 2; big++) {
        to = base;
        to.optimizer = SOMA_OPTIMIZER_SGD;
        to.momentum = 0.0f;
        to.lr = 0.1f;
        tr = opt_trainer(&net, &to, x, y);
        if (!tr) {
            soma_net_free(net);
            continue;
        }
        take(tr, net, &s0);
        double norm = 0.0;
        for (size_t i = 0; i < s0.n; i++) norm += (double)s0.g[i] * s0.g[i];
        norm = sqrt(norm);
        CHECK(norm > 0.0);
        soma_train_free(tr);
        soma_net_free(net);
        double clip = big ? 2.0 * norm : 0.25 * norm;
        to.clip_norm = (float)clip;
        tr = opt_trainer(&net, &to, x, y);
        if (!tr) {
            soma_net_free(net);
            continue;
        }
        CHECK(soma_train_apply(tr) == 0);
        take(tr, net, &s1);
        double k = big ? 1.0 : clip / norm, stepnorm = 0.0;
        for (size_t i = 0; i < s0.n; i++) {
            double d = (s1.p[i] - s0.p[i]) / -0.1;
            stepnorm += d * d;
            CHECK_MSG(fabs(d - k * s0.g[i]) <= 1e-5 * fmax(fabs(s0.p[i]), 1.0) / 0.1 + 1e-6,
                      "clip: p[%zu] moved by %.7g * 0.1, expected %.7g", i, d, k * s0.g[i]);
        }
        CHECK_NEAR(sqrt(stepnorm) / (big ? norm : clip), 1.0, 1e-3);
        soma_train_free(tr);
        soma_net_free(net);
    }
}

/* ------------------------------------------------------------- schedules */

static void test_schedules(void) {
    soma_train_opts o;
    soma_train_opts_default(&o);
    o.lr = 0.1f;
    o.schedule = SOMA_SCHEDULE_CONSTANT;
    CHECK(soma_train_lr(&o, 0, 0, 10) == 0.1f);
    CHECK(soma_train_lr(&o, 7, 3, 10) == 0.1f);

    /* step: lr * gamma^floor(epoch / step_size) */
    o.schedule = SOMA_SCHEDULE_STEP;
    o.step_size = 2;
    o.gamma = 0.5f;
    static const double want_step[6] = {0.1, 0.1, 0.05, 0.05, 0.025, 0.025};
    for (int e = 0; e < 6; e++) {
        CHECK_NEAR(soma_train_lr(&o, e, 0, 10), want_step[e], 1e-7);
        CHECK_NEAR(soma_train_lr(&o, e, 9, 10), want_step[e], 1e-7);
    }
    o.step_size = 3;
    o.gamma = 0.1f;
    CHECK_NEAR(soma_train_lr(&o, 7, 0, 10), 0.1 * 0.01, 1e-8);

    /* cosine: lr_min + (lr - lr_min)(1 + cos(pi pos / total)) / 2 with
     * pos = epoch * nbatches + batch, total = epochs * nbatches, clamped. */
    o.schedule = SOMA_SCHEDULE_COSINE;
    o.epochs = 4;
    o.lr_min = 0.001f;
    const long nb = 10;
    for (int e = 0; e < 4; e++)
        for (long b = 0; b < nb; b += 3) {
            double pos = (double)(e * nb + b), total = 40.0;
            double want = 0.001 + 0.5 * (0.1 - 0.001) * (1.0 + cos(PI * pos / total));
            CHECK_NEAR(soma_train_lr(&o, e, b, nb), want, 1e-6);
        }
    CHECK_NEAR(soma_train_lr(&o, 0, 0, nb), 0.1, 1e-7);                 /* start: lr */
    CHECK_NEAR(soma_train_lr(&o, 2, 0, nb), 0.5 * (0.1 + 0.001), 1e-7); /* halfway: the mean */
    CHECK_NEAR(soma_train_lr(&o, 4, 0, nb), 0.001, 1e-7);               /* end: lr_min */
    CHECK_NEAR(soma_train_lr(&o, 9, 5, nb), 0.001, 1e-7);               /* past the end: stays */
    /* epoch 1, batch 5 of 10: pos/total = 15/40 */
    CHECK_NEAR(soma_train_lr(&o, 1, 5, nb), 0.001 + 0.0495 * (1.0 + cos(PI * 0.375)), 1e-6);
    /* monotone non-increasing */
    float prev = 1.0f;
    int mono = 1;
    for (int e = 0; e < 4; e++)
        for (long b = 0; b < nb; b++) {
            float v = soma_train_lr(&o, e, b, nb);
            if (v > prev) mono = 0;
            prev = v;
        }
    CHECK(mono);
}

int main(void) {
    /* xscale tuned so the output spikes a little (see the nspk check). */
    const setup cases[] = {
        {0, 1, 1.0f, 1}, {0, 0, 1.0f, 2}, {1, 1, 1.0f, 3}, {1, 0, 1.0f, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) grad_check(&cases[i]);
    test_optimizers();
    test_schedules();
    return t_report("train_fd");
}
