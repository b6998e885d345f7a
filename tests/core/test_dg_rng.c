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

static void test_distributions(void **state) {
    (void)state;
    dg_rng r = dg_rng_make(7, DG_RNG_USER, 0, 0);
    const int n = 200000;
    double su = 0, sn = 0, sn2 = 0;
    int counts[10] = {0};
    for (int i = 0; i < n; i++) {
        float u = dg_rng_uniform(&r);
        assert_true(u >= 0.0f && u < 1.0f);
        su += u;
        float z = dg_rng_normal(&r);
        assert_true(isfinite(z));
        sn += z;
        sn2 += (double)z * z;
        counts[dg_rng_below(&r, 10)]++;
    }
    assert_true(fabs(su / n - 0.5) < 0.005);
    assert_true(fabs(sn / n) < 0.01);
    assert_true(fabs(sn2 / n - 1.0) < 0.02);
    for (int k = 0; k < 10; k++) assert_true(abs(counts[k] - n / 10) < n / 100);
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
