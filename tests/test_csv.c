/* test_csv.c — the CSV window loader (src/data/csv.c): values, labels and
 * shape of train.csv/test.csv, CRLF and blank trailing lines, limits, long
 * lines, the sequence encoding of the windows (padding and truncation), a
 * small net learning a separable CSV set, and every kind of broken file. */
#define _POSIX_C_SOURCE 200809L
#include "soma.h"
#include "testlib.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define C 3
#define T 5
static const char *const chan[C] = {"acc_x", "acc_y", "acc_z"};
static char tmp[512];

static const char *tpath(const char *name) {
    static char buf[8][700];
    static int k = 0;
    k = (k + 1) & 7;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp, name);
    return buf[k];
}

/* A growing text buffer. */
typedef struct sbuf {
    char *s;
    size_t n, cap;
} sbuf;

static void put(sbuf *b, const char *s) {
    size_t l = strlen(s);
    if (b->n + l + 1 > b->cap) {
        b->cap = (b->n + l + 1) * 2;
        b->s = realloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, l + 1);
    b->n += l;
}

/* Value of window i, step t, channel c in the reference files. */
static double val(size_t i, size_t t, size_t c) { return (double)i * 100.0 + (double)t * 10.0 + (double)c + 0.25; }

static void header(sbuf *b, size_t steps, const char *eol) {
    char cell[64];
    put(b, "label");
    for (size_t t = 0; t < steps; t++)
        for (size_t c = 0; c < C; c++) {
            snprintf(cell, sizeof cell, ",%s@%zu", chan[c], t);
            put(b, cell);
        }
    put(b, eol);
}

/* A window line: label, then steps*C values val(i,t,c); column `bad` (1-based,
 * label = 1) is replaced by `token` when token is non-NULL; `nvals` values
 * are written (the right count is steps*C). */
static void row(sbuf *b, const char *label, size_t i, size_t steps, size_t nvals, size_t bad, const char *token,
                const char *eol) {
    char cell[64];
    put(b, bad == 1 && token ? token : label);
    for (size_t v = 0; v < nvals; v++) {
        size_t t = (v / C) % steps, c = v % C;
        if (bad == v + 2 && token) snprintf(cell, sizeof cell, ",%s", token);
        else snprintf(cell, sizeof cell, ",%.17g", val(i, t, c));
        put(b, cell);
    }
    put(b, eol);
}

static void write_sbuf(const char *path, sbuf *b) {
    CHECK(t_write_file(path, b->s ? b->s : "", b->n) == 0);
    free(b->s);
    memset(b, 0, sizeof *b);
}

static const char *train_labels[] = {"0", "2", "1", "2"};
static const char *test_labels[] = {"1", "3"};

/* The reference files: train.csv (LF, 4 windows), test.csv (CRLF, 2 windows
 * numbered 10, 11, then a blank CRLF line). */
static void write_good(void) {
    sbuf b = {0};
    header(&b, T, "\n");
    for (size_t i = 0; i < 4; i++) row(&b, train_labels[i], i, T, T * C, 0, NULL, "\n");
    write_sbuf(tpath("train.csv"), &b);
    header(&b, T, "\r\n");
    for (size_t i = 0; i < 2; i++) row(&b, test_labels[i], 10 + i, T, T * C, 0, NULL, "\r\n");
    put(&b, "\r\n");
    write_sbuf(tpath("test.csv"), &b);
}

static soma_data_opts csv_opts(int steps) {
    soma_data_opts o;
    soma_data_opts_default(&o);
    snprintf(o.dataset, sizeof o.dataset, "csv");
    snprintf(o.dir, sizeof o.dir, "%s", tmp);
    o.encoding = SOMA_ENCODING_SEQUENCE;
    o.steps = steps;
    return o;
}

/* Every value of window i of ds equals val(base + i, t, c). */
static int window_ok(const soma_dataset *ds, size_t i, size_t base) {
    for (size_t t = 0; t < T; t++)
        for (size_t c = 0; c < C; c++)
            if (ds->seq[(i * ds->steps + t) * ds->dim + c] != (float)val(base + i, t, c)) return 0;
    return 1;
}

