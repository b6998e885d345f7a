/* The bad-input catalog (tests/catalog/cases.txt): every stage program given missing files, files of the wrong
 * kind, truncated files, bad specs, policies and presets, unknown options and out-of-range numbers. Each case
 * checks the exit status, that stderr is exactly one line "PROGRAM: ..." holding the expected words, and that
 * the output directory holds exactly the files made before the run, byte for byte (nothing created, nothing
 * replaced, no temporary). Every digits-* program in the build's bin/ must have a case. All cases run and every
 * mismatch is printed before the test fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "core/dg_npy.h"
#include "experiments/sweep_store.h"
#include "failure/fi_util.h"
#include "testutil.h"

#define WS DIGITS_TEST_TMP "/catalog"
#define IN WS "/in"
#define OUT WS "/out"
#define TABLE DIGITS_SOURCE_DIR "/tests/catalog/cases.txt"
#define NROWS 60

/* s with @IN, @OUT, @FX (tests/fixtures) and @SRC (the source tree) replaced, into out (cap bytes). */
static void expand(char *out, size_t cap, const char *s) {
    static const char *const keys[][2] = {{"@IN", IN}, {"@OUT", OUT}, {"@FX", DIGITS_FIXTURES}, {"@SRC", DIGITS_SOURCE_DIR}};
    size_t k = 0;
    while (*s) {
        int hit = 0;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0] && !hit; i++) {
            size_t n = strlen(keys[i][0]);
            if (!strncmp(s, keys[i][0], n)) {
                k += (size_t)snprintf(out + k, k < cap ? cap - k : 0, "%s", keys[i][1]);
                s += n;
                hit = 1;
            }
        }
        if (!hit) {
            if (k + 1 < cap) out[k] = *s;
            k++;
            s++;
        }
    }
    if (k >= cap) fail_msg("expanded text too long: %s", s);
    out[k] = '\0';
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) *--e = '\0';
    return s;
}

static void precious(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "previous %s\n", name); }

/* One case; returns the number of mismatches (printed). */
static int run_case(int line, const char *prog, const char *args, int want_exit, const char *want_msg, char *outs) {
    char cmd[8192], xargs[4096], msg[2048];
    expand(xargs, sizeof xargs, args);
    expand(msg, sizeof msg, want_msg);
    if (system("rm -rf " OUT " && mkdir -p " OUT) != 0) fail_msg("cannot reset " OUT);
    const char *made[8];
    int n_made = 0;
    if (strcmp(outs, "-") != 0)
        for (char *tok = strtok(outs, " "); tok && n_made < 8; tok = strtok(NULL, " ")) {
            char path[4200], text[256];
            snprintf(path, sizeof path, "%s/%s", OUT, tok);
            precious(text, sizeof text, tok);
            fi_write(path, text);
            made[n_made++] = tok;
        }
    snprintf(cmd, sizeof cmd, "cd %s && %s/%s %s >/dev/null 2>%s/stderr.txt", WS, DIGITS_BIN_DIR, prog, xargs, WS);
    int st = system(cmd);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    size_t n = 0;
    char *err = fi_slurp(WS "/stderr.txt", &n);
    if (!err) fail_msg("no stderr file");
    int bad = 0;
    char head[128];
    snprintf(head, sizeof head, "%s: ", prog);
    const char *nl = strchr(err, '\n');
    if (code != want_exit) {
        print_error("cases.txt:%d: %s %s: exit %d, expected %d; stderr: %s\n", line, prog, args, code, want_exit, err);
        bad++;
    }
    if (strncmp(err, head, strlen(head)) != 0 || !nl || nl[1] != '\0') {
        print_error("cases.txt:%d: %s %s: stderr is not one line \"%s...\": %s\n", line, prog, args, head, err);
        bad++;
    }
    if (!strstr(err, msg)) {
        print_error("cases.txt:%d: %s %s: stderr lacks \"%s\": %s\n", line, prog, args, msg, err);
        bad++;
    }
    free(err);
    /* OUT holds exactly the files made, unchanged */
    DIR *d = opendir(OUT);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        int known = 0;
        for (int i = 0; i < n_made; i++) known |= !strcmp(made[i], e->d_name);
        if (!known) {
            print_error("cases.txt:%d: %s %s: created %s/%s\n", line, prog, args, OUT, e->d_name);
            bad++;
        }
    }
    closedir(d);
    for (int i = 0; i < n_made; i++) {
        char path[4200], text[256];
        snprintf(path, sizeof path, "%s/%s", OUT, made[i]);
        precious(text, sizeof text, made[i]);
        if (!fi_holds(path, text)) {
            print_error("cases.txt:%d: %s %s: %s was replaced or removed\n", line, prog, args, made[i]);
            bad++;
        }
    }
    return bad;
}

