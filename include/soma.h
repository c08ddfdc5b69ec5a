/* soma.h — the one public header of libsoma, an engine for networks of neurons.
 *
 * Usage sketch (train the network of an experiment file):
 *
 *   soma_net *net; soma_data_opts dopt; soma_train_opts topt;
 *   char err[512];
 *   if (soma_experiment_load(path, &net, &dopt, &topt, err, sizeof err)) { puts(err); }
 *   soma_dataset train, test;
 *   soma_data_load(&dopt, &train, &test, err, sizeof err);
 *   soma_trainer *tr;
 *   soma_train_create(&tr, net, &topt, &dopt);
 *   for (int e = 0; e < topt.epochs; e++) soma_train_epoch(tr, &train, e, NULL, NULL, &res);
 *   soma_train_evaluate(tr, &test, 0, &acc, NULL);
 *   soma_model_save("model.soma", net, &dopt, &topt, err, sizeof err);
 *   soma_train_free(tr); soma_net_free(net);
 *
 * Conventions: functions return an int status (0 = ok, negative = error,
 * see soma_strerror). Objects keep their last detailed message
 * (soma_net_errmsg, soma_train_errmsg); functions without an object take a
 * caller-owned error buffer. The library never prints and never exits.
 * Structs here may grow at their end; fields are never reordered.
 */
#ifndef SOMA_H
#define SOMA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SOMA_VERSION_STRING "0.1.0"

/* ---------------------------------------------------------------- status */
#define SOMA_STATUS_LIST(X)                                                   \
    X(OK, 0, "ok")                                                            \
    X(NOMEM, -1, "out of memory")                                             \
    X(INVALID, -2, "invalid argument")                                        \
    X(IO, -3, "input/output error")                                           \
    X(FORMAT, -4, "malformed file")                                           \
    X(VERSION, -5, "unsupported file format version")                         \
    X(CHECKSUM, -6, "checksum mismatch (file corrupted)")                     \
    X(NOTFOUND, -7, "not found")                                              \
    X(NONFINITE, -8, "non-finite value (NaN or inf)")                         \
    X(CANCELLED, -9, "cancelled")                                             \
    X(UNSUPPORTED, -10, "unsupported configuration")

typedef enum soma_status {
#define SOMA_X_ENUM(name, code, msg) SOMA_STATUS_##name = code,
    SOMA_STATUS_LIST(SOMA_X_ENUM)
#undef SOMA_X_ENUM
} soma_status;

/* Human-readable text of a status code ("unknown status" if unknown). */
const char *soma_strerror(int status);
/* Symbolic name of a status code, e.g. "SOMA_STATUS_IO". */
const char *soma_status_name(int status);

/* ----------------------------------------------------------------- clock */
/* Seconds on a monotonic clock (CLOCK_MONOTONIC), for timing: only
 * differences between two readings mean anything. */
double soma_clock_seconds(void);

/* ------------------------------------------------------------------- rng */
/* Counter-based random numbers (Philox-4x32-10). A stream is fully described
 * by a 64-bit key and a 64-bit counter, so any value can be computed in any
 * order, on any thread: results never depend on the thread count. */
typedef struct soma_rng {
    uint64_t key;     /* seed mixed with a stream id */
    uint64_t counter; /* advanced by one per 4 outputs */
    uint32_t buf[4];  /* outputs of the last block */
    int avail;        /* unread outputs left in buf */
} soma_rng;

/* Initialise a stream from a seed and a stream id (any two 64-bit values). */
void soma_rng_init(soma_rng *rng, uint64_t seed, uint64_t stream);
uint32_t soma_rng_u32(soma_rng *rng);
/* Uniform float in [0, 1). */
float soma_rng_uniform(soma_rng *rng);
/* One Philox block for (key, counter): four independent 32-bit words. */
void soma_philox(uint64_t key, uint64_t counter, uint32_t out[4]);
/* Uniform in [0,1) from a 32-bit word (24 high bits used). */
static inline float soma_u32_to_unit(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }

/* ---------------------------------------------------------------- models */
/* How a parameter of a population may be learned. */
typedef enum soma_learn {
    SOMA_LEARN_NONE = 0,   /* fixed */
    SOMA_LEARN_LAYER = 1,  /* one learnable value shared by the population */
    SOMA_LEARN_NEURON = 2  /* one learnable value per neuron */
} soma_learn;

/* Descriptor of one neuron-model parameter. */
typedef struct soma_param_desc {
    const char *name;           /* e.g. "beta" */
    float def;                  /* default value */
    float lo, hi;               /* valid closed range */
    const char *unit;           /* "" for dimensionless */
    int learnable;              /* 1 if it may be made learnable */
    const char *const *choices; /* NULL, or NULL-terminated names for an enum-valued parameter (value = index) */
    const char *help;           /* one line */
} soma_param_desc;

typedef struct soma_model soma_model; /* opaque; see src/models/model.h */

/* Find a neuron model by name ("input", "lif", "synaptic", ...); NULL if unknown. */
const soma_model *soma_model_find(const char *name);
/* Number of registered models and the i-th one's name (for error messages). */
size_t soma_model_count(void);
const char *soma_model_name_at(size_t i);
const char *soma_model_name(const soma_model *m);
/* 1 if the model has simulation ops of its own (sim_step, or a spike source).
 * The simulator also runs every trainable model, through its training forward op. */
int soma_model_is_simulator(const soma_model *m);
/* 1 if the trainer runs the model (it has a training half, or it is the input); a model may run in both. */
int soma_model_is_trainable(const soma_model *m);
/* The model's parameter descriptors (borrowed, static). */
const soma_param_desc *soma_model_params(const soma_model *m, size_t *count);

/* Surrogate gradient functions, by name: fast_sigmoid, atan, sigmoid,
 * triangular, straight_through. */
typedef enum soma_surrogate {
    SOMA_SURROGATE_FAST_SIGMOID = 0, /* 1/(k|x|+1)^2, param k (default 25) */
    SOMA_SURROGATE_ATAN = 1,         /* (a/2)/(1+(pi a x/2)^2), param a (default 2) */
    SOMA_SURROGATE_SIGMOID = 2,      /* k e^{-kx}/(1+e^{-kx})^2, param k (default 25) */
    SOMA_SURROGATE_TRIANGULAR = 3,   /* max(0, 1-|x|/w)/w, param w (default 1) */
    SOMA_SURROGATE_STRAIGHT_THROUGH = 4 /* 1, no param */
} soma_surrogate;
/* Index of a surrogate by name, or -1. Names are listed by soma_surrogate_name(i) for i < 5. */
int soma_surrogate_find(const char *name);
const char *soma_surrogate_name(int which);
float soma_surrogate_default_param(int which);
/* dS/dU at x = U - threshold. */
float soma_surrogate_eval(int which, float param, float x);

/* ------------------------------------------------------------------- net */
typedef struct soma_net soma_net; /* opaque */

/* A named float tensor owned by a net (borrowed; valid until the net changes shape). */
typedef struct soma_tensor {
    const char *name; /* "<from>-><to>.weight", "<from>-><to>.bias", "<pop>.<param>" */
    float *data;      /* rows*cols floats, row-major */
    size_t rows, cols;
    float *grad;      /* set only by soma_train_tensor: gradient of the last backward */
} soma_tensor;

/* Description of one population (borrowed strings). */
typedef struct soma_pop_info {
    const char *name;
    const char *model;
    size_t size;
    int recurrent;  /* 1 if it has a dense recurrent projection onto itself */
} soma_pop_info;

int soma_net_create(soma_net **net);
void soma_net_free(soma_net *net);
/* Last detailed error message on this net ("" if none). */
const char *soma_net_errmsg(const soma_net *net);

/* The network's time step in ms (default 0.1). Models stated in physical
 * units derive their discrete constants from it (lif: beta = exp(-dt/tau_m)). */
int soma_net_set_dt(soma_net *net, double dt_ms);
double soma_net_dt(const soma_net *net);

/* Add a population of `size` neurons of model `model`; parameters start at
 * their defaults. *index (may be NULL) receives its index. */
int soma_net_add_pop(soma_net *net, const char *name, const char *model, size_t size, size_t *index);
/* Set a parameter of a population by name (validated against the range). */
int soma_net_set_param(soma_net *net, size_t pop, const char *param, float value);
int soma_net_get_param(const soma_net *net, size_t pop, const char *param, float *value);
/* Make a parameter learnable (per layer or per neuron). */
int soma_net_set_learn(soma_net *net, size_t pop, const char *param, soma_learn how);
soma_learn soma_net_get_learn(const soma_net *net, size_t pop, const char *param);
/* Give a population a dense recurrent projection onto itself (weights N x N). */
int soma_net_set_recurrent(soma_net *net, size_t pop, int on);
/* A dense affine projection from -> to (weight to.size x from.size, optional bias). */
int soma_net_connect_dense(soma_net *net, size_t from, size_t to, int bias);
/* Give a population a shape (channels, height, width: 1 to 3 dims whose
 * product is its size), read by convolutions; neurons are stored row-major
 * [C][H][W]. Every population starts flat ({size}). */
int soma_net_set_shape(soma_net *net, size_t pop, const size_t *dims, size_t ndims);
/* The shape as (C, H, W): a flat population reads (size, 1, 1), a 2-D one (C, H, 1)... padded with 1s. */
int soma_net_get_shape(const soma_net *net, size_t pop, size_t dims[3], size_t *ndims);

/* Pooling applied after a convolution, before the target neurons. */
typedef enum soma_pool { SOMA_POOL_NONE = 0, SOMA_POOL_AVG = 1, SOMA_POOL_SUM = 2, SOMA_POOL_MAX = 3 } soma_pool;
int soma_pool_find(const char *name); /* "none", "avg", "sum", "max"; -1 if unknown */
const char *soma_pool_name(int pool);

/* A 2-D convolution from -> to. The source's shape (C_in, H, W) and the
 * target's (C_out, H', W') are the populations' shapes; the target must be
 * C_out channels of the convolution output (square kernel, stride, zero
 * padding), pooled over non-overlapping pool_size x pool_size windows when
 * pool is not NONE. Weight [C_out][C_in*k*k] (torch's layout), bias [C_out]
 * added after pooling. A dense projection out of a shaped population reads
 * it flat: flatten needs no layer of its own. */
typedef struct soma_conv {
    size_t kernel, stride, padding;
    int pool;         /* soma_pool */
    size_t pool_size; /* >= 1; ignored for SOMA_POOL_NONE */
} soma_conv;
int soma_net_connect_conv(soma_net *net, size_t from, size_t to, int bias, const soma_conv *conv);
/* 1 if projection i is a convolution (and *conv receives it), 0 if dense, negative on error. */
int soma_net_proj_conv(const soma_net *net, size_t i, soma_conv *conv);
/* Number of learnable scalars the net's tensors hold, counted without allocating them. */
size_t soma_net_param_need(const soma_net *net);

/* Find a population by name; SOMA_STATUS_NOTFOUND if absent. */
int soma_net_find_pop(const soma_net *net, const char *name, size_t *index);

size_t soma_net_pop_count(const soma_net *net);
int soma_net_pop_info(const soma_net *net, size_t pop, soma_pop_info *info);
/* Dense projections: count and (from, to, has_bias) of the i-th. */
size_t soma_net_proj_count(const soma_net *net);
int soma_net_proj_info(const soma_net *net, size_t i, size_t *from, size_t *to, int *bias);
/* A delay and a port of dense projection i's own, for the simulator (the
 * trainer refuses both). delay: a constant expression in ms ("0.3ms"), at
 * least one time step, rounded to whole steps when a
 * simulator is built; NULL removes it. Without one the simulator delays the
 * projection by the difference of its ends' depths (start steps), which keeps
 * it step for step with the trainer; an explicit delay is physical and takes
 * no part in that alignment. port: a port index of the target's model or
 * SOMA_PORT_BY_SIGN (as soma_net_connect); without one a dense projection
 * arrives on port 0. */
int soma_net_proj_set_delay(soma_net *net, size_t i, const char *delay);
int soma_net_proj_set_port(soma_net *net, size_t i, int port);
/* Whether dense projection i has its own delay (*delay_ms, else 0) and port
 * (*port, else 0): bit 0 of the result for the delay, bit 1 for the port;
 * negative on error. */
int soma_net_proj_timing(const soma_net *net, size_t i, double *delay_ms, int *port);

/* Allocate (first call) and initialise all weights: uniform(-1/sqrt(fan_in),
 * 1/sqrt(fan_in)) for weights and biases, as torch.nn.Linear does; learnable
 * population parameters get their set value. Seeded and thread-independent. */
int soma_net_init_weights(soma_net *net, uint64_t seed);
/* Parameter tensors (weights, biases, learnable population parameters), in a
 * fixed order. Allocates them if needed. */
size_t soma_net_tensor_count(soma_net *net);
int soma_net_tensor(soma_net *net, size_t i, soma_tensor *out);
int soma_net_tensor_find(soma_net *net, const char *name, soma_tensor *out);
/* Total number of learnable scalars. */
size_t soma_net_param_count(soma_net *net);

