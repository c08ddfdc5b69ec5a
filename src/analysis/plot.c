/* plot.c — PNG figures of a run, drawn with cairo: training curves (loss
 * and accuracy per epoch) and spike rasters of the trainer; for the
 * simulator, a raster of populations over time with the population rates
 * under it, and a bar chart of mean rates against reference values.
 *
 * All plots share a small axis toolkit (nice tick steps, framed panels with
 * grid, tick labels and axis titles). Rasters can hold millions of cells
 * (T ~ 1000 steps x N ~ thousands of neurons x 4 samples; 1e7 spikes of a
 * simulated microcircuit), so their marks are written straight into the
 * image buffer rather than as one cairo path per spike. Files are written atomically: the PNG goes to PATH.tmp.<pid> and is
 * renamed onto PATH only once complete, so a failed write never destroys an
 * earlier plot. */
#define _POSIX_C_SOURCE 200809L
#include "analysis/analysis.h"
#include "core/err.h"

#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const double PI = 3.14159265358979323846;

/* ------------------------------------------------------- atomic write */

static cairo_status_t png_write_cb(void *closure, const unsigned char *data, unsigned int length) {
    FILE *f = closure;
    return fwrite(data, 1, length, f) == length ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_WRITE_ERROR;
}

/* Writes the surface as PNG to PATH.tmp.<pid>, then renames it onto path. */
static int write_png_atomic(cairo_surface_t *s, const char *path, char *err, size_t errlen) {
    size_t len = strlen(path) + 32;
    char *tmp = malloc(len);
    if (!tmp) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: out of memory", path);
    snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());

    char why[128] = "";
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        strerror_r(errno, why, sizeof why);
        free(tmp);
        return soma__errf(err, errlen, SOMA_STATUS_IO, "%s: cannot create file: %s", path, why);
    }
    cairo_status_t cs = cairo_surface_write_to_png_stream(s, png_write_cb, f);
    int werr = errno;
    /* fsync before the rename: after a crash PATH is the old file or the whole new one */
    int flush_bad = fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0;
    if (flush_bad) werr = errno;
    int close_bad = fclose(f) != 0;
    if (close_bad && !flush_bad) werr = errno;
    if (cs != CAIRO_STATUS_SUCCESS || flush_bad || close_bad) {
        remove(tmp);
        free(tmp);
        if (cs == CAIRO_STATUS_NO_MEMORY) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: out of memory", path);
        strerror_r(werr ? werr : EIO, why, sizeof why);
        return soma__errf(err, errlen, SOMA_STATUS_IO, "%s: write failed: %s", path, why);
    }
    if (rename(tmp, path) != 0) {
        strerror_r(errno, why, sizeof why);
        remove(tmp);
        free(tmp);
        return soma__errf(err, errlen, SOMA_STATUS_IO, "%s: cannot rename temporary file: %s", path, why);
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

/* Grid, tick marks and tick labels (x labels only if xlabels: a panel
 * stacked over another with the same time axis leaves them to the lower
 * one); returns the widest y label (pixels) so the y axis title can stand
 * clear of it. An axis whose t0 is past hi (e.g. INFINITY) gets no ticks. */
static double grid_ticks_opt(cairo_t *cr, const rect *r, const axis *x, const axis *y, double label_size,
                             int xlabels) {
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
        if (!xlabels) continue;
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

static double grid_ticks(cairo_t *cr, const rect *r, const axis *x, const axis *y, double label_size) {
    return grid_ticks_opt(cr, r, x, y, label_size, 1);
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
        rc = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: drawing failed: %s", path,
                        cairo_status_to_string(cairo_status(cr)));
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

/* A legend's background: near-opaque white with a grey border. */
static void legend_box(cairo_t *cr, const rect *b) {
    cairo_set_source_rgba(cr, 1, 1, 1, 0.9);
    cairo_rectangle(cr, b->x, b->y, b->w, b->h);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
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
    legend_box(cr, &b);
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
    if (!path || !*path)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: no output path", path ? path : "(null)");
    if (!loss || !train_acc) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: no loss or accuracy data", path);
    if (n == 0) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: no epochs to plot", path);

    const int W = 900, H = 400;
    cairo_surface_t *s;
    cairo_t *cr;
    if (canvas(W, H, &s, &cr))
        return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: cannot create a %dx%d image", path, W, H);

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
    if (!path || !*path)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: no output path", path ? path : "(null)");
    if (!spikes) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: no spike data", path);
    if (T == 0 || B == 0 || N == 0)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: empty raster (T=%zu, B=%zu, N=%zu)", path, T, B, N);
    if (B > SIZE_MAX / N || T > SIZE_MAX / (B * N))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: raster size overflows (T=%zu, B=%zu, N=%zu)", path, T,
                          B, N);

    const size_t nb = B < 4 ? B : 4;
    const int W = 900, TOP = 44, PH = 215;
    const int H = TOP + (int)nb * PH + 6;
    cairo_surface_t *s;
    cairo_t *cr;
    if (canvas(W, H, &s, &cr))
        return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: cannot create a %dx%d image", path, W, H);

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

/* ------------------------------------------------- simulator raster */

/* Population colours: matplotlib's tab10, cycled past ten. Each has a
 * channel well below the grid's grey, so marks never vanish into it. */
static const rgb PALETTE[10] = {{0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173},
                                {0.839, 0.153, 0.157}, {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294},
                                {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498}, {0.737, 0.741, 0.133},
                                {0.090, 0.745, 0.812}};

static uint32_t argb_of(rgb c) {
    return 0xFF000000u | (uint32_t)lround(c.r * 255) << 16 | (uint32_t)lround(c.g * 255) << 8 |
           (uint32_t)lround(c.b * 255);
}

static const char *pop_name(const char *const *names, size_t p, char *buf, size_t len) {
    if (names && names[p]) return names[p];
    snprintf(buf, len, "pop %zu", p);
    return buf;
}

/* Width in pixels of the widest population name in the current font. */
static double widest_name(cairo_t *cr, const char *const *names, size_t npops) {
    char nb[32];
    double w = 0;
    for (size_t p = 0; p < npops; p++) {
        cairo_text_extents_t te;
        cairo_text_extents(cr, pop_name(names, p, nb, sizeof nb), &te);
        w = fmax(w, te.x_advance);
    }
    return w;
}

/* The time window [w0, w1) ms marked on a raster's panels (nothing when
 * w1 <= w0): a light band and a dashed line at each edge inside the axis. */
static void mark_window(cairo_t *cr, const rect *r, const axis *tx, double w0, double w1) {
    if (!(w1 > w0)) return;
    double a = fmax(w0, tx->lo), b = fmin(w1, tx->hi);
    if (!(b > a)) return;
    double x0 = map_x(r, tx, a), x1 = map_x(r, tx, b);
    cairo_save(cr);
    cairo_rectangle(cr, r->x, r->y, r->w, r->h);
    cairo_clip(cr);
    cairo_set_source_rgba(cr, 1.0, 0.80, 0.10, 0.16);
    cairo_rectangle(cr, x0, r->y, x1 - x0, r->h);
    cairo_fill(cr);
    static const double dash[2] = {5, 3};
    cairo_set_dash(cr, dash, 2, 0);
    cairo_set_line_width(cr, 1.5);
    cairo_set_source_rgb(cr, 0.80, 0.10, 0.10);
    if (w0 >= tx->lo) cairo_move_to(cr, floor(x0) + 0.5, r->y), cairo_line_to(cr, floor(x0) + 0.5, r->y + r->h);
    if (w1 <= tx->hi) cairo_move_to(cr, floor(x1) + 0.5, r->y), cairo_line_to(cr, floor(x1) + 0.5, r->y + r->h);
    cairo_stroke(cr);
    cairo_restore(cr);
}

static int sim_raster(const char *path, const soma_spike *sp, size_t n, size_t npops, const char *const *names,
                      const uint32_t *first, const size_t *size, double dt_ms, uint64_t step0, uint64_t step1,
                      size_t max_per_pop, double bin_ms, double w0_ms, double w1_ms, char *err, size_t errlen) {
    if (!path || !*path)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: no output path", path ? path : "(null)");
    if (n && !sp) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: no spike data", path);
    if (npops == 0 || !first || !size) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: no populations", path);
    if (!(dt_ms > 0) || !isfinite(dt_ms))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: time step %g ms is not positive", path, dt_ms);
    if (step1 <= step0)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: empty time window (steps %llu to %llu)", path,
                          (unsigned long long)step0, (unsigned long long)step1);
    uint64_t wb = soma__whole_steps(bin_ms, dt_ms);
    if (!wb)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: rate bin %g ms is under half a time step (%g ms)",
                          path, bin_ms, dt_ms);
    for (size_t p = 0; p < npops; p++)
        if (size[p] == 0 || (uint64_t)first[p] + size[p] > (uint64_t)UINT32_MAX + 1)
            return soma__errf(err, errlen, SOMA_STATUS_INVALID,
                              "%s: population %zu has a bad id range (first %u, size %zu)", path, p, first[p], size[p]);

    const int W = 900, H = 720, TOP = 44;
    int rc = SOMA_STATUS_OK;
    cairo_surface_t *s = NULL;
    cairo_t *cr = NULL;
    double *rate = NULL;
    /* Populations ordered by first id, for a binary search per spike
     * (insertion sort: qsort would need a global for the key array, and
     * networks have few populations). */
    size_t *order = malloc(npops * sizeof *order), *row0 = malloc(npops * sizeof *row0);
    if (!order || !row0) {
        rc = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (size_t p = 0; p < npops; p++) {
        size_t k = p;
        for (; k > 0 && first[order[k - 1]] > first[p]; k--) order[k] = order[k - 1];
        order[k] = p;
    }
    for (size_t k = 1; k < npops; k++)
        if ((uint64_t)first[order[k - 1]] + size[order[k - 1]] > first[order[k]]) {
            rc = soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: populations %zu and %zu overlap", path, order[k - 1],
                            order[k]);
            goto done;
        }
    /* Pixel rows of the raster go to at most max_per_pop neurons of each
     * population; populations sit top down in the order given. */
    size_t rows = 0;
    for (size_t p = 0; p < npops; p++) {
        row0[p] = rows;
        rows += max_per_pop && size[p] > max_per_pop ? max_per_pop : size[p];
    }

    /* Rate bins: whole steps from step0 on, widened to a multiple of the
     * asked width when there would be more bins than pixels. */
    uint64_t span = step1 - step0, nbins = (span + wb - 1) / wb;
    const uint64_t max_bins = 780;
    if (nbins > max_bins) { /* by a 1-2-5 factor, so bins stay round numbers of ms */
        uint64_t need = (nbins + max_bins - 1) / max_bins, f = 1;
        while (f < need && 2 * f < need && 5 * f < need) f *= 10;
        wb *= f >= need ? f : 2 * f >= need ? 2 * f : 5 * f;
        nbins = (span + wb - 1) / wb;
    }
    rate = calloc(npops * (size_t)nbins, sizeof *rate);
    if (!rate) {
        rc = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (canvas(W, H, &s, &cr)) {
        s = NULL;
        cr = NULL;
        rc = soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: cannot create a %dx%d image", path, W, H);
        goto done;
    }

    /* left margin wide enough for the longest population name */
    char nb[32], buf[160];
    set_font(cr, 12, 1);
    double namew = widest_name(cr, names, npops);
    double L = fmin(220.0, fmax(72.0, ceil(namew) + 22));
    rect rr = {L, TOP + 22, W - L - 22, 420}, rh = {L, rr.y + rr.h + 34, W - L - 22, H - (rr.y + rr.h + 34) - 52};
    axis tx = {(double)step0 * dt_ms, (double)step1 * dt_ms, 0, 0};
    axis_ticks(&tx, 8, 0);
    axis none = {0, 1, INFINITY, 1}; /* no ticks: the raster's y axis carries names */
    grid_ticks_opt(cr, &rr, &tx, &none, 11, 0);

    /* spikes: one pass, marks written straight into the image */
    double cw = rr.w / (double)span, ch = rr.h / (double)(rows ? rows : 1);
    /* at least two pixels wide, so that a lone spike in a sparse raster
     * still catches the eye */
    int mw = (int)fmax(2.0, fmin(3.0, round(cw * 0.7))), mh = (int)fmax(1.0, fmin(4.0, round(ch * 0.7)));
    int clip[4] = {(int)rr.x + 1, (int)rr.y + 1, (int)(rr.x + rr.w), (int)(rr.y + rr.h)};
    cairo_surface_flush(s);
    uint32_t *px = (uint32_t *)cairo_image_surface_get_data(s);
    int stride32 = cairo_image_surface_get_stride(s) / 4;
    size_t a = n ? soma__spike_lower_bound(sp, n, step0) : 0, b = n ? soma__spike_lower_bound(sp, n, step1) : 0;
    uint64_t shown = 0, in_pops = 0;
    int unsorted = 0;
    for (size_t i = a; i < b; i++) {
        if (i > a && sp[i].step < sp[i - 1].step) { unsorted = 1; break; }
        /* the population holding the id: last one starting at or below it */
        size_t lo = 0, hi = npops;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (first[order[mid]] <= sp[i].id) lo = mid + 1;
            else hi = mid;
        }
        if (lo == 0) continue;
        size_t p = order[lo - 1];
        size_t j = sp[i].id - first[p];
        if (j >= size[p]) continue;
        in_pops++;
        uint64_t k = (sp[i].step - step0) / wb;
        rate[p * nbins + k] += 1;
        if (max_per_pop && j >= max_per_pop) continue;
        shown++;
        int x0 = (int)floor(rr.x + ((double)(sp[i].step - step0) + 0.5) * cw - mw / 2.0 + 0.5);
        int y0 = (int)floor(rr.y + ((double)(row0[p] + j) + 0.5) * ch - mh / 2.0 + 0.5);
        fill_px(px, stride32, x0, y0, x0 + mw, y0 + mh, clip, argb_of(PALETTE[p % 10]));
    }
    cairo_surface_mark_dirty(s);
    if (unsorted) {
        rc = soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: spikes are not sorted by step", path);
        goto done;
    }

    /* population bands: separators and names */
    cairo_set_line_width(cr, 1);
    for (size_t p = 0; p < npops; p++) {
        size_t nr = max_per_pop && size[p] > max_per_pop ? max_per_pop : size[p];
        double y0 = rr.y + (double)row0[p] * ch, y1 = y0 + (double)nr * ch;
        if (p) {
            cairo_set_source_rgb(cr, 0.55, 0.55, 0.55);
            cairo_move_to(cr, rr.x, floor(y0) + 0.5);
            cairo_line_to(cr, rr.x + rr.w, floor(y0) + 0.5);
            cairo_stroke(cr);
        }
        rgb c = PALETTE[p % 10];
        cairo_set_source_rgb(cr, c.r * 0.8, c.g * 0.8, c.b * 0.8); /* a shade darker reads better as text */
        set_font(cr, 12, 1);
        text_at(cr, rr.x - 8, (y0 + y1) / 2, 1, 0.5, pop_name(names, p, nb, sizeof nb));
    }
    mark_window(cr, &rr, &tx, w0_ms, w1_ms);
    frame(cr, &rr);

    cairo_set_source_rgb(cr, 0, 0, 0);
    set_font(cr, 16, 1);
    text_at(cr, W / 2.0, 14, 0.5, 0, "spike raster");
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    set_font(cr, 11, 0);
    snprintf(buf, sizeof buf, "%llu spike%s", (unsigned long long)in_pops, in_pops == 1 ? "" : "s");
    text_at(cr, rr.x + rr.w, rr.y - 8, 1, 1, buf);
    int cut = 0;
    for (size_t p = 0; p < npops; p++) cut |= max_per_pop && size[p] > max_per_pop;
    if (cut) {
        snprintf(buf, sizeof buf, "first %zu neurons of each population shown (%llu spikes)", max_per_pop,
                 (unsigned long long)shown);
        text_at(cr, rr.x, rr.y - 8, 0, 1, buf);
    }

    /* rate histogram: spikes / (neurons * bin length), the last bin by its
     * real length; one step line per population in its colour */
    double top_rate = 0;
    for (size_t p = 0; p < npops; p++)
        for (uint64_t k = 0; k < nbins; k++) {
            uint64_t len = k + 1 < nbins ? wb : span - k * wb;
            double *v = &rate[p * nbins + k];
            *v /= (double)size[p] * (double)len * dt_ms * 1e-3;
            top_rate = fmax(top_rate, *v);
        }
    double yr[2] = {0, top_rate};
    axis ry = value_axis(yr, NULL, 2, 0, INFINITY);
    double yw = grid_ticks(cr, &rh, &tx, &ry, 11);
    cairo_save(cr);
    cairo_rectangle(cr, rh.x, rh.y, rh.w, rh.h);
    cairo_clip(cr);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_MITER);
    cairo_set_line_width(cr, npops == 1 ? 1.2 : 1.5);
    for (size_t p = 0; p < npops; p++) {
        rgb c = PALETTE[p % 10];
        double base = map_y(&rh, &ry, 0);
        cairo_new_path(cr);
        for (uint64_t k = 0; k < nbins; k++) {
            double t0 = (double)(step0 + k * wb) * dt_ms;
            double t1 = (double)(k + 1 < nbins ? step0 + (k + 1) * wb : step1) * dt_ms;
            double y = map_y(&rh, &ry, rate[p * nbins + k]);
            cairo_line_to(cr, map_x(&rh, &tx, t0), y); /* (a move for the first point) */
            cairo_line_to(cr, map_x(&rh, &tx, t1), y);
        }
        if (npops == 1) { /* a lone population reads best as a filled histogram */
            cairo_line_to(cr, map_x(&rh, &tx, (double)step1 * dt_ms), base);
            cairo_line_to(cr, map_x(&rh, &tx, (double)step0 * dt_ms), base);
            cairo_close_path(cr);
            cairo_set_source_rgba(cr, c.r, c.g, c.b, 0.35);
            cairo_fill_preserve(cr);
        }
        cairo_set_source_rgb(cr, c.r, c.g, c.b);
        cairo_stroke(cr);
    }
    cairo_restore(cr);
    mark_window(cr, &rh, &tx, w0_ms, w1_ms);
    frame(cr, &rh);
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    set_font(cr, 11, 0);
    snprintf(buf, sizeof buf, "bins of %g ms", (double)wb * dt_ms);
    text_at(cr, rh.x + rh.w, rh.y - 8, 1, 1, buf);
    cairo_set_source_rgb(cr, 0, 0, 0);
    set_font(cr, 13, 1);
    text_at(cr, rh.x, rh.y - 8, 0, 1, "population rate");
    axis_titles(cr, &rh, "time (ms)", "rate (Hz)", yw);
    rc = finish(s, cr, path, err, errlen);
    s = NULL;
    cr = NULL;

