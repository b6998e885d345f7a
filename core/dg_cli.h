/* dg_cli: strict number parsing for command-line options and spec files, and the common stage options.
 * "12x", "", " 3", "1e999" and out-of-range values are rejected, never silently truncated (no atoi). */
#ifndef DG_CLI_H
#define DG_CLI_H

#include <stdint.h>

#include "core/dg_err.h"

/* Each returns 0 and stores the value, or -1 (value untouched) if s is not entirely a number in [lo, hi]. */
int dg_parse_long(const char *s, long lo, long hi, long *out);
int dg_parse_u64(const char *s, uint64_t *out);
int dg_parse_float(const char *s, double lo, double hi, float *out);
int dg_parse_double(const char *s, double lo, double hi, double *out);

/* Threads to use: the OMP_NUM_THREADS / --threads value if set, else the number of online CPUs. */
int dg_default_threads(void);
/* Set OpenMP's and OpenBLAS's thread count together (one pool). */
void dg_set_threads(int n);

/* Every stage has the same shape, so that its main stays a few lines and tests call the rest:
 *   int <stage>_parse(int argc, char **argv, <stage>_opts *o, dg_err *err);  defaults first, then argv;
 *       0, or DG_EXIT_USAGE with the message in err ("--epochs 0: expected an integer in 1..100000");
 *       `--help` sets o->help. It resets getopt (optind = 0), so it may be called more than once.
 *   int <stage>_run(const <stage>_opts *o, dg_err *err);  DG_EXIT_OK, DG_EXIT_FAIL or DG_EXIT_USAGE.
 * dg_cli_exit ends a main: for rc != DG_EXIT_OK it prints "prog: message" to stderr (adding " (see --help)" to a
 * usage error), and it returns rc. */
int dg_cli_exit(const char *prog, int rc, const dg_err *err);

#endif
