/* train.h — internal pieces of the BPTT trainer: losses, optimizers and a
 * hook for tests. */
#ifndef SOMA_TRAIN_H
#define SOMA_TRAIN_H
#include <stddef.h>
#include <stdint.h>
#include "soma.h"

/* Loss of Bc samples from the output layer over T steps, and its gradients.
 * s: spikes, s + t*Bc*C; u: membrane of step t at u + t*ustride (rows of C).
 * scale = 1/B (the full batch). Writes ds[T][Bc][C] (and dv[T][Bc][C] for
 * membrane losses; *dv_used tells). Returns the summed (not averaged) loss of
 * the Bc samples, i.e. already multiplied by scale*B... see trainer. */
double soma__loss(const soma_train_opts *o, const float *s, const float *u, size_t ustride, size_t T, size_t Bc,
                  size_t C, const uint8_t *y, float scale, float *ds, float *dv, int *dv_used);
/* Predicted classes of Bc samples by readout (ties -> lowest index). */
void soma__readout(int readout, const float *s, const float *u, size_t ustride, size_t T, size_t Bc, size_t C,
                   uint8_t *pred);

/* Optimizer state mirroring the flat parameter buffer. */
typedef struct soma__optim {
    float *m, *v; /* moments (Adam) or momentum buffer (SGD: m) */
    long step;
} soma__optim;
int soma__optim_init(soma__optim *st, size_t n);
void soma__optim_free(soma__optim *st);
/* One step on p[n] with gradient g[n] at learning rate lr. learn [n] (may
 * be NULL: all learn): entries with learn[i] == 0 are skipped, their value
 * and moments left exactly as they were (soma_train_set_learn_mask). */
void soma__optim_step(soma__optim *st, const soma_train_opts *o, float lr, float *p, const float *g,
                      const uint8_t *learn, size_t n);

/* Force the kernel path (soma__conv_path, proj/conv.h) of every convolution
 * layer of a created trainer: tests compare the paths' gradients. */
void soma__train_set_conv_path(soma_trainer *tr, int path);
#endif
