/* Tests for nn/net against PyTorch: logits, loss, every gradient and the batch-norm running statistics after one
 * training-mode step of a small CNN (conv, ReLU, batch norm, max and average pooling, flatten, dense, 1-d batch
 * norm, label smoothing) and of a small MLP, with the weights and inputs PyTorch used.
 *
 * The CNN's 16- and 32-channel convolutions run on the AVX2 paths where the CPU has them (set DIGITS_NO_AVX2=1 to
 * check the portable im2col + OpenBLAS path the same way).
 * The reference values in tests/fixtures/nn/ref_{cnn,mlp}/ come from tests/nn/gen_reference.py (PyTorch in
 * float64 on the same float32 weights); this test only reads them (CI has no torch). They are stored in PyTorch's
 * layouts, so the test does the permutations itself: x NCHW -> NHWC, conv weights OIHW -> OHWI, and the columns of
 * a dense layer after a flatten from (C, H, W) order to our (H, W, C) order.
 *
 * Tolerances (our float32 against exact-ish float64):
 *  - logits and loss: 1e-4 relative (to the largest |logit| of the batch, and to the loss);
 *  - gradients: max |ours - ref| <= 1e-4 max |ref| per tensor. Float32 rounding (6e-8) grows through the chain
 *    of backward products and through sums of up to 3456 terms (conv1's weight gradient sums over 6 x 24 x 24
 *    pixels, ~sqrt(3456) x 6e-8 ~ 4e-6 relative), and batch norm's backward subtracts two means from dy,
 *    cancelling most of it (worst for the 1-d batch norm over only 6 rows). The measured errors (printed below)
 *    are 1e-7..2e-5 of the tensor's largest value (PyTorch itself in float32: 3e-7..4e-6); 1e-4 keeps a 5x margin
 *    while any layout or formula mistake gives errors of order 1;
 *  - running statistics: 1e-5 relative.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/net.h"
#include "core/dg_npy.h"

#define REF_DIR DIGITS_FIXTURES "/nn"

/* A .npy file (float32, float64 or uint8) as doubles. */
static double *load(const char *dir, const char *name, size_t *count) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s.npy", REF_DIR, dir, name);
    dg_npy_file f;
    dg_err e;
    if (dg_npy_open(&f, path, 0, &e) != 0) fail_msg("%s", e.msg);
    size_t n = dg_npy_count(&f.h);
    double *v = malloc(sizeof(double) * (n ? n : 1));
    if (dg_npy_is(&f.h, "<f4")) {
        for (size_t i = 0; i < n; i++) v[i] = ((const float *)f.data)[i];
    } else if (dg_npy_is(&f.h, "<f8")) {
        memcpy(v, f.data, sizeof(double) * n);
    } else if (dg_npy_is(&f.h, "|u1")) {
        for (size_t i = 0; i < n; i++) v[i] = ((const uint8_t *)f.data)[i];
    } else {
        fail_msg("%s: unexpected dtype %s", path, f.h.descr);
    }
    dg_npy_close(&f);
    if (count) *count = n;
    return v;
}

/* The index in PyTorch's layout of element i of our tensor t. flat_chw: the (C, H, W) of the image a dense layer
 * flattens (NULL if none or 1x1). */
static size_t torch_index(const nn_tensor *t, size_t i, const int *flat_chw) {
    if (t->ndim == 4) { /* ours (O, KH, KW, I) <- torch (O, I, KH, KW) */
        int O = t->shape[0], KH = t->shape[1], KW = t->shape[2], I = t->shape[3];
        size_t c = i % I, kw = i / I % KW, kh = i / I / KW % KH, o = i / I / KW / KH;
        (void)O;
        return ((o * I + c) * KH + kh) * KW + kw;
    }
    if (t->ndim == 2 && flat_chw) { /* dense weight (OUT, H*W*C) <- (OUT, C*H*W) */
        int C = flat_chw[0], H = flat_chw[1], W = flat_chw[2];
        size_t in = (size_t)t->shape[1], o = i / in, j = i % in;
        size_t c = j % C, w = j / C % W, h = j / C / W;
        return o * in + (c * H + h) * W + w;
    }
    return i;
}

typedef struct model_case {
    const char *dir;
    int B;
    float smoothing;
    const char *flat_tensor; /* the dense weight that follows a flatten of a (C, H, W) image with C, H*W > 1 */
    int flat_chw[3];
} model_case;

