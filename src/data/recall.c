/* recall.c — "recall", a synthetic delayed-recall task that tests memory over
 * hundreds of steps (for the ELM, CfC and LTC examples). Generated, not read:
 * it needs no files and is the same on every machine.
 *
 * Each sample has data.steps steps (T) of 9 channels:
 *   channels 0..7  a cue: during steps 0..3 the channel of the sample's class
 *                  (8 classes) is 1 and the others 0; from step 4 on, every
 *                  one of the 8 channels is 1 with probability 0.05 per step
 *                  (distractors on the same channels)
 *   channel 8      a marker, 1 during the cue (steps 0..3), 0 after it.
 * The label is the class of the cue, due at the last step (use loss: ce_last,
 * readout: last): the answer lies T - 4 steps back. Counting spikes per
 * channel does not solve it (after 200 steps every channel has about 10
 * distractors against the cue's 4), so the network has to store what it saw
 * while the marker was on.
 *
 * Samples: data.limit_train (default 10000) and data.limit_test (default
 * 2000); each split is drawn from its own counter-based stream keyed by the
 * sample index, so a sample does not depend on how many are drawn. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "data/seq.h"
#include "core/err.h"

enum { CLASSES = 8, CUE_STEPS = 4, DIM = CLASSES + 1 };
#define DISTRACTOR_P 0.05f

static int build(soma_dataset *ds, size_t n, size_t T, uint64_t split, char *err, size_t errlen) {
    memset(ds, 0, sizeof *ds);
    ds->seq = calloc(n * T * DIM, sizeof *ds->seq);
    ds->y = malloc(n);
    if (!ds->seq || !ds->y) {
        free(ds->seq), free(ds->y);
        memset(ds, 0, sizeof *ds);
        return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "recall: out of memory for %zu samples of %zu steps", n, T);
    }
    for (size_t i = 0; i < n; i++) {
        soma_rng rng;
        soma_rng_init(&rng, 0x5EC411ull + split, i);
        unsigned c = soma_rng_u32(&rng) % CLASSES;
        ds->y[i] = (uint8_t)c;
        float *x = ds->seq + i * T * DIM;
        for (size_t t = 0; t < T; t++) {
            float *row = x + t * DIM;
            if (t < CUE_STEPS) {
                row[c] = 1.0f;
                row[CLASSES] = 1.0f;
            } else
                for (size_t k = 0; k < CLASSES; k++) row[k] = soma_rng_uniform(&rng) < DISTRACTOR_P ? 1.0f : 0.0f;
        }
    }
    ds->n = n;
    ds->dim = DIM;
    ds->rows = 1;
    ds->cols = DIM;
    ds->steps = T;
    ds->classes = CLASSES;
    return SOMA_STATUS_OK;
}

int soma__load_recall(const soma_data_opts *opts, soma_dataset *train, soma_dataset *test, char *err, size_t errlen) {
    if (opts->steps < CUE_STEPS + 1) {
        return soma__errf(err, errlen, SOMA_STATUS_INVALID,
                          "recall: data.steps = %d; expected at least %d (a %d-step cue, then the delay)", opts->steps,
                          CUE_STEPS + 1, CUE_STEPS);
    }
    size_t T = (size_t)opts->steps;
    int st = SOMA_STATUS_OK;
    if (train) st = build(train, opts->limit_train ? opts->limit_train : 10000, T, 0, err, errlen);
    if (!st && test) st = build(test, opts->limit_test ? opts->limit_test : 2000, T, 1, err, errlen);
    return st;
}
