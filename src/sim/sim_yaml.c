/* sim_yaml.c — reads a simulator network file (YAML) into a soma_net.
 *
 *   params:  {NAME: value, ...}          named constants for expressions
 *   sets:    {SET: {NAME: value, ...}}   named overrides of params (chosen with "set=SET")
 *   network:
 *     dt: 0.1ms
 *     populations: {NAME: {model, size, like: OTHER, <parameter or state>: value, ...}}
 *     projections: [{from, to, connect: {rule, p, k, n, autapses, multapses, file},
 *                    weight, delay, port: e|i|<index>|sign}, ...]   (from/to may be lists)
 *     inputs: [{to, poisson: {rate, weight, port}} | {to, steps: {times: [...], values: [...]}}
 *              | {to, spikes: FILE}]                               (FILE lines: "neuron,time")
 *   simulate: {time, warmup, seed, threads, record: {spikes: all|none}}
 *
 * Every value is an expression with units (see sim.h), so "20ms",
 * "uniform(-60mV, -50mV)" and "-g*J" all work; sizes and counts are
 * dimensionless expressions rounded to integers ("20683*scale"). Errors read
 * "FILE:LINE: what was wrong; expected ...". Values whose check has to wait
 * for the build (random per-neuron values, delays drawn per synapse) carry
 * their file:line into the build's messages.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "core/names.h"
#include "net/net.h"

typedef struct ctx {
    const char *path;
    char dir[1024];
    char *err;
    size_t errlen;
    yaml_document_t *doc;
    soma_net *sn;
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

static int line_of(const yaml_node_t *n) { return n ? (int)n->start_mark.line + 1 : 0; }

static int fail(ctx *c, const yaml_node_t *at, int status, const char *fmt, ...) {
    if (!c->err || !c->errlen) return status;
    int k = snprintf(c->err, c->errlen, "%s:%d: ", c->path, line_of(at));
    if (k < 0) k = 0;
    if ((size_t)k < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + k, c->errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return status;
}

/* Report an error the net already formatted with "FILE:LINE: " in front. */
static int fail_sn(ctx *c, int status) {
    if (c->err && c->errlen) snprintf(c->err, c->errlen, "%s", soma_net_errmsg(c->sn));
    return status;
}

static yaml_node_t *node(ctx *c, int id) { return yaml_document_get_node(c->doc, id); }
static int is_scalar(const yaml_node_t *n) { return n && n->type == YAML_SCALAR_NODE; }
static const char *str(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }
static const char *kind(const yaml_node_t *n) {
    if (!n) return "nothing";
    return n->type == YAML_MAPPING_NODE ? "a mapping" : n->type == YAML_SEQUENCE_NODE ? "a list" : "a value";
}

/* Mark the net's next values with this node's file:line. */
static void where(ctx *c, const yaml_node_t *n) {
    char w[96];
    snprintf(w, sizeof w, "%s:%d", c->path, line_of(n));
    soma__net_where(c->sn, w);
}

static int want_map(ctx *c, const yaml_node_t *n, const char *what) {
    if (n && n->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
            yaml_node_t *k = node(c, p->key);
            if (!is_scalar(k)) return fail(c, k, SOMA_STATUS_INVALID, "%s: a key is %s; expected a name", what, kind(k));
            for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++)
                if (strcmp(str(node(c, q->key)), str(k)) == 0)
                    return fail(c, k, SOMA_STATUS_INVALID, "%s: key '%s' given twice", what, str(k));
        }
        return 0;
    }
    return fail(c, n, SOMA_STATUS_INVALID, "%s is %s; expected a mapping (key: value, ...)", what, kind(n));
}

static yaml_node_t *get(ctx *c, const yaml_node_t *map, const char *key) {
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++)
        if (strcmp(str(node(c, p->key)), key) == 0) return node(c, p->value);
    return NULL;
}

static int check_keys(ctx *c, const yaml_node_t *map, const char *what, const char *const *valid) {
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(c, p->key);
        int ok = 0;
        for (size_t i = 0; valid[i]; i++) ok |= strcmp(valid[i], str(k)) == 0;
        if (!ok) {
            char names[400] = "";
            for (size_t i = 0; valid[i]; i++) soma__names_add(names, sizeof names, valid[i]);
            return fail(c, k, SOMA_STATUS_INVALID, "%s: unknown key '%s'; expected one of: %s", what, str(k), names);
        }
    }
    return 0;
}

