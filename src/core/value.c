/* value.c — physical units and the small expression language of the
 * simulator's values ("20ms", "-65mV + 15mV*r^2", "normal(1.5ms, 0.75ms)").
 *
 * Units. Internal units are ms, mV and pF; a dimension is the exponents of
 * (time, voltage, capacitance), so pA = pF mV/ms, nS = pA/mV and
 * GOhm = mV/pA come out with scale 1. Every named unit is an exact power of
 * ten times its internal unit; a number is scaled by one multiplication or
 * one division by an exactly representable power of ten, so "10Hz" is the
 * double nearest 0.01 per ms and not 10 * 0.001 with a second rounding.
 *
 * Expressions. A recursive-descent parser builds a tree in a pool (one
 * allocation), checks dimensions while it builds, and folds every subtree
 * that is the same for all elements into a constant. The tree is then
 * flattened into a postfix program evaluated with a small stack on the C
 * stack, so soma__expr_eval allocates nothing and calls no function
 * pointer; a wholly constant expression returns its folded value at once.
 * Precedence: + - < * / < unary minus < ^ (right associative; "**" is
 * accepted for ^), so -r^2 = -(r^2) and 2^-1 = 0.5. A number may carry a
 * unit written right after it, with or without blanks between ("20ms",
 * "20 ms"); a unit name alone stands for one of it ("0.5mV/ms", "3*ms").
 * An integer power right after a unit belongs to the unit, as in physics
 * ("2ms^-1" is 2 per ms; "(2ms)^-1" is 0.5 per ms). Names resolve in this
 * order: the caller's symbols (so a symbol may shadow r or N), then r, i,
 * N, pi, then unit names. There is no implicit product: "15 r" is an error
 * that suggests "15*r" (a unit after a blank would make it ambiguous).
 * Nesting deeper than 200 levels and programs needing more than 64 stack
 * entries are refused, so neither the parser nor eval can overflow.
 *
 * Random values. Call site k (random calls numbered from 0 in the order
 * the parser meets them) of an expression with salt s draws, for element
 * e under key K, from Philox-4x32-10 (soma_philox) with stream key
 * soma__hash64(K, s, k) and counter e: a value depends only on (K, s, k, e).
 * r uses the reserved site R_SITE with salt 0, so r is the same for every
 * expression evaluated with the same key whatever its salt. Uniforms take
 * 53 bits from two 32-bit words; normals use Box-Muller on the block's two
 * uniforms (cosine branch, with a polynomial cos(2 pi u) that is exact to
 * ~1e-16 and three times cheaper than libm's). normal_clipped redraws
 * attempt a >= 1 from the stream key mix64(key_k + a * golden) at the same
 * counter, i.e. further counters in a second dimension that never collides
 * with other elements, and after 1000 misses clamps its last draw into
 * [lo, hi]; constant bounds that hold under 1 % of the distribution are
 * refused at parse time (almost surely a mistake, and ~100 draws each).
 */
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/value.h"

/* ------------------------------------------------------------- units */

typedef struct unit_def {
    const char *name;
    int p10;       /* one of it is 10^p10 internal units */
    soma__dim dim; /* {t, v, c} */
} unit_def;

#define D_TIME {1, 0, 0}
#define D_VOLT {0, 1, 0}
#define D_CURR {-1, 1, 1}
#define D_CAP {0, 0, 1}
#define D_COND {-1, 0, 1}
#define D_RATE {-1, 0, 0}
#define D_RES {1, 0, -1}

/* In the order messages list them. Internal units: ms, mV, pA (pF mV/ms),
 * pF, nS (pA/mV), 1/ms = kHz, GOhm (mV/pA). */
static const unit_def UNITS[] = {
    {"s", 3, D_TIME},     {"ms", 0, D_TIME},    {"us", -3, D_TIME},   {"V", 3, D_VOLT},
    {"mV", 0, D_VOLT},    {"uV", -3, D_VOLT},   {"A", 12, D_CURR},    {"mA", 9, D_CURR},
    {"uA", 6, D_CURR},    {"nA", 3, D_CURR},    {"pA", 0, D_CURR},    {"fA", -3, D_CURR},
    {"F", 12, D_CAP},     {"uF", 6, D_CAP},     {"nF", 3, D_CAP},     {"pF", 0, D_CAP},
    {"S", 9, D_COND},     {"mS", 6, D_COND},    {"uS", 3, D_COND},    {"nS", 0, D_COND},
    {"pS", -3, D_COND},   {"Hz", -3, D_RATE},   {"kHz", 0, D_RATE},   {"Ohm", -9, D_RES},
    {"kOhm", -6, D_RES},  {"MOhm", -3, D_RES},  {"GOhm", 0, D_RES},
    {"steps", 0, {0, 0, 0}}, /* a count of time steps (trainer models stated per step) */
};
#define N_UNITS (sizeof UNITS / sizeof UNITS[0])

/* 10^k for k = 0..22, all exact in double. */
static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* x * 10^p with one correctly rounded operation (|p| <= 22). */
static double scale10(double x, int p) { return p >= 0 ? x * POW10[p] : x / POW10[-p]; }

static const unit_def *unit_find(const char *s, size_t len) {
    for (size_t k = 0; k < N_UNITS; k++)
        if (strlen(UNITS[k].name) == len && memcmp(UNITS[k].name, s, len) == 0) return &UNITS[k];
    return NULL;
}

static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_blank(int c) { return c == ' ' || c == '\t'; }
static int lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

/* Exponents stay well inside int8_t; anything beyond this is a typo. */
#define DIM_MAX 60
static int dim_ok(int t, int v, int c) {
    return t >= -DIM_MAX && t <= DIM_MAX && v >= -DIM_MAX && v <= DIM_MAX && c >= -DIM_MAX && c <= DIM_MAX;
}

/* Unit strings as descriptors write them: a simple name, "" or "1" for
 * dimensionless, or a product of names with * / or blanks and integer
 * powers ("mV/ms", "1/ms", "pA/mV", "ms^-1"). */
