/* nn/net: a feed-forward network built from an nn_spec, its forward and backward passes.
 *
 * Layout: activations are NHWC (batch, height, width, channels), float32. Input x is (B, in_h, in_w, in_c) with
 * pixels scaled to [0, 1]. A classifier ends in logits (B, 10) and its loss is softmax cross-entropy; the spec's
 * `output` statement makes other nets (nn_output): `logit`, one logit and the sigmoid cross-entropy (a GAN's
 * discriminator), `image`, any shape and a gradient the caller computes (a GAN's generator).
 * Conditioning: a net with an `embed` layer takes a second input, one label (< classes) per image, through
 * nn_net_forward_cond; the layer appends the label's learned embedding to every pixel of its input. A conditional
 * GAN's generator has `input 100x1x1` (the noise vector, C = 100) and `embed` first (noise and embedding feed the
 * first dense layer); its discriminator has `input 1x28x28` and `embed` where the label should join the image or a
 * feature map (at the input it equals one-hot channels with a learned projection). Training the generator runs
 * D's backward with its input gradient (nn_net_backward_input) and passes that to G (nn_net_output_grad).
 * Memory: trainable parameters live in ONE allocation (nn_net_params), gradients in one of the same layout
 * (nn_net_grads), non-trained state (batch-norm running statistics) in one more (nn_net_buffers). Activations
 * and scratch are allocated once for max_batch; forward/backward never allocate.
 * Each named tensor (for init, the optimizer, safetensors) is described by nn_tensor.
 * Shapes: a dense layer flattens its input implicitly (NHWC order), so `flatten` is optional; conv pad=same (-1)
 * is (size - 1) / 2 on every side; pooling stride 0 means the pool size. The last layer must give 10 outputs.
 * Threads: OpenMP over fixed groups of the batch; every result (logits, loss, gradients, running statistics,
 * dropout masks) is bitwise the same for any thread count. The kernels are in nn/layers.h.
 */
#ifndef NN_NET_H
#define NN_NET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nn/spec.h"
#include "core/dg_err.h"

typedef struct nn_net nn_net;

typedef struct nn_tensor {
    char name[48];      /* "conv1.weight", "bn1.running_mean", ... */
    int ndim;
    int shape[4];       /* conv weight: (out, kh, kw, in) (OHWI); dense weight: (out, in) */
    size_t offset;      /* in floats, into nn_net_params() (or nn_net_buffers() if is_buffer) */
    size_t count;
    int is_buffer;      /* 1: running statistic, not trained */
    int decay;          /* 1: weight decay applies (weights); 0: biases, BN scale/shift */
    float l2;           /* extra per-layer L2 from the spec */
    int layer;          /* index into spec->layers */
} nn_tensor;

/* Build a network for batches of up to max_batch images. Shape errors name the spec file and line. */
int nn_net_create(nn_net **net, const nn_spec *spec, int max_batch, dg_err *err);
void nn_net_free(nn_net *net);

const nn_spec *nn_net_spec(const nn_net *net);
int nn_net_max_batch(const nn_net *net);
size_t nn_net_param_count(const nn_net *net);
size_t nn_net_buffer_count(const nn_net *net);
float *nn_net_params(nn_net *net);
float *nn_net_grads(nn_net *net);
float *nn_net_buffers(nn_net *net);
int nn_net_tensor_count(const nn_net *net);
const nn_tensor *nn_net_tensor(const nn_net *net, int i);

/* He (ReLU family) or Glorot (tanh/sigmoid/linear) uniform init from dg_rng(seed, DG_RNG_INIT, 0, tensor index);
 * biases 0, BN scale 1 and shift 0, running mean 0 and variance 1. */
void nn_net_init(nn_net *net, uint64_t seed);

/* Forward pass of B <= max_batch images. training = 1: dropout active (masks from
 * dg_rng(seed, DG_RNG_DROPOUT, step, layer * 2^20 + sample)), batch norm uses batch statistics and updates running
 * ones. training = 0: inference. Returns the logits (B, 10), valid until the next call (NULL if B is out of range).
 * x is copied: it may change before nn_net_backward. */
const float *nn_net_forward(nn_net *net, const float *x, int B, int training, uint64_t seed, uint64_t step);
/* The same for a net with an embed layer: labels (B), each < the layer's classes, are copied like x. NULL when the
 * net has an embed layer and labels is NULL or holds a label out of range (labels is ignored otherwise). The
 * returned output has nn_net_output_count values per image (10 logits for a classifier). */
const float *nn_net_forward_cond(nn_net *net, const float *x, const uint8_t *labels, int B, int training,
                                 uint64_t seed, uint64_t step);

/* After forward: softmax probabilities (B, 10) (NULL unless the output is classes). */
const float *nn_net_probs(nn_net *net);

/* After forward: mean softmax cross-entropy with labels (label smoothing eps in [0, 1)); counts correct argmax
 * predictions into *correct if not NULL. Prepares the gradient of the loss for nn_net_backward. NAN if B is not
 * the B of the last forward or a label is >= 10. */
float nn_net_loss(nn_net *net, const uint8_t *labels, int B, float label_smoothing, int *correct);

/* After forward, `output logit` nets: mean sigmoid cross-entropy of the logits (B) against targets (B) in [0, 1]
 * (stable for any logit: nn_bce_logits); prepares the backward. NAN on a wrong B, output kind or target. */
float nn_net_loss_bce(nn_net *net, const float *targets, int B);

/* After forward, any net: dout (B, nn_net_output_count) is the gradient of the caller's loss w.r.t. the output
 * (copied); prepares the backward as a loss does. -1 if B is not the B of the last forward. */
int nn_net_output_grad(nn_net *net, const float *dout, int B);

/* After nn_net_loss (or nn_net_loss_bce, nn_net_output_grad): gradients of the mean loss w.r.t. every parameter,
 * written (not accumulated) into nn_net_grads(). Only valid after a training-mode forward. */
void nn_net_backward(nn_net *net);
/* The same, and dx (B, in_h, in_w, in_c) = the gradient w.r.t. the net's input (what a GAN's generator is trained
 * with, through its discriminator). */
void nn_net_backward_input(nn_net *net, float *dx);
/* dx alone, bitwise the dx of nn_net_backward_input: the parameters' gradients are not computed (nn_net_grads is left
 * stale, batch norm's aside). What a GAN's generator step needs from its discriminator, whose weight gradients it
 * would discard: a third less of the discriminator's backward. */
void nn_net_input_grad(nn_net *net, float *dx);

/* After a forward: what layer `layer` (an index into the spec's layers) took as its input in that forward, (B, in_n)
 * in the layer's input shape (NHWC), *in_n values per image; valid until the next forward. The input of a
 * classifier's final dense layer is its penultimate features (what digits-gan judge compares). NULL (and *in_n 0)
 * when no forward ran or layer is out of range. */
const float *nn_net_layer_input(const nn_net *net, int layer, size_t *in_n);

/* Output values per image (10 for a classifier). */
size_t nn_net_output_count(const nn_net *net);

/* Forward FLOPs per image (multiply-add = 2). */
uint64_t nn_net_flops(const nn_net *net);

/* Keras-style summary: one row per layer with output shape, parameter count, FLOPs; totals. */
void nn_net_summary(const nn_net *net, FILE *out);

#endif
