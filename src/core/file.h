/* file.h — atomic file writes shared by the library's writers: open
 * "PATH.tmp.<pid>", write, then commit (flush, fsync, close and rename over
 * PATH). On any failure the temporary file is removed, PATH keeps what it
 * had, and err names PATH and the reason. */
#ifndef SOMA_CORE_FILE_H
#define SOMA_CORE_FILE_H
#include <stddef.h>
#include <stdio.h>

/* The temporary file for PATH opened with mode ("w", "wb"); tmp gets its
 * name (n bytes of room). NULL, with a message, if it cannot be created. */
FILE *soma__tmp_open(const char *path, const char *mode, char *tmp, size_t n, char *err, size_t errlen);
/* Commit f (bad: an earlier write already failed) onto path; a status. */
int soma__tmp_commit(FILE *f, int bad, const char *tmp, const char *path, char *err, size_t errlen);
#endif
