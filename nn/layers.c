/* nn/layers: elementwise kernels, dense, batch norm, dropout, pooling, softmax cross-entropy (see layers.h).
 * The convolution is in layers_conv.c. */
#include "nn/layers.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "nn/internal/simd.h"
#include "core/dg_rng.h"

/* Rows per float partial sum before it is added into a double: keeps float sums short (relative error ~1e-6). */
#define SUM_BLOCK 256

/* ---- output stage: bias, activation, batch statistics ---- */

static inline __attribute__((always_inline)) void bias_act_rows(float *y, float *ts, float *tq, size_t rows, int C,
                                                                size_t ld, const float *bias, nn_act act,
                                                                float slope, int stats) {
    for (size_t r = 0; r < rows; r++) {
        float *row = y + r * ld;
        if (stats) {
#pragma omp simd
            for (int c = 0; c < C; c++) {
                float v = nn_act_apply(row[c] + bias[c], act, slope);
                row[c] = v;
                ts[c] += v;
                tq[c] += v * v;
            }
        } else {
#pragma omp simd
            for (int c = 0; c < C; c++) row[c] = nn_act_apply(row[c] + bias[c], act, slope);
        }
    }
}

#if NNK_X86
/* y (n) = tanh or sigmoid of x (n) (may alias), 8 at a time; the last partial block through a padded copy, so
 * every element gets the same arithmetic wherever it sits (results do not depend on how a loop is split). */
NNK_AVX2 static void act_smooth_avx2(float *y, const float *x, size_t n, nn_act act) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(y + i, act == NN_ACT_TANH ? nnk_tanh8(v) : nnk_sigmoid8(v));
    }
    if (i < n) {
        float t[8] = {0};
        memcpy(t, x + i, sizeof(float) * (n - i));
        __m256 v = _mm256_loadu_ps(t);
        _mm256_storeu_ps(t, act == NN_ACT_TANH ? nnk_tanh8(v) : nnk_sigmoid8(v));
        memcpy(y + i, t, sizeof(float) * (n - i));
    }
}
#endif

/* tanh and sigmoid: the AVX2 polynomials where available, libm otherwise. */
static void act_smooth(float *y, const float *x, size_t n, nn_act act, int avx2) {
#if NNK_X86
    if (avx2) {
        act_smooth_avx2(y, x, n, act);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) y[i] = act == NN_ACT_TANH ? tanhf(x[i]) : 1.0f / (1.0f + expf(-x[i]));
}

void nn_bias_act(float *y, double *sum, double *sq, float *tmp, size_t rows, int C, size_t ld, const float *bias,
                 nn_act act, float slope) {
    int stats = sum != NULL;
    if (act == NN_ACT_TANH || act == NN_ACT_SIGMOID) { /* bias, then the vectorized function, then the sums */
        const int avx2 = nnk_cpu_avx2();
        for (size_t r0 = 0; r0 < rows; r0 += SUM_BLOCK) {
            size_t n = rows - r0 < SUM_BLOCK ? rows - r0 : SUM_BLOCK;
            float *ts = tmp, *tq = tmp + C;
            if (stats) memset(tmp, 0, sizeof(float) * 2 * (size_t)C);
            if (ld == (size_t)C) { /* contiguous rows: one call for the block (no per-row tails) */
                for (size_t r = r0; r < r0 + n; r++)
                    for (int c = 0; c < C; c++) y[r * ld + c] += bias[c];
                act_smooth(y + r0 * ld, y + r0 * ld, n * (size_t)C, act, avx2);
            }
            for (size_t r = r0; r < r0 + n; r++) {
                float *row = y + r * ld;
                if (ld != (size_t)C) {
                    for (int c = 0; c < C; c++) row[c] += bias[c];
                    act_smooth(row, row, (size_t)C, act, avx2);
                }
                if (stats)
                    for (int c = 0; c < C; c++) {
                        ts[c] += row[c];
                        tq[c] += row[c] * row[c];
                    }
            }
            if (stats)
                for (int c = 0; c < C; c++) {
                    sum[c] += ts[c];
                    sq[c] += tq[c];
                }
        }
        return;
    }
    for (size_t r0 = 0; r0 < rows; r0 += SUM_BLOCK) {
        size_t n = rows - r0 < SUM_BLOCK ? rows - r0 : SUM_BLOCK;
        float *ts = tmp, *tq = tmp + C;
        if (stats) memset(tmp, 0, sizeof(float) * 2 * (size_t)C);
        float *yb = y + r0 * ld;
        switch (act) {
        case NN_ACT_RELU: bias_act_rows(yb, ts, tq, n, C, ld, bias, NN_ACT_RELU, slope, stats); break;
        case NN_ACT_LEAKY: bias_act_rows(yb, ts, tq, n, C, ld, bias, NN_ACT_LEAKY, slope, stats); break;
        case NN_ACT_TANH: bias_act_rows(yb, ts, tq, n, C, ld, bias, NN_ACT_TANH, slope, stats); break;
        case NN_ACT_SIGMOID: bias_act_rows(yb, ts, tq, n, C, ld, bias, NN_ACT_SIGMOID, slope, stats); break;
        default: bias_act_rows(yb, ts, tq, n, C, ld, bias, NN_ACT_NONE, slope, stats); break;
        }
        if (stats)
            for (int c = 0; c < C; c++) {
                sum[c] += ts[c];
                sq[c] += tq[c];
            }
    }
}

