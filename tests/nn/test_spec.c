/* Tests for nn/spec: every key parsed into the right field, defaults, strict errors with file:line:col, the
 * canonical text round trip, model lookup by name, and that every shipped experiments/models spec parses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <glob.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dg_cli.h"
#include "nn/spec.h"
#include "testutil.h"

static void test_every_key(void **state) {
    (void)state;
    nn_spec s;
    dg_err err = {{0}};
    assert_int_equal(nn_spec_load(&s, DIGITS_FIXTURES "/spec/every_key.spec", &err), 0);
    assert_string_equal(s.name, "every-key_1.0");
    assert_int_equal(s.in_c, 3);
    assert_int_equal(s.in_h, 32);
    assert_int_equal(s.in_w, 30);
    assert_int_equal(s.n_layers, 12);
    const nn_layer_spec *l = s.layers;
    assert_int_equal(l[0].kind, NN_CONV);
    assert_int_equal(l[0].line, 4);
    assert_int_equal(l[0].filters, 8);
    assert_int_equal(l[0].size, 3);
    assert_int_equal(l[0].stride, 2);
    assert_int_equal(l[0].pad, -1);
    /* a number parses to the float nearest its text, which is the C literal's: exact */
    tu_assert_exact(l[0].l2, 0.25f);
    assert_int_equal(l[1].stride, 1); /* default */
    assert_int_equal(l[1].pad, 3);
    tu_assert_exact(l[1].l2, 0.0f);
    assert_int_equal(l[2].kind, NN_BATCHNORM);
    tu_assert_exact(l[2].momentum, 0.01f);
    tu_assert_exact(l[2].eps, 0.001f);
    assert_int_equal(l[3].kind, NN_LEAKYRELU);
    tu_assert_exact(l[3].slope, 0.2f);
    assert_int_equal(l[4].kind, NN_MAXPOOL);
    assert_int_equal(l[4].size, 3);
    assert_int_equal(l[4].stride, 1);
    assert_int_equal(l[5].kind, NN_AVGPOOL);
    assert_int_equal(l[5].size, 2);
    assert_int_equal(l[5].stride, 2); /* defaults to size */
    assert_int_equal(l[6].kind, NN_TANH);
    assert_int_equal(l[7].kind, NN_SIGMOID);
    assert_int_equal(l[8].kind, NN_RELU);
    assert_int_equal(l[9].kind, NN_DROPOUT);
    tu_assert_exact(l[9].rate, 0.5f);
    assert_int_equal(l[10].kind, NN_FLATTEN);
    assert_int_equal(l[11].kind, NN_DENSE);
    assert_int_equal(l[11].units, 7);
    tu_assert_exact(l[11].l2, 1e-4f);
    const nn_hyper *h = &s.hyper;
    assert_int_equal(h->optimizer, NN_ADAMW);
    tu_assert_exact(h->lr, 0.0025f);
    tu_assert_exact(h->momentum, 0.8f);
    tu_assert_exact(h->beta1, 0.85f);
    tu_assert_exact(h->beta2, 0.99f);
    tu_assert_exact(h->adam_eps, 1e-7f);
    tu_assert_exact(h->weight_decay, 0.01f);
    assert_int_equal(h->schedule, NN_SCHED_ONECYCLE);
    tu_assert_exact(h->gamma, 0.5f);
    assert_int_equal(h->step_epochs, 3);
    tu_assert_exact(h->min_lr, 1e-5f);
    tu_assert_exact(h->max_lr, 0.02f);
    assert_int_equal(h->plateau_patience, 2);
    assert_int_equal(h->batch, 128);
    assert_int_equal(h->epochs, 7);
    tu_assert_exact(h->label_smoothing, 0.1f);
    assert_int_equal(h->early_stop, 4);
    assert_string_equal(h->augment, "kaggle");
    tu_assert_exact(h->ema, 0.995f);
    assert_non_null(strstr(s.text, "name every-key_1.0"));
    assert_string_equal(s.file, DIGITS_FIXTURES "/spec/every_key.spec");
    nn_spec_free(&s);
}

