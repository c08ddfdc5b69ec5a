/* sim_adex.c — adaptive exponential integrate-and-fire neuron (R. Brette and
 * W. Gerstner, "Adaptive exponential integrate-and-fire model as an
 * effective description of neuronal activity", J Neurophysiol 94:3637,
 * 2005) with exponentially decaying synaptic currents, like NEST's
 * aeif_psc_exp, for the event-driven simulator.
 *
 *   C_m dV/dt = -g_L (V - E_L) + g_L Delta_T exp((V - V_T)/Delta_T) - w
 *               + I_ex + I_in + I_e + I_ext
 *   tau_w dw/dt = a (V - E_L) - w
 *   dI_X/dt = -I_X / tau_syn_X;  input of weight w (pA): I_X += w on port X
 *   (e takes positive weights, i negative ones)
 *   V >= V_peak: spike, V = V_reset, w += b, refractory for t_ref
 *   (V clamped at V_reset, w still evolving, as NEST)
 *
 * Units: ms, mV, pF, nS, pA; weights in pA. Defaults are NEST's
 * aeif_psc_exp (Brette & Gerstner's Fig. 2 cell): C_m 281 pF, g_L 30 nS,
 * E_L -70.6, V_T -50.4, Delta_T 2 mV, tau_w 144 ms, a 4 nS, b 80.5 pA,
 * V_reset -70.6, V_peak 0 mV, t_ref 0 ms, tau_syn_ex 0.2, tau_syn_in 2 ms,
 * I_e 0 pA. Delta_T must be > 0 (NEST's Delta_T = 0 IAF limit is not
 * modelled).
 *
 * Integration. NEST uses an adaptive Runge-Kutta-Fehlberg 4(5) and detects
 * the spike inside the step. soma uses a fixed step that still vectorizes:
 *   - substeps of h = dt/n, n = ceil(dt / 0.025 ms) (4 at dt 0.1 ms);
 *   - each substep is explicit midpoint (RK2) for (V, w) with the synaptic
 *     currents evaluated exactly at the stage times (I_X(t) = I_X e^(-t/tau));
 *   - as NEST, V is clamped at V_peak in the right-hand side (and the
 *     exponent at 60), so the exponential cannot overflow and a V that
 *     overshoots in a stage cannot blow up w;
 *   - the spike and reset happen inside the substep at an estimated time:
 *     near a spike the exponential term E = (g_L Delta_T / C_m)
 *     exp((V - V_T)/Delta_T) dominates dV/dt = E + L, and x = exp(-(V -
 *     V_T)/Delta_T) obeys dx/dt = -(x L + K)/Delta_T (K = g_L Delta_T/C_m),
 *     which is linear in x: with L frozen, V reaches V_peak after
 *       t_b = (Delta_T / E) (1 - exp((V - V_peak)/Delta_T)) ln(1 + y)/y,
 *     y = L/E, using the Pade form ln(1+y)/y ~ (6 + y)/(6 + 4y) (error
 *     < 0.2 % for -0.5 <= y <= 1, the range where it is used). If t_b < h
 *     the neuron spikes at t_b: V = V_reset, w = w + t_b dw/dt + b, and the
 *     rest of the substep is one Euler step from there (V held if t_ref >
 *     0). Otherwise, a V >= V_peak at the end of the substep (strong drive,
 *     E not dominant) is a spike at the substep's end.
 * Resetting at the end of the step instead makes every inter-spike interval
 * up to dt too long, and the error adds up over a train (about 1 ms after
 * ten spikes at dt 0.1 ms); with this scheme spike times stay within the
 * step of a double RK4 reference (tests/test_sim_models.c). More than one
 * spike in one step (t_ref 0, huge drive) counts as one spike.
 *
 * Step order (NEST's): integrate over the step with the currents present at
 * its start; a neuron refractory at the start of the step (refr >= 0.5)
 * has V clamped for the whole step and refr -= 1; after a spike refr =
 * t_ref/dt rounded to the nearest step (held during the next refr steps);
 * then the weights arriving this step are added to I_ex, I_in. I_ext is
 * applied in its own step (NEST: one step later).
 *
 * State: V_m (mV), w (pA), I_ex, I_in (pA), refr (steps left, a float).
 */
