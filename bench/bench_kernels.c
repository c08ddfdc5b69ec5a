/* bench_kernels.c — measures the dense-projection kernels on spike inputs,
 * BLAS against the spike-driven gather/scatter, over spike densities and
 * output widths, to set the trainer's crossover (GATHER_MAX_DENSITY).
 * Usage: bench_kernels [Nin] [rows]; prints ns per row for each kernel. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <cblas.h>
#include "proj/dense.h"
#include "net/net.h"

int main(int argc, char **argv) {
    size_t Nin = argc > 1 ? (size_t)atol(argv[1]) : 1000, R = argc > 2 ? (size_t)atol(argv[2]) : 200;
    size_t outs[] = {10, 100, 1000};
    double dens[] = {0.01, 0.05, 0.1, 0.2, 0.3, 0.5};
    openblas_set_num_threads(1);
    printf("Nin %zu, rows %zu, single thread; ns per row\n", Nin, R);
    printf("%6s %7s %10s %10s %10s %10s\n", "Nout", "density", "fwd_blas", "fwd_spike", "dw_blas", "dw_spike");
    for (size_t io = 0; io < 3; io++) {
        size_t Nout = outs[io];
        float *w = soma__alloc(Nin * Nout * 4), *wT = soma__alloc(Nin * soma__ldw(Nout) * 4), *s = soma__alloc(R * Nin * 4);
        float *out = soma__alloc(R * Nout * 4), *dw = soma__alloc(Nin * soma__ldw(Nout) * 4), *b = soma__alloc(Nout * 4);
        uint32_t *idx = soma__alloc(R * Nin * 4), *cnt = soma__alloc(R * 4);
        for (size_t i = 0; i < Nin * Nout; i++) w[i] = (float)(i % 7) * 0.1f;
        soma__transpose_pad(wT, w, Nout, Nin, soma__ldw(Nout));
        for (size_t di = 0; di < 6; di++) {
            srand(1);
            for (size_t i = 0; i < R * Nin; i++) s[i] = (double)rand() / RAND_MAX < dens[di] ? 1.0f : 0.0f;
            for (size_t r = 0; r < R; r++) cnt[r] = (uint32_t)soma__spike_index(s + r * Nin, Nin, idx + r * Nin);
            double t[4] = {0};
            int reps = 20;
            for (int k = 0; k < reps; k++) {
                double t0 = soma_clock_seconds();
                soma__dense_forward_blas(out, s, w, b, R, Nin, Nout, 0);
                double t1 = soma_clock_seconds();
                soma__dense_forward_spikes(out, idx, cnt, Nin, wT, b, R, Nout, 0);
                double t2 = soma_clock_seconds();
                soma__dense_dweightT_blas(dw, s, out, R, Nin, Nout);
                double t3 = soma_clock_seconds();
                soma__dense_dweight_spikes(dw, idx, cnt, Nin, out, R, Nout);
                double t4 = soma_clock_seconds();
                if (k) t[0] += t1 - t0, t[1] += t2 - t1, t[2] += t3 - t2, t[3] += t4 - t3;
            }
            printf("%6zu %7.2f %10.0f %10.0f %10.0f %10.0f\n", Nout, dens[di], 1e9 * t[0] / (reps - 1) / R,
                   1e9 * t[1] / (reps - 1) / R, 1e9 * t[2] / (reps - 1) / R, 1e9 * t[3] / (reps - 1) / R);
        }
        free(w), free(wT), free(s), free(out), free(dw), free(b), free(idx), free(cnt);
    }
    return 0;
}
