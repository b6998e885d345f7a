/* Tests for nn/model: the safetensors file is parsed back by hand (header length, JSON, dtype, shapes, contiguous
 * offsets, raw floats), a saved model reloads to identical weights and identical outputs, metadata is readable,
 * and foreign, truncated or mismatching files are rejected with a clear message. */
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

#include "nn/model.h"
#include "nn/net.h"
#include "core/dg_file.h"

#define PATH DIGITS_TEST_TMP "/m.safetensors"

static const char *SPEC = "name cnn\n"
                          "input 1x28x28\n"
                          "conv filters=3 size=5 stride=2 pad=same\n"
                          "batchnorm\n"
                          "relu\n"
                          "maxpool size=2\n"
                          "dense units=10\n"
                          "train optimizer=sgd lr=0.1 batch=4\n";

static nn_net *make_net(const char *text, uint64_t seed) {
    nn_spec s;
    dg_err err = {{0}};
    if (nn_spec_parse(&s, text, "cnn.spec", &err) != 0) fail_msg("%s", err.msg);
    nn_net *net;
    if (nn_net_create(&net, &s, 4, &err) != 0) fail_msg("%s", err.msg);
    nn_spec_free(&s);
    nn_net_init(net, seed);
    /* Non-trivial running statistics, so buffers are really saved. */
    float *b = nn_net_buffers(net);
    for (size_t i = 0; i < nn_net_buffer_count(net); i++) b[i] = 0.5f + 0.25f * (float)i;
    return net;
}

static void fill_input(float *x, int n) {
    for (int i = 0; i < n * 784; i++) x[i] = (float)((i * 37) % 256) / 255.0f;
}

static void test_file_layout(void **state) {
    (void)state;
    nn_net *net = make_net(SPEC, 3);
    dg_err err = {{0}};
    assert_int_equal(nn_model_save(PATH, net, "{\"seed\": \"3\", \"val_accuracy\": 0.5, \"note\": [1, 2]}", &err), 0);
    char *data;
    size_t n;
    assert_int_equal(dg_read_file(PATH, &data, &n, &err), 0);
    uint64_t hlen;
    memcpy(&hlen, data, 8);
    assert_int_equal(hlen % 8, 0);
    assert_true(8 + hlen <= n);
    assert_int_equal(data[8], '{');
    cJSON *h = cJSON_ParseWithLength(data + 8, (size_t)hlen);
    assert_non_null(h);
    cJSON *meta = cJSON_GetObjectItem(h, "__metadata__");
    assert_string_equal(cJSON_GetObjectItem(meta, "format")->valuestring, "digits-model");
    assert_string_equal(cJSON_GetObjectItem(meta, "version")->valuestring, DIGITS_VERSION);
    assert_string_equal(cJSON_GetObjectItem(meta, "spec")->valuestring, SPEC);
    assert_string_equal(cJSON_GetObjectItem(meta, "spec_name")->valuestring, "cnn");
    assert_string_equal(cJSON_GetObjectItem(meta, "seed")->valuestring, "3");
    assert_string_equal(cJSON_GetObjectItem(meta, "val_accuracy")->valuestring, "0.5");
    assert_string_equal(cJSON_GetObjectItem(meta, "note")->valuestring, "[1,2]");
    cJSON *hyper = cJSON_Parse(cJSON_GetObjectItem(meta, "hyper")->valuestring);
    assert_string_equal(cJSON_GetObjectItem(hyper, "optimizer")->valuestring, "sgd");
    assert_int_equal(cJSON_GetObjectItem(hyper, "batch")->valueint, 4);
    cJSON_Delete(hyper);
    /* Every metadata value is a string (safetensors requires it). */
    for (cJSON *it = meta->child; it; it = it->next) assert_true(cJSON_IsString(it));
    /* Tensors: F32, the net's shapes, contiguous offsets covering the data exactly, raw little-endian floats. */
    size_t at = 0, data_size = n - 8 - (size_t)hlen;
    const unsigned char *base = (const unsigned char *)data + 8 + hlen;
    int nt = nn_net_tensor_count(net);
    assert_int_equal(cJSON_GetArraySize(h), nt + 1);
    for (int i = 0; i < nt; i++) {
        const nn_tensor *t = nn_net_tensor(net, i);
        cJSON *o = cJSON_GetObjectItem(h, t->name);
        assert_non_null(o);
        assert_string_equal(cJSON_GetObjectItem(o, "dtype")->valuestring, "F32");
        cJSON *shape = cJSON_GetObjectItem(o, "shape");
        assert_int_equal(cJSON_GetArraySize(shape), t->ndim);
        size_t count = 1;
        for (int d = 0; d < t->ndim; d++) {
            assert_int_equal(cJSON_GetArrayItem(shape, d)->valueint, t->shape[d]);
            count *= (size_t)t->shape[d];
        }
        assert_int_equal(count, t->count);
        cJSON *offs = cJSON_GetObjectItem(o, "data_offsets");
        assert_int_equal((size_t)cJSON_GetArrayItem(offs, 0)->valuedouble, at);
        assert_int_equal((size_t)cJSON_GetArrayItem(offs, 1)->valuedouble, at + 4 * count);
        const float *src = (t->is_buffer ? nn_net_buffers(net) : nn_net_params(net)) + t->offset;
        assert_memory_equal(base + at, src, 4 * count);
        at += 4 * count;
    }
    assert_int_equal(at, data_size);
    /* The names follow PyTorch's conventions. */
    assert_non_null(cJSON_GetObjectItem(h, "conv1.weight"));
    assert_non_null(cJSON_GetObjectItem(h, "bn1.running_var"));
    assert_non_null(cJSON_GetObjectItem(h, "dense1.bias"));
    cJSON_Delete(h);
    free(data);
    nn_net_free(net);
}

