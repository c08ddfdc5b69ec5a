/* test_data.c — the data layer: IDX reading (gzip and plain, and every kind
 * of broken file), data-set directory loading, the four encoders, the epoch
 * shuffle and the name tables. */
#define _POSIX_C_SOURCE 200809L
#include "soma.h"
#include "testlib.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

static char tmp[512];

static const char *tpath(const char *name) {
    static char buf[64][700]; /* a ring: a test keeps up to 64 paths at once */
    static int k = 0;
    k = (k + 1) & 63;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmp, name);
    return buf[k];
}

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static int write_bytes(const char *path, const uint8_t *b, size_t n, int gz) {
    if (!gz) return t_write_file(path, b, n);
    gzFile f = gzopen(path, "wb");
    if (!f) return -1;
    int w = n ? gzwrite(f, b, (unsigned)n) : 0;
    return (gzclose(f) == Z_OK && (size_t)w == n) ? 0 : -1;
}

/* An IDX image file of n images rows x cols; pixel k of the payload is
 * pix(k); `drop` bytes cut from the end; `magic` written as given. */
static uint8_t pix(size_t k) { return (uint8_t)((k * 37 + 11) & 0xff); }

static int write_images(const char *path, uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols, size_t drop,
                        int gz) {
    size_t len = 16 + (size_t)n * rows * cols;
    uint8_t *b = malloc(len);
    put32(b, magic); put32(b + 4, n); put32(b + 8, rows); put32(b + 12, cols);
    for (size_t k = 0; k < len - 16; k++) b[16 + k] = pix(k);
    int r = write_bytes(path, b, len - drop, gz);
    free(b);
    return r;
}

static int write_labels(const char *path, uint32_t magic, uint32_t n, const uint8_t *labels, size_t drop, int gz) {
    size_t len = 8 + n;
    uint8_t *b = malloc(len);
    put32(b, magic); put32(b + 4, n);
    memcpy(b + 8, labels, n);
    int r = write_bytes(path, b, len - drop, gz);
    free(b);
    return r;
}

