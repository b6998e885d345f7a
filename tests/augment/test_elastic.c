/* Tests for augment/elastic: the noise is the documented slice of the dg_rng stream, the smoothing matches direct
 * convolution, AVX2 and baseline paths agree bit for bit, alpha = 0 is the identity, and the field has the
 * variance the theory gives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "augment/augment.h"
#include "augment/elastic.h"
#include "core/dg_rng.h"
#include "aug_testutil.h"

static aug_elastic_scratch scratch; /* large; one per test program */

static void test_noise_is_the_keyed_stream(void **state) {
    (void)state;
    static float a[AUG_NOISE_COUNT], b[AUG_NOISE_COUNT], c[AUG_NOISE_COUNT];
    const uint64_t seeds[] = {0, 1, 0x123456789abcdef0ull};
    for (int s = 0; s < 3; s++)
        for (uint32_t id = 0; id < 20; id++) {
            aug_elastic_noise(a, seeds[s], id % 3, id * 7919u);
            aug_elastic_noise_scalar(b, seeds[s], id % 3, id * 7919u);
            aug_elastic_noise_ref(c, seeds[s], id % 3, id * 7919u);
            assert_memory_equal(a, b, sizeof a);
            assert_memory_equal(a, c, sizeof a);
        }
    /* number 0: block 2^31, word 0, low half */
    dg_rng r = dg_rng_make(42, DG_RNG_AUGMENT, 3, 17);
    r.ctr[0] = AUG_FIELD_BLOCK0;
    uint32_t w = dg_rng_u32(&r);
    aug_elastic_noise(a, 42, 3, 17);
    assert_true(a[0] == (float)(int16_t)(w & 0xffff) / 32768.0f);
    assert_true(a[8] == (float)(int16_t)(w >> 16) / 32768.0f);
    /* uniform in [-1, 1): mean 0, variance 1/3 */
    double sum = 0, sum2 = 0;
    int n = 0;
    for (uint32_t id = 0; id < 200; id++) {
        aug_elastic_noise(a, 9, 0, id);
        for (int i = 0; i < 2 * AUG_PIXELS; i++) {
            assert_true(a[i] >= -1.0f && a[i] < 1.0f);
            sum += a[i];
            sum2 += (double)a[i] * a[i];
            n++;
        }
    }
    assert_true(fabs(sum / n) < 0.01);
    assert_true(fabs(sum2 / n - 1.0 / 3) < 0.01);
}

static void test_gauss_matrix(void **state) {
    (void)state;
    static float k[AUG_SIDE * AUG_KROW];
    const float sigmas[] = {0.5f, 1, 4, 5.5f, 6.9f, 7.5f, 30, 100};
    for (size_t s = 0; s < sizeof sigmas / sizeof sigmas[0]; s++) {
        aug_gauss_matrix(k, sigmas[s]);
        for (int i = 0; i < AUG_SIDE; i++) {
            double row = 0;
            for (int j = 0; j < AUG_SIDE; j++) {
                row += k[i * AUG_KROW + j];
                assert_true(k[i * AUG_KROW + j] >= 0);
                assert_true(fabs(k[i * AUG_KROW + j] - k[j * AUG_KROW + i]) < 1e-6); /* symmetric */
                assert_true(k[i * AUG_KROW + j] == k[i * AUG_KROW + AUG_SIDE + j]);  /* written twice */
            }
            assert_true(fabs(row - 1) < 1e-5); /* mirrored borders keep all the weight */
        }
    }
    /* sigma 4, centre row: the normalised Gaussian, exp(-t^2/32) / sum over |t| <= 16 */
    aug_gauss_matrix(k, 4);
    double sum = 0;
    for (int t = -16; t <= 16; t++) sum += exp(-t * t / 32.0);
    assert_true(fabs(k[14 * AUG_KROW + 14] - 1 / sum) < 1e-7);
    assert_true(fabs(k[14 * AUG_KROW + 18] - exp(-0.5) / sum) < 1e-7);
    /* sigma 0: identity */
    aug_gauss_matrix(k, 0);
    for (int i = 0; i < AUG_SIDE; i++)
        for (int j = 0; j < AUG_SIDE; j++) assert_true(k[i * AUG_KROW + j] == (i == j ? 1.0f : 0.0f));
}

