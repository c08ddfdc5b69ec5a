/* experiment.c — reads an experiment file (YAML) into a net plus data and
 * training options, through the public API only.
 *
 * The file has three sections:
 *   network: {populations: {NAME: {model, size, shape, <model params>, recurrent, learn}, ...},
 *             projections: [{from, to, kind: dense|conv, bias, kernel, stride, padding, pool, pool_size}, ...]}
 *   data:    {dataset, dir, encoding, steps, gain, threshold, tau, delta_off,
 *             readout, limit_train, limit_test, bin_ms}
 *   train:   {epochs, batch, loss, optimizer: NAME | {name, lr, momentum, beta1,
 *             beta2, eps, weight_decay}, lr, clip, schedule: NAME | {name,
 *             step_size, gamma, lr_min}, rate_penalty, surrogate: NAME | {name,
 *             slope|alpha|width|param}, correct_rate, incorrect_rate, seed,
 *             threads, max_batches}
 *
 * libyaml's document loader gives a node tree with the start mark of every
 * node, so each error can name the line of the value (or key) at fault. Model
 * parameters are never named here: they come from the model's descriptors,
 * so a new model needs no change in this file. Every error is written as
 * "FILE:LINE: what was wrong; expected ..." into the caller's buffer.
 */
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
#include "models/model.h"

/* Everything the walk needs to read nodes and report errors. */
typedef struct ctx {
    const char *path;
    char *err;
    size_t errlen;
    yaml_document_t *doc;
    soma_net *net;
} ctx;

/* ------------------------------------------------------------ messages */

static int node_line(const yaml_node_t *n) { return n ? (int)n->start_mark.line + 1 : 0; }

