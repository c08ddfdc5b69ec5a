/* analysis.h — helpers shared by the spike statistics and the simulator
 * plots, so both lay bins and windows on the step grid the same way. */
#ifndef SOMA_ANALYSIS_H
#define SOMA_ANALYSIS_H
#include "soma.h"

#include <stddef.h>
#include <stdint.h>

/* First index in sp[0..n) whose step is >= s (sp sorted by step). */
size_t soma__spike_lower_bound(const soma_spike *sp, size_t n, uint64_t s);
/* ms as a whole number of steps of dt_ms (rounded to nearest), or 0 when
 * that is under half a step (or not a number). */
uint64_t soma__whole_steps(double ms, double dt_ms);
#endif
