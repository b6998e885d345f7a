/* bench/serve_bench: POST /predict requests per second against a running digits-serve, one 28x28 PNG each.
 *
 *   build/bench/serve_bench PORT [CLIENTS=4] [SECONDS=10] [PNG]
 *
 * CLIENTS threads, each on one keep-alive connection to 127.0.0.1:PORT, post the same image (PNG, default a 28x28
 * MNIST-like digit drawn here) back to back for SECONDS and count the 200 answers. Only the loopback address;
 * every read waits 10 s at most. Prints requests/s and the mean latency. Not a test: it never fails on speed.
 * bench/serve_bench.sh starts the server on 2 cores and runs this. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kaggle/photo.h"
#include "core/dg_file.h"
#include "core/dg_progress.h"

static int g_port;
static double g_end;
static const void *g_body;
static size_t g_n;

typedef struct worker {
    long ok, bad;
    double latency;
} worker;

static int connect_local(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

/* One response on a keep-alive connection: its status, or -1 if the connection failed. */
static int read_response(int fd, char *buf, size_t cap) {
    size_t len = 0;
    char *end = NULL;
    struct pollfd p = {fd, POLLIN, 0};
    while (!end) {
        if (len == cap || poll(&p, 1, 10000) != 1) return -1;
        ssize_t k = recv(fd, buf + len, cap - len, 0);
        if (k <= 0) return -1;
        len += (size_t)k;
        buf[len < cap ? len : cap - 1] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    int status = 0;
    size_t body = 0;
    sscanf(buf, "HTTP/1.1 %d", &status);
    const char *cl = strstr(buf, "Content-Length:"); /* as libmicrohttpd writes it */
    if (cl) body = strtoul(cl + 15, NULL, 10);
    size_t have = len - (size_t)(end + 4 - buf);
    while (have < body) {
        if (poll(&p, 1, 10000) != 1) return -1;
        ssize_t k = recv(fd, buf, cap, 0);
        if (k <= 0) return -1;
        have += (size_t)k;
    }
    return status;
}

static void *run(void *arg) {
    worker *w = arg;
    char head[256], *buf = malloc(1 << 16);
    int hn = snprintf(head, sizeof head,
                      "POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\nContent-Length: %zu\r\n\r\n",
                      g_n);
    /* the request in one send: headers and body in two would meet Nagle's algorithm and a delayed ACK (40 ms) */
    size_t req_n = (size_t)hn + g_n;
    char *req = malloc(req_n);
    memcpy(req, head, (size_t)hn);
    memcpy(req + hn, g_body, g_n);
    int fd = -1;
    while (dg_now() < g_end) {
        if (fd < 0 && (fd = connect_local()) < 0) {
            w->bad++;
            nanosleep(&(struct timespec){0, 1000000}, NULL);
            continue;
        }
        double t0 = dg_now();
        int st = -1;
        if (send(fd, req, req_n, MSG_NOSIGNAL) == (ssize_t)req_n) st = read_response(fd, buf, 1 << 16);
        if (st == 200) {
            w->ok++;
            w->latency += dg_now() - t0;
        } else {
            w->bad++;
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0) close(fd);
    free(buf);
    free(req);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: serve_bench PORT [CLIENTS=4] [SECONDS=10] [PNG]\n");
        return 2;
    }
    g_port = atoi(argv[1]);
    int clients = argc > 2 ? atoi(argv[2]) : 4;
    double secs = argc > 3 ? atof(argv[3]) : 10;
    if (g_port <= 0 || clients < 1 || clients > 256 || secs <= 0) {
        fprintf(stderr, "serve_bench: bad arguments\n");
        return 2;
    }
    dg_err err = {{0}};
    char *file = NULL;
    void *png = NULL;
    size_t n = 0;
    if (argc > 4) {
        if (dg_read_file(argv[4], &file, &n, &err) != 0) {
            fprintf(stderr, "serve_bench: %s\n", err.msg);
            return 1;
        }
        g_body = file;
    } else { /* a 28x28 "1": a slanted bar, MNIST-like (light on black) */
        uint8_t img[28 * 28] = {0};
        for (int y = 4; y < 24; y++)
            for (int x = 0; x < 3; x++) img[y * 28 + 13 + (24 - y) / 6 + x] = 255;
        if (kg_photo_png_encode(&png, &n, img, 28, 28, &err) != 0) {
            fprintf(stderr, "serve_bench: %s\n", err.msg);
            return 1;
        }
        g_body = png;
    }
    g_n = n;
    worker *w = calloc((size_t)clients, sizeof *w);
    pthread_t *t = calloc((size_t)clients, sizeof *t);
    double t0 = dg_now();
    g_end = t0 + secs;
    for (int i = 0; i < clients; i++) pthread_create(&t[i], NULL, run, &w[i]);
    long ok = 0, bad = 0;
    double lat = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(t[i], NULL);
        ok += w[i].ok, bad += w[i].bad, lat += w[i].latency;
    }
    double dt = dg_now() - t0;
    printf("serve_bench: %ld requests (%zu-byte PNG) in %.1f s from %d clients: %.0f requests/s, mean latency "
           "%.2f ms, %ld failed\n",
           ok, n, dt, clients, ok / dt, ok ? 1000 * lat / ok : 0.0, bad);
    free(w), free(t), free(png), free(file);
    return ok > 0 ? 0 : 1;
}
