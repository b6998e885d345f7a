/* Tests for augment/policy: presets and their files, every line kind, errors with file:line:col, canonical text
 * round trip, and the drawing (pure, keyed, within the ranges, probabilities). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "augment/augment.h"
#include "augment/affine.h"
#include "augment/policy.h"

static aug_policy *parse_ok(const char *text) {
    aug_policy *p;
    dg_err err;
    int rc = aug_policy_parse(&p, text, "t.policy", &err);
    if (rc != 0) fail_msg("unexpected error: %s", err.msg);
    return p;
}

static void expect_error(const char *text, const char *where, const char *what) {
    aug_policy *p = (aug_policy *)1;
    dg_err err;
    assert_int_equal(aug_policy_parse(&p, text, "t.policy", &err), -1);
    assert_null(p);
    if (strncmp(err.msg, where, strlen(where)) != 0 || !strstr(err.msg, what))
        fail_msg("for %s: got '%s', expected '%s...%s'", text, err.msg, where, what);
}

static void test_presets(void **state) {
    (void)state;
    aug_policy *p;
    dg_err err;
    assert_int_equal(aug_policy_load(&p, "kaggle", &err), 0);
    assert_int_equal(p->n, 3);
    assert_int_equal(p->op[0].kind, AUG_ROTATE);
    assert_true(p->op[0].lo[0] == -10 && p->op[0].hi[0] == 10);
    assert_int_equal(p->op[1].kind, AUG_ZOOM);
    assert_true(p->op[1].lo[0] == 0.9f && p->op[1].hi[0] == 1.1f);
    assert_int_equal(p->op[2].kind, AUG_SHIFT);
    assert_true(fabsf(p->op[2].hi[0] - 2.8f) < 1e-6f && fabsf(p->op[2].lo[1] + 2.8f) < 1e-6f);
    assert_string_equal(p->source, "kaggle");
    aug_policy_free(p);
    assert_int_equal(aug_policy_load(&p, "simard", &err), 0);
    assert_int_equal(p->n, 1);
    assert_true(p->op[0].kind == AUG_ELASTIC && p->op[0].lo[0] == 34 && p->op[0].lo[1] == 4 && p->op[0].p == 1);
    aug_policy_free(p);
    assert_int_equal(aug_policy_load(&p, "ciresan", &err), 0);
    assert_int_equal(p->n, 3);
    assert_true(p->op[0].lo[0] == -15 && p->op[0].hi[0] == 15);
    assert_true(p->op[1].kind == AUG_SCALE && p->op[1].lo[0] == 0.85f && p->op[1].hi[1] == 1.15f);
    assert_true(p->op[2].lo[0] == 36 && p->op[2].hi[0] == 38 && p->op[2].lo[1] == 5 && p->op[2].hi[1] == 6);
    aug_policy_free(p);
    assert_int_equal(aug_policy_load(&p, "none", &err), 0);
    assert_true(aug_policy_is_none(p));
    aug_policy_free(p);
    assert_int_equal(aug_policy_load(&p, "nonesuch", &err), -1);
    assert_non_null(strstr(err.msg, "not a policy preset"));
}

/* The preset files in experiments/policies/ hold the built-in text. */
static void test_preset_files(void **state) {
    (void)state;
    const char *names[] = {"none", "kaggle", "simard", "ciresan", "deskew"};
    for (int i = 0; i < 5; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/experiments/policies/%s.policy", DIGITS_SOURCE_DIR, names[i]);
        aug_policy *a, *b;
        dg_err err;
        if (aug_policy_load(&a, path, &err) != 0) fail_msg("%s", err.msg);
        assert_int_equal(aug_policy_load(&b, names[i], &err), 0);
        assert_int_equal(a->n, b->n);
        assert_memory_equal(a->op, b->op, sizeof a->op);
        aug_policy_free(a);
        aug_policy_free(b);
    }
}