/* ---- activations ---- */

void nn_act_grad_inplace(float *dy, const float *y, size_t n, nn_act act, float slope) {
    switch (act) {
    case NN_ACT_RELU:
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float v = dy[i]; /* unconditional load, then a select: GCC vectorizes this form */
            dy[i] = y[i] > 0.0f ? v : 0.0f;
        }
        break;
    case NN_ACT_LEAKY:
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float g = nn_act_grad(y[i], NN_ACT_LEAKY, slope);
            dy[i] *= g;
        }
        break;
    case NN_ACT_TANH:
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float g = nn_act_grad(y[i], NN_ACT_TANH, slope);
            dy[i] *= g;
        }
        break;
    case NN_ACT_SIGMOID:
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float g = nn_act_grad(y[i], NN_ACT_SIGMOID, slope);
            dy[i] *= g;
        }
        break;
    default: break;
    }
}

#define PAR_MIN 32768 /* elementwise loops shorter than this stay on one thread */

void nn_act_forward(float *y, const float *x, size_t n, nn_act act, float slope) {
    switch (act) {
    case NN_ACT_RELU:
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) y[i] = nn_act_apply(x[i], NN_ACT_RELU, slope);
        break;
    case NN_ACT_LEAKY:
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) y[i] = nn_act_apply(x[i], NN_ACT_LEAKY, slope);
        break;
    case NN_ACT_TANH:
    case NN_ACT_SIGMOID: {
        const int avx2 = nnk_cpu_avx2();
        const size_t nb = (n + 4095) / 4096;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
        for (size_t b = 0; b < nb; b++) {
            size_t i0 = b * 4096, len = n - i0 < 4096 ? n - i0 : 4096;
            act_smooth(y + i0, x + i0, len, act, avx2);
        }
        break;
    }
    default:
        if (y != x) memcpy(y, x, sizeof(float) * n);
        break;
    }
}

void nn_act_backward(float *dx, const float *dy, const float *y, size_t n, nn_act act, float slope) {
    switch (act) {
    case NN_ACT_RELU:
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float v = dy[i];
            dx[i] = y[i] > 0.0f ? v : 0.0f;
        }
        break;
    case NN_ACT_LEAKY:
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float g = nn_act_grad(y[i], NN_ACT_LEAKY, slope);
            dx[i] = dy[i] * g;
        }
        break;
    case NN_ACT_TANH:
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float g = nn_act_grad(y[i], NN_ACT_TANH, slope);
            dx[i] = dy[i] * g;
        }
        break;
    case NN_ACT_SIGMOID:
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float g = nn_act_grad(y[i], NN_ACT_SIGMOID, slope);
            dx[i] = dy[i] * g;
        }
        break;
    default:
        if (dx != dy) memcpy(dx, dy, sizeof(float) * n);
        break;
    }
}

/* ---- dense ---- */

/* Fixed column blocks (a function of the width only, never of the thread count). */
static int dense_blocks(int n) {
    int b = (n + 63) / 64;
    return b < 1 ? 1 : b > NN_GROUPS ? NN_GROUPS : b;
}

size_t nn_dense_scratch(int B, int IN, int OUT) { return 2 * (size_t)OUT; }

void nn_dense_forward(float *out, double *stats, float *scratch, const float *in, const float *w, const float *bias,
                      int B, int IN, int OUT, nn_act act, float slope) {
    int nb = dense_blocks(OUT);
    if (stats) memset(stats, 0, sizeof(double) * 2 * (size_t)OUT);
#pragma omp parallel for schedule(static)
    for (int j = 0; j < nb; j++) {
        int n0 = (int)nn_group_start((size_t)OUT, nb, j), n1 = (int)nn_group_start((size_t)OUT, nb, j + 1);
        /* out[:, n0:n1] (B, n1-n0) = in (B, IN) . w[n0:n1]^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, n1 - n0, IN, 1.0f, in, IN, w + (size_t)n0 * IN, IN,
                    0.0f, out + n0, OUT);
        nn_bias_act(out + n0, stats ? stats + n0 : NULL, stats ? stats + OUT + n0 : NULL, scratch + 2 * (size_t)n0,
                    (size_t)B, n1 - n0, (size_t)OUT, bias + n0, act, slope);
    }
}

void nn_dense_backward(float *din, float *dw, float *dbias, float *scratch, float *dout, const float *out,
                       const float *in, const float *w, int B, int IN, int OUT, nn_act act, float slope) {
    if (act != NN_ACT_NONE) nn_act_backward(dout, dout, out, (size_t)B * OUT, act, slope);
    int nb = dense_blocks(OUT), nk = dense_blocks(IN);
#pragma omp parallel
    {
#pragma omp for schedule(static) nowait
        for (int j = 0; j < nb; j++) {
            int n0 = (int)nn_group_start((size_t)OUT, nb, j), n1 = (int)nn_group_start((size_t)OUT, nb, j + 1);
            /* dw[n0:n1] (n1-n0, IN) = dout[:, n0:n1]^T . in (B, IN) */
            if (dw)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n1 - n0, IN, B, 1.0f, dout + n0, OUT, in, IN,
                            0.0f, dw + (size_t)n0 * IN, IN);
            if (dbias) {
                for (int o = n0; o < n1; o++) dbias[o] = 0.0f;
                for (int b = 0; b < B; b++) {
                    const float *row = dout + (size_t)b * OUT;
                    for (int o = n0; o < n1; o++) dbias[o] += row[o];
                }
            }
        }
        if (din) {
#pragma omp for schedule(static) nowait
            for (int j = 0; j < nk; j++) {
                int k0 = (int)nn_group_start((size_t)IN, nk, j), k1 = (int)nn_group_start((size_t)IN, nk, j + 1);
                /* din[:, k0:k1] (B, k1-k0) = dout (B, OUT) . w[:, k0:k1] */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, k1 - k0, OUT, 1.0f, dout, OUT, w + k0, IN,
                            0.0f, din + k0, IN);
            }
        }
    }
}

