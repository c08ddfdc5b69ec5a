/* test_value.c — units and expressions (src/core/value.c):
 * unit scales against SI arithmetic, parsing and evaluation against values
 * computed here in plain C, every error message, dimension propagation,
 * determinism and independence of the random streams, distribution
 * statistics with 5-standard-error bounds and Kolmogorov-Smirnov tests,
 * the shared r, soma__expr_to_unit, and the cost of one evaluation. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/rng.h"
#include "core/value.h"
#include "testlib.h"

static const soma__dim NONE = {0, 0, 0}, TIME = {1, 0, 0}, VOLT = {0, 1, 0}, CURR = {-1, 1, 1}, CAP = {0, 0, 1},
                       COND = {-1, 0, 1}, RATE = {-1, 0, 0}, RES = {1, 0, -1};

/* Symbols a caller might pass: J = 0.1 mV, g = 5, tau = 20 ms. */
static const soma__sym SYMS[] = {{"J", 0.1, {0, 1, 0}}, {"g", 5.0, {0, 0, 0}}, {"tau", 20.0, {1, 0, 0}}};
#define PI_REF (4 * atan(1.0))
#define NSYMS (sizeof SYMS / sizeof SYMS[0])

static soma__expr *parse_ok(const char *text) {
    soma__expr *e = NULL;
    char err[512];
    int rc = soma__expr_parse(text, SYMS, NSYMS, &e, err, sizeof err);
    CHECK_MSG(rc == 0 && e, "'%s' failed: %s", text, err);
    return rc == 0 ? e : NULL;
}

/* Value of a constant expression and its dimension. */
static void check_const(const char *text, double want, soma__dim d) {
    soma__expr *e = parse_ok(text);
    if (!e) return;
    CHECK_MSG(soma__expr_is_const(e), "'%s' should be constant", text);
    double got = soma__expr_eval(e, 123, 7, 10);
    CHECK_MSG(fabs(got - want) <= 1e-13 * fmax(1.0, fabs(want)), "'%s' = %.17g, want %.17g", text, got, want);
    soma__dim g = soma__expr_dim(e);
    CHECK_MSG(soma__dim_eq(g, d), "'%s' dim {%d,%d,%d}, want {%d,%d,%d}", text, g.t, g.v, g.c, d.t, d.v, d.c);
    soma__expr_free(e);
}

/* A parse error: status INVALID, no expression, and a message holding every
 * piece in `want` (NULL-terminated). */
static void check_err(const char *text, const char *want1, const char *want2) {
    soma__expr *e = (soma__expr *)1;
    char err[1024] = "unset";
    int rc = soma__expr_parse(text, SYMS, NSYMS, &e, err, sizeof err);
    CHECK_MSG(rc == SOMA_STATUS_INVALID && e == NULL, "'%s' parsed (rc %d)", text ? text : "(null)", rc);
    CHECK_MSG(strstr(err, want1) != NULL, "'%s': message '%s' lacks '%s'", text ? text : "(null)", err, want1);
    if (want2) CHECK_MSG(strstr(err, want2) != NULL, "'%s': message '%s' lacks '%s'", text, err, want2);
    if (rc == 0) soma__expr_free(e);
}

