/* nn/gemm_conv: implicit-GEMM convolution kernels with AVX2+FMA register tiles (see nn/internal/gemm_conv.h).
 *
 * Each kernel keeps a 6 x 16 tile of results in 12 ymm registers and runs down a reduction dimension with one
 * broadcast per row and two vector loads per step (8 loads for 12 FMAs, so the FMA units set the pace):
 *   forward:         rows = output pixels, columns = output channels, reduction over k = (kh, kw, c)
 *   backward data:   rows = output pixels, columns = input channels, reduction over output channels, per tap
 *   backward weight: rows = k, columns = output channels, reduction over output pixels
 * Partial tiles (fewer than 6 rows) repeat a valid row and discard (forward) or zero (backward data) its result.
 */
#include "nn/internal/gemm_conv.h"

#include <stdlib.h>
#include <string.h>

#include "nn/internal/simd.h"

#define TR 6 /* rows per register tile */

static inline int frame_h(const nn_conv_dims *d) { return d->H + 2 * d->pad; }
static inline int frame_w(const nn_conv_dims *d) { return d->W + 2 * d->pad; }

#if NNK_X86
int nnk_cpu_avx2(void) {
    const char *e = getenv("DIGITS_NO_AVX2");
    if (e && *e && strcmp(e, "0") != 0) return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

/* Floats from one image's frame to the next: a multiple of 4 KiB would map the same pixel of every image to the
 * same L1 cache set (the weight-gradient kernel reads 64 images' pixels at once), so such strides get 16 more. */
static size_t image_stride(const nn_conv_dims *d) {
    size_t s = (size_t)frame_h(d) * frame_w(d) * d->C;
    return s % 1024 == 0 ? s + 16 : s;
}

int nnk_gconv_framed(const nn_conv_dims *d) { return d->pad > 0 || image_stride(d) != (size_t)d->H * d->W * d->C; }

size_t nnk_gconv_frame_floats(const nn_conv_dims *d, int n) { return (size_t)n * image_stride(d); }

void nnk_gconv_pad(float *frame, const float *in, int n, const nn_conv_dims *d) {
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
        /* the gap to the next image (see image_stride): kernels that read whole vectors past a row may touch it */
        memset(f + (size_t)frame_h(d) * row, 0, sizeof(float) * (image_stride(d) - (size_t)frame_h(d) * row));
    }
}

void nnk_gconv_unpad(float *in, const float *frame, int n, const nn_conv_dims *d) {
    const int Wp = frame_w(d), p = d->pad, C = d->C;
    const size_t row = (size_t)Wp * C;
    for (int i = 0; i < n; i++)
        for (int h = 0; h < d->H; h++)
            memcpy(in + ((size_t)i * d->H + h) * d->W * C,
                   frame + (size_t)i * image_stride(d) + (size_t)(h + p) * row + (size_t)p * C, sizeof(float) * d->W * C);
}

void nnk_gconv_offsets(int32_t *off, int n, const nn_conv_dims *d) {
    /* sizes in locals: off (int32_t) may alias *d for the compiler, which then reloads them every step */
    const int32_t img = (int32_t)image_stride(d), row = (int32_t)(d->stride * frame_w(d) * d->C),
                  col = (int32_t)(d->stride * d->C);
    const int OH = d->OH, OW = d->OW;
    for (int i = 0; i < n; i++)
        for (int oh = 0; oh < OH; oh++) {
            int32_t *o = off + ((size_t)i * OH + oh) * OW;
            const int32_t base = i * img + oh * row;
            for (int ow = 0; ow < OW; ow++) o[ow] = base + ow * col;
        }
}

void nnk_gconv_pack_forward(float *wf, const float *w, const nn_conv_dims *d, int oc0, int oc1) {
    const size_t K = (size_t)d->KH * d->KW * d->C;
    for (int oc = oc0; oc < oc1; oc++) {
        float *dst = wf + (size_t)(oc / 16) * K * 16 + oc % 16;
        const float *src = w + oc * K;
        for (size_t k = 0; k < K; k++) dst[k * 16] = src[k];
    }
}

int nnk_gconv_transposed(nn_conv_dims *t, const nn_conv_dims *d) {
    if (d->stride != 1 || d->KH != d->KW) return -1;
    *t = (nn_conv_dims){.H = d->OH, .W = d->OW, .C = d->OC, .OC = d->C, .KH = d->KH, .KW = d->KW, .stride = 1,
                        .pad = d->KH - 1 - d->pad};
    return nn_conv_dims_finish(t);
}

void nnk_gconv_pack_transposed(float *wt, const float *w, const nn_conv_dims *d, int oc0, int oc1) {
    const int KH = d->KH, KW = d->KW, C = d->C, OC = d->OC;
    const size_t Kt = (size_t)KH * KW * OC;
    for (int oc = oc0; oc < oc1; oc++)
        for (int kh = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++) {
                const float *src = w + (((size_t)oc * KH + kh) * KW + kw) * C;
                size_t kt = ((size_t)(KH - 1 - kh) * KW + (KW - 1 - kw)) * OC + oc;
                for (int c = 0; c < C; c++) wt[((size_t)(c / 16) * Kt + kt) * 16 + c % 16] = src[c];
            }
}

void nnk_gconv_pack_data(float *wd, const float *w, const nn_conv_dims *d, int oc0, int oc1) {
    const int taps = d->KH * d->KW, C = d->C, OC = d->OC;
    for (int oc = oc0; oc < oc1; oc++)
        for (int t = 0; t < taps; t++)
            memcpy(wd + ((size_t)t * OC + oc) * C, w + ((size_t)oc * taps + t) * C, sizeof(float) * C);
}


/* ---- Winograd F(2x2, 3x3) ---- */

#define WINO_TILES 48 /* tiles per transform chunk: V (16, 48, C) stays in L2 */
/* Floats between the 16 planes of the transformed tiles V (or U), nt * n + 16: a cache line more than the data, so
 * that the planes do not all fall into one or two L1 sets when nt * n floats are a multiple of 2 KiB (48 x 32,
 * 36 x 128): the 16 stores of a tile's transform then no longer evict each other. */
static inline size_t wino_plane(int nt, int n) { return (size_t)nt * n + 16; }
#define WINO4_TILES 24 /* the same for F(4x4, 3x3): V (36, 24, C) */
#define WINO4_WG_TILES 48 /* F(4x4, 3x3) weight gradient: longer reductions per pass over m (36, C, OC) */

/* Tile geometry of F(m x m, 3x3), m = 2 or 4: TY x TX tiles of m x m output pixels, each read from an (m + 2)^2
 * input tile; the frame covers every tile: (m TY + 2) x (m TX + 2) x C per image, input at (pad, pad), zeros
 * elsewhere. */
static inline int wt_ty(const nn_conv_dims *d, int m) { return (d->OH + m - 1) / m; }
static inline int wt_tx(const nn_conv_dims *d, int m) { return (d->OW + m - 1) / m; }
static inline int wt_fh(const nn_conv_dims *d, int m) { return m * wt_ty(d, m) + 2; }
static inline int wt_fw(const nn_conv_dims *d, int m) { return m * wt_tx(d, m) + 2; }
static size_t wt_img(const nn_conv_dims *d, int m) {
    size_t s = (size_t)wt_fh(d, m) * wt_fw(d, m) * d->C;
    return s % 1024 == 0 ? s + 16 : s;
}
static int wt_framed(const nn_conv_dims *d, int m) {
    return d->pad > 0 || wt_fh(d, m) != d->H || wt_fw(d, m) != d->W ||
           wt_img(d, m) != (size_t)d->H * d->W * d->C;
}
static inline int wino_ty(const nn_conv_dims *d) { return wt_ty(d, 2); }
static inline int wino_tx(const nn_conv_dims *d) { return wt_tx(d, 2); }
static inline int wino_fw(const nn_conv_dims *d) { return wt_fw(d, 2); }

