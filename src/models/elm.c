/* elm.c — the Expressive Leaky Memory neuron (ELM, v1) and its branched
 * form (Branch-ELM, v2): a population of N leaky memory units whose update
 * is computed by a small MLP from decaying synaptic traces and the decayed
 * memory itself.
 *
 * Source: A. Spieler, N. Rahaman, G. Martius, B. Schölkopf, A. Levina, "The
 * ELM neuron: an efficient and expressive cortical neuron model can solve
 * long-horizon tasks", ICLR 2024 (arXiv 2306.16922), and its reference code
 * (github.com/AaronSpieler/elmneuron, src/expressive_leaky_memory_neuron.py
 * and _v2.py). Equations (κ = e^{−Δt/τ}, all products elementwise):
 *
 *   s_t  = κ_s ⊙ s_{t−1} + in_t                         synapse traces (N)
 *   b_t  = s_t                        (branches = 0, v1: one synapse per branch)
 *   b_t[i] = Σ_{j in branch i} s_t[j] (branches = d_b > 0, v2)
 *   u_t  = [b_t, κ_m ⊙ m_{t−1}]                         MLP input (d_b or N, + N)
 *   z1_t = W1 u_t + b1,  h_t = relu(z1_t)               hidden layer (H)
 *   z2_t = W2 h_t + b2                                  MLP output (N)
 *   Δm_t = 1.7159 tanh(⅔ z2_t)
 *   m_t  = κ_m ⊙ m_{t−1} + λ (1 − κ_m) ⊙ Δm_t           memory (the output)
 *
 * How soma maps it (say it plainly: these are adaptations):
 *   - The population size N is the number of memory units d_m (the paper's
 *     default 100 is just a population of 100).
 *   - The synapses are the N channels of the incoming dense projection:
 *     in_t = W x_t + b. Its learned weights play the role of the paper's
 *     synaptic weights w_s, but they are signed and mix all inputs, where the
 *     paper's w_s ≥ 0 (relu of a parameter) scale one input each. Input
 *     routing (random / NeuronIO) is left to that projection.
 *   - The readout y_t = W_y m_t + b is not part of the cell: it is the next
 *     dense projection (typically an `ann` linear layer). The cell outputs
 *     s = m_t and state 0 (the membrane read by losses) is m_t.
 *   - τ_s is the parameter `tau_s` (default 5), learnable per layer or per
 *     neuron (the reference keeps it fixed).
 *   - τ_m is an own weight tensor `log_tau_m` [1][N] holding ln τ_m,
 *     initialised log-spaced over the neurons in [ln 1, ln 1000] and learned
 *     with the other weights (the reference's default learn_memory_tau is
 *     False, and it bounds τ_m to [1, 1000] through a scaled sigmoid; here
 *     ln τ_m is unbounded: κ_m = exp(−Δt e^{−ln τ_m}) stays in [0, 1]).
 *   - Branches (v2): channel j belongs to branch ⌊j d_b / N⌋, so when d_b
 *     divides N the branches are d_b runs of N/d_b consecutive channels as
 *     specified. The vtable has no hook to reject a d_b that does not divide
 *     N, so that case is allowed: branch sizes then differ by at most one
 *     (d_b > N leaves some branches empty, always 0). branches = N is v1.
 *     The trace decays per synapse channel and the branch sums the traces
 *     (the v1 code's form); the v2 code instead decays the branch sum with
 *     its own τ_b, which is the same thing when τ_s is uniform in a branch.
 *   - The memory step uses λ(1 − κ_m) as in the paper and the v1 code; the
 *     v2 code uses 1 − e^{−λΔt/τ_m} instead (not implemented).
 *   - One hidden layer (the paper's default; mlp_num_layers is not offered),
 *     width `mlp_hidden` (0 means 2N, the paper's default 2 d_m).
 *   - The integer parameters `branches` and `mlp_hidden` are floats in soma's
 *     parameter table; fractional values are rounded down.
 *   - Weights W1 [H][in_w], b1 [1][H], W2 [N][H], b2 [1][N] start as
 *     torch.nn.Linear does: U(−1/√fan_in, 1/√fan_in).
 *
 * State: 0 = m (N), 1 = s trace (N), 2 = z1 (H), 3 = z2 (N). Only m and s
 * carry to the next step; z1 and z2 are kept on the tape so that backward
 * needs no MLP forward again (u is rebuilt from s_t and m_{t−1}).
 *
 * Backward (g = dL/dm_t in total, gs = dL/ds_t from step t+1,
 * φ' = 1.7159·⅔·(1 − tanh²(⅔ z2))):
 *   dz2 = g λ (1 − κ_m) φ';  dW2 += dz2 h^T;  db2 += dz2
 *   dz1 = (W2^T dz2) ⊙ [z1 > 0];  dW1 += dz1 u^T;  db1 += dz1;  du = W1^T dz1
 *   dκ_m = g (m_{t−1} − λ Δm) + du_m m_{t−1};  dm_{t−1} = (g + du_m) κ_m
 *   dλ += g (1 − κ_m) Δm
 *   ds = gs + du_b[branch];  din = ds;  ds_{t−1} = ds κ_s;  dκ_s = ds s_{t−1}
 *   d ln τ_m = dκ_m κ_m Δt/τ_m;  dτ_s = dκ_s κ_s Δt/τ_s²
 */
