/* sim_iaf_psc_delta.c — leaky integrate-and-fire neuron with delta-shaped
 * synaptic currents (a spike makes V jump), NEST's iaf_psc_delta, for the
 * event-driven simulator.
 *
 *   C_m dV/dt = -(C_m/tau_m) (V - E_L) + I_e + I_ext
 *   input of weight w (mV) on either port: V += w
 *   V >= V_th: spike, V = V_reset, refractory for t_ref
 *
 * Units: ms, mV, pF, pA; weights in mV. Defaults are NEST's (C_m 250 pF,
 * tau_m 10 ms, t_ref 2 ms, E_L -70, V_th -55, V_reset -70 mV, I_e 0 pA).
 *
 * Exact integration as NEST (iaf_psc_delta.cpp, update()), with y = V - E_L:
 *   not refractory: y = P22 y + P20 (I_e + I_ext) + w_arriving,
 *                   P22 = exp(-h/tau_m), P20 = (tau_m/C_m)(1 - P22)
 *   refractory:     inputs arriving this step are discarded (NEST's default
 *                   refractory_input = false), y is held, refr -= 1
 *   then, as NEST, the threshold is tested in every step (refractory or
 *   not): y >= V_th - E_L -> spike, y = V_reset - E_L, refr = t_ref/h
 *   rounded to the nearest step (NEST's RefractoryCounts).
 * So a spike emitted in step s holds V during steps s+1 .. s+refr. Weights
 * arriving in a step are added after the propagation, as in NEST, so they
 * can make the neuron fire in that same step. Where NEST applies a current
 * from a device one step late (its y0 is read at the end of update), soma
 * applies the external input I_ext of a step in that step. NEST's V_min
 * (default -inf) is not modelled.
 *
 * Ports: e (port 0) and i (port 1) are both plain voltage jumps; two ports
 * only so that projections split by sign work as for the other models.
 * State: V_m (mV), refr (steps left, a float).
 */
#include "models/sim_common.h"

enum { P_C_M, P_TAU_M, P_T_REF, P_E_L, P_V_TH, P_V_RESET, P_I_E, N_P };
static const soma_param_desc params[] = {
    {"C_m", 250.0f, 1e-3f, 1e9f, "pF", 0, NULL, "membrane capacitance"},
    {"tau_m", 10.0f, 1e-3f, 1e9f, "ms", 0, NULL, "membrane time constant"},
    {"t_ref", 2.0f, 0.0f, 1e9f, "ms", 0, NULL, "refractory period (rounded to whole steps)"},
    {"E_L", -70.0f, -1e4f, 1e4f, "mV", 0, NULL, "resting potential"},
    {"V_th", -55.0f, -1e4f, 1e4f, "mV", 0, NULL, "spike threshold"},
    {"V_reset", -70.0f, -1e4f, 1e4f, "mV", 0, NULL, "reset potential"},
    {"I_e", 0.0f, -1e9f, 1e9f, "pA", 0, NULL, "constant input current"},
};
static const char *const state_names[] = {"V_m", "refr"};
static const char *const state_units[] = {"mV", ""};
static const char *const port_names[] = {"e", "i"};

enum { D_P22, D_P20, D_REFR, N_D };

static void prepare(const float *const *prm, size_t N, float dt, int uniform, float *const *drv) {
    for (size_t j = 0; j < soma__sim_count(N, uniform); j++) {
        double h = dt, tau = prm[P_TAU_M][j], C = prm[P_C_M][j];
        drv[D_P22][j] = (float)exp(-h / tau);
        drv[D_P20][j] = (float)(-tau / C * expm1(-h / tau));
        drv[D_REFR][j] = soma__sim_steps_nest(prm[P_T_REF][j], h);
    }
}

static void init(const float *const *prm, float *const *state, size_t N) {
    for (size_t j = 0; j < N; j++) state[0][j] = prm[P_E_L][j], state[1][j] = 0.0f;
}

SIM_INLINE void row(const int U, const int E, const soma_sim_args *a, float *const *st, float *const *in,
                    uint8_t *restrict spk, size_t i0, size_t i1) {
    float *restrict V = st[0], *restrict refr = st[1];
    float *restrict we = in[0], *restrict wi = in[1];
    const float *restrict ext = a->ext;
    SIM_ARR(P22, a->drv[D_P22]);
    SIM_ARR(P20, a->drv[D_P20]);
    SIM_ARR(R, a->drv[D_REFR]);
    SIM_ARR(EL, a->prm[P_E_L]);
    SIM_ARR(TH, a->prm[P_V_TH]);
    SIM_ARR(VR, a->prm[P_V_RESET]);
    SIM_ARR(IE, a->prm[P_I_E]);
    SIM_IVDEP
    for (size_t i = i0; i < i1; i++) {
        /* Loads first, selects last (see sim_common.h). */
        const float el = SIM_AT(EL), th = SIM_AT(TH) - el, vr = SIM_AT(VR), rs = SIM_AT(R);
        float y = V[i] - el, r = refr[i];
        float I = SIM_AT(IE) + (E ? ext[i] : 0.0f);
        float yn = SIM_AT(P22) * y + SIM_AT(P20) * I + (we[i] + wi[i]);
        we[i] = 0.0f;
        wi[i] = 0.0f;
        int active = r < 0.5f;
        y = active ? yn : y;
        r = active ? r : r - 1.0f;
        int s = y >= th;
        V[i] = s ? vr : y + el;
        refr[i] = s ? rs : r;
        spk[i] = (uint8_t)s;
    }
}

SIM_STEP_FROM_ROW

const soma_model soma__model_iaf_psc_delta = {
    .name = "iaf_psc_delta",
    .params = params,
    .n_params = N_P,
    .n_state = 2,
    .state_names = state_names,
    .spiking = 1,
    .n_ports = 2,
    .port_names = port_names,
    .weight_unit = "mV",
    .state_units = state_units,
    .n_derived = N_D,
    .prepare = prepare,
    .sim_init = init,
    .sim_step = step,
};
