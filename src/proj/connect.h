/* connect.h — connectivity rules (connect.c): enumerate the synapses of a
 * projection drawn by a connector, the same sequence on every call. */
#ifndef SOMA_CONNECT_H
#define SOMA_CONNECT_H
#include <stddef.h>
#include <stdint.h>
#include "soma.h"

/* ------------------------------------------------ connectors (connect.c) */
/* Called once per synapse. pre and post are indices in the two populations;
 * edge numbers the synapses 0, 1, 2, ... in enumeration order. w and d are
 * the weight and delay (ms) read from an edge-list file (NULL when the file
 * has no such column, and always for other rules). A nonzero return stops
 * the enumeration and is returned. */
typedef int (*soma__edge_fn)(void *user, uint32_t pre, uint32_t post, uint64_t edge, const double *w,
                             const double *d);
/* Enumerate the synapses of a projection from a population of n_pre to one
 * of n_post neurons (same = 1 when they are the same population, which
 * autapses and the graph rules refer to), drawing with `key`. The order and
 * the synapses depend only on (c, n_pre, n_post, same, key): calling twice
 * gives the same sequence. Errors (bad parameters, an edge-list line that
 * does not parse or names a neuron out of range) return
 * SOMA_STATUS_INVALID / IO / FORMAT with err = "FILE:LINE: reason" for files,
 * else the reason. */
int soma__connect_each(const soma_connector *c, size_t n_pre, size_t n_post, int same, uint64_t key,
                       soma__edge_fn fn, void *user, char *err, size_t errlen);
/* Expected synapse count (exact where the rule fixes it; for files, a count
 * of the lines), for memory estimates before building. */
double soma__connect_expected(const soma_connector *c, size_t n_pre, size_t n_post, int same);
/* Check a connector's parameters against the population sizes (p in [0,1],
 * k <= n, k even for small_world, one_to_one needs equal sizes ...). */
int soma__connect_check(const soma_connector *c, size_t n_pre, size_t n_post, int same, char *err, size_t errlen);

#endif
