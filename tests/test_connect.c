/* test_connect.c — the simulator's connectors (src/proj/connect.c):
 *   1. rule names and connector defaults;
 *   2. exact counts where a rule fixes them (all_to_all, one_to_one,
 *      degrees, fixed_total, small_world, scale_free), equal to
 *      soma__connect_expected, and edges numbered 0, 1, 2, ... in order;
 *   3. statistics with bounds from the binomial / multinomial / chi-square
 *      distributions the rules should follow: fixed_probability's count,
 *      row-count variance, column counts and adjacent pairs; the subsets
 *      Floyd's algorithm and Method D draw (every subset equally likely);
 *      the skip distributions of Method D (exact hypergeometric laws of the
 *      smallest and largest index); the Watts-Strogatz ring fraction; the
 *      Barabasi-Albert degree tail P(deg >= d) = m(m+1)/(d(d+1));
 *   4. no autapses when asked, distinct pairs without multapses;
 *   5. determinism: equal sequences for equal keys, different for
 *      different keys, and each row independent of the number of rows;
 *   6. edge-list files: good files (header, comments, blank lines, commas and
 *      blanks, CRLF, weights and delays) and every error with FILE:LINE;
 *   7. parameter checks and their messages, and a callback that stops;
 *   8. speed (printed, not asserted): 1e5 x 1e5 at p = 0.01.
 * All statistical bounds are 5 or 6 standard deviations of the reference
 * law (the keys are fixed, so a pass is reproducible). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proj/connect.h"
#include "soma.h"
#include "testlib.h"

/* ------------------------------------------------------------ collector */
typedef struct edges {
    size_t n, cap;
    uint32_t *pre, *post;
    double *w, *d;
    size_t nw, nd;   /* edges that came with a weight / delay */
    int numbered;    /* every edge number equal to its position */
    uint64_t hash;   /* FNV-1a of the (pre, post, edge) sequence */
    size_t stop_at;  /* return 7 once this many edges are in (0: never) */
} edges;

static void mix(uint64_t *h, uint64_t v) {
    for (int b = 0; b < 8; b++) {
        *h ^= (v >> (8 * b)) & 0xff;
        *h *= 0x100000001b3ull;
    }
}

static int collect(void *u, uint32_t pre, uint32_t post, uint64_t edge, const double *w, const double *d) {
    edges *E = u;
    if (edge != E->n) E->numbered = 0;
    if (E->n == E->cap) {
        E->cap = E->cap ? 2 * E->cap : 1024;
        E->pre = realloc(E->pre, E->cap * sizeof *E->pre);
        E->post = realloc(E->post, E->cap * sizeof *E->post);
        E->w = realloc(E->w, E->cap * sizeof *E->w);
        E->d = realloc(E->d, E->cap * sizeof *E->d);
    }
    E->pre[E->n] = pre;
    E->post[E->n] = post;
    E->w[E->n] = w ? *w : NAN;
    E->d[E->n] = d ? *d : NAN;
    E->nw += w != NULL;
    E->nd += d != NULL;
    mix(&E->hash, pre);
    mix(&E->hash, post);
    mix(&E->hash, edge);
    E->n++;
    return E->stop_at && E->n >= E->stop_at ? 7 : 0;
}

static void reset(edges *E) {
    E->n = E->nw = E->nd = 0;
    E->numbered = 1;
    E->hash = 0xcbf29ce484222325ull;
    E->stop_at = 0;
}

static char err[512];

static int run(const soma_connector *c, size_t a, size_t b, int same, uint64_t key, edges *E) {
    reset(E);
    err[0] = 0;
    return soma__connect_each(c, a, b, same, key, collect, E, err, sizeof err);
}

static void release(edges *E) {
    free(E->pre), free(E->post), free(E->w), free(E->d);
    memset(E, 0, sizeof *E);
}

static soma_connector conn(int rule) {
    soma_connector c;
    soma_connector_default(&c, rule);
    return c;
}

/* 1 if every (pre, post) is distinct; pairs indexed pre * b + post. */
static int distinct(const edges *E, size_t b) {
    uint64_t *k = malloc((E->n + 1) * sizeof *k);
    for (size_t i = 0; i < E->n; i++) k[i] = (uint64_t)E->pre[i] * b + E->post[i];
    int ok = 1;
    /* insertion into an open-addressing table: simple and exact */
    size_t cap = 1;
    while (cap < 2 * E->n + 2) cap <<= 1;
    uint64_t *t = malloc(cap * sizeof *t);
    memset(t, 0xff, cap * sizeof *t);
    for (size_t i = 0; i < E->n && ok; i++) {
        size_t h = (size_t)((k[i] * 0x9e3779b97f4a7c15ull) >> 20) & (cap - 1);
        while (t[h] != UINT64_MAX && t[h] != k[i]) h = (h + 1) & (cap - 1);
        if (t[h] == k[i]) ok = 0;
        t[h] = k[i];
    }
    free(t);
    free(k);
    return ok;
}

static int no_autapse(const edges *E) {
    for (size_t i = 0; i < E->n; i++)
        if (E->pre[i] == E->post[i]) return 0;
    return 1;
}

/* Pearson's chi-square of counts against expectations; the bound used is
 * df + 6 sqrt(2 df) (the chi-square's mean plus six of its sd). */
static double chi2(const double *obs, const double *expct, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (obs[i] - expct[i]) * (obs[i] - expct[i]) / expct[i];
    return s;
}
static double chi2_bound(double df) { return df + 6.0 * sqrt(2.0 * df); }

static double binom(double n, double k) {
    if (k < 0 || k > n) return 0;
    return exp(lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1));
}

static int popcount(unsigned x) {
    int n = 0;
    for (; x; x &= x - 1) n++;
    return n;
}