/* ----------------------------------------------------------------- hooks */
/* Sites are the named places where an executor's values can be read,
 * masked, overridden or (trainer) given a gradient. Both executors name
 * them from the network, in this order: for each population `<pop>.spikes`
 * then one `<pop>.<state>` per state variable (the model's state names,
 * e.g. hidden.v, exc.V_m); then for each projection `<from>-><to>.in` (the
 * presynaptic values it reads) and `<from>-><to>.out` (what it delivers to
 * its target, per target neuron, before the sum with other projections; in
 * the trainer, W s + b of that projection); a population's own recurrent
 * weights (recurrent: true) come last as `<pop>-><pop>.in` and `.out`.
 *
 * Hooks have an ask phase: soma_train_set_hooks / soma_sim_set_hooks
 * resolve every site name once and copy the hooks, so the set may be freed
 * or changed afterwards (call set_hooks again to apply changes). A
 * population or projection nobody asked for runs exactly the executor's
 * fused path; an asked one may take a slower path (copies of the values
 * hooks change; dense products where they change spikes into other values).
 * A hook's nonzero return cancels: no hook is called after it, and the
 * call running (soma_train_grad ..., soma_sim_run) returns
 * SOMA_STATUS_CANCELLED with the site and step in its message.
 *
 * At one site and step an executor runs, in this order: MASK hooks (the
 * mask starts at 1; several MASK hooks see the mask the previous left),
 * then multiplies the values by the mask; OVERRIDE hooks (write the values
 * in place); READ hooks (see what flows on). GRAD hooks run in the
 * trainer's backward pass.
 *
 * Trainer: an event covers one chunk of the batch (rows row0 .. row0 +
 * batch) at a step t in 0..T-1; chunks run on several threads, so events of
 * different chunks come in any order, but calls are serialized (a hook
 * needs no lock of its own). Within a chunk, layers come in chain order;
 * for each layer, its projection's `.in` then `.out` for steps 0..T-1, then
 * step by step its state variables and spikes. The input population's
 * sites (`in.spikes`, `in->hidden.in`: both the encoded input) come once
 * per step for the whole batch (row0 0, batch B), before the chunks.
 * Backward treats masked or overridden values as the forward's values (the
 * gradient passes them unchanged). Hooks that change spikes into values
 * other than 0/1 make the next projection use dense products for that
 * chunk; hooks that leave every value as it was (a mask of ones) keep the
 * usual path, bit for bit.
 * GRAD: dL/d(site) at that step, writable: `<pop>.spikes` (before the
 * layer's own backward step), `<from>-><to>.out` (the input current's
 * gradient) and `<from>-><to>.in` (this projection's part of the gradient
 * of its presynaptic values); state variables and the input population's
 * sites are refused (SOMA_STATUS_UNSUPPORTED).
 *
 * Simulator: batch is 1 and the event covers neurons first .. first + n of
 * the site's size (each thread owns a range of every population; with one
 * thread, first = 0 and n = size); step is the global step. Spikes are
 * handed as floats 0/1 in a scratch buffer (made only when asked): after
 * the hooks a neuron spikes where the value is not 0 (a mask of 0 removes
 * a spike, an override of 1 adds one; the neuron's own reset is not
 * changed). `<from>-><to>.in` is READ only (the source's spikes, the same
 * for all its projections). `<from>-><to>.out` (dense and sparse
 * projections) is what the projection adds to its target's input at that
 * step, its delays applied, summed over the target's ports: a hooked
 * projection's synapses are delivered into a buffer of their own (a dense
 * projection from a graded source is computed aside), which the hooks see
 * before it joins the target's input; a MASK scales both ports, an
 * OVERRIDE's values go to the projection's port (by sign: positive to port
 * 0, negative to port 1). GRAD is refused with SOMA_STATUS_UNSUPPORTED, and
 * so are hooks on the sites of a graded source (model input) but its
 * projections' `.out`, since its targets compute its values.
 * The simulator has two sites of its own per population that runs a step
 * (not a spike_source or model input), listed after the net's sites by
 * soma_sim_site (soma_net_site does not list them; the trainer has none),
 * both hooked before the population's step: `<pop>.current` (MASK,
 * OVERRIDE, READ) is the external current of the step, in pA (the step
 * input's value, 0 without one; a poisson population's rate in Hz, a
 * trainer model's input unit), which the step then integrates as it does
 * a step input: an OVERRIDE that adds I to chosen neurons injects a
 * current I into them; `<pop>.input` (MASK, OVERRIDE, READ) is what
 * arrived on the model's port 0 (e) at the step, in its weight unit (every
 * projection and Poisson drive summed, delays applied): an OVERRIDE that
 * adds k w gives k synaptic events of weight w. A population without hooks
 * on them runs as before, bit for bit. A population's hooks run from the step
 * it starts at (a trained network's layers start at their depth). A cancel takes effect at the end of the current
 * segment (at most 100 ms of model time); no hook is called after it.
 *
 * Sketch (ablate half of a hidden layer while training):
 *
 *   static int half(void *user, const soma_hook_event *ev) {
 *       for (size_t r = 0; r < ev->batch; r++)
 *           for (size_t i = 0; i < ev->n / 2; i++) ev->data[r * ev->n + i] = 0.0f;
 *       return 0;
 *   }
 *   soma_hooks *h;
 *   soma_hooks_create(&h);
 *   soma_hooks_add(h, "hidden.spikes", SOMA_HOOK_MASK, half, NULL);
 *   if (soma_train_set_hooks(tr, h)) puts(soma_train_errmsg(tr));
 *   soma_hooks_free(h);  (the trainer keeps its own copy) */
typedef enum soma_hook_kind {
    SOMA_HOOK_READ = 0,     /* see the values (do not write them) */
    SOMA_HOOK_MASK = 1,     /* fill a mask (initialised to 1) that multiplies the values */
    SOMA_HOOK_OVERRIDE = 2, /* write the values in place; the executor continues with them */
    SOMA_HOOK_GRAD = 3      /* trainer backward: dL/d(values), readable and writable */
} soma_hook_kind;

typedef enum soma_site_kind {
    SOMA_SITE_SPIKES = 0,   /* <pop>.spikes */
    SOMA_SITE_STATE = 1,    /* <pop>.<state> */
    SOMA_SITE_PROJ_IN = 2,  /* <from>-><to>.in */
    SOMA_SITE_PROJ_OUT = 3, /* <from>-><to>.out */
    SOMA_SITE_CURRENT = 4,  /* simulator only: <pop>.current, the external current of the step (see below) */
    SOMA_SITE_INPUT = 5     /* simulator only: <pop>.input, what arrives on port 0 at the step (see below) */
} soma_site_kind;

typedef struct soma_site_info {
    char name[160]; /* "hidden.spikes", "hidden.v", "in->hidden.out" */
    int kind;       /* soma_site_kind */
    size_t size;    /* values per instance */
    size_t pop;     /* its population (spikes, state), or the projection's target */
    size_t proj;    /* its projection (in, out): an index of soma_net_proj_info, or for a population's
                     * recurrent weights (`h->h.in`, `h->h.out`) the projection count plus the
                     * population's index; (size_t)-1 for spikes and state */
    size_t state;   /* state: index of the state variable; 0 otherwise */
    size_t from;    /* in, out: the projection's source population; else pop */
} soma_site_info;

typedef struct soma_hook_event {
    const char *site; /* the site's name */
    int kind;         /* soma_hook_kind of the hook called */
    size_t step;      /* trainer: time step 0..T-1; simulator: global step */
    size_t batch;     /* rows of data (trainer: samples of a chunk; simulator: 1) */
    size_t n;         /* values per row of data */
    float *data;      /* [batch][n]: the values, the mask (MASK) or the gradient (GRAD) */
    size_t row0;      /* trainer: index in the batch of data's row 0 */
    size_t first;     /* simulator: index in the site of data's value 0 */
    size_t size;      /* values per instance of the whole site */
} soma_hook_event;
/* Nonzero return cancels the run (SOMA_STATUS_CANCELLED). */
typedef int (*soma_hook_fn)(void *user, const soma_hook_event *ev);

typedef struct soma_hooks soma_hooks; /* caller-owned set of hooks */
int soma_hooks_create(soma_hooks **h);
void soma_hooks_free(soma_hooks *h);
/* Add a hook of `kind` (soma_hook_kind) on the named site (copied). Names
 * are checked when an executor takes the set. */
int soma_hooks_add(soma_hooks *h, const char *site, int kind, soma_hook_fn fn, void *user);
size_t soma_hooks_count(const soma_hooks *h);

/* Sparse products under a MASK (trainer). When a MASK hook is asked on a
 * dense projection's `<from>-><to>.in` site (not the input population's,
 * not a convolution) and, in a chunk, the masked input has at most
 * max_density nonzero values (of T x rows x Nin), the forward computes that
 * projection over the nonzero inputs only, row by row:
 *   out[r] = bias + sum over the nonzero i of x[r][i] W[:, i]
 * (gathering rows of the transposed weights, added in increasing i), so the
 * work of the dropped inputs is skipped; denser chunks, and every run
 * without such a hook, take the dense product (BLAS) as before. The two
 * differ by float rounding only (BLAS blocks its sums; test_dissect_sparsify
 * checks 1e-5 relative). max_density 0 turns the sparse path off (the dense
 * reference), 1 takes it whenever a MASK changed the input;
 * SOMA_TRAIN_MASK_SPARSE_DEFAULT (the default) picks it by the
 * projection's output width, from the crossovers bench/bench_sparsify
 * measured with 1000 inputs: 0.08 for at most 64 outputs, 0.35 wider. */
#define SOMA_TRAIN_MASK_SPARSE_DEFAULT (-1.0)
struct soma_trainer; /* soma_trainer, below */
int soma_train_set_mask_sparse(struct soma_trainer *tr, double max_density);
/* Rows (sample x step) whose masked product took the sparse path since the
 * trainer was created. */
size_t soma_train_mask_sparse_rows(const struct soma_trainer *tr);

/* The trainer's sites of a net, in the order above. */
size_t soma_net_site_count(const soma_net *net);
int soma_net_site(const soma_net *net, size_t i, soma_site_info *info);
/* Index of a site by name; SOMA_STATUS_NOTFOUND if none. */
int soma_net_site_find(const soma_net *net, const char *name, size_t *index);

/* ------------------------------------------------------------------ data */
typedef enum soma_encoding {
    SOMA_ENCODING_DIRECT = 0,  /* x fed as input current every step */
    SOMA_ENCODING_RATE = 1,    /* Bernoulli spikes, p = clamp(gain*x, 0, 1) per step */
    SOMA_ENCODING_LATENCY = 2, /* one spike per input, earlier for larger x */
    SOMA_ENCODING_DELTA = 3,   /* spike where the input changes by >= threshold */
    SOMA_ENCODING_SEQUENCE = 4 /* a sequence data set's own time steps (events binned, sensor windows) */
} soma_encoding;
int soma_encoding_find(const char *name); /* -1 if unknown */
const char *soma_encoding_name(int enc);

typedef enum soma_readout {
    SOMA_READOUT_COUNT = 0,   /* argmax of output spike counts (ties -> lowest index) */
    SOMA_READOUT_MEMBRANE = 1, /* argmax of mean output membrane over time */
    SOMA_READOUT_LAST = 2      /* argmax of the output membrane at the last step (sequence tasks) */
} soma_readout;
int soma_readout_find(const char *name);
const char *soma_readout_name(int r);

/* Data and encoding options of an experiment. */
typedef struct soma_data_opts {
    char dataset[32];   /* "fashion-mnist" or "mnist" (MNIST-format directory) */
    char dir[1024];     /* directory of {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; "" = default */
    int encoding;       /* soma_encoding */
    int steps;          /* time steps T per sample */
    float gain;         /* rate encoding: p = clamp(gain*x,0,1); direct: I = gain*x */
    float threshold;    /* latency: x below it never fires; delta: change needed for a spike */
    float tau;          /* latency: time constant, in steps (log code); 0 = linear code */
    int delta_off;      /* delta: also emit -1 for decreases */
    int readout;        /* soma_readout used for accuracy */
    size_t limit_train; /* 0 = all; else use only the first N training samples */
    size_t limit_test;  /* 0 = all */
    float bin_ms;       /* event data sets (shd, nmnist): width of a time bin in ms; 0 = the sample's span / steps */
    int threads;        /* threads the encoders may use; 0 = OpenMP's default (a trainer sets its own count) */
} soma_data_opts;
void soma_data_opts_default(soma_data_opts *o);

/* A labelled data set of uint8 samples with values scaled by 1/255. */
typedef struct soma_dataset {
    size_t n;        /* number of samples */
    size_t dim;      /* values per sample (rows*cols) */
    size_t rows, cols;
    size_t classes;  /* 1 + max label */
    uint8_t *x;      /* n*dim bytes (image data sets); NULL for sequence data sets */
    uint8_t *y;      /* n labels */
    float *seq;      /* sequence data sets: n*steps*dim values, sample-major then step; NULL for images */
    size_t steps;    /* time steps of every sequence (0 for images) */
} soma_dataset;

/* Read an IDX image file and an IDX label file (gzip or plain, detected). */
int soma_data_load_idx(soma_dataset *ds, const char *images, const char *labels, char *err, size_t errlen);
/* Load the train and test split named by opts (default directory for
 * fashion-mnist: /usr/share/datasets/fashion-mnist). Sequence data sets
 * (shd, nmnist, csv) are binned into opts->steps steps and encoded with
 * SOMA_ENCODING_SEQUENCE. */
int soma_data_load(const soma_data_opts *opts, soma_dataset *train, soma_dataset *test, char *err, size_t errlen);
void soma_data_free(soma_dataset *ds);
/* Default directory of a data set name, or NULL. */
const char *soma_data_default_dir(const char *dataset);

/* The stream of random draws soma_train_evaluate (and soma eval, the
 * simulator's sample runs and dissect) encode test samples with, as the
 * `stream` argument of soma_encode: the same samples get the same spikes
 * in every executor and tool. */
#define SOMA_EVAL_STREAM 0xE7A1u
/* Encode samples idx[0..B) of ds into out. Direct encoding writes [B][dim]
 * (the same input every step, *time_constant = 1); the others write
 * [T][B][dim] (*time_constant = 0). The randomness of rate encoding is keyed
 * by (seed, epoch, sample index), so it does not depend on batching or threads. */
int soma_encode(const soma_data_opts *opts, const soma_dataset *ds, const size_t *idx, size_t B,
                uint64_t seed, uint64_t epoch, float *out, int *time_constant);
/* Floats soma_encode writes for a batch of B. */
size_t soma_encode_size(const soma_data_opts *opts, const soma_dataset *ds, size_t B);
/* Seeded Fisher-Yates permutation of 0..n-1 for an epoch. */
void soma_shuffle(size_t *perm, size_t n, uint64_t seed, uint64_t epoch);

/* --------------------------------------------------------------- trainer */
typedef enum soma_loss {
    SOMA_LOSS_CE_RATE = 0,   /* mean over steps of CE(softmax(S_out[t]), y) */
    SOMA_LOSS_CE_COUNT = 1,  /* CE(softmax(sum_t S_out[t]), y) */
    SOMA_LOSS_MSE_COUNT = 2, /* MSE(sum_t S_out[t], target counts) */
    SOMA_LOSS_CE_MEM = 3,    /* mean over steps of CE(softmax(U_out[t]), y) */
    SOMA_LOSS_CE_LAST = 4    /* CE(softmax(U_out[T-1]), y): the answer is due at the end only */
} soma_loss;
int soma_loss_find(const char *name);
const char *soma_loss_name(int l);

typedef enum soma_optimizer {
    SOMA_OPTIMIZER_SGD = 0,
    SOMA_OPTIMIZER_ADAM = 1,
    SOMA_OPTIMIZER_ADAMW = 2
} soma_optimizer;
/* Deprecated spellings (0.1.0), kept for one version so that code written
 * against them still compiles; they will be removed in the next one. */
#define SOMA_OPT_SGD SOMA_OPTIMIZER_SGD
#define SOMA_OPT_ADAM SOMA_OPTIMIZER_ADAM
#define SOMA_OPT_ADAMW SOMA_OPTIMIZER_ADAMW
int soma_optimizer_find(const char *name);
const char *soma_optimizer_name(int o);

