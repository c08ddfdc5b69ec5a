/* ultra.h — the output stage shared by the UltraLIF family (ultralif.c,
 * ultradlif.c): from the log-sum-exp membrane u, the spike probability
 * s = sigmoid((u - theta)/eps) and the soft reset V = u (1 - s), forward and
 * backward, so both models use one definition. Both take ie = 1/eps (one
 * division per neuron, not per element) and use soma__expf_vec, so a loop
 * that calls them vectorizes. */
#ifndef SOMA_ULTRA_H
#define SOMA_ULTRA_H
#include "core/vmath.h"

/* Returns s; *v gets the membrane after the soft reset. */
static inline __attribute__((always_inline)) float ultra_fire(float u, float th, float ie, float *v) {
    float s = 1.0f / (1.0f + soma__expf_vec((th - u) * ie));
    *v = u * (1.0f - s);
    return s;
}

/* Backward of ultra_fire given gv = dL/dV and gs = dL/ds: returns dL/du;
 * *dth gets dL/dtheta and *deps the output stage's part of dL/deps. */
static inline __attribute__((always_inline)) float ultra_fire_backward(float u, float th, float ie, float gv, float gs,
                                                                       float *dth, float *deps) {
    float s = 1.0f / (1.0f + soma__expf_vec((th - u) * ie));
    float q = s * (1.0f - s) * ie;
    float gso = gs - gv * u; /* s also enters V through the reset */
    *dth = -gso * q;
    *deps = gso * (-q * (u - th) * ie);
    return gv * (1.0f - s) + gso * q;
}
#endif
