/* sim.c — the event-driven simulator: one instance of a network on a fixed
 * time step, spikes delivered through per-neuron delay ring buffers.
 *
 * Layout (the fast CPU simulators' recipe, see BENCHMARKS.md):
 * - Neuron state is structure-of-arrays per population; each model's
 *   sim_step updates a range of neurons in one vectorised loop.
 * - Threads split every population into equal chunks (multiples of 16
 *   neurons). Thread t owns chunk t of each population: it updates those
 *   neurons and is the only writer of their input buffers, so delivery
 *   needs no atomics.
 * - Synapses are stored by source, one compressed-row table per thread
 *   holding only the synapses whose targets that thread owns. A synapse is 8
 *   bytes: a float weight and a 32-bit word packing the target's global id
 *   (low bits), its delay in steps and its port (top bit).
 * - Input buffers: ring[port][slot][neuron], slot = step mod a power of two
 *   >= the longest delay. A model reads ring[port][step] for its
 *   neurons, and the engine zeroes the slot after the step.
 * - Time advances in slices of `slice` = min delay steps: all threads update
 *   their neurons for that many steps, meet at one barrier, then each delivers every spike
 *   of the slice into its own targets' buffers. A spike at step s with delay
 *   d >= slice lands at s + d, after the slice, so it is never late. Spike lists
 *   are double-buffered by slice parity, which is why one barrier per slice
 *   is enough.
 * - Determinism: spikes are delivered (and hashed, and recorded) in (step,
 *   global id) order whatever the thread count, each row keeps its synapses
 *   in construction order, and noise is keyed by (population, neuron, step);
 *   so every float sum happens in the same order with 1 or 2 threads and the
 *   spikes are bit-identical.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <math.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef SOMA_HAVE_OPENMP
#include <omp.h>
#endif

#include "core/clock.h"
#include "core/err.h"
#include "core/hooks.h"
#include "core/rng.h"
#include "net/net.h"
#include "proj/synapses.h"

#define CHUNK_ALIGN 16
#define DRIVE_BLOCK 256

typedef struct syn {
    uint32_t key; /* target global id | delay << dshift | port << 31 */
    float w;
} syn;

typedef struct drive {
    float *cdf; /* P(X <= k), k < K */
    int K;
    float w;
    int port;
    uint64_t key;
} drive;

typedef struct state_rec {
    size_t pop, var, n, every;
    size_t *idx;
    float *data;      /* [rows][n] */
    size_t rows, cap; /* rows written, rows allocated */
    uint64_t row0;    /* step / every of row 0 */
} state_rec;

typedef struct spop {
    char name[64];
    const soma_model *m;
    size_t N;
    uint32_t first;
    size_t cs; /* chunk size: thread t owns [t*cs, (t+1)*cs) */
    float *prm[SOMA_MAX_PARAMS];
    float *drv[SOMA_MAX_PARAMS * 2 + 8];
    int uniform;
    float *st[SOMA_MAX_STATE];
    uint8_t *spk;
    drive *drives;
    size_t ndrives;
    float *ext;         /* step input [N], or NULL */
    uint64_t *st_step;  /* steps at which the step input changes */
    float *st_v;        /* the value from each of those steps on */
    size_t n_st;
    soma_spike *sched;  /* spike_source: (step, index) sorted */
    size_t nsched;
    uint64_t key;
    uint64_t spikes;
    int record; /* keep this population's spikes (when the sim records) */
    /* Networks with dense (trained) projections: */
    uint64_t start;     /* first step the population runs: when its inputs can first arrive */
    float *bias;        /* [N] summed biases of its dense projections, added from `start` on, or NULL */
    struct pull {       /* a dense projection from a graded source (model input), computed by the target */
        size_t src;     /* source population */
        float *w;       /* [N][Nsrc] copy of the weights */
        size_t nsrc;
        size_t d;       /* delay (steps >= 1): reads the source's output of step - d */
        int port;       /* port 0 or 1, or SOMA_PORT_BY_SIGN (by each weight's sign) */
        size_t out;     /* index in sim->outs when its .out site is hooked, else (size_t)-1 */
        size_t proj;    /* its projection, or (size_t)-1 for recurrent weights */
    } *pulls;
    size_t npulls;
    float *gx;          /* model input: its values [gsteps][N] (or [N] when gconst) */
    size_t gsteps;
    int gconst;
    /* Trainer models run through their forward op on a batch of one: */
    int train_op;
    float *prev[SOMA_MAX_STATE]; /* [N] state before the step */
    float *sf;          /* [N] the step's spikes as floats */
    float *scr;         /* [2N] the model's per-call scratch */
    int reset;          /* value of the model's "reset" parameter */
    /* Hooks (soma_sim_set_hooks): kinds asked (bits) at its spikes, at its
     * state variables and (READ) at the .in of its projections; hk is
     * their union, tested once per population and step. */
    unsigned hk, hk_spk, hk_state, hk_in;
    size_t nout;        /* projections onto it whose .out is hooked (sim->outs) */
    size_t sid_spk;
    /* Simulator-only sites `<pop>.current` and `<pop>.input` (build_sites;
     * sid_cur is (size_t)-1 for populations without them): kinds asked, and
     * the step's external current when `.current` is hooked ([N]). */
    size_t sid_cur;
    unsigned hk_cur, hk_inp;
    float *hcur;
    float *cw[SOMA_MAX_WEIGHTS]; /* cell models: copies of the model's own weights */
    float *work;        /* cell models: the model's per-call scratch (one row) */
    float *gout;        /* graded outputs [gring][N], step t in row t % gring, read by dense projections d steps later */
    size_t gring;       /* steps kept: the longest delay of a projection leaving it, + 1 (at least 2) */
    size_t stw[SOMA_MAX_STATE]; /* floats of each state variable (N but for cell models' wider state) */
} spop;

/* A projection whose `.out` site is hooked (soma_sim_set_hooks): its part
 * of the target's input goes through a buffer of its own, where the hooks
 * see it before it is added to the target's input buffers. */
typedef struct oproj {
    size_t proj, sid, from, to;
    int port;           /* 0, 1 or SOMA_PORT_BY_SIGN (resolved for the target) */
    int pulled;         /* computed by the target (a pull), not delivered as synapses */
    float *buf;         /* synapses: [2 ports][nslots][N_to], as the input ring */
} oproj;

/* A thread's synapses of a hooked projection: its segment of each source
 * row, moved out of the main table (whose copies then weigh 0). */
typedef struct oside {
    uint32_t *row;      /* [N_from + 1] into syn */
    syn *syn;
    uint32_t *pos;      /* [nsyn] each synapse's place in the main table */
    size_t nsyn;
} oside;

typedef struct tstate {
    uint32_t *row;   /* [Ntot + 1] row starts into syn */
    syn *syn;
    size_t nsyn;
    uint32_t *list[2];  /* spike ids of the slice, by parity */
    size_t cap[2];
    uint32_t *off[2];   /* [slice * npops + 1] */
    float *u, *c;       /* drive scratch [DRIVE_BLOCK] */
    size_t *sched_pos;  /* [npops] cursor in each spike_source schedule */
    size_t *st_pos;     /* [npops] cursor in each step input */
    int grow_failed;
    float *hval, *hmask; /* hooks: spikes as floats and a mask, [widest chunk] */
    float *hp[2];        /* hooks: a pulled projection's output per port, [widest chunk] */
    uint32_t **pend;     /* [nproj] end of each synapse projection's segment in its sources' rows, or NULL */
    oside *oside;        /* [nouts] */
} tstate;

struct soma_sim {
    spop *pops;
    size_t npops, Ntot;
    int nthreads;       /* worker threads (the trainer's T is its time steps) */
    float dt;
    float *ring;
    size_t nslots, smask;
    float **slotp;      /* [2 * nslots] start of each (port, slot) buffer */
    uint32_t pshift;    /* log2(nslots) */
    int bar_count, bar_sense, bar_sleepers; /* the barrier of nthreads > 1 threads */
    uint32_t dshift, dmask, tmask;
    size_t slice, dmin, dmax; /* steps per slice (the minimum delay), delay range */
    tstate *ts;
    size_t nsyn;
    int record;
    soma_spike *rec;
    size_t nrec, caprec;
    uint32_t *hashbuf;
    size_t hashcap;
    struct sha256_ctx sha;
    state_rec *recs;
    size_t nrecs;
    uint64_t step;
    uint64_t spikes;
    double build_s, sim_s;
    uint64_t seed;
    soma_site_info *sites; /* named sites (see "hooks" in soma.h) */
    size_t nsites;
    size_t *pdly;          /* [nproj] each dense projection's delay in steps (0 for sparse ones) */
    size_t nproj;
    int *pport;            /* [nproj] each projection's port (SOMA_PORT_BY_SIGN or an index) */
    uint8_t *pkind;        /* [nproj] 1: delivered as synapses, 2: computed by its target (a pull) */
    size_t *pfrom;         /* [nproj] each projection's source population */
    oproj *outs;           /* hooked .out sites */
    size_t nouts;
    soma__hookplan hooks;
    char errmsg[512];
};


/* The message into the sim's own buffer (printf-style); returns status. */
#define sfail(s, status, ...) soma__errf((s)->errmsg, sizeof (s)->errmsg, (status), __VA_ARGS__)

static void *xalloc(size_t bytes) {
    void *p = NULL;
    /* Big arrays (synapses, input rings) are reached at random, one access
     * per synaptic event: on 4 kB pages nearly every event would also miss
     * the TLB. Ask for transparent huge pages (2 MB) where the kernel
     * offers them on request. */
    size_t align = bytes >= (4u << 20) ? (2u << 20) : 64;
    if (posix_memalign(&p, align, bytes ? bytes : 64)) return NULL;
#ifdef MADV_HUGEPAGE
    if (align > 64) madvise(p, (bytes + align - 1) / align * align, MADV_HUGEPAGE);
#endif
    memset(p, 0, bytes ? bytes : 64);
    return p;
}

void soma_sim_opts_default(soma_sim_opts *o) {
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->record_spikes = 1;
}

const char *soma_sim_errmsg(const soma_sim *s) { return s ? s->errmsg : ""; }

static void outs_free(soma_sim *s);
static void outs_weights(soma_sim *s, int restore);

void soma_sim_free(soma_sim *s) {
    if (!s) return;
    outs_free(s);
    for (size_t p = 0; p < s->npops; p++) {
        spop *P = &s->pops[p];
        for (size_t k = 0; k < SOMA_MAX_PARAMS; k++) free(P->prm[k]);
        for (size_t k = 0; k < sizeof P->drv / sizeof P->drv[0]; k++) free(P->drv[k]);
        for (size_t k = 0; k < SOMA_MAX_STATE; k++) free(P->st[k]);
        for (size_t k = 0; k < P->ndrives; k++) free(P->drives[k].cdf);
        free(P->drives);
        free(P->spk);
        free(P->ext);
        free(P->hcur);
        free(P->st_step);
        free(P->st_v);
        free(P->sched);
        free(P->bias);
        for (size_t k = 0; k < P->npulls; k++) free(P->pulls[k].w);
        free(P->pulls);
        free(P->gx);
        for (size_t k = 0; k < SOMA_MAX_STATE; k++) free(P->prev[k]);
        free(P->sf);
        free(P->scr);
        for (size_t k = 0; k < SOMA_MAX_WEIGHTS; k++) free(P->cw[k]);
        free(P->work);
        free(P->gout);
    }
    if (s->ts)
        for (int t = 0; t < s->nthreads; t++) {
            tstate *ts = &s->ts[t];
            free(ts->row);
            free(ts->syn);
            for (int q = 0; q < 2; q++) {
                free(ts->list[q]);
                free(ts->off[q]);
            }
            free(ts->u);
            free(ts->c);
            free(ts->sched_pos);
            free(ts->st_pos);
            free(ts->hval);
            free(ts->hmask);
            free(ts->hp[0]);
            free(ts->hp[1]);
            if (ts->pend)
                for (size_t i = 0; i < s->nproj + s->npops; i++) free(ts->pend[i]);
            free(ts->pend);
        }
    soma__hookplan_free(&s->hooks);
    free(s->sites);
    free(s->pdly);
    free(s->pport);
    free(s->pkind);
    free(s->pfrom);
    for (size_t r = 0; r < s->nrecs; r++) {
        free(s->recs[r].idx);
        free(s->recs[r].data);
    }
    free(s->recs);
    free(s->ts);
    free(s->pops);
    free(s->ring);
    free(s->slotp);
    free(s->rec);
    free(s->hashbuf);
    free(s);
}

