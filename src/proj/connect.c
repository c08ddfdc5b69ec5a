/* connect.c — connectors of the event-driven simulator: the rules that draw
 * the synapses of a projection (soma_conn_rule), enumerated through a
 * callback so that the engine can count them in one pass and fill its
 * compressed rows in a second, identical pass.
 *
 * Determinism. Every random draw comes from Philox-4x32-10 (core/rng.c)
 * keyed by the projection's key and a stream id (soma_rng_init's mixing).
 * Row rules (fixed_probability, fixed_indegree, fixed_outdegree,
 * small_world) use one stream per row, so a row's synapses never depend on
 * another row; the global rules (fixed_total, scale_free) use one stream for
 * the whole projection. The sequence of (pre, post, edge) is therefore a
 * function of (connector, sizes, same, key) alone.
 *
 * Rules, and the choices made where sources differ:
 *   all_to_all        every pair, row by row (pre major).
 *   one_to_one        i -> i.
 *   fixed_probability each pair independently with probability p (NEST
 *                     pairwise_bernoulli, Brian2 p=). Drawn per source row by
 *                     geometric skipping (the gap to the next synapse is
 *                     floor(log U / log(1-p))), so the cost is per synapse,
 *                     not per pair; a 1e6 x 1e6 projection at p = 8e-5 takes
 *                     8e7 draws, not 1e12.
 *   fixed_indegree    per target, k sources uniform (NEST fixed_indegree).
 *                     Without multapses the k are distinct (Floyd's
 *                     algorithm, exactly k draws); with them, k independent
 *                     draws. Emitted target by target.
 *   fixed_outdegree   the same per source.
 *   fixed_total       n synapses, each (pre, post) uniform (NEST
 *                     fixed_total_number). With multapses: n independent
 *                     draws. Without: n distinct pairs, a uniform n-subset
 *                     of all pairs drawn in sorted order by Vitter's Method D
 *                     (ACM TOMS 13(1), 1987) in O(n) time and O(1) memory, so
 *                     nothing the size of the projection is ever allocated.
 *   small_world       Watts & Strogatz (Nature 393, 1998), directed: node j
 *                     targets its k/2 ring neighbours on each side
 *                     (j-k/2 .. j-1, j+1 .. j+k/2 mod n, in that order); each
 *                     edge's target is then rewired with probability p to a
 *                     node drawn uniformly among those that are neither j nor
 *                     a current target of j (the edge's own target included,
 *                     as in networkx). Out-degree stays k. When k = n-1 no
 *                     such node exists and the edge keeps its target
 *                     (networkx does the same).
 *   scale_free        Barabasi & Albert (Science 286, 1999): nodes 0..m form
 *                     a complete graph; each later node t attaches to m
 *                     distinct earlier nodes chosen with probability
 *                     proportional to their degree (uniform picks from the
 *                     list of edge endpoints, duplicates redrawn, as in
 *                     networkx). Each undirected edge {a, b} becomes a -> b
 *                     and b -> a, so in- and out-degree equal the degree.
 *   file              an edge list, see file_each below.
 * With same = 1 and autapses = 0, i -> i is never made (for the degree
 * rules the draws exclude i, so every row still gets exactly k); small_world
 * and scale_free never make self loops. Multapses concern only the degree
 * and total rules; the others never repeat a pair (except a file that does).
 */
#define _POSIX_C_SOURCE 200809L
#include "proj/connect.h"
#include "core/names.h"
#include "core/rng.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ rule names */
static const char *const rule_names[] = {"all_to_all",      "one_to_one",  "fixed_probability",
                                         "fixed_indegree",  "fixed_outdegree", "fixed_total",
                                         "small_world",     "scale_free",  "file"};
#define N_RULES ((int)(sizeof rule_names / sizeof rule_names[0]))

int soma_conn_rule_find(const char *name) { return soma__name_find(rule_names, N_RULES, name); }
const char *soma_conn_rule_name(int rule) { return soma__name_at(rule_names, N_RULES, rule); }

/* p, k and n start at 0: each rule's own quantity has no sensible default,
 * so a connector the caller forgot to fill makes no synapses rather than an
 * arbitrary number. */
void soma_connector_default(soma_connector *c, int rule) {
    memset(c, 0, sizeof *c);
    c->rule = rule;
    c->autapses = 1;
    c->multapses = 1;
}

static int fail(char *err, size_t errlen, int status, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}

/* ---------------------------------------------------------------- streams
 * A Philox stream read 32 words at a time: soma__philox_n computes the 8
 * blocks lane-parallel, which matters for fixed_probability where the draws
 * are most of the work. */
enum { SBUF = 32 };
typedef struct stream {
    uint64_t key, ctr;
    unsigned pos;
    uint32_t buf[SBUF];
} stream;

static void stream_init(stream *s, uint64_t key, uint64_t id) {
    soma_rng r;
    soma_rng_init(&r, key, id); /* the library's one way to mix a seed with a stream id */
    s->key = r.key;
    s->ctr = 0;
    s->pos = SBUF;
}

