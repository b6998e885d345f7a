/* nn/conv_small: AVX2+FMA convolution kernels for channel counts that are not multiples of 16
 * (see nn/internal/conv_small.h).
 *
 * Register tiles of 12 accumulators: small fixed arrays of vectors indexed by constants, which GCC keeps in ymm
 * registers after full unrolling (the weight-gradient tile names its accumulators: there it did not). Blocks of 8
 * output channels waste the lanes past OC (6 of 8 used for OC = 6), against 6 of 16 with the 16-wide kernels of
 * nn/gemm_conv.c; the planar forward of one-channel layers wastes none.
 */
#include "nn/internal/conv_small.h"

#include <string.h>

#include "nn/internal/gemm_conv.h"
#include "nn/internal/simd.h"

#define FR 12       /* output pixels per forward tile */
#define WR 6        /* k rows per weight-gradient tile (times two accumulator sets) */
#define QBLOCK 64   /* pixels per block of the weight-gradient reduction (its rows stay in L1) */
#define SEG_ACC 12  /* accumulators of a backward-data tile: rows x vectors */

static inline int frame_w(const nn_conv_dims *d) { return d->W + 2 * d->pad; }
static inline int seg_len(const nn_conv_dims *d) { return d->KW * d->C; }
static inline int seg_pad(const nn_conv_dims *d) { return (seg_len(d) + 7) & ~7; }

size_t nnk_sconv_forward_floats(const nn_conv_dims *d) {
    return (size_t)(d->OC + 7) / 8 * 8 * d->KH * d->KW * d->C;
}

size_t nnk_sconv_data_floats(const nn_conv_dims *d) { return (size_t)d->KH * d->OC * seg_pad(d); }

void nnk_sconv_pack_forward(float *wf, const float *w, const nn_conv_dims *d) {
    const size_t K = (size_t)d->KH * d->KW * d->C;
    const int nb = (d->OC + 7) / 8;
    for (int b = 0; b < nb; b++)
        for (size_t k = 0; k < K; k++)
            for (int j = 0; j < 8; j++) {
                int oc = b * 8 + j;
                wf[((size_t)b * K + k) * 8 + j] = oc < d->OC ? w[(size_t)oc * K + k] : 0.0f;
            }
}

void nnk_sconv_pack_data(float *ws, const float *w, const nn_conv_dims *d) {
    const int L = seg_len(d), Lp = seg_pad(d), OC = d->OC;
    for (int kh = 0; kh < d->KH; kh++)
        for (int oc = 0; oc < OC; oc++) {
            float *dst = ws + ((size_t)kh * OC + oc) * Lp;
            memcpy(dst, w + ((size_t)oc * d->KH + kh) * L, sizeof(float) * L);
            memset(dst + L, 0, sizeof(float) * (Lp - L));
        }
}

#if NNK_X86

/* ---- forward ---- */

/* tile (FR, 8) = sum over kh < KH, t < L of p[r][kh * rowstep + t] * wf[(kh * L + t) * 8 + (0..7)]. */
NNK_AVX2 static void fwd_tile8(float *tile, const float *const *p, const float *wf, int KH, int L, size_t rowstep) {
    __m256 a[FR];
    for (int r = 0; r < FR; r++) a[r] = _mm256_setzero_ps();
    for (int kh = 0; kh < KH; kh++) {
        const size_t o = (size_t)kh * rowstep;
        const float *w = wf + (size_t)kh * L * 8;
        for (int t = 0; t < L; t++, w += 8) {
            const __m256 wv = _mm256_loadu_ps(w);
            for (int r = 0; r < FR; r++) a[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(p[r] + o + t), wv, a[r]);
        }
    }
    for (int r = 0; r < FR; r++) _mm256_store_ps(tile + 8 * r, a[r]);
}

NNK_AVX2 static void flush8(double *sum, double *sq, int w, __m256 *s, __m256 *q) {
    float t[16];
    _mm256_storeu_ps(t, *s), _mm256_storeu_ps(t + 8, *q);
    for (int j = 0; j < w; j++) {
        sum[j] += t[j];
        sq[j] += t[8 + j];
    }
    *s = *q = _mm256_setzero_ps();
}

