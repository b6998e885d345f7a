/* Tests for what nn/net and nn/spec give a conditional GAN: the `deconv`, `embed` and `reshape` statements and the
 * `output` kinds (parse, canonical text, shape errors naming file:line), the second input (labels through
 * nn_net_forward_cond), a generator's gradients from a caller's output gradient (nn_net_output_grad) and a
 * discriminator's parameter and input gradients under the sigmoid cross-entropy (nn_net_loss_bce,
 * nn_net_backward_input), both against central finite differences of the whole network (tolerance as in
 * tests/nn/test_net.c: max error <= 1e-3 of the largest numeric component, and not all zero), and the same
 * results for 1 and 2 threads.
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

#include "nn/net.h"
#include "nn/spec.h"
#include "core/dg_rng.h"
#include "testutil.h"

/* A small conditional generator: noise 6x1x1 + label embedding -> 2x2x8 -> 4x4x4 -> 8x8x1 (tanh keeps it smooth
 * for the finite differences; the real one has ReLU). */
static const char *GEN_SPEC = "name gen\n"
                              "input 6x1x1\n"
                              "output image\n"
                              "embed classes=10 dim=3\n"
                              "dense units=32\n"
                              "reshape c=8 h=2 w=2\n"
                              "batchnorm\n"
                              "tanh\n"
                              "deconv filters=4 size=4 stride=2 pad=1\n"
                              "batchnorm\n"
                              "sigmoid\n"
                              "deconv filters=1 size=5 stride=2 pad=2 opad=1\n"
                              "tanh\n";

/* A small conditional discriminator: 8x8x1 image, label joined after the first convolution. */
static const char *DISC_SPEC = "name disc\n"
                               "input 1x8x8\n"
                               "output logit\n"
                               "conv filters=4 size=3 stride=2 pad=1\n"
                               "tanh\n"
                               "embed classes=10 dim=2\n"
                               "conv filters=8 size=3 stride=2 pad=1\n"
                               "batchnorm\n"
                               "sigmoid\n"
                               "dense units=1\n";

static nn_net *make(const char *text) {
    nn_spec s;
    dg_err err;
    if (nn_spec_parse(&s, text, "gan.spec", &err) != 0) fail_msg("%s", err.msg);
    nn_net *net;
    if (nn_net_create(&net, &s, 16, &err) != 0) fail_msg("%s", err.msg);
    nn_spec_free(&s);
    nn_net_init(net, 3);
    return net;
}

static float *randv(size_t n, float lo, float hi, uint32_t key) {
    float *v = malloc(sizeof(float) * n);
    dg_rng r = dg_rng_make(5, DG_RNG_USER, 0, key);
    for (size_t i = 0; i < n; i++) v[i] = dg_rng_range(&r, lo, hi);
    return v;
}

static void test_spec_statements(void **state) {
    (void)state;
    nn_spec s;
    dg_err err;
    assert_int_equal(nn_spec_parse(&s, GEN_SPEC, "gen.spec", &err), 0);
    assert_int_equal(s.output, NN_OUT_IMAGE);
    assert_int_equal(s.layers[0].kind, NN_EMBED);
    assert_int_equal(s.layers[2].kind, NN_RESHAPE);
    assert_int_equal(s.layers[8].opad, 1);
    /* the canonical text parses back to itself */
    char *t1 = nn_spec_format(&s);
    nn_spec s2;
    assert_int_equal(nn_spec_parse(&s2, t1, "canon.spec", &err), 0);
    char *t2 = nn_spec_format(&s2);
    assert_string_equal(t1, t2);
    assert_non_null(strstr(t1, "output image\n"));
    assert_non_null(strstr(t1, "deconv filters=1 size=5 stride=2 pad=2 opad=1\n"));
    assert_non_null(strstr(t1, "embed classes=10 dim=3\n"));
    assert_non_null(strstr(t1, "reshape c=8 h=2 w=2\n"));
    free(t1), free(t2);
    nn_spec_free(&s), nn_spec_free(&s2);
    /* a classifier's canonical text has no output line (checkpoints of existing runs keep their text) */
    assert_int_equal(nn_spec_parse(&s, "dense units=10\n", "c.spec", &err), 0);
    t1 = nn_spec_format(&s);
    assert_null(strstr(t1, "output"));
    free(t1);
    nn_spec_free(&s);
}