static inline uint32_t s_u32(stream *s) {
    if (s->pos == SBUF) {
        soma__philox_n(s->key, s->ctr, SBUF / 4, s->buf);
        s->ctr += SBUF / 4;
        s->pos = 0;
    }
    return s->buf[s->pos++];
}

/* Uniform in the open interval (0, 1) with 53 bits: log and pow need u > 0. */
static inline double s_open01(stream *s) {
    uint64_t a = s_u32(s), b = s_u32(s);
    return ((double)((a << 21) | (b >> 11)) + 0.5) * 0x1p-53;
}

/* Uniform integer in [0, m), 1 <= m < 2^32, without bias (Lemire's
 * multiply-and-reject, ACM TOMACS 2019). */
static inline uint32_t s_below(stream *s, uint32_t m) {
    uint64_t x = (uint64_t)s_u32(s) * m;
    uint32_t l = (uint32_t)x;
    if (l < m) {
        uint32_t t = (uint32_t)(0u - m) % m;
        while (l < t) {
            x = (uint64_t)s_u32(s) * m;
            l = (uint32_t)x;
        }
    }
    return (uint32_t)(x >> 32);
}

/* Uniform integer in [0, m) for m up to 2^64 (scale_free's list of edge
 * ends can pass 2^32): words beyond 32 bits only when needed, and the
 * 2^64 mod m lowest values rejected so that x % m has no bias. */
static inline uint64_t s_below64(stream *s, uint64_t m) {
    if (m <= UINT32_MAX) return s_below(s, (uint32_t)m);
    uint64_t t = (0 - m) % m, x;
    do x = ((uint64_t)s_u32(s) << 32) | s_u32(s);
    while (x < t);
    return x % m;
}

/* ------------------------------------------------------------- bitmaps */
typedef struct bitset {
    uint64_t *w;
} bitset;
static int bits_alloc(bitset *b, size_t n) {
    b->w = calloc(n / 64 + 1, sizeof *b->w);
    return b->w ? 0 : -1;
}
static inline int bit_get(const bitset *b, uint32_t i) { return (int)((b->w[i >> 6] >> (i & 63)) & 1u); }
static inline void bit_set(bitset *b, uint32_t i) { b->w[i >> 6] |= (uint64_t)1 << (i & 63); }
static inline void bit_clear(bitset *b, uint32_t i) { b->w[i >> 6] &= ~((uint64_t)1 << (i & 63)); }

/* -------------------------------------------------------------- checks */
/* Autapses removed: same population and autapses off. */
static int no_self(const soma_connector *c, int same) { return same && !c->autapses; }

static int check_file(const char *path, char *err, size_t errlen) {
    if (!path || !*path) return fail(err, errlen, SOMA_STATUS_INVALID, "file rule needs a path");
    errno = 0;
    FILE *f = fopen(path, "r");
    if (!f) return fail(err, errlen, SOMA_STATUS_IO, "cannot open %s: %s", path, strerror(errno ? errno : ENOENT));
    fclose(f);
    return 0;
}

