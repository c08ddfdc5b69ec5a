/* sim.c — `soma sim FILE.yaml`: build and run a network in the event-driven
 * simulator, show progress (simulated time, real-time factor), and write
 * metrics.json, spikes.bin (+ spikes.csv with --csv), raster.png and
 * rates.png. Ctrl-C stops the run and still writes what was simulated. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"

static volatile sig_atomic_t interrupted = 0;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

typedef struct prog {
    int tty;
    double shown;
} prog;

static int progress(void *user, double t_ms, double t_end_ms, double wall) {
    prog *p = user;
    if (interrupted) return 1;
    if (!p->tty) return 0;
    double rtf = t_ms > 0 ? wall / (t_ms * 1e-3) : 0;
    double eta = rtf * (t_end_ms - t_ms) * 1e-3;
    fprintf(stderr, "\rsimulated %9.1f / %.1f ms   real-time factor %.3f   ETA %4.0fs ", t_ms, t_end_ms, rtf, eta);
    fflush(stderr);
    p->shown = 1;
    return 0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: soma sim FILE.yaml [--time T] [--warmup T] [--threads N] [--seed S] [--out DIR] [--no-record]\n"
            "                [--csv] [--set NAME] [--param NAME=VALUE]... [--write-connectivity FILE]\n");
}

/* Write spikes as a compact binary file: "SOMASPK1", dt (f64), count (u64),
 * then (step, id) pairs as little-endian u32. */
static int write_spikes_bin(const char *path, const soma_spike *sp, size_t n, double dt) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    uint64_t cnt = n;
    int bad = fwrite("SOMASPK1", 1, 8, f) != 8;
    bad |= fwrite(&dt, sizeof dt, 1, f) != 1;
    bad |= fwrite(&cnt, sizeof cnt, 1, f) != 1;
    if (n) bad |= fwrite(sp, sizeof *sp, n, f) != n;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path)) {
        remove(tmp);
        return -1;
    }
    return 0;
}

static int write_spikes_csv(const char *path, const soma_spike *sp, size_t n, double dt) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    fprintf(f, "time_ms,neuron\n");
    for (size_t i = 0; i < n; i++) fprintf(f, "%.6g,%u\n", (double)sp[i].step * dt, sp[i].id);
    int bad = fclose(f) != 0;
    if (bad || rename(tmp, path)) {
        remove(tmp);
        return -1;
    }
    return 0;
}

/* Sampled state as CSV: time_ms, then one column per recorded neuron. */
static int write_state_csv(const char *path, const float *x, size_t ns, size_t n, size_t every, double dt,
                           const size_t *idx) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    fprintf(f, "time_ms");
    for (size_t j = 0; j < n; j++) fprintf(f, ",n%zu", idx[j]);
    fputc('\n', f);
    /* Row r is the state at the end of step r*every (time (r*every + 1) dt). */
    for (size_t r = 0; r < ns; r++) {
        fprintf(f, "%.6g", (double)(r * every + 1) * dt);
        for (size_t j = 0; j < n; j++) fprintf(f, ",%.7g", (double)x[r * n + j]);
        fputc('\n', f);
    }
    int bad = fclose(f) != 0;
    if (bad || rename(tmp, path)) {
        remove(tmp);
        return -1;
    }
    return 0;
}

/* Population rates (Hz) in bins of bin_ms: time_ms (bin start), one column per population. */
static int write_rate_csv(const char *path, const soma_spike *sp, size_t nsp, size_t npops, const char **names,
                          const uint32_t *first, const size_t *sizes, double dt, uint64_t steps, double bin_ms) {
    size_t bin = (size_t)llround(bin_ms / dt);
    if (!bin) bin = 1;
    size_t nb = (size_t)((steps + bin - 1) / bin);
    double *cnt = calloc(nb * npops + 1, sizeof *cnt);
    if (!cnt) return -1;
    for (size_t k = 0; k < nsp; k++) {
        size_t b = sp[k].step / bin;
        for (size_t p = 0; p < npops; p++)
            if (sp[k].id >= first[p] && sp[k].id < first[p] + sizes[p] && b < nb) cnt[b * npops + p] += 1;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        free(cnt);
        return -1;
    }
    fprintf(f, "time_ms");
    for (size_t p = 0; p < npops; p++) fprintf(f, ",%s", names[p]);
    fputc('\n', f);
    for (size_t b = 0; b < nb; b++) {
        fprintf(f, "%.6g", (double)(b * bin) * dt);
        for (size_t p = 0; p < npops; p++)
            fprintf(f, ",%.6g", cnt[b * npops + p] / ((double)sizes[p] * (double)bin * dt * 1e-3));
        fputc('\n', f);
    }
    free(cnt);
    int bad = fclose(f) != 0;
    if (bad || rename(tmp, path)) {
        remove(tmp);
        return -1;
    }
    return 0;
}

