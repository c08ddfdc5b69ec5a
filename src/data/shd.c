/* shd.c — the Spiking Heidelberg Digits (SHD) loader: DIR/shd_train.h5 and
 * DIR/shd_test.h5, HDF5 files laid out as the published ones:
 *
 *   /spikes/times  1-D, variable-length float arrays (float32 or float64): spike times in seconds
 *   /spikes/units  1-D, same length, variable-length integer arrays: unit ids 0..699
 *   /labels        1-D integer dataset: class of each sample (20 classes)
 *   /extra/...     speaker, keys, ... (ignored)
 *
 * Each sample's spikes are binned into opts->steps time bins of width
 * bin_ms (or, with bin_ms = 0, the sample's last spike time / steps); a
 * value of seq is the number of spikes of that unit in that bin, and spikes
 * past the last bin are dropped. Ragged data are read a block of samples at
 * a time through vlen memory types, so the file's own float and integer
 * widths do not matter. Every failure returns a status with "FILE: reason"
 * or "FILE: sample K: reason", closes every HDF5 handle and frees
 * everything; HDF5's own error printing is off while loading. */
#define _POSIX_C_SOURCE 200809L
#include "soma.h"
#include "core/err.h"
#include "data/seq.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SHD_UNITS 700
#define SHD_MAX_LABEL 255
/* Refuse data sets whose binned form would need more than this. */
#define SHD_MAX_BYTES (16.0 * 1024 * 1024 * 1024)
/* Samples read per block of ragged data. */
#define SHD_BLOCK 256
/* Added to a sample's last spike time when bin_ms = 0, so that spike lands in the last bin. */
#define SHD_SPAN_PAD 1e-6

static void reclaim(hid_t type, hid_t space, void *buf) {
#if H5_VERSION_GE(1, 12, 0)
    H5Treclaim(type, space, H5P_DEFAULT, buf);
#else
    H5Dvlen_reclaim(type, space, H5P_DEFAULT, buf);
#endif
}

static void close_dset(hid_t *d) {
    if (*d >= 0) H5Dclose(*d);
    *d = H5I_INVALID_HID;
}

/* Open the 1-D dataset group/name (group may be NULL) and check its type:
 * with want_vlen a vlen whose base has class `want`, else class `want`.
 * Returns the dataset and its length in *len, or H5I_INVALID_HID with
 * *status and err set. */
static hid_t open_1d(hid_t file, const char *fname, const char *group, const char *name, int want_vlen,
                     H5T_class_t want, hsize_t *len, int *status, char *err, size_t errlen) {
    char full[64];
    snprintf(full, sizeof full, "%s%s%s", group ? group : "", group ? "/" : "", name);
    const char *kind = want == H5T_FLOAT ? "float" : "integer";
    htri_t ok = 1;
    if (group) ok = H5Lexists(file, group, H5P_DEFAULT);
    if (ok > 0) ok = H5Lexists(file, full, H5P_DEFAULT);
    if (ok <= 0) {
        *status = soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                             "%s: missing dataset /%s (expected /spikes/times, "
                             "/spikes/units and /labels as in the SHD files)",
                             fname, full);
        return H5I_INVALID_HID;
    }
    hid_t d = H5Dopen2(file, full, H5P_DEFAULT);
    if (d < 0) {
        *status = soma__errf(err, errlen, SOMA_STATUS_FORMAT, "%s: /%s is not a dataset", fname, full);
        return H5I_INVALID_HID;
    }
    hid_t sp = H5Dget_space(d), ty = H5Dget_type(d);
    int ndims = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hsize_t dims[1] = {0};
    if (ndims == 1) H5Sget_simple_extent_dims(sp, dims, NULL);
    H5T_class_t cls = ty >= 0 ? H5Tget_class(ty) : H5T_NO_CLASS, base = cls;
    if (want_vlen) {
        base = H5T_NO_CLASS;
        if (cls == H5T_VLEN) {
            hid_t super = H5Tget_super(ty);
            if (super >= 0) {
                base = H5Tget_class(super);
                H5Tclose(super);
            }
        }
    }
    if (sp >= 0) H5Sclose(sp);
    if (ty >= 0) H5Tclose(ty);
    if (ndims != 1) {
        *status =
            soma__errf(err, errlen, SOMA_STATUS_FORMAT, "%s: /%s has %d dimensions (expected 1)", fname, full, ndims);
    } else if ((want_vlen && cls != H5T_VLEN) || base != want) {
        *status = soma__errf(err, errlen, SOMA_STATUS_FORMAT, "%s: /%s has the wrong type (expected %s%s)", fname, full,
                             want_vlen ? "variable-length arrays of " : "", kind);
    } else {
        *len = dims[0];
        return d;
    }
    H5Dclose(d);
    return H5I_INVALID_HID;
}

