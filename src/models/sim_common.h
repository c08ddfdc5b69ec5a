/* sim_common.h — helpers shared by the simulator's neuron models
 * (src/models/sim_*.c): the uniform / per-neuron parameter access used by
 * their always-inline row functions, step counts of refractory periods as
 * NEST and Brian2 round them, exact propagators of linear membranes, and a
 * vectorizable exp.
 *
 * A model's sim_step calls its row function once per case through
 * SIM_DISPATCH; the flags are compile-time constants inside each copy, so the
 * uniform copy reads scalars hoisted out of the loop and every copy
 * vectorizes without branches on the flags.
 */
#ifndef SOMA_SIM_COMMON_H
#define SOMA_SIM_COMMON_H
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "core/vmath.h"
#include "models/model.h"

#define SIM_INLINE static inline __attribute__((always_inline))

/* Declare a restrict pointer `name` to array `src` ([N], or [1] when
 * uniform) and its first value `name##_u`, read once before the loop. */
#define SIM_ARR(name, src)              \
    const float *restrict name = (src); \
    const float name##_u __attribute__((unused)) = name[0]
/* Neuron i's value of an array declared with SIM_ARR, in a row function
 * whose constant flag U says "uniform". */
#define SIM_AT(name) (U ? name##_u : name[i])

/* Put before a neuron loop: its arrays (state variables, inputs, parameters)
 * are distinct and each iteration touches only element i. GCC does not
 * apply restrict to the local pointers of an inlined row function, and
 * without this it gives up on the many alias checks. */
#define SIM_IVDEP _Pragma("GCC ivdep")
/* Row loops load every value and make every comparison unconditionally
 * (values first, selects last): a load or float compare under a condition
 * would block the if-conversion that vectorizing needs. */

/* ROW(U, E): U = parameters uniform, E = an external input array is given. */
#define SIM_DISPATCH(a, ROW)              \
    do {                                  \
        if ((a)->uniform) {               \
            if ((a)->ext) ROW(1, 1);      \
            else ROW(1, 0);               \
        } else {                          \
            if ((a)->ext) ROW(0, 1);      \
            else ROW(0, 0);               \
        }                                 \
    } while (0)

/* Define the model's sim_step, `static void step(...)`, as its row function
 * row(U, E, a, state, in, spk, i0, i1) over the whole range, in the case
 * SIM_DISPATCH picks (for models without blocking or extra arguments). */
#define SIM_ROW_WHOLE_(U, E) row(U, E, a, state, in, spk, i0, i1)
#define SIM_STEP_FROM_ROW                                                                                       \
    static void step(const soma_sim_args *a, float *const *state, float *const *in, uint8_t *spk, size_t i0, \
                     size_t i1) {                                                                           \
        SIM_DISPATCH(a, SIM_ROW_WHOLE_);                                                                    \
    }

/* The end of an integrate-and-fire step with a refractory counter, shared
 * by the models that hold V while refractory (iaf_psc_delta/exp/alpha,
 * lif_cuba/coba) and by the training half of those that have one. */
typedef struct sim_fire {
    float v;    /* membrane after the step: V_reset where it spiked */
    float refr; /* refractory steps left after the step */
    float pre;  /* membrane before the threshold: propagated, or held while refractory (NEST: minus E_L) */
    int active; /* not refractory at the step's start (refr < 0.5) */
    int s;      /* spike */
} sim_fire;
/* y: the membrane at the step's start, yn: propagated over the step, r:
 * refractory steps left, th: the threshold, vr: V_reset, rs: the steps a
 * spike holds for. NEST (BRIAN = 0) works relative to E_L (y, yn, th are
 * V - E_L; vr is absolute) and tests the threshold y >= th in every step,
 * refractory or not; Brian2 (BRIAN = 1) works in absolute values (el
 * unused) and fires only if not refractory and yn > th. Either way a
 * refractory neuron holds y and counts refr down. */
