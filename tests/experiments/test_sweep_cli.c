/* Tests for experiments/sweep_cli (digits-sweep end to end, real digits-train processes on a small synthetic
 * dataset): option errors; a diverging trial is FAILED with its reason and the sweep ends normally, and
 * --retry-failed runs it again; the coordinator SIGKILLed twice at random moments and restarted gives the
 * uninterrupted run's leaderboard, with no finished trial started again (counted from a log each trainer launch
 * appends to its run directory, not from the database); another sweep's, a newer or a damaged database (garbage
 * pages, cut short, not a database), and an unwritable directory are clear errors, and a sweep whose damaged
 * database is moved away reads its finished trials back from the run directories. A full disk and a read-only
 * directory: tests/failure/test_sweep_disk.c. --for stops a sweep at its deadline, and the next start finishes it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "core/dg_rng.h"
#include "experiments/sweep_cli.h"
#include "kaggle_csvs.h"
#include "testutil.h"
#include "sweep_test_util.h"

#define TMP DIGITS_TEST_TMP "/sweep_cli"
#define DATA TMP "/synth.npy"

/* A digits-train wrapper that appends "EPOCHS_DONE STOP_AT FINISHED" to RUN/launches.log, then runs the real one. */
#define WRAPPER TMP "/train-logged.sh"
#define WRAPPER_SCRIPT                                                                                              \
    "#!/bin/sh\n"                                                                                                   \
    TU_WRAPPER_ARGS                                                                                                 \
    TU_WRAPPER_PROGRESS                                                                                             \
    "echo \"$done_ $stop $fin\" >> \"$run/launches.log\"\n"                                                         \
    TU_WRAPPER_EXEC

static int setup(void **state) {
    (void)state;
    return tu_sweep_fixture(TMP, DATA, WRAPPER, WRAPPER_SCRIPT);
}

/* digits-sweep's parse + run in this process, quiet; returns the exit code, err holds the message. */
static int sweep(const char *args, dg_err *err) {
    char buf[2048];
    snprintf(buf, sizeof buf, "digits-sweep %s", args);
    char *argv[64];
    int argc = 0;
    for (char *t = strtok(buf, " "); t && argc < 63; t = strtok(NULL, " ")) argv[argc++] = t;
    argv[argc] = NULL;
    sw_cli_opts o;
    memset(err, 0, sizeof *err);
    int rc = sw_cli_parse(argc, argv, &o, err);
    if (rc != 0) return rc;
    o.out = NULL;
    o.log = NULL;
    return sw_cli_run(&o, err);
}

