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
 *
 * Training half (the trainer's forward/backward over [B][N]; row b*N + j is
 * one instance of neuron j whose only input is in[b*N + j] on port e, the
 * summed weight in mV): forward calls the same inline step as sim_step
 * (soma__sim_brian in sim_common.h, the kernel shared with lif_coba), with
 * port i and the external input 0, so it gives the simulator's floats bit
 * for bit (tests/test_physical_train.c). The state starts from init (v =
 * e_l, ge = gi = 0). Backward recomputes the step from the tape and follows
 * the exact propagators by the chain rule. With xn the propagated v, y the
 * membrane before the threshold (xn, or v held while refractory), S =
 * H(xn - v_th) when not refractory (else 0, with no gradient), gv = dL/dv_t
 * (from t+1 plus the loss) and e = ge + w (gi gets no input):
 *   dy  = (1 - S) gv + dL/dS_t dS/dxn   (the second term only if not refractory)
 *   dya = dy if not refractory, else 0
 *   dL/dv_{t-1}  = (1 - Q) dy (refractory: dy)
 *   dL/de        = Pe dya + exp(-dt/tau_e) dL/dge_t  = dL/dge_{t-1} = dL/dw_t
 *   dL/dgi_{t-1} = Pi dya + exp(-dt/tau_i) dL/dgi_t
 * The spike's derivative is the surrogate at x = (xn - v_th)/(v_th -
 * v_reset) (distance to threshold in units of the reset depth, so one
 * slope suits any voltage scale), dS/dxn = surrogate(x)/(v_th - v_reset).
 * The reset is detached, as snnTorch's reset with detach: v_t = (1 - S) y +
 * S v_reset with S a constant, so dv_t/dy = 1 - S and nothing passes
 * through a spike's reset. A refractory step holds v: the input and the
 * propagation pass no gradient (the clamp), the held value passes it back
 * unchanged (to the reset value before it, so nothing crosses a refractory
 * period started by a spike). refr carries none. No parameter is learned
 * (physical constants; prepare runs once per plan); check refuses
 * v_reset >= v_th for training.
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

SIM_INIT_AT_REST(P_E_L, 4)

/* The kernel it shares with lif_coba (sim_common.h), with this model's
 * membrane constants (e_l twice: the fifth is unused by cuba). */
SIM_INLINE void row(const int U, const int E, const soma_sim_args *a, float *const *st, float *const *in,
                    uint8_t *restrict spk, size_t i0, size_t i1) {
    const float *const mc[5] = {a->drv[D_Q], a->drv[D_PE], a->drv[D_PI], a->prm[P_E_L], a->prm[P_E_L]};
    soma__sim_brian_row(0, U, E, a, st, in, spk, i0, i1, mc, a->drv[D_DE], a->drv[D_DI], a->drv[D_REFR],
                        a->prm[P_V_TH], a->prm[P_V_RESET]);
}

SIM_STEP_FROM_ROW

/* ---- Training half. Row k = b*N + j of the batch is one instance of
 * neuron j whose only input is in[k] on port e (the summed weight, mV). */
SIM_INLINE sim_fire train_neuron(const soma_model_args *a, const float *const *st, const float *in, size_t k, size_t j,
                                 float *x) {
    const float *const *d = a->drv;
    const float m[5] = {d[D_Q][j], d[D_PE][j], d[D_PI][j], a->prm[P_E_L][j], a->prm[P_E_L][j]};
    return soma__sim_brian(0, st[0][k], st[3][k], st[1][k], st[2][k], in[k], 0.0f, 0.0f, m, d[D_DE][j], d[D_DI][j],
                           a->prm[P_V_TH][j], a->prm[P_V_RESET][j], d[D_REFR][j], &x[0], &x[1]);
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
        const float th = a->prm[P_V_TH][j], inv = soma__sim_sg_inv(th, a->prm[P_V_RESET][j]);
        float g = dstate[0][k] + (dv ? dv[k] : 0.0f);
        /* S = active & (xn > v_th): only an active step's spike has a gradient. */
        float dx = soma__sim_dpre(S, sp, f, g, f.active ? ds[k] : 0.0f, f.pre - th, inv);
        float dxa = f.active ? dx : 0.0f; /* what reaches the propagation (none while refractory) */
        float de = d[D_PE][j] * dxa + d[D_DE][j] * dstate[1][k];
        float dg = d[D_PI][j] * dxa + d[D_DI][j] * dstate[2][k];
        dstate[0][k] = f.active ? (1.0f - d[D_Q][j]) * dx : dx;
        dstate[1][k] = de;
        dstate[2][k] = dg;
        dstate[3][k] = 0.0f;
        din[k] = a->din_accumulate ? din[k] + de : de;
    }
}

SIM_BACKWARD_FROM_ROW
SIM_CHECK_RESET(P_V_TH, P_V_RESET)

const soma_model soma__model_lif_cuba = {
    SIM_MODEL_FIELDS("lif_cuba", 4, "mV"),
    SIM_TRAIN_FIELDS,
};