#include <cblas.h>
#include <math.h>
#include <string.h>
#include "models/model.h"

enum { P_LAMBDA, P_DT, P_TAU_S, P_BRANCHES, P_HIDDEN };
static const soma_param_desc params[] = {
    {"lambda", 5.0f, 0.0f, 1e3f, "", 1, NULL, "memory update scale: m += lambda (1 - kappa_m) dm"},
    {"dt", 1.0f, 1e-3f, 1e3f, "steps", 0, NULL, "time step of the decays kappa = exp(-dt/tau)"},
    {"tau_s", 5.0f, 1e-3f, 1e6f, "steps", 1, NULL, "synaptic trace time constant"},
    {"branches", 0.0f, 0.0f, 65536.0f, "", 0, NULL, "0: ELM v1; d_b > 0: Branch-ELM with d_b branches"},
    {"mlp_hidden", 0.0f, 0.0f, 65536.0f, "", 0, NULL, "width of the MLP's hidden layer (0: 2N)"},
};
static const char *const state_names[] = {"m", "s", "z1", "z2"};
enum { W_W1, W_B1, W_W2, W_B2, W_LOG_TAU_M };
static const char *const weight_names[] = {"w1", "b1", "w2", "b2", "log_tau_m"};

#define ELM_A 1.7159f
#define ELM_S (2.0f / 3.0f)

/* Sizes from the set values: branches D (0 = v1), hidden width H, MLP input width. */
static size_t n_branches(float v) { return v >= 1.0f ? (size_t)v : 0; }
static size_t n_hidden(float v, size_t N) { return v >= 1.0f ? (size_t)v : 2 * N; }
static size_t n_mlp_in(float branches, size_t N) {
    size_t D = n_branches(branches);
    return (D ? D : N) + N;
}

static void elm_weight_shape(const float *prm, size_t N, size_t k, size_t *rows, size_t *cols) {
    size_t H = n_hidden(prm[P_HIDDEN], N), NI = n_mlp_in(prm[P_BRANCHES], N);
    switch (k) {
    case W_W1: *rows = H, *cols = NI; break;
    case W_B1: *rows = 1, *cols = H; break;
    case W_W2: *rows = N, *cols = H; break;
    case W_B2: *rows = 1, *cols = N; break;
    default: *rows = 1, *cols = N; break; /* log_tau_m */
    }
}

static void elm_weight_init(const float *prm, size_t N, size_t k, float *w, soma_rng *rng) {
    size_t H = n_hidden(prm[P_HIDDEN], N), NI = n_mlp_in(prm[P_BRANCHES], N);
    if (k == W_LOG_TAU_M) { /* torch.logspace(0, 3, N) in ln: ln 1 .. ln 1000 */
        for (size_t j = 0; j < N; j++) w[j] = N > 1 ? (float)(log(1000.0) * (double)j / (double)(N - 1)) : 0.0f;
        return;
    }
    size_t fan_in = k == W_W1 || k == W_B1 ? NI : H;
    size_t n = k == W_W1 ? H * NI : k == W_B1 ? H : k == W_W2 ? N * H : N;
    float bound = 1.0f / sqrtf((float)fan_in);
    for (size_t i = 0; i < n; i++) w[i] = bound * (2.0f * soma_rng_uniform(rng) - 1.0f);
}

static size_t elm_state_width(const float *prm, size_t N, size_t k) {
    return k == 2 ? n_hidden(prm[P_HIDDEN], N) : N;
}

