/* Tests for nn/checkpoint: exact round trip of every field, and clear rejection of foreign, truncated, corrupted,
 * other-version and other-run checkpoints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/checkpoint.h"
#include "core/dg_file.h"
#include "testutil.h"

#define CK DIGITS_TEST_TMP "/ck.ckpt"

static float params[5] = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f};
static float buffers[2] = {0.25f, 4.0f};
static float opt[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static float bestp[5] = {9, 8, 7, 6, 5};
static float bestb[2] = {-1, -2};
static float emav[7] = {0.5f, -1.0f, 3.0f, 2.0f, 1e-20f, 0.125f, 3.5f}; /* params then buffers */

static nn_ckpt sample(void) {
    nn_ckpt c;
    memset(&c, 0, sizeof c);
    c.spec_text = "name t\ndense units=10\ntrain batch=8\n";
    c.run_key = "seed 3 val-frac 0.1 split-seed 1 rows 100";
    c.epoch = 7;
    c.seed = 0x123456789abcdefULL;
    c.seconds = 12.5;
    c.opt_t = 4242;
    c.sched.scale = 0.25;
    c.sched.best = 0.125;
    c.sched.bad_epochs = 2;
    c.best_val_loss = 0.0625;
    c.best_epoch = 5;
    c.bad_epochs = 2;
    c.n_params = 5;
    c.n_buffers = 2;
    c.n_opt = 10;
    c.params = params;
    c.buffers = buffers;
    c.opt_state = opt;
    c.best_params = bestp;
    c.best_buffers = bestb;
    c.metrics = "{\"epoch\":1}\n";
    return c;
}

