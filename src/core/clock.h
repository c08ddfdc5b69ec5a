/* clock.h — the library's one clock, for the time spent in phases of work
 * (trainer profile, simulator build and run times). */
#ifndef SOMA_CLOCK_H
#define SOMA_CLOCK_H

/* Seconds on CLOCK_MONOTONIC: only differences mean anything. The public
 * soma_clock_seconds (soma.h) is the same clock, for the CLI. */
double soma__now(void);
#endif
