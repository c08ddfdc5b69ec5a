/* dissect_lesion.c — `soma dissect FILE.yaml lesion|stimulate ...`: silence
 * or drive chosen neurons of a simulated circuit during a window and show
 * how every population's rate, CV and synchrony change before / during /
 * after (docs/dissect.md, "lesion"). Parsing, progress and printing only:
 * the run, the measures and the files are soma_dissect_circuit_*. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: soma dissect FILE.yaml lesion    --pop P (--fraction F | --neurons I,J,...) --window T0:T1\n"
               "                                        [--t T] [--seed S]\n"
               "       soma dissect FILE.yaml stimulate --pop P (--fraction F | --neurons I,J,...) --window T0:T1\n"
               "                                        (--current I | --rate HZ --weight W) [--t T] [--seed S]\n"
               "common options: [--out DIR] [--threads N] [--set NAME] [--param NAME=VALUE]...\n"
               "FILE is a network for the simulator (soma sim); times take units (500ms, 1s; plain numbers are ms),\n"
               "--current pA, --rate Hz, --weight the target model's weight unit (soma models NAME).\n");
}

typedef struct prog { int tty, shown; double next; } prog;

static int progress(void *user, double t_ms, double t_end_ms, double wall) {
    prog *p = user;
    if (p->tty) {
        fprintf(stderr, "\rsimulated %9.1f / %.1f ms  (%.1f s)", t_ms, t_end_ms, wall);
        p->shown = 1;
    } else if (wall >= p->next) { /* not a terminal: a line every 10 s of a long run */
        fprintf(stderr, "simulated %.1f / %.1f ms (%.1f s)\n", t_ms, t_end_ms, wall);
        p->next = wall + 10;
    }
    return 0;
}

/* "I,J,K" into a new array; -1 (message printed) if malformed. */
static int parse_list(const char *text, size_t **out, size_t *n) {
    size_t cap = 1;
    for (const char *c = text; *c; c++) cap += *c == ',';
    size_t *v = malloc(cap * sizeof *v);
    if (!v) return fprintf(stderr, "soma dissect: out of memory\n"), -1;
    const char *c = text;
    *n = 0;
    for (;;) {
        char *end;
        errno = 0;
        if (*c < '0' || *c > '9') break;
        unsigned long long x = strtoull(c, &end, 10);
        if (errno || end == c) break;
        v[(*n)++] = (size_t)x;
        if (!*end) {
            *out = v;
            return 0;
        }
        if (*end != ',') break;
        c = end + 1;
    }
    free(v);
    fprintf(stderr, "soma dissect: --neurons '%s': expected indices I,J,... (e.g. 0,3,7)\n", text);
    return -1;
}

/* A quantity option in unit; -1 (message printed) if bad. */
static int quantity(const char *opt, const char *v, const char *unit, double *out) {
    char err[256];
    if (soma_parse_quantity(v, unit, out, err, sizeof err) || !isfinite(*out))
        return fprintf(stderr, "soma dissect: %s '%s': %s\n", opt, v, err), -1;
    return 0;
}

