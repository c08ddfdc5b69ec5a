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