/* ---- batch normalization ---- */

/* Scratch layout: part (G, 2, C) doubles | tmp (G, 2, C) floats | 4 C floats: scale, shift (2, C) floats in the
 * forward, the sums (2, C) doubles in the backward | 3 C floats: backward coefficients. */
size_t nn_batchnorm_scratch(size_t N, int C) {
    size_t G = (size_t)nn_groups(N > 0 ? N : 1);
    return G * 6 * (size_t)C + 7 * (size_t)C;
}

/* The batch-norm loops over rows below are compiled twice: for the build's baseline target and for AVX2 WITHOUT
 * FMA (wider vectors, the same multiplications and additions, none fused: bitwise the same results), chosen at run
 * time. */
#if NNK_X86
#define BN_AVX2 __attribute__((target("avx2")))
#endif

/* t0 (C) += a over rows [r0, r1), t1 (C) += a^2 (mode 0) or a * (x - mean) * invstd (mode 1). */
static inline __attribute__((always_inline)) void bn_sum_rows(float *t0, float *t1, const float *a, const float *x,
                                                              const float *mean, const float *invstd, size_t r0,
                                                              size_t r1, int C, int mode) {
    for (size_t r = r0; r < r1; r++) {
        const float *ar = a + r * C;
        if (mode == 0) { /* sum a, sum a^2 */
#pragma omp simd
            for (int c = 0; c < C; c++) {
                t0[c] += ar[c];
                t1[c] += ar[c] * ar[c];
            }
        } else { /* sum dy, sum dy * xhat */
            const float *xr = x + r * C;
#pragma omp simd
            for (int c = 0; c < C; c++) {
                t0[c] += ar[c];
                t1[c] += ar[c] * ((xr[c] - mean[c]) * invstd[c]);
            }
        }
    }
}
static void bn_sum_rows_base(float *t0, float *t1, const float *a, const float *x, const float *mean,
                             const float *invstd, size_t r0, size_t r1, int C, int mode) {
    bn_sum_rows(t0, t1, a, x, mean, invstd, r0, r1, C, mode);
}
#if NNK_X86
BN_AVX2 static void bn_sum_rows_avx2(float *t0, float *t1, const float *a, const float *x, const float *mean,
                                     const float *invstd, size_t r0, size_t r1, int C, int mode) {
    bn_sum_rows(t0, t1, a, x, mean, invstd, r0, r1, C, mode);
}
#endif

/* Per-group sums of f0(row) and f1(row) over fixed row groups, reduced in group order into out0, out1 (C). */
static void bn_reduce(double *out0, double *out1, float *scratch, const float *a, const float *x, const float *mean,
                      const float *invstd, size_t N, int C, int mode) {
    int G = nn_groups(N);
    double *part = (double *)scratch;
    float *tmpall = scratch + (size_t)G * 4 * C;
    void (*rows)(float *, float *, const float *, const float *, const float *, const float *, size_t, size_t, int,
                 int) = bn_sum_rows_base;
#if NNK_X86
    if (nnk_cpu_avx2()) rows = bn_sum_rows_avx2;
#endif
#pragma omp parallel for schedule(static)
    for (int g = 0; g < G; g++) {
        size_t r0 = nn_group_start(N, G, g), r1 = nn_group_start(N, G, g + 1);
        double *p0 = part + (size_t)g * 2 * C, *p1 = p0 + C;
        float *t0 = tmpall + (size_t)g * 2 * C, *t1 = t0 + C;
        for (int c = 0; c < C; c++) p0[c] = p1[c] = 0.0;
        for (size_t rb = r0; rb < r1; rb += SUM_BLOCK) {
            size_t re = r1 - rb < SUM_BLOCK ? r1 : rb + SUM_BLOCK;
            memset(t0, 0, sizeof(float) * 2 * (size_t)C);
            rows(t0, t1, a, x, mean, invstd, rb, re, C, mode);
            for (int c = 0; c < C; c++) {
                p0[c] += t0[c];
                p1[c] += t1[c];
            }
        }
    }
    for (int c = 0; c < C; c++) {
        double s0 = 0.0, s1 = 0.0;
        for (int g = 0; g < G; g++) {
            s0 += part[(size_t)g * 2 * C + c];
            s1 += part[(size_t)g * 2 * C + C + c];
        }
        out0[c] = s0;
        out1[c] = s1;
    }
}

void nn_batchnorm_stats(double *stats, float *scratch, const float *x, size_t N, int C) {
    bn_reduce(stats, stats + C, scratch, x, NULL, NULL, NULL, N, C, 0);
}

