/* nn/calibrate: how fast this machine trains and evaluates a model, measured in a few seconds, for planning.
 *
 * The measurement runs the real training step of the run o describes (its network, batch, augmentation policy and
 * optimizer, nn_train_spec's overrides applied) on synthetic images, with the threads the caller has set, then
 * inference batches of the same size. The first step of each is not timed (page faults, kernel choice). Image
 * content does not change the cost of either, so no dataset is read. Run it with the thread layout the training
 * will have (several processes side by side, one per job) to measure what those jobs will get.
 * Not here: how the speeds become a plan (pipeline/budget.h).
 */
#ifndef NN_CALIBRATE_H
#define NN_CALIBRATE_H

#include "core/dg_err.h"
#include "nn/train.h"

typedef struct nn_calibration {
    double train_ips;    /* training images per second (augmentation, forward, backward, optimizer step) */
    double predict_ips;  /* inference images per second */
    int train_steps, predict_steps; /* timed batches */
    int batch;
} nn_calibration;

/* Time training steps for about `seconds` (at least 3 timed steps), then inference for a quarter of that (at least 3
 * batches). 0, -1 (err), or NN_TRAIN_USAGE (a bad model or override). */
int nn_calibrate(const nn_train_opts *o, double seconds, nn_calibration *c, dg_err *err);

#endif