/* ------------------------------------------------------------ 1. names */
static void test_names(void) {
    const char *names[] = {"all_to_all",      "one_to_one",  "fixed_probability", "fixed_indegree", "fixed_outdegree",
                           "fixed_total",     "small_world", "scale_free",        "file"};
    for (int i = 0; i < 9; i++) {
        CHECK(soma_conn_rule_find(names[i]) == i);
        CHECK(soma_conn_rule_name(i) && strcmp(soma_conn_rule_name(i), names[i]) == 0);
    }
    CHECK(soma_conn_rule_find("pairwise_bernoulli") == -1);
    CHECK(soma_conn_rule_find(NULL) == -1);
    CHECK(soma_conn_rule_name(9) == NULL && soma_conn_rule_name(-1) == NULL);
    CHECK(SOMA_CONN_RULE_FILE == 8 && SOMA_CONN_RULE_SCALE_FREE == 7);
    soma_connector c;
    memset(&c, 0x5a, sizeof c);
    soma_connector_default(&c, SOMA_CONN_RULE_FIXED_INDEGREE);
    CHECK(c.rule == SOMA_CONN_RULE_FIXED_INDEGREE && c.autapses == 1 && c.multapses == 1);
    CHECK(c.p == 0.0 && c.k == 0 && c.n == 0 && c.path == NULL);
}

/* ------------------------------------------- 2. all_to_all, one_to_one */
static void test_simple(edges *E) {
    soma_connector c = conn(SOMA_CONN_RULE_ALL_TO_ALL);
    CHECK(run(&c, 30, 40, 0, 1, E) == 0);
    CHECK(E->n == 1200 && E->numbered && distinct(E, 40) && E->nw == 0 && E->nd == 0);
    CHECK(soma__connect_expected(&c, 30, 40, 0) == 1200.0);
    CHECK(run(&c, 30, 30, 1, 1, E) == 0 && E->n == 900); /* autapses allowed by default */
    c.autapses = 0;
    CHECK(run(&c, 30, 30, 1, 1, E) == 0);
    CHECK(E->n == 870 && no_autapse(E) && distinct(E, 30) && soma__connect_expected(&c, 30, 30, 1) == 870.0);
    CHECK(run(&c, 30, 30, 0, 1, E) == 0 && E->n == 900); /* two populations: nothing is an autapse */

    c = conn(SOMA_CONN_RULE_ONE_TO_ONE);
    CHECK(run(&c, 50, 50, 0, 1, E) == 0 && E->n == 50 && soma__connect_expected(&c, 50, 50, 0) == 50.0);
    int ok = 1;
    for (size_t i = 0; i < E->n; i++) ok &= E->pre[i] == i && E->post[i] == i;
    CHECK(ok);
    CHECK(run(&c, 50, 60, 0, 1, E) == SOMA_STATUS_INVALID && strstr(err, "one_to_one") && strstr(err, "60"));
    c.autapses = 0; /* every synapse would be an autapse */
    CHECK(run(&c, 50, 50, 1, 1, E) == 0 && E->n == 0 && soma__connect_expected(&c, 50, 50, 1) == 0.0);
}

/* --------------------------------------------------- fixed_probability */
static void test_fixed_probability(edges *E) {
    soma_connector c = conn(SOMA_CONN_RULE_FIXED_PROBABILITY);
    /* A: 2000 x 1000 at p = 0.05 */
    const size_t A = 2000, B = 1000;
    const double p = 0.05;
    c.p = p;
    CHECK(run(&c, A, B, 0, 11, E) == 0 && E->numbered);
    double mean = p * A * B, sd = sqrt(A * B * p * (1 - p));
    CHECK_MSG(fabs((double)E->n - mean) < 5 * sd, "count %zu, binomial mean %g sd %g", E->n, mean, sd);
    CHECK(soma__connect_expected(&c, A, B, 0) == mean);
    /* rows in order, columns strictly increasing in a row (so distinct) */
    int sorted = 1;
    for (size_t i = 1; i < E->n; i++)
        sorted &= E->pre[i] > E->pre[i - 1] || (E->pre[i] == E->pre[i - 1] && E->post[i] > E->post[i - 1]);
    CHECK(sorted);
    /* row counts ~ Binomial(B, p): their sample variance within 20 % (5 of
     * its standard errors, sqrt(2/(A-1)) = 3.2 %) of B p (1-p) */
    double *row = calloc(A, sizeof *row), *col = calloc(B, sizeof *col);
    size_t adj = 0;
    for (size_t i = 0; i < E->n; i++) {
        row[E->pre[i]]++, col[E->post[i]]++;
        if (i && E->pre[i] == E->pre[i - 1] && E->post[i] == E->post[i - 1] + 1) adj++;
    }
    double rm = 0, rv = 0;
    for (size_t i = 0; i < A; i++) rm += row[i];
    rm /= A;
    for (size_t i = 0; i < A; i++) rv += (row[i] - rm) * (row[i] - rm);
    rv /= A - 1;
    CHECK_MSG(fabs(rv / (B * p * (1 - p)) - 1) < 0.2, "row-count variance %g, binomial %g", rv, B * p * (1 - p));
    /* column counts ~ Binomial(A, p): each within 6 sd (catches a column
     * the skipping never reaches, e.g. the first or last), and the
     * dispersion sum (c - mean)^2 / var ~ chi-square with B df */
    double cm = A * p, cv = A * p * (1 - p), disp = 0;
    int cols_ok = 1;
    for (size_t j = 0; j < B; j++) {
        cols_ok &= fabs(col[j] - cm) < 6 * sqrt(cv);
        disp += (col[j] - cm) * (col[j] - cm) / cv;
    }
    CHECK_MSG(cols_ok && col[0] > 0 && col[B - 1] > 0, "a column count is off");
    CHECK_MSG(fabs(disp - B) < 6 * sqrt(2.0 * B), "column dispersion %g for %zu columns", disp, B);
    /* both (i, j) and (i, j+1): A (B-1) p^2 expected; variance
     * A (B-1) p^2 (1-p^2) plus the overlap of neighbouring pairs,
     * 2 A (B-2) (p^3 - p^4) */
    double am = A * (B - 1) * p * p, av = am * (1 - p * p) + 2.0 * A * (B - 2) * (pow(p, 3) - pow(p, 4));
    CHECK_MSG(fabs((double)adj - am) < 6 * sqrt(av), "adjacent pairs %zu, expected %g", adj, am);
    free(row), free(col);

    /* determinism and row independence: rows 0..99 of a 100-row and a
     * 200-row projection are the same; equal keys equal, other keys differ */
    c.p = 0.1;
    CHECK(run(&c, 200, 300, 0, 5, E) == 0);
    uint64_t h = E->hash;
    edges F = {0};
    CHECK(run(&c, 100, 300, 0, 5, &F) == 0);
    int prefix = F.n < E->n;
    for (size_t i = 0; i < F.n && prefix; i++) prefix = F.pre[i] == E->pre[i] && F.post[i] == E->post[i];
    CHECK(prefix && E->pre[F.n] == 100);
    CHECK(run(&c, 200, 300, 0, 6, &F) == 0 && F.hash != h);
    CHECK(run(&c, 200, 300, 0, 5, &F) == 0 && F.hash == h);
    release(&F);

    /* no autapses: 1000 x 1000 same population at p = 0.1 */
    c.p = 0.1;
    c.autapses = 0;
    CHECK(run(&c, 1000, 1000, 1, 3, E) == 0 && no_autapse(E));
    mean = 0.1 * 1000 * 999, sd = sqrt(mean * 0.9);
    CHECK_MSG(fabs((double)E->n - mean) < 5 * sd, "count %zu, mean %g", E->n, mean);
    CHECK(soma__connect_expected(&c, 1000, 1000, 1) == mean);
    /* extremes */
    c.autapses = 1;
    c.p = 0;
    CHECK(run(&c, 300, 300, 1, 3, E) == 0 && E->n == 0);
    c.p = 1;
    CHECK(run(&c, 30, 40, 0, 3, E) == 0 && E->n == 1200 && distinct(E, 40));
    c.autapses = 0;
    CHECK(run(&c, 30, 30, 1, 3, E) == 0 && E->n == 870 && no_autapse(E));
    c.autapses = 1;
    c.p = 0.9; /* dense: short gaps */
    CHECK(run(&c, 300, 400, 0, 3, E) == 0 && distinct(E, 400));
    mean = 0.9 * 120000, sd = sqrt(120000 * 0.09);
    CHECK_MSG(fabs((double)E->n - mean) < 5 * sd, "p 0.9: %zu", E->n);
    c.p = 1e-4; /* sparse: most rows empty */
    CHECK(run(&c, 3000, 3000, 0, 3, E) == 0);
    mean = 900, sd = sqrt(900 * (1 - 1e-4));
    CHECK_MSG(fabs((double)E->n - mean) < 5 * sd, "p 1e-4: %zu", E->n);
    c.p = 1e-15; /* gaps past 2^52: P(any synapse) = 1e-9 */
    CHECK(run(&c, 1000, 1000, 0, 3, E) == 0 && E->n == 0);
}