/* y = (x - mean) * scale + shift over rows [r0, r1) of (N, C) (subtracting first: no cancellation when
 * |mean| >> std). */
static inline __attribute__((always_inline)) void bn_apply_rows(float *y, const float *x, const float *mean,
                                                                const float *scale, const float *shift, size_t r0,
                                                                size_t r1, int C) {
    for (size_t r = r0; r < r1; r++) {
        const float *xr = x + r * C;
        float *yr = y + r * C;
#pragma omp simd
        for (int c = 0; c < C; c++) yr[c] = (xr[c] - mean[c]) * scale[c] + shift[c];
    }
}
static void bn_apply_rows_base(float *y, const float *x, const float *mean, const float *scale, const float *shift,
                               size_t r0, size_t r1, int C) {
    bn_apply_rows(y, x, mean, scale, shift, r0, r1, C);
}
#if NNK_X86
BN_AVX2 static void bn_apply_rows_avx2(float *y, const float *x, const float *mean, const float *scale,
                                       const float *shift, size_t r0, size_t r1, int C) {
    bn_apply_rows(y, x, mean, scale, shift, r0, r1, C);
}
#endif

#define BN_ROWS 64 /* rows per work item of the elementwise passes */

/* y (N, C) = (x - mean) * scale + shift per channel. */
static void bn_apply(float *y, const float *x, const float *mean, const float *scale, const float *shift, size_t N,
                     int C) {
    void (*rows)(float *, const float *, const float *, const float *, const float *, size_t, size_t, int) =
        bn_apply_rows_base;
#if NNK_X86
    if (nnk_cpu_avx2()) rows = bn_apply_rows_avx2;
#endif
    const size_t nb = (N + BN_ROWS - 1) / BN_ROWS;
#pragma omp parallel for schedule(static) if (N * (size_t)C >= PAR_MIN)
    for (size_t b = 0; b < nb; b++) {
        const size_t r0 = b * BN_ROWS, r1 = N - r0 < BN_ROWS ? N : r0 + BN_ROWS;
        rows(y, x, mean, scale, shift, r0, r1, C);
    }
}

void nn_batchnorm_forward_train(float *y, float *mean, float *invstd, float *rmean, float *rvar, float *scratch,
                                const double *stats, const float *x, const float *gamma, const float *beta, size_t N,
                                int C, float momentum, float eps) {
    int G = nn_groups(N);
    float *scale = scratch + (size_t)G * 6 * C, *shift = scale + C;
    double unbias = N > 1 ? (double)N / (double)(N - 1) : 1.0;
    for (int c = 0; c < C; c++) {
        double m = stats[c] / (double)N;
        double v = stats[C + c] / (double)N - m * m;
        if (v < 0.0) v = 0.0;
        double is = 1.0 / sqrt(v + (double)eps);
        mean[c] = (float)m;
        invstd[c] = (float)is;
        rmean[c] = (float)((1.0 - momentum) * rmean[c] + momentum * m);
        rvar[c] = (float)((1.0 - momentum) * rvar[c] + momentum * v * unbias);
        scale[c] = (float)(gamma[c] * is);
        shift[c] = beta[c];
    }
    bn_apply(y, x, mean, scale, shift, N, C);
}

void nn_batchnorm_forward_eval(float *y, float *mean, float *invstd, float *scratch, const float *x,
                               const float *gamma, const float *beta, const float *rmean, const float *rvar, size_t N,
                               int C, float eps) {
    int G = nn_groups(N);
    float *scale = scratch + (size_t)G * 6 * C, *shift = scale + C;
    for (int c = 0; c < C; c++) {
        double is = 1.0 / sqrt((double)rvar[c] + (double)eps);
        mean[c] = rmean[c];
        invstd[c] = (float)is;
        scale[c] = (float)(gamma[c] * is);
        shift[c] = beta[c];
    }
    bn_apply(y, x, mean, scale, shift, N, C);
}

static inline __attribute__((always_inline)) void bn_dx_rows(float *dx, float *bsum, const float *dy,
                                                             const float *x, const float *mean, const float *ca,
                                                             const float *cb, const float *ck, size_t r0, size_t r1,
                                                             int C, nn_act act, float slope, int bias) {
    for (size_t r = r0; r < r1; r++) {
        const float *dyr = dy + r * C, *xr = x + r * C;
        float *dxr = dx + r * C;
#pragma omp simd
        for (int c = 0; c < C; c++) {
            /* the derivative as its own statement: GCC if-converts (vectorizes) it only in this form */
            float g = nn_act_grad(xr[c], act, slope);
            dxr[c] = (ca[c] * dyr[c] + cb[c] * (xr[c] - mean[c]) + ck[c]) * g;
        }
        if (bias) {
#pragma omp simd
            for (int c = 0; c < C; c++) bsum[c] += dxr[c];
        }
    }
}

