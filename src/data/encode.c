/* encode.c — turning uint8 samples into network input: direct current, rate
 * (Bernoulli), latency and delta spike codes; the seeded epoch shuffle; the
 * encoding and readout name tables and the default data options.
 *
 * A pixel value is x = pixel / 255. Spike codes write [T][B][dim] floats,
 * direct current writes [B][dim] once (the trainer feeds it every step). */
#include "core/names.h"
#include "core/rng.h"
#include "soma.h"
#ifdef SOMA_HAVE_OPENMP
#include <omp.h>
#endif

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------ name tables */
static const char *const encoding_names[] = {"direct", "rate", "latency", "delta", "sequence"};
static const char *const readout_names[] = {"count", "membrane", "last"};
#define N_ENCODINGS (int)(sizeof encoding_names / sizeof encoding_names[0])
#define N_READOUTS (int)(sizeof readout_names / sizeof readout_names[0])

/* Both lookups are exact (case-sensitive) and both name functions return
 * NULL past the last entry, so callers can list the valid names with
 * `for (i = 0; soma_encoding_name(i); i++)`. */
int soma_encoding_find(const char *name) { return soma__name_find(encoding_names, N_ENCODINGS, name); }
const char *soma_encoding_name(int enc) { return soma__name_at(encoding_names, N_ENCODINGS, enc); }
int soma_readout_find(const char *name) { return soma__name_find(readout_names, N_READOUTS, name); }
const char *soma_readout_name(int r) { return soma__name_at(readout_names, N_READOUTS, r); }

void soma_data_opts_default(soma_data_opts *o) {
    memset(o, 0, sizeof *o);
    strcpy(o->dataset, "fashion-mnist");
    o->dir[0] = '\0';
    o->encoding = SOMA_ENCODING_DIRECT;
    o->steps = 25;
    o->gain = 1.0f;
    o->threshold = 0.1f;
    o->tau = 5.0f;
    o->delta_off = 0;
    o->readout = SOMA_READOUT_COUNT;
    o->limit_train = 0;
    o->limit_test = 0;
}

/* --------------------------------------------------------------- encoders */
/* Golden-ratio multiplier: spreads consecutive epochs over the key space. */
#define EPOCH_MIX 0x9E3779B97F4A7C15ull

size_t soma_encode_size(const soma_data_opts *opts, const soma_dataset *ds, size_t B) {
    if (!opts || !ds) return 0;
    if (opts->encoding == SOMA_ENCODING_DIRECT) return ds->dim * B;
    if (opts->steps < 1) return 0;
    return (size_t)opts->steps * B * ds->dim;
}

/* Rate code: out[t][b][i] = 1 with probability p = clamp(gain*x, 0, 1).
 * The uniform draw for (sample s, step t, input i) is word i%4 of the Philox
 * block at counter (s*T + t)*ceil(dim/4) + i/4 under key seed ^ epoch*EPOCH_MIX,
 * so it depends on the sample's index in the data set and never on its slot
 * in the batch, the batch size or the thread that encodes it. */
/* Threads for an encoder: the caller's count (a trainer running on one
 * thread must not have its encoder wake a second), else OpenMP's default. */
