/* The layers of nn/layers_gan and a conditional GAN step through nn/net against PyTorch (float64 runs of the same
 * float32 inputs and weights, tests/fixtures/nn/gan_torch.h, written by tests/nn/gen_gan_reference.py):
 * ConvTranspose2d with and without output padding, the label embedding, BCEWithLogitsLoss, and the generator's
 * step BCE(D(G(z, l), l), 1) (image, logits, loss, D's input gradient, every G gradient) and the discriminator's
 * step on a real batch (every D gradient).
 *
 * Tolerance: each tensor is compared as a whole, max |C - torch| <= TOL * max |torch| + 1e-6 (the absolute part for
 * tensors that are zero up to rounding, as a bias before a batch norm), TOL = 1e-5: float32 sums of at most a few
 * hundred products, through at most two batch norms (whose 1/std amplifies the rounding of the batch statistics);
 * the largest error seen was 4e-7 of the tensor's largest value.
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

#include "nn/layers.h"
#include "nn/net.h"
#include "nn/spec.h"
#include "fixtures/nn/gan_torch.h"
#include "testutil.h"

#define TOL_LAYER 1e-5
#define TOL_NET 1e-5

static void close_to(const char *what, const float *got, const float *want, size_t n, double tol) {
    double err = 0.0, mx = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]);
        if (!(e <= err)) err = e, at = i; /* NaN counts as the largest error */
        mx = fmax(mx, fabs(want[i]));
    }
    print_message("%-28s max error %.3g of max %.3g\n", what, err, mx);
    if (!(err <= tol * mx + 1e-6))
        fail_msg("%s: max |C - torch| = %g at %zu (%g vs %g), max |torch| = %g, tolerance %g", what, err, at,
                 got[at], want[at], mx, tol * mx + 1e-6);
}

static void deconv_case(const int *dims, const float *x, const float *w, const float *b, const float *y,
                        const float *dy, const float *dx, const float *dw, const float *db) {
    const int B = dims[0];
    nn_deconv_dims d = {.H = dims[1], .W = dims[2], .C = dims[3], .OC = dims[4], .KH = dims[5], .KW = dims[5],
                        .stride = dims[6], .pad = dims[7], .opad = dims[8]};
    assert_int_equal(nn_deconv_dims_finish(&d), 0);
    size_t in_n = (size_t)B * d.H * d.W * d.C, out_n = (size_t)B * d.OH * d.OW * d.OC;
    size_t wn = (size_t)d.C * d.KH * d.KW * d.OC;
    float *out = malloc(sizeof(float) * out_n), *g = malloc(sizeof(float) * out_n);
    float *din = malloc(sizeof(float) * in_n), *dwc = malloc(sizeof(float) * wn), *dbc = malloc(sizeof(float) * d.OC);
    float *scratch = malloc(sizeof(float) * nn_deconv2d_scratch(&d, B));
    nn_deconv2d_forward(out, NULL, scratch, x, w, b, B, &d, NN_ACT_NONE, 0.0f);
    memcpy(g, dy, sizeof(float) * out_n);
    nn_deconv2d_backward(din, dwc, dbc, scratch, g, out, x, w, B, &d, NN_ACT_NONE, 0.0f);
    close_to("deconv output", out, y, out_n, TOL_LAYER);
    close_to("deconv d(input)", din, dx, in_n, TOL_LAYER);
    close_to("deconv d(weight)", dwc, dw, wn, TOL_LAYER);
    close_to("deconv d(bias)", dbc, db, (size_t)d.OC, TOL_LAYER);
    free(out), free(g), free(din), free(dwc), free(dbc), free(scratch);
}

static void test_deconv(void **state) {
    (void)state;
    deconv_case(deconv_a_dims, deconv_a_x, deconv_a_w, deconv_a_b, deconv_a_y, deconv_a_dy, deconv_a_dx,
                deconv_a_dw, deconv_a_db);
    deconv_case(deconv_b_dims, deconv_b_x, deconv_b_w, deconv_b_b, deconv_b_y, deconv_b_dy, deconv_b_dx,
                deconv_b_dw, deconv_b_db);
}

static void test_deconv_portable(void **state) {
    (void)state;
    tu_env no_avx2;
    tu_env_set(&no_avx2, "DIGITS_NO_AVX2", "1");
    deconv_case(deconv_a_dims, deconv_a_x, deconv_a_w, deconv_a_b, deconv_a_y, deconv_a_dy, deconv_a_dx,
                deconv_a_dw, deconv_a_db);
    tu_env_restore(&no_avx2);
}

