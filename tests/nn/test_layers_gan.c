/* Tests for nn/layers_gan: the transposed convolution (fast path against the naive scatter loops on the shapes that
 * reach each input-gradient kernel of nn/layers_conv.c, the portable path, thread independence, finite
 * differences), the label embedding (layout, finite differences) and the sigmoid cross-entropy on logits (closed
 * forms at extreme logits, finite differences).
 *
 * Finite differences as in tests/nn/test_layers.c: L = sum_i r_i y_i in double, central differences with
 * h = 1e-2 on smooth functions (tanh), max |analytic - numeric| <= 1e-3 max |numeric| and max |analytic| > 1e-3.
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

#include "nn/internal/conv_plan.h"
#include "nn/internal/simd.h"
#include "nn/layers.h"
#include "core/dg_rng.h"
#include "testutil.h"
#include "grad_check.h"

static float *randv(size_t n, float lo, float hi, uint32_t key) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    dg_rng r = dg_rng_make(77, DG_RNG_USER, 0, key);
    for (size_t i = 0; i < n; i++) v[i] = dg_rng_range(&r, lo, hi);
    return v;
}

/* ---- transposed convolution: fast against reference ---- */

typedef struct deconv_bufs {
    nn_deconv_dims d;
    int B;
    size_t in_n, out_n, wn;
    float *in, *w, *bias, *out, *dout, *din, *dw, *db, *scratch;
    double *stats;
} deconv_bufs;

/* forward and backward (no activation) of the fast path for dout; results in k. */
static void deconv_run(deconv_bufs *k) {
    nn_deconv2d_forward(k->out, k->stats, k->scratch, k->in, k->w, k->bias, k->B, &k->d, NN_ACT_NONE, 0.0f);
    float *g = malloc(sizeof(float) * k->out_n);
    memcpy(g, k->dout, sizeof(float) * k->out_n);
    nn_deconv2d_backward(k->din, k->dw, k->db, k->scratch, g, k->out, k->in, k->w, k->B, &k->d, NN_ACT_NONE, 0.0f);
    free(g);
}

static void deconv_alloc(deconv_bufs *k, nn_deconv_dims d, int B) {
    memset(k, 0, sizeof *k);
    k->d = d, k->B = B;
    assert_int_equal(nn_deconv_dims_finish(&k->d), 0);
    k->in_n = (size_t)B * d.H * d.W * d.C, k->out_n = (size_t)B * k->d.OH * k->d.OW * d.OC;
    k->wn = (size_t)d.C * d.KH * d.KW * d.OC;
    k->in = randv(k->in_n, -1, 1, 1), k->w = randv(k->wn, -0.5f, 0.5f, 2), k->bias = randv((size_t)d.OC, -1, 1, 3);
    k->dout = randv(k->out_n, -1, 1, 4);
    k->out = malloc(sizeof(float) * k->out_n), k->din = malloc(sizeof(float) * k->in_n);
    k->dw = malloc(sizeof(float) * k->wn), k->db = malloc(sizeof(float) * d.OC);
    k->stats = malloc(sizeof(double) * 2 * d.OC);
    k->scratch = malloc(sizeof(float) * nn_deconv2d_scratch(&k->d, B));
}

static void deconv_free(deconv_bufs *k) {
    free(k->in), free(k->w), free(k->bias), free(k->dout), free(k->out), free(k->din), free(k->dw), free(k->db);
    free(k->stats), free(k->scratch);
}

