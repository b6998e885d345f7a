/* Tests for the batch-norm kernels of nn/layers: the AVX2 build of their row loops (wider vectors, no FMA) gives the
 * same bits as the portable build (DIGITS_NO_AVX2=1) for the statistics, the training and inference forward and
 * the backward (with and without batch statistics, with and without the fused bias gradient of the layer before,
 * for each activation), for channel counts below, at and above a vector of 8 and row counts that leave partial
 * blocks. (Gradients against finite differences: tests/nn/test_layers.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layers.h"
#include "core/dg_rng.h"
#include "testutil.h"

static float *randv(size_t n, uint32_t key, float lo, float hi) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    dg_rng r = dg_rng_make(77, DG_RNG_USER, 0, key);
    for (size_t i = 0; i < n; i++) v[i] = dg_rng_range(&r, lo, hi);
    return v;
}

/* Everything one path computes for (N, C) rows x, output gradient g. */
typedef struct bn_out {
    double stats[2 * 128];
    float y[4096 * 8], mean[128], invstd[128], rm[128], rv[128], yeval[4096 * 8], emean[128], einvstd[128];
    float dx[5][4096 * 8], dgamma[5][128], dbeta[5][128], dbias[5][128];
} bn_out;

static void run(bn_out *o, const float *x, const float *g, const float *gamma, const float *beta, size_t N, int C,
                int portable) {
    tu_env no_avx2 = {0};
    if (portable) tu_env_set(&no_avx2, "DIGITS_NO_AVX2", "1");
    float *scratch = malloc(sizeof(float) * nn_batchnorm_scratch(N, C));
    memset(o, 0, sizeof *o);
    for (int c = 0; c < C; c++) o->rm[c] = 0.1f * (float)c, o->rv[c] = 1.0f + 0.01f * (float)c;
    nn_batchnorm_stats(o->stats, scratch, x, N, C);
    nn_batchnorm_forward_train(o->y, o->mean, o->invstd, o->rm, o->rv, scratch, o->stats, x, gamma, beta, N, C,
                               0.1f, 1e-5f);
    nn_batchnorm_forward_eval(o->yeval, o->emean, o->einvstd, scratch, x, gamma, beta, o->rm, o->rv, N, C, 1e-5f);
    static const nn_act acts[5] = {NN_ACT_NONE, NN_ACT_RELU, NN_ACT_LEAKY, NN_ACT_TANH, NN_ACT_SIGMOID};
    for (int a = 0; a < 5; a++) {
        memcpy(o->dx[a], g, sizeof(float) * N * C); /* in place, as nn/net calls it */
        nn_batchnorm_backward(o->dx[a], o->dgamma[a], o->dbeta[a], a % 2 ? o->dbias[a] : NULL, scratch, o->dx[a], x,
                              o->mean, o->invstd, gamma, N, C, a != 3, acts[a], 0.1f);
    }
    free(scratch);
    if (portable) tu_env_restore(&no_avx2);
}

static void bn_case(size_t N, int C) {
    assert_true(N * C <= 4096 * 8 && C <= 128);
    /* x in (-0.5, 2): both signs, so the ReLU-family derivatives take both branches */
    float *x = randv(N * C, 1, -0.5f, 2.0f), *g = randv(N * C, 2, -1.0f, 1.0f);
    float *gamma = randv((size_t)C, 3, 0.5f, 1.5f), *beta = randv((size_t)C, 4, -0.5f, 0.5f);
    bn_out *a = malloc(sizeof *a), *p = malloc(sizeof *p);
    run(a, x, g, gamma, beta, N, C, 0);
    run(p, x, g, gamma, beta, N, C, 1);
    assert_memory_equal(a->stats, p->stats, sizeof(double) * 2 * C);
    assert_memory_equal(a->y, p->y, sizeof(float) * N * C);
    assert_memory_equal(a->yeval, p->yeval, sizeof(float) * N * C);
    assert_memory_equal(a->rm, p->rm, sizeof(float) * C);
    assert_memory_equal(a->rv, p->rv, sizeof(float) * C);
    for (int k = 0; k < 5; k++) {
        assert_memory_equal(a->dx[k], p->dx[k], sizeof(float) * N * C);
        assert_memory_equal(a->dgamma[k], p->dgamma[k], sizeof(float) * C);
        assert_memory_equal(a->dbeta[k], p->dbeta[k], sizeof(float) * C);
        assert_memory_equal(a->dbias[k], p->dbias[k], sizeof(float) * C);
    }
    free(x), free(g), free(gamma), free(beta), free(a), free(p);
}

static void test_batchnorm_avx2_vs_portable(void **state) {
    (void)state;
    bn_case(1000, 32);  /* partial blocks of 256 and 64 rows */
    bn_case(512, 64);
    bn_case(200, 128);  /* fewer rows than the apply pass parallelizes */
    bn_case(4096, 8);   /* one vector */
    bn_case(777, 13);   /* a vector and a remainder */
    bn_case(301, 3);    /* below a vector */
    bn_case(5, 16);     /* fewer rows than groups */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batchnorm_avx2_vs_portable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
