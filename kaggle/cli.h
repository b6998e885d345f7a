/* kaggle/cli: what the command-line parsers of the kaggle/ stages share (ingest_cli, export_cli, predict_cli,
 * ensemble_cli): getopt errors as messages instead of getopt's own printing, usage failures, a suffix test.
 * Nothing here is specific to Kaggle; these are candidates for core/dg_cli. */
#ifndef KG_CLI_H
#define KG_CLI_H

#include "core/dg_err.h"

/* Reset getopt for a new parse of argv: optind = 0 (glibc re-initialises), opterr = 0 (getopt prints nothing;
 * kg_cli_bad_option words the message). Pass optstrings that begin with ':' so that a missing argument
 * returns ':' rather than '?'. */
void kg_cli_getopt_reset(void);

/* The message for what getopt_long returned as c ('?': an unknown option or an argument to a flag; ':': an
 * option without its argument), naming the option as argv wrote it. Returns DG_EXIT_USAGE. */
int kg_cli_bad_option(int c, char *const *argv, dg_err *err);

/* dg_fail for a usage error: formats the message into err and returns DG_EXIT_USAGE. */
int kg_cli_usage_fail(dg_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* 1 if s ends with suffix. */
int kg_ends_with(const char *s, const char *suffix);

#endif