/* ------------------------------------------------------------ building */

/* Keys are shared with the trainer, which draws a sparse projection's
 * synapses as the simulator does (proj/synapses.h). */
#define key_of soma__sim_key
enum { KEY_POP = SOMA__KEY_POP, KEY_CONN = SOMA__KEY_CONN, KEY_WEIGHT = SOMA__KEY_WEIGHT, KEY_DELAY = SOMA__KEY_DELAY,
       KEY_DRIVE = SOMA__KEY_DRIVE, KEY_NOISE = SOMA__KEY_NOISE };

/* Per-neuron parameter values and derived constants of population p. */
static int build_pop(soma_sim *s, const soma_net *sn, size_t p) {
    spop *P = &s->pops[p];
    const soma__pop *d = &sn->pops[p];
    const soma_model *m = d->model;
    size_t N = d->size;
    uint64_t key = key_of(s->seed, KEY_POP, p);
    P->uniform = 1;
    for (size_t k = 0; k < m->n_params; k++) {
        P->prm[k] = xalloc(N * sizeof(float));
        if (!P->prm[k]) return SOMA_STATUS_NOMEM;
        const soma_param_desc *pd = &m->params[k];
        const soma__value *v = d->val[k];
        if (d->prm_data[k] && d->learn[k] != SOMA_LEARN_NONE) {
            /* A trained parameter: its learned value(s). */
            int per_neuron = d->learn[k] == SOMA_LEARN_NEURON;
            for (size_t i = 0; i < N; i++) P->prm[k][i] = d->prm_data[k][per_neuron ? i : 0];
            if (per_neuron) P->uniform = 0;
            continue;
        }
        if (!v) {
            /* One value for the population (constants are never kept as
             * expressions: soma_net_set stores them here). */
            for (size_t i = 0; i < N; i++) P->prm[k][i] = d->prm[k];
            continue;
        }
        P->uniform = 0;
        for (size_t i = 0; i < N; i++) {
            double x = soma__expr_eval(v->e, key, i, N) * v->scale;
            if (!(x >= pd->lo && x <= pd->hi))
                return sfail(s, SOMA_STATUS_INVALID, "%s%s%s.%s = '%s' gives %g %s at neuron %zu, outside [%g, %g] %s",
                             v->where, v->where[0] ? ": " : "", d->name, pd->name, v->text, x, pd->unit, i,
                             (double)pd->lo, (double)pd->hi, pd->unit);
            P->prm[k][i] = (float)x;
        }
    }
    if (m->n_derived > sizeof P->drv / sizeof P->drv[0])
        return sfail(s, SOMA_STATUS_UNSUPPORTED, "model %s has too many derived constants", m->name);
    for (size_t k = 0; k < m->n_derived; k++) {
        /* A trainer model's forward reads its constants per neuron. */
        P->drv[k] = xalloc((P->uniform && m->sim_step ? 1 : N) * sizeof(float));
        if (!P->drv[k]) return SOMA_STATUS_NOMEM;
    }
    if (m->prepare) m->prepare((const float *const *)P->prm, N, s->dt, P->uniform && m->sim_step, P->drv);
    for (size_t k = 0; k < m->n_state; k++) {
        P->stw[k] = soma__state_width(m, d->prm, N, k);
        P->st[k] = xalloc(P->stw[k] * sizeof(float));
        if (!P->st[k]) return SOMA_STATUS_NOMEM;
    }
    if (m->sim_init) m->sim_init((const float *const *)P->prm, P->st, N);
    for (size_t k = 0; k < m->n_state; k++) {
        const soma__value *v = d->init[k];
        if (!v) continue;
        for (size_t i = 0; i < N; i++) P->st[k][i] = (float)(soma__expr_eval(v->e, key, i, N) * v->scale);
    }
    P->spk = xalloc(N + 64);
    if (!P->spk) return SOMA_STATUS_NOMEM;
    if (d->n_st) {
        P->ext = xalloc(N * sizeof(float));
        P->st_step = malloc(d->n_st * sizeof *P->st_step);
        P->st_v = malloc(d->n_st * sizeof *P->st_v);
        if (!P->ext || !P->st_step || !P->st_v) return SOMA_STATUS_NOMEM;
        for (size_t k = 0; k < d->n_st; k++) P->st_step[k] = (uint64_t)llround(d->st_t[k] / s->dt);
        for (size_t k = 0; k < d->n_st; k++) P->st_v[k] = (float)d->st_v[k];
        P->n_st = d->n_st;
    }
    if (d->n_src) {
        P->sched = malloc(d->n_src * sizeof *P->sched);
        if (!P->sched) return SOMA_STATUS_NOMEM;
        for (size_t k = 0; k < d->n_src; k++) {
            /* Runs stop before step 2^32 - 1 (soma_sim_run): a later spike
             * is kept there, never wrapped onto an early step. */
            double st = round(d->src_t[k] / s->dt);
            P->sched[k].step = st < (double)UINT32_MAX ? (uint32_t)st : UINT32_MAX;
            P->sched[k].id = d->src_ids[k];
        }
        P->nsched = d->n_src;
    }
    P->key = key_of(s->seed, KEY_NOISE, p);
    P->record = 1;
    if (!m->sim_step && soma__model_trainable(m) && m != &soma__model_input) {
        /* A trainer model: its forward op steps a batch of one. */
        P->train_op = 1;
        for (size_t k = 0; k < m->n_state; k++)
            if (!(P->prev[k] = xalloc(soma__state_width(m, d->prm, N, k) * sizeof(float)))) return SOMA_STATUS_NOMEM;
        for (size_t k = 0; k < m->n_weights; k++) {
            size_t r = 0, c = 0;
            m->weight_shape(d->prm, N, k, &r, &c);
            if (!d->cw[k]) return sfail(s, SOMA_STATUS_INVALID, "population '%s': its %s weights are not set (train the net, "
                                        "load a model file or call soma_net_init_weights)", d->name, m->weight_names[k]);
            if (!(P->cw[k] = xalloc(r * c * sizeof(float)))) return SOMA_STATUS_NOMEM;
            memcpy(P->cw[k], d->cw[k], r * c * sizeof(float));
        }
        if (m->scratch_floats && !(P->work = xalloc((m->scratch_floats(d->prm, N) + 16) * sizeof(float))))
            return SOMA_STATUS_NOMEM;
        P->sf = xalloc(N * sizeof(float));
        P->scr = xalloc(2 * N * sizeof(float));
        if (!P->sf || !P->scr) return SOMA_STATUS_NOMEM;
        int kr = soma__model_param_index(m, "reset");
        P->reset = kr >= 0 ? (int)d->prm[kr] : 0;
    }
    return 0;
}

/* 1 if population P has the simulator's own sites `.current` and `.input`:
 * it runs a step with an input (not a spike source, not a model input). */
static int has_drive_sites(const spop *P) {
    return P->m != &soma__model_spike_source && P->m != &soma__model_input;
}

/* The named sites of the network (see "hooks" in soma.h): the net's own
 * table (soma_net_site), copied, as the simulator keeps nothing of the net;
 * then the simulator's own: `<pop>.current` and `<pop>.input` of each
 * population with a step (SOMA_SITE_CURRENT, SOMA_SITE_INPUT). */
static int build_sites(soma_sim *s, const soma_net *net) {
    size_t n = soma_net_site_count(net), extra = 0;
    for (size_t p = 0; p < s->npops; p++) extra += 2 * (size_t)has_drive_sites(&s->pops[p]);
    s->sites = calloc(n + extra ? n + extra : 1, sizeof *s->sites);
    if (!s->sites) return SOMA_STATUS_NOMEM;
    for (size_t i = 0; i < n; i++) {
        soma_net_site(net, i, &s->sites[i]);
        if (s->sites[i].kind == SOMA_SITE_SPIKES && s->sites[i].pop < s->npops) s->pops[s->sites[i].pop].sid_spk = i;
    }
    for (size_t p = 0; p < s->npops; p++) {
        spop *P = &s->pops[p];
        P->sid_cur = (size_t)-1;
        if (!has_drive_sites(P)) continue;
        P->sid_cur = n;
        for (int k = 0; k < 2; k++, n++) {
            soma_site_info *si = &s->sites[n];
            si->kind = k ? SOMA_SITE_INPUT : SOMA_SITE_CURRENT;
            si->size = P->N;
            si->pop = si->from = p;
            si->proj = (size_t)-1;
            snprintf(si->name, sizeof si->name, "%s.%s", P->name, k ? "input" : "current");
        }
    }
    s->nsites = n;
    return 0;
}

/* Why the simulator cannot run model m (NULL if it can). */
static const char *sim_refusal(const soma_model *m) {
    if (m->sim_step || m == &soma__model_spike_source || m == &soma__model_input) return NULL;
    if (!soma__model_trainable(m)) return "has neither simulation nor training ops";
    return NULL;
}

