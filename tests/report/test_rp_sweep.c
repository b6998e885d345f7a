/* Tests for experiments/report/rp_sweep: the page of a synthetic sweep (tests/report/sweep_fixture.h) against
 * numbers computed from the fixture's own data: one leaderboard row per configuration, the best one first with its
 * mean and SD, the failed one with its reason, one curve per trial with one point per epoch in the database, an
 * end mark per stopped trial, the rungs as marks, one point per configuration with a result in each parameter's
 * chart (lr on a log axis, the optimizer's words as categories), the parallel coordinates and the error bars;
 * the page reloads itself only while a trial is under a lease; the database is not written; a 500-trial sweep's
 * page stays under 3 MB (size and render time printed); another schema version, a file that is not a sweep
 * database and a missing one are errors that leave no page. */
#define _GNU_SOURCE /* strndup */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/dg_file.h"
#include "core/dg_svg.h"
#include "experiments/report/report_cli.h"
#include "experiments/report/rp_sweep.h"
#include "sweep_fixture.h"
#include "testutil.h"

#define TMP DIGITS_TEST_TMP "/rp_sweep"

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static char *render(const char *source, int refresh, int *live) {
    dg_text t = {0};
    dg_err err = {{0}};
    rp_sweep_opts o = {source, refresh};
    if (rp_sweep_report(&t, &o, live, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(t.oom, 0);
    return t.s;
}

/* The points attribute of the curve named name. */
static int curve_points(const char *page, const char *name) {
    char key[64];
    snprintf(key, sizeof key, "data-series=\"%s\"", name);
    const char *p = strstr(page, key);
    if (!p) return 0;
    p = strstr(p, "points=\"") + 8;
    const char *e = strchr(p, '"');
    int n = e > p;
    for (const char *q = p; q < e; q++) n += *q == ' ';
    return n;
}

/* The text of the chart whose title is `title` (up to its </svg>), malloc'd. */
static char *chart(const char *page, const char *title) {
    const char *p = strstr(page, title);
    if (!p) fail_msg("no chart '%s'", title);
    const char *e = strstr(p, "</svg>");
    assert_non_null(e);
    return strndup(p, (size_t)(e - p));
}

static void test_small_sweep_page(void **state) {
    (void)state;
    sf_expect x;
    sf_make(TMP "/small", 27, 4, 9, &x);
    int live = -1;
    char *page = render(TMP "/small", 7, &live);
    assert_int_equal(live, 1); /* configuration 9 is running under a lease */
    assert_non_null(strstr(page, "<meta http-equiv=\"refresh\" content=\"7\">"));
    assert_null(strstr(page, "note bad")); /* the sweep file was found, with the database's hash */

    /* leaderboard: a row per configuration, the best first */
    assert_int_equal(count(page, "<tr><td class=\"num\">"), x.configs);
    char row[128];
    snprintf(row, sizeof row, "<tr><td class=\"num\">1</td><td class=\"num\">%d</td>", x.best);
    assert_non_null(strstr(page, row));
    snprintf(row, sizeof row, "%.4f &plusmn; %.4f", x.best_mean, x.best_sd);
    const char *first = strstr(page, "<tr><td class=\"num\">1</td>"), *second = strstr(page, "<tr><td class=\"num\">2</td>");
    const char *m = strstr(first, row);
    assert_true(m && m < second);
    /* every row's metric: mean and SD (n - 1) over the replicates at the configuration's rung */
    int rows = 0;
    for (const char *r = strstr(page, "<tr><td class=\"num\">"); r; r = strstr(r + 1, "<tr><td class=\"num\">")) {
        int rank, id;
        assert_int_equal(sscanf(r, "<tr><td class=\"num\">%d</td><td class=\"num\">%d</td>", &rank, &id), 2);
        assert_true(id >= 0 && id < x.configs);
        const char *end = strstr(r, "</tr>"), *pm = strstr(r, "&plusmn;");
        if (x.rung[id] < 0) {
            assert_true(!pm || pm > end);
            continue;
        }
        assert_true(pm && pm < end);
        const char *td = pm;
        while (td > r && strncmp(td, "<td", 3) != 0) td--;
        double mean, sd;
        assert_int_equal(sscanf(strchr(td, '>') + 1, "%lf &plusmn; %lf", &mean, &sd), 2);
        tu_assert_close(mean, x.mean[id], 0, 5.1e-5);
        tu_assert_close(sd, x.sd[id], 0, 5.1e-5);
        rows++;
    }
    assert_int_equal(rows, x.with_result);
    assert_non_null(strstr(page, "failed: the run diverged (loss nan at epoch 3)"));
    assert_int_equal(count(page, "class=\"state-pruned\""), x.pruned_configs);
    assert_int_equal(count(page, "class=\"state-running\""), 1);

    /* curves: one per trial with epochs, one point per epoch; end marks; three rungs */
    char *curves = chart(page, "Validation metric of every trial");
    assert_int_equal(count(curves, "class=\"series\""), x.trials_with_epochs);
    for (int t = 0; t < x.trials; t++) {
        char name[32];
        snprintf(name, sizeof name, "c%04d r%d", t / 2, t % 2);
        assert_int_equal(curve_points(curves, name), x.trial_epochs[t]);
    }
    assert_int_equal(count(curves, "class=\"end\""), x.stopped_with_epochs);
    assert_int_equal(count(curves, "class=\"xmark\""), 3);
    free(curves);

    /* a chart per parameter, a point per configuration with a result; lr on a log axis, words as categories */
    char *lr = chart(page, "val_acc against train.lr (log)");
    assert_int_equal(count(lr, "class=\"point\""), x.with_result);
    assert_non_null(strstr(lr, ">0.001</text>"));
    free(lr);
    char *opt = chart(page, "val_acc against train.optimizer");
    assert_int_equal(count(opt, "class=\"point\""), x.with_result);
    assert_non_null(strstr(opt, ">momentum</text>"));
    free(opt);
    assert_non_null(strstr(page, "val_acc against layer2.units</text>"));
    assert_non_null(strstr(page, "val_acc against layer5.rate</text>"));
    assert_int_equal(count(page, "class=\"point\""), 5 * x.with_result); /* 4 parameters and mean +- SD */
    assert_int_equal(count(page, "class=\"pc-line\""), x.with_result);
    assert_int_equal(count(page, "class=\"pc-axis\""), 5);
    assert_int_equal(count(page, "class=\"err\""), x.err_bars);
    free(page);

    /* without a live trial the page carries no reload, whatever the refresh asked */
    sf_make(TMP "/small", 27, 4, -1, &x);
    page = render(TMP "/small", 7, &live);
    assert_int_equal(live, 0);
    assert_null(strstr(page, "http-equiv=\"refresh\""));
    free(page);
}

/* Without the sweep file (moved away) the page still renders, says so, and assumes val_acc and linear axes. */
static void test_without_sweep_file(void **state) {
    (void)state;
    sf_expect x;
    sf_make(TMP "/nofile", 12, -1, -1, &x);
    assert_int_equal(rename(TMP "/nofile/s.sweep", TMP "/nofile/moved.sweep"), 0);
    int live;
    char *page = render(TMP "/nofile/sweep.db", 0, &live);
    assert_non_null(strstr(page, "note bad"));
    assert_non_null(strstr(page, "not found from here"));
    assert_null(strstr(page, "(log)"));
    assert_int_equal(count(page, "<tr><td class=\"num\">"), x.configs);
    char row[128];
    snprintf(row, sizeof row, "<tr><td class=\"num\">1</td><td class=\"num\">%d</td>", x.best);
    assert_non_null(strstr(page, row));
    /* the rungs are the epochs the database shows */
    assert_int_equal(count(page, "class=\"xmark\""), 3);
    free(page);
}

/* The report opens the database read-only: its bytes do not change. */
static void test_database_not_written(void **state) {
    (void)state;
    sf_expect x;
    sf_make(TMP "/ro", 9, -1, 2, &x);
    char *before, *after;
    size_t nb, na;
    dg_err err = {{0}};
    assert_int_equal(dg_read_file(TMP "/ro/sweep.db", &before, &nb, &err), 0);
    struct stat s0, s1;
    assert_int_equal(stat(TMP "/ro/sweep.db", &s0), 0);
    int live;
    free(render(TMP "/ro", 5, &live));
    assert_int_equal(rp_sweep_live(TMP "/ro", &live, &err), 0);
    assert_int_equal(live, 1);
    assert_int_equal(dg_read_file(TMP "/ro/sweep.db", &after, &na, &err), 0);
    assert_int_equal(stat(TMP "/ro/sweep.db", &s1), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(before, after, nb);
    assert_true(s0.st_mtim.tv_sec == s1.st_mtim.tv_sec && s0.st_mtim.tv_nsec == s1.st_mtim.tv_nsec);
    free(before);
    free(after);
}

/* 250 configurations x 2 replicates = 500 trials: the page stays a few MB. */
static void test_500_trials_size(void **state) {
    (void)state;
    sf_expect x;
    sf_make(TMP "/big", 250, 17, -1, &x);
    assert_int_equal(x.trials, 500);
    char *argv[] = {"digits-report", "--sweep", TMP "/big", "-o", TMP "/big/report.html", NULL};
    rp_report_cli_opts o;
    dg_err err = {{0}};
    assert_int_equal(rp_report_cli_parse(5, argv, &o, &err), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (rp_report_cli_run(&o, &err) != 0) fail_msg("%s", err.msg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    struct stat st;
    assert_int_equal(stat(TMP "/big/report.html", &st), 0);
    int epochs = 0;
    for (int t = 0; t < x.trials; t++) epochs += x.trial_epochs[t];
    print_message("500-trial sweep (%d trials with curves, %d epochs in all): report.html %lld bytes, rendered in "
                  "%.3f s\n",
                  x.trials_with_epochs, epochs, (long long)st.st_size,
                  (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
    assert_true(st.st_size < 3 * 1000 * 1000);
    char *page;
    size_t n;
    assert_int_equal(dg_read_file(TMP "/big/report.html", &page, &n, &err), 0);
    assert_int_equal(count(page, "class=\"series\""), x.trials_with_epochs);
    free(page);
}

static void sql(const char *db, const char *stmt) {
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(h, stmt, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s: %s", stmt, msg);
    sqlite3_close(h);
}

/* digits-report's run on source: exit 1, the message holds want, and no page is left at out. */
static void fails(const char *source, const char *want) {
    const char *out = TMP "/bad/report.html";
    unlink(out);
    char *argv[] = {"digits-report", "--sweep", (char *)source, "-o", (char *)out, NULL};
    rp_report_cli_opts o;
    dg_err err = {{0}};
    assert_int_equal(rp_report_cli_parse(5, argv, &o, &err), 0);
    assert_int_equal(rp_report_cli_run(&o, &err), 1);
    if (!strstr(err.msg, want)) fail_msg("message '%s' lacks '%s'", err.msg, want);
    assert_false(dg_path_exists(out));
}

static void test_bad_databases(void **state) {
    (void)state;
    sf_expect x;
    sf_make(TMP "/bad", 3, -1, -1, &x);
    sql(TMP "/bad/sweep.db", "UPDATE meta SET value = '2' WHERE key = 'schema_version'");
    fails(TMP "/bad", "sweep.db: a sweep database of schema version 2; this digits-report reads version 1");
    sql(TMP "/bad/sweep.db", "UPDATE meta SET value = '0' WHERE key = 'schema_version'");
    fails(TMP "/bad", "schema version 0");
    sql(TMP "/bad/sweep.db", "DELETE FROM meta WHERE key = 'schema_version'");
    fails(TMP "/bad", "not a sweep database (no schema_version");
    sql(TMP "/bad/other.db", "CREATE TABLE IF NOT EXISTS t(x)");
    fails(TMP "/bad/other.db", "other.db: not a sweep database (meta: no such table: meta)");
    sf_write(TMP "/bad/text.db", "this is not a database, but it is long enough to look like a header of one\n");
    fails(TMP "/bad/text.db", "text.db: not a sweep database");
    fails(TMP "/bad/missing", "bad/missing: missing");
    fails(TMP "/bad/nothing.db", "nothing.db: missing");
}

int main(void) {
    dg_err err = {{0}};
    if (dg_mkdirs(TMP, &err) != 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_sweep_page),   cmocka_unit_test(test_without_sweep_file),
        cmocka_unit_test(test_database_not_written), cmocka_unit_test(test_500_trials_size),
        cmocka_unit_test(test_bad_databases),
    };
    return tu_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