static void test_defaults(void **state) {
    (void)state;
    nn_spec s;
    dg_err err = {{0}};
    assert_int_equal(nn_spec_parse(&s, "maxpool\nbatchnorm\nleakyrelu\ndense units=10", NULL, &err), 0);
    assert_string_equal(s.name, "model");
    assert_string_equal(s.file, "<string>");
    assert_int_equal(s.in_c, 1);
    assert_int_equal(s.in_h, 28);
    assert_int_equal(s.in_w, 28);
    assert_int_equal(s.layers[0].size, 2);
    assert_int_equal(s.layers[0].stride, 2);
    /* defaults are float constants, copied: exact */
    tu_assert_exact(s.layers[1].momentum, 0.1f);
    tu_assert_exact(s.layers[1].eps, 1e-5f);
    tu_assert_exact(s.layers[2].slope, 0.01f);
    nn_hyper d;
    nn_hyper_defaults(&d);
    assert_memory_equal(&s.hyper, &d, sizeof d);
    assert_int_equal(d.optimizer, NN_ADAM);
    tu_assert_exact(d.lr, 1e-3f);
    assert_int_equal(d.batch, 64);
    nn_spec_free(&s);
    /* The name defaults to the file's base name. */
    assert_int_equal(nn_spec_parse(&s, "dense units=10\n", "dir/my-net.spec", &err), 0);
    assert_string_equal(s.name, "my-net");
    nn_spec_free(&s);
}

static void test_errors(void **state) {
    (void)state;
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"dense units=10\nconvv filters=3", "f.spec:2:1: unknown statement 'convv'"},
        {"conv filters=3 size=3 strid=2", "f.spec:1:23: conv: unknown key 'strid'"},
        {"conv filters=3 size=3 size=5", "f.spec:1:23: conv: duplicate key 'size'"},
        {"dense units=", "f.spec:1:13: dense: missing value for 'units'"},
        {"dense units", "f.spec:1:7: dense: expected key=value, got 'units'"},
        {"dense =3", "f.spec:1:7: dense: missing key before '='"},
        {"dense l2=0.1", "f.spec:1:1: dense: missing required key 'units='"},
        {"dense units=12x", "f.spec:1:13: units=12x: expected an integer in 1..1048576"},
        {"dense units=0", "units=0: expected an integer"},
        {"dense units=1e999", "expected an integer"},
        {"dense units=10\ndropout rate=1", "f.spec:2:14: rate=1: expected a number in [0, 1)"},
        {"dense units=10\ndropout rate=-0.1", "rate=-0.1: expected a number in [0, 1)"},
        /* below 1 as a double, 1.0 as the float that is stored (found by tests/fuzz/fuzz_spec) */
        {"dense units=10\ntrain momentum=0.99999999", "f.spec:2:16: momentum=0.99999999: expected a number in [0, 1)"},
        {"dense units=10\ndropout rate=0.999999999", "rate=0.999999999: expected a number in [0, 1)"},
        {"dense units=10\ntrain lr=0", "f.spec:2:10: lr=0: expected a number in (0, 10]"},
        {"dense units=10\ntrain lr=nan", "lr=nan: expected a number"},
        {"dense units=10\ntrain optimizer=rmsprop", "optimizer=rmsprop: expected sgd, momentum"},
        {"dense units=10\ntrain schedule=linear", "schedule=linear: expected constant, step"},
        {"dense units=10\ntrain batch=64\ntrain epochs=3", "f.spec:3:1: duplicate 'train' statement (first on line 2)"},
        {"name a\nname b\ndense units=1", "f.spec:2:1: duplicate 'name'"},
        {"name a b\ndense units=1", "f.spec:1:8: name: expected exactly one value"},
        {"name a/b\ndense units=1", "f.spec:1:6: name: 'a/b' must be"},
        {"input 1x28\ndense units=1", "f.spec:1:7: input: expected CxHxW"},
        {"input 1x0x28\ndense units=1", "f.spec:1:9: input: '0' is not a positive size"},
        {"dense units=1\ninput 1x28x28", "f.spec:2:1: input: must come before the first layer"},
        {"conv filters=4 size=3 pad=valid", "f.spec:1:27: pad=valid: expected 'same' or an integer"},
        {"relu slope=1", "f.spec:1:6: relu: unknown key 'slope' (keys: none)"},
        {"# only a comment\n\n", "f.spec: no layers"},
        {"dense units=10\ntrain augment=a\"b", "augment=a\"b: unexpected character"},
        /* ema: a decay in [0, 1); 1 would never move from the initial weights */
        {"dense units=10\ntrain ema=1", "f.spec:2:11: ema=1: expected a number in [0, 1)"},
        {"dense units=10\ntrain ema=-0.1", "f.spec:2:11: ema=-0.1: expected a number in [0, 1)"},
        {"dense units=10\ntrain ema=abc", "f.spec:2:11: ema=abc: expected a number in [0, 1)"},
        {"dense units=10\ntrain ema=0.99999999", "ema=0.99999999: expected a number in [0, 1)"},
        {"dense units=10\ntrain ema=", "f.spec:2:11: train: missing value for 'ema'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nn_spec s;
        dg_err err = {{0}};
        int rc = nn_spec_parse(&s, cases[i].text, "f.spec", &err);
        if (rc != -1 || !strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: %s\n  got rc %d '%s'\n  want '%s'", i, cases[i].text, rc, err.msg, cases[i].msg);
        assert_null(s.text); /* nothing left to free after an error */
    }
}

