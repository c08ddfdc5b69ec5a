/* sparse.c — the trainer's view of a projection drawn by a connector.
 *
 * The simulator stores a sparse projection as synapses; the trainer's
 * kernels are dense. A sparse projection is therefore drawn once, exactly
 * as the simulator would draw it with the same seed (soma__proj_instantiate,
 * the same enumeration and keys), into a dense weight matrix W [to][from]
 * (multapses summed, the connector's weights as initial values) and a 0/1
 * mask of the pairs that have a synapse. The projection then becomes an
 * ordinary dense projection of the net (no bias), so every later step
 * (forward, backward, hooks and sites, model files, the simulator) sees a
 * dense projection; only the gradient is masked after each backward pass,
 * so an absent synapse's weight starts at 0 and, with a zero gradient,
 * stays exactly 0 through SGD, Adam and AdamW and their weight decay
 * (each moves a zero weight with a zero gradient by zero).
 *
 * The trainer feeds a projection within the step; the simulator runs a
 * dense projection with the delay that aligns it to that (one step along a
 * chain). A sparse projection is accepted when it asks for the same: a
 * delay of one step (the default), arriving on the model's one input.
 * A projection of a population onto itself is drawn the same way and
 * trained as that population's recurrent weights, which the trainer runs
 * on the previous step's spikes: the simulator's delay of one step. */
#include "train/sparse.h"
#include "core/err.h"
#include "proj/synapses.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* What keeps projection i from being trained as a masked dense projection;
 * 0 if nothing. */
static int check_proj(const soma_net *net, size_t i, char *err, size_t errlen) {
    const soma__proj *pr = &net->projs[i];
    const char *f = net->pops[pr->from].name, *t = net->pops[pr->to].name;
    const soma_model *m = net->pops[pr->to].model;
    /* A projection onto itself becomes the population's recurrent weights
     * (the trainer runs them on the previous step's spikes, as the
     * simulator does with a delay of one step): one such matrix. */
    if (pr->from == pr->to && net->pops[pr->from].recurrent)
        return soma__errf(err, errlen, SOMA_STATUS_UNSUPPORTED,
                          "projection %s -> %s (%s) connects a population to itself, and '%s' also has recurrent: true; "
                          "the trainer takes one recurrent weight matrix per population (the projection, or "
                          "recurrent: true)", f, t, soma_conn_rule_name(pr->c.rule), f);
    for (size_t k = 0; k < net->nproj; k++)
        if (k != i && net->projs[k].from == pr->from && net->projs[k].to == pr->to)
            return soma__errf(err, errlen, SOMA_STATUS_UNSUPPORTED,
                              "projections %zu and %zu both connect %s -> %s; the trainer takes one projection per pair "
                              "of populations", k < i ? k : i, k < i ? i : k, f, t);
    if (!soma__expr_is_const(pr->dv.e))
        return soma__errf(err, errlen, SOMA_STATUS_UNSUPPORTED,
                          "%s%sprojection %s -> %s: delay '%s' is drawn per synapse; the trainer feeds a projection within "
                          "the step, which the simulator runs as a delay of one step (%g ms, the default); the simulator "
                          "keeps other delays", pr->dv.where, pr->dv.where[0] ? ": " : "", f, t, pr->dv.text, net->dt);
    double d = soma__expr_eval(pr->dv.e, 0, 0, 1) * pr->dv.scale;
    if (llround(d / net->dt) != 1)
        return soma__errf(err, errlen, SOMA_STATUS_UNSUPPORTED,
                          "%s%sprojection %s -> %s: delay %g ms; the trainer feeds a projection within the step, which "
                          "the simulator runs as a delay of one step (%g ms, the default); the simulator keeps other "
                          "delays", pr->dv.where, pr->dv.where[0] ? ": " : "", f, t, d, net->dt);
    int port = pr->port == SOMA_PORT_BY_SIGN && m->n_ports < 2 ? 0 : pr->port;
    if (port != 0) {
        const char *p0 = m->n_ports && m->port_names ? m->port_names[0] : "0";
        return soma__errf(err, errlen, SOMA_STATUS_UNSUPPORTED,
                          "projection %s -> %s: port %s (model %s has %zu ports); the trainer feeds every projection, "
                          "of either sign, on the model's first port: expected port %s (the simulator keeps other ports)",
                          f, t, pr->port == SOMA_PORT_BY_SIGN ? "sign" : m->port_names ? m->port_names[port] : "?",
                          m->name, m->n_ports, p0);
    }
    return 0;
}

