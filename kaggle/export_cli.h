/* kaggle/export_cli: the digits-export stage (dataset file -> CSV, .npy, IDX or dataset, through core/dg_sink.h)
 * as library calls: its options, its usage text and its run; export_main.c only strings them together. */
#ifndef KG_EXPORT_CLI_H
#define KG_EXPORT_CLI_H

#include <stdio.h>

#include "core/dg_err.h"
#include "core/dg_sink.h"

typedef struct kg_export_cli_opts {
    dg_format format;   /* --format (required) */
    const char *input;  /* IN.npy, a dataset file */
    const char *output; /* -o PATH */
    FILE *log;          /* the summary line: stderr; NULL with --quiet */
    int help;           /* --help given: print the usage, do nothing else */
} kg_export_cli_opts;

/* Defaults, then argv (see core/dg_cli.h for the shape). 0, or DG_EXIT_USAGE with the message in err. */
int kg_export_cli_parse(int argc, char **argv, kg_export_cli_opts *o, dg_err *err);
/* The usage text. */
void kg_export_cli_usage(FILE *out);
/* Write every image (and label) of o->input to o->output, then the summary line to o->log. DG_EXIT_OK or
 * DG_EXIT_FAIL (no output file appears). */
int kg_export_cli_run(const kg_export_cli_opts *o, dg_err *err);

#endif
