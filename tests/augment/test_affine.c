/* Tests for augment/affine: exact identity, quarter turns and integer shifts; the warp against its naive
 * reference; the AVX2 and baseline warps bit-identical. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "augment/affine.h"
#include "augment/augment.h"
#include "core/dg_rng.h"
#include "aug_testutil.h"

/* params with the backward map of forward map f. */
static aug_params params_of(const double f[6]) {
    aug_params p;
    aug_params_identity(&p);
    double m[6];
    assert_int_equal(aug_affine_invert(m, f), 0);
    for (int i = 0; i < 6; i++) p.m[i] = (float)m[i];
    return p;
}

static void test_identity_is_exact(void **state) {
    (void)state;
    aug_scratch s;
    aug_scratch_init(&s);
    uint8_t img[784], out[784];
    float f[784];
    double fw[6];
    aug_affine_identity(fw);
    aug_affine_rotate(fw, 0);
    aug_affine_scale(fw, 1, 1);
    aug_affine_shift(fw, 0, 0);
    aug_params p = params_of(fw);
    assert_true(aug_affine_is_identity(p.m));
    for (int k = 0; k < 5; k++) {
        synth_digit(img, k);
        aug_apply_u8(out, img, &p, &s);
        assert_memory_equal(out, img, 784);
        aug_apply_f32(f, img, &p, &s);
        for (int i = 0; i < 784; i++) assert_true(f[i] == (float)img[i] / 255.0f);
        /* The warp itself (not just the fast path) is exact at the identity. */
        float pad[AUG_PAD * AUG_PAD], w[784];
        aug_pad_u8(pad, img);
        aug_warp(w, pad, p.m, NULL, NULL);
        for (int i = 0; i < 784; i++) assert_true(w[i] == (float)img[i]);
    }
}

static void test_rot90_is_numpy_rot90(void **state) {
    (void)state;
    aug_scratch s;
    aug_scratch_init(&s);
    uint8_t img[784], out[784], want[784];
    synth_digit(img, 3);
    for (int quarter = 1; quarter <= 3; quarter++) {
        double fw[6];
        aug_affine_identity(fw);
        aug_affine_rotate(fw, 90.0 * quarter);
        aug_params p = params_of(fw);
        aug_apply_u8(out, img, &p, &s);
        /* numpy.rot90(img, quarter): counter-clockwise; rot90 once is out[i][j] = img[j][27 - i]. */
        memcpy(want, img, 784);
        for (int q = 0; q < quarter; q++) {
            uint8_t t[784];
            for (int i = 0; i < 28; i++)
                for (int j = 0; j < 28; j++) t[i * 28 + j] = want[j * 28 + 27 - i];
            memcpy(want, t, 784);
        }
        assert_memory_equal(out, want, 784);
    }
    /* -90 is 270 and 450 is 90. */
    double a[6], b[6];
    aug_affine_identity(a);
    aug_affine_rotate(a, -90);
    aug_affine_identity(b);
    aug_affine_rotate(b, 270);
    for (int i = 0; i < 6; i++) assert_true(a[i] == b[i]);
}

static void test_integer_shift_is_exact(void **state) {
    (void)state;
    aug_scratch s;
    aug_scratch_init(&s);
    uint8_t img[784], out[784];
    synth_digit(img, 1);
    const int shifts[][2] = {{3, -2}, {-5, 4}, {0, 1}, {27, 0}, {-28, 3}};
    for (size_t c = 0; c < sizeof shifts / sizeof shifts[0]; c++) {
        int dx = shifts[c][0], dy = shifts[c][1];
        double fw[6];
        aug_affine_identity(fw);
        aug_affine_shift(fw, dx, dy);
        aug_params p = params_of(fw);
        aug_apply_u8(out, img, &p, &s);
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++) {
                int sx = x - dx, sy = y - dy;
                int want = sx >= 0 && sx < 28 && sy >= 0 && sy < 28 ? img[sy * 28 + sx] : 0;
                assert_int_equal(out[y * 28 + x], want);
            }
    }
}

static void test_half_pixel_shift_averages(void **state) {
    (void)state;
    uint8_t img[784] = {0};
    img[10 * 28 + 10] = 200;
    float pad[AUG_PAD * AUG_PAD], out[784];
    aug_pad_u8(pad, img);
    float m[6] = {1, 0, -0.5f, 0, 1, 0}; /* content moves right by half a pixel */
    aug_warp(out, pad, m, NULL, NULL);
    assert_true(out[10 * 28 + 10] == 100.0f);
    assert_true(out[10 * 28 + 11] == 100.0f);
    double total = 0;
    for (int i = 0; i < 784; i++) total += out[i];
    assert_true(total == 200.0);
}