/* Each bad spec fails where it should, with a message naming the place. */
static void test_spec_errors(void **state) {
    (void)state;
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"output pixels\ndense units=10\n", "bad.spec:1:8: output: 'pixels' is not classes, logit or image"},
        {"output logit\noutput logit\ndense units=1\n", "bad.spec:2:1: duplicate 'output' statement"},
        {"deconv filters=4\n", "bad.spec:1:1: deconv: missing required key 'size='"},
        {"deconv filters=4 size=4 pad=same\n", "bad.spec:1:29: pad=same: expected an integer in 0..64"},
        {"embed classes=0 dim=3\n", "bad.spec:1:15: classes=0: expected an integer in 1..256"},
        {"embed classes=10\n", "bad.spec:1:1: embed: missing required key 'dim='"},
        {"reshape c=2 h=2\n", "bad.spec:1:1: reshape: missing required key 'w='"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nn_spec s;
        dg_err err;
        assert_int_equal(nn_spec_parse(&s, cases[i].text, "bad.spec", &err), -1);
        if (strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("case %zu: got '%s', want '%s...'", i, err.msg, cases[i].msg);
    }
}

/* Shape errors found by nn_net_create, naming the layer's line. */
static void test_shape_errors(void **state) {
    (void)state;
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"input 8x7x7\ndeconv filters=4 size=4 stride=2 pad=1 opad=2\noutput image\n",
         "bad.spec:2: deconv opad=2 must be smaller than its stride 2"},
        {"input 8x7x7\noutput image\ndeconv filters=4 size=4 stride=2 pad=4\n",
         "bad.spec:3: deconv pad=4 must be smaller than its size 4"},
        {"input 8x1x1\noutput image\ndeconv filters=4 size=3 stride=1 pad=2\n",
         "bad.spec:3: deconv size=3 stride=1 pad=2 opad=0 on a 1x1 input gives no output"},
        {"input 8x1x1\noutput image\ndense units=30\nreshape c=8 h=2 w=2\n",
         "bad.spec:4: reshape to 8x2x2 (CxHxW) needs 32 values; its input 30x1x1 has 30"},
        {"input 8x1x1\noutput logit\ndense units=10\n",
         "bad.spec:3: the network ends in 1x1x10 = 10 outputs; 'output logit' needs exactly 1"},
        {"input 8x1x1\ndense units=1\n", "bad.spec:2: the network ends in 1x1x1 = 1 outputs; it must end in 10"},
        {"input 8x1x1\noutput logit\nembed classes=10 dim=2\nembed classes=10 dim=2\ndense units=1\n",
         "bad.spec:4: a network takes its labels once: at most one embed layer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nn_spec s;
        dg_err err;
        assert_int_equal(nn_spec_parse(&s, cases[i].text, "bad.spec", &err), 0);
        nn_net *net = NULL;
        assert_int_equal(nn_net_create(&net, &s, 4, &err), -1);
        assert_null(net);
        if (strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("case %zu: got '%s', want '%s...'", i, err.msg, cases[i].msg);
        nn_spec_free(&s);
    }
}