NNK_AVX2 static void sconv_forward_avx2(float *out, double *sum, double *sq, const float *frame, const int32_t *off,
                                        const float *wf, const float *bias, int n, const nn_conv_dims *d, nn_act act,
                                        float slope) {
    const int OC = d->OC, L = seg_len(d), P = n * d->OH * d->OW, nb = (OC + 7) / 8;
    const size_t K = (size_t)d->KH * L, rowstep = (size_t)frame_w(d) * d->C, total = (size_t)P * OC;
    const __m256 vslope = _mm256_set1_ps(slope);
    float tile[FR * 8] __attribute__((aligned(32)));
    /* A pixel's 8 lanes are stored whole: past OC they run into the next pixel's first channels, which are written
     * later (blocks in descending order, pixels in ascending order); only the chunk's last pixels store exactly. */
    for (int b = nb - 1; b >= 0; b--) {
        const int oc0 = 8 * b, w = OC - oc0 < 8 ? OC - oc0 : 8;
        float bb[8] = {0};
        if (bias) memcpy(bb, bias + oc0, sizeof(float) * w);
        const __m256 bv = _mm256_loadu_ps(bb);
        __m256 s = _mm256_setzero_ps(), q2 = s;
        int since_flush = 0;
        for (int q = 0; q < P; q += FR) {
            const int nv = P - q < FR ? P - q : FR;
            const float *p[FR];
            for (int r = 0; r < FR; r++) p[r] = frame + off[q + (r < nv ? r : nv - 1)];
            fwd_tile8(tile, p, wf + (size_t)b * K * 8, d->KH, L, rowstep);
            for (int r = 0; r < nv; r++) {
                const size_t at = (size_t)(q + r) * OC + oc0;
                __m256 v = nnk_act8(_mm256_add_ps(_mm256_load_ps(tile + 8 * r), bv), act, vslope);
                if (w == 8 || at + 8 <= total) {
                    _mm256_storeu_ps(out + at, v);
                } else {
                    float t[8];
                    _mm256_storeu_ps(t, v);
                    memcpy(out + at, t, sizeof(float) * w);
                }
                if (sum) {
                    s = _mm256_add_ps(s, v);
                    q2 = _mm256_fmadd_ps(v, v, q2);
                }
            }
            if (sum && ++since_flush == 16) { /* float partials over at most 192 pixels */
                flush8(sum + oc0, sq + oc0, w, &s, &q2);
                since_flush = 0;
            }
        }
        if (sum) flush8(sum + oc0, sq + oc0, w, &s, &q2);
    }
}

/* ---- backward weight ---- */

/* Rows [0, R) of a tile: dwt[r][0..w) (+)= sum_q frame[off[q] + o + r] * dout[q][0..w) over q < P (ld of dwt and
 * dout: OC). Pixels q >= safe read their dout row masked (a full 8-float read would leave the chunk). Named
 * accumulators, not arrays: GCC kept arrays in memory here and stored them on every step. */
#define WT8_ZERO(r) __m256 e##r = _mm256_setzero_ps(), f##r = e##r;
#define WT8_PAIR(r)                                                                                                   \
    if (R > r) {                                                                                                      \
        e##r = _mm256_fmadd_ps(_mm256_broadcast_ss(fa + r), da, e##r);                                                \
        f##r = _mm256_fmadd_ps(_mm256_broadcast_ss(fb + r), db, f##r);                                                \
    }
#define WT8_ONE(r)                                                                                                    \
    if (R > r) e##r = _mm256_fmadd_ps(_mm256_broadcast_ss(fa + r), da, e##r);
