/* nn/gemm_conv: implicit-GEMM convolution kernels with AVX2+FMA register tiles (see gemm_conv.h).
 *
 * Each kernel keeps a 6 x 16 tile of results in 12 ymm registers and runs down a reduction dimension with one
 * broadcast per row and two vector loads per step (8 loads for 12 FMAs, so the FMA units set the pace):
 *   forward:         rows = output pixels, columns = output channels, reduction over k = (kh, kw, c)
 *   backward data:   rows = output pixels, columns = input channels, reduction over output channels, per tap
 *   backward weight: rows = k, columns = output channels, reduction over output pixels
 * Partial tiles (fewer than 6 rows) repeat a valid row and discard (forward) or zero (backward data) its result.
 */
#include "nn/gemm_conv.h"

#include <stdlib.h>
#include <string.h>

#include "nn/simd.h"

#define TR 6 /* rows per register tile */

static inline int frame_h(const nn_conv_dims *d) { return d->H + 2 * d->pad; }
static inline int frame_w(const nn_conv_dims *d) { return d->W + 2 * d->pad; }

#if NN_X86
int nn_cpu_avx2(void) {
    const char *e = getenv("DIGITS_NO_AVX2");
    if (e && *e && strcmp(e, "0") != 0) return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

int nn_gconv_ok(const nn_conv_dims *d) { return NN_X86 && d->OC % 16 == 0 && nn_cpu_avx2(); }
int nn_gconv_data_ok(const nn_conv_dims *d) { return d->C % 16 == 0 && nn_gconv_ok(d); }

/* Floats from one image's frame to the next: a multiple of 4 KiB would map the same pixel of every image to the
 * same L1 cache set (the weight-gradient kernel reads 64 images' pixels at once), so such strides get 16 more. */
static size_t image_stride(const nn_conv_dims *d) {
    size_t s = (size_t)frame_h(d) * frame_w(d) * d->C;
    return s % 1024 == 0 ? s + 16 : s;
}

int nn_gconv_framed(const nn_conv_dims *d) { return d->pad > 0 || image_stride(d) != (size_t)d->H * d->W * d->C; }

size_t nn_gconv_frame_floats(const nn_conv_dims *d, int n) { return (size_t)n * image_stride(d); }

void nn_gconv_pad(float *frame, const float *in, int n, const nn_conv_dims *d) {
    const int Wp = frame_w(d), p = d->pad, C = d->C;
    const size_t row = (size_t)Wp * C, border = (size_t)p * C;
    for (int i = 0; i < n; i++) {
        float *f = frame + (size_t)i * image_stride(d);
        const float *src = in + (size_t)i * d->H * d->W * C;
        memset(f, 0, sizeof(float) * p * row);
        memset(f + (size_t)(p + d->H) * row, 0, sizeof(float) * p * row);
        for (int h = 0; h < d->H; h++) {
            float *fr = f + (size_t)(h + p) * row;
            memset(fr, 0, sizeof(float) * border);
            memcpy(fr + border, src + (size_t)h * d->W * C, sizeof(float) * d->W * C);
            memset(fr + border + (size_t)d->W * C, 0, sizeof(float) * border);
        }
    }
}

void nn_gconv_unpad(float *in, const float *frame, int n, const nn_conv_dims *d) {
    const int Wp = frame_w(d), p = d->pad, C = d->C;
    const size_t row = (size_t)Wp * C;
    for (int i = 0; i < n; i++)
        for (int h = 0; h < d->H; h++)
            memcpy(in + ((size_t)i * d->H + h) * d->W * C,
                   frame + (size_t)i * image_stride(d) + (size_t)(h + p) * row + (size_t)p * C, sizeof(float) * d->W * C);
}

void nn_gconv_offsets(int32_t *off, int n, const nn_conv_dims *d) {
    const int Wp = frame_w(d);
    size_t q = 0;
    for (int i = 0; i < n; i++)
        for (int oh = 0; oh < d->OH; oh++)
            for (int ow = 0; ow < d->OW; ow++)
                off[q++] = (int32_t)((size_t)i * image_stride(d) +
                                     ((size_t)oh * d->stride * Wp + (size_t)ow * d->stride) * d->C);
}

void nn_gconv_pack_forward(float *wf, const float *w, const nn_conv_dims *d) {
    const size_t K = (size_t)d->KH * d->KW * d->C;
    for (int oc = 0; oc < d->OC; oc++) {
        float *dst = wf + (size_t)(oc / 16) * K * 16 + oc % 16;
        const float *src = w + oc * K;
        for (size_t k = 0; k < K; k++) dst[k * 16] = src[k];
    }
}

int nn_gconv_transposed(nn_conv_dims *t, const nn_conv_dims *d) {
    if (d->stride != 1 || d->KH != d->KW) return -1;
    *t = (nn_conv_dims){.H = d->OH, .W = d->OW, .C = d->OC, .OC = d->C, .KH = d->KH, .KW = d->KW, .stride = 1,
                        .pad = d->KH - 1 - d->pad};
    return nn_conv_dims_finish(t);
}

void nn_gconv_pack_transposed(float *wt, const float *w, const nn_conv_dims *d) {
    const int KH = d->KH, KW = d->KW, C = d->C, OC = d->OC;
    const size_t Kt = (size_t)KH * KW * OC;
    for (int oc = 0; oc < OC; oc++)
        for (int kh = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++) {
                const float *src = w + (((size_t)oc * KH + kh) * KW + kw) * C;
                size_t kt = ((size_t)(KH - 1 - kh) * KW + (KW - 1 - kw)) * OC + oc;
                for (int c = 0; c < C; c++) wt[((size_t)(c / 16) * Kt + kt) * 16 + c % 16] = src[c];
            }
}

void nn_gconv_pack_data(float *wd, const float *w, const nn_conv_dims *d) {
    const int taps = d->KH * d->KW, C = d->C, OC = d->OC;
    for (int oc = 0; oc < OC; oc++)
        for (int t = 0; t < taps; t++)
            memcpy(wd + ((size_t)t * OC + oc) * C, w + ((size_t)oc * taps + t) * C, sizeof(float) * C);
}

#if NN_X86

#define ZERO12                                                                                                        \
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00,    \
           a40 = a00, a41 = a00, a50 = a00, a51 = a00
#define FMA_ROW(r, b, w0, w1)                                                                                         \
    a##r##0 = _mm256_fmadd_ps(b, w0, a##r##0);                                                                        \
    a##r##1 = _mm256_fmadd_ps(b, w1, a##r##1)

/* tile (6, 16) = sum over kh < KH, t < L of p[r][kh * rowstep + t] * wf[(kh * L + t) * 16 + (0..15)]. */
NN_AVX2 static void fwd_tile(float *tile, const float *const *p, const float *wf, int KH, int L, size_t rowstep) {
    ZERO12;
    for (int kh = 0; kh < KH; kh++) {
        const size_t o = (size_t)kh * rowstep;
        const float *p0 = p[0] + o, *p1 = p[1] + o, *p2 = p[2] + o, *p3 = p[3] + o, *p4 = p[4] + o, *p5 = p[5] + o;
        const float *w = wf + (size_t)kh * L * 16;
        for (int t = 0; t < L; t++, w += 16) {
            __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8), b;
            b = _mm256_broadcast_ss(p0 + t);
            FMA_ROW(0, b, w0, w1);
            b = _mm256_broadcast_ss(p1 + t);
            FMA_ROW(1, b, w0, w1);
            b = _mm256_broadcast_ss(p2 + t);
            FMA_ROW(2, b, w0, w1);
            b = _mm256_broadcast_ss(p3 + t);
            FMA_ROW(3, b, w0, w1);
            b = _mm256_broadcast_ss(p4 + t);
            FMA_ROW(4, b, w0, w1);
            b = _mm256_broadcast_ss(p5 + t);
            FMA_ROW(5, b, w0, w1);
        }
    }
    _mm256_store_ps(tile + 0, a00), _mm256_store_ps(tile + 8, a01);
    _mm256_store_ps(tile + 16, a10), _mm256_store_ps(tile + 24, a11);
    _mm256_store_ps(tile + 32, a20), _mm256_store_ps(tile + 40, a21);
    _mm256_store_ps(tile + 48, a30), _mm256_store_ps(tile + 56, a31);
    _mm256_store_ps(tile + 64, a40), _mm256_store_ps(tile + 72, a41);
    _mm256_store_ps(tile + 80, a50), _mm256_store_ps(tile + 88, a51);
}

