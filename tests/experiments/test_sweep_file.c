/* Tests for experiments/sweep_file: grid order, random draws against the documented keyed formula, the rendered
 * spec and policy of a configuration, budgets, and malformed sweep files failing with file:line:col. */
#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dg_rng.h"
#include "experiments/sweep_file.h"
#include "nn/spec.h"
#include "testutil.h"

static void parse_ok(sw_sweep *s, const char *text) {
    dg_err err = {{0}};
    if (sw_sweep_parse(s, text, "t.sweep", NULL, &err) != 0) fail_msg("%s", err.msg);
}

static void test_grid_order(void **state) {
    (void)state;
    sw_sweep s;
    parse_ok(&s, "{\"model\": \"mlp2\",\n \"params\": {\"train.lr\": [0.01, 0.1], \"layer2.units\": [32, 64, 128]}}");
    assert_int_equal(s.strategy, SW_GRID);
    assert_int_equal(s.n_configs, 6);
    assert_int_equal(s.n_rungs, 1);
    assert_int_equal(s.rungs[0], 20); /* mlp2's epochs */
    sw_value v[SW_MAX_PARAMS];
    /* the last parameter varies fastest */
    static const double lr[6] = {0.01, 0.01, 0.01, 0.1, 0.1, 0.1};
    static const double units[6] = {32, 64, 128, 32, 64, 128};
    for (int i = 0; i < 6; i++) {
        sw_config_values(&s, i, v);
        tu_assert_exact(v[0].num, lr[i]);
        tu_assert_exact(v[1].num, units[i]);
        assert_true(v[1].is_int);
    }
    /* configuration 5's spec: the override in its statement, everything else the base spec's */
    sw_config_values(&s, 5, v);
    char *spec, *pol;
    dg_err err = {{0}};
    assert_int_equal(sw_config_render(&s, v, "x5", NULL, &spec, &pol, &err), 0);
    assert_null(pol);
    nn_spec sp;
    assert_int_equal(nn_spec_parse(&sp, spec, "x5", &err), 0);
    assert_string_equal(sp.name, "x5");
    assert_int_equal(sp.n_layers, 4);
    assert_int_equal(sp.layers[1].units, 128);
    assert_int_equal(sp.layers[3].units, 10);
    tu_assert_exact(sp.hyper.lr, 0.1f);
    assert_int_equal(sp.hyper.epochs, 20);
    nn_spec_free(&sp);
    free(spec);
    /* "model" sweeps the base spec itself; layerN keys then apply to each */
    sw_sweep_free(&s);
    parse_ok(&s, "{\"model\": \"mlp2\", \"about\": \"depth\",\n"
                 " \"params\": {\"model\": [\"mlp2\", \"mlp3\"], \"layer2.units\": [40]}}");
    assert_int_equal(s.n_configs, 2);
    int layers[2] = {4, 6};
    for (int i = 0; i < 2; i++) {
        sw_config_values(&s, i, v);
        assert_int_equal(sw_config_render(&s, v, "m", NULL, &spec, &pol, &err), 0);
        assert_int_equal(nn_spec_parse(&sp, spec, "m", &err), 0);
        assert_int_equal(sp.n_layers, layers[i]);
        assert_int_equal(sp.layers[1].units, 40);
        nn_spec_free(&sp);
        free(spec);
    }
    /* the epochs a configuration trains (the status line's estimate): each model's own schedule, and a swept
     * train.epochs over it */
    sw_sweep_free(&s);
    parse_ok(&s, "{\"model\": \"mlp2\", \"params\": {\"model\": [\"mlp2\", \"lenet5\"]}}");
    static const int model_epochs[2] = {20, 30};
    for (int i = 0; i < 2; i++) {
        sw_config_values(&s, i, v);
        assert_int_equal(sw_config_epochs(&s, v, 0), model_epochs[i]);
    }
    sw_sweep_free(&s);
    parse_ok(&s, "{\"model\": \"mlp2\", \"params\": {\"model\": [\"mlp2\", \"lenet5\"], \"train.epochs\": [26, 52]}}");
    static const int swept[4] = {26, 52, 26, 52};
    for (int i = 0; i < 4; i++) {
        sw_config_values(&s, i, v);
        assert_int_equal(sw_config_epochs(&s, v, 0), swept[i]);
    }
    /* budget trials caps a grid */
    sw_sweep_free(&s);
    parse_ok(&s, "{\"model\": \"mlp2\", \"params\": {\"train.lr\": [0.01, 0.1, 0.2]}, \"budget\": {\"trials\": 2}}");
    assert_int_equal(s.n_configs, 2);
    sw_sweep_free(&s);
}

