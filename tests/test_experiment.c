/* test_experiment.c — experiment files: the shipped examples load into the
 * expected net and options, a file using every key is read field by field,
 * and each kind of mistake gives the right status and a
 * "file:LINE: ...; expected ..." message that points at the right line. */
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"

static char tmp[512];

/* Write text to tmp/name and return its path (static buffer). */
static const char *put(const char *name, const char *text) {
    static char path[700];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    if (t_write_file(path, text, strlen(text)) != 0) fprintf(stderr, "cannot write %s\n", path);
    return path;
}

static float param(const soma_net *net, const char *pop, const char *name) {
    size_t i;
    float v = -999.0f;
    if (soma_net_find_pop(net, pop, &i) == 0) soma_net_get_param(net, i, name, &v);
    return v;
}

static void check_pop(const soma_net *net, size_t i, const char *name, const char *model, size_t size) {
    soma_pop_info info;
    memset(&info, 0, sizeof info);
    CHECK(soma_net_pop_info(net, i, &info) == 0);
    CHECK_MSG(info.name && strcmp(info.name, name) == 0, "pop %zu is %s, want %s", i, info.name ? info.name : "?", name);
    CHECK_MSG(info.model && strcmp(info.model, model) == 0, "pop %zu model %s, want %s", i,
              info.model ? info.model : "?", model);
    CHECK_MSG(info.size == size, "pop %zu size %zu, want %zu", i, info.size, size);
}

static void check_proj(const soma_net *net, size_t i, size_t from, size_t to, int bias) {
    size_t f = 99, t = 99;
    int b = -1;
    CHECK(soma_net_proj_info(net, i, &f, &t, &b) == 0);
    CHECK_MSG(f == from && t == to && b == bias, "proj %zu is %zu->%zu bias %d, want %zu->%zu bias %d", i, f, t, b,
              from, to, bias);
}

static void test_example(void) {
    const char *dir = getenv("SOMA_EXAMPLES");
    char path[1024];
    snprintf(path, sizeof path, "%s/fmnist-lif.yaml", dir ? dir : "examples");
    soma_net *net = NULL;
    soma_data_opts d, d0;
    soma_train_opts t, t0;
    char err[512] = "";
    int rc = soma_experiment_load(path, &net, &d, &t, err, sizeof err);
    CHECK_MSG(rc == 0, "load %s: %d %s", path, rc, err);
    CHECK(net != NULL);
    if (!net) return;
    soma_data_opts_default(&d0);
    soma_train_opts_default(&t0);

    CHECK(soma_net_pop_count(net) == 3);
    check_pop(net, 0, "in", "input", 784);
    check_pop(net, 1, "hidden", "lif", 1000);
    check_pop(net, 2, "out", "lif", 10);
    CHECK_NEAR(param(net, "hidden", "beta"), 0.95, 1e-7);
    CHECK_NEAR(param(net, "hidden", "threshold"), 1.0, 1e-7);
    CHECK_NEAR(param(net, "hidden", "reset"), 0.0, 0); /* subtract = choice 0 */
    CHECK_NEAR(param(net, "out", "beta"), 0.95, 1e-7);
    CHECK(soma_net_proj_count(net) == 2);
    check_proj(net, 0, 0, 1, 1);
    check_proj(net, 1, 1, 2, 1);

    CHECK(strcmp(d.dataset, "fashion-mnist") == 0);
    CHECK(d.encoding == SOMA_ENCODING_DIRECT);
    CHECK(d.steps == 25);
    CHECK(d.gain == d0.gain); /* untouched keys keep their defaults */
    CHECK(d.readout == d0.readout);
    CHECK(t.epochs == 1);
    CHECK(t.batch == 128);
    CHECK(t.loss == SOMA_LOSS_CE_RATE);
    CHECK(t.optimizer == SOMA_OPT_ADAM);
    CHECK_NEAR(t.lr, 5e-4, 1e-9);
    CHECK(t.surrogate == SOMA_SURROGATE_FAST_SIGMOID);
    CHECK_NEAR(t.surrogate_param, 25.0, 0);
    CHECK(t.schedule == t0.schedule);
    CHECK(t.beta2 == t0.beta2);
    soma_net_free(net);

    snprintf(path, sizeof path, "%s/fmnist-lif-best.yaml", dir ? dir : "examples");
    net = NULL;
    rc = soma_experiment_load(path, &net, &d, &t, err, sizeof err);
    CHECK_MSG(rc == 0, "load %s: %d %s", path, rc, err);
    CHECK(net && soma_net_pop_count(net) == 3);
    CHECK(t.loss == SOMA_LOSS_CE_MEM);
    CHECK(d.readout == SOMA_READOUT_MEMBRANE);
    CHECK_NEAR(t.lr, 1e-3, 1e-9);
    CHECK(t.schedule == SOMA_SCHED_COSINE);
    CHECK(t.epochs == 10);
    soma_net_free(net);
}