#include "models/sim_common.h"

enum { P_C_M, P_G_L, P_E_L, P_V_T, P_DELTA_T, P_TAU_W, P_A, P_B, P_V_RESET, P_V_PEAK, P_T_REF, P_TAU_EX,
       P_TAU_IN, P_I_E, N_P };
static const soma_param_desc params[] = {
    {"C_m", 281.0f, 1e-3f, 1e9f, "pF", 0, NULL, "membrane capacitance"},
    {"g_L", 30.0f, 1e-6f, 1e9f, "nS", 0, NULL, "leak conductance"},
    {"E_L", -70.6f, -1e4f, 1e4f, "mV", 0, NULL, "leak reversal potential"},
    {"V_T", -50.4f, -1e4f, 1e4f, "mV", 0, NULL, "spike initiation threshold"},
    {"Delta_T", 2.0f, 1e-3f, 1e4f, "mV", 0, NULL, "slope factor of the exponential"},
    {"tau_w", 144.0f, 1e-3f, 1e9f, "ms", 0, NULL, "adaptation time constant"},
    {"a", 4.0f, -1e6f, 1e6f, "nS", 0, NULL, "subthreshold adaptation"},
    {"b", 80.5f, -1e9f, 1e9f, "pA", 0, NULL, "spike-triggered adaptation"},
    {"V_reset", -70.6f, -1e4f, 1e4f, "mV", 0, NULL, "reset potential"},
    {"V_peak", 0.0f, -1e4f, 1e4f, "mV", 0, NULL, "spike detection threshold"},
    {"t_ref", 0.0f, 0.0f, 1e9f, "ms", 0, NULL, "refractory period (rounded to whole steps)"},
    {"tau_syn_ex", 0.2f, 1e-3f, 1e9f, "ms", 0, NULL, "excitatory synaptic current time constant"},
    {"tau_syn_in", 2.0f, 1e-3f, 1e9f, "ms", 0, NULL, "inhibitory synaptic current time constant"},
    {"I_e", 0.0f, -1e9f, 1e9f, "pA", 0, NULL, "constant input current"},
};
static const char *const state_names[] = {"V_m", "w", "I_ex", "I_in", "refr"};
static const char *const state_units[] = {"mV", "pA", "pA", "pA", ""};
static const char *const port_names[] = {"e", "i"};

/* Longest substep (ms). */
#define H_MAX 0.025
#define BLOCK 256

/* D_NSUB and D_H are the same for every neuron (they depend on dt only). */
enum { D_NSUB, D_H, D_IC, D_GLC, D_K, D_IDT, D_ITW, D_KP, D_ERES, D_EXH, D_INH, D_EX, D_IN, D_REFR, D_HOLD, N_D };

