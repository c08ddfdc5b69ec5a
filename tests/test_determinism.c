/* test_determinism.c — the same seed gives the same loss curve and weights,
 * run after run and with 1 or 2 threads (bit for bit: chunk gradients are
 * summed in a fixed order and BLAS calls never split a reduction); another
 * seed gives another result. Uses rate encoding so the RNG is exercised, a
 * recurrent layer, and a batch that is not a multiple of the chunk size.
 * A second network takes the sparse input path at T = 1 (UltraPLIF, as
 * examples/fmnist-ultralif-t1.yaml): its input weight gradient is cut into
 * one range of neurons per thread, so 1, 2 and 3 threads are compared.
 * The trainer flushes denormals while it runs: the caller's floating-point
 * mode (MXCSR on x86) must be the same after each epoch, in the calling
 * thread and in the OpenMP threads that ran it. */
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

#define EPOCHS 2

typedef struct result {
    double loss[EPOCHS];
    float *w;
    size_t n;
} result;

static void make_data(soma_dataset *ds, size_t n, size_t dim) {
    ds->n = n, ds->dim = dim, ds->rows = 1, ds->cols = dim, ds->classes = 4;
    ds->x = malloc(n * ds->dim);
    ds->y = malloc(n);
    soma_rng r;
    soma_rng_init(&r, 99, 1);
    for (size_t i = 0; i < n; i++) {
        ds->y[i] = (uint8_t)(soma_rng_u32(&r) % 4);
        for (size_t k = 0; k < ds->dim; k++)
            ds->x[i * ds->dim + k] = (uint8_t)((soma_rng_u32(&r) % 120) + (k % 4 == ds->y[i] ? 135 : 0));
    }
}

/* The mode bits of MXCSR (all but the six sticky exception flags) of the
 * calling thread and of every thread of a team of n are 0x1f80 (all
 * exceptions masked, round to nearest, no FTZ/DAZ), the default this test
 * starts from. */
static void check_fp_mode(int n) {
#if defined(__SSE2__) && (defined(__x86_64__) || defined(__i386__))
    unsigned bad = 0;
    CHECK_MSG((__builtin_ia32_stmxcsr() & ~0x3fu) == 0x1f80u, "caller's MXCSR %#x after training",
              __builtin_ia32_stmxcsr());
#pragma omp parallel num_threads(n) reduction(| : bad)
    bad |= (__builtin_ia32_stmxcsr() & ~0x3fu) ^ 0x1f80u;
    CHECK_MSG(bad == 0, "an OpenMP thread's MXCSR differs from 0x1f80 in bits %#x after training", bad);
#else
    (void)n;
#endif
}

static result train(const soma_dataset *ds, int threads, uint64_t seed, int ultra) {
    result res = {0};
    soma_net *net;
    soma_net_create(&net);
    size_t in, hid, out;
    soma_net_add_pop(net, "in", "input", ds->dim, &in);
    if (ultra) {
        soma_net_add_pop(net, "hidden", "ultralif", 40, &hid);
        soma_net_add_pop(net, "out", "ann", 4, &out);
        soma_net_set_param(net, out, "activation", 2.0f); /* linear */
        soma_net_set_learn(net, hid, "log_tau", SOMA_LEARN_NEURON);
        soma_net_set_learn(net, hid, "log_eps", SOMA_LEARN_LAYER);
    } else {
        soma_net_add_pop(net, "hidden", "lif", 24, &hid);
        soma_net_add_pop(net, "out", "synaptic", 4, &out);
        soma_net_set_recurrent(net, hid, 1);
        soma_net_set_learn(net, hid, "beta", SOMA_LEARN_NEURON);
    }
    soma_net_connect_dense(net, in, hid, 1);
    soma_net_connect_dense(net, hid, out, 1);
    soma_train_opts o;
    soma_train_opts_default(&o);
    o.batch = ultra ? 40 : 13; /* not a multiple of the chunk size */
    o.lr = 5e-3f;
    o.threads = threads;
    o.seed = seed;
    o.loss = ultra ? SOMA_LOSS_CE_RATE : SOMA_LOSS_CE_COUNT;
    o.rate_penalty = 0.05f;
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.encoding = SOMA_ENCODING_RATE;
    d.steps = ultra ? 1 : 12;
    d.gain = ultra ? 0.3f : 1.0f; /* sparse enough for the gather */
    soma_trainer *tr;
    int st = soma_train_create(&tr, net, &o, &d);
    CHECK_MSG(st == 0, "%s", soma_net_errmsg(net));
    if (st) return res;
    for (int e = 0; e < EPOCHS; e++) {
        soma_epoch_result er;
        CHECK(soma_train_epoch(tr, ds, e, NULL, NULL, &er) == 0);
        check_fp_mode(threads);
        res.loss[e] = er.loss;
    }
    res.n = soma_net_param_count(net);
    res.w = malloc(res.n * sizeof(float));
    size_t off = 0;
    for (size_t i = 0; i < soma_net_tensor_count(net); i++) {
        soma_tensor t;
        soma_net_tensor(net, i, &t);
        memcpy(res.w + off, t.data, t.rows * t.cols * sizeof(float));
        off += t.rows * t.cols;
    }
    soma_train_free(tr);
    soma_net_free(net);
    return res;
}

static int same(const result *a, const result *b) {
    if (a->n != b->n || !a->w || !b->w) return 0;
    for (int e = 0; e < EPOCHS; e++)
        if (a->loss[e] != b->loss[e]) return 0;
    return memcmp(a->w, b->w, a->n * sizeof(float)) == 0;
}

int main(void) {
    soma_dataset ds = {0};
    make_data(&ds, 150, 20);
    result a = train(&ds, 1, 7, 0), b = train(&ds, 1, 7, 0), c = train(&ds, 2, 7, 0), d = train(&ds, 1, 8, 0);
    CHECK_MSG(same(&a, &b), "two runs with the same seed differ");
    CHECK_MSG(same(&a, &c), "1 and 2 threads differ: losses %.17g vs %.17g", a.loss[EPOCHS - 1], c.loss[EPOCHS - 1]);
    CHECK_MSG(!same(&a, &d), "another seed gave the same result");
    CHECK(a.loss[EPOCHS - 1] < a.loss[0]); /* and it learns */
    free(a.w), free(b.w), free(c.w), free(d.w);
    soma_data_free(&ds);
    /* UltraPLIF at T = 1 on the sparse input path (40 neurons: uneven ranges) */
    soma_dataset du = {0};
    make_data(&du, 200, 101);
    result u1 = train(&du, 1, 7, 1), u2 = train(&du, 2, 7, 1), u3 = train(&du, 3, 7, 1);
    CHECK_MSG(same(&u1, &u2), "UltraPLIF: 1 and 2 threads differ: losses %.17g vs %.17g", u1.loss[EPOCHS - 1],
              u2.loss[EPOCHS - 1]);
    CHECK_MSG(same(&u1, &u3), "UltraPLIF: 1 and 3 threads differ: losses %.17g vs %.17g", u1.loss[EPOCHS - 1],
              u3.loss[EPOCHS - 1]);
    CHECK(u1.loss[EPOCHS - 1] < u1.loss[0]);
    free(u1.w), free(u2.w), free(u3.w);
    soma_data_free(&du);
    return t_report("test_determinism");
}
