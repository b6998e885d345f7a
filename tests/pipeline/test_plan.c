/* Tests for pipeline/plan: the steps pl_plan_build makes for a preset, and pl_plan_decide's decisions, lanes and
 * time estimates, checked against numbers worked out by hand from the formulas in plan.h.
 *
 * The data are CSV files of known size whose lines are not parsed (the planner only counts them): train.csv has a
 * 6-byte header and 1000 two-byte lines (2006 bytes), test.csv a 7-byte header and 300 lines (607 bytes); no
 * sample_submission.csv. The member is mlp2 with a preset speed line (train 900, predict 1000 images/s) unless a
 * test says otherwise, so that one epoch of the 0.1 hold-out (fit 900, validate 100) takes 900/900 + 100/1000 =
 * 1.1 s by the formula. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/dg_file.h"
#include "pipeline/driver.h"
#include "pipeline/plan.h"
#include "pipeline/preset.h"

#define TMP DIGITS_TEST_TMP "/plan"
#define DATA TMP "/data"
#define WORK TMP "/work"

static const double kIngestTrain = 0.5 + 2006 / 300e6, kIngestTest = 0.5 + 607 / 300e6;

/* The estimates are the plan.h formulas evaluated in double, here in another order: they agree to a few ulps,
 * so 1e-12 relative is tight enough to catch any change of a term (the smallest, bytes / 300e6, is ~1e-6 of the
 * ingest estimate). */
static void assert_close(double got, double want) {
    if (fabs(got - want) > 1e-12 * fabs(want)) fail_msg("%.17g, expected %.17g", got, want);
}

static void put(const char *path, const char *text) {
    dg_err err;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    assert_int_equal(dg_mkdirs(dir, &err), 0);
    assert_int_equal(dg_write_file_atomic(path, text, strlen(text), &err), 0);
}

/* A CSV of a header and n lines "1". */
static void csv(const char *path, const char *header, int n) {
    size_t len = strlen(header) + 1 + 2 * (size_t)n;
    char *t = malloc(len + 1);
    assert_non_null(t);
    int k = sprintf(t, "%s\n", header);
    for (int i = 0; i < n; i++) k += sprintf(t + k, "1\n");
    assert_int_equal((size_t)k, len);
    put(path, t);
    free(t);
}

/* A fresh TMP with the standard data. */
static void fresh(void) {
    assert_int_equal(system("rm -rf '" TMP "'"), 0);
    csv(DATA "/train.csv", "label", 1000);
    csv(DATA "/test.csv", "pixel0", 300);
}

static pl_preset *preset(const char *text) {
    pl_preset *p = malloc(sizeof *p);
    assert_non_null(p);
    dg_err err;
    if (pl_preset_parse(p, text, "t.preset", &err) != 0) fail_msg("%s", err.msg);
    return p;
}

/* Build (and, when decide, decide) the plan of p on DATA into WORK with T threads and `jobs` jobs. */
static void plan_of(pl_plan *plan, const pl_preset *p, int threads, int jobs, int decide) {
    pl_opts o;
    memset(&o, 0, sizeof o);
    snprintf(o.bin_dir, sizeof o.bin_dir, TMP "/bin");
    snprintf(o.data_dir, sizeof o.data_dir, DATA);
    snprintf(o.work, sizeof o.work, WORK);
    snprintf(o.output, sizeof o.output, TMP "/sub.csv");
    o.threads = threads;
    o.jobs = jobs;
    dg_err err;
    if (pl_plan_build(plan, p, &o, &err) != 0) fail_msg("build: %s", err.msg);
    if (decide && pl_plan_decide(plan, &err) != 0) fail_msg("decide: %s", err.msg);
}

static const pl_step *step(const pl_plan *plan, const char *name) {
    for (int i = 0; i < plan->n_steps; i++)
        if (!strcmp(plan->steps[i].stage.name, name)) return &plan->steps[i];
    fail_msg("no step %s", name);
    return NULL;
}

/* The value after `opt` in a step's command, or NULL. */
static const char *arg(const pl_step *s, const char *opt) {
    for (int i = 1; i + 1 < s->stage.argc; i++)
        if (!strcmp(s->stage.argv[i], opt)) return s->stage.argv[i + 1];
    return NULL;
}

