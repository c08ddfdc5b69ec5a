/* sites.c — `soma sites FILE|MODEL`: the named sites of a network (where
 * hooks read, mask, override or take gradients), with the values each holds
 * per instance. FILE may be a network file (trainer or simulator sections)
 * or a model file; both executors name their sites alike, from the net. */
#include <string.h>
#include "cli.h"

static const char *kind_name(int kind) {
    static const char *const names[] = {"spikes", "state", "proj-in", "proj-out"};
    return kind >= 0 && kind < 4 ? names[kind] : "?";
}

int cli_sites(int argc, char **argv) {
    if (argc != 1 || argv[0][0] == '-') {
        fprintf(stderr, "usage: soma sites FILE.yaml|MODEL\n");
        return 2;
    }
    const char *path = argv[0];
    char err_model[1024] = "", err_file[1024] = "";
    soma_net *net = NULL;
    soma_sim_file_opts fo;
    if (soma_model_load(path, &net, NULL, NULL, err_model, sizeof err_model) != 0 &&
        soma_net_load_yaml(path, NULL, 0, &net, NULL, NULL, &fo, err_file, sizeof err_file) != 0) {
        fprintf(stderr, "soma sites: %s is neither a model file nor a network file:\n"
                        "  as a model file: %s\n  as a network file: %s\n",
                path, err_model, err_file);
        return 1;
    }
    size_t n = soma_net_site_count(net);
    printf("%s: %zu sites\n  %-36s %-9s %s\n", path, n, "SITE", "KIND", "VALUES");
    soma_site_info si;
    for (size_t i = 0; i < n; i++)
        if (soma_net_site(net, i, &si) == 0) printf("  %-36s %-9s %zu\n", si.name, kind_name(si.kind), si.size);
    soma_net_free(net);
    return 0;
}
