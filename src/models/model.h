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

#define SOMA_MAX_PARAMS 16 /* adex has 14 */
#define SOMA_MAX_STATE 8
#define SOMA_MAX_WEIGHTS 12
#define SOMA_MAX_DERIVED 40 /* derived constants per model (the simulator's table holds 2*SOMA_MAX_PARAMS + 8) */

/* Everything one step of a model needs besides state and data. */
typedef struct soma_model_args {
    const float *prm[SOMA_MAX_PARAMS]; /* per-neuron values [N] of each parameter, descriptor order */
    int reset;                         /* value of the enum parameter "reset" if the model has one */
    int surrogate;                     /* soma_surrogate */
    float surrogate_param;             /* its parameter */
    float *scratch;                    /* >= 2*N floats of per-call scratch */
    int din_accumulate;                /* backward adds into din instead of overwriting it */
    uint64_t rng_key;                  /* key of this batch's random draws (stochastic models) */
    size_t row0;                       /* index in the batch of the first row of this call */
    size_t step;                       /* time step t of this call */
    /* Cell models (n_weights > 0) only (`in`: every model): */
    const float *w[SOMA_MAX_WEIGHTS];  /* the population's own weight tensors, weight_names order */
    float *dw[SOMA_MAX_WEIGHTS];       /* backward: accumulate dL/dw here (NULL in forward) */
    const float *in;                   /* backward: the input of this step (forward's `in`) */
    float *work;                       /* scratch_floats(N) * B floats of per-call scratch */
    /* Models with prepare only: */
    float dt;                          /* time step of the net, ms */
    const float *const *drv;           /* [n_derived] constants prepare derived for dt: [N] each */
} soma_model_args;

/* One step of a population in the event-driven simulator (batch of one,
 * physical units: ms, mV, pA, pF, nS, Hz). */
typedef struct soma_sim_args {
    const float *const *prm; /* [n_params] per-neuron parameter values [N], in each descriptor's unit */
    const float *const *drv; /* [n_derived] constants from prepare: [N] each, or [1] when uniform */
    int uniform;             /* every parameter is the same for all N neurons: use drv[k][0] */
    float dt;                /* time step, ms */
    uint64_t step;           /* index of this step (time step*dt at its start) */
    uint64_t rng_key;        /* stochastic models draw with soma__hash_unit(rng_key, neuron, step) */
    const float *ext;        /* NULL, or [N] external input this step: a current (pA) added to I_e; the rate (Hz) for poisson */
} soma_sim_args;

struct soma_model {
    const char *name;
    const soma_param_desc *params;
    size_t n_params;
    size_t n_state;                 /* state variables per neuron */
    const char *const *state_names; /* n_state names, [0] = membrane */
    int spiking;                    /* 0 for the input pseudo-model */
    int graded;                     /* outputs are real values, not 0/1 spikes: consumers use dense products */
    int rate_output;                /* graded outputs that are spike probabilities (count in rate penalties) */
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
    /* Optional, for cell models (CfC, LTC, ELM, L2MU...) that own weight
     * matrices besides the incoming projection. Shapes and initial values
     * may depend on the population's set parameter values prm[] (so an
     * integer parameter such as an order can size a matrix). Tensors are
     * named "<pop>.<weight name>" and live in the net's parameter buffer. */
    size_t n_weights;
    const char *const *weight_names;
    void (*weight_shape)(const float *prm, size_t N, size_t k, size_t *rows, size_t *cols);
    void (*weight_init)(const float *prm, size_t N, size_t k, float *w, soma_rng *rng);
    /* Width (floats per batch row) of state variable k; NULL means N for all.
     * State 0 must have width N (it is the membrane read by losses). */
    size_t (*state_width)(const float *prm, size_t N, size_t k);
    /* Floats of scratch per batch row a call needs in a->work; NULL means 0. */
    size_t (*scratch_floats)(const float *prm, size_t N);
    /* ---- Simulator side (NULL sim_step: the model is for the trainer only;
     * NULL forward: for the simulator only). State variable k is an array
     * [N] of floats in unit state_units[k]; a refractory counter is a state
     * variable too (steps left, as a float). ---- */
    size_t n_ports;                    /* synaptic input ports; port 0 takes positive weights, 1 negative, by default */
    const char *const *port_names;     /* e.g. {"e", "i"} */
    const char *weight_unit;           /* unit of a synaptic weight onto this model ("mV", "pA", "nS") */
    const char *const *state_units;    /* n_state units ("mV", "pA", "nS", "" ...) */
    size_t n_derived;                  /* derived constants (propagators) prepare writes */
    /* Derived constants for time step dt (ms) from the parameters: drv[k]
     * has N entries, or 1 when uniform (then prm[j][0] is every neuron's
     * value). Both executors call it, with the same parameters and dt, so
     * both run on the same float constants: the simulator when it builds its
     * plan (uniform when it can), the trainer (uniform = 0, per-neuron
     * parameter arrays) when it builds its plan and again whenever
     * parameters change (soma_train_sync; after an optimizer step when one
     * of the model's parameters is learned). It sits in the shared part of
     * the vtable: a model with only a training half may have one too (lif
     * derives beta from tau_m). */
    void (*prepare)(const float *const *prm, size_t N, float dt, int uniform, float *const *drv);
    /* Optional: refuse a combination of set values that no single parameter
     * range can (e.g. lif's tau_m together with beta): 0 if fine, else
     * writes why into err (cap bytes) and returns SOMA_STATUS_INVALID.
     * prm[k] is the population's set value of parameter k; learn[k] its
     * learn mode (0 none). */
    int (*check)(const float *prm, const soma_learn *learn, char *err, size_t cap);
    /* Default initial state (before the user's initial values), e.g. V = E_L;
     * the trainer starts every sample from it too (else from zeros). */
    void (*sim_init)(const float *const *prm, float *const *state, size_t N);
    /* Advance neurons [i0, i1) by one step: in[p] ([N]) holds the summed
     * weights arriving on port p at this step, and the model consumes them:
     * it sets in[p][i] to 0 after reading it (one pass over the buffer
     * instead of a separate clearing pass). spk[i] ([N]) gets 1 for a
     * spike, else 0. Each model's header says where in the step arriving
     * weights are applied. Arrays are indexed by the neuron's index in the
     * population; i0 is a multiple of 16. */
    void (*sim_step)(const soma_sim_args *a, float *const *state, float *const *in, uint8_t *spk, size_t i0,
                     size_t i1);
};

