/* optim.c — SGD with momentum, Adam and AdamW over the flat parameter
 * buffer, with torch.optim's exact update rules, so one step is one loop. */
#include <math.h>
#include <stdlib.h>
#include "net/net.h"
#include "train/train.h"

int soma__optim_init(soma__optim *st, size_t n) {
    st->m = soma__alloc(n * sizeof(float));
    st->v = soma__alloc(n * sizeof(float));
    st->step = 0;
    if (!st->m || !st->v) {
        soma__optim_free(st);
        return SOMA_STATUS_NOMEM;
    }
    return SOMA_STATUS_OK;
}

void soma__optim_free(soma__optim *st) {
    free(st->m);
    free(st->v);
    st->m = st->v = NULL;
}

/* One parameter's update (torch.optim's rules). Only the entries a step
 * visits change: a frozen entry (soma__optim_step's learn mask) keeps its
 * value and its moments bit for bit, weight decay included. */
static inline void sgd_at(float *restrict p, float *restrict m, const float *restrict g, size_t i, float lr, float wd,
                          float mu, int first) {
    /* torch.optim.SGD: buf = momentum*buf + g (buf = g on the first step); p -= lr*buf */
    float gi = g[i] + wd * p[i];
    float b = mu > 0.0f ? (first ? gi : mu * m[i] + gi) : gi;
    m[i] = b;
    p[i] -= lr * b;
}

static inline void adam_at(float *restrict p, float *restrict m, float *restrict v, const float *restrict g, size_t i,
                           float lr, float wd, int decoupled, float b1, float b2, float eps, float step, float rbc2) {
    float gi = g[i];
    if (decoupled) p[i] *= 1.0f - lr * wd;
    else gi += wd * p[i];
    m[i] = b1 * m[i] + (1.0f - b1) * gi;
    v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
    p[i] -= step * m[i] / (sqrtf(v[i]) * rbc2 + eps);
}

void soma__optim_step(soma__optim *st, const soma_train_opts *o, float lr, float *restrict p, const float *restrict g,
                      const uint8_t *restrict learn, size_t n) {
    float *restrict m = st->m, *restrict v = st->v;
    float wd = o->weight_decay;
    st->step++;
    if (o->optimizer == SOMA_OPTIMIZER_SGD) {
        float mu = o->momentum;
        int first = st->step == 1;
        if (!learn) {
#pragma omp parallel for num_threads(o->threads > 0 ? o->threads : 1) schedule(static)
            for (size_t i = 0; i < n; i++) sgd_at(p, m, g, i, lr, wd, mu, first);
        } else {
#pragma omp parallel for num_threads(o->threads > 0 ? o->threads : 1) schedule(static)
            for (size_t i = 0; i < n; i++)
                if (learn[i]) sgd_at(p, m, g, i, lr, wd, mu, first);
        }
        return;
    }
    float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    float bc1 = 1.0f - powf(b1, (float)st->step), bc2 = 1.0f - powf(b2, (float)st->step);
    float step = lr / bc1, rbc2 = 1.0f / sqrtf(bc2);
    int decoupled = o->optimizer == SOMA_OPTIMIZER_ADAMW;
    if (!learn) {
#pragma omp parallel for num_threads(o->threads > 0 ? o->threads : 1) schedule(static)
        for (size_t i = 0; i < n; i++) adam_at(p, m, v, g, i, lr, wd, decoupled, b1, b2, eps, step, rbc2);
    } else {
#pragma omp parallel for num_threads(o->threads > 0 ? o->threads : 1) schedule(static)
        for (size_t i = 0; i < n; i++)
            if (learn[i]) adam_at(p, m, v, g, i, lr, wd, decoupled, b1, b2, eps, step, rbc2);
    }
}