/* Per row: u and du (NI each), h and dz1 (H each), dz2 (N). */
static size_t elm_scratch_floats(const float *prm, size_t N) {
    return 2 * n_mlp_in(prm[P_BRANCHES], N) + 2 * n_hidden(prm[P_HIDDEN], N) + N;
}

/* The decays of this call into scratch: km [N] and ks [N]. */
static void decays(const soma_model_args *a, size_t N, float *restrict km, float *restrict ks) {
    const float *dt = a->prm[P_DT], *taus = a->prm[P_TAU_S], *ltm = a->w[W_LOG_TAU_M];
    for (size_t j = 0; j < N; j++) {
        km[j] = expf(-dt[j] * expf(-ltm[j]));
        ks[j] = expf(-dt[j] / taus[j]);
    }
}

/* MLP input rows u [B][NI] = [b_t, km ⊙ m_{t-1}] from s_t [B][N] and m_{t-1} [B][N]. */
static void mlp_input(float *restrict u, const float *restrict s, const float *restrict mp, const float *restrict km,
                      size_t D, size_t B, size_t N) {
    size_t NI = (D ? D : N) + N;
    for (size_t b = 0; b < B; b++) {
        float *ub = u + b * NI;
        const float *sb = s + b * N, *mb = mp + b * N;
        if (D) {
            memset(ub, 0, D * sizeof *ub);
            for (size_t j = 0; j < N; j++) ub[j * D / N] += sb[j];
        } else memcpy(ub, sb, N * sizeof *ub);
        float *um = ub + (D ? D : N);
        for (size_t j = 0; j < N; j++) um[j] = km[j] * mb[j];
    }
}

static void elm_forward(const soma_model_args *a, const float *const *prev, float *const *cur, float *out,
                        const float *in, size_t B, size_t N) {
    size_t D = n_branches(a->prm[P_BRANCHES][0]), H = n_hidden(a->prm[P_HIDDEN][0], N), NI = (D ? D : N) + N;
    const float *lam = a->prm[P_LAMBDA];
    const float *W1 = a->w[W_W1], *b1 = a->w[W_B1], *W2 = a->w[W_W2], *b2 = a->w[W_B2];
    float *km = a->scratch, *ks = a->scratch + N;
    float *u = a->work, *h = u + B * NI;
    decays(a, N, km, ks);
    for (size_t b = 0; b < B; b++)
        for (size_t j = 0; j < N; j++) cur[1][b * N + j] = ks[j] * prev[1][b * N + j] + in[b * N + j];
    mlp_input(u, cur[1], prev[0], km, D, B, N);
    /* z1 = u W1^T + b1, h = relu(z1) */
    float *z1 = cur[2], *z2 = cur[3];
    for (size_t b = 0; b < B; b++) memcpy(z1 + b * H, b1, H * sizeof *z1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)H, (int)NI, 1.0f, u, (int)NI, W1, (int)NI, 1.0f, z1,
                (int)H);
    for (size_t i = 0; i < B * H; i++) h[i] = z1[i] > 0.0f ? z1[i] : 0.0f;
    /* z2 = h W2^T + b2 */
    for (size_t b = 0; b < B; b++) memcpy(z2 + b * N, b2, N * sizeof *z2);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)N, (int)H, 1.0f, h, (int)H, W2, (int)H, 1.0f, z2,
                (int)N);
    for (size_t b = 0; b < B; b++) {
        const float *mp = prev[0] + b * N, *zb = z2 + b * N;
        float *m = cur[0] + b * N, *o = out + b * N;
        for (size_t j = 0; j < N; j++) {
            float dm = ELM_A * tanhf(ELM_S * zb[j]);
            m[j] = km[j] * mp[j] + lam[j] * (1.0f - km[j]) * dm;
            o[j] = m[j];
        }
    }
}

