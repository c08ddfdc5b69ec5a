/* model_file.c — the native model file: a net plus the data and training
 * options it was trained with, saved so that `soma_model_load` rebuilds the
 * same net bit for bit.
 *
 * The file is read and rebuilt only through the public net API, so it does
 * not depend on how the net lays out its memory.
 *
 * Layout (all numbers little-endian, floats as IEEE-754 binary32 bit patterns):
 *
 *   header, 28 bytes
 *     u8[8]  magic            SOMA_MODEL_MAGIC ("SOMAMDL\0")
 *     u32    format version   4 when a dense projection has a delay or a port of its
 *                             own, else 3 (so such files stay readable by soma
 *                             versions that read 3); versions 2 to 4 are read,
 *                             version 1 files are refused: re-save them with soma 0.1
 *     u32    flags            0 (no flags are defined; others are refused)
 *     u64    payload length   bytes after the header; must equal file size - 28
 *     u32    payload CRC-32   zlib crc32 of the payload bytes
 *   payload
 *     str    producer         e.g. "soma 0.1.0" (informational only)
 *     data options  (soma_data_opts, field by field)
 *       str dataset, str dir, i32 encoding, i32 steps, f32 gain,
 *       f32 threshold, f32 tau, i32 delta_off, i32 readout,
 *       u64 limit_train, u64 limit_test, f32 bin_ms
 *     training options  (soma_train_opts, field by field)
 *       i32 epochs, u64 batch, i32 loss, i32 optimizer, f32 lr, f32 momentum,
 *       f32 beta1, f32 beta2, f32 eps, f32 weight_decay, f32 clip_norm,
 *       i32 schedule, i32 step_size, f32 gamma, f32 lr_min, f32 rate_penalty,
 *       i32 surrogate, f32 surrogate_param, f32 correct_rate,
 *       f32 incorrect_rate, [v2 only] i32 threads, u64 seed, i64 max_batches
 *       (version 3 drops threads: the thread count is a run setting, given on
 *       the command line or in the experiment file, never saved with a
 *       trained model; a version-2 file's threads field is read and ignored,
 *       and a loaded model's train.threads is 0, all cores)
 *     f64    dt               [version 3] the net's time step in ms (version 2: 0.1)
 *     u32 population count, then per population:
 *       str name, str model, u64 size, u32 recurrent (0/1),
 *       u32 ndims (1..3), u64[ndims] shape
 *       u32 parameter count, then per parameter:
 *         str name, f32 value, u32 learn (soma_learn: 0 none, 1 layer, 2 neuron)
 *     u32 projection count, then per projection (in connection order):
 *       u32 from, u32 to (population indices), u32 bias (0/1),
 *       u32 kind (0 dense, 1 conv); for conv: u64 kernel, u64 stride,
 *            u64 padding, u32 pool (soma_pool: 0 none, 1 avg, 2 sum, 3 max), u64 pool_size
 *       [version 4] u32 timing (bit 0: a delay of its own, bit 1: a port of
 *            its own; 0 for conv), f64 delay (ms; 0 without), i32 port (a
 *            port index or -1, SOMA_PORT_BY_SIGN; 0 without)
 *     u32 tensor count, then per tensor (in soma_net_tensor order):
 *       str name, u64 rows, u64 cols, f32[rows*cols] data (row-major)
 *
 *   str = u32 byte length + that many bytes, no terminating NUL, no NUL inside.
 *
 * The payload must be consumed exactly. Any change to this layout is a new
 * format version; readers refuse versions they do not know rather than guess.
 *
 * Writing is atomic: the file is written to "PATH.tmp.<pid>" in the same
 * directory, flushed and fsync'ed, then renamed onto PATH, so a crash or a
 * full disk never leaves a half-written PATH behind (two threads of one
 * process must not save to the same path at the same time).
 *
 * Reading never trusts the file: every read from the payload goes through a
 * bounds-checked cursor, every count is checked against the bytes left before
 * anything is allocated for it, and every tensor must match, by name and
 * shape, the tensor the rebuilt net actually has.
 */
#define _POSIX_C_SOURCE 200809L
#include "soma.h"
#include "net/net.h"
#include "core/err.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define HEADER_BYTES 28u
/* Longest name or directory string the reader accepts (a sanity bound: a
 * corrupted length must not make us copy megabytes into a name). */
#define MAX_STR 4096u
/* Largest population the reader will ask the net to build (2^28 neurons). */
#define MAX_POP_SIZE ((uint64_t)1 << 28)
/* Smallest encoded size of each repeated record, used to refuse counts that
 * could not possibly fit in the bytes that are left. */
#define MIN_POP_BYTES (4u + 4u + 8u + 4u + 4u)
#define MIN_PARAM_BYTES (4u + 4u + 4u)
#define PROJ_BYTES (4u + 4u + 4u)
#define MIN_TENSOR_BYTES (4u + 8u + 8u)

/* "PATH: message" into a caller's buffer (which may be NULL). */
static void set_err(char *err, size_t errlen, const char *path, const char *fmt, ...) SOMA__PRINTF(4, 5);
static void set_err(char *err, size_t errlen, const char *path, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    soma__verrf(err, errlen, 0, path ? path : "(null)", fmt, ap);
    va_end(ap);
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n > 0) { /* zlib takes uInt lengths: feed large payloads in chunks */
        uInt chunk = n > (1u << 30) ? (uInt)(1u << 30) : (uInt)n;
        crc = crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)crc;
}

