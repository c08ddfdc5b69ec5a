/* csv.c — sensor time-series windows (e.g. human-activity recognition from
 * accelerometer + gyroscope) stored as CSV: DIR/train.csv and DIR/test.csv.
 *
 * Format (plain text, one record a line, fields separated by ',', no quoting):
 *
 *   label,acc_x@0,acc_y@0,acc_z@0,acc_x@1,acc_y@1,acc_z@1,...,acc_z@39
 *   3,0.12,-9.81,0.40,0.15,-9.79,0.38,...,0.41
 *   0,...
 *
 * - Line 1 is the header. Its first column is `label`; the others are
 *   `<channel>@<t>` (channel: any non-empty name without ',' ; t: a decimal
 *   integer without sign or leading zeros) in time-major order: all channels
 *   of step 0, then all channels of step 1, ... The channels are the distinct
 *   names in order of first appearance, steps = 1 + the largest t, and every
 *   (channel, t) must appear exactly once, in that order (t major, channel
 *   minor). Any other header is an error naming the first wrong column.
 * - Every further line is one window (sample): its label, an integer 0..255,
 *   then steps x channels values in the header's order, each a decimal float
 *   read by strtod in full (surrounding blanks allowed; empty fields, NaN and
 *   infinities are errors).
 * - Lines may end in "\r\n"; a UTF-8 byte-order mark before the header and
 *   blank lines at the end of the file are ignored. Lines may be of any length.
 * - train.csv and test.csv must have the same header.
 * - With limit_train / limit_test = N only the first N windows are read (the
 *   rest of the file is not checked).
 * - Values are used as they are: no per-channel standardisation is done, so
 *   scale the data (e.g. to zero mean, unit variance per channel) beforehand.
 *
 * The data set gets dim = cols = channels, rows = 1, steps = the file's steps
 * (the sequence encoding pads with zeros or cuts to data.steps), classes =
 * 1 + the largest label, x = NULL and seq[(i*steps + t)*dim + c].
 *
 * Errors name "FILE:LINE: sample K: ..." (K = 0-based window index, columns
 * counted from 1 with the label as column 1), return a status and leave
 * nothing allocated. */
#define _POSIX_C_SOURCE 200809L
#include "soma.h"
#include "core/err.h"
#include "data/seq.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest t accepted in a header: a bigger one is a typo, not a window. */
#define CSV_MAX_T 10000000ul

/* A parsed header: the line (owned) and the channel names pointing into it. */
typedef struct csv_header {
    char *line;
    const char **ch; /* channel names (not NUL-terminated) */
    size_t *chlen;
    size_t channels, steps;
} csv_header;

static void header_free(csv_header *h) {
    free(h->line);
    free(h->ch);
    free(h->chlen);
    memset(h, 0, sizeof *h);
}

/* Strip "\n", then "\r"; returns the new length. */
static size_t chomp(char *line, size_t len) {
    if (len && line[len - 1] == '\n') line[--len] = '\0';
    if (len && line[len - 1] == '\r') line[--len] = '\0';
    return len;
}

/* Split a `<channel>@<t>` column: *chlen gets the channel's length and *t
 * its step; 0 unless well formed (non-empty channel, canonical t). */
static int split_name(const char *s, size_t *chlen, unsigned long *t) {
    const char *at = strrchr(s, '@');
    if (!at || at == s || !at[1]) return 0;
    const char *d = at + 1;
    if (d[0] == '0' && d[1]) return 0; /* leading zero */
    unsigned long v = 0;
    for (; *d; d++) {
        if (*d < '0' || *d > '9') return 0;
        v = v * 10 + (unsigned long)(*d - '0');
        if (v > CSV_MAX_T) return 0;
    }
    *chlen = (size_t)(at - s);
    *t = v;
    return 1;
}

/* Whether column s is exactly channel `ch` (length n) at step t. */
static int name_is(const char *s, const char *ch, size_t n, size_t t) {
    size_t sl;
    unsigned long st;
    return split_name(s, &sl, &st) && sl == n && memcmp(s, ch, n) == 0 && st == t;
}