int cli_dissect_lesion(int argc, char **argv) {
    const char *file = argv[0], *cmd = argv[1], *pop = NULL, *neurons = NULL, *window = NULL, *t = NULL;
    const char *out = "runs/dissect", *cur = NULL, *rate = NULL, *weight = NULL, *fraction = NULL;
    const char *ov[64];
    char setbuf[64][160];
    size_t nov = 0;
    long threads = 0, seed = 1;
    for (int i = 2; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) return usage(stdout), 0;
        const char **str = !strcmp(o, "--pop") ? &pop : !strcmp(o, "--neurons") ? &neurons : !strcmp(o, "--window") ? &window
                         : !strcmp(o, "--t") ? &t : !strcmp(o, "--out") ? &out : !strcmp(o, "--current") ? &cur
                         : !strcmp(o, "--rate") ? &rate : !strcmp(o, "--weight") ? &weight
                         : !strcmp(o, "--fraction") ? &fraction : NULL;
        if (!v && (str || !strcmp(o, "--threads") || !strcmp(o, "--seed") || !strcmp(o, "--set") || !strcmp(o, "--param")))
            return fprintf(stderr, "soma dissect: %s needs a value\n", o), 2;
        if (str) *str = v, i++;
        else if (!strcmp(o, "--threads")) {
            if ((threads = cli_long(o, v, 0, 256)) < 0) return 2;
            i++;
        } else if (!strcmp(o, "--seed")) {
            if ((seed = cli_long(o, v, 0, 0x7fffffffL)) < 0) return 2;
            i++;
        } else if (!strcmp(o, "--set") || !strcmp(o, "--param")) {
            if (nov == 64) return fprintf(stderr, "soma dissect: at most 64 --set/--param\n"), 2;
            if (o[2] == 's') snprintf(setbuf[nov], sizeof setbuf[nov], "set=%s", v), ov[nov] = setbuf[nov];
            else ov[nov] = v;
            nov++, i++;
        } else {
            fprintf(stderr, "soma dissect %s: unknown option or argument '%s'\n", cmd, o);
            return usage(stderr), 2;
        }
    }
    int stim = !strcmp(cmd, "stimulate");
    if (!pop) return fprintf(stderr, "soma dissect %s: --pop P is needed (the population to act on)\n", cmd), 2;
    if (!window) return fprintf(stderr, "soma dissect %s: --window T0:T1 is needed (ms)\n", cmd), 2;
    if (!fraction == !neurons)
        return fprintf(stderr, "soma dissect %s: expected one of --fraction F or --neurons I,J,...\n", cmd), 2;
    if (!stim && (cur || rate || weight))
        return fprintf(stderr, "soma dissect lesion: --current, --rate and --weight are for stimulate\n"), 2;
    if (stim && !cur == !rate)
        return fprintf(stderr, "soma dissect stimulate: expected one of --current I or --rate HZ --weight W\n"), 2;
    if (stim && !!rate != !!weight)
        return fprintf(stderr, "soma dissect stimulate: --rate and --weight go together (Poisson events of a weight)\n"), 2;

    soma_dissect_circuit_opts o;
    soma_dissect_circuit_opts_default(&o);
    o.action = stim ? SOMA_DISSECT_STIMULATE : SOMA_DISSECT_LESION;
    o.pop = pop;
    o.seed = (uint64_t)seed;
    size_t *list = NULL;
    if (fraction) {
        char *end;
        o.fraction = strtod(fraction, &end);
        if (end == fraction || *end || !(o.fraction > 0 && o.fraction <= 1))
            return fprintf(stderr, "soma dissect: --fraction '%s': expected a fraction in (0, 1]\n", fraction), 2;
    } else if (parse_list(neurons, &list, &o.nneurons)) return 2;
    o.neurons = list;
    const char *colon = strchr(window, ':');
    char w0[64];
    if (!colon || (size_t)(colon - window) >= sizeof w0) {
        free(list);
        return fprintf(stderr, "soma dissect: --window '%s': expected T0:T1 (e.g. 500:700 or 0.5s:0.7s)\n", window), 2;
    }
    snprintf(w0, sizeof w0, "%.*s", (int)(colon - window), window);
    int bad = quantity("--window", w0, "ms", &o.t0_ms) || quantity("--window", colon + 1, "ms", &o.t1_ms) ||
              (cur && quantity("--current", cur, "pA", &o.current_pa)) || (rate && quantity("--rate", rate, "Hz", &o.rate_hz));
    if (!bad && weight) {
        char *end;
        o.weight = strtod(weight, &end);
        if (end == weight || *end) bad = fprintf(stderr, "soma dissect: --weight '%s': expected a number\n", weight);
    }
    if (bad) return free(list), 2;

    char err[1024];
    soma_net *net = NULL;
    soma_sim_file_opts fo;
    if (soma_net_load_yaml(file, ov, nov, &net, NULL, NULL, &fo, err, sizeof err)) {
        free(list);
        return fprintf(stderr, "soma dissect: %s\n", err), 1;
    }
    o.time_ms = fo.warmup_ms + fo.time_ms;
    o.skip_ms = fo.warmup_ms;
    if (t && quantity("--t", t, "ms", &o.time_ms)) {
        free(list), soma_net_free(net);
        return 2;
    }
    soma_sim_opts so;
    soma_sim_opts_default(&so);
    so.threads = (int)threads;
    so.seed = fo.seed;
    prog pg = {isatty(2), 0, 10};
    o.progress = progress, o.user = &pg;
    fprintf(stderr, "%s: %s %s, running %g ms ...\n", file, stim ? "stimulating" : "lesioning", pop, o.time_ms);
    soma_dissect_circuit *c = NULL;
    int rc = soma_dissect_circuit_run(net, &so, &o, &c, err, sizeof err);
    if (pg.shown) fputc('\n', stderr);
    soma_net_free(net);
    free(list);
    if (rc) {
        fprintf(stderr, "soma dissect %s: %s\n", cmd, err);
        return rc == SOMA_STATUS_INVALID || rc == SOMA_STATUS_NOTFOUND ? 2 : 1;
    }
    printf("%s %zu neuron%s of %s during %g-%g ms (before from %g ms, after to %g ms)\n", stim ? "stimulated" : "lesioned",
           c->n, c->n == 1 ? "" : "s", c->pop, c->t_ms[1], c->t_ms[2], c->t_ms[0], c->t_ms[3]);
    printf("  %-12s %8s  %-26s %-26s %-26s\n", "population", "neurons", "rate Hz  before/during/after",
           "CV ISI  before/during/after", "synchrony  before/during/after");
    for (size_t p = 0; p <= c->npops; p++) {
        if (p == c->npops) {
            printf("  %-12s %8zu  %8.3f %8.3f %8.3f\n", stim ? "(stimulated)" : "(lesioned)", c->n, c->target_rate_hz[0],
                   c->target_rate_hz[1], c->target_rate_hz[2]);
            printf("  %-12s %8zu  %8.3f %8.3f %8.3f\n", "(the rest)", c->pops[c->pop_index].size - c->n,
                   c->rest_rate_hz[0], c->rest_rate_hz[1], c->rest_rate_hz[2]);
            break;
        }
        const soma_dissect_circuit_pop *P = &c->pops[p];
        printf("  %-12s %8zu  %8.3f %8.3f %8.3f  %8.3f %8.3f %8.3f  %8.3f %8.3f %8.3f\n", P->name, P->size, P->rate_hz[0],
               P->rate_hz[1], P->rate_hz[2], P->cv_isi[0], P->cv_isi[1], P->cv_isi[2], P->synchrony[0], P->synchrony[1],
               P->synchrony[2]);
    }
    rc = 0;
    if (cli_mkdirs(out)) rc = (fprintf(stderr, "soma dissect: cannot create output folder %s\n", out), 1);
    else if (soma_dissect_write_circuit(c, file, out, err, sizeof err)) rc = (fprintf(stderr, "soma dissect: %s\n", err), 1);
    else printf("wrote %s/result.json, raster.png, rates.png\n", out);
    soma_dissect_circuit_free(c);
    return rc;
}