static void test_error_from_file(void **state) {
    (void)state;
    nn_spec s;
    dg_err err = {{0}};
    assert_int_equal(nn_spec_load(&s, DIGITS_FIXTURES "/spec/bad_key.spec", &err), -1);
    assert_non_null(strstr(err.msg, "bad_key.spec:5:25: conv: unknown key 'strid' (keys: filters, size, stride"));
    assert_int_equal(nn_spec_load(&s, DIGITS_FIXTURES "/spec/missing.spec", &err), -1);
    assert_non_null(strstr(err.msg, "missing.spec: cannot open"));
}

static void assert_same_model(const nn_spec *a, const nn_spec *b) {
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->in_c, b->in_c);
    assert_int_equal(a->in_h, b->in_h);
    assert_int_equal(a->in_w, b->in_w);
    assert_int_equal(a->n_layers, b->n_layers);
    for (int i = 0; i < a->n_layers; i++) {
        nn_layer_spec la = a->layers[i], lb = b->layers[i];
        la.line = lb.line = 0;
        assert_memory_equal(&la, &lb, sizeof la);
    }
    assert_memory_equal(&a->hyper, &b->hyper, sizeof a->hyper);
}

static void roundtrip(const char *path) {
    nn_spec a, b;
    dg_err err = {{0}};
    if (nn_spec_load(&a, path, &err) != 0) fail_msg("%s", err.msg);
    char *text = nn_spec_format(&a);
    assert_non_null(text);
    if (nn_spec_parse(&b, text, "canonical", &err) != 0) fail_msg("%s\n%s", err.msg, text);
    assert_same_model(&a, &b);
    /* Canonical text is a fixed point. */
    char *again = nn_spec_format(&b);
    assert_string_equal(text, again);
    free(text);
    free(again);
    nn_spec_free(&a);
    nn_spec_free(&b);
}

