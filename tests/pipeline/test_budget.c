/* Tests for pipeline/budget: the epochs a budget buys (pl_budget_choose) and the training deadlines
 * (pl_budget_deadlines) against numbers worked out by hand from the formulas in budget.h, and digits-pipeline end to
 * end with an adapt preset on a tiny generated competition: the calibration, the choice kept in budget.json for a
 * second run that re-runs nothing, and a budget too small for the fewest epochs, where the deadline reaches
 * digits-train and shortens the members. No assertion depends on how fast this machine is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "core/dg_file.h"
#include "pipeline/budget.h"
#include "pipeline/preset.h"
#include "kaggle_csvs.h"
#include "testutil.h"

/* Two members side by side: each chain 2 s start-up + E x 30 s + 5 s predict. 900 s budget, 100 s gone, 72 s
 * margin, 1 s before and 1 s after the members: room 726 s, 7 + 30 E <= 726 -> E = 23 (697 s; 24 needs 727). */
static const double kStart[3] = {2, 2, 2}, kEpoch[3] = {30, 30, 30}, kPredict[3] = {5, 5, 5};

static pl_budget_in two_members(void) {
    return (pl_budget_in){.budget_s = 900, .elapsed_s = 100, .margin_s = 72, .before_s = 1, .after_s = 1,
                          .jobs = 2, .n_runs = 2, .start_s = kStart, .epoch_s = kEpoch, .predict_s = kPredict,
                          .min_epochs = 1, .max_epochs = 100};
}

static void test_choose(void **state) {
    (void)state;
    dg_err err = {{0}};
    pl_budget_in in = two_members();
    pl_budget_out out;
    assert_int_equal(pl_budget_choose(&in, &out, &err), 0);
    assert_int_equal(out.epochs, 23);
    assert_true(out.fits);
    tu_assert_close(out.members_s, 697, TU_REL_F64, 0);
    tu_assert_close(out.end_s, 100 + 1 + 697 + 1, TU_REL_F64, 0);
    tu_assert_close(out.left_s, 800, TU_REL_F64, 0);
    /* no margin: room 798 -> 26 epochs (787 s) */
    in.margin_s = 0;
    assert_int_equal(pl_budget_choose(&in, &out, &err), 0);
    assert_int_equal(out.epochs, 26);
    /* later start (elapsed 400 s): room 426 -> 13 epochs (397 s) */
    in = two_members();
    in.elapsed_s = 400;
    assert_int_equal(pl_budget_choose(&in, &out, &err), 0);
    assert_int_equal(out.epochs, 13);
    /* a slower machine (45 s an epoch): 7 + 45 E <= 726 -> 15 */
    static const double slow[2] = {45, 45};
    in = two_members();
    in.epoch_s = slow;
    assert_int_equal(pl_budget_choose(&in, &out, &err), 0);
    assert_int_equal(out.epochs, 15);
    /* the preset's limits: at most 20; at least 30 (does not fit: 30 anyway, said so) */
    in = two_members();
    in.max_epochs = 20;
    assert_int_equal(pl_budget_choose(&in, &out, &err), 0);
    assert_int_equal(out.epochs, 20);
    assert_true(out.fits);
    in.min_epochs = in.max_epochs = 30;
    assert_int_equal(pl_budget_choose(&in, &out, &err), 0);
    assert_int_equal(out.epochs, 30);
    assert_false(out.fits);
    /* exactly the room: 7 + 30 E = 727 with the margin 1 s smaller */
    in = two_members();
    in.margin_s = 71;
    assert_int_equal(pl_budget_choose(&in, &out, &err), 0);
    assert_int_equal(out.epochs, 24);
}

/* Three members on two lanes: lane 0 runs members 1 and 3, so its span is 2 x (7 + 30 E): 14 + 60 E <= 726 -> 11. */
static void test_lanes(void **state) {
    (void)state;
    dg_err err = {{0}};
    pl_budget_in in = two_members();
    in.n_runs = 3;
    pl_budget_out out;
    tu_assert_close(pl_budget_span(&in, 10), 2 * (7 + 300), TU_REL_F64, 0);
    assert_int_equal(pl_budget_choose(&in, &out, &err), 0);
    assert_int_equal(out.epochs, 11);
    /* one lane: 21 + 90 E <= 726 -> 7 */
    in.jobs = 1;
    assert_int_equal(pl_budget_choose(&in, &out, &err), 0);
    assert_int_equal(out.epochs, 7);
}

