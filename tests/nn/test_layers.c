/* Tests for nn/layers: every backward against central finite differences, the fast convolution against the naive
 * one, im2col/col2im adjointness, pooling/stride/padding edge cases, batch-norm running statistics, dropout masks.
 *
 * Finite differences: the forward runs in float, the scalar loss L = sum_i r_i y_i (fixed random r) is summed in
 * double, and dL/dp ~ (L(p + h) - L(p - h)) / 2h with h = 1e-2. Float rounding of each y_i (~6e-8 |y_i|) becomes an
 * absolute error of about sqrt(n) 6e-8 |y| |r| / 2h ~ 1e-5 for our n <= 2000 outputs of magnitude ~1, and the
 * truncation error h^2 f'''/6 is ~1e-5 for the smooth functions used (no ReLU kinks are crossed: where a kink
 * is involved, inputs are kept at least 0.05 away from it). We require
 *     max_i |analytic_i - numeric_i| <= 1e-3 * max_i |numeric_i|     (relative to the largest component)
 * and, as a guard against a vacuous pass, max_i |analytic_i| > 1e-3.
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
#include "grad_check.h"

static float *randv(size_t n, float lo, float hi, uint32_t key) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    dg_rng r = dg_rng_make(99, DG_RNG_USER, 0, key);
    for (size_t i = 0; i < n; i++) v[i] = dg_rng_range(&r, lo, hi);
    return v;
}

/* Values of magnitude in [0.05, 1] with random sign: at least 0.05 away from the ReLU kink. */
static float *rand_away_from_zero(size_t n, uint32_t key) {
    float *v = randv(n, 0.05f, 1.0f, key);
    dg_rng r = dg_rng_make(98, DG_RNG_USER, 0, key);
    for (size_t i = 0; i < n; i++)
        if (dg_rng_u32(&r) & 1) v[i] = -v[i];
    return v;
}

/* ---- activations ---- */

typedef struct act_ctx {
    float *x, *y, *r;
    size_t n;
    nn_act act;
    float slope;
} act_ctx;

static double act_loss(void *c) {
    act_ctx *a = c;
    nn_act_forward(a->y, a->x, a->n, a->act, a->slope);
    return tu_dot(a->y, a->r, a->n);
}

static void test_activations_fd(void **state) {
    (void)state;
    const nn_act acts[] = {NN_ACT_RELU, NN_ACT_LEAKY, NN_ACT_TANH, NN_ACT_SIGMOID};
    for (size_t k = 0; k < 4; k++) {
        act_ctx a = {rand_away_from_zero(300, 1), malloc(300 * sizeof(float)), randv(300, -1, 1, 2), 300, acts[k],
                     0.1f};
        float *dx = malloc(300 * sizeof(float));
        act_loss(&a);
        nn_act_backward(dx, a.r, a.y, a.n, a.act, a.slope);
        char name[32];
        snprintf(name, sizeof name, "activation %d", (int)acts[k]);

        tu_check_grad(name, a.x, dx, a.n, act_loss, &a);
        /* in place gives the same */
        act_loss(&a); /* y of the unperturbed x again */
        float *g = malloc(300 * sizeof(float));
        memcpy(g, a.r, 300 * sizeof(float));
        nn_act_backward(g, g, a.y, a.n, a.act, a.slope);
        assert_memory_equal(g, dx, 300 * sizeof(float));
        free(g);
        free(dx);
        free(a.x);
        free(a.y);
        free(a.r);
    }
    float x[4] = {-2.0f, -0.5f, 0.5f, 3.0f}, y[4];
    nn_act_forward(y, x, 4, NN_ACT_LEAKY, 0.2f);
    /* x * 0.2f for x = -2 only doubles 0.2f, and x itself passes through: exact */
    tu_assert_exact(y[0], -0.4f);
    tu_assert_exact(y[3], 3.0f);
    nn_act_forward(y, x, 4, NN_ACT_RELU, 0.0f);
    tu_assert_exact(y[1], 0.0f);
    tu_assert_exact(y[2], 0.5f);
}

/* tanh and sigmoid come from polynomials (AVX2) or libm: both within 5e-7 of the double-precision functions, and
 * the same for every thread count and every position in a vector. */
static void test_smooth_activations(void **state) {
    (void)state;
    const size_t n = 100003;
    float *x = malloc(sizeof(float) * n), *y1 = malloc(sizeof(float) * n), *y2 = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) x[i] = -30.0f + 60.0f * (float)i / (float)n; /* crosses 0 and +-0.625 */
    x[7] = 1e-6f, x[8] = -3e-5f, x[9] = 0.0f, x[10] = 100.0f, x[11] = -100.0f;
    for (int a = 0; a < 2; a++) {
        nn_act act = a ? NN_ACT_SIGMOID : NN_ACT_TANH;
        int threads = omp_get_max_threads();
        omp_set_num_threads(1);
        nn_act_forward(y1, x, n, act, 0.0f);
        omp_set_num_threads(2);
        nn_act_forward(y2, x, n, act, 0.0f);
        omp_set_num_threads(threads);
        assert_memory_equal(y1, y2, sizeof(float) * n);
        double worst = 0.0;
        for (size_t i = 0; i < n; i++) {
            double want = a ? 1.0 / (1.0 + exp(-(double)x[i])) : tanh((double)x[i]);
            double err = fabs(y1[i] - want) / fmax(fabs(want), 1e-30);
            if (a && want < 1e-30) err = fabs(y1[i] - want); /* sigmoid far out: absolute */
            worst = fmax(worst, err);
        }
        if (!(worst < 5e-7)) fail_msg("%s: worst relative error %g", a ? "sigmoid" : "tanh", worst);
        /* a value gives the same result wherever it sits (vector lane or tail) */
        float one[3] = {x[12345], x[12346], x[12347]}, out[3];
        nn_act_forward(out, one, 3, act, 0.0f);
        assert_memory_equal(out, y1 + 12345, sizeof out);
    }
    free(x), free(y1), free(y2);
}