static void test_roundtrip(void **state) {
    (void)state;
    nn_net *net = make_net(SPEC, 5), *back;
    dg_err err = {{0}};
    assert_int_equal(nn_model_save(PATH, net, NULL, &err), 0);
    assert_int_equal(nn_model_load(PATH, 2, &back, &err), 0);
    assert_int_equal(nn_net_max_batch(back), 2);
    assert_string_equal(nn_net_spec(back)->text, SPEC);
    assert_int_equal(nn_net_param_count(back), nn_net_param_count(net));
    assert_memory_equal(nn_net_params(back), nn_net_params(net), nn_net_param_count(net) * sizeof(float));
    assert_memory_equal(nn_net_buffers(back), nn_net_buffers(net), nn_net_buffer_count(net) * sizeof(float));
    float x[2 * 784];
    fill_input(x, 2);
    float a[20], b[20];
    nn_net_forward(net, x, 2, 0, 0, 0);
    memcpy(a, nn_net_probs(net), sizeof a);
    nn_net_forward(back, x, 2, 0, 0, 0);
    memcpy(b, nn_net_probs(back), sizeof b);
    assert_memory_equal(a, b, sizeof a);
    float sum = 0;
    for (int k = 0; k < 10; k++) sum += a[k];
    assert_float_equal(sum, 1.0f, 1e-5);
    char *v;
    assert_int_equal(nn_model_meta(PATH, "spec_name", &v, &err), 0);
    assert_string_equal(v, "cnn");
    free(v);
    assert_int_equal(nn_model_meta(PATH, "no_such_key", &v, &err), 0);
    assert_null(v);
    nn_net_free(back);
    nn_net_free(net);
}

/* Rewrite the JSON header of the model file data[n] with `edit` applied, keeping the tensor bytes; writes `out`. */
static void rewrite_header(const char *data, size_t n, void (*edit)(cJSON *), const char *out) {
    uint64_t hlen;
    memcpy(&hlen, data, 8);
    cJSON *h = cJSON_ParseWithLength(data + 8, (size_t)hlen);
    assert_non_null(h);
    edit(h);
    char *js = cJSON_PrintUnformatted(h);
    size_t jl = strlen(js), padded = (jl + 7) / 8 * 8, tail = n - 8 - (size_t)hlen;
    char *buf = malloc(8 + padded + tail);
    uint64_t p64 = padded;
    memcpy(buf, &p64, 8);
    memset(buf + 8, ' ', padded);
    memcpy(buf + 8, js, jl);
    memcpy(buf + 8 + padded, data + 8 + hlen, tail);
    dg_err err;
    assert_int_equal(dg_write_file_atomic(out, buf, 8 + padded + tail, &err), 0);
    free(buf);
    free(js);
    cJSON_Delete(h);
}

static void edit_nothing(cJSON *h) { (void)h; }

/* bn1.bias takes bn1.weight's bytes (same size), leaving its own as a hole that the max-end check did not see. */
static void edit_overlap(cJSON *h) {
    cJSON *w = cJSON_GetObjectItem(cJSON_GetObjectItem(h, "bn1.weight"), "data_offsets");
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "bn1.bias"), "data_offsets", cJSON_Duplicate(w, 1));
}

/* conv1.weight's begin 0 written as the string "0", which cJSON gives valuedouble 0. */
static void edit_string_offset(cJSON *h) {
    cJSON *o = cJSON_GetObjectItem(cJSON_GetObjectItem(h, "conv1.weight"), "data_offsets");
    assert_true(cJSON_GetArrayItem(o, 0)->valuedouble == 0);
    cJSON_ReplaceItemInArray(o, 0, cJSON_CreateString("0"));
}

