/* Tests for nn/train's numeric guards and core/dg_cli's DIGITS_TRAP_FE switch: a run that produces NaN/Inf stops
 * with exit 1 and a message naming the epoch and step, writes no result.json and leaves the last good checkpoint
 * byte for byte; weights or running statistics that overflow while the loss is still finite stop the run at the
 * step that did it; a validation loss that overflows names that epoch's validation; DIGITS_TRAP_FE=1 kills a
 * diverging digits-train with SIGFPE and lets good runs finish. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nn/checkpoint.h"
#include "nn/train.h"
#include "core/dg_cli.h"
#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "core/dg_rng.h"
#include "testutil.h"

#define TMP DIGITS_TEST_TMP "/train_guards"
#define DATA TMP "/synth.npy"
#define BIN DIGITS_BIN_DIR "/digits-train"
#define N_ROWS 600

/* Loss overflow: a deep linear net (leaky slope 1) whose learning rate grows 10x per epoch trains, then its
 * logits overflow and the training loss becomes NaN, after at least one good epoch. */
#define SPEC_LOSS                                                                                                   \
    "name loss_nan\nflatten\ndense units=64\nleakyrelu slope=1\ndense units=64\nleakyrelu slope=1\n"             \
    "dense units=64\nleakyrelu slope=1\ndense units=10\n"                                                          \
    "train optimizer=momentum lr=0.001 schedule=exp gamma=10 batch=16 epochs=8 label_smoothing=0.2\n"
/* Statistics overflow: weight decay with lr * weight_decay = 10 multiplies the first layer's weights by -9 per
 * step; batch norm normalises them away, so the loss stays finite, until the batch variance overflows float and
 * bn1.running_var becomes Inf (in epoch 5 of 4 steps each). */
#define SPEC_STATS                                                                                                  \
    "name stats_inf\nflatten\ndense units=16\nbatchnorm\nrelu\ndense units=10\n"                                    \
    "train optimizer=sgd lr=10 weight_decay=1 batch=120 epochs=30\n"

static void write_spec(const char *path, const char *text) {
    dg_err err = {{0}};
    if (dg_write_file_atomic(path, text, strlen(text), &err) != 0) fail_msg("%s", err.msg);
}

static int setup(void **state) {
    (void)state;
    dg_err err = {{0}};
    if (dg_mkdirs(TMP, &err) != 0) return -1;
    dg_set_threads(2); /* as the digits-train runs (--threads 2), so in-process runs take the same steps */
    if (!dg_path_exists(DATA)) tu_blocks_dataset(DATA, N_ROWS, 99, 1);
    write_spec(TMP "/loss.spec", SPEC_LOSS);
    write_spec(TMP "/stats.spec", SPEC_STATS);
    return 0;
}

static int has(const char *dir, const char *name) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return dg_path_exists(p);
}

/* Runs digits-train on spec into dir (2 threads unless threads is set), with DIGITS_TRAP_FE=trap if trap is set;
 * its stderr goes to errfile. Returns the wait status. Sanitizer runtimes catch SIGFPE themselves (and abort);
 * handle_sigfpe=0 leaves it to the default action, as in a normal build. */