static void test_embed(void **state) {
    (void)state;
    float y[48], g[48], dx[24], dt[30];
    nn_embed_forward(y, embed_x, embed_table, embed_labels, 2, 4, 3, 3);
    close_to("embed output", y, embed_y, 48, TOL_LAYER);
    /* d(sum r tanh(y))/dy = r (1 - tanh^2) */
    for (int i = 0; i < 48; i++) g[i] = embed_r[i] * (1.0f - tanhf(y[i]) * tanhf(y[i]));
    nn_embed_backward(dx, dt, g, embed_labels, 2, 4, 3, 3, 10);
    close_to("embed d(input)", dx, embed_dx, 24, TOL_LAYER);
    close_to("embed d(table)", dt, embed_dtable, 30, TOL_LAYER);
}

static void test_bce(void **state) {
    (void)state;
    float dz[8];
    float loss = nn_bce_logits(dz, bce_z, bce_t, 8);
    print_message("bce loss %.9g vs %.9g\n", loss, bce_loss);
    assert_true(fabs(loss - bce_loss) <= TOL_LAYER * fabs(bce_loss));
    close_to("bce d(logits)", dz, bce_dz, 8, TOL_LAYER);
}

/* ---- the GAN step through nn/net ---- */

static nn_net *net_from(const char *text, const gan_fx_tensor *params, size_t n_params) {
    nn_spec s;
    dg_err err;
    if (nn_spec_parse(&s, text, "fixture.spec", &err) != 0) fail_msg("%s", err.msg);
    nn_net *net;
    if (nn_net_create(&net, &s, GAN_B, &err) != 0) fail_msg("%s", err.msg);
    nn_spec_free(&s);
    /* every trainable tensor of the net comes from the fixture, by name */
    size_t set = 0;
    for (int t = 0; t < nn_net_tensor_count(net); t++) {
        const nn_tensor *T = nn_net_tensor(net, t);
        if (T->is_buffer) continue;
        size_t j = 0;
        while (j < n_params && strcmp(params[j].name, T->name) != 0) j++;
        if (j == n_params) fail_msg("tensor %s is not in the fixture", T->name);
        assert_int_equal(params[j].n, T->count);
        memcpy(nn_net_params(net) + T->offset, params[j].v, sizeof(float) * T->count);
        set++;
    }
    assert_int_equal(set, n_params);
    return net;
}

static void compare_grads(nn_net *net, const gan_fx_tensor *grads, size_t n, const char *who) {
    for (size_t j = 0; j < n; j++)
        for (int t = 0; t < nn_net_tensor_count(net); t++) {
            const nn_tensor *T = nn_net_tensor(net, t);
            if (T->is_buffer || strcmp(grads[j].name, T->name) != 0) continue;
            char what[80];
            snprintf(what, sizeof what, "%s %s grad", who, T->name);
            close_to(what, nn_net_grads(net) + T->offset, grads[j].v, T->count, TOL_NET);
        }
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void test_gan_step(void **state) {
    (void)state;
    nn_net *g = net_from(gan_g_spec, gan_g_params, COUNT(gan_g_params));
    nn_net *d = net_from(gan_d_spec, gan_d_params, COUNT(gan_d_params));
    float ones[GAN_B], dimg[GAN_B * 64];
    for (int i = 0; i < GAN_B; i++) ones[i] = 1.0f;
    /* the generator's step */
    const float *img = nn_net_forward_cond(g, gan_z, gan_labels, GAN_B, 1, 0, 0);
    assert_non_null(img);
    close_to("G image", img, gan_img, GAN_B * 64, TOL_NET);
    const float *logits = nn_net_forward_cond(d, img, gan_labels, GAN_B, 1, 0, 0);
    close_to("D(G) logits", logits, gan_fake_logits, GAN_B, TOL_NET);
    float loss = nn_net_loss_bce(d, ones, GAN_B);
    print_message("G loss %.9g vs %.9g\n", loss, gan_g_loss);
    assert_true(fabs(loss - gan_g_loss) <= TOL_NET * fabs(gan_g_loss));
    nn_net_backward_input(d, dimg);
    close_to("D input gradient", dimg, gan_dimg, GAN_B * 64, TOL_NET);
    assert_int_equal(nn_net_output_grad(g, dimg, GAN_B), 0);
    nn_net_backward(g);
    compare_grads(g, gan_g_grads, COUNT(gan_g_grads), "G");
    /* the discriminator's step on the real batch */
    logits = nn_net_forward_cond(d, gan_real, gan_labels, GAN_B, 1, 0, 0);
    close_to("D(real) logits", logits, gan_real_logits, GAN_B, TOL_NET);
    loss = nn_net_loss_bce(d, ones, GAN_B);
    assert_true(fabs(loss - gan_d_loss) <= TOL_NET * fabs(gan_d_loss));
    nn_net_backward(d);
    compare_grads(d, gan_d_grads, COUNT(gan_d_grads), "D");
    nn_net_free(g), nn_net_free(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deconv), cmocka_unit_test(test_deconv_portable), cmocka_unit_test(test_embed),
        cmocka_unit_test(test_bce),    cmocka_unit_test(test_gan_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
