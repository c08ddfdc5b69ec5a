/* loss.c — losses on the output layer of a spiking network and their
 * gradients, as snnTorch's functional losses define them:
 *   ce_rate   (1/T) sum_t CE(softmax(S[t]), y)              dS[t] = (softmax(S[t]) - onehot)/T
 *   ce_count  CE(softmax(sum_t S[t]), y)                     dS[t] = softmax(C) - onehot
 *   mse_count mean_c (C_c - target_c)^2, target = floor(T*p)  dS[t] = 2 (C - target)/classes
 *   ce_mem    (1/T) sum_t CE(softmax(U[t]), y)              dU[t] = (softmax(U[t]) - onehot)/T
 *   ce_last   CE(softmax(U[T-1]), y)                         dU[T-1] = softmax(U[T-1]) - onehot
 * each averaged over the batch (the caller passes scale = 1/B). */
#include <math.h>
#include <string.h>
#include "train/train.h"

/* CE of one row z[C] with label y; writes softmax(z) - onehot(y) into g. */
static double ce_row(const float *z, size_t C, unsigned y, float *g) {
    float mx = z[0];
    for (size_t c = 1; c < C; c++) mx = z[c] > mx ? z[c] : mx;
    double sum = 0.0;
    for (size_t c = 0; c < C; c++) {
        g[c] = expf(z[c] - mx); /* in (0, 1]: no overflow */
        sum += g[c];
    }
    float inv = (float)(1.0 / sum);
    for (size_t c = 0; c < C; c++) g[c] = g[c] * inv - (c == y ? 1.0f : 0.0f);
    return (double)mx + log(sum) - (double)z[y];
}

double soma__loss(const soma_train_opts *o, const float *s, const float *u, size_t ustride, size_t T, size_t Bc,
                  size_t C, const uint8_t *y, float scale, float *ds, float *dv, int *dv_used) {
    double total = 0.0;
    float g[1024];
    float cnt[1024];
    *dv_used = 0;
    if (C > 1024) return NAN;
    size_t RB = Bc * C;
    switch (o->loss) {
    case SOMA_LOSS_CE_RATE:
    case SOMA_LOSS_CE_MEM: {
        int mem = o->loss == SOMA_LOSS_CE_MEM;
        float k = scale / (float)T;
        float *dst = mem ? dv : ds;
        if (mem) {
            memset(ds, 0, T * RB * sizeof *ds);
            *dv_used = 1;
        }
        for (size_t t = 0; t < T; t++)
            for (size_t b = 0; b < Bc; b++) {
                const float *z = mem ? u + t * ustride + b * C : s + t * RB + b * C;
                total += ce_row(z, C, y[b], g) / (double)T;
                float *d = dst + t * RB + b * C;
                for (size_t c = 0; c < C; c++) d[c] = k * g[c];
            }
        break;
    }
    case SOMA_LOSS_CE_COUNT:
    case SOMA_LOSS_MSE_COUNT:
        for (size_t b = 0; b < Bc; b++) {
            for (size_t c = 0; c < C; c++) cnt[c] = 0.0f;
            for (size_t t = 0; t < T; t++)
                for (size_t c = 0; c < C; c++) cnt[c] += s[t * RB + b * C + c];
            if (o->loss == SOMA_LOSS_CE_COUNT) {
                total += ce_row(cnt, C, y[b], g);
                for (size_t c = 0; c < C; c++) g[c] *= scale;
            } else {
                float on = floorf((float)T * o->correct_rate), off = floorf((float)T * o->incorrect_rate);
                double l = 0.0;
                for (size_t c = 0; c < C; c++) {
                    float e = cnt[c] - (c == y[b] ? on : off);
                    l += (double)e * e;
                    g[c] = scale * 2.0f * e / (float)C;
                }
                total += l / (double)C;
            }
            for (size_t t = 0; t < T; t++) memcpy(ds + t * RB + b * C, g, C * sizeof *g);
        }
        break;
    case SOMA_LOSS_CE_LAST:
        memset(ds, 0, T * RB * sizeof *ds);
        memset(dv, 0, T * RB * sizeof *dv);
        *dv_used = 1;
        for (size_t b = 0; b < Bc; b++) {
            float *d = dv + (T - 1) * RB + b * C;
            total += ce_row(u + (T - 1) * ustride + b * C, C, y[b], d);
            for (size_t c = 0; c < C; c++) d[c] *= scale;
        }
        break;
    default:
        return NAN;
    }
    return total;
}

void soma__readout(int readout, const float *s, const float *u, size_t ustride, size_t T, size_t Bc, size_t C,
                   uint8_t *pred) {
    float acc[1024];
    size_t RB = Bc * C;
    for (size_t b = 0; b < Bc; b++) {
        for (size_t c = 0; c < C && c < 1024; c++) acc[c] = 0.0f;
        for (size_t t = readout == SOMA_READOUT_LAST ? T - 1 : 0; t < T; t++)
            for (size_t c = 0; c < C && c < 1024; c++)
                acc[c] += readout != SOMA_READOUT_COUNT ? u[t * ustride + b * C + c] : s[t * RB + b * C + c];
        size_t best = 0;
        for (size_t c = 1; c < C && c < 1024; c++)
            if (acc[c] > acc[best]) best = c; /* strict: ties go to the lowest index, as argmax does */
        pred[b] = (uint8_t)best;
    }
}
