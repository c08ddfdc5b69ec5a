/* idx.c — reading labelled image sets stored as IDX files (the MNIST and
 * Fashion-MNIST format), gzipped or plain, and loading a train/test split
 * from a data-set directory.
 *
 * IDX layout (all integers big-endian):
 *   images: magic 0x00000803, n, rows, cols, then n*rows*cols uint8 pixels
 *   labels: magic 0x00000801, n, then n uint8 labels
 * zlib's gzread reads gzip and plain files alike, so one reader serves both.
 * Every failure returns a status and a "PATH: reason (expected ...)" message
 * in the caller's buffer and leaves nothing allocated. */
#define _POSIX_C_SOURCE 200809L
#include "soma.h"
#include "core/err.h"
#include "data/seq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
/* Sanity bounds on header dimensions: a header beyond them is corrupt, not a
 * data set we could hold. */
#define IDX_MAX_N 100000000u   /* samples */
#define IDX_MAX_DIM 10000000u  /* rows * cols */
/* gzread takes an unsigned length; read large payloads in pieces. */
#define IDX_CHUNK ((size_t)1 << 26)

static uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* zlib's message without the "PATH: " prefix it adds itself. */
static const char *gz_msg(gzFile f, const char *path, int *zerr) {
    const char *msg = gzerror(f, zerr);
    if (!msg) return "unknown error";
    size_t pl = strlen(path);
    if (strncmp(msg, path, pl) == 0 && msg[pl] == ':' && msg[pl + 1] == ' ') msg += pl + 2;
    return msg;
}

/* Read up to n bytes. Returns the number read (short only at end of data),
 * or -1 after writing an error for a zlib or system failure. */
static long long gz_read_all(gzFile f, void *buf, size_t n, const char *path, int *status, char *err,
                             size_t errlen) {
    size_t got = 0;
    while (got < n) {
        size_t want = n - got < IDX_CHUNK ? n - got : IDX_CHUNK;
        int r = gzread(f, (unsigned char *)buf + got, (unsigned)want);
        if (r < 0) {
            int zerr = Z_OK;
            const char *msg = gz_msg(f, path, &zerr);
            if (zerr == Z_ERRNO) {
                *status = soma__errf(err, errlen, SOMA_STATUS_IO, "%s: read error: %s", path, strerror(errno));
            } else {
                *status = soma__errf(
                    err, errlen, SOMA_STATUS_FORMAT,
                    "%s: corrupt gzip data (zlib: %s; expected a valid gzip stream or a plain IDX file)", path, msg);
            }
            return -1;
        }
        if (r == 0) {
            /* zlib reports a gzip stream cut short as Z_BUF_ERROR ("unexpected
             * end of file") with a clean zero read: treat it like a short
             * plain file, so the caller can say how much was expected. */
            int zerr = Z_OK;
            const char *msg = gz_msg(f, path, &zerr);
            if (zerr != Z_OK && zerr != Z_STREAM_END && zerr != Z_BUF_ERROR) {
                *status = soma__errf(err, errlen, SOMA_STATUS_FORMAT, "%s: corrupt gzip data (zlib: %s)", path, msg);
                return -1;
            }
            break;
        }
        got += (size_t)r;
    }
    return (long long)got;
}

/* One IDX file: its dimensions and its payload (malloc'd). For a label file
 * rows = cols = 1. */
typedef struct idx_file {
    size_t n, rows, cols;
    uint8_t *data;
} idx_file;

