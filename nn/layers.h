/* nn/layers: the numerical kernels of nn/net, as free functions on explicit buffers.
 *
 * Public; the AVX2 convolution kernels that nn_conv2d_forward/backward dispatch to are not (nn/internal/).
 * Conventions (as in llm.c): outputs first, then scratch, inputs, weights, sizes. Every buffer has its shape in a
 * comment. Activations are NHWC float32; a dense layer sees its input (B, H, W, C) as (B, H*W*C), flattened in
 * NHWC order. Backward functions say whether they accumulate (+=) or write (=) their outputs; in this file they
 * WRITE unless noted. None of them allocates; the ones that need scratch memory have a `_scratch` function giving
 * its size in floats for a batch (sizes grow with the batch, so a scratch sized for max_batch serves any B below).
 *
 * Threads: the batch-level functions parallelize with OpenMP and call OpenBLAS from inside their parallel regions,
 * where OpenBLAS runs single-threaded (faster than OpenBLAS's own threading for these small GEMMs). Every reduction
 * over the batch (weight gradients, bias gradients, batch-norm statistics) is split into NN_GROUPS fixed groups
 * of rows and summed in a fixed order, so results are bitwise identical for any number of threads.
 *
 * Not here: the network (nn/net.c), the optimizer (nn/optim.c).
 */
#ifndef NN_LAYERS_H
#define NN_LAYERS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* Reductions over the batch are split into at most this many fixed groups (then summed in group order). */
#define NN_GROUPS 8

/* Number of groups for n rows/images and the first item of group g: group g covers [start(g), start(g+1)). */
static inline int nn_groups(size_t n) { return n < NN_GROUPS ? (int)n : NN_GROUPS; }
static inline size_t nn_group_start(size_t n, int G, int g) { return n * (size_t)g / (size_t)G; }

/* Activation fused into a layer's output (or applied by nn_act_forward). */
typedef enum nn_act { NN_ACT_NONE, NN_ACT_RELU, NN_ACT_LEAKY, NN_ACT_TANH, NN_ACT_SIGMOID } nn_act;

/* act(v), and act'(.) written in terms of the output y = act(v). */
static inline __attribute__((always_inline)) float nn_act_apply(float v, nn_act act, float slope) {
    switch (act) {
    case NN_ACT_RELU: return v > 0.0f ? v : 0.0f;
    case NN_ACT_LEAKY: {
        float neg = v * slope;
        return v > 0.0f ? v : neg;
    }
    case NN_ACT_TANH: return tanhf(v);
    case NN_ACT_SIGMOID: return 1.0f / (1.0f + expf(-v));
    default: return v;
    }
}
static inline __attribute__((always_inline)) float nn_act_grad(float y, nn_act act, float slope) {
    switch (act) {
    case NN_ACT_RELU: return y > 0.0f ? 1.0f : 0.0f;
    case NN_ACT_LEAKY: return y > 0.0f ? 1.0f : slope;
    case NN_ACT_TANH: return 1.0f - y * y;
    case NN_ACT_SIGMOID: return y * (1.0f - y);
    default: return 1.0f;
    }
}

/* dy (n) *= act'(y), sequential (for use inside a parallel region). */
void nn_act_grad_inplace(float *dy, const float *y, size_t n, nn_act act, float slope);

/* The output stage of a convolution or dense layer, on rows (rows, ld) of which columns [0, C) are used:
 * y = act(y + bias) in place. If sum is not NULL: sum (C) += per-column sums of the result and sq (C) += sums of
 * squares (ACCUMULATES, in double; tmp (2 C) floats of scratch). Sequential (the caller parallelizes). */
void nn_bias_act(float *y, double *sum, double *sq, float *tmp, size_t rows, int C, size_t ld, const float *bias,
                 nn_act act, float slope);

/* ---- activations (elementwise; y may alias x, dx may alias dy) ---- */

/* y (n) = act(x) */
void nn_act_forward(float *y, const float *x, size_t n, nn_act act, float slope);
/* dx (n) = dy * act'(.), the derivative written in terms of the forward OUTPUT y (n). Writes dx. */
void nn_act_backward(float *dx, const float *dy, const float *y, size_t n, nn_act act, float slope);

/* ---- convolution (NHWC activations, OHWI weights) ---- */

typedef struct nn_conv_dims {
    int H, W, C;      /* input image */
    int OC, KH, KW;   /* filters and kernel size */
    int stride, pad;  /* same in both directions; zero padding */
    int OH, OW;       /* output image: (H + 2 pad - KH) / stride + 1 */
} nn_conv_dims;

