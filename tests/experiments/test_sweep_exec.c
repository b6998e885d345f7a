/* Tests for experiments/sweep_exec: a trainer dies with its coordinator (kill -9 of the coordinator leaves no
 * process writing into a run directory), the arguments a trainer gets, reading a rung's result from a run
 * directory (metrics.jsonl, result.json, early stop), and a failed trainer's reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/dg_cli.h"
#include "core/dg_file.h"
#include "experiments/sweep_exec.h"
#include "testutil.h"
#include "sweep_test_util.h"

#define TMP DIGITS_TEST_TMP "/sweep_exec"

static int setup(void **state) {
    (void)state;
    dg_err err = {{0}};
    if (system("rm -rf " TMP) != 0) return -1;
    return dg_mkdirs(TMP, &err);
}

/* A fake trainer that records its arguments and then sleeps for 30 s (exec: the same process). A coordinator
 * (a child of the test) starts it and is SIGKILLed: the trainer must go within 5 s, not run on. */
static void test_trainer_dies_with_coordinator(void **state) {
    (void)state;
    tu_put(TMP "/trainer.sh", "#!/bin/sh\necho \"$OMP_NUM_THREADS ${GOMP_SPINCOUNT:-unset}\" > " TMP "/env.txt\n"
                           "echo \"$@\" > " TMP "/args.txt\nexec sleep 30\n");
    assert_int_equal(chmod(TMP "/trainer.sh", 0755), 0);
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t coord = fork();
    assert_true(coord >= 0);
    if (coord == 0) {
        close(fd[0]);
        sw_exec_cfg cfg = {TMP "/trainer.sh", "d.npy", 0.25, 0, 9, 3, TMP "/tb"};
        unsetenv("GOMP_SPINCOUNT"); /* the trainer gets the stages' wait policy from its environment */
        unsetenv("OMP_WAIT_POLICY");
        pid_t t;
        dg_err err = {{0}};
        if (sw_exec_start(&cfg, TMP "/run", "x.spec", 77, 0, 4, &t, &err) != 0) _exit(1);
        if (write(fd[1], &t, sizeof t) != (ssize_t)sizeof t) _exit(1);
        for (;;) pause();
    }
    close(fd[1]);
    pid_t trainer = 0;
    assert_int_equal(read(fd[0], &trainer, sizeof trainer), (ssize_t)sizeof trainer);
    close(fd[0]);
    /* wait until the script has written its arguments, i.e. it is the sleeping trainer now */
    for (int i = 0; i < 500 && !dg_path_exists(TMP "/args.txt"); i++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    assert_true(tu_pid_alive(trainer));
    kill(coord, SIGKILL);
    int st;
    assert_int_equal(waitpid(coord, &st, 0), coord);
    int spins = 0;
    while (tu_pid_alive(trainer) && spins++ < 500) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    int survived = tu_pid_alive(trainer);
    if (survived) kill(trainer, SIGKILL);
    assert_false(survived);
    /* what digits-train was asked */
    char *args;
    size_t n;
    dg_err err = {{0}};
    assert_int_equal(dg_read_file(TMP "/args.txt", &args, &n, &err), 0);
    assert_string_equal(args, "--data d.npy --model x.spec --run " TMP "/run --seed 77 --split-seed 9 --val-frac 0.25 "
                              "--threads 3 --resume --quiet --stop-at 4 --tensorboard " TMP "/tb/run\n");
    free(args);
    /* its thread count, and the wait policy dg_stage_init would otherwise re-execute digits-train for */
    assert_int_equal(dg_read_file(TMP "/env.txt", &args, &n, &err), 0);
    assert_string_equal(args, "3 " DG_GOMP_SPINCOUNT "\n");
    free(args);
}

static void test_harvest(void **state) {
    (void)state;
    const char *rd = TMP "/h";
    dg_err err = {{0}};
    assert_int_equal(dg_mkdirs(rd, &err), 0);
    int epoch = 0;
    double acc = 0, loss = 0, secs = 0;
    char *m = NULL;
    /* nothing yet */
    assert_int_equal(sw_exec_harvest(rd, 2, &epoch, &acc, &loss, &secs, &m, &err), 0);
    tu_put(TMP "/h/metrics.jsonl",
           "{\"epoch\":1,\"val_loss\":0.5,\"val_acc\":0.8,\"seconds\":1.5}\n"
           "{\"epoch\":2,\"val_loss\":0.25,\"val_acc\":0.9,\"seconds\":2.0}\n"
           "{\"epoch\":3,\"val_loss\":0.125,\"val_acc\":0.95,\"seconds\":4.0}\n");
    assert_int_equal(sw_exec_harvest(rd, 2, &epoch, &acc, &loss, &secs, &m, &err), 1);
    assert_int_equal(epoch, 2);
    tu_assert_exact(acc, 0.9);
    tu_assert_exact(loss, 0.25);
    tu_assert_exact(secs, 3.5);
    assert_non_null(strstr(m, "\"epoch\":3"));
    free(m);
    /* not reached: epoch 4 of a rung; the end (no result.json) */
    assert_int_equal(sw_exec_harvest(rd, 4, &epoch, &acc, &loss, &secs, &m, &err), 0);
    assert_int_equal(sw_exec_harvest(rd, 0, &epoch, &acc, &loss, &secs, &m, &err), 0);
    /* finished: the end is result.json's (the final model's numbers), and a later rung that early stopping never
     * reached takes them too */
    tu_put(TMP "/h/result.json", "{\"val_acc\":0.96,\"val_loss\":0.1,\"epochs\":3,\"seconds\":7.5}\n");
    assert_int_equal(sw_exec_harvest(rd, 0, &epoch, &acc, &loss, &secs, &m, &err), 1);
    assert_int_equal(epoch, 3);
    tu_assert_exact(acc, 0.96);
    tu_assert_exact(secs, 7.5);
    free(m);
    assert_int_equal(sw_exec_harvest(rd, 9, &epoch, &acc, &loss, &secs, &m, &err), 1);
    tu_assert_exact(loss, 0.1);
    free(m);
    /* a rung it did reach keeps that epoch's numbers */
    assert_int_equal(sw_exec_harvest(rd, 1, &epoch, &acc, &loss, &secs, &m, &err), 1);
    tu_assert_exact(acc, 0.8);
    free(m);
}

/* What the status line's estimate is made of: a running trial's progress, and the trials' epochs shared out. */
static void test_progress_and_eta(void **state) {
    (void)state;
    const char *rd = TMP "/p";
    dg_err err = {{0}};
    assert_int_equal(dg_mkdirs(rd, &err), 0);
    int e = -1;
    double sec = -1, rec = -1;
    sw_exec_progress(rd, &e, &sec, &rec); /* not started: nothing */
    assert_int_equal(e, 0);
    tu_assert_exact(sec, 0.0);
    tu_assert_exact(rec, 0.0);
    tu_put(TMP "/p/metrics.jsonl", "{\"epoch\":1,\"seconds\":40.5}\n{\"epoch\":2,\"seconds\":41.5}\n{\"epo");
    sw_exec_progress(rd, &e, &sec, &rec); /* a line being written is not an epoch yet */
    assert_int_equal(e, 2);
    tu_assert_exact(sec, 82.0);
    tu_assert_exact(rec, 41.0);
    /* a slow spell (epochs 2-3) that ended: the recent pace is the last 3 epochs' */
    tu_put(TMP "/p/metrics.jsonl", "{\"epoch\":1,\"seconds\":40}\n{\"epoch\":2,\"seconds\":80}\n"
                                   "{\"epoch\":3,\"seconds\":70}\n{\"epoch\":4,\"seconds\":41}\n"
                                   "{\"epoch\":5,\"seconds\":39}\n");
    sw_exec_progress(rd, &e, &sec, &rec);
    assert_int_equal(e, 5);
    tu_assert_exact(sec, 270.0);
    tu_assert_exact(rec, 50.0);

    /* two trainers: 23-epoch trials, two running at epoch 20 and four to start, 45 s per epoch: the running pair
     * end after 3 epochs, then two rounds of 23 */
    int left[] = {3, 3, 23, 23, 23, 23};
    tu_assert_exact(sw_eta(left, 6, 2, 45.0), (3 + 23 + 23) * 45.0);
    /* one trial left: it takes its own time whatever the workers (not its share of theirs) */
    int one[] = {10};
    tu_assert_exact(sw_eta(one, 1, 2, 2.0), 20.0);
    /* uneven: longest first, each to the trainer free first: {9}, {5, 4} -> 9; {7, 2} is the other's 9 */
    int uneven[] = {2, 5, 9, 4, 7};
    tu_assert_exact(sw_eta(uneven, 5, 3, 1.0), 9.0);
    tu_assert_exact(sw_eta(uneven, 5, 1, 1.0), 27.0);
    tu_assert_exact(sw_eta(uneven, 0, 2, 1.0), 0.0);
    tu_assert_exact(sw_eta(uneven, 5, 2, 0.0), 0.0); /* no pace yet */
}

static void test_reason(void **state) {
    (void)state;
    dg_err err = {{0}};
    assert_int_equal(dg_mkdirs(TMP "/r", &err), 0);
    tu_put(TMP "/r/train.log",
           "epoch 1/2 [====]\repoch 1/2 [=====] done\ndigits-train: epoch 2 step 6: training loss is nan; the run "
           "diverged\n");
    char reason[512];
    sw_exec_reason(TMP "/r", 1 << 8, reason, sizeof reason); /* exited 1 */
    assert_string_equal(reason, "exit 1: digits-train: epoch 2 step 6: training loss is nan; the run diverged");
    tu_put(TMP "/r/train.log", "epoch 1/2 [=>   ]\repoch 1/2 [==> ]");
    sw_exec_reason(TMP "/r", SIGSEGV, reason, sizeof reason); /* killed by a signal */
    assert_non_null(strstr(reason, "killed by signal 11"));
    assert_non_null(strstr(reason, ": epoch 1/2 [==> ]"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trainer_dies_with_coordinator),
        cmocka_unit_test(test_harvest),
        cmocka_unit_test(test_progress_and_eta),
        cmocka_unit_test(test_reason),
    };
    return tu_exit(cmocka_run_group_tests(tests, setup, NULL));
}
