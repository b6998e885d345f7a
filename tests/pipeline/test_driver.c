/* Tests for pipeline/driver (stamps, fingerprints, skip / re-run / resume decisions with tiny shell stages) and
 * pipeline/preset (strict parsing, errors with file:line:col, the shipped presets). */
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <sys/wait.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kaggle/submission.h"
#include "core/dg_file.h"
#include "core/dg_progress.h"
#include "pipeline/driver.h"
#include "pipeline/preset.h"
#include "kaggle_csvs.h"
#include "testutil.h"

#define DIR DIGITS_TEST_TMP "/driver"

static void put(const char *path, const char *text) {
    dg_err err;
    assert_int_equal(dg_write_file_atomic(path, text, strlen(text), &err), 0);
}

/* Push a file's mtime 10 s into the past, so a rewrite is seen as a change of mtime. */
static void age(const char *path) {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    struct timespec t[2] = {st.st_atim, st.st_mtim};
    t[0].tv_sec -= 10;
    t[1].tv_sec -= 10;
    assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
}

/* A stage "sh -c SCRIPT sh ARGS..." reading DIR/in.txt and writing DIR/out.txt. */
static void make_stage(pl_stage *s, const char *script, const char *const *extra) {
    const char *argv[16] = {"/bin/sh", "-c", script, "sh"};
    int n = 4;
    for (int i = 0; extra && extra[i]; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    dg_err err;
    assert_int_equal(pl_stage_init(s, "copy", DIR "/stamps/copy.stamp", argv, &err), 0);
    assert_int_equal(pl_stage_input(s, DIR "/in.txt", &err), 0);
    assert_int_equal(pl_stage_output(s, DIR "/out.txt", &err), 0);
}

static pl_action decide(pl_stage *s, char *why) {
    pl_action a;
    dg_err err;
    assert_int_equal(pl_stage_decide(s, &a, why, 256, &err), 0);
    return a;
}

static void setup_dir(void) {
    dg_err err;
    assert_int_equal(system("rm -rf '" DIR "'"), 0);
    assert_int_equal(dg_mkdirs(DIR, &err), 0);
}

static void test_skip_when_unchanged_rerun_when_changed(void **state) {
    (void)state;
    setup_dir();
    dg_err err;
    char why[256];
    put(DIR "/in.txt", "hello\n");
    pl_stage s;
    const char *script = "cat " DIR "/in.txt > " DIR "/out.txt; echo x >> " DIR "/count.txt";
    const char *threads4[] = {"--threads", "4", NULL};
    make_stage(&s, script, threads4);
    assert_int_equal(decide(&s, why), PL_RUN);
    assert_string_equal(why, "not run before");
    assert_int_equal(pl_stage_execute(&s, PL_RUN, &err), 0);
    char *out = tu_read(DIR "/out.txt");
    assert_string_equal(out, "hello\n");
    free(out);
    assert_int_equal(decide(&s, why), PL_SKIP);
    assert_string_equal(why, "up to date");
    /* the stamp records the command without volatile options, and the inputs and outputs */
    char *st = tu_read(DIR "/stamps/copy.stamp");
    assert_non_null(strstr(st, "digits-stamp 1\nstate done\ncommand sh -c "));
    assert_null(strstr(st, "--threads"));
    assert_non_null(strstr(st, "\nin 6 "));
    assert_non_null(strstr(st, "\nout 6 "));
    free(st);
    pl_stage_free(&s);

    /* --threads is not part of the fingerprint */
    const char *threads1[] = {"--threads", "1", NULL};
    make_stage(&s, script, threads1);
    assert_int_equal(decide(&s, why), PL_SKIP);

    /* same content, new mtime: still up to date (content hash) */
    age(DIR "/in.txt");
    put(DIR "/in.txt", "hello\n");
    assert_int_equal(decide(&s, why), PL_SKIP);

    /* changed content: re-run */
    put(DIR "/in.txt", "world\n");
    assert_int_equal(decide(&s, why), PL_RUN);
    assert_string_equal(why, DIR "/in.txt changed");
    assert_int_equal(pl_stage_execute(&s, PL_RUN, &err), 0);
    out = tu_read(DIR "/out.txt");
    assert_string_equal(out, "world\n");
    free(out);
    assert_int_equal(decide(&s, why), PL_SKIP);

    /* changed content, same size, mtime moved */
    age(DIR "/in.txt");
    put(DIR "/in.txt", "WORLD\n");
    assert_int_equal(decide(&s, why), PL_RUN);
    assert_int_equal(pl_stage_execute(&s, PL_RUN, &err), 0);

    /* output deleted or modified: re-run */
    unlink(DIR "/out.txt");
    assert_int_equal(decide(&s, why), PL_RUN);
    assert_string_equal(why, DIR "/out.txt missing");
    assert_int_equal(pl_stage_execute(&s, PL_RUN, &err), 0);
    age(DIR "/out.txt");
    put(DIR "/out.txt", "edited by hand\n");
    assert_int_equal(decide(&s, why), PL_RUN);
    assert_string_equal(why, DIR "/out.txt was modified");
    assert_int_equal(pl_stage_execute(&s, PL_RUN, &err), 0);
    pl_stage_free(&s);

    /* a different command: re-run */
    make_stage(&s, "tr a-z A-Z < " DIR "/in.txt > " DIR "/out.txt; echo x >> " DIR "/count.txt", NULL);
    assert_int_equal(decide(&s, why), PL_RUN);
    assert_string_equal(why, "command changed");
    assert_int_equal(pl_stage_execute(&s, PL_RUN, &err), 0);
    assert_int_equal(decide(&s, why), PL_SKIP);
    pl_stage_free(&s);

    /* the stage ran exactly 6 times */
    char *count = tu_read(DIR "/count.txt");
    assert_string_equal(count, "x\nx\nx\nx\nx\nx\n");
    free(count);
}

static void test_failure_and_missing_output(void **state) {
    (void)state;
    setup_dir();
    dg_err err;
    char why[256];
    put(DIR "/in.txt", "a\n");
    pl_stage s;
    make_stage(&s, "exit 3", NULL);
    assert_int_equal(pl_stage_execute(&s, PL_RUN, &err), -1);
    assert_non_null(strstr(err.msg, "exited with status 3"));
    assert_int_equal(decide(&s, why), PL_RUN);
    assert_string_equal(why, "interrupted");
    pl_stage_free(&s);
    make_stage(&s, "true", NULL);
    assert_int_equal(pl_stage_execute(&s, PL_RUN, &err), -1);
    assert_non_null(strstr(err.msg, "did not write an output"));
    assert_non_null(strstr(err.msg, "out.txt"));
    pl_stage_free(&s);
    /* a missing executable */
    const char *argv[] = {DIR "/no-such-binary", NULL};
    assert_int_equal(pl_stage_init(&s, "ghost", DIR "/stamps/ghost.stamp", argv, &err), 0);
    assert_int_equal(pl_stage_execute(&s, PL_RUN, &err), -1);
    assert_non_null(strstr(err.msg, "could not start"));
    pl_stage_free(&s);
    /* a missing input */
    unlink(DIR "/in.txt");
    make_stage(&s, "true", NULL);
    assert_int_equal(decide(&s, why), PL_RUN);
    assert_int_equal(pl_stage_execute(&s, PL_RUN, &err), -1);
    assert_non_null(strstr(err.msg, "in.txt"));
    pl_stage_free(&s);
}

/* A "training" stage writing DIR/run/{checkpoint,result}: killed before finishing, it resumes with --resume; killed
 * after its result appeared, it is only recorded; with a new command, the old run directory is moved aside. */
static void test_resume_finish_and_stale(void **state) {
    (void)state;
    setup_dir();
    dg_err err;
    char why[256];
    put(DIR "/in.txt", "data\n");
    const char *script =
        "mkdir -p " DIR "/run; echo \"$*\" >> " DIR "/args.txt; echo ck > " DIR "/run/checkpoint.ckpt;"
        " [ -e " DIR "/crash ] && exit 9; echo done > " DIR "/run/result.json";
    pl_stage s;
    const char *argv[] = {"/bin/sh", "-c", script, "sh", "--epochs", "3", NULL};
    assert_int_equal(pl_stage_init(&s, "train", DIR "/stamps/train.stamp", argv, &err), 0);
    assert_int_equal(pl_stage_input(&s, DIR "/in.txt", &err), 0);
    assert_int_equal(pl_stage_output(&s, DIR "/run/result.json", &err), 0);
    snprintf(s.own_dir, sizeof s.own_dir, "%s", DIR "/run");
    snprintf(s.done_file, sizeof s.done_file, "%s", DIR "/run/result.json");
    snprintf(s.resume_file, sizeof s.resume_file, "%s", DIR "/run/checkpoint.ckpt");
    snprintf(s.resume_arg, sizeof s.resume_arg, "--resume");
    put(DIR "/crash", "");
    assert_int_equal(pl_stage_execute(&s, PL_RUN, &err), -1);
    assert_int_equal(decide(&s, why), PL_RESUME);
    unlink(DIR "/crash");
    assert_int_equal(pl_stage_execute(&s, PL_RESUME, &err), 0);
    assert_int_equal(decide(&s, why), PL_SKIP);
    char *args = tu_read(DIR "/args.txt");
    assert_string_equal(args, "--epochs 3\n--epochs 3 --resume\n");
    free(args);
    /* --resume is not part of the recorded command */
    char *st = tu_read(DIR "/stamps/train.stamp");
    assert_null(strstr(st, "--resume"));
    free(st);
    assert_null(s.argv[s.argc]);

    /* killed again mid-run (a forced re-run moves the finished run/ aside first), then the result appears while
     * the driver is dead: the next decision only records it */
    put(DIR "/crash", "");
    assert_int_equal(pl_stage_execute(&s, PL_RUN, &err), -1);
    assert_true(dg_path_exists(DIR "/run.stale-1/result.json"));
    assert_false(dg_path_exists(DIR "/run/result.json"));
    unlink(DIR "/crash");
    put(DIR "/run/result.json", "done\n");
    assert_int_equal(decide(&s, why), PL_FINISH);
    assert_int_equal(pl_stage_execute(&s, PL_FINISH, &err), 0);
    assert_int_equal(decide(&s, why), PL_SKIP);
    args = tu_read(DIR "/args.txt");
    assert_string_equal(args, "--epochs 3\n--epochs 3 --resume\n--epochs 3\n");
    free(args);
    pl_stage_free(&s);

    /* a new command (more epochs): the old run directory is moved aside, not reused */
    const char *argv2[] = {"/bin/sh", "-c", script, "sh", "--epochs", "4", NULL};
    assert_int_equal(pl_stage_init(&s, "train", DIR "/stamps/train.stamp", argv2, &err), 0);
    assert_int_equal(pl_stage_input(&s, DIR "/in.txt", &err), 0);
    assert_int_equal(pl_stage_output(&s, DIR "/run/result.json", &err), 0);
    snprintf(s.own_dir, sizeof s.own_dir, "%s", DIR "/run");
    snprintf(s.done_file, sizeof s.done_file, "%s", DIR "/run/result.json");
    assert_int_equal(decide(&s, why), PL_RUN);
    assert_string_equal(why, "command changed");
    assert_int_equal(pl_stage_execute(&s, PL_RUN, &err), 0);
    assert_true(dg_path_exists(DIR "/run.stale-2/result.json"));
    assert_true(dg_path_exists(DIR "/run/result.json"));
    pl_stage_free(&s);
}

static void test_hash(void **state) {
    (void)state;
    char a[100], b[100];
    for (int i = 0; i < 100; i++) a[i] = b[i] = (char)i;
    assert_true(pl_hash(a, 100) == pl_hash(b, 100));
    b[77] ^= 1;
    assert_true(pl_hash(a, 100) != pl_hash(b, 100));
    b[77] ^= 1;
    b[3] ^= 0x40;
    assert_true(pl_hash(a, 100) != pl_hash(b, 100));
    assert_true(pl_hash(a, 99) != pl_hash(a, 100));
    assert_true(pl_hash(a, 0) != pl_hash(a, 1));
}

/* ---- presets ---- */

static const char *kGood =
    "# a test preset\n"
    "split val-frac=0.2 split-seed=7\n"
    "member model=deotte seed=1 epochs=3 augment=kaggle   # first\n"
    "members model=mlp2 seeds=2-4 epochs=2 batch=128 lr=0.01\n"
    "\n"
    "tta=4 ensemble=fit\n"
    "budget_minutes=15\n"
    "speed model=deotte train=400 predict=2500\n";

static void test_preset_parse(void **state) {
    (void)state;
    pl_preset p;
    dg_err err;
    assert_int_equal(pl_preset_parse(&p, kGood, "dir/good.preset", &err), 0);
    assert_string_equal(p.name, "good");
    assert_float_equal(p.val_frac, 0.2, 1e-12);
    assert_int_equal(p.folds, 0);
    assert_int_equal(p.split_seed, 7);
    assert_int_equal(p.n_members, 4);
    assert_string_equal(p.members[0].model, "deotte");
    assert_int_equal(p.members[0].seed, 1);
    assert_int_equal(p.members[0].epochs, 3);
    assert_string_equal(p.members[0].augment, "kaggle");
    assert_int_equal(p.members[0].line, 3);
    assert_string_equal(p.members[3].model, "mlp2");
    assert_int_equal(p.members[3].seed, 4);
    assert_int_equal(p.members[3].batch, 128);
    assert_float_equal(p.members[3].lr, 0.01, 1e-12);
    assert_string_equal(p.members[3].augment, "");
    assert_int_equal(p.tta, 4);
    assert_int_equal(p.ensemble, PL_ENS_FIT);
    assert_float_equal(p.budget_minutes, 15, 1e-12);
    assert_int_equal(p.n_speeds, 1);
    assert_float_equal(p.speeds[0].train_ips, 400, 1e-9);
    assert_int_equal(p.jobs, 1);
    assert_float_equal(p.jobs_efficiency, PL_JOBS_EFFICIENCY, 1e-12);
    assert_int_equal(pl_preset_parse(&p, "member model=x seed=3\njobs=3 jobs_efficiency=0.5\n", "f.preset", &err), 0);
    assert_int_equal(p.jobs, 3);
    assert_float_equal(p.jobs_efficiency, 0.5, 1e-12);
    /* defaults and folds */
    assert_int_equal(pl_preset_parse(&p, "split folds=5\nmember model=x seed=3\n", "f.preset", &err), 0);
    assert_int_equal(p.folds, 5);
    assert_int_equal(p.split_seed, 1);
    assert_int_equal(p.tta, 1);
    assert_int_equal(p.ensemble, PL_ENS_SOFT);
    assert_int_equal(p.augment.on, 0);
    assert_int_equal(pl_preset_parse(&p, "augment policy=deskew apply=both\nmember model=x seed=3\n", "f.preset", &err),
                     0);
    assert_int_equal(p.augment.on, 1);
    assert_string_equal(p.augment.policy, "deskew");
    assert_int_equal(p.augment.both, 1);
    assert_int_equal(p.augment.copies, 1);
    assert_int_equal(p.augment.originals, 0);
    assert_int_equal(pl_preset_parse(&p, "augment policy=kaggle copies=3 seed=9\nmember model=x seed=3\n", "f.preset",
                                     &err), 0);
    assert_int_equal(p.augment.copies, 3);
    assert_int_equal(p.augment.originals, 1);
    assert_int_equal(p.augment.seed, 9);
    assert_int_equal(p.augment.both, 0);
    assert_int_equal(pl_preset_parse(&p, "members model=x seeds=5,9,11\n", "f.preset", &err), 0);
    assert_int_equal(p.n_members, 3);
    assert_int_equal(p.members[2].seed, 11);
    assert_float_equal(p.val_frac, 0.1, 1e-12);
}

static void expect_error(const char *text, const char *want) {
    pl_preset p;
    dg_err err = {{0}};
    assert_int_equal(pl_preset_parse(&p, text, "bad.preset", &err), -1);
    if (!strstr(err.msg, want)) {
        print_error("message \"%s\" lacks \"%s\"\n", err.msg, want);
        fail();
    }
}

static void test_preset_errors(void **state) {
    (void)state;
    expect_error("member model=a seed=1\nmembr model=a seed=2\n", "bad.preset:2:1: unknown statement \"membr\"");
    expect_error("member model=a seed=1 epochs=x\n", "bad.preset:1:23: epochs=x: expected an integer");
    expect_error("member model=a seed=1 epochs=0\n", "bad.preset:1:23: epochs=0");
    expect_error("member model=a seed=1 color=red\n", "bad.preset:1:23: unknown key \"color\"");
    expect_error("member model=a\n", "bad.preset:1:1: member: seed=S is required");
    expect_error("member seed=1\n", "bad.preset:1:1: member: model=NAME is required");
    expect_error("member model=a seed=1 seed=2\n", "bad.preset:1:23: seed given twice");
    expect_error("member model=a seed=1 epochs\n", "bad.preset:1:23: \"epochs\": expected key=value");
    expect_error("member model=a seed=1 epochs=\n", "bad.preset:1:23: epochs=: missing value");
    expect_error("member model=a seed=1\nmember model=a seed=1\n",
                 "bad.preset:2:1: member model=a seed=1 already given at line 1");
    expect_error("members model=a seeds=3-1\n", "bad.preset:1:17: seeds=3-1: expected a range");
    expect_error("members model=a seeds=1,,2\n", "bad.preset:1:17: seeds=1,,2");
    expect_error("members model=a seed=1\n", "bad.preset:1:17: unknown key \"seed\"");
    expect_error("split val-frac=0.1\nsplit folds=3\nmember model=a seed=1\n", "bad.preset:2:1: split given twice");
    expect_error("split val-frac=0.1 folds=3\n", "bad.preset:1:1: split: val-frac and folds exclude each other");
    expect_error("split val-frac=1.5\n", "bad.preset:1:7: val-frac=1.5");
    expect_error("split folds=1\n", "bad.preset:1:7: folds=1");
    expect_error("member model=a seed=1\ntta=0\n", "bad.preset:2:1: tta=0: expected 1..9 views");
    expect_error("member model=a seed=1\ntta=2 tta=3\n", "bad.preset:2:7: tta given twice");
    expect_error("member model=a seed=1\nensemble=avg\n", "bad.preset:2:1: ensemble=avg: expected soft, hard or fit");
    expect_error("member model=a seed=1\nbudget_minutes=-3\n", "bad.preset:2:1: budget_minutes=-3");
    expect_error("member model=a seed=1\ncolor=red\n", "bad.preset:2:1: unknown setting \"color\"");
    expect_error("member model=a seed=1\njobs=0\n", "bad.preset:2:1: jobs=0: expected an integer 1..64");
    expect_error("member model=a seed=1\njobs=2 jobs=3\n", "bad.preset:2:8: jobs given twice");
    expect_error("member model=a seed=1\njobs_efficiency=1.5\n", "bad.preset:2:1: jobs_efficiency=1.5: expected");
    expect_error("member model=a seed=1\nspeed model=a\n", "bad.preset:2:1: speed: give train=");
    expect_error("member model=a seed=1\nspeed model=a train=0\n", "bad.preset:2:15: train=0");
    expect_error("member model=a seed=1\nmember model=a$b seed=2\n", "bad.preset:2:8: model=a$b");
    expect_error("# nothing\n\n", "bad.preset:2: no member or members line");
    expect_error("augment copies=2\nmember model=a seed=1\n", "bad.preset:1:1: augment: policy=NAME is required");
    expect_error("augment policy=deskew apply=both copies=2\n", "bad.preset:1:1: augment apply=both needs copies=1");
    expect_error("augment policy=k\naugment policy=k\n", "bad.preset:2:1: augment given twice (first at line 1)");
    expect_error("augment policy=k originals=maybe\n", "bad.preset:1:18: originals=maybe: expected yes or no");
}

static void test_shipped_presets(void **state) {
    (void)state;
    static const char *const names[] = {"quick", "default", "dense", "long", "overnight", "bag5"};
    /* the budget-sized presets plan their epochs from this machine's measured speed */
    static const int adapts[] = {0, 1, 1, 1, 1, 0};
    for (int i = 0; i < 6; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/experiments/presets/%s.preset", DIGITS_SOURCE_DIR, names[i]);
        pl_preset p;
        dg_err err = {{0}};
        if (pl_preset_load(&p, path, &err) != 0) {
            print_error("%s\n", err.msg);
            fail();
        }
        assert_string_equal(p.name, names[i]);
        assert_true(p.n_members >= 1);
        assert_true(p.budget_minutes > 0);
        assert_true(p.jobs >= 1 && p.jobs <= p.n_members); /* never more concurrent chains than members */
        assert_int_equal(p.adapt.on, adapts[i]);
    }
    pl_preset p;
    dg_err err;
    assert_int_equal(pl_preset_load(&p, "no-such-preset", &err), -1);
    assert_non_null(strstr(err.msg, "preset 'no-such-preset' not found"));
}

/* digits-pipeline end to end on a tiny generated competition (200 training rows, 30 test rows): a submission
 * with 30 rows and a manifest; a second run re-runs nothing; a changed preset re-trains (the old run directory
 * is moved aside) and re-runs what depends on it. */
#define PTMP DIGITS_TEST_TMP "/pipe"

static int kg_check_rows(const char *path, size_t *rows) {
    dg_err err;
    return kg_submission_check_file(path, 0, 0, rows, NULL, &err);
}

static int pipeline(const char *log) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             DIGITS_BIN_DIR "/digits-pipeline -p " PTMP "/tiny.preset -d " PTMP "/data -w " PTMP "/work -o " PTMP
             "/sub.csv --threads 2 > " PTMP "/%s 2>&1",
             log);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_pipeline_end_to_end(void **state) {
    (void)state;
    dg_err err;
    assert_int_equal(system("rm -rf '" PTMP "'"), 0);
    assert_int_equal(dg_mkdirs(PTMP "/data", &err), 0);
    tu_kaggle_csvs(PTMP "/data", 1);
    put(PTMP "/tiny.preset", "split val-frac=0.2 split-seed=3\nmembers model=mlp2 seeds=1-2 epochs=1\nensemble=fit\n");
    assert_int_equal(pipeline("run1.log"), 0);
    size_t rows;
    assert_int_equal(kg_check_rows(PTMP "/sub.csv", &rows), 0);
    assert_int_equal(rows, 30);
    assert_true(dg_path_exists(PTMP "/sub.manifest.json"));
    assert_true(dg_path_exists(PTMP "/work/members/mlp2-s2/result.json"));
    assert_true(dg_path_exists(PTMP "/work/preds/mlp2-s1.npy"));
    assert_int_equal(tu_count_in(PTMP "/run1.log", ": done in"), 7);
    assert_int_equal(tu_count_in(PTMP "/sub.manifest.json", "\"mode\":\t\"shared-holdout\""), 1);
    assert_int_equal(tu_count_in(PTMP "/run1.log", "(shared-holdout validation, val_pred.npy)"), 1);

    /* again: nothing runs */
    assert_int_equal(pipeline("run2.log"), 0);
    assert_int_equal(tu_count_in(PTMP "/run2.log", ": up to date"), 7);
    assert_int_equal(tu_count_in(PTMP "/run2.log", ": done in"), 0);

    /* 2 epochs for the members: both re-train (old directories moved aside), predictions and ensemble re-run,
     * ingest does not */
    put(PTMP "/tiny.preset", "split val-frac=0.2 split-seed=3\nmembers model=mlp2 seeds=1-2 epochs=2\nensemble=fit\n");
    assert_int_equal(pipeline("run3.log"), 0);
    assert_int_equal(tu_count_in(PTMP "/run3.log", ": up to date"), 2);
    assert_int_equal(tu_count_in(PTMP "/run3.log", ": done in"), 5);
    assert_true(dg_path_exists(PTMP "/work/members/mlp2-s1.stale-1/result.json"));
    assert_int_equal(tu_count_in(PTMP "/work/members/mlp2-s1/metrics.jsonl", "\"epoch\""), 2);

    /* with TTA the members' hold-out rows go through the same views and the estimate reads them; nothing
     * re-trains */
    put(PTMP "/tiny.preset",
        "split val-frac=0.2 split-seed=3\nmembers model=mlp2 seeds=1-2 epochs=2\nensemble=fit\ntta=2\n");
    assert_int_equal(pipeline("run5.log"), 0);
    assert_int_equal(tu_count_in(PTMP "/run5.log", "train-mlp2-s1: up to date"), 1);
    assert_int_equal(tu_count_in(PTMP "/run5.log", "predict-val-mlp2-s2: done in"), 1);
    assert_true(dg_path_exists(PTMP "/work/members/mlp2-s1/val_pred_tta2.npy"));
    assert_int_equal(tu_count_in(PTMP "/sub.manifest.json", "\"val_pred\":\t\"val_pred_tta2.npy\""), 1);
    assert_int_equal(tu_count_in(PTMP "/run5.log", "(shared-holdout validation, val_pred_tta2.npy)"), 1);

    /* a broken preset is reported with file:line:col and runs nothing */
    put(PTMP "/tiny.preset", "members model=mlp2 seeds=1-2 epochs=two\n");
    assert_int_equal(pipeline("run4.log"), 1);
    assert_int_equal(tu_count_in(PTMP "/run4.log", "tiny.preset:1:30: epochs=two"), 1);
}

