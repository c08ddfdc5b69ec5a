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
 *
 * Training half (the trainer's forward/backward over [B][N]; row b*N + j is
 * one instance of neuron j whose only input is in[b*N + j] on port e, the
 * summed weight in pA, with I_e as set): forward calls the same inline
 * step (neuron() below) as sim_step, with port i and the external input 0,
 * so it gives the simulator's floats bit for bit (tests/
 * test_physical_train.c). The state starts from init (V = E_L, currents 0).
 * Backward recomputes the step from the tape and follows the exact
 * propagators by the chain rule. With y the membrane before the threshold
 * (propagated, or held while refractory), S = H(y - (V_th - E_L)), and
 * g = dL/dV_t (from t+1 plus the loss):
 *   dy      = (1 - S) g + dL/dS_t dS/dy,  dya = dy if not refractory, else 0
 *   dL/dV_{t-1}     = P22 dy (refractory: dy)
 *   dL/dI_ex,{t-1}  = P21ex dya + P11ex dL/dI_ex,t   (likewise I_in)
 *   dL/dw_t         = dL/dI_ex,t                      (w is added to I_ex)
 * The spike's derivative is the surrogate at x = (y + E_L - V_th)/(V_th -
 * V_reset) (distance to threshold in units of the reset depth, so one slope
 * suits any voltage scale), dS/dy = surrogate(x)/(V_th - V_reset). The
 * reset is detached, as snnTorch's reset with detach: V_t = (1 - S) y +
 * S V_reset with S a constant, so dV_t/dy = 1 - S and nothing passes
 * through a spike's reset. A refractory step holds y: the input and the
 * propagation pass no gradient (the clamp), the held value passes it back
 * unchanged (to the reset value before it, so nothing crosses a refractory
 * period started by a spike). refr carries none. No parameter is learned
 * (physical constants; prepare runs once per plan); check refuses
 * V_reset >= V_th for training.
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

SIM_INIT_AT_REST(P_E_L, 4)

/* One neuron over one step, for the simulator and the trainer alike (one
 * copy of the arithmetic, so that both give the same floats): v, r, ie, ii
 * the state at the step's start, we and wi the weights arriving (pA), ic +
 * ext the current (pA). The currents after the step go to *ie_out, *ii_out. */
SIM_INLINE sim_fire neuron(float v, float r, float ie, float ii, float we, float wi, float ic, float ext, float el,
                           float vth, float vr, float rs, float p22, float p20, float p21e, float p21i, float p11e,
                           float p11i, float *ie_out, float *ii_out) {
    const float y = v - el;
    const float yn = p22 * y + p21e * ie + p21i * ii + p20 * (ic + ext);
    *ie_out = p11e * ie + we;
    *ii_out = p11i * ii + wi;
    return soma__sim_fire(0, y, yn, r, vth - el, vr, el, rs);
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
        float ie, ii;
        sim_fire f = neuron(V[i], refr[i], Iex[i], Iin[i], we[i], wi[i], SIM_AT(IE), E ? ext[i] : 0.0f, SIM_AT(EL),
                            SIM_AT(TH), SIM_AT(VR), SIM_AT(R), SIM_AT(P22), SIM_AT(P20), SIM_AT(P21E), SIM_AT(P21I),
                            SIM_AT(P11E), SIM_AT(P11I), &ie, &ii);
        we[i] = 0.0f;
        wi[i] = 0.0f;
        Iex[i] = ie;
        Iin[i] = ii;
        soma__sim_put(f, &V[i], &refr[i], &spk[i]);
    }
}

SIM_STEP_FROM_ROW

/* ---- Training half. Row k = b*N + j of the batch is one instance of
 * neuron j whose only input is in[k] on port e (the summed weight, pA). */
SIM_INLINE sim_fire train_neuron(const soma_model_args *a, const float *const *st, const float *in, size_t k, size_t j,
                                 float *x) {
    const float *const *d = a->drv;
    return neuron(st[0][k], st[3][k], st[1][k], st[2][k], in[k], 0.0f, a->prm[P_I_E][j], 0.0f, a->prm[P_E_L][j],
                  a->prm[P_V_TH][j], a->prm[P_V_RESET][j], d[D_REFR][j], d[D_P22][j], d[D_P20][j], d[D_P21EX][j],
                  d[D_P21IN][j], d[D_P11EX][j], d[D_P11IN][j], &x[0], &x[1]);
}

SIM_FORWARD_FROM_NEURON(4)

/* The step recomputed from the tape (same floats as forward), then the
 * chain rule of the header's backward equations. */
SIM_INLINE void bwd_row(const int S, const soma_model_args *a, const float *const *prev, float *const *dstate,
                        const float *ds, const float *dv, float *din, size_t b, size_t N) {
    const float sp = a->surrogate_param;
    const float *const *d = a->drv;
    for (size_t j = 0, k = b * N; j < N; j++, k++) {
        float x[2];
        sim_fire f = train_neuron(a, prev, a->in, k, j, x);
        const float el = a->prm[P_E_L][j], th = a->prm[P_V_TH][j], inv = soma__sim_sg_inv(th, a->prm[P_V_RESET][j]);
        float g = dstate[0][k] + (dv ? dv[k] : 0.0f), gie = dstate[1][k], gii = dstate[2][k];
        float dy = soma__sim_dpre(S, sp, f, g, ds[k], f.pre - (th - el), inv);
        float dya = f.active ? dy : 0.0f; /* what reaches the propagation (none while refractory) */
        dstate[0][k] = f.active ? d[D_P22][j] * dy : dy;
        dstate[1][k] = d[D_P21EX][j] * dya + d[D_P11EX][j] * gie;
        dstate[2][k] = d[D_P21IN][j] * dya + d[D_P11IN][j] * gii;
        dstate[3][k] = 0.0f;
        din[k] = a->din_accumulate ? din[k] + gie : gie;
    }
}

SIM_BACKWARD_FROM_ROW
SIM_CHECK_RESET(P_V_TH, P_V_RESET)

const soma_model soma__model_iaf_psc_exp = {
    SIM_MODEL_FIELDS("iaf_psc_exp", 4, "pA"),
    SIM_TRAIN_FIELDS,
};
