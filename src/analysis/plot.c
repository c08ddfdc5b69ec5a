/* plot.c — PNG figures of a run: training curves (loss and accuracy per
 * epoch) and spike rasters, drawn with cairo.
 *
 * Both plots share a small axis toolkit (nice tick steps, framed panels with
 * grid, tick labels and axis titles). Rasters can hold millions of cells
 * (T ~ 1000 steps x N ~ thousands of neurons x 4 samples), so their marks are
 * written straight into the image buffer rather than as one cairo path per
 * spike. Files are written atomically: the PNG goes to PATH.tmp.<pid> and is
 * renamed onto PATH only once complete, so a failed write never destroys an
 * earlier plot. */
#define _POSIX_C_SOURCE 200809L
#include "soma.h"

#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const double PI = 3.14159265358979323846;

/* ------------------------------------------------------------- errors */

static int fail(char *err, size_t errlen, int status, const char *path, const char *fmt, ...) {
    if (err && errlen) {
        int k = snprintf(err, errlen, "%s: ", path ? path : "(null)");
        if (k >= 0 && (size_t)k < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return status;
}

/* ------------------------------------------------------- atomic write */

static cairo_status_t png_write_cb(void *closure, const unsigned char *data, unsigned int length) {
    FILE *f = closure;
    return fwrite(data, 1, length, f) == length ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

/* Writes the surface as PNG to PATH.tmp.<pid>, then renames it onto path. */
static int write_png_atomic(cairo_surface_t *s, const char *path, char *err, size_t errlen) {
    size_t len = strlen(path) + 32;
    char *tmp = malloc(len);
    if (!tmp) return fail(err, errlen, SOMA_STATUS_NOMEM, path, "out of memory");
    snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());

    char why[128] = "";
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        strerror_r(errno, why, sizeof why);
        free(tmp);
        return fail(err, errlen, SOMA_STATUS_IO, path, "cannot create file: %s", why);
    }
    cairo_status_t cs = cairo_surface_write_to_png_stream(s, png_write_cb, f);
    int werr = errno;
    int flush_bad = fflush(f) != 0 || ferror(f);
    if (flush_bad) werr = errno;
    int close_bad = fclose(f) != 0;
    if (close_bad && !flush_bad) werr = errno;
    if (cs != CAIRO_STATUS_SUCCESS || flush_bad || close_bad) {
        remove(tmp);
        free(tmp);
        if (cs == CAIRO_STATUS_NO_MEMORY) return fail(err, errlen, SOMA_STATUS_NOMEM, path, "out of memory");
        strerror_r(werr ? werr : EIO, why, sizeof why);
        return fail(err, errlen, SOMA_STATUS_IO, path, "write failed: %s", why);
    }
    if (rename(tmp, path) != 0) {
        strerror_r(errno, why, sizeof why);
        remove(tmp);
        free(tmp);
        return fail(err, errlen, SOMA_STATUS_IO, path, "cannot rename temporary file: %s", why);
    }
    free(tmp);
    return SOMA_STATUS_OK;
}

/* --------------------------------------------------------------- axes */

typedef struct rect { double x, y, w, h; } rect; /* pixels; y grows down */

typedef struct axis {
    double lo, hi;   /* data range mapped onto the panel */
    double t0, step; /* first tick and tick spacing (data units) */
} axis;

/* A "nice" tick step (1, 2 or 5 times a power of ten) giving about `target`
 * intervals over span; integer axes never step below 1. */
static double nice_step(double span, int target, int integer) {
    if (!(span > 0) || !isfinite(span)) return 1.0;
    double raw = span / target;
    double mag = pow(10.0, floor(log10(raw)));
    double r = raw / mag, m = r < 1.5 ? 1 : r < 3.5 ? 2 : r < 7.5 ? 5 : 10;
    double step = m * mag;
    if (integer && step < 1) step = 1;
    return step;
}

static void axis_ticks(axis *a, int target, int integer) {
    a->step = nice_step(a->hi - a->lo, target, integer);
    a->t0 = ceil(a->lo / a->step - 1e-9) * a->step;
}

/* Range of a value axis from the finite values of up to two series:
 * padded, widened when (nearly) constant, snapped outward to tick
 * multiples, and kept inside [clamp_lo, clamp_hi] when the data are. */
static axis value_axis(const double *a, const double *b, size_t n, double clamp_lo, double clamp_hi) {
    double lo = INFINITY, hi = -INFINITY;
    for (int s = 0; s < 2; s++) {
        const double *v = s ? b : a;
        if (!v) continue;
        for (size_t i = 0; i < n; i++)
            if (isfinite(v[i])) { lo = fmin(lo, v[i]); hi = fmax(hi, v[i]); }
    }
    if (!(lo <= hi)) { lo = 0; hi = 1; } /* no finite value at all */
    int inside = lo >= clamp_lo && hi <= clamp_hi;
    double span = hi - lo;
    if (!isfinite(span)) { lo = -1e300; hi = 1e300; span = hi - lo; } /* huge values: keep the maths finite */
    double pad;
    if (span <= 1e-12 * fmax(1.0, fabs(hi))) pad = fabs(hi) > 0 ? 0.1 * fabs(hi) : 0.5; /* constant series */
    else pad = 0.06 * span;
    axis ax = {lo - pad, hi + pad, 0, 0};
    axis_ticks(&ax, 5, 0);
    double lo2 = floor(ax.lo / ax.step + 1e-9) * ax.step;
    double hi2 = ceil(ax.hi / ax.step - 1e-9) * ax.step;
    if (isfinite(lo2) && isfinite(hi2) && hi2 > lo2) { ax.lo = lo2; ax.hi = hi2; }
    if (inside) { ax.lo = fmax(ax.lo, clamp_lo); ax.hi = fmin(ax.hi, clamp_hi); }
    if (!(ax.hi > ax.lo)) ax.hi = ax.lo + 1;
    axis_ticks(&ax, 5, 0);
    return ax;
}

static double map_x(const rect *r, const axis *a, double v) { return r->x + (v - a->lo) / (a->hi - a->lo) * r->w; }
static double map_y(const rect *r, const axis *a, double v) { return r->y + r->h - (v - a->lo) / (a->hi - a->lo) * r->h; }

static void set_font(cairo_t *cr, double size, int bold) {
    cairo_select_font_face(cr, "Sans", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

/* Text anchored at (x, y): ax/ay = 0 left/top, 0.5 centre, 1 right/bottom
 * of the ink box (vertical anchoring uses the font's digit height so rows of
 * labels line up). */
static void text_at(cairo_t *cr, double x, double y, double ax, double ay, const char *s) {
    cairo_text_extents_t te;
    cairo_font_extents_t fe;
    cairo_text_extents(cr, s, &te);
    cairo_font_extents(cr, &fe);
    double h = fe.ascent * 0.72; /* about the cap height */
    cairo_move_to(cr, x - te.x_advance * ax, y + h * (1 - ay));
    cairo_show_text(cr, s);
}

static void text_vertical(cairo_t *cr, double x, double y, const char *s) {
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, -PI / 2);
    text_at(cr, 0, 0, 0.5, 0.5, s);
    cairo_restore(cr);
}

/* Tick label with as many decimals as the step needs ("-0" avoided). */
static void tick_label(char *buf, size_t len, double v, double step) {
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dec > 6) dec = 6;
    if (fabs(v) < step * 1e-6) v = 0;
    double av = fabs(v);
    if (av >= 1e6 || (av > 0 && av < 1e-4)) snprintf(buf, len, "%.3g", v);
    else snprintf(buf, len, "%.*f", dec, v);
}

/* Grid, tick marks and tick labels; returns the widest y label (pixels) so
 * the y axis title can stand clear of it. */
static double grid_ticks(cairo_t *cr, const rect *r, const axis *x, const axis *y, double label_size) {
    char buf[48];
    double widest = 0;
    /* light grid first, then tick marks and labels */
    cairo_set_line_width(cr, 1);
    set_font(cr, label_size, 0);
    for (int i = 0; i < 64; i++) {
        double v = x->t0 + i * x->step;
        if (v > x->hi + x->step * 1e-9) break;
        double px = floor(map_x(r, x, v)) + 0.5;
        cairo_set_source_rgb(cr, 0.90, 0.90, 0.90);
        cairo_move_to(cr, px, r->y);
        cairo_line_to(cr, px, r->y + r->h);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
        cairo_move_to(cr, px, r->y + r->h);
        cairo_line_to(cr, px, r->y + r->h + 5);
        cairo_stroke(cr);
        tick_label(buf, sizeof buf, v, x->step);
        text_at(cr, px, r->y + r->h + 8, 0.5, 0, buf);
    }
    for (int i = 0; i < 64; i++) {
        double v = y->t0 + i * y->step;
        if (v > y->hi + y->step * 1e-9) break;
        double py = floor(map_y(r, y, v)) + 0.5;
        cairo_set_source_rgb(cr, 0.90, 0.90, 0.90);
        cairo_move_to(cr, r->x, py);
        cairo_line_to(cr, r->x + r->w, py);
        cairo_stroke(cr);
        cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
        cairo_move_to(cr, r->x - 5, py);
        cairo_line_to(cr, r->x, py);
        cairo_stroke(cr);
        tick_label(buf, sizeof buf, v, y->step);
        text_at(cr, r->x - 8, py, 1, 0.5, buf);
        cairo_text_extents_t te;
        cairo_text_extents(cr, buf, &te);
        widest = fmax(widest, te.x_advance);
    }
    return widest;
}

static void frame(cairo_t *cr, const rect *r) {
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, floor(r->x) + 0.5, floor(r->y) + 0.5, floor(r->w), floor(r->h));
    cairo_stroke(cr);
}

