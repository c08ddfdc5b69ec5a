/* bench_sparsify.c — the sparsified product itself: a dense projection's
 * forward on masked real-valued inputs, BLAS over all inputs against the
 * trainer's sparse path under a MASK (the index of the kept inputs built,
 * then soma__dense_forward_sparse over them), over the fraction of inputs
 * kept, at the row count of one trainer chunk. Sets the trainer's density
 * threshold (SOMA_TRAIN_MASK_SPARSE_DEFAULT, soma.h).
 * Usage: bench_sparsify [Nin] [rows] [runs]; prints per output width and
 * density the median over runs of ns per row, and the ratio. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <cblas.h>
#include "proj/dense.h"
#include "net/net.h"

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    size_t Nin = argc > 1 ? (size_t)atol(argv[1]) : 1000, R = argc > 2 ? (size_t)atol(argv[2]) : 32;
    int runs = argc > 3 ? atoi(argv[3]) : 5;
    if (runs < 1 || runs > 99 || Nin < 1 || R < 1) return fprintf(stderr, "usage: bench_sparsify [Nin] [rows] [runs 1..99]\n"), 2;
    size_t outs[] = {10, 1000};
    double dens[] = {0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7};
    openblas_set_num_threads(1);
    printf("Nin %zu, rows %zu, single thread; median of %d runs, ns per row\n", Nin, R, runs);
    printf("%6s %8s %12s %12s %8s\n", "Nout", "density", "dense_blas", "sparse", "speedup");
    for (size_t io = 0; io < 2; io++) {
        size_t Nout = outs[io];
        float *w = soma__alloc(Nin * Nout * 4), *wT = soma__alloc(Nin * soma__ldw(Nout) * 4), *x = soma__alloc(R * Nin * 4);
        float *out = soma__alloc(R * Nout * 4), *b = soma__alloc(Nout * 4);
        uint32_t *idx = soma__alloc(R * Nin * 4), *cnt = soma__alloc(R * 4);
        for (size_t i = 0; i < Nin * Nout; i++) w[i] = (float)(i % 7) * 0.1f - 0.3f;
        for (size_t i = 0; i < Nout; i++) b[i] = 0.01f * (float)i;
        soma__transpose_pad(wT, w, Nout, Nin, soma__ldw(Nout));
        for (size_t di = 0; di < sizeof dens / sizeof dens[0]; di++) {
            srand(1);
            for (size_t i = 0; i < R * Nin; i++)
                x[i] = (double)rand() / RAND_MAX < dens[di] ? (float)rand() / (float)RAND_MAX : 0.0f;
            int reps = Nout > 100 ? 20 : 400;
            double td[99], ts[99];
            for (int run = 0; run < runs; run++) {
                double t0 = soma_clock_seconds();
                for (int k = 0; k < reps; k++) soma__dense_forward_blas(out, x, w, b, R, Nin, Nout, 0);
                double t1 = soma_clock_seconds();
                for (int k = 0; k < reps; k++) {
                    for (size_t r = 0; r < R; r++) cnt[r] = (uint32_t)soma__spike_index(x + r * Nin, Nin, idx + r * Nin);
                    soma__dense_forward_sparse(out, x, idx, cnt, Nin, wT, b, R, Nin, Nout, 0, Nout);
                }
                double t2 = soma_clock_seconds();
                td[run] = (t1 - t0) * 1e9 / (double)(reps * R);
                ts[run] = (t2 - t1) * 1e9 / (double)(reps * R);
            }
            qsort(td, (size_t)runs, sizeof *td, cmp);
            qsort(ts, (size_t)runs, sizeof *ts, cmp);
            double md = td[runs / 2], ms = ts[runs / 2];
            printf("%6zu %8.2f %12.1f %12.1f %7.2fx\n", Nout, dens[di], md, ms, md / ms);
        }
        free(w), free(wT), free(x), free(out), free(b), free(idx), free(cnt);
    }
    return 0;
}