/* Every key the format has, with the less common spellings. */
static void test_all_keys(void) {
    const char *path = put("all.yaml",
        "# every key\n"
        "network:\n"
        "  populations:\n"
        "    x: {model: input, size: 4}\n"
        "    h:\n"
        "      model: synaptic\n"
        "      size: 3\n"
        "      alpha: 0.5\n"
        "      beta: 25e-3\n"
        "      reset: zero\n"
        "      recurrent: yes\n"
        "      learn: {beta: neuron, threshold: layer}\n"
        "    o: {model: lif, size: 2, threshold: 2, learn: [beta]}\n"
        "  projections:\n"
        "    - {from: x, to: h}\n"
        "    - from: h\n"
        "      to: o\n"
        "      kind: dense\n"
        "      bias: false\n"
        "data:\n"
        "  dataset: mnist\n"
        "  dir: /tmp/somewhere\n"
        "  encoding: delta\n"
        "  steps: 7\n"
        "  gain: 2.5\n"
        "  threshold: 0.125\n"
        "  tau: 5\n"
        "  delta_off: true\n"
        "  readout: membrane\n"
        "  limit_train: 1000\n"
        "  limit_test: 0\n"
        "train:\n"
        "  epochs: 3\n"
        "  batch: 32\n"
        "  loss: mse_count\n"
        "  optimizer: {name: sgd, momentum: 0.5, beta1: 0.8, beta2: 0.99, eps: 1e-6, weight_decay: 1e-4}\n"
        "  lr: 0.01\n"
        "  clip: 1.5\n"
        "  schedule: {name: step, step_size: 2, gamma: 0.25, lr_min: 1e-5}\n"
        "  rate_penalty: 0.001\n"
        "  surrogate: {name: atan, alpha: 3}\n"
        "  correct_rate: 0.75\n"
        "  incorrect_rate: 0.125\n"
        "  seed: 12345678901\n"
        "  threads: 2\n"
        "  max_batches: 50\n");
    soma_net *net = NULL;
    soma_data_opts d;
    soma_train_opts t;
    char err[512] = "";
    int rc = soma_experiment_load(path, &net, &d, &t, err, sizeof err);
    CHECK_MSG(rc == 0, "%d %s", rc, err);
    if (!net) return;
    CHECK(soma_net_pop_count(net) == 3);
    check_pop(net, 1, "h", "synaptic", 3);
    CHECK_NEAR(param(net, "h", "alpha"), 0.5, 1e-7);
    CHECK_NEAR(param(net, "h", "beta"), 0.025, 1e-7);
    CHECK_NEAR(param(net, "h", "reset"), 1.0, 0); /* zero = choice 1 */
    CHECK_NEAR(param(net, "o", "threshold"), 2.0, 0);
    size_t h = 9, o = 9;
    soma_net_find_pop(net, "h", &h);
    soma_net_find_pop(net, "o", &o);
    CHECK(soma_net_get_learn(net, h, "beta") == SOMA_LEARN_NEURON);
    CHECK(soma_net_get_learn(net, h, "threshold") == SOMA_LEARN_LAYER);
    CHECK(soma_net_get_learn(net, h, "alpha") == SOMA_LEARN_NONE);
    CHECK(soma_net_get_learn(net, o, "beta") == SOMA_LEARN_LAYER);
    CHECK(soma_net_get_learn(net, o, "threshold") == SOMA_LEARN_NONE);
    soma_pop_info info;
    CHECK(soma_net_pop_info(net, h, &info) == 0 && info.recurrent == 1);
    CHECK(soma_net_pop_info(net, o, &info) == 0 && info.recurrent == 0);
    CHECK(soma_net_proj_count(net) == 2);
    check_proj(net, 0, 0, 1, 1);
    check_proj(net, 1, 1, 2, 0);

    CHECK(strcmp(d.dataset, "mnist") == 0);
    CHECK(strcmp(d.dir, "/tmp/somewhere") == 0);
    CHECK(d.encoding == SOMA_ENCODING_DELTA);
    CHECK(d.steps == 7);
    CHECK_NEAR(d.gain, 2.5, 0);
    CHECK_NEAR(d.threshold, 0.125, 0);
    CHECK_NEAR(d.tau, 5.0, 0);
    CHECK(d.delta_off == 1);
    CHECK(d.readout == SOMA_READOUT_MEMBRANE);
    CHECK(d.limit_train == 1000 && d.limit_test == 0);

    CHECK(t.epochs == 3 && t.batch == 32);
    CHECK(t.loss == SOMA_LOSS_MSE_COUNT);
    CHECK(t.optimizer == SOMA_OPT_SGD);
    CHECK_NEAR(t.momentum, 0.5, 0);
    CHECK_NEAR(t.beta1, 0.8, 1e-7);
    CHECK_NEAR(t.beta2, 0.99, 1e-7);
    CHECK_NEAR(t.eps, 1e-6, 1e-12);
    CHECK_NEAR(t.weight_decay, 1e-4, 1e-10);
    CHECK_NEAR(t.lr, 0.01, 1e-9);
    CHECK_NEAR(t.clip_norm, 1.5, 0);
    CHECK(t.schedule == SOMA_SCHED_STEP);
    CHECK(t.step_size == 2);
    CHECK_NEAR(t.gamma, 0.25, 0);
    CHECK_NEAR(t.lr_min, 1e-5, 1e-11);
    CHECK_NEAR(t.rate_penalty, 0.001, 1e-9);
    CHECK(t.surrogate == SOMA_SURROGATE_ATAN);
    CHECK_NEAR(t.surrogate_param, 3.0, 0);
    CHECK_NEAR(t.correct_rate, 0.75, 0);
    CHECK_NEAR(t.incorrect_rate, 0.125, 0);
    CHECK(t.seed == 12345678901ull);
    CHECK(t.threads == 2);
    CHECK(t.max_batches == 50);
    soma_net_free(net);

    /* Scalar forms of optimizer / schedule / surrogate, data and train optional. */
    path = put("scalar.yaml",
               "network:\n  populations: {a: {model: input, size: 2}, b: {model: lif, size: 1}}\n"
               "  projections: [{from: a, to: b}]\n"
               "train: {optimizer: adamw, schedule: cosine, surrogate: sigmoid, lr: 1e-3}\n");
    rc = soma_experiment_load(path, &net, &d, &t, err, sizeof err);
    CHECK_MSG(rc == 0, "%d %s", rc, err);
    CHECK(t.optimizer == SOMA_OPT_ADAMW && t.schedule == SOMA_SCHED_COSINE && t.surrogate == SOMA_SURROGATE_SIGMOID);
    CHECK_NEAR(t.lr, 1e-3, 1e-9);
    soma_net_free(net);

    /* data and train may be NULL. */
    rc = soma_experiment_load(path, &net, NULL, NULL, err, sizeof err);
    CHECK_MSG(rc == 0, "%d %s", rc, err);
    soma_net_free(net);
}

