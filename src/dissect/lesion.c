/* lesion.c — `soma dissect FILE.yaml lesion|stimulate`: silence or drive
 * chosen neurons of a simulated circuit during a time window and measure
 * every population before, during and after it (docs/dissect.md, "lesion").
 *
 * Built only on the simulator's public API and its hooks: a lesion is a
 * MASK of 0 on `<pop>.spikes` (no spike leaves the neuron, so no target
 * receives anything from it: the same as zeroing its outgoing weights,
 * which test_dissect_lesion checks bit for bit); a stimulus is an OVERRIDE
 * that adds a current on `<pop>.current` or Poisson events on
 * `<pop>.input`. The hooks only write their event's values and read data
 * fixed before the run, so they are safe on any number of threads, and the
 * Poisson draws are keyed by (seed, neuron, step): the run does not depend
 * on the thread count. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis.h"
#include "core/err.h"
#include "core/json.h"
#include "core/file.h"
#include "soma.h"

#define STREAM_DRAW 0x1E510Au    /* the choice of neurons */
#define STREAM_POISSON 0x57120u  /* the Poisson events */
#define CHI_BIN_MS 1.0
#define FANO_WINDOW_MS 100.0

void soma_dissect_circuit_opts_default(soma_dissect_circuit_opts *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->time_ms = 1000.0;
    o->seed = 1;
}

/* What a hook needs: the chosen neurons as flags over the population, the
 * window in steps, and the stimulus. */
typedef struct act {
    const uint8_t *chosen; /* [size] */
    uint64_t s0, s1;
    int action;
    float current;         /* pA */
    double lam;            /* Poisson events per step */
    float weight;
    uint64_t key;          /* Poisson stream */
} act;

static int lesion_hook(void *user, const soma_hook_event *ev) {
    const act *a = user;
    if (ev->step < a->s0 || ev->step >= a->s1) return 0;
    for (size_t i = 0; i < ev->n; i++)
        if (a->chosen[ev->first + i]) ev->data[i] = 0.0f;
    return 0;
}

static int current_hook(void *user, const soma_hook_event *ev) {
    const act *a = user;
    if (ev->step < a->s0 || ev->step >= a->s1) return 0;
    for (size_t i = 0; i < ev->n; i++)
        if (a->chosen[ev->first + i]) ev->data[i] += a->current;
    return 0;
}

/* Poisson count for mean lam from a uniform u, by inversion. */
static unsigned poisson_count(double lam, double u) {
    double p = exp(-lam), F = p;
    unsigned k = 0;
    while (u > F && k < 1000) {
        k++;
        p *= lam / k;
        F += p;
        if (p < 1e-300) break;
    }
    return k;
}

static int poisson_hook(void *user, const soma_hook_event *ev) {
    const act *a = user;
    if (ev->step < a->s0 || ev->step >= a->s1) return 0;
    for (size_t i = 0; i < ev->n; i++) {
        size_t j = ev->first + i;
        if (!a->chosen[j]) continue;
        uint32_t w[4];
        soma_philox(a->key, (uint64_t)ev->step * (uint64_t)ev->size + j, w);
        double u = ((double)(w[0] >> 5) * 67108864.0 + (double)(w[1] >> 6)) * (1.0 / 9007199254740992.0);
        unsigned k = poisson_count(a->lam, u);
        if (k) ev->data[i] += (float)k * a->weight;
    }
    return 0;
}