/* The steps in order, their commands and files; one job: every estimate as the formulas give it alone. With TTA
 * each run's validation rows are predicted with the same views, and the ensemble's estimate reads those. */
static void test_steps_and_estimates(void **state) {
    (void)state;
    fresh();
    pl_preset *p = preset("members model=mlp2 seeds=1-3 epochs=2\ntta=2\nspeed model=mlp2 train=900 predict=1000\n");
    pl_plan plan;
    plan_of(&plan, p, 2, 1, 1);
    assert_int_equal(plan.n_train, 1000);
    assert_int_equal(plan.n_test, 300);
    assert_int_equal(plan.n_val, 100);
    assert_int_equal(plan.n_fit, 900);
    static const char *const names[] = {
        "ingest-train",    "ingest-test",         "train-mlp2-s1",   "predict-mlp2-s1", "predict-val-mlp2-s1",
        "train-mlp2-s2",   "predict-mlp2-s2",     "predict-val-mlp2-s2", "train-mlp2-s3", "predict-mlp2-s3",
        "predict-val-mlp2-s3", "ensemble"};
    assert_int_equal(plan.n_steps, 12);
    assert_int_equal(plan.n_runs, 3);
    for (int i = 0; i < 12; i++) {
        assert_string_equal(plan.steps[i].stage.name, names[i]);
        assert_int_equal(plan.steps[i].action, PL_RUN);
        assert_string_equal(plan.steps[i].why, "not run before");
    }
    assert_string_equal(plan.runs[1].speed_from, "preset");
    assert_string_equal(plan.runs[1].run_dir, WORK "/members/mlp2-s2");

    const pl_step *tr = step(&plan, "train-mlp2-s2"), *pr = step(&plan, "predict-mlp2-s2");
    assert_string_equal(tr->stage.argv[0], TMP "/bin/digits-train");
    assert_string_equal(arg(tr, "--data"), DATA "/train.npy");
    assert_string_equal(arg(tr, "--epochs"), "2");
    assert_string_equal(arg(tr, "--val-frac"), "0.1");
    assert_string_equal(arg(tr, "--threads"), "2");
    assert_null(arg(tr, "--folds"));
    assert_int_equal(tr->stage.n_out, 4);
    assert_string_equal(tr->stage.resume_file, WORK "/members/mlp2-s2/checkpoint.ckpt");
    assert_int_equal(tr->images, 2 * 900);
    assert_string_equal(arg(pr, "--tta"), "2");
    assert_string_equal(pr->stage.outputs[0], WORK "/preds/mlp2-s2.npy");
    assert_int_equal(pr->images, 300 * 2);
    const pl_step *pv = step(&plan, "predict-val-mlp2-s2");
    assert_string_equal(pv->stage.argv[0], TMP "/bin/digits-predict");
    assert_string_equal(arg(pv, "--data"), DATA "/train.npy");
    assert_string_equal(arg(pv, "--ids"), WORK "/members/mlp2-s2/val_ids.npy");
    assert_string_equal(arg(pv, "--tta"), "2");
    assert_string_equal(arg(pv, "-o"), WORK "/members/mlp2-s2/val_pred_tta2.npy");
    assert_string_equal(pv->stage.argv[pv->stage.argc - 1], WORK "/members/mlp2-s2");
    assert_int_equal(pv->run, 1);
    assert_int_equal(pv->images, 100 * 2);
    const pl_step *en = step(&plan, "ensemble");
    assert_string_equal(arg(en, "--rows"), "300"); /* no sample_submission.csv */
    assert_string_equal(arg(en, "--val-pred"), "val_pred_tta2.npy");
    assert_int_equal(en->stage.n_in, 1 + 3 * 4);
    int reads_tta = 0;
    for (int i = 0; i < en->stage.n_in; i++) reads_tta += strstr(en->stage.inputs[i], "/val_pred_tta2.npy") != NULL;
    assert_int_equal(reads_tta, 3);
    assert_string_equal(en->stage.outputs[1], TMP "/sub.manifest.json");

    /* train 2 + epochs x 1.1; predict 1 + 300 x 2 / 1000; predict-val 1 + 100 x 2 / 1000; ensemble 1 */
    double train = 2 + 2 * 1.1, predict = 1 + 0.6, predict_val = 1 + 0.2;
    assert_close(step(&plan, "ingest-train")->estimate_s, kIngestTrain);
    assert_close(step(&plan, "ingest-test")->estimate_s, kIngestTest);
    assert_close(tr->estimate_s, train);
    assert_close(tr->stage.estimate_s, train);
    assert_close(pr->estimate_s, predict);
    assert_close(pv->estimate_s, predict_val);
    assert_close(en->estimate_s, 1);
    assert_int_equal(plan.jobs, 1);
    assert_int_equal(plan.job_threads, 2);
    assert_close(plan.job_slowdown, 1);
    assert_close(plan.total_s, kIngestTrain + kIngestTest + 3 * (train + predict + predict_val) + 1);
    pl_plan_free(&plan);
    free(p);
}

