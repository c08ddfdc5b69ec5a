/* sim_iaf_psc_alpha.c — leaky integrate-and-fire neuron with alpha-shaped
 * synaptic currents, NEST's iaf_psc_alpha, for the event-driven simulator.
 *
 *   C_m dV/dt = -(C_m/tau_m) (V - E_L) + I_ex + I_in + I_e + I_ext
 *   per port X:  d(dI_X)/dt = -dI_X / tau_syn_X
 *                dI_X/dt    = dI_X - I_X / tau_syn_X
 *   input of weight w (pA) on port X: dI_X += (e / tau_syn_X) w, so one
 *   input gives I_X(t) = w (e t / tau_syn_X) exp(-t / tau_syn_X), whose
 *   peak, at t = tau_syn_X, is w (NEST's convention: the weight is the peak
 *   current). Port e takes positive weights, port i negative ones.
 *   V >= V_th: spike, V = V_reset, refractory for t_ref (V held; the
 *   currents go on)
 *
 * Units: ms, mV, pF, pA; weights in pA. Defaults are NEST's (C_m 250 pF,
 * tau_m 10 ms, tau_syn_ex = tau_syn_in = 2 ms, t_ref 2 ms, E_L -70,
 * V_th -55, V_reset -70 mV, I_e 0 pA).
 *
 * Exact integration in NEST's order (iaf_psc_alpha.cpp, update()),
 * y = V - E_L, h the step:
 *   1. not refractory: y = P33 y + P31X dI_X + P32X I_X (summed over X)
 *                          + P30 (I_e + I_ext);   refractory: refr -= 1
 *   2. I_X = P21X dI_X + P22X I_X;  dI_X = P11X dI_X
 *   3. dI_X += (e / tau_syn_X) * weights arriving on port X
 *   4. y >= V_th - E_L (every step, as NEST): spike, y = V_reset - E_L,
 *      refr = t_ref/h rounded to the nearest step
 * with P33 = exp(-h/tau_m), P30 = (tau_m/C_m)(1 - P33), P11X = P22X =
 * exp(-h/tau_syn_X), P21X = h P11X, and the membrane's response to the two
 * current components over one step (sim_common.h):
 *   P32X = exp(-h/tau_m) expm1(h d)/(d C_m)             (I_X)
 *   P31X = exp(-h/tau_m) h^2 g(h d) / C_m,  g(x) = (e^x (x-1) + 1)/x^2  (dI_X)
 * with d = 1/tau_m - 1/tau_syn_X; both are written to stay exact as
 * tau_m -> tau_syn_X, where NEST switches to the singular limit by a
 * heuristic. I_ext is applied in its own step (NEST: one step later).
 *
 * State: V_m (mV), dI_ex, I_ex, dI_in, I_in (pA; dI in pA/ms), refr (steps
 * left, a float).
 */
#include "models/sim_common.h"

enum { P_C_M, P_TAU_M, P_TAU_EX, P_TAU_IN, P_T_REF, P_E_L, P_V_TH, P_V_RESET, P_I_E, N_P };
static const soma_param_desc params[] = {
    {"C_m", 250.0f, 1e-3f, 1e9f, "pF", 0, NULL, "membrane capacitance"},
    {"tau_m", 10.0f, 1e-3f, 1e9f, "ms", 0, NULL, "membrane time constant"},
    {"tau_syn_ex", 2.0f, 1e-3f, 1e9f, "ms", 0, NULL, "rise time of the excitatory synaptic current"},
    {"tau_syn_in", 2.0f, 1e-3f, 1e9f, "ms", 0, NULL, "rise time of the inhibitory synaptic current"},
    {"t_ref", 2.0f, 0.0f, 1e9f, "ms", 0, NULL, "refractory period (rounded to whole steps)"},
    {"E_L", -70.0f, -1e4f, 1e4f, "mV", 0, NULL, "resting potential"},
    {"V_th", -55.0f, -1e4f, 1e4f, "mV", 0, NULL, "spike threshold"},
    {"V_reset", -70.0f, -1e4f, 1e4f, "mV", 0, NULL, "reset potential"},
    {"I_e", 0.0f, -1e9f, 1e9f, "pA", 0, NULL, "constant input current"},
};
static const char *const state_names[] = {"V_m", "dI_ex", "I_ex", "dI_in", "I_in", "refr"};
static const char *const state_units[] = {"mV", "", "pA", "", "pA", ""};
static const char *const port_names[] = {"e", "i"};

