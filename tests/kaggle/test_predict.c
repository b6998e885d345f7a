/* Tests for kaggle/predict and digits-predict: the fixed TTA views (exact integer shifts), image files, model
 * resolution and fit checks, batched inference equal to one-image forward passes, and the stage binary (output,
 * mean over models, clear errors with nothing written). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kaggle/predict.h"
#include "nn/model.h"
#include "nn/net.h"
#include "nn/spec.h"
#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "core/dg_npy.h"

#define TMP DIGITS_TEST_TMP "/kg_predict"

static const char *kTinySpec = "name tiny\ninput 1x28x28\nflatten\ndense units=16\nrelu\ndense units=10\n";

/* A deterministic "digit": a blob whose position depends on i. */
static void make_image(uint8_t *img, int i) {
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            int dx = x - (10 + i % 8), dy = y - (9 + (i * 3) % 10);
            int v = 255 - 12 * (dx * dx + dy * dy);
            img[y * 28 + x] = (uint8_t)(v > 0 ? v : 0);
        }
}

static void test_tta_views(void **state) {
    (void)state;
    uint8_t img[784];
    float v[KG_TTA_MAX][784];
    make_image(img, 3);
    for (int t = 0; t < KG_TTA_MAX; t++) kg_tta_apply(v[t], img, t);
    for (int i = 0; i < 784; i++) assert_true(v[0][i] == img[i] / 255.0f);
    /* views 1..4: exact 1-pixel shifts right, left, down, up (zero fill) */
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            float r = x > 0 ? img[y * 28 + x - 1] / 255.0f : 0, l = x < 27 ? img[y * 28 + x + 1] / 255.0f : 0;
            float d = y > 0 ? img[(y - 1) * 28 + x] / 255.0f : 0, u = y < 27 ? img[(y + 1) * 28 + x] / 255.0f : 0;
            assert_true(v[1][y * 28 + x] == r);
            assert_true(v[2][y * 28 + x] == l);
            assert_true(v[3][y * 28 + x] == d);
            assert_true(v[4][y * 28 + x] == u);
        }
    /* rotations and zooms: a centred disc keeps its centre pixel; mass is kept by rotations (within 2%), grows by
     * about 1.08^2 under zoom 1.08 and shrinks under 0.92 */
    uint8_t disc[784];
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            double r2 = (x - 13.5) * (x - 13.5) + (y - 13.5) * (y - 13.5);
            disc[y * 28 + x] = r2 < 36 ? 200 : 0;
        }
    double mass[KG_TTA_MAX];
    for (int t = 0; t < KG_TTA_MAX; t++) {
        kg_tta_apply(v[t], disc, t);
        mass[t] = 0;
        for (int i = 0; i < 784; i++) mass[t] += v[t][i];
        assert_float_equal(v[t][13 * 28 + 13], 200 / 255.0f, 1e-5);
    }
    assert_float_equal(mass[5] / mass[0], 1.0, 0.02);
    assert_float_equal(mass[6] / mass[0], 1.0, 0.02);
    assert_float_equal(mass[7] / mass[0], 1.08 * 1.08, 0.06);
    assert_float_equal(mass[8] / mass[0], 0.92 * 0.92, 0.06);
    /* a rotation moves an off-centre pixel: +8 and -8 differ from each other and from the image */
    double d56 = 0;
    kg_tta_apply(v[5], img, 5);
    kg_tta_apply(v[6], img, 6);
    for (int i = 0; i < 784; i++) d56 += fabs(v[5][i] - v[6][i]);
    assert_true(d56 > 1.0);
    assert_string_equal(kg_tta_name(0), "identity");
}

static void write_dataset(const char *path, int n, int labelled) {
    dg_err err;
    dg_dataset_writer w;
    uint8_t img[784];
    assert_int_equal(dg_dataset_writer_open(&w, path, labelled, &err), 0);
    for (int i = 0; i < n; i++) {
        make_image(img, i);
        assert_int_equal(dg_dataset_writer_add(&w, img, i % 10, &err), 0);
    }
    assert_int_equal(dg_dataset_writer_commit(&w, &err), 0);
}

