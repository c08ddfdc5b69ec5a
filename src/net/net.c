/* net.c — building a network: populations of a neuron model, dense
 * projections, and the flat buffer of learnable parameters (weights,
 * biases, learnable neuron parameters) that executors and the optimizer
 * share, so an optimizer step is one flat loop. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "net/net.h"

void *soma__alloc(size_t bytes) {
    void *p = NULL;
    size_t n = (bytes + 63) / 64 * 64;
    if (n == 0) n = 64;
    if (posix_memalign(&p, 64, n) != 0) return NULL;
    memset(p, 0, n);
    return p;
}

int soma__net_fail(soma_net *net, int status, const char *fmt, ...) {
    if (net) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(net->errmsg, sizeof net->errmsg, fmt, ap);
        va_end(ap);
    }
    return status;
}

int soma_net_create(soma_net **out) {
    if (!out) return SOMA_STATUS_INVALID;
    *out = calloc(1, sizeof **out);
    return *out ? SOMA_STATUS_OK : SOMA_STATUS_NOMEM;
}

/* Drop the parameter buffer: the net changed shape. */
static void net_release(soma_net *net) {
    free(net->params);
    free(net->tensors);
    net->params = NULL;
    net->tensors = NULL;
    net->nparams = net->ntensors = 0;
    net->initialised = 0;
    for (size_t i = 0; i < net->npops; i++) {
        net->pops[i].rec_w = NULL;
        for (int k = 0; k < SOMA_MAX_PARAMS; k++) net->pops[i].prm_data[k] = NULL;
    }
    for (size_t i = 0; i < net->nproj; i++) net->projs[i].w = net->projs[i].b = NULL;
}

void soma_net_free(soma_net *net) {
    if (!net) return;
    net_release(net);
    free(net->pops);
    free(net->projs);
    free(net);
}

const char *soma_net_errmsg(const soma_net *net) { return net ? net->errmsg : ""; }

int soma_net_find_pop(const soma_net *net, const char *name, size_t *index) {
    for (size_t i = 0; i < net->npops; i++)
        if (strcmp(net->pops[i].name, name) == 0) {
            if (index) *index = i;
            return SOMA_STATUS_OK;
        }
    return SOMA_STATUS_NOTFOUND;
}

int soma_net_add_pop(soma_net *net, const char *name, const char *model, size_t size, size_t *index) {
    if (!net || !name || !model) return SOMA_STATUS_INVALID;
    const soma_model *m = soma_model_find(model);
    if (!m) return soma__net_fail(net, SOMA_STATUS_NOTFOUND, "unknown neuron model '%s'", model);
    if (size == 0) return soma__net_fail(net, SOMA_STATUS_INVALID, "population '%s': size must be positive", name);
    if (strlen(name) == 0 || strlen(name) >= sizeof net->pops[0].name)
        return soma__net_fail(net, SOMA_STATUS_INVALID, "population name '%s': must have 1 to 63 characters", name);
    if (soma_net_find_pop(net, name, NULL) == SOMA_STATUS_OK)
        return soma__net_fail(net, SOMA_STATUS_INVALID, "population '%s' defined twice", name);
    if (net->npops == net->cap_pops) {
        size_t cap = net->cap_pops ? 2 * net->cap_pops : 8;
        soma__pop *p = realloc(net->pops, cap * sizeof *p);
        if (!p) return SOMA_STATUS_NOMEM;
        net->pops = p;
        net->cap_pops = cap;
    }
    net_release(net);
    soma__pop *p = &net->pops[net->npops];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->model = m;
    p->size = size;
    for (size_t k = 0; k < m->n_params; k++) p->prm[k] = m->params[k].def;
    if (index) *index = net->npops;
    net->npops++;
    return SOMA_STATUS_OK;
}

static int check_pop(soma_net *net, size_t pop) {
    if (!net || pop >= net->npops)
        return soma__net_fail(net, SOMA_STATUS_INVALID, "population index %zu out of range", pop);
    return SOMA_STATUS_OK;
}