/* frame (n images, wt_img(d, m) apart) = in (n, H, W, C) at (pad, pad), zeros around (only the borders written). */
static void wino_pad(float *frame, const float *in, int n, const nn_conv_dims *d, int m) {
    const int C = d->C, fh = wt_fh(d, m), fw = wt_fw(d, m), p = d->pad;
    const size_t row = (size_t)fw * C, left = (size_t)p * C, right = (size_t)(fw - p - d->W) * C;
    for (int i = 0; i < n; i++) {
        float *f = frame + (size_t)i * wt_img(d, m);
        memset(f, 0, sizeof(float) * p * row);
        memset(f + (size_t)(p + d->H) * row, 0, sizeof(float) * (fh - p - d->H) * row);
        for (int h = 0; h < d->H; h++) {
            float *fr = f + (size_t)(h + p) * row;
            memset(fr, 0, sizeof(float) * left);
            memcpy(fr + left, in + ((size_t)i * d->H + h) * d->W * C, sizeof(float) * d->W * C);
            memset(fr + left + (size_t)d->W * C, 0, sizeof(float) * right);
        }
    }
}

/* Tap (kh, kw) from input channel c to output channel oc of w (OC, 3, 3, C), or transposed = 1: of the transposed
 * convolution (w (C, 3, 3, OC) rotated by 180 degrees). The scalar packings read their weights through it. */
static inline float wino_weight(const float *w, const nn_conv_dims *d, int transposed, int oc, int c, int kh, int kw) {
    return transposed ? w[(((size_t)c * 3 + 2 - kh) * 3 + 2 - kw) * d->OC + oc]
                      : w[(((size_t)oc * 3 + kh) * 3 + kw) * d->C + c];
}

int nnk_wino_ok(const nn_conv_dims *d) {
    return NNK_X86 && d->KH == 3 && d->KW == 3 && d->stride == 1 && d->C % 16 == 0 && d->OC % 16 == 0 &&
           nnk_cpu_avx2();
}

#if NNK_X86
/* g[kh][kw] (4 double lanes) = the 3x3 weights of output channels oc..oc+3 and input channel c, of w (OC, 3, 3, C),
 * or transposed = 1: of the transposed convolution (w (C, 3, 3, OC) rotated by 180 degrees). */
NNK_AVX2 static inline void wino_load_g(__m256d g[3][3], const float *w, const nn_conv_dims *d, int transposed, int oc,
                                        int c) {
    const int C = d->C, OC = d->OC;
    const size_t s = (size_t)9 * C; /* from one output channel's weights to the next */
    for (int kh = 0; kh < 3; kh++)
        for (int kw = 0; kw < 3; kw++) {
            __m128 v;
            if (transposed) {
                v = _mm_loadu_ps(w + (((size_t)c * 3 + 2 - kh) * 3 + 2 - kw) * OC + oc);
            } else {
                const float *p = w + (((size_t)oc * 3 + kh) * 3 + kw) * C + c;
                v = _mm_setr_ps(p[0], p[s], p[2 * s], p[3 * s]);
            }
            g[kh][kw] = _mm256_cvtps_pd(v);
        }
}

/* nnk_wino_pack for 4 output channels at a time (oc0, oc1 multiples of 4): the same double arithmetic per lane,
 * so the same bits. */
NNK_AVX2 static void wino_pack_avx2(float *u, const float *w, const nn_conv_dims *d, int transposed, int oc0, int oc1) {
    const int C = d->C, OC = d->OC, nb = OC / 16;
    const __m256d half = _mm256_set1_pd(0.5);
    for (int oc = oc0; oc < oc1; oc += 4)
        for (int c = 0; c < C; c++) {
            __m256d g[3][3], gg[4][3];
            wino_load_g(g, w, d, transposed, oc, c);
            for (int j = 0; j < 3; j++) {
                gg[0][j] = g[0][j];
                gg[1][j] = _mm256_mul_pd(half, _mm256_add_pd(_mm256_add_pd(g[0][j], g[1][j]), g[2][j]));
                gg[2][j] = _mm256_mul_pd(half, _mm256_add_pd(_mm256_sub_pd(g[0][j], g[1][j]), g[2][j]));
                gg[3][j] = g[2][j];
            }
            for (int i = 0; i < 4; i++) {
                __m256d r[4] = {gg[i][0],
                                _mm256_mul_pd(half, _mm256_add_pd(_mm256_add_pd(gg[i][0], gg[i][1]), gg[i][2])),
                                _mm256_mul_pd(half, _mm256_add_pd(_mm256_sub_pd(gg[i][0], gg[i][1]), gg[i][2])),
                                gg[i][2]};
                for (int j = 0; j < 4; j++)
                    _mm_storeu_ps(u + (((size_t)(i * 4 + j) * nb + oc / 16) * C + c) * 16 + oc % 16,
                                  _mm256_cvtpd_ps(r[j]));
            }
        }
}
#endif

void nnk_wino_pack(float *u, const float *w, const nn_conv_dims *d, int transposed, int oc0, int oc1) {
    const int C = d->C, OC = d->OC, nb = OC / 16;
#if NNK_X86
    if (oc0 % 4 == 0 && oc1 % 4 == 0) {
        wino_pack_avx2(u, w, d, transposed, oc0, oc1);
        return;
    }
#endif
    for (int oc = oc0; oc < oc1; oc++)
        for (int c = 0; c < C; c++) {
            double g[3][3], gg[4][3];
            for (int kh = 0; kh < 3; kh++)
                for (int kw = 0; kw < 3; kw++) g[kh][kw] = wino_weight(w, d, transposed, oc, c, kh, kw);
            for (int j = 0; j < 3; j++) { /* G g */
                gg[0][j] = g[0][j];
                gg[1][j] = 0.5 * (g[0][j] + g[1][j] + g[2][j]);
                gg[2][j] = 0.5 * (g[0][j] - g[1][j] + g[2][j]);
                gg[3][j] = g[2][j];
            }
            for (int i = 0; i < 4; i++) { /* (G g) G^T */
                double r[4] = {gg[i][0], 0.5 * (gg[i][0] + gg[i][1] + gg[i][2]),
                               0.5 * (gg[i][0] - gg[i][1] + gg[i][2]), gg[i][2]};
                for (int j = 0; j < 4; j++)
                    u[(((size_t)(i * 4 + j) * nb + oc / 16) * C + c) * 16 + oc % 16] = (float)r[j];
            }
        }
}

/* work: frame (framed only) | tile offsets (n TY TX int32) | V (16 planes of WINO_TILES x C, wino_plane apart) |
 * m (16, 6, 16) | stats (2, OC) */
static size_t wino_frame_sz(const nn_conv_dims *d, int n, int m) {
    return wt_framed(d, m) ? (size_t)n * wt_img(d, m) : 0;
}

/* The input as the Winograd tiles of F(m x m, 3x3) read it: `in` itself, or (when the layer pads) a zero-framed copy
 * in `frame`; toff[t] (n*TY*TX) = offset of tile t's top-left element in it. Returns the base the offsets refer to. */
static const float *wino_tiles(float *frame, int32_t *toff, const float *in, int n, const nn_conv_dims *d, int m) {
    const int C = d->C, TY = wt_ty(d, m), TX = wt_tx(d, m), fw = wt_fw(d, m);
    const float *fr = in;
    size_t istride = (size_t)d->H * d->W * C;
    if (wt_framed(d, m)) {
        istride = wt_img(d, m);
        wino_pad(frame, in, n, d, m);
        fr = frame;
    }
    for (int t = 0, i = 0; i < n; i++)
        for (int ty = 0; ty < TY; ty++)
            for (int tx = 0; tx < TX; tx++)
                toff[t++] = (int32_t)(i * istride + ((size_t)m * ty * fw + (size_t)m * tx) * C);
    return fr;
}
static size_t r16(size_t n) { return (n + 15) & ~(size_t)15; }

size_t nnk_wino_work_floats(const nn_conv_dims *d, int n) {
    return r16(wino_frame_sz(d, n, 2)) + r16((size_t)n * wino_ty(d) * wino_tx(d)) +
           r16(16 * wino_plane(WINO_TILES, d->C)) + 16 * 6 * 16 + r16(2 * (size_t)d->OC);
}

