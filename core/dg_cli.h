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
/* Set OpenMP's and OpenBLAS's thread count together (one pool). If the OpenBLAS loaded is not the OpenMP build,
 * OpenBLAS gets one thread, so that its own pthreads and our OpenMP threads cannot fight for the cores. */
void dg_set_threads(int n);
/* 1 if the OpenBLAS loaded at run time is its OpenMP build (openblas_get_parallel() == 2). */
int dg_blas_is_openmp(void);

/* The first call of every stage main. It is the one place for process-wide settings:
 * - OpenMP's wait policy: unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT, GOMP_SPINCOUNT=1000, so that a
 *   2-thread stage does not collapse when another process takes a core (libgomp's default spins ~300 ms;
 *   docs/pipeline.md). libgomp reads it only when the program starts, so the stage re-executes itself once with it
 *   set (/proc/self/exe); if that fails it goes on with the default policy.
 * - The OpenBLAS build: if it is not the OpenMP one, one note on stderr ("prog: note: ...").
 * - DIGITS_TRAP_FE=1 (a debugging switch, as KANN's kad_trap_fe): floating-point invalid operation, division by
 *   zero and overflow trap (feenableexcept), so the process dies with SIGFPE at the instruction that made the first
 *   NaN or Inf, for a debugger or core dump to show. Underflow and inexact stay masked (exp of a large negative
 *   underflows legitimately). It covers this thread and the OpenMP threads it starts; threads an OpenBLAS pthread
 *   build starts when it loads are not covered (that build runs BLAS on one thread here anyway).
 * Stages started by digits-pipeline inherit its environment and so do not re-execute. */
void dg_stage_init(const char *prog, char **argv);
/* That wait policy's value (a parent may put it in a child's environment to spare the child's re-execution). */
#define DG_GOMP_SPINCOUNT "1000"

/* Every stage has the same shape, so that its main stays a few lines and tests call the rest:
 *   int <stage>_parse(int argc, char **argv, <stage>_opts *o, dg_err *err);  defaults first, then argv;
 *       0, or DG_EXIT_USAGE with the message in err ("--epochs 0: expected an integer in 1..100000");
 *       `--help` sets o->help. It resets getopt (optind = 0), so it may be called more than once.
 *   int <stage>_run(const <stage>_opts *o, dg_err *err);  DG_EXIT_OK, DG_EXIT_FAIL or DG_EXIT_USAGE.
 * dg_cli_exit ends a main: for rc != DG_EXIT_OK it prints "prog: message" to stderr (adding " (see --help)" to a
 * usage error), and it returns rc. */
int dg_cli_exit(const char *prog, int rc, const dg_err *err);

/* What the stage parsers share. dg_cli_getopt_reset() before the getopt_long loop: optind = 0 (glibc starts
 * afresh) and opterr = 0 (getopt prints nothing). When getopt_long returns '?' or ':', dg_cli_bad_option(c, ...)
 * puts getopt's own wording into err and returns DG_EXIT_USAGE:
 *   unrecognized option '--bogus'            option '--s' is ambiguous; possibilities: '--seed' '--split-seed'
 *   option '--quiet' doesn't allow an argument   option '--data' requires an argument
 *   invalid option -- 'z'                    option requires an argument -- 'o'
 * shortopts and longopts are those given to getopt_long. dg_cli_usage formats a usage error into err and returns
 * DG_EXIT_USAGE. dg_ends_with: 1 if s ends with suffix. */
struct option;
void dg_cli_getopt_reset(void);
int dg_cli_bad_option(int c, char *const *argv, const char *shortopts, const struct option *longopts, dg_err *err);
int dg_cli_usage(dg_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int dg_ends_with(const char *s, const char *suffix);
/* argv (argc words) as one shell command line, a word quoted ('...', with ' as '\'') unless it is plain
 * (letters, digits, _./=:,+-@%), for the records stages keep of how they were run. malloc'd; NULL if out of memory. */
char *dg_cli_join_command(int argc, char *const *argv);

#endif
