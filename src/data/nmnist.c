/* nmnist.c — the N-MNIST loader: event streams of a 34 x 34 two-polarity
 * sensor, binned into opts->steps time steps.
 *
 * Layout: DIR/Train/<digit>/<name>.bin and DIR/Test/<digit>/<name>.bin, digit
 * 0-9 (the folder name is the label); other entries are ignored. Samples are
 * read in a fixed order, digits ascending and file names sorted by strcmp,
 * and limit_train / limit_test keep the first N of that order.
 *
 * File format: 5 bytes an event,
 *   byte0 = x, byte1 = y, byte2 = (polarity << 7) | ts[22:16],
 *   byte3 = ts[15:8], byte4 = ts[7:0]            (ts in microseconds).
 *
 * Channels: dim = 2 * 34 * 34 = 2312, channel = p*34*34 + y*34 + x.
 * Binning: bin width w = bin_ms * 1000 us when bin_ms > 0, else
 * (largest ts of the sample + 1) / steps, so each sample spans all steps; an
 * event goes to bin floor(ts / w) and events past the last bin are dropped.
 * seq[(i*steps + t)*dim + c] = number of events of channel c in bin t.
 *
 * rows = 34, cols = 68 describe a picture of a sample for plots: the two
 * polarities side by side, pixel (row y, column p*34 + x) = channel
 * p*34*34 + y*34 + x. This is NOT the row-major reading of the channel index
 * (which would be rows = 68, cols = 34, polarities stacked).
 *
 * Every failure returns a status with "FILE: sample K: reason" (K = the
 * sample's index in its split's load order) or "DIR: reason" in err, and
 * leaves nothing allocated. */
#define _POSIX_C_SOURCE 200809L
#include "data/seq.h"
#include "core/err.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define NM_SIDE 34
#define NM_DIM (2 * NM_SIDE * NM_SIDE)
#define NM_EVENT 5
/* Refuse data sets whose binned floats would exceed this many bytes. */
#define NM_MAX_BYTES ((uint64_t)16 << 30)

/* malloc'd "a/b" (NULL when out of memory). */
static char *join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (!p) return NULL;
    memcpy(p, a, la);
    p[la] = '/';
    memcpy(p + la + 1, b, lb + 1);
    return p;
}

typedef struct nm_file {
    char *path;
    uint8_t label;
} nm_file;

typedef struct nm_list {
    nm_file *f;
    size_t n, cap;
} nm_list;

static void list_free(nm_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->f[i].path);
    free(l->f);
    memset(l, 0, sizeof *l);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int ends_with_bin(const char *s) {
    size_t n = strlen(s);
    return n > 4 && strcmp(s + n - 4, ".bin") == 0;
}

/* Append the .bin files of one digit folder, names sorted. */
static int scan_digit(nm_list *l, const char *ddir, uint8_t label, char *err, size_t errlen) {
    DIR *d = opendir(ddir);
    if (!d) return soma__errf(err, errlen, SOMA_STATUS_IO, "%s: cannot open directory: %s", ddir, strerror(errno));
    char **names = NULL;
    size_t nn = 0, cap = 0;
    int st = SOMA_STATUS_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!ends_with_bin(e->d_name)) continue;
        char *p = join(ddir, e->d_name);
        if (!p) {
            st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: out of memory listing files", ddir);
            break;
        }
        struct stat sb;
        if (stat(p, &sb) == 0 && !S_ISREG(sb.st_mode)) {
            /* a directory or device named *.bin: not a sample. One that
             * cannot be stat'ed (a dangling link, no permission) stays in
             * the list, so reading it reports the file and its index. */
            free(p);
            continue;
        }
        if (nn == cap) {
            size_t nc = cap ? 2 * cap : 64;
            char **nb = realloc(names, nc * sizeof *nb);
            if (!nb) {
                free(p);
                st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: out of memory listing files", ddir);
                break;
            }
            names = nb;
            cap = nc;
        }
        names[nn++] = p;
    }
    closedir(d);
    if (!st && nn) {
        /* Same directory prefix for all: sorting the paths sorts the names. */
        qsort(names, nn, sizeof *names, cmp_name);
        if (l->n + nn > l->cap) {
            size_t nc = l->cap ? l->cap : 64;
            while (nc < l->n + nn) nc *= 2;
            nm_file *nf = realloc(l->f, nc * sizeof *nf);
            if (!nf) {
                st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: out of memory listing files", ddir);
            } else {
                l->f = nf;
                l->cap = nc;
            }
        }
        if (!st) {
            for (size_t i = 0; i < nn; i++) {
                l->f[l->n].path = names[i];
                l->f[l->n].label = label;
                l->n++;
            }
            nn = 0; /* now owned by the list */
        }
    }
    for (size_t i = 0; i < nn; i++) free(names[i]);
    free(names);
    return st;
}

