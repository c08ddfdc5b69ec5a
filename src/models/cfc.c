/* cfc.c — the closed-form continuous-time cell (CfC): a recurrent cell whose
 * update is the closed-form approximation of a liquid time-constant ODE,
 * dx/dt = -[1/tau + f(x, I)] x + f(x, I) A, so one step needs no ODE solver.
 *
 * Source: R. Hasani, M. Lechner, A. Amini, L. Liebenwein, A. Ray,
 * M. Tschaikowski, G. Teschl, D. Rus, "Closed-form continuous-time neural
 * networks", Nature Machine Intelligence 4, 992-1003 (2022); reference code:
 * the ncps package, ncps/torch/cfc_cell.py (CfCCell), whose equations are
 * followed here where it and the paper's text differ.
 *
 * One step, for a population of N cells fed in_t = W x_t + b by the incoming
 * dense projection (all products are row vector times transposed matrix, the
 * torch.nn.Linear convention: weights are [out][in]):
 *
 *   z    = lecun_tanh(in_t + U h_{t-1} + b_u),  lecun_tanh(x) = 1.7159 tanh(0.666 x)
 *   ff1  = tanh(W1 z + b1)      ff2 = tanh(W2 z + b2)
 *   ta   = Wa z + ba            tb  = Wb z + bb
 *   g    = sigmoid(ta * dt + tb)
 *   mode default:  h = ff1 * (1 - g) + g * ff2
 *   mode no_gate:  h = ff1 + g * ff2
 *   mode minimal:  f = W1 z + b1 (no tanh, as ncps), e = exp(-dt (|w_tau| + |f|)),
 *                  h = -A e f + A = A (1 - e f)
 *   output s_t = h_t
 *
 * Mixed memory (mixed_memory = yes; ncps' CfC(..., mixed_memory=True), after
 * Lechner & Hasani, "Learning long-term dependencies in irregularly-sampled
 * time series", 2020): an LSTM cell runs first and hands the CfC its
 * h_{t-1}, so the cell carries a second state c with an additive path
 * through time (the plain CfC's gradient passes tanh and lecun_tanh at every
 * step and vanishes over long delays). As ncps' LSTMCell (ncps/torch/cfc.py):
 *
 *   p   = Wl_in in_t + Wl_h h_{t-1} + b_l          (4N: the blocks p_g, p_i, p_f, p_o)
 *   gt  = tanh(p_g)   ig = sigmoid(p_i)   fg = sigmoid(p_f + 1)   og = sigmoid(p_o)
 *   c_t = fg c_{t-1} + ig gt      hl = og tanh(c_t)
 *   h_t = the CfC step above with hl in place of h_{t-1}
 *
 * Parameters: mode (default | no_gate | minimal), dt (the elapsed time
 * Delta t of every step, ncps' `timespans`, default 1), A and w_tau (minimal
 * mode only; learnable per layer or per neuron, start 1 and 0), mixed_memory
 * (no | yes, default no).
 * Weights (the population's own tensors, "<pop>.<name>"): U, W1, W2, Wa, Wb
 * [N][N] and b_u, b1, b2, ba, bb [1][N]; with mixed memory lstm_w [4N][2N]
 * (columns 0..N-1 are Wl_in, ncps' input_map.weight; columns N..2N-1 are
 * Wl_h, its recurrent_map.weight) and lstm_b [1][4N] (input_map.bias).
 *
 * Where soma adapts the model (said plainly):
 * - ncps' backbone is one Linear over the concatenation [x_t, h_{t-1}] with
 *   backbone_units outputs. Here the input half of that Linear is the
 *   population's incoming projection (its bias adds to b_u, which is kept so
 *   the recurrent half matches ncps' Linear when the projection has none),
 *   and the backbone width equals N. One backbone layer, no dropout, no
 *   sparsity mask (no wiring), the default lecun_tanh activation only.
 * - Initialisation as ncps: the matrices U, W1, W2, Wa, Wb with
 *   xavier_uniform (U(-sqrt(6/(fan_in+fan_out)), +...) = U(-sqrt(3/N), +...)
 *   for N x N; U is initialised as its own matrix, since its input half is
 *   the projection), the biases with torch's Linear default U(-1/sqrt(N),
 *   1/sqrt(N)). The scale matters: with torch's smaller default for the
 *   matrices, gradients through h -> z -> heads -> h vanish within tens of
 *   steps and the long-memory example does not train. ncps' xavier loop
 *   also overwrites A and w_tau (they are [1][N] tensors there); soma starts
 *   them at their set values, 1 and 0.
 * - ncps calls the minimal mode "pure". There ff1 is the raw linear head (no
 *   tanh) and ff2, time_a, time_b do not exist: in minimal mode the tensors
 *   W2, Wa, Wb, b2, ba, bb are unused 1 x 1 placeholders holding 0 (their
 *   gradient is 0, so no optimizer moves them; 0 x 0 tensors would share a
 *   data pointer with their neighbour, which the model-file loader refuses
 *   as a tensor given twice) and the state ff2 has width 0.
 * - |x| is differentiated as torch does: sign(x), 0 at x = 0. So w_tau
 *   learned from exactly 0 keeps a zero gradient (as in torch); give it a
 *   nonzero start to learn it.
 * - dt is one value per population (ncps takes a per-sample timespan); it
 *   is not learnable (in default mode it only rescales Wa, ba).
 * - Mixed memory follows ncps' own LSTMCell, not torch.nn.LSTMCell: the gate
 *   blocks are in ncps' order (cell input g, input gate i, forget gate f,
 *   output gate o; torch's is i, f, g, o), there is one bias (torch's b_ih +
 *   b_hh is the same function with one redundant parameter), and the forget
 *   gate gets a constant +1 inside the sigmoid as ncps adds it (so it starts
 *   near sigmoid(1) = 0.73 and c keeps its content; stored lstm_b is ncps'
 *   bias as is). Initialisation as ncps: Wl_in xavier_uniform
 *   (U(+-sqrt(6/(N + 4N)))), Wl_h orthogonal (the columns of the [4N][N]
 *   block orthonormal: Gram-Schmidt on a Gaussian matrix, R's diagonal
 *   positive as torch's orthogonal_), lstm_b U(-0.1, 0.1). The LSTM's input
 *   is ncps' raw x_t; here it is in_t, the projected input (N wide), as for
 *   the CfC. Wl_in and Wl_h are one tensor because a model has at most 12
 *   (SOMA_MAX_WEIGHTS). With mixed_memory = no, lstm_w and lstm_b are unused
 *   1 x 1 zeros and the states c, h_lstm, lstm_gates have width 0: the cell
 *   computes exactly what it computed before the option existed (but a
 *   model.soma saved before has two tensors fewer and does not load).
 *   Measured on the recall data (64 units, 3 epochs): with ncps' +1 the
 *   forget gate (about 0.73) erases c within tens of steps and the cell
 *   stays at chance even for a 26-step delay, where the plain CfC learns;
 *   an offset of +5 learns that delay in one epoch, but not 196 steps.
 *   Parameter `chrono` = T_max > 2 replaces ncps' gate biases by the chrono
 *   initialisation (Tallec & Ollivier 2018): forget-gate bias ln U(1,
 *   T_max - 1) per unit and the input-gate bias its negative, so the cell
 *   starts with memory times spread over 1..T_max steps (ncps' +1 offset
 *   still applies on top).
 *
 * State: 0 = h (the cell's output and its "membrane" for losses and
 * readouts), 1 = z, 2 = ff1 (the raw f in minimal mode), 3 = ff2, 4 = g (the
 * decay e in minimal mode), and with mixed memory 5 = c, 6 = h_lstm (hl),
 * 7 = lstm_gates ([B][4N]: gt, ig, fg, og). Only h and c carry to the next
 * step; the others are the step's intermediates, kept on the trainer's tape
 * so backward needs no recomputation (tanh(c_t) is recomputed).
 *
 * Backward (gh = dL/dh_t, from step t+1, the loss on h and on s):
 *   default:  dff1 = gh (1 - g), dff2 = gh g, dg = gh (ff2 - ff1)
 *   no_gate:  dff1 = gh,         dff2 = gh g, dg = gh ff2
 *   dq = dg g (1 - g); dta = dq dt; dtb = dq; dp1 = dff1 (1 - ff1^2); dp2 = dff2 (1 - ff2^2)
 *   minimal:  dp1 = -gh A e (1 - dt |f|); dA += gh (1 - e f);
 *             dw_tau += gh A e f dt sign(w_tau)
 *   dz = dp1 W1 + dp2 W2 + dta Wa + dtb Wb;   dW1 += dp1^T z, db1 += dp1, ...
 *   du = dz * 0.666 (1.7159 - z^2 / 1.7159)   (lecun_tanh' from its output)
 *   din = du;  dU += du^T h_{t-1};  db_u += du;  dh_{t-1} = du U
 * With mixed memory h_{t-1} above is hl, and ghl = du U goes on through the
 * LSTM (gc = dL/dc_t from step t+1):
 *   dc = gc + ghl og (1 - tanh(c_t)^2);  dc_{t-1} = dc fg
 *   dp_g = dc ig (1 - gt^2); dp_i = dc gt ig (1 - ig); dp_f = dc c_{t-1} fg (1 - fg);
 *   dp_o = ghl tanh(c_t) og (1 - og)
 *   din += dp Wl_in;  dh_{t-1} = dp Wl_h;  dlstm_w += dp^T [in_t, h_{t-1}];  dlstm_b += dp
 *
 * A call gets few batch rows (the trainer passes 2), so the products are
 * matrix-vector products (sgemv) and rank-1 updates (sger) per row: GEMM's
 * packing of the weights cost more than its arithmetic here. The four heads
 * are one product when W1, W2, Wa, Wb lie back to back in memory (the net
 * lays tensors out in order, 64-byte aligned, so whenever N*N is a multiple
 * of 16); otherwise one product per head. */