done:
    if (cr) cairo_destroy(cr);
    if (s) cairo_surface_destroy(s);
    free(order);
    free(row0);
    free(rate);
    return rc;
}

int soma_plot_sim_raster(const char *path, const soma_spike *sp, size_t n, size_t npops, const char *const *names,
                         const uint32_t *first, const size_t *size, double dt_ms, uint64_t step0, uint64_t step1,
                         size_t max_per_pop, double bin_ms, char *err, size_t errlen) {
    return sim_raster(path, sp, n, npops, names, first, size, dt_ms, step0, step1, max_per_pop, bin_ms, 0, 0, err,
                      errlen);
}

int soma_plot_sim_raster_window(const char *path, const soma_spike *sp, size_t n, size_t npops,
                                const char *const *names, const uint32_t *first, const size_t *size, double dt_ms,
                                uint64_t step0, uint64_t step1, size_t max_per_pop, double bin_ms, double w0_ms,
                                double w1_ms, char *err, size_t errlen) {
    if (!(w1_ms > w0_ms) || !isfinite(w0_ms) || !isfinite(w1_ms))
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: window %g to %g ms is empty", path ? path : "(null)",
                          w0_ms, w1_ms);
    return sim_raster(path, sp, n, npops, names, first, size, dt_ms, step0, step1, max_per_pop, bin_ms, w0_ms, w1_ms,
                      err, errlen);
}

