/* nn/simd: wide-vector code paths of nn/ in a portable build.
 *
 * The build targets x86-64-v2 (SSE4.2) so the binaries run anywhere; the hot kernels of nn/ have AVX2+FMA
 * versions compiled with NN_AVX2 (a function attribute) and are chosen at run time with nn_cpu_avx2(). The
 * portable fallback is the im2col + OpenBLAS path of nn/layers_conv.c (OpenBLAS picks its own kernels per CPU).
 * Unlike augment/, results of the two paths are not bit-identical (FMA, other summation order); each path is
 * deterministic and independent of the thread count.
 */
#ifndef NN_SIMD_H
#define NN_SIMD_H

#include "nn/layers.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define NN_X86 1
#include <immintrin.h>
#define NN_AVX2 __attribute__((target("avx2,fma")))
/* 1 if this CPU runs AVX2 and FMA, unless DIGITS_NO_AVX2 is set in the environment (to test the fallback). */
int nn_cpu_avx2(void);

/* exp, tanh and the logistic function of 8 floats (Cephes single-precision polynomials; relative error about
 * 1e-7, checked against libm in tests/nn/test_layers.c). */
NN_AVX2 static inline __m256 nn_exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 y = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

NN_AVX2 static inline __m256 nn_tanh8(__m256 x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 a = _mm256_andnot_ps(sign, x), z = _mm256_mul_ps(x, x);
    /* |x| < 0.625: x + x^3 P(x^2) */
    __m256 p = _mm256_set1_ps(-5.70498872745e-3f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531e-2f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036e-1f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422e-1f));
    __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
    /* otherwise: 1 - 2 / (exp(2|x|) + 1) with the sign of x */
    __m256 e = nn_exp8(_mm256_add_ps(a, a));
    __m256 big = _mm256_sub_ps(_mm256_set1_ps(1.0f),
                               _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    big = _mm256_or_ps(big, _mm256_and_ps(x, sign));
    return _mm256_blendv_ps(big, small, _mm256_cmp_ps(a, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
}

NN_AVX2 static inline __m256 nn_sigmoid8(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, nn_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

/* act(v) of 8 floats, as nn_act_apply (the output stage of the AVX2 convolution kernels). */
NN_AVX2 static inline __m256 nn_act8(__m256 v, nn_act act, __m256 slope) {
    switch (act) {
    case NN_ACT_RELU: return _mm256_max_ps(v, _mm256_setzero_ps());
    case NN_ACT_LEAKY:
        return _mm256_blendv_ps(_mm256_mul_ps(v, slope), v, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ));
    case NN_ACT_TANH: return nn_tanh8(v);
    case NN_ACT_SIGMOID: return nn_sigmoid8(v);
    default: return v;
    }
}
#else
#define NN_X86 0
static inline int nn_cpu_avx2(void) { return 0; }
#endif

#endif