/* Write "PATH:LINE: <fmt>" into the error buffer and return status. */
static int fail(ctx *c, int line, int status, const char *fmt, ...) {
    if (!c->err || c->errlen == 0) return status;
    int k = snprintf(c->err, c->errlen, "%s:%d: ", c->path, line);
    if (k < 0) k = 0;
    if ((size_t)k < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + k, c->errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
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

/* One population: NAME: {model, size, <params>, recurrent, learn}. */
static int parse_pop(ctx *c, const yaml_node_t *key, const yaml_node_t *spec) {
    const char *pname = scalar(key);
    char what[160];
    snprintf(what, sizeof what, "network.populations.%s", pname);
    int rc = want_mapping(c, spec, what);
    if (rc) return rc;

    /* model and size first: every other key depends on the model. */
    yaml_node_t *mn = map_get(c, spec, "model", NULL);
    yaml_node_t *sn = map_get(c, spec, "size", NULL);
    namelist models;
    models.len = 0;
    models.buf[0] = 0;
    /* Only the models the trainer runs (simulator models have no forward step). */
    for (size_t i = 0; i < soma_model_count(); i++)
        if (soma__model_trainable(soma_model_find(soma_model_name_at(i)))) names_add(&models, soma_model_name_at(i));
    if (!mn)
        return fail(c, node_line(key), SOMA_STATUS_INVALID, "%s: no 'model' given; expected model: one of %s",
                    what, models.buf);
    char sub[192];
    snprintf(sub, sizeof sub, "%s.model", what);
    const char *mname;
    if ((rc = get_string(c, mn, sub, &mname))) return rc;
    const soma_model *m = soma_model_find(mname);
    if (!m)
        return fail(c, node_line(mn), SOMA_STATUS_INVALID, "%s: unknown model '%s'; expected one of: %s", sub,
                    mname, models.buf);
    if (!soma__model_trainable(m))
        return fail(c, node_line(mn), SOMA_STATUS_INVALID,
                    "%s: '%s' is a simulator model; the trainer needs one of: %s", sub, mname,
                    models.buf);
    /* shape: [C, H, W] (1 to 3 positive integers); it gives the size when size is absent. */
    yaml_node_t *shn = map_get(c, spec, "shape", NULL);
    size_t dims[3] = {1, 1, 1}, nd = 0, prod = 1;
    if (shn) {
        snprintf(sub, sizeof sub, "%s.shape", what);
        if (shn->type != YAML_SEQUENCE_NODE || shn->data.sequence.items.top - shn->data.sequence.items.start < 1 ||
            shn->data.sequence.items.top - shn->data.sequence.items.start > 3)
            return fail(c, node_line(shn), SOMA_STATUS_INVALID,
                        "%s is %s; expected a list of 1 to 3 positive integers, e.g. [channels, height, width]", sub,
                        node_kind(shn));
        for (yaml_node_item_t *it = shn->data.sequence.items.start; it < shn->data.sequence.items.top; it++) {
            long long d;
            if ((rc = get_int(c, node_at(c, *it), sub, 1, INT_MAX, &d))) return rc;
            dims[nd++] = (size_t)d;
            prod *= (size_t)d;
            if (prod > (size_t)INT_MAX)
                return fail(c, node_line(shn), SOMA_STATUS_INVALID, "%s: more than %d neurons", sub, INT_MAX);
        }
    }
    long long size;
    if (!sn && !shn)
        return fail(c, node_line(key), SOMA_STATUS_INVALID,
                    "%s: no 'size' given; expected size: a positive integer (number of neurons), or shape: [C, H, W]",
                    what);
    if (sn) {
        snprintf(sub, sizeof sub, "%s.size", what);
        if ((rc = get_int(c, sn, sub, 1, INT_MAX, &size))) return rc;
        if (shn && (size_t)size != prod)
            return fail(c, node_line(sn), SOMA_STATUS_INVALID, "%s: size %lld does not match the shape (%zu neurons)",
                        sub, size, prod);
    } else
        size = (long long)prod;

    size_t pop;
    if (soma_net_add_pop(c->net, pname, mname, (size_t)size, &pop))
        return fail(c, node_line(key), SOMA_STATUS_INVALID, "%s: %s; expected a unique name, a model and a size",
                    what, soma_net_errmsg(c->net));
    if (shn && soma_net_set_shape(c->net, pop, dims, nd))
        return fail(c, node_line(shn), SOMA_STATUS_INVALID, "%s.shape: %s", what, soma_net_errmsg(c->net));

    for (yaml_node_pair_t *p = spec->data.mapping.pairs.start; p < spec->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
        const char *kn = scalar(k);
        snprintf(sub, sizeof sub, "%s.%s", what, kn);
        if (strcmp(kn, "model") == 0 || strcmp(kn, "size") == 0 || strcmp(kn, "shape") == 0) continue;
        if (strcmp(kn, "recurrent") == 0) {
            int on;
            if ((rc = get_bool(c, v, sub, &on))) return rc;
            if (soma_net_set_recurrent(c->net, pop, on))
                return fail(c, node_line(v), SOMA_STATUS_INVALID, "%s: %s; expected a spiking population", sub,
                            soma_net_errmsg(c->net));
            continue;
        }
        if (strcmp(kn, "learn") == 0) continue; /* after all values are set */
        const soma_param_desc *d = model_param(m, kn);
        if (!d) {
            namelist l;
            size_t np;
            soma_model_params(m, &np);
            if (np == 0)
                return fail(c, node_line(k), SOMA_STATUS_INVALID,
                            "%s: unknown key '%s': model %s has no parameters; expected only model, size, shape, recurrent, learn",
                            what, kn, mname);
            model_param_names(&l, m, 0);
            return fail(c, node_line(k), SOMA_STATUS_INVALID,
                        "%s: unknown parameter '%s' of model %s; expected one of: %s (or model, size, shape, recurrent, learn)",
                        what, kn, mname, l.buf);
        }
        float value;
        if (d->choices) {
            namelist l;
            names_from_list(&l, d->choices);
            if (!is_scalar(v) || is_null(v))
                return fail(c, node_line(v), SOMA_STATUS_INVALID, "%s is %s; expected one of: %s", sub,
                            node_kind(v), l.buf);
            int idx = -1;
            for (int i = 0; d->choices[i]; i++)
                if (strcmp(d->choices[i], scalar(v)) == 0) idx = i;
            if (idx < 0)
                return fail(c, node_line(v), SOMA_STATUS_INVALID, "%s: unknown choice '%s'; expected one of: %s",
                            sub, scalar(v), l.buf);
            value = (float)idx;
        } else if ((rc = get_float(c, v, sub, d->lo, d->hi, 0, &value))) {
            return rc;
        }
        if (soma_net_set_param(c->net, pop, kn, value))
            return fail(c, node_line(v), SOMA_STATUS_INVALID, "%s: %s; expected a value in [%g, %g]", sub,
                        soma_net_errmsg(c->net), d->lo, d->hi);
    }
    yaml_node_t *ln = map_get(c, spec, "learn", NULL);
    if (ln && (rc = parse_learn(c, pop, pname, m, ln))) return rc;
    return 0;
}

/* Population named by a projection's from/to, with the valid names as hint. */
static int find_pop(ctx *c, const yaml_node_t *n, const char *what, size_t *pop) {
    const char *name;
    int rc = get_string(c, n, what, &name);
    if (rc) return rc;
    if (soma_net_find_pop(c->net, name, pop) == 0) return 0;
    namelist l;
    l.len = 0;
    l.buf[0] = 0;
    soma_pop_info info;
    for (size_t i = 0; i < soma_net_pop_count(c->net); i++)
        if (soma_net_pop_info(c->net, i, &info) == 0) names_add(&l, info.name);
    return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s: unknown population '%s'; expected one of: %s", what,
                name, l.buf);
}

static int parse_proj(ctx *c, const yaml_node_t *n, size_t index) {
    static const char *const keys[] = {"from", "to", "kind", "bias", "kernel", "stride", "padding", "pool", "pool_size", NULL};
    char what[96], sub[128];
    snprintf(what, sizeof what, "network.projections[%zu]", index);
    int rc = want_mapping(c, n, what);
    if (rc) return rc;
    yaml_node_t *from = NULL, *to = NULL, *conv_key = NULL;
    int bias = 1, is_conv = 0, have_kernel = 0, have_psize = 0;
    soma_conv cv = {.kernel = 0, .stride = 1, .padding = 0, .pool = SOMA_POOL_NONE, .pool_size = 2};
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key), *v = node_at(c, p->value);
        const char *kn = scalar(k);
        snprintf(sub, sizeof sub, "%s.%s", what, kn);
        if (strcmp(kn, "from") == 0) from = v;
        else if (strcmp(kn, "to") == 0) to = v;
        else if (strcmp(kn, "bias") == 0) { if ((rc = get_bool(c, v, sub, &bias))) return rc; }
        else if (strcmp(kn, "kind") == 0) {
            const char *kind;
            if ((rc = get_string(c, v, sub, &kind))) return rc;
            if (strcmp(kind, "conv") == 0) is_conv = 1;
            else if (strcmp(kind, "dense") != 0)
                return fail(c, node_line(v), SOMA_STATUS_INVALID, "%s: unknown kind '%s'; expected one of: dense, conv",
                            sub, kind);
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
        } else
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
    if (is_conv ? soma_net_connect_conv(c->net, fi, ti, bias, &cv) : soma_net_connect_dense(c->net, fi, ti, bias))
        return fail(c, node_line(n), SOMA_STATUS_INVALID, "%s: %s; expected a valid %s projection", what,
                    soma_net_errmsg(c->net), is_conv ? "conv" : "dense");
    return 0;
}