/* The second input, and the losses a net of each output kind has. */
static void test_inputs_and_kinds(void **state) {
    (void)state;
    nn_net *g = make(GEN_SPEC), *d = make(DISC_SPEC);
    assert_int_equal(nn_net_output_count(g), 64);
    assert_int_equal(nn_net_output_count(d), 1);
    /* the summary names the new layers with their shapes */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    nn_net_summary(g, f);
    fclose(f);
    assert_non_null(strstr(text, "embed 10 x 3"));
    assert_non_null(strstr(text, "reshape"));
    assert_non_null(strstr(text, "deconv 4 4x4 stride 2 pad 1"));
    assert_non_null(strstr(text, "4x4x4"));
    assert_non_null(strstr(text, "deconv 1 5x5 stride 2 pad 2"));
    assert_non_null(strstr(text, "8x8x1"));
    free(text);
    float *z = randv(4 * 6, -1, 1, 1), *img = randv(4 * 64, -1, 1, 2);
    uint8_t labels[4] = {0, 9, 3, 3}, bad[4] = {0, 9, 10, 3};
    assert_null(nn_net_forward(g, z, 4, 1, 0, 0));                 /* an embed layer needs labels */
    assert_null(nn_net_forward_cond(g, z, bad, 4, 1, 0, 0));       /* label 10 >= classes */
    const float *out = nn_net_forward_cond(g, z, labels, 4, 1, 0, 0);
    assert_non_null(out);
    for (int i = 0; i < 4 * 64; i++) assert_true(out[i] > -1.0f && out[i] < 1.0f); /* tanh */
    assert_null(nn_net_probs(g));                                  /* not a classifier */
    assert_true(isnan(nn_net_loss(g, labels, 4, 0.0f, NULL)));
    /* the label changes the image */
    uint8_t other[4] = {1, 9, 3, 3};
    float first[64];
    memcpy(first, out, sizeof first);
    out = nn_net_forward_cond(g, z, other, 4, 0, 0, 0);
    out = nn_net_forward_cond(g, z, other, 4, 1, 0, 0);
    assert_true(memcmp(first, out, sizeof first) != 0);
    /* the discriminator: bce only, targets in [0, 1] */
    assert_non_null(nn_net_forward_cond(d, img, labels, 4, 1, 0, 0));
    const float t[4] = {1, 1, 0, 0}, tbad[4] = {1, 1, 0, 2};
    assert_true(isnan(nn_net_loss_bce(d, tbad, 4)));
    assert_true(isnan(nn_net_loss_bce(d, t, 3)));
    float loss = nn_net_loss_bce(d, t, 4);
    assert_true(isfinite(loss) && loss > 0.0f);
    assert_true(isnan(nn_net_loss_bce(g, t, 4))); /* the generator has no logit */
    free(z), free(img);
    nn_net_free(g), nn_net_free(d);
}

/* ---- whole-network finite differences ---- */

typedef struct gen_ctx {
    nn_net *net;
    const float *z, *r;
    const uint8_t *labels;
    int B;
} gen_ctx;

/* L = sum r . G(z, labels), in training mode (batch statistics) */
static double gen_loss(gen_ctx *c) {
    const float *y = nn_net_forward_cond(c->net, c->z, c->labels, c->B, 1, 0, 0);
    double s = 0.0;
    for (size_t i = 0; i < (size_t)c->B * nn_net_output_count(c->net); i++) s += (double)y[i] * c->r[i];
    return s;
}

typedef struct disc_ctx {
    nn_net *net;
    float *x;
    const float *t;
    const uint8_t *labels;
    int B;
} disc_ctx;

static double disc_loss(disc_ctx *c) {
    nn_net_forward_cond(c->net, c->x, c->labels, c->B, 1, 0, 0);
    return nn_net_loss_bce(c->net, c->t, c->B);
}

typedef double (*loss_fn)(void *);

static void fd_check(const char *what, float *p, const float *g, size_t n, loss_fn f, void *ctx) {
    const float h = 1e-2f;
    double max_err = 0, max_num = 0, max_ana = 0;
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    for (size_t i = 0; i < n; i++) {
        float keep = p[i];
        p[i] = keep + h;
        double lp = f(ctx);
        p[i] = keep - h;
        double lm = f(ctx);
        p[i] = keep;
        double num = (lp - lm) / (2 * h);
        max_err = fmax(max_err, fabs(num - g[i]));
        max_num = fmax(max_num, fabs(num));
        max_ana = fmax(max_ana, fabs(g[i]));
    }
    omp_set_num_threads(threads);
    if (!(max_err <= 1e-3 * max_num) || !(max_ana > 1e-3))
        fail_msg("%s: max err %g, max numeric %g, max analytic %g", what, max_err, max_num, max_ana);
}

static double gen_loss_v(void *c) { return gen_loss(c); }
static double disc_loss_v(void *c) { return disc_loss(c); }

