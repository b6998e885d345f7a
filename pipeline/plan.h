/* pipeline/plan: the stages digits-pipeline runs for a preset, what each will do, and how long it should take.
 *
 * Stages, in order (each a child process of a sibling executable, see pipeline/driver.h):
 *   ingest-train, ingest-test   digits-ingest DATA/{train,test}.csv -> DATA/{train,test}.npy (when the CSV exists)
 *   augment-train[, -test]      digits-augment -> WORK/data/{train,test}-aug.npy, if the preset has an augment line
 *   train-NAME                  digits-train, one per member (per fold with K folds) -> WORK/members/NAME/
 *   predict-NAME                digits-predict on DATA/test.npy with the preset's TTA -> WORK/preds/NAME.npy
 *   ensemble                    digits-ensemble -> the submission + its manifest
 * NAME is <model>-s<seed> (plus -f<k> with K folds). Stamps live in WORK/stamps/.
 *
 * Concurrency (jobs): ingest and augment run first, one at a time with all T threads; then the members' chains
 * (train-NAME, predict-NAME) run up to `jobs` at a time, each stage with max(1, T / jobs) threads; the ensemble
 * runs last. jobs is capped at the number of members that have something to do, so a lone member left to resume
 * gets all T threads.
 *
 * Time estimate, in seconds, of a stage that will run (one that is up to date counts 0):
 *   train     2 + epochs * (n_fit / train_ips + n_val / predict_ips)   (the validation pass every epoch is
 *             inference; epochs left for a resumed run: epochs - lines of its metrics.jsonl)
 *   predict   1 + n_test * tta / predict_ips
 *   ingest    0.5 + CSV bytes / 300e6
 *   augment   1 + images written / PL_AUGMENT_IPS
 *   ensemble  1
 * (the constant terms are each program's start-up). These are times alone on the machine.
 * With jobs = N > 1 a member stage is slower by job_slowdown = N / speedup, speedup = min(N, T) x the preset's
 * jobs_efficiency (1 if min(N, T) = 1): N concurrent members deliver speedup times the throughput of one alone.
 * The members' part of the total is then the finish time of their chains handed in order to N lanes, each chain
 * to the lane free first (sum / speedup when the chains are equal and N divides their count).
 * images/s (ips) per model, as one stage alone with T threads, come from, in order:
 *   1. measured: the median images_per_s of the model's lines in WORK/../<any preset>/timings.jsonl, which
 *      digits-pipeline appends after each train (the run's median epoch speed) and predict stage; a line
 *      measured with jobs > 1 counts images_per_s / jobs_efficiency. Train speeds without such lines: the median
 *      of every epoch in WORK/../<any preset>/members/<model>-s<seed>/metrics.jsonl, as is;
 *   2. configured: the preset's `speed model=M train=.. predict=..` line;
 *   3. guessed from the model's FLOPs (nn_net_flops): train PL_TRAIN_GFLOPS / (3 x forward FLOPs), predict
 *      PL_PREDICT_GFLOPS / forward FLOPs, rough rates of deotte on a 2-core machine (bench/RESULTS.md).
 */
#ifndef PL_PLAN_H
#define PL_PLAN_H

#include <stddef.h>
#include <stdio.h>

#include "core/dg_err.h"
#include "pipeline/driver.h"
#include "pipeline/preset.h"

#define PL_TRAIN_GFLOPS 70.0   /* effective GFLOP/s of forward+backward (3 x forward FLOPs) */
#define PL_PREDICT_GFLOPS 40.0 /* effective GFLOP/s of inference */
#define PL_AUGMENT_IPS 20000.0 /* images/s of digits-augment (affine policies) */

typedef struct pl_opts {
    char bin_dir[1024];  /* where digits-ingest, -train, -predict, -ensemble are */
    char data_dir[1024]; /* train.csv, test.csv, sample_submission.csv; train.npy and test.npy are written here */
    char work[1024];     /* runs/<preset> */
    char output[1024];   /* the submission */
    int threads;         /* T: ingest, augment and ensemble get all of them */
    int jobs;            /* members at once, >= 1 (the preset's jobs= or --jobs) */
} pl_opts;

typedef enum pl_kind { PL_INGEST, PL_AUGMENT, PL_TRAIN, PL_PREDICT, PL_ENSEMBLE } pl_kind;

/* One trained model: a preset member, on one fold when the preset uses folds. */
typedef struct pl_member_run {
    char name[256];
    char run_dir[1400];
    char pred[1400];          /* its test probabilities */
    const pl_member *member;
    int fold;                 /* 1..K, or 0 for the hold-out */
    int epochs;               /* resolved (the member's or the spec's) */
    char spec_path[4096];
    double train_ips, predict_ips;
    char speed_from[64];      /* "measured", "preset", "FLOPs guess" */
} pl_member_run;

typedef struct pl_step {
    pl_stage stage;
    pl_kind kind;
    int run;                  /* index into runs, -1 if none */
    pl_action action;
    char why[256];
    double estimate_s;        /* as it will run: member stages include the job_slowdown */
    size_t images;            /* images this step pushes through a net (for timings) */
} pl_step;

typedef struct pl_plan {
    pl_opts o;
    const pl_preset *preset;
    size_t n_train, n_test, n_fit, n_val;
    int n_runs, n_steps;
    pl_member_run *runs;
    pl_step *steps;
    int jobs;                 /* members at once: min(o.jobs, members with work to do), at least 1 */
    int job_threads;          /* --threads of member stages: max(1, T / jobs) */
    double job_slowdown;      /* a member stage's time / its time alone (1 with jobs = 1) */
    double total_s;           /* the wall time: stages before and after the members + the members' lanes */
} pl_plan;

/* Build the stages for a preset. Reads the data files' sizes and the model specs; runs nothing. */
int pl_plan_build(pl_plan *plan, const pl_preset *p, const pl_opts *o, dg_err *err);

/* Decide every step (pl_stage_decide), settle jobs and the member stages' --threads, and estimate times. A step
 * whose inputs are written by an earlier step that will run is planned to run too (it re-checks when its turn
 * comes). */
int pl_plan_decide(pl_plan *plan, dg_err *err);

/* The plan as a table: stages, members, actions, estimates, total vs the budget, where the speeds came from. */
void pl_plan_print(const pl_plan *plan, FILE *out);

/* "1h02m", "4m10s", "12s" */
void pl_format_seconds(char *buf, size_t n, double s);

/* Record a finished train or predict step's speed in WORK/timings.jsonl (rewritten atomically): a predict step's
 * images / seconds, a train step's median epoch images_per_s from its metrics.jsonl; with threads and jobs. */
int pl_plan_record_timing(const pl_plan *plan, const pl_step *step, double seconds, dg_err *err);

/* The manifest written beside a submission: "sub.csv" -> "sub.manifest.json", "sub" -> "sub.manifest.json". */
void pl_manifest_path(char *out, size_t n, const char *output);

void pl_plan_free(pl_plan *plan);

#endif