/* ------------------------------------------------------------ units */
static void test_units(void) {
    /* SI size and SI dimension of each unit written from physics: with the
     * base quantities (time s, voltage V, capacitance F), A = F V / s,
     * S = A / V, Ohm = V / A, Hz = 1 / s. Internal units are ms, mV and pF,
     * so a quantity of dimension (t, v, c) has the internal unit
     * (1e-3 s)^t (1e-3 V)^v (1e-12 F)^c, and the scale of a unit is its SI
     * size divided by that. */
    struct {
        const char *name;
        double si;
        soma__dim d;
    } U[] = {
        {"s", 1, TIME},      {"ms", 1e-3, TIME},   {"us", 1e-6, TIME},    {"V", 1, VOLT},       {"mV", 1e-3, VOLT},
        {"uV", 1e-6, VOLT},  {"A", 1, CURR},       {"mA", 1e-3, CURR},    {"uA", 1e-6, CURR},   {"nA", 1e-9, CURR},
        {"pA", 1e-12, CURR}, {"fA", 1e-15, CURR},  {"F", 1, CAP},         {"uF", 1e-6, CAP},    {"nF", 1e-9, CAP},
        {"pF", 1e-12, CAP},  {"S", 1, COND},       {"mS", 1e-3, COND},    {"uS", 1e-6, COND},   {"nS", 1e-9, COND},
        {"pS", 1e-12, COND}, {"Hz", 1, RATE},      {"kHz", 1e3, RATE},    {"Ohm", 1, RES},      {"kOhm", 1e3, RES},
        {"MOhm", 1e6, RES},  {"GOhm", 1e9, RES},   {"", 1, NONE},         {"1", 1, NONE},       {"mV/ms", 1, {-1, 1, 0}},
        {"1/ms", 1e3, RATE}, {"pA/mV", 1e-9, COND}, {"ms^-1", 1e3, RATE}, {"nS*mV", 1e-12, CURR}, {"V/s", 1, {-1, 1, 0}},
        {"pF mV/ms", 1e-12, CURR},
    };
    for (size_t k = 0; k < sizeof U / sizeof U[0]; k++) {
        soma__unit u = {0, {9, 9, 9}};
        int rc = soma__unit_parse(U[k].name, &u);
        CHECK_MSG(rc == 0, "unit '%s' rejected", U[k].name);
        double internal = pow(1e-3, U[k].d.t) * pow(1e-3, U[k].d.v) * pow(1e-12, U[k].d.c);
        double want = U[k].si / internal;
        CHECK_MSG(fabs(u.scale - want) <= 1e-14 * want, "unit '%s' scale %.17g, want %.17g", U[k].name, u.scale, want);
        CHECK_MSG(soma__dim_eq(u.dim, U[k].d), "unit '%s' dimension {%d,%d,%d}", U[k].name, u.dim.t, u.dim.v, u.dim.c);
    }
    const char *bad[] = {"mv", "MS", "foo", "ms/", "m s", "ms^", "ms^x", "2ms", "Ms", "ohm", "hz"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        soma__unit u;
        CHECK_MSG(soma__unit_parse(bad[k], &u) == SOMA_STATUS_INVALID, "unit '%s' accepted", bad[k]);
    }
    CHECK(soma__unit_parse(NULL, NULL) == SOMA_STATUS_INVALID);

    /* The same facts as arithmetic in expressions: Ohm's law, I = C dV/dt, rates. */
    check_const("1nS * 1mV", 1, CURR);             /* 1e-9 S * 1e-3 V = 1e-12 A = 1 pA */
    check_const("1pF * 1mV / 1ms", 1, CURR);       /* 1e-12 F * 1e-3 V / 1e-3 s = 1e-12 A */
    check_const("10Hz", 0.01, RATE);               /* 10 per second = 0.01 per ms */
    check_const("2kHz", 2, RATE);
    check_const("1MOhm * 1pA", 1e-3, VOLT);        /* 1e6 Ohm * 1e-12 A = 1e-6 V */
    check_const("1V / 1Ohm", 1e12, CURR);          /* 1 A in pA */
    check_const("1S * 1V", 1e12, CURR);
    check_const("1F * 1V / 1s", 1e12, CURR);
    check_const("1 / (1MOhm * 1pF)", 1e3, RATE);   /* 1/(1e-6 s) = 1e6 Hz = 1e3 per ms */
    check_const("1nA * 100MOhm", 100, VOLT);       /* 1e-9 A * 1e8 Ohm = 0.1 V */
    check_const("1uS / 1nF", 1, RATE);             /* 1e-6 / 1e-9 per s = 1e3 Hz = 1 per ms */
    check_const("1s", 1000, TIME);
    check_const("1us", 1e-3, TIME);
    check_const("1fA", 1e-3, CURR);
    check_const("1GOhm * 1pA", 1, VOLT);

    char buf[96];
    CHECK(strcmp(soma__dim_name(NONE, buf, sizeof buf), "a dimensionless number") == 0);
    CHECK(strcmp(soma__dim_name(TIME, buf, sizeof buf), "a time") == 0);
    CHECK(strcmp(soma__dim_name(VOLT, buf, sizeof buf), "a voltage") == 0);
    CHECK(strcmp(soma__dim_name(CURR, buf, sizeof buf), "a current") == 0);
    CHECK(strcmp(soma__dim_name(COND, buf, sizeof buf), "a conductance") == 0);
    CHECK(strcmp(soma__dim_name(CAP, buf, sizeof buf), "a capacitance") == 0);
    CHECK(strcmp(soma__dim_name(RATE, buf, sizeof buf), "a rate") == 0);
    CHECK(strcmp(soma__dim_name(RES, buf, sizeof buf), "a resistance") == 0);
    const char *odd = soma__dim_name((soma__dim){-1, 1, 0}, buf, sizeof buf);
    CHECK_MSG(strcmp(odd, "a quantity of dimension T^-1 V") == 0, "got '%s'", odd);
    odd = soma__dim_name((soma__dim){2, 0, -3}, buf, sizeof buf);
    CHECK_MSG(strcmp(odd, "a quantity of dimension T^2 C^-3") == 0, "got '%s'", odd);
    char tiny[8];
    odd = soma__dim_name((soma__dim){2, 0, -3}, tiny, sizeof tiny);
    CHECK(strlen(odd) < sizeof tiny);
}