/* Deadlines: the budget's end less half the margin and the ensemble (900 - 36 - 1 = 863), less each run's predict
 * (5) and the chains after it in its lane (member 1 is followed by member 3: 7 + 30 x 11 = 337). */
static void test_deadlines(void **state) {
    (void)state;
    pl_budget_in in = two_members();
    in.n_runs = 3;
    double d[3];
    pl_budget_deadlines(&in, 11, d);
    tu_assert_close(d[0], 863 - 5 - 337, TU_REL_F64, 0);
    tu_assert_close(d[1], 863 - 5, TU_REL_F64, 0);
    tu_assert_close(d[2], 863 - 5, TU_REL_F64, 0);
}

static void test_bad_input(void **state) {
    (void)state;
    dg_err err = {{0}};
    pl_budget_out out;
    pl_budget_in in = two_members();
    in.min_epochs = 5;
    in.max_epochs = 4;
    assert_int_equal(pl_budget_choose(&in, &out, &err), -1);
    in = two_members();
    static const double zero[2] = {30, 0};
    in.epoch_s = zero;
    assert_int_equal(pl_budget_choose(&in, &out, &err), -1);
    assert_non_null(strstr(err.msg, "run 1"));
    in = two_members();
    in.jobs = 0;
    assert_int_equal(pl_budget_choose(&in, &out, &err), -1);
}

/* ---- the adapt line of a preset ---- */

static void expect_preset_error(const char *text, const char *want) {
    pl_preset p;
    dg_err err = {{0}};
    assert_int_equal(pl_preset_parse(&p, text, "p.preset", &err), -1);
    if (!strstr(err.msg, want)) fail_msg("got \"%s\", expected \"%s\"", err.msg, want);
}

static void test_adapt_line(void **state) {
    (void)state;
    pl_preset p;
    dg_err err = {{0}};
    assert_int_equal(
        pl_preset_parse(&p, "members model=a seeds=1-2\nbudget_minutes=15\nadapt epochs=3-40\n", "p.preset", &err), 0);
    assert_true(p.adapt.on);
    assert_int_equal(p.adapt.min_epochs, 3);
    assert_int_equal(p.adapt.max_epochs, 40);
    tu_assert_exact(p.adapt.margin, PL_ADAPT_MARGIN);
    tu_assert_exact(p.adapt.calibrate_s, PL_ADAPT_CALIBRATE_S);
    assert_int_equal(p.adapt.line, 3);
    assert_int_equal(pl_preset_parse(&p, "member model=a seed=1\nadapt epochs=5-5 margin=0.2 calibrate=1.5\n"
                                         "budget_minutes=2\n", "p.preset", &err),
                     0);
    assert_int_equal(p.adapt.min_epochs, 5);
    tu_assert_exact(p.adapt.margin, 0.2);
    tu_assert_exact(p.adapt.calibrate_s, 1.5);
    assert_int_equal(pl_preset_parse(&p, "member model=a seed=1\n", "p.preset", &err), 0);
    assert_false(p.adapt.on);
    expect_preset_error("member model=a seed=1\nadapt epochs=3-4\n", "p.preset:2: adapt needs budget_minutes=");
    expect_preset_error("member model=a seed=1\nbudget_minutes=1\nadapt epochs=5-4\n",
                        "p.preset:3:7: epochs=5-4: expected MIN-MAX");
    expect_preset_error("member model=a seed=1\nbudget_minutes=1\nadapt epochs=0-4\n", "epochs=0-4: expected MIN-MAX");
    expect_preset_error("member model=a seed=1\nbudget_minutes=1\nadapt epochs=7\n", "epochs=7: expected MIN-MAX");
    expect_preset_error("member model=a seed=1\nbudget_minutes=1\nadapt margin=0.1\n",
                        "adapt: epochs=MIN-MAX is required");
    expect_preset_error("member model=a seed=1\nbudget_minutes=1\nadapt epochs=1-2 margin=0.95\n", "margin=0.95");
    expect_preset_error("member model=a seed=1\nbudget_minutes=1\nadapt epochs=1-2 calibrate=0\n", "calibrate=0");
    expect_preset_error("member model=a seed=1\nbudget_minutes=1\nadapt epochs=1-2 speed=3\n", "unknown key \"speed\"");
    expect_preset_error("member model=a seed=1\nbudget_minutes=1\nadapt epochs=1-2\nadapt epochs=1-2\n",
                        "p.preset:4:1: adapt given twice (first at line 3)");
}

/* ---- end to end ---- */

#define BTMP DIGITS_TEST_TMP "/budget"

