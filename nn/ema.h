/* nn/ema: an exponential moving average (EMA, Polyak averaging) of a network's weights, as timm's ModelEmaV2.
 *
 * After the k-th optimizer step (k = 1, 2, ...; the optimizer's step count after the step), every parameter and
 * every batch-norm running statistic is averaged:
 *     ema = d_k * ema + (1 - d_k) * live,    d_k = min(D, (1 + k) / (10 + k))
 * starting from ema = the initial weights. The warm-up (1 + k) / (10 + k) is TensorFlow's ExponentialMovingAverage
 * with num_updates: early steps average over few steps, so a short run is not dominated by the random
 * initialization. d_1 = 0.18, d_90 = 0.91; d_k reaches 0.99 at k = 890 and 0.999 at k = 8990, so until then the
 * average spans about the last k / 9 steps.
 * Training continues on the live weights; the average is what nn/train evaluates and exports.
 * Element-wise in float, one thread: the result does not depend on the thread count.
 * Not here: where the average lives in a run or a checkpoint (nn/train.c, nn/checkpoint.h).
 */
#ifndef NN_EMA_H
#define NN_EMA_H

#include <stddef.h>
#include <stdint.h>

/* d_k = min(D, (1 + k) / (10 + k)) for the k-th step (k >= 1), in float. */
float nn_ema_decay(float D, uint64_t k);

/* ema (n) = d * ema + (1 - d) * live (n). */
void nn_ema_update(float *ema, const float *live, size_t n, float d);

/* Exchange a (n) and b (n): puts the average into a net for evaluation and takes the live weights back, exactly. */
void nn_ema_swap(float *a, float *b, size_t n);

#endif