static int cmp_spike(const void *a, const void *b) {
    const soma_spike *x = a, *y = b;
    if (x->step != y->step) return x->step < y->step ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Poisson drive: the cumulative distribution table for lambda events per step. */
static int build_drive(soma_sim *s, const soma__drive *d, size_t index, drive *out) {
    double lam = d->rate_hz * s->dt * 1e-3;
    double pk = exp(-lam), F = pk;
    int K = 0;
    float tab[256];
    /* Stop where the tail is below the resolution of the 24-bit uniforms. */
    while (K < 256 && 1.0 - F > 1.0 / 33554432.0) {
        tab[K++] = (float)F;
        pk *= lam / (double)K;
        F += pk;
    }
    if (K == 256) return sfail(s, SOMA_STATUS_UNSUPPORTED, "Poisson input rate %g Hz is too high for dt", d->rate_hz);
    out->K = K;
    out->cdf = malloc((size_t)(K ? K : 1) * sizeof(float));
    if (!out->cdf) return SOMA_STATUS_NOMEM;
    memcpy(out->cdf, tab, (size_t)K * sizeof(float));
    out->w = (float)(soma__expr_eval(d->w.e, 0, 0, 1) * d->w.scale);
    out->port = d->port == SOMA_PORT_BY_SIGN ? (out->w < 0 && s->pops[d->pop].m->n_ports > 1) : d->port;
    out->key = key_of(s->seed, KEY_DRIVE, index);
    return 0;
}

/* The connection build runs each connector twice: a count pass sizes the
 * rows (and finds the delay range), a fill pass writes the synapses. */
typedef struct conn_ctx {
    soma_sim *s;
    const soma__proj *pr;
    size_t iproj;
    uint32_t first_from, first_to;
    size_t cs_to;
    uint64_t kw, kd;
    int const_w, const_d;
    double w0;
    size_t d0;
    uint32_t **cnt;  /* count pass: [nthreads][Ntot+1]; fill pass: cursors */
    int fill;
    int nports;
    int only;        /* the thread whose targets this pass handles */
    size_t dmin, dmax;
} conn_ctx;

static int delay_steps(conn_ctx *c, uint64_t edge, const double *d, size_t *out) {
    soma_sim *s = c->s;
    double ms;
    if (d)
        ms = *d;
    else if (c->const_d) {
        *out = c->d0;
        return 0;
    } else
        ms = soma__expr_eval(c->pr->dv.e, c->kd, edge, 0) * c->pr->dv.scale;
    long long st = llround(ms / s->dt);
    int rc = 0;
    if (!(ms == ms) || st < 1 || ms < 0.5 * s->dt) {
#pragma omp critical(soma_sim_errmsg)
        rc = sfail(s, SOMA_STATUS_INVALID, "%s%sprojection %s -> %s, synapse %llu: delay %g ms is shorter than the time step %g ms",
                     c->pr->dv.where, c->pr->dv.where[0] ? ": " : "", s->pops[c->pr->from].name,
                     s->pops[c->pr->to].name, (unsigned long long)edge, ms, s->dt);
        return rc;
    }
    if ((unsigned long long)st > 1000000ULL) {
#pragma omp critical(soma_sim_errmsg)
        rc = sfail(s, SOMA_STATUS_INVALID, "projection %s -> %s: delay %g ms is longer than 10^6 steps",
                   s->pops[c->pr->from].name, s->pops[c->pr->to].name, ms);
        return rc;
    }
    *out = (size_t)st;
    return 0;
}

static int on_edge(void *user, uint32_t pre, uint32_t post, uint64_t edge, const double *w, const double *d) {
    conn_ctx *c = user;
    soma_sim *s = c->s;
    uint32_t g = c->first_from + pre;
    int th = (int)(post / c->cs_to);
    if (th != c->only) return 0; /* another thread's target */
    if (!c->fill) {
        /* Counting needs no delays: the packing does not depend on them. */
        c->cnt[th][g]++;
        return 0;
    }
    size_t ds = 1;
    int rc = delay_steps(c, edge, d, &ds);
    if (rc) return rc;
    if (ds > s->dmask) {
#pragma omp critical(soma_sim_errmsg)
        rc = sfail(s, SOMA_STATUS_UNSUPPORTED,
                   "a delay of %zu steps does not fit the packed synapse word next to %zu neurons", ds, s->Ntot);
        return rc;
    }
    if (ds < c->dmin) c->dmin = ds;
    if (ds > c->dmax) c->dmax = ds;
    double wv = !w && c->const_w ? c->w0 : soma__syn_weight(c->pr, c->kw, edge, w);
    int port = c->pr->port == SOMA_PORT_BY_SIGN ? (wv < 0 && c->nports > 1) : c->pr->port;
    uint32_t pos = c->cnt[th][g]++;
    syn *sy = &s->ts[th].syn[pos];
    sy->key = (c->first_to + post) | ((uint32_t)ds << s->dshift) | ((uint32_t)port << 31);
    sy->w = (float)wv;
    return 0;
}

/* Every synapse of a dense weight matrix W [n_post][n_pre], source by
 * source (the order rows keep). */
static int each_dense(const float *W, size_t n_pre, size_t n_post, conn_ctx *c) {
    for (size_t pre = 0; pre < n_pre; pre++)
        for (size_t post = 0; post < n_post; post++) {
            double w = W[post * n_pre + pre];
            int rc = on_edge(c, (uint32_t)pre, (uint32_t)post, (uint64_t)pre * n_post + post, &w, NULL);
            if (rc) return rc;
        }
    return 0;
}

/* 1 if dense projections from population p are computed by their targets
 * (its outputs are real values: an input population or a graded model),
 * not delivered as spike events. */
static int pulled(const soma_net *sn, size_t p) {
    return sn->pops[p].model == &soma__model_input || sn->pops[p].model->graded;
}

/* Dense projections: biases, their delays, projections from graded sources
 * (computed by their targets), and the step each population starts at. The
 * trainer feeds a projection's output to its target in the same step; the
 * simulator's delays are at least one step, so a population d dense
 * projections deep starts at step d and then sees, step for step, what the
 * trainer's population sees: its spikes are the trainer's, d steps later.
 * Each dense projection without a delay of its own is therefore delayed by
 * start(to) - start(from) steps (1 along a chain; more on a skip connection,
 * whose short path must wait for the long one). An explicit delay is
 * physical: it is used as given and takes no part in the depths. */
static int build_dense(soma_sim *s, const soma_net *sn) {
    /* Per projection, and past them (index nproj + p) population p's
     * recurrent weights, numbered as the sites number them. */
    size_t nx = sn->nproj + sn->npops;
    s->nproj = sn->nproj;
    s->pdly = calloc(nx, sizeof *s->pdly);
    s->pport = calloc(nx, sizeof *s->pport);
    s->pkind = calloc(nx, 1);
    s->pfrom = calloc(nx, sizeof *s->pfrom);
    if (!s->pdly || !s->pport || !s->pkind || !s->pfrom) return SOMA_STATUS_NOMEM;
    for (size_t i = 0; i < sn->nproj; i++) {
        const soma__proj *pr = &sn->projs[i];
        s->pport[i] = pr->port == SOMA_PORT_BY_SIGN && s->pops[pr->to].m->n_ports < 2 ? 0 : pr->port;
        s->pkind[i] = pr->conv ? 0 : !pr->sparse && pulled(sn, pr->from) ? 2 : 1;
        s->pfrom[i] = pr->from;
    }
    for (size_t p = 0; p < sn->npops; p++) {
        size_t i = sn->nproj + p;
        s->pdly[i] = 1;
        s->pkind[i] = !sn->pops[p].recurrent ? 0 : pulled(sn, p) ? 2 : 1;
        s->pfrom[i] = p;
    }
    /* Longest path of dense projections (cycles go through recurrent
     * weights, which are not projections here). */
    for (size_t pass = 0; pass < sn->npops; pass++)
        for (size_t i = 0; i < sn->nproj; i++) {
            const soma__proj *pr = &sn->projs[i];
            if (pr->sparse || pr->from == pr->to || pr->has_delay) continue;
            uint64_t st = s->pops[pr->from].start + 1;
            if (s->pops[pr->to].start < st) s->pops[pr->to].start = st;
        }
    for (size_t i = 0; i < sn->nproj; i++) {
        const soma__proj *pr = &sn->projs[i];
        if (pr->sparse) continue;
        if (pr->has_delay) {
            double st = round(pr->dly_ms / s->dt);
            if (!(st >= 1))
                return sfail(s, SOMA_STATUS_INVALID, "projection %s -> %s: delay %g ms is shorter than the time step "
                             "%g ms; expected at least one step", s->pops[pr->from].name, s->pops[pr->to].name,
                             pr->dly_ms, s->dt);
            if (st > 1e6)
                return sfail(s, SOMA_STATUS_INVALID, "projection %s -> %s: delay %g ms is longer than 10^6 steps",
                             s->pops[pr->from].name, s->pops[pr->to].name, pr->dly_ms);
            s->pdly[i] = (size_t)st;
        } else {
            uint64_t a = s->pops[pr->from].start, b = s->pops[pr->to].start;
            s->pdly[i] = b > a ? (size_t)(b - a) : 1; /* 1 on a cycle of dense projections */
        }
    }
    for (size_t i = 0; i < sn->nproj; i++) {
        const soma__proj *pr = &sn->projs[i];
        if (pr->sparse) continue;
        spop *tgt = &s->pops[pr->to];
        if (pr->b) {
            if (!tgt->bias && !(tgt->bias = xalloc(tgt->N * sizeof(float)))) return SOMA_STATUS_NOMEM;
            for (size_t j = 0; j < tgt->N; j++) tgt->bias[j] += pr->b[j];
        }
        if (!pulled(sn, pr->from)) continue;
        struct pull *np = realloc(tgt->pulls, (tgt->npulls + 1) * sizeof *np);
        if (!np) return SOMA_STATUS_NOMEM;
        tgt->pulls = np;
        struct pull *pl = &tgt->pulls[tgt->npulls++];
        pl->src = pr->from;
        pl->nsrc = sn->pops[pr->from].size;
        pl->d = s->pdly[i];
        pl->port = s->pport[i];
        pl->out = (size_t)-1;
        pl->proj = i;
        pl->w = xalloc(tgt->N * pl->nsrc * sizeof(float));
        if (!pl->w) return SOMA_STATUS_NOMEM;
        memcpy(pl->w, pr->w, tgt->N * pl->nsrc * sizeof(float));
    }
    for (size_t p = 0; p < sn->npops; p++) {
        if (!sn->pops[p].recurrent || !pulled(sn, p)) continue;
        spop *tgt = &s->pops[p];
        struct pull *np = realloc(tgt->pulls, (tgt->npulls + 1) * sizeof *np);
        if (!np) return SOMA_STATUS_NOMEM;
        tgt->pulls = np;
        struct pull *pl = &tgt->pulls[tgt->npulls++];
        pl->src = p;
        pl->nsrc = tgt->N;
        pl->d = 1;
        pl->port = 0;
        pl->out = (size_t)-1;
        pl->proj = sn->nproj + p;
        if (!(pl->w = xalloc(tgt->N * tgt->N * sizeof(float)))) return SOMA_STATUS_NOMEM;
        memcpy(pl->w, sn->pops[p].rec_w, tgt->N * tgt->N * sizeof(float));
    }
    /* A graded population keeps its outputs as long as its longest
     * projection needs them, the step being written included. */
    for (size_t p = 0; p < s->npops; p++)
        if (s->pops[p].train_op && s->pops[p].m->graded) s->pops[p].gring = 2;
    for (size_t p = 0; p < s->npops; p++)
        for (size_t k = 0; k < s->pops[p].npulls; k++) {
            spop *S = &s->pops[s->pops[p].pulls[k].src];
            if (S->gring && S->gring < s->pops[p].pulls[k].d + 1) S->gring = s->pops[p].pulls[k].d + 1;
        }
    for (size_t p = 0; p < s->npops; p++) {
        spop *P = &s->pops[p];
        if (P->gring && !(P->gout = xalloc(P->gring * P->N * sizeof(float)))) return SOMA_STATUS_NOMEM;
    }
    return 0;
}

static double phys_bytes(void) {
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    return pages > 0 && psz > 0 ? (double)pages * (double)psz : 16e9;
}

int soma_sim_create(soma_sim **out, const soma_net *sn, const soma_sim_opts *o, char *err, size_t errlen) {
    if (!out || !sn) return SOMA_STATUS_INVALID;
    *out = NULL;
    soma_sim_opts def;
    if (!o) {
        soma_sim_opts_default(&def);
        o = &def;
    }
    double t_start = soma__now();
    soma_sim *s = calloc(1, sizeof *s);
    if (!s) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "out of memory creating the simulator");
    s->dt = (float)sn->dt;
    s->seed = o->seed;
    s->record = o->record_spikes;
    int nthreads = o->threads;
#ifdef SOMA_HAVE_OPENMP
    if (nthreads <= 0) nthreads = omp_get_num_procs();
#else
    nthreads = 1;
#endif
    if (nthreads < 1) nthreads = 1;
    if (nthreads > 256) nthreads = 256;
    s->nthreads = nthreads;
    int rc = 0;
    if (sn->npops == 0) {
        rc = sfail(s, SOMA_STATUS_INVALID, "the network has no populations");
        goto done;
    }
    for (size_t p = 0; p < sn->npops; p++) {
        const soma_model *m = sn->pops[p].model;
        const char *why = sim_refusal(m);
        if (why) {
            rc = sfail(s, SOMA_STATUS_UNSUPPORTED, "population '%s': model %s %s (soma models lists what each model supports)",
                       sn->pops[p].name, m->name, why);
            goto done;
        }
    }
    for (size_t i = 0; i < sn->nproj; i++) {
        const soma__proj *pr = &sn->projs[i];
        if (pr->conv) {
            rc = sfail(s, SOMA_STATUS_UNSUPPORTED, "projection %s -> %s: conv projections run in the trainer only",
                       sn->pops[pr->from].name, sn->pops[pr->to].name);
            goto done;
        }
        if (!pr->sparse && !pr->w) {
            rc = sfail(s, SOMA_STATUS_INVALID, "projection %s -> %s: a dense projection needs its weights (train the net, "
                       "load a model file or call soma_net_init_weights)", sn->pops[pr->from].name, sn->pops[pr->to].name);
            goto done;
        }
        if (sn->pops[pr->from].model == &soma__model_input && pr->sparse) {
            rc = sfail(s, SOMA_STATUS_UNSUPPORTED, "projection %s -> %s: an input population (model input) feeds dense projections only",
                       sn->pops[pr->from].name, sn->pops[pr->to].name);
            goto done;
        }
    }
    s->pops = calloc(sn->npops, sizeof *s->pops);
    s->npops = s->pops ? sn->npops : 0; /* soma_sim_free walks npops entries */
    s->ts = calloc((size_t)nthreads, sizeof *s->ts);
    if (!s->pops || !s->ts) {
        rc = SOMA_STATUS_NOMEM;
        goto done;
    }
    size_t Ntot = 0;
    for (size_t p = 0; p < sn->npops; p++) {
        spop *P = &s->pops[p];
        snprintf(P->name, sizeof P->name, "%s", sn->pops[p].name);
        P->m = sn->pops[p].model;
        P->N = sn->pops[p].size;
        P->first = (uint32_t)Ntot;
        size_t cs = (P->N + (size_t)nthreads - 1) / (size_t)nthreads;
        P->cs = (cs + CHUNK_ALIGN - 1) / CHUNK_ALIGN * CHUNK_ALIGN;
        /* A cell model's own weights mix its neurons: one thread steps it all. */
        if (P->m->n_weights && !P->m->sim_step) P->cs = (P->N + CHUNK_ALIGN - 1) / CHUNK_ALIGN * CHUNK_ALIGN;
        Ntot += P->N;
    }
    if (Ntot >= (1u << 30)) {
        rc = sfail(s, SOMA_STATUS_UNSUPPORTED, "%zu neurons: at most 2^30 are supported", Ntot);
        goto done;
    }
    s->Ntot = Ntot;

    /* Memory estimate before any big allocation. */
    double syn_expected = 0;
    for (size_t i = 0; i < sn->nproj; i++) {
        const soma__proj *pr = &sn->projs[i];
        if (!pr->sparse)
            syn_expected += (double)sn->pops[pr->from].size * (double)sn->pops[pr->to].size;
        else
            syn_expected += soma__connect_expected(&pr->c, sn->pops[pr->from].size, sn->pops[pr->to].size,
                                                   pr->from == pr->to);
    }
    for (size_t p = 0; p < sn->npops; p++)
        if (sn->pops[p].recurrent) syn_expected += (double)sn->pops[p].size * (double)sn->pops[p].size;
    double state_bytes = 0;
    for (size_t p = 0; p < sn->npops; p++) {
        const soma_model *m = sn->pops[p].model;
        state_bytes += (double)sn->pops[p].size * 4.0 * (double)(m->n_params + m->n_state + m->n_derived + 1);
    }
    double est = syn_expected * sizeof(syn) + 2.0 * nthreads * 4.0 * (double)(Ntot + 1) + 2.0 * 4.0 * 64.0 * (double)Ntot +
                 state_bytes;
    double limit = o->memory_limit > 0 ? o->memory_limit : phys_bytes();
    if (est > limit) {
        rc = sfail(s, SOMA_STATUS_NOMEM,
                   "the network needs about %.1f GB (%.3g synapses x %zu bytes, plus neuron state and buffers) but "
                   "the memory limit is %.1f GB; refused before allocating",
                   est / 1e9, syn_expected, sizeof(syn), limit / 1e9);
        goto done;
    }

    for (size_t p = 0; p < sn->npops; p++)
        if ((rc = build_pop(s, sn, p))) goto done;
    if ((rc = build_dense(s, sn))) goto done;
    for (size_t i = 0; i < sn->ndrives; i++) {
        spop *P = &s->pops[sn->drives[i].pop];
        drive *nd = realloc(P->drives, (P->ndrives + 1) * sizeof *nd);
        if (!nd) {
            rc = SOMA_STATUS_NOMEM;
            goto done;
        }
        P->drives = nd;
        memset(&P->drives[P->ndrives], 0, sizeof *nd);
        if ((rc = build_drive(s, &sn->drives[i], i, &P->drives[P->ndrives]))) goto done;
        P->ndrives++;
    }

    /* Connectivity: count pass. */
    uint32_t **cnt = calloc((size_t)nthreads, sizeof *cnt);
    if (!cnt) {
        rc = SOMA_STATUS_NOMEM;
        goto done;
    }
    for (int t = 0; t < nthreads; t++) {
        cnt[t] = xalloc((Ntot + 1) * sizeof(uint32_t));
        if (!cnt[t]) rc = SOMA_STATUS_NOMEM;
    }
    s->dmin = (size_t)-1;
    s->dmax = 0;
    for (int fill = 0; fill < 2 && !rc; fill++) {
        if (fill) {
            for (int t = 0; t < nthreads; t++)
                if (!(s->ts[t].pend = calloc(sn->nproj + sn->npops, sizeof *s->ts[t].pend))) rc = SOMA_STATUS_NOMEM;
            if (rc) break;
            /* Pack: target bits, then delay bits, then the port bit. */
            uint32_t tb = 1;
            while ((1ull << tb) < Ntot) tb++;
            s->dshift = tb;
            s->tmask = (uint32_t)((1ull << tb) - 1);
            uint32_t dbits = 31 - tb;
            s->dmask = (uint32_t)((1ull << dbits) - 1);
        }
        /* Each thread enumerates every projection but handles only the
         * synapses onto its own targets: its rows are its own, and the
         * costly part (weights and delays drawn per synapse) is shared out.
         * Values are keyed by edge number, so nothing depends on nthreads. */
#pragma omp parallel for num_threads(nthreads) schedule(static, 1)
        for (int t = 0; t < nthreads; t++) {
            int trc = 0;
            char cerr_t[400];
            size_t dmin = (size_t)-1, dmax = 0;
            for (size_t i = 0; i < sn->nproj + sn->npops && !trc; i++) {
                /* Dense projections (trained weights) become synapses of
                 * their delay (build_dense) from their matrix; i >= nproj:
                 * population i - nproj's recurrent weights (one step). */
                soma__proj rec;
                const float *W = NULL;
                const soma__proj *pr = i < sn->nproj ? &sn->projs[i] : NULL;
                if (!pr) {
                    const soma__pop *P = &sn->pops[i - sn->nproj];
                    if (!P->recurrent || pulled(sn, i - sn->nproj)) continue;
                    memset(&rec, 0, sizeof rec);
                    rec.from = rec.to = i - sn->nproj;
                    pr = &rec;
                    W = P->rec_w;
                } else if (!pr->sparse) {
                    if (pulled(sn, pr->from)) continue; /* computed by its target */
                    W = pr->w;
                }
                conn_ctx c;
                memset(&c, 0, sizeof c);
                c.s = s;
                c.pr = pr;
                c.iproj = i;
                c.first_from = s->pops[pr->from].first;
                c.first_to = s->pops[pr->to].first;
                c.cs_to = s->pops[pr->to].cs;
                c.kw = key_of(s->seed, KEY_WEIGHT, i);
                c.kd = key_of(s->seed, KEY_DELAY, i);
                c.const_w = W ? 0 : soma__expr_is_const(pr->wv.e);
                c.const_d = W ? 1 : soma__expr_is_const(pr->dv.e);
                if (c.const_w) c.w0 = soma__expr_eval(pr->wv.e, 0, 0, 1) * pr->wv.scale;
                c.nports = (int)s->pops[pr->to].m->n_ports;
                c.only = t;
                c.dmin = (size_t)-1;
                c.dmax = 0;
                if (W) {
                    c.d0 = i < sn->nproj ? s->pdly[i] : 1; /* recurrent weights: one step */
                } else if (c.const_d) {
                    double ms = soma__expr_eval(pr->dv.e, 0, 0, 1) * pr->dv.scale;
                    c.const_d = 0;
                    trc = delay_steps(&c, 0, &ms, &c.d0);
                    if (trc) break;
                    c.const_d = 1;
                }
                c.cnt = cnt;
                c.fill = fill;
                cerr_t[0] = 0;
                if (W)
                    trc = each_dense(W, s->pops[pr->from].N, s->pops[pr->to].N, &c);
                else
                    trc = soma__connect_each(&pr->c, s->pops[pr->from].N, s->pops[pr->to].N, pr->from == pr->to,
                                             key_of(s->seed, KEY_CONN, i), on_edge, &c, cerr_t, sizeof cerr_t);
                if (trc && cerr_t[0]) {
#pragma omp critical(soma_sim_errmsg)
                    sfail(s, trc, "projection %s -> %s: %s", s->pops[pr->from].name, s->pops[pr->to].name,
                          cerr_t);
                }
                if (!trc && fill) {
                    /* Where this projection's synapses end in each source's
                     * row (the fill cursors now): a hooked .out site moves
                     * them out of the table (soma_sim_set_hooks). */
                    size_t nf = s->pops[pr->from].N;
                    uint32_t *pe = malloc((nf ? nf : 1) * sizeof *pe);
                    if (!pe) trc = SOMA_STATUS_NOMEM;
                    else memcpy(pe, cnt[t] + c.first_from, nf * sizeof *pe);
                    s->ts[t].pend[i] = pe;
                }
                if (c.dmin < dmin) dmin = c.dmin;
                if (c.dmax > dmax) dmax = c.dmax;
            }
#pragma omp critical(soma_sim_build_err)
            {
                if (trc && !rc) rc = trc;
                if (dmin < s->dmin) s->dmin = dmin;
                if (dmax > s->dmax) s->dmax = dmax;
            }
        }
        if (rc) break;
        if (!fill) {
            /* Row starts from counts; the counts become fill cursors. */
            for (int t = 0; t < nthreads && !rc; t++) {
                tstate *ts = &s->ts[t];
                ts->row = xalloc((Ntot + 1) * sizeof(uint32_t));
                if (!ts->row) {
                    rc = SOMA_STATUS_NOMEM;
                    break;
                }
                uint64_t acc = 0;
                for (size_t g = 0; g < Ntot; g++) {
                    ts->row[g] = (uint32_t)acc;
                    acc += cnt[t][g];
                    cnt[t][g] = ts->row[g];
                }
                if (acc >= (1ull << 32)) {
                    rc = sfail(s, SOMA_STATUS_UNSUPPORTED, "more than 2^32 synapses per thread; use more threads");
                    break;
                }
                ts->row[Ntot] = (uint32_t)acc;
                ts->nsyn = (size_t)acc;
                s->nsyn += (size_t)acc;
                ts->syn = xalloc((size_t)acc * sizeof(syn));
                if (!ts->syn) rc = sfail(s, SOMA_STATUS_NOMEM, "out of memory for %llu synapses", (unsigned long long)acc);
            }
        }
    }
    if (s->dmin == (size_t)-1) s->dmin = s->dmax = 1; /* no synapses */
    for (int t = 0; t < nthreads; t++) free(cnt[t]);
    free(cnt);
    if (rc) goto done;

    s->slice = s->dmin;
    /* Populations that read another's graded output of the previous step
     * need every step complete before the next: slices of one step. */
    for (size_t p = 0; p < s->npops; p++)
        for (size_t k = 0; k < s->pops[p].npulls; k++)
            if (s->pops[s->pops[p].pulls[k].src].m != &soma__model_input) s->slice = 1;
    /* When a slice [t0, t0+L) is delivered (L <= slice), every step before t0+L
     * has been read, and spikes land on steps t0+slice .. t0+L-1+dmax: at most
     * dmax distinct unread steps, so dmax slots are enough. Fewer slots keep
     * the buffers in cache (CUBA: one slot, not four). */
    size_t need = s->dmax, ns = 1;
    while (ns < need) ns <<= 1;
    s->nslots = ns;
    s->smask = ns - 1;
    /* The estimate above assumed 64 slots; long delays need many more. */
    if (ns > 64) {
        est += 2.0 * 4.0 * (double)(ns - 64) * (double)Ntot;
        if (est > limit) {
            rc = sfail(s, SOMA_STATUS_NOMEM,
                       "the network needs about %.1f GB (input buffers for delays of up to %zu steps: %zu slots x "
                       "%zu neurons x 2 ports) but the memory limit is %.1f GB; refused before allocating them",
                       est / 1e9, s->dmax, ns, Ntot, limit / 1e9);
            goto done;
        }
    }
    s->ring = xalloc(2 * ns * Ntot * sizeof(float));
    s->slotp = malloc(2 * ns * sizeof(float *));
    if (!s->ring || !s->slotp) {
        rc = SOMA_STATUS_NOMEM;
        goto done;
    }
    for (size_t k = 0; k < 2 * ns; k++) s->slotp[k] = s->ring + k * Ntot;
    while ((1u << s->pshift) < ns) s->pshift++;
    for (int t = 0; t < nthreads; t++) {
        tstate *ts = &s->ts[t];
        size_t own = 0;
        for (size_t p = 0; p < s->npops; p++) {
            size_t a = (size_t)t * s->pops[p].cs;
            if (a < s->pops[p].N) own += (s->pops[p].N - a < s->pops[p].cs ? s->pops[p].N - a : s->pops[p].cs);
        }
        for (int q = 0; q < 2; q++) {
            ts->cap[q] = own + 64;
            ts->list[q] = malloc(ts->cap[q] * sizeof(uint32_t));
            ts->off[q] = calloc(s->slice * s->npops + 1, sizeof(uint32_t));
            if (!ts->list[q] || !ts->off[q]) rc = SOMA_STATUS_NOMEM;
        }
        ts->u = xalloc(DRIVE_BLOCK * sizeof(float));
        ts->c = xalloc(DRIVE_BLOCK * sizeof(float));
        ts->sched_pos = calloc(s->npops, sizeof(size_t));
        ts->st_pos = calloc(s->npops, sizeof(size_t));
        if (!ts->u || !ts->c || !ts->sched_pos || !ts->st_pos) rc = SOMA_STATUS_NOMEM;
    }
    if (rc) goto done;
    for (size_t p = 0; p < s->npops; p++)
        if (s->pops[p].nsched) qsort(s->pops[p].sched, s->pops[p].nsched, sizeof(soma_spike), cmp_spike);
    sha256_init(&s->sha);
    if ((rc = build_sites(s, sn))) goto done;
    s->build_s = soma__now() - t_start;
done:
    if (rc) {
        if (err && errlen) snprintf(err, errlen, "%s", s->errmsg[0] ? s->errmsg : soma_strerror(rc));
        soma_sim_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* ------------------------------------------------------------- running */

/* Hooks at population p's neurons [a, b) after its step (only when asked):
 * state variables, then spikes (as floats in ts->hval; back to bytes where
 * hooks may have changed them), then READ of its projections' inputs. */
static void hook_pop(soma_sim *s, tstate *ts, size_t p, size_t a, size_t b, uint64_t step) {
    spop *P = &s->pops[p];
    soma__hookplan *H = &s->hooks;
    const unsigned fwd = SOMA_HOOK_BIT(SOMA_HOOK_READ) | SOMA_HOOK_BIT(SOMA_HOOK_MASK) | SOMA_HOOK_BIT(SOMA_HOOK_OVERRIDE);
    soma_hook_event ev = {NULL, 0, (size_t)step, 1, b - a, NULL, 0, a, P->N};
    if (P->hk_state)
        for (size_t k = 0; k < P->m->n_state; k++) {
            size_t sid = P->sid_spk + 1 + k;
            if (!H->kinds[sid]) continue;
            ev.site = s->sites[sid].name;
            ev.data = P->st[k] + a;
            soma__hookplan_run(H, sid, fwd, &ev, ts->hmask);
        }
    if (!(P->hk_spk | P->hk_in)) return;
    float *v = ts->hval;
    for (size_t i = a; i < b; i++) v[i - a] = P->spk[i] ? 1.0f : 0.0f;
    ev.data = v;
    if (P->hk_spk) {
        ev.site = s->sites[P->sid_spk].name;
        soma__hookplan_run(H, P->sid_spk, fwd, &ev, ts->hmask);
        if (P->hk_spk & (SOMA_HOOK_BIT(SOMA_HOOK_MASK) | SOMA_HOOK_BIT(SOMA_HOOK_OVERRIDE)))
            for (size_t i = a; i < b; i++) P->spk[i] = v[i - a] != 0.0f;
    }
    if (P->hk_in)
        for (size_t sid = 0; sid < s->nsites; sid++) {
            const soma_site_info *si = &s->sites[sid];
            if (si->kind != SOMA_SITE_PROJ_IN || !H->kinds[sid] || si->from != p) continue;
            ev.site = si->name;
            soma__hookplan_run(H, sid, SOMA_HOOK_BIT(SOMA_HOOK_READ), &ev, ts->hmask);
        }
}

/* The simulator's own sites of population p before its step at neurons
 * [a, b): `.input` works in place on what arrived on port 0 (in0, indexed
 * by neuron); `.current` on P->hcur, filled with the step input (0 without
 * one), which the step then takes as its external input. */
static void hook_drive(soma_sim *s, tstate *ts, size_t p, float *in0, size_t a, size_t b, uint64_t step) {
    spop *P = &s->pops[p];
    soma__hookplan *H = &s->hooks;
    const unsigned fwd = SOMA_HOOK_BIT(SOMA_HOOK_READ) | SOMA_HOOK_BIT(SOMA_HOOK_MASK) | SOMA_HOOK_BIT(SOMA_HOOK_OVERRIDE);
    soma_hook_event ev = {s->sites[P->sid_cur + 1].name, 0, (size_t)step, 1, b - a, in0 + a, 0, a, P->N};
    if (P->hk_inp) soma__hookplan_run(H, P->sid_cur + 1, fwd, &ev, ts->hmask);
    if (!P->hk_cur) return;
    for (size_t i = a; i < b; i++) P->hcur[i] = P->ext ? P->ext[i] : 0.0f;
    ev.site = s->sites[P->sid_cur].name;
    ev.data = P->hcur + a;
    soma__hookplan_run(H, P->sid_cur, fwd, &ev, ts->hmask);
}

/* A spike_source population with hooks: its scheduled spikes at `step` as
 * bytes in P->spk[a, b), then hook_pop. Returns the schedule cursor. */
static size_t source_spikes(soma_sim *s, tstate *ts, size_t p, size_t a, size_t b, uint64_t step, size_t pos) {
    spop *P = &s->pops[p];
    memset(P->spk + a, 0, b - a);
    while (pos < P->nsched && P->sched[pos].step < step) pos++;
    for (; pos < P->nsched && P->sched[pos].step == step; pos++) {
        uint32_t id = P->sched[pos].id;
        if (id >= a && id < b) P->spk[id] = 1;
    }
    hook_pop(s, ts, p, a, b, step);
    return pos;
}

/* Make room for n more ids in a thread's list; 0 if it could not grow. */
static int list_room(tstate *ts, int q, size_t used, size_t n) {
    if (used + n <= ts->cap[q]) return 1;
    size_t cap = ts->cap[q] * 2;
    while (cap < used + n) cap *= 2;
    uint32_t *nl = realloc(ts->list[q], cap * sizeof(uint32_t));
    if (!nl) {
        ts->grow_failed = 1;
        return 0;
    }
    ts->list[q] = nl;
    ts->cap[q] = cap;
    return 1;
}

/* Poisson drive of neurons [a, b) of P at `step` into in[port]. */
static void apply_drive(const drive *d, tstate *ts, float *restrict in, size_t a, size_t b, uint64_t step) {
    float *restrict u = ts->u, *restrict c = ts->c;
    const float *restrict F = d->cdf;
    const float w = d->w;
    for (size_t i0 = a; i0 < b; i0 += DRIVE_BLOCK) {
        size_t n = b - i0 < DRIVE_BLOCK ? b - i0 : DRIVE_BLOCK;
        for (size_t j = 0; j < n; j++) {
            u[j] = soma__hash_unit(d->key, i0 + j, step);
            c[j] = 0.0f;
        }
        /* X = #{k : u >= F(k)}: inversion without a data-dependent loop. */
        for (int k = 0; k < d->K; k++) {
            const float f = F[k];
            for (size_t j = 0; j < n; j++) c[j] += u[j] >= f ? 1.0f : 0.0f;
        }
        for (size_t j = 0; j < n; j++) in[i0 + j] += c[j] * w;
    }
}

/* W x of a pull for neurons [a, b) at `step` (x as it was d steps earlier)
 * added into in[port] (by sign: positive weights into in[0], negative into
 * in[1]). */
static void pull_into(const soma_sim *s, const struct pull *pl, float *const in[2], size_t a, size_t b, uint64_t step) {
    const spop *S = &s->pops[pl->src];
    if (step < pl->d) return;
    uint64_t t = step - pl->d;
    const float *restrict x;
    if (S->m == &soma__model_input) {
        if (!S->gx || (!S->gconst && t >= S->gsteps)) return;
        x = S->gx + (S->gconst ? 0 : t * pl->nsrc);
    } else {
        /* A graded population's output of step t (slices are one step
         * long, so it is complete; its ring holds the last gring steps). */
        if (t < S->start) return;
        x = S->gout + (size_t)(t % S->gring) * S->N;
    }
    if (pl->port == SOMA_PORT_BY_SIGN) {
        /* As synapses by sign: positive weights on port 0, negative on 1. */
        for (size_t i = a; i < b; i++) {
            const float *restrict w = pl->w + i * pl->nsrc;
            float pos = 0.0f, neg = 0.0f;
            for (size_t j = 0; j < pl->nsrc; j++) {
                if (w[j] < 0.0f) neg += w[j] * x[j];
                else pos += w[j] * x[j];
            }
            in[0][i] += pos;
            in[1][i] += neg;
        }
        return;
    }
    float *restrict o = in[pl->port];
    for (size_t i = a; i < b; i++) {
        const float *restrict w = pl->w + i * pl->nsrc;
        float acc = 0.0f;
        for (size_t j = 0; j < pl->nsrc; j++) acc += w[j] * x[j];
        o[i] += acc;
    }
}

/* The input of neurons [a, b) of P from its dense projections at `step`:
 * their biases (port 0) and W x of graded sources on the projection's port
 * (but for those whose .out is hooked: hook_outs). */
static void dense_input(const soma_sim *s, const spop *P, float *const in[2], size_t a, size_t b, uint64_t step) {
    if (P->bias)
        for (size_t i = a; i < b; i++) in[0][i] += P->bias[i];
    for (size_t k = 0; k < P->npulls; k++)
        if (P->pulls[k].out == (size_t)-1) pull_into(s, &P->pulls[k], in, a, b, step);
}

/* The hooked .out sites of projections onto P for neurons [a, b) at
 * `step`: each projection's part of the input (its own buffer's slot, or
 * its pull computed aside) goes through the hooks (MASK, OVERRIDE, READ on
 * the sum over ports), then into the target's input buffers in[port]; the
 * buffer's slot is left zeroed. `run` 0: the population has not started,
 * the slot is only cleared. */
static void hook_outs(soma_sim *s, tstate *ts, size_t p, float *const in[2], size_t a, size_t b, uint64_t step,
                      int run) {
    spop *P = &s->pops[p];
    soma__hookplan *H = &s->hooks;
    const unsigned fwd = SOMA_HOOK_BIT(SOMA_HOOK_READ) | SOMA_HOOK_BIT(SOMA_HOOK_MASK) | SOMA_HOOK_BIT(SOMA_HOOK_OVERRIDE);
    size_t n = b - a, slot = (size_t)(step & s->smask);
    for (size_t o = 0; o < s->nouts; o++) {
        oproj *op = &s->outs[o];
        if (op->to != p) continue;
        float *src[2];
        if (op->pulled) {
            /* src[port][i - a]: the pull's output, computed aside. */
            src[0] = ts->hp[0], src[1] = ts->hp[1];
            memset(src[0], 0, n * sizeof(float));
            memset(src[1], 0, n * sizeof(float));
            const struct pull *pl = NULL;
            for (size_t k = 0; k < P->npulls; k++)
                if (P->pulls[k].out == o) pl = &P->pulls[k];
            float *shifted[2] = {src[0] - a, src[1] - a};
            if (pl && run) pull_into(s, pl, shifted, a, b, step);
        } else {
            src[0] = op->buf + slot * P->N + a;
            src[1] = op->buf + (s->nslots + slot) * P->N + a;
        }
        if (run) {
            float *v = ts->hval;
            for (size_t i = 0; i < n; i++) v[i] = src[0][i] + src[1][i];
            soma_hook_event ev = {s->sites[op->sid].name, 0, (size_t)step, 1, n, v, 0, a, P->N};
            soma__hookplan_run(H, op->sid, fwd, &ev, ts->hmask);
            unsigned k = H->kinds[op->sid];
            if (k & SOMA_HOOK_BIT(SOMA_HOOK_OVERRIDE)) {
                /* The values as the hooks left them, on the projection's port. */
                if (op->port == SOMA_PORT_BY_SIGN)
                    for (size_t i = 0; i < n; i++) in[v[i] < 0.0f][a + i] += v[i];
                else
                    for (size_t i = 0; i < n; i++) in[op->port][a + i] += v[i];
            } else if (k & SOMA_HOOK_BIT(SOMA_HOOK_MASK)) {
                const float *m = ts->hmask;
                for (int q = 0; q < 2; q++)
                    for (size_t i = 0; i < n; i++) in[q][a + i] += src[q][i] * m[i];
            } else
                for (int q = 0; q < 2; q++)
                    for (size_t i = 0; i < n; i++) in[q][a + i] += src[q][i];
        }
        if (!op->pulled) {
            memset(src[0], 0, n * sizeof(float));
            memset(src[1], 0, n * sizeof(float));
        }
    }
}

/* A trainer model's step for neurons [a, b): its forward op on a batch of
 * one, the state before the step copied aside (forward reads the previous
 * state and writes the new one). Consumes in[a..b). */
static void train_op_step(spop *P, float *restrict in, size_t a, size_t b, uint64_t step, float dt) {
    const soma_model *m = P->m;
    size_t n = b - a;
    soma_model_args ma;
    memset(&ma, 0, sizeof ma);
    for (size_t k = 0; k < m->n_params; k++) ma.prm[k] = P->prm[k] + a;
    const float *drv[sizeof P->drv / sizeof P->drv[0]];
    for (size_t k = 0; k < m->n_derived; k++) drv[k] = P->drv[k] + a;
    ma.drv = drv;
    ma.dt = dt;
    ma.reset = P->reset;
    ma.surrogate = SOMA_SURROGATE_FAST_SIGMOID;
    ma.surrogate_param = soma_surrogate_default_param(SOMA_SURROGATE_FAST_SIGMOID);
    ma.scratch = P->scr + 2 * a;
    ma.rng_key = P->key;
    ma.step = step;
    const float *prev[SOMA_MAX_STATE];
    float *cur[SOMA_MAX_STATE];
    for (size_t k = 0; k < m->n_state; k++) {
        /* Wider state (cell models) is stepped whole: a = 0, b = N. */
        size_t w = a == 0 && b == P->N ? P->stw[k] : n;
        memcpy(P->prev[k] + a, P->st[k] + a, w * sizeof(float));
        prev[k] = P->prev[k] + a;
        cur[k] = P->st[k] + a;
    }
    for (size_t k = 0; k < m->n_weights; k++) ma.w[k] = P->cw[k];
    ma.work = P->work;
    float *y = m->graded ? P->gout + (size_t)(step % P->gring) * P->N : P->sf;
    m->forward(&ma, prev, cur, y + a, in + a, 1, n);
    memset(in + a, 0, n * sizeof(float));
    if (m->graded) /* real values: read by dense projections, never events */
        memset(P->spk + a, 0, n);
    else
        for (size_t i = a; i < b; i++) P->spk[i] = P->sf[i] != 0.0f;
}

/* Thread t's update of every population for steps [t0, t0+L), spikes into
 * list parity q. */
static void update_slice(soma_sim *s, int t, uint64_t t0, size_t L, int q) {
    tstate *ts = &s->ts[t];
    size_t n = 0, np = s->npops, Ntot = s->Ntot;
    uint32_t *off = ts->off[q];
    for (size_t k = 0; k < L; k++) {
        uint64_t step = t0 + k;
        size_t slot = (size_t)(step & s->smask);
        for (size_t p = 0; p < np; p++) {
            spop *P = &s->pops[p];
            off[k * np + p] = (uint32_t)n;
            size_t a = (size_t)t * P->cs, b = a + P->cs;
            if (b > P->N) b = P->N;
            if (a >= b) continue;
            if (P->m == &soma__model_spike_source && P->hk) {
                ts->sched_pos[p] = source_spikes(s, ts, p, a, b, step, ts->sched_pos[p]);
                if (!list_room(ts, q, n, b - a)) continue;
                for (size_t i = a; i < b; i++)
                    if (P->spk[i]) ts->list[q][n++] = P->first + (uint32_t)i;
                continue;
            }
            if (P->m == &soma__model_spike_source) {
                size_t pos = ts->sched_pos[p];
                while (pos < P->nsched && P->sched[pos].step < step) pos++;
                for (; pos < P->nsched && P->sched[pos].step == step; pos++) {
                    uint32_t id = P->sched[pos].id;
                    if (id < a || id >= b) continue;
                    if (!list_room(ts, q, n, 1)) break;
                    ts->list[q][n++] = P->first + id;
                }
                ts->sched_pos[p] = pos;
                continue;
            }
            if (P->m == &soma__model_input) continue; /* a graded source: its targets read its values */
            float *in[2] = {s->ring + slot * Ntot + P->first, s->ring + (s->nslots + slot) * Ntot + P->first};
            if (step < P->start) {
                /* Not started: the neurons stay as they are (nothing of the
                 * dense projections has arrived; anything else is dropped). */
                memset(in[0] + a, 0, (b - a) * sizeof(float));
                memset(in[1] + a, 0, (b - a) * sizeof(float));
                if (P->nout) hook_outs(s, ts, p, in, a, b, step, 0);
                continue;
            }
            if (P->bias || P->npulls) dense_input(s, P, in, a, b, step);
            if (P->nout) hook_outs(s, ts, p, in, a, b, step, 1);
            for (size_t di = 0; di < P->ndrives; di++)
                apply_drive(&P->drives[di], ts, in[P->drives[di].port], a, b, step);
            if (P->ext) {
                size_t pos = ts->st_pos[p];
                while (pos < P->n_st && P->st_step[pos] <= step) pos++;
                if (pos != ts->st_pos[p]) { /* ext starts at 0, the value before the first point */
                    float v = pos ? P->st_v[pos - 1] : 0.0f;
                    for (size_t i = a; i < b; i++) P->ext[i] = v;
                }
                ts->st_pos[p] = pos;
            }
            if (P->hk_cur | P->hk_inp) hook_drive(s, ts, p, in[0], a, b, step);
            float *ext = P->hk_cur ? P->hcur : P->ext;
            if (P->train_op) {
                /* A trainer model has one input, its current: step input included. */
                if (ext)
                    for (size_t i = a; i < b; i++) in[0][i] += ext[i];
                train_op_step(P, in[0], a, b, step, s->dt);
            } else {
            soma_sim_args args;
            args.prm = (const float *const *)P->prm;
            args.drv = (const float *const *)P->drv;
            args.uniform = P->uniform;
            args.dt = s->dt;
            args.step = step;
            args.rng_key = P->key;
            args.ext = ext;
            P->m->sim_step(&args, P->st, in, P->spk, a, b); /* consumes (zeroes) in[][a..b) */
            }
            if (P->hk) hook_pop(s, ts, p, a, b, step);
            /* Collect spikes: skip 8 silent neurons at a time. */
            if (!list_room(ts, q, n, b - a)) continue;
            uint32_t *restrict lst = ts->list[q];
            const uint8_t *restrict sp = P->spk;
            size_t i = a;
            for (; i + 8 <= b; i += 8) {
                uint64_t w8;
                memcpy(&w8, sp + i, 8);
                if (!w8) continue;
                for (size_t j = i; j < i + 8; j++)
                    if (sp[j]) lst[n++] = P->first + (uint32_t)j;
            }
            for (; i < b; i++)
                if (sp[i]) lst[n++] = P->first + (uint32_t)i;
            for (size_t r = 0; r < s->nrecs; r++) {
                state_rec *R = &s->recs[r];
                if (R->pop != p || step % R->every) continue;
                float *row = R->data + (size_t)(step / R->every - R->row0) * R->n;
                const float *x = P->st[R->var];
                for (size_t j = 0; j < R->n; j++)
                    if (R->idx[j] >= a && R->idx[j] < b) row[j] = x[R->idx[j]];
            }
        }
    }
    off[L * np] = (uint32_t)n;
}

/* Thread t delivers the slice's spikes into the buffers of the hooked
 * projections' synapses onto the targets it owns (the same slots as the
 * input ring, per projection). */
static void deliver_outs(soma_sim *s, int t, uint64_t t0, size_t L, int q) {
    const size_t np = s->npops, smask = s->smask, nslots = s->nslots;
    for (size_t o = 0; o < s->nouts; o++) {
        const oproj *op = &s->outs[o];
        const oside *sd = &s->ts[t].oside[o];
        if (op->pulled || !sd->nsyn) continue;
        const uint32_t first_from = s->pops[op->from].first, first_to = s->pops[op->to].first;
        const size_t Nto = s->pops[op->to].N;
        for (size_t k = 0; k < L; k++) {
            const uint64_t base = t0 + k;
            for (int u = 0; u < s->nthreads; u++) {
                const tstate *ou = &s->ts[u];
                const uint32_t j0 = ou->off[q][k * np + op->from], j1 = ou->off[q][k * np + op->from + 1];
                for (uint32_t j = j0; j < j1; j++) {
                    const uint32_t g = ou->list[q][j] - first_from;
                    for (uint32_t e = sd->row[g]; e < sd->row[g + 1]; e++) {
                        const uint32_t key = sd->syn[e].key;
                        size_t slot = (size_t)((base + ((key >> s->dshift) & s->dmask)) & smask) + (key >> 31) * nslots;
                        op->buf[slot * Nto + ((key & s->tmask) - first_to)] += sd->syn[e].w;
                    }
                }
            }
        }
    }
}

/* Thread t delivers the slice's spikes (all threads' lists, parity q) into
 * the buffers of the targets it owns. */
static void deliver_slice(soma_sim *s, int t, uint64_t t0, size_t L, int q) {
    const tstate *me = &s->ts[t];
    const uint32_t *restrict row = me->row;
    const syn *restrict sy = me->syn;
    float *const *restrict slotp = s->slotp; /* [2 * nslots]: port p, slot k at slotp[p * nslots + k] */
    const size_t np = s->npops, smask = s->smask;
    const uint32_t tmask = s->tmask, dshift = s->dshift, dmask = s->dmask;
    const uint32_t pshift = s->pshift; /* port bit moved onto the slot index: port * nslots */
    for (size_t k = 0; k < L; k++) {
        const uint32_t base = (uint32_t)(t0 + k);
        for (size_t p = 0; p < np; p++)
            for (int u = 0; u < s->nthreads; u++) {
                const tstate *o = &s->ts[u];
                const uint32_t *lst = o->list[q];
                const uint32_t j0 = o->off[q][k * np + p], j1 = o->off[q][k * np + p + 1];
                for (uint32_t j = j0; j < j1; j++) {
                    /* Rows of spiking sources are scattered over the whole
                     * synapse table (far beyond the caches in big nets):
                     * fetch the row index of the spike 4 ahead and the first
                     * synapses of the spike 2 ahead while this one is done. */
                    if (j + 4 < j1) __builtin_prefetch(&row[lst[j + 4]], 0, 1);
                    if (j + 2 < j1) __builtin_prefetch(&sy[row[lst[j + 2]]], 0, 1);
                    const uint32_t g = lst[j];
                    const uint32_t e1 = row[g + 1];
                    uint32_t e = row[g];
                    for (; e < e1; e++) {
                        const uint32_t key = sy[e].key;
                        const uint32_t slot = ((base + ((key >> dshift) & dmask)) & (uint32_t)smask) | ((key >> 31) << pshift);
                        slotp[slot][key & tmask] += sy[e].w;
                    }
                }
            }
    }
    if (s->nouts) deliver_outs(s, t, t0, L, q);
}

/* Master's bookkeeping of a slice: spike counts, the SHA-256 stream and the
 * spike record, all in (step, id) order. */
static int account_slice(soma_sim *s, uint64_t t0, size_t L, int q) {
    size_t np = s->npops, total = 0;
    for (int u = 0; u < s->nthreads; u++) total += s->ts[u].off[q][L * np];
    if (!total) return 0;
    if (s->hashcap < 2 * total) {
        size_t cap = 2 * total + 1024;
        uint32_t *nb = realloc(s->hashbuf, cap * sizeof(uint32_t));
        if (!nb) return SOMA_STATUS_NOMEM;
        s->hashbuf = nb;
        s->hashcap = cap;
    }
    if (s->record && s->nrec + total > s->caprec) {
        size_t cap = s->caprec ? s->caprec : 4096;
        while (cap < s->nrec + total) cap *= 2;
        soma_spike *nr = realloc(s->rec, cap * sizeof *nr);
        if (!nr) return SOMA_STATUS_NOMEM;
        s->rec = nr;
        s->caprec = cap;
    }
    size_t h = 0;
    for (size_t k = 0; k < L; k++)
        for (size_t p = 0; p < np; p++)
            for (int u = 0; u < s->nthreads; u++) {
                const tstate *o = &s->ts[u];
                uint32_t j0 = o->off[q][k * np + p], j1 = o->off[q][k * np + p + 1];
                s->pops[p].spikes += j1 - j0;
                for (uint32_t j = j0; j < j1; j++) {
                    uint32_t st = (uint32_t)(t0 + k), id = o->list[q][j];
                    uint8_t *b = (uint8_t *)&s->hashbuf[h];
                    for (int z = 0; z < 4; z++) {
                        b[z] = (uint8_t)(st >> (8 * z));
                        b[4 + z] = (uint8_t)(id >> (8 * z));
                    }
                    h += 2;
                    if (s->record && s->pops[p].record) s->rec[s->nrec++] = (soma_spike){st, id};
                }
            }
    sha256_update(&s->sha, h * sizeof(uint32_t), (const uint8_t *)s->hashbuf);
    s->spikes += total;
    return 0;
}

/* A sense-reversing barrier that spins, then sleeps on a futex: a slice can
 * be one step long (10,000 barriers per simulated second), too short for
 * OpenMP's barrier; but on a loaded machine a thread that only spun or
 * yielded would burn the time slice its partner needs, so after ~20 us a
 * waiter sleeps until the last thread arrives and wakes it. */
static void spin_barrier(soma_sim *s, int nth, int *local_sense) {
    int sense = !*local_sense;
    *local_sense = sense;
    if (__atomic_add_fetch(&s->bar_count, 1, __ATOMIC_ACQ_REL) == nth) {
        __atomic_store_n(&s->bar_count, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&s->bar_sense, sense, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&s->bar_sleepers, __ATOMIC_SEQ_CST))
            syscall(SYS_futex, &s->bar_sense, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
        return;
    }
    for (unsigned spins = 0; spins < 2000; spins++) {
        if (__atomic_load_n(&s->bar_sense, __ATOMIC_ACQUIRE) == sense) return;
        __builtin_ia32_pause();
    }
    __atomic_add_fetch(&s->bar_sleepers, 1, __ATOMIC_SEQ_CST);
    /* FUTEX_WAIT returns at once if the sense has already flipped, so a
     * wake-up between the check and the sleep is never lost. */
    while (__atomic_load_n(&s->bar_sense, __ATOMIC_SEQ_CST) != sense)
        syscall(SYS_futex, &s->bar_sense, FUTEX_WAIT_PRIVATE, !sense, NULL, NULL, 0);
    __atomic_sub_fetch(&s->bar_sleepers, 1, __ATOMIC_SEQ_CST);
}

/* Thread t's share of steps [t0, t0 + nsteps), slice by slice: the
 * simulator's threads t, t + nth, ... when OpenMP gave a team of nth < nthreads
 * (a call from inside a parallel region, OMP_THREAD_LIMIT, OMP_DYNAMIC). */
static int run_thread(soma_sim *s, int t, int nth, uint64_t t0, uint64_t nsteps, int *sense) {
    int rc = 0;
    /* Conductances and currents decay towards 0 through denormal numbers,
     * which cost ~100 cycles each: flush them to zero in the simulation
     * threads (the same on every thread, so results stay thread-independent). */
    unsigned csr = __builtin_ia32_stmxcsr();
    __builtin_ia32_ldmxcsr(csr | 0x8040);
    uint64_t done = 0;
    while (done < nsteps) {
        uint64_t st = t0 + done;
        size_t L = (size_t)(nsteps - done < s->slice ? nsteps - done : s->slice);
        int q = (int)((st / s->slice) & 1);
        for (int u = t; u < s->nthreads; u += nth) update_slice(s, u, st, L, q);
        if (nth > 1) spin_barrier(s, nth, sense);
        for (int u = t; u < s->nthreads; u += nth) deliver_slice(s, u, st, L, q);
        if (t == 0) {
            int r = account_slice(s, st, L, q);
            if (r && !rc) rc = r;
        }
        done += L;
    }
    __builtin_ia32_ldmxcsr(csr);
    return rc;
}

/* Steps [t0, t0 + nsteps) in slices, all threads in one parallel region. */
static int run_segment(soma_sim *s, uint64_t t0, uint64_t nsteps) {
    int rc = 0;
    if (s->nthreads == 1) {
        int sense = 0;
        rc = run_thread(s, 0, 1, t0, nsteps, &sense);
    } else {
        s->bar_count = 0;
        s->bar_sense = 0;
        s->bar_sleepers = 0;
#pragma omp parallel num_threads(s->nthreads) reduction(| : rc)
        {
#ifdef SOMA_HAVE_OPENMP
            int t = omp_get_thread_num(), nth = omp_get_num_threads();
#else
            int t = 0, nth = 1;
#endif
            int sense = 0;
            rc |= run_thread(s, t, nth, t0, nsteps, &sense);
        }
    }
    for (int t = 0; t < s->nthreads; t++)
        if (s->ts[t].grow_failed) return sfail(s, SOMA_STATUS_NOMEM, "out of memory for spike lists");
    return rc ? SOMA_STATUS_NOMEM : 0;
}

int soma_sim_run(soma_sim *s, double t_ms, soma_sim_progress_fn cb, void *user) {
    if (!s || !(t_ms >= 0)) return SOMA_STATUS_INVALID;
    uint64_t nsteps = (uint64_t)llround(t_ms / s->dt);
    if (s->step + nsteps >= (1ull << 32)) return sfail(s, SOMA_STATUS_UNSUPPORTED, "at most 2^32 steps can be simulated");
    /* Room for every state sample of this run. */
    for (size_t r = 0; r < s->nrecs; r++) {
        state_rec *R = &s->recs[r];
        uint64_t last = (s->step + nsteps + R->every - 1) / R->every; /* rows up to this step index */
        size_t rows = (size_t)(last > R->row0 ? last - R->row0 : 0);
        if (rows > R->cap) {
            /* At least one float: realloc(p, 0) would free p and return NULL. */
            float *nd = realloc(R->data, (rows * R->n > 0 ? rows * R->n : 1) * sizeof(float));
            if (!nd) return sfail(s, SOMA_STATUS_NOMEM, "out of memory for state recording");
            /* New rows start as the state now: a population that starts
             * late (a trained net's layer at its depth) is not stepped
             * before its start, so its state then is this one, and the
             * stepping loop overwrites the rows of the steps it runs. */
            const spop *P = &s->pops[R->pop];
            for (size_t q = R->cap; q < rows; q++)
                for (size_t j = 0; j < R->n; j++) nd[q * R->n + j] = P->st[R->var][R->idx[j]];
            R->data = nd;
            R->cap = rows;
        }
    }
    double t_start = soma__now(), t_end_ms = (double)(s->step + nsteps) * s->dt;
    s->hooks.cancel = 0;
    /* Segments of about 100 ms of model time, whole slices, for progress. */
    uint64_t seg = (uint64_t)(100.0 / s->dt);
    if (seg < s->slice) seg = s->slice;
    seg = seg / s->slice * s->slice;
    uint64_t left = nsteps;
    int rc = 0;
    while (left && !rc) {
        uint64_t n = left < seg ? left : seg;
        /* Keep slices aligned to multiples of the slice so parities alternate. */
        uint64_t to_edge = s->slice - s->step % s->slice;
        if (to_edge != s->slice && n > to_edge) n = to_edge;
        rc = run_segment(s, s->step, n);
        if (!rc && soma__hookplan_cancelled(&s->hooks))
            rc = sfail(s, SOMA_STATUS_CANCELLED, "cancelled by a hook on '%s' at step %zu", s->hooks.cancel_site,
                       s->hooks.cancel_step);
        s->step += n;
        left -= n;
        for (size_t r = 0; r < s->nrecs; r++) {
            state_rec *R = &s->recs[r];
            uint64_t last = (s->step + R->every - 1) / R->every;
            R->rows = (size_t)(last > R->row0 ? last - R->row0 : 0);
        }
        s->sim_s += soma__now() - t_start;
        t_start = soma__now();
        if (!rc && cb && cb(user, (double)s->step * s->dt, t_end_ms, s->sim_s))
            rc = sfail(s, SOMA_STATUS_CANCELLED, "cancelled at %.1f ms", (double)s->step * s->dt);
    }
    return rc;
}

int soma_sim_record_state(soma_sim *s, size_t pop, const char *var, const size_t *idx, size_t n, size_t every,
                          size_t *rec) {
    if (!s || !var || (n && !idx) || every == 0) return SOMA_STATUS_INVALID;
    if (pop >= s->npops) return sfail(s, SOMA_STATUS_INVALID, "no population %zu", pop);
    spop *P = &s->pops[pop];
    int k = soma__model_state_index(P->m, var);
    if (k < 0) {
        char names[256];
        soma__model_state_list(P->m, names, sizeof names);
        return sfail(s, SOMA_STATUS_NOTFOUND, "population '%s' (model %s) has no state variable '%s'; expected one of: %s",
                     P->name, P->m->name, var, names);
    }
    for (size_t j = 0; j < n; j++)
        if (idx[j] >= P->N)
            return sfail(s, SOMA_STATUS_INVALID, "neuron %zu is out of range (population '%s' has %zu)", idx[j],
                         P->name, P->N);
    state_rec *nr = realloc(s->recs, (s->nrecs + 1) * sizeof *nr);
    if (!nr) return sfail(s, SOMA_STATUS_NOMEM, "out of memory for a recorder of %s.%s", P->name, var);
    s->recs = nr;
    state_rec *R = &s->recs[s->nrecs];
    memset(R, 0, sizeof *R);
    R->pop = pop;
    R->var = (size_t)k;
    R->n = n;
    R->every = every;
    R->idx = malloc((n ? n : 1) * sizeof(size_t));
    if (!R->idx) return sfail(s, SOMA_STATUS_NOMEM, "out of memory for a recorder of %s.%s", P->name, var);
    if (n) memcpy(R->idx, idx, n * sizeof(size_t));
    R->row0 = (s->step + every - 1) / every;
    if (rec) *rec = s->nrecs;
    s->nrecs++;
    return 0;
}

const float *soma_sim_state_data(const soma_sim *s, size_t rec, size_t *samples, size_t *n, size_t *every) {
    if (!s || rec >= s->nrecs) return NULL;
    const state_rec *R = &s->recs[rec];
    if (samples) *samples = R->rows;
    if (n) *n = R->n;
    if (every) *every = R->every;
    return R->data;
}

int soma_sim_set_input(soma_sim *s, size_t pop, const float *x, size_t steps, int constant) {
    if (!s || pop >= s->npops || !x || (!constant && steps == 0)) return SOMA_STATUS_INVALID;
    spop *P = &s->pops[pop];
    if (P->m != &soma__model_input)
        return sfail(s, SOMA_STATUS_INVALID, "population '%s' is a %s, not an input population", P->name, P->m->name);
    size_t n = (constant ? 1 : steps) * P->N;
    float *g = malloc(n * sizeof *g);
    if (!g) return SOMA_STATUS_NOMEM;
    memcpy(g, x, n * sizeof *g);
    free(P->gx);
    P->gx = g;
    P->gsteps = constant ? 0 : steps;
    P->gconst = !!constant;
    return 0;
}

uint64_t soma_sim_start_step(const soma_sim *s, size_t pop) { return s && pop < s->npops ? s->pops[pop].start : 0; }

int soma_sim_record_spikes(soma_sim *s, size_t pop, int on) {
    if (!s || pop >= s->npops) return SOMA_STATUS_INVALID;
    s->pops[pop].record = on != 0;
    return 0;
}

const soma_spike *soma_sim_spikes(const soma_sim *s, size_t *n) {
    if (n) *n = s && s->record ? s->nrec : 0;
    return s && s->record ? s->rec : NULL;
}

size_t soma_sim_pop_count(const soma_sim *s) { return s ? s->npops : 0; }

int soma_sim_pop(const soma_sim *s, size_t pop, soma_sim_pop_info *info) {
    if (!s || !info || pop >= s->npops) return SOMA_STATUS_INVALID;
    const spop *P = &s->pops[pop];
    info->name = P->name;
    info->model = P->m->name;
    info->size = P->N;
    info->first = P->first;
    info->spikes = P->spikes;
    return 0;
}

int soma_sim_stats_get(const soma_sim *s, soma_sim_stats *st) {
    if (!s || !st) return SOMA_STATUS_INVALID;
    memset(st, 0, sizeof *st);
    st->neurons = s->Ntot;
    st->synapses = s->nsyn;
    st->spikes = s->spikes;
    st->steps = s->step;
    st->dt_ms = s->dt;
    st->build_seconds = s->build_s;
    st->sim_seconds = s->sim_s;
    st->bytes_per_synapse = s->nsyn ? (double)sizeof(syn) : 0;
    st->connectivity_bytes = s->nsyn * sizeof(syn) + (size_t)s->nthreads * (s->Ntot + 1) * sizeof(uint32_t);
    st->min_delay_steps = s->dmin;
    st->max_delay_steps = s->dmax;
    st->threads = s->nthreads;
    struct sha256_ctx c = s->sha; /* the stream goes on; digest a copy */
    sha256_digest(&c, SHA256_DIGEST_SIZE, st->spikes_sha256);
    return 0;
}

int soma_sim_write_connectivity(const soma_sim *s, const char *path) {
    if (!s || !path) return SOMA_STATUS_INVALID;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return sfail((soma_sim *)s, SOMA_STATUS_IO, "cannot write %s: %s", tmp, strerror(errno));
    fprintf(f, "pre,post,weight,delay_ms\n");
    outs_weights((soma_sim *)s, 1); /* hooked .out sites: their weights, not the table's zeros */
    /* Rows by source; each thread's table holds its targets' synapses. */
    for (size_t g = 0; g < s->Ntot; g++)
        for (int t = 0; t < s->nthreads; t++) {
            const tstate *ts = &s->ts[t];
            for (uint32_t e = ts->row[g]; e < ts->row[g + 1]; e++) {
                uint32_t key = ts->syn[e].key;
                fprintf(f, "%zu,%u,%.9g,%.9g\n", g, key & s->tmask, (double)ts->syn[e].w,
                        (double)((key >> s->dshift) & s->dmask) * (double)s->dt);
            }
        }
    outs_weights((soma_sim *)s, 0);
    int bad = ferror(f);
    bad |= fflush(f) != 0;
    bad |= fsync(fileno(f)) != 0;
    int e = errno;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path)) {
        e = bad ? (e ? e : EIO) : errno;
        remove(tmp);
        return sfail((soma_sim *)s, SOMA_STATUS_IO, "cannot write %s: %s", path, strerror(e));
    }
    return 0;
}