#include <cblas.h>
#include <math.h>
#include <string.h>
#include "models/model.h"

enum { P_MODE, P_DT, P_A, P_WTAU, P_MIX, P_CHRONO };
enum { MODE_DEFAULT, MODE_NO_GATE, MODE_MINIMAL };
enum { W_U, W_1, W_2, W_A, W_B, B_U, B_1, B_2, B_A, B_B, W_L, B_L, N_WEIGHTS };
enum { S_H, S_Z, S_FF1, S_FF2, S_G, S_C, S_HL, S_LG, N_STATE };

static const char *const mode_names[] = {"default", "no_gate", "minimal", NULL};
static const char *const mix_names[] = {"no", "yes", NULL};
static const soma_param_desc params[] = {
    {"mode", 0.0f, 0.0f, 2.0f, "", 0, mode_names, "default (gated), no_gate (ff1 + g ff2) or minimal (ncps' pure)"},
    {"dt", 1.0f, 1e-6f, 1e3f, "", 0, NULL, "elapsed time Delta t of one step"},
    {"A", 1.0f, -1e3f, 1e3f, "", 1, NULL, "minimal mode: the ODE's bias A (learnable)"},
    {"w_tau", 0.0f, -1e3f, 1e3f, "", 1, NULL, "minimal mode: decay rate |w_tau| (learnable; from 0 its gradient is 0)"},
    {"mixed_memory", 0.0f, 0.0f, 1.0f, "", 0, mix_names, "yes: an LSTM cell feeds the CfC (ncps' mixed_memory, for long-term memory)"},
    {"chrono", 0.0f, 0.0f, 1e6f, "", 0, NULL, "mixed memory: 0 = ncps' gate biases; T_max > 1 = chrono initialisation over 1..T_max steps"},
};
static const char *const state_names[] = {"h", "z", "ff1", "ff2", "gate", "c", "h_lstm", "lstm_gates"};
static const char *const weight_names[] = {"U", "W1", "W2", "Wa", "Wb", "b_u", "b1", "b2", "ba", "bb", "lstm_w", "lstm_b"};

