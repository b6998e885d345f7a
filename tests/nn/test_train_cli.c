/* Tests for nn/train_cli: digits-train's options parsed into a struct (defaults, every bad value and conflict a
 * usage error naming the option, a second parse starting afresh), --summary printed to a memory stream, and a small
 * run through nn_train_cli_run giving the same model as nn_train_run with the same options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "core/dg_cli.h"
#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "core/dg_npy.h"
#include "core/dg_rng.h"
#include "nn/train.h"
#include "nn/train_cli.h"

#define TMP DIGITS_TEST_TMP "/train_cli"
#define DATA TMP "/synth.npy"
#define TINY DIGITS_FIXTURES "/spec/tiny.spec"
#define N_ROWS 200

/* Parse a space-separated command line (no quoting needed here). */
static int parse(nn_train_cli_opts *o, dg_err *err, const char *line) {
    char *argv[64];
    int argc = tu_argv(argv, 64, "digits-train", line);
    memset(err, 0, sizeof *err);
    return nn_train_cli_parse(argc, argv, o, err);
}

static int setup(void **state) {
    (void)state;
    dg_err err = {{0}};
    if (dg_mkdirs(TMP, &err) != 0) return -1;
    tu_blocks_dataset(DATA, N_ROWS, 98, 0);
    return 0;
}

static void test_parse_defaults(void **state) {
    (void)state;
    nn_train_cli_opts o;
    dg_err err;
    assert_int_equal(parse(&o, &err, "--data d.npy --model m --run r"), 0);
    assert_string_equal(o.train.data, "d.npy");
    assert_string_equal(o.train.model, "m");
    assert_string_equal(o.train.run_dir, "r");
    assert_int_equal(o.train.seed, 1);
    assert_int_equal(o.train.split_seed, 1);
    assert_true(o.train.val_frac == 0.1);
    assert_int_equal(o.train.folds, 0);
    assert_int_equal(o.train.fold, 0);
    assert_int_equal(o.train.epochs, 0);
    assert_int_equal(o.train.batch, 0);
    assert_true(o.train.lr == 0);
    assert_true(o.train.ema < 0); /* keeps the spec's */
    assert_null(o.train.augment);
    assert_int_equal(o.train.resume, 0);
    assert_int_equal(o.train.stop_after, 0);
    assert_int_equal(o.train.stop_at, 0);
    assert_ptr_equal(o.train.log, stderr);
    assert_int_equal(o.threads, dg_default_threads());
    assert_int_equal(o.summary, 0);
    assert_int_equal(o.help, 0);
    assert_null(o.out);

    /* every option; then a second parse starts from the defaults again (getopt reset, nothing carried over) */
    assert_int_equal(parse(&o, &err, "--data d --model m --run r --seed 7 --split-seed 9 --folds 5 --fold 2 "
                                     "--epochs 3 --batch 16 --lr 0.5 --augment kaggle --threads 3 --resume --stop-at 2 --quiet "
                                     "--ema 0.999"),
                     0);
    assert_int_equal(o.train.seed, 7);
    assert_int_equal(o.train.split_seed, 9);
    assert_int_equal(o.train.folds, 5);
    assert_int_equal(o.train.fold, 2);
    assert_int_equal(o.train.epochs, 3);
    assert_int_equal(o.train.batch, 16);
    assert_true(o.train.lr == 0.5f);
    tu_assert_exact(o.train.ema, 0.999f);
    assert_string_equal(o.train.augment, "kaggle");
    assert_int_equal(o.threads, 3);
    assert_int_equal(o.train.resume, 1);
    assert_int_equal(o.train.stop_at, 2);
    assert_null(o.train.log);
    assert_int_equal(parse(&o, &err, "--model m2 --summary --val-frac 0.25"), 0);
    assert_string_equal(o.train.model, "m2");
    assert_null(o.train.data);
    assert_int_equal(o.summary, 1);
    assert_true(o.train.val_frac == 0.25);
    assert_int_equal(o.train.seed, 1);
    assert_int_equal(o.train.folds, 0);
    assert_null(o.train.augment);
    assert_true(o.train.ema < 0);
    assert_ptr_equal(o.train.log, stderr);
    /* --ema 0 turns a spec's EMA off */
    assert_int_equal(parse(&o, &err, "--model m --summary --ema 0"), 0);
    tu_assert_exact(o.train.ema, 0);

    /* --help needs nothing else, and wins over what follows it */
    assert_int_equal(parse(&o, &err, "--help --epochs 0"), 0);
    assert_int_equal(o.help, 1);
}