/* ---- jobs: members' chains at the same time, with fake stage programs (tiny shell scripts) ---- */
#define JTMP DIGITS_TEST_TMP "/jobs"

static void script(const char *name, const char *body) {
    char path[512];
    snprintf(path, sizeof path, JTMP "/bin/%s", name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s", body);
    fclose(f);
    assert_int_equal(chmod(path, 0755), 0);
}

/* Fake digits-ingest/-train/-predict/-ensemble in JTMP/bin. The train stage logs "NAME start|end TIME threads=T
 * resume=R" to JTMP/log, writes a checkpoint, prints a line on stdout and one on stderr, fails with status 3 if
 * JTMP/fail-NAME exists, else sleeps $(cat JTMP/sleep) seconds and writes its outputs. */
static void setup_jobs(void) {
    dg_err err;
    assert_int_equal(system("rm -rf '" JTMP "'"), 0);
    assert_int_equal(dg_mkdirs(JTMP "/bin", &err), 0);
    assert_int_equal(dg_mkdirs(JTMP "/data", &err), 0);
    script("digits-ingest", "while [ $# -gt 1 ]; do [ \"$1\" = -o ] && out=$2; shift; done\ncp \"$1\" \"$out\"\n");
    script("digits-train",
           "res=0\n"
           "while [ $# -gt 0 ]; do case \"$1\" in --run) run=$2; shift;; --threads) thr=$2; shift;;"
           " --resume) res=1;; esac; shift; done\n"
           "m=${run##*/}\n"
           "echo \"$m start $(date +%s.%N) threads=$thr resume=$res\" >> " JTMP "/log\n"
           "mkdir -p \"$run\" && echo ck > \"$run/checkpoint.ckpt\"\n"
           "echo \"epoch 1 of $m\"\n"
           "echo \"validation of $m\" >&2\n"
           "if [ -e " JTMP "/fail-$m ]; then echo \"$m: diverged\" >&2; exit 3; fi\n"
           "sleep $(cat " JTMP "/sleep)\n"
           "for f in result.json model.safetensors val_pred.npy val_ids.npy; do echo \"$m $f\" > \"$run/$f\"; done\n"
           "echo \"$m end $(date +%s.%N)\" >> " JTMP "/log\n");
    script("digits-predict", "while [ $# -gt 1 ]; do [ \"$1\" = -o ] && out=$2; shift; done\n"
                             "echo \"probabilities of ${1##*/}\" > \"$out\"\n");
    script("digits-ensemble", "while [ $# -gt 0 ]; do case \"$1\" in -o) out=$2; shift;; *=*) p=\"$p ${1#*=}\";;"
                              " esac; shift; done\ncat $p > \"$out\" && echo '{}' > \"${out%.csv}.manifest.json\"\n");
    put(JTMP "/sleep", "1\n");
    FILE *tr = fopen(JTMP "/data/train.csv", "w"), *te = fopen(JTMP "/data/test.csv", "w");
    assert_non_null(tr);
    assert_non_null(te);
    fprintf(tr, "label,pixel0\n");
    fprintf(te, "pixel0\n");
    for (int i = 0; i < 20; i++) fprintf(i < 17 ? tr : te, i < 17 ? "%d,%d\n" : "%d\n", i % 10, i);
    fclose(tr);
    fclose(te);
    put(JTMP "/p.preset", "split val-frac=0.2 split-seed=3\nmembers model=mlp2 seeds=1-2 epochs=1\n"
                          "speed model=mlp2 train=1000 predict=1000\njobs=2\n");
}

#define JOBS_CMD                                                                                                  \
    DIGITS_BIN_DIR "/digits-pipeline -p " JTMP "/p.preset -d " JTMP "/data -w " JTMP "/work -o " JTMP             \
                   "/sub.csv --bin-dir " JTMP "/bin --threads 2"

/* digits-pipeline with the fake stages; returns its exit status and how long it took. */
static int jobs_pipeline(const char *args, const char *log, double *seconds) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, JOBS_CMD " %s > " JTMP "/%s 2>&1", args, log);
    double t0 = dg_now();
    int rc = system(cmd);
    if (seconds) *seconds = dg_now() - t0;
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The time of the last "<member> <what> TIME" line of JTMP/log, or -1. */
static double log_time(const char *member, const char *what) {
    char key[64], *t = tu_read(JTMP "/log");
    snprintf(key, sizeof key, "%s %s ", member, what);
    double v = -1;
    for (const char *p = t; (p = strstr(p, key)) != NULL; p++) v = strtod(p + strlen(key), NULL);
    free(t);
    return v;
}

