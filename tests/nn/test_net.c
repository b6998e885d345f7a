/* Tests for nn/net: shape errors with file:line, the tensor table, init statistics, gradients of a whole network
 * against finite differences, determinism across thread counts (dropout masks included), inference mode,
 * FLOPs and the summary. Specs are built by hand (no dependence on the parser). */
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
#include "core/dg_rng.h"
#include "testutil.h"

void openblas_set_num_threads(int num_threads);

static nn_spec spec_new(int c, int h, int w) {
    nn_spec s;
    memset(&s, 0, sizeof s);
    snprintf(s.name, sizeof s.name, "test");
    snprintf(s.file, sizeof s.file, "test.spec");
    s.in_c = c, s.in_h = h, s.in_w = w;
    return s;
}

/* Append a layer with the parser's defaults; its line is its position + 2 (after "name" and "input"). */
static nn_layer_spec *add(nn_spec *s, nn_kind k) {
    nn_layer_spec *l = &s->layers[s->n_layers++];
    memset(l, 0, sizeof *l);
    l->kind = k;
    l->line = s->n_layers + 2;
    l->stride = k == NN_CONV ? 1 : 0;
    l->momentum = 0.1f;
    l->eps = 1e-5f;
    l->slope = 0.01f;
    return l;
}

static void conv(nn_spec *s, int filters, int size, int stride, int pad) {
    nn_layer_spec *l = add(s, NN_CONV);
    l->filters = filters, l->size = size, l->stride = stride, l->pad = pad;
}

static void dense(nn_spec *s, int units) { add(s, NN_DENSE)->units = units; }
static void dropout(nn_spec *s, float rate) { add(s, NN_DROPOUT)->rate = rate; }

/* experiments/models/deotte.spec, by hand */
static nn_spec deotte(void) {
    nn_spec s = spec_new(1, 28, 28);
    const int f[7] = {32, 32, 32, 64, 64, 64, 128}, k[7] = {3, 3, 5, 3, 3, 5, 4}, st[7] = {1, 1, 2, 1, 1, 2, 1};
    const int pad[7] = {0, 0, 2, 0, 0, 2, 0};
    for (int i = 0; i < 7; i++) {
        conv(&s, f[i], k[i], st[i], pad[i]);
        add(&s, NN_RELU);
        add(&s, NN_BATCHNORM);
        if (i == 2 || i == 5) dropout(&s, 0.4f);
    }
    add(&s, NN_FLATTEN);
    dropout(&s, 0.4f);
    dense(&s, 10);
    return s;
}

static float *rand_images(int B, size_t n, uint32_t key) {
    float *x = malloc(sizeof(float) * B * n);
    dg_rng r = dg_rng_make(3, DG_RNG_USER, 0, key);
    for (size_t i = 0; i < B * n; i++) x[i] = dg_rng_uniform(&r);
    return x;
}

static void expect_error(const nn_spec *s, const char *want) {
    nn_net *net = (nn_net *)1;
    dg_err err = {{0}};
    assert_int_equal(nn_net_create(&net, s, 4, &err), -1);
    assert_null(net);
    if (!strstr(err.msg, want)) fail_msg("error \"%s\" does not contain \"%s\"", err.msg, want);
}

