/* augment/affine: affine maps and the bilinear warp (see affine.h). */
#include "augment/affine.h"

#include <math.h>
#include <string.h>

#include "augment/simd.h"

void aug_affine_identity(double f[6]) {
    f[0] = 1, f[1] = 0, f[2] = 0;
    f[3] = 0, f[4] = 1, f[5] = 0;
}

void aug_affine_compose(double out[6], const double a[6], const double b[6]) {
    double r[6] = {
        a[0] * b[0] + a[1] * b[3], a[0] * b[1] + a[1] * b[4], a[0] * b[2] + a[1] * b[5] + a[2],
        a[3] * b[0] + a[4] * b[3], a[3] * b[1] + a[4] * b[4], a[3] * b[2] + a[4] * b[5] + a[5],
    };
    memcpy(out, r, sizeof r);
}

/* f = (linear map L about the centre) o f. */
static void then_about_centre(double f[6], double l00, double l01, double l10, double l11) {
    const double c = AUG_CENTRE;
    double t[6] = {l00, l01, c - l00 * c - l01 * c, l10, l11, c - l10 * c - l11 * c};
    aug_affine_compose(f, t, f);
}

/* sin and cos of an angle in degrees, exact at multiples of 90. */
static void sincos_deg(double degrees, double *s, double *c) {
    double r = fmod(degrees, 360.0);
    if (r < 0) r += 360.0;
    if (r == 0) *s = 0, *c = 1;
    else if (r == 90) *s = 1, *c = 0;
    else if (r == 180) *s = 0, *c = -1;
    else if (r == 270) *s = -1, *c = 0;
    else {
        double a = r * (3.14159265358979323846 / 180.0);
        *s = sin(a);
        *c = cos(a);
    }
}

void aug_affine_rotate(double f[6], double degrees) {
    double s, c;
    sincos_deg(degrees, &s, &c);
    /* y points down, so a counter-clockwise turn on screen is x' = c x + s y, y' = -s x + c y. */
    then_about_centre(f, c, s, -s, c);
}

void aug_affine_scale(double f[6], double sx, double sy) { then_about_centre(f, sx, 0, 0, sy); }

void aug_affine_shear(double f[6], double degrees) {
    double s, c;
    sincos_deg(degrees, &s, &c);
    then_about_centre(f, 1, s / c, 0, 1);
}

void aug_affine_shift(double f[6], double dx, double dy) {
    f[2] += dx;
    f[5] += dy;
}

int aug_affine_invert(double inv[6], const double f[6]) {
    double det = f[0] * f[4] - f[1] * f[3];
    if (!isfinite(det) || det == 0) return -1;
    for (int i = 0; i < 6; i++)
        if (!isfinite(f[i])) return -1;
    double a = f[4] / det, b = -f[1] / det, d = -f[3] / det, e = f[0] / det;
    /* Exact for the common cases (identity, shifts, quarter turns) since det = +-1 there. */
    double r[6] = {a, b, -(a * f[2] + b * f[5]), d, e, -(d * f[2] + e * f[5])};
    for (int i = 0; i < 6; i++)
        if (r[i] == 0) r[i] = 0; /* no -0 */
    memcpy(inv, r, sizeof r);
    return 0;
}

int aug_affine_is_identity(const float m[6]) {
    return m[0] == 1 && m[1] == 0 && m[2] == 0 && m[3] == 0 && m[4] == 1 && m[5] == 0;
}

void aug_pad_u8(float *pad, const uint8_t *src) {
    memset(pad, 0, sizeof(float) * AUG_PAD * AUG_PAD);
    for (int y = 0; y < AUG_SIDE; y++)
        for (int x = 0; x < AUG_SIDE; x++) pad[(y + 2) * AUG_PAD + x + 2] = (float)src[y * AUG_SIDE + x];
}

/* Pixel i of the flattened (28,28) grid is at (i % 28, i / 28). */
#define X28 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27
#define R4(...) __VA_ARGS__, __VA_ARGS__, __VA_ARGS__, __VA_ARGS__
#define R28(...) R4(__VA_ARGS__), R4(__VA_ARGS__), R4(__VA_ARGS__), R4(__VA_ARGS__), R4(__VA_ARGS__), \
    R4(__VA_ARGS__), R4(__VA_ARGS__)