/* The fast path against nn_deconv2d_*_ref; returns the input-gradient kernel the forward ran on (conv_plan). */
static const char *deconv_case(int B, int H, int W, int C, int OC, int K, int stride, int pad, int opad) {
    deconv_bufs k;
    deconv_alloc(&k, (nn_deconv_dims){.H = H, .W = W, .C = C, .OC = OC, .KH = K, .KW = K, .stride = stride,
                                      .pad = pad, .opad = opad},
                 B);
    deconv_run(&k);
    const nn_deconv_dims *d = &k.d;
    float *ref = calloc(k.out_n, sizeof(float)), *rdin = calloc(k.in_n, sizeof(float));
    float *rdw = calloc(k.wn, sizeof(float)), *rdb = calloc((size_t)d->OC, sizeof(float));
    nn_deconv2d_forward_ref(ref, k.in, k.w, k.bias, B, d);
    nn_deconv2d_backward_ref(rdin, rdw, rdb, k.dout, k.in, k.w, B, d);
    /* float sums of up to n products of magnitude <= 1 (different orders): tolerance ~ sqrt(n) eps */
    const double tf = 2e-6 * sqrt((double)C * K * K) + 1e-6, tg = 2e-6 * sqrt((double)OC * K * K) + 1e-6;
    const double tw = 2e-6 * sqrt((double)B * H * W) + 1e-6;
    for (size_t i = 0; i < k.out_n; i++)
        if (fabs(k.out[i] - ref[i]) > tf) fail_msg("deconv %dx%dx%d->%d k%d s%d p%d o%d: out[%zu] %g vs %g", H, W, C,
                                                   OC, K, stride, pad, opad, i, k.out[i], ref[i]);
    for (size_t i = 0; i < k.in_n; i++)
        if (fabs(k.din[i] - rdin[i]) > tg) fail_msg("deconv din[%zu] %g vs %g", i, k.din[i], rdin[i]);
    for (size_t i = 0; i < k.wn; i++)
        if (fabs(k.dw[i] - rdw[i]) > tw) fail_msg("deconv dw[%zu] %g vs %g", i, k.dw[i], rdw[i]);
    for (int i = 0; i < d->OC; i++)
        if (fabs(k.db[i] - rdb[i]) > tw * 4) fail_msg("deconv db[%d] %g vs %g", i, k.db[i], rdb[i]);
    /* the batch statistics of the output */
    for (int c = 0; c < d->OC; c++) {
        double s = 0.0, q = 0.0;
        for (size_t p = 0; p < k.out_n / d->OC; p++) {
            const double v = ref[p * d->OC + c];
            s += v, q += v * v;
        }
        assert_true(fabs(k.stats[c] - s) <= 1e-4 * (1 + fabs(s)));
        assert_true(fabs(k.stats[d->OC + c] - q) <= 1e-4 * (1 + q));
    }
    double mx = 0.0;
    for (size_t i = 0; i < k.wn; i++) mx = fmax(mx, fabs(rdw[i]));
    assert_true(mx > 0.1);
    nn_conv_dims c = nn_deconv_conv(d);
    const char *kernel = nnk_conv_choice_get(&c, B, 1).dgrad;
    free(ref), free(rdin), free(rdw), free(rdb);
    deconv_free(&k);
    return kernel;
}

static void test_deconv_dims(void **state) {
    (void)state;
    nn_deconv_dims d = {.H = 7, .W = 7, .C = 128, .OC = 64, .KH = 4, .KW = 4, .stride = 2, .pad = 1};
    assert_int_equal(nn_deconv_dims_finish(&d), 0);
    assert_int_equal(d.OH, 14), assert_int_equal(d.OW, 14);
    nn_conv_dims c = nn_deconv_conv(&d); /* the convolution it is the input gradient of: 14x14x64 -> 7x7x128 */
    assert_int_equal(c.H, 14), assert_int_equal(c.C, 64), assert_int_equal(c.OC, 128), assert_int_equal(c.OH, 7);
    d = (nn_deconv_dims){.H = 7, .W = 7, .C = 8, .OC = 4, .KH = 5, .KW = 5, .stride = 2, .pad = 2, .opad = 1};
    assert_int_equal(nn_deconv_dims_finish(&d), 0);
    assert_int_equal(d.OH, 14);
    d.opad = 0; /* the other size that the convolution maps back to 7 */
    assert_int_equal(nn_deconv_dims_finish(&d), 0);
    assert_int_equal(d.OH, 13);
    d.opad = 2; /* opad must be < stride */
    assert_int_equal(nn_deconv_dims_finish(&d), -1);
    d = (nn_deconv_dims){.H = 1, .W = 1, .C = 1, .OC = 1, .KH = 1, .KW = 1, .stride = 1, .pad = 1};
    assert_int_equal(nn_deconv_dims_finish(&d), -1); /* 1 - 2 = -1: no output */
}

