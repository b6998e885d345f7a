/* Tests for kaggle/predict_cli: digits-predict's options (defaults, each bad value a usage error naming the option,
 * no model, no -o), its usage text, and runs with two tiny saved models on a tiny dataset written here: the
 * probabilities equal the mean over models and TTA views of one-image forward passes, the labels and the summary
 * lines follow from them, --ids picks rows, and conflicting or bad inputs fail with nothing written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_check.h"
#include "testutil.h"
#include "kaggle/predict.h"
#include "kaggle/photo.h"
#include "kaggle/predict_cli.h"
#include "nn/model.h"
#include "nn/net.h"
#include "nn/spec.h"
#include "core/dg_cli.h"
#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "core/dg_npy.h"

#define TMP DIGITS_TEST_TMP "/predict_cli_"
#define N 8 /* images */

#define PARSE(o, err, ...)                                                                                         \
    kg_predict_cli_parse(ARGC("digits-predict", __VA_ARGS__), ARGV("digits-predict", __VA_ARGS__), (o), (err))

static void test_parse(void **state) {
    (void)state;
    kg_predict_cli_opts o;
    dg_err err = {{0}};
    assert_int_equal(PARSE(&o, &err, "-o", "p.npy", "m1"), DG_EXIT_OK);
    assert_string_equal(o.data, "data/test.npy");
    assert_string_equal(o.output, "p.npy");
    assert_null(o.labels);
    assert_null(o.ids);
    assert_int_equal(o.tta, 1);
    assert_int_equal(o.batch, 256);
    assert_int_equal(o.threads, 0);
    assert_int_equal(o.n_models, 1);
    assert_string_equal(o.models[0], "m1");
    assert_true(o.log == stderr);
    assert_int_equal(o.help, 0);
    assert_int_equal(PARSE(&o, &err, "m1", "-d", "d.npy", "-l", "l.csv", "--ids", "i.npy", "-t", "9", "-b", "65536",
                           "--threads", "3", "-q", "--output", "p.npy", "m2"),
                     DG_EXIT_OK);
    assert_string_equal(o.data, "d.npy");
    assert_string_equal(o.labels, "l.csv");
    assert_string_equal(o.ids, "i.npy");
    assert_int_equal(o.tta, 9);
    assert_int_equal(o.batch, 65536);
    assert_int_equal(o.threads, 3);
    assert_null(o.log);
    assert_int_equal(o.n_models, 2);
    assert_string_equal(o.models[0], "m1");
    assert_string_equal(o.models[1], "m2");
    assert_int_equal(PARSE(&o, &err, "--help"), DG_EXIT_OK);
    assert_int_equal(o.help, 1);
}

static void test_parse_errors(void **state) {
    (void)state;
    kg_predict_cli_opts o;
    dg_err err;
    static const struct {
        const char *a, *b, *want;
    } cases[] = {
        {"--tta", "0", "--tta 0: expected 1..9"},     {"-t", "10", "--tta 10: expected 1..9"},
        {"--tta", "1.5", "--tta 1.5"},                {"--batch", "0", "--batch 0: expected 1..65536"},
        {"-b", "65537", "--batch 65537"},             {"--threads", "0", "--threads 0: expected 1..1024"},
        {"--threads", "", "--threads : expected"},    {"--model", "x", "unrecognized option '--model'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        err.msg[0] = '\0';
        assert_int_equal(PARSE(&o, &err, "-o", "p.npy", (char *)cases[i].a, (char *)cases[i].b, "m"), DG_EXIT_USAGE);
        assert_has(err.msg, cases[i].want);
    }
    assert_int_equal(PARSE(&o, &err, "-o", "p.npy"), DG_EXIT_USAGE);
    assert_has(err.msg, "no MODEL given");
    assert_int_equal(PARSE(&o, &err, "m"), DG_EXIT_USAGE);
    assert_has(err.msg, "-o PROBS.npy is required");
}

static void test_usage(void **state) {
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    kg_predict_cli_usage(f);
    char *text = cli_check_drain(f), want[64];
    assert_has(text, "(default data/test.npy)");
    assert_has(text, "first K of 9 fixed views");
    assert_has(text, "(default 1: no augmentation)");
    assert_has(text, "(default 256)");
    snprintf(want, sizeof want, "all CPUs, now %d)", dg_default_threads());
    assert_has(text, want);
    free(text);
}

static const char *kSpec = "name tiny\ninput 1x28x28\nflatten\ndense units=16\nrelu\ndense units=10\n";

static void make_image(uint8_t *img, int i) {
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            int dx = x - (9 + i % 9), dy = y - (8 + (i * 5) % 11);
            int v = 250 - 10 * (dx * dx + dy * dy);
            img[y * 28 + x] = (uint8_t)(v > 0 ? v : 0);
        }
}

