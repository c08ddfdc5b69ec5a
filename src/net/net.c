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
#include "core/err.h"
#include "core/names.h"
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
    if (!net) return status;
    /* A loader marks where the values it sets come from ("net.yaml:14"). */
    va_list ap;
    va_start(ap, fmt);
    soma__verrf(net->errmsg, sizeof net->errmsg, status, net->where[0] ? net->where : NULL, fmt, ap);
    va_end(ap);
    return status;
}

int soma_net_create(soma_net **out) {
    if (!out) return SOMA_STATUS_INVALID;
    *out = calloc(1, sizeof **out);
    if (!*out) return SOMA_STATUS_NOMEM;
    (*out)->dt = 0.1;
    return SOMA_STATUS_OK;
}

int soma_net_set_dt(soma_net *net, double dt_ms) {
    if (!net) return SOMA_STATUS_INVALID;
    if (!(dt_ms > 0) || dt_ms > 100)
        return soma__net_fail(net, SOMA_STATUS_INVALID, "time step %g ms: expected a value in (0, 100] ms", dt_ms);
    int drawn = net->ndrives > 0;
    for (size_t i = 0; i < net->nproj; i++) drawn |= net->projs[i].sparse;
    if (drawn)
        return soma__net_fail(net, SOMA_STATUS_INVALID,
                              "the time step must be set before any projection or Poisson input (delays and rates are checked against it)");
    net->dt = dt_ms;
    return SOMA_STATUS_OK;
}

double soma_net_dt(const soma_net *net) { return net ? net->dt : 0.0; }

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
        for (int k = 0; k < SOMA_MAX_WEIGHTS; k++) net->pops[i].cw[k] = NULL;
    }
    for (size_t i = 0; i < net->nproj; i++) net->projs[i].w = net->projs[i].b = NULL;
}

