/* netfile.c — the one loader of network files (YAML): a network plus the
 * options of whichever executors the file configures, through the public
 * API of the net (soma_net_add_pop, soma_net_set, soma_net_connect ...).
 *
 *   params:  {NAME: value, ...}          named constants for expressions
 *   sets:    {SET: {NAME: value, ...}}   named overrides of params (chosen with "set=SET")
 *   network:
 *     dt: 0.1ms                          the time step (default 0.1 ms)
 *     populations: {NAME: {model, size, shape, like: OTHER, recurrent, learn,
 *                          <parameter or initial state>: value, ...}}
 *     projections: [{from, to, kind: dense|conv, bias, delay, port, kernel, stride, padding, pool, pool_size}
 *                   | {from, to, connect: {rule, p, k, n, autapses, multapses, file},
 *                      weight, delay, port: e|i|<index>|sign}, ...]  (sparse: from/to may be lists)
 *     inputs: [{to, poisson: {rate, weight, port}} | {to, steps: {times, values}} | {to, spikes: FILE}]
 *   data:    {dataset, dir, encoding, steps, gain, threshold, tau, delta_off,
 *             readout, limit_train, limit_test, bin_ms}                      (trainer)
 *   train:   {epochs, batch, loss, optimizer, lr, clip, schedule, rate_penalty,
 *             surrogate, correct_rate, incorrect_rate, seed, threads, max_batches}  (trainer)
 *   simulate: {time, warmup, seed, threads, record: {spikes, state, rate_bin},
 *              reference_rates}                                              (simulator)
 *
 * Every population value is an expression with units (see core/value.h):
 * "20ms", "0.95", "uniform(-60mV, -50mV)", "-g*J"; sizes and counts are
 * dimensionless expressions rounded to integers ("0.8*n"). libyaml's
 * document loader gives a node tree with the start mark of every node, so
 * each error names the line of the value (or key) at fault: "FILE:LINE:
 * what was wrong; expected ...". Values whose check has to wait for an
 * executor (random per-neuron values, delays drawn per synapse) carry their
 * file:line into the executor's messages. Model parameters are never named
 * here: they come from the model's descriptors, so a new model needs no
 * change in this file.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "soma.h"
#include "core/err.h"
#include "core/names.h"
#include "net/net.h"

/* Everything the walk needs to read nodes and report errors. */
typedef struct ctx {
    const char *path;
    char dir[1024]; /* the file's folder: relative paths in it start there */
    char *err;
    size_t errlen;
    yaml_document_t *doc;
    soma_net *net;
    /* Overrides of params (from a set or the command line), applied where
     * the param is defined, so params computed from it see the new value. */
    struct ov {
        char name[64];
        const char *text;
        char where[96];
        int used;
    } ov[64];
    size_t nov;
} ctx;

/* ------------------------------------------------------------ messages */

static int node_line(const yaml_node_t *n) { return n ? (int)n->start_mark.line + 1 : 0; }

/* Write "PATH:LINE: <fmt>" into the error buffer and return status. */
static int fail(ctx *c, int line, int status, const char *fmt, ...) SOMA__PRINTF(4, 5);
static int fail(ctx *c, int line, int status, const char *fmt, ...) {
    char where[1100];
    snprintf(where, sizeof where, "%s:%d", c->path, line);
    va_list ap;
    va_start(ap, fmt);
    soma__verrf(c->err, c->errlen, status, where, fmt, ap);
    va_end(ap);
    return status;
}

/* A growing comma-separated list of names for "expected one of: ..." hints. */
typedef struct namelist {
    char buf[512];
    size_t len;
} namelist;

static void names_add(namelist *l, const char *name) {
    if (!name) return;
    int k = snprintf(l->buf + l->len, sizeof l->buf - l->len, "%s%s", l->len ? ", " : "", name);
    if (k > 0) l->len = l->len + (size_t)k < sizeof l->buf ? l->len + (size_t)k : sizeof l->buf - 1;
}

static void names_from_list(namelist *l, const char *const *names) {
    l->len = 0;
    l->buf[0] = 0;
    for (size_t i = 0; names[i]; i++) names_add(l, names[i]);
}

/* Names of an enum exposed as find(name) / name(i): walk i while the two agree. */
static void names_from_enum(namelist *l, const char *(*name)(int), int (*find)(const char *)) {
    l->len = 0;
    l->buf[0] = 0;
    for (int i = 0; i < 64; i++) {
        const char *s = name(i);
        if (!s || find(s) != i) break;
        names_add(l, s);
    }
}

/* A short description of what a node holds, for "got ..." in type errors. */
static const char *node_kind(const yaml_node_t *n) {
    if (!n) return "nothing";
    switch (n->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_SCALAR_NODE: return n->data.scalar.length ? "a scalar" : "nothing";
    default: return "nothing";
    }
}

/* ---------------------------------------------------------- node access */

static yaml_node_t *node_at(ctx *c, int id) { return yaml_document_get_node(c->doc, id); }

static int is_scalar(const yaml_node_t *n) { return n && n->type == YAML_SCALAR_NODE; }
static const char *scalar(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

/* A plain empty scalar, "~" or "null" is YAML's null. */
static int is_null(const yaml_node_t *n) {
    if (!n) return 1;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *s = scalar(n);
    return s[0] == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

/* Require a mapping; the walk then goes over its pairs in file order and
 * rejects a key written twice (libyaml keeps both). */
static int want_mapping(ctx *c, const yaml_node_t *n, const char *what) {
    if (n && n->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = node_at(c, p->key);
            if (!is_scalar(k))
                return fail(c, node_line(k), SOMA_STATUS_INVALID, "%s: a key is %s; expected a plain name",
                            what, node_kind(k));
            for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
                yaml_node_t *k0 = node_at(c, q->key);
                if (strcmp(scalar(k0), scalar(k)) == 0)
                    return fail(c, node_line(k), SOMA_STATUS_INVALID,
                                "%s: key '%s' given twice (first on line %d); expected each key once", what,
                                scalar(k), node_line(k0));
            }
        }
        return 0;
    }
    return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s is %s; expected a mapping (key: value, ...)", what,
                node_kind(n));
}

/* The value node of key in mapping n, or NULL. */
static yaml_node_t *map_get(ctx *c, const yaml_node_t *n, const char *key, yaml_node_t **keynode) {
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key);
        if (is_scalar(k) && strcmp(scalar(k), key) == 0) {
            if (keynode) *keynode = k;
            return node_at(c, p->value);
        }
    }
    return NULL;
}

static int unknown_key(ctx *c, const yaml_node_t *k, const char *what, const char *const *valid) {
    namelist l;
    names_from_list(&l, valid);
    return fail(c, node_line(k), SOMA_STATUS_INVALID, "%s: unknown key '%s'; expected one of: %s", what,
                scalar(k), l.buf);
}

/* -------------------------------------------------------- scalar values */

/* Only decimal notation: strtod would also take hex, "nan" and "inf". */
static int decimal_chars(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!strchr("0123456789+-.eE", *s)) return 0;
    return 1;
}

static int get_string(ctx *c, const yaml_node_t *n, const char *what, const char **out) {
    *out = "";
    if (!is_scalar(n) || is_null(n))
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s is %s; expected a name or string", what,
                    node_kind(n));
    *out = scalar(n);
    return 0;
}

/* Copy a string into a fixed buffer, rejecting one that does not fit. */
static int get_string_buf(ctx *c, const yaml_node_t *n, const char *what, char *buf, size_t cap) {
    const char *s;
    int rc = get_string(c, n, what, &s);
    if (rc) return rc;
    if (strlen(s) >= cap)
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s is too long (%zu characters); expected at most %zu",
                    what, strlen(s), cap - 1);
    memcpy(buf, s, strlen(s) + 1);
    return 0;
}

/* A finite number within [lo, hi] (lo excluded if lo_open). */
static int get_float(ctx *c, const yaml_node_t *n, const char *what, double lo, double hi, int lo_open,
                     float *out) {
    char range[96];
    if (isinf(hi))
        snprintf(range, sizeof range, "a number %s %g", lo_open ? ">" : ">=", lo);
    else
        snprintf(range, sizeof range, "a number in %s%g, %g]", lo_open ? "(" : "[", lo, hi);
    if (!is_scalar(n) || is_null(n))
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s is %s; expected %s", what, node_kind(n), range);
    const char *s = scalar(n);
    char *end;
    errno = 0;
    double v = decimal_chars(s) ? strtod(s, &end) : 0.0;
    if (!decimal_chars(s) || end == s || *end)
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s: '%s' is not a number; expected %s", what, s, range);
    /* Beyond float's range (or beyond double's: ERANGE) is out of range too. */
    if ((errno == ERANGE && v != 0.0) || !isfinite(v) || fabs(v) > 3.0e38 || v < lo || v > hi ||
        (lo_open && v == lo))
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s: %s is out of range; expected %s", what, s, range);
    *out = (float)v;
    return 0;
}

/* A decimal integer within [lo, hi]. */
static int get_int(ctx *c, const yaml_node_t *n, const char *what, long long lo, long long hi, long long *out) {
    char range[96];
    if (hi >= INT_MAX) /* no practical upper bound: do not print one */
        snprintf(range, sizeof range, "an integer >= %lld", lo);
    else
        snprintf(range, sizeof range, "an integer in [%lld, %lld]", lo, hi);
    if (!is_scalar(n) || is_null(n))
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s is %s; expected %s", what, node_kind(n), range);
    const char *s = scalar(n);
    const char *d = s + (*s == '+' || *s == '-');
    int digits = *d != 0;
    for (; *d; d++)
        if (*d < '0' || *d > '9') digits = 0;
    char *end;
    errno = 0;
    long long v = digits ? strtoll(s, &end, 10) : 0;
    if (!digits || *end)
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s: '%s' is not an integer; expected %s", what, s,
                    range);
    if (errno == ERANGE || v < lo || v > hi) {
        if (errno == ERANGE || v > hi) /* the bound left out above is the one at fault */
            snprintf(range, sizeof range, "an integer in [%lld, %lld]", lo, hi);
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s: %s is out of range; expected %s", what, s, range);
    }
    *out = v;
    return 0;
}

