/* output.c — a simulation run as a network file's simulate section
 * describes it (soma_sim_session), and what it leaves behind: metrics.json,
 * spikes (binary, CSV), population-rate and state traces, raster and rate
 * plots, and the comparison with reference rates.
 *
 * It is built only on the simulator's public API, so it can sit beside the
 * executor without knowing how the executor keeps its state. The session
 * exists because a run has a measured window: rates and statistics cover
 * the steps after the warm-up, so something must remember the counters at
 * the moment the warm-up ended; the simulator itself counts from step 0.
 *
 * Every file is written atomically: to "PATH.tmp.<pid>" in the same folder,
 * flushed and fsync'ed, then renamed onto PATH, so a failed write leaves an
 * earlier PATH as it was (as src/io/model_file.c does). */
#define _POSIX_C_SOURCE 200809L
#include "soma.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "core/file.h"

/* Statistics windows of metrics.json: synchrony bins and Fano windows. */
#define STATS_BIN_MS 1.0
#define FANO_WINDOW_MS 100.0
/* The raster shows at most this much of the end of the run, and this many
 * neurons of each population. */
#define RASTER_SPAN_MS 1000.0
#define RASTER_MAX_PER_POP 200
#define RASTER_BIN_MS 1.0

struct soma_sim_session {
    soma_sim *sim;            /* borrowed */
    soma_sim_file_opts fo;    /* copy */
    char *source;             /* copy; "" if none */
    size_t rec[8];            /* state recorder of fo.state[k] */
    size_t npops;
    uint64_t step0;           /* steps run when the window opened */
    double wall0;             /* simulator wall seconds then */
    uint64_t *spikes0;        /* [npops] spike counts then */
    int cancelled;
};

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Remember the simulator's counters: the measured window starts here. */
static void open_window(soma_sim_session *s) {
    soma_sim_stats st;
    soma_sim_stats_get(s->sim, &st);
    s->step0 = st.steps;
    s->wall0 = st.sim_seconds;
    for (size_t p = 0; p < s->npops; p++) {
        soma_sim_pop_info pi;
        soma_sim_pop(s->sim, p, &pi);
        s->spikes0[p] = pi.spikes;
    }
}

static int spikes_kept(const soma_sim_file_opts *fo, const char *pop) {
    if (!fo->n_spike_pops) return 1;
    for (size_t k = 0; k < fo->n_spike_pops; k++)
        if (!strcmp(fo->spike_pops[k], pop)) return 1;
    return 0;
}

int soma_sim_session_create(soma_sim_session **out, soma_sim *sim, const soma_sim_file_opts *fo, const char *source,
                            char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!out) return fail(err, errlen, SOMA_STATUS_INVALID, "soma_sim_session_create needs somewhere to put it");
    *out = NULL;
    if (!sim || !fo) return fail(err, errlen, SOMA_STATUS_INVALID, "soma_sim_session_create needs a simulator and options");
    if (fo->n_state > 8) return fail(err, errlen, SOMA_STATUS_INVALID, "at most 8 state recorders");
    soma_sim_session *s = calloc(1, sizeof *s);
    size_t np = soma_sim_pop_count(sim);
    if (!s) return fail(err, errlen, SOMA_STATUS_NOMEM, "out of memory");
    s->sim = sim;
    s->fo = *fo;
    s->npops = np;
    s->source = strdup(source ? source : "");
    s->spikes0 = calloc(np ? np : 1, sizeof *s->spikes0);
    if (!s->source || !s->spikes0) {
        soma_sim_session_free(s);
        return fail(err, errlen, SOMA_STATUS_NOMEM, "out of memory");
    }
    if (fo->n_spike_pops)
        for (size_t p = 0; p < np; p++) {
            soma_sim_pop_info pi;
            soma_sim_pop(sim, p, &pi);
            soma_sim_record_spikes(sim, p, spikes_kept(fo, pi.name));
        }
    soma_sim_stats st;
    soma_sim_stats_get(sim, &st);
    for (size_t k = 0; k < fo->n_state; k++) {
        size_t pop = np;
        for (size_t p = 0; p < np; p++) {
            soma_sim_pop_info pi;
            soma_sim_pop(sim, p, &pi);
            if (!strcmp(pi.name, fo->state[k].pop)) pop = p;
        }
        if (pop == np) {
            soma_sim_session_free(s);
            return fail(err, errlen, SOMA_STATUS_INVALID, "record.state: no population '%s'", fo->state[k].pop);
        }
        size_t every = (size_t)llround(fo->state[k].every_ms / st.dt_ms);
        int rc = soma_sim_record_state(sim, pop, fo->state[k].var, fo->state[k].idx, fo->state[k].n,
                                       every ? every : 1, &s->rec[k]);
        if (rc) {
            fail(err, errlen, rc, "%s", soma_sim_errmsg(sim));
            soma_sim_session_free(s);
            return rc;
        }
    }
    open_window(s);
    *out = s;
    return SOMA_STATUS_OK;
}

