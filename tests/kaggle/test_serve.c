/* Tests for kaggle/serve: the server runs in this process on a free loopback port, with a tiny saved model, and
 * is spoken to over sockets with raw HTTP (so nothing normalises a path or a length for us). Checked: the page
 * and 404/405 for anything else ("/../../etc/passwd" included); POST /predict with an image body and with JSON
 * base64 (plain and as a data URL) answers the digit and probabilities of one-image forward passes computed here
 * on kg_photo_load's image, and that image as base64 PNG; every bad input of the issue gets its 4xx and a message
 * (corrupt, truncated, non-image, empty, blank, several digits, a PNG claiming 20000x20000, a 1 GB
 * Content-Length answered without reading it, a streamed body over the limit, a wrong content type, bad JSON);
 * a slow client is dropped after the timeout while another is served; concurrent clients on several threads all
 * get the single-threaded answer. Every wait is bounded (poll with a timeout). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli_check.h"
#include "testutil.h"
#include "kaggle/photo.h"
#include "kaggle/predict.h"
#include "kaggle/serve.h"
#include "nn/model.h"
#include "nn/net.h"
#include "nn/spec.h"
#include "core/dg_dataset.h"
#include "core/dg_file.h"

#define TMP DIGITS_TEST_TMP "/serve_"
#define MODEL TMP "tiny.safetensors"
#define MAX_BODY (256 * 1024)

static kg_server *g_server;
static int g_port;

/* ---- HTTP over a socket ---- */

static int connect_local(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* Send all of data (stops early if the server closed). */
static void send_all(int fd, const void *data, size_t n) {
    const char *p = data;
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) return;
        p += k, n -= (size_t)k;
    }
}

/* Read until the server closes or 10 s pass without data; malloc'd, NUL-terminated. */
static char *recv_all(int fd, size_t *n) {
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap + 1);
    assert_non_null(b);
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 10000) <= 0) break;
        if (len == cap) {
            b = realloc(b, (cap *= 2) + 1);
            assert_non_null(b);
        }
        ssize_t k = recv(fd, b + len, cap - len, 0);
        if (k <= 0) break;
        len += (size_t)k;
    }
    b[len] = '\0';
    if (n) *n = len;
    return b;
}

typedef struct reply {
    int status;
    char *raw;  /* the whole response */
    char *body; /* into raw */
} reply;

static reply parse_reply(char *raw) {
    reply r = {0, raw, NULL};
    if (sscanf(raw, "HTTP/1.%*d %d", &r.status) != 1) r.status = -1;
    char *e = strstr(raw, "\r\n\r\n");
    r.body = e ? e + 4 : raw + strlen(raw);
    return r;
}

/* One request: head (request line and headers, without the blank line), and a body with its Content-Length. */
static reply request(const char *method, const char *path, const char *type, const void *body, size_t n) {
    int fd = connect_local();
    char head[512];
    int k = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, path);
    if (type) k += snprintf(head + k, sizeof head - (size_t)k, "Content-Type: %s\r\n", type);
    if (body) k += snprintf(head + k, sizeof head - (size_t)k, "Content-Length: %zu\r\n", n);
    k += snprintf(head + k, sizeof head - (size_t)k, "\r\n");
    send_all(fd, head, (size_t)k);
    if (body) send_all(fd, body, n);
    reply r = parse_reply(recv_all(fd, NULL));
    close(fd);
    return r;
}

static reply post(const char *type, const void *body, size_t n) {
    return request("POST", "/predict", type, body, n);
}

/* Fails unless the reply has the status and (if not NULL) a JSON "error" of that name. */
static void expect(reply r, int status, const char *error) {
    if (r.status != status) fail_msg("status %d, want %d: %.300s", r.status, status, r.raw);
    if (error) {
        cJSON *j = cJSON_Parse(r.body);
        const cJSON *e = j ? cJSON_GetObjectItem(j, "error") : NULL;
        const cJSON *m = j ? cJSON_GetObjectItem(j, "message") : NULL;
        if (!cJSON_IsString(e) || strcmp(e->valuestring, error) != 0 || !cJSON_IsString(m) || !m->valuestring[0])
            fail_msg("want error %s with a message: %.300s", error, r.body);
        cJSON_Delete(j);
    }
    free(r.raw);
}

/* ---- images and the expected answer ---- */

static void *png_of(const uint8_t *px, int w, int h, size_t *n) {
    void *png;
    dg_err err = {{0}};
    assert_int_equal(kg_photo_png_encode(&png, n, px, w, h, &err), 0);
    return png;
}