/* ---- convolution ---- */

static void conv_case(int B, int H, int W, int C, int OC, int K, int stride, int pad) {
    nn_conv_dims d = {.H = H, .W = W, .C = C, .OC = OC, .KH = K, .KW = K, .stride = stride, .pad = pad};
    assert_int_equal(nn_conv_dims_finish(&d), 0);
    size_t in_n = (size_t)B * H * W * C, out_n = (size_t)B * d.OH * d.OW * OC, wn = (size_t)OC * K * K * C;
    float *in = randv(in_n, -1, 1, 10), *w = randv(wn, -1, 1, 11), *bias = randv((size_t)OC, -1, 1, 12);
    float *out = malloc(sizeof(float) * out_n), *ref = malloc(sizeof(float) * out_n);
    float *scratch = malloc(sizeof(float) * nn_conv2d_scratch(&d, B));
    double *stats = malloc(sizeof(double) * 2 * OC);
    nn_conv2d_forward(out, stats, scratch, in, w, bias, B, &d, NN_ACT_NONE, 0.0f);
    nn_conv2d_forward_ref(ref, in, w, bias, B, &d);
    double scale = sqrt((double)K * K * C); /* typical |out| */
    for (size_t i = 0; i < out_n; i++)
        if (fabs(out[i] - ref[i]) > 1e-5 * scale)
            fail_msg("conv B%d %dx%dx%d OC%d K%d s%d p%d: out[%zu] = %g, ref %g", B, H, W, C, OC, K, stride, pad, i,
                     out[i], ref[i]);
    /* batch statistics of the output */
    for (int c = 0; c < OC; c++) {
        double s = 0.0, q = 0.0;
        for (size_t r = 0; r < out_n / OC; r++) {
            s += ref[r * OC + c];
            q += (double)ref[r * OC + c] * ref[r * OC + c];
        }
        assert_true(fabs(stats[c] - s) <= 1e-4 * (fabs(s) + out_n / OC));
        assert_true(fabs(stats[OC + c] - q) <= 1e-4 * q + 1e-6);
    }
    /* backward */
    float *dout = randv(out_n, -1, 1, 13), *dout2 = malloc(sizeof(float) * out_n);
    memcpy(dout2, dout, sizeof(float) * out_n);
    float *din = malloc(sizeof(float) * in_n), *dw = malloc(sizeof(float) * wn), *db = malloc(sizeof(float) * OC);
    float *rdin = calloc(in_n, sizeof(float)), *rdw = calloc(wn, sizeof(float)), *rdb = calloc(OC, sizeof(float));
    nn_conv2d_backward(din, dw, db, scratch, dout, out, in, w, B, &d, NN_ACT_NONE, 0.0f);
    nn_conv2d_backward_ref(rdin, rdw, rdb, dout2, in, w, B, &d);
    double rows = (double)B * d.OH * d.OW;
    for (size_t i = 0; i < wn; i++) assert_true(fabs(dw[i] - rdw[i]) <= 1e-5 * sqrt(rows) * 4);
    for (int i = 0; i < OC; i++) assert_true(fabs(db[i] - rdb[i]) <= 1e-5 * sqrt(rows) * 4);
    for (size_t i = 0; i < in_n; i++) assert_true(fabs(din[i] - rdin[i]) <= 1e-5 * sqrt((double)OC * K * K) * 4);
    /* the gradient is not trivially zero */
    double mx = 0.0;
    for (size_t i = 0; i < wn; i++) mx = fmax(mx, fabs(dw[i]));
    assert_true(mx > 0.1);
    free(in), free(w), free(bias), free(out), free(ref), free(scratch), free(stats), free(dout), free(dout2);
    free(din), free(dw), free(db), free(rdin), free(rdw), free(rdb);
}

