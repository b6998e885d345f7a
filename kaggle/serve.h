/* kaggle/serve: a small local HTTP server for a person's own digit (libmicrohttpd).
 *
 *   GET /                 the drawing page (kaggle/serve_page/, embedded in the binary at build time); any other
 *                         path is 404 (there is no file system behind it, so "/../../etc/passwd" is just unknown)
 *   POST /predict         body: an image (Content-Type image/png or image/jpeg) or JSON {"image": BASE64}
 *                         (a "data:image/...;base64," prefix is allowed). Answer, application/json:
 *                           200 {"digit": d, "probabilities": [10], "image": BASE64 PNG of the 28x28 image the
 *                                models saw, "inverted": bool}
 *                           4xx {"error": NAME, "message": TEXT}: 400 bad_request/bad_image, 405, 404,
 *                                413 too_large (a body over max_body, refused by its Content-Length before it is
 *                                read, or when a streamed body passes the limit; an image over the pixel limits),
 *                                415 unsupported_media_type, 422 no_ink/several_digits
 *
 * Models load once. Requests run on a pool of `threads` threads; each thread classifies with nets of its own (a
 * forward pass writes the net's activation buffers, so one net must not serve two requests at once), taken from a
 * pool of per-thread net sets under a lock. The OpenMP and BLAS threads of a forward pass are 1: the server scales
 * by requests, not inside one. Slow clients are dropped after timeout_s seconds of silence; bodies are bounded by
 * max_body and connections by max_conns, so memory is bounded whatever the clients do.
 */
#ifndef KG_SERVE_H
#define KG_SERVE_H

#include <stddef.h>

#include "core/dg_err.h"

typedef struct kg_serve_config {
    const char *host;        /* numeric IPv4 address to listen on (default 127.0.0.1) */
    int port;                /* 0: any free port (kg_server_port tells which) */
    char *const *models;     /* model.safetensors files or run directories; probabilities averaged */
    int n_models;
    int tta;                 /* test-time augmentation views, 1..KG_TTA_MAX */
    int threads;             /* request threads, each with its own nets */
    size_t max_body;         /* bytes */
    int timeout_s;           /* idle connection timeout */
    int max_conns;           /* open connections at most */
} kg_serve_config;

typedef struct kg_server kg_server;

/* Load the models (once) and start listening. */
int kg_server_start(kg_server **s, const kg_serve_config *c, dg_err *err);
/* The port it listens on. */
int kg_server_port(const kg_server *s);
/* Stop listening, finish the requests in flight, free everything. NULL is fine. */
void kg_server_stop(kg_server *s);

/* What POST /predict answers for a body (without HTTP): the status code and a malloc'd JSON text. Safe to call from
 * several threads at once. content_type may be NULL. */
int kg_server_predict(kg_server *s, const char *content_type, const void *body, size_t n, char **json);

/* Base64 (RFC 4648, with padding): encode into a malloc'd NUL-terminated text; decode (whitespace ignored, an
 * optional "data:...;base64," prefix skipped) into a malloc'd buffer. 0 or -1 (bad text or out of memory). */
int kg_base64_encode(char **out, const void *data, size_t n);
int kg_base64_decode(void **out, size_t *n, const char *text, size_t len);

#endif