/* ---------------------------------------------------------- rate bars */

int soma_plot_rates(const char *path, size_t npops, const char *const *names, const double *rate_hz,
                    const double *ref_hz, char *err, size_t errlen) {
    if (!path || !*path)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: no output path", path ? path : "(null)");
    if (npops == 0 || !rate_hz) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: no rates to plot", path);
    double top = 0;
    for (size_t p = 0; p < npops; p++) {
        if (!isnan(rate_hz[p]) && !(rate_hz[p] >= 0 && isfinite(rate_hz[p])))
            return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: rate of population %zu (%g Hz) is not a rate",
                              path, p, rate_hz[p]);
        if (ref_hz && !isnan(ref_hz[p]) && !(ref_hz[p] >= 0 && isfinite(ref_hz[p])))
            return soma__errf(err, errlen, SOMA_STATUS_INVALID,
                              "%s: reference rate of population %zu (%g Hz) is not a rate", path, p, ref_hz[p]);
        if (!isnan(rate_hz[p])) top = fmax(top, rate_hz[p]);
        if (ref_hz && !isnan(ref_hz[p])) top = fmax(top, ref_hz[p]);
    }

    const int W = 900, H = 420, TOP = 44;
    cairo_surface_t *s;
    cairo_t *cr;
    if (canvas(W, H, &s, &cr))
        return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: cannot create a %dx%d image", path, W, H);
    char nb[32], buf[64];

    /* Names go under their bars; when the widest does not fit its slot they
     * are turned 45 degrees, and the plot leaves room below for them. */
    const double L = 72, R = 22, slot = (W - L - R) / (double)npops;
    set_font(cr, 12, 0);
    double namew = widest_name(cr, names, npops);
    int slanted = namew > slot - 6;
    double below = slanted ? fmin(130.0, namew * 0.71 + 14) : 22;
    rect r = {L, TOP + 8, W - L - R, H - TOP - 8 - below - 34};

    /* The value axis starts at 0 (bars measure from it) and leaves ~12 %
     * headroom for the numbers printed over the bars. */
    double yr[2] = {0, top * 1.12};
    axis y = value_axis(yr, NULL, 2, 0, INFINITY);
    axis x = {0, (double)npops, INFINITY, 1}; /* categories: no numeric ticks */
    double yw = grid_ticks(cr, &r, &x, &y, 11);

    double bw = fmin(slot * 0.7, 90.0), base = map_y(&r, &y, 0);
    for (size_t p = 0; p < npops; p++) {
        double cx = r.x + (p + 0.5) * slot;
        rgb c = PALETTE[p % 10];
        double v = rate_hz[p];
        if (!isnan(v)) {
            double yv = map_y(&r, &y, v);
            cairo_set_source_rgb(cr, c.r, c.g, c.b);
            cairo_rectangle(cr, cx - bw / 2, yv, bw, base - yv);
            cairo_fill(cr);
        }
        if (ref_hz && !isnan(ref_hz[p])) {
            /* a black bar wider than the bar itself, so it shows on either side */
            double yv = floor(map_y(&r, &y, ref_hz[p])) + 0.5;
            cairo_set_source_rgb(cr, 0, 0, 0);
            cairo_set_line_width(cr, 2.5);
            cairo_move_to(cr, cx - bw / 2 - 5, yv);
            cairo_line_to(cr, cx + bw / 2 + 5, yv);
            cairo_stroke(cr);
        }
        /* the value over its bar (above the reference mark if that is higher) */
        if (isnan(v)) snprintf(buf, sizeof buf, "n/a");
        else snprintf(buf, sizeof buf, "%.*f", v >= 100 ? 0 : v >= 10 ? 1 : v >= 1 ? 2 : 3, v); /* 3 digits */
        double lift = isnan(v) ? 0 : v;
        double ytext = map_y(&r, &y, lift) - 5;
        if (ref_hz && !isnan(ref_hz[p]) && fabs(map_y(&r, &y, ref_hz[p]) - map_y(&r, &y, lift)) < 14)
            ytext = fmin(ytext, map_y(&r, &y, ref_hz[p]) - 6);
        cairo_set_source_rgb(cr, 0, 0, 0);
        set_font(cr, 11, 0);
        cairo_text_extents_t te;
        cairo_text_extents(cr, buf, &te);
        if (te.x_advance < slot - 2) text_at(cr, cx, ytext, 0.5, 1, buf);
        else { /* too many bars for level numbers: stand them up */
            cairo_save(cr);
            cairo_translate(cr, cx, ytext);
            cairo_rotate(cr, -PI / 2);
            text_at(cr, 0, 0, 0, 0.5, buf);
            cairo_restore(cr);
        }
        /* the name under the bar */
        set_font(cr, 12, 0);
        const char *name = pop_name(names, p, nb, sizeof nb);
        if (!slanted) text_at(cr, cx, r.y + r.h + 8, 0.5, 0, name);
        else {
            cairo_save(cr);
            cairo_translate(cr, cx + 4, r.y + r.h + 8);
            cairo_rotate(cr, -PI / 4);
            text_at(cr, 0, 0, 1, 0.5, name);
            cairo_restore(cr);
        }
    }
    frame(cr, &r);
    axis_titles(cr, &r, "", "rate (Hz)", yw);
    cairo_set_source_rgb(cr, 0, 0, 0);
    set_font(cr, 16, 1);
    text_at(cr, W / 2.0, 14, 0.5, 0, "mean rate per population");

    if (ref_hz) { /* legend, top left or top right, where the bars stay lower */
        double lw = 118, lh = 46, m = 8;
        double hl = 0, hr = 0;
        for (size_t p = 0; p < npops; p++) {
            double cx = r.x + (p + 0.5) * slot, v = fmax(isnan(rate_hz[p]) ? 0 : rate_hz[p],
                                                         isnan(ref_hz[p]) ? 0 : ref_hz[p]);
            if (cx - slot / 2 < r.x + m + lw) hl = fmax(hl, v);
            if (cx + slot / 2 > r.x + r.w - m - lw) hr = fmax(hr, v);
        }
        rect b = {hr <= hl ? r.x + r.w - lw - m : r.x + m, r.y + m, lw, lh};
        legend_box(cr, &b);
        for (int k = 0; k < 3; k++) { /* bars take their population's colour: show a few */
            rgb c = PALETTE[k];
            cairo_set_source_rgb(cr, c.r, c.g, c.b);
            cairo_rectangle(cr, b.x + 10 + 7 * k, b.y + 7, 7, 12);
            cairo_fill(cr);
        }
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_set_line_width(cr, 2.5);
        cairo_move_to(cr, b.x + 8, b.y + 33.5);
        cairo_line_to(cr, b.x + 32, b.y + 33.5);
        cairo_stroke(cr);
        set_font(cr, 12, 0);
        text_at(cr, b.x + 40, b.y + 13, 0, 0.5, "simulated");
        text_at(cr, b.x + 40, b.y + 33.5, 0, 0.5, "reference");
    }
    return finish(s, cr, path, err, errlen);
}

