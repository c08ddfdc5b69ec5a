/* simnet.h — internal layout of a simulator network description: what
 * soma_simnet_* calls record and soma_sim_create builds from. Values stay
 * expressions until the build, which evaluates them per neuron or synapse. */
#ifndef SOMA_SIMNET_H
#define SOMA_SIMNET_H
#include "models/model.h"
#include "sim/sim.h"

/* An expression with where it came from ("file.yaml:12"), for messages. */
typedef struct sn_value {
    soma__expr *e;
    double scale;   /* turns the expression's internal value into the target unit */
    char where[96]; /* "" when set through the API */
    char text[128]; /* the source text, shortened, for messages */
} sn_value;

typedef struct sn_pop {
    char name[64];
    const soma_model *m;
    size_t size;
    sn_value *prm[SOMA_MAX_PARAMS];  /* NULL: the descriptor's default */
    sn_value *init[SOMA_MAX_STATE];  /* NULL: the model's sim_init */
    uint32_t *src_ids;               /* spike_source: neuron of each spike */
    double *src_t;                   /* its time (ms) */
    size_t n_src;
    double *st_t, *st_v;             /* step input: times (ms) and values */
    size_t n_st;
} sn_pop;

typedef struct sn_proj {
    size_t from, to;
    soma_connector c;  /* c.path points at path below */
    char *path;
    sn_value w, d;     /* weight (target weight unit), delay (ms) */
    int port;          /* SOMA_PORT_BY_SIGN or a port index */
} sn_proj;

typedef struct sn_drive {
    size_t pop;
    double rate_hz;
    sn_value w;
    int port;
} sn_drive;

struct soma_simnet {
    double dt;
    sn_pop *pops;
    size_t npops;
    sn_proj *projs;
    size_t nproj;
    sn_drive *drives;
    size_t ndrives;
    soma__sym *syms;  /* named constants (soma__simnet_define) */
    size_t nsyms;
    char where[96];   /* origin given to the next values (soma__simnet_where) */
    char errmsg[512];
};

/* Values set from now on remember `where` (e.g. "net.yaml:14"); NULL clears. */
void soma__simnet_where(soma_simnet *sn, const char *where);
/* soma_simnet_connect with the origins ("file:line") of the weight and the
 * delay (NULL: the current one), named by their messages now and at build. */
int soma__simnet_connect_at(soma_simnet *sn, size_t from, size_t to, const soma_connector *c, const char *weight,
                            const char *delay, int port, size_t *index, const char *where_w, const char *where_d);
/* Define a named constant usable in later expressions (e.g. J = 0.1mV). */
int soma__simnet_define(soma_simnet *sn, const char *name, const char *expr);
/* Index of a model's state variable or parameter by name, or -1. */
int soma__model_state_index(const soma_model *m, const char *name);
/* The model's state variable names as "a, b, c" ("(none)" if it has none). */
void soma__model_state_list(const soma_model *m, char *buf, size_t cap);
/* Port index of a model by name ("e", "i"), or -1. */
int soma__model_port_index(const soma_model *m, const char *name);
#endif