static int want_scalar(ctx *c, const yaml_node_t *n, const char *what, const char **out) {
    *out = "";
    if (!is_scalar(n) || !str(n)[0])
        return fail(c, n, SOMA_STATUS_INVALID, "%s is %s; expected a value", what, n && is_scalar(n) ? "empty" : kind(n));
    *out = str(n);
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
    rc = soma__expr_parse(s, c->sn->syms, c->sn->nsyms, &e, err, sizeof err);
    if (!rc) rc = soma__expr_to_unit(e, unit, &scale, err, sizeof err);
    if (!rc && !soma__expr_is_const(e)) {
        snprintf(err, sizeof err, "'%s' is not a constant", s);
        rc = SOMA_STATUS_INVALID;
    }
    if (rc) {
        soma__expr_free(e);
        return fail(c, n, rc, "%s: %s", what, err);
    }
    *out = soma__expr_eval(e, 0, 0, 1) * scale;
    soma__expr_free(e);
    if (!isfinite(*out)) return fail(c, n, SOMA_STATUS_INVALID, "%s: '%s' is not finite", what, s);
    return 0;
}

/* A count: a dimensionless constant expression, rounded, within [lo, hi]. */
static int get_count(ctx *c, const yaml_node_t *n, const char *what, double lo, double hi, size_t *out) {
    double v;
    int rc = get_quantity(c, n, what, "", &v);
    if (rc) return rc;
    double r = floor(v + 0.5);
    if (r < lo || r > hi) return fail(c, n, SOMA_STATUS_INVALID, "%s = %g; expected an integer in [%g, %g]", what, v, lo, hi);
    *out = (size_t)r;
    return 0;
}

static int get_bool(ctx *c, const yaml_node_t *n, const char *what, int *out) {
    if (is_scalar(n)) {
        const char *s = str(n);
        if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "True")) return *out = 1, 0;
        if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "False")) return *out = 0, 0;
    }
    return fail(c, n, SOMA_STATUS_INVALID, "%s: expected true or false", what);
}

/* A path relative to the network file's folder. */
static void rel_path(ctx *c, const char *p, char *out, size_t cap) {
    if (p[0] == '/' || !c->dir[0])
        snprintf(out, cap, "%s", p);
    else
        snprintf(out, cap, "%s/%s", c->dir, p);
}

/* ------------------------------------------------------------ sections */

static struct ov *find_ov(ctx *c, const char *name) {
    for (size_t i = c->nov; i-- > 0;)
        if (!strcmp(c->ov[i].name, name)) return &c->ov[i];
    return NULL;
}

static int parse_params(ctx *c, const yaml_node_t *n, const char *what) {
    int rc = want_map(c, n, what);
    if (rc) return rc;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
        const char *s;
        if ((rc = want_scalar(c, v, str(k), &s))) return rc;
        where(c, v);
        struct ov *o = find_ov(c, str(k));
        if (o) {
            /* Every entry for this name counts as used; the last one wins. */
            for (size_t i = 0; i < c->nov; i++)
                if (!strcmp(c->ov[i].name, str(k))) c->ov[i].used = 1;
            s = o->text;
            soma__net_where(c->sn, o->where);
        }
        if ((rc = soma_net_define(c->sn, str(k), s))) return fail_sn(c, rc);
    }
    return 0;
}

static const char *const pop_keys_fixed[] = {"model", "size", "like", NULL};

/* Apply the parameter and state entries of a population mapping. */
static int apply_pop_values(ctx *c, size_t pop, const yaml_node_t *spec) {
    for (yaml_node_pair_t *p = spec->data.mapping.pairs.start; p < spec->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
        int fixed = 0;
        for (size_t i = 0; pop_keys_fixed[i]; i++) fixed |= strcmp(str(k), pop_keys_fixed[i]) == 0;
        if (fixed) continue;
        const char *s;
        int rc = want_scalar(c, v, str(k), &s);
        if (rc) return rc;
        where(c, v);
        if ((rc = soma_net_set(c->sn, pop, str(k), s))) {
            if (rc == SOMA_STATUS_NOTFOUND) where(c, k), soma_net_set(c->sn, pop, str(k), s);
            return fail_sn(c, rc);
        }
    }
    return 0;
}

