/* Tests for nn/conv_small (through nn_conv2d_forward/backward): convolutions whose channel counts are not
 * multiples of 16, on the AVX2 path against the portable im2col + OpenBLAS path (DIGITS_NO_AVX2=1) and the naive
 * reference, with fused activations and batch statistics; the AVX2 path bitwise the same on 1 and 2 threads and
 * writing nothing past its outputs (its 8-lane stores run past OC inside a chunk); gradients against central
 * finite differences. One-channel stride-1 cases cover the planar forward. On a CPU without AVX2 both runs take
 * the portable path and the comparisons still hold.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layers.h"
#include "core/dg_rng.h"
#include "testutil.h"

#define GUARD 32          /* floats past each output buffer that must stay untouched */
#define SENTINEL 12345.0f

static float *randv(size_t n, float lo, float hi, uint32_t key) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    dg_rng r = dg_rng_make(77, DG_RNG_USER, 0, key);
    for (size_t i = 0; i < n; i++) v[i] = dg_rng_range(&r, lo, hi);
    return v;
}

/* n floats followed by GUARD sentinels. */
static float *guarded(size_t n) {
    float *v = malloc(sizeof(float) * (n + GUARD));
    for (size_t i = 0; i < n + GUARD; i++) v[i] = SENTINEL;
    return v;
}

static void check_guard(const float *v, size_t n, const char *what) {
    for (size_t i = n; i < n + GUARD; i++)
        if (v[i] != SENTINEL) fail_msg("%s: wrote past its end (element %zu of %zu)", what, i, n);
}

/* One forward and backward pass: out, stats (2, OC), din, dw, db. */
typedef struct conv_run {
    float *out, *din, *dw, *db;
    double *stats;
} conv_run;

static conv_run conv_run_make(const nn_conv_dims *d, int B) {
    size_t out_n = (size_t)B * d->OH * d->OW * d->OC, in_n = (size_t)B * d->H * d->W * d->C;
    size_t wn = (size_t)d->OC * d->KH * d->KW * d->C;
    conv_run r = {.out = guarded(out_n), .din = guarded(in_n), .dw = guarded(wn), .db = guarded((size_t)d->OC),
                  .stats = malloc(sizeof(double) * 2 * d->OC)};
    return r;
}

static void conv_run_free(conv_run *r) { free(r->out), free(r->din), free(r->dw), free(r->db), free(r->stats); }

static void conv_pass(conv_run *r, const float *in, const float *w, const float *bias, const float *dout0, int B,
                      const nn_conv_dims *d, nn_act act, int threads, int portable) {
    size_t out_n = (size_t)B * d->OH * d->OW * d->OC;
    float *scratch = malloc(sizeof(float) * nn_conv2d_scratch(d, B));
    float *dout = malloc(sizeof(float) * out_n);
    memcpy(dout, dout0, sizeof(float) * out_n);
    int keep = omp_get_max_threads();
    omp_set_num_threads(threads);
    tu_env no_avx2 = {0};
    if (portable) tu_env_set(&no_avx2, "DIGITS_NO_AVX2", "1");
    nn_conv2d_forward(r->out, r->stats, scratch, in, w, bias, B, d, act, 0.1f);
    nn_conv2d_backward(r->din, r->dw, r->db, scratch, dout, r->out, in, w, B, d, act, 0.1f);
    if (portable) tu_env_restore(&no_avx2);
    omp_set_num_threads(keep);
    free(scratch), free(dout);
}

static void expect_close(const float *a, const float *b, size_t n, double tol, const char *what,
                         const nn_conv_dims *d) {
    for (size_t i = 0; i < n; i++)
        if (!(fabs(a[i] - b[i]) <= tol))
            fail_msg("%s (%dx%dx%d OC%d K%d s%d p%d): [%zu] = %.8g, portable %.8g", what, d->H, d->W, d->C, d->OC,
                     d->KH, d->stride, d->pad, i, a[i], b[i]);
}

