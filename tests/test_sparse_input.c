/* test_sparse_input.c — the spike-driven paths equal the BLAS paths:
 * kernels (gather/scatter of spike rows, rows of a sparse valued input,
 * the narrow input gradient) against plain loops, and the trainer's sparse
 * input layer (taken for spike encodings at low density) against its GEMM
 * path on the same batch, weights and loss. */
#include <stdlib.h>
#include <string.h>
#include "net/net.h"
#include "proj/dense.h"
#include "soma.h"
#include "testlib.h"

static float frand(soma_rng *r) { return 2.0f * soma_rng_uniform(r) - 1.0f; }

static void test_kernels(void) {
    soma_rng rng;
    soma_rng_init(&rng, 5, 0);
    size_t R = 37, Nin = 53;
    size_t outs[] = {3, 16, 21, 70};
    for (size_t io = 0; io < 4; io++) {
        size_t Nout = outs[io], ld = soma__ldw(Nout);
        float *w = malloc(Nout * Nin * 4), *wT = soma__alloc(Nin * ld * 4), *b = malloc(Nout * 4);
        float *x = malloc(R * Nin * 4), *s = malloc(R * Nin * 4), *din = malloc(R * Nout * 4);
        float *ref = malloc(R * Nout * 4), *out = malloc(R * Nout * 4);
        float *dwr = calloc(Nin * Nout, 4), *dwT = soma__alloc(Nin * ld * 4), *dxr = calloc(R * Nin, 4), *dx = malloc(R * Nin * 4);
        uint32_t *idx = malloc(R * Nin * 4), *cnt = malloc(R * 4), *col = malloc(R * Nin * 4), *ccnt = malloc(R * 4);
        for (size_t i = 0; i < Nout * Nin; i++) w[i] = frand(&rng);
        for (size_t i = 0; i < Nout; i++) b[i] = frand(&rng);
        for (size_t i = 0; i < R * Nout; i++) din[i] = frand(&rng);
        for (size_t i = 0; i < R * Nin; i++) {
            float u = soma_rng_uniform(&rng);
            s[i] = u < 0.2f ? 1.0f : 0.0f;
            x[i] = u < 0.1f ? frand(&rng) : 0.0f;
        }
        soma__transpose_pad(wT, w, Nout, Nin, ld);
        for (size_t r = 0; r < R; r++) {
            cnt[r] = (uint32_t)soma__spike_index(s + r * Nin, Nin, idx + r * Nin);
            ccnt[r] = (uint32_t)soma__spike_index(x + r * Nin, Nin, col + r * Nin);
            CHECK(cnt[r] == soma__spike_count(s + r * Nin, Nin));
        }
        /* spikes: forward gather vs plain loop */
        for (size_t r = 0; r < R; r++)
            for (size_t o = 0; o < Nout; o++) {
                double a = b[o];
                for (size_t j = 0; j < Nin; j++) a += s[r * Nin + j] * w[o * Nin + j];
                ref[r * Nout + o] = (float)a;
            }
        soma__dense_forward_spikes(out, idx, cnt, Nin, wT, b, R, Nout, 0);
        double err = 0;
        for (size_t i = 0; i < R * Nout; i++) err = fmax(err, fabs(out[i] - ref[i]));
        CHECK_MSG(err < 1e-4, "spike gather, Nout %zu: max error %g", Nout, err);
        soma__dense_forward_blas(out, s, w, b, R, Nin, Nout, 0);
        err = 0;
        for (size_t i = 0; i < R * Nout; i++) err = fmax(err, fabs(out[i] - ref[i]));
        CHECK_MSG(err < 1e-4, "BLAS forward, Nout %zu: max error %g", Nout, err);
        /* spikes: weight gradient scatter vs plain loop */
        for (size_t r = 0; r < R; r++)
            for (size_t o = 0; o < Nout; o++)
                for (size_t j = 0; j < Nin; j++) dwr[o * Nin + j] += din[r * Nout + o] * s[r * Nin + j];
        memset(dwT, 0, Nin * ld * 4);
        soma__dense_dweight_spikes(dwT, idx, cnt, Nin, din, R, Nout);
        err = 0;
        for (size_t o = 0; o < Nout; o++)
            for (size_t j = 0; j < Nin; j++) err = fmax(err, fabs(dwT[j * ld + o] - dwr[o * Nin + j]));
        CHECK_MSG(err < 1e-4, "spike scatter, Nout %zu: max error %g", Nout, err);
        memset(dwT, 0, Nin * ld * 4);
        soma__dense_dweightT_blas(dwT, s, din, R, Nin, Nout);
        err = 0;
        for (size_t o = 0; o < Nout; o++)
            for (size_t j = 0; j < Nin; j++) err = fmax(err, fabs(dwT[j * ld + o] - dwr[o * Nin + j]));
        CHECK_MSG(err < 1e-4, "BLAS weight gradient, Nout %zu: max error %g", Nout, err);
        /* input gradient (AXPY blocks for narrow layers, BLAS for wide) vs plain loop */
        for (size_t r = 0; r < R; r++)
            for (size_t j = 0; j < Nin; j++) {
                double a = 0;
                for (size_t o = 0; o < Nout; o++) a += din[r * Nout + o] * w[o * Nin + j];
                dxr[r * Nin + j] = (float)a;
            }
        soma__dense_dinput(dx, din, w, R, Nin, Nout, 0);
        err = 0;
        for (size_t i = 0; i < R * Nin; i++) err = fmax(err, fabs(dx[i] - dxr[i]));
        CHECK_MSG(err < 1e-4, "input gradient, Nout %zu: max error %g", Nout, err);
        /* valued sparse rows vs plain loop, in two output column blocks */
        for (size_t r = 0; r < R; r++)
            for (size_t o = 0; o < Nout; o++) {
                double a = b[o];
                for (size_t j = 0; j < Nin; j++) a += x[r * Nin + j] * w[o * Nin + j];
                ref[r * Nout + o] = (float)a;
            }
        size_t half = Nout / 2;
        soma__dense_forward_sparse(out, x, col, ccnt, Nin, wT, b, R, Nin, Nout, 0, half);
        soma__dense_forward_sparse(out, x, col, ccnt, Nin, wT, b, R, Nin, Nout, half, Nout);
        err = 0;
        for (size_t i = 0; i < R * Nout; i++) err = fmax(err, fabs(out[i] - ref[i]));
        CHECK_MSG(err < 1e-4, "sparse forward, Nout %zu: max error %g", Nout, err);
        /* the vector tiles give the sums of the scalar loop (taken for
         * column windows narrower than a vector: 3 < 4 floats, SSE's width)
         * bit for bit */
        float *one = malloc(R * Nout * 4);
        for (size_t c0 = 0; c0 < Nout; c0 += 3)
            soma__dense_forward_sparse(one, x, col, ccnt, Nin, wT, b, R, Nin, Nout, c0, c0 + 3 < Nout ? c0 + 3 : Nout);
        CHECK_MSG(memcmp(one, out, R * Nout * 4) == 0, "sparse forward, Nout %zu: vector and scalar sums differ", Nout);
        free(one);
        memset(dwr, 0, Nin * Nout * 4);
        for (size_t r = 0; r < R; r++)
            for (size_t o = 0; o < Nout; o++)
                for (size_t j = 0; j < Nin; j++) dwr[o * Nin + j] += din[r * Nout + o] * x[r * Nin + j];
        memset(dwT, 0, Nin * ld * 4);
        /* output columns cut in two ranges, the way threads split them */
        soma__dense_dweightT_sparse(dwT, x, col, ccnt, Nin, din, R, Nin, Nout, half, Nout);
        soma__dense_dweightT_sparse(dwT, x, col, ccnt, Nin, din, R, Nin, Nout, 0, half);
        err = 0;
        for (size_t o = 0; o < Nout; o++)
            for (size_t j = 0; j < Nin; j++) err = fmax(err, fabs(dwT[j * ld + o] - dwr[o * Nin + j]));
        CHECK_MSG(err < 1e-4, "sparse weight gradient, Nout %zu: max error %g", Nout, err);
        /* spikes given without values (x NULL) give the valued sums bit for bit */
        float *f1 = malloc(R * Nout * 4), *f2 = malloc(R * Nout * 4), *dw2 = soma__alloc(Nin * ld * 4);
        soma__dense_forward_sparse(f1, s, idx, cnt, Nin, wT, b, R, Nin, Nout, 0, Nout);
        soma__dense_forward_sparse(f2, NULL, idx, cnt, Nin, wT, b, R, Nin, Nout, 0, Nout);
        CHECK_MSG(memcmp(f1, f2, R * Nout * 4) == 0, "spike forward without values differs, Nout %zu", Nout);
        memset(dwT, 0, Nin * ld * 4);
        soma__dense_dweightT_sparse(dwT, s, idx, cnt, Nin, din, R, Nin, Nout, 0, Nout);
        soma__dense_dweightT_sparse(dw2, NULL, idx, cnt, Nin, din, R, Nin, Nout, 0, Nout);
        CHECK_MSG(memcmp(dwT, dw2, Nin * ld * 4) == 0, "spike weight gradient without values differs, Nout %zu", Nout);
        CHECK(soma__count_nonbinary(s, R * Nin) == 0 && soma__count_nonbinary(x, R * Nin) > 0);
        free(f1), free(f2), free(dw2);
        free(w), free(wT), free(b), free(x), free(s), free(din), free(ref), free(out), free(dwr), free(dwT);
        free(dxr), free(dx), free(idx), free(cnt), free(col), free(ccnt);
    }
}