typedef enum soma_schedule {
    SOMA_SCHEDULE_CONSTANT = 0,
    SOMA_SCHEDULE_STEP = 1,
    SOMA_SCHEDULE_COSINE = 2
} soma_schedule;
/* Deprecated spellings (0.1.0), kept for one version: see SOMA_OPT_SGD. */
#define SOMA_SCHED_CONSTANT SOMA_SCHEDULE_CONSTANT
#define SOMA_SCHED_STEP SOMA_SCHEDULE_STEP
#define SOMA_SCHED_COSINE SOMA_SCHEDULE_COSINE
int soma_schedule_find(const char *name);
const char *soma_schedule_name(int s);

typedef struct soma_train_opts {
    int epochs;            /* passes over the training set */
    size_t batch;          /* samples per step */
    int loss;              /* soma_loss */
    int optimizer;         /* soma_optimizer */
    float lr;              /* learning rate */
    float momentum;        /* SGD momentum */
    float beta1, beta2;    /* Adam moments */
    float eps;             /* Adam epsilon */
    float weight_decay;    /* Adam: L2 added to grad; AdamW: decoupled; SGD: L2 */
    float clip_norm;       /* clip global gradient L2 norm to this; 0 = off */
    int schedule;          /* soma_schedule */
    int step_size;         /* step schedule: epochs between decays */
    float gamma;           /* step schedule: decay factor */
    float lr_min;          /* cosine schedule: final learning rate */
    float rate_penalty;    /* lambda * mean hidden spike rate added to the loss; 0 = off */
    int surrogate;         /* soma_surrogate */
    float surrogate_param; /* its parameter; <= 0 (the default) means the surrogate's own default */
    float correct_rate;    /* mse_count: target firing fraction of the correct class */
    float incorrect_rate;  /* mse_count: target firing fraction of the other classes */
    int threads;           /* worker threads; 0 = all cores */
    uint64_t seed;         /* weights, shuffling, encodings */
    long max_batches;      /* stop each epoch after this many batches; 0 = all */
} soma_train_opts;
void soma_train_opts_default(soma_train_opts *o);

typedef struct soma_trainer soma_trainer; /* opaque */

/* Progress report handed to a callback after each batch. Return nonzero
 * from the callback to stop the epoch (SOMA_STATUS_CANCELLED). */
typedef struct soma_progress {
    int epoch;             /* 0-based */
    long batch;            /* batches done this epoch */
    long batches;          /* batches this epoch */
    double loss;           /* running mean loss this epoch */
    double accuracy;       /* running training accuracy this epoch (0-1) */
    double samples_per_second;
    double elapsed_seconds;
} soma_progress;
typedef int (*soma_progress_fn)(void *user, const soma_progress *p);

typedef struct soma_epoch_result {
    double loss;               /* mean training loss */
    double accuracy;           /* training accuracy (0-1) */
    double seconds;            /* wall time of the epoch */
    double samples_per_second; /* training throughput */
    long batches;              /* batches done */
    double spike_rate;         /* mean hidden spike probability per neuron and step */
    long bad_batch;            /* on SOMA_STATUS_NONFINITE: the 0-based batch whose loss was not finite */
    double first_batch_seconds; /* wall time of the first batch (warm-up: caches, page faults) */
    double samples_per_second_after_first; /* throughput of the batches after the first (0 with one batch) */
} soma_epoch_result;

/* Create a trainer for a net whose projections form a directed acyclic
 * graph from one input population to one output population (a chain, skip
 * connections, several projections summed into a population; recurrence as
 * a population's recurrent weights). Allocates and, if not yet done,
 * initialises the weights. What it cannot train (a cycle through several
 * populations, per-neuron values, simulator inputs, dense projections with
 * a delay or port of their own) is refused by name.
 * A projection drawn by a connector (soma_net_connect) is drawn as the
 * simulator draws it with seed opts->seed (soma_sim_opts.seed = that seed
 * gives the same synapses) and becomes, in net, a dense projection without
 * bias (tensor "FROM->TO.weight": the synapses' weights, multapses summed,
 * 0 elsewhere) whose absent synapses keep a zero gradient, so they stay 0
 * through every optimizer; soma_model_save then saves it as a dense
 * projection. Refused by name, before net changes: its delay other than one
 * step, a port other than the model's one input, a population onto itself
 * that also has recurrent: true, two projections between the same
 * populations. A connector's projection of a population onto itself is
 * trained as its recurrent weights (run on the previous step's spikes, as
 * the simulator's one-step delay), only on the drawn synapses. The number
 * of layers is not bounded. */
int soma_train_create(soma_trainer **tr, soma_net *net, const soma_train_opts *opts,
                      const soma_data_opts *data);
void soma_train_free(soma_trainer *tr);
const char *soma_train_errmsg(const soma_trainer *tr);

/* Forward and backward on one encoded batch (layout as soma_encode writes),
 * gradients left in the trainer (see soma_train_tensor); no update.
 * *loss gets the mean loss, *correct (may be NULL) the number of correct predictions. */
int soma_train_grad(soma_trainer *tr, const float *x, int time_constant, const uint8_t *y, size_t B,
                    double *loss, size_t *correct);
/* One optimizer step with the gradients of the last soma_train_grad.
 * Returns SOMA_STATUS_NONFINITE (weights untouched) if a gradient is not finite. */
int soma_train_apply(soma_trainer *tr);
/* One epoch over ds in a seeded shuffled order. On a non-finite loss it
 * stops before touching the weights and returns SOMA_STATUS_NONFINITE with
 * res->bad_batch set. */
int soma_train_epoch(soma_trainer *tr, const soma_dataset *ds, int epoch, soma_progress_fn cb, void *user,
                     soma_epoch_result *res);
/* Accuracy over a data set (forward only). limit 0 = all samples. */
int soma_train_evaluate(soma_trainer *tr, const soma_dataset *ds, size_t limit, double *accuracy,
                        double *samples_per_second);
/* Forward only on an encoded batch of any size B >= 1 (not limited to the
 * training batch); writes the predicted class of each sample. */
int soma_train_predict(soma_trainer *tr, const float *x, int time_constant, size_t B, uint8_t *pred);
/* Forward on an encoded batch, copying population `pop`'s spikes into
 * spikes[T][B][N] (uint8 0/1) for rasters. Populations with real-valued
 * outputs record 1 where a spike probability is >= 0.5 (UltraLIF family) or
 * where an activation is not 0 (ann). */
int soma_train_record(soma_trainer *tr, const float *x, int time_constant, size_t B, size_t pop,
                      uint8_t *spikes);
/* Output spike counts of samples idx[0..n) of ds, encoded as
 * soma_train_evaluate encodes them: counts [n][C] for population pop (C
 * neurons), summed over the T steps. */
int soma_train_count_samples(soma_trainer *tr, const soma_dataset *ds, const size_t *idx, size_t n, size_t pop,
                             uint32_t *counts);
/* The i-th parameter tensor with its gradient (from the last soma_train_grad). */
int soma_train_tensor(soma_trainer *tr, size_t i, soma_tensor *out);
/* The trainer keeps derived copies of the weights (transposed for spike
 * gathers) and of the neuron parameters. After writing to a tensor's data
 * directly (not through soma_train_apply), call this before the next
 * forward pass. */
int soma_train_sync(soma_trainer *tr);
/* Learning rate the schedule gives for (epoch, batch of nbatches). */
float soma_train_lr(const soma_train_opts *o, int epoch, long batch, long nbatches);
/* Options the trainer runs with (threads resolved). */
const soma_train_opts *soma_train_options(const soma_trainer *tr);
/* The ask phase of hooks (see "hooks"): resolve the set's sites against the
 * net's and copy its hooks; NULL (or an empty set) removes all hooks. An
 * unknown site gives SOMA_STATUS_NOTFOUND, a kind the site does not take
 * SOMA_STATUS_UNSUPPORTED, both with a message (soma_train_errmsg), and
 * leave the trainer's hooks as they were. Hooks run in soma_train_grad,
 * soma_train_predict, soma_train_record, soma_train_epoch and
 * soma_train_evaluate. */
int soma_train_set_hooks(soma_trainer *tr, const soma_hooks *h);
/* Freezing: which entries of tensor i (soma_train_tensor's order) learn.
 * mask [rows x cols] (1 learns, 0 frozen); NULL: the whole tensor learns
 * again. A frozen entry gets a zero gradient after each backward pass (so
 * soma_train_tensor shows 0 and gradient clipping ignores it) and is
 * skipped by the optimizer step: its value and its optimizer state
 * (momentum, Adam's moments) stay exactly as they were, weight decay
 * included, with SGD, Adam and AdamW alike. Masks stay until changed and
 * apply to soma_train_apply and soma_train_epoch. */
int soma_train_set_learn_mask(soma_trainer *tr, size_t i, const uint8_t *mask);

/* ------------------------------------------------------------------- io */
#define SOMA_MODEL_MAGIC "SOMAMDL\0"
/* The newest format version this soma writes and reads. Version 4 adds a
 * delay and a port of their own to each projection (soma_net_proj_set_delay,
 * soma_net_proj_set_port); a net without them is still written as version 3,
 * which soma 0.2 reads too. Version 3 left the thread count out: threads are
 * a run setting, never saved with a trained model. Version-2 files load
 * (their threads field is ignored); version 1 is refused. */
#define SOMA_MODEL_VERSION 4u

/* Write net + options to path atomically (temp file, fsync, rename): on
 * failure an existing file at path is left untouched. */
int soma_model_save(const char *path, soma_net *net, const soma_data_opts *data, const soma_train_opts *train,
                    char *err, size_t errlen);
/* Read a model file. Truncated, corrupted or wrong-version files give
 * SOMA_STATUS_FORMAT / CHECKSUM / VERSION with a message (for a version it
 * does not read, how to convert). data and train may be NULL; train->threads
 * comes back 0 (all cores): set the run's thread count after loading. */
int soma_model_load(const char *path, soma_net **net, soma_data_opts *data, soma_train_opts *train,
                    char *err, size_t errlen);

/* soma_net_load_yaml without overrides or a simulate section (the
 * experiment files of earlier versions load unchanged). */
int soma_experiment_load(const char *path, soma_net **net, soma_data_opts *data, soma_train_opts *train,
                         char *err, size_t errlen);


/* ------------------------------------------------------------- simulator */
/* The event-driven simulator runs one instance of a network on a fixed time
 * step. It runs the same description (soma_net) as the trainer: populations
 * of neurons with physical parameters, sparse projections made by
 * connectors, and external drives.
 *
 * Values are expressions with units, as strings: "20ms", "-65mV",
 * "0.5nS", "uniform(-60mV, -50mV)", "normal(1.5ms, 0.75ms)",
 * "-65mV + 15mV*r^2". A plain number is read in the unit of the quantity
 * it sets (the parameter's descriptor unit). Per-neuron expressions may use
 * r (a uniform number in [0,1) drawn once per neuron and shared by all its
 * parameters), i (the neuron's index) and N (the population size); random
 * functions draw per neuron (or per synapse) from keyed streams, so values
 * never depend on the thread count. Internal units: ms, mV, pA, pF, nS
 * (rates 1/ms); parameters are stored in their descriptor's unit (Hz for rates).
 *
 * Delays count from the step of a spike to the step whose update first
 * feels it, so the shortest delay is one step (dt). NEST's delays mean the
 * same; Brian2's delay d is soma's d + dt (Brian2 applies a spike within
 * the step that emits it). */

/* How a projection's synapses are drawn. */
typedef enum soma_conn_rule {
    SOMA_CONN_RULE_ALL_TO_ALL = 0,
    SOMA_CONN_RULE_ONE_TO_ONE = 1,
    SOMA_CONN_RULE_FIXED_PROBABILITY = 2, /* each pair independently with probability p */
    SOMA_CONN_RULE_FIXED_INDEGREE = 3,    /* each target gets k sources drawn uniformly */
    SOMA_CONN_RULE_FIXED_OUTDEGREE = 4,   /* each source gets k targets drawn uniformly */
    SOMA_CONN_RULE_FIXED_TOTAL = 5,       /* n synapses, each (pre, post) drawn uniformly */
    SOMA_CONN_RULE_SMALL_WORLD = 6,       /* Watts-Strogatz: ring of k neighbours, rewired with probability p */
    SOMA_CONN_RULE_SCALE_FREE = 7,        /* Barabasi-Albert: m edges per new node, both directions */
    SOMA_CONN_RULE_FILE = 8               /* edge list file: pre,post[,weight[,delay]] per line */
} soma_conn_rule;
/* Deprecated spellings (0.1.0), kept for one version: see SOMA_OPT_SGD. */
#define SOMA_CONN_ALL_TO_ALL SOMA_CONN_RULE_ALL_TO_ALL
#define SOMA_CONN_ONE_TO_ONE SOMA_CONN_RULE_ONE_TO_ONE
#define SOMA_CONN_FIXED_PROBABILITY SOMA_CONN_RULE_FIXED_PROBABILITY
#define SOMA_CONN_FIXED_INDEGREE SOMA_CONN_RULE_FIXED_INDEGREE
#define SOMA_CONN_FIXED_OUTDEGREE SOMA_CONN_RULE_FIXED_OUTDEGREE
#define SOMA_CONN_FIXED_TOTAL SOMA_CONN_RULE_FIXED_TOTAL
#define SOMA_CONN_SMALL_WORLD SOMA_CONN_RULE_SMALL_WORLD
#define SOMA_CONN_SCALE_FREE SOMA_CONN_RULE_SCALE_FREE
#define SOMA_CONN_FILE SOMA_CONN_RULE_FILE
/* Names: all_to_all, one_to_one, fixed_probability, fixed_indegree,
 * fixed_outdegree, fixed_total, small_world, scale_free, file. */
int soma_conn_rule_find(const char *name); /* -1 if unknown */
const char *soma_conn_rule_name(int rule); /* NULL past the end */

typedef struct soma_connector {
    int rule;         /* soma_conn_rule */
    double p;         /* fixed_probability: probability; small_world: rewiring probability */
    size_t k;         /* fixed_indegree/outdegree: degree; small_world: neighbours (even); scale_free: m */
    size_t n;         /* fixed_total: number of synapses */
    int autapses;     /* allow i -> i when from == to (default 1) */
    int multapses;    /* allow a repeated (pre, post) pair in degree and total rules (default 1) */
    const char *path; /* file rule: the edge list (copied) */
} soma_connector;
void soma_connector_default(soma_connector *c, int rule);

/* Port a projection's synapses arrive on: by the sign of each weight
 * (positive -> the model's port 0, "e"; negative -> port 1, "i"), or fixed. */
#define SOMA_PORT_BY_SIGN (-1)