void soma_dissect_circuit_free(soma_dissect_circuit *c) {
    if (!c) return;
    free(c->neurons);
    free(c->pops);
    free(c->spikes);
    free(c);
}

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* Check the options against the net; the population's index and size. */
static int check_opts(const soma_net *net, const soma_dissect_circuit_opts *o, size_t *pop, size_t *size, char *err,
                      size_t errlen) {
    if (!o->pop || !*o->pop) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--pop: which population? expected --pop NAME");
    if (soma_net_find_pop(net, o->pop, pop)) {
        char names[512] = "";
        size_t len = 0;
        for (size_t p = 0; p < soma_net_pop_count(net) && len < sizeof names - 80; p++) {
            soma_pop_info pi;
            soma_net_pop_info(net, p, &pi);
            len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", p ? ", " : "", pi.name);
        }
        return soma__errf(err, errlen, SOMA_STATUS_NOTFOUND, "--pop '%s': no such population; the network has %s",
                          o->pop, names);
    }
    soma_pop_info pi;
    soma_net_pop_info(net, *pop, &pi);
    *size = pi.size;
    if (!strcmp(pi.model, "input"))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID,
                          "--pop '%s': a model input population (its values are data) cannot be lesioned or stimulated",
                          o->pop);
    if (o->action == SOMA_DISSECT_STIMULATE && !strcmp(pi.model, "spike_source"))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID,
                          "--pop '%s': a spike_source population plays its file and takes no input to stimulate",
                          o->pop);
    if (o->action != SOMA_DISSECT_LESION && o->action != SOMA_DISSECT_STIMULATE)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "unknown action %d; expected lesion or stimulate", o->action);
    if (o->fraction != 0 && !(o->fraction > 0 && o->fraction <= 1))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--fraction %g: expected a fraction in (0, 1]", o->fraction);
    if (o->fraction == 0 && !o->nneurons)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "which neurons? expected --fraction F or --neurons I,J,...");
    if (o->fraction == 0) {
        if (!o->neurons) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--neurons: no list given");
        for (size_t k = 0; k < o->nneurons; k++) {
            if (o->neurons[k] >= pi.size)
                return soma__errf(err, errlen, SOMA_STATUS_INVALID,
                                  "--neurons: index %zu is out of range for population '%s' (%zu neurons: 0 to %zu)",
                                  o->neurons[k], pi.name, pi.size, pi.size - 1);
            for (size_t j = 0; j < k; j++)
                if (o->neurons[j] == o->neurons[k])
                    return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--neurons: index %zu is listed twice",
                                      o->neurons[k]);
        }
    }
    if (!(o->time_ms > 0) || !isfinite(o->time_ms))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--t %g ms: expected a positive duration", o->time_ms);
    if (!(o->t0_ms >= 0 && o->t0_ms < o->t1_ms && o->t1_ms <= o->time_ms))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID,
                          "--window %g:%g ms: expected T0:T1 with 0 <= T0 < T1 <= the run's time (--t, %g ms)",
                          o->t0_ms, o->t1_ms, o->time_ms);
    if (o->action == SOMA_DISSECT_STIMULATE) {
        if (!(o->rate_hz >= 0) || !isfinite(o->rate_hz))
            return soma__errf(err, errlen, SOMA_STATUS_INVALID, "--rate %g Hz: expected a rate > 0", o->rate_hz);
        if (o->rate_hz > 0 && (!(o->weight != 0) || !isfinite(o->weight)))
            return soma__errf(err, errlen, SOMA_STATUS_INVALID,
                              "--weight %g: expected a nonzero weight for each Poisson event (with --rate)", o->weight);
        if (o->rate_hz == 0 && (!(o->current_pa != 0) || !isfinite(o->current_pa)))
            return soma__errf(err, errlen, SOMA_STATUS_INVALID,
                              "stimulate needs --current I (pA, nonzero) or --rate HZ --weight W");
    }
    return 0;
}

