/* model.h — the neuron-model vtable shared by every executor.
 *
 * Each model lives in one file (src/models/<name>.c) with its equations in
 * the header comment, and registers itself in registry.c. A model works on a
 * batch of B instances of a population of N neurons for one time step; the
 * per-neuron loops live inside the model file, so there is no function
 * pointer call per neuron.
 *
 * State layout: n_state variables, each a [B][N] float array. The trainer
 * keeps one state snapshot per time step (the tape) so backward can read
 * state t-1 and state t without recomputation. State variable 0 is always
 * the membrane potential U (read by membrane losses and readouts).
 */
#ifndef SOMA_MODEL_H
#define SOMA_MODEL_H
#include <stddef.h>
#include "soma.h"

#define SOMA_MAX_PARAMS 8
#define SOMA_MAX_STATE 4

/* Everything one step of a model needs besides state and data. */
typedef struct soma_model_args {
    const float *prm[SOMA_MAX_PARAMS]; /* per-neuron values [N] of each parameter, descriptor order */
    int reset;                         /* value of the enum parameter "reset" if the model has one */
    int surrogate;                     /* soma_surrogate */
    float surrogate_param;             /* its parameter */
    float *scratch;                    /* >= 2*N floats of per-call scratch */
} soma_model_args;

struct soma_model {
    const char *name;
    const soma_param_desc *params;
    size_t n_params;
    size_t n_state;                 /* state variables per neuron */
    const char *const *state_names; /* n_state names, [0] = membrane */
    int spiking;                    /* 0 for the input pseudo-model */
    /* One forward step: state_t = f(state_{t-1}, in); s = spikes at t (0/1).
     * prev and cur are n_state arrays of [B][N]; they must not alias. */
    void (*forward)(const soma_model_args *a, const float *const *prev, float *const *cur, float *s,
                    const float *in, size_t B, size_t N);
    /* One backward step. dstate[k] ([B][N]) holds dL/dstate_t[k] coming from
     * step t+1 on entry and dL/dstate_{t-1}[k] on exit. ds = dL/dS_t, dv =
     * extra dL/dU_t (may be NULL). din receives dL/din_t. dprm[k] (NULL if
     * not learnable) accumulates dL/dparam per neuron [N]. */
    void (*backward)(const soma_model_args *a, const float *const *prev, const float *const *cur,
                     float *const *dstate, const float *ds, const float *dv, float *din,
                     float *const *dprm, size_t B, size_t N);
};

/* Index of parameter `name` in the model's descriptors, or -1. */
int soma__model_param_index(const soma_model *m, const char *name);

/* Surrogate derivative of a whole row: out[i] = dS/dU at x[i]. */
void soma__surrogate_row(int which, float param, const float *x, float *out, size_t n);

extern const soma_model soma__model_input;
extern const soma_model soma__model_lif;
extern const soma_model soma__model_synaptic;
#endif