/* The simulator's parts of a network description (soma_net, above).
 * Time step: soma_net_set_dt (before any sparse projection or Poisson
 * input). Populations: soma_net_add_pop with any model; an executor refuses,
 * by name, a model that lacks its half (soma models lists them). */
/* Define a named constant for later expressions ("J" = "0.1mV", then
 * weight "-g*J"). Redefining replaces the value for later uses only. */
int soma_net_define(soma_net *net, const char *name, const char *expr);
/* Set a parameter, or the initial value of a state variable, from an
 * expression. A constant sets the population's one value (as
 * soma_net_set_param); an expression with r, i, N or a random draw sets
 * per-neuron values, which the simulator evaluates. An enum-valued
 * parameter takes one of its names ("subtract"). */
int soma_net_set(soma_net *net, size_t pop, const char *name, const char *expr);
/* A sparse projection from -> to whose synapses a connector draws; weight
 * and delay are expressions evaluated per synapse (r is then a per-synapse
 * uniform). port: SOMA_PORT_BY_SIGN or a port index of the target model.
 * *index (may be NULL) gets its index among all projections. */
int soma_net_connect(soma_net *net, size_t from, size_t to, const soma_connector *c, const char *weight,
                     const char *delay, int port, size_t *index);
/* Independent Poisson input to every neuron of pop: rate (Hz, one value for
 * the population), each event adds weight on port. */
int soma_net_add_poisson(soma_net *net, size_t pop, const char *rate, const char *weight, int port);
/* A piecewise-constant input from time t[k] (ms) on: value v[k] is added to
 * the model's external input (a current in pA; the rate in Hz for poisson).
 * n >= 1 points with increasing times; before t[0] it adds 0. */
int soma_net_add_steps(soma_net *net, size_t pop, const double *t_ms, const double *v, size_t n);
/* Spikes a spike_source population emits: neuron ids[k] at time t_ms[k]. */
int soma_net_set_spikes(soma_net *net, size_t pop, const uint32_t *ids, const double *t_ms, size_t n);

typedef struct soma_sim_opts {
    int threads;           /* 0 = all cores */
    uint64_t seed;         /* connectivity, initial values, noise */
    int record_spikes;     /* 1: keep every spike (soma_sim_spikes) */
    double memory_limit;   /* bytes; refuse to build a larger network (0 = physical memory) */
} soma_sim_opts;
void soma_sim_opts_default(soma_sim_opts *o);

typedef struct soma_sim soma_sim; /* opaque */
/* One spike: the step it was emitted in and the neuron's global id
 * (populations numbered in order, each a contiguous range). */
typedef struct soma_spike {
    uint32_t step;
    uint32_t id;
} soma_spike;

/* Compile the network into the simulator's own plan: draw connectivity and
 * initial values. The simulator keeps no pointer into net: net may be
 * changed or freed afterwards. On error *sim is NULL and err holds the reason. A network whose estimated memory exceeds
 * the limit is refused before allocation, with the estimate. */
int soma_sim_create(soma_sim **sim, const soma_net *net, const soma_sim_opts *o, char *err, size_t errlen);
void soma_sim_free(soma_sim *sim);
const char *soma_sim_errmsg(const soma_sim *sim);
/* Progress callback after each chunk of steps; nonzero return cancels. */
typedef int (*soma_sim_progress_fn)(void *user, double t_ms, double t_end_ms, double wall_seconds);
/* Advance the simulation by t_ms (rounded to whole steps). */
int soma_sim_run(soma_sim *sim, double t_ms, soma_sim_progress_fn cb, void *user);
/* Record state variable var of neurons idx[0..n) of pop every `every` steps
 * (call before soma_sim_run). Returns the recorder's index in *rec. */
int soma_sim_record_state(soma_sim *sim, size_t pop, const char *var, const size_t *idx, size_t n, size_t every,
                          size_t *rec);
/* Samples so far of a state recorder: data[s][n] (borrowed), *samples rows. */
const float *soma_sim_state_data(const soma_sim *sim, size_t rec, size_t *samples, size_t *n, size_t *every);
/* The values of an input population (model input), read by its dense
 * projections: x [steps][N] for steps 0 .. steps-1 (0 after), or, with
 * constant = 1, x [N] at every step (direct encoding). Copied. */
int soma_sim_set_input(soma_sim *sim, size_t pop, const float *x, size_t steps, int constant);
/* The first step population pop runs. The trainer feeds a dense projection
 * to its target within the step; the simulator's delays are at least one
 * step, so a population d dense projections away from the input starts at
 * step d and from then on sees what the trainer's population sees, d steps
 * later. 0 in networks without dense projections. */
uint64_t soma_sim_start_step(const soma_sim *sim, size_t pop);
/* A trained network in the simulator, sample by sample: samples idx[0..n)
 * of ds, encoded as soma_train_evaluate encodes them (data options d, the
 * training seed), each run from rest in a simulator of its own for
 * d->steps steps from the output population's start step. counts [n][C]
 * gets the spike counts of the output population (the last one, C
 * neurons). The net needs one input population (model input). */
int soma_sim_run_samples(const soma_net *net, const soma_data_opts *d, const soma_dataset *ds, const size_t *idx,
                         size_t n, uint64_t seed, int threads, uint32_t *counts, char *err, size_t errlen);
/* Keep (on = 1, the default) or leave out (0) population pop's spikes in
 * the record from now on; counts and the fingerprint cover all populations. */
int soma_sim_record_spikes(soma_sim *sim, size_t pop, int on);
/* All spikes so far, sorted by (step, id) (borrowed; NULL unless recorded). */
const soma_spike *soma_sim_spikes(const soma_sim *sim, size_t *n);

typedef struct soma_sim_pop_info {
    const char *name, *model;
    size_t size;
    size_t first;     /* global id of its neuron 0 */
    uint64_t spikes;  /* spikes so far */
} soma_sim_pop_info;
size_t soma_sim_pop_count(const soma_sim *sim);
int soma_sim_pop(const soma_sim *sim, size_t pop, soma_sim_pop_info *info);
/* The simulator's sites (see "hooks"): the net's (soma_net_site), copied when it was built. */
size_t soma_sim_site_count(const soma_sim *sim);
int soma_sim_site(const soma_sim *sim, size_t i, soma_site_info *info);
/* The ask phase of hooks: as soma_train_set_hooks; GRAD and `.out` sites,
 * and MASK or OVERRIDE of `.in` sites, are refused (SOMA_STATUS_UNSUPPORTED). */
int soma_sim_set_hooks(soma_sim *sim, const soma_hooks *h);

typedef struct soma_sim_stats {
    size_t neurons, synapses;
    uint64_t spikes;
    uint64_t steps;              /* steps run so far */
    double dt_ms;
    double build_seconds;        /* soma_sim_create */
    double sim_seconds;          /* wall time inside soma_sim_run */
    double bytes_per_synapse;    /* synapse storage / synapses */
    size_t connectivity_bytes;   /* synapses plus row index */
    size_t min_delay_steps, max_delay_steps;
    int threads;
    uint8_t spikes_sha256[32];   /* SHA-256 of the (step, id) pairs in sorted order, each as two little-endian uint32 */
} soma_sim_stats;
int soma_sim_stats_get(const soma_sim *sim, soma_sim_stats *st);
/* Write every synapse as CSV "pre,post,weight,delay_ms" (global ids, weight
 * in the target model's weight unit) to path, atomically. */
int soma_sim_write_connectivity(const soma_sim *sim, const char *path);

/* Statistics of one population's spikes in steps [step0, step1). Counts go
 * into bins (and Fano windows) of whole steps (bin_ms / dt_ms rounded, at
 * least half a step) laid from step0 on; a trailing partial bin or window
 * is left out of synchrony and fano. Memory is O(size), time O(spikes in
 * the window + log n). */
typedef struct soma_spike_stats {
    double rate_hz;     /* spikes / (neurons * duration) */
    double cv_isi;      /* mean over neurons with >= 2 inter-spike intervals of sd/mean of their ISIs (sd with 1/n, as Elephant's cv); NaN if none */
    size_t cv_neurons;  /* neurons that entered cv_isi */
    double fano;        /* mean over neurons with a nonzero count of var/mean of the neuron's spike counts in windows of fano_window_ms (var with 1/(K-1), so Poisson gives 1 for any K); NaN if none or fewer than 2 windows */
    double synchrony;   /* Golomb's chi: sqrt(var_t(A) / mean_i var_t(s_i)), s_i = neuron i's count in bins of bin_ms, A = mean_i s_i; 0..1, ~1/sqrt(N) when asynchronous, 1 when synchronous; NaN if undefined */
} soma_spike_stats;
/* sp: spikes sorted by (step, id) (as soma_sim_spikes gives); the
 * population is ids [first, first+size); other ids are skipped.
 * SOMA_STATUS_INVALID for size 0, step1 <= step0, dt, bin or window not
 * positive (or under half a step), or spikes out of order. */
int soma_spike_stats_compute(const soma_spike *sp, size_t n, uint32_t first, size_t size, double dt_ms,
                             uint64_t step0, uint64_t step1, double bin_ms, double fano_window_ms,
                             soma_spike_stats *out);
/* Raster of spikes in steps [step0, step1) (time in ms on x, neuron on y;
 * at most max_per_pop neurons of each population (0: all), its first ones,
 * populations stacked top down in the order given and coloured, names at
 * the left), with the population rate histogram (Hz, bins of bin_ms, one
 * line per population in its colour) in a panel under it. Population p is
 * ids [first[p], first[p]+size[p]); ranges must not overlap; names (or an
 * entry of it) may be NULL. Bins are widened (to whole multiples) when
 * more would not fit the panel's pixels. */
int soma_plot_sim_raster(const char *path, const soma_spike *sp, size_t n, size_t npops, const char *const *names,
                         const uint32_t *first, const size_t *size, double dt_ms, uint64_t step0, uint64_t step1,
                         size_t max_per_pop, double bin_ms, char *err, size_t errlen);
/* The same raster with the time window [w0_ms, w1_ms) marked on both
 * panels (a shaded band, dashed edges), e.g. a lesion's or a stimulus's;
 * SOMA_STATUS_INVALID if the window is empty. */
int soma_plot_sim_raster_window(const char *path, const soma_spike *sp, size_t n, size_t npops,
                                const char *const *names, const uint32_t *first, const size_t *size, double dt_ms,
                                uint64_t step0, uint64_t step1, size_t max_per_pop, double bin_ms, double w0_ms,
                                double w1_ms, char *err, size_t errlen);
/* Bar chart of mean rates per population (Hz), with values printed on the
 * bars; ref_hz (may be NULL; NaN entries skipped) draws reference marks
 * (e.g. published rates). A NaN rate draws no bar ("n/a"). */
int soma_plot_rates(const char *path, size_t npops, const char *const *names, const double *rate_hz,
                    const double *ref_hz, char *err, size_t errlen);
/* Read a constant quantity with units ("10s", "500ms", "2.5") into `unit`
 * ("ms"); a plain number is taken in `unit`. */
int soma_parse_quantity(const char *text, const char *unit, double *out, char *err, size_t errlen);

/* The simulate section of a network file: {time, warmup, seed, threads,
 * record, reference_rates}. */
typedef struct soma_sim_file_opts {
    double time_ms;       /* simulate.time (default 1000) */
    double warmup_ms;     /* simulate.warmup: left out of the rates (default 0) */
    int record_spikes;    /* simulate.record.spikes: 1 all (default) */
    uint64_t seed;        /* simulate.seed (default 1) */
    int threads;          /* simulate.threads (default 0) */
    /* simulate.record.state: [{pop, var, neurons: N | [i, j, ...], every}] */
    size_t n_state;
    struct soma_sim_state_spec {
        char pop[64], var[32];
        size_t idx[64];   /* neurons recorded (indices in pop) */
        size_t n;         /* how many */
        double every_ms;  /* sampling period (default dt) */
    } state[8];
    double rate_bin_ms;   /* simulate.record.rate_bin: bins of the population-rate trace (default 1 ms) */
    size_t n_spike_pops;  /* simulate.record.spikes: [POP, ...]: only these (0 = all, or none) */
    char spike_pops[32][64];
    size_t n_ref;         /* simulate.reference_rates: {POP: rate, ...}, e.g. published rates */
    char ref_pop[32][64];
    double ref_hz[32];
} soma_sim_file_opts;
void soma_sim_file_opts_default(soma_sim_file_opts *o);

/* A session runs a simulator as a simulate section says and writes what
 * the run leaves behind. It applies the section's recording choices
 * (record.spikes [POP, ...] keeps only those populations' spikes;
 * record.state adds its state recorders), runs warmup then time, and
 * remembers where the warm-up ended: rates and statistics cover the
 * measured window, steps [step0, step1), only. sim is borrowed and must
 * outlive the session; fo and source (the file's name, written into
 * metrics.json; may be NULL) are copied. Create it before running sim. */
typedef struct soma_sim_session soma_sim_session; /* opaque */
int soma_sim_session_create(soma_sim_session **s, soma_sim *sim, const soma_sim_file_opts *fo, const char *source,
                            char *err, size_t errlen);
void soma_sim_session_free(soma_sim_session *s);
/* Run fo->warmup_ms, open the measured window, run fo->time_ms. A nonzero
 * return of cb cancels: SOMA_STATUS_CANCELLED, and the outputs still cover
 * what was simulated (a cancelled warm-up leaves an empty window). Other
 * errors: soma_sim_errmsg. Without this call the window opens when the
 * session is created. */
int soma_sim_session_run(soma_sim_session *s, soma_sim_progress_fn cb, void *user);

typedef struct soma_sim_summary {
    uint64_t step0, step1;   /* measured window: steps [step0, step1) */
    double warmup_ms;        /* simulated before the window (step0 * dt), ms */
    double time_ms;          /* simulated in the window, ms */
    double wall_seconds;     /* wall time the simulator spent in the window, s */
    double real_time_factor; /* wall_seconds / simulated seconds (0 if none simulated) */
    int cancelled;           /* 1 if soma_sim_session_run was cancelled */
    int spikes_recorded;     /* 1 if the simulator kept spikes (soma_sim_spikes) */
} soma_sim_summary;
int soma_sim_session_summary(const soma_sim_session *s, soma_sim_summary *out);

/* One population over the measured window. */
typedef struct soma_sim_pop_metrics {
    const char *name;   /* borrowed from the simulator */
    double rate_hz;     /* spikes in the window / (size * window), Hz; from counters, recorded or not */
    double cv_isi, fano, synchrony; /* soma_spike_stats_compute over the window, bins of 1 ms, Fano
                                       windows of 100 ms; NaN if its spikes are not recorded */
    int recorded;       /* 1 if its spikes are recorded */
} soma_sim_pop_metrics;
int soma_sim_session_pop_metrics(const soma_sim_session *s, size_t pop, soma_sim_pop_metrics *out);