/* The last "<member> start" line of JTMP/log (malloc'd). */
static char *last_start(const char *member) {
    char key[64], *t = tu_read(JTMP "/log"), *last = NULL;
    snprintf(key, sizeof key, "%s start ", member);
    for (char *p = t; (p = strstr(p, key)) != NULL; p++) last = p;
    assert_non_null(last);
    char *nl = strchr(last, '\n');
    if (nl) *nl = '\0';
    char *line = strdup(last);
    free(t);
    return line;
}

/* Every stamp of JTMP/work (name and text, mtimes left out), and the predictions and the submission. */
static char *results(void) {
    size_t cap = 1 << 16, n = 0;
    char *out = calloc(cap, 1);
    glob_t g;
    assert_int_equal(glob(JTMP "/work/stamps/*.stamp", 0, NULL, &g), 0);
    assert_int_equal(g.gl_pathc, 7);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char *t = tu_read(g.gl_pathv[i]);
        n += (size_t)snprintf(out + n, cap - n, "== %s\n", g.gl_pathv[i]);
        for (char *save = NULL, *l = strtok_r(t, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
            unsigned long long size;
            long long mtime;
            int used = 0;
            if ((!strncmp(l, "in ", 3) || !strncmp(l, "out ", 4)) &&
                sscanf(strchr(l, ' ') + 1, "%llu %lld %n", &size, &mtime, &used) == 2 && used > 0)
                n += (size_t)snprintf(out + n, cap - n, "%.*s %llu %s\n", (int)(strchr(l, ' ') - l), l, size,
                                      strchr(l, ' ') + 1 + used);
            else
                n += (size_t)snprintf(out + n, cap - n, "%s\n", l);
        }
        free(t);
    }
    globfree(&g);
    static const char *const files[] = {JTMP "/work/preds/mlp2-s1.npy", JTMP "/work/preds/mlp2-s2.npy",
                                        JTMP "/sub.csv"};
    for (int i = 0; i < 3; i++) {
        char *t = tu_read(files[i]);
        n += (size_t)snprintf(out + n, cap - n, "== %s\n%s", files[i], t);
        free(t);
    }
    assert_true(n < cap - 1);
    return out;
}