/* The population statistics of window w of c (spikes already in c). */
static void measure(soma_dissect_circuit *c, int w) {
    uint64_t a = c->step[w], b = c->step[w + 1];
    double dur_s = (double)(b - a) * c->dt_ms * 1e-3;
    size_t i0 = soma__spike_lower_bound(c->spikes, c->nspikes, a), i1 = soma__spike_lower_bound(c->spikes, c->nspikes, b);
    uint64_t bin = soma__whole_steps(SOMA_DISSECT_CIRCUIT_SYNC_BIN_MS, c->dt_ms);
    size_t nbins = bin && b > a ? (size_t)((b - a) / bin) : 0; /* whole bins only */
    double *cnt = nbins ? calloc(nbins, sizeof *cnt) : NULL;
    uint64_t tgt = 0;
    const soma_dissect_circuit_pop *P0 = &c->pops[c->pop_index];
    for (size_t k = 0; k < c->npops; k++) {
        soma_dissect_circuit_pop *P = &c->pops[k];
        P->spikes[w] = 0;
        if (cnt) memset(cnt, 0, nbins * sizeof *cnt);
        for (size_t i = i0; i < i1; i++) {
            uint32_t id = c->spikes[i].id;
            if (id < P->first || id - P->first >= P->size) continue;
            P->spikes[w]++;
            size_t q = cnt ? (size_t)((c->spikes[i].step - a) / bin) : nbins;
            if (q < nbins) cnt[q] += 1;
            if (k == c->pop_index && bsearch(&(size_t){id - P0->first}, c->neurons, c->n, sizeof *c->neurons, cmp_size))
                tgt++;
        }
        P->rate_hz[w] = dur_s > 0 ? (double)P->spikes[w] / ((double)P->size * dur_s) : NAN;
        P->synchrony[w] = NAN;
        if (cnt && nbins >= 2) {
            double m = 0, v = 0;
            for (size_t q = 0; q < nbins; q++) m += cnt[q];
            m /= (double)nbins;
            for (size_t q = 0; q < nbins; q++) v += (cnt[q] - m) * (cnt[q] - m);
            v /= (double)(nbins - 1);
            if (m > 0) P->synchrony[w] = v / m;
        }
        soma_spike_stats st;
        P->cv_isi[w] = P->chi[w] = NAN;
        if (b > a && !soma_spike_stats_compute(c->spikes, c->nspikes, P->first, P->size, c->dt_ms, a, b, CHI_BIN_MS,
                                               FANO_WINDOW_MS, &st)) {
            P->cv_isi[w] = st.cv_isi;
            P->chi[w] = st.synchrony;
        }
    }
    c->target_rate_hz[w] = dur_s > 0 ? (double)tgt / ((double)c->n * dur_s) : NAN;
    c->rest_rate_hz[w] = dur_s > 0 && P0->size > c->n
                             ? (double)(P0->spikes[w] - tgt) / ((double)(P0->size - c->n) * dur_s) : NAN;
    free(cnt);
}

