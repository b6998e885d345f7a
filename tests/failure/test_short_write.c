/* Every write-side stdio call a writer makes is checked: this program is linked with -Wl,--wrap for fopen, fwrite,
 * fputc, fputs, fprintf, vfprintf, fflush, fseek, fclose, fsync and rename (tests/CMakeLists.txt), so the
 * library's calls land in the __wrap_ functions below. A clean run of each writer counts the calls it makes on
 * streams it opened for writing (and every fsync and rename); then, for every N, the same run is repeated with
 * call N failing as a full disk does (a short count or EOF, the stream's error flag set, errno ENOSPC; fclose
 * closes but reports EIO; fsync and rename fail with EIO). Each such run must return a failure with a message,
 * leave every output file holding exactly its previous contents, and leave no temporary or other file behind; a
 * clean run afterwards succeeds. digits-train's run directory is resumable rather than all-or-nothing: there a
 * failure must leave no temporary and no result.json, any checkpoint left must load, and --resume must finish.
 *
 * The writers: dg_write_file_atomic; the stages' runs as their mains call them: ingest, export in all four formats,
 * augment (npy images + labels, parameters and preview: four files as one commit), train (spec, metrics,
 * checkpoint, model, validation outputs, result), predict (probabilities + submission), ensemble (probabilities,
 * submission and manifest as one commit), report (the HTML page, its PNGs inline). The preview PNG's own writes
 * reach the shim because augment hands libpng a checked write function (test_png_through_shim). */
#define _XOPEN_SOURCE 700 /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "augment/augment_cli.h"
#include "core/dg_cli.h"
#include "core/dg_file.h"
#include "core/dg_npy.h"
#include "core/dg_progress.h"
#include "experiments/report/report_cli.h"
#include "kaggle/ensemble_cli.h"
#include "kaggle/export_cli.h"
#include "kaggle/ingest_cli.h"
#include "kaggle/predict_cli.h"
#include "nn/checkpoint.h"
#include "nn/train_cli.h"
#include "fi_util.h"
#include "testutil.h"

#define TMP DIGITS_TEST_TMP "/short_write"
#define DATA TMP "/data.npy"
#define NROWS 24
#define RUN TMP "/trained"
#define SPEC DIGITS_FIXTURES "/spec/tiny.spec"

/* ---- the shim ---- */

FILE *__real_fopen(const char *path, const char *mode);
size_t __real_fwrite(const void *p, size_t size, size_t n, FILE *fp);
int __real_fputc(int c, FILE *fp);
int __real_fputs(const char *s, FILE *fp);
int __real_vfprintf(FILE *fp, const char *fmt, va_list ap);
int __real_fflush(FILE *fp);
int __real_fseek(FILE *fp, long off, int whence);
int __real_fclose(FILE *fp);
int __real_fsync(int fd);
int __real_rename(const char *from, const char *to);

static pthread_mutex_t shim_mu = PTHREAD_MUTEX_INITIALIZER;
static int shim_on;           /* counting */
static long shim_calls;       /* calls counted so far */
static long shim_fail_at;     /* the call to fail (1-based; 0: none) */
static char shim_fired[64];   /* the function that failed, "" if none did */
static FILE *shim_streams[64]; /* streams opened for writing */
static const char *shim_watch; /* a path fragment: fwrite calls on the stream of the last such path are counted */
static FILE *shim_watch_fp;
static long shim_watch_fwrites;

