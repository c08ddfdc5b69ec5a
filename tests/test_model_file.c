/* test_model_file.c — the native model file (src/io/model_file.c): a saved
 * and reloaded net must be identical bit for bit, with every option field
 * restored; every kind of damaged file must give its own status and a
 * "PATH: reason" message, never a crash; a failed save must leave an
 * existing file untouched. */
#define _POSIX_C_SOURCE 200809L
#include "soma.h"
#include "testlib.h"
#include "net/net.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define HDR 28

static char dir[512];

static void path_of(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

static int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static uint32_t rd32(const unsigned char *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static void wr32(unsigned char *b, uint32_t v) { for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i)); }
static void wr64(unsigned char *b, uint64_t v) { for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i)); }

/* Recompute the header's payload length and CRC after editing a payload, so
 * that the reader's content checks, not the checksum, have to catch it. */
static void fix_header(unsigned char *f, size_t len) {
    wr64(f + 16, (uint64_t)(len - HDR));
    wr32(f + 24, (uint32_t)crc32(crc32(0L, Z_NULL, 0), f + HDR, (uInt)(len - HDR)));
}

/* Offset of a byte pattern in a buffer, or -1. */
static long find_bytes(const unsigned char *hay, size_t n, const void *needle, size_t m) {
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0) return (long)i;
    return -1;
}

/* Offset of a length-prefixed string in the file, or -1. */
static long find_str(const unsigned char *f, size_t n, const char *s) {
    unsigned char pat[256];
    size_t m = strlen(s);
    wr32(pat, (uint32_t)m);
    memcpy(pat + 4, s, m);
    return find_bytes(f, n, pat, m + 4);
}

/* input 6 -> lif 5 (recurrent, beta learnable per neuron) -> synaptic 3 (reset zero). */
static soma_net *build_net(void) {
    soma_net *net = NULL;
    size_t in, hid, out;
    int ok = soma_net_create(&net) == 0;
    ok = ok && soma_net_add_pop(net, "in", "input", 6, &in) == 0;
    ok = ok && soma_net_add_pop(net, "hidden", "lif", 5, &hid) == 0;
    ok = ok && soma_net_add_pop(net, "out", "synaptic", 3, &out) == 0;
    ok = ok && soma_net_set_param(net, hid, "beta", 0.8125f) == 0;
    ok = ok && soma_net_set_param(net, hid, "threshold", 1.375f) == 0;
    ok = ok && soma_net_set_learn(net, hid, "beta", SOMA_LEARN_NEURON) == 0;
    ok = ok && soma_net_set_recurrent(net, hid, 1) == 0;
    ok = ok && soma_net_set_param(net, out, "reset", 1.0f) == 0; /* "zero" */
    ok = ok && soma_net_set_param(net, out, "alpha", 0.71f) == 0;
    ok = ok && soma_net_set_learn(net, out, "threshold", SOMA_LEARN_LAYER) == 0;
    ok = ok && soma_net_connect_dense(net, in, hid, 1) == 0;
    ok = ok && soma_net_connect_dense(net, hid, out, 0) == 0;
    ok = ok && soma_net_init_weights(net, 42) == 0;
    CHECK_MSG(ok, "building the test net: %s", net ? soma_net_errmsg(net) : "no net");
    /* Learned per-neuron values differ from the set value, as after training:
     * the file must keep the tensor, not re-derive it from the set value. */
    soma_tensor t;
    if (ok && soma_net_tensor_find(net, "hidden.beta", &t) == 0)
        for (size_t i = 0; i < t.rows * t.cols; i++) t.data[i] = 0.5f + 0.0625f * (float)i;
    else
        CHECK_MSG(0, "tensor hidden.beta missing");
    return net;
}

static void make_opts(soma_data_opts *d, soma_train_opts *t) {
    soma_data_opts_default(d);
    soma_train_opts_default(t);
    snprintf(d->dataset, sizeof d->dataset, "mnist");
    snprintf(d->dir, sizeof d->dir, "/data/some where/mnist-ü");
    d->encoding = SOMA_ENCODING_LATENCY;
    d->steps = 37;
    d->gain = 1.75f;
    d->threshold = 0.03125f;
    d->tau = 4.5f;
    d->delta_off = 1;
    d->readout = SOMA_READOUT_MEMBRANE;
    d->limit_train = 12345;
    d->limit_test = (size_t)5000000000ull;
    d->bin_ms = 12.5f;
    t->epochs = 7;
    t->batch = 96;
    t->loss = SOMA_LOSS_MSE_COUNT;
    t->optimizer = SOMA_OPTIMIZER_ADAMW;
    t->lr = 3.5e-4f;
    t->momentum = 0.85f;
    t->beta1 = 0.8f;
    t->beta2 = 0.995f;
    t->eps = 1e-7f;
    t->weight_decay = 0.0125f;
    t->clip_norm = 2.5f;
    t->schedule = SOMA_SCHEDULE_COSINE;
    t->step_size = 3;
    t->gamma = 0.25f;
    t->lr_min = 1e-6f;
    t->rate_penalty = 0.003f;
    t->surrogate = SOMA_SURROGATE_ATAN;
    t->surrogate_param = 3.25f;
    t->correct_rate = 0.7f;
    t->incorrect_rate = 0.05f;
    t->threads = 3;
    t->seed = 0xfedcba9876543210ull;
    t->max_batches = -17;
}