/* ----------------------------------------------------------------- hooks */

size_t soma_sim_site_count(const soma_sim *s) { return s ? s->nsites : 0; }

int soma_sim_site(const soma_sim *s, size_t i, soma_site_info *info) {
    if (!s || !info || i >= s->nsites) return SOMA_STATUS_INVALID;
    *info = s->sites[i];
    return 0;
}

/* Give the main synapse table back the weights of the hooked projections'
 * synapses (restore 1), or zero them there again (restore 0). */
static void outs_weights(soma_sim *s, int restore) {
    for (int t = 0; t < s->nthreads && s->nouts; t++) {
        tstate *ts = &s->ts[t];
        for (size_t o = 0; o < s->nouts && ts->oside; o++) {
            const oside *sd = &ts->oside[o];
            for (size_t e = 0; e < sd->nsyn; e++) ts->syn[sd->pos[e]].w = restore ? sd->syn[e].w : 0.0f;
        }
    }
}

/* Undo outs_build: the weights go back into the main table. */
static void outs_free(soma_sim *s) {
    if (s->ts) {
        outs_weights(s, 1);
        for (int t = 0; t < s->nthreads; t++) {
            tstate *ts = &s->ts[t];
            for (size_t o = 0; o < s->nouts && ts->oside; o++) {
                free(ts->oside[o].row);
                free(ts->oside[o].syn);
                free(ts->oside[o].pos);
            }
            free(ts->oside);
            ts->oside = NULL;
        }
    }
    for (size_t o = 0; o < s->nouts; o++) free(s->outs[o].buf);
    free(s->outs);
    s->outs = NULL;
    s->nouts = 0;
    for (size_t p = 0; p < s->npops && s->pops; p++) {
        s->pops[p].nout = 0;
        for (size_t k = 0; k < s->pops[p].npulls; k++) s->pops[p].pulls[k].out = (size_t)-1;
    }
}

