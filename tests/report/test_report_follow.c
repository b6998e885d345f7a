/* digits-report --follow (experiments/report/report_cli.c), run as the stage program beside a training or sweep
 * that this test plays itself:
 *   - a sweep (tests/report/sweep_fixture.h) with a trial under a lease: the page appears and reloads itself; a
 *     result committed through experiments/sweep_store's API appears on the page; once no trial is running the
 *     program exits 0, leaving a page without the reload;
 *   - a run directory (a finished tiny run, tests/report/report_fixture.h) without its result.json and with three
 *     epochs of metrics: a live page of three points per curve; all epochs: the page follows; result.json: exit 0
 *     and the finished run's page;
 *   - a run that stops changing (a trainer that died) is left after follow_idle seconds.
 * Every page read on the way is whole (it is written atomically). Waits are bounded (30 s) but nothing asserts on
 * time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/dg_file.h"
#include "experiments/report/report_cli.h"
#include "report_fixture.h"
#include "sweep_fixture.h"
#include "testutil.h"

#define TMP DIGITS_TEST_TMP "/report_follow"
#define PAGE_WAIT_S 30

static pid_t child = -1;

static pid_t spawn(const char *kind, const char *source, const char *out) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(DIGITS_BIN_DIR "/digits-report", "digits-report", kind, source, "--follow", "1", "-o", out, (char *)NULL);
        _exit(127);
    }
    child = pid;
    return pid;
}

static void nap(void) {
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* The page, once it holds want (and, when `without` is set, not that); NULL after PAGE_WAIT_S. Every version read
 * must be a whole page. */
static char *page_with(const char *path, const char *want, const char *without) {
    for (int i = 0; i < PAGE_WAIT_S * 10; i++, nap()) {
        if (!dg_path_exists(path)) continue;
        char *d;
        size_t n;
        dg_err err = {{0}};
        if (dg_read_file(path, &d, &n, &err) != 0) fail_msg("%s", err.msg);
        if (n < 16 || strcmp(d + n - 8, "</html>\n") != 0) fail_msg("%s: not a whole page (%zu bytes)", path, n);
        if (strstr(d, want) && !(without && strstr(d, without))) return d;
        free(d);
    }
    return NULL;
}

/* The child's exit status, or -1 if it is still running after PAGE_WAIT_S. */
static int wait_exit(pid_t pid) {
    for (int i = 0; i < PAGE_WAIT_S * 10; i++, nap()) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            child = -1;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
    }
    return -1;
}

static int teardown(void **state) {
    (void)state;
    if (child > 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        child = -1;
    }
    return 0;
}