/* work of the weight gradient: frame | tile offsets | V (16 planes of WINO_TILES x C) | U (16 planes of
 * WINO_TILES x OC), planes wino_plane apart */
size_t nnk_wino_wgrad_floats(const nn_conv_dims *d, int n) {
    return r16(wino_frame_sz(d, n, 2)) + r16((size_t)n * wino_ty(d) * wino_tx(d)) +
           r16(16 * wino_plane(WINO_TILES, d->C)) + r16(16 * wino_plane(WINO_TILES, d->OC));
}

#if NNK_X86
/* nnk_wino_wgrad_finish 8 elements at a time (plane is a multiple of 256): the same additions in the same order. */
NNK_AVX2 static void wgrad_finish_avx2(float *dwt, const float *m, size_t plane) {
    for (size_t e = 0; e < plane; e += 8) {
        __m256 M[16], S[3][4];
        for (int xi = 0; xi < 16; xi++) M[xi] = _mm256_loadu_ps(m + xi * plane + e);
        for (int j = 0; j < 4; j++) {
            S[0][j] = _mm256_add_ps(_mm256_add_ps(M[j], M[4 + j]), M[8 + j]);
            S[1][j] = _mm256_sub_ps(M[4 + j], M[8 + j]);
            S[2][j] = _mm256_add_ps(_mm256_add_ps(M[4 + j], M[8 + j]), M[12 + j]);
        }
        for (int i = 0; i < 3; i++) {
            float *o = dwt + (size_t)i * 3 * plane + e;
            _mm256_storeu_ps(o, _mm256_add_ps(_mm256_add_ps(S[i][0], S[i][1]), S[i][2]));
            _mm256_storeu_ps(o + plane, _mm256_sub_ps(S[i][1], S[i][2]));
            _mm256_storeu_ps(o + 2 * plane, _mm256_add_ps(_mm256_add_ps(S[i][1], S[i][2]), S[i][3]));
        }
    }
}
#endif

void nnk_wino_wgrad_finish(float *dwt, const float *m, const nn_conv_dims *d) {
    const size_t C = (size_t)d->C, OC = (size_t)d->OC, plane = C * OC;
#if NNK_X86
    if (plane % 8 == 0) {
        wgrad_finish_avx2(dwt, m, plane);
        return;
    }
#endif
    for (size_t e = 0; e < plane; e++) { /* e = c * OC + oc */
        float M[16], S[3][4];
        for (int xi = 0; xi < 16; xi++) M[xi] = m[xi * plane + e];
        for (int j = 0; j < 4; j++) { /* A^T M */
            S[0][j] = M[j] + M[4 + j] + M[8 + j];
            S[1][j] = M[4 + j] - M[8 + j];
            S[2][j] = M[4 + j] + M[8 + j] + M[12 + j];
        }
        for (int i = 0; i < 3; i++) { /* (.) A */
            dwt[(size_t)(i * 3 + 0) * plane + e] = S[i][0] + S[i][1] + S[i][2];
            dwt[(size_t)(i * 3 + 1) * plane + e] = S[i][1] - S[i][2];
            dwt[(size_t)(i * 3 + 2) * plane + e] = S[i][1] + S[i][2] + S[i][3];
        }
    }
}

/* Weight gradient with F(4x4, 3x3)'s own matrices (the transpose of its forward: y = A^T [(G g) .* (B^T d)]
 * gives dg = G^T [(B^T d) .* (A dy)]): m (36, C, OC) sums (B^T d B) .* (A dY A^T) over 6x6 input tiles d and 4x4
 * output-gradient blocks dY; dwt = G^T m G. G^T = [1/4 -1/6 -1/6 1/24 1/24 0; 0 -1/6 1/6 1/12 -1/12 0;
 * 0 -1/6 -1/6 1/6 1/6 1] (nnk_wino4_wgrad_finish, AVX2 only: OC is a multiple of 16). */
size_t nnk_wino4_wgrad_floats(const nn_conv_dims *d, int n) {
    return r16(wino_frame_sz(d, n, 4)) + r16((size_t)n * wt_ty(d, 4) * wt_tx(d, 4)) +
           r16(36 * wino_plane(WINO4_WG_TILES, d->C)) + r16(36 * wino_plane(WINO4_WG_TILES, d->OC));
}

/* ---- stride-2 convolutions on the space-to-depth input ---- */

int nnk_s2d_dims(nn_conv_dims *s, nn_conv_dims *t, const nn_conv_dims *d) {
    if (!NNK_X86 || d->stride != 2 || d->pad != 2 || d->KH != d->KW || (d->KH != 5 && d->KH != 6) ||
        d->OH != (d->H + 1) / 2 || d->OW != (d->W + 1) / 2 || d->C % 4 != 0 || d->OC % 16 != 0 || !nnk_cpu_avx2())
        return 0;
    *s = (nn_conv_dims){.H = d->OH + 2, .W = d->OW + 2, .C = 4 * d->C, .OC = d->OC, .KH = 3, .KW = 3, .stride = 1};
    *t = (nn_conv_dims){.H = d->OH, .W = d->OW, .C = d->OC, .OC = 4 * d->C, .KH = 3, .KW = 3, .stride = 1, .pad = 1};
    return nn_conv_dims_finish(s) == 0 && nn_conv_dims_finish(t) == 0;
}

void nnk_s2d_input(float *S, const float *in, int n, const nn_conv_dims *d) {
    const int C = d->C, SH = d->OH + 2, SW = d->OW + 2, p = d->pad;
    const size_t C4 = 4 * (size_t)C, img = (size_t)SH * SW * C4, in_n = (size_t)d->H * d->W * C;
    for (int i = 0; i < n; i++)
        for (int Y = 0; Y < SH; Y++)
            for (int py = 0; py < 2; py++) {
                const int h = 2 * Y + py - p;
                float *dst = S + i * img + (size_t)Y * SW * C4 + (size_t)py * 2 * C; /* (SW, 4C) with 2C used */
                if (h < 0 || h >= d->H) {
                    for (int X = 0; X < SW; X++) memset(dst + X * C4, 0, sizeof(float) * 2 * C);
                    continue;
                }
                const float *src = in + i * in_n + (size_t)h * d->W * C;
                for (int X = 0; X < SW; X++)
                    for (int px = 0; px < 2; px++) {
                        const int w = 2 * X + px - p;
                        float *o = dst + X * C4 + (size_t)px * C;
                        if (w < 0 || w >= d->W)
                            memset(o, 0, sizeof(float) * C);
                        else
                            memcpy(o, src + (size_t)w * C, sizeof(float) * C);
                    }
            }
}

void nnk_s2d_weights(float *ws, const float *w, const nn_conv_dims *d, int oc0, int oc1) {
    const int C = d->C, K = d->KH;
    for (int oc = oc0; oc < oc1; oc++)
        for (int dy = 0; dy < 3; dy++)
            for (int dx = 0; dx < 3; dx++)
                for (int py = 0; py < 2; py++)
                    for (int px = 0; px < 2; px++) {
                        const int kh = 2 * dy + py, kw = 2 * dx + px;
                        float *o = ws + ((((size_t)oc * 3 + dy) * 3 + dx) * 4 + py * 2 + px) * C;
                        if (kh < K && kw < K)
                            memcpy(o, w + (((size_t)oc * K + kh) * K + kw) * C, sizeof(float) * C);
                        else
                            memset(o, 0, sizeof(float) * C);
                    }
}

void nnk_s2d_grad_input(float *din, const float *dS, int n, const nn_conv_dims *d) {
    const int C = d->C, H = d->H, W = d->W, p = d->pad;
    const size_t C4 = 4 * (size_t)C;
    for (int i = 0; i < n; i++)
        for (int h = 0; h < H; h++) {
            const int Y = (h + p) / 2 - 1, py = (h + p) % 2; /* S row Y + 1 holds input row h */
            const float *src = dS + ((size_t)i * d->OH + Y) * d->OW * C4 + (size_t)py * 2 * C;
            float *dst = din + ((size_t)i * H + h) * W * C;
            for (int w = 0; w < W; w++) {
                const int X = (w + p) / 2 - 1, px = (w + p) % 2;
                memcpy(dst + (size_t)w * C, src + X * C4 + (size_t)px * C, sizeof(float) * C);
            }
        }
}