static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
/* Whether population pop has a projection onto itself: a connector's, made
 * dense by the trainer (its recurrent weights, zeros off the drawn
 * synapses). It is saved as the population's recurrent weights, the same
 * tensor "P->P.weight", which the simulator runs with the same one-step
 * delay; a model file has no dense projection onto a population itself. */
static int self_proj(const soma_net *net, size_t pop) {
    for (size_t i = 0; i < soma_net_proj_count(net); i++) {
        size_t from = 0, to = 0;
        int bias = 0;
        if (soma_net_proj_info(net, i, &from, &to, &bias) == 0 && from == pop && to == pop) return 1;
    }
    return 0;
}

static void le32(uint8_t *b, uint32_t v) { for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i)); }
static void le64(uint8_t *b, uint64_t v) { for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i)); }
static uint32_t get32(const uint8_t *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static uint64_t get64(const uint8_t *b) { return (uint64_t)get32(b) | (uint64_t)get32(b + 4) << 32; }
/* Two's-complement decoding without relying on implementation-defined casts. */
static int64_t u64_to_i64(uint64_t u) { return u <= INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1; }
static int32_t u32_to_i32(uint32_t u) { return u <= INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1; }

/* ------------------------------------------------------------- writing */

/* A growing byte buffer; `oom` sticks once an allocation failed so the
 * writers below need not check every call. */
typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    int oom;
} wbuf;

static uint8_t *wb_reserve(wbuf *b, size_t n) {
    if (b->oom) return NULL;
    if (n > SIZE_MAX - b->len) { b->oom = 1; return NULL; }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) {
            if (cap > SIZE_MAX / 2) { cap = b->len + n; break; }
            cap *= 2;
        }
        uint8_t *q = realloc(b->p, cap);
        if (!q) { b->oom = 1; return NULL; }
        b->p = q;
        b->cap = cap;
    }
    uint8_t *at = b->p + b->len;
    b->len += n;
    return at;
}
static void put_u32(wbuf *b, uint32_t v) { uint8_t *q = wb_reserve(b, 4); if (q) le32(q, v); }
static void put_u64(wbuf *b, uint64_t v) { uint8_t *q = wb_reserve(b, 8); if (q) le64(q, v); }
static void put_i32(wbuf *b, int v) { put_u32(b, (uint32_t)(int32_t)v); }
static void put_i64(wbuf *b, long v) { put_u64(b, (uint64_t)(int64_t)v); }
static void put_f32(wbuf *b, float v) { put_u32(b, f32_bits(v)); }
static void put_bytes(wbuf *b, const void *s, size_t n) { uint8_t *q = wb_reserve(b, n); if (q && n) memcpy(q, s, n); }
/* A string of at most `max` bytes (stops at the first NUL). */
static void put_strn(wbuf *b, const char *s, size_t max) {
    size_t n = 0;
    if (s) while (n < max && s[n]) n++;
    put_u32(b, (uint32_t)n);
    put_bytes(b, s, n);
}
static void put_str(wbuf *b, const char *s) { put_strn(b, s, MAX_STR); }

static void put_data_opts(wbuf *b, const soma_data_opts *d) {
    put_strn(b, d->dataset, sizeof d->dataset);
    put_strn(b, d->dir, sizeof d->dir);
    put_i32(b, d->encoding);
    put_i32(b, d->steps);
    put_f32(b, d->gain);
    put_f32(b, d->threshold);
    put_f32(b, d->tau);
    put_i32(b, d->delta_off);
    put_i32(b, d->readout);
    put_u64(b, (uint64_t)d->limit_train);
    put_u64(b, (uint64_t)d->limit_test);
    put_f32(b, d->bin_ms);
}

static void put_train_opts(wbuf *b, const soma_train_opts *t) {
    put_i32(b, t->epochs);
    put_u64(b, (uint64_t)t->batch);
    put_i32(b, t->loss);
    put_i32(b, t->optimizer);
    put_f32(b, t->lr);
    put_f32(b, t->momentum);
    put_f32(b, t->beta1);
    put_f32(b, t->beta2);
    put_f32(b, t->eps);
    put_f32(b, t->weight_decay);
    put_f32(b, t->clip_norm);
    put_i32(b, t->schedule);
    put_i32(b, t->step_size);
    put_f32(b, t->gamma);
    put_f32(b, t->lr_min);
    put_f32(b, t->rate_penalty);
    put_i32(b, t->surrogate);
    put_f32(b, t->surrogate_param);
    put_f32(b, t->correct_rate);
    put_f32(b, t->incorrect_rate);
    put_u64(b, t->seed);
    put_i64(b, t->max_batches);
}