static int enc_threads(const soma_data_opts *o) {
    if (o->threads > 0 && o->threads <= 1024) return o->threads;
#ifdef SOMA_HAVE_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* Rows ahead whose pixels a row prefetches (see encode_rate). */
#define ENC_AHEAD 2
static void encode_rate(float *restrict out, /* [T][B][dim] */
                        const soma_dataset *ds, const size_t *idx, size_t B, size_t T, float gain, uint64_t seed,
                        uint64_t epoch, int nthreads) {
    const size_t dim = ds->dim, blocks = (dim + 3) / 4;
    const uint64_t key = seed ^ (epoch * EPOCH_MIX);
    /* Rows are independent (each keyed by its sample and step), so they run
     * in parallel with the same result; a row's random words come from one
     * lane-parallel Philox call. */
    size_t rows = T * B;
#pragma omp parallel for schedule(static) if (rows * dim > 65536) num_threads(nthreads)
    for (size_t r = 0; r < rows; r++) {
        size_t t = r / B, b = r % B;
        const uint8_t *restrict px = ds->x + idx[b] * dim;
        float *restrict o = out + r * dim;
        uint64_t ctr = ((uint64_t)idx[b] * T + t) * blocks;
        uint32_t wbuf[4 * 256];
        /* The samples of a batch are scattered over a data set far larger
         * than the caches: fetch the pixels of a row ahead while this row's
         * random numbers are computed (without it most of the encoding time
         * was spent waiting for memory; 1 to 4 rows ahead measure alike). */
        if (r + ENC_AHEAD < rows) {
            const uint8_t *nx = ds->x + idx[(r + ENC_AHEAD) % B] * dim;
            for (size_t i = 0; i < dim; i += 64) __builtin_prefetch(nx + i);
            __builtin_prefetch(nx + dim - 1);
        }
        for (size_t k0 = 0; k0 < blocks; k0 += 256) {
            size_t nb = blocks - k0 < 256 ? blocks - k0 : 256;
            soma__philox_n(key, ctr + k0, nb, wbuf);
            size_t i0 = 4 * k0, n = (4 * (k0 + nb) < dim ? 4 * (k0 + nb) : dim) - i0;
            const uint8_t *restrict pxi = px + i0;
            float *restrict oi = o + i0;
            /* p = clamp(gain * x, 0, 1) with x = pixel / 255 computed here, not
             * looked up, and a select instead of a branch: the loop then
             * vectorizes (a table lookup is a gather, which GCC avoids, and
             * the branch on a random draw mispredicts half the time). The
             * values are those of the scalar formula, bit for bit. */
            for (size_t i = 0; i < n; i++) {
                float q = gain * ((float)pxi[i] / 255.0f);
                q = q < 0.0f ? 0.0f : q > 1.0f ? 1.0f : q;
                oi[i] = soma_u32_to_unit(wbuf[i]) < q ? 1.0f : 0.0f;
            }
        }
    }
}

/* Latency code: each input fires once, at step t_s, or never.
 *   log code (tau > 0):  t_s = tau * ln(x / (x - threshold))  for x > threshold
 *   linear code (tau = 0): t_s = (1 - x) * (T - 1)            for x > threshold
 * rounded to the nearest step and clamped to [0, T-1]; x <= threshold never
 * fires. Larger x fires earlier in both codes (snnTorch spikegen.latency).
 * Returns -1 for "no spike". */
static int latency_step(float x, float threshold, float tau, int T) {
    if (!(x > threshold)) return -1;
    double ts;
    if (tau > 0.0f) ts = (double)tau * log((double)x / ((double)x - (double)threshold));
    else ts = (1.0 - (double)x) * (double)(T - 1);
    if (!(ts > 0.0)) return 0; /* also catches NaN */
    if (ts >= (double)(T - 1)) return T - 1;
    return (int)lround(ts);
}

/* Delta modulation on a frame sequence: +1 where the input rose by at least
 * `threshold` since the previous frame, -1 (if `off`) where it fell by at
 * least that much, 0 otherwise. A change must be nonzero, so an unchanged
 * input never fires whatever the threshold. */
static float delta_step(float prev, float cur, float threshold, int off) {
    float d = cur - prev;
    if (d > 0.0f && d >= threshold) return 1.0f;
    if (off && d < 0.0f && -d >= threshold) return -1.0f;
    return 0.0f;
}

int soma_encode(const soma_data_opts *opts, const soma_dataset *ds, const size_t *idx, size_t B, uint64_t seed,
                uint64_t epoch, float *out, int *time_constant) {
    if (!opts || !ds || !out || (B && !idx)) return SOMA_STATUS_INVALID;
    if (opts->encoding == SOMA_ENCODING_SEQUENCE || ds->seq) {
        /* A sequence data set is fed step by step as it is; steps past its
         * end are zero, steps it has beyond T are dropped. */
        if (opts->encoding != SOMA_ENCODING_SEQUENCE || !ds->seq || opts->steps < 1) return SOMA_STATUS_INVALID;
        for (size_t b = 0; b < B; b++)
            if (idx[b] >= ds->n) return SOMA_STATUS_INVALID;
        size_t T = (size_t)opts->steps, dim = ds->dim;
        for (size_t t = 0; t < T; t++)
            for (size_t b = 0; b < B; b++) {
                float *o = out + (t * B + b) * dim;
                if (t < ds->steps) memcpy(o, ds->seq + (idx[b] * ds->steps + t) * dim, dim * sizeof *o);
                else memset(o, 0, dim * sizeof *o);
            }
        if (time_constant) *time_constant = 0;
        return SOMA_STATUS_OK;
    }
    if (!ds->x) return SOMA_STATUS_INVALID;
    for (size_t b = 0; b < B; b++)
        if (idx[b] >= ds->n) return SOMA_STATUS_INVALID;
    const size_t dim = ds->dim;
    float lut[256];
    for (int v = 0; v < 256; v++) lut[v] = (float)v / 255.0f;

    if (opts->encoding == SOMA_ENCODING_DIRECT) {
        for (size_t b = 0; b < B; b++) {
            const uint8_t *px = ds->x + idx[b] * dim;
            float *o = out + b * dim;
            for (size_t i = 0; i < dim; i++) o[i] = opts->gain * lut[px[i]];
        }
        if (time_constant) *time_constant = 1;
        return SOMA_STATUS_OK;
    }

    if (opts->steps < 1) return SOMA_STATUS_INVALID;
    const size_t T = (size_t)opts->steps;
    switch (opts->encoding) {
    case SOMA_ENCODING_RATE:
        encode_rate(out, ds, idx, B, T, opts->gain, seed, epoch, enc_threads(opts));
        break;
    case SOMA_ENCODING_LATENCY: {
        if (opts->tau < 0.0f || !isfinite(opts->tau)) return SOMA_STATUS_INVALID;
        int ts[256];
        for (int v = 0; v < 256; v++) ts[v] = latency_step(lut[v], opts->threshold, opts->tau, opts->steps);
        memset(out, 0, T * B * dim * sizeof *out);
        for (size_t b = 0; b < B; b++) {
            const uint8_t *px = ds->x + idx[b] * dim;
            for (size_t i = 0; i < dim; i++)
                if (ts[px[i]] >= 0) out[((size_t)ts[px[i]] * B + b) * dim + i] = 1.0f;
        }
        break;
    }
    case SOMA_ENCODING_DELTA:
        /* The T steps are the frame sequence x_t of a static image shown from
         * t = 0 on, with x_{-1} = 0 before it. So step 0 carries +1 wherever
         * x >= threshold and later steps carry nothing (a static image does
         * not change, and it never decreases, so delta_off adds no -1). The
         * general rule is still applied frame by frame, so the same code would
         * serve a moving input. */
        for (size_t t = 0; t < T; t++) {
            for (size_t b = 0; b < B; b++) {
                const uint8_t *px = ds->x + idx[b] * dim;
                float *o = out + (t * B + b) * dim;
                for (size_t i = 0; i < dim; i++) {
                    float cur = lut[px[i]], prev = t == 0 ? 0.0f : lut[px[i]];
                    o[i] = delta_step(prev, cur, opts->threshold, opts->delta_off);
                }
            }
        }
        break;
    default:
        return SOMA_STATUS_INVALID;
    }
    if (time_constant) *time_constant = 0;
    return SOMA_STATUS_OK;
}

/* ---------------------------------------------------------------- shuffle */
/* Stream id tag so the shuffle never shares a stream with other users of
 * soma_rng_init(seed, small number). */
#define SHUFFLE_STREAM 0x53485546464C45ull /* "SHUFFLE" */

/* Uniform integer in [0, bound), bound >= 1, without modulo bias: Lemire's
 * multiply-shift with rejection for 32-bit bounds, plain rejection above. */
static uint64_t bounded(soma_rng *rng, uint64_t bound) {
    if (bound <= UINT32_MAX) {
        uint32_t s = (uint32_t)bound;
        uint64_t m = (uint64_t)soma_rng_u32(rng) * s;
        uint32_t l = (uint32_t)m;
        if (l < s) {
            uint32_t t = (uint32_t)(-s) % s;
            while (l < t) {
                m = (uint64_t)soma_rng_u32(rng) * s;
                l = (uint32_t)m;
            }
        }
        return m >> 32;
    }
    uint64_t t = (0 - bound) % bound, r;
    do r = ((uint64_t)soma_rng_u32(rng) << 32) | soma_rng_u32(rng);
    while (r < t);
    return r % bound;
}

void soma_shuffle(size_t *perm, size_t n, uint64_t seed, uint64_t epoch) {
    if (!perm) return;
    for (size_t i = 0; i < n; i++) perm[i] = i;
    soma_rng rng;
    soma_rng_init(&rng, seed, SHUFFLE_STREAM ^ epoch);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)bounded(&rng, i);
        size_t tmp = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = tmp;
    }
}