enum { D_P33, D_P30, D_P11EX, D_P21EX, D_P31EX, D_P32EX, D_P11IN, D_P21IN, D_P31IN, D_P32IN, D_JEX, D_JIN, D_REFR, N_D };

static void prepare(const float *const *prm, size_t N, float dt, int uniform, float *const *drv) {
    for (size_t j = 0; j < soma__sim_count(N, uniform); j++) {
        double h = dt, tau = prm[P_TAU_M][j], C = prm[P_C_M][j];
        double ts[2] = {prm[P_TAU_EX][j], prm[P_TAU_IN][j]};
        drv[D_P33][j] = (float)exp(-h / tau);
        drv[D_P30][j] = (float)(-tau / C * expm1(-h / tau));
        for (int x = 0; x < 2; x++) {
            int o = x ? D_P11IN - D_P11EX : 0;
            double p11 = exp(-h / ts[x]);
            drv[D_P11EX + o][j] = (float)p11;
            drv[D_P21EX + o][j] = (float)(h * p11);
            drv[D_P31EX + o][j] = (float)(soma__sim_alpha_kernel(h, tau, ts[x]) / C);
            drv[D_P32EX + o][j] = (float)(soma__sim_exp_kernel(h, tau, ts[x]) / C);
            drv[D_JEX + x][j] = (float)(2.718281828459045 / ts[x]);
        }
        drv[D_REFR][j] = soma__sim_steps_nest(prm[P_T_REF][j], h);
    }
}

SIM_INIT_AT_REST(P_E_L, 6)

SIM_INLINE void row(const int U, const int E, const soma_sim_args *a, float *const *st, float *const *in,
                    uint8_t *restrict spk, size_t i0, size_t i1) {
    float *restrict V = st[0], *restrict dIe = st[1], *restrict Ie = st[2], *restrict dIi = st[3],
                    *restrict Ii = st[4], *restrict refr = st[5];
    float *restrict we = in[0], *restrict wi = in[1];
    const float *restrict ext = a->ext;
    SIM_ARR(P33, a->drv[D_P33]);
    SIM_ARR(P30, a->drv[D_P30]);
    SIM_ARR(P11E, a->drv[D_P11EX]);
    SIM_ARR(P21E, a->drv[D_P21EX]);
    SIM_ARR(P31E, a->drv[D_P31EX]);
    SIM_ARR(P32E, a->drv[D_P32EX]);
    SIM_ARR(P11I, a->drv[D_P11IN]);
    SIM_ARR(P21I, a->drv[D_P21IN]);
    SIM_ARR(P31I, a->drv[D_P31IN]);
    SIM_ARR(P32I, a->drv[D_P32IN]);
    SIM_ARR(JE, a->drv[D_JEX]);
    SIM_ARR(JI, a->drv[D_JIN]);
    SIM_ARR(R, a->drv[D_REFR]);
    SIM_ARR(EL, a->prm[P_E_L]);
    SIM_ARR(TH, a->prm[P_V_TH]);
    SIM_ARR(VR, a->prm[P_V_RESET]);
    SIM_ARR(IE, a->prm[P_I_E]);
    SIM_IVDEP
    for (size_t i = i0; i < i1; i++) {
        /* Loads first, selects last (see sim_common.h). */
        const float el = SIM_AT(EL);
        float y = V[i] - el;
        float de = dIe[i], ie = Ie[i], di = dIi[i], ii = Ii[i];
        float I = SIM_AT(IE) + (E ? ext[i] : 0.0f);
        float yn = SIM_AT(P33) * y + SIM_AT(P31E) * de + SIM_AT(P32E) * ie + SIM_AT(P31I) * di +
                   SIM_AT(P32I) * ii + SIM_AT(P30) * I;
        sim_fire f = soma__sim_fire(0, y, yn, refr[i], SIM_AT(TH) - el, SIM_AT(VR), el, SIM_AT(R));
        Ie[i] = SIM_AT(P21E) * de + SIM_AT(P11E) * ie;
        Ii[i] = SIM_AT(P21I) * di + SIM_AT(P11I) * ii;
        dIe[i] = SIM_AT(P11E) * de + SIM_AT(JE) * we[i];
        dIi[i] = SIM_AT(P11I) * di + SIM_AT(JI) * wi[i];
        we[i] = 0.0f;
        wi[i] = 0.0f;
        soma__sim_put(f, &V[i], &refr[i], &spk[i]);
    }
}

SIM_STEP_FROM_ROW

const soma_model soma__model_iaf_psc_alpha = {
    SIM_MODEL_FIELDS("iaf_psc_alpha", 6, "pA"),
};