/* Serialise the net into b. Returns 0 or a status with the message in err. */
static int put_net(wbuf *b, soma_net *net, int version, const char *path, char *err, size_t errlen) {
    size_t npop = soma_net_pop_count(net);
    if (npop > UINT32_MAX) { set_err(err, errlen, path, "too many populations (%zu)", npop); return SOMA_STATUS_INVALID; }
    /* What a model file cannot hold yet is refused, not dropped. */
    for (size_t i = 0; i < net->nproj; i++)
        if (net->projs[i].sparse) {
            set_err(err, errlen, path, "projection %s -> %s is sparse (a connector's synapses); model files hold dense and conv projections",
                    net->pops[net->projs[i].from].name, net->pops[net->projs[i].to].name);
            return SOMA_STATUS_UNSUPPORTED;
        }
    for (size_t i = 0; i < npop; i++)
        for (size_t k = 0; k < SOMA_MAX_PARAMS; k++)
            if (net->pops[i].val[k]) {
                set_err(err, errlen, path, "population '%s': %s differs per neuron ('%s'); model files hold one value per population",
                        net->pops[i].name, net->pops[i].model->params[k].name, net->pops[i].val[k]->text);
                return SOMA_STATUS_UNSUPPORTED;
            }
    double dt = soma_net_dt(net);
    uint64_t dtb;
    memcpy(&dtb, &dt, 8);
    put_u64(b, dtb);
    put_u32(b, (uint32_t)npop);
    for (size_t i = 0; i < npop; i++) {
        soma_pop_info info;
        int rc = soma_net_pop_info(net, i, &info);
        if (rc) { set_err(err, errlen, path, "population %zu: %s", i, soma_net_errmsg(net)); return rc; }
        const soma_model *m = soma_model_find(info.model);
        if (!m) {
            set_err(err, errlen, path, "population '%s' has unknown model '%s'", info.name, info.model);
            return SOMA_STATUS_INVALID;
        }
        size_t np = 0;
        const soma_param_desc *pd = soma_model_params(m, &np);
        put_str(b, info.name);
        put_str(b, info.model);
        put_u64(b, (uint64_t)info.size);
        put_u32(b, info.recurrent || self_proj(net, i) ? 1u : 0u);
        size_t dims[3], nd = 1;
        soma_net_get_shape(net, i, dims, &nd);
        put_u32(b, (uint32_t)nd);
        for (size_t k = 0; k < nd; k++) put_u64(b, (uint64_t)dims[k]);
        put_u32(b, (uint32_t)np);
        for (size_t k = 0; k < np; k++) {
            float v = 0.0f;
            rc = soma_net_get_param(net, i, pd[k].name, &v);
            if (rc) {
                set_err(err, errlen, path, "population '%s', parameter '%s': %s", info.name, pd[k].name,
                        soma_net_errmsg(net));
                return rc;
            }
            put_str(b, pd[k].name);
            put_f32(b, v);
            put_u32(b, (uint32_t)soma_net_get_learn(net, i, pd[k].name));
        }
    }

    size_t nproj = soma_net_proj_count(net), nself = 0;
    for (size_t p = 0; p < soma_net_pop_count(net); p++) nself += self_proj(net, p);
    if (nproj > UINT32_MAX) { set_err(err, errlen, path, "too many projections (%zu)", nproj); return SOMA_STATUS_INVALID; }
    put_u32(b, (uint32_t)(nproj - nself));
    for (size_t i = 0; i < nproj; i++) {
        size_t from = 0, to = 0;
        int bias = 0;
        int rc = soma_net_proj_info(net, i, &from, &to, &bias);
        if (rc) { set_err(err, errlen, path, "projection %zu: %s", i, soma_net_errmsg(net)); return rc; }
        if (from == to) continue; /* saved as the population's recurrent weights (self_proj) */
        put_u32(b, (uint32_t)from);
        put_u32(b, (uint32_t)to);
        put_u32(b, bias ? 1u : 0u);
        soma_conv cv;
        int conv = soma_net_proj_conv(net, i, &cv);
        put_u32(b, conv == 1 ? 1u : 0u);
        if (conv == 1) {
            put_u64(b, (uint64_t)cv.kernel);
            put_u64(b, (uint64_t)cv.stride);
            put_u64(b, (uint64_t)cv.padding);
            put_u32(b, (uint32_t)cv.pool);
            put_u64(b, (uint64_t)cv.pool_size);
        }
        if (version >= 4) {
            double ms = 0;
            int port = 0, tm = soma_net_proj_timing(net, i, &ms, &port);
            uint64_t msb;
            memcpy(&msb, &ms, 8);
            put_u32(b, (uint32_t)(tm > 0 ? tm : 0));
            put_u64(b, msb);
            put_i32(b, port);
        }
    }

    size_t nt = soma_net_tensor_count(net);
    if (nt == 0 && nproj > 0) { /* the count is 0 when the weights could not be allocated */
        set_err(err, errlen, path, "cannot read the weights: %s", soma_net_errmsg(net));
        return SOMA_STATUS_NOMEM;
    }
    if (nt > UINT32_MAX) { set_err(err, errlen, path, "too many tensors (%zu)", nt); return SOMA_STATUS_INVALID; }
    put_u32(b, (uint32_t)nt);
    for (size_t i = 0; i < nt; i++) {
        soma_tensor t;
        int rc = soma_net_tensor(net, i, &t);
        if (rc) { set_err(err, errlen, path, "tensor %zu: %s", i, soma_net_errmsg(net)); return rc; }
        size_t n = t.rows * t.cols;
        if (t.rows && n / t.rows != t.cols) {
            set_err(err, errlen, path, "tensor '%s': shape %zux%zu overflows", t.name, t.rows, t.cols);
            return SOMA_STATUS_INVALID;
        }
        if (n && !t.data) {
            set_err(err, errlen, path, "tensor '%s' has no data (weights not allocated)", t.name);
            return SOMA_STATUS_INVALID;
        }
        put_str(b, t.name);
        put_u64(b, (uint64_t)t.rows);
        put_u64(b, (uint64_t)t.cols);
        if (n > SIZE_MAX / 4) { b->oom = 1; break; }
        uint8_t *q = wb_reserve(b, n * 4);
        if (!q) break;
        for (size_t j = 0; j < n; j++) le32(q + 4 * j, f32_bits(t.data[j]));
    }
    return 0;
}

/* Write all of buf to f; 0 on success. */
static int write_all(FILE *f, const void *buf, size_t n) { return n == 0 || fwrite(buf, 1, n, f) == n ? 0 : -1; }