static void test_parse(void **state) {
    (void)state;
    static const struct {
        const char *args, *want;
    } bad[] = {
        {"--data d x.sweep y.sweep", "unexpected argument 'y.sweep'"},
        {"--data d", "a sweep file is required"},
        {"x.sweep", "--data is required"},
        {"--data d --workers 0 x.sweep", "--workers 0: expected an integer in 1..1024"},
        {"--data d --threads x x.sweep", "--threads x: expected an integer in 1..1024"},
        {"--data d --bogus x.sweep", "unrecognized option '--bogus'"},
        {"--data d --for 0 x.sweep", "--for 0: expected a duration from 1 s to 30 days"},
        {"--data d --for 2x x.sweep", "--for 2x: expected a duration"},
        {"--data d --for 31d x.sweep", "--for 31d: expected a duration"},
        {"--data d --for 721h x.sweep", "--for 721h: expected a duration"},
        {"--data d --for h x.sweep", "--for h: expected a duration"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        dg_err err;
        assert_int_equal(sweep(bad[i].args, &err), DG_EXIT_USAGE);
        if (!strstr(err.msg, bad[i].want)) fail_msg("'%s': got '%s', want '%s'", bad[i].args, err.msg, bad[i].want);
    }
    char *argv[] = {"digits-sweep", "--data", "d.npy", "--workers", "3", "--retry-failed", "exp/mlp.sweep", NULL};
    sw_cli_opts o;
    dg_err err;
    assert_int_equal(sw_cli_parse(7, argv, &o, &err), 0);
    assert_string_equal(o.dir, "sweeps/mlp");
    assert_int_equal(o.workers, 3);
    assert_int_equal(o.retry_failed, 1);
    assert_string_equal(o.sweep, "exp/mlp.sweep");
    assert_true(o.run_for == 0);
    char *argv2[] = {"digits-sweep", "--data", "d.npy", "--for", "1.5h", "x.sweep", NULL};
    assert_int_equal(sw_cli_parse(6, argv2, &o, &err), 0);
    assert_true(o.run_for == 5400);
    char *argv3[] = {"digits-sweep", "--data", "d.npy", "--for", "90", "x.sweep", NULL};
    assert_int_equal(sw_cli_parse(6, argv3, &o, &err), 0);
    assert_true(o.run_for == 90);
}

/* A deep linear net (leaky slope 1): lr 0.01 trains, lr 5 overflows. */
static const char *linear_spec =
    "name lin\nflatten\ndense units=32\nleakyrelu slope=1\ndense units=32\nleakyrelu slope=1\ndense units=10\n"
    "train optimizer=momentum lr=0.01 batch=16 epochs=2\n";

/* Event files (events.out.tfevents.*) in dir. */
static int count_events(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strncmp(e->d_name, "events.out.tfevents.", 20) == 0;
    closedir(d);
    return n;
}

static void test_nan_trial_fails(void **state) {
    (void)state;
    tu_put(TMP "/lin.spec", linear_spec);
    tu_put(TMP "/nan.sweep", "{\"model\": \"lin.spec\", \"params\": {\"train.lr\": [0.01, 5]}, \"threads\": 1}\n");
    dg_err err;
    assert_int_equal(sweep("--data " DATA " --dir " TMP "/nan --train " WRAPPER " --tensorboard " TMP "/nan-tb "
                           TMP "/nan.sweep", &err), 0);
    /* one TensorBoard run per trial, named as its run directory */
    assert_int_equal(count_events(TMP "/nan-tb/c0000-r0"), 1);
    char *lb = tu_read(TMP "/nan/leaderboard.csv");
    /* the healthy configuration first and complete; the diverged one failed, with digits-train's reason */
    assert_non_null(strstr(lb, "\n1,0,complete,0,2,"));
    const char *row = strstr(lb, "\n2,1,failed,");
    assert_non_null(row);
    assert_true(strstr(row, "the run diverged") != NULL);
    free(lb);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(TMP "/nan/sweep.db", &db), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT state, reason FROM trials ORDER BY id", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "complete");
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "failed");
    assert_non_null(strstr((const char *)sqlite3_column_text(s, 1), "exit 1: "));
    sqlite3_finalize(s);
    sqlite3_close(db);
    assert_true(dg_path_exists(TMP "/nan/best.spec"));
    /* again: nothing runs; with --retry-failed the failed trial (only) runs again, and fails again */
    assert_int_equal(sweep("--data " DATA " --dir " TMP "/nan --train " WRAPPER " " TMP "/nan.sweep", &err), 0);
    assert_int_equal(tu_count_lines(TMP "/nan/trials/c0000-r0/launches.log"), 1);
    assert_int_equal(tu_count_lines(TMP "/nan/trials/c0001-r0/launches.log"), 1);
    assert_int_equal(
        sweep("--data " DATA " --dir " TMP "/nan --retry-failed --train " WRAPPER " " TMP "/nan.sweep", &err), 0);
    assert_int_equal(tu_count_lines(TMP "/nan/trials/c0000-r0/launches.log"), 1);
    assert_int_equal(tu_count_lines(TMP "/nan/trials/c0001-r0/launches.log"), 2);
    lb = tu_read(TMP "/nan/leaderboard.csv");
    assert_non_null(strstr(lb, "\n2,1,failed,"));
    free(lb);
}

/* ---- the best configuration as a pipeline member ---- */

