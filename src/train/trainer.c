/* trainer.c — backpropagation through time for spiking networks whose
 * projections form a directed acyclic graph from one input population to
 * one output population: layers in topological order, each fed by a first
 * projection (dense or conv) and any number of further dense ones (skip
 * connections, several sources) whose products are summed, optionally with
 * a dense recurrent projection onto itself. A chain input -> L1 -> ... ->
 * Lout is the common case and runs as it always did.
 *
 * How a batch runs (the layout is chosen for speed on a CPU):
 *  1. The input projection, whose input is dense data, is one batch-wide
 *     GEMM. With direct encoding the input is the same at every step, so it
 *     is computed once, not T times, and its weight gradient is one GEMM
 *     against the gradient summed over time. A time-varying input (spike
 *     encodings, sequence data sets) that is sparse enough goes through a
 *     gather over its nonzeros (an index list per row) instead.
 *  2. The batch is cut into fixed chunks of tr->chunk samples. A chunk runs all
 *     layers forward over T steps, the loss, and all layers backward, with
 *     its buffers (state tape, spikes) small enough to stay in cache. Chunks
 *     run in parallel; each has its own gradient accumulators, summed in
 *     chunk order afterwards, so results do not depend on the thread count.
 *  3. Projections whose input is spikes use a gather of W^T rows per spike
 *     (forward) and a scatter (weight gradient) when spikes are sparse, and
 *     BLAS when they are not (soma__gather_wins, measured crossovers).
 *     Layers with real-valued ("graded") outputs — non-spiking layers,
 *     UltraLIF's spike probabilities — always use the dense products.
 * The state tape keeps every step's neuron state; the surrogate derivative
 * is recomputed from it in backward rather than stored.
 */
#define _POSIX_C_SOURCE 200809L
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef SOMA_HAVE_OPENMP
#include <omp.h>
#endif
#include "core/clock.h"
#include "core/err.h"
#include "core/hooks.h"
#include "core/rng.h"
#include "net/net.h"
#include "proj/conv.h"
#include "proj/dense.h"
#include "train/sparse.h"
#include "train/train.h"

/* Samples per chunk: for spiking and graded-neuron layers about
 * CHUNK_ROWS / T, at least 2 and at most 16 (their per-step work is
 * elementwise and gathers, and small tapes stay in L1/L2; with few steps a
 * chunk of 2 would leave the projections products of a few rows and the
 * per-chunk overheads, for T = 1 a third of the batch time); 16 when a
 * layer is a cell with weight matrices of its own (CfC, LTC, ELM, L2MU):
 * their per-step products then run on 16 rows at once instead of 2. */
#define CHUNK_ROWS 32
#define CHUNK_NEURONS_MIN 2
#define CHUNK_NEURONS_MAX 16
#define CHUNK_CELLS 16

/* A projection into a layer besides its first one (skip connections, several
 * sources summed): dense, from the input (src -1) or an earlier layer. */
typedef struct extra_proj {
    soma__proj *proj;
    int src;                   /* layer index of the source, -1: the input */
    size_t Nin;
    float *wT;                 /* [Nin][ldw(N)] transposed weights (layer sources: the gather reads them) */
    float *grad_w, *grad_b;
    size_t acc_w, acc_b;
    unsigned hk_in, hk_out;    /* hooks asked at its sites (.in: READ only) */
    size_t sid_in, sid_out;
} extra_proj;

typedef struct layer {
    soma__pop *pop;
    const soma_model *m;
    size_t N, Nin, ns;
    size_t state_floats, state_off[SOMA_MAX_STATE]; /* state floats per batch row, and each variable's offset in them */
    size_t cell_scratch;       /* cell models: scratch floats per batch row */
    int conv;                  /* the incoming projection is a convolution */
    soma__proj *proj;          /* incoming feed-forward projection (the first one) */
    int src;                   /* layer index of its source, -1: the input (layer 0 only) */
    extra_proj *extra;         /* further projections into the layer, summed after the first */
    size_t nextra;
    int consumers;             /* projections reading this layer's outputs */
    soma__conv_plan cplan;     /* conv: what the convolution kernels read of proj */
    int first;                 /* fed by the data */
    int graded;                /* real-valued outputs: never gathered as spikes */
    int reset;
    float *prm[SOMA_MAX_PARAMS]; /* per-neuron parameter values [N] */
    float *drv[SOMA_MAX_DERIVED]; /* the model's derived constants [N] (models with prepare) */
    int learns;                /* some parameter of the model is learned: prepare again after each step */
    float *wT;                 /* [Nin][N] transposed feed-forward weights (not first) */
    float *rec_w;              /* [N][N] recurrent weights: the population's own (recurrent: true) or its sparse
                                * projection onto itself, drawn as a masked dense one (sparse.c); NULL: none */
    soma__proj *self;          /* its projection onto itself (drawn by a connector, masked), or NULL */
    float *recT;               /* [N][N] transposed recurrent weights */
    /* Gradient tensors inside tr->grad (mirror of net->params). */
    float *grad_w, *grad_b, *grad_rec, *grad_prm[SOMA_MAX_PARAMS];
    /* Offsets of this layer's parts in a chunk's accumulator block. */
    size_t acc_w, acc_b, acc_rec, acc_prm[SOMA_MAX_PARAMS];
    float *grad_cell_w[SOMA_MAX_WEIGHTS]; /* cell models: gradients of the model's own weights */
    size_t acc_cell_w[SOMA_MAX_WEIGHTS];
    /* Hooks: the kinds (bits) asked at the layer's sites, 0 when none, and
     * the sites' indices in tr->sites. hk is their union: the run loops test
     * it once per layer and step. in_copy: hooks change the projection's
     * input, which then runs on a copy (w->hin) with dense products. */
    unsigned hk, hk_spk, hk_state, hk_in, hk_out;
    size_t sid_spk, sid_state, sid_in, sid_out;
    unsigned hk_rin, hk_rout;  /* the recurrent weights' sites (h->h.in, h->h.out) */
    size_t sid_rin, sid_rout;
    int in_copy;
    int in_sparse;             /* a MASK hook at its (dense, non-first) projection's .in: a masked chunk
                                * sparse enough takes the product over its nonzero inputs (w->sidx) */
    int hkg;                   /* GRAD asked at its spikes or its input current: one test per backward step */
    int from_i1;               /* reads its input current from tr->I1 (the first layer, unless hooks see it:
                                * then from its copy in w->in, so that I1, every step's with direct input, is untouched) */
} layer;

/* A thread's work arrays. Those indexed by layer ([L], one entry per
 * layer) are carved from one block (lay_block) sized from the layer count
 * when the trainer is created, so the depth of a net is not bounded. */
typedef struct work {
    void *lay_block;              /* holds every [L] array below */
    float **in, **tape, **s, **ds, **din; /* [L] */
    uint32_t **idx, **cnt;        /* [L] */
    size_t *nspk;                 /* [L] */
    double *spk_sum; /* [L] sum of outputs: spikes, or spike probabilities of rate-output graded layers */
    float *dv, *dstate, *scratch;
    uint8_t **parg;               /* [L] max-pooling positions of conv layers, [T][chunk][N] */
    float *cwork;                 /* cell models' scratch */
    float *ccols, *ctmp, *cdcols; /* convolution workspaces (one image) */
    uint8_t *pred;
    float *hmask;                 /* hooks: a mask of one chunk's step (rows x widest site) */
    float **hin;                  /* [L] hooks: copies of projection inputs that hooks change, [T][chunk][Nin] */
    float **rin;                  /* [L] hooks: recurrent inputs as hooks changed them, [T][chunk][N] */
    float *rbuf;                  /* hooks: a recurrent product or gradient of one step, 2 x [chunk][N] */
    float *xbuf;                  /* hooks: a further projection's product or its gradient, [T][chunk][N] */
    /* Set by hooks for the chunk being run (0 otherwise): nb[l], layer l's
     * outputs are no longer all 0/1 (consumers use dense products); incp[l],
     * hooks changed the input of layer l's projection (it reads hin[l]). */
    int *nb, *incp;               /* [L] */
    uint32_t **sidx, **scnt;      /* [L] MASK at layer l's .in: the masked input's nonzero columns, [T][chunk][Nin],
                                    * and their count per row, [T][chunk] */
    size_t sparse_rows;           /* rows whose masked product took the sparse path (soma_train_mask_sparse_rows) */
    int *ds_set;      /* [L] backward: ds[l] holds a consumer's part already (the next adds to it) */
    float *dtmp;      /* a conv projection's input gradient before it is added (layers with several consumers) */
    double prof[5]; /* thread time in: projections fwd, neurons fwd, loss, neurons bwd, projections bwd */
} work;

struct soma_trainer {
    soma_net *net;
    soma_train_opts opt;
    soma_data_opts data;
    size_t L;                /* spiking layers */
    layer *lay;              /* [L], allocated for every population (L <= npops) */
    size_t T, Bmax, n_in, nchunks_max, Nmax, nsmax; /* T: time steps; n_in: input values per sample */
    size_t chunk;            /* samples per chunk (see CHUNK_ROWS; CHUNK_CELLS) */
    size_t wszmax, ccols_max, ctmp_max; /* cell scratch per row; conv workspaces */
    int threads;
    int ftz_depth;        /* nesting of fp_enter (see there) */
    unsigned ftz_csr;     /* the caller's floating-point mode, restored by the outermost fp_leave */
    float *grad;             /* mirrors net->params */
    uint8_t *learn;          /* mirrors net->params: 0 = frozen (soma_train_set_learn_mask); NULL: all learn */
    size_t nparams;
    float *I1, *dI1;         /* batch-wide input currents and their gradients */
    uint8_t *parg1;          /* first layer max pooling: positions of I1's maxima */
    size_t i1_rows;          /* rows I1 and dI1 hold */
    /* Sparse time-varying input (spike encodings): the batch's nonzeros row
     * by row (row r's columns at xcol + r*D, xcnt[r] of them), the input
     * weights transposed, and their gradient. */
    uint32_t *xcnt;          /* [xrows] nonzeros per row */
    uint32_t *xcol;          /* [xrows][D] nonzero columns */
    size_t xrows;            /* rows xcnt and xcol hold */
    int x_sparse;            /* this batch's input took the sparse path */
    int x_binary;            /* ... and its nonzeros are all 1 (spikes) */
    float *w1T, *dw1T;       /* [D][ldw(N1)] */
    int w1T_stale;           /* w1T must be refreshed from the weights */
    float *acc;              /* nchunks_max accumulator blocks */
    size_t acc_size;
    double *closs;           /* per-chunk loss */
    size_t *ccorrect;        /* per-chunk correct predictions */
    double *cspk;            /* per-chunk hidden spikes */
    work *work;              /* one per thread */
    soma__optim optim;
    long lr_epoch, lr_batch, lr_nbatches;
    double last_rate;
    uint64_t batch_counter;  /* soma_train_grad / forward_batch calls: keys stochastic models' draws */
    double prof[8];          /* seconds spent per phase, for bench/ (see soma__train_profile) */
    /* Hooks (soma_train_set_hooks): the net's sites, the resolved plan, and
     * the input population's asked kinds (its spikes and the first
     * projection's input are both the encoded input, hooked batch-wide). */
    soma_site_info *sites;
    size_t nsites;
    soma__hookplan hooks;
    unsigned hk_x, hk_xin;
    size_t sid_x, sid_xin;
    float *xh, *xh_mask;     /* the input as [T][B][D] when hooks see it, and a mask of one step */
    double mask_sparse_max;  /* the largest density of a masked input that takes the sparse product */
    size_t xh_rows;
    /* The batch being run (extra projections from the input read it). */
    const float *x;
    int x_tc;
    size_t x_B;
    char errmsg[512];
};

/* Phases timed in every batch: cheap (a few clock reads) and read by bench/. */
enum { PROF_INPUT_FWD, PROF_CHUNKS, PROF_INPUT_BWD, PROF_REDUCE, PROF_APPLY, PROF_ENCODE };
void soma__train_profile(const soma_trainer *tr, double out[16]);
void soma__train_profile(const soma_trainer *tr, double out[16]) {
    memcpy(out, tr->prof, sizeof tr->prof);
    for (int k = 0; k < 8; k++) out[8 + k] = 0.0;
    for (int t = 0; t < tr->threads; t++)
        for (int k = 0; k < 5; k++) out[8 + k] += tr->work[t].prof[k];
}

void soma__train_set_conv_path(soma_trainer *tr, int path) {
    for (size_t l = 0; l < tr->L; l++) tr->lay[l].cplan.path = path;
}

/* The message into the trainer's own buffer (printf-style); returns st. */
#define fail(tr, st, ...) soma__errf((tr)->errmsg, sizeof (tr)->errmsg, (st), __VA_ARGS__)

const char *soma_train_errmsg(const soma_trainer *tr) { return tr ? tr->errmsg : ""; }
const soma_train_opts *soma_train_options(const soma_trainer *tr) { return &tr->opt; }


