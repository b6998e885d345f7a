/* nn/internal/gemm_conv: convolution as an implicit GEMM with AVX2+FMA register tiles (no im2col matrix).
 *
 * NOT API: the kernels behind nn_conv2d_forward/backward (nn/layers.h), under the internal prefix nnk_. Only nn/,
 * tests/ and bench/ include nn/internal/ (tests/check_includes.sh), and any commit may change it.
 * nn/layers_conv.c picks these kernels on an AVX2 CPU where OC (and, for the backward data pass, C) is a multiple
 * of 16, nn/internal/conv_small.h for other channel counts, and otherwise falls back to im2col + OpenBLAS.
 * All functions are single-threaded and work on a chunk of n images; the caller splits the batch into fixed groups
 * and chunks.
 *
 * The input of a chunk is first copied into a zero-padded frame (n, H + 2 pad, W + 2 pad, C) (skipped when
 * pad = 0, see nnk_gconv_framed); output pixel q = (image, oh, ow) then reads the KH rows of KW*C contiguous floats
 * starting at frame offset off[q] = image * stride + (oh * stride * Wp + ow * stride) * C, with no bounds checks.
 *   forward:        out[q][oc]  = sum_k frame[off[q] + o(k)] * wf[k][oc]         tiles of 6 pixels x 16 oc
 *   backward data:  frame[off[q] + o(k)] += sum_oc dout[q][oc] * w[oc][k]         tiles of 6 pixels x 16 c
 *   backward weight: dwt[k][oc] += sum_q frame[off[q] + o(k)] * dout[q][oc]       tiles of 6 k x 16 oc
 * with k = (kh, kw, c) and o(k) = (kh * Wp + kw) * C + c.
 */
#ifndef NNK_GEMM_CONV_H
#define NNK_GEMM_CONV_H

#include <stddef.h>
#include <stdint.h>

#include "nn/layers.h"

/* Floats of a chunk's padded frame (n images; images a little more than (H + 2 pad) (W + 2 pad) C apart when that
 * is a multiple of 4 KiB), and 1 if the input needs the copy into a frame (else the input is its own frame). */
size_t nnk_gconv_frame_floats(const nn_conv_dims *d, int n);
int nnk_gconv_framed(const nn_conv_dims *d);

/* frame (n, Hp, Wp, C) = in (n, H, W, C) with zero borders. */
void nnk_gconv_pad(float *frame, const float *in, int n, const nn_conv_dims *d);
/* in (n, H, W, C) = the interior of frame (n, Hp, Wp, C). */
void nnk_gconv_unpad(float *in, const float *frame, int n, const nn_conv_dims *d);
/* off (n * OH * OW): frame offset of each output pixel's receptive field. */
void nnk_gconv_offsets(int32_t *off, int n, const nn_conv_dims *d);

/* The packing functions write the part of their layout that comes from output channels [oc0, oc1) of the d they
 * are given (threads can pack disjoint ranges in parallel; [0, d->OC) is the whole layout). */
/* wf (OC/16, K, 16) = w (OC, K) transposed, in blocks of 16 output channels (forward layout). */
void nnk_gconv_pack_forward(float *wf, const float *w, const nn_conv_dims *d, int oc0, int oc1);
/* The transposed convolution that gives the input gradient of a stride-1 square convolution d: dims *t (input
 * OH x OW x OC, C filters, same kernel, pad KH - 1 - pad, output H x W) and its forward-layout weights
 * wt (C/16, KH*KW*OC, 16), w rotated by 180 degrees with in/out channels swapped. Returns -1 if d is not
 * stride 1 and square. */
int nnk_gconv_transposed(nn_conv_dims *t, const nn_conv_dims *d);
void nnk_gconv_pack_transposed(float *wt, const float *w, const nn_conv_dims *d, int oc0, int oc1);
/* wd (KH, KW, OC, C) from w (OC, KH, KW, C) (backward data layout). */
void nnk_gconv_pack_data(float *wd, const float *w, const nn_conv_dims *d, int oc0, int oc1);

