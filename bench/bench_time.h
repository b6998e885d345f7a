/* bench/bench_time: what the speed benchmarks share: a monotonic clock in seconds and a comparison for qsort of
 * step times (for the median and fastest step). */
#ifndef BENCH_BENCH_TIME_H
#define BENCH_BENCH_TIME_H

#include <time.h>

static inline int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#endif
