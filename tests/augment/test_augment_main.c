/* Tests for the digits-augment stage: row order and labels, output independent of threads and batch size,
 * --replay (.npy and .jsonl) regenerates the output byte for byte, the preview PNG, and bad input (bad policy,
 * --copies 0, unwritable path, a file that is not a dataset): clear error, exit status, and no output left behind;
 * a full disk (a 1 MiB tmpfs, and /dev/full): refused up front when the estimate does not fit, a clear error when a
 * write fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "augment/augment.h"
#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "core/dg_npy.h"
#include "aug_testutil.h"
#include "testutil.h"

#define TDIR DIGITS_TEST_TMP "/augment_main"
#define BIN DIGITS_BIN_DIR "/digits-augment"
#define NIMG 150

static char last_stderr[8192];

/* Run digits-augment with args; returns its exit status, its stderr in last_stderr. */
static int run(const char *fmt, ...) {
    char args[2048], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s 2>%s/stderr.txt >/dev/null", BIN, args, TDIR);
    int st = system(cmd);
    last_stderr[0] = '\0';
    FILE *fp = fopen(TDIR "/stderr.txt", "r");
    if (fp) {
        size_t n = fread(last_stderr, 1, sizeof last_stderr - 1, fp);
        last_stderr[n] = '\0';
        fclose(fp);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
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

/* Files in TDIR other than the inputs. */
static int count_outputs(void) {
    DIR *d = opendir(TDIR);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && strcmp(e->d_name, "in.npy") && strcmp(e->d_name, "small") &&
            strcmp(e->d_name, "stderr.txt") && strcmp(e->d_name, "bad.policy") && strcmp(e->d_name, "f.npy"))
            n++;
    closedir(d);
    return n;
}

static void clean_outputs(void) {
    int rc = system("cd " TDIR " && rm -f out* params* prev* replay*");
    (void)rc;
}

static void write_dataset(const char *path, int n) {
    dg_dataset_writer w;
    dg_err err;
    assert_int_equal(dg_dataset_writer_open(&w, path, 1, &err), 0);
    uint8_t img[784];
    for (int i = 0; i < n; i++) {
        synth_digit(img, i);
        assert_int_equal(dg_dataset_writer_add(&w, img, i % 10, &err), 0);
    }
    assert_int_equal(dg_dataset_writer_commit(&w, &err), 0);
}

static int setup(void **state) {
    (void)state;
    dg_err err;
    if (dg_mkdirs(TDIR, &err) != 0) return -1;
    write_dataset(TDIR "/in.npy", NIMG);
    return 0;
}

static void test_rows_labels_and_invariance(void **state) {
    (void)state;
    clean_outputs();
    assert_int_equal(run("--data %s/in.npy --out %s/out1.npy --policy ciresan --copies 3 --keep-originals --seed 5 "
                         "--threads 1 --batch 1000", TDIR, TDIR), 0);
    assert_int_equal(run("--data %s/in.npy --out %s/out2.npy --policy ciresan --copies 3 --keep-originals --seed 5 "
                         "--threads 2 --batch 7", TDIR, TDIR), 0);
    assert_true(same_file(TDIR "/out1.npy", TDIR "/out2.npy"));
    dg_dataset in, out;
    dg_err err;
    assert_int_equal(dg_dataset_open(&in, TDIR "/in.npy", &err), 0);
    assert_int_equal(dg_dataset_open(&out, TDIR "/out1.npy", &err), 0);
    assert_int_equal(out.n, 4 * NIMG);
    assert_int_equal(out.has_labels, 1);
    for (size_t j = 0; j < out.n; j++) assert_int_equal(dg_dataset_label(&out, j), dg_dataset_label(&in, j % NIMG));
    /* originals first, unchanged; then copies, changed */
    for (size_t i = 0; i < NIMG; i++) assert_memory_equal(dg_dataset_image(&out, i), dg_dataset_image(&in, i), 784);
    /* copy c of image i is aug_batch_u8 with epoch c (the train stage's stream for epoch c) */
    aug_policy *pol;
    assert_int_equal(aug_policy_load(&pol, "ciresan", &err), 0);
    for (uint32_t c = 0; c < 3; c++) {
        uint32_t id = 17;
        const uint8_t *src[1] = {dg_dataset_image(&in, id)};
        uint8_t got[784];
        aug_batch_u8(pol, 5, c, &id, src, got, NULL, 1);
        assert_memory_equal(got, dg_dataset_image(&out, (c + 1) * NIMG + id), 784);
        assert_true(memcmp(got, src[0], 784) != 0);
    }
    aug_policy_free(pol);
    dg_dataset_close(&in);
    dg_dataset_close(&out);
    /* another seed, other images */
    assert_int_equal(run("--data %s/in.npy --out %s/out3.npy --policy ciresan --copies 3 --keep-originals --seed 6 -q",
                         TDIR, TDIR), 0);
    assert_false(same_file(TDIR "/out1.npy", TDIR "/out3.npy"));
}

static void test_replay_npy_and_jsonl(void **state) {
    (void)state;
    clean_outputs();
    const char *policy = DIGITS_FIXTURES "/augment/all.policy";
    assert_int_equal(run("--data %s/in.npy --out %s/out.npy --format npy --policy %s --copies 2 --keep-originals "
                         "--params-out %s/params.npy -q", TDIR, TDIR, policy, TDIR), 0);
    assert_int_equal(run("--data %s/in.npy --out %s/outj.npy --format npy --policy %s --copies 2 --keep-originals "
                         "--params-out %s/params.jsonl -q", TDIR, TDIR, policy, TDIR), 0);
    assert_true(same_file(TDIR "/out.npy", TDIR "/outj.npy"));
    assert_int_equal(run("--data %s/in.npy --out %s/replay1.npy --format npy --replay %s/params.npy -t 2", TDIR, TDIR,
                         TDIR), 0);
    assert_int_equal(run("--data %s/in.npy --out %s/replay2.npy --format npy --replay %s/params.jsonl -t 1 -b 3", TDIR,
                         TDIR, TDIR), 0);
    assert_true(same_file(TDIR "/out.npy", TDIR "/replay1.npy"));
    assert_true(same_file(TDIR "/out.npy", TDIR "/replay2.npy"));
    assert_true(same_file(TDIR "/out-labels.npy", TDIR "/replay1-labels.npy"));
    assert_true(same_file(TDIR "/out-labels.npy", TDIR "/replay2-labels.npy"));
    /* the params file: one record per output row */
    dg_npy_file f;
    dg_err err;
    assert_int_equal(dg_npy_open(&f, TDIR "/params.npy", 60, &err), 0);
    assert_int_equal(f.h.shape[0], 3 * NIMG);
    int32_t copy;
    memcpy(&copy, (const char *)f.data + 60 * NIMG + 4, 4);
    assert_int_equal(copy, 0);
    dg_npy_close(&f);
    /* the .jsonl lists what each line drew */
    char *text;
    size_t n;
    assert_int_equal(dg_read_file(TDIR "/params.jsonl", &text, &n, &err), 0);
    assert_non_null(strstr(text, "\"copy\":-1"));
    assert_non_null(strstr(text, "[\"rotate\","));
    assert_non_null(strstr(text, "[\"elastic\","));
    free(text);
    /* replaying a file that is not a params file fails cleanly */
    assert_int_equal(run("--data %s/in.npy --out %s/replay3.npy --replay %s/in.npy", TDIR, TDIR, TDIR), 1);
    assert_non_null(strstr(last_stderr, "not a digits-augment parameters file"));
    assert_false(dg_path_exists(TDIR "/replay3.npy"));
    /* --replay with --policy is a usage error */
    assert_int_equal(run("--data %s/in.npy --out %s/replay3.npy --replay %s/params.npy --policy kaggle", TDIR, TDIR,
                         TDIR), 2);
}

static void test_preview_and_formats(void **state) {
    (void)state;
    clean_outputs();
    assert_int_equal(run("--data %s/in.npy --out %s/out.csv --format csv --policy simard --copies 1 --preview "
                         "%s/prev.png --preview-rows 4 --preview-copies 3 -q", TDIR, TDIR, TDIR), 0);
    char *png;
    size_t n;
    dg_err err;
    assert_int_equal(dg_read_file(TDIR "/prev.png", &png, &n, &err), 0);
    assert_true(n > 100 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0);
    free(png);
    char *csv;
    assert_int_equal(dg_read_file(TDIR "/out.csv", &csv, &n, &err), 0);
    assert_true(strncmp(csv, "label,pixel0,", 13) == 0);
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += csv[i] == '\n';
    assert_int_equal(lines, NIMG + 1);
    free(csv);
    /* deskew on an unlabelled set: same rows, no labels */
    assert_int_equal(run("--data %s/in.npy --out %s/outd.npy --policy deskew -q", TDIR, TDIR), 0);
    dg_dataset d;
    assert_int_equal(dg_dataset_open(&d, TDIR "/outd.npy", &err), 0);
    assert_int_equal(d.n, NIMG);
    dg_dataset_close(&d);
}

static void test_bad_input_leaves_nothing(void **state) {
    (void)state;
    clean_outputs();
    int before = count_outputs();
    FILE *fp = fopen(TDIR "/bad.policy", "w");
    fputs("rotate 10\nelastic alpha=34 sigma=-4\n", fp);
    fclose(fp);
    assert_int_equal(run("--data %s/in.npy --out %s/out.npy --policy %s/bad.policy", TDIR, TDIR, TDIR), 1);
    assert_non_null(strstr(last_stderr, "bad.policy:2:24: sigma must be >= 0"));
    fp = fopen(TDIR "/bad.policy", "w");
    fputs("rotate 10 p=2\n", fp);
    fclose(fp);
    assert_int_equal(run("--data %s/in.npy --out %s/out.npy --policy %s/bad.policy", TDIR, TDIR, TDIR), 1);
    assert_non_null(strstr(last_stderr, "bad.policy:1:13: probability p must be in [0, 1]"));
    fp = fopen(TDIR "/bad.policy", "w");
    fputs("\nelastic alpha=nan sigma=4\n", fp);
    fclose(fp);
    assert_int_equal(run("--data %s/in.npy --out %s/out.npy --policy %s/bad.policy", TDIR, TDIR, TDIR), 1);
    assert_non_null(strstr(last_stderr, "bad.policy:2:15:"));
    fp = fopen(TDIR "/bad.policy", "w");
    fputs("rotate 10\nwarp 3\n", fp);
    fclose(fp);
    assert_int_equal(run("--data %s/in.npy --out %s/out.npy --policy %s/bad.policy", TDIR, TDIR, TDIR), 1);
    assert_non_null(strstr(last_stderr, "bad.policy:2:1: unknown transform 'warp'"));
    assert_int_equal(run("--data %s/in.npy --out %s/out.npy --policy nosuchpreset", TDIR, TDIR), 1);
    assert_int_equal(run("--data %s/in.npy --out %s/out.npy --copies 0", TDIR, TDIR), 2);
    assert_non_null(strstr(last_stderr, "--copies"));
    assert_int_equal(run("--data %s/in.npy --out %s/out.npy --copies -3", TDIR, TDIR), 2);
    assert_int_equal(run("--data %s/in.npy --out %s/out.npy --copies 3x", TDIR, TDIR), 2);
    assert_int_equal(run("--data %s/in.npy --out %s/out.npy --format parquet", TDIR, TDIR), 2);
    assert_int_equal(run("--data %s/in.npy --out %s/out.npy --params-out %s/params.txt", TDIR, TDIR, TDIR), 2);
    assert_int_equal(run("--data %s/in.npy", TDIR), 2);
    /* unwritable output path */
    assert_int_equal(run("--data %s/in.npy --out /nonexistent-dir/out.npy", TDIR), 1);
    assert_non_null(strstr(last_stderr, "/nonexistent-dir"));
    assert_int_equal(run("--data %s/in.npy --out %s/out.npy --params-out /nonexistent-dir/p.npy", TDIR, TDIR), 1);
    /* a file that is not a dataset */
    float v[4] = {1, 2, 3, 4};
    size_t shape[1] = {4};
    dg_err err;
    assert_int_equal(dg_npy_save(TDIR "/f.npy", "<f4", shape, 1, v, 4, &err), 0);
    assert_int_equal(run("--data %s/f.npy --out %s/out.npy", TDIR, TDIR), 1);
    assert_non_null(strstr(last_stderr, "not a digits dataset"));
    assert_int_equal(run("--data %s/stderr.txt --out %s/out.npy", TDIR, TDIR), 1);
    assert_int_equal(count_outputs(), before); /* nothing left behind, not even temporaries */
}

/* ---- a full disk ----
 * The stage runs in a private mount namespace (unshare) with a 1 MiB tmpfs on TDIR/small, so a full disk is the
 * same everywhere and nothing can write more than 1 MiB, whatever the host's free space; the mount vanishes with
 * the command. */

#define SMALL TDIR "/small"

/* Run `script` (sh) with the tmpfs mounted on SMALL; returns the script's exit status, or -1 if no mount
 * namespace can be made here. */
static int run_on_small_disk(const char *script) {
    static const char *unshare[] = {"unshare --user --map-root-user --mount", "unshare --mount"};
    char cmd[8192];
    assert_int_equal(mkdir(SMALL, 0755) == 0 || errno == EEXIST, 1);
    for (size_t i = 0; i < sizeof unshare / sizeof unshare[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s sh -c 'mount -t tmpfs -o size=1m tmpfs %s' >/dev/null 2>&1", unshare[i],
                 SMALL);
        if (system(cmd) != 0) continue;
        snprintf(cmd, sizeof cmd, "%s sh -c 'mount -t tmpfs -o size=1m tmpfs %s || exit 99; %s'", unshare[i], SMALL,
                 script);
        int st = system(cmd);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 98;
    }
    return -1;
}

static void read_stderr(void) {
    last_stderr[0] = '\0';
    FILE *fp = fopen(TDIR "/stderr.txt", "r");
    assert_non_null(fp);
    size_t n = fread(last_stderr, 1, sizeof last_stderr - 1, fp);
    last_stderr[n] = '\0';
    fclose(fp);
}

static void test_disk_full(void **state) {
    (void)state;
    char script[4096];
    /* the estimate (150 x 21 rows of 785 bytes, 2.5 MB) does not fit in 1 MiB: refused before any write; the
     * script ends with the number of files left on the small disk */
    snprintf(script, sizeof script,
             "%s --data %s/in.npy --out %s/out.npy --copies 20 --keep-originals -q 2>%s/stderr.txt >/dev/null;"
             " st=$?; [ -z \"$(ls -A %s)\" ] || exit 97; exit $st",
             BIN, TDIR, SMALL, TDIR, SMALL);
    int st = run_on_small_disk(script);
    if (st == -1) tu_skip("no mount namespace here (unshare --mount) for a small tmpfs");
    read_stderr();
    if (st != 1) fail_msg("exit status %d (97: files left behind), stderr: %s", st, last_stderr);
    assert_non_null(strstr(last_stderr, "MB are free"));
    /* the estimate fits, the writes do not: the output's temporary file (path.tmp.PID; exec keeps the shell's
     * PID) is /dev/full, where every write fails with ENOSPC. Exit 1, the disk-full error, no out.npy. */
    snprintf(script, sizeof script,
             "touch %s/out.npy.tmp.$$ && mount --bind /dev/full %s/out.npy.tmp.$$ || exit 96;"
             " exec %s --data %s/in.npy --out %s/out.npy --copies 2 -q 2>%s/stderr.txt >/dev/null",
             SMALL, SMALL, BIN, TDIR, SMALL, TDIR);
    st = run_on_small_disk(script);
    read_stderr();
    if (st != 1) fail_msg("exit status %d, stderr: %s", st, last_stderr);
    assert_non_null(strstr(last_stderr, "No space left on device"));
    snprintf(script, sizeof script,
             "%s --data %s/in.npy --out %s/out.npy --copies 2 -q 2>%s/stderr.txt >/dev/null && test -s %s/out.npy",
             BIN, TDIR, SMALL, TDIR, SMALL);
    assert_int_equal(run_on_small_disk(script), 0); /* the same run on the same disk succeeds without /dev/full */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_labels_and_invariance),
        cmocka_unit_test(test_replay_npy_and_jsonl),
        cmocka_unit_test(test_preview_and_formats),
        cmocka_unit_test(test_bad_input_leaves_nothing),
        cmocka_unit_test(test_disk_full),
    };
    return tu_exit(cmocka_run_group_tests(tests, setup, NULL));
}
