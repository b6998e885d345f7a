/* nn/schedule: learning rate as a function of (epoch, step) and, for reduce-on-plateau, of the validation losses
 * seen so far. All state is in nn_sched (a plain struct a checkpoint stores).
 *
 *   constant  lr
 *   step      lr * gamma^floor(epoch / step_epochs)
 *   exp       lr * gamma^epoch                                   (per epoch; Keras LearningRateScheduler style)
 *   cosine    min_lr + (lr - min_lr) (1 + cos(pi s / S)) / 2       (per step s of S = epochs * steps_per_epoch)
 *   onecycle  torch OneCycleLR, cos annealing, pct_start 0.3: from peak/25 up to peak = max_lr (0: 10 lr), then
 *             down to peak/25/1e4                                 (per step)
 *   plateau   lr * scale, scale *= gamma when the validation loss has not improved by 1e-4 (relative) for more
 *             than `patience` epochs (torch ReduceLROnPlateau), never below min_lr
 *
 * Shortening a run (nn_sched_retarget): cosine and onecycle are curves over the spec's S = epochs * steps_per_epoch
 * steps. When a run is cut to fewer epochs, the steps still to come are mapped linearly onto the rest of that curve
 * (step a -> v0 + (a - a0) k, v(a0) = the curve's position so far, the new last step -> S - 1), so the learning
 * rate goes on from where it was without a jump and the last step still takes the curve's final value. A shortened
 * run lengthened back (up to the spec's epochs) is re-targeted the same way: the rest of the curve stretched. Without a
 * re-target the map is the identity (v = a exactly) and results are the same bits as before. constant, step, exp
 * and plateau do not depend on the total: a shortened run just stops earlier.
 */
#ifndef NN_SCHEDULE_H
#define NN_SCHEDULE_H

#include "nn/spec.h"

typedef struct nn_sched {
    double scale;    /* plateau: current factor, 1 at start */
    double best;     /* plateau: best validation loss so far (INFINITY at start) */
    int bad_epochs;  /* plateau: epochs since the last improvement */
    double warp_at;  /* re-target: run step a0 where the current map starts (0) */
    double warp_v;   /* re-target: curve position v0 at a0 (0) */
    double warp_k;   /* re-target: curve steps per run step (1) */
} nn_sched;

void nn_sched_init(nn_sched *s);

/* Learning rate of step `step` (0-based) within epoch `epoch` (0-based), with steps_per_epoch steps an epoch. */
float nn_sched_lr(const nn_hyper *h, const nn_sched *s, int epoch, int step, int steps_per_epoch);

/* Tell the schedule an epoch ended with validation loss val_loss. Returns 1 if the learning rate was reduced. */
int nn_sched_epoch_end(const nn_hyper *h, nn_sched *s, double val_loss);

/* Re-target cosine/onecycle at the start of epoch `done` (epochs completed) for a run of new_epochs epochs in all
 * (done < new_epochs <= h->epochs; h->epochs stays the spec's): see above. Other schedules: nothing changes. */
void nn_sched_retarget(const nn_hyper *h, nn_sched *s, int done, int new_epochs, int steps_per_epoch);

/* 1 if the schedule has been re-targeted (the map is not the identity). */
int nn_sched_retargeted(const nn_sched *s);

#endif
