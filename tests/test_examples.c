/* test_examples.c — every experiment file in examples/ loads and gives a net
 * the trainer accepts, with the options its comments promise; every neuron
 * model round-trips through a model file. */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "models/model.h"
#include "testlib.h"

/* Every registered trainable neuron model round-trips through a model file
 * with its parameters, learn modes and weights (simulator models are refused
 * by soma_net_add_pop: test_sim_models checks that). */
static void test_models_round_trip(void) {
    const char *dir = t_tmpdir("examples");
    for (size_t m = 0; m < soma_model_count(); m++) {
        const char *name = soma_model_name_at(m);
        if (strcmp(name, "input") == 0 || !soma__model_trainable(soma_model_find(name))) continue;
        soma_net *net;
        soma_net_create(&net);
        size_t in, h, out;
        soma_net_add_pop(net, "in", "input", 4, &in);
        CHECK(soma_net_add_pop(net, "h", name, 5, &h) == 0);
        soma_net_add_pop(net, "out", "lif", 2, &out);
        size_t np;
        const soma_param_desc *d = soma_model_params(soma_model_find(name), &np);
        for (size_t k = 0; k < np; k++)
            if (d[k].learnable) soma_net_set_learn(net, h, d[k].name, k % 2 ? SOMA_LEARN_NEURON : SOMA_LEARN_LAYER);
        soma_net_connect_dense(net, in, h, 1);
        soma_net_connect_dense(net, h, out, 1);
        soma_net_init_weights(net, 9);
        char path[700], err[512];
        snprintf(path, sizeof path, "%s/%s.soma", dir, name);
        CHECK_MSG(soma_model_save(path, net, NULL, NULL, err, sizeof err) == 0, "%s", err);
        soma_net *back = NULL;
        CHECK_MSG(soma_model_load(path, &back, NULL, NULL, err, sizeof err) == 0, "%s: %s", name, err);
        CHECK(back && soma_net_tensor_count(back) == soma_net_tensor_count(net));
        for (size_t i = 0; back && i < soma_net_tensor_count(net); i++) {
            soma_tensor a, b;
            soma_net_tensor(net, i, &a);
            soma_net_tensor(back, i, &b);
            CHECK(strcmp(a.name, b.name) == 0 && a.rows == b.rows && a.cols == b.cols &&
                  memcmp(a.data, b.data, a.rows * a.cols * sizeof(float)) == 0);
        }
        for (size_t k = 0; back && k < np; k++) CHECK(soma_net_get_learn(back, h, d[k].name) == soma_net_get_learn(net, h, d[k].name));
        soma_net_free(back);
        soma_net_free(net);
    }
}

/* Simulator network files have a simulate: section. */
static int is_sim_file(const char *path) {
    size_t n;
    char *text = t_read_file(path, &n);
    int sim = text && (strstr(text, "\nsimulate:") != NULL);
    free(text);
    return sim;
}

/* Every simulator example loads, builds (the microcircuit at a small scale)
 * and fires within 60 ms. */
static void check_sim_example(const char *path, const char *name) {
    const char *ov[] = {"scale=0.01"};
    int mc = strstr(name, "microcircuit") != NULL;
    char err[1024] = "";
    soma_net *sn = NULL;
    soma_sim_file_opts fo;
    int st = soma_net_load_yaml(path, mc ? ov : NULL, mc ? 1 : 0, &sn, NULL, NULL, &fo, err, sizeof err);
    CHECK_MSG(st == 0, "%s", err);
    if (st) return;
    CHECK_MSG(fo.time_ms > 0, "%s: simulate.time", name);
    soma_sim_opts o;
    soma_sim_opts_default(&o);
    o.threads = 2;
    soma_sim *sim = NULL;
    st = soma_sim_create(&sim, sn, &o, err, sizeof err);
    CHECK_MSG(st == 0, "%s: %s", name, err);
    if (!st) {
        CHECK(soma_sim_run(sim, 60.0, NULL, NULL) == 0);
        soma_sim_stats ss;
        soma_sim_stats_get(sim, &ss);
        CHECK_MSG(ss.spikes > 0 && ss.synapses > 0, "%s: %llu spikes, %zu synapses", name,
                  (unsigned long long)ss.spikes, ss.synapses);
        soma_sim_free(sim);
    }
    soma_net_free(sn);
}

int main(void) {
    test_models_round_trip();
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
        if (is_sim_file(path)) {
            check_sim_example(path, e->d_name);
            n++;
            continue;
        }
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
