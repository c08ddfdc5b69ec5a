/* surrogate.c — surrogate gradients dS/dU for the Heaviside spike function,
 * as a name -> function table. Each is evaluated a whole row at a time so the
 * per-neuron loops vectorize and the choice costs one switch per row.
 *   fast_sigmoid     1/(k|x|+1)^2                 k = 25  (Zenke & Ganguli 2018)
 *   atan             (a/2)/(1+(pi a x/2)^2)       a = 2   (Fang et al. 2021)
 *   sigmoid          k e^{-kx}/(1+e^{-kx})^2      k = 25
 *   triangular       max(0, 1-|x|/w)/w            w = 1   (Bellec et al. 2018)
 *   straight_through 1
 * These match snnTorch's surrogate module with the same parameters. */
#include <math.h>
#include <string.h>
#include "core/names.h"
#include "models/model.h"

static const char *const names[] = {"fast_sigmoid", "atan", "sigmoid", "triangular", "straight_through"};
static const float defaults[] = {25.0f, 2.0f, 25.0f, 1.0f, 1.0f};
#define N_SURR 5

int soma_surrogate_find(const char *name) { return soma__name_find(names, N_SURR, name); }
const char *soma_surrogate_name(int which) { return soma__name_at(names, N_SURR, which); }
float soma_surrogate_default_param(int which) { return which >= 0 && which < N_SURR ? defaults[which] : 0.0f; }

void soma__surrogate_row(int which, float p, const float *restrict x, float *restrict out, size_t n) {
    switch (which) {
    case SOMA_SURROGATE_FAST_SIGMOID:
        for (size_t i = 0; i < n; i++) {
            float d = p * fabsf(x[i]) + 1.0f;
            out[i] = 1.0f / (d * d);
        }
        break;
    case SOMA_SURROGATE_ATAN: {
        float c = 3.14159265358979f * 0.5f * p, h = 0.5f * p;
        for (size_t i = 0; i < n; i++) {
            float z = c * x[i];
            out[i] = h / (1.0f + z * z);
        }
        break;
    }
    case SOMA_SURROGATE_SIGMOID:
        for (size_t i = 0; i < n; i++) {
            float e = expf(-p * fabsf(x[i])); /* symmetric in x; |x| avoids overflow */
            float d = 1.0f + e;
            out[i] = p * e / (d * d);
        }
        break;
    case SOMA_SURROGATE_TRIANGULAR: {
        float iw = 1.0f / p;
        for (size_t i = 0; i < n; i++) {
            float v = 1.0f - fabsf(x[i]) * iw;
            out[i] = (v > 0.0f ? v : 0.0f) * iw;
        }
        break;
    }
    default:
        for (size_t i = 0; i < n; i++) out[i] = 1.0f;
        break;
    }
}

float soma_surrogate_eval(int which, float param, float x) {
    float out;
    if (param <= 0.0f) param = soma_surrogate_default_param(which);
    soma__surrogate_row(which, param, &x, &out, 1);
    return out;
}
