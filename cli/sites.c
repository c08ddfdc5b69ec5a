/* sites.c — `soma sites FILE|MODEL`: the named sites of a network (where
 * hooks read, mask, override or take gradients), with the values each holds
 * per instance. FILE may be an experiment file, a simulator network file or
 * a model file; the loaders are tried in turn and the first that loads wins. */
#include <string.h>
#include "cli.h"

static const char *kind_name(int kind) {
    static const char *const names[] = {"spikes", "state", "proj-in", "proj-out"};
    return kind >= 0 && kind < 4 ? names[kind] : "?";
}

static void print_site(const soma_site_info *si) { printf("  %-36s %-9s %zu\n", si->name, kind_name(si->kind), si->size); }

int cli_sites(int argc, char **argv) {
    if (argc != 1 || argv[0][0] == '-') {
        fprintf(stderr, "usage: soma sites FILE.yaml|MODEL\n");
        return 2;
    }
    const char *path = argv[0];
    char err_model[1024] = "", err_exp[1024] = "", err_sim[1024] = "";
    soma_net *net = NULL;
    if (soma_model_load(path, &net, NULL, NULL, err_model, sizeof err_model) == 0 ||
        soma_experiment_load(path, &net, NULL, NULL, err_exp, sizeof err_exp) == 0) {
        size_t n = soma_net_site_count(net);
        printf("%s: %zu sites (trainer network)\n  %-36s %-9s %s\n", path, n, "SITE", "KIND", "VALUES");
        soma_site_info si;
        for (size_t i = 0; i < n; i++)
            if (soma_net_site(net, i, &si) == 0) print_site(&si);
        soma_net_free(net);
        return 0;
    }
    soma_simnet *sn = NULL;
    soma_sim_file_opts fo;
    if (soma_simnet_load_yaml(path, NULL, 0, &sn, &fo, err_sim, sizeof err_sim) == 0) {
        /* The simulator names its sites once built (connectivity drawn). */
        soma_sim_opts o;
        soma_sim_opts_default(&o);
        o.threads = 1;
        o.record_spikes = 0;
        soma_sim *sim = NULL;
        if (soma_sim_create(&sim, sn, &o, err_sim, sizeof err_sim)) {
            fprintf(stderr, "soma sites: %s: %s\n", path, err_sim);
            soma_simnet_free(sn);
            return 1;
        }
        size_t n = soma_sim_site_count(sim);
        printf("%s: %zu sites (simulator network)\n  %-36s %-9s %s\n", path, n, "SITE", "KIND", "VALUES");
        soma_site_info si;
        for (size_t i = 0; i < n; i++)
            if (soma_sim_site(sim, i, &si) == 0) print_site(&si);
        soma_sim_free(sim);
        soma_simnet_free(sn);
        return 0;
    }
    fprintf(stderr, "soma sites: %s is neither a model file, an experiment file nor a simulator network file:\n"
                    "  as a model file: %s\n  as an experiment file: %s\n  as a simulator network file: %s\n",
            path, err_model, err_exp, err_sim);
    return 1;
}