int soma_dissect_circuit_run(const soma_net *net, const soma_sim_opts *so, const soma_dissect_circuit_opts *o,
                             soma_dissect_circuit **out, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!out) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "soma_dissect_circuit_run needs somewhere to put it");
    *out = NULL;
    if (!net || !o) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "soma_dissect_circuit_run needs a net and options");
    size_t pop = 0, N = 0;
    int rc = check_opts(net, o, &pop, &N, err, errlen);
    if (rc) return rc;

    soma_dissect_circuit *c = calloc(1, sizeof *c);
    uint8_t *chosen = calloc(N, 1);
    size_t *perm = NULL;
    soma_sim *sim = NULL;
    soma_hooks *h = NULL;
    if (!c || !chosen) {
        rc = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "out of memory");
        goto done;
    }
    c->action = o->action, c->pop_index = pop, c->fraction = o->fraction, c->seed = o->seed;
    c->current_pa = o->action == SOMA_DISSECT_STIMULATE && o->rate_hz == 0 ? o->current_pa : 0;
    c->rate_hz = o->action == SOMA_DISSECT_STIMULATE ? o->rate_hz : 0;
    c->weight = c->rate_hz > 0 ? o->weight : 0;
    snprintf(c->pop, sizeof c->pop, "%s", o->pop);
    /* The neurons: listed, or a keyed partial Fisher-Yates draw. */
    if (o->fraction > 0) {
        size_t n = (size_t)llround(o->fraction * (double)N);
        c->n = n ? n : 1;
        if (!(perm = malloc(N * sizeof *perm))) {
            rc = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < N; i++) perm[i] = i;
        soma_rng r;
        soma_rng_init(&r, o->seed, STREAM_DRAW);
        for (size_t i = 0; i < c->n; i++) {
            size_t j = i + (size_t)(((uint64_t)soma_rng_u32(&r) * (uint64_t)(N - i)) >> 32);
            size_t t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
    } else c->n = o->nneurons;
    if (!(c->neurons = malloc(c->n * sizeof *c->neurons))) {
        rc = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "out of memory");
        goto done;
    }
    for (size_t k = 0; k < c->n; k++) c->neurons[k] = perm ? perm[k] : o->neurons[k];
    qsort(c->neurons, c->n, sizeof *c->neurons, cmp_size);
    for (size_t k = 0; k < c->n; k++) chosen[c->neurons[k]] = 1;

    soma_sim_opts sopt;
    if (so) sopt = *so;
    else soma_sim_opts_default(&sopt);
    sopt.record_spikes = 1;
    if ((rc = soma_sim_create(&sim, net, &sopt, err, errlen))) goto done;
    soma_sim_stats st;
    soma_sim_stats_get(sim, &st);
    c->dt_ms = st.dt_ms;
    c->t_ms[0] = o->skip_ms > 0 && o->skip_ms < o->t0_ms ? o->skip_ms : 0;
    c->t_ms[1] = o->t0_ms, c->t_ms[2] = o->t1_ms, c->t_ms[3] = o->time_ms;
    for (int k = 0; k < 4; k++) c->step[k] = (uint64_t)llround(c->t_ms[k] / c->dt_ms);

    act a = {chosen, c->step[1], c->step[2], o->action, (float)c->current_pa,
             c->rate_hz * c->dt_ms * 1e-3, (float)c->weight, 0};
    a.key = o->seed * 0x9E3779B97F4A7C15ull ^ STREAM_POISSON;
    char site[160];
    const char *what = o->action == SOMA_DISSECT_LESION ? "spikes" : c->rate_hz > 0 ? "input" : "current";
    snprintf(site, sizeof site, "%s.%s", o->pop, what);
    if ((rc = soma_hooks_create(&h)) ||
        (rc = soma_hooks_add(h, site, o->action == SOMA_DISSECT_LESION ? SOMA_HOOK_MASK : SOMA_HOOK_OVERRIDE,
                             o->action == SOMA_DISSECT_LESION ? lesion_hook : c->rate_hz > 0 ? poisson_hook : current_hook,
                             &a))) {
        soma__errf(err, errlen, rc, "out of memory");
        goto done;
    }
    if ((rc = soma_sim_set_hooks(sim, h))) {
        soma__errf(err, errlen, rc, "%s", soma_sim_errmsg(sim));
        goto done;
    }
    rc = soma_sim_run(sim, o->time_ms, o->progress, o->user);
    if (rc == SOMA_STATUS_CANCELLED) c->cancelled = 1;
    else if (rc) {
        soma__errf(err, errlen, rc, "%s", soma_sim_errmsg(sim));
        goto done;
    }
    rc = 0;
    soma_sim_stats_get(sim, &st);
    memcpy(c->spikes_sha256, st.spikes_sha256, sizeof c->spikes_sha256);
    for (int k = 0; k < 4; k++)
        if (c->step[k] > st.steps) c->step[k] = st.steps; /* cancelled: what was simulated */
    size_t ns = 0;
    const soma_spike *sp = soma_sim_spikes(sim, &ns);
    c->npops = soma_sim_pop_count(sim);
    c->pops = calloc(c->npops ? c->npops : 1, sizeof *c->pops);
    c->spikes = malloc((ns ? ns : 1) * sizeof *c->spikes);
    if (!c->pops || !c->spikes) {
        rc = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "out of memory");
        goto done;
    }
    if (ns) memcpy(c->spikes, sp, ns * sizeof *sp);
    c->nspikes = ns;
    for (size_t k = 0; k < c->npops; k++) {
        soma_sim_pop_info pi;
        soma_sim_pop(sim, k, &pi);
        snprintf(c->pops[k].name, sizeof c->pops[k].name, "%s", pi.name);
        c->pops[k].size = pi.size;
        c->pops[k].first = (uint32_t)pi.first;
    }
    for (int w = 0; w < 3; w++) measure(c, w);