static void test_every_kind_from_file(void **state) {
    (void)state;
    aug_policy *p;
    dg_err err;
    if (aug_policy_load(&p, DIGITS_FIXTURES "/augment/all.policy", &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(p->n, 8);
    aug_kind kinds[] = {AUG_DESKEW, AUG_ROTATE, AUG_ZOOM, AUG_SCALE, AUG_SHEAR, AUG_SHIFT, AUG_SHIFT, AUG_ELASTIC};
    for (int i = 0; i < 8; i++) assert_int_equal(p->op[i].kind, kinds[i]);
    assert_int_equal(p->op[1].line, 4);
    assert_true(p->op[1].lo[0] == -12 && p->op[1].hi[0] == 8 && p->op[1].p == 0.9f);
    assert_true(p->op[3].lo[0] == 0.9f && p->op[3].hi[0] == 1.1f && p->op[3].lo[1] == 1 && p->op[3].hi[1] == 1);
    assert_true(p->op[4].lo[0] == -5 && p->op[4].hi[0] == 5 && p->op[4].p == 0.5f);
    assert_true(p->op[5].lo[0] == -2.5f && p->op[5].hi[1] == 2.5f);
    assert_true(fabsf(p->op[6].lo[0] + 1.4f) < 1e-6f && fabsf(p->op[6].hi[0] - 1.4f) < 1e-6f);
    assert_true(p->op[7].lo[0] == 30 && p->op[7].hi[0] == 34 && p->op[7].p == 0.25f);
    /* canonical text parses back to the same policy */
    char buf[2048];
    int n = aug_policy_format(p, buf, sizeof buf);
    assert_true(n > 0 && n < (int)sizeof buf);
    aug_policy *q = parse_ok(buf);
    assert_int_equal(q->n, p->n);
    for (int i = 0; i < p->n; i++) {
        assert_int_equal(q->op[i].kind, p->op[i].kind);
        assert_true(q->op[i].p == p->op[i].p);
        for (int j = 0; j < 2; j++) assert_true(q->op[i].lo[j] == p->op[i].lo[j] && q->op[i].hi[j] == p->op[i].hi[j]);
    }
    aug_policy_free(q);
    aug_policy_free(p);
}

static void test_errors(void **state) {
    (void)state;
    dg_err err;
    aug_policy *p;
    assert_int_equal(aug_policy_load(&p, DIGITS_FIXTURES "/augment/typo.policy", &err), -1);
    assert_non_null(strstr(err.msg, "typo.policy:4:1: unknown transform 'rotat'"));
    assert_int_equal(aug_policy_load(&p, DIGITS_FIXTURES "/augment/negative_sigma.policy", &err), -1);
    assert_non_null(strstr(err.msg, "negative_sigma.policy:1:24: sigma must be >= 0"));

    expect_error("rotate 10\n\nflip p=1\n", "t.policy:3:1:", "unknown transform 'flip'");
    expect_error("elastic alpha=34 sigma=-1\n", "t.policy:1:24:", "sigma must be >= 0");
    expect_error("elastic alpha=nan sigma=4\n", "t.policy:1:15:", "NaN");
    expect_error("elastic alpha=-3 sigma=4\n", "t.policy:1:15:", "alpha must be >= 0");
    expect_error("elastic alpha=34 sigma=inf\n", "t.policy:1:24:", "finite");
    expect_error("elastic alpha=34\n", "t.policy:1:1:", "needs alpha= and sigma=");
    expect_error("elastic 34 4\n", "t.policy:1:9:", "no positional value");
    expect_error("rotate 10 p=1.5\n", "t.policy:1:13:", "p must be in [0, 1]");
    expect_error("rotate 10 p=-0.1\n", "t.policy:1:13:", "p must be in [0, 1]");
    /* above 0 as a double, 0 as the float that is stored (found by tests/fuzz/fuzz_policy) */
    expect_error("zoom 9e-80\n", "t.policy:1:6:", "factor must be a factor in (0, 10]");
    expect_error("# ok\nrotate 10 p=nan\n", "t.policy:2:13:", "NaN");
    expect_error("rotate degrees=10..-10\n", "t.policy:1:16:", "bad range");
    expect_error("rotate degrees=1..\n", "t.policy:1:16:", "range LO..HI");
    expect_error("rotate degrees=ten\n", "t.policy:1:16:", "expected a number");
    expect_error("rotate degrees=-5\n", "t.policy:1:16:", "must be >= 0");
    expect_error("rotate\n", "t.policy:1:1:", "needs a value");
    expect_error("rotate 5 angle=3\n", "t.policy:1:10:", "unknown key 'angle' for rotate");
    expect_error("rotate 5 degrees=3\n", "t.policy:1:10:", "degrees given twice");
    expect_error("zoom 0..2\n", "t.policy:1:6:", "factor in (0, 10]");
    expect_error("scale 0.9..1.1 x=1\n", "t.policy:1:16:", "given twice");
    expect_error("shift 0.1\n", "t.policy:1:7:", "no positional value");
    expect_error("shift fraction=0.1 pixels=2\n", "t.policy:1:20:", "not both");
    expect_error("shift fraction=2\n", "t.policy:1:16:", "within -1..1");
    expect_error("shear 80\n", "t.policy:1:7:", "within -75..75");
    expect_error("elastic alpha=34 sigma=4\nrotate 5\n", "t.policy:2:1:", "elastic must be the last");
    expect_error("rotate 5\ndeskew\n", "t.policy:2:1:", "deskew must be the first");
    expect_error("rotate 5 p=\n", "t.policy:1:10:", "missing value");
    expect_error("rotate 5 p=0.5..1\n", "t.policy:1:12:", "not a range");
    expect_error("rotate\t5\x01\n", "t.policy:1:9:", "unexpected character");
    /* CRLF line ends and a file without a final newline are fine */
    p = parse_ok("rotate 5\r\nzoom 1.1");
    assert_int_equal(p->n, 2);
    assert_true(p->op[1].lo[0] == 1.1f && p->op[1].hi[0] == 1.1f);
    aug_policy_free(p);
}

static void test_drawing(void **state) {
    (void)state;
    aug_policy *p = parse_ok("rotate degrees=-10..10\nzoom 0.9..1.1 p=0.5\nshift pixels=3\nelastic alpha=30..34 sigma=4..5\n");
    aug_draw d[AUG_MAX_OPS], e[AUG_MAX_OPS];
    int applied_zoom = 0;
    double sum_rot = 0;
    for (uint32_t id = 0; id < 4000; id++) {
        aug_draw_ops(p, 7, 2, id, d);
        aug_draw_ops(p, 7, 2, id, e);
        assert_memory_equal(d, e, sizeof(aug_draw) * 4); /* pure */
        assert_true(d[0].applied && d[2].applied && d[3].applied);
        assert_true(d[0].v[0] >= -10 && d[0].v[0] < 10);
        sum_rot += d[0].v[0];
        applied_zoom += d[1].applied;
        assert_true(d[1].v[0] == d[1].v[1] && d[1].v[0] >= 0.9f && d[1].v[0] < 1.1f);
        assert_true(d[2].v[0] >= -3 && d[2].v[0] < 3 && d[2].v[1] >= -3 && d[2].v[1] < 3 && d[2].v[0] != d[2].v[1]);
        assert_true(d[3].v[0] >= 30 && d[3].v[0] < 34 && d[3].v[1] >= 4 && d[3].v[1] < 5);
    }
    assert_true(applied_zoom > 1800 && applied_zoom < 2200);
    assert_true(fabs(sum_rot / 4000) < 0.5);
    /* other seed, epoch or id: other draws */
    aug_draw_ops(p, 7, 2, 1, d);
    aug_draw_ops(p, 8, 2, 1, e);
    assert_true(d[0].v[0] != e[0].v[0]);
    aug_draw_ops(p, 7, 3, 1, e);
    assert_true(d[0].v[0] != e[0].v[0]);
    /* a line's probability does not move the other lines' draws */
    aug_policy *q = parse_ok("rotate degrees=-10..10\nzoom 0.9..1.1 p=0\nshift pixels=3\nelastic alpha=30..34 sigma=4..5\n");
    aug_draw_ops(q, 7, 2, 1, e);
    assert_false(e[1].applied);
    assert_true(d[0].v[0] == e[0].v[0] && d[2].v[0] == e[2].v[0] && d[3].v[1] == e[3].v[1]);
    /* parameters: the key is recorded; p = 0 everywhere gives identity parameters */
    uint8_t img[784] = {0};
    aug_params prm;
    aug_sample(p, 7, 2, 9, img, &prm);
    assert_true(prm.seed == 7 && prm.epoch == 2 && prm.id == 9 && prm.alpha >= 30 && prm.sigma >= 4);
    aug_policy *z = parse_ok("rotate 10 p=0\nelastic alpha=34 sigma=4 p=0\n");
    aug_sample(z, 7, 2, 9, img, &prm);
    assert_true(aug_affine_is_identity(prm.m) && prm.alpha == 0);
    aug_policy_free(z);
    aug_policy_free(q);
    aug_policy_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_presets), cmocka_unit_test(test_preset_files), cmocka_unit_test(test_every_kind_from_file),
        cmocka_unit_test(test_errors),  cmocka_unit_test(test_drawing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