static int get_bool(ctx *c, const yaml_node_t *n, const char *what, int *out) {
    static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES"};
    static const char *const no[] = {"false", "False", "FALSE", "no", "No", "NO"};
    if (is_scalar(n) && !is_null(n)) {
        for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
            if (strcmp(scalar(n), yes[i]) == 0) { *out = 1; return 0; }
            if (strcmp(scalar(n), no[i]) == 0) { *out = 0; return 0; }
        }
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s: '%s' is not a boolean; expected true or false",
                    what, scalar(n));
    }
    return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s is %s; expected true or false", what, node_kind(n));
}

/* A name looked up in an enum table; unknown names list the valid ones. */
static int get_enum(ctx *c, const yaml_node_t *n, const char *what, const char *(*name)(int),
                    int (*find)(const char *), int *out) {
    namelist l;
    names_from_enum(&l, name, find);
    if (!is_scalar(n) || is_null(n))
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s is %s; expected one of: %s", what, node_kind(n),
                    l.buf);
    int v = find(scalar(n));
    if (v < 0)
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s: unknown name '%s'; expected one of: %s", what,
                    scalar(n), l.buf);
    *out = v;
    return 0;
}

/* Helpers that narrow get_int to a field's type. */
static int get_int_field(ctx *c, const yaml_node_t *n, const char *what, long long lo, int *out) {
    long long v;
    int rc = get_int(c, n, what, lo, INT_MAX, &v);
    if (!rc) *out = (int)v;
    return rc;
}
static int get_size_field(ctx *c, const yaml_node_t *n, const char *what, long long lo, size_t *out) {
    long long v;
    int rc = get_int(c, n, what, lo, LLONG_MAX, &v);
    if (!rc) *out = (size_t)v;
    return rc;
}

/* Report an error the net already formatted (with "FILE:LINE: " in front
 * when a value's origin was marked with where()). */
static int fail_net(ctx *c, int status) {
    const char *m = soma_net_errmsg(c->net);
    if (!m[0]) return fail(c, 0, status, "%s", soma_strerror(status)); /* never a message without the file */
    if (c->err && c->errlen) snprintf(c->err, c->errlen, "%s", m);
    return status;
}

/* Mark the net's next values with this node's file:line. */
static void where(ctx *c, const yaml_node_t *n) {
    char w[96];
    snprintf(w, sizeof w, "%s:%d", c->path, node_line(n));
    soma__net_where(c->net, w);
}

/* A non-empty scalar: the text of a value or expression. */
static int want_scalar(ctx *c, const yaml_node_t *n, const char *what, const char **out) {
    *out = "";
    if (!is_scalar(n) || is_null(n))
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s is %s; expected a value (a number or an expression)", what,
                    n && is_scalar(n) ? "empty" : node_kind(n));
    *out = scalar(n);
    return 0;
}

/* Refuse any key of mapping n not in valid. */
static int check_keys(ctx *c, const yaml_node_t *n, const char *what, const char *const *valid) {
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key);
        int ok = 0;
        for (size_t i = 0; valid[i]; i++) ok |= strcmp(valid[i], scalar(k)) == 0;
        if (!ok) return unknown_key(c, k, what, valid);
    }
    return 0;
}

/* One population name, or (max > 1) a list of at most max names. */
static int pop_list(ctx *c, const yaml_node_t *n, const char *what, size_t *out, size_t *count, size_t max) {
    *count = 0;
    if (!n) return fail(c, 0, SOMA_STATUS_INVALID, "%s missing", what);
    const yaml_node_t *items[64];
    size_t ni = 0;
    if (n->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            if (ni == max)
                return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s: at most %zu population%s", what, max,
                            max > 1 ? "s in one list" : "");
            items[ni++] = node_at(c, *it);
        }
    } else
        items[ni++] = n;
    for (size_t i = 0; i < ni; i++) {
        const char *s;
        int rc = get_string(c, items[i], what, &s);
        if (rc) return rc;
        if (soma_net_find_pop(c->net, s, &out[*count])) {
            namelist l;
            l.len = 0;
            l.buf[0] = 0;
            for (size_t p = 0; p < c->net->npops; p++) names_add(&l, c->net->pops[p].name);
            return fail(c, node_line(items[i]), SOMA_STATUS_INVALID, "%s: no population '%s'; expected one of: %s",
                        what, s, l.len ? l.buf : "(none defined)");
        }
        (*count)++;
    }
    return 0;
}

/* A constant expression in `unit` (e.g. "ms"), evaluated now. */
static int get_quantity(ctx *c, const yaml_node_t *n, const char *what, const char *unit, double *out) {
    const char *s;
    int rc = want_scalar(c, n, what, &s);
    if (rc) return rc;
    soma__expr *e = NULL;
    char err[300];
    double scale;
    rc = soma__expr_parse(s, c->net->syms, c->net->nsyms, &e, err, sizeof err);
    if (!rc) rc = soma__expr_to_unit(e, unit, &scale, err, sizeof err);
    if (!rc && !soma__expr_is_const(e)) {
        snprintf(err, sizeof err, "'%s' is not a constant", s);
        rc = SOMA_STATUS_INVALID;
    }
    if (rc) {
        soma__expr_free(e);
        return fail(c, node_line(n), rc, "%s: %s", what, err);
    }
    *out = soma__expr_eval(e, 0, 0, 1) * scale;
    soma__expr_free(e);
    if (!isfinite(*out)) return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s: '%s' is not finite", what, s);
    return 0;
}

/* A count: a dimensionless constant expression, rounded, within [lo, hi]. */
static int get_count(ctx *c, const yaml_node_t *n, const char *what, double lo, double hi, size_t *out) {
    double v;
    /* A number written as such must be an integer; an expression ("0.8*n")
     * is rounded to the nearest one. */
    if (is_scalar(n) && decimal_chars(scalar(n)) && strpbrk(scalar(n), ".eE")) {
        char *end;
        double x = strtod(scalar(n), &end);
        if (*end || x != floor(x))
            return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s: '%s' is not an integer; expected an integer in [%g, %g]",
                        what, scalar(n), lo, hi);
    }
    int rc = get_quantity(c, n, what, "", &v);
    if (rc) {
        /* Name what was expected after the expression's own complaint. */
        size_t len = c->err ? strlen(c->err) : 0;
        if (c->err && len + 40 < c->errlen) snprintf(c->err + len, c->errlen - len, " (a count: an integer)");
        return rc;
    }
    double r = floor(v + 0.5);
    if (r < lo || r > hi) {
        if (hi >= 1e9) return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s = %g; expected an integer >= %g", what, v, lo);
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s = %g; expected an integer in [%g, %g]", what, v, lo, hi);
    }
    *out = (size_t)r;
    return 0;
}


/* A path relative to the network file's folder. */
static void rel_path(ctx *c, const char *p, char *out, size_t cap) {
    if (p[0] == '/' || !c->dir[0])
        snprintf(out, cap, "%s", p);
    else
        snprintf(out, cap, "%s/%s", c->dir, p);
}


/* ------------------------------------------------------------ params */

static struct ov *find_ov(ctx *c, const char *name) {
    for (size_t i = c->nov; i-- > 0;)
        if (!strcmp(c->ov[i].name, name)) return &c->ov[i];
    return NULL;
}

static int parse_params(ctx *c, const yaml_node_t *n, const char *what) {
    int rc = want_mapping(c, n, what);
    if (rc) return rc;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
        const char *s;
        if ((rc = want_scalar(c, v, scalar(k), &s))) return rc;
        where(c, v);
        struct ov *o = find_ov(c, scalar(k));
        if (o) {
            /* Every entry for this name counts as used; the last one wins. */
            for (size_t i = 0; i < c->nov; i++)
                if (!strcmp(c->ov[i].name, scalar(k))) c->ov[i].used = 1;
            s = o->text;
            soma__net_where(c->net, o->where);
        }
        if ((rc = soma_net_define(c->net, scalar(k), s))) return fail_net(c, rc);
    }
    return 0;
}


/* -------------------------------------------------------------- network */

/* Parameter names of a model, for hints. */
static void model_param_names(namelist *l, const soma_model *m, int learnable_only) {
    size_t np;
    const soma_param_desc *d = soma_model_params(m, &np);
    l->len = 0;
    l->buf[0] = 0;
    for (size_t i = 0; i < np; i++)
        if (!learnable_only || d[i].learnable) names_add(l, d[i].name);
    if (!l->len) names_add(l, "(none)");
}

static const soma_param_desc *model_param(const soma_model *m, const char *name) {
    size_t np;
    const soma_param_desc *d = soma_model_params(m, &np);
    for (size_t i = 0; i < np; i++)
        if (strcmp(d[i].name, name) == 0) return &d[i];
    return NULL;
}

/* Mark one parameter of population `pop` learnable in the way `how`. */
static int set_learn(ctx *c, size_t pop, const char *pname, const soma_model *m, const yaml_node_t *at,
                     const char *param, soma_learn how) {
    const soma_param_desc *d = model_param(m, param);
    namelist l;
    model_param_names(&l, m, 1);
    if (!d || !d->learnable)
        return fail(c, node_line(at), SOMA_STATUS_INVALID,
                    "network.populations.%s.learn: '%s' is not a learnable parameter of model %s; expected one of: %s",
                    pname, param, soma_model_name(m), l.buf);
    if (soma_net_set_learn(c->net, pop, param, how))
        return fail(c, node_line(at), SOMA_STATUS_INVALID, "network.populations.%s.learn: %s; expected one of: %s",
                    pname, soma_net_errmsg(c->net), l.buf);
    return 0;
}

