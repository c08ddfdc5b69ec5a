/* sim_data.c — a trained network in the simulator, fed from a data set
 * through the trainer's own encoders: one simulator per sample, so every
 * sample starts from the resting state as it does in the trainer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"

int soma_sim_run_samples(const soma_net *net, const soma_data_opts *d, const soma_dataset *ds, const size_t *idx,
                         size_t n, uint64_t seed, int threads, uint32_t *counts, char *err, size_t errlen) {
    if (!net || !d || !ds || (n && (!idx || !counts))) return SOMA_STATUS_INVALID;
    if (err && errlen) err[0] = 0;
    size_t in = (size_t)-1;
    for (size_t p = 0; p < net->npops; p++)
        if (net->pops[p].model == &soma__model_input) {
            if (in != (size_t)-1) {
                if (err) snprintf(err, errlen, "the network has two input populations ('%s' and '%s'); expected one",
                                  net->pops[in].name, net->pops[p].name);
                return SOMA_STATUS_UNSUPPORTED;
            }
            in = p;
        }
    if (in == (size_t)-1 || net->npops < 2) {
        if (err) snprintf(err, errlen, "the network has no input population (model: input) to feed the samples to");
        return SOMA_STATUS_INVALID;
    }
    if (net->pops[in].size != ds->dim) {
        if (err) snprintf(err, errlen, "samples have %zu values but the input population '%s' has %zu neurons", ds->dim,
                          net->pops[in].name, net->pops[in].size);
        return SOMA_STATUS_INVALID;
    }
    size_t out = net->npops - 1, C = net->pops[out].size, T = (size_t)d->steps;
    float *x = malloc(soma_encode_size(d, ds, 1) * sizeof(float));
    if (!x) return SOMA_STATUS_NOMEM;
    soma_sim_opts o;
    soma_sim_opts_default(&o);
    o.threads = threads;
    o.seed = seed;
    o.record_spikes = 1;
    int rc = 0;
    for (size_t k = 0; k < n && !rc; k++) {
        int tc = 0;
        /* The stream soma_train_evaluate encodes test samples with. */
        if ((rc = soma_encode(d, ds, &idx[k], 1, seed, SOMA_EVAL_STREAM, x, &tc))) {
            if (err) snprintf(err, errlen, "cannot encode sample %zu", idx[k]);
            break;
        }
        soma_sim *sim = NULL;
        if ((rc = soma_sim_create(&sim, net, &o, err, errlen))) break;
        for (size_t p = 0; p < net->npops; p++) soma_sim_record_spikes(sim, p, p == out);
        rc = soma_sim_set_input(sim, in, x, T, tc);
        uint64_t s0 = soma_sim_start_step(sim, out);
        soma_sim_stats st;
        soma_sim_stats_get(sim, &st);
        if (!rc) rc = soma_sim_run(sim, (double)(s0 + T) * st.dt_ms, NULL, NULL);
        if (rc) {
            if (err) snprintf(err, errlen, "sample %zu: %s", idx[k], soma_sim_errmsg(sim));
            soma_sim_free(sim);
            break;
        }
        soma_sim_pop_info info;
        soma_sim_pop(sim, out, &info);
        size_t ns = 0;
        const soma_spike *sp = soma_sim_spikes(sim, &ns);
        uint32_t *c = counts + k * C;
        memset(c, 0, C * sizeof *c);
        for (size_t j = 0; j < ns; j++)
            if (sp[j].step >= s0 && sp[j].step < s0 + T && sp[j].id >= info.first && sp[j].id < info.first + C)
                c[sp[j].id - info.first]++;
        soma_sim_free(sim);
    }
    free(x);
    return rc;
}
