/* test_cli.c — the soma command end to end on a small synthetic data set in
 * the real IDX format: train writes model.soma, metrics.json and plots and
 * learns; eval, info and sites read the model; bad input gets file:line errors; a
 * non-finite loss and Ctrl-C stop training and keep the last good model. */
#define _DEFAULT_SOURCE
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "soma.h"
#include "testlib.h"

static const char *bin;
static char dir[512];

/* 4x4 images, 3 classes: class k lights rows of block k brighter. */
static void write_idx(const char *name, size_t n, uint32_t seed) {
    char p[700];
    uint8_t hdr[16] = {0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 4};
    hdr[4] = (uint8_t)(n >> 24), hdr[5] = (uint8_t)(n >> 16), hdr[6] = (uint8_t)(n >> 8), hdr[7] = (uint8_t)n;
    uint8_t *img = malloc(16 + n * 16), *lab = malloc(8 + n);
    memcpy(img, hdr, 16);
    uint8_t lh[8] = {0, 0, 8, 1, hdr[4], hdr[5], hdr[6], hdr[7]};
    memcpy(lab, lh, 8);
    soma_rng rng;
    soma_rng_init(&rng, seed, 7);
    for (size_t i = 0; i < n; i++) {
        uint8_t y = (uint8_t)(soma_rng_u32(&rng) % 3);
        lab[8 + i] = y;
        for (int k = 0; k < 16; k++) {
            int block = k / 6; /* 0..2 */
            int v = (int)(soma_rng_u32(&rng) % 80) + (block == y ? 170 : 0);
            img[16 + i * 16 + (size_t)k] = (uint8_t)(v > 255 ? 255 : v);
        }
    }
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte", dir, name);
    t_write_file(p, img, 16 + n * 16);
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte", dir, name);
    t_write_file(p, lab, 8 + n);
    free(img), free(lab);
}

static void write_yaml_full(const char *name, const char *extra_train, const char *hidden_extra, const char *loss, int epochs) {
    char p[700], text[4096];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    snprintf(text, sizeof text,
             "# test network\n"
             "network:\n"
             "  populations:\n"
             "    in: {model: input, size: 16}\n"
             "    hidden: {model: lif, size: 32, beta: 0.9%s}\n"
             "    out: {model: lif, size: 3, beta: 0.9}\n"
             "  projections:\n"
             "    - {from: in, to: hidden, kind: dense}\n"
             "    - {from: hidden, to: out, kind: dense}\n"
             "data: {dataset: mnist, dir: %s, encoding: direct, steps: 10}\n"
             "train: {epochs: %d, batch: 16, loss: %s, optimizer: {name: adam, lr: 0.01}%s}\n",
             hidden_extra, dir, epochs, loss, extra_train);
    t_write_file(p, text, strlen(text));
}

static void write_yaml(const char *name, const char *extra_train, const char *hidden_extra) {
    write_yaml_full(name, extra_train, hidden_extra, "ce_rate", 3);
}

/* Run a shell command, capture stdout+stderr into *out (malloc'd); returns exit status. */
static int run(char **out, const char *fmt, ...) {
    char cmd[4096], log[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd - 100, fmt, ap);
    va_end(ap);
    snprintf(log, sizeof log, "%s/out.log", dir);
    size_t n = strlen(cmd);
    snprintf(cmd + n, sizeof cmd - n, " > '%s' 2>&1", log);
    int st = system(cmd);
    if (out) *out = t_read_file(log, NULL);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int exists(const char *sub) {
    char p[800];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, sub);
    return stat(p, &sb) == 0 && sb.st_size > 0;
}

static double json_number(const char *js, const char *key) {
    char k[128];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = js ? strstr(js, k) : NULL;
    return p ? strtod(p + strlen(k), NULL) : -1.0;
}