/* simulate.reference_rates against the measured rates. */
typedef struct soma_sim_rate_cmp {
    const char *pop;    /* borrowed from the session */
    double ref_hz;      /* the file's reference rate, Hz */
    double rate_hz;     /* measured (soma_sim_pop_metrics.rate_hz); NaN if no population has that name */
    double rel_diff;    /* (rate_hz - ref_hz) / ref_hz */
} soma_sim_rate_cmp;
/* Fills out[0 .. min(n, cap)) (caller-owned; out may be NULL to count) and
 * returns n, the number of reference rates (at most 32). */
size_t soma_sim_compare_rates(const soma_sim_session *s, soma_sim_rate_cmp *out, size_t cap);

/* metrics.json at path: file, neurons, synapses, spikes (whole run),
 * dt_ms, time_ms and warmup_ms (ms), threads, build_seconds, sim_seconds
 * (the window's wall time), real_time_factor, bytes_per_synapse,
 * connectivity_bytes, peak_rss_bytes (this process), spikes_sha256,
 * cancelled; reference_rate_hz and rate_rel_diff (with reference rates);
 * then rate_hz, cv_isi, fano, synchrony per population (null where
 * undefined). Numbers as %.6g. Written atomically ("PATH.tmp.<pid>",
 * fsync, rename): on failure an earlier file at path is left untouched. */
int soma_sim_write_metrics(const soma_sim_session *s, const char *path, char *err, size_t errlen);
/* Into the existing folder dir, atomically each: spikes.bin ("SOMASPK1",
 * dt_ms as f64, count as u64, then soma_spike pairs, native byte order)
 * and, with csv, spikes.csv (time_ms,neuron) when spikes are recorded
 * (whole run, warm-up included); state_POP_VAR.csv per state recorder
 * (time_ms, then n<i> per neuron); pop_rate.csv (population rates in Hz in
 * bins of fo->rate_bin_ms from step 0). Every file is tried; the first
 * error is returned. */
int soma_sim_write_records(const soma_sim_session *s, const char *dir, int csv, char *err, size_t errlen);
/* Into dir: raster.png (when spikes are recorded: the last 1 s of the
 * window at most, the first 200 neurons of each population, rates in 1 ms
 * bins) and rates.png (measured rates, reference rates marked). */
int soma_sim_write_plots(const soma_sim_session *s, const char *dir, char *err, size_t errlen);

/* Network files (YAML), one format for every executor: params, sets,
 * network {dt, populations, projections, inputs}, and the sections of the
 * executors the file configures: data and train (trainer), simulate
 * (simulator). Any of data, train and sim may be NULL (the section is
 * still checked); absent sections give the defaults. params: NULL or
 * "name=value" overrides of the file's `params:` (n_params of them; "set=S"
 * applies the named set S). Errors are "file:line: what; expected ...".
 * See docs/experiment-files.md. */
int soma_net_load_yaml(const char *path, const char *const *params, size_t n_params, soma_net **net,
                       soma_data_opts *data, soma_train_opts *train, soma_sim_file_opts *sim, char *err,
                       size_t errlen);

/* ----------------------------------------------------------------- plots */
/* Loss and accuracy per epoch (two panels) as a PNG. Arrays have n entries;
 * test_acc may be NULL. */
int soma_plot_curves(const char *path, const double *loss, const double *train_acc, const double *test_acc,
                     size_t n, char *err, size_t errlen);
/* Spike raster: spikes[T][B][N] (0/1), one panel per sample (at most 4). */
int soma_plot_raster(const char *path, const uint8_t *spikes, size_t T, size_t B, size_t N,
                     const char *title, char *err, size_t errlen);

/* Class x neuron heat map: v [rows][cols] on a diverging scale (blue -range
 * .. white 0 .. red +range; range <= 0: the largest |v|), one row per class
 * (row_names may be NULL), more than 1200 columns averaged into pixels. */
int soma_plot_heatmap(const char *path, const char *title, const char *xlabel, const double *v, size_t rows,
                      size_t cols, const char *const *row_names, double range, char *err, size_t errlen);
/* Grouped bar chart: values [nseries][ngroups] (non-finite: no bar), one
 * colour per series with a legend (at most 10 series). */
int soma_plot_bars(const char *path, const char *title, const char *ylabel, size_t ngroups,
                   const char *const *group_names, size_t nseries, const char *const *series_names,
                   const double *values, char *err, size_t errlen);
/* Paths through layers: ncols columns (layers, left to right) of
 * col_size[c] neurons drawn as grey dots (index 0 at the top); npaths
 * paths (at most 10), nodes [npaths][ncols] the neuron of each path in each
 * column (>= col_size[c]: none there), drawn as joined coloured dots
 * labelled with their index, with a legend of path_names (may be NULL). */
int soma_plot_path(const char *path, const char *title, size_t ncols, const char *const *col_names,
                   const size_t *col_size, size_t npaths, const char *const *path_names, const size_t *nodes,
                   char *err, size_t errlen);

/* --------------------------------------------------------------- dissect */
/* Neuron-level analysis of a trained network run by the trainer (see
 * docs/dissect.md). Everything is built on hooks: READ hooks on each
 * population's `<pop>.spikes` site gather statistics, MASK and OVERRIDE
 * hooks ablate neurons, READ and GRAD hooks give attributions. The functions below install their own hook set on
 * the trainer (soma_train_set_hooks) and remove every hook when they
 * return, so a caller's own hooks are gone afterwards.
 *
 * Samples are encoded as soma_train_evaluate encodes them (data options d,
 * the trainer's seed, the evaluation stream), so predictions without
 * ablation equal soma_train_evaluate's. A neuron's value per sample is its
 * site's values summed over the T steps (pooling by sum: the spike count;
 * for graded populations such as ann, the summed activation). Populations
 * are every one but the input; hidden ones are those with a projection
 * leaving them (the rest are outputs). */
/* What is dissected: a trainer, its net and data options, and a data set. */
typedef struct soma_dissect_ctx {
    soma_trainer *tr;         /* created on net with data options d */
    const soma_net *net;      /* the trainer's net (sites are named from it) */
    const soma_data_opts *d;  /* the data options the trainer was created with */
    const soma_dataset *ds;   /* the samples (labels y: the classes) */
} soma_dissect_ctx;

typedef int (*soma_dissect_progress_fn)(void *user, const char *phase, size_t done, size_t total);

typedef struct soma_dissect_opts {
    size_t limit;                      /* the data set's first N samples (0 = all) */
    size_t batch;                      /* samples per forward pass (0 = 256) */
    size_t topk;                       /* stats: top samples kept per neuron (0 = 5; at most 32) */
    soma_dissect_progress_fn progress; /* may be NULL; called after each batch; nonzero cancels */
    void *user;
} soma_dissect_opts;
void soma_dissect_opts_default(soma_dissect_opts *o);

/* Statistics of every non-input population over a data set, streamed in
 * batches: memory is O(classes x neurons x T), never the activations. */
typedef struct soma_dissect_stats soma_dissect_stats; /* opaque */
int soma_dissect_stats_run(const soma_dissect_ctx *x, const soma_dissect_opts *o, soma_dissect_stats **out,
                           char *err, size_t errlen);
void soma_dissect_stats_free(soma_dissect_stats *s);

typedef struct soma_dissect_info {
    size_t samples, classes, steps, pops, topk;
    const size_t *class_samples; /* [classes]: samples of each class (borrowed) */
    double accuracy;             /* of the predictions made while gathering (no ablation) */
} soma_dissect_info;
int soma_dissect_stats_info(const soma_dissect_stats *s, soma_dissect_info *out);

/* One population's statistics (arrays borrowed from s). Rates are values
 * per step: spikes/step for spiking populations. */
typedef struct soma_dissect_pop {
    const char *name;
    size_t pop;                /* its index in the net */
    size_t size;
    int hidden;                /* 1 if a projection leaves it */
    int graded;                /* 1 if some value was neither 0 nor 1 (real-valued outputs) */
    const double *rate;        /* [size]: mean value per step over all samples */
    const double *class_rate;  /* [classes][size]: the same over each class's samples */
    const double *fire_frac;   /* [size]: fraction of samples with a nonzero value at some step */
    const double *selectivity; /* [classes][size]: (r_c - mean of r_c' over the other classes present)
                                  / (sd of r_c' over the classes present (1/C) + 1e-6), r the class rates;
                                  0 with fewer than 2 classes present */
    const uint8_t *dead;       /* [size]: 1 if the value was 0 at every step of every sample */
    const uint8_t *saturated;  /* [size]: 1 if nonzero at every step of every sample, or rate >= 0.99 */
    size_t dead_count, saturated_count;
    const uint32_t *top_sample; /* [size][topk]: samples (index in the set) with the largest sums, best first;
                                   ties to the lower index; UINT32_MAX where fewer than topk samples had a nonzero sum */
    const double *top_value;    /* [size][topk]: their sums over the T steps */
} soma_dissect_pop;
int soma_dissect_stats_pop(const soma_dissect_stats *s, size_t i, soma_dissect_pop *out);

/* Average precision of score as a detector of positive (as scikit-learn's
 * average_precision_score): samples ranked by descending score; tied scores
 * form one threshold (all enter together); AP = sum over thresholds of
 * (recall gained) x (precision at that threshold). 0 if there is no
 * positive. */
double soma_dissect_average_precision(const double *score, const uint8_t *positive, size_t n);
/* AP for "sample is of class cls" of every neuron of population i of s,
 * its score the spike count (exact from per-class histograms of the counts
 * 0..T). Graded populations: exact on the per-sample sums, which the
 * statistics pass keeps ([samples][size] floats per population) while all
 * populations' together take at most SOMA_DISSECT_GRADED_BYTES; beyond
 * that, the sum rounded to the nearest integer and clamped to [0, T] (the
 * histogram's bins: coarse, two bins for T = 1). ap [size]. */
#define SOMA_DISSECT_GRADED_BYTES ((size_t)256 << 20)
int soma_dissect_ap(const soma_dissect_stats *s, size_t i, size_t cls, double *ap);
/* 1 if population i's AP is computed from its exact per-sample sums (a
 * graded population within the bound), 0 if from the histogram. */
int soma_dissect_ap_exact(const soma_dissect_stats *s, size_t i);

/* A neuron: population index (in the net) and index in it. */
typedef struct soma_dissect_neuron {
    size_t pop, index;
} soma_dissect_neuron;

/* Hidden neurons counted over all hidden populations. */
size_t soma_dissect_hidden_count(const soma_dissect_stats *s);
/* The neurons of the hidden populations with the highest AP for class cls:
 * top of them (top > 0), else ceil(top_pct / 100 x count) (at least 1).
 * per_pop = 0 ranks all hidden neurons together (count = all hidden
 * neurons); per_pop = 1 takes that many from each hidden population (count
 * = its size). Ties go to the lower population, then the lower index.
 * out and ap (may be NULL) get *n entries, best first; cap >=
 * soma_dissect_hidden_count(s) always suffices. */
int soma_dissect_select_ap(const soma_dissect_stats *s, size_t cls, size_t top, double top_pct, int per_pop,
                           soma_dissect_neuron *out, double *ap, size_t cap, size_t *n, char *err, size_t errlen);

/* The same selection from any score of the hidden neurons: score
 * [soma_dissect_hidden_count(s)], hidden populations in s's order, each
 * population's neurons by index (the layout soma_dissect_attribution
 * writes); val (may be NULL) gets the selected neurons' scores. */
int soma_dissect_select_score(const soma_dissect_stats *s, const double *score, size_t top, double top_pct, int per_pop,
                              soma_dissect_neuron *out, double *val, size_t cap, size_t *n, char *err, size_t errlen);

/* Attribution (activation x gradient; Captum's LayerGradientXActivation,
 * CULNIG's first factor) of every hidden neuron for class cls:
 *
 *   score_i = mean over the class-cls samples b (of the first o->limit)
 *             of sum over steps t of s_i[b][t] * (-dL_b/ds_i[b][t])
 *
 * s the values of the neuron's `<pop>.spikes` site (READ hook), L_b the
 * trainer's loss of sample b with its label cls (its own loss option,
 * e.g. the rate-coded cross-entropy, plus the rate penalty if the model
 * has one), dL_b/ds from a GRAD hook on the same site during
 * soma_train_grad. soma_train_grad's loss is the batch mean, so its
 * gradients are multiplied by the batch size: scores do not depend on the
 * batch (o->batch, at most the trainer's batch). Positive: the neuron's
 * activity lowers class cls's loss (supports cls); to first order, scaling
 * the neuron's values by (1 + eps) changes the mean -L by eps x score_i.
 * Gradients are only computed: no optimizer step, the weights are not
 * changed (the trainer's gradient buffers are overwritten). score: layout
 * as soma_dissect_select_score; *samples (may be NULL): class cls's
 * samples. */
int soma_dissect_attribution(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s,
                             size_t cls, double *score, size_t *samples, char *err, size_t errlen);

typedef enum soma_dissect_by {
    SOMA_DISSECT_BY_AP = 0,          /* average precision (soma_dissect_select_ap) */
    SOMA_DISSECT_BY_ATTRIBUTION = 1, /* activation x gradient (soma_dissect_attribution) */
    SOMA_DISSECT_BY_IG = 2,          /* integrated gradients of each hidden population (soma_dissect_ig_scores) */
    SOMA_DISSECT_BY_WINA = 3,        /* mean |x_i| x ||W[:, i]||_2 (soma_dissect_wina_scores) */
    SOMA_DISSECT_BY_PROBE = 4,       /* z-score of a linear probe's weight (soma_dissect_probe_scores) */
    SOMA_DISSECT_BY_IMPACT = 5       /* class loss increase when ablated alone (soma_dissect_impact_scores) */
} soma_dissect_by;
/* "ap", "attribution", "ig", "wina", "probe" or "impact" into *by;
 * soma_dissect_by_name the other way. */
int soma_dissect_by_parse(const char *text, int *by, char *err, size_t errlen);
const char *soma_dissect_by_name(int by);
/* Class cls's top neurons by method `by`, as soma_dissect_select_score;
 * val (may be NULL) gets their AP or attribution. x and o are used by
 * attribution only (AP comes from s). probe and impact run with their
 * default options (zmin NaN for probe). */
int soma_dissect_select(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s, int by,
                        size_t cls, size_t top, double top_pct, int per_pop, soma_dissect_neuron *out, double *val,
                        size_t cap, size_t *n, char *err, size_t errlen);

/* A neuron set written "POP:I,J,K" (indices in population POP; several
 * populations joined by '+': "h1:0,3+h2:7"), into out (cap entries). */
