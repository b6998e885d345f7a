/* Tests for experiments/sweep_strategy: the documented ASHA example worked by hand (docs/sweeps.md), and the same
 * trials, promotions and outcomes for 1, 2 and 4 workers and for shuffled finishing orders, driven by a fake
 * executor; grid/random (one rung) run every configuration to the end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dg_rng.h"
#include "experiments/sweep_strategy.h"
#include "testutil.h"

#define MAXC 64
#define MAXREP 3
#define MAXK 4

typedef struct world {
    int n, reps, K, eta, maximize;
    double val[MAXC * MAXREP * MAXK];
    unsigned char have[MAXC * MAXREP * MAXK], failed[MAXC * MAXREP], running[MAXC * MAXREP];
    int target[MAXC], state[MAXC], order[MAXK * MAXC], n_order[MAXK];
    sw_results r;
    sw_decisions d;
    /* what ran: ran[c][rep][k] counts the jobs run */
    int ran[MAXC][MAXREP][MAXK];
} world;

static void world_init(world *w, int n, int reps, int K, int eta) {
    memset(w, 0, sizeof *w);
    w->n = n, w->reps = reps, w->K = K, w->eta = eta, w->maximize = 1;
    w->r = (sw_results){n, reps, K, eta, 1, w->val, w->have, w->failed, NULL};
    w->d = (sw_decisions){w->target, w->state, w->order, w->n_order};
}

/* The metric replicate rep of configuration c would reach at rung k (a pure function, like a seeded trainer), and
 * whether that replicate diverges before reaching rung k (then it fails). */
typedef double (*metric_fn)(int c, int rep, int k);
typedef int (*fails_fn)(int c, int rep, int k);

/* Drive the strategy with `workers` workers; jobs finish in an order drawn from shuffle_seed (each running job
 * finishes next with equal probability). */
static void simulate(world *w, int workers, uint64_t shuffle_seed, metric_fn metric, fails_fn fails) {
    sw_job run[16], jobs[16];
    int nrun = 0;
    dg_rng rng = dg_rng_make(shuffle_seed, DG_RNG_USER, 0, 0);
    for (int step = 0; step < 100000; step++) {
        assert_int_equal(sw_decide(&w->r, &w->d), 0);
        int nj = sw_next_jobs(&w->r, &w->d, w->running, jobs, workers - nrun);
        for (int q = 0; q < nj; q++) {
            run[nrun++] = jobs[q];
            w->running[jobs[q].config * w->reps + jobs[q].rep] = 1;
            w->ran[jobs[q].config][jobs[q].rep][jobs[q].rung]++;
        }
        if (nrun == 0) {
            for (int c = 0; c < w->n; c++) assert_int_not_equal(w->state[c], SW_OPEN);
            return;
        }
        int pick = (int)dg_rng_below(&rng, (uint32_t)nrun);
        sw_job j = run[pick];
        run[pick] = run[--nrun];
        int t = j.config * w->reps + j.rep;
        w->running[t] = 0;
        if (fails && fails(j.config, j.rep, j.rung)) {
            w->failed[t] = 1;
        } else {
            w->val[t * w->K + j.rung] = metric(j.config, j.rep, j.rung);
            w->have[t * w->K + j.rung] = 1;
        }
    }
    fail_msg("the sweep did not end");
}

/* ---- the example of docs/sweeps.md: 9 configurations, rungs at 1, 3, 9 epochs, eta 3 ---- */

static const double ex0[9] = {0.5, 0.9, 0.3, 0.8, 0.7, 0.1, 0.6, 0.95, 0.2};
static double ex_metric(int c, int rep, int k) {
    (void)rep;
    if (k == 0) return ex0[c];
    if (k == 1) return c == 1 ? 0.91 : c == 3 ? 0.97 : c == 7 ? 0.93 : 0.5;
    return 0.98;
}