/* ---------------------------------------------- fixed in/out-degree */
static void test_degree(edges *E, int in) {
    int rule = in ? SOMA_CONN_RULE_FIXED_INDEGREE : SOMA_CONN_RULE_FIXED_OUTDEGREE;
    soma_connector c = conn(rule);
    /* row(i) = the row an edge belongs to, other(i) = the drawn end */
#define ROW(i) (in ? E->post[i] : E->pre[i])
#define OTHER(i) (in ? E->pre[i] : E->post[i])
    /* A: no multapses, 300 sources x 200 targets (roles swap for out), k = 50 */
    size_t pool = 300, rows = 200, k = 50;
    size_t npre = in ? pool : rows, npost = in ? rows : pool;
    c.k = k;
    c.multapses = 0;
    CHECK(run(&c, npre, npost, 0, 21, E) == 0 && E->numbered);
    CHECK(E->n == rows * k && soma__connect_expected(&c, npre, npost, 0) == (double)(rows * k));
    CHECK(distinct(E, npost));
    double *use = calloc(pool, sizeof *use), *per = calloc(rows, sizeof *per);
    int in_order = 1;
    for (size_t i = 0; i < E->n; i++) {
        use[OTHER(i)]++, per[ROW(i)]++;
        in_order &= ROW(i) == i / k; /* row by row */
    }
    int exact = in_order;
    for (size_t r = 0; r < rows; r++) exact &= per[r] == (double)k;
    CHECK(exact);
    /* each source is in a row with probability k/pool: use ~ Binomial(rows, k/pool) */
    double q = (double)k / pool, m = rows * q, v = rows * q * (1 - q), disp = 0;
    for (size_t s = 0; s < pool; s++) disp += (use[s] - m) * (use[s] - m) / v;
    CHECK_MSG(fabs(disp - pool) < 6 * sqrt(2.0 * pool), "dispersion %g over %zu", disp, pool);
    free(use), free(per);

    /* B: every other neuron, without autapses: k = n - 1 gives the complete graph */
    c.autapses = 0;
    c.k = 99;
    CHECK(run(&c, 100, 100, 1, 22, E) == 0 && E->n == 9900 && no_autapse(E) && distinct(E, 100));
    c.k = 100;
    CHECK(run(&c, 100, 100, 1, 22, E) == SOMA_STATUS_INVALID && strstr(err, "k = 100") && strstr(err, "99"));
    CHECK(soma__connect_check(&c, 100, 100, 0, err, sizeof err) == 0); /* two populations: 100 available */

    /* C: Floyd's subsets are uniform: k = 3 of the 6 others (autapses off,
     * n = 7), over 3000 keys x 7 rows; the 20 subsets equally likely */
    c.k = 3;
    double cnt[64] = {0};
    for (uint64_t key = 0; key < 3000; key++) {
        CHECK(run(&c, 7, 7, 1, 1000 + key, E) == 0 && E->n == 21);
        for (size_t r = 0; r < 7; r++) {
            unsigned mask = 0;
            for (size_t j = 0; j < 3; j++) {
                size_t i = 3 * r + j;
                unsigned o = OTHER(i), rr = ROW(i);
                if (rr != r || o == rr) mask |= 1u << 7; /* wrong row or an autapse: lands outside */
                else mask |= 1u << (o - (o > rr));
            }
            if (popcount(mask) == 3 && mask < 64) cnt[mask]++;
        }
    }
    double obs[20], ex[20];
    size_t ns = 0;
    for (unsigned mask = 0; mask < 64; mask++)
        if (popcount(mask) == 3) obs[ns] = cnt[mask], ex[ns] = 21000.0 / 20, ns++;
    double tot = 0;
    for (size_t s = 0; s < ns; s++) tot += obs[s];
    CHECK(ns == 20 && tot == 21000);
    double x2 = chi2(obs, ex, 20);
    CHECK_MSG(x2 < chi2_bound(19), "subsets chi2 %g (19 df)", x2);

    /* D: multapses: k independent uniform draws per row */
    c = conn(rule);
    c.k = 10;
    npre = in ? 50 : 2000, npost = in ? 2000 : 50;
    CHECK(run(&c, npre, npost, 0, 23, E) == 0 && E->n == 20000);
    double o50[50] = {0}, e50[50];
    size_t rep_rows = 0;
    for (size_t r = 0; r < 2000; r++) {
        int rep = 0;
        for (size_t a = 0; a < 10; a++) {
            o50[OTHER(10 * r + a)]++;
            for (size_t b = 0; b < a; b++) rep |= OTHER(10 * r + a) == OTHER(10 * r + b);
        }
        rep_rows += rep;
    }
    for (size_t s = 0; s < 50; s++) e50[s] = 400;
    x2 = chi2(o50, e50, 50);
    CHECK_MSG(x2 < chi2_bound(49), "multapse draws chi2 %g", x2);
    /* P(no repeat in a row) = prod_{i<10} (1 - i/50) = 0.38: repeats occur */
    double pn = 1;
    for (int i = 0; i < 10; i++) pn *= 1 - i / 50.0;
    CHECK_MSG(fabs(rep_rows - 2000 * (1 - pn)) < 5 * sqrt(2000 * pn * (1 - pn)), "rows with repeats %zu", rep_rows);
    /* multapses without autapses: k may exceed n - 1, never i -> i */
    c.autapses = 0;
    c.k = 40;
    CHECK(run(&c, 30, 30, 1, 24, E) == 0 && E->n == 1200 && no_autapse(E));
    CHECK(run(&c, 1, 1, 1, 24, E) == SOMA_STATUS_INVALID); /* nothing to draw from */
    /* rows independent of the row count */
    c = conn(rule);
    c.k = 5;
    c.multapses = 0;
    CHECK(run(&c, 100, 100, 0, 25, E) == 0);
    edges F = {0};
    CHECK(run(&c, in ? 100 : 50, in ? 50 : 100, 0, 25, &F) == 0 && F.n == 250);
    int prefix = 1;
    for (size_t i = 0; i < F.n; i++) prefix &= F.pre[i] == E->pre[i] && F.post[i] == E->post[i];
    CHECK(prefix);
    release(&F);
#undef ROW
#undef OTHER
}

