/* End-to-end test of digits-serve's page with Debian's headless chromium: the built digits-serve runs on a free
 * loopback port with a tiny model written here (or DIGITS_PAGE_MODEL, a trained model or run directory: then the
 * drawn digit must also be what the page shows); chromium loads index.html?selftest=7, whose test hook draws a 7
 * with synthetic pointer events on the canvas, waits for the server's answer and leaves the predicted digit and the
 * canvas PNG in the DOM (--dump-dom). The test posts that same canvas PNG to /predict itself and requires the page
 * to show the same digit and the same 28x28 image; then it takes a screenshot (build/tests/serve_page.png) and stops
 * the server with SIGTERM (exit 0). chromium is given 60 s at most per run (timeout(1)); every other wait is a
 * bounded poll. Skipped (CTest "Not Run", which .ci/run does not accept) when chromium is not installed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_check.h"
#include "testutil.h"
#include "kaggle/photo.h"
#include "kaggle/serve.h"
#include "nn/model.h"
#include "nn/net.h"
#include "nn/spec.h"
#include "core/dg_file.h"

#define TMP DIGITS_TEST_TMP "/serve_page_"
#define SHOT DIGITS_TEST_TMP "/../serve_page.png"
#define CHROMIUM                                                                                                   \
    "timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "            \
    "--user-data-dir=" TMP "profile --virtual-time-budget=15000 "

static pid_t g_pid; /* the server, killed by the teardown if a check failed */

static pid_t start_server(const char *model, int *port) {
    int out[2];
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        execl(DIGITS_BIN_DIR "/digits-serve", "digits-serve", "--port", "0", "--threads", "2", model, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char line[256] = {0};
    size_t len = 0;
    struct pollfd p = {out[0], POLLIN, 0};
    while (len < sizeof line - 1 && !strchr(line, '\n') && poll(&p, 1, 30000) == 1) {
        ssize_t k = read(out[0], line + len, sizeof line - 1 - len);
        if (k <= 0) break;
        len += (size_t)k;
    }
    close(out[0]);
    const char *at = strstr(line, "127.0.0.1:");
    if (!at || sscanf(at, "127.0.0.1:%d/", port) != 1) {
        kill(pid, SIGKILL);
        fail_msg("digits-serve did not say where it listens: \"%s\"", line);
    }
    return pid;
}

/* POST body to the server; the JSON answer's body (malloc'd) and *status. */
static char *post_png(int port, const void *body, size_t n, int *status) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char head[256];
    int k = snprintf(head, sizeof head,
                     "POST /predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: image/png\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     n);
    assert_int_equal(send(fd, head, (size_t)k, MSG_NOSIGNAL), k);
    assert_int_equal(send(fd, body, n, MSG_NOSIGNAL), (ssize_t)n);
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap + 1);
    struct pollfd p = {fd, POLLIN, 0};
    while (len < cap && poll(&p, 1, 10000) == 1) {
        ssize_t r = recv(fd, b + len, cap - len, 0);
        if (r <= 0) break;
        len += (size_t)r;
    }
    b[len] = '\0';
    close(fd);
    assert_int_equal(sscanf(b, "HTTP/1.1 %d", status), 1);
    char *e = strstr(b, "\r\n\r\n");
    assert_non_null(e);
    memmove(b, e + 4, strlen(e + 4) + 1);
    return b;
}

/* The text between `after` and the next `until` in s, malloc'd (NULL if absent). */
static char *between(const char *s, const char *after, char until) {
    const char *a = strstr(s, after);
    if (!a) return NULL;
    a += strlen(after);
    const char *e = strchr(a, until);
    if (!e) return NULL;
    return strndup(a, (size_t)(e - a));
}