static int same_f(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

static void compare_opts(const soma_data_opts *a, const soma_data_opts *b, const soma_train_opts *s,
                         const soma_train_opts *t) {
    CHECK(strcmp(a->dataset, b->dataset) == 0);
    CHECK(strcmp(a->dir, b->dir) == 0);
    CHECK(a->encoding == b->encoding);
    CHECK(a->steps == b->steps);
    CHECK(same_f(a->gain, b->gain));
    CHECK(same_f(a->threshold, b->threshold));
    CHECK(same_f(a->tau, b->tau));
    CHECK(a->delta_off == b->delta_off);
    CHECK(a->readout == b->readout);
    CHECK(a->limit_train == b->limit_train);
    CHECK(a->limit_test == b->limit_test);
    CHECK(a->bin_ms == b->bin_ms);
    CHECK(s->epochs == t->epochs);
    CHECK(s->batch == t->batch);
    CHECK(s->loss == t->loss);
    CHECK(s->optimizer == t->optimizer);
    CHECK(same_f(s->lr, t->lr));
    CHECK(same_f(s->momentum, t->momentum));
    CHECK(same_f(s->beta1, t->beta1));
    CHECK(same_f(s->beta2, t->beta2));
    CHECK(same_f(s->eps, t->eps));
    CHECK(same_f(s->weight_decay, t->weight_decay));
    CHECK(same_f(s->clip_norm, t->clip_norm));
    CHECK(s->schedule == t->schedule);
    CHECK(s->step_size == t->step_size);
    CHECK(same_f(s->gamma, t->gamma));
    CHECK(same_f(s->lr_min, t->lr_min));
    CHECK(same_f(s->rate_penalty, t->rate_penalty));
    CHECK(s->surrogate == t->surrogate);
    CHECK(same_f(s->surrogate_param, t->surrogate_param));
    CHECK(same_f(s->correct_rate, t->correct_rate));
    CHECK(same_f(s->incorrect_rate, t->incorrect_rate));
    /* Threads are a run setting, not saved (format version 3): a load gives 0. */
    (void)s;
    CHECK(t->threads == 0);
    CHECK(s->seed == t->seed);
    CHECK(s->max_batches == t->max_batches);
}

static void compare_nets(soma_net *a, soma_net *b) {
    size_t np = soma_net_pop_count(a), nchecked = 0;
    CHECK(np == 3);
    CHECK(soma_net_pop_count(b) == np);
    for (size_t i = 0; i < np && i < soma_net_pop_count(b); i++) {
        soma_pop_info x, y;
        CHECK(soma_net_pop_info(a, i, &x) == 0);
        CHECK(soma_net_pop_info(b, i, &y) == 0);
        CHECK_MSG(strcmp(x.name, y.name) == 0, "pop %zu: %s vs %s", i, x.name, y.name);
        CHECK_MSG(strcmp(x.model, y.model) == 0, "pop %zu: %s vs %s", i, x.model, y.model);
        CHECK(x.size == y.size);
        CHECK(x.recurrent == y.recurrent);
        size_t nparam = 0;
        const soma_model *m = soma_model_find(x.model);
        CHECK(m != NULL);
        const soma_param_desc *pd = m ? soma_model_params(m, &nparam) : NULL;
        nchecked += nparam;
        for (size_t k = 0; k < nparam; k++) {
            float va = -1.0f, vb = -2.0f;
            CHECK(soma_net_get_param(a, i, pd[k].name, &va) == 0);
            CHECK(soma_net_get_param(b, i, pd[k].name, &vb) == 0);
            CHECK_MSG(same_f(va, vb), "%s.%s: %g vs %g", x.name, pd[k].name, va, vb);
            CHECK_MSG(soma_net_get_learn(a, i, pd[k].name) == soma_net_get_learn(b, i, pd[k].name), "%s.%s learn",
                      x.name, pd[k].name);
        }
    }
    CHECK(nchecked == 8); /* lif: beta, threshold, reset, tau_m; synaptic: alpha, beta, threshold, reset */
    size_t nj = soma_net_proj_count(a);
    CHECK(nj == 2);
    CHECK(soma_net_proj_count(b) == nj);
    for (size_t i = 0; i < nj && i < soma_net_proj_count(b); i++) {
        size_t f1 = 9, t1 = 9, f2 = 8, t2 = 8;
        int b1 = 7, b2 = 6;
        CHECK(soma_net_proj_info(a, i, &f1, &t1, &b1) == 0);
        CHECK(soma_net_proj_info(b, i, &f2, &t2, &b2) == 0);
        CHECK(f1 == f2 && t1 == t2 && b1 == b2);
        double d1 = 1, d2 = 2;
        int p1 = 3, p2 = 4;
        CHECK(soma_net_proj_timing(a, i, &d1, &p1) == soma_net_proj_timing(b, i, &d2, &p2) && d1 == d2 && p1 == p2);
    }
    size_t nt = soma_net_tensor_count(a);
    CHECK(nt == 6); /* in->hidden weight+bias, hidden->out weight, hidden recurrent, hidden.beta, out.threshold */
    CHECK(soma_net_tensor_count(b) == nt);
    for (size_t i = 0; i < nt && i < soma_net_tensor_count(b); i++) {
        soma_tensor x, y;
        CHECK(soma_net_tensor(a, i, &x) == 0);
        CHECK(soma_net_tensor(b, i, &y) == 0);
        CHECK_MSG(strcmp(x.name, y.name) == 0, "tensor %zu: %s vs %s", i, x.name, y.name);
        CHECK(x.rows == y.rows && x.cols == y.cols);
        if (x.rows == y.rows && x.cols == y.cols)
            CHECK_MSG(memcmp(x.data, y.data, x.rows * x.cols * sizeof(float)) == 0, "tensor %s data differs", x.name);
    }
}

/* Load a file expected to be refused with `status`; checks *net = NULL, the
 * "PATH: " prefix, and (if not NULL) a phrase in the message. */
static void expect_fail(const char *path, int status, const char *phrase, const char *label) {
    soma_net *net = (soma_net *)(uintptr_t)1; /* must be overwritten with NULL */
    soma_data_opts d;
    soma_train_opts t;
    memset(&d, 0x5a, sizeof d);
    memset(&t, 0x5a, sizeof t);
    char err[1024] = "untouched";
    int rc = soma_model_load(path, &net, &d, &t, err, sizeof err);
    CHECK_MSG(rc == status, "%s: got %s (%s), expected %s", label, soma_status_name(rc), err, soma_status_name(status));
    CHECK_MSG(net == NULL, "%s: *net not NULL", label);
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s: ", path);
    CHECK_MSG(starts_with(err, prefix) && strlen(err) > strlen(prefix), "%s: message '%s'", label, err);
    if (phrase) CHECK_MSG(strstr(err, phrase) != NULL, "%s: '%s' lacks '%s'", label, err, phrase);
    /* Caller's options are untouched by a failed load. */
    unsigned char pat[sizeof d > sizeof t ? sizeof d : sizeof t];
    memset(pat, 0x5a, sizeof pat);
    CHECK_MSG(memcmp(&d, pat, sizeof d) == 0 && memcmp(&t, pat, sizeof t) == 0, "%s: options written on failure", label);
    if (net && net != (soma_net *)(uintptr_t)1) soma_net_free(net);
}

static void test_roundtrip(const char *good, unsigned char **file, size_t *flen) {
    soma_net *net = build_net();
    soma_data_opts d;
    soma_train_opts t;
    make_opts(&d, &t);
    char err[1024] = "";
    int rc = soma_model_save(good, net, &d, &t, err, sizeof err);
    CHECK_MSG(rc == 0, "save: %s", err);

    soma_net *back = NULL;
    soma_data_opts d2;
    soma_train_opts t2;
    memset(&d2, 0x33, sizeof d2);
    memset(&t2, 0x33, sizeof t2);
    rc = soma_model_load(good, &back, &d2, &t2, err, sizeof err);
    CHECK_MSG(rc == 0, "load: %s", err);
    CHECK(back != NULL);
    if (back) {
        compare_nets(net, back);
        compare_opts(&d, &d2, &t, &t2);
        /* A loaded net counts as initialised, so a trainer keeps its weights. */
        CHECK(back->initialised == 1);
        /* Saving the loaded net again gives the very same bytes. */
        char again[600];
        path_of(again, sizeof again, "again.soma");
        CHECK_MSG(soma_model_save(again, back, &d2, &t2, err, sizeof err) == 0, "resave: %s", err);
        size_t n1 = 0, n2 = 0;
        unsigned char *b1 = t_read_file(good, &n1), *b2 = t_read_file(again, &n2);
        CHECK(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0);
        free(b1);
        free(b2);
        soma_net_free(back);
    }

    /* data and train may be NULL on load; err may be NULL too. */
    back = NULL;
    CHECK(soma_model_load(good, &back, NULL, NULL, NULL, 0) == 0);
    CHECK(back != NULL);
    if (back) { compare_nets(net, back); soma_net_free(back); }

    /* No temp file is left next to the model. */
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", good, (long)getpid());
    CHECK(access(tmp, F_OK) != 0);

    *file = t_read_file(good, flen);
    CHECK(*file != NULL && *flen > HDR);
    if (*file) {
        CHECK(memcmp(*file, SOMA_MODEL_MAGIC, 8) == 0);
        CHECK(rd32(*file + 8) == 3); /* no projection timings: the oldest version that holds the net */
        CHECK(rd32(*file + 12) == 0);
    }
    soma_net_free(net);
}

static void test_damage(const unsigned char *good, size_t len) {
    char p[600];
    path_of(p, sizeof p, "bad.soma");
    unsigned char *f = malloc(len + 64);
    if (!f) { CHECK(0); return; }

    /* Truncation at the named lengths, each with its own message. */
    size_t cuts[] = {0, 7, 20, len / 2, len - 1};
    const char *phrases[] = {"not a soma model file", "truncated", "truncated", "truncated: expected", "truncated: expected"};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        CHECK(t_write_file(p, good, cuts[i]) == 0);
        char label[64];
        snprintf(label, sizeof label, "truncated at %zu", cuts[i]);
        expect_fail(p, SOMA_STATUS_FORMAT, phrases[i], label);
    }
    char want[128];
    snprintf(want, sizeof want, "truncated: expected %zu bytes, found %zu", len, len - 1);
    CHECK(t_write_file(p, good, len - 1) == 0);
    expect_fail(p, SOMA_STATUS_FORMAT, want, "exact truncation message");
    /* ...and at every other length: an error, never a crash. */
    for (size_t n = 0; n < len; n++) {
        CHECK(t_write_file(p, good, n) == 0);
        soma_net *net = NULL;
        int rc = soma_model_load(p, &net, NULL, NULL, NULL, 0);
        CHECK_MSG(rc == SOMA_STATUS_FORMAT && net == NULL, "cut at %zu: %s", n, soma_status_name(rc));
        if (net) soma_net_free(net);
    }
    /* Extra bytes after the payload. */
    memcpy(f, good, len);
    f[len] = 0;
    CHECK(t_write_file(p, f, len + 1) == 0);
    expect_fail(p, SOMA_STATUS_FORMAT, "expected", "trailing byte");

    /* Any single flipped payload byte is caught by the CRC. */
    for (size_t i = HDR; i < len; i++) {
        memcpy(f, good, len);
        f[i] ^= (unsigned char)(1u << (i % 8));
        CHECK(t_write_file(p, f, len) == 0);
        if (i == HDR + (len - HDR) / 2) expect_fail(p, SOMA_STATUS_CHECKSUM, "checksum", "flipped payload byte");
        soma_net *net = NULL;
        int rc = soma_model_load(p, &net, NULL, NULL, NULL, 0);
        CHECK_MSG(rc == SOMA_STATUS_CHECKSUM && net == NULL, "flip at %zu: %s", i, soma_status_name(rc));
        if (net) soma_net_free(net);
    }
    /* A damaged CRC field itself. */
    memcpy(f, good, len);
    f[25] ^= 0x10;
    CHECK(t_write_file(p, f, len) == 0);
    expect_fail(p, SOMA_STATUS_CHECKSUM, "checksum", "damaged crc field");

    /* Another format version: refused, with how to convert. */
    memcpy(f, good, len);
    wr32(f + 8, 5);
    CHECK(t_write_file(p, f, len) == 0);
    expect_fail(p, SOMA_STATUS_VERSION, "format version 5, this soma reads versions 2 to 4; retrain", "version 5");
    /* A version-3 payload labelled 4 lacks the projections' timings. */
    wr32(f + 8, 4);
    CHECK(t_write_file(p, f, len) == 0);
    expect_fail(p, SOMA_STATUS_FORMAT, NULL, "version 3 labelled 4");
    wr32(f + 8, 0);
    CHECK(t_write_file(p, f, len) == 0);
    expect_fail(p, SOMA_STATUS_VERSION, "format version 0", "version 0");
    wr32(f + 8, 1);
    CHECK(t_write_file(p, f, len) == 0);
    expect_fail(p, SOMA_STATUS_VERSION, "format version 1", "version 1");
    expect_fail(p, SOMA_STATUS_VERSION, "retrain the model, or load it with soma 0.1 and save it again",
                "version 1 says how to convert");

    /* Wrong magic (also: a text file). */
    memcpy(f, good, len);
    f[3] = 'X';
    CHECK(t_write_file(p, f, len) == 0);
    expect_fail(p, SOMA_STATUS_FORMAT, "not a soma model file", "wrong magic");
    CHECK(t_write_file(p, "network:\n  populations: {}\n", 28) == 0);
    expect_fail(p, SOMA_STATUS_FORMAT, "not a soma model file", "yaml file");

    /* Unknown header flags. */
    memcpy(f, good, len);
    wr32(f + 12, 1);
    CHECK(t_write_file(p, f, len) == 0);
    expect_fail(p, SOMA_STATUS_FORMAT, "flags", "flags");

    /* Inconsistent content behind a valid checksum. */
    long at = find_str(good, len, "synaptic");
    CHECK(at > HDR);
    if (at > HDR) {
        memcpy(f, good, len);
        f[at + 4 + 7] = 'X';
        fix_header(f, len);
        CHECK(t_write_file(p, f, len) == 0);
        expect_fail(p, SOMA_STATUS_FORMAT, "unknown model 'synaptiX'", "unknown model");
    }
    at = find_str(good, len, "in->hidden.weight");
    CHECK(at > HDR);
    if (at > HDR) {
        size_t rows_at = (size_t)at + 4 + strlen("in->hidden.weight");
        memcpy(f, good, len);
        CHECK(rd32(f + rows_at) == 5);
        wr32(f + rows_at, 6);
        fix_header(f, len);
        CHECK(t_write_file(p, f, len) == 0);
        expect_fail(p, SOMA_STATUS_FORMAT, "shape 6x6", "shape mismatch");

        memcpy(f, good, len);
        wr32(f + at, 0x7ffffff0u);
        fix_header(f, len);
        CHECK(t_write_file(p, f, len) == 0);
        expect_fail(p, SOMA_STATUS_FORMAT, "too long", "string too long");

        /* A tensor name the net does not have. */
        memcpy(f, good, len);
        f[at + 4] = 'X';
        fix_header(f, len);
        CHECK(t_write_file(p, f, len) == 0);
        expect_fail(p, SOMA_STATUS_FORMAT, "Xn->hidden.weight", "unknown tensor");
    }
    /* The population count sits right before the first population's name. */
    unsigned char first[] = {2, 0, 0, 0, 'i', 'n', 5, 0, 0, 0, 'i', 'n', 'p', 'u', 't'};
    at = find_bytes(good, len, first, sizeof first);
    CHECK(at > HDR + 4);
    if (at > HDR + 4) {
        memcpy(f, good, len);
        CHECK(rd32(f + at - 4) == 3);
        wr32(f + at - 4, 0xffffffffu);
        fix_header(f, len);
        CHECK(t_write_file(p, f, len) == 0);
        expect_fail(p, SOMA_STATUS_FORMAT, "does not fit", "count beyond payload");

        /* Four populations announced, three present: the reader runs out. */
        memcpy(f, good, len);
        wr32(f + at - 4, 4);
        fix_header(f, len);
        CHECK(t_write_file(p, f, len) == 0);
        expect_fail(p, SOMA_STATUS_FORMAT, NULL, "one population too many");

        /* A population of 2^40 neurons must be refused, not allocated. */
        size_t size_at = (size_t)at + sizeof first;
        memcpy(f, good, len);
        CHECK(rd32(f + size_at) == 6);
        wr64(f + size_at, (uint64_t)1 << 40);
        fix_header(f, len);
        CHECK(t_write_file(p, f, len) == 0);
        expect_fail(p, SOMA_STATUS_FORMAT, "out of range", "huge population");
    }
    /* Bytes left over inside the payload. */
    memcpy(f, good, len);
    memset(f + len, 0, 4);
    fix_header(f, len + 4);
    CHECK(t_write_file(p, f, len + 4) == 0);
    expect_fail(p, SOMA_STATUS_FORMAT, "unexpected bytes", "trailing payload bytes");

    /* Random damage behind a valid checksum: never a crash or a leak (run
     * under the sanitizer build), always either a net or an error. */
    uint32_t s = 12345u;
    int refused = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(f, good, len);
        int nflip = 1 + it % 4;
        for (int k = 0; k < nflip; k++) {
            s = s * 1664525u + 1013904223u;
            size_t pos = HDR + (s >> 8) % (len - HDR);
            s = s * 1664525u + 1013904223u;
            f[pos] = (it & 1) ? (unsigned char)(s >> 24) : (unsigned char)(f[pos] ^ (1u << ((s >> 24) % 8)));
        }
        fix_header(f, len);
        CHECK(t_write_file(p, f, len) == 0);
        soma_net *net = NULL;
        char err[512] = "";
        int rc = soma_model_load(p, &net, NULL, NULL, err, sizeof err);
        if (rc == 0) {
            CHECK(net != NULL);
        } else {
            refused++;
            CHECK_MSG(net == NULL && starts_with(err, p), "fuzz %d: rc %d, '%s'", it, rc, err);
            CHECK_MSG(rc == SOMA_STATUS_FORMAT, "fuzz %d: %s: %s", it, soma_status_name(rc), err);
        }
        if (net) soma_net_free(net);
    }
    CHECK(refused > 0);

    /* Not there, a directory. */
    char missing[600];
    path_of(missing, sizeof missing, "missing.soma");
    expect_fail(missing, SOMA_STATUS_IO, "No such file", "missing file");
    expect_fail(dir, SOMA_STATUS_IO, NULL, "directory");
    free(f);
}