int soma__connect_check(const soma_connector *c, size_t n_pre, size_t n_post, int same, char *err, size_t errlen) {
    if (!c) return fail(err, errlen, SOMA_STATUS_INVALID, "no connector");
    const char *name = soma_conn_rule_name(c->rule);
    if (!name) return fail(err, errlen, SOMA_STATUS_INVALID, "unknown connection rule %d", c->rule);
    /* Indices travel as uint32 (the engine's synapse target type). */
    if (n_pre > UINT32_MAX || n_post > UINT32_MAX)
        return fail(err, errlen, SOMA_STATUS_INVALID, "%s: a population of %zu neurons exceeds the limit of %u", name,
                    n_pre > n_post ? n_pre : n_post, (unsigned)UINT32_MAX);
    if (same && n_pre != n_post)
        return fail(err, errlen, SOMA_STATUS_INVALID, "%s: one population cannot have sizes %zu and %zu", name, n_pre,
                    n_post);
    size_t n = n_pre;
    switch (c->rule) {
    case SOMA_CONN_ALL_TO_ALL: return 0;
    case SOMA_CONN_ONE_TO_ONE:
        if (n_pre != n_post)
            return fail(err, errlen, SOMA_STATUS_INVALID,
                        "one_to_one needs populations of equal size, got %zu and %zu", n_pre, n_post);
        return 0;
    case SOMA_CONN_FIXED_PROBABILITY:
    case SOMA_CONN_SMALL_WORLD:
        if (!(c->p >= 0.0 && c->p <= 1.0))
            return fail(err, errlen, SOMA_STATUS_INVALID, "connection probability %g is outside [0, 1]", c->p);
        if (c->rule == SOMA_CONN_FIXED_PROBABILITY) return 0;
        if (!same)
            return fail(err, errlen, SOMA_STATUS_INVALID,
                        "small_world connects a population to itself (from and to must be the same)");
        if (c->k % 2)
            return fail(err, errlen, SOMA_STATUS_INVALID, "small_world needs an even k (k/2 neighbours a side), got %zu",
                        c->k);
        if (c->k >= n && c->k > 0)
            return fail(err, errlen, SOMA_STATUS_INVALID,
                        "small_world k = %zu must be smaller than the population (%zu neurons)", c->k, n);
        return 0;
    case SOMA_CONN_FIXED_INDEGREE:
    case SOMA_CONN_FIXED_OUTDEGREE: {
        int in = c->rule == SOMA_CONN_FIXED_INDEGREE;
        size_t pool = in ? n_pre : n_post;
        size_t rows = in ? n_post : n_pre;
        if (no_self(c, same) && pool > 0) pool--;
        if (c->k > 0 && rows > 0 && (c->multapses ? pool == 0 : c->k > pool))
            return fail(err, errlen, SOMA_STATUS_INVALID, "%s: k = %zu exceeds the %zu available %s%s", name, c->k,
                        pool, in ? "sources" : "targets",
                        c->multapses ? "" : " (multapses off: they must be distinct)");
        if (c->k > UINT32_MAX)
            return fail(err, errlen, SOMA_STATUS_INVALID, "%s: k = %zu is too large", name, c->k);
        return 0;
    }
    case SOMA_CONN_FIXED_TOTAL: {
        uint64_t pairs = (uint64_t)n_pre * n_post - (no_self(c, same) ? n_pre : 0);
        if (c->n > 0 && (c->multapses ? pairs == 0 : (uint64_t)c->n > pairs))
            return fail(err, errlen, SOMA_STATUS_INVALID, "fixed_total: n = %zu exceeds the %llu possible pairs%s", c->n,
                        (unsigned long long)pairs, c->multapses ? "" : " (multapses off: they must be distinct)");
        return 0;
    }
    case SOMA_CONN_SCALE_FREE:
        if (!same)
            return fail(err, errlen, SOMA_STATUS_INVALID,
                        "scale_free connects a population to itself (from and to must be the same)");
        if (c->k == 0 || c->k >= n)
            return fail(err, errlen, SOMA_STATUS_INVALID,
                        "scale_free needs 1 <= m < population size (%zu neurons), got m = %zu", n, c->k);
        return 0;
    case SOMA_CONN_FILE: return check_file(c->path, err, errlen);
    }
    return fail(err, errlen, SOMA_STATUS_INVALID, "unknown connection rule %d", c->rule);
}

/* ------------------------------------------------------------ edge lists
 * Format: one synapse a line, "pre,post", "pre,post,weight" or
 * "pre,post,weight,delay"; fields separated by a comma, blanks, or a comma
 * with blanks around it. pre and post are 0-based indices in the two
 * populations; weight is in the target model's weight unit, delay in ms
 * (>= 0; the engine checks it against dt). '#' starts a comment to the end
 * of the line; blank lines are skipped; the first content line may be a
 * header whose first field is "pre" (what soma_sim_write_connectivity
 * writes); a UTF-8 byte-order mark before it is skipped. Every line must
 * have as many fields as the first data line, so
 * that w and d are given for all synapses or none. With same = 1 and
 * autapses = 0, lines i,i are left out. */
enum { MAXF = 4 };

typedef struct line_fields {
    int n;
    char *f[MAXF];
} line_fields;

/* Strip a comment and trailing blanks; 1 if anything is left. */
static int content(char *s) {
    char *h = strchr(s, '#');
    if (h) *h = 0;
    size_t l = strlen(s);
    while (l && isspace((unsigned char)s[l - 1])) s[--l] = 0;
    const char *p = s;
    while (isspace((unsigned char)*p)) p++;
    return *p != 0;
}

/* Split s in place; -1 on an empty field or more than MAXF fields. */
static int split(char *s, line_fields *lf) {
    lf->n = 0;
    char *p = s;
    while (isspace((unsigned char)*p)) p++;
    for (;;) {
        if (*p == ',' || *p == 0) return -1; /* empty field */
        if (lf->n == MAXF) return -1;
        lf->f[lf->n++] = p;
        while (*p && *p != ',' && !isspace((unsigned char)*p)) p++;
        if (!*p) return 0;
        /* a separator: blanks with at most one comma among them */
        int commas = 0;
        while (*p == ',' || isspace((unsigned char)*p)) {
            if (*p == ',') commas++;
            *p++ = 0;
        }
        if (commas > 1) return -1;
        if (!*p) return commas ? -1 : 0; /* a trailing comma leaves an empty field */
    }
}

/* "pre" in any case: the first field of a header line. */
static int is_pre(const char *s) {
    return tolower((unsigned char)s[0]) == 'p' && tolower((unsigned char)s[1]) == 'r' &&
           tolower((unsigned char)s[2]) == 'e' && s[3] == 0;
}

static int parse_index(const char *s, uint64_t *v) {
    if (!isdigit((unsigned char)*s)) return -1;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end || errno) return -1;
    *v = x;
    return 0;
}

static int parse_num(const char *s, double *v) {
    errno = 0;
    char *end;
    double x = strtod(s, &end);
    if (end == s || *end || !isfinite(x)) return -1;
    *v = x;
    return 0;
}

