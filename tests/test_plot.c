/* test_plot.c — the PNG plots: files are valid PNGs of the expected size,
 * data are actually drawn where they belong, writes are atomic, and bad
 * arguments or paths give the right status without leaving files behind. */
#define _POSIX_C_SOURCE 200809L
#include "soma.h"
#include "testlib.h"

#include <cairo.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static int has_png_signature(const char *p) {
    size_t n = 0;
    unsigned char *b = t_read_file(p, &n);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    int ok = b && n > 8 && memcmp(b, sig, 8) == 0;
    free(b);
    return ok;
}

/* Pixels in [x0,x1) x [y0,y1) with some channel below 160: ink, not white
 * background nor the light grey grid. */
static long count_ink(cairo_surface_t *s, int x0, int y0, int x1, int y1) {
    const unsigned char *d = cairo_image_surface_get_data(s);
    int stride = cairo_image_surface_get_stride(s);
    long k = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            uint32_t p;
            memcpy(&p, d + (size_t)y * stride + 4 * (size_t)x, 4);
            unsigned r = (p >> 16) & 255, g = (p >> 8) & 255, b = p & 255;
            if (r < 160 || g < 160 || b < 160) k++;
        }
    return k;
}

static cairo_surface_t *load(const char *p) {
    cairo_surface_t *s = cairo_image_surface_create_from_png(p);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(s);
        return NULL;
    }
    cairo_surface_flush(s);
    return s;
}