void soma_sim_session_free(soma_sim_session *s) {
    if (!s) return;
    free(s->source);
    free(s->spikes0);
    free(s);
}

int soma_sim_session_run(soma_sim_session *s, soma_sim_progress_fn cb, void *user) {
    if (!s) return SOMA_STATUS_INVALID;
    int rc = 0;
    if (s->fo.warmup_ms > 0) rc = soma_sim_run(s->sim, s->fo.warmup_ms, cb, user);
    open_window(s);
    if (!rc) rc = soma_sim_run(s->sim, s->fo.time_ms, cb, user);
    if (rc == SOMA_STATUS_CANCELLED) s->cancelled = 1;
    return rc;
}

int soma_sim_session_summary(const soma_sim_session *s, soma_sim_summary *out) {
    if (!s || !out) return SOMA_STATUS_INVALID;
    soma_sim_stats st;
    soma_sim_stats_get(s->sim, &st);
    memset(out, 0, sizeof *out);
    out->step0 = s->step0;
    out->step1 = st.steps;
    out->warmup_ms = (double)s->step0 * st.dt_ms;
    out->time_ms = (double)(st.steps - s->step0) * st.dt_ms;
    out->wall_seconds = st.sim_seconds - s->wall0;
    out->real_time_factor = out->time_ms > 0 ? out->wall_seconds / (out->time_ms * 1e-3) : 0;
    out->cancelled = s->cancelled;
    size_t n = 0;
    out->spikes_recorded = soma_sim_spikes(s->sim, &n) != NULL;
    return SOMA_STATUS_OK;
}

/* Population pop's rate over the window (Hz) from the simulator's counters,
 * so it needs no recorded spikes; 0 for an empty window. */
static double window_rate(const soma_sim_session *s, size_t pop) {
    soma_sim_stats st;
    soma_sim_stats_get(s->sim, &st);
    soma_sim_pop_info pi;
    soma_sim_pop(s->sim, pop, &pi);
    double model_s = (double)(st.steps - s->step0) * st.dt_ms * 1e-3;
    return model_s > 0 ? (double)(pi.spikes - s->spikes0[pop]) / ((double)pi.size * model_s) : 0;
}

int soma_sim_session_pop_metrics(const soma_sim_session *s, size_t pop, soma_sim_pop_metrics *out) {
    if (!s || !out || pop >= s->npops) return SOMA_STATUS_INVALID;
    soma_sim_stats st;
    soma_sim_stats_get(s->sim, &st);
    soma_sim_pop_info pi;
    soma_sim_pop(s->sim, pop, &pi);
    out->name = pi.name;
    out->rate_hz = window_rate(s, pop);
    out->cv_isi = out->fano = out->synchrony = NAN;
    size_t nsp = 0;
    const soma_spike *sp = soma_sim_spikes(s->sim, &nsp);
    out->recorded = sp && spikes_kept(&s->fo, pi.name);
    soma_spike_stats ss;
    if (out->recorded && !soma_spike_stats_compute(sp, nsp, (uint32_t)pi.first, pi.size, st.dt_ms, s->step0, st.steps,
                                                   STATS_BIN_MS, FANO_WINDOW_MS, &ss)) {
        out->cv_isi = ss.cv_isi;
        out->fano = ss.fano;
        out->synchrony = ss.synchrony;
    }
    return SOMA_STATUS_OK;
}

/* The measured rate of the population named pop (the last of that name), NaN if none. */
static double rate_of(const soma_sim_session *s, const char *pop) {
    double r = NAN;
    for (size_t p = 0; p < s->npops; p++) {
        soma_sim_pop_info pi;
        soma_sim_pop(s->sim, p, &pi);
        if (!strcmp(pi.name, pop)) r = window_rate(s, p);
    }
    return r;
}