static void test_images_open(void **state) {
    (void)state;
    dg_err err;
    kg_images im;
    write_dataset(TMP "_ds.npy", 7, 1);
    assert_int_equal(kg_images_open(&im, TMP "_ds.npy", &err), 0);
    assert_int_equal(im.n, 7);
    assert_int_equal(im.has_labels, 1);
    assert_int_equal(kg_images_label(&im, 3), 3);
    uint8_t img[784];
    make_image(img, 5);
    assert_memory_equal(kg_images_get(&im, 5), img, 784);
    kg_images_close(&im);
    /* plain uint8 (N, 28, 28) */
    uint8_t raw[3 * 784];
    for (int i = 0; i < 3; i++) make_image(raw + i * 784, i);
    size_t shape[3] = {3, 28, 28};
    assert_int_equal(dg_npy_save(TMP "_raw.npy", "|u1", shape, 3, raw, 1, &err), 0);
    assert_int_equal(kg_images_open(&im, TMP "_raw.npy", &err), 0);
    assert_int_equal(im.n, 3);
    assert_int_equal(im.has_labels, 0);
    assert_int_equal(kg_images_label(&im, 0), -1);
    assert_memory_equal(kg_images_get(&im, 2), raw + 2 * 784, 784);
    kg_images_close(&im);
    /* float images are not accepted */
    float f[784] = {0};
    size_t fs[3] = {1, 28, 28};
    assert_int_equal(dg_npy_save(TMP "_f.npy", "<f4", fs, 3, f, 4, &err), 0);
    assert_int_equal(kg_images_open(&im, TMP "_f.npy", &err), -1);
    assert_non_null(strstr(err.msg, "expected a digits dataset or uint8 images"));
    unlink(TMP "_raw.npy");
    unlink(TMP "_f.npy");
}

static nn_net *tiny_net(const char *spec_text, int max_batch, uint64_t seed, nn_spec *spec) {
    dg_err err = {{0}};
    nn_net *net = NULL;
    if (nn_spec_parse(spec, spec_text, "<test>", &err) != 0) {
        print_error("%s\n", err.msg);
        fail();
    }
    if (nn_net_create(&net, spec, max_batch, &err) != 0) {
        print_error("%s\n", err.msg);
        fail();
    }
    nn_net_init(net, seed);
    return net;
}

/* Batches of 4 over 10 chosen rows, with TTA 2, equal the mean of two one-image forward passes. */
static void test_predict_net_matches_single_forward(void **state) {
    (void)state;
    dg_err err;
    write_dataset(TMP "_ds.npy", 20, 1);
    kg_images im;
    assert_int_equal(kg_images_open(&im, TMP "_ds.npy", &err), 0);
    nn_spec spec, spec1;
    nn_net *net = tiny_net(kTinySpec, 4, 7, &spec);
    nn_net *one = tiny_net(kTinySpec, 1, 7, &spec1);
    int64_t rows[10] = {19, 0, 3, 3, 7, 11, 2, 18, 5, 9};
    float probs[100], x[784];
    assert_int_equal(kg_predict_net(probs, net, &im, rows, 10, 2, &err), 0);
    for (int i = 0; i < 10; i++) {
        double want[10] = {0};
        for (int v = 0; v < 2; v++) {
            kg_tta_apply(x, kg_images_get(&im, (size_t)rows[i]), v);
            nn_net_forward(one, x, 1, 0, 0, 0);
            const float *p = nn_net_probs(one);
            for (int k = 0; k < 10; k++) want[k] += p[k] / 2;
        }
        double s = 0;
        for (int k = 0; k < 10; k++) {
            assert_float_equal(probs[i * 10 + k], want[k], 1e-5);
            s += probs[i * 10 + k];
        }
        assert_float_equal(s, 1.0, 1e-5);
    }
    /* rows 3 and 3 give the same answer */
    assert_memory_equal(probs + 20, probs + 30, 10 * sizeof(float));
    /* bad rows and bad tta */
    int64_t bad[1] = {20};
    assert_int_equal(kg_predict_net(probs, net, &im, bad, 1, 1, &err), -1);
    assert_non_null(strstr(err.msg, "outside"));
    assert_int_equal(kg_predict_net(probs, net, &im, NULL, 1, KG_TTA_MAX + 1, &err), -1);
    nn_net_free(net);
    nn_net_free(one);
    nn_spec_free(&spec);
    nn_spec_free(&spec1);
    kg_images_close(&im);
}

