/* test_nmnist.c — the N-MNIST loader on a tiny tree written in the exact
 * 5-byte event format: order, labels, bin counts (computed by hand), bin_ms,
 * limits, encoding, one training epoch, and every error case. */
#define _POSIX_C_SOURCE 200809L
#include "testlib.h"
#include "soma.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIM 2312
#define CH(p, x, y) ((size_t)(p) * 34 * 34 + (size_t)(y) * 34 + (size_t)(x))

typedef struct ev {
    unsigned x, y, p;
    uint32_t ts;
} ev;

/* Encode events the way N-MNIST stores them. */
static size_t encode_events(unsigned char *buf, const ev *e, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char *b = buf + 5 * i;
        b[0] = (unsigned char)e[i].x;
        b[1] = (unsigned char)e[i].y;
        b[2] = (unsigned char)((e[i].p << 7) | ((e[i].ts >> 16) & 0x7f));
        b[3] = (unsigned char)((e[i].ts >> 8) & 0xff);
        b[4] = (unsigned char)(e[i].ts & 0xff);
    }
    return 5 * n;
}

static char path_buf[2048];
static const char *P(const char *root, const char *rel) {
    snprintf(path_buf, sizeof path_buf, "%s/%s", root, rel);
    return path_buf;
}

static void mk(const char *root, const char *rel) {
    CHECK_MSG(mkdir(P(root, rel), 0755) == 0, "mkdir %s", rel);
}

static void put(const char *root, const char *rel, const ev *e, size_t n) {
    unsigned char buf[5 * 16];
    size_t len = encode_events(buf, e, n);
    CHECK_MSG(t_write_file(P(root, rel), buf, len) == 0, "write %s", rel);
}

/* Sample a (Train/0): span mode, steps 4: maxts = 0x7fffff, w = 2^23/4.
 *   ts 0, 100 -> bin 0 (ch (0,1,2) = 69, count 2)
 *   ts 0x2abcde = 2800862 -> bin floor(2800862*4/2^23) = 1 (ch (0,0,33) = 1122)
 *   ts 0x400000 -> bin 2 (ch (1,5,0) = 1161)
 *   ts 0x7fffff -> bin 3 (ch (1,33,33) = 2311) */
static const ev EV_A[] = {{1, 2, 0, 0}, {33, 33, 1, 0x7fffff}, {1, 2, 0, 100}, {5, 0, 1, 0x400000}, {0, 33, 0, 0x2abcde}};
/* Sample Z (Train/3, sorts before b): ts 1000 alone -> bin 1000*4/1001 = 3, ch (1,10,20) = 1846. */
static const ev EV_Z[] = {{10, 20, 1, 1000}};
/* Sample b (Train/3): maxts = 65793 (0x010101); ts 0 -> 0, 30000 -> 1, 65793 -> 3. */
static const ev EV_B[] = {{2, 3, 0, 0}, {2, 3, 1, 30000}, {2, 3, 0, 0x010101}};
/* Test/1/c: maxts 5000; ts 1 -> 0 (ch 0), 5000 twice -> 3 (ch (1,7,8) = 1435, count 2). */
static const ev EV_C[] = {{7, 8, 1, 5000}, {0, 0, 0, 1}, {7, 8, 1, 5000}};
/* Sample m (Train/3, last): ts 0 alone -> bin 0, ch (0,9,9). */
static const ev EV_M[] = {{9, 9, 0, 0}};
/* Test/2/d: one event, ts 0 -> bin 0, ch (0,4,4). */
static const ev EV_D[] = {{4, 4, 0, 0}};

