/* Tests for core/dg_dataset and dg_npy: write/read round trip, atomic output, rejection of foreign files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/dg_dataset.h"
#include "core/dg_npy.h"

static void test_roundtrip_labelled(void **state) {
    (void)state;
    const char *path = DIGITS_TEST_TMP "/rt.npy";
    dg_err err;
    dg_dataset_writer w;
    assert_int_equal(dg_dataset_writer_open(&w, path, 1, &err), 0);
    uint8_t img[DG_PIXELS];
    for (int i = 0; i < 37; i++) {
        for (int p = 0; p < DG_PIXELS; p++) img[p] = (uint8_t)(p * 7 + i);
        assert_int_equal(dg_dataset_writer_add(&w, img, i % 10, &err), 0);
    }
    assert_false(dg_path_exists(path)); /* nothing under the final name before commit */
    assert_int_equal(dg_dataset_writer_commit(&w, &err), 0);
    dg_dataset ds;
    assert_int_equal(dg_dataset_open(&ds, path, &err), 0);
    assert_int_equal(ds.n, 37);
    assert_int_equal(ds.has_labels, 1);
    for (int i = 0; i < 37; i++) {
        assert_int_equal(dg_dataset_label(&ds, (size_t)i), i % 10);
        const uint8_t *im = dg_dataset_image(&ds, (size_t)i);
        for (int p = 0; p < DG_PIXELS; p++) assert_int_equal(im[p], (uint8_t)(p * 7 + i));
    }
    dg_dataset_close(&ds);
    unlink(path);
}

static void test_rejects_bad_label_on_write(void **state) {
    (void)state;
    dg_err err;
    dg_dataset_writer w;
    uint8_t img[DG_PIXELS] = {0};
    assert_int_equal(dg_dataset_writer_open(&w, DIGITS_TEST_TMP "/bad.npy", 1, &err), 0);
    assert_int_equal(dg_dataset_writer_add(&w, img, 10, &err), -1);
    assert_non_null(strstr(err.msg, "label 10"));
    dg_dataset_writer_abort(&w);
    assert_false(dg_path_exists(DIGITS_TEST_TMP "/bad.npy"));
}

static void test_rejects_foreign_and_truncated(void **state) {
    (void)state;
    dg_err err;
    dg_dataset ds;
    /* A valid .npy that is not a dataset. */
    float v[6] = {1, 2, 3, 4, 5, 6};
    size_t shape[2] = {2, 3};
    assert_int_equal(dg_npy_save(DIGITS_TEST_TMP "/f.npy", "<f4", shape, 2, v, 4, &err), 0);
    assert_int_equal(dg_dataset_open(&ds, DIGITS_TEST_TMP "/f.npy", &err), -1);
    assert_non_null(strstr(err.msg, "not a digits dataset"));
    /* A truncated dataset. */
    dg_dataset_writer w;
    uint8_t img[DG_PIXELS] = {0};
    assert_int_equal(dg_dataset_writer_open(&w, DIGITS_TEST_TMP "/t.npy", 0, &err), 0);
    for (int i = 0; i < 3; i++) assert_int_equal(dg_dataset_writer_add(&w, img, -1, &err), 0);
    assert_int_equal(dg_dataset_writer_commit(&w, &err), 0);
    assert_int_equal(truncate(DIGITS_TEST_TMP "/t.npy", 128 + 2 * DG_PIXELS + 5), 0);
    assert_int_equal(dg_dataset_open(&ds, DIGITS_TEST_TMP "/t.npy", &err), -1);
    assert_non_null(strstr(err.msg, "truncated"));
    /* Garbage. */
    assert_int_equal(dg_write_file_atomic(DIGITS_TEST_TMP "/g.npy", "hello world", 11, &err), 0);
    assert_int_equal(dg_dataset_open(&ds, DIGITS_TEST_TMP "/g.npy", &err), -1);
    assert_non_null(strstr(err.msg, "not a .npy"));
    assert_int_equal(dg_dataset_open(&ds, DIGITS_TEST_TMP "/missing.npy", &err), -1);
    assert_non_null(strstr(err.msg, "missing.npy"));
}

static void test_npy_header_parse(void **state) {
    (void)state;
    dg_err err;
    dg_npy h;
    const char hdr[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }";
    unsigned char buf[128];
    memset(buf, ' ', sizeof buf);
    memcpy(buf, hdr, sizeof hdr - 1);
    buf[127] = '\n';
    assert_int_equal(dg_npy_parse(buf, sizeof buf, &h, "x", &err), 0);
    assert_int_equal(h.ndim, 1);
    assert_int_equal(h.shape[0], 3);
    assert_true(dg_npy_is(&h, "<f4"));
    assert_int_equal(h.data_offset, 128);
    buf[20] = 'X'; /* corrupt a key */
    assert_int_equal(dg_npy_parse(buf, sizeof buf, &h, "x", &err), -1);
}

