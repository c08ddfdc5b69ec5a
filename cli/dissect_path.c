/* dissect_path.c — `soma dissect MODEL path --class K`: the influential
 * neuron path of class K and the most-active baseline, both ablated
 * (soma_dissect_path_run), printed and written (result.json, path.png). */
#include "cli.h"

int cli_dissect_path(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s, const char *model,
                     size_t cls, const char *out) {
    char err[1024];
    soma_dissect_path p;
    if (soma_dissect_path_run(x, o, s, cls, 20, &p, err, sizeof err)) return fprintf(stderr, "soma dissect path: %s\n", err), 1;
    printf("class %zu: influential path (joint IG of P(class %zu), m = %zu, %zu samples):", cls, cls, p.steps, p.samples);
    for (size_t l = 0; l < p.layers; l++) {
        soma_pop_info pi;
        soma_net_pop_info(x->net, p.ig[l].pop, &pi);
        printf(" %s[%zu] (%.4g)", pi.name, p.ig[l].index, p.ig_joint[l]);
    }
    printf("\n  most active path:");
    for (size_t l = 0; l < p.layers; l++) {
        soma_pop_info pi;
        soma_net_pop_info(x->net, p.active[l].pop, &pi);
        printf(" %s[%zu] (rate %.4g)", pi.name, p.active[l].index, p.active_rate[l]);
    }
    printf("\n  ablated: class %zu accuracy %.2f%% -> %.2f%% (influential), %.2f%% (most active); "
           "overall %.2f%% -> %.2f%%, %.2f%%\n",
           cls, 100 * p.class_before, 100 * p.class_after_ig, 100 * p.class_after_active, 100 * p.acc_before,
           100 * p.acc_after_ig, 100 * p.acc_after_active);
    if (soma_dissect_write_path(s, &p, model, out, err, sizeof err)) return fprintf(stderr, "soma: %s\n", err), 1;
    printf("wrote %s/result.json, path.png\n", out);
    return 0;
}