static int run_train(const char *spec, const char *dir, const char *trap, const char *threads, const char *errfile) {
    if (access(BIN, X_OK) != 0) fail_msg("%s not built", BIN);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || dup2(fd, 2) < 0) _exit(126);
        if (trap)
            setenv("DIGITS_TRAP_FE", trap, 1);
        else
            unsetenv("DIGITS_TRAP_FE");
        static const char *const san[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS"};
        for (int i = 0; i < 2; i++) {
            char v[1024];
            const char *old = getenv(san[i]);
            snprintf(v, sizeof v, "%s%shandle_sigfpe=0", old ? old : "", old && *old ? ":" : "");
            setenv(san[i], v, 1);
        }
        execl(BIN, BIN, "--data", DATA, "--model", spec, "--run", dir, "--seed", "5", "--val-frac", "0.2",
              "--threads", threads ? threads : "2", "--quiet", (char *)NULL);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

/* "digits-train: epoch E step S of N: ..." from a stage's stderr: E and S. */
static void parse_where(const char *msg, unsigned *epoch, int *step) {
    size_t at = 0;
    while (msg[at] && strncmp(msg + at, "epoch ", 6) != 0) at++;
    if (sscanf(msg + at, "epoch %u step %d of", epoch, step) != 2) fail_msg("no 'epoch E step S' in: %s", msg);
}

/* The diverging run through digits-train: exit 1, the message, no result. Then the same run again in-process,
 * stopped after the last good epoch: its checkpoint's bytes, and metrics.jsonl's, survive the diverging epoch. */
static void check_divergence(const char *spec, const char *name, const char *what) {
    char dir[256], errfile[256];
    snprintf(dir, sizeof dir, TMP "/%s_cli", name);
    snprintf(errfile, sizeof errfile, TMP "/%s.stderr", name);
    tu_rm_run(dir);
    int status = run_train(spec, dir, NULL, NULL, errfile);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    size_t n;
    char *msg = tu_slurp(TMP, strrchr(errfile, '/') + 1, &n);
    print_message("%s", msg);
    assert_non_null(strstr(msg, "digits-train: epoch "));
    assert_non_null(strstr(msg, what));
    assert_non_null(strstr(msg, "the run diverged (try a lower --lr, in a new --run)"));
    unsigned epoch;
    int step;
    parse_where(msg, &epoch, &step);
    assert_true(epoch >= 2); /* both specs train at least one good epoch first */
    assert_true(step >= 1);
    char want[300];
    snprintf(want, sizeof want, "%s keeps the checkpoint of epoch %u", dir, epoch - 1);
    assert_non_null(strstr(msg, want));
    assert_false(has(dir, "result.json"));
    assert_false(has(dir, "model.safetensors"));
    assert_true(has(dir, "checkpoint.ckpt"));

    /* in-process: stop after epoch - 1, keep the bytes, resume into the diverging epoch */
    snprintf(dir, sizeof dir, TMP "/%s_lib", name);
    tu_rm_run(dir);
    nn_train_opts o;
    nn_train_opts_defaults(&o);
    o.data = DATA;
    o.model = spec;
    o.run_dir = dir;
    o.val_frac = 0.2;
    o.seed = 5;
    o.log = NULL;
    o.stop_after = (int)epoch - 1;
    dg_err err = {{0}};
    assert_int_equal(nn_train_run(&o, &err), 1);
    size_t n_ckpt, n_metrics;
    char *ckpt = tu_slurp(dir, "checkpoint.ckpt", &n_ckpt), *metrics = tu_slurp(dir, "metrics.jsonl", &n_metrics);
    o.stop_after = 0;
    o.resume = 1;
    assert_int_equal(nn_train_run(&o, &err), -1);
    unsigned epoch2;
    int step2;
    parse_where(err.msg, &epoch2, &step2);
    assert_int_equal(epoch2, epoch);
    assert_int_equal(step2, step);
    assert_non_null(strstr(err.msg, what));
    size_t n2;
    char *ckpt2 = tu_slurp(dir, "checkpoint.ckpt", &n2);
    assert_int_equal(n2, n_ckpt);
    if (memcmp(ckpt, ckpt2, n_ckpt) != 0) fail_msg("%s/checkpoint.ckpt changed in the diverging epoch", dir);
    char *metrics2 = tu_slurp(dir, "metrics.jsonl", &n2);
    assert_int_equal(n2, n_metrics);
    if (memcmp(metrics, metrics2, n_metrics) != 0) fail_msg("%s/metrics.jsonl changed in the diverging epoch", dir);
    assert_false(has(dir, "result.json"));
    nn_ckpt c;
    char path[300];
    snprintf(path, sizeof path, "%s/checkpoint.ckpt", dir);
    assert_int_equal(nn_ckpt_load(path, &c, &err), 0);
    assert_int_equal(c.epoch, epoch - 1);
    for (size_t i = 0; i < c.n_params; i++) assert_true(isfinite(c.params[i]));
    for (size_t i = 0; i < c.n_buffers; i++) assert_true(isfinite(c.buffers[i]));
    nn_ckpt_free(&c);
    free(msg);
    free(ckpt);
    free(ckpt2);
    free(metrics);
    free(metrics2);
}

static void test_loss_nan(void **state) {
    (void)state;
    check_divergence(TMP "/loss.spec", "loss", "training loss is ");
}

/* The loss of the step that overflowed bn1.running_var is finite: only the check after the optimizer step sees
 * it, and the message names the tensor. */
static void test_stats_overflow(void **state) {
    (void)state;
    check_divergence(TMP "/stats.spec", "stats", "bn1.running_var holds non-finite values after the optimizer step "
                                                 "(training loss was ");
    char *msg = tu_slurp(TMP, "stats.stderr", NULL);
    const char *was = strstr(msg, "training loss was ");
    assert_non_null(was);
    double loss = strtod(was + strlen("training loss was "), NULL);
    assert_true(isfinite(loss));
    free(msg);
}

/* A run that diverges in its first epoch leaves no checkpoint and says so. */
static void test_first_epoch(void **state) {
    (void)state;
    write_spec(TMP "/first.spec", "name first\nflatten\ndense units=16\nbatchnorm\nrelu\ndense units=10\n"
                                  "train optimizer=sgd lr=10 weight_decay=1 batch=16 epochs=3\n");
    const char *dir = TMP "/first";
    tu_rm_run(dir);
    int status = run_train(TMP "/first.spec", dir, NULL, NULL, TMP "/first.stderr");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    char *msg = tu_slurp(TMP, "first.stderr", NULL);
    unsigned epoch;
    int step;
    parse_where(msg, &epoch, &step);
    assert_int_equal(epoch, 1);
    assert_non_null(strstr(msg, "No checkpoint was written"));
    assert_false(has(dir, "checkpoint.ckpt"));
    assert_false(has(dir, "result.json"));
    free(msg);
}

/* Validation logits can overflow while every weight is finite and the training loss was finite: a 784 -> 10 layer
 * whose weights weight decay multiplies by -9 per step (one step per epoch) reaches Inf on a validation image first.
 * The run stops naming the validation of that epoch and keeps the checkpoint of the epoch before. */
static void test_validation_nan(void **state) {
    (void)state;
    write_spec(TMP "/val.spec", "name val_nan\nflatten\ndense units=10\n"
                                "train optimizer=sgd lr=10 weight_decay=1 batch=480 epochs=100\n");
    const char *dir = TMP "/val";
    tu_rm_run(dir);
    nn_train_opts o;
    nn_train_opts_defaults(&o);
    o.data = DATA;
    o.model = TMP "/val.spec";
    o.run_dir = dir;
    o.val_frac = 0.2;
    o.seed = 5;
    o.log = NULL;
    dg_err err = {{0}};
    assert_int_equal(nn_train_run(&o, &err), -1);
    print_message("%s\n", err.msg);
    unsigned epoch;
    size_t at = 0;
    while (err.msg[at] && strncmp(err.msg + at, "epoch ", 6) != 0) at++;
    if (sscanf(err.msg + at, "epoch %u validation (after step 1 of 1)", &epoch) != 1)
        fail_msg("no 'epoch E validation' in: %s", err.msg);
    assert_non_null(strstr(err.msg, "validation (after step 1 of 1): validation loss is "));
    assert_true(epoch >= 2);
    assert_false(has(dir, "result.json"));
    nn_ckpt c;
    assert_int_equal(nn_ckpt_load(TMP "/val/checkpoint.ckpt", &c, &err), 0);
    assert_int_equal(c.epoch, epoch - 1);
    nn_ckpt_free(&c);
}

/* DIGITS_TRAP_FE=1: the diverging runs die with SIGFPE (on 1 and 2 threads), before any checkpoint of the
 * diverging epoch; the same runs without it exit 1 (above), so the signal is the switch's doing. */
static void test_trap_fe_traps(void **state) {
    (void)state;
    const char *specs[] = {TMP "/loss.spec", TMP "/stats.spec"}, *threads[] = {"1", "2"};
    for (int s = 0; s < 2; s++)
        for (int t = 0; t < 2; t++) {
            const char *dir = TMP "/trap";
            tu_rm_run(dir);
            int status = run_train(specs[s], dir, "1", threads[t], TMP "/trap.stderr");
            char *msg = tu_slurp(TMP, "trap.stderr", NULL);
            if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGFPE)
                fail_msg("%s, %s threads: expected death by SIGFPE, got status %#x; stderr:\n%s", specs[s],
                         threads[t], status, msg);
            assert_non_null(strstr(msg, "DIGITS_TRAP_FE=1: invalid operation, division by zero and overflow"));
            assert_false(has(dir, "result.json"));
            free(msg);
        }
}

