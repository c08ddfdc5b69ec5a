/* json.c — the shared JSON writers (see json.h). */
#include "core/json.h"

#include <math.h>

void soma__json_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.6g", v);
    else fputs("null", f);
}

void soma__json_arr(FILE *f, const double *v, size_t n) {
    fputc('[', f);
    for (size_t i = 0; i < n; i++) {
        if (i) fputc(',', f);
        soma__json_num(f, v[i]);
    }
    fputc(']', f);
}

void soma__json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        if ((unsigned char)*s >= 0x20) fputc(*s, f);
    }
    fputc('"', f);
}