static void test_crc32(void **state) {
    (void)state;
    assert_int_equal(nn_crc32(0, "123456789", 9), 0xCBF43926u); /* the standard check value */
    assert_int_equal(nn_crc32(nn_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
    assert_int_equal(nn_crc32(0, "", 0), 0);
}

static void test_roundtrip(void **state) {
    (void)state;
    nn_ckpt c = sample(), d;
    dg_err err = {{0}};
    assert_int_equal(nn_ckpt_save(CK, &c, &err), 0);
    assert_int_equal(nn_ckpt_load(CK, &d, &err), 0);
    assert_string_equal(d.spec_text, c.spec_text);
    assert_string_equal(d.run_key, c.run_key);
    assert_string_equal(d.metrics, c.metrics);
    assert_int_equal(d.epoch, 7);
    assert_true(d.seed == c.seed);
    assert_true(d.seconds == 12.5);
    assert_int_equal(d.opt_t, 4242);
    assert_true(d.sched.scale == 0.25 && d.sched.best == 0.125);
    assert_int_equal(d.sched.bad_epochs, 2);
    assert_true(d.best_val_loss == 0.0625);
    assert_int_equal(d.best_epoch, 5);
    assert_int_equal(d.bad_epochs, 2);
    assert_int_equal(d.n_params, 5);
    assert_int_equal(d.n_buffers, 2);
    assert_int_equal(d.n_opt, 10);
    assert_memory_equal(d.params, params, sizeof params);
    assert_memory_equal(d.buffers, buffers, sizeof buffers);
    assert_memory_equal(d.opt_state, opt, sizeof opt);
    assert_memory_equal(d.best_params, bestp, sizeof bestp);
    assert_memory_equal(d.best_buffers, bestb, sizeof bestb);
    assert_null(d.ema); /* no "ema" section: EMA off */
    tu_assert_exact(d.ema_decay, 0);
    assert_int_equal(nn_ckpt_matches(&d, CK, c.spec_text, c.run_key, &err), 1);
    nn_ckpt_free(&d);
    /* Without best-model copies and with an infinite best loss (no epoch yet). */
    c.best_params = c.best_buffers = NULL;
    c.best_val_loss = INFINITY;
    c.sched.best = INFINITY;
    assert_int_equal(nn_ckpt_save(CK, &c, &err), 0);
    assert_int_equal(nn_ckpt_load(CK, &d, &err), 0);
    assert_null(d.best_params);
    assert_null(d.best_buffers);
    assert_true(isinf(d.best_val_loss) && isinf(d.sched.best));
    nn_ckpt_free(&d);
    /* With the moving average of the weights. */
    c.ema_decay = 0.999f;
    c.ema = emav;
    assert_int_equal(nn_ckpt_save(CK, &c, &err), 0);
    assert_int_equal(nn_ckpt_load(CK, &d, &err), 0);
    tu_assert_exact(d.ema_decay, 0.999f);
    assert_non_null(d.ema);
    assert_memory_equal(d.ema, emav, sizeof emav);
    assert_memory_equal(d.params, params, sizeof params);
    nn_ckpt_free(&d);
}

/* A checkpoint whose last section, "ema", is one float short, with its lengths and CRC made consistent again. */
static void test_rejects_bad_ema(void **state) {
    (void)state;
    nn_ckpt c = sample(), d;
    dg_err err = {{0}};
    c.ema_decay = 0.99f;
    c.ema = emav;
    assert_int_equal(nn_ckpt_save(CK, &c, &err), 0);
    char *data;
    size_t n;
    assert_int_equal(dg_read_file(CK, &data, &n, &err), 0);
    size_t at = n - sizeof emav - 4 - 16; /* the section's tag */
    assert_string_equal(data + at, "ema");
    uint64_t sec, len;
    memcpy(&sec, data + at + 8, 8);
    assert_int_equal(sec, 4 + sizeof emav);
    sec -= 4;
    memcpy(data + at + 8, &sec, 8);
    memcpy(&len, data + 16, 8);
    len -= 4;
    memcpy(data + 16, &len, 8);
    uint32_t crc = nn_crc32(0, data + 32, n - 4 - 32);
    memcpy(data + 24, &crc, 4);
    assert_int_equal(dg_write_file_atomic(DIGITS_TEST_TMP "/bad.ckpt", data, n - 4, &err), 0);
    assert_int_equal(nn_ckpt_load(DIGITS_TEST_TMP "/bad.ckpt", &d, &err), -1);
    assert_non_null(
        strstr(err.msg, "bad.ckpt: checkpoint 'ema' section has 28 bytes, expected 32 (decay and 7 floats)"));
    /* a decay out of (0, 1) */
    c.ema_decay = 1.5f;
    assert_int_equal(nn_ckpt_save(CK, &c, &err), 0);
    assert_int_equal(nn_ckpt_load(CK, &d, &err), -1);
    assert_non_null(strstr(err.msg, "checkpoint 'ema' section holds the decay 1.5, expected (0, 1)"));
    free(data);
    unlink(DIGITS_TEST_TMP "/bad.ckpt");
}

static void test_rejects(void **state) {
    (void)state;
    nn_ckpt c = sample(), d;
    dg_err err = {{0}};
    assert_int_equal(nn_ckpt_save(CK, &c, &err), 0);
    char *data;
    size_t n;
    assert_int_equal(dg_read_file(CK, &data, &n, &err), 0);
    /* One flipped bit in a parameter. */
    data[n - 40] ^= 0x10;
    assert_int_equal(dg_write_file_atomic(DIGITS_TEST_TMP "/bad.ckpt", data, n, &err), 0);
    assert_int_equal(nn_ckpt_load(DIGITS_TEST_TMP "/bad.ckpt", &d, &err), -1);
    assert_non_null(strstr(err.msg, "bad.ckpt: corrupted checkpoint (CRC-32 mismatch)"));
    data[n - 40] ^= 0x10;
    /* Truncated (a kill during a non-atomic copy, say). */
    assert_int_equal(dg_write_file_atomic(DIGITS_TEST_TMP "/bad.ckpt", data, n - 7, &err), 0);
    assert_int_equal(nn_ckpt_load(DIGITS_TEST_TMP "/bad.ckpt", &d, &err), -1);
    assert_non_null(strstr(err.msg, "truncated checkpoint"));
    /* Another version. */
    data[8] = 9;
    assert_int_equal(dg_write_file_atomic(DIGITS_TEST_TMP "/bad.ckpt", data, n, &err), 0);
    assert_int_equal(nn_ckpt_load(DIGITS_TEST_TMP "/bad.ckpt", &d, &err), -1);
    assert_non_null(strstr(err.msg, "checkpoint version 9, this build reads version 1"));
    /* Not a checkpoint at all. */
    assert_int_equal(dg_write_file_atomic(DIGITS_TEST_TMP "/bad.ckpt", "{\"epoch\": 3}", 12, &err), 0);
    assert_int_equal(nn_ckpt_load(DIGITS_TEST_TMP "/bad.ckpt", &d, &err), -1);
    assert_non_null(strstr(err.msg, "not a digits checkpoint"));
    assert_int_equal(nn_ckpt_load(DIGITS_TEST_TMP "/none.ckpt", &d, &err), -1);
    assert_non_null(strstr(err.msg, "none.ckpt: cannot open"));
    free(data);
    unlink(DIGITS_TEST_TMP "/bad.ckpt");
    /* Another model, another run. */
    assert_int_equal(nn_ckpt_load(CK, &d, &err), 0);
    assert_int_equal(nn_ckpt_matches(&d, CK, "name t\ndense units=12\ntrain batch=8\n", c.run_key, &err), 0);
    assert_non_null(strstr(err.msg, "different model or hyperparameters (resolved spec line 2: 'dense units=12' now, "
                                    "'dense units=10' in the checkpoint)"));
    assert_int_equal(nn_ckpt_matches(&d, CK, c.spec_text, "seed 4", &err), 0);
    assert_non_null(strstr(err.msg, "different run ('seed 4' now"));
    nn_ckpt_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_rejects_bad_ema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
