/* tests/testutil: what every test program shares, so that a test can fail and a skip cannot pass unseen.
 *
 *   tu_env_set / tu_env_restore   set an environment switch (DIGITS_NO_AVX2, ...) for a stretch of a test and put
 *                                 back what the caller had, set or unset: a program run with the switch on keeps
 *                                 it on after the stretch.
 *   tu_skip / tu_exit             a skipped test makes the program exit TU_SKIP_CODE, which CTest reports as
 *                                 "Not Run" (SKIP_RETURN_CODE in tests/CMakeLists.txt); cmocka's own skip() exits 0.
 *   tu_argv                       a stage's argv from one space-separated line.
 *   tu_put / tu_read              a text file written (atomically) or read whole; tu_count_lines / tu_count_in
 *                                 count its lines or a string's occurrences.
 *   tu_blocks_dataset             a small learnable labelled dataset file.
 *   tu_assert_close / _exact      float comparisons with an explicit tolerance, or exact where identity is the
 *                                 claim (cmocka's assert_float_equal rounds both sides to float and adds a hidden
 *                                 relative FLT_EPSILON, so an epsilon of 0 or 1e-12 there does not mean what it says).
 * Header-only: each test is one translation unit.
 */
#ifndef TESTS_TESTUTIL_H
#define TESTS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <unistd.h>

#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "core/dg_rng.h"

/* ---- environment switches ---- */

typedef struct tu_env {
    const char *name;
    int was_set;
    char value[256];
} tu_env;

/* Set name=value, remembering in *saved what was there. */
static inline void tu_env_set(tu_env *saved, const char *name, const char *value) {
    const char *old = getenv(name);
    saved->name = name;
    saved->was_set = old != NULL;
    saved->value[0] = '\0';
    if (old) {
        if (strlen(old) >= sizeof saved->value) fail_msg("%s: value too long to save", name);
        strcpy(saved->value, old);
    }
    if (setenv(name, value, 1) != 0) fail_msg("setenv %s failed", name);
}

/* Put back what tu_env_set found: the old value, or no variable at all. */
static inline void tu_env_restore(const tu_env *saved) {
    if (saved->was_set)
        setenv(saved->name, saved->value, 1);
    else
        unsetenv(saved->name);
}

/* ---- skips ---- */

/* The exit code of a program that skipped a test (the autotools convention). */
#define TU_SKIP_CODE 77

static int tu_skipped_;

/* Skip the current test with a reason on stdout (which CTest shows). */
#define tu_skip(...)                                                                                                \
    do {                                                                                                            \
        tu_skipped_++;                                                                                              \
        printf("SKIPPED: ");                                                                                        \
        printf(__VA_ARGS__);                                                                                        \
        printf("\n");                                                                                               \
        fflush(stdout);                                                                                             \
        skip();                                                                                                     \
    } while (0)

/* main's exit code from cmocka_run_group_tests' count of failures: 1 on any failure, else TU_SKIP_CODE if a test
 * was skipped, else 0. */
static inline int tu_exit(int failed) {
    if (failed) return 1;
    return tu_skipped_ ? TU_SKIP_CODE : 0;
}

/* ---- command lines ---- */

/* A stage's argv from one space-separated line (no quoting): argv[0] = prog, then the words of line, then NULL.
 * The words live in a static buffer until the next call; argv must have room for max entries. Returns argc. */
static inline int tu_argv(char **argv, int max, const char *prog, const char *line) {
    static char buf[1024];
    int argc = 0;
    snprintf(buf, sizeof buf, "%s", line ? line : "");
    argv[argc++] = (char *)prog;
    for (char *t = strtok(buf, " "); t && argc < max - 1; t = strtok(NULL, " ")) argv[argc++] = t;
    argv[argc] = NULL;
    return argc;
}

/* ---- a learnable synthetic dataset ---- */

/* A labelled dataset file of n rows: class c = (7 i) mod 10 is a bright 5x6 block at a class-dependent place on
 * noise below 90, drawn from dg_rng (seed, DG_RNG_USER, 0, i); jitter 1 moves the block by 0 or 1 column. A small
 * network learns it in an epoch or two. */