/* ------------------------------------------------------- fixed_total */
static void test_fixed_total(edges *E) {
    soma_connector c = conn(SOMA_CONN_RULE_FIXED_TOTAL);
    /* A: multapses (default): 50000 uniform pairs over 100 x 80 */
    c.n = 50000;
    CHECK(run(&c, 100, 80, 0, 31, E) == 0 && E->n == 50000 && E->numbered);
    CHECK(soma__connect_expected(&c, 100, 80, 0) == 50000.0);
    double *cell = calloc(8000, sizeof *cell), *ex = malloc(8000 * sizeof *ex);
    double pre[100] = {0}, epre[100], post[80] = {0}, epost[80];
    for (size_t i = 0; i < E->n; i++) pre[E->pre[i]]++, post[E->post[i]]++, cell[E->pre[i] * 80 + E->post[i]]++;
    for (int i = 0; i < 100; i++) epre[i] = 500;
    for (int i = 0; i < 80; i++) epost[i] = 625;
    for (int i = 0; i < 8000; i++) ex[i] = 6.25;
    CHECK_MSG(chi2(pre, epre, 100) < chi2_bound(99), "pre chi2 %g", chi2(pre, epre, 100));
    CHECK_MSG(chi2(post, epost, 80) < chi2_bound(79), "post chi2 %g", chi2(post, epost, 80));
    CHECK_MSG(chi2(cell, ex, 8000) < chi2_bound(7999), "pair chi2 %g", chi2(cell, ex, 8000));
    CHECK(!distinct(E, 80)); /* 50000 draws from 8000 pairs must repeat */
    free(cell), free(ex);
    /* multapses without autapses */
    c.autapses = 0;
    c.n = 20000;
    CHECK(run(&c, 40, 40, 1, 32, E) == 0 && E->n == 20000 && no_autapse(E));

    /* B: distinct pairs, in increasing order of pre * n_post + post */
    c = conn(SOMA_CONN_RULE_FIXED_TOTAL);
    c.multapses = 0;
    c.n = 3000;
    CHECK(run(&c, 100, 80, 0, 33, E) == 0 && E->n == 3000 && distinct(E, 80));
    int inc = 1;
    for (size_t i = 1; i < E->n; i++)
        inc &= (uint64_t)E->pre[i] * 80 + E->post[i] > (uint64_t)E->pre[i - 1] * 80 + E->post[i - 1];
    CHECK(inc);
    /* all pairs: n = possible pairs (without autapses) */
    c.autapses = 0;
    c.n = 50 * 49;
    CHECK(run(&c, 50, 50, 1, 34, E) == 0 && E->n == 2450 && no_autapse(E) && distinct(E, 50));
    c.n = 2451;
    CHECK(run(&c, 50, 50, 1, 34, E) == SOMA_STATUS_INVALID && strstr(err, "2451") && strstr(err, "2450"));
    c.n = 1000;
    CHECK(run(&c, 50, 50, 1, 34, E) == 0 && E->n == 1000 && no_autapse(E) && distinct(E, 50));

    /* C: every 2-subset of 6 pairs (2 x 3) equally likely (Method A) */
    c = conn(SOMA_CONN_RULE_FIXED_TOTAL);
    c.multapses = 0;
    c.n = 2;
    double cnt[64] = {0};
    for (uint64_t key = 0; key < 15000; key++) {
        CHECK(run(&c, 2, 3, 0, 5000 + key, E) == 0 && E->n == 2);
        cnt[(1u << (E->pre[0] * 3 + E->post[0])) | (1u << (E->pre[1] * 3 + E->post[1]))]++;
    }
    double obs[15], exs[15];
    size_t ns = 0;
    for (unsigned m = 0; m < 64; m++)
        if (popcount(m) == 2) obs[ns] = cnt[m], exs[ns] = 1000, ns++;
    CHECK(ns == 15);
    CHECK_MSG(chi2(obs, exs, 15) < chi2_bound(14), "2-of-6 subsets chi2 %g", chi2(obs, exs, 15));

    /* D: 3 of 52 pairs (4 x 13), where Method D draws the first skip (it
     * takes over from Method A when N > 13 n): over 200000 keys, each
     * pair's inclusion count (3/52 per key), and the smallest and largest
     * index against their exact laws P(min = s) = C(51-s, 2)/C(52, 3) and
     * P(max = s) = C(s, 2)/C(52, 3), bins with fewer than 20 expected
     * merged into their neighbour. Accepting every proposal of Method D
     * (no rejection step) shifts the min law by a noncentrality of about
     * 0.0016 per key, 320 here, well past the bound. */
    c.n = 3;
    enum { NP = 52 };
    const int K = 200000;
    double inc_cnt[NP] = {0}, inc_ex[NP], lo[NP] = {0}, hi[NP] = {0};
    for (int key = 0; key < K; key++) {
        if (run(&c, 4, 13, 0, 90000 + (uint64_t)key, E) != 0 || E->n != 3) {
            CHECK(0);
            break;
        }
        unsigned q[3];
        for (int j = 0; j < 3; j++) q[j] = E->pre[j] * 13 + E->post[j], inc_cnt[q[j]]++;
        if (!(q[0] < q[1] && q[1] < q[2])) CHECK(0);
        lo[q[0]]++, hi[q[2]]++;
    }
    for (int i = 0; i < NP; i++) inc_ex[i] = K * 3.0 / NP;
    CHECK_MSG(chi2(inc_cnt, inc_ex, NP) < chi2_bound(NP - 1), "inclusion chi2 %g", chi2(inc_cnt, inc_ex, NP));
    double all = binom(NP, 3);
    for (int which = 0; which < 2; which++) {
        double ob[NP], exb[NP], acc_o = 0, acc_e = 0;
        size_t nb = 0;
        for (int s = 0; s < NP; s++) {
            acc_o += which ? hi[s] : lo[s];
            acc_e += K * (which ? binom(s, 2) : binom(NP - 1 - s, 2)) / all;
            if (acc_e >= 20) ob[nb] = acc_o, exb[nb] = acc_e, nb++, acc_o = acc_e = 0;
        }
        if (acc_e > 0 && nb) ob[nb - 1] += acc_o, exb[nb - 1] += acc_e;
        double x = chi2(ob, exb, nb);
        CHECK_MSG(x < chi2_bound((double)nb - 1), "%s index chi2 %g over %zu bins", which ? "max" : "min", x, nb);
    }

    /* E: a large sparse case (Method D throughout): 1e4 of 1e6 pairs, per
     * row counts hypergeometric with mean 10 and variance ~ 10 (1 - 1e-3) */
    c.n = 10000;
    CHECK(run(&c, 1000, 1000, 0, 35, E) == 0 && E->n == 10000 && distinct(E, 1000));
    double rows[1000] = {0}, disp = 0;
    for (size_t i = 0; i < E->n; i++) rows[E->pre[i]]++;
    for (int r = 0; r < 1000; r++) disp += (rows[r] - 10) * (rows[r] - 10) / 10;
    CHECK_MSG(fabs(disp - 1000) < 6 * sqrt(2000.0), "row dispersion %g", disp);
    /* determinism */
    uint64_t h = E->hash;
    CHECK(run(&c, 1000, 1000, 0, 35, E) == 0 && E->hash == h);
    CHECK(run(&c, 1000, 1000, 0, 36, E) == 0 && E->hash != h);
}