/* One bad file: its status, the line the message must name, and a hint the
 * message must contain. */
typedef struct bad_case {
    const char *name;
    const char *text;
    int status;
    int line;
    const char *hint;
} bad_case;

#define NET_OK "network:\n  populations:\n    in: {model: input, size: 4}\n    out: {model: lif, size: 2}\n"

static const bad_case bad[] = {
    {"unknown_model", "network:\n  populations:\n    in: {model: input, size: 4}\n    h: {model: lfi, size: 3}\n",
     SOMA_STATUS_INVALID, 4, "lif"},
    {"unknown_param", "network:\n  populations:\n    h:\n      model: lif\n      size: 3\n      betta: 0.9\n",
     SOMA_STATUS_INVALID, 6, "beta"},
    {"unknown_param_lists_all", "network:\n  populations:\n    h: {model: lif, size: 3, betta: 0.9}\n",
     SOMA_STATUS_INVALID, 3, "threshold"},
    {"size_not_int", "network:\n  populations:\n    h:\n      model: lif\n      size: abc\n",
     SOMA_STATUS_INVALID, 5, "integer"},
    {"size_float", "network:\n  populations:\n    h: {model: lif, size: 2.5}\n", SOMA_STATUS_INVALID, 3,
     "integer"},
    {"size_zero", "network:\n  populations:\n    h: {model: lif, size: 0}\n", SOMA_STATUS_INVALID, 3, ">= 1"},
    {"size_missing", "network:\n  populations:\n    in: {model: input, size: 4}\n    h: {model: lif}\n",
     SOMA_STATUS_INVALID, 4, "size"},
    {"model_missing", "network:\n  populations:\n    h: {size: 3}\n", SOMA_STATUS_INVALID, 3, "lif"},
    {"beta_list", "network:\n  populations:\n    h:\n      model: lif\n      size: 3\n      beta: [1]\n",
     SOMA_STATUS_INVALID, 6, "number"},
    {"beta_range", "network:\n  populations:\n    in: {model: input, size: 4}\n\n    h: {model: lif, size: 3, beta: 1.5}\n",
     SOMA_STATUS_INVALID, 5, "[0, 1]"},
    {"beta_nan", "network:\n  populations:\n    h: {model: lif, size: 3, beta: nan}\n", SOMA_STATUS_INVALID, 3,
     "number"},
    {"beta_hex", "network:\n  populations:\n    h: {model: lif, size: 3, beta: 0x1}\n", SOMA_STATUS_INVALID, 3,
     "unknown unit"},
    {"reset_choice", "network:\n  populations:\n    h: {model: lif, size: 3, reset: maybe}\n", SOMA_STATUS_INVALID,
     3, "subtract"},
    {"learn_not_learnable", "network:\n  populations:\n    h: {model: lif, size: 3,\n        learn: [reset]}\n",
     SOMA_STATUS_INVALID, 4, "beta"},
    {"learn_mode", "network:\n  populations:\n    h: {model: lif, size: 3, learn: {beta: often}}\n",
     SOMA_STATUS_INVALID, 3, "neuron"},
    {"recurrent_bool", "network:\n  populations:\n    h: {model: lif, size: 3, recurrent: maybe}\n",
     SOMA_STATUS_INVALID, 3, "true or false"},
    {"syntax", "network:\n  populations:\n    h: {model: lif, size: 3\n    o: [\n", SOMA_STATUS_FORMAT, 4, "YAML"},
    {"syntax_indent", "network:\n  populations:\n    h: {model: lif, size: 3}\n   bad: x\n", SOMA_STATUS_FORMAT, 4,
     "YAML"},
    {"tab", "network:\n\tpopulations: {}\n", SOMA_STATUS_FORMAT, 2, "YAML"},
    {"proj_missing_pop", NET_OK "  projections:\n    - {from: in, to: out}\n    - {from: in, to: hiden}\n",
     SOMA_STATUS_INVALID, 7, "out"},
    {"proj_no_to", NET_OK "  projections:\n    - {from: in}\n", SOMA_STATUS_INVALID, 6, "to"},
    {"proj_kind", NET_OK "  projections:\n    - {from: in, to: out, kind: sparse}\n", SOMA_STATUS_INVALID, 6,
     "dense"},
    {"proj_key", NET_OK "  projections:\n    - {from: in, to: out, weight: 1}\n", SOMA_STATUS_INVALID, 6, "bias"},
    {"proj_not_list", NET_OK "  projections: {from: in, to: out}\n", SOMA_STATUS_INVALID, 5, "list"},
    {"unknown_loss", NET_OK "train:\n  epochs: 2\n  loss: cross_entropy\n", SOMA_STATUS_INVALID, 7, "ce_count"},
    {"unknown_optimizer", NET_OK "train: {optimizer: {name: adagrad}}\n", SOMA_STATUS_INVALID, 5, "adamw"},
    {"unknown_optimizer_key", NET_OK "train:\n  optimizer:\n    name: adam\n    lr: 1e-3\n    betas: 0.9\n",
     SOMA_STATUS_INVALID, 9, "beta1"},
    {"lr_twice", NET_OK "train:\n  lr: 1e-3\n  optimizer: {name: adam, lr: 1e-3}\n", SOMA_STATUS_INVALID, 7, "lr"},
    {"lr_zero", NET_OK "train: {lr: 0}\n", SOMA_STATUS_INVALID, 5, "> 0"},
    {"unknown_schedule", NET_OK "train: {schedule: linear}\n", SOMA_STATUS_INVALID, 5, "cosine"},
    {"unknown_surrogate", NET_OK "train: {surrogate: {name: fast_sigmoid, slop: 5}}\n", SOMA_STATUS_INVALID, 5,
     "slope"},
    {"surrogate_name", NET_OK "train: {surrogate: tanh}\n", SOMA_STATUS_INVALID, 5, "fast_sigmoid"},
    {"batch_negative", NET_OK "train: {batch: -1}\n", SOMA_STATUS_INVALID, 5, ">= 1"},
    {"unknown_train_key", NET_OK "train:\n  epochs: 1\n  epoch: 2\n", SOMA_STATUS_INVALID, 7, "epochs"},
    {"unknown_data_key", NET_OK "data:\n  dataset: mnist\n  encode: rate\n", SOMA_STATUS_INVALID, 7, "encoding"},
    {"unknown_encoding", NET_OK "data: {encoding: poisson}\n", SOMA_STATUS_INVALID, 5, "latency"},
    {"unknown_dataset", NET_OK "data: {dataset: cifar10}\n", SOMA_STATUS_INVALID, 5, "fashion-mnist"},
    {"steps_zero", NET_OK "data: {steps: 0}\n", SOMA_STATUS_INVALID, 5, ">= 1"},
    {"steps_string", NET_OK "data: {steps: \"\"}\n", SOMA_STATUS_INVALID, 5, "integer"},
    {"delta_off_bool", NET_OK "data: {delta_off: 2}\n", SOMA_STATUS_INVALID, 5, "true or false"},
    {"readout", NET_OK "data: {readout: max}\n", SOMA_STATUS_INVALID, 5, "membrane"},
    {"unknown_section", NET_OK "simulation: {time: 1}\n", SOMA_STATUS_INVALID, 5, "simulate"},
    {"unknown_network_key", "network:\n  dtt: 1\n  populations: {a: {model: input, size: 1}}\n",
     SOMA_STATUS_INVALID, 2, "populations"},
    {"no_network", "# nothing but data\ndata: {steps: 5}\n", SOMA_STATUS_INVALID, 2, "network"},
    {"empty_file", "# only a comment\n", SOMA_STATUS_INVALID, 1, "network"},
    {"no_populations", "network:\n  projections: []\n", SOMA_STATUS_INVALID, 1, "populations"},
    {"empty_populations", "network:\n  populations: {}\n", SOMA_STATUS_INVALID, 2, "at least one"},
    {"null_populations", "network:\n  populations:\n", SOMA_STATUS_INVALID, 2, "at least one"},
    {"populations_list", "network:\n  populations:\n    - {model: lif, size: 3}\n", SOMA_STATUS_INVALID, 3,
     "mapping"},
    {"duplicate_pop", "network:\n  populations:\n    a: {model: input, size: 1}\n    a: {model: lif, size: 1}\n",
     SOMA_STATUS_INVALID, 4, "once"},
    {"top_list", "- network\n", SOMA_STATUS_INVALID, 1, "mapping"},
    {"two_documents", NET_OK "---\n" NET_OK, SOMA_STATUS_FORMAT, 6, "one document"},
};