static int parse_pops(ctx *c, const yaml_node_t *n) {
    int rc = want_map(c, n, "network.populations");
    if (rc) return rc;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node(c, p->key), *spec = node(c, p->value);
        char what[128];
        snprintf(what, sizeof what, "population '%s'", str(k));
        if ((rc = want_map(c, spec, what))) return rc;
        const yaml_node_t *like = get(c, spec, "like"), *base = NULL;
        if (like) {
            const char *ln;
            if ((rc = want_scalar(c, like, "like", &ln))) return rc;
            size_t bi;
            if (soma_net_find_pop(c->sn, ln, &bi))
                return fail(c, like, SOMA_STATUS_NOTFOUND, "%s: like: no population '%s' defined above", what, ln);
            /* Find the base population's mapping to copy its entries. */
            const yaml_node_t *pops = n;
            for (yaml_node_pair_t *q = pops->data.mapping.pairs.start; q < p; q++)
                if (!strcmp(str(node(c, q->key)), ln)) base = node(c, q->value);
        }
        const yaml_node_t *mn = get(c, spec, "model");
        if (!mn && base) mn = get(c, base, "model");
        const yaml_node_t *sz = get(c, spec, "size");
        if (!sz && base) sz = get(c, base, "size");
        if (!mn) return fail(c, spec, SOMA_STATUS_INVALID, "%s: no model; expected model: NAME", what);
        if (!sz) return fail(c, spec, SOMA_STATUS_INVALID, "%s: no size; expected size: N", what);
        const char *model;
        if ((rc = want_scalar(c, mn, "model", &model))) return rc;
        size_t size = 0;
        if ((rc = get_count(c, sz, "size", 1, 1073741824.0, &size))) return rc;
        where(c, mn);
        size_t pop;
        if ((rc = soma_net_add_pop(c->sn, str(k), model, size, &pop))) return fail_sn(c, rc);
        if (base && (rc = apply_pop_values(c, pop, base))) return rc;
        if ((rc = apply_pop_values(c, pop, spec))) return rc;
    }
    return 0;
}

static int pop_list(ctx *c, const yaml_node_t *n, const char *what, size_t *out, size_t *count) {
    *count = 0;
    if (!n) return fail(c, NULL, SOMA_STATUS_INVALID, "%s missing", what);
    const yaml_node_t *items[64];
    size_t ni = 0;
    if (n->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
            if (ni == 64) return fail(c, n, SOMA_STATUS_INVALID, "%s: at most 64 populations in one list", what);
            items[ni++] = node(c, *it);
        }
    } else
        items[ni++] = n;
    for (size_t i = 0; i < ni; i++) {
        const char *s;
        int rc = want_scalar(c, items[i], what, &s);
        if (rc) return rc;
        if (soma_net_find_pop(c->sn, s, &out[*count])) {
            char names[400] = "";
            for (size_t p = 0; p < c->sn->npops; p++) soma__names_add(names, sizeof names, c->sn->pops[p].name);
            return fail(c, items[i], SOMA_STATUS_NOTFOUND, "%s: no population '%s'; expected one of: %s", what, s,
                        names[0] ? names : "(none defined)");
        }
        (*count)++;
    }
    return 0;
}

static int get_port(ctx *c, const yaml_node_t *n, size_t to, int *port) {
    *port = SOMA_PORT_BY_SIGN;
    if (!n) return 0;
    const char *s;
    int rc = want_scalar(c, n, "port", &s);
    if (rc) return rc;
    if (!strcmp(s, "sign")) return 0;
    const soma_model *m = c->sn->pops[to].model;
    int k = soma__model_port_index(m, s);
    if (k < 0 && isdigit((unsigned char)s[0])) k = atoi(s);
    if (k < 0 || (size_t)k >= m->n_ports) {
        char names[128] = "";
        for (size_t j = 0; j < m->n_ports; j++) soma__names_add(names, sizeof names, m->port_names[j]);
        soma__names_add(names, sizeof names, "sign");
        return fail(c, n, SOMA_STATUS_INVALID, "port '%s': model %s has ports %s", s, m->name, names);
    }
    *port = k;
    return 0;
}

static const char *const proj_keys[] = {"from", "to", "connect", "weight", "delay", "port", NULL};
static const char *const conn_keys[] = {"rule", "p", "k", "n", "autapses", "multapses", "file", NULL};