static const char *const kModels[2] = {TMP "a.safetensors", TMP "run/model.safetensors"};

/* Two saved models, kModels[0] and kModels[1] (a run directory's). */
static void write_models(void) {
    dg_err err = {{0}};
    assert_int_equal(dg_mkdirs(TMP "run", &err), 0);
    for (int k = 0; k < 2; k++) {
        nn_spec spec;
        nn_net *net = NULL;
        assert_int_equal(nn_spec_parse(&spec, kSpec, "<test>", &err), 0);
        assert_int_equal(nn_net_create(&net, &spec, 4, &err), 0);
        nn_net_init(net, 11 + (uint64_t)k);
        assert_int_equal(nn_model_save(kModels[k], net, NULL, &err), 0);
        nn_net_free(net);
        nn_spec_free(&spec);
    }
}

/* N images, labelled labels[i] (NULL: i % 10). */
static void write_data(const uint8_t *labels) {
    dg_err err = {{0}};
    dg_dataset_writer w;
    uint8_t img[DG_PIXELS];
    assert_int_equal(dg_dataset_writer_open(&w, TMP "data.npy", 1, &err), 0);
    for (int i = 0; i < N; i++) {
        make_image(img, i);
        assert_int_equal(dg_dataset_writer_add(&w, img, labels ? labels[i] : i % 10, &err), 0);
    }
    assert_int_equal(dg_dataset_writer_commit(&w, &err), 0);
}

/* want[k] (N, 10): model k's mean over the first tta views of one-image forward passes. */
static void reference(float want[2][N * 10], int tta) {
    dg_err err = {{0}};
    float x[DG_PIXELS];
    uint8_t img[DG_PIXELS];
    memset(want, 0, 2 * N * 10 * sizeof(float));
    for (int k = 0; k < 2; k++) {
        nn_net *net = NULL;
        assert_int_equal(nn_model_load(kModels[k], 1, &net, &err), 0);
        for (int i = 0; i < N; i++) {
            make_image(img, i);
            for (int v = 0; v < tta; v++) {
                kg_tta_apply(x, img, v);
                nn_net_forward(net, x, 1, 0, 0, 0);
                const float *p = nn_net_probs(net);
                for (int c = 0; c < 10; c++) want[k][i * 10 + c] += p[c] / (float)tta;
            }
        }
        nn_net_free(net);
    }
}

static int argmax(const float *p) {
    int b = 0;
    for (int c = 1; c < 10; c++)
        if (p[c] > p[b]) b = c;
    return b;
}

