/* ltc.c — the Liquid Time-Constant cell (LTC; Hasani, Lechner, Amini, Rus and
 * Grosu, "Liquid Time-constant Networks", AAAI 2021), integrated as the
 * `ncps` package's LTCCell does: the ODE
 *
 *   cm dv/dt = gleak (vleak - v) + sum_i f_i (erev_i - v),   f_i >= 0 synaptic conductances
 *
 * stepped K times per time step with the fused (semi-implicit) Euler solver:
 * v enters the leak and synapse terms at the new time and the conductances
 * at the old one, which gives a convex combination, so v never leaves the
 * range of its old value, vleak and the reversal potentials.
 *
 * One time step (elapsed time dt = the parameter `dt`, K = `unfolds`; for
 * unit j, sums over the N presynaptic units i; [i][j] = from i to j):
 *   sensory (once per step, from this step's input x = in_t):
 *     sa_ij  = sw_ij * sigmoid(ssigma_ij (x_i - smu_ij))
 *     ns_j   = sum_i sa_ij serev_ij,    ds_j = sum_i sa_ij
 *   cm_t_j = cm_j / (dt / K)
 *   for k = 0 .. K-1 (v^0 = v[t-1], v[t] = v^K):
 *     a_ij   = w_ij * sigmoid(sigma_ij (v^k_i - mu_ij))
 *     num_j  = cm_t_j v^k_j + gleak_j vleak_j + sum_i a_ij erev_ij + ns_j
 *     den_j  = cm_t_j + gleak_j + sum_i a_ij + ds_j
 *     v^{k+1}_j = num_j / (den_j + 1e-8)
 *   output s = v[t] (state 0 = v[t]).
 *
 * Where soma adapts ncps (said plainly):
 *  - Input. ncps feeds the raw features through an elementwise "affine input
 *    mapping" (x * input_w + input_b) into sensory synapses [inputs][units].
 *    Here the dense projection in front of the population does that mapping
 *    and more: the cell's sensory synapses take the N-wide in_t, so every
 *    sensory matrix is N x N.
 *  - Output. ncps maps v with an elementwise affine "motor" mapping; here the
 *    next layer's dense projection does it. s is v itself.
 *  - Wiring. Fully connected (ncps' FullyConnected wiring with self
 *    connections): no sparsity mask.
 *  - Positivity. w, sensory_w, cm and gleak are used through softplus, as
 *    ncps does with implicit_param_constraints=True (its other mode clips
 *    them with a ReLU after each optimizer step, which a model here cannot
 *    do). The stored tensors are the raw values: the effective value is
 *    softplus(raw) = log(1 + e^raw), and the gradient is taken w.r.t. raw.
 *  - Initialisation follows ncps, on the raw values (as ncps' implicit mode
 *    does): gleak U(0.001, 1), vleak U(-0.2, 0.2), cm U(0.4, 0.6),
 *    w U(0.001, 1), sigma U(3, 8), mu U(0.3, 0.8), and the same for the
 *    sensory ones; erev and sensory_erev are +1 or -1, drawn as ncps'
 *    FullyConnected wiring does: -1 with probability 1/3, +1 with 2/3.
 *    All 11 tensors are learned (ncps learns erev too).
 *  - dt is a fixed parameter of the population, not a per-sample elapsed time
 *    (ncps' forward also uses 1.0 in its regularly sampled mode). It is not
 *    learnable: per neuron it would only rescale cm.
 *  - unfolds is an integer in [1, 64]; a non-integer value is rounded to the
 *    nearest integer.
 *
 * Weights (own tensors, named "<pop>.<name>", layout [from i][to j] as ncps):
 *   sensory_mu, sensory_sigma, sensory_w, sensory_erev, mu, sigma, w, erev
 *   [N][N]; gleak, vleak, cm [1][N].
 *
 * State: 0 = v [N]; 1 = v_unfold [K][N], the input v^k of every unfold
 * (v^0 = v[t-1] repeated, so unfold k reads row k); 2 = rden [K][N], the
 * 1/(den + eps) of every unfold. Only v carries to the next step; the other
 * two are kept on the tape so backward is exact through all K unfolds
 * without solving forward again. Their gradients stay 0.
 *
 * Backward, unfold k from K-1 down to 0, with g = dL/dv^{k+1} and r = rden:
 *   dnum_j = g_j r_j,   dden_j = -g_j v^{k+1}_j r_j
 *   dL/dv^k_j = dnum_j cm_t_j + sum_m dz_jm sigma_jm       (m: postsynaptic)
 *   da_ij = dnum_j erev_ij + dden_j,   dz_ij = da_ij a_ij (1 - sigmoid_ij)
 *   derev_ij += dnum_j a_ij, dw_ij += da_ij sigmoid_ij softplus'(w raw),
 *   dsigma_ij += dz_ij (v^k_i - mu_ij), dmu_ij -= dz_ij sigma_ij
 *   dcm_t_j += dnum_j v^k_j + dden_j, dgleak_j += dnum_j vleak_j + dden_j,
 *   dvleak_j += dnum_j gleak_j, dns_j += dnum_j, dds_j += dden_j
 * then the sensory synapses the same way with dns, dds (summed over unfolds)
 * in place of dnum, dden and x in place of v^k, which gives dL/din.
 * softplus' = sigmoid; dcm = dcm_t K/dt softplus'(cm raw).
 *
 * Scratch (a->work): the effective and derivative values of w and sensory_w
 * (4 N^2) and 13 N-vectors, computed once per call and shared by its rows.
 * Cost per row and step: (K + 1) N^2 sigmoids forward, as many backward.
 * sigmoid and softplus use branch-free polynomial exp and log (within 4 ulp
 * of the exact values), so that the N^2 loops vectorize.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "core/vmath.h"
#include "models/model.h"

enum { P_DT, P_UNFOLDS };
static const soma_param_desc params[] = {
    {"dt", 1.0f, 1e-4f, 1e4f, "", 0, NULL, "elapsed time of one step (the ODE runs dt per step)"},
    {"unfolds", 6.0f, 1.0f, 64.0f, "", 0, NULL, "semi-implicit solver steps per time step (integer)"},
};
static const char *const state_names[] = {"v", "v_unfold", "rden"};

enum { W_SMU, W_SSIGMA, W_SW, W_SEREV, W_MU, W_SIGMA, W_W, W_EREV, W_GLEAK, W_VLEAK, W_CM, N_W };
static const char *const weight_names[] = {"sensory_mu", "sensory_sigma", "sensory_w", "sensory_erev",
                                           "mu",         "sigma",         "w",         "erev",
                                           "gleak",      "vleak",         "cm"};

#define LTC_EPS 1e-8f

static size_t unfolds_of(float p) { return (size_t)(p + 0.5f); }

static inline float sigm(float z) { return 1.0f / (1.0f + soma__expf_vec(-z)); }
/* log(1 + e^x) = max(x, 0) + log(1 + e^-|x|), without overflow for large x. */
static inline float softplus(float x) {
    return (x > 0.0f ? x : 0.0f) + soma__log1pf_unit_vec(soma__expf_vec(-fabsf(x)));
}