static int idx_read(idx_file *out, const char *path, uint32_t magic, char *err, size_t errlen) {
    const int images = magic == IDX_MAGIC_IMAGES;
    const char *what = images ? "images" : "labels";
    const size_t hdr_len = images ? 16 : 8;
    memset(out, 0, sizeof *out);

    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        return soma__errf(err, errlen, SOMA_STATUS_IO, "%s: cannot open: %s", path,
                          errno ? strerror(errno) : "out of memory");
    }
    int status = SOMA_STATUS_OK;
    unsigned char hdr[16];
    long long got = gz_read_all(f, hdr, hdr_len, path, &status, err, errlen);
    if (got < 0) goto done;
    if (got == 0) {
        status = soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                            "%s: empty file (expected an IDX %s file with a %zu-byte header)", path, what, hdr_len);
        goto done;
    }
    if ((size_t)got < 4) {
        status = soma__errf(err, errlen, SOMA_STATUS_FORMAT, "%s: truncated header (expected %zu bytes, found %lld)",
                            path, hdr_len, got);
        goto done;
    }
    uint32_t m = be32(hdr);
    if (m != magic) {
        const char *hint = "";
        if (m == IDX_MAGIC_LABELS) hint = "; this looks like a label file";
        else if (m == IDX_MAGIC_IMAGES) hint = "; this looks like an image file";
        else if (hdr[0] == 0x1f && hdr[1] == 0x8b) hint = "; this looks like a damaged gzip file";
        status =
            soma__errf(err, errlen, SOMA_STATUS_FORMAT, "%s: bad magic number 0x%08x (expected 0x%08x for IDX %s%s)",
                       path, (unsigned)m, (unsigned)magic, what, hint);
        goto done;
    }
    if ((size_t)got < hdr_len) {
        status = soma__errf(err, errlen, SOMA_STATUS_FORMAT, "%s: truncated header (expected %zu bytes, found %lld)",
                            path, hdr_len, got);
        goto done;
    }
    uint32_t n = be32(hdr + 4);
    uint32_t rows = images ? be32(hdr + 8) : 1, cols = images ? be32(hdr + 12) : 1;
    uint64_t dim = (uint64_t)rows * cols;
    if (n == 0 || n >= IDX_MAX_N || rows == 0 || cols == 0 || dim >= IDX_MAX_DIM) {
        if (images) {
            status = soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                                "%s: bad dimensions n=%u rows=%u cols=%u (expected nonzero, n < %u, rows*cols < %u)",
                                path, (unsigned)n, (unsigned)rows, (unsigned)cols, IDX_MAX_N, IDX_MAX_DIM);
        } else {
            status = soma__errf(err, errlen, SOMA_STATUS_FORMAT, "%s: bad label count %u (expected 0 < n < %u)", path,
                                (unsigned)n, IDX_MAX_N);
        }
        goto done;
    }
    size_t bytes = (size_t)n * (size_t)dim;
    /* The header's claim is not trusted with memory: the buffer grows (by
     * doubling, from 1 MiB) only as data arrives, so a short or hostile
     * file that claims gigabytes is refused as truncated without
     * allocating them. */
    size_t cap = 0, have = 0;
    got = 0;
    while (have < bytes) {
        size_t want = cap ? 2 * cap : (size_t)1 << 20;
        if (want > bytes) want = bytes;
        uint8_t *nd = realloc(out->data, want);
        if (!nd) {
            status = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: cannot allocate %zu bytes for %u %s", path, want,
                                (unsigned)n, what);
            goto done;
        }
        out->data = nd, cap = want;
        long long r = gz_read_all(f, out->data + have, cap - have, path, &status, err, errlen);
        if (r < 0) goto done;
        have += (size_t)r;
        if (have < cap) break; /* the file ended */
    }
    got = (long long)have;
    if (have == bytes && bytes > ((size_t)1 << 20)) {
        /* Training read the realloc-grown (remapped) buffer 7 % slower than
         * one fresh allocation (bench/ab.sh, same run; the encoders read
         * samples in shuffled order all over it). Why was not pinned down
         * (transparent huge pages are madvise-only on the machine): copy the
         * data once into a fresh allocation, which measured equal again. */
        uint8_t *fresh = malloc(bytes);
        if (fresh) {
            memcpy(fresh, out->data, bytes);
            free(out->data);
            out->data = fresh;
        }
    }
    if ((size_t)got < bytes) {
        if (images) {
            status =
                soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                           "%s: truncated image data (expected %u images of %ux%u = %zu bytes, found %lld bytes = %llu "
                           "complete images)",
                           path, (unsigned)n, (unsigned)rows, (unsigned)cols, bytes, got,
                           (unsigned long long)((uint64_t)got / dim));
        } else {
            status = soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                                "%s: truncated label data (expected %u labels = %zu bytes, found %lld)", path,
                                (unsigned)n, bytes, got);
        }
        goto done;
    }
    out->n = n;
    out->rows = rows;
    out->cols = cols;