static void test_bad(void) {
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const bad_case *b = &bad[i];
        char fname[96];
        snprintf(fname, sizeof fname, "%s.yaml", b->name);
        const char *path = put(fname, b->text);
        char want[800];
        snprintf(want, sizeof want, "%s:%d: ", path, b->line);
        soma_net *net = (soma_net *)&want; /* must come back NULL */
        soma_data_opts d;
        soma_train_opts t;
        memset(&d, 0x5a, sizeof d);
        memset(&t, 0x5a, sizeof t);
        char err[1024] = "";
        int rc = soma_experiment_load(path, &net, &d, &t, err, sizeof err);
        CHECK_MSG(rc == b->status, "%s: status %d (%s), want %d; message: %s", b->name, rc, soma_status_name(rc),
                  b->status, err);
        CHECK_MSG(net == NULL, "%s: net not NULL on error", b->name);
        CHECK_MSG(strncmp(err, want, strlen(want)) == 0, "%s: message does not start with '%s': %s", b->name, want,
                  err);
        CHECK_MSG(strstr(err, b->hint) != NULL, "%s: message lacks '%s': %s", b->name, b->hint, err);
        CHECK_MSG(strstr(err, "; expected") != NULL,
                  "%s: message has no 'expected': %s", b->name, err);
        CHECK_MSG(((unsigned char *)&d)[0] == 0x5a && ((unsigned char *)&t)[0] == 0x5a,
                  "%s: options written on error", b->name);
        if (net && net != (soma_net *)&want) soma_net_free(net);
    }
}