/* Best effort: make the rename itself durable by syncing the directory.
 * Some file systems refuse fsync on a directory; that is not an error. */
static void sync_dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) dir = strdup(".");
    else if (slash == path) dir = strdup("/");
    else {
        dir = malloc((size_t)(slash - path) + 1);
        if (dir) { memcpy(dir, path, (size_t)(slash - path)); dir[slash - path] = 0; }
    }
    if (!dir) return;
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) { (void)fsync(fd); close(fd); }
    free(dir);
}

int soma_model_save(const char *path, soma_net *net, const soma_data_opts *data, const soma_train_opts *train,
                    char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!path || !*path || !net) {
        set_err(err, errlen, path, "soma_model_save needs a path and a net");
        return SOMA_STATUS_INVALID;
    }
    soma_data_opts dflt_data;
    soma_train_opts dflt_train;
    if (!data) { soma_data_opts_default(&dflt_data); data = &dflt_data; }
    if (!train) { soma_train_opts_default(&dflt_train); train = &dflt_train; }

    /* Serialise everything first: a net that cannot be described must not
     * cost the caller an existing file, nor leave a temp file behind. */
    wbuf b = {0};
    put_str(&b, "soma " SOMA_VERSION_STRING);
    put_data_opts(&b, data);
    put_train_opts(&b, train);
    /* The oldest version that holds the net: 4 only for projection timings. */
    int version = 3;
    for (size_t i = 0; i < soma_net_proj_count(net); i++)
        if (soma_net_proj_timing(net, i, NULL, NULL) > 0) version = 4;
    int rc = put_net(&b, net, version, path, err, errlen);
    if (rc) { free(b.p); return rc; }
    if (b.oom) {
        free(b.p);
        set_err(err, errlen, path, "out of memory while serialising the model");
        return SOMA_STATUS_NOMEM;
    }

    uint8_t hdr[HEADER_BYTES];
    memcpy(hdr, SOMA_MODEL_MAGIC, 8);
    le32(hdr + 8, (uint32_t)version);
    le32(hdr + 12, 0);
    le64(hdr + 16, (uint64_t)b.len);
    le32(hdr + 24, crc32_of(b.p, b.len));

    size_t tlen = strlen(path) + 32;
    char *tmp = malloc(tlen);
    if (!tmp) {
        free(b.p);
        set_err(err, errlen, path, "out of memory");
        return SOMA_STATUS_NOMEM;
    }
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());

    /* O_EXCL: never write through something that is already there (a link,
     * another writer's file). A stale temp of our own pid is a regular file
     * left by a crash; remove it once and retry. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0 && errno == EEXIST) {
        struct stat st;
        if (lstat(tmp, &st) == 0 && S_ISREG(st.st_mode) && unlink(tmp) == 0)
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        else
            errno = EEXIST;
    }
    if (fd < 0) {
        set_err(err, errlen, path, "cannot create temporary file %s: %s", tmp, strerror(errno));
        free(tmp);
        free(b.p);
        return SOMA_STATUS_IO;
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int e = errno;
        close(fd);
        unlink(tmp);
        set_err(err, errlen, path, "cannot open temporary file %s: %s", tmp, strerror(e));
        free(tmp);
        free(b.p);
        return SOMA_STATUS_IO;
    }

    const char *what = NULL;
    if (write_all(f, hdr, sizeof hdr) || write_all(f, b.p, b.len)) what = "write";
    else if (fflush(f) != 0) what = "write";
    else if (fsync(fileno(f)) != 0) what = "fsync";
    int e = errno;
    if (fclose(f) != 0 && !what) { what = "close"; e = errno; }
    free(b.p);
    if (!what && rename(tmp, path) != 0) { what = "rename"; e = errno; }
    if (what) {
        unlink(tmp);
        if (!strcmp(what, "rename"))
            set_err(err, errlen, path, "cannot rename %s onto it: %s", tmp, strerror(e));
        else
            set_err(err, errlen, path, "%s failed on temporary file %s: %s", what, tmp, strerror(e));
        free(tmp);
        return SOMA_STATUS_IO;
    }
    free(tmp);
    sync_dir_of(path);
    return SOMA_STATUS_OK;
}

/* ------------------------------------------------------------- reading */

/* A bounds-checked view of the payload. The first failure records its
 * message and status; later reads then fail without touching memory. */
typedef struct cursor {
    const uint8_t *p;
    size_t len, pos;
    const char *path;
    char *err;
    size_t errlen;
    int status; /* 0, or the first error */
    uint32_t version; /* of the file being read */
} cursor;

static int cur_fail(cursor *c, int status, const char *fmt, ...) SOMA__PRINTF(3, 4);
static int cur_fail(cursor *c, int status, const char *fmt, ...) {
    if (c->status) return c->status;
    c->status = status;
    va_list ap;
    va_start(ap, fmt);
    soma__verrf(c->err, c->errlen, status, c->path, fmt, ap);
    va_end(ap);
    return status;
}

static size_t cur_left(const cursor *c) { return c->len - c->pos; }

/* Pointer to the next n bytes, or NULL (with the error set) if they are not there. */
static const uint8_t *cur_take(cursor *c, size_t n, const char *what) {
    if (c->status) return NULL;
    if (n > cur_left(c)) {
        cur_fail(c, SOMA_STATUS_FORMAT, "payload ends inside %s (offset %zu needs %zu bytes, %zu left)", what,
                 c->pos, n, cur_left(c));
        return NULL;
    }
    const uint8_t *q = c->p + c->pos;
    c->pos += n;
    return q;
}
static uint32_t rd_u32(cursor *c, const char *what) { const uint8_t *q = cur_take(c, 4, what); return q ? get32(q) : 0; }
static uint64_t rd_u64(cursor *c, const char *what) { const uint8_t *q = cur_take(c, 8, what); return q ? get64(q) : 0; }
static float rd_f32(cursor *c, const char *what) { return bits_f32(rd_u32(c, what)); }
static int rd_i32(cursor *c, const char *what) { return (int)u32_to_i32(rd_u32(c, what)); }

