/* nn/layers_gan: transposed convolution, label embedding and the sigmoid cross-entropy on logits (see layers.h):
 * the layers a conditional GAN adds to the classifiers' ones.
 *
 * The transposed convolution has no kernels of its own: it is the input gradient of the convolution
 * c = nn_deconv_conv(d), so its forward is nn_conv2d_backward(dw = NULL) (the scatter, gather, row-segment,
 * Winograd and space-to-depth input-gradient kernels, whichever nn/layers_conv.c picks for c), its input gradient
 * nn_conv2d_forward of c, and its weight gradient c's weight gradient with input and output gradient swapped. Only
 * the output stage (bias, activation, batch statistics) and its backward are here, in NN_GROUPS fixed groups of
 * images summed in group order, so results do not depend on the thread count.
 */
#include <math.h>
#include <string.h>

#include "nn/layers.h"

int nn_deconv_dims_finish(nn_deconv_dims *d) {
    if (d->H < 1 || d->W < 1 || d->C < 1 || d->OC < 1 || d->KH < 1 || d->KW < 1 || d->stride < 1 || d->pad < 0 ||
        d->opad < 0 || d->opad >= d->stride)
        return -1;
    long oh = (long)(d->H - 1) * d->stride - 2L * d->pad + d->KH + d->opad;
    long ow = (long)(d->W - 1) * d->stride - 2L * d->pad + d->KW + d->opad;
    if (oh < 1 || ow < 1 || oh > (1L << 20) || ow > (1L << 20)) return -1;
    d->OH = (int)oh, d->OW = (int)ow;
    return 0;
}

nn_conv_dims nn_deconv_conv(const nn_deconv_dims *d) {
    nn_conv_dims c = {.H = d->OH, .W = d->OW, .C = d->OC, .OC = d->C, .KH = d->KH, .KW = d->KW,
                      .stride = d->stride, .pad = d->pad};
    nn_conv_dims_finish(&c); /* OH = H, OW = W since opad < stride */
    return c;
}

/* After the convolution's scratch: zeros (C) (the input gradient's bias) and, per group, tmp (2 OC) floats and
 * part (2 OC) doubles. */
static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }
static size_t group_area(const nn_deconv_dims *d) { return round16(2 * (size_t)d->OC) + round16(4 * (size_t)d->OC); }

size_t nn_deconv2d_scratch(const nn_deconv_dims *d, int B) {
    nn_conv_dims c = nn_deconv_conv(d);
    return round16(nn_conv2d_scratch(&c, B)) + round16((size_t)d->C) + (size_t)NN_GROUPS * group_area(d);
}

void nn_deconv2d_forward(float *out, double *stats, float *scratch, const float *in, const float *w,
                         const float *bias, int B, const nn_deconv_dims *d, nn_act act, float slope) {
    const nn_conv_dims c = nn_deconv_conv(d);
    /* out = the input gradient of c for the output gradient in; nothing else of c is computed (dw NULL). The act
     * NONE call neither reads nor writes its `out` argument, and leaves `in` as it is. */
    nn_conv2d_backward(out, NULL, NULL, scratch, (float *)in, NULL, NULL, w, B, &c, NN_ACT_NONE, 0.0f);
    float *groups = scratch + round16(nn_conv2d_scratch(&c, B)) + round16((size_t)d->C);
    const int G = nn_groups((size_t)B), OC = d->OC;
    const size_t pix = (size_t)d->OH * d->OW, area = group_area(d);
#pragma omp parallel for schedule(static) if (pix * OC * B >= 65536)
    for (int g = 0; g < G; g++) {
        float *tmp = groups + (size_t)g * area;
        double *part = (double *)(tmp + round16(2 * (size_t)OC));
        for (int k = 0; k < 2 * OC; k++) part[k] = 0.0;
        size_t i0 = nn_group_start((size_t)B, G, g), i1 = nn_group_start((size_t)B, G, g + 1);
        nn_bias_act(out + i0 * pix * OC, stats ? part : NULL, part + OC, tmp, (i1 - i0) * pix, OC, (size_t)OC, bias,
                    act, slope);
    }
    if (stats)
        for (int k = 0; k < 2 * OC; k++) {
            double s = 0.0;
            for (int g = 0; g < G; g++) s += ((const double *)(groups + (size_t)g * area + round16(2 * (size_t)OC)))[k];
            stats[k] = s;
        }
}

