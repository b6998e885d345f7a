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
 */
#ifndef NN_SCHEDULE_H
#define NN_SCHEDULE_H

#include "nn/spec.h"

typedef struct nn_sched {
    double scale;    /* plateau: current factor, 1 at start */
    double best;     /* plateau: best validation loss so far (INFINITY at start) */
    int bad_epochs;  /* plateau: epochs since the last improvement */
} nn_sched;

void nn_sched_init(nn_sched *s);

/* Learning rate of step `step` (0-based) within epoch `epoch` (0-based), with steps_per_epoch steps an epoch. */
float nn_sched_lr(const nn_hyper *h, const nn_sched *s, int epoch, int step, int steps_per_epoch);

/* Tell the schedule an epoch ended with validation loss val_loss. Returns 1 if the learning rate was reduced. */
int nn_sched_epoch_end(const nn_hyper *h, nn_sched *s, double val_loss);

#endif