/* Width of state variable k of model m for a population of N neurons with set values prm. */
static inline size_t soma__state_width(const soma_model *m, const float *prm, size_t N, size_t k) {
    return m->state_width ? m->state_width(prm, N, k) : N;
}

/* 1 if the trainer can run model m: it has a forward step, or it is the
 * input pseudo-model (which the trainer fills with data). Of the
 * simulator's models (src/models/sim_*.c) iaf_psc_delta, iaf_psc_exp and
 * lif_cuba have one too; the others have forward NULL. */
extern const soma_model soma__model_input;
static inline int soma__model_trainable(const soma_model *m) {
    return m && (m->forward != NULL || m == &soma__model_input);
}
/* The names of the trainable models, ", "-separated, into buf (truncated to cap). */
void soma__model_trainable_names(char *buf, size_t cap);

/* Index of parameter `name` in the model's descriptors, or -1. */
int soma__model_param_index(const soma_model *m, const char *name);

/* Surrogate derivative of a whole row: out[i] = dS/dU at x[i]. */
void soma__surrogate_row(int which, float param, const float *x, float *out, size_t n);

/* The same for one value, inline so that a model's backward loop can use it
 * directly: the switch is loop-invariant, so the compiler hoists it out and
 * vectorizes each case (see surrogate.c for the formulas). */
static inline __attribute__((always_inline)) float soma__surrogate(int which, float p, float x) {
    switch (which) {
    case SOMA_SURROGATE_FAST_SIGMOID: {
        float d = p * __builtin_fabsf(x) + 1.0f;
        return 1.0f / (d * d);
    }
    case SOMA_SURROGATE_ATAN: {
        float z = 3.14159265358979f * 0.5f * p * x;
        return 0.5f * p / (1.0f + z * z);
    }
    case SOMA_SURROGATE_SIGMOID: {
        float e = __builtin_expf(-p * __builtin_fabsf(x));
        float d = 1.0f + e;
        return p * e / (d * d);
    }
    case SOMA_SURROGATE_TRIANGULAR: {
        float v = 1.0f - __builtin_fabsf(x) / p;
        return (v > 0.0f ? v : 0.0f) / p;
    }
    default:
        return 1.0f;
    }
}

/* Call ROW(S) with S a compile-time constant equal to `which`, so that an
 * always-inline row function specializes its surrogate and vectorizes. */
#define SOMA_SURROGATE_DISPATCH(which, ROW)          \
    do {                                             \
        switch (which) {                             \
        case SOMA_SURROGATE_FAST_SIGMOID: ROW(0); break; \
        case SOMA_SURROGATE_ATAN: ROW(1); break;     \
        case SOMA_SURROGATE_SIGMOID: ROW(2); break;  \
        case SOMA_SURROGATE_TRIANGULAR: ROW(3); break; \
        default: ROW(4); break;                      \
        }                                            \
    } while (0)

extern const soma_model soma__model_input;
extern const soma_model soma__model_lif;
extern const soma_model soma__model_synaptic;
extern const soma_model soma__model_ann;
extern const soma_model soma__model_ultralif;
extern const soma_model soma__model_ultradlif;
extern const soma_model soma__model_alif;
extern const soma_model soma__model_meta_lif;
extern const soma_model soma__model_cfc;
extern const soma_model soma__model_ltc;
extern const soma_model soma__model_l2mu;
/* L2MU's discretised Legendre system: Ā [d][d], B̄ [d] in double from order d,
 * window theta (steps) and zoh (euler = 0) or Euler; ws holds 5(d+1)^2 doubles. */
void soma__l2mu_discretize(double *abar, double *bbar, size_t d, double theta, int euler, double *ws);
extern const soma_model soma__model_elm;
/* Simulator models (src/models/sim_*.c). */
extern const soma_model soma__model_iaf_psc_delta;
extern const soma_model soma__model_iaf_psc_exp;
extern const soma_model soma__model_iaf_psc_alpha;
extern const soma_model soma__model_lif_coba;
extern const soma_model soma__model_lif_cuba;
extern const soma_model soma__model_izhikevich;
extern const soma_model soma__model_adex;
extern const soma_model soma__model_poisson;
extern const soma_model soma__model_spike_source;
#endif
