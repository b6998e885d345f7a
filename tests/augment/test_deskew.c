/* Tests for augment/deskew: an upright digit barely changes, a slanted stroke comes out upright, a blank image
 * stays blank, and deskew in a policy gives the same image as aug_deskew_u8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment.h"
#include "augment/deskew.h"
#include "aug_testutil.h"

static void test_upright_changes_little(void **state) {
    (void)state;
    uint8_t img[784] = {0}, out[784];
    draw_line(img, 13.5, 4, 13.5, 23); /* a "1" */
    draw_line(img, 11, 22, 16, 22);    /* with a foot, symmetric */
    double cx, cy;
    double s = aug_skew(img, &cx, &cy);
    assert_true(fabs(s) < 1e-9);
    assert_true(fabs(cx - 13.5) < 1e-9);
    aug_deskew_u8(out, img);
    long diff = 0, ink = 0;
    for (int i = 0; i < 784; i++) {
        diff += labs((long)out[i] - img[i]);
        ink += img[i];
    }
    assert_true(diff <= ink / 100); /* within 1% of the ink */
}

static void test_slanted_becomes_upright(void **state) {
    (void)state;
    uint8_t img[784] = {0}, out[784];
    draw_line(img, 18, 4, 9, 23); /* top leans right: x = 13.5 - 0.47 (y - 13.5) */
    double cx, cy, cx2, cy2;
    double s = aug_skew(img, &cx, &cy);
    assert_true(s < -0.4 && s > -0.55);
    aug_deskew_u8(out, img);
    double s2 = aug_skew(out, &cx2, &cy2);
    assert_true(fabs(s2) < 0.03);
    assert_true(fabs(cx2 - cx) < 0.3 && fabs(cy2 - cy) < 0.3); /* the centroid stays */
    /* the top and bottom of the stroke are now in the same column */
    int top = -1, bot = -1;
    for (int x = 0, best = -1; x < 28; x++)
        if (out[6 * 28 + x] > best) best = out[6 * 28 + x], top = x;
    for (int x = 0, best = -1; x < 28; x++)
        if (out[21 * 28 + x] > best) best = out[21 * 28 + x], bot = x;
    assert_true(abs(top - bot) <= 1);
}

static void test_blank_and_policy(void **state) {
    (void)state;
    uint8_t blank[784] = {0}, out[784];
    double cx, cy;
    assert_true(aug_skew(blank, &cx, &cy) == 0);
    aug_deskew_u8(out, blank);
    assert_memory_equal(out, blank, 784);
    /* preset "deskew" through the batch API equals aug_deskew_u8, for any seed */
    aug_policy *pol;
    dg_err err;
    assert_int_equal(aug_policy_load(&pol, "deskew", &err), 0);
    uint8_t img[784] = {0}, want[784], got[784];
    draw_line(img, 20, 3, 8, 25);
    draw_line(img, 8, 25, 14, 25);
    aug_deskew_u8(want, img);
    const uint8_t *src[1] = {img};
    uint32_t id = 5;
    aug_params p;
    aug_batch_u8(pol, 123, 0, &id, src, got, &p, 1);
    assert_memory_equal(got, want, 784);
    assert_true(p.skew < -0.1f);
    aug_batch_u8(pol, 999, 7, &id, src, got, NULL, 1);
    assert_memory_equal(got, want, 784);
    aug_policy_free(pol);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upright_changes_little),
        cmocka_unit_test(test_slanted_becomes_upright),
        cmocka_unit_test(test_blank_and_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