/* Fill OH and OW from the rest; returns -1 if the kernel does not fit. */
int nn_conv_dims_finish(nn_conv_dims *d);

/* im2col of n images: col (n*OH*OW, KH*KW*C), row = output pixel (image, oh, ow), column = (kh, kw, c), matching
 * a row of the OHWI weights; padding reads as 0. in (n, H, W, C). */
void nn_im2col(float *col, const float *in, int n, const nn_conv_dims *d);
/* The adjoint: din (n, H, W, C) += scatter of dcol (n*OH*OW, KH*KW*C). ACCUMULATES. */
void nn_col2im(float *din, const float *dcol, int n, const nn_conv_dims *d);

/* Scratch (floats) that nn_conv2d_forward/backward need for a batch of B images. */
size_t nn_conv2d_scratch(const nn_conv_dims *d, int B);

/* out (B, OH, OW, OC) = act(conv(in, w) + bias), one GEMM per group of images: col (n*OH*OW, K) x w^T (K, OC),
 * K = KH*KW*C. in (B, H, W, C), w (OC, KH, KW, C), bias (OC). If stats is not NULL, also writes the per-channel
 * sum and sum of squares of out into stats (2, OC) (the batch statistics of a following batch norm). */
void nn_conv2d_forward(float *out, double *stats, float *scratch, const float *in, const float *w, const float *bias,
                       int B, const nn_conv_dims *d, nn_act act, float slope);

/* Backward of nn_conv2d_forward. dout (B, OH, OW, OC) is the gradient w.r.t. out; with act != NONE it is
 * multiplied IN PLACE by act'(out) first, out (B, OH, OW, OC) being the forward output. Writes dw (OC, KH, KW, C)
 * (unless NULL: then in is not read, and the call is the input gradient alone, which nn_deconv2d_forward runs),
 * dbias (OC) (unless NULL: already computed, see nn_batchnorm_backward) and, if din is not NULL, din (B, H, W, C).
 * in, w as in the forward. */
void nn_conv2d_backward(float *din, float *dw, float *dbias, float *scratch, float *dout, const float *out,
                        const float *in, const float *w, int B, const nn_conv_dims *d, nn_act act, float slope);

/* Naive direct convolution (no activation), for tests: out (B, OH, OW, OC) = conv(in, w) + bias. */
void nn_conv2d_forward_ref(float *out, const float *in, const float *w, const float *bias, int B,
                           const nn_conv_dims *d);
/* Naive backward, for tests: ACCUMULATES into dw (OC, KH, KW, C), dbias (OC) and din (B, H, W, C) if not NULL. */
void nn_conv2d_backward_ref(float *din, float *dw, float *dbias, const float *dout, const float *in, const float *w,
                            int B, const nn_conv_dims *d);

/* ---- transposed convolution (NHWC activations; weights (C, KH, KW, OC)) ----
 * PyTorch's ConvTranspose2d: in (B, H, W, C) -> out (B, OH, OW, OC), OH = (H - 1) stride - 2 pad + KH + opad (the
 * same for W), opad < stride only resolving which of the sizes that the convolution maps to H is meant (7 -> 14 with
 * size 5, stride 2, pad 2 takes opad 1; size 4, stride 2, pad 1 needs none). The weights (C, KH, KW, OC) are
 * PyTorch's (C, OC, KH, KW) permuted as (0, 2, 3, 1).
 * It is the input gradient of the convolution nn_deconv_conv(d) = (OH, OW, OC) -> (H, W, C), same kernel, stride
 * and pad, whose OHWI weights are exactly these (C filters of KH x KW x OC): the forward runs that convolution's
 * input-gradient kernels, the input gradient its forward kernels, the weight gradient its weight-gradient kernels
 * (with the roles of input and output gradient swapped), so every fast path of nn/layers_conv.c serves it. */
typedef struct nn_deconv_dims {
    int H, W, C;       /* input image */
    int OC, KH, KW;    /* filters (output channels) and kernel size */
    int stride, pad;   /* same in both directions */
    int opad;          /* output padding, in [0, stride) */
    int OH, OW;        /* output image */
} nn_deconv_dims;

/* Fill OH and OW from the rest; returns -1 on a size < 1, stride < 1, pad < 0, opad outside [0, stride) or pad so
 * large that no output remains. */