/* A w x h photo: dark rings on light paper centred at cx (fractions of w); none: a blank page. */
static void *photo(int w, int h, const double *cx, int rings, size_t *n) {
    uint8_t *px = malloc((size_t)w * h);
    assert_non_null(px);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int ink = 0;
            for (int k = 0; k < rings; k++) {
                double dx = (x - w * cx[k]) / (h * 0.2), dy = (y - h * 0.5) / (h * 0.33);
                ink |= fabs(sqrt(dx * dx + dy * dy) - 1) < 0.15;
            }
            px[(size_t)y * w + x] = (uint8_t)(ink ? 25 : 230);
        }
    void *png = png_of(px, w, h, n);
    free(px);
    return png;
}

/* The answer expected for an image: probabilities of the tiny model on kg_photo_load's 28x28 image. */
static void expected(const void *img, size_t n, float *probs, uint8_t *seen) {
    dg_err err = {{0}};
    assert_int_equal(kg_photo_load(seen, img, n, NULL, &err), KG_PHOTO_OK);
    nn_net *net = NULL;
    assert_int_equal(nn_model_load(MODEL, 1, &net, &err), 0);
    float x[DG_PIXELS];
    kg_tta_apply(x, seen, 0);
    nn_net_forward(net, x, 1, 0, 0, 0);
    memcpy(probs, nn_net_probs(net), 10 * sizeof(float));
    nn_net_free(net);
}

/* Fails unless body is the 200 answer for probs and seen. */
static void check_answer(const char *body, const float *probs, const uint8_t *seen) {
    cJSON *j = cJSON_Parse(body);
    if (!j) fail_msg("not JSON: %.300s", body);
    const cJSON *p = cJSON_GetObjectItem(j, "probabilities"), *d = cJSON_GetObjectItem(j, "digit"),
                *im = cJSON_GetObjectItem(j, "image");
    assert_int_equal(cJSON_GetArraySize(p), 10);
    int best = 0;
    for (int c = 0; c < 10; c++) {
        tu_assert_close(cJSON_GetArrayItem(p, c)->valuedouble, probs[c], 0, 1e-6);
        best = probs[c] > probs[best] ? c : best;
    }
    assert_int_equal(d->valueint, best);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "inverted")));
    void *png;
    size_t n;
    assert_int_equal(kg_base64_decode(&png, &n, im->valuestring, strlen(im->valuestring)), 0);
    kg_photo_grey g;
    dg_err err = {{0}};
    assert_int_equal(kg_photo_decode(&g, png, n, &err), KG_PHOTO_OK);
    assert_int_equal(g.w, 28);
    assert_int_equal(g.h, 28);
    assert_memory_equal(g.px, seen, DG_PIXELS);
    kg_photo_grey_free(&g);
    free(png);
    cJSON_Delete(j);
}

/* ---- setup ---- */

static int setup(void **state) {
    (void)state;
    static const char *spec_text = "name tiny\ninput 1x28x28\nconv filters=4 size=3\nrelu\nmaxpool size=2\n"
                                   "dense units=16\nrelu\ndense units=10\n";
    dg_err err = {{0}};
    nn_spec spec;
    nn_net *net = NULL;
    if (nn_spec_parse(&spec, spec_text, "<test>", &err) != 0 || nn_net_create(&net, &spec, 4, &err) != 0)
        fail_msg("%s", err.msg);
    nn_net_init(net, 5);
    assert_int_equal(nn_model_save(MODEL, net, NULL, &err), 0);
    nn_net_free(net);
    nn_spec_free(&spec);
    static char *models[] = {MODEL};
    kg_serve_config c = {.host = "127.0.0.1", .port = 0, .models = models, .n_models = 1, .tta = 1, .threads = 2,
                         .max_body = MAX_BODY, .timeout_s = 1, .max_conns = 32};
    if (kg_server_start(&g_server, &c, &err) != 0) fail_msg("%s", err.msg);
    g_port = kg_server_port(g_server);
    assert_true(g_port > 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    kg_server_stop(g_server);
    return 0;
}

/* ---- tests ---- */

static void test_base64(void **state) {
    (void)state;
    static const struct {
        const char *raw, *b64;
    } v[] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
             {"foobar", "Zm9vYmFy"}}; /* RFC 4648, section 10 */
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        char *e;
        void *d;
        size_t n;
        assert_int_equal(kg_base64_encode(&e, v[i].raw, strlen(v[i].raw)), 0);
        assert_string_equal(e, v[i].b64);
        assert_int_equal(kg_base64_decode(&d, &n, v[i].b64, strlen(v[i].b64)), 0);
        assert_int_equal(n, strlen(v[i].raw));
        assert_memory_equal(d, v[i].raw, n);
        free(e), free(d);
    }
    void *d;
    size_t n;
    const char *url = "data:image/png;base64,Zm9v\nYmFy";
    assert_int_equal(kg_base64_decode(&d, &n, url, strlen(url)), 0);
    assert_int_equal(n, 6);
    assert_memory_equal(d, "foobar", 6);
    free(d);
    assert_int_equal(kg_base64_decode(&d, &n, "Zm9v!", 5), -1);
    assert_int_equal(kg_base64_decode(&d, &n, "Zg==Zg", 6), -1);
    assert_int_equal(kg_base64_decode(&d, &n, "Z", 1), -1);
    assert_int_equal(kg_base64_decode(&d, &n, "data:text/plain,abc", 19), -1);
}