#define LC_A 1.7159f /* lecun_tanh(x) = LC_A tanh(LC_B x) */
#define LC_B 0.666f

static int mode_of(const float *prm) { return (int)prm[P_MODE]; }
static int mixed_of(const float *prm) { return prm[P_MIX] != 0.0f; }

/* Heads in use: ff1 only in minimal mode, else ff1, ff2, ta, tb. */
static size_t heads(int mode) { return mode == MODE_MINIMAL ? 1 : 4; }

static void cfc_weight_shape(const float *prm, size_t N, size_t k, size_t *rows, size_t *cols) {
    if (k == W_L || k == B_L) { /* the LSTM of mixed memory, else an unused placeholder */
        int mix = mixed_of(prm);
        *rows = mix && k == W_L ? 4 * N : 1;
        *cols = !mix ? 1 : k == W_L ? 2 * N : 4 * N;
        return;
    }
    int used = k == W_U || k == W_1 || k == B_U || k == B_1 || mode_of(prm) != MODE_MINIMAL;
    *rows = !used || k >= B_U ? 1 : N;
    *cols = used ? N : 1;
}

/* A standard normal draw (Box-Muller; 1 - u lies in (0, 1]). */
static float normal(soma_rng *rng) {
    float u = 1.0f - soma_rng_uniform(rng), v = soma_rng_uniform(rng);
    return sqrtf(-2.0f * logf(u)) * cosf(6.28318530718f * v);
}

