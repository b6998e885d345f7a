/* tests/report/sweep_fixture: synthetic sweep directories for the sweep report's tests, written through
 * experiments/sweep_store's own API (so the database is what digits-sweep writes) from a real sweep file (tiny
 * spec, 18 epochs; ASHA at 2, 6 and 18 epochs, eta 3; log-uniform lr, optimizer words, int units, uniform dropout)
 * without training anything: each trial's validation accuracy at epoch e is a made-up function of its
 * configuration's quality, replicate and e. Configurations reach rungs by quality rank (the top third rung 1, the
 * top ninth rung 2, where they are complete; the others are pruned). Optionally one configuration fails (replicate 0
 * after rung 0) and one is running (replicate 0 under a lease, no results).
 * What the report must show is computed here from the same numbers, independently of experiments/report.
 * Header-only: each test is one translation unit. */
#ifndef TESTS_REPORT_SWEEP_FIXTURE_H
#define TESTS_REPORT_SWEEP_FIXTURE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/dg_file.h"
#include "core/dg_rng.h"
#include "experiments/sweep_file.h"
#include "experiments/sweep_store.h"

#define SF_MAXC 1024
#define SF_EPOCHS 18

typedef struct sf_expect {
    int configs, reps, trials;
    int trial_epochs[2 * SF_MAXC]; /* epochs in the database of trial id (0: none) */
    int trials_with_epochs;
    int stopped_with_epochs;       /* pruned or failed trials with epochs: the curves' end marks */
    int with_result;               /* configurations with a result at some rung */
    int err_bars;                  /* of those, with SD > 0 */
    int best;                      /* the leaderboard's first configuration */
    int rung[SF_MAXC];             /* configuration c's rung (-1: no result), mean and SD there */
    double mean[SF_MAXC], sd[SF_MAXC];
    double best_mean, best_sd;
    int pruned_configs, failed_config, running_config;
} sf_expect;

static const int kSfRungs[3] = {2, 6, 18};

static inline double sf_quality(int c) {
    dg_rng r = dg_rng_make(11, DG_RNG_USER, 7, (uint32_t)c);
    return dg_rng_uniform(&r);
}

/* Validation accuracy of configuration c, replicate r, after epoch e. */
static inline double sf_acc(int c, int r, int e) {
    dg_rng g = dg_rng_make(12, DG_RNG_USER, (uint32_t)(c * 2 + r), (uint32_t)e);
    return 0.5 + 0.45 * sf_quality(c) * (1 - exp(-e / 4.0)) + 0.01 * dg_rng_uniform(&g);
}

static inline void sf_write(const char *path, const char *text) {
    dg_err err = {{0}};
    if (dg_write_file_atomic(path, text, strlen(text), &err) != 0) fail_msg("%s", err.msg);
}

/* The metrics.jsonl text of epochs 1..e. */
static inline char *sf_metrics(int c, int r, int e) {
    size_t cap = 256 * (size_t)e + 1, len = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    s[0] = 0;
    for (int k = 1; k <= e; k++)
        len += (size_t)snprintf(s + len, cap - len,
                                "{\"epoch\":%d,\"train_loss\":%.4f,\"train_acc\":%.4f,\"val_loss\":%.6f,"
                                "\"val_acc\":%.9f,\"lr\":0.001,\"seconds\":1.5}\n",
                                k, 1.0 / k, 0.9, 1.0 - sf_acc(c, r, k), sf_acc(c, r, k));
    return s;
}