/* A version 1.0 .npy header with dictionary `dict`, padded to 128 bytes, into buf; returns 128. */
static size_t npy_header(unsigned char *buf, const char *dict, size_t dict_len) {
    memset(buf, ' ', 128);
    memcpy(buf, "\x93NUMPY\x01\x00\x76\x00", 10);
    memcpy(buf + 10, dict, dict_len);
    buf[127] = '\n';
    return 128;
}

/* Found by tests/fuzz/fuzz_npy (corpus/npy/crash-nul-in-descr): a NUL inside the quoted descr was copied into
 * h.descr, which then ended early ("'\x01") and no longer said what the file held. The header text is ASCII. */
static void test_npy_header_rejects_control_characters(void **state) {
    (void)state;
    dg_err err;
    dg_npy h;
    unsigned char buf[128];
    static const char dict[] = "{'descr': '\x01\0\0|u1', 'fortran_order': False, 'shape': (2, 3), }";
    npy_header(buf, dict, sizeof dict - 1);
    assert_int_equal(dg_npy_parse(buf, sizeof buf, &h, "x.npy", &err), -1);
    assert_non_null(strstr(err.msg, "x.npy: control character 0x01"));
    /* Tabs and newlines are whitespace, not control characters. */
    static const char ws[] = "{'descr':\t'|u1',\n'fortran_order': False, 'shape': (2, 3), }";
    npy_header(buf, ws, sizeof ws - 1);
    assert_int_equal(dg_npy_parse(buf, sizeof buf, &h, "x.npy", &err), 0);
    assert_int_equal(dg_npy_count(&h), 6);
}

/* A shape whose element count times the record size wraps around size_t passed the callers' size checks: a labelled
 * dataset with N = 785^-1 mod 2^64 and one byte of records has N * 785 == 1 (mod 2^64), so dg_dataset_open accepted
 * it and read labels far past the file (corpus/dataset/crash-n-wraps-size). The parser now caps the count. */
static void test_npy_shape_cannot_wrap_a_size(void **state) {
    (void)state;
    dg_err err;
    dg_npy h;
    unsigned char buf[129];
    char dict[128];
    int k = snprintf(dict, sizeof dict, "{'descr': %s, 'fortran_order': False, 'shape': (%llu,), }",
                     DG_DESCR_LABELLED, 16073341333015711217ull);
    npy_header(buf, dict, (size_t)k);
    assert_true(16073341333015711217ull * 785ull == 1ull); /* the premise: it wraps to the one byte below */
    buf[128] = 3; /* one byte of "records": a valid label */
    assert_int_equal(dg_write_file_atomic(DIGITS_TEST_TMP "/wrap.npy", buf, sizeof buf, &err), 0);
    dg_dataset ds;
    assert_int_equal(dg_dataset_open(&ds, DIGITS_TEST_TMP "/wrap.npy", &err), -1);
    assert_non_null(strstr(err.msg, "more than"));
    /* The same through dg_npy_parse, for a plain 2-D shape (2^62 x 4 elements). */
    k = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%llu, 4), }", 1ull << 62);
    npy_header(buf, dict, (size_t)k);
    assert_int_equal(dg_npy_parse(buf, 128, &h, "x.npy", &err), -1);
    /* Large but possible shapes still parse; a zero dimension does not excuse a huge other one (a caller may multiply
     * that one by a record size), but an empty array of possible rows is fine. */
    k = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%llu, 4), }", 1ull << 40);
    npy_header(buf, dict, (size_t)k);
    assert_int_equal(dg_npy_parse(buf, 128, &h, "x.npy", &err), 0);
    k = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, %llu), }", 1ull << 62);
    npy_header(buf, dict, (size_t)k);
    assert_int_equal(dg_npy_parse(buf, 128, &h, "x.npy", &err), -1);
    k = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, %llu), }", 1ull << 40);
    npy_header(buf, dict, (size_t)k);
    assert_int_equal(dg_npy_parse(buf, 128, &h, "x.npy", &err), 0);
    assert_int_equal(dg_npy_count(&h), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_labelled),
        cmocka_unit_test(test_rejects_bad_label_on_write),
        cmocka_unit_test(test_rejects_foreign_and_truncated),
        cmocka_unit_test(test_npy_header_parse),
        cmocka_unit_test(test_npy_header_rejects_control_characters),
        cmocka_unit_test(test_npy_shape_cannot_wrap_a_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
