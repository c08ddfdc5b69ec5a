/* json.h — the few JSON writers the result files share (dissect's
 * result.json files): a number (null where not finite), an array of
 * numbers, a string with quote and backslash escaped and control
 * characters dropped. */
#ifndef SOMA_CORE_JSON_H
#define SOMA_CORE_JSON_H
#include <stddef.h>
#include <stdio.h>

void soma__json_num(FILE *f, double v);                     /* "%.6g", or null */
void soma__json_arr(FILE *f, const double *v, size_t n);   /* [v0,v1,...] */
void soma__json_str(FILE *f, const char *s);               /* "s" (NULL: "") */

#endif