static void test_page_and_paths(void **state) {
    (void)state;
    reply r = request("GET", "/", NULL, NULL, 0);
    assert_int_equal(r.status, 200);
    assert_has(r.raw, "Content-Type: text/html");
    assert_has(r.body, "<canvas id=\"pad\"");
    assert_has(r.body, "fetch(\"/predict\"");
    free(r.raw);
    expect(request("GET", "/index.html", NULL, NULL, 0), 200, NULL);
    expect(request("GET", "/../../etc/passwd", NULL, NULL, 0), 404, "not_found");
    expect(request("GET", "/%2e%2e/%2e%2e/etc/passwd", NULL, NULL, 0), 404, "not_found");
    expect(request("GET", "/nothing", NULL, NULL, 0), 404, "not_found");
    expect(request("GET", "/predict", NULL, NULL, 0), 404, "not_found");
    expect(request("DELETE", "/", NULL, NULL, 0), 405, "method_not_allowed");
    expect(request("POST", "/index.html", "image/png", "x", 1), 404, "not_found");
}

static void test_predict(void **state) {
    (void)state;
    static const double one[] = {0.45};
    size_t n;
    void *img = photo(300, 200, one, 1, &n);
    float probs[10];
    uint8_t seen[DG_PIXELS];
    expected(img, n, probs, seen);
    reply r = post("image/png", img, n);
    assert_int_equal(r.status, 200);
    assert_has(r.raw, "Content-Type: application/json");
    check_answer(r.body, probs, seen);
    free(r.raw);
    /* the same as JSON, plain base64 and as a data URL; and the library call without HTTP */
    char *b64, *json = malloc(n * 2 + 100);
    assert_int_equal(kg_base64_encode(&b64, img, n), 0);
    const char *forms[2] = {"{\"image\": \"%s\"}", "{\"image\":\"data:image/png;base64,%s\", \"other\": 1}"};
    for (int k = 0; k < 2; k++) {
        sprintf(json, forms[k], b64);
        r = post("application/json; charset=utf-8", json, strlen(json));
        assert_int_equal(r.status, 200);
        check_answer(r.body, probs, seen);
        free(r.raw);
    }
    char *direct = NULL;
    assert_int_equal(kg_server_predict(g_server, "image/png", img, n, &direct), 200);
    check_answer(direct, probs, seen);
    free(direct), free(b64), free(json), free(img);
}

static void test_bad_input(void **state) {
    (void)state;
    static const double one[] = {0.5}, two[] = {0.28, 0.72};
    size_t n, nb, n2;
    uint8_t *img = photo(200, 200, one, 1, &n), *blank = photo(200, 200, one, 0, &nb), *pair = photo(400, 150, two, 2, &n2);
    expect(post("image/png", img, 30), 400, "bad_image");      /* truncated */
    uint8_t *bad = malloc(n);
    memcpy(bad, img, n);
    bad[n - 30] ^= 0x5a; /* corrupt image data */
    expect(post("image/png", bad, n), 400, "bad_image");
    expect(post("image/jpeg", "\xff\xd8\xff\xe0 not really", 15), 400, "bad_image");
    expect(post("image/png", "just some text", 14), 400, "bad_image");
    expect(post("image/png", "", 0), 400, "bad_request");
    expect(post("image/png", blank, nb), 422, "no_ink");
    expect(post("image/png", pair, n2), 422, "several_digits");
    expect(post("text/plain", img, n), 415, "unsupported_media_type");
    expect(post(NULL, img, n), 415, "unsupported_media_type");
    expect(post("application/json", "{\"image\": ", 10), 400, "bad_request");
    expect(post("application/json", "{\"picture\": \"Zm9v\"}", 19), 400, "bad_request");
    expect(post("application/json", "{\"image\": \"@@@\"}", 16), 400, "bad_request");
    expect(post("application/json", "{\"image\": 12}", 13), 400, "bad_request");
    /* a PNG claiming 20000x20000: a signature and IHDR only */
    uint8_t huge[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                        0, 0, 0x4e, 0x20, 0, 0, 0x4e, 0x20, 8, 0, 0, 0, 0, 0, 0, 0, 0};
    expect(post("image/png", huge, sizeof huge), 413, "too_large");
    free(img), free(blank), free(pair), free(bad);
}

