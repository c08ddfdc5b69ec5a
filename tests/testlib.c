/* testlib.c — the shared test harness (see testlib.h). */
#define _POSIX_C_SOURCE 200809L
#include "testlib.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <math.h>

int t_failed = 0, t_passed = 0;

int t_report(const char *name) {
    printf("%s: %d passed, %d failed\n", name, t_passed, t_failed);
    return t_failed ? 1 : 0;
}

const char *t_tmpdir(const char *name) {
    static char buf[256];
    snprintf(buf, sizeof buf, "/tmp/soma-test-%.60s-%ld", name, (long)getpid());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", buf, buf);
    if (system(cmd) != 0) return NULL;
    return buf;
}

int t_write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

void *t_read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)sz + 1);
    if (buf && fread(buf, 1, (size_t)sz, f) != (size_t)sz) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) { buf[sz] = 0; if (n) *n = (size_t)sz; }
    return buf;
}

size_t t_check_trainer_fd(soma_trainer *tr, soma_net *net, const float *x, int tc, const uint8_t *y, size_t B,
                          size_t stride, double tol, size_t *skipped, const char *label) {
    double l0;
    size_t looked = 0, skip = 0;
    CHECK(soma_train_grad(tr, x, tc, y, B, &l0, NULL) == 0);
    /* Copy every gradient first: each evaluation below overwrites them. */
    size_t nt = soma_net_tensor_count(net);
    float **grads = calloc(nt, sizeof *grads);
    for (size_t i = 0; i < nt; i++) {
        soma_tensor t;
        soma_train_tensor(tr, i, &t);
        grads[i] = malloc(t.rows * t.cols * sizeof(float));
        memcpy(grads[i], t.grad, t.rows * t.cols * sizeof(float));
    }
    for (size_t i = 0; i < nt; i++) {
        soma_tensor t;
        soma_train_tensor(tr, i, &t);
        size_t n = t.rows * t.cols;
        const float *g = grads[i];
        double gmax = 0;
        for (size_t k = 0; k < n; k++) gmax = fmax(gmax, fabs(g[k]));
        for (size_t k = 0; k < n; k += stride) {
            float w0 = t.data[k];
            double fd[2], hs[2] = {2e-2, 1e-2};
            for (int q = 0; q < 2; q++) {
                double lp, lm;
                t.data[k] = w0 + (float)hs[q];
                soma_train_sync(tr);
                soma_train_grad(tr, x, tc, y, B, &lp, NULL);
                t.data[k] = w0 - (float)hs[q];
                soma_train_sync(tr);
                soma_train_grad(tr, x, tc, y, B, &lm, NULL);
                fd[q] = (lp - lm) / (2 * hs[q]);
            }
            t.data[k] = w0;
            double scale = fmax(fabs(g[k]), fmax(1e-2 * gmax, 1e-4));
            looked++;
            if (fabs(fd[0] - fd[1]) > 2e-2 * scale) {
                skip++;
                continue;
            }
            double err = fabs(fd[1] - g[k]) / scale;
            CHECK_MSG(err < tol, "%s: %s[%zu]: backward %g, finite difference %g", label, t.name, k, g[k], fd[1]);
        }
    }
    soma_train_sync(tr);
    for (size_t i = 0; i < nt; i++) free(grads[i]);
    free(grads);
    if (skipped) *skipped = skip;
    return looked;
}