/* Random: parameter j of configuration i from dg_rng(seed, SW_RNG_PARAMS, i, j), u = top 53 bits of a u64. */
static void test_random_draws(void **state) {
    (void)state;
    sw_sweep s;
    parse_ok(&s, "{\"model\": \"mlp2\", \"strategy\": \"random\", \"seed\": 42, \"budget\": {\"trials\": 50},\n"
                 " \"params\": {\"train.lr\": {\"log_uniform\": [0.001, 0.1]}, \"layer2.units\": {\"int\": [16, 512]},\n"
                 " \"train.momentum\": {\"uniform\": [0.5, 0.99]}, \"train.schedule\": {\"choice\": [\"cosine\", \"exp\"]}}}");
    assert_int_equal(s.n_configs, 50);
    int seen_cos = 0, seen_exp = 0;
    for (int i = 0; i < 50; i++) {
        sw_value v[SW_MAX_PARAMS], again[SW_MAX_PARAMS];
        sw_config_values(&s, i, v);
        sw_config_values(&s, i, again);
        assert_memory_equal(v, again, sizeof(sw_value) * 4);
        dg_rng r = dg_rng_make(42, SW_RNG_PARAMS, (uint32_t)i, 0);
        double u = (double)(dg_rng_u64(&r) >> 11) / 9007199254740992.0;
        double lr = 0.001 * pow(100.0, u);
        tu_assert_close(v[0].num, lr, 1e-5, 0); /* 6 significant digits */
        assert_true(v[0].num >= 0.001 && v[0].num <= 0.1);
        r = dg_rng_make(42, SW_RNG_PARAMS, (uint32_t)i, 1);
        tu_assert_exact(v[1].num, 16 + (double)dg_rng_below(&r, 497));
        r = dg_rng_make(42, SW_RNG_PARAMS, (uint32_t)i, 2);
        u = (double)(dg_rng_u64(&r) >> 11) / 9007199254740992.0;
        tu_assert_close(v[2].num, 0.5 + u * 0.49, 1e-5, 0);
        assert_true(v[3].is_str);
        seen_cos += strcmp(v[3].str, "cosine") == 0;
        seen_exp += strcmp(v[3].str, "exp") == 0;
    }
    assert_int_equal(seen_cos + seen_exp, 50);
    assert_true(seen_cos > 0 && seen_exp > 0);
    /* another sweep seed, other draws */
    sw_sweep t;
    parse_ok(&t, "{\"model\": \"mlp2\", \"strategy\": \"random\", \"seed\": 43, \"budget\": {\"trials\": 5},\n"
                 " \"params\": {\"train.lr\": {\"log_uniform\": [0.001, 0.1]}}}");
    sw_value a[SW_MAX_PARAMS], b[SW_MAX_PARAMS];
    sw_config_values(&s, 0, a);
    sw_config_values(&t, 0, b);
    assert_true(a[0].num != b[0].num);
    sw_sweep_free(&s);
    sw_sweep_free(&t);
}

/* ASHA: the spec's epochs become the last rung's; a policy template gets the configuration's values; the epoch
 * budget buys configurations at ASHA's expected cost; replicates are seeds x folds. */
