/* sim_iaf_psc_exp.c — leaky integrate-and-fire neuron with exponentially
 * decaying synaptic currents, NEST's iaf_psc_exp, for the event-driven
 * simulator.
 *
 *   C_m dV/dt = -(C_m/tau_m) (V - E_L) + I_syn_ex + I_syn_in + I_e + I_ext
 *   dI_syn_X/dt = -I_syn_X / tau_syn_X;  input of weight w (pA) on port X:
 *   I_syn_X += w (port e takes positive weights, port i negative ones)
 *   V >= V_th: spike, V = V_reset, refractory for t_ref (V held; the
 *   currents keep decaying and receiving input)
 *
 * Units: ms, mV, pF, pA; weights in pA. Defaults are NEST's (C_m 250 pF,
 * tau_m 10 ms, tau_syn_ex = tau_syn_in = 2 ms, t_ref 2 ms, E_L -70,
 * V_th -55, V_reset -70 mV, I_e 0 pA).
 *
 * Exact integration with propagators precomputed in prepare, in NEST's
 * order (iaf_psc_exp.cpp, update()), y = V - E_L:
 *   1. not refractory: y = P22 y + P21ex I_ex + P21in I_in + P20 (I_e + I_ext)
 *      refractory:     refr -= 1
 *   2. I_X = P11X I_X                        (currents decay)
 *   3. I_X += weights arriving on port X     (felt by V from the next step)
 *   4. y >= V_th - E_L (tested in every step, as NEST): spike,
 *      y = V_reset - E_L, refr = t_ref/h rounded to the nearest step
 * with P22 = exp(-h/tau_m), P20 = (tau_m/C_m)(1 - P22), P11X =
 * exp(-h/tau_syn_X) and P21X = exp(-h/tau_m) expm1(h d)/(d C_m), d =
 * 1/tau_m - 1/tau_syn_X, which is exact and stays accurate as tau_m ->
 * tau_syn_X (limit h exp(-h/tau_m)/C_m; NEST switches to that limit by a
 * heuristic instead). The external input I_ext of a step is applied in that
 * step (NEST reads a device's current one step later). NEST's current input
 * port (receptor 1, i_1) is not modelled.
 *
 * State: V_m (mV), I_syn_ex, I_syn_in (pA), refr (steps left, a float).
 */
#include "models/sim_common.h"

enum { P_C_M, P_TAU_M, P_TAU_EX, P_TAU_IN, P_T_REF, P_E_L, P_V_TH, P_V_RESET, P_I_E, N_P };
static const soma_param_desc params[] = {
    {"C_m", 250.0f, 1e-3f, 1e9f, "pF", 0, NULL, "membrane capacitance"},
    {"tau_m", 10.0f, 1e-3f, 1e9f, "ms", 0, NULL, "membrane time constant"},
    {"tau_syn_ex", 2.0f, 1e-3f, 1e9f, "ms", 0, NULL, "excitatory synaptic current time constant"},
    {"tau_syn_in", 2.0f, 1e-3f, 1e9f, "ms", 0, NULL, "inhibitory synaptic current time constant"},
    {"t_ref", 2.0f, 0.0f, 1e9f, "ms", 0, NULL, "refractory period (rounded to whole steps)"},
    {"E_L", -70.0f, -1e4f, 1e4f, "mV", 0, NULL, "resting potential"},
    {"V_th", -55.0f, -1e4f, 1e4f, "mV", 0, NULL, "spike threshold"},
    {"V_reset", -70.0f, -1e4f, 1e4f, "mV", 0, NULL, "reset potential"},
    {"I_e", 0.0f, -1e9f, 1e9f, "pA", 0, NULL, "constant input current"},
};
static const char *const state_names[] = {"V_m", "I_syn_ex", "I_syn_in", "refr"};
static const char *const state_units[] = {"mV", "pA", "pA", ""};
static const char *const port_names[] = {"e", "i"};