static void test_documented_example(void **state) {
    (void)state;
    for (int workers = 1; workers <= 4; workers *= 2) {
        world w;
        world_init(&w, 9, 1, 3, 3);
        simulate(&w, workers, 5, ex_metric, NULL);
        /* rung 1 gets 1 (after 3 results), 3 (after 6: top 2 of 6 = 1, 3), 7 (after 8: top 2 = 7, 1) */
        assert_int_equal(w.n_order[1], 3);
        assert_int_equal(w.order[9 + 0], 1);
        assert_int_equal(w.order[9 + 1], 3);
        assert_int_equal(w.order[9 + 2], 7);
        /* rung 2 gets 3 (top 1 of 3: 0.97) */
        assert_int_equal(w.n_order[2], 1);
        assert_int_equal(w.order[18], 3);
        static const int want_state[9] = {SW_PRUNED, SW_PRUNED, SW_PRUNED, SW_COMPLETE, SW_PRUNED,
                                          SW_PRUNED, SW_PRUNED, SW_PRUNED, SW_PRUNED};
        static const int want_target[9] = {0, 1, 0, 2, 0, 0, 0, 1, 0};
        int jobs = 0;
        for (int c = 0; c < 9; c++) {
            assert_int_equal(w.state[c], want_state[c]);
            assert_int_equal(w.target[c], want_target[c]);
            for (int k = 0; k < 3; k++) {
                assert_true(w.ran[c][0][k] == (k <= want_target[c]));
                jobs += w.ran[c][0][k];
            }
        }
        assert_int_equal(jobs, 13); /* 9 + 3 + 1; at rungs 1, 3, 9 epochs: 9 + 3 x 2 + 6 = 21 epochs, not 81 */
    }
}

/* A partial prefix: results of configurations 0, 1, 3 only (2 missing) promote nothing yet from rung 0 beyond
 * what the first two allow (floor(2 / 3) = 0), and no configuration is pruned. */
static void test_prefix_waits_for_missing(void **state) {
    (void)state;
    world w;
    world_init(&w, 9, 1, 3, 3);
    int known[] = {0, 1, 3};
    for (int q = 0; q < 3; q++) {
        w.val[known[q] * 3] = ex0[known[q]];
        w.have[known[q] * 3] = 1;
    }
    assert_int_equal(sw_decide(&w.r, &w.d), 0);
    assert_int_equal(w.n_order[1], 0);
    for (int c = 0; c < 9; c++) {
        assert_int_equal(w.target[c], 0);
        assert_int_equal(w.state[c], SW_OPEN);
    }
    /* configuration 2 arrives: the prefix is 0, 1, 2, 3, and the top 1 of the first 3 (1) is promoted */
    w.val[2 * 3] = ex0[2];
    w.have[2 * 3] = 1;
    assert_int_equal(sw_decide(&w.r, &w.d), 0);
    assert_int_equal(w.n_order[1], 1);
    assert_int_equal(w.target[1], 1);
}

/* ---- worker count and finishing order do not matter ---- */

static double hash_metric(int c, int rep, int k) {
    dg_rng r = dg_rng_make(1234, DG_RNG_USER, (uint32_t)c, (uint32_t)(rep * 16 + k));
    return 0.5 + 0.1 * k + 0.3 * dg_rng_uniform(&r) + 0.01 * (c % 7);
}
static int hash_fails(int c, int rep, int k) { return (c % 11 == 4 && rep == 1 && k >= 1) || (c == 13 && k == 0); }

static void snapshot(const world *w, int *out) {
    int i = 0;
    for (int c = 0; c < w->n; c++) {
        out[i++] = w->state[c];
        out[i++] = w->target[c];
        for (int rep = 0; rep < w->reps; rep++)
            for (int k = 0; k < w->K; k++) out[i++] = w->ran[c][rep][k];
    }
    for (int k = 0; k < w->K; k++)
        for (int q = 0; q < w->n_order[k]; q++) out[i++] = w->order[k * w->n + q];
}