/* jobs=2 (the preset's) runs the two members' chains at the same time with 1 thread each; --jobs 1 runs them one
 * after another with 2; both give the same stamps and files; a re-run skips everything. */
static void test_jobs_concurrent(void **state) {
    (void)state;
    setup_jobs();
    double t1, t2, t3;
    assert_int_equal(jobs_pipeline("--jobs 1", "one.log", &t1), 0);
    assert_int_equal(tu_count_in(JTMP "/one.log", ": done in"), 7);
    assert_int_equal(tu_count_in(JTMP "/one.log", "jobs     1: members one after another, 2 thread(s)"), 1);
    assert_int_equal(tu_count_in(JTMP "/log", "threads=2 resume=0"), 2);
    assert_int_equal(tu_count_in(JTMP "/one.log", "[mlp2-s"), 0); /* jobs=1: the stages' output as it is */
    assert_int_equal(tu_count_in(JTMP "/one.log", "\nepoch 1 of mlp2-s2\n"), 1);
    assert_true(log_time("mlp2-s2", "start") >= log_time("mlp2-s1", "end"));
    assert_true(t1 >= 2.0);
    char *seq = results();

    assert_int_equal(system("rm -rf '" JTMP "/work' '" JTMP "/log' '" JTMP "/sub.csv'"), 0);
    assert_int_equal(jobs_pipeline("", "two.log", &t2), 0);
    assert_int_equal(tu_count_in(JTMP "/two.log", ": done in"), 7);
    assert_int_equal(tu_count_in(JTMP "/two.log", "jobs     2 members at a time, 1 thread(s) each"), 1);
    assert_int_equal(tu_count_in(JTMP "/log", "threads=1 resume=0"), 2);
    /* both trains ran at once: each started before the other ended; less wall time than the two sleeps */
    double s1 = log_time("mlp2-s1", "start"), e1 = log_time("mlp2-s1", "end");
    double s2 = log_time("mlp2-s2", "start"), e2 = log_time("mlp2-s2", "end");
    assert_true(s1 > 0 && s2 > 0 && e1 >= s1 + 1 && e2 >= s2 + 1);
    assert_true(s2 < e1 && s1 < e2);
    /* their output lines, stdout and stderr, come whole and prefixed with the member */
    assert_int_equal(tu_count_in(JTMP "/two.log", "\n[mlp2-s1] epoch 1 of mlp2-s1\n"), 1);
    assert_int_equal(tu_count_in(JTMP "/two.log", "\n[mlp2-s2] validation of mlp2-s2\n"), 1);
    char *par = results();
    assert_string_equal(par, seq);
    free(seq);
    free(par);

    /* again: nothing runs */
    assert_int_equal(jobs_pipeline("", "three.log", &t3), 0);
    assert_int_equal(tu_count_in(JTMP "/three.log", ": up to date"), 7);
    assert_int_equal(tu_count_in(JTMP "/three.log", ": done in"), 0);
    assert_int_equal(tu_count_in(JTMP "/log", " start "), 2);
}

