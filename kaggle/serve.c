/* kaggle/serve: the digit server (see serve.h). */
#include "kaggle/serve.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kaggle/photo.h"
#include "kaggle/predict.h"
#include "kaggle/serve_page.h"
#include "nn/model.h"
#include "core/dg_cli.h"
#include "core/dg_dataset.h"

struct kg_server {
    kg_serve_config c;
    struct MHD_Daemon *d;
    int port;
    nn_net **nets;         /* (threads, n_models): one set per request thread */
    int *free_sets, n_free; /* stack of unused sets */
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

/* ---- base64 ---- */

static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int kg_base64_encode(char **out, const void *data, size_t n) {
    const uint8_t *p = data;
    char *o = malloc((n + 2) / 3 * 4 + 1);
    if (!(*out = o)) return -1;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        *o++ = kB64[v >> 18 & 63];
        *o++ = kB64[v >> 12 & 63];
        *o++ = i + 1 < n ? kB64[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? kB64[v & 63] : '=';
    }
    *o = '\0';
    return 0;
}

int kg_base64_decode(void **out, size_t *n, const char *text, size_t len) {
    *out = NULL;
    *n = 0;
    if (len > 5 && strncmp(text, "data:", 5) == 0) { /* data URL: skip to after ";base64," */
        const char *comma = memchr(text, ',', len);
        if (!comma || comma - text < 7 || strncmp(comma - 7, ";base64", 7) != 0) return -1;
        len -= (size_t)(comma + 1 - text);
        text = comma + 1;
    }
    uint8_t *o = malloc(len / 4 * 3 + 3);
    if (!o) return -1;
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)text[i], v;
        if (isspace(c)) continue;
        if (c == '=') {
            pad++;
            continue;
        }
        const char *at = c ? strchr(kB64, c) : NULL;
        if (!at || pad) { /* not base64, or data after padding */
            free(o);
            return -1;
        }
        v = (int)(at - kB64);
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (uint8_t)(acc >> bits);
        }
    }
    if (pad > 2 || bits >= 6) {
        free(o);
        return -1;
    }
    *out = o;
    *n = k;
    return 0;
}

/* ---- predictions ---- */

static char *json_error(const char *name, const char *msg) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "error", name);
    cJSON_AddStringToObject(j, "message", msg);
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return t;
}