/* Offsets the loader read loosely: not numbers, or two tensors on the same bytes. safetensors requires whole-number
 * offsets that tile the data. */
static void test_rejects_loose_offsets(void **state) {
    (void)state;
    nn_net *net = make_net(SPEC, 5), *back = NULL;
    dg_err err = {{0}};
    assert_int_equal(nn_model_save(PATH, net, NULL, &err), 0);
    char *data;
    size_t n;
    assert_int_equal(dg_read_file(PATH, &data, &n, &err), 0);
    const char *bad = DIGITS_TEST_TMP "/loose.safetensors";
    rewrite_header(data, n, edit_overlap, bad);
    assert_int_equal(nn_model_load(bad, 1, &back, &err), -1);
    assert_non_null(strstr(err.msg, "tensors 'bn1.weight' and 'bn1.bias' overlap"));
    assert_null(back);
    rewrite_header(data, n, edit_string_offset, bad);
    assert_int_equal(nn_model_load(bad, 1, &back, &err), -1);
    assert_non_null(strstr(err.msg, "tensor 'conv1.weight' has no valid data_offsets"));
    /* The rewriting itself keeps a good file good. */
    rewrite_header(data, n, edit_nothing, bad);
    assert_int_equal(nn_model_load(bad, 1, &back, &err), 0);
    nn_net_free(back);
    free(data);
    unlink(bad);
    nn_net_free(net);
}

static void test_rejects(void **state) {
    (void)state;
    nn_net *net = make_net(SPEC, 5), *back;
    dg_err err = {{0}};
    assert_int_equal(nn_model_save(PATH, net, NULL, &err), 0);
    char *data;
    size_t n;
    assert_int_equal(dg_read_file(PATH, &data, &n, &err), 0);
    const char *bad = DIGITS_TEST_TMP "/bad.safetensors";
    /* Truncated data. */
    assert_int_equal(dg_write_file_atomic(bad, data, n - 4, &err), 0);
    assert_int_equal(nn_model_load(bad, 1, &back, &err), -1);
    assert_non_null(strstr(err.msg, "truncated"));
    assert_null(back);
    /* Extra bytes after the tensors. */
    char *longer = malloc(n + 8);
    memcpy(longer, data, n);
    memset(longer + n, 0, 8);
    assert_int_equal(dg_write_file_atomic(bad, longer, n + 8, &err), 0);
    assert_int_equal(nn_model_load(bad, 1, &back, &err), -1);
    assert_non_null(strstr(err.msg, "data bytes, the tensors cover"));
    free(longer);
    /* Not safetensors at all. */
    assert_int_equal(dg_write_file_atomic(bad, "\x93NUMPY", 6, &err), 0);
    assert_int_equal(nn_model_load(bad, 1, &back, &err), -1);
    assert_non_null(strstr(err.msg, "not a safetensors file"));
    /* A safetensors file that is not a digits model. */
    const char js[] = "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}    ";
    unsigned char buf[8 + sizeof js - 1 + 4];
    uint64_t hl = sizeof js - 1;
    memcpy(buf, &hl, 8);
    memcpy(buf + 8, js, sizeof js - 1);
    memset(buf + 8 + hl, 0, 4);
    assert_int_equal(dg_write_file_atomic(bad, buf, sizeof buf, &err), 0);
    assert_int_equal(nn_model_load(bad, 1, &back, &err), -1);
    assert_non_null(strstr(err.msg, "not a digits model"));
    /* A tensor whose shape does not match the spec: rewrite dense1.weight's shape in the header. */
    char *p = strstr(data + 8, "\"dense1.weight\":{\"dtype\":\"F32\",\"shape\":[10,");
    assert_non_null(p);
    p[strlen("\"dense1.weight\":{\"dtype\":\"F32\",\"shape\":[")] = '9';
    p[strlen("\"dense1.weight\":{\"dtype\":\"F32\",\"shape\":[") + 1] = ' ';
    assert_int_equal(dg_write_file_atomic(bad, data, n, &err), 0);
    assert_int_equal(nn_model_load(bad, 1, &back, &err), -1);
    assert_non_null(strstr(err.msg, "tensor 'dense1.weight' has shape (9,147), the spec needs (10,147)"));
    assert_int_equal(nn_model_load(DIGITS_TEST_TMP "/none.safetensors", 1, &back, &err), -1);
    assert_non_null(strstr(err.msg, "none.safetensors"));
    free(data);
    unlink(bad);
    nn_net_free(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_layout),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_rejects_loose_offsets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