void nnk_s2d_grad_weight(float *dwt, const float *dws, const nn_conv_dims *d) {
    const int C = d->C, K = d->KH;
    const size_t blk = (size_t)C * d->OC; /* one (py, px) block of a tap: rows (c) of OC */
    for (int dy = 0; dy < 3; dy++)
        for (int dx = 0; dx < 3; dx++)
            for (int py = 0; py < 2; py++)
                for (int px = 0; px < 2; px++) {
                    const int kh = 2 * dy + py, kw = 2 * dx + px;
                    if (kh < K && kw < K)
                        memcpy(dwt + ((size_t)kh * K + kw) * blk, dws + ((size_t)(dy * 3 + dx) * 4 + py * 2 + px) * blk,
                               sizeof(float) * blk);
                }
}

#if NNK_X86

#define ZERO12                                                                                                        \
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00,    \
           a40 = a00, a41 = a00, a50 = a00, a51 = a00
#define FMA_ROW(r, b, w0, w1)                                                                                         \
    a##r##0 = _mm256_fmadd_ps(b, w0, a##r##0);                                                                        \
    a##r##1 = _mm256_fmadd_ps(b, w1, a##r##1)

/* tile (6, 16) = sum over kh < KH, t < L of p[r][kh * rowstep + t] * wf[(kh * L + t) * 16 + (0..15)]. */
NNK_AVX2 static void fwd_tile(float *tile, const float *const *p, const float *wf, int KH, int L, size_t rowstep) {
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

NNK_AVX2 static void flush_stats(double *sum, double *sq, __m256 *s0, __m256 *s1, __m256 *q0, __m256 *q1) {
    float t[32];
    _mm256_storeu_ps(t, *s0), _mm256_storeu_ps(t + 8, *s1), _mm256_storeu_ps(t + 16, *q0);
    _mm256_storeu_ps(t + 24, *q1);
    for (int j = 0; j < 16; j++) {
        sum[j] += t[j];
        sq[j] += t[16 + j];
    }
    *s0 = *s1 = *q0 = *q1 = _mm256_setzero_ps();
}

NNK_AVX2 static void gconv_forward_avx2(float *out, double *sum, double *sq, const float *frame, const int32_t *off,
                                        const float *wf, const float *bias, int n, const nn_conv_dims *d, nn_act act,
                                        float slope, int oc_begin, int oc_end) {
    const int OC = d->OC, L = d->KW * d->C, P = n * d->OH * d->OW;
    const size_t K = (size_t)d->KH * L;
    const size_t rowstep = (size_t)frame_w(d) * d->C;
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
                v0 = nnk_act8(v0, act, vslope);
                v1 = nnk_act8(v1, act, vslope);
                _mm256_storeu_ps(o, v0);
                _mm256_storeu_ps(o + 8, v1);
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
NNK_AVX2 static void data_tile(float *const *x, const float *const *g, const float *wd, int KH, int KW, int OC, int C,
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

NNK_AVX2 static void gconv_backward_data_avx2(float *frame, const float *dout, const int32_t *off, const float *wd,
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
    NNK_AVX2 static void wt_tile_##RV(float *dwt, int OC, const float *frame, const int32_t *off, size_t o,          \
                                      const float *dout, int P, int accumulate) {                                    \
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

NNK_AVX2 static void gconv_backward_weight_avx2(float *dwt, int accumulate, const float *frame, const int32_t *off,
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


/* V[(i*4 + j) * vstride + t * C + c] = (B^T d B)[i][j] for the 4x4 input tiles at fr + toff[t], t < nt. The two
 * Winograd algorithms here differ only in B^T's last row: d1 - d3 for F(2x2, 3x3) (forward, input gradient),
 * d3 - d1 for F(3x3, 2x2) (weight gradient); `last31` picks the second. Inlined into each caller with a constant,
 * so each keeps its own straight-line code. */
NNK_AVX2 static inline __attribute__((always_inline)) void wino_bt(float *V, size_t vstride, const float *fr,
                                                                   const int32_t *toff, int nt, int C, size_t row,
                                                                   int last31) {
    for (int t = 0; t < nt; t++)
        for (int c0 = 0; c0 < C; c0 += 8) {
            const float *b = fr + toff[t] + c0;
            __m256 x[4][4], r[4][4];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++) x[i][j] = _mm256_loadu_ps(b + i * row + (size_t)j * C);
            for (int j = 0; j < 4; j++) { /* B^T d */
                r[0][j] = _mm256_sub_ps(x[0][j], x[2][j]);
                r[1][j] = _mm256_add_ps(x[1][j], x[2][j]);
                r[2][j] = _mm256_sub_ps(x[2][j], x[1][j]);
                r[3][j] = last31 ? _mm256_sub_ps(x[3][j], x[1][j]) : _mm256_sub_ps(x[1][j], x[3][j]);
            }
            float *v = V + (size_t)t * C + c0;
            for (int i = 0; i < 4; i++) { /* (.) B */
                _mm256_storeu_ps(v + (size_t)(i * 4 + 0) * vstride, _mm256_sub_ps(r[i][0], r[i][2]));
                _mm256_storeu_ps(v + (size_t)(i * 4 + 1) * vstride, _mm256_add_ps(r[i][1], r[i][2]));
                _mm256_storeu_ps(v + (size_t)(i * 4 + 2) * vstride, _mm256_sub_ps(r[i][2], r[i][1]));
                _mm256_storeu_ps(v + (size_t)(i * 4 + 3) * vstride,
                                 last31 ? _mm256_sub_ps(r[i][3], r[i][1]) : _mm256_sub_ps(r[i][1], r[i][3]));
            }
        }
}

/* F(2x2, 3x3)'s input transform. */
NNK_AVX2 static void wino_input(float *V, size_t vstride, const float *fr, const int32_t *toff, int nt, int C,
                                size_t row) {
    wino_bt(V, vstride, fr, toff, nt, C, row, 0);
}

/* m (npos, 6, 16): for each of the npos transform positions (16 for F(2x2, 3x3), 36 for F(4x4, 3x3)), rows of V
 * (6 tiles from v0) times u (C, 16). */
NNK_AVX2 static inline __attribute__((always_inline)) void wino_gemm(float *m, const float *v0, size_t vstride, int nv,
                                                                     const float *u, size_t ustride, int C, int npos) {
    for (int xi = 0; xi < npos; xi++) {
        const float *v = v0 + (size_t)xi * vstride;
        const float *p0 = v, *p1 = v + (size_t)(nv > 1 ? 1 : 0) * C, *p2 = v + (size_t)(nv > 2 ? 2 : 0) * C;
        const float *p3 = v + (size_t)(nv > 3 ? 3 : 0) * C, *p4 = v + (size_t)(nv > 4 ? 4 : 0) * C;
        const float *p5 = v + (size_t)(nv > 5 ? 5 : 0) * C;
        const float *w = u + (size_t)xi * ustride;
        ZERO12;
        for (int c = 0; c < C; c++, w += 16) {
            __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8), b;
            b = _mm256_broadcast_ss(p0 + c);
            FMA_ROW(0, b, w0, w1);
            b = _mm256_broadcast_ss(p1 + c);
            FMA_ROW(1, b, w0, w1);
            b = _mm256_broadcast_ss(p2 + c);
            FMA_ROW(2, b, w0, w1);
            b = _mm256_broadcast_ss(p3 + c);
            FMA_ROW(3, b, w0, w1);
            b = _mm256_broadcast_ss(p4 + c);
            FMA_ROW(4, b, w0, w1);
            b = _mm256_broadcast_ss(p5 + c);
            FMA_ROW(5, b, w0, w1);
        }
        float *o = m + (size_t)xi * 96;
        _mm256_storeu_ps(o + 0, a00), _mm256_storeu_ps(o + 8, a01);
        _mm256_storeu_ps(o + 16, a10), _mm256_storeu_ps(o + 24, a11);
        _mm256_storeu_ps(o + 32, a20), _mm256_storeu_ps(o + 40, a21);
        _mm256_storeu_ps(o + 48, a30), _mm256_storeu_ps(o + 56, a31);
        _mm256_storeu_ps(o + 64, a40), _mm256_storeu_ps(o + 72, a41);
        _mm256_storeu_ps(o + 80, a50), _mm256_storeu_ps(o + 88, a51);
    }
}


/* ---- Winograd F(4x4, 3x3) ----
 * Points 0, 1, -1, 2, -2, infinity (Lavin and Gray 2016): 36 multiplications per 16 output pixels instead of 16 per
 * 4, 1.78 times fewer than F(2x2, 3x3), with 6x6 input tiles. Transforms:
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
 *   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1] */

/* (G g)[0..5] from g[0..2], in double (the weights are transformed once per step). */
#define WINO4_G(o, g0, g1, g2)                                                                                         \
    do {                                                                                                               \
        (o)[0] = (g0) / 4.0;                                                                                           \
        (o)[1] = -((g0) + (g1) + (g2)) / 6.0;                                                                          \
        (o)[2] = -((g0) - (g1) + (g2)) / 6.0;                                                                          \
        (o)[3] = (g0) / 24.0 + (g1) / 12.0 + (g2) / 6.0;                                                              \
        (o)[4] = (g0) / 24.0 - (g1) / 12.0 + (g2) / 6.0;                                                              \
        (o)[5] = (g2);                                                                                                 \
    } while (0)

int nnk_wino4_ok(const nn_conv_dims *d) { return nnk_wino_ok(d); }

/* nnk_wino4_pack for 4 output channels at a time (oc0, oc1 multiples of 4): WINO4_G on 4 double lanes (GCC vector
 * arithmetic), the same operations as the scalar code, so the same bits. */
NNK_AVX2 static void wino4_pack_avx2(float *u, const float *w, const nn_conv_dims *d, int transposed, int oc0,
                                     int oc1) {
    const int C = d->C, OC = d->OC, nb = OC / 16;
    for (int oc = oc0; oc < oc1; oc += 4)
        for (int c = 0; c < C; c++) {
            __m256d g[3][3], gg[6][3];
            wino_load_g(g, w, d, transposed, oc, c);
            for (int j = 0; j < 3; j++) {
                __m256d col[6];
                WINO4_G(col, g[0][j], g[1][j], g[2][j]);
                for (int i = 0; i < 6; i++) gg[i][j] = col[i];
            }
            for (int i = 0; i < 6; i++) {
                __m256d r[6];
                WINO4_G(r, gg[i][0], gg[i][1], gg[i][2]);
                for (int j = 0; j < 6; j++)
                    _mm_storeu_ps(u + (((size_t)(i * 6 + j) * nb + oc / 16) * C + c) * 16 + oc % 16,
                                  _mm256_cvtpd_ps(r[j]));
            }
        }
}

void nnk_wino4_pack(float *u, const float *w, const nn_conv_dims *d, int transposed, int oc0, int oc1) {
    const int C = d->C, OC = d->OC, nb = OC / 16;
    if (oc0 % 4 == 0 && oc1 % 4 == 0) {
        wino4_pack_avx2(u, w, d, transposed, oc0, oc1);
        return;
    }
    for (int oc = oc0; oc < oc1; oc++)
        for (int c = 0; c < C; c++) {
            double g[3][3], gg[6][3];
            for (int kh = 0; kh < 3; kh++)
                for (int kw = 0; kw < 3; kw++) g[kh][kw] = wino_weight(w, d, transposed, oc, c, kh, kw);
            for (int j = 0; j < 3; j++) { /* G g */
                double col[6];
                WINO4_G(col, g[0][j], g[1][j], g[2][j]);
                for (int i = 0; i < 6; i++) gg[i][j] = col[i];
            }
            for (int i = 0; i < 6; i++) { /* (G g) G^T */
                double r[6];
                WINO4_G(r, gg[i][0], gg[i][1], gg[i][2]);
                for (int j = 0; j < 6; j++)
                    u[(((size_t)(i * 6 + j) * nb + oc / 16) * C + c) * 16 + oc % 16] = (float)r[j];
            }
        }
}

/* work: frame (framed only) | tile offsets | V (36, WINO4_TILES, C) | m (36, 6, 16) | stats (2, OC) */
size_t nnk_wino4_work_floats(const nn_conv_dims *d, int n) {
    return r16(wino_frame_sz(d, n, 4)) + r16((size_t)n * wt_ty(d, 4) * wt_tx(d, 4)) +
           r16(36 * wino_plane(WINO4_TILES, d->C)) + 36 * 6 * 16 + r16(2 * (size_t)d->OC);
}

/* B^T x for one column of six vectors (x[k * xs]), into r[k * rs]. */
#define WINO4_BT(r, rs, x, xs)                                                                                         \
    do {                                                                                                               \
        const __m256 d0 = (x)[0], d1 = (x)[(xs)], d2 = (x)[2 * (xs)], d3 = (x)[3 * (xs)], d4 = (x)[4 * (xs)],         \
                     d5 = (x)[5 * (xs)];                                                                               \
        const __m256 f4 = _mm256_set1_ps(4.0f), f5 = _mm256_set1_ps(5.0f), f2 = _mm256_set1_ps(2.0f);                 \
        const __m256 q_a = _mm256_add_ps(d1, d2), q_b = _mm256_sub_ps(d1, d2), q_c = _mm256_sub_ps(d3, d1);            \
        const __m256 q_e = _mm256_sub_ps(d4, d2);                                                                      \
        (r)[0] = _mm256_fmadd_ps(f4, d0, _mm256_fnmadd_ps(f5, d2, d4));                                                \
        (r)[(rs)] = _mm256_fnmadd_ps(f4, q_a, _mm256_add_ps(d3, d4));                                                  \
        (r)[2 * (rs)] = _mm256_fmadd_ps(f4, q_b, _mm256_sub_ps(d4, d3));                                               \
        (r)[3 * (rs)] = _mm256_fmadd_ps(f2, q_c, q_e);                                                                 \
        (r)[4 * (rs)] = _mm256_fnmadd_ps(f2, q_c, q_e);                                                                \
        (r)[5 * (rs)] = _mm256_fmadd_ps(f4, d1, _mm256_fnmadd_ps(f5, d3, d5));                                         \
    } while (0)

/* A^T m for one column of six vectors, into y[k * ys], k < 4. */
#define WINO4_AT(y, ys, m, ms)                                                                                         \
    do {                                                                                                               \
        const __m256 m0 = (m)[0], m1 = (m)[(ms)], m2 = (m)[2 * (ms)], m3 = (m)[3 * (ms)], m4 = (m)[4 * (ms)],         \
                     m5 = (m)[5 * (ms)];                                                                               \
        const __m256 q_a = _mm256_add_ps(m1, m2), q_b = _mm256_sub_ps(m1, m2), q_c = _mm256_add_ps(m3, m4);            \
        const __m256 q_e = _mm256_sub_ps(m3, m4);                                                                      \
        (y)[0] = _mm256_add_ps(_mm256_add_ps(m0, q_a), q_c);                                                           \
        (y)[(ys)] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), q_e, q_b);                                                   \
        (y)[2 * (ys)] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), q_c, q_a);                                               \
        (y)[3 * (ys)] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0f), q_e, q_b), m5);                            \
    } while (0)

