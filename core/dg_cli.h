/* dg_cli: strict number parsing for command-line options and spec files, and the common stage options.
 * "12x", "", " 3", "1e999" and out-of-range values are rejected, never silently truncated (no atoi). */
#ifndef DG_CLI_H
#define DG_CLI_H

#include <stdint.h>

/* Each returns 0 and stores the value, or -1 (value untouched) if s is not entirely a number in [lo, hi]. */
int dg_parse_long(const char *s, long lo, long hi, long *out);
int dg_parse_u64(const char *s, uint64_t *out);
int dg_parse_float(const char *s, double lo, double hi, float *out);
int dg_parse_double(const char *s, double lo, double hi, double *out);

/* Threads to use: the OMP_NUM_THREADS / --threads value if set, else the number of online CPUs. */
int dg_default_threads(void);
/* Set OpenMP's and OpenBLAS's thread count together (one pool). */
void dg_set_threads(int n);

#endif