/* ------------------------------------------------------- small_world */
/* ring distance of a -> b on n nodes */
static size_t ring(size_t a, size_t b, size_t n) {
    size_t d = a > b ? a - b : b - a;
    return d < n - d ? d : n - d;
}

static void test_small_world(edges *E) {
    soma_connector c = conn(SOMA_CONN_RULE_SMALL_WORLD);
    /* p = 0: the ring lattice exactly */
    c.k = 6;
    c.p = 0;
    CHECK(run(&c, 50, 50, 1, 41, E) == 0 && E->n == 300 && E->numbered);
    CHECK(soma__connect_expected(&c, 50, 50, 1) == 300.0);
    int lattice = distinct(E, 50);
    for (size_t i = 0; i < E->n; i++) {
        size_t d = ring(E->pre[i], E->post[i], 50);
        lattice &= E->pre[i] == i / 6 && d >= 1 && d <= 3;
    }
    CHECK(lattice); /* 6 distinct targets at distance 1..3: exactly j +- 1, 2, 3 */

    /* p = 1: every edge rewired, out-degree still k, no ring left */
    size_t n = 1000, k = 10;
    c.k = k;
    c.p = 1;
    CHECK(run(&c, n, n, 1, 42, E) == 0 && E->n == n * k && no_autapse(E) && distinct(E, n));
    size_t *outd = calloc(n, sizeof *outd), near = 0;
    for (size_t i = 0; i < E->n; i++) outd[E->pre[i]]++, near += ring(E->pre[i], E->post[i], n) <= k / 2;
    int deg = 1;
    for (size_t j = 0; j < n; j++) deg &= outd[j] == k;
    CHECK(deg);
    /* a uniform target is within k/2 with probability about k/(n-1-k): 1 % */
    CHECK_MSG(near < 0.03 * n * k, "p = 1 leaves %zu of %zu edges on the ring", near, n * k);
    free(outd);

    /* p = 0.2: 80 % stay (plus ~0.2 % rewired onto the ring): sd 0.4 % */
    c.p = 0.2;
    CHECK(run(&c, n, n, 1, 43, E) == 0 && E->n == n * k && distinct(E, n) && no_autapse(E));
    near = 0;
    for (size_t i = 0; i < E->n; i++) near += ring(E->pre[i], E->post[i], n) <= k / 2;
    double frac = (double)near / (n * k);
    CHECK_MSG(fabs(frac - 0.8 - 0.2 * k / (n - 1.0 - k)) < 0.02, "ring fraction %g at p = 0.2", frac);
    uint64_t h = E->hash;
    CHECK(run(&c, n, n, 1, 43, E) == 0 && E->hash == h);
    CHECK(run(&c, n, n, 1, 44, E) == 0 && E->hash != h);

    /* k = n - 1: nowhere to rewire to; the complete graph */
    c.k = 10;
    c.p = 1;
    CHECK(run(&c, 11, 11, 1, 45, E) == 0 && E->n == 110 && no_autapse(E) && distinct(E, 11));

    /* errors */
    c.k = 5;
    CHECK(run(&c, 100, 100, 1, 1, E) == SOMA_STATUS_INVALID && strstr(err, "even"));
    c.k = 100;
    CHECK(run(&c, 100, 100, 1, 1, E) == SOMA_STATUS_INVALID && strstr(err, "k = 100"));
    c.k = 4;
    CHECK(run(&c, 100, 100, 0, 1, E) == SOMA_STATUS_INVALID && strstr(err, "small_world"));
    c.p = 1.5;
    CHECK(run(&c, 100, 100, 1, 1, E) == SOMA_STATUS_INVALID &&
          strcmp(err, "connection probability 1.5 is outside [0, 1]") == 0);
}

