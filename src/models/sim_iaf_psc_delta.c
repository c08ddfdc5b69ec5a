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
 *
 * Training half (the trainer's forward/backward over [B][N]; row b*N + j is
 * one instance of neuron j whose only input is in[b*N + j] on port e, the
 * summed weight in mV, with I_e as set): forward calls the same inline
 * step (neuron() below) as sim_step, with port i and the external input 0,
 * so it gives the simulator's floats bit for bit (tests/
 * test_physical_train.c). The state starts from init (V = E_L).
 * Backward recomputes the step from the tape and follows the exact
 * propagators by the chain rule. With y the membrane before the threshold
 * (propagated, or held while refractory), S = H(y - (V_th - E_L)), and
 * g = dL/dV_t (from t+1 plus the loss):
 *   dy     = (1 - S) g + dL/dS_t dS/dy
 *   dL/dV_{t-1} = P22 dy, dL/dw_t = dy   (not refractory)
 *   dL/dV_{t-1} = dy,     dL/dw_t = 0    (refractory)
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

SIM_INIT_AT_REST(P_E_L, 2)

/* One neuron over one step, for the simulator and the trainer alike (one
 * copy of the arithmetic, so that both give the same floats): v, r the
 * state at the step's start, we + wi the weights arriving (mV), ie + ext
 * the current (pA). */
SIM_INLINE sim_fire neuron(float v, float r, float we, float wi, float ie, float ext, float el, float vth, float vr,
                           float rs, float p22, float p20) {
    const float y = v - el;
    const float yn = p22 * y + p20 * (ie + ext) + (we + wi);
    return soma__sim_fire(0, y, yn, r, vth - el, vr, el, rs);
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
        sim_fire f = neuron(V[i], refr[i], we[i], wi[i], SIM_AT(IE), E ? ext[i] : 0.0f, SIM_AT(EL), SIM_AT(TH),
                            SIM_AT(VR), SIM_AT(R), SIM_AT(P22), SIM_AT(P20));
        we[i] = 0.0f;
        wi[i] = 0.0f;
        soma__sim_put(f, &V[i], &refr[i], &spk[i]);
    }
}

SIM_STEP_FROM_ROW

/* ---- Training half. Row k = b*N + j of the batch is one instance of
 * neuron j whose only input is in[k] on port e (the summed weight, mV). */
SIM_INLINE sim_fire train_neuron(const soma_model_args *a, const float *const *st, const float *in, size_t k,
                                 size_t j, float *x) {
    (void)x; /* no synaptic state */
    return neuron(st[0][k], st[1][k], in[k], 0.0f, a->prm[P_I_E][j], 0.0f, a->prm[P_E_L][j], a->prm[P_V_TH][j],
                  a->prm[P_V_RESET][j], a->drv[D_REFR][j], a->drv[D_P22][j], a->drv[D_P20][j]);
}

SIM_FORWARD_FROM_NEURON(2)

/* The step recomputed from the tape (same floats as forward), then dy =
 * dL/dy (y the membrane before the threshold), as in the header. */
SIM_INLINE void bwd_row(const int S, const soma_model_args *a, const float *const *prev, float *const *dstate,
                        const float *ds, const float *dv, float *din, size_t b, size_t N) {
    const float sp = a->surrogate_param;
    for (size_t j = 0, k = b * N; j < N; j++, k++) {
        sim_fire f = train_neuron(a, prev, a->in, k, j, NULL);
        const float el = a->prm[P_E_L][j], th = a->prm[P_V_TH][j], inv = soma__sim_sg_inv(th, a->prm[P_V_RESET][j]);
        float g = dstate[0][k] + (dv ? dv[k] : 0.0f);
        float dy = soma__sim_dpre(S, sp, f, g, ds[k], f.pre - (th - el), inv);
        float dw = f.active ? dy : 0.0f;
        dstate[0][k] = f.active ? a->drv[D_P22][j] * dy : dy;
        dstate[1][k] = 0.0f;
        din[k] = a->din_accumulate ? din[k] + dw : dw;
    }
}

SIM_BACKWARD_FROM_ROW
SIM_CHECK_RESET(P_V_TH, P_V_RESET)

const soma_model soma__model_iaf_psc_delta = {
    SIM_MODEL_FIELDS("iaf_psc_delta", 2, "mV"),
    SIM_TRAIN_FIELDS,
};
