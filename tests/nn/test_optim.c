/* Tests for nn/optim and nn/schedule: three steps of every optimizer against values printed by PyTorch 2
 * (torch.optim.SGD/Adam/AdamW with the same hyperparameters, decay only on the first two parameters), a
 * textbook re-derivation of Adam, range handling, thread independence, and every schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn/optim.h"
#include "nn/schedule.h"

#define M_PI_VALUE 3.14159265358979323846

static const float p0[4] = {0.5f, -1.25f, 2.0f, 0.1f};
static const float grads[3][4] = {{0.1f, -0.2f, 0.3f, 0.0f}, {-0.05f, 0.4f, 0.25f, 1.0f}, {0.3f, 0.3f, -0.6f, -0.2f}};

/* Three steps on p0 with params [0, 2) decayed (a "weight") and [2, 4) not (a "bias"). */
static void three_steps(const nn_hyper *h, float lr, float out[4]) {
    nn_optim o;
    dg_err err = {{0}};
    nn_optim_range r[2] = {nn_optim_range_make(h, 0, 2, 1, 0.0f), nn_optim_range_make(h, 2, 2, 0, 0.0f)};
    assert_int_equal(nn_optim_init(&o, h, 4, r, 2, &err), 0);
    memcpy(out, p0, sizeof p0);
    for (int s = 0; s < 3; s++) nn_optim_step(&o, out, grads[s], lr);
    assert_int_equal(o.t, 3);
    nn_optim_free(&o);
}

static void assert_close4(const float *got, const float *want, float tol) {
    for (int i = 0; i < 4; i++)
        if (fabsf(got[i] - want[i]) > tol * fmaxf(1.0f, fabsf(want[i])))
            fail_msg("param %d: got %.9g, want %.9g", i, (double)got[i], (double)want[i]);
}

static void test_against_pytorch(void **state) {
    (void)state;
    nn_hyper h;
    float p[4];
    nn_hyper_defaults(&h);
    h.weight_decay = 0.01f;
    h.momentum = 0.9f;

    h.optimizer = NN_SGD; /* torch.optim.SGD(lr=0.1, weight_decay=0.01) */
    three_steps(&h, 0.1f, p);
    assert_close4(p, (const float[]){0.463516474f, -1.2962538f, 2.00500011f, 0.0200000014f}, 1e-6f);

    h.optimizer = NN_MOMENTUM; /* SGD(lr=0.1, momentum=0.9, weight_decay=0.01) */
    three_steps(&h, 0.1f, p);
    assert_close4(p, (const float[]){0.44963038f, -1.29482949f, 1.93120003f, -0.0700000003f}, 1e-6f);

    h.optimizer = NN_NESTEROV; /* SGD(..., nesterov=True) */
    three_steps(&h, 0.1f, p);
    assert_close4(p, (const float[]){0.418227315f, -1.33663762f, 1.94307995f, -0.133000001f}, 1e-6f);

    h.optimizer = NN_ADAM; /* Adam(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01) */
    three_steps(&h, 0.01f, p);
    assert_close4(p, (const float[]){0.479927003f, -1.24893248f, 1.98126638f, 0.0881716684f}, 1e-6f);

    h.optimizer = NN_ADAMW; /* AdamW(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1) */
    h.beta1 = 0.8f;
    h.beta2 = 0.99f;
    h.adam_eps = 1e-6f;
    h.weight_decay = 0.1f;
    three_steps(&h, 0.01f, p);
    assert_close4(p, (const float[]){0.47925669f, -1.24695945f, 1.98219419f, 0.0879872516f}, 1e-6f);
}

/* Adam from the paper's formulas (bias-corrected moments), in double, with a per-layer l2 on top of the global
 * coupled weight decay; and a changing learning rate per step. */