NN_AVX2 static inline __m256 act8(__m256 v, nn_act act, __m256 slope) {
    if (act == NN_ACT_RELU) return _mm256_max_ps(v, _mm256_setzero_ps());
    if (act == NN_ACT_LEAKY)
        return _mm256_blendv_ps(_mm256_mul_ps(v, slope), v, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ));
    return v;
}

NN_AVX2 static void flush_stats(double *sum, double *sq, __m256 *s0, __m256 *s1, __m256 *q0, __m256 *q1) {
    float t[32];
    _mm256_storeu_ps(t, *s0), _mm256_storeu_ps(t + 8, *s1), _mm256_storeu_ps(t + 16, *q0);
    _mm256_storeu_ps(t + 24, *q1);
    for (int j = 0; j < 16; j++) {
        sum[j] += t[j];
        sq[j] += t[16 + j];
    }
    *s0 = *s1 = *q0 = *q1 = _mm256_setzero_ps();
}

NN_AVX2 static void gconv_forward_avx2(float *out, double *sum, double *sq, const float *frame, const int32_t *off,
                                       const float *wf, const float *bias, int n, const nn_conv_dims *d, nn_act act,
                                       float slope, int oc_begin, int oc_end) {
    const int OC = d->OC, L = d->KW * d->C, P = n * d->OH * d->OW;
    const size_t K = (size_t)d->KH * L;
    const size_t rowstep = (size_t)frame_w(d) * d->C;
    const int vec_act = act == NN_ACT_NONE || act == NN_ACT_RELU || act == NN_ACT_LEAKY;
    const __m256 vslope = _mm256_set1_ps(slope);
    float tile[TR * 16] __attribute__((aligned(32)));
    for (int oc0 = oc_begin; oc0 < oc_end; oc0 += 16) {
        const __m256 b0 = bias ? _mm256_loadu_ps(bias + oc0) : _mm256_setzero_ps();
        const __m256 b1 = bias ? _mm256_loadu_ps(bias + oc0 + 8) : _mm256_setzero_ps();
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, q0 = s0, q1 = s0;
        int since_flush = 0;
        for (int q = 0; q < P; q += TR) {
            const int nv = P - q < TR ? P - q : TR;
            const float *p[TR];
            for (int r = 0; r < TR; r++) p[r] = frame + off[q + (r < nv ? r : nv - 1)];
            fwd_tile(tile, p, wf + (size_t)(oc0 / 16) * K * 16, d->KH, L, rowstep);
            for (int r = 0; r < nv; r++) {
                float *o = out + (size_t)(q + r) * OC + oc0;
                __m256 v0 = _mm256_add_ps(_mm256_load_ps(tile + 16 * r), b0);
                __m256 v1 = _mm256_add_ps(_mm256_load_ps(tile + 16 * r + 8), b1);
                if (vec_act) {
                    v0 = act8(v0, act, vslope);
                    v1 = act8(v1, act, vslope);
                    _mm256_storeu_ps(o, v0);
                    _mm256_storeu_ps(o + 8, v1);
                } else {
                    _mm256_storeu_ps(o, v0);
                    _mm256_storeu_ps(o + 8, v1);
                    for (int j = 0; j < 16; j++) o[j] = nn_act_apply(o[j], act, slope);
                    v0 = _mm256_loadu_ps(o);
                    v1 = _mm256_loadu_ps(o + 8);
                }
                if (sum) {
                    s0 = _mm256_add_ps(s0, v0);
                    s1 = _mm256_add_ps(s1, v1);
                    q0 = _mm256_fmadd_ps(v0, v0, q0);
                    q1 = _mm256_fmadd_ps(v1, v1, q1);
                }
            }
            if (sum && ++since_flush == 32) {
                flush_stats(sum + oc0, sq + oc0, &s0, &s1, &q0, &q1);
                since_flush = 0;
            }
        }
        if (sum) flush_stats(sum + oc0, sq + oc0, &s0, &s1, &q0, &q1);
    }
}