static void test_smooth_matches_convolution(void **state) {
    (void)state;
    static float noise[AUG_NOISE_COUNT] __attribute__((aligned(32))), s1[AUG_SIDE * AUG_KROW] __attribute__((aligned(32))),
        s2[AUG_SIDE * AUG_KROW] __attribute__((aligned(32))), t[AUG_SIDE * AUG_KROW] __attribute__((aligned(32))),
        ref[AUG_PIXELS], k[AUG_SIDE * AUG_KROW] __attribute__((aligned(32)));
    const float sigmas[] = {0, 0.7f, 4, 6, 8, 40};
    double worst = 0;
    for (size_t s = 0; s < sizeof sigmas / sizeof sigmas[0]; s++) {
        aug_gauss_matrix(k, sigmas[s]);
        aug_elastic_noise(noise, 3, 1, (uint32_t)s);
        aug_smooth2(s1, noise, noise + AUG_PIXELS, k, t);
        aug_smooth2_scalar(s2, noise, noise + AUG_PIXELS, k, t);
        assert_memory_equal(s1, s2, sizeof s1);
        for (int f = 0; f < 2; f++) {
            aug_smooth_ref(ref, noise + f * AUG_PIXELS, sigmas[s]);
            for (int y = 0; y < AUG_SIDE; y++)
                for (int x = 0; x < AUG_SIDE; x++) {
                    double d = fabs((double)s1[y * AUG_KROW + f * AUG_SIDE + x] - ref[y * AUG_SIDE + x]);
                    if (d > worst) worst = d;
                }
        }
    }
    assert_true(worst < 2e-6);
}

static void test_alpha_zero_is_identity(void **state) {
    (void)state;
    static aug_scratch s;
    aug_scratch_init(&s);
    uint8_t img[784], out[784];
    synth_digit(img, 2);
    aug_params p;
    aug_params_identity(&p);
    p.alpha = 0;
    p.sigma = 4;
    p.seed = 77;
    aug_apply_u8(out, img, &p, &s);
    assert_memory_equal(out, img, 784);
    float dx[784], dy[784];
    aug_elastic_field(dx, dy, 0, 4, 1, 2, 3, &scratch);
    for (int i = 0; i < 784; i++) assert_true(dx[i] == 0 && dy[i] == 0);
    /* a tiny alpha moves pixels by far less than a grey level */
    p.alpha = 1e-4f;
    aug_apply_u8(out, img, &p, &s);
    assert_memory_equal(out, img, 784);
}

static void test_field_variance_and_effect(void **state) {
    (void)state;
    aug_elastic_scratch_init(&scratch);
    static float k[AUG_SIDE * AUG_KROW];
    const float alpha = 34, sigma = 4;
    aug_gauss_matrix(k, sigma);
    /* Var(alpha * (K U K)[i][j]) = alpha^2 / 3 * (sum_k K[i][k]^2) * (sum_l K[j][l]^2) */
    double n2[AUG_SIDE];
    for (int i = 0; i < AUG_SIDE; i++) {
        n2[i] = 0;
        for (int j = 0; j < AUG_SIDE; j++) n2[i] += (double)k[i * AUG_KROW + j] * k[i * AUG_KROW + j];
    }
    double want = 0, got = 0;
    for (int i = 0; i < AUG_SIDE; i++)
        for (int j = 0; j < AUG_SIDE; j++) want += alpha * alpha / 3.0 * n2[i] * n2[j];
    want /= AUG_PIXELS;
    static float dx[784], dy[784];
    const int fields = 400;
    for (int f = 0; f < fields; f++) {
        aug_elastic_field(dx, dy, alpha, sigma, 11, 0, (uint32_t)f, &scratch);
        for (int i = 0; i < 784; i++) got += (double)dx[i] * dx[i] + (double)dy[i] * dy[i];
    }
    got /= 2.0 * fields * AUG_PIXELS;
    assert_true(fabs(got / want - 1) < 0.1);
    /* Simard's setting moves pixels by about a pixel or two (RMS) */
    assert_true(sqrt(got) > 0.7 && sqrt(got) < 3);
    /* the same key gives the same field; another id another one */
    static float ex[784], ey[784];
    aug_elastic_field(dx, dy, alpha, sigma, 11, 0, 5, &scratch);
    aug_elastic_field(ex, ey, alpha, 5.5f, 11, 0, 5, &scratch); /* other sigma: matrix rebuilt */
    aug_elastic_field(ex, ey, alpha, sigma, 11, 0, 5, &scratch);
    assert_memory_equal(dx, ex, sizeof dx);
    aug_elastic_field(ex, ey, alpha, sigma, 11, 0, 6, &scratch);
    assert_true(memcmp(dx, ex, sizeof dx) != 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_noise_is_the_keyed_stream), cmocka_unit_test(test_gauss_matrix),
        cmocka_unit_test(test_smooth_matches_convolution), cmocka_unit_test(test_alpha_zero_is_identity),
        cmocka_unit_test(test_field_variance_and_effect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
