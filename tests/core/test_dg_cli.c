/* Tests for core/dg_cli: strict numbers, the stage exit message, the OpenBLAS build the binaries load, thread
 * settings, the wait policy dg_stage_init gives a stage (checked in a re-executed child of this program), and the
 * getopt errors every stage parser reports through dg_cli_bad_option. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/dg_cli.h"
#include "testutil.h"

int openblas_get_num_threads(void);

/* The command line stages record: plain words as they are, others single-quoted with ' as '\''. */
static void test_join_command(void **state) {
    (void)state;
    char *argv[] = {"digits-x", "--run", "a b", "it's", "", "x=1,y@2%"};
    char *s = dg_cli_join_command(6, argv);
    assert_string_equal(s, "digits-x --run 'a b' 'it'\\''s' '' x=1,y@2%");
    free(s);
}

static void test_numbers_are_strict(void **state) {
    (void)state;
    long v = 7;
    assert_int_equal(dg_parse_long("12", 0, 100, &v), 0);
    assert_int_equal(v, 12);
    const char *bad[] = {"12x", "", " 3", "3 ", "1e2", "0x10", "101", "-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 7;
        assert_int_equal(dg_parse_long(bad[i], 0, 100, &v), -1);
        assert_int_equal(v, 7); /* untouched */
    }
    uint64_t u = 0;
    assert_int_equal(dg_parse_u64("18446744073709551615", &u), 0);
    assert_true(u == UINT64_MAX);
    assert_int_equal(dg_parse_u64("18446744073709551616", &u), -1);
    assert_int_equal(dg_parse_u64("-1", &u), -1);
    float f = 0;
    assert_int_equal(dg_parse_float("0.25", 0, 1, &f), 0);
    assert_true(f == 0.25f);
    assert_int_equal(dg_parse_float("1e999", 0, 1e30, &f), -1);
    assert_int_equal(dg_parse_float("nan", 0, 1, &f), -1);
    assert_int_equal(dg_parse_float("1.5", 0, 1, &f), -1);
}

