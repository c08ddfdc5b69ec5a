/* test_sim_fuzz.c — malformed network files never crash the simulator:
 * 2000 seeded mutations of a small network file (a byte replaced by one of
 * YAML's and the expression grammar's special characters, deleted, or
 * doubled) are each either refused with a message naming the file, or
 * loaded, built (under a memory limit) and run for a few steps. Run under
 * ASan (make asan) this also checks for leaks and bad accesses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "soma.h"
#include "testlib.h"

static const char base[] =
    "# fuzz base\n"
    "params: {J: 40pA, g: 4, n: 200}\n"
    "sets:\n  weak: {J: 20pA}\n"
    "network:\n"
    "  dt: 0.1ms\n"
    "  populations:\n"
    "    e: {model: iaf_psc_exp, size: \"n\", V_m: \"uniform(-70mV, -55mV)\", tau_m: 10ms}\n"
    "    i: {like: e, size: 50}\n"
    "    z: {model: izhikevich, size: 20, c: \"-65mV + 15mV*r^2\", d: \"8 - 6*r^2\"}\n"
    "  projections:\n"
    "    - {from: e, to: [e, i], connect: {rule: fixed_indegree, k: 20}, weight: J, delay: \"uniform(1ms, 2ms)\"}\n"
    "    - {from: i, to: [e, i], connect: {rule: fixed_probability, p: 0.1}, weight: \"-g*J\", delay: 0.8ms}\n"
    "    - {from: e, to: z, connect: {rule: fixed_total, n: 100}, weight: 1, delay: 1ms, port: e}\n"
    "  inputs:\n"
    "    - {to: [e, i], poisson: {rate: 9kHz, weight: 20pA}}\n"
    "    - {to: e, steps: {times: [0ms, 5ms], values: [10pA, 0pA]}}\n"
    "simulate: {time: 2ms, seed: 3, record: {spikes: all, state: [{pop: e, var: V_m, neurons: 2}]}}\n";

int main(void) {
    const char *dir = t_tmpdir("sim_fuzz");
    char path[512];
    snprintf(path, sizeof path, "%s/f.yaml", dir);
    static const char special[] = "0123456789:{}[]-.,e \n\"#*/^()mVsAHz";
    size_t len = strlen(base);
    char *buf = malloc(2 * len + 8);
    soma_rng rng;
    soma_rng_init(&rng, 12345, 7);
    int loaded = 0, built = 0, refused = 0, unnamed = 0;
    /* The unmutated file must work. */
    t_write_file(path, base, len);
    char err[1024] = "";
    soma_net *sn = NULL;
    soma_sim_file_opts fo;
    int rc = soma_net_load_yaml(path, NULL, 0, &sn, NULL, NULL, &fo, err, sizeof err);
    CHECK_MSG(rc == 0, "base file: %s", err);
    soma_net_free(sn);
    for (int it = 0; it < 2000; it++) {
        size_t n = len;
        memcpy(buf, base, len);
        int edits = 1 + (int)(soma_rng_u32(&rng) % 3);
        for (int e = 0; e < edits && n > 1; e++) {
            size_t at = soma_rng_u32(&rng) % n;
            switch (soma_rng_u32(&rng) % 3) {
            case 0: buf[at] = special[soma_rng_u32(&rng) % (sizeof special - 1)]; break;
            case 1: memmove(buf + at, buf + at + 1, n - at - 1), n--; break;
            default: memmove(buf + at + 1, buf + at, n - at), n++; break;
            }
        }
        t_write_file(path, buf, n);
        err[0] = 0;
        sn = NULL;
        rc = soma_net_load_yaml(path, NULL, 0, &sn, NULL, NULL, &fo, err, sizeof err);
        if (rc) {
            refused++;
            if (!strstr(err, path)) unnamed++;
            if (getenv("SOMA_FUZZ_VERBOSE")) printf("%s\n", err);
            continue;
        }
        loaded++;
        soma_sim_opts o;
        soma_sim_opts_default(&o);
        o.threads = 2;
        o.memory_limit = 3e8;
        soma_sim *sim = NULL;
        err[0] = 0;
        rc = soma_sim_create(&sim, sn, &o, err, sizeof err);
        if (rc == 0) {
            built++;
            CHECK(soma_sim_run(sim, 0.5, NULL, NULL) == 0);
            soma_sim_free(sim);
        } else {
            CHECK_MSG(err[0] != 0, "mutation %d: build refused without a message", it);
        }
        soma_net_free(sn);
    }
    printf("2000 mutations: %d refused, %d loaded, %d built and ran\n", refused, loaded, built);
    CHECK_MSG(unnamed == 0, "%d refusals did not name the file", unnamed);
    CHECK(refused > 500 && loaded > 40);
    free(buf);
    return t_report("test_sim_fuzz");
}