static void test_conv_fast_vs_ref(void **state) {
    (void)state;
    conv_case(3, 7, 7, 2, 4, 3, 1, 0);    /* plain */
    conv_case(5, 8, 6, 3, 5, 3, 1, 1);    /* padding, H != W */
    conv_case(4, 9, 9, 3, 4, 5, 2, 2);    /* stride 2, pad 2 (deotte's 32C5S2) */
    conv_case(2, 8, 8, 2, 3, 4, 3, 1);    /* stride that does not divide */
    conv_case(9, 6, 6, 1, 8, 3, 1, 0);    /* one input channel, uneven groups (9 images in 8 groups) */
    conv_case(17, 5, 5, 4, 6, 1, 1, 0);   /* 1x1: im2col is the identity */
    conv_case(11, 4, 4, 3, 7, 4, 1, 0);   /* kernel covers the input: identity, 1x1 output */
    conv_case(2, 4, 4, 3, 2, 4, 1, 1);    /* kernel covers the input but padded */
    conv_case(1, 3, 3, 2, 2, 3, 2, 2);    /* mostly padding */
    conv_case(20, 12, 12, 4, 8, 3, 1, 1); /* several images per GEMM chunk */
    /* shapes of the AVX2 path (OC, and C for the input gradient, multiples of 16) */
    conv_case(3, 10, 9, 16, 16, 3, 1, 0);  /* row tiles that cross output rows and images */
    conv_case(5, 12, 12, 32, 32, 5, 2, 2); /* deotte's 32C5S2 with padding */
    conv_case(7, 4, 4, 16, 32, 4, 1, 0);   /* 1x1 output: tiles across images */
    conv_case(2, 6, 6, 1, 16, 3, 1, 1);    /* one input channel: input gradient on conv_small's row segments */
    conv_case(13, 7, 5, 16, 48, 3, 2, 1);  /* odd sizes, 3 column blocks */
    conv_case(1, 3, 3, 16, 16, 3, 1, 2);   /* more padding than input */
    conv_case(6, 4, 4, 16, 32, 3, 1, 1);   /* few output pixels: channel split, transposed-conv input gradient */
    conv_case(5, 7, 7, 16, 32, 3, 2, 0);   /* channel split, scattered input gradient */
    conv_case(3, 7, 7, 16, 32, 3, 1, 0);   /* Winograd weight gradient, scattered input gradient (its offsets) */
    /* Winograd F(4x4, 3x3) where output sides are (close to) multiples of 4 (nn/layers_conv.c wino4_pays) */
    conv_case(2, 26, 26, 32, 32, 3, 1, 0);  /* deotte's second 32C3: F(4x4) forward and input gradient */
    conv_case(3, 10, 10, 16, 32, 3, 1, 0);  /* 8x8 output: F(4x4) forward, F(2x2) input gradient (10x10) */
    conv_case(4, 12, 12, 32, 64, 3, 1, 0);  /* 10x10 output: F(2x2) forward, F(4x4) input gradient (12x12) */
    conv_case(2, 22, 22, 16, 16, 3, 1, 1);  /* padded, partial 4x4 tiles at the right and bottom */
    conv_case(2, 10, 10, 64, 64, 3, 1, 0);  /* F(4x4) forward, F(3x3, 2x2) weight gradient (64x64 channels) */
}

/* Every combination of a small grid of shapes against the reference: the dispatcher picks among a dozen kernels per
 * pass by shape (nn/layers_conv.c), and a pairing that no hand-picked case above reaches (a Winograd weight gradient
 * with a scattered input gradient did) is a pairing a new model spec can. Sides 4-12 give split and unsplit batches
 * and every gather/scatter waste; channels 16/32 -> 16/48 the AVX2 kernels' blocks. */
static void test_conv_grid_vs_ref(void **state) {
    (void)state;
    static const int sides[] = {4, 5, 7, 12}, cs[] = {16, 32}, ocs[] = {16, 48}, ks[] = {1, 3, 5};
    int cases = 0;
    for (size_t a = 0; a < sizeof sides / sizeof *sides; a++)
        for (size_t b = 0; b < sizeof cs / sizeof *cs; b++)
            for (size_t c = 0; c < sizeof ocs / sizeof *ocs; c++)
                for (size_t k = 0; k < sizeof ks / sizeof *ks; k++)
                    for (int stride = 1; stride <= 2; stride++)
                        for (int pad = 0; pad <= 2 && pad < ks[k]; pad++) {
                            if (sides[a] + 2 * pad < ks[k]) continue;
                            conv_case(3, sides[a], sides[a], cs[b], ocs[c], ks[k], stride, pad);
                            cases++;
                        }
    assert_true(cases > 200);
}

/* The portable im2col + OpenBLAS path (what runs without AVX2) against the reference too. */
static void test_conv_fallback_vs_ref(void **state) {
    (void)state;
    tu_env no_avx2;
    tu_env_set(&no_avx2, "DIGITS_NO_AVX2", "1");
    conv_case(3, 10, 9, 16, 16, 3, 1, 0);
    conv_case(5, 12, 12, 32, 32, 5, 2, 2);
    conv_case(7, 4, 4, 16, 32, 4, 1, 0);
    tu_env_restore(&no_avx2);
}

typedef struct conv_ctx {
    nn_conv_dims d;
    int B;
    float *in, *w, *bias, *out, *r, *scratch;
    nn_act act;
} conv_ctx;

static double conv_loss(void *c) {
    conv_ctx *k = c;
    nn_conv2d_forward(k->out, NULL, k->scratch, k->in, k->w, k->bias, k->B, &k->d, k->act, 0.0f);
    return tu_dot(k->out, k->r, (size_t)k->B * k->d.OH * k->d.OW * k->d.OC);
}