/* The good tree; with distractors that must be ignored. */
static void build_tree(const char *root) {
    mk(root, "Train");
    mk(root, "Test");
    mk(root, "Train/0");
    mk(root, "Train/3");
    mk(root, "Train/x");
    mk(root, "Train/10");
    mk(root, "Test/1");
    mk(root, "Test/2");
    /* written b, Z, m: neither creation order nor its reverse is the sorted Z, b, m */
    put(root, "Train/3/b.bin", EV_B, 3);
    put(root, "Train/3/Z.bin", EV_Z, 1);
    put(root, "Train/3/m.bin", EV_M, 1);
    put(root, "Train/0/a.bin", EV_A, 5);
    put(root, "Train/x/junk.bin", EV_A, 5);  /* not a digit folder */
    put(root, "Train/10/junk.bin", EV_A, 5); /* not a digit folder */
    put(root, "Train/3/notes.txt", EV_A, 5); /* not a .bin */
    mk(root, "Train/3/dir.bin");             /* not a file */
    put(root, "Test/1/c.bin", EV_C, 3);
    put(root, "Test/2/d.bin", EV_D, 1);
}

static void opts_for(soma_data_opts *o, const char *dir) {
    soma_data_opts_default(o);
    snprintf(o->dataset, sizeof o->dataset, "nmnist");
    snprintf(o->dir, sizeof o->dir, "%s", dir);
    o->encoding = SOMA_ENCODING_SEQUENCE;
    o->steps = 4;
}

static float at(const soma_dataset *ds, size_t i, size_t t, size_t c) {
    return ds->seq[(i * ds->steps + t) * ds->dim + c];
}

static double sum_sample(const soma_dataset *ds, size_t i) {
    double s = 0;
    for (size_t k = 0; k < ds->steps * ds->dim; k++) s += ds->seq[i * ds->steps * ds->dim + k];
    return s;
}