int soma_net_set_param(soma_net *net, size_t pop, const char *param, float value) {
    int st = check_pop(net, pop);
    if (st) return st;
    soma__pop *p = &net->pops[pop];
    int k = soma__model_param_index(p->model, param);
    if (k < 0) return soma__net_fail(net, SOMA_STATUS_NOTFOUND, "model '%s' has no parameter '%s'", p->model->name, param);
    const soma_param_desc *d = &p->model->params[k];
    if (!(value >= d->lo && value <= d->hi))
        return soma__net_fail(net, SOMA_STATUS_INVALID, "%s.%s = %g is outside [%g, %g]", p->name, param, value, d->lo, d->hi);
    p->prm[k] = value;
    /* A learnable parameter's tensor follows a new set value. */
    if (p->prm_data[k]) {
        size_t n = p->learn[k] == SOMA_LEARN_NEURON ? p->size : 1;
        for (size_t i = 0; i < n; i++) p->prm_data[k][i] = value;
    }
    return SOMA_STATUS_OK;
}

int soma_net_get_param(const soma_net *net, size_t pop, const char *param, float *value) {
    if (!net || pop >= net->npops) return SOMA_STATUS_INVALID;
    const soma__pop *p = &net->pops[pop];
    int k = soma__model_param_index(p->model, param);
    if (k < 0) return SOMA_STATUS_NOTFOUND;
    *value = p->prm[k];
    return SOMA_STATUS_OK;
}

int soma_net_set_learn(soma_net *net, size_t pop, const char *param, soma_learn how) {
    int st = check_pop(net, pop);
    if (st) return st;
    soma__pop *p = &net->pops[pop];
    int k = soma__model_param_index(p->model, param);
    if (k < 0) return soma__net_fail(net, SOMA_STATUS_NOTFOUND, "model '%s' has no parameter '%s'", p->model->name, param);
    if (how != SOMA_LEARN_NONE && !p->model->params[k].learnable)
        return soma__net_fail(net, SOMA_STATUS_INVALID, "%s.%s cannot be learned", p->name, param);
    if (how != SOMA_LEARN_NONE && how != SOMA_LEARN_LAYER && how != SOMA_LEARN_NEURON)
        return soma__net_fail(net, SOMA_STATUS_INVALID, "%s.%s: bad learn mode %d", p->name, param, (int)how);
    if (p->learn[k] != how) net_release(net);
    p->learn[k] = how;
    return SOMA_STATUS_OK;
}

soma_learn soma_net_get_learn(const soma_net *net, size_t pop, const char *param) {
    if (!net || pop >= net->npops) return SOMA_LEARN_NONE;
    int k = soma__model_param_index(net->pops[pop].model, param);
    return k < 0 ? SOMA_LEARN_NONE : net->pops[pop].learn[k];
}

int soma_net_set_recurrent(soma_net *net, size_t pop, int on) {
    int st = check_pop(net, pop);
    if (st) return st;
    if (on && !net->pops[pop].model->spiking)
        return soma__net_fail(net, SOMA_STATUS_INVALID, "population '%s' (model %s) cannot be recurrent",
                              net->pops[pop].name, net->pops[pop].model->name);
    if (net->pops[pop].recurrent != !!on) net_release(net);
    net->pops[pop].recurrent = !!on;
    return SOMA_STATUS_OK;
}

int soma_net_connect_dense(soma_net *net, size_t from, size_t to, int bias) {
    int st = check_pop(net, from);
    if (st || (st = check_pop(net, to))) return st;
    if (from == to)
        return soma__net_fail(net, SOMA_STATUS_INVALID, "projection %s -> %s: use 'recurrent: true' for a population onto itself",
                              net->pops[from].name, net->pops[to].name);
    if (!net->pops[to].model->spiking)
        return soma__net_fail(net, SOMA_STATUS_INVALID, "projection %s -> %s: an input population cannot receive a projection",
                              net->pops[from].name, net->pops[to].name);
    for (size_t i = 0; i < net->nproj; i++)
        if (net->projs[i].from == from && net->projs[i].to == to)
            return soma__net_fail(net, SOMA_STATUS_INVALID, "projection %s -> %s defined twice", net->pops[from].name,
                                  net->pops[to].name);
    if (net->nproj == net->cap_proj) {
        size_t cap = net->cap_proj ? 2 * net->cap_proj : 8;
        soma__proj *p = realloc(net->projs, cap * sizeof *p);
        if (!p) return SOMA_STATUS_NOMEM;
        net->projs = p;
        net->cap_proj = cap;
    }
    net_release(net);
    net->projs[net->nproj++] = (soma__proj){.from = from, .to = to, .bias = !!bias};
    return SOMA_STATUS_OK;
}