static void test_net_fits(void **state) {
    (void)state;
    dg_err err;
    nn_spec s1, s2, s3;
    nn_net *ok = tiny_net(kTinySpec, 1, 1, &s1);
    assert_int_equal(kg_net_fits(ok, "ok", &err), 0);
    nn_net *big = tiny_net("name big\ninput 1x32x32\nflatten\ndense units=10\n", 1, 1, &s2);
    assert_int_equal(kg_net_fits(big, "big", &err), -1);
    assert_non_null(strstr(err.msg, "32x32x1 inputs"));
    /* (a net ending in other than 10 outputs cannot be built: nn_net_create refuses it) */
    nn_net *five = tiny_net("name conv\ninput 1x28x28\nconv filters=10 size=28\nflatten\n", 1, 1, &s3);
    assert_int_equal(kg_net_fits(five, "conv", &err), 0);
    /* a GAN's discriminator takes 28x28x1 images too, but is not a classifier */
    nn_spec s4;
    nn_net *disc = tiny_net("name d\ninput 1x28x28\noutput logit\nflatten\ndense units=1\n", 1, 1, &s4);
    assert_int_equal(kg_net_fits(disc, "d", &err), -1);
    assert_string_equal(err.msg, "d: a GAN's discriminator ('output logit'), not a classifier");
    nn_net_free(disc);
    nn_spec_free(&s4);
    nn_net_free(ok);
    nn_net_free(big);
    nn_net_free(five);
    nn_spec_free(&s1);
    nn_spec_free(&s2);
    nn_spec_free(&s3);
}

static void test_model_path(void **state) {
    (void)state;
    dg_err err;
    char p[1024];
    assert_int_equal(system("rm -rf " TMP "_run && mkdir -p " TMP "_run"), 0);
    assert_int_equal(kg_model_path(p, sizeof p, TMP "_run", &err), -1);
    assert_non_null(strstr(err.msg, "without model.safetensors"));
    assert_int_equal(dg_write_file_atomic(TMP "_run/checkpoint.ckpt", "x", 1, &err), 0);
    assert_int_equal(kg_model_path(p, sizeof p, TMP "_run", &err), -1);
    assert_non_null(strstr(err.msg, "has not finished"));
    assert_int_equal(dg_write_file_atomic(TMP "_run/model.safetensors", "x", 1, &err), 0);
    assert_int_equal(kg_model_path(p, sizeof p, TMP "_run", &err), 0);
    assert_string_equal(p, TMP "_run/model.safetensors");
    assert_int_equal(kg_model_path(p, sizeof p, TMP "_nothing", &err), -1);
    assert_non_null(strstr(err.msg, "_nothing"));
}

/* digits-predict end to end: two saved models, probabilities = mean of both, labels as a submission; a file that
 * is not a model, or a model that does not fit, writes nothing. */