/* learn: [p, q] (per layer) or {p: neuron|layer|none, ...}. */
static int parse_learn(ctx *c, size_t pop, const char *pname, const soma_model *m, const yaml_node_t *n) {
    char what[160];
    snprintf(what, sizeof what, "network.populations.%s.learn", pname);
    if (is_scalar(n) && !is_null(n)) return set_learn(c, pop, pname, m, n, scalar(n), SOMA_LEARN_LAYER);
    if (n->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            yaml_node_t *v = node_at(c, *it);
            const char *param;
            int rc = get_string(c, v, what, &param);
            if (rc) return rc;
            if ((rc = set_learn(c, pop, pname, m, v, param, SOMA_LEARN_LAYER))) return rc;
        }
        return 0;
    }
    if (n->type == YAML_MAPPING_NODE) {
        int rc = want_mapping(c, n, what);
        if (rc) return rc;
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
            const char *how;
            if ((rc = get_string(c, v, what, &how))) return rc;
            soma_learn h;
            if (strcmp(how, "neuron") == 0) h = SOMA_LEARN_NEURON;
            else if (strcmp(how, "layer") == 0) h = SOMA_LEARN_LAYER;
            else if (strcmp(how, "none") == 0) h = SOMA_LEARN_NONE;
            else
                return fail(c, node_line(v), SOMA_STATUS_INVALID, "%s.%s: unknown mode '%s'; expected one of: neuron, layer, none",
                            what, scalar(k), how);
            if ((rc = set_learn(c, pop, pname, m, k, scalar(k), h))) return rc;
        }
        return 0;
    }
    namelist l;
    model_param_names(&l, m, 1);
    return fail(c, node_line(n), SOMA_STATUS_INVALID,
                "%s is %s; expected a list of parameters [%s] or a mapping {param: neuron|layer}", what,
                node_kind(n), l.buf);
}

static int get_port(ctx *c, const yaml_node_t *n, size_t to, int *port) {
    *port = SOMA_PORT_BY_SIGN;
    if (!n) return 0;
    const char *s;
    int rc = want_scalar(c, n, "port", &s);
    if (rc) return rc;
    if (!strcmp(s, "sign")) return 0;
    const soma_model *m = c->net->pops[to].model;
    int k = soma__model_port_index(m, s);
    if (k < 0 && isdigit((unsigned char)s[0])) k = atoi(s);
    if (k < 0 || (size_t)k >= m->n_ports) {
        char names[128] = "";
        for (size_t j = 0; j < m->n_ports; j++) soma__names_add(names, sizeof names, m->port_names[j]);
        soma__names_add(names, sizeof names, "sign");
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "port '%s': model %s has ports %s", s, m->name, names);
    }
    *port = k;
    return 0;
}

static const char *const conn_keys[] = {"rule", "p", "k", "n", "autapses", "multapses", "file", NULL};

static int parse_connector(ctx *c, const yaml_node_t *n, soma_connector *cn, char *path, size_t cap) {
    int rc = want_mapping(c, n, "connect");
    if (rc) return rc;
    if ((rc = check_keys(c, n, "connect", conn_keys))) return rc;
    const yaml_node_t *r = map_get(c, n, "rule", NULL);
    const char *rule;
    if (!r) return fail(c, node_line(n), SOMA_STATUS_INVALID, "connect: no rule; expected rule: all_to_all, one_to_one, ...");
    if ((rc = want_scalar(c, r, "rule", &rule))) return rc;
    int ri = soma_conn_rule_find(rule);
    if (ri < 0) {
        char names[300] = "";
        for (int i = 0; soma_conn_rule_name(i); i++) soma__names_add(names, sizeof names, soma_conn_rule_name(i));
        return fail(c, node_line(r), SOMA_STATUS_INVALID, "connect: unknown rule '%s'; expected one of: %s", rule, names);
    }
    soma_connector_default(cn, ri);
    const yaml_node_t *v;
    if ((v = map_get(c, n, "p", NULL))) {
        if ((rc = get_quantity(c, v, "p", "", &cn->p))) return rc;
        if (!(cn->p >= 0 && cn->p <= 1))
            return fail(c, node_line(v), SOMA_STATUS_INVALID, "connection probability %g is outside [0, 1]", cn->p);
    }
    if ((v = map_get(c, n, "k", NULL)) && (rc = get_count(c, v, "k", 0, 1e12, &cn->k))) return rc;
    if ((v = map_get(c, n, "n", NULL)) && (rc = get_count(c, v, "n", 0, 1e12, &cn->n))) return rc;
    if ((v = map_get(c, n, "autapses", NULL)) && (rc = get_bool(c, v, "autapses", &cn->autapses))) return rc;
    if ((v = map_get(c, n, "multapses", NULL)) && (rc = get_bool(c, v, "multapses", &cn->multapses))) return rc;
    if ((v = map_get(c, n, "file", NULL))) {
        const char *s;
        if ((rc = want_scalar(c, v, "file", &s))) return rc;
        rel_path(c, s, path, cap);
        cn->path = path;
    }
    return 0;
}


/* A spike file for a spike_source: "neuron,time_ms" per line (commas or
 * blanks, '#' comments, an optional header line). */
static int read_spike_file(ctx *c, const yaml_node_t *at, size_t pop, const char *file) {
    char path[2048];
    rel_path(c, file, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f) return fail(c, node_line(at), SOMA_STATUS_IO, "cannot open spike file %s: %s", path, strerror(errno));
    size_t cap = 1024, n = 0;
    uint32_t *ids = malloc(cap * sizeof *ids);
    double *ts = malloc(cap * sizeof *ts);
    char line[512];
    int lineno = 0, rc = 0;
    while (!rc && ids && ts && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = line;
        while (isspace((unsigned char)*s)) s++;
        if (!*s || *s == '#') continue;
        if (lineno == 1 && isalpha((unsigned char)*s)) continue; /* header */
        char *end;
        errno = 0;
        long long id = strtoll(s, &end, 10);
        char *q = end;
        while (*q == ' ' || *q == '\t') q++;
        if (end == s || (*q != ',' && !isspace((unsigned char)*q)) || id < 0) {
            if (c->err) snprintf(c->err, c->errlen, "%s:%d: expected 'neuron,time_ms', got '%.60s'", path, lineno, s);
            rc = SOMA_STATUS_FORMAT;
            break;
        }
        q++;
        double t = strtod(q, &end);
        while (isspace((unsigned char)*end)) end++;
        if (end == q || *end || !isfinite(t) || t < 0) {
            if (c->err) snprintf(c->err, c->errlen, "%s:%d: expected a time in ms >= 0 after the neuron, got '%.60s'", path, lineno, q);
            rc = SOMA_STATUS_FORMAT;
            break;
        }
        if ((size_t)id >= c->net->pops[pop].size) {
            if (c->err)
                snprintf(c->err, c->errlen, "%s:%d: neuron %lld is out of range (population '%s' has %zu)", path,
                         lineno, id, c->net->pops[pop].name, c->net->pops[pop].size);
            rc = SOMA_STATUS_FORMAT;
            break;
        }
        if (n == cap) {
            cap *= 2;
            uint32_t *ni = realloc(ids, cap * sizeof *ids);
            double *nt = ni ? realloc(ts, cap * sizeof *ts) : NULL;
            if (ni) ids = ni;
            if (nt) ts = nt;
            if (!ni || !nt) {
                rc = SOMA_STATUS_NOMEM;
                break;
            }
        }
        ids[n] = (uint32_t)id;
        ts[n++] = t;
    }
    fclose(f);
    if (!ids || !ts) rc = SOMA_STATUS_NOMEM;
    if (rc == SOMA_STATUS_NOMEM) rc = fail(c, node_line(at), rc, "out of memory reading spike file %s", path);
    if (!rc) {
        where(c, at);
        if ((rc = soma_net_set_spikes(c->net, pop, ids, ts, n))) rc = fail_net(c, rc);
    }
    free(ids);
    free(ts);
    return rc;
}

static int float_list(ctx *c, const yaml_node_t *n, const char *what, const char *unit, double **out, size_t *count) {
    if (!n || n->type != YAML_SEQUENCE_NODE)
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s is %s; expected a list", what, node_kind(n));
    size_t m = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    *out = malloc((m ? m : 1) * sizeof(double));
    if (!*out) return fail(c, node_line(n), SOMA_STATUS_NOMEM, "%s: out of memory for %zu values", what, m);
    *count = m;
    for (size_t i = 0; i < m; i++) {
        int rc = get_quantity(c, node_at(c, n->data.sequence.items.start[i]), what, unit, &(*out)[i]);
        if (rc) {
            free(*out);
            *out = NULL;
            return rc;
        }
    }
    return 0;
}