static int parse_connector(ctx *c, const yaml_node_t *n, soma_connector *cn, char *path, size_t cap) {
    int rc = want_map(c, n, "connect");
    if (rc) return rc;
    if ((rc = check_keys(c, n, "connect", conn_keys))) return rc;
    const yaml_node_t *r = get(c, n, "rule");
    const char *rule;
    if (!r) return fail(c, n, SOMA_STATUS_INVALID, "connect: no rule; expected rule: all_to_all, one_to_one, ...");
    if ((rc = want_scalar(c, r, "rule", &rule))) return rc;
    int ri = soma_conn_rule_find(rule);
    if (ri < 0) {
        char names[300] = "";
        for (int i = 0; soma_conn_rule_name(i); i++) soma__names_add(names, sizeof names, soma_conn_rule_name(i));
        return fail(c, r, SOMA_STATUS_INVALID, "connect: unknown rule '%s'; expected one of: %s", rule, names);
    }
    soma_connector_default(cn, ri);
    const yaml_node_t *v;
    if ((v = get(c, n, "p"))) {
        if ((rc = get_quantity(c, v, "p", "", &cn->p))) return rc;
        if (!(cn->p >= 0 && cn->p <= 1))
            return fail(c, v, SOMA_STATUS_INVALID, "connection probability %g is outside [0, 1]", cn->p);
    }
    if ((v = get(c, n, "k")) && (rc = get_count(c, v, "k", 0, 1e12, &cn->k))) return rc;
    if ((v = get(c, n, "n")) && (rc = get_count(c, v, "n", 0, 1e12, &cn->n))) return rc;
    if ((v = get(c, n, "autapses")) && (rc = get_bool(c, v, "autapses", &cn->autapses))) return rc;
    if ((v = get(c, n, "multapses")) && (rc = get_bool(c, v, "multapses", &cn->multapses))) return rc;
    if ((v = get(c, n, "file"))) {
        const char *s;
        if ((rc = want_scalar(c, v, "file", &s))) return rc;
        rel_path(c, s, path, cap);
        cn->path = path;
    }
    return 0;
}

static int parse_proj(ctx *c, const yaml_node_t *n) {
    int rc = want_map(c, n, "projection");
    if (rc) return rc;
    if ((rc = check_keys(c, n, "projection", proj_keys))) return rc;
    size_t from[64], to[64], nf, nt;
    if ((rc = pop_list(c, get(c, n, "from"), "from", from, &nf))) return rc == SOMA_STATUS_INVALID && !get(c, n, "from") ? fail(c, n, rc, "projection: no 'from'") : rc;
    if ((rc = pop_list(c, get(c, n, "to"), "to", to, &nt))) return rc == SOMA_STATUS_INVALID && !get(c, n, "to") ? fail(c, n, rc, "projection: no 'to'") : rc;
    const yaml_node_t *cn = get(c, n, "connect");
    if (!cn) return fail(c, n, SOMA_STATUS_INVALID, "projection: no connect; expected connect: {rule: ...}");
    soma_connector con;
    char path[2048];
    if ((rc = parse_connector(c, cn, &con, path, sizeof path))) return rc;
    const yaml_node_t *w = get(c, n, "weight"), *d = get(c, n, "delay");
    const char *ws = "0", *ds = NULL;
    char dtbuf[64]; /* no delay given: one step */
    if (w && (rc = want_scalar(c, w, "weight", &ws))) return rc;
    if (d && (rc = want_scalar(c, d, "delay", &ds))) return rc;
    if (!ds) {
        snprintf(dtbuf, sizeof dtbuf, "%.17gms", c->sn->dt);
        ds = dtbuf;
    }
    for (size_t i = 0; i < nf; i++)
        for (size_t j = 0; j < nt; j++) {
            int port;
            if ((rc = get_port(c, get(c, n, "port"), to[j], &port))) return rc;
            /* The weight and the delay name their own lines, now and in
             * the build's checks of values drawn per synapse. */
            char ww[96], wd[96];
            snprintf(ww, sizeof ww, "%s:%d", c->path, line_of(w ? w : cn));
            snprintf(wd, sizeof wd, "%s:%d", c->path, line_of(d ? d : cn));
            where(c, cn);
            rc = soma__net_connect_at(c->sn, from[i], to[j], &con, ws, ds, port, NULL, ww, wd);
            if (rc) return fail_sn(c, rc);
        }
    return 0;
}

/* A spike file for a spike_source: "neuron,time_ms" per line (commas or
 * blanks, '#' comments, an optional header line). */
