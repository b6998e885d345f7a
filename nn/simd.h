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

#if defined(__x86_64__) && defined(__GNUC__)
#define NN_X86 1
#include <immintrin.h>
#define NN_AVX2 __attribute__((target("avx2,fma")))
/* 1 if this CPU runs AVX2 and FMA, unless DIGITS_NO_AVX2 is set in the environment (to test the fallback). */
int nn_cpu_avx2(void);
#else
#define NN_X86 0
static inline int nn_cpu_avx2(void) { return 0; }
#endif

#endif