static void test_load(void) {
    write_good();
    soma_data_opts o = csv_opts(T);
    soma_dataset tr, te;
    char err[512] = "";
    int st = soma_data_load(&o, &tr, &te, err, sizeof err);
    CHECK_MSG(st == 0, "status %d: %s", st, err);
    CHECK(tr.n == 4 && te.n == 2);
    CHECK(tr.dim == C && tr.cols == C && tr.rows == 1 && tr.steps == T);
    CHECK(te.dim == C && te.cols == C && te.rows == 1 && te.steps == T);
    CHECK(tr.x == NULL && te.x == NULL && tr.seq && te.seq);
    CHECK(tr.classes == 4 && te.classes == 4); /* the test set's label 3 widens both */
    CHECK(tr.y && tr.y[0] == 0 && tr.y[1] == 2 && tr.y[2] == 1 && tr.y[3] == 2);
    CHECK(te.y && te.y[0] == 1 && te.y[1] == 3);
    for (size_t i = 0; i < tr.n; i++) CHECK_MSG(tr.seq && window_ok(&tr, i, 0), "train window %zu", i);
    for (size_t i = 0; i < te.n; i++) CHECK_MSG(te.seq && window_ok(&te, i, 10), "test window %zu", i);
    if (tr.seq) CHECK_NEAR(tr.seq[(2 * T + 3) * C + 1], 231.25, 0); /* sample 2, step 3, acc_y */
    soma_data_free(&tr);
    soma_data_free(&te);

    /* One split alone, and the loader's own classes (no unification). */
    st = soma_data_load(&o, &tr, NULL, err, sizeof err);
    CHECK_MSG(st == 0 && tr.n == 4 && tr.classes == 3, "status %d: %s", st, err);
    soma_data_free(&tr);
    st = soma_data_load(&o, NULL, &te, err, sizeof err);
    CHECK_MSG(st == 0 && te.n == 2 && te.classes == 4 && te.seq && window_ok(&te, 1, 10), "status %d: %s", st, err);
    soma_data_free(&te);

    /* Limits keep the first N windows. */
    o.limit_train = 3;
    o.limit_test = 1;
    st = soma_data_load(&o, &tr, &te, err, sizeof err);
    CHECK_MSG(st == 0 && tr.n == 3 && te.n == 1, "status %d: %s", st, err);
    CHECK(tr.y && tr.y[2] == 1 && tr.seq && window_ok(&tr, 2, 0));
    CHECK(te.y && te.y[0] == 1 && te.seq && window_ok(&te, 0, 10));
    soma_data_free(&tr);
    soma_data_free(&te);

    /* The sequence encoding is required by the dispatcher. */
    o = csv_opts(T);
    o.encoding = SOMA_ENCODING_RATE;
    CHECK(soma_data_load(&o, &tr, &te, err, sizeof err) == SOMA_STATUS_INVALID);
}

/* A window much longer than any fixed line buffer. */
static void test_long_lines(void) {
    const size_t steps = 3000;
    sbuf b = {0};
    header(&b, steps, "\n");
    row(&b, "7", 5, steps, steps * C, 0, NULL, "\n");
    write_sbuf(tpath("train.csv"), &b);
    header(&b, steps, "\n");
    row(&b, "1", 6, steps, steps * C, 0, NULL, "\n");
    write_sbuf(tpath("test.csv"), &b);
    soma_data_opts o = csv_opts(T);
    soma_dataset tr, te;
    char err[512] = "";
    int st = soma_data_load(&o, &tr, &te, err, sizeof err);
    CHECK_MSG(st == 0, "status %d: %s", st, err);
    CHECK(tr.n == 1 && tr.steps == steps && tr.dim == C && tr.classes == 8 && tr.y && tr.y[0] == 7);
    if (tr.seq) {
        CHECK(tr.seq[(steps - 1) * C + 2] == (float)val(5, steps - 1, 2));
        CHECK(te.seq[(1234) * C + 0] == (float)val(6, 1234, 0));
    }
    soma_data_free(&tr);
    soma_data_free(&te);
}

/* soma_encode feeds window b at step t as row [t][b]; zero past the window,
 * cut where data.steps is shorter. */
