/* err.c — error messages into caller-owned buffers (see err.h). */
#include <stdio.h>
#include "core/err.h"

int soma__verrf(char *buf, size_t cap, int status, const char *prefix, const char *fmt, va_list ap) {
    if (!buf || cap == 0) return status;
    size_t k = 0;
    if (prefix) {
        int n = snprintf(buf, cap, "%s: ", prefix);
        if (n < 0) buf[0] = 0;
        /* A prefix that fills the buffer leaves no room for the message. */
        if (n < 0 || (size_t)n >= cap) return status;
        k = (size_t)n;
    }
    vsnprintf(buf + k, cap - k, fmt, ap);
    return status;
}

int soma__errf(char *buf, size_t cap, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    soma__verrf(buf, cap, status, NULL, fmt, ap);
    va_end(ap);
    return status;
}
