/* l2mu.c — the LIF-based Legendre Memory Unit (L2MU): the LMU of Voelker,
 * Kajić and Eliasmith (NeurIPS 2019) with each of its blocks (the encoder u,
 * the memory m, the hidden state h) made a population of LIF neurons that
 * talk to each other with spikes.
 *
 * Source: Pietro, Leto, Urgese, Macii, Fra et al., "L2MU: a LIF-based
 * Legendre Memory Unit" (human-activity recognition on edge devices) and its
 * snnTorch code (class L2MU / L2MUCell: Leaky neurons spk_u, spk_m, spk_h).
 *
 * Legendre state space of order d (θ = the window length in steps):
 *   A_ij = (2i+1)·(−1 if i < j else (−1)^(i−j+1)),   B_i = (2i+1)·(−1)^i
 *   θ·dm/dt = A m + B u, discretised with dt = 1 step:
 *     zoh   (default): [[Ā, B̄], [0, 0]] = exp([[A/θ, B/θ], [0, 0]]), the
 *                      matrix exponential by scaling and squaring of its
 *                      Taylor series, in double;
 *     euler:           Ā = I + A/θ, B̄ = B/θ.
 *   Ā and B̄ are constants (not learned), computed from order, theta and
 *   discretizer.
 *
 * One step, per batch row, with in_t = W x_t + b the population's input
 * current (N wide, from the incoming dense projection), spikes
 * S(v) = H(v − 1) (threshold 1) and reset by subtraction R = H(v_{t−1} − 1)
 * (detached in backward, as in snnTorch and lif.c):
 *   hs = S(vh_{t−1}),  ms' = S(vm_{t−1})           (last step's spikes, N and d)
 *   u_t  = e_x·in_t + e_h·hs + e_m·ms'             (one scalar: d_u = 1)
 *   vu_t = beta_u·vu_{t−1} + u_t − R(vu_{t−1}),     us = S(vu_t)
 *   vm_t = beta_m·vm_{t−1} + Ā ms' + B̄ us − R(vm_{t−1}),  ms = S(vm_t)   (d neurons)
 *   vh_t = beta ⊙ vh_{t−1} + in_t + W_h hs + W_m ms − R(vh_{t−1})         (N neurons)
 *   s_t  = S(vh_t)                                  (the output: 0/1 spikes)
 * Backward uses the trainer's surrogate dS/dv at v − 1 for every spike that
 * carries a gradient: us, ms, the output, and last step's hs and ms' (whose
 * gradient is folded into dL/dvh_{t−1}, dL/dvm_{t−1} on the way out).
 *
 * Choices, and where soma adapts the model (plainly):
 *  - The input projection: the paper's W_x x feeds h and e_x x feeds u. In a
 *    soma chain the population receives in_t = W x + b (N wide) only, so in_t
 *    is h's input drive (W_x := W) and u reads e_x·in_t ([1][N]), a linear
 *    function of x restricted to W's row space (plus e_x·b) rather than a
 *    free e_x over x.
 *  - Memory size 1 (one u neuron), as in the LMU paper; the L2MU code allows
 *    several memories (memory_size) — not here.
 *  - Ā multiplies last step's memory *spikes* ms' (as the L2MU code does:
 *    curr_m = A(spk_memory) + B(spk_u)), not a real-valued memory; e_m also
 *    reads ms'. MODELS.md writes the LMU form m = Ā m + B̄ u; in the L2MU the
 *    memory LIF population is what integrates.
 *  - Thresholds are fixed at 1 (the L2MU code can learn them); beta, beta_u
 *    and beta_m may be learned. beta is per neuron of h; beta_u and beta_m
 *    are one value each (for the u neuron and the d memory neurons): the
 *    model reads entry 0 of their arrays, so learning them per neuron learns
 *    that one value (the other entries get no gradient).
 *  - theta is fixed (not learnable; the L2MU code's trainable_theta is off by
 *    default); order is rounded to the nearest integer.
 *  - Initialisation follows the L2MU code where it can: e_x, e_h LeCun
 *    uniform ±sqrt(3/N); e_m 0; W_h, W_m Xavier — uniform ±sqrt(6/(fan_in +
 *    fan_out)) here, where the code draws Xavier normal (same variance).
 *  - No biases inside the cell (the code's default bias=False); the input
 *    projection has its own.
 *  - The output is exact 0/1 spikes (graded = 0): the next projection may
 *    gather them, and spike-rate penalties count them.
 *
 * State: 0 = vh (N, the membrane read by membrane losses), 1 = vu (1),
 * 2 = vm (d). Spikes are recomputed from them in backward.
 * Own weights: e_x [1][N], e_h [1][N], e_m [1][d], W_h [N][N], W_m [N][d].
 *
 * Ā, B̄ depend only on parameters; they are cached at the start of a->work
 * (the trainer keeps that buffer per thread for its whole life), keyed by
 * (order, theta, discretizer), and recomputed on a miss — once per thread
 * for a chain with one L2MU layer or several with the same parameters. (A
 * chain mixing L2MU layers with different parameters, or with another cell
 * model that uses a->work, recomputes them on every call: correct, slower.)
 *
 * The paper's encoding-free input module (per channel Linear(1→P) + LIF,
 * then Linear + LIF) is two lif layers in front of the L2MU, e.g. for D = 6
 * sensor channels and P = 8:
 *   populations:
 *     in:   {model: input, size: 6}
 *     enc1: {model: lif, size: 48, beta: 0.9}      # 6 channels x 8
 *     enc2: {model: lif, size: 64, beta: 0.9}
 *     l2mu: {model: l2mu, size: 64, order: 16, theta: 40}
 *     out:  {model: ann, size: 6, activation: linear}
 *   projections: in->enc1, enc1->enc2, enc2->l2mu, l2mu->out, all dense
 * with raw sensor values as the sequence input. soma's projections are
 * dense, so in->enc1 is a full 6 → 48 matrix, not the block-diagonal
 * per-channel one (a superset: nothing keeps the off-channel entries 0).
 */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "models/model.h"