static void write_tiny_model(const char *path) {
    static const char *spec_text = "name tiny\ninput 1x28x28\nconv filters=4 size=3\nrelu\nmaxpool size=2\n"
                                   "dense units=16\nrelu\ndense units=10\n";
    dg_err err = {{0}};
    nn_spec spec;
    nn_net *net = NULL;
    if (nn_spec_parse(&spec, spec_text, "<test>", &err) != 0 || nn_net_create(&net, &spec, 4, &err) != 0)
        fail_msg("%s", err.msg);
    nn_net_init(net, 5);
    assert_int_equal(nn_model_save(path, net, NULL, &err), 0);
    nn_net_free(net);
    nn_spec_free(&spec);
}

static void test_draw_in_chromium(void **state) {
    (void)state;
    if (system("command -v chromium >/dev/null 2>&1") != 0) {
        tu_skip("chromium is not installed (apt-get install chromium; pipeline/run installs it)");
        return;
    }
    const char *real = getenv("DIGITS_PAGE_MODEL");
    const char *model = real && *real ? real : TMP "tiny.safetensors";
    if (model != real) write_tiny_model(model);
    int port = 0;
    pid_t pid = g_pid = start_server(model, &port);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, CHROMIUM "--dump-dom 'http://127.0.0.1:%d/?selftest=7' >" TMP "dom.html 2>/dev/null",
             port);
    int rc = system(cmd);
    char *dom = NULL;
    size_t n = 0;
    dg_err err = {{0}};
    if (rc != 0 || dg_read_file(TMP "dom.html", &dom, &n, &err) != 0) fail_msg("chromium --dump-dom failed (%d)", rc);
    char *body = between(dom, "<body", '>'), *digit = between(dom, "data-digit=\"", '"'),
         *canvas = between(dom, "id=\"selftest-png\">data:image/png;base64,", '<'), *seen = between(dom, "id=\"seen\"", '>');
    print_message("page: <body%s>\n", body ? body : "(none)");
    assert_non_null(body);
    assert_has(body, "data-selftest=\"done\"");
    assert_non_null(digit);
    assert_non_null(canvas);
    assert_non_null(seen);
    /* the canvas the page drew, posted here: the page must show the server's answer for it */
    void *png;
    size_t png_n;
    assert_int_equal(kg_base64_decode(&png, &png_n, canvas, strlen(canvas)), 0);
    int status = 0;
    char *answer = post_png(port, png, png_n, &status);
    assert_int_equal(status, 200);
    cJSON *j = cJSON_Parse(answer);
    assert_non_null(j);
    char want[4];
    snprintf(want, sizeof want, "%d", cJSON_GetObjectItem(j, "digit")->valueint);
    assert_string_equal(digit, want);
    assert_has(seen, cJSON_GetObjectItem(j, "image")->valuestring);
    if (model == real) assert_string_equal(digit, "7"); /* a trained model reads the drawn 7 */
    cJSON_Delete(j);
    /* a screenshot of the page after drawing, for people */
    unlink(SHOT);
    snprintf(cmd, sizeof cmd, CHROMIUM "--window-size=900,460 --screenshot=" SHOT " 'http://127.0.0.1:%d/?selftest=7' "
             ">/dev/null 2>&1", port);
    rc = system(cmd);
    char *shot = NULL;
    size_t shot_n = 0;
    kg_photo_grey g = {0};
    int shot_ok = rc == 0 && dg_read_file(SHOT, &shot, &shot_n, &err) == 0 &&
                  kg_photo_decode(&g, shot, shot_n, &err) == KG_PHOTO_OK;
    print_message("screenshot: %s (%dx%d)\n", SHOT, g.w, g.h);
    /* stop: SIGTERM ends the server cleanly */
    kill(pid, SIGTERM);
    int ws = 0;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    g_pid = 0;
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
    assert_true(shot_ok);
    assert_int_equal(g.w, 900);
    assert_int_equal(g.h, 460);
    kg_photo_grey_free(&g);
    free(shot), free(answer), free(png), free(body), free(digit), free(canvas), free(seen), free(dom);
}

static int stop_server(void **state) {
    (void)state;
    if (g_pid > 0) {
        kill(g_pid, SIGKILL);
        waitpid(g_pid, NULL, 0);
        g_pid = 0;
    }
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test_teardown(test_draw_in_chromium, stop_server)};
    return tu_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