void nn_deconv2d_backward(float *din, float *dw, float *dbias, float *scratch, float *dout, const float *out,
                          const float *in, const float *w, int B, const nn_deconv_dims *d, nn_act act, float slope) {
    const nn_conv_dims c = nn_deconv_conv(d);
    const int G = nn_groups((size_t)B), OC = d->OC;
    const size_t pix = (size_t)d->OH * d->OW, area = group_area(d);
    float *zero = scratch + round16(nn_conv2d_scratch(&c, B)), *groups = zero + round16((size_t)d->C);
    /* the output stage: dout *= act'(out), bias gradient = its column sums (double, per group, in group order) */
    if (act != NN_ACT_NONE || dbias) {
#pragma omp parallel for schedule(static) if (pix * OC * B >= 65536)
        for (int g = 0; g < G; g++) {
            double *part = (double *)(groups + (size_t)g * area + round16(2 * (size_t)OC));
            for (int k = 0; k < OC; k++) part[k] = 0.0;
            size_t i0 = nn_group_start((size_t)B, G, g), i1 = nn_group_start((size_t)B, G, g + 1);
            for (size_t r = i0 * pix; r < i1 * pix; r++) {
                float *row = dout + r * OC;
                if (act != NN_ACT_NONE) nn_act_grad_inplace(row, out + r * OC, (size_t)OC, act, slope);
                if (dbias)
                    for (int k = 0; k < OC; k++) part[k] += row[k];
            }
        }
        for (int k = 0; k < OC && dbias; k++) {
            double s = 0.0;
            for (int g = 0; g < G; g++) s += ((const double *)(groups + (size_t)g * area + round16(2 * (size_t)OC)))[k];
            dbias[k] = (float)s;
        }
    }
    /* dw (C, KH, KW, OC): c's weight gradient, its "input" being dout and its "output gradient" being in (act NONE
     * and dbias NULL: `in` is only read); none when the caller only wants din */
    if (dw) nn_conv2d_backward(NULL, dw, NULL, scratch, (float *)in, NULL, dout, w, B, &c, NN_ACT_NONE, 0.0f);
    /* din (B, H, W, C) = c's forward of dout (no bias: zeros) */
    if (din) {
        memset(zero, 0, sizeof(float) * d->C);
        nn_conv2d_forward(din, NULL, scratch, dout, w, zero, B, &c, NN_ACT_NONE, 0.0f);
    }
}

void nn_deconv2d_forward_ref(float *out, const float *in, const float *w, const float *bias, int B,
                             const nn_deconv_dims *d) {
    const size_t out_n = (size_t)d->OH * d->OW * d->OC;
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < out_n; i++) out[b * out_n + i] = bias ? bias[i % d->OC] : 0.0f;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < d->H; h++)
            for (int x = 0; x < d->W; x++)
                for (int kh = 0; kh < d->KH; kh++)
                    for (int kw = 0; kw < d->KW; kw++) {
                        int oh = h * d->stride - d->pad + kh, ow = x * d->stride - d->pad + kw;
                        if (oh < 0 || oh >= d->OH || ow < 0 || ow >= d->OW) continue;
                        float *o = out + (((size_t)b * d->OH + oh) * d->OW + ow) * d->OC;
                        for (int c = 0; c < d->C; c++) {
                            float v = in[(((size_t)b * d->H + h) * d->W + x) * d->C + c];
                            const float *k = w + (((size_t)c * d->KH + kh) * d->KW + kw) * d->OC;
                            for (int oc = 0; oc < d->OC; oc++) o[oc] += v * k[oc];
                        }
                    }
}