static void test_shape_errors(void **state) {
    (void)state;
    nn_spec s = spec_new(1, 3, 3);
    conv(&s, 4, 5, 1, 0);
    dense(&s, 10);
    expect_error(&s, "test.spec:3: conv 5x5 does not fit a 3x3 input");

    s = spec_new(1, 28, 28);
    conv(&s, 8, 3, 1, 0);
    add(&s, NN_MAXPOOL)->size = 2;
    conv(&s, 8, 13, 1, 0); /* 13x13 on 13x13: fits */
    add(&s, NN_MAXPOOL)->size = 2; /* on 1x1 */
    dense(&s, 10);
    expect_error(&s, "test.spec:6: maxpool 2x2 does not fit a 1x1 input");

    s = spec_new(1, 28, 28);
    dense(&s, 100);
    add(&s, NN_RELU);
    dense(&s, 12);
    expect_error(&s, "test.spec:5: the network ends in 1x1x12 = 12 outputs; it must end in 10");

    s = spec_new(1, 28, 28);
    dense(&s, 10);
    dropout(&s, 1.0f);
    expect_error(&s, "test.spec:4: dropout rate must be in [0, 1)");

    s = spec_new(1, 28, 28);
    dense(&s, 10);
    add(&s, NN_BATCHNORM)->eps = 0.0f;
    expect_error(&s, "test.spec:4: batchnorm needs eps > 0");

    s = spec_new(1, 28, 28);
    conv(&s, 4, 3, 1, 3);
    dense(&s, 10);
    expect_error(&s, "conv pad=3 must be smaller than its size 3");

    s = spec_new(1, 28, 28);
    expect_error(&s, "test.spec: a network needs 1 to");

    /* pad=same keeps odd sizes at stride 1 and gives ceil(in / stride) at stride 2 */
    s = spec_new(1, 28, 28);
    conv(&s, 4, 5, 1, -1); /* 28 */
    conv(&s, 4, 3, 2, -1); /* 14 */
    conv(&s, 4, 3, 2, -1); /* 7 */
    conv(&s, 10, 7, 1, 0); /* 1 */
    nn_net *net;
    dg_err err;
    assert_int_equal(nn_net_create(&net, &s, 2, &err), 0);
    assert_int_equal(nn_net_tensor(net, 6)->shape[3], 4);
    nn_net_free(net);
}

/* An input of 4096x65536x65536 passed, and flatten computed h * w * c in int (signed overflow, then a nonsense
 * shape; tests/fuzz/corpus/model/crash-flatten-overflow makes fuzz_model's UBSan report it, crash-huge-input its
 * ASan report of a 200 TB allocation). The input is now held to the bound of every layer's output, and a net's
 * parameters are bounded too, so a spec cannot ask for terabytes. */
static void test_size_limits(void **state) {
    (void)state;
    nn_net *net = (nn_net *)1;
    dg_err err = {{0}};
    nn_spec s = spec_new(4096, 65536, 65536);
    add(&s, NN_FLATTEN);
    dense(&s, 10);
    assert_int_equal(nn_net_create(&net, &s, 1, &err), -1);
    assert_null(net);
    assert_non_null(strstr(err.msg, "input 4096x65536x65536 is too large"));
    /* 17 x 4096 x 4096 dense weights: 2^28 * 17/16 parameters, just over the bound. */
    s = spec_new(1, 4096, 4096);
    add(&s, NN_FLATTEN);
    dense(&s, 17);
    dense(&s, 10);
    net = (nn_net *)1;
    assert_int_equal(nn_net_create(&net, &s, 1, &err), -1);
    assert_null(net);
    assert_non_null(strstr(err.msg, "parameters and"));
}

