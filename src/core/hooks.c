/* hooks.c — caller-owned hook sets and their resolution against an
 * executor's site table (the ask phase), shared by the trainer and the
 * simulator. */
#include "core/hooks.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct hook_entry {
    char site[160];
    int kind;
    soma_hook_fn fn;
    void *user;
} hook_entry;

struct soma_hooks {
    hook_entry *e;
    size_t n, cap;
};

int soma_hooks_create(soma_hooks **h) {
    if (!h) return SOMA_STATUS_INVALID;
    *h = calloc(1, sizeof **h);
    return *h ? SOMA_STATUS_OK : SOMA_STATUS_NOMEM;
}

void soma_hooks_free(soma_hooks *h) {
    if (!h) return;
    free(h->e);
    free(h);
}

size_t soma_hooks_count(const soma_hooks *h) { return h ? h->n : 0; }

int soma_hooks_add(soma_hooks *h, const char *site, int kind, soma_hook_fn fn, void *user) {
    if (!h || !site || !fn || kind < SOMA_HOOK_READ || kind > SOMA_HOOK_GRAD) return SOMA_STATUS_INVALID;
    if (strlen(site) >= sizeof h->e[0].site) return SOMA_STATUS_INVALID;
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 8;
        hook_entry *ne = realloc(h->e, cap * sizeof *ne);
        if (!ne) return SOMA_STATUS_NOMEM;
        h->e = ne, h->cap = cap;
    }
    hook_entry *e = &h->e[h->n++];
    snprintf(e->site, sizeof e->site, "%s", site);
    e->kind = kind;
    e->fn = fn;
    e->user = user;
    return SOMA_STATUS_OK;
}

const char *soma__hook_kind_name(int kind) {
    static const char *const names[] = {"read", "mask", "override", "grad"};
    return kind >= 0 && kind < 4 ? names[kind] : "?";
}

/* Length of the part of a site name that names its population or
 * projection ("hidden" of "hidden.v", "in->hidden" of "in->hidden.out"). */
static size_t owner_len(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot ? (size_t)(dot - name) : strlen(name);
}

/* "no site 'x'; close: a, b; sites are <pop>.spikes, ...": the sites of the
 * same owner or with the same last part, else the first few. */
static void not_found(const char *name, const soma_site_info *sites, size_t n, char *err, size_t errlen) {
    char list[768] = "";
    size_t on = owner_len(name), shown = 0;
    const char *tail = name + on;
    for (size_t i = 0; i < n && shown < 12; i++) {
        size_t sl = owner_len(sites[i].name);
        if ((sl == on && strncmp(sites[i].name, name, on) == 0) || strcmp(sites[i].name + sl, tail) == 0) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "", sites[i].name);
            shown++;
        }
    }
    const char *what = "close names";
    if (!shown) {
        what = "sites";
        for (size_t i = 0; i < n && i < 12; i++) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "", sites[i].name);
        }
        if (n > 12) {
            size_t len = strlen(list);
            snprintf(list + len, sizeof list - len, ", ... (%zu in all)", n);
        }
    }
    snprintf(err, errlen, "no site '%s' in this network; %s: %s (sites are <pop>.spikes, <pop>.<state>, "
             "<from>-><to>.in, <from>-><to>.out)", name, what, list);
}

int soma__hookplan_build(soma__hookplan *p, const soma_hooks *h, const soma_site_info *sites, size_t nsites,
                         char *err, size_t errlen) {
    memset(p, 0, sizeof *p);
    size_t n = h ? h->n : 0;
    size_t *site_of = malloc((n ? n : 1) * sizeof *site_of);
    p->off = calloc(nsites + 1, sizeof *p->off);
    p->kinds = calloc(nsites ? nsites : 1, sizeof *p->kinds);
    p->h = malloc((n ? n : 1) * sizeof *p->h);
    if (!site_of || !p->off || !p->kinds || !p->h) {
        free(site_of);
        soma__hookplan_free(p);
        snprintf(err, errlen, "out of memory for hooks");
        return SOMA_STATUS_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        size_t s = 0;
        while (s < nsites && strcmp(sites[s].name, h->e[i].site) != 0) s++;
        if (s == nsites) {
            not_found(h->e[i].site, sites, nsites, err, errlen);
            free(site_of);
            soma__hookplan_free(p);
            return SOMA_STATUS_NOTFOUND;
        }
        site_of[i] = s;
        p->off[s + 1]++;
        p->kinds[s] |= SOMA_HOOK_BIT(h->e[i].kind);
    }
    for (size_t s = 0; s < nsites; s++) p->off[s + 1] += p->off[s];
    /* Counting sort by site keeps the order in which hooks were added. */
    size_t *pos = malloc((nsites ? nsites : 1) * sizeof *pos);
    if (!pos) {
        free(site_of);
        soma__hookplan_free(p);
        snprintf(err, errlen, "out of memory for hooks");
        return SOMA_STATUS_NOMEM;
    }
    memcpy(pos, p->off, nsites * sizeof *pos);
    for (size_t i = 0; i < n; i++)
        p->h[pos[site_of[i]]++] = (soma__hook){site_of[i], h->e[i].kind, h->e[i].fn, h->e[i].user};
    free(pos);
    free(site_of);
    p->n = n;
    p->nsites = nsites;
    pthread_mutex_init(&p->lock, NULL);
    return SOMA_STATUS_OK;
}

void soma__hookplan_free(soma__hookplan *p) {
    if (p->nsites || p->n) pthread_mutex_destroy(&p->lock);
    free(p->h);
    free(p->off);
    free(p->kinds);
    memset(p, 0, sizeof *p);
}

/* Call the hooks of kind k of site s; 1 if one cancelled. Under p->lock. */
static int call_kind(soma__hookplan *p, size_t s, int k, soma_hook_event *ev) {
    for (size_t i = p->off[s]; i < p->off[s + 1]; i++) {
        if (p->h[i].kind != k) continue;
        if (p->cancel) return 1;
        ev->kind = k;
        if (p->h[i].fn(p->h[i].user, ev)) {
            snprintf(p->cancel_site, sizeof p->cancel_site, "%s", ev->site);
            p->cancel_step = ev->step;
            __atomic_store_n(&p->cancel, 1, __ATOMIC_RELAXED);
            return 1;
        }
    }
    return 0;
}

int soma__hookplan_run(soma__hookplan *p, size_t s, unsigned kinds, soma_hook_event *ev, float *mask) {
    kinds &= p->kinds[s];
    if (!kinds) return 0;
    pthread_mutex_lock(&p->lock);
    size_t m = ev->batch * ev->n;
    if (!p->cancel && (kinds & SOMA_HOOK_BIT(SOMA_HOOK_MASK))) {
        for (size_t i = 0; i < m; i++) mask[i] = 1.0f;
        float *values = ev->data;
        ev->data = mask;
        int c = call_kind(p, s, SOMA_HOOK_MASK, ev);
        ev->data = values;
        if (!c)
            for (size_t i = 0; i < m; i++) values[i] *= mask[i];
    }
    if (kinds & SOMA_HOOK_BIT(SOMA_HOOK_OVERRIDE)) call_kind(p, s, SOMA_HOOK_OVERRIDE, ev);
    if (kinds & SOMA_HOOK_BIT(SOMA_HOOK_READ)) call_kind(p, s, SOMA_HOOK_READ, ev);
    if (kinds & SOMA_HOOK_BIT(SOMA_HOOK_GRAD)) call_kind(p, s, SOMA_HOOK_GRAD, ev);
    int c = p->cancel;
    pthread_mutex_unlock(&p->lock);
    return c;
}
