/* Tests for core/dg_rng: Philox4x32-10 known-answer vectors (Random123's kat_vectors) and the draws. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dg_rng.h"

static void test_philox_known_answers(void **state) {
    (void)state;
    struct { uint32_t ctr[4], key[2], out[4]; } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
        uint32_t out[4];
        dg_philox4x32(kat[i].ctr, kat[i].key, out);
        for (int j = 0; j < 4; j++) assert_int_equal(out[j], kat[i].out[j]);
    }
}

static void test_streams_are_keyed(void **state) {
    (void)state;
    dg_rng a = dg_rng_make(42, DG_RNG_AUGMENT, 3, 17), b = dg_rng_make(42, DG_RNG_AUGMENT, 3, 17);
    dg_rng c = dg_rng_make(42, DG_RNG_AUGMENT, 3, 18), d = dg_rng_make(43, DG_RNG_AUGMENT, 3, 17);
    int same_c = 0, same_d = 0;
    for (int i = 0; i < 100; i++) {
        uint32_t x = dg_rng_u32(&a);
        assert_int_equal(x, dg_rng_u32(&b));
        same_c += x == dg_rng_u32(&c);
        same_d += x == dg_rng_u32(&d);
    }
    assert_true(same_c < 3 && same_d < 3);
}

/* Pearson's chi-square statistic of counts against equal expected counts n / k. */
static double chi2_equal(const long *counts, int k, long n) {
    double e = (double)n / k, x = 0;
    for (int i = 0; i < k; i++) x += (counts[i] - e) * (counts[i] - e) / e;
    return x;
}

/* The draws follow their distributions. The seed is fixed, so each check gives the same answer every run; the bounds
 * are what a correct generator passes at all but a small fraction of seeds:
 *   histograms: chi-square of equiprobable bins under the 0.999 quantile of chi-square with bins-1 degrees of
 *   freedom (df 7: 24.322, df 9: 27.877, df 15: 37.697), so p = 0.001 per histogram;
 *   means: within 5 standard errors (p = 6e-7 each): uniform sd sqrt(1/12), normal sd 1, z^2 sd sqrt(2).
 * A bin 1% off its share (200 of 20000 draws) moves chi-square by about 20 and fails. */
static void test_distributions(void **state) {
    (void)state;
    dg_rng r = dg_rng_make(7, DG_RNG_USER, 0, 0);
    const long n = 200000;
    /* the octiles of the standard normal: 8 bins of probability 1/8 each */
    static const double octile[7] = {-1.1503493803760079, -0.6744897501960817, -0.3186393639643752, 0.0,
                                     0.3186393639643752,  0.6744897501960817,  1.1503493803760079};
    double su = 0, sn = 0, sn2 = 0;
    long below10[10] = {0}, uni16[16] = {0}, norm8[8] = {0};
    for (long i = 0; i < n; i++) {
        float u = dg_rng_uniform(&r);
        assert_true(u >= 0.0f && u < 1.0f);
        su += u;
        uni16[(int)(u * 16.0f)]++;
        float z = dg_rng_normal(&r);
        assert_true(isfinite(z));
        sn += z;
        sn2 += (double)z * z;
        int b = 0;
        while (b < 7 && z >= octile[b]) b++;
        norm8[b]++;
        below10[dg_rng_below(&r, 10)]++;
    }
    const double se = 1.0 / sqrt((double)n);
    if (!(fabs(su / n - 0.5) < 5 * sqrt(1.0 / 12) * se)) fail_msg("uniform mean %.6f", su / n);
    if (!(fabs(sn / n) < 5 * se)) fail_msg("normal mean %.6f", sn / n);
    if (!(fabs(sn2 / n - 1.0) < 5 * sqrt(2.0) * se)) fail_msg("normal second moment %.6f", sn2 / n);
    double x;
    if (!((x = chi2_equal(below10, 10, n)) < 27.877)) fail_msg("dg_rng_below(10): chi-square %.2f, df 9", x);
    if (!((x = chi2_equal(uni16, 16, n)) < 37.697)) fail_msg("dg_rng_uniform, 16 bins: chi-square %.2f, df 15", x);
    if (!((x = chi2_equal(norm8, 8, n)) < 24.322)) fail_msg("dg_rng_normal, octiles: chi-square %.2f, df 7", x);
}

static void test_shuffle_is_permutation(void **state) {
    (void)state;
    uint32_t idx[1000];
    for (uint32_t i = 0; i < 1000; i++) idx[i] = i;
    dg_rng r = dg_rng_make(1, DG_RNG_SHUFFLE, 0, 0);
    dg_rng_shuffle_u32(&r, idx, 1000);
    int seen[1000] = {0}, moved = 0;
    for (uint32_t i = 0; i < 1000; i++) {
        assert_true(idx[i] < 1000);
        seen[idx[i]]++;
        moved += idx[i] != i;
    }
    for (int i = 0; i < 1000; i++) assert_int_equal(seen[i], 1);
    assert_true(moved > 900);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_known_answers),
        cmocka_unit_test(test_streams_are_keyed),
        cmocka_unit_test(test_distributions),
        cmocka_unit_test(test_shuffle_is_permutation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