/* V[(i*6 + j) * vstride + t * C + c] = (B^T d B)[i][j] for the 6x6 input tiles at fr + toff[t], t < nt. */
NNK_AVX2 static void wino4_input(float *V, size_t vstride, const float *fr, const int32_t *toff, int nt, int C,
                                 size_t row) {
    for (int t = 0; t < nt; t++)
        for (int c0 = 0; c0 < C; c0 += 8) {
            const float *b = fr + toff[t] + c0;
            __m256 x[36], r[36];
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++) x[i * 6 + j] = _mm256_loadu_ps(b + i * row + (size_t)j * C);
            for (int j = 0; j < 6; j++) WINO4_BT(r + j, 6, x + j, 6);  /* B^T d, column j */
            for (int i = 0; i < 6; i++) WINO4_BT(x + i * 6, 1, r + i * 6, 1); /* (.) B, row i */
            float *v = V + (size_t)t * C + c0;
            for (int k = 0; k < 36; k++) _mm256_storeu_ps(v + (size_t)k * vstride, x[k]);
        }
}

/* y (m*m) = A^T M A for one 8-channel slice of the GEMM results mr (positions 96 floats apart). */
NNK_AVX2 static inline __attribute__((always_inline)) void wino_output2(__m256 *y, const float *mr) {
    __m256 M[16], s0[4], s1[4];
    for (int xi = 0; xi < 16; xi++) M[xi] = _mm256_loadu_ps(mr + xi * 96);
    for (int j = 0; j < 4; j++) { /* A^T M */
        s0[j] = _mm256_add_ps(_mm256_add_ps(M[j], M[4 + j]), M[8 + j]);
        s1[j] = _mm256_sub_ps(_mm256_sub_ps(M[4 + j], M[8 + j]), M[12 + j]);
    }
    y[0] = _mm256_add_ps(_mm256_add_ps(s0[0], s0[1]), s0[2]); /* (.) A */
    y[1] = _mm256_sub_ps(_mm256_sub_ps(s0[1], s0[2]), s0[3]);
    y[2] = _mm256_add_ps(_mm256_add_ps(s1[0], s1[1]), s1[2]);
    y[3] = _mm256_sub_ps(_mm256_sub_ps(s1[1], s1[2]), s1[3]);
}
NNK_AVX2 static inline __attribute__((always_inline)) void wino_output4(__m256 *y, const float *mr) {
    __m256 M[36], S[24];
    for (int xi = 0; xi < 36; xi++) M[xi] = _mm256_loadu_ps(mr + xi * 96);
    for (int j = 0; j < 6; j++) WINO4_AT(S + j, 6, M + j, 6);          /* A^T M, column j */
    for (int i = 0; i < 4; i++) WINO4_AT(y + i * 4, 1, S + i * 6, 1); /* (.) A, row i */
}