SIM_INLINE sim_fire soma__sim_fire(const int BRIAN, float y, float yn, float r, float th, float vr, float el,
                                   float rs) {
    sim_fire f;
    f.active = r < 0.5f;
    int above = yn > th;
    f.pre = f.active ? yn : y;
    r = f.active ? r : r - 1.0f;
    f.s = BRIAN ? f.active & above : f.pre >= th;
    f.v = f.s ? vr : (BRIAN ? f.pre : f.pre + el);
    f.refr = f.s ? rs : r;
    return f;
}

/* Write a step's end: the membrane, the refractory count and the spike. */
SIM_INLINE void soma__sim_put(sim_fire f, float *v, float *refr, uint8_t *spk) {
    *v = f.v;
    *refr = f.refr;
    *spk = (uint8_t)f.s;
}

/* Backward of the tail: dL/dy of the membrane before the threshold, from g
 * = dL/dV_t and ds = dL/dS_t, with the reset detached (dV_t/dy = 1 - S)
 * and dS/dy = surrogate(x) inv, x = dist inv (dist = y - threshold, inv =
 * soma__sim_sg_inv); surrogate S with parameter sp. */
SIM_INLINE float soma__sim_dpre(const int S, float sp, sim_fire f, float g, float ds, float dist, float inv) {
    return (f.s ? 0.0f : g) + ds * inv * soma__surrogate(S, sp, dist * inv);
}

/* One neuron of Brian2's integrate-and-fire models over one step: lif_cuba
 * (COBA = 0) and lif_coba (COBA = 1) are one kernel apart only in the
 * membrane update (see their headers for the equations and the order):
 *   1. e = ge + we, g = gi + wi (the weights arriving)
 *   2. xn = the membrane propagated over the step from x with e, g and ext
 *   3. ge' = de e, gi' = di g; then Brian2's threshold / reset tail.
 * m[] are the model's membrane constants for this neuron: cuba {Q, Pe, Pi,
 * e_l}, coba {g_L, g_L E_L + I_e, E_ex, E_in, -dt/C}. */
SIM_INLINE float soma__sim_brian_membrane(const int COBA, float x, float e, float g, float ext, const float m[5]) {
    if (COBA) {
        float gt = m[0] + e + g;
        float vinf = (m[1] + e * m[2] + g * m[3] + ext) / gt;
        return vinf + (x - vinf) * soma__expf_vec(gt * m[4]);
    }
    return x + m[0] * ((m[3] + ext) - x) + m[1] * e + m[2] * g;
}
SIM_INLINE sim_fire soma__sim_brian(const int COBA, float x, float r, float ge, float gi, float we, float wi,
                                    float ext, const float m[5], float de, float di, float th, float vr, float rs,
                                    float *ge_out, float *gi_out) {
    const float e = ge + we, g = gi + wi;
    const float xn = soma__sim_brian_membrane(COBA, x, e, g, ext, m);
    *ge_out = de * e;
    *gi_out = di * g;
    return soma__sim_fire(1, x, xn, r, th, vr, 0.0f, rs);
}
/* The simulator's row of either: mc[5] the membrane constants (as m
 * above; [N], or [1] when uniform), de, di the decays of ge, gi, rs the
 * refractory steps, th and vr the threshold and reset. */
SIM_INLINE void soma__sim_brian_row(const int COBA, const int U, const int E, const soma_sim_args *a,
                                    float *const *st, float *const *in, uint8_t *restrict spk, size_t i0, size_t i1,
                                    const float *const mc[5], const float *de, const float *di, const float *rs,
                                    const float *th, const float *vr) {
    float *restrict v = st[0], *restrict ge = st[1], *restrict gi = st[2], *restrict refr = st[3];
    float *restrict we = in[0], *restrict wi = in[1];
    const float *restrict ext = a->ext;
    SIM_ARR(M0, mc[0]);
    SIM_ARR(M1, mc[1]);
    SIM_ARR(M2, mc[2]);
    SIM_ARR(M3, mc[3]);
    SIM_ARR(M4, mc[4]);
    SIM_ARR(DE, de);
    SIM_ARR(DI, di);
    SIM_ARR(R, rs);
    SIM_ARR(TH, th);
    SIM_ARR(VR, vr);
    SIM_IVDEP
    for (size_t i = i0; i < i1; i++) {
        const float m[5] = {SIM_AT(M0), SIM_AT(M1), SIM_AT(M2), SIM_AT(M3), SIM_AT(M4)};
        float e, g;
        sim_fire f = soma__sim_brian(COBA, v[i], refr[i], ge[i], gi[i], we[i], wi[i], E ? ext[i] : 0.0f, m,
                                     SIM_AT(DE), SIM_AT(DI), SIM_AT(TH), SIM_AT(VR), SIM_AT(R), &e, &g);
        we[i] = 0.0f;
        wi[i] = 0.0f;
        ge[i] = e;
        gi[i] = g;
        soma__sim_put(f, &v[i], &refr[i], &spk[i]);
    }
}