static int read_spike_file(ctx *c, const yaml_node_t *at, size_t pop, const char *file) {
    char path[2048];
    rel_path(c, file, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f) return fail(c, at, SOMA_STATUS_IO, "cannot open spike file %s: %s", path, strerror(errno));
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
        if ((size_t)id >= c->sn->pops[pop].size) {
            if (c->err)
                snprintf(c->err, c->errlen, "%s:%d: neuron %lld is out of range (population '%s' has %zu)", path,
                         lineno, id, c->sn->pops[pop].name, c->sn->pops[pop].size);
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
    if (!rc) {
        where(c, at);
        if ((rc = soma_net_set_spikes(c->sn, pop, ids, ts, n))) rc = fail_sn(c, rc);
    }
    free(ids);
    free(ts);
    return rc;
}

static int float_list(ctx *c, const yaml_node_t *n, const char *what, const char *unit, double **out, size_t *count) {
    if (!n || n->type != YAML_SEQUENCE_NODE)
        return fail(c, n, SOMA_STATUS_INVALID, "%s is %s; expected a list", what, kind(n));
    size_t m = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    *out = malloc((m ? m : 1) * sizeof(double));
    if (!*out) return SOMA_STATUS_NOMEM;
    *count = m;
    for (size_t i = 0; i < m; i++) {
        int rc = get_quantity(c, node(c, n->data.sequence.items.start[i]), what, unit, &(*out)[i]);
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
    int rc = want_map(c, n, "input");
    if (rc) return rc;
    if ((rc = check_keys(c, n, "input", keys))) return rc;
    size_t to[64], nt;
    if (!get(c, n, "to")) return fail(c, n, SOMA_STATUS_INVALID, "input: no 'to'; expected to: POPULATION");
    if ((rc = pop_list(c, get(c, n, "to"), "to", to, &nt))) return rc;
    const yaml_node_t *v;
    int kinds = !!get(c, n, "poisson") + !!get(c, n, "steps") + !!get(c, n, "spikes");
    if (kinds != 1) return fail(c, n, SOMA_STATUS_INVALID, "input: expected exactly one of poisson, steps, spikes");
    for (size_t j = 0; j < nt; j++) {
        if ((v = get(c, n, "poisson"))) {
            static const char *const pk[] = {"rate", "weight", "port", NULL};
            if ((rc = want_map(c, v, "poisson")) || (rc = check_keys(c, v, "poisson", pk))) return rc;
            const char *rate, *w;
            if (!get(c, v, "rate") || !get(c, v, "weight"))
                return fail(c, v, SOMA_STATUS_INVALID, "poisson: expected rate and weight");
            if ((rc = want_scalar(c, get(c, v, "rate"), "rate", &rate))) return rc;
            if ((rc = want_scalar(c, get(c, v, "weight"), "weight", &w))) return rc;
            int port;
            if ((rc = get_port(c, get(c, v, "port"), to[j], &port))) return rc;
            where(c, v);
            if ((rc = soma_net_add_poisson(c->sn, to[j], rate, w, port))) return fail_sn(c, rc);
        } else if ((v = get(c, n, "steps"))) {
            static const char *const sk[] = {"times", "values", NULL};
            if ((rc = want_map(c, v, "steps")) || (rc = check_keys(c, v, "steps", sk))) return rc;
            const soma_model *m = c->sn->pops[to[j]].model;
            /* The external input is in the unit of the model's I_e (a rate for poisson, mV for lif_cuba). */
            int ie = soma__model_param_index(m, "I_e");
            const char *unit = m == &soma__model_poisson ? "Hz" : ie >= 0 ? m->params[ie].unit
                                                                 : m->weight_unit ? m->weight_unit : "";
            double *t = NULL, *val = NULL;
            size_t n1 = 0, n2 = 0;
            rc = float_list(c, get(c, v, "times"), "times", "ms", &t, &n1);
            if (!rc) rc = float_list(c, get(c, v, "values"), "values", unit, &val, &n2);
            if (!rc && n1 != n2)
                rc = fail(c, v, SOMA_STATUS_INVALID, "steps: %zu times but %zu values; expected as many", n1, n2);
            if (!rc) {
                where(c, v);
                if ((rc = soma_net_add_steps(c->sn, to[j], t, val, n1))) rc = fail_sn(c, rc);
            }
            free(t);
            free(val);
            if (rc) return rc;
        } else {
            v = get(c, n, "spikes");
            const char *file;
            if ((rc = want_scalar(c, v, "spikes", &file))) return rc;
            if ((rc = read_spike_file(c, v, to[j], file))) return rc;
        }
    }
    return 0;
}

static int parse_network(ctx *c, const yaml_node_t *n) {
    static const char *const keys[] = {"dt", "populations", "projections", "inputs", NULL};
    int rc = want_map(c, n, "network");
    if (rc) return rc;
    if ((rc = check_keys(c, n, "network", keys))) return rc;
    const yaml_node_t *v;
    if ((v = get(c, n, "dt"))) {
        double dt;
        if ((rc = get_quantity(c, v, "dt", "ms", &dt))) return rc;
        where(c, v);
        if ((rc = soma_net_set_dt(c->sn, dt))) return fail_sn(c, rc);
    }
    if (!(v = get(c, n, "populations"))) return fail(c, n, SOMA_STATUS_INVALID, "network: no populations");
    if ((rc = parse_pops(c, v))) return rc;
    if ((v = get(c, n, "projections"))) {
        if (v->type != YAML_SEQUENCE_NODE)
            return fail(c, v, SOMA_STATUS_INVALID, "network.projections is %s; expected a list", kind(v));
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++)
            if ((rc = parse_proj(c, node(c, *it)))) return rc;
    }
    if ((v = get(c, n, "inputs"))) {
        if (v->type != YAML_SEQUENCE_NODE)
            return fail(c, v, SOMA_STATUS_INVALID, "network.inputs is %s; expected a list", kind(v));
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++)
            if ((rc = parse_input(c, node(c, *it)))) return rc;
    }
    return 0;
}