/* A trainer made for a spike encoding takes the sparse input path on a sparse
 * time-varying batch; one made for direct input runs the same batch through
 * the GEMM. Same weights: same loss, predictions and gradients. */
static soma_trainer *make(soma_net **net, int encoding, size_t B, int T) {
    soma_net_create(net);
    size_t in, hid, out;
    soma_net_add_pop(*net, "in", "input", 50, &in);
    soma_net_add_pop(*net, "hidden", "lif", 40, &hid);
    soma_net_add_pop(*net, "out", "lif", 5, &out);
    soma_net_connect_dense(*net, in, hid, 1);
    soma_net_connect_dense(*net, hid, out, 1);
    soma_net_init_weights(*net, 11);
    /* larger input weights so that a sparse input makes the hidden layer spike */
    soma_tensor t;
    soma_net_tensor_find(*net, "in->hidden.weight", &t);
    for (size_t i = 0; i < t.rows * t.cols; i++) t.data[i] *= 6.0f;
    soma_train_opts o;
    soma_train_opts_default(&o);
    o.batch = B;
    o.threads = 2;
    o.lr = 0.05f; /* a step that visibly changes the input weights */
    soma_data_opts d;
    soma_data_opts_default(&d);
    d.encoding = encoding;
    d.steps = T;
    soma_trainer *tr = NULL;
    CHECK(soma_train_create(&tr, *net, &o, &d) == 0);
    return tr;
}