static void test_catalog(void **state) {
    (void)state;
    FILE *fp = fopen(TABLE, "r");
    if (!fp) fail_msg("cannot read %s", TABLE);
    char buf[8192];
    char progs[32][64];
    int n_progs = 0, cases = 0, bad = 0, line = 0;
    while (fgets(buf, sizeof buf, fp)) {
        line++;
        char *s = trim(buf);
        if (!*s || *s == '#') continue;
        char *f[5];
        int k = 0;
        for (char *p = s; k < 5; k++) {
            f[k] = p;
            char *bar = strstr(p, " | ");
            if (!bar) {
                k++;
                break;
            }
            *bar = '\0';
            p = bar + 3;
        }
        if (k != 5) fail_msg("cases.txt:%d: expected 5 fields separated by \" | \"", line);
        for (int i = 0; i < 5; i++) f[i] = trim(f[i]);
        int want = atoi(f[0]);
        if (want < 1 || want > 2) fail_msg("cases.txt:%d: exit status %s: expected 1 or 2", line, f[0]);
        bad += run_case(line, f[1], f[2], want, f[3], f[4]);
        cases++;
        int seen = 0;
        for (int i = 0; i < n_progs; i++) seen |= !strcmp(progs[i], f[1]);
        if (!seen && n_progs < 32) snprintf(progs[n_progs++], sizeof progs[0], "%s", f[1]);
    }
    fclose(fp);
    /* every stage program has cases */
    DIR *d = opendir(DIGITS_BIN_DIR);
    assert_non_null(d);
    struct dirent *e;
    int stages = 0;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "digits-", 7) != 0) continue;
        stages++;
        int seen = 0;
        for (int i = 0; i < n_progs; i++) seen |= !strcmp(progs[i], e->d_name);
        if (!seen) {
            print_error("%s has no case in cases.txt\n", e->d_name);
            bad++;
        }
    }
    closedir(d);
    print_message("%d cases over %d programs (%d in bin/), %d mismatches\n", cases, n_progs, stages, bad);
    if (bad) fail_msg("%d mismatches", bad);
}

static int setup(void **state) {
    (void)state;
    if (system("rm -rf " WS " && mkdir -p " IN " " OUT) != 0) return -1;
    fi_make_dataset(IN "/good.npy", NROWS);
    dg_err err = {{0}};
    /* the same images without labels */
    dg_dataset ds;
    dg_dataset_writer w;
    if (dg_dataset_open(&ds, IN "/good.npy", &err) != 0 || dg_dataset_writer_open(&w, IN "/unlabelled.npy", 0, &err))
        return -1;
    for (size_t i = 0; i < ds.n; i++)
        if (dg_dataset_writer_add(&w, dg_dataset_image(&ds, i), -1, &err) != 0) return -1;
    if (dg_dataset_writer_commit(&w, &err) != 0) return -1;
    dg_dataset_close(&ds);
    float p[NROWS * 10];
    for (int i = 0; i < NROWS * 10; i++) p[i] = (i % 10 == (i / 10) % 10) ? 0.91f : 0.01f;
    size_t shape[2] = {NROWS, 10};
    if (dg_npy_save(IN "/m1.npy", "<f4", shape, 2, p, sizeof(float), &err) != 0) return -1;
    int64_t ids[5] = {0, 1, 2, 3, 4};
    size_t ishape[1] = {5};
    if (dg_npy_save(IN "/ids.npy", "<i8", ishape, 1, ids, sizeof(int64_t), &err) != 0) return -1;
    size_t n;
    char *good = fi_slurp(IN "/good.npy", &n);
    if (!good || dg_write_file_atomic(IN "/trunc.npy", good, 300, &err) != 0) return -1;
    free(good);
    fi_write(IN "/empty.npy", "");
    fi_write(IN "/bad.safetensors", "not a model\n");
    fi_write(IN "/bad.preset", "name x\nmembers 2\n");
    fi_write(IN "/badvalue.preset", "split val-frac=0.1 split-seed=1\nmembers model=mlp2 seeds=1-2 epochs=zero\n");
    if (system("cp " DIGITS_FIXTURES "/ingest/good_train.csv " IN "/csv.npy") != 0) return -1;
    /* sweep databases: one of this schema version (one configuration), one claiming version 9 */
    sw_store *st;
    int recovered;
    uint64_t seed = 1;
    int fold = 0;
    const char *rd = "trials/c0000-r0";
    if (dg_mkdirs(IN "/sweep_ok", &err) != 0 || dg_mkdirs(IN "/sweep_v9", &err) != 0 ||
        sw_store_open(&st, IN "/sweep_ok/sweep.db", 1, "x.sweep", &recovered, &err) != 0)
        return -1;
    int rc = sw_store_add_config(st, 0, 1, "{\"train.lr\":0.01}", "spec", &seed, &fold, &rd, &err);
    sw_store_close(st);
    if (rc != 0 || sw_store_open(&st, IN "/sweep_v9/sweep.db", 1, "x.sweep", &recovered, &err) != 0) return -1;
    sw_store_close(st);
    sqlite3 *db;
    if (sqlite3_open(IN "/sweep_v9/sweep.db", &db) != SQLITE_OK) return -1;
    rc = sqlite3_exec(db, "UPDATE meta SET value = '9' WHERE key = 'schema_version'", NULL, NULL, NULL);
    sqlite3_close(db);
    if (rc != SQLITE_OK) return -1;
    if (system(DIGITS_BIN_DIR "/digits-train --quiet --data " IN "/good.npy --model " DIGITS_FIXTURES
                              "/spec/tiny.spec --run " IN "/run --epochs 1 --val-frac 0.25 --batch 8 --seed 2") != 0)
        return -1;
    /* a digits-gan run of the tiny test GAN, and a copy of its checkpoint cut in half */
    if (system(DIGITS_BIN_DIR "/digits-gan train --quiet --data " IN "/good.npy --gen " DIGITS_FIXTURES
                              "/gan/tiny-g.spec --disc " DIGITS_FIXTURES "/gan/tiny-d.spec --run " IN
                              "/gan --epochs 1") != 0)
        return -1;
    char *ck = fi_slurp(IN "/gan/gan.ckpt", &n);
    if (!ck || dg_mkdirs(IN "/gancut", &err) != 0 || dg_write_file_atomic(IN "/gancut/gan.ckpt", ck, n / 2, &err) != 0)
        return -1;
    free(ck);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_catalog)};
    return tu_exit(cmocka_run_group_tests(tests, setup, NULL));
}
