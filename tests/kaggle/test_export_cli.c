/* Tests for kaggle/export_cli: digits-export's options (defaults, a missing or unknown format, missing output or
 * input, each a usage error naming what is wrong), its usage text, and runs on a tiny dataset written here (the
 * CSV text checked line by line, the .npy pair, the summary; a file that is not a dataset leaves no output). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_check.h"
#include "kaggle/export_cli.h"
#include "core/dg_cli.h"
#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "core/dg_npy.h"

#define TMP DIGITS_TEST_TMP "/export_cli_"

#define PARSE(o, err, ...) kg_export_cli_parse(ARGC("digits-export", __VA_ARGS__), ARGV("digits-export", __VA_ARGS__), \
                                               (o), (err))

static void test_parse(void **state) {
    (void)state;
    kg_export_cli_opts o;
    dg_err err = {{0}};
    assert_int_equal(PARSE(&o, &err, "--format", "csv", "-o", "out.csv", "in.npy"), DG_EXIT_OK);
    assert_int_equal(o.format, DG_FMT_CSV);
    assert_string_equal(o.output, "out.csv");
    assert_string_equal(o.input, "in.npy");
    assert_true(o.log == stderr);
    assert_int_equal(o.help, 0);
    assert_int_equal(PARSE(&o, &err, "in.npy", "-q", "-f", "idx", "--output", "o"), DG_EXIT_OK);
    assert_int_equal(o.format, DG_FMT_IDX);
    assert_null(o.log);
    assert_string_equal(o.input, "in.npy");
    assert_int_equal(PARSE(&o, &err, "-h"), DG_EXIT_OK);
    assert_int_equal(o.help, 1);
}

static void test_parse_errors(void **state) {
    (void)state;
    kg_export_cli_opts o;
    dg_err err;
    assert_int_equal(PARSE(&o, &err, "--format", "png", "-o", "x", "in.npy"), DG_EXIT_USAGE);
    assert_has(err.msg, "--format: expected csv, npy, idx or dataset, found \"png\"");
    assert_int_equal(PARSE(&o, &err, "-o", "x", "in.npy"), DG_EXIT_USAGE);
    assert_has(err.msg, "--format: expected csv, npy, idx or dataset, found nothing");
    assert_int_equal(PARSE(&o, &err, "-f", "npy", "in.npy"), DG_EXIT_USAGE);
    assert_has(err.msg, "expected -o PATH and one input dataset");
    assert_int_equal(PARSE(&o, &err, "-f", "npy", "-o", "x"), DG_EXIT_USAGE);
    assert_has(err.msg, "one input dataset");
    assert_int_equal(PARSE(&o, &err, "-f", "npy", "-o", "x", "a.npy", "b.npy"), DG_EXIT_USAGE);
    assert_has(err.msg, "one input dataset");
    assert_int_equal(PARSE(&o, &err, "--level", "9", "-f", "npy", "-o", "x", "a.npy"), DG_EXIT_USAGE);
    assert_has(err.msg, "unrecognized option '--level'");
    assert_int_equal(PARSE(&o, &err, "a.npy", "-f"), DG_EXIT_USAGE);
    assert_has(err.msg, "option requires an argument -- 'f'");
}

static void test_usage(void **state) {
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    kg_export_cli_usage(f);
    char *text = cli_check_drain(f);
    assert_has(text, "usage: digits-export --format csv|npy|idx|dataset -o PATH IN.npy");
    free(text);
}

static int pixel(int r, int p) { return (p * 5 + r * 41) % 256; }

static void write_dataset(const char *path, int n) {
    dg_err err;
    dg_dataset_writer w;
    uint8_t img[DG_PIXELS];
    assert_int_equal(dg_dataset_writer_open(&w, path, 1, &err), 0);
    for (int r = 0; r < n; r++) {
        for (int p = 0; p < DG_PIXELS; p++) img[p] = (uint8_t)pixel(r, p);
        assert_int_equal(dg_dataset_writer_add(&w, img, 9 - r, &err), 0);
    }
    assert_int_equal(dg_dataset_writer_commit(&w, &err), 0);
}

static void test_run_csv(void **state) {
    (void)state;
    kg_export_cli_opts o;
    dg_err err = {{0}};
    write_dataset(TMP "in.npy", 3);
    unlink(TMP "out.csv");
    assert_int_equal(PARSE(&o, &err, "-f", "csv", "-o", TMP "out.csv", TMP "in.npy"), DG_EXIT_OK);
    o.log = tmpfile();
    assert_non_null(o.log);
    assert_int_equal(kg_export_cli_run(&o, &err), DG_EXIT_OK);
    char *log = cli_check_drain(o.log);
    assert_has(log, "digits-export: " TMP "in.npy -> " TMP "out.csv: 3 labelled images (csv) in ");
    free(log);
    /* the expected text, built here from the same pixels */
    size_t cap = 4 * 785 * 8, len = 0;
    char *want = malloc(cap);
    assert_non_null(want);
    len += (size_t)snprintf(want + len, cap - len, "label");
    for (int p = 0; p < DG_PIXELS; p++) len += (size_t)snprintf(want + len, cap - len, ",pixel%d", p);
    want[len++] = '\n';
    for (int r = 0; r < 3; r++) {
        len += (size_t)snprintf(want + len, cap - len, "%d", 9 - r);
        for (int p = 0; p < DG_PIXELS; p++) len += (size_t)snprintf(want + len, cap - len, ",%d", pixel(r, p));
        want[len++] = '\n';
    }
    char *got;
    size_t n;
    assert_int_equal(dg_read_file(TMP "out.csv", &got, &n, &err), 0);
    assert_int_equal(n, len);
    assert_memory_equal(got, want, len);
    free(got);
    free(want);
    unlink(TMP "out.csv");
}