static void test_asha_policy_budget(void **state) {
    (void)state;
    sw_sweep s;
    parse_ok(&s, "{\"model\": \"lenet5\", \"strategy\": \"asha\", \"asha\": {\"rungs\": [1, 3, 9], \"eta\": 3},\n"
                 " \"policy\": [\"rotate degrees=${rot}\", \"elastic alpha=34 sigma=4 p=${ep}\"],\n"
                 " \"params\": {\"rot\": {\"choice\": [5, 10]}, \"ep\": {\"choice\": [0, 0.5]}},\n"
                 " \"budget\": {\"epochs\": 100}, \"seeds\": 2, \"split\": {\"folds\": 3}}");
    assert_int_equal(sw_reps(&s), 6);
    assert_int_equal(sw_rep_fold(&s, 0), 1);
    assert_int_equal(sw_rep_fold(&s, 4), 2);
    assert_true(sw_rep_seed(&s, 0) == sw_rep_seed(&s, 2) && sw_rep_seed(&s, 0) != sw_rep_seed(&s, 3));
    /* expected ASHA cost per configuration: 1 + 2/3 + 6/9 = 2.333 epochs x 6 replicates = 14: 100 / 14 = 7 */
    assert_int_equal(s.n_configs, 7);
    sw_value v[SW_MAX_PARAMS];
    memset(v, 0, sizeof v);
    v[0].num = 10;
    v[0].is_int = 1;
    v[1].num = 0.5;
    for (int k = 0; k < 3; k++) assert_int_equal(sw_config_epochs(&s, v, k), s.rungs[k]); /* ASHA: its rungs */
    assert_int_equal(sw_config_epochs(&s, v, 2), 9);
    char *spec, *pol;
    dg_err err = {{0}};
    assert_int_equal(sw_config_render(&s, v, "c0", "/x/c0.policy", &spec, &pol, &err), 0);
    assert_string_equal(pol, "rotate degrees=10\nelastic alpha=34 sigma=4 p=0.5\n");
    assert_non_null(strstr(spec, " epochs=9 "));
    assert_non_null(strstr(spec, " augment=/x/c0.policy"));
    free(spec);
    free(pol);
    sw_sweep_free(&s);
    /* ASHA over plain lists: the configurations are their grid (comparable with a grid sweep of the same lists);
     * a {"choice": ...} makes them random draws again */
    parse_ok(&s, "{\"model\": \"mlp2\", \"strategy\": \"asha\", \"asha\": {\"rungs\": [1, 3]},\n"
                 " \"params\": {\"train.lr\": [0.01, 0.02], \"layer2.units\": [32, 64, 128]}}");
    assert_int_equal(s.n_configs, 6);
    sw_config_values(&s, 4, v);
    tu_assert_exact(v[0].num, 0.02);
    tu_assert_exact(v[1].num, 64);
    sw_sweep_free(&s);
    dg_err e2 = {{0}};
    assert_int_equal(sw_sweep_parse(&s, "{\"model\": \"mlp2\", \"strategy\": \"asha\", \"asha\": {\"rungs\": [1, 3]},\n"
                                        " \"params\": {\"train.lr\": {\"choice\": [0.01, 0.02]}}}",
                                    "t.sweep", NULL, &e2),
                     -1);
    assert_non_null(strstr(e2.msg, "random and asha need \"trials\" or \"epochs\""));
}