static void test_encode(void) {
    write_good();
    const int steps_list[] = {T, 7, 3};
    for (int k = 0; k < 3; k++) {
        int S = steps_list[k];
        soma_data_opts o = csv_opts(S);
        soma_dataset tr;
        char err[512] = "";
        int st = soma_data_load(&o, &tr, NULL, err, sizeof err);
        CHECK_MSG(st == 0, "status %d: %s", st, err);
        if (st) continue;
        CHECK(tr.steps == T); /* the file's steps, whatever data.steps says */
        const size_t idx[3] = {2, 0, 3}, B = 3;
        CHECK(soma_encode_size(&o, &tr, B) == (size_t)S * B * C);
        size_t n = soma_encode_size(&o, &tr, B);
        float *out = malloc((n + 1) * sizeof *out);
        out[n] = 12345.0f; /* guard */
        for (size_t q = 0; q < n; q++) out[q] = -777.0f;
        int tc = -1;
        CHECK(soma_encode(&o, &tr, idx, B, 1, 0, out, &tc) == 0);
        CHECK(tc == 0);
        int good = 1, zeros = 1;
        for (int t = 0; t < S; t++)
            for (size_t b = 0; b < B; b++)
                for (size_t c = 0; c < C; c++) {
                    float v = out[((size_t)t * B + b) * C + c];
                    if (t < T) good &= v == (float)val(idx[b], (size_t)t, c);
                    else zeros &= v == 0.0f;
                }
        CHECK_MSG(good, "data.steps %d: encoded rows differ from the windows", S);
        CHECK_MSG(zeros, "data.steps %d: steps past the window are not zero", S);
        CHECK(out[n] == 12345.0f);
        free(out);
        soma_data_free(&tr);
    }
}

/* Windows whose label is the sign of acc_y; the other channels are noise. */
static void write_separable(const char *path, size_t n, uint64_t seed) {
    soma_rng r;
    soma_rng_init(&r, seed, 3);
    sbuf b = {0};
    header(&b, T, "\n");
    char cell[64];
    for (size_t i = 0; i < n; i++) {
        int label = (int)(soma_rng_u32(&r) & 1);
        snprintf(cell, sizeof cell, "%d", label);
        put(&b, cell);
        for (size_t t = 0; t < T; t++)
            for (size_t c = 0; c < C; c++) {
                float noise = soma_rng_uniform(&r) - 0.5f;
                float v = c == 1 ? (label ? 2.0f : -2.0f) + 0.5f * noise : noise;
                snprintf(cell, sizeof cell, ",%.6g", v);
                put(&b, cell);
            }
        put(&b, "\n");
    }
    write_sbuf(path, &b);
}

static void test_train(void) {
    write_separable(tpath("train.csv"), 96, 1);
    write_separable(tpath("test.csv"), 32, 2);
    soma_data_opts d = csv_opts(T);
    soma_dataset tr, te;
    char err[512] = "";
    int st = soma_data_load(&d, &tr, &te, err, sizeof err);
    CHECK_MSG(st == 0, "status %d: %s", st, err);
    if (st) return;
    CHECK(tr.classes == 2);
    soma_net *net = NULL;
    CHECK(soma_net_create(&net) == 0);
    size_t in, hid, out;
    CHECK(soma_net_add_pop(net, "in", "input", C, &in) == 0);
    CHECK(soma_net_add_pop(net, "hidden", "lif", 16, &hid) == 0);
    CHECK(soma_net_add_pop(net, "out", "lif", tr.classes, &out) == 0);
    CHECK(soma_net_connect_dense(net, in, hid, 1) == 0);
    CHECK(soma_net_connect_dense(net, hid, out, 1) == 0);
    CHECK(soma_net_init_weights(net, 7) == 0);
    soma_train_opts o;
    soma_train_opts_default(&o);
    o.epochs = 3;
    o.batch = 16;
    o.optimizer = SOMA_OPTIMIZER_ADAM;
    o.lr = 1e-2f;
    o.threads = 1;
    o.seed = 5;
    soma_trainer *trn = NULL;
    st = soma_train_create(&trn, net, &o, &d);
    CHECK_MSG(st == 0, "status %d: %s", st, soma_net_errmsg(net));
    double loss[3] = {0};
    for (int e = 0; trn && e < 3; e++) {
        soma_epoch_result res;
        st = soma_train_epoch(trn, &tr, e, NULL, NULL, &res);
        CHECK_MSG(st == 0, "epoch %d: status %d: %s", e, st, soma_train_errmsg(trn));
        loss[e] = res.loss;
    }
    CHECK_MSG(loss[2] < 0.9 * loss[0], "loss %g -> %g -> %g did not drop by 10%%", loss[0], loss[1], loss[2]);
    double acc = 0;
    CHECK(trn && soma_train_evaluate(trn, &te, 0, &acc, NULL) == 0);
    CHECK_MSG(acc >= 0.8, "test accuracy %g", acc);
    soma_train_free(trn);
    soma_net_free(net);
    soma_data_free(&tr);
    soma_data_free(&te);
}