static int parse_input(ctx *c, const yaml_node_t *n) {
    static const char *const keys[] = {"to", "poisson", "steps", "spikes", NULL};
    int rc = want_mapping(c, n, "input");
    if (rc) return rc;
    if ((rc = check_keys(c, n, "input", keys))) return rc;
    size_t to[64], nt;
    if (!map_get(c, n, "to", NULL)) return fail(c, node_line(n), SOMA_STATUS_INVALID, "input: no 'to'; expected to: POPULATION");
    if ((rc = pop_list(c, map_get(c, n, "to", NULL), "to", to, &nt, 64))) return rc;
    const yaml_node_t *v;
    int kinds = !!map_get(c, n, "poisson", NULL) + !!map_get(c, n, "steps", NULL) + !!map_get(c, n, "spikes", NULL);
    if (kinds != 1) return fail(c, node_line(n), SOMA_STATUS_INVALID, "input: expected exactly one of poisson, steps, spikes");
    for (size_t j = 0; j < nt; j++) {
        if ((v = map_get(c, n, "poisson", NULL))) {
            static const char *const pk[] = {"rate", "weight", "port", NULL};
            if ((rc = want_mapping(c, v, "poisson")) || (rc = check_keys(c, v, "poisson", pk))) return rc;
            const char *rate, *w;
            if (!map_get(c, v, "rate", NULL) || !map_get(c, v, "weight", NULL))
                return fail(c, node_line(v), SOMA_STATUS_INVALID, "poisson: expected rate and weight");
            if ((rc = want_scalar(c, map_get(c, v, "rate", NULL), "rate", &rate))) return rc;
            if ((rc = want_scalar(c, map_get(c, v, "weight", NULL), "weight", &w))) return rc;
            int port;
            if ((rc = get_port(c, map_get(c, v, "port", NULL), to[j], &port))) return rc;
            where(c, v);
            if ((rc = soma_net_add_poisson(c->net, to[j], rate, w, port))) return fail_net(c, rc);
        } else if ((v = map_get(c, n, "steps", NULL))) {
            static const char *const sk[] = {"times", "values", NULL};
            if ((rc = want_mapping(c, v, "steps")) || (rc = check_keys(c, v, "steps", sk))) return rc;
            const soma_model *m = c->net->pops[to[j]].model;
            /* The external input is in the unit of the model's I_e (a rate for poisson, mV for lif_cuba). */
            int ie = soma__model_param_index(m, "I_e");
            const char *unit = m == &soma__model_poisson ? "Hz" : ie >= 0 ? m->params[ie].unit
                                                                 : m->weight_unit ? m->weight_unit : "";
            double *t = NULL, *val = NULL;
            size_t n1 = 0, n2 = 0;
            rc = float_list(c, map_get(c, v, "times", NULL), "times", "ms", &t, &n1);
            if (!rc) rc = float_list(c, map_get(c, v, "values", NULL), "values", unit, &val, &n2);
            if (!rc && n1 != n2)
                rc = fail(c, node_line(v), SOMA_STATUS_INVALID, "steps: %zu times but %zu values; expected as many", n1, n2);
            if (!rc) {
                where(c, v);
                if ((rc = soma_net_add_steps(c->net, to[j], t, val, n1))) rc = fail_net(c, rc);
            }
            free(t);
            free(val);
            if (rc) return rc;
        } else {
            v = map_get(c, n, "spikes", NULL);
            const char *file;
            if ((rc = want_scalar(c, v, "spikes", &file))) return rc;
            if ((rc = read_spike_file(c, v, to[j], file))) return rc;
        }
    }
    return 0;
}


/* The keys a population mapping may hold besides its model's parameters and
 * state variables. */
static const char *const pop_keys_fixed[] = {"model", "size", "shape", "like", "recurrent", "learn", NULL};

static int is_fixed_pop_key(const char *k) {
    for (size_t i = 0; pop_keys_fixed[i]; i++)
        if (strcmp(k, pop_keys_fixed[i]) == 0) return 1;
    return 0;
}

/* Apply the parameter and state entries of a population mapping: each is an
 * expression with units ("20ms", "uniform(-60mV, -50mV)", "0.95"), or the
 * name of an enum-valued parameter's choice ("subtract"). */
static int apply_pop_values(ctx *c, size_t pop, const char *pname, const yaml_node_t *spec) {
    const soma_model *m = c->net->pops[pop].model;
    for (yaml_node_pair_t *p = spec->data.mapping.pairs.start; p < spec->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
        if (is_fixed_pop_key(scalar(k))) continue;
        char what[192];
        snprintf(what, sizeof what, "network.populations.%s.%s", pname, scalar(k));
        if (soma__model_param_index(m, scalar(k)) < 0 && soma__model_state_index(m, scalar(k)) < 0) {
            namelist l;
            l.len = 0;
            l.buf[0] = 0;
            for (size_t j = 0; j < m->n_params; j++) names_add(&l, m->params[j].name);
            for (size_t j = 0; j < m->n_state; j++) names_add(&l, m->state_names[j]);
            return fail(c, node_line(k), SOMA_STATUS_INVALID,
                        "network.populations.%s: unknown parameter or state variable '%s' of model %s; expected one "
                        "of: %s (or model, size, shape, like, recurrent, learn)",
                        pname, scalar(k), m->name, l.len ? l.buf : "(none)");
        }
        const char *s;
        int rc = want_scalar(c, v, what, &s);
        if (rc) return rc;
        where(c, v);
        if ((rc = soma_net_set(c->net, pop, scalar(k), s))) return fail_net(c, rc);
    }
    return 0;
}

/* One population: NAME: {model, size, shape, like, recurrent, learn, <params
 * and initial state values>}. */
static int parse_pop(ctx *c, const yaml_node_t *pops, const yaml_node_pair_t *pair) {
    const yaml_node_t *key = node_at(c, pair->key), *spec = node_at(c, pair->value);
    const char *pname = scalar(key);
    char what[160], sub[192];
    snprintf(what, sizeof what, "network.populations.%s", pname);
    int rc = want_mapping(c, spec, what);
    if (rc) return rc;
    /* like: OTHER copies the entries of a population defined above; the
     * population's own entries come after and win. */
    const yaml_node_t *like = map_get(c, spec, "like", NULL), *base = NULL;
    if (like) {
        const char *ln;
        snprintf(sub, sizeof sub, "%s.like", what);
        if ((rc = want_scalar(c, like, sub, &ln))) return rc;
        for (const yaml_node_pair_t *q = pops->data.mapping.pairs.start; q < pair; q++)
            if (!strcmp(scalar(node_at(c, q->key)), ln)) base = node_at(c, q->value);
        if (!base)
            return fail(c, node_line(like), SOMA_STATUS_NOTFOUND, "%s: no population '%s' defined above", sub, ln);
    }
    yaml_node_t *mn = map_get(c, spec, "model", NULL);
    if (!mn && base) mn = map_get(c, base, "model", NULL);
    yaml_node_t *sn = map_get(c, spec, "size", NULL);
    if (!sn && base) sn = map_get(c, base, "size", NULL);
    yaml_node_t *shn = map_get(c, spec, "shape", NULL);
    if (!shn && base) shn = map_get(c, base, "shape", NULL);
    namelist models;
    models.len = 0;
    models.buf[0] = 0;
    for (size_t i = 0; i < soma_model_count(); i++) names_add(&models, soma_model_name_at(i));
    if (!mn)
        return fail(c, node_line(key), SOMA_STATUS_INVALID, "%s: no 'model' given; expected model: one of %s", what,
                    models.buf);
    snprintf(sub, sizeof sub, "%s.model", what);
    const char *mname;
    if ((rc = get_string(c, mn, sub, &mname))) return rc;
    if (!soma_model_find(mname))
        return fail(c, node_line(mn), SOMA_STATUS_INVALID, "%s: unknown model '%s'; expected one of: %s", sub, mname,
                    models.buf);
    /* shape: [C, H, W] (1 to 3 positive integers); it gives the size when size is absent. */
    size_t dims[3] = {1, 1, 1}, nd = 0, prod = 1;
    if (shn) {
        snprintf(sub, sizeof sub, "%s.shape", what);
        if (shn->type != YAML_SEQUENCE_NODE || shn->data.sequence.items.top - shn->data.sequence.items.start < 1 ||
            shn->data.sequence.items.top - shn->data.sequence.items.start > 3)
            return fail(c, node_line(shn), SOMA_STATUS_INVALID,
                        "%s is %s; expected a list of 1 to 3 positive integers, e.g. [channels, height, width]", sub,
                        node_kind(shn));
        for (yaml_node_item_t *it = shn->data.sequence.items.start; it < shn->data.sequence.items.top; it++) {
            size_t d = 0;
            if ((rc = get_count(c, node_at(c, *it), sub, 1, 1073741824.0, &d))) return rc;
            dims[nd++] = d;
            prod *= d;
            if (prod > (size_t)INT_MAX)
                return fail(c, node_line(shn), SOMA_STATUS_INVALID, "%s: more than %d neurons", sub, INT_MAX);
        }
    }
    size_t size = 0;
    if (!sn && !shn)
        return fail(c, node_line(key), SOMA_STATUS_INVALID,
                    "%s: no 'size' given; expected size: a positive integer (number of neurons), or shape: [C, H, W]",
                    what);
    if (sn) {
        snprintf(sub, sizeof sub, "%s.size", what);
        if ((rc = get_count(c, sn, sub, 1, 1073741824.0, &size))) return rc;
        if (shn && size != prod)
            return fail(c, node_line(sn), SOMA_STATUS_INVALID, "%s: size %zu does not match the shape (%zu neurons)",
                        sub, size, prod);
    } else
        size = prod;
    size_t pop;
    where(c, key);
    if ((rc = soma_net_add_pop(c->net, pname, mname, size, &pop))) return fail_net(c, rc);
    if (shn && soma_net_set_shape(c->net, pop, dims, nd))
        return fail(c, node_line(shn), SOMA_STATUS_INVALID, "%s.shape: %s", what, soma_net_errmsg(c->net));
    if (base && (rc = apply_pop_values(c, pop, pname, base))) return rc;
    if ((rc = apply_pop_values(c, pop, pname, spec))) return rc;
    const soma_model *m = c->net->pops[pop].model;
    for (int pass = 0; pass < 2; pass++) {
        const yaml_node_t *from = pass ? spec : base;
        if (!from) continue;
        yaml_node_t *rn = map_get(c, from, "recurrent", NULL), *ln = map_get(c, from, "learn", NULL);
        if (rn) {
            int on;
            snprintf(sub, sizeof sub, "%s.recurrent", what);
            if ((rc = get_bool(c, rn, sub, &on))) return rc;
            if (soma_net_set_recurrent(c->net, pop, on))
                return fail(c, node_line(rn), SOMA_STATUS_INVALID, "%s: %s; expected a spiking population", sub,
                            soma_net_errmsg(c->net));
        }
        if (ln && (rc = parse_learn(c, pop, pname, m, ln))) return rc;
    }
    return 0;
}

static int find_pop(ctx *c, const yaml_node_t *n, const char *what, size_t *pop) {
    size_t count;
    return pop_list(c, n, what, pop, &count, 1);
}

/* A projection drawn by a connector: {from, to, connect, weight, delay,
 * port}; from and to may be lists (one projection per pair). */
