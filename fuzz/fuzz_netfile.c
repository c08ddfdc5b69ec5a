/* fuzz_netfile.c — libFuzzer harness for the one network-file loader
 * (soma_net_load_yaml: params, sets, network, data, train, simulate) and,
 * for what loads, the simulator's build under a small memory limit and the
 * trainer's checks. The loaders take paths, so each input is written to a
 * scratch file first. Run: make fuzz (see the Makefile). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "soma.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/soma-fuzz-net-%d.yaml", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    soma_net *net = NULL;
    soma_data_opts d;
    soma_train_opts t;
    soma_sim_file_opts so;
    char err[512];
    if (soma_net_load_yaml(path, NULL, 0, &net, &d, &t, &so, err, sizeof err) == 0) {
        soma_sim_opts o;
        soma_sim_opts_default(&o);
        o.threads = 1;
        o.memory_limit = 32e6; /* keep builds small: larger nets are refused before allocating */
        soma_sim *sim = NULL;
        if (soma_sim_create(&sim, net, &o, err, sizeof err) == 0) soma_sim_free(sim);
        soma_net_free(net);
    }
    return 0;
}
