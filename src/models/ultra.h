/* ultra.h — the output stage shared by the UltraLIF family (ultralif.c,
 * ultradlif.c): from the log-sum-exp membrane u, the spike probability
 * s = sigmoid((u - theta)/eps) and the soft reset V = u (1 - s), forward and
 * backward, so both models use one definition. */
#ifndef SOMA_ULTRA_H
#define SOMA_ULTRA_H
#include <math.h>

/* Returns s; *v gets the membrane after the soft reset. */
static inline float ultra_fire(float u, float th, float eps, float *v) {
    float s = 1.0f / (1.0f + expf(-(u - th) / eps));
    *v = u * (1.0f - s);
    return s;
}

/* Backward of ultra_fire given gv = dL/dV and gs = dL/ds: returns dL/du;
 * *dth gets dL/dtheta and *deps the output stage's part of dL/deps. */
static inline float ultra_fire_backward(float u, float th, float eps, float gv, float gs, float *dth, float *deps) {
    float s = 1.0f / (1.0f + expf(-(u - th) / eps));
    float q = s * (1.0f - s) / eps;
    float gso = gs - gv * u; /* s also enters V through the reset */
    *dth = -gso * q;
    *deps = gso * (-q * (u - th) / eps);
    return gv * (1.0f - s) + gso * q;
}
#endif