/* A member failing while another runs: the other is stopped, exit 1 names the failed stage; the next run resumes
 * the failed member from its checkpoint and finishes; the one after skips everything. */
static void test_jobs_failure(void **state) {
    (void)state;
    setup_jobs();
    put(JTMP "/fail-mlp2-s1", "");
    assert_int_equal(jobs_pipeline("", "fail.log", NULL), 1);
    assert_int_equal(tu_count_in(JTMP "/fail.log", "digits-pipeline: stage train-mlp2-s1 failed"), 1);
    assert_int_equal(tu_count_in(JTMP "/fail.log", "exited with status 3"), 1);
    assert_int_equal(tu_count_in(JTMP "/fail.log", "\n[mlp2-s1] mlp2-s1: diverged\n"), 1);
    assert_int_equal(tu_count_in(JTMP "/fail.log", "train-mlp2-s1: failed\n"), 1);
    assert_int_equal(tu_count_in(JTMP "/fail.log", "train-mlp2-s2: stopping it (SIGTERM)"), 1);
    assert_int_equal(tu_count_in(JTMP "/fail.log", "train-mlp2-s2: stopped"), 1);
    assert_int_equal(tu_count_in(JTMP "/fail.log", "predict-"), 2); /* in the plan only */
    assert_false(dg_path_exists(JTMP "/work/members/mlp2-s2/result.json"));
    assert_false(dg_path_exists(JTMP "/sub.csv"));

    unlink(JTMP "/fail-mlp2-s1");
    assert_int_equal(jobs_pipeline("", "again.log", NULL), 0);
    assert_int_equal(tu_count_in(JTMP "/again.log", "train-mlp2-s1: resume (interrupted; resuming from"), 1);
    char *line = last_start("mlp2-s1");
    assert_non_null(strstr(line, "threads=1 resume=1"));
    free(line);
    assert_int_equal(tu_count_in(JTMP "/again.log", ": up to date"), 2); /* ingest-train, ingest-test */
    assert_int_equal(tu_count_in(JTMP "/again.log", ": done in"), 5);
    assert_true(dg_path_exists(JTMP "/sub.csv"));
    assert_int_equal(jobs_pipeline("", "skip.log", NULL), 0);
    assert_int_equal(tu_count_in(JTMP "/skip.log", ": up to date"), 7);
}