int soma_dissect_set_parse(const soma_net *net, const char *text, soma_dissect_neuron *out, size_t cap, size_t *n,
                           char *err, size_t errlen);

typedef enum soma_dissect_mode {
    SOMA_DISSECT_MODE_ZERO = 0,  /* MASK hook: the neuron's values times 0 */
    SOMA_DISSECT_MODE_MEAN = 1,  /* OVERRIDE hook: the neuron's mean rate (soma_dissect_pop.rate) at every step */
    SOMA_DISSECT_MODE_SCALE = 2  /* MASK hook: the neuron's values times scale */
} soma_dissect_mode;
/* "zero", "mean" or "scale:X" into *mode and *scale. */
int soma_dissect_mode_parse(const char *text, int *mode, float *scale, char *err, size_t errlen);

/* Accuracy with neurons set[0..n) ablated (n = 0: none): *accuracy, and
 * class_acc [classes of ds] (NaN for a class without samples), pred
 * [samples] (may be NULL). s is needed for MODE_MEAN only (may be NULL
 * otherwise). Only hidden neurons may be ablated. */
int soma_dissect_evaluate(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s,
                          const soma_dissect_neuron *set,
                          size_t n, int mode, float scale, double *accuracy, double *class_acc, uint8_t *pred,
                          char *err, size_t errlen);
/* A random control for set[0..n): from each population as many neurons as
 * set has there, drawn uniformly without replacement from the whole
 * population (the set's own neurons included), keyed by (seed, draw) so
 * draws are reproducible and independent. pop_size: the net's sizes by
 * population index (soma_pop_info.size), npops entries. */
int soma_dissect_random_like(const soma_dissect_neuron *set, size_t n, const size_t *pop_size, size_t npops,
                             uint64_t seed, uint64_t draw, soma_dissect_neuron *out, char *err, size_t errlen);

#define SOMA_DISSECT_MAX_CLASSES 256
/* An ablation against no ablation and a random control (mean over draws). */
typedef struct soma_dissect_ablation {
    size_t classes, n, draws;      /* classes of the set, neurons ablated, random draws */
    int mode;                      /* soma_dissect_mode */
    float scale;
    double acc_before, acc_after, acc_control, acc_control_sd; /* sd over draws (1/R) */
    double class_before[SOMA_DISSECT_MAX_CLASSES];
    double class_after[SOMA_DISSECT_MAX_CLASSES];
    double class_control[SOMA_DISSECT_MAX_CLASSES];    /* mean over draws */
    double class_control_sd[SOMA_DISSECT_MAX_CLASSES]; /* sd over draws (1/R) */
    int by;                        /* how the set was chosen (soma_dissect_by; written as result.json's
                                      "selected_by"); soma_dissect_ablate sets -1 (a listed set) */
    size_t selected_on_train;      /* the set was chosen on this many train-split samples (result.json's
                                      "selected_on": "train:N"); 0: on the measured samples ("test"), or
                                      listed (null); soma_dissect_ablate sets 0 */
} soma_dissect_ablation;
/* Evaluate without ablation (skipped when before is given: a result of an
 * earlier call for the same data, whose before-accuracies are copied),
 * with set ablated, and with `draws` random sets (soma_dissect_random_like,
 * draws 0 .. draws-1 of seed). */
int soma_dissect_ablate(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s,
                        const soma_dissect_neuron *set, size_t n, int mode, float scale,
                        size_t draws, uint64_t seed, const soma_dissect_ablation *before, soma_dissect_ablation *out,
                        char *err, size_t errlen);

/* Outputs, written atomically into the existing folder dir:
 * stats: result.json (per population: rates, fire fractions, dead and
 * saturated neurons, per-class rates and selectivity, top samples) and
 * selectivity.png (class x hidden-neuron heat map, neurons sorted by their
 * preferred class then selectivity). */
int soma_dissect_write_stats(const soma_dissect_stats *s, const char *model, const char *dir, char *err,
                             size_t errlen);
/* select: result.json (class, the set with each neuron's AP) and ap.png (its APs). */
int soma_dissect_write_select(const soma_dissect_stats *s, const char *model, size_t cls,
                              const soma_dissect_neuron *set, const double *ap, size_t n, const char *dir, char *err,
                              size_t errlen);
/* The same for any method: "by" in result.json is soma_dissect_by_name(by),
 * each neuron's value is keyed "ap" or "attribution", the figure is ap.png
 * or attribution.png. */
int soma_dissect_write_select_by(const soma_dissect_stats *s, const char *model, int by, size_t cls,
                                 const soma_dissect_neuron *set, const double *val, size_t n, const char *dir,
                                 char *err, size_t errlen);
/* ablate: result.json and ablate.png (per-class accuracy before, after and
 * under the random control). na results: one per ablated set, labelled
 * labels[k] (e.g. "class=3"); sets[k] / nset[k] the neurons of each (may
 * be NULL). With na = classes and each set a class's top set, the JSON
 * holds the ablation-effect matrix effect[k][j] = class j's accuracy
 * before - after ablating set k (and the control's); the PNG shows the
 * first result, or for several the diagonal (each class's own drop). */
int soma_dissect_write_ablate(const soma_dissect_stats *s, const char *model, const soma_dissect_ablation *res,
                              size_t na, const char *const *labels, const soma_dissect_neuron *const *sets,
                              const size_t *nset, const char *dir, char *err, size_t errlen);

/* Activation patching (docs/dissect.md, "patch"): run source sample J and
 * record one site's values at every step (READ hook); run each target
 * sample with that site's values (all, or listed neurons only) replaced at
 * every step by the source's (OVERRIDE hook). The output compared is the
 * output population's `<out>.spikes` summed over the T steps. Per target:
 * effect = (patched - clean) . (source - clean) / |source - clean|^2 on
 * those sums (1: the source's output, 0: no change; NaN where source =
 * clean). Samples are encoded as soma_train_evaluate encodes them. */
typedef struct soma_dissect_patch_opts {
    const char *site; /* "hidden.spikes", "in->hidden.out", "hid.v"; ":I,J,..." patches those neurons only */
    size_t source;    /* sample J of the data set whose activations are patched in */
    size_t samples;   /* at most this many targets (0: no limit) */
    int cls;          /* >= 0: targets are samples of this class only; -1: any class */
    soma_hook_fn watch; /* may be NULL: a READ hook on the site during the patched pass (sees the patched values) */
    void *watch_user;
    /* Patching between two models (--from-model): NULL, or a second model
     * (its trainer, net and data options; ds unused) that agrees with x's
     * on what changes the encoding and on the input size, and has the site
     * with the same size (all refused by name otherwise). Then source is
     * unused: each target is its own source, run in `from` on the same
     * encoded input (x's encoding), its site recorded at every step and
     * written into x's pass; the source output of a target is from's
     * output sums on it (source_each), flips count toward from's
     * prediction of that target (pred_source). */
    const soma_dissect_ctx *from;
    const char *from_name; /* may be NULL: the second model's name, written into result.json */
} soma_dissect_patch_opts;
/* Targets: the first `samples` samples of the data set (within opts.limit)
 * of class cls (any if cls < 0), in order. Arrays are owned by the result. */
typedef struct soma_dissect_patch {
    char site[160];           /* the site, without the neuron list */
    size_t site_size;         /* values per sample at the site */
    int all;                  /* 1 if every neuron of the site was patched */
    size_t nneurons;          /* neurons patched */
    size_t *neurons;          /* [nneurons]: their indices in the site */
    char output[64];          /* the output population */
    size_t outputs;           /* its neurons (C) */
    size_t source, source_label, source_pred;
    double *source_out;       /* [C]: the source's output sums */
    int cls;                  /* the class asked for, or -1 */
    size_t n;                 /* targets */
    size_t *target;           /* [n]: their sample indices */
    uint8_t *label;           /* [n] */
    uint8_t *pred_clean;      /* [n]: predictions without patching */
    uint8_t *pred_patched;    /* [n]: with the site patched */
    double *clean, *patched;  /* [n][C]: output sums */
    double *effect;           /* [n] (NaN where source = clean) */
    double mean_effect;       /* over the finite effects (NaN if none) */
    size_t flip_candidates;   /* targets whose clean prediction is not the source's */
    size_t flips;             /* of those, the ones whose patched prediction is the source's */
    double flip_fraction;     /* flips / flip_candidates (NaN if none) */
    size_t to_source;         /* targets whose patched prediction is the source's */
    size_t changed;           /* targets whose patched output differs from the clean one */
    int from_model;           /* 1 with po->from: source, source_label, source_pred and source_out are unused (0) */
    char from_name[1024];     /* po->from_name */
    double *source_each;      /* with from: [n][C] from's output sums on each target; NULL otherwise */
    uint8_t *pred_source;     /* with from: [n] from's predictions; NULL otherwise */
    double accuracy_source;   /* with from: from's accuracy on the targets; NaN otherwise */
} soma_dissect_patch;
/* "SITE" or "SITE:I,J,..." into site (sitelen bytes), its size (values per
 * sample) and the listed indices idx[0..*n) (cap entries; idx NULL: only
 * count them). *n = 0 when no list is given. */
int soma_dissect_patch_site_parse(const soma_net *net, const char *text, char *site, size_t sitelen, size_t *size,
                                  size_t *idx, size_t cap, size_t *n, char *err, size_t errlen);
/* Run source, clean and patched passes (o: batch, limit, progress; may be
 * NULL); *out is freed with soma_dissect_patch_free. */
int soma_dissect_patch_run(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_patch_opts *po,
                           soma_dissect_patch **out, char *err, size_t errlen);
void soma_dissect_patch_free(soma_dissect_patch *p);
/* patch: result.json (per target: clean and patched outputs, predictions,
 * effect; the source's; flip fraction, mean effect) and patch.png (effect
 * per target, the first 60), written atomically into the existing dir. */
int soma_dissect_write_patch(const soma_dissect_patch *p, const char *model, const char *dir, char *err, size_t errlen);

/* Integrated gradients (docs/dissect.md, "integrated gradients"; Captum's
 * LayerIntegratedGradients): for a set of units at trainer sites and each
 * sample b of class cls (of the first o->limit),
 *
 *   IG_u(b) = sum_t (x_{t,u} - x') (1/m) sum_{k=1..m} dF/dx_{t,u} at x' + a_k (x - x'),
 *   a_k = (k - 1/2) / m (midpoint Riemann sum),
 *
 * x the unit's clean value at step t (READ on a clean pass), x' the
 * baseline; only the set's values move along the path (an OVERRIDE hook
 * writes them at every step), the rest of the net computes as usual, and
 * dF/dx comes from GRAD hooks on the same sites during soma_train_grad,
 * which then set the gradient of the set's values to 0 (an overridden
 * value is a constant of the path: nothing upstream acts through it, so a
 * set spanning layers counts no effect twice). The set is scaled jointly; attr[u] is the mean over the samples of
 * IG_u(b). Completeness: sum_u IG_u(b) = F_b(x) - F_b(x with the set at
 * x') as m grows, exactly where every path from the set to the output is
 * graded (ann layers); through spiking layers the gradients are
 * surrogates, F is piecewise constant along the path, and the sum only
 * approximates the difference (res->gap measures it).
 * F is computed from the output population's values as the trainer's loss
 * computes them, with label cls: */
typedef enum soma_dissect_target {
    SOMA_DISSECT_TARGET_PROB = 0,    /* exp(-L_cls): the softmax probability of cls for ce_count and ce_last;
                                        for ce_rate / ce_mem the geometric mean over steps of the per-step ones */
    SOMA_DISSECT_TARGET_LOGPROB = 1, /* -L_cls (the model's own loss, without a rate penalty) */
    SOMA_DISSECT_TARGET_LOGIT = 2    /* sum over steps of the output's `<out>.spikes` value of cls (the count
                                        readout's logit); losses on output spikes only (not ce_mem, ce_last) */
} soma_dissect_target;
/* "prob", "logprob" or "logit" into *target; soma_dissect_target_name the other way. */
int soma_dissect_target_parse(const char *text, int *target, char *err, size_t errlen);
const char *soma_dissect_target_name(int target);

typedef struct soma_dissect_ig_opts {
    size_t steps;   /* m, gradient evaluations along the path (0 = 64) */
    int target;     /* soma_dissect_target */
    float baseline; /* x', the same for every value (0: the default) */
} soma_dissect_ig_opts;
void soma_dissect_ig_opts_default(soma_dissect_ig_opts *io);

typedef struct soma_dissect_ig_result {
    size_t samples;    /* samples of class cls attributed */
    size_t steps;      /* m */
    int target;        /* soma_dissect_target */
    double f_input;    /* mean over the samples of F(x) */
    double f_baseline; /* mean of F with the set at the baseline */
    double sum;        /* sum of attr: completeness says f_input - f_baseline */
    double gap;        /* sum_b |sum_u IG_u(b) - (F_b(x) - F_b(x'))| / sum_b |F_b(x) - F_b(x')|:
                          0 where completeness holds */
} soma_dissect_ig_result;

/* Joint IG of the neurons set[0..n) (their `<pop>.spikes` values; hidden
 * populations only): attr [n]; res may be NULL. One soma_train_grad call
 * runs many (sample, a_k) pairs, each a row (at most the trainer's batch,
 * and o->batch). The trainer must have no rate penalty (its gradient would
 * enter dF/dx): SOMA_STATUS_UNSUPPORTED otherwise. Hooks are removed when it
 * returns; the trainer's gradient buffers are overwritten, the weights are not. */
int soma_dissect_integrated_gradients(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_ig_opts *io,
                                      size_t cls, const soma_dissect_neuron *set, size_t n, double *attr,
                                      soma_dissect_ig_result *res, char *err, size_t errlen);
/* Every neuron of one site scaled together (a hidden population's
 * `<pop>.spikes` or a projection's `<from>-><to>.out`): attr [site size]. */
int soma_dissect_ig_site(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_ig_opts *io, size_t cls,
                         const char *site, double *attr, soma_dissect_ig_result *res, char *err, size_t errlen);
/* IG of each hidden population's `<pop>.spikes` (one population scaled at
 * a time), score laid out as soma_dissect_select_score reads it. */
int soma_dissect_ig_scores(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_ig_opts *io,
                           const soma_dissect_stats *s, size_t cls, double *score, char *err, size_t errlen);

/* WINA scores of the hidden neurons for class cls (docs/dissect.md,
 * "wina"): score_i = mean over the class-cls samples (of the first
 * o->limit) and the T steps of |x_i|, times ||W[:, i]||_2, x_i the
 * neuron's `<pop>.spikes` value, W[:, i] its column in all the dense
 * projections leaving its population together (recurrent weights not
 * counted; a convolution is refused). score laid out as
 * soma_dissect_select_score reads it. */
int soma_dissect_wina_scores(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s, size_t cls,
                             double *score, char *err, size_t errlen);