/* The line as read, for messages: blanks trimmed, long lines shortened. */
static const char *shown(const char *raw, char *buf, size_t cap) {
    while (isspace((unsigned char)*raw)) raw++;
    size_t l = strcspn(raw, "\r\n");
    if (l + 1 > cap) {
        snprintf(buf, cap, "%.*s...", (int)(cap - 4), raw);
    } else {
        memcpy(buf, raw, l);
        buf[l] = 0;
    }
    return buf;
}

/* Walk the file; with fn == NULL only count the data lines into *count
 * (the header, comments and blanks excluded, nothing validated). */
static int file_each(const soma_connector *c, size_t n_pre, size_t n_post, int same, soma__edge_fn fn, void *user,
                     uint64_t *count, char *err, size_t errlen) {
    const char *path = c->path;
    errno = 0;
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return fail(err, errlen, path ? SOMA_STATUS_IO : SOMA_STATUS_INVALID, "cannot open %s: %s",
                    path ? path : "(no path)", strerror(errno ? errno : ENOENT));
    char *line = NULL, *raw = NULL;
    size_t cap = 0, rawcap = 0;
    size_t lineno = 0, first_data = 0;
    int ncols = 0, seen_content = 0, st = 0;
    uint64_t edge = 0, lines = 0;
    int skip_self = no_self(c, same);
    char show[96];
    for (;;) {
        errno = 0;
        ssize_t got = getline(&line, &cap, f);
        if (got < 0) {
            if (ferror(f)) st = fail(err, errlen, SOMA_STATUS_IO, "%s: read error: %s", path, strerror(errno));
            break;
        }
        lineno++;
        char *text = line;
        if (lineno == 1 && got >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) text += 3, got -= 3; /* UTF-8 BOM */
        if (fn) { /* keep the raw text for messages before split cuts it up */
            if ((size_t)got + 1 > rawcap) {
                char *r = realloc(raw, (size_t)got + 1);
                if (!r) {
                    st = fail(err, errlen, SOMA_STATUS_NOMEM, "%s:%zu: out of memory", path, lineno);
                    break;
                }
                raw = r, rawcap = (size_t)got + 1;
            }
            memcpy(raw, text, (size_t)got + 1);
        }
        if (!content(text)) continue;
        line_fields lf;
        int bad = split(text, &lf);
        if (!seen_content) {
            seen_content = 1;
            if (!bad && lf.n >= 1 && is_pre(lf.f[0])) continue; /* header */
        }
        lines++;
        if (!fn) continue;
        if (bad || lf.n < 2) {
            st = fail(err, errlen, SOMA_STATUS_FORMAT, "%s:%zu: expected 'pre,post[,weight[,delay]]', got '%s'",
                      path, lineno, shown(raw, show, sizeof show));
            break;
        }
        if (!ncols) ncols = lf.n, first_data = lineno;
        if (lf.n != ncols) {
            st = fail(err, errlen, SOMA_STATUS_FORMAT, "%s:%zu: expected %d fields as on line %zu, got %d in '%s'",
                      path, lineno, ncols, first_data, lf.n, shown(raw, show, sizeof show));
            break;
        }
        uint64_t ix[2];
        size_t sz[2] = {n_pre, n_post};
        const char *what[2] = {"pre", "post"};
        for (int q = 0; q < 2 && !st; q++) {
            if (parse_index(lf.f[q], &ix[q]))
                st = fail(err, errlen, SOMA_STATUS_FORMAT, "%s:%zu: %s '%s' is not a neuron index (an integer >= 0)",
                          path, lineno, what[q], lf.f[q]);
            else if (ix[q] >= sz[q])
                st = fail(err, errlen, SOMA_STATUS_FORMAT,
                          "%s:%zu: %s %llu is out of range (population has %zu neurons)", path, lineno, what[q],
                          (unsigned long long)ix[q], sz[q]);
        }
        if (st) break;
        double w = 0, d = 0;
        if (ncols >= 3 && parse_num(lf.f[2], &w)) {
            st = fail(err, errlen, SOMA_STATUS_FORMAT, "%s:%zu: weight '%s' is not a finite number", path, lineno,
                      lf.f[2]);
            break;
        }
        if (ncols >= 4) {
            if (parse_num(lf.f[3], &d)) {
                st = fail(err, errlen, SOMA_STATUS_FORMAT, "%s:%zu: delay '%s' is not a finite number", path, lineno,
                          lf.f[3]);
                break;
            }
            if (d < 0) {
                st = fail(err, errlen, SOMA_STATUS_FORMAT, "%s:%zu: delay %g ms is negative", path, lineno, d);
                break;
            }
        }
        if (skip_self && ix[0] == ix[1]) continue;
        st = fn(user, (uint32_t)ix[0], (uint32_t)ix[1], edge++, ncols >= 3 ? &w : NULL, ncols >= 4 ? &d : NULL);
        if (st) break;
    }
    free(line);
    free(raw);
    fclose(f);
    if (count) *count = lines;
    return st;
}

/* ---------------------------------------------------------------- rules */
typedef struct emit {
    soma__edge_fn fn;
    void *user;
    uint64_t edge;
    const char *rule; /* for messages */
    char *err;
    size_t errlen;
} emit;