/* The surrogate's argument of a physical model in the trainer: the
 * distance to threshold in units of the reset depth, x = (V - V_th) /
 * (V_th - V_reset), so that one surrogate slope suits any voltage scale;
 * dS/dV = surrogate(x) * inv with inv = 1/(V_th - V_reset) (the models'
 * check refuses V_reset >= V_th for training). */
static inline float soma__sim_sg_inv(float v_th, float v_reset) { return 1.0f / (v_th - v_reset); }
/* check() of the trainable physical models: the surrogate needs V_reset < V_th. */
static inline int soma__sim_check_reset(float v_th, float v_reset, char *err, size_t cap) {
    if (v_reset < v_th) return SOMA_STATUS_OK;
    snprintf(err, cap, "training needs the reset potential (%g mV) below the threshold (%g mV): the surrogate "
             "gradient is scaled by their difference", (double)v_reset, (double)v_th);
    return SOMA_STATUS_INVALID;
}

/* The training half's boilerplate around a model's always-inline
 * bwd_row(S, a, prev, dstate, ds, dv, din, b, N): `static void
 * backward(...)` runs it over the batch with the surrogate a compile-time
 * constant (SOMA_SURROGATE_DISPATCH); nothing is learned and the spike is
 * recomputed, so cur and dprm go unread. */
#define SIM_BWD_ROW_(S) bwd_row(S, a, prev, dstate, ds, dv, din, b, N)
#define SIM_BACKWARD_FROM_ROW                                                                                       \
    static void backward(const soma_model_args *a, const float *const *prev, const float *const *cur,             \
                         float *const *dstate, const float *ds, const float *dv, float *din, float *const *dprm,   \
                         size_t B, size_t N) {                                                                     \
        (void)cur, (void)dprm;                                                                                     \
        for (size_t b = 0; b < B; b++) SOMA_SURROGATE_DISPATCH(a->surrogate, SIM_BWD_ROW_);                       \
    }
/* `static void forward(...)` of a trainable model with NS state variables
 * (V, NS - 2 synaptic ones, refr) from its always-inline
 * train_neuron(a, st, in, k, j, x), which steps row k (neuron j) and puts
 * the synaptic variables after the step in x[]. */
#define SIM_FORWARD_FROM_NEURON(NS)                                                                                 \
    static void forward(const soma_model_args *a, const float *const *prev, float *const *cur, float *s,          \
                        const float *in, size_t B, size_t N) {                                                     \
        for (size_t b = 0; b < B; b++)                                                                             \
            for (size_t j = 0, k = b * N; j < N; j++, k++) {                                                       \
                float x[2] = {0.0f, 0.0f};                                                                         \
                sim_fire f = train_neuron(a, prev, in, k, j, x);                                                   \
                cur[0][k] = f.v;                                                                                   \
                for (size_t v = 1; v + 1 < (NS); v++) cur[v][k] = x[v - 1];                                        \
                cur[(NS) - 1][k] = f.refr;                                                                         \
                s[k] = f.s ? 1.0f : 0.0f;                                                                          \
            }                                                                                                      \
    }
/* `static int check(...)` of a trainable model: V_reset (parameter VR) below V_th (TH). */
#define SIM_CHECK_RESET(TH, VR)                                                                 \
    static int check(const float *prm, const soma_learn *learn, char *err, size_t cap) {       \
        (void)learn;                                                                            \
        return soma__sim_check_reset(prm[TH], prm[VR], err, cap);                              \
    }

/* The vtable fields that the two-port models of the simulator fill alike,
 * from their file's params/N_P, state_names/state_units, port_names, N_D,
 * prepare, init and step; name, state count and weight unit differ. */