enum { P_ORDER, P_THETA, P_BETA, P_BETA_U, P_BETA_M, P_DISC };
enum { W_EX, W_EH, W_EM, W_WH, W_WM, N_W };
static const char *const disc_names[] = {"zoh", "euler", NULL};
static const soma_param_desc params[] = {
    {"order", 16.0f, 1.0f, 256.0f, "", 0, NULL, "order d of the Legendre memory (memory neurons)"},
    {"theta", 40.0f, 1.0f, 1e6f, "steps", 0, NULL, "length of the memory window"},
    {"beta", 0.9f, 0.0f, 1.0f, "", 1, NULL, "membrane decay of the hidden population h"},
    {"beta_u", 0.9f, 0.0f, 1.0f, "", 1, NULL, "membrane decay of the encoder neuron u"},
    {"beta_m", 0.9f, 0.0f, 1.0f, "", 1, NULL, "membrane decay of the memory population m"},
    {"discretizer", 0.0f, 0.0f, 1.0f, "", 0, disc_names, "zoh (matrix exponential) or euler"},
};
static const char *const state_names[] = {"v", "v_u", "v_m"};
static const char *const weight_names[] = {"e_x", "e_h", "e_m", "W_h", "W_m"};

#define TH 1.0f /* threshold of every block */

static size_t order_of(const float *prm_order) { return (size_t)(prm_order[0] + 0.5f); }

/* ------------------------------------------------------------ discretisation */

/* out = exp(M) for an n×n row-major M: scale by 2^-s so that the 1-norm is
 * at most 1/2, sum the Taylor series to double precision, square s times.
 * ws holds 3*n*n doubles. */
static void expm(double *out, const double *M, size_t n, double *ws) {
    double *X = ws, *term = ws + n * n, *tmp = ws + 2 * n * n;
    double norm = 0.0;
    for (size_t j = 0; j < n; j++) {
        double c = 0.0;
        for (size_t i = 0; i < n; i++) c += fabs(M[i * n + j]);
        norm = c > norm ? c : norm;
    }
    int s = 0;
    while (norm > 0.5 && s < 1000) norm *= 0.5, s++;
    double scale = ldexp(1.0, -s);
    for (size_t i = 0; i < n * n; i++) X[i] = M[i] * scale;
    memset(out, 0, n * n * sizeof *out);
    memset(term, 0, n * n * sizeof *term);
    for (size_t i = 0; i < n; i++) out[i * n + i] = term[i * n + i] = 1.0;
    /* ||X|| <= 1/2: the k-th term is below 2^-k/k!, under 1e-17 by k = 16. */
    for (int k = 1; k <= 24; k++) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0 / k, term, (int)n, X,
                    (int)n, 0.0, tmp, (int)n);
        double tmax = 0.0;
        for (size_t i = 0; i < n * n; i++) {
            term[i] = tmp[i];
            out[i] += tmp[i];
            tmax = fabs(tmp[i]) > tmax ? fabs(tmp[i]) : tmax;
        }
        if (tmax < 1e-18) break;
    }
    for (int q = 0; q < s; q++) {
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0, out, (int)n, out, (int)n,
                    0.0, tmp, (int)n);
        memcpy(out, tmp, n * n * sizeof *out);
    }
}