static int contains(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

/* Load and expect failure with `status`, the message naming `file` and `reason`. */
static void expect_fail(const char *images, const char *labels, int status, const char *file, const char *reason) {
    soma_dataset ds = {0};
    char err[1024] = "";
    memset(&ds, 0xab, sizeof ds);
    int st = soma_data_load_idx(&ds, images, labels, err, sizeof err);
    CHECK_MSG(st == status, "%s: got %s, want %s (%s)", reason, soma_status_name(st), soma_status_name(status), err);
    CHECK_MSG(contains(err, file), "message '%s' should name %s", err, file);
    CHECK_MSG(contains(err, reason), "message '%s' should say '%s'", err, reason);
    CHECK(ds.x == NULL && ds.y == NULL && ds.n == 0);
}

static const uint8_t LAB5[5] = {3, 0, 7, 1, 3};

static void test_idx_ok(void) {
    for (int gz = 0; gz < 2; gz++) {
        const char *im = tpath(gz ? "ok-im.gz" : "ok-im"), *lb = tpath(gz ? "ok-lb.gz" : "ok-lb");
        CHECK(write_images(im, 0x803, 5, 3, 2, 0, gz) == 0);
        CHECK(write_labels(lb, 0x801, 5, LAB5, 0, gz) == 0);
        soma_dataset ds = {0};
        char err[512] = "";
        int st = soma_data_load_idx(&ds, im, lb, err, sizeof err);
        CHECK_MSG(st == 0, "gz=%d: %s", gz, err);
        if (st) continue;
        CHECK(ds.n == 5 && ds.rows == 3 && ds.cols == 2 && ds.dim == 6);
        CHECK(ds.classes == 8);
        int same = 1;
        for (size_t k = 0; k < 30; k++) same &= ds.x[k] == pix(k);
        CHECK(same);
        CHECK(memcmp(ds.y, LAB5, 5) == 0);
        soma_data_free(&ds);
        CHECK(ds.x == NULL && ds.y == NULL && ds.n == 0);
    }
    /* The file is really compressed when written with gzwrite (so the gzip
     * path is exercised, not only the transparent one). */
    size_t n = 0;
    uint8_t *raw = t_read_file(tpath("ok-im.gz"), &n);
    CHECK(raw && n > 2 && raw[0] == 0x1f && raw[1] == 0x8b);
    free(raw);
}

static void test_idx_bad(void) {
    const char *im = tpath("im"), *lb = tpath("lb");
    CHECK(write_labels(lb, 0x801, 5, LAB5, 0, 0) == 0);
    CHECK(write_images(im, 0x803, 5, 3, 2, 0, 0) == 0);

    /* wrong magic, both files, and a swapped pair */
    const char *badim = tpath("badmagic-im");
    CHECK(write_images(badim, 0x804, 5, 3, 2, 0, 0) == 0);
    expect_fail(badim, lb, SOMA_STATUS_FORMAT, "badmagic-im", "bad magic number 0x00000804");
    const char *badlb = tpath("badmagic-lb.gz");
    CHECK(write_labels(badlb, 0x1234, 5, LAB5, 0, 1) == 0);
    expect_fail(im, badlb, SOMA_STATUS_FORMAT, "badmagic-lb.gz", "expected 0x00000801");
    expect_fail(lb, im, SOMA_STATUS_FORMAT, "/lb", "looks like a label file");

    /* truncated images: 5 images of 6 bytes, 8 bytes short -> 22 found, 3 whole */
    const char *trim = tpath("trunc-im");
    CHECK(write_images(trim, 0x803, 5, 3, 2, 8, 0) == 0);
    expect_fail(trim, lb, SOMA_STATUS_FORMAT, "trunc-im", "expected 5 images of 3x2 = 30 bytes, found 22 bytes = 3");
    const char *trimgz = tpath("trunc-im.gz");
    CHECK(write_images(trimgz, 0x803, 5, 3, 2, 8, 1) == 0);
    expect_fail(trimgz, lb, SOMA_STATUS_FORMAT, "trunc-im.gz", "found 22 bytes");

    /* truncated labels */
    const char *trlb = tpath("trunc-lb");
    CHECK(write_labels(trlb, 0x801, 5, LAB5, 2, 0) == 0);
    expect_fail(im, trlb, SOMA_STATUS_FORMAT, "trunc-lb", "expected 5 labels = 5 bytes, found 3");

    /* truncated header */
    const char *trh = tpath("trunc-hdr");
    CHECK(write_images(trh, 0x803, 5, 3, 2, 30 + 6, 0) == 0);
    expect_fail(trh, lb, SOMA_STATUS_FORMAT, "trunc-hdr", "truncated header (expected 16 bytes, found 10)");

    /* count mismatch */
    const char *lb4 = tpath("lb4");
    CHECK(write_labels(lb4, 0x801, 4, LAB5, 0, 0) == 0);
    expect_fail(im, lb4, SOMA_STATUS_FORMAT, "lb4", "4 labels but");
    expect_fail(im, lb4, SOMA_STATUS_FORMAT, "5 images", "expected equal counts");

    /* zero and absurd dimensions */
    const char *zim = tpath("zero-im");
    CHECK(write_images(zim, 0x803, 5, 0, 2, 0, 0) == 0);
    expect_fail(zim, lb, SOMA_STATUS_FORMAT, "zero-im", "bad dimensions n=5 rows=0 cols=2");
    const char *hugeim = tpath("huge-im");
    {
        uint8_t h[16];
        put32(h, 0x803); put32(h + 4, 5); put32(h + 8, 100000); put32(h + 12, 100000);
        CHECK(t_write_file(hugeim, h, 16) == 0);
    }
    expect_fail(hugeim, lb, SOMA_STATUS_FORMAT, "huge-im", "rows*cols <");
    const char *hugelb = tpath("huge-lb");
    {
        uint8_t h[8];
        put32(h, 0x801); put32(h + 4, 200000000u);
        CHECK(t_write_file(hugelb, h, 8) == 0);
    }
    expect_fail(im, hugelb, SOMA_STATUS_FORMAT, "huge-lb", "bad label count 200000000");

    /* missing file */
    expect_fail(tpath("no-such-file"), lb, SOMA_STATUS_IO, "no-such-file", "cannot open");
    expect_fail(im, tpath("no-such-labels"), SOMA_STATUS_IO, "no-such-labels", "cannot open");

    /* empty files, plain and gzip */
    const char *empty = tpath("empty");
    CHECK(t_write_file(empty, "", 0) == 0);
    expect_fail(empty, lb, SOMA_STATUS_FORMAT, "empty", "empty file");
    const char *emptygz = tpath("empty.gz");
    CHECK(write_bytes(emptygz, (const uint8_t *)"", 0, 1) == 0);
    expect_fail(im, emptygz, SOMA_STATUS_FORMAT, "empty.gz", "empty file");

    /* a gzip header followed by garbage */
    const char *badgz = tpath("bad.gz");
    uint8_t junk[64] = {0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3};
    for (size_t k = 10; k < sizeof junk; k++) junk[k] = (uint8_t)(0xff - k * 7);
    CHECK(t_write_file(badgz, junk, sizeof junk) == 0);
    expect_fail(badgz, lb, SOMA_STATUS_FORMAT, "bad.gz", "corrupt gzip data");

    /* a compressed file cut in half: truncated, with counts */
    const char *full = tpath("full.gz"), *half = tpath("half.gz");
    CHECK(write_images(full, 0x803, 5, 3, 2, 0, 1) == 0);
    size_t n = 0;
    uint8_t *raw = t_read_file(full, &n);
    CHECK(raw != NULL);
    if (raw) {
        CHECK(t_write_file(half, raw, n / 2) == 0);
        free(raw);
        soma_dataset ds = {0};
        char err[512] = "";
        int st = soma_data_load_idx(&ds, half, lb, err, sizeof err);
        CHECK_MSG(st == SOMA_STATUS_FORMAT && contains(err, "half.gz") && contains(err, "expected"), "%d %s", st, err);
    }

    /* NULL error buffer and NULL arguments are tolerated */
    soma_dataset ds = {0};
    CHECK(soma_data_load_idx(&ds, empty, lb, NULL, 0) == SOMA_STATUS_FORMAT);
    CHECK(soma_data_load_idx(NULL, im, lb, NULL, 0) == SOMA_STATUS_INVALID);
    soma_data_free(NULL);
}

/* A data-set directory of four small files (train 7 samples, test 4). */
static void make_set_dir(const char *dir, int gz) {
    char p[800];
    mkdir(dir, 0755);
    uint8_t ltr[7] = {0, 1, 2, 3, 4, 5, 6}, lte[4] = {9, 8, 7, 6};
    const char *ext = gz ? ".gz" : "";
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte%s", dir, ext);
    CHECK(write_images(p, 0x803, 7, 2, 2, 0, gz) == 0);
    snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte%s", dir, ext);
    CHECK(write_labels(p, 0x801, 7, ltr, 0, gz) == 0);
    snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte%s", dir, ext);
    CHECK(write_images(p, 0x803, 4, 2, 2, 0, gz) == 0);
    snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte%s", dir, ext);
    CHECK(write_labels(p, 0x801, 4, lte, 0, gz) == 0);
}

static void test_load_dir(void) {
    soma_data_opts o;
    soma_dataset tr, te;
    char err[2048];
    for (int gz = 0; gz < 2; gz++) {
        const char *dir = tpath(gz ? "set-gz" : "set-plain");
        make_set_dir(dir, gz);
        soma_data_opts_default(&o);
        strcpy(o.dataset, "mnist");
        snprintf(o.dir, sizeof o.dir, "%s", dir);
        int st = soma_data_load(&o, &tr, &te, err, sizeof err);
        CHECK_MSG(st == 0, "%s", err);
        if (st) continue;
        CHECK(tr.n == 7 && te.n == 4 && tr.dim == 4 && te.rows == 2 && te.cols == 2);
        CHECK(tr.classes == 10 && te.classes == 10); /* shared: max of both splits */
        CHECK(tr.y[6] == 6 && te.y[0] == 9 && tr.x[5] == pix(5));
        soma_data_free(&tr);
        soma_data_free(&te);

        o.limit_train = 3;
        o.limit_test = 100; /* more than there is: all */
        st = soma_data_load(&o, &tr, &te, err, sizeof err);
        CHECK_MSG(st == 0, "%s", err);
        if (st) continue;
        CHECK(tr.n == 3 && te.n == 4 && tr.y[2] == 2 && tr.x[11] == pix(11));
        soma_data_free(&tr);
        soma_data_free(&te);
    }
    /* .gz is preferred when both exist: make the plain files of set-gz bad */
    {
        char p[800];
        snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", tpath("set-gz"));
        CHECK(t_write_file(p, "junk", 4) == 0);
        soma_data_opts_default(&o);
        snprintf(o.dir, sizeof o.dir, "%s", tpath("set-gz"));
        int st = soma_data_load(&o, &tr, &te, err, sizeof err);
        CHECK_MSG(st == 0, "%s", err);
        soma_data_free(&tr);
        soma_data_free(&te);
    }

    /* a missing file in an existing directory */
    {
        const char *dir = tpath("set-partial");
        make_set_dir(dir, 0);
        char p[800];
        snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte", dir);
        remove(p);
        soma_data_opts_default(&o);
        snprintf(o.dir, sizeof o.dir, "%s", dir);
        memset(&tr, 0x5a, sizeof tr);
        int st = soma_data_load(&o, &tr, &te, err, sizeof err);
        CHECK(st == SOMA_STATUS_IO);
        CHECK_MSG(contains(err, "t10k-labels-idx1-ubyte") && contains(err, "not found"), "%s", err);
        CHECK(tr.x == NULL && te.x == NULL); /* the loaded training split was freed */
    }

    /* missing directory: path and, for fashion-mnist, the install hint */
    soma_data_opts_default(&o);
    snprintf(o.dir, sizeof o.dir, "%s", tpath("nowhere"));
    int st = soma_data_load(&o, &tr, &te, err, sizeof err);
    CHECK(st == SOMA_STATUS_IO);
    CHECK_MSG(contains(err, "nowhere") && contains(err, "not found") &&
                  contains(err, "apt-get install dataset-fashion-mnist"), "%s", err);
    strcpy(o.dataset, "mnist");
    st = soma_data_load(&o, &tr, &te, err, sizeof err);
    CHECK(st == SOMA_STATUS_IO);
    CHECK_MSG(contains(err, "nowhere") && !contains(err, "apt-get"), "%s", err);

    /* mnist has no default directory */
    o.dir[0] = 0;
    st = soma_data_load(&o, &tr, &te, err, sizeof err);
    CHECK(st == SOMA_STATUS_INVALID);
    CHECK_MSG(contains(err, "mnist") && contains(err, "no default directory"), "%s", err);

    /* unknown data set lists the valid names */
    strcpy(o.dataset, "cifar");
    st = soma_data_load(&o, &tr, &te, err, sizeof err);
    CHECK(st == SOMA_STATUS_INVALID);
    CHECK_MSG(contains(err, "cifar") && contains(err, "fashion-mnist") && contains(err, ", mnist"), "%s", err);

    CHECK(strcmp(soma_data_default_dir("fashion-mnist"), "/usr/share/datasets/fashion-mnist") == 0);
    CHECK(soma_data_default_dir("mnist") == NULL);
    CHECK(soma_data_default_dir("cifar") == NULL);
    CHECK(soma_data_default_dir(NULL) == NULL);
}

static void test_fashion_mnist(void) {
    struct stat sb;
    if (stat("/usr/share/datasets/fashion-mnist", &sb) != 0) {
        printf("test_data: /usr/share/datasets/fashion-mnist absent, skipping the real data set\n");
        return;
    }
    soma_data_opts o;
    soma_data_opts_default(&o);
    soma_dataset tr, te;
    char err[1024] = "";
    int st = soma_data_load(&o, &tr, &te, err, sizeof err);
    CHECK_MSG(st == 0, "%s", err);
    if (st) return;
    CHECK(tr.n == 60000 && te.n == 10000);
    CHECK(tr.rows == 28 && tr.cols == 28 && tr.dim == 784 && te.dim == 784);
    CHECK(tr.classes == 10 && te.classes == 10);
    /* every class present in the test split, 1000 each */
    size_t count[256] = {0};
    for (size_t i = 0; i < te.n; i++) count[te.y[i]]++;
    int balanced = 1;
    for (int c = 0; c < 10; c++) balanced &= count[c] == 1000;
    CHECK(balanced);
    soma_data_free(&tr);
    soma_data_free(&te);
}

/* ---------------------------------------------------------------- encoders */
/* A data set built in memory: sample s pixel i = vals[(s + i) % nv]. */
static soma_dataset mem_set(size_t n, size_t dim, const uint8_t *vals, size_t nv) {
    soma_dataset ds = {0};
    ds.n = n; ds.dim = dim; ds.rows = 1; ds.cols = dim; ds.classes = 2;
    ds.x = malloc(n * dim);
    ds.y = calloc(n, 1);
    for (size_t s = 0; s < n; s++)
        for (size_t i = 0; i < dim; i++) ds.x[s * dim + i] = vals[(s + i) % nv];
    return ds;
}

static void test_opts_and_names(void) {
    soma_data_opts o;
    memset(&o, 0x7f, sizeof o);
    soma_data_opts_default(&o);
    CHECK(strcmp(o.dataset, "fashion-mnist") == 0 && o.dir[0] == 0);
    CHECK(o.encoding == SOMA_ENCODING_DIRECT && o.steps == 25 && o.readout == SOMA_READOUT_COUNT);
    CHECK(o.gain == 1.0f && o.threshold == 0.1f && o.tau == 5.0f && o.delta_off == 0);
    CHECK(o.limit_train == 0 && o.limit_test == 0);

    const char *enc[] = {"direct", "rate", "latency", "delta"};
    for (int i = 0; i < 4; i++) {
        CHECK(soma_encoding_find(enc[i]) == i);
        CHECK(soma_encoding_name(i) && strcmp(soma_encoding_name(i), enc[i]) == 0);
    }
    CHECK(soma_encoding_find("poisson") == -1 && soma_encoding_find(NULL) == -1);
    CHECK(soma_encoding_name(5) == NULL && soma_encoding_name(-1) == NULL);
    CHECK(soma_readout_find("count") == SOMA_READOUT_COUNT);
    CHECK(soma_readout_find("membrane") == SOMA_READOUT_MEMBRANE);
    CHECK(soma_readout_find("max") == -1);
    CHECK(strcmp(soma_readout_name(1), "membrane") == 0 && strcmp(soma_readout_name(2), "last") == 0 && soma_readout_name(3) == NULL);
}

static void test_direct(void) {
    const uint8_t vals[] = {0, 51, 255, 128, 7};
    soma_dataset ds = mem_set(6, 5, vals, 5);
    soma_data_opts o;
    soma_data_opts_default(&o);
    o.gain = 2.0f;
    size_t idx[3] = {4, 0, 4};
    CHECK(soma_encode_size(&o, &ds, 3) == 15);
    float out[15];
    int tc = -1;
    CHECK(soma_encode(&o, &ds, idx, 3, 1, 0, out, &tc) == 0);
    CHECK(tc == 1);
    int exact = 1;
    for (size_t b = 0; b < 3; b++)
        for (size_t i = 0; i < 5; i++) exact &= out[b * 5 + i] == 2.0f * ((float)ds.x[idx[b] * 5 + i] / 255.0f);
    CHECK(exact);
    CHECK(out[5 + 2] == 2.0f); /* sample 0, pixel 2 = 255 */
    size_t bad = 6;
    CHECK(soma_encode(&o, &ds, &bad, 1, 1, 0, out, &tc) == SOMA_STATUS_INVALID);
    o.encoding = 99;
    CHECK(soma_encode(&o, &ds, idx, 1, 1, 0, out, &tc) == SOMA_STATUS_INVALID);
    soma_data_free(&ds);
}

static void test_rate(void) {
    const uint8_t vals[] = {0, 51, 128, 255, 204, 25};
    const size_t dim = 6, n = 10, T = 2000;
    soma_dataset ds = mem_set(n, dim, vals, 6);
    soma_data_opts o;
    soma_data_opts_default(&o);
    o.encoding = SOMA_ENCODING_RATE;
    o.steps = (int)T;
    o.gain = 1.5f;
    size_t idx[3] = {2, 7, 3};
    CHECK(soma_encode_size(&o, &ds, 3) == T * 3 * dim);
    float *out = malloc(T * 3 * dim * sizeof *out);
    int tc = -1;
    CHECK(soma_encode(&o, &ds, idx, 3, 42, 1, out, &tc) == 0);
    CHECK(tc == 0);
    int binary = 1;
    for (size_t k = 0; k < T * 3 * dim; k++) binary &= out[k] == 0.0f || out[k] == 1.0f;
    CHECK(binary);
    for (size_t b = 0; b < 3; b++) {
        for (size_t i = 0; i < dim; i++) {
            double p = 1.5 * ds.x[idx[b] * dim + i] / 255.0;
            if (p > 1) p = 1;
            double m = 0;
            for (size_t t = 0; t < T; t++) m += out[(t * 3 + b) * dim + i];
            m /= (double)T;
            /* 5 sigma of a binomial mean, and exact at p = 0 and p = 1 */
            double tol = 5 * sqrt(p * (1 - p) / (double)T);
            CHECK_MSG(fabs(m - p) <= tol, "b=%zu i=%zu mean %g p %g", b, i, m, p);
        }
    }
    /* the same sample gives the same spikes in another batch slot and batch size */
    size_t idx2[2] = {7, 5};
    float *out2 = malloc(T * 2 * dim * sizeof *out2);
    CHECK(soma_encode(&o, &ds, idx2, 2, 42, 1, out2, &tc) == 0);
    int same = 1;
    for (size_t t = 0; t < T; t++)
        same &= memcmp(out + (t * 3 + 1) * dim, out2 + (t * 2 + 0) * dim, dim * sizeof(float)) == 0;
    CHECK(same);
    /* another epoch or seed gives other spikes */
    CHECK(soma_encode(&o, &ds, idx2, 2, 42, 2, out2, &tc) == 0);
    int differ = 0;
    for (size_t t = 0; t < T; t++)
        differ |= memcmp(out + (t * 3 + 1) * dim, out2 + (t * 2 + 0) * dim, dim * sizeof(float)) != 0;
    CHECK(differ);
    CHECK(soma_encode(&o, &ds, idx2, 2, 43, 1, out2, &tc) == 0);
    differ = 0;
    for (size_t t = 0; t < T; t++)
        differ |= memcmp(out + (t * 3 + 1) * dim, out2 + (t * 2 + 0) * dim, dim * sizeof(float)) != 0;
    CHECK(differ);
    /* two samples with the same pixels get different spikes (keyed by index) */
    const uint8_t one[] = {128};
    soma_dataset flat = mem_set(2, 4, one, 1);
    size_t both[2] = {0, 1};
    o.steps = 64;
    float f2[64 * 2 * 4];
    CHECK(soma_encode(&o, &flat, both, 2, 42, 1, f2, &tc) == 0);
    differ = 0;
    for (size_t t = 0; t < 64; t++) differ |= memcmp(f2 + (t * 2) * 4, f2 + (t * 2 + 1) * 4, 4 * sizeof(float)) != 0;
    CHECK(differ);
    soma_data_free(&flat);
    free(out);
    free(out2);
    soma_data_free(&ds);
}

/* The rate encoder against its definition computed here with the one-block
 * Philox (soma_philox): the draw for (sample s, step t, input i) is word i%4
 * of block (s*T + t)*ceil(dim/4) + i/4 under key seed ^ epoch*0x9E37...,
 * and the input fires iff that uniform is below clamp(gain*pixel/255, 0, 1).
 * Bit for bit, for row lengths that are not whole blocks, rows of more than
 * the encoder's 256-block buffer, gains above 1 and 0, and any thread count:
 * the vectorized encoder must give exactly this stream. */
static void test_rate_exact(void) {
    const size_t dims[] = {1, 7, 784, 1029, 4100};
    const float gains[] = {0.5f, 1.7f, 0.0f};
    const size_t T = 3, B = 4;
    size_t idx[4] = {5, 0, 9, 2};
    uint8_t vals[256];
    for (int v = 0; v < 256; v++) vals[v] = (uint8_t)((v * 97 + 13) & 0xff);
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        size_t dim = dims[di], blocks = (dim + 3) / 4;
        soma_dataset ds = mem_set(10, dim, vals, 251);
        float *out = malloc(T * B * dim * sizeof *out);
        for (size_t gi = 0; gi < sizeof gains / sizeof gains[0]; gi++)
            for (int threads = 1; threads <= 2; threads++) {
                soma_data_opts o;
                soma_data_opts_default(&o);
                o.encoding = SOMA_ENCODING_RATE;
                o.steps = (int)T;
                o.gain = gains[gi];
                o.threads = threads;
                int tc = -1;
                uint64_t seed = 0x5eed0000u + di, epoch = 3 + gi;
                CHECK(soma_encode(&o, &ds, idx, B, seed, epoch, out, &tc) == 0);
                uint64_t key = seed ^ (epoch * 0x9E3779B97F4A7C15ull);
                size_t bad = 0, ones = 0;
                for (size_t t = 0; t < T; t++)
                    for (size_t b = 0; b < B; b++)
                        for (size_t i = 0; i < dim; i++) {
                            uint32_t w[4];
                            soma_philox(key, ((uint64_t)idx[b] * T + t) * blocks + i / 4, w);
                            float p = gains[gi] * ((float)ds.x[idx[b] * dim + i] / 255.0f);
                            p = p > 1.0f ? 1.0f : p;
                            float ref = (float)(w[i % 4] >> 8) * (1.0f / 16777216.0f) < p ? 1.0f : 0.0f;
                            float got = out[(t * B + b) * dim + i];
                            bad += memcmp(&ref, &got, sizeof ref) != 0;
                            ones += ref == 1.0f;
                        }
                CHECK_MSG(bad == 0, "dim %zu gain %g threads %d: %zu of %zu values differ", dim, gains[gi], threads,
                          bad, T * B * dim);
                /* the comparison is not vacuous: gain 0 never fires, the others do */
                CHECK(gains[gi] == 0.0f ? ones == 0 : dim < 7 || ones > 0);
            }
        free(out);
        soma_data_free(&ds);
    }
}