int soma__unit_parse(const char *name, soma__unit *u) {
    if (!name) return SOMA_STATUS_INVALID;
    const char *p = name;
    int t = 0, v = 0, c = 0, p10 = 0, sign = 1, nfac = 0;
    for (;;) {
        while (is_blank(*p)) p++;
        if (!*p) break;
        if (nfac > 0) { /* a separator between factors: '*', '/' or blanks (already skipped) */
            if (*p == '*') p++;
            else if (*p == '/') p++, sign = -1;
            else if (p[-1] != ' ' && p[-1] != '\t') return SOMA_STATUS_INVALID;
            while (is_blank(*p)) p++;
            if (!*p) return SOMA_STATUS_INVALID;
        }
        int pw = 1;
        if (*p == '1' && !is_digit(p[1]) && !is_alpha(p[1])) { /* "1" in "1/ms" */
            p++;
            pw = 0;
        } else {
            const char *s = p;
            while (is_alpha(*p)) p++;
            const unit_def *d = unit_find(s, (size_t)(p - s));
            if (!d) return SOMA_STATUS_INVALID;
            if (*p == '^') {
                char *end;
                long k = strtol(p + 1, &end, 10);
                if (end == p + 1 || k < -DIM_MAX || k > DIM_MAX) return SOMA_STATUS_INVALID;
                pw = (int)k;
                p = end;
            }
            pw *= sign;
            t += pw * d->dim.t, v += pw * d->dim.v, c += pw * d->dim.c, p10 += pw * d->p10;
        }
        nfac++;
    }
    if (!dim_ok(t, v, c) || p10 < -22 || p10 > 22) return SOMA_STATUS_INVALID;
    if (u) {
        u->scale = scale10(1.0, p10);
        u->dim = (soma__dim){(int8_t)t, (int8_t)v, (int8_t)c};
    }
    return 0;
}

const char *soma__dim_name(soma__dim d, char *buf, size_t cap) {
    static const struct {
        soma__dim d;
        const char *name;
    } NAMES[] = {
        {{0, 0, 0}, "a dimensionless number"}, {D_TIME, "a time"},      {D_VOLT, "a voltage"},
        {D_CURR, "a current"},                 {D_CAP, "a capacitance"}, {D_COND, "a conductance"},
        {D_RATE, "a rate"},                    {D_RES, "a resistance"},  {{0, 1, 1}, "a charge"},
    };
    for (size_t k = 0; k < sizeof NAMES / sizeof NAMES[0]; k++)
        if (soma__dim_eq(d, NAMES[k].d)) return NAMES[k].name;
    if (!buf || cap == 0) return "a quantity of another dimension";
    int e[3] = {d.t, d.v, d.c};
    const char *sym[3] = {"T", "V", "C"};
    size_t len = (size_t)snprintf(buf, cap, "a quantity of dimension");
    for (int k = 0; k < 3 && len < cap; k++) {
        if (!e[k]) continue;
        if (e[k] == 1) len += (size_t)snprintf(buf + len, cap - len, " %s", sym[k]);
        else len += (size_t)snprintf(buf + len, cap - len, " %s^%d", sym[k], e[k]);
    }
    return buf;
}

/* ------------------------------------------------------- expressions */

enum {
    OP_CONST, OP_R, OP_I, OP_N,                    /* leaves */
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_NEG,        /* arithmetic */
    OP_POW,                                        /* x ^ constant (x field) */
    OP_POWI,                                       /* x ^ integer constant (k field) */
    OP_EXP, OP_LOG, OP_SQRT, OP_ABS, OP_MIN, OP_MAX,
    OP_UNIFORM, OP_NORMAL, OP_NCLIP, OP_LOGNORMAL  /* random, k = call site */
};

typedef struct func_def {
    const char *name;
    int op, nargs, random;
    const char *args; /* for argument-count messages */
} func_def;

static const func_def FUNCS[] = {
    {"uniform", OP_UNIFORM, 2, 1, "low, high"},
    {"normal", OP_NORMAL, 2, 1, "mean, sd"},
    {"normal_clipped", OP_NCLIP, 4, 1, "mean, sd, low, high"},
    {"lognormal", OP_LOGNORMAL, 2, 1, "mu, sigma"},
    {"exp", OP_EXP, 1, 0, "x"},
    {"log", OP_LOG, 1, 0, "x"},
    {"sqrt", OP_SQRT, 1, 0, "x"},
    {"abs", OP_ABS, 1, 0, "x"},
    {"min", OP_MIN, 2, 0, "a, b"},
    {"max", OP_MAX, 2, 0, "a, b"},
};
#define N_FUNCS (sizeof FUNCS / sizeof FUNCS[0])
#define FUNC_LIST "uniform, normal, normal_clipped, lognormal, exp, log, sqrt, abs, min, max"

/* Reserved call-site number of r (sites count from 0 and stay far below). */
#define R_SITE 0xFFFFFFFFull
/* Pending values a program may need; deeper expressions are refused. */
#define STACK_MAX 64
/* Nesting depth of the recursive-descent parser. */
#define DEPTH_MAX 200
/* normal_clipped's redraws before it clamps. */
#define CLIP_TRIES 1000

typedef struct node {
    int op;
    int nargs;
    int varies; /* depends on the element: r, i or a random call */
    int uses_n; /* depends on N */
    int height; /* levels below it, which bounds emit's recursion */
    int64_t k;  /* OP_POWI exponent, random call site */
    double x;   /* OP_CONST value, OP_POW exponent */
    soma__dim dim;
    struct node *a[4];
} node;

typedef struct instr {
    int32_t op;
    int32_t k;
    double x;
} instr;

struct soma__expr {
    soma__dim dim;
    int is_const;
    double cval; /* the value when is_const */
    uint64_t salt;
    size_t n;    /* instructions */
    instr *prog;
    char text[160]; /* the source, shortened, for soma__expr_to_unit's messages */
};

typedef struct parser {
    const char *text, *p;
    const soma__sym *syms;
    size_t nsyms;
    node *pool;
    size_t npool, cap;
    int nsites, depth, failed;
    char *err;
    size_t errlen;
} parser;