void soma__l2mu_discretize(double *abar, double *bbar, size_t d, double theta, int euler, double *ws) {
    size_t n = d + 1;
    double *M = ws, *E = ws + n * n, *rest = ws + 2 * n * n;
    memset(M, 0, n * n * sizeof *M);
    for (size_t i = 0; i < d; i++) {
        double r = (double)(2 * i + 1);
        for (size_t j = 0; j < d; j++)
            M[i * n + j] = r * (i < j ? -1.0 : ((i - j + 1) % 2 ? -1.0 : 1.0)) / theta;
        M[i * n + d] = r * (i % 2 ? -1.0 : 1.0) / theta;
    }
    if (euler) {
        for (size_t i = 0; i < d; i++) {
            for (size_t j = 0; j < d; j++) abar[i * d + j] = M[i * n + j] + (i == j ? 1.0 : 0.0);
            bbar[i] = M[i * n + d];
        }
        return;
    }
    expm(E, M, n, rest);
    for (size_t i = 0; i < d; i++) {
        for (size_t j = 0; j < d; j++) abar[i * d + j] = E[i * n + j];
        bbar[i] = E[i * n + d];
    }
}

/* a->work layout: [cache: key (4), Ā (d*d), B̄ (d), padded to 16][rows].
 * The rows part holds the per-row vectors, or on a cache miss first the
 * discretisation's doubles. */
static size_t cache_floats(size_t d) { return (4 + d * d + d + 15) / 16 * 16; }
static size_t row_floats(size_t N, size_t d) { return 3 * N + 5 * d; }
static size_t miss_floats(size_t d) { return 2 * (d * d + d + 5 * (d + 1) * (d + 1)); }

static size_t l2mu_scratch_floats(const float *prm, size_t N) {
    size_t d = order_of(&prm[P_ORDER]), r = row_floats(N, d), m = miss_floats(d);
    return cache_floats(d) + (r > m ? r : m);
}

/* Ā [d][d] followed by B̄ [d] for this call's parameters, from the cache. */
static const float *discrete_ab(const soma_model_args *a, size_t d) {
    float *w = a->work;
    uint32_t tag = 0x4C324D55u; /* "L2MU" */
    float key[4];
    memcpy(&key[0], &tag, sizeof tag);
    key[1] = (float)d, key[2] = a->prm[P_THETA][0], key[3] = a->prm[P_DISC][0];
    if (memcmp(w, key, sizeof key) != 0) {
        double *ad = (double *)(void *)(w + cache_floats(d)), *bd = ad + d * d;
        soma__l2mu_discretize(ad, bd, d, key[2], key[3] != 0.0f, bd + d);
        for (size_t i = 0; i < d * d; i++) w[4 + i] = (float)ad[i];
        for (size_t i = 0; i < d; i++) w[4 + d * d + i] = (float)bd[i];
        memcpy(w, key, sizeof key);
    }
    return w + 4;
}

/* ------------------------------------------------------------ forward */