static void test_compose_and_invert(void **state) {
    (void)state;
    double f[6], g[6], h[6];
    aug_affine_identity(f);
    aug_affine_rotate(f, 33);
    aug_affine_scale(f, 1.2, 0.8);
    aug_affine_shear(f, 10);
    aug_affine_shift(f, 1.5, -2);
    assert_int_equal(aug_affine_invert(g, f), 0);
    aug_affine_compose(h, g, f);
    assert_true(fabs(h[0] - 1) < 1e-12 && fabs(h[4] - 1) < 1e-12);
    assert_true(fabs(h[1]) < 1e-12 && fabs(h[2]) < 1e-12 && fabs(h[3]) < 1e-12 && fabs(h[5]) < 1e-12);
    /* The centre is fixed by rotation and scaling. */
    aug_affine_identity(f);
    aug_affine_rotate(f, 71);
    aug_affine_scale(f, 1.3, 0.7);
    assert_true(fabs(f[0] * AUG_CENTRE + f[1] * AUG_CENTRE + f[2] - AUG_CENTRE) < 1e-12);
    assert_true(fabs(f[3] * AUG_CENTRE + f[4] * AUG_CENTRE + f[5] - AUG_CENTRE) < 1e-12);
    /* Rotation by +10 degrees turns a point right of the centre upwards (counter-clockwise on screen). */
    aug_affine_identity(f);
    aug_affine_rotate(f, 10);
    double y = f[3] * (AUG_CENTRE + 10) + f[4] * AUG_CENTRE + f[5];
    assert_true(y < AUG_CENTRE - 1.7 && y > AUG_CENTRE - 1.8); /* 10 sin(10 deg) = 1.736 */
    /* Singular maps are refused. */
    double z[6] = {1, 2, 0, 2, 4, 0};
    assert_int_equal(aug_affine_invert(g, z), -1);
}

static void random_case(dg_rng *r, float m[6], float *dx, float *dy) {
    double f[6], b[6];
    aug_affine_identity(f);
    aug_affine_rotate(f, dg_rng_range(r, -40, 40));
    aug_affine_scale(f, dg_rng_range(r, 0.6f, 1.5f), dg_rng_range(r, 0.6f, 1.5f));
    aug_affine_shear(f, dg_rng_range(r, -20, 20));
    aug_affine_shift(f, dg_rng_range(r, -8, 8), dg_rng_range(r, -8, 8));
    assert_int_equal(aug_affine_invert(b, f), 0);
    for (int i = 0; i < 6; i++) m[i] = (float)b[i];
    for (int i = 0; i < 784; i++) {
        dx[i] = dg_rng_range(r, -6, 6);
        dy[i] = dg_rng_range(r, -6, 6);
    }
}

static void test_warp_matches_reference(void **state) {
    (void)state;
    dg_rng r = dg_rng_make(5, DG_RNG_USER, 0, 0);
    uint8_t img[784];
    float pad[AUG_PAD * AUG_PAD], fast[784], base[784], ref[784], m[6], dx[784], dy[784];
    double worst = 0;
    for (int c = 0; c < 200; c++) {
        synth_digit(img, c);
        aug_pad_u8(pad, img);
        random_case(&r, m, dx, dy);
        int field = c % 2;
        aug_warp(fast, pad, m, field ? dx : NULL, field ? dy : NULL);
        aug_warp_scalar(base, pad, m, field ? dx : NULL, field ? dy : NULL);
        aug_warp_ref(ref, img, m, field ? dx : NULL, field ? dy : NULL);
        assert_memory_equal(fast, base, sizeof fast); /* AVX2 and baseline: bit-identical */
        for (int i = 0; i < 784; i++) {
            double d = fabs((double)fast[i] - ref[i]);
            if (d > worst) worst = d;
        }
    }
    /* float vs double arithmetic only (pixels are 0..255) */
    assert_true(worst < 0.01);
    /* far outside: zeros */
    float far[6] = {1, 0, 1000, 0, 1, -1000};
    aug_warp(fast, pad, far, NULL, NULL);
    for (int i = 0; i < 784; i++) assert_true(fast[i] == 0.0f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_is_exact),      cmocka_unit_test(test_rot90_is_numpy_rot90),
        cmocka_unit_test(test_integer_shift_is_exact), cmocka_unit_test(test_half_pixel_shift_averages),
        cmocka_unit_test(test_compose_and_invert),     cmocka_unit_test(test_warp_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