done:
    gzclose(f);
    if (status != SOMA_STATUS_OK) {
        free(out->data);
        memset(out, 0, sizeof *out);
    }
    return status;
}

int soma_data_load_idx(soma_dataset *ds, const char *images, const char *labels, char *err, size_t errlen) {
    if (!ds || !images || !labels)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "soma_data_load_idx: NULL argument");
    memset(ds, 0, sizeof *ds);
    idx_file im, lb;
    int st = idx_read(&im, images, IDX_MAGIC_IMAGES, err, errlen);
    if (st) return st;
    st = idx_read(&lb, labels, IDX_MAGIC_LABELS, err, errlen);
    if (st) {
        free(im.data);
        return st;
    }
    if (im.n != lb.n) {
        free(im.data);
        free(lb.data);
        return soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                          "%s: %zu labels but %s has %zu images (expected equal counts)", labels, lb.n, images, im.n);
    }
    /* Labels are uint8, so "< 256" holds by construction; classes spans up to
     * the largest label seen. */
    unsigned maxl = 0;
    for (size_t i = 0; i < lb.n; i++)
        if (lb.data[i] > maxl) maxl = lb.data[i];
    ds->n = im.n;
    ds->rows = im.rows;
    ds->cols = im.cols;
    ds->dim = im.rows * im.cols;
    ds->classes = (size_t)maxl + 1;
    ds->x = im.data;
    ds->y = lb.data;
    return SOMA_STATUS_OK;
}

void soma_data_free(soma_dataset *ds) {
    if (!ds) return;
    free(ds->x);
    free(ds->y);
    free(ds->seq);
    memset(ds, 0, sizeof *ds);
}

/* Data sets the loader knows; their default directory (NULL: none, the user
 * must name one) and the package that installs it. */
static const struct {
    const char *name, *dir, *package;
    soma__seq_loader load; /* sequence data sets; NULL for IDX images */
    int generated;         /* made up by the loader: no directory */
} known_sets[] = {
    {"fashion-mnist", "/usr/share/datasets/fashion-mnist", "dataset-fashion-mnist", NULL, 0},
    {"mnist", NULL, NULL, NULL, 0},
    {"shd", NULL, NULL, soma__load_shd, 0},
    {"shd-adding", NULL, NULL, soma__load_shd_adding, 0},
    {"nmnist", NULL, NULL, soma__load_nmnist, 0},
    {"csv", NULL, NULL, soma__load_csv, 0},
    {"recall", NULL, NULL, soma__load_recall, 1},
};
#define N_KNOWN_SETS (sizeof known_sets / sizeof known_sets[0])

static int find_set(const char *name) {
    if (!name) return -1;
    for (size_t i = 0; i < N_KNOWN_SETS; i++)
        if (strcmp(name, known_sets[i].name) == 0) return (int)i;
    return -1;
}

const char *soma_data_default_dir(const char *dataset) {
    int i = find_set(dataset);
    return i < 0 ? NULL : known_sets[i].dir;
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && !S_ISDIR(st.st_mode);
}

/* The path of dir/base.gz if it exists, else dir/base if it exists. */
static int find_file(char *out, size_t outlen, const char *dir, const char *base, const char *hint, char *err,
                     size_t errlen) {
    int k = snprintf(out, outlen, "%s/%s.gz", dir, base);
    if (k < 0 || (size_t)k >= outlen)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: data directory path too long", dir);
    if (is_file(out)) return SOMA_STATUS_OK;
    snprintf(out, outlen, "%s/%s", dir, base);
    if (is_file(out)) return SOMA_STATUS_OK;
    return soma__errf(err, errlen, SOMA_STATUS_IO, "%s/%s: file not found (expected %s.gz or %s in %s)%s", dir, base,
                      base, base, dir, hint);
}

static int load_split(soma_dataset *ds, const char *dir, const char *prefix, size_t limit, const char *hint,
                      char *err, size_t errlen) {
    char base[64], images[1200], labels[1200];
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", prefix);
    int st = find_file(images, sizeof images, dir, base, hint, err, errlen);
    if (st) return st;
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", prefix);
    st = find_file(labels, sizeof labels, dir, base, hint, err, errlen);
    if (st) return st;
    st = soma_data_load_idx(ds, images, labels, err, errlen);
    if (st) return st;
    if (limit && limit < ds->n) {
        /* Keep the first `limit` samples; classes stays that of the whole
         * file so a limited run builds the same output layer. */
        ds->n = limit;
        uint8_t *x = realloc(ds->x, ds->n * ds->dim), *y = realloc(ds->y, ds->n);
        if (x) ds->x = x;
        if (y) ds->y = y;
    }
    return SOMA_STATUS_OK;
}