/* ------------------------------------------------ heat map and grouped bars */

int soma_plot_heatmap(const char *path, const char *title, const char *xlabel, const double *v, size_t rows,
                      size_t cols, const char *const *row_names, double range, char *err, size_t errlen) {
    if (!path || !*path)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: no output path", path ? path : "(null)");
    if (!v || rows == 0 || cols == 0)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: no values to plot (%zu x %zu)", path, rows, cols);
    if (!(range > 0)) { /* the largest finite magnitude */
        range = 0;
        for (size_t i = 0; i < rows * cols; i++)
            if (isfinite(v[i])) range = fmax(range, fabs(v[i]));
        if (!(range > 0)) range = 1;
    }
    const int L = 90, R = 90, TOP = 44, BOT = 56;
    /* a cell is at least one pixel; more than ~1200 columns are averaged into pixels */
    int cw = cols >= 1200 ? 1 : (int)fmax(1.0, floor(1200.0 / (double)cols));
    int pw = cols >= 1200 ? 1200 : (int)(cw * cols);
    int rh = rows > 40 ? 4 : 24;
    int W = L + pw + R, H = TOP + (int)rows * rh + BOT;
    cairo_surface_t *s;
    cairo_t *cr;
    if (canvas(W, H, &s, &cr))
        return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: cannot create a %dx%d image", path, W, H);
    cairo_surface_flush(s);
    uint32_t *px = (uint32_t *)cairo_image_surface_get_data(s);
    int stride32 = cairo_image_surface_get_stride(s) / 4;
    for (size_t r = 0; r < rows; r++)
        for (int x = 0; x < pw; x++) {
            /* the columns this pixel column covers, averaged */
            size_t c0 = cols >= 1200 ? (size_t)x * cols / 1200 : (size_t)(x / cw);
            size_t c1 = cols >= 1200 ? ((size_t)x + 1) * cols / 1200 : c0 + 1;
            if (c1 <= c0) c1 = c0 + 1;
            double sum = 0;
            size_t k = 0;
            for (size_t c = c0; c < c1 && c < cols; c++)
                if (isfinite(v[r * cols + c])) sum += v[r * cols + c], k++;
            double t = k ? fmax(-1.0, fmin(1.0, sum / (double)k / range)) : 0; /* -1 blue .. 0 white .. 1 red */
            double cr_ = t > 0 ? 1 : 1 + t, cg = 1 - fabs(t), cb = t < 0 ? 1 : 1 - t;
            uint32_t argb = 0xff000000u | (uint32_t)(cr_ * 255) << 16 | (uint32_t)(cg * 255) << 8 | (uint32_t)(cb * 255);
            for (int y = 0; y < rh; y++) px[(TOP + (int)r * rh + y) * stride32 + L + x] = argb;
        }
    cairo_surface_mark_dirty(s);
    rect r = {L, TOP, pw, (double)rows * rh};
    frame(cr, &r);
    cairo_set_source_rgb(cr, 0, 0, 0);
    set_font(cr, 11, 0);
    char buf[64];
    if (rh >= 10)
        for (size_t i = 0; i < rows; i++) {
            if (row_names && row_names[i]) snprintf(buf, sizeof buf, "%s", row_names[i]);
            else snprintf(buf, sizeof buf, "%zu", i);
            text_at(cr, L - 6, TOP + (i + 0.5) * rh, 1, 0.5, buf);
        }
    set_font(cr, 13, 0);
    text_at(cr, L + pw / 2.0, TOP + rows * rh + 10, 0.5, 0, xlabel ? xlabel : "");
    /* colour bar */
    for (int y = 0; y < 100 && y < (int)(rows * rh); y++) {
        double t = 1 - 2.0 * y / 99.0;
        cairo_set_source_rgb(cr, t > 0 ? 1 : 1 + t, 1 - fabs(t), t < 0 ? 1 : 1 - t);
        cairo_rectangle(cr, L + pw + 14, TOP + y, 14, 1);
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    set_font(cr, 10, 0);
    snprintf(buf, sizeof buf, "%+.3g", range);
    text_at(cr, L + pw + 32, TOP, 0, 0.5, buf);
    snprintf(buf, sizeof buf, "%+.3g", -range);
    text_at(cr, L + pw + 32, TOP + fmin(99, rows * rh - 1), 0, 0.5, buf);
    set_font(cr, 16, 1);
    text_at(cr, W / 2.0, 14, 0.5, 0, title ? title : "");
    return finish(s, cr, path, err, errlen);
}

int soma_plot_bars(const char *path, const char *title, const char *ylabel, size_t ngroups,
                   const char *const *group_names, size_t nseries, const char *const *series_names,
                   const double *values, char *err, size_t errlen) {
    if (!path || !*path)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: no output path", path ? path : "(null)");
    if (!values || ngroups == 0 || nseries == 0 || nseries > 10)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: %zu groups of %zu series; expected at least one group and 1 to 10 series",
                          path, ngroups, nseries);
    double top = 0;
    for (size_t i = 0; i < ngroups * nseries; i++)
        if (isfinite(values[i])) top = fmax(top, values[i]);
    const int W = 960, H = 440, TOP = 44;
    cairo_surface_t *s;
    cairo_t *cr;
    if (canvas(W, H, &s, &cr))
        return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: cannot create a %dx%d image", path, W, H);
    const double L = 72, R = 22, slot = (W - L - R) / (double)ngroups;
    rect r = {L, TOP + 30, W - L - R, H - TOP - 30 - 56};
    double yr[2] = {0, top > 0 ? top * 1.05 : 1};
    axis y = value_axis(yr, NULL, 2, 0, INFINITY);
    axis x = {0, (double)ngroups, INFINITY, 1};
    double yw = grid_ticks(cr, &r, &x, &y, 11);
    double bw = fmin(slot * 0.8 / (double)nseries, 40.0), base = map_y(&r, &y, 0);
    char nb[32];
    for (size_t g = 0; g < ngroups; g++) {
        double cx = r.x + (g + 0.5) * slot;
        for (size_t k = 0; k < nseries; k++) {
            double v = values[k * ngroups + g];
            if (!isfinite(v)) continue;
            rgb c = PALETTE[k % 10];
            double yv = map_y(&r, &y, fmax(v, 0));
            cairo_set_source_rgb(cr, c.r, c.g, c.b);
            cairo_rectangle(cr, cx - bw * nseries / 2 + bw * k, yv, bw * 0.92, base - yv);
            cairo_fill(cr);
        }
        cairo_set_source_rgb(cr, 0, 0, 0);
        set_font(cr, 12, 0);
        text_at(cr, cx, r.y + r.h + 8, 0.5, 0, pop_name(group_names, g, nb, sizeof nb));
    }
    frame(cr, &r);
    axis_titles(cr, &r, "", ylabel ? ylabel : "", yw);
    double lx = L;
    set_font(cr, 12, 0);
    for (size_t k = 0; k < nseries && series_names; k++) { /* legend in a row over the panel */
        rgb c = PALETTE[k % 10];
        cairo_set_source_rgb(cr, c.r, c.g, c.b);
        cairo_rectangle(cr, lx, TOP + 6, 12, 12);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        const char *nm = series_names[k] ? series_names[k] : "";
        text_at(cr, lx + 16, TOP + 12, 0, 0.5, nm);
        cairo_text_extents_t te;
        cairo_text_extents(cr, nm, &te);
        lx += 16 + te.x_advance + 18;
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    set_font(cr, 16, 1);
    text_at(cr, W / 2.0, 14, 0.5, 0, title ? title : "");
    return finish(s, cr, path, err, errlen);
}

/* ---------------------------------------------------------------- path */

int soma_plot_path(const char *path, const char *title, size_t ncols, const char *const *col_names,
                   const size_t *col_size, size_t npaths, const char *const *path_names, const size_t *nodes,
                   char *err, size_t errlen) {
    if (!path || !*path) return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: no output path", path ? path : "(null)");
    if (!ncols || !col_size || (npaths && !nodes) || npaths > 10)
        return soma__errf(err, errlen, SOMA_STATUS_INVALID, "%s: %zu columns and %zu paths; expected at least one column and 0 to 10 paths",
                          path, ncols, npaths);
    const int W = (int)(ncols < 4 ? 640 : 160 * ncols), H = 560, TOP = 70;
    cairo_surface_t *s;
    cairo_t *cr;
    if (canvas(W, H, &s, &cr)) return soma__errf(err, errlen, SOMA_STATUS_NOMEM, "%s: cannot create a %dx%d image", path, W, H);
    const double slot = (double)W / (double)ncols, y0 = TOP + 30, y1 = H - 50;
    char nb[32];
    /* neurons: a column of small grey dots per layer (index 0 at the top) */
    for (size_t c = 0; c < ncols; c++) {
        double cx = (c + 0.5) * slot;
        size_t n = col_size[c] ? col_size[c] : 1;
        double r = fmin(4.0, fmax(0.8, 0.35 * (y1 - y0) / (double)n));
        cairo_set_source_rgb(cr, 0.72, 0.72, 0.72);
        for (size_t i = 0; i < col_size[c]; i++) {
            double y = n == 1 ? (y0 + y1) / 2 : y0 + (y1 - y0) * (double)i / (double)(n - 1);
            cairo_arc(cr, cx, y, r, 0, 2 * PI);
            cairo_fill(cr);
        }
        cairo_set_source_rgb(cr, 0, 0, 0);
        set_font(cr, 13, 1);
        text_at(cr, cx, y0 - 24, 0.5, 0.5, pop_name(col_names, c, nb, sizeof nb));
        set_font(cr, 11, 0);
        snprintf(nb, sizeof nb, "%zu neurons", col_size[c]);
        text_at(cr, cx, y1 + 22, 0.5, 0.5, nb);
    }
    /* paths: joined highlighted nodes, each labelled with its index; later
     * paths shifted a little sideways so that shared nodes stay visible */
    for (size_t p = 0; p < npaths; p++) {
        rgb col = PALETTE[(p * 3) % 10];
        double dx = ((double)p - (double)(npaths - 1) / 2.0) * 10.0;
        double px = 0, py = 0;
        int have = 0;
        for (size_t c = 0; c < ncols; c++) {
            size_t i = nodes[p * ncols + c], n = col_size[c] ? col_size[c] : 1;
            if (i >= col_size[c]) continue;
            double x = (c + 0.5) * slot + dx, y = n == 1 ? (y0 + y1) / 2 : y0 + (y1 - y0) * (double)i / (double)(n - 1);
            cairo_set_source_rgb(cr, col.r, col.g, col.b);
            if (have) {
                cairo_set_line_width(cr, 3.0);
                cairo_move_to(cr, px, py);
                cairo_line_to(cr, x, y);
                cairo_stroke(cr);
            }
            cairo_arc(cr, x, y, 7.0, 0, 2 * PI);
            cairo_fill(cr);
            cairo_set_source_rgb(cr, 0, 0, 0);
            set_font(cr, 11, 1);
            snprintf(nb, sizeof nb, "%zu", i);
            text_at(cr, x + 10, y, 0, 0.5, nb);
            px = x, py = y, have = 1;
        }
    }
    /* legend in a row under the title */
    double lx = 20;
    set_font(cr, 12, 0);
    for (size_t p = 0; p < npaths && path_names; p++) {
        rgb col = PALETTE[(p * 3) % 10];
        cairo_set_source_rgb(cr, col.r, col.g, col.b);
        cairo_rectangle(cr, lx, 40, 12, 12);
        cairo_fill(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        const char *nm = path_names[p] ? path_names[p] : "";
        text_at(cr, lx + 16, 46, 0, 0.5, nm);
        cairo_text_extents_t te;
        cairo_text_extents(cr, nm, &te);
        lx += 16 + te.x_advance + 18;
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    set_font(cr, 15, 1);
    text_at(cr, W / 2.0, 14, 0.5, 0, title ? title : "");
    return finish(s, cr, path, err, errlen);
}