static int parse_network(ctx *c, const yaml_node_t *key, const yaml_node_t *n) {
    static const char *const keys[] = {"populations", "projections", NULL};
    int rc = want_mapping(c, n, "network");
    if (rc) return rc;
    const yaml_node_t *pops = NULL, *projs = NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key);
        if (strcmp(scalar(k), "populations") == 0) pops = node_at(c, p->value);
        else if (strcmp(scalar(k), "projections") == 0) projs = node_at(c, p->value);
        else return unknown_key(c, k, "network", keys);
    }
    if (!pops)
        return fail(c, node_line(key), SOMA_STATUS_INVALID,
                    "network: no 'populations' given; expected populations: {NAME: {model: ..., size: ...}, ...}");
    if (is_null(pops) || (pops->type == YAML_MAPPING_NODE && pops->data.mapping.pairs.start == pops->data.mapping.pairs.top))
        return fail(c, node_line(pops), SOMA_STATUS_INVALID,
                    "network.populations is empty; expected at least one population {NAME: {model: ..., size: ...}}");
    if ((rc = want_mapping(c, pops, "network.populations"))) return rc;
    for (yaml_node_pair_t *p = pops->data.mapping.pairs.start; p < pops->data.mapping.pairs.top; p++)
        if ((rc = parse_pop(c, node_at(c, p->key), node_at(c, p->value)))) return rc;
    if (!projs || is_null(projs)) return 0;
    if (projs->type != YAML_SEQUENCE_NODE)
        return fail(c, node_line(projs), SOMA_STATUS_INVALID,
                    "network.projections is %s; expected a list of {from: POP, to: POP, kind: dense}",
                    node_kind(projs));
    size_t i = 0;
    for (yaml_node_item_t *it = projs->data.sequence.items.start; it < projs->data.sequence.items.top; it++, i++)
        if ((rc = parse_proj(c, node_at(c, *it), i))) return rc;
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