static int thread_id(void) {
#ifdef SOMA_HAVE_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Refuse, by name, what the trainer does not run: models without training
 * ops, values that differ per neuron and the simulator's inputs; then draw
 * the projections made by a connector as masked dense ones (sparse.c). */
static int check_trainable(soma_trainer *tr) {
    const soma_net *net = tr->net;
    for (size_t i = 0; i < net->npops; i++) {
        const soma__pop *p = &net->pops[i];
        if (!soma__model_trainable(p->model)) {
            char names[400];
            soma__model_trainable_names(names, sizeof names);
            return fail(tr, SOMA_STATUS_UNSUPPORTED, "population '%s': model %s has no training ops; the trainer runs one of: %s",
                        p->name, p->model->name, names);
        }
        for (size_t k = 0; k < p->model->n_params; k++)
            if (p->val[k])
                return fail(tr, SOMA_STATUS_UNSUPPORTED,
                            "%s%spopulation '%s': %s = '%s' differs per neuron; the trainer takes one value per population "
                            "(or learn: neuron)", p->val[k]->where, p->val[k]->where[0] ? ": " : "", p->name,
                            p->model->params[k].name, p->val[k]->text);
        if (p->n_src || p->n_st)
            return fail(tr, SOMA_STATUS_UNSUPPORTED, "population '%s': spike files and step inputs are simulator inputs; the trainer reads its data set",
                        p->name);
    }
    for (size_t i = 0; i < net->nproj; i++) {
        const soma__proj *pr = &net->projs[i];
        if (pr->has_delay || pr->has_port)
            return fail(tr, SOMA_STATUS_UNSUPPORTED,
                        "projection %s -> %s has a %s of its own; the trainer feeds every projection within the step "
                        "on the model's one input (the simulator keeps delays and ports)",
                        net->pops[pr->from].name, net->pops[pr->to].name, pr->has_delay ? "delay" : "port");
    }
    if (net->ndrives)
        return fail(tr, SOMA_STATUS_UNSUPPORTED, "Poisson inputs (population '%s') are simulator inputs; the trainer reads its data set",
                    net->pops[net->drives[0].pop].name);
    /* Projections drawn by a connector: dense with a mask from now on (sparse.c). */
    return soma__train_densify(tr->net, tr->opt.seed, tr->errmsg, sizeof tr->errmsg);
}

/* Fill tr->lay with the populations in a topological order of the
 * projections (the lowest-numbered population whose sources are all placed
 * comes next). Each layer's first projection is the one from its earliest
 * placed source (layer 0: from the input); the others ("extra", dense) are
 * summed after it, so a chain runs exactly as before and a DAG (skip
 * connections, several sources) adds their products. A population's own
 * recurrence is its recurrent weight; a cycle through other populations
 * needs step-by-step order across layers, which this layer-by-layer
 * executor does not have: refused by name. */
static int build_layers(soma_trainer *tr) {
    soma_net *net = tr->net;
    size_t in = (size_t)-1, P = net->npops;
    for (size_t i = 0; i < P; i++)
        if (!net->pops[i].model->spiking) {
            if (in != (size_t)-1)
                return fail(tr, SOMA_STATUS_UNSUPPORTED, "the trainer takes one input population; found '%s' and '%s'",
                            net->pops[in].name, net->pops[i].name);
            in = i;
        }
    if (in == (size_t)-1) return fail(tr, SOMA_STATUS_INVALID, "the network has no input population (model: input)");
    /* Every population but the input can become a layer: no fixed bound on depth. */
    if (!(tr->lay = calloc(P, sizeof *tr->lay))) return fail(tr, SOMA_STATUS_NOMEM, "out of memory");
    int *lay_of = malloc(P * sizeof *lay_of); /* -2: not placed, -1: the input */
    if (!lay_of) return fail(tr, SOMA_STATUS_NOMEM, "out of memory");
    for (size_t i = 0; i < P; i++) lay_of[i] = -2;
    lay_of[in] = -1;
    size_t L = 0;
    int st = SOMA_STATUS_OK;
    for (;;) {
        size_t nxt = (size_t)-1;
        for (size_t p = 0; p < P && nxt == (size_t)-1; p++) {
            if (lay_of[p] != -2) continue;
            int ready = 0;
            for (size_t k = 0; k < net->nproj; k++)
                if (net->projs[k].to == p && net->projs[k].from != p) { /* onto itself: its recurrent weights */
                    if (lay_of[net->projs[k].from] == -2) {
                        ready = -1;
                        break;
                    }
                    ready = 1;
                }
            if (ready == 1) nxt = p;
        }
        if (nxt == (size_t)-1) break;
        lay_of[nxt] = (int)L;
        layer *ly = &tr->lay[L];
        ly->pop = &net->pops[nxt];
        ly->m = ly->pop->model;
        ly->N = ly->pop->size;
        ly->proj = NULL;
        /* The first projection: from the earliest placed source (the input for layer 0). */
        for (size_t k = 0; k < net->nproj; k++) {
            soma__proj *pr = &net->projs[k];
            if (pr->to != nxt || pr->from == nxt) continue;
            int src = lay_of[pr->from];
            if (L > 0 && src < 0) continue;
            if (!ly->proj || (pr->conv != ly->proj->conv ? pr->conv : src < ly->src)) ly->proj = pr, ly->src = src;
        }
        if (!ly->proj) {
            st = fail(tr, SOMA_STATUS_UNSUPPORTED, "populations '%s' and '%s' are both fed by the input only; the trainer "
                      "takes one such population (the input may also project into any other, as a skip connection)",
                      tr->lay[0].pop->name, ly->pop->name);
            goto done;
        }
        L++;
    }
    for (size_t p = 0; p < P; p++) {
        if (lay_of[p] != -2) continue;
        size_t nin = 0;
        for (size_t k = 0; k < net->nproj; k++) nin += net->projs[k].to == p && net->projs[k].from != p;
        if (nin == 0)
            st = fail(tr, SOMA_STATUS_INVALID, "population '%s' receives no projection", net->pops[p].name);
        else
            st = fail(tr, SOMA_STATUS_UNSUPPORTED, "population '%s' is on a cycle of projections through other populations; "
                      "the trainer runs cycles only as a population's recurrent weights (recurrent: true), the "
                      "simulator runs any cycle", net->pops[p].name);
        goto done;
    }
    if (L == 0) {
        st = fail(tr, SOMA_STATUS_INVALID, "no projection leaves the input population '%s'", net->pops[in].name);
        goto done;
    }
    for (size_t l = 0; l < L; l++) {
        layer *ly = &tr->lay[l];
        size_t nxt = (size_t)(ly->pop - net->pops);
        ly->Nin = ly->src < 0 ? net->pops[in].size : tr->lay[ly->src].N;
        ly->ns = ly->m->n_state;
        ly->state_floats = 0;
        for (size_t k = 0; k < ly->ns; k++) {
            ly->state_off[k] = ly->state_floats;
            ly->state_floats += soma__state_width(ly->m, ly->pop->prm, ly->N, k);
        }
        ly->cell_scratch = ly->m->scratch_floats ? ly->m->scratch_floats(ly->pop->prm, ly->N) : 0;
        ly->conv = ly->proj->conv;
        ly->first = l == 0;
        ly->graded = ly->m->graded;
        ly->nextra = 0;
        ly->self = NULL;
        for (size_t k = 0; k < net->nproj; k++) {
            soma__proj *pr = &net->projs[k];
            if (pr->to == nxt && pr->from == nxt) {
                /* A projection onto itself: its recurrent weights, if drawn by a connector (sparse.c
                 * refused a second one and one beside recurrent: true). */
                if (!pr->mask) {
                    st = fail(tr, SOMA_STATUS_UNSUPPORTED, "projection %s -> %s is dense and connects a population "
                              "to itself; the trainer takes a population's dense recurrence as recurrent: true (and "
                              "a connector's projection onto itself as its masked recurrent weights)",
                              ly->pop->name, ly->pop->name);
                    goto done;
                }
                ly->self = pr;
                continue;
            }
            if (pr->to != nxt || pr == ly->proj) continue;
            if (pr->conv) {
                st = fail(tr, SOMA_STATUS_UNSUPPORTED, "population '%s' receives a second projection %s -> %s that is a "
                          "convolution; the trainer sums dense projections after a population's first one",
                          ly->pop->name, net->pops[pr->from].name, ly->pop->name);
                goto done;
            }
            ly->nextra++;
        }
        if (ly->nextra && !(ly->extra = calloc(ly->nextra, sizeof *ly->extra))) {
            st = fail(tr, SOMA_STATUS_NOMEM, "out of memory");
            goto done;
        }
        size_t e = 0;
        for (size_t k = 0; k < net->nproj; k++) {
            soma__proj *pr = &net->projs[k];
            if (pr->to != nxt || pr == ly->proj || pr->from == nxt) continue;
            extra_proj *xp = &ly->extra[e++];
            xp->proj = pr;
            xp->src = lay_of[pr->from];
            xp->Nin = net->pops[pr->from].size;
            if (xp->src >= 0) tr->lay[xp->src].consumers++;
        }
        if (ly->src >= 0) tr->lay[ly->src].consumers++;
        ly->from_i1 = ly->first && !ly->nextra;
        int kr = soma__model_param_index(ly->m, "reset");
        ly->reset = kr >= 0 ? (int)ly->pop->prm[kr] : 0;
        ly->learns = 0;
        for (size_t k = 0; k < ly->m->n_params; k++) ly->learns |= ly->pop->learn[k] != SOMA_LEARN_NONE;
        if (ly->m->check) {
            char why[256];
            if (ly->m->check(ly->pop->prm, ly->pop->learn, why, sizeof why)) {
                st = fail(tr, SOMA_STATUS_INVALID, "population '%s' (%s): %s", ly->pop->name, ly->m->name, why);
                goto done;
            }
        }
        if (ly->m->n_derived > SOMA_MAX_DERIVED) {
            st = fail(tr, SOMA_STATUS_UNSUPPORTED, "model %s has too many derived constants", ly->m->name);
            goto done;
        }
    }
    for (size_t l = 0; l + 1 < L; l++)
        if (!tr->lay[l].consumers) {
            st = fail(tr, SOMA_STATUS_UNSUPPORTED, "populations '%s' and '%s' project nowhere; the trainer takes one "
                      "output population", tr->lay[l].pop->name, tr->lay[L - 1].pop->name);
            goto done;
        }
    tr->n_in = net->pops[in].size;
done:
    tr->L = L; /* what was set up is freed by soma_train_free */
    free(lay_of);
    return st;
}

static float *grad_of(soma_trainer *tr, const float *param) {
    return param ? tr->grad + (param - tr->net->params) : NULL;
}

void soma_train_free(soma_trainer *tr) {
    if (!tr) return;
    for (size_t l = 0; l < tr->L; l++) {
        layer *ly = &tr->lay[l];
        for (int k = 0; k < SOMA_MAX_PARAMS; k++) free(ly->prm[k]);
        for (int k = 0; k < SOMA_MAX_DERIVED; k++) free(ly->drv[k]);
        free(ly->wT);
        free(ly->recT);
        for (size_t e = 0; e < ly->nextra; e++) free(ly->extra[e].wT);
        free(ly->extra);
    }
    if (tr->work)
        for (int t = 0; t < tr->threads; t++) {
            work *w = &tr->work[t];
            for (size_t l = 0; w->lay_block && l < tr->L; l++) {
                free(w->in[l]); free(w->tape[l]); free(w->s[l]); free(w->ds[l]); free(w->din[l]);
                free(w->idx[l]); free(w->cnt[l]); free(w->parg[l]);
            }
            free(w->dv); free(w->dstate); free(w->scratch); free(w->pred);
            free(w->cwork); free(w->ccols); free(w->ctmp); free(w->cdcols);
            free(w->hmask);
            free(w->dtmp);
            for (size_t l = 0; w->lay_block && l < tr->L; l++)
                free(w->hin[l]), free(w->rin[l]), free(w->sidx[l]), free(w->scnt[l]);
            free(w->lay_block);
            free(w->rbuf);
            free(w->xbuf);
        }
    soma__hookplan_free(&tr->hooks);
    free(tr->sites);
    free(tr->xh);
    free(tr->xh_mask);
    free(tr->work);
    free(tr->lay);
    free(tr->grad);
    free(tr->learn);
    free(tr->I1);
    free(tr->dI1);
    free(tr->parg1);
    free(tr->xcnt);
    free(tr->xcol);
    free(tr->w1T);
    free(tr->dw1T);
    free(tr->acc);
    free(tr->closs);
    free(tr->ccorrect);
    free(tr->cspk);
    soma__optim_free(&tr->optim);
    free(tr);
}

/* Copy parameter values and transposed weights from the net into the
 * layers' working arrays (after creation and after every optimizer step),
 * and derive the models' constants for the net's dt from them: always when
 * `all` (creation, soma_train_sync: the caller may have set any value),
 * after an optimizer step only for models with a learned parameter. */
static void sync_params(soma_trainer *tr, int all) {
    for (size_t l = 0; l < tr->L; l++) {
        layer *ly = &tr->lay[l];
        for (size_t k = 0; k < ly->m->n_params; k++) {
            float *dst = ly->prm[k];
            const soma__pop *p = ly->pop;
            if (p->learn[k] == SOMA_LEARN_NEURON) memcpy(dst, p->prm_data[k], ly->N * sizeof *dst);
            else {
                float v = p->learn[k] == SOMA_LEARN_LAYER ? p->prm_data[k][0] : p->prm[k];
                for (size_t j = 0; j < ly->N; j++) dst[j] = v;
            }
        }
        if (ly->m->prepare && (all || ly->learns))
            ly->m->prepare((const float *const *)ly->prm, ly->N, (float)tr->net->dt, 0, ly->drv);
        size_t ld = soma__ldw(ly->N);
        if (ly->wT && !ly->conv) soma__transpose_pad(ly->wT, ly->proj->w, ly->N, ly->Nin, ld);
        if (ly->recT) soma__transpose_pad(ly->recT, ly->rec_w, ly->N, ly->N, ld);
        for (size_t e = 0; e < ly->nextra; e++)
            if (ly->extra[e].wT) soma__transpose_pad(ly->extra[e].wT, ly->extra[e].proj->w, ly->N, ly->extra[e].Nin, ld);
    }
}

/* Carve a thread's [L] arrays (see work) from one zeroed block; 0 or
 * SOMA_STATUS_NOMEM. Pointer and 8-byte arrays come first, the int arrays
 * last, so every array is aligned for its type. */
static int work_alloc_layers(work *w, size_t L) {
    char *b = calloc(1, L * (12 * sizeof(void *) + sizeof(size_t) + sizeof(double) + 3 * sizeof(int)));
    if (!(w->lay_block = b)) return SOMA_STATUS_NOMEM;
#define CARVE(field) (w->field = (void *)b, b += L * sizeof *w->field)
    CARVE(in), CARVE(tape), CARVE(s), CARVE(ds), CARVE(din), CARVE(idx), CARVE(cnt), CARVE(parg);
    CARVE(hin), CARVE(rin), CARVE(sidx), CARVE(scnt);
    CARVE(nspk), CARVE(spk_sum);
    CARVE(nb), CARVE(incp), CARVE(ds_set);
#undef CARVE
    return SOMA_STATUS_OK;
}

int soma_train_create(soma_trainer **out, soma_net *net, const soma_train_opts *opts, const soma_data_opts *data) {
    if (!out || !net || !opts || !data) return SOMA_STATUS_INVALID;
    *out = NULL;
    soma_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return soma__net_fail(net, SOMA_STATUS_NOMEM, "out of memory creating the trainer");
    tr->net = net;
    tr->opt = *opts;
    tr->data = *data;
    int st;
    if (opts->batch == 0 || data->steps <= 0) {
        st = fail(tr, SOMA_STATUS_INVALID, "batch and steps must be positive");
        goto error;
    }
    if (opts->surrogate < 0 || opts->surrogate > 4 || opts->loss < 0 || opts->loss > 4 || opts->optimizer < 0 ||
        opts->optimizer > 2) {
        st = fail(tr, SOMA_STATUS_INVALID, "unknown surrogate, loss or optimizer");
        goto error;
    }
    if (!soma_encoding_name(data->encoding) || !soma_readout_name(data->readout) || data->tau < 0.0f ||
        !(data->gain >= 0.0f)) {
        st = fail(tr, SOMA_STATUS_INVALID, "data options: encoding %d, readout %d, tau %g, gain %g; expected a known "
                  "encoding and readout, tau >= 0 and gain >= 0", data->encoding, data->readout, data->tau, data->gain);
        goto error;
    }
    if (tr->opt.surrogate_param <= 0.0f) tr->opt.surrogate_param = soma_surrogate_default_param(opts->surrogate);
    if ((st = check_trainable(tr)) || (st = build_layers(tr))) goto error;
    if ((st = soma__net_alloc(net))) {
        fail(tr, st, "%s", net->errmsg);
        goto error;
    }
    if (!net->initialised && (st = soma_net_init_weights(net, opts->seed))) goto error;
    tr->T = (size_t)data->steps;
    tr->Bmax = opts->batch;
    tr->mask_sparse_max = SOMA_TRAIN_MASK_SPARSE_DEFAULT;
#ifdef SOMA_HAVE_OPENMP
    tr->threads = opts->threads > 0 ? opts->threads : omp_get_num_procs();
#else
    tr->threads = 1;
#endif
    tr->opt.threads = tr->threads;
    tr->data.threads = tr->threads; /* the encoders use the trainer's threads, no more */
    /* BLAS runs single-threaded inside our own threads. */
    openblas_set_num_threads(1);
    tr->nparams = net->nparams;
    tr->grad = soma__alloc(tr->nparams * sizeof(float));
    if (!tr->grad || (st = soma__optim_init(&tr->optim, tr->nparams))) goto nomem;

    size_t acc = 0;
    for (size_t l = 0; l < tr->L; l++) {
        layer *ly = &tr->lay[l];
        size_t N = ly->N;
        if (N > tr->Nmax) tr->Nmax = N;
        if (ly->state_floats > tr->nsmax) tr->nsmax = ly->state_floats; /* nsmax: state floats per row */
        if (ly->cell_scratch > tr->wszmax) tr->wszmax = ly->cell_scratch;
        if (ly->conv) {
            ly->cplan = soma__proj_conv_plan(ly->proj);
            if (soma__conv_cols_size(&ly->cplan) > tr->ccols_max) tr->ccols_max = soma__conv_cols_size(&ly->cplan);
            if (soma__conv_out_size(&ly->cplan) > tr->ctmp_max) tr->ctmp_max = soma__conv_out_size(&ly->cplan);
        }
        for (size_t k = 0; k < ly->m->n_params; k++)
            if (!(ly->prm[k] = soma__alloc(N * sizeof(float)))) goto nomem;
        for (size_t k = 0; k < ly->m->n_derived; k++)
            if (!(ly->drv[k] = soma__alloc(N * sizeof(float)))) goto nomem;
        ly->grad_w = grad_of(tr, ly->proj->w);
        ly->grad_b = grad_of(tr, ly->proj->b);
        ly->rec_w = ly->pop->recurrent ? ly->pop->rec_w : ly->self ? ly->self->w : NULL;
        ly->grad_rec = grad_of(tr, ly->rec_w);
        if (!ly->first && ly->conv) {
            size_t nw = ly->proj->cout * ly->proj->cin * ly->proj->cv.kernel * ly->proj->cv.kernel;
            ly->acc_w = acc, acc += (nw + 15) / 16 * 16;
            ly->acc_b = acc, acc += (ly->proj->cout + 15) / 16 * 16;
        } else if (!ly->first) {
            if (!(ly->wT = soma__alloc(ly->Nin * soma__ldw(N) * sizeof(float)))) goto nomem;
            ly->acc_w = acc, acc += ly->Nin * soma__ldw(N);
            ly->acc_b = acc, acc += (N + 15) / 16 * 16;
        }
        for (size_t k = 0; k < ly->m->n_weights; k++) {
            size_t r = 0, c = 0;
            ly->m->weight_shape(ly->pop->prm, N, k, &r, &c);
            ly->grad_cell_w[k] = grad_of(tr, ly->pop->cw[k]);
            ly->acc_cell_w[k] = acc, acc += (r * c + 15) / 16 * 16;
        }
        for (size_t e = 0; e < ly->nextra; e++) {
            extra_proj *xp = &ly->extra[e];
            if (xp->src >= 0 && !(xp->wT = soma__alloc(xp->Nin * soma__ldw(N) * sizeof(float)))) goto nomem;
            xp->grad_w = grad_of(tr, xp->proj->w);
            xp->grad_b = grad_of(tr, xp->proj->b);
            xp->acc_w = acc, acc += xp->Nin * soma__ldw(N);
            xp->acc_b = acc, acc += (N + 15) / 16 * 16;
        }
        if (ly->rec_w) {
            if (!(ly->recT = soma__alloc(N * soma__ldw(N) * sizeof(float)))) goto nomem;
            ly->acc_rec = acc, acc += N * soma__ldw(N);
        }
        for (size_t k = 0; k < ly->m->n_params; k++) {
            ly->grad_prm[k] = grad_of(tr, ly->pop->prm_data[k]);
            ly->acc_prm[k] = acc, acc += (N + 15) / 16 * 16;
        }
    }
    if (tr->lay[tr->L - 1].N > 256) { /* labels and predictions are bytes */
        st = fail(tr, SOMA_STATUS_UNSUPPORTED, "the output layer has %zu neurons; at most 256 classes", tr->lay[tr->L - 1].N);
        goto error;
    }
    tr->acc_size = acc;
    tr->chunk = CHUNK_ROWS / tr->T;
    if (tr->chunk < CHUNK_NEURONS_MIN) tr->chunk = CHUNK_NEURONS_MIN;
    if (tr->chunk > CHUNK_NEURONS_MAX) tr->chunk = CHUNK_NEURONS_MAX;
    for (size_t l = 0; l < tr->L; l++)
        if (tr->lay[l].m->n_weights) tr->chunk = CHUNK_CELLS;
    tr->nchunks_max = (tr->Bmax + tr->chunk - 1) / tr->chunk;
    size_t T = tr->T, B = tr->Bmax, N1 = tr->lay[0].N;
    /* Input currents: B rows for a time-constant input, T*B for the others
     * (grown on first use if a direct-input trainer is handed one). */
    tr->i1_rows = data->encoding == SOMA_ENCODING_DIRECT ? B : T * B;
    tr->I1 = soma__alloc(tr->i1_rows * N1 * sizeof(float));
    tr->dI1 = soma__alloc(tr->i1_rows * N1 * sizeof(float));
    if (tr->lay[0].conv && tr->lay[0].proj->cv.pool == SOMA_POOL_MAX && !(tr->parg1 = malloc(tr->i1_rows * N1))) goto nomem;
    tr->acc = soma__alloc((acc ? acc : 1) * tr->nchunks_max * sizeof(float));
    tr->closs = calloc(tr->nchunks_max, sizeof *tr->closs);
    tr->ccorrect = calloc(tr->nchunks_max, sizeof *tr->ccorrect);
    tr->cspk = calloc(tr->nchunks_max, sizeof *tr->cspk);
    tr->work = calloc((size_t)tr->threads, sizeof *tr->work);
    if (!tr->I1 || !tr->dI1 || !tr->acc || !tr->closs || !tr->ccorrect || !tr->cspk || !tr->work) goto nomem;
    if (data->encoding != SOMA_ENCODING_DIRECT && !tr->lay[0].conv) {
        tr->w1T = soma__alloc(tr->n_in * soma__ldw(N1) * sizeof(float));
        tr->dw1T = soma__alloc(tr->n_in * soma__ldw(N1) * sizeof(float));
        if (!tr->w1T || !tr->dw1T) goto nomem;
        tr->w1T_stale = 1;
    }
    for (int t = 0; t < tr->threads; t++) {
        work *w = &tr->work[t];
        if (work_alloc_layers(w, tr->L)) goto nomem;
        for (size_t l = 0; l < tr->L; l++) {
            size_t RB = tr->chunk * tr->lay[l].N;
            w->in[l] = soma__alloc(T * RB * sizeof(float));
            w->tape[l] = soma__alloc((T + 1) * tr->lay[l].state_floats * tr->chunk * sizeof(float));
            w->s[l] = soma__alloc(T * RB * sizeof(float));
            w->ds[l] = soma__alloc(T * RB * sizeof(float));
            w->din[l] = soma__alloc(T * RB * sizeof(float));
            w->idx[l] = soma__alloc(T * RB * sizeof(uint32_t));
            w->cnt[l] = soma__alloc(T * tr->chunk * sizeof(uint32_t));
            if (!w->in[l] || !w->tape[l] || !w->s[l] || !w->ds[l] || !w->din[l] || !w->idx[l] || !w->cnt[l]) goto nomem;
            if (l > 0 && tr->lay[l].conv && tr->lay[l].proj->cv.pool == SOMA_POOL_MAX &&
                !(w->parg[l] = malloc(T * RB)))
                goto nomem;
        }
        for (size_t l = 0; l < tr->L; l++)
            if (tr->lay[l].consumers > 1 && !w->dtmp && !(w->dtmp = soma__alloc(T * tr->chunk * tr->Nmax * sizeof(float))))
                goto nomem;
        w->dv = soma__alloc(T * tr->chunk * tr->lay[tr->L - 1].N * sizeof(float));
        w->dstate = soma__alloc(tr->nsmax * tr->chunk * sizeof(float));
        w->scratch = soma__alloc(2 * tr->Nmax * sizeof(float));
        w->pred = calloc(tr->chunk, 1);
        if (!w->dv || !w->dstate || !w->scratch || !w->pred) goto nomem;
        if (tr->wszmax && !(w->cwork = soma__alloc(tr->chunk * tr->wszmax * sizeof(float)))) goto nomem;
        size_t ni = SOMA_CONV_IMAGES;
        if (tr->ccols_max && (!(w->ccols = soma__alloc(ni * tr->ccols_max * sizeof(float))) ||
                              !(w->cdcols = soma__alloc(ni * tr->ccols_max * sizeof(float))) ||
                              !(w->ctmp = soma__alloc(ni * tr->ctmp_max * sizeof(float)))))
            goto nomem;
    }
    sync_params(tr, 1);
    *out = tr;
    return SOMA_STATUS_OK;
nomem:
    st = SOMA_STATUS_NOMEM;
    snprintf(tr->errmsg, sizeof tr->errmsg, "out of memory creating the trainer");
error:
    /* The caller reads the message through a NULL trainer? No: keep it in the net. */
    snprintf(net->errmsg, sizeof net->errmsg, "%s", tr->errmsg);
    soma_train_free(tr);
    return st;
}

/* Batch-wide input projection: I1 = X W1^T + b1 over R rows. The work is
 * cut into blocks of a fixed size (not a per-thread share) because BLAS
 * results can depend on the shape of the call: fixed blocks keep them
 * identical whatever the thread count. Blocks split the output neurons, so
 * each call packs only its slice of W1 and the (smaller) input is packed
 * once per block. */
#define GEMM_BLOCK 256
/* Room for the nonzeros of R input rows; 0 or SOMA_STATUS_NOMEM. */
static int sparse_reserve(soma_trainer *tr, size_t R) {
    if (R <= tr->xrows) return SOMA_STATUS_OK;
    uint32_t *c = malloc(R * sizeof *c), *col = malloc(R * tr->n_in * sizeof *col);
    if (!c || !col) {
        free(c), free(col);
        return SOMA_STATUS_NOMEM;
    }
    free(tr->xcnt), free(tr->xcol);
    tr->xcnt = c, tr->xcol = col, tr->xrows = R;
    return SOMA_STATUS_OK;
}

/* This thread's share [o0, o1) of N neurons in the current team, cut at
 * multiples of 16 (whole cache lines of a row of W1^T, whole vectors). The
 * sparse input layer gives each thread the same neurons in the weight
 * gradient, in refreshing W1^T and (the parameters being laid out neuron
 * by neuron) nearly so in the optimizer: data one core writes and the
 * other then reads or writes costs a transfer between their caches, which
 * made these phases slower on two threads than on one. */
static void neuron_range(size_t N, size_t *o0, size_t *o1) {
#ifdef SOMA_HAVE_OPENMP
    size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
#else
    size_t t = 0, nt = 1;
#endif
    size_t a = (N * t / nt + 8) / 16 * 16, b = (N * (t + 1) / nt + 8) / 16 * 16;
    *o0 = t == 0 ? 0 : a < N ? a : N;
    *o1 = t + 1 == nt ? N : b < N ? b : N;
}

/* Make room for R rows of input currents; 0 or SOMA_STATUS_NOMEM. */
static int input_reserve(soma_trainer *tr, size_t R) {
    if (R <= tr->i1_rows) return SOMA_STATUS_OK;
    size_t N = tr->lay[0].N;
    float *a = soma__alloc(R * N * sizeof(float)), *b = soma__alloc(R * N * sizeof(float));
    uint8_t *g = tr->parg1 ? malloc(R * N) : NULL;
    if (!a || !b || (tr->parg1 && !g)) {
        free(a), free(b), free(g);
        return fail(tr, SOMA_STATUS_NOMEM, "out of memory for %zu input rows", R);
    }
    free(tr->I1), free(tr->dI1);
    tr->I1 = a, tr->dI1 = b, tr->i1_rows = R;
    if (g) free(tr->parg1), tr->parg1 = g;
    return SOMA_STATUS_OK;
}

static void input_forward(soma_trainer *tr, const float *x, size_t R, int tc) {
    layer *ly = &tr->lay[0];
    size_t D = tr->n_in, N = ly->N, nblk = (N + GEMM_BLOCK - 1) / GEMM_BLOCK;
    if (ly->conv) { /* fixed blocks of images, each on its own */
        tr->x_sparse = 0;
        size_t ni = SOMA_CONV_IMAGES, nb = (R + ni - 1) / ni;
#pragma omp parallel for num_threads(tr->threads) schedule(dynamic, 1)
        for (size_t k = 0; k < nb; k++) {
            work *w = &tr->work[thread_id()];
            size_t r0 = k * ni, n = r0 + ni > R ? R - r0 : ni;
            soma__conv_forward(&ly->cplan, x + r0 * D, D, tr->I1 + r0 * N, N, n, w->ccols, w->ctmp,
                               tr->parg1 ? tr->parg1 + r0 * N : NULL);
        }
        return;
    }
    /* A time-varying input is usually spikes: take the sparse path when the
     * measured density makes it faster than the GEMM. One parallel region
     * (its fork and barriers are a sizable part of a small batch) indexes
     * the rows' nonzeros, refreshes the transposed weights the gather reads
     * if the optimizer moved them, and then runs the chosen product: rows of
     * the gather, or fixed output blocks of the GEMM. */
    const float *W = ly->proj->w, *bias = ly->proj->b;
    size_t ld = soma__ldw(N);
    int indexed = !tc && tr->w1T && sparse_reserve(tr, R) == SOMA_STATUS_OK, refresh = indexed && tr->w1T_stale;
    size_t nnz = 0, nonbin = 0;
#pragma omp parallel num_threads(tr->threads)
    {
        if (refresh) { /* this thread's neurons, as in input_backward and (nearly) the optimizer */
            size_t o0, o1;
            neuron_range(N, &o0, &o1);
            soma__transpose(tr->w1T + o0, ld, W + o0 * D, D, o1 - o0, D);
        }
        if (indexed) {
#pragma omp for schedule(static) reduction(+ : nnz, nonbin)
            for (size_t r = 0; r < R; r++) {
                size_t c = soma__spike_index(x + r * D, D, tr->xcol + r * D);
                tr->xcnt[r] = (uint32_t)c;
                nnz += c;
                nonbin += soma__count_nonbinary(x + r * D, D);
            }
        }
        /* after the loop's barrier every thread sees the same counts */
        if (indexed && soma__gather_wins((double)nnz / ((double)R * (double)D), N)) {
            /* spikes (all nonzeros 1) are gathered without reading x */
            const float *xv = nonbin ? x : NULL;
#pragma omp for schedule(static)
            for (size_t r0 = 0; r0 < R; r0 += 8)
                soma__dense_forward_sparse(tr->I1 + r0 * N, xv ? xv + r0 * D : NULL, tr->xcol + r0 * D, tr->xcnt + r0,
                                           D, tr->w1T, bias, R - r0 < 8 ? R - r0 : 8, D, N, 0, N);
        } else {
#pragma omp for schedule(static)
            for (size_t k = 0; k < nblk; k++) {
                size_t o0 = k * GEMM_BLOCK, o1 = o0 + GEMM_BLOCK > N ? N : o0 + GEMM_BLOCK;
                float *out = tr->I1 + o0;
                for (size_t r = 0; r < R; r++) {
                    if (bias) memcpy(out + r * N, bias + o0, (o1 - o0) * sizeof(float));
                    else memset(out + r * N, 0, (o1 - o0) * sizeof(float));
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)(o1 - o0), (int)D, 1.0f, x, (int)D,
                            W + o0 * D, (int)D, 1.0f, out, (int)N);
            }
        }
    }
    if (refresh) tr->w1T_stale = 0;
    tr->x_sparse = indexed && soma__gather_wins((double)nnz / ((double)R * (double)D), N);
    tr->x_binary = nonbin == 0;
}