static void test_run(void **state) {
    (void)state;
    kg_predict_cli_opts o;
    dg_err err = {{0}};
    /* the labels are model a's answers, so that the two models and their mean score differently */
    write_models();
    float per[2][N * 10], want[N * 10];
    reference(per, 2);
    uint8_t labels[N];
    int hits[2] = {0, 0};
    for (int i = 0; i < N * 10; i++) want[i] = per[0][i] / 2 + per[1][i] / 2;
    for (int i = 0; i < N; i++) {
        labels[i] = (uint8_t)argmax(per[0] + i * 10);
        for (int k = 0; k < 2; k++) hits[k] += argmax(per[k] + i * 10) == labels[i];
    }
    write_data(labels);
    unlink(TMP "p.npy");
    unlink(TMP "l.npy");
    assert_int_equal(PARSE(&o, &err, "-d", TMP "data.npy", "-o", TMP "p.npy", "-l", TMP "l.npy", "--tta", "2", "-b",
                           "3", TMP "a.safetensors", TMP "run"),
                     DG_EXIT_OK);
    o.log = tmpfile();
    assert_non_null(o.log);
    assert_int_equal(kg_predict_cli_run(&o, &err), DG_EXIT_OK);
    char *log = cli_check_drain(o.log);
    dg_npy_file f;
    assert_int_equal(dg_npy_open(&f, TMP "p.npy", 4, &err), 0);
    assert_int_equal(f.h.ndim, 2);
    assert_int_equal(f.h.shape[0], N);
    assert_int_equal(f.h.shape[1], 10);
    const float *got = f.data;
    for (int i = 0; i < N * 10; i++) assert_float_equal(got[i], want[i], 1e-5);
    /* labels: the argmax of the written probabilities; the summary's accuracy: of those labels */
    dg_npy_file l;
    assert_int_equal(dg_npy_open(&l, TMP "l.npy", 1, &err), 0);
    assert_int_equal(l.h.shape[0], N);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(((const uint8_t *)l.data)[i], argmax(got + i * 10));
        ok += argmax(got + i * 10) == labels[i];
    }
    dg_npy_close(&l);
    dg_npy_close(&f);
    char line[256];
    assert_int_equal(hits[0], N);
    assert_true(hits[1] != ok); /* the fixture tells the models' accuracies from their mean's */
    assert_has(log, "digits-predict: " TMP "a.safetensors: accuracy 1.0000 on 8 labelled images (tta 2)\n");
    snprintf(line, sizeof line, "digits-predict: " TMP "run/model.safetensors: accuracy %.4f on 8 labelled images",
             hits[1] / (double)N);
    assert_has(log, line);
    assert_has(log, "digits-predict: 8 images x 2 model(s) x 2 view(s) in ");
    snprintf(line, sizeof line, "digits-predict: mean of 2 models: accuracy %.4f\n", ok / (double)N);
    assert_has(log, line);
    free(log);

    /* --ids picks rows (repeats allowed); labels as a submission need every image */
    int64_t ids[3] = {5, 0, 5};
    size_t ishape[1] = {3};
    assert_int_equal(dg_npy_save(TMP "ids.npy", "<i8", ishape, 1, ids, 8, &err), 0);
    assert_int_equal(PARSE(&o, &err, "-q", "-d", TMP "data.npy", "--ids", TMP "ids.npy", "-o", TMP "p.npy", "-t", "2",
                           TMP "a.safetensors", TMP "run"),
                     DG_EXIT_OK);
    assert_int_equal(kg_predict_cli_run(&o, &err), DG_EXIT_OK);
    assert_int_equal(dg_npy_open(&f, TMP "p.npy", 4, &err), 0);
    assert_int_equal(f.h.shape[0], 3);
    for (int i = 0; i < 3; i++)
        for (int c = 0; c < 10; c++) assert_float_equal(((const float *)f.data)[i * 10 + c], want[ids[i] * 10 + c], 1e-5);
    dg_npy_close(&f);
    unlink(TMP "p.npy");
    assert_int_equal(PARSE(&o, &err, "-q", "-d", TMP "data.npy", "--ids", TMP "ids.npy", "-o", TMP "p.npy", "-l",
                           TMP "sub.csv", TMP "a.safetensors"),
                     DG_EXIT_OK);
    assert_int_equal(kg_predict_cli_run(&o, &err), DG_EXIT_USAGE);
    assert_has(err.msg, TMP "sub.csv: a submission needs every image; drop --ids or write labels as .npy");
    assert_false(dg_path_exists(TMP "p.npy"));
    assert_false(dg_path_exists(TMP "sub.csv"));
    /* without --ids the submission is written, one row per image */
    assert_int_equal(PARSE(&o, &err, "-q", "-d", TMP "data.npy", "-o", TMP "p.npy", "-l", TMP "sub.csv",
                           TMP "a.safetensors"),
                     DG_EXIT_OK);
    assert_int_equal(kg_predict_cli_run(&o, &err), DG_EXIT_OK);
    char *sub;
    size_t n;
    assert_int_equal(dg_read_file(TMP "sub.csv", &sub, &n, &err), 0);
    assert_int_equal(strncmp(sub, "ImageId,Label\n1,", 16), 0);
    assert_non_null(strstr(sub, "\n8,"));
    free(sub);
    unlink(TMP "p.npy");
    unlink(TMP "sub.csv");
}

