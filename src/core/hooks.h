/* hooks.h — what both executors share of hooks: a site table, and a plan
 * (the ask phase's result) that resolves a caller's hook set against it
 * once, so that the run loops only test a kind mask per site. */
#ifndef SOMA_HOOKS_H
#define SOMA_HOOKS_H
#include <pthread.h>
#include "soma.h"

#define SOMA_HOOK_BIT(kind) (1u << (kind))

typedef struct soma__hook {
    size_t site;
    int kind;
    soma_hook_fn fn;
    void *user;
} soma__hook;

/* A resolved hook set: hooks sorted by site (then in the order added),
 * off[s]..off[s+1] the hooks of site s, kinds[s] their kinds as bits. */
typedef struct soma__hookplan {
    soma__hook *h;
    size_t n;
    size_t *off;       /* [nsites + 1] */
    unsigned *kinds;   /* [nsites] */
    size_t nsites;
    int cancel;        /* set (atomically) when a hook returned nonzero */
    char cancel_site[160];
    size_t cancel_step;
    pthread_mutex_t lock; /* serializes the callbacks of threads */
} soma__hookplan;

/* Resolve the set h against sites[0..nsites) into p (which must be zeroed or
 * freed before). Unknown site: SOMA_STATUS_NOTFOUND and a message naming
 * the close sites in err. p is left empty on error. */
int soma__hookplan_build(soma__hookplan *p, const soma_hooks *h, const soma_site_info *sites, size_t nsites,
                         char *err, size_t errlen);
void soma__hookplan_free(soma__hookplan *p);
/* Run the hooks of `kinds` (bits) of site s on ev->data ([batch][n]): MASK
 * hooks fill mask (batch*n floats, set to 1 here), which then multiplies
 * the data; OVERRIDE hooks, then READ hooks (or GRAD hooks) see the data.
 * A nonzero return of a hook sets p->cancel; once it is set no hook is
 * called. Calls are serialized by p->lock. Returns p->cancel. */
int soma__hookplan_run(soma__hookplan *p, size_t s, unsigned kinds, soma_hook_event *ev, float *mask);
static inline int soma__hookplan_cancelled(const soma__hookplan *p) {
    return __atomic_load_n(&p->cancel, __ATOMIC_RELAXED);
}
const char *soma__hook_kind_name(int kind);
#endif
