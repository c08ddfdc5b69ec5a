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

void soma__optim_step(soma__optim *st, const soma_train_opts *o, float lr, float *restrict p, const float *restrict g,
                      size_t n) {
    float *restrict m = st->m, *restrict v = st->v;
    float wd = o->weight_decay;
    st->step++;
    if (o->optimizer == SOMA_OPTIMIZER_SGD) {
        /* torch.optim.SGD: buf = momentum*buf + g (buf = g on the first step); p -= lr*buf */
        float mu = o->momentum;
        int first = st->step == 1;
#pragma omp parallel for num_threads(o->threads > 0 ? o->threads : 1) schedule(static)
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] + wd * p[i];
            float b = mu > 0.0f ? (first ? gi : mu * m[i] + gi) : gi;
            m[i] = b;
            p[i] -= lr * b;
        }
        return;
    }
    float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
    float bc1 = 1.0f - powf(b1, (float)st->step), bc2 = 1.0f - powf(b2, (float)st->step);
    float step = lr / bc1, rbc2 = 1.0f / sqrtf(bc2);
    int decoupled = o->optimizer == SOMA_OPTIMIZER_ADAMW;
#pragma omp parallel for num_threads(o->threads > 0 ? o->threads : 1) schedule(static)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        if (decoupled) p[i] *= 1.0f - lr * wd;
        else gi += wd * p[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        p[i] -= step * m[i] / (sqrtf(v[i]) * rbc2 + eps);
    }
}