static void test_independent_of_workers_and_order(void **state) {
    (void)state;
    static const int shapes[][4] = {{40, 2, 4, 2}, {33, 1, 3, 3}, {20, 3, 2, 4}};
    for (int s = 0; s < 3; s++) {
        int n = shapes[s][0], reps = shapes[s][1], K = shapes[s][2], eta = shapes[s][3];
        static int ref[MAXC * (2 + MAXREP * MAXK) + MAXK * MAXC], got[MAXC * (2 + MAXREP * MAXK) + MAXK * MAXC];
        /* shape 1 reads rung 0 in a given order (sweep_cli shuffles it for ASHA): reversed */
        static int rev[MAXC];
        for (int c = 0; c < n; c++) rev[c] = n - 1 - c;
        world w;
        world_init(&w, n, reps, K, eta);
        if (s == 1) w.r.order0 = rev;
        simulate(&w, 1, 1, hash_metric, hash_fails);
        if (s == 1) assert_int_equal(w.order[0], n - 1);
        memset(ref, 0, sizeof ref);
        snapshot(&w, ref);
        int promoted = 0, failed = 0;
        for (int c = 0; c < n; c++) {
            promoted += w.target[c] > 0;
            failed += w.state[c] == SW_FAILED;
            for (int rep = 0; rep < reps; rep++)
                for (int k = 0; k < K; k++) assert_true(w.ran[c][rep][k] <= 1); /* no job ran twice */
        }
        assert_true(promoted > 0);
        assert_true(failed > 0);
        for (int workers = 1; workers <= 4; workers *= 2)
            for (uint64_t order = 1; order <= 6; order++) {
                world_init(&w, n, reps, K, eta);
                if (s == 1) w.r.order0 = rev;
                simulate(&w, workers, order * 7919 + (uint64_t)workers, hash_metric, hash_fails);
                memset(got, 0, sizeof got);
                snapshot(&w, got);
                assert_memory_equal(ref, got, sizeof ref);
            }
    }
}

/* Grid and random: one rung, every configuration's every replicate runs once, to the end. */
static void test_one_rung(void **state) {
    (void)state;
    world w;
    world_init(&w, 12, 2, 1, 3);
    simulate(&w, 3, 9, hash_metric, NULL);
    for (int c = 0; c < 12; c++) {
        assert_int_equal(w.state[c], SW_COMPLETE);
        assert_int_equal(w.ran[c][0][0], 1);
        assert_int_equal(w.ran[c][1][0], 1);
    }
    /* mean and SD over the replicates (n - 1 denominator) */
    double m, sd;
    assert_int_equal(sw_config_mean(&w.r, 5, 0, &m, &sd), 0);
    double a = hash_metric(5, 0, 0), b = hash_metric(5, 1, 0);
    tu_assert_close(m, (a + b) / 2, 1e-12, 0);
    tu_assert_close(sd, fabs(a - b) / sqrt(2.0), 1e-12, 0);
}

/* val_loss: lower is better, and ASHA promotes the lowest. */
static void test_minimize(void **state) {
    (void)state;
    world w;
    world_init(&w, 3, 1, 2, 3);
    w.r.maximize = 0;
    double loss[3] = {0.3, 0.1, 0.2};
    for (int c = 0; c < 3; c++) {
        w.val[c * 2] = loss[c];
        w.have[c * 2] = 1;
    }
    assert_int_equal(sw_decide(&w.r, &w.d), 0);
    assert_int_equal(w.target[1], 1);
    assert_int_equal(w.target[0], 0);
    assert_int_equal(w.target[2], 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_documented_example),
        cmocka_unit_test(test_prefix_waits_for_missing),
        cmocka_unit_test(test_independent_of_workers_and_order),
        cmocka_unit_test(test_one_rung),
        cmocka_unit_test(test_minimize),
    };
    return tu_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