static void test_run_npy_and_errors(void **state) {
    (void)state;
    kg_export_cli_opts o;
    dg_err err = {{0}};
    write_dataset(TMP "in.npy", 4);
    assert_int_equal(PARSE(&o, &err, "-q", "-f", "npy", "-o", TMP "out.npy", TMP "in.npy"), DG_EXIT_OK);
    assert_int_equal(kg_export_cli_run(&o, &err), DG_EXIT_OK);
    dg_npy_file f;
    assert_int_equal(dg_npy_open(&f, TMP "out.npy", 1, &err), 0);
    assert_int_equal(f.h.ndim, 3);
    assert_int_equal(f.h.shape[0], 4);
    const uint8_t *img = f.data;
    for (int r = 0; r < 4; r++)
        for (int p = 0; p < DG_PIXELS; p++) assert_int_equal(img[r * DG_PIXELS + p], pixel(r, p));
    dg_npy_close(&f);
    assert_int_equal(dg_npy_open(&f, TMP "out-labels.npy", 1, &err), 0);
    assert_int_equal(f.h.shape[0], 4);
    for (int r = 0; r < 4; r++) assert_int_equal(((const uint8_t *)f.data)[r], 9 - r);
    dg_npy_close(&f);
    unlink(TMP "out.npy");
    unlink(TMP "out-labels.npy");
    /* not a dataset: fails naming it, nothing written */
    assert_int_equal(PARSE(&o, &err, "-q", "-f", "npy", "-o", TMP "bad.npy", DIGITS_FIXTURES "/ingest/good_train.csv"),
                     DG_EXIT_OK);
    assert_int_equal(kg_export_cli_run(&o, &err), DG_EXIT_FAIL);
    assert_has(err.msg, "good_train.csv");
    assert_false(dg_path_exists(TMP "bad.npy"));
    /* an output directory that does not exist: fails naming it */
    assert_int_equal(PARSE(&o, &err, "-q", "-f", "csv", "-o", TMP "no/such/dir.csv", TMP "in.npy"), DG_EXIT_OK);
    assert_int_equal(kg_export_cli_run(&o, &err), DG_EXIT_FAIL);
    assert_has(err.msg, "no/such/dir.csv");
    unlink(TMP "in.npy");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_run_csv),
        cmocka_unit_test(test_run_npy_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
