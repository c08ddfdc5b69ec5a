/* names.h — the one lookup every name table uses (losses, optimizers,
 * schedules, encodings, readouts, surrogates): exact, case-sensitive. */
#ifndef SOMA_NAMES_H
#define SOMA_NAMES_H
#include <stdio.h>
#include <string.h>

/* Index of name in names[0..n), or -1 (also for NULL). */
static inline int soma__name_find(const char *const *names, int n, const char *name) {
    for (int i = 0; name && i < n; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}
/* names[i], or NULL outside [0, n) so callers can loop until NULL. */
static inline const char *soma__name_at(const char *const *names, int n, int i) {
    return i >= 0 && i < n ? names[i] : NULL;
}
/* Append name to the ", "-separated list in buf (cap bytes, a C string),
 * for "expected one of: ..." messages; a list too long is cut. */
static inline void soma__names_add(char *buf, size_t cap, const char *name) {
    size_t len = strlen(buf);
    if (len + 1 < cap) snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", name);
}
#endif