done:
    soma_hooks_free(h);
    soma_sim_free(sim);
    free(perm);
    free(chosen);
    if (rc) soma_dissect_circuit_free(c);
    else *out = c;
    return rc;
}

/* ---------------------------------------------------------------- output */

/* "key": {"before": v0, "during": v1, "after": v2} */
static void jwin(FILE *f, const char *key, const double v[3], const char *sep) {
    fprintf(f, "\"%s\": {\"before\": ", key);
    soma__json_num(f, v[0]);
    fputs(", \"during\": ", f);
    soma__json_num(f, v[1]);
    fputs(", \"after\": ", f);
    soma__json_num(f, v[2]);
    fprintf(f, "}%s", sep);
}

static int write_json(const soma_dissect_circuit *c, const char *file, const char *path, char *err, size_t errlen) {
    char tmp[4200];
    FILE *f = soma__tmp_open(path, "w", tmp, sizeof tmp, err, errlen);
    if (!f) return SOMA_STATUS_IO;
    fprintf(f, "{\n  \"command\": \"%s\",\n  \"file\": ", c->action == SOMA_DISSECT_LESION ? "lesion" : "stimulate");
    soma__json_str(f, file ? file : "");
    fputs(",\n  \"pop\": ", f);
    soma__json_str(f, c->pop);
    fprintf(f, ",\n  \"n\": %zu,\n  \"fraction\": ", c->n);
    soma__json_num(f, c->fraction > 0 ? c->fraction : NAN);
    fputs(",\n  \"neurons\": [", f);
    for (size_t k = 0; k < c->n; k++) fprintf(f, k ? ",%zu" : "%zu", c->neurons[k]);
    fprintf(f, "],\n  \"seed\": %llu,\n", (unsigned long long)c->seed);
    if (c->action == SOMA_DISSECT_STIMULATE) {
        if (c->rate_hz > 0) {
            fputs("  \"stimulus\": {\"kind\": \"poisson\", \"rate_hz\": ", f);
            soma__json_num(f, c->rate_hz);
            fputs(", \"weight\": ", f);
            soma__json_num(f, c->weight);
        } else {
            fputs("  \"stimulus\": {\"kind\": \"current\", \"current_pa\": ", f);
            soma__json_num(f, c->current_pa);
        }
        fputs("},\n", f);
    }
    fprintf(f, "  \"dt_ms\": %.6g,\n  \"windows_ms\": {\"before\": [%.6g, %.6g], \"during\": [%.6g, %.6g], \"after\": "
               "[%.6g, %.6g]},\n",
            c->dt_ms, c->t_ms[0], c->t_ms[1], c->t_ms[1], c->t_ms[2], c->t_ms[2], c->t_ms[3]);
    fprintf(f, "  \"synchrony\": \"var/mean of the population spike count in %g ms bins (Potjans & Diesmann 2014)\",\n"
               "  \"chi\": \"Golomb's chi over %g ms bins\",\n  \"cancelled\": %s,\n  \"spikes\": %zu,\n  \"spikes_sha256\": \"",
            SOMA_DISSECT_CIRCUIT_SYNC_BIN_MS, CHI_BIN_MS, c->cancelled ? "true" : "false", c->nspikes);
    for (int k = 0; k < 32; k++) fprintf(f, "%02x", c->spikes_sha256[k]);
    fputs("\",\n  \"chosen\": {", f);
    jwin(f, "rate_hz", c->target_rate_hz, "},\n  \"rest\": {");
    jwin(f, "rate_hz", c->rest_rate_hz, "},\n  \"populations\": {\n");
    for (size_t p = 0; p < c->npops; p++) {
        const soma_dissect_circuit_pop *P = &c->pops[p];
        fputs("    ", f);
        soma__json_str(f, P->name);
        fprintf(f, ": {\"size\": %zu, \"spikes\": {\"before\": %llu, \"during\": %llu, \"after\": %llu}, ", P->size,
                (unsigned long long)P->spikes[0], (unsigned long long)P->spikes[1], (unsigned long long)P->spikes[2]);
        jwin(f, "rate_hz", P->rate_hz, ", ");
        jwin(f, "cv_isi", P->cv_isi, ", ");
        jwin(f, "synchrony", P->synchrony, ", ");
        jwin(f, "chi", P->chi, "");
        fprintf(f, "}%s\n", p + 1 < c->npops ? "," : "");
    }
    fputs("  }\n}\n", f);
    return soma__tmp_commit(f, 0, tmp, path, err, errlen);
}

