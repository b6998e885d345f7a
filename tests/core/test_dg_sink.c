/* Tests for core/dg_sink: each sink format read back independently (dataset reader, .npy reader, raw IDX bytes,
 * CSV text), atomic commit/abort, label checks, and the digits-export / digits-ingest command lines (exit codes,
 * one-line errors, CSV -> dataset -> CSV identity). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/dg_sink.h"
#include "kaggle/ingest.h"
#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "core/dg_npy.h"

#define TMP DIGITS_TEST_TMP "/export_"
#define N_IMG 5

static uint8_t px(int i, int p) { return (uint8_t)((p * 13 + i * 101 + (p * p) % 7) & 0xff); }
static int lab(int i) { return (i * 3 + 1) % 10; }

static void write_sink(dg_format fmt, const char *path, int labelled, int n) {
    dg_err err;
    dg_sink *s;
    assert_int_equal(dg_sink_open(&s, fmt, path, labelled, &err), 0);
    uint8_t img[DG_PIXELS];
    for (int i = 0; i < n; i++) {
        for (int p = 0; p < DG_PIXELS; p++) img[p] = px(i, p);
        assert_int_equal(dg_sink_add(s, img, labelled ? lab(i) : -1, &err), 0);
    }
    assert_int_equal(dg_sink_count(s), (size_t)n);
    /* Nothing under the final names before the commit. */
    char names[2][4096];
    int k = dg_sink_paths(fmt, path, labelled, names, &err);
    assert_true(k >= 1);
    for (int j = 0; j < k; j++) assert_false(dg_path_exists(names[j]));
    if (dg_sink_commit(s, &err) != 0) fail_msg("%s", err.msg);
    for (int j = 0; j < k; j++) assert_true(dg_path_exists(names[j]));
}

static void remove_outputs(dg_format fmt, const char *path, int labelled) {
    dg_err err;
    char names[2][4096];
    int k = dg_sink_paths(fmt, path, labelled, names, &err);
    for (int j = 0; j < k; j++) unlink(names[j]);
}

static void test_format_names(void **state) {
    (void)state;
    dg_format f;
    assert_int_equal(dg_format_parse("dataset", &f), 0);
    assert_int_equal(f, DG_FMT_DATASET);
    assert_int_equal(dg_format_parse("npy", &f), 0);
    assert_int_equal(f, DG_FMT_NPY);
    assert_int_equal(dg_format_parse("idx", &f), 0);
    assert_int_equal(f, DG_FMT_IDX);
    assert_int_equal(dg_format_parse("csv", &f), 0);
    assert_int_equal(f, DG_FMT_CSV);
    assert_int_equal(dg_format_parse("CSV", &f), -1);
    assert_int_equal(dg_format_parse("", &f), -1);
    dg_err err;
    char names[2][4096];
    assert_int_equal(dg_sink_paths(DG_FMT_NPY, "a/b.npy", 1, names, &err), 2);
    assert_string_equal(names[0], "a/b.npy");
    assert_string_equal(names[1], "a/b-labels.npy");
    assert_int_equal(dg_sink_paths(DG_FMT_NPY, "a/b", 1, names, &err), 2);
    assert_string_equal(names[1], "a/b-labels.npy");
    assert_int_equal(dg_sink_paths(DG_FMT_NPY, "a/b.npy", 0, names, &err), 1);
    assert_int_equal(dg_sink_paths(DG_FMT_IDX, "m/train", 1, names, &err), 2);
    assert_string_equal(names[0], "m/train-images-idx3-ubyte");
    assert_string_equal(names[1], "m/train-labels-idx1-ubyte");
    assert_int_equal(dg_sink_paths(DG_FMT_CSV, "x.csv", 1, names, &err), 1);
}