/* A preset names the sweep's DIR/best.spec by its path as a member's model: digits-pipeline plans it and trains
 * that configuration (the member's resolved spec is the best one's), then predicts and writes a submission. */
static void test_best_spec_in_preset(void **state) {
    (void)state;
    tu_put(TMP "/lin.spec", linear_spec);
    tu_put(TMP "/best.sweep", "{\"model\": \"lin.spec\", \"params\": {\"train.lr\": [0.01, 5], \"layer2.units\": [16]},"
                           " \"threads\": 1}\n");
    dg_err err;
    assert_int_equal(sweep("--data " DATA " --dir " TMP "/best --train " DIGITS_BIN_DIR "/digits-train " TMP
                           "/best.sweep", &err), 0);
    assert_true(dg_path_exists(TMP "/best/best.spec"));
    assert_int_equal(dg_mkdirs(TMP "/pipe/data", &err), 0);
    tu_kaggle_csvs(TMP "/pipe/data", 1);
    tu_put(TMP "/pipe/best.preset",
           "split val-frac=0.2 split-seed=3\nmember model=" TMP "/best/best.spec seed=1 epochs=1\n");
    const char *cmd = DIGITS_BIN_DIR "/digits-pipeline -p " TMP "/pipe/best.preset -d " TMP "/pipe/data -w " TMP
                                     "/pipe/work -o " TMP "/pipe/sub.csv --threads 2";
    char buf[2048];
    snprintf(buf, sizeof buf, "%s --dry-run > " TMP "/pipe/plan.txt 2>&1", cmd);
    assert_int_equal(system(buf), 0);
    char *plan = tu_read(TMP "/pipe/plan.txt");
    if (!strstr(plan, "best.spec")) fail_msg("the plan does not train best.spec: %s", plan);
    free(plan);
    snprintf(buf, sizeof buf, "%s > " TMP "/pipe/run.log 2>&1", cmd);
    if (system(buf) != 0) {
        char *log = tu_read(TMP "/pipe/run.log");
        fail_msg("digits-pipeline with best.spec failed: %s", log);
    }
    assert_true(dg_path_exists(TMP "/pipe/sub.csv"));
    /* the member trained the best configuration: lr 0.01 (not 5), layer 2 of 16 units, named lin-best */
    assert_int_equal(system("grep -q 'name lin-best' " TMP "/pipe/work/members/*/spec.txt"), 0);
    assert_int_equal(system("grep -q 'units=16' " TMP "/pipe/work/members/*/spec.txt"), 0);
    assert_int_equal(system("grep -q 'lr=0.01 ' " TMP "/pipe/work/members/*/spec.txt"), 0);
    assert_int_equal(system("ls -d " TMP "/pipe/work/members/*/result.json > /dev/null"), 0);
}

/* ---- kill -9 ---- */

#define CRASH_SWEEP                                                                                                 \
    "{\"model\": \"mlp2\", \"strategy\": \"asha\", \"asha\": {\"rungs\": [1, 2, 4], \"eta\": 2},\n"                 \
    " \"params\": {\"train.lr\": {\"log_uniform\": [0.005, 0.2]}, \"layer2.units\": {\"choice\": [16, 32]}},\n"    \
    " \"budget\": {\"trials\": 8}, \"metric\": \"val_loss\", \"seed\": 5, \"threads\": 1}\n"

static int results_in(const char *db_path) {
    sqlite3 *db;
    int n = -1;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 1000);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM rungs", -1, &s, NULL) == SQLITE_OK) {
        if (sqlite3_step(s) == SQLITE_ROW) n = sqlite3_column_int(s, 0);
        sqlite3_finalize(s);
    }
    sqlite3_close(db);
    return n;
}