#define WT8_OUT(r)                                                                                                    \
    if (R > r) {                                                                                                      \
        float t[8], *dr = dwt + (size_t)r * OC;                                                                       \
        _mm256_storeu_ps(t, _mm256_add_ps(e##r, f##r));                                                               \
        for (int j = 0; j < w; j++) dr[j] = accumulate ? dr[j] + t[j] : t[j];                                         \
    }
#define WT8_TILE(RV)                                                                                                  \
    NNK_AVX2 static void wt8_tile_##RV(float *dwt, int OC, int w, const float *frame, const int32_t *off, size_t o, \
                                       const float *dout, int P, int safe, __m256i mask, int accumulate) {           \
        enum { R = RV };                                                                                              \
        WT8_ZERO(0) WT8_ZERO(1) WT8_ZERO(2) WT8_ZERO(3) WT8_ZERO(4) WT8_ZERO(5)                                       \
        int q = 0;                                                                                                    \
        for (; q + 1 < safe; q += 2) { /* two pixels, two accumulator sets: twice the independent FMA chains */      \
            const float *fa = frame + off[q] + o, *fb = frame + off[q + 1] + o;                                       \
            const __m256 da = _mm256_loadu_ps(dout + (size_t)q * OC);                                                 \
            const __m256 db = _mm256_loadu_ps(dout + (size_t)(q + 1) * OC);                                           \
            WT8_PAIR(0) WT8_PAIR(1) WT8_PAIR(2) WT8_PAIR(3) WT8_PAIR(4) WT8_PAIR(5)                                   \
        }                                                                                                             \
        for (; q < P; q++) {                                                                                          \
            const float *fa = frame + off[q] + o, *dq = dout + (size_t)q * OC;                                        \
            const __m256 da = q < safe ? _mm256_loadu_ps(dq) : _mm256_maskload_ps(dq, mask);                          \
            WT8_ONE(0) WT8_ONE(1) WT8_ONE(2) WT8_ONE(3) WT8_ONE(4) WT8_ONE(5)                                         \
        }                                                                                                             \
        WT8_OUT(0) WT8_OUT(1) WT8_OUT(2) WT8_OUT(3) WT8_OUT(4) WT8_OUT(5)                                             \
    }
WT8_TILE(1)
WT8_TILE(2)
WT8_TILE(3)
WT8_TILE(4)
WT8_TILE(5)
WT8_TILE(6)

NNK_AVX2 static void sconv_backward_weight_avx2(float *dwt, int accumulate, const float *frame, const int32_t *off,
                                                const float *dout, int n, const nn_conv_dims *d) {
    const int OC = d->OC, L = seg_len(d), P = n * d->OH * d->OW, nb = (OC + 7) / 8;
    const size_t rowstep = (size_t)frame_w(d) * d->C, total = (size_t)P * OC;
    for (int q0 = 0; q0 < P; q0 += QBLOCK) {
        const int nq = P - q0 < QBLOCK ? P - q0 : QBLOCK, acc = accumulate || q0 > 0;
        for (int b = 0; b < nb; b++) {
            const int oc0 = 8 * b, w = OC - oc0 < 8 ? OC - oc0 : 8;
            /* pixels of this block whose 8-float dout read stays inside the chunk */
            long safe_all = w == 8 ? P : total >= (size_t)oc0 + 8 ? (long)((total - oc0 - 8) / OC) + 1 : 0;
            long safe = safe_all - q0 < 0 ? 0 : safe_all - q0 > nq ? nq : safe_all - q0;
            int32_t m[8];
            for (int j = 0; j < 8; j++) m[j] = j < w ? -1 : 0;
            const __m256i mask = _mm256_loadu_si256((const __m256i *)m);
            const float *dq = dout + (size_t)q0 * OC + oc0;
            for (int kh = 0; kh < d->KH; kh++)
                for (int t = 0; t < L; t += WR) {
                    const int R = L - t < WR ? L - t : WR;
                    float *dw = dwt + ((size_t)kh * L + t) * OC + oc0;
                    const size_t o = (size_t)kh * rowstep + t;
                    const int32_t *oq = off + q0;
                    switch (R) {
                    case 1: wt8_tile_1(dw, OC, w, frame, oq, o, dq, nq, (int)safe, mask, acc); break;
                    case 2: wt8_tile_2(dw, OC, w, frame, oq, o, dq, nq, (int)safe, mask, acc); break;
                    case 3: wt8_tile_3(dw, OC, w, frame, oq, o, dq, nq, (int)safe, mask, acc); break;
                    case 4: wt8_tile_4(dw, OC, w, frame, oq, o, dq, nq, (int)safe, mask, acc); break;
                    case 5: wt8_tile_5(dw, OC, w, frame, oq, o, dq, nq, (int)safe, mask, acc); break;
                    default: wt8_tile_6(dw, OC, w, frame, oq, o, dq, nq, (int)safe, mask, acc); break;
                    }
                }
        }
    }
}

/* ---- backward data ---- */

/* x[r][8v .. 8v+8) += sum_oc g[r][oc] * ws[oc * Lp + 8v .. 8v+8) for r < R, v < V. */
#define SEG_TILE(RV, VV)                                                                                              \
    NNK_AVX2 static void seg_tile_##RV##_##VV(float *const *x, const float *const *g, const float *ws, int OC,      \
                                              size_t Lp) {                                                           \
        enum { R = RV, V = VV };                                                                                      \
        __m256 a[R][V];                                                                                               \
        for (int r = 0; r < R; r++)                                                                                   \
            for (int v = 0; v < V; v++) a[r][v] = _mm256_setzero_ps();                                                \
        for (int oc = 0; oc < OC; oc++, ws += Lp) {                                                                   \
            __m256 wv[V];                                                                                             \
            for (int v = 0; v < V; v++) wv[v] = _mm256_loadu_ps(ws + 8 * v);                                          \
            for (int r = 0; r < R; r++) {                                                                             \
                const __m256 b = _mm256_broadcast_ss(g[r] + oc);                                                      \
                for (int v = 0; v < V; v++) a[r][v] = _mm256_fmadd_ps(b, wv[v], a[r][v]);                             \
            }                                                                                                         \
        }                                                                                                             \
        for (int r = 0; r < R; r++)                                                                                   \
            for (int v = 0; v < V; v++)                                                                               \
                _mm256_storeu_ps(x[r] + 8 * v, _mm256_add_ps(_mm256_loadu_ps(x[r] + 8 * v), a[r][v]));                \
    }
