/* Tests for augment/augment_cli: digits-augment's options parsed into a struct (defaults, short and long forms, every
 * bad value and conflict a usage error naming the option, a second parse starting afresh), and runs through
 * aug_cli_run on a small synthetic dataset: rows checked against aug_batch_u8, --replay regenerating them byte for
 * byte, the summary line on the given stream, the preview's size, failures leaving nothing behind, and the signal
 * handlers given back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "augment/augment.h"
#include "augment/augment_cli.h"
#include "core/dg_cli.h"
#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "aug_testutil.h"

#define TDIR DIGITS_TEST_TMP "/augment_cli"
#define IN TDIR "/in.npy"
#define NIMG 30

static int parse(aug_cli_opts *o, dg_err *err, const char *line) {
    char *argv[64];
    int argc = tu_argv(argv, 64, "digits-augment", line);
    memset(err, 0, sizeof *err);
    return aug_cli_parse(argc, argv, o, err);
}

/* Files in TDIR other than the input. */
static int count_outputs(void) {
    DIR *d = opendir(TDIR);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && strcmp(e->d_name, "in.npy") != 0) n++;
    closedir(d);
    return n;
}

static void clean_outputs(void) {
    int rc = system("cd " TDIR " && rm -f out* params* prev* replay*");
    (void)rc;
}

static int same_file(const char *a, const char *b) {
    char *da, *db;
    size_t na, nb;
    dg_err err;
    if (dg_read_file(a, &da, &na, &err) != 0) fail_msg("%s", err.msg);
    if (dg_read_file(b, &db, &nb, &err) != 0) fail_msg("%s", err.msg);
    int same = na == nb && memcmp(da, db, na) == 0;
    free(da);
    free(db);
    return same;
}

static int setup(void **state) {
    (void)state;
    dg_err err;
    if (dg_mkdirs(TDIR, &err) != 0) return -1;
    dg_dataset_writer w;
    if (dg_dataset_writer_open(&w, IN, 1, &err) != 0) return -1;
    uint8_t img[784];
    for (int i = 0; i < NIMG; i++) {
        synth_digit(img, i);
        if (dg_dataset_writer_add(&w, img, i % 10, &err) != 0) return -1;
    }
    return dg_dataset_writer_commit(&w, &err);
}

static void test_parse_defaults(void **state) {
    (void)state;
    aug_cli_opts o;
    dg_err err;
    assert_int_equal(parse(&o, &err, "--data in.npy --out out.npy"), 0);
    assert_string_equal(o.data, "in.npy");
    assert_string_equal(o.out, "out.npy");
    assert_string_equal(o.format, "dataset");
    assert_string_equal(o.policy, "kaggle");
    assert_null(o.params_out);
    assert_null(o.replay);
    assert_null(o.preview);
    assert_int_equal(o.copies, 1);
    assert_int_equal(o.epoch, 0);
    assert_int_equal(o.batch, 1024);
    assert_int_equal(o.threads, dg_default_threads());
    assert_int_equal(o.preview_rows, 10);
    assert_int_equal(o.preview_copies, 8);
    assert_int_equal(o.seed, 1);
    assert_int_equal(o.keep, 0);
    assert_int_equal(o.quiet, 0);
    assert_int_equal(o.help, 0);
    assert_ptr_equal(o.log, stderr);

    /* the short forms; then a second parse starts from the defaults again */
    assert_int_equal(parse(&o, &err, "-d a -o b -f csv -p simard -n 3 -k -s 5 -e 2 -b 7 -t 2 -q --preview p.png "
                                     "--preview-rows 4 --preview-copies 2 --params-out p.jsonl"),
                     0);
    assert_string_equal(o.data, "a");
    assert_string_equal(o.out, "b");
    assert_string_equal(o.format, "csv");
    assert_string_equal(o.policy, "simard");
    assert_int_equal(o.copies, 3);
    assert_int_equal(o.keep, 1);
    assert_int_equal(o.seed, 5);
    assert_int_equal(o.epoch, 2);
    assert_int_equal(o.batch, 7);
    assert_int_equal(o.threads, 2);
    assert_int_equal(o.quiet, 1);
    assert_null(o.log);
    assert_string_equal(o.preview, "p.png");
    assert_int_equal(o.preview_rows, 4);
    assert_int_equal(o.preview_copies, 2);
    assert_string_equal(o.params_out, "p.jsonl");
    assert_int_equal(parse(&o, &err, "--data a --out b --replay p.npy"), 0);
    assert_string_equal(o.replay, "p.npy");
    assert_string_equal(o.policy, "kaggle");
    assert_int_equal(o.copies, 1);
    assert_int_equal(o.keep, 0);
    assert_null(o.preview);
    assert_ptr_equal(o.log, stderr);

    assert_int_equal(parse(&o, &err, "-h --copies 0"), 0);
    assert_int_equal(o.help, 1);
}