static void prepare(const float *const *prm, size_t N, float dt, int uniform, float *const *drv) {
    double n = ceil((double)dt / H_MAX - 1e-9);
    n = n < 1 ? 1 : n;
    double h = dt / n;
    for (size_t j = 0; j < soma__sim_count(N, uniform); j++) {
        double C = prm[P_C_M][j], gL = prm[P_G_L][j], DT = prm[P_DELTA_T][j];
        drv[D_NSUB][j] = (float)n;
        drv[D_H][j] = (float)h;
        drv[D_IC][j] = (float)(1.0 / C);
        drv[D_GLC][j] = (float)(gL / C);
        drv[D_K][j] = (float)(gL * DT / C);
        drv[D_IDT][j] = (float)(1.0 / DT);
        drv[D_ITW][j] = (float)(1.0 / prm[P_TAU_W][j]);
        /* exp((V_T - V_peak)/Delta_T): exp((V - V_peak)/Delta_T) = e1 * KP. */
        drv[D_KP][j] = (float)exp(((double)prm[P_V_T][j] - prm[P_V_PEAK][j]) / DT);
        /* The exponential at V_reset (a constant: the rest of a substep after a reset). */
        double er = ((double)prm[P_V_RESET][j] - prm[P_V_T][j]) / DT;
        drv[D_ERES][j] = (float)(gL * DT / C * exp(er < 60 ? er : 60));
        drv[D_EXH][j] = (float)exp(-0.5 * h / prm[P_TAU_EX][j]);
        drv[D_INH][j] = (float)exp(-0.5 * h / prm[P_TAU_IN][j]);
        drv[D_EX][j] = (float)exp(-h / prm[P_TAU_EX][j]);
        drv[D_IN][j] = (float)exp(-h / prm[P_TAU_IN][j]);
        drv[D_REFR][j] = soma__sim_steps_nest(prm[P_T_REF][j], dt);
        drv[D_HOLD][j] = drv[D_REFR][j] > 0.0f ? 1.0f : 0.0f;
    }
}

SIM_INIT_AT_REST(P_E_L, 5)

/* Neurons [i0, i1) (at most BLOCK). The substeps are passes over the block
 * (state kept in the arrays, per-neuron flags in small stack arrays), so
 * that each pass vectorizes. */
