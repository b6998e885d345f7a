/* nn/layers_conv: 2-D convolution on NHWC activations with OHWI weights (see layers.h).
 *
 * Fast path: the batch is split into NN_GROUPS fixed groups of images, processed in parallel; inside a group,
 * chunks of images are lowered with im2col into a per-group scratch and multiplied with ONE single-threaded
 * cblas_sgemm per chunk (col (rows, K) x w^T (K, OC) -> out (rows, OC), rows = images * OH * OW). The bias,
 * activation and (optionally) the batch statistics of the output are applied while the GEMM result is still in
 * cache. Backward: dW (OC, K) = dout^T (OC, rows) x col (rows, K) per group, summed over groups in group order;
 * dcol = dout x w (rows, K) then col2im. Where im2col is the identity (1x1 stride-1 unpadded kernels, or a kernel
 * covering its whole unpadded input) the input is used in place.
 * Reference path (_ref): direct 7-deep loops, for tests.
 */
#include <cblas.h>
#include <string.h>

#include "nn/layers.h"

/* Floats of im2col per GEMM: chunks of images are grown up to this (one image at least). */
#define COL_BUDGET (96 * 1024)

int nn_conv_dims_finish(nn_conv_dims *d) {
    if (d->KH < 1 || d->KW < 1 || d->stride < 1 || d->pad < 0) return -1;
    if (d->H + 2 * d->pad < d->KH || d->W + 2 * d->pad < d->KW) return -1;
    d->OH = (d->H + 2 * d->pad - d->KH) / d->stride + 1;
    d->OW = (d->W + 2 * d->pad - d->KW) / d->stride + 1;
    return 0;
}

static inline size_t conv_k(const nn_conv_dims *d) { return (size_t)d->KH * d->KW * d->C; }
static inline size_t conv_in_n(const nn_conv_dims *d) { return (size_t)d->H * d->W * d->C; }
static inline size_t conv_out_n(const nn_conv_dims *d) { return (size_t)d->OH * d->OW * d->OC; }

/* 1 if the im2col matrix of an image is the image itself. */
static int col_is_input(const nn_conv_dims *d) {
    if (d->pad != 0) return 0;
    if (d->KH == 1 && d->KW == 1 && d->stride == 1) return 1;
    return d->KH == d->H && d->KW == d->W;
}

/* Images per GEMM for a group of n images. */
static int conv_chunk(const nn_conv_dims *d, int n) {
    size_t per = (size_t)d->OH * d->OW * conv_k(d);
    size_t sc = per >= COL_BUDGET ? 1 : COL_BUDGET / per;
    return sc < (size_t)n ? (int)sc : n < 1 ? 1 : n;
}

static inline size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Per-group scratch: col (chunk rows, K) | dw partial (OC, K) | tmp (2, OC) floats | part (2, OC) doubles. */
typedef struct conv_layout {
    size_t col, dw, tmp, part, stride; /* offsets in floats within a group's area, and the area's size */
} conv_layout;

static conv_layout conv_layout_make(const nn_conv_dims *d, int B) {
    int G = nn_groups((size_t)B);
    int gmax = (B + G - 1) / G;
    conv_layout L;
    size_t colf = col_is_input(d) ? 0 : (size_t)conv_chunk(d, gmax) * d->OH * d->OW * conv_k(d);
    L.col = 0;
    L.dw = round16(colf);
    L.tmp = L.dw + round16((size_t)d->OC * conv_k(d));
    L.part = L.tmp + round16(2 * (size_t)d->OC);
    L.stride = L.part + round16(4 * (size_t)d->OC);
    return L;
}

size_t nn_conv2d_scratch(const nn_conv_dims *d, int B) {
    if (B < 1) B = 1;
    return (size_t)nn_groups((size_t)B) * conv_layout_make(d, B).stride;
}

void nn_im2col(float *col, const float *in, int n, const nn_conv_dims *d) {
    const int KW = d->KW, C = d->C, W = d->W, H = d->H;
    const size_t K = conv_k(d), in_n = conv_in_n(d);
    for (int img = 0; img < n; img++) {
        const float *ib = in + (size_t)img * in_n;
        for (int oh = 0; oh < d->OH; oh++)
            for (int ow = 0; ow < d->OW; ow++) {
                float *row = col + (((size_t)img * d->OH + oh) * d->OW + ow) * K;
                int ih0 = oh * d->stride - d->pad, iw0 = ow * d->stride - d->pad;
                int kw0 = iw0 < 0 ? -iw0 : 0, kw1 = W - iw0 < KW ? W - iw0 : KW;
                for (int kh = 0; kh < d->KH; kh++) {
                    int ih = ih0 + kh;
                    float *dst = row + (size_t)kh * KW * C;
                    if (ih < 0 || ih >= H || kw1 <= kw0) {
                        memset(dst, 0, sizeof(float) * KW * C);
                        continue;
                    }
                    if (kw0 > 0) memset(dst, 0, sizeof(float) * kw0 * C);
                    memcpy(dst + (size_t)kw0 * C, ib + ((size_t)ih * W + iw0 + kw0) * C,
                           sizeof(float) * (kw1 - kw0) * C);
                    if (kw1 < KW) memset(dst + (size_t)kw1 * C, 0, sizeof(float) * (KW - kw1) * C);
                }
            }
    }
}

