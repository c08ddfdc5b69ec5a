/* file.c — atomic file writes (see file.h). */
#define _POSIX_C_SOURCE 200809L
#include "core/file.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include "core/err.h"
#include "soma.h"

FILE *soma__tmp_open(const char *path, const char *mode, char *tmp, size_t n, char *err, size_t errlen) {
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, mode);
    if (!f) soma__errf(err, errlen, SOMA_STATUS_IO, "cannot write %s: %s", path, strerror(errno));
    return f;
}

int soma__tmp_commit(FILE *f, int bad, const char *tmp, const char *path, char *err, size_t errlen) {
    bad |= ferror(f) != 0;
    bad |= fflush(f) != 0;
    bad |= fsync(fileno(f)) != 0;
    int e = errno;
    bad |= fclose(f) != 0;
    if (!bad && rename(tmp, path) == 0) return SOMA_STATUS_OK;
    e = bad ? (e ? e : EIO) : errno;
    remove(tmp);
    return soma__errf(err, errlen, SOMA_STATUS_IO, "cannot write %s: %s", path, strerror(e));
}