/* The samples of one split (DIR/Train or DIR/Test) in load order, cut to limit. */
static int scan_split(nm_list *l, const char *dir, const char *split, size_t limit, char *err, size_t errlen) {
    memset(l, 0, sizeof *l);
    char *sdir = join(dir, split);
    if (!sdir) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: out of memory", dir);
    struct stat sb;
    int st = SOMA_STATUS_OK;
    if (stat(sdir, &sb) != 0) {
        st =
            soma__errf(err, errlen, SOMA_STATUS_IO, "%s: not found (expected N-MNIST's %s/<digit>/*.bin)", sdir, split);
        goto done;
    }
    if (!S_ISDIR(sb.st_mode)) {
        st = soma__errf(err, errlen, SOMA_STATUS_IO, "%s: not a directory (expected N-MNIST's %s/<digit>/*.bin)", sdir,
                        split);
        goto done;
    }
    for (int digit = 0; digit <= 9 && !st; digit++) {
        if (limit && l->n >= limit) break;
        char name[2] = {(char)('0' + digit), 0};
        char *ddir = join(sdir, name);
        if (!ddir) {
            st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: out of memory", sdir);
            break;
        }
        if (stat(ddir, &sb) == 0 && S_ISDIR(sb.st_mode)) st = scan_digit(l, ddir, (uint8_t)digit, err, errlen);
        free(ddir);
    }
    if (!st && l->n == 0)
        st = soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                        "%s: no samples found (expected N-MNIST's %s/<digit>/*.bin, digit 0-9)", sdir, split);
    if (!st && limit && l->n > limit) {
        for (size_t i = limit; i < l->n; i++) free(l->f[i].path);
        l->n = limit;
    }
done:
    if (st) list_free(l);
    free(sdir);
    return st;
}

/* Read a whole file into *buf (malloc'd; NULL for an empty file). */
static int read_file(const char *path, size_t k, unsigned char **buf, size_t *len, char *err, size_t errlen) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return soma__errf(err, errlen, SOMA_STATUS_IO, "%s: sample %zu: cannot open: %s", path, k, strerror(errno));
    unsigned char *b = NULL;
    size_t n = 0, cap = 0;
    int st = SOMA_STATUS_OK;
    for (;;) {
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 65536;
            unsigned char *nb = realloc(b, nc);
            if (!nb) {
                st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: sample %zu: out of memory reading the file", path,
                                k);
                break;
            }
            b = nb;
            cap = nc;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f))
                st =
                    soma__errf(err, errlen, SOMA_STATUS_IO, "%s: sample %zu: read error: %s", path, k, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (st) {
        free(b);
        return st;
    }
    *buf = b;
    *len = n;
    return SOMA_STATUS_OK;
}

/* Bin the events of one file into out[steps][NM_DIM] (zeroed by the caller). */
static int bin_file(const char *path, size_t k, const soma_data_opts *opts, float *out, char *err, size_t errlen) {
    unsigned char *b;
    size_t len;
    int st = read_file(path, k, &b, &len, err, errlen);
    if (st) return st;
    if (len % NM_EVENT) {
        free(b);
        return soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                          "%s: sample %zu: %zu bytes is not a whole number of %d-byte events", path, k, len, NM_EVENT);
    }
    size_t ne = len / NM_EVENT;
    uint32_t maxts = 0;
    for (size_t e = 0; e < ne; e++) {
        const unsigned char *p = b + e * NM_EVENT;
        if (p[0] >= NM_SIDE || p[1] >= NM_SIDE) {
            int isx = p[0] >= NM_SIDE;
            st = soma__errf(err, errlen, SOMA_STATUS_FORMAT, "%s: sample %zu: event %zu has %c = %u (expected < %d)",
                            path, k, e, isx ? 'x' : 'y', (unsigned)(isx ? p[0] : p[1]), NM_SIDE);
            free(b);
            return st;
        }
        uint32_t ts = ((uint32_t)(p[2] & 0x7f) << 16) | ((uint32_t)p[3] << 8) | p[4];
        if (ts > maxts) maxts = ts;
    }
    const uint64_t steps = (uint64_t)opts->steps;
    const double w = (double)opts->bin_ms * 1000.0;
    for (size_t e = 0; e < ne; e++) {
        const unsigned char *p = b + e * NM_EVENT;
        uint32_t ts = ((uint32_t)(p[2] & 0x7f) << 16) | ((uint32_t)p[3] << 8) | p[4];
        uint64_t t;
        if (opts->bin_ms > 0) {
            double q = floor((double)ts / w);
            if (q >= (double)steps) continue;
            t = (uint64_t)q;
        } else {
            /* floor(ts / ((maxts + 1) / steps)) in exact integers; < steps as ts <= maxts */
            t = (uint64_t)ts * steps / ((uint64_t)maxts + 1);
        }
        size_t c = (size_t)(p[2] >> 7) * NM_SIDE * NM_SIDE + (size_t)p[1] * NM_SIDE + p[0];
        out[t * NM_DIM + c] += 1.0f;
    }
    free(b);
    return SOMA_STATUS_OK;
}

