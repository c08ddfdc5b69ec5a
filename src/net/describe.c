/* describe.c — the parts of a network description written as expressions
 * with units: parameters and initial values (constant or per neuron),
 * named constants, sparse projections (connector, weight, delay, port),
 * Poisson drives, step inputs and spike sources. Everything is checked as
 * it is set, so that a loader can report file:line; values that differ per
 * neuron or synapse are checked again when an executor evaluates them. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/names.h"
#include "net/net.h"

void soma__value_free(soma__value *v) {
    if (v) soma__expr_free(v->e);
    if (v) v->e = NULL;
}

void soma__net_where(soma_net *sn, const char *where) {
    snprintf(sn->where, sizeof sn->where, "%s", where ? where : "");
}

void soma__model_state_list(const soma_model *m, char *buf, size_t cap) {
    buf[0] = 0;
    for (size_t k = 0; k < m->n_state; k++) soma__names_add(buf, cap, m->state_names[k]);
    if (!buf[0]) snprintf(buf, cap, "(none)");
}

int soma__model_state_index(const soma_model *m, const char *name) {
    for (size_t k = 0; k < m->n_state; k++)
        if (strcmp(m->state_names[k], name) == 0) return (int)k;
    return -1;
}

int soma__model_port_index(const soma_model *m, const char *name) {
    for (size_t k = 0; k < m->n_ports; k++)
        if (strcmp(m->port_names[k], name) == 0) return (int)k;
    return -1;
}

/* Parse text into v for a quantity in `unit`; messages name `what`. */
static int value_parse(soma_net *sn, soma__value *v, const char *text, const char *unit, const char *what) {
    char err[300];
    memset(v, 0, sizeof *v);
    int rc = soma__expr_parse(text, sn->syms, sn->nsyms, &v->e, err, sizeof err);
    if (rc) return soma__net_fail(sn, rc, "%s: %s", what, err);
    rc = soma__expr_to_unit(v->e, unit, &v->scale, err, sizeof err);
    if (rc) {
        soma__expr_free(v->e);
        v->e = NULL;
        return soma__net_fail(sn, rc, "%s: %s", what, err);
    }
    snprintf(v->where, sizeof v->where, "%s", sn->where);
    snprintf(v->text, sizeof v->text, "%s", text);
    return 0;
}

/* The value of a constant expression in its target unit. */
static double value_const(const soma__value *v) { return soma__expr_eval(v->e, 0, 0, 1) * v->scale; }

int soma_net_set(soma_net *sn, size_t pop, const char *name, const char *expr) {
    if (!sn || !name || !expr || pop >= sn->npops) return SOMA_STATUS_INVALID;
    soma__pop *P = &sn->pops[pop];
    const soma_model *m = P->model;
    char what[160];
    int k = soma__model_param_index(m, name);
    if (k >= 0) {
        const soma_param_desc *d = &m->params[k];
        snprintf(what, sizeof what, "%s.%s", P->name, name);
        if (d->choices) {
            /* An enum-valued parameter ("reset: subtract") takes a name. */
            char names[256] = "";
            for (size_t j = 0; d->choices[j]; j++) {
                if (!strcmp(d->choices[j], expr)) {
                    soma_net_set_param(sn, pop, name, (float)j);
                    return 0;
                }
                soma__names_add(names, sizeof names, d->choices[j]);
            }
            return soma__net_fail(sn, SOMA_STATUS_INVALID, "%s: unknown choice '%s'; expected one of: %s", what, expr, names);
        }
        soma__value *v = malloc(sizeof *v);
        if (!v) return SOMA_STATUS_NOMEM;
        int rc = value_parse(sn, v, expr, d->unit, what);
        if (rc) {
            free(v);
            return rc;
        }
        soma__value_free(P->val[k]);
        free(P->val[k]);
        P->val[k] = NULL;
        if (soma__expr_is_const(v->e)) {
            /* One value for the population: every executor reads prm[k]. */
            double x = value_const(v);
            soma__value_free(v);
            free(v);
            if (!(x >= d->lo && x <= d->hi))
                return soma__net_fail(sn, SOMA_STATUS_INVALID, "%s = %g%s%s is outside the valid range; expected a value in [%g, %g]%s%s",
                                      what, x, d->unit[0] ? " " : "", d->unit, (double)d->lo, (double)d->hi,
                                      d->unit[0] ? " " : "", d->unit);
            soma_net_set_param(sn, pop, name, (float)x);
            return 0;
        }
        /* One key per population shares r between its values; the salt
         * keeps their random calls apart. */
        soma__expr_set_salt(v->e, (uint64_t)k + 1);
        P->val[k] = v;
        return 0;
    }
    k = soma__model_state_index(m, name);
    if (k >= 0) {
        snprintf(what, sizeof what, "%s.%s (initial value)", P->name, name);
        soma__value *v = malloc(sizeof *v);
        if (!v) return SOMA_STATUS_NOMEM;
        const char *unit = m->state_units ? m->state_units[k] : "";
        int rc = value_parse(sn, v, expr, unit, what);
        if (rc) {
            free(v);
            return rc;
        }
        soma__expr_set_salt(v->e, (uint64_t)k + 1001);
        soma__value_free(P->init[k]);
        free(P->init[k]);
        P->init[k] = v;
        return 0;
    }
    char names[512] = "";
    for (size_t j = 0; j < m->n_params + m->n_state; j++)
        soma__names_add(names, sizeof names, j < m->n_params ? m->params[j].name : m->state_names[j - m->n_params]);
    return soma__net_fail(sn, SOMA_STATUS_NOTFOUND, "model '%s' has no parameter or state variable '%s'; expected one of: %s",
                m->name, name, names[0] ? names : "(none)");
}

