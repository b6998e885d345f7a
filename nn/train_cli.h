/* nn/train_cli: the digits-train stage as library calls (the shape of core/dg_cli.h): its options parsed into a
 * struct, its --help text, and the run, so that tests call what the main calls.
 * Not here: the training itself (nn/train.h), the model summary (nn/net.h). */
#ifndef NN_TRAIN_CLI_H
#define NN_TRAIN_CLI_H

#include <stdio.h>

#include "core/dg_err.h"
#include "nn/train.h"

typedef struct nn_train_cli_opts {
    nn_train_opts train; /* what nn_train_run gets; --quiet sets train.log to NULL */
    int threads;         /* --threads: OpenMP and OpenBLAS threads (default dg_default_threads()); the caller sets
                            them (dg_set_threads) before nn_train_cli_run */
    int summary;         /* --summary: print the model's summary to out instead of training */
    double calibrate;    /* --calibrate SECONDS: time training and inference steps (nn/calibrate.h) and print one
                            JSON line to out instead of training; 0: off */
    int help;            /* --help given: print nn_train_cli_usage and do nothing else */
    FILE *out;           /* where --summary prints (NULL by default: the summary is built, not printed) */
    char command[8192];  /* argv as one shell line (dg_cli_join_command), for invocation.json; a longer one ends
                            in " ..." */
} nn_train_cli_opts;

/* Defaults, then argv (getopt is reset, so it may be called again). 0, or DG_EXIT_USAGE with a message naming the
 * option in err: a bad value, a missing --model (or --data/--run without --summary), --folds without --fold,
 * --folds with --val-frac, --fold above --folds, or a stray argument (DG_EXIT_FAIL: out of memory). */
int nn_train_cli_parse(int argc, char **argv, nn_train_cli_opts *o, dg_err *err);

/* The --help text, with the live defaults. */
void nn_train_cli_usage(FILE *out);

/* --summary: the model's layers, shapes, parameters and FLOPs to o->out; --calibrate: a JSON line
 * {"model", "batch", "threads", "train_ips", "predict_ips", "train_steps", "predict_steps"} to o->out; otherwise nn_train_run(&o->train).
 * DG_EXIT_OK once result.json is written (or the summary printed), DG_EXIT_USAGE for a usage error,
 * DG_EXIT_FAIL for any other failure (message in err). */
int nn_train_cli_run(const nn_train_cli_opts *o, dg_err *err);

#endif