/* All three gradients of a convolution with a fused tanh (smooth) against finite differences. */
static void conv_fd_case(nn_conv_dims d, int B, nn_act act) {
    conv_ctx k = {.d = d, .B = B, .act = act};
    assert_int_equal(nn_conv_dims_finish(&k.d), 0);
    size_t in_n = (size_t)B * d.H * d.W * d.C, out_n = (size_t)B * k.d.OH * k.d.OW * d.OC;
    size_t wn = (size_t)d.OC * d.KH * d.KW * d.C;
    float ws = 1.5f / sqrtf((float)(d.KH * d.KW * d.C)); /* pre-activations of order 1 */
    k.in = randv(in_n, -1, 1, 20), k.w = randv(wn, -ws, ws, 21), k.bias = randv((size_t)d.OC, -0.2f, 0.2f, 22);
    k.out = malloc(sizeof(float) * out_n), k.r = randv(out_n, -1, 1, 23);
    k.scratch = malloc(sizeof(float) * nn_conv2d_scratch(&k.d, B));
    float *g = malloc(sizeof(float) * out_n), *din = malloc(sizeof(float) * in_n), *dw = malloc(sizeof(float) * wn);
    float *db = malloc(sizeof(float) * d.OC);
    conv_loss(&k);
    memcpy(g, k.r, sizeof(float) * out_n);
    nn_conv2d_backward(din, dw, db, k.scratch, g, k.out, k.in, k.w, B, &k.d, k.act, 0.0f);
    tu_check_grad("conv d(input)", k.in, din, in_n, conv_loss, &k);
    tu_check_grad("conv d(weight)", k.w, dw, wn < 400 ? wn : 400, conv_loss, &k);
    tu_check_grad("conv d(bias)", k.bias, db, (size_t)d.OC, conv_loss, &k);
    free(k.in), free(k.w), free(k.bias), free(k.out), free(k.r), free(k.scratch), free(g), free(din), free(dw);
    free(db);
}

static void test_conv_fd(void **state) {
    (void)state;
    /* stride 2 and padding, the im2col path */
    conv_fd_case((nn_conv_dims){.H = 6, .W = 5, .C = 2, .OC = 3, .KH = 3, .KW = 3, .stride = 2, .pad = 1}, 3,
                 NN_ACT_TANH);
    /* the AVX2 path */
    conv_fd_case((nn_conv_dims){.H = 5, .W = 4, .C = 16, .OC = 16, .KH = 3, .KW = 3, .stride = 1, .pad = 1}, 2,
                 NN_ACT_TANH);
    conv_fd_case((nn_conv_dims){.H = 5, .W = 5, .C = 16, .OC = 16, .KH = 5, .KW = 5, .stride = 2, .pad = 2}, 2,
                 NN_ACT_SIGMOID);
}

static void test_conv_shapes(void **state) {
    (void)state;
    nn_conv_dims d = {.H = 24, .W = 24, .C = 32, .OC = 32, .KH = 5, .KW = 5, .stride = 2, .pad = 2};
    assert_int_equal(nn_conv_dims_finish(&d), 0);
    assert_int_equal(d.OH, 12);
    d = (nn_conv_dims){.H = 8, .W = 8, .C = 1, .OC = 1, .KH = 5, .KW = 5, .stride = 2, .pad = 2};
    assert_int_equal(nn_conv_dims_finish(&d), 0);
    assert_int_equal(d.OH, 4);
    d = (nn_conv_dims){.H = 4, .W = 4, .C = 1, .OC = 1, .KH = 4, .KW = 4, .stride = 1, .pad = 0};
    assert_int_equal(nn_conv_dims_finish(&d), 0);
    assert_int_equal(d.OH, 1);
    d = (nn_conv_dims){.H = 3, .W = 3, .C = 1, .OC = 1, .KH = 5, .KW = 5, .stride = 1, .pad = 0};
    assert_int_equal(nn_conv_dims_finish(&d), -1);
    d.pad = 1;
    assert_int_equal(nn_conv_dims_finish(&d), 0);
    assert_int_equal(d.OH, 1);
}

/* <col2im(g), x> == <g, im2col(x)>: col2im is exactly the adjoint of im2col. */
static void test_im2col_adjoint(void **state) {
    (void)state;
    nn_conv_dims d = {.H = 7, .W = 6, .C = 3, .OC = 1, .KH = 3, .KW = 3, .stride = 2, .pad = 1};
    assert_int_equal(nn_conv_dims_finish(&d), 0);
    int n = 2;
    size_t in_n = (size_t)n * 7 * 6 * 3, col_n = (size_t)n * d.OH * d.OW * 27;
    float *x = randv(in_n, -1, 1, 30), *g = randv(col_n, -1, 1, 31), *col = malloc(sizeof(float) * col_n);
    float *gx = calloc(in_n, sizeof(float));
    nn_im2col(col, x, n, &d);
    nn_col2im(gx, g, n, &d);
    double a = tu_dot(col, g, col_n), b = tu_dot(gx, x, in_n);
    assert_true(fabs(a - b) < 1e-4 * (fabs(a) + 1.0));
    /* a padded position reads as zero: the first row starts at (-1, -1) */
    tu_assert_exact(col[0], 0.0f);     /* im2col copies: exact */
    tu_assert_exact(col[4 * 3], x[0]); /* (kh, kw) = (1, 1) is input (0, 0) */
    free(x), free(g), free(col), free(gx);
}

/* ---- dense ---- */

typedef struct dense_ctx {
    int B, IN, OUT;
    float *in, *w, *bias, *out, *r, *scratch;
    nn_act act;
} dense_ctx;

static double dense_loss(void *c) {
    dense_ctx *k = c;
    nn_dense_forward(k->out, NULL, k->scratch, k->in, k->w, k->bias, k->B, k->IN, k->OUT, k->act, 0.0f);
    return tu_dot(k->out, k->r, (size_t)k->B * k->OUT);
}