/* Parse the header line (taken over by h, already chomped). */
static int parse_header(csv_header *h, char *line, const char *path, char *err, size_t errlen) {
    memset(h, 0, sizeof *h);
    h->line = line;
    char *s = line;
    if ((unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF) s += 3;
    size_t ncols = 1;
    for (const char *p = s; *p; p++) ncols += *p == ',';
    char **col = calloc(ncols, sizeof *col);
    h->ch = malloc(ncols * sizeof *h->ch);
    h->chlen = malloc(ncols * sizeof *h->chlen);
    if (!col || !h->ch || !h->chlen) {
        free(col);
        return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s:1: cannot allocate the header's %zu columns", path,
                          ncols);
    }
    for (size_t j = 0; j < ncols; j++) {
        col[j] = s;
        char *c = strchr(s, ',');
        if (c) *c = '\0', s = c + 1;
    }
    int st = SOMA_STATUS_OK;
    if (strcmp(col[0], "label") != 0) {
        st = soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                        "%s:1: column 1 '%.64s': expected 'label' (the header is label,<channel>@<t>,...)", path,
                        col[0]);
        goto done;
    }
    if (ncols < 2) {
        st =
            soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                       "%s:1: no value columns (expected label, then <channel>@<t> columns in time-major order)", path);
        goto done;
    }
    /* Channels in order of first appearance and the largest step. For a
     * well-formed header the channel expected at column j is found at once. */
    size_t C = 0;
    unsigned long tmax = 0;
    for (size_t j = 1; j < ncols; j++) {
        size_t n;
        unsigned long t;
        if (!split_name(col[j], &n, &t)) continue;
        if (t > tmax) tmax = t;
        size_t guess = C ? (j - 1) % C : 0;
        if (C && h->chlen[guess] == n && memcmp(h->ch[guess], col[j], n) == 0) continue;
        size_t k = 0;
        while (k < C && !(h->chlen[k] == n && memcmp(h->ch[k], col[j], n) == 0)) k++;
        if (k == C) h->ch[C] = col[j], h->chlen[C] = n, C++;
    }
    size_t steps = (size_t)tmax + 1, need = C * steps;
    for (size_t j = 1; j < ncols; j++) {
        size_t v = j - 1, n;
        unsigned long t;
        if (!split_name(col[j], &n, &t) && (C == 0 || v >= need)) {
            st = soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                            "%s:1: column %zu '%.64s': expected '<channel>@<t>' in time-major order", path, j + 1,
                            col[j]);
            goto done;
        }
        if (v >= need) {
            st = soma__errf(
                err, errlen, SOMA_STATUS_FORMAT,
                "%s:1: column %zu '%.64s': expected '<channel>@<t>' in time-major order, here the end of the "
                "header (%zu steps x %zu channels)",
                path, j + 1, col[j], steps, C);
            goto done;
        }
        size_t c = v % C;
        if (!name_is(col[j], h->ch[c], h->chlen[c], v / C)) {
            st = soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                            "%s:1: column %zu '%.64s': expected '<channel>@<t>' in time-major order, here '%.*s@%zu'",
                            path, j + 1, col[j], (int)(h->chlen[c] < 64 ? h->chlen[c] : 64), h->ch[c], v / C);
            goto done;
        }
    }
    if (ncols - 1 < need) {
        size_t v = ncols - 1, c = v % C;
        st = soma__errf(
            err, errlen, SOMA_STATUS_FORMAT,
            "%s:1: column %zu: missing, expected '%.*s@%zu' (time-major order needs %zu steps x %zu channels)", path,
            ncols + 1, (int)(h->chlen[c] < 64 ? h->chlen[c] : 64), h->ch[c], v / C, steps, C);
        goto done;
    }
    h->channels = C;
    h->steps = steps;
done:
    free(col);
    return st;
}

/* Same channels and steps as the reference header? */
static int header_check(const csv_header *h, const csv_header *ref, const char *path, const char *refpath, char *err,
                        size_t errlen) {
    if (h->channels != ref->channels || h->steps != ref->steps)
        return soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                          "%s:1: header has %zu steps x %zu channels but %s has %zu steps x %zu channels (expected the "
                          "same header)",
                          path, h->steps, h->channels, refpath, ref->steps, ref->channels);
    for (size_t c = 0; c < h->channels; c++)
        if (h->chlen[c] != ref->chlen[c] || memcmp(h->ch[c], ref->ch[c], h->chlen[c]) != 0)
            return soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                              "%s:1: channel %zu is '%.*s' but '%.*s' in %s (expected the same header)", path, c + 1,
                              (int)(h->chlen[c] < 64 ? h->chlen[c] : 64), h->ch[c],
                              (int)(ref->chlen[c] < 64 ? ref->chlen[c] : 64), ref->ch[c], refpath);
    return SOMA_STATUS_OK;
}

