/* test_recall.c — the generated delayed-recall task (src/data/recall.c):
 * layout, cue and marker, distractor rate, determinism, independence of the
 * sample count, and the error for too few steps. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

int main(void) {
    soma_data_opts o;
    soma_data_opts_default(&o);
    snprintf(o.dataset, sizeof o.dataset, "recall");
    o.encoding = SOMA_ENCODING_SEQUENCE;
    o.steps = 120;
    o.limit_train = 400;
    o.limit_test = 50;
    soma_dataset tr, te;
    char err[512];
    CHECK_MSG(soma_data_load(&o, &tr, &te, err, sizeof err) == 0, "%s", err);
    CHECK(tr.n == 400 && te.n == 50 && tr.dim == 9 && tr.steps == 120 && tr.classes == 8 && te.classes == 8);
    size_t per_class[8] = {0};
    double distract = 0.0, cells = 0.0;
    int cue_ok = 1;
    for (size_t i = 0; i < tr.n; i++) {
        unsigned c = tr.y[i];
        CHECK(c < 8);
        per_class[c < 8 ? c : 0]++;
        const float *x = tr.seq + i * 120 * 9;
        for (size_t t = 0; t < 120; t++)
            for (size_t k = 0; k < 9; k++) {
                float v = x[t * 9 + k];
                if (t < 4) cue_ok &= v == ((k == c || k == 8) ? 1.0f : 0.0f);
                else if (k == 8) cue_ok &= v == 0.0f;
                else {
                    cue_ok &= v == 0.0f || v == 1.0f;
                    distract += v;
                    cells += 1.0;
                }
            }
    }
    CHECK(cue_ok);
    /* 0.05 per channel and step: 400*116*8 cells, standard error ~0.0006. */
    CHECK_NEAR(distract / cells, 0.05, 0.004);
    for (int c = 0; c < 8; c++) CHECK_MSG(per_class[c] > 25 && per_class[c] < 80, "class %d: %zu samples", c, per_class[c]);
    /* Same options, same data; fewer samples, the same first ones; the test split differs. */
    soma_dataset tr2;
    o.limit_train = 100;
    CHECK(soma_data_load(&o, &tr2, NULL, err, sizeof err) == 0);
    CHECK(tr2.n == 100 && memcmp(tr2.seq, tr.seq, 100 * 120 * 9 * sizeof(float)) == 0 && memcmp(tr2.y, tr.y, 100) == 0);
    CHECK(memcmp(te.seq, tr.seq, 50 * 120 * 9 * sizeof(float)) != 0);
    soma_data_free(&tr2);
    /* Too few steps for the cue and a delay. */
    o.steps = 4;
    CHECK(soma_data_load(&o, &tr2, NULL, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK_MSG(strstr(err, "recall: data.steps = 4; expected at least 5") != NULL, "%s", err);
    soma_data_free(&tr);
    soma_data_free(&te);
    return t_report("test_recall");
}
