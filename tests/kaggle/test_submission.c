/* Tests for kaggle/submission: the exact Kaggle format, the checks, and that a bad submission is never written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kaggle/submission.h"
#include "core/dg_file.h"

#define TMP DIGITS_TEST_TMP "/kg_sub"

static void test_write_exact_bytes(void **state) {
    (void)state;
    dg_err err;
    uint8_t labels[4] = {7, 0, 9, 3};
    const char *path = TMP "_ok.csv";
    unlink(path);
    assert_int_equal(kg_submission_write(path, labels, 4, 4, &err), 0);
    char *text;
    size_t n;
    assert_int_equal(dg_read_file(path, &text, &n, &err), 0);
    assert_string_equal(text, "ImageId,Label\n1,7\n2,0\n3,9\n4,3\n");
    free(text);
    size_t rows, counts[10];
    assert_int_equal(kg_submission_check_file(path, 4, 0, &rows, counts, &err), 0);
    assert_int_equal(rows, 4);
    assert_int_equal(counts[7], 1);
    assert_int_equal(counts[0], 1);
    assert_int_equal(counts[5], 0);
    unlink(path);
}

static void test_write_many_rows_in_order(void **state) {
    (void)state;
    dg_err err;
    enum { N = 10000 };
    uint8_t *labels = malloc(N);
    for (int i = 0; i < N; i++) labels[i] = (uint8_t)((i * 7) % 10);
    const char *path = TMP "_big.csv";
    assert_int_equal(kg_submission_write(path, labels, N, 0, &err), 0);
    size_t rows, counts[10];
    assert_int_equal(kg_submission_check_file(path, N, 0, &rows, counts, &err), 0);
    assert_int_equal(rows, N);
    for (int k = 0; k < 10; k++) assert_int_equal(counts[k], N / 10);
    /* the last line is "10000,3" */
    char *text;
    size_t n;
    assert_int_equal(dg_read_file(path, &text, &n, &err), 0);
    assert_string_equal(text + n - 8, "10000,3\n");
    free(text);
    free(labels);
    unlink(path);
}

static void test_rejects_wrong_count_and_label_writes_nothing(void **state) {
    (void)state;
    dg_err err;
    uint8_t labels[3] = {1, 2, 3};
    const char *path = TMP "_bad.csv";
    unlink(path);
    assert_int_equal(kg_submission_write(path, labels, 3, 28000, &err), -1);
    assert_non_null(strstr(err.msg, "28000"));
    assert_false(dg_path_exists(path));
    labels[1] = 10;
    assert_int_equal(kg_submission_write(path, labels, 3, 3, &err), -1);
    assert_non_null(strstr(err.msg, "label 10"));
    assert_false(dg_path_exists(path));
    assert_int_equal(kg_submission_write(path, labels, 0, 0, &err), -1);
    assert_false(dg_path_exists(path));
    /* an existing good file is left alone by a failed write */
    uint8_t good[2] = {4, 5};
    assert_int_equal(kg_submission_write(path, good, 2, 2, &err), 0);
    assert_int_equal(kg_submission_write(path, labels, 3, 2, &err), -1);
    size_t rows;
    assert_int_equal(kg_submission_check_file(path, 2, 0, &rows, NULL, &err), 0);
    assert_int_equal(rows, 2);
    unlink(path);
}

static int check(const char *text, size_t expect, int crlf, dg_err *err) {
    return kg_submission_check(text, strlen(text), expect, crlf, "s.csv", NULL, NULL, err);
}

static void test_check_rejects_malformed(void **state) {
    (void)state;
    dg_err err;
    assert_int_equal(check("ImageId,Label\n1,0\n2,5\n", 2, 0, &err), 0);
    assert_int_equal(check("ImageId,Label\n1,0\n2,5\n", 3, 0, &err), -1);
    assert_non_null(strstr(err.msg, "2 rows; expected 3"));
    assert_int_equal(check("imageid,label\n1,0\n", 0, 0, &err), -1);
    assert_non_null(strstr(err.msg, "s.csv:1: header"));
    assert_int_equal(check("ImageId,Label\n1,0\n3,5\n", 0, 0, &err), -1);
    assert_non_null(strstr(err.msg, "s.csv:3: ImageId 3; expected 2"));
    assert_int_equal(check("ImageId,Label\n0,0\n", 0, 0, &err), -1);
    assert_non_null(strstr(err.msg, "s.csv:2:"));
    assert_int_equal(check("ImageId,Label\n1,10\n", 0, 0, &err), -1);
    assert_non_null(strstr(err.msg, "label L in 0..9"));
    assert_int_equal(check("ImageId,Label\n1,a\n", 0, 0, &err), -1);
    assert_int_equal(check("ImageId,Label\n1,1", 0, 0, &err), -1);
    assert_non_null(strstr(err.msg, "no line end"));
    assert_int_equal(check("ImageId,Label\n", 0, 0, &err), -1);
    assert_non_null(strstr(err.msg, "no rows"));
    assert_int_equal(check("ImageId,Label\n1,1\n\n", 0, 0, &err), -1);
    assert_int_equal(check("ImageId,Label\n01,1\n", 0, 0, &err), -1);
    assert_int_equal(check("ImageId,Label\n1, 1\n", 0, 0, &err), -1);
    /* CRLF only where allowed (a sample submission someone else wrote) */
    assert_int_equal(check("ImageId,Label\r\n1,0\r\n", 1, 0, &err), -1);
    assert_non_null(strstr(err.msg, "CRLF"));
    assert_int_equal(check("ImageId,Label\r\n1,0\r\n", 1, 1, &err), 0);
}

static void test_sample_rows(void **state) {
    (void)state;
    dg_err err;
    size_t n = 0;
    assert_int_equal(kg_sample_rows(DIGITS_FIXTURES "/kaggle/sample_submission.csv", &n, &err), 0);
    assert_int_equal(n, 12);
    assert_int_equal(kg_sample_rows(DIGITS_FIXTURES "/kaggle/missing.csv", &n, &err), -1);
    assert_non_null(strstr(err.msg, "missing.csv"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_exact_bytes),
        cmocka_unit_test(test_write_many_rows_in_order),
        cmocka_unit_test(test_rejects_wrong_count_and_label_writes_nothing),
        cmocka_unit_test(test_check_rejects_malformed),
        cmocka_unit_test(test_sample_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
