/* augment/augment_cli: the digits-augment stage as library calls (the shape of core/dg_cli.h): its options parsed
 * into a struct, its --help text, and the run, so that tests call what the main calls.
 *
 * A run expands a dataset with random distortions, streaming to disk in OpenMP batches. Output rows, in order: the
 * originals (with keep), then copy 0 of every image, copy 1, ... Copy c of image i is drawn from
 * dg_rng(seed, DG_RNG_AUGMENT, epoch + c, i): the distortion digits-train --augment with the same policy and seed
 * gives image i in epoch E + c. With replay, the rows and their parameters come from a --params-out file instead.
 * Memory stays bounded (one batch of images at a time); nothing appears under the output names unless the whole run
 * succeeds (SIGINT and SIGTERM during a run make it fail cleanly).
 * Not here: the transforms (augment/augment.h), the parameters files (augment/params_file.h), the dataset sinks
 * (core/dg_sink.h). */
#ifndef AUG_AUGMENT_CLI_H
#define AUG_AUGMENT_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "core/dg_err.h"

#define AUG_CLI_MAX_COPIES 100000

typedef struct aug_cli_opts {
    const char *data;       /* --data: input dataset (core/dg_dataset.h), labelled or not */
    const char *out;        /* --out: output path (core/dg_sink.h) */
    const char *format;     /* --format: dataset | npy | idx | csv (default dataset) */
    const char *policy;     /* --policy: preset or policy file (default kaggle); unused with replay */
    const char *params_out; /* --params-out: .npy or .jsonl of every output row's parameters, or NULL */
    const char *replay;     /* --replay: regenerate the rows of this params file, or NULL */
    const char *preview;    /* --preview: PNG grid of originals beside their first copies, or NULL */
    long copies;            /* --copies: 1..AUG_CLI_MAX_COPIES (default 1) */
    long epoch;             /* --epoch: epoch of copy 0 (default 0) */
    long batch;             /* --batch: images per parallel batch (default 1024); the output does not depend on it */
    long threads;           /* --threads: 0 (default) means dg_default_threads(); the caller sets them */
    long preview_rows;      /* --preview-rows (default 10) */
    long preview_copies;    /* --preview-copies (default 8) */
    uint64_t seed;          /* --seed (default 1) */
    int keep;               /* --keep-originals */
    int quiet;              /* --quiet: no progress bar and no summary line */
    int help;               /* --help given: print aug_cli_usage and do nothing else */
    FILE *log;              /* the summary line of a finished run (default stderr; NULL: none) */
} aug_cli_opts;

/* Defaults, then argv (getopt is reset, so it may be called again). 0, or DG_EXIT_USAGE with a message naming the
 * option in err: a bad value, a missing --data or --out, an unknown --format, --epoch + --copies past 2^32 - 1,
 * --replay with --policy, --copies, --keep-originals or --preview, a --params-out name not ending in .npy or
 * .jsonl, or a stray argument. */
int aug_cli_parse(int argc, char **argv, aug_cli_opts *o, dg_err *err);

/* The --help text, with the live defaults. */
void aug_cli_usage(FILE *out);

/* Write the output files (and the params file and preview if asked), or nothing at all. DG_EXIT_OK, DG_EXIT_FAIL
 * (message in err; bad policy, unreadable dataset, too little free space, write error, signal) or DG_EXIT_USAGE
 * (an unknown format). */
int aug_cli_run(const aug_cli_opts *o, dg_err *err);

#endif