int soma_dissect_write_circuit(const soma_dissect_circuit *c, const char *file, const char *dir, char *err,
                               size_t errlen) {
    if (!c || !dir) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "soma_dissect_write_circuit needs a result and a folder");
    char path[4096];
    snprintf(path, sizeof path, "%s/result.json", dir);
    int rc = write_json(c, file, path, err, errlen);
    if (rc) return rc;
    size_t np = c->npops;
    const char **names = malloc((np ? np : 1) * sizeof *names);
    uint32_t *first = malloc((np ? np : 1) * sizeof *first);
    size_t *size = malloc((np ? np : 1) * sizeof *size);
    double *rates = malloc((3 * np + 3) * sizeof *rates);
    const char **groups = malloc((np + 1) * sizeof *groups);
    if (!names || !first || !size || !rates || !groups) {
        rc = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "out of memory");
        goto done;
    }
    for (size_t p = 0; p < np; p++) names[p] = c->pops[p].name, first[p] = c->pops[p].first, size[p] = c->pops[p].size;
    snprintf(path, sizeof path, "%s/raster.png", dir);
    if (c->step[3] > c->step[0] &&
        (rc = soma_plot_sim_raster_window(path, c->spikes, c->nspikes, np, names, first, size, c->dt_ms, c->step[0],
                                          c->step[3], 200, 1.0, c->t_ms[1], c->t_ms[2], err, errlen)))
        goto done;
    /* rates.png: one group per population and one for the chosen neurons;
     * series before, during, after. */
    char chosen[96];
    snprintf(chosen, sizeof chosen, "%s (%s)", c->pop, c->action == SOMA_DISSECT_LESION ? "lesioned" : "stimulated");
    for (size_t p = 0; p <= np; p++) {
        groups[p] = p < np ? names[p] : chosen;
        for (int w = 0; w < 3; w++) rates[(size_t)w * (np + 1) + p] = p < np ? c->pops[p].rate_hz[w] : c->target_rate_hz[w];
    }
    static const char *const series[3] = {"before", "during", "after"};
    char title[160];
    snprintf(title, sizeof title, "%s %zu neuron%s of %s: rates before / during / after",
             c->action == SOMA_DISSECT_LESION ? "lesion of" : "stimulus to", c->n, c->n == 1 ? "" : "s", c->pop);
    snprintf(path, sizeof path, "%s/rates.png", dir);
    rc = soma_plot_bars(path, title, "rate (Hz)", np + 1, groups, 3, series, rates, err, errlen);
done:
    free(names), free(first), free(size), free(rates), free(groups);
    return rc;
}