static void test_trainer_paths(void) {
    size_t B = 12, D = 50;
    int T = 9;
    soma_rng rng;
    soma_rng_init(&rng, 3, 0);
    float *x = malloc((size_t)T * B * D * sizeof *x);
    uint8_t y[12];
    for (size_t i = 0; i < (size_t)T * B * D; i++) x[i] = soma_rng_uniform(&rng) < 0.05f ? 1.0f : 0.0f;
    for (size_t b = 0; b < B; b++) y[b] = (uint8_t)(b % 5);
    soma_net *na, *nb;
    soma_trainer *a = make(&na, SOMA_ENCODING_LATENCY, B, T), *b = make(&nb, SOMA_ENCODING_DIRECT, B, T);
    double la, lb;
    size_t ca, cb;
    CHECK(soma_train_grad(a, x, 0, y, B, &la, &ca) == 0);
    CHECK(soma_train_grad(b, x, 0, y, B, &lb, &cb) == 0);
    CHECK_NEAR(la, lb, 1e-6);
    CHECK(ca == cb);
    for (size_t i = 0; i < soma_net_tensor_count(na); i++) {
        soma_tensor ta, tb;
        soma_train_tensor(a, i, &ta);
        soma_train_tensor(b, i, &tb);
        double err = 0, mx = 0;
        for (size_t k = 0; k < ta.rows * ta.cols; k++) {
            err = fmax(err, fabs(ta.grad[k] - tb.grad[k]));
            mx = fmax(mx, fabs(tb.grad[k]));
        }
        CHECK_MSG(mx > 0 && err <= 1e-5 * fmax(mx, 1e-3), "%s: sparse vs GEMM gradient error %g (max %g)", ta.name, err, mx);
    }
    /* after an optimizer step the sparse path must use the new weights */
    CHECK(soma_train_apply(a) == 0 && soma_train_apply(b) == 0);
    CHECK(soma_train_grad(a, x, 0, y, B, &la, NULL) == 0);
    CHECK(soma_train_grad(b, x, 0, y, B, &lb, NULL) == 0);
    CHECK_NEAR(la, lb, 1e-6);
    soma_train_free(a), soma_train_free(b);
    soma_net_free(na), soma_net_free(nb);
    free(x);
}

/* The transposes (8x8 register tiles inside 32x32 blocks, scalar edges)
 * against plain index arithmetic, for shapes around the tile sizes: every
 * value lands in its place and soma__transpose_pad zeroes the padding. */
static void test_transposes(void) {
    size_t shapes[][2] = {{1, 1}, {7, 9}, {8, 8}, {16, 64}, {33, 17}, {64, 784}, {784, 64}, {41, 70}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        size_t rows = shapes[si][0], cols = shapes[si][1], ld = soma__ldw(rows), lds = cols + 3;
        float *src = malloc(rows * lds * 4), *dst = soma__alloc(cols * ld * 4), *back = malloc(rows * cols * 4);
        for (size_t i = 0; i < rows * lds; i++) src[i] = (float)i;
        for (size_t i = 0; i < cols * ld; i++) dst[i] = -1.0f;
        /* src as [rows][cols] (stride cols) into dst [cols][ld] */
        soma__transpose_pad(dst, src, rows, cols, ld);
        size_t bad = 0;
        for (size_t c = 0; c < cols; c++)
            for (size_t k = 0; k < ld; k++) bad += dst[c * ld + k] != (k < rows ? src[k * cols + c] : 0.0f);
        CHECK_MSG(bad == 0, "transpose_pad %zux%zu: %zu wrong", rows, cols, bad);
        /* src as [rows][cols] with stride lds into back [cols][rows] */
        soma__transpose_ld(back, src, rows, cols, lds);
        bad = 0;
        for (size_t c = 0; c < cols; c++)
            for (size_t r = 0; r < rows; r++) bad += back[c * rows + r] != src[r * lds + c];
        CHECK_MSG(bad == 0, "transpose_ld %zux%zu: %zu wrong", rows, cols, bad);
        free(src), free(dst), free(back);
    }
}

int main(void) {
    test_transposes();
    test_kernels();
    test_trainer_paths();
    return t_report("test_sparse_input");
}
