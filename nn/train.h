/* nn/train: a training run as a library call: dataset -> stratified split -> epochs of shuffled mini-batches ->
 * a run directory with a resumable checkpoint every epoch and, at the end, the model and its validation outputs.
 *
 * Run directory (the digits-train contract):
 *   spec.txt           resolved spec (model + hyperparameters actually used, canonical text of nn_spec_format)
 *   metrics.jsonl      one JSON object per epoch (epoch, train_loss, train_acc, val_loss, val_acc, lr, seconds,
 *                      images_per_s; with ema on also val_loss_live, val_acc_live); rewritten atomically each epoch
 *                      from the checkpoint's copy
 *   checkpoint.ckpt    nn/checkpoint.h, written atomically after every epoch
 *   model.safetensors  final model (nn/model.h); with early stopping the best-validation-loss weights
 *   val_pred.npy       (Nval, 10) float32 probabilities of the final model on the validation rows
 *   val_ids.npy        (Nval,) int64 row indices of those rows in the dataset
 *   val_pred_live.npy  with ema on only: (Nval, 10) probabilities of the live weights of the last epoch
 *   result.json        written last: {"val_acc", "val_loss", "epochs", "seconds", "seed", "split", "model"}
 *   invocation.json    how the run was started (written by the first call, kept on resume): {"command", "cwd",
 *                      "started", "version", "host", "cpu", "cpus", "threads", "blas"}
 * With tensorboard set, each epoch also appends its scalars (loss/train, loss/val, accuracy/train, accuracy/val,
 * lr, images_per_s at step = epoch) to an event file in that directory (core/dg_tfevents.h).
 *
 * Weight averaging: with the spec's ema=D (or opts.ema) on, a moving average of the weights and batch-norm
 * statistics follows training (nn/ema.h); it is the model evaluated (val_loss, val_acc, early stopping, the plateau
 * schedule) and exported (model.safetensors, val_pred.npy, result.json), while training continues on the live
 * weights, whose validation figures go to metrics.jsonl as val_loss_live and val_acc_live. The average is part of
 * the checkpoint.
 *
 * Reproducibility: the epoch order comes from dg_rng(seed, DG_RNG_SHUFFLE, epoch, 0), dropout from
 * (seed, DG_RNG_DROPOUT, global step), augmentation from (seed, DG_RNG_AUGMENT, epoch, row), initialization from
 * (seed, DG_RNG_INIT, 0, tensor). A run resumed from its checkpoint therefore ends with the same bits as one that
 * never stopped (same seed and thread count).
 * Not here: option parsing and exit codes (nn/train_cli.h), the kernels (nn/net.c).
 */
#ifndef NN_TRAIN_H
#define NN_TRAIN_H

#include <stdint.h>
#include <stdio.h>

#include "nn/spec.h"
#include "core/dg_err.h"

/* nn_train_run's return value for a usage error (bad option value for this dataset/model), besides 0 and -1. */
#define NN_TRAIN_USAGE (-2)

