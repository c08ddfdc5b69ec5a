/* fuzz_shd.c — libFuzzer harness for the SHD loader (src/data/shd.c).
 *
 * The HDF5 container itself is parsed by libhdf5, whose robustness against
 * hostile bytes is outside soma (docs/testing.md). What soma's loader must
 * survive is every well-formed HDF5 file with odd contents, so this harness
 * is structure-aware: the input's bytes describe a file, the harness writes
 * it with the HDF5 API as shd_train.h5 and shd_test.h5, and loads it with
 * soma_data_load. The loader must either load it or refuse it with a
 * status; the sanitizers catch the rest. Input bytes, in order (missing
 * bytes read as 0):
 *
 *   flags   bit 0 times float64 (else float32); bits 1-2 the units' type
 *           (uint16, int32, uint8, int64); bit 3 no /labels; bit 4 labels
 *           as floats; bit 5 times as plain floats (not vlen); bit 6 no
 *           /spikes/units; bit 7 /labels 2-D
 *   steps   1..64 time bins
 *   bin     0: bin_ms = 0 (the sample's span); 255: -1 ms; else bin / 2 ms
 *   ns      samples in /spikes/times (at most 16), nu = ns or ns - 1 (flag
 *           byte's low bit of the next byte), nl labels (at most 16)
 *   then per sample: n times, m units (each at most 32), n times as raw
 *   4-byte floats (NaN, infinities, negatives included), m units as
 *   4-byte integers cast to the units' type; then nl labels as 2 bytes.
 *
 * Run: make fuzz. The regression corpus fuzz/regress/shd/ replays in
 * tests/test_fuzz_regress.c. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "soma.h"

#define SHD_FUZZ_SAMPLES 16
#define SHD_FUZZ_SPIKES 32

typedef struct reader {
    const uint8_t *p;
    size_t n;
} reader;

static uint8_t byte(reader *r) {
    if (!r->n) return 0;
    r->n--;
    return *r->p++;
}

static uint32_t word(reader *r) {
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) v |= (uint32_t)byte(r) << (8 * k);
    return v;
}

static char shd_dir[128];

/* Write the file the bytes describe; returns 0 if HDF5 wrote it. */
static int shd_write(const char *path, reader *r) {
    uint8_t flags = byte(r);
    (void)byte(r), (void)byte(r); /* steps and bin: read by the caller first */
    size_t ns = byte(r) % (SHD_FUZZ_SAMPLES + 1);
    uint8_t shape = byte(r);
    size_t nu = (shape & 1) && ns ? ns - 1 : ns;
    size_t nl = byte(r) % (SHD_FUZZ_SAMPLES + 1);
    static float t32[SHD_FUZZ_SAMPLES][SHD_FUZZ_SPIKES];
    static double t64[SHD_FUZZ_SAMPLES][SHD_FUZZ_SPIKES];
    static int64_t u[SHD_FUZZ_SAMPLES][SHD_FUZZ_SPIKES];
    static uint8_t ub[SHD_FUZZ_SAMPLES][SHD_FUZZ_SPIKES * 8];
    hvl_t tv[SHD_FUZZ_SAMPLES], uv[SHD_FUZZ_SAMPLES];
    int utype = (flags >> 1) & 3;
    size_t usz = utype == 0 ? 2 : utype == 1 ? 4 : utype == 2 ? 1 : 8;
    for (size_t i = 0; i < ns; i++) {
        size_t n = byte(r) % (SHD_FUZZ_SPIKES + 1), m = byte(r) % (SHD_FUZZ_SPIKES + 1);
        for (size_t k = 0; k < n; k++) {
            uint32_t w = word(r);
            float f;
            memcpy(&f, &w, 4);
            t32[i][k] = f, t64[i][k] = f;
        }
        for (size_t k = 0; k < m; k++) {
            int32_t v = (int32_t)word(r);
            u[i][k] = v;
            if (usz == 2) { uint16_t x = (uint16_t)v; memcpy(ub[i] + 2 * k, &x, 2); }
            else if (usz == 4) memcpy(ub[i] + 4 * k, &v, 4);
            else if (usz == 1) ub[i][k] = (uint8_t)v;
            else memcpy(ub[i] + 8 * k, &u[i][k], 8);
        }
        tv[i].len = n, tv[i].p = (flags & 1) ? (void *)t64[i] : (void *)t32[i];
        uv[i].len = m, uv[i].p = ub[i];
    }
    uint16_t labels[SHD_FUZZ_SAMPLES];
    float flabels[SHD_FUZZ_SAMPLES];
    for (size_t i = 0; i < nl; i++) {
        labels[i] = (uint16_t)(byte(r) | byte(r) << 8);
        flabels[i] = (float)labels[i];
    }
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return -1;
    hid_t g = H5Gcreate2(f, "spikes", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t tf = (flags & 1) ? H5T_IEEE_F64LE : H5T_IEEE_F32LE, tm = (flags & 1) ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT;
    hid_t uf = utype == 0 ? H5T_STD_U16LE : utype == 1 ? H5T_STD_I32LE : utype == 2 ? H5T_STD_U8LE : H5T_STD_I64LE;
    hid_t um = utype == 0 ? H5T_NATIVE_UINT16 : utype == 1 ? H5T_NATIVE_INT32 : utype == 2 ? H5T_NATIVE_UINT8
                                                                                           : H5T_NATIVE_INT64;
    hsize_t dn = ns, du = nu;
    hid_t sp = H5Screate_simple(1, &dn, NULL), spu = H5Screate_simple(1, &du, NULL);
    if (flags & 32) { /* plain floats: each sample's first time */
        float first[SHD_FUZZ_SAMPLES];
        for (size_t i = 0; i < ns; i++) first[i] = tv[i].len ? t32[i][0] : 0.0f;
        hid_t d = H5Dcreate2(g, "times", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (d >= 0) H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, first), H5Dclose(d);
    } else {
        hid_t vf = H5Tvlen_create(tf), vm = H5Tvlen_create(tm);
        hid_t d = H5Dcreate2(g, "times", vf, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (d >= 0) H5Dwrite(d, vm, H5S_ALL, H5S_ALL, H5P_DEFAULT, tv), H5Dclose(d);
        H5Tclose(vf), H5Tclose(vm);
    }
    if (!(flags & 64)) {
        hid_t vf = H5Tvlen_create(uf), vm = H5Tvlen_create(um);
        hid_t d = H5Dcreate2(g, "units", vf, spu, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (d >= 0) H5Dwrite(d, vm, H5S_ALL, H5S_ALL, H5P_DEFAULT, uv), H5Dclose(d);
        H5Tclose(vf), H5Tclose(vm);
    }
    if (!(flags & 8)) {
        hsize_t dl[2] = {nl, 1};
        hid_t spl = H5Screate_simple((flags & 128) ? 2 : 1, dl, NULL);
        hid_t d = H5Dcreate2(f, "labels", (flags & 16) ? H5T_IEEE_F32LE : H5T_STD_U16LE, spl, H5P_DEFAULT,
                             H5P_DEFAULT, H5P_DEFAULT);
        if (d >= 0) {
            if (flags & 16) H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, flabels);
            else H5Dwrite(d, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels);
            H5Dclose(d);
        }
        H5Sclose(spl);
    }
    H5Sclose(sp), H5Sclose(spu);
    H5Gclose(g);
    return H5Fclose(f) < 0 ? -1 : 0;
}

/* tests/test_fuzz_regress.c includes this file beside fuzz_data.c and
 * renames the entry point. */
#ifndef SHD_FUZZ_ENTRY
#define SHD_FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif
int SHD_FUZZ_ENTRY(const uint8_t *data, size_t size);
int SHD_FUZZ_ENTRY(const uint8_t *data, size_t size) {
    if (!shd_dir[0]) {
        snprintf(shd_dir, sizeof shd_dir, "/tmp/soma-fuzz-shd-%d", (int)getpid());
        mkdir(shd_dir, 0700);
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the harness's own writes print nothing */
    }
    reader r = {data, size};
    uint8_t steps = size > 1 ? data[1] : 0, bin = size > 2 ? data[2] : 0;
    char p[256], q[256];
    snprintf(p, sizeof p, "%s/shd_train.h5", shd_dir);
    snprintf(q, sizeof q, "%s/shd_test.h5", shd_dir);
    if (shd_write(p, &r)) return 0;
    /* The test file: the same description, so both splits load the same bytes. */
    reader r2 = {data, size};
    if (shd_write(q, &r2)) return 0;
    soma_data_opts o;
    soma_data_opts_default(&o);
    snprintf(o.dataset, sizeof o.dataset, "shd");
    snprintf(o.dir, sizeof o.dir, "%s", shd_dir);
    o.encoding = SOMA_ENCODING_SEQUENCE;
    o.steps = 1 + steps % 64;
    o.bin_ms = bin == 0 ? 0.0f : bin == 255 ? -1.0f : 0.5f * (float)bin;
    o.threads = 1;
    soma_dataset a, b;
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b);
    char err[512];
    if (soma_data_load(&o, &a, &b, err, sizeof err) == 0) soma_data_free(&a), soma_data_free(&b);
    return 0;
}