/* jobs: the member stages' threads, the slowdown N / (min(N, T) x jobs_efficiency), and the chains handed in order
 * to the lane free first. */
static void test_lanes(void **state) {
    (void)state;
    fresh();
    /* chains alone: (2 + 4 x 1.1) + 1.3 = 7.7 s, and 4.4 s twice */
    pl_preset *p = preset("member model=mlp2 seed=1 epochs=4\nmembers model=mlp2 seeds=2-3 epochs=1\n"
                          "speed model=mlp2 train=900 predict=1000\njobs=2 jobs_efficiency=0.5\n");
    pl_plan plan;
    plan_of(&plan, p, 2, 2, 1);
    /* T = 2, N = 2: speedup 2 x 0.5 = 1, slowdown 2; lanes: 15.4 | 8.8, then the third chain to the second lane */
    assert_int_equal(plan.jobs, 2);
    assert_int_equal(plan.job_threads, 1);
    assert_close(plan.job_slowdown, 2);
    assert_close(step(&plan, "train-mlp2-s1")->estimate_s, 2 * (2 + 4 * 1.1));
    assert_close(step(&plan, "predict-mlp2-s3")->stage.estimate_s, 2 * 1.3);
    assert_close(plan.total_s, kIngestTrain + kIngestTest + 2 * (4.4 + 4.4) + 1);
    assert_string_equal(arg(step(&plan, "train-mlp2-s1"), "--threads"), "1");
    assert_string_equal(arg(step(&plan, "predict-mlp2-s2"), "--threads"), "1");
    assert_string_equal(arg(step(&plan, "ingest-train"), "--threads"), "2"); /* stages alone keep all T */
    pl_plan_free(&plan);

    /* T = 1, N = 2: min(N, T) = 1 lane, speedup 1, slowdown 2, each member stage 1 thread */
    plan_of(&plan, p, 1, 2, 1);
    assert_int_equal(plan.job_threads, 1);
    assert_close(plan.job_slowdown, 2);
    pl_plan_free(&plan);

    /* jobs_efficiency 0.5 -> 0.76 (the default), T = 4, N = 5 capped at the 3 members: 4 / 3 -> 1 thread each,
     * speedup 3 x 0.76, and with equal chains one per lane the members take their time alone / speedup */
    free(p);
    p = preset("members model=mlp2 seeds=1-3 epochs=1\nspeed model=mlp2 train=900 predict=1000\n");
    plan_of(&plan, p, 4, 5, 1);
    assert_int_equal(plan.jobs, 3);
    assert_int_equal(plan.job_threads, 1);
    assert_close(plan.job_slowdown, 3 / (3 * PL_JOBS_EFFICIENCY));
    assert_close(plan.total_s, kIngestTrain + kIngestTest + 3 * 4.4 / (3 * PL_JOBS_EFFICIENCY) + 1);
    pl_plan_free(&plan);
    free(p);
}

/* Mark a step done as if it had run: its outputs exist and its stamp says done. */
static void mark_done(pl_step *s) {
    dg_err err;
    for (int i = 0; i < s->stage.n_out; i++) put(s->stage.outputs[i], "x\n");
    if (pl_stage_execute(&s->stage, PL_FINISH, &err) != 0) fail_msg("%s", err.msg);
}