static void test_dense(void **state) {
    (void)state;
    /* OUT = 130 and IN = 70 use several column blocks */
    dense_ctx k = {.B = 5, .IN = 70, .OUT = 130, .act = NN_ACT_SIGMOID};
    size_t in_n = (size_t)k.B * k.IN, out_n = (size_t)k.B * k.OUT, wn = (size_t)k.IN * k.OUT;
    k.in = randv(in_n, -1, 1, 40), k.w = randv(wn, -0.2f, 0.2f, 41), k.bias = randv((size_t)k.OUT, -0.2f, 0.2f, 42);
    k.out = malloc(sizeof(float) * out_n), k.r = randv(out_n, -1, 1, 43);
    k.scratch = malloc(sizeof(float) * nn_dense_scratch(k.B, k.IN, k.OUT));
    /* forward against a naive loop, and the statistics */
    double *stats = malloc(sizeof(double) * 2 * k.OUT);
    nn_dense_forward(k.out, stats, k.scratch, k.in, k.w, k.bias, k.B, k.IN, k.OUT, k.act, 0.0f);
    for (int b = 0; b < k.B; b++)
        for (int o = 0; o < k.OUT; o++) {
            double s = k.bias[o];
            for (int i = 0; i < k.IN; i++) s += (double)k.in[b * k.IN + i] * k.w[o * k.IN + i];
            assert_float_equal(k.out[b * k.OUT + o], 1.0 / (1.0 + exp(-s)), 1e-6);
        }
    for (int o = 0; o < k.OUT; o++) {
        double s = 0.0;
        for (int b = 0; b < k.B; b++) s += k.out[b * k.OUT + o];
        assert_float_equal(stats[o], s, 1e-5);
    }
    float *g = malloc(sizeof(float) * out_n), *din = malloc(sizeof(float) * in_n), *dw = malloc(sizeof(float) * wn);
    float *db = malloc(sizeof(float) * k.OUT);
    memcpy(g, k.r, sizeof(float) * out_n);
    nn_dense_backward(din, dw, db, k.scratch, g, k.out, k.in, k.w, k.B, k.IN, k.OUT, k.act, 0.0f);
    tu_check_grad("dense d(input)", k.in, din, in_n, dense_loss, &k);
    tu_check_grad("dense d(weight)", k.w, dw, 300, dense_loss, &k); /* the first 300 weights: rows 0..4 */
    tu_check_grad("dense d(bias)", k.bias, db, (size_t)k.OUT, dense_loss, &k);
    free(k.in), free(k.w), free(k.bias), free(k.out), free(k.r), free(k.scratch), free(stats);
    free(g), free(din), free(dw), free(db);
}

/* ---- batch norm ---- */

typedef struct bn_ctx {
    size_t N;
    int C, train;
    float *x, *y, *gamma, *beta, *rm, *rv, *mean, *invstd, *r, *scratch;
    double *stats;
} bn_ctx;

static double bn_loss(void *c) {
    bn_ctx *k = c;
    if (k->train) {
        nn_batchnorm_stats(k->stats, k->scratch, k->x, k->N, k->C);
        nn_batchnorm_forward_train(k->y, k->mean, k->invstd, k->rm, k->rv, k->scratch, k->stats, k->x, k->gamma,
                                   k->beta, k->N, k->C, 0.1f, 1e-5f);
    } else {
        nn_batchnorm_forward_eval(k->y, k->mean, k->invstd, k->scratch, k->x, k->gamma, k->beta, k->rm, k->rv, k->N,
                                  k->C, 1e-5f);
    }
    return tu_dot(k->y, k->r, k->N * k->C);
}