/* lstm_w as ncps: the input half xavier_uniform, the recurrent half [4N][N]
 * (row stride 2N) orthogonal, by modified Gram-Schmidt on the columns of a
 * Gaussian matrix (well conditioned, so float storage with double sums keeps
 * the columns orthonormal to about 1e-6). */
static void lstm_w_init(size_t N, float *w, soma_rng *rng) {
    size_t R = 4 * N, ld = 2 * N;
    float bound = sqrtf(6.0f / (float)(N + R));
    for (size_t r = 0; r < R; r++)
        for (size_t i = 0; i < N; i++) w[r * ld + i] = bound * (2.0f * soma_rng_uniform(rng) - 1.0f);
    float *q = w + N;
    for (size_t r = 0; r < R; r++)
        for (size_t j = 0; j < N; j++) q[r * ld + j] = normal(rng);
    for (size_t j = 0; j < N; j++) {
        for (size_t k = 0; k < j; k++) {
            double d = 0;
            for (size_t r = 0; r < R; r++) d += (double)q[r * ld + k] * q[r * ld + j];
            for (size_t r = 0; r < R; r++) q[r * ld + j] -= (float)d * q[r * ld + k];
        }
        double s = 0;
        for (size_t r = 0; r < R; r++) s += (double)q[r * ld + j] * q[r * ld + j];
        float inv = (float)(1.0 / sqrt(s));
        for (size_t r = 0; r < R; r++) q[r * ld + j] *= inv;
    }
}