static void test_run_errors(void **state) {
    (void)state;
    kg_predict_cli_opts o;
    dg_err err = {{0}};
    write_models();
    write_data(NULL);
    unlink(TMP "p.npy");
    int64_t ids[2] = {0, N};
    size_t ishape[1] = {2};
    assert_int_equal(dg_npy_save(TMP "bad_ids.npy", "<i8", ishape, 1, ids, 8, &err), 0);
    assert_int_equal(PARSE(&o, &err, "-q", "-d", TMP "data.npy", "--ids", TMP "bad_ids.npy", "-o", TMP "p.npy",
                           TMP "a.safetensors"),
                     DG_EXIT_OK);
    assert_int_equal(kg_predict_cli_run(&o, &err), DG_EXIT_FAIL);
    assert_has(err.msg, "bad_ids.npy: row id 8 at 1 is outside " TMP "data.npy (8 images)");
    /* the second model is not a model: nothing written, though the first was fine */
    assert_int_equal(PARSE(&o, &err, "-q", "-d", TMP "data.npy", "-o", TMP "p.npy", TMP "a.safetensors",
                           TMP "data.npy"),
                     DG_EXIT_OK);
    assert_int_equal(kg_predict_cli_run(&o, &err), DG_EXIT_FAIL);
    assert_has(err.msg, "not a usable model: " TMP "data.npy: not a safetensors file");
    assert_int_equal(PARSE(&o, &err, "-q", "-d", TMP "nothing.npy", "-o", TMP "p.npy", TMP "a.safetensors"),
                     DG_EXIT_OK);
    assert_int_equal(kg_predict_cli_run(&o, &err), DG_EXIT_FAIL);
    assert_has(err.msg, TMP "nothing.npy");
    assert_false(dg_path_exists(TMP "p.npy"));
}

/* A w x h PNG file of a dark ring on light paper (ink 0: a blank page). */
static void write_photo(const char *path, int w, int h, int ink) {
    uint8_t *px = malloc((size_t)w * h);
    assert_non_null(px);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double dx = (x - w * 0.55) / (w * 0.2), dy = (y - h * 0.45) / (h * 0.3), r = sqrt(dx * dx + dy * dy);
            px[(size_t)y * w + x] = (uint8_t)(ink && fabs(r - 1) < 0.15 ? 20 : 235);
        }
    void *png;
    size_t n;
    dg_err err = {{0}};
    assert_int_equal(kg_photo_png_encode(&png, &n, px, w, h, &err), 0);
    assert_int_equal(dg_write_file_atomic(path, png, n, &err), 0);
    free(png);
    free(px);
}

/* --image: the JSON line of each image holds the mean of the models' one-image forward passes on the 28x28 image
 * kg_photo_load makes of the file, --debug-out writes that image, and a blank image is reported without stopping
 * the others, the run then failing. */