/* A string into buf[cap] (NUL-terminated); longer than cap-1 is an error. */
static void rd_str(cursor *c, char *buf, size_t cap, const char *what) {
    buf[0] = 0;
    uint32_t n = rd_u32(c, what);
    if (c->status) return;
    if ((size_t)n >= cap) {
        cur_fail(c, SOMA_STATUS_FORMAT, "%s is too long (%u bytes, at most %zu allowed)", what, n, cap - 1);
        return;
    }
    const uint8_t *q = cur_take(c, n, what);
    if (!q) return;
    if (memchr(q, 0, n)) { cur_fail(c, SOMA_STATUS_FORMAT, "%s contains a NUL byte", what); return; }
    memcpy(buf, q, n);
    buf[n] = 0;
}

/* A u32 count of records of at least `min_bytes` each, refused if they could
 * not fit in what is left of the payload. */
static size_t rd_count(cursor *c, size_t min_bytes, const char *what) {
    uint32_t n = rd_u32(c, what);
    if (c->status) return 0;
    if ((uint64_t)n * min_bytes > cur_left(c)) {
        cur_fail(c, SOMA_STATUS_FORMAT, "%s %u does not fit in the %zu bytes left", what, n, cur_left(c));
        return 0;
    }
    return n;
}

static size_t rd_size(cursor *c, const char *what) {
    uint64_t v = rd_u64(c, what);
    if (!c->status && v > SIZE_MAX) cur_fail(c, SOMA_STATUS_FORMAT, "%s %llu is too large", what, (unsigned long long)v);
    return (size_t)v;
}

static void rd_data_opts(cursor *c, soma_data_opts *d) {
    memset(d, 0, sizeof *d);
    rd_str(c, d->dataset, sizeof d->dataset, "data.dataset");
    rd_str(c, d->dir, sizeof d->dir, "data.dir");
    d->encoding = rd_i32(c, "data.encoding");
    d->steps = rd_i32(c, "data.steps");
    d->gain = rd_f32(c, "data.gain");
    d->threshold = rd_f32(c, "data.threshold");
    d->tau = rd_f32(c, "data.tau");
    d->delta_off = rd_i32(c, "data.delta_off");
    d->readout = rd_i32(c, "data.readout");
    d->limit_train = rd_size(c, "data.limit_train");
    d->limit_test = rd_size(c, "data.limit_test");
    d->bin_ms = rd_f32(c, "data.bin_ms");
}

static void rd_train_opts(cursor *c, soma_train_opts *t) {
    memset(t, 0, sizeof *t);
    t->epochs = rd_i32(c, "train.epochs");
    t->batch = rd_size(c, "train.batch");
    t->loss = rd_i32(c, "train.loss");
    t->optimizer = rd_i32(c, "train.optimizer");
    t->lr = rd_f32(c, "train.lr");
    t->momentum = rd_f32(c, "train.momentum");
    t->beta1 = rd_f32(c, "train.beta1");
    t->beta2 = rd_f32(c, "train.beta2");
    t->eps = rd_f32(c, "train.eps");
    t->weight_decay = rd_f32(c, "train.weight_decay");
    t->clip_norm = rd_f32(c, "train.clip_norm");
    t->schedule = rd_i32(c, "train.schedule");
    t->step_size = rd_i32(c, "train.step_size");
    t->gamma = rd_f32(c, "train.gamma");
    t->lr_min = rd_f32(c, "train.lr_min");
    t->rate_penalty = rd_f32(c, "train.rate_penalty");
    t->surrogate = rd_i32(c, "train.surrogate");
    t->surrogate_param = rd_f32(c, "train.surrogate_param");
    t->correct_rate = rd_f32(c, "train.correct_rate");
    t->incorrect_rate = rd_f32(c, "train.incorrect_rate");
    if (c->version == 2) (void)rd_i32(c, "train.threads (version 2; ignored)");
    t->threads = 0;
    t->seed = rd_u64(c, "train.seed");
    int64_t mb = u64_to_i64(rd_u64(c, "train.max_batches"));
    if (!c->status && (mb < LONG_MIN || mb > LONG_MAX))
        cur_fail(c, SOMA_STATUS_FORMAT, "train.max_batches %lld is out of range", (long long)mb);
    t->max_batches = (long)mb;
}

/* A net call failed while rebuilding: the file described something the net
 * refuses, which makes the file malformed (unless memory ran out). */