size_t soma_sim_compare_rates(const soma_sim_session *s, soma_sim_rate_cmp *out, size_t cap) {
    if (!s) return 0;
    size_t n = s->fo.n_ref < cap ? s->fo.n_ref : cap;
    for (size_t k = 0; k < n && out; k++) {
        out[k].pop = s->fo.ref_pop[k];
        out[k].ref_hz = s->fo.ref_hz[k];
        out[k].rate_hz = rate_of(s, s->fo.ref_pop[k]);
        out[k].rel_diff = (out[k].rate_hz - out[k].ref_hz) / out[k].ref_hz;
    }
    return s->fo.n_ref;
}

/* Atomic files: core/file.h. */
static long long peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return (long long)ru.ru_maxrss * 1024LL;
}

static void json_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.6g", v);
    else fputs("null", f);
}

int soma_sim_write_metrics(const soma_sim_session *s, const char *path, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!s || !path) return fail(err, errlen, SOMA_STATUS_INVALID, "soma_sim_write_metrics needs a session and a path");
    soma_sim_stats st;
    soma_sim_stats_get(s->sim, &st);
    soma_sim_summary sum;
    soma_sim_session_summary(s, &sum);
    size_t np = s->npops;
    soma_sim_pop_metrics *m = calloc(np ? np : 1, sizeof *m);
    if (!m) return fail(err, errlen, SOMA_STATUS_NOMEM, "out of memory");
    for (size_t p = 0; p < np; p++) soma_sim_session_pop_metrics(s, p, &m[p]);
    char tmp[4200];
    FILE *f = soma__tmp_open(path, "w", tmp, sizeof tmp, err, errlen);
    if (!f) {
        free(m);
        return SOMA_STATUS_IO;
    }
    char hex[65];
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", st.spikes_sha256[i]);
    fprintf(f,
            "{\n  \"file\": \"%s\",\n  \"neurons\": %zu,\n  \"synapses\": %zu,\n  \"spikes\": %llu,\n"
            "  \"dt_ms\": %g,\n  \"time_ms\": %g,\n  \"warmup_ms\": %g,\n  \"threads\": %d,\n"
            "  \"build_seconds\": %.6g,\n  \"sim_seconds\": %.6g,\n  \"real_time_factor\": %.6g,\n"
            "  \"bytes_per_synapse\": %g,\n  \"connectivity_bytes\": %zu,\n  \"peak_rss_bytes\": %lld,\n"
            "  \"spikes_sha256\": \"%s\",\n  \"cancelled\": %s,\n",
            s->source, st.neurons, st.synapses, (unsigned long long)st.spikes, st.dt_ms, sum.time_ms, sum.warmup_ms,
            st.threads, st.build_seconds, sum.wall_seconds, sum.real_time_factor, st.bytes_per_synapse,
            st.connectivity_bytes, peak_rss_bytes(), hex, s->cancelled ? "true" : "false");
    if (s->fo.n_ref) {
        /* The reference rates of the file and soma's relative difference to them. */
        soma_sim_rate_cmp cmp[32];
        size_t n = soma_sim_compare_rates(s, cmp, 32);
        for (int pass = 0; pass < 2; pass++) {
            fprintf(f, "  \"%s\": {", pass ? "rate_rel_diff" : "reference_rate_hz");
            for (size_t k = 0; k < n; k++) {
                fprintf(f, "%s\"%s\": ", k ? ", " : "", cmp[k].pop);
                json_num(f, pass ? cmp[k].rel_diff : cmp[k].ref_hz);
            }
            fprintf(f, "},\n");
        }
    }
    const char *keys[] = {"rate_hz", "cv_isi", "fano", "synchrony"};
    for (int k = 0; k < 4; k++) {
        fprintf(f, "  \"%s\": {", keys[k]);
        for (size_t p = 0; p < np; p++) {
            const double v[4] = {m[p].rate_hz, m[p].cv_isi, m[p].fano, m[p].synchrony};
            fprintf(f, "%s\"%s\": ", p ? ", " : "", m[p].name);
            json_num(f, v[k]);
        }
        fprintf(f, "}%s\n", k < 3 ? "," : "");
    }
    fprintf(f, "}\n");
    free(m);
    return soma__tmp_commit(f, 0, tmp, path, err, errlen);
}