/* Output channels [oc0, oc1) (multiples of 16) of out (n*OH*OW, OC) = act(conv + bias); if sum is not NULL,
 * sum/sq (OC) += per-channel sums of out and of its squares (ACCUMULATE). frame as above (the input itself when
 * pad = 0). bias may be NULL (zero). */
void nnk_gconv_forward(float *out, double *sum, double *sq, const float *frame, const int32_t *off, const float *wf,
                       const float *bias, int n, const nn_conv_dims *d, nn_act act, float slope, int oc0, int oc1);

/* Input channels [c0, c1) of frame (n, Hp, Wp, C) += the input gradient of dout (n*OH*OW, OC) (ACCUMULATES; zero
 * it first). zero: OC zeros. */
void nnk_gconv_backward_data(float *frame, const float *dout, const int32_t *off, const float *wd, const float *zero,
                             int n, const nn_conv_dims *d, int c0, int c1);

/* Columns [oc0, oc1) of dwt (K, OC) (+)= sum over the chunk's pixels of frame patches x dout (n*OH*OW, OC);
 * accumulate = 0 writes. */
void nnk_gconv_backward_weight(float *dwt, int accumulate, const float *frame, const int32_t *off, const float *dout,
                               int n, const nn_conv_dims *d, int oc0, int oc1);

/* ---- Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions (Lavin and Gray 2016) ----
 * Each 2x2 block of output pixels comes from a 4x4 input tile d: Y = A^T [ (G g G^T) .* (B^T d B) ] A, so the
 * 36 multiply-adds per output pixel and channel pair of the direct method become 16 per 4 pixels (2.25 times
 * fewer), done as 16 GEMMs (tiles x C) . (C x OC) in the same 6 x 16 register tiles; the input transform is
 * vectorized over channels (NHWC), the output transform is fused with bias, activation and statistics. */

/* 1 if d is 3x3, stride 1, C and OC multiples of 16, on an AVX2 CPU. */
int nnk_wino_ok(const nn_conv_dims *d);
/* u (16, OC/16, C, 16) = G g G^T of the weights w (OC, 3, 3, C). transposed = 1: of the transposed convolution
 * of nnk_gconv_transposed (w still the (OC', 3, 3, C') weights of the original d'; d is the transposed dims). */
void nnk_wino_pack(float *u, const float *w, const nn_conv_dims *d, int transposed, int oc0, int oc1);
/* Scratch floats of nnk_wino_forward for n images. */
size_t nnk_wino_work_floats(const nn_conv_dims *d, int n);
/* out (n*OH*OW, OC) = act(conv + bias) for n images of in (n, H, W, C), as nnk_gconv_forward (bias may be NULL, sum
 * and sq ACCUMULATE). work: nnk_wino_work_floats(d, n). */
void nnk_wino_forward(float *out, double *sum, double *sq, float *work, const float *in, const float *u,
                      const float *bias, int n, const nn_conv_dims *d, nn_act act, float slope);

/* Winograd F(4x4, 3x3): the same contract with 6x6 input tiles and 36 transform positions (1.78 times fewer
 * multiplications than F(2x2, 3x3), more transform work per tile, and tiles of 4x4 output pixels, so it pays where
 * OH and OW are (close to) multiples of 4). u (36, OC/16, C, 16). */
int nnk_wino4_ok(const nn_conv_dims *d);
void nnk_wino4_pack(float *u, const float *w, const nn_conv_dims *d, int transposed, int oc0, int oc1);
size_t nnk_wino4_work_floats(const nn_conv_dims *d, int n);
void nnk_wino4_forward(float *out, double *sum, double *sq, float *work, const float *in, const float *u,
                       const float *bias, int n, const nn_conv_dims *d, nn_act act, float slope);