static void test_stage_binary(void **state) {
    (void)state;
    dg_err err;
    char cmd[2048];
    write_dataset(TMP "_test.npy", 12, 0);
    nn_spec sa, sb, sc;
    nn_net *a = tiny_net(kTinySpec, 12, 1, &sa), *b = tiny_net(kTinySpec, 12, 2, &sb);
    nn_net *c = tiny_net("name big\ninput 1x32x32\nflatten\ndense units=10\n", 1, 1, &sc);
    assert_int_equal(nn_model_save(TMP "_a.safetensors", a, NULL, &err), 0);
    assert_int_equal(nn_model_save(TMP "_b.safetensors", b, NULL, &err), 0);
    assert_int_equal(nn_model_save(TMP "_c.safetensors", c, NULL, &err), 0);
    unlink(TMP "_out.npy");
    unlink(TMP "_sub.csv");
    snprintf(cmd, sizeof cmd,
             DIGITS_BIN_DIR "/digits-predict -q -d " TMP "_test.npy -o " TMP "_out.npy -l " TMP "_sub.csv --batch 5 "
             TMP "_a.safetensors " TMP "_b.safetensors");
    assert_int_equal(system(cmd), 0);
    dg_npy_file f;
    assert_int_equal(dg_npy_open(&f, TMP "_out.npy", 4, &err), 0);
    assert_int_equal(f.h.shape[0], 12);
    assert_int_equal(f.h.shape[1], 10);
    kg_images im;
    assert_int_equal(kg_images_open(&im, TMP "_test.npy", &err), 0);
    float pa[120], pb[120];
    assert_int_equal(kg_predict_net(pa, a, &im, NULL, 12, 1, &err), 0);
    assert_int_equal(kg_predict_net(pb, b, &im, NULL, 12, 1, &err), 0);
    const float *got = f.data;
    for (int i = 0; i < 120; i++) assert_float_equal(got[i], (pa[i] + pb[i]) / 2, 1e-6);
    dg_npy_close(&f);
    char *sub;
    size_t n;
    assert_int_equal(dg_read_file(TMP "_sub.csv", &sub, &n, &err), 0);
    assert_int_equal(strncmp(sub, "ImageId,Label\n1,", 16), 0);
    free(sub);
    kg_images_close(&im);
    /* errors: nothing written */
    unlink(TMP "_out.npy");
    snprintf(cmd, sizeof cmd,
             DIGITS_BIN_DIR "/digits-predict -q -d " TMP "_test.npy -o " TMP "_out.npy " TMP "_a.safetensors "
             TMP "_test.npy 2> " TMP "_err.txt");
    assert_int_equal(WEXITSTATUS(system(cmd)), 1);
    assert_false(dg_path_exists(TMP "_out.npy"));
    char *msg;
    assert_int_equal(dg_read_file(TMP "_err.txt", &msg, &n, &err), 0);
    assert_non_null(strstr(msg, "not a usable model"));
    free(msg);
    snprintf(cmd, sizeof cmd,
             DIGITS_BIN_DIR "/digits-predict -q -d " TMP "_test.npy -o " TMP "_out.npy " TMP "_c.safetensors 2> "
             TMP "_err.txt");
    assert_int_equal(WEXITSTATUS(system(cmd)), 1);
    assert_false(dg_path_exists(TMP "_out.npy"));
    assert_int_equal(dg_read_file(TMP "_err.txt", &msg, &n, &err), 0);
    assert_non_null(strstr(msg, "32x32x1 inputs"));
    free(msg);
    snprintf(cmd, sizeof cmd, DIGITS_BIN_DIR "/digits-predict -q --tta 10 -o x.npy m 2>/dev/null");
    assert_int_equal(WEXITSTATUS(system(cmd)), 2);
    nn_net_free(a);
    nn_net_free(b);
    nn_net_free(c);
    nn_spec_free(&sa);
    nn_spec_free(&sb);
    nn_spec_free(&sc);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tta_views),
        cmocka_unit_test(test_images_open),
        cmocka_unit_test(test_predict_net_matches_single_forward),
        cmocka_unit_test(test_net_fits),
        cmocka_unit_test(test_model_path),
        cmocka_unit_test(test_stage_binary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