void soma_net_free(soma_net *net) {
    if (!net) return;
    net_release(net);
    for (size_t p = 0; p < net->npops; p++) {
        soma__pop *P = &net->pops[p];
        for (size_t k = 0; k < SOMA_MAX_PARAMS; k++) {
            soma__value_free(P->val[k]);
            free(P->val[k]);
        }
        for (size_t k = 0; k < SOMA_MAX_STATE; k++) {
            soma__value_free(P->init[k]);
            free(P->init[k]);
        }
        free(P->src_ids);
        free(P->src_t);
        free(P->st_t);
        free(P->st_v);
    }
    for (size_t i = 0; i < net->nproj; i++) {
        soma__value_free(&net->projs[i].wv);
        soma__value_free(&net->projs[i].dv);
        free(net->projs[i].path);
        free(net->projs[i].mask);
    }
    for (size_t i = 0; i < net->ndrives; i++) soma__value_free(&net->drives[i].w);
    for (size_t i = 0; i < net->nsyms; i++) free((char *)net->syms[i].name);
    free(net->syms);
    free(net->drives);
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
    if (strlen(name) == 0 || strlen(name) >= sizeof net->pops[0].name)
        return soma__net_fail(net, SOMA_STATUS_INVALID, "population name '%s': expected 1 to 63 characters", name);
    if (soma_net_find_pop(net, name, NULL) == SOMA_STATUS_OK)
        return soma__net_fail(net, SOMA_STATUS_INVALID, "population '%s' is defined twice", name);
    if (!m) {
        char names[600] = "";
        for (size_t i = 0; i < soma_model_count(); i++) soma__names_add(names, sizeof names, soma_model_name_at(i));
        return soma__net_fail(net, SOMA_STATUS_NOTFOUND, "population '%s': unknown model '%s'; expected one of: %s",
                              name, model, names);
    }
    if (size == 0 || size > (1u << 30))
        return soma__net_fail(net, SOMA_STATUS_INVALID, "population '%s': size %zu; expected 1 to 2^30 neurons", name,
                              size);
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
    p->shape[0] = size, p->shape[1] = p->shape[2] = 1, p->ndims = 1;
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
    /* A cell model's weight shapes may depend on its parameters: a new value
     * drops the weights (they are laid out and drawn again). */
    if (p->model->n_weights && p->prm[k] != value) net_release(net);
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

static int connect(soma_net *net, size_t from, size_t to, int bias, const soma_conv *cv) {
    int st = check_pop(net, from);
    if (st || (st = check_pop(net, to))) return st;
    const char *fn = net->pops[from].name, *tn = net->pops[to].name;
    if (from == to)
        return soma__net_fail(net, SOMA_STATUS_INVALID, "projection %s -> %s: use 'recurrent: true' for a population onto itself",
                              fn, tn);
    if (!net->pops[to].model->spiking)
        return soma__net_fail(net, SOMA_STATUS_INVALID, "projection %s -> %s: an input population cannot receive a projection",
                              fn, tn);
    for (size_t i = 0; i < net->nproj; i++)
        if (!net->projs[i].sparse && net->projs[i].from == from && net->projs[i].to == to)
            return soma__net_fail(net, SOMA_STATUS_INVALID, "projection %s -> %s defined twice", fn, tn);
    soma__proj pr = {.from = from, .to = to, .bias = !!bias};
    if (cv) {
        const size_t *a = net->pops[from].shape, *b = net->pops[to].shape;
        if (cv->kernel == 0 || cv->stride == 0)
            return soma__net_fail(net, SOMA_STATUS_INVALID, "conv %s -> %s: kernel and stride must be at least 1", fn, tn);
        if (cv->pool < SOMA_POOL_NONE || cv->pool > SOMA_POOL_MAX || (cv->pool && cv->pool_size == 0))
            return soma__net_fail(net, SOMA_STATUS_INVALID, "conv %s -> %s: pool must be none, avg, sum or max with a size >= 1",
                                  fn, tn);
        if (cv->pool == SOMA_POOL_MAX && cv->pool_size > 16)
            return soma__net_fail(net, SOMA_STATUS_INVALID, "conv %s -> %s: max pooling windows are at most 16x16", fn, tn);
        pr.conv = 1;
        pr.cv = *cv;
        if (!cv->pool) pr.cv.pool_size = 1;
        pr.cin = a[0], pr.ih = a[1], pr.iw = a[2], pr.cout = b[0];
        if (a[1] + 2 * cv->padding < cv->kernel || a[2] + 2 * cv->padding < cv->kernel)
            return soma__net_fail(net, SOMA_STATUS_INVALID,
                                  "conv %s -> %s: kernel %zu is larger than the padded input %zux%zu (shape of %s: %zux%zux%zu)",
                                  fn, tn, cv->kernel, a[1] + 2 * cv->padding, a[2] + 2 * cv->padding, fn, a[0], a[1], a[2]);
        pr.oh = (a[1] + 2 * cv->padding - cv->kernel) / cv->stride + 1;
        pr.ow = (a[2] + 2 * cv->padding - cv->kernel) / cv->stride + 1;
        pr.ph = pr.oh / pr.cv.pool_size, pr.pw = pr.ow / pr.cv.pool_size;
        if (pr.ph == 0 || pr.pw == 0 || b[1] != pr.ph || b[2] != pr.pw)
            return soma__net_fail(net, SOMA_STATUS_INVALID,
                                  "conv %s -> %s: the input %zux%zux%zu gives %zux%zu outputs per channel%s (%zux%zu); "
                                  "the shape of %s must be [channels, %zu, %zu], not %zux%zux%zu",
                                  fn, tn, a[0], a[1], a[2], pr.oh, pr.ow, cv->pool ? ", pooled" : "", pr.ph, pr.pw, tn,
                                  pr.ph, pr.pw, b[0], b[1], b[2]);
    }
    return soma__net_add_proj(net, &pr);
}

int soma__net_add_proj(soma_net *net, const soma__proj *pr) {
    if (net->nproj == net->cap_proj) {
        size_t cap = net->cap_proj ? 2 * net->cap_proj : 8;
        soma__proj *p = realloc(net->projs, cap * sizeof *p);
        if (!p) return SOMA_STATUS_NOMEM;
        net->projs = p;
        net->cap_proj = cap;
    }
    net_release(net);
    net->projs[net->nproj++] = *pr;
    return SOMA_STATUS_OK;
}

int soma_net_connect_dense(soma_net *net, size_t from, size_t to, int bias) { return connect(net, from, to, bias, NULL); }

int soma_net_connect_conv(soma_net *net, size_t from, size_t to, int bias, const soma_conv *conv) {
    if (!conv) return soma__net_fail(net, SOMA_STATUS_INVALID, "conv: no geometry given");
    return connect(net, from, to, bias, conv);
}

int soma_net_proj_conv(const soma_net *net, size_t i, soma_conv *conv) {
    if (!net || i >= net->nproj) return SOMA_STATUS_INVALID;
    if (!net->projs[i].conv) return 0;
    if (conv) *conv = net->projs[i].cv;
    return 1;
}

int soma_pool_find(const char *name) {
    static const char *const names[] = {"none", "avg", "sum", "max"};
    for (int i = 0; i < 4; i++)
        if (name && strcmp(name, names[i]) == 0) return i;
    return -1;
}

const char *soma_pool_name(int pool) {
    static const char *const names[] = {"none", "avg", "sum", "max"};
    return pool >= 0 && pool < 4 ? names[pool] : NULL;
}

int soma_net_set_shape(soma_net *net, size_t pop, const size_t *dims, size_t ndims) {
    int st = check_pop(net, pop);
    if (st) return st;
    soma__pop *p = &net->pops[pop];
    if (!dims || ndims < 1 || ndims > 3)
        return soma__net_fail(net, SOMA_STATUS_INVALID, "population '%s': a shape has 1 to 3 dimensions", p->name);
    size_t prod = 1, d[3] = {1, 1, 1};
    for (size_t i = 0; i < ndims; i++) {
        if (dims[i] == 0) return soma__net_fail(net, SOMA_STATUS_INVALID, "population '%s': shape dimension %zu is 0", p->name, i);
        d[i] = dims[i];
        prod *= dims[i];
    }
    if (prod != p->size)
        return soma__net_fail(net, SOMA_STATUS_INVALID, "population '%s': shape %zux%zux%zu has %zu neurons, but its size is %zu",
                              p->name, d[0], d[1], d[2], prod, p->size);
    for (size_t i = 0; i < net->nproj; i++)
        if (net->projs[i].conv && (net->projs[i].from == pop || net->projs[i].to == pop))
            return soma__net_fail(net, SOMA_STATUS_INVALID, "population '%s': set its shape before connecting convolutions",
                                  p->name);
    memcpy(p->shape, d, sizeof d);
    p->ndims = ndims;
    return SOMA_STATUS_OK;
}

int soma_net_get_shape(const soma_net *net, size_t pop, size_t dims[3], size_t *ndims) {
    if (!net || pop >= net->npops || !dims) return SOMA_STATUS_INVALID;
    memcpy(dims, net->pops[pop].shape, 3 * sizeof *dims);
    if (ndims) *ndims = net->pops[pop].ndims;
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
 * recurrent weight, learnable parameters and (cell models) its own weights.
 * Called twice: with t == NULL to count tensors and floats, then to place them. */
static size_t layout(soma_net *net, soma__tensor *t, float *base, size_t *floats, size_t *exact) {
    size_t nt = 0, off = 0, sum = 0;
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
        sum += (ROWS) * (COLS);                                                          \
        off += ((ROWS) * (COLS) + 15) / 16 * 16; /* keep every tensor 64-byte aligned */ \
    } while (0)
    for (size_t i = 0; i < net->nproj; i++) {
        soma__proj *pr = &net->projs[i];
        if (pr->sparse) continue; /* synapses drawn by the simulator, no tensor */
        const char *f = net->pops[pr->from].name, *to = net->pops[pr->to].name;
        size_t rows = soma__proj_rows(net, pr), cols = soma__proj_cols(net, pr);
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
        for (size_t k = 0; k < p->model->n_weights; k++) {
            size_t r = 0, c = 0;
            p->model->weight_shape(p->prm, p->size, k, &r, &c);
            ADD("%s.%s", p->name, p->model->weight_names[k], r, c, p->cw[k]);
        }
    }
#undef ADD
    if (t) net->nparams = off;
    if (floats) *floats = off;
    if (exact) *exact = sum;
    return nt;
}

size_t soma_net_param_need(const soma_net *net) {
    size_t floats = 0;
    if (net) layout((soma_net *)net, NULL, NULL, NULL, &floats);
    return floats;
}

int soma__net_alloc(soma_net *net) {
    if (net->params) return SOMA_STATUS_OK;
    size_t total = 0, nt = layout(net, NULL, NULL, &total, NULL);
    net->params = soma__alloc(total * sizeof(float));
    net->tensors = calloc(nt ? nt : 1, sizeof *net->tensors);
    if (!net->params || !net->tensors) {
        free(net->params);
        free(net->tensors);
        net->params = NULL;
        net->tensors = NULL;
        return soma__net_fail(net, SOMA_STATUS_NOMEM, "cannot allocate %zu parameters", total);
    }
    net->ntensors = layout(net, net->tensors, net->params, NULL, NULL);
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
        if (pr->sparse) continue;
        size_t rows = soma__proj_rows(net, pr), cols = soma__proj_cols(net, pr);
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
    /* Cell models initialise their own weights, one stream per tensor. */
    for (size_t i = 0; i < net->npops; i++) {
        soma__pop *p = &net->pops[i];
        for (size_t k = 0; k < p->model->n_weights; k++) {
            soma_rng rng;
            soma_rng_init(&rng, seed, 0x20000 + 64 * i + k);
            p->model->weight_init(p->prm, p->size, k, p->cw[k], &rng);
        }
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