static void track(FILE *fp, int add) {
    pthread_mutex_lock(&shim_mu);
    for (int i = 0; i < 64; i++) {
        if (add && !shim_streams[i]) {
            shim_streams[i] = fp;
            break;
        }
        if (!add && shim_streams[i] == fp) {
            shim_streams[i] = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&shim_mu);
}

/* 1 if this call is the one to fail. Calls on streams not opened for writing (stderr, inputs) are not counted. */
static int shim_fail(const char *fn, FILE *fp) {
    pthread_mutex_lock(&shim_mu);
    int counted = shim_on, hit = 0;
    if (counted && fp) {
        counted = 0;
        for (int i = 0; i < 64; i++) counted |= shim_streams[i] == fp;
    }
    if (counted && ++shim_calls == shim_fail_at) {
        hit = 1;
        snprintf(shim_fired, sizeof shim_fired, "%s (call %ld)", fn, shim_calls);
    }
    pthread_mutex_unlock(&shim_mu);
    return hit;
}

/* What a failed write does to a stream: its error flag set (as glibc does on a failed write), errno ENOSPC. */
static void set_error(FILE *fp) {
#ifdef _IO_ERR_SEEN
    fp->_flags |= _IO_ERR_SEEN;
#else
#error "the short-write shim sets glibc's stream error flag"
#endif
    errno = ENOSPC;
}

FILE *__wrap_fopen(const char *path, const char *mode) {
    FILE *fp = __real_fopen(path, mode);
    if (fp && strpbrk(mode, "wa+")) track(fp, 1);
    pthread_mutex_lock(&shim_mu);
    if (fp && shim_watch && strstr(path, shim_watch)) shim_watch_fp = fp;
    pthread_mutex_unlock(&shim_mu);
    return fp;
}

size_t __wrap_fwrite(const void *p, size_t size, size_t n, FILE *fp) {
    pthread_mutex_lock(&shim_mu);
    if (fp && fp == shim_watch_fp) shim_watch_fwrites++;
    pthread_mutex_unlock(&shim_mu);
    if (!shim_fail("fwrite", fp)) return __real_fwrite(p, size, n, fp);
    size_t half = n / 2; /* a short write: part of the data, then the error */
    if (half) half = __real_fwrite(p, size, half, fp);
    set_error(fp);
    return half;
}

int __wrap_fputc(int c, FILE *fp) {
    if (!shim_fail("fputc", fp)) return __real_fputc(c, fp);
    set_error(fp);
    return EOF;
}

int __wrap_fputs(const char *s, FILE *fp) {
    if (!shim_fail("fputs", fp)) return __real_fputs(s, fp);
    set_error(fp);
    return EOF;
}

int __wrap_vfprintf(FILE *fp, const char *fmt, va_list ap) {
    if (!shim_fail("vfprintf", fp)) return __real_vfprintf(fp, fmt, ap);
    set_error(fp);
    return -1;
}

int __wrap_fprintf(FILE *fp, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc;
    if (shim_fail("fprintf", fp)) {
        set_error(fp);
        rc = -1;
    } else {
        rc = __real_vfprintf(fp, fmt, ap);
    }
    va_end(ap);
    return rc;
}

int __wrap_fflush(FILE *fp) {
    if (!fp || !shim_fail("fflush", fp)) return __real_fflush(fp);
    set_error(fp);
    return EOF;
}

int __wrap_fseek(FILE *fp, long off, int whence) {
    if (!shim_fail("fseek", fp)) return __real_fseek(fp, off, whence);
    errno = EIO;
    return -1;
}

int __wrap_fclose(FILE *fp) {
    int fail = shim_fail("fclose", fp);
    track(fp, 0);
    int rc = __real_fclose(fp);
    if (!fail) return rc;
    errno = EIO; /* closed, but the last data did not reach the disk */
    return EOF;
}

/* A passing fsync returns at once: durability is not what this test checks, and ~20 000 real fsyncs would take
 * minutes. A failing one fails as a dying disk does. */
int __wrap_fsync(int fd) {
    if (!shim_fail("fsync", NULL)) return fcntl(fd, F_GETFD) == -1 ? -1 : 0;
    errno = EIO;
    return -1;
}

int __wrap_rename(const char *from, const char *to) {
    if (!shim_fail("rename", NULL)) return __real_rename(from, to);
    errno = EIO;
    return -1;
}

static void shim_arm(long fail_at) {
    pthread_mutex_lock(&shim_mu);
    shim_on = 1;
    shim_calls = 0;
    shim_fail_at = fail_at;
    shim_fired[0] = '\0';
    pthread_mutex_unlock(&shim_mu);
}

static long shim_disarm(void) {
    pthread_mutex_lock(&shim_mu);
    shim_on = 0;
    long n = shim_calls;
    pthread_mutex_unlock(&shim_mu);
    return n;
}

/* ---- the writers ---- */

#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))

typedef struct writer {
    const char *name;
    const char *outputs[5]; /* the files it writes, in its directory TMP/<name> */
    int (*run)(const char *dir, dg_err *err);
    int resumable; /* a digits-train run directory */
} writer;

static char path_buf[8][4200];
/* TMP/<dir>/<file> in one of a few rotating buffers. */
static char *at(const char *dir, const char *file) {
    static int k;
    char *p = path_buf[k++ % 8];
    snprintf(p, 4200, "%s/%s", dir, file);
    return p;
}

static int w_atomic(const char *dir, dg_err *err) {
    static char data[20000];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (char)('a' + i % 26);
    return dg_write_file_atomic(at(dir, "out.bin"), data, sizeof data, err);
}

static int w_ingest(const char *dir, dg_err *err) {
    kg_ingest_cli_opts o;
    char *argv[] = {"digits-ingest", "-q", "-t", "2", "-o", at(dir, "out.npy"),
                    DIGITS_FIXTURES "/ingest/good_train.csv", NULL};
    int rc = kg_ingest_cli_parse((int)(sizeof argv / sizeof *argv) - 1, argv, &o, err);
    return rc ? rc : kg_ingest_cli_run(&o, err);
}

static int export_as(const char *dir, const char *fmt, const char *out, dg_err *err) {
    kg_export_cli_opts o;
    int rc = kg_export_cli_parse(ARGC("digits-export", "-q", "-f", (char *)fmt, "-o", at(dir, out), DATA),
                                 ARGV("digits-export", "-q", "-f", (char *)fmt, "-o", at(dir, out), DATA), &o, err);
    return rc ? rc : kg_export_cli_run(&o, err);
}
static int w_export_dataset(const char *dir, dg_err *err) { return export_as(dir, "dataset", "out.npy", err); }
static int w_export_npy(const char *dir, dg_err *err) { return export_as(dir, "npy", "out.npy", err); }
static int w_export_idx(const char *dir, dg_err *err) { return export_as(dir, "idx", "out", err); }
static int w_export_csv(const char *dir, dg_err *err) { return export_as(dir, "csv", "out.csv", err); }

static int w_augment(const char *dir, dg_err *err) {
    aug_cli_opts o;
    char *argv[] = {"digits-augment", "-q", "--data", DATA, "--out", at(dir, "out.npy"), "--format", "npy",
                    "--params-out", at(dir, "params.npy"), "--preview", at(dir, "preview.png"), "--preview-rows",
                    "2", "--preview-copies", "2", NULL};
    int rc = aug_cli_parse((int)(sizeof argv / sizeof *argv) - 1, argv, &o, err);
    return rc ? rc : aug_cli_run(&o, err);
}

static int train_in(const char *dir, int resume, dg_err *err) {
    nn_train_cli_opts o;
    char *argv[] = {"digits-train", "--quiet", "--data", DATA, "--model", SPEC, "--run", (char *)dir, "--epochs", "2",
                    "--batch", "8", "--val-frac", "0.25", resume ? "--resume" : NULL, NULL};
    int argc = (int)(sizeof argv / sizeof *argv) - (resume ? 1 : 2);
    int rc = nn_train_cli_parse(argc, argv, &o, err);
    return rc ? rc : nn_train_cli_run(&o, err);
}
static int w_train(const char *dir, dg_err *err) { return train_in(dir, 0, err); }

static int w_predict(const char *dir, dg_err *err) {
    kg_predict_cli_opts o;
    char *argv[] = {"digits-predict", "-q", "-d", DATA, "-o", at(dir, "probs.npy"), "-l", at(dir, "sub.csv"), RUN,
                    NULL};
    int rc = kg_predict_cli_parse((int)(sizeof argv / sizeof *argv) - 1, argv, &o, err);
    return rc ? rc : kg_predict_cli_run(&o, err);
}

static int w_ensemble(const char *dir, dg_err *err) {
    kg_ensemble_cli_opts o;
    char *argv[] = {"digits-ensemble", "-q", "-o", at(dir, "sub.csv"), "--probs-out", at(dir, "probs.npy"),
                    TMP "/m1.npy", TMP "/m2.npy", NULL};
    int rc = kg_ensemble_cli_parse((int)(sizeof argv / sizeof *argv) - 1, argv, &o, err);
    return rc ? rc : kg_ensemble_cli_run(&o, err);
}

static int w_report(const char *dir, dg_err *err) {
    rp_report_cli_opts o;
    int rc = rp_report_cli_parse(ARGC("digits-report", "--run", RUN, "-o", at(dir, "report.html")),
                                 ARGV("digits-report", "--run", RUN, "-o", at(dir, "report.html")), &o, err);
    return rc ? rc : rp_report_cli_run(&o, err);
}

static const writer writers[] = {
    {"atomic", {"out.bin"}, w_atomic, 0},
    {"ingest", {"out.npy"}, w_ingest, 0},
    {"export_dataset", {"out.npy"}, w_export_dataset, 0},
    {"export_npy", {"out.npy", "out-labels.npy"}, w_export_npy, 0},
    {"export_idx", {"out-images-idx3-ubyte", "out-labels-idx1-ubyte"}, w_export_idx, 0},
    {"export_csv", {"out.csv"}, w_export_csv, 0},
    {"augment", {"out.npy", "out-labels.npy", "params.npy", "preview.png"}, w_augment, 0},
    {"predict", {"probs.npy", "sub.csv"}, w_predict, 0},
    {"ensemble", {"sub.csv", "sub.manifest.json", "probs.npy"}, w_ensemble, 0},
    {"report", {"report.html"}, w_report, 0},
    {"train", {NULL}, w_train, 1},
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* rm -rf without a child process (this test removes a run directory hundreds of times). */
static void rm_rf(const char *dir) {
    if (dg_path_exists(dir) && nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0) fail_msg("cannot remove %s", dir);
}

/* Plant "previous <name>" in every output of w. */
static void plant(const writer *w, const char *dir) {
    for (int i = 0; w->outputs[i]; i++) {
        char text[256];
        snprintf(text, sizeof text, "previous %s\n", w->outputs[i]);
        fi_write(at(dir, w->outputs[i]), text);
    }
}

static void check_writer(const writer *w) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", TMP, w->name);
    rm_rf(dir);
    dg_err err = {{0}};
    double t0 = dg_now();
    assert_int_equal(dg_mkdirs(dir, &err), 0);
    const char *allowed[8] = {0};
    for (int i = 0; w->outputs[i]; i++) allowed[i] = w->outputs[i];

    /* The clean run: how many calls. */
    if (!w->resumable) plant(w, dir);
    shim_arm(0);
    int rc = w->run(dir, &err);
    long calls = shim_disarm();
    if (rc != 0) fail_msg("%s: the clean run failed: %s", w->name, err.msg);
    if (calls < 3) fail_msg("%s: only %ld write calls counted; the shim is not in the path", w->name, calls);
    for (int i = 0; w->outputs[i]; i++) {
        char text[256];
        snprintf(text, sizeof text, "previous %s\n", w->outputs[i]);
        if (fi_holds(at(dir, w->outputs[i]), text)) fail_msg("%s: the clean run left %s as it was", w->name,
                                                              w->outputs[i]);
    }

    for (long n = 1; n <= calls; n++) {
        char when[256];
        if (w->resumable) rm_rf(dir);
        else plant(w, dir);
        memset(&err, 0, sizeof err);
        shim_arm(n);
        rc = w->run(dir, &err);
        shim_disarm();
        snprintf(when, sizeof when, "%s, failing %s", w->name, shim_fired);
        if (!shim_fired[0]) fail_msg("%s: call %ld of %ld was not made", w->name, n, calls);
        if (rc == 0) fail_msg("%s: succeeded", when);
        if (strlen(err.msg) < 10) fail_msg("%s: no message (\"%s\")", when, err.msg);
        if (w->resumable) {
            fi_assert_clean_dir(dir, NULL, when);
            if (dg_path_exists(at(dir, "result.json"))) fail_msg("%s: result.json written", when);
            if (dg_path_exists(at(dir, "checkpoint.ckpt"))) {
                nn_ckpt c;
                if (nn_ckpt_load(at(dir, "checkpoint.ckpt"), &c, &err) != 0) fail_msg("%s: %s", when, err.msg);
                nn_ckpt_free(&c);
            }
            if (train_in(dir, 1, &err) != 0) fail_msg("%s: --resume then failed: %s", when, err.msg);
            if (!dg_path_exists(at(dir, "result.json"))) fail_msg("%s: --resume wrote no result.json", when);
            continue;
        }
        for (int i = 0; w->outputs[i]; i++) {
            char text[256];
            snprintf(text, sizeof text, "previous %s\n", w->outputs[i]);
            if (!fi_holds(at(dir, w->outputs[i]), text))
                fail_msg("%s: %s no longer holds its previous contents (%s)", when, w->outputs[i], err.msg);
        }
        fi_assert_clean_dir(dir, allowed, when);
    }
    /* And a clean run after all that succeeds. */
    if (!w->resumable) plant(w, dir);
    else rm_rf(dir);
    if (w->run(dir, &err) != 0) fail_msg("%s: the last clean run failed: %s", w->name, err.msg);
    print_message("%s: %ld write calls, each failed once (%.1f s)\n", w->name, calls, dg_now() - t0);
}

static void test_writers(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof writers / sizeof *writers; i++) check_writer(&writers[i]);
}