static void test_generator_fd(void **state) {
    (void)state;
    nn_net *net = make(GEN_SPEC);
    const int B = 5;
    float *z = randv((size_t)B * 6, -1, 1, 3), *r = randv((size_t)B * 64, -1, 1, 4);
    uint8_t labels[5] = {2, 7, 2, 0, 9};
    gen_ctx c = {net, z, r, labels, B};
    gen_loss(&c);
    assert_int_equal(nn_net_output_grad(net, r, B), 0);
    assert_int_equal(nn_net_output_grad(net, r, B + 1), -1);
    nn_net_output_grad(net, r, B);
    nn_net_backward(net);
    size_t n = nn_net_param_count(net);
    float *g = malloc(sizeof(float) * n);
    memcpy(g, nn_net_grads(net), sizeof(float) * n);
    fd_check("generator parameters", nn_net_params(net), g, n, gen_loss_v, &c);
    /* the embedding rows of labels no image has get a zero gradient; those of used labels do not */
    for (int t = 0; t < nn_net_tensor_count(net); t++) {
        const nn_tensor *T = nn_net_tensor(net, t);
        if (strcmp(T->name, "embed1.weight") != 0) continue;
        assert_int_equal(T->shape[0], 10), assert_int_equal(T->shape[1], 3);
        for (int j = 0; j < 3; j++) assert_true(g[T->offset + 1 * 3 + j] == 0.0f);
        assert_true(fabs(g[T->offset + 2 * 3]) + fabs(g[T->offset + 2 * 3 + 1]) > 0.0);
    }
    free(g), free(z), free(r);
    nn_net_free(net);
}

static void test_discriminator_fd(void **state) {
    (void)state;
    nn_net *net = make(DISC_SPEC);
    const int B = 6;
    float *x = randv((size_t)B * 64, -1, 1, 5);
    const float t[6] = {1, 0, 1, 0, 0.9f, 0};
    uint8_t labels[6] = {1, 1, 4, 8, 0, 4};
    disc_ctx c = {net, x, t, labels, B};
    disc_loss(&c);
    size_t n = nn_net_param_count(net), in_n = (size_t)B * 64;
    float *dx = malloc(sizeof(float) * in_n), *g = malloc(sizeof(float) * n);
    nn_net_backward_input(net, dx);
    memcpy(g, nn_net_grads(net), sizeof(float) * n);
    fd_check("discriminator parameters", nn_net_params(net), g, n, disc_loss_v, &c);
    fd_check("discriminator input", x, dx, in_n, disc_loss_v, &c);
    /* the plain backward gives the same parameter gradients */
    disc_loss(&c);
    nn_net_backward(net);
    assert_memory_equal(g, nn_net_grads(net), sizeof(float) * n);
    /* the input gradient alone (what the GAN's generator step uses) is bitwise the same dx */
    float *dx2 = malloc(sizeof(float) * in_n);
    disc_loss(&c);
    nn_net_input_grad(net, dx2);
    assert_memory_equal(dx, dx2, sizeof(float) * in_n);
    free(dx2), free(dx), free(g), free(x);
    nn_net_free(net);
}

/* One generator step through a discriminator (the GAN's G update) with `threads` threads: G's gradients. */
static void gan_step(int threads, float *grads, size_t n) {
    int keep = omp_get_max_threads();
    omp_set_num_threads(threads);
    nn_net *g = make(GEN_SPEC), *d = make(DISC_SPEC);
    const int B = 16;
    float *z = randv((size_t)B * 6, -1, 1, 7), *dimg = malloc(sizeof(float) * B * 64), ones[16];
    uint8_t labels[16];
    for (int i = 0; i < B; i++) labels[i] = (uint8_t)(i * 7 % 10), ones[i] = 1.0f;
    const float *img = nn_net_forward_cond(g, z, labels, B, 1, 0, 0);
    nn_net_forward_cond(d, img, labels, B, 1, 0, 0);
    nn_net_loss_bce(d, ones, B);
    nn_net_backward_input(d, dimg);
    nn_net_output_grad(g, dimg, B);
    nn_net_backward(g);
    memcpy(grads, nn_net_grads(g), sizeof(float) * n);
    free(z), free(dimg);
    nn_net_free(g), nn_net_free(d);
    omp_set_num_threads(keep);
}

static void test_threads(void **state) {
    (void)state;
    nn_net *g = make(GEN_SPEC);
    size_t n = nn_net_param_count(g);
    nn_net_free(g);
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    gan_step(1, a, n);
    gan_step(2, b, n);
    assert_memory_equal(a, b, sizeof(float) * n);
    double mx = 0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(a[i]));
    assert_true(mx > 1e-4);
    free(a), free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_statements), cmocka_unit_test(test_spec_errors),
        cmocka_unit_test(test_shape_errors),    cmocka_unit_test(test_inputs_and_kinds),
        cmocka_unit_test(test_generator_fd),    cmocka_unit_test(test_discriminator_fd),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