int soma_net_define(soma_net *sn, const char *name, const char *expr) {
    if (!sn || !name || !expr) return SOMA_STATUS_INVALID;
    static const char *const reserved[] = {"r", "i", "N", "pi", "uniform", "normal", "normal_clipped", "lognormal",
                                           "exp", "log", "sqrt", "abs", "min", "max", NULL};
    for (size_t k = 0; reserved[k]; k++)
        if (!strcmp(name, reserved[k]))
            return soma__net_fail(sn, SOMA_STATUS_INVALID, "'%s' is a reserved name in expressions; choose another", name);
    soma__unit u;
    if (soma__unit_parse(name, &u) == 0 && name[0])
        return soma__net_fail(sn, SOMA_STATUS_INVALID, "'%s' is the name of a unit; choose another", name);
    soma__expr *e = NULL;
    char err[300];
    int rc = soma__expr_parse(expr, sn->syms, sn->nsyms, &e, err, sizeof err);
    if (rc) return soma__net_fail(sn, rc, "%s: %s", name, err);
    if (!soma__expr_is_const(e)) {
        soma__expr_free(e);
        return soma__net_fail(sn, SOMA_STATUS_INVALID, "%s: a named value must be a constant, got '%s'", name, expr);
    }
    soma__sym s = {NULL, soma__expr_eval(e, 0, 0, 1), soma__expr_dim(e)};
    soma__expr_free(e);
    for (size_t i = 0; i < sn->nsyms; i++)
        if (strcmp(sn->syms[i].name, name) == 0) {
            sn->syms[i].value = s.value;
            sn->syms[i].dim = s.dim;
            return 0;
        }
    soma__sym *ns = realloc(sn->syms, (sn->nsyms + 1) * sizeof *ns);
    if (!ns) return SOMA_STATUS_NOMEM;
    sn->syms = ns;
    s.name = strdup(name);
    if (!s.name) return SOMA_STATUS_NOMEM;
    sn->syms[sn->nsyms++] = s;
    return 0;
}


/* Check a port argument against the target model. */
/* Synaptic input ports of a model: its own, or for a trainer model the one
 * input its forward op takes (port 0, weights in its input's unit). */
static size_t model_ports(const soma_model *m) {
    if (m->n_ports) return m->n_ports;
    return m->forward && m != &soma__model_input ? 1 : 0;
}