/* digits-pipeline killed (SIGKILL) while two members train: the members die with it, and the next run resumes
 * both from their checkpoints. */
static void test_jobs_killed_and_resumed(void **state) {
    (void)state;
    setup_jobs();
    put(JTMP "/sleep", "3\n");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(JTMP "/killed.log", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _exit(126);
        execl("/bin/sh", "sh", "-c", "exec " JOBS_CMD, (char *)NULL);
        _exit(127);
    }
    double t0 = dg_now();
    while (!(dg_path_exists(JTMP "/work/members/mlp2-s1/checkpoint.ckpt") &&
             dg_path_exists(JTMP "/work/members/mlp2-s2/checkpoint.ckpt")) &&
           dg_now() - t0 < 20)
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_true(dg_now() - t0 < 3);
    put(JTMP "/sleep", "1\n");
    assert_int_equal(jobs_pipeline("", "resumed.log", NULL), 0);
    assert_int_equal(tu_count_in(JTMP "/resumed.log", ": resume (interrupted; resuming from"), 2);
    for (int m = 1; m <= 2; m++) {
        char *line = last_start(m == 1 ? "mlp2-s1" : "mlp2-s2");
        assert_non_null(strstr(line, "resume=1"));
        free(line);
    }
    assert_int_equal(tu_count_in(JTMP "/log", " end "), 2); /* the killed runs never finished */
    assert_int_equal(jobs_pipeline("", "skip.log", NULL), 0);
    assert_int_equal(tu_count_in(JTMP "/skip.log", ": up to date"), 7);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_skip_when_unchanged_rerun_when_changed),
        cmocka_unit_test(test_failure_and_missing_output),
        cmocka_unit_test(test_resume_finish_and_stale),
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_preset_parse),
        cmocka_unit_test(test_preset_errors),
        cmocka_unit_test(test_shipped_presets),
        cmocka_unit_test(test_pipeline_end_to_end),
        cmocka_unit_test(test_jobs_concurrent),
        cmocka_unit_test(test_jobs_failure),
        cmocka_unit_test(test_jobs_killed_and_resumed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