static void test_batchnorm(void **state) {
    (void)state;
    for (int train = 1; train >= 0; train--) {
        bn_ctx k = {.N = 37, .C = 5, .train = train};
        size_t n = k.N * k.C;
        k.x = randv(n, -1, 3, 50), k.y = malloc(sizeof(float) * n), k.gamma = randv(5, 0.5f, 1.5f, 51);
        k.beta = randv(5, -1, 1, 52), k.rm = randv(5, -0.1f, 0.1f, 53), k.rv = randv(5, 0.5f, 2.0f, 54);
        k.mean = malloc(sizeof(float) * 5), k.invstd = malloc(sizeof(float) * 5), k.r = randv(n, -1, 1, 55);
        k.scratch = malloc(sizeof(float) * nn_batchnorm_scratch(k.N, k.C)), k.stats = malloc(sizeof(double) * 10);
        float *g = malloc(sizeof(float) * n), *dx = malloc(sizeof(float) * n), dgamma[5], dbeta[5];
        bn_loss(&k);
        memcpy(g, k.r, sizeof(float) * n);
        nn_batchnorm_backward(dx, dgamma, dbeta, NULL, k.scratch, g, k.x, k.mean, k.invstd, k.gamma, k.N, k.C, train,
                              NN_ACT_NONE, 0.0f);
        tu_check_grad(train ? "batchnorm(train) d(x)" : "batchnorm(eval) d(x)", k.x, dx, n, bn_loss, &k);
        tu_check_grad("batchnorm d(gamma)", k.gamma, dgamma, 5, bn_loss, &k);
        tu_check_grad("batchnorm d(beta)", k.beta, dbeta, 5, bn_loss, &k);
        /* in place gives the same */
        bn_loss(&k);
        nn_batchnorm_backward(g, dgamma, dbeta, NULL, k.scratch, g, k.x, k.mean, k.invstd, k.gamma, k.N, k.C, train,
                              NN_ACT_NONE, 0.0f);
        assert_memory_equal(g, dx, sizeof(float) * n);
        /* fused with a ReLU before it: dx * relu'(x) and the column sums (the producer's bias gradient) */
        for (size_t i = 0; i < n; i++) k.x[i] = fmaxf(k.x[i], 0.0f); /* x as a ReLU output */
        bn_loss(&k);
        float *fused = malloc(sizeof(float) * n), bsum[5];
        nn_batchnorm_backward(dx, dgamma, dbeta, NULL, k.scratch, k.r, k.x, k.mean, k.invstd, k.gamma, k.N, k.C,
                              train, NN_ACT_NONE, 0.0f);
        nn_batchnorm_backward(fused, dgamma, dbeta, bsum, k.scratch, k.r, k.x, k.mean, k.invstd, k.gamma, k.N, k.C,
                              train, NN_ACT_RELU, 0.0f);
        for (int c = 0; c < 5; c++) {
            double want = 0.0;
            for (size_t r = 0; r < k.N; r++) {
                float v = k.x[r * 5 + c] > 0.0f ? dx[r * 5 + c] : 0.0f;
                tu_assert_exact(fused[r * 5 + c], v); /* the same product, masked: the same bits */
                want += v;
            }
            assert_float_equal(bsum[c], want, 1e-5);
        }
        free(fused);
        if (train) { /* the output is normalized: mean beta, variance gamma^2 (biased) */
            bn_loss(&k);
            for (int c = 0; c < 5; c++) {
                double s = 0, q = 0;
                for (size_t r = 0; r < k.N; r++) s += k.y[r * 5 + c];
                s /= k.N;
                for (size_t r = 0; r < k.N; r++) q += (k.y[r * 5 + c] - s) * (k.y[r * 5 + c] - s);
                q /= k.N;
                assert_float_equal(s, k.beta[c], 1e-5);
                assert_float_equal(q, k.gamma[c] * k.gamma[c], 1e-3);
            }
        }
        free(k.x), free(k.y), free(k.gamma), free(k.beta), free(k.rm), free(k.rv), free(k.mean), free(k.invstd);
        free(k.r), free(k.scratch), free(k.stats), free(g), free(dx);
    }
}

/* One training step moves the running statistics like PyTorch: momentum 0.1, unbiased variance. */
static void test_batchnorm_running_stats(void **state) {
    (void)state;
    const size_t N = 6;
    const int C = 2;
    float x[12] = {1, 10, 2, 20, 3, 30, 4, 40, 5, 50, 6, 60}, y[12], mean[2], invstd[2];
    float gamma[2] = {1, 1}, beta[2] = {0, 0}, rm[2] = {0, 1}, rv[2] = {1, 2};
    double stats[4];
    float *scratch = malloc(sizeof(float) * nn_batchnorm_scratch(N, C));
    nn_batchnorm_stats(stats, scratch, x, N, C);
    nn_batchnorm_forward_train(y, mean, invstd, rm, rv, scratch, stats, x, gamma, beta, N, C, 0.1f, 1e-5f);
    /* channel 0: mean 3.5, biased var 35/12, unbiased 3.5 */
    assert_float_equal(mean[0], 3.5f, 1e-6);
    assert_float_equal(invstd[0], 1.0 / sqrt(35.0 / 12.0 + 1e-5), 1e-6);
    assert_float_equal(rm[0], 0.35f, 1e-6);
    assert_float_equal(rv[0], 0.9 * 1.0 + 0.1 * 3.5, 1e-6);
    /* channel 1: mean 35, unbiased var 350 */
    assert_float_equal(rm[1], 0.9 + 3.5, 1e-5);
    assert_float_equal(rv[1], 0.9 * 2.0 + 0.1 * 350.0, 1e-4);
    /* inference uses the running statistics */
    nn_batchnorm_forward_eval(y, mean, invstd, scratch, x, gamma, beta, rm, rv, N, C, 1e-5f);
    assert_float_equal(y[0], (1.0 - 0.35) / sqrt(0.9 + 0.35 + 1e-5), 1e-6);
    free(scratch);
}

/* ---- dropout ---- */