static void elm_backward(const soma_model_args *a, const float *const *prev, const float *const *cur,
                         float *const *dstate, const float *ds, const float *dv, float *din, float *const *dprm,
                         size_t B, size_t N) {
    size_t D = n_branches(a->prm[P_BRANCHES][0]), H = n_hidden(a->prm[P_HIDDEN][0], N), NI = (D ? D : N) + N;
    size_t Db = D ? D : N;
    const float *lam = a->prm[P_LAMBDA], *dt = a->prm[P_DT], *taus = a->prm[P_TAU_S], *ltm = a->w[W_LOG_TAU_M];
    const float *W1 = a->w[W_W1], *W2 = a->w[W_W2];
    float *dW1 = a->dw[W_W1], *db1 = a->dw[W_B1], *dW2 = a->dw[W_W2], *db2 = a->dw[W_B2], *dltm = a->dw[W_LOG_TAU_M];
    float *dlam = dprm[P_LAMBDA], *dtaus = dprm[P_TAU_S];
    float *km = a->scratch, *ks = a->scratch + N;
    float *u = a->work, *h = u + B * NI, *dz1 = h + B * H, *du = dz1 + B * H, *dz2 = du + B * NI;
    const float *z1 = cur[2], *z2 = cur[3];
    int acc = a->din_accumulate;
    decays(a, N, km, ks);
    mlp_input(u, cur[1], prev[0], km, D, B, N);
    for (size_t i = 0; i < B * H; i++) h[i] = z1[i] > 0.0f ? z1[i] : 0.0f;
    /* Output stage: g = dL/dm_t, dz2 through Δm = A tanh(S z2). */
    float *gm = dstate[0];
    for (size_t b = 0; b < B; b++)
        for (size_t j = 0; j < N; j++) {
            size_t i = b * N + j;
            float g = gm[i] + ds[i] + (dv ? dv[i] : 0.0f);
            float th = tanhf(ELM_S * z2[i]), dm = ELM_A * th;
            float gd = g * lam[j] * (1.0f - km[j]);
            dz2[i] = gd * ELM_A * ELM_S * (1.0f - th * th);
            if (dlam) dlam[j] += g * (1.0f - km[j]) * dm;
            gm[i] = g; /* kept for the κ_m terms below */
        }
    if (dW2)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, (int)H, (int)B, 1.0f, dz2, (int)N, h, (int)H, 1.0f,
                    dW2, (int)H);
    if (db2)
        for (size_t i = 0; i < B * N; i++) db2[i % N] += dz2[i];
    /* dz1 = (dz2 W2) ⊙ [z1 > 0] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)H, (int)N, 1.0f, dz2, (int)N, W2, (int)H, 0.0f,
                dz1, (int)H);
    for (size_t i = 0; i < B * H; i++)
        if (!(z1[i] > 0.0f)) dz1[i] = 0.0f;
    if (dW1)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)H, (int)NI, (int)B, 1.0f, dz1, (int)H, u, (int)NI, 1.0f,
                    dW1, (int)NI);
    if (db1)
        for (size_t i = 0; i < B * H; i++) db1[i % H] += dz1[i];
    /* du = dz1 W1 */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)NI, (int)H, 1.0f, dz1, (int)H, W1, (int)NI, 0.0f,
                du, (int)NI);
    for (size_t b = 0; b < B; b++) {
        const float *mp = prev[0] + b * N, *sp = prev[1] + b * N, *zb = z2 + b * N, *dub = du + b * NI;
        float *g = gm + b * N, *gs = dstate[1] + b * N, *gi = din + b * N;
        for (size_t j = 0; j < N; j++) {
            /* memory: m_t = κ_m m_{t-1} + λ(1-κ_m)Δm, and u_m = κ_m m_{t-1} */
            float dm = ELM_A * tanhf(ELM_S * zb[j]), dum = dub[Db + j];
            float dkm = g[j] * (mp[j] - lam[j] * dm) + dum * mp[j];
            if (dltm) dltm[j] += dkm * km[j] * dt[j] * expf(-ltm[j]);
            g[j] = (g[j] + dum) * km[j];
            /* traces: s_t = κ_s s_{t-1} + in_t, read by u_b */
            float dsj = gs[j] + dub[D ? j * D / N : j];
            gi[j] = acc ? gi[j] + dsj : dsj; /* never 0 * (stale NaN) */
            if (dtaus) dtaus[j] += dsj * sp[j] * ks[j] * dt[j] / (taus[j] * taus[j]);
            gs[j] = dsj * ks[j];
        }
    }
    /* z1 and z2 do not carry to the next step. */
    memset(dstate[2], 0, B * H * sizeof(float));
    memset(dstate[3], 0, B * N * sizeof(float));
}

const soma_model soma__model_elm = {
    .name = "elm",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .n_state = 4,
    .state_names = state_names,
    .spiking = 1,
    .graded = 1,
    .rate_output = 0,
    .forward = elm_forward,
    .backward = elm_backward,
    .n_weights = 5,
    .weight_names = weight_names,
    .weight_shape = elm_weight_shape,
    .weight_init = elm_weight_init,
    .state_width = elm_state_width,
    .scratch_floats = elm_scratch_floats,
};
