/* kaggle/ingest_cli: the digits-ingest stage (Kaggle CSV -> dataset file) as library calls: its options, its
 * usage text and its run; ingest_main.c only strings them together. The conversion itself is kaggle/ingest.h. */
#ifndef KG_INGEST_CLI_H
#define KG_INGEST_CLI_H

#include <stdio.h>

#include "kaggle/ingest.h"
#include "core/dg_err.h"

typedef struct kg_ingest_cli_opts {
    kg_ingest_opts ingest; /* --expect, --threads (0: dg_default_threads()), --reference */
    const char *input;     /* IN.csv */
    const char *output;    /* -o OUT.npy */
    FILE *log;             /* the summary line: stderr; NULL with --quiet */
    int help;              /* --help given: print the usage, do nothing else */
} kg_ingest_cli_opts;

/* Defaults, then argv (see core/dg_cli.h for the shape). 0, or DG_EXIT_USAGE with the message in err. */
int kg_ingest_cli_parse(int argc, char **argv, kg_ingest_cli_opts *o, dg_err *err);
/* The usage text with the defaults. */
void kg_ingest_cli_usage(FILE *out);
/* Ingest o->input into o->output, then the summary line to o->log. DG_EXIT_OK or DG_EXIT_FAIL (nothing written). */
int kg_ingest_cli_run(const kg_ingest_cli_opts *o, dg_err *err);

#endif