/* -------------------------------------------------------- scale_free */
static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_scale_free(edges *E) {
    soma_connector c = conn(SOMA_CONN_RULE_SCALE_FREE);
    const size_t n = 5000, m = 3;
    c.k = m;
    CHECK(run(&c, n, n, 1, 51, E) == 0 && E->numbered);
    size_t want = 2 * (m * (m + 1) / 2 + m * (n - m - 1));
    CHECK_MSG(E->n == want, "%zu edges, want %zu", E->n, want);
    CHECK(soma__connect_expected(&c, n, n, 1) == (double)want);
    CHECK(no_autapse(E));
    /* no duplicates, and every a -> b has its b -> a */
    uint64_t *key = malloc(E->n * sizeof *key);
    for (size_t i = 0; i < E->n; i++) key[i] = (uint64_t)E->pre[i] << 32 | E->post[i];
    qsort(key, E->n, sizeof *key, cmp_u64);
    int dup = 0, sym = 1;
    for (size_t i = 1; i < E->n; i++) dup |= key[i] == key[i - 1];
    for (size_t i = 0; i < E->n && sym; i++) {
        uint64_t rev = (key[i] & 0xffffffffu) << 32 | key[i] >> 32;
        sym = bsearch(&rev, key, E->n, sizeof *key, cmp_u64) != NULL;
    }
    CHECK(!dup && sym);
    free(key);
    /* degrees: all >= m, the largest far above the mean (about m sqrt(n) =
     * 212 against a mean of 6; an Erdos-Renyi graph's would be about 17),
     * and P(deg >= d) = m(m+1)/(d(d+1)) (Bollobas et al. 2001) = 0.077 at
     * d = 4m, where a Poisson(6) degree gives 0.02 */
    size_t *deg = calloc(n, sizeof *deg), maxd = 0, mind = SIZE_MAX, tail = 0;
    for (size_t i = 0; i < E->n; i++) deg[E->pre[i]]++;
    for (size_t j = 0; j < n; j++) {
        maxd = deg[j] > maxd ? deg[j] : maxd;
        mind = deg[j] < mind ? deg[j] : mind;
        tail += deg[j] >= 4 * m;
    }
    double mean = (double)E->n / n, ptail = (double)tail / n, ref = (double)(m * (m + 1)) / (4 * m * (4 * m + 1));
    CHECK(mind >= m);
    CHECK_MSG(maxd > 10 * mean, "max degree %zu, mean %g", maxd, mean);
    CHECK_MSG(fabs(ptail - ref) < 0.025, "P(deg >= %zu) = %g, BA law %g", 4 * m, ptail, ref);
    free(deg);
    uint64_t h = E->hash;
    CHECK(run(&c, n, n, 1, 51, E) == 0 && E->hash == h);
    CHECK(run(&c, n, n, 1, 52, E) == 0 && E->hash != h);
    /* the seed graph alone: m = n - 1 is the complete graph */
    c.k = 9;
    CHECK(run(&c, 10, 10, 1, 53, E) == 0 && E->n == 90 && distinct(E, 10) && no_autapse(E));
    c.k = 1;
    CHECK(run(&c, 2, 2, 1, 53, E) == 0 && E->n == 2);
    /* errors */
    c.k = 0;
    CHECK(run(&c, 10, 10, 1, 1, E) == SOMA_STATUS_INVALID && strstr(err, "m = 0"));
    c.k = 10;
    CHECK(run(&c, 10, 10, 1, 1, E) == SOMA_STATUS_INVALID && strstr(err, "m = 10"));
    c.k = 2;
    CHECK(run(&c, 10, 10, 0, 1, E) == SOMA_STATUS_INVALID && strstr(err, "scale_free"));
}

/* --------------------------------------------------------------- files */
static char dir[300];

static const char *write_tmp(const char *name, const char *text) {
    static char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK(t_write_file(path, text, strlen(text)) == 0);
    return path;
}