static void test_images(void **state) {
    (void)state;
    write_models();
    write_photo(TMP "ring.png", 160, 120, 1);
    write_photo(TMP "blank.png", 50, 50, 0);
    dg_err err = {{0}};
    char *data;
    size_t len;
    uint8_t img[DG_PIXELS];
    float x[DG_PIXELS], want[10] = {0};
    assert_int_equal(dg_read_file(TMP "ring.png", &data, &len, &err), 0);
    assert_int_equal(kg_photo_load(img, data, len, NULL, &err), KG_PHOTO_OK);
    free(data);
    for (int k = 0; k < 2; k++) {
        nn_net *net = NULL;
        assert_int_equal(nn_model_load(kModels[k], 1, &net, &err), 0);
        kg_tta_apply(x, img, 0);
        nn_net_forward(net, x, 1, 0, 0, 0);
        for (int c = 0; c < 10; c++) want[c] += nn_net_probs(net)[c] / 2;
        nn_net_free(net);
    }
    kg_predict_cli_opts o;
    assert_int_equal(system("rm -rf " TMP "dbg"), 0);
    assert_int_equal(PARSE(&o, &err, "--image", TMP "ring.png", "-i", TMP "blank.png", "--json", "--debug-out",
                           TMP "dbg", TMP "a.safetensors", TMP "run"),
                     DG_EXIT_OK);
    assert_int_equal(o.n_images, 2);
    o.out = tmpfile();
    assert_non_null(o.out);
    assert_int_equal(kg_predict_cli_run(&o, &err), DG_EXIT_FAIL);
    assert_has(err.msg, "blank.png: no ink");
    char *text = cli_check_drain(o.out);
    char *nl = strchr(text, '\n');
    assert_non_null(nl);
    *nl = '\0';
    cJSON *a = cJSON_Parse(text), *b = cJSON_Parse(nl + 1);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(cJSON_GetObjectItem(a, "file")->valuestring, TMP "ring.png");
    const cJSON *p = cJSON_GetObjectItem(a, "probabilities");
    assert_int_equal(cJSON_GetArraySize(p), 10);
    for (int c = 0; c < 10; c++) tu_assert_close(cJSON_GetArrayItem(p, c)->valuedouble, want[c], 0, 1e-6);
    assert_int_equal(cJSON_GetObjectItem(a, "digit")->valueint, argmax(want));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(a, "inverted")));
    assert_string_equal(cJSON_GetObjectItem(b, "file")->valuestring, TMP "blank.png");
    assert_string_equal(cJSON_GetObjectItem(b, "error")->valuestring, "no_ink");
    assert_null(cJSON_GetObjectItem(b, "digit"));
    cJSON_Delete(a);
    cJSON_Delete(b);
    free(text);
    /* the image the models saw */
    assert_int_equal(dg_read_file(TMP "dbg/predict_cli_ring.28x28.png", &data, &len, &err), 0);
    kg_photo_grey g;
    assert_int_equal(kg_photo_decode(&g, data, len, &err), KG_PHOTO_OK);
    assert_int_equal(g.w * g.h, DG_PIXELS);
    assert_memory_equal(g.px, img, DG_PIXELS);
    kg_photo_grey_free(&g);
    free(data);
    assert_false(dg_path_exists(TMP "dbg/predict_cli_blank.28x28.png"));
    kg_predict_cli_free(&o);
    /* text output; a missing file; --json without --image */
    assert_int_equal(PARSE(&o, &err, "--image", TMP "ring.png", "-i", TMP "nope.png", TMP "a.safetensors"), DG_EXIT_OK);
    o.out = tmpfile();
    assert_int_equal(kg_predict_cli_run(&o, &err), DG_EXIT_FAIL);
    text = cli_check_drain(o.out);
    assert_has(text, TMP "ring.png: ");
    assert_has(text, " 0:0.");
    assert_has(text, " 9:0.");
    assert_has(text, TMP "nope.png: cannot open");
    free(text);
    kg_predict_cli_free(&o);
    assert_int_equal(PARSE(&o, &err, "--json", "-o", "p.npy", "m"), DG_EXIT_USAGE);
    assert_has(err.msg, "--json and --debug-out need --image");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_run),
        cmocka_unit_test(test_run_errors),
        cmocka_unit_test(test_images),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