size_t soma_net_pop_count(const soma_net *net) { return net ? net->npops : 0; }

int soma_net_pop_info(const soma_net *net, size_t pop, soma_pop_info *info) {
    if (!net || pop >= net->npops || !info) return SOMA_STATUS_INVALID;
    const soma__pop *p = &net->pops[pop];
    info->name = p->name;
    info->model = p->model->name;
    info->size = p->size;
    info->recurrent = p->recurrent;
    return SOMA_STATUS_OK;
}

size_t soma_net_proj_count(const soma_net *net) { return net ? net->nproj : 0; }

int soma_net_proj_info(const soma_net *net, size_t i, size_t *from, size_t *to, int *bias) {
    if (!net || i >= net->nproj) return SOMA_STATUS_INVALID;
    if (from) *from = net->projs[i].from;
    if (to) *to = net->projs[i].to;
    if (bias) *bias = net->projs[i].bias;
    return SOMA_STATUS_OK;
}

/* Tensor table: projections (weight, bias) in order, then per population its
 * recurrent weight and learnable parameters. Two passes: count, then place. */
static size_t layout(soma_net *net, soma__tensor *t, float *base) {
    size_t nt = 0, off = 0;
#define ADD(NAME_FMT, A, B, ROWS, COLS, PTR)                                             \
    do {                                                                                 \
        if (t) {                                                                         \
            snprintf(t[nt].name, sizeof t[nt].name, NAME_FMT, A, B);                     \
            t[nt].rows = (ROWS);                                                         \
            t[nt].cols = (COLS);                                                         \
            t[nt].offset = off;                                                          \
            t[nt].data = base + off;                                                     \
            PTR = base + off;                                                            \
        }                                                                                \
        nt++;                                                                            \
        off += ((ROWS) * (COLS) + 15) / 16 * 16; /* keep every tensor 64-byte aligned */ \
    } while (0)
    for (size_t i = 0; i < net->nproj; i++) {
        soma__proj *pr = &net->projs[i];
        const char *f = net->pops[pr->from].name, *to = net->pops[pr->to].name;
        size_t rows = net->pops[pr->to].size, cols = net->pops[pr->from].size;
        ADD("%s->%s.weight", f, to, rows, cols, pr->w);
        if (pr->bias) ADD("%s->%s.bias", f, to, (size_t)1, rows, pr->b);
    }
    for (size_t i = 0; i < net->npops; i++) {
        soma__pop *p = &net->pops[i];
        if (p->recurrent) ADD("%s->%s.weight", p->name, p->name, p->size, p->size, p->rec_w);
        for (size_t k = 0; k < p->model->n_params; k++) {
            if (p->learn[k] == SOMA_LEARN_NONE) continue;
            size_t n = p->learn[k] == SOMA_LEARN_NEURON ? p->size : 1;
            ADD("%s.%s", p->name, p->model->params[k].name, (size_t)1, n, p->prm_data[k]);
        }
    }
#undef ADD
    if (t) net->nparams = off;
    return nt;
}