/* The forward of F(m x m, 3x3), m = 2 or 4 (a constant in each caller): input transform of a chunk of tiles, GEMMs
 * in 6-tile x 16-channel blocks, output transform fused with bias, activation and batch statistics. */
NNK_AVX2 static inline __attribute__((always_inline)) void
wino_forward_m(float *out, double *sum, double *sq, float *work, const float *in, const float *u, const float *bias,
               int n, const nn_conv_dims *d, nn_act act, float slope, const int mt) {
    const int np = mt == 2 ? 16 : 36, chunk = mt == 2 ? WINO_TILES : WINO4_TILES;
    const int C = d->C, OC = d->OC, TY = wt_ty(d, mt), TX = wt_tx(d, mt), fw = wt_fw(d, mt), nb = OC / 16;
    const __m256 vslope = _mm256_set1_ps(slope);
    float *frame = work;
    int32_t *toff = (int32_t *)(work + r16(wino_frame_sz(d, n, mt)));
    float *V = (float *)toff + r16((size_t)n * TY * TX);
    float *m = V + r16(np * wino_plane(chunk, C));
    float *st = m + np * 6 * 16; /* (2, OC) float partial sums */
    const float *fr = wino_tiles(frame, toff, in, n, d, mt);
    const int nt_all = n * TY * TX;
    const size_t row = (size_t)fw * C, ustride = (size_t)nb * C * 16;
    if (sum) memset(st, 0, sizeof(float) * 2 * OC);
    for (int t0 = 0; t0 < nt_all; t0 += chunk) {
        const int nt = nt_all - t0 < chunk ? nt_all - t0 : chunk;
        const size_t vstride = wino_plane(nt, C);
        if (mt == 2)
            wino_input(V, vstride, fr, toff + t0, nt, C, row);
        else
            wino4_input(V, vstride, fr, toff + t0, nt, C, row);
        for (int g0 = 0; g0 < nt; g0 += TR) {
            const int nv = nt - g0 < TR ? nt - g0 : TR;
            for (int ob = 0; ob < nb; ob++) {
                wino_gemm(m, V + (size_t)g0 * C, vstride, nv, u + (size_t)ob * C * 16, ustride, C, np);
                const __m256 zero = _mm256_setzero_ps();
                for (int r = 0; r < nv; r++) {
                    const int t = t0 + g0 + r, img = t / (TY * TX), ty = t / TX % TY, tx = t % TX;
                    for (int h = 0; h < 2; h++) {
                        const int oc = ob * 16 + h * 8;
                        __m256 y[16];
                        if (mt == 2)
                            wino_output2(y, m + r * 16 + h * 8);
                        else
                            wino_output4(y, m + r * 16 + h * 8);
                        const __m256 bv = bias ? _mm256_loadu_ps(bias + oc) : zero;
                        __m256 ssum = zero, ssq = zero;
                        for (int a = 0; a < mt && mt * ty + a < d->OH; a++)
                            for (int b = 0; b < mt && mt * tx + b < d->OW; b++) {
                                float *o = out + (((size_t)img * d->OH + mt * ty + a) * d->OW + mt * tx + b) * OC + oc;
                                __m256 v = nnk_act8(_mm256_add_ps(y[a * mt + b], bv), act, vslope);
                                _mm256_storeu_ps(o, v);
                                ssum = _mm256_add_ps(ssum, v);
                                ssq = _mm256_fmadd_ps(v, v, ssq);
                            }
                        if (sum) {
                            _mm256_storeu_ps(st + oc, _mm256_add_ps(_mm256_loadu_ps(st + oc), ssum));
                            _mm256_storeu_ps(st + OC + oc, _mm256_add_ps(_mm256_loadu_ps(st + OC + oc), ssq));
                        }
                    }
                }
            }
        }
        if (sum) { /* float partials over at most chunk * mt * mt pixels, then double */
            for (int c = 0; c < OC; c++) {
                sum[c] += st[c];
                sq[c] += st[OC + c];
            }
            memset(st, 0, sizeof(float) * 2 * OC);
        }
    }
}

NNK_AVX2 void nnk_wino_forward(float *out, double *sum, double *sq, float *work, const float *in, const float *u,
                               const float *bias, int n, const nn_conv_dims *d, nn_act act, float slope) {
    wino_forward_m(out, sum, sq, work, in, u, bias, n, d, act, slope, 2);
}

NNK_AVX2 void nnk_wino4_forward(float *out, double *sum, double *sq, float *work, const float *in, const float *u,
                                const float *bias, int n, const nn_conv_dims *d, nn_act act, float slope) {
    wino_forward_m(out, sum, sq, work, in, u, bias, n, d, act, slope, 4);
}

/* ---- Winograd F(3x3, 2x2) weight gradient ---- */

/* F(3x3, 2x2)'s input transform (its B^T's last row is d3 - d1). */
NNK_AVX2 static void wgrad_input(float *V, size_t vstride, const float *fr, const int32_t *toff, int nt, int C,
                                 size_t row) {
    wino_bt(V, vstride, fr, toff, nt, C, row, 1);
}

/* U[(i*4 + j) * ustride + t * OC + oc] = (G g G^T)[i][j], g the 2x2 output-gradient block of tile t (zero where
 * the block leaves the output). */
