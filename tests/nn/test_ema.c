/* Tests for nn/ema: the warm-up decay against its formula written out by hand, the update against a double
 * computation, and the swap's exact round trip. The training loop's use of them (every step, batch-norm statistics
 * included, the exported model) is checked in tests/nn/test_train.c (test_ema_by_hand). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "nn/ema.h"
#include "testutil.h"

static void test_decay(void **state) {
    (void)state;
    /* (1 + k) / (10 + k) for k = 1, 2, 3 and 90: 2/11, 3/12, 4/13, 91/100 */
    tu_assert_close(nn_ema_decay(0.999f, 1), 2.0 / 11.0, 1e-7, 0);
    tu_assert_close(nn_ema_decay(0.999f, 2), 0.25, 1e-7, 0);
    tu_assert_close(nn_ema_decay(0.999f, 3), 4.0 / 13.0, 1e-7, 0);
    tu_assert_close(nn_ema_decay(0.999f, 90), 0.91, 1e-7, 0);
    /* the cap D once the warm-up passes it: 3/12 > 0.2, and 8991/9000 > 0.999 */
    tu_assert_exact(nn_ema_decay(0.2f, 2), 0.2f);
    tu_assert_exact(nn_ema_decay(0.999f, 9000), 0.999f);
    tu_assert_exact(nn_ema_decay(0.5f, UINT64_MAX / 2), 0.5f);
    /* below the cap the warm-up: 2/11 < 0.2 */
    tu_assert_close(nn_ema_decay(0.2f, 1), 2.0 / 11.0, 1e-7, 0);
}

static void test_update(void **state) {
    (void)state;
    enum { N = 37, STEPS = 5 };
    float ema[N], live[N];
    double want[N];
    for (int i = 0; i < N; i++) ema[i] = (float)(want[i] = 0.1 * i - 1.5);
    for (int k = 1; k <= STEPS; k++) {
        for (int i = 0; i < N; i++) live[i] = (float)(0.3 * k - 0.05 * i);
        double d = (1.0 + k) / (10.0 + k) < 0.3 ? (1.0 + k) / (10.0 + k) : 0.3;
        for (int i = 0; i < N; i++) want[i] = d * want[i] + (1 - d) * live[i];
        nn_ema_update(ema, live, N, nn_ema_decay(0.3f, (uint64_t)k));
    }
    for (int i = 0; i < N; i++) tu_assert_close(ema[i], want[i], 1e-6, 1e-7);
}

static void test_swap(void **state) {
    (void)state;
    float a[5] = {1, -2, 3.5f, 0, 1e-30f}, b[5] = {-0.0f, 7, 8, 9, 1e30f}, a0[5], b0[5];
    memcpy(a0, a, sizeof a);
    memcpy(b0, b, sizeof b);
    nn_ema_swap(a, b, 5);
    assert_memory_equal(a, b0, sizeof a);
    assert_memory_equal(b, a0, sizeof b);
    nn_ema_swap(a, b, 5);
    assert_memory_equal(a, a0, sizeof a);
    assert_memory_equal(b, b0, sizeof b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decay),
        cmocka_unit_test(test_update),
        cmocka_unit_test(test_swap),
    };
    return tu_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
