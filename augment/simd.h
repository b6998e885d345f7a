/* augment/simd: wide-vector code paths of augment/ in a portable build.
 *
 * The hot kernels (Philox noise, smoothing, bilinear warp) have an AVX2 version compiled with
 * __attribute__((target("avx2"))) beside a baseline version, and pick one at run time with aug_have_avx2().
 * Both versions do the same IEEE operations in the same order (no fused multiply-add: ISO C mode leaves
 * contraction off, and AVX2 without FMA cannot fuse), so results are bit-identical on every x86-64 machine,
 * whichever version runs. The baseline versions are public as *_scalar so tests can compare the two.
 */
#ifndef AUG_SIMD_H
#define AUG_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__)
#define AUG_X86 1
#include <immintrin.h>
#define AUG_AVX2 __attribute__((target("avx2")))
/* 1 if this CPU can run the AVX2 paths. */
static inline int aug_cpu_avx2(void) { return __builtin_cpu_supports("avx2"); }
#else
#define AUG_X86 0
static inline int aug_cpu_avx2(void) { return 0; }
#endif

#endif