/* Select [start, start+count) of a 1-D dataset: file and memory spaces. */
static int select_block(hid_t d, hsize_t start, hsize_t count, hid_t *fs, hid_t *ms) {
    *fs = H5Dget_space(d);
    *ms = H5Screate_simple(1, &count, NULL);
    if (*fs < 0 || *ms < 0 || H5Sselect_hyperslab(*fs, H5S_SELECT_SET, &start, NULL, &count, NULL) < 0) return -1;
    return 0;
}

static void close_spaces(hid_t *fs, hid_t *ms) {
    if (*fs >= 0) H5Sclose(*fs);
    if (*ms >= 0) H5Sclose(*ms);
    *fs = *ms = H5I_INVALID_HID;
}

/* Bin one sample's spikes into out (steps*SHD_UNITS floats, zeroed). */
static int bin_sample(const hvl_t *tv, const hvl_t *uv, size_t k, int steps, double bin_s, float *out,
                      const char *fname, char *err, size_t errlen) {
    if (tv->len != uv->len)
        return soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                          "%s: sample %zu: %zu spike times but %zu units (expected equal "
                          "lengths)",
                          fname, k, tv->len, uv->len);
    const float *t = tv->p;
    const int *u = uv->p;
    double tmax = 0;
    for (size_t j = 0; j < tv->len; j++) {
        if (!(t[j] >= 0) || isinf(t[j]))
            return soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                              "%s: sample %zu: spike %zu has time %g (expected a finite "
                              "time >= 0 in seconds)",
                              fname, k, j, (double)t[j]);
        if (u[j] < 0 || u[j] >= SHD_UNITS)
            return soma__errf(err, errlen, SOMA_STATUS_FORMAT, "%s: sample %zu: unit %d (expected < %d)", fname, k,
                              u[j], SHD_UNITS);
        if (t[j] > tmax) tmax = t[j];
    }
    double w = bin_s > 0 ? bin_s : (tmax + SHD_SPAN_PAD) / steps;
    for (size_t j = 0; j < tv->len; j++) {
        double b = floor((double)t[j] / w);
        if (b < (double)steps) out[(size_t)b * SHD_UNITS + (size_t)u[j]] += 1.0f;
    }
    return SOMA_STATUS_OK;
}

