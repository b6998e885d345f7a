/* nn/internal/simd: wide-vector code paths of nn/ in a portable build.
 *
 * NOT API: shared by the kernels in nn/, under the internal prefixes nnk_ and NNK_.
 * The build targets x86-64-v2 (SSE4.2) so the binaries run anywhere; the hot kernels of nn/ have AVX2+FMA
 * versions compiled with NNK_AVX2 (a function attribute) and are chosen at run time with nnk_cpu_avx2(). The
 * portable fallback is the im2col + OpenBLAS path of nn/layers_conv.c (OpenBLAS picks its own kernels per CPU).
 * Unlike augment/, results of the two paths are not bit-identical (FMA, other summation order); each path is
 * deterministic and independent of the thread count.
 */
#ifndef NNK_SIMD_H
#define NNK_SIMD_H

#include "nn/layers.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define NNK_X86 1
#include <immintrin.h>
#define NNK_AVX2 __attribute__((target("avx2,fma")))
/* 1 if this CPU runs AVX2 and FMA, unless DIGITS_NO_AVX2 is set in the environment (to test the fallback). */
int nnk_cpu_avx2(void);

/* exp, tanh and the logistic function of 8 floats (relative error below 5e-7, checked against libm in
 * tests/nn/test_layers.c). exp: the Cephes single-precision polynomial. */
NNK_AVX2 static inline __m256 nnk_exp8(__m256 x) {
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

/* tanh: a (13, 6) rational minimax approximation x P(x^2) / Q(x^2) on [-7.9, 7.9], clamped outside, where tanh is
 * 1 to float precision (the coefficients of Eigen's generic_fast_tanh_float). One division and 11 FMAs: three
 * times faster than 1 - 2 / (exp(2x) + 1) with exp's range reduction, relative error 3e-7. */
NNK_AVX2 static inline __m256 nnk_tanh8(__m256 x) {
    const __m256 lim = _mm256_set1_ps(7.90531110763549805f);
    /* max/min return their second operand when one is NaN: NaN stays NaN */
    x = _mm256_min_ps(lim, _mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), lim), x));
    const __m256 z = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(-2.76076847742355e-16f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.00018790482477e-13f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-8.60467152213735e-11f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(5.12229709037114e-08f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.48572235717979e-05f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(6.37261928875436e-04f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(4.89352455891786e-03f));
    __m256 q = _mm256_set1_ps(1.19825839466702e-06f);
    q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(1.18534705686654e-04f));
    q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(2.26843463243900e-03f));
    q = _mm256_fmadd_ps(q, z, _mm256_set1_ps(4.89352518554385e-03f));
    return _mm256_div_ps(_mm256_mul_ps(p, x), q);
}

NNK_AVX2 static inline __m256 nnk_sigmoid8(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, nnk_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

/* act(v) of 8 floats, as nn_act_apply (the output stage of the AVX2 convolution kernels). */
NNK_AVX2 static inline __m256 nnk_act8(__m256 v, nn_act act, __m256 slope) {
    switch (act) {
    case NN_ACT_RELU: return _mm256_max_ps(v, _mm256_setzero_ps());
    case NN_ACT_LEAKY:
        return _mm256_blendv_ps(_mm256_mul_ps(v, slope), v, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GT_OQ));
    case NN_ACT_TANH: return nnk_tanh8(v);
    case NN_ACT_SIGMOID: return nnk_sigmoid8(v);
    default: return v;
    }
}
#else
#define NNK_X86 0
static inline int nnk_cpu_avx2(void) { return 0; }
#endif

#endif