static int net_fail(cursor *c, soma_net *net, int rc, const char *fmt, ...) {
    char what[2 * MAX_STR + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return cur_fail(c, rc == SOMA_STATUS_NOMEM ? SOMA_STATUS_NOMEM : SOMA_STATUS_FORMAT, "%s: %s", what,
                    soma_net_errmsg(net));
}

static void rd_pops(cursor *c, soma_net *net) {
    char name[MAX_STR], model_name[MAX_STR], pname[MAX_STR];
    if (c->version >= 3) {
        uint64_t dtb = rd_u64(c, "time step");
        double dt;
        memcpy(&dt, &dtb, 8);
        if (c->status) return;
        if (soma_net_set_dt(net, dt)) {
            cur_fail(c, SOMA_STATUS_FORMAT, "time step %g ms: expected a value in (0, 100] ms", dt);
            return;
        }
    }
    size_t npop = rd_count(c, MIN_POP_BYTES, "population count");
    for (size_t i = 0; i < npop && !c->status; i++) {
        rd_str(c, name, sizeof name, "population name");
        rd_str(c, model_name, sizeof model_name, "model name");
        uint64_t size = rd_u64(c, "population size");
        uint32_t recurrent = rd_u32(c, "recurrent flag");
        uint64_t dims[3] = {size, 1, 1};
        uint32_t nd = rd_u32(c, "shape dimension count");
        if (!c->status && (nd < 1 || nd > 3)) {
            cur_fail(c, SOMA_STATUS_FORMAT, "population '%s': shape has %u dimensions; expected 1 to 3", name, nd);
            return;
        }
        for (uint32_t k = 0; k < nd && !c->status; k++) dims[k] = rd_u64(c, "shape dimension");
        if (c->status) return;
        const soma_model *m = soma_model_find(model_name);
        if (!m) { cur_fail(c, SOMA_STATUS_FORMAT, "population '%s': unknown model '%s'", name, model_name); return; }
        if (size == 0 || size > MAX_POP_SIZE) {
            cur_fail(c, SOMA_STATUS_FORMAT, "population '%s': size %llu out of range (1..%llu)", name,
                     (unsigned long long)size, (unsigned long long)MAX_POP_SIZE);
            return;
        }
        if (recurrent > 1) {
            cur_fail(c, SOMA_STATUS_FORMAT, "population '%s': recurrent flag %u is not 0 or 1", name, recurrent);
            return;
        }
        size_t idx = SIZE_MAX;
        int rc = soma_net_add_pop(net, name, model_name, (size_t)size, &idx);
        if (rc) { net_fail(c, net, rc, "population '%s' (model '%s')", name, model_name); return; }
        if (idx != i) {
            cur_fail(c, SOMA_STATUS_FORMAT, "population '%s' got index %zu instead of %zu", name, idx, i);
            return;
        }
        if (nd > 1) {
            size_t d[3];
            for (uint32_t k = 0; k < nd; k++) d[k] = dims[k] > MAX_POP_SIZE ? 0 : (size_t)dims[k];
            rc = soma_net_set_shape(net, i, d, nd);
            if (rc) { net_fail(c, net, rc, "population '%s': shape", name); return; }
        }
        size_t np = 0;
        const soma_param_desc *pd = soma_model_params(m, &np);
        size_t nparam = rd_count(c, MIN_PARAM_BYTES, "parameter count");
        for (size_t k = 0; k < nparam && !c->status; k++) {
            rd_str(c, pname, sizeof pname, "parameter name");
            float value = rd_f32(c, "parameter value");
            uint32_t learn = rd_u32(c, "learn mode");
            if (c->status) return;
            size_t j = 0;
            while (j < np && strcmp(pd[j].name, pname) != 0) j++;
            if (j == np) {
                cur_fail(c, SOMA_STATUS_FORMAT, "population '%s': model '%s' has no parameter '%s'", name,
                         model_name, pname);
                return;
            }
            if (learn > SOMA_LEARN_NEURON) {
                cur_fail(c, SOMA_STATUS_FORMAT, "population '%s', parameter '%s': learn mode %u is not 0, 1 or 2",
                         name, pname, learn);
                return;
            }
            /* The value first: a learnable parameter starts from its set value. */
            rc = soma_net_set_param(net, i, pname, value);
            if (rc) { net_fail(c, net, rc, "population '%s', parameter '%s'", name, pname); return; }
            if (learn != SOMA_LEARN_NONE) {
                rc = soma_net_set_learn(net, i, pname, (soma_learn)learn);
                if (rc) { net_fail(c, net, rc, "population '%s', learning parameter '%s'", name, pname); return; }
            }
        }
        if (c->status) return;
        if (recurrent) {
            rc = soma_net_set_recurrent(net, i, 1);
            if (rc) { net_fail(c, net, rc, "population '%s': cannot make it recurrent", name); return; }
        }
    }
}

static void rd_projs(cursor *c, soma_net *net) {
    size_t nproj = rd_count(c, PROJ_BYTES, "projection count");
    size_t npop = soma_net_pop_count(net);
    for (size_t i = 0; i < nproj && !c->status; i++) {
        uint32_t from = rd_u32(c, "projection source");
        uint32_t to = rd_u32(c, "projection target");
        uint32_t bias = rd_u32(c, "projection bias flag");
        if (c->status) return;
        uint32_t kind = rd_u32(c, "projection kind");
        soma_conv cv = {0, 0, 0, 0, 0};
        if (kind == 1) {
            uint64_t k = rd_u64(c, "conv kernel"), st = rd_u64(c, "conv stride"), pad = rd_u64(c, "conv padding");
            uint32_t pool = rd_u32(c, "conv pool");
            uint64_t ps = rd_u64(c, "conv pool size");
            if (c->status) return;
            if (k > MAX_POP_SIZE || st > MAX_POP_SIZE || pad > MAX_POP_SIZE || ps > MAX_POP_SIZE || pool > 3) {
                cur_fail(c, SOMA_STATUS_FORMAT, "projection %zu: conv geometry out of range", i);
                return;
            }
            cv = (soma_conv){(size_t)k, (size_t)st, (size_t)pad, (int)pool, (size_t)ps};
        }
        if (c->status) return;
        if (from >= npop || to >= npop || bias > 1 || kind > 1) {
            cur_fail(c, SOMA_STATUS_FORMAT, "projection %zu (%u -> %u, bias %u, kind %u) is invalid for %zu populations",
                     i, from, to, bias, kind, npop);
            return;
        }
        int rc = kind == 1 ? soma_net_connect_conv(net, from, to, (int)bias, &cv)
                           : soma_net_connect_dense(net, from, to, (int)bias);
        if (rc) { net_fail(c, net, rc, "projection %zu (%u -> %u)", i, from, to); return; }
        if (c->version >= 4) {
            uint32_t tm = rd_u32(c, "projection timing flags");
            uint64_t msb = rd_u64(c, "projection delay");
            int32_t port = (int32_t)rd_u32(c, "projection port");
            if (c->status) return;
            double ms;
            memcpy(&ms, &msb, 8);
            if (tm > 3 || (tm && kind == 1) || (!(tm & 1) && ms != 0) || (!(tm & 2) && port != 0)) {
                cur_fail(c, SOMA_STATUS_FORMAT, "projection %zu: timing flags %u (delay %g ms, port %d) are invalid; "
                         "expected bit 0 for a delay and bit 1 for a port of a dense projection", i, tm, ms, (int)port);
                return;
            }
            char ds[64];
            snprintf(ds, sizeof ds, "%.17gms", ms);
            if ((tm & 1) && (rc = soma_net_proj_set_delay(net, (size_t)soma_net_proj_count(net) - 1, ds))) {
                net_fail(c, net, rc, "projection %zu (%u -> %u): delay", i, from, to);
                return;
            }
            if ((tm & 2) && (rc = soma_net_proj_set_port(net, (size_t)soma_net_proj_count(net) - 1, (int)port))) {
                net_fail(c, net, rc, "projection %zu (%u -> %u): port", i, from, to);
                return;
            }
        }
    }
}


static void rd_tensors(cursor *c, soma_net *net) {
    char name[MAX_STR];
    size_t nt = rd_count(c, MIN_TENSOR_BYTES, "tensor count");
    if (c->status) return;
    /* Before asking the net to allocate its weights, check that the payload
     * could hold them: a lower bound on the floats the net needs (weights,
     * biases, recurrent weights, learnable parameters), computed with
     * saturation, must fit in what is left. This keeps a crafted file with
     * huge population sizes from making us allocate gigabytes. */
    uint64_t need = soma_net_param_need(net);
    if (need > cur_left(c) / 4) {
        cur_fail(c, SOMA_STATUS_FORMAT, "the net described needs at least %llu weights, but only %zu bytes are left",
                 (unsigned long long)need, cur_left(c));
        return;
    }
    /* Start from initialised weights so the net counts as initialised (a
     * trainer must not re-randomise it); every tensor is overwritten below. */
    int rc = soma_net_init_weights(net, 0);
    if (rc) { net_fail(c, net, rc, "allocating weights"); return; }
    size_t have = soma_net_tensor_count(net);
    if (nt != have) {
        cur_fail(c, SOMA_STATUS_FORMAT, "file has %zu tensors, but the net it describes has %zu", nt, have);
        return;
    }
    /* Data pointers already filled, to refuse a name given twice (which
     * would leave another tensor holding random initial weights). */
    float **filled = calloc(nt ? nt : 1, sizeof *filled);
    if (!filled) { cur_fail(c, SOMA_STATUS_NOMEM, "out of memory"); return; }
    for (size_t i = 0; i < nt && !c->status; i++) {
        rd_str(c, name, sizeof name, "tensor name");
        uint64_t rows = rd_u64(c, "tensor rows");
        uint64_t cols = rd_u64(c, "tensor cols");
        if (c->status) break;
        soma_tensor t;
        if (soma_net_tensor_find(net, name, &t) != 0) {
            cur_fail(c, SOMA_STATUS_FORMAT, "tensor '%s' does not exist in the net the file describes", name);
            break;
        }
        if (rows != (uint64_t)t.rows || cols != (uint64_t)t.cols) {
            cur_fail(c, SOMA_STATUS_FORMAT, "tensor '%s' has shape %llux%llu in the file, but %zux%zu in the net",
                     name, (unsigned long long)rows, (unsigned long long)cols, t.rows, t.cols);
            break;
        }
        size_t j = 0;
        while (j < i && filled[j] != t.data) j++;
        if (j < i) { cur_fail(c, SOMA_STATUS_FORMAT, "tensor '%s' appears twice", name); break; }
        filled[i] = t.data;
        /* rows and cols equal the net's own, whose product fits in memory. */
        size_t n = t.rows * t.cols;
        if (n > SIZE_MAX / 4) { cur_fail(c, SOMA_STATUS_FORMAT, "tensor '%s' is too large", name); break; }
        const uint8_t *q = cur_take(c, n * 4, "tensor data");
        if (!q) break;
        for (size_t k = 0; k < n; k++) t.data[k] = bits_f32(get32(q + 4 * k));
    }
    free(filled);
}

/* Parse a whole, checksum-verified payload; on success *out owns the net. */
static int parse_payload(cursor *c, soma_net **out, soma_data_opts *data, soma_train_opts *train) {
    char producer[256];
    soma_data_opts d;
    soma_train_opts t;
    rd_str(c, producer, sizeof producer, "producer string");
    rd_data_opts(c, &d);
    rd_train_opts(c, &t);
    if (c->status) return c->status;

    soma_net *net = NULL;
    int rc = soma_net_create(&net);
    if (rc || !net) return cur_fail(c, rc ? rc : SOMA_STATUS_NOMEM, "cannot create a net: %s", soma_strerror(rc));
    rd_pops(c, net);
    rd_projs(c, net);
    rd_tensors(c, net);
    if (!c->status && cur_left(c) != 0)
        cur_fail(c, SOMA_STATUS_FORMAT, "%zu unexpected bytes after the last tensor", cur_left(c));
    if (c->status) { soma_net_free(net); return c->status; }
    if (data) *data = d;
    if (train) *train = t;
    *out = net;
    return SOMA_STATUS_OK;
}

int soma_model_load(const char *path, soma_net **net, soma_data_opts *data, soma_train_opts *train, char *err,
                    size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (net) *net = NULL;
    if (!path || !net) {
        set_err(err, errlen, path, "soma_model_load needs a path and somewhere to put the net");
        return SOMA_STATUS_INVALID;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_err(err, errlen, path, "cannot open: %s", strerror(errno));
        return SOMA_STATUS_IO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        set_err(err, errlen, path, "cannot stat: %s", strerror(errno));
        fclose(f);
        return SOMA_STATUS_IO;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, errlen, path, "not a regular file");
        fclose(f);
        return SOMA_STATUS_IO;
    }
    uint64_t fsize = (uint64_t)st.st_size;

    uint8_t hdr[HEADER_BYTES];
    size_t got = fread(hdr, 1, sizeof hdr, f);
    if (got < sizeof hdr && ferror(f)) {
        set_err(err, errlen, path, "read error: %s", strerror(errno));
        fclose(f);
        return SOMA_STATUS_IO;
    }
    /* The magic decides "not ours" before anything else is judged, even for
     * a file too short to hold a whole header. */
    size_t mcmp = got < 8 ? got : 8;
    if (memcmp(hdr, SOMA_MODEL_MAGIC, mcmp) != 0 || got == 0) {
        set_err(err, errlen, path, got == 0 ? "not a soma model file (empty)" : "not a soma model file (bad magic)");
        fclose(f);
        return SOMA_STATUS_FORMAT;
    }
    if (got < sizeof hdr) {
        set_err(err, errlen, path, "truncated: expected a %u-byte header, found %zu bytes", HEADER_BYTES, got);
        fclose(f);
        return SOMA_STATUS_FORMAT;
    }
    uint32_t version = get32(hdr + 8), flags = get32(hdr + 12), crc = get32(hdr + 24);
    uint64_t plen = get64(hdr + 16);
    if (version < 2 || version > SOMA_MODEL_VERSION) {
        if (version == 1)
            set_err(err, errlen, path,
                    "format version 1, this soma reads versions 2 to %u; retrain the model, or load it with "
                    "soma 0.1 and save it again", SOMA_MODEL_VERSION);
        else
            set_err(err, errlen, path,
                    "format version %u, this soma reads versions 2 to %u; retrain the model, or re-save it with "
                    "a soma that writes version %u", version, SOMA_MODEL_VERSION, SOMA_MODEL_VERSION);
        fclose(f);
        return SOMA_STATUS_VERSION;
    }
    if (flags != 0) {
        set_err(err, errlen, path, "unknown header flags 0x%08x", flags);
        fclose(f);
        return SOMA_STATUS_FORMAT;
    }
    if (plen > UINT64_MAX - HEADER_BYTES || plen + HEADER_BYTES != fsize) {
        if (plen <= UINT64_MAX - HEADER_BYTES && fsize < plen + HEADER_BYTES)
            set_err(err, errlen, path, "truncated: expected %llu bytes, found %llu",
                    (unsigned long long)(plen + HEADER_BYTES), (unsigned long long)fsize);
        else if (plen <= UINT64_MAX - HEADER_BYTES)
            set_err(err, errlen, path, "trailing data: expected %llu bytes, found %llu",
                    (unsigned long long)(plen + HEADER_BYTES), (unsigned long long)fsize);
        else
            set_err(err, errlen, path, "truncated: payload length %llu is impossible for a %llu-byte file",
                    (unsigned long long)plen, (unsigned long long)fsize);
        fclose(f);
        return SOMA_STATUS_FORMAT;
    }
    if (plen > SIZE_MAX - 1) {
        set_err(err, errlen, path, "payload of %llu bytes is too large for this machine", (unsigned long long)plen);
        fclose(f);
        return SOMA_STATUS_NOMEM;
    }
    uint8_t *payload = malloc(plen ? (size_t)plen : 1);
    if (!payload) {
        set_err(err, errlen, path, "out of memory reading a %llu-byte payload", (unsigned long long)plen);
        fclose(f);
        return SOMA_STATUS_NOMEM;
    }
    got = fread(payload, 1, (size_t)plen, f);
    int rerr = ferror(f), rerrno = errno;
    fclose(f);
    if (got != (size_t)plen) {
        if (rerr) set_err(err, errlen, path, "read error: %s", strerror(rerrno));
        else set_err(err, errlen, path, "truncated: expected %llu bytes, found %llu",
                     (unsigned long long)(plen + HEADER_BYTES), (unsigned long long)(got + HEADER_BYTES));
        free(payload);
        return rerr ? SOMA_STATUS_IO : SOMA_STATUS_FORMAT;
    }
    uint32_t actual = crc32_of(payload, (size_t)plen);
    if (actual != crc) {
        set_err(err, errlen, path, "checksum mismatch: header says CRC-32 %08x, payload has %08x (file corrupted)",
                crc, actual);
        free(payload);
        return SOMA_STATUS_CHECKSUM;
    }

    cursor c = {payload, (size_t)plen, 0, path, err, errlen, 0, version};
    int rc = parse_payload(&c, net, data, train);
    free(payload);
    return rc;
}