static void json_num(char *buf, size_t cap, size_t *len, double v) {
    if (isfinite(v))
        *len += (size_t)snprintf(buf + *len, cap - *len, "%.6g", v);
    else
        *len += (size_t)snprintf(buf + *len, cap - *len, "null");
}

int cli_sim(int argc, char **argv) {
    const char *file = NULL, *out = NULL, *conn_out = NULL, *time_s = NULL, *warm_s = NULL;
    long threads = -1, seed = -1;
    int no_record = 0, csv = 0;
    const char *ov[64];
    char setbuf[160];
    size_t nov = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--no-record")) {
            no_record = 1;
            continue;
        }
        if (!strcmp(a, "--csv")) {
            csv = 1;
            continue;
        }
        if (a[0] == '-' && a[1] == '-') {
            if (!v) {
                fprintf(stderr, "soma sim: %s needs a value\n", a);
                return 2;
            }
            i++;
            if (!strcmp(a, "--time")) time_s = v;
            else if (!strcmp(a, "--warmup")) warm_s = v;
            else if (!strcmp(a, "--out")) out = v;
            else if (!strcmp(a, "--write-connectivity")) conn_out = v;
            else if (!strcmp(a, "--threads")) {
                if ((threads = cli_long(a, v, 0, 256)) < 0) return 2;
            } else if (!strcmp(a, "--seed")) {
                if ((seed = cli_long(a, v, 0, 0x7fffffffL)) < 0) return 2;
            } else if (!strcmp(a, "--set")) {
                snprintf(setbuf, sizeof setbuf, "set=%s", v);
                if (nov < 64) ov[nov++] = setbuf;
            } else if (!strcmp(a, "--param")) {
                if (nov < 64) ov[nov++] = v;
            } else {
                fprintf(stderr, "soma sim: unknown option %s\n", a);
                usage();
                return 2;
            }
            continue;
        }
        if (file) {
            fprintf(stderr, "soma sim: more than one file given ('%s' and '%s')\n", file, a);
            return 2;
        }
        file = a;
    }
    if (!file) {
        usage();
        return 2;
    }
    char err[1024];
    soma_net *sn = NULL;
    soma_sim_file_opts fo;
    int rc = soma_net_load_yaml(file, ov, nov, &sn, NULL, NULL, &fo, err, sizeof err);
    if (rc) {
        fprintf(stderr, "soma sim: %s\n", err);
        return 1;
    }
    if (time_s && soma_parse_quantity(time_s, "ms", &fo.time_ms, err, sizeof err)) {
        fprintf(stderr, "soma sim: --time: %s\n", err);
        return 2;
    }
    if (warm_s && soma_parse_quantity(warm_s, "ms", &fo.warmup_ms, err, sizeof err)) {
        fprintf(stderr, "soma sim: --warmup: %s\n", err);
        return 2;
    }
    if (fo.time_ms < 0 || fo.warmup_ms < 0) {
        fprintf(stderr, "soma sim: --time and --warmup must be >= 0\n");
        return 2;
    }
    char outdir[2048];
    if (out)
        snprintf(outdir, sizeof outdir, "%s", out);
    else {
        const char *base = strrchr(file, '/');
        base = base ? base + 1 : file;
        snprintf(outdir, sizeof outdir, "runs/%.*s", (int)(strcspn(base, ".")), base);
    }
    if (cli_mkdirs(outdir)) {
        fprintf(stderr, "soma sim: cannot create output folder %s\n", outdir);
        soma_net_free(sn);
        return 1;
    }
    soma_sim_opts so;
    soma_sim_opts_default(&so);
    so.threads = threads >= 0 ? (int)threads : fo.threads;
    so.seed = seed >= 0 ? (uint64_t)seed : fo.seed;
    so.record_spikes = no_record ? 0 : fo.record_spikes;
    soma_sim *sim = NULL;
    fprintf(stderr, "building %s ...\n", file);
    rc = soma_sim_create(&sim, sn, &so, err, sizeof err);
    if (rc) {
        fprintf(stderr, "soma sim: %s\n", err);
        soma_net_free(sn);
        return 1;
    }
    soma_sim_stats st;
    soma_sim_stats_get(sim, &st);
    fprintf(stderr, "%zu neurons, %zu synapses (%.0f bytes each), delays %zu..%zu steps, built in %.2f s, %d thread(s)\n",
            st.neurons, st.synapses, st.bytes_per_synapse, st.min_delay_steps, st.max_delay_steps, st.build_seconds,
            st.threads);
    if (conn_out && soma_sim_write_connectivity(sim, conn_out)) {
        fprintf(stderr, "soma sim: %s\n", soma_sim_errmsg(sim));
        rc = 1;
        goto end;
    }
    if (fo.n_spike_pops)
        for (size_t p = 0; p < soma_sim_pop_count(sim); p++) {
            soma_sim_pop_info pi;
            soma_sim_pop(sim, p, &pi);
            int keep = 0;
            for (size_t k = 0; k < fo.n_spike_pops; k++) keep |= !strcmp(fo.spike_pops[k], pi.name);
            soma_sim_record_spikes(sim, p, keep);
        }
    size_t recs[8];
    for (size_t k = 0; k < fo.n_state; k++) {
        size_t pop;
        soma_net_find_pop(sn, fo.state[k].pop, &pop);
        size_t every = (size_t)llround(fo.state[k].every_ms / st.dt_ms);
        if (soma_sim_record_state(sim, pop, fo.state[k].var, fo.state[k].idx, fo.state[k].n, every ? every : 1,
                                  &recs[k])) {
            fprintf(stderr, "soma sim: %s\n", soma_sim_errmsg(sim));
            rc = 1;
            goto end;
        }
    }
    signal(SIGINT, on_sigint);
    prog pg = {isatty(2), 0};
    size_t npops = soma_sim_pop_count(sim);
    uint64_t *warm_counts = calloc(npops ? npops : 1, sizeof *warm_counts);
    double warm_wall = 0;
    if (fo.warmup_ms > 0) {
        rc = soma_sim_run(sim, fo.warmup_ms, progress, &pg);
        soma_sim_stats_get(sim, &st);
        warm_wall = st.sim_seconds;
    }
    uint64_t step_warm = st.steps;
    for (size_t p = 0; p < npops; p++) {
        soma_sim_pop_info pi;
        soma_sim_pop(sim, p, &pi);
        warm_counts[p] = pi.spikes;
    }
    if (!rc) rc = soma_sim_run(sim, fo.time_ms, progress, &pg);
    if (pg.shown) fputc('\n', stderr);
    int cancelled = rc == SOMA_STATUS_CANCELLED;
    if (rc && !cancelled) {
        fprintf(stderr, "soma sim: %s\n", soma_sim_errmsg(sim));
        free(warm_counts);
        rc = 1;
        goto end;
    }
    soma_sim_stats_get(sim, &st);
    double model_s = (double)(st.steps - step_warm) * st.dt_ms * 1e-3;
    double run_wall = st.sim_seconds - warm_wall;
    double rtf = model_s > 0 ? run_wall / model_s : 0;
    size_t nsp = 0;
    const soma_spike *sp = soma_sim_spikes(sim, &nsp);

    /* metrics.json */
    size_t cap = 8192 + npops * 512, len = 0;
    char *js = malloc(cap);
    char hex[65];
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", st.spikes_sha256[i]);
    len += (size_t)snprintf(js + len, cap - len,
                            "{\n  \"file\": \"%s\",\n  \"neurons\": %zu,\n  \"synapses\": %zu,\n  \"spikes\": %llu,\n"
                            "  \"dt_ms\": %g,\n  \"time_ms\": %g,\n  \"warmup_ms\": %g,\n  \"threads\": %d,\n"
                            "  \"build_seconds\": %.6g,\n  \"sim_seconds\": %.6g,\n  \"real_time_factor\": %.6g,\n"
                            "  \"bytes_per_synapse\": %g,\n  \"connectivity_bytes\": %zu,\n  \"peak_rss_bytes\": %lld,\n"
                            "  \"spikes_sha256\": \"%s\",\n  \"cancelled\": %s,\n",
                            file, st.neurons, st.synapses, (unsigned long long)st.spikes, st.dt_ms, model_s * 1e3,
                            (double)step_warm * st.dt_ms, st.threads, st.build_seconds, run_wall, rtf,
                            st.bytes_per_synapse, st.connectivity_bytes, cli_peak_rss(), hex,
                            cancelled ? "true" : "false");
    const char *keys[] = {"rate_hz", "cv_isi", "fano", "synchrony"};
    double *vals = calloc(npops * 4 + 1, sizeof(double));
    const char **names = calloc(npops + 1, sizeof *names);
    uint32_t *first = calloc(npops + 1, sizeof *first);
    size_t *sizes = calloc(npops + 1, sizeof *sizes);
    double *rates = calloc(npops + 1, sizeof *rates);
    for (size_t p = 0; p < npops; p++) {
        soma_sim_pop_info pi;
        soma_sim_pop(sim, p, &pi);
        names[p] = pi.name;
        first[p] = pi.first;
        sizes[p] = pi.size;
        rates[p] = model_s > 0 ? (double)(pi.spikes - warm_counts[p]) / ((double)pi.size * model_s) : 0;
        vals[p * 4 + 0] = rates[p];
        vals[p * 4 + 1] = vals[p * 4 + 2] = vals[p * 4 + 3] = NAN;
        int recorded = !fo.n_spike_pops;
        for (size_t k = 0; k < fo.n_spike_pops; k++) recorded |= !strcmp(fo.spike_pops[k], pi.name);
        if (sp && recorded) {
            soma_spike_stats ss;
            if (!soma_spike_stats_compute(sp, nsp, pi.first, pi.size, st.dt_ms, step_warm, st.steps, 1.0, 100.0, &ss)) {
                vals[p * 4 + 1] = ss.cv_isi;
                vals[p * 4 + 2] = ss.fano;
                vals[p * 4 + 3] = ss.synchrony;
            }
        }
    }
    if (fo.n_ref) {
        /* The reference rates of the file and soma's relative difference to them. */
        for (int pass = 0; pass < 2; pass++) {
            len += (size_t)snprintf(js + len, cap - len, "  \"%s\": {", pass ? "rate_rel_diff" : "reference_rate_hz");
            for (size_t k = 0; k < fo.n_ref; k++) {
                double mine = NAN;
                for (size_t p = 0; p < npops; p++)
                    if (!strcmp(fo.ref_pop[k], names[p])) mine = rates[p];
                len += (size_t)snprintf(js + len, cap - len, "%s\"%s\": ", k ? ", " : "", fo.ref_pop[k]);
                json_num(js, cap, &len, pass ? (mine - fo.ref_hz[k]) / fo.ref_hz[k] : fo.ref_hz[k]);
            }
            len += (size_t)snprintf(js + len, cap - len, "},\n");
        }
    }
    for (int k = 0; k < 4; k++) {
        len += (size_t)snprintf(js + len, cap - len, "  \"%s\": {", keys[k]);
        for (size_t p = 0; p < npops; p++) {
            len += (size_t)snprintf(js + len, cap - len, "%s\"%s\": ", p ? ", " : "", names[p]);
            json_num(js, cap, &len, vals[p * 4 + k]);
        }
        len += (size_t)snprintf(js + len, cap - len, "}%s\n", k < 3 ? "," : "");
    }
    snprintf(js + len, cap - len, "}\n");
    char path[2300];
    snprintf(path, sizeof path, "%s/metrics.json", outdir);
    if (cli_write_atomic(path, js)) {
        fprintf(stderr, "soma sim: cannot write %s\n", path);
        rc = 1;
    }
    free(js);

    printf("%zu neurons, %zu synapses, %llu spikes; simulated %.3f s in %.3f s (real-time factor %.4f)\n",
           st.neurons, st.synapses, (unsigned long long)st.spikes, model_s, run_wall, rtf);
    for (size_t p = 0; p < npops; p++)
        printf("  %-10s rate %8.3f Hz   CV ISI %6.3f   Fano %6.3f   synchrony %6.3f\n", names[p], vals[p * 4],
               vals[p * 4 + 1], vals[p * 4 + 2], vals[p * 4 + 3]);
    if (sp) {
        snprintf(path, sizeof path, "%s/spikes.bin", outdir);
        if (write_spikes_bin(path, sp, nsp, st.dt_ms)) fprintf(stderr, "soma sim: cannot write %s\n", path), rc = 1;
        if (csv) {
            snprintf(path, sizeof path, "%s/spikes.csv", outdir);
            if (write_spikes_csv(path, sp, nsp, st.dt_ms)) fprintf(stderr, "soma sim: cannot write %s\n", path), rc = 1;
        }
        snprintf(path, sizeof path, "%s/raster.png", outdir);
        uint64_t s0 = step_warm, s1 = st.steps;
        /* At most 1 s of raster, the end of the run. */
        uint64_t span = (uint64_t)(1000.0 / st.dt_ms);
        if (s1 - s0 > span) s0 = s1 - span;
        if (soma_plot_sim_raster(path, sp, nsp, npops, names, first, sizes, st.dt_ms, s0, s1, 200, 1.0, err, sizeof err))
            fprintf(stderr, "soma sim: %s\n", err), rc = 1;
    }
    for (size_t k = 0; k < fo.n_state; k++) {
        size_t ns, n, every;
        const float *x = soma_sim_state_data(sim, recs[k], &ns, &n, &every);
        snprintf(path, sizeof path, "%s/state_%s_%s.csv", outdir, fo.state[k].pop, fo.state[k].var);
        if (write_state_csv(path, x, ns, n, every, st.dt_ms, fo.state[k].idx)) {
            fprintf(stderr, "soma sim: cannot write %s\n", path);
            rc = 1;
        }
    }
    if (sp) {
        snprintf(path, sizeof path, "%s/pop_rate.csv", outdir);
        if (write_rate_csv(path, sp, nsp, npops, names, first, sizes, st.dt_ms, st.steps, fo.rate_bin_ms)) {
            fprintf(stderr, "soma sim: cannot write %s\n", path);
            rc = 1;
        }
    }
    double *ref = NULL;
    if (fo.n_ref) {
        ref = malloc(npops * sizeof *ref);
        for (size_t p = 0; p < npops; p++) {
            ref[p] = NAN;
            for (size_t k = 0; k < fo.n_ref; k++)
                if (!strcmp(fo.ref_pop[k], names[p])) ref[p] = fo.ref_hz[k];
        }
    }
    snprintf(path, sizeof path, "%s/rates.png", outdir);
    if (soma_plot_rates(path, npops, names, rates, ref, err, sizeof err)) fprintf(stderr, "soma sim: %s\n", err), rc = 1;
    free(ref);
    printf("wrote %s/metrics.json%s%s\n", outdir, sp ? ", spikes.bin, pop_rate.csv, raster.png, rates.png" : ", rates.png",
           fo.n_state ? ", state_*.csv" : "");
    free(vals);
    free(names);
    free(first);
    free(sizes);
    free(rates);
    free(warm_counts);
    if (cancelled) {
        fprintf(stderr, "soma sim: interrupted; results cover the simulated time only\n");
        rc = 130;
    }
end:
    soma_sim_free(sim);
    soma_net_free(sn);
    return rc;
}