NNK_AVX2 static void wgrad_dout(float *U, size_t ustride, const float *dout, int t0, int nt, const nn_conv_dims *d) {
    const int OC = d->OC, TY = wino_ty(d), TX = wino_tx(d);
    const __m256 half = _mm256_set1_ps(0.5f), zero = _mm256_setzero_ps();
    for (int k = 0; k < nt; k++) {
        const int t = t0 + k, img = t / (TY * TX), ty = t / TX % TY, tx = t % TX;
        const int oh = 2 * ty, ow = 2 * tx, h1 = oh + 1 < d->OH, w1 = ow + 1 < d->OW;
        const float *g00 = dout + (((size_t)img * d->OH + oh) * d->OW + ow) * OC;
        const float *g10 = g00 + (size_t)d->OW * OC;
        for (int oc = 0; oc < OC; oc += 8) {
            __m256 g[2][2];
            g[0][0] = _mm256_loadu_ps(g00 + oc);
            g[0][1] = w1 ? _mm256_loadu_ps(g00 + OC + oc) : zero;
            g[1][0] = h1 ? _mm256_loadu_ps(g10 + oc) : zero;
            g[1][1] = h1 && w1 ? _mm256_loadu_ps(g10 + OC + oc) : zero;
            __m256 a[4][2]; /* G g */
            for (int j = 0; j < 2; j++) {
                a[0][j] = g[0][j];
                a[1][j] = _mm256_mul_ps(half, _mm256_add_ps(g[0][j], g[1][j]));
                a[2][j] = _mm256_mul_ps(half, _mm256_sub_ps(g[0][j], g[1][j]));
                a[3][j] = g[1][j];
            }
            float *u = U + (size_t)k * OC + oc;
            for (int i = 0; i < 4; i++) { /* (G g) G^T */
                _mm256_storeu_ps(u + (size_t)(i * 4 + 0) * ustride, a[i][0]);
                _mm256_storeu_ps(u + (size_t)(i * 4 + 1) * ustride, _mm256_mul_ps(half, _mm256_add_ps(a[i][0], a[i][1])));
                _mm256_storeu_ps(u + (size_t)(i * 4 + 2) * ustride, _mm256_mul_ps(half, _mm256_sub_ps(a[i][0], a[i][1])));
                _mm256_storeu_ps(u + (size_t)(i * 4 + 3) * ustride, a[i][1]);
            }
        }
    }
}

/* m[r][0..15] += sum_t v[t * C + r] * u[t * OC + (0..15)], r < R (ld of m: OC). */
#define WG_ROW(r)                                                                                                     \
    if (R > r) {                                                                                                      \
        b = _mm256_broadcast_ss(vt + r);                                                                              \
        FMA_ROW(r, b, u0, u1);                                                                                        \
    }
#define WG_IN(r)                                                                                                      \
    if (R > r && acc) {                                                                                               \
        a##r##0 = _mm256_loadu_ps(m + (size_t)r * OC);                                                               \
        a##r##1 = _mm256_loadu_ps(m + (size_t)r * OC + 8);                                                            \
    }
#define WG_OUT(r)                                                                                                     \
    if (R > r) {                                                                                                      \
        _mm256_storeu_ps(m + (size_t)r * OC, a##r##0);                                                                \
        _mm256_storeu_ps(m + (size_t)r * OC + 8, a##r##1);                                                            \
    }
#define WG_TILE(RV)                                                                                                   \
    NNK_AVX2 static void wg_tile_##RV(float *m, int OC, const float *v, int C, const float *u, int nt, int acc) {    \
        enum { R = RV };                                                                                              \
        ZERO12;                                                                                                       \
        WG_IN(0) WG_IN(1) WG_IN(2) WG_IN(3) WG_IN(4) WG_IN(5)                                                         \
        for (int t = 0; t < nt; t++) {                                                                                \
            const float *vt = v + (size_t)t * C, *ut = u + (size_t)t * OC;                                            \
            __m256 u0 = _mm256_loadu_ps(ut), u1 = _mm256_loadu_ps(ut + 8), b;                                         \
            WG_ROW(0) WG_ROW(1) WG_ROW(2) WG_ROW(3) WG_ROW(4) WG_ROW(5)                                               \
        }                                                                                                             \
        WG_OUT(0) WG_OUT(1) WG_OUT(2) WG_OUT(3) WG_OUT(4) WG_OUT(5)                                                   \
    }
WG_TILE(1)
WG_TILE(2)
WG_TILE(3)
WG_TILE(4)
WG_TILE(5)
WG_TILE(6)

/* m (npos, C, OC) (+)= for each transform position, V[xi] (nt, C)^T . U[xi] (nt, OC); acc = 0: m starts from zero,
 * as a zeroed m would. */
NNK_AVX2 static void wg_gemms(float *m, const float *V, size_t vstride, const float *U, size_t ustride, int nt, int C,
                              int OC, int npos, int acc) {
    for (int xi = 0; xi < npos; xi++)
        for (int oc0 = 0; oc0 < OC; oc0 += 16)
            for (int c0 = 0; c0 < C; c0 += TR) {
                const int R = C - c0 < TR ? C - c0 : TR;
                float *mm = m + ((size_t)xi * C + c0) * OC + oc0;
                const float *v = V + xi * vstride + c0, *u = U + xi * ustride + oc0;
                switch (R) {
                case 1: wg_tile_1(mm, OC, v, C, u, nt, acc); break;
                case 2: wg_tile_2(mm, OC, v, C, u, nt, acc); break;
                case 3: wg_tile_3(mm, OC, v, C, u, nt, acc); break;
                case 4: wg_tile_4(mm, OC, v, C, u, nt, acc); break;
                case 5: wg_tile_5(mm, OC, v, C, u, nt, acc); break;
                default: wg_tile_6(mm, OC, v, C, u, nt, acc); break;
                }
            }
}


/* U[k * ustride + t * OC + oc] = (A g A^T)[k / 6][k % 6], g the 4x4 output-gradient block of tile t (zero where the
 * block leaves the output). A (6x4) = [1 0 0 0; 1 1 1 1; 1 -1 1 -1; 1 2 4 8; 1 -2 4 -8; 0 0 0 1]. */
#define WINO4_A(o, os, g0, g1, g2, g3)                                                                                 \
    do {                                                                                                               \
        const __m256 q_p = _mm256_add_ps(g0, g2), q_q = _mm256_add_ps(g1, g3);                                         \
        const __m256 q_r = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), g2, g0);                                              \
        const __m256 q_s = _mm256_mul_ps(_mm256_set1_ps(2.0f), _mm256_fmadd_ps(_mm256_set1_ps(4.0f), g3, g1));         \
        (o)[0] = (g0);                                                                                                 \
        (o)[(os)] = _mm256_add_ps(q_p, q_q);                                                                           \
        (o)[2 * (os)] = _mm256_sub_ps(q_p, q_q);                                                                       \
        (o)[3 * (os)] = _mm256_add_ps(q_r, q_s);                                                                       \
        (o)[4 * (os)] = _mm256_sub_ps(q_r, q_s);                                                                       \
        (o)[5 * (os)] = (g3);                                                                                          \
    } while (0)

NNK_AVX2 static void wgrad4_dout(float *U, size_t ustride, const float *dout, int t0, int nt, const nn_conv_dims *d) {
    const int OC = d->OC, TY = wt_ty(d, 4), TX = wt_tx(d, 4);
    const __m256 zero = _mm256_setzero_ps();
    for (int k = 0; k < nt; k++) {
        const int t = t0 + k, img = t / (TY * TX), ty = t / TX % TY, tx = t % TX;
        const int oh = 4 * ty, ow = 4 * tx;
        const int nh = d->OH - oh < 4 ? d->OH - oh : 4, nw = d->OW - ow < 4 ? d->OW - ow : 4;
        const float *g0 = dout + (((size_t)img * d->OH + oh) * d->OW + ow) * OC;
        for (int oc = 0; oc < OC; oc += 8) {
            __m256 g[4][4], a[6][4], r[36];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    g[i][j] = i < nh && j < nw ? _mm256_loadu_ps(g0 + ((size_t)i * d->OW + j) * OC + oc) : zero;
            for (int j = 0; j < 4; j++) WINO4_A(&a[0][j], 4, g[0][j], g[1][j], g[2][j], g[3][j]); /* A g */
            for (int i = 0; i < 6; i++) WINO4_A(r + i * 6, 1, a[i][0], a[i][1], a[i][2], a[i][3]); /* (.) A^T */
            float *u = U + (size_t)k * OC + oc;
            for (int x = 0; x < 36; x++) _mm256_storeu_ps(u + (size_t)x * ustride, r[x]);
        }
    }
}