static void test_curves(const char *dir) {
    char p[600], err[512];
    enum { E = 12 };
    double loss[E], tr[E], te[E];
    for (int i = 0; i < E; i++) {
        loss[i] = 2.3 * exp(-0.3 * i) + 0.1;
        tr[i] = 0.95 - 0.8 * exp(-0.4 * i);
        te[i] = tr[i] - 0.03;
    }
    snprintf(p, sizeof p, "%s/curves.png", dir);
    CHECK(soma_plot_curves(p, loss, tr, te, E, err, sizeof err) == SOMA_STATUS_OK);
    CHECK(has_png_signature(p));
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
    CHECK(!file_exists(tmp)); /* temporary renamed away */
    cairo_surface_t *s = load(p);
    CHECK(s != NULL);
    if (s) {
        CHECK(cairo_image_surface_get_width(s) == 900);
        CHECK(cairo_image_surface_get_height(s) == 400);
        /* both panels' interiors (left: loss, right: accuracy) hold drawn data */
        CHECK(count_ink(s, 90, 75, 420, 330) > 200);
        CHECK(count_ink(s, 540, 75, 870, 330) > 400);
        /* corners are white background */
        CHECK(count_ink(s, 0, 0, 5, 5) == 0);
        cairo_surface_destroy(s);
    }

    /* one epoch and constant series: no division by zero, a marker shows */
    double l1 = 0.7, a1 = 0.5;
    snprintf(p, sizeof p, "%s/curves1.png", dir);
    CHECK(soma_plot_curves(p, &l1, &a1, NULL, 1, err, sizeof err) == SOMA_STATUS_OK);
    s = load(p);
    CHECK(s != NULL);
    if (s) {
        CHECK(count_ink(s, 90, 75, 420, 330) > 10);
        CHECK(count_ink(s, 540, 75, 870, 330) > 10);
        cairo_surface_destroy(s);
    }
    double cl[5] = {1, 1, 1, 1, 1}, ca[5] = {0, 0, 0, 0, 0};
    snprintf(p, sizeof p, "%s/curves_const.png", dir);
    CHECK(soma_plot_curves(p, cl, ca, ca, 5, err, sizeof err) == SOMA_STATUS_OK);
    CHECK(has_png_signature(p));

    /* argument errors: INVALID, message names the path, no file */
    snprintf(p, sizeof p, "%s/bad.png", dir);
    err[0] = 0;
    CHECK(soma_plot_curves(p, NULL, tr, NULL, E, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK(strncmp(err, p, strlen(p)) == 0);
    CHECK(soma_plot_curves(p, loss, tr, NULL, 0, err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK(!file_exists(p));

    /* unwritable path */
    err[0] = 0;
    CHECK(soma_plot_curves("/nonexistent/dir/x.png", loss, tr, te, E, err, sizeof err) == SOMA_STATUS_IO);
    CHECK(strncmp(err, "/nonexistent/dir/x.png: ", 24) == 0);
    CHECK(!file_exists("/nonexistent/dir/x.png"));
}

static void test_raster(const char *dir) {
    char p[600], q[600], err[512];
    const size_t T = 50, B = 2, N = 20;
    uint8_t *sp = calloc(T * B * N, 1);
    CHECK(sp != NULL);
    if (!sp) return;

    /* empty raster vs one spike: neuron 0 of sample 0 at step 10 */
    snprintf(p, sizeof p, "%s/raster_empty.png", dir);
    CHECK(soma_plot_raster(p, sp, T, B, N, "empty", err, sizeof err) == SOMA_STATUS_OK);
    sp[(10 * B + 0) * N + 0] = 1;
    snprintf(q, sizeof q, "%s/raster_one.png", dir);
    CHECK(soma_plot_raster(q, sp, T, B, N, "one spike", err, sizeof err) == SOMA_STATUS_OK);
    CHECK(has_png_signature(p));
    CHECK(has_png_signature(q));
    cairo_surface_t *a = load(p), *b = load(q);
    CHECK(a != NULL && b != NULL);
    if (a && b) {
        int w = cairo_image_surface_get_width(a), h = cairo_image_surface_get_height(a);
        CHECK(w == 900 && cairo_image_surface_get_width(b) == w && cairo_image_surface_get_height(b) == h);
        /* the pixels that differ are few, dark, in the lower-left part of
         * the first panel (neuron 0 at the bottom, step 10 of 50) */
        const unsigned char *da = cairo_image_surface_get_data(a), *db = cairo_image_surface_get_data(b);
        int stride = cairo_image_surface_get_stride(a);
        long ndiff = 0;
        int minx = w, maxx = -1, miny = h, maxy = -1;
        /* (rows above the first plot box carry the spike count, which differs) */
        for (int y = 44 + 26; y < h; y++)
            for (int x = 0; x < w; x++)
                if (memcmp(da + (size_t)y * stride + 4 * x, db + (size_t)y * stride + 4 * x, 4)) {
                    ndiff++;
                    if (x < minx) minx = x;
                    if (x > maxx) maxx = x;
                    if (y < miny) miny = y;
                    if (y > maxy) maxy = y;
                }
        CHECK(ndiff > 0);
        CHECK(ndiff <= 16);
        CHECK(minx > 100 && maxx < 300);        /* step 10/50 of a ~800 px wide panel */
        CHECK(miny > 150 && maxy < 44 + 215);   /* bottom of the first panel */
        if (ndiff) CHECK(count_ink(b, minx, miny, maxx + 1, maxy + 1) == ndiff);
    }
    if (a) cairo_surface_destroy(a);
    if (b) cairo_surface_destroy(b);
    free(sp);

    /* a big raster, more samples than shown: 4 panels of dense spikes */
    const size_t T2 = 1000, B2 = 6, N2 = 3000;
    uint8_t *big = malloc(T2 * B2 * N2);
    CHECK(big != NULL);
    if (!big) return;
    soma_rng rng;
    soma_rng_init(&rng, 7, 0);
    for (size_t i = 0; i < T2 * B2 * N2; i++) big[i] = soma_rng_uniform(&rng) < 0.01f;
    snprintf(p, sizeof p, "%s/raster_big.png", dir);
    CHECK(soma_plot_raster(p, big, T2, B2, N2, "big raster", err, sizeof err) == SOMA_STATUS_OK);
    cairo_surface_t *s = load(p);
    CHECK(s != NULL);
    if (s) {
        CHECK(cairo_image_surface_get_height(s) == 44 + 4 * 215 + 6);
        /* ~28 cells of 1% density share a pixel: about a quarter of the
         * last panel's data area is ink, the title rows above it none */
        int top = 44 + 3 * 215 + 30;
        long ink = count_ink(s, 80, top, 870, top + 130), area = 790L * 130;
        CHECK(ink > area / 6 && ink < area / 2);
        cairo_surface_destroy(s);
    }

    /* atomic write: an earlier plot survives a failed write onto it. A
     * directory in the temporary file's place makes the write fail. */
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)getpid());
    size_t n0 = 0, n1 = 0;
    void *before = t_read_file(p, &n0);
    CHECK(mkdir(tmp, 0700) == 0);
    CHECK(soma_plot_raster(p, big, 10, B2, N2, "other", err, sizeof err) == SOMA_STATUS_IO);
    rmdir(tmp);
    void *after = t_read_file(p, &n1);
    CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
    free(before);
    free(after);

    /* errors */
    err[0] = 0;
    CHECK(soma_plot_raster("/nonexistent/dir/x.png", big, 10, 1, 10, "t", err, sizeof err) == SOMA_STATUS_IO);
    CHECK(strncmp(err, "/nonexistent/dir/x.png: ", 24) == 0);
    CHECK(!file_exists("/nonexistent/dir/x.png"));
    snprintf(p, sizeof p, "%s/bad_raster.png", dir);
    CHECK(soma_plot_raster(p, big, 0, 1, 10, "t", err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK(soma_plot_raster(p, big, 10, 0, 10, "t", err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK(soma_plot_raster(p, NULL, 10, 1, 10, "t", err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK(soma_plot_raster(p, big, SIZE_MAX / 2, 4, 8, "t", err, sizeof err) == SOMA_STATUS_INVALID);
    CHECK(!file_exists(p));
    /* a NULL title and a NULL error buffer are fine */
    CHECK(soma_plot_raster(p, big, 10, 1, 10, NULL, NULL, 0) == SOMA_STATUS_OK);
    free(big);
}

int main(void) {
    const char *dir = t_tmpdir("plot");
    CHECK(dir != NULL);
    if (!dir) return t_report("test_plot");
    char d[512];
    snprintf(d, sizeof d, "%s", dir);
    test_curves(d);
    test_raster(d);
    if (!getenv("SOMA_KEEP_PLOTS")) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", d);
    }
    return t_report("test_plot");
}