/* sp = softplus(x) and, if dsp is not NULL, dsp = softplus'(x) = sigmoid(x), n entries. */
static void softplus_row(float *restrict sp, float *restrict dsp, const float *restrict x, size_t n) {
    for (size_t i = 0; i < n; i++) sp[i] = softplus(x[i]);
    if (dsp)
        for (size_t i = 0; i < n; i++) dsp[i] = sigm(x[i]);
}

static void ltc_weight_shape(const float *prm, size_t N, size_t k, size_t *rows, size_t *cols) {
    (void)prm;
    *rows = k < W_GLEAK ? N : 1;
    *cols = N;
}

static void ltc_weight_init(const float *prm, size_t N, size_t k, float *w, soma_rng *rng) {
    (void)prm;
    size_t n = k < W_GLEAK ? N * N : N;
    float lo = 0.0f, hi = 0.0f;
    switch (k) {
    case W_SMU: case W_MU: lo = 0.3f, hi = 0.8f; break;
    case W_SSIGMA: case W_SIGMA: lo = 3.0f, hi = 8.0f; break;
    case W_SW: case W_W: case W_GLEAK: lo = 0.001f, hi = 1.0f; break;
    case W_VLEAK: lo = -0.2f, hi = 0.2f; break;
    case W_CM: lo = 0.4f, hi = 0.6f; break;
    default: /* reversal potentials: ncps draws the polarity from [-1, 1, 1] */
        for (size_t i = 0; i < n; i++) w[i] = 3.0f * soma_rng_uniform(rng) < 1.0f ? -1.0f : 1.0f;
        return;
    }
    for (size_t i = 0; i < n; i++) w[i] = lo + (hi - lo) * soma_rng_uniform(rng);
}

