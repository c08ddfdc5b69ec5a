/* sim_lif_cuba.c — the leaky integrate-and-fire neuron of Brian2's CUBA
 * example (Vogels & Abbott 2005, "Signal propagation and logic gating in
 * networks of integrate-and-fire neurons", J Neurosci 25:10786; Brette et
 * al. 2007 benchmark 2), for the event-driven simulator, stepped exactly as
 * Brian2 steps it.
 *
 *   dv/dt  = (ge + gi + I_ext - (v - e_l)) / tau_m     (unless refractory)
 *   dge/dt = -ge / tau_e,   dgi/dt = -gi / tau_i       (ge, gi in mV)
 *   input of weight w (mV): ge += w on port e, gi += w on port i (w < 0)
 *   threshold v > v_th, reset v = v_reset, refractory t_ref
 *
 * Units: ms, mV; weights in mV. Defaults are the example's: tau_m 20 ms,
 * tau_e 5 ms, tau_i 10 ms, v_th -50 mV, v_reset -60 mV, e_l -49 mV,
 * t_ref 5 ms. The external input I_ext has no current unit here (the model
 * has no capacitance): it is read in mV, as a drive like ge (the same
 * number as a shift of e_l).
 *
 * What Brian2 2.5 does in one step of dt (runtime target numpy, float64;
 * checked against Brian2 itself by tests/gen_brian_neuron.py, whose fixture
 * tests/test_sim_models.c compares spike step for spike step):
 *   groups:     not_refractory = timestep(t - lastspike) >= timestep(t_ref),
 *               timestep(x) = int(x/dt + 1e-3); then method='exact':
 *               v = e_l - e_l P + v P + ge Pe + gi Pi (only if not
 *               refractory; P = exp(-dt/tau_m), Pe = tau_e/(tau_e - tau_m)
 *               (exp(-dt/tau_e) - exp(-dt/tau_m)), likewise Pi), and
 *               ge *= exp(-dt/tau_e), gi *= exp(-dt/tau_i) always, all from
 *               the values at the step's start
 *   thresholds: v > v_th and not_refractory -> spike, lastspike = t (the
 *               start of this step)
 *   synapses:   on_pre of the spikes of this step (delay 0): ge += w
 *   resets:     v = v_reset
 * So soma's step does, in this order:
 *   1. ge += weights on port e, gi += weights on port i (what Brian2's
 *      synapses added at the end of the previous step: soma's delay is
 *      Brian2's delay + dt, see soma.h)
 *   2. if refr < 0.5 (not refractory): v = v + Q (e_l + I_ext - v)
 *      + Pe ge + Pi gi, Q = 1 - P = -expm1(-dt/tau_m);  else refr -= 1 and
 *      v is held
 *   3. ge *= exp(-dt/tau_e), gi *= exp(-dt/tau_i)
 *   4. not refractory and v > v_th: spike, v = v_reset,
 *      refr = int(t_ref/dt + 1e-3) - 1.
 * The "- 1" is Brian2's off-by-one: lastspike is the start of the spiking
 * step s, so step s + R (R = t_ref/dt) is already free, v is held during
 * steps s+1 .. s+R-1 only (4.9 ms for t_ref 5 ms at dt 0.1 ms), and the
 * threshold is next tested at the end of step s+R. Pe and Pi are computed
 * in the form exp(-dt/tau_m) expm1(dt d)/(d tau_m), d = 1/tau_m - 1/tau_e,
 * which equals Brian2's and also works for tau_e = tau_m (Brian2's formula
 * divides by zero there).
 * Why v + Q (e_l - v) and not P v + Q e_l: P = 0.995 rounded to float is
 * off by up to 3e-8, and that error times |v| ~ 60 mV, remembered over
 * tau_m/dt = 200 steps, biased v by ~1e-4 mV against Brian2's float64 (it
 * moved near-threshold spikes of tests/test_sim_fidelity.c one step early;
 * regression_lif_cuba_float_bias). Q = 0.005 is held to full relative
 * precision, and the error it leaves is ~1e-6 mV.
 *
 * State: v, ge, gi (mV), refr (steps left, a float).
 */
#include "models/sim_common.h"

