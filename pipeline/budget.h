/* pipeline/budget: budget-adaptive planning for a preset with an `adapt` line (pipeline/preset.h).
 *
 * The budget (budget_minutes) covers the whole `pipeline/run`: install, build, data, then digits-pipeline's
 * ingest -> train -> predict -> ensemble. pipeline/run exports its start time as DIGITS_RUN_START (UNIX seconds);
 * without it the budget starts when digits-pipeline does.
 *
 *   1. Speed: each member model's training is timed on this machine as it will run (digits-train --calibrate:
 *      `jobs` processes side by side with the member stages' threads, nn/calibrate.h), giving per run the seconds
 *      of one epoch (fit images / train img/s + validation images / predict img/s) and of what does not grow with
 *      epochs (train start-up, predicting the test set).
 *   2. Epochs (pl_budget_choose): the most E in the preset's MIN..MAX such that
 *          elapsed + before + members(E) + after <= budget - margin
 *      where members(E) is the finish time of the runs' chains (start-up + E epochs + predict) handed in order to
 *      `jobs` lanes, each to the lane free first (as pipeline/schedule runs them), before the stages still to run
 *      ahead of the members (ingest, augment) and after the ensemble. Below MIN nothing fits: MIN is used and the
 *      plan says so.
 *   3. Deadlines (pl_budget_deadlines): each train stage gets --deadline: the budget's end less half the margin,
 *      the ensemble, its own predict stage and the chains after it in its lane. digits-train shortens a run whose
 *      remaining epochs no longer fit (the machine slowed down), re-targeting its schedule, and lengthens it back
 *      toward the planned epochs when the pace recovers (nn/train.h).
 *   4. The choice is written to WORK/budget.json; a later run of the same preset text in the same work directory
 *      keeps it (same commands, so finished stages stay up to date and an interrupted one resumes) and only
 *      renews the deadlines. Remove the file to plan again.
 */
#ifndef PL_BUDGET_H
#define PL_BUDGET_H

#include <stdio.h>

#include "core/dg_err.h"
#include "pipeline/plan.h"

typedef struct pl_budget_in {
    double budget_s;       /* the preset's budget */
    double elapsed_s;      /* since the budget started (DIGITS_RUN_START) */
    double margin_s;       /* kept free */
    double before_s;       /* stages still to run before the members (ingest, augment) */
    double after_s;        /* after the members (the ensemble) */
    int jobs;              /* lanes: members at once, >= 1 */
    int n_runs;
    const double *start_s;   /* (n_runs) a train stage's start-up and finish, as it will run */
    const double *epoch_s;   /* (n_runs) one epoch (fit + validation), as it will run */
    const double *predict_s; /* (n_runs) its predict stage, as it will run */
    int min_epochs, max_epochs;
} pl_budget_in;

typedef struct pl_budget_out {
    int epochs;            /* every run's epochs */
    int fits;              /* 0: even min_epochs does not fit (min_epochs chosen) */
    double left_s;         /* budget - elapsed */
    double members_s;      /* the members' lanes at `epochs` */
    double end_s;          /* elapsed + before + members + after: the planned end, from the budget's start */
} pl_budget_out;

/* The members' finish time with every run at `epochs`: chains in run order, each to the lane free first. */
double pl_budget_span(const pl_budget_in *in, int epochs);

/* Step 2 above. 0, or -1 with err for bad input (no runs, jobs < 1, a speed <= 0, min > max). */
int pl_budget_choose(const pl_budget_in *in, pl_budget_out *out, dg_err *err);

/* Step 3 above: deadline_s[i] (n_runs), seconds from the budget's start by which run i's training should end. */
void pl_budget_deadlines(const pl_budget_in *in, int epochs, double *deadline_s);

/* Steps 1-4 for a built and decided plan of `preset` (with an adapt line): calibrates (or reads WORK/budget.json),
 * sets the preset's members to the chosen epochs, rebuilds and decides the plan with them and the calibrated
 * speeds, adds the deadlines, and prints what it chose and why to out. dry_run: nothing is written (no
 * budget.json), and without a runnable digits-train the plan keeps the preset's epochs with a note. 0, or -1 with
 * err. */
int pl_budget_plan(pl_plan *plan, pl_preset *preset, int dry_run, FILE *out, dg_err *err);

#endif