static void test_parse_errors(void **state) {
    (void)state;
    static const struct {
        const char *args, *want;
    } cases[] = {
        {"--model m --seed x", "--seed x: expected an unsigned integer"},
        {"--model m --seed -1", "--seed -1: expected an unsigned integer"},
        {"--model m --split-seed 1.5", "--split-seed 1.5: expected an unsigned integer"},
        {"--model m --val-frac 1", "--val-frac 1: expected a number in (0, 1)"},
        {"--model m --val-frac 0", "--val-frac 0: expected a number in (0, 1)"},
        {"--model m --folds 1", "--folds 1: expected an integer in 2..1000"},
        {"--model m --fold 0", "--fold 0: expected an integer in 1..K"},
        {"--model m --epochs 0", "--epochs 0: expected an integer in 1..100000"},
        {"--model m --stop-at 0", "--stop-at 0: expected an integer in 1..100000"},
        {"--model m --epochs 12x", "--epochs 12x: expected an integer in 1..100000"},
        {"--model m --batch 65537", "--batch 65537: expected an integer in 1..65536"},
        {"--model m --lr 0", "--lr 0: expected a number in (0, 10]"},
        {"--model m --lr 1e999", "--lr 1e999: expected a number in (0, 10]"},
        {"--model m --threads 0", "--threads 0: expected an integer in 1..1024"},
        {"--model m --ema 1", "--ema 1: expected 0 (off) or a decay in (0, 1)"},
        {"--model m --ema -0.1", "--ema -0.1: expected 0 (off) or a decay in (0, 1)"},
        {"--model m --ema abc", "--ema abc: expected 0 (off) or a decay in (0, 1)"},
        {"--model m --ema 0.99999999", "--ema 0.99999999: expected 0 (off) or a decay in (0, 1)"},
        {"--model m --bogus", "unrecognized option '--bogus'"},
        {"--model m --s 3", "option '--s' is ambiguous; possibilities: '--seed' '--split-seed' '--stop-at' '--summary'"},
        {"--model m --quiet=1", "option '--quiet' doesn't allow an argument"},
        {"--model m --summ=1", "option '--summary' doesn't allow an argument"},
        {"--model m --data", "option '--data' requires an argument"},
        {"--model m -x", "invalid option -- 'x'"},
        {"--model m --data d --run r extra", "unexpected argument 'extra'"},
        {"--data d --run r", "--model is required"},
        {"--model m --data d", "--data and --run are required"},
        {"--model m --run r", "--data and --run are required"},
        /* the validation split: a fraction or one fold of K, not both */
        {"--model m --data d --run r --folds 5", "--folds K and --fold k go together"},
        {"--model m --data d --run r --fold 2", "--folds K and --fold k go together"},
        {"--model m --data d --run r --folds 5 --fold 2 --val-frac 0.2", "--val-frac and --folds exclude each other"},
        {"--model m --data d --run r --val-frac 0.2 --folds 5 --fold 2", "--val-frac and --folds exclude each other"},
        {"--model m --data d --run r --folds 3 --fold 4", "--fold 4: expected 1..3"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nn_train_cli_opts o;
        dg_err err;
        int rc = parse(&o, &err, cases[i].args);
        if (rc != DG_EXIT_USAGE || strcmp(err.msg, cases[i].want) != 0)
            fail_msg("'%s': rc %d, message '%s'; expected %d, '%s'", cases[i].args, rc, err.msg, DG_EXIT_USAGE,
                     cases[i].want);
    }
}

static void test_summary_to_stream(void **state) {
    (void)state;
    nn_train_cli_opts o;
    dg_err err;
    assert_int_equal(parse(&o, &err, "--summary --model " TINY " --batch 7"), 0);
    char *text = NULL;
    size_t n = 0;
    o.out = open_memstream(&text, &n);
    assert_non_null(o.out);
    assert_int_equal(nn_train_cli_run(&o, &err), DG_EXIT_OK);
    fclose(o.out);
    /* tiny.spec: dense 784 -> 16 (12560), batchnorm 16 (32), dense 16 -> 10 (170); --batch sizes the net */
    assert_non_null(strstr(text, "model tiny: input 28x28x1 (HxWxC), batches up to 7\n"));
    assert_non_null(strstr(text, "dense 16"));
    assert_non_null(strstr(text, "dense 10"));
    assert_non_null(strstr(text, "total: 12762 trainable parameters"));
    free(text);
    /* the summary trains nothing: no --data or --run needed, nothing written */
    assert_false(dg_path_exists(TMP "/spec.txt"));

    /* out NULL: built, not printed; a missing model: failure with its name */
    o.out = NULL;
    assert_int_equal(nn_train_cli_run(&o, &err), DG_EXIT_OK);
    assert_int_equal(parse(&o, &err, "--summary --model " TMP "/no_such.spec"), 0);
    assert_int_equal(nn_train_cli_run(&o, &err), DG_EXIT_FAIL);
    assert_non_null(strstr(err.msg, "no_such.spec"));
}

static void test_run_matches_library(void **state) {
    (void)state;
    const char *a = TMP "/cli", *b = TMP "/lib";
    tu_rm_run(a);
    tu_rm_run(b);
    nn_train_cli_opts o;
    dg_err err;
    assert_int_equal(parse(&o, &err, "--data " DATA " --model " TINY " --run " TMP "/cli --epochs 2 --batch 16 "
                                     "--val-frac 0.2 --seed 3 --split-seed 4 --ema 0.9 --quiet"),
                     0);
    if (nn_train_cli_run(&o, &err) != DG_EXIT_OK) fail_msg("%s", err.msg);

    /* the same run through nn_train_run */
    nn_train_opts t;
    nn_train_opts_defaults(&t);
    t.data = DATA;
    t.model = TINY;
    t.run_dir = b;
    t.epochs = 2;
    t.batch = 16;
    t.val_frac = 0.2;
    t.seed = 3;
    t.split_seed = 4;
    t.ema = 0.9f;
    t.log = NULL;
    if (nn_train_run(&t, &err) != 0) fail_msg("%s", err.msg);
    static const char *same[] = {"model.safetensors", "val_pred.npy", "val_ids.npy", "spec.txt"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        size_t na, nb;
        char *da = tu_slurp(a, same[i], &na), *db = tu_slurp(b, same[i], &nb);
        if (na != nb || memcmp(da, db, na) != 0) fail_msg("%s differs between the CLI run and nn_train_run", same[i]);
        free(da);
        free(db);
    }
    /* 20% of 200 rows validate: (40, 10) probabilities; the overrides reached the spec */
    dg_npy_file f;
    char p[512];
    snprintf(p, sizeof p, "%s/val_pred.npy", a);
    assert_int_equal(dg_npy_open(&f, p, 0, &err), 0);
    assert_int_equal(f.h.ndim, 2);
    assert_int_equal(f.h.shape[0], 40);
    assert_int_equal(f.h.shape[1], 10);
    dg_npy_close(&f);
    size_t n;
    char *spec = tu_slurp(a, "spec.txt", &n);
    assert_non_null(strstr(spec, "batch=16"));
    assert_non_null(strstr(spec, "epochs=2"));
    assert_non_null(strstr(spec, " ema=0.9\n"));
    free(spec);
    char *result = tu_slurp(a, "result.json", &n);
    assert_non_null(strstr(result, "\"epochs\":2"));
    free(result);

    /* again into the finished directory without --resume: a usage error; with it, nothing to do */
    assert_int_equal(nn_train_cli_run(&o, &err), DG_EXIT_USAGE);
    assert_non_null(strstr(err.msg, "already holds a finished run"));
    o.train.resume = 1;
    assert_int_equal(nn_train_cli_run(&o, &err), DG_EXIT_OK);
    /* a missing dataset: failure */
    assert_int_equal(parse(&o, &err, "--data " TMP "/missing.npy --model " TINY " --run " TMP "/x --quiet"), 0);
    assert_int_equal(nn_train_cli_run(&o, &err), DG_EXIT_FAIL);
    assert_non_null(strstr(err.msg, "missing.npy"));
    tu_rm_run(a);
    tu_rm_run(b);
}

/* --tensorboard reaches the run's options (NULL by default), and the run records its command line. */
static void test_tensorboard_and_command(void **state) {
    (void)state;
    nn_train_cli_opts o;
    dg_err err;
    assert_int_equal(parse(&o, &err, "--data d --model m --run r"), 0);
    assert_null(o.train.tensorboard);
    const char *dir = TMP "/cmd";
    tu_rm_run(dir);
    assert_int_equal(parse(&o, &err, "--data " DATA " --model " TINY " --run " TMP "/cmd --epochs 1 --quiet "
                                     "--tensorboard " TMP "/cmd_tb"),
                     0);
    assert_string_equal(o.train.tensorboard, TMP "/cmd_tb");
    if (nn_train_cli_run(&o, &err) != DG_EXIT_OK) fail_msg("%s", err.msg);
    size_t n;
    char *inv = tu_slurp(dir, "invocation.json", &n);
    assert_non_null(strstr(inv, "\"command\":\t\"digits-train --data " DATA " --model " TINY " --run " TMP
                                "/cmd --epochs 1 --quiet --tensorboard " TMP "/cmd_tb\""));
    free(inv);
}

static void test_usage_prints_live_defaults(void **state) {
    (void)state;
    char *text = NULL;
    size_t n = 0;
    FILE *fp = open_memstream(&text, &n);
    nn_train_cli_usage(fp);
    fclose(fp);
    char want[64];
    snprintf(want, sizeof want, "all CPUs, now %d)", dg_default_threads());
    assert_non_null(strstr(text, want));
    assert_non_null(strstr(text, "--seed S           initialization, shuffling, dropout, augmentation (default 1)"));
    assert_non_null(strstr(text, "(default 0.1)"));
    assert_non_null(strstr(text, "  --ema D            override the spec's ema="));
    assert_non_null(strstr(text, "0 off (spec\n                     default 0)"));
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_defaults),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_summary_to_stream),
        cmocka_unit_test(test_run_matches_library),
        cmocka_unit_test(test_usage_prints_live_defaults),
        cmocka_unit_test(test_tensorboard_and_command),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