/* Linear probe (docs/dissect.md, "probe"; NeuroStrike): a logistic
 * regression "class cls against the rest" on every hidden neuron's
 * per-sample value max-pooled over the T steps (a READ-hook pass of its
 * own over the first o->limit samples; it keeps samples x hidden floats,
 * at most SOMA_DISSECT_PROBE_BYTES), each neuron standardised over the
 * samples (constant ones get weight 0), an unpenalised bias, the L2
 * penalty (l2/2)|w|^2 on the mean log-loss, fitted deterministically by
 * Nesterov's accelerated gradient with a fixed step budget and a
 * convergence test (largest |gradient| < tol). A neuron's score is the
 * z-score of its weight over all hidden neurons' weights ((w - mean) / sd,
 * sd 1/H): positive where its activity speaks for cls. */
#define SOMA_DISSECT_PROBE_BYTES ((size_t)1 << 30)
typedef struct soma_dissect_probe_opts {
    double l2;    /* penalty on the mean log-loss (0 = 1e-2) */
    size_t iters; /* gradient steps at most (0 = 2000) */
    double tol;   /* converged when every |gradient| < tol (0 = 1e-6) */
} soma_dissect_probe_opts;
void soma_dissect_probe_opts_default(soma_dissect_probe_opts *po);
typedef struct soma_dissect_probe_result {
    size_t samples, positives, iters; /* samples fitted, of class cls, gradient steps taken */
    int converged;                    /* 1 if the largest |gradient| fell below tol */
    double bias, objective, grad_max, l2;
    double accuracy;                  /* the probe's own on its samples (threshold 0.5) */
} soma_dissect_probe_result;
/* The fit alone: x [n][H] values, positive [n] (nonzero: of the group); w
 * [H] the weights on the standardised values; res may be NULL. */
int soma_dissect_probe_fit(const float *x, const uint8_t *positive, size_t n, size_t H, const soma_dissect_probe_opts *po,
                           double *w, soma_dissect_probe_result *res, char *err, size_t errlen);
/* z [H] (and weight [H], may be NULL) laid out as soma_dissect_select_score
 * reads them; po and res may be NULL. */
int soma_dissect_probe_scores(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s, size_t cls,
                              const soma_dissect_probe_opts *po, double *z, double *weight, soma_dissect_probe_result *res,
                              char *err, size_t errlen);
/* Selection by probe z-score: with zmin finite, every hidden neuron with z
 * > zmin (NeuroStrike's cut is 3; SOMA_STATUS_NOTFOUND if none; top,
 * top_pct and per_pop unused); zmin NaN: as soma_dissect_select_score. res
 * (may be NULL) gets the fit's summary. */
int soma_dissect_probe_select(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s, size_t cls,
                              const soma_dissect_probe_opts *po, double zmin, size_t top, double top_pct, int per_pop,
                              soma_dissect_neuron *out, double *val, size_t cap, size_t *n, soma_dissect_probe_result *res,
                              char *err, size_t errlen);

/* Impact (docs/dissect.md, "impact"): for each candidate hidden neuron,
 * the increase of class cls's mean loss (the trainer's loss with label
 * cls, as soma_train_grad returns it: with the trainer's rate penalty if
 * it has one, which the CLI sets to 0; over the class-cls samples of the
 * first o->limit) when that neuron alone is zeroed by a MASK hook on its
 * `<pop>.spikes`: one pass per candidate. Candidates are the top
 * `candidates` (else candidates_pct %) hidden neurons by
 * soma_dissect_attribution; the others score -inf. The loss rather than
 * accuracy: it is smooth, where a class's accuracy moves in steps of 1/K
 * and leaves most single neurons tied at 0. */
typedef struct soma_dissect_impact_opts {
    size_t candidates;     /* neurons measured (0: candidates_pct) */
    double candidates_pct; /* percent of the hidden neurons measured (default 5) */
} soma_dissect_impact_opts;
void soma_dissect_impact_opts_default(soma_dissect_impact_opts *io);
typedef struct soma_dissect_impact_result {
    size_t samples, candidates; /* class-cls samples, neurons measured */
    double clean_loss;          /* the mean loss without ablation */
} soma_dissect_impact_result;
/* score [H] laid out as soma_dissect_select_score reads it; io, res may be NULL. */
int soma_dissect_impact_scores(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s, size_t cls,
                               const soma_dissect_impact_opts *io, double *score, soma_dissect_impact_result *res, char *err,
                               size_t errlen);
/* Selection by impact as soma_dissect_select_score; asking for more
 * neurons than were measured is an error naming the candidates. */
int soma_dissect_impact_select(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s, size_t cls,
                               const soma_dissect_impact_opts *io, size_t top, double top_pct, int per_pop,
                               soma_dissect_neuron *out, double *val, size_t cap, size_t *n, char *err, size_t errlen);

/* The influential neuron path of class cls (docs/dissect.md, "path";
 * Influential Neuron Path): over the hidden populations in the net's
 * order, keep the path so far and add the neuron of the next layer whose
 * joint IG with it (sum over the set of soma_dissect_integrated_gradients,
 * m = steps (0: 20), target prob) is largest (ties to the lower index);
 * neurons dead in s are not run (their joint IG is the path's). Baseline:
 * each layer's most active neuron for cls (largest class rate in s). Both
 * paths are zeroed and evaluated (soma_dissect_evaluate). */
#define SOMA_DISSECT_PATH_MAX 64
typedef struct soma_dissect_path {
    size_t cls, layers, steps;    /* class, hidden layers (neurons per path), m */
    size_t samples;               /* class-cls samples IG averaged over */
    soma_dissect_neuron ig[SOMA_DISSECT_PATH_MAX];     /* the influential path, layer by layer */
    double ig_joint[SOMA_DISSECT_PATH_MAX];            /* joint IG of the path up to and including layer l */
    soma_dissect_neuron active[SOMA_DISSECT_PATH_MAX]; /* the most active neuron of each layer */
    double active_rate[SOMA_DISSECT_PATH_MAX];         /* its class rate (value per step) */
    double acc_before, class_before;                   /* accuracy, class cls's accuracy, nothing ablated */
    double acc_after_ig, class_after_ig;               /* the influential path zeroed */
    double acc_after_active, class_after_active;       /* the most-active path zeroed */
} soma_dissect_path;
int soma_dissect_path_run(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s, size_t cls,
                          size_t steps, soma_dissect_path *out, char *err, size_t errlen);
/* path: result.json (both paths, joint IGs, class rates, accuracies) and
 * path.png (layers as columns, both paths drawn), atomically into dir. */
int soma_dissect_write_path(const soma_dissect_stats *s, const soma_dissect_path *p, const char *model, const char *dir,
                            char *err, size_t errlen);


/* Pruning (docs/dissect.md, "prune"): physically remove the lowest-scored
 * fraction of each hidden population's neurons, giving a smaller net with
 * the trained weights copied over (incoming weight rows, outgoing weight
 * columns, biases, recurrent rows and columns, `learn: neuron`
 * parameters). Hidden as in the statistics: a projection leaves it; the
 * input and output populations are never pruned. A pruned population must
 * be flat and reached by dense projections only: convolutions (channels)
 * and cell models with weights of their own are refused by name. */
typedef enum soma_dissect_score {
    SOMA_DISSECT_SCORE_RATE = 0,       /* mean value per step (soma_dissect_pop.rate) */
    SOMA_DISSECT_SCORE_WINA = 1,       /* mean |x_i| per step x L2 norm of the neuron's outgoing weight
                                          columns (all projections leaving it, recurrent included) */
    SOMA_DISSECT_SCORE_ATTRIBUTION = 2 /* sum over classes of |soma_dissect_attribution| */
} soma_dissect_score;
/* "rate", "wina" or "attribution" into *score; soma_dissect_score_name the other way. */
int soma_dissect_score_parse(const char *text, int *score, char *err, size_t errlen);
const char *soma_dissect_score_name(int score);
/* Score every hidden neuron of s (computed on x's data set, its first
 * o->limit samples; s from the same): score [soma_dissect_hidden_count(s)],
 * layout as soma_dissect_select_score. wina runs one forward pass with READ
 * hooks (mean |x| per step); attribution one gradient pass per class
 * present (classes without samples add nothing). */
int soma_dissect_prune_scores(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s,
                              int score, double *out, char *err, size_t errlen);
/* The neurons to remove: from each hidden population of s, the
 * floor(fraction x size) lowest-scored (NaN counts as lowest; ties: the
 * lower index first), fraction in [0, 1). out gets *n entries, by
 * population then index; cap >= soma_dissect_hidden_count(s) suffices. */
int soma_dissect_prune_select(const soma_dissect_stats *s, const double *score, double fraction,
                              soma_dissect_neuron *out, size_t cap, size_t *n, char *err, size_t errlen);
/* A new net *out, net without neurons set[0..n) (hidden neurons only, each
 * at most once): same populations (smaller sizes), parameters, learn
 * modes, projections, shapes and timing, with net's trained weights copied
 * over, so that its outputs equal net's with those neurons' spikes set to 0
 * (soma_dissect_evaluate, SOMA_DISSECT_MODE_ZERO; up to the rounding of
 * sums over fewer terms). net's weights must be allocated (trained or
 * loaded). Free *out with soma_net_free. */
int soma_dissect_prune_net(soma_net *net, const soma_dissect_neuron *set, size_t n, soma_net **out, char *err,
                           size_t errlen);

/* A pruning run: score on po->train (its first po->calib samples), prune
 * each fraction, evaluate on x's data set (o->limit samples) with the
 * trainer's options (batch, threads), fine-tune, save. */
typedef struct soma_dissect_prune_opts {
    const double *fractions;   /* [nfractions], each in [0, 1) */
    size_t nfractions;
    int score;                 /* soma_dissect_score */
    double finetune;           /* epochs of training of each pruned net on train with the model's own train
                                  options (a fraction: that share of an epoch's batches); 0 = none */
    const soma_dataset *train; /* the training split: scores and fine-tuning */
    size_t calib;              /* its first samples scored (0 = all) */
    size_t repeats;            /* timed evaluations of each net, median taken (0 = 3) */
    const char *dir;           /* existing folder for the models (NULL: none saved): pruned.soma and
                                  finetuned.soma, or pruned-F.soma and finetuned-F.soma with several fractions */
    const soma_data_opts *save_data;   /* data and train options saved with the models (NULL: x->d, the trainer's) */
    const soma_train_opts *save_train;
} soma_dissect_prune_opts;
void soma_dissect_prune_opts_default(soma_dissect_prune_opts *po);

typedef struct soma_dissect_prune_result {
    double fraction;
    size_t hidden_before, hidden_after;  /* hidden neurons */
    size_t params_before, params_after;  /* learnable scalars (soma_net_param_count) */
    double acc_before, acc_pruned, acc_finetuned; /* on x's data set; acc_finetuned NaN without fine-tuning */
    double sps_before, sps_after;        /* evaluation samples/s (soma_train_evaluate), median of repeats */
    double finetune_seconds;             /* wall time of the fine-tuning */
    char pruned_path[1024], finetuned_path[1024]; /* "" where not saved */
} soma_dissect_prune_result;
/* res [po->nfractions]. o->progress gets phases "calib", "score",
 * "eval" and "finetune". The dense model is timed once. */
int soma_dissect_prune_run(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_prune_opts *po,
                           soma_dissect_prune_result *res, char *err, size_t errlen);
/* prune: result.json (score, repeats, per fraction the result) and, with
 * several fractions, prune.png (accuracy pruned and fine-tuned against the
 * fraction), written atomically into the existing dir. */
int soma_dissect_write_prune(const soma_dissect_prune_opts *po, const soma_dissect_prune_result *res,
                             const char *model, const char *dir, char *err, size_t errlen);
/* Simulated circuits (docs/dissect.md, "lesion"): `soma dissect FILE.yaml
 * lesion|stimulate` on a network for the simulator. Chosen neurons of one
 * population are lesioned (a MASK hook of 0 on `<pop>.spikes`: no spike
 * leaves them, their own reset is unchanged) or stimulated (an OVERRIDE
 * hook adding a constant current on `<pop>.current`, or Poisson events of
 * a weight on `<pop>.input`) during a window [t0, t1) ms of one run of
 * the whole network from 0 to time_ms, and every population is measured
 * before [skip, t0), during [t0, t1) and after [t1, time). */
typedef enum soma_dissect_circuit_action {
    SOMA_DISSECT_LESION = 0,    /* silence the chosen neurons */
    SOMA_DISSECT_STIMULATE = 1  /* drive them (current_pa, or rate_hz and weight) */
} soma_dissect_circuit_action;
typedef struct soma_dissect_circuit_opts {
    int action;               /* soma_dissect_circuit_action */
    const char *pop;          /* the population, by name (--pop) */
    double fraction;          /* > 0: round(fraction x size) neurons (at least 1) drawn uniformly without
                                 replacement, keyed by seed (--fraction, in (0, 1]); 0: the listed neurons */
    const size_t *neurons;    /* fraction 0: indices in pop, distinct (--neurons) */
    size_t nneurons;
    double t0_ms, t1_ms;      /* the window, ms, 0 <= t0 < t1 <= time_ms (--window T0:T1) */
    double time_ms;           /* the run, ms from 0 (--t) */
    double skip_ms;           /* "before" starts here (e.g. the file's warm-up), 0 <= skip < t0; else 0 */
    double current_pa;        /* stimulate, rate_hz 0: the current added to each chosen neuron's external
                                 input (`<pop>.current`, pA; the model's input unit for trainer models) */
    double rate_hz, weight;   /* stimulate, rate_hz > 0: independent Poisson events at rate_hz into each chosen
                                 neuron, each adding weight (the model's weight unit) on port 0 (`<pop>.input`) */
    uint64_t seed;            /* the draw of the neurons and of the Poisson events (--seed) */
    soma_sim_progress_fn progress; /* may be NULL: soma_sim_run's progress; nonzero cancels */
    void *user;
} soma_dissect_circuit_opts;
void soma_dissect_circuit_opts_default(soma_dissect_circuit_opts *o);