static void test_load(const char *root) {
    soma_data_opts o;
    opts_for(&o, root);
    soma_dataset tr, te;
    char err[512] = "";
    int st = soma_data_load(&o, &tr, &te, err, sizeof err);
    CHECK_MSG(st == 0, "load: %s", err);
    if (st) return;
    CHECK(tr.n == 4);
    CHECK(te.n == 2);
    CHECK(tr.dim == DIM && te.dim == DIM);
    CHECK(tr.steps == 4 && te.steps == 4);
    CHECK(tr.rows == 34 && tr.cols == 68);
    CHECK(tr.x == NULL && te.x == NULL);
    CHECK(tr.classes == 4 && te.classes == 4);
    /* order: 0/a, 3/Z, 3/b, 3/m */
    CHECK(tr.y[0] == 0 && tr.y[1] == 3 && tr.y[2] == 3 && tr.y[3] == 3);
    CHECK(at(&tr, 3, 0, CH(0, 9, 9)) == 1.0f);
    CHECK(sum_sample(&tr, 3) == 1.0);
    CHECK(te.y[0] == 1 && te.y[1] == 2);
    /* sample a */
    CHECK(at(&tr, 0, 0, CH(0, 1, 2)) == 2.0f);
    CHECK(at(&tr, 0, 1, CH(0, 0, 33)) == 1.0f);
    CHECK(at(&tr, 0, 2, CH(1, 5, 0)) == 1.0f);
    CHECK(at(&tr, 0, 3, CH(1, 33, 33)) == 1.0f);
    CHECK(CH(1, 33, 33) == 2311 && CH(0, 1, 2) == 69);
    CHECK(sum_sample(&tr, 0) == 5.0);
    /* sample Z (second: "Z" < "b" by strcmp) */
    CHECK(at(&tr, 1, 3, CH(1, 10, 20)) == 1.0f);
    CHECK(sum_sample(&tr, 1) == 1.0);
    /* sample b */
    CHECK(at(&tr, 2, 0, CH(0, 2, 3)) == 1.0f);
    CHECK(at(&tr, 2, 1, CH(1, 2, 3)) == 1.0f);
    CHECK(at(&tr, 2, 3, CH(0, 2, 3)) == 1.0f);
    CHECK(sum_sample(&tr, 2) == 3.0);
    /* test split */
    CHECK(at(&te, 0, 0, CH(0, 0, 0)) == 1.0f);
    CHECK(at(&te, 0, 3, CH(1, 7, 8)) == 2.0f);
    CHECK(sum_sample(&te, 0) == 3.0);
    CHECK(at(&te, 1, 0, CH(0, 4, 4)) == 1.0f);
    CHECK(sum_sample(&te, 1) == 1.0);

    /* soma_encode: [T][B][dim], sample idx[b] at row t*B + b */
    size_t idx[2] = {2, 0};
    CHECK(soma_encode_size(&o, &tr, 2) == 4 * 2 * DIM);
    float *x = calloc(4 * 2 * DIM, sizeof *x);
    int tc = -1;
    CHECK(soma_encode(&o, &tr, idx, 2, 1, 0, x, &tc) == 0);
    CHECK(tc == 0);
    int same = 1;
    for (size_t t = 0; t < 4; t++)
        for (size_t b = 0; b < 2; b++)
            for (size_t c = 0; c < DIM; c++)
                if (x[(t * 2 + b) * DIM + c] != at(&tr, idx[b], t, c)) same = 0;
    CHECK(same);
    CHECK(x[(3 * 2 + 1) * DIM + CH(1, 33, 33)] == 1.0f); /* sample a, step 3 */
    CHECK(x[(1 * 2 + 0) * DIM + CH(1, 2, 3)] == 1.0f);   /* sample b, step 1 */
    free(x);

    /* one epoch of a tiny net */
    soma_net *net = NULL;
    CHECK(soma_net_create(&net) == 0);
    size_t in, hid, out;
    CHECK(soma_net_add_pop(net, "in", "input", DIM, &in) == 0);
    CHECK(soma_net_add_pop(net, "hidden", "lif", 8, &hid) == 0);
    CHECK(soma_net_add_pop(net, "out", "lif", tr.classes, &out) == 0);
    CHECK(soma_net_connect_dense(net, in, hid, 1) == 0);
    CHECK(soma_net_connect_dense(net, hid, out, 1) == 0);
    soma_train_opts to;
    soma_train_opts_default(&to);
    to.batch = 2;
    to.threads = 1;
    soma_trainer *trn = NULL;
    st = soma_train_create(&trn, net, &to, &o);
    CHECK_MSG(st == 0, "train_create: %s", trn ? soma_train_errmsg(trn) : soma_strerror(st));
    if (!st) {
        soma_epoch_result res;
        memset(&res, 0, sizeof res);
        st = soma_train_epoch(trn, &tr, 0, NULL, NULL, &res);
        CHECK_MSG(st == 0, "epoch: %s (%s)", soma_strerror(st), soma_train_errmsg(trn));
        CHECK(res.batches >= 1);
        CHECK(isfinite(res.loss));
        double acc = -1;
        CHECK(soma_train_evaluate(trn, &te, 0, &acc, NULL) == 0);
        CHECK(acc >= 0 && acc <= 1);
        soma_train_free(trn);
    }
    soma_net_free(net);
    soma_data_free(&tr);
    soma_data_free(&te);
}

static void test_bin_ms(const char *root) {
    soma_data_opts o;
    opts_for(&o, root);
    soma_dataset tr;
    char err[512] = "";
    /* 1 ms bins: a keeps ts 0 and 100 (bin 0), the rest is past 4 ms; Z's ts 1000 -> bin 1 */
    o.bin_ms = 1.0f;
    int st = soma_data_load(&o, &tr, NULL, err, sizeof err);
    CHECK_MSG(st == 0, "bin_ms 1: %s", err);
    if (!st) {
        CHECK(tr.n == 4 && tr.steps == 4);
        CHECK(at(&tr, 0, 0, CH(0, 1, 2)) == 2.0f);
        CHECK(sum_sample(&tr, 0) == 2.0);
        CHECK(at(&tr, 1, 1, CH(1, 10, 20)) == 1.0f);
        CHECK(sum_sample(&tr, 1) == 1.0);
        CHECK(at(&tr, 2, 0, CH(0, 2, 3)) == 1.0f);
        CHECK(sum_sample(&tr, 2) == 1.0);
        soma_data_free(&tr);
    }
    /* 2000 ms bins: a's 0x7fffff us is bin 4 (dropped), 0x400000 bin 2, 0x2abcde bin 1 */
    o.bin_ms = 2000.0f;
    st = soma_data_load(&o, &tr, NULL, err, sizeof err);
    CHECK_MSG(st == 0, "bin_ms 2000: %s", err);
    if (!st) {
        CHECK(at(&tr, 0, 0, CH(0, 1, 2)) == 2.0f);
        CHECK(at(&tr, 0, 1, CH(0, 0, 33)) == 1.0f);
        CHECK(at(&tr, 0, 2, CH(1, 5, 0)) == 1.0f);
        CHECK(at(&tr, 0, 3, CH(1, 33, 33)) == 0.0f);
        CHECK(sum_sample(&tr, 0) == 4.0);
        soma_data_free(&tr);
    }
}