void nn_col2im(float *din, const float *dcol, int n, const nn_conv_dims *d) {
    const int KW = d->KW, C = d->C, W = d->W, H = d->H;
    const size_t K = conv_k(d), in_n = conv_in_n(d);
    for (int img = 0; img < n; img++) {
        float *ib = din + (size_t)img * in_n;
        for (int oh = 0; oh < d->OH; oh++)
            for (int ow = 0; ow < d->OW; ow++) {
                const float *row = dcol + (((size_t)img * d->OH + oh) * d->OW + ow) * K;
                int ih0 = oh * d->stride - d->pad, iw0 = ow * d->stride - d->pad;
                int kw0 = iw0 < 0 ? -iw0 : 0, kw1 = W - iw0 < KW ? W - iw0 : KW;
                if (kw1 <= kw0) continue;
                for (int kh = 0; kh < d->KH; kh++) {
                    int ih = ih0 + kh;
                    if (ih < 0 || ih >= H) continue;
                    const float *src = row + ((size_t)kh * KW + kw0) * C;
                    float *dst = ib + ((size_t)ih * W + iw0 + kw0) * C;
                    size_t len = (size_t)(kw1 - kw0) * C;
#pragma omp simd
                    for (size_t i = 0; i < len; i++) dst[i] += src[i];
                }
            }
    }
}

void nn_conv2d_forward(float *out, double *stats, float *scratch, const float *in, const float *w, const float *bias,
                       int B, const nn_conv_dims *d, nn_act act, float slope) {
    const int G = nn_groups((size_t)B), OC = d->OC, ident = col_is_input(d);
    const size_t K = conv_k(d), in_n = conv_in_n(d), out_n = conv_out_n(d), pix = (size_t)d->OH * d->OW;
    const conv_layout L = conv_layout_make(d, B);
#pragma omp parallel for schedule(static)
    for (int g = 0; g < G; g++) {
        float *area = scratch + (size_t)g * L.stride, *col = area + L.col, *tmp = area + L.tmp;
        double *part = (double *)(area + L.part); /* (2, OC): sum, sum of squares */
        for (int c = 0; c < 2 * OC; c++) part[c] = 0.0;
        int i0 = (int)nn_group_start((size_t)B, G, g), i1 = (int)nn_group_start((size_t)B, G, g + 1);
        int sc = conv_chunk(d, i1 - i0);
        for (int i = i0; i < i1; i += sc) {
            int n = i1 - i < sc ? i1 - i : sc;
            const float *a = in + (size_t)i * in_n; /* (n*OH*OW, K) */
            if (!ident) {
                nn_im2col(col, a, n, d);
                a = col;
            }
            float *o = out + (size_t)i * out_n; /* (n*OH*OW, OC) */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(n * pix), OC, (int)K, 1.0f, a, (int)K, w,
                        (int)K, 0.0f, o, OC);
            nn_bias_act(o, stats ? part : NULL, part + OC, tmp, n * pix, OC, (size_t)OC, bias, act, slope);
        }
    }
    if (stats)
        for (int c = 0; c < 2 * OC; c++) {
            double s = 0.0;
            for (int g = 0; g < G; g++) s += ((const double *)(scratch + (size_t)g * L.stride + L.part))[c];
            stats[c] = s;
        }
}