static inline void tu_blocks_dataset(const char *path, size_t n, uint64_t seed, int jitter) {
    dg_dataset_writer w;
    dg_err err = {{0}};
    if (dg_dataset_writer_open(&w, path, 1, &err) != 0) fail_msg("%s", err.msg);
    uint8_t img[DG_PIXELS];
    for (size_t i = 0; i < n; i++) {
        int c = (int)((i * 7) % 10);
        dg_rng r = dg_rng_make(seed, DG_RNG_USER, 0, (uint32_t)i);
        for (int p = 0; p < DG_PIXELS; p++) img[p] = (uint8_t)dg_rng_below(&r, 90);
        int y0 = 3 + (c / 5) * 12, x0 = 1 + (c % 5) * 5 + (jitter ? (int)dg_rng_below(&r, 2) : 0);
        for (int y = y0; y < y0 + 6; y++)
            for (int x = x0; x < x0 + 5; x++) img[y * DG_SIDE + x] = (uint8_t)(200 + dg_rng_below(&r, 56));
        if (dg_dataset_writer_add(&w, img, c, &err) != 0) fail_msg("%s", err.msg);
    }
    if (dg_dataset_writer_commit(&w, &err) != 0) fail_msg("%s", err.msg);
}

/* ---- run directories ---- */

/* Remove a run directory made by a test: every plain file in it, then the directory (no error if absent). */
static inline void tu_rm_run(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        char p[1024];
        for (struct dirent *e; (e = readdir(d)) != NULL;) {
            if (e->d_name[0] == '.') continue;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* dir/name read whole, malloc'd and NUL-terminated (fails the test if it cannot be read); *n its size if n. */
static inline char *tu_slurp(const char *dir, const char *name, size_t *n) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    char *data;
    size_t len;
    dg_err err = {{0}};
    if (dg_read_file(p, &data, &len, &err) != 0) fail_msg("%s", err.msg);
    if (n) *n = len;
    return data;
}

/* ---- whole text files ---- */

static inline void tu_put(const char *path, const char *text) {
    dg_err err = {{0}};
    if (dg_write_file_atomic(path, text, strlen(text), &err) != 0) fail_msg("%s", err.msg);
}

/* The file read whole, malloc'd and NUL-terminated; fails the test if it cannot be read. Kept out of line
 * (inlined, GCC 12 takes its result for a pointer to its local). */
__attribute__((noinline, unused)) static char *tu_read(const char *path) {
    char *t;
    size_t n;
    dg_err err = {{0}};
    if (dg_read_file(path, &t, &n, &err) != 0) fail_msg("%s", err.msg);
    return t;
}

/* Lines in the file; 0 if there is no such file. */
static inline int tu_count_lines(const char *path) {
    if (!dg_path_exists(path)) return 0;
    char *t = tu_read(path);
    int n = 0;
    for (char *p = t; *p; p++) n += *p == '\n';
    free(t);
    return n;
}

/* Occurrences of needle in the file (which must exist). */
static inline int tu_count_in(const char *path, const char *needle) {
    char *t = tu_read(path);
    int n = 0;
    for (const char *p = t; (p = strstr(p, needle)) != NULL; p++) n++;
    free(t);
    return n;
}

/* ---- float comparisons ----
 *
 * Rules of thumb for the tolerances at the call sites (each call says which applies):
 *   one float operation rounds to within 0.5 ulp, FLT_EPSILON / 2 = 6e-8 relative, so a value from a short chain of
 *   float operations checked against a double computation: rel TU_REL_F32 (1e-6, about 8 ulp of float);
 *   double arithmetic over a few hundred terms: rel TU_REL_F64 (1e-12, about 4500 ulp of double, far below any
 *   error that matters and far above rounding);
 *   an absolute floor (abs) only where the expected value can be 0 and relative error means nothing there. */
#define TU_REL_F32 1e-6
#define TU_REL_F64 1e-12

/* |a - b| <= abs + rel * max(|a|, |b|); NaN never passes. */
static inline int tu_close(double a, double b, double rel, double abs) {
    double d = fabs(a - b), m = fmax(fabs(a), fabs(b));
    return d <= abs + rel * m;
}

#define tu_assert_close(a, b, rel, abs) tu_assert_close_((a), (b), (rel), (abs), #a, #b, __FILE__, __LINE__)

static inline void tu_assert_close_(double a, double b, double rel, double abs, const char *ea, const char *eb,
                                    const char *file, int line) {
    if (!tu_close(a, b, rel, abs))
        fail_msg("%s:%d: %s = %.9g, %s = %.9g: differ by %.3g (rel %g, abs %g)", file, line, ea, a, eb, b,
                 fabs(a - b), rel, abs);
}

/* a == b exactly (as doubles; a float converts exactly): for values that must be bit-for-bit what the code
 * promises (a parsed literal, a copied value, a constant the code returns), not for computed approximations. */
#define tu_assert_exact(a, b) tu_assert_exact_((a), (b), #a, #b, __FILE__, __LINE__)

static inline void tu_assert_exact_(double a, double b, const char *ea, const char *eb, const char *file, int line) {
    if (!(a == b)) fail_msg("%s:%d: %s = %.17g, expected exactly %s = %.17g", file, line, ea, a, eb, b);
}

#endif