/* optimizer: NAME | {name, lr, momentum, beta1, beta2, eps, weight_decay} */
static int parse_optimizer(ctx *c, const yaml_node_t *n, soma_train_opts *o, const yaml_node_t **lr_at) {
    static const char *const keys[] = {"name", "lr", "momentum", "beta1", "beta2", "eps", "weight_decay", NULL};
    const char *what = "train.optimizer";
    if (is_scalar(n) && !is_null(n)) return get_enum(c, n, what, soma_optimizer_name, soma_optimizer_find, &o->optimizer);
    if (!n || n->type != YAML_MAPPING_NODE) {
        namelist l;
        names_from_enum(&l, soma_optimizer_name, soma_optimizer_find);
        return fail(c, node_line(n), SOMA_STATUS_INVALID,
                    "%s is %s; expected a name (%s) or a mapping {name: ..., lr: ...}", what, node_kind(n), l.buf);
    }
    int rc = want_mapping(c, n, what);
    if (rc) return rc;
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
    if (is_scalar(n) && !is_null(n)) return get_enum(c, n, what, soma_schedule_name, soma_schedule_find, &o->schedule);
    if (!n || n->type != YAML_MAPPING_NODE) {
        namelist l;
        names_from_enum(&l, soma_schedule_name, soma_schedule_find);
        return fail(c, node_line(n), SOMA_STATUS_INVALID,
                    "%s is %s; expected a name (%s) or a mapping {name: ..., step_size: ..., gamma: ...}", what,
                    node_kind(n), l.buf);
    }
    int rc = want_mapping(c, n, what);
    if (rc) return rc;
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
    if (is_scalar(n) && !is_null(n)) return get_enum(c, n, what, soma_surrogate_name, soma_surrogate_find, &o->surrogate);
    if (!n || n->type != YAML_MAPPING_NODE) {
        namelist l;
        names_from_enum(&l, soma_surrogate_name, soma_surrogate_find);
        return fail(c, node_line(n), SOMA_STATUS_INVALID,
                    "%s is %s; expected a name (%s) or a mapping {name: ..., slope: ...}", what, node_kind(n), l.buf);
    }
    int rc = want_mapping(c, n, what);
    if (rc) return rc;
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

/* ----------------------------------------------------------------- file */

static int parse_root(ctx *c, soma_data_opts *data, soma_train_opts *train) {
    static const char *const keys[] = {"network", "data", "train", NULL};
    yaml_node_t *root = yaml_document_get_root_node(c->doc);
    if (!root || is_null(root))
        return fail(c, 1, SOMA_STATUS_INVALID, "the file is empty; expected a 'network' section");
    int rc = want_mapping(c, root, "the top level");
    if (rc) return rc;
    yaml_node_t *nk = NULL, *net = map_get(c, root, "network", &nk);
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(c, p->key);
        int known = 0;
        for (size_t i = 0; keys[i]; i++) known |= strcmp(scalar(k), keys[i]) == 0;
        if (!known) return unknown_key(c, k, "top level", keys);
    }
    if (!net)
        return fail(c, node_line(root), SOMA_STATUS_INVALID,
                    "no 'network' section; expected network: {populations: ..., projections: ...}");
    if ((rc = parse_network(c, nk, net))) return rc;
    yaml_node_t *dn = map_get(c, root, "data", NULL);
    if (dn && (rc = parse_data(c, dn, data))) return rc;
    yaml_node_t *tn = map_get(c, root, "train", NULL);
    if (tn && (rc = parse_train(c, tn, train))) return rc;
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

int soma_experiment_load(const char *path, soma_net **net, soma_data_opts *data, soma_train_opts *train,
                         char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (net) *net = NULL;
    ctx c = {path ? path : "(null)", err, errlen, NULL, NULL};
    if (!path || !net) return fail(&c, 0, SOMA_STATUS_INVALID, "no path or net given; expected both");

    soma_data_opts dopt;
    soma_train_opts topt;
    soma_data_opts_default(&dopt);
    soma_train_opts_default(&topt);

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
            else rc = parse_root(&c, &dopt, &topt);
        }
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    fclose(f);
    if (rc) {
        soma_net_free(c.net);
        return rc;
    }
    *net = c.net;
    if (data) *data = dopt;
    if (train) *train = topt;
    return 0;
}
