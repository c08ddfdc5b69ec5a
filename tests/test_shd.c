/* test_shd.c — the SHD loader: small HDF5 files in the layout of the real
 * ones (vlen float32 times, vlen uint16 units, uint16 labels, /extra),
 * written here with the HDF5 C API, are binned into exact counts; bin_ms,
 * limits, classes, sequence encoding and one epoch of training; every kind
 * of broken file gives the right status and a message naming the file. */
#define _POSIX_C_SOURCE 200809L
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "soma.h"
#include "testlib.h"

#define U 700

/* One sample of a file to write: n times and m units (m may differ from n for a broken file). */
typedef struct sample {
    size_t n, m;
    float t[8];
    uint16_t u[8];
} sample;

/* Write an SHD-like file: ns samples in /spikes/times and /spikes/units,
 * nl labels (no /labels when labels is NULL), and /extra/speaker. */
static int write_shd(const char *path, const sample *s, size_t ns, const uint16_t *labels, size_t nl) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return -1;
    hvl_t tv[16], uv[16];
    for (size_t i = 0; i < ns; i++) {
        tv[i].len = s[i].n, tv[i].p = (void *)s[i].t;
        uv[i].len = s[i].m, uv[i].p = (void *)s[i].u;
    }
    int rc = 0;
    hid_t g = H5Gcreate2(f, "spikes", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t ft = H5Tvlen_create(H5T_IEEE_F32LE), mt = H5Tvlen_create(H5T_NATIVE_FLOAT);
    hid_t fu = H5Tvlen_create(H5T_STD_U16LE), mu = H5Tvlen_create(H5T_NATIVE_UINT16);
    hsize_t dn = ns;
    hid_t sp = H5Screate_simple(1, &dn, NULL);
    hid_t d = H5Dcreate2(g, "times", ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, tv) < 0) rc = -1;
    H5Dclose(d);
    d = H5Dcreate2(g, "units", fu, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, mu, H5S_ALL, H5S_ALL, H5P_DEFAULT, uv) < 0) rc = -1;
    H5Dclose(d);
    H5Sclose(sp);
    hsize_t dl = nl;
    sp = H5Screate_simple(1, &dl, NULL);
    if (labels) {
        d = H5Dcreate2(f, "labels", H5T_STD_U16LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (d < 0 || H5Dwrite(d, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels) < 0) rc = -1;
        H5Dclose(d);
    }
    hid_t ge = H5Gcreate2(f, "extra", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    uint16_t speaker[16] = {0};
    d = H5Dcreate2(ge, "speaker", H5T_STD_U16LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, speaker) < 0) rc = -1;
    H5Dclose(d);
    H5Sclose(sp);
    H5Gclose(ge);
    H5Tclose(ft), H5Tclose(mt), H5Tclose(fu), H5Tclose(mu);
    H5Gclose(g);
    if (H5Fclose(f) < 0) rc = -1;
    return rc;
}

/* The good data set. bin_ms = 0 (w = (last spike + 1us) / 10):
 *   train 0: last 0.99 -> w ~ 0.099: 0.05->0, 0.15->1, 0.17->1, 0.95->9, 0.99->9
 *   train 1: last 0.5  -> w ~ 0.05:  0.0->0, 0.5->9
 *   train 2: no spikes
 *   train 3: last 0.21 -> all three in bin 9
 *   test 0: 0.1 -> bin 9; test 1: last 0.6 -> 0.3->4, 0.6->9
 * bin_ms = 40 (w = 0.04): train 0: 0.05->1, 0.15->3, 0.17->4, 0.95 and 0.99 dropped;
 *   train 1: 0.0->0, 0.5 dropped; train 3: 0.21->5. */
static const sample train_s[4] = {
    {5, 5, {0.05f, 0.15f, 0.17f, 0.95f, 0.99f}, {3, 3, 3, 699, 0}},
    {2, 2, {0.0f, 0.5f}, {10, 20}},
    {0, 0, {0}, {0}},
    {3, 3, {0.21f, 0.21f, 0.21f}, {5, 5, 6}},
};
static const uint16_t train_y[4] = {0, 7, 19, 3};
static const sample test_s[2] = {
    {1, 1, {0.1f}, {1}},
    {2, 2, {0.3f, 0.6f}, {2, 2}},
};
static const uint16_t test_y[2] = {4, 5};