/* ------------------------------------------------------ spikes, traces */
/* "SOMASPK1", dt (f64), count (u64), then (step, id) pairs as u32. */
static int write_spikes_bin(const char *path, const soma_spike *sp, size_t n, double dt, char *err, size_t errlen) {
    char tmp[4200];
    FILE *f = soma__tmp_open(path, "wb", tmp, sizeof tmp, err, errlen);
    if (!f) return SOMA_STATUS_IO;
    uint64_t cnt = n;
    int bad = fwrite("SOMASPK1", 1, 8, f) != 8;
    bad |= fwrite(&dt, sizeof dt, 1, f) != 1;
    bad |= fwrite(&cnt, sizeof cnt, 1, f) != 1;
    if (n) bad |= fwrite(sp, sizeof *sp, n, f) != n;
    return soma__tmp_commit(f, bad, tmp, path, err, errlen);
}

static int write_spikes_csv(const char *path, const soma_spike *sp, size_t n, double dt, char *err, size_t errlen) {
    char tmp[4200];
    FILE *f = soma__tmp_open(path, "w", tmp, sizeof tmp, err, errlen);
    if (!f) return SOMA_STATUS_IO;
    fprintf(f, "time_ms,neuron\n");
    for (size_t i = 0; i < n; i++) fprintf(f, "%.6g,%u\n", (double)sp[i].step * dt, sp[i].id);
    return soma__tmp_commit(f, 0, tmp, path, err, errlen);
}

/* Sampled state: time_ms, then one column per recorded neuron. Row r is the
 * state at the end of step r*every (time (r*every + 1) dt). */
static int write_state_csv(const char *path, const float *x, size_t ns, size_t n, size_t every, double dt,
                           const size_t *idx, char *err, size_t errlen) {
    char tmp[4200];
    FILE *f = soma__tmp_open(path, "w", tmp, sizeof tmp, err, errlen);
    if (!f) return SOMA_STATUS_IO;
    fprintf(f, "time_ms");
    for (size_t j = 0; j < n; j++) fprintf(f, ",n%zu", idx[j]);
    fputc('\n', f);
    for (size_t r = 0; r < ns; r++) {
        fprintf(f, "%.6g", (double)(r * every + 1) * dt);
        for (size_t j = 0; j < n; j++) fprintf(f, ",%.7g", (double)x[r * n + j]);
        fputc('\n', f);
    }
    return soma__tmp_commit(f, 0, tmp, path, err, errlen);
}

/* Population rates (Hz) over the whole run (warm-up included) in bins of
 * bin_ms: time_ms (bin start), one column per population. */
static int write_rate_csv(const soma_sim_session *s, const char *path, const soma_spike *sp, size_t nsp,
                          char *err, size_t errlen) {
    soma_sim_stats st;
    soma_sim_stats_get(s->sim, &st);
    size_t np = s->npops;
    double dt = st.dt_ms;
    size_t bin = (size_t)llround(s->fo.rate_bin_ms / dt);
    if (!bin) bin = 1;
    size_t nb = (size_t)((st.steps + bin - 1) / bin);
    double *cnt = calloc(nb * np + 1, sizeof *cnt);
    soma_sim_pop_info *pi = calloc(np + 1, sizeof *pi);
    if (!cnt || !pi) {
        free(cnt);
        free(pi);
        return fail(err, errlen, SOMA_STATUS_NOMEM, "out of memory");
    }
    for (size_t p = 0; p < np; p++) soma_sim_pop(s->sim, p, &pi[p]);
    for (size_t k = 0; k < nsp; k++) {
        size_t b = sp[k].step / bin;
        for (size_t p = 0; p < np; p++)
            if (sp[k].id >= pi[p].first && sp[k].id < pi[p].first + pi[p].size && b < nb) cnt[b * np + p] += 1;
    }
    char tmp[4200];
    FILE *f = soma__tmp_open(path, "w", tmp, sizeof tmp, err, errlen);
    if (!f) {
        free(cnt);
        free(pi);
        return SOMA_STATUS_IO;
    }
    fprintf(f, "time_ms");
    for (size_t p = 0; p < np; p++) fprintf(f, ",%s", pi[p].name);
    fputc('\n', f);
    for (size_t b = 0; b < nb; b++) {
        fprintf(f, "%.6g", (double)(b * bin) * dt);
        for (size_t p = 0; p < np; p++)
            fprintf(f, ",%.6g", cnt[b * np + p] / ((double)pi[p].size * (double)bin * dt * 1e-3));
        fputc('\n', f);
    }
    free(cnt);
    free(pi);
    return soma__tmp_commit(f, 0, tmp, path, err, errlen);
}