static size_t ltc_state_width(const float *prm, size_t N, size_t k) {
    return k == 0 ? N : N * unfolds_of(prm[P_UNFOLDS]);
}

static size_t ltc_scratch_floats(const float *prm, size_t N) {
    (void)prm;
    return 4 * N * N + 16 * N;
}

/* num_j = sum_i a_ij erev_ij, den_j = sum_i a_ij with
 * a_ij = w_ij sigmoid(sig_ij (pre_i - mu_ij)); matrices [N][N], w effective. */
static void synapse_sums(float *restrict num, float *restrict den, const float *restrict pre,
                         const float *restrict mu, const float *restrict sig, const float *restrict w,
                         const float *restrict erev, size_t N) {
    memset(num, 0, N * sizeof *num);
    memset(den, 0, N * sizeof *den);
    for (size_t i = 0; i < N; i++) {
        float p = pre[i];
        const float *restrict m = mu + i * N, *restrict sg = sig + i * N, *restrict wr = w + i * N,
                              *restrict e = erev + i * N;
        for (size_t j = 0; j < N; j++) {
            float a = wr[j] * sigm(sg[j] * (p - m[j]));
            num[j] += a * e[j];
            den[j] += a;
        }
    }
}

/* Backward of synapse_sums given dnum, dden: accumulates the tensors'
 * gradients (dw w.r.t. the raw value: times dsp = softplus'(raw)) and sets
 * dpre_i = keep * dpre_i + dL/dpre_i. tmp: N floats, so that the j loop has
 * no reduction and vectorizes. */
static void synapse_backward(float *restrict dpre, float keep, float *restrict dmu, float *restrict dsig,
                             float *restrict dw, float *restrict derev, float *restrict tmp,
                             const float *restrict pre, const float *restrict dnum, const float *restrict dden,
                             const float *restrict mu, const float *restrict sig, const float *restrict w,
                             const float *restrict dsp, const float *restrict erev, size_t N) {
    for (size_t i = 0; i < N; i++) {
        float p = pre[i], acc = 0.0f;
        size_t o = i * N;
        for (size_t j = 0; j < N; j++) {
            float d = p - mu[o + j], sg = sigm(sig[o + j] * d), a = w[o + j] * sg;
            float da = dnum[j] * erev[o + j] + dden[j];
            float dz = da * a * (1.0f - sg);
            derev[o + j] += dnum[j] * a;
            dw[o + j] += da * sg * dsp[o + j];
            dsig[o + j] += dz * d;
            dmu[o + j] -= dz * sig[o + j];
            tmp[j] = dz * sig[o + j];
        }
        /* 16 partial sums: one vector add per 16 entries, not a chain of N */
        float part[16] = {0};
        size_t j = 0;
        for (; j + 16 <= N; j += 16)
            for (size_t q = 0; q < 16; q++) part[q] += tmp[j + q];
        for (; j < N; j++) acc += tmp[j];
        for (size_t q = 0; q < 16; q++) acc += part[q];
        dpre[i] = keep != 0.0f ? dpre[i] + acc : acc;
    }
}

static void ltc_forward(const soma_model_args *a, const float *const *prev, float *const *cur, float *s,
                        const float *in, size_t B, size_t N) {
    size_t K = unfolds_of(a->prm[P_UNFOLDS][0]), NN = N * N;
    float kdt = (float)K / a->prm[P_DT][0];
    const float *const *W = a->w;
    float *spw = a->work, *spsw = spw + NN, *cmt = spsw + NN, *gl = cmt + N, *nb = gl + N, *db = nb + N,
          *nacc = db + N, *dacc = nacc + N;
    softplus_row(spw, NULL, W[W_W], NN);
    softplus_row(spsw, NULL, W[W_SW], NN);
    softplus_row(cmt, NULL, W[W_CM], N);
    softplus_row(gl, NULL, W[W_GLEAK], N);
    for (size_t j = 0; j < N; j++) cmt[j] *= kdt;
    for (size_t b = 0; b < B; b++) {
        float *vu = cur[1] + b * N * K, *rd = cur[2] + b * N * K, *v = cur[0] + b * N;
        synapse_sums(nb, db, in + b * N, W[W_SMU], W[W_SSIGMA], spsw, W[W_SEREV], N);
        for (size_t j = 0; j < N; j++) {
            nb[j] += gl[j] * W[W_VLEAK][j];
            db[j] += cmt[j] + gl[j];
        }
        memcpy(vu, prev[0] + b * N, N * sizeof *vu);
        for (size_t k = 0; k < K; k++) {
            const float *vk = vu + k * N;
            float *out = k + 1 < K ? vu + (k + 1) * N : v, *r = rd + k * N;
            synapse_sums(nacc, dacc, vk, W[W_MU], W[W_SIGMA], spw, W[W_EREV], N);
            for (size_t j = 0; j < N; j++) {
                r[j] = 1.0f / (db[j] + dacc[j] + LTC_EPS);
                out[j] = (cmt[j] * vk[j] + nb[j] + nacc[j]) * r[j];
            }
        }
        memcpy(s + b * N, v, N * sizeof *v);
    }
}

