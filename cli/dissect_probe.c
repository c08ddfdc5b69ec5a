/* dissect_probe.c — the selection step of `soma dissect MODEL select|ablate`
 * with the options of --by probe (--z Z, --l2 L) and --by impact
 * (--candidates-pct P); other methods go to soma_dissect_select. Parsing
 * and printing only: the probe and the impact are soma_dissect_probe_* and
 * soma_dissect_impact_* (src/dissect/probe.c, impact.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

/* text into *v (finite, > lo unless lo is NaN); 2 with a message if bad */
static int num(const char *opt, const char *text, double lo, int open_lo, double hi, double *v) {
    if (!text) return 0;
    char *end;
    *v = strtod(text, &end);
    if (end == text || *end || !isfinite(*v) || (open_lo ? *v <= lo : *v < lo) || *v > hi) {
        fprintf(stderr, "soma dissect: %s '%s': expected a number in %s%g, %g]\n", opt, text, open_lo ? "(" : "[", lo, hi);
        return 2;
    }
    return 0;
}

int cli_dissect_probe_check(int by, const char *z, const char *l2, const char *cand) {
    double v;
    if ((z || l2) && by != SOMA_DISSECT_BY_PROBE)
        return fprintf(stderr, "soma dissect: %s is an option of --by probe\n", z ? "--z" : "--l2"), 2;
    if (cand && by != SOMA_DISSECT_BY_IMPACT)
        return fprintf(stderr, "soma dissect: --candidates-pct is an option of --by impact\n"), 2;
    if (num("--z", z, -1e6, 0, 1e6, &v) || num("--l2", l2, 0, 1, 1e6, &v) || num("--candidates-pct", cand, 0, 1, 100, &v)) return 2;
    return 0;
}

int cli_dissect_select_by(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s, int by,
                          size_t cls, size_t top, double top_pct, int per_pop, const char *z, const char *l2,
                          const char *cand, soma_dissect_neuron *out, double *val, size_t cap, size_t *n, char *err,
                          size_t errlen) {
    if (by == SOMA_DISSECT_BY_PROBE) {
        soma_dissect_probe_opts po;
        soma_dissect_probe_opts_default(&po);
        if (l2) po.l2 = strtod(l2, NULL);
        soma_dissect_probe_result r;
        int st = soma_dissect_probe_select(x, o, s, cls, &po, z ? strtod(z, NULL) : NAN, top, top_pct, per_pop, out, val, cap,
                                           n, &r, err, errlen);
        if (!st)
            fprintf(stderr, "probe for class %zu: %zu samples (%zu positive), l2 %g, %zu steps, %s (max |gradient| %.2g), "
                            "probe accuracy %.2f%%\n", cls, r.samples, r.positives, r.l2, r.iters,
                    r.converged ? "converged" : "NOT converged", r.grad_max, 100.0 * r.accuracy);
        return st;
    }
    if (by == SOMA_DISSECT_BY_IMPACT) {
        soma_dissect_impact_opts io;
        soma_dissect_impact_opts_default(&io);
        if (cand) io.candidates_pct = strtod(cand, NULL);
        return soma_dissect_impact_select(x, o, s, cls, &io, top, top_pct, per_pop, out, val, cap, n, err, errlen);
    }
    return soma_dissect_select(x, o, s, by, cls, top, top_pct, per_pop, out, val, cap, n, err, errlen);
}
