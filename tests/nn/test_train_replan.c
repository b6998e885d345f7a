/* Tests for nn/train's deadline: the re-plan arithmetic (nn_train_replan), a run that slows down and is shortened
 * (on a test clock, so no wall-clock timing), a shortened run killed and resumed (the checkpoint keeps the new total
 * and the re-targeted schedule: the same bits as the run that never stopped), and a deadline that is never hit
 * (the same bits as no deadline at all); the pace is the mean of the last epochs, so one slow epoch cuts nothing;
 * a run shortened by a slowdown that passes is lengthened back toward its spec's epochs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "core/dg_rng.h"
#include "nn/checkpoint.h"
#include "nn/train.h"
#include "testutil.h"

#define TMP DIGITS_TEST_TMP "/train_replan"
#define DATA TMP "/blocks.npy"
#define SPEC TMP "/tiny.spec"

static void test_replan_arithmetic(void **state) {
    (void)state;
    /* shortening: a run at its spec's 16 epochs */
    assert_int_equal(nn_train_replan(4, 16, 16, 50, 600), 16);  /* 12 x 50 = 600 fits exactly */
    assert_int_equal(nn_train_replan(4, 16, 16, 50, 599), 15);  /* 11 fit */
    assert_int_equal(nn_train_replan(4, 16, 16, 75, 600), 12);  /* a 50% slowdown: 8 of the 12 left fit */
    assert_int_equal(nn_train_replan(4, 16, 16, 75, 10), 5);    /* none fit: one more epoch to anneal */
    assert_int_equal(nn_train_replan(4, 16, 16, 75, -30), 5);   /* past the deadline: the same */
    assert_int_equal(nn_train_replan(16, 16, 16, 75, -30), 16); /* finished: nothing to cut */
    assert_int_equal(nn_train_replan(4, 16, 16, 0, 10), 16);    /* no measurement: keep the plan */
    assert_int_equal(nn_train_replan(0, 10, 10, 30, 1e9), 10);  /* never beyond the spec's epochs */
    /* lengthening: a run shortened to 10 of its spec's 16 epochs, 4 done */
    assert_int_equal(nn_train_replan(4, 10, 16, 50, 600), 14);  /* 0.9 x 600 / 50 = 10.8: 10 more */
    assert_int_equal(nn_train_replan(4, 10, 16, 50, 1e9), 16);  /* all the way back, no further */
    assert_int_equal(nn_train_replan(4, 10, 16, 50, 330), 10);  /* 6 fit, but 0.9 x 330 / 50 = 5.9: keep 10 */
    assert_int_equal(nn_train_replan(4, 10, 16, 50, 350), 10);  /* 0.9 x 350 / 50 = 6.3: 10 again, not more */
    assert_int_equal(nn_train_replan(4, 10, 16, 50, 390), 11);  /* 0.9 x 390 / 50 = 7.02: one more */
    assert_int_equal(nn_train_replan(4, 10, 16, 60, 330), 9);   /* slower again: shortened, as before */
    assert_int_equal(nn_train_replan(10, 10, 16, 10, 1e9), 10); /* its schedule has ended: not reopened */
    assert_int_equal(nn_train_replan(4, 10, 16, 0, 1e9), 10);   /* no measurement: keep the plan */
}

static void test_pace(void **state) {
    (void)state;
    const double d[] = {10, 10, 40, 10, 16};
    assert_true(nn_train_pace(d, 0) == 0);
    assert_true(nn_train_pace(d, 1) == 10);
    assert_true(nn_train_pace(d, 2) == 10);
    assert_true(nn_train_pace(d, 3) == 20);  /* (10 + 10 + 40) / 3 */
    assert_true(nn_train_pace(d, 4) == 20);  /* the last three: (10 + 40 + 10) / 3 */
    assert_true(nn_train_pace(d, 5) == 22);  /* (40 + 10 + 16) / 3 */
}

/* The test clock: 10 s further on every reading. */
static double tick(void *arg) {
    double *t = arg;
    return *t += 10;
}

static void opts(nn_train_opts *o, const char *run, double *clock) {
    nn_train_opts_defaults(o);
    o->data = DATA;
    o->model = SPEC;
    o->run_dir = run;
    o->seed = 5;
    o->log = NULL;
    o->clock = tick;
    o->clock_arg = clock;
}

/* A scripted clock: the deadline code reads it three times an epoch (the epoch's start, its end, the time left);
 * epoch e takes dur[e] seconds. */
typedef struct {
    double t;
    int reads;
    const double *dur;
} script;

static double scripted(void *arg) {
    script *c = arg;
    if (c->reads++ % 3 == 1) c->t += c->dur[(c->reads - 1) / 3];
    return c->t;
}

