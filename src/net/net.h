/* net.h — internal layout of a network: populations, dense projections and
 * one flat parameter buffer that every executor and the optimizer share. */
#ifndef SOMA_NET_H
#define SOMA_NET_H
#include "soma.h"
#include "models/model.h"

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
} soma__pop;

typedef struct soma__proj {
    size_t from, to;
    int bias;
    float *w; /* [to.size][from.size] */
    float *b; /* [to.size] or NULL */
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
    char errmsg[512];
};

/* Lay out net->params and the tensor table if not yet done. */
int soma__net_alloc(soma_net *net);
/* Set the net's message (printf-style) and return status. */
int soma__net_fail(soma_net *net, int status, const char *fmt, ...);
/* Aligned allocation (64 bytes), zeroed; free with free(). */
void *soma__alloc(size_t bytes);
#endif