/* Offset in the payload of a version-2 file's train.threads, from the
 * documented layout: producer string, data options (two strings, then
 * 4+4+4+4+4+4+4+8+8+4 bytes), then 84 bytes of training options. */
static size_t v2_threads_offset(const unsigned char *f, size_t len) {
    size_t o = HDR;
    for (int k = 0; k < 3; k++) { /* producer, data.dataset, data.dir */
        if (o + 4 > len) return 0;
        o += 4 + rd32(f + o);
    }
    o += 4 * 7 + 8 + 8 + 4; /* encoding .. bin_ms (after the two strings) */
    o += 84;                /* epochs .. incorrect_rate */
    return o <= len ? o : 0;
}

/* A version-2 file (train.threads after incorrect_rate, no time step), made
 * from a version-3 file by inserting the field the way soma 0.1 wrote it and
 * dropping the time step: it loads, the same net and options come back (dt
 * 0.1 ms, the default this test's net has), and its threads are ignored. */
static void test_version2(const unsigned char *good, size_t len) {
    size_t at = v2_threads_offset(good, len);
    CHECK(at > HDR);
    if (at <= HDR) return;
    unsigned char *f = malloc(len + 4);
    if (!f) { CHECK(0); return; }
    /* Version 3 has the time step (f64) after the training options (seed
     * and max_batches, 16 bytes past `at`); version 2 has none. */
    memcpy(f, good, at);
    wr32(f + at, 7); /* threads: 7 */
    memcpy(f + at + 4, good + at, 16);
    memcpy(f + at + 20, good + at + 24, len - at - 24);
    size_t n2 = len - 4; /* the v2 file: 4 bytes more (threads), 8 fewer (dt) */
    wr32(f + 8, 2);
    fix_header(f, n2);
    char p[600], g[600], err[1024] = "";
    path_of(p, sizeof p, "v2.soma");
    path_of(g, sizeof g, "v3.soma");
    CHECK(t_write_file(p, f, n2) == 0);
    CHECK(t_write_file(g, good, len) == 0);
    soma_net *a = NULL, *b = NULL;
    soma_data_opts da, db;
    soma_train_opts ta, tb;
    int rc = soma_model_load(p, &a, &da, &ta, err, sizeof err);
    CHECK_MSG(rc == 0, "version-2 file: %s", err);
    CHECK(soma_model_load(g, &b, &db, &tb, err, sizeof err) == 0);
    if (a && b) {
        compare_nets(b, a);
        compare_opts(&db, &da, &tb, &ta);
        CHECK(ta.threads == 0);
        CHECK(ta.seed == tb.seed && ta.max_batches == tb.max_batches);
    }
    soma_net_free(a);
    soma_net_free(b);
    /* The same bytes labelled version 3 are malformed. */
    wr32(f + 8, 3);
    CHECK(t_write_file(p, f, n2) == 0);
    a = NULL;
    CHECK(soma_model_load(p, &a, NULL, NULL, NULL, 0) == SOMA_STATUS_FORMAT && a == NULL);
    soma_net_free(a);
    free(f);
}