static void check_model(const nn_spec *spec, const model_case *mc) {
    nn_net *net;
    dg_err err;
    assert_int_equal(nn_net_create(&net, spec, mc->B, &err), 0);
    float *params = nn_net_params(net), *bufs = nn_net_buffers(net);
    int nt = nn_net_tensor_count(net);
    for (int k = 0; k < nt; k++) {
        const nn_tensor *t = nn_net_tensor(net, k);
        size_t n;
        double *v = load(mc->dir, t->name, &n);
        assert_int_equal(n, t->count);
        const int *chw = strcmp(t->name, mc->flat_tensor) == 0 ? mc->flat_chw : NULL;
        float *dst = (t->is_buffer ? bufs : params) + t->offset;
        for (size_t i = 0; i < n; i++) dst[i] = (float)v[torch_index(t, i, chw)];
        free(v);
    }
    /* x: (B, 1, 28, 28) NCHW is (B, 28, 28, 1) NHWC */
    size_t n;
    double *xd = load(mc->dir, "x", &n), *yd = load(mc->dir, "y", NULL);
    assert_int_equal(n, (size_t)mc->B * 784);
    float *x = malloc(sizeof(float) * n);
    uint8_t *y = malloc((size_t)mc->B);
    for (size_t i = 0; i < n; i++) x[i] = (float)xd[i];
    for (int b = 0; b < mc->B; b++) y[b] = (uint8_t)yd[b];

    const float *z = nn_net_forward(net, x, mc->B, 1, 0, 0);
    double *ref = load(mc->dir, "logits", &n);
    assert_int_equal(n, (size_t)mc->B * 10);
    double zmax = 0, zerr = 0;
    for (size_t i = 0; i < n; i++) {
        zmax = fmax(zmax, fabs(ref[i]));
        zerr = fmax(zerr, fabs(z[i] - ref[i]));
    }
    print_message("%s: logits max error %.2e of max |logit| %.3f\n", mc->dir, zerr / zmax, zmax);
    assert_true(zerr <= 1e-4 * zmax);
    free(ref);
    float loss = nn_net_loss(net, y, mc->B, mc->smoothing, NULL);
    ref = load(mc->dir, "loss", NULL);
    print_message("%s: loss %.7f, PyTorch %.7f\n", mc->dir, loss, ref[0]);
    assert_true(fabs(loss - ref[0]) <= 1e-4 * fabs(ref[0]));
    free(ref);
    nn_net_backward(net);

    const float *grads = nn_net_grads(net);
    char name[80];
    for (int k = 0; k < nt; k++) {
        const nn_tensor *t = nn_net_tensor(net, k);
        const int *chw = strcmp(t->name, mc->flat_tensor) == 0 ? mc->flat_chw : NULL;
        const float *mine = t->is_buffer ? bufs + t->offset : grads + t->offset;
        snprintf(name, sizeof name, t->is_buffer ? "%s.after" : "%s.grad", t->name);
        ref = load(mc->dir, name, &n);
        assert_int_equal(n, t->count);
        double rmax = 0, gerr = 0;
        for (size_t i = 0; i < n; i++) {
            double r = ref[torch_index(t, i, chw)];
            rmax = fmax(rmax, fabs(r));
            gerr = fmax(gerr, fabs(mine[i] - r));
        }
        print_message("%s: %-22s max |ref| %.3e, max error %.2e of it\n", mc->dir, name, rmax, gerr / rmax);
        assert_true(rmax > 0.0);
        if (!(gerr <= (t->is_buffer ? 1e-5 : 1e-4) * rmax))
            fail_msg("%s %s: max error %g, max |ref| %g", mc->dir, name, gerr, rmax);
        free(ref);
    }
    free(xd), free(yd), free(x), free(y);
    nn_net_free(net);
}

static nn_spec spec_new(void) {
    nn_spec s;
    memset(&s, 0, sizeof s);
    snprintf(s.name, sizeof s.name, "reference");
    snprintf(s.file, sizeof s.file, "reference.spec");
    s.in_c = 1, s.in_h = 28, s.in_w = 28;
    return s;
}

static nn_layer_spec *add(nn_spec *s, nn_kind k) {
    nn_layer_spec *l = &s->layers[s->n_layers++];
    memset(l, 0, sizeof *l);
    l->kind = k;
    l->line = s->n_layers + 2;
    l->stride = 1;
    l->momentum = 0.1f; /* PyTorch's defaults */
    l->eps = 1e-5f;
    return l;
}

static void test_cnn(void **state) {
    (void)state;
    nn_spec s = spec_new();
    nn_layer_spec *l = add(&s, NN_CONV);
    l->filters = 16, l->size = 5;
    add(&s, NN_RELU);
    add(&s, NN_BATCHNORM);
    l = add(&s, NN_MAXPOOL);
    l->size = 2, l->stride = 2;
    l = add(&s, NN_CONV); /* stride 1: input gradient as a transposed convolution */
    l->filters = 16, l->size = 3, l->pad = 1;
    add(&s, NN_RELU);
    add(&s, NN_BATCHNORM);
    l = add(&s, NN_CONV); /* stride 2: scattered input gradient */
    l->filters = 32, l->size = 3, l->stride = 2, l->pad = 1;
    add(&s, NN_RELU);
    add(&s, NN_BATCHNORM);
    l = add(&s, NN_CONV); /* 4x4 output: channel split */
    l->filters = 32, l->size = 3;
    add(&s, NN_RELU);
    l = add(&s, NN_AVGPOOL);
    l->size = 2, l->stride = 2;
    add(&s, NN_FLATTEN);
    add(&s, NN_DENSE)->units = 20;
    add(&s, NN_RELU);
    add(&s, NN_BATCHNORM);
    add(&s, NN_DENSE)->units = 10;
    model_case mc = {"ref_cnn", 6, 0.1f, "dense1.weight", {32, 2, 2}};
    check_model(&s, &mc);
}

static void test_mlp(void **state) {
    (void)state;
    nn_spec s = spec_new();
    add(&s, NN_FLATTEN);
    add(&s, NN_DENSE)->units = 32;
    add(&s, NN_RELU);
    add(&s, NN_DENSE)->units = 10;
    model_case mc = {"ref_mlp", 8, 0.0f, "", {0, 0, 0}};
    check_model(&s, &mc);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_cnn), cmocka_unit_test(test_mlp)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