static void test_limits(const char *root) {
    soma_data_opts o;
    opts_for(&o, root);
    o.limit_train = 2;
    o.limit_test = 1;
    soma_dataset tr, te;
    char err[512] = "";
    int st = soma_data_load(&o, &tr, &te, err, sizeof err);
    CHECK_MSG(st == 0, "limits: %s", err);
    if (!st) {
        CHECK(tr.n == 2 && te.n == 1);
        CHECK(tr.y[0] == 0 && tr.y[1] == 3);
        CHECK(at(&tr, 1, 3, CH(1, 10, 20)) == 1.0f); /* the second kept is Z */
        CHECK(te.y[0] == 1);
        CHECK(tr.classes == 4 && te.classes == 4); /* 1 + max label of what was kept */
        soma_data_free(&tr);
        soma_data_free(&te);
    }
    /* only the test split */
    o.limit_train = o.limit_test = 0;
    st = soma_data_load(&o, NULL, &te, err, sizeof err);
    CHECK_MSG(st == 0, "test only: %s", err);
    if (!st) {
        CHECK(te.n == 2 && te.classes == 3);
        soma_data_free(&te);
    }
}

/* Load root (both splits) and expect status and every needle in the message. */
static void expect_fail(const char *root, int steps, int status, const char *n1, const char *n2, const char *n3) {
    soma_data_opts o;
    opts_for(&o, root);
    o.steps = steps;
    soma_dataset tr, te;
    char err[1024] = "";
    int st = soma_data_load(&o, &tr, &te, err, sizeof err);
    CHECK_MSG(st == status, "expected %s, got %s: %s", soma_status_name(status), soma_status_name(st), err);
    CHECK_MSG(!n1 || strstr(err, n1), "message lacks '%s': %s", n1, err);
    CHECK_MSG(!n2 || strstr(err, n2), "message lacks '%s': %s", n2, err);
    CHECK_MSG(!n3 || strstr(err, n3), "message lacks '%s': %s", n3, err);
    CHECK(tr.seq == NULL && tr.y == NULL && te.seq == NULL && te.y == NULL && tr.n == 0);
    if (!st) {
        soma_data_free(&tr);
        soma_data_free(&te);
    }
}

