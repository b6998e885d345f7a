/* experiments/sweep_cli: the digits-sweep stage (the shape of core/dg_cli.h): options, --help, and the run:
 * a sweep file becomes configurations, each replicate a digits-train process in DIR/trials/, the decisions of
 * sweep_strategy.h, the results in DIR/sweep.db, and at the end the leaderboard and the best spec
 * (sweep_report.h). Stopped at any moment (kill -9 included) and started again with the same file and DIR, it goes
 * on where it was: finished trials are kept, interrupted ones resume from their checkpoints. docs/sweeps.md.
 */
#ifndef SW_CLI_H
#define SW_CLI_H

#include <stdio.h>

#include "core/dg_err.h"

typedef struct sw_cli_opts {
    const char *sweep;     /* the sweep file (the one argument) */
    const char *data;      /* --data: labelled dataset .npy */
    const char *dir;       /* --dir: the sweep's directory (default sweeps/NAME, NAME = the file's base name) */
    char dir_buf[512];
    int workers;           /* --workers: trials at once (default 1) */
    int threads;           /* --threads: per trial (default: the file's "threads", else CPUs / workers) */
    int retry_failed;      /* --retry-failed: failed trials run again */
    const char *train;     /* --train: the digits-train program (default: next to digits-sweep) */
    int top;               /* --top: leaderboard rows printed (default 20) */
    double status_every;   /* seconds between status lines (default 30) */
    double lease;          /* --lease: under MPI, seconds of silence after which a worker rank is dead (30) */
    double run_for;        /* --for: seconds after the start at which the sweep stops as at budget.until (the earlier
                              of the two counts); 0: none */
    const char *tensorboard; /* --tensorboard: each trial's TensorBoard events go to TB/cCCCC-rR (NULL: none) */
    int help;
    FILE *out;             /* the leaderboard (stdout from the main; NULL: none) */
    FILE *log;             /* a line per finished trial and the status lines (stderr; --quiet: NULL) */
} sw_cli_opts;

int sw_cli_parse(int argc, char **argv, sw_cli_opts *o, dg_err *err);
void sw_cli_usage(FILE *out);
/* DG_EXIT_OK when every configuration is decided (complete, pruned or failed) or the deadline stopped the sweep
 * (the message says so in the log); DG_EXIT_FAIL on an error (the sweep's finished work stays in DIR). */
int sw_cli_run(const sw_cli_opts *o, dg_err *err);

#endif