static char base[256];

static void make_dir(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", base, name);
    mkdir(out, 0755);
}

static void opts_for(soma_data_opts *o, const char *dir) {
    soma_data_opts_default(o);
    snprintf(o->dataset, sizeof o->dataset, "shd");
    snprintf(o->dir, sizeof o->dir, "%s", dir);
    o->encoding = SOMA_ENCODING_SEQUENCE;
    o->steps = 10;
}

static float cell(const soma_dataset *ds, size_t k, size_t t, size_t u) {
    return ds->seq[(k * ds->steps + t) * ds->dim + u];
}

static double sample_sum(const soma_dataset *ds, size_t k) {
    double s = 0;
    for (size_t i = 0; i < ds->steps * ds->dim; i++) s += ds->seq[k * ds->steps * ds->dim + i];
    return s;
}

static void test_good(const char *dir) {
    soma_data_opts o;
    opts_for(&o, dir);
    soma_dataset tr, te;
    char err[512] = "";
    int st = soma_data_load(&o, &tr, &te, err, sizeof err);
    CHECK_MSG(st == 0, "status %d: %s", st, err);
    if (st) return;
    CHECK(tr.n == 4 && te.n == 2);
    CHECK(tr.dim == U && tr.rows == 1 && tr.cols == U && te.dim == U);
    CHECK(tr.steps == 10 && te.steps == 10);
    CHECK(tr.x == NULL && te.x == NULL && tr.seq && te.seq);
    CHECK(tr.classes == 20 && te.classes == 20);
    CHECK(tr.y[0] == 0 && tr.y[1] == 7 && tr.y[2] == 19 && tr.y[3] == 3);
    CHECK(te.y[0] == 4 && te.y[1] == 5);
    /* train 0 */
    CHECK(cell(&tr, 0, 0, 3) == 1.0f);
    CHECK(cell(&tr, 0, 1, 3) == 2.0f);
    CHECK(cell(&tr, 0, 9, 699) == 1.0f);
    CHECK(cell(&tr, 0, 9, 0) == 1.0f);
    CHECK(sample_sum(&tr, 0) == 5.0);
    /* train 1 */
    CHECK(cell(&tr, 1, 0, 10) == 1.0f);
    CHECK(cell(&tr, 1, 9, 20) == 1.0f);
    CHECK(sample_sum(&tr, 1) == 2.0);
    /* train 2: empty */
    CHECK(sample_sum(&tr, 2) == 0.0);
    /* train 3 */
    CHECK(cell(&tr, 3, 9, 5) == 2.0f);
    CHECK(cell(&tr, 3, 9, 6) == 1.0f);
    CHECK(sample_sum(&tr, 3) == 3.0);
    /* test */
    CHECK(cell(&te, 0, 9, 1) == 1.0f);
    CHECK(sample_sum(&te, 0) == 1.0);
    CHECK(cell(&te, 1, 4, 2) == 1.0f);
    CHECK(cell(&te, 1, 9, 2) == 1.0f);
    CHECK(sample_sum(&te, 1) == 2.0);

    /* sequence encoding of samples 3 and 0: [T][B][dim] */
    size_t idx[2] = {3, 0};
    size_t sz = soma_encode_size(&o, &tr, 2);
    CHECK(sz == (size_t)10 * 2 * U);
    float *x = calloc(sz ? sz : 1, sizeof *x);
    int tc = -1;
    CHECK(soma_encode(&o, &tr, idx, 2, 1, 0, x, &tc) == 0);
    CHECK(tc == 0);
    CHECK(x[(9 * 2 + 0) * U + 5] == 2.0f);
    CHECK(x[(9 * 2 + 0) * U + 6] == 1.0f);
    CHECK(x[(1 * 2 + 1) * U + 3] == 2.0f);
    CHECK(x[(0 * 2 + 1) * U + 3] == 1.0f);
    double tot = 0;
    for (size_t i = 0; i < sz; i++) tot += x[i];
    CHECK(tot == 8.0);
    free(x);

    /* one epoch of training on it */
    soma_net *net = NULL;
    CHECK(soma_net_create(&net) == 0);
    size_t in, hid, out;
    CHECK(soma_net_add_pop(net, "in", "input", U, &in) == 0);
    CHECK(soma_net_add_pop(net, "hidden", "lif", 16, &hid) == 0);
    CHECK(soma_net_add_pop(net, "out", "lif", tr.classes, &out) == 0);
    CHECK(soma_net_connect_dense(net, in, hid, 1) == 0);
    CHECK(soma_net_connect_dense(net, hid, out, 1) == 0);
    soma_train_opts to;
    soma_train_opts_default(&to);
    to.batch = 2;
    to.threads = 1;
    to.epochs = 1;
    soma_trainer *trainer = NULL;
    st = soma_train_create(&trainer, net, &to, &o);
    CHECK_MSG(st == 0, "soma_train_create: %d %s", st, trainer ? soma_train_errmsg(trainer) : soma_net_errmsg(net));
    if (trainer) {
        soma_epoch_result res;
        memset(&res, 0, sizeof res);
        st = soma_train_epoch(trainer, &tr, 0, NULL, NULL, &res);
        CHECK_MSG(st == 0, "soma_train_epoch: %d %s", st, soma_train_errmsg(trainer));
        CHECK(res.batches == 2);
        CHECK(isfinite(res.loss) && res.loss > 0);
        double acc = -1;
        st = soma_train_evaluate(trainer, &te, 0, &acc, NULL);
        CHECK_MSG(st == 0, "soma_train_evaluate: %d %s", st, soma_train_errmsg(trainer));
        CHECK(acc >= 0 && acc <= 1);
        soma_train_free(trainer);
    }
    soma_net_free(net);
    soma_data_free(&tr);
    soma_data_free(&te);
}

