/* Tests for the space-to-depth Winograd path of nn/layers_conv.c (nnk_s2d_*), which takes the input
 * and weight gradients of stride-2 5x5 and 6x6 convolutions with pad 2: against the naive reference (forward and
 * batch statistics too, which stay on the direct kernels), for deotte's two strided layers and odd shapes and batch
 * sizes, and 1 vs 2 threads bit for bit.
 *
 * Tolerance: each value within 1e-5 sqrt(n) of the reference (double accumulation), n the number of products
 * summed for it, as for the direct kernels in test_layers.c: Winograd F(2x2, 3x3) rounds in its transforms too, but
 * on these inputs its worst error measured at most 0.3 of that bound (a wrong tap or pixel is off by ~0.1-1). On a CPU
 * without AVX2 (or with DIGITS_NO_AVX2=1) the same checks run on the portable path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layers.h"
#include "core/dg_rng.h"
#include "testutil.h"

static float *randv(size_t n, float lo, float hi, uint32_t key) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    dg_rng r = dg_rng_make(97, DG_RNG_USER, 0, key);
    for (size_t i = 0; i < n; i++) v[i] = dg_rng_range(&r, lo, hi);
    return v;
}

/* max_i |a_i - b_i| <= tol, else fail naming what. */
static void near(const char *what, const float *a, const float *b, size_t n, double tol) {
    double worst = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= worst)) worst = e, at = i;
    }
    if (!(worst <= tol)) fail_msg("%s: |%g - %g| = %g at %zu > %g", what, a[at], b[at], worst, at, tol);
}

/* One layer's forward and backward with `threads` threads; everything written into o (out, stats, din, dw, db). */
typedef struct run_out {
    float *out, *din, *dw, *db;
    double *stats;
} run_out;

static void run(run_out *o, const float *in, const float *w, const float *bias, const float *dout, int B,
                const nn_conv_dims *d, nn_act act, int threads) {
    size_t out_n = (size_t)B * d->OH * d->OW * d->OC;
    float *scratch = malloc(sizeof(float) * nn_conv2d_scratch(d, B)), *g = malloc(sizeof(float) * out_n);
    int keep = omp_get_max_threads();
    omp_set_num_threads(threads);
    nn_conv2d_forward(o->out, o->stats, scratch, in, w, bias, B, d, act, 0.0f);
    memcpy(g, dout, sizeof(float) * out_n);
    nn_conv2d_backward(o->din, o->dw, o->db, scratch, g, o->out, in, w, B, d, act, 0.0f);
    omp_set_num_threads(keep);
    free(scratch), free(g);
}

static run_out run_alloc(int B, const nn_conv_dims *d) {
    run_out o;
    o.out = malloc(sizeof(float) * B * d->OH * d->OW * d->OC);
    o.din = malloc(sizeof(float) * B * d->H * d->W * d->C);
    o.dw = malloc(sizeof(float) * d->OC * d->KH * d->KW * d->C);
    o.db = malloc(sizeof(float) * d->OC);
    o.stats = malloc(sizeof(double) * 2 * d->OC);
    return o;
}

static void run_free(run_out *o) { free(o->out), free(o->din), free(o->dw), free(o->db), free(o->stats); }

