/* fuzz_data.c — libFuzzer harness for the data and input file readers.
 * The first byte of an input picks the reader, the rest is the file:
 *   0  IDX image file (soma_data_load_idx), with a second byte cutting the
 *      rest into the image file and the label file;
 *   1  the same, the image file gzip-compressed first (the gzip path);
 *   2  CSV data set (train.csv and test.csv, the same bytes);
 *   3  N-MNIST event file (DIR/Train/3/a.bin and DIR/Test/3/a.bin);
 *   4  a spike file of a spike_source population ("neuron,time_ms" lines),
 *      loaded and simulated for 5 ms;
 *   5  an edge list of a `connect: {rule: file}` projection, loaded and
 *      simulated for 5 ms.
 * SHD (HDF5) is not here: its parser is libhdf5's, whose own robustness
 * against hostile files is outside soma (see docs/testing.md).
 * Run: make fuzz. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "soma.h"

static char dir[128];

static void put(const char *name, const uint8_t *p, size_t n) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

static void put_gz(const char *name, const uint8_t *p, size_t n) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    gzFile g = gzopen(path, "wb");
    if (!g) return;
    if (n) gzwrite(g, p, (unsigned)n);
    gzclose(g);
}

static void run_yaml(const char *yaml) {
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/net.yaml", dir);
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs(yaml, f);
    fclose(f);
    soma_net *net = NULL;
    soma_sim_file_opts fo;
    if (soma_net_load_yaml(path, NULL, 0, &net, NULL, NULL, &fo, err, sizeof err) == 0) {
        soma_sim_opts o;
        soma_sim_opts_default(&o);
        o.threads = 1;
        soma_sim *sim = NULL;
        if (soma_sim_create(&sim, net, &o, err, sizeof err) == 0) soma_sim_run(sim, 5.0, NULL, NULL);
        soma_sim_free(sim);
        soma_net_free(net);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/soma-fuzz-data-%d", (int)getpid());
        mkdir(dir, 0700);
        char p[256];
        snprintf(p, sizeof p, "%s/Train", dir), mkdir(p, 0700);
        snprintf(p, sizeof p, "%s/Train/3", dir), mkdir(p, 0700);
        snprintf(p, sizeof p, "%s/Test", dir), mkdir(p, 0700);
        snprintf(p, sizeof p, "%s/Test/3", dir), mkdir(p, 0700);
    }
    if (size < 1) return 0;
    int which = data[0] % 6;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    char err[512];
    soma_dataset a, b;
    memset(&a, 0, sizeof a), memset(&b, 0, sizeof b);
    soma_data_opts o;
    soma_data_opts_default(&o);
    snprintf(o.dir, sizeof o.dir, "%s", dir);
    o.steps = 4;
    o.threads = 1;
    if (which <= 1) {
        size_t cut = n ? (size_t)p[0] * n / 256 : 0;
        if (n) p++, n--;
        if (cut > n) cut = n;
        if (which == 0) put("img", p, cut);
        else put_gz("img", p, cut);
        put("lbl", p + cut, n - cut);
        char ip[256], lp[256];
        snprintf(ip, sizeof ip, "%s/img", dir);
        snprintf(lp, sizeof lp, "%s/lbl", dir);
        soma_data_load_idx(&a, ip, lp, err, sizeof err);
        soma_data_free(&a);
    } else if (which == 2) {
        put("train.csv", p, n);
        put("test.csv", p, n);
        snprintf(o.dataset, sizeof o.dataset, "csv");
        if (soma_data_load(&o, &a, &b, err, sizeof err) == 0) soma_data_free(&a), soma_data_free(&b);
    } else if (which == 3) {
        put("Train/3/a.bin", p, n);
        put("Test/3/a.bin", p, n);
        snprintf(o.dataset, sizeof o.dataset, "nmnist");
        if (soma_data_load(&o, &a, &b, err, sizeof err) == 0) soma_data_free(&a), soma_data_free(&b);
    } else if (which == 4) {
        put("spikes.csv", p, n);
        run_yaml("network:\n  dt: 0.1ms\n  populations:\n    src: {model: spike_source, size: 8}\n"
                 "    n: {model: iaf_psc_delta, size: 4}\n  projections:\n"
                 "    - {from: src, to: n, connect: {rule: all_to_all}, weight: 20mV, delay: 1ms}\n"
                 "  inputs:\n    - {to: src, spikes: spikes.csv}\n");
    } else {
        put("edges.csv", p, n);
        run_yaml("network:\n  dt: 0.1ms\n  populations:\n    a: {model: iaf_psc_delta, size: 6, I_e: 400pA}\n"
                 "    b: {model: iaf_psc_delta, size: 5}\n  projections:\n"
                 "    - {from: a, to: b, connect: {rule: file, file: edges.csv}, weight: 1mV, delay: 1ms}\n");
    }
    return 0;
}