/* The source text for messages, shortened to 120 characters. */
static void quote_text(const char *text, char *out, size_t cap) {
    size_t n = strlen(text);
    if (n <= 120) snprintf(out, cap, "%s", text);
    else snprintf(out, cap, "%.117s...", text);
}

/* Record "<what> in '<text>'<tail>" (only the first error counts). */
static node *fail(parser *ps, const char *tail, const char *fmt, ...) {
    if (ps->failed) return NULL;
    ps->failed = 1;
    if (!ps->err || ps->errlen == 0) return NULL;
    char what[256], q[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    quote_text(ps->text, q, sizeof q);
    snprintf(ps->err, ps->errlen, "%s in '%s'%s", what, q, tail ? tail : "");
    return NULL;
}

static node *new_node(parser *ps, int op) {
    if (ps->npool == ps->cap) return fail(ps, NULL, "expression too long");
    node *n = &ps->pool[ps->npool++];
    memset(n, 0, sizeof *n);
    n->op = op;
    return n;
}

static node *new_const(parser *ps, double x, soma__dim d) {
    node *n = new_node(ps, OP_CONST);
    if (n) n->x = x, n->dim = d;
    return n;
}

static void skip_blanks(parser *ps) {
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r') ps->p++;
}

static int pos(const parser *ps) { return (int)(ps->p - ps->text) + 1; }

/* Text of the token at p for "unexpected ..." messages: a name or number
 * whole, else one character. */
static void token_at(const char *p, char *out, size_t cap) {
    size_t n = 1;
    if (is_alpha(*p) || is_digit(*p) || *p == '.')
        while (p[n] && (is_alpha(p[n]) || is_digit(p[n]) || p[n] == '.')) n++;
    if (n > 40) n = 40;
    snprintf(out, cap, "%.*s", (int)n, p);
}

/* "unexpected ..." for the character at ps->p. */
static node *unexpected(parser *ps) {
    if ((unsigned char)*ps->p >= 0x80)
        return fail(ps, NULL, "non-ASCII character at position %d (write units in ASCII: us for \u00b5s, MOhm for M\u03a9)",
                    pos(ps));
    char tok[48];
    token_at(ps->p, tok, sizeof tok);
    return fail(ps, NULL, "unexpected '%s' at position %d", tok, pos(ps));
}

static int is_const_node(const node *n) { return n->op == OP_CONST; }

/* Value of a folded node; flags a result that is not finite. */
static node *fold(parser *ps, node *n, double x, const char *why) {
    if (!isfinite(x)) return fail(ps, NULL, "%s", why ? why : "a constant part of the expression is not finite");
    n->op = OP_CONST;
    n->x = x;
    n->nargs = 0;
    return n;
}

static double apply(int op, const double *a, int64_t k, double x) {
    switch (op) {
    case OP_ADD: return a[0] + a[1];
    case OP_SUB: return a[0] - a[1];
    case OP_MUL: return a[0] * a[1];
    case OP_DIV: return a[0] / a[1];
    case OP_NEG: return -a[0];
    case OP_POW: return pow(a[0], x);
    case OP_POWI: return pow(a[0], (double)k);
    case OP_EXP: return exp(a[0]);
    case OP_LOG: return log(a[0]);
    case OP_SQRT: return sqrt(a[0]);
    case OP_ABS: return fabs(a[0]);
    case OP_MIN: return a[0] < a[1] ? a[0] : a[1];
    case OP_MAX: return a[0] > a[1] ? a[0] : a[1];
    }
    return NAN;
}

/* An operation on already-checked children: fills the flags and folds it
 * when every child is constant. */
static node *combine(parser *ps, int op, node **args, int nargs, soma__dim d, const char *why_nonfinite) {
    node *n = new_node(ps, op);
    if (!n) return NULL;
    n->nargs = nargs;
    n->dim = d;
    int all_const = 1;
    for (int j = 0; j < nargs; j++) {
        n->a[j] = args[j];
        if (args[j]->height + 1 > n->height) n->height = args[j]->height + 1;
        n->varies |= args[j]->varies;
        n->uses_n |= args[j]->uses_n;
        all_const &= is_const_node(args[j]);
    }
    if (!all_const || op >= OP_UNIFORM) {
        if (n->height > DEPTH_MAX) return fail(ps, NULL, "expression too complex (more than %d levels)", DEPTH_MAX);
        return n;
    }
    n->height = 0;
    double v[4];
    for (int j = 0; j < nargs; j++) v[j] = args[j]->x;
    return fold(ps, n, apply(op, v, n->k, n->x), why_nonfinite);
}

static node *parse_expr(parser *ps);
static node *parse_unary(parser *ps);

static node *binary(parser *ps, int op, node *l, node *r) {
    if (!l || !r) return NULL;
    char b1[96], b2[96];
    soma__dim d = l->dim;
    switch (op) {
    case OP_ADD:
        if (!soma__dim_eq(l->dim, r->dim))
            return fail(ps, NULL, "cannot add %s and %s", soma__dim_name(l->dim, b1, sizeof b1),
                        soma__dim_name(r->dim, b2, sizeof b2));
        break;
    case OP_SUB:
        if (!soma__dim_eq(l->dim, r->dim))
            return fail(ps, NULL, "cannot subtract %s from %s", soma__dim_name(r->dim, b2, sizeof b2),
                        soma__dim_name(l->dim, b1, sizeof b1));
        break;
    case OP_MUL:
    case OP_DIV: {
        int s = op == OP_MUL ? 1 : -1;
        int t = l->dim.t + s * r->dim.t, v = l->dim.v + s * r->dim.v, c = l->dim.c + s * r->dim.c;
        if (!dim_ok(t, v, c)) return fail(ps, NULL, "a unit power beyond %d", DIM_MAX);
        d = (soma__dim){(int8_t)t, (int8_t)v, (int8_t)c};
        if (op == OP_DIV && is_const_node(r) && r->x == 0) return fail(ps, NULL, "division by zero");
        break;
    }
    }
    node *args[2] = {l, r};
    return combine(ps, op, args, 2, d, NULL);
}

/* base ^ exponent: the exponent must be a dimensionless constant, and an
 * integer when the base has a dimension (the result's dimension must be one). */
static node *power(parser *ps, node *b, node *e) {
    if (!b || !e) return NULL;
    char buf[96];
    if (!is_const_node(e))
        return fail(ps, NULL, "the exponent after ^ must be a constant (no r, i, N or random calls)");
    if (!soma__dim_eq(e->dim, (soma__dim){0, 0, 0}))
        return fail(ps, NULL, "the exponent after ^ must be dimensionless, got %s", soma__dim_name(e->dim, buf, sizeof buf));
    double x = e->x;
    int integer = x == floor(x) && fabs(x) <= 1e6;
    soma__dim d = {0, 0, 0};
    if (!soma__dim_eq(b->dim, d)) {
        if (!integer)
            return fail(ps, NULL, "%s can only be raised to an integer power, got ^%g",
                        soma__dim_name(b->dim, buf, sizeof buf), x);
        int k = (int)x, t = b->dim.t * k, v = b->dim.v * k, c = b->dim.c * k;
        if (!dim_ok(t, v, c)) return fail(ps, NULL, "a unit power beyond %d", DIM_MAX);
        d = (soma__dim){(int8_t)t, (int8_t)v, (int8_t)c};
    }
    /* Small integer powers are evaluated by repeated squaring. */
    int small = integer && fabs(x) <= 64;
    node *n = new_node(ps, small ? OP_POWI : OP_POW);
    if (!n) return NULL;
    n->nargs = 1;
    n->a[0] = b;
    n->dim = d;
    n->varies = b->varies;
    n->uses_n = b->uses_n;
    n->height = b->height + 1;
    if (n->height > DEPTH_MAX) return fail(ps, NULL, "expression too complex (more than %d levels)", DEPTH_MAX);
    if (small) n->k = (int64_t)x;
    else n->x = x;
    if (is_const_node(b)) return fold(ps, n, apply(n->op, &b->x, n->k, n->x), "a constant power is not finite");
    return n;
}

/* Normal cumulative distribution, for normal_clipped's interval check. */
static double norm_cdf(double z) { return 0.5 * erfc(-z / sqrt(2.0)); }

static node *call(parser *ps, const func_def *f, node **a, int nargs, int64_t site) {
    char b1[96], b2[96];
    if (nargs != f->nargs)
        return fail(ps, NULL, "%s takes %d argument%s (%s), got %d", f->name, f->nargs, f->nargs == 1 ? "" : "s",
                    f->args, nargs);
    for (int j = 0; j < nargs; j++)
        if (!a[j]) return NULL;
    soma__dim none = {0, 0, 0}, d = a[0]->dim;
    if (f->random) {
        for (int j = 0; j < nargs; j++)
            if (a[j]->varies)
                return fail(ps, NULL,
                            "the arguments of %s must be the same for every element (no r, i or random calls)",
                            f->name);
        if (f->op == OP_LOGNORMAL) {
            for (int j = 0; j < nargs; j++)
                if (!soma__dim_eq(a[j]->dim, none))
                    return fail(ps, NULL,
                                "lognormal needs dimensionless arguments (mu and sigma of the logarithm), got %s; "
                                "write e.g. 0.5nS*lognormal(0, 1)",
                                soma__dim_name(a[j]->dim, b1, sizeof b1));
        }
        for (int j = 1; j < nargs; j++)
            if (!soma__dim_eq(a[j]->dim, d))
                return fail(ps, NULL, "the arguments of %s must share a dimension, got %s and %s", f->name,
                            soma__dim_name(d, b1, sizeof b1), soma__dim_name(a[j]->dim, b2, sizeof b2));
        /* Checks that need the values, when they are known now. */
        int known = 1;
        for (int j = 0; j < nargs; j++) known &= is_const_node(a[j]);
        if (known) {
            double x0 = a[0]->x, x1 = a[1]->x;
            if (f->op == OP_UNIFORM && x0 > x1)
                return fail(ps, NULL, "uniform(low, high) needs low <= high, got %g > %g", x0, x1);
            if ((f->op == OP_NORMAL || f->op == OP_NCLIP) && x1 < 0)
                return fail(ps, NULL, "%s needs sd >= 0, got %g", f->name, x1);
            if (f->op == OP_LOGNORMAL && x1 < 0) return fail(ps, NULL, "lognormal needs sigma >= 0, got %g", x1);
            if (f->op == OP_NCLIP) {
                double lo = a[2]->x, hi = a[3]->x;
                if (lo > hi) return fail(ps, NULL, "normal_clipped needs low <= high, got %g > %g", lo, hi);
                /* Redrawing only works when [lo, hi] holds a fair share of
                 * the distribution; below 1 % it is almost surely a mistake
                 * (e.g. bounds in another unit) and would cost ~100 draws. */
                double pin = x1 > 0 ? norm_cdf((hi - x0) / x1) - norm_cdf((lo - x0) / x1) : (x0 >= lo && x0 <= hi);
                if (pin < 0.01)
                    return fail(ps, NULL, "normal_clipped: [%g, %g] holds only %.2g %% of normal(%g, %g)", lo, hi,
                                100 * pin, x0, x1);
            }
        }
        node *n = combine(ps, f->op, a, nargs, f->op == OP_LOGNORMAL ? none : d, NULL);
        if (n) n->varies = 1, n->k = site;
        return n;
    }
    switch (f->op) {
    case OP_EXP:
    case OP_LOG:
        if (!soma__dim_eq(d, none))
            return fail(ps, NULL, "%s needs a dimensionless argument, got %s", f->name, soma__dim_name(d, b1, sizeof b1));
        if (f->op == OP_LOG && is_const_node(a[0]) && !(a[0]->x > 0))
            return fail(ps, NULL, "log of %g (needs a positive number)", a[0]->x);
        break;
    case OP_SQRT:
        if (d.t % 2 || d.v % 2 || d.c % 2)
            return fail(ps, NULL, "sqrt needs a dimensionless argument or a square of a unit, got %s",
                        soma__dim_name(d, b1, sizeof b1));
        if (is_const_node(a[0]) && a[0]->x < 0) return fail(ps, NULL, "sqrt of %g (needs a number >= 0)", a[0]->x);
        d = (soma__dim){(int8_t)(d.t / 2), (int8_t)(d.v / 2), (int8_t)(d.c / 2)};
        break;
    case OP_MIN:
    case OP_MAX:
        if (!soma__dim_eq(d, a[1]->dim))
            return fail(ps, NULL, "%s needs arguments of the same dimension, got %s and %s", f->name,
                        soma__dim_name(d, b1, sizeof b1), soma__dim_name(a[1]->dim, b2, sizeof b2));
        break;
    }
    return combine(ps, f->op, a, nargs, d, f->op == OP_EXP ? "exp of a constant overflows" : NULL);
}

static const soma__sym *sym_find(const parser *ps, const char *s, size_t len) {
    for (size_t k = 0; k < ps->nsyms; k++)
        if (ps->syms[k].name && strlen(ps->syms[k].name) == len && memcmp(ps->syms[k].name, s, len) == 0)
            return &ps->syms[k];
    return NULL;
}

static const func_def *func_find(const char *s, size_t len) {
    for (size_t k = 0; k < N_FUNCS; k++)
        if (strlen(FUNCS[k].name) == len && memcmp(FUNCS[k].name, s, len) == 0) return &FUNCS[k];
    return NULL;
}

static int builtin(const char *s, size_t len) {
    if (len == 1 && (*s == 'r' || *s == 'i' || *s == 'N')) return 1;
    return len == 2 && s[0] == 'p' && s[1] == 'i';
}

/* A name the parser knows other than a unit (for "missing '*'" hints). */
static int known_name(const parser *ps, const char *s, size_t len) {
    return sym_find(ps, s, len) || builtin(s, len) || func_find(s, len);
}

/* "unknown unit" with the list of units and a case hint. */
static node *unknown_unit(parser *ps, const char *s, size_t len) {
    char tail[640], hint[96] = "";
    size_t n = (size_t)snprintf(tail, sizeof tail, "; expected one of:");
    for (size_t k = 0; k < N_UNITS && n < sizeof tail; k++)
        n += (size_t)snprintf(tail + n, sizeof tail - n, "%s %s", k ? "," : "", UNITS[k].name);
    for (size_t k = 0; k < N_UNITS; k++) {
        const char *u = UNITS[k].name;
        if (strlen(u) != len) continue;
        size_t j = 0;
        while (j < len && lower(u[j]) == lower(s[j])) j++;
        if (j == len) {
            snprintf(hint, sizeof hint, " (did you mean '%s'? units are case-sensitive)", u);
            break;
        }
    }
    char full[760];
    snprintf(full, sizeof full, "%s%s", hint, tail);
    return fail(ps, full, "unknown unit '%.*s'", (int)len, s);
}

/* A number such as 1, 1.5, .5, 1e-3, with an optional unit after it. */
static node *parse_number(parser *ps) {
    const char *s = ps->p, *p = s;
    while (is_digit(*p)) p++;
    if (*p == '.') {
        p++;
        while (is_digit(*p)) p++;
    }
    if ((*p == 'e' || *p == 'E') && (is_digit(p[1]) || ((p[1] == '+' || p[1] == '-') && is_digit(p[2])))) {
        p += 2;
        while (is_digit(*p)) p++;
    }
    char buf[64];
    if ((size_t)(p - s) >= sizeof buf) return fail(ps, NULL, "number too long at position %d", pos(ps));
    memcpy(buf, s, (size_t)(p - s));
    buf[p - s] = 0;
    char *end;
    double x = strtod(buf, &end);
    if (*end == '.') { /* a locale whose decimal point is not '.' */
        const char *dp = localeconv()->decimal_point;
        *end = dp && dp[0] ? dp[0] : '.';
        x = strtod(buf, &end);
    }
    if (*end || !isfinite(x)) return fail(ps, NULL, "bad number '%s'", buf);
    ps->p = p;
    /* The unit, if any: a name right after the number or after blanks. */
    const char *q = p;
    while (is_blank(*q)) q++;
    if (!is_alpha(*q)) return new_const(ps, x, (soma__dim){0, 0, 0});
    const char *u = q;
    while (is_alpha(*q) || is_digit(*q)) q++;
    size_t len = (size_t)(q - u);
    const unit_def *d = unit_find(u, len);
    if (d) {
        ps->p = q;
        /* An integer power right after the unit belongs to the unit, as in
         * physics: "2ms^-1" is 2 per ms and "4mV^2" is 4 mV^2; "(4mV)^2"
         * squares the number too. */
        const char *z = q;
        while (is_blank(*z)) z++;
        int k = 1;
        if (*z == '^' || (z[0] == '*' && z[1] == '*')) {
            z += *z == '^' ? 1 : 2;
            while (is_blank(*z)) z++;
            int sign = *z == '-' ? -1 : 1;
            if (*z == '-' || *z == '+') z++;
            if (is_digit(*z)) {
                long v = 0;
                while (is_digit(*z) && v <= DIM_MAX) v = 10 * v + (*z++ - '0');
                if (v > DIM_MAX || is_digit(*z) || *z == '.' || *z == 'e' || *z == 'E')
                    return fail(ps, NULL, "the power of unit '%.*s' must be an integer of at most %d", (int)len, u,
                                DIM_MAX);
                k = sign * (int)v;
                ps->p = z;
            }
        }
        int t = k * d->dim.t, v = k * d->dim.v, c = k * d->dim.c;
        if (!dim_ok(t, v, c)) return fail(ps, NULL, "a unit power beyond %d", DIM_MAX);
        for (int j = 0; j < (k < 0 ? -k : k); j++) x = scale10(x, k < 0 ? -d->p10 : d->p10);
        if (!isfinite(x)) return fail(ps, NULL, "number out of range");
        return new_const(ps, x, (soma__dim){(int8_t)t, (int8_t)v, (int8_t)c});
    }
    if (known_name(ps, u, len))
        return fail(ps, NULL, "missing '*' between '%s' and '%.*s' (write %s*%.*s)", buf, (int)len, u, buf, (int)len, u);
    return unknown_unit(ps, u, len);
}

static node *parse_call(parser *ps, const char *s, size_t len) {
    const func_def *f = func_find(s, len);
    if (!f) {
        if (sym_find(ps, s, len) || builtin(s, len))
            return fail(ps, NULL, "'%.*s' is not a function", (int)len, s);
        return fail(ps, "; expected one of: " FUNC_LIST, "unknown function '%.*s'", (int)len, s);
    }
    int64_t site = f->random ? ps->nsites++ : 0;
    ps->p++; /* '(' */
    node *a[4] = {0};
    int nargs = 0;
    skip_blanks(ps);
    if (*ps->p == ')') {
        ps->p++;
    } else {
        for (;;) {
            node *x = parse_expr(ps);
            if (!x) return NULL;
            if (nargs < 4) a[nargs] = x;
            nargs++;
            skip_blanks(ps);
            if (*ps->p == ',') {
                ps->p++;
                continue;
            }
            if (*ps->p == ')') {
                ps->p++;
                break;
            }
            if (!*ps->p) return fail(ps, NULL, "missing ')' after the arguments of %s", f->name);
            char tok[48];
            token_at(ps->p, tok, sizeof tok);
            return fail(ps, NULL, "expected ',' or ')' in the arguments of %s, got '%s' at position %d", f->name, tok,
                        pos(ps));
        }
    }
    return call(ps, f, a, nargs, site); /* a[] holds the first 4; a larger count fails there */
}

static node *parse_primary(parser *ps) {
    skip_blanks(ps);
    const char *s = ps->p;
    if (is_digit(*s) || (*s == '.' && is_digit(s[1]))) return parse_number(ps);
    if (*s == '(') {
        if (++ps->depth > DEPTH_MAX) return fail(ps, NULL, "expression nested too deeply");
        ps->p++;
        skip_blanks(ps);
        if (*ps->p == ')') return fail(ps, NULL, "empty parentheses at position %d", pos(ps));
        node *e = parse_expr(ps);
        if (!e) return NULL;
        skip_blanks(ps);
        if (*ps->p != ')') {
            if (!*ps->p) return fail(ps, NULL, "missing ')'");
            char tok[48];
            token_at(ps->p, tok, sizeof tok);
            return fail(ps, NULL, "expected ')' before '%s' at position %d", tok, pos(ps));
        }
        ps->p++;
        ps->depth--;
        return e;
    }
    if (is_alpha(*s)) {
        const char *p = s;
        while (is_alpha(*p) || is_digit(*p)) p++;
        size_t len = (size_t)(p - s);
        ps->p = p;
        skip_blanks(ps);
        if (*ps->p == '(') return parse_call(ps, s, len);
        const soma__sym *y = sym_find(ps, s, len);
        if (y) {
            if (!isfinite(y->value)) return fail(ps, NULL, "'%.*s' is not a finite number", (int)len, s);
            return new_const(ps, y->value, y->dim);
        }
        if (builtin(s, len)) {
            if (*s == 'p') return new_const(ps, 3.14159265358979323846, (soma__dim){0, 0, 0});
            node *n = new_node(ps, *s == 'r' ? OP_R : *s == 'i' ? OP_I : OP_N);
            if (n) {
                n->varies = *s != 'N';
                n->uses_n = *s == 'N';
            }
            return n;
        }
        if (func_find(s, len)) return fail(ps, NULL, "%.*s is a function: write %.*s(...)", (int)len, s, (int)len, s);
        const unit_def *d = unit_find(s, len);
        if (d) return new_const(ps, scale10(1.0, d->p10), d->dim);
        char tail[600];
        size_t n = (size_t)snprintf(tail, sizeof tail,
                                    "; expected a number with a unit, r, i, N, pi, a function (uniform, normal, ...)");
        for (size_t k = 0; k < ps->nsyms && n < sizeof tail; k++)
            n += (size_t)snprintf(tail + n, sizeof tail - n, "%s%s", k ? ", " : " or one of: ", ps->syms[k].name);
        return fail(ps, tail, "unknown name '%.*s'", (int)len, s);
    }
    if (!*s) return fail(ps, NULL, "unexpected end of the expression");
    if (*s == ')') return fail(ps, NULL, "expected a value before ')' at position %d", pos(ps));
    return unexpected(ps);
}

static node *parse_power(parser *ps) {
    node *b = parse_primary(ps);
    if (!b) return NULL;
    skip_blanks(ps);
    if (*ps->p == '^' || (ps->p[0] == '*' && ps->p[1] == '*')) {
        ps->p += *ps->p == '^' ? 1 : 2;
        if (++ps->depth > DEPTH_MAX) return fail(ps, NULL, "expression nested too deeply");
        node *e = parse_unary(ps);
        ps->depth--;
        return power(ps, b, e);
    }
    return b;
}

static node *parse_unary(parser *ps) {
    skip_blanks(ps);
    if (*ps->p == '-' || *ps->p == '+') {
        int neg = *ps->p == '-';
        ps->p++;
        if (++ps->depth > DEPTH_MAX) return fail(ps, NULL, "expression nested too deeply");
        node *x = parse_unary(ps);
        ps->depth--;
        if (!x || !neg) return x;
        node *args[1] = {x};
        return combine(ps, OP_NEG, args, 1, x->dim, NULL);
    }
    return parse_power(ps);
}

static node *parse_term(parser *ps) {
    node *l = parse_unary(ps);
    for (;;) {
        if (!l) return NULL;
        skip_blanks(ps);
        char c = *ps->p;
        if ((c != '*' && c != '/') || (c == '*' && ps->p[1] == '*')) return l;
        ps->p++;
        l = binary(ps, c == '*' ? OP_MUL : OP_DIV, l, parse_unary(ps));
    }
}

static node *parse_expr(parser *ps) {
    if (++ps->depth > DEPTH_MAX) return fail(ps, NULL, "expression nested too deeply");
    node *l = parse_term(ps);
    for (;;) {
        if (!l) return NULL;
        skip_blanks(ps);
        char c = *ps->p;
        if (c != '+' && c != '-') break;
        ps->p++;
        l = binary(ps, c == '+' ? OP_ADD : OP_SUB, l, parse_term(ps));
    }
    ps->depth--;
    return l;
}

/* Postfix code of n into prog; *sp tracks the stack depth it reaches. */
static int emit(const node *n, instr *prog, size_t *len, int sp, int *maxsp) {
    for (int j = 0; j < n->nargs; j++) {
        sp = emit(n->a[j], prog, len, sp, maxsp);
        if (sp < 0) return -1;
    }
    instr *in = &prog[(*len)++];
    in->op = n->op;
    in->k = (int32_t)n->k;
    in->x = n->x;
    sp = sp - n->nargs + 1;
    if (sp > *maxsp) *maxsp = sp;
    return sp > STACK_MAX ? -1 : sp;
}

int soma__expr_parse(const char *text, const soma__sym *syms, size_t nsyms, soma__expr **out, char *err,
                     size_t errlen) {
    if (out) *out = NULL;
    if (err && errlen) err[0] = 0;
    if (!out || (nsyms && !syms)) return SOMA_STATUS_INVALID;
    const char *t = text ? text : "";
    const char *q = t;
    while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') q++;
    if (!*q) {
        if (err && errlen) snprintf(err, errlen, "empty expression");
        return SOMA_STATUS_INVALID;
    }
    parser ps = {.text = t, .p = t, .syms = syms, .nsyms = nsyms, .err = err, .errlen = errlen};
    /* Every node but the folded ones consumes at least one character. */
    ps.cap = strlen(t) + 2;
    ps.pool = malloc(ps.cap * sizeof *ps.pool);
    if (!ps.pool) return SOMA_STATUS_NOMEM;
    node *root = parse_expr(&ps);
    if (root) {
        skip_blanks(&ps);
        if (*ps.p) {
            char tok[48];
            token_at(ps.p, tok, sizeof tok);
            if (*ps.p == ')') root = fail(&ps, NULL, "unmatched ')' at position %d", pos(&ps));
            else if (is_alpha(*ps.p) || is_digit(*ps.p) || *ps.p == '(')
                root = fail(&ps, NULL, "missing operator before '%s' at position %d", tok, pos(&ps));
            else root = unexpected(&ps);
        }
    }
    soma__expr *e = NULL;
    int rc = 0;
    if (!root) rc = SOMA_STATUS_INVALID;
    else if (!(e = calloc(1, sizeof *e)) || !(e->prog = malloc(ps.npool * sizeof *e->prog))) rc = SOMA_STATUS_NOMEM;
    if (!rc) {
        int maxsp = 0;
        if (emit(root, e->prog, &e->n, 0, &maxsp) < 0) {
            fail(&ps, NULL, "expression too complex (more than %d pending values)", STACK_MAX);
            rc = SOMA_STATUS_INVALID;
        }
        e->dim = root->dim;
        e->is_const = root->op == OP_CONST;
        e->cval = root->x;
        quote_text(t, e->text, sizeof e->text);
    }
    free(ps.pool);
    if (rc) {
        soma__expr_free(e);
        return rc;
    }
    *out = e;
    return 0;
}

void soma__expr_free(soma__expr *e) {
    if (!e) return;
    free(e->prog);
    free(e);
}

soma__dim soma__expr_dim(const soma__expr *e) { return e ? e->dim : (soma__dim){0, 0, 0}; }
int soma__expr_is_const(const soma__expr *e) { return e ? e->is_const : 1; }
void soma__expr_set_salt(soma__expr *e, uint64_t salt) {
    if (e) e->salt = salt;
}

/* 53 random bits from two words, as a double in [0, 1). */
static inline double u53(uint32_t hi, uint32_t lo) {
    return (double)((((uint64_t)hi << 32) | lo) >> 11) * 0x1p-53;
}

/* cos(2 pi u) for u in [0, 1): libm's cos is a third of a normal draw's
 * cost, and this argument needs no general range reduction. With k the
 * nearest quarter turn, f = u - k/4 (exact) lies in [-1/8, 1/8], and
 * cos(2 pi u) is +-cos or +-sin of theta = 2 pi f, |theta| <= pi/4, whose
 * Taylor series stop at theta^16 and theta^17 with remainders below 5e-17.
 */
static inline double cos2pi(double u) {
    /* 1/n! for n = 2..17 (each rounded once, as the compiler folds them). */
    static const double C2 = -1.0 / 2, C4 = 1.0 / 24, C6 = -1.0 / 720, C8 = 1.0 / 40320, C10 = -1.0 / 3628800,
                        C12 = 1.0 / 479001600, C14 = -1.0 / 87178291200.0, C16 = 1.0 / 20922789888000.0;
    static const double S3 = -1.0 / 6, S5 = 1.0 / 120, S7 = -1.0 / 5040, S9 = 1.0 / 362880, S11 = -1.0 / 39916800,
                        S13 = 1.0 / 6227020800.0, S15 = -1.0 / 1307674368000.0, S17 = 1.0 / 355687428096000.0;
    int k = (int)(4.0 * u + 0.5);
    double f = u - 0.25 * k, t = 6.283185307179586476925 * f, z = t * t, z2 = z * z, z4 = z2 * z2;
    /* Estrin's scheme: the same polynomials in four dependent steps instead
     * of Horner's nine, which is what the latency of a draw waits for. */
    double c = (1 + C2 * z) + z2 * (C4 + C6 * z) + z4 * ((C8 + C10 * z) + z2 * (C12 + C14 * z)) + z4 * z4 * C16;
    double s = t * ((1 + S3 * z) + z2 * (S5 + S7 * z) + z4 * ((S9 + S11 * z) + z2 * (S13 + S15 * z)) + z4 * z4 * S17);
    /* cos(t + q pi/2) = cos t, -sin t, -cos t, sin t for q = k mod 4,
     * chosen with bit masks: q is random, so branches would mispredict
     * half the time and cost more than the polynomials. */
    uint64_t q = (uint64_t)k & 3, cb, sb, pick = (uint64_t)0 - (q & 1);
    memcpy(&cb, &c, sizeof cb);
    memcpy(&sb, &s, sizeof sb);
    uint64_t vb = ((cb & ~pick) | (sb & pick)) ^ (((q + 1) >> 1 & 1) << 63);
    double v;
    memcpy(&v, &vb, sizeof v);
    return v;
}

/* One standard normal from block (skey, ctr): Box-Muller, cosine branch,
 * with u1 from words 0-1 and u2 from words 2-3; 1 - u1 keeps the
 * logarithm's argument in (0, 1]. */
static inline double gauss(uint64_t skey, uint64_t ctr) {
    uint32_t w[4];
    soma_philox(skey, ctr, w);
    double u1 = 1.0 - u53(w[0], w[1]), u2 = u53(w[2], w[3]);
    return sqrt(-2.0 * log(u1)) * cos2pi(u2);
}

static double clipped(uint64_t skey, uint64_t ctr, double m, double sd, double lo, double hi) {
    double x = m;
    for (int a = 0; a < CLIP_TRIES; a++) {
        uint64_t k = a ? soma__mix64(skey + (uint64_t)a * 0x9E3779B97F4A7C15ull) : skey;
        x = m + sd * gauss(k, ctr);
        if (x >= lo && x <= hi) return x;
        if (sd == 0) break; /* every redraw would give m again */
    }
    return x < lo ? lo : x > hi ? hi : x;
}

double soma__expr_eval(const soma__expr *e, uint64_t key, uint64_t elem, uint64_t n) {
    if (e->is_const) return e->cval;
    double st[STACK_MAX];
    double r = -1; /* r, drawn on first use */
    int sp = 0;
    const instr *in = e->prog, *end = e->prog + e->n;
    for (; in < end; in++) {
        switch (in->op) {
        case OP_CONST: st[sp++] = in->x; break;
        case OP_R:
            if (r < 0) {
                uint32_t w[4];
                soma_philox(soma__hash64(key, 0, R_SITE), elem, w);
                r = u53(w[0], w[1]);
            }
            st[sp++] = r;
            break;
        case OP_I: st[sp++] = (double)elem; break;
        case OP_N: st[sp++] = (double)n; break;
        case OP_ADD: sp--, st[sp - 1] += st[sp]; break;
        case OP_SUB: sp--, st[sp - 1] -= st[sp]; break;
        case OP_MUL: sp--, st[sp - 1] *= st[sp]; break;
        case OP_DIV: sp--, st[sp - 1] /= st[sp]; break;
        case OP_NEG: st[sp - 1] = -st[sp - 1]; break;
        case OP_POW: st[sp - 1] = pow(st[sp - 1], in->x); break;
        case OP_POWI: {
            /* Small integer powers by repeated squaring: exact for r^2 and
             * much cheaper than pow. */
            double b = st[sp - 1], y = 1;
            int k = in->k < 0 ? -in->k : in->k;
            while (k) {
                if (k & 1) y *= b;
                b *= b;
                k >>= 1;
            }
            st[sp - 1] = in->k < 0 ? 1 / y : y;
            break;
        }
        case OP_EXP: st[sp - 1] = exp(st[sp - 1]); break;
        case OP_LOG: st[sp - 1] = log(st[sp - 1]); break;
        case OP_SQRT: st[sp - 1] = sqrt(st[sp - 1]); break;
        case OP_ABS: st[sp - 1] = fabs(st[sp - 1]); break;
        case OP_MIN: sp--, st[sp - 1] = st[sp - 1] < st[sp] ? st[sp - 1] : st[sp]; break;
        case OP_MAX: sp--, st[sp - 1] = st[sp - 1] > st[sp] ? st[sp - 1] : st[sp]; break;
        case OP_UNIFORM: {
            uint32_t w[4];
            soma_philox(soma__hash64(key, e->salt, (uint64_t)in->k), elem, w);
            sp--;
            st[sp - 1] += (st[sp] - st[sp - 1]) * u53(w[0], w[1]);
            break;
        }
        case OP_NORMAL:
            sp--;
            st[sp - 1] += st[sp] * gauss(soma__hash64(key, e->salt, (uint64_t)in->k), elem);
            break;
        case OP_NCLIP:
            sp -= 3;
            st[sp - 1] = clipped(soma__hash64(key, e->salt, (uint64_t)in->k), elem, st[sp - 1], st[sp], st[sp + 1],
                                 st[sp + 2]);
            break;
        case OP_LOGNORMAL:
            sp--;
            st[sp - 1] = exp(st[sp - 1] + st[sp] * gauss(soma__hash64(key, e->salt, (uint64_t)in->k), elem));
            break;
        }
    }
    return st[0];
}

int soma__expr_to_unit(const soma__expr *e, const char *unit, double *scale, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!e || !scale) return SOMA_STATUS_INVALID;
    soma__unit u;
    if (soma__unit_parse(unit, &u)) {
        if (err && errlen) snprintf(err, errlen, "unknown unit '%s'", unit ? unit : "(null)");
        return SOMA_STATUS_INVALID;
    }
    soma__dim none = {0, 0, 0};
    if (soma__dim_eq(e->dim, u.dim)) {
        *scale = 1.0 / u.scale;
        return 0;
    }
    if (soma__dim_eq(e->dim, none)) { /* a plain number, read in `unit` */
        *scale = 1.0;
        return 0;
    }
    char b1[96], b2[96];
    if (err && errlen) {
        if (soma__dim_eq(u.dim, none))
            snprintf(err, errlen, "expected a dimensionless number, got %s in '%s'", soma__dim_name(e->dim, b2, sizeof b2),
                     e->text);
        else
            snprintf(err, errlen, "expected %s (%s), got %s in '%s'", soma__dim_name(u.dim, b1, sizeof b1), unit,
                     soma__dim_name(e->dim, b2, sizeof b2), e->text);
    }
    return SOMA_STATUS_INVALID;
}