static void small_case(int B, int H, int W, int C, int OC, int K, int stride, int pad, nn_act act) {
    nn_conv_dims d = {.H = H, .W = W, .C = C, .OC = OC, .KH = K, .KW = K, .stride = stride, .pad = pad};
    assert_int_equal(nn_conv_dims_finish(&d), 0);
    const size_t in_n = (size_t)B * H * W * C, out_n = (size_t)B * d.OH * d.OW * OC, wn = (size_t)OC * K * K * C;
    const size_t rows = (size_t)B * d.OH * d.OW;
    float *in = randv(in_n, -1, 1, 1), *w = randv(wn, -0.5f, 0.5f, 2), *bias = randv((size_t)OC, -1, 1, 3);
    float *dout = randv(out_n, -1, 1, 4);
    conv_run a1 = conv_run_make(&d, B), a2 = conv_run_make(&d, B), p = conv_run_make(&d, B);
    conv_pass(&a1, in, w, bias, dout, B, &d, act, 1, 0);
    conv_pass(&a2, in, w, bias, dout, B, &d, act, 2, 0);
    conv_pass(&p, in, w, bias, dout, B, &d, act, 2, 1);
    /* nothing written past the outputs */
    check_guard(a1.out, out_n, "out"), check_guard(a1.din, in_n, "din"), check_guard(a1.dw, wn, "dw");
    check_guard(a1.db, (size_t)OC, "db");
    /* the same bits on 1 and 2 threads */
    assert_memory_equal(a1.out, a2.out, sizeof(float) * out_n);
    assert_memory_equal(a1.stats, a2.stats, sizeof(double) * 2 * OC);
    assert_memory_equal(a1.din, a2.din, sizeof(float) * in_n);
    assert_memory_equal(a1.dw, a2.dw, sizeof(float) * wn);
    assert_memory_equal(a1.db, a2.db, sizeof(float) * OC);
    /* against the portable path: float rounding of sums of K*K*C (forward, dX: OC*K*K) or rows (dW) terms */
    double kk = (double)K * K;
    expect_close(a1.out, p.out, out_n, 2e-6 * sqrt(kk * C), "out", &d);
    for (int c = 0; c < 2 * OC; c++)
        if (!(fabs(a1.stats[c] - p.stats[c]) <= 1e-5 * (fabs(p.stats[c]) + 1.0)))
            fail_msg("stats[%d] = %.10g, portable %.10g", c, a1.stats[c], p.stats[c]);
    expect_close(a1.din, p.din, in_n, 2e-6 * sqrt(kk * OC), "din", &d);
    expect_close(a1.dw, p.dw, wn, 4e-6 * sqrt((double)rows), "dw", &d);
    expect_close(a1.db, p.db, (size_t)OC, 4e-6 * sqrt((double)rows), "db", &d);
    /* without an activation, both against the naive reference */
    if (act == NN_ACT_NONE) {
        float *ref = malloc(sizeof(float) * out_n);
        float *rdin = calloc(in_n, sizeof(float)), *rdw = calloc(wn, sizeof(float)), *rdb = calloc(OC, sizeof(float));
        nn_conv2d_forward_ref(ref, in, w, bias, B, &d);
        nn_conv2d_backward_ref(rdin, rdw, rdb, dout, in, w, B, &d);
        expect_close(a1.out, ref, out_n, 2e-6 * sqrt(kk * C), "out vs reference", &d);
        expect_close(a1.din, rdin, in_n, 2e-6 * sqrt(kk * OC), "din vs reference", &d);
        expect_close(a1.dw, rdw, wn, 4e-6 * sqrt((double)rows), "dw vs reference", &d);
        expect_close(a1.db, rdb, (size_t)OC, 4e-6 * sqrt((double)rows), "db vs reference", &d);
        free(ref), free(rdin), free(rdw), free(rdb);
    }
    /* not vacuous */
    double mx = 0.0, mi = 0.0;
    for (size_t i = 0; i < wn; i++) mx = fmax(mx, fabs(a1.dw[i]));
    for (size_t i = 0; i < in_n; i++) mi = fmax(mi, fabs(a1.din[i]));
    assert_true(mx > 0.1 && mi > 0.01);
    conv_run_free(&a1), conv_run_free(&a2), conv_run_free(&p);
    free(in), free(w), free(bias), free(dout);
}

static void test_small_vs_portable(void **state) {
    (void)state;
    small_case(10, 28, 28, 1, 6, 5, 1, 2, NN_ACT_TANH);  /* lenet5 C1: 1 -> 6, pad 2 */
    small_case(10, 14, 14, 6, 16, 5, 1, 0, NN_ACT_TANH); /* lenet5 C3: 6 -> 16 (16-wide forward, row segments) */
    small_case(9, 12, 12, 6, 6, 5, 1, 2, NN_ACT_NONE);
    small_case(7, 9, 9, 3, 10, 3, 2, 1, NN_ACT_NONE);    /* stride 2, two 8-wide blocks, the second partial */
    small_case(5, 11, 10, 6, 6, 5, 2, 2, NN_ACT_RELU);   /* stride 2, pad 2, H != W */
    small_case(6, 8, 8, 1, 10, 3, 1, 0, NN_ACT_SIGMOID);
    small_case(4, 10, 10, 3, 16, 3, 1, 1, NN_ACT_NONE);  /* C = 3: row segments of 9 floats */
    small_case(3, 7, 7, 16, 6, 3, 1, 1, NN_ACT_LEAKY);   /* C = 16, OC = 6: 16-wide input gradient */
    small_case(8, 6, 6, 6, 20, 1, 1, 0, NN_ACT_NONE);    /* 1x1, OC = 20: blocks of 8, 8, 4 */
    small_case(3, 9, 9, 1, 3, 5, 3, 1, NN_ACT_NONE);     /* OC < 8: an 8-lane store covers three pixels */
    small_case(1, 5, 5, 2, 1, 3, 1, 1, NN_ACT_TANH);     /* one image, one filter */
    small_case(17, 4, 4, 6, 6, 4, 1, 0, NN_ACT_NONE);    /* 1x1 output, 17 images in 8 groups */
    small_case(2, 6, 6, 24, 10, 3, 1, 1, NN_ACT_NONE);   /* C = 24: segments of 9 vectors */
    /* one input channel, stride 1: the planar kernels */
    small_case(5, 7, 9, 1, 4, 3, 1, 1, NN_ACT_RELU);     /* 4 channels, rows of 9 pixels */
    small_case(3, 12, 20, 1, 8, 5, 1, 0, NN_ACT_TANH);   /* 8 channels (one vector of pixels a tile) */
    small_case(4, 5, 5, 1, 7, 3, 1, 2, NN_ACT_NONE);     /* rows shorter than a vector, more padding */
    small_case(3, 6, 6, 1, 13, 3, 1, 1, NN_ACT_NONE);    /* 13 channels: 12x8 forward, planar weight gradient */
}