static void cfc_weight_init(const float *prm, size_t N, size_t k, float *w, soma_rng *rng) {
    size_t r, c;
    cfc_weight_shape(prm, N, k, &r, &c);
    if (k == W_L || k == B_L) {
        if (!mixed_of(prm)) w[0] = 0.0f; /* an unused placeholder */
        else if (k == W_L) lstm_w_init(N, w, rng);
        else {
            for (size_t i = 0; i < c; i++) w[i] = 0.1f * (2.0f * soma_rng_uniform(rng) - 1.0f);
            float tmax = prm[P_CHRONO];
            if (tmax > 2.0f) /* chrono: forget bias ln U(1, T_max - 1), input bias its negative */
                for (size_t j = 0; j < N; j++) {
                    float bf = logf(1.0f + (tmax - 2.0f) * soma_rng_uniform(rng));
                    w[2 * N + j] = bf;
                    w[N + j] = -bf;
                }
        }
        return;
    }
    /* ncps: xavier_uniform for the matrices, torch's Linear default for biases. */
    float bound = k < B_U ? sqrtf(6.0f / (float)(r + c)) : 1.0f / sqrtf((float)N);
    if (k != W_U && k != W_1 && k != B_U && k != B_1 && mode_of(prm) == MODE_MINIMAL) {
        w[0] = 0.0f; /* an unused placeholder */
        return;
    }
    for (size_t i = 0; i < r * c; i++) w[i] = bound * (2.0f * soma_rng_uniform(rng) - 1.0f);
}

static size_t cfc_state_width(const float *prm, size_t N, size_t k) {
    if (k >= S_C) return !mixed_of(prm) ? 0 : k == S_LG ? 4 * N : N;
    return k == S_FF2 && mode_of(prm) == MODE_MINIMAL ? 0 : N;
}

/* a->work per row: 4N for the heads (pre-activations forward, their
 * gradients backward, [B][4N]; the LSTM's gates use it first), N for dz. */
static size_t cfc_scratch_floats(const float *prm, size_t N) {
    (void)prm;
    return 5 * N;
}

/* The four head matrices (or their gradients) are one [4N][N] block. */
static int heads_contiguous(const float *const *w, size_t N) {
    for (int k = W_1; k < W_B; k++)
        if (!w[k] || !w[k + 1] || w[k + 1] != w[k] + N * N) return 0;
    return 1;
}

/* dst[j] += sum over the B rows of src (row stride ld). */
static void add_colsum(float *restrict dst, const float *restrict src, size_t B, size_t N, size_t ld) {
    for (size_t b = 0; b < B; b++)
        for (size_t j = 0; j < N; j++) dst[j] += src[b * ld + j];
}

static float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

/* Mixed memory, forward: from in_t, h_{t-1}, c_{t-1} the LSTM's gates, c_t
 * and hl (written to cur); P ([B][4N]) is scratch for the pre-activations. */
static void lstm_forward(const soma_model_args *a, const float *const *prev, float *const *cur, const float *in,
                         float *restrict P, size_t B, size_t N) {
    const int iN = (int)N, R = (int)(4 * N), ld = (int)(2 * N);
    const float *Wl = a->w[W_L], *bl = a->w[B_L];
    for (size_t b = 0; b < B; b++) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, R, iN, 1.0f, Wl, ld, in + b * N, 1, 0.0f, P + b * 4 * N, 1);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, R, iN, 1.0f, Wl + N, ld, prev[S_H] + b * N, 1, 1.0f, P + b * 4 * N, 1);
    }
    const float *restrict c0 = prev[S_C];
    float *restrict c = cur[S_C], *restrict hl = cur[S_HL];
    for (size_t b = 0; b < B; b++) {
        const float *p = P + b * 4 * N;
        float *restrict G = cur[S_LG] + b * 4 * N;
        for (size_t j = 0; j < N; j++) {
            size_t i = b * N + j;
            float gt = tanhf(p[j] + bl[j]), ig = sigmoid(p[N + j] + bl[N + j]);
            float fg = sigmoid(p[2 * N + j] + bl[2 * N + j] + 1.0f), og = sigmoid(p[3 * N + j] + bl[3 * N + j]);
            G[j] = gt, G[N + j] = ig, G[2 * N + j] = fg, G[3 * N + j] = og;
            c[i] = fg * c0[i] + ig * gt;
            hl[i] = og * tanhf(c[i]);
        }
    }
}

/* Mixed memory, backward: P ([B][4N]) holds ghl = dL/dhl in each row's
 * first N floats on entry and the pre-activations' gradients on exit.
 * dstate[S_C] goes from dL/dc_t to dL/dc_{t-1}; din gets the input path
 * added; gh receives dL/dh_{t-1}. */