/* Load one file into ds; on failure ds is left empty. */
static int load_file(soma_dataset *ds, const char *path, size_t limit, int steps, double bin_s, char *err,
                     size_t errlen) {
    memset(ds, 0, sizeof *ds);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return soma__errf(err, errlen, SOMA_STATUS_IO, "%s: cannot open: %s (expected the SHD file here)", path,
                          strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return soma__errf(err, errlen, SOMA_STATUS_IO, "%s: is a directory (expected a file)", path);
    FILE *f = fopen(path, "rb");
    if (!f) return soma__errf(err, errlen, SOMA_STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
    fclose(f);
    if (H5Fis_hdf5(path) <= 0)
        return soma__errf(err, errlen, SOMA_STATUS_FORMAT, "%s: not an HDF5 file (expected the SHD HDF5 layout)", path);

    int st = SOMA_STATUS_OK;
    hid_t file = H5I_INVALID_HID, dt = H5I_INVALID_HID, du = H5I_INVALID_HID, dl = H5I_INVALID_HID;
    hid_t mt = H5I_INVALID_HID, mu = H5I_INVALID_HID, fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    hvl_t *tbuf = NULL, *ubuf = NULL;
    int *labels = NULL;
    float *seq = NULL;
    uint8_t *y = NULL;

    file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        st = soma__errf(err, errlen, SOMA_STATUS_FORMAT, "%s: cannot open as HDF5 (damaged file?)", path);
        goto done;
    }
    hsize_t nt = 0, nu = 0, nl = 0;
    dt = open_1d(file, path, "spikes", "times", 1, H5T_FLOAT, &nt, &st, err, errlen);
    if (dt < 0) goto done;
    du = open_1d(file, path, "spikes", "units", 1, H5T_INTEGER, &nu, &st, err, errlen);
    if (du < 0) goto done;
    dl = open_1d(file, path, NULL, "labels", 0, H5T_INTEGER, &nl, &st, err, errlen);
    if (dl < 0) goto done;
    if (nt != nu || nt != nl) {
        st = soma__errf(err, errlen, SOMA_STATUS_FORMAT,
                        "%s: /spikes/times has %llu samples, /spikes/units %llu and "
                        "/labels %llu (expected equal lengths)",
                        path, (unsigned long long)nt, (unsigned long long)nu, (unsigned long long)nl);
        goto done;
    }
    if (nl == 0) {
        st = soma__errf(err, errlen, SOMA_STATUS_FORMAT, "%s: no samples (expected at least one)", path);
        goto done;
    }
    hsize_t n = limit && (hsize_t)limit < nl ? (hsize_t)limit : nl;
    double bytes = (double)n * steps * SHD_UNITS * sizeof(float) + (double)n * (sizeof(int) + 1);
    if (bytes > SHD_MAX_BYTES || n > SIZE_MAX / ((size_t)steps * SHD_UNITS * sizeof(float))) {
        st = soma__errf(err, errlen, SOMA_STATUS_NOMEM,
                        "%s: %llu samples x %d steps x %d units need about %.1f GiB "
                        "(more than the 16 GiB allowed; lower data.steps or data.limit_train/limit_test)",
                        path, (unsigned long long)n, steps, SHD_UNITS, bytes / (1024.0 * 1024 * 1024));
        goto done;
    }
    size_t N = (size_t)n, per = (size_t)steps * SHD_UNITS;

    /* Labels. */
    labels = malloc(N * sizeof *labels);
    y = malloc(N);
    seq = calloc(N * per, sizeof *seq);
    tbuf = calloc(SHD_BLOCK, sizeof *tbuf);
    ubuf = calloc(SHD_BLOCK, sizeof *ubuf);
    if (!labels || !y || !seq || !tbuf || !ubuf) {
        st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: cannot allocate %.0f bytes for %zu samples", path, bytes,
                        N);
        goto done;
    }
    if (select_block(dl, 0, n, &fs, &ms) < 0 || H5Dread(dl, H5T_NATIVE_INT, ms, fs, H5P_DEFAULT, labels) < 0) {
        st = soma__errf(err, errlen, SOMA_STATUS_FORMAT, "%s: cannot read /labels", path);
        goto done;
    }
    close_spaces(&fs, &ms);
    int maxl = 0;
    for (size_t k = 0; k < N; k++) {
        if (labels[k] < 0 || labels[k] > SHD_MAX_LABEL) {
            st = soma__errf(err, errlen, SOMA_STATUS_FORMAT, "%s: sample %zu: label %d (expected 0..%d)", path, k,
                            labels[k], SHD_MAX_LABEL);
            goto done;
        }
        y[k] = (uint8_t)labels[k];
        if (labels[k] > maxl) maxl = labels[k];
    }

    /* Spikes, a block of samples at a time. */
    mt = H5Tvlen_create(H5T_NATIVE_FLOAT);
    mu = H5Tvlen_create(H5T_NATIVE_INT);
    if (mt < 0 || mu < 0) {
        st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: cannot create HDF5 memory types", path);
        goto done;
    }
    for (size_t s = 0; s < N && !st; s += SHD_BLOCK) {
        size_t c = N - s < SHD_BLOCK ? N - s : SHD_BLOCK;
        memset(tbuf, 0, c * sizeof *tbuf);
        memset(ubuf, 0, c * sizeof *ubuf);
        if (select_block(dt, s, c, &fs, &ms) < 0) {
            st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: cannot select samples %zu..%zu", path, s, s + c - 1);
            break;
        }
        herr_t rt = H5Dread(dt, mt, ms, fs, H5P_DEFAULT, tbuf);
        close_spaces(&fs, &ms);
        herr_t ru = -1;
        if (rt >= 0 && select_block(du, s, c, &fs, &ms) >= 0) ru = H5Dread(du, mu, ms, fs, H5P_DEFAULT, ubuf);
        close_spaces(&fs, &ms);
        if (rt < 0 || ru < 0) {
            st = soma__errf(err, errlen, SOMA_STATUS_FORMAT, "%s: cannot read /spikes/%s of samples %zu..%zu", path,
                            rt < 0 ? "times" : "units", s, s + c - 1);
        }
        for (size_t i = 0; i < c && !st; i++)
            st = bin_sample(&tbuf[i], &ubuf[i], s + i, steps, bin_s, seq + (s + i) * per, path, err, errlen);
        /* Free what HDF5 allocated for this block (zeroed entries are skipped). */
        hsize_t cc = c;
        hid_t bs = H5Screate_simple(1, &cc, NULL);
        if (bs >= 0) {
            reclaim(mt, bs, tbuf);
            reclaim(mu, bs, ubuf);
            H5Sclose(bs);
        }
    }
    if (st) goto done;

    ds->n = N;
    ds->dim = SHD_UNITS;
    ds->rows = 1;
    ds->cols = SHD_UNITS;
    ds->classes = (size_t)maxl + 1;
    ds->x = NULL;
    ds->y = y;
    ds->seq = seq;
    ds->steps = (size_t)steps;
    y = NULL;
    seq = NULL;

done:
    close_spaces(&fs, &ms);
    if (mt >= 0) H5Tclose(mt);
    if (mu >= 0) H5Tclose(mu);
    close_dset(&dt);
    close_dset(&du);
    close_dset(&dl);
    if (file >= 0) H5Fclose(file);
    free(tbuf);
    free(ubuf);
    free(labels);
    free(seq);
    free(y);
    return st;
}