static void axis_titles(cairo_t *cr, const rect *r, const char *xt, const char *yt, double ylabel_width) {
    double ylabel_x = fmax(r->x - 8 - ylabel_width - 14, r->x - 64);
    cairo_set_source_rgb(cr, 0, 0, 0);
    set_font(cr, 13, 0);
    text_at(cr, r->x + r->w / 2, r->y + r->h + 28, 0.5, 0, xt);
    text_vertical(cr, ylabel_x, r->y + r->h / 2, yt);
}

/* A new white ARGB image and its context, or a status on failure. */
static int canvas(int w, int h, cairo_surface_t **s, cairo_t **cr) {
    *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
    if (cairo_surface_status(*s) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(*s);
        return SOMA_STATUS_NOMEM;
    }
    *cr = cairo_create(*s);
    if (cairo_status(*cr) != CAIRO_STATUS_SUCCESS) {
        cairo_destroy(*cr);
        cairo_surface_destroy(*s);
        return SOMA_STATUS_NOMEM;
    }
    cairo_set_source_rgb(*cr, 1, 1, 1);
    cairo_paint(*cr);
    return SOMA_STATUS_OK;
}

/* Checks the drawing went through, then writes the file; frees both. */
static int finish(cairo_surface_t *s, cairo_t *cr, const char *path, char *err, size_t errlen) {
    int rc;
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS)
        rc = fail(err, errlen, SOMA_STATUS_NOMEM, path, "drawing failed: %s", cairo_status_to_string(cairo_status(cr)));
    else {
        cairo_surface_flush(s);
        rc = write_png_atomic(s, path, err, errlen);
    }
    cairo_destroy(cr);
    cairo_surface_destroy(s);
    return rc;
}