static void test_deconv_fast_vs_ref(void **state) {
    (void)state;
    const char *seen[16];
    int n = 0;
#define CASE(...) seen[n++] = deconv_case(__VA_ARGS__)
    CASE(3, 7, 7, 128, 64, 4, 2, 1, 0); /* the DCGAN generator's 7 -> 14 */
    CASE(3, 14, 14, 64, 1, 4, 2, 1, 0); /* and 14 -> 28, one output channel */
    CASE(2, 7, 7, 32, 16, 5, 2, 2, 1);  /* 5x5 stride 2 with output padding (space-to-depth conv) */
    CASE(2, 6, 5, 16, 32, 3, 1, 1, 0);  /* stride 1, 'same' (Winograd / gather of the transposed conv) */
    CASE(2, 9, 9, 32, 32, 3, 1, 0, 0);  /* stride 1, unpadded: the output grows by 2 */
    CASE(5, 5, 4, 3, 6, 3, 2, 0, 1);    /* odd channel counts, H != W */
    CASE(9, 3, 3, 20, 7, 2, 2, 0, 0);   /* kernel = stride: no overlap; 9 images in 8 groups */
    CASE(2, 4, 4, 32, 16, 1, 3, 0, 2);  /* kernel < stride: pixels no input reaches are the bias */
    CASE(4, 2, 2, 48, 32, 4, 1, 0, 0);  /* few pixels: the channel-split path */
#undef CASE
    if (nnk_cpu_avx2()) { /* the cases reach these input-gradient kernels (the deconv forward) */
        const char *want[] = {"scatter", "rowseg", "gather", "s2d_wino4", "s2d_wino2", "wino2_t", "wino4_t"};
        int hit = 0;
        for (size_t j = 0; j < sizeof want / sizeof want[0]; j++)
            for (int i = 0; i < n; i++)
                if (strcmp(seen[i], want[j]) == 0) {
                    hit++;
                    break;
                }
        for (int i = 0; i < n; i++) print_message("deconv case %d: forward on %s\n", i, seen[i]);
        assert_true(hit >= 4);
    }
}

static void test_deconv_fallback_vs_ref(void **state) {
    (void)state;
    tu_env no_avx2;
    tu_env_set(&no_avx2, "DIGITS_NO_AVX2", "1");
    deconv_case(3, 7, 7, 32, 16, 4, 2, 1, 0);
    deconv_case(2, 7, 7, 8, 4, 5, 2, 2, 1);
    deconv_case(5, 5, 4, 3, 6, 3, 2, 0, 1);
    tu_env_restore(&no_avx2);
}

/* Bitwise the same results with 1 and 2 threads (every reduction runs in fixed groups). */
static void test_deconv_threads(void **state) {
    (void)state;
    nn_deconv_dims d = {.H = 7, .W = 7, .C = 64, .OC = 32, .KH = 4, .KW = 4, .stride = 2, .pad = 1};
    deconv_bufs a, b;
    deconv_alloc(&a, d, 13);
    deconv_alloc(&b, d, 13);
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    deconv_run(&a);
    omp_set_num_threads(2);
    deconv_run(&b);
    omp_set_num_threads(threads);
    assert_memory_equal(a.out, b.out, sizeof(float) * a.out_n);
    assert_memory_equal(a.stats, b.stats, sizeof(double) * 2 * d.OC);
    assert_memory_equal(a.din, b.din, sizeof(float) * a.in_n);
    assert_memory_equal(a.dw, b.dw, sizeof(float) * a.wn);
    assert_memory_equal(a.db, b.db, sizeof(float) * d.OC);
    deconv_free(&a), deconv_free(&b);
}

/* ---- transposed convolution: finite differences ---- */

typedef struct deconv_ctx {
    deconv_bufs k;
    float *r;
    nn_act act;
} deconv_ctx;

static double deconv_loss(void *c) {
    deconv_ctx *x = c;
    nn_deconv2d_forward(x->k.out, NULL, x->k.scratch, x->k.in, x->k.w, x->k.bias, x->k.B, &x->k.d, x->act, 0.0f);
    return tu_dot(x->k.out, x->r, x->k.out_n);
}

