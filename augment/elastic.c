/* augment/elastic: random displacement fields (see elastic.h). */
#include "augment/elastic.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment/simd.h"
#include "core/dg_rng.h"

#define NBLOCKS (AUG_NOISE_COUNT / 8) /* 200 Philox blocks per field */
#define LANES 8

void aug_elastic_scratch_init(aug_elastic_scratch *s) {
    memset(s, 0, sizeof *s);
    s->k_sigma = -1;
}

/* One group of eight Philox4x32-10 blocks (the same function as dg_philox4x32), lane-wise. */
static void philox8_scalar(uint32_t c[4][LANES], uint32_t key0, uint32_t key1) {
    uint32_t k0 = key0, k1 = key1;
    for (int round = 0; round < 10; round++) {
        for (int l = 0; l < LANES; l++) {
            uint64_t p0 = (uint64_t)0xD2511F53u * c[0][l], p1 = (uint64_t)0xCD9E8D57u * c[2][l];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1][l] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c[3][l] ^ k1;
            c[1][l] = (uint32_t)p1;
            c[3][l] = (uint32_t)p0;
            c[0][l] = n0;
            c[2][l] = n2;
        }
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
}

void aug_elastic_noise_scalar(float *restrict noise, uint64_t seed, uint32_t epoch, uint32_t id) {
    for (int g = 0; g < NBLOCKS / LANES; g++) {
        uint32_t c[4][LANES];
        for (int l = 0; l < LANES; l++) {
            c[0][l] = AUG_FIELD_BLOCK0 + (uint32_t)(g * LANES + l);
            c[1][l] = id;
            c[2][l] = epoch;
            c[3][l] = DG_RNG_AUGMENT;
        }
        philox8_scalar(c, (uint32_t)seed, (uint32_t)(seed >> 32));
        float *out = noise + g * 64;
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < LANES; l++) {
                out[(j * 2) * LANES + l] = (float)(int16_t)(c[j][l] & 0xffffu) * (1.0f / 32768.0f);
                out[(j * 2 + 1) * LANES + l] = (float)(int16_t)(c[j][l] >> 16) * (1.0f / 32768.0f);
            }
    }
}

#if AUG_X86
/* The high and low 32 bits of the eight products a[l] * m (m < 2^32 in every 64-bit half). */
AUG_AVX2 static inline void mul_hilo(__m256i a, __m256i m, __m256i *hi, __m256i *lo) {
    __m256i even = _mm256_mul_epu32(a, m), odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

AUG_AVX2 static void noise_avx2(float *restrict noise, uint64_t seed, uint32_t epoch, uint32_t id) {
    const __m256i M0 = _mm256_set1_epi32((int)0xD2511F53u), M1 = _mm256_set1_epi32((int)0xCD9E8D57u);
    const __m256i W0 = _mm256_set1_epi32((int)0x9E3779B9u), W1 = _mm256_set1_epi32((int)0xBB67AE85u);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 scale = _mm256_set1_ps(1.0f / 32768.0f);
    for (int g = 0; g < NBLOCKS / LANES; g++) {
        __m256i c0 = _mm256_add_epi32(_mm256_set1_epi32((int)(AUG_FIELD_BLOCK0 + (uint32_t)(g * LANES))), lane);
        __m256i c1 = _mm256_set1_epi32((int)id), c2 = _mm256_set1_epi32((int)epoch);
        __m256i c3 = _mm256_set1_epi32(DG_RNG_AUGMENT);
        __m256i k0 = _mm256_set1_epi32((int)(uint32_t)seed), k1 = _mm256_set1_epi32((int)(uint32_t)(seed >> 32));
        for (int round = 0; round < 10; round++) {
            __m256i hi0, lo0, hi1, lo1;
            mul_hilo(c0, M0, &hi0, &lo0);
            mul_hilo(c2, M1, &hi1, &lo1);
            c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), k0);
            c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), k1);
            c1 = lo1;
            c3 = lo0;
            k0 = _mm256_add_epi32(k0, W0);
            k1 = _mm256_add_epi32(k1, W1);
        }
        float *out = noise + g * 64;
        __m256i w[4] = {c0, c1, c2, c3};
        for (int j = 0; j < 4; j++) {
            __m256i low = _mm256_srai_epi32(_mm256_slli_epi32(w[j], 16), 16), high = _mm256_srai_epi32(w[j], 16);
            _mm256_storeu_ps(out + (j * 2) * LANES, _mm256_mul_ps(_mm256_cvtepi32_ps(low), scale));
            _mm256_storeu_ps(out + (j * 2 + 1) * LANES, _mm256_mul_ps(_mm256_cvtepi32_ps(high), scale));
        }
    }
}
#endif