#define SOMA_DISSECT_CIRCUIT_SYNC_BIN_MS 3.0
/* One population in the three windows (index 0 before, 1 during, 2 after). */
typedef struct soma_dissect_circuit_pop {
    char name[64];
    size_t size;
    uint32_t first;           /* global id of its neuron 0 */
    uint64_t spikes[3];
    double rate_hz[3];        /* spikes / (size x window) */
    double cv_isi[3];         /* soma_spike_stats's cv_isi over the window's spikes (NaN: no neuron with 2 ISIs) */
    double synchrony[3];      /* var / mean of the population's spike count in bins of 3 ms (Potjans & Diesmann
                                 2014): 1 for independent Poisson neurons, larger when they fire together;
                                 NaN without spikes or with fewer than 2 bins */
    double chi[3];            /* Golomb's chi over 1 ms bins (soma_spike_stats's synchrony) */
} soma_dissect_circuit_pop;
typedef struct soma_dissect_circuit {
    int action;
    char pop[64];             /* the population acted on */
    size_t pop_index;
    size_t n;                 /* chosen neurons */
    size_t *neurons;          /* [n] their indices in pop, ascending */
    double fraction, current_pa, rate_hz, weight;
    uint64_t seed;
    double dt_ms;
    double t_ms[4];           /* window edges: skip, t0, t1, time (ms) */
    uint64_t step[4];         /* the same in steps */
    double target_rate_hz[3]; /* the chosen neurons' rate in each window */
    size_t npops;
    soma_dissect_circuit_pop *pops; /* [npops] */
    soma_spike *spikes;       /* [nspikes] every spike of the run, sorted by (step, id) */
    size_t nspikes;
    uint8_t spikes_sha256[32];
    int cancelled;            /* 1 if progress cancelled: the windows cover what was simulated */
    double rest_rate_hz[3];   /* the population's other neurons' rate in each window (NaN if none) */
} soma_dissect_circuit;
/* Build net in the simulator (so: threads, seed; spikes are always
 * recorded), choose the neurons, hook them, run time_ms and measure. Bad
 * options give SOMA_STATUS_INVALID (NOTFOUND for an unknown population)
 * with a message naming the CLI option (--pop, --fraction, --neurons,
 * --window, --t, --current, --rate, --weight). *out is freed with
 * soma_dissect_circuit_free. */
int soma_dissect_circuit_run(const soma_net *net, const soma_sim_opts *so, const soma_dissect_circuit_opts *o,
                             soma_dissect_circuit **out, char *err, size_t errlen);
void soma_dissect_circuit_free(soma_dissect_circuit *c);
/* result.json (the action, the neurons, the windows, per population and
 * for the chosen neurons rate, CV of ISIs, synchrony and chi before /
 * during / after), raster.png (from skip to the end, the first 200 neurons of
 * each population, the window marked) and rates.png (rates before, during
 * and after per population), written atomically into the existing dir;
 * file (may be NULL) is written into result.json. */
int soma_dissect_write_circuit(const soma_dissect_circuit *c, const char *file, const char *dir, char *err,
                               size_t errlen);


/* Activation sparsity of matrix products (docs/dissect.md, "sparsify"):
 * per sample and step keep only some inputs x of a dense projection W
 * (d = its inputs), zero the rest with a MASK hook on its
 * `<from>-><to>.in` site (the values come from a READ hook on
 * `<from>.spikes`), so the trainer may compute the product over the kept
 * inputs only (soma_train_set_mask_sparse). */
typedef enum soma_sparsify_method {
    SOMA_SPARSIFY_WINA = 0, /* the k largest |x_i| ||W[:, i]||_2 per sample and step */
    SOMA_SPARSIFY_TEAL = 1, /* |x_i| >= a per-site threshold from a calibration histogram */
    SOMA_SPARSIFY_TOPK = 2  /* the k largest |x_i| per sample and step */
} soma_sparsify_method;
/* "wina", "teal" or "topk" into *method; soma_sparsify_method_name the other way. */
int soma_sparsify_method_parse(const char *text, int *method, char *err, size_t errlen);
const char *soma_sparsify_method_name(int method);
/* Inputs kept at sparsity s: k = floor(d (1 - s)) (with 1e-9 of slack, so
 * that 1000 x (1 - 0.3) keeps 700). */
size_t soma_sparsify_keep_count(size_t d, double sparsity);
/* One row's mask [d] (1 kept, 0 dropped). WINA and topk: the k inputs with
 * the largest score (|x_i| colnorm[i], or |x_i|), ties to the lower index
 * (zero scores too); TEAL: |x_i| >= threshold (threshold <= 0 keeps all;
 * k unused). colnorm is read by WINA only. */
int soma_sparsify_mask_row(int method, const float *x, const float *colnorm, size_t d, size_t k, float threshold,
                           float *mask);
/* TEAL's threshold from values[n]: |x| in a histogram of 1/16-octave bins
 * (exact zeros apart); of the bins' lower edges (and 0, and +inf) the one
 * whose fraction of values below it is closest to s (ties: the lower). */
float soma_sparsify_teal_threshold(const float *values, size_t n, double sparsity);

typedef struct soma_dissect_sparsify_opts {
    const int *methods;            /* [nmethods] soma_sparsify_method */
    size_t nmethods;
    const double *sparsity;        /* [nsparsity] fractions s in [0, 1) */
    size_t nsparsity;
    const char *const *sites;      /* [nsites] "FROM->TO"; 0 sites: every dense projection from a hidden population */
    size_t nsites;
    const soma_dataset *calib;     /* TEAL: calibration samples (the training split) */
    size_t calib_limit;            /* its first N (0 = all; default 1000) */
    size_t repeats;                /* timed evals per config (median); 0: no timing (default 3) */
    double sparse_max;             /* the trainer's sparse-product threshold during the run
                                    * (soma_train_set_mask_sparse; default SOMA_TRAIN_MASK_SPARSE_DEFAULT) */
} soma_dissect_sparsify_opts;
void soma_dissect_sparsify_opts_default(soma_dissect_sparsify_opts *o);

typedef struct soma_dissect_sparsify_row {
    int method;         /* soma_sparsify_method */
    double sparsity;    /* s asked */
    double accuracy;    /* with the products sparsified */
    double achieved;    /* fraction of the products' inputs that are 0 after the mask (all sites, samples, steps) */
    double rel_error;   /* ||y - y_dense|| / ||y_dense|| over the sites' `.out` values, all samples and steps */
    double eval_s;      /* median wall time of the whole eval (encoding included), seconds; NaN: not timed */
    double speedup;     /* dense eval_s / this eval_s */
    double sparse_path; /* fraction of the products' rows the trainer computed over the kept inputs only */
} soma_dissect_sparsify_row;

typedef struct soma_dissect_sparsify {
    size_t nsites;
    char (*sites)[160];       /* [nsites] "FROM->TO" */
    size_t nmethods, nsparsity, nrows;
    soma_dissect_sparsify_row *rows; /* [nrows = nmethods x nsparsity], method-major */
    float *teal_threshold;    /* [nsites][nsparsity] (0 when TEAL was not asked) */
    size_t samples, calib_samples, batch, repeats, steps;
    int threads;
    double dense_accuracy;    /* without masks (soma_train_evaluate's) */
    double dense_sparsity;    /* fraction of the products' inputs that are 0 as they come (ReLU zeros, no spike) */
    double dense_eval_s;      /* median wall time of the unhooked eval */
} soma_dissect_sparsify;
/* Accuracy, achieved sparsity, relative error and eval time of every
 * (method, sparsity) against the dense eval, on o->limit samples of x->ds
 * in batches of o->batch. *out is freed with soma_dissect_sparsify_free.
 * As the other dissect functions it removes every hook when it returns,
 * and it leaves the trainer's sparse-product threshold at
 * SOMA_TRAIN_MASK_SPARSE_DEFAULT. */
int soma_dissect_sparsify_run(const soma_dissect_ctx *x, const soma_dissect_opts *o,
                              const soma_dissect_sparsify_opts *so, soma_dissect_sparsify **out, char *err,
                              size_t errlen);
void soma_dissect_sparsify_free(soma_dissect_sparsify *r);
/* result.json and sparsify.png (accuracy vs sparsity, one series per
 * method, the dense accuracy as a reference), atomically into dir. */
int soma_dissect_write_sparsify(const soma_dissect_sparsify *r, const char *model, const char *dir, char *err,
                                size_t errlen);

/* Editing (docs/dissect.md, "edit"; NeST, MNAFT): fine-tune only chosen
 * neurons, everything else frozen (soma_train_set_learn_mask), toward a
 * goal for one class, and measure every class before and after. A
 * neuron's parameters: its row of each dense weight matrix into its
 * population, its entry of their biases, its row of the population's
 * recurrent weights, its entry of each per-neuron learned parameter
 * (shared ones, convolution kernels and cell weights stay frozen). */
typedef enum soma_dissect_goal {
    SOMA_DISSECT_GOAL_SUPPRESS = 0, /* lower class K's accuracy: K's training samples relabelled to another class
                                       (class (K + 1 + h(seed, i) mod (C - 1)) mod C for sample i; random-label
                                       unlearning), the others keep theirs */
    SOMA_DISSECT_GOAL_ENHANCE = 1   /* raise it: the normal loss, K's samples weighted up (each appears `weight`
                                       times per epoch) */
} soma_dissect_goal;
/* "suppress" or "enhance" into *goal (a message naming --goal otherwise). */
int soma_dissect_goal_parse(const char *text, int *goal, char *err, size_t errlen);
const char *soma_dissect_goal_name(int goal);
typedef struct soma_dissect_edit_opts {
    const soma_dissect_neuron *set; /* [n] the neurons trained: distinct, not input neurons, each with a
                                       parameter of its own (else SOMA_STATUS_INVALID naming it) */
    size_t n;
    size_t cls;                /* the targeted class K */
    int goal;                  /* soma_dissect_goal */
    int epochs;                /* passes over the training samples (default 1) */
    double lr;                 /* learning rate on a constant schedule; 0: the model's (default 0) */
    size_t weight;             /* enhance: repeats of each class-K sample per epoch (default 4) */
    const soma_dataset *train; /* the training split */
    size_t train_limit;        /* its first N samples (0 = all) */
    uint64_t seed;             /* shuffling and suppress's labels (default 1) */
    const char *path;          /* NULL, or where the edited model is saved (atomically) */
    const soma_data_opts *save_data;  /* options saved with it (NULL: x->d, the trainer's) */
    const soma_train_opts *save_train;
} soma_dissect_edit_opts;
void soma_dissect_edit_opts_default(soma_dissect_edit_opts *eo);
typedef struct soma_dissect_edit_result {
    size_t classes, cls, neurons;
    int goal, epochs;
    double lr;
    size_t train_samples, target_train_samples; /* training samples used; of class K */
    double acc_before, acc_after;               /* on x's data set (o->limit samples) */
    double class_before[SOMA_DISSECT_MAX_CLASSES], class_after[SOMA_DISSECT_MAX_CLASSES]; /* NaN: no sample */
    double target_before, target_after;         /* class K's */
    double others_mean_abs_change;              /* mean |after - before| over the other classes present */
    size_t params_total;                        /* learnable scalars of the net */
    size_t params_selected;                     /* the set's own (those allowed to learn) */
    size_t params_changed;                      /* that differ bitwise after the edit (<= params_selected) */
    size_t params_changed_outside;              /* frozen ones that changed: always 0 on success (checked) */
    double train_seconds, final_loss;           /* wall time of the training; mean loss of its last epoch */
} soma_dissect_edit_result;
/* Train x->net's set on eo->train with a trainer of its own (the
 * options of x->tr, eo->lr), evaluate on x->ds before and after (o->limit
 * samples, o->batch), check that nothing frozen moved, save to eo->path.
 * The net's weights are changed in place (x->tr is synced after). o->progress
 * gets phases "evaluate" (samples) and "edit" (batches). */
int soma_dissect_edit_run(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_edit_opts *eo,
                          soma_dissect_edit_result *r, char *err, size_t errlen);
/* Freeze everything of tr's net but set[0..n)'s parameters (learn masks on
 * every tensor); *params (may be NULL) gets their count. */
int soma_dissect_edit_freeze(soma_trainer *tr, soma_net *net, const soma_dissect_neuron *set, size_t n, size_t *params,
                             char *err, size_t errlen);
/* edit: result.json (class, goal, neurons, parameter counts, per-class
 * accuracy before and after) and edit.png (per-class accuracy bars, before
 * and after), atomically into the existing dir; net names the neurons. */
int soma_dissect_write_edit(const soma_dissect_edit_opts *eo, const soma_dissect_edit_result *r, const soma_net *net,
                            const char *model, const char *dir, char *err, size_t errlen);
/* Two models on the same inputs (docs/dissect.md, "compare"; Shortcut
 * neurons' comparative score). x and x2 are two trainers whose nets have
 * the same populations (by name) with the same sizes; each batch of x's
 * data set is encoded once as soma_train_evaluate encodes it for x (x's
 * data options and seed) and fed to both, so both see the same spikes.
 * x2->d must agree with x->d on every option that changes the encoding
 * (encoding, steps, gain, threshold, tau, delta_off, bin_ms): refused by
 * name otherwise; x2->ds is not read. READ hooks on every non-input
 * `<pop>.spikes` pool each neuron per sample by sum over the T steps (as
 * the statistics pass does); memory is O(batch x neurons). x2->tr must be
 * another trainer than x->tr (each holds one hook set). */
int soma_dissect_compare_check(const soma_dissect_ctx *x, const soma_dissect_ctx *x2, char *err, size_t errlen);
typedef struct soma_dissect_compare_pop {
    char name[64];
    size_t pop, size;    /* index in x's net, neurons */
    int hidden;          /* 1 if a projection leaves it */
    double *rms;         /* [size]: sqrt(mean over samples of (v - v2)^2), v / v2 the neuron's pooled value in x / x2 */
    double mean_rms;     /* mean of rms over the population */
} soma_dissect_compare_pop;
typedef struct soma_dissect_compare {
    size_t samples, steps, npops;
    double accuracy, accuracy2;     /* of x and of x2 (each with its own readout) on the samples */
    soma_dissect_compare_pop *pops; /* [npops]: x's non-input populations in net order */
    size_t ntop;                    /* top neurons over all of them (min(top, neurons)) */
    soma_dissect_neuron *top;       /* [ntop]: largest rms first; ties to the lower population, then index */
    double *top_rms;                /* [ntop] */
} soma_dissect_compare;
/* top: neurons in the top list (0 = 20). o: limit, batch, progress (phase
 * "compare"); may be NULL. *out is freed with soma_dissect_compare_free.
 * Every hook of both trainers is removed when it returns. */
int soma_dissect_compare_run(const soma_dissect_ctx *x, const soma_dissect_ctx *x2, const soma_dissect_opts *o, size_t top,
                             soma_dissect_compare **out, char *err, size_t errlen);
void soma_dissect_compare_free(soma_dissect_compare *c);
/* compare: result.json (models, accuracies, per population mean rms and
 * rms per neuron, the top list) and compare.png (per population, the RMS
 * of its largest-RMS neurons, rank 1 to 20, as bars), atomically into dir. */
int soma_dissect_write_compare(const soma_dissect_compare *c, const char *model, const char *model2, const char *dir,
                               char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* SOMA_H */