/* For every tap (kh, kw): x[r][tap offset + (0..15)] += sum_oc g[r][oc] * wd[tap][oc][0..15]. */
NN_AVX2 static void data_tile(float *const *x, const float *const *g, const float *wd, int KH, int KW, int OC, int C,
                              size_t rowstep) {
    const float *g0 = g[0], *g1 = g[1], *g2 = g[2], *g3 = g[3], *g4 = g[4], *g5 = g[5];
    for (int kh = 0; kh < KH; kh++)
        for (int kw = 0; kw < KW; kw++) {
            const float *w = wd + (size_t)(kh * KW + kw) * OC * C;
            ZERO12;
            for (int oc = 0; oc < OC; oc++, w += C) {
                __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8), b;
                b = _mm256_broadcast_ss(g0 + oc);
                FMA_ROW(0, b, w0, w1);
                b = _mm256_broadcast_ss(g1 + oc);
                FMA_ROW(1, b, w0, w1);
                b = _mm256_broadcast_ss(g2 + oc);
                FMA_ROW(2, b, w0, w1);
                b = _mm256_broadcast_ss(g3 + oc);
                FMA_ROW(3, b, w0, w1);
                b = _mm256_broadcast_ss(g4 + oc);
                FMA_ROW(4, b, w0, w1);
                b = _mm256_broadcast_ss(g5 + oc);
                FMA_ROW(5, b, w0, w1);
            }
            const size_t o = (size_t)kh * rowstep + (size_t)kw * C;
#define ADD_ROW(r)                                                                                                    \
    {                                                                                                                 \
        float *xr = x[r] + o;                                                                                         \
        _mm256_storeu_ps(xr, _mm256_add_ps(_mm256_loadu_ps(xr), a##r##0));                                            \
        _mm256_storeu_ps(xr + 8, _mm256_add_ps(_mm256_loadu_ps(xr + 8), a##r##1));                                    \
    }
            ADD_ROW(0) ADD_ROW(1) ADD_ROW(2) ADD_ROW(3) ADD_ROW(4) ADD_ROW(5)
#undef ADD_ROW
        }
}

NN_AVX2 static void gconv_backward_data_avx2(float *frame, const float *dout, const int32_t *off, const float *wd,
                                             const float *zero, int n, const nn_conv_dims *d, int c_begin, int c_end) {
    const int OC = d->OC, C = d->C, P = n * d->OH * d->OW;
    const size_t rowstep = (size_t)frame_w(d) * C;
    for (int q = 0; q < P; q += TR) {
        const int nv = P - q < TR ? P - q : TR;
        for (int c0 = c_begin; c0 < c_end; c0 += 16) {
            float *x[TR];
            const float *g[TR];
            for (int r = 0; r < TR; r++) {
                /* missing rows: a zero gradient added to a valid pixel */
                x[r] = frame + off[q + (r < nv ? r : 0)] + c0;
                g[r] = r < nv ? dout + (size_t)(q + r) * OC : zero;
            }
            data_tile(x, g, wd + c0, d->KH, d->KW, OC, C, rowstep);
        }
    }
}

/* dwt[r][0..15] (+)= sum_q frame[off[q] + o + r] * dout[q][0..15] for r < R (ld of dwt and dout: OC). */
#define WT_ROW(r)                                                                                                     \
    if (R > r) {                                                                                                      \
        b = _mm256_broadcast_ss(f + r);                                                                               \
        FMA_ROW(r, b, d0, d1);                                                                                        \
    }
#define WT_OUT(r)                                                                                                     \
    if (R > r) {                                                                                                      \
        float *w = dwt + (size_t)r * OC;                                                                              \
        if (accumulate) {                                                                                             \
            a##r##0 = _mm256_add_ps(a##r##0, _mm256_loadu_ps(w));                                                     \
            a##r##1 = _mm256_add_ps(a##r##1, _mm256_loadu_ps(w + 8));                                                 \
        }                                                                                                             \
        _mm256_storeu_ps(w, a##r##0);                                                                                 \
        _mm256_storeu_ps(w + 8, a##r##1);                                                                             \
    }
#define WT_TILE(RV)                                                                                                   \
    NN_AVX2 static void wt_tile_##RV(float *dwt, int OC, const float *frame, const int32_t *off, size_t o,           \
                                     const float *dout, int P, int accumulate) {                                     \
        enum { R = RV };                                                                                              \
        ZERO12;                                                                                                       \
        for (int q = 0; q < P; q++) {                                                                                 \
            const float *f = frame + off[q] + o;                                                                      \
            const float *dq = dout + (size_t)q * OC;                                                                  \
            __m256 d0 = _mm256_loadu_ps(dq), d1 = _mm256_loadu_ps(dq + 8), b;                                         \
            WT_ROW(0) WT_ROW(1) WT_ROW(2) WT_ROW(3) WT_ROW(4) WT_ROW(5)                                               \
        }                                                                                                             \
        WT_OUT(0) WT_OUT(1) WT_OUT(2) WT_OUT(3) WT_OUT(4) WT_OUT(5)                                                   \
    }
WT_TILE(1)
WT_TILE(2)
WT_TILE(3)
WT_TILE(4)
WT_TILE(5)
WT_TILE(6)

/* Pixels per block of the weight-gradient reduction: the block's output-gradient rows and input patches stay in
 * L1 while every k-tile runs over them; the (K, OC) partial is read and written once per block. */
#define WT_QBLOCK 64

NN_AVX2 static void gconv_backward_weight_avx2(float *dwt, int accumulate, const float *frame, const int32_t *off,
                                               const float *dout, int n, const nn_conv_dims *d, int oc_begin,
                                               int oc_end) {
    const int OC = d->OC, L = d->KW * d->C, P = n * d->OH * d->OW;
    const size_t rowstep = (size_t)frame_w(d) * d->C;
    for (int q0 = 0; q0 < P; q0 += WT_QBLOCK) {
        const int nq = P - q0 < WT_QBLOCK ? P - q0 : WT_QBLOCK, acc = accumulate || q0 > 0;
        const int32_t *offq = off + q0;
        for (int oc0 = oc_begin; oc0 < oc_end; oc0 += 16) {
            const float *dq = dout + (size_t)q0 * OC + oc0;
            for (int kh = 0; kh < d->KH; kh++)
                for (int t = 0; t < L; t += TR) {
                    const int R = L - t < TR ? L - t : TR;
                    float *w = dwt + ((size_t)kh * L + t) * OC + oc0;
                    const size_t o = (size_t)kh * rowstep + t;
                    switch (R) {
                    case 1: wt_tile_1(w, OC, frame, offq, o, dq, nq, acc); break;
                    case 2: wt_tile_2(w, OC, frame, offq, o, dq, nq, acc); break;
                    case 3: wt_tile_3(w, OC, frame, offq, o, dq, nq, acc); break;
                    case 4: wt_tile_4(w, OC, frame, offq, o, dq, nq, acc); break;
                    case 5: wt_tile_5(w, OC, frame, offq, o, dq, nq, acc); break;
                    default: wt_tile_6(w, OC, frame, offq, o, dq, nq, acc); break;
                    }
                }
        }
    }
}

void nn_gconv_forward(float *out, double *sum, double *sq, const float *frame, const int32_t *off, const float *wf,
                      const float *bias, int n, const nn_conv_dims *d, nn_act act, float slope, int oc0, int oc1) {
    gconv_forward_avx2(out, sum, sq, frame, off, wf, bias, n, d, act, slope, oc0, oc1);
}

void nn_gconv_backward_data(float *frame, const float *dout, const int32_t *off, const float *wd, const float *zero,
                            int n, const nn_conv_dims *d, int c0, int c1) {
    gconv_backward_data_avx2(frame, dout, off, wd, zero, n, d, c0, c1);
}

void nn_gconv_backward_weight(float *dwt, int accumulate, const float *frame, const int32_t *off, const float *dout,
                              int n, const nn_conv_dims *d, int oc0, int oc1) {
    gconv_backward_weight_avx2(dwt, accumulate, frame, off, dout, n, d, oc0, oc1);
}

#else /* no x86: never selected (nn_gconv_ok() is 0) */

void nn_gconv_forward(float *out, double *sum, double *sq, const float *frame, const int32_t *off, const float *wf,
                      const float *bias, int n, const nn_conv_dims *d, nn_act act, float slope, int oc0, int oc1) {}
void nn_gconv_backward_data(float *frame, const float *dout, const int32_t *off, const float *wd, const float *zero,
                            int n, const nn_conv_dims *d, int c0, int c1) {}
void nn_gconv_backward_weight(float *dwt, int accumulate, const float *frame, const int32_t *off, const float *dout,
                              int n, const nn_conv_dims *d, int oc0, int oc1) {}

#endif
