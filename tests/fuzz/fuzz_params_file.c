/* fuzz_params_file: augment/params_file (per-image augmentation parameters, .npy or .jsonl). The input is read as
 * both formats. Invariants: every row read passes the reader's own checks (finite map, alpha and sigma in range);
 * a file read to the end without error, written again by aug_params_writer in the same format and read back,
 * gives the same rows (the .jsonl numbers are printed so floats read back exactly). */
#include <math.h>
#include <string.h>

#include "augment/params_file.h"
#include "fuzz_util.h"

#define MAX_ROWS 4096 /* inputs are a few KB; a longer file is read only this far */

static aug_row rows[MAX_ROWS], back[MAX_ROWS];

static int same_row(const aug_row *a, const aug_row *b) {
    return a->src == b->src && a->copy == b->copy && a->p.seed == b->p.seed && a->p.epoch == b->p.epoch &&
           a->p.id == b->p.id && memcmp(a->p.m, b->p.m, sizeof a->p.m) == 0 &&
           memcmp(&a->p.alpha, &b->p.alpha, 4) == 0 && memcmp(&a->p.sigma, &b->p.sigma, 4) == 0 &&
           memcmp(&a->p.skew, &b->p.skew, 4) == 0;
}

/* Read up to MAX_ROWS rows into out; returns the count, or -1 on an error before the end. */
static long read_all(const char *path, aug_row *out, int *complete) {
    aug_params_reader r;
    dg_err err = {{0}};
    *complete = 0;
    if (aug_params_reader_open(&r, path, &err) != 0) {
        FZ_CHECK(strstr(err.msg, path) == err.msg, "message does not name the file: %s", err.msg);
        return -1;
    }
    long n = 0;
    int rc;
    while (n < MAX_ROWS && (rc = aug_params_reader_next(&r, &out[n], &err)) == 1) {
        const aug_params *p = &out[n].p;
        for (int i = 0; i < 6; i++) FZ_CHECK(isfinite(p->m[i]), "row %ld: map not finite", n);
        FZ_CHECK(p->alpha >= 0 && p->sigma >= 0 && isfinite(p->skew), "row %ld: alpha %g sigma %g", n, p->alpha,
                 p->sigma);
        n++;
    }
    if (n < MAX_ROWS && rc == 0) *complete = 1;
    if (n < MAX_ROWS && rc < 0) {
        FZ_CHECK(strstr(err.msg, path) == err.msg, "message does not name the file: %s", err.msg);
        n = -1;
    }
    aug_params_reader_close(&r);
    return n;
}

static void one(const uint8_t *data, size_t size, const char *name, const char *outname) {
    char path[512], out[512];
    fz_file(path, sizeof path, name, data, size);
    fz_path(out, sizeof out, outname);
    int complete;
    long n = read_all(path, rows, &complete);
    if (n < 0 || !complete) return;
    aug_params_writer w;
    dg_err err = {{0}};
    FZ_CHECK(aug_params_writer_open(&w, out, &err) == 0, "%s", err.msg);
    for (long i = 0; i < n; i++) FZ_CHECK(aug_params_writer_add(&w, &rows[i], NULL, &err) == 0, "%s", err.msg);
    FZ_CHECK(aug_params_writer_commit(&w, &err) == 0, "%s", err.msg);
    long m = read_all(out, back, &complete);
    FZ_CHECK(m == n && complete, "%ld rows read back, %ld written", m, n);
    for (long i = 0; i < n; i++) FZ_CHECK(same_row(&rows[i], &back[i]), "row %ld differs after the round trip", i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    one(data, size, "in.npy", "out.npy");
    one(data, size, "in.jsonl", "out.jsonl");
    return 0;
}