/* Trials the database marks running. */
static int running_in(const char *db_path) {
    sqlite3 *db;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM trials WHERE state = 'running'", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

/* Epochs trained so far in a sweep's run directories (lines of trials/x/metrics.jsonl): when to kill. Not the
 * database's results, which are committed in batches up to a second late. */
static int epochs_in(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/trials", dir);
    DIR *d = opendir(path);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/trials/%s/metrics.jsonl", dir, e->d_name);
        n += tu_count_lines(path);
    }
    closedir(d);
    return n;
}

static pid_t spawn_sweep(const char *dir) {
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0) {
        int nul = open("/dev/null", O_WRONLY);
        if (nul >= 0) {
            dup2(nul, 1);
            dup2(nul, 2);
        }
        execl(DIGITS_BIN_DIR "/digits-sweep", "digits-sweep", "--data", DATA, "--dir", dir, "--workers", "2",
              "--train", WRAPPER, TMP "/crash.sweep", (char *)NULL);
        _exit(127);
    }
    return p;
}

static void test_kill_and_restart(void **state) {
    (void)state;
    tu_put(TMP "/crash.sweep", CRASH_SWEEP);
    /* uninterrupted */
    pid_t p = spawn_sweep(TMP "/whole");
    int st;
    assert_int_equal(waitpid(p, &st, 0), p);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_true(results_in(TMP "/whole/sweep.db") >= 8 + 4);
    int total = epochs_in(TMP "/whole");
    /* killed twice: once after 1..total/3 epochs, once after total/3+1..2 total/3, each a few ms later */
    uint64_t seed = (uint64_t)time(NULL);
    printf("kill seed %llu\n", (unsigned long long)seed);
    dg_rng r = dg_rng_make(seed, DG_RNG_USER, 0, 0);
    int third = total / 3;
    int at[2] = {1 + (int)dg_rng_below(&r, (uint32_t)third), third + 1 + (int)dg_rng_below(&r, (uint32_t)third)};
    for (int k = 0; k < 2; k++) {
        p = spawn_sweep(TMP "/killed");
        for (int spins = 0; epochs_in(TMP "/killed") < at[k]; spins++) {
            assert_true(spins < 60000); /* 5 min */
            assert_int_equal(waitpid(p, &st, WNOHANG), 0);
            struct timespec ts = {0, 5000000};
            nanosleep(&ts, NULL);
        }
        struct timespec ts = {0, (long)dg_rng_below(&r, 40) * 1000000L};
        nanosleep(&ts, NULL);
        kill(p, SIGKILL);
        assert_int_equal(waitpid(p, &st, 0), p);
        assert_true(WIFSIGNALED(st));
        /* the kill landed mid-sweep, and took the trainers with it (within 2 s) */
        assert_false(dg_path_exists(TMP "/killed/leaderboard.csv"));
        int left = 0;
        for (int spins = 0; spins < 200 && (left = tu_processes_with(TMP "/killed/trials/")) > 0; spins++) {
            struct timespec t10 = {0, 10000000};
            nanosleep(&t10, NULL);
        }
        assert_int_equal(left, 0);
    }
    p = spawn_sweep(TMP "/killed");
    assert_int_equal(waitpid(p, &st, 0), p);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char *a = tu_board(TMP "/whole"), *b = tu_board(TMP "/killed");
    assert_string_equal(a, b);
    free(a);
    free(b);
    /* nothing left running; no trainer started on a run that had already reached its target */
    assert_int_equal(running_in(TMP "/killed/sweep.db"), 0);
    int launches = 0;
    for (int c = 0; c < 8; c++) {
        char path[512];
        snprintf(path, sizeof path, TMP "/killed/trials/c%04d-r0/launches.log", c);
        if (!dg_path_exists(path)) fail_msg("%s: configuration %d never ran", path, c);
        char *t = tu_read(path);
        for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
            int done, stop, fin;
            assert_int_equal(sscanf(line, "%d %d %d", &done, &stop, &fin), 3);
            if (fin || (stop > 0 && done >= stop)) fail_msg("%s: a finished trial ran again: '%s'", path, line);
            launches++;
        }
        free(t);
    }
    assert_true(launches >= 12);
}

/* ---- a deadline ---- */

