/* test_examples.c — every experiment file in examples/ loads and gives a net
 * the trainer accepts, with the options its comments promise. */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

int main(void) {
    const char *dir = getenv("SOMA_EXAMPLES");
    if (!dir) dir = "examples";
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s", dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".yaml") != 0) continue;
        char path[1200], err[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        soma_net *net = NULL;
        soma_data_opts dopt;
        soma_train_opts topt;
        int st = soma_experiment_load(path, &net, &dopt, &topt, err, sizeof err);
        CHECK_MSG(st == 0, "%s", err);
        if (st) continue;
        soma_trainer *tr = NULL;
        st = soma_train_create(&tr, net, &topt, &dopt);
        CHECK_MSG(st == 0, "%s: %s", e->d_name, soma_net_errmsg(net));
        if (strstr(e->d_name, "ultralif-t1")) {
            /* UltraPLIF as in the paper: T = 1, hidden 64, rate code 0.5, Adam 1e-3, lambda 0.1 */
            size_t h;
            CHECK(soma_net_find_pop(net, "hidden", &h) == 0 && soma_net_get_learn(net, h, "log_tau") == SOMA_LEARN_NEURON);
            CHECK(dopt.steps == 1 && dopt.encoding == SOMA_ENCODING_RATE && dopt.gain == 0.5f);
            CHECK(topt.lr == 1e-3f && topt.rate_penalty == 0.1f && topt.batch == 128);
        }
        soma_train_free(tr);
        soma_net_free(net);
        n++;
    }
    if (d) closedir(d);
    CHECK_MSG(n >= 4, "found %d example files", n);
    return t_report("test_examples");
}
