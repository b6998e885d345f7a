/* Helpers shared by the failure-injection tests (tests/failure/): a small synthetic labelled dataset, whole-file
 * compare, "previous good" contents planted in output files, and a directory listing that finds temporaries
 * ("<path>.tmp.<pid>", "<path>.old.<pid>") and anything else a writer left behind, a shell command with its stderr
 * kept, and the re-run of a test program in a private mount namespace. Include after cmocka.h. */
#ifndef TESTS_FAILURE_FI_UTIL_H
#define TESTS_FAILURE_FI_UTIL_H

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "core/dg_rng.h"
#include "testutil.h"

/* n labelled rows: class c is a bright block at a class-dependent place on noise (learnable in an epoch). */
static inline void fi_make_dataset(const char *path, size_t n) {
    dg_dataset_writer w;
    dg_err err = {{0}};
    if (dg_dataset_writer_open(&w, path, 1, &err) != 0) fail_msg("%s", err.msg);
    uint8_t img[DG_PIXELS];
    for (size_t i = 0; i < n; i++) {
        int c = (int)((i * 7) % 10);
        dg_rng r = dg_rng_make(99, DG_RNG_USER, 0, (uint32_t)i);
        for (int p = 0; p < DG_PIXELS; p++) img[p] = (uint8_t)dg_rng_below(&r, 90);
        int y0 = 3 + (c / 5) * 12, x0 = 1 + (c % 5) * 5;
        for (int y = y0; y < y0 + 6; y++)
            for (int x = x0; x < x0 + 5; x++) img[y * DG_SIDE + x] = 230;
        if (dg_dataset_writer_add(&w, img, c, &err) != 0) fail_msg("%s", err.msg);
    }
    if (dg_dataset_writer_commit(&w, &err) != 0) fail_msg("%s", err.msg);
}

/* The whole file, malloc'd (NULL if it cannot be read); *n its size. */
static inline char *fi_slurp(const char *path, size_t *n) {
    char *d;
    dg_err err;
    if (dg_read_file(path, &d, n, &err) != 0) return NULL;
    return d;
}

/* 1 if the file holds exactly the text. */
static inline int fi_holds(const char *path, const char *text) {
    size_t n;
    char *d = fi_slurp(path, &n);
    int same = d && n == strlen(text) && memcmp(d, text, n) == 0;
    free(d);
    return same;
}

static inline void fi_write(const char *path, const char *text) {
    FILE *fp = fopen(path, "wb");
    if (!fp || fputs(text, fp) < 0 || fclose(fp) != 0) fail_msg("cannot write %s", path);
}

/* Fails naming the first entry of dir that is a temporary (".tmp." or ".old." in its name) or, when allowed is
 * not NULL, not one of the names in allowed (NULL-terminated). */
static inline void fi_assert_clean_dir(const char *dir, const char *const *allowed, const char *when) {
    DIR *d = opendir(dir);
    if (!d) fail_msg("%s: cannot list %s", when, dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        int ok = !strstr(e->d_name, ".tmp.") && !strstr(e->d_name, ".old.");
        if (ok && allowed) {
            ok = 0;
            for (const char *const *a = allowed; *a; a++) ok |= !strcmp(*a, e->d_name);
        }
        if (!ok) {
            char name[512];
            snprintf(name, sizeof name, "%s", e->d_name);
            closedir(d);
            fail_msg("%s: %s/%s was left behind", when, dir, name);
        }
    }
    closedir(d);
}

/* The stderr of the last fi_sh, NUL-terminated (cut at 8 KiB). */
__attribute__((unused)) static char fi_err_text[8192];

/* Run a shell command line (printf format) with stdout to /dev/null and stderr to errfile, read back into
 * fi_err_text; returns the exit status (128 + the signal if killed). fi_sh: to the test's ERRFILE. */
__attribute__((format(printf, 2, 3))) static inline int fi_sh_to(const char *errfile, const char *fmt, ...) {
    char args[4096], cmd[4400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s 2>%s >/dev/null", args, errfile);
    int st = system(cmd);
    size_t n = 0;
    char *t = fi_slurp(errfile, &n);
    snprintf(fi_err_text, sizeof fi_err_text, "%s", t ? t : "");
    free(t);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}
#define fi_sh(...) fi_sh_to(ERRFILE, __VA_ARGS__)

/* In a private mount namespace already (FI_MOUNT_NS set), or re-run there; 0 if it cannot be made (tests that
 * need a small tmpfs or a read-only mount then run fi_test_no_namespace alone). */
static inline int fi_enter_namespace(char **argv) {
    if (getenv("FI_MOUNT_NS")) return 1;
    static const char *how[][4] = {{"unshare", "--mount", NULL}, {"unshare", "--user", "--map-root-user", "--mount"}};
    for (int i = 0; i < 2; i++) {
        char probe[256];
        snprintf(probe, sizeof probe, "%s %s %s %s sh -c 'mount -t tmpfs tmpfs /mnt' >/dev/null 2>&1", how[i][0],
                 how[i][1], how[i][2] ? how[i][2] : "", how[i][3] ? how[i][3] : "");
        if (system(probe) != 0) continue;
        setenv("FI_MOUNT_NS", "1", 1);
        char *args[8];
        int k = 0;
        for (int j = 0; j < 4 && how[i][j]; j++) args[k++] = (char *)how[i][j];
        args[k++] = argv[0];
        args[k] = NULL;
        execvp("unshare", args);
        return 0;
    }
    return 0;
}

static inline void fi_test_no_namespace(void **state) {
    (void)state;
    tu_skip("no mount namespace here (unshare --mount) for a small tmpfs and a read-only mount");
}

#endif
