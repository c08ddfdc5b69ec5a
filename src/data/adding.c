/* adding.c — the SHD-Adding task (as used for the ELM neuron): two SHD
 * samples shown one after the other; the label is (y1 mod 10) + (y2 mod 10),
 * 19 classes. SHD's 20 classes are the digits 0-9 spoken in English and in
 * German, so the task asks for the sum of two spoken digits whatever the
 * language, and the network must remember the first digit across the second.
 *
 * Pair i of a split is (sample i, sample pi(i)) with pi a permutation drawn
 * from a fixed counter-based stream per split: every run sees the same pairs,
 * like any fixed benchmark set. Each half is binned into steps/2 steps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/seq.h"
#include "core/err.h"

int soma__adding_build(const soma_dataset *src, uint64_t key, soma_dataset *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (!src || !src->seq || src->n < 2 || src->steps == 0) {
        return soma__errf(err, errlen, SOMA_STATUS_INVALID,
                          "SHD-Adding needs a sequence data set of at least 2 samples");
    }
    size_t n = src->n, S = src->steps, D = src->dim;
    size_t *perm = malloc(n * sizeof *perm);
    out->seq = malloc(n * 2 * S * D * sizeof *out->seq);
    out->y = malloc(n);
    if (!perm || !out->seq || !out->y) {
        free(perm), free(out->seq), free(out->y);
        memset(out, 0, sizeof *out);
        return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "SHD-Adding: out of memory for %zu pairs", n);
    }
    soma_shuffle(perm, n, key, 0);
    for (size_t i = 0; i < n; i++) {
        size_t a = i, b = perm[i];
        float *o = out->seq + i * 2 * S * D;
        memcpy(o, src->seq + a * S * D, S * D * sizeof *o);
        memcpy(o + S * D, src->seq + b * S * D, S * D * sizeof *o);
        out->y[i] = (uint8_t)(src->y[a] % 10 + src->y[b] % 10);
    }
    free(perm);
    out->n = n;
    out->dim = D;
    out->rows = src->rows;
    out->cols = src->cols;
    out->steps = 2 * S;
    out->classes = 19;
    return SOMA_STATUS_OK;
}

int soma__load_shd_adding(const soma_data_opts *opts, soma_dataset *train, soma_dataset *test, char *err,
                          size_t errlen) {
    if (opts->steps < 2 || opts->steps % 2) {
        return soma__errf(err, errlen, SOMA_STATUS_INVALID,
                          "shd-adding: data.steps = %d; expected an even number >= 2 (half per digit)", opts->steps);
    }
    soma_data_opts half = *opts;
    half.steps = opts->steps / 2;
    soma_dataset src[2] = {{0}, {0}};
    int st = soma__load_shd(&half, train ? &src[0] : NULL, test ? &src[1] : NULL, err, errlen);
    soma_dataset *dst[2] = {train, test};
    for (int k = 0; k < 2 && !st; k++)
        if (dst[k]) st = soma__adding_build(&src[k], 0x5AD0ull + (uint64_t)k, dst[k], err, errlen);
    soma_data_free(&src[0]);
    soma_data_free(&src[1]);
    return st;
}