/* record.state: which neurons' state variables to sample. */
static int parse_state(ctx *c, const yaml_node_t *n, soma_sim_file_opts *o) {
    static const char *const keys[] = {"pop", "var", "neurons", "every", NULL};
    if (n->type != YAML_SEQUENCE_NODE)
        return fail(c, n, SOMA_STATUS_INVALID, "record.state is %s; expected a list of {pop, var, neurons, every}", kind(n));
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
        const yaml_node_t *m = node(c, *it);
        int rc = want_map(c, m, "record.state entry");
        if (rc || (rc = check_keys(c, m, "record.state entry", keys))) return rc;
        if (o->n_state == sizeof o->state / sizeof o->state[0])
            return fail(c, m, SOMA_STATUS_INVALID, "record.state: at most %zu entries", sizeof o->state / sizeof o->state[0]);
        struct soma_sim_state_spec *sp = &o->state[o->n_state];
        memset(sp, 0, sizeof *sp);
        size_t pop;
        const char *pn, *var;
        if (!get(c, m, "pop") || !get(c, m, "var"))
            return fail(c, m, SOMA_STATUS_INVALID, "record.state entry: expected pop and var");
        if ((rc = want_scalar(c, get(c, m, "pop"), "pop", &pn))) return rc;
        if (soma_net_find_pop(c->sn, pn, &pop))
            return fail(c, get(c, m, "pop"), SOMA_STATUS_NOTFOUND, "record.state: no population '%s'", pn);
        if ((rc = want_scalar(c, get(c, m, "var"), "var", &var))) return rc;
        const soma_model *mo = c->sn->pops[pop].model;
        if (soma__model_state_index(mo, var) < 0) {
            char names[200];
            soma__model_state_list(mo, names, sizeof names);
            return fail(c, get(c, m, "var"), SOMA_STATUS_NOTFOUND,
                        "record.state: model %s has no state variable '%s'; expected one of: %s", mo->name, var, names);
        }
        snprintf(sp->pop, sizeof sp->pop, "%s", pn);
        snprintf(sp->var, sizeof sp->var, "%s", var);
        size_t N = c->sn->pops[pop].size;
        const yaml_node_t *nn = get(c, m, "neurons");
        if (!nn) {
            sp->n = N < 4 ? N : 4;
            for (size_t k = 0; k < sp->n; k++) sp->idx[k] = k;
        } else if (nn->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *q = nn->data.sequence.items.start; q < nn->data.sequence.items.top; q++) {
                if (sp->n == 64) return fail(c, nn, SOMA_STATUS_INVALID, "record.state: at most 64 neurons per entry");
                if ((rc = get_count(c, node(c, *q), "neuron", 0, (double)N - 1, &sp->idx[sp->n]))) return rc;
                sp->n++;
            }
        } else {
            size_t k = 0;
            if ((rc = get_count(c, nn, "neurons", 1, 64, &k))) return rc;
            sp->n = k < N ? k : N;
            for (size_t j = 0; j < sp->n; j++) sp->idx[j] = j;
        }
        sp->every_ms = c->sn->dt;
        const yaml_node_t *ev = get(c, m, "every");
        if (ev) {
            if ((rc = get_quantity(c, ev, "every", "ms", &sp->every_ms))) return rc;
            if (!(sp->every_ms >= c->sn->dt * 0.999))
                return fail(c, ev, SOMA_STATUS_INVALID, "record.state every = %g ms; expected at least dt", sp->every_ms);
        }
        o->n_state++;
    }
    return 0;
}