/* The weight-gradient sums of F(m x m, 3x3), m = 2 or 4 (a constant in each caller), over chunks of tiles: F(3x3, 2x2)
 * in chunks of WINO_TILES, F(4x4, 3x3)'s transpose in equal chunks of at most WINO4_WG_TILES (each pass over the
 * larger m (36, C, OC) gets a long reduction). */
NNK_AVX2 static inline __attribute__((always_inline)) void wgrad_accumulate_m(float *m, int accumulate, float *work,
                                                                              const float *in, const float *dout, int n,
                                                                              const nn_conv_dims *d, const int mt) {
    const int np = mt == 2 ? 16 : 36, chunk = mt == 2 ? WINO_TILES : WINO4_WG_TILES;
    const int C = d->C, OC = d->OC, TY = wt_ty(d, mt), TX = wt_tx(d, mt), fw = wt_fw(d, mt);
    float *frame = work;
    int32_t *toff = (int32_t *)(work + r16(wino_frame_sz(d, n, mt)));
    float *V = (float *)toff + r16((size_t)n * TY * TX);
    float *U = V + r16(np * wino_plane(chunk, C));
    const float *fr = wino_tiles(frame, toff, in, n, d, mt);
    const int nt_all = n * TY * TX, nchunk = (nt_all + chunk - 1) / chunk;
    const int per = mt == 2 ? chunk : (nt_all + nchunk - 1) / nchunk;
    for (int t0 = 0; t0 < nt_all; t0 += per) {
        const int nt = nt_all - t0 < per ? nt_all - t0 : per;
        const size_t vstride = wino_plane(nt, C), ustride = wino_plane(nt, OC);
        if (mt == 2) {
            wgrad_input(V, vstride, fr, toff + t0, nt, C, (size_t)fw * C);
            wgrad_dout(U, ustride, dout, t0, nt, d);
        } else {
            wino4_input(V, vstride, fr, toff + t0, nt, C, (size_t)fw * C);
            wgrad4_dout(U, ustride, dout, t0, nt, d);
        }
        wg_gemms(m, V, vstride, U, ustride, nt, C, OC, np, accumulate || t0 > 0);
    }
}

NNK_AVX2 void nnk_wino_wgrad_accumulate(float *m, int accumulate, float *work, const float *in, const float *dout,
                                        int n, const nn_conv_dims *d) {
    wgrad_accumulate_m(m, accumulate, work, in, dout, n, d, 2);
}

NNK_AVX2 void nnk_wino4_wgrad_accumulate(float *m, int accumulate, float *work, const float *in, const float *dout,
                                         int n, const nn_conv_dims *d) {
    wgrad_accumulate_m(m, accumulate, work, in, dout, n, d, 4);
}

/* G^T applied to one column of six vectors (m[k * ms]), into o[k * os], k < 3. */
#define WINO4_GT(o, os, m, ms)                                                                                         \
    do {                                                                                                               \
        const __m256 q_a = _mm256_add_ps((m)[(ms)], (m)[2 * (ms)]), q_b = _mm256_sub_ps((m)[2 * (ms)], (m)[(ms)]);     \
        const __m256 q_c = _mm256_add_ps((m)[3 * (ms)], (m)[4 * (ms)]);                                                \
        const __m256 q_e = _mm256_sub_ps((m)[3 * (ms)], (m)[4 * (ms)]);                                                \
        const __m256 sixth = _mm256_set1_ps(1.0f / 6.0f);                                                              \
        (o)[0] = _mm256_fmadd_ps(_mm256_set1_ps(0.25f), (m)[0],                                                        \
                                 _mm256_fnmadd_ps(sixth, q_a, _mm256_mul_ps(_mm256_set1_ps(1.0f / 24.0f), q_c)));     \
        (o)[(os)] = _mm256_fmadd_ps(sixth, q_b, _mm256_mul_ps(_mm256_set1_ps(1.0f / 12.0f), q_e));                     \
        (o)[2 * (os)] = _mm256_fmadd_ps(sixth, _mm256_sub_ps(q_c, q_a), (m)[5 * (ms)]);                                \
    } while (0)

NNK_AVX2 static void wgrad4_finish_avx2(float *dwt, const float *m, size_t plane) {
    for (size_t e = 0; e < plane; e += 8) {
        __m256 M[36], S[18], r[3];
        for (int xi = 0; xi < 36; xi++) M[xi] = _mm256_loadu_ps(m + xi * plane + e);
        for (int j = 0; j < 6; j++) WINO4_GT(S + j, 6, M + j, 6); /* G^T M, column j */
        for (int i = 0; i < 3; i++) {                                /* (.) G, row i */
            WINO4_GT(r, 1, S + i * 6, 1);
            for (int k = 0; k < 3; k++) _mm256_storeu_ps(dwt + (size_t)(i * 3 + k) * plane + e, r[k]);
        }
    }
}

void nnk_wino4_wgrad_finish(float *dwt, const float *m, const nn_conv_dims *d) {
    wgrad4_finish_avx2(dwt, m, (size_t)d->C * d->OC);
}

void nnk_gconv_forward(float *out, double *sum, double *sq, const float *frame, const int32_t *off, const float *wf,
                       const float *bias, int n, const nn_conv_dims *d, nn_act act, float slope, int oc0, int oc1) {
    gconv_forward_avx2(out, sum, sq, frame, off, wf, bias, n, d, act, slope, oc0, oc1);
}

void nnk_gconv_backward_data(float *frame, const float *dout, const int32_t *off, const float *wd, const float *zero,
                             int n, const nn_conv_dims *d, int c0, int c1) {
    gconv_backward_data_avx2(frame, dout, off, wd, zero, n, d, c0, c1);
}

void nnk_gconv_backward_weight(float *dwt, int accumulate, const float *frame, const int32_t *off, const float *dout,
                               int n, const nn_conv_dims *d, int oc0, int oc1) {
    gconv_backward_weight_avx2(dwt, accumulate, frame, off, dout, n, d, oc0, oc1);
}

#else /* no x86: never selected (nnk_gconv_ok() is 0) */

void nnk_gconv_forward(float *out, double *sum, double *sq, const float *frame, const int32_t *off, const float *wf,
                       const float *bias, int n, const nn_conv_dims *d, nn_act act, float slope, int oc0, int oc1) {}
void nnk_gconv_backward_data(float *frame, const float *dout, const int32_t *off, const float *wd, const float *zero,
                             int n, const nn_conv_dims *d, int c0, int c1) {}
void nnk_gconv_backward_weight(float *dwt, int accumulate, const float *frame, const int32_t *off, const float *dout,
                               int n, const nn_conv_dims *d, int oc0, int oc1) {}
void nnk_wino_forward(float *out, double *sum, double *sq, float *work, const float *in, const float *u,
                      const float *bias, int n, const nn_conv_dims *d, nn_act act, float slope) {}
void nnk_wino_wgrad_accumulate(float *m, int accumulate, float *work, const float *in, const float *dout, int n,
                               const nn_conv_dims *d) {}
int nnk_wino4_ok(const nn_conv_dims *d) { return 0; }
void nnk_wino4_pack(float *u, const float *w, const nn_conv_dims *d, int transposed, int oc0, int oc1) {}
size_t nnk_wino4_work_floats(const nn_conv_dims *d, int n) { return 0; }
void nnk_wino4_wgrad_accumulate(float *m, int accumulate, float *work, const float *in, const float *dout, int n,
                                const nn_conv_dims *d) {}
void nnk_wino4_wgrad_finish(float *dwt, const float *m, const nn_conv_dims *d) {}
void nnk_wino4_forward(float *out, double *sum, double *sq, float *work, const float *in, const float *u,
                       const float *bias, int n, const nn_conv_dims *d, nn_act act, float slope) {}

#endif
