/* tests/fuzz/fuzz_util: what the libFuzzer harnesses share.
 *
 *   fz_text       the input as a NUL-terminated string (for the text parsers)
 *   fz_file       the input written to a file of a given name in this process's scratch directory (for parsers
 *                 that only take a path); the directory is under /dev/shm when it exists, so no disk is touched
 *   FZ_CHECK      an invariant: print what broke and abort(), which libFuzzer reports as a crash with the input
 * Header-only: each harness is one translation unit.
 */
#ifndef TESTS_FUZZ_UTIL_H
#define TESTS_FUZZ_UTIL_H

#define _GNU_SOURCE 1
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FZ_CHECK(cond, ...)                                                                                       \
    do {                                                                                                          \
        if (!(cond)) {                                                                                            \
            fprintf(stderr, "%s:%d: invariant broken: %s: ", __FILE__, __LINE__, #cond);                         \
            fprintf(stderr, __VA_ARGS__);                                                                         \
            fputc('\n', stderr);                                                                                  \
            abort();                                                                                              \
        }                                                                                                         \
    } while (0)

static char fz_dir_[256];

static void fz_cleanup_(void) {
    DIR *d = opendir(fz_dir_);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(p, sizeof p, "%s/%s", fz_dir_, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(fz_dir_);
}

/* This process's scratch directory (made on first use, removed at exit). */
static inline const char *fz_dir(void) {
    if (!fz_dir_[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        snprintf(fz_dir_, sizeof fz_dir_, "%s/digits-fuzz-XXXXXX", base);
        if (!mkdtemp(fz_dir_)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(fz_cleanup_);
    }
    return fz_dir_;
}

/* dir/name into out[cap]. */
static inline void fz_path(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", fz_dir(), name); }

/* Write data to dir/name (replacing it); path receives the full name. */
static inline void fz_file(char *path, size_t cap, const char *name, const uint8_t *data, size_t size) {
    fz_path(path, cap, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || (size && fwrite(data, 1, size, fp) != size) || fclose(fp) != 0) {
        perror(path);
        abort();
    }
}

/* The input as a malloc'd NUL-terminated string (an embedded NUL ends it early, as it would a C string). */
static inline char *fz_text(const uint8_t *data, size_t size) {
    char *t = malloc(size + 1);
    if (!t) abort();
    memcpy(t, data, size);
    t[size] = '\0';
    return t;
}

/* A whole file into a malloc'd buffer (*n bytes); NULL if it cannot be read. */
static inline unsigned char *fz_slurp(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    unsigned char *buf = NULL;
    size_t cap = 0, len = 0, got;
    do {
        if (len == cap) {
            cap = cap ? 2 * cap : 4096;
            unsigned char *nb = realloc(buf, cap);
            if (!nb) abort();
            buf = nb;
        }
        got = fread(buf + len, 1, cap - len, fp);
        len += got;
    } while (got > 0);
    fclose(fp);
    *n = len;
    return buf;
}

#endif