static int check_port(soma_net *sn, const soma__pop *T, int port) {
    size_t np = model_ports(T->model);
    if (np == 0)
        return soma__net_fail(sn, SOMA_STATUS_INVALID, "population '%s' (model %s) takes no synaptic input", T->name, T->model->name);
    if (port != SOMA_PORT_BY_SIGN && (port < 0 || (size_t)port >= np))
        return soma__net_fail(sn, SOMA_STATUS_INVALID, "port %d of population '%s': model %s has %zu port(s)", port, T->name,
                    T->model->name, np);
    return 0;
}

/* Dense projection i, or a message naming what it is instead. */
static int dense_proj(soma_net *sn, size_t i, const char *what, soma__proj **out) {
    if (!sn) return SOMA_STATUS_INVALID;
    if (i >= sn->nproj)
        return soma__net_fail(sn, SOMA_STATUS_INVALID, "%s: no projection %zu (the net has %zu)", what, i, sn->nproj);
    soma__proj *pr = &sn->projs[i];
    if (pr->sparse || pr->conv)
        return soma__net_fail(sn, SOMA_STATUS_INVALID, "%s of %s -> %s: it is a %s projection; expected a dense one (%s)",
                              what, sn->pops[pr->from].name, sn->pops[pr->to].name, pr->sparse ? "sparse" : "conv",
                              pr->sparse ? "a sparse projection takes its delay and port in soma_net_connect"
                                         : "conv projections run in the trainer only");
    *out = pr;
    return 0;
}

int soma_net_proj_set_delay(soma_net *sn, size_t i, const char *delay) {
    soma__proj *pr = NULL;
    int rc = dense_proj(sn, i, "delay", &pr);
    if (rc) return rc;
    if (!delay) {
        pr->has_delay = 0;
        pr->dly_ms = 0;
        return 0;
    }
    char what[200];
    snprintf(what, sizeof what, "delay of %s -> %s", sn->pops[pr->from].name, sn->pops[pr->to].name);
    const char *w = what;
    soma__value v;
    if ((rc = value_parse(sn, &v, delay, "ms", w))) return rc;
    if (!soma__expr_is_const(v.e)) {
        soma__value_free(&v);
        return soma__net_fail(sn, SOMA_STATUS_INVALID, "%s = '%s': a dense projection has one delay; expected a constant "
                              "(a time such as 0.3ms)", w, delay);
    }
    double d = value_const(&v);
    soma__value_free(&v);
    if (!(d >= sn->dt * (1 - 1e-9)) || !isfinite(d))
        return soma__net_fail(sn, SOMA_STATUS_INVALID,
                              "%s = %g ms is shorter than the time step %g ms (soma's delays count whole steps, at least "
                              "one)", w, d, sn->dt);
    pr->has_delay = 1;
    pr->dly_ms = d;
    return 0;
}

int soma_net_proj_set_port(soma_net *sn, size_t i, int port) {
    soma__proj *pr = NULL;
    int rc = dense_proj(sn, i, "port", &pr);
    if (rc) return rc;
    if ((rc = check_port(sn, &sn->pops[pr->to], port))) return rc;
    pr->port = port;
    pr->has_port = 1;
    return 0;
}

int soma_net_proj_timing(const soma_net *sn, size_t i, double *delay_ms, int *port) {
    if (!sn || i >= sn->nproj) return SOMA_STATUS_INVALID;
    const soma__proj *pr = &sn->projs[i];
    int dense = !pr->sparse && !pr->conv;
    int hd = dense && pr->has_delay, hp = dense && pr->has_port;
    if (delay_ms) *delay_ms = hd ? pr->dly_ms : 0;
    if (port) *port = hp ? pr->port : 0;
    return hd | hp << 1;
}

int soma_net_connect(soma_net *sn, size_t from, size_t to, const soma_connector *c, const char *weight,
                        const char *delay, int port, size_t *index) {
    return soma__net_connect_at(sn, from, to, c, weight, delay, port, index, NULL, NULL);
}