#define SIM_MODEL_FIELDS(NAME, NSTATE, WUNIT)                                                                  \
    .name = NAME, .params = params, .n_params = N_P, .n_state = NSTATE, .state_names = state_names,          \
    .spiking = 1, .n_ports = 2, .port_names = port_names, .weight_unit = WUNIT, .state_units = state_units,  \
    .n_derived = N_D, .prepare = prepare, .sim_init = init, .sim_step = step
/* ... and those of the training half, for the models that have one. */
#define SIM_TRAIN_FIELDS .forward = forward, .backward = backward, .check = check

/* `static void init(...)`: the neuron at rest, V = E_L (parameter EL), the
 * other NSTATE - 1 state variables (currents, conductances, refr) 0. */
#define SIM_INIT_AT_REST(EL, NSTATE)                                                 \
    static void init(const float *const *prm, float *const *state, size_t N) {        \
        for (size_t j = 0; j < N; j++) {                                              \
            state[0][j] = prm[EL][j];                                                 \
            for (size_t k = 1; k < (NSTATE); k++) state[k][j] = 0.0f;                 \
        }                                                                             \
    }

/* How many neurons prepare fills: 1 when uniform, else N. */
static inline size_t soma__sim_count(size_t N, int uniform) { return uniform ? 1 : N; }

/* Steps of a refractory period as NEST counts them: t_ref rounded to the
 * nearest step (nest::Time(ms(t_ref)).get_steps()). */
static inline float soma__sim_steps_nest(double t_ref, double dt) {
    double s = floor(t_ref / dt + 0.5);
    return (float)(s > 0 ? s : 0);
}

/* Steps a Brian2 neuron holds after a spike: Brian2 computes, at the start
 * of each step, not_refractory = timestep(t - lastspike) >= timestep(t_ref)
 * with timestep(x) = int(x/dt + 1e-3); lastspike is the start of the
 * spiking step, so the R - 1 steps after the spike step are held. */
static inline float soma__sim_steps_brian(double t_ref, double dt) {
    double s = floor(t_ref / dt + 1e-3) - 1.0;
    return (float)(s > 0 ? s : 0);
}

/* Membrane response over one step h of a leaky membrane (time constant
 * tau_m) to a current that decays exponentially with tau_s, per unit of
 * initial current, times C (so divide by C for pA -> mV):
 *   integral_0^h exp(-(h-s)/tau_m) exp(-s/tau_s) ds
 *     = exp(-h/tau_m) * expm1(h d)/d,   d = 1/tau_m - 1/tau_s,
 * which stays accurate as d -> 0 (the limit is h exp(-h/tau_m)); the
 * difference form (exp(-h/tau_s) - exp(-h/tau_m))/d cancels there. */
static inline double soma__sim_exp_kernel(double h, double tau_m, double tau_s) {
    double d = 1.0 / tau_m - 1.0 / tau_s;
    double f = d == 0.0 ? h : expm1(h * d) / d;
    return exp(-h / tau_m) * f;
}

/* The same for the alpha kernel s*exp(-s/tau_s):
 *   integral_0^h exp(-(h-s)/tau_m) s exp(-s/tau_s) ds
 *     = exp(-h/tau_m) h^2 g(h d),  g(x) = (e^x (x - 1) + 1)/x^2,
 * with g's series sum_n x^n (n+1)/(n+2)! near 0 (g(0) = 1/2), where the
 * closed form cancels. */
static inline double soma__sim_alpha_kernel(double h, double tau_m, double tau_s) {
    double x = h * (1.0 / tau_m - 1.0 / tau_s), g;
    if (fabs(x) < 0.05) {
        double term = 0.5, sum = 0.0; /* term_n = x^n (n+1)/(n+2)! */
        for (int n = 0; n < 12; n++) {
            sum += term;
            term *= x * (double)(n + 2) / ((double)(n + 1) * (double)(n + 3));
        }
        g = sum;
    } else {
        g = (exp(x) * (x - 1.0) + 1.0) / (x * x);
    }
    return exp(-h / tau_m) * h * h * g;
}

#endif
