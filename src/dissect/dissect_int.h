/* dissect_int.h — what the dissect files share inside the library. */
#ifndef SOMA_DISSECT_INT_H
#define SOMA_DISSECT_INT_H
#include <stdio.h>

/* Atomic file writes: open "PATH.tmp.<pid>" (tmp gets its name, n bytes of
 * room), write, then commit: flush, fsync, close and rename over PATH; on
 * any failure the temporary file is removed, PATH is left as it was, and a
 * message naming PATH goes to err. */
FILE *soma__dissect_tmp_open(const char *path, char *tmp, size_t n, char *err, size_t errlen);
int soma__dissect_tmp_commit(FILE *f, const char *tmp, const char *path, char *err, size_t errlen);
#endif