void nn_deconv2d_backward_ref(float *din, float *dw, float *dbias, const float *dout, const float *in,
                              const float *w, int B, const nn_deconv_dims *d) {
    if (dbias)
        for (int b = 0; b < B; b++)
            for (size_t p = 0; p < (size_t)d->OH * d->OW; p++)
                for (int oc = 0; oc < d->OC; oc++) dbias[oc] += dout[((size_t)b * d->OH * d->OW + p) * d->OC + oc];
    for (int b = 0; b < B; b++)
        for (int h = 0; h < d->H; h++)
            for (int x = 0; x < d->W; x++)
                for (int kh = 0; kh < d->KH; kh++)
                    for (int kw = 0; kw < d->KW; kw++) {
                        int oh = h * d->stride - d->pad + kh, ow = x * d->stride - d->pad + kw;
                        if (oh < 0 || oh >= d->OH || ow < 0 || ow >= d->OW) continue;
                        const float *g = dout + (((size_t)b * d->OH + oh) * d->OW + ow) * d->OC;
                        size_t xi = (((size_t)b * d->H + h) * d->W + x) * d->C;
                        for (int c = 0; c < d->C; c++) {
                            size_t ki = (((size_t)c * d->KH + kh) * d->KW + kw) * d->OC;
                            double s = 0.0;
                            for (int oc = 0; oc < d->OC; oc++) {
                                dw[ki + oc] += in[xi + c] * g[oc];
                                s += (double)w[ki + oc] * g[oc];
                            }
                            if (din) din[xi + c] += (float)s;
                        }
                    }
}

/* ---- label embedding ---- */

void nn_embed_forward(float *out, const float *in, const float *emb, const uint8_t *labels, int B, size_t pixels,
                      int C, int D) {
    const size_t oc = (size_t)C + D;
#pragma omp parallel for schedule(static) if ((size_t)B * pixels * oc >= 65536)
    for (int b = 0; b < B; b++) {
        const float *e = emb + (size_t)labels[b] * D;
        for (size_t p = 0; p < pixels; p++) {
            float *o = out + ((size_t)b * pixels + p) * oc;
            memcpy(o, in + ((size_t)b * pixels + p) * C, sizeof(float) * C);
            memcpy(o + C, e, sizeof(float) * D);
        }
    }
}

void nn_embed_backward(float *din, float *demb, const float *dout, const uint8_t *labels, int B, size_t pixels, int C,
                       int D, int K) {
    const size_t oc = (size_t)C + D;
    if (din) {
#pragma omp parallel for schedule(static) if ((size_t)B * pixels * oc >= 65536)
        for (int b = 0; b < B; b++)
            for (size_t p = 0; p < pixels; p++)
                memcpy(din + ((size_t)b * pixels + p) * C, dout + ((size_t)b * pixels + p) * oc, sizeof(float) * C);
    }
    /* K x D doubles would need scratch; a label's row is summed in double one image at a time instead (rows of
     * different labels are independent, so batch order per row is the only order that matters) */
    if (!demb) return;
    for (int k = 0; k < K; k++)
        for (int j = 0; j < D; j++) demb[(size_t)k * D + j] = 0.0f;
    for (int k = 0; k < K; k++)
        for (int j = 0; j < D; j++) {
            double s = 0.0;
            int any = 0;
            for (int b = 0; b < B; b++) {
                if (labels[b] != k) continue;
                any = 1;
                const float *g = dout + (size_t)b * pixels * oc + C + j;
                for (size_t p = 0; p < pixels; p++) s += g[p * oc];
            }
            if (any) demb[(size_t)k * D + j] = (float)s;
        }
}

/* ---- sigmoid cross-entropy on logits ---- */

float nn_bce_logits(float *dz, const float *z, const float *t, int B) {
    double loss = 0.0;
    for (int i = 0; i < B; i++) {
        const double v = z[i];
        /* log(1 + exp(-|z|)) never overflows; the max(z, 0) - z t part is exact */
        loss += (v > 0.0 ? v : 0.0) - v * t[i] + log1p(exp(-fabs(v)));
        if (dz) {
            const double sig = v >= 0.0 ? 1.0 / (1.0 + exp(-v)) : exp(v) / (1.0 + exp(v));
            dz[i] = (float)((sig - t[i]) / B);
        }
    }
    return (float)(loss / B);
}
