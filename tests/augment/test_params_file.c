/* Tests for augment/params_file: a .npy and a .jsonl written by the writer read back the same rows, and a .npy whose
 * shape makes its size check wrap around is rejected (found by tests/fuzz/fuzz_params_file's corpus entry
 * crash-n-wraps-size.npy: N = 2^62 + 1 records of 60 bytes "need" 60 bytes mod 2^64). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "augment/params_file.h"

static aug_row row_of(int i) {
    aug_row r;
    memset(&r, 0, sizeof r);
    r.src = (uint32_t)(i * 3);
    r.copy = i - 1;
    aug_params_identity(&r.p);
    r.p.m[2] = 0.1f * (float)i;
    r.p.alpha = (float)i;
    r.p.sigma = 4;
    r.p.seed = (i == 2) ? UINT64_MAX : (uint64_t)i; /* above 2^53: written as a string in .jsonl */
    r.p.epoch = 7;
    r.p.id = (uint32_t)i;
    return r;
}

static void roundtrip(const char *path) {
    dg_err err;
    aug_params_writer w;
    assert_int_equal(aug_params_writer_open(&w, path, &err), 0);
    for (int i = 0; i < 3; i++) {
        aug_row r = row_of(i);
        assert_int_equal(aug_params_writer_add(&w, &r, NULL, &err), 0);
    }
    assert_int_equal(aug_params_writer_commit(&w, &err), 0);
    aug_params_reader rd;
    assert_int_equal(aug_params_reader_open(&rd, path, &err), 0);
    assert_int_equal(rd.n, 3);
    aug_row got;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(aug_params_reader_next(&rd, &got, &err), 1);
        aug_row want = row_of(i);
        assert_int_equal(got.src, want.src);
        assert_int_equal(got.copy, want.copy);
        assert_true(got.p.seed == want.p.seed);
        assert_memory_equal(got.p.m, want.p.m, sizeof want.p.m);
        assert_true(got.p.alpha == want.p.alpha && got.p.sigma == want.p.sigma);
    }
    assert_int_equal(aug_params_reader_next(&rd, &got, &err), 0);
    aug_params_reader_close(&rd);
}

static void test_roundtrip_npy(void **state) {
    (void)state;
    roundtrip(DIGITS_TEST_TMP "/params_rt.npy");
}

static void test_roundtrip_jsonl(void **state) {
    (void)state;
    roundtrip(DIGITS_TEST_TMP "/params_rt.jsonl");
}

static void test_rejects_shape_that_wraps(void **state) {
    (void)state;
    dg_err err;
    aug_params_reader rd;
    assert_int_equal(aug_params_reader_open(&rd, DIGITS_SOURCE_DIR "/tests/fuzz/corpus/params_file/crash-n-wraps-size.npy",
                                            &err),
                     -1);
    assert_non_null(strstr(err.msg, "more than"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_npy),
        cmocka_unit_test(test_roundtrip_jsonl),
        cmocka_unit_test(test_rejects_shape_that_wraps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
