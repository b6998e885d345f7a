/* pipeline/cli: digits-pipeline's options and the whole run behind its main (the shape of core/dg_cli.h).
 *
 * pl_run loads the preset, builds and decides the plan (pipeline/plan.h), prints it, and unless it is a dry run
 * runs it (pipeline/schedule.h): ingest -> train members -> predict -> ensemble as child processes of the sibling
 * executables, each stage skipped when its inputs have not changed, so re-running after a crash resumes. */
#ifndef PL_CLI_H
#define PL_CLI_H

#include <stdio.h>

#include "core/dg_err.h"

typedef struct pl_cli_opts {
    const char *preset;   /* experiments/presets/NAME.preset or a file */
    const char *data_dir; /* the competition CSVs; the .npy files are written beside them */
    const char *work;     /* NULL: runs/<preset name> */
    const char *output;   /* the submission */
    const char *bin_dir;  /* NULL: the directory of this executable */
    int threads;          /* 0: dg_default_threads() */
    int jobs;             /* 0: the preset's jobs= */
    int dry_run;          /* print the plan only */
    int help;
} pl_cli_opts;

/* Defaults, then argv (getopt_long; resets optind, so it may be called again). DG_EXIT_OK (with o->help set for
 * -h/--help, the options after it unread), or DG_EXIT_USAGE with the message in err. */
int pl_parse(int argc, char **argv, pl_cli_opts *o, dg_err *err);

/* The --help text, with the live defaults. */
void pl_usage(FILE *out);

/* The run: the plan and the status lines go to out, warnings and the piped children's lines to log.
 * DG_EXIT_OK or DG_EXIT_FAIL (with err). */
int pl_run(const pl_cli_opts *o, FILE *out, FILE *log, dg_err *err);

#endif
