/* test_rng.c — the counter-based RNG: Philox-4x32-10's published known
 * answer, the lane-parallel block generator against the one-block function,
 * and the streams' basic statistics. */
#include <stdlib.h>
#include "core/rng.h"
#include "soma.h"
#include "testlib.h"

int main(void) {
    /* Random123's known-answer test for Philox4x32-10 with a zero counter and key. */
    uint32_t w[4];
    soma_philox(0, 0, w);
    CHECK(w[0] == 0x6627e8d5u && w[1] == 0xe169c58du && w[2] == 0xbc57ac4cu && w[3] == 0x9b00dbd8u);
    /* soma__philox_n equals n single calls, for lengths around its lane width */
    size_t lens[] = {1, 3, 15, 16, 17, 33, 63, 64, 65, 80, 127, 196, 208, 300};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        size_t n = lens[li];
        uint32_t *a = malloc(4 * n * sizeof *a);
        uint64_t key = 0x1234567890abcdefull + li, c0 = 0xfffffffffffffff0ull - li * 7;
        soma__philox_n(key, c0, n, a);
        int same = 1;
        for (size_t i = 0; i < n; i++) {
            soma_philox(key, c0 + i, w);
            for (int k = 0; k < 4; k++) same &= a[4 * i + k] == w[k];
        }
        CHECK_MSG(same, "length %zu", n);
        /* a counter run across a carry into the high word */
        c0 = 0xfffffff0ull - li * 5;
        soma__philox_n(key, c0, n, a);
        same = 1;
        for (size_t i = 0; i < n; i++) {
            soma_philox(key, c0 + i, w);
            for (int k = 0; k < 4; k++) same &= a[4 * i + k] == w[k];
        }
        CHECK_MSG(same, "length %zu across 2^32", n);
        free(a);
    }
    /* uniform floats: mean 1/2 within 5 sigma, in [0, 1) */
    soma_rng r;
    soma_rng_init(&r, 3, 4);
    double sum = 0;
    int inside = 1;
    for (int i = 0; i < 100000; i++) {
        float u = soma_rng_uniform(&r);
        inside &= u >= 0.0f && u < 1.0f;
        sum += u;
    }
    CHECK(inside);
    CHECK(fabs(sum / 100000 - 0.5) < 5 * 0.2887 / sqrt(100000.0));
    /* different streams differ */
    soma_rng a, b;
    soma_rng_init(&a, 3, 4);
    soma_rng_init(&b, 3, 5);
    CHECK(soma_rng_u32(&a) != soma_rng_u32(&b));
    return t_report("test_rng");
}