static void test_roundtrip(void **state) {
    (void)state;
    roundtrip(DIGITS_FIXTURES "/spec/every_key.spec");
    roundtrip(DIGITS_FIXTURES "/spec/tiny.spec");
    roundtrip(DIGITS_FIXTURES "/spec/tinycnn.spec");
    /* every shipped spec, found by listing the folder: a new one is covered without editing this test */
    glob_t g;
    assert_int_equal(glob(DIGITS_SOURCE_DIR "/experiments/models/*.spec", 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 9);
    for (size_t i = 0; i < g.gl_pathc; i++) roundtrip(g.gl_pathv[i]);
    globfree(&g);
    /* Short floats stay short in the canonical text. */
    nn_spec s;
    dg_err err = {{0}};
    assert_int_equal(nn_spec_parse(&s, "dense units=3\ntrain lr=0.001 gamma=0.95", NULL, &err), 0);
    char *text = nn_spec_format(&s);
    assert_non_null(strstr(text, " lr=0.001 "));
    assert_non_null(strstr(text, " gamma=0.95 "));
    assert_non_null(strstr(text, " augment=none\n"));
    /* ema off is not written: the canonical text of a spec without EMA is what it was before the key existed */
    assert_null(strstr(text, "ema"));
    free(text);
    nn_spec_free(&s);
    assert_int_equal(nn_spec_parse(&s, "dense units=3\ntrain ema=0.999", NULL, &err), 0);
    tu_assert_exact(s.hyper.ema, 0.999f);
    text = nn_spec_format(&s);
    assert_non_null(strstr(text, " augment=none ema=0.999\n"));
    free(text);
    char *js = nn_hyper_json(&s.hyper);
    assert_non_null(strstr(js, "\"ema\":0.999"));
    free(js);
    nn_spec_free(&s);
}

static void test_shipped_models(void **state) {
    (void)state;
    static const struct {
        const char *name;
        int n_layers, epochs;
        nn_optimizer opt;
    } models[] = {
        {"mlp2", 4, 20, NN_MOMENTUM},   {"mlp3", 6, 20, NN_MOMENTUM},      {"mlp800", 4, 20, NN_ADAM},
        {"mlp1024x2", 10, 60, NN_ADAM},
        {"lenet5", 12, 30, NN_ADAM}, {"deepdigits", 26, 30, NN_ADAM}, {"deotte", 26, 45, NN_ADAM},
        {"deotte-fast", 26, 12, NN_ADAM}, {"deotte-lite", 26, 16, NN_ADAM}, {"deotte-lite-oc", 26, 18, NN_ADAM},
        {"deotte-lite-ls", 26, 18, NN_ADAM}, {"deotte-ls", 26, 23, NN_ADAM},  {"gan-g", 10, 20, NN_ADAM},
        {"gan-d", 7, 20, NN_ADAM},       {"vgg-ls", 22, 23, NN_ADAM},
    };
    /* the table names every shipped spec */
    glob_t g;
    assert_int_equal(glob(DIGITS_SOURCE_DIR "/experiments/models/*.spec", 0, NULL, &g), 0);
    assert_int_equal(g.gl_pathc, sizeof models / sizeof models[0]);
    globfree(&g);
    setenv("DIGITS_MODELS", DIGITS_SOURCE_DIR "/experiments/models", 1);
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        nn_spec s;
        dg_err err = {{0}};
        if (nn_spec_load(&s, models[i].name, &err) != 0) fail_msg("%s", err.msg);
        assert_string_equal(s.name, models[i].name);
        assert_int_equal(s.n_layers, models[i].n_layers);
        assert_int_equal(s.hyper.epochs, models[i].epochs);
        assert_int_equal(s.hyper.optimizer, models[i].opt);
        if (!strncmp(s.name, "gan-", 4)) {
            /* a GAN's nets: DCGAN's Adam (lr 2e-4, beta1 0.5); G ends in tanh (an image), D in one logit */
            tu_assert_exact(s.hyper.lr, 2e-4f);
            tu_assert_exact(s.hyper.beta1, 0.5f);
            int gen = s.name[4] == 'g';
            assert_int_equal(s.output, gen ? NN_OUT_IMAGE : NN_OUT_LOGIT);
            assert_int_equal(s.layers[s.n_layers - 1].kind, gen ? NN_TANH : NN_DENSE);
            if (!gen) assert_int_equal(s.layers[s.n_layers - 1].units, 1);
            nn_spec_free(&s);
            continue;
        }
        assert_int_equal(s.layers[s.n_layers - 1].kind, NN_DENSE);
        assert_int_equal(s.layers[s.n_layers - 1].units, 10);
        /* only the "-ls" specs (the default's members, deotte-ls, vgg-ls) smooth their labels */
        tu_assert_exact(s.hyper.label_smoothing, dg_ends_with(s.name, "-ls") ? 0.1f : 0.0f);
        nn_spec_free(&s);
    }
    nn_spec s;
    dg_err err = {{0}};
    assert_int_equal(nn_spec_load(&s, "deotte", &err), 0);
    tu_assert_exact(s.hyper.lr, 1e-3f);
    tu_assert_exact(s.hyper.gamma, 0.95f);
    assert_int_equal(s.hyper.schedule, NN_SCHED_EXP);
    assert_int_equal(s.hyper.batch, 64);
    assert_int_equal(s.layers[6].stride, 2);
    assert_int_equal(s.layers[6].pad, 2);
    nn_spec_free(&s);
    unsetenv("DIGITS_MODELS");
}