/* Batch-wide input weight gradient: dW1 = dI1^T X, db1 = column sums of
 * dI1, over R rows; the output neurons are cut into fixed blocks as above.
 * A sparse input scatters into the transposed gradient instead. */
/* Images per block of a first-layer convolution's weight gradient: blocks
 * have a fixed size and are summed in order (thread-count independent). */
#define CONV_BLOCK SOMA_CONV_IMAGES
static int input_backward_conv(soma_trainer *tr, const float *x, size_t R) {
    layer *ly = &tr->lay[0];
    const soma__proj *p = ly->proj;
    size_t D = tr->n_in, N = ly->N, nw = p->cout * p->cin * p->cv.kernel * p->cv.kernel;
    size_t stride = (nw + 15) / 16 * 16 + (p->cout + 15) / 16 * 16, nblk = (R + CONV_BLOCK - 1) / CONV_BLOCK;
    float *acc = soma__alloc(nblk * stride * sizeof(float));
    if (!acc) return fail(tr, SOMA_STATUS_NOMEM, "out of memory for the convolution gradient");
#pragma omp parallel for num_threads(tr->threads) schedule(dynamic, 1)
    for (size_t k = 0; k < nblk; k++) {
        work *w = &tr->work[thread_id()];
        float *dw = acc + k * stride, *db = p->b ? dw + stride - (p->cout + 15) / 16 * 16 : NULL;
        size_t r0 = k * CONV_BLOCK, n = r0 + CONV_BLOCK > R ? R - r0 : CONV_BLOCK;
        soma__conv_backward(&ly->cplan, x + r0 * D, D, tr->dI1 + r0 * N, N, n, tr->parg1 ? tr->parg1 + r0 * N : NULL,
                            dw, db, NULL, w->ccols, w->ctmp, w->cdcols);
    }
    for (size_t k = 1; k < nblk; k++)
        for (size_t i = 0; i < stride; i++) acc[i] += acc[k * stride + i];
    memcpy(ly->grad_w, acc, nw * sizeof(float));
    if (ly->grad_b) memcpy(ly->grad_b, acc + stride - (p->cout + 15) / 16 * 16, p->cout * sizeof(float));
    free(acc);
    return SOMA_STATUS_OK;
}