static void test_dropout(void **state) {
    (void)state;
    const int B = 4;
    const size_t n = 1001;
    float *x = randv(B * n, 0.5f, 1.5f, 60), *y = malloc(sizeof(float) * B * n), *y2 = malloc(sizeof(float) * B * n);
    uint8_t *mask = malloc(B * n), *mask2 = malloc(B * n);
    nn_dropout_forward(y, mask, x, B, n, 0.4f, 7, 3, 2);
    size_t kept = 0;
    for (size_t i = 0; i < B * n; i++) {
        kept += mask[i];
        assert_float_equal(y[i], mask[i] ? x[i] / 0.6f : 0.0f, 1e-6);
    }
    assert_true(fabs((double)kept / (B * n) - 0.6) < 0.03);
    /* the mask of a sample depends only on (seed, step, layer, sample) */
    nn_dropout_forward(y2, mask2, x + n, 1, n, 0.4f, 7, 3, 2);        /* sample 1 alone is sample 0 of its batch */
    nn_dropout_forward(y2, mask2 + n, x + n, 2, n, 0.4f, 7, 3, 2);    /* sample 1 of a batch of 2 */
    assert_memory_equal(mask2 + 2 * n, mask + n, n);
    assert_memory_equal(mask2, mask, n);
    nn_dropout_forward(y2, mask2, x, B, n, 0.4f, 7, 4, 2); /* another step: another mask */
    assert_true(memcmp(mask2, mask, B * n) != 0);
    nn_dropout_forward(y2, mask2, x, B, n, 0.4f, 7, 3, 3); /* another layer: another mask */
    assert_true(memcmp(mask2, mask, B * n) != 0);
    /* the AVX2 path (8 Philox blocks at a time) draws exactly the scalar stream */
    tu_env no_avx2;
    tu_env_set(&no_avx2, "DIGITS_NO_AVX2", "1");
    nn_dropout_forward(y2, mask2, x, B, n, 0.4f, 7, 3, 2);
    tu_env_restore(&no_avx2);
    assert_memory_equal(mask2, mask, B * n);
    assert_memory_equal(y2, y, sizeof(float) * B * n);
    /* backward: the same mask and scale */
    float *g = randv(B * n, -1, 1, 61), *dx = malloc(sizeof(float) * B * n);
    nn_dropout_backward(dx, g, mask, B, n, 0.4f);
    for (size_t i = 0; i < B * n; i++) assert_float_equal(dx[i], mask[i] ? g[i] / 0.6f : 0.0f, 1e-6);
    free(x), free(y), free(y2), free(mask), free(mask2), free(g), free(dx);
}

/* ---- pooling ---- */

typedef struct pool_ctx {
    int B, H, W, C, size, stride, OH, OW, max;
    float *in, *out, *r;
    int32_t *argmax;
} pool_ctx;

static double pool_loss(void *c) {
    pool_ctx *k = c;
    if (k->max)
        nn_maxpool_forward(k->out, k->argmax, k->in, k->B, k->H, k->W, k->C, k->size, k->stride, k->OH, k->OW);
    else
        nn_avgpool_forward(k->out, k->in, k->B, k->H, k->W, k->C, k->size, k->stride, k->OH, k->OW);
    return tu_dot(k->out, k->r, (size_t)k->B * k->OH * k->OW * k->C);
}

static void pool_case(int max, int H, int W, int C, int size, int stride) {
    pool_ctx k = {.B = 2, .H = H, .W = W, .C = C, .size = size, .stride = stride, .max = max};
    k.OH = (H - size) / stride + 1, k.OW = (W - size) / stride + 1;
    size_t in_n = (size_t)k.B * H * W * C, out_n = (size_t)k.B * k.OH * k.OW * C;
    /* max: distinct values 0.03 apart (a random permutation, centred on 0): no ties, and +-h never reorders a
     * window. avg (linear): values in [-1, 1), small enough that a float output's rounding stays far below the
     * change +-h makes (with 37 channels the permutation's values reach +-40) */
    k.in = malloc(sizeof(float) * in_n);
    uint32_t *perm = malloc(sizeof(uint32_t) * in_n);
    for (size_t i = 0; i < in_n; i++) perm[i] = (uint32_t)i;
    dg_rng r = dg_rng_make(5, DG_RNG_USER, (uint32_t)C, (uint32_t)(H * 100 + size * 10 + stride));
    dg_rng_shuffle_u32(&r, perm, (uint32_t)in_n);
    for (size_t i = 0; i < in_n; i++)
        k.in[i] = max ? 0.03f * ((float)perm[i] - 0.5f * (float)in_n) : dg_rng_range(&r, -1.0f, 1.0f);
    k.out = malloc(sizeof(float) * out_n), k.r = randv(out_n, -1, 1, 70), k.argmax = malloc(sizeof(int32_t) * out_n);
    pool_loss(&k);
    /* forward against a direct loop */
    for (int b = 0; b < k.B; b++)
        for (int oh = 0; oh < k.OH; oh++)
            for (int ow = 0; ow < k.OW; ow++)
                for (int c = 0; c < C; c++) {
                    double m = -1e30, s = 0.0;
                    for (int i = 0; i < size; i++)
                        for (int j = 0; j < size; j++) {
                            float v = k.in[(((size_t)b * H + oh * stride + i) * W + ow * stride + j) * C + c];
                            m = v > m ? v : m;
                            s += v;
                        }
                    float o = k.out[(((size_t)b * k.OH + oh) * k.OW + ow) * C + c];
                    assert_float_equal(o, max ? m : s / (size * size), 1e-5);
                }
    float *din = malloc(sizeof(float) * in_n);
    if (max)
        nn_maxpool_backward(din, k.r, k.argmax, k.B, H, W, C, k.OH, k.OW);
    else
        nn_avgpool_backward(din, k.r, k.B, H, W, C, size, stride, k.OH, k.OW);
    char name[80];
    snprintf(name, sizeof name, "%s %dx%dx%d size %d stride %d", max ? "maxpool" : "avgpool", H, W, C, size, stride);
    tu_check_grad(name, k.in, din, in_n, pool_loss, &k);
    free(k.in), free(k.out), free(k.r), free(k.argmax), free(din), free(perm);
}

