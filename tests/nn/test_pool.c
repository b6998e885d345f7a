/* Tests for the pooling kernels of nn/layers: the AVX2 average pooling gives the same bits as the portable loops
 * (DIGITS_NO_AVX2=1), and both match a naive reference, for channel counts below, at and above a vector of 8,
 * windows that tile, overlap or leave gaps, and sizes that leave rows and columns uncovered; nothing is written
 * past the outputs (the AVX2 kernels store whole vectors that run into the next pixel).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layers.h"
#include "core/dg_rng.h"
#include "testutil.h"

#define GUARD 16
#define SENTINEL -777.0f

static float *randv(size_t n, uint32_t key) {
    float *v = malloc(sizeof(float) * (n + GUARD));
    dg_rng r = dg_rng_make(55, DG_RNG_USER, 0, key);
    for (size_t i = 0; i < n; i++) v[i] = dg_rng_range(&r, -1.0f, 1.0f);
    for (size_t i = n; i < n + GUARD; i++) v[i] = SENTINEL;
    return v;
}

static float *guarded(size_t n) {
    float *v = malloc(sizeof(float) * (n + GUARD));
    for (size_t i = 0; i < n + GUARD; i++) v[i] = SENTINEL;
    return v;
}

static void check_guard(const float *v, size_t n) {
    for (size_t i = n; i < n + GUARD; i++)
        if (v[i] != SENTINEL) fail_msg("wrote past the end (element %zu of %zu)", i, n);
}

static void pool_case(int B, int H, int W, int C, int size, int stride) {
    const int OH = (H - size) / stride + 1, OW = (W - size) / stride + 1;
    const size_t in_n = (size_t)B * H * W * C, out_n = (size_t)B * OH * OW * C;
    float *in = randv(in_n, 1), *dout = randv(out_n, 2);
    float *out = guarded(out_n), *out_p = guarded(out_n), *din = guarded(in_n), *din_p = guarded(in_n);
    nn_avgpool_forward(out, in, B, H, W, C, size, stride, OH, OW);
    nn_avgpool_backward(din, dout, B, H, W, C, size, stride, OH, OW);
    tu_env no_avx2;
    tu_env_set(&no_avx2, "DIGITS_NO_AVX2", "1");
    nn_avgpool_forward(out_p, in, B, H, W, C, size, stride, OH, OW);
    nn_avgpool_backward(din_p, dout, B, H, W, C, size, stride, OH, OW);
    tu_env_restore(&no_avx2);
    check_guard(out, out_n), check_guard(din, in_n);
    assert_memory_equal(out, out_p, sizeof(float) * out_n);
    assert_memory_equal(din, din_p, sizeof(float) * in_n);
    /* naive reference: means of windows; scatter of gradient / size^2 */
    double *rdin = calloc(in_n, sizeof(double));
    const double inv = 1.0 / (size * size);
    for (int b = 0; b < B; b++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                for (int c = 0; c < C; c++) {
                    double s = 0.0;
                    size_t o = (((size_t)b * OH + oh) * OW + ow) * C + c;
                    for (int i = 0; i < size; i++)
                        for (int j = 0; j < size; j++) {
                            size_t x = (((size_t)b * H + oh * stride + i) * W + ow * stride + j) * C + c;
                            s += in[x];
                            rdin[x] += dout[o] * inv;
                        }
                    if (fabs(out[o] - s * inv) > 1e-6) fail_msg("out[%zu] = %g, reference %g", o, out[o], s * inv);
                }
    for (size_t i = 0; i < in_n; i++)
        if (fabs(din[i] - rdin[i]) > 1e-6) fail_msg("din[%zu] = %g, reference %g", i, din[i], rdin[i]);
    free(in), free(dout), free(out), free(out_p), free(din), free(din_p), free(rdin);
}

static void test_avgpool_avx2_vs_portable(void **state) {
    (void)state;
    pool_case(3, 28, 28, 6, 2, 2);  /* lenet5 S2 */
    pool_case(3, 10, 10, 16, 2, 2); /* lenet5 S4 */
    pool_case(2, 7, 9, 1, 2, 2);    /* one channel; odd sizes leave a row and a column out */
    pool_case(2, 8, 8, 3, 3, 2);    /* overlapping windows */
    pool_case(2, 9, 9, 12, 2, 3);   /* gaps between windows; 12 channels: a full and a partial vector */
    pool_case(1, 4, 4, 8, 4, 4);    /* one window */
    pool_case(4, 6, 5, 5, 1, 1);    /* 1x1: a copy */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avgpool_avx2_vs_portable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