int soma__net_connect_at(soma_net *sn, size_t from, size_t to, const soma_connector *c, const char *weight,
                            const char *delay, int port, size_t *index, const char *where_w, const char *where_d) {
    if (!sn || !c || from >= sn->npops || to >= sn->npops) return SOMA_STATUS_INVALID;
    char where[sizeof sn->where];
    memcpy(where, sn->where, sizeof where);
    soma__pop *F = &sn->pops[from], *T = &sn->pops[to];
    int rc = check_port(sn, T, port);
    if (rc) return rc;
    char err[400], what[200];
    rc = soma__connect_check(c, F->size, T->size, from == to, err, sizeof err);
    if (rc) return soma__net_fail(sn, rc, "projection %s -> %s: %s", F->name, T->name, err);
    soma__proj pr;
    memset(&pr, 0, sizeof pr);
    pr.from = from;
    pr.to = to;
    pr.c = *c;
    pr.port = port;
    pr.sparse = 1;
    if (c->path) {
        pr.path = strdup(c->path);
        if (!pr.path) return SOMA_STATUS_NOMEM;
        pr.c.path = pr.path;
    }
    /* The weight and the delay may come from lines of their own. */
    snprintf(what, sizeof what, "weight of %s -> %s", F->name, T->name);
    if (where_w) soma__net_where(sn, where_w);
    rc = value_parse(sn, &pr.wv, weight ? weight : "0", T->model->weight_unit ? T->model->weight_unit : "", what);
    if (rc) goto fail;
    snprintf(what, sizeof what, "delay of %s -> %s", F->name, T->name);
    soma__net_where(sn, where_d ? where_d : where);
    rc = value_parse(sn, &pr.dv, delay ? delay : "0.1ms", "ms", what);
    if (rc) goto fail;
    if (soma__expr_is_const(pr.dv.e)) {
        double d = value_const(&pr.dv);
        if (!(d >= sn->dt * (1 - 1e-9)) || !isfinite(d)) {
            rc = soma__net_fail(sn, SOMA_STATUS_INVALID,
                      "%s = %g ms is shorter than the time step %g ms (soma's delays count whole steps, at least one)",
                      what, d, sn->dt);
            goto fail;
        }
    }
    if (index) *index = sn->nproj;
    if ((rc = soma__net_add_proj(sn, &pr))) goto fail;
    soma__net_where(sn, where);
    return 0;
fail:
    soma__net_where(sn, where);
    soma__value_free(&pr.wv);
    soma__value_free(&pr.dv);
    free(pr.path);
    return rc;
}

int soma_net_add_poisson(soma_net *sn, size_t pop, const char *rate, const char *weight, int port) {
    if (!sn || pop >= sn->npops || !rate || !weight) return SOMA_STATUS_INVALID;
    soma__pop *T = &sn->pops[pop];
    int rc = check_port(sn, T, port);
    if (rc) return rc;
    char what[160];
    snprintf(what, sizeof what, "Poisson input rate of '%s'", T->name);
    soma__value r;
    rc = value_parse(sn, &r, rate, "Hz", what);
    if (rc) return rc;
    if (!soma__expr_is_const(r.e)) {
        soma__value_free(&r);
        return soma__net_fail(sn, SOMA_STATUS_INVALID, "%s must be one value for the population, got '%s'", what, rate);
    }
    double hz = value_const(&r);
    soma__value_free(&r);
    if (!(hz >= 0) || !isfinite(hz)) return soma__net_fail(sn, SOMA_STATUS_INVALID, "%s = %g Hz; expected >= 0", what, hz);
    double lam = hz * sn->dt * 1e-3;
    if (lam > 60)
        return soma__net_fail(sn, SOMA_STATUS_INVALID, "%s = %g Hz gives %g events per step; at most 60 are supported", what, hz,
                    lam);
    soma__drive d;
    memset(&d, 0, sizeof d);
    d.pop = pop;
    d.rate_hz = hz;
    d.port = port;
    snprintf(what, sizeof what, "Poisson input weight of '%s'", T->name);
    rc = value_parse(sn, &d.w, weight, T->model->weight_unit ? T->model->weight_unit : "", what);
    if (rc) return rc;
    if (!soma__expr_is_const(d.w.e)) {
        soma__value_free(&d.w);
        return soma__net_fail(sn, SOMA_STATUS_INVALID, "%s must be one value for the population, got '%s'", what, weight);
    }
    soma__drive *nd = realloc(sn->drives, (sn->ndrives + 1) * sizeof *nd);
    if (!nd) {
        soma__value_free(&d.w);
        return SOMA_STATUS_NOMEM;
    }
    sn->drives = nd;
    sn->drives[sn->ndrives++] = d;
    return 0;
}