/* bn_dx_rows with the activation as a constant (one instance per activation). */
static inline __attribute__((always_inline)) void bn_dx_block(float *dx, float *bsum, const float *dy, const float *x,
                                                              const float *mean, const float *ca, const float *cb,
                                                              const float *ck, size_t r0, size_t r1, int C,
                                                              nn_act act, float slope, int bias) {
    switch (act) {
    case NN_ACT_RELU: bn_dx_rows(dx, bsum, dy, x, mean, ca, cb, ck, r0, r1, C, NN_ACT_RELU, slope, bias); break;
    case NN_ACT_LEAKY: bn_dx_rows(dx, bsum, dy, x, mean, ca, cb, ck, r0, r1, C, NN_ACT_LEAKY, slope, bias); break;
    case NN_ACT_TANH: bn_dx_rows(dx, bsum, dy, x, mean, ca, cb, ck, r0, r1, C, NN_ACT_TANH, slope, bias); break;
    case NN_ACT_SIGMOID: bn_dx_rows(dx, bsum, dy, x, mean, ca, cb, ck, r0, r1, C, NN_ACT_SIGMOID, slope, bias); break;
    default: bn_dx_rows(dx, bsum, dy, x, mean, ca, cb, ck, r0, r1, C, NN_ACT_NONE, slope, bias); break;
    }
}
static void bn_dx_block_base(float *dx, float *bsum, const float *dy, const float *x, const float *mean,
                             const float *ca, const float *cb, const float *ck, size_t r0, size_t r1, int C, nn_act act,
                             float slope, int bias) {
    bn_dx_block(dx, bsum, dy, x, mean, ca, cb, ck, r0, r1, C, act, slope, bias);
}
#if NNK_X86
BN_AVX2 static void bn_dx_block_avx2(float *dx, float *bsum, const float *dy, const float *x, const float *mean,
                                     const float *ca, const float *cb, const float *ck, size_t r0, size_t r1, int C,
                                     nn_act act, float slope, int bias) {
    bn_dx_block(dx, bsum, dy, x, mean, ca, cb, ck, r0, r1, C, act, slope, bias);
}
#endif

void nn_batchnorm_backward(float *dx, float *dgamma, float *dbeta, float *dbias_prev, float *scratch, const float *dy,
                           const float *x, const float *mean, const float *invstd, const float *gamma, size_t N,
                           int C, int batch_stats, nn_act act, float slope) {
    int G = nn_groups(N);
    double *sums = (double *)(scratch + (size_t)G * 6 * C); /* (2, C): sum dy, sum dy*xhat (overlays scale) */
    bn_reduce(sums, sums + C, scratch, dy, x, mean, invstd, N, C, 1);
    for (int c = 0; c < C; c++) {
        dbeta[c] = (float)sums[c];
        dgamma[c] = (float)sums[C + c];
    }
    if (!dx) return;
    /* dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)); without batch statistics dx = gamma invstd dy.
     * As dx = a dy + b (x - mean) + k with a = gamma invstd, b = -a invstd mean(dy xhat), k = -a mean(dy)
     * (x - mean first: no cancellation between b x and b mean). */
    float *ca = scratch + (size_t)G * 6 * C + 4 * (size_t)C, *cb = ca + C, *ck = cb + C;
    for (int c = 0; c < C; c++) {
        double a = (double)gamma[c] * invstd[c];
        ca[c] = (float)a;
        cb[c] = batch_stats ? (float)(-a * invstd[c] * sums[C + c] / (double)N) : 0.0f;
        ck[c] = batch_stats ? (float)(-a * sums[c] / (double)N) : 0.0f;
    }
    /* Fixed row groups; with dbias_prev each keeps float sums per block of rows, added into its double partial. */
    double *part = (double *)scratch; /* (G, C) */
    float *tmpall = scratch + (size_t)G * 4 * C;
    const int bias = dbias_prev != NULL;
    void (*rows)(float *, float *, const float *, const float *, const float *, const float *, const float *,
                 const float *, size_t, size_t, int, nn_act, float, int) = bn_dx_block_base;
#if NNK_X86
    if (nnk_cpu_avx2()) rows = bn_dx_block_avx2;
#endif
#pragma omp parallel for schedule(static) if (N * (size_t)C >= PAR_MIN)
    for (int g = 0; g < G; g++) {
        size_t r0 = nn_group_start(N, G, g), r1 = nn_group_start(N, G, g + 1);
        double *pg = part + (size_t)g * C;
        float *t = tmpall + (size_t)g * 2 * C;
        for (int c = 0; c < C; c++) pg[c] = 0.0;
        for (size_t rb = r0; rb < r1; rb += SUM_BLOCK) {
            size_t re = r1 - rb < SUM_BLOCK ? r1 : rb + SUM_BLOCK;
            if (bias) memset(t, 0, sizeof(float) * (size_t)C);
            rows(dx, t, dy, x, mean, ca, cb, ck, rb, re, C, act, slope, bias);
            if (bias)
                for (int c = 0; c < C; c++) pg[c] += t[c];
        }
    }
    if (bias)
        for (int c = 0; c < C; c++) {
            double s0 = 0.0;
            for (int g = 0; g < G; g++) s0 += part[(size_t)g * C + c];
            dbias_prev[c] = (float)s0;
        }
}

/* ---- dropout ---- */

#if NNK_X86
/* 32 consecutive words of a Philox4x32-10 stream: blocks ctr0 .. ctr0 + 7 in the 8 lanes, out[4 * block + word],
 * exactly what dg_philox4x32 gives block by block. Then the dropout of 32 elements. */