static int parse_simulate(ctx *c, const yaml_node_t *n, soma_sim_file_opts *o) {
    static const char *const keys[] = {"time", "warmup", "seed", "threads", "record", "reference_rates", NULL};
    int rc = want_map(c, n, "simulate");
    if (rc) return rc;
    if ((rc = check_keys(c, n, "simulate", keys))) return rc;
    const yaml_node_t *v;
    if ((v = get(c, n, "time")) && (rc = get_quantity(c, v, "simulate.time", "ms", &o->time_ms))) return rc;
    if (o->time_ms < 0) return fail(c, v, SOMA_STATUS_INVALID, "simulate.time: expected >= 0");
    if ((v = get(c, n, "warmup")) && (rc = get_quantity(c, v, "simulate.warmup", "ms", &o->warmup_ms))) return rc;
    if (o->warmup_ms < 0) return fail(c, v, SOMA_STATUS_INVALID, "simulate.warmup: expected >= 0");
    size_t x = 0;
    if ((v = get(c, n, "seed"))) {
        if ((rc = get_count(c, v, "simulate.seed", 0, 9007199254740992.0, &x))) return rc;
        o->seed = x;
    }
    if ((v = get(c, n, "threads"))) {
        if ((rc = get_count(c, v, "simulate.threads", 0, 256, &x))) return rc;
        o->threads = (int)x;
    }
    if ((v = get(c, n, "reference_rates"))) {
        if ((rc = want_map(c, v, "simulate.reference_rates"))) return rc;
        for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
            const yaml_node_t *k = node(c, p->key), *r = node(c, p->value);
            size_t pop;
            if (soma_net_find_pop(c->sn, str(k), &pop))
                return fail(c, k, SOMA_STATUS_NOTFOUND, "reference_rates: no population '%s'", str(k));
            if (o->n_ref == sizeof o->ref_hz / sizeof o->ref_hz[0])
                return fail(c, k, SOMA_STATUS_INVALID, "reference_rates: at most %zu populations",
                            sizeof o->ref_hz / sizeof o->ref_hz[0]);
            double hz;
            if ((rc = get_quantity(c, r, "reference rate", "Hz", &hz))) return rc;
            snprintf(o->ref_pop[o->n_ref], sizeof o->ref_pop[0], "%s", str(k));
            o->ref_hz[o->n_ref++] = hz;
        }
    }
    if ((v = get(c, n, "record"))) {
        static const char *const rk[] = {"spikes", "state", "rate_bin", NULL};
        if ((rc = want_map(c, v, "simulate.record")) || (rc = check_keys(c, v, "simulate.record", rk))) return rc;
        const yaml_node_t *s = get(c, v, "spikes");
        if (s && s->type == YAML_SEQUENCE_NODE) {
            /* A list of populations: record only those. */
            o->record_spikes = 1;
            for (yaml_node_item_t *it = s->data.sequence.items.start; it < s->data.sequence.items.top; it++) {
                const yaml_node_t *pn = node(c, *it);
                const char *name;
                size_t pop;
                if ((rc = want_scalar(c, pn, "record.spikes", &name))) return rc;
                if (soma_net_find_pop(c->sn, name, &pop))
                    return fail(c, pn, SOMA_STATUS_NOTFOUND, "record.spikes: no population '%s'", name);
                if (o->n_spike_pops == sizeof o->spike_pops / sizeof o->spike_pops[0])
                    return fail(c, pn, SOMA_STATUS_INVALID, "record.spikes: at most %zu populations",
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
                return fail(c, s, SOMA_STATUS_INVALID, "record.spikes: '%s'; expected all, none or a list of populations", t);
        }
        const yaml_node_t *rb = get(c, v, "rate_bin");
        if (rb) {
            if ((rc = get_quantity(c, rb, "record.rate_bin", "ms", &o->rate_bin_ms))) return rc;
            if (!(o->rate_bin_ms >= c->sn->dt))
                return fail(c, rb, SOMA_STATUS_INVALID, "record.rate_bin = %g ms; expected at least dt (%g ms)",
                            o->rate_bin_ms, c->sn->dt);
        }
        const yaml_node_t *sl = get(c, v, "state");
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
    const yaml_node_t *sets = get(c, root, "sets");
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
            if (sets && sets->type == YAML_MAPPING_NODE) s = get(c, sets, eq + 1);
            if (!s) {
                char names[300] = "";
                if (sets && sets->type == YAML_MAPPING_NODE)
                    for (yaml_node_pair_t *p = sets->data.mapping.pairs.start; p < sets->data.mapping.pairs.top; p++)
                        soma__names_add(names, sizeof names, str(node(c, p->key)));
                if (c->err)
                    snprintf(c->err, c->errlen, "%s: no parameter set '%s'; expected one of: %s", c->path, eq + 1,
                             names[0] ? names : "(the file has no sets)");
                return SOMA_STATUS_NOTFOUND;
            }
            int rc = want_map(c, s, "set");
            if (rc) return rc;
            for (yaml_node_pair_t *p = s->data.mapping.pairs.start; p < s->data.mapping.pairs.top; p++) {
                const yaml_node_t *k = node(c, p->key), *v = node(c, p->value);
                const char *t;
                if ((rc = want_scalar(c, v, str(k), &t))) return rc;
                char w[96];
                snprintf(w, sizeof w, "%s:%d", c->path, line_of(v));
                if ((rc = add_ov(c, str(k), strlen(str(k)), t, w))) return rc;
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

int soma_net_load_yaml(const char *path, const char *const *ov, size_t nov, soma_net **out,
                          soma_sim_file_opts *o, char *err, size_t errlen) {
    if (!path || !out) return SOMA_STATUS_INVALID;
    *out = NULL;
    soma_sim_file_opts def;
    if (!o) o = &def;
    memset(o, 0, sizeof *o);
    o->time_ms = 1000;
    o->record_spikes = 1;
    o->seed = 1;
    o->rate_bin_ms = 1.0;
    if (err && errlen) err[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (err) snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return SOMA_STATUS_IO;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        if (err)
            snprintf(err, errlen, "%s:%d: %s", path, (int)parser.problem_mark.line + 1,
                     parser.problem ? parser.problem : "malformed YAML");
        yaml_parser_delete(&parser);
        fclose(f);
        return SOMA_STATUS_FORMAT;
    }
    yaml_parser_delete(&parser);
    fclose(f);
    ctx c;
    memset(&c, 0, sizeof c);
    c.path = path;
    c.err = err;
    c.errlen = errlen;
    c.doc = &doc;
    const char *slash = strrchr(path, '/');
    if (slash) snprintf(c.dir, sizeof c.dir, "%.*s", (int)(slash - path), path);
    int rc = soma_net_create(&c.sn);
    if (rc) goto done;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        rc = fail(&c, NULL, SOMA_STATUS_FORMAT, "the file is empty; expected network: and simulate:");
        goto done;
    }
    static const char *const keys[] = {"params", "sets", "network", "simulate", NULL};
    if ((rc = want_map(&c, root, "the file")) || (rc = check_keys(&c, root, "the file", keys))) goto done;
    const yaml_node_t *v;
    if ((v = get(&c, root, "sets")) && (rc = want_map(&c, v, "sets"))) goto done;
    if ((rc = collect_overrides(&c, root, ov, nov))) goto done;
    if ((v = get(&c, root, "params")) && (rc = parse_params(&c, v, "params"))) goto done;
    if ((rc = check_overrides(&c))) goto done;
    if (!(v = get(&c, root, "network"))) {
        rc = fail(&c, root, SOMA_STATUS_INVALID, "no network section; expected network: {populations: ...}");
        goto done;
    }
    if ((rc = parse_network(&c, v))) goto done;
    if ((v = get(&c, root, "simulate")) && (rc = parse_simulate(&c, v, o))) goto done;
done:
    yaml_document_delete(&doc);
    if (rc) {
        soma_net_free(c.sn);
        return rc;
    }
    soma__net_where(c.sn, NULL);
    *out = c.sn;
    return 0;
}