static void test_io(void) {
    char path[700], err[512] = "";
    snprintf(path, sizeof path, "%s/does-not-exist.yaml", tmp);
    soma_net *net = (soma_net *)path;
    int rc = soma_experiment_load(path, &net, NULL, NULL, err, sizeof err);
    CHECK(rc == SOMA_STATUS_IO);
    CHECK(net == NULL);
    char want[800];
    snprintf(want, sizeof want, "%s: cannot open: ", path);
    CHECK_MSG(strncmp(err, want, strlen(want)) == 0, "%s", err);
    CHECK_MSG(strstr(err, "No such file") != NULL, "%s", err);

    /* A tiny buffer is truncated, never overrun; a NULL buffer is allowed. */
    const char *p = put("small.yaml", "network:\n  populations:\n    h: {model: nope, size: 3}\n");
    char small[12];
    memset(small, 'x', sizeof small);
    rc = soma_experiment_load(p, &net, NULL, NULL, small, 8);
    CHECK(rc == SOMA_STATUS_INVALID);
    CHECK(small[7] == 0 && small[8] == 'x');
    rc = soma_experiment_load(p, &net, NULL, NULL, NULL, 0);
    CHECK(rc == SOMA_STATUS_INVALID);
    CHECK(net == NULL);
}

/* One format: a trainer network written with the simulator's tools
 * (params, sets, overrides, like:, expressions with units, a recurrent
 * projection written as a projection onto its own population, dt) loads into
 * the same net as the plain form, and its simulate section is read too. */