/* Runs dg_cli_exit with stderr sent to a file; returns what it printed. */
static char *exit_message(int rc, const dg_err *err, int *ret) {
    static char buf[2048];
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    dup2(fileno(tmp), 2);
    *ret = dg_cli_exit("digits-x", rc, err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(buf, 1, sizeof buf - 1, tmp);
    buf[n] = 0;
    fclose(tmp);
    return buf;
}

static void test_stage_exit_message(void **state) {
    (void)state;
    dg_err err = {{0}};
    int ret;
    assert_string_equal(exit_message(DG_EXIT_OK, &err, &ret), "");
    assert_int_equal(ret, DG_EXIT_OK);
    dg_fail(&err, "data.npy: not a dataset");
    assert_string_equal(exit_message(DG_EXIT_FAIL, &err, &ret), "digits-x: data.npy: not a dataset\n");
    assert_int_equal(ret, DG_EXIT_FAIL);
    dg_fail(&err, "--epochs 0: expected an integer in 1..100000");
    assert_string_equal(exit_message(DG_EXIT_USAGE, &err, &ret),
                        "digits-x: --epochs 0: expected an integer in 1..100000 (see --help)\n");
    assert_int_equal(ret, DG_EXIT_USAGE);
}

/* The build links the OpenMP OpenBLAS by its own directory: whatever Debian's libopenblas.so.0 alternative says,
 * the library loaded here must be that build, and it must follow dg_set_threads. */
static void test_openblas_is_the_openmp_build(void **state) {
    (void)state;
    assert_int_equal(dg_blas_is_openmp(), 1);
    dg_set_threads(2);
    assert_int_equal(openblas_get_num_threads(), 2);
    dg_set_threads(1);
    assert_int_equal(openblas_get_num_threads(), 1);
}

static const char *self_path;

/* Runs this program as "--child" with the given environment changes; returns what the child printed. */
static char *run_child(const char *set_name, const char *set_value) {
    static char buf[256];
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        unsetenv("OMP_WAIT_POLICY");
        unsetenv("GOMP_SPINCOUNT");
        if (set_name) setenv(set_name, set_value, 1);
        execl("/proc/self/exe", self_path, "--child", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(fd[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)r;
    buf[n] = 0;
    close(fd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return buf;
}

/* The child: dg_stage_init as a stage main calls it, then what its OpenMP runtime sees. */
static int child_main(char **argv) {
    int before = getenv("DG_TEST_REEXEC") != NULL;
    setenv("DG_TEST_REEXEC", "1", 1); /* survives the exec: counts how often main started */
    dg_stage_init("test", argv);
    const char *s = getenv("GOMP_SPINCOUNT"), *p = getenv("OMP_WAIT_POLICY");
    printf("spin=%s policy=%s reexec=%d\n", s ? s : "-", p ? p : "-", before);
    return 0;
}

static void test_stage_wait_policy(void **state) {
    (void)state;
    /* nothing set: the stage re-executes itself once with GOMP_SPINCOUNT=1000 */
    assert_string_equal(run_child(NULL, NULL), "spin=1000 policy=- reexec=1\n");
    /* the user's own setting wins, and nothing is re-executed */
    assert_string_equal(run_child("GOMP_SPINCOUNT", "5"), "spin=5 policy=- reexec=0\n");
    assert_string_equal(run_child("OMP_WAIT_POLICY", "passive"), "spin=- policy=passive reexec=0\n");
}

static const struct option kLong[] = {{"quiet", no_argument, 0, 'q'},
                                      {"output", required_argument, 0, 'o'},
                                      {"outdir", required_argument, 0, 'd'},
                                      {"threads", required_argument, 0, 256},
                                      {0, 0, 0, 0}};

/* getopt_long over "prog" + the words of line (split at spaces) to its end or its first error, as the stage
 * parsers run it; returns the error's exit code (0 if none) with the message in err. */
static int scan(const char *shortopts, const char *line, dg_err *err) {
    char *argv[16];
    int argc = tu_argv(argv, 16, "prog", line);
    err->msg[0] = '\0';
    dg_cli_getopt_reset();
    int c;
    while ((c = getopt_long(argc, argv, shortopts, kLong, NULL)) != -1)
        if (c == '?' || c == ':') return dg_cli_bad_option(c, argv, shortopts, kLong, err);
    return 0;
}

static void test_getopt_errors(void **state) {
    (void)state;
    /* the stages use optstrings with and without the leading ':'; the words must be getopt's either way */
    const char *opts[] = {":qo:d:", "qo:d:"};
    struct { const char *line, *msg; } cases[] = {
        {"-q --output x file", ""},
        {"--outptu x", "unrecognized option '--outptu'"},
        {"--out x", "option '--out' is ambiguous; possibilities: '--output' '--outdir'"},
        {"--outp x", ""}, /* an unambiguous prefix is fine */
        {"-x", "invalid option -- 'x'"},
        {"-qxq", "invalid option -- 'x'"},         /* inside a bundle */
        {"--quiet -xq", "invalid option -- 'x'"}, /* a bundle after a long option */
        {"--quiet=yes", "option '--quiet' doesn't allow an argument"},
        {"--qu=yes", "option '--quiet' doesn't allow an argument"},
        {"file --output", "option '--output' requires an argument"},
        {"--threads", "option '--threads' requires an argument"},
        {"-q -o", "option requires an argument -- 'o'"},
    };
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            dg_err err;
            int rc = scan(opts[k], cases[i].line, &err);
            if (strcmp(err.msg, cases[i].msg) != 0)
                fail_msg("\"%s\" with \"%s\": got \"%s\", expected \"%s\"", cases[i].line, opts[k], err.msg,
                         cases[i].msg);
            assert_int_equal(rc, cases[i].msg[0] ? DG_EXIT_USAGE : 0);
        }
    /* getopt itself prints nothing: the message is the caller's to print */
    fflush(stderr);
    int saved = dup(2);
    FILE *cap = tmpfile();
    assert_true(saved >= 0 && cap);
    dup2(fileno(cap), 2);
    dg_err err;
    int rc = scan("qo:", "--outptu -x -o", &err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_int_equal(rc, DG_EXIT_USAGE);
    assert_int_equal(lseek(fileno(cap), 0, SEEK_END), 0);
    fclose(cap);
    /* a parse that stopped half-way inside a bundle does not leak into the next one */
    assert_int_equal(scan(":qo:", "-qxq -o y", &err), DG_EXIT_USAGE);
    assert_int_equal(scan(":qo:", "-q -o y --quiet", &err), 0);
}

static void test_usage_and_suffix(void **state) {
    (void)state;
    dg_err err;
    assert_int_equal(dg_cli_usage(&err, "--%s %d: expected %s", "rows", 0, "more"), DG_EXIT_USAGE);
    assert_string_equal(err.msg, "--rows 0: expected more");
    assert_int_equal(dg_cli_usage(NULL, "nothing"), DG_EXIT_USAGE);
    assert_true(dg_ends_with("sub.csv", ".csv"));
    assert_true(dg_ends_with(".csv", ".csv"));
    assert_false(dg_ends_with("csv", ".csv"));
    assert_false(dg_ends_with("sub.csv.npy", ".csv"));
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--child") == 0) return child_main(argv);
    self_path = argv[0];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers_are_strict),
        cmocka_unit_test(test_join_command),
        cmocka_unit_test(test_stage_exit_message),
        cmocka_unit_test(test_openblas_is_the_openmp_build),
        cmocka_unit_test(test_stage_wait_policy),
        cmocka_unit_test(test_getopt_errors),
        cmocka_unit_test(test_usage_and_suffix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