static void lstm_backward(const soma_model_args *a, const float *const *prev, const float *const *cur,
                          float *const *dstate, float *restrict P, float *din, float *gh, size_t B, size_t N) {
    const int iN = (int)N, R = (int)(4 * N), ld = (int)(2 * N);
    const float *restrict c0 = prev[S_C], *restrict c = cur[S_C];
    float *restrict gc = dstate[S_C];
    for (size_t b = 0; b < B; b++) {
        float *p = P + b * 4 * N;
        const float *G = cur[S_LG] + b * 4 * N;
        for (size_t j = 0; j < N; j++) { /* p[j] is read (ghl) before it is written (dp_g) */
            size_t i = b * N + j;
            float ghl = p[j], gt = G[j], ig = G[N + j], fg = G[2 * N + j], og = G[3 * N + j];
            float tc = tanhf(c[i]);
            float dc = gc[i] + ghl * og * (1.0f - tc * tc);
            p[j] = dc * ig * (1.0f - gt * gt);
            p[N + j] = dc * gt * ig * (1.0f - ig);
            p[2 * N + j] = dc * c0[i] * fg * (1.0f - fg);
            p[3 * N + j] = ghl * tc * og * (1.0f - og);
            gc[i] = dc * fg;
        }
    }
    if (a->dw[B_L]) add_colsum(a->dw[B_L], P, B, 4 * N, 4 * N);
    for (size_t b = 0; b < B; b++) {
        const float *p = P + b * 4 * N;
        if (a->dw[W_L]) {
            cblas_sger(CblasRowMajor, R, iN, 1.0f, p, 1, a->in + b * N, 1, a->dw[W_L], ld);
            cblas_sger(CblasRowMajor, R, iN, 1.0f, p, 1, prev[S_H] + b * N, 1, a->dw[W_L] + N, ld);
        }
        cblas_sgemv(CblasRowMajor, CblasTrans, R, iN, 1.0f, a->w[W_L], ld, p, 1, 1.0f, din + b * N, 1);
        cblas_sgemv(CblasRowMajor, CblasTrans, R, iN, 1.0f, a->w[W_L] + N, ld, p, 1, 0.0f, gh + b * N, 1);
    }
}

static void cfc_forward(const soma_model_args *a, const float *const *prev, float *const *cur, float *s,
                        const float *in, size_t B, size_t N) {
    int mode = (int)a->prm[P_MODE][0];
    size_t nh = heads(mode), ld = 4 * N;
    const float *dt = a->prm[P_DT];
    float *restrict z = cur[S_Z], *restrict P = a->work; /* P: [B][4N] head pre-activations */
    const int iN = (int)N;
    /* The CfC's h_{t-1}: with mixed memory the LSTM's hl. */
    const float *hp = prev[S_H];
    if (a->prm[P_MIX][0] != 0.0f) {
        lstm_forward(a, prev, cur, in, P, B, N);
        hp = cur[S_HL];
    }
    /* z = lecun_tanh(in + U h_{t-1} + b_u) */
    for (size_t b = 0; b < B; b++)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, iN, iN, 1.0f, a->w[W_U], iN, hp + b * N, 1, 0.0f, z + b * N, 1);
    const float *bu = a->w[B_U];
    for (size_t b = 0; b < B; b++)
        for (size_t j = 0; j < N; j++) {
            size_t i = b * N + j;
            z[i] = LC_A * tanhf(LC_B * (z[i] + in[i] + bu[j]));
        }
    /* heads: P[b][h*N .. h*N+N) = W_h z_b */
    int fused = nh == 4 && heads_contiguous(a->w, N);
    for (size_t b = 0; b < B; b++) {
        if (fused)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)ld, iN, 1.0f, a->w[W_1], iN, z + b * N, 1, 0.0f, P + b * ld, 1);
        else
            for (size_t h = 0; h < nh; h++)
                cblas_sgemv(CblasRowMajor, CblasNoTrans, iN, iN, 1.0f, a->w[W_1 + h], iN, z + b * N, 1, 0.0f,
                            P + b * ld + h * N, 1);
    }
    const float *b1 = a->w[B_1];
    float *restrict f1 = cur[S_FF1], *restrict g = cur[S_G], *restrict h = cur[S_H];
    if (mode == MODE_MINIMAL) {
        const float *A = a->prm[P_A], *wt = a->prm[P_WTAU];
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < N; j++) {
                size_t i = b * N + j;
                float f = P[b * ld + j] + b1[j];
                float e = expf(-dt[j] * (fabsf(wt[j]) + fabsf(f)));
                f1[i] = f;
                g[i] = e;
                h[i] = A[j] * (1.0f - e * f);
            }
    } else {
        const float *b2 = a->w[B_2], *ba = a->w[B_A], *bb = a->w[B_B];
        float *restrict f2 = cur[S_FF2];
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < N; j++) {
                size_t i = b * N + j;
                const float *p = P + b * ld;
                float u1 = tanhf(p[j] + b1[j]), u2 = tanhf(p[N + j] + b2[j]);
                float q = (p[2 * N + j] + ba[j]) * dt[j] + p[3 * N + j] + bb[j];
                float gg = 1.0f / (1.0f + expf(-q));
                f1[i] = u1;
                f2[i] = u2;
                g[i] = gg;
                h[i] = mode == MODE_NO_GATE ? u1 + gg * u2 : u1 * (1.0f - gg) + gg * u2;
            }
    }
    memcpy(s, h, B * N * sizeof(float));
}