/* ------------------------------------------------------ parse and eval */
static void test_eval(void) {
    /* numbers and units */
    check_const("1", 1, NONE);
    check_const("1.5", 1.5, NONE);
    check_const(".5", 0.5, NONE);
    check_const("1e-3", 1e-3, NONE);
    check_const("1E3", 1000, NONE);
    check_const("5e-3s", 5, TIME);
    check_const("2.5e2us", 0.25, TIME);
    check_const("20ms", 20, TIME);
    check_const("20 ms", 20, TIME);
    check_const("  20\tms  ", 20, TIME);
    check_const("-65mV", -65, VOLT);
    check_const("0.5nS", 0.5, COND);
    check_const("1.62 mV", 1.62, VOLT);
    check_const("100MOhm", 0.1, RES);
    check_const("250pF", 250, CAP);
    check_const("0.5mV/ms", 0.5, ((soma__dim){-1, 1, 0}));
    check_const("3*ms", 3, TIME);
    check_const("ms", 1, TIME);
    /* precedence and associativity */
    check_const("1 + 2*3", 7, NONE);
    check_const("(1 + 2) * 3", 9, NONE);
    check_const("2^3^2", 512, NONE);
    check_const("2**3", 8, NONE);
    check_const("-2^2", -4, NONE);
    check_const("2^-1", 0.5, NONE);
    check_const("10/4/5", 0.5, NONE);
    check_const("1 - 2 - 3", -4, NONE);
    check_const("-(-3)", 3, NONE);
    check_const("+3", 3, NONE);
    check_const("--3", 3, NONE);
    check_const("2*-3", -6, NONE);
    /* functions */
    check_const("exp(0)", 1, NONE);
    check_const("log(exp(2))", 2, NONE);
    check_const("exp(-0.1ms/20ms)", exp(-0.005), NONE);
    check_const("sqrt(16mV*1mV)", 4, VOLT);
    check_const("sqrt(2)", sqrt(2.0), NONE);
    check_const("abs(-3ms)", 3, TIME);
    check_const("min(2ms, 3ms)", 2, TIME);
    check_const("max(2ms, 3 ms)", 3, TIME);
    check_const("pi", PI_REF, NONE);
    check_const("2*pi*10Hz", 2 * PI_REF * 0.01, RATE);
    check_const("(2mV)^2", 4, ((soma__dim){0, 2, 0}));
    check_const("4mV^2", 4, ((soma__dim){0, 2, 0})); /* the power after a unit is the unit's */
    check_const("2ms^-1", 2, RATE);
    check_const("2 ms ** -1", 2, RATE);
    check_const("3s^-1", 3e-3, RATE);
    check_const("2ms^2^2", 4, ((soma__dim){4, 0, 0})); /* (2 ms^2)^2 */
    check_const("5ms^0", 5, NONE);
    check_const("(2ms)^-1", 0.5, RATE);
    check_const("4^0.5", 2, NONE);
    check_const("-65mV + 15mV*0.5^2", -65 + 15 * 0.25, VOLT);
    /* caller's symbols */
    check_const("-g*J", -0.5, VOLT);
    check_const("J", 0.1, VOLT);
    check_const("tau/2", 10, TIME);
    check_const("exp(-1ms/tau)", exp(-1.0 / 20), NONE);

    /* Element-dependent expressions against plain C. */
    soma__expr *ei = parse_ok("i/N"), *er = parse_ok("r"), *er2 = parse_ok("-65mV + 15mV*r^2"),
               *en = parse_ok("2*N"), *emix = parse_ok("(i + 1)^3 / (r + 1) - max(i, 3)");
    if (ei && er && er2 && en && emix) {
        CHECK(!soma__expr_is_const(ei) && !soma__expr_is_const(er) && !soma__expr_is_const(en));
        CHECK(soma__dim_eq(soma__expr_dim(er2), VOLT));
        for (uint64_t k = 0; k < 50; k++) {
            double r = soma__expr_eval(er, 99, k, 50);
            CHECK(r >= 0 && r < 1);
            CHECK_NEAR(soma__expr_eval(ei, 99, k, 50), (double)k / 50, 1e-15);
            CHECK_NEAR(soma__expr_eval(en, 99, k, 50), 100, 0);
            CHECK_NEAR(soma__expr_eval(er2, 99, k, 50), -65 + 15 * r * r, 1e-14);
            double want = pow((double)k + 1, 3) / (r + 1) - fmax((double)k, 3);
            CHECK_NEAR(soma__expr_eval(emix, 99, k, 50), want, 1e-14);
        }
    }
    soma__expr_free(ei), soma__expr_free(er), soma__expr_free(er2), soma__expr_free(en), soma__expr_free(emix);

    /* is_const */
    const char *konst[] = {"1+2", "exp(1)", "J*2", "pi", "ms", "uniform(1,2)*0"};
    int want_const[] = {1, 1, 1, 1, 1, 0};
    for (size_t k = 0; k < sizeof konst / sizeof konst[0]; k++) {
        soma__expr *e = parse_ok(konst[k]);
        if (e) CHECK_MSG(soma__expr_is_const(e) == want_const[k], "is_const('%s')", konst[k]);
        soma__expr_free(e);
    }
    const char *vary[] = {"r", "i", "N", "uniform(0,1)", "normal(0mV, 1mV)", "1 + 0*i"};
    for (size_t k = 0; k < sizeof vary / sizeof vary[0]; k++) {
        soma__expr *e = parse_ok(vary[k]);
        if (e) CHECK_MSG(!soma__expr_is_const(e), "is_const('%s')", vary[k]);
        soma__expr_free(e);
    }
    /* A random function's arguments may use N (constant within a population). */
    soma__expr *eN = parse_ok("uniform(0, N)");
    if (eN) {
        double x = soma__expr_eval(eN, 5, 3, 1000);
        CHECK(x >= 0 && x < 1000);
    }
    soma__expr_free(eN);

    /* Dimensions of non-constant expressions. */
    struct {
        const char *t;
        soma__dim d;
    } D[] = {{"uniform(1ms, 2ms)", TIME}, {"lognormal(0, 1)", NONE},        {"0.5nS*lognormal(0, 1)", COND},
             {"r*1mV/1ms", {-1, 1, 0}}, {"normal(1nS, 0.1nS)/1pF", RATE}, {"sqrt(r*4mV^2)", VOLT},
             {"(r*1ms)^-2", {-2, 0, 0}}, {"normal_clipped(1pA, 1pA, 0pA, 3pA)", CURR}};
    for (size_t k = 0; k < sizeof D / sizeof D[0]; k++) {
        soma__expr *e = parse_ok(D[k].t);
        if (e) CHECK_MSG(soma__dim_eq(soma__expr_dim(e), D[k].d), "dim of '%s'", D[k].t);
        soma__expr_free(e);
    }
}