static void test_parse_errors(void **state) {
    (void)state;
    static const struct {
        const char *args, *want;
    } cases[] = {
        {"-d a -o b --copies 0", "--copies: expected an integer 1..100000, got \"0\""},
        {"-d a -o b -n 100001", "--copies: expected an integer 1..100000, got \"100001\""},
        {"-d a -o b --copies 3x", "--copies: expected an integer 1..100000, got \"3x\""},
        {"-d a -o b --seed -1", "--seed: expected a non-negative integer, got \"-1\""},
        {"-d a -o b --epoch -1", "--epoch: expected an integer >= 0, got \"-1\""},
        {"-d a -o b --preview-rows 101", "--preview-rows: expected 1..100, got \"101\""},
        {"-d a -o b --preview-copies 0", "--preview-copies: expected 1..100, got \"0\""},
        {"-d a -o b --batch 0", "--batch: expected an integer 1..1048576, got \"0\""},
        {"-d a -o b -t 1025", "--threads: expected an integer 1..1024, got \"1025\""},
        {"-d a -o b --format parquet", "--format: expected dataset, npy, idx or csv, got \"parquet\""},
        {"-d a -o b --params-out p.txt", "--params-out: expected a name ending in .npy or .jsonl, got \"p.txt\""},
        {"-d a", "expected --data IN.npy and --out PATH"},
        {"-o b", "expected --data IN.npy and --out PATH"},
        {"-d a -o b c", "expected --data IN.npy and --out PATH (and no other arguments)"},
        {"-d a -o b --epoch 4294967295", "--epoch: expected an integer >= 0, got \"4294967295\""},
        {"-d a -o b --bogus", "unrecognized option '--bogus'"},
        {"-d a -o b --pre x", "option '--pre' is ambiguous; possibilities: '--preview' '--preview-rows' "
                              "'--preview-copies'"},
        {"-d a -o b --keep=1", "option '--keep-originals' doesn't allow an argument"},
        {"-d a -o b --out", "option '--out' requires an argument"},
        {"-d a -o b -z", "invalid option -- 'z'"},
        {"-d a -o b -n", "option requires an argument -- 'n'"},
        /* a replay takes everything from its file */
        {"-d a -o b --replay p.npy --policy kaggle", "--replay takes the parameters from its file: no --policy, "
                                                     "--copies, --keep-originals or --preview"},
        {"-d a -o b --replay p.npy --copies 1", "--replay takes the parameters from its file: no --policy, "
                                                "--copies, --keep-originals or --preview"},
        {"-d a -o b --replay p.npy -k", "--replay takes the parameters from its file: no --policy, "
                                        "--copies, --keep-originals or --preview"},
        {"-d a -o b --replay p.npy --preview x.png", "--replay takes the parameters from its file: no --policy, "
                                                     "--copies, --keep-originals or --preview"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        aug_cli_opts o;
        dg_err err;
        int rc = parse(&o, &err, cases[i].args);
        if (rc != DG_EXIT_USAGE || strcmp(err.msg, cases[i].want) != 0)
            fail_msg("'%s': rc %d, message '%s'; expected %d, '%s'", cases[i].args, rc, err.msg, DG_EXIT_USAGE,
                     cases[i].want);
    }
}

static void on_int(int sig) { (void)sig; }

static void test_run_rows_replay_and_summary(void **state) {
    (void)state;
    clean_outputs();
    aug_cli_opts o;
    dg_err err;
    assert_int_equal(parse(&o, &err, "--data " IN " --out " TDIR "/out.npy --policy ciresan --copies 2 -k --seed 5 "
                                     "--epoch 3 --batch 7 --params-out " TDIR "/params.npy"),
                     0);
    char *text = NULL;
    size_t n = 0;
    o.log = open_memstream(&text, &n);
    assert_non_null(o.log);
    signal(SIGINT, on_int);
    if (aug_cli_run(&o, &err) != DG_EXIT_OK) fail_msg("%s", err.msg);
    assert_ptr_equal(signal(SIGINT, SIG_DFL), on_int); /* the run gave the handler back */
    fclose(o.log);
    assert_true(strncmp(text, "digits-augment: " IN " -> " TDIR "/out.npy (dataset): 90 images (policy ciresan) in ",
                        strlen("digits-augment: " IN " -> " TDIR "/out.npy (dataset): 90 images (policy ciresan) in "))
                == 0);
    free(text);

    /* rows: the originals, then copy c of image i = aug_batch_u8 in epoch 3 + c */
    dg_dataset in, out;
    assert_int_equal(dg_dataset_open(&in, IN, &err), 0);
    assert_int_equal(dg_dataset_open(&out, TDIR "/out.npy", &err), 0);
    assert_int_equal(out.n, 3 * NIMG);
    aug_policy *pol;
    assert_int_equal(aug_policy_load(&pol, "ciresan", &err), 0);
    for (size_t j = 0; j < out.n; j++) {
        uint32_t id = (uint32_t)(j % NIMG);
        assert_int_equal(dg_dataset_label(&out, j), dg_dataset_label(&in, id));
        const uint8_t *src[1] = {dg_dataset_image(&in, id)};
        uint8_t want[784];
        if (j < NIMG) memcpy(want, src[0], 784);
        else aug_batch_u8(pol, 5, (uint32_t)(3 + j / NIMG - 1), &id, src, want, NULL, 1);
        if (memcmp(want, dg_dataset_image(&out, j), 784) != 0) fail_msg("row %zu differs", j);
    }
    aug_policy_free(pol);
    dg_dataset_close(&in);
    dg_dataset_close(&out);

    /* replay: the same rows byte for byte; quiet: nothing on the log */
    assert_int_equal(parse(&o, &err, "--data " IN " --out " TDIR "/replay.npy --replay " TDIR "/params.npy -q -b 4"),
                     0);
    assert_null(o.log);
    if (aug_cli_run(&o, &err) != DG_EXIT_OK) fail_msg("%s", err.msg);
    assert_true(same_file(TDIR "/out.npy", TDIR "/replay.npy"));
}

static void test_run_preview_and_failures(void **state) {
    (void)state;
    clean_outputs();
    aug_cli_opts o;
    dg_err err;
    assert_int_equal(parse(&o, &err, "--data " IN " --out " TDIR "/out.csv --format csv --policy simard --copies 2 "
                                     "--preview " TDIR "/prev.png --preview-rows 3 -q"),
                     0);
    if (aug_cli_run(&o, &err) != DG_EXIT_OK) fail_msg("%s", err.msg);
    /* 3 rows of an original and 2 copies, 56 px cells, 2 px gaps, 4 px after the originals */
    char *png;
    size_t n;
    assert_int_equal(dg_read_file(TDIR "/prev.png", &png, &n, &err), 0);
    assert_true(n > 24 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(png + 12, "IHDR", 4) == 0);
    const uint8_t *ihdr = (const uint8_t *)png + 16;
    uint32_t w = (uint32_t)ihdr[0] << 24 | (uint32_t)ihdr[1] << 16 | (uint32_t)ihdr[2] << 8 | ihdr[3];
    uint32_t h = (uint32_t)ihdr[4] << 24 | (uint32_t)ihdr[5] << 16 | (uint32_t)ihdr[6] << 8 | ihdr[7];
    assert_int_equal(w, 2 + 3 * 58 + 4);
    assert_int_equal(h, 2 + 3 * 58);
    free(png);
    char *csv;
    assert_int_equal(dg_read_file(TDIR "/out.csv", &csv, &n, &err), 0);
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += csv[i] == '\n';
    assert_int_equal(lines, 2 * NIMG + 1);
    free(csv);

    clean_outputs();
    int before = count_outputs();
    /* an unknown preset, a missing dataset, an unwritable params file: failures, nothing left behind */
    assert_int_equal(parse(&o, &err, "--data " IN " --out " TDIR "/out.npy --policy nosuchpreset -q"), 0);
    assert_int_equal(aug_cli_run(&o, &err), DG_EXIT_FAIL);
    assert_non_null(strstr(err.msg, "nosuchpreset"));
    assert_int_equal(parse(&o, &err, "--data " TDIR "/missing.npy --out " TDIR "/out.npy -q"), 0);
    assert_int_equal(aug_cli_run(&o, &err), DG_EXIT_FAIL);
    assert_non_null(strstr(err.msg, "missing.npy"));
    assert_int_equal(parse(&o, &err, "--data " IN " --out " TDIR "/out.npy -q --params-out /nonexistent-dir/p.npy"),
                     0);
    assert_int_equal(aug_cli_run(&o, &err), DG_EXIT_FAIL);
    assert_non_null(strstr(err.msg, "/nonexistent-dir"));
    assert_int_equal(count_outputs(), before);
    /* options built by hand are checked too */
    assert_int_equal(parse(&o, &err, "--data " IN " --out " TDIR "/out.npy -q"), 0);
    o.format = "parquet";
    assert_int_equal(aug_cli_run(&o, &err), DG_EXIT_USAGE);
    assert_non_null(strstr(err.msg, "--format"));
    assert_int_equal(count_outputs(), before);
}

static void test_usage_prints_live_defaults(void **state) {
    (void)state;
    char *text = NULL;
    size_t n = 0;
    FILE *fp = open_memstream(&text, &n);
    aug_cli_usage(fp);
    fclose(fp);
    assert_non_null(strstr(text, "dataset | npy | idx | csv (default dataset;"));
    assert_non_null(strstr(text, "1..100000 (default 1)"));
    assert_non_null(strstr(text, "(default 1024; output does not depend on it)"));
    assert_non_null(strstr(text, aug_policy_preset_names()));
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_defaults),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_run_rows_replay_and_summary),
        cmocka_unit_test(test_run_preview_and_failures),
        cmocka_unit_test(test_usage_prints_live_defaults),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