static void deconv_fd_case(nn_deconv_dims d, int B, nn_act act) {
    deconv_ctx x = {.act = act};
    deconv_alloc(&x.k, d, B);
    float ws = 1.5f / sqrtf((float)(d.KH * d.KW * d.C) / (float)(d.stride * d.stride));
    for (size_t i = 0; i < x.k.wn; i++) x.k.w[i] *= 2.0f * ws;
    for (int i = 0; i < d.OC; i++) x.k.bias[i] *= 0.2f;
    x.r = randv(x.k.out_n, -1, 1, 9);
    deconv_loss(&x);
    float *g = malloc(sizeof(float) * x.k.out_n);
    memcpy(g, x.r, sizeof(float) * x.k.out_n);
    nn_deconv2d_backward(x.k.din, x.k.dw, x.k.db, x.k.scratch, g, x.k.out, x.k.in, x.k.w, B, &x.k.d, act, 0.0f);
    tu_check_grad("deconv d(input)", x.k.in, x.k.din, x.k.in_n, deconv_loss, &x);
    tu_check_grad("deconv d(weight)", x.k.w, x.k.dw, x.k.wn < 400 ? x.k.wn : 400, deconv_loss, &x);
    tu_check_grad("deconv d(bias)", x.k.bias, x.k.db, (size_t)d.OC, deconv_loss, &x);
    free(g), free(x.r);
    deconv_free(&x.k);
}

static void test_deconv_fd(void **state) {
    (void)state;
    deconv_fd_case((nn_deconv_dims){.H = 3, .W = 4, .C = 3, .OC = 2, .KH = 4, .KW = 4, .stride = 2, .pad = 1}, 2,
                   NN_ACT_TANH);
    deconv_fd_case((nn_deconv_dims){.H = 3, .W = 3, .C = 16, .OC = 16, .KH = 5, .KW = 5, .stride = 2, .pad = 2,
                                    .opad = 1},
                   2, NN_ACT_TANH);
    deconv_fd_case((nn_deconv_dims){.H = 4, .W = 3, .C = 16, .OC = 16, .KH = 3, .KW = 3, .stride = 1, .pad = 1}, 2,
                   NN_ACT_SIGMOID);
}

/* ---- label embedding ---- */