/* --------------------------------------------------------------- errors */
/* Load tmp with the given train/test texts (NULL: remove that file); expect
 * status `want` and every non-NULL needle in the message. */
static void expect(int line, const char *train, const char *test, int want, const char *n1, const char *n2,
                   const char *n3) {
    unlink(tpath("train.csv"));
    unlink(tpath("test.csv"));
    if (train) t_write_file(tpath("train.csv"), train, strlen(train));
    if (test) t_write_file(tpath("test.csv"), test, strlen(test));
    soma_data_opts o = csv_opts(T);
    soma_dataset tr, te;
    memset(&tr, 0xab, sizeof tr);
    memset(&te, 0xab, sizeof te);
    char err[512] = "";
    int st = soma_data_load(&o, &tr, &te, err, sizeof err);
    CHECK_MSG(st == want, "line %d: status %d (%s), expected %d: %s", line, st, soma_status_name(st), want, err);
    const char *needles[3] = {n1, n2, n3};
    for (int k = 0; k < 3; k++)
        if (needles[k]) CHECK_MSG(strstr(err, needles[k]) != NULL, "line %d: '%s' not in: %s", line, needles[k], err);
    if (st != 0) {
        CHECK_MSG(tr.seq == NULL && tr.y == NULL && tr.n == 0 && te.seq == NULL && te.y == NULL && te.n == 0,
                  "line %d: data left after an error", line);
    } else {
        CHECK_MSG(tr.seq && tr.n && te.seq && te.n, "line %d: no data after a good load", line);
        soma_data_free(&tr);
        soma_data_free(&te);
    }
}

/* Good text: header + windows 0..n-1 (labels 0,1,0,...), one line each. */
static char *good_text(size_t n) {
    sbuf b = {0};
    header(&b, T, "\n");
    for (size_t i = 0; i < n; i++) row(&b, i & 1 ? "1" : "0", i, T, T * C, 0, NULL, "\n");
    return b.s;
}

/* Good header + windows, window `k` replaced by the given line pieces. */
static char *text_with(size_t n, size_t k, const char *label, size_t nvals, size_t bad, const char *token) {
    sbuf b = {0};
    header(&b, T, "\n");
    for (size_t i = 0; i < n; i++)
        if (i == k) row(&b, label, i, T, nvals, bad, token, "\n");
        else row(&b, "0", i, T, T * C, 0, NULL, "\n");
    return b.s;
}