SIM_INLINE void row(const int U, const int E, const soma_sim_args *a, float *const *st, float *const *in,
                    uint8_t *restrict spk, size_t i0, size_t i1) {
    float *restrict V = st[0], *restrict W = st[1], *restrict Iex = st[2], *restrict Iin = st[3],
                    *restrict refr = st[4];
    float *restrict we = in[0], *restrict wi = in[1];
    const float *restrict ext = a->ext;
    float Ic[BLOCK], hold[BLOCK], fired[BLOCK];
    SIM_ARR(IC, a->drv[D_IC]);
    SIM_ARR(GLC, a->drv[D_GLC]);
    SIM_ARR(K, a->drv[D_K]);
    SIM_ARR(IDT, a->drv[D_IDT]);
    SIM_ARR(ITW, a->drv[D_ITW]);
    SIM_ARR(KP, a->drv[D_KP]);
    SIM_ARR(ERES, a->drv[D_ERES]);
    SIM_ARR(EXH, a->drv[D_EXH]);
    SIM_ARR(INH, a->drv[D_INH]);
    SIM_ARR(EX, a->drv[D_EX]);
    SIM_ARR(IN, a->drv[D_IN]);
    SIM_ARR(R, a->drv[D_REFR]);
    SIM_ARR(HOLD, a->drv[D_HOLD]);
    SIM_ARR(EL, a->prm[P_E_L]);
    SIM_ARR(VT, a->prm[P_V_T]);
    SIM_ARR(DT, a->prm[P_DELTA_T]);
    SIM_ARR(AA, a->prm[P_A]);
    SIM_ARR(BB, a->prm[P_B]);
    SIM_ARR(VR, a->prm[P_V_RESET]);
    SIM_ARR(VP, a->prm[P_V_PEAK]);
    SIM_ARR(IE, a->prm[P_I_E]);
    const int nsub = (int)a->drv[D_NSUB][0];
    const float h = a->drv[D_H][0];
    SIM_IVDEP
    for (size_t i = i0; i < i1; i++) {
        Ic[i - i0] = SIM_AT(IE) + (E ? ext[i] : 0.0f);
        hold[i - i0] = refr[i] >= 0.5f ? 1.0f : 0.0f;
        fired[i - i0] = 0.0f;
    }
    for (int k = 0; k < nsub; k++) {
        SIM_IVDEP
        for (size_t i = i0; i < i1; i++) {
            const size_t j = i - i0;
            const float el = SIM_AT(EL), vt = SIM_AT(VT), idt = SIM_AT(IDT), vp = SIM_AT(VP), vr = SIM_AT(VR);
            const float glc = SIM_AT(GLC), kk = SIM_AT(K), ic = SIM_AT(IC), itw = SIM_AT(ITW), aa = SIM_AT(AA);
            const int held = hold[j] != 0.0f;
            float v = V[i], w = W[i], ie = Iex[i], ii = Iin[i];
            /* Stage 1 at the substep's start (V clamped: at V_peak in the
             * right-hand side, at V_reset while refractory). */
            float vc = held ? vr : (v < vp ? v : vp);
            float x1 = (vc - vt) * idt;
            float e1 = kk * soma__expf_vec(x1 < 60.0f ? x1 : 60.0f);
            float l1 = ic * (ie + ii + Ic[j] - w) - glc * (vc - el);
            float dv1 = held ? 0.0f : e1 + l1;
            float dw1 = itw * (aa * (vc - el) - w);
            /* Stage 2 at the midpoint, currents decayed exactly. */
            float vm = v + 0.5f * h * dv1, wm = w + 0.5f * h * dw1;
            float vmc = held ? vr : (vm < vp ? vm : vp);
            float x2 = (vmc - vt) * idt;
            float e2 = kk * soma__expf_vec(x2 < 60.0f ? x2 : 60.0f);
            float l2 = ic * (SIM_AT(EXH) * ie + SIM_AT(INH) * ii + Ic[j] - wm) - glc * (vmc - el);
            float dv2 = held ? 0.0f : e2 + l2;
            float dw2 = itw * (aa * (vmc - el) - wm);
            float v1 = v + h * dv2, w1 = w + h * dw2;
            /* Spike inside the substep, at the estimated blow-up time tb. */
            float y = l1 / e1;
            float num = SIM_AT(DT) * (1.0f - e1 * SIM_AT(KP) / kk) * (6.0f + y) / (6.0f + 4.0f * y);
            int early = (!held) & __builtin_isgreaterequal(y, -0.5f) & __builtin_islessequal(y, 1.0f) &
                        __builtin_isless(num, h * e1);
            float tb = early ? num / e1 : 0.0f;
            float ws = w + tb * dw1 + SIM_AT(BB);
            float rest = h - tb;
            int hold_after = SIM_AT(HOLD) != 0.0f;
            float dvr = hold_after ? 0.0f : SIM_AT(ERES) + ic * (ie + ii + Ic[j] - ws) - glc * (vr - el);
            float dwr = itw * (aa * (vr - el) - ws);
            int late = (!early) & (!held) & __builtin_isgreaterequal(v1, vp);
            V[i] = early ? vr + rest * dvr : (late ? vr : (held ? vr : v1));
            W[i] = early ? ws + rest * dwr : (late ? w1 + SIM_AT(BB) : w1);
            Iex[i] = SIM_AT(EX) * ie;
            Iin[i] = SIM_AT(IN) * ii;
            int s = early | late;
            fired[j] = s ? 1.0f : fired[j];
            hold[j] = (s & hold_after) ? 1.0f : hold[j];
        }
    }
    SIM_IVDEP
    for (size_t i = i0; i < i1; i++) {
        const size_t j = i - i0;
        int s = fired[j] != 0.0f;
        float r = refr[i];
        refr[i] = s ? SIM_AT(R) : (r >= 0.5f ? r - 1.0f : r);
        Iex[i] += we[i];
        Iin[i] += wi[i];
        we[i] = 0.0f;
        wi[i] = 0.0f;
        spk[i] = (uint8_t)s;
    }
}

static void step(const soma_sim_args *a, float *const *state, float *const *in, uint8_t *spk, size_t i0,
                 size_t i1) {
    for (size_t b0 = i0; b0 < i1; b0 += BLOCK) {
        size_t b1 = i1 - b0 > BLOCK ? b0 + BLOCK : i1;
#define ROW(U, E) row(U, E, a, state, in, spk, b0, b1)
        SIM_DISPATCH(a, ROW);
#undef ROW
    }
}

const soma_model soma__model_adex = {
    SIM_MODEL_FIELDS("adex", 5, "pA"),
};
