/* synapses.c — a sparse projection's synapses as a dense weight matrix and
 * a 0/1 mask, drawn exactly as the simulator draws them (synapses.h): the
 * same enumeration (soma__connect_each), the same connectivity key, the
 * same weight of each synapse. The trainer trains that matrix, its
 * gradient masked, so the synapses the simulator would make are the only
 * ones that ever hold a weight. */
#include "proj/synapses.h"
#include "core/err.h"

#include <math.h>
#include <string.h>

typedef struct fill_ctx {
    const soma_net *net;
    const soma__proj *pr;
    size_t n_pre;
    uint64_t kw;
    float *W;
    uint8_t *mask;
    char *err;
    size_t errlen;
} fill_ctx;

static int on_synapse(void *user, uint32_t pre, uint32_t post, uint64_t edge, const double *w, const double *d) {
    fill_ctx *c = user;
    if (d && llround(*d / c->net->dt) != 1)
        return soma__errf(c->err, c->errlen, SOMA_STATUS_UNSUPPORTED,
                          "synapse %llu (%u -> %u) of %s has a delay of %g ms; the trainer feeds a projection within "
                          "the step, which the simulator runs as a delay of one step (%g ms); the simulator keeps "
                          "other delays", (unsigned long long)edge, pre, post, c->pr->path ? c->pr->path : "the edge list",
                          *d, c->net->dt);
    size_t k = (size_t)post * c->n_pre + pre;
    c->W[k] += (float)soma__syn_weight(c->pr, c->kw, edge, w);
    c->mask[k] = 1;
    return 0;
}

int soma__proj_instantiate(const soma_net *net, size_t i, uint64_t seed, float *W, uint8_t *mask, char *err,
                           size_t errlen) {
    const soma__proj *pr = &net->projs[i];
    size_t n_pre = net->pops[pr->from].size, n_post = net->pops[pr->to].size;
    memset(W, 0, n_pre * n_post * sizeof *W);
    memset(mask, 0, n_pre * n_post);
    fill_ctx c = {net, pr, n_pre, soma__sim_key(seed, SOMA__KEY_WEIGHT, i), W, mask, err, errlen};
    return soma__connect_each(&pr->c, n_pre, n_post, pr->from == pr->to, soma__sim_key(seed, SOMA__KEY_CONN, i),
                              on_synapse, &c, err, errlen);
}