static void test_bin_ms_and_limits(const char *dir) {
    soma_data_opts o;
    opts_for(&o, dir);
    o.bin_ms = 40.0f;
    soma_dataset tr, te;
    char err[512] = "";
    int st = soma_data_load(&o, &tr, &te, err, sizeof err);
    CHECK_MSG(st == 0, "status %d: %s", st, err);
    if (!st) {
        CHECK(cell(&tr, 0, 1, 3) == 1.0f);
        CHECK(cell(&tr, 0, 3, 3) == 1.0f);
        CHECK(cell(&tr, 0, 4, 3) == 1.0f);
        CHECK(sample_sum(&tr, 0) == 3.0); /* 0.95 and 0.99 s are past 10 x 40 ms */
        CHECK(cell(&tr, 1, 0, 10) == 1.0f);
        CHECK(sample_sum(&tr, 1) == 1.0);
        CHECK(cell(&tr, 3, 5, 5) == 2.0f);
        CHECK(cell(&tr, 3, 5, 6) == 1.0f);
        CHECK(sample_sum(&tr, 3) == 3.0);
        CHECK(cell(&te, 0, 2, 1) == 1.0f); /* 0.1 s / 40 ms = 2.5 */
        CHECK(cell(&te, 1, 7, 2) == 1.0f); /* 0.3 s -> 7; 0.6 s -> 15, dropped */
        CHECK(sample_sum(&te, 1) == 1.0);
    }
    soma_data_free(&tr);
    soma_data_free(&te);

    opts_for(&o, dir);
    o.limit_train = 2;
    o.limit_test = 1;
    st = soma_data_load(&o, &tr, &te, err, sizeof err);
    CHECK_MSG(st == 0, "status %d: %s", st, err);
    if (!st) {
        CHECK(tr.n == 2 && te.n == 1);
        CHECK(tr.y[0] == 0 && tr.y[1] == 7 && te.y[0] == 4);
        CHECK(tr.classes == 8 && te.classes == 8); /* 1 + max(0, 7, 4) */
        CHECK(cell(&tr, 1, 9, 20) == 1.0f);
        CHECK(sample_sum(&tr, 0) == 5.0);
    }
    soma_data_free(&tr);
    soma_data_free(&te);

    /* train only */
    opts_for(&o, dir);
    st = soma_data_load(&o, &tr, NULL, err, sizeof err);
    CHECK_MSG(st == 0 && tr.n == 4 && tr.classes == 20, "status %d: %s", st, err);
    soma_data_free(&tr);
}

