/* Helpers shared by the headless-Chromium render tests (tests/report/test_report_render*.c): a shell command that
 * must succeed, a key the browser's result must hold, one browser run that dumps a check page's DOM (no console
 * message allowed; the JSON the page left in body's data-result attribute, parsed), and a screenshot that must be
 * a PNG. Include after cmocka.h and testutil.h. */
#ifndef TESTS_REPORT_RENDER_UTIL_H
#define TESTS_REPORT_RENDER_UTIL_H

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/dg_file.h"

static inline void rr_sh(const char *cmd) {
    int st = system(cmd);
    if (st != 0) fail_msg("'%s' exited %d", cmd, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* A text file, malloc'd. */
static inline char *rr_slurp(const char *path) {
    char *d = NULL;
    size_t n;
    dg_err err = {{0}};
    if (dg_read_file(path, &d, &n, &err) != 0) fail_msg("%s", err.msg);
    char *copy = strdup(d); /* (a fresh pointer: gcc 12 takes d for a local and warns of dangling uses) */
    free(d);
    return copy;
}

static inline const cJSON *rr_get(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v) fail_msg("no '%s' in the browser's result", k);
    return v;
}

/* One browser run (chromium: the command and its profile options) over the check page dir/check: its DOM after
 * load to dir/dom, the console on stderr to dir/console. Fails on any console message; returns the page's
 * data-result attribute (its &quot; undone) parsed, for the caller to cJSON_Delete. */
static inline cJSON *rr_browser_result(const char *chromium, const char *dir, const char *check, const char *dom,
                                       const char *console) {
    char cmd[2048], path[1024];
    snprintf(cmd, sizeof cmd,
             "%s --allow-file-access-from-files --enable-logging=stderr --v=0 --virtual-time-budget=10000 "
             "--dump-dom file://%s/%s > %s/%s 2> %s/%s",
             chromium, dir, check, dir, dom, dir, console);
    rr_sh(cmd);
    snprintf(path, sizeof path, "%s/%s", dir, console);
    char *log = rr_slurp(path);
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, "CONSOLE")) fail_msg("browser console: %s", line);
    free(log);
    snprintf(path, sizeof path, "%s/%s", dir, dom);
    char *text = rr_slurp(path);
    char *a = strstr(text, "data-result=\"");
    if (!a) fail_msg("the check page set no result (did its iframes load?); see %s", path);
    a += 13;
    char *e = strchr(a, '"');
    assert_non_null(e);
    *e = 0;
    /* undo the attribute's &quot; */
    char *w = a;
    for (char *r = a; *r;) {
        if (strncmp(r, "&quot;", 6) == 0) *w++ = '"', r += 6;
        else *w++ = *r++;
    }
    *w = 0;
    cJSON *res = cJSON_Parse(a);
    if (!res) fail_msg("result is not JSON: %s", a);
    free(text);
    return res;
}

/* A screenshot of the page html, 1280 x height, to png (removed first); fails unless it is a PNG. */
static inline void rr_screenshot(const char *chromium, int height, const char *png, const char *html) {
    char cmd[2048];
    unlink(png);
    snprintf(cmd, sizeof cmd, "%s --window-size=1280,%d --screenshot=%s file://%s 2>/dev/null", chromium, height, png,
             html);
    rr_sh(cmd);
    char *p;
    size_t n;
    dg_err err = {{0}};
    assert_int_equal(dg_read_file(png, &p, &n, &err), 0);
    assert_true(n > 8);
    assert_memory_equal(p, "\x89PNG\r\n\x1a\n", 8);
    free(p);
    printf("screenshot: %s\n", png);
}

#endif