/* The rules' own failure (the callback's codes pass through untouched). */
static int no_memory(emit *e) { return fail(e->err, e->errlen, SOMA_STATUS_NOMEM, "%s: out of memory", e->rule); }

#define EMIT(e, pre, post)                                                                                   \
    do {                                                                                                     \
        int rc_ = (e)->fn((e)->user, (uint32_t)(pre), (uint32_t)(post), (e)->edge++, NULL, NULL);            \
        if (rc_) return rc_;                                                                                 \
    } while (0)

static int all_to_all(emit *e, uint32_t n_pre, uint32_t n_post, int skip_self) {
    for (uint32_t i = 0; i < n_pre; i++)
        for (uint32_t j = 0; j < n_post; j++)
            if (!(skip_self && i == j)) EMIT(e, i, j);
    return 0;
}

static int one_to_one(emit *e, uint32_t n, int skip_self) {
    if (skip_self) return 0; /* every synapse would be an autapse */
    for (uint32_t i = 0; i < n; i++) EMIT(e, i, i);
    return 0;
}

/* Geometric skipping: in a row of Bernoulli(p) trials the number of
 * failures before the next success is floor(log U / log(1-p)), one draw
 * per synapse. An autapse that falls on the diagonal is dropped, which
 * leaves every other pair an independent Bernoulli(p) trial.
 *
 * The draws are the speed of this rule (1e8 synapses for 1e5 x 1e5 at
 * p = 0.01), so they are made in batches: the Philox words of a batch come
 * lane-parallel from soma__philox_n and the gaps from a loop without calls
 * that the compiler vectorizes (libm's log is one call per element; glibc
 * offers its vector log only under -ffast-math, which the library does not
 * use). Uniform number u of row i is built from words 2u and 2u+1 of the
 * row's stream whatever the batch size, so the batch size (sized to the
 * row's expected synapse count, so sparse rows draw little in vain) changes
 * the speed, never the synapses. */
enum { GAP_BATCH = 64 };

/* log(u) for u in (0, 1) (normal doubles): u = 2^e m, m in [sqrt(1/2),
 * sqrt(2)), log m = 2 atanh(s) with s = (m-1)/(m+1), |s| <= 0.1716, summed
 * to s^19 (the next term is below 3e-16), plus e log 2. Accurate to a few
 * ulps, written with bit operations and arithmetic only so it vectorizes;
 * the exponent becomes a double by the 2^52 trick instead of an int64
 * conversion (which has no AVX2 instruction). */