static void test_dataset_sink(void **state) {
    (void)state;
    for (int labelled = 0; labelled < 2; labelled++) {
        const char *path = TMP "ds.npy";
        write_sink(DG_FMT_DATASET, path, labelled, N_IMG);
        dg_err err;
        dg_dataset ds;
        assert_int_equal(dg_dataset_open(&ds, path, &err), 0);
        assert_int_equal(ds.n, N_IMG);
        assert_int_equal(ds.has_labels, labelled);
        for (int i = 0; i < N_IMG; i++) {
            assert_int_equal(dg_dataset_label(&ds, (size_t)i), labelled ? lab(i) : -1);
            for (int p = 0; p < DG_PIXELS; p++) assert_int_equal(dg_dataset_image(&ds, (size_t)i)[p], px(i, p));
        }
        dg_dataset_close(&ds);
        unlink(path);
    }
}

static void test_npy_sink(void **state) {
    (void)state;
    for (int labelled = 0; labelled < 2; labelled++) {
        for (int n = 0; n <= N_IMG; n += N_IMG) { /* also an empty array */
            const char *path = TMP "img.npy";
            write_sink(DG_FMT_NPY, path, labelled, n);
            dg_err err;
            dg_npy_file f;
            if (dg_npy_open(&f, path, 1, &err) != 0) fail_msg("%s", err.msg);
            assert_true(dg_npy_is(&f.h, "|u1"));
            assert_int_equal(f.h.ndim, 3);
            assert_int_equal(f.h.shape[0], (size_t)n);
            assert_int_equal(f.h.shape[1], 28);
            assert_int_equal(f.h.shape[2], 28);
            assert_int_equal(f.h.fortran_order, 0);
            const uint8_t *d = f.data;
            for (int i = 0; i < n; i++)
                for (int p = 0; p < DG_PIXELS; p++) assert_int_equal(d[i * DG_PIXELS + p], px(i, p));
            dg_npy_close(&f);
            const char *lpath = TMP "img-labels.npy";
            if (labelled) {
                assert_int_equal(dg_npy_open(&f, lpath, 1, &err), 0);
                assert_true(dg_npy_is(&f.h, "|u1"));
                assert_int_equal(f.h.ndim, 1);
                assert_int_equal(f.h.shape[0], (size_t)n);
                for (int i = 0; i < n; i++) assert_int_equal(((const uint8_t *)f.data)[i], lab(i));
                dg_npy_close(&f);
            } else {
                assert_false(dg_path_exists(lpath));
            }
            remove_outputs(DG_FMT_NPY, path, labelled);
        }
    }
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_idx_sink(void **state) {
    (void)state;
    for (int labelled = 0; labelled < 2; labelled++) {
        const char *path = TMP "mnist";
        write_sink(DG_FMT_IDX, path, labelled, N_IMG);
        dg_err err;
        char *d;
        size_t len;
        assert_int_equal(dg_read_file(TMP "mnist-images-idx3-ubyte", &d, &len, &err), 0);
        assert_int_equal(len, 16 + N_IMG * DG_PIXELS);
        const uint8_t *u = (const uint8_t *)d;
        assert_int_equal(be32(u), 0x00000803);
        assert_int_equal(be32(u + 4), N_IMG);
        assert_int_equal(be32(u + 8), 28);
        assert_int_equal(be32(u + 12), 28);
        for (int i = 0; i < N_IMG; i++)
            for (int p = 0; p < DG_PIXELS; p++) assert_int_equal(u[16 + i * DG_PIXELS + p], px(i, p));
        free(d);
        if (labelled) {
            assert_int_equal(dg_read_file(TMP "mnist-labels-idx1-ubyte", &d, &len, &err), 0);
            assert_int_equal(len, 8 + N_IMG);
            u = (const uint8_t *)d;
            assert_int_equal(be32(u), 0x00000801);
            assert_int_equal(be32(u + 4), N_IMG);
            for (int i = 0; i < N_IMG; i++) assert_int_equal(u[8 + i], lab(i));
            free(d);
        } else {
            assert_false(dg_path_exists(TMP "mnist-labels-idx1-ubyte"));
        }
        remove_outputs(DG_FMT_IDX, path, labelled);
    }
}

static void test_csv_sink(void **state) {
    (void)state;
    for (int labelled = 0; labelled < 2; labelled++) {
        const char *path = TMP "out.csv";
        write_sink(DG_FMT_CSV, path, labelled, N_IMG);
        /* The expected text, built independently with printf. */
        size_t cap = 1 << 20, n = 0;
        char *want = malloc(cap);
        assert_non_null(want);
        n += (size_t)snprintf(want + n, cap - n, "%s", labelled ? "label," : "");
        for (int p = 0; p < DG_PIXELS; p++) n += (size_t)snprintf(want + n, cap - n, "pixel%d%s", p, p < 783 ? "," : "\n");
        for (int i = 0; i < N_IMG; i++) {
            if (labelled) n += (size_t)snprintf(want + n, cap - n, "%d,", lab(i));
            for (int p = 0; p < DG_PIXELS; p++) n += (size_t)snprintf(want + n, cap - n, "%u%s", px(i, p), p < 783 ? "," : "\n");
        }
        dg_err err;
        char *got;
        size_t len;
        assert_int_equal(dg_read_file(path, &got, &len, &err), 0);
        assert_int_equal(len, n);
        assert_memory_equal(got, want, n);
        free(got);
        free(want);
        /* And ingest reads it back to the same images. */
        const char *ds_path = TMP "back.npy";
        kg_ingest_stats st;
        assert_int_equal(kg_ingest(path, ds_path, labelled ? KG_EXPECT_TRAIN : KG_EXPECT_TEST, 1, &st, &err), 0);
        assert_int_equal(st.rows, N_IMG);
        assert_int_equal(st.libcsv_rows, 0);
        dg_dataset ds;
        assert_int_equal(dg_dataset_open(&ds, ds_path, &err), 0);
        for (int i = 0; i < N_IMG; i++) {
            assert_int_equal(dg_dataset_label(&ds, (size_t)i), labelled ? lab(i) : -1);
            for (int p = 0; p < DG_PIXELS; p++) assert_int_equal(dg_dataset_image(&ds, (size_t)i)[p], px(i, p));
        }
        dg_dataset_close(&ds);
        unlink(ds_path);
        unlink(path);
    }
}

static void test_abort_and_bad_label(void **state) {
    (void)state;
    static const dg_format fmts[] = {DG_FMT_DATASET, DG_FMT_NPY, DG_FMT_IDX, DG_FMT_CSV};
    uint8_t img[DG_PIXELS] = {0};
    for (int f = 0; f < 4; f++) {
        const char *path = TMP "aborted.bin";
        dg_err err;
        dg_sink *s;
        assert_int_equal(dg_sink_open(&s, fmts[f], path, 1, &err), 0);
        assert_int_equal(dg_sink_add(s, img, 4, &err), 0);
        assert_int_equal(dg_sink_add(s, img, 10, &err), -1);
        assert_non_null(strstr(err.msg, "label 10"));
        assert_int_equal(dg_sink_add(s, img, -1, &err), -1);
        dg_sink_abort(s);
        char names[2][4096], tmp[4200];
        int k = dg_sink_paths(fmts[f], path, 1, names, &err);
        for (int j = 0; j < k; j++) {
            assert_false(dg_path_exists(names[j]));
            snprintf(tmp, sizeof tmp, "%.4000s.tmp.%ld", names[j], (long)getpid());
            assert_false(dg_path_exists(tmp));
        }
        /* An unwritable path fails at open, naming it. */
        assert_int_equal(dg_sink_open(&s, fmts[f], DIGITS_TEST_TMP "/no_such_dir/x", 1, &err), -1);
        assert_non_null(strstr(err.msg, "no_such_dir"));
    }
    dg_sink_abort(NULL);
}

/* Run a command line; returns its exit status, with stderr in *msg (malloc'd). */
static int run(const char *cmd, char **msg) {
    char full[8192];
    const char *errf = TMP "stderr.txt";
    snprintf(full, sizeof full, "%s 2>%s >/dev/null", cmd, errf);
    int st = system(full);
    dg_err err;
    size_t len;
    if (dg_read_file(errf, msg, &len, &err) != 0) *msg = NULL;
    unlink(errf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_command_lines(void **state) {
    (void)state;
    const char *ingest = DIGITS_BIN_DIR "/digits-ingest", *export = DIGITS_BIN_DIR "/digits-export";
    if (!dg_path_exists(ingest) || !dg_path_exists(export)) fail_msg("build digits-ingest and digits-export first");
    char cmd[4096], *msg;
    snprintf(cmd, sizeof cmd, "%s --help", ingest);
    assert_int_equal(run(cmd, &msg), 0);
    free(msg);
    snprintf(cmd, sizeof cmd, "%s --help", export);
    assert_int_equal(run(cmd, &msg), 0);
    free(msg);
    snprintf(cmd, sizeof cmd, "%s %s", ingest, DIGITS_FIXTURES "/ingest/good_train.csv"); /* no -o */
    assert_int_equal(run(cmd, &msg), 2);
    free(msg);
    snprintf(cmd, sizeof cmd, "%s --threads 0 -o x.npy in.csv", ingest);
    assert_int_equal(run(cmd, &msg), 2);
    free(msg);
    snprintf(cmd, sizeof cmd, "%s --expect maybe -o x.npy in.csv", ingest);
    assert_int_equal(run(cmd, &msg), 2);
    free(msg);
    snprintf(cmd, sizeof cmd, "%s --format png -o x in.npy", export);
    assert_int_equal(run(cmd, &msg), 2);
    free(msg);
    /* A rejected file: exit 1, exactly one line naming file:line:column, no output. */
    snprintf(cmd, sizeof cmd, "%s -o %sbad.npy %s", ingest, TMP, DIGITS_FIXTURES "/ingest/bad_pixel_256.csv");
    assert_int_equal(run(cmd, &msg), 1);
    assert_non_null(msg);
    assert_non_null(strstr(msg, "bad_pixel_256.csv:4:785: "));
    char *nl = strchr(msg, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], '\0'); /* one line */
    free(msg);
    assert_false(dg_path_exists(TMP "bad.npy"));
    /* CSV -> dataset -> CSV is the identity; the summary goes to stderr. */
    snprintf(cmd, sizeof cmd, "%s --expect train -o %sgood.npy %s", ingest, TMP,
             DIGITS_FIXTURES "/ingest/good_train.csv");
    assert_int_equal(run(cmd, &msg), 0);
    assert_non_null(strstr(msg, "3 labelled rows"));
    free(msg);
    snprintf(cmd, sizeof cmd, "%s --format csv -o %sgood.csv %sgood.npy", export, TMP, TMP);
    assert_int_equal(run(cmd, &msg), 0);
    free(msg);
    dg_err err;
    char *a, *b;
    size_t na, nb;
    assert_int_equal(dg_read_file(DIGITS_FIXTURES "/ingest/good_train.csv", &a, &na, &err), 0);
    assert_int_equal(dg_read_file(TMP "good.csv", &b, &nb, &err), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    free(a);
    free(b);
    /* Export of something that is not a dataset: exit 1, no output. */
    snprintf(cmd, sizeof cmd, "%s --format npy -o %sx.npy %s", export, TMP, DIGITS_FIXTURES "/ingest/good_train.csv");
    assert_int_equal(run(cmd, &msg), 1);
    assert_non_null(strstr(msg, "good_train.csv"));
    free(msg);
    assert_false(dg_path_exists(TMP "x.npy"));
    unlink(TMP "good.npy");
    unlink(TMP "good.csv");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_names), cmocka_unit_test(test_dataset_sink),
        cmocka_unit_test(test_npy_sink),     cmocka_unit_test(test_idx_sink),
        cmocka_unit_test(test_csv_sink),     cmocka_unit_test(test_abort_and_bad_label),
        cmocka_unit_test(test_command_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