static int parse_sparse_proj(ctx *c, const yaml_node_t *n, const char *what) {
    static const char *const keys[] = {"from", "to", "connect", "weight", "delay", "port", NULL};
    int rc = check_keys(c, n, what, keys);
    if (rc) return rc;
    size_t from[64], to[64], nf, nt;
    char sub[160];
    snprintf(sub, sizeof sub, "%s.from", what);
    if ((rc = pop_list(c, map_get(c, n, "from", NULL), sub, from, &nf, 64))) return rc;
    snprintf(sub, sizeof sub, "%s.to", what);
    if ((rc = pop_list(c, map_get(c, n, "to", NULL), sub, to, &nt, 64))) return rc;
    const yaml_node_t *cn = map_get(c, n, "connect", NULL);
    soma_connector con;
    char path[2048];
    if ((rc = parse_connector(c, cn, &con, path, sizeof path))) return rc;
    const yaml_node_t *w = map_get(c, n, "weight", NULL), *d = map_get(c, n, "delay", NULL);
    const char *ws = "0", *ds = NULL;
    char dtbuf[64]; /* no delay given: one step */
    if (w && (rc = want_scalar(c, w, "weight", &ws))) return rc;
    if (d && (rc = want_scalar(c, d, "delay", &ds))) return rc;
    if (!ds) {
        snprintf(dtbuf, sizeof dtbuf, "%.17gms", c->net->dt);
        ds = dtbuf;
    }
    for (size_t i = 0; i < nf; i++)
        for (size_t j = 0; j < nt; j++) {
            int port;
            if ((rc = get_port(c, map_get(c, n, "port", NULL), to[j], &port))) return rc;
            /* The weight and the delay name their own lines, now and in
             * the build's checks of values drawn per synapse. */
            char ww[96], wd[96];
            snprintf(ww, sizeof ww, "%s:%d", c->path, node_line(w ? w : cn));
            snprintf(wd, sizeof wd, "%s:%d", c->path, node_line(d ? d : cn));
            where(c, cn);
            rc = soma__net_connect_at(c->net, from[i], to[j], &con, ws, ds, port, NULL, ww, wd);
            if (rc) return fail_net(c, rc);
        }
    return 0;
}

/* A dense or conv projection, whose weights the trainer learns:
 * {from, to, kind: dense|conv, bias, kernel, stride, padding, pool,
 * pool_size}. A dense projection of a population onto itself is its
 * recurrent projection (no bias). */
static int parse_proj(ctx *c, const yaml_node_t *n, size_t index) {
    static const char *const keys[] = {"from", "to", "kind", "bias", "kernel", "stride", "padding", "pool",
                                       "pool_size", "connect", "weight", "delay", "port", NULL};
    char what[96], sub[128];
    snprintf(what, sizeof what, "network.projections[%zu]", index);
    int rc = want_mapping(c, n, what);
    if (rc) return rc;
    if (map_get(c, n, "connect", NULL)) {
        yaml_node_t *kk = NULL, *kv = map_get(c, n, "kind", &kk);
        if (kv && !(is_scalar(kv) && !strcmp(scalar(kv), "sparse")))
            return fail(c, node_line(kk), SOMA_STATUS_INVALID,
                        "%s: connect: draws sparse synapses; kind must then be sparse or absent", what);
        return parse_sparse_proj(c, n, what);
    }
    yaml_node_t *from = NULL, *to = NULL, *conv_key = NULL, *bias_key = NULL;
    yaml_node_t *delay_key = NULL, *delay_v = NULL, *port_key = NULL, *port_v = NULL;
    int bias = 1, is_conv = 0, have_kernel = 0, have_psize = 0;
    soma_conv cv = {.kernel = 0, .stride = 1, .padding = 0, .pool = SOMA_POOL_NONE, .pool_size = 2};
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
        const char *kn = scalar(k);
        snprintf(sub, sizeof sub, "%s.%s", what, kn);
        if (strcmp(kn, "from") == 0) from = v;
        else if (strcmp(kn, "to") == 0) to = v;
        else if (strcmp(kn, "bias") == 0) {
            bias_key = k;
            if ((rc = get_bool(c, v, sub, &bias))) return rc;
        } else if (strcmp(kn, "kind") == 0) {
            const char *kind;
            if ((rc = get_string(c, v, sub, &kind))) return rc;
            if (strcmp(kind, "conv") == 0) is_conv = 1;
            else if (strcmp(kind, "sparse") == 0)
                return fail(c, node_line(v), SOMA_STATUS_INVALID, "%s: kind sparse needs connect: {rule: ...}; expected dense, conv, or sparse with a connector", sub);
            else if (strcmp(kind, "dense") != 0)
                return fail(c, node_line(v), SOMA_STATUS_INVALID,
                            "%s: unknown kind '%s'; expected one of: dense, conv, sparse", sub, kind);
        } else if (strcmp(kn, "kernel") == 0) {
            conv_key = k, have_kernel = 1;
            if ((rc = get_size_field(c, v, sub, 1, &cv.kernel))) return rc;
        } else if (strcmp(kn, "stride") == 0) {
            conv_key = k;
            if ((rc = get_size_field(c, v, sub, 1, &cv.stride))) return rc;
        } else if (strcmp(kn, "padding") == 0) {
            conv_key = k;
            if ((rc = get_size_field(c, v, sub, 0, &cv.padding))) return rc;
        } else if (strcmp(kn, "pool_size") == 0) {
            conv_key = k, have_psize = 1;
            if ((rc = get_size_field(c, v, sub, 1, &cv.pool_size))) return rc;
        } else if (strcmp(kn, "pool") == 0) {
            conv_key = k;
            if ((rc = get_enum(c, v, sub, soma_pool_name, soma_pool_find, &cv.pool))) return rc;
        } else if (strcmp(kn, "delay") == 0) {
            delay_key = k, delay_v = v;
        } else if (strcmp(kn, "port") == 0) {
            port_key = k, port_v = v;
        } else if (strcmp(kn, "weight") == 0)
            return fail(c, node_line(k), SOMA_STATUS_INVALID,
                        "%s: '%s' belongs to a sparse projection (one with connect: {rule: ...}); a dense or conv "
                        "projection learns its weights; expected one of: from, to, kind, bias, delay, port, kernel, "
                        "stride, padding, pool, pool_size",
                        what, kn);
        else
            return unknown_key(c, k, what, keys);
    }
    if (!from || !to)
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s: no '%s' given; expected {from: POP, to: POP}", what,
                    from ? "to" : "from");
    size_t fi, ti;
    snprintf(sub, sizeof sub, "%s.from", what);
    if ((rc = find_pop(c, from, sub, &fi))) return rc;
    snprintf(sub, sizeof sub, "%s.to", what);
    if ((rc = find_pop(c, to, sub, &ti))) return rc;
    if (!is_conv && conv_key)
        return fail(c, node_line(conv_key), SOMA_STATUS_INVALID, "%s: '%s' is only valid with kind: conv", what,
                    scalar(conv_key));
    if (is_conv && !have_kernel)
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s: no 'kernel' given; expected kernel: a positive integer",
                    what);
    if (is_conv && have_psize && cv.pool == SOMA_POOL_NONE)
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s: pool_size given without pool; expected pool: avg or sum",
                    what);
    yaml_node_t *timing_key = delay_key ? delay_key : port_key;
    if (timing_key && (is_conv || fi == ti))
        return fail(c, node_line(timing_key), SOMA_STATUS_INVALID,
                    "%s: '%s' is only valid on a dense projection between two populations (a %s has none); expected "
                    "it on a {from, to, kind: dense} entry", what, scalar(timing_key),
                    is_conv ? "conv projection runs in the trainer only and" : "recurrent projection");
    soma__net_where(c->net, NULL); /* the messages below get this file:line */
    if (fi == ti && !is_conv) {
        if (bias_key && bias)
            return fail(c, node_line(bias_key), SOMA_STATUS_INVALID,
                        "%s: a recurrent projection (%s onto itself) has no bias; expected bias: false or none",
                        what, c->net->pops[fi].name);
        if (soma_net_set_recurrent(c->net, fi, 1))
            return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s: %s", what, soma_net_errmsg(c->net));
        return 0;
    }
    if (is_conv ? soma_net_connect_conv(c->net, fi, ti, bias, &cv) : soma_net_connect_dense(c->net, fi, ti, bias))
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s: %s; expected a valid %s projection", what,
                    soma_net_errmsg(c->net), is_conv ? "conv" : "dense");
    /* A delay and a port of its own (the simulator's; the trainer refuses them). */
    size_t pi = c->net->nproj - 1;
    if (delay_v) {
        const char *ds;
        if ((rc = want_scalar(c, delay_v, "delay", &ds))) return rc;
        where(c, delay_v);
        rc = soma_net_proj_set_delay(c->net, pi, ds);
        soma__net_where(c->net, NULL);
        if (rc) return fail_net(c, rc);
    }
    if (port_v) {
        int port;
        if ((rc = get_port(c, port_v, ti, &port))) return rc;
        where(c, port_v);
        rc = soma_net_proj_set_port(c->net, pi, port);
        soma__net_where(c->net, NULL);
        if (rc) return fail_net(c, rc);
    }
    return 0;
}

