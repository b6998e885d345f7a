/* nn/gan: training a conditional GAN (a generator and a discriminator given as specs) and sampling from it.
 *
 * One training step (docs/gan.md): D on a real batch (target 1) and on G's images of the same labels (target 0),
 * their gradients summed, one Adam step on D; then G through the updated D with the non-saturating loss (target 1),
 * one Adam step on G. Each optimizer takes its spec's `train` line (lr, beta1, beta2, eps); the batch size and the
 * epochs come from the generator's. Real pixels are scaled to [-1, 1]; the last partial batch of an epoch is
 * dropped. Randomness is keyed (core/dg_rng): the order by (seed, SHUFFLE, epoch), the noise of image b of step s by
 * (seed, GAN noise, epoch, s * batch + b), so a run does not depend on the thread count.
 *
 * The run directory:
 *   gan.ckpt           after every epoch: both specs, both nets' parameters and buffers, both optimizers' state,
 *                      the epochs done (the RNG position: every stream is keyed by the epoch). nn/checkpoint's
 *                      format, spec text "[generator]\n<G>[discriminator]\n<D>"; no times in it, so a resumed run's
 *                      checkpoint is byte-identical to an uninterrupted one's.
 *   grid-epoch-NNN.png after every epoch: 10 rows (labels 0..9) of 10 images from the same fixed noise
 *   metrics.jsonl      one line per epoch: epoch, loss_d (real + fake), loss_g, d_real (mean D(x)), d_fake (mean
 *                      D(G(z)) before D's step), images_per_s, and the steps and seconds these cover
 * A deadline stops training after the step during which it passes, possibly mid-epoch: the checkpoint then holds the
 * nets after that step (its epoch field counts the whole epochs, its optimizer step count the steps, which places
 * the stop), metrics.jsonl a line for the part of the epoch done ("partial":true), the grid that epoch's name. A
 * resume continues from that step with the same noise and order as an uninterrupted run (its checkpoint is
 * byte-identical to one); the resumed epoch's metrics line covers the steps after the resume only.
 * Not here: options and messages of the stage (nn/gan_cli.h).
 */
#ifndef NN_GAN_H
#define NN_GAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/dg_err.h"

#define NN_GAN_CKPT "gan.ckpt"
#define NN_GAN_MAX_SAMPLES 100000000L /* 78.5 GB of dataset: beyond that, a typo */

typedef struct nn_gan_train_opts {
    const char *data;     /* labelled dataset (.npy) */
    const char *run;      /* run directory (created) */
    const char *gen;      /* generator spec: a file or a name in experiments/models */
    const char *disc;     /* discriminator spec */
    uint64_t seed;
    int epochs;           /* 0: the generator spec's */
    int stop_at;          /* stop once the run holds this many epochs (0: run to epochs) */
    int resume;           /* continue the run directory from gan.ckpt (also from a deadline's mid-epoch stop) */
    double deadline;      /* on dg_now()'s clock: stop after the step during which it passes, 0: none */
    size_t limit;         /* train on the first `limit` rows only (0: all) */
    FILE *log;            /* one line per epoch; NULL: quiet */
} nn_gan_train_opts;

int nn_gan_train(const nn_gan_train_opts *o, dg_err *err);

typedef struct nn_gan_sample_opts {
    const char *run;      /* run directory or its gan.ckpt */
    const char *out;      /* labelled dataset to write */
    const char *grid;     /* PNG grid of the first 100 images (rows = labels for label -1), or NULL */
    int label;            /* 0..9, or -1: image i gets label i % 10 */
    long n;               /* images, 1..NN_GAN_MAX_SAMPLES */
    uint64_t seed;
} nn_gan_sample_opts;

/* Same run, seed, label and n: byte-identical files (the noise of image i is keyed by (seed, i)). Checks the free
 * disk space before writing; nothing appears under the output names unless everything succeeded. */
int nn_gan_sample(const nn_gan_sample_opts *o, dg_err *err);

#endif