void nn_conv2d_backward(float *din, float *dw, float *dbias, float *scratch, float *dout, const float *out,
                        const float *in, const float *w, int B, const nn_conv_dims *d, nn_act act, float slope) {
    const int G = nn_groups((size_t)B), OC = d->OC, ident = col_is_input(d);
    const size_t K = conv_k(d), in_n = conv_in_n(d), out_n = conv_out_n(d), pix = (size_t)d->OH * d->OW;
    const size_t nw = (size_t)OC * K;
    const conv_layout L = conv_layout_make(d, B);
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int g = 0; g < G; g++) {
            float *area = scratch + (size_t)g * L.stride, *col = area + L.col, *dwg = area + L.dw;
            float *tmp = area + L.tmp;
            double *dbg = (double *)(area + L.part); /* (OC) */
            for (int c = 0; c < OC; c++) dbg[c] = 0.0;
            int i0 = (int)nn_group_start((size_t)B, G, g), i1 = (int)nn_group_start((size_t)B, G, g + 1);
            int sc = conv_chunk(d, i1 - i0);
            for (int i = i0; i < i1; i += sc) {
                int n = i1 - i < sc ? i1 - i : sc;
                size_t rows = n * pix;
                float *go = dout + (size_t)i * out_n; /* (rows, OC) */
                if (act != NN_ACT_NONE) nn_act_grad_inplace(go, out + (size_t)i * out_n, rows * OC, act, slope);
                for (size_t r0 = 0; r0 < rows; r0 += 256) {
                    size_t r1 = rows - r0 < 256 ? rows : r0 + 256;
                    for (int c = 0; c < OC; c++) tmp[c] = 0.0f;
                    for (size_t r = r0; r < r1; r++) {
                        const float *gr = go + r * OC;
#pragma omp simd
                        for (int c = 0; c < OC; c++) tmp[c] += gr[c];
                    }
                    for (int c = 0; c < OC; c++) dbg[c] += tmp[c];
                }
                const float *a = in + (size_t)i * in_n; /* (rows, K) */
                if (!ident) {
                    nn_im2col(col, a, n, d);
                    a = col;
                }
                /* dwg (OC, K) (+)= go^T (OC, rows) . a (rows, K) */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, (int)K, (int)rows, 1.0f, go, OC, a, (int)K,
                            i == i0 ? 0.0f : 1.0f, dwg, (int)K);
                if (din) {
                    float *di = din + (size_t)i * in_n;
                    /* dcol (rows, K) = go (rows, OC) . w (OC, K) */
                    if (ident) {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)K, OC, 1.0f, go, OC, w,
                                    (int)K, 0.0f, di, (int)K);
                    } else {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)K, OC, 1.0f, go, OC, w,
                                    (int)K, 0.0f, col, (int)K);
                        memset(di, 0, sizeof(float) * n * in_n);
                        nn_col2im(di, col, n, d);
                    }
                }
            }
        }
        /* Sum the group partials in group order (implicit barrier above). */
#pragma omp for schedule(static)
        for (size_t e = 0; e < nw; e++) {
            float s = 0.0f;
            for (int g = 0; g < G; g++) s += scratch[(size_t)g * L.stride + L.dw + e];
            dw[e] = s;
        }
#pragma omp single
        for (int c = 0; c < OC; c++) {
            double s = 0.0;
            for (int g = 0; g < G; g++) s += ((const double *)(scratch + (size_t)g * L.stride + L.part))[c];
            dbias[c] = (float)s;
        }
    }
}

void nn_conv2d_forward_ref(float *out, const float *in, const float *w, const float *bias, int B,
                           const nn_conv_dims *d) {
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < d->OH; oh++)
            for (int ow = 0; ow < d->OW; ow++)
                for (int oc = 0; oc < d->OC; oc++) {
                    double s = bias ? bias[oc] : 0.0;
                    for (int kh = 0; kh < d->KH; kh++)
                        for (int kw = 0; kw < d->KW; kw++) {
                            int ih = oh * d->stride - d->pad + kh, iw = ow * d->stride - d->pad + kw;
                            if (ih < 0 || ih >= d->H || iw < 0 || iw >= d->W) continue;
                            const float *x = in + (((size_t)b * d->H + ih) * d->W + iw) * d->C;
                            const float *k = w + (((size_t)oc * d->KH + kh) * d->KW + kw) * d->C;
                            for (int c = 0; c < d->C; c++) s += (double)x[c] * k[c];
                        }
                    out[(((size_t)b * d->OH + oh) * d->OW + ow) * d->OC + oc] = (float)s;
                }
}

void nn_conv2d_backward_ref(float *din, float *dw, float *dbias, const float *dout, const float *in, const float *w,
                            int B, const nn_conv_dims *d) {
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < d->OH; oh++)
            for (int ow = 0; ow < d->OW; ow++)
                for (int oc = 0; oc < d->OC; oc++) {
                    float g = dout[(((size_t)b * d->OH + oh) * d->OW + ow) * d->OC + oc];
                    if (dbias) dbias[oc] += g;
                    for (int kh = 0; kh < d->KH; kh++)
                        for (int kw = 0; kw < d->KW; kw++) {
                            int ih = oh * d->stride - d->pad + kh, iw = ow * d->stride - d->pad + kw;
                            if (ih < 0 || ih >= d->H || iw < 0 || iw >= d->W) continue;
                            size_t xi = (((size_t)b * d->H + ih) * d->W + iw) * d->C;
                            size_t ki = (((size_t)oc * d->KH + kh) * d->KW + kw) * d->C;
                            for (int c = 0; c < d->C; c++) {
                                dw[ki + c] += g * in[xi + c];
                                if (din) din[xi + c] += g * w[ki + c];
                            }
                        }
                }
}
