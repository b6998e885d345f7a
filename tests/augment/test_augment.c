/* Tests for augment/augment: the batch functions give bit-identical output whatever the thread count and batch
 * split, replaying stored parameters regenerates the images, the f32 and uint8 outputs agree, and policy "none"
 * is exactly pixel / 255. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment.h"
#include "aug_testutil.h"

#define N 301

static uint8_t images[N][784];
static const uint8_t *src[N];
static uint32_t ids[N];

static int setup(void **state) {
    (void)state;
    for (int i = 0; i < N; i++) {
        synth_digit(images[i], i);
        src[i] = images[i];
        ids[i] = (uint32_t)(1000 + 3 * i);
    }
    return 0;
}

/* dst = policy(images) in chunks of `batch` with `threads` threads. */
static void run_u8(const aug_policy *p, int threads, int batch, uint8_t *dst, aug_params *params) {
    omp_set_num_threads(threads);
    for (int i = 0; i < N; i += batch) {
        int n = N - i < batch ? N - i : batch;
        aug_batch_u8(p, 42, 3, ids + i, src + i, dst + (size_t)i * 784, params ? params + i : NULL, n);
    }
}

static void run_f32(const aug_policy *p, int threads, int batch, float *dst) {
    omp_set_num_threads(threads);
    for (int i = 0; i < N; i += batch) {
        int n = N - i < batch ? N - i : batch;
        aug_batch_f32(p, 42, 3, ids + i, src + i, dst + (size_t)i * 784, n);
    }
}

static void test_threads_and_batches_bit_identical(void **state) {
    (void)state;
    const char *policies[] = {"kaggle", "simard", "ciresan", DIGITS_FIXTURES "/augment/all.policy"};
    uint8_t *a = malloc(N * 784), *b = malloc(N * 784);
    float *fa = malloc(sizeof(float) * N * 784), *fb = malloc(sizeof(float) * N * 784);
    assert_non_null(a && b && fa && fb);
    for (int k = 0; k < 4; k++) {
        aug_policy *p;
        dg_err err;
        if (aug_policy_load(&p, policies[k], &err) != 0) fail_msg("%s", err.msg);
        run_u8(p, 1, N, a, NULL);
        const int threads[] = {2, 2, 1, 3}, batches[] = {N, 7, 64, 1};
        for (int c = 0; c < 4; c++) {
            memset(b, 0xAB, N * 784);
            run_u8(p, threads[c], batches[c], b, NULL);
            assert_memory_equal(a, b, N * 784);
        }
        run_f32(p, 1, N, fa);
        run_f32(p, 2, 13, fb);
        assert_memory_equal(fa, fb, sizeof(float) * N * 784);
        /* uint8 output = f32 output * 255 rounded */
        int changed = 0;
        for (int i = 0; i < N * 784; i++) {
            assert_true(fa[i] >= 0 && fa[i] <= 1.0001f);
            assert_true(fabsf((float)a[i] - fa[i] * 255.0f) <= 0.5001f);
            changed += a[i] != images[i / 784][i % 784];
        }
        assert_true(changed > N * 20); /* the policy did something */
        aug_policy_free(p);
    }
    free(a), free(b), free(fa), free(fb);
}

static void test_epochs_differ(void **state) {
    (void)state;
    aug_policy *p;
    dg_err err;
    assert_int_equal(aug_policy_load(&p, "simard", &err), 0);
    uint8_t x[784], y[784];
    aug_batch_u8(p, 42, 0, ids, src, x, NULL, 1);
    aug_batch_u8(p, 42, 1, ids, src, y, NULL, 1);
    assert_true(memcmp(x, y, 784) != 0);
    aug_policy_free(p);
}

static void test_replay(void **state) {
    (void)state;
    aug_policy *p;
    dg_err err;
    assert_int_equal(aug_policy_load(&p, DIGITS_FIXTURES "/augment/all.policy", &err), 0);
    uint8_t *a = malloc(N * 784), *b = malloc(N * 784);
    aug_params *params = malloc(sizeof *params * N);
    run_u8(p, 2, 50, a, params);
    for (int i = 0; i < N; i++) assert_true(params[i].seed == 42 && params[i].epoch == 3 && params[i].id == ids[i]);
    omp_set_num_threads(2);
    aug_replay_u8(params, src, b, N);
    assert_memory_equal(a, b, N * 784);
    /* one image on its own */
    static aug_scratch s;
    aug_scratch_init(&s);
    uint8_t one[784];
    aug_apply_u8(one, src[123], &params[123], &s);
    assert_memory_equal(one, a + 123 * 784, 784);
    free(a), free(b), free(params);
    aug_policy_free(p);
}

static void test_none_is_pixel_over_255(void **state) {
    (void)state;
    aug_policy *p;
    dg_err err;
    assert_int_equal(aug_policy_load(&p, "none", &err), 0);
    float *f = malloc(sizeof(float) * N * 784);
    run_f32(p, 2, 100, f);
    for (int i = 0; i < N * 784; i++) assert_true(f[i] == (float)images[i / 784][i % 784] / 255.0f);
    free(f);
    aug_policy_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_and_batches_bit_identical),
        cmocka_unit_test(test_epochs_differ),
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_none_is_pixel_over_255),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
