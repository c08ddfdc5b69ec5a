/* value.h — values with units: physical dimensions, unit names and
 * expressions (value.c). Every layer that reads a value a user wrote (the
 * network description, its loader, the executors when they evaluate
 * per-neuron or per-synapse values) goes through these. */
#ifndef SOMA_VALUE_H
#define SOMA_VALUE_H
#include <stddef.h>
#include <stdint.h>
#include "soma.h"

/* ----------------------------------------------------- units (value.c)
 * A physical dimension as exponents of three base quantities: time,
 * voltage and capacitance. Internal units are ms, mV and pF, which makes
 * pA (= pF mV / ms) and nS (= pA / mV) internal too; Hz is 1/s, i.e.
 * 0.001 per ms. */
typedef struct soma__dim {
    int8_t t, v, c;
} soma__dim;

/* A unit: a value in it times scale is the value in internal units. */
typedef struct soma__unit {
    double scale;
    soma__dim dim;
} soma__unit;

/* Parse a unit name ("ms", "s", "us", "mV", "V", "pA", "nA", "pF", "nF",
 * "nS", "uS", "mS", "Hz", "kHz", "MOhm", "GOhm", "" = dimensionless ...).
 * 0 on success, SOMA_STATUS_INVALID if unknown. */
int soma__unit_parse(const char *name, soma__unit *u);
/* A name for a dimension in messages: "a time", "a voltage", "a current",
 * "a conductance", "a capacitance", "a rate", "a resistance",
 * "a dimensionless number", else "a quantity of dimension T^a V^b C^c". */
const char *soma__dim_name(soma__dim d, char *buf, size_t cap);
static inline int soma__dim_eq(soma__dim a, soma__dim b) { return a.t == b.t && a.v == b.v && a.c == b.c; }

/* ------------------------------------------------ expressions (value.c)
 * Grammar: sums, products, quotients, unary minus, ^ (power with a
 * dimensionless constant exponent), parentheses, numbers with an optional
 * unit suffix written right after them ("20ms", "1.5 ms", "-65mV", "5e-3s"),
 * identifiers and calls.
 *   variables: r (per-element uniform [0,1), the same r for every
 *              expression evaluated with the same key and element), i
 *              (element index), N (element count), pi, and symbols the
 *              caller passes (e.g. a file's params, with units).
 *   functions: uniform(a, b), normal(mean, sd), normal_clipped(mean, sd,
 *              lo, hi) (redrawn until inside, at most 1000 times),
 *              lognormal(mu, sigma) (dimensionless), exp, log, sqrt, abs,
 *              min(a, b), max(a, b).
 * Each random call site in an expression draws from its own stream keyed by
 * (key, site), at counter = element: a value depends only on (key, element),
 * never on evaluation order or thread count. Dimensions are checked at parse
 * time (a + b needs equal dimensions; exp/log need dimensionless; ...). */
typedef struct soma__expr soma__expr;

typedef struct soma__sym {
    const char *name;
    double value; /* internal units */
    soma__dim dim;
} soma__sym;

/* Parse text. Errors go to err as "<what was wrong> in '<text>'" without a
 * file or line (the caller adds those). */
int soma__expr_parse(const char *text, const soma__sym *syms, size_t nsyms, soma__expr **out, char *err,
                     size_t errlen);
void soma__expr_free(soma__expr *e);
soma__dim soma__expr_dim(const soma__expr *e);
/* 1 if the expression has no r, i, N or random call: the same value for every element. */
int soma__expr_is_const(const soma__expr *e);
/* Value in internal units for element `elem` of `n`. */
double soma__expr_eval(const soma__expr *e, uint64_t key, uint64_t elem, uint64_t n);
/* Check that e can set a quantity in unit `unit` (a descriptor unit such as
 * "pA"): its dimension must match, or e must be dimensionless (a plain
 * number, then read in `unit`). On success *scale receives the factor that
 * turns soma__expr_eval's result into `unit`. Error text: "expected a
 * current (pA), got a voltage". */
int soma__expr_to_unit(const soma__expr *e, const char *unit, double *scale, char *err, size_t errlen);
/* Random call sites draw from (key, salt, site), r from key alone (salt 0
 * after parsing). Expressions evaluated with one key to share r (all
 * parameters of a population) must get different salts (e.g. the index of
 * the quantity they set), else "uniform(0, 1)" in two of them gives the same
 * numbers: site 0 of both would be one stream. */
void soma__expr_set_salt(soma__expr *e, uint64_t salt);

#endif
