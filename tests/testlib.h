/* testlib.h — minimal test harness shared by tests/test_*.c: checks count
 * failures, print file:line on failure, and main() returns nonzero if any failed. */
#ifndef SOMA_TESTLIB_H
#define SOMA_TESTLIB_H
#include <math.h>
#include <stdio.h>
#include <stddef.h>

extern int t_failed, t_passed;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (cond) t_passed++;                                                    \
        else { t_failed++; fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); } \
    } while (0)

#define CHECK_MSG(cond, ...)                                                     \
    do {                                                                         \
        if (cond) t_passed++;                                                    \
        else { t_failed++; fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
               fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); }             \
    } while (0)

/* |a-b| <= tol * max(1, |a|, |b|) */
#define CHECK_NEAR(a, b, tol)                                                    \
    do {                                                                         \
        double ta_ = (double)(a), tb_ = (double)(b);                             \
        double ts_ = fmax(1.0, fmax(fabs(ta_), fabs(tb_)));                      \
        if (fabs(ta_ - tb_) <= (tol) * ts_) t_passed++;                          \
        else { t_failed++; fprintf(stderr, "%s:%d: %s = %.9g, %s = %.9g (tol %g)\n", __FILE__, __LINE__, #a, ta_, #b, tb_, (double)(tol)); } \
    } while (0)

/* Print the closing "N passed, N failed" line; returns the exit code. */
int t_report(const char *name);
/* Path of a fresh scratch directory for this test (created). */
const char *t_tmpdir(const char *name);
/* Write bytes to a file; 0 on success. */
int t_write_file(const char *path, const void *data, size_t n);
/* Read a whole file (malloc'd; *n gets its size), NULL on failure. */
void *t_read_file(const char *path, size_t *n);
#endif

#include "soma.h"
/* Check a trainer's gradients of every tensor against central finite
 * differences of its loss on one batch (every stride-th entry). Two step
 * sizes are tried; where they disagree the float loss is too noisy for that
 * entry, which is skipped and counted in *skipped. Each compared entry is a
 * CHECK with relative tolerance tol (scaled by max(|g|, 1e-2 max|g| of the
 * tensor)). Returns the number of entries looked at. */
size_t t_check_trainer_fd(soma_trainer *tr, soma_net *net, const float *x, int tc, const uint8_t *y, size_t B,
                          size_t stride, double tol, size_t *skipped, const char *label);
