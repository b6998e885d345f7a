/* nn/internal/conv_small: AVX2+FMA convolution kernels for channel counts that are not multiples of 16 (lenet5's
 * 1 -> 6 and 6 -> 16 layers), where the 6 x 16 register tiles of nn/internal/gemm_conv.h do not fit.
 *
 * NOT API: kernels of nn/layers_conv.c under the internal prefix nnk_ (see nn/internal/gemm_conv.h). Same
 * conventions as nn/internal/gemm_conv.h: single-threaded, on a chunk of n images whose input sits in a zero-padded
 * frame (nnk_gconv_pad, or the input itself when !nnk_gconv_framed) with off[q] the frame offset of output pixel
 * q's receptive field (nnk_gconv_offsets), k = (kh, kw, c), o(k) = kh * Wp * C + kw * C + c.
 *   forward (OC not a multiple of 16): out[q][oc] = act(sum_k frame[off[q] + o(k)] * w[oc][k] + bias[oc]), in
 *     tiles of 12 pixels x 8 output channels (the last block of 8 partly used);
 *   backward weight (OC not a multiple of 16): dwt[k][oc] (+)= sum_q frame[off[q] + o(k)] * dout[q][oc], in tiles
 *     of up to 6 k x 8 output channels, two accumulator sets (even and odd pixels) to hide the FMA latency;
 *   backward data (any C, used where C is not a multiple of 16): for each kernel row kh the KW * C contiguous frame
 *     floats under a pixel get sum_oc dout[q][oc] * w[oc][kh][0..KW*C) ("row segments"), in tiles of up to 4
 *     vectors of a segment x 12 / vectors pixels. Segments are padded to a multiple of 8 with zero weights, so a
 *     tile adds exact zeros up to 7 floats past a segment: the frame needs NNK_SCONV_SLACK floats after its end.
 * Results do not depend on the thread count (the kernels are sequential; the caller fixes the chunks).
 */
#ifndef NNK_CONV_SMALL_H
#define NNK_CONV_SMALL_H

#include <stddef.h>
#include <stdint.h>

#include "nn/layers.h"

/* Floats a backward-data frame needs past its last image. */
#define NNK_SCONV_SLACK 16

/* Floats of the packed weights of nnk_sconv_pack_forward and nnk_sconv_pack_data. */
size_t nnk_sconv_forward_floats(const nn_conv_dims *d);
size_t nnk_sconv_data_floats(const nn_conv_dims *d);

/* wf (ceil(OC/8), K, 8) = w (OC, K) transposed in blocks of 8 output channels, zeros past OC. */
void nnk_sconv_pack_forward(float *wf, const float *w, const nn_conv_dims *d);
/* ws (KH, OC, Lp) = w (OC, KH, KW*C) with each row segment padded with zeros to Lp = KW*C rounded up to 8. */
void nnk_sconv_pack_data(float *ws, const float *w, const nn_conv_dims *d);

/* out (n*OH*OW, OC) = act(conv + bias) (all OC channels); if sum is not NULL, sum/sq (OC) += per-channel sums of
 * out and of its squares (ACCUMULATE). bias may be NULL. Writes nothing outside out. */
void nnk_sconv_forward(float *out, double *sum, double *sq, const float *frame, const int32_t *off, const float *wf,
                       const float *bias, int n, const nn_conv_dims *d, nn_act act, float slope);

/* dwt (K, OC) (+)= sum over the chunk's pixels of frame patches x dout (n*OH*OW, OC); accumulate = 0 writes. */
void nnk_sconv_backward_weight(float *dwt, int accumulate, const float *frame, const int32_t *off, const float *dout,
                               int n, const nn_conv_dims *d);

/* frame (n, Hp, Wp, C) (+ NNK_SCONV_SLACK floats) += the input gradient of dout (n*OH*OW, OC) (ACCUMULATES; zero
 * it first). ws from nnk_sconv_pack_data; zero: OC zeros. */
void nnk_sconv_backward_data(float *frame, const float *dout, const int32_t *off, const float *ws, const float *zero,
                             int n, const nn_conv_dims *d);

/* ---- forward of one input channel, stride 1 ("planar") ----
 * There the inputs of 8 neighbouring output pixels of a row are 8 contiguous frame floats, so the pixels go along
 * the vector instead: every lane is used, and a tile of 6 channels x 16 pixels loads one broadcast weight per two
 * multiply-adds (the 12x8 tiles load one per multiply-add). 8x8 register transposes turn the tile into NHWC.
 * The frame (nnk_gconv_pad, always a copy here) needs NNK_SCONV_SLACK readable floats after it: a row's last
 * vector reads past the row. (The same layout for the weight gradient measured no faster than the 6x8 tiles.) */

/* 1 if the planar forward takes d: C = 1, stride 1, OC <= 8. */
int nnk_sconv_planar_ok(const nn_conv_dims *d);
/* wb (KH*KW, 4, 6 or 8 channels): w (OC, KH*KW) transposed, zeros past OC. */
size_t nnk_sconv_planar_floats(const nn_conv_dims *d);
void nnk_sconv_pack_planar(float *wb, const float *w, const nn_conv_dims *d);
/* As nnk_sconv_forward, from the chunk's frame (images nnk_gconv_frame_floats(d, 1) apart). */
void nnk_sconv_planar_forward(float *out, double *sum, double *sq, const float *frame, const float *wb,
                              const float *bias, int n, const nn_conv_dims *d, nn_act act, float slope);

#endif