static inline double log_unit(double u) {
    /* Type punning through a union (defined in C11): GCC's vectorizer
     * gives up on the memcpy idiom here. */
    union { double d; uint64_t b; } x = {u}, e, f;
    e.b = (x.b >> 52) | 0x4330000000000000ull; /* 2^52 + biased exponent */
    f.b = (x.b & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull;
    double ed = e.d - (0x1p52 + 1023.0), m = f.d;
    int big = m > 1.4142135623730951;
    m = big ? 0.5 * m : m;
    ed = big ? ed + 1.0 : ed;
    double s = (m - 1.0) / (m + 1.0), z = s * s;
    double r = 2.0 / 19;
    r = 2.0 / 17 + z * r;
    r = 2.0 / 15 + z * r;
    r = 2.0 / 13 + z * r;
    r = 2.0 / 11 + z * r;
    r = 2.0 / 9 + z * r;
    r = 2.0 / 7 + z * r;
    r = 2.0 / 5 + z * r;
    r = 2.0 / 3 + z * r;
    double logm = 2.0 * s + s * z * r;
    return ed * 0.6931471805599453 + logm;
}

/* Gaps of uniforms u0 .. u0+n-1 (u0 and n even) of stream key. From two
 * words a, b the 52-bit fraction (a << 20 | b >> 12) / 2^52 + 2^-53 is an
 * exact double in (0, 1); its gap floor(log u / log(1-p)) is made an
 * integer without floor() or a double-to-int64 conversion, neither of
 * which GCC vectorizes here: g + 2^52 rounds g to an integer held in the
 * low mantissa bits, one less when it rounded up. For g >= 2^52 (p below
 * about 1e-14) the bits are no longer g, but positive doubles order like
 * their bit patterns, so the gap is still >= 2^52 - 1 (past any row) and
 * below 2^63 (no overflow in the caller's sum). */
static void gaps(uint64_t key, uint64_t u0, size_t n, double inv, uint64_t *restrict gap) {
    uint32_t w[2 * GAP_BATCH];
    soma__philox_n(key, u0 / 2, n / 2, w);
    for (size_t q = 0; q < n; q++) {
        uint64_t x = ((uint64_t)w[2 * q] << 20) | (w[2 * q + 1] >> 12);
        union { uint64_t b; double d; } m = {x | 0x3FF0000000000000ull}, r;
        double u = (m.d - 1.0) + 0x1p-53;
        double g = log_unit(u) * inv; /* >= 0 */
        r.d = g + 0x1p52;
        double back = r.d - 0x1p52;
        uint64_t up = back > g;
        gap[q] = (r.b - 0x4330000000000000ull) - up;
    }
}

static int fixed_probability(emit *e, uint32_t n_pre, uint32_t n_post, int skip_self, double p, uint64_t key) {
    if (p <= 0.0) return 0;
    if (p >= 1.0) return all_to_all(e, n_pre, n_post, skip_self);
    const double inv = 1.0 / log1p(-p); /* negative */
    /* First batch: the expected draws of a row (synapses + 1) plus 4 sd. */
    double mean = p * n_post + 1.0;
    size_t first = (size_t)(mean + 4.0 * sqrt(mean) + 2.0);
    first = first > GAP_BATCH ? GAP_BATCH : (first + 1) & ~(size_t)1;
    uint64_t gap[GAP_BATCH];
    for (uint32_t i = 0; i < n_pre; i++) {
        soma_rng r;
        soma_rng_init(&r, key, i);
        uint64_t j = UINT64_MAX; /* last chosen column; -1 + 1 wraps to 0 */
        uint64_t u0 = 0;
        for (size_t nb = first;; u0 += nb, nb = GAP_BATCH) {
            gaps(r.key, u0, nb, inv, gap);
            size_t q = 0;
            for (; q < nb; q++) {
                j += 1 + gap[q]; /* < n_post + 2^53: no overflow */
                if (j >= n_post) break;
                uint32_t col = (uint32_t)j;
                if (skip_self && col == i) continue;
                EMIT(e, i, col);
            }
            if (q < nb) break;
        }
    }
    return 0;
}

/* k distinct values of [0, m) into out[0..k), by Floyd's algorithm (Bentley
 * & Floyd, CACM 30(9), 1987): for v = m-k .. m-1 draw t in [0, v]; take t, or
 * v if t is already taken. Every k-subset is equally likely and there are
 * exactly k draws whatever k/m is. `used` is all zero on entry and on exit. */
static void floyd(stream *s, uint32_t m, uint32_t k, bitset *used, uint32_t *out) {
    for (uint32_t v = m - k, q = 0; q < k; v++, q++) {
        uint32_t t = s_below(s, v + 1);
        if (bit_get(used, t)) t = v;
        bit_set(used, t);
        out[q] = t;
    }
    for (uint32_t q = 0; q < k; q++) bit_clear(used, out[q]);
}

/* fixed_indegree (in = 1: row = target, drawn from the n_pre sources) and
 * fixed_outdegree (in = 0: row = source, drawn from the n_post targets).
 * Without autapses the draw is over pool-1 values and those >= the row's
 * own index shift up by one, which excludes it without rejection. */
static int fixed_degree(emit *e, uint32_t n_pre, uint32_t n_post, int skip_self, int multapses, uint32_t k,
                        uint64_t key, int in) {
    uint32_t rows = in ? n_post : n_pre, pool = in ? n_pre : n_post;
    if (k == 0 || rows == 0) return 0;
    uint32_t m = skip_self ? pool - 1 : pool;
    uint32_t *pick = NULL;
    bitset used = {NULL};
    if (!multapses && (!(pick = malloc((size_t)k * sizeof *pick)) || bits_alloc(&used, m))) {
        free(pick);
        return no_memory(e);
    }
    int st = 0;
    for (uint32_t r = 0; r < rows && !st; r++) {
        stream s;
        stream_init(&s, key, r);
        if (!multapses) floyd(&s, m, k, &used, pick);
        for (uint32_t q = 0; q < k; q++) {
            uint32_t v = multapses ? s_below(&s, m) : pick[q];
            if (skip_self && v >= r) v++;
            st = e->fn(e->user, in ? v : r, in ? r : v, e->edge++, NULL, NULL);
            if (st) break;
        }
    }
    free(pick);
    free(used.w);
    return st;
}

/* Vitter's Method A (CACM 27(7), 1984): the skip before the next of n
 * records chosen from N is found by walking its survival function
 * P(S > s) = prod_{j<=s} (N-n-j)/(N-j) until it falls below a uniform.
 * O(N) in all; Method D hands over to it once n/N is large. Returns the
 * skip and updates N and n. */
static uint64_t vitter_a_skip(stream *s, uint64_t *N, uint64_t *n) {
    uint64_t S = 0;
    if (*n == 1) {
        S = (uint64_t)((double)*N * s_open01(s));
        if (S >= *N) S = *N - 1;
    } else {
        double V = s_open01(s), top = (double)(*N - *n), Nr = (double)*N;
        double quot = top / Nr;
        while (quot > V) {
            S++;
            top -= 1.0;
            Nr -= 1.0;
            quot *= top / Nr;
        }
    }
    *N -= S + 1;
    *n -= 1;
    return S;
}

/* Vitter's Method D (ACM TOMS 13(1), 1987): the skip S to the next of n
 * records chosen from N has P(S = s) = (n/N) (N-n)_s / (N-1)_s (falling
 * factorials). Propose X = N (1 - V), V = U^(1/n), which has density
 * g(x) = (n/N)(1-x/N)^(n-1), take S = floor(X), and accept with
 * probability f(S) / (c g(X)), c = N/(N-n+1); the squeeze
 * h(s) = (n/N)(1 - s/(N-n+1))^(n-1) <= f(s) accepts most proposals without
 * the product. Each proposal takes a fresh V (the paper reuses the accepted
 * one; a fresh one costs a pow and is obviously independent). Used while
 * N > 13 n; below that Method A is as fast. */
static uint64_t vitter_d_skip(stream *s, uint64_t *N, uint64_t *n) {
    if (*n == 1 || *n >= *N / 13) return vitter_a_skip(s, N, n);
    const double Nr = (double)*N, nr = (double)*n;
    const double qu1 = Nr - nr + 1.0; /* N - n + 1: S < qu1 */
    uint64_t S;
    for (;;) {
        double X;
        do {
            X = Nr * (1.0 - pow(s_open01(s), 1.0 / nr));
        } while (X >= qu1);
        S = (uint64_t)X;
        double U = s_open01(s);
        double Sr = (double)S;
        double y1 = pow(U * Nr / qu1, 1.0 / (nr - 1.0));
        /* squeeze: U <= h(S) / (c g(X)) */
        if (y1 * (1.0 - X / Nr) * (qu1 / (qu1 - Sr)) <= 1.0) break;
        /* full test: U <= f(S) / (c g(X)), with y2 = (N-1)_S / (N-n)_S,
         * computed over min(S, n-1) factors by the falling-factorial identity */
        double y2 = 1.0, top = Nr - 1.0, bottom;
        uint64_t terms;
        if (*n - 1 > S) {
            bottom = Nr - nr;
            terms = S;
        } else {
            bottom = Nr - Sr - 1.0;
            terms = *n - 1;
        }
        for (uint64_t t = 0; t < terms; t++) {
            y2 *= top / bottom;
            top -= 1.0;
            bottom -= 1.0;
        }
        if (Nr / (Nr - X) >= y1 * pow(y2, 1.0 / (nr - 1.0))) break;
    }
    *N -= S + 1;
    *n -= 1;
    return S;
}

/* fixed_total. With multapses, n independent uniform pairs in draw order.
 * Without, a uniform n-subset of the pair indices q = pre * cols + col in
 * increasing order (Method D), so synapses come out sorted by source. With
 * autapses removed a row has n_post - 1 columns and column c >= pre stands
 * for c + 1. (The check has made sure that pairs >= 1 when n > 0.) */
static int fixed_total(emit *e, uint32_t n_pre, uint32_t n_post, int skip_self, int multapses, uint64_t n,
                       uint64_t key) {
    if (n == 0) return 0;
    uint64_t cols = skip_self ? (uint64_t)n_post - 1 : n_post;
    uint64_t pairs = (uint64_t)n_pre * cols;
    stream s;
    stream_init(&s, key, 0);
    if (multapses) { /* a uniform pair is a uniform pre and a uniform column */
        for (uint64_t q = 0; q < n; q++) {
            uint32_t pre = s_below(&s, n_pre), col = s_below(&s, (uint32_t)cols);
            if (skip_self && col >= pre) col++;
            EMIT(e, pre, col);
        }
        return 0;
    }
    uint64_t N = pairs, left = n, q = (uint64_t)-1;
    while (left > 0) {
        q += vitter_d_skip(&s, &N, &left) + 1;
        uint32_t pre = (uint32_t)(q / cols), col = (uint32_t)(q % cols);
        if (skip_self && col >= pre) col++;
        EMIT(e, pre, col);
    }
    return 0;
}

static int small_world(emit *e, uint32_t n, uint32_t k, double p, uint64_t key) {
    if (k == 0 || n == 0) return 0;
    uint32_t h = k / 2;
    uint32_t *tg = malloc((size_t)k * sizeof *tg);
    bitset cur = {NULL};
    if (!tg || bits_alloc(&cur, n)) {
        free(tg);
        return no_memory(e);
    }
    /* Rewiring needs a node outside {j} and j's k targets. */
    int can_rewire = (uint64_t)k + 1 < n;
    int st = 0;
    for (uint32_t j = 0; j < n && !st; j++) {
        for (uint32_t d = 0; d < h; d++) {
            tg[d] = (uint32_t)(((uint64_t)j + n - (h - d)) % n); /* j-h .. j-1 */
            tg[h + d] = (uint32_t)(((uint64_t)j + d + 1) % n);   /* j+1 .. j+h */
        }
        for (uint32_t q = 0; q < k; q++) bit_set(&cur, tg[q]);
        stream s;
        stream_init(&s, key, j);
        for (uint32_t q = 0; q < k; q++) {
            if (!(s_open01(&s) < p) || !can_rewire) continue;
            uint32_t w;
            do w = s_below(&s, n);
            while (w == j || bit_get(&cur, w));
            bit_clear(&cur, tg[q]);
            bit_set(&cur, w);
            tg[q] = w;
        }
        for (uint32_t q = 0; q < k; q++) bit_clear(&cur, tg[q]);
        for (uint32_t q = 0; q < k && !st; q++) st = e->fn(e->user, j, tg[q], e->edge++, NULL, NULL);
    }
    free(tg);
    free(cur.w);
    return st;
}

static int scale_free(emit *e, uint32_t n, uint32_t m, uint64_t key) {
    /* ends: both endpoints of every undirected edge so far, so a uniform
     * pick from it is a pick proportional to degree. */
    uint64_t n_edges = (uint64_t)m * (m + 1) / 2 + (uint64_t)m * (n - m - 1);
    uint32_t *ends = malloc((size_t)(2 * n_edges) * sizeof *ends);
    uint32_t *pick = malloc((size_t)m * sizeof *pick);
    bitset taken = {NULL};
    if (!ends || !pick || bits_alloc(&taken, n)) {
        free(ends);
        free(pick);
        return no_memory(e);
    }
    uint64_t len = 0;
    int st = 0;
    for (uint32_t a = 0; a <= m && !st; a++)
        for (uint32_t b = a + 1; b <= m && !st; b++) {
            ends[len++] = a, ends[len++] = b;
            st = e->fn(e->user, a, b, e->edge++, NULL, NULL);
            if (!st) st = e->fn(e->user, b, a, e->edge++, NULL, NULL);
        }
    stream s;
    stream_init(&s, key, 0);
    for (uint32_t t = m + 1; t < n && !st; t++) {
        for (uint32_t q = 0; q < m; q++) {
            uint32_t x;
            do x = ends[s_below64(&s, len)];
            while (bit_get(&taken, x));
            bit_set(&taken, x);
            pick[q] = x;
        }
        for (uint32_t q = 0; q < m; q++) {
            bit_clear(&taken, pick[q]);
            ends[len++] = t, ends[len++] = pick[q];
        }
        for (uint32_t q = 0; q < m && !st; q++) {
            st = e->fn(e->user, t, pick[q], e->edge++, NULL, NULL);
            if (!st) st = e->fn(e->user, pick[q], t, e->edge++, NULL, NULL);
        }
    }
    free(ends);
    free(pick);
    free(taken.w);
    return st;
}

int soma__connect_each(const soma_connector *c, size_t n_pre, size_t n_post, int same, uint64_t key,
                       soma__edge_fn fn, void *user, char *err, size_t errlen) {
    int st = soma__connect_check(c, n_pre, n_post, same, err, errlen);
    if (st) return st;
    if (!fn) return fail(err, errlen, SOMA_STATUS_INVALID, "no edge callback");
    if (c->rule == SOMA_CONN_FILE) return file_each(c, n_pre, n_post, same, fn, user, NULL, err, errlen);
    emit e = {fn, user, 0, soma_conn_rule_name(c->rule), err, errlen};
    uint32_t a = (uint32_t)n_pre, b = (uint32_t)n_post;
    int ns = no_self(c, same);
    switch (c->rule) {
    case SOMA_CONN_ALL_TO_ALL: st = all_to_all(&e, a, b, ns); break;
    case SOMA_CONN_ONE_TO_ONE: st = one_to_one(&e, a, ns); break;
    case SOMA_CONN_FIXED_PROBABILITY: st = fixed_probability(&e, a, b, ns, c->p, key); break;
    case SOMA_CONN_FIXED_INDEGREE: st = fixed_degree(&e, a, b, ns, c->multapses, (uint32_t)c->k, key, 1); break;
    case SOMA_CONN_FIXED_OUTDEGREE: st = fixed_degree(&e, a, b, ns, c->multapses, (uint32_t)c->k, key, 0); break;
    case SOMA_CONN_FIXED_TOTAL: st = fixed_total(&e, a, b, ns, c->multapses, c->n, key); break;
    case SOMA_CONN_SMALL_WORLD: st = small_world(&e, a, (uint32_t)c->k, c->p, key); break;
    case SOMA_CONN_SCALE_FREE: st = scale_free(&e, a, (uint32_t)c->k, key); break;
    }
    return st;
}

double soma__connect_expected(const soma_connector *c, size_t n_pre, size_t n_post, int same) {
    double a = (double)n_pre, b = (double)n_post;
    double self = no_self(c, same) ? a : 0.0;
    switch (c->rule) {
    case SOMA_CONN_ALL_TO_ALL: return a * b - self;
    case SOMA_CONN_ONE_TO_ONE: return self > 0 ? 0.0 : a;
    case SOMA_CONN_FIXED_PROBABILITY: return c->p * (a * b - self);
    case SOMA_CONN_FIXED_INDEGREE: return (double)c->k * b;
    case SOMA_CONN_FIXED_OUTDEGREE: return (double)c->k * a;
    case SOMA_CONN_FIXED_TOTAL: return (double)c->n;
    case SOMA_CONN_SMALL_WORLD: return (double)c->k * a;
    case SOMA_CONN_SCALE_FREE: {
        double m = (double)c->k;
        return c->k < n_pre ? 2.0 * (m * (m + 1) / 2 + m * (a - m - 1)) : 0.0;
    }
    case SOMA_CONN_FILE: {
        uint64_t lines = 0;
        if (file_each(c, n_pre, n_post, same, NULL, NULL, &lines, NULL, 0)) return 0.0;
        return (double)lines;
    }
    }
    return 0.0;
}