NNK_AVX2 static void dropout32_avx2(float *y, uint8_t *mask, const float *x, const uint32_t ctr[4],
                                    const uint32_t key[2], uint32_t thresh, float scale) {
    __m256i c0 = _mm256_add_epi32(_mm256_set1_epi32((int)ctr[0]), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i c1 = _mm256_set1_epi32((int)ctr[1]), c2 = _mm256_set1_epi32((int)ctr[2]);
    __m256i c3 = _mm256_set1_epi32((int)ctr[3]);
    const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        __m256i pe0 = _mm256_mul_epu32(c0, m0), po0 = _mm256_mul_epu32(_mm256_srli_epi64(c0, 32), m0);
        __m256i pe1 = _mm256_mul_epu32(c2, m1), po1 = _mm256_mul_epu32(_mm256_srli_epi64(c2, 32), m1);
        __m256i lo0 = _mm256_blend_epi32(pe0, _mm256_slli_epi64(po0, 32), 0xAA);
        __m256i hi0 = _mm256_blend_epi32(_mm256_srli_epi64(pe0, 32), po0, 0xAA);
        __m256i lo1 = _mm256_blend_epi32(pe1, _mm256_slli_epi64(po1, 32), 0xAA);
        __m256i hi1 = _mm256_blend_epi32(_mm256_srli_epi64(pe1, 32), po1, 0xAA);
        c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
        c1 = lo1;
        c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
        c3 = lo0;
    }
    uint32_t w[4][8], u[32];
    _mm256_storeu_si256((__m256i *)w[0], c0), _mm256_storeu_si256((__m256i *)w[1], c1);
    _mm256_storeu_si256((__m256i *)w[2], c2), _mm256_storeu_si256((__m256i *)w[3], c3);
    for (int b = 0; b < 8; b++)
        for (int j = 0; j < 4; j++) u[4 * b + j] = w[j][b];
    const __m256i flip = _mm256_set1_epi32((int)0x80000000u);
    const __m256i th = _mm256_xor_si256(_mm256_set1_epi32((int)thresh), flip);
    const __m256 sc = _mm256_set1_ps(scale);
    for (int v = 0; v < 4; v++) {
        /* keep = u >= thresh (unsigned) = !(thresh > u) */
        __m256i uu = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(u + 8 * v)), flip);
        __m256i drop = _mm256_cmpgt_epi32(th, uu);
        __m256 yv = _mm256_andnot_ps(_mm256_castsi256_ps(drop), _mm256_mul_ps(_mm256_loadu_ps(x + 8 * v), sc));
        _mm256_storeu_ps(y + 8 * v, yv);
        int bits = ~_mm256_movemask_ps(_mm256_castsi256_ps(drop));
        for (int j = 0; j < 8; j++) mask[8 * v + j] = (uint8_t)(bits >> j & 1);
    }
}
#endif

void nn_dropout_forward(float *y, uint8_t *mask, const float *x, int B, size_t n, float rate, uint64_t seed,
                        uint64_t step, uint32_t layer) {
    double t = (double)rate * 4294967296.0;
    uint32_t thresh = t >= 4294967295.0 ? 4294967295u : (uint32_t)t;
    float scale = 1.0f / (1.0f - rate);
    const int avx2 = nnk_cpu_avx2();
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        dg_rng r = dg_rng_make(seed, DG_RNG_DROPOUT, (uint32_t)step, layer * 1048576u + (uint32_t)b);
        const float *xb = x + (size_t)b * n;
        float *yb = y + (size_t)b * n;
        uint8_t *mb = mask + (size_t)b * n;
        size_t i = 0;
#if NNK_X86
        if (avx2)
            for (; i + 32 <= n; i += 32) { /* the same stream, 8 blocks at a time */
                dropout32_avx2(yb + i, mb + i, xb + i, r.ctr, r.key, thresh, scale);
                r.ctr[0] += 8;
            }
#endif
        for (; i + 4 <= n; i += 4) {
            uint32_t u[4];
            dg_philox4x32(r.ctr, r.key, u);
            r.ctr[0]++;
            for (int j = 0; j < 4; j++) {
                uint8_t keep = u[j] >= thresh;
                mb[i + j] = keep;
                yb[i + j] = keep ? xb[i + j] * scale : 0.0f;
            }
        }
        for (; i < n; i++) {
            uint8_t keep = dg_rng_u32(&r) >= thresh;
            mb[i] = keep;
            yb[i] = keep ? xb[i] * scale : 0.0f;
        }
    }
    (void)avx2;
}

void nn_dropout_backward(float *dx, const float *dy, const uint8_t *mask, int B, size_t n, float rate) {
    float scale = 1.0f / (1.0f - rate);
    size_t total = (size_t)B * n;
#pragma omp parallel for simd schedule(static) if (total >= PAR_MIN)
    for (size_t i = 0; i < total; i++) {
        float m = (float)mask[i]; /* a multiplier, not a branch: vectorizes */
        dx[i] = dy[i] * scale * m;
    }
}

/* ---- pooling ---- */