static void cfc_backward(const soma_model_args *a, const float *const *prev, const float *const *cur,
                         float *const *dstate, const float *ds, const float *dv, float *din,
                         float *const *dprm, size_t B, size_t N) {
    int mode = (int)a->prm[P_MODE][0];
    size_t nh = heads(mode), ld = 4 * N;
    const float *dt = a->prm[P_DT];
    const float *z = cur[S_Z], *f1 = cur[S_FF1], *g = cur[S_G];
    float *restrict P = a->work, *restrict dz = a->work + B * ld; /* P: [B][4N] head gradients, dz: [B][N] */
    float *restrict gh = dstate[S_H];
    const int iN = (int)N;
    /* 1. gradients of the heads' pre-activations */
    if (mode == MODE_MINIMAL) {
        const float *A = a->prm[P_A], *wt = a->prm[P_WTAU];
        float *dA = dprm[P_A], *dwt = dprm[P_WTAU];
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < N; j++) {
                size_t i = b * N + j;
                float d = gh[i] + ds[i] + (dv ? dv[i] : 0.0f);
                float f = f1[i], e = g[i];
                P[b * ld + j] = -d * A[j] * e * (1.0f - dt[j] * fabsf(f));
                if (dA) dA[j] += d * (1.0f - e * f);
                if (dwt) {
                    float sg = wt[j] > 0.0f ? 1.0f : wt[j] < 0.0f ? -1.0f : 0.0f;
                    dwt[j] += d * A[j] * e * f * dt[j] * sg;
                }
            }
    } else {
        const float *f2 = cur[S_FF2];
        for (size_t b = 0; b < B; b++)
            for (size_t j = 0; j < N; j++) {
                size_t i = b * N + j;
                float d = gh[i] + ds[i] + (dv ? dv[i] : 0.0f);
                float u1 = f1[i], u2 = f2[i], gg = g[i];
                float d1 = mode == MODE_NO_GATE ? d : d * (1.0f - gg);
                float dg = mode == MODE_NO_GATE ? d * u2 : d * (u2 - u1);
                float dq = dg * gg * (1.0f - gg);
                float *p = P + b * ld;
                p[j] = d1 * (1.0f - u1 * u1);
                p[N + j] = d * gg * (1.0f - u2 * u2);
                p[2 * N + j] = dq * dt[j];
                p[3 * N + j] = dq;
            }
    }
    /* 2. dz = sum_h dP_h W_h; dW_h += dP_h^T z; db_h += colsum dP_h */
    int fused = nh == 4 && heads_contiguous(a->w, N);
    int dfused = nh == 4 && heads_contiguous((const float *const *)a->dw, N);
    for (size_t b = 0; b < B; b++) {
        const float *p = P + b * ld, *zb = z + b * N;
        if (fused)
            cblas_sgemv(CblasRowMajor, CblasTrans, (int)ld, iN, 1.0f, a->w[W_1], iN, p, 1, 0.0f, dz + b * N, 1);
        else
            for (size_t h = 0; h < nh; h++)
                cblas_sgemv(CblasRowMajor, CblasTrans, iN, iN, 1.0f, a->w[W_1 + h], iN, p + h * N, 1, h ? 1.0f : 0.0f,
                            dz + b * N, 1);
        if (dfused)
            cblas_sger(CblasRowMajor, (int)ld, iN, 1.0f, p, 1, zb, 1, a->dw[W_1], iN);
        else
            for (size_t h = 0; h < nh; h++)
                if (a->dw[W_1 + h]) cblas_sger(CblasRowMajor, iN, iN, 1.0f, p + h * N, 1, zb, 1, a->dw[W_1 + h], iN);
    }
    for (size_t h = 0; h < nh; h++)
        if (a->dw[B_1 + h]) add_colsum(a->dw[B_1 + h], P + h * N, B, N, ld);
    /* 3. through lecun_tanh: du = dz * lecun_tanh'(pre), written from z */
    float keep = a->din_accumulate ? 1.0f : 0.0f;
    for (size_t i = 0; i < B * N; i++) {
        dz[i] *= LC_B * (LC_A - z[i] * z[i] * (1.0f / LC_A));
        din[i] = keep != 0.0f ? din[i] + dz[i] : dz[i];
    }
    if (a->dw[B_U]) add_colsum(a->dw[B_U], dz, B, N, N);
    /* 4. dU += du^T h_{t-1}; dL/dh_{t-1} = du U; the intermediates do not
     * reach step t-1. With mixed memory h_{t-1} is hl and du U is dL/dhl,
     * written to the heads' scratch (read) and carried on through the LSTM. */
    int mix = a->prm[P_MIX][0] != 0.0f;
    const float *hp = mix ? cur[S_HL] : prev[S_H];
    for (size_t b = 0; b < B; b++) {
        if (a->dw[W_U]) cblas_sger(CblasRowMajor, iN, iN, 1.0f, dz + b * N, 1, hp + b * N, 1, a->dw[W_U], iN);
        cblas_sgemv(CblasRowMajor, CblasTrans, iN, iN, 1.0f, a->w[W_U], iN, dz + b * N, 1, 0.0f,
                    mix ? P + b * ld : gh + b * N, 1);
    }
    if (mix) {
        lstm_backward(a, prev, cur, dstate, P, din, gh, B, N);
        memset(dstate[S_HL], 0, B * N * sizeof(float));
        memset(dstate[S_LG], 0, B * 4 * N * sizeof(float));
    }
    memset(dstate[S_Z], 0, B * N * sizeof(float));
    memset(dstate[S_FF1], 0, B * N * sizeof(float));
    if (mode != MODE_MINIMAL) memset(dstate[S_FF2], 0, B * N * sizeof(float));
    memset(dstate[S_G], 0, B * N * sizeof(float));
}

const soma_model soma__model_cfc = {
    .name = "cfc",
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .n_state = N_STATE,
    .state_names = state_names,
    .spiking = 1,
    .graded = 1,
    .rate_output = 0,
    .forward = cfc_forward,
    .backward = cfc_backward,
    .n_weights = N_WEIGHTS,
    .weight_names = weight_names,
    .weight_shape = cfc_weight_shape,
    .weight_init = cfc_weight_init,
    .state_width = cfc_state_width,
    .scratch_floats = cfc_scratch_floats,
};