static int load_split(soma_dataset *ds, const soma_data_opts *opts, const char *split, size_t limit, char *err,
                      size_t errlen) {
    memset(ds, 0, sizeof *ds);
    nm_list l;
    int st = scan_split(&l, opts->dir, split, limit, err, errlen);
    if (st) return st;
    const uint64_t per = (uint64_t)opts->steps * NM_DIM * sizeof(float); /* bytes a sample */
    if ((uint64_t)l.n > NM_MAX_BYTES / per) {
        double gib = (double)l.n * (double)per / (double)((uint64_t)1 << 30);
        st = soma__errf(err, errlen, SOMA_STATUS_NOMEM,
                        "%s/%s: %zu samples x %d steps x %d channels need %.1f GiB of floats (limit 16 GiB; lower "
                        "data.steps or set data.limit_train / data.limit_test)",
                        opts->dir, split, l.n, opts->steps, NM_DIM, gib);
        list_free(&l);
        return st;
    }
    const size_t per_floats = (size_t)opts->steps * NM_DIM;
    ds->seq = calloc(l.n * per_floats, sizeof *ds->seq);
    ds->y = malloc(l.n);
    if (!ds->seq || !ds->y) {
        st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s/%s: cannot allocate %.1f MiB for %zu samples", opts->dir,
                        split, (double)l.n * (double)per / (1024.0 * 1024.0), l.n);
        goto done;
    }
    unsigned maxl = 0;
    for (size_t i = 0; i < l.n && !st; i++) {
        st = bin_file(l.f[i].path, i, opts, ds->seq + i * per_floats, err, errlen);
        ds->y[i] = l.f[i].label;
        if (l.f[i].label > maxl) maxl = l.f[i].label;
    }
    if (!st) {
        ds->n = l.n;
        ds->dim = NM_DIM;
        ds->rows = NM_SIDE;
        ds->cols = 2 * NM_SIDE;
        ds->classes = (size_t)maxl + 1;
        ds->steps = (size_t)opts->steps;
        ds->x = NULL;
    }
done:
    list_free(&l);
    if (st) soma_data_free(ds);
    return st;
}

int soma__load_nmnist(const soma_data_opts *opts, soma_dataset *train, soma_dataset *test, char *err, size_t errlen) {
    if (train) memset(train, 0, sizeof *train);
    if (test) memset(test, 0, sizeof *test);
    if (!opts || (!train && !test)) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "nmnist loader: NULL argument");
    if (opts->steps < 1)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "nmnist: data.steps = %d (expected >= 1)", opts->steps);
    if (!isfinite(opts->bin_ms) || opts->bin_ms < 0.0f)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "nmnist: data.bin_ms is %g (expected ms > 0, or 0)",
                          (double)opts->bin_ms);
    /* Both split directories first, so a missing Test/ is reported before Train/ is read. */
    const char *splits[2] = {train ? "Train" : NULL, test ? "Test" : NULL};
    for (int i = 0; i < 2; i++) {
        if (!splits[i]) continue;
        char *sdir = join(opts->dir, splits[i]);
        if (!sdir) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: out of memory", opts->dir);
        struct stat sb;
        int found = stat(sdir, &sb) == 0;
        if (!found || !S_ISDIR(sb.st_mode)) {
            int r = soma__errf(err, errlen, SOMA_STATUS_IO, "%s: %s (expected N-MNIST's %s/<digit>/*.bin)", sdir,
                               found ? "not a directory" : "not found", splits[i]);
            free(sdir);
            return r;
        }
        free(sdir);
    }
    int st = SOMA_STATUS_OK;
    if (train) st = load_split(train, opts, "Train", opts->limit_train, err, errlen);
    if (!st && test) st = load_split(test, opts, "Test", opts->limit_test, err, errlen);
    if (st) {
        if (train) soma_data_free(train);
        if (test) soma_data_free(test);
    }
    return st;
}