void nn_maxpool_forward(float *out, int32_t *argmax, const float *in, int B, int H, int W, int C, int size,
                        int stride, int OH, int OW) {
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const float *ib = in + (size_t)b * H * W * C;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                size_t o = (((size_t)b * OH + oh) * OW + ow) * C;
                float *restrict ob = out + o;
                int32_t *restrict ab = argmax + o;
                int32_t base = (int32_t)(((size_t)oh * stride * W + (size_t)ow * stride) * C);
                for (int c = 0; c < C; c++) {
                    ob[c] = ib[base + c];
                    ab[c] = base + c;
                }
                for (int i = 0; i < size; i++)
                    for (int j = 0; j < size; j++) {
                        if (i == 0 && j == 0) continue;
                        int32_t idx = (int32_t)((((size_t)oh * stride + i) * W + (size_t)ow * stride + j) * C);
                        const float *restrict ip = ib + idx;
                        /* Selects, not a branch: the compiler vectorizes this over the channels. With a branch,
                         * real activations (which of four wins is a coin toss) mispredict so often that pooling
                         * took several times longer than on the flat images nn_calibrate times; vgg-ls's epochs ran
                         * 8-11% over their plan (bench/RESULTS.md, "Max pooling without branches"). Strict '>'
                         * keeps the first maximum in scan order, as before. */
                        for (int c = 0; c < C; c++) {
                            float v = ip[c], m = ob[c];
                            int32_t take = -(int32_t)(v > m); /* all ones where v wins */
                            ob[c] = v > m ? v : m;
                            ab[c] = (ab[c] & ~take) | ((idx + c) & take);
                        }
                    }
            }
    }
}

void nn_maxpool_backward(float *din, const float *dout, const int32_t *argmax, int B, int H, int W, int C, int OH,
                         int OW) {
    size_t in_n = (size_t)H * W * C, out_n = (size_t)OH * OW * C;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *db = din + (size_t)b * in_n;
        const float *gb = dout + (size_t)b * out_n;
        const int32_t *ab = argmax + (size_t)b * out_n;
        memset(db, 0, sizeof(float) * in_n);
        for (size_t i = 0; i < out_n; i++) db[ab[i]] += gb[i];
    }
}

#if NNK_X86
/* The 8 floats at p, or the left < 8 before a buffer's end (and zeros). */
NNK_AVX2 static inline __m256 load_upto8(const float *p, size_t left) {
    if (left >= 8) return _mm256_loadu_ps(p);
    float t[8] = {0};
    memcpy(t, p, sizeof(float) * left);
    return _mm256_loadu_ps(t);
}
NNK_AVX2 static inline void store_upto8(float *p, __m256 v, size_t left) {
    if (left >= 8) {
        _mm256_storeu_ps(p, v);
        return;
    }
    float t[8];
    _mm256_storeu_ps(t, v);
    memcpy(p, t, sizeof(float) * left);
}

/* Average pooling of one image, 8 channels at a time, with the additions of the portable loop in the same order
 * (the same bits). Where C is not a multiple of 8 a vector runs into the next pixel's channels and is stored
 * whole: pixels are written in ascending order, so the next one overwrites them; only the image's end is exact. */
NNK_AVX2 static inline __attribute__((always_inline)) void avgpool_image(float *out, const float *in, int H, int W,
                                                                      int C, int size, int stride, int OH, int OW,
                                                                      float inv) {
    const size_t in_n = (size_t)H * W * C, out_n = (size_t)OH * OW * C;
    const __m256 vinv = _mm256_set1_ps(inv);
    for (int oh = 0; oh < OH; oh++)
        for (int ow = 0; ow < OW; ow++) {
            const size_t o = ((size_t)oh * OW + ow) * C;
            for (int c0 = 0; c0 < C; c0 += 8) {
                __m256 s = _mm256_setzero_ps();
                for (int i = 0; i < size; i++)
                    for (int j = 0; j < size; j++) {
                        size_t at = (((size_t)oh * stride + i) * W + (size_t)ow * stride + j) * C + c0;
                        s = _mm256_add_ps(s, load_upto8(in + at, in_n - at));
                    }
                store_upto8(out + o + c0, _mm256_mul_ps(s, vinv), out_n - o - c0);
            }
        }
}

/* Its backward where windows tile the input (size == stride): every input pixel gets 0 + inv * its window's
 * gradient, or 0 outside every window (the portable result), written once, row by row in ascending order as above
 * (a row's uncovered tail is zeroed after the row, over any vector that ran into it). */
NNK_AVX2 static inline __attribute__((always_inline)) void avgpool_back_image(float *din, const float *dout, int H,
                                                                           int W, int C, int s, int OH, int OW,
                                                                           float inv) {
    const size_t in_n = (size_t)H * W * C, out_n = (size_t)OH * OW * C, row = (size_t)W * C;
    const __m256 vinv = _mm256_set1_ps(inv), zero = _mm256_setzero_ps();
    for (int ih = 0; ih < H; ih++) {
        float *dr = din + ih * row;
        const int oh = ih / s;
        if (oh >= OH) {
            memset(dr, 0, sizeof(float) * row);
            continue;
        }
        for (int ow = 0; ow < OW; ow++) {
            const size_t g = ((size_t)oh * OW + ow) * C;
            /* pixel by pixel (j outside c0): a vector that runs into the next pixel is overwritten by it. With c0
             * outside, the window's last channels ran into pixels already written (wrong gradients where C > 8 is
             * not a multiple of 8) */
            for (int j = 0; j < s; j++)
                for (int c0 = 0; c0 < C; c0 += 8) {
                    const __m256 v =
                        _mm256_add_ps(zero, _mm256_mul_ps(load_upto8(dout + g + c0, out_n - g - c0), vinv));
                    const size_t at = ih * row + ((size_t)ow * s + j) * C + c0;
                    store_upto8(din + at, v, in_n - at);
                }
        }
        memset(dr + (size_t)OW * s * C, 0, sizeof(float) * (W - OW * s) * C);
    }
}