static void test_errors(const char *base) {
    char root[1024], want[1200];

    /* missing Train, missing Test */
    snprintf(root, sizeof root, "%s/no_train", base);
    CHECK(mkdir(root, 0755) == 0);
    mk(root, "Test");
    snprintf(want, sizeof want, "%s/Train: not found (expected N-MNIST's Train/<digit>/*.bin)", root);
    expect_fail(root, 4, SOMA_STATUS_IO, want, NULL, NULL);
    snprintf(root, sizeof root, "%s/no_test", base);
    CHECK(mkdir(root, 0755) == 0);
    build_tree(root);
    unlink(P(root, "Test/1/c.bin"));
    unlink(P(root, "Test/2/d.bin"));
    rmdir(P(root, "Test/1"));
    rmdir(P(root, "Test/2"));
    CHECK(rmdir(P(root, "Test")) == 0);
    snprintf(want, sizeof want, "%s/Test: not found", root);
    expect_fail(root, 4, SOMA_STATUS_IO, want, NULL, NULL);

    /* steps < 1 */
    snprintf(root, sizeof root, "%s/good", base);
    expect_fail(root, 0, SOMA_STATUS_INVALID, "steps", NULL, NULL);

    /* no samples */
    snprintf(root, sizeof root, "%s/empty", base);
    CHECK(mkdir(root, 0755) == 0);
    mk(root, "Train");
    mk(root, "Test");
    mk(root, "Train/5");
    put(root, "Train/5/readme.txt", EV_A, 1);
    expect_fail(root, 4, SOMA_STATUS_FORMAT, "Train", "no samples", NULL);

    /* a file that is not a whole number of events: Train/3/Z.bin is sample 1 */
    snprintf(root, sizeof root, "%s/short", base);
    CHECK(mkdir(root, 0755) == 0);
    build_tree(root);
    unsigned char junk[23] = {0};
    CHECK(t_write_file(P(root, "Train/3/Z.bin"), junk, sizeof junk) == 0);
    snprintf(want, sizeof want, "%s/Train/3/Z.bin: sample 1: 23 bytes is not a whole number of 5-byte events", root);
    expect_fail(root, 4, SOMA_STATUS_FORMAT, want, NULL, NULL);

    /* x >= 34 in event 1 of sample 2 (Train/3/b.bin) */
    snprintf(root, sizeof root, "%s/badx", base);
    CHECK(mkdir(root, 0755) == 0);
    build_tree(root);
    const ev bx[] = {{0, 0, 0, 0}, {40, 1, 1, 7}};
    put(root, "Train/3/b.bin", bx, 2);
    snprintf(want, sizeof want, "%s/Train/3/b.bin: sample 2: event 1 has x = 40 (expected < 34)", root);
    expect_fail(root, 4, SOMA_STATUS_FORMAT, want, NULL, NULL);

    /* y >= 34 in event 0 of test sample 1 (Test/2/d.bin) */
    snprintf(root, sizeof root, "%s/bady", base);
    CHECK(mkdir(root, 0755) == 0);
    build_tree(root);
    const ev by[] = {{3, 34, 0, 0}};
    put(root, "Test/2/d.bin", by, 1);
    snprintf(want, sizeof want, "%s/Test/2/d.bin: sample 1: event 0 has y = 34 (expected < 34)", root);
    expect_fail(root, 4, SOMA_STATUS_FORMAT, want, NULL, NULL);

    /* an unreadable file: a dangling link named like a sample (works as root too) */
    snprintf(root, sizeof root, "%s/dangling", base);
    CHECK(mkdir(root, 0755) == 0);
    build_tree(root);
    CHECK(symlink("does-not-exist.bin", P(root, "Train/0/b.bin")) == 0);
    snprintf(want, sizeof want, "%s/Train/0/b.bin: sample 1: cannot open", root);
    expect_fail(root, 4, SOMA_STATUS_IO, want, NULL, NULL);

    /* a file without read permission (only meaningful when not root) */
    snprintf(root, sizeof root, "%s/noperm", base);
    CHECK(mkdir(root, 0755) == 0);
    build_tree(root);
    CHECK(chmod(P(root, "Train/3/b.bin"), 0) == 0);
    if (access(P(root, "Train/3/b.bin"), R_OK) != 0) {
        snprintf(want, sizeof want, "%s/Train/3/b.bin: sample 2: cannot open", root);
        expect_fail(root, 4, SOMA_STATUS_IO, want, NULL, NULL);
    } else {
        fprintf(stderr, "note: running as root, the permission case is covered by the dangling link only\n");
    }

    /* too large: refused before allocating, with the estimate */
    snprintf(root, sizeof root, "%s/good", base);
    expect_fail(root, 1000000, SOMA_STATUS_NOMEM, "GiB", "Train", NULL);
}

/* Many files in one folder, written in a scrambled order: the load order must
 * be strcmp order whatever order the directory lists them in. Sample i's only
 * event is at x = its rank. */
