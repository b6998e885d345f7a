/* kaggle/ensemble_cli: the digits-ensemble stage (several models' class probabilities -> submission.csv, its
 * manifest and a validation estimate) as library calls: its options, its usage text and its run;
 * ensemble_main.c only strings them together. The arithmetic (votes, fitted weights, estimates) is
 * kaggle/ensemble.h; the submission format is kaggle/submission.h.
 *
 * A MEMBER argument is RUN_DIR=TEST.npy (a digits-train run directory: val_pred.npy, val_ids.npy, result.json, and
 * its test probabilities), RUN_DIR (test probabilities from RUN_DIR/test_probs.npy) or TEST.npy (test probabilities
 * only: no estimate, no fitting). Every member is loaded and checked before anything is computed or written. */
#ifndef KG_ENSEMBLE_CLI_H
#define KG_ENSEMBLE_CLI_H

#include <stdio.h>

#include "core/dg_err.h"

typedef enum kg_ens_method {
    KG_ENS_SOFT, /* mean probability */
    KG_ENS_HARD, /* majority vote, ties by summed probability */
    KG_ENS_FIT   /* soft vote, weights fitted on the members' shared validation rows */
} kg_ens_method;

/* "soft", "hard", "fit" */
const char *kg_ens_method_name(kg_ens_method m);

typedef struct kg_ensemble_cli_opts {
    kg_ens_method method;   /* -m (default soft; "weighted" is read as fit) */
    const char *weights;    /* -w: comma-separated weights, one per member; NULL: equal (excludes fit) */
    const char *train;      /* --train: the labelled train dataset the validation ids index (data/train.npy) */
    const char *sample;     /* --sample: a sample_submission.csv whose row count the submission must have, or NULL */
    long rows;              /* --rows: the row count the submission must have; 0: not given */
    const char *output;     /* -o: the submission (submission.csv) */
    const char *manifest;   /* --manifest; NULL: the output with .csv replaced by .manifest.json */
    const char *probs_out;  /* --probs-out: the ensemble's test probabilities, float32 .npy (N, 10), or NULL */
    int estimate_only;      /* --estimate-only: the estimate JSON to `out`; no test probabilities, nothing written */
    const char *val_pred;   /* --val-pred: the file in each run directory with its validation probabilities
                               (val_pred.npy; a file name, no '/') */
    char *const *members;   /* MEMBER arguments (at least 1) */
    int n_members;
    int argc;               /* the command line the manifest records: argv as the parse left it */
    char *const *argv;
    FILE *log;              /* summary lines: stderr; NULL with --quiet */
    FILE *out;              /* the --estimate-only JSON: stdout */
    int help;               /* --help given: print the usage, do nothing else */
} kg_ensemble_cli_opts;

/* Defaults, then argv (see core/dg_cli.h for the shape). 0, or DG_EXIT_USAGE with the message in err: a bad
 * option value, no MEMBER, --weights with --method fit or not one non-negative number per MEMBER (summing > 0). */
int kg_ensemble_cli_parse(int argc, char **argv, kg_ensemble_cli_opts *o, dg_err *err);
/* The usage text with the defaults. */
void kg_ensemble_cli_usage(FILE *out);
/* Load the members, weigh them, estimate on validation rows, vote on the test rows; then write the manifest's
 * temporary, --probs-out, the submission (checked), and rename the manifest into place last (a manifest never
 * describes a submission that is not there); or, with estimate_only, print the manifest JSON to o->out.
 * DG_EXIT_OK or DG_EXIT_FAIL (nothing written). */
int kg_ensemble_cli_run(const kg_ensemble_cli_opts *o, dg_err *err);

#endif