/* The common 2x2 windows of stride 2 as their own instances (constant loop bounds: the generic ones spent more on
 * loop control than on the additions). */
NNK_AVX2 static void avgpool_image_avx2(float *out, const float *in, int H, int W, int C, int size, int stride,
                                        int OH, int OW, float inv) {
    if (size == 2 && stride == 2)
        avgpool_image(out, in, H, W, C, 2, 2, OH, OW, inv);
    else
        avgpool_image(out, in, H, W, C, size, stride, OH, OW, inv);
}
NNK_AVX2 static void avgpool_back_image_avx2(float *din, const float *dout, int H, int W, int C, int s, int OH,
                                             int OW, float inv) {
    if (s == 2)
        avgpool_back_image(din, dout, H, W, C, 2, OH, OW, inv);
    else
        avgpool_back_image(din, dout, H, W, C, s, OH, OW, inv);
}
#endif

void nn_avgpool_forward(float *out, const float *in, int B, int H, int W, int C, int size, int stride, int OH,
                        int OW) {
    float inv = 1.0f / (float)(size * size);
#if NNK_X86
    if (nnk_cpu_avx2()) {
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++)
            avgpool_image_avx2(out + (size_t)b * OH * OW * C, in + (size_t)b * H * W * C, H, W, C, size, stride, OH,
                               OW, inv);
        return;
    }
#endif
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        const float *ib = in + (size_t)b * H * W * C;
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float *ob = out + (((size_t)b * OH + oh) * OW + ow) * C;
                for (int c = 0; c < C; c++) ob[c] = 0.0f;
                for (int i = 0; i < size; i++)
                    for (int j = 0; j < size; j++) {
                        const float *p = ib + (((size_t)oh * stride + i) * W + (size_t)ow * stride + j) * C;
                        for (int c = 0; c < C; c++) ob[c] += p[c];
                    }
                for (int c = 0; c < C; c++) ob[c] *= inv;
            }
    }
}

void nn_avgpool_backward(float *din, const float *dout, int B, int H, int W, int C, int size, int stride, int OH,
                         int OW) {
    float inv = 1.0f / (float)(size * size);
    size_t in_n = (size_t)H * W * C;
#if NNK_X86
    if (size == stride && nnk_cpu_avx2()) {
#pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++)
            avgpool_back_image_avx2(din + (size_t)b * in_n, dout + (size_t)b * OH * OW * C, H, W, C, size, OH, OW, inv);
        return;
    }
#endif
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        float *db = din + (size_t)b * in_n;
        memset(db, 0, sizeof(float) * in_n);
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                const float *g = dout + (((size_t)b * OH + oh) * OW + ow) * C;
                for (int i = 0; i < size; i++)
                    for (int j = 0; j < size; j++) {
                        float *p = db + (((size_t)oh * stride + i) * W + (size_t)ow * stride + j) * C;
                        for (int c = 0; c < C; c++) p[c] += g[c] * inv;
                    }
            }
    }
}

/* ---- softmax, cross-entropy ---- */

void nn_softmax(float *probs, const float *logits, int B, int K) {
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * K;
        float *p = probs + (size_t)b * K;
        float m = z[0];
        for (int k = 1; k < K; k++) m = z[k] > m ? z[k] : m;
        double s = 0.0;
        for (int k = 0; k < K; k++) s += exp((double)z[k] - m);
        for (int k = 0; k < K; k++) p[k] = (float)(exp((double)z[k] - m) / s);
    }
}

float nn_softmax_xent(float *probs, float *dlogits, int *correct, const float *logits, const uint8_t *labels, int B,
                      int K, float smoothing) {
    double loss = 0.0;
    int ok = 0;
    for (int b = 0; b < B; b++) {
        const float *z = logits + (size_t)b * K;
        float *p = probs + (size_t)b * K;
        int y = labels[b];
        if (y >= K) return NAN;
        int best = 0;
        float m = z[0];
        for (int k = 1; k < K; k++)
            if (z[k] > m) {
                m = z[k];
                best = k;
            }
        ok += best == y;
        double s = 0.0;
        for (int k = 0; k < K; k++) s += exp((double)z[k] - m);
        double lse = log(s); /* log p_k = z_k - m - lse */
        double nll = -((double)z[y] - m - lse), mean_nll = 0.0;
        for (int k = 0; k < K; k++) mean_nll -= (double)z[k] - m - lse;
        loss += (1.0 - smoothing) * nll + smoothing * mean_nll / K;
        for (int k = 0; k < K; k++) {
            double pk = exp((double)z[k] - m - lse);
            p[k] = (float)pk;
            if (dlogits) {
                double q = smoothing / K + (k == y ? 1.0 - smoothing : 0.0);
                dlogits[(size_t)b * K + k] = (float)((pk - q) / B);
            }
        }
    }
    if (correct) *correct = ok;
    return (float)(loss / B);
}