#define Y28(y) R28(y)
static const float grid_x[AUG_PIXELS] __attribute__((aligned(32))) = {R28(X28)};
static const float grid_y[AUG_PIXELS] __attribute__((aligned(32))) = {
    Y28(0),  Y28(1),  Y28(2),  Y28(3),  Y28(4),  Y28(5),  Y28(6),  Y28(7),  Y28(8),  Y28(9),
    Y28(10), Y28(11), Y28(12), Y28(13), Y28(14), Y28(15), Y28(16), Y28(17), Y28(18), Y28(19),
    Y28(20), Y28(21), Y28(22), Y28(23), Y28(24), Y28(25), Y28(26), Y28(27)};

/* The source point (u, v) is clamped to [-1, 28]: beyond that all four neighbours are outside (zero) both before
 * and after clamping, and inside it the clamp does nothing, so the result is unchanged. The padded source has two
 * zero columns/rows on each side, so every read is in bounds. Both versions below do these operations in this
 * order. */
void aug_warp_scalar(float *restrict dst, const float *restrict pad, const float m[6], const float *restrict dx,
                     const float *restrict dy) {
    const float m0 = m[0], m1 = m[1], m2 = m[2], m3 = m[3], m4 = m[4], m5 = m[5];
    for (int i = 0; i < AUG_PIXELS; i++) {
        float px = grid_x[i] + (dx ? dx[i] : 0.0f), py = grid_y[i] + (dy ? dy[i] : 0.0f);
        float u = m0 * px + m1 * py + m2, v = m3 * px + m4 * py + m5;
        u = u < -1.0f ? -1.0f : u;
        u = u > 28.0f ? 28.0f : u;
        v = v < -1.0f ? -1.0f : v;
        v = v > 28.0f ? 28.0f : v;
        float fu = floorf(u), fv = floorf(v);
        float ax = u - fu, ay = v - fv, bx = 1.0f - ax, by = 1.0f - ay;
        int k = (int)fv * AUG_PAD + (int)fu + (2 * AUG_PAD + 2);
        float top = pad[k] * bx + pad[k + 1] * ax;
        float bot = pad[k + AUG_PAD] * bx + pad[k + AUG_PAD + 1] * ax;
        dst[i] = top * by + bot * ay;
    }
}