/* ------------------------------------------------------------- curves */

typedef struct rgb { double r, g, b; } rgb;
static const rgb C_LOSS = {0.80, 0.15, 0.15}, C_TRAIN = {0.12, 0.35, 0.75}, C_TEST = {0.95, 0.50, 0.05};

/* One series against epochs 1..n: a polyline broken at non-finite values,
 * with markers when points are few (always when a point stands alone). */
static void draw_series(cairo_t *cr, const rect *r, const axis *x, const axis *y, const double *v, size_t n, rgb c,
                        int dashed) {
    cairo_save(cr);
    cairo_rectangle(cr, r->x, r->y, r->w, r->h);
    cairo_clip(cr);
    cairo_set_source_rgb(cr, c.r, c.g, c.b);
    cairo_set_line_width(cr, 2);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    if (dashed) {
        double d[2] = {7, 4};
        cairo_set_dash(cr, d, 2, 0);
    }
    int pen = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) { pen = 0; continue; }
        double px = map_x(r, x, (double)(i + 1)), py = map_y(r, y, v[i]);
        if (pen) cairo_line_to(cr, px, py);
        else cairo_move_to(cr, px, py);
        pen = 1;
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) continue;
        int alone = (i == 0 || !isfinite(v[i - 1])) && (i + 1 == n || !isfinite(v[i + 1]));
        if (n > 40 && !alone) continue;
        cairo_arc(cr, map_x(r, x, (double)(i + 1)), map_y(r, y, v[i]), n > 15 ? 2.5 : 3.5, 0, 2 * PI);
        cairo_fill(cr);
    }
    cairo_restore(cr);
}