void aug_elastic_noise(float *restrict noise, uint64_t seed, uint32_t epoch, uint32_t id) {
#if AUG_X86
    if (aug_cpu_avx2()) {
        noise_avx2(noise, seed, epoch, id);
        return;
    }
#endif
    aug_elastic_noise_scalar(noise, seed, epoch, id);
}

void aug_elastic_noise_ref(float *noise, uint64_t seed, uint32_t epoch, uint32_t id) {
    for (int b = 0; b < NBLOCKS; b++) {
        dg_rng r = dg_rng_make(seed, DG_RNG_AUGMENT, epoch, id);
        r.ctr[0] = AUG_FIELD_BLOCK0 + (uint32_t)b;
        int g = b / LANES, l = b % LANES;
        for (int j = 0; j < 4; j++) {
            uint32_t word = dg_rng_u32(&r);
            for (int h = 0; h < 2; h++) {
                int16_t v = (int16_t)(h ? word >> 16 : word & 0xffffu);
                noise[((g * 4 + j) * 2 + h) * LANES + l] = (float)v / 32768.0f;
            }
        }
    }
}

/* Half-sample mirror (scipy.ndimage "reflect": d c b a | a b c d | d c b a) of index i into 0..n-1. */
static int reflect(int i, int n) {
    int m = i % (2 * n);
    if (m < 0) m += 2 * n;
    return m < n ? m : 2 * n - 1 - m;
}

static int kernel_radius(float sigma) { return (int)(4.0 * (double)sigma + 0.5); }

void aug_gauss_matrix(float *k, float sigma) {
    memset(k, 0, sizeof(float) * AUG_SIDE * AUG_KROW);
    if (!(sigma > 0)) {
        for (int i = 0; i < AUG_SIDE; i++) k[i * AUG_KROW + i] = k[i * AUG_KROW + AUG_SIDE + i] = 1;
        return;
    }
    if (sigma > AUG_SIGMA_MAX) sigma = AUG_SIGMA_MAX;
    int r = kernel_radius(sigma);
    /* w[t] = exp(-t^2 / (2 sigma^2)) by the recurrence w[t + 1] = w[t] q^(2t + 1), q = exp(-1 / (2 sigma^2)):
     * one exp() per sigma (sigma changes every image under a sigma range). */
    double w[4 * (int)AUG_SIGMA_MAX + 2], sum = 1, q = exp(-0.5 / ((double)sigma * sigma)), step = q, q2 = q * q;
    w[0] = 1;
    for (int t = 1; t <= r; t++) {
        w[t] = w[t - 1] * step;
        step *= q2;
        sum += 2 * w[t];
    }
    if (r < AUG_SIDE) {
        /* At most one fold on each side: output i takes input j at offsets j - i, -1 - j - i (mirror at the
         * left edge) and 2n - 1 - j - i (mirror at the right edge). ws[t + 2n] = weight of offset t, 0 beyond r. */
        float ws[4 * AUG_SIDE + 1] = {0};
        for (int t = 0; t <= r; t++) ws[2 * AUG_SIDE + t] = ws[2 * AUG_SIDE - t] = (float)(w[t] / sum);
        const float *c = ws + 2 * AUG_SIDE;
        for (int i = 0; i < AUG_SIDE; i++)
            for (int j = 0; j < AUG_SIDE; j++)
                k[i * AUG_KROW + j] = c[j - i] + c[-1 - j - i] + c[2 * AUG_SIDE - 1 - j - i];
    } else {
        for (int i = 0; i < AUG_SIDE; i++)
            for (int t = -r; t <= r; t++) k[i * AUG_KROW + reflect(i + t, AUG_SIDE)] += (float)(w[abs(t)] / sum);
    }
    for (int i = 0; i < AUG_SIDE; i++) memcpy(k + i * AUG_KROW + AUG_SIDE, k + i * AUG_KROW, sizeof(float) * AUG_SIDE);
}

typedef float v8f __attribute__((vector_size(32)));
#define ROWV (AUG_KROW / 8) /* 7 vectors per row: the x field in floats 0..27, the y field in 28..55 */

/* Both passes on rows of 7 vectors holding the two fields side by side, so no lane is padding:
 *   rows:    t[i] = sum_k (ux[i][k] | uy[i][k]) * k2[k]   (the broadcast switches field in the middle of vector 3)
 *   columns: s[i] = sum_k K[i][k] * t[k]
 * Sums run over k in order in every build, seven independent sums in flight. */
