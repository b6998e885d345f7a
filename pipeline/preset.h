/* pipeline/preset: what digits-pipeline runs, in a small text file (experiments/presets/NAME.preset).
 *
 * One statement per line, '#' starts a comment, parsed strictly like the model specs: an unknown keyword or key,
 * a bad number, a missing value or a repeated setting is an error "file:line: message".
 *
 *   split val-frac=0.1 split-seed=1        stratified hold-out (default: val-frac=0.1 split-seed=1)
 *   split folds=5 split-seed=1             K-fold: every member is trained K times, once per fold
 *   member model=deotte seed=1 [epochs=45] [augment=kaggle|none|FILE] [batch=64] [lr=0.001]
 *   members model=deotte seeds=1-15 [epochs=..] [augment=..] [batch=..] [lr=..]     one member per seed
 *   tta=4                                  test-time augmentation views for digits-predict (default 1)
 *   ensemble=soft                          soft | hard | fit (digits-ensemble --method; default soft)
 *   budget_minutes=15                      the plan warns when its estimate exceeds this
 *   jobs=2                                 members trained at the same time (default 1; see docs/pipeline.md)
 *   jobs_efficiency=0.76                   for the estimate: the throughput of `jobs` concurrent members with
 *                                          T/jobs threads each, over jobs x that of one member alone with T
 *                                          threads (default PL_JOBS_EFFICIENCY)
 *   speed model=deotte train=400 predict=2500    images/s on this machine, for the time estimate
 *   adapt epochs=8-40 [margin=0.08] [calibrate=4]
 *                                          budget-adaptive planning (needs budget_minutes): digits-pipeline times
 *                                          the members' training on this machine (calibrate= seconds each, side by
 *                                          side as they will run) and gives every member the most epochs in
 *                                          MIN..MAX that fit the budget less margin= of it; the members' own
 *                                          epochs= are then ignored. Training gets a deadline and is shortened if
 *                                          the machine slows down (pipeline/budget.h)
 *   augment policy=kaggle [copies=1] [originals=yes] [seed=1] [apply=train]
 *                                          an offline digits-augment stage before training (see below)
 *
 * Offline augmentation: apply=train expands the training file (originals, then `copies` distorted copies); the
 * members then train on it. digits-train splits that expanded file, so distorted copies of validation images
 * are trained on and the validation estimate is optimistic: prefer `augment=` on members (fresh distortions
 * every epoch, no leak). apply=both is for deterministic preprocessing such as `policy=deskew`: train and test
 * files are transformed one image per image (copies=1 originals=no, enforced), so the split stays sound.
 *
 * Unset member keys (epochs, augment, batch, lr) leave the model spec's own values. A (model, seed) pair may
 * appear once. The preset says nothing about paths; digits-pipeline decides those (see docs/pipeline.md).
 */
#ifndef PL_PRESET_H
#define PL_PRESET_H

#include <stddef.h>
#include <stdint.h>

#include "core/dg_err.h"

#define PL_MAX_MEMBERS 128
#define PL_MAX_SPEEDS 32
#define PL_MAX_JOBS 64
/* Default jobs_efficiency: N members side by side deliver min(N, T) x this times the throughput of one member alone
 * with all T threads (deotte on 2 cores; the figures are in docs/pipeline.md). */
#define PL_JOBS_EFFICIENCY 0.76

typedef struct pl_member {
    char model[128];     /* model spec name or path */
    uint64_t seed;
    int epochs;          /* 0: the spec's */
    char augment[128];   /* "": the spec's */
    int batch;           /* 0: the spec's */
    double lr;           /* 0: the spec's */
    int line;            /* where it was given */
} pl_member;

typedef struct pl_speed {
    char model[128];
    double train_ips, predict_ips; /* images per second; 0: not given */
    int line;
} pl_speed;

typedef struct pl_augment {
    int on;
    char policy[128];
    int copies;              /* default 1 */
    int originals;           /* default 1 with apply=train, 0 with apply=both */
    uint64_t seed;           /* default 1 */
    int both;                /* apply=both: the test set too */
    int line;
} pl_augment;

typedef struct pl_adapt {
    int on;
    int min_epochs, max_epochs;
    double margin;           /* fraction of the budget kept free (default PL_ADAPT_MARGIN) */
    double calibrate_s;      /* seconds of timed training steps per member (default PL_ADAPT_CALIBRATE_S) */
    int line;
} pl_adapt;

#define PL_ADAPT_MARGIN 0.08
#define PL_ADAPT_CALIBRATE_S 4.0

typedef enum pl_ensemble { PL_ENS_SOFT, PL_ENS_HARD, PL_ENS_FIT } pl_ensemble;

typedef struct pl_preset {
    char file[512];          /* where it came from, for messages */
    char name[128];          /* file name without directory and ".preset" */
    double val_frac;         /* hold-out fraction (folds == 0) */
    int folds;               /* K >= 2: K-fold; 0: hold-out */
    uint64_t split_seed;
    int n_members;
    pl_member members[PL_MAX_MEMBERS];
    int tta;
    pl_ensemble ensemble;
    double budget_minutes;   /* 0: none */
    int jobs;                /* members trained at once, 1..PL_MAX_JOBS (default 1) */
    double jobs_efficiency;  /* (0, 1], default PL_JOBS_EFFICIENCY */
    int n_speeds;
    pl_speed speeds[PL_MAX_SPEEDS];
    pl_augment augment;
    pl_adapt adapt;
} pl_preset;

const char *pl_ensemble_name(pl_ensemble e);

/* Parse preset text; fname names it in messages. */
int pl_preset_parse(pl_preset *p, const char *text, const char *fname, dg_err *err);

/* The file of a preset: name_or_path itself if it contains '/' or ends in ".preset", else NAME.preset looked up
 * in $DIGITS_PRESETS, experiments/presets (from the current directory), <dir of the executable>/../../
 * experiments/presets, and the source tree this was built from. */
int pl_preset_find(const char *name_or_path, char *path, size_t n, dg_err *err);

/* Find, read and parse. */
int pl_preset_load(pl_preset *p, const char *name_or_path, dg_err *err);

#endif