int soma_data_load(const soma_data_opts *opts, soma_dataset *train, soma_dataset *test, char *err, size_t errlen) {
    if (train) memset(train, 0, sizeof *train);
    if (test) memset(test, 0, sizeof *test);
    if (!opts || (!train && !test))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "soma_data_load: NULL argument");
    if (!memchr(opts->dataset, 0, sizeof opts->dataset) || !memchr(opts->dir, 0, sizeof opts->dir))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "data options: dataset or dir name is not NUL-terminated");
    int set = find_set(opts->dataset);
    if (set < 0) {
        char names[256] = "";
        for (size_t i = 0; i < N_KNOWN_SETS; i++) {
            strncat(names, i ? ", " : "", sizeof names - strlen(names) - 1);
            strncat(names, known_sets[i].name, sizeof names - strlen(names) - 1);
        }
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "unknown dataset '%.32s' (expected one of: %s)",
                          opts->dataset, names);
    }
    char hint[128] = "";
    if (known_sets[set].package)
        snprintf(hint, sizeof hint, "; install it with: apt-get install %s", known_sets[set].package);

    if (known_sets[set].load) {
        if (!opts->dir[0] && !known_sets[set].generated)
            return soma__errf(err, errlen, SOMA_STATUS_INVALID,
                              "dataset '%s' needs data.dir (or --data DIR): it cannot be "
                              "downloaded here",
                              known_sets[set].name);
        if (opts->encoding != SOMA_ENCODING_SEQUENCE)
            return soma__errf(err, errlen, SOMA_STATUS_INVALID,
                              "dataset '%s' is a sequence data set: expected "
                              "data.encoding: sequence",
                              known_sets[set].name);
        int st = known_sets[set].load(opts, train, test, err, errlen);
        if (st) {
            soma_data_free(train);
            soma_data_free(test);
        } else if (train && test) {
            size_t c = train->classes > test->classes ? train->classes : test->classes;
            train->classes = test->classes = c;
        }
        return st;
    }
    char dir[sizeof opts->dir];
    if (opts->dir[0]) {
        memcpy(dir, opts->dir, sizeof dir);
    } else if (known_sets[set].dir) {
        snprintf(dir, sizeof dir, "%s", known_sets[set].dir);
    } else {
        return soma__errf(err, errlen, SOMA_STATUS_INVALID,
                          "dataset '%s' has no default directory (expected data.dir naming a directory with "
                          "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz] and "
                          "t10k-labels-idx1-ubyte[.gz])",
                          known_sets[set].name);
    }
    struct stat sb;
    int exists = stat(dir, &sb) == 0;
    if (!exists || !S_ISDIR(sb.st_mode)) {
        return soma__errf(
            err, errlen, SOMA_STATUS_IO,
            "%s: %s data directory %s (expected a directory with {train,t10k}-{images-idx3,labels-idx1}-ubyte"
            "[.gz])%s",
            dir, known_sets[set].name, !exists ? "not found" : "is not a directory", hint);
    }

    int st = SOMA_STATUS_OK;
    if (train) st = load_split(train, dir, "train", opts->limit_train, hint, err, errlen);
    if (!st && test) st = load_split(test, dir, "t10k", opts->limit_test, hint, err, errlen);
    if (!st && train && test) {
        if (train->rows != test->rows || train->cols != test->cols) {
            st = soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                            "%s: test images are %zux%zu but training images are %zux%zu (expected the same size)", dir,
                            test->rows, test->cols, train->rows, train->cols);
        } else {
            /* Both splits share one output layer, so they share one class count. */
            size_t c = train->classes > test->classes ? train->classes : test->classes;
            train->classes = test->classes = c;
        }
    }
    if (st) {
        soma_data_free(train);
        soma_data_free(test);
    }
    return st;
}