static inline __attribute__((always_inline)) void smooth_body(v8f *restrict s, v8f *restrict t, const float *ux,
                                                              const float *uy, const float *k) {
    const v8f *kv = (const v8f *)k;
    for (int i = 0; i < AUG_SIDE; i++) {
        v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0};
        for (int kk = 0; kk < AUG_SIDE; kk++) {
            float a = ux[i * AUG_SIDE + kk], b = uy[i * AUG_SIDE + kk];
            v8f va = {a, a, a, a, a, a, a, a}, vb = {b, b, b, b, b, b, b, b}, vab = {a, a, a, a, b, b, b, b};
            const v8f *r = kv + kk * ROWV;
            a0 += va * r[0], a1 += va * r[1], a2 += va * r[2], a3 += vab * r[3];
            a4 += vb * r[4], a5 += vb * r[5], a6 += vb * r[6];
        }
        v8f *o = t + i * ROWV;
        o[0] = a0, o[1] = a1, o[2] = a2, o[3] = a3, o[4] = a4, o[5] = a5, o[6] = a6;
    }
    for (int i = 0; i < AUG_SIDE; i++) {
        v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0};
        for (int kk = 0; kk < AUG_SIDE; kk++) {
            float w = k[i * AUG_KROW + kk];
            v8f vw = {w, w, w, w, w, w, w, w};
            const v8f *r = t + kk * ROWV;
            a0 += vw * r[0], a1 += vw * r[1], a2 += vw * r[2], a3 += vw * r[3];
            a4 += vw * r[4], a5 += vw * r[5], a6 += vw * r[6];
        }
        v8f *o = s + i * ROWV;
        o[0] = a0, o[1] = a1, o[2] = a2, o[3] = a3, o[4] = a4, o[5] = a5, o[6] = a6;
    }
}

void aug_smooth2_scalar(float *s, const float *ux, const float *uy, const float *k, float *t) {
    smooth_body((v8f *)s, (v8f *)t, ux, uy, k);
}

#if AUG_X86
AUG_AVX2 static void smooth_avx2(float *s, const float *ux, const float *uy, const float *k, float *t) {
    smooth_body((v8f *)s, (v8f *)t, ux, uy, k);
}
#endif

void aug_smooth2(float *s, const float *ux, const float *uy, const float *k, float *t) {
#if AUG_X86
    if (aug_cpu_avx2()) {
        smooth_avx2(s, ux, uy, k, t);
        return;
    }
#endif
    aug_smooth2_scalar(s, ux, uy, k, t);
}

void aug_smooth_ref(float *s, const float *u, float sigma) {
    double tmp[AUG_PIXELS];
    if (!(sigma > 0)) {
        for (int i = 0; i < AUG_PIXELS; i++) s[i] = u[i];
        return;
    }
    int r = kernel_radius(sigma);
    double w[2 * 4 * (int)AUG_SIGMA_MAX + 3], sum = 0;
    for (int t = -r; t <= r; t++) sum += w[t + r] = exp(-0.5 * (double)t * t / ((double)sigma * sigma));
    for (int t = -r; t <= r; t++) w[t + r] /= sum;
    for (int y = 0; y < AUG_SIDE; y++)
        for (int x = 0; x < AUG_SIDE; x++) {
            double a = 0;
            for (int t = -r; t <= r; t++) a += w[t + r] * u[y * AUG_SIDE + reflect(x + t, AUG_SIDE)];
            tmp[y * AUG_SIDE + x] = a;
        }
    for (int y = 0; y < AUG_SIDE; y++)
        for (int x = 0; x < AUG_SIDE; x++) {
            double a = 0;
            for (int t = -r; t <= r; t++) a += w[t + r] * tmp[reflect(y + t, AUG_SIDE) * AUG_SIDE + x];
            s[y * AUG_SIDE + x] = (float)a;
        }
}

void aug_elastic_field(float *dx, float *dy, float alpha, float sigma, uint64_t seed, uint32_t epoch, uint32_t id,
                       aug_elastic_scratch *s) {
    if (alpha == 0) {
        memset(dx, 0, sizeof(float) * AUG_PIXELS);
        memset(dy, 0, sizeof(float) * AUG_PIXELS);
        return;
    }
    if (s->k_sigma != sigma) {
        aug_gauss_matrix(s->k, sigma);
        s->k_sigma = sigma;
    }
    aug_elastic_noise(s->noise, seed, epoch, id);
    aug_smooth2(s->s, s->noise, s->noise + AUG_PIXELS, s->k, s->t);
    for (int y = 0; y < AUG_SIDE; y++)
        for (int x = 0; x < AUG_SIDE; x++) {
            dx[y * AUG_SIDE + x] = alpha * s->s[y * AUG_KROW + x];
            dy[y * AUG_SIDE + x] = alpha * s->s[y * AUG_KROW + AUG_SIDE + x];
        }
}
