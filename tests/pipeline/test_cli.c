/* Tests for pipeline/cli: digits-pipeline's options (pl_parse), its usage text, and a dry run of pl_run writing
 * the plan to the FILE* it is given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dg_cli.h"
#include "core/dg_file.h"
#include "pipeline/cli.h"

#define TMP DIGITS_TEST_TMP "/cli"

static int parse(pl_cli_opts *o, dg_err *err, ...) {
    char *argv[32] = {"digits-pipeline"};
    int argc = 1;
    va_list ap;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)) != NULL;) argv[argc++] = a;
    va_end(ap);
    memset(err, 0, sizeof *err);
    return pl_parse(argc, argv, o, err);
}

static void test_parse(void **state) {
    (void)state;
    pl_cli_opts o;
    dg_err err;
    assert_int_equal(parse(&o, &err, NULL), DG_EXIT_OK);
    assert_string_equal(o.preset, "default");
    assert_string_equal(o.data_dir, "data");
    assert_string_equal(o.output, "submission.csv");
    assert_null(o.work);
    assert_null(o.bin_dir);
    assert_int_equal(o.threads, 0);
    assert_int_equal(o.jobs, 0);
    assert_int_equal(o.dry_run, 0);
    assert_int_equal(o.help, 0);

    assert_int_equal(parse(&o, &err, "-p", "quick", "-d", "D", "-w", "W", "-o", "S.csv", "--threads", "3", "-j", "4",
                           "--bin-dir", "B", "-n", NULL),
                     DG_EXIT_OK);
    assert_string_equal(o.preset, "quick");
    assert_string_equal(o.data_dir, "D");
    assert_string_equal(o.work, "W");
    assert_string_equal(o.output, "S.csv");
    assert_string_equal(o.bin_dir, "B");
    assert_int_equal(o.threads, 3);
    assert_int_equal(o.jobs, 4);
    assert_int_equal(o.dry_run, 1);
    assert_int_equal(parse(&o, &err, "--preset=overnight", "--jobs=64", "--dry-run", NULL), DG_EXIT_OK);
    assert_string_equal(o.preset, "overnight");
    assert_int_equal(o.jobs, 64);
    assert_int_equal(parse(&o, &err, "-h", "--jobs", "0", NULL), DG_EXIT_OK); /* --help wins over what follows */
    assert_int_equal(o.help, 1);

    static const struct {
        const char *a, *b, *msg;
    } bad[] = {
        {"--jobs", "0", "--jobs 0: expected 1..64"},
        {"-j", "65", "--jobs 65: expected 1..64"},
        {"--threads", "x", "--threads x: expected 1..1024"},
        {"--threads", "1025", "--threads 1025: expected 1..1024"},
        {"extra", NULL, "unexpected argument \"extra\""},
        {"--bogus", NULL, "unrecognized option '--bogus'"},
        {"-x", NULL, "invalid option -- 'x'"},
        {"-j", NULL, "option requires an argument -- 'j'"},
        {"--preset", NULL, "option '--preset' requires an argument"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(parse(&o, &err, bad[i].a, bad[i].b, NULL), DG_EXIT_USAGE);
        assert_string_equal(err.msg, bad[i].msg);
    }
}

static char *capture(void (*fn)(FILE *)) {
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);
    assert_non_null(f);
    fn(f);
    fclose(f);
    return text;
}

static void test_usage(void **state) {
    (void)state;
    setenv("OMP_NUM_THREADS", "7", 1);
    char *u = capture(pl_usage);
    assert_non_null(strstr(u, "usage: digits-pipeline [options]\n"));
    assert_non_null(strstr(u, "(default default;\n                          also quick, bag5, dense, long, overnight)"));
    assert_non_null(strstr(u, "OMP_NUM_THREADS or all CPUs, now 7)")); /* the live default */
    free(u);
    setenv("OMP_NUM_THREADS", "2", 1);
}

/* A dry run: the plan goes to `out` and nothing runs; the budget warning goes to `log`. */
static void test_dry_run(void **state) {
    (void)state;
    dg_err err;
    assert_int_equal(system("rm -rf '" TMP "'"), 0);
    assert_int_equal(dg_mkdirs(TMP "/data", &err), 0);
    const char *train = "label\n1\n1\n1\n1\n1\n1\n1\n1\n1\n1\n", *test = "pixel0\n1\n1\n";
    assert_int_equal(dg_write_file_atomic(TMP "/data/train.csv", train, strlen(train), &err), 0);
    assert_int_equal(dg_write_file_atomic(TMP "/data/test.csv", test, strlen(test), &err), 0);
    const char *preset = "members model=mlp2 seeds=1-2 epochs=1\nspeed model=mlp2 train=1 predict=1\n"
                         "budget_minutes=0.01\n";
    assert_int_equal(dg_write_file_atomic(TMP "/p.preset", preset, strlen(preset), &err), 0);
    pl_cli_opts o;
    assert_int_equal(parse(&o, &err, "-p", TMP "/p.preset", "-d", TMP "/data", "-w", TMP "/work", "-o",
                           TMP "/sub.csv", "--bin-dir", TMP "/no-bin", "--threads", "2", "-n", NULL),
                     DG_EXIT_OK);
    char *out_text = NULL, *log_text = NULL;
    size_t on = 0, ln = 0;
    FILE *out = open_memstream(&out_text, &on), *log = open_memstream(&log_text, &ln);
    assert_int_equal(pl_run(&o, out, log, &err), DG_EXIT_OK);
    fclose(out);
    fclose(log);
    assert_non_null(strstr(out_text, "preset   p (" TMP "/p.preset)\n"));
    assert_non_null(strstr(out_text, "data     " TMP "/data: 10 training images, 2 test images\n"));
    assert_non_null(strstr(out_text, "  train-mlp2-s2                run "));
    assert_non_null(strstr(out_text, "OVER BUDGET"));
    assert_string_equal(log_text, "digits-pipeline: warning: the estimate exceeds the preset's budget_minutes=0.01\n");
    assert_false(dg_path_exists(TMP "/work")); /* a dry run writes nothing */
    free(out_text);
    free(log_text);

    /* not a dry run: the missing stage programs are found before anything starts */
    o.dry_run = 0;
    out = open_memstream(&out_text, &on);
    log = open_memstream(&log_text, &ln);
    assert_int_equal(pl_run(&o, out, log, &err), DG_EXIT_FAIL);
    fclose(out);
    fclose(log);
    assert_non_null(strstr(err.msg, "ingest-train: cannot run " TMP "/no-bin/digits-ingest"));
    assert_false(dg_path_exists(TMP "/work"));
    free(out_text);
    free(log_text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_dry_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