/* Each malformed file fails with the position of what is wrong. */
static void test_errors(void **state) {
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"{\"model\": \"mlp2\",\n  \"params\": {\"train.lr\": [0.1,]}}", "t.sweep:2:31: JSON syntax error"},
        {"{\"model\": \"mlp2\",\n  \"colour\": 3}", "t.sweep:2:3: unknown key \"colour\""},
        {"{\"model\": \"mlp2\",\n  \"params\": {\n    \"train.lr\": {\"uniform\": [0.1, 0.1]}}}",
         "t.sweep:3:18: params \"train.lr\": uniform [0.1, 0.1] is an empty range"},
        {"{\"model\": \"mlp2\", \"strategy\": \"random\",\n  \"params\": {\n    \"train.lr\": {\"log_uniform\": [0, 0.1]}}}",
         "t.sweep:3:18: params \"train.lr\": log_uniform needs a positive low bound"},
        {"{\"model\": \"mlp2\",\n  \"params\": {\n    \"train.lr\": []}}", "t.sweep:3:5: params \"train.lr\": no values"},
        {"{\"model\": \"mlp2\",\n  \"params\": {\n    \"layer2.unitz\": [10]}}",
         "t.sweep:3:5: params \"layer2.unitz\" = 10: spec:4:"},
        {"{\"model\": \"mlp2\",\n  \"params\": {\"train.lrr\": [0.1]}}", "t.sweep:2:14: params \"train.lrr\" = 0.1: spec:"},
        {"{\"model\": \"mlp2\",\n  \"params\": {\"train.lr\": [0.1, 99]}}",
         "t.sweep:2:14: params \"train.lr\" = 99: spec:"},
        {"{\"model\": \"mlp2\",\n  \"params\": {\"rot\": [1]}}", "t.sweep:2:14: params \"rot\": not a spec key"},
        {"{\"model\": \"mlp2\",\n \"params\": {\"train.lr\": {\"uniform\": [0.1, 0.2]}}}",
         "t.sweep:2:13: params \"train.lr\": a grid needs a list of values"},
        {"{\"model\": \"mlp2\", \"strategy\": \"random\",\n \"params\": {\"train.lr\": [0.1]}}",
         "t.sweep:1:1: \"budget\": random and asha need"},
        {"{\"model\": \"mlp2\", \"strategy\": \"asha\",\n \"asha\": {\"rungs\": [3, 1]}, \"budget\": {\"trials\": 3}}",
         "t.sweep:2:11: asha.rungs: expected"},
        {"{\"model\": \"mlp2\",\n \"budget\": {\"until\": \"25:00\"}}", "t.sweep:2:13: budget.until: expected a time"},
        {"{\"model\": \"mlp2\",\n \"budget\": {\"until\": \"7:30\"}}", "t.sweep:2:13: budget.until: expected a time"},
        {"{\"model\": \"mlp2\",\n \"budget\": {\"until\": \"07:30pm\"}}", "t.sweep:2:13: budget.until: expected a time"},
        {"{\"model\": \"nosuchmodel\"}", "t.sweep:1:2: model: model 'nosuchmodel' not found"},
        {"{\"model\": \"mlp2\", \"policy\": [\"rotate degrees=${r}\", \"wobble 3\"],\n \"params\": {\"r\": [5]}}",
         "t.sweep:2:13: params \"r\" = 5: policy:2:1:"},
        {"{\"model\": \"mlp2\", \"seeds\": 0}", "t.sweep:1:19: seeds: expected an integer in 1..100"},
        {"[1, 2]", "t.sweep:1:1: expected a JSON object"},
        /* a variable in a policy comment takes any value, so only the range check stands between a huge range and
         * a 32-bit draw of hi - lo + 1 values (undefined beyond 2^32) or an infinite hi - lo */
        {"{\"model\": \"mlp2\", \"strategy\": \"random\", \"policy\": \"# ${x}\\nrotate degrees=5\",\n"
         " \"params\": {\"x\": {\"int\": [0, 1e12]}}, \"budget\": {\"trials\": 3}}",
         "t.sweep:2:19: params \"x\": int [0, 1e+12] is too wide (at most 2^32 - 1 integers)"},
        {"{\"model\": \"mlp2\", \"strategy\": \"random\", \"policy\": \"# ${x}\\nrotate degrees=5\",\n"
         " \"params\": {\"x\": {\"uniform\": [-1e308, 1e308]}}, \"budget\": {\"trials\": 3}}",
         "t.sweep:2:19: params \"x\": uniform [-1e+308, 1e+308] is too wide (hi - lo must be finite)"},
        {"{\"model\": \"mlp2\",\n \"params\": {\"model\": [\"mlp2\", \"nope\"]}}",
         "t.sweep:2:13: params \"model\": model 'nope' not found"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sw_sweep s;
        dg_err err = {{0}};
        int rc = sw_sweep_parse(&s, cases[i].text, "t.sweep", NULL, &err);
        if (rc == 0) {
            sw_sweep_free(&s);
            fail_msg("case %zu parsed: %s", i, cases[i].text);
        }
        if (strncmp(err.msg, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("case %zu: got '%s', want '%s...'", i, err.msg, cases[i].want);
    }
}

/* The shipped sweeps parse, and are the size docs/sweeps.md says; the table names every one. */
static void test_shipped(void **state) {
    (void)state;
    static const struct {
        const char *file;
        int configs, reps, rungs;
    } want[] = {{"smoke.sweep", 4, 2, 2},          {"mlp.sweep", 150, 2, 1},         {"cnn.sweep", 246, 1, 3},
                {"default-recipe.sweep", 2, 2, 1}, {"long-recipe.sweep", 4, 2, 1},   {"long-epochs.sweep", 1, 2, 1},
                {"long-seeds.sweep", 2, 2, 1},     {"long-kinds.sweep", 2, 2, 1},
                {"long-kinds-seeds.sweep", 2, 4, 1}, {"long-split3.sweep", 2, 2, 1},
                {"long-split3-seeds.sweep", 1, 2, 1}, {"long-dropout-split3.sweep", 1, 2, 1},
                {"long-dropout-split2.sweep", 2, 2, 1}, {"long-split2.sweep", 1, 2, 1},
                {"long-aug-split3.sweep", 1, 2, 1}, {"long-aug-split2.sweep", 1, 2, 1},
                {"long-split2-seeds.sweep", 1, 2, 1}, {"long-ls-split3.sweep", 1, 2, 1},
                {"long-ls-split2.sweep", 1, 2, 1}, {"long-dropout1-split3.sweep", 1, 2, 1},
                {"long-dropout1-split2.sweep", 1, 2, 1}, {"long-vgg-split3.sweep", 1, 2, 1},
                {"long-vgg-split2.sweep", 1, 2, 1}, {"long-wide-split3.sweep", 1, 2, 1},
                {"long-wide-split2.sweep", 1, 2, 1}, {"long-ema-split3.sweep", 1, 2, 1},
                {"long-ema-split2.sweep", 1, 2, 1}, {"long-deskew-split3.sweep", 1, 2, 1},
                {"long-deskew-split2.sweep", 1, 2, 1}, {"long-batch32-split3.sweep", 1, 2, 1},
                {"long-batch32-split2.sweep", 1, 2, 1}, {"long-wd-split3.sweep", 1, 2, 1},
                {"long-wd-split2.sweep", 1, 2, 1}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, DIGITS_SOURCE_DIR "/experiments/sweeps/%s", want[i].file);
        sw_sweep s;
        dg_err err = {{0}};
        if (sw_sweep_load(&s, path, &err) != 0) fail_msg("%s", err.msg);
        assert_int_equal(s.n_configs, want[i].configs);
        assert_int_equal(sw_reps(&s), want[i].reps);
        assert_int_equal(s.n_rungs, want[i].rungs);
        sw_sweep_free(&s);
    }
    /* the table names every shipped sweep */
    glob_t g;
    assert_int_equal(glob(DIGITS_SOURCE_DIR "/experiments/sweeps/*.sweep", 0, NULL, &g), 0);
    assert_int_equal(g.gl_pathc, sizeof want / sizeof want[0]);
    globfree(&g);
}