static void test_embed_layout(void **state) {
    (void)state;
    /* 2 images of 2 pixels x 1 channel, embedding dim 2, 3 labels */
    const float in[4] = {1, 2, 3, 4}, emb[6] = {10, 11, 20, 21, 30, 31};
    const uint8_t labels[2] = {2, 0};
    float out[12];
    nn_embed_forward(out, in, emb, labels, 2, 2, 1, 2);
    const float want[12] = {1, 30, 31, 2, 30, 31, 3, 10, 11, 4, 10, 11};
    assert_memory_equal(out, want, sizeof want);
    const float dout[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    float din[4], demb[6];
    memset(demb, 0x7f, sizeof demb); /* every row is written, also the label no image has */
    nn_embed_backward(din, demb, dout, labels, 2, 2, 1, 2, 3);
    const float want_din[4] = {1, 4, 7, 10}, want_demb[6] = {8 + 11, 9 + 12, 0, 0, 2 + 5, 3 + 6};
    assert_memory_equal(din, want_din, sizeof want_din);
    assert_memory_equal(demb, want_demb, sizeof want_demb);
}

typedef struct embed_ctx {
    float *in, *emb, *out, *r;
    const uint8_t *labels;
    int B, C, D;
    size_t pix;
} embed_ctx;

/* tanh after the embedding, so the loss is not linear in it */
static double embed_loss(void *c) {
    embed_ctx *x = c;
    size_t n = (size_t)x->B * x->pix * (x->C + x->D);
    nn_embed_forward(x->out, x->in, x->emb, x->labels, x->B, x->pix, x->C, x->D);
    nn_act_forward(x->out, x->out, n, NN_ACT_TANH, 0.0f);
    return tu_dot(x->out, x->r, n);
}

static void test_embed_fd(void **state) {
    (void)state;
    const uint8_t labels[5] = {3, 1, 3, 0, 1};
    embed_ctx x = {.labels = labels, .B = 5, .C = 3, .D = 4, .pix = 6};
    const int K = 4;
    size_t n = (size_t)x.B * x.pix * (x.C + x.D), in_n = (size_t)x.B * x.pix * x.C;
    x.in = randv(in_n, -1, 1, 11), x.emb = randv((size_t)K * x.D, -1, 1, 12), x.r = randv(n, -1, 1, 13);
    x.out = malloc(sizeof(float) * n);
    float *g = malloc(sizeof(float) * n), *din = malloc(sizeof(float) * in_n), *demb = malloc(sizeof(float) * K * x.D);
    embed_loss(&x);
    memcpy(g, x.r, sizeof(float) * n);
    nn_act_backward(g, g, x.out, n, NN_ACT_TANH, 0.0f);
    nn_embed_backward(din, demb, g, labels, x.B, x.pix, x.C, x.D, K);
    tu_check_grad("embed d(input)", x.in, din, in_n, embed_loss, &x);
    tu_check_grad("embed d(table)", x.emb, demb, (size_t)K * x.D, embed_loss, &x);
    for (int j = 0; j < x.D; j++) assert_true(demb[2 * x.D + j] == 0.0f); /* label 2: no image */
    free(x.in), free(x.emb), free(x.r), free(x.out), free(g), free(din), free(demb);
}

/* ---- sigmoid cross-entropy on logits ---- */

static void test_bce_logits(void **state) {
    (void)state;
    /* extreme logits: finite, and the closed forms (log1p(exp(-100)) is 0 in double) */
    const float z[4] = {100.0f, -100.0f, 100.0f, -100.0f}, t[4] = {1, 0, 0, 1};
    float dz[4];
    float loss = nn_bce_logits(dz, z, t, 4);
    assert_true(isfinite(loss));
    assert_true(fabsf(loss - 200.0f / 4) < 1e-4f); /* 0 + 0 + 100 + 100 */
    assert_true(fabsf(dz[0]) < 1e-7f && fabsf(dz[1]) < 1e-7f);
    assert_true(fabsf(dz[2] - 0.25f) < 1e-7f && fabsf(dz[3] + 0.25f) < 1e-7f);
    /* z = 0: log 2 whatever the target */
    const float z0[1] = {0.0f}, th[1] = {0.3f};
    assert_true(fabsf(nn_bce_logits(NULL, z0, th, 1) - (float)log(2.0)) < 1e-7f);
    /* a moderate logit against the naive formula -(t log s + (1 - t) log(1 - s)) */
    const float z1[2] = {1.5f, -0.7f}, t1[2] = {0.9f, 0.2f};
    double naive = 0.0;
    for (int i = 0; i < 2; i++) {
        double s = 1.0 / (1.0 + exp(-(double)z1[i]));
        naive += -(t1[i] * log(s) + (1 - t1[i]) * log(1 - s));
    }
    assert_true(fabs(nn_bce_logits(NULL, z1, t1, 2) - naive / 2) < 1e-6);
}

typedef struct bce_ctx {
    float *z, *t;
    int B;
} bce_ctx;

static double bce_loss(void *c) {
    bce_ctx *x = c;
    return nn_bce_logits(NULL, x->z, x->t, x->B);
}

static void test_bce_fd(void **state) {
    (void)state;
    bce_ctx x = {.B = 7};
    x.z = randv(7, -4, 4, 21), x.t = randv(7, 0, 1, 22);
    x.t[0] = 0.0f, x.t[1] = 1.0f;
    float dz[7];
    nn_bce_logits(dz, x.z, x.t, x.B);
    tu_check_grad("bce d(logit)", x.z, dz, 7, bce_loss, &x);
    free(x.z), free(x.t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deconv_dims),     cmocka_unit_test(test_deconv_fast_vs_ref),
        cmocka_unit_test(test_deconv_fallback_vs_ref), cmocka_unit_test(test_deconv_threads),
        cmocka_unit_test(test_deconv_fd),       cmocka_unit_test(test_embed_layout),
        cmocka_unit_test(test_embed_fd),        cmocka_unit_test(test_bce_logits),
        cmocka_unit_test(test_bce_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
