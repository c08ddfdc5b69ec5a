/* bench_conv.c — time per image of the convolution kernels on the second
 * convolution of examples/fmnist-conv.yaml (32x14x14 spikes -> conv 64@3x3,
 * pad 1 -> max pool 2), 16 images per call as the trainer calls them:
 * forward, weight gradient, and input gradient, at a given input density.
 *
 * Usage: bench_conv [density 0.2] [path: 0 cost model, 1 im2col + GEMM,
 *                   2 spike path] [c1: the first convolution instead,
 *                   1x28x28 images with random values -> conv 32@3x3]
 * Run with OPENBLAS_NUM_THREADS=1 for one-thread figures. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include "proj/conv.h"

int main(int argc, char **argv) {
    double dens = argc > 1 ? atof(argv[1]) : 0.2;
    int first = argc > 3;
    soma__conv_plan p = {0};
    if (argc > 2) p.path = atoi(argv[2]);
    p.cv.kernel = 3, p.cv.stride = 1, p.cv.padding = 1, p.cv.pool = SOMA_POOL_MAX, p.cv.pool_size = 2;
    if (first)
        p.cin = 1, p.ih = p.iw = 28, p.cout = 32, p.oh = p.ow = 28, p.ph = p.pw = 14;
    else
        p.cin = 32, p.ih = p.iw = 14, p.cout = 64, p.oh = p.ow = 14, p.ph = p.pw = 7;
    size_t ck = p.cin * 9, n = 16, D = p.cin * p.ih * p.iw, N = p.cout * p.ph * p.pw;
    float *w = malloc(p.cout * ck * sizeof(float)), *b = calloc(p.cout, sizeof(float));
    p.w = w, p.b = b;
    srand(1);
    for (size_t i = 0; i < p.cout * ck; i++) w[i] = (float)rand() / RAND_MAX - 0.5f;
    float *x = malloc(n * D * sizeof(float)), *out = malloc(n * N * sizeof(float));
    float *dout = malloc(n * N * sizeof(float)), *dx = malloc(n * D * sizeof(float));
    float *dw = calloc(p.cout * ck, sizeof(float)), *db = calloc(p.cout, sizeof(float));
    for (size_t i = 0; i < n * D; i++) { /* spikes (0/1), or pixel values for the first convolution */
        float u = (float)rand() / RAND_MAX;
        x[i] = u < dens ? (first ? (float)rand() / RAND_MAX : 1.0f) : 0.0f;
    }
    for (size_t i = 0; i < n * N; i++) dout[i] = (float)rand() / RAND_MAX - 0.5f;
    uint8_t *arg = malloc(n * N);
    size_t cs = soma__conv_cols_size(&p) * n, ts = soma__conv_out_size(&p) * n;
    float *cols = malloc(cs * sizeof(float)), *tmp = malloc(ts * sizeof(float)), *dcols = malloc(cs * sizeof(float));
    int R = 200;
    for (int r = 0; r < 20; r++) { /* warm up: pages, caches */
        soma__conv_forward(&p, x, D, out, N, n, cols, tmp, arg);
        soma__conv_backward(&p, x, D, dout, N, n, arg, dw, db, dx, cols, tmp, dcols);
    }
    double t0 = soma_clock_seconds();
    for (int r = 0; r < R; r++) soma__conv_forward(&p, x, D, out, N, n, cols, tmp, arg);
    double t1 = soma_clock_seconds();
    for (int r = 0; r < R; r++) soma__conv_backward(&p, x, D, dout, N, n, arg, dw, db, NULL, cols, tmp, dcols);
    double t2 = soma_clock_seconds();
    for (int r = 0; r < R; r++) soma__conv_backward(&p, x, D, dout, N, n, arg, dw, db, dx, cols, tmp, dcols);
    double t3 = soma_clock_seconds(), per = 1e6 / (R * (double)n);
    const char *path = p.path == SOMA__CONV_PATH_GEMM ? "GEMM" : p.path == SOMA__CONV_PATH_SPIKES ? "spike" : "auto";
    printf("%s convolution, density %.2f, path %s: forward %.1f us/image, weight gradient %.1f, input gradient %.1f\n",
           first ? "first" : "second", dens, path, (t1 - t0) * per, (t2 - t1) * per, ((t3 - t2) - (t2 - t1)) * per);
    free(w), free(b), free(x), free(out), free(dout), free(dx), free(dw), free(db), free(arg), free(cols), free(tmp),
        free(dcols);
    return 0;
}