/* opts for a run in `run` on the scripted clock c, with the spec's epochs overridden (0 keeps 8) and a deadline. */
static void scripted_opts(nn_train_opts *o, const char *run, script *c, int epochs, double deadline) {
    opts(o, run, NULL);
    o->epochs = epochs;
    o->clock = scripted;
    o->clock_arg = c;
    o->deadline = deadline;
}

static char *file(const char *dir, const char *name, size_t *n) { return tu_slurp(dir, name, n); }

static void assert_same_file(const char *a, const char *b, const char *name) {
    size_t na, nb;
    char *x = file(a, name, &na), *y = file(b, name, &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(x, y, na);
    free(x);
    free(y);
}

static int count_lines(const char *dir, const char *name) {
    char *t = file(dir, name, NULL);
    int n = 0;
    for (char *p = t; *p; p++) n += *p == '\n';
    free(t);
    return n;
}

static int setup(void **state) {
    (void)state;
    dg_err err = {{0}};
    assert_int_equal(dg_mkdirs(TMP, &err), 0);
    tu_blocks_dataset(DATA, 400, 3, 1);
    static const char spec[] = "name tiny\ninput 1x28x28\nflatten\ndense units=32\nrelu\ndense units=10\n"
                               "train optimizer=adam schedule=onecycle max_lr=0.01 batch=32 epochs=8\n";
    assert_int_equal(dg_write_file_atomic(SPEC, spec, strlen(spec), &err), 0);
    static const char *const runs[] = {TMP "/a", TMP "/b", TMP "/c", TMP "/d", TMP "/e",
                                       TMP "/f", TMP "/g", TMP "/h", TMP "/i"};
    for (int i = 0; i < 9; i++) tu_rm_run(runs[i]);
    return 0;
}

/* Every epoch takes 10 s on the test clock and the deadline is 65 s: after epoch 1 (ends at 20, 35 s left) the run
 * is cut from 8 to 4 epochs, after epoch 2 (5 s left) to 3. Runs in directories a and b, ema as opts.ema. */
static void slowdown(const char *a, const char *b, float ema) {
    dg_err err = {{0}};
    nn_train_opts o;
    double t = 0;
    opts(&o, a, &t);
    o.ema = ema;
    o.deadline = 65;
    assert_int_equal(nn_train_run(&o, &err), 0);
    assert_int_equal(count_lines(a, "metrics.jsonl"), 3);
    char *res = file(a, "result.json", NULL);
    assert_non_null(strstr(res, "\"epochs\":3,"));
    free(res);

    /* The same run killed after its second epoch and resumed without a deadline: the checkpoint holds the new
     * total (3) and the re-targeted schedule, so it ends as run a did, bit for bit. */
    t = 0;
    opts(&o, b, &t);
    o.ema = ema;
    o.deadline = 65;
    o.stop_after = 2;
    assert_int_equal(nn_train_run(&o, &err), 1);
    nn_ckpt c;
    char path[512];
    snprintf(path, sizeof path, "%s/checkpoint.ckpt", b);
    assert_int_equal(nn_ckpt_load(path, &c, &err), 0);
    assert_int_equal(c.epoch, 2);
    assert_int_equal(c.epochs_target, 3);
    assert_true(nn_sched_retargeted(&c.sched));
    tu_assert_exact(c.ema_decay, ema > 0 ? ema : 0);
    nn_ckpt_free(&c);
    opts(&o, b, &t);
    o.ema = ema;
    o.resume = 1;
    o.clock = NULL;
    assert_int_equal(nn_train_run(&o, &err), 0);
    assert_same_file(a, b, "model.safetensors");
    assert_same_file(a, b, "val_pred.npy");
}

static void test_slowdown_shortens(void **state) {
    (void)state;
    slowdown(TMP "/a", TMP "/b", -1);
}

/* The same with a moving average of the weights: its state is in the checkpoint of the shortened run too. */
static void test_slowdown_shortens_ema(void **state) {
    (void)state;
    slowdown(TMP "/e", TMP "/f", 0.9f);
}

/* A deadline that is never reached changes nothing: the same bits as a run without one, all 8 epochs, and a
 * checkpoint without a "plan" section. */
static void test_far_deadline_changes_nothing(void **state) {
    (void)state;
    dg_err err = {{0}};
    nn_train_opts o;
    double t = 0;
    opts(&o, TMP "/c", &t);
    o.deadline = 1e9;
    assert_int_equal(nn_train_run(&o, &err), 0);
    opts(&o, TMP "/d", &t);
    o.clock = NULL;
    assert_int_equal(nn_train_run(&o, &err), 0);
    assert_int_equal(count_lines(TMP "/c", "metrics.jsonl"), 8);
    assert_same_file(TMP "/c", TMP "/d", "model.safetensors");
    assert_same_file(TMP "/c", TMP "/d", "val_pred.npy");
    nn_ckpt c;
    assert_int_equal(nn_ckpt_load(TMP "/c/checkpoint.ckpt", &c, &err), 0);
    assert_int_equal(c.epochs_target, 0);
    assert_false(nn_sched_retargeted(&c.sched));
    nn_ckpt_free(&c);
}

/* One slow epoch among fast ones: epochs take 10 s but the third 40 s, deadline at 160 s. After epoch 3 (t = 60,
 * 100 s left, 5 epochs to go) the last epoch's pace alone (5 x 40 s) would cut the run to 5 epochs; the mean of the
 * last three (20 s) fits, and all 8 epochs end at t = 110. */
static void test_one_slow_epoch_cuts_nothing(void **state) {
    (void)state;
    dg_err err = {{0}};
    nn_train_opts o;
    static const double dur[] = {10, 10, 40, 10, 10, 10, 10, 10};
    script c = {0, 0, dur};
    scripted_opts(&o, TMP "/g", &c, 0, 160);
    assert_int_equal(nn_train_run(&o, &err), 0);
    assert_int_equal(count_lines(TMP "/g", "metrics.jsonl"), 8);
    assert_true(c.t == 110);
    nn_ckpt k;
    assert_int_equal(nn_ckpt_load(TMP "/g/checkpoint.ckpt", &k, &err), 0);
    assert_int_equal(k.epochs_target, 0);
    nn_ckpt_free(&k);
}

/* A slowdown that passes: 16 epochs (the spec's 8 overridden), epochs 3-5 take 40 s and the others 10 s, deadline
 * at 220 s. The mean pace cuts the run 16 -> 11 -> 8 -> 7 after epochs 3-5, then, as the 10-s epochs bring it down
 * again, lengthens it 7 -> 8 -> 9 -> 12 after epochs 6-8 (each time keeping a tenth of the time left in hand), and
 * the 12th epoch ends at t = 210, inside the deadline: without the lengthening the run would have stopped at 7
 * epochs and t = 160. Killed after epoch 7 and resumed on the same clock, the run ends as the one that never
 * stopped, bit for bit: the checkpoint keeps the total and the schedule's map as they were after each re-plan. */
static void test_recovery_lengthens(void **state) {
    (void)state;
    dg_err err = {{0}};
    nn_train_opts o;
    static const double dur[] = {10, 10, 40, 40, 40, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10};
    script c = {0, 0, dur};
    scripted_opts(&o, TMP "/h", &c, 16, 220);
    assert_int_equal(nn_train_run(&o, &err), 0);
    assert_int_equal(count_lines(TMP "/h", "metrics.jsonl"), 12);
    assert_true(c.t == 210);
    char *res = file(TMP "/h", "result.json", NULL);
    assert_non_null(strstr(res, "\"epochs\":12,"));
    free(res);
    nn_ckpt k;
    assert_int_equal(nn_ckpt_load(TMP "/h/checkpoint.ckpt", &k, &err), 0);
    assert_int_equal(k.epochs_target, 12);
    assert_true(nn_sched_retargeted(&k.sched));
    nn_ckpt_free(&k);

    /* the same, stopped after epoch 7 (total then 9) and resumed: the scripted clock goes on where it was, as the
     * wall clock would; the resumed call measures its pace afresh, and its first re-plan sees one 10-s epoch where
     * the run that never stopped sees three (the same mean) */
    script d = {0, 0, dur};
    scripted_opts(&o, TMP "/i", &d, 16, 220);
    o.stop_after = 7;
    assert_int_equal(nn_train_run(&o, &err), 1);
    assert_int_equal(nn_ckpt_load(TMP "/i/checkpoint.ckpt", &k, &err), 0);
    assert_int_equal(k.epoch, 7);
    assert_int_equal(k.epochs_target, 9);
    nn_ckpt_free(&k);
    o.stop_after = 0;
    o.resume = 1;
    assert_int_equal(nn_train_run(&o, &err), 0);
    assert_int_equal(count_lines(TMP "/i", "metrics.jsonl"), 12);
    assert_same_file(TMP "/h", TMP "/i", "model.safetensors");
    assert_same_file(TMP "/h", TMP "/i", "val_pred.npy");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replan_arithmetic),
        cmocka_unit_test(test_pace),
        cmocka_unit_test(test_one_slow_epoch_cuts_nothing),
        cmocka_unit_test(test_slowdown_shortens),
        cmocka_unit_test(test_slowdown_shortens_ema),
        cmocka_unit_test(test_far_deadline_changes_nothing),
        cmocka_unit_test(test_recovery_lengthens),
    };
    return tu_exit(cmocka_run_group_tests(tests, setup, NULL));
}
