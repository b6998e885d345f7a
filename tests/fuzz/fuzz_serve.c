/* fuzz_serve: what kaggle/serve does with a POST /predict request, without the socket: kg_server_predict on a
 * Content-Type and a body (the input's first line and the rest), which takes the body as an image or as JSON
 * {"image": BASE64}, decodes it (kaggle/photo) and classifies it with a tiny model saved at start-up. The server
 * listens on a free loopback port because kg_server_start does; nothing is sent to it.
 * Invariants: the status is one serve.h documents (200, 400, 413, 415, 422; never 500); the answer is a JSON
 * object; a refusal has string "error" and "message", with the error name that the status implies; an answer has
 * a digit 0..9 that is the most probable of ten probabilities in [0, 1] summing to 1, and its base64 "image" is a
 * PNG of exactly the 28x28 image kg_photo_load makes of the body (decoded from base64 here for JSON bodies). And
 * base64 itself: whatever kg_base64_decode accepts, encoding it and decoding again gives the same bytes. */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "core/dg_dataset.h"
#include "fuzz_util.h"
#include "kaggle/photo.h"
#include "kaggle/serve.h"
#include "nn/model.h"
#include "nn/net.h"
#include "nn/spec.h"

static kg_server *g_server;

static void start(void) {
    static const char *spec_text = "name tiny\ninput 1x28x28\nconv filters=2 size=3\nrelu\nmaxpool size=2\n"
                                   "dense units=10\n";
    static char model[512];
    static char *models[] = {model};
    dg_err err = {{0}};
    nn_spec spec;
    nn_net *net = NULL;
    fz_path(model, sizeof model, "tiny.safetensors");
    FZ_CHECK(nn_spec_parse(&spec, spec_text, "tiny", &err) == 0 && nn_net_create(&net, &spec, 1, &err) == 0 &&
                 (nn_net_init(net, 3), nn_model_save(model, net, NULL, &err)) == 0,
             "model: %s", err.msg);
    nn_net_free(net);
    nn_spec_free(&spec);
    kg_serve_config c = {.host = "127.0.0.1", .port = 0, .models = models, .n_models = 1, .tta = 1, .threads = 1,
                         .max_body = 1 << 20, .timeout_s = 1, .max_conns = 4};
    FZ_CHECK(kg_server_start(&g_server, &c, &err) == 0, "server: %s", err.msg);
}