static void test_latency(void) {
    /* pixels ascending in brightness; 20 < 0.1*255 < 26 */
    const uint8_t vals[] = {0, 20, 26, 40, 80, 160, 255};
    const size_t dim = 7, T = 25;
    soma_dataset ds = mem_set(1, dim, vals, 7);
    soma_data_opts o;
    soma_data_opts_default(&o);
    o.encoding = SOMA_ENCODING_LATENCY;
    size_t idx = 0;
    float out[25 * 7];
    for (int lin = 0; lin < 2; lin++) {
        o.tau = lin ? 0.0f : 5.0f;
        int tc = -1;
        CHECK(soma_encode(&o, &ds, &idx, 1, 1, 0, out, &tc) == 0);
        CHECK(tc == 0);
        int when[7], once = 1;
        for (size_t i = 0; i < dim; i++) {
            int cnt = 0;
            when[i] = -1;
            for (size_t t = 0; t < T; t++) {
                float v = out[t * dim + i];
                if (v != 0.0f) { cnt++; when[i] = (int)t; once &= v == 1.0f; }
            }
            once &= cnt <= 1;
        }
        CHECK(once);
        CHECK_MSG(when[0] == -1 && when[1] == -1, "lin=%d: below threshold fired at %d, %d", lin, when[0], when[1]);
        for (size_t i = 2; i < dim; i++) CHECK_MSG(when[i] >= 0, "lin=%d pixel %zu never fired", lin, i);
        for (size_t i = 3; i < dim; i++)
            CHECK_MSG(when[i] <= when[i - 1], "lin=%d: brighter %zu at %d after %d", lin, i, when[i], when[i - 1]);
        CHECK(when[2] > when[6]); /* strictly earlier across the range */
        if (lin) {
            CHECK(when[6] == 0);                        /* x = 1 -> t = 0 */
            CHECK(when[5] == (int)lround((1.0 - 160 / 255.0) * 24));
        } else {
            /* t = 5 ln(x / (x - 0.1)): 26 -> 19.8, 40 -> 5.07, 255 -> 0.53 */
            double x26 = (double)(26 / 255.0f), x40 = (double)(40 / 255.0f), th = (double)0.1f;
            CHECK(when[2] == (int)lround(5.0 * log(x26 / (x26 - th))) && when[2] == 20);
            CHECK(when[3] == (int)lround(5.0 * log(x40 / (x40 - th))) && when[3] == 5);
            CHECK(when[6] == 1);
            /* just above threshold the log code is clamped to the last step */
            o.threshold = 25.9f / 255.0f;
            CHECK(soma_encode(&o, &ds, &idx, 1, 1, 0, out, NULL) == 0);
            CHECK(out[(T - 1) * dim + 2] == 1.0f);
            o.threshold = 0.1f;
        }
    }
    o.tau = -1.0f;
    CHECK(soma_encode(&o, &ds, &idx, 1, 1, 0, out, NULL) == SOMA_STATUS_INVALID);
    soma_data_free(&ds);
}