static void ltc_backward(const soma_model_args *a, const float *const *prev, const float *const *cur,
                         float *const *dstate, const float *ds, const float *dv, float *din,
                         float *const *dprm, size_t B, size_t N) {
    (void)prev, (void)dprm;
    size_t K = unfolds_of(a->prm[P_UNFOLDS][0]), NN = N * N;
    float kdt = (float)K / a->prm[P_DT][0];
    const float *const *W = a->w;
    float *const *dW = a->dw;
    float *spw = a->work, *sgw = spw + NN, *spsw = sgw + NN, *sgsw = spsw + NN, *cmt = sgsw + NN, *gl = cmt + N,
          *cfac = gl + N, *gfac = cfac + N, *g = gfac + N, *gn = g + N, *dnum = gn + N, *dden = dnum + N,
          *dns = dden + N, *dds = dns + N, *dc = dds + N, *dg = dc + N, *tmp = dg + N;
    softplus_row(spw, sgw, W[W_W], NN);
    softplus_row(spsw, sgsw, W[W_SW], NN);
    softplus_row(cmt, cfac, W[W_CM], N);
    softplus_row(gl, gfac, W[W_GLEAK], N);
    for (size_t j = 0; j < N; j++) cmt[j] *= kdt, cfac[j] *= kdt;
    const float *vleak = W[W_VLEAK];
    float keep = a->din_accumulate ? 1.0f : 0.0f;
    for (size_t b = 0; b < B; b++) {
        const float *vu = cur[1] + b * N * K, *rd = cur[2] + b * N * K, *v = cur[0] + b * N;
        float *gv = dstate[0] + b * N, *gc = g, *gx = gn;
        for (size_t j = 0; j < N; j++) {
            gc[j] = gv[j] + ds[b * N + j] + (dv ? dv[b * N + j] : 0.0f);
            dns[j] = dds[j] = dc[j] = dg[j] = 0.0f;
        }
        for (size_t k = K; k-- > 0;) {
            const float *vk = vu + k * N, *vo = k + 1 < K ? vu + (k + 1) * N : v, *r = rd + k * N;
            for (size_t j = 0; j < N; j++) {
                float dn = gc[j] * r[j], dd = -gc[j] * vo[j] * r[j];
                dnum[j] = dn, dden[j] = dd;
                dc[j] += dn * vk[j] + dd;
                dg[j] += dn * vleak[j] + dd;
                dW[W_VLEAK][j] += dn * gl[j];
                dns[j] += dn, dds[j] += dd;
                gx[j] = dn * cmt[j];
            }
            synapse_backward(gx, 1.0f, dW[W_MU], dW[W_SIGMA], dW[W_W], dW[W_EREV], tmp, vk, dnum, dden, W[W_MU],
                             W[W_SIGMA], spw, sgw, W[W_EREV], N);
            float *t = gc;
            gc = gx, gx = t;
        }
        memcpy(gv, gc, N * sizeof *gv);
        for (size_t j = 0; j < N; j++) {
            dW[W_CM][j] += dc[j] * cfac[j];
            dW[W_GLEAK][j] += dg[j] * gfac[j];
        }
        synapse_backward(din + b * N, keep, dW[W_SMU], dW[W_SSIGMA], dW[W_SW], dW[W_SEREV], tmp, a->in + b * N, dns,
                         dds, W[W_SMU], W[W_SSIGMA], spsw, sgsw, W[W_SEREV], N);
    }
}

const soma_model soma__model_ltc = {
    .name = "ltc",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .n_state = 3,
    .state_names = state_names,
    .spiking = 1,
    .graded = 1,
    .rate_output = 0,
    .forward = ltc_forward,
    .backward = ltc_backward,
    .n_weights = N_W,
    .weight_names = weight_names,
    .weight_shape = ltc_weight_shape,
    .weight_init = ltc_weight_init,
    .state_width = ltc_state_width,
    .scratch_floats = ltc_scratch_floats,
};