static void test_tensor_table(void **state) {
    (void)state;
    nn_spec s = deotte();
    s.layers[0].l2 = 0.5f;
    nn_net *net;
    dg_err err;
    assert_int_equal(nn_net_create(&net, &s, 16, &err), 0);
    /* 7 conv (weight, bias), 7 bn (weight, bias, running_mean, running_var), 1 dense (weight, bias) */
    assert_int_equal(nn_net_tensor_count(net), 7 * 2 + 7 * 4 + 2);
    const nn_tensor *t = nn_net_tensor(net, 0);
    assert_string_equal(t->name, "conv1.weight");
    assert_int_equal(t->ndim, 4);
    assert_int_equal(t->shape[0], 32), assert_int_equal(t->shape[1], 3), assert_int_equal(t->shape[2], 3);
    assert_int_equal(t->shape[3], 1);
    assert_int_equal(t->decay, 1);
    tu_assert_exact(t->l2, 0.5f); /* the spec's l2=, copied */
    assert_string_equal(nn_net_tensor(net, 1)->name, "conv1.bias");
    assert_int_equal(nn_net_tensor(net, 1)->decay, 0);
    tu_assert_exact(nn_net_tensor(net, 1)->l2, 0.0f);
    assert_string_equal(nn_net_tensor(net, 2)->name, "bn1.weight");
    assert_string_equal(nn_net_tensor(net, 5)->name, "bn1.running_var");
    assert_int_equal(nn_net_tensor(net, 5)->is_buffer, 1);
    assert_string_equal(nn_net_tensor(net, 6)->name, "conv2.weight");
    assert_int_equal(nn_net_tensor(net, 6)->shape[3], 32);
    const nn_tensor *last = nn_net_tensor(net, nn_net_tensor_count(net) - 2);
    assert_string_equal(last->name, "dense1.weight");
    assert_int_equal(last->shape[0], 10), assert_int_equal(last->shape[1], 128);
    assert_null(nn_net_tensor(net, nn_net_tensor_count(net)));
    /* offsets tile params and buffers exactly, in table order */
    size_t p = 0, b = 0;
    for (int i = 0; i < nn_net_tensor_count(net); i++) {
        t = nn_net_tensor(net, i);
        size_t n = 1;
        for (int d = 0; d < t->ndim; d++) n *= (size_t)t->shape[d];
        assert_int_equal(t->count, n);
        if (t->is_buffer) {
            assert_int_equal(t->offset, b);
            b += n;
        } else {
            assert_int_equal(t->offset, p);
            p += n;
        }
        assert_int_equal(t->decay, strstr(t->name, ".weight") && !strstr(t->name, "bn") ? 1 : 0);
    }
    assert_int_equal(p, nn_net_param_count(net));
    assert_int_equal(b, nn_net_buffer_count(net));
    /* Keras: 326,410 trainable parameters (conv 320 + 9248 + 25632 + 18496 + 36928 + 102464 + 131200, BN scale and
     * shift 2 x (32 x 3 + 64 x 3 + 128), dense 1290) and 832 non-trainable (the running statistics) */
    assert_int_equal(nn_net_param_count(net), 320 + 9248 + 25632 + 18496 + 36928 + 102464 + 131200 +
                                                  2 * (32 * 3 + 64 * 3 + 128) + 1290);
    assert_int_equal(nn_net_buffer_count(net), 2 * (32 * 3 + 64 * 3 + 128));
    nn_net_free(net);
}

static void test_init(void **state) {
    (void)state;
    nn_spec s = deotte();
    nn_net *net;
    dg_err err;
    assert_int_equal(nn_net_create(&net, &s, 4, &err), 0);
    nn_net_init(net, 42);
    float *p = nn_net_params(net), *buf = nn_net_buffers(net);
    for (int i = 0; i < nn_net_tensor_count(net); i++) {
        const nn_tensor *t = nn_net_tensor(net, i);
        const float *v = (t->is_buffer ? buf : p) + t->offset;
        double mean = 0, var = 0, lim;
        for (size_t j = 0; j < t->count; j++) mean += v[j];
        mean /= t->count;
        for (size_t j = 0; j < t->count; j++) var += (v[j] - mean) * (v[j] - mean);
        var /= t->count;
        if (strcmp(t->name, "conv2.weight") == 0 || strcmp(t->name, "conv7.weight") == 0) {
            /* He uniform: U(-sqrt(6/fan_in), +), variance 2 / fan_in */
            double fan_in = (double)t->shape[1] * t->shape[2] * t->shape[3];
            lim = sqrt(6.0 / fan_in);
            assert_true(fabs(var / (2.0 / fan_in) - 1.0) < 0.05);
            assert_true(fabs(mean) < 0.05 * lim);
            for (size_t j = 0; j < t->count; j++) assert_true(fabs(v[j]) <= lim);
        } else if (strcmp(t->name, "dense1.weight") == 0) {
            /* Glorot uniform (no activation follows): variance 2 / (fan_in + fan_out) */
            lim = sqrt(6.0 / (128 + 10));
            for (size_t j = 0; j < t->count; j++) assert_true(fabs(v[j]) <= lim);
            assert_true(fabs(var / (2.0 / 138) - 1.0) < 0.15);
        } else if (strstr(t->name, "bias") || strstr(t->name, "running_mean")) {
            for (size_t j = 0; j < t->count; j++) tu_assert_exact(v[j], 0.0f); /* set, not drawn: exact */
        } else if (strstr(t->name, "bn") && (strstr(t->name, "weight") || strstr(t->name, "running_var"))) {
            for (size_t j = 0; j < t->count; j++) tu_assert_exact(v[j], 1.0f);
        }
    }
    /* same seed, same values; another seed, other values */
    size_t n = nn_net_param_count(net);
    float *copy = malloc(sizeof(float) * n);
    memcpy(copy, p, sizeof(float) * n);
    nn_net_init(net, 42);
    assert_memory_equal(copy, p, sizeof(float) * n);
    nn_net_init(net, 43);
    assert_true(memcmp(copy, p, sizeof(float) * 320) != 0);
    free(copy);
    nn_net_free(net);
}