/* The preview PNG's bytes (libpng's output) go through the checked fwrite the shim wraps, so test_writers fails
 * them one by one as it does every other write: libpng's own png_init_io output would bypass it (calls from inside
 * libpng.so are not wrapped), leaving the PNG writer untested here. */
static void test_png_through_shim(void **state) {
    (void)state;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/png_watch", TMP);
    rm_rf(dir);
    dg_err err = {{0}};
    assert_int_equal(dg_mkdirs(dir, &err), 0);
    shim_watch = "preview.png";
    shim_watch_fp = NULL;
    shim_watch_fwrites = 0;
    shim_arm(0);
    int rc = w_augment(dir, &err);
    shim_disarm();
    shim_watch = NULL;
    shim_watch_fp = NULL;
    if (rc != 0) fail_msg("augment: %s", err.msg);
    /* libpng writes the signature, then each chunk's header, data and CRC: 9 calls for IHDR, one IDAT, IEND */
    if (shim_watch_fwrites < 9) fail_msg("%ld fwrite calls on the preview; libpng's writes bypass the shim",
                                          shim_watch_fwrites);
    print_message("preview.png: %ld fwrite calls through the shim\n", shim_watch_fwrites);
}

/* The shim itself: a failing fwrite is short and sets the error flag, so a test passing here means something. */
static void test_shim_fails_calls(void **state) {
    (void)state;
    FILE *fp = fopen(TMP "/shim.txt", "wb");
    assert_non_null(fp);
    shim_arm(2);
    assert_int_equal(fwrite("abcd", 1, 4, fp), 4);
    assert_int_equal(fwrite("abcd", 1, 4, fp), 2);
    assert_true(ferror(fp));
    assert_int_equal(errno, ENOSPC);
    assert_int_equal(shim_disarm(), 2);
    assert_string_equal(shim_fired, "fwrite (call 2)");
    assert_int_equal(fclose(fp), 0);
}

static int setup(void **state) {
    (void)state;
    dg_err err = {{0}};
    rm_rf(TMP);
    if (dg_mkdirs(TMP, &err) != 0) return -1;
    /* One thread: the small runs repeated here are quicker without a team (ingest still parses with two). */
    dg_set_threads(1);
    fi_make_dataset(DATA, NROWS);
    /* a trained run for predict; two members' test probabilities for the ensemble */
    if (train_in(RUN, 0, &err) != 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    float p[NROWS * 10];
    for (int m = 0; m < 2; m++) {
        for (int i = 0; i < NROWS * 10; i++) p[i] = (i % 10 == (i / 10 + m) % 10) ? 0.91f : 0.01f;
        size_t shape[2] = {NROWS, 10};
        if (dg_npy_save(m ? TMP "/m2.npy" : TMP "/m1.npy", "<f4", shape, 2, p, sizeof(float), &err) != 0) return -1;
    }
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shim_fails_calls),
        cmocka_unit_test(test_png_through_shim),
        cmocka_unit_test(test_writers),
    };
    return tu_exit(cmocka_run_group_tests(tests, setup, NULL));
}
