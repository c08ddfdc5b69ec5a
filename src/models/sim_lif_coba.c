/* sim_lif_coba.c — conductance-based leaky integrate-and-fire neuron of the
 * Vogels-Abbott COBA benchmark (Vogels & Abbott 2005, J Neurosci 25:10786;
 * Brette et al. 2007 benchmark 1) as Brian2 runs it, for the event-driven
 * simulator.
 *
 *   C dv/dt = g_L (E_L - v) + g_ex (E_ex - v) + g_in (E_in - v) + I_e + I_ext
 *                                                   (unless refractory)
 *   dg_ex/dt = -g_ex / tau_ex,   dg_in/dt = -g_in / tau_in
 *   input of weight w (nS, positive on both ports; the projection chooses
 *   the port): g_ex += w on port e, g_in += w on port i
 *   threshold v > V_th, reset v = V_reset, refractory t_ref
 *
 * Units: ms, mV, pF, nS, pA (nS mV = pA); weights in nS. Defaults: C 200 pF,
 * g_L 10 nS (tau_m 20 ms), E_L -60, E_ex 0, E_in -80 mV, tau_ex 5,
 * tau_in 10 ms, V_th -50, V_reset -60 mV, t_ref 5 ms, I_e 0 pA.
 *
 * Integration: Brian2's method='exponential_euler', which for this equation
 * (linear in v: dv/dt = A + B v) is, with every value taken at the step's
 * start,
 *   g_tot = g_L + g_ex + g_in,  v_inf = (g_L E_L + g_ex E_ex + g_in E_in
 *   + I_e + I_ext) / g_tot,  v = v_inf + (v - v_inf) exp(-g_tot dt / C),
 * and g *= exp(-dt/tau) (exact). This is exact when the conductances are
 * constant over the step and its error, from their decay within the step,
 * is O(dt^2) per step with a small constant (dt/tau_ex = 0.02 at dt 0.1 ms);
 * it stays stable for any conductance, unlike forward Euler. exp(-g_tot
 * dt/C) is soma__expf_vec (sim_common.h, relative error ~2e-7) so the loop
 * vectorizes.
 *
 * Step order and refractoriness are Brian2's, as in sim_lif_cuba.c (see its
 * header for what Brian2 does within a step):
 *   1. g_ex += weights on port e, g_in += weights on port i
 *   2. not refractory (refr < 0.5): v as above; else refr -= 1, v held
 *   3. g_ex, g_in decay over the step
 *   4. not refractory and v > V_th: spike, v = V_reset,
 *      refr = int(t_ref/dt + 1e-3) - 1 (v is held for the R - 1 steps after
 *      the spiking step, as Brian2 does).
 * Checked step for step against Brian2 (tests/gen_brian_neuron.py).
 *
 * State: v (mV), g_ex, g_in (nS), refr (steps left, a float).
 */
#include "models/sim_common.h"

enum { P_C, P_G_L, P_E_L, P_E_EX, P_E_IN, P_TAU_EX, P_TAU_IN, P_V_TH, P_V_RESET, P_T_REF, P_I_E, N_P };
static const soma_param_desc params[] = {
    {"C", 200.0f, 1e-3f, 1e9f, "pF", 0, NULL, "membrane capacitance"},
    {"g_L", 10.0f, 1e-6f, 1e9f, "nS", 0, NULL, "leak conductance"},
    {"E_L", -60.0f, -1e4f, 1e4f, "mV", 0, NULL, "leak reversal potential"},
    {"E_ex", 0.0f, -1e4f, 1e4f, "mV", 0, NULL, "excitatory reversal potential"},
    {"E_in", -80.0f, -1e4f, 1e4f, "mV", 0, NULL, "inhibitory reversal potential"},
    {"tau_ex", 5.0f, 1e-3f, 1e9f, "ms", 0, NULL, "decay time of g_ex"},
    {"tau_in", 10.0f, 1e-3f, 1e9f, "ms", 0, NULL, "decay time of g_in"},
    {"V_th", -50.0f, -1e4f, 1e4f, "mV", 0, NULL, "threshold (spike when v > V_th)"},
    {"V_reset", -60.0f, -1e4f, 1e4f, "mV", 0, NULL, "reset potential"},
    {"t_ref", 5.0f, 0.0f, 1e9f, "ms", 0, NULL, "refractory period (Brian2's rounding)"},
    {"I_e", 0.0f, -1e9f, 1e9f, "pA", 0, NULL, "constant input current"},
};
static const char *const state_names[] = {"v", "g_ex", "g_in", "refr"};
static const char *const state_units[] = {"mV", "nS", "nS", ""};
static const char *const port_names[] = {"e", "i"};

enum { D_KDT, D_GLEL, D_DEX, D_DIN, D_REFR, N_D };

static void prepare(const float *const *prm, size_t N, float dt, int uniform, float *const *drv) {
    for (size_t j = 0; j < soma__sim_count(N, uniform); j++) {
        double h = dt;
        drv[D_KDT][j] = (float)(-h / prm[P_C][j]);
        drv[D_GLEL][j] = (float)((double)prm[P_G_L][j] * prm[P_E_L][j] + prm[P_I_E][j]);
        drv[D_DEX][j] = (float)exp(-h / prm[P_TAU_EX][j]);
        drv[D_DIN][j] = (float)exp(-h / prm[P_TAU_IN][j]);
        drv[D_REFR][j] = soma__sim_steps_brian(prm[P_T_REF][j], h);
    }
}

SIM_INIT_AT_REST(P_E_L, 4)

/* The kernel it shares with lif_cuba (sim_common.h), with this model's
 * membrane constants. */
SIM_INLINE void row(const int U, const int E, const soma_sim_args *a, float *const *st, float *const *in,
                    uint8_t *restrict spk, size_t i0, size_t i1) {
    const float *const mc[5] = {a->prm[P_G_L], a->drv[D_GLEL], a->prm[P_E_EX], a->prm[P_E_IN], a->drv[D_KDT]};
    soma__sim_brian_row(1, U, E, a, st, in, spk, i0, i1, mc, a->drv[D_DEX], a->drv[D_DIN], a->drv[D_REFR],
                        a->prm[P_V_TH], a->prm[P_V_RESET]);
}

SIM_STEP_FROM_ROW

const soma_model soma__model_lif_coba = {
    SIM_MODEL_FIELDS("lif_coba", 4, "nS"),
};