static void test_delta(void) {
    const uint8_t vals[] = {0, 20, 26, 255};
    const size_t dim = 4, T = 6;
    soma_dataset ds = mem_set(2, dim, vals, 4);
    soma_data_opts o;
    soma_data_opts_default(&o);
    o.encoding = SOMA_ENCODING_DELTA;
    o.steps = (int)T;
    size_t idx[2] = {0, 1};
    for (int off = 0; off < 2; off++) {
        o.delta_off = off;
        float out[6 * 2 * 4];
        memset(out, 0x7f, sizeof out);
        int tc = -1;
        CHECK(soma_encode(&o, &ds, idx, 2, 1, 0, out, &tc) == 0);
        CHECK(tc == 0);
        int ok = 1;
        for (size_t t = 0; t < T; t++)
            for (size_t b = 0; b < 2; b++)
                for (size_t i = 0; i < dim; i++) {
                    float x = ds.x[b * dim + i] / 255.0f;
                    float want = (t == 0 && x >= 0.1f) ? 1.0f : 0.0f;
                    ok &= out[(t * 2 + b) * dim + i] == want;
                }
        CHECK(ok);
        CHECK(out[0 * dim + 2] == 1.0f && out[0 * dim + 1] == 0.0f && out[(2 * 2) * dim + 3] == 0.0f);
    }
    /* a zero threshold still needs a change */
    o.threshold = 0.0f;
    float out[6 * 2 * 4];
    CHECK(soma_encode(&o, &ds, idx, 2, 1, 0, out, NULL) == 0);
    CHECK(out[0] == 0.0f && out[1] == 1.0f && out[(1 * 2) * dim + 1] == 0.0f);
    soma_data_free(&ds);
}