/* The file's error message must be exactly "PATH:" + tail. */
static void file_error(const char *text, size_t a, size_t b, const char *tail) {
    edges E = {0};
    soma_connector c = conn(SOMA_CONN_RULE_FILE);
    c.path = write_tmp("bad.csv", text);
    char want[600];
    snprintf(want, sizeof want, "%s:%s", c.path, tail);
    int st = run(&c, a, b, 0, 1, &E);
    CHECK_MSG(st == SOMA_STATUS_FORMAT && strcmp(err, want) == 0, "status %d\n  got  '%s'\n  want '%s'", st, err, want);
    release(&E);
}

static void test_file(edges *E) {
    soma_connector c = conn(SOMA_CONN_RULE_FILE);
    /* four columns, a header, comments, blank lines, blanks and commas, CRLF */
    c.path = write_tmp("w.csv", "\xEF\xBB\xBFpre,post,weight,delay_ms\r\n"
                                "# a comment\n"
                                "0,1,0.5,1.5\n"
                                "\n"
                                "   \t\n"
                                "3999 , 2 , -2.25e-1 , 0   # trailing comment\r\n"
                                "7\t8\t1e3\t0.1\n"
                                "12, 13 ,0, 2\n");
    CHECK(run(&c, 4000, 100, 0, 1, E) == 0);
    CHECK(E->n == 4 && E->nw == 4 && E->nd == 4 && E->numbered);
    uint32_t pre[] = {0, 3999, 7, 12}, post[] = {1, 2, 8, 13};
    double w[] = {0.5, -0.225, 1000, 0}, d[] = {1.5, 0, 0.1, 2};
    int same = E->n == 4;
    for (size_t i = 0; i < 4 && same; i++)
        same = E->pre[i] == pre[i] && E->post[i] == post[i] && E->w[i] == w[i] && E->d[i] == d[i];
    CHECK(same);
    CHECK(soma__connect_expected(&c, 4000, 100, 0) == 4.0);
    CHECK(soma__connect_check(&c, 4000, 100, 0, err, sizeof err) == 0);
    /* two columns: no weight, no delay */
    c.path = write_tmp("p.txt", "1 2\n3 4\n5,6\n");
    CHECK(run(&c, 10, 10, 0, 1, E) == 0 && E->n == 3 && E->nw == 0 && E->nd == 0);
    CHECK(E->pre[2] == 5 && E->post[2] == 6);
    /* three columns: weight only; autapses left out when asked */
    c.path = write_tmp("a.csv", "PRE,POST,W\n1,1,1\n1,2,2\n2,2,3\n2,1,4\n");
    CHECK(run(&c, 3, 3, 1, 1, E) == 0 && E->n == 4 && E->nw == 4 && E->nd == 0);
    c.autapses = 0;
    CHECK(run(&c, 3, 3, 1, 1, E) == 0 && E->n == 2 && E->numbered && E->w[0] == 2 && E->w[1] == 4);
    CHECK(soma__connect_expected(&c, 3, 3, 1) == 4.0); /* data lines */
    c.autapses = 1;
    /* an empty file (comments only) has no synapses */
    c.path = write_tmp("e.csv", "# nothing\n\n");
    CHECK(run(&c, 3, 3, 0, 1, E) == 0 && E->n == 0 && soma__connect_expected(&c, 3, 3, 0) == 0.0);

    /* errors, each with FILE:LINE */
    file_error("0,1\n2\n", 10, 10, "2: expected 'pre,post[,weight[,delay]]', got '2'");
    file_error("0,1,2,3,4\n", 10, 10, "1: expected 'pre,post[,weight[,delay]]', got '0,1,2,3,4'");
    file_error("# c\n1,,2\n", 10, 10, "2: expected 'pre,post[,weight[,delay]]', got '1,,2'");
    file_error("1,2,\n", 10, 10, "1: expected 'pre,post[,weight[,delay]]', got '1,2,'");
    file_error("0,1\n5000,1\n", 4000, 10, "2: pre 5000 is out of range (population has 4000 neurons)");
    file_error("0,10\n", 4000, 10, "1: post 10 is out of range (population has 10 neurons)");
    file_error("x,1\n", 10, 10, "1: pre 'x' is not a neuron index (an integer >= 0)");
    file_error("-1,1\n", 10, 10, "1: pre '-1' is not a neuron index (an integer >= 0)");
    file_error("1,2.5\n", 10, 10, "1: post '2.5' is not a neuron index (an integer >= 0)");
    file_error("1,2,abc\n", 10, 10, "1: weight 'abc' is not a finite number");
    file_error("1,2,nan\n", 10, 10, "1: weight 'nan' is not a finite number");
    file_error("1,2,1,x\n", 10, 10, "1: delay 'x' is not a finite number");
    file_error("\n1,2,0.5,-1\n", 10, 10, "2: delay -1 ms is negative");
    file_error("1,2,0.5\n3,4\n", 10, 10, "2: expected 3 fields as on line 1, got 2 in '3,4'");
    file_error("0,1\npre,post\n", 10, 10, "2: pre 'pre' is not a neuron index (an integer >= 0)");
    /* a missing file: IO with the system's reason, from check and each */
    c.path = "/nonexistent/soma/edges.csv";
    char want[300];
    snprintf(want, sizeof want, "cannot open %s: %s", c.path, strerror(ENOENT));
    CHECK(soma__connect_check(&c, 10, 10, 0, err, sizeof err) == SOMA_STATUS_IO && strcmp(err, want) == 0);
    CHECK(run(&c, 10, 10, 0, 1, E) == SOMA_STATUS_IO && strcmp(err, want) == 0);
    CHECK(soma__connect_expected(&c, 10, 10, 0) == 0.0);
    c.path = NULL;
    CHECK(soma__connect_check(&c, 10, 10, 0, err, sizeof err) == SOMA_STATUS_INVALID);
}