static void test_find(void **state) {
    (void)state;
    char path[1024];
    dg_err err = {{0}};
    setenv("DIGITS_MODELS", DIGITS_FIXTURES "/spec", 1);
    assert_int_equal(nn_spec_find("tiny", path, sizeof path, &err), 0);
    assert_string_equal(path, DIGITS_FIXTURES "/spec/tiny.spec");
    nn_spec s;
    assert_int_equal(nn_spec_load(&s, "tinycnn", &err), 0);
    assert_string_equal(s.name, "tinycnn");
    assert_int_equal(s.layers[0].pad, -1);
    nn_spec_free(&s);
    unsetenv("DIGITS_MODELS");
    /* Without $DIGITS_MODELS the source tree's experiments/models is still found. */
    assert_int_equal(nn_spec_find("deotte", path, sizeof path, &err), 0);
    assert_non_null(strstr(path, "experiments/models/deotte.spec"));
    assert_int_equal(nn_spec_find("no_such_model", path, sizeof path, &err), -1);
    assert_non_null(strstr(err.msg, "model 'no_such_model' not found"));
    assert_int_equal(nn_spec_find("../etc", path, sizeof path, &err), -1);
}

static void test_hyper_json(void **state) {
    (void)state;
    nn_hyper h;
    nn_hyper_defaults(&h);
    h.lr = 0.0025f;
    h.schedule = NN_SCHED_PLATEAU;
    strcpy(h.augment, "kaggle");
    char *js = nn_hyper_json(&h);
    assert_non_null(js);
    cJSON *o = cJSON_Parse(js);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "optimizer")->valuestring, "adam");
    assert_string_equal(cJSON_GetObjectItem(o, "schedule")->valuestring, "plateau");
    assert_string_equal(cJSON_GetObjectItem(o, "augment")->valuestring, "kaggle");
    assert_true(cJSON_GetObjectItem(o, "lr")->valuedouble == 0.0025);
    assert_int_equal(cJSON_GetObjectItem(o, "batch")->valueint, 64);
    assert_non_null(strstr(js, "\"lr\":0.0025"));
    assert_null(strstr(js, "ema")); /* off: not written */
    cJSON_Delete(o);
    free(js);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_key),      cmocka_unit_test(test_defaults),   cmocka_unit_test(test_errors),
        cmocka_unit_test(test_error_from_file), cmocka_unit_test(test_roundtrip), cmocka_unit_test(test_shipped_models),
        cmocka_unit_test(test_find),           cmocka_unit_test(test_hyper_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
