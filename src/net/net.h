/* net.h — internal layout of a network: populations, dense projections and
 * one flat parameter buffer that every executor and the optimizer share. */
#ifndef SOMA_NET_H
#define SOMA_NET_H
#include "soma.h"
#include "models/model.h"
#include "proj/conv.h"

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
} soma__pop;

typedef struct soma__proj {
    size_t from, to;
    int bias;
    float *w; /* dense: [to.size][from.size]; conv: [cout][cin*k*k] */
    float *b; /* dense: [to.size]; conv: [cout]; or NULL */
    int conv; /* 1: a convolution with the geometry below */
    soma_conv cv;
    size_t cin, ih, iw, cout, oh, ow, ph, pw; /* input, convolution output and pooled output sizes */
} soma__proj;


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
    char errmsg[512];
};

/* Rows and columns of a projection's weight tensor. */
static inline size_t soma__proj_rows(const soma_net *net, const soma__proj *p) {
    return p->conv ? p->cout : net->pops[p->to].size;
}
static inline size_t soma__proj_cols(const soma_net *net, const soma__proj *p) {
    return p->conv ? p->cin * p->cv.kernel * p->cv.kernel : net->pops[p->from].size;
}

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