/* Skipping: up-to-date steps count 0 s and take no lane (jobs capped by the members with work, so a lone member
 * gets all threads); a resumed train counts only its epochs left; a step reading what a running step writes runs. */
static void test_skipping_and_resume(void **state) {
    (void)state;
    fresh();
    pl_preset *p = preset("members model=mlp2 seeds=1-2 epochs=2\nspeed model=mlp2 train=900 predict=1000\n"
                          "jobs=2 jobs_efficiency=0.5\n");
    pl_plan plan;
    plan_of(&plan, p, 2, 2, 0);
    for (int i = 0; i < 4; i++) mark_done(&plan.steps[i]); /* ingest-train, ingest-test, mlp2-s1's chain */
    pl_plan_free(&plan);

    plan_of(&plan, p, 2, 2, 1);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(plan.steps[i].action, PL_SKIP);
        assert_close(plan.steps[i].estimate_s, 0);
    }
    assert_int_equal(step(&plan, "train-mlp2-s2")->action, PL_RUN);
    assert_int_equal(plan.jobs, 1);
    assert_int_equal(plan.job_threads, 2);
    assert_string_equal(arg(step(&plan, "train-mlp2-s2"), "--threads"), "2");
    assert_close(plan.total_s, (2 + 2 * 1.1) + 1.3 + 1);

    /* train-mlp2-s2 interrupted after 1 of its 2 epochs: a "running" stamp, a checkpoint, one metrics line */
    put(TMP "/bin/digits-train", "#!/bin/sh\nexit 0\n");
    assert_int_equal(chmod(TMP "/bin/digits-train", 0755), 0);
    pl_step *s = (pl_step *)step(&plan, "train-mlp2-s2");
    pid_t pid;
    dg_err err;
    if (pl_stage_start(&s->stage, PL_RUN, -1, &pid, &err) != 0) fail_msg("%s", err.msg);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    pl_plan_free(&plan); /* no pl_stage_finish: the stamp stays "running" */
    put(WORK "/members/mlp2-s2/checkpoint.ckpt", "ck\n");
    put(WORK "/members/mlp2-s2/metrics.jsonl", "{\"epoch\":1}\n");
    plan_of(&plan, p, 2, 2, 1);
    assert_int_equal(step(&plan, "train-mlp2-s2")->action, PL_RESUME);
    assert_close(step(&plan, "train-mlp2-s2")->estimate_s, 2 + 1 * 1.1);
    assert_close(plan.total_s, (2 + 1.1) + 1.3 + 1);
    pl_plan_free(&plan);

    /* train.csv changes: ingest-train runs, so the done train-mlp2-s1 (reading train.npy) runs after it, and
     * predict-mlp2-s1 after that; two members have work again */
    csv(DATA "/train.csv", "label", 1001);
    plan_of(&plan, p, 2, 2, 1);
    assert_int_equal(step(&plan, "ingest-train")->action, PL_RUN);
    assert_int_equal(step(&plan, "ingest-test")->action, PL_SKIP);
    assert_int_equal(step(&plan, "train-mlp2-s1")->action, PL_RUN);
    assert_string_equal(step(&plan, "train-mlp2-s1")->why, "after ingest-train");
    assert_string_equal(step(&plan, "predict-mlp2-s1")->why, "after train-mlp2-s1");
    assert_int_equal(plan.jobs, 2);
    pl_plan_free(&plan);
    free(p);
}

/* Folds and offline augmentation change the sizes: K folds validate n_train / K each; augmentation multiplies
 * n_train by copies + originals before the split, and the members read its output. */