static void s2d_case(int B, int H, int W, int C, int OC, int K) {
    nn_conv_dims d = {.H = H, .W = W, .C = C, .OC = OC, .KH = K, .KW = K, .stride = 2, .pad = 2};
    assert_int_equal(nn_conv_dims_finish(&d), 0);
    const size_t in_n = (size_t)B * H * W * C, out_n = (size_t)B * d.OH * d.OW * OC, wn = (size_t)OC * K * K * C;
    float *in = randv(in_n, -1, 1, 1), *w = randv(wn, -1, 1, 2), *bias = randv((size_t)OC, -1, 1, 3);
    float *dout = randv(out_n, -1, 1, 4);
    /* the reference */
    float *ref = malloc(sizeof(float) * out_n), *rdin = calloc(in_n, sizeof(float));
    float *rdw = calloc(wn, sizeof(float)), *rdb = calloc((size_t)OC, sizeof(float));
    nn_conv2d_forward_ref(ref, in, w, bias, B, &d);
    nn_conv2d_backward_ref(rdin, rdw, rdb, dout, in, w, B, &d);
    run_out o = run_alloc(B, &d), o1 = run_alloc(B, &d);
    run(&o, in, w, bias, dout, B, &d, NN_ACT_NONE, 2);
    const double taps = (double)K * K * C, pix = (double)B * d.OH * d.OW;
    near("forward", o.out, ref, out_n, 1e-5 * sqrt(taps));
    for (int c = 0; c < OC; c++) { /* batch statistics of the output */
        double s = 0.0, q = 0.0;
        for (size_t r = 0; r < out_n / OC; r++) {
            s += ref[r * OC + c];
            q += (double)ref[r * OC + c] * ref[r * OC + c];
        }
        if (!(fabs(o.stats[c] - s) <= 1e-4 * (fabs(s) + pix) && fabs(o.stats[OC + c] - q) <= 1e-4 * q + 1e-6))
            fail_msg("stats[%d]: %g %g, reference %g %g", c, o.stats[c], o.stats[OC + c], s, q);
    }
    near("input gradient", o.din, rdin, in_n, 1e-5 * sqrt((double)OC * 9));
    near("weight gradient", o.dw, rdw, wn, 1e-5 * sqrt(pix));
    near("bias gradient", o.db, rdb, (size_t)OC, 1e-5 * sqrt(pix));
    double mx = 0.0; /* not vacuous */
    for (size_t i = 0; i < in_n; i++) mx = fmax(mx, fabs(o.din[i]));
    for (size_t i = 0; i < wn; i++) mx = fmax(mx, fabs(o.dw[i]));
    assert_true(mx > 0.1);
    /* ReLU fused; 1 thread and 2 threads give the same bits */
    run(&o, in, w, bias, dout, B, &d, NN_ACT_RELU, 2);
    run(&o1, in, w, bias, dout, B, &d, NN_ACT_RELU, 1);
    assert_memory_equal(o.out, o1.out, sizeof(float) * out_n);
    assert_memory_equal(o.stats, o1.stats, sizeof(double) * 2 * OC);
    assert_memory_equal(o.din, o1.din, sizeof(float) * in_n);
    assert_memory_equal(o.dw, o1.dw, sizeof(float) * wn);
    assert_memory_equal(o.db, o1.db, sizeof(float) * OC);
    /* without the input gradient (a network's first layer): the same weight and bias gradients */
    float *scratch = malloc(sizeof(float) * nn_conv2d_scratch(&d, B)), *g = malloc(sizeof(float) * out_n);
    memcpy(g, dout, sizeof(float) * out_n);
    nn_conv2d_backward(NULL, o1.dw, o1.db, scratch, g, o.out, in, w, B, &d, NN_ACT_RELU, 0.0f);
    assert_memory_equal(o.dw, o1.dw, sizeof(float) * wn);
    assert_memory_equal(o.db, o1.db, sizeof(float) * OC);
    free(scratch), free(g);
    run_free(&o), run_free(&o1);
    free(in), free(w), free(bias), free(dout), free(ref), free(rdin), free(rdw), free(rdb);
}

static void test_deotte_layers(void **state) {
    (void)state;
    s2d_case(1, 24, 24, 32, 32, 5);  /* 32C5S2: 24x24x32 -> 12x12x32, batch 1 */
    s2d_case(11, 24, 24, 32, 32, 5); /* odd batch over 8 groups */
    s2d_case(1, 8, 8, 64, 64, 5);    /* 64C5S2: 8x8x64 -> 4x4x64 */
    s2d_case(13, 8, 8, 64, 64, 5);   /* several images per chunk, uneven groups */
}

static void test_other_shapes(void **state) {
    (void)state;
    s2d_case(3, 7, 9, 4, 16, 5);    /* odd sizes (Winograd tiles past the output), 4 input channels */
    s2d_case(5, 12, 10, 16, 48, 5); /* H != W, three output-channel blocks */
    s2d_case(2, 10, 10, 8, 16, 6);  /* 6x6: no kernel taps dropped */
    s2d_case(9, 5, 5, 32, 16, 5);   /* output 3x3: one Winograd tile row past the output */
}

/* The same checks on the portable path. */
static void test_portable(void **state) {
    (void)state;
    tu_env no_avx2;
    tu_env_set(&no_avx2, "DIGITS_NO_AVX2", "1");
    s2d_case(3, 24, 24, 32, 32, 5);
    s2d_case(5, 8, 8, 64, 64, 5);
    tu_env_restore(&no_avx2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deotte_layers),
        cmocka_unit_test(test_other_shapes),
        cmocka_unit_test(test_portable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