static void test_save_failures(const char *good) {
    soma_net *net = build_net();
    /* A different net, so an accidental overwrite would show. */
    soma_net *other = NULL;
    CHECK(soma_net_create(&other) == 0);
    CHECK(soma_net_add_pop(other, "x", "input", 2, NULL) == 0);
    CHECK(soma_net_add_pop(other, "y", "lif", 2, NULL) == 0);
    CHECK(soma_net_connect_dense(other, 0, 1, 0) == 0);
    CHECK(soma_net_init_weights(other, 1) == 0);
    char err[1024];

    /* Unwritable path. */
    err[0] = 0;
    int rc = soma_model_save("/nonexistent/x.soma", net, NULL, NULL, err, sizeof err);
    CHECK_MSG(rc == SOMA_STATUS_IO, "got %s", soma_status_name(rc));
    CHECK_MSG(starts_with(err, "/nonexistent/x.soma: "), "message '%s'", err);

    size_t n0 = 0, n1 = 0;
    unsigned char *before = t_read_file(good, &n0);
    CHECK(before != NULL);

    /* The temp file cannot be created (a directory sits on its name): the
     * save fails, the earlier file stays byte-identical, the blocker stays. */
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", good, (long)getpid());
    CHECK(mkdir(tmp, 0755) == 0);
    err[0] = 0;
    rc = soma_model_save(good, other, NULL, NULL, err, sizeof err);
    CHECK_MSG(rc == SOMA_STATUS_IO, "blocked temp: got %s", soma_status_name(rc));
    CHECK_MSG(strstr(err, "temporary") != NULL, "message '%s'", err);
    unsigned char *after = t_read_file(good, &n1);
    CHECK(after && before && n0 == n1 && memcmp(before, after, n0) == 0);
    free(after);
    struct stat st;
    CHECK(stat(tmp, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(rmdir(tmp) == 0);

    /* A stale regular temp file of our pid (left by a crash) is replaced. */
    CHECK(t_write_file(tmp, "stale", 5) == 0);
    CHECK(soma_model_save(good, net, NULL, NULL, err, sizeof err) == 0);
    CHECK(access(tmp, F_OK) != 0);

    /* rename fails (the target is a non-empty directory): IO, and the temp file is removed. */
    char d[600], inside[700], dtmp[700];
    path_of(d, sizeof d, "a-directory.soma");
    CHECK(mkdir(d, 0755) == 0);
    snprintf(inside, sizeof inside, "%s/keep", d);
    CHECK(t_write_file(inside, "k", 1) == 0);
    snprintf(dtmp, sizeof dtmp, "%s.tmp.%ld", d, (long)getpid());
    err[0] = 0;
    rc = soma_model_save(d, net, NULL, NULL, err, sizeof err);
    CHECK_MSG(rc == SOMA_STATUS_IO, "onto a directory: got %s", soma_status_name(rc));
    CHECK_MSG(strstr(err, "rename") != NULL, "message '%s'", err);
    CHECK(access(dtmp, F_OK) != 0);
    CHECK(access(inside, F_OK) == 0);

    /* A read-only directory: meaningless as root, who may write anyway. */
    if (geteuid() != 0) {
        char ro[600], rofile[700];
        path_of(ro, sizeof ro, "ro");
        CHECK(mkdir(ro, 0755) == 0);
        snprintf(rofile, sizeof rofile, "%s/m.soma", ro);
        CHECK(soma_model_save(rofile, net, NULL, NULL, err, sizeof err) == 0);
        size_t m0 = 0, m1 = 0;
        unsigned char *b0 = t_read_file(rofile, &m0);
        CHECK(chmod(ro, 0555) == 0);
        rc = soma_model_save(rofile, other, NULL, NULL, err, sizeof err);
        CHECK_MSG(rc == SOMA_STATUS_IO, "read-only dir: got %s", soma_status_name(rc));
        unsigned char *b1 = t_read_file(rofile, &m1);
        CHECK(b0 && b1 && m0 == m1 && memcmp(b0, b1, m0) == 0);
        free(b0);
        free(b1);
        CHECK(chmod(ro, 0755) == 0);
    }

    /* A successful save over the existing file replaces it. */
    CHECK(soma_model_save(good, other, NULL, NULL, err, sizeof err) == 0);
    after = t_read_file(good, &n1);
    CHECK(after && !(n0 == n1 && memcmp(before, after, n0) == 0));
    soma_net *back = NULL;
    CHECK(soma_model_load(good, &back, NULL, NULL, err, sizeof err) == 0);
    CHECK(back && soma_net_pop_count(back) == 2);
    /* Saved with NULL options: the defaults come back. */
    soma_data_opts dd, d0;
    soma_train_opts tt, t0;
    soma_data_opts_default(&d0);
    soma_train_opts_default(&t0);
    soma_net_free(back);
    back = NULL;
    CHECK(soma_model_load(good, &back, &dd, &tt, err, sizeof err) == 0);
    compare_opts(&d0, &dd, &t0, &tt);
    soma_net_free(back);
    free(after);
    free(before);

    /* Bad arguments. */
    CHECK(soma_model_save(NULL, net, NULL, NULL, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK(soma_model_save(good, NULL, NULL, NULL, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK(soma_model_load(good, NULL, NULL, NULL, err, sizeof err) == SOMA_STATUS_INVALID);
    soma_net_free(net);
    soma_net_free(other);
}

/* The time step is part of the net: a model of physical neurons trained at
 * dt = 1 ms came back at the default 0.1 ms and fired differently (the
 * regression found by running examples/fmnist-iaf.yaml's model). What a
 * model file cannot hold is refused by name. */
static void test_dt_and_refusals(void) {
    char p[600], err[512];
    path_of(p, sizeof p, "dt.soma");
    soma_net *net;
    soma_net_create(&net);
    size_t in, h;
    soma_net_add_pop(net, "in", "input", 3, &in);
    soma_net_add_pop(net, "h", "iaf_psc_exp", 4, &h);
    soma_net_connect_dense(net, in, h, 1);
    CHECK(soma_net_set_dt(net, 0.75) == 0);
    CHECK(soma_net_init_weights(net, 1) == 0);
    CHECK_MSG(soma_model_save(p, net, NULL, NULL, err, sizeof err) == 0, "%s", err);
    soma_net *back = NULL;
    CHECK_MSG(soma_model_load(p, &back, NULL, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(back && soma_net_dt(back) == 0.75);
    soma_net_free(back);
    CHECK(soma_net_set(net, h, "V_th", "uniform(-56mV, -54mV)") == 0);
    CHECK(soma_model_save(p, net, NULL, NULL, err, sizeof err) == SOMA_STATUS_UNSUPPORTED);
    CHECK_MSG(strstr(err, "'h'") && strstr(err, "V_th") && strstr(err, "per neuron"), "%s", err);
    soma_net_free(net);
}

/* Version 4: a dense projection's own delay and port survive a save and a
 * load; damaged timing fields are refused by name. */
static void test_timing(void) {
    char p[600], err[512];
    path_of(p, sizeof p, "timing.soma");
    soma_net *net;
    soma_net_create(&net);
    size_t in, h, o;
    soma_net_add_pop(net, "in", "input", 3, &in);
    soma_net_add_pop(net, "h", "iaf_psc_exp", 4, &h);
    soma_net_add_pop(net, "o", "iaf_psc_exp", 2, &o);
    soma_net_connect_dense(net, in, h, 1);
    soma_net_connect_dense(net, h, o, 0);
    CHECK(soma_net_proj_set_delay(net, 0, "0.7ms") == 0);
    CHECK(soma_net_proj_set_port(net, 1, SOMA_PORT_BY_SIGN) == 0);
    CHECK(soma_net_init_weights(net, 1) == 0);
    CHECK_MSG(soma_model_save(p, net, NULL, NULL, err, sizeof err) == 0, "%s", err);
    size_t len = 0;
    unsigned char *f = t_read_file(p, &len);
    CHECK(f && len > HDR && rd32(f + 8) == 4);
    soma_net *back = NULL;
    CHECK_MSG(soma_model_load(p, &back, NULL, NULL, err, sizeof err) == 0, "%s", err);
    double ms = -1;
    int port = -5;
    CHECK(back && soma_net_proj_timing(back, 0, &ms, &port) == 1 && ms == 0.7 && port == 0);
    CHECK(back && soma_net_proj_timing(back, 1, &ms, &port) == 2 && ms == 0 && port == SOMA_PORT_BY_SIGN);
    soma_tensor x, y;
    CHECK(back && soma_net_tensor_find(net, "h->o.weight", &x) == 0 && soma_net_tensor_find(back, "h->o.weight", &y) == 0
          && memcmp(x.data, y.data, 8 * sizeof(float)) == 0);
    soma_net_free(back);
    /* Projection 0's timing: u32 1, f64 0.7, i32 0, after its kind (0). */
    unsigned char pat[16] = {0, 0, 0, 0, 1, 0, 0, 0};
    double d7 = 0.7;
    uint64_t b7;
    memcpy(&b7, &d7, 8);
    wr64(pat + 8, b7);
    long at = f ? find_bytes(f, len, pat, sizeof pat) : -1;
    CHECK(at > HDR);
    if (at > HDR) {
        wr32(f + at + 4, 9);
        fix_header(f, len);
        CHECK(t_write_file(p, f, len) == 0);
        expect_fail(p, SOMA_STATUS_FORMAT, "projection 0: timing flags 9", "bad timing flags");
        wr32(f + at + 4, 1);
        wr64(f + at + 8, 0);
        fix_header(f, len);
        CHECK(t_write_file(p, f, len) == 0);
        expect_fail(p, SOMA_STATUS_FORMAT, "shorter than the time step", "zero delay");
    }
    free(f);
    soma_net_free(net);
}

int main(void) {
    const char *d = t_tmpdir("model_file");
    if (!d) { fprintf(stderr, "cannot create a scratch directory\n"); return 1; }
    snprintf(dir, sizeof dir, "%s", d);
    char good[600];
    path_of(good, sizeof good, "good.soma");

    unsigned char *file = NULL;
    size_t len = 0;
    test_roundtrip(good, &file, &len);
    if (file) test_damage(file, len);
    if (file) test_version2(file, len);
    free(file);
    test_dt_and_refusals();
    test_timing();
    test_save_failures(good);
    return t_report("test_model_file");
}