static void test_folds_and_augment(void **state) {
    (void)state;
    fresh();
    pl_preset *p = preset("split folds=3 split-seed=7\nmember model=mlp2 seed=4 epochs=1\n"
                          "augment policy=kaggle copies=2\nspeed model=mlp2 train=900 predict=1000\n");
    pl_plan plan;
    plan_of(&plan, p, 2, 1, 1);
    assert_int_equal(plan.n_train, 3000);
    assert_int_equal(plan.n_val, 1000);
    assert_int_equal(plan.n_fit, 2000);
    assert_int_equal(plan.n_runs, 3);
    const pl_step *ag = step(&plan, "augment-train"), *tr = step(&plan, "train-mlp2-s4-f2");
    assert_int_equal(ag->images, 1000 * 2);
    assert_close(ag->estimate_s, 1 + 2000 / PL_AUGMENT_IPS);
    assert_string_equal(arg(ag, "--copies"), "2");
    assert_string_equal(arg(tr, "--data"), WORK "/data/train-aug.npy");
    assert_string_equal(arg(tr, "--fold"), "2");
    assert_string_equal(arg(tr, "--folds"), "3");
    assert_null(arg(tr, "--val-frac"));
    /* one epoch: 2000 / 900 + 1000 / 1000 */
    assert_close(tr->estimate_s, 2 + (2000.0 / 900 + 1));
    assert_int_equal(tr->images, 2000);
    pl_plan_free(&plan);
    free(p);
}

/* Planning speeds, first found: measured (timings.jsonl of any preset beside WORK, a jobs > 1 line counting
 * images_per_s / jobs_efficiency; else train epochs of metrics.jsonl), the preset's speed line, the FLOPs guess. */
static void test_speeds(void **state) {
    (void)state;
    fresh();
    dg_err err;
    assert_int_equal(dg_mkdirs(WORK, &err), 0);
    pl_preset *p = preset("member model=mlp2 seed=1 epochs=1\nspeed model=mlp2 train=900 predict=1000\n"
                          "jobs_efficiency=0.5\n");
    /* train: 1000 with 2 jobs -> 2000, 800, 1500: median 1500; predict (no kind = predict): 3000, 5000: 4000 */
    put(TMP "/old/timings.jsonl",
        "{\"kind\":\"train\",\"model\":\"mlp2\",\"images_per_s\":1000,\"jobs\":2}\n"
        "{\"kind\":\"train\",\"model\":\"mlp2\",\"images_per_s\":800}\n"
        "{\"kind\":\"train\",\"model\":\"mlp2\",\"images_per_s\":1500,\"jobs\":1}\n"
        "{\"kind\":\"train\",\"model\":\"deotte\",\"images_per_s\":10}\n"
        "{\"model\":\"mlp2\",\"images_per_s\":3000}\n"
        "{\"kind\":\"predict\",\"model\":\"mlp2\",\"images_per_s\":5000}\n");
    pl_plan plan;
    plan_of(&plan, p, 2, 1, 1);
    assert_close(plan.runs[0].train_ips, 1500);
    assert_close(plan.runs[0].predict_ips, 4000);
    assert_string_equal(plan.runs[0].speed_from, "measured");
    assert_close(step(&plan, "train-mlp2-s1")->estimate_s, 2 + (900.0 / 1500 + 100.0 / 4000));
    pl_plan_free(&plan);

    /* no timings: train from the epochs of a member's metrics.jsonl (100, 300, 200: median 200), predict preset */
    assert_int_equal(system("rm -f '" TMP "/old/timings.jsonl'"), 0);
    put(TMP "/old/members/mlp2-s7/metrics.jsonl",
        "{\"images_per_s\":100}\n{\"images_per_s\":300}\n{\"images_per_s\":200}\n");
    plan_of(&plan, p, 2, 1, 1);
    assert_close(plan.runs[0].train_ips, 200);
    assert_close(plan.runs[0].predict_ips, 1000);
    assert_string_equal(plan.runs[0].speed_from, "train measured, predict preset");
    pl_plan_free(&plan);
    free(p);

    /* nothing measured nor configured: train 70 GFLOP/s over 3 x forward FLOPs, predict 40 GFLOP/s over forward
     * FLOPs, so train / predict = 70 / 120 whatever the FLOPs */
    assert_int_equal(system("rm -rf '" TMP "/old'"), 0);
    p = preset("member model=mlp2 seed=1 epochs=1\n");
    plan_of(&plan, p, 2, 1, 1);
    assert_string_equal(plan.runs[0].speed_from, "FLOPs guess");
    assert_close(plan.runs[0].train_ips / plan.runs[0].predict_ips, PL_TRAIN_GFLOPS / (3 * PL_PREDICT_GFLOPS));
    /* mlp2's forward pass is ~2 x (784 x 300 + 300 x 10) = 476400 multiply-adds' FLOPs, plus bias and relu */
    assert_true(plan.runs[0].predict_ips < 40e9 / 476400 && plan.runs[0].predict_ips > 40e9 / 480000);
    pl_plan_free(&plan);
    free(p);
}

