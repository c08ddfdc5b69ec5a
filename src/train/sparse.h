/* sparse.h — sparse projections in the trainer (sparse.c): each is drawn
 * as the simulator draws it and becomes a dense projection whose absent
 * synapses stay exactly 0 (a mask on the weight gradient). */
#ifndef SOMA_TRAIN_SPARSE_H
#define SOMA_TRAIN_SPARSE_H
#include <stddef.h>
#include <stdint.h>
#include "net/net.h"

/* Turn every sparse projection of net into a dense one (no bias) holding
 * the synapses the simulator draws with `seed` (proj/synapses.h): their
 * weights, multapses summed, and pr->mask. Lays out net->params (keeping
 * the values of tensors that existed) and draws the other weights if the
 * net had none (soma_net_init_weights with seed). Refused, by name, before
 * the net changes: a delay other than one step, a port other than the
 * model's one input, a sparse projection of a population onto itself
 * when the population also has recurrent: true, two projections between
 * the same populations (two onto one population itself among them). A
 * projection onto itself becomes the population's recurrent weights. No sparse projection: 0 and
 * nothing changes. */
int soma__train_densify(soma_net *net, uint64_t seed, char *err, size_t errlen);
/* Zero the gradient of every absent synapse of a masked projection
 * (grad mirrors net->params). */
void soma__train_mask_grad(const soma_net *net, float *grad);
#endif
