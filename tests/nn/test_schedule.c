/* Tests for nn/schedule's re-target (a run shortened mid-way): the learning rate goes on from where it was, the
 * new last step takes the curve's final value, the steps in between follow the rest of the curve in order, and
 * schedules that do not depend on the total are left alone. The curves themselves are checked against torch in
 * tests/nn/test_optim.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "nn/schedule.h"
#include "testutil.h"

#define M_PI_VALUE 3.14159265358979323846

#define SPE 50 /* steps per epoch */

/* torch OneCycleLR (cos, pct_start 0.3) at step `at` of `total`, from the formula in its documentation. */
static double onecycle_ref(double peak, double at, double total) {
    double initial = peak / 25, final_lr = initial / 1e4, up_end = 0.3 * total - 1, down_end = total - 1;
    if (at <= up_end) return peak + (initial - peak) / 2 * (cos(M_PI_VALUE * at / up_end) + 1);
    return final_lr + (peak - final_lr) / 2 * (cos(M_PI_VALUE * (at - up_end) / (down_end - up_end)) + 1);
}

static void onecycle_hyper(nn_hyper *h) {
    nn_hyper_defaults(h);
    h->schedule = NN_SCHED_ONECYCLE;
    h->lr = 0.001f;
    h->max_lr = 0.003f;
    h->epochs = 16;
}

/* The 16-epoch one-cycle hyperparameters and a fresh schedule; returns the unshortened run's last learning rate. */
static double onecycle_start(nn_hyper *h, nn_sched *s) {
    onecycle_hyper(h);
    nn_sched_init(s);
    return nn_sched_lr(h, s, 15, SPE - 1, SPE);
}

/* Without a re-target: the map is the identity and the values are the curve's. */
static void test_identity(void **state) {
    (void)state;
    nn_hyper h;
    onecycle_hyper(&h);
    nn_sched s;
    nn_sched_init(&s);
    assert_false(nn_sched_retargeted(&s));
    for (int e = 0; e < 16; e += 3)
        for (int k = 0; k < SPE; k += 7)
            tu_assert_close(nn_sched_lr(&h, &s, e, k, SPE), onecycle_ref(0.003, e * SPE + k, 16 * SPE), TU_REL_F32, 0);
}

/* From epoch e0 to the end of epoch e1 - 1, past the peak: the 16-epoch one-cycle curve at v0 + (a - e0 SPE) k for
 * run step a (the re-target's linear map), never rising, from `before` on. */
static void assert_follows_map(const nn_hyper *h, const nn_sched *s, int e0, int e1, double v0, double k,
                               float before) {
    float prev = before;
    for (int a = e0 * SPE; a < e1 * SPE; a++) {
        float lr = nn_sched_lr(h, s, a / SPE, a % SPE, SPE);
        tu_assert_close(lr, onecycle_ref(0.003, v0 + (a - (double)e0 * SPE) * k, 16 * SPE), TU_REL_F32, 0);
        assert_true(lr <= prev);
        prev = lr;
    }
}

/* Cut 16 epochs to 10 after epoch 6 (past the peak), then to 8 after epoch 7. */
static void test_onecycle_shortened(void **state) {
    (void)state;
    nn_hyper h;
    nn_sched s;
    double final_lr = onecycle_start(&h, &s); /* the unshortened run's last step */
    tu_assert_close(final_lr, 0.003 / 25 / 1e4, TU_REL_F32, 0);
    float before = nn_sched_lr(&h, &s, 6, 0, SPE);
    nn_sched_retarget(&h, &s, 6, 10, SPE);
    assert_true(nn_sched_retargeted(&s));
    assert_int_equal(h.epochs, 16); /* the spec keeps its epochs */
    tu_assert_close(nn_sched_lr(&h, &s, 6, 0, SPE), before, TU_REL_F32, 0); /* no jump */
    tu_assert_close(nn_sched_lr(&h, &s, 9, SPE - 1, SPE), final_lr, TU_REL_F32, 0); /* anneals to the end */
    /* in between: the rest of the curve, mapped linearly onto the 4 epochs left, so it only goes down */
    double v0 = 6.0 * SPE, k = (16.0 * SPE - 1 - v0) / (10.0 * SPE - 1 - 6.0 * SPE);
    assert_follows_map(&h, &s, 6, 10, v0, k, before);
    /* a second cut continues from the first map */
    before = nn_sched_lr(&h, &s, 7, 0, SPE);
    nn_sched_retarget(&h, &s, 7, 8, SPE);
    tu_assert_close(nn_sched_lr(&h, &s, 7, 0, SPE), before, TU_REL_F32, 0);
    tu_assert_close(nn_sched_lr(&h, &s, 7, SPE - 1, SPE), final_lr, TU_REL_F32, 0);
}

/* Cut 16 epochs to 8 after epoch 4, then lengthened back to 14 after epoch 6 (the deadline's pace recovered): the
 * second map starts where the first had got to, stretches the rest of the curve over the 8 epochs left (fewer curve
 * steps per run step than the first map, so the descent slows), and still ends at the final value. */