static void test_order(const char *base) {
    static const char *sorted[] = {"0.bin", "10.bin", "9.bin", "A.bin", "Zz.bin", "_.bin",
                                   "a.bin", "a0.bin", "ab.bin", "b.bin", "q.bin", "z.bin"};
    const size_t n = sizeof sorted / sizeof *sorted;
    static const size_t write_order[] = {7, 2, 11, 0, 5, 9, 3, 10, 1, 8, 4, 6};
    char root[1024], rel[64];
    snprintf(root, sizeof root, "%s/order", base);
    CHECK(mkdir(root, 0755) == 0);
    mk(root, "Train");
    mk(root, "Test");
    mk(root, "Train/7");
    mk(root, "Test/0");
    for (size_t k = 0; k < n; k++) {
        size_t r = write_order[k];
        ev e = {(unsigned)r, 0, 0, 0};
        snprintf(rel, sizeof rel, "Train/7/%s", sorted[r]);
        put(root, rel, &e, 1);
    }
    put(root, "Test/0/t.bin", EV_D, 1);
    soma_data_opts o;
    opts_for(&o, root);
    soma_dataset tr;
    char err[512] = "";
    int st = soma_data_load(&o, &tr, NULL, err, sizeof err);
    CHECK_MSG(st == 0, "order: %s", err);
    if (st) return;
    CHECK(tr.n == n);
    int ok = tr.n == n;
    for (size_t i = 0; ok && i < n; i++)
        if (at(&tr, i, 0, CH(0, i, 0)) != 1.0f || tr.y[i] != 7) ok = 0;
    CHECK_MSG(ok, "samples are not in strcmp order of their file names");
    CHECK(tr.classes == 8);
    soma_data_free(&tr);
}

/* examples/nmnist-conv.yaml (shape [2, 34, 34], two convolutions) trains on
 * the small tree: the loader's channel order is the convolution's [C][H][W]. */
static void test_conv_example(const char *root) {
    const char *ex = getenv("SOMA_EXAMPLES");
    if (!ex) return;
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/nmnist-conv.yaml", ex);
    soma_net *net = NULL;
    soma_data_opts d;
    soma_train_opts t;
    CHECK_MSG(soma_experiment_load(path, &net, &d, &t, err, sizeof err) == 0, "%s", err);
    if (!net) return;
    snprintf(d.dir, sizeof d.dir, "%s", root);
    d.steps = 4;
    t.batch = 2;
    t.threads = 1;
    soma_dataset tr, te;
    CHECK_MSG(soma_data_load(&d, &tr, &te, err, sizeof err) == 0, "%s", err);
    CHECK(tr.dim == 2 * 34 * 34);
    soma_trainer *trn = NULL;
    CHECK_MSG(soma_train_create(&trn, net, &t, &d) == 0, "%s", soma_net_errmsg(net));
    if (trn) {
        soma_epoch_result r;
        CHECK_MSG(soma_train_epoch(trn, &tr, 0, NULL, NULL, &r) == 0, "%s", soma_train_errmsg(trn));
        CHECK(r.batches == 2 && isfinite(r.loss));
        double acc = -1.0;
        CHECK(soma_train_evaluate(trn, &te, 0, &acc, NULL) == 0 && acc >= 0.0 && acc <= 1.0);
    }
    soma_train_free(trn);
    soma_data_free(&tr);
    soma_data_free(&te);
    soma_net_free(net);
}

int main(void) {
    const char *tmp = t_tmpdir("nmnist");
    CHECK(tmp != NULL);
    if (!tmp) return t_report("test_nmnist");
    char base[512], good[600];
    snprintf(base, sizeof base, "%s", tmp);
    snprintf(good, sizeof good, "%s/good", base);
    CHECK(mkdir(good, 0755) == 0);
    build_tree(good);
    test_load(good);
    test_bin_ms(good);
    test_limits(good);
    test_conv_example(good);
    test_order(base);
    test_errors(base);
    return t_report("test_nmnist");
}