/* How many points of the series fall in box b (a legend candidate). */
static size_t points_in(const rect *r, const axis *x, const axis *y, const double *v, size_t n, const rect *b) {
    size_t k = 0;
    if (!v) return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) continue;
        /* the segment to the next point counts as well, by its midpoint */
        for (int half = 0; half < 2; half++) {
            double xv = (double)(i + 1), yv = v[i];
            if (half) {
                if (i + 1 >= n || !isfinite(v[i + 1])) break;
                xv += 0.5;
                yv = 0.5 * (v[i] + v[i + 1]);
            }
            double px = map_x(r, x, xv), py = map_y(r, y, yv);
            if (px >= b->x && px <= b->x + b->w && py >= b->y && py <= b->y + b->h) k++;
        }
    }
    return k;
}

static void legend(cairo_t *cr, const rect *r, const axis *x, const axis *y, const double *train, const double *test,
                   size_t n) {
    set_font(cr, 12, 0);
    double w = 82, h = test ? 46 : 26, m = 8;
    rect cand[4] = {{r->x + r->w - w - m, r->y + r->h - h - m, w, h}, /* lower right first: accuracy rises */
                    {r->x + r->w - w - m, r->y + m, w, h},
                    {r->x + m, r->y + r->h - h - m, w, h},
                    {r->x + m, r->y + m, w, h}};
    int best = 0;
    size_t best_k = (size_t)-1;
    for (int i = 0; i < 4; i++) {
        size_t k = points_in(r, x, y, train, n, &cand[i]) + points_in(r, x, y, test, n, &cand[i]);
        if (k < best_k) { best_k = k; best = i; }
    }
    rect b = cand[best];
    cairo_set_source_rgba(cr, 1, 1, 1, 0.9);
    cairo_rectangle(cr, b.x, b.y, b.w, b.h);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    const char *names[2] = {"train", "test"};
    rgb cols[2] = {C_TRAIN, C_TEST};
    for (int i = 0; i < (test ? 2 : 1); i++) {
        double yy = b.y + 13 + 20 * i;
        cairo_set_source_rgb(cr, cols[i].r, cols[i].g, cols[i].b);
        cairo_set_line_width(cr, 2);
        if (i == 1) {
            double d[2] = {7, 4};
            cairo_set_dash(cr, d, 2, 0);
        }
        cairo_move_to(cr, b.x + 8, yy);
        cairo_line_to(cr, b.x + 32, yy);
        cairo_stroke(cr);
        cairo_set_dash(cr, NULL, 0, 0);
        cairo_arc(cr, b.x + 20, yy, 3, 0, 2 * PI);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        text_at(cr, b.x + 40, yy, 0, 0.5, names[i]);
    }
}