#if AUG_X86
AUG_AVX2 static void warp_avx2(float *restrict dst, const float *restrict pad, const float m[6],
                               const float *restrict dx, const float *restrict dy) {
    const __m256 m0 = _mm256_set1_ps(m[0]), m1 = _mm256_set1_ps(m[1]), m2 = _mm256_set1_ps(m[2]);
    const __m256 m3 = _mm256_set1_ps(m[3]), m4 = _mm256_set1_ps(m[4]), m5 = _mm256_set1_ps(m[5]);
    const __m256 lo = _mm256_set1_ps(-1.0f), hi = _mm256_set1_ps(28.0f), one = _mm256_set1_ps(1.0f);
    const __m256i stride = _mm256_set1_epi32(AUG_PAD), origin = _mm256_set1_epi32(2 * AUG_PAD + 2);
    const __m256i perm = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
    for (int i = 0; i < AUG_PIXELS; i += 8) {
        __m256 px = _mm256_load_ps(grid_x + i), py = _mm256_load_ps(grid_y + i);
        px = _mm256_add_ps(px, dx ? _mm256_loadu_ps(dx + i) : _mm256_setzero_ps());
        py = _mm256_add_ps(py, dy ? _mm256_loadu_ps(dy + i) : _mm256_setzero_ps());
        __m256 u = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(m0, px), _mm256_mul_ps(m1, py)), m2);
        __m256 v = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(m3, px), _mm256_mul_ps(m4, py)), m5);
        u = _mm256_min_ps(_mm256_max_ps(u, lo), hi); /* max(u, -1) = u < -1 ? -1 : u for every non-NaN u */
        v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
        __m256 fu = _mm256_floor_ps(u), fv = _mm256_floor_ps(v);
        __m256 ax = _mm256_sub_ps(u, fu), ay = _mm256_sub_ps(v, fv);
        __m256 bx = _mm256_sub_ps(one, ax), by = _mm256_sub_ps(one, ay);
        __m256i k = _mm256_add_epi32(_mm256_add_epi32(_mm256_mullo_epi32(_mm256_cvttps_epi32(fv), stride),
                                                      _mm256_cvttps_epi32(fu)), origin);
        /* Each neighbour pair (pad[k], pad[k + 1]) is one 8-byte gather: pixels 0, 1, 4, 5 in one, 2, 3, 6, 7 in
         * the other, so that picking the even and odd floats of the two puts pixels back in order 0..7. */
        __m256i kp = _mm256_permutevar8x32_epi32(k, perm);
        __m128i klo = _mm256_castsi256_si128(kp), khi = _mm256_extracti128_si256(kp, 1);
        __m256 t0 = _mm256_castpd_ps(_mm256_i32gather_pd((const double *)pad, klo, 4));
        __m256 t1 = _mm256_castpd_ps(_mm256_i32gather_pd((const double *)pad, khi, 4));
        __m256 b0 = _mm256_castpd_ps(_mm256_i32gather_pd((const double *)(pad + AUG_PAD), klo, 4));
        __m256 b1 = _mm256_castpd_ps(_mm256_i32gather_pd((const double *)(pad + AUG_PAD), khi, 4));
        __m256 p00 = _mm256_shuffle_ps(t0, t1, 0x88), p01 = _mm256_shuffle_ps(t0, t1, 0xDD);
        __m256 p10 = _mm256_shuffle_ps(b0, b1, 0x88), p11 = _mm256_shuffle_ps(b0, b1, 0xDD);
        __m256 top = _mm256_add_ps(_mm256_mul_ps(p00, bx), _mm256_mul_ps(p01, ax));
        __m256 bot = _mm256_add_ps(_mm256_mul_ps(p10, bx), _mm256_mul_ps(p11, ax));
        _mm256_storeu_ps(dst + i, _mm256_add_ps(_mm256_mul_ps(top, by), _mm256_mul_ps(bot, ay)));
    }
}
#endif

void aug_warp(float *restrict dst, const float *restrict pad, const float m[6], const float *restrict dx,
              const float *restrict dy) {
#if AUG_X86
    if (aug_cpu_avx2()) {
        warp_avx2(dst, pad, m, dx, dy);
        return;
    }
#endif
    aug_warp_scalar(dst, pad, m, dx, dy);
}

static float pixel_or_zero(const uint8_t *src, int x, int y) {
    return x >= 0 && x < AUG_SIDE && y >= 0 && y < AUG_SIDE ? (float)src[y * AUG_SIDE + x] : 0.0f;
}

void aug_warp_ref(float *dst, const uint8_t *src, const float m[6], const float *dx, const float *dy) {
    for (int y = 0; y < AUG_SIDE; y++)
        for (int x = 0; x < AUG_SIDE; x++) {
            double px = x + (dx ? dx[y * AUG_SIDE + x] : 0.0), py = y + (dy ? dy[y * AUG_SIDE + x] : 0.0);
            double u = m[0] * px + m[1] * py + m[2], v = m[3] * px + m[4] * py + m[5];
            double fu = floor(u), fv = floor(v), ax = u - fu, ay = v - fv;
            if (fu < -2 || fu > 29) fu = -2; /* far outside: every neighbour reads 0 */
            if (fv < -2 || fv > 29) fv = -2;
            int x0 = (int)fu, y0 = (int)fv;
            double val = (1 - ay) * ((1 - ax) * pixel_or_zero(src, x0, y0) + ax * pixel_or_zero(src, x0 + 1, y0)) +
                         ay * ((1 - ax) * pixel_or_zero(src, x0, y0 + 1) + ax * pixel_or_zero(src, x0 + 1, y0 + 1));
            dst[y * AUG_SIDE + x] = (float)val;
        }
}