/* Load dir; expect status want and an error naming file (and needle). */
static void expect_fail(const char *dir, int want, const char *file, const char *needle) {
    soma_data_opts o;
    opts_for(&o, dir);
    soma_dataset tr, te;
    char err[512] = "";
    int st = soma_data_load(&o, &tr, &te, err, sizeof err);
    char path[600];
    snprintf(path, sizeof path, "%s/%s: ", dir, file);
    CHECK_MSG(st == want, "%s: status %d (%s), expected %d: %s", dir, st, soma_status_name(st), want, err);
    CHECK_MSG(strncmp(err, path, strlen(path)) == 0, "message '%s' should start with '%s'", err, path);
    CHECK_MSG(strstr(err, needle) != NULL, "message '%s' should contain '%s'", err, needle);
    CHECK(tr.n == 0 && tr.seq == NULL && tr.y == NULL && te.n == 0 && te.seq == NULL);
}

static void test_errors(const char *good) {
    char d[512], p[600];
    /* missing files */
    make_dir(d, sizeof d, "empty");
    expect_fail(d, SOMA_STATUS_IO, "shd_train.h5", "cannot open");
    make_dir(d, sizeof d, "notest");
    snprintf(p, sizeof p, "%s/shd_train.h5", d);
    CHECK(write_shd(p, train_s, 4, train_y, 4) == 0);
    expect_fail(d, SOMA_STATUS_IO, "shd_test.h5", "cannot open");
    /* a text file */
    make_dir(d, sizeof d, "text");
    snprintf(p, sizeof p, "%s/shd_train.h5", d);
    CHECK(t_write_file(p, "times,units\n0.1,3\n", 18) == 0);
    expect_fail(d, SOMA_STATUS_FORMAT, "shd_train.h5", "not an HDF5 file");
    /* no /labels */
    make_dir(d, sizeof d, "nolabels");
    snprintf(p, sizeof p, "%s/shd_train.h5", d);
    CHECK(write_shd(p, train_s, 4, NULL, 4) == 0);
    expect_fail(d, SOMA_STATUS_FORMAT, "shd_train.h5", "/labels");
    /* 4 samples, 3 labels */
    make_dir(d, sizeof d, "lengths");
    snprintf(p, sizeof p, "%s/shd_train.h5", d);
    CHECK(write_shd(p, train_s, 4, train_y, 3) == 0);
    expect_fail(d, SOMA_STATUS_FORMAT, "shd_train.h5", "expected equal lengths");
    /* unit 812 in sample 1 */
    sample bad[4];
    memcpy(bad, train_s, sizeof bad);
    bad[1].u[1] = 812;
    make_dir(d, sizeof d, "unit");
    snprintf(p, sizeof p, "%s/shd_train.h5", d);
    CHECK(write_shd(p, bad, 4, train_y, 4) == 0);
    expect_fail(d, SOMA_STATUS_FORMAT, "shd_train.h5", "shd_train.h5: sample 1: unit 812 (expected < 700)");
    /* sample 3: three times, two units */
    memcpy(bad, train_s, sizeof bad);
    bad[3].m = 2;
    make_dir(d, sizeof d, "ragged");
    snprintf(p, sizeof p, "%s/shd_train.h5", d);
    CHECK(write_shd(p, bad, 4, train_y, 4) == 0);
    expect_fail(d, SOMA_STATUS_FORMAT, "shd_train.h5", "sample 3: 3 spike times but 2 units");
    /* negative time in sample 2 */
    memcpy(bad, train_s, sizeof bad);
    bad[2].n = bad[2].m = 1;
    bad[2].t[0] = -0.5f;
    make_dir(d, sizeof d, "negtime");
    snprintf(p, sizeof p, "%s/shd_train.h5", d);
    CHECK(write_shd(p, bad, 4, train_y, 4) == 0);
    expect_fail(d, SOMA_STATUS_FORMAT, "shd_train.h5", "sample 2: spike 0 has time -0.5");
    /* NaN time */
    bad[2].t[0] = NAN;
    CHECK(write_shd(p, bad, 4, train_y, 4) == 0);
    expect_fail(d, SOMA_STATUS_FORMAT, "shd_train.h5", "sample 2: spike 0 has time nan");
    /* label 300 in the test file (train is fine) */
    make_dir(d, sizeof d, "label");
    snprintf(p, sizeof p, "%s/shd_train.h5", d);
    CHECK(write_shd(p, train_s, 4, train_y, 4) == 0);
    snprintf(p, sizeof p, "%s/shd_test.h5", d);
    uint16_t ybad[2] = {4, 300};
    CHECK(write_shd(p, test_s, 2, ybad, 2) == 0);
    expect_fail(d, SOMA_STATUS_FORMAT, "shd_test.h5", "sample 1: label 300 (expected 0..255)");
    /* too big to hold: refused before allocating, with the estimate */
    soma_data_opts o;
    opts_for(&o, good);
    o.steps = 2000000; /* 4 x 2e6 x 700 x 4 bytes ~ 20.9 GiB */
    soma_dataset tr;
    char err[512] = "";
    int st = soma_data_load(&o, &tr, NULL, err, sizeof err);
    CHECK_MSG(st == SOMA_STATUS_NOMEM && strstr(err, "shd_train.h5: ") && strstr(err, "20.9 GiB"), "%d: %s", st, err);
    CHECK(tr.seq == NULL);
}