static int input_backward(soma_trainer *tr, const float *x, size_t R) {
    layer *ly = &tr->lay[0];
    size_t D = tr->n_in, N = ly->N, nblk = (N + GEMM_BLOCK - 1) / GEMM_BLOCK;
    if (ly->conv) return input_backward_conv(tr, x, R);
    if (tr->x_sparse) {
        /* Each thread owns a range of neurons (neuron_range): it zeroes
         * their columns of the transposed gradient, scatters into them and
         * transposes them into its rows of the weight gradient, so no two
         * threads write the same cache line and every entry sums the batch
         * rows in order (thread-count independent). Spikes are scattered
         * without reading x: every thread goes over every batch row, and
         * half of x sits in the other core's cache. */
        size_t ld = soma__ldw(N);
#pragma omp parallel num_threads(tr->threads)
        {
            size_t o0, o1;
            neuron_range(N, &o0, &o1);
            if (o1 > o0) {
                for (size_t j = 0; j < D; j++) memset(tr->dw1T + j * ld + o0, 0, (o1 - o0) * sizeof(float));
                soma__dense_dweightT_sparse(tr->dw1T, tr->x_binary ? NULL : x, tr->xcol, tr->xcnt, D, tr->dI1, R, D,
                                            N, o0, o1);
                soma__transpose(ly->grad_w + o0 * D, D, tr->dw1T + o0, ld, D, o1 - o0);
            }
            if (ly->grad_b) {
                for (size_t o = o0; o < o1; o++) ly->grad_b[o] = 0.0f;
                for (size_t r = 0; r < R; r++)
                    for (size_t o = o0; o < o1; o++) ly->grad_b[o] += tr->dI1[r * N + o];
            }
        }
        return SOMA_STATUS_OK;
    }
#pragma omp parallel for num_threads(tr->threads) schedule(static)
    for (size_t k = 0; k < nblk; k++) {
        size_t o0 = k * GEMM_BLOCK, o1 = o0 + GEMM_BLOCK > N ? N : o0 + GEMM_BLOCK;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(o1 - o0), (int)D, (int)R, 1.0f, tr->dI1 + o0,
                    (int)N, x, (int)D, 0.0f, ly->grad_w + o0 * D, (int)D);
        if (ly->grad_b) {
            for (size_t o = o0; o < o1; o++) ly->grad_b[o] = 0.0f;
            for (size_t r = 0; r < R; r++)
                for (size_t o = o0; o < o1; o++) ly->grad_b[o] += tr->dI1[r * N + o];
        }
    }
    return SOMA_STATUS_OK;
}

static void model_args(const soma_trainer *tr, const layer *ly, work *w, soma_model_args *a) {
    memset(a, 0, sizeof *a);
    for (size_t k = 0; k < ly->m->n_params; k++) a->prm[k] = ly->prm[k];
    a->reset = ly->reset;
    a->surrogate = tr->opt.surrogate;
    a->surrogate_param = tr->opt.surrogate_param;
    a->scratch = w->scratch;
    for (size_t k = 0; k < ly->m->n_weights; k++) a->w[k] = ly->pop->cw[k];
    a->work = w->cwork;
    a->dt = (float)tr->net->dt;
    a->drv = (const float *const *)ly->drv;
}

/* Key of the current batch's random draws (stochastic models): the seed mixed
 * (splitmix64 finaliser) with the count of forward passes so far. */
static uint64_t batch_key(const soma_trainer *tr) {
    return soma__mix64(tr->opt.seed ^ (tr->batch_counter * 0x9E3779B97F4A7C15ull + 0xD1B54A32D192ED03ull));
}

/* Sum of x[0..n) for statistics: in 16 float lanes, which vectorize (a
 * running double sum is a chain of dependent adds), then the lanes in
 * double. The order is fixed by n alone, so the result is deterministic. */