SEG_TILE(3, 1)
SEG_TILE(3, 2)
SEG_TILE(3, 3)
SEG_TILE(3, 4)
SEG_TILE(4, 1)
SEG_TILE(4, 2)
SEG_TILE(4, 3)
SEG_TILE(6, 1)
SEG_TILE(6, 2)
SEG_TILE(12, 1)

NNK_AVX2 static void seg_tile(int R, int V, float *const *x, const float *const *g, const float *ws, int OC,
                              size_t Lp) {
    switch (R * 16 + V) {
    case 3 * 16 + 1: seg_tile_3_1(x, g, ws, OC, Lp); break;
    case 3 * 16 + 2: seg_tile_3_2(x, g, ws, OC, Lp); break;
    case 3 * 16 + 3: seg_tile_3_3(x, g, ws, OC, Lp); break;
    case 3 * 16 + 4: seg_tile_3_4(x, g, ws, OC, Lp); break;
    case 4 * 16 + 1: seg_tile_4_1(x, g, ws, OC, Lp); break;
    case 4 * 16 + 2: seg_tile_4_2(x, g, ws, OC, Lp); break;
    case 4 * 16 + 3: seg_tile_4_3(x, g, ws, OC, Lp); break;
    case 6 * 16 + 1: seg_tile_6_1(x, g, ws, OC, Lp); break;
    case 6 * 16 + 2: seg_tile_6_2(x, g, ws, OC, Lp); break;
    default: seg_tile_12_1(x, g, ws, OC, Lp); break;
    }
}

NNK_AVX2 static void sconv_backward_data_avx2(float *frame, const float *dout, const int32_t *off, const float *ws,
                                              const float *zero, int n, const nn_conv_dims *d) {
    const int OC = d->OC, P = n * d->OH * d->OW, nvec = seg_pad(d) / 8;
    const size_t Lp = (size_t)seg_pad(d), rowstep = (size_t)frame_w(d) * d->C;
    /* the widest tile the segment allows (at most 4 vectors), rows to fill the 12 accumulators */
    const int V0 = nvec < 4 ? nvec : 4, R = SEG_ACC / V0;
    /* Row r of tile i is pixel r * M + i: pixels far apart, whose segments do not overlap. Neighbouring pixels
     * would (their fields are stride * C floats apart), and reading back a partly overlapping vector just stored
     * stalls store-to-load forwarding. */
    const int M = (P + R - 1) / R;
    for (int i = 0; i < M; i++) {
        const float *g[FR];
        int q[FR];
        for (int r = 0; r < R; r++) {
            const int p = r * M + i;
            q[r] = p < P ? p : i; /* past the end: a zero gradient added to a valid pixel */
            g[r] = p < P ? dout + (size_t)p * OC : zero;
        }
        for (int kh = 0; kh < d->KH; kh++)
            for (int v0 = 0; v0 < nvec; v0 += V0) {
                const int V = nvec - v0 < V0 ? nvec - v0 : V0;
                float *x[FR];
                for (int r = 0; r < R; r++) x[r] = frame + off[q[r]] + kh * rowstep + 8 * v0;
                seg_tile(R, V, x, g, ws + (size_t)kh * OC * Lp + 8 * v0, OC, Lp);
            }
    }
}