/* A small net whose loss is smooth in every parameter (tanh, avgpool; dropout with a fixed step is a fixed mask;
 * batch norm in training mode): its gradient against central finite differences of a double-precision loss. */
static double net_loss(nn_net *net, const float *x, const uint8_t *y, int B, float eps) {
    const float *z = nn_net_forward(net, x, B, 1, 5, 9);
    double loss = 0.0;
    for (int b = 0; b < B; b++) {
        double m = -1e30, s = 0.0;
        for (int k = 0; k < 10; k++) m = fmax(m, z[b * 10 + k]);
        for (int k = 0; k < 10; k++) s += exp(z[b * 10 + k] - m);
        for (int k = 0; k < 10; k++) {
            double q = eps / 10 + (k == y[b] ? 1.0 - eps : 0.0);
            loss -= q * (z[b * 10 + k] - m - log(s));
        }
    }
    return loss / B;
}

static void test_net_gradient_fd(void **state) {
    (void)state;
    nn_spec s = spec_new(2, 9, 8);
    conv(&s, 4, 3, 1, 1);
    add(&s, NN_TANH);
    add(&s, NN_BATCHNORM);
    add(&s, NN_AVGPOOL)->size = 2;
    dropout(&s, 0.25f);
    conv(&s, 5, 3, 2, 0);
    add(&s, NN_LEAKYRELU)->slope = 1.0f; /* linear: smooth, but exercises the unfused activation path */
    add(&s, NN_FLATTEN);
    dense(&s, 6);
    add(&s, NN_SIGMOID);
    add(&s, NN_BATCHNORM);
    dense(&s, 10);
    const int B = 5;
    nn_net *net;
    dg_err err;
    assert_int_equal(nn_net_create(&net, &s, 8, &err), 0);
    nn_net_init(net, 7);
    float *x = rand_images(B, 2 * 9 * 8, 1);
    uint8_t y[5] = {1, 7, 3, 3, 0};
    net_loss(net, x, y, B, 0.1f);
    nn_net_loss(net, y, B, 0.1f, NULL);
    nn_net_backward(net);
    size_t n = nn_net_param_count(net);
    float *p = nn_net_params(net), *g = malloc(sizeof(float) * n);
    memcpy(g, nn_net_grads(net), sizeof(float) * n);
    double max_err = 0, max_num = 0, max_ana = 0;
    const float h = 1e-2f;
    int threads = omp_get_max_threads();
    omp_set_num_threads(1); /* hundreds of small passes (results do not depend on the thread count) */
    for (size_t i = 0; i < n; i++) {
        float keep = p[i];
        p[i] = keep + h;
        double lp = net_loss(net, x, y, B, 0.1f);
        p[i] = keep - h;
        double lm = net_loss(net, x, y, B, 0.1f);
        p[i] = keep;
        double num = (lp - lm) / (2 * h);
        max_err = fmax(max_err, fabs(num - g[i]));
        max_num = fmax(max_num, fabs(num));
        max_ana = fmax(max_ana, fabs(g[i]));
    }
    omp_set_num_threads(threads);
    /* same tolerance as test_layers.c: 1e-3 of the largest component; the guard: not all zero */
    if (!(max_err <= 1e-3 * max_num) || !(max_ana > 1e-2))
        fail_msg("net gradient: max err %g, max numeric %g, max analytic %g", max_err, max_num, max_ana);
    /* backward writes, it does not accumulate */
    net_loss(net, x, y, B, 0.1f);
    nn_net_loss(net, y, B, 0.1f, NULL);
    nn_net_backward(net);
    assert_memory_equal(g, nn_net_grads(net), sizeof(float) * n);
    free(g);
    free(x);
    nn_net_free(net);
}