int nn_deconv_dims_finish(nn_deconv_dims *d);
/* The convolution whose input gradient d is (see above). */
nn_conv_dims nn_deconv_conv(const nn_deconv_dims *d);
/* Scratch (floats) for nn_deconv2d_forward/backward with B images. */
size_t nn_deconv2d_scratch(const nn_deconv_dims *d, int B);
/* out (B, OH, OW, OC) = act(deconv(in, w) + bias). in (B, H, W, C), w (C, KH, KW, OC), bias (OC). stats (2, OC) as
 * for the convolution (sum and sum of squares of out, in fixed groups) unless NULL. */
void nn_deconv2d_forward(float *out, double *stats, float *scratch, const float *in, const float *w,
                         const float *bias, int B, const nn_deconv_dims *d, nn_act act, float slope);
/* Backward of nn_deconv2d_forward. dout (B, OH, OW, OC) is multiplied IN PLACE by act'(out) when act != NONE. Writes
 * dw (C, KH, KW, OC) and dbias (OC) (each unless NULL) and, if din is not NULL, din (B, H, W, C). */
void nn_deconv2d_backward(float *din, float *dw, float *dbias, float *scratch, float *dout, const float *out,
                          const float *in, const float *w, int B, const nn_deconv_dims *d, nn_act act, float slope);
/* Naive scatter loops, for tests (no activation): out (B, OH, OW, OC) = deconv(in, w) + bias (bias may be NULL). */
void nn_deconv2d_forward_ref(float *out, const float *in, const float *w, const float *bias, int B,
                             const nn_deconv_dims *d);
/* ACCUMULATES into dw (C, KH, KW, OC), dbias (OC) and din (B, H, W, C) when not NULL. */
void nn_deconv2d_backward_ref(float *din, float *dw, float *dbias, const float *dout, const float *in,
                              const float *w, int B, const nn_deconv_dims *d);

/* ---- label embedding (conditioning on the class) ----
 * out (B, H, W, C + D): each pixel's C input channels followed by the D values of row labels[b] of the table
 * emb (K, D), the same at every pixel (PyTorch: torch.cat([x, emb[labels][:, :, None, None].expand(-1, -1, H, W)],
 * 1) in NCHW). On a (1, 1, C) input (a noise vector) it appends the label's embedding to the vector. Labels must be
 * < K (the net checks them). */
void nn_embed_forward(float *out, const float *in, const float *emb, const uint8_t *labels, int B, size_t pixels,
                      int C, int D);
/* demb (K, D) = sum over the images of each label and their pixels of dout's last D channels (WRITES all K rows;
 * sums in double, image by image in batch order: thread-independent), unless demb is NULL; din (B, H, W, C) =
 * dout's first C channels when din is not NULL. dout (B, H, W, C + D). */
void nn_embed_backward(float *din, float *demb, const float *dout, const uint8_t *labels, int B, size_t pixels, int C,
                       int D, int K);

/* ---- sigmoid binary cross-entropy on logits (a GAN discriminator's loss) ---- */

/* Mean over B of BCE(sigmoid(z), t) = max(z, 0) - z t + log1p(exp(-|z|)), stable for any z (PyTorch's
 * BCEWithLogitsLoss); targets t in [0, 1]. Writes dz (B) = (sigmoid(z) - t) / B if not NULL. */
float nn_bce_logits(float *dz, const float *z, const float *t, int B);

/* ---- dense ---- */

/* Scratch (floats) for nn_dense_forward/backward. */
size_t nn_dense_scratch(int B, int IN, int OUT);
/* out (B, OUT) = act(in (B, IN) . w^T + bias), w (OUT, IN), bias (OUT); stats (2, OUT) as for the convolution. */
void nn_dense_forward(float *out, double *stats, float *scratch, const float *in, const float *w, const float *bias,
                      int B, int IN, int OUT, nn_act act, float slope);
/* dout (B, OUT) is multiplied IN PLACE by act'(out) when act != NONE. Writes dw (OUT, IN) and dbias (OUT) (each
 * unless NULL) and, if not NULL, din (B, IN). */
void nn_dense_backward(float *din, float *dw, float *dbias, float *scratch, float *dout, const float *out,
                       const float *in, const float *w, int B, int IN, int OUT, nn_act act, float slope);

/* ---- batch normalization over the last dimension: x (N, C), N = B*H*W rows, C channels or features ---- */