/* A buffer of its own for each projection whose .out site the plan hooks:
 * its synapses move out of the main table (their copies there weigh 0, so
 * the hot delivery loop is unchanged and unhooked sites cost nothing) into
 * a side table per thread that deliver_outs reads; a pull is computed
 * aside by hook_outs. */
static int outs_build(soma_sim *s, size_t widest) {
    size_t n = 0;
    for (size_t sid = 0; sid < s->nsites; sid++)
        if (s->sites[sid].kind == SOMA_SITE_PROJ_OUT && s->hooks.kinds[sid]) n++;
    if (!n) return 0;
    s->outs = calloc(n, sizeof *s->outs);
    if (!s->outs) return SOMA_STATUS_NOMEM;
    for (int t = 0; t < s->nthreads; t++)
        if (!(s->ts[t].oside = calloc(n, sizeof *s->ts[t].oside))) return SOMA_STATUS_NOMEM;
    for (size_t sid = 0; sid < s->nsites; sid++) {
        const soma_site_info *si = &s->sites[sid];
        if (si->kind != SOMA_SITE_PROJ_OUT || !s->hooks.kinds[sid]) continue;
        size_t o = s->nouts++, i = si->proj;
        oproj *op = &s->outs[o];
        spop *T = &s->pops[si->pop], *F = &s->pops[si->from];
        op->proj = i, op->sid = sid, op->from = si->from, op->to = si->pop;
        op->port = s->pport[i];
        op->pulled = s->pkind[i] == 2;
        T->nout++;
        if (op->pulled) {
            for (size_t k = 0; k < T->npulls; k++)
                if (T->pulls[k].proj == i) T->pulls[k].out = o;
            for (int t = 0; t < s->nthreads; t++)
                for (int q = 0; q < 2; q++)
                    if (!s->ts[t].hp[q] && !(s->ts[t].hp[q] = xalloc(widest * sizeof(float)))) return SOMA_STATUS_NOMEM;
            continue;
        }
        if (!(op->buf = xalloc(2 * s->nslots * T->N * sizeof(float)))) return SOMA_STATUS_NOMEM;
        /* This projection's segment of row g: from the end of the previous
         * projection out of the same population (or the row's start) to its own end. */
        size_t prev = (size_t)-1;
        for (size_t j = i; j-- > 0;)
            if (s->pkind[j] == 1 && s->pfrom[j] == si->from) {
                prev = j;
                break;
            }
        for (int t = 0; t < s->nthreads; t++) {
            tstate *ts = &s->ts[t];
            oside *sd = &ts->oside[o];
            const uint32_t *end = ts->pend[i], *beg = prev != (size_t)-1 ? ts->pend[prev] : NULL;
            if (!end) continue;
            if (!(sd->row = calloc(F->N + 1, sizeof *sd->row))) return SOMA_STATUS_NOMEM;
            size_t m = 0;
            for (size_t g = 0; g < F->N; g++) {
                uint32_t b0 = beg ? beg[g] : ts->row[F->first + g];
                sd->row[g] = (uint32_t)m;
                m += end[g] - b0;
            }
            sd->row[F->N] = (uint32_t)m;
            sd->syn = malloc((m ? m : 1) * sizeof *sd->syn);
            sd->pos = malloc((m ? m : 1) * sizeof *sd->pos);
            if (!sd->syn || !sd->pos) return SOMA_STATUS_NOMEM;
            for (size_t g = 0; g < F->N; g++) {
                uint32_t b0 = beg ? beg[g] : ts->row[F->first + g];
                for (uint32_t e = b0; e < end[g]; e++) {
                    size_t k = sd->row[g] + (e - b0);
                    sd->syn[k] = ts->syn[e];
                    sd->pos[k] = e;
                }
            }
            sd->nsyn = m;
        }
    }
    outs_weights(s, 0);
    return 0;
}

