/* Tests for nn/optim and nn/schedule: three steps of every optimizer against PyTorch (torch.optim.SGD/Adam/AdamW
 * with the same hyperparameters, decay only on the first two parameters), a textbook re-derivation of Adam, range
 * handling, thread independence, and every schedule (OneCycleLR and ReduceLROnPlateau against PyTorch). The
 * PyTorch numbers and the inputs they start from are in tests/fixtures/nn/optim_torch.h, written by
 * tests/nn/gen_optim.py. */
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
#include "fixtures/nn/optim_torch.h"
#include "testutil.h"

#define M_PI_VALUE 3.14159265358979323846

#define p0 torch_p0       /* (4) starting parameters */
#define grads torch_grads /* (3, 4) gradients of three steps */

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

/* Both sides are float32 runs of the same three updates in different operation orders (PyTorch fuses and orders
 * its element-wise ops its own way); a few float roundings of values up to 2 apart: rel 1e-6 (TU_REL_F32), and
 * abs 1e-6 for a parameter that ends near 0. */
static void assert_close4(const float *got, const float *want) {
    for (int i = 0; i < 4; i++)
        if (!tu_close(got[i], want[i], TU_REL_F32, 1e-6))
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
    assert_close4(p, torch_sgd);

    h.optimizer = NN_MOMENTUM; /* SGD(lr=0.1, momentum=0.9, weight_decay=0.01) */
    three_steps(&h, 0.1f, p);
    assert_close4(p, torch_momentum);

    h.optimizer = NN_NESTEROV; /* SGD(..., nesterov=True) */
    three_steps(&h, 0.1f, p);
    assert_close4(p, torch_nesterov);

    h.optimizer = NN_ADAM; /* Adam(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01) */
    three_steps(&h, 0.01f, p);
    assert_close4(p, torch_adam);

    h.optimizer = NN_ADAMW; /* AdamW(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1) */
    h.beta1 = 0.8f;
    h.beta2 = 0.99f;
    h.adam_eps = 1e-6f;
    h.weight_decay = 0.1f;
    three_steps(&h, 0.01f, p);
    assert_close4(p, torch_adamw);
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
    tu_assert_close(r.l2, 0.52, TU_REL_F32, 0); /* 0.02f + 0.5f in float */
    tu_assert_exact(r.decay, 0.0f);             /* Adam: no decoupled decay */
    assert_int_equal(nn_optim_init(&o, &h, 4, &r, 1, &err), 0);
    assert_int_equal(o.n_ranges, 3); /* gap [0,1), the range [1,3), gap [3,4) */
    assert_int_equal(o.state_count, 8);
    float p[4];
    double pd[4], m[4] = {0}, v[4] = {0};
    memcpy(p, p0, sizeof p);
    for (int i = 0; i < 4; i++) pd[i] = p0[i];
    /* the hyperparameters as the optimizer holds them (floats: 1 - 0.999f is 1.3e-5 relative from 0.001) */
    const double b1 = h.beta1, b2 = h.beta2, eps = h.adam_eps, l2 = r.l2;
    for (int s = 0; s < 3; s++) {
        float lr = 0.01f * (float)(s + 1);
        nn_optim_step(&o, p, grads[s], lr);
        for (int i = 0; i < 4; i++) {
            double g = grads[s][i] + ((i == 1 || i == 2) ? l2 * pd[i] : 0.0);
            m[i] = b1 * m[i] + (1 - b1) * g;
            v[i] = b2 * v[i] + (1 - b2) * g * g;
            double mhat = m[i] / (1 - pow(b1, s + 1)), vhat = v[i] / (1 - pow(b2, s + 1));
            pd[i] -= lr * mhat / (sqrt(vhat) + eps);
        }
    }
    /* float32 against double: each of the 3 steps rounds a handful of float operations (6e-8 relative each) on m,
     * v and the parameters: rel TU_REL_F32 (about 8 of them), abs 1e-9 where m or v is near 0 */
    for (int i = 0; i < 4; i++) tu_assert_close(p[i], pd[i], TU_REL_F32, 1e-9);
    /* After 3 steps, each parameter moved about lr per step (Adam's step is ~lr when gradients keep sign). */
    assert_true(fabsf(p[0] - p0[0]) > 0.01f);
    /* Optimizer state is m then v, in the parameter layout. */
    for (int i = 0; i < 4; i++) {
        tu_assert_close(o.state[i], m[i], TU_REL_F32, 1e-9);
        tu_assert_close(o.state[4 + i], v[i], TU_REL_F32, 1e-9);
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
    /* 0.5 g is exact in float, so p - 0.5 g rounds once, the same with or without FMA: exact */
    for (int i = 0; i < 4; i++) tu_assert_exact(p[i], p0[i] - 0.5f * grads[0][i]);
    nn_optim_free(&o);
    /* Decay flags: a bias (decay 0) gets neither l2 nor AdamW decay, whatever the layer says. */
    h.optimizer = NN_ADAMW;
    h.weight_decay = 0.3f;
    nn_optim_range b = nn_optim_range_make(&h, 0, 10, 0, 0.7f);
    tu_assert_exact(b.l2, 0.0f);
    tu_assert_exact(b.decay, 0.0f);
    nn_optim_range w = nn_optim_range_make(&h, 0, 10, 1, 0.7f);
    tu_assert_exact(w.l2, 0.7f);    /* AdamW: the layer's l2 alone (weight decay is decoupled), copied */
    tu_assert_exact(w.decay, 0.3f); /* copied from the spec */
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
    /* Schedules compute in double and round once to float: rel TU_REL_F32 against a double formula (the lr 0.1f
     * itself is 1.5e-9 relative from 0.1). */
    tu_assert_exact(nn_sched_lr(&h, &s, 7, 3, 10), 0.1f); /* the spec's lr, unchanged */
    h.schedule = NN_SCHED_STEP;
    h.gamma = 0.5f;
    h.step_epochs = 3;
    tu_assert_close(nn_sched_lr(&h, &s, 2, 9, 10), 0.1f, TU_REL_F32, 0);
    tu_assert_close(nn_sched_lr(&h, &s, 3, 0, 10), 0.05f, TU_REL_F32, 0);
    tu_assert_close(nn_sched_lr(&h, &s, 7, 0, 10), 0.025f, TU_REL_F32, 0);
    h.schedule = NN_SCHED_EXP;
    h.gamma = 0.95f;
    tu_assert_close(nn_sched_lr(&h, &s, 0, 5, 10), 0.1f, TU_REL_F32, 0);
    tu_assert_close(nn_sched_lr(&h, &s, 3, 5, 10), 0.1 * pow(0.95, 3), TU_REL_F32, 0);
    h.schedule = NN_SCHED_COSINE;
    h.min_lr = 0.01f;
    tu_assert_close(nn_sched_lr(&h, &s, 0, 0, 10), 0.1f, TU_REL_F32, 0);
    tu_assert_close(nn_sched_lr(&h, &s, 5, 0, 10), 0.055f, TU_REL_F32, 0); /* half way */
    tu_assert_close(nn_sched_lr(&h, &s, 2, 5, 10), 0.01 + 0.09 * (1 + cos(M_PI_VALUE * 0.25)) / 2, TU_REL_F32, 0);
    /* OneCycleLR(max_lr=1.0, total_steps=20) from torch, stepped 20 times. */
    h.schedule = NN_SCHED_ONECYCLE;
    h.max_lr = 1.0f;
    h.epochs = 4;
    for (int i = 0; i < 20; i++)
        tu_assert_close(nn_sched_lr(&h, &s, i / 5, i % 5, 5), torch_onecycle[i], TU_REL_F32, 0);
    h.max_lr = 0; /* 10 x lr */
    tu_assert_close(nn_sched_lr(&h, &s, 0, 0, 5), 0.04f, TU_REL_F32, 0);
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
    for (size_t e = 0; e < sizeof torch_plateau_losses / sizeof torch_plateau_losses[0]; e++) {
        assert_int_equal(nn_sched_epoch_end(&h, &s, torch_plateau_losses[e]), torch_plateau_reduced[e]);
        tu_assert_close(nn_sched_lr(&h, &s, (int)e + 1, 0, 10), torch_plateau_lr_after[e], TU_REL_F32, 0);
    }
    /* A loss that is better by less than the relative threshold 1e-4 does not count as an improvement. */
    nn_sched_init(&s);
    nn_sched_epoch_end(&h, &s, 1.0);
    nn_sched_epoch_end(&h, &s, 0.99995);
    assert_int_equal(s.bad_epochs, 1);
    tu_assert_exact(s.best, 1.0); /* the first loss, kept */
    /* Other schedules ignore validation losses. */
    h.schedule = NN_SCHED_EXP;
    nn_sched_init(&s);
    for (int i = 0; i < 10; i++) assert_int_equal(nn_sched_epoch_end(&h, &s, 5.0), 0);
    tu_assert_exact(s.scale, 1.0); /* never scaled */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_pytorch), cmocka_unit_test(test_adam_textbook),
        cmocka_unit_test(test_ranges),          cmocka_unit_test(test_thread_independent),
        cmocka_unit_test(test_schedules),       cmocka_unit_test(test_plateau),
    };
    return tu_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