static void test_adam_textbook(void **state) {
    (void)state;
    nn_hyper h;
    nn_hyper_defaults(&h);
    h.optimizer = NN_ADAM;
    h.weight_decay = 0.02f;
    const float layer_l2 = 0.5f;
    nn_optim o;
    dg_err err = {{0}};
    nn_optim_range r = nn_optim_range_make(&h, 1, 2, 1, layer_l2);
    assert_float_equal(r.l2, 0.52f, 1e-7);
    assert_float_equal(r.decay, 0.0f, 0);
    assert_int_equal(nn_optim_init(&o, &h, 4, &r, 1, &err), 0);
    assert_int_equal(o.n_ranges, 3); /* gap [0,1), the range [1,3), gap [3,4) */
    assert_int_equal(o.state_count, 8);
    float p[4];
    double pd[4], m[4] = {0}, v[4] = {0};
    memcpy(p, p0, sizeof p);
    for (int i = 0; i < 4; i++) pd[i] = p0[i];
    for (int s = 0; s < 3; s++) {
        float lr = 0.01f * (float)(s + 1);
        nn_optim_step(&o, p, grads[s], lr);
        for (int i = 0; i < 4; i++) {
            double g = grads[s][i] + ((i == 1 || i == 2) ? 0.52 * pd[i] : 0.0);
            m[i] = 0.9 * m[i] + 0.1 * g;
            v[i] = 0.999 * v[i] + 0.001 * g * g;
            double mhat = m[i] / (1 - pow(0.9, s + 1)), vhat = v[i] / (1 - pow(0.999, s + 1));
            pd[i] -= lr * mhat / (sqrt(vhat) + 1e-8);
        }
    }
    for (int i = 0; i < 4; i++) assert_float_equal(p[i], pd[i], 2e-6);
    /* After 3 steps, each parameter moved about lr per step (Adam's step is ~lr when gradients keep sign). */
    assert_true(fabsf(p[0] - p0[0]) > 0.01f);
    /* Optimizer state is m then v, in the parameter layout. */
    for (int i = 0; i < 4; i++) {
        assert_float_equal(o.state[i], m[i], 1e-6);
        assert_float_equal(o.state[4 + i], v[i], 1e-7);
    }
    nn_optim_free(&o);
}

static void test_ranges(void **state) {
    (void)state;
    nn_hyper h;
    nn_hyper_defaults(&h);
    h.optimizer = NN_SGD;
    nn_optim o;
    dg_err err = {{0}};
    nn_optim_range bad[2] = {{0, 3, 0, 0}, {2, 2, 0, 0}};
    assert_int_equal(nn_optim_init(&o, &h, 4, bad, 2, &err), -1);
    assert_non_null(strstr(err.msg, "overlaps"));
    nn_optim_range out[1] = {{3, 2, 0, 0}};
    assert_int_equal(nn_optim_init(&o, &h, 4, out, 1, &err), -1);
    /* No ranges at all: everything updated, no decay. */
    assert_int_equal(nn_optim_init(&o, &h, 4, NULL, 0, &err), 0);
    assert_null(o.state);
    float p[4];
    memcpy(p, p0, sizeof p);
    nn_optim_step(&o, p, grads[0], 0.5f);
    for (int i = 0; i < 4; i++) assert_float_equal(p[i], p0[i] - 0.5f * grads[0][i], 1e-7);
    nn_optim_free(&o);
    /* Decay flags: a bias (decay 0) gets neither l2 nor AdamW decay, whatever the layer says. */
    h.optimizer = NN_ADAMW;
    h.weight_decay = 0.3f;
    nn_optim_range b = nn_optim_range_make(&h, 0, 10, 0, 0.7f);
    assert_float_equal(b.l2, 0.0f, 0);
    assert_float_equal(b.decay, 0.0f, 0);
    nn_optim_range w = nn_optim_range_make(&h, 0, 10, 1, 0.7f);
    assert_float_equal(w.l2, 0.7f, 0);
    assert_float_equal(w.decay, 0.3f, 0);
}

/* Big vector, 1 thread vs 2 threads: bit-identical. */
static void test_thread_independent(void **state) {
    (void)state;
    const size_t n = 200000;
    float *p1 = malloc(n * sizeof *p1), *p2 = malloc(n * sizeof *p2), *g = malloc(n * sizeof *g);
    assert_non_null(p1);
    assert_non_null(p2);
    assert_non_null(g);
    for (size_t i = 0; i < n; i++) {
        p1[i] = p2[i] = sinf((float)i);
        g[i] = cosf((float)i * 0.37f);
    }
    nn_hyper h;
    nn_hyper_defaults(&h);
    h.optimizer = NN_ADAMW;
    h.weight_decay = 0.01f;
    nn_optim_range r = nn_optim_range_make(&h, 1000, n - 2000, 1, 0.001f);
    nn_optim o1, o2;
    dg_err err = {{0}};
    assert_int_equal(nn_optim_init(&o1, &h, n, &r, 1, &err), 0);
    assert_int_equal(nn_optim_init(&o2, &h, n, &r, 1, &err), 0);
    omp_set_num_threads(1);
    for (int s = 0; s < 3; s++) nn_optim_step(&o1, p1, g, 1e-3f);
    omp_set_num_threads(2);
    for (int s = 0; s < 3; s++) nn_optim_step(&o2, p2, g, 1e-3f);
    assert_memory_equal(p1, p2, n * sizeof *p1);
    assert_memory_equal(o1.state, o2.state, o1.state_count * sizeof *o1.state);
    nn_optim_free(&o1);
    nn_optim_free(&o2);
    free(p1);
    free(p2);
    free(g);
}

