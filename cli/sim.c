/* sim.c — `soma sim FILE.yaml`: build and run a network in the event-driven
 * simulator, show progress (simulated time, real-time factor), and write
 * metrics.json, spikes.bin (+ spikes.csv with --csv), raster.png and
 * rates.png (the library's soma_sim_session does the run and the files).
 * Ctrl-C stops the run and still writes what was simulated. */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"

static volatile sig_atomic_t interrupted = 0;
static void on_sigint(int sig) { (void)sig, interrupted = 1; }

typedef struct prog { int tty, shown; } prog; /* stderr is a terminal; a progress line is on it */

static int progress(void *user, double t_ms, double t_end_ms, double wall) {
    prog *p = user;
    if (interrupted) return 1;
    if (!p->tty) return 0;
    double rtf = t_ms > 0 ? wall / (t_ms * 1e-3) : 0;
    fprintf(stderr, "\rsimulated %9.1f / %.1f ms   real-time factor %.3f   ETA %4.0fs ", t_ms, t_end_ms, rtf,
            rtf * (t_end_ms - t_ms) * 1e-3);
    fflush(stderr);
    p->shown = 1;
    return 0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: soma sim FILE.yaml [--time T] [--warmup T] [--threads N] [--seed S] [--out DIR] [--no-record]\n"
            "                [--csv] [--set NAME] [--param NAME=VALUE]... [--write-connectivity FILE]\n");
}

int cli_sim_parse(int argc, char **argv, cli_sim_args *a) {
    memset(a, 0, sizeof *a);
    a->threads = a->seed = -1;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--no-record") || !strcmp(o, "--csv")) {
            *(o[2] == 'c' ? &a->csv : &a->no_record) = 1;
        } else if (o[0] == '-' && o[1] == '-') {
            if (!v) return fprintf(stderr, "soma sim: %s needs a value\n", o), 2;
            i++;
            if (!strcmp(o, "--time")) a->time_s = v;
            else if (!strcmp(o, "--warmup")) a->warm_s = v;
            else if (!strcmp(o, "--out")) a->out = v;
            else if (!strcmp(o, "--write-connectivity")) a->conn_out = v;
            else if (!strcmp(o, "--threads")) { if ((a->threads = cli_long(o, v, 0, 256)) < 0) return 2; }
            else if (!strcmp(o, "--seed")) { if ((a->seed = cli_long(o, v, 0, 0x7fffffffL)) < 0) return 2; }
            else if (!strcmp(o, "--set")) {
                snprintf(a->setbuf, sizeof a->setbuf, "set=%s", v);
                if (a->nov < 64) a->ov[a->nov++] = a->setbuf;
            } else if (!strcmp(o, "--param")) { if (a->nov < 64) a->ov[a->nov++] = v; }
            else return fprintf(stderr, "soma sim: unknown option %s\n", o), usage(), 2;
        } else if (a->file) {
            return fprintf(stderr, "soma sim: more than one file given ('%s' and '%s')\n", a->file, o), 2;
        } else a->file = o;
    }
    if (!a->file) return usage(), 2;
    return 0;
}

int cli_sim(int argc, char **argv) {
    if (cli_sim_dataset_file(argc, argv)) return cli_sim_model(argc, argv);
    cli_sim_args a;
    int rc = cli_sim_parse(argc, argv, &a);
    if (rc) return rc;
    char err[1024];
    soma_net *net = NULL;
    soma_sim_file_opts fo;
    if (soma_net_load_yaml(a.file, a.ov, a.nov, &net, NULL, NULL, &fo, err, sizeof err))
        return fprintf(stderr, "soma sim: %s\n", err), 1;
    rc = cli_sim_run(&a, net, &fo);
    soma_net_free(net);
    return rc;
}

