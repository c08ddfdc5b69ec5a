/* clock.c — the monotonic clock of clock.h and its public name. */
#define _POSIX_C_SOURCE 200809L
#include <time.h>
#include "soma.h"
#include "core/clock.h"

double soma__now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double soma_clock_seconds(void) { return soma__now(); }