/* One training step's logits, loss and gradients with `threads` threads. */
static void run_step(const nn_spec *s, int B, int threads, float *logits, float *grads, float *bufs, float *loss) {
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    nn_net *net;
    dg_err err;
    assert_int_equal(nn_net_create(&net, s, B, &err), 0);
    nn_net_init(net, 11);
    size_t in_n = (size_t)s->in_c * s->in_h * s->in_w;
    float *x = rand_images(B, in_n, 2);
    uint8_t *y = malloc((size_t)B);
    for (int i = 0; i < B; i++) y[i] = (uint8_t)(i * 7 % 10);
    const float *z = nn_net_forward(net, x, B, 1, 3, 17);
    memcpy(logits, z, sizeof(float) * B * 10);
    *loss = nn_net_loss(net, y, B, 0.05f, NULL);
    nn_net_backward(net);
    memcpy(grads, nn_net_grads(net), sizeof(float) * nn_net_param_count(net));
    memcpy(bufs, nn_net_buffers(net), sizeof(float) * nn_net_buffer_count(net));
    free(x);
    free(y);
    nn_net_free(net);
}

static void test_thread_determinism(void **state) {
    (void)state;
    int saved = omp_get_max_threads();
    nn_spec specs[2] = {deotte(), spec_new(1, 28, 28)};
    dense(&specs[1], 100);
    add(&specs[1], NN_RELU);
    add(&specs[1], NN_BATCHNORM);
    dropout(&specs[1], 0.5f);
    dense(&specs[1], 10);
    const int batches[2] = {13, 64};
    for (int si = 0; si < 2; si++)
        for (int bi = 0; bi < 2; bi++) {
            int B = batches[bi];
            size_t np = 400000, nb = 1000;
            float *l1 = malloc(sizeof(float) * B * 10), *l2 = malloc(sizeof(float) * B * 10);
            float *g1 = malloc(sizeof(float) * np), *g2 = malloc(sizeof(float) * np);
            float *b1 = malloc(sizeof(float) * nb), *b2 = malloc(sizeof(float) * nb), loss1, loss2;
            nn_net *probe;
            dg_err err;
            assert_int_equal(nn_net_create(&probe, &specs[si], B, &err), 0);
            size_t n = nn_net_param_count(probe), m = nn_net_buffer_count(probe);
            nn_net_free(probe);
            assert_true(n <= np && m <= nb);
            run_step(&specs[si], B, 1, l1, g1, b1, &loss1);
            run_step(&specs[si], B, 2, l2, g2, b2, &loss2);
            assert_memory_equal(l1, l2, sizeof(float) * B * 10);
            assert_memory_equal(g1, g2, sizeof(float) * n);
            assert_memory_equal(b1, b2, sizeof(float) * m);
            assert_true(loss1 == loss2 && isfinite(loss1));
            free(l1), free(l2), free(g1), free(g2), free(b1), free(b2);
        }
    omp_set_num_threads(saved);
    openblas_set_num_threads(saved);
}