/* budget.until: "HH:MM" local time; its deadline is the next such moment, tomorrow if today's has passed. TZ is set
 * to POSIX strings (no tz database needed): a plain offset, and Central Europe's rule on the night its clocks go
 * forward (2026-03-29, 02:00 -> 03:00), where "tomorrow at noon" is 23 hours away, not 24. */
static void set_tz(const char *tz) {
    setenv("TZ", tz, 1);
    tzset();
}

static void test_until(void **state) {
    (void)state;
    sw_sweep s;
    parse_ok(&s, "{\"model\": \"mlp2\", \"budget\": {\"until\": \"07:30\"}}");
    assert_int_equal(s.until_min, 7 * 60 + 30);
    sw_sweep_free(&s);
    parse_ok(&s, "{\"model\": \"mlp2\"}");
    assert_int_equal(s.until_min, -1);
    sw_sweep_free(&s);

    const char *old = getenv("TZ");
    char saved[256] = "";
    if (old) snprintf(saved, sizeof saved, "%s", old);
    const time_t dec7 = 1796637600;  /* 2026-12-07 10:00:00 UTC */
    const time_t dec31 = 1798758000; /* 2026-12-31 23:00:00 UTC */
    const time_t mar28 = 1774695600; /* 2026-03-28 11:00:00 UTC: 12:00 in Central Europe, winter time */
    set_tz("UTC0");
    assert_int_equal(sw_until_deadline(11 * 60 + 30, dec7), dec7 + 5400);        /* later today */
    assert_int_equal(sw_until_deadline(10 * 60, dec7), dec7 + 86400);            /* now exactly: tomorrow */
    assert_int_equal(sw_until_deadline(9 * 60 + 59, dec7), dec7 + 86400 - 60);   /* passed: tomorrow */
    assert_int_equal(sw_until_deadline(30, dec31), dec31 + 5400);                /* into the next year */
    set_tz("XST-3"); /* UTC+3: 10:00 UTC is 13:00 there */
    assert_int_equal(sw_until_deadline(14 * 60, dec7), dec7 + 3600);
    assert_int_equal(sw_until_deadline(12 * 60, dec7), dec7 + 23 * 3600);
    set_tz("CET-1CEST,M3.5.0,M10.5.0/3");
    assert_int_equal(sw_until_deadline(13 * 60, mar28), mar28 + 3600);
    assert_int_equal(sw_until_deadline(12 * 60, mar28), mar28 + 23 * 3600); /* the night loses an hour */
    if (old)
        set_tz(saved);
    else {
        unsetenv("TZ");
        tzset();
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid_order),
        cmocka_unit_test(test_random_draws),
        cmocka_unit_test(test_asha_policy_budget),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_until),
        cmocka_unit_test(test_shipped),
    };
    return tu_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
