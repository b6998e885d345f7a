/* kaggle/serve_cli: the digits-serve stage (a local page where a person draws a digit, and POST /predict for
 * tools; kaggle/serve.h) as library calls: its options, its usage text and its run; serve_main.c strings them
 * together. */
#ifndef KG_SERVE_CLI_H
#define KG_SERVE_CLI_H

#include <stdio.h>

#include "kaggle/serve.h"
#include "core/dg_err.h"

typedef struct kg_serve_cli_opts {
    kg_serve_config c;        /* --host, --port, --tta, --threads, --max-body, --timeout, --max-conns; models */
    const char **models;      /* --models PATH (repeatable) and MODEL arguments, malloc'd: kg_serve_cli_free */
    FILE *out;                /* the "listening on" line: stdout */
    int help;
} kg_serve_cli_opts;

/* Defaults, then argv (see core/dg_cli.h for the shape). 0, or DG_EXIT_USAGE with the message in err. */
int kg_serve_cli_parse(int argc, char **argv, kg_serve_cli_opts *o, dg_err *err);
void kg_serve_cli_usage(FILE *out);
void kg_serve_cli_free(kg_serve_cli_opts *o);
/* Load the models, listen, print "digits-serve: listening on http://HOST:PORT/" to o->out, and serve until
 * SIGINT or SIGTERM. DG_EXIT_OK or DG_EXIT_FAIL. */
int kg_serve_cli_run(const kg_serve_cli_opts *o, dg_err *err);

#endif