size_t nn_batchnorm_scratch(size_t N, int C);
/* stats (2, C) = per-channel sum and sum of squares of x (N, C), in double, in fixed groups. */
void nn_batchnorm_stats(double *stats, float *scratch, const float *x, size_t N, int C);
/* Training: normalize with the batch statistics (biased variance, from stats) and update the running ones
 * (PyTorch: running = (1 - momentum) running + momentum batch, unbiased variance N/(N-1); N = 1 uses the
 * biased one). Writes y (N, C) (may alias x), mean (C), invstd (C) = 1/sqrt(var + eps); updates rmean, rvar (C). */
void nn_batchnorm_forward_train(float *y, float *mean, float *invstd, float *rmean, float *rvar, float *scratch,
                                const double *stats, const float *x, const float *gamma, const float *beta, size_t N,
                                int C, float momentum, float eps);
/* Inference: y (N, C) = (x - rmean) / sqrt(rvar + eps) * gamma + beta; also writes mean (C) = rmean and
 * invstd (C) (for a backward pass in inference mode). y may alias x. */
void nn_batchnorm_forward_eval(float *y, float *mean, float *invstd, float *scratch, const float *x,
                               const float *gamma, const float *beta, const float *rmean, const float *rvar, size_t N,
                               int C, float eps);
/* Backward. batch_stats = 1: the forward used batch statistics (mean, invstd depend on x); 0: fixed ones.
 * Writes dgamma (C), dbeta (C) and, if dx is not NULL, dx (N, C) (may alias dy). x is the forward input.
 * Fused with the layer before: if x is the output of an activation act (act != NONE), dx is also multiplied by
 * act'(.) (written in terms of x), and if dbias_prev is not NULL it receives the column sums of dx (C): the bias
 * gradient of the convolution or dense layer that produced x (sums in fixed row groups, thread-independent). */
void nn_batchnorm_backward(float *dx, float *dgamma, float *dbeta, float *dbias_prev, float *scratch, const float *dy,
                           const float *x, const float *mean, const float *invstd, const float *gamma, size_t N,
                           int C, int batch_stats, nn_act act, float slope);

/* ---- dropout (inverted: kept values are scaled by 1/(1 - rate)) ---- */

/* The mask of sample b is drawn from dg_rng(seed, DG_RNG_DROPOUT, step, layer * 2^20 + b), one u32 per element, so
 * it depends on neither the thread count nor the batch split. y (B, n) (may alias x), mask (B, n) 1 = kept.
 * B <= 2^20. */
void nn_dropout_forward(float *y, uint8_t *mask, const float *x, int B, size_t n, float rate, uint64_t seed,
                        uint64_t step, uint32_t layer);
/* dx (B, n) = dy * mask / (1 - rate). dx may alias dy. */
void nn_dropout_backward(float *dx, const float *dy, const uint8_t *mask, int B, size_t n, float rate);

/* ---- pooling (no padding; output (H - size) / stride + 1) ---- */

/* out (B, OH, OW, C) = max over each window; argmax (B, OH, OW, C) = index of the maximum inside its image's
 * (H, W, C) input (the first one in scan order on ties, like PyTorch). */
void nn_maxpool_forward(float *out, int32_t *argmax, const float *in, int B, int H, int W, int C, int size,
                        int stride, int OH, int OW);
/* din (B, H, W, C) = scatter of dout (B, OH, OW, C) to the maxima. Writes din. */
void nn_maxpool_backward(float *din, const float *dout, const int32_t *argmax, int B, int H, int W, int C, int OH,
                         int OW);
void nn_avgpool_forward(float *out, const float *in, int B, int H, int W, int C, int size, int stride, int OH, int OW);
/* Writes din (B, H, W, C). */
void nn_avgpool_backward(float *din, const float *dout, int B, int H, int W, int C, int size, int stride, int OH,
                         int OW);

/* ---- softmax and cross-entropy ---- */

/* probs (B, K) = softmax(logits (B, K)). */
void nn_softmax(float *probs, const float *logits, int B, int K);
/* Mean cross-entropy of softmax(logits) against labels (B) smoothed as in PyTorch: target = (1 - eps) onehot +
 * eps / K. Writes probs (B, K), dlogits (B, K) = (probs - target) / B (if not NULL), *correct = number of rows
 * whose argmax is the label (if not NULL). A label >= K gives NAN. */
float nn_softmax_xent(float *probs, float *dlogits, int *correct, const float *logits, const uint8_t *labels, int B,
                      int K, float smoothing);

#endif