/* The media type of a Content-Type header, without parameters, compared case-insensitively. */
static int media_is(const char *ct, const char *type) {
    size_t n = strlen(type);
    if (!ct || strncasecmp(ct, type, n) != 0) return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

static int media_ok(const char *ct) {
    return media_is(ct, "image/png") || media_is(ct, "image/jpeg") || media_is(ct, "application/json");
}

static int photo_http(int status) {
    switch (status) {
    case KG_PHOTO_TOO_LARGE: return 413;
    case KG_PHOTO_NO_INK:
    case KG_PHOTO_SEVERAL: return 422;
    default: return 400;
    }
}

/* Probabilities of the server's models on one 28x28 image, with a net set of this thread's own. */
static int classify(kg_server *s, float *probs, const uint8_t *px, dg_err *err) {
    pthread_mutex_lock(&s->lock);
    while (s->n_free == 0) pthread_cond_wait(&s->cond, &s->lock);
    int set = s->free_sets[--s->n_free];
    pthread_mutex_unlock(&s->lock);
    dg_set_threads(1); /* this thread's OpenMP teams and BLAS: one thread per request */
    kg_images im;
    kg_images_wrap(&im, px, 1);
    float one[DG_CLASSES];
    int rc = 0;
    memset(probs, 0, DG_CLASSES * sizeof(float));
    for (int m = 0; m < s->c.n_models && rc == 0; m++) {
        rc = kg_predict_net(one, s->nets[set * s->c.n_models + m], &im, NULL, 1, s->c.tta, err);
        for (int k = 0; k < DG_CLASSES; k++) probs[k] += one[k] / (float)s->c.n_models;
    }
    pthread_mutex_lock(&s->lock);
    s->free_sets[s->n_free++] = set;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int kg_server_predict(kg_server *s, const char *content_type, const void *body, size_t n, char **json) {
    dg_err err = {{0}};
    void *img = NULL;
    size_t len = n;
    *json = NULL;
    if (!media_ok(content_type)) {
        snprintf(err.msg, sizeof err.msg, "Content-Type %s: expected image/png, image/jpeg or application/json",
                 content_type ? content_type : "(none)");
        *json = json_error("unsupported_media_type", err.msg);
        return 415;
    }
    if (n == 0) {
        *json = json_error("bad_request", "empty body: send an image, or JSON {\"image\": base64}");
        return 400;
    }
    if (media_is(content_type, "application/json")) {
        cJSON *j = cJSON_ParseWithLength(body, n);
        const cJSON *v = j ? cJSON_GetObjectItemCaseSensitive(j, "image") : NULL;
        int parsed = j != NULL;
        int bad = !cJSON_IsString(v) || kg_base64_decode(&img, &len, v->valuestring, strlen(v->valuestring)) != 0;
        cJSON_Delete(j);
        if (bad) {
            *json = json_error("bad_request", parsed ? "JSON without an \"image\" string of base64"
                                                     : "body is not JSON (expected {\"image\": base64})");
            return 400;
        }
        body = img;
    }
    uint8_t px[DG_PIXELS];
    kg_photo_info info;
    int st = kg_photo_load(px, body, len, &info, &err);
    free(img);
    if (st != KG_PHOTO_OK) {
        *json = json_error(kg_photo_status_name(st), err.msg);
        return photo_http(st);
    }
    float probs[DG_CLASSES];
    void *png = NULL;
    size_t png_n = 0;
    char *b64 = NULL;
    if (classify(s, probs, px, &err) != 0 || kg_photo_png_encode(&png, &png_n, px, DG_SIDE, DG_SIDE, &err) != 0 ||
        kg_base64_encode(&b64, png, png_n) != 0) {
        free(png);
        *json = json_error("internal", err.msg[0] ? err.msg : "out of memory");
        return 500;
    }
    int d = 0;
    for (int k = 1; k < DG_CLASSES; k++) d = probs[k] > probs[d] ? k : d;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "digit", d);
    cJSON *p = cJSON_AddArrayToObject(j, "probabilities");
    for (int k = 0; k < DG_CLASSES; k++) cJSON_AddItemToArray(p, cJSON_CreateNumber(round(probs[k] * 1e6) / 1e6));
    cJSON_AddStringToObject(j, "image", b64);
    cJSON_AddBoolToObject(j, "inverted", info.inverted);
    *json = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    free(png);
    free(b64);
    return *json ? 200 : 500;
}

/* ---- HTTP ---- */

typedef struct request {
    int answered;     /* a response was queued on the first call (an early refusal) */
    char *body;
    size_t n, cap;
    int too_big;
} request;

static enum MHD_Result respond(struct MHD_Connection *c, int status, const char *type, const void *data, size_t n,
                               enum MHD_ResponseMemoryMode mode) {
    struct MHD_Response *r = MHD_create_response_from_buffer(n, (void *)data, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE) free((void *)data);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    /* the page works offline: nothing may be loaded from elsewhere */
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
                            "script-src 'self' 'unsafe-inline'");
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result respond_json(struct MHD_Connection *c, int status, char *json) {
    if (!json) return MHD_NO;
    return respond(c, status, "application/json", json, strlen(json), MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result respond_error(struct MHD_Connection *c, int status, const char *name, const char *msg) {
    return respond_json(c, status, json_error(name, msg));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_n, void **state) {
    kg_server *s = cls;
    request *r = *state;
    (void)version;
    int post = strcmp(method, "POST") == 0;
    if (!r) { /* first call: headers only */
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        *state = r;
        if (!post) {
            r->answered = 1;
            if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
                return respond_error(c, 405, "method_not_allowed", "use GET for the page, POST /predict");
            const char *path = strcmp(url, "/") == 0 ? "/index.html" : url;
            for (int i = 0; i < kg_serve_n_files; i++)
                if (strcmp(path, kg_serve_files[i].path) == 0)
                    return respond(c, 200, kg_serve_files[i].type, kg_serve_files[i].data, kg_serve_files[i].len,
                                   MHD_RESPMEM_PERSISTENT);
            return respond_error(c, 404, "not_found", "no such page (the server has /, /index.html and POST /predict)");
        }
        if (strcmp(url, "/predict") != 0) {
            r->answered = 1;
            return respond_error(c, 404, "not_found", "POST to /predict");
        }
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (!media_ok(ct)) {
            r->answered = 1;
            char *json = NULL;
            int st = kg_server_predict(s, ct, "", 0, &json);
            return respond_json(c, st, json);
        }
        if (cl) {
            char *end;
            unsigned long long v = strtoull(cl, &end, 10);
            if (*end == '\0' && v > s->c.max_body) {
                r->answered = 1;
                char msg[160];
                snprintf(msg, sizeof msg, "body of %llu bytes: at most %zu", v, s->c.max_body);
                return respond_error(c, 413, "too_large", msg);
            }
        }
        return MHD_YES;
    }
    if (r->answered) { /* an early refusal: the rest of the body is dropped */
        *upload_n = 0;
        return MHD_YES;
    }
    if (*upload_n) { /* a piece of the body */
        size_t k = *upload_n;
        *upload_n = 0;
        if (r->too_big) return MHD_YES;
        if (r->n + k > s->c.max_body) {
            r->too_big = 1;
            free(r->body);
            r->body = NULL;
            r->n = r->cap = 0;
            return MHD_YES;
        }
        if (r->n + k > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->n + k) cap *= 2;
            char *b = realloc(r->body, cap > s->c.max_body ? s->c.max_body : cap);
            if (!b) return MHD_NO;
            r->body = b;
            r->cap = cap > s->c.max_body ? s->c.max_body : cap;
        }
        memcpy(r->body + r->n, upload, k);
        r->n += k;
        return MHD_YES;
    }
    r->answered = 1; /* the whole body is here */
    if (r->too_big) {
        char msg[160];
        snprintf(msg, sizeof msg, "body over %zu bytes", s->c.max_body);
        return respond_error(c, 413, "too_large", msg);
    }
    char *json = NULL;
    int st = kg_server_predict(s, MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
                               r->body ? r->body : "", r->n, &json);
    return respond_json(c, st, json);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode why) {
    (void)cls, (void)c, (void)why;
    request *r = *state;
    if (r) free(r->body);
    free(r);
    *state = NULL;
}

int kg_server_start(kg_server **out, const kg_serve_config *c, dg_err *err) {
    *out = NULL;
    if (c->n_models < 1) return dg_fail(err, "no model");
    if (c->threads < 1 || c->tta < 1 || c->tta > KG_TTA_MAX) return dg_fail(err, "bad threads or tta");
    kg_server *s = calloc(1, sizeof *s);
    if (!s) return dg_fail(err, "out of memory");
    s->c = *c;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->nets = calloc((size_t)c->threads * (size_t)c->n_models, sizeof *s->nets);
    s->free_sets = calloc((size_t)c->threads, sizeof(int));
    if (!s->nets || !s->free_sets) {
        kg_server_stop(s);
        return dg_fail(err, "out of memory");
    }
    for (int m = 0; m < c->n_models; m++) {
        char path[4096];
        if (kg_model_path(path, sizeof path, c->models[m], err) != 0) goto fail;
        for (int t = 0; t < c->threads; t++) {
            nn_net **net = &s->nets[t * c->n_models + m];
            if (nn_model_load(path, 1, net, err) != 0) {
                dg_err_prefix(err, "%s: not a usable model", path);
                goto fail;
            }
            if (kg_net_fits(*net, path, err) != 0) goto fail;
        }
    }
    for (int t = 0; t < c->threads; t++) s->free_sets[s->n_free++] = t;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)c->port);
    if (inet_pton(AF_INET, c->host, &addr.sin_addr) != 1) {
        dg_fail(err, "%s: not a numeric IPv4 address", c->host);
        goto fail;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
    s->d = MHD_start_daemon(flags, (uint16_t)c->port, NULL, NULL, on_request, s,               //
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,                    //
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)c->threads,                  //
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)c->timeout_s,              //
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->max_conns,                //
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,                       //
                            MHD_OPTION_END);
    if (!s->d) {
        dg_fail(err, "cannot listen on %s:%d (in use, or not an address of this machine?)", c->host, c->port);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : c->port;
    *out = s;
    return 0;
fail:
    kg_server_stop(s);
    return -1;
}

int kg_server_port(const kg_server *s) {
    return s->port;
}

void kg_server_stop(kg_server *s) {
    if (!s) return;
    if (s->d) MHD_stop_daemon(s->d);
    for (int i = 0; s->nets && i < s->c.threads * s->c.n_models; i++) nn_net_free(s->nets[i]);
    free(s->nets);
    free(s->free_sets);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}