static void l2mu_forward(const soma_model_args *a, const float *const *prev, float *const *cur, float *s,
                         const float *in, size_t B, size_t N) {
    size_t d = order_of(a->prm[P_ORDER]);
    const float *restrict Ab = discrete_ab(a, d), *restrict Bb = Ab + d * d;
    const float *restrict ex = a->w[W_EX], *restrict eh = a->w[W_EH], *restrict em = a->w[W_EM];
    const float *restrict beta = a->prm[P_BETA];
    const float bu = a->prm[P_BETA_U][0], bm = a->prm[P_BETA_M][0];
    float *restrict hs = a->work + cache_floats(d), *restrict msp = hs + N, *restrict ms = msp + d;
    for (size_t b = 0; b < B; b++) {
        const float *restrict vhp = prev[0] + b * N, *restrict vmp = prev[2] + b * d, *restrict x = in + b * N;
        const float vup = prev[1][b];
        float *restrict vh = cur[0] + b * N, *restrict vm = cur[2] + b * d, *restrict o = s + b * N;
        for (size_t j = 0; j < N; j++) hs[j] = vhp[j] > TH ? 1.0f : 0.0f;
        for (size_t i = 0; i < d; i++) msp[i] = vmp[i] > TH ? 1.0f : 0.0f;
        float u = 0.0f;
        for (size_t j = 0; j < N; j++) u += ex[j] * x[j] + eh[j] * hs[j];
        for (size_t i = 0; i < d; i++) u += em[i] * msp[i];
        float vu = bu * vup + u - (vup > TH ? TH : 0.0f), us = vu > TH ? 1.0f : 0.0f;
        cur[1][b] = vu;
        for (size_t i = 0; i < d; i++) vm[i] = bm * vmp[i] + Bb[i] * us - (vmp[i] > TH ? TH : 0.0f);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)d, (int)d, 1.0f, Ab, (int)d, msp, 1, 1.0f, vm, 1);
        for (size_t i = 0; i < d; i++) ms[i] = vm[i] > TH ? 1.0f : 0.0f;
        for (size_t j = 0; j < N; j++) vh[j] = beta[j] * vhp[j] + x[j] - (vhp[j] > TH ? TH : 0.0f);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)N, (int)N, 1.0f, a->w[W_WH], (int)N, hs, 1, 1.0f, vh, 1);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)N, (int)d, 1.0f, a->w[W_WM], (int)d, ms, 1, 1.0f, vh, 1);
        for (size_t j = 0; j < N; j++) o[j] = vh[j] > TH ? 1.0f : 0.0f;
    }
}

/* ------------------------------------------------------------ backward
 *
 * Per row, with σ(v) the surrogate dS/dv at v − 1, g* the incoming dL/dstate_t:
 *   dvh  = gvh + dv + ds ⊙ σ(vh)
 *   dvm  = gvm + (W_m^T dvh) ⊙ σ(vm)
 *   dvu  = gvu + (B̄·dvm) σ(vu)
 *   din  = dvh + dvu e_x
 *   dhs  = W_h^T dvh + dvu e_h,   dms' = Ā^T dvm + dvu e_m
 *   out: gvh = beta ⊙ dvh + dhs ⊙ σ(vh_{t−1}),  gvm = beta_m dvm + dms' ⊙ σ(vm_{t−1}),  gvu = beta_u dvu
 *   de_x += dvu in, de_h += dvu hs, de_m += dvu ms', dW_h += dvh hs^T, dW_m += dvh ms^T
 *   dbeta += dvh ⊙ vh_{t−1}, dbeta_u += dvu vu_{t−1}, dbeta_m += dvm·vm_{t−1}
 */