/* DIGITS_TRAP_FE=1 raises no false alarm on runs that train normally: a dense net with batch norm and dropout, and
 * a CNN (conv, pooling, batch norm kernels; the AVX2 ones where the CPU has them, also with DIGITS_NO_AVX2=1). */
static void test_trap_fe_quiet(void **state) {
    (void)state;
    const char *specs[] = {DIGITS_FIXTURES "/spec/tiny.spec", DIGITS_FIXTURES "/spec/tinycnn.spec",
                           DIGITS_FIXTURES "/spec/tinycnn.spec"};
    for (int s = 0; s < 3; s++) {
        tu_env no_avx2;
        if (s == 2) tu_env_set(&no_avx2, "DIGITS_NO_AVX2", "1");
        const char *dir = TMP "/quiet";
        tu_rm_run(dir);
        int status = run_train(specs[s], dir, "1", NULL, TMP "/quiet.stderr");
        if (s == 2) tu_env_restore(&no_avx2);
        char *msg = tu_slurp(TMP, "quiet.stderr", NULL);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail_msg("%s%s: status %#x with DIGITS_TRAP_FE=1; stderr:\n%s", specs[s],
                     s == 2 ? " (DIGITS_NO_AVX2=1)" : "", status, msg);
        assert_non_null(strstr(msg, "DIGITS_TRAP_FE=1: invalid operation"));
        assert_true(has(dir, "result.json"));
        free(msg);
    }
}

/* A GAN's discriminator spec (28x28x1 in, one logit out) is refused before anything is created. */
static void test_gan_spec(void **state) {
    (void)state;
    write_spec(TMP "/disc.spec", "name disc\noutput logit\nconv filters=8 size=3 stride=2\nleakyrelu\n"
                                 "dense units=1\n");
    const char *dir = TMP "/disc";
    tu_rm_run(dir);
    int status = run_train(TMP "/disc.spec", dir, NULL, NULL, TMP "/disc.stderr");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 2);
    char *msg = tu_slurp(TMP, "disc.stderr", NULL);
    assert_non_null(strstr(msg, "disc.spec"));
    assert_non_null(strstr(msg, "'output logit' is a GAN's network; digits-train trains classifiers"));
    assert_false(dg_path_exists(dir));
    free(msg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_nan),      cmocka_unit_test(test_stats_overflow),
        cmocka_unit_test(test_first_epoch),   cmocka_unit_test(test_validation_nan),
        cmocka_unit_test(test_trap_fe_traps),
        cmocka_unit_test(test_trap_fe_quiet),      cmocka_unit_test(test_gan_spec),
    };
    return tu_exit(cmocka_run_group_tests(tests, setup, NULL));
}