static void test_shuffle(void) {
    enum { N = 1000 };
    size_t *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), *c = malloc(N * sizeof *c);
    char *seen = calloc(N, 1);
    soma_shuffle(a, N, 7, 3);
    int perm = 1;
    for (size_t i = 0; i < N; i++) {
        if (a[i] >= N || seen[a[i]]) perm = 0;
        else seen[a[i]] = 1;
    }
    CHECK(perm);
    size_t fixed = 0;
    for (size_t i = 0; i < N; i++) fixed += a[i] == i;
    CHECK(fixed < 20); /* expected ~1 fixed point for a random permutation */
    soma_shuffle(b, N, 7, 3);
    CHECK(memcmp(a, b, N * sizeof *a) == 0);
    soma_shuffle(c, N, 7, 4);
    CHECK(memcmp(a, c, N * sizeof *a) != 0);
    soma_shuffle(c, N, 8, 3);
    CHECK(memcmp(a, c, N * sizeof *a) != 0);
    /* unbiased: position 0 of a 3-element shuffle over many epochs */
    size_t hist[3] = {0};
    size_t p3[3];
    for (uint64_t e = 0; e < 30000; e++) {
        soma_shuffle(p3, 3, 11, e);
        hist[p3[0]]++;
    }
    for (int k = 0; k < 3; k++) CHECK_MSG(hist[k] > 9500 && hist[k] < 10500, "hist[%d] = %zu", k, hist[k]);
    size_t one = 99;
    soma_shuffle(&one, 1, 1, 1);
    CHECK(one == 0);
    soma_shuffle(NULL, 0, 1, 1);
    free(a); free(b); free(c); free(seen);
}

int main(void) {
    const char *d = t_tmpdir("data");
    if (!d) {
        fprintf(stderr, "cannot make a scratch directory\n");
        return 1;
    }
    snprintf(tmp, sizeof tmp, "%s", d);
    test_idx_ok();
    test_idx_bad();
    test_load_dir();
    test_fashion_mnist();
    test_opts_and_names();
    test_direct();
    test_rate();
    test_rate_exact();
    test_latency();
    test_delta();
    test_shuffle();
    return t_report("test_data");
}