static void test_train_eval_info(void) {
    char *out = NULL;
    int rc = run(&out, "%s train %s/ok.yaml --out %s/run --seed 3", bin, dir, dir);
    CHECK_MSG(rc == 0, "soma train exited %d: %s", rc, out ? out : "");
    CHECK(out && strstr(out, "test accuracy:"));
    free(out);
    CHECK(exists("run/model.soma"));
    CHECK(exists("run/curves.png"));
    CHECK(exists("run/raster.png"));
    char p[700];
    snprintf(p, sizeof p, "%s/run/metrics.json", dir);
    char *js = t_read_file(p, NULL);
    CHECK(js != NULL);
    double acc = json_number(js, "test_accuracy");
    CHECK_MSG(acc > 0.8 && acc <= 1.0, "test_accuracy %g: the synthetic task is easy", acc);
    CHECK(json_number(js, "train_samples_per_second") > 0);
    CHECK(json_number(js, "infer_samples_per_second") > 0);
    CHECK(json_number(js, "epochs") == 3);
    CHECK(json_number(js, "seconds") > 0);
    CHECK(json_number(js, "peak_rss_bytes") > 1e6);
    free(js);

    rc = run(&out, "%s eval %s/run/model.soma", bin, dir);
    CHECK_MSG(rc == 0, "soma eval exited %d: %s", rc, out ? out : "");
    double eacc = out && strstr(out, "test accuracy: ") ? strtod(strstr(out, "test accuracy: ") + 15, NULL) / 100.0 : -1;
    CHECK_NEAR(eacc, acc, 1e-4); /* eval reproduces the accuracy train reported */
    free(out);
    rc = run(&out, "%s eval %s/run/model.soma --steps 3 --readout membrane --encoding rate", bin, dir);
    CHECK_MSG(rc == 0 && out && strstr(out, "T = 3") && strstr(out, "rate encoding") && strstr(out, "membrane readout"),
              "eval overrides: %s", out ? out : "");
    free(out);
    rc = run(&out, "%s eval %s/run/model.soma --encoding morse", bin, dir);
    CHECK(rc != 0 && out && strstr(out, "morse") && strstr(out, "latency"));
    free(out);
    rc = run(&out, "%s info %s/run/model.soma", bin, dir);
    CHECK(rc == 0 && out && strstr(out, "hidden") && strstr(out, "in->hidden.weight") && strstr(out, "32 x 16"));
    /* 16*32 + 32 + 32*3 + 3 parameters */
    CHECK(out && strstr(out, "total learnable parameters: 643"));
    free(out);
    /* sites of the model file and of its experiment file: the same list */
    rc = run(&out, "%s sites %s/run/model.soma", bin, dir);
    CHECK_MSG(rc == 0 && out && strstr(out, "9 sites\n") && strstr(out, "hidden.v ") &&
              strstr(out, "in->hidden.out") && strstr(out, "hidden->out.in"), "soma sites MODEL: %s", out ? out : "");
    char *yout = NULL;
    rc = run(&yout, "%s sites %s/ok.yaml", bin, dir);
    CHECK(rc == 0 && out && yout && strcmp(strchr(out, ':'), strchr(yout, ':')) == 0);
    free(out), free(yout);
}

static void test_bad_input(void) {
    char *out = NULL, p[700];
    /* Unknown parameter: file:line and the valid names. */
    write_yaml("bad1.yaml", "", ", betta: 0.5");
    int rc = run(&out, "%s train %s/bad1.yaml --out %s/bad", bin, dir, dir);
    snprintf(p, sizeof p, "bad1.yaml:5:");
    CHECK_MSG(rc != 0 && out && strstr(out, p) && strstr(out, "beta"), "%s", out ? out : "");
    free(out);
    /* Wrong type. */
    write_yaml("bad2.yaml", ", batch: many", "");
    rc = run(&out, "%s train %s/bad2.yaml --out %s/bad", bin, dir, dir);
    CHECK_MSG(rc != 0 && out && strstr(out, "bad2.yaml:11:") && strstr(out, "batch"), "%s", out ? out : "");
    free(out);
    /* Missing data directory. */
    rc = run(&out, "%s train %s/ok.yaml --data /nonexistent/data --out %s/bad", bin, dir, dir);
    CHECK_MSG(rc != 0 && out && strstr(out, "/nonexistent/data"), "%s", out ? out : "");
    free(out);
    /* Bad option values. */
    rc = run(&out, "%s train %s/ok.yaml --epochs zero", bin, dir);
    CHECK(rc == 2 && out && strstr(out, "--epochs"));
    free(out);
    /* Corrupted model file. */
    snprintf(p, sizeof p, "%s/junk.soma", dir);
    t_write_file(p, "SOMAMDL\0garbage", 15);
    rc = run(&out, "%s eval %s", bin, p);
    CHECK_MSG(rc != 0 && out && strstr(out, "junk.soma"), "%s", out ? out : "");
    free(out);
    /* regression: an option missing its value said "unknown option" */
    rc = run(&out, "%s train %s/ok.yaml --out", bin, dir);
    CHECK_MSG(rc == 2 && out && strstr(out, "--out needs a value"), "%s", out ? out : "");
    free(out);
    rc = run(&out, "%s eval x.soma --readout", bin);
    CHECK_MSG(rc == 2 && out && strstr(out, "--readout needs a value"), "%s", out ? out : "");
    free(out);
    rc = run(&out, "%s frobnicate", bin);
    CHECK(rc == 2 && out && strstr(out, "train, eval, info"));
    free(out);
}

