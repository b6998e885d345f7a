/* Tests for kaggle/cli: getopt errors turned into messages (unknown long and short options, a bundle, a flag
 * given a value, a missing argument), with nothing printed by getopt, parsing again after kg_cli_getopt_reset, usage failures, kg_ends_with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli_check.h"
#include "kaggle/cli.h"

static const struct option kLong[] = {
    {"quiet", no_argument, 0, 'q'}, {"output", required_argument, 0, 'o'}, {0, 0, 0, 0}};

/* Run getopt_long over argv to its end or its first error; returns the error's exit code (0 if none) with the
 * message in err. */
static int scan(int argc, char **argv, dg_err *err) {
    int c;
    err->msg[0] = '\0';
    kg_cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":qo:", kLong, NULL)) != -1)
        if (c == '?' || c == ':') return kg_cli_bad_option(c, argv, err);
    return 0;
}

#define SCAN(err, ...) scan(ARGC("prog", __VA_ARGS__), ARGV("prog", __VA_ARGS__), (err))

static void test_bad_option(void **state) {
    (void)state;
    dg_err err;
    assert_int_equal(SCAN(&err, "-q", "--output", "x", "file"), 0);
    assert_int_equal(SCAN(&err, "--outptu", "x"), DG_EXIT_USAGE);
    assert_string_equal(err.msg, "unrecognized option '--outptu'");
    assert_int_equal(SCAN(&err, "-x"), DG_EXIT_USAGE);
    assert_string_equal(err.msg, "invalid option '-x'");
    assert_int_equal(SCAN(&err, "-qxq"), DG_EXIT_USAGE); /* inside a bundle */
    assert_string_equal(err.msg, "invalid option '-x'");
    assert_int_equal(SCAN(&err, "--quiet=yes"), DG_EXIT_USAGE);
    assert_string_equal(err.msg, "option '--quiet' takes no argument");
    assert_int_equal(SCAN(&err, "file", "--output"), DG_EXIT_USAGE);
    assert_string_equal(err.msg, "option '--output' requires an argument");
    assert_int_equal(SCAN(&err, "-q", "-o"), DG_EXIT_USAGE);
    assert_string_equal(err.msg, "option '-o' requires an argument");
    /* getopt itself prints nothing: the message is the caller's to print */
    fflush(stderr);
    int saved = dup(2);
    FILE *cap = tmpfile();
    assert_true(saved >= 0 && cap);
    dup2(fileno(cap), 2);
    int rc = SCAN(&err, "--outptu", "-x", "-o");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_int_equal(rc, DG_EXIT_USAGE);
    assert_int_equal(lseek(fileno(cap), 0, SEEK_END), 0); /* nothing reached fd 2 */
    fclose(cap);
    /* a parse that stopped half-way does not leak into the next one */
    assert_int_equal(SCAN(&err, "-qxq", "-o", "y"), DG_EXIT_USAGE);
    assert_int_equal(SCAN(&err, "-q", "-o", "y", "--quiet"), 0);
}

static void test_usage_fail_and_suffix(void **state) {
    (void)state;
    dg_err err;
    assert_int_equal(kg_cli_usage_fail(&err, "--%s %d: expected %s", "rows", 0, "more"), DG_EXIT_USAGE);
    assert_string_equal(err.msg, "--rows 0: expected more");
    assert_int_equal(kg_cli_usage_fail(NULL, "nothing"), DG_EXIT_USAGE);
    assert_true(kg_ends_with("sub.csv", ".csv"));
    assert_true(kg_ends_with(".csv", ".csv"));
    assert_false(kg_ends_with("csv", ".csv"));
    assert_false(kg_ends_with("sub.csv.npy", ".csv"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_option),
        cmocka_unit_test(test_usage_fail_and_suffix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