/* A trainer that waits 1 s before it starts (so that 2 s cannot hold the sweep's 12+ launches on 2 workers). */
#define SLOW TMP "/train-slow.sh"

/* --for: the sweep stops at its deadline with configurations undecided, exits 0 and says so, leaves no trial marked
 * running and no trainer alive; started again without it, it finishes with the uninterrupted run's leaderboard
 * (test_kill_and_restart's, run here if that test did not). */
static void test_deadline(void **state) {
    (void)state;
    tu_put(TMP "/crash.sweep", CRASH_SWEEP);
    if (!dg_path_exists(TMP "/whole/leaderboard.csv")) {
        pid_t p = spawn_sweep(TMP "/whole");
        int st;
        assert_int_equal(waitpid(p, &st, 0), p);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    tu_put(SLOW, "#!/bin/sh\nsleep 1\n" TU_WRAPPER_EXEC);
    assert_int_equal(chmod(SLOW, 0755), 0);
    char *argv[] = {"digits-sweep", "--data", DATA,   "--dir",          TMP "/for", "--workers", "2",
                    "--for",        "2",    "--train", SLOW, TMP "/crash.sweep", NULL};
    sw_cli_opts o;
    dg_err err = {{0}};
    assert_int_equal(sw_cli_parse(12, argv, &o, &err), 0);
    FILE *log = fopen(TMP "/for.log", "w");
    assert_non_null(log);
    o.log = log;
    o.out = NULL;
    assert_int_equal(sw_cli_run(&o, &err), DG_EXIT_OK);
    assert_int_equal(fclose(log), 0);
    char *text = tu_read(TMP "/for.log");
    const char *at = strstr(text, "sweep: deadline reached with ");
    if (!at) fail_msg("no deadline line in the log:\n%s", text);
    int decided = -1, of = -1;
    assert_int_equal(sscanf(at, "sweep: deadline reached with %d of %d configurations decided", &decided, &of), 2);
    assert_int_equal(of, 8);
    assert_true(decided >= 0 && decided < 8);
    free(text);
    assert_int_equal(tu_processes_with(TMP "/for/trials/"), 0);
    assert_int_equal(running_in(TMP "/for/sweep.db"), 0);
    /* the next start, without a deadline, finishes it */
    assert_int_equal(sweep("--data " DATA " --dir " TMP "/for --workers 2 --train " WRAPPER " " TMP "/crash.sweep",
                           &err), 0);
    char *a = tu_board(TMP "/whole"), *b = tu_board(TMP "/for");
    assert_string_equal(a, b);
    free(a);
    free(b);
}

/* ---- bad databases and directories ---- */

static void test_bad_db(void **state) {
    (void)state;
    tu_put(TMP "/one.sweep", "{\"model\": \"lin.spec\", \"params\": {\"train.lr\": [0.01]}, \"threads\": 1}\n");
    tu_put(TMP "/lin.spec", linear_spec);
    tu_put(TMP "/two.sweep", "{\"model\": \"lin.spec\", \"params\": {\"train.lr\": [0.02]}, \"threads\": 1}\n");
    dg_err err;
    assert_int_equal(sweep("--data " DATA " --train " DIGITS_BIN_DIR "/digits-train --dir " TMP "/db " TMP "/one.sweep", &err), 0);
    assert_int_equal(sweep("--data " DATA " --train " DIGITS_BIN_DIR "/digits-train --dir " TMP "/db " TMP "/two.sweep", &err), DG_EXIT_FAIL);
    assert_non_null(strstr(err.msg, "/db/sweep.db belongs to another sweep"));
    /* a newer schema */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(TMP "/db/sweep.db", &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE meta SET value = '7' WHERE key = 'schema_version'", 0, 0, 0), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(sweep("--data " DATA " --train " DIGITS_BIN_DIR "/digits-train --dir " TMP "/db " TMP "/one.sweep", &err), DG_EXIT_FAIL);
    assert_non_null(strstr(err.msg, "written by a newer digits-sweep (schema version 7"));
    assert_int_equal(sqlite3_open(TMP "/db/sweep.db", &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE meta SET value = '1' WHERE key = 'schema_version'", 0, 0, 0), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(system("cp " TMP "/db/sweep.db " TMP "/good.db"), 0);
    /* damaged: a page overwritten with garbage, then the file cut short; each a clear error, and with the damaged
     * file moved away the sweep starts again, reading its finished trial back from the run directory (the
     * wrapper would log a launch) */
    static const char *const damage[] = {
        "dd if=/dev/urandom of=" TMP "/db/sweep.db bs=4096 seek=1 count=2 conv=notrunc status=none",
        "truncate -s 6000 " TMP "/db/sweep.db",
    };
    for (int i = 0; i < 2; i++) {
        assert_int_equal(system("cp " TMP "/good.db " TMP "/db/sweep.db"), 0);
        assert_int_equal(system(damage[i]), 0);
        assert_int_equal(sweep("--data " DATA " --train " WRAPPER " --dir " TMP "/db " TMP "/one.sweep", &err),
                         DG_EXIT_FAIL);
        if (!strstr(err.msg, "/db/sweep.db: ") || !strstr(err.msg, "(a damaged sweep.db: move it away"))
            fail_msg("damage %d: '%s'", i, err.msg);
        assert_true(dg_path_exists(TMP "/db/trials/c0000-r0/result.json"));
    }
    assert_int_equal(rename(TMP "/db/sweep.db", TMP "/db/damaged.db"), 0);
    assert_int_equal(sweep("--data " DATA " --train " WRAPPER " --dir " TMP "/db " TMP "/one.sweep", &err), 0);
    assert_false(dg_path_exists(TMP "/db/trials/c0000-r0/launches.log"));
    assert_int_equal(results_in(TMP "/db/sweep.db"), 1);
    /* not a database; the run directories are untouched */
    tu_put(TMP "/db/sweep.db", "this is not a database, it is a text file of some length to look like one............");
    unlink(TMP "/db/sweep.db-wal");
    unlink(TMP "/db/sweep.db-shm");
    assert_int_equal(sweep("--data " DATA " --train " DIGITS_BIN_DIR "/digits-train --dir " TMP "/db " TMP "/one.sweep", &err), DG_EXIT_FAIL);
    assert_non_null(strstr(err.msg, "file is not a database"));
    assert_true(dg_path_exists(TMP "/db/trials/c0000-r0/result.json"));
    /* a directory that cannot be made */
    tu_put(TMP "/afile", "x");
    assert_int_equal(sweep("--data " DATA " --dir " TMP "/afile/sub " TMP "/one.sweep", &err), DG_EXIT_FAIL);
    assert_non_null(strstr(err.msg, "afile"));
    /* a malformed sweep file fails with its position, and nothing is created */
    tu_put(TMP "/bad.sweep", "{\"model\": \"lin.spec\",\n \"params\": {\"train.lr\": {\"log_uniform\": [-1, 1]}}}");
    assert_int_equal(sweep("--data " DATA " --dir " TMP "/bad " TMP "/bad.sweep", &err), DG_EXIT_FAIL);
    assert_false(dg_path_exists(TMP "/bad"));
    assert_non_null(strstr(err.msg, "/bad.sweep:2:26: params \"train.lr\": log_uniform"));
    /* a dataset that cannot be opened: nothing is created either */
    assert_int_equal(sweep("--data " TMP "/missing.npy --dir " TMP "/nodata " TMP "/one.sweep", &err), DG_EXIT_FAIL);
    assert_non_null(strstr(err.msg, "missing.npy"));
    assert_false(dg_path_exists(TMP "/nodata"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_nan_trial_fails),
        cmocka_unit_test(test_best_spec_in_preset),
        cmocka_unit_test(test_kill_and_restart),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_bad_db),
    };
    return tu_exit(cmocka_run_group_tests(tests, setup, NULL));
}
