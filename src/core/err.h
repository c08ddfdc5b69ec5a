/* err.h — the one way the library writes an error message into a caller's
 * buffer: printf-style, truncated to fit, and the status handed back so a
 * failing path reads `return soma__errf(err, errlen, SOMA_STATUS_IO, ...)`. */
#ifndef SOMA_ERR_H
#define SOMA_ERR_H
#include <stdarg.h>
#include <stddef.h>

#if defined(__GNUC__)
#define SOMA__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SOMA__PRINTF(f, a)
#endif

/* Format the message into buf (cap bytes, always NUL-terminated; nothing is
 * written when buf is NULL or cap is 0) and return status. */
int soma__errf(char *buf, size_t cap, int status, const char *fmt, ...) SOMA__PRINTF(4, 5);
/* The same from a va_list, for a file's own wrapper. A non-NULL prefix is
 * written first as "prefix: " (a file name, a path:line, a place in a
 * description), so the wrapper need not splice two buffers itself. */
int soma__verrf(char *buf, size_t cap, int status, const char *prefix, const char *fmt, va_list ap)
    SOMA__PRINTF(5, 0);
#endif
