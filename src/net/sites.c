/* sites.c — the named sites of a net (see "hooks" in soma.h): for each
 * population its spikes and state variables, then for each projection its
 * input and output, then the same for each population's recurrent weights
 * (`h->h.in`, `h->h.out`; their proj is the projection count plus the
 * population's index). Computed from the description on every
 * call, so the table follows the net as it is edited. */
#include <stdio.h>
#include <string.h>
#include "net/net.h"

size_t soma_net_site_count(const soma_net *net) {
    if (!net) return 0;
    size_t n = 2 * net->nproj;
    for (size_t p = 0; p < net->npops; p++) n += 1 + net->pops[p].model->n_state + 2 * (net->pops[p].recurrent != 0);
    return n;
}

int soma_net_site(const soma_net *net, size_t i, soma_site_info *info) {
    if (!net || !info) return SOMA_STATUS_INVALID;
    memset(info, 0, sizeof *info);
    info->proj = (size_t)-1;
    for (size_t p = 0; p < net->npops; p++) {
        const soma__pop *P = &net->pops[p];
        size_t ns = P->model->n_state;
        if (i <= ns) {
            info->pop = info->from = p;
            if (i == 0) {
                info->kind = SOMA_SITE_SPIKES;
                info->size = P->size;
                snprintf(info->name, sizeof info->name, "%s.spikes", P->name);
            } else {
                info->kind = SOMA_SITE_STATE;
                info->state = i - 1;
                info->size = soma__state_width(P->model, P->prm, P->size, i - 1);
                snprintf(info->name, sizeof info->name, "%s.%s", P->name, P->model->state_names[i - 1]);
            }
            return SOMA_STATUS_OK;
        }
        i -= ns + 1;
    }
    if (i >= 2 * net->nproj) { /* recurrent weights: proj = nproj + the population */
        i -= 2 * net->nproj;
        for (size_t p = 0; p < net->npops; p++) {
            const soma__pop *P = &net->pops[p];
            if (!P->recurrent) continue;
            if (i < 2) {
                info->kind = i ? SOMA_SITE_PROJ_OUT : SOMA_SITE_PROJ_IN;
                info->proj = net->nproj + p;
                info->pop = info->from = p;
                info->size = P->size;
                snprintf(info->name, sizeof info->name, "%s->%s.%s", P->name, P->name, i ? "out" : "in");
                return SOMA_STATUS_OK;
            }
            i -= 2;
        }
        return SOMA_STATUS_INVALID;
    }
    const soma__proj *pj = &net->projs[i / 2];
    int out = (int)(i & 1);
    info->kind = out ? SOMA_SITE_PROJ_OUT : SOMA_SITE_PROJ_IN;
    info->proj = i / 2;
    info->pop = pj->to;
    info->from = pj->from;
    info->size = net->pops[out ? pj->to : pj->from].size;
    snprintf(info->name, sizeof info->name, "%s->%s.%s", net->pops[pj->from].name, net->pops[pj->to].name,
             out ? "out" : "in");
    return SOMA_STATUS_OK;
}

int soma_net_site_find(const soma_net *net, const char *name, size_t *index) {
    if (!net || !name) return SOMA_STATUS_INVALID;
    size_t n = soma_net_site_count(net);
    soma_site_info si;
    for (size_t i = 0; i < n; i++)
        if (soma_net_site(net, i, &si) == SOMA_STATUS_OK && strcmp(si.name, name) == 0) {
            if (index) *index = i;
            return SOMA_STATUS_OK;
        }
    return SOMA_STATUS_NOTFOUND;
}