/* ---- finite differences (see tests/nn/test_layers.c for the tolerance argument) ---- */

#define FD_H 1e-2f
#define FD_TOL 1e-3

typedef struct fd_ctx {
    nn_conv_dims d;
    int B;
    float *in, *w, *bias, *out, *r, *scratch;
} fd_ctx;

static double fd_loss(fd_ctx *k) {
    nn_conv2d_forward(k->out, NULL, k->scratch, k->in, k->w, k->bias, k->B, &k->d, NN_ACT_TANH, 0.0f);
    size_t n = (size_t)k->B * k->d.OH * k->d.OW * k->d.OC;
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)k->r[i] * k->out[i];
    return s;
}

static void fd_check(const char *what, fd_ctx *k, float *p, const float *analytic, size_t n) {
    double max_num = 0.0, max_err = 0.0, max_ana = 0.0;
    for (size_t i = 0; i < n; i++) {
        float keep = p[i];
        p[i] = keep + FD_H;
        double lp = fd_loss(k);
        p[i] = keep - FD_H;
        double lm = fd_loss(k);
        p[i] = keep;
        double num = (lp - lm) / (2.0 * FD_H);
        max_num = fmax(max_num, fabs(num));
        max_ana = fmax(max_ana, fabs(analytic[i]));
        max_err = fmax(max_err, fabs(num - analytic[i]));
    }
    if (!(max_err <= FD_TOL * max_num) || !(max_ana > 1e-3))
        fail_msg("%s: max |analytic - numeric| = %g, max |numeric| = %g", what, max_err, max_num);
}

static void fd_case(nn_conv_dims d, int B) {
    fd_ctx k = {.d = d, .B = B};
    assert_int_equal(nn_conv_dims_finish(&k.d), 0);
    size_t in_n = (size_t)B * d.H * d.W * d.C, out_n = (size_t)B * k.d.OH * k.d.OW * d.OC;
    size_t wn = (size_t)d.OC * d.KH * d.KW * d.C;
    k.in = randv(in_n, -1, 1, 5), k.w = randv(wn, -0.5f, 0.5f, 6), k.bias = randv((size_t)d.OC, -0.5f, 0.5f, 7);
    k.r = randv(out_n, -1, 1, 8), k.out = malloc(sizeof(float) * out_n);
    k.scratch = malloc(sizeof(float) * nn_conv2d_scratch(&k.d, B));
    int keep = omp_get_max_threads();
    omp_set_num_threads(1); /* thousands of tiny passes */
    fd_loss(&k);
    float *g = malloc(sizeof(float) * out_n), *din = malloc(sizeof(float) * in_n), *dw = malloc(sizeof(float) * wn);
    float *db = malloc(sizeof(float) * d.OC);
    memcpy(g, k.r, sizeof(float) * out_n);
    nn_conv2d_backward(din, dw, db, k.scratch, g, k.out, k.in, k.w, B, &k.d, NN_ACT_TANH, 0.0f);
    fd_check("d(input)", &k, k.in, din, in_n);
    fd_check("d(weight)", &k, k.w, dw, wn);
    fd_check("d(bias)", &k, k.bias, db, (size_t)d.OC);
    omp_set_num_threads(keep);
    free(k.in), free(k.w), free(k.bias), free(k.r), free(k.out), free(k.scratch), free(g), free(din), free(dw);
    free(db);
}

static void test_small_fd(void **state) {
    (void)state;
    fd_case((nn_conv_dims){.H = 7, .W = 6, .C = 1, .OC = 6, .KH = 5, .KW = 5, .stride = 1, .pad = 2}, 2);
    fd_case((nn_conv_dims){.H = 6, .W = 6, .C = 6, .OC = 10, .KH = 3, .KW = 3, .stride = 2, .pad = 1}, 2);
    fd_case((nn_conv_dims){.H = 6, .W = 5, .C = 3, .OC = 16, .KH = 3, .KW = 3, .stride = 1, .pad = 0}, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_vs_portable),
        cmocka_unit_test(test_small_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