static void test_errors(void) {
    char *good = good_text(3), *t;
    char msg[700];

    /* Missing files. */
    snprintf(msg, sizeof msg, "%s/train.csv: cannot open: ", tmp);
    expect(__LINE__, NULL, good, SOMA_STATUS_IO, msg, NULL, NULL);
    snprintf(msg, sizeof msg, "%s/test.csv: cannot open: ", tmp);
    expect(__LINE__, good, NULL, SOMA_STATUS_IO, msg, NULL, NULL);
    expect(__LINE__, good, good, SOMA_STATUS_OK, NULL, NULL, NULL); /* the baseline loads */

    /* Headers. */
    const char *rest = "\n0,1,2,3,4,5,6,7,8,9,10,11,12,13,14\n";
    sbuf b = {0};
    put(&b, "label,acc_x@0,acc_y@0,acc_z@0,acc_x@1,acc_y@1,acc_x@2,acc_z@1,acc_y@2,acc_z@2,acc_x@3,acc_y@3,acc_z@3,"
            "acc_x@4,acc_y@4,acc_z@4");
    put(&b, rest);
    expect(__LINE__, b.s, good, SOMA_STATUS_FORMAT, "train.csv:1: column 7 'acc_x@2'",
           "expected '<channel>@<t>' in time-major order, here 'acc_z@1'", NULL);
    free(b.s), memset(&b, 0, sizeof b);
    put(&b, "lbl,acc_x@0,acc_y@0,acc_z@0");
    put(&b, rest);
    expect(__LINE__, b.s, good, SOMA_STATUS_FORMAT, "train.csv:1: column 1 'lbl'", "expected 'label'", NULL);
    free(b.s), memset(&b, 0, sizeof b);
    put(&b, "label,acc_x@0,acc_y@0,acc_z@0,acc_x@1,acc_y@1\n0,1,2,3,4,5\n");
    expect(__LINE__, b.s, good, SOMA_STATUS_FORMAT, "train.csv:1: column 7: missing, expected 'acc_z@1'", NULL,
           NULL);
    free(b.s), memset(&b, 0, sizeof b);
    put(&b, "label,acc_x@0,acc_y@0,acc_x@0\n0,1,2,3\n");
    expect(__LINE__, b.s, good, SOMA_STATUS_FORMAT, "train.csv:1: column 4 'acc_x@0'", "end of the header", NULL);
    free(b.s), memset(&b, 0, sizeof b);
    put(&b, "label,acc_x@0,acc_y@0,acc_z@0,acc_x@1,acc_y@one,acc_z@1\n0,1,2,3,4,5,6\n");
    expect(__LINE__, b.s, good, SOMA_STATUS_FORMAT, "train.csv:1: column 6 'acc_y@one'", "here 'acc_y@1'", NULL);
    free(b.s), memset(&b, 0, sizeof b);
    put(&b, "label,acc_x@0,acc_y@0,acc_x@01,acc_y@1\n0,1,2,3,4\n");
    expect(__LINE__, b.s, good, SOMA_STATUS_FORMAT, "train.csv:1: column 4 'acc_x@01'", "here 'acc_x@1'", NULL);
    free(b.s), memset(&b, 0, sizeof b);
    put(&b, "label,acc_x@0,acc_y@0,acc_z@x\n0,1,2,3\n");
    expect(__LINE__, b.s, good, SOMA_STATUS_FORMAT,
           "train.csv:1: column 4 'acc_z@x': expected '<channel>@<t>' in time-major order", NULL, NULL);
    free(b.s), memset(&b, 0, sizeof b);
    put(&b, "label,acc_x@0,acc_y@1\n0,1,2\n");
    expect(__LINE__, b.s, good, SOMA_STATUS_FORMAT, "train.csv:1: column 3 'acc_y@1'", "here 'acc_y@0'", NULL);
    free(b.s), memset(&b, 0, sizeof b);
    put(&b, "label,x,y\n0,1,2\n");
    expect(__LINE__, b.s, good, SOMA_STATUS_FORMAT, "train.csv:1: column 2 'x'", "<channel>@<t>", NULL);
    free(b.s), memset(&b, 0, sizeof b);
    put(&b, "label\n0\n");
    expect(__LINE__, b.s, good, SOMA_STATUS_FORMAT, "train.csv:1: no value columns", NULL, NULL);
    free(b.s), memset(&b, 0, sizeof b);
    expect(__LINE__, "", good, SOMA_STATUS_FORMAT, "train.csv: empty file", NULL, NULL);
    /* A valid header of other channels or steps in test.csv. */
    header(&b, T + 1, "\n");
    row(&b, "0", 0, T + 1, (T + 1) * C, 0, NULL, "\n");
    expect(__LINE__, good, b.s, SOMA_STATUS_FORMAT, "test.csv:1: header has 6 steps x 3 channels", "train.csv",
           NULL);
    free(b.s), memset(&b, 0, sizeof b);
    put(&b, good);
    memcpy(strstr(b.s, "acc_y"), "gyr_y", 5); /* only acc_y@0 renamed: a bad header */
    expect(__LINE__, good, b.s, SOMA_STATUS_FORMAT, "test.csv:1: column", NULL, NULL);
    for (char *p = b.s; (p = strstr(p, "acc_y")) != NULL;) memcpy(p, "gyr_y", 5);
    expect(__LINE__, good, b.s, SOMA_STATUS_FORMAT, "test.csv:1: channel 2 is 'gyr_y' but 'acc_y'", NULL, NULL);
    free(b.s), memset(&b, 0, sizeof b);

    /* Rows: wrong counts (sample 1 = line 3). */
    t = text_with(3, 1, "1", T * C - 5, 0, NULL);
    expect(__LINE__, t, good, SOMA_STATUS_FORMAT, "train.csv:3: sample 1: 11 values",
           "(expected 16: label + 5 steps x 3 channels)", NULL);
    free(t);
    t = text_with(3, 2, "1", T * C + 1, 0, NULL);
    expect(__LINE__, good, t, SOMA_STATUS_FORMAT, "test.csv:4: sample 2: 17 values (expected 16", NULL, NULL);
    free(t);
    /* Values. */
    t = text_with(3, 2, "1", T * C, 5, "abc");
    expect(__LINE__, t, good, SOMA_STATUS_FORMAT, "train.csv:4: sample 2: column 5: 'abc' is not a number", NULL,
           NULL);
    free(t);
    t = text_with(3, 0, "1", T * C, 16, "1.5x");
    expect(__LINE__, t, good, SOMA_STATUS_FORMAT, "train.csv:2: sample 0: column 16: '1.5x' is not a number", NULL,
           NULL);
    free(t);
    t = text_with(3, 1, "1", T * C, 3, "");
    expect(__LINE__, good, t, SOMA_STATUS_FORMAT, "test.csv:3: sample 1: column 3: empty value", NULL, NULL);
    free(t);
    t = text_with(3, 1, "1", T * C, 2, "NaN");
    expect(__LINE__, t, good, SOMA_STATUS_FORMAT, "train.csv:3: sample 1: column 2: 'NaN' is not a number", NULL,
           NULL);
    free(t);
    t = text_with(3, 1, "1", T * C, 9, "-inf");
    expect(__LINE__, t, good, SOMA_STATUS_FORMAT, "train.csv:3: sample 1: column 9: '-inf' is not finite", NULL,
           NULL);
    free(t);
    t = text_with(3, 1, "1", T * C, 9, "1e300");
    expect(__LINE__, t, good, SOMA_STATUS_FORMAT, "train.csv:3: sample 1: column 9: '1e300' is not finite", NULL,
           NULL);
    free(t);
    t = text_with(3, 1, "1", T * C, 9, " -2.5e-1 "); /* blanks around a number are fine */
    expect(__LINE__, t, good, SOMA_STATUS_OK, NULL, NULL, NULL);
    free(t);
    /* Labels. */
    t = text_with(3, 2, "256", T * C, 0, NULL);
    expect(__LINE__, t, good, SOMA_STATUS_FORMAT, "train.csv:4: sample 2: column 1: label '256' out of range",
           "0..255", NULL);
    free(t);
    t = text_with(3, 0, "-1", T * C, 0, NULL);
    expect(__LINE__, good, t, SOMA_STATUS_FORMAT, "test.csv:2: sample 0: column 1: label '-1' out of range", NULL,
           NULL);
    free(t);
    t = text_with(3, 1, "walk", T * C, 0, NULL);
    expect(__LINE__, t, good, SOMA_STATUS_FORMAT, "train.csv:3: sample 1: column 1: label 'walk' is not an integer",
           NULL, NULL);
    free(t);
    t = text_with(3, 1, "1.5", T * C, 0, NULL);
    expect(__LINE__, t, good, SOMA_STATUS_FORMAT, "train.csv:3: sample 1: column 1: label '1.5' is not an integer",
           NULL, NULL);
    free(t);
    t = text_with(3, 1, "255", T * C, 0, NULL);
    expect(__LINE__, t, good, SOMA_STATUS_OK, NULL, NULL, NULL);
    free(t);

    /* No windows; a blank line inside the data; blank lines at the end. */
    header(&b, T, "\n");
    expect(__LINE__, b.s, good, SOMA_STATUS_FORMAT, "train.csv: no samples", NULL, NULL);
    put(&b, "\r\n\n");
    expect(__LINE__, good, b.s, SOMA_STATUS_FORMAT, "test.csv: no samples", NULL, NULL);
    free(b.s), memset(&b, 0, sizeof b);
    {
        /* line 3 blank, windows 1 and 2 on lines 4 and 5 */
        size_t l2 = (size_t)(strchr(strchr(good, '\n') + 1, '\n') - good) + 1;
        b.s = malloc(strlen(good) + 2);
        memcpy(b.s, good, l2);
        b.s[l2] = '\n';
        strcpy(b.s + l2 + 1, good + l2);
        b.n = strlen(b.s);
        expect(__LINE__, b.s, good, SOMA_STATUS_FORMAT, "train.csv:3: sample 1: empty line", NULL, NULL);
        free(b.s), memset(&b, 0, sizeof b);
    }
    put(&b, good);
    put(&b, "\n\r\n\n");
    expect(__LINE__, b.s, b.s, SOMA_STATUS_OK, NULL, NULL, NULL);
    free(b.s), memset(&b, 0, sizeof b);
    /* A missing final newline is fine too. */
    put(&b, good);
    b.s[--b.n] = '\0';
    expect(__LINE__, b.s, good, SOMA_STATUS_OK, NULL, NULL, NULL);
    free(b.s);
    free(good);
}

int main(void) {
    const char *d = t_tmpdir("csv");
    if (!d) {
        fprintf(stderr, "cannot make a scratch directory\n");
        return 1;
    }
    snprintf(tmp, sizeof tmp, "%s", d);
    test_load();
    test_long_lines();
    test_encode();
    test_train();
    test_errors();
    return t_report("test_csv");
}