/* ---- forward of one input channel, stride 1: output pixels along the vector ("planar") ---- */

/* r[i][j] = r[j][i] for 8 vectors of 8. */
NNK_AVX2 static inline void transpose8(__m256 *r) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

/* Lanes i < n set. */
NNK_AVX2 static inline __m256 lanes_below(int n) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx));
}

/* Output channels of the planar forward tile: 4, 6 or 8 (OC rounded up; the extra weights are zero). */
static int planar_noc(int OC) { return OC <= 4 ? 4 : OC <= 6 ? 6 : 8; }

int nnk_sconv_planar_ok(const nn_conv_dims *d) { return d->C == 1 && d->stride == 1 && d->OC <= 8; }

size_t nnk_sconv_planar_floats(const nn_conv_dims *d) { return (size_t)d->KH * d->KW * planar_noc(d->OC); }

void nnk_sconv_pack_planar(float *wb, const float *w, const nn_conv_dims *d) {
    const int taps = d->KH * d->KW, noc = planar_noc(d->OC);
    for (int t = 0; t < taps; t++)
        for (int oc = 0; oc < noc; oc++) wb[(size_t)t * noc + oc] = oc < d->OC ? w[(size_t)oc * taps + t] : 0.0f;
}

/* One tile: NOC channels x NPV vectors of 8 neighbouring output pixels starting at frame row pointer src. */
#define PLANAR_TILE(NOC, NPV)                                                                                         \
    NNK_AVX2 static void planar_tile_##NOC(__m256 *acc, const float *src, const float *wb, int KH, int KW,           \
                                           size_t Wp) {                                                              \
        __m256 a[NOC][NPV];                                                                                           \
        for (int c = 0; c < NOC; c++)                                                                                 \
            for (int v = 0; v < NPV; v++) a[c][v] = _mm256_setzero_ps();                                              \
        for (int kh = 0; kh < KH; kh++)                                                                               \
            for (int kw = 0; kw < KW; kw++, wb += NOC) {                                                              \
                const float *x = src + kh * Wp + kw;                                                                  \
                __m256 xv[NPV];                                                                                       \
                for (int v = 0; v < NPV; v++) xv[v] = _mm256_loadu_ps(x + 8 * v);                                     \
                for (int c = 0; c < NOC; c++) {                                                                       \
                    const __m256 wv = _mm256_broadcast_ss(wb + c); /* one load for both vectors */                    \
                    for (int v = 0; v < NPV; v++) a[c][v] = _mm256_fmadd_ps(xv[v], wv, a[c][v]);                      \
                }                                                                                                     \
            }                                                                                                         \
        for (int c = 0; c < NOC; c++)                                                                                 \
            for (int v = 0; v < NPV; v++) acc[v * 8 + c] = a[c][v];                                                   \
    }
PLANAR_TILE(4, 2)
PLANAR_TILE(6, 2)
PLANAR_TILE(8, 1)