int soma_plot_curves(const char *path, const double *loss, const double *train_acc, const double *test_acc,
                     size_t n, char *err, size_t errlen) {
    if (!path || !*path) return fail(err, errlen, SOMA_STATUS_INVALID, path, "no output path");
    if (!loss || !train_acc) return fail(err, errlen, SOMA_STATUS_INVALID, path, "no loss or accuracy data");
    if (n == 0) return fail(err, errlen, SOMA_STATUS_INVALID, path, "no epochs to plot");

    const int W = 900, H = 400;
    cairo_surface_t *s;
    cairo_t *cr;
    if (canvas(W, H, &s, &cr)) return fail(err, errlen, SOMA_STATUS_NOMEM, path, "cannot create a %dx%d image", W, H);

    cairo_set_source_rgb(cr, 0, 0, 0);
    set_font(cr, 16, 1);
    text_at(cr, W / 2.0, 14, 0.5, 0, "training curves");

    /* Epochs are numbered 1..n; half an epoch of margin on each side keeps
     * the end markers off the frame (and gives n == 1 a real range). */
    axis ex = {0.5, (double)n + 0.5, 0, 0};
    axis_ticks(&ex, 6, 1);
    if (ex.t0 < 1) ex.t0 = 1;

    rect pl = {72, 62, 450 - 72 - 22, H - 62 - 58};
    rect pa = {450 + 72, 62, 450 - 72 - 22, H - 62 - 58};
    axis ly = value_axis(loss, NULL, n, 0, INFINITY);
    axis ay = value_axis(train_acc, test_acc, n, 0, 1);

    const rect *panels[2] = {&pl, &pa};
    const axis *ys[2] = {&ly, &ay};
    const char *names[2] = {"loss", "accuracy"};
    for (int p = 0; p < 2; p++) {
        double yw = grid_ticks(cr, panels[p], &ex, ys[p], 11);
        cairo_set_source_rgb(cr, 0, 0, 0);
        set_font(cr, 13, 1);
        text_at(cr, panels[p]->x + panels[p]->w / 2, panels[p]->y - 10, 0.5, 1, names[p]);
        axis_titles(cr, panels[p], "epoch", names[p], yw);
    }
    draw_series(cr, &pl, &ex, &ly, loss, n, C_LOSS, 0);
    draw_series(cr, &pa, &ex, &ay, train_acc, n, C_TRAIN, 0);
    if (test_acc) draw_series(cr, &pa, &ex, &ay, test_acc, n, C_TEST, 1);
    frame(cr, &pl);
    frame(cr, &pa);
    legend(cr, &pa, &ex, &ay, train_acc, test_acc, n);
    return finish(s, cr, path, err, errlen);
}

/* ------------------------------------------------------------- raster */

/* Fills pixel rectangle [x0,x1) x [y0,y1) of an ARGB32 buffer, clipped to
 * the plot box c. */
static void fill_px(uint32_t *px, int stride32, int x0, int y0, int x1, int y1, const int c[4], uint32_t argb) {
    if (x0 < c[0]) x0 = c[0];
    if (y0 < c[1]) y0 = c[1];
    if (x1 > c[2]) x1 = c[2];
    if (y1 > c[3]) y1 = c[3];
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) px[(size_t)y * (size_t)stride32 + (size_t)x] = argb;
}