static void l2mu_backward(const soma_model_args *a, const float *const *prev, const float *const *cur,
                          float *const *dstate, const float *ds, const float *dv, float *din, float *const *dprm,
                          size_t B, size_t N) {
    size_t d = order_of(a->prm[P_ORDER]);
    const float *restrict Ab = discrete_ab(a, d), *restrict Bb = Ab + d * d;
    const float *restrict ex = a->w[W_EX], *restrict eh = a->w[W_EH], *restrict em = a->w[W_EM];
    const float *restrict beta = a->prm[P_BETA];
    const float bu = a->prm[P_BETA_U][0], bm = a->prm[P_BETA_M][0];
    const int sur = a->surrogate;
    const float sp = a->surrogate_param;
    const int acc = a->din_accumulate;
    float *restrict hs = a->work + cache_floats(d), *restrict msp = hs + N, *restrict ms = msp + d;
    float *restrict dvh = ms + d, *restrict dhs = dvh + N, *restrict dvm = dhs + N, *restrict dmsp = dvm + d,
                    *restrict dms = dmsp + d;
    float *dbeta = dprm[P_BETA], *dbu = dprm[P_BETA_U], *dbm = dprm[P_BETA_M];
    for (size_t b = 0; b < B; b++) {
        const float *restrict vhp = prev[0] + b * N, *restrict vmp = prev[2] + b * d;
        const float *restrict vh = cur[0] + b * N, *restrict vm = cur[2] + b * d;
        const float vup = prev[1][b], vu = cur[1][b];
        const float *restrict gs = ds + b * N, *restrict x = a->in + b * N;
        float *restrict gvh = dstate[0] + b * N, *restrict gvm = dstate[2] + b * d, *restrict gi = din + b * N;
        for (size_t j = 0; j < N; j++) hs[j] = vhp[j] > TH ? 1.0f : 0.0f;
        for (size_t i = 0; i < d; i++) msp[i] = vmp[i] > TH ? 1.0f : 0.0f;
        for (size_t i = 0; i < d; i++) ms[i] = vm[i] > TH ? 1.0f : 0.0f;

        for (size_t j = 0; j < N; j++)
            dvh[j] = gvh[j] + (dv ? dv[b * N + j] : 0.0f) + gs[j] * soma__surrogate(sur, sp, vh[j] - TH);
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)N, (int)d, 1.0f, a->w[W_WM], (int)d, dvh, 1, 0.0f, dms, 1);
        float dus = 0.0f;
        for (size_t i = 0; i < d; i++) {
            dvm[i] = gvm[i] + dms[i] * soma__surrogate(sur, sp, vm[i] - TH);
            dus += Bb[i] * dvm[i];
        }
        float dvu = dstate[1][b] + dus * soma__surrogate(sur, sp, vu - TH);
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)N, (int)N, 1.0f, a->w[W_WH], (int)N, dvh, 1, 0.0f, dhs, 1);
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)d, (int)d, 1.0f, Ab, (int)d, dvm, 1, 0.0f, dmsp, 1);
        if (acc)
            for (size_t j = 0; j < N; j++) gi[j] += dvh[j] + dvu * ex[j];
        else
            for (size_t j = 0; j < N; j++) gi[j] = dvh[j] + dvu * ex[j];

        if (dbeta)
            for (size_t j = 0; j < N; j++) dbeta[j] += dvh[j] * vhp[j];
        if (dbu) dbu[0] += dvu * vup;
        if (dbm) {
            float g = 0.0f;
            for (size_t i = 0; i < d; i++) g += dvm[i] * vmp[i];
            dbm[0] += g;
        }
        if (a->dw[W_EX])
            for (size_t j = 0; j < N; j++) a->dw[W_EX][j] += dvu * x[j];
        if (a->dw[W_EH])
            for (size_t j = 0; j < N; j++) a->dw[W_EH][j] += dvu * hs[j];
        if (a->dw[W_EM])
            for (size_t i = 0; i < d; i++) a->dw[W_EM][i] += dvu * msp[i];
        if (a->dw[W_WH]) cblas_sger(CblasRowMajor, (int)N, (int)N, 1.0f, dvh, 1, hs, 1, a->dw[W_WH], (int)N);
        if (a->dw[W_WM]) cblas_sger(CblasRowMajor, (int)N, (int)d, 1.0f, dvh, 1, ms, 1, a->dw[W_WM], (int)d);

        for (size_t j = 0; j < N; j++)
            gvh[j] = beta[j] * dvh[j] + (dhs[j] + dvu * eh[j]) * soma__surrogate(sur, sp, vhp[j] - TH);
        for (size_t i = 0; i < d; i++)
            gvm[i] = bm * dvm[i] + (dmsp[i] + dvu * em[i]) * soma__surrogate(sur, sp, vmp[i] - TH);
        dstate[1][b] = bu * dvu;
    }
}

/* ------------------------------------------------------------ shapes */

static void l2mu_weight_shape(const float *prm, size_t N, size_t k, size_t *rows, size_t *cols) {
    size_t d = order_of(&prm[P_ORDER]);
    *rows = k == W_WH || k == W_WM ? N : 1;
    *cols = k == W_EM || k == W_WM ? d : N;
}

static void l2mu_weight_init(const float *prm, size_t N, size_t k, float *w, soma_rng *rng) {
    size_t r, c;
    l2mu_weight_shape(prm, N, k, &r, &c);
    float bound = 0.0f; /* e_m starts at 0, as in the L2MU code */
    if (k == W_EX || k == W_EH) bound = sqrtf(3.0f / (float)N);             /* LeCun uniform */
    else if (k == W_WH || k == W_WM) bound = sqrtf(6.0f / (float)(c + N)); /* Xavier uniform */
    for (size_t i = 0; i < r * c; i++) w[i] = bound * (2.0f * soma_rng_uniform(rng) - 1.0f);
}

static size_t l2mu_state_width(const float *prm, size_t N, size_t k) {
    return k == 0 ? N : k == 1 ? 1 : order_of(&prm[P_ORDER]);
}

const soma_model soma__model_l2mu = {
    .name = "l2mu",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .n_state = 3,
    .state_names = state_names,
    .spiking = 1,
    .graded = 0,
    .rate_output = 0,
    .forward = l2mu_forward,
    .backward = l2mu_backward,
    .n_weights = N_W,
    .weight_names = weight_names,
    .weight_shape = l2mu_weight_shape,
    .weight_init = l2mu_weight_init,
    .state_width = l2mu_state_width,
    .scratch_floats = l2mu_scratch_floats,
};