int soma_sim_set_hooks(soma_sim *s, const soma_hooks *h) {
    if (!s) return SOMA_STATUS_INVALID;
    soma__hookplan plan;
    int rc = soma__hookplan_build(&plan, h, s->sites, s->nsites, s->errmsg, sizeof s->errmsg);
    if (rc) return rc;
    for (size_t i = 0; i < plan.n; i++) {
        const soma_site_info *si = &s->sites[plan.h[i].site];
        int k = plan.h[i].kind;
        const char *why = NULL;
        if (k == SOMA_HOOK_GRAD) why = "the simulator computes no gradients";
        else if (s->pops[si->from].m == &soma__model_input && si->kind != SOMA_SITE_PROJ_OUT)
            why = "the population is a graded source (model input) whose values its targets compute themselves";
        else if (si->kind == SOMA_SITE_PROJ_IN && k != SOMA_HOOK_READ)
            why = "a projection's input is its source's spikes, which all its projections share; mask or override "
                  "the source's spikes instead";
        if (why) {
            soma__hookplan_free(&plan);
            return sfail(s, SOMA_STATUS_UNSUPPORTED, "%s hook on '%s' is not supported: %s", soma__hook_kind_name(k),
                         si->name, why);
        }
    }
    size_t widest = 0;
    for (size_t p = 0; p < s->npops; p++) widest = s->pops[p].cs > widest ? s->pops[p].cs : widest;
    for (int t = 0; t < s->nthreads && plan.n; t++) {
        tstate *ts = &s->ts[t];
        if (!ts->hval) ts->hval = xalloc(widest * sizeof(float));
        if (!ts->hmask) ts->hmask = xalloc(widest * sizeof(float));
        if (!ts->hval || !ts->hmask) {
            soma__hookplan_free(&plan);
            return sfail(s, SOMA_STATUS_NOMEM, "out of memory for hook buffers");
        }
    }
    outs_free(s);
    soma__hookplan_free(&s->hooks);
    s->hooks = plan;
    if ((rc = outs_build(s, widest))) {
        outs_free(s);
        soma__hookplan_free(&s->hooks);
        for (size_t p = 0; p < s->npops; p++)
            s->pops[p].hk = s->pops[p].hk_spk = s->pops[p].hk_state = s->pops[p].hk_in = s->pops[p].hk_cur =
                s->pops[p].hk_inp = 0;
        return sfail(s, rc, "out of memory for the buffers of hooked .out sites; the simulator has no hooks now");
    }
    for (size_t p = 0; p < s->npops; p++) {
        spop *P = &s->pops[p];
        P->hk_spk = plan.kinds[P->sid_spk];
        P->hk_cur = P->sid_cur != (size_t)-1 ? plan.kinds[P->sid_cur] : 0;
        P->hk_inp = P->sid_cur != (size_t)-1 ? plan.kinds[P->sid_cur + 1] : 0;
        if (P->hk_cur && !P->hcur && !(P->hcur = xalloc(P->N * sizeof(float)))) P->hk_cur = P->hk_inp = 0, rc = SOMA_STATUS_NOMEM;
        P->hk_state = P->hk_in = 0;
        for (size_t k = 0; k < P->m->n_state; k++) P->hk_state |= plan.kinds[P->sid_spk + 1 + k];
    }
    for (size_t i = 0; i < s->nsites; i++)
        if (s->sites[i].kind == SOMA_SITE_PROJ_IN) s->pops[s->sites[i].from].hk_in |= plan.kinds[i];
    for (size_t p = 0; p < s->npops; p++) s->pops[p].hk = s->pops[p].hk_spk | s->pops[p].hk_state | s->pops[p].hk_in;
    if (rc) return sfail(s, rc, "out of memory for the buffer of a hooked .current site; it is not hooked");
    return 0;
}