enum { P_TAU_M, P_TAU_E, P_TAU_I, P_V_TH, P_V_RESET, P_E_L, P_T_REF, N_P };
static const soma_param_desc params[] = {
    {"tau_m", 20.0f, 1e-3f, 1e9f, "ms", 0, NULL, "membrane time constant"},
    {"tau_e", 5.0f, 1e-3f, 1e9f, "ms", 0, NULL, "decay time of ge"},
    {"tau_i", 10.0f, 1e-3f, 1e9f, "ms", 0, NULL, "decay time of gi"},
    {"v_th", -50.0f, -1e4f, 1e4f, "mV", 0, NULL, "threshold (spike when v > v_th)"},
    {"v_reset", -60.0f, -1e4f, 1e4f, "mV", 0, NULL, "reset potential"},
    {"e_l", -49.0f, -1e4f, 1e4f, "mV", 0, NULL, "leak reversal potential"},
    {"t_ref", 5.0f, 0.0f, 1e9f, "ms", 0, NULL, "refractory period (Brian2's rounding)"},
};
static const char *const state_names[] = {"v", "ge", "gi", "refr"};
static const char *const state_units[] = {"mV", "mV", "mV", ""};
static const char *const port_names[] = {"e", "i"};

enum { D_Q, D_PE, D_PI, D_DE, D_DI, D_REFR, N_D };

static void prepare(const float *const *prm, size_t N, float dt, int uniform, float *const *drv) {
    for (size_t j = 0; j < soma__sim_count(N, uniform); j++) {
        double h = dt, tm = prm[P_TAU_M][j], te = prm[P_TAU_E][j], ti = prm[P_TAU_I][j];
        drv[D_Q][j] = (float)-expm1(-h / tm);
        drv[D_PE][j] = (float)(soma__sim_exp_kernel(h, tm, te) / tm);
        drv[D_PI][j] = (float)(soma__sim_exp_kernel(h, tm, ti) / tm);
        drv[D_DE][j] = (float)exp(-h / te);
        drv[D_DI][j] = (float)exp(-h / ti);
        drv[D_REFR][j] = soma__sim_steps_brian(prm[P_T_REF][j], h);
    }
}

static void init(const float *const *prm, float *const *state, size_t N) {
    for (size_t j = 0; j < N; j++)
        state[0][j] = prm[P_E_L][j], state[1][j] = state[2][j] = state[3][j] = 0.0f;
}

SIM_INLINE void row(const int U, const int E, const soma_sim_args *a, float *const *st, float *const *in,
                    uint8_t *restrict spk, size_t i0, size_t i1) {
    float *restrict v = st[0], *restrict ge = st[1], *restrict gi = st[2], *restrict refr = st[3];
    float *restrict we = in[0], *restrict wi = in[1];
    const float *restrict ext = a->ext;
    SIM_ARR(Q, a->drv[D_Q]);
    SIM_ARR(PE, a->drv[D_PE]);
    SIM_ARR(PI, a->drv[D_PI]);
    SIM_ARR(DE, a->drv[D_DE]);
    SIM_ARR(DI, a->drv[D_DI]);
    SIM_ARR(R, a->drv[D_REFR]);
    SIM_ARR(EL, a->prm[P_E_L]);
    SIM_ARR(TH, a->prm[P_V_TH]);
    SIM_ARR(VR, a->prm[P_V_RESET]);
    SIM_IVDEP
    for (size_t i = i0; i < i1; i++) {
        /* Loads first, selects last (see sim_common.h). */
        const float th = SIM_AT(TH), vr = SIM_AT(VR), rs = SIM_AT(R);
        float x = v[i], r = refr[i];
        float e = ge[i] + we[i], g = gi[i] + wi[i];
        we[i] = 0.0f;
        wi[i] = 0.0f;
        float rest = SIM_AT(EL) + (E ? ext[i] : 0.0f);
        float xn = x + SIM_AT(Q) * (rest - x) + SIM_AT(PE) * e + SIM_AT(PI) * g;
        int active = r < 0.5f, above = xn > th;
        x = active ? xn : x;
        r = active ? r : r - 1.0f;
        ge[i] = SIM_AT(DE) * e;
        gi[i] = SIM_AT(DI) * g;
        int s = active & above;
        v[i] = s ? vr : x;
        refr[i] = s ? rs : r;
        spk[i] = (uint8_t)s;
    }
}

SIM_STEP_FROM_ROW

const soma_model soma__model_lif_cuba = {
    .name = "lif_cuba",
    .params = params,
    .n_params = N_P,
    .n_state = 4,
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