static void test_pooling(void **state) {
    (void)state;
    for (int max = 0; max <= 1; max++) {
        pool_case(max, 6, 6, 3, 2, 2); /* the usual */
        pool_case(max, 5, 7, 3, 2, 2); /* odd sizes: the last row/column is dropped */
        pool_case(max, 7, 7, 3, 3, 2); /* overlapping windows */
        pool_case(max, 8, 8, 3, 2, 3); /* gaps between windows */
        pool_case(max, 4, 4, 3, 4, 1); /* one window covering everything */
        pool_case(max, 3, 5, 3, 1, 1); /* identity */
        pool_case(max, 6, 6, 37, 2, 2); /* channels enough for the vectorized selects and a remainder */
        pool_case(max, 5, 5, 37, 3, 2);
    }
    /* ties: the first maximum in scan order gets the gradient (PyTorch) */
    float in[4] = {1, 1, 1, 1}, out[1], dout[1] = {2}, din[4];
    int32_t am[1];
    nn_maxpool_forward(out, am, in, 1, 2, 2, 1, 2, 2, 1, 1);
    assert_int_equal(am[0], 0);
    nn_maxpool_backward(din, dout, am, 1, 2, 2, 1, 1, 1);
    tu_assert_exact(din[0], 2.0f); /* the gradient is routed, not computed: exact */
    tu_assert_exact(din[3], 0.0f);
    /* ties across 19 channels (the vectorized path): in channel c, positions before c % 4 in scan order hold
     * less, the rest the same maximum, so the first maximum is position c % 4 */
    enum { TC = 19 };
    float tin[4 * TC], tout[TC], tdout[TC], tdin[4 * TC];
    int32_t tam[TC];
    for (int p = 0; p < 4; p++)
        for (int c = 0; c < TC; c++) tin[p * TC + c] = p < c % 4 ? -1.0f : 3.0f;
    for (int c = 0; c < TC; c++) tdout[c] = (float)(c + 1);
    nn_maxpool_forward(tout, tam, tin, 1, 2, 2, TC, 2, 2, 1, 1);
    nn_maxpool_backward(tdin, tdout, tam, 1, 2, 2, TC, 1, 1);
    for (int c = 0; c < TC; c++) {
        tu_assert_exact(tout[c], 3.0f);
        assert_int_equal(tam[c], (c % 4) * TC + c);
        for (int p = 0; p < 4; p++) tu_assert_exact(tdin[p * TC + c], p == c % 4 ? (float)(c + 1) : 0.0f);
    }
}

/* ---- softmax cross-entropy ---- */

typedef struct xent_ctx {
    float *logits, *probs;
    uint8_t *labels;
    int B;
    float eps;
} xent_ctx;

static double xent_loss(void *c) {
    xent_ctx *k = c;
    return nn_softmax_xent(k->probs, NULL, NULL, k->logits, k->labels, k->B, 10, k->eps);
}

static void test_softmax_xent(void **state) {
    (void)state;
    const int B = 6;
    uint8_t labels[6] = {0, 3, 9, 4, 4, 7};
    for (int e = 0; e < 2; e++) {
        xent_ctx k = {randv(B * 10, -3, 3, 80), malloc(sizeof(float) * B * 10), labels, B, e ? 0.1f : 0.0f};
        float *dl = malloc(sizeof(float) * B * 10);
        int correct = -1;
        float loss = nn_softmax_xent(k.probs, dl, &correct, k.logits, labels, B, 10, k.eps);
        /* direct computation */
        double want = 0.0;
        int ok = 0;
        for (int b = 0; b < B; b++) {
            double m = -1e30, s = 0.0;
            int am = 0;
            for (int j = 0; j < 10; j++)
                if (k.logits[b * 10 + j] > m) m = k.logits[b * 10 + j], am = j;
            ok += am == labels[b];
            for (int j = 0; j < 10; j++) s += exp(k.logits[b * 10 + j] - m);
            for (int j = 0; j < 10; j++) {
                double q = k.eps / 10 + (j == labels[b] ? 1.0 - k.eps : 0.0);
                double p = exp(k.logits[b * 10 + j] - m) / s;
                want -= q * log(p);
                assert_float_equal(k.probs[b * 10 + j], p, 1e-6);
            }
        }
        assert_float_equal(loss, want / B, 1e-6);
        assert_int_equal(correct, ok);
        tu_check_grad("softmax cross-entropy", k.logits, dl, (size_t)B * 10, xent_loss, &k);
        free(k.logits), free(k.probs), free(dl);
    }
    float z[10] = {0};
    uint8_t bad = 10;
    float p[10];
    assert_true(isnan(nn_softmax_xent(p, NULL, NULL, z, &bad, 1, 10, 0.0f)));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activations_fd),
        cmocka_unit_test(test_smooth_activations),
        cmocka_unit_test(test_conv_shapes),
        cmocka_unit_test(test_im2col_adjoint),
        cmocka_unit_test(test_conv_fast_vs_ref),
        cmocka_unit_test(test_conv_grid_vs_ref),
        cmocka_unit_test(test_conv_fallback_vs_ref),
        cmocka_unit_test(test_conv_fd),
        cmocka_unit_test(test_dense),
        cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_batchnorm_running_stats),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_pooling),
        cmocka_unit_test(test_softmax_xent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
