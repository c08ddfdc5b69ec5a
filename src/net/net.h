/* net.h — internal layout of the one network description that every
 * executor compiles: populations (a model, a size, an optional shape,
 * parameters as plain values or as expressions with units), projections
 * (dense, conv, or sparse synapses drawn by a connector), external inputs,
 * the time step and named constants; plus the flat parameter buffer that
 * the trainer and its optimizer share. Executors copy what they need into
 * plans of their own (see docs/architecture.md), so a net may be changed or
 * freed after an executor is created. */
#ifndef SOMA_NET_H
#define SOMA_NET_H
#include "soma.h"
#include "core/value.h"
#include "models/model.h"
#include "proj/connect.h"
#include "proj/conv.h"

/* A value a user wrote as an expression, with where it came from
 * ("file.yaml:12"), for messages when it is evaluated per neuron or synapse. */
typedef struct soma__value {
    soma__expr *e;
    double scale;   /* turns the expression's internal value into the target unit */
    char where[96]; /* "" when set through the API */
    char text[128]; /* the source text, shortened, for messages */
} soma__value;

typedef struct soma__pop {
    char name[64];
    const soma_model *model;
    size_t size;
    float prm[SOMA_MAX_PARAMS];         /* value set for the population */
    soma_learn learn[SOMA_MAX_PARAMS];  /* how each parameter is learned */
    float *prm_data[SOMA_MAX_PARAMS];   /* learnable: its tensor (1 or size floats) in net->params */
    int recurrent;
    float *rec_w;                       /* recurrent weight [size][size] (row = target) */
    size_t rec_proj;                    /* unused: recurrent weights live on the pop */
    size_t shape[3], ndims;             /* (C, H, W) padded with 1s; ndims 1..3 as set */
    float *cw[SOMA_MAX_WEIGHTS];        /* cell models: the model's own weight tensors */
    /* Values that differ per neuron (expressions with r, i or a random
     * draw), evaluated by the executor that supports them; NULL: prm[k]. */
    soma__value *val[SOMA_MAX_PARAMS];
    soma__value *init[SOMA_MAX_STATE];  /* initial state values, or NULL: the model's default */
    uint32_t *src_ids;                  /* spike_source: neuron of each spike */
    double *src_t;                      /* its time (ms) */
    size_t n_src;
    double *st_t, *st_v;                /* step input: times (ms) and values */
    size_t n_st;
} soma__pop;

typedef struct soma__proj {
    size_t from, to;
    int bias;
    float *w; /* dense: [to.size][from.size]; conv: [cout][cin*k*k] */
    float *b; /* dense: [to.size]; conv: [cout]; or NULL */
    int conv; /* 1: a convolution with the geometry below */
    soma_conv cv;
    size_t cin, ih, iw, cout, oh, ow, ph, pw; /* input, convolution output and pooled output sizes */
    /* Sparse projections (synapses drawn by a connector, weights and delays
     * as expressions per synapse): */
    int sparse;
    soma_connector c;  /* c.path points at path below */
    char *path;
    soma__value wv, dv; /* weight (target weight unit), delay (ms) */
    int port;           /* SOMA_PORT_BY_SIGN or a port index; dense: 0 unless has_port */
    /* Dense projections given a delay or a port of their own
     * (soma_net_proj_set_delay, soma_net_proj_set_port, `delay:` and `port:`
     * in a file). Without them the simulator aligns the projection with the
     * trainer's same-step semantics (delay = start(to) - start(from), port 0);
     * with them the delay is physical (it takes no part in that alignment)
     * and the trainer refuses the projection. */
    int has_delay;      /* 1: dly_ms was set */
    double dly_ms;      /* the delay (ms, >= dt when set); the simulator rounds it to whole steps */
    int has_port;       /* 1: port was set (a port index or SOMA_PORT_BY_SIGN) */
    /* A sparse projection the trainer made dense (train/sparse.c): 1 at
     * [to][from] where the connector drew a synapse, 0 where the weight
     * stays exactly 0 (its gradient is masked); NULL for other projections.
     * Owned by the net. */
    uint8_t *mask;
} soma__proj;

/* An independent Poisson input to every neuron of a population. */
typedef struct soma__drive {
    size_t pop;
    double rate_hz;
    soma__value w;
    int port;
} soma__drive;


typedef struct soma__tensor {
    char name[160];
    float *data;
    size_t rows, cols;
    size_t offset; /* position in net->params */
} soma__tensor;

struct soma_net {
    soma__pop *pops;
    size_t npops, cap_pops;
    soma__proj *projs;
    size_t nproj, cap_proj;
    float *params;        /* all learnable scalars, one aligned buffer */
    size_t nparams;
    soma__tensor *tensors;
    size_t ntensors;
    int initialised;      /* weights drawn */
    double dt;            /* time step, ms (default 0.1): prepare(dt) derives each model's discrete constants */
    soma__drive *drives;
    size_t ndrives;
    soma__sym *syms;      /* named constants (soma_net_define) */
    size_t nsyms;
    char where[96];       /* origin given to the next values (soma__net_where) */
    char errmsg[512];
};

/* Rows and columns of a projection's weight tensor. */
static inline size_t soma__proj_rows(const soma_net *net, const soma__proj *p) {
    return p->conv ? p->cout : net->pops[p->to].size;
}
static inline size_t soma__proj_cols(const soma_net *net, const soma__proj *p) {
    return p->conv ? p->cin * p->cv.kernel * p->cv.kernel : net->pops[p->from].size;
}

/* Values set from now on remember `where` (e.g. "net.yaml:14"); NULL clears. */
void soma__net_where(soma_net *net, const char *where);
/* soma_net_connect with the origins ("file:line") of the weight and the
 * delay (NULL: the current one), named by their messages now and at build. */
int soma__net_connect_at(soma_net *net, size_t from, size_t to, const soma_connector *c, const char *weight,
                         const char *delay, int port, size_t *index, const char *where_w, const char *where_d);
/* Index of a model's state variable or port by name, or -1. */
int soma__model_state_index(const soma_model *m, const char *name);
int soma__model_port_index(const soma_model *m, const char *name);
/* The model's state variable names as "a, b, c" ("(none)" if it has none). */
void soma__model_state_list(const soma_model *m, char *buf, size_t cap);
/* Append a projection (the net takes over what it holds). */
int soma__net_add_proj(soma_net *net, const soma__proj *pr);
/* Free what a value holds (not the value itself). */
void soma__value_free(soma__value *v);
/* The convolution kernels' view of a conv projection (path AUTO), borrowing
 * its weights: valid until the net changes shape. */
static inline soma__conv_plan soma__proj_conv_plan(const soma__proj *p) {
    return (soma__conv_plan){.cv = p->cv, .cin = p->cin, .ih = p->ih, .iw = p->iw, .cout = p->cout, .oh = p->oh,
                             .ow = p->ow, .ph = p->ph, .pw = p->pw, .w = p->w, .b = p->b,
                             .path = SOMA__CONV_PATH_AUTO};
}

/* Lay out net->params and the tensor table if not yet done. */
int soma__net_alloc(soma_net *net);
/* Set the net's message (printf-style) and return status. */
int soma__net_fail(soma_net *net, int status, const char *fmt, ...);
/* Aligned allocation (64 bytes), zeroed; free with free(). */
void *soma__alloc(size_t bytes);
#endif
