/* test_fuzz_regress.c — replays the fuzzing regression corpus
 * (fuzz/regress/<harness>/, see `make fuzz`) through the same calls as the
 * harnesses, in the Release suite and under the sanitizers: each input
 * either loads or is refused with a message that names the file; nothing
 * crashes, leaks or reads out of bounds (make asan). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "soma.h"
#include "testlib.h"
/* The data harness itself: its inputs replay through the same function. */
#include "../fuzz/fuzz_data.c"
/* The SHD harness (it writes the HDF5 file its input describes), its entry renamed. */
#define SHD_FUZZ_ENTRY fuzz_shd_one
#include "../fuzz/fuzz_shd.c"

static size_t replay(const char *dir, int model) {
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s", dir);
    if (!d) return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[1200], err[512] = "";
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        soma_net *net = NULL;
        int rc = model ? soma_model_load(path, &net, NULL, NULL, err, sizeof err)
                       : soma_net_load_yaml(path, NULL, 0, &net, NULL, NULL, NULL, err, sizeof err);
        n++;
        if (rc) {
            CHECK_MSG(net == NULL && strstr(err, path) != NULL, "%s: rc %d, message '%s' does not name the file", path,
                      rc, err);
            continue;
        }
        soma_sim_opts o;
        soma_sim_opts_default(&o);
        o.threads = 1;
        o.memory_limit = 32e6;
        soma_sim *sim = NULL;
        rc = soma_sim_create(&sim, net, &o, err, sizeof err);
        CHECK_MSG(rc == 0 ? sim != NULL : sim == NULL && err[0] != 0, "%s: simulator build rc %d, '%s'", path, rc, err);
        soma_sim_free(sim);
        soma_net_free(net);
    }
    closedir(d);
    return n;
}

/* Inputs of fuzz_data (a selector byte, then a file): each runs through the
 * harness's own function; the sanitizer build catches what it would. */
static size_t replay_data(const char *path, int (*one)(const uint8_t *, size_t)) {
    DIR *d = opendir(path);
    CHECK_MSG(d != NULL, "cannot open %s", path);
    if (!d) return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        FILE *f = fopen(p, "rb");
        if (!f) continue;
        uint8_t buf[65536];
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        CHECK(one(buf, len) == 0);
        n++;
    }
    closedir(d);
    return n;
}

int main(void) {
    const char *t = getenv("SOMA_TEST_DIR");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/../fuzz/regress/netfile", t ? t : "tests");
    size_t a = replay(dir, 0);
    snprintf(dir, sizeof dir, "%s/../fuzz/regress/model_file", t ? t : "tests");
    size_t b = replay(dir, 1);
    snprintf(dir, sizeof dir, "%s/../fuzz/regress/data", t ? t : "tests");
    size_t c = replay_data(dir, LLVMFuzzerTestOneInput);
    snprintf(dir, sizeof dir, "%s/../fuzz/regress/shd", t ? t : "tests");
    size_t e = replay_data(dir, fuzz_shd_one);
    CHECK_MSG(a >= 6 && b >= 2 && c >= 1 && e >= 2, "replayed %zu network files, %zu model files, %zu data inputs and "
              "%zu SHD descriptions; the corpus has more", a, b, c, e);
    return t_report("test_fuzz_regress");
}