static void test_follow_sweep(void **state) {
    (void)state;
    const char *dir = TMP "/sweep", *page_path = TMP "/sweep/report.html";
    sf_expect x;
    sf_make(dir, 9, -1, 3, &x); /* configuration 3's replicate 0 (trial 6) runs */
    /* this test is the coordinator from here on: opening the store returns the stale "running" trial to waiting,
       so it is started again before digits-report looks */
    sw_sweep s;
    dg_err err = {{0}};
    sw_store *st;
    int recovered;
    if (sw_sweep_load(&s, TMP "/sweep/s.sweep", &err) != 0) fail_msg("%s", err.msg);
    if (sw_store_open(&st, TMP "/sweep/sweep.db", s.hash, TMP "/sweep/s.sweep", &recovered, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(recovered, 1);
    double now = (double)time(NULL);
    if (sw_store_start(st, 6, 0, 1, now, &err) != 0) fail_msg("%s", err.msg);

    pid_t pid = spawn("--sweep", dir, page_path);
    char *p = page_with(page_path, "1 running", NULL);
    if (!p) fail_msg("no live page");
    assert_non_null(strstr(p, "<meta http-equiv=\"refresh\" content=\"1\">"));
    assert_null(strstr(p, "data-series=\"c0003 r0\""));
    free(p);

    /* the coordinator's next steps: trial 7 starts, then trial 6's result is committed (digits-sweep also starts
       the next trainers before it commits) */
    char *m0 = sf_metrics(3, 0, 2), *m1 = sf_metrics(3, 1, 2);
    if (sw_store_start(st, 7, 0, 1, now, &err) != 0 ||
        sw_store_result(st, 6, 0, 2, sf_acc(3, 0, 2), 0.5, 3, m0, "waiting", now, &err) != 0)
        fail_msg("%s", err.msg);
    p = page_with(page_path, "data-series=\"c0003 r0\"", NULL);
    if (!p) fail_msg("the page did not follow the new result");
    assert_non_null(strstr(p, "<meta http-equiv=\"refresh\" content=\"1\">"));
    assert_non_null(strstr(p, "1 running"));
    free(p);
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0); /* still following */

    /* trial 7's result: nothing runs any more, the program ends with a page that no longer reloads */
    if (sw_store_result(st, 7, 0, 2, sf_acc(3, 1, 2), 0.5, 3, m1, "waiting", now, &err) != 0) fail_msg("%s", err.msg);
    sw_store_close(st);
    sw_sweep_free(&s);
    free(m0);
    free(m1);
    assert_int_equal(wait_exit(pid), 0);
    p = page_with(page_path, "data-series=\"c0003 r1\"", NULL);
    assert_non_null(p);
    assert_null(strstr(p, "http-equiv=\"refresh\""));
    assert_non_null(strstr(p, "not running"));
    free(p);
}

static void sh(const char *cmd) {
    if (system(cmd) != 0) fail_msg("'%s' failed", cmd);
}

/* polyline points of the first curve in the page */
static int first_curve_points(const char *page) {
    const char *p = strstr(page, "class=\"series\"");
    assert_non_null(p);
    p = strstr(p, "points=\"") + 8;
    int n = 1;
    for (; *p != '"'; p++) n += *p == ' ';
    return n;
}

static void test_follow_run(void **state) {
    (void)state;
    rf_setup();
    const char *dir = TMP "/run", *page_path = TMP "/run/report.html";
    sh("rm -rf '" TMP "/run' && cp -r '" RF_RUN_A "' '" TMP "/run' && rm -f '" TMP "/run/result.json' '" TMP
       "/run/report.html' && head -n 3 '" RF_RUN_A "/metrics.jsonl' > '" TMP "/run/metrics.jsonl'");
    pid_t pid = spawn("--run", dir, page_path);
    char *p = page_with(page_path, "running: 3 epochs so far", NULL);
    if (!p) fail_msg("no live page");
    assert_non_null(strstr(p, "<meta http-equiv=\"refresh\" content=\"1\">"));
    assert_int_equal(first_curve_points(p), 3);
    free(p);
    /* the trainer writes metrics.jsonl whole after each epoch */
    sh("cp '" RF_RUN_A "/metrics.jsonl' '" TMP "/run/metrics.tmp' && mv '" TMP "/run/metrics.tmp' '" TMP
       "/run/metrics.jsonl'");
    char want[64];
    snprintf(want, sizeof want, "running: %d epochs so far", RF_EPOCHS);
    p = page_with(page_path, want, NULL);
    if (!p) fail_msg("the page did not follow the new epochs");
    assert_int_equal(first_curve_points(p), RF_EPOCHS);
    free(p);
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);
    /* result.json, written last: the finished run's page, and the program ends */
    sh("cp '" RF_RUN_A "/result.json' '" TMP "/run/result.tmp' && mv '" TMP "/run/result.tmp' '" TMP
       "/run/result.json'");
    assert_int_equal(wait_exit(pid), 0);
    p = page_with(page_path, "validation accuracy", "running:");
    assert_non_null(p);
    assert_null(strstr(p, "http-equiv=\"refresh\""));
    assert_non_null(strstr(p, "id=\"confusion\""));
    free(p);
}

/* A run that stops changing without a result.json (its trainer died) is left after follow_idle seconds. */
static void test_follow_gives_up_on_a_dead_run(void **state) {
    (void)state;
    rf_setup();
    sh("rm -rf '" TMP "/dead' && cp -r '" RF_RUN_A "' '" TMP "/dead' && rm -f '" TMP "/dead/result.json'");
    char *argv[] = {"digits-report", "--run", TMP "/dead", "--follow", "1", "-o", TMP "/dead/report.html", NULL};
    rp_report_cli_opts o;
    dg_err err = {{0}};
    assert_int_equal(rp_report_cli_parse(7, argv, &o, &err), 0);
    assert_int_equal(o.follow_idle, 3600);
    o.follow_idle = 2;
    assert_int_equal(rp_report_cli_run(&o, &err), 0);
    char *p = page_with(TMP "/dead/report.html", "running:", NULL);
    assert_non_null(p);
    free(p);
}

int main(void) {
    dg_err err = {{0}};
    if (dg_mkdirs(TMP, &err) != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_follow_sweep, teardown),
        cmocka_unit_test_teardown(test_follow_run, teardown),
        cmocka_unit_test(test_follow_gives_up_on_a_dead_run),
    };
    return tu_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