static int parse_network(ctx *c, const yaml_node_t *key, const yaml_node_t *n) {
    static const char *const keys[] = {"dt", "populations", "projections", "inputs", NULL};
    int rc = want_mapping(c, n, "network");
    if (rc || (rc = check_keys(c, n, "network", keys))) return rc;
    const yaml_node_t *v, *pops = map_get(c, n, "populations", NULL), *projs = map_get(c, n, "projections", NULL);
    if ((v = map_get(c, n, "dt", NULL))) {
        double dt;
        if ((rc = get_quantity(c, v, "network.dt", "ms", &dt))) return rc;
        where(c, v);
        if ((rc = soma_net_set_dt(c->net, dt))) return fail_net(c, rc);
    }
    if (!pops)
        return fail(c, node_line(key), SOMA_STATUS_INVALID,
                    "network: no 'populations' given; expected populations: {NAME: {model: ..., size: ...}, ...}");
    if (is_null(pops) || (pops->type == YAML_MAPPING_NODE && pops->data.mapping.pairs.start == pops->data.mapping.pairs.top))
        return fail(c, node_line(pops), SOMA_STATUS_INVALID,
                    "network.populations is empty; expected at least one population {NAME: {model: ..., size: ...}}");
    if ((rc = want_mapping(c, pops, "network.populations"))) return rc;
    for (yaml_node_pair_t *p = pops->data.mapping.pairs.start; p < pops->data.mapping.pairs.top; p++)
        if ((rc = parse_pop(c, pops, p))) return rc;
    if (projs && !is_null(projs)) {
        if (projs->type != YAML_SEQUENCE_NODE)
            return fail(c, node_line(projs), SOMA_STATUS_INVALID,
                        "network.projections is %s; expected a list of {from: POP, to: POP, kind: dense} or "
                        "{from, to, connect: {rule: ...}, weight, delay}",
                        node_kind(projs));
        size_t i = 0;
        for (yaml_node_item_t *it = projs->data.sequence.items.start; it < projs->data.sequence.items.top; it++, i++)
            if ((rc = parse_proj(c, node_at(c, *it), i))) return rc;
    }
    if ((v = map_get(c, n, "inputs", NULL))) {
        if (v->type != YAML_SEQUENCE_NODE)
            return fail(c, node_line(v), SOMA_STATUS_INVALID, "network.inputs is %s; expected a list", node_kind(v));
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++)
            if ((rc = parse_input(c, node_at(c, *it)))) return rc;
    }
    return 0;
}

/* ----------------------------------------------------------------- data */

static int parse_data(ctx *c, const yaml_node_t *n, soma_data_opts *o) {
    static const char *const keys[] = {"dataset", "dir", "encoding", "steps", "gain", "threshold", "tau",
                                       "delta_off", "readout", "limit_train", "limit_test", "bin_ms", NULL};
    static const char *const datasets[] = {"fashion-mnist", "mnist", "shd", "shd-adding", "nmnist", "csv", "recall", NULL};
    int rc = want_mapping(c, n, "data");
    if (rc) return rc;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
        const char *kn = scalar(k);
        char sub[96];
        snprintf(sub, sizeof sub, "data.%s", kn);
        if (strcmp(kn, "dataset") == 0) {
            const char *s;
            if ((rc = get_string(c, v, sub, &s))) return rc;
            int ok = 0;
            for (size_t i = 0; datasets[i]; i++) ok |= strcmp(s, datasets[i]) == 0;
            if (!ok) {
                namelist l;
                names_from_list(&l, datasets);
                return fail(c, node_line(v), SOMA_STATUS_INVALID, "%s: unknown data set '%s'; expected one of: %s",
                            sub, s, l.buf);
            }
            if ((rc = get_string_buf(c, v, sub, o->dataset, sizeof o->dataset))) return rc;
        } else if (strcmp(kn, "dir") == 0) rc = get_string_buf(c, v, sub, o->dir, sizeof o->dir);
        else if (strcmp(kn, "encoding") == 0) rc = get_enum(c, v, sub, soma_encoding_name, soma_encoding_find, &o->encoding);
        else if (strcmp(kn, "readout") == 0) rc = get_enum(c, v, sub, soma_readout_name, soma_readout_find, &o->readout);
        else if (strcmp(kn, "steps") == 0) rc = get_int_field(c, v, sub, 1, &o->steps);
        else if (strcmp(kn, "gain") == 0) rc = get_float(c, v, sub, 0.0, INFINITY, 0, &o->gain);
        else if (strcmp(kn, "threshold") == 0) rc = get_float(c, v, sub, 0.0, INFINITY, 0, &o->threshold);
        else if (strcmp(kn, "tau") == 0) rc = get_float(c, v, sub, 0.0, INFINITY, 0, &o->tau);
        else if (strcmp(kn, "delta_off") == 0) rc = get_bool(c, v, sub, &o->delta_off);
        else if (strcmp(kn, "limit_train") == 0) rc = get_size_field(c, v, sub, 0, &o->limit_train);
        else if (strcmp(kn, "limit_test") == 0) rc = get_size_field(c, v, sub, 0, &o->limit_test);
        else if (strcmp(kn, "bin_ms") == 0) rc = get_float(c, v, sub, 0.0, INFINITY, 0, &o->bin_ms);
        else rc = unknown_key(c, k, "data", keys);
        if (rc) return rc;
    }
    return 0;
}

/* ---------------------------------------------------------------- train */

/* The head of a block written NAME or {name: NAME, key: value ...}
 * (optimizer, schedule, surrogate): a plain name is read into *out (1 is
 * returned: nothing more to read); a mapping is checked (0: the caller
 * walks its keys); anything else is refused naming both forms (`more` shows
 * the mapping's keys). Negative on error. */
static int named_block(ctx *c, const yaml_node_t *n, const char *what, const char *(*name)(int),
                       int (*find)(const char *), int *out, const char *more) {
    if (is_scalar(n) && !is_null(n)) {
        int rc = get_enum(c, n, what, name, find, out);
        return rc ? rc : 1;
    }
    if (!n || n->type != YAML_MAPPING_NODE) {
        namelist l;
        names_from_enum(&l, name, find);
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s is %s; expected a name (%s) or a mapping {name: ..., %s}",
                    what, node_kind(n), l.buf, more);
    }
    return want_mapping(c, n, what);
}

/* optimizer: NAME | {name, lr, momentum, beta1, beta2, eps, weight_decay} */
static int parse_optimizer(ctx *c, const yaml_node_t *n, soma_train_opts *o, const yaml_node_t **lr_at) {
    static const char *const keys[] = {"name", "lr", "momentum", "beta1", "beta2", "eps", "weight_decay", NULL};
    const char *what = "train.optimizer";
    int rc = named_block(c, n, what, soma_optimizer_name, soma_optimizer_find, &o->optimizer, "lr: ...");
    if (rc) return rc > 0 ? 0 : rc;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
        const char *kn = scalar(k);
        char sub[96];
        snprintf(sub, sizeof sub, "%s.%s", what, kn);
        if (strcmp(kn, "name") == 0) rc = get_enum(c, v, sub, soma_optimizer_name, soma_optimizer_find, &o->optimizer);
        else if (strcmp(kn, "lr") == 0) {
            if (*lr_at)
                return fail(c, node_line(k), SOMA_STATUS_INVALID,
                            "%s: learning rate given twice (also on line %d); expected lr in one place", sub,
                            node_line(*lr_at));
            *lr_at = k;
            rc = get_float(c, v, sub, 0.0, INFINITY, 1, &o->lr);
        } else if (strcmp(kn, "momentum") == 0) rc = get_float(c, v, sub, 0.0, 1.0, 0, &o->momentum);
        else if (strcmp(kn, "beta1") == 0) rc = get_float(c, v, sub, 0.0, 1.0, 0, &o->beta1);
        else if (strcmp(kn, "beta2") == 0) rc = get_float(c, v, sub, 0.0, 1.0, 0, &o->beta2);
        else if (strcmp(kn, "eps") == 0) rc = get_float(c, v, sub, 0.0, INFINITY, 1, &o->eps);
        else if (strcmp(kn, "weight_decay") == 0) rc = get_float(c, v, sub, 0.0, INFINITY, 0, &o->weight_decay);
        else rc = unknown_key(c, k, what, keys);
        if (rc) return rc;
    }
    return 0;
}

/* schedule: NAME | {name, step_size, gamma, lr_min} */
static int parse_schedule(ctx *c, const yaml_node_t *n, soma_train_opts *o) {
    static const char *const keys[] = {"name", "step_size", "gamma", "lr_min", NULL};
    const char *what = "train.schedule";
    int rc = named_block(c, n, what, soma_schedule_name, soma_schedule_find, &o->schedule, "step_size: ..., gamma: ...");
    if (rc) return rc > 0 ? 0 : rc;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
        const char *kn = scalar(k);
        char sub[96];
        snprintf(sub, sizeof sub, "%s.%s", what, kn);
        if (strcmp(kn, "name") == 0) rc = get_enum(c, v, sub, soma_schedule_name, soma_schedule_find, &o->schedule);
        else if (strcmp(kn, "step_size") == 0) rc = get_int_field(c, v, sub, 1, &o->step_size);
        else if (strcmp(kn, "gamma") == 0) rc = get_float(c, v, sub, 0.0, INFINITY, 1, &o->gamma);
        else if (strcmp(kn, "lr_min") == 0) rc = get_float(c, v, sub, 0.0, INFINITY, 0, &o->lr_min);
        else rc = unknown_key(c, k, what, keys);
        if (rc) return rc;
    }
    return 0;
}

/* surrogate: NAME | {name, slope|alpha|width|param: value} */
static int parse_surrogate(ctx *c, const yaml_node_t *n, soma_train_opts *o) {
    static const char *const keys[] = {"name", "slope", "alpha", "width", "param", NULL};
    const char *what = "train.surrogate";
    /* A surrogate named without a parameter gets its own default (0 = default). */
    o->surrogate_param = 0.0f;
    int rc = named_block(c, n, what, soma_surrogate_name, soma_surrogate_find, &o->surrogate, "slope: ...");
    if (rc) return rc > 0 ? 0 : rc;
    const yaml_node_t *param_at = NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
        const char *kn = scalar(k);
        char sub[96];
        snprintf(sub, sizeof sub, "%s.%s", what, kn);
        if (strcmp(kn, "name") == 0) {
            rc = get_enum(c, v, sub, soma_surrogate_name, soma_surrogate_find, &o->surrogate);
        } else if (strcmp(kn, "slope") == 0 || strcmp(kn, "alpha") == 0 || strcmp(kn, "width") == 0 ||
                   strcmp(kn, "param") == 0) {
            if (param_at)
                return fail(c, node_line(k), SOMA_STATUS_INVALID,
                            "%s: the surrogate's parameter is given twice (also '%s' on line %d); expected one of slope, alpha, width, param",
                            what, scalar(param_at), node_line(param_at));
            param_at = k;
            rc = get_float(c, v, sub, 0.0, INFINITY, 1, &o->surrogate_param);
        } else
            rc = unknown_key(c, k, what, keys);
        if (rc) return rc;
    }
    return 0;
}