static void test_onecycle_lengthened_back(void **state) {
    (void)state;
    nn_hyper h;
    nn_sched s;
    double final_lr = onecycle_start(&h, &s);
    nn_sched_retarget(&h, &s, 4, 8, SPE);
    double k1 = s.warp_k;
    float before = nn_sched_lr(&h, &s, 6, 0, SPE);
    double v0 = 4.0 * SPE + 2.0 * SPE * k1; /* the curve's position after epoch 6 under the first map */
    nn_sched_retarget(&h, &s, 6, 14, SPE);
    tu_assert_close(nn_sched_lr(&h, &s, 6, 0, SPE), before, TU_REL_F32, 0); /* no jump */
    tu_assert_close(nn_sched_lr(&h, &s, 13, SPE - 1, SPE), final_lr, TU_REL_F32, 0);
    double k2 = (16.0 * SPE - 1 - v0) / (14.0 * SPE - 1 - 6.0 * SPE);
    assert_true(k2 < k1);
    tu_assert_close(s.warp_k, k2, 1e-12, 0);
    assert_follows_map(&h, &s, 6, 14, v0, k2, before);
}

/* A cut during the warm-up keeps the rest of the warm-up (compressed), reaches the peak, and ends at the final
 * value; a cut to one step left jumps to the final value. */
static void test_onecycle_cut_in_warmup(void **state) {
    (void)state;
    nn_hyper h;
    nn_sched s;
    double final_lr = onecycle_start(&h, &s);
    float before = nn_sched_lr(&h, &s, 2, 0, SPE);
    nn_sched_retarget(&h, &s, 2, 6, SPE);
    tu_assert_close(nn_sched_lr(&h, &s, 2, 0, SPE), before, TU_REL_F32, 0);
    float top = 0;
    for (int a = 2 * SPE; a < 6 * SPE; a++) top = fmaxf(top, nn_sched_lr(&h, &s, a / SPE, a % SPE, SPE));
    tu_assert_close(top, 0.003, 1e-3, 0); /* the peak, to within the step grid */
    tu_assert_close(nn_sched_lr(&h, &s, 5, SPE - 1, SPE), final_lr, TU_REL_F32, 0);

    nn_sched_init(&s);
    nn_sched_retarget(&h, &s, 3, 4, 1); /* one step per epoch: one step left */
    tu_assert_close(nn_sched_lr(&h, &s, 3, 0, 1), nn_sched_lr(&h, &(nn_sched){1, INFINITY, 0, 0, 0, 1}, 15, 0, 1),
                    TU_REL_F32, 0);
}

static void test_cosine_shortened(void **state) {
    (void)state;
    nn_hyper h;
    nn_hyper_defaults(&h);
    h.schedule = NN_SCHED_COSINE;
    h.lr = 0.1f;
    h.min_lr = 0.001f;
    h.epochs = 20;
    nn_sched s;
    nn_sched_init(&s);
    float last = nn_sched_lr(&h, &s, 19, SPE - 1, SPE);
    float before = nn_sched_lr(&h, &s, 8, 0, SPE);
    nn_sched_retarget(&h, &s, 8, 12, SPE);
    tu_assert_close(nn_sched_lr(&h, &s, 8, 0, SPE), before, TU_REL_F32, 0);
    tu_assert_close(nn_sched_lr(&h, &s, 11, SPE - 1, SPE), last, TU_REL_F32, 0);
    tu_assert_close(last, 0.001 + 0.099 * (1 + cos(M_PI_VALUE * (20.0 * SPE - 1) / (20.0 * SPE))) / 2, TU_REL_F32, 0);
}

/* constant, step, exp and plateau do not depend on the total: a re-target changes nothing. */
static void test_others_unchanged(void **state) {
    (void)state;
    static const nn_schedule kinds[] = {NN_SCHED_CONSTANT, NN_SCHED_STEP, NN_SCHED_EXP, NN_SCHED_PLATEAU};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        nn_hyper h;
        nn_hyper_defaults(&h);
        h.schedule = kinds[i];
        h.gamma = 0.5f;
        h.step_epochs = 2;
        h.epochs = 10;
        nn_sched s, t;
        nn_sched_init(&s);
        nn_sched_init(&t);
        nn_sched_retarget(&h, &t, 3, 5, SPE);
        assert_false(nn_sched_retargeted(&t));
        for (int e = 0; e < 5; e++) tu_assert_exact(nn_sched_lr(&h, &t, e, 7, SPE), nn_sched_lr(&h, &s, e, 7, SPE));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_onecycle_shortened),
        cmocka_unit_test(test_onecycle_lengthened_back),
        cmocka_unit_test(test_onecycle_cut_in_warmup),
        cmocka_unit_test(test_cosine_shortened),
        cmocka_unit_test(test_others_unchanged),
    };
    return tu_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