/* Skip blanks (space, tab). */
static const char *skip_blank(const char *p) {
    while (*p == ' ' || *p == '\t') p++;
    return p;
}

/* One window line (chomped, non-empty) into seq/y. */
static int parse_row(char *line, size_t len, const csv_header *h, const char *path, size_t lineno, size_t k,
                     float *seq, uint8_t *y, char *err, size_t errlen) {
    const size_t dim = h->channels, steps = h->steps, want = 1 + dim * steps;
    if (strlen(line) != len)
        return soma__errf(err, errlen, SOMA_STATUS_FORMAT, "%s:%zu: sample %zu: line contains a NUL byte", path, lineno,
                          k);
    size_t nf = 1;
    for (const char *p = line; *p; p++) nf += *p == ',';
    if (nf != want)
        return soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                          "%s:%zu: sample %zu: %zu values (expected %zu: label + %zu steps x %zu channels)", path,
                          lineno, k, nf, want, steps, dim);
    char *f = line;
    for (size_t j = 0; j < want; j++) {
        char *c = strchr(f, ',');
        if (c) *c = '\0';
        const char *p = skip_blank(f);
        char *end;
        if (j == 0) {
            errno = 0;
            long v = strtol(p, &end, 10);
            if (!*p || end == p || *skip_blank(end) != '\0')
                return soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                                  "%s:%zu: sample %zu: column 1: label '%.32s' is not an integer (expected 0..255)",
                                  path, lineno, k, f);
            if (errno == ERANGE || v < 0 || v > 255)
                return soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                                  "%s:%zu: sample %zu: column 1: label '%.32s' out of range (expected 0..255)", path,
                                  lineno, k, f);
            y[k] = (uint8_t)v;
        } else {
            if (!*p)
                return soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                                  "%s:%zu: sample %zu: column %zu: empty value (expected a number)", path, lineno, k,
                                  j + 1);
            double d = strtod(p, &end);
            if (end == p || *skip_blank(end) != '\0')
                return soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                                  "%s:%zu: sample %zu: column %zu: '%.32s' is not a number", path, lineno, k, j + 1, f);
            float x = (float)d;
            if (isnan(d))
                return soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                                  "%s:%zu: sample %zu: column %zu: '%.32s' is not a number (NaN)", path, lineno, k,
                                  j + 1, f);
            if (!isfinite(x))
                return soma__errf(
                    err, errlen, SOMA_STATUS_FORMAT,
                    "%s:%zu: sample %zu: column %zu: '%.32s' is not finite (expected a float of magnitude "
                    "below 3.4e38)",
                    path, lineno, k, j + 1, f);
            seq[j - 1] = x; /* header order = [t][c] = the layout of one window */
        }
        if (c) f = c + 1;
    }
    return SOMA_STATUS_OK;
}

/* Read one file into ds. With ref, its header must match; else *hdr_out (may
 * be NULL) gets the parsed header. */