/* Keep the first error's status and message; later writes still run. */
static void keep_first(int *rc, int r, char *err, size_t errlen, const char *msg) {
    if (r && !*rc) {
        *rc = r;
        if (err && errlen && msg != err) snprintf(err, errlen, "%s", msg);
    }
}

int soma_sim_write_records(const soma_sim_session *s, const char *dir, int csv, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!s || !dir) return fail(err, errlen, SOMA_STATUS_INVALID, "soma_sim_write_records needs a session and a folder");
    soma_sim_stats st;
    soma_sim_stats_get(s->sim, &st);
    size_t nsp = 0;
    const soma_spike *sp = soma_sim_spikes(s->sim, &nsp);
    char path[4096], e[1024];
    int rc = 0;
    if (sp) {
        snprintf(path, sizeof path, "%s/spikes.bin", dir);
        keep_first(&rc, write_spikes_bin(path, sp, nsp, st.dt_ms, e, sizeof e), err, errlen, e);
        if (csv) {
            snprintf(path, sizeof path, "%s/spikes.csv", dir);
            keep_first(&rc, write_spikes_csv(path, sp, nsp, st.dt_ms, e, sizeof e), err, errlen, e);
        }
    }
    for (size_t k = 0; k < s->fo.n_state; k++) {
        size_t ns, n, every;
        const float *x = soma_sim_state_data(s->sim, s->rec[k], &ns, &n, &every);
        snprintf(path, sizeof path, "%s/state_%s_%s.csv", dir, s->fo.state[k].pop, s->fo.state[k].var);
        keep_first(&rc, write_state_csv(path, x, ns, n, every, st.dt_ms, s->fo.state[k].idx, e, sizeof e), err,
                   errlen, e);
    }
    if (sp) {
        snprintf(path, sizeof path, "%s/pop_rate.csv", dir);
        keep_first(&rc, write_rate_csv(s, path, sp, nsp, e, sizeof e), err, errlen, e);
    }
    return rc;
}

/* ---------------------------------------------------------------- plots */
int soma_sim_write_plots(const soma_sim_session *s, const char *dir, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!s || !dir) return fail(err, errlen, SOMA_STATUS_INVALID, "soma_sim_write_plots needs a session and a folder");
    soma_sim_stats st;
    soma_sim_stats_get(s->sim, &st);
    size_t np = s->npops;
    const char **names = calloc(np + 1, sizeof *names);
    uint32_t *first = calloc(np + 1, sizeof *first);
    size_t *sizes = calloc(np + 1, sizeof *sizes);
    double *rates = calloc(np + 1, sizeof *rates), *ref = calloc(np + 1, sizeof *ref);
    char path[4096], e[1024];
    int rc = 0;
    if (!names || !first || !sizes || !rates || !ref) {
        rc = fail(err, errlen, SOMA_STATUS_NOMEM, "out of memory");
        goto done;
    }
    for (size_t p = 0; p < np; p++) {
        soma_sim_pop_info pi;
        soma_sim_pop(s->sim, p, &pi);
        names[p] = pi.name;
        first[p] = (uint32_t)pi.first;
        sizes[p] = pi.size;
        rates[p] = window_rate(s, p);
        ref[p] = NAN;
        for (size_t k = 0; k < s->fo.n_ref; k++)
            if (!strcmp(s->fo.ref_pop[k], pi.name)) ref[p] = s->fo.ref_hz[k];
    }
    size_t nsp = 0;
    const soma_spike *sp = soma_sim_spikes(s->sim, &nsp);
    if (sp) {
        snprintf(path, sizeof path, "%s/raster.png", dir);
        uint64_t s0 = s->step0, s1 = st.steps;
        uint64_t span = (uint64_t)(RASTER_SPAN_MS / st.dt_ms);
        if (s1 - s0 > span) s0 = s1 - span;
        keep_first(&rc,
                   soma_plot_sim_raster(path, sp, nsp, np, names, first, sizes, st.dt_ms, s0, s1, RASTER_MAX_PER_POP,
                                        RASTER_BIN_MS, e, sizeof e),
                   err, errlen, e);
    }
    snprintf(path, sizeof path, "%s/rates.png", dir);
    keep_first(&rc, soma_plot_rates(path, np, names, rates, s->fo.n_ref ? ref : NULL, e, sizeof e), err, errlen, e);
done:
    free(names);
    free(first);
    free(sizes);
    free(rates);
    free(ref);
    return rc;
}