NNK_AVX2 static void planar_forward_avx2(float *out, double *sum, double *sq, const float *frame, const float *wb,
                                         const float *bias, int n, const nn_conv_dims *d, nn_act act, float slope) {
    const int OC = d->OC, OH = d->OH, OW = d->OW, noc = planar_noc(OC), npv = noc == 8 ? 1 : 2;
    const size_t Wp = (size_t)frame_w(d), istride = nnk_gconv_frame_floats(d, 1), total = (size_t)n * OH * OW * OC;
    const __m256 vslope = _mm256_set1_ps(slope);
    __m256 bv[8];
    for (int c = 0; c < 8; c++) bv[c] = _mm256_set1_ps(bias && c < OC ? bias[c] : 0.0f);
    for (int img = 0; img < n; img++)
        for (int oh = 0; oh < OH; oh++) {
            __m256 s[8], q[8];
            for (int c = 0; c < 8; c++) s[c] = q[c] = _mm256_setzero_ps();
            for (int ow0 = 0; ow0 < OW; ow0 += 8 * npv) {
                __m256 acc[16] __attribute__((aligned(32)));
                const float *src = frame + img * istride + oh * Wp + ow0;
                switch (noc) {
                case 4: planar_tile_4(acc, src, wb, d->KH, d->KW, Wp); break;
                case 6: planar_tile_6(acc, src, wb, d->KH, d->KW, Wp); break;
                default: planar_tile_8(acc, src, wb, d->KH, d->KW, Wp); break;
                }
                for (int v = 0; v < npv && ow0 + 8 * v < OW; v++) {
                    __m256 *r = acc + 8 * v;
                    const int valid = OW - ow0 - 8 * v < 8 ? OW - ow0 - 8 * v : 8;
                    const __m256 m = lanes_below(valid);
                    for (int c = 0; c < 8; c++) {
                        r[c] = c < OC ? nnk_act8(_mm256_add_ps(r[c], bv[c]), act, vslope) : _mm256_setzero_ps();
                        if (sum && c < OC) {
                            const __m256 x = _mm256_and_ps(r[c], m);
                            s[c] = _mm256_add_ps(s[c], x);
                            q[c] = _mm256_fmadd_ps(x, x, q[c]);
                        }
                    }
                    transpose8(r); /* r[i]: the OC channels of pixel ow0 + 8 v + i */
                    /* whole vectors run into the next pixels, which are stored after; the chunk's end exactly */
                    for (int i = 0; i < valid; i++) {
                        const size_t at = (((size_t)img * OH + oh) * OW + ow0 + 8 * v + i) * OC;
                        if (at + 8 <= total) {
                            _mm256_storeu_ps(out + at, r[i]);
                        } else {
                            float t[8];
                            _mm256_storeu_ps(t, r[i]);
                            memcpy(out + at, t, sizeof(float) * OC);
                        }
                    }
                }
            }
            if (sum) /* float partials over one output row, then double */
                for (int c = 0; c < OC; c++) {
                    float ts[8], tq[8];
                    _mm256_storeu_ps(ts, s[c]), _mm256_storeu_ps(tq, q[c]);
                    for (int j = 0; j < 8; j++) sum[c] += ts[j], sq[c] += tq[j];
                }
        }
}

void nnk_sconv_planar_forward(float *out, double *sum, double *sq, const float *frame, const float *wb,
                              const float *bias, int n, const nn_conv_dims *d, nn_act act, float slope) {
    planar_forward_avx2(out, sum, sq, frame, wb, bias, n, d, act, slope);
}

void nnk_sconv_forward(float *out, double *sum, double *sq, const float *frame, const int32_t *off, const float *wf,
                       const float *bias, int n, const nn_conv_dims *d, nn_act act, float slope) {
    sconv_forward_avx2(out, sum, sq, frame, off, wf, bias, n, d, act, slope);
}

void nnk_sconv_backward_weight(float *dwt, int accumulate, const float *frame, const int32_t *off, const float *dout,
                               int n, const nn_conv_dims *d) {
    sconv_backward_weight_avx2(dwt, accumulate, frame, off, dout, n, d);
}

void nnk_sconv_backward_data(float *frame, const float *dout, const int32_t *off, const float *ws, const float *zero,
                             int n, const nn_conv_dims *d) {
    sconv_backward_data_avx2(frame, dout, off, ws, zero, n, d);
}

#else /* no x86: never selected (the caller checks nnk_cpu_avx2()) */

int nnk_sconv_planar_ok(const nn_conv_dims *d) { return 0; }
size_t nnk_sconv_planar_floats(const nn_conv_dims *d) { return 0; }
void nnk_sconv_pack_planar(float *wb, const float *w, const nn_conv_dims *d) {}
void nnk_sconv_planar_forward(float *out, double *sum, double *sq, const float *frame, const float *wb,
                              const float *bias, int n, const nn_conv_dims *d, nn_act act, float slope) {}

void nnk_sconv_forward(float *out, double *sum, double *sq, const float *frame, const int32_t *off, const float *wf,
                       const float *bias, int n, const nn_conv_dims *d, nn_act act, float slope) {}
void nnk_sconv_backward_weight(float *dwt, int accumulate, const float *frame, const int32_t *off, const float *dout,
                               int n, const nn_conv_dims *d) {}
void nnk_sconv_backward_data(float *frame, const float *dout, const int32_t *off, const float *ws, const float *zero,
                             int n, const nn_conv_dims *d) {}

#endif