/* The plan's speeds line: an epoch's time alone, and with jobs > 1 what the members' own epoch lines will show
 * (x job_slowdown: 2 jobs on 2 threads at jobs_efficiency 0.5 deliver the throughput of one, so 2x). 900 fit and
 * 100 validation images at 90 and 100 images/s: 11 s alone. */
static void test_speed_line(void **state) {
    (void)state;
    fresh();
    pl_preset *p = preset("members model=mlp2 seeds=1-2 epochs=1\nspeed model=mlp2 train=90 predict=100\n"
                          "jobs_efficiency=0.5\n");
    for (int jobs = 1; jobs <= 2; jobs++) {
        pl_plan plan;
        plan_of(&plan, p, 2, jobs, 1);
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        assert_non_null(f);
        pl_plan_print(&plan, f);
        assert_int_equal(fclose(f), 0);
        const char *want = jobs == 1 ? ": 11s per epoch alone\n" : ": 11s per epoch alone, 22s with 2 side by side\n";
        if (!strstr(text, want)) fail_msg("jobs %d: no \"%s\" in the plan:\n%s", jobs, want, text);
        free(text);
        pl_plan_free(&plan);
    }
    free(p);
}

static void expect_build_error(const char *preset_text, const char *want) {
    pl_preset *p = preset(preset_text);
    pl_plan plan;
    pl_opts o;
    memset(&o, 0, sizeof o);
    snprintf(o.data_dir, sizeof o.data_dir, DATA);
    snprintf(o.work, sizeof o.work, WORK);
    snprintf(o.output, sizeof o.output, TMP "/sub.csv");
    o.threads = o.jobs = 1;
    dg_err err = {{0}};
    assert_int_equal(pl_plan_build(&plan, p, &o, &err), -1);
    if (!strstr(err.msg, want)) fail_msg("\"%s\" lacks \"%s\"", err.msg, want);
    pl_plan_free(&plan);
    free(p);
}

/* A preset the planner cannot carry out: the message names the preset line or the data. */
static void test_preset_errors(void **state) {
    (void)state;
    fresh();
    expect_build_error("member model=mlp2 seed=1\nmember model=no-such-model seed=1\n", "t.preset:2: ");
    expect_build_error("member model=no-such-model seed=1\n", "no-such-model");
    put(TMP "/bad.spec", "name bad\ninput 1x28x28\nwobble\n");
    expect_build_error("member model=" TMP "/bad.spec seed=1\n", "t.preset:1: model " TMP "/bad.spec: ");
    csv(DATA "/train.csv", "label", 9);
    expect_build_error("member model=mlp2 seed=1\n", DATA ": 9 training and 300 test images: too few");
    assert_int_equal(unlink(DATA "/train.csv"), 0);
    expect_build_error("member model=mlp2 seed=1\n", DATA "/train.csv: not found (nor " DATA "/train.npy)");
}

static void test_manifest_path(void **state) {
    (void)state;
    char m[256];
    pl_manifest_path(m, sizeof m, "out/sub.csv");
    assert_string_equal(m, "out/sub.manifest.json");
    pl_manifest_path(m, sizeof m, "sub");
    assert_string_equal(m, "sub.manifest.json");
    pl_manifest_path(m, sizeof m, ".csv");
    assert_string_equal(m, ".csv.manifest.json");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps_and_estimates), cmocka_unit_test(test_lanes),
        cmocka_unit_test(test_skipping_and_resume), cmocka_unit_test(test_folds_and_augment),
        cmocka_unit_test(test_speeds),              cmocka_unit_test(test_speed_line),
        cmocka_unit_test(test_preset_errors),       cmocka_unit_test(test_manifest_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