static int parse_train(ctx *c, const yaml_node_t *n, soma_train_opts *o) {
    static const char *const keys[] = {"epochs", "batch", "loss", "optimizer", "lr", "clip", "schedule",
                                       "rate_penalty", "surrogate", "correct_rate", "incorrect_rate", "seed",
                                       "threads", "max_batches", NULL};
    int rc = want_mapping(c, n, "train");
    if (rc) return rc;
    const yaml_node_t *lr_at = NULL;
    /* lr at the top level is read first so a second one in optimizer is caught
     * in either order. */
    yaml_node_t *lk = NULL, *lv = map_get(c, n, "lr", &lk);
    if (lv) {
        if ((rc = get_float(c, lv, "train.lr", 0.0, INFINITY, 1, &o->lr))) return rc;
        lr_at = lk;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
        const char *kn = scalar(k);
        char sub[96];
        snprintf(sub, sizeof sub, "train.%s", kn);
        long long ll;
        if (strcmp(kn, "lr") == 0) rc = 0;
        else if (strcmp(kn, "epochs") == 0) rc = get_int_field(c, v, sub, 0, &o->epochs);
        else if (strcmp(kn, "batch") == 0) rc = get_size_field(c, v, sub, 1, &o->batch);
        else if (strcmp(kn, "loss") == 0) rc = get_enum(c, v, sub, soma_loss_name, soma_loss_find, &o->loss);
        else if (strcmp(kn, "optimizer") == 0) rc = parse_optimizer(c, v, o, &lr_at);
        else if (strcmp(kn, "schedule") == 0) rc = parse_schedule(c, v, o);
        else if (strcmp(kn, "surrogate") == 0) rc = parse_surrogate(c, v, o);
        else if (strcmp(kn, "clip") == 0) rc = get_float(c, v, sub, 0.0, INFINITY, 0, &o->clip_norm);
        else if (strcmp(kn, "rate_penalty") == 0) rc = get_float(c, v, sub, 0.0, INFINITY, 0, &o->rate_penalty);
        else if (strcmp(kn, "correct_rate") == 0) rc = get_float(c, v, sub, 0.0, 1.0, 0, &o->correct_rate);
        else if (strcmp(kn, "incorrect_rate") == 0) rc = get_float(c, v, sub, 0.0, 1.0, 0, &o->incorrect_rate);
        else if (strcmp(kn, "threads") == 0) rc = get_int_field(c, v, sub, 0, &o->threads);
        else if (strcmp(kn, "max_batches") == 0) {
            if (!(rc = get_int(c, v, sub, 0, LONG_MAX, &ll))) o->max_batches = (long)ll;
        } else if (strcmp(kn, "seed") == 0) {
            if (!(rc = get_int(c, v, sub, 0, LLONG_MAX, &ll))) o->seed = (uint64_t)ll;
        } else
            rc = unknown_key(c, k, "train", keys);
        if (rc) return rc;
    }
    return 0;
}

/* record.state: which neurons' state variables to sample. */
static int parse_state(ctx *c, const yaml_node_t *n, soma_sim_file_opts *o) {
    static const char *const keys[] = {"pop", "var", "neurons", "every", NULL};
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "record.state is %s; expected a list of {pop, var, neurons, every}", node_kind(n));
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        const yaml_node_t *m = node_at(c, *it);
        int rc = want_mapping(c, m, "record.state entry");
        if (rc || (rc = check_keys(c, m, "record.state entry", keys))) return rc;
        if (o->n_state == sizeof o->state / sizeof o->state[0])
            return fail(c, node_line(m), SOMA_STATUS_INVALID, "record.state: at most %zu entries", sizeof o->state / sizeof o->state[0]);
        struct soma_sim_state_spec *sp = &o->state[o->n_state];
        memset(sp, 0, sizeof *sp);
        size_t pop;
        const char *pn, *var;
        if (!map_get(c, m, "pop", NULL) || !map_get(c, m, "var", NULL))
            return fail(c, node_line(m), SOMA_STATUS_INVALID, "record.state entry: expected pop and var");
        if ((rc = want_scalar(c, map_get(c, m, "pop", NULL), "pop", &pn))) return rc;
        if (soma_net_find_pop(c->net, pn, &pop))
            return fail(c, node_line(map_get(c, m, "pop", NULL)), SOMA_STATUS_NOTFOUND, "record.state: no population '%s'", pn);
        if ((rc = want_scalar(c, map_get(c, m, "var", NULL), "var", &var))) return rc;
        const soma_model *mo = c->net->pops[pop].model;
        if (soma__model_state_index(mo, var) < 0) {
            char names[200];
            soma__model_state_list(mo, names, sizeof names);
            return fail(c, node_line(map_get(c, m, "var", NULL)), SOMA_STATUS_NOTFOUND,
                        "record.state: model %s has no state variable '%s'; expected one of: %s", mo->name, var, names);
        }
        snprintf(sp->pop, sizeof sp->pop, "%s", pn);
        snprintf(sp->var, sizeof sp->var, "%s", var);
        size_t N = c->net->pops[pop].size;
        const yaml_node_t *nn = map_get(c, m, "neurons", NULL);
        if (!nn) {
            sp->n = N < 4 ? N : 4;
            for (size_t k = 0; k < sp->n; k++) sp->idx[k] = k;
        } else if (nn->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *q = nn->data.sequence.items.start; q < nn->data.sequence.items.top; q++) {
                if (sp->n == 64) return fail(c, node_line(nn), SOMA_STATUS_INVALID, "record.state: at most 64 neurons per entry");
                if ((rc = get_count(c, node_at(c, *q), "neuron", 0, (double)N - 1, &sp->idx[sp->n]))) return rc;
                sp->n++;
            }
        } else {
            size_t k = 0;
            if ((rc = get_count(c, nn, "neurons", 1, 64, &k))) return rc;
            sp->n = k < N ? k : N;
            for (size_t j = 0; j < sp->n; j++) sp->idx[j] = j;
        }
        sp->every_ms = c->net->dt;
        const yaml_node_t *ev = map_get(c, m, "every", NULL);
        if (ev) {
            if ((rc = get_quantity(c, ev, "every", "ms", &sp->every_ms))) return rc;
            if (!(sp->every_ms >= c->net->dt * 0.999))
                return fail(c, node_line(ev), SOMA_STATUS_INVALID, "record.state every = %g ms; expected at least dt", sp->every_ms);
        }
        o->n_state++;
    }
    return 0;
}

static int parse_simulate(ctx *c, const yaml_node_t *n, soma_sim_file_opts *o) {
    static const char *const keys[] = {"time", "warmup", "seed", "threads", "record", "reference_rates", NULL};
    int rc = want_mapping(c, n, "simulate");
    if (rc) return rc;
    if ((rc = check_keys(c, n, "simulate", keys))) return rc;
    const yaml_node_t *v;
    if ((v = map_get(c, n, "time", NULL)) && (rc = get_quantity(c, v, "simulate.time", "ms", &o->time_ms))) return rc;
    if (o->time_ms < 0) return fail(c, node_line(v), SOMA_STATUS_INVALID, "simulate.time: expected >= 0");
    if ((v = map_get(c, n, "warmup", NULL)) && (rc = get_quantity(c, v, "simulate.warmup", "ms", &o->warmup_ms))) return rc;
    if (o->warmup_ms < 0) return fail(c, node_line(v), SOMA_STATUS_INVALID, "simulate.warmup: expected >= 0");
    size_t x = 0;
    if ((v = map_get(c, n, "seed", NULL))) {
        if ((rc = get_count(c, v, "simulate.seed", 0, 9007199254740992.0, &x))) return rc;
        o->seed = x;
    }
    if ((v = map_get(c, n, "threads", NULL))) {
        if ((rc = get_count(c, v, "simulate.threads", 0, 256, &x))) return rc;
        o->threads = (int)x;
    }
    if ((v = map_get(c, n, "reference_rates", NULL))) {
        if ((rc = want_mapping(c, v, "simulate.reference_rates"))) return rc;
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
            const yaml_node_t *k = node_at(c, p->key), *r = node_at(c, p->value);
            size_t pop;
            if (soma_net_find_pop(c->net, scalar(k), &pop))
                return fail(c, node_line(k), SOMA_STATUS_NOTFOUND, "reference_rates: no population '%s'", scalar(k));
            if (o->n_ref == sizeof o->ref_hz / sizeof o->ref_hz[0])
                return fail(c, node_line(k), SOMA_STATUS_INVALID, "reference_rates: at most %zu populations",
                            sizeof o->ref_hz / sizeof o->ref_hz[0]);
            double hz;
            if ((rc = get_quantity(c, r, "reference rate", "Hz", &hz))) return rc;
            snprintf(o->ref_pop[o->n_ref], sizeof o->ref_pop[0], "%s", scalar(k));
            o->ref_hz[o->n_ref++] = hz;
        }
    }
    if ((v = map_get(c, n, "record", NULL))) {
        static const char *const rk[] = {"spikes", "state", "rate_bin", NULL};
        if ((rc = want_mapping(c, v, "simulate.record")) || (rc = check_keys(c, v, "simulate.record", rk))) return rc;
        const yaml_node_t *s = map_get(c, v, "spikes", NULL);
        if (s && s->type == YAML_SEQUENCE_NODE) {
            /* A list of populations: record only those. */
            o->record_spikes = 1;
            for (yaml_node_item_t *it = s->data.sequence.items.start; it < s->data.sequence.items.top; it++) {
                const yaml_node_t *pn = node_at(c, *it);
                const char *name;
                size_t pop;
                if ((rc = want_scalar(c, pn, "record.spikes", &name))) return rc;
                if (soma_net_find_pop(c->net, name, &pop))
                    return fail(c, node_line(pn), SOMA_STATUS_NOTFOUND, "record.spikes: no population '%s'", name);
                if (o->n_spike_pops == sizeof o->spike_pops / sizeof o->spike_pops[0])
                    return fail(c, node_line(pn), SOMA_STATUS_INVALID, "record.spikes: at most %zu populations",
                                sizeof o->spike_pops / sizeof o->spike_pops[0]);
                snprintf(o->spike_pops[o->n_spike_pops++], sizeof o->spike_pops[0], "%s", name);
            }
        } else if (s) {
            const char *t;
            if ((rc = want_scalar(c, s, "record.spikes", &t))) return rc;
            if (!strcmp(t, "all"))
                o->record_spikes = 1;
            else if (!strcmp(t, "none"))
                o->record_spikes = 0;
            else
                return fail(c, node_line(s), SOMA_STATUS_INVALID, "record.spikes: '%s'; expected all, none or a list of populations", t);
        }
        const yaml_node_t *rb = map_get(c, v, "rate_bin", NULL);
        if (rb) {
            if ((rc = get_quantity(c, rb, "record.rate_bin", "ms", &o->rate_bin_ms))) return rc;
            if (!(o->rate_bin_ms >= c->net->dt))
                return fail(c, node_line(rb), SOMA_STATUS_INVALID, "record.rate_bin = %g ms; expected at least dt (%g ms)",
                            o->rate_bin_ms, c->net->dt);
        }
        const yaml_node_t *sl = map_get(c, v, "state", NULL);
        if (sl && (rc = parse_state(c, sl, o))) return rc;
    }
    return 0;
}