int soma__net_alloc(soma_net *net) {
    if (net->params) return SOMA_STATUS_OK;
    /* First pass: count tensors and floats. */
    size_t nt = 0, total = 0;
    for (size_t i = 0; i < net->nproj; i++) {
        size_t rows = net->pops[net->projs[i].to].size, cols = net->pops[net->projs[i].from].size;
        total += (rows * cols + 15) / 16 * 16;
        nt++;
        if (net->projs[i].bias) total += (rows + 15) / 16 * 16, nt++;
    }
    for (size_t i = 0; i < net->npops; i++) {
        soma__pop *p = &net->pops[i];
        if (p->recurrent) total += (p->size * p->size + 15) / 16 * 16, nt++;
        for (size_t k = 0; k < p->model->n_params; k++)
            if (p->learn[k] != SOMA_LEARN_NONE)
                total += ((p->learn[k] == SOMA_LEARN_NEURON ? p->size : 1) + 15) / 16 * 16, nt++;
    }
    net->params = soma__alloc(total * sizeof(float));
    net->tensors = calloc(nt ? nt : 1, sizeof *net->tensors);
    if (!net->params || !net->tensors) {
        free(net->params);
        free(net->tensors);
        net->params = NULL;
        net->tensors = NULL;
        return soma__net_fail(net, SOMA_STATUS_NOMEM, "cannot allocate %zu parameters", total);
    }
    net->ntensors = layout(net, net->tensors, net->params);
    /* Learnable neuron parameters start at their set values. */
    for (size_t i = 0; i < net->npops; i++) {
        soma__pop *p = &net->pops[i];
        for (size_t k = 0; k < p->model->n_params; k++) {
            if (!p->prm_data[k]) continue;
            size_t n = p->learn[k] == SOMA_LEARN_NEURON ? p->size : 1;
            for (size_t j = 0; j < n; j++) p->prm_data[k][j] = p->prm[k];
        }
    }
    return SOMA_STATUS_OK;
}

int soma_net_init_weights(soma_net *net, uint64_t seed) {
    if (!net) return SOMA_STATUS_INVALID;
    int st = soma__net_alloc(net);
    if (st) return st;
    /* torch.nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for
     * weight and bias. One counter-based stream per projection. */
    for (size_t i = 0; i < net->nproj; i++) {
        soma__proj *pr = &net->projs[i];
        size_t rows = net->pops[pr->to].size, cols = net->pops[pr->from].size;
        float bound = 1.0f / sqrtf((float)cols);
        soma_rng rng;
        soma_rng_init(&rng, seed, 2 * i);
        for (size_t j = 0; j < rows * cols; j++) pr->w[j] = bound * (2.0f * soma_rng_uniform(&rng) - 1.0f);
        if (pr->b) {
            soma_rng_init(&rng, seed, 2 * i + 1);
            for (size_t j = 0; j < rows; j++) pr->b[j] = bound * (2.0f * soma_rng_uniform(&rng) - 1.0f);
        }
    }
    for (size_t i = 0; i < net->npops; i++) {
        soma__pop *p = &net->pops[i];
        if (!p->recurrent) continue;
        float bound = 1.0f / sqrtf((float)p->size);
        soma_rng rng;
        soma_rng_init(&rng, seed, 0x10000 + i);
        for (size_t j = 0; j < p->size * p->size; j++) p->rec_w[j] = bound * (2.0f * soma_rng_uniform(&rng) - 1.0f);
    }
    net->initialised = 1;
    return SOMA_STATUS_OK;
}

size_t soma_net_tensor_count(soma_net *net) {
    if (!net || soma__net_alloc(net)) return 0;
    return net->ntensors;
}

int soma_net_tensor(soma_net *net, size_t i, soma_tensor *out) {
    if (!net || !out) return SOMA_STATUS_INVALID;
    int st = soma__net_alloc(net);
    if (st) return st;
    if (i >= net->ntensors) return SOMA_STATUS_INVALID;
    out->name = net->tensors[i].name;
    out->data = net->tensors[i].data;
    out->rows = net->tensors[i].rows;
    out->cols = net->tensors[i].cols;
    out->grad = NULL;
    return SOMA_STATUS_OK;
}

int soma_net_tensor_find(soma_net *net, const char *name, soma_tensor *out) {
    size_t n = soma_net_tensor_count(net);
    for (size_t i = 0; i < n; i++)
        if (strcmp(net->tensors[i].name, name) == 0) return soma_net_tensor(net, i, out);
    return soma__net_fail(net, SOMA_STATUS_NOTFOUND, "no tensor named '%s'", name);
}

size_t soma_net_param_count(soma_net *net) {
    size_t n = soma_net_tensor_count(net), total = 0;
    for (size_t i = 0; i < n; i++) total += net->tensors[i].rows * net->tensors[i].cols;
    return total;
}