static void test_one_format(void) {
    char plain[800];
    snprintf(plain, sizeof plain, "%s", put("plain.yaml",
                            "network:\n  populations:\n    in: {model: input, size: 4}\n"
                            "    h: {model: lif, size: 6, beta: 0.9, threshold: 0.5, recurrent: true}\n"
                            "    o: {model: lif, size: 6, beta: 0.9, threshold: 0.5}\n"
                            "  projections:\n    - {from: in, to: h}\n    - {from: h, to: o}\n"));
    const char *rich = put("rich.yaml",
                           "params: {n: 3, b: 0.8}\nsets: {slow: {b: 0.9}}\n"
                           "network:\n  dt: 0.5ms\n  populations:\n    in: {model: input, size: \"n + 1\"}\n"
                           "    h: {model: lif, size: \"2*n\", beta: b, threshold: \"1/2\"}\n"
                           "    o: {like: h}\n"
                           "  projections:\n    - {from: in, to: h}\n    - {from: h, to: h, kind: dense, bias: false}\n"
                           "    - {from: h, to: o}\n"
                           "simulate: {time: 2s, seed: 7}\n");
    soma_net *a = NULL, *b = NULL;
    char err[512] = "";
    soma_sim_file_opts so;
    const char *ov[] = {"set=slow"};
    CHECK_MSG(soma_net_load_yaml(plain, NULL, 0, &a, NULL, NULL, NULL, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(soma_net_load_yaml(rich, ov, 1, &b, NULL, NULL, &so, err, sizeof err) == 0, "%s", err);
    if (!a || !b) return;
    CHECK(so.time_ms == 2000 && so.seed == 7);
    CHECK(soma_net_dt(a) == 0.1 && soma_net_dt(b) == 0.5);
    CHECK(soma_net_pop_count(a) == soma_net_pop_count(b) && soma_net_proj_count(a) == soma_net_proj_count(b));
    for (size_t p = 0; p < soma_net_pop_count(a); p++) {
        soma_pop_info x, y;
        soma_net_pop_info(a, p, &x);
        soma_net_pop_info(b, p, &y);
        CHECK_MSG(!strcmp(x.name, y.name) && !strcmp(x.model, y.model) && x.size == y.size &&
                      x.recurrent == y.recurrent,
                  "population %zu: %s %s %zu %d vs %s %s %zu %d", p, x.name, x.model, x.size, x.recurrent, y.name,
                  y.model, y.size, y.recurrent);
        float va, vb;
        if (p) {
            CHECK(soma_net_get_param(a, p, "beta", &va) == 0 && soma_net_get_param(b, p, "beta", &vb) == 0 && va == vb);
            CHECK(soma_net_get_param(a, p, "threshold", &va) == 0 &&
                  soma_net_get_param(b, p, "threshold", &vb) == 0 && va == vb);
        }
    }
    soma_net_free(a);
    soma_net_free(b);
}

int main(void) {
    const char *d = t_tmpdir("experiment");
    if (!d) {
        fprintf(stderr, "no temporary directory\n");
        return 1;
    }
    snprintf(tmp, sizeof tmp, "%s", d);
    test_example();
    test_all_keys();
    test_bad();
    test_io();
    test_one_format();
    return t_report("test_experiment");
}
