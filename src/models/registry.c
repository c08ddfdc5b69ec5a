/* registry.c — the list of neuron models, looked up by name. Adding a model
 * is one file in src/models/ and one line here. */
#include <stdio.h>
#include <string.h>
#include "models/model.h"

static const soma_model *const models[] = {
    &soma__model_input,
    &soma__model_lif,
    &soma__model_synaptic,
    &soma__model_ann,
    &soma__model_ultralif,
    &soma__model_ultradlif,
    &soma__model_alif,
    &soma__model_meta_lif,
    &soma__model_cfc,
    &soma__model_ltc,
    &soma__model_l2mu,
    &soma__model_elm,
    /* Simulator models (forward NULL: the trainer refuses them). */
    &soma__model_iaf_psc_delta,
    &soma__model_iaf_psc_exp,
    &soma__model_iaf_psc_alpha,
    &soma__model_lif_cuba,
    &soma__model_lif_coba,
    &soma__model_izhikevich,
    &soma__model_adex,
    &soma__model_poisson,
    &soma__model_spike_source,
};
#define N_MODELS (sizeof models / sizeof models[0])

const soma_model *soma_model_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < N_MODELS; i++)
        if (strcmp(models[i]->name, name) == 0) return models[i];
    return NULL;
}
size_t soma_model_count(void) { return N_MODELS; }
const char *soma_model_name_at(size_t i) { return i < N_MODELS ? models[i]->name : NULL; }
const char *soma_model_name(const soma_model *m) { return m ? m->name : NULL; }
const soma_param_desc *soma_model_params(const soma_model *m, size_t *count) {
    if (count) *count = m ? m->n_params : 0;
    return m ? m->params : NULL;
}
void soma__model_trainable_names(char *buf, size_t cap) {
    size_t len = 0;
    if (cap) buf[0] = 0;
    for (size_t i = 0; i < N_MODELS && len + 1 < cap; i++) {
        if (!soma__model_trainable(models[i])) continue;
        int k = snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", models[i]->name);
        if (k < 0) break;
        len = len + (size_t)k < cap ? len + (size_t)k : cap - 1;
    }
}
int soma__model_param_index(const soma_model *m, const char *name) {
    for (size_t i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0) return (int)i;
    return -1;
}

int soma_model_is_simulator(const soma_model *m) {
    return m && (m->sim_step != NULL || m == &soma__model_spike_source);
}
int soma_model_is_trainable(const soma_model *m) { return soma__model_trainable(m); }