static double sum_floats(const float *restrict x, size_t n) {
    float lane[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (size_t k = 0; k < 16; k++) lane[k] += x[i + k];
    double s = 0.0;
    for (size_t k = 0; k < 16; k++) s += lane[k];
    for (; i < n; i++) s += x[i];
    return s;
}

/* ----------------------------------------------------------------- hooks
 * Everything below runs only for layers whose hk bits are set (the ask
 * phase, soma_train_set_hooks, sets them); an unasked layer never calls it. */

/* Run the hooks of `kinds` of site sid on x ([Bc][n], rows b0.. of the batch) at step t. */
static void hook_run(soma_trainer *tr, work *w, size_t sid, unsigned kinds, size_t t, size_t b0, size_t Bc, size_t n,
                     float *x) {
    soma_hook_event ev = {tr->sites[sid].name, 0, t, Bc, n, x, b0, 0, n};
    soma__hookplan_run(&tr->hooks, sid, kinds, &ev, w->hmask);
}

#define HOOK_FWD (SOMA_HOOK_BIT(SOMA_HOOK_READ) | SOMA_HOOK_BIT(SOMA_HOOK_MASK) | SOMA_HOOK_BIT(SOMA_HOOK_OVERRIDE))
#define HOOK_CHANGE (SOMA_HOOK_BIT(SOMA_HOOK_MASK) | SOMA_HOOK_BIT(SOMA_HOOK_OVERRIDE))

/* After a layer's forward step t: its state variables, then its spikes. */
static void hook_layer_step(soma_trainer *tr, work *w, const layer *ly, size_t t, size_t b0, size_t Bc,
                            float *const *cur, float *s) {
    if (ly->hk_state & HOOK_FWD)
        for (size_t k = 0; k < ly->ns; k++) {
            size_t sid = ly->sid_state + k;
            if (tr->hooks.kinds[sid] & HOOK_FWD)
                hook_run(tr, w, sid, HOOK_FWD, t, b0, Bc, tr->sites[sid].size, cur[k]);
        }
    if (ly->hk_spk & HOOK_FWD) {
        size_t l = (size_t)(ly - tr->lay);
        hook_run(tr, w, ly->sid_spk, HOOK_FWD, t, b0, Bc, ly->N, s);
        /* Spikes changed into other values than 0/1 are no longer gathered. */
        if (t == 0) w->nb[l] = 0;
        if ((ly->hk_spk & HOOK_CHANGE) && !ly->graded && !w->nb[l]) w->nb[l] = soma__count_nonbinary(s, Bc * ly->N) != 0;
    }
}

/* The input of layer l's projection (l > 0) with its hooks run step by
 * step: the previous layer's outputs themselves for READ hooks, a copy in
 * w->hin[l] when hooks change it (the layer's recurrence and backward keep
 * reading the unchanged outputs). */
static const float *hook_proj_in(soma_trainer *tr, work *w, size_t l, size_t b0, size_t Bc) {
    layer *ly = &tr->lay[l];
    size_t RB = Bc * ly->Nin;
    float *src = w->s[ly->src];
    if (ly->in_copy) {
        memcpy(w->hin[l], src, tr->T * RB * sizeof(float));
        src = w->hin[l];
    }
    if (ly->hk_in & HOOK_FWD)
        for (size_t t = 0; t < tr->T; t++) hook_run(tr, w, ly->sid_in, HOOK_FWD, t, b0, Bc, ly->Nin, src + t * RB);
    /* Hooks that left the input as it was (a mask of ones) keep the usual path. */
    w->incp[l] = ly->in_copy && memcmp(w->hin[l], w->s[ly->src], tr->T * RB * sizeof(float)) != 0;
    return w->incp[l] ? w->hin[l] : w->s[ly->src];
}

/* Hooks of layer l's input current (its first projection's output, before
 * extra projections and the recurrent input are added), all steps of a
 * chunk at once (a first layer's is in w->in[l], copied from I1). */
static void hook_proj_out(soma_trainer *tr, work *w, size_t l, size_t b0, size_t Bc) {
    layer *ly = &tr->lay[l];
    size_t N = ly->N, RB = Bc * N;
    for (size_t t = 0; t < tr->T; t++) hook_run(tr, w, ly->sid_out, HOOK_FWD, t, b0, Bc, N, w->in[l] + t * RB);
}

/* GRAD of layer l's projection input: its part of dL/d(previous outputs), step by step. */
static void hook_proj_in_grad(soma_trainer *tr, work *w, size_t l, size_t b0, size_t Bc) {
    layer *ly = &tr->lay[l];
    size_t RB = Bc * ly->Nin;
    for (size_t t = 0; t < tr->T; t++)
        hook_run(tr, w, ly->sid_in, SOMA_HOOK_BIT(SOMA_HOOK_GRAD), t, b0, Bc, ly->Nin, w->ds[ly->src] + t * RB);
}

/* Layer l's recurrent input at step t > 0 with hooks at its sites: the
 * outputs of step t-1 as the recurrent product reads them (h->h.in; a
 * copy kept in w->rin[l] for backward when hooks may change it), then the
 * product W x (h->h.out) added to in_t. Hooks see step t, the step the
 * product acts at; at step 0 there is none. */
static void rec_forward_hooked(soma_trainer *tr, work *w, size_t l, size_t t, size_t b0, size_t Bc, float *in_t) {
    layer *ly = &tr->lay[l];
    size_t N = ly->N, RB = Bc * N;
    float *x = w->s[l] + (t - 1) * RB;
    int dense = ly->graded || w->nb[l];
    if (ly->hk_rin & HOOK_CHANGE) {
        float *xr = w->rin[l] + (t - 1) * RB;
        memcpy(xr, x, RB * sizeof(float));
        hook_run(tr, w, ly->sid_rin, HOOK_FWD, t, b0, Bc, N, xr);
        x = xr, dense = 1;
    } else if (ly->hk_rin & HOOK_FWD)
        hook_run(tr, w, ly->sid_rin, HOOK_FWD, t, b0, Bc, N, x);
    float *out = in_t;
    int acc = 1;
    if (ly->hk_rout & HOOK_FWD) out = w->rbuf, acc = 0;
    if (dense) soma__dense_forward_blas(out, x, ly->rec_w, NULL, Bc, N, N, acc);
    else
        soma__dense_forward_spikes(out, w->idx[l] + (t - 1) * RB, w->cnt[l] + (t - 1) * Bc, N, ly->recT, NULL, Bc, N,
                                   acc);
    if (ly->hk_rout & HOOK_FWD) {
        hook_run(tr, w, ly->sid_rout, HOOK_FWD, t, b0, Bc, N, out);
        for (size_t i = 0; i < RB; i++) in_t[i] += out[i];
    }
}

/* Backward of layer l's recurrent product at step t > 0 with hooks: GRAD at
 * h->h.out sees dL/d(the product) (a copy of din: the other projections
 * into the layer keep theirs), GRAD at h->h.in this product's part of
 * dL/d(outputs of step t-1), before it is added. As for other projections,
 * a changed input is used by the weight gradient and the input gradient
 * passes the change straight through. */
static void rec_backward_hooked(soma_trainer *tr, work *w, float *acc, size_t l, size_t t, size_t b0, size_t Bc,
                                const float *din) {
    layer *ly = &tr->lay[l];
    size_t N = ly->N, RB = Bc * N;
    const unsigned g = SOMA_HOOK_BIT(SOMA_HOOK_GRAD);
    const float *dr = din;
    if (ly->hk_rout & g) {
        memcpy(w->rbuf, din, RB * sizeof(float));
        hook_run(tr, w, ly->sid_rout, g, t, b0, Bc, N, w->rbuf);
        dr = w->rbuf;
    }
    float *ds = w->ds[l] + (t - 1) * RB;
    if (ly->hk_rin & g) {
        float *gx = w->rbuf + tr->chunk * tr->Nmax;
        soma__dense_dinput(gx, dr, ly->rec_w, Bc, N, N, 0);
        hook_run(tr, w, ly->sid_rin, g, t, b0, Bc, N, gx);
        for (size_t i = 0; i < RB; i++) ds[i] += gx[i];
    } else
        soma__dense_dinput(ds, dr, ly->rec_w, Bc, N, N, 1);
    if (ly->hk_rin & HOOK_CHANGE)
        soma__dense_dweightT_blas(acc + ly->acc_rec, w->rin[l] + (t - 1) * RB, dr, Bc, N, N);
    else if (ly->graded || w->nb[l])
        soma__dense_dweightT_blas(acc + ly->acc_rec, w->s[l] + (t - 1) * RB, dr, Bc, N, N);
    else
        soma__dense_dweight_spikes(acc + ly->acc_rec, w->idx[l] + (t - 1) * RB, w->cnt[l] + (t - 1) * Bc, N, dr, Bc, N);
}

/* The input population's sites (its spikes, the first projection's input):
 * the encoded input as [T][B][D] in tr->xh, hooked step by step for the
 * whole batch. If hooks changed it, *x and *tc then point at it (a
 * time-varying input). */
static int hook_input(soma_trainer *tr, const float **x, int *tc, size_t B) {
    size_t T = tr->T, D = tr->n_in, rows = T * B;
    if (rows > tr->xh_rows) {
        float *a = soma__alloc(rows * D * sizeof(float)), *m = soma__alloc(B * D * sizeof(float));
        if (!a || !m) {
            free(a), free(m);
            return fail(tr, SOMA_STATUS_NOMEM, "out of memory for the input hooks");
        }
        free(tr->xh), free(tr->xh_mask);
        tr->xh = a, tr->xh_mask = m, tr->xh_rows = rows;
    }
    int changed = 0;
    for (size_t t = 0; t < T; t++) {
        float *xt = tr->xh + t * B * D;
        const float *xs = *tc ? *x : *x + t * B * D;
        memcpy(xt, xs, B * D * sizeof(float));
        soma_hook_event ev = {NULL, 0, t, B, D, xt, 0, 0, D};
        if (tr->hk_x) {
            ev.site = tr->sites[tr->sid_x].name;
            soma__hookplan_run(&tr->hooks, tr->sid_x, HOOK_FWD, &ev, tr->xh_mask);
        }
        if (tr->hk_xin) {
            ev.site = tr->sites[tr->sid_xin].name;
            soma__hookplan_run(&tr->hooks, tr->sid_xin, HOOK_FWD, &ev, tr->xh_mask);
        }
        changed = changed || memcmp(xt, xs, B * D * sizeof(float)) != 0;
    }
    /* Hooks that left the input as it was (READ, a mask of ones) keep the usual path. */
    if (changed) {
        *x = tr->xh;
        *tc = 0;
    }
    return SOMA_STATUS_OK;
}

/* SOMA_STATUS_CANCELLED with a message if a hook cancelled the run. */
static int hook_cancelled(soma_trainer *tr) {
    if (!soma__hookplan_cancelled(&tr->hooks)) return SOMA_STATUS_OK;
    return fail(tr, SOMA_STATUS_CANCELLED, "cancelled by a hook on '%s' at step %zu", tr->hooks.cancel_site,
                tr->hooks.cancel_step);
}

/* A projection site's projection in the net, or NULL for a population's
 * recurrent weights (whose proj index is past the projections). */
static const soma__proj *site_proj(const soma_net *net, const soma_site_info *si) {
    return si->proj < net->nproj ? &net->projs[si->proj] : NULL;
}

/* Whether si is a site of population P's recurrent weights. */
static int rec_site_of(const soma_net *net, const soma_site_info *si, const soma__pop *P) {
    if (!(si->kind == SOMA_SITE_PROJ_IN || si->kind == SOMA_SITE_PROJ_OUT) || si->proj == (size_t)-1) return 0;
    if (si->proj < net->nproj) /* a projection onto itself (sparse): its recurrent weights */
        return &net->pops[net->projs[si->proj].from] == P && &net->pops[net->projs[si->proj].to] == P;
    return si->proj >= net->nproj && &net->pops[si->proj - net->nproj] == P;
}

int soma_train_set_mask_sparse(soma_trainer *tr, double max_density) {
    if (!tr) return SOMA_STATUS_INVALID;
    if (!(max_density >= 0.0 && max_density <= 1.0) && max_density != SOMA_TRAIN_MASK_SPARSE_DEFAULT)
        return fail(tr, SOMA_STATUS_INVALID, "mask sparse threshold %g: expected a density from 0 to 1, or "
                    "SOMA_TRAIN_MASK_SPARSE_DEFAULT (-1)", max_density);
    tr->mask_sparse_max = max_density;
    return SOMA_STATUS_OK;
}

size_t soma_train_mask_sparse_rows(const soma_trainer *tr) {
    size_t n = 0;
    for (int t = 0; tr && t < tr->threads; t++) n += tr->work[t].sparse_rows;
    return n;
}

int soma_train_set_hooks(soma_trainer *tr, const soma_hooks *h) {
    if (!tr) return SOMA_STATUS_INVALID;
    soma_net *net = tr->net;
    size_t ns = soma_net_site_count(net);
    soma_site_info *sites = calloc(ns ? ns : 1, sizeof *sites);
    if (!sites) return fail(tr, SOMA_STATUS_NOMEM, "out of memory for the site table");
    for (size_t i = 0; i < ns; i++) soma_net_site(net, i, &sites[i]);
    soma__hookplan plan;
    int st = soma__hookplan_build(&plan, h, sites, ns, tr->errmsg, sizeof tr->errmsg);
    if (st) {
        free(sites);
        return st;
    }
    /* What the trainer does not offer: gradients of state variables (the
     * models keep the full dL/dU inside their backward step) and of the
     * input population's sites (no gradient of the data is computed). */
    size_t in_pop = (size_t)-1;
    for (size_t p = 0; p < net->npops; p++)
        if (!net->pops[p].model->spiking) in_pop = p;
    for (size_t i = 0; i < plan.n; i++) {
        const soma_site_info *si = &sites[plan.h[i].site];
        int input = (si->kind == SOMA_SITE_SPIKES && si->pop == in_pop) || (si->kind == SOMA_SITE_PROJ_IN && si->from == in_pop);
        if (plan.h[i].kind == SOMA_HOOK_GRAD && (si->kind == SOMA_SITE_STATE || input)) {
            fail(tr, SOMA_STATUS_UNSUPPORTED, "the trainer has no gradient hook for '%s' (%s); GRAD is offered on "
                 "spikes, <from>-><to>.out and the .in of projections between trained populations",
                 si->name, si->kind == SOMA_SITE_STATE ? "a state variable" : "the input data");
            goto refuse;
        }
        int input_extras = 0;
        for (size_t l = 0; l < tr->L; l++)
            for (size_t e = 0; e < tr->lay[l].nextra; e++) input_extras |= tr->lay[l].extra[e].src < 0;
        if (input && input_extras && plan.h[i].kind != SOMA_HOOK_READ) {
            fail(tr, SOMA_STATUS_UNSUPPORTED, "%s hook on '%s': the input also feeds further projections, which "
                 "would see the change too; the trainer offers READ there", soma__hook_kind_name(plan.h[i].kind),
                 si->name);
            goto refuse;
        }
        if ((si->kind == SOMA_SITE_PROJ_IN || si->kind == SOMA_SITE_PROJ_OUT) && site_proj(net, si) &&
            site_proj(net, si)->from != site_proj(net, si)->to) { /* onto itself: the recurrent weights */
            const soma__proj *pj = site_proj(net, si);
            const layer *first = NULL;
            for (size_t l = 0; l < tr->L; l++)
                if (tr->lay[l].proj == pj) first = &tr->lay[l];
            if (!first) { /* a further projection into its population */
                if (si->kind == SOMA_SITE_PROJ_IN && plan.h[i].kind != SOMA_HOOK_READ) {
                    fail(tr, SOMA_STATUS_UNSUPPORTED, "%s hook on '%s': the input of a further projection into '%s' "
                         "(summed after its first) is its source's values, shared with the source's other "
                         "projections; the trainer offers READ there (hook '%s.spikes' or the .out site instead)",
                         soma__hook_kind_name(plan.h[i].kind), si->name, net->pops[pj->to].name,
                         net->pops[pj->from].name);
                    goto refuse;
                }
                continue;
            }
            if (plan.h[i].kind == SOMA_HOOK_GRAD && si->kind == SOMA_SITE_PROJ_IN && first->src >= 0 &&
                tr->lay[first->src].consumers > 1) {
                fail(tr, SOMA_STATUS_UNSUPPORTED, "the trainer has no gradient hook for '%s': '%s' feeds %d projections, "
                     "and this one's part of its gradient is not kept apart (GRAD on '%s.spikes' gives their sum)",
                     si->name, net->pops[pj->from].name, tr->lay[first->src].consumers, net->pops[pj->from].name);
                goto refuse;
            }
        }
    }
    /* Scratch: a mask of a chunk's widest site, and copies of changed projection inputs. */
    size_t widest = tr->n_in > tr->Nmax ? tr->n_in : tr->Nmax;
    if (tr->nsmax > widest) widest = tr->nsmax;
    for (int t = 0; t < tr->threads; t++) {
        work *w = &tr->work[t];
        if (plan.n && !w->hmask && !(w->hmask = soma__alloc(tr->chunk * widest * sizeof(float)))) goto nomem;
        for (size_t l = 1; l < tr->L; l++) {
            layer *ly = &tr->lay[l];
            size_t sid_in = 0;
            for (size_t i = 0; i < ns; i++)
                if (sites[i].kind == SOMA_SITE_PROJ_IN && site_proj(net, &sites[i]) == ly->proj) sid_in = i;
            if ((plan.kinds[sid_in] & HOOK_CHANGE) && !w->hin[l] &&
                !(w->hin[l] = soma__alloc(tr->T * tr->chunk * ly->Nin * sizeof(float))))
                goto nomem;
            if ((plan.kinds[sid_in] & SOMA_HOOK_BIT(SOMA_HOOK_MASK)) && !ly->conv && !w->sidx[l] &&
                (!(w->sidx[l] = soma__alloc(tr->T * tr->chunk * ly->Nin * sizeof(uint32_t))) ||
                 !(w->scnt[l] = soma__alloc(tr->T * tr->chunk * sizeof(uint32_t)))))
                goto nomem;
        }
        for (size_t l = 0; l < tr->L; l++)
            for (size_t e = 0; e < tr->lay[l].nextra; e++)
                for (size_t i = 0; i < ns; i++)
                    if (plan.kinds[i] && sites[i].kind == SOMA_SITE_PROJ_OUT &&
                        site_proj(net, &sites[i]) == tr->lay[l].extra[e].proj && !w->xbuf &&
                        !(w->xbuf = soma__alloc(tr->T * tr->chunk * tr->Nmax * sizeof(float))))
                        goto nomem;
        for (size_t l = 0; l < tr->L; l++)
            for (size_t i = 0; i < ns; i++) {
                const soma_site_info *si = &sites[i];
                if (!plan.kinds[i] || !rec_site_of(net, si, tr->lay[l].pop)) continue;
                if (!w->rbuf && !(w->rbuf = soma__alloc(2 * tr->chunk * tr->Nmax * sizeof(float)))) goto nomem;
                if (si->kind == SOMA_SITE_PROJ_IN && (plan.kinds[i] & HOOK_CHANGE) && !w->rin[l] &&
                    !(w->rin[l] = soma__alloc(tr->T * tr->chunk * tr->lay[l].N * sizeof(float))))
                    goto nomem;
            }
    }
    /* Commit: the new plan and every layer's bits. */
    for (int t = 0; t < tr->threads; t++) {
        memset(tr->work[t].nb, 0, tr->L * sizeof *tr->work[t].nb);
        memset(tr->work[t].incp, 0, tr->L * sizeof *tr->work[t].incp);
    }
    soma__hookplan_free(&tr->hooks);
    free(tr->sites);
    tr->hooks = plan;
    tr->sites = sites;
    tr->nsites = ns;
    tr->hk_x = tr->hk_xin = 0;
    for (size_t i = 0; i < ns; i++) {
        const soma_site_info *si = &sites[i];
        unsigned k = plan.kinds[i];
        if (si->kind == SOMA_SITE_SPIKES && si->pop == in_pop) tr->sid_x = i, tr->hk_x = k;
        if (si->kind == SOMA_SITE_PROJ_IN && site_proj(net, si) == tr->lay[0].proj) tr->sid_xin = i, tr->hk_xin = k;
    }
    for (size_t l = 0; l < tr->L; l++) {
        layer *ly = &tr->lay[l];
        ly->hk_spk = ly->hk_state = ly->hk_in = ly->hk_out = ly->hk_rin = ly->hk_rout = 0;
        for (size_t e = 0; e < ly->nextra; e++) ly->extra[e].hk_in = ly->extra[e].hk_out = 0;
        for (size_t i = 0; i < ns; i++) {
            const soma_site_info *si = &sites[i];
            unsigned k = plan.kinds[i];
            if (si->kind == SOMA_SITE_SPIKES && &net->pops[si->pop] == ly->pop) ly->sid_spk = i, ly->hk_spk = k;
            if (si->kind == SOMA_SITE_STATE && &net->pops[si->pop] == ly->pop) {
                if (si->state == 0) ly->sid_state = i;
                ly->hk_state |= k;
            }
            if (si->kind == SOMA_SITE_PROJ_IN && site_proj(net, si) == ly->proj && !ly->first)
                ly->sid_in = i, ly->hk_in = k;
            if (si->kind == SOMA_SITE_PROJ_OUT && site_proj(net, si) == ly->proj) ly->sid_out = i, ly->hk_out = k;
            if (rec_site_of(net, si, ly->pop)) {
                if (si->kind == SOMA_SITE_PROJ_IN) ly->sid_rin = i, ly->hk_rin = k;
                else ly->sid_rout = i, ly->hk_rout = k;
            }
            for (size_t e = 0; e < ly->nextra; e++) {
                extra_proj *xp = &ly->extra[e];
                if (site_proj(net, si) != xp->proj) continue;
                if (si->kind == SOMA_SITE_PROJ_IN) xp->sid_in = i, xp->hk_in = k;
                if (si->kind == SOMA_SITE_PROJ_OUT) xp->sid_out = i, xp->hk_out = k;
            }
        }
        ly->hk = ly->hk_spk | ly->hk_state;
        ly->in_copy = (ly->hk_in & HOOK_CHANGE) != 0;
        ly->in_sparse = !ly->first && !ly->conv && (ly->hk_in & SOMA_HOOK_BIT(SOMA_HOOK_MASK)) != 0;
        ly->hkg = ((ly->hk_spk | ly->hk_out) & SOMA_HOOK_BIT(SOMA_HOOK_GRAD)) != 0;
        ly->from_i1 = ly->first && !ly->nextra && !(ly->hk_out & HOOK_FWD);
    }
    return SOMA_STATUS_OK;
refuse:
    soma__hookplan_free(&plan);
    free(sites);
    return SOMA_STATUS_UNSUPPORTED;
nomem:
    soma__hookplan_free(&plan);
    free(sites);
    return fail(tr, SOMA_STATUS_NOMEM, "out of memory for hook buffers");
}

/* Whether some dense projection reading layer k's spikes (density d) takes
 * the gather, which reads their index lists. */
static int index_wanted(const soma_trainer *tr, size_t k, double d) {
    for (size_t l = k + 1; l < tr->L; l++) {
        const layer *ly = &tr->lay[l];
        if (ly->src == (int)k && !ly->conv && soma__gather_wins(d, ly->N)) return 1;
        for (size_t e = 0; e < ly->nextra; e++)
            if (ly->extra[e].src == (int)k && soma__gather_wins(d, ly->N)) return 1;
    }
    return 0;
}

/* The rows of the batch's input that chunk rows b0.. read at step t. */
static const float *input_rows(const soma_trainer *tr, size_t t, size_t b0) {
    return tr->x + ((tr->x_tc ? 0 : t * tr->x_B) + b0) * tr->n_in;
}

/* out[r] += b for R rows of N. */
static void add_bias(float *restrict out, const float *restrict b, size_t R, size_t N) {
    for (size_t r = 0; r < R; r++)
        for (size_t j = 0; j < N; j++) out[r * N + j] += b[j];
}

/* Layer l's extra projections added to its input currents w->in[l], all steps. */
static void extra_forward(soma_trainer *tr, work *w, size_t l, size_t b0, size_t Bc, size_t B) {
    layer *ly = &tr->lay[l];
    size_t T = tr->T, N = ly->N, RB = Bc * N, R = T * Bc;
    (void)B;
    for (size_t e = 0; e < ly->nextra; e++) {
        const extra_proj *xp = &ly->extra[e];
        const float *W = xp->proj->w;
        if (xp->hk_in & HOOK_FWD) /* READ: the source's values as this projection reads them */
            for (size_t t = 0; t < T; t++)
                hook_run(tr, w, xp->sid_in, HOOK_FWD, t, b0, Bc, xp->Nin,
                         xp->src < 0 ? (float *)input_rows(tr, t, b0) : w->s[xp->src] + t * Bc * xp->Nin);
        /* With hooks at its output the product goes to a buffer of its own first. */
        int own = (xp->hk_out & HOOK_FWD) != 0;
        float *out = own ? w->xbuf : w->in[l];
        if (xp->src < 0) {
            for (size_t t = 0; t < T; t++)
                soma__dense_forward_blas(out + t * RB, input_rows(tr, t, b0), W, NULL, Bc, xp->Nin, N, !own);
        } else {
            size_t k = (size_t)xp->src;
            double density = (double)w->nspk[k] / ((double)R * (double)xp->Nin);
            if (!tr->lay[k].graded && !w->nb[k] && soma__gather_wins(density, N))
                soma__dense_forward_spikes(out, w->idx[k], w->cnt[k], xp->Nin, xp->wT, NULL, R, N, !own);
            else
                soma__dense_forward_blas(out, w->s[k], W, NULL, R, xp->Nin, N, !own);
        }
        if (xp->proj->b) add_bias(out, xp->proj->b, R, N);
        if (own) {
            for (size_t t = 0; t < T; t++) hook_run(tr, w, xp->sid_out, HOOK_FWD, t, b0, Bc, N, out + t * RB);
            for (size_t i = 0; i < R * N; i++) w->in[l][i] += out[i];
        }
    }
}

/* Whether layer l's masked input x [R][Nin] (hooks changed it) is sparse
 * enough for the product over its nonzeros: its nonzero columns go to
 * w->sidx[l] row by row (the kernel reads them), and the density is
 * compared with the trainer's threshold. A MASK only zeroes or scales, so
 * the dropped inputs are exact zeros and the sum over the rest is the
 * whole product. */
static int mask_sparse(const soma_trainer *tr, work *w, size_t l, const float *x, size_t R) {
    const layer *ly = &tr->lay[l];
    /* default: the crossovers bench/bench_sparsify measured (Nin 1000, a
     * chunk's rows): narrow products are cheap in BLAS and the gather adds
     * each kept input's few outputs one by one, so they win only when very
     * sparse; wide ones win up to about 40 % kept */
    double max = tr->mask_sparse_max >= 0.0 ? tr->mask_sparse_max : ly->N <= 64 ? 0.08 : 0.35;
    if (!ly->in_sparse || !w->incp[l] || max <= 0.0) return 0;
    size_t Nin = ly->Nin, nnz = 0;
    for (size_t r = 0; r < R; r++) {
        size_t c = soma__spike_index(x + r * Nin, Nin, w->sidx[l] + r * Nin);
        w->scnt[l][r] = (uint32_t)c;
        nnz += c;
    }
    if ((double)nnz > max * (double)R * (double)Nin) return 0;
    w->sparse_rows += R;
    return 1;
}

/* Forward of one chunk (rows b0..b0+Bc of the batch of B) through all layers. */
static void chunk_forward(soma_trainer *tr, work *w, size_t b0, size_t Bc, size_t B, int tc) {
    size_t T = tr->T;
    for (size_t l = 0; l < tr->L; l++) {
        layer *ly = &tr->lay[l];
        size_t N = ly->N, RB = Bc * N, ns = ly->ns, SB = ly->state_floats * Bc;
        soma_model_args a;
        model_args(tr, ly, w, &a);
        a.rng_key = batch_key(tr);
        a.row0 = b0;
        double t0 = soma__now();
        const float *src = l ? w->s[ly->src] : NULL; /* the projection's input */
        if (!ly->first && ly->hk_in) src = hook_proj_in(tr, w, l, b0, Bc);
        if (!ly->first && ly->conv) {
            for (size_t r = 0; r < T * Bc; r += SOMA_CONV_IMAGES) {
                size_t n = r + SOMA_CONV_IMAGES > T * Bc ? T * Bc - r : SOMA_CONV_IMAGES;
                soma__conv_forward(&ly->cplan, src + r * ly->Nin, ly->Nin, w->in[l] + r * N, N, n, w->ccols,
                                   w->ctmp, w->parg[l] ? w->parg[l] + r * N : NULL);
            }
        } else if (!ly->first) {
            size_t R = T * Bc, Nin = ly->Nin, k = (size_t)ly->src;
            double density = (double)w->nspk[k] / ((double)R * (double)Nin);
            if (!tr->lay[k].graded && !w->nb[k] && !w->incp[l] && soma__gather_wins(density, N))
                soma__dense_forward_spikes(w->in[l], w->idx[k], w->cnt[k], Nin, ly->wT, ly->proj->b, R, N, 0);
            else if (w->incp[l] && mask_sparse(tr, w, l, src, R)) /* MASK hooks dropped most inputs: skip their columns */
                soma__dense_forward_sparse(w->in[l], src, w->sidx[l], w->scnt[l], Nin, ly->wT, ly->proj->b, R, Nin,
                                           N, 0, N);
            else
                soma__dense_forward_blas(w->in[l], src, ly->proj->w, ly->proj->b, R, Nin, N, 0);
        }
        double t1 = soma__now();
        w->prof[0] += t1 - t0;
        if (ly->first && !ly->from_i1) /* the batch-wide input currents, copied where hooks or extras change them */
            for (size_t t = 0; t < T; t++)
                memcpy(w->in[l] + t * RB, tc ? tr->I1 + b0 * N : tr->I1 + (t * B + b0) * N, RB * sizeof(float));
        if (ly->hk_out & HOOK_FWD) hook_proj_out(tr, w, l, b0, Bc);
        if (ly->nextra) extra_forward(tr, w, l, b0, Bc, B);
        memset(w->tape[l], 0, SB * sizeof(float)); /* state at t = -1 */
        if (ly->m->sim_init) /* physical models start at rest (V = E_L), as in the simulator */
            for (size_t b = 0; b < Bc; b++) {
                float *st[SOMA_MAX_STATE];
                for (size_t k = 0; k < ns; k++) st[k] = w->tape[l] + ly->state_off[k] * Bc + b * N;
                ly->m->sim_init((const float *const *)ly->prm, st, N);
            }
        size_t nspk = 0;
        double ssum = 0.0;
        for (size_t t = 0; t < T; t++) {
            float *in_t;
            if (ly->from_i1) {
                float *base = tc ? tr->I1 + b0 * N : tr->I1 + (t * B + b0) * N;
                if (ly->recT) {
                    in_t = w->in[l] + t * RB;
                    memcpy(in_t, base, RB * sizeof(float));
                } else in_t = base;
            } else in_t = w->in[l] + t * RB;
            if (ly->recT && t > 0) {
                if (ly->hk_rin | ly->hk_rout) rec_forward_hooked(tr, w, l, t, b0, Bc, in_t);
                else if (ly->graded || w->nb[l])
                    soma__dense_forward_blas(in_t, w->s[l] + (t - 1) * RB, ly->rec_w, NULL, Bc, N, N, 1);
                else
                    soma__dense_forward_spikes(in_t, w->idx[l] + (t - 1) * RB, w->cnt[l] + (t - 1) * Bc, N, ly->recT,
                                               NULL, Bc, N, 1);
            }
            const float *prev[SOMA_MAX_STATE];
            float *cur[SOMA_MAX_STATE];
            for (size_t k = 0; k < ns; k++) {
                prev[k] = w->tape[l] + t * SB + ly->state_off[k] * Bc;
                cur[k] = w->tape[l] + (t + 1) * SB + ly->state_off[k] * Bc;
            }
            float *s = w->s[l] + t * RB;
            a.step = t;
            ly->m->forward(&a, prev, cur, s, in_t, Bc, N);
            if (ly->hk) hook_layer_step(tr, w, ly, t, b0, Bc, cur, s);
            /* Index lists are built only where a gather will read them: the
             * recurrent input of the next step, or (below) the next layer.
             * Graded outputs are never gathered: no counts for them. */
            if (!ly->graded)
                for (size_t b = 0; b < Bc; b++) {
                    size_t c = ly->recT ? soma__spike_index(s + b * N, N, w->idx[l] + t * RB + b * N)
                                        : soma__spike_count(s + b * N, N);
                    w->cnt[l][t * Bc + b] = (uint32_t)c;
                    nspk += c;
                }
            if (ly->m->rate_output) ssum += sum_floats(s, RB);
        }
        w->nspk[l] = nspk;
        w->spk_sum[l] = ly->m->rate_output ? ssum : (double)nspk;
        if (!ly->recT && !ly->graded && !w->nb[l] && ly->consumers && index_wanted(tr, l, (double)nspk / (double)(T * RB)))
            for (size_t r = 0; r < T * Bc; r++) soma__spike_index(w->s[l] + r * N, N, w->idx[l] + r * N);
        w->prof[1] += soma__now() - t1;
    }
}

/* Output-layer views: spikes [T][Bc][C] and membrane (state 0) rows of each step. */
static void output_views(soma_trainer *tr, work *w, size_t Bc, const float **s, const float **u, size_t *ustride) {
    layer *lo = &tr->lay[tr->L - 1];
    size_t RB = Bc * lo->N;
    *s = w->s[tr->L - 1];
    (void)RB;
    *u = w->tape[tr->L - 1] + lo->state_floats * Bc; /* step 0 lives at tape index 1 */
    *ustride = lo->state_floats * Bc;
}

/* The spike-rate penalty and statistic cover the hidden spiking layers and
 * graded layers whose outputs are spike probabilities (not plain activations). */
static int has_rate(const layer *ly) { return !ly->graded || ly->m->rate_output; }

/* Layer l's extra projections backward, from its input-current gradient
 * w->din[l] (all steps): their weight and bias gradients, and their parts
 * of their sources' output gradients. */
static void extra_backward(soma_trainer *tr, work *w, float *acc, size_t l, size_t b0, size_t Bc) {
    layer *ly = &tr->lay[l];
    size_t T = tr->T, N = ly->N, RB = Bc * N, R = T * Bc;
    for (size_t e = 0; e < ly->nextra; e++) {
        const extra_proj *xp = &ly->extra[e];
        const float *din = w->din[l];
        if (xp->hk_out & SOMA_HOOK_BIT(SOMA_HOOK_GRAD)) { /* its own copy of dL/d(its output) */
            memcpy(w->xbuf, din, R * N * sizeof(float));
            for (size_t t = 0; t < T; t++)
                hook_run(tr, w, xp->sid_out, SOMA_HOOK_BIT(SOMA_HOOK_GRAD), t, b0, Bc, N, w->xbuf + t * RB);
            din = w->xbuf;
        }
        if (xp->src < 0) {
            for (size_t t = 0; t < T; t++)
                soma__dense_dweightT_blas(acc + xp->acc_w, input_rows(tr, t, b0), din + t * RB, Bc, xp->Nin, N);
        } else {
            size_t k = (size_t)xp->src;
            double density = (double)w->nspk[k] / ((double)R * (double)xp->Nin);
            if (!tr->lay[k].graded && !w->nb[k] && soma__gather_wins(density, N))
                soma__dense_dweight_spikes(acc + xp->acc_w, w->idx[k], w->cnt[k], xp->Nin, din, R, N);
            else
                soma__dense_dweightT_blas(acc + xp->acc_w, w->s[k], din, R, xp->Nin, N);
            soma__dense_dinput(w->ds[k], din, xp->proj->w, R, xp->Nin, N, w->ds_set[k]);
            w->ds_set[k] = 1;
        }
        if (xp->grad_b) soma__dense_dbias(acc + xp->acc_b, din, R, N);
    }
}

/* Backward of one chunk; ds of the output layer (and w->dv) already hold the loss gradient. */
static void chunk_backward(soma_trainer *tr, work *w, float *acc, size_t b0, size_t Bc, size_t B, int tc, int dv_used,
                           float rate_grad) {
    size_t T = tr->T;
    memset(w->ds_set, 0, tr->L * sizeof *w->ds_set);
    for (size_t l = tr->L; l-- > 0;) {
        layer *ly = &tr->lay[l];
        size_t N = ly->N, RB = Bc * N, ns = ly->ns, SB = ly->state_floats * Bc;
        /* Every consumer has added its part to ds[l]: now the rate penalty's. */
        if (rate_grad != 0.0f && l + 1 < tr->L && has_rate(ly)) {
            float *d = w->ds[l];
            for (size_t i = 0; i < T * RB; i++) d[i] += rate_grad;
        }
        soma_model_args a;
        model_args(tr, ly, w, &a);
        for (size_t k = 0; k < ly->m->n_weights; k++) a.dw[k] = ly->grad_cell_w[k] ? acc + ly->acc_cell_w[k] : NULL;
        a.rng_key = batch_key(tr); /* the forward's draws, recomputed for the reset signal */
        a.row0 = b0;
        float *dprm[SOMA_MAX_PARAMS] = {0};
        for (size_t k = 0; k < ly->m->n_params; k++)
            if (ly->grad_prm[k]) dprm[k] = acc + ly->acc_prm[k];
        float *dstate[SOMA_MAX_STATE];
        double t0 = soma__now();
        memset(w->dstate, 0, SB * sizeof(float));
        for (size_t k = 0; k < ns; k++) dstate[k] = w->dstate + ly->state_off[k] * Bc;
        for (size_t t = T; t-- > 0;) {
            const float *prev[SOMA_MAX_STATE], *cur[SOMA_MAX_STATE];
            for (size_t k = 0; k < ns; k++) {
                prev[k] = w->tape[l] + t * SB + ly->state_off[k] * Bc;
                cur[k] = w->tape[l] + (t + 1) * SB + ly->state_off[k] * Bc;
            }
            /* Cell and physical models read their input again (the latter
             * recompute the step to find the membrane before its reset). */
            a.in = ly->from_i1 && !ly->recT ? (tc ? tr->I1 + b0 * N : tr->I1 + (t * B + b0) * N) : w->in[l] + t * RB;
            /* The first layer's input gradient goes to the batch-wide buffer;
             * with a time-constant input it is summed over steps there, by the
             * model itself unless the per-step value is needed (recurrence). */
            int sum_in_model = ly->first && tc && !ly->recT && !ly->nextra && !(ly->hk_out & SOMA_HOOK_BIT(SOMA_HOOK_GRAD));
            float *din = ly->first && !tc ? tr->dI1 + (t * B + b0) * N
                         : sum_in_model   ? tr->dI1 + b0 * N
                                          : w->din[l] + t * RB;
            a.din_accumulate = sum_in_model && t != T - 1;
            a.step = t;
            const float *dv = (l == tr->L - 1 && dv_used) ? w->dv + t * RB : NULL;
            if (!ly->hkg) ly->m->backward(&a, prev, cur, dstate, w->ds[l] + t * RB, dv, din, dprm, Bc, N);
            else { /* GRAD hooks: dL/d(spikes) before the step, dL/d(input current) after it */
                const unsigned g = SOMA_HOOK_BIT(SOMA_HOOK_GRAD);
                if (ly->hk_spk & g) hook_run(tr, w, ly->sid_spk, g, t, b0, Bc, N, w->ds[l] + t * RB);
                ly->m->backward(&a, prev, cur, dstate, w->ds[l] + t * RB, dv, din, dprm, Bc, N);
                if (ly->hk_out & g) hook_run(tr, w, ly->sid_out, g, t, b0, Bc, N, din);
            }
            if (ly->recT && t > 0 && (ly->hk_rin | ly->hk_rout)) rec_backward_hooked(tr, w, acc, l, t, b0, Bc, din);
            else if (ly->recT && t > 0) {
                soma__dense_dinput(w->ds[l] + (t - 1) * RB, din, ly->rec_w, Bc, N, N, 1);
                if (ly->graded || w->nb[l])
                    soma__dense_dweightT_blas(acc + ly->acc_rec, w->s[l] + (t - 1) * RB, din, Bc, N, N);
                else
                    soma__dense_dweight_spikes(acc + ly->acc_rec, w->idx[l] + (t - 1) * RB, w->cnt[l] + (t - 1) * Bc, N,
                                               din, Bc, N);
            }
            /* (Layer 0's sources are all the input, and the net refuses a
             * projection defined twice, so it has no extras today; kept general.) */
            if (ly->nextra && ly->first && !tc) memcpy(w->din[l] + t * RB, din, RB * sizeof(float)); /* extras read it */
            if (ly->first && tc && !sum_in_model) {
                float *restrict d = tr->dI1 + b0 * N;
                if (t == T - 1) memcpy(d, din, RB * sizeof(float));
                else
                    for (size_t i = 0; i < RB; i++) d[i] += din[i];
            }
        }
        double t1 = soma__now();
        w->prof[3] += t1 - t0;
        if (ly->nextra) extra_backward(tr, w, acc, l, b0, Bc);
        if (ly->first) {
            w->prof[4] += soma__now() - t1;
            continue;
        }
        size_t R = T * Bc, Nin = ly->Nin, k = (size_t)ly->src;
        const float *src = w->incp[l] ? w->hin[l] : w->s[k]; /* the projection's input in forward */
        int add = w->ds_set[k];
        w->ds_set[k] = 1;
        if (ly->conv) {
            float *dx = add ? w->dtmp : w->ds[k]; /* the convolution overwrites its input gradient */
            for (size_t r = 0; r < R; r += SOMA_CONV_IMAGES) {
                size_t n = r + SOMA_CONV_IMAGES > R ? R - r : SOMA_CONV_IMAGES;
                soma__conv_backward(&ly->cplan, src + r * Nin, Nin, w->din[l] + r * N, N, n,
                                    w->parg[l] ? w->parg[l] + r * N : NULL, acc + ly->acc_w,
                                    ly->proj->b ? acc + ly->acc_b : NULL, dx + r * Nin, w->ccols, w->ctmp, w->cdcols);
            }
            if (add)
                for (size_t i = 0; i < R * Nin; i++) w->ds[k][i] += dx[i];
        } else {
            double density = (double)w->nspk[k] / ((double)R * (double)Nin);
            if (!tr->lay[k].graded && !w->nb[k] && !w->incp[l] && soma__gather_wins(density, N))
                soma__dense_dweight_spikes(acc + ly->acc_w, w->idx[k], w->cnt[k], Nin, w->din[l], R, N);
            else
                soma__dense_dweightT_blas(acc + ly->acc_w, src, w->din[l], R, Nin, N);
            if (ly->grad_b) soma__dense_dbias(acc + ly->acc_b, w->din[l], R, N);
            soma__dense_dinput(w->ds[k], w->din[l], ly->proj->w, R, Nin, N, add);
        }
        if (ly->hk_in & SOMA_HOOK_BIT(SOMA_HOOK_GRAD)) hook_proj_in_grad(tr, w, l, b0, Bc);
        w->prof[4] += soma__now() - t1;
    }
}


static size_t hidden_neurons(const soma_trainer *tr) {
    size_t n = 0;
    for (size_t l = 0; l + 1 < tr->L; l++) n += has_rate(&tr->lay[l]) ? tr->lay[l].N : 0;
    return n;
}

static double hidden_spikes(const soma_trainer *tr, const work *w) {
    double n = 0;
    for (size_t l = 0; l + 1 < tr->L; l++) n += has_rate(&tr->lay[l]) ? w->spk_sum[l] : 0.0;
    return n;
}

static int check_batch(soma_trainer *tr, const float *x, size_t B) {
    if (!x || B == 0 || B > tr->Bmax)
        return fail(tr, SOMA_STATUS_INVALID, "batch of %zu samples; expected 1 to %zu", B, tr->Bmax);
    return SOMA_STATUS_OK;
}

/* Denormal floats (gradients below 1e-38, which appear deep in a trained
 * net) cost x86 cores dozens to hundreds of cycles per operation: the conv
 * example's late epochs ran 1.4x slower from them (2 170 against 3 000
 * samples/s, with identical losses to the printed digits when flushed).
 * While the trainer computes, its threads flush denormals to zero (FTZ and
 * DAZ, as the simulator does and as torch.set_flush_denormal(True) would);
 * the outermost call restores the caller's mode in every thread. */
static void fp_enter(soma_trainer *tr) {
    if (tr->ftz_depth++) return;
#if defined(__SSE2__) && (defined(__x86_64__) || defined(__i386__))
    unsigned csr = __builtin_ia32_stmxcsr();
    tr->ftz_csr = csr;
#pragma omp parallel num_threads(tr->threads)
    __builtin_ia32_ldmxcsr(csr | 0x8040u);
#endif
}

static void fp_leave(soma_trainer *tr) {
    if (--tr->ftz_depth) return;
#if defined(__SSE2__) && (defined(__x86_64__) || defined(__i386__))
    unsigned csr = tr->ftz_csr;
#pragma omp parallel num_threads(tr->threads)
    __builtin_ia32_ldmxcsr(csr);
#endif
}

static int train_grad_run(soma_trainer *tr, const float *x, int tc, const uint8_t *y, size_t B, double *loss,
                          size_t *correct) {
    int st = check_batch(tr, x, B);
    if (st) return st;
    layer *lo = &tr->lay[tr->L - 1];
    for (size_t b = 0; b < B; b++)
        if (y[b] >= lo->N)
            return fail(tr, SOMA_STATUS_INVALID, "label %u of sample %zu is not below the %zu output neurons", y[b], b, lo->N);
    size_t T = tr->T, nch = (B + tr->chunk - 1) / tr->chunk;
    tr->batch_counter++;
    tr->hooks.cancel = 0;
    if ((tr->hk_x || tr->hk_xin) && (st = hook_input(tr, &x, &tc, B))) return st;
    tr->x = x, tr->x_tc = tc, tr->x_B = B;
    double t0 = soma__now();
    if ((st = input_reserve(tr, tc ? B : T * B))) return st;
    input_forward(tr, x, tc ? B : T * B, tc);
    double t1 = soma__now();
    tr->prof[PROF_INPUT_FWD] += t1 - t0;
    memset(tr->acc, 0, tr->acc_size * nch * sizeof(float));
    float scale = 1.0f / (float)B;
    size_t hid = hidden_neurons(tr);
    float rate_grad = hid && tr->opt.rate_penalty != 0.0f ? tr->opt.rate_penalty / (float)((double)T * B * hid) : 0.0f;
#pragma omp parallel for num_threads(tr->threads) schedule(dynamic, 1)
    for (size_t c = 0; c < nch; c++) {
        work *w = &tr->work[thread_id()];
        size_t b0 = c * tr->chunk, Bc = b0 + tr->chunk > B ? B - b0 : tr->chunk;
        chunk_forward(tr, w, b0, Bc, B, tc);
        const float *s, *u;
        size_t us;
        output_views(tr, w, Bc, &s, &u, &us);
        int dv_used = 0;
        double tl = soma__now();
        tr->closs[c] = soma__loss(&tr->opt, s, u, us, T, Bc, lo->N, y + b0, scale, w->ds[tr->L - 1], w->dv, &dv_used);
        soma__readout(tr->data.readout, s, u, us, T, Bc, lo->N, w->pred);
        size_t ok = 0;
        for (size_t b = 0; b < Bc; b++) ok += w->pred[b] == y[b0 + b];
        tr->ccorrect[c] = ok;
        tr->cspk[c] = hidden_spikes(tr, w);
        w->prof[2] += soma__now() - tl;
        chunk_backward(tr, w, tr->acc + c * tr->acc_size, b0, Bc, B, tc, dv_used, rate_grad);
    }
    double t2 = soma__now();
    tr->prof[PROF_CHUNKS] += t2 - t1;
    if ((st = hook_cancelled(tr))) return st;
    double total = 0.0, spk = 0.0;
    size_t ok = 0;
    for (size_t c = 0; c < nch; c++) total += tr->closs[c], ok += tr->ccorrect[c], spk += tr->cspk[c];
    double rate = hid ? spk / ((double)T * B * hid) : 0.0;
    tr->last_rate = rate;
    total = total / (double)B + tr->opt.rate_penalty * rate;
    if (loss) *loss = total;
    if (correct) *correct = ok;
    if (!isfinite(total)) return fail(tr, SOMA_STATUS_NONFINITE, "loss is %g", total);

    /* Gradients: batch-wide input projection, then chunk accumulators in chunk order. */
    if ((st = input_backward(tr, x, tc ? B : T * B))) return st;
    double t3 = soma__now();
    tr->prof[PROF_INPUT_BWD] += t3 - t2;
    /* Sum the chunk accumulators into chunk 0's block: element by element in
     * chunk order (so the thread count does not matter), elements in parallel. */
    float *sum = tr->acc;
    size_t na = tr->acc_size;
    size_t nblk = (na + 4095) / 4096;
#pragma omp parallel for num_threads(tr->threads) schedule(static) if (nblk > 1)
    for (size_t k = 0; k < nblk; k++) {
        size_t i0 = k * 4096, i1 = i0 + 4096 > na ? na : i0 + 4096;
        for (size_t c = 1; c < nch; c++) {
            const float *restrict a = tr->acc + c * na;
            for (size_t i = i0; i < i1; i++) sum[i] += a[i];
        }
    }
    for (size_t l = 0; l < tr->L; l++) {
        layer *ly = &tr->lay[l];
        size_t N = ly->N;
        if (!ly->first && ly->conv) {
            const soma__proj *p = ly->proj;
            memcpy(ly->grad_w, sum + ly->acc_w, p->cout * p->cin * p->cv.kernel * p->cv.kernel * sizeof(float));
            if (ly->grad_b) memcpy(ly->grad_b, sum + ly->acc_b, p->cout * sizeof(float));
        } else if (!ly->first) {
            soma__transpose_ld(ly->grad_w, sum + ly->acc_w, ly->Nin, N, soma__ldw(N));
            if (ly->grad_b) memcpy(ly->grad_b, sum + ly->acc_b, N * sizeof(float));
        }
        for (size_t k = 0; k < ly->m->n_weights; k++) {
            size_t r = 0, c = 0;
            ly->m->weight_shape(ly->pop->prm, N, k, &r, &c);
            if (ly->grad_cell_w[k]) memcpy(ly->grad_cell_w[k], sum + ly->acc_cell_w[k], r * c * sizeof(float));
        }
        if (ly->recT) soma__transpose_ld(ly->grad_rec, sum + ly->acc_rec, N, N, soma__ldw(N));
        for (size_t e = 0; e < ly->nextra; e++) {
            const extra_proj *xp = &ly->extra[e];
            soma__transpose_ld(xp->grad_w, sum + xp->acc_w, xp->Nin, N, soma__ldw(N));
            if (xp->grad_b) memcpy(xp->grad_b, sum + xp->acc_b, N * sizeof(float));
        }
        for (size_t k = 0; k < ly->m->n_params; k++) {
            if (!ly->grad_prm[k]) continue;
            if (ly->pop->learn[k] == SOMA_LEARN_NEURON) memcpy(ly->grad_prm[k], sum + ly->acc_prm[k], N * sizeof(float));
            else {
                double g = 0.0;
                for (size_t i = 0; i < N; i++) g += sum[ly->acc_prm[k] + i];
                ly->grad_prm[k][0] = (float)g;
            }
        }
    }
    soma__train_mask_grad(tr->net, tr->grad); /* absent synapses of sparse projections: no gradient */
    if (tr->learn) /* frozen entries: no gradient (clipping's norm and soma_train_tensor see 0) */
        for (size_t i = 0; i < tr->nparams; i++)
            if (!tr->learn[i]) tr->grad[i] = 0.0f;
    tr->prof[PROF_REDUCE] += soma__now() - t3;
    return SOMA_STATUS_OK;
}

float soma_train_lr(const soma_train_opts *o, int epoch, long batch, long nbatches) {
    switch (o->schedule) {
    case SOMA_SCHEDULE_STEP: {
        int k = o->step_size > 0 ? epoch / o->step_size : 0;
        return o->lr * powf(o->gamma, (float)k);
    }
    case SOMA_SCHEDULE_COSINE: {
        double total = (double)o->epochs * (double)(nbatches > 0 ? nbatches : 1);
        double pos = (double)epoch * (double)(nbatches > 0 ? nbatches : 1) + (double)batch;
        if (pos > total) pos = total;
        return o->lr_min + 0.5f * (o->lr - o->lr_min) * (float)(1.0 + cos(3.14159265358979 * pos / total));
    }
    default:
        return o->lr;
    }
}

int soma_train_grad(soma_trainer *tr, const float *x, int tc, const uint8_t *y, size_t B, double *loss,
                    size_t *correct) {
    fp_enter(tr);
    int st = train_grad_run(tr, x, tc, y, B, loss, correct);
    fp_leave(tr);
    return st;
}

static int train_apply_run(soma_trainer *tr) {
    double t0 = soma__now();
    soma_net *net = tr->net;
    size_t n = tr->nparams;
    /* Per block: the squared norm (only when clipping) or just whether any
     * value is inf/NaN (an exponent of all ones: an integer test that
     * vectorizes). Blocks are fixed and summed in order, so the result does
     * not depend on the thread count. */
    enum { NBLK = 64 };
    double part[NBLK];
    int clip = tr->opt.clip_norm > 0.0f;
    size_t blk = (n + NBLK - 1) / NBLK;
#pragma omp parallel for num_threads(tr->threads) schedule(static)
    for (int k = 0; k < NBLK; k++) {
        size_t i0 = (size_t)k * blk, i1 = i0 + blk > n ? n : i0 + blk;
        const float *g = tr->grad;
        if (clip) {
            double acc = 0.0;
            for (size_t i = i0; i < i1; i++) acc += (double)g[i] * g[i];
            part[k] = acc;
        } else {
            uint32_t bad = 0;
            for (size_t i = i0; i < i1; i++) {
                uint32_t bits;
                memcpy(&bits, &g[i], sizeof bits);
                bad |= (bits & 0x7f800000u) == 0x7f800000u;
            }
            part[k] = bad ? INFINITY : 0.0;
        }
    }
    double sq = 0.0;
    for (int k = 0; k < NBLK; k++) sq += part[k];
    if (!isfinite(sq)) return fail(tr, SOMA_STATUS_NONFINITE, "gradient is not finite");
    if (clip) {
        double norm = sqrt(sq);
        if (norm > tr->opt.clip_norm) {
            float k = (float)(tr->opt.clip_norm / (norm + 1e-6));
            for (size_t i = 0; i < n; i++) tr->grad[i] *= k;
        }
    }
    float lr = soma_train_lr(&tr->opt, (int)tr->lr_epoch, tr->lr_batch, tr->lr_nbatches);
    soma__optim_step(&tr->optim, &tr->opt, lr, net->params, tr->grad, tr->learn, n);
    /* Learnable neuron parameters stay inside their valid range (projected step). */
    for (size_t l = 0; l < tr->L; l++) {
        soma__pop *p = tr->lay[l].pop;
        for (size_t k = 0; k < p->model->n_params; k++) {
            if (!p->prm_data[k]) continue;
            size_t cnt = p->learn[k] == SOMA_LEARN_NEURON ? p->size : 1;
            float lo = p->model->params[k].lo, hi = p->model->params[k].hi;
            const uint8_t *fr = tr->learn ? tr->learn + (p->prm_data[k] - net->params) : NULL;
            for (size_t j = 0; j < cnt; j++) {
                if (fr && !fr[j]) continue; /* frozen: exactly as it was */
                float v = p->prm_data[k][j];
                p->prm_data[k][j] = v < lo ? lo : v > hi ? hi : v;
            }
        }
    }
    sync_params(tr, 0);
    tr->w1T_stale = 1;
    tr->prof[PROF_APPLY] += soma__now() - t0;
    return SOMA_STATUS_OK;
}

static int train_epoch_run(soma_trainer *tr, const soma_dataset *ds, int epoch, soma_progress_fn cb, void *user,
                           soma_epoch_result *res) {
    memset(res, 0, sizeof *res);
    res->bad_batch = -1;
    if (!ds || ds->n == 0) return fail(tr, SOMA_STATUS_INVALID, "empty training set");
    if (ds->dim != tr->n_in)
        return fail(tr, SOMA_STATUS_INVALID, "samples have %zu values but the input population has %zu", ds->dim, tr->n_in);
    size_t B = tr->Bmax, n = ds->n;
    long nb = (long)((n + B - 1) / B);
    if (tr->opt.max_batches > 0 && nb > tr->opt.max_batches) nb = tr->opt.max_batches;
    size_t *perm = malloc(n * sizeof *perm);
    float *x = soma__alloc(soma_encode_size(&tr->data, ds, B) * sizeof(float));
    uint8_t *y = malloc(B);
    if (!perm || !x || !y) {
        free(perm), free(x), free(y);
        return fail(tr, SOMA_STATUS_NOMEM, "out of memory");
    }
    soma_shuffle(perm, n, tr->opt.seed, (uint64_t)epoch);
    double t0 = soma__now(), lsum = 0.0, rsum = 0.0;
    size_t ok = 0, seen = 0, first_samples = 0;
    int st = SOMA_STATUS_OK;
    tr->lr_epoch = epoch;
    tr->lr_nbatches = nb;
    for (long bi = 0; bi < nb; bi++) {
        size_t b0 = (size_t)bi * B, Bb = b0 + B > n ? n - b0 : B;
        int tc;
        double te = soma__now();
        st = soma_encode(&tr->data, ds, perm + b0, Bb, tr->opt.seed, (uint64_t)epoch, x, &tc);
        tr->prof[PROF_ENCODE] += soma__now() - te;
        if (st) {
            fail(tr, st, "cannot encode batch %ld of epoch %d", bi + 1, epoch + 1);
            break;
        }
        for (size_t b = 0; b < Bb; b++) y[b] = ds->y[perm[b0 + b]];
        double loss;
        size_t c;
        tr->lr_batch = bi;
        st = soma_train_grad(tr, x, tc, y, Bb, &loss, &c);
        if (st == SOMA_STATUS_OK) st = soma_train_apply(tr);
        if (st) {
            if (st == SOMA_STATUS_NONFINITE) res->bad_batch = bi;
            break;
        }
        lsum += loss * (double)Bb;
        rsum += tr->last_rate * (double)Bb;
        ok += c;
        seen += Bb;
        res->batches = bi + 1;
        if (bi == 0) {
            res->first_batch_seconds = soma__now() - t0;
            first_samples = Bb;
        }
        if (cb) {
            soma_progress p = {epoch, bi + 1, nb, lsum / (double)seen, (double)ok / (double)seen,
                               (double)seen / (soma__now() - t0), soma__now() - t0};
            if (cb(user, &p)) {
                st = fail(tr, SOMA_STATUS_CANCELLED, "cancelled at epoch %d, batch %ld", epoch + 1, bi + 1);
                break;
            }
        }
    }
    res->seconds = soma__now() - t0;
    res->loss = seen ? lsum / (double)seen : NAN;
    res->accuracy = seen ? (double)ok / (double)seen : 0.0;
    res->samples_per_second = res->seconds > 0 ? (double)seen / res->seconds : 0.0;
    double later = res->seconds - res->first_batch_seconds;
    res->samples_per_second_after_first = seen > first_samples && later > 0 ? (double)(seen - first_samples) / later : 0.0;
    res->spike_rate = seen ? rsum / (double)seen : 0.0;
    free(perm), free(x), free(y);
    return st;
}

/* Forward of a batch, then either predictions or recorded spikes. */
static int forward_batch_run(soma_trainer *tr, const float *x, int tc, size_t B, uint8_t *pred, size_t pop,
                             uint8_t *spikes) {
    /* Forward passes keep no per-batch gradient state, so any batch size works. */
    if (!x || B == 0) return fail(tr, SOMA_STATUS_INVALID, "empty batch");
    int st;
    size_t T = tr->T, nch = (B + tr->chunk - 1) / tr->chunk;
    size_t rec_l = (size_t)-1;
    if (spikes) {
        for (size_t l = 0; l < tr->L; l++)
            if (tr->lay[l].pop == &tr->net->pops[pop]) rec_l = l;
        if (rec_l == (size_t)-1) return fail(tr, SOMA_STATUS_INVALID, "population %zu has no spikes to record", pop);
    }
    tr->batch_counter++;
    tr->hooks.cancel = 0;
    if ((tr->hk_x || tr->hk_xin) && (st = hook_input(tr, &x, &tc, B))) return st;
    tr->x = x, tr->x_tc = tc, tr->x_B = B;
    if ((st = input_reserve(tr, tc ? B : T * B))) return st;
    input_forward(tr, x, tc ? B : T * B, tc);
    layer *lo = &tr->lay[tr->L - 1];
#pragma omp parallel for num_threads(tr->threads) schedule(dynamic, 1)
    for (size_t c = 0; c < nch; c++) {
        work *w = &tr->work[thread_id()];
        size_t b0 = c * tr->chunk, Bc = b0 + tr->chunk > B ? B - b0 : tr->chunk;
        chunk_forward(tr, w, b0, Bc, B, tc);
        if (pred) {
            const float *s, *u;
            size_t us;
            output_views(tr, w, Bc, &s, &u, &us);
            soma__readout(tr->data.readout, s, u, us, T, Bc, lo->N, pred + b0);
        }
        if (spikes) {
            size_t N = tr->lay[rec_l].N;
            /* Spikes are 0/1; a spike probability (UltraLIF) counts as a spike
             * from 0.5 on; other graded outputs record where they are not 0. */
            float cut = tr->lay[rec_l].m->rate_output ? 0.5f : 0.0f;
            int ge = tr->lay[rec_l].m->rate_output;
            for (size_t t = 0; t < T; t++)
                for (size_t i = 0; i < Bc * N; i++) {
                    float v = w->s[rec_l][t * Bc * N + i];
                    spikes[(t * B + b0) * N + i] = ge ? v >= cut : v != 0.0f;
                }
        }
    }
    return hook_cancelled(tr);
}

static int forward_batch(soma_trainer *tr, const float *x, int tc, size_t B, uint8_t *pred, size_t pop, uint8_t *spikes) {
    fp_enter(tr);
    int st = forward_batch_run(tr, x, tc, B, pred, pop, spikes);
    fp_leave(tr);
    return st;
}

int soma_train_predict(soma_trainer *tr, const float *x, int tc, size_t B, uint8_t *pred) {
    return forward_batch(tr, x, tc, B, pred, 0, NULL);
}

int soma_train_record(soma_trainer *tr, const float *x, int tc, size_t B, size_t pop, uint8_t *spikes) {
    return forward_batch(tr, x, tc, B, NULL, pop, spikes);
}

int soma_train_count_samples(soma_trainer *tr, const soma_dataset *ds, const size_t *idx, size_t n, size_t pop,
                             uint32_t *counts) {
    if (!tr) return SOMA_STATUS_INVALID;
    const soma_train_opts *o = &tr->opt;
    const soma_net *net = tr->net;
    if (!ds || pop >= net->npops || (n && (!idx || !counts))) return SOMA_STATUS_INVALID;
    const soma_data_opts *d = &tr->data;
    size_t T = (size_t)d->steps, C = net->pops[pop].size, B = 64;
    float *x = soma__alloc(soma_encode_size(d, ds, B) * sizeof(float));
    uint8_t *spk = malloc(T * B * C);
    int rc = x && spk ? 0 : SOMA_STATUS_NOMEM;
    for (size_t b0 = 0; b0 < n && !rc; b0 += B) {
        size_t Bb = b0 + B > n ? n - b0 : B;
        int tc;
        /* The stream soma_train_evaluate encodes test samples with. */
        if ((rc = soma_encode(d, ds, idx + b0, Bb, o->seed, SOMA_EVAL_STREAM, x, &tc))) break;
        if ((rc = soma_train_record(tr, x, tc, Bb, pop, spk))) break;
        memset(counts + b0 * C, 0, Bb * C * sizeof *counts);
        for (size_t t = 0; t < T; t++)
            for (size_t b = 0; b < Bb; b++)
                for (size_t c = 0; c < C; c++) counts[(b0 + b) * C + c] += spk[(t * Bb + b) * C + c];
    }
    free(x);
    free(spk);
    return rc;
}

static int train_evaluate_run(soma_trainer *tr, const soma_dataset *ds, size_t limit, double *accuracy,
                              double *samples_per_second) {
    if (!ds || ds->n == 0) return fail(tr, SOMA_STATUS_INVALID, "empty data set");
    if (ds->dim != tr->n_in)
        return fail(tr, SOMA_STATUS_INVALID, "samples have %zu values but the input population has %zu", ds->dim, tr->n_in);
    /* With a time-constant input larger batches amortize packing the input
     * weights for the GEMM; time-varying inputs keep the training batch. */
    size_t n = limit && limit < ds->n ? limit : ds->n;
    size_t B = tr->data.encoding == SOMA_ENCODING_DIRECT && tr->Bmax < 512 ? 512 : tr->Bmax;
    float *x = soma__alloc(soma_encode_size(&tr->data, ds, B) * sizeof(float));
    size_t *idx = malloc(B * sizeof *idx);
    uint8_t *pred = malloc(B);
    if (!x || !idx || !pred) {
        free(x), free(idx), free(pred);
        return fail(tr, SOMA_STATUS_NOMEM, "out of memory");
    }
    double t0 = soma__now();
    size_t ok = 0;
    int st = SOMA_STATUS_OK;
    for (size_t b0 = 0; b0 < n && !st; b0 += B) {
        size_t Bb = b0 + B > n ? n - b0 : B;
        for (size_t b = 0; b < Bb; b++) idx[b] = b0 + b;
        int tc;
        /* Evaluation draws its encoding randomness from a stream apart from training epochs. */
        st = soma_encode(&tr->data, ds, idx, Bb, tr->opt.seed, SOMA_EVAL_STREAM, x, &tc);
        if (st) {
            fail(tr, st, "cannot encode test samples %zu to %zu", b0, b0 + Bb);
            break;
        }
        st = soma_train_predict(tr, x, tc, Bb, pred);
        for (size_t b = 0; b < Bb && !st; b++) ok += pred[b] == ds->y[b0 + b];
    }
    double dt = soma__now() - t0;
    if (accuracy) *accuracy = (double)ok / (double)n;
    if (samples_per_second) *samples_per_second = dt > 0 ? (double)n / dt : 0.0;
    free(x), free(idx), free(pred);
    return st;
}

int soma_train_apply(soma_trainer *tr) {
    fp_enter(tr);
    int st = train_apply_run(tr);
    fp_leave(tr);
    return st;
}

int soma_train_epoch(soma_trainer *tr, const soma_dataset *ds, int epoch, soma_progress_fn cb, void *user,
                     soma_epoch_result *res) {
    fp_enter(tr);
    int st = train_epoch_run(tr, ds, epoch, cb, user, res);
    fp_leave(tr);
    return st;
}

int soma_train_evaluate(soma_trainer *tr, const soma_dataset *ds, size_t limit, double *accuracy,
                        double *samples_per_second) {
    fp_enter(tr);
    int st = train_evaluate_run(tr, ds, limit, accuracy, samples_per_second);
    fp_leave(tr);
    return st;
}

int soma_train_sync(soma_trainer *tr) {
    if (!tr) return SOMA_STATUS_INVALID;
    sync_params(tr, 1);
    tr->w1T_stale = 1;
    return SOMA_STATUS_OK;
}

int soma_train_tensor(soma_trainer *tr, size_t i, soma_tensor *out) {
    int st = soma_net_tensor(tr->net, i, out);
    if (st) return st;
    out->grad = tr->grad + tr->net->tensors[i].offset;
    return SOMA_STATUS_OK;
}

int soma_train_set_learn_mask(soma_trainer *tr, size_t i, const uint8_t *mask) {
    if (!tr) return SOMA_STATUS_INVALID;
    soma_net *net = tr->net;
    if (i >= net->ntensors)
        return fail(tr, SOMA_STATUS_INVALID, "learn mask: tensor %zu; the net has %zu tensors", i, net->ntensors);
    const soma__tensor *t = &net->tensors[i];
    size_t n = t->rows * t->cols;
    if (!tr->learn) {
        if (!mask) return SOMA_STATUS_OK; /* everything learns already */
        if (!(tr->learn = malloc(tr->nparams ? tr->nparams : 1)))
            return fail(tr, SOMA_STATUS_NOMEM, "learn mask: out of memory for %zu entries", tr->nparams);
        memset(tr->learn, 1, tr->nparams);
    }
    uint8_t *l = tr->learn + t->offset;
    for (size_t j = 0; j < n; j++) l[j] = mask ? mask[j] != 0 : 1;
    return SOMA_STATUS_OK;
}
