/* experiments/report/report_cli: the digits-report stage (the shape of core/dg_cli.h): one self-contained HTML
 * page for a training run (rp_run.h), an ensemble (rp_ensemble.h), a sweep (rp_sweep.h) or an augmentation policy
 * (rp_augment.h). The page is built whole in memory, then written atomically: a failure leaves no HTML behind.
 * --follow keeps a running training's or sweep's page current: it renders again whenever the inputs change
 * (metrics.jsonl and result.json; sweep.db and its WAL), the page reloading itself while the run is live, and
 * returns once the run has finished (result.json) or the sweep is no longer live (no trial under a lease) and
 * nothing changed for one interval. */
#ifndef RP_REPORT_CLI_H
#define RP_REPORT_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "core/dg_err.h"

typedef enum rp_kind { RP_NONE, RP_RUN, RP_ENSEMBLE, RP_AUGMENT, RP_SWEEP } rp_kind;

typedef struct rp_report_cli_opts {
    rp_kind kind;
    const char *source;   /* --run DIR, --ensemble MANIFEST, --augment POLICY or --sweep DIR */
    const char *output;   /* -o; NULL: DIR/report.html for a run or a sweep directory, report.html otherwise */
    const char *data;     /* --data: the dataset; NULL: what the model file records (run, ensemble) */
    int gallery;          /* --gallery N: at most N mistaken digits (default 60) */
    int count, copies;    /* --count, --copies: augmentation originals and copies of each (16, 5) */
    uint64_t seed;        /* --seed: augmentation draws (1) */
    int open;             /* --open: print the page's file:// URL to out */
    int live;             /* --live S: a running training's or sweep's page, reloading every S seconds */
    int follow;           /* --follow S: re-render on every change (polled every S seconds) until the run ends */
    int follow_idle;      /* --follow on a run: give up after this many seconds without a change (3600) */
    int help;
    FILE *out;            /* stdout */
} rp_report_cli_opts;

int rp_report_cli_parse(int argc, char **argv, rp_report_cli_opts *o, dg_err *err);
void rp_report_cli_usage(FILE *out);
/* Build the page and write it. DG_EXIT_OK, DG_EXIT_FAIL (nothing written) or DG_EXIT_USAGE. */
int rp_report_cli_run(const rp_report_cli_opts *o, dg_err *err);

#endif