/* ---------------------------------------------- checks and stopping */
static void test_checks(edges *E) {
    soma_connector c = conn(SOMA_CONN_RULE_FIXED_PROBABILITY);
    c.p = 1.5;
    CHECK(soma__connect_check(&c, 10, 10, 0, err, sizeof err) == SOMA_STATUS_INVALID &&
          strcmp(err, "connection probability 1.5 is outside [0, 1]") == 0);
    c.p = -0.25;
    CHECK(run(&c, 10, 10, 0, 1, E) == SOMA_STATUS_INVALID &&
          strcmp(err, "connection probability -0.25 is outside [0, 1]") == 0 && E->n == 0);
    c.p = NAN;
    CHECK(soma__connect_check(&c, 10, 10, 0, err, sizeof err) == SOMA_STATUS_INVALID);
    c.p = 0.5;
    CHECK(soma__connect_check(&c, 10, 10, 0, NULL, 0) == 0);
    CHECK(soma__connect_check(&c, 10, 12, 1, err, sizeof err) == SOMA_STATUS_INVALID); /* same needs equal sizes */
    c.rule = 42;
    CHECK(soma__connect_check(&c, 10, 10, 0, err, sizeof err) == SOMA_STATUS_INVALID && strstr(err, "42"));
    c = conn(SOMA_CONN_RULE_FIXED_INDEGREE);
    c.multapses = 0;
    c.k = 11;
    CHECK(soma__connect_check(&c, 10, 5, 0, err, sizeof err) == SOMA_STATUS_INVALID && strstr(err, "k = 11") &&
          strstr(err, "10 available sources"));
    c.rule = SOMA_CONN_RULE_FIXED_OUTDEGREE;
    CHECK(soma__connect_check(&c, 5, 10, 0, err, sizeof err) == SOMA_STATUS_INVALID &&
          strstr(err, "10 available targets"));
    c.multapses = 1; /* with multapses any k */
    CHECK(soma__connect_check(&c, 5, 10, 0, err, sizeof err) == 0);

    /* a nonzero callback return stops every rule and is returned */
    const char *text = "0,1\n1,2\n2,3\n3,4\n4,5\n5,6\n6,7\n7,8\n8,9\n9,0\n0,2\n1,3\n";
    soma_connector all[9];
    for (int r = 0; r < 9; r++) all[r] = conn(r);
    all[SOMA_CONN_RULE_FIXED_PROBABILITY].p = 0.5;
    all[SOMA_CONN_RULE_FIXED_INDEGREE].k = all[SOMA_CONN_RULE_FIXED_OUTDEGREE].k = 3;
    all[SOMA_CONN_RULE_FIXED_INDEGREE].multapses = 0;
    all[SOMA_CONN_RULE_FIXED_TOTAL].n = 50;
    all[SOMA_CONN_RULE_FIXED_TOTAL].multapses = 0;
    all[SOMA_CONN_RULE_SMALL_WORLD].k = 4, all[SOMA_CONN_RULE_SMALL_WORLD].p = 0.5;
    all[SOMA_CONN_RULE_SCALE_FREE].k = 2;
    all[SOMA_CONN_RULE_FILE].path = write_tmp("stop.csv", text);
    for (int r = 0; r < 9; r++) {
        reset(E);
        E->stop_at = 10;
        int st = soma__connect_each(&all[r], 30, 30, 1, 9, collect, E, err, sizeof err);
        CHECK_MSG(st == 7 && E->n == 10, "rule %s: status %d after %zu edges", soma_conn_rule_name(r), st, E->n);
        /* and the expected count is exact for the rules that fix it */
        CHECK(run(&all[r], 30, 30, 1, 9, E) == 0);
        if (r != SOMA_CONN_RULE_FIXED_PROBABILITY)
            CHECK_MSG(soma__connect_expected(&all[r], 30, 30, 1) == (double)E->n, "rule %s: expected %g, got %zu",
                      soma_conn_rule_name(r), soma__connect_expected(&all[r], 30, 30, 1), E->n);
    }
    /* no hidden state: a run between two equal runs changes nothing */
    CHECK(run(&all[SOMA_CONN_RULE_FIXED_PROBABILITY], 300, 300, 0, 77, E) == 0);
    uint64_t h = E->hash;
    CHECK(run(&all[SOMA_CONN_RULE_SCALE_FREE], 300, 300, 1, 78, E) == 0);
    CHECK(run(&all[SOMA_CONN_RULE_FIXED_PROBABILITY], 300, 300, 0, 77, E) == 0 && E->hash == h);
}

/* ------------------------------------------------------------- speed */
static int count_only(void *u, uint32_t pre, uint32_t post, uint64_t edge, const double *w, const double *d) {
    (void)pre, (void)post, (void)edge, (void)w, (void)d;
    ++*(uint64_t *)u;
    return 0;
}

static void test_speed(void) {
    soma_connector c = conn(SOMA_CONN_RULE_FIXED_PROBABILITY);
    c.p = 0.01;
    uint64_t n = 0;
    double t = soma_clock_seconds();
    CHECK(soma__connect_each(&c, 100000, 100000, 0, 1, count_only, &n, err, sizeof err) == 0);
    t = soma_clock_seconds() - t;
    double mean = 1e8, sd = sqrt(1e10 * 0.01 * 0.99);
    CHECK_MSG(fabs((double)n - mean) < 5 * sd, "count %llu", (unsigned long long)n);
    printf("fixed_probability 1e5 x 1e5, p = 0.01: %llu synapses in %.3f s (%.1f ns each)\n", (unsigned long long)n,
           t, t / (double)n * 1e9);
}

int main(void) {
    const char *d = t_tmpdir("connect");
    CHECK(d != NULL);
    snprintf(dir, sizeof dir, "%s", d ? d : "/tmp");
    edges E = {0};
    test_names();
    test_simple(&E);
    test_fixed_probability(&E);
    test_degree(&E, 1);
    test_degree(&E, 0);
    test_fixed_total(&E);
    test_small_world(&E);
    test_scale_free(&E);
    test_file(&E);
    test_checks(&E);
    test_speed();
    release(&E);
    return t_report("test_connect");
}