int soma_net_add_steps(soma_net *sn, size_t pop, const double *t, const double *v, size_t n) {
    if (!sn || pop >= sn->npops) return SOMA_STATUS_INVALID;
    soma__pop *P = &sn->pops[pop];
    if (n == 0 || !t || !v)
        return soma__net_fail(sn, SOMA_STATUS_INVALID, "step input of '%s': no points; expected at least one time and value",
                              P->name);
    if (!P->model->sim_step && !model_ports(P->model))
        return soma__net_fail(sn, SOMA_STATUS_INVALID, "population '%s' (model %s) takes no input", P->name, P->model->name);
    if (P->n_st) return soma__net_fail(sn, SOMA_STATUS_INVALID, "population '%s' already has a step input", P->name);
    for (size_t k = 0; k < n; k++) {
        if (!isfinite(t[k]) || !isfinite(v[k]) || t[k] < 0)
            return soma__net_fail(sn, SOMA_STATUS_INVALID, "step input of '%s', point %zu: expected finite values and t >= 0",
                        P->name, k);
        if (k && !(t[k] > t[k - 1]))
            return soma__net_fail(sn, SOMA_STATUS_INVALID, "step input of '%s': times must increase (point %zu: %g ms after %g ms)",
                        P->name, k, t[k], t[k - 1]);
    }
    P->st_t = malloc(n * sizeof *P->st_t);
    P->st_v = malloc(n * sizeof *P->st_v);
    if (!P->st_t || !P->st_v) {
        free(P->st_t), free(P->st_v);
        P->st_t = P->st_v = NULL;
        return SOMA_STATUS_NOMEM;
    }
    memcpy(P->st_t, t, n * sizeof *t);
    memcpy(P->st_v, v, n * sizeof *v);
    P->n_st = n;
    return 0;
}

int soma_net_set_spikes(soma_net *sn, size_t pop, const uint32_t *ids, const double *t, size_t n) {
    if (!sn || pop >= sn->npops || (n && (!ids || !t))) return SOMA_STATUS_INVALID;
    soma__pop *P = &sn->pops[pop];
    if (P->model != &soma__model_spike_source)
        return soma__net_fail(sn, SOMA_STATUS_INVALID, "population '%s' is a %s, not a spike_source", P->name, P->model->name);
    for (size_t k = 0; k < n; k++) {
        if (ids[k] >= P->size)
            return soma__net_fail(sn, SOMA_STATUS_INVALID, "spike %zu of '%s': neuron %u is out of range (population has %zu)", k,
                        P->name, ids[k], P->size);
        if (!(t[k] >= 0) || !isfinite(t[k]))
            return soma__net_fail(sn, SOMA_STATUS_INVALID, "spike %zu of '%s': time %g ms; expected >= 0", k, P->name, t[k]);
    }
    free(P->src_ids);
    free(P->src_t);
    P->src_ids = malloc((n ? n : 1) * sizeof *ids);
    P->src_t = malloc((n ? n : 1) * sizeof *t);
    if (!P->src_ids || !P->src_t) return SOMA_STATUS_NOMEM;
    if (n) {
        memcpy(P->src_ids, ids, n * sizeof *ids);
        memcpy(P->src_t, t, n * sizeof *t);
    }
    P->n_src = n;
    return 0;
}

int soma_parse_quantity(const char *text, const char *unit, double *out, char *err, size_t errlen) {
    if (!text || !unit || !out) return SOMA_STATUS_INVALID;
    soma__expr *e = NULL;
    double scale = 1;
    int rc = soma__expr_parse(text, NULL, 0, &e, err, errlen);
    if (!rc) rc = soma__expr_to_unit(e, unit, &scale, err, errlen);
    if (!rc && !soma__expr_is_const(e)) {
        if (err && errlen) snprintf(err, errlen, "'%s' is not a constant", text);
        rc = SOMA_STATUS_INVALID;
    }
    if (!rc) *out = soma__expr_eval(e, 0, 0, 1) * scale;
    soma__expr_free(e);
    return rc;
}