/* --------------------------------------------------------------- errors */
static void test_errors(void) {
    check_err("1mV + 1ms", "cannot add a voltage and a time in '1mV + 1ms'", NULL);
    check_err("1mV - 1ms", "cannot subtract a time from a voltage in '1mV - 1ms'", NULL);
    check_err("-65 + 15mV*r^2", "cannot add a dimensionless number and a voltage", NULL);
    check_err("exp(1mV)", "exp needs a dimensionless argument", "got a voltage in 'exp(1mV)'");
    check_err("log(2ms)", "log needs a dimensionless argument", "a time");
    check_err("foo", "unknown name 'foo' in 'foo'; expected a number with a unit, r, i, N, pi, a function (uniform, normal, ...)",
              "or one of: J, g, tau");
    check_err("-65mv", "unknown unit 'mv' in '-65mv'", "expected one of: s, ms, us, V, mV");
    check_err("-65mv", "did you mean 'mV'?", "GOhm");
    check_err("20 mv", "unknown unit 'mv'", NULL);
    check_err("20 xyz", "unknown unit 'xyz'", NULL);
    check_err("1 2", "missing operator before '2'", NULL);
    check_err("(1mV) ms", "missing operator before 'ms'", NULL);
    check_err("15 r^2", "missing '*' between '15' and 'r'", "write 15*r");
    check_err("2r", "missing '*' between '2' and 'r'", NULL);
    check_err("2 pi", "missing '*'", NULL);
    check_err("1+2)", "unmatched ')'", "in '1+2)'");
    check_err("(1+2", "missing ')' in '(1+2'", NULL);
    check_err("((1)", "missing ')'", NULL);
    check_err("(1 2)", "expected ')' before '2'", NULL);
    check_err("normal(1ms, 2ms", "missing ')' after the arguments of normal", NULL);
    check_err("normal(1ms)", "normal takes 2 arguments (mean, sd), got 1", "in 'normal(1ms)'");
    check_err("normal(1, 2, 3)", "normal takes 2 arguments (mean, sd), got 3", NULL);
    check_err("normal_clipped(1,2,3,4,5,6)", "normal_clipped takes 4 arguments (mean, sd, low, high), got 6", NULL);
    check_err("exp()", "exp takes 1 argument (x), got 0", NULL);
    check_err("min(1)", "min takes 2 arguments", NULL);
    check_err("uniform(1 2)", "expected ',' or ')' in the arguments of uniform, got '2'", NULL);
    check_err("", "empty expression", NULL);
    check_err("  \t ", "empty expression", NULL);
    check_err(NULL, "empty expression", NULL);
    check_err("2^r", "the exponent after ^ must be a constant", NULL);
    check_err("2^N", "the exponent after ^ must be a constant", NULL);
    check_err("2^(1ms)", "the exponent after ^ must be dimensionless, got a time", NULL);
    check_err("(1mV)^0.5", "a voltage can only be raised to an integer power, got ^0.5", NULL);
    check_err("1mV^100", "the power of unit 'mV' must be an integer of at most 60", NULL);
    check_err("1mV^1.5", "the power of unit 'mV' must be an integer", NULL);
    check_err("(1mV)^100", "unit power beyond", NULL);
    check_err("2mV^r", "the exponent after ^ must be a constant", NULL);
    check_err("uniform(0, 1mV)", "the arguments of uniform must share a dimension, got a dimensionless number and a voltage",
              NULL);
    check_err("normal_clipped(0mV, 1mV, -1mV, 1ms)", "normal_clipped must share a dimension", "a time");
    check_err("uniform(r, 1)", "the arguments of uniform must be the same for every element (no r, i or random calls)",
              NULL);
    check_err("normal(i, 1)", "the arguments of normal must be the same for every element", NULL);
    check_err("normal(0, uniform(0, 1))", "the arguments of normal must be the same for every element", NULL);
    check_err("lognormal(1mV, 1mV)", "lognormal needs dimensionless arguments", "got a voltage");
    check_err("uniform(2, 1)", "uniform(low, high) needs low <= high, got 2 > 1", NULL);
    check_err("normal(0, -1)", "normal needs sd >= 0, got -1", NULL);
    check_err("lognormal(0, -1)", "lognormal needs sigma >= 0", NULL);
    check_err("normal_clipped(0, 1, 1, -1)", "normal_clipped needs low <= high", NULL);
    check_err("normal_clipped(0, 1, 10, 11)", "normal_clipped: [10, 11] holds only", NULL);
    check_err("normal_clipped(5, 0, 0, 1)", "normal_clipped: [0, 1] holds only", NULL);
    check_err("1/0", "division by zero in '1/0'", NULL);
    check_err("1mV/(2ms - 2ms)", "division by zero", NULL);
    check_err("sqrt(1mV)", "sqrt needs a dimensionless argument or a square of a unit, got a voltage", NULL);
    check_err("sqrt(-4)", "sqrt of -4", NULL);
    check_err("log(0)", "log of 0", NULL);
    check_err("exp(800)", "exp of a constant overflows", NULL);
    check_err("min(1mV, 1ms)", "min needs arguments of the same dimension, got a voltage and a time", NULL);
    check_err("max(1, 1ms)", "max needs arguments of the same dimension", NULL);
    check_err("foo(1)", "unknown function 'foo' in 'foo(1)'; expected one of: uniform, normal, normal_clipped", NULL);
    check_err("r(1)", "'r' is not a function", NULL);
    check_err("J(1)", "'J' is not a function", NULL);
    check_err("exp", "exp is a function: write exp(...)", NULL);
    check_err("1 +", "unexpected end of the expression in '1 +'", NULL);
    check_err("1 $ 2", "unexpected '$' at position 3", NULL);
    check_err("()", "empty parentheses", NULL);
    check_err("2*)", "expected a value before ')'", NULL);
    check_err("1.5.3", "unexpected '.3'", NULL);
    check_err("5\u00b5s", "non-ASCII character at position 2", "us for");
    check_err("\u03c4", "non-ASCII character at position 1", NULL);
    /* Deep nesting is refused instead of overflowing the C stack. */
    char deep[1300];
    size_t n = 0;
    for (int k = 0; k < 600; k++) deep[n++] = '(';
    deep[n++] = '1';
    for (int k = 0; k < 600; k++) deep[n++] = ')';
    deep[n] = 0;
    check_err(deep, "nested too deeply", NULL);
    n = 0;
    for (int k = 0; k < 600; k++) deep[n++] = '-';
    deep[n++] = '1';
    deep[n] = 0;
    check_err(deep, "nested too deeply", NULL);
    n = 0;
    for (int k = 0; k < 400; k++) deep[n++] = '2', deep[n++] = '^';
    deep[n++] = '2';
    deep[n] = 0;
    check_err(deep, "nested too deeply", NULL);
    /* A long chain of non-constant terms would make a deep tree. */
    char *chain = malloc(3 * 100000 + 2);
    n = 0;
    chain[n++] = 'r';
    for (int k = 0; k < 100000; k++) chain[n++] = '+', chain[n++] = 'r';
    chain[n] = 0;
    check_err(chain, "expression too complex", NULL);
    /* ...while a long chain of constants folds to one number. */
    n = 0;
    chain[n++] = '1';
    for (int k = 0; k < 100000; k++) chain[n++] = '+', chain[n++] = '1';
    chain[n] = 0;
    check_const(chain, 100001, NONE);
    free(chain);
    /* A long text is shortened in messages. */
    char longx[400];
    memset(longx, 'a', sizeof longx - 1);
    longx[sizeof longx - 1] = 0;
    check_err(longx, "unknown name 'aaaa", "...'");
    /* A short buffer truncates without overflow; a NULL buffer is allowed. */
    char small[8];
    soma__expr *e = NULL;
    memset(small, 'x', sizeof small);
    CHECK(soma__expr_parse("1mV + 1ms", NULL, 0, &e, small, sizeof small) == SOMA_STATUS_INVALID);
    CHECK(memchr(small, 0, sizeof small) != NULL);
    CHECK(soma__expr_parse("1mV + 1ms", NULL, 0, &e, NULL, 0) == SOMA_STATUS_INVALID && e == NULL);
    /* Without symbols the unknown-name message has no "one of" list. */
    char err[512];
    CHECK(soma__expr_parse("J", NULL, 0, &e, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK_MSG(strstr(err, "unknown name 'J'") && !strstr(err, "one of"), "%s", err);
}

/* ------------------------------------------------------------- random */
typedef struct stats {
    double mean, var, m4, lo, hi;
} stats;

static stats moments(const double *x, size_t n) {
    stats s = {0, 0, 0, INFINITY, -INFINITY};
    for (size_t k = 0; k < n; k++) {
        s.mean += x[k];
        s.lo = fmin(s.lo, x[k]);
        s.hi = fmax(s.hi, x[k]);
    }
    s.mean /= (double)n;
    for (size_t k = 0; k < n; k++) {
        double d = x[k] - s.mean;
        s.var += d * d;
        s.m4 += d * d * d * d;
    }
    s.var /= (double)(n - 1);
    s.m4 /= (double)n;
    return s;
}

/* Sample mean and variance within 5 standard errors of mean and var (the
 * variance's standard error from the sample's fourth central moment). */
static void check_moments(const char *what, const double *x, size_t n, double mean, double var) {
    stats s = moments(x, n);
    double se_mean = sqrt(var / (double)n), se_var = sqrt(fmax(s.m4 - s.var * s.var, 0) / (double)n);
    CHECK_MSG(fabs(s.mean - mean) < 5 * se_mean, "%s: mean %.6g, want %.6g +- %.2g", what, s.mean, mean, 5 * se_mean);
    CHECK_MSG(fabs(s.var - var) < 5 * se_var, "%s: variance %.6g, want %.6g +- %.2g", what, s.var, var, 5 * se_var);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Kolmogorov-Smirnov: sqrt(n) D < 1.95 holds with probability 0.999 for a
 * sample of the distribution with this CDF. Sorts x. */
static void check_ks(const char *what, double *x, size_t n, double (*cdf)(double, const double *), const double *p) {
    qsort(x, n, sizeof *x, cmp_double);
    double D = 0;
    for (size_t k = 0; k < n; k++) {
        double F = cdf(x[k], p);
        D = fmax(D, fmax(fabs(F - (double)k / (double)n), fabs((double)(k + 1) / (double)n - F)));
    }
    CHECK_MSG(sqrt((double)n) * D < 1.95, "%s: KS statistic sqrt(n) D = %.3f", what, sqrt((double)n) * D);
}
static double cdf_uniform(double x, const double *p) { return fmin(fmax((x - p[0]) / (p[1] - p[0]), 0), 1); }
static double cdf_normal(double x, const double *p) { return 0.5 * erfc(-(x - p[0]) / (p[1] * sqrt(2.0))); }
static double phi(double z) { return exp(-0.5 * z * z) / sqrt(2 * PI_REF); }
static double Phi(double z) { return 0.5 * erfc(-z / sqrt(2.0)); }
static double cdf_trunc(double x, const double *p) {
    double a = Phi((p[2] - p[0]) / p[1]), b = Phi((p[3] - p[0]) / p[1]);
    return fmin(fmax((Phi((x - p[0]) / p[1]) - a) / (b - a), 0), 1);
}

/* Values of text for elements 0..n-1 under key. */
static void sample(const char *text, uint64_t key, uint64_t salt, double *x, size_t n) {
    soma__expr *e = parse_ok(text);
    if (!e) {
        memset(x, 0, n * sizeof *x);
        return;
    }
    soma__expr_set_salt(e, salt);
    for (size_t k = 0; k < n; k++) x[k] = soma__expr_eval(e, key, k, n);
    soma__expr_free(e);
}

static double corr(const double *x, const double *y, size_t n) {
    stats a = moments(x, n), b = moments(y, n);
    double c = 0;
    for (size_t k = 0; k < n; k++) c += (x[k] - a.mean) * (y[k] - b.mean);
    return c / (double)(n - 1) / sqrt(a.var * b.var);
}

static void test_random(void) {
    enum { N = 100000 };
    double *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    const uint64_t key = 0x5eed5eedULL;

    /* uniform(-60mV, -50mV): mean -55, variance 100/12, inside [-60, -50) */
    sample("uniform(-60mV, -50mV)", key, 0, x, N);
    stats s = moments(x, N);
    CHECK(s.lo >= -60 && s.hi < -50);
    check_moments("uniform", x, N, -55, 100.0 / 12);
    check_ks("uniform", x, N, cdf_uniform, (const double[]){-60, -50});

    /* normal(1.5ms, 0.75ms) */
    sample("normal(1.5ms, 0.75ms)", key, 0, x, N);
    check_moments("normal", x, N, 1.5, 0.75 * 0.75);
    check_ks("normal", x, N, cdf_normal, (const double[]){1.5, 0.75});

    /* normal_clipped(1.5ms, 0.75ms, 0.5ms, 3ms): truncated-normal moments
     * mean = m + sd (phi(a) - phi(b)) / Z, var = sd^2 [1 + (a phi(a) - b phi(b)) / Z - ((phi(a) - phi(b)) / Z)^2] */
    {
        double m = 1.5, sd = 0.75, lo = 0.5, hi = 3, a = (lo - m) / sd, b = (hi - m) / sd, Z = Phi(b) - Phi(a);
        double d = (phi(a) - phi(b)) / Z;
        double tm = m + sd * d, tv = sd * sd * (1 + (a * phi(a) - b * phi(b)) / Z - d * d);
        sample("normal_clipped(1.5ms, 0.75ms, 0.5ms, 3ms)", key, 0, x, N);
        s = moments(x, N);
        CHECK_MSG(s.lo >= lo && s.hi <= hi, "clipped range [%g, %g]", s.lo, s.hi);
        check_moments("normal_clipped", x, N, tm, tv);
        check_ks("normal_clipped", x, N, cdf_trunc, (const double[]){m, sd, lo, hi});
    }
    /* A one-sided narrow clip (keeps ~16 % of the mass: about 6 draws each). */
    sample("normal_clipped(0, 1, 1, 1e9)", key, 0, x, N);
    s = moments(x, N);
    CHECK(s.lo >= 1);
    check_ks("normal_clipped tail", x, N, cdf_trunc, (const double[]){0, 1, 1, 1e9});
    /* With wide bounds normal_clipped is normal: attempt 0 is the same draw. */
    sample("normal_clipped(2, 3, -1e9, 1e9)", key, 0, x, 1000);
    sample("normal(2, 3)", key, 0, y, 1000);
    int same = 1;
    for (size_t k = 0; k < 1000; k++) same &= x[k] == y[k];
    CHECK(same);
    /* sd 0: every value is the mean, no redraw loop. */
    sample("normal_clipped(1, 0, 0, 2)", key, 0, x, 100);
    s = moments(x, 100);
    CHECK(s.lo == 1 && s.hi == 1);

    /* lognormal(0.2, 0.5): mean exp(mu + s^2/2), variance (exp(s^2) - 1) exp(2 mu + s^2) */
    sample("lognormal(0.2, 0.5)", key, 0, x, N);
    s = moments(x, N);
    CHECK(s.lo > 0);
    check_moments("lognormal", x, N, exp(0.2 + 0.125), (exp(0.25) - 1) * exp(0.4 + 0.25));
    for (size_t k = 0; k < N; k++) x[k] = log(x[k]);
    check_ks("log of lognormal", x, N, cdf_normal, (const double[]){0.2, 0.5});

    /* r: uniform in [0, 1) */
    sample("r", key, 0, x, N);
    s = moments(x, N);
    CHECK(s.lo >= 0 && s.hi < 1);
    check_moments("r", x, N, 0.5, 1.0 / 12);
    check_ks("r", x, N, cdf_uniform, (const double[]){0, 1});

    /* The documented streams: site k of an expression with salt s draws
     * for element e under key K from soma_philox(soma__hash64(K, s, k), e);
     * u53 takes words (0, 1) as the high and low halves, normal is
     * Box-Muller's cosine branch with u1 = 1 - u(words 0, 1) and
     * u2 = u(words 2, 3), and r is site 0xFFFFFFFF with salt 0. This
     * reference uses libm's cos and log. */
    {
        soma__expr *eu = parse_ok("uniform(0,1) + 0*normal(0,1)"), *en = parse_ok("0*uniform(0,1) + normal(0,1)"),
                   *er = parse_ok("r");
        double maxdu = 0, maxdz = 0, maxdr = 0;
        if (eu && en && er) {
            soma__expr_set_salt(eu, 3);
            soma__expr_set_salt(en, 3);
            soma__expr_set_salt(er, 3);
            for (uint64_t k = 0; k < N; k++) {
                uint32_t w[4];
                soma_philox(soma__hash64(key, 3, 0), k, w);
                double u = (double)((((uint64_t)w[0] << 32) | w[1]) >> 11) / 9007199254740992.0;
                maxdu = fmax(maxdu, fabs(soma__expr_eval(eu, key, k, N) - u));
                soma_philox(soma__hash64(key, 3, 1), k, w);
                double u1 = 1 - (double)((((uint64_t)w[0] << 32) | w[1]) >> 11) / 9007199254740992.0;
                double u2 = (double)((((uint64_t)w[2] << 32) | w[3]) >> 11) / 9007199254740992.0;
                double z = sqrt(-2 * log(u1)) * cos(2 * PI_REF * u2);
                maxdz = fmax(maxdz, fabs(soma__expr_eval(en, key, k, N) - z) / (1 + fabs(z)));
                soma_philox(soma__hash64(key, 0, 0xFFFFFFFFu), k, w);
                u = (double)((((uint64_t)w[0] << 32) | w[1]) >> 11) / 9007199254740992.0;
                maxdr = fmax(maxdr, fabs(soma__expr_eval(er, key, k, N) - u));
            }
        }
        CHECK_MSG(maxdu == 0, "uniform differs from the documented stream by %g", maxdu);
        CHECK_MSG(maxdz < 1e-14, "normal differs from Box-Muller with libm by %g (relative)", maxdz);
        CHECK_MSG(maxdr == 0, "r differs from the documented stream by %g", maxdr);
        soma__expr_free(eu), soma__expr_free(en), soma__expr_free(er);
    }

    /* Sites are independent streams: the difference of two uniforms has
     * variance 1/6 (it would be 0 for one shared stream), and two sites are
     * uncorrelated. */
    sample("uniform(0,1) - uniform(0,1)", key, 0, x, N);
    check_moments("difference of two sites", x, N, 0, 1.0 / 6);
    sample("uniform(0,1)", key, 0, x, N);
    sample("0*uniform(0,1) + uniform(0,1)", key, 0, y, N);
    CHECK_MSG(fabs(corr(x, y, N)) < 5 / sqrt((double)N), "sites 0 and 1 correlate: %g", corr(x, y, N));
    /* Sites are numbered in parse order: site 0 of another expression under
     * the same key is the same stream. */
    sample("uniform(0,1) + 0*normal(0,1)", key, 0, y, N);
    same = 1;
    for (size_t k = 0; k < N; k++) same &= x[k] == y[k];
    CHECK(same);
    /* r is not site 0. */
    sample("r", key, 0, y, N);
    CHECK_MSG(fabs(corr(x, y, N)) < 5 / sqrt((double)N), "r and site 0 correlate: %g", corr(x, y, N));
    /* Different keys give independent values. */
    sample("uniform(0,1)", key + 1, 0, y, N);
    CHECK_MSG(fabs(corr(x, y, N)) < 5 / sqrt((double)N), "keys k and k+1 correlate: %g", corr(x, y, N));
    /* Different salts give independent sites... */
    sample("uniform(0,1)", key, 1, y, N);
    CHECK_MSG(fabs(corr(x, y, N)) < 5 / sqrt((double)N), "salts 0 and 1 correlate: %g", corr(x, y, N));
    /* ...but the same r. */
    sample("r", key, 0, x, 1000);
    sample("r", key, 7, y, 1000);
    same = 1;
    for (size_t k = 0; k < 1000; k++) same &= x[k] == y[k];
    CHECK(same);
    /* Neighbouring elements are uncorrelated. */
    sample("normal(0,1)", key, 0, x, N);
    CHECK_MSG(fabs(corr(x, x + 1, N - 1)) < 5 / sqrt((double)N), "lag-1 correlation %g", corr(x, x + 1, N - 1));

    free(x);
    free(y);
}

/* Same key and element give the same value, in any order and whatever N. */
static void test_determinism(void) {
    const char *texts[] = {"normal(1.5ms, 0.75ms)", "r*uniform(0mV, 1mV) + normal_clipped(0mV, 1mV, -1mV, 1mV)",
                           "lognormal(0, 1)", "-65mV + 15mV*r^2"};
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        soma__expr *a = parse_ok(texts[t]), *b = parse_ok(texts[t]);
        if (!a || !b) continue;
        double fwd[200];
        for (uint64_t k = 0; k < 200; k++) fwd[k] = soma__expr_eval(a, 42, k, 200);
        int same = 1, differ = 0;
        for (uint64_t k = 200; k-- > 0;) {
            same &= soma__expr_eval(b, 42, k, 200) == fwd[k];
            same &= soma__expr_eval(a, 42, k, 999) == fwd[k];
            differ += soma__expr_eval(a, 43, k, 200) != fwd[k];
        }
        CHECK_MSG(same, "'%s' not reproducible", texts[t]);
        CHECK_MSG(differ > 190, "'%s': key 43 equals key 42 in %d of 200", texts[t], 200 - differ);
        int distinct = 0;
        for (int k = 1; k < 200; k++) distinct += fwd[k] != fwd[k - 1];
        CHECK(distinct > 190);
        /* Elements far apart (a big network's synapse numbers) work too. */
        uint64_t big = (1ull << 40) + 12345;
        CHECK(soma__expr_eval(a, 42, big, big + 1) == soma__expr_eval(b, 42, big, 7));
        soma__expr_free(a);
        soma__expr_free(b);
    }
}

/* Izhikevich (2003): c = -65 + 15 r^2, d = 8 - 6 r^2 share r per neuron. */
static void test_shared_r(void) {
    soma__expr *c = parse_ok("-65 + 15*r^2"), *d = parse_ok("8 - 6*r^2"), *a = parse_ok("0.02 + 0.08*r");
    if (!c || !d || !a) return;
    soma__expr_set_salt(c, 2);
    soma__expr_set_salt(d, 3);
    int ok = 1, differs = 0;
    for (uint64_t k = 0; k < 1000; k++) {
        double rc = (soma__expr_eval(c, 7, k, 1000) + 65) / 15, rd = (8 - soma__expr_eval(d, 7, k, 1000)) / 6;
        double ra = (soma__expr_eval(a, 7, k, 1000) - 0.02) / 0.08;
        ok &= fabs(rc - rd) < 1e-12 && fabs(rc - ra * ra) < 1e-12 && rc >= 0 && rc < 1;
        differs += fabs(rc - (8 - soma__expr_eval(d, 8, k, 1000)) / 6) > 1e-12;
    }
    CHECK(ok);
    CHECK(differs > 990); /* another key, another r */
    soma__expr_free(c), soma__expr_free(d), soma__expr_free(a);
}

static void check_to_unit(const char *text, const char *unit, double want) {
    soma__expr *e = parse_ok(text);
    if (!e) return;
    double scale = -1;
    char err[256];
    int rc = soma__expr_to_unit(e, unit, &scale, err, sizeof err);
    CHECK_MSG(rc == 0, "'%s' in '%s': %s", text, unit, err);
    double got = soma__expr_eval(e, 1, 0, 1) * scale;
    CHECK_MSG(fabs(got - want) <= 1e-13 * fabs(want), "'%s' in '%s' = %.17g, want %.17g", text, unit, got, want);
    soma__expr_free(e);
}

static void check_to_unit_err(const char *text, const char *unit, const char *want) {
    soma__expr *e = parse_ok(text);
    if (!e) return;
    double scale = -1;
    char err[256] = "";
    CHECK_MSG(soma__expr_to_unit(e, unit, &scale, err, sizeof err) == SOMA_STATUS_INVALID, "'%s' in '%s' accepted",
              text, unit);
    CHECK_MSG(strstr(err, want) != NULL, "'%s' in '%s': message '%s' lacks '%s'", text, unit, err, want);
    soma__expr_free(e);
}

static void test_to_unit(void) {
    check_to_unit("20ms", "ms", 20);
    check_to_unit("20ms", "s", 0.02);
    check_to_unit("10Hz", "Hz", 10);
    check_to_unit("2kHz", "Hz", 2000);
    check_to_unit("0.5nS", "uS", 5e-4);
    check_to_unit("1pA", "nA", 1e-3);
    check_to_unit("250pF", "nF", 0.25);
    check_to_unit("100MOhm", "GOhm", 0.1);
    check_to_unit("1mV/ms", "V/s", 1);
    check_to_unit("1mV/ms", "mV/ms", 1);
    check_to_unit("1nS/1pF", "1/ms", 1);
    check_to_unit("5", "mV", 5);      /* a plain number is read in the unit */
    check_to_unit("-65 + 15*0.5^2", "mV", -65 + 15 * 0.25);
    check_to_unit("2", "", 2);
    check_to_unit("2", "Hz", 2);
    check_to_unit("-g*J", "mV", -0.5);
    check_to_unit_err("20ms", "mV", "expected a voltage (mV), got a time in '20ms'");
    check_to_unit_err("1mV", "pA", "expected a current (pA), got a voltage");
    check_to_unit_err("1mV", "", "expected a dimensionless number, got a voltage");
    check_to_unit_err("1mV/ms", "pA", "expected a current (pA), got a quantity of dimension T^-1 V");
    check_to_unit_err("1nS", "nS/mV", "expected a quantity of dimension T^-1 V^-1 C (nS/mV), got a conductance");
    check_to_unit_err("1mV", "bogus", "unknown unit 'bogus'");
    check_to_unit_err("1mV", "mv", "unknown unit 'mv'");
}

/* Cost of one evaluation; the target is < 50 ns for normal(m, sd) in a
 * Release build. The best of 15 runs is printed next to one soma_philox
 * block (the floor of any random draw) and checked only against a loose
 * bound, so that sanitizer builds and busy machines pass. */
static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void test_speed(void) {
    const uint64_t n = 50000;
    double best = INFINITY, sum = 0;
    for (int rep = 0; rep < 15; rep++) {
        double t0 = now_ns();
        for (uint64_t k = 0; k < n; k++) {
            uint32_t w[4];
            soma_philox(11, k, w);
            sum += w[0];
        }
        best = fmin(best, (now_ns() - t0) / (double)n);
    }
    printf("one soma_philox block %34.1f ns (sum %.3g)\n", best, sum);
    const char *texts[] = {"1.62mV", "r", "normal(1.5ms, 0.75ms)", "uniform(-60mV, -50mV)", "-65mV + 15mV*r^2",
                           "normal_clipped(1.5ms, 0.75ms, 0.1ms, 1e9ms)", "0.5nS*lognormal(0, 0.5)"};
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        soma__expr *e = parse_ok(texts[t]);
        if (!e) continue;
        best = INFINITY, sum = 0;
        for (int rep = 0; rep < 15; rep++) {
            double t0 = now_ns();
            for (uint64_t k = 0; k < n; k++) sum += soma__expr_eval(e, 11, k, n);
            best = fmin(best, (now_ns() - t0) / (double)n);
        }
        printf("eval %-45s %6.1f ns (sum %.3g)\n", texts[t], best, sum);
        CHECK_MSG(best < 2000, "'%s' takes %.0f ns per evaluation", texts[t], best);
        soma__expr_free(e);
    }
}

int main(void) {
    test_units();
    test_eval();
    test_errors();
    test_random();
    test_determinism();
    test_shared_r();
    test_to_unit();
    test_speed();
    return t_report("test_value");
}