int soma__load_shd(const soma_data_opts *opts, soma_dataset *train, soma_dataset *test, char *err, size_t errlen) {
    if (train) memset(train, 0, sizeof *train);
    if (test) memset(test, 0, sizeof *test);
    if (!opts || (!train && !test)) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "shd: NULL argument");
    if (opts->steps < 1)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "shd: data.steps is %d (expected >= 1)", opts->steps);
    if (!(opts->bin_ms >= 0) || isinf(opts->bin_ms))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "shd: data.bin_ms is %g (expected >= 0; 0 = span / steps)",
                          (double)opts->bin_ms);
    double bin_s = opts->bin_ms > 0 ? (double)opts->bin_ms / 1000.0 : 0.0;
    char tr_path[1100], te_path[1100];
    int k1 = snprintf(tr_path, sizeof tr_path, "%s/shd_train.h5", opts->dir);
    int k2 = snprintf(te_path, sizeof te_path, "%s/shd_test.h5", opts->dir);
    if (k1 < 0 || k2 < 0 || (size_t)k1 >= sizeof tr_path || (size_t)k2 >= sizeof te_path)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: data directory path too long", opts->dir);

    H5E_auto2_t old_fn = NULL;
    void *old_data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &old_fn, &old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    int st = SOMA_STATUS_OK;
    if (train) st = load_file(train, tr_path, opts->limit_train, opts->steps, bin_s, err, errlen);
    if (!st && test) st = load_file(test, te_path, opts->limit_test, opts->steps, bin_s, err, errlen);
    H5Eset_auto2(H5E_DEFAULT, old_fn, old_data);
    if (st) {
        soma_data_free(train);
        soma_data_free(test);
    }
    return st;
}