typedef struct nn_train_opts {
    const char *data;      /* labelled dataset .npy (core/dg_dataset.h) */
    const char *model;     /* model NAME (experiments/models/NAME.spec) or spec PATH */
    const char *run_dir;   /* created if missing */
    uint64_t seed;         /* init, shuffling, dropout, augmentation */
    uint64_t split_seed;   /* the validation split */
    double val_frac;       /* stratified hold-out fraction, used when folds == 0 */
    int folds, fold;       /* stratified K-fold: fold (1..folds) validates */
    int epochs, batch;     /* overrides of the spec's values; 0 keeps the spec's */
    float lr;              /* override; 0 keeps the spec's */
    const char *augment;   /* override: policy name or path, "none"; NULL keeps the spec's */
    float ema;             /* override of the spec's ema= decay: 0 turns EMA off, (0, 1) sets it; < 0 keeps the
                              spec's (the default) */
    int resume;            /* continue from run_dir/checkpoint.ckpt */
    int stop_after;        /* return after this many epochs of this call, leaving the checkpoint exactly as a kill
                              would (0: no limit); for resume tests and time-sliced runs */
    int stop_at;           /* return once the run has this many epochs in all, counting those before a resume, with
                              the learning-rate schedule still spanning the spec's epochs (0: no limit); the
                              rungs of a successive-halving sweep (experiments/sweep_exec.c) */
    double deadline;       /* wall-clock time (UNIX seconds, CLOCK_REALTIME) by which training should end, or 0:
                              at each epoch's end, when the epochs left would not fit the time left at the pace
                              of the last epochs (nn_train_pace), the run is shortened (nn_train_replan; at least one more epoch) and a
                              cosine/onecycle schedule re-targeted to end at its final value (nn/schedule.h); a
                              shortened run whose pace recovers is lengthened back toward the spec's epochs the
                              same way; the new total goes into the checkpoint, so --resume keeps it */
    double (*clock)(void *arg); /* the wall clock the deadline is read against (NULL: CLOCK_REALTIME); for tests */
    void *clock_arg;
    FILE *log;             /* per-epoch lines and a progress bar (on a terminal); NULL: silent */
    const char *tensorboard; /* directory for TensorBoard event files, or NULL */
    const char *command;   /* the command line invocation.json records, or NULL (recorded as null) */
    const char *mix;       /* a second labelled dataset (e.g. digits-gan sample's) mixed into training batches, or
                              NULL: the last round(mix_frac * b) rows of every batch of b are drawn from it, row
                              dg_rng(seed, NN_RNG_MIX, epoch, step) below its size, augmented like the others (keyed
                              as row N + its index); validation never sees it */
    double mix_frac;       /* in (0, 1) with mix */
} nn_train_opts;

/* Defaults of the digits-train contract: seed 1, split seed 1, val_frac 0.1, no overrides (ema -1), log stderr. */
void nn_train_opts_defaults(nn_train_opts *o);

/* The spec a run trains: o->model with o's overrides applied, re-parsed from its canonical text, so spec->text
 * is the resolved spec. Returns 0, -1 (file or parse error) or NN_TRAIN_USAGE (bad override). */
int nn_train_spec(nn_spec *spec, const nn_train_opts *o, dg_err *err);

/* 0 if spec is a digit classifier (input 1x28x28, 10 class logits), which is what training and calibration feed
 * and expect; else NN_TRAIN_USAGE with the reason in err. */
int nn_train_spec_fits(const nn_spec *spec, dg_err *err);

/* The pace a deadline is planned at: the mean duration of the last NN_TRAIN_PACE_EPOCHS (or fewer) of the n epoch
 * durations in epoch_s (oldest first); 0 for none. A mean rather than the last epoch alone: a single slow epoch
 * (another process's burst) would otherwise cut several. */
#define NN_TRAIN_PACE_EPOCHS 3
double nn_train_pace(const double *epoch_s, int n);

/* The share of the time left that a lengthened run keeps in hand: with it, the pace that lengthened a run must
 * worsen by more than ~11% before the next re-plan shortens it again (no see-saw on noise). */
#define NN_TRAIN_LENGTHEN_SLACK 0.1

/* The epochs in all a run should have after `done` of `total` epochs, at epoch_s seconds an epoch, with left_s
 * seconds left before its deadline, and at most `max` (the spec's epochs; total <= max):
 *   - the epochs left do not fit ((total - done) x epoch_s > left_s): done + floor(left_s / epoch_s), at least
 *     done + 1 (a shortened schedule still needs an epoch to anneal);
 *   - they fit and total < max (an earlier re-plan shortened the run, and the pace has since recovered):
 *     min(max, done + floor((1 - NN_TRAIN_LENGTHEN_SLACK) x left_s / epoch_s)) if that is more than total;
 *   - else total (also when done >= total: a finished schedule is not reopened, or epoch_s <= 0). */
int nn_train_replan(int done, int total, int max, double epoch_s, double left_s);

/* Run (or resume) training. Returns 0 once result.json is written (also when run_dir already holds a finished run
 * and o->resume is set), 1 when stopped by o->stop_after or o->stop_at before the end, NN_TRAIN_USAGE for a usage error, -1 for
 * any other failure (including a diverging loss; the last good checkpoint stays). */
int nn_train_run(const nn_train_opts *o, dg_err *err);

#endif