/* SHD-Adding from the same files: pairs of samples one after the other, each
 * half binned into steps/2, label (y1 mod 10) + (y2 mod 10), 19 classes. */
static void test_adding(const char *dir) {
    soma_data_opts o, h;
    opts_for(&o, dir);
    opts_for(&h, dir);
    snprintf(o.dataset, sizeof o.dataset, "shd-adding");
    o.steps = 10;
    h.steps = 5;
    soma_dataset tr, te, src, src_te;
    char err[512] = "";
    CHECK_MSG(soma_data_load(&o, &tr, &te, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(soma_data_load(&h, &src, &src_te, err, sizeof err) == 0, "%s", err);
    CHECK(tr.n == src.n && tr.steps == 10 && tr.dim == U && tr.classes == 19 && te.n == src_te.n);
    size_t half = 5 * U;
    int perm_ok = 1;
    size_t seen[16] = {0};
    for (size_t i = 0; i < tr.n && src.seq; i++) {
        /* first half is sample i; second half is some sample j, and the label matches */
        CHECK(memcmp(tr.seq + i * 2 * half, src.seq + i * half, half * sizeof(float)) == 0);
        size_t j = tr.n;
        for (size_t k = 0; k < src.n; k++)
            if (memcmp(tr.seq + i * 2 * half + half, src.seq + k * half, half * sizeof(float)) == 0 &&
                tr.y[i] == src.y[i] % 10 + src.y[k] % 10)
                j = k;
        CHECK_MSG(j < src.n, "pair %zu: second half is no sample with a matching label", i);
        if (j < 16) seen[j]++;
    }
    for (size_t k = 0; k < tr.n && k < 16; k++) perm_ok &= seen[k] >= 1;
    CHECK(perm_ok); /* the second halves use every sample (a permutation) */
    soma_dataset again, again_te;
    CHECK(soma_data_load(&o, &again, &again_te, err, sizeof err) == 0);
    CHECK(again.seq && memcmp(again.seq, tr.seq, tr.n * 2 * half * sizeof(float)) == 0); /* fixed pairs */
    o.steps = 7;
    soma_dataset bad_tr, bad_te;
    CHECK(soma_data_load(&o, &bad_tr, &bad_te, err, sizeof err) == SOMA_STATUS_INVALID && strstr(err, "even"));
    soma_data_free(&tr), soma_data_free(&te), soma_data_free(&src), soma_data_free(&src_te);
    soma_data_free(&again), soma_data_free(&again_te);
}

int main(void) {
    const char *t = t_tmpdir("shd");
    if (!t) {
        fprintf(stderr, "cannot make a scratch directory\n");
        return 1;
    }
    snprintf(base, sizeof base, "%s", t);
    char good[512], p[600];
    make_dir(good, sizeof good, "good");
    snprintf(p, sizeof p, "%s/shd_train.h5", good);
    CHECK(write_shd(p, train_s, 4, train_y, 4) == 0);
    snprintf(p, sizeof p, "%s/shd_test.h5", good);
    CHECK(write_shd(p, test_s, 2, test_y, 2) == 0);
    test_good(good);
    test_bin_ms_and_limits(good);
    test_errors(good);
    test_adding(good);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", base);
    return t_report("test_shd");
}