static int add_ov(ctx *c, const char *name, size_t len, const char *text, const char *where) {
    if (c->nov == sizeof c->ov / sizeof c->ov[0] || len >= sizeof c->ov[0].name) {
        if (c->err) snprintf(c->err, c->errlen, "%s: too many or too long parameter overrides", c->path);
        return SOMA_STATUS_INVALID;
    }
    struct ov *o = &c->ov[c->nov++];
    memcpy(o->name, name, len);
    o->name[len] = 0;
    o->text = text;
    o->used = 0;
    snprintf(o->where, sizeof o->where, "%s", where);
    return 0;
}

/* Collect overrides "name=value": a named set ("set=NAME", whose entries
 * come first) or one param. */
static int collect_overrides(ctx *c, const yaml_node_t *root, const char *const *ov, size_t nov) {
    const yaml_node_t *sets = map_get(c, root, "sets", NULL);
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < nov; i++) {
            const char *eq = strchr(ov[i], '=');
            if (!eq || eq == ov[i] || !eq[1]) {
                if (c->err) snprintf(c->err, c->errlen, "parameter override '%s': expected NAME=VALUE", ov[i]);
                return SOMA_STATUS_INVALID;
            }
            int is_set = (size_t)(eq - ov[i]) == 3 && !strncmp(ov[i], "set", 3);
            if (is_set != (pass == 0)) continue;
            if (!is_set) {
                int rc = add_ov(c, ov[i], (size_t)(eq - ov[i]), eq + 1, "command line");
                if (rc) return rc;
                continue;
            }
            const yaml_node_t *s = NULL;
            if (sets && sets->type == YAML_MAPPING_NODE) s = map_get(c, sets, eq + 1, NULL);
            if (!s) {
                char names[300] = "";
                if (sets && sets->type == YAML_MAPPING_NODE)
                    for (yaml_node_pair_t *p = sets->data.mapping.pairs.start; p < sets->data.mapping.pairs.top; p++)
                        soma__names_add(names, sizeof names, scalar(node_at(c, p->key)));
                if (c->err)
                    snprintf(c->err, c->errlen, "%s: no parameter set '%s'; expected one of: %s", c->path, eq + 1,
                             names[0] ? names : "(the file has no sets)");
                return SOMA_STATUS_NOTFOUND;
            }
            int rc = want_mapping(c, s, "set");
            if (rc) return rc;
            for (yaml_node_pair_t *p = s->data.mapping.pairs.start; p < s->data.mapping.pairs.top; p++) {
                const yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
                const char *t;
                if ((rc = want_scalar(c, v, scalar(k), &t))) return rc;
                char w[96];
                snprintf(w, sizeof w, "%s:%d", c->path, node_line(v));
                if ((rc = add_ov(c, scalar(k), strlen(scalar(k)), t, w))) return rc;
            }
        }
    return 0;
}

/* Every override must name a param of the file. */
static int check_overrides(ctx *c) {
    for (size_t i = 0; i < c->nov; i++)
        if (!c->ov[i].used) {
            if (c->err)
                snprintf(c->err, c->errlen, "%s: parameter override '%s' (%s): the file's params have no '%s'", c->path,
                         c->ov[i].name, c->ov[i].where, c->ov[i].name);
            return SOMA_STATUS_NOTFOUND;
        }
    return 0;
}

/* ----------------------------------------------------------------- file */

static int parse_root(ctx *c, const char *const *ov, size_t nov, soma_data_opts *data, soma_train_opts *train,
                      soma_sim_file_opts *sim) {
    static const char *const keys[] = {"params", "sets", "network", "data", "train", "simulate", NULL};
    yaml_node_t *root = yaml_document_get_root_node(c->doc);
    if (!root || is_null(root))
        return fail(c, 1, SOMA_STATUS_INVALID, "the file is empty; expected a 'network' section");
    int rc = want_mapping(c, root, "the top level");
    if (rc || (rc = check_keys(c, root, "top level", keys))) return rc;
    const yaml_node_t *v;
    if ((v = map_get(c, root, "sets", NULL)) && (rc = want_mapping(c, v, "sets"))) return rc;
    if ((rc = collect_overrides(c, root, ov, nov))) return rc;
    if ((v = map_get(c, root, "params", NULL)) && (rc = parse_params(c, v, "params"))) return rc;
    if ((rc = check_overrides(c))) return rc;
    yaml_node_t *nk = NULL, *net = map_get(c, root, "network", &nk);
    if (!net)
        return fail(c, node_line(root), SOMA_STATUS_INVALID,
                    "no 'network' section; expected network: {populations: ..., projections: ...}");
    if ((rc = parse_network(c, nk, net))) return rc;
    yaml_node_t *dn = map_get(c, root, "data", NULL);
    if (dn && (rc = parse_data(c, dn, data))) return rc;
    yaml_node_t *tn = map_get(c, root, "train", NULL);
    if (tn && (rc = parse_train(c, tn, train))) return rc;
    yaml_node_t *sn = map_get(c, root, "simulate", NULL);
    if (sn && (rc = parse_simulate(c, sn, sim))) return rc;
    return 0;
}

/* Report a libyaml failure (syntax or reader error) as FORMAT. */
static int yaml_fail(ctx *c, const yaml_parser_t *p) {
    const yaml_mark_t *m = p->error == YAML_READER_ERROR ? &p->mark : &p->problem_mark;
    if (p->error == YAML_MEMORY_ERROR) return fail(c, (int)m->line + 1, SOMA_STATUS_NOMEM, "out of memory; expected less");
    if (p->context)
        return fail(c, (int)m->line + 1, SOMA_STATUS_FORMAT, "YAML syntax error: %s (%s that starts on line %d); expected valid YAML",
                    p->problem ? p->problem : "unknown problem", p->context, (int)p->context_mark.line + 1);
    return fail(c, (int)m->line + 1, SOMA_STATUS_FORMAT, "YAML syntax error: %s; expected valid YAML",
                p->problem ? p->problem : "unknown problem");
}

void soma_sim_file_opts_default(soma_sim_file_opts *o) {
    memset(o, 0, sizeof *o);
    o->time_ms = 1000;
    o->record_spikes = 1;
    o->seed = 1;
    o->rate_bin_ms = 1.0;
}

int soma_net_load_yaml(const char *path, const char *const *ov, size_t nov, soma_net **net, soma_data_opts *data,
                       soma_train_opts *train, soma_sim_file_opts *sim, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (net) *net = NULL;
    ctx c;
    memset(&c, 0, sizeof c);
    c.path = path ? path : "(null)";
    c.err = err;
    c.errlen = errlen;
    if (!path || !net) return fail(&c, 0, SOMA_STATUS_INVALID, "no path or net given; expected both");
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(c.dir, sizeof c.dir, "%.*s", (int)(slash - path), path);

    soma_data_opts dopt;
    soma_train_opts topt;
    soma_sim_file_opts sopt;
    soma_data_opts_default(&dopt);
    soma_train_opts_default(&topt);
    soma_sim_file_opts_default(&sopt);

    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err && errlen) snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return SOMA_STATUS_IO;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        return fail(&c, 0, SOMA_STATUS_NOMEM, "cannot start the YAML parser; expected memory");
    }
    yaml_parser_set_input_file(&parser, f);
    int rc;
    if (!yaml_parser_load(&parser, &doc)) {
        rc = yaml_fail(&c, &parser); /* libyaml frees a half-built document itself */
    } else {
        /* A second document in the file would be silently ignored: refuse it. */
        yaml_document_t extra;
        if (!yaml_parser_load(&parser, &extra)) {
            rc = yaml_fail(&c, &parser);
        } else {
            yaml_node_t *r = yaml_document_get_root_node(&extra);
            rc = r ? fail(&c, node_line(r), SOMA_STATUS_FORMAT,
                          "a second YAML document starts here; expected one document per file")
                   : 0;
            yaml_document_delete(&extra);
        }
        if (!rc) {
            c.doc = &doc;
            rc = soma_net_create(&c.net);
            if (rc) rc = fail(&c, 0, rc, "cannot create a net: %s; expected memory", soma_strerror(rc));
            else rc = parse_root(&c, ov, nov, &dopt, &topt, &sopt);
        }
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    fclose(f);
    if (rc) {
        soma_net_free(c.net);
        return rc;
    }
    soma__net_where(c.net, NULL);
    *net = c.net;
    if (data) *data = dopt;
    if (train) *train = topt;
    if (sim) *sim = sopt;
    return 0;
}

int soma_experiment_load(const char *path, soma_net **net, soma_data_opts *data, soma_train_opts *train,
                         char *err, size_t errlen) {
    return soma_net_load_yaml(path, NULL, 0, net, data, train, NULL, err, errlen);
}