static void test_modes_and_dropout(void **state) {
    (void)state;
    nn_spec s = deotte();
    const int B = 6;
    nn_net *net;
    dg_err err;
    assert_int_equal(nn_net_create(&net, &s, 8, &err), 0);
    nn_net_init(net, 1);
    float *x = rand_images(B, 784, 4), z1[60], z2[60];
    size_t nbuf = nn_net_buffer_count(net);
    float *rs = malloc(sizeof(float) * nbuf);
    /* training: the same (seed, step) gives the same dropout masks, another step other ones */
    memcpy(z1, nn_net_forward(net, x, B, 1, 1, 5), sizeof z1);
    memcpy(z2, nn_net_forward(net, x, B, 1, 1, 5), sizeof z2);
    assert_memory_equal(z1, z2, sizeof z1);
    memcpy(z2, nn_net_forward(net, x, B, 1, 1, 6), sizeof z2);
    assert_true(memcmp(z1, z2, sizeof z1) != 0);
    /* a sample's output in training does not depend on the other samples only through batch norm: with the
     * running statistics (inference) it is a function of the sample alone */
    memcpy(rs, nn_net_buffers(net), sizeof(float) * nbuf);
    memcpy(z1, nn_net_forward(net, x, B, 0, 0, 0), sizeof z1);
    assert_memory_equal(rs, nn_net_buffers(net), sizeof(float) * nbuf); /* inference leaves running stats alone */
    const float *z3 = nn_net_forward(net, x + 2 * 784, 1, 0, 0, 0);
    for (int k = 0; k < 10; k++) assert_float_equal(z3[k], z1[20 + k], 1e-5);
    /* probabilities */
    nn_net_forward(net, x, B, 0, 0, 0);
    const float *p = nn_net_probs(net);
    for (int b = 0; b < B; b++) {
        double sum = 0;
        for (int k = 0; k < 10; k++) sum += p[b * 10 + k];
        assert_float_equal(sum, 1.0, 1e-5);
    }
    /* misuse */
    assert_null(nn_net_forward(net, x, 9, 0, 0, 0));
    uint8_t y[6] = {0};
    assert_true(isnan(nn_net_loss(net, y, 5, 0.0f, NULL)));
    int correct = -1;
    assert_true(isfinite(nn_net_loss(net, y, B, 0.0f, &correct)));
    assert_true(correct >= 0 && correct <= B);
    free(x);
    free(rs);
    nn_net_free(net);
}

static void test_flops_and_summary(void **state) {
    (void)state;
    nn_spec s = deotte();
    nn_net *net;
    dg_err err;
    assert_int_equal(nn_net_create(&net, &s, 4, &err), 0);
    /* convolutions: out * (2 K + 1); dense 10 * (2*128 + 1); BN 2 per output; ReLU 1 per output */
    const uint64_t outs[7] = {26 * 26 * 32, 24 * 24 * 32, 12 * 12 * 32, 10 * 10 * 64, 8 * 8 * 64, 4 * 4 * 64, 128};
    const uint64_t ks[7] = {9, 288, 800, 288, 576, 1600, 1024};
    uint64_t want = 10 * (2 * 128 + 1);
    for (int i = 0; i < 7; i++) want += outs[i] * (2 * ks[i] + 1) + 3 * outs[i];
    assert_int_equal(nn_net_flops(net), want);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    nn_net_summary(net, f);
    fclose(f);
    assert_non_null(strstr(text, "conv 32 5x5 stride 2 pad 2"));
    assert_non_null(strstr(text, "12x12x32"));
    assert_non_null(strstr(text, "326410 trainable parameters"));
    assert_non_null(strstr(text, "dense 10"));
    free(text);
    nn_net_free(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_errors),     cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_tensor_table),
        cmocka_unit_test(test_init),             cmocka_unit_test(test_net_gradient_fd),
        cmocka_unit_test(test_thread_determinism), cmocka_unit_test(test_modes_and_dropout),
        cmocka_unit_test(test_flops_and_summary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