/* A 1 GB Content-Length is refused from the headers: the answer comes while only 64 KB have been sent. */
static void test_huge_body(void **state) {
    (void)state;
    int fd = connect_local();
    const char *head = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000000000\r\n\r\n";
    send_all(fd, head, strlen(head));
    static char chunk[65536];
    send_all(fd, chunk, sizeof chunk);
    shutdown(fd, SHUT_WR);
    reply r = parse_reply(recv_all(fd, NULL));
    close(fd);
    expect(r, 413, "too_large");
    /* a chunked body (no length) larger than the limit: read and dropped, then refused */
    fd = connect_local();
    const char *h2 = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nTransfer-Encoding: chunked\r\n"
                     "Connection: close\r\n\r\n";
    send_all(fd, h2, strlen(h2));
    char size_line[32];
    int k = snprintf(size_line, sizeof size_line, "%zx\r\n", sizeof chunk);
    for (int i = 0; i < 2 * MAX_BODY / (int)sizeof chunk; i++) {
        send_all(fd, size_line, (size_t)k);
        send_all(fd, chunk, sizeof chunk);
        send_all(fd, "\r\n", 2);
    }
    send_all(fd, "0\r\n\r\n", 5);
    r = parse_reply(recv_all(fd, NULL));
    close(fd);
    expect(r, 413, "too_large");
}

/* A client that sends half its headers and stops is dropped after the timeout (1 s here), while another client
 * is served meanwhile. */
static void test_slow_client(void **state) {
    (void)state;
    int slow = connect_local();
    const char *part = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Ty";
    send_all(slow, part, strlen(part));
    expect(request("GET", "/", NULL, NULL, 0), 200, NULL);
    struct pollfd p = {slow, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 10000), 1); /* the server acts (closes) long before 10 s */
    char c;
    ssize_t k = recv(slow, &c, 1, 0);
    if (k > 0) { /* or answers 408, then closes */
        size_t n;
        char *rest = recv_all(slow, &n);
        free(rest);
    }
    close(slow);
    /* a slow body: the headers promise 1000 bytes, 10 come */
    slow = connect_local();
    const char *h = "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n0123456789";
    send_all(slow, h, strlen(h));
    p.fd = slow;
    assert_int_equal(poll(&p, 1, 10000), 1);
    char *rest = recv_all(slow, NULL);
    assert_null(strstr(rest, "200 OK"));
    free(rest);
    close(slow);
}

typedef struct client_arg {
    const void *img;
    size_t n;
    const char *want; /* the answer's body */
    int ok;
} client_arg;

/* (no cmocka assertion here: they may not run off the main thread) */
static void *client(void *p) {
    client_arg *a = p;
    for (int i = 0; i < 25; i++) {
        reply r = post("image/png", a->img, a->n);
        a->ok += r.status == 200 && strcmp(r.body, a->want) == 0;
        free(r.raw);
    }
    return NULL;
}

/* 4 clients x 25 requests at once on 2 server threads, two different images: every answer is the image's own. */
static void test_concurrent(void **state) {
    (void)state;
    static const double c1[] = {0.4}, c2[] = {0.6};
    client_arg a[4];
    void *imgs[2];
    size_t ns[2];
    float probs[2][10];
    uint8_t seen[2][DG_PIXELS];
    imgs[0] = photo(180, 140, c1, 1, &ns[0]);
    imgs[1] = photo(90, 220, c2, 1, &ns[1]);
    char *want[2];
    for (int k = 0; k < 2; k++) {
        expected(imgs[k], ns[k], probs[k], seen[k]);
        assert_int_equal(kg_server_predict(g_server, "image/png", imgs[k], ns[k], &want[k]), 200);
        check_answer(want[k], probs[k], seen[k]);
    }
    assert_string_not_equal(want[0], want[1]);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (client_arg){imgs[i % 2], ns[i % 2], want[i % 2], 0};
        assert_int_equal(pthread_create(&t[i], NULL, client, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++) assert_int_equal(a[i].ok, 25);
    free(imgs[0]), free(imgs[1]), free(want[0]), free(want[1]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64),       cmocka_unit_test(test_page_and_paths), cmocka_unit_test(test_predict),
        cmocka_unit_test(test_bad_input),    cmocka_unit_test(test_huge_body),      cmocka_unit_test(test_slow_client),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