/* A learning rate that explodes after the first epoch (step schedule with a
 * huge gamma) drives the membrane loss to NaN in epoch 2: training stops
 * with the epoch and batch named, and epoch 1's model stays loadable. */
static void test_nonfinite_stop(void) {
    write_yaml_full("nan.yaml", ", schedule: {name: step, step_size: 1, gamma: 1e30}", "", "ce_mem", 3);
    char *out = NULL;
    int rc = run(&out, "%s train %s/nan.yaml --out %s/nan", bin, dir, dir);
    const char *m = out ? strstr(out, "non-finite loss at epoch ") : NULL;
    long bad_epoch = m ? strtol(m + 25, NULL, 10) : -1;
    CHECK_MSG(rc == 3 && m && bad_epoch >= 2 && strstr(m, ", batch "), "rc %d: %s", rc, out ? out : "");
    free(out);
    CHECK(exists("nan/model.soma"));
    rc = run(&out, "%s eval %s/nan/model.soma", bin, dir);
    CHECK_MSG(rc == 0 && out && strstr(out, "test accuracy"), "%s", out ? out : "");
    free(out);
    char p[700];
    snprintf(p, sizeof p, "%s/nan/metrics.json", dir);
    char *js = t_read_file(p, NULL);
    CHECK(js && strstr(js, "non-finite"));
    /* metrics.json counts the epochs that finished: all before the bad one */
    CHECK(json_number(js, "epochs") == (double)(bad_epoch - 1));
    free(js);
}

/* Ctrl-C after the first model is saved: exit 130, the model stays loadable. */
static void test_interrupt(void) {
    write_yaml_full("long.yaml", "", "", "ce_rate", 100000);
    char cmd[2048], model[700];
    snprintf(model, sizeof model, "%s/int/model.soma", dir);
    snprintf(cmd, sizeof cmd, "%s/int.log", dir);
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(cmd, "w", stderr);
        (void)f;
        char a2[700], a4[700];
        snprintf(a2, sizeof a2, "%s/long.yaml", dir);
        snprintf(a4, sizeof a4, "%s/int", dir);
        execl(bin, bin, "train", a2, "--out", a4, (char *)NULL);
        _exit(127);
    }
    struct stat sb;
    for (int i = 0; i < 600 && stat(model, &sb) != 0; i++) usleep(50000);
    usleep(200000);
    kill(pid, SIGINT);
    int st;
    waitpid(pid, &st, 0);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 130, "exit status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    char *log = t_read_file(cmd, NULL);
    CHECK_MSG(log && strstr(log, "interrupted at epoch"), "%s", log ? log : "");
    free(log);
    char *out = NULL;
    int rc = run(&out, "%s eval %s", bin, model);
    CHECK_MSG(rc == 0, "%s", out ? out : "");
    free(out);
}

int main(void) {
    bin = getenv("SOMA_BIN");
    if (!bin) bin = "./soma";
    const char *d = t_tmpdir("cli");
    snprintf(dir, sizeof dir, "%s", d);
    write_idx("train", 480, 1);
    write_idx("t10k", 120, 2);
    write_yaml("ok.yaml", "", "");
    test_train_eval_info();
    test_bad_input();
    test_nonfinite_stop();
    test_interrupt();
    return t_report("test_cli");
}
