/* testlib.c — the shared test harness (see testlib.h). */
#define _POSIX_C_SOURCE 200809L
#include "testlib.h"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