/* Weight gradient with Winograd F(3x3, 2x2): each 2x2 block of the output gradient and the 4x4 input tile under
 * it contribute to all 9 taps; transformed, the sum over tiles is 16 GEMMs (C x tiles) . (tiles x OC) with long
 * reductions. m (16, C, OC) ACCUMULATES the transformed sums of n images (accumulate = 0: writes them, as if m
 * had been zeroed); nnk_wino_wgrad_finish then writes dwt (K, OC) = A^T m A. work: nnk_wino_wgrad_floats(d, n). */
size_t nnk_wino_wgrad_floats(const nn_conv_dims *d, int n);
void nnk_wino_wgrad_accumulate(float *m, int accumulate, float *work, const float *in, const float *dout, int n,
                               const nn_conv_dims *d);
void nnk_wino_wgrad_finish(float *dwt, const float *m, const nn_conv_dims *d);
/* The same with F(4x4, 3x3)'s matrices (6x6 input tiles, 4x4 output-gradient blocks): m (36, C, OC). */
size_t nnk_wino4_wgrad_floats(const nn_conv_dims *d, int n);
void nnk_wino4_wgrad_accumulate(float *m, int accumulate, float *work, const float *in, const float *dout, int n,
                                const nn_conv_dims *d);
void nnk_wino4_wgrad_finish(float *dwt, const float *m, const nn_conv_dims *d);

/* ---- stride-2 convolutions as 3x3 stride-1 ones on the space-to-depth input ----
 * A KxK (K = 5 or 6) stride-2 convolution with pad 2 is a 3x3 "valid" stride-1 convolution s of the space-to-depth
 * rearrangement of its zero-padded input, S (OH + 2, OW + 2, 4C) with S[Y][X][(py, px, c)] = in[2Y + py - 2]
 * [2X + px - 2][c] (zero outside), and weights ws[oc][dy][dx][(py, px, c)] = w[oc][2dy + py][2dx + px][c] (zero
 * where 2dy + py or 2dx + px >= K). s then runs on the Winograd kernels above: the weight gradient as the weight
 * gradient of s (its taps gathered back), the input gradient as the transposed convolution t of s cut to the
 * space-to-depth pixels that hold input pixels (rows and columns 1..OH, 1..OW of S, so pad 1), rearranged back:
 * 16 multiplications per 2x2 output pixels and (4C, OC) channel pair instead of 25 (K = 5) per pixel and (C, OC).
 * (The forward could run as s too, but measured slower than the direct kernel: see nn/layers_conv.c.) */

/* 1 if d is KxK (K = 5 or 6), stride 2, pad 2, with OH = (H + 1) / 2 and OW = (W + 1) / 2 (every input pixel in
 * S's rows and columns 1..OH, 1..OW), C a multiple of 4 and OC of 16, on an AVX2 CPU. Then *s = the stride-1
 * convolution (OH + 2, OW + 2, 4C) -> (OH, OW, OC), *t = its transposed convolution (OH, OW, OC) -> (OH, OW, 4C)
 * (3x3, pad 1, for nnk_wino_pack(..., transposed = 1) with ws). */
int nnk_s2d_dims(nn_conv_dims *s, nn_conv_dims *t, const nn_conv_dims *d);
/* S (n, OH + 2, OW + 2, 4C) from in (n, H, W, C). */
void nnk_s2d_input(float *S, const float *in, int n, const nn_conv_dims *d);
/* Output channels [oc0, oc1) of ws (OC, 3, 3, 4C) from w (OC, K, K, C). */
void nnk_s2d_weights(float *ws, const float *w, const nn_conv_dims *d, int oc0, int oc1);
/* din (n, H, W, C) from dS (n, OH, OW, 4C), the input gradient of s at S's pixels (1..OH, 1..OW). */
void nnk_s2d_grad_input(float *din, const float *dS, int n, const nn_conv_dims *d);
/* dwt (K*K*C, OC) from dws (9 * 4C, OC), the weight gradient of s (taps of kernel positions >= K dropped). */
void nnk_s2d_grad_weight(float *dwt, const float *dws, const nn_conv_dims *d);

#endif
