/* Helpers shared by the digits-sweep tests (tests/experiments/test_sweep_*.c): pieces of the trainer wrappers, live
 * processes found by pid or by a word of their command line (a zombie does not count: a trainer of a killed sweep
 * that is still running would), and a sweep's leaderboard without its seconds column (which differs between
 * otherwise identical runs). Include after cmocka.h. */
#ifndef TESTS_EXPERIMENTS_SWEEP_TEST_UTIL_H
#define TESTS_EXPERIMENTS_SWEEP_TEST_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "core/dg_file.h"
#include "testutil.h"

/* Pieces of the digits-train wrappers the sweep tests put in place of the trainer (sh): ARGS sets $run (--run) and
 * $stop (--stop-at, 0 if none) from the arguments; PROGRESS sets $done_ (epochs in the run's metrics.jsonl) and
 * $fin (1 if its result.json exists); EXEC runs the real digits-train. */
#define TU_WRAPPER_ARGS                                                                                             \
    "run=; stop=0; prev=\n"                                                                                         \
    "for a in \"$@\"; do\n"                                                                                         \
    "  [ \"$prev\" = --run ] && run=$a\n"                                                                           \
    "  [ \"$prev\" = --stop-at ] && stop=$a\n"                                                                      \
    "  prev=$a\n"                                                                                                   \
    "done\n"
#define TU_WRAPPER_EXEC "exec " DIGITS_BIN_DIR "/digits-train \"$@\"\n"
#define TU_WRAPPER_PROGRESS                                                                                         \
    "done_=0; [ -f \"$run/metrics.jsonl\" ] && done_=$(wc -l < \"$run/metrics.jsonl\")\n"                          \
    "fin=0; [ -f \"$run/result.json\" ] && fin=1\n"

/* A cmocka group setup's work: tmp made afresh (removed first) holding data (600 rows of tu_blocks_dataset, seed
 * 99, jittered) and the executable wrapper script; 0, or -1 if tmp cannot be made. */
static inline int tu_sweep_fixture(const char *tmp, const char *data, const char *wrapper, const char *script) {
    char cmd[600];
    dg_err err = {{0}};
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd) != 0) return -1;
    if (dg_mkdirs(tmp, &err) != 0) return -1;
    tu_blocks_dataset(data, 600, 99, 1);
    tu_put(wrapper, script);
    assert_int_equal(chmod(wrapper, 0755), 0);
    return 0;
}

/* 1 while the process (a /proc entry's name) is live, not a zombie. */
static inline int tu_proc_alive(const char *name) {
    char path[300], st[512];
    snprintf(path, sizeof path, "/proc/%s/stat", name);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t m = fread(st, 1, sizeof st - 1, f);
    fclose(f);
    st[m] = '\0';
    char *close_paren = strrchr(st, ')');
    return !(close_paren && close_paren[1] == ' ' && close_paren[2] == 'Z');
}

/* 1 while pid is a live process (not a zombie). */
static inline int tu_pid_alive(pid_t pid) {
    char name[32];
    snprintf(name, sizeof name, "%d", (int)pid);
    return tu_proc_alive(name);
}

/* Live processes (not zombies) whose command line holds needle. */
static inline int tu_processes_with(const char *needle) {
    DIR *d = opendir("/proc");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[300], buf[4096];
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t k = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        for (size_t i = 0; i < k; i++)
            if (buf[i] == '\0') buf[i] = ' ';
        buf[k] = '\0';
        if (!strstr(buf, needle)) continue;
        n += tu_proc_alive(e->d_name);
    }
    closedir(d);
    return n;
}

/* dir/leaderboard.csv without its seconds column (the 9th; quoted fields may hold commas), malloc'd. */
static inline char *tu_board(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/leaderboard.csv", dir);
    char *t = tu_read(path), *out = calloc(1, strlen(t) + 1), *o = out;
    int col = 1, quoted = 0;
    for (char *p = t; *p; p++) {
        if (*p == '"') quoted = !quoted;
        if (*p == '\n' && !quoted) col = 0;
        if (*p == ',' && !quoted) col++;
        if (col != 9) *o++ = *p;
        if (*p == '\n' && !quoted) col = 1;
    }
    free(t);
    return out;
}

#endif