/* base64 round trip of whatever the decoder accepts */
static void check_base64(const char *text, size_t len) {
    void *bin = NULL, *back = NULL;
    size_t n = 0, m = 0;
    if (kg_base64_decode(&bin, &n, text, len) != 0) {
        FZ_CHECK(bin == NULL, "a refused decode left a buffer");
        return;
    }
    char *enc = NULL;
    FZ_CHECK(kg_base64_encode(&enc, bin, n) == 0, "encode failed");
    FZ_CHECK(strlen(enc) == (n + 2) / 3 * 4, "%zu bytes encoded in %zu characters", n, strlen(enc));
    FZ_CHECK(kg_base64_decode(&back, &m, enc, strlen(enc)) == 0, "own base64 refused: %s", enc);
    FZ_CHECK(m == n && (n == 0 || memcmp(bin, back, n) == 0), "base64 round trip differs");
    free(bin);
    free(back);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_server) start();
    const uint8_t *nl = memchr(data, '\n', size);
    size_t ctn = nl ? (size_t)(nl - data) : size;
    char *ct = fz_text(data, ctn);
    const uint8_t *body = nl ? nl + 1 : data + size;
    size_t n = size - (size_t)(body - data);
    char *json = NULL;
    int st = kg_server_predict(g_server, ct[0] ? ct : NULL, body, n, &json);
    FZ_CHECK(st == 200 || st == 400 || st == 413 || st == 415 || st == 422, "status %d: %s", st,
             json ? json : "(no text)");
    FZ_CHECK(json, "status %d without an answer", st);
    cJSON *j = cJSON_Parse(json);
    FZ_CHECK(cJSON_IsObject(j), "answer is not a JSON object: %s", json);

    /* what the body holds as an image, by the documented rules */
    int is_json = strncasecmp(ct, "application/json", 16) == 0;
    const void *img = body;
    void *decoded = NULL;
    size_t img_n = n;
    if (is_json) {
        cJSON *b = cJSON_ParseWithLength((const char *)body, n);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, "image");
        if (cJSON_IsString(v)) {
            check_base64(v->valuestring, strlen(v->valuestring));
            if (kg_base64_decode(&decoded, &img_n, v->valuestring, strlen(v->valuestring)) == 0) img = decoded;
        }
        cJSON_Delete(b);
    } else if (n) {
        char *t = fz_text(body, n);
        check_base64(t, n);
        free(t);
    }

    if (st != 200) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error"), *m = cJSON_GetObjectItemCaseSensitive(j, "message");
        FZ_CHECK(cJSON_IsString(e) && cJSON_IsString(m) && m->valuestring[0], "refusal without error/message: %s",
                 json);
        const char *name = e->valuestring;
        FZ_CHECK(st == 415 ? strcmp(name, "unsupported_media_type") == 0
                 : st == 413 ? strcmp(name, "too_large") == 0
                 : st == 422 ? strcmp(name, "no_ink") == 0 || strcmp(name, "several_digits") == 0
                             : strcmp(name, "bad_request") == 0 || strcmp(name, "bad_image") == 0,
                 "status %d with error %s", st, name);
    } else {
        uint8_t want[DG_PIXELS];
        kg_photo_info info;
        dg_err err = {{0}};
        FZ_CHECK(kg_photo_load(want, img, img_n, &info, &err) == KG_PHOTO_OK, "answered 200, but the image is "
                 "refused here: %s", err.msg);
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "digit"), *p = cJSON_GetObjectItemCaseSensitive(j, "probabilities"),
                    *im = cJSON_GetObjectItemCaseSensitive(j, "image"), *inv = cJSON_GetObjectItemCaseSensitive(j, "inverted");
        FZ_CHECK(cJSON_IsNumber(d) && d->valuedouble >= 0 && d->valuedouble <= 9 && d->valuedouble == floor(d->valuedouble),
                 "digit: %s", json);
        FZ_CHECK(cJSON_IsArray(p) && cJSON_GetArraySize(p) == DG_CLASSES, "probabilities: %s", json);
        FZ_CHECK(cJSON_IsBool(inv) && cJSON_IsTrue(inv) == (info.inverted != 0), "inverted: %s", json);
        double sum = 0, best = -1;
        int k = 0, arg = -1;
        for (const cJSON *q = p->child; q; q = q->next, k++) {
            FZ_CHECK(cJSON_IsNumber(q) && q->valuedouble >= 0 && q->valuedouble <= 1, "probability %d: %s", k, json);
            sum += q->valuedouble;
            if (q->valuedouble > best) best = q->valuedouble, arg = k;
        }
        FZ_CHECK(fabs(sum - 1) < 1e-4, "probabilities sum to %g", sum);
        FZ_CHECK(cJSON_GetArrayItem(p, (int)d->valuedouble)->valuedouble == best, "digit %d is not the most "
                 "probable (%d)", (int)d->valuedouble, arg);
        FZ_CHECK(cJSON_IsString(im), "no image: %s", json);
        void *png = NULL;
        size_t png_n = 0;
        kg_photo_grey g;
        FZ_CHECK(kg_base64_decode(&png, &png_n, im->valuestring, strlen(im->valuestring)) == 0, "image not base64");
        FZ_CHECK(kg_photo_decode(&g, png, png_n, &err) == KG_PHOTO_OK, "image not a PNG: %s", err.msg);
        FZ_CHECK(g.w == DG_SIDE && g.h == DG_SIDE && memcmp(g.px, want, DG_PIXELS) == 0,
                 "answered image differs from kg_photo_load's");
        kg_photo_grey_free(&g);
        free(png);
    }
    cJSON_Delete(j);
    free(decoded);
    free(json);
    free(ct);
    return 0;
}