int cli_sim_run(const cli_sim_args *a, const soma_net *net, soma_sim_file_opts *fo) {
    char err[1024], outdir[2048], path[2300];
    const char *bad = a->time_s && soma_parse_quantity(a->time_s, "ms", &fo->time_ms, err, sizeof err) ? "--time"
                      : a->warm_s && soma_parse_quantity(a->warm_s, "ms", &fo->warmup_ms, err, sizeof err) ? "--warmup"
                                                                                                          : NULL;
    if (bad) return fprintf(stderr, "soma sim: %s: %s\n", bad, err), 2;
    if (fo->time_ms < 0 || fo->warmup_ms < 0) return fprintf(stderr, "soma sim: --time and --warmup must be >= 0\n"), 2;
    const char *base = strrchr(a->file, '/');
    base = base ? base + 1 : a->file;
    if (a->out) snprintf(outdir, sizeof outdir, "%s", a->out);
    else snprintf(outdir, sizeof outdir, "runs/%.*s", (int)strcspn(base, "."), base);
    if (cli_mkdirs(outdir)) return fprintf(stderr, "soma sim: cannot create output folder %s\n", outdir), 1;
    soma_sim_opts so;
    soma_sim_opts_default(&so);
    so.threads = a->threads >= 0 ? (int)a->threads : fo->threads;
    so.seed = a->seed >= 0 ? (uint64_t)a->seed : fo->seed;
    so.record_spikes = a->no_record ? 0 : fo->record_spikes;
    soma_sim *sim = NULL;
    soma_sim_session *ss = NULL;
    fprintf(stderr, "building %s ...\n", a->file);
    if (soma_sim_create(&sim, net, &so, err, sizeof err)) return fprintf(stderr, "soma sim: %s\n", err), 1;
    soma_sim_stats st;
    soma_sim_stats_get(sim, &st);
    fprintf(stderr, "%zu neurons, %zu synapses (%.0f bytes each), delays %zu..%zu steps, built in %.2f s, %d thread(s)\n",
            st.neurons, st.synapses, st.bytes_per_synapse, st.min_delay_steps, st.max_delay_steps, st.build_seconds,
            st.threads);
    int rc = 1;
    if (a->conn_out && soma_sim_write_connectivity(sim, a->conn_out)) {
        fprintf(stderr, "soma sim: %s\n", soma_sim_errmsg(sim));
        goto end;
    }
    if (soma_sim_session_create(&ss, sim, fo, a->file, err, sizeof err)) {
        fprintf(stderr, "soma sim: %s\n", err);
        goto end;
    }
    signal(SIGINT, on_sigint);
    prog pg = {isatty(2), 0};
    int run = soma_sim_session_run(ss, progress, &pg);
    if (pg.shown) fputc('\n', stderr);
    if (run && run != SOMA_STATUS_CANCELLED) {
        fprintf(stderr, "soma sim: %s\n", soma_sim_errmsg(sim));
        goto end;
    }
    rc = 0;
    snprintf(path, sizeof path, "%s/metrics.json", outdir);
    if (soma_sim_write_metrics(ss, path, err, sizeof err)) fprintf(stderr, "soma sim: %s\n", err), rc = 1;
    soma_sim_summary sum;
    soma_sim_session_summary(ss, &sum);
    soma_sim_stats_get(sim, &st);
    printf("%zu neurons, %zu synapses, %llu spikes; simulated %.3f s in %.3f s (real-time factor %.4f)\n",
           st.neurons, st.synapses, (unsigned long long)st.spikes, sum.time_ms * 1e-3, sum.wall_seconds,
           sum.real_time_factor);
    for (size_t p = 0; p < soma_sim_pop_count(sim); p++) {
        soma_sim_pop_metrics m;
        soma_sim_session_pop_metrics(ss, p, &m);
        printf("  %-10s rate %8.3f Hz   CV ISI %6.3f   Fano %6.3f   synchrony %6.3f\n", m.name, m.rate_hz, m.cv_isi,
               m.fano, m.synchrony);
    }
    if (soma_sim_write_records(ss, outdir, a->csv, err, sizeof err)) fprintf(stderr, "soma sim: %s\n", err), rc = 1;
    if (soma_sim_write_plots(ss, outdir, err, sizeof err)) fprintf(stderr, "soma sim: %s\n", err), rc = 1;
    printf("wrote %s/metrics.json%s%s\n", outdir,
           sum.spikes_recorded ? ", spikes.bin, pop_rate.csv, raster.png, rates.png" : ", rates.png",
           fo->n_state ? ", state_*.csv" : "");
    if (sum.cancelled) fprintf(stderr, "soma sim: interrupted; results cover the simulated time only\n"), rc = 130;
end:
    soma_sim_session_free(ss);
    soma_sim_free(sim);
    return rc;
}