int soma__train_densify(soma_net *net, uint64_t seed, char *err, size_t errlen) {
    size_t ns = 0;
    for (size_t i = 0; i < net->nproj; i++) ns += net->projs[i].sparse;
    if (!ns) return 0;
    float **W = calloc(net->nproj, sizeof *W);
    uint8_t **mask = calloc(net->nproj, sizeof *mask);
    int st = 0;
    if (!W || !mask) {
        st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "out of memory");
        goto done;
    }
    /* Everything that can fail, before the net changes. */
    for (size_t i = 0; i < net->nproj && !st; i++) {
        const soma__proj *pr = &net->projs[i];
        if (!pr->sparse) continue;
        if ((st = check_proj(net, i, err, errlen))) break;
        size_t n = net->pops[pr->from].size * net->pops[pr->to].size;
        W[i] = malloc((n ? n : 1) * sizeof **W);
        mask[i] = malloc(n ? n : 1);
        if (!W[i] || !mask[i]) {
            st = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "out of memory for the %zu x %zu weights of %s -> %s",
                            net->pops[pr->to].size, net->pops[pr->from].size, net->pops[pr->from].name,
                            net->pops[pr->to].name);
            break;
        }
        char why[400];
        why[0] = 0;
        if ((st = soma__proj_instantiate(net, i, seed, W[i], mask[i], why, sizeof why)))
            soma__errf(err, errlen, st, "projection %s -> %s: %s", net->pops[pr->from].name, net->pops[pr->to].name,
                       why[0] ? why : "cannot draw its synapses");
    }
    if (st) goto done;
    /* A new layout with the projections dense; the values of the tensors
     * that existed carry over by name. */
    float *old = net->params;
    soma__tensor *old_t = net->tensors;
    size_t old_nt = net->ntensors;
    net->params = NULL;
    net->tensors = NULL;
    net->ntensors = 0;
    for (size_t i = 0; i < net->nproj; i++) {
        soma__proj *pr = &net->projs[i];
        if (!W[i]) continue;
        pr->sparse = 0;
        pr->bias = 0;
        pr->w = pr->b = NULL;
    }
    st = soma__net_alloc(net);
    if (!st && old)
        for (size_t k = 0; k < old_nt; k++)
            for (size_t j = 0; j < net->ntensors; j++)
                if (!strcmp(old_t[k].name, net->tensors[j].name) && old_t[k].rows == net->tensors[j].rows &&
                    old_t[k].cols == net->tensors[j].cols) {
                    memcpy(net->tensors[j].data, old_t[k].data, old_t[k].rows * old_t[k].cols * sizeof(float));
                    break;
                }
    free(old);
    free(old_t);
    if (!st && !net->initialised) st = soma_net_init_weights(net, seed);
    if (st) {
        soma__errf(err, errlen, st, "%s", net->errmsg);
        goto done;
    }
    for (size_t i = 0; i < net->nproj; i++) {
        soma__proj *pr = &net->projs[i];
        if (!W[i]) continue;
        memcpy(pr->w, W[i], net->pops[pr->from].size * net->pops[pr->to].size * sizeof(float));
        free(pr->mask);
        pr->mask = mask[i];
        mask[i] = NULL;
    }
done:
    if (W)
        for (size_t i = 0; i < net->nproj; i++) free(W[i]);
    if (mask)
        for (size_t i = 0; i < net->nproj; i++) free(mask[i]);
    free(W);
    free(mask);
    return st;
}

void soma__train_mask_grad(const soma_net *net, float *grad) {
    for (size_t i = 0; i < net->nproj; i++) {
        const soma__proj *pr = &net->projs[i];
        if (!pr->mask || !pr->w) continue;
        float *restrict g = grad + (pr->w - net->params);
        const uint8_t *restrict m = pr->mask;
        size_t n = net->pops[pr->from].size * net->pops[pr->to].size;
        for (size_t j = 0; j < n; j++)
            if (!m[j]) g[j] = 0.0f;
    }
}