static int load_file(soma_dataset *ds, const char *path, size_t limit, const csv_header *ref, const char *refpath,
                     csv_header *hdr_out, char *err, size_t errlen) {
    memset(ds, 0, sizeof *ds);
    errno = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return soma__errf(err, errlen, SOMA_STATUS_IO, "%s: cannot open: %s", path,
                          errno ? strerror(errno) : "unknown error");
    int st = SOMA_STATUS_OK;
    csv_header h;
    memset(&h, 0, sizeof h);
    char *line = NULL;
    size_t cap = 0, lineno = 0, n = 0, ncap = 0, blank_at = 0;
    float *seq = NULL;
    uint8_t *y = NULL;
    unsigned maxl = 0;

    ssize_t got = getline(&line, &cap, f);
    if (got < 0) {
        if (ferror(f))
            st = soma__errf(err, errlen, SOMA_STATUS_IO, "%s: read error: %s", path, strerror(errno));
        else
            st = soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                            "%s: empty file (expected a header line label,<channel>@<t>,..., then one window per line)",
                            path);
        goto done;
    }
    lineno = 1;
    size_t len = chomp(line, (size_t)got);
    if (strlen(line) != len) {
        st = soma__errf(err, errlen, SOMA_STATUS_FORMAT, "%s:1: header contains a NUL byte", path);
        goto done;
    }
    st = parse_header(&h, line, path, err, errlen); /* h owns line now */
    line = NULL, cap = 0;
    if (st) goto done;
    if (ref && (st = header_check(&h, ref, path, refpath, err, errlen))) goto done;
    const size_t per = h.channels * h.steps;

    while (!limit || n < limit) {
        errno = 0;
        got = getline(&line, &cap, f);
        if (got < 0) {
            if (ferror(f)) st = soma__errf(err, errlen, SOMA_STATUS_IO, "%s: read error: %s", path, strerror(errno));
            break;
        }
        lineno++;
        len = chomp(line, (size_t)got);
        if (len == 0) {
            if (!blank_at) blank_at = lineno;
            continue;
        }
        if (blank_at) {
            st =
                soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                           "%s:%zu: sample %zu: empty line (expected label + %zu steps x %zu channels; blank lines are "
                           "allowed only at the end)",
                           path, blank_at, n, h.steps, h.channels);
            break;
        }
        if (n == ncap) {
            size_t nc = ncap ? 2 * ncap : 64;
            if (nc > SIZE_MAX / sizeof(float) / per) {
                st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s:%zu: too many windows", path, lineno);
                break;
            }
            float *s2 = realloc(seq, nc * per * sizeof *s2);
            if (s2) seq = s2;
            uint8_t *y2 = s2 ? realloc(y, nc) : NULL;
            if (y2) y = y2;
            if (!s2 || !y2) {
                st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s:%zu: cannot allocate %zu windows of %zu values",
                                path, lineno, nc, per);
                break;
            }
            ncap = nc;
        }
        st = parse_row(line, len, &h, path, lineno, n, seq + n * per, y, err, errlen);
        if (st) break;
        if (y[n] > maxl) maxl = y[n];
        n++;
    }
    if (!st && n == 0)
        st = soma__errf(
            err, errlen, SOMA_STATUS_FORMAT,
            "%s: no samples (expected one window per line after the header: label + %zu steps x %zu channels)", path,
            h.steps, h.channels);
    if (st) goto done;
    if (n < ncap) { /* give back the unused tail */
        float *s2 = realloc(seq, n * per * sizeof *s2);
        if (s2) seq = s2;
        uint8_t *y2 = realloc(y, n);
        if (y2) y = y2;
    }
    ds->n = n;
    ds->dim = ds->cols = h.channels;
    ds->rows = 1;
    ds->steps = h.steps;
    ds->classes = (size_t)maxl + 1;
    ds->seq = seq;
    ds->y = y;
    ds->x = NULL;
    seq = NULL, y = NULL;
    if (hdr_out) *hdr_out = h, memset(&h, 0, sizeof h);
done:
    fclose(f);
    free(line);
    free(seq);
    free(y);
    header_free(&h);
    return st;
}

int soma__load_csv(const soma_data_opts *opts, soma_dataset *train, soma_dataset *test, char *err, size_t errlen) {
    if (train) memset(train, 0, sizeof *train);
    if (test) memset(test, 0, sizeof *test);
    if (!opts || (!train && !test))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "soma__load_csv: NULL argument");
    char trpath[sizeof opts->dir + 16], tepath[sizeof opts->dir + 16];
    snprintf(trpath, sizeof trpath, "%s/train.csv", opts->dir);
    snprintf(tepath, sizeof tepath, "%s/test.csv", opts->dir);
    csv_header h;
    memset(&h, 0, sizeof h);
    int st = SOMA_STATUS_OK;
    if (train) st = load_file(train, trpath, opts->limit_train, NULL, NULL, &h, err, errlen);
    if (!st && test) st = load_file(test, tepath, opts->limit_test, train ? &h : NULL, trpath, NULL, err, errlen);
    header_free(&h);
    if (st) {
        soma_data_free(train);
        soma_data_free(test);
    }
    return st;
}