enum { D_P22, D_P20, D_P21EX, D_P21IN, D_P11EX, D_P11IN, D_REFR, N_D };

static void prepare(const float *const *prm, size_t N, float dt, int uniform, float *const *drv) {
    for (size_t j = 0; j < soma__sim_count(N, uniform); j++) {
        double h = dt, tau = prm[P_TAU_M][j], C = prm[P_C_M][j];
        double tex = prm[P_TAU_EX][j], tin = prm[P_TAU_IN][j];
        drv[D_P22][j] = (float)exp(-h / tau);
        drv[D_P20][j] = (float)(-tau / C * expm1(-h / tau));
        drv[D_P21EX][j] = (float)(soma__sim_exp_kernel(h, tau, tex) / C);
        drv[D_P21IN][j] = (float)(soma__sim_exp_kernel(h, tau, tin) / C);
        drv[D_P11EX][j] = (float)exp(-h / tex);
        drv[D_P11IN][j] = (float)exp(-h / tin);
        drv[D_REFR][j] = soma__sim_steps_nest(prm[P_T_REF][j], h);
    }
}

static void init(const float *const *prm, float *const *state, size_t N) {
    for (size_t j = 0; j < N; j++)
        state[0][j] = prm[P_E_L][j], state[1][j] = state[2][j] = state[3][j] = 0.0f;
}

SIM_INLINE void row(const int U, const int E, const soma_sim_args *a, float *const *st, float *const *in,
                    uint8_t *restrict spk, size_t i0, size_t i1) {
    float *restrict V = st[0], *restrict Iex = st[1], *restrict Iin = st[2], *restrict refr = st[3];
    float *restrict we = in[0], *restrict wi = in[1];
    const float *restrict ext = a->ext;
    SIM_ARR(P22, a->drv[D_P22]);
    SIM_ARR(P20, a->drv[D_P20]);
    SIM_ARR(P21E, a->drv[D_P21EX]);
    SIM_ARR(P21I, a->drv[D_P21IN]);
    SIM_ARR(P11E, a->drv[D_P11EX]);
    SIM_ARR(P11I, a->drv[D_P11IN]);
    SIM_ARR(R, a->drv[D_REFR]);
    SIM_ARR(EL, a->prm[P_E_L]);
    SIM_ARR(TH, a->prm[P_V_TH]);
    SIM_ARR(VR, a->prm[P_V_RESET]);
    SIM_ARR(IE, a->prm[P_I_E]);
    SIM_IVDEP
    for (size_t i = i0; i < i1; i++) {
        /* Loads first, selects last (see sim_common.h). */
        const float el = SIM_AT(EL), th = SIM_AT(TH) - el, vr = SIM_AT(VR), rs = SIM_AT(R);
        float y = V[i] - el, r = refr[i], ie = Iex[i], ii = Iin[i];
        float I = SIM_AT(IE) + (E ? ext[i] : 0.0f);
        int active = r < 0.5f;
        float yn = SIM_AT(P22) * y + SIM_AT(P21E) * ie + SIM_AT(P21I) * ii + SIM_AT(P20) * I;
        y = active ? yn : y;
        r = active ? r : r - 1.0f;
        Iex[i] = SIM_AT(P11E) * ie + we[i];
        Iin[i] = SIM_AT(P11I) * ii + wi[i];
        we[i] = 0.0f;
        wi[i] = 0.0f;
        int s = y >= th;
        V[i] = s ? vr : y + el;
        refr[i] = s ? rs : r;
        spk[i] = (uint8_t)s;
    }
}

SIM_STEP_FROM_ROW

const soma_model soma__model_iaf_psc_exp = {
    .name = "iaf_psc_exp",
    .params = params,
    .n_params = N_P,
    .n_state = 4,
    .state_names = state_names,
    .spiking = 1,
    .n_ports = 2,
    .port_names = port_names,
    .weight_unit = "pA",
    .state_units = state_units,
    .n_derived = N_D,
    .prepare = prepare,
    .sim_init = init,
    .sim_step = step,
};
