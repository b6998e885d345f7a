/* nn/internal/conv_plan: which kernels nn_conv2d_forward and nn_conv2d_backward run for a layer shape and batch
 * size, and the workspace they lay out: the dispatcher's decision, reported for tests.
 *
 * NOT API (see nn/internal/gemm_conv.h). Kernel names, per pass:
 *   forward:         gconv (implicit GEMM, 6x16 tiles), sconv (12x8 tiles, OC not a multiple of 16), planar (one
 *                    input channel, pixels along the vector), wino2 / wino4 (Winograd F(2x2,3x3) / F(4x4,3x3)),
 *                    s2d_wino4 (stride 2 as F(4x4,3x3) on the space-to-depth input)
 *   input gradient:  scatter (gconv backward data), gather (gconv forward of the transposed convolution),
 *                    wino2_t / wino4_t (Winograd of the transposed convolution), rowseg (conv_small row segments),
 *                    s2d_wino2 / s2d_wino4 (Winograd of the space-to-depth convolution's transposed convolution)
 *   weight gradient: gconv, sconv, wino2 / wino4 (F(3x3,2x2) / F(4x4,3x3) on the weight gradient), s2d_wino2
 * and "im2col" for all three on the portable path (no AVX2, or DIGITS_NO_AVX2 set).
 */
#ifndef NNK_CONV_PLAN_H
#define NNK_CONV_PLAN_H

#include <stddef.h>

#include "nn/layers.h"

typedef struct nnk_conv_choice {
    const char *fwd, *dgrad, *wgrad; /* the kernel of each pass (names above) */
    int split;                       /* 1: the whole batch at once, channel blocks over threads; 0: image groups */
    int groups, chunk;               /* groups of images and images per chunk (split: 1 and B) */
    size_t slot, area, floats;       /* floats of one packed-weights slot, of one group's area, of the workspace */
} nnk_conv_choice;

/* The plan of the forward call (backward = 0) or of the backward call (backward = 1) for B images of d. The two
 * share one scratch of nn_conv2d_scratch(d, B) floats (at least floats of either). */
nnk_conv_choice nnk_conv_choice_get(const nn_conv_dims *d, int B, int backward);

#endif