static void test_schedules(void **state) {
    (void)state;
    nn_hyper h;
    nn_sched s;
    nn_hyper_defaults(&h);
    nn_sched_init(&s);
    h.lr = 0.1f;
    h.epochs = 10;
    h.schedule = NN_SCHED_CONSTANT;
    assert_float_equal(nn_sched_lr(&h, &s, 7, 3, 10), 0.1f, 0);
    h.schedule = NN_SCHED_STEP;
    h.gamma = 0.5f;
    h.step_epochs = 3;
    assert_float_equal(nn_sched_lr(&h, &s, 2, 9, 10), 0.1f, 1e-9);
    assert_float_equal(nn_sched_lr(&h, &s, 3, 0, 10), 0.05f, 1e-9);
    assert_float_equal(nn_sched_lr(&h, &s, 7, 0, 10), 0.025f, 1e-9);
    h.schedule = NN_SCHED_EXP;
    h.gamma = 0.95f;
    assert_float_equal(nn_sched_lr(&h, &s, 0, 5, 10), 0.1f, 1e-9);
    assert_float_equal(nn_sched_lr(&h, &s, 3, 5, 10), 0.1 * pow(0.95, 3), 1e-8);
    h.schedule = NN_SCHED_COSINE;
    h.min_lr = 0.01f;
    assert_float_equal(nn_sched_lr(&h, &s, 0, 0, 10), 0.1f, 1e-8);
    assert_float_equal(nn_sched_lr(&h, &s, 5, 0, 10), 0.055f, 1e-8);   /* half way */
    assert_float_equal(nn_sched_lr(&h, &s, 2, 5, 10), 0.01 + 0.09 * (1 + cos(M_PI_VALUE * 0.25)) / 2, 1e-8);
    /* OneCycleLR(max_lr=1.0, total_steps=20) from torch, stepped 20 times. */
    static const double onecycle[20] = {0.04,        0.131671843, 0.371671843, 0.668328157, 0.908328157,
                                        1,           0.987464006, 0.950484632, 0.890916178, 0.811745654,
                                        0.716943002, 0.611262022, 0.500002,    0.388741978, 0.283060998,
                                        0.188258346, 0.109087822, 0.049519368, 0.0125399938, 4e-06};
    h.schedule = NN_SCHED_ONECYCLE;
    h.max_lr = 1.0f;
    h.epochs = 4;
    for (int i = 0; i < 20; i++) assert_float_equal(nn_sched_lr(&h, &s, i / 5, i % 5, 5), onecycle[i], 1e-6);
    h.max_lr = 0; /* 10 x lr */
    assert_float_equal(nn_sched_lr(&h, &s, 0, 0, 5), 0.04f, 1e-8);
}

static void test_plateau(void **state) {
    (void)state;
    nn_hyper h;
    nn_sched s;
    nn_hyper_defaults(&h);
    nn_sched_init(&s);
    h.lr = 0.1f;
    h.schedule = NN_SCHED_PLATEAU;
    h.gamma = 0.5f;
    h.plateau_patience = 2;
    h.min_lr = 0.02f;
    /* ReduceLROnPlateau(mode='min', factor=0.5, patience=2, threshold=1e-4, min_lr=0.02) */
    static const double losses[] = {1.0, 0.9, 0.95, 0.91, 0.92, 0.8, 0.85, 0.85, 0.85, 0.7, 0.7, 0.7, 0.7};
    static const int reduced[] = {0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1};
    static const double lr_after[] = {0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.025, 0.02};
    for (size_t e = 0; e < sizeof losses / sizeof losses[0]; e++) {
        assert_int_equal(nn_sched_epoch_end(&h, &s, losses[e]), reduced[e]);
        assert_float_equal(nn_sched_lr(&h, &s, (int)e + 1, 0, 10), lr_after[e], 1e-8);
    }
    /* A loss that is better by less than the relative threshold 1e-4 does not count as an improvement. */
    nn_sched_init(&s);
    nn_sched_epoch_end(&h, &s, 1.0);
    nn_sched_epoch_end(&h, &s, 0.99995);
    assert_int_equal(s.bad_epochs, 1);
    assert_float_equal(s.best, 1.0, 0);
    /* Other schedules ignore validation losses. */
    h.schedule = NN_SCHED_EXP;
    nn_sched_init(&s);
    for (int i = 0; i < 10; i++) assert_int_equal(nn_sched_epoch_end(&h, &s, 5.0), 0);
    assert_float_equal(s.scale, 1.0, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_pytorch), cmocka_unit_test(test_adam_textbook),
        cmocka_unit_test(test_ranges),          cmocka_unit_test(test_thread_independent),
        cmocka_unit_test(test_schedules),       cmocka_unit_test(test_plateau),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