/* dir/sweep.db of `configs` configurations x 2 replicates (see above). failed/running: a configuration id, or -1. */
static inline void sf_make(const char *dir, int configs, int failed, int running, sf_expect *x) {
    char cmd[1200], path[1024], sweep_path[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    assert_int_equal(system(cmd), 0);
    assert_true(configs <= SF_MAXC);
    snprintf(path, sizeof path, "%s/tiny18.spec", dir);
    sf_write(path, "name tiny18\ninput 1x28x28\nflatten\ndense units=16\nbatchnorm\nrelu\ndropout rate=0.2\n"
                   "dense units=10\ntrain optimizer=adam lr=0.003 schedule=cosine batch=32 epochs=18\n");
    snprintf(sweep_path, sizeof sweep_path, "%s/s.sweep", dir);
    char text[1024];
    snprintf(text, sizeof text,
             "{\"model\": \"tiny18.spec\", \"strategy\": \"asha\", \"asha\": {\"rungs\": [2, 6, 18], \"eta\": 3},\n"
             " \"params\": {\"train.lr\": {\"log_uniform\": [0.0001, 0.1]},\n"
             "            \"train.optimizer\": {\"choice\": [\"adam\", \"sgd\", \"momentum\"]},\n"
             "            \"layer2.units\": {\"int\": [8, 64]}, \"layer5.rate\": {\"uniform\": [0, 0.5]}},\n"
             " \"budget\": {\"trials\": %d}, \"seeds\": 2, \"seed\": 3}\n",
             configs);
    sf_write(sweep_path, text);
    sw_sweep s;
    dg_err err = {{0}};
    if (sw_sweep_load(&s, sweep_path, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(s.n_configs, configs);
    assert_int_equal(sw_reps(&s), 2);
    /* built on tmpfs when there is one (the store fsyncs every result: ~1,500 fsyncs for 500 trials), then
       copied into dir */
    char final_db[1024];
    snprintf(final_db, sizeof final_db, "%s/sweep.db", dir);
    int shm = dg_path_exists("/dev/shm");
    if (shm) snprintf(path, sizeof path, "/dev/shm/digits-sweep-fixture-%d.db", (int)getpid());
    else snprintf(path, sizeof path, "%s", final_db);
    sw_store *st;
    int recovered;
    if (sw_store_open(&st, path, s.hash, sweep_path, &recovered, &err) != 0) fail_msg("%s", err.msg);

    memset(x, 0, sizeof *x);
    x->configs = configs, x->reps = 2, x->trials = 2 * configs;
    x->failed_config = failed, x->running_config = running, x->best = -1;
    for (int c = 0; c < configs; c++) x->rung[c] = -1;
    /* quality rank: the top third reach rung 1, the top ninth rung 2 */
    int *rank = calloc((size_t)configs, sizeof *rank);
    assert_non_null(rank);
    for (int c = 0; c < configs; c++)
        for (int d = 0; d < configs; d++)
            rank[c] += sf_quality(d) > sf_quality(c) || (sf_quality(d) == sf_quality(c) && d < c);
    double now = (double)time(NULL);
    for (int c = 0; c < configs; c++) {
        sw_value v[SW_MAX_PARAMS];
        sw_config_values(&s, c, v);
        char *params = sw_config_json(&s, v);
        uint64_t seeds[2] = {1, 2};
        int folds[2] = {0, 0};
        char rd0[64], rd1[64];
        snprintf(rd0, sizeof rd0, "trials/c%04d-r0", c);
        snprintf(rd1, sizeof rd1, "trials/c%04d-r1", c);
        const char *rds[2] = {rd0, rd1};
        if (sw_store_add_config(st, c, 2, params, "spec", seeds, folds, rds, &err) != 0) fail_msg("%s", err.msg);
        free(params);
        if (c == running) {
            if (sw_store_start(st, c * 2, 0, 12345, now, &err) != 0) fail_msg("%s", err.msg);
            continue;
        }
        int top = rank[c] * 9 < configs ? 2 : rank[c] * 3 < configs ? 1 : 0;
        if (c == failed) top = 0;
        for (int r = 0; r < 2; r++) {
            for (int k = 0; k <= top; k++) {
                int e = kSfRungs[k];
                char *m = sf_metrics(c, r, e);
                if (sw_store_start(st, c * 2 + r, k, 1000 + r, now, &err) != 0 ||
                    sw_store_result(st, c * 2 + r, k, e, sf_acc(c, r, e), 1 - sf_acc(c, r, e), 1.5 * e, m,
                                    k == 2 ? "complete" : "waiting", now, &err) != 0)
                    fail_msg("%s", err.msg);
                free(m);
            }
            x->trial_epochs[c * 2 + r] = kSfRungs[top];
            x->trials_with_epochs++;
            if (top < 2) x->stopped_with_epochs++;
        }
        if (c == failed) {
            if (sw_store_start(st, c * 2, 1, 1000, now, &err) != 0 ||
                sw_store_fail(st, c * 2, "the run diverged (loss nan at epoch 3)", now, &err) != 0)
                fail_msg("%s", err.msg);
        }
        if (top < 2 && c != failed) {
            if (sw_store_config_state(st, c, "pruned", &err) != 0) fail_msg("%s", err.msg);
            x->pruned_configs++;
        }
        if (c == failed) {
            /* replicate 1 of the failed configuration is waiting for rung 1: only the failed one ends marked */
            x->stopped_with_epochs--;
        }
        /* its result: the mean and SD over both replicates at rung `top` */
        double a = sf_acc(c, 0, kSfRungs[top]), b = sf_acc(c, 1, kSfRungs[top]);
        double mean = (a + b) / 2, sd = fabs(a - b) / sqrt(2.0);
        x->with_result++;
        x->err_bars += sd > 0;
        x->rung[c] = top, x->mean[c] = mean, x->sd[c] = sd;
        if (top == 2 && (x->best < 0 || mean > x->best_mean)) x->best = c, x->best_mean = mean, x->best_sd = sd;
    }
    free(rank);
    sw_store_close(st); /* (the last connection: the WAL is folded into the file and removed) */
    sw_sweep_free(&s);
    if (shm) {
        char *db;
        size_t n;
        if (dg_read_file(path, &db, &n, &err) != 0 || dg_write_file_atomic(final_db, db, n, &err) != 0)
            fail_msg("%s", err.msg);
        free(db);
        unlink(path);
    }
}

#endif