static void put(const char *path, const char *text) {
    dg_err err = {{0}};
    if (dg_write_file_atomic(path, text, strlen(text), &err) != 0) fail_msg("%s", err.msg);
}

/* digits-pipeline with preset P.preset into work directory W; output to BTMP/LOG. The budget starts with it. */
static int pipeline(const char *p, const char *w, const char *log) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "env -u DIGITS_RUN_START " DIGITS_BIN_DIR "/digits-pipeline -p " BTMP "/%s.preset -d " BTMP
             "/data -w " BTMP "/%s -o " BTMP "/%s.csv --threads 2 > " BTMP "/%s 2>&1",
             p, w, w, log);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* A number field of a JSON file. */
static int json_int(const char *path, const char *key) {
    char *t = tu_read(path);
    cJSON *j = cJSON_Parse(t);
    free(t);
    cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    assert_true(cJSON_IsNumber(v));
    int n = v->valueint;
    cJSON_Delete(j);
    return n;
}

static void test_end_to_end(void **state) {
    (void)state;
    dg_err err = {{0}};
    assert_int_equal(system("rm -rf '" BTMP "'"), 0);
    assert_int_equal(dg_mkdirs(BTMP "/data", &err), 0);
    tu_kaggle_csvs(BTMP "/data", 0);
    /* Room for far more than 3 epochs of 160 images: the most the preset allows, kept for the second run. */
    put(BTMP "/roomy.preset", "split val-frac=0.2 split-seed=3\nmembers model=mlp2 seeds=1-2\n"
                              "adapt epochs=1-3 calibrate=0.2\nbudget_minutes=5\njobs=2\n");
    assert_int_equal(pipeline("roomy", "w1", "run1.log"), 0);
    assert_int_equal(tu_count_in(BTMP "/run1.log", "calibrated 2 member(s) side by side, 1 thread(s) each"), 1);
    assert_int_equal(tu_count_in(BTMP "/run1.log", "budget   5m00s for the whole run"), 1);
    int epochs = json_int(BTMP "/w1/budget.json", "epochs");
    assert_true(epochs >= 1 && epochs <= 3);
    char want[64];
    snprintf(want, sizeof want, "\"epochs\":%d,", epochs);
    assert_int_equal(tu_count_in(BTMP "/w1/members/mlp2-s1/result.json", want), 1);
    assert_int_equal(tu_count_in(BTMP "/w1/members/mlp2-s2/result.json", want), 1);
    assert_int_equal(tu_count_in(BTMP "/run1.log", "deadline train-mlp2-s"), 2);
    assert_int_equal(tu_count_in(BTMP "/run1.log", "re-plan"), 0);
    /* again: the choice is kept (no calibration), so every stage is up to date */
    assert_int_equal(pipeline("roomy", "w1", "run2.log"), 0);
    assert_int_equal(tu_count_in(BTMP "/run2.log", "calibrated 2 member"), 0);
    assert_int_equal(tu_count_in(BTMP "/run2.log", "kept     the plan of"), 1);
    assert_int_equal(tu_count_in(BTMP "/run2.log", ": up to date"), 7);

    /* A budget of 0.06 s: even 3 epochs do not fit; the deadlines are already past when training starts, so each
     * member is cut to 2 epochs after its first (one more to anneal), and says so. */
    put(BTMP "/tight.preset", "split val-frac=0.2 split-seed=3\nmembers model=mlp2 seeds=1-2\n"
                              "adapt epochs=3-4 calibrate=0.2\nbudget_minutes=0.001\njobs=2\n");
    assert_int_equal(pipeline("tight", "w2", "run3.log"), 0);
    assert_int_equal(tu_count_in(BTMP "/run3.log", "even the fewest epochs do not fit the budget"), 1);
    assert_int_equal(json_int(BTMP "/w2/budget.json", "epochs"), 3);
    assert_int_equal(tu_count_in(BTMP "/run3.log", "re-plan: epoch 1 took"), 2);
    assert_int_equal(tu_count_in(BTMP "/w2/members/mlp2-s1/result.json", "\"epochs\":2,"), 1);
    assert_int_equal(tu_count_in(BTMP "/w2/members/mlp2-s2/result.json", "\"epochs\":2,"), 1);
    assert_true(dg_path_exists(BTMP "/w2.csv"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choose),     cmocka_unit_test(test_lanes),     cmocka_unit_test(test_deadlines),
        cmocka_unit_test(test_bad_input),  cmocka_unit_test(test_adapt_line), cmocka_unit_test(test_end_to_end),
    };
    return tu_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