int soma_plot_raster(const char *path, const uint8_t *spikes, size_t T, size_t B, size_t N, const char *title,
                     char *err, size_t errlen) {
    if (!path || !*path) return fail(err, errlen, SOMA_STATUS_INVALID, path, "no output path");
    if (!spikes) return fail(err, errlen, SOMA_STATUS_INVALID, path, "no spike data");
    if (T == 0 || B == 0 || N == 0)
        return fail(err, errlen, SOMA_STATUS_INVALID, path, "empty raster (T=%zu, B=%zu, N=%zu)", T, B, N);
    if (B > SIZE_MAX / N || T > SIZE_MAX / (B * N))
        return fail(err, errlen, SOMA_STATUS_INVALID, path, "raster size overflows (T=%zu, B=%zu, N=%zu)", T, B, N);

    const size_t nb = B < 4 ? B : 4;
    const int W = 900, TOP = 44, PH = 215;
    const int H = TOP + (int)nb * PH + 6;
    cairo_surface_t *s;
    cairo_t *cr;
    if (canvas(W, H, &s, &cr)) return fail(err, errlen, SOMA_STATUS_NOMEM, path, "cannot create a %dx%d image", W, H);

    char buf[160];
    cairo_set_source_rgb(cr, 0, 0, 0);
    set_font(cr, 16, 1);
    if (B > nb) snprintf(buf, sizeof buf, "%s (first %zu of %zu samples)", title ? title : "spike raster", nb, B);
    else snprintf(buf, sizeof buf, "%s", title ? title : "spike raster");
    text_at(cr, W / 2.0, 14, 0.5, 0, buf);

    /* Step t and neuron i each own a unit cell centred on their index, so
     * axes run from -0.5 to count - 0.5; neuron 0 sits at the bottom. */
    axis tx = {-0.5, (double)T - 0.5, 0, 0}, ny = {-0.5, (double)N - 0.5, 0, 0};
    axis_ticks(&tx, 8, 1);
    axis_ticks(&ny, 4, 1);

    for (size_t b = 0; b < nb; b++) {
        double top = TOP + (double)b * PH;
        rect r = {72, top + 26, W - 72 - 22, PH - 26 - 52};
        double yw = grid_ticks(cr, &r, &tx, &ny, 11);

        /* marks: a cell-sized rectangle, shrunk to leave gaps between
         * neighbours and capped so sparse rasters read as dots, never
         * thinner than one pixel so dense ones still show every spike */
        double cw = r.w / (double)T, ch = r.h / (double)N;
        double mw = fmax(1.0, fmin(4.0, round(cw * 0.7))), mh = fmax(1.0, fmin(4.0, round(ch * 0.7)));
        int clip[4] = {(int)r.x + 1, (int)r.y + 1, (int)(r.x + r.w), (int)(r.y + r.h)};
        cairo_surface_flush(s);
        uint32_t *px = (uint32_t *)cairo_image_surface_get_data(s);
        int stride32 = cairo_image_surface_get_stride(s) / 4;
        size_t count = 0;
        for (size_t t = 0; t < T; t++) {
            const uint8_t *row = spikes + (t * B + b) * N;
            int x0 = (int)floor(r.x + ((double)t + 0.5) * cw - mw / 2 + 0.5);
            for (size_t i = 0; i < N; i++) {
                if (!row[i]) continue;
                count++;
                int y0 = (int)floor(r.y + r.h - ((double)i + 0.5) * ch - mh / 2 + 0.5);
                fill_px(px, stride32, x0, y0, x0 + (int)mw, y0 + (int)mh, clip, 0xFF141414u);
            }
        }
        cairo_surface_mark_dirty(s);

        frame(cr, &r);
        cairo_set_source_rgb(cr, 0, 0, 0);
        set_font(cr, 13, 1);
        snprintf(buf, sizeof buf, "sample %zu", b);
        text_at(cr, r.x + r.w / 2, r.y - 9, 0.5, 1, buf);
        cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
        set_font(cr, 11, 0);
        snprintf(buf, sizeof buf, "%zu spike%s", count, count == 1 ? "" : "s");
        text_at(cr, r.x + r.w, r.y - 9, 1, 1, buf);
        axis_titles(cr, &r, "time step", "neuron", yw);
    }
    return finish(s, cr, path, err, errlen);
}
