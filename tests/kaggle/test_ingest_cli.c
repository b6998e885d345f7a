/* Tests for kaggle/ingest_cli: digits-ingest's options (defaults, every bad value a usage error naming the
 * option, parsing twice), its usage text, and a run on a CSV written here (the pixels read back, the summary,
 * a rejected file naming file:line:column and leaving no output). */
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
#include "kaggle/ingest_cli.h"
#include "core/dg_cli.h"
#include "core/dg_dataset.h"
#include "core/dg_file.h"

#define TMP DIGITS_TEST_TMP "/ingest_cli_"

#define PARSE(o, err, ...) kg_ingest_cli_parse(ARGC("digits-ingest", __VA_ARGS__), ARGV("digits-ingest", __VA_ARGS__), \
                                               (o), (err))

static void test_parse_defaults(void **state) {
    (void)state;
    kg_ingest_cli_opts o;
    dg_err err = {{0}};
    assert_int_equal(PARSE(&o, &err, "-o", "out.npy", "in.csv"), DG_EXIT_OK);
    assert_string_equal(o.input, "in.csv");
    assert_string_equal(o.output, "out.npy");
    assert_int_equal(o.ingest.expect, KG_EXPECT_AUTO);
    assert_int_equal(o.ingest.threads, 0);
    assert_int_equal(o.ingest.reference, 0);
    assert_true(o.log == stderr);
    assert_int_equal(o.help, 0);
    /* every option; the input may come first (getopt permutes) */
    assert_int_equal(PARSE(&o, &err, "in.csv", "--expect", "test", "-t", "3", "--reference", "-q", "--output", "x"),
                     DG_EXIT_OK);
    assert_string_equal(o.input, "in.csv");
    assert_string_equal(o.output, "x");
    assert_int_equal(o.ingest.expect, KG_EXPECT_TEST);
    assert_int_equal(o.ingest.threads, 3);
    assert_int_equal(o.ingest.reference, 1);
    assert_null(o.log);
    /* a second parse starts from the defaults again */
    assert_int_equal(PARSE(&o, &err, "-o", "y", "b.csv"), DG_EXIT_OK);
    assert_int_equal(o.ingest.reference, 0);
    assert_true(o.log == stderr);
    assert_string_equal(o.input, "b.csv");
    /* --help needs nothing else */
    assert_int_equal(PARSE(&o, &err, "--help"), DG_EXIT_OK);
    assert_int_equal(o.help, 1);
}

static void test_parse_errors(void **state) {
    (void)state;
    kg_ingest_cli_opts o;
    dg_err err;
    static const struct {
        const char *a, *b, *want;
    } cases[] = {
        {"--expect", "maybe", "--expect: expected train, test or auto, found \"maybe\""},
        {"-e", "", "--expect"},
        {"--threads", "0", "--threads: expected an integer 1..1024, found \"0\""},
        {"--threads", "1025", "--threads"},
        {"-t", "2x", "found \"2x\""},
        {"--bogus", "1", "unrecognized option '--bogus'"},
        {"-z", "1", "invalid option -- 'z'"},
        {"--quiet=1", "1", "option '--quiet' doesn't allow an argument"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        err.msg[0] = '\0';
        assert_int_equal(PARSE(&o, &err, "-o", "out.npy", (char *)cases[i].a, (char *)cases[i].b, "in.csv"), DG_EXIT_USAGE);
        assert_has(err.msg, cases[i].want);
    }
    assert_int_equal(PARSE(&o, &err, "in.csv", "-o"), DG_EXIT_USAGE);
    assert_has(err.msg, "option requires an argument -- 'o'");
    assert_int_equal(PARSE(&o, &err, "in.csv"), DG_EXIT_USAGE); /* no -o */
    assert_has(err.msg, "expected -o OUT.npy and one input CSV");
    assert_int_equal(PARSE(&o, &err, "-o", "x.npy"), DG_EXIT_USAGE); /* no input */
    assert_has(err.msg, "one input CSV");
    assert_int_equal(PARSE(&o, &err, "-o", "x.npy", "a.csv", "b.csv"), DG_EXIT_USAGE);
    assert_has(err.msg, "one input CSV");
}

static void test_usage(void **state) {
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    kg_ingest_cli_usage(f);
    char *text = cli_check_drain(f), want[64];
    assert_has(text, "usage: digits-ingest");
    assert_has(text, "or auto (from the header) [auto]");
    snprintf(want, sizeof want, "[%d = OMP_NUM_THREADS", dg_default_threads());
    assert_has(text, want);
    free(text);
}

static int pixel(int r, int p) { return (p * 7 + r * 13) % 256; }

/* Write a train.csv of n rows, labels (r * 3) % 10, pixels pixel(r, p). */
static void write_csv(const char *path, int n) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("label", f);
    for (int p = 0; p < DG_PIXELS; p++) fprintf(f, ",pixel%d", p);
    fputc('\n', f);
    for (int r = 0; r < n; r++) {
        fprintf(f, "%d", (r * 3) % 10);
        for (int p = 0; p < DG_PIXELS; p++) fprintf(f, ",%d", pixel(r, p));
        fputc('\n', f);
    }
    assert_int_equal(fclose(f), 0);
}

static void test_run(void **state) {
    (void)state;
    kg_ingest_cli_opts o;
    dg_err err = {{0}};
    write_csv(TMP "in.csv", 5);
    unlink(TMP "out.npy");
    assert_int_equal(PARSE(&o, &err, "--expect", "train", "-t", "2", "-o", TMP "out.npy", TMP "in.csv"), DG_EXIT_OK);
    o.log = tmpfile();
    assert_non_null(o.log);
    assert_int_equal(kg_ingest_cli_run(&o, &err), DG_EXIT_OK);
    char *log = cli_check_drain(o.log);
    assert_has(log, "digits-ingest: " TMP "in.csv -> " TMP "out.npy: 5 labelled rows");
    free(log);
    dg_dataset ds;
    assert_int_equal(dg_dataset_open(&ds, TMP "out.npy", &err), 0);
    assert_int_equal(ds.n, 5);
    assert_int_equal(ds.has_labels, 1);
    for (int r = 0; r < 5; r++) {
        assert_int_equal(dg_dataset_label(&ds, (size_t)r), (r * 3) % 10);
        const uint8_t *img = dg_dataset_image(&ds, (size_t)r);
        for (int p = 0; p < DG_PIXELS; p++) assert_int_equal(img[p], pixel(r, p));
    }
    dg_dataset_close(&ds);
    /* --expect test on a train.csv: rejected, naming file:line:column, nothing written */
    unlink(TMP "out.npy");
    assert_int_equal(PARSE(&o, &err, "-q", "--expect", "test", "-o", TMP "out.npy", TMP "in.csv"), DG_EXIT_OK);
    assert_int_equal(kg_ingest_cli_run(&o, &err), DG_EXIT_FAIL);
    assert_has(err.msg, TMP "in.csv:1:1: ");
    assert_false(dg_path_exists(TMP "out.npy"));
    /* a pixel of 256 */
    assert_int_equal(PARSE(&o, &err, "-q", "-o", TMP "out.npy", DIGITS_FIXTURES "/ingest/bad_pixel_256.csv"),
                     DG_EXIT_OK);
    assert_int_equal(kg_ingest_cli_run(&o, &err), DG_EXIT_FAIL);
    assert_has(err.msg, "bad_pixel_256.csv:4:785: ");
    assert_false(dg_path_exists(TMP "out.npy"));
    unlink(TMP "in.csv");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_defaults),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
