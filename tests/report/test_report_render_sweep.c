/* Renders digits-report's sweep page (a synthetic ASHA sweep with a failed and a running configuration,
 * tests/report/sweep_fixture.h; built by the stage binary) in Debian's headless Chromium, as test_report_render.c
 * does the other kinds: no console message at all, every trial's curve with one point per epoch the database holds
 * as the browser parsed its points (checked by name), the scatter points, parallel-coordinates lines and charts
 * counted against the fixture's numbers. The screenshot goes to build/tests/tmp/report/screens/sweep.png. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/dg_file.h"
#include "sweep_fixture.h"
#include "testutil.h"

#define TMP DIGITS_TEST_TMP "/report"
#define SCREENS TMP "/screens"
#define SWEEP TMP "/sweep"
#define CHROMIUM "timeout 180 chromium --headless --disable-gpu --no-sandbox --hide-scrollbars --mute-audio " \
                 "--no-first-run --user-data-dir=" TMP "/chromium-profile-sweep"

static const char kCheck[] =
    "<!DOCTYPE html><html><body>\n"
    "<iframe id=\"sweep\" src=\"sweep.html\"></iframe>\n<script>\n"
    "function look() {\n"
    "  const d = document.getElementById('sweep').contentDocument;\n"
    "  const series = {};\n"
    "  for (const p of d.querySelectorAll('polyline.series')) series[p.getAttribute('data-series')] =\n"
    "      p.points.numberOfItems;\n"
    "  const res = {series: series, n_series: d.querySelectorAll('polyline.series').length,\n"
    "               pc: d.querySelectorAll('polyline.pc-line').length,\n"
    "               pc_points: [...d.querySelectorAll('polyline.pc-line')].map(p => p.points.numberOfItems),\n"
    "               points: d.querySelectorAll('circle.point').length,\n"
    "               ends: d.querySelectorAll('circle.end').length,\n"
    "               rungs: d.querySelectorAll('line.xmark').length,\n"
    "               rows: d.querySelectorAll('table.leaderboard tr').length,\n"
    "               svgs: d.querySelectorAll('svg').length};\n"
    "  document.body.setAttribute('data-result', JSON.stringify(res));\n"
    "}\n"
    "const f = document.getElementById('sweep');\n"
    "if (f.contentDocument && f.contentDocument.readyState === 'complete' && f.contentDocument.body &&\n"
    "    f.contentDocument.body.childElementCount) look(); else f.addEventListener('load', look);\n"
    "</script></body></html>\n";

static void sh(const char *cmd) {
    int st = system(cmd);
    if (st != 0) fail_msg("'%s' exited %d", cmd, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static char *slurp(const char *path) {
    char *d = NULL;
    size_t n;
    dg_err err = {{0}};
    if (dg_read_file(path, &d, &n, &err) != 0) fail_msg("%s", err.msg);
    char *copy = strdup(d); /* (a fresh pointer: gcc 12 takes d for a local and warns of dangling uses) */
    free(d);
    return copy;
}

static const cJSON *get(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v) fail_msg("no '%s' in the browser's result", k);
    return v;
}

static void test_render_sweep(void **state) {
    (void)state;
    dg_err err = {{0}};
    assert_int_equal(dg_mkdirs(SCREENS, &err), 0);
    sh("command -v chromium >/dev/null || { echo 'chromium is not installed (apt-get install chromium)'; exit 1; }");
    sf_expect x;
    sf_make(SWEEP, 30, 5, 11, &x);
    sh(DIGITS_BIN_DIR "/digits-report --sweep " SWEEP " -o " SCREENS "/sweep.html");
    assert_int_equal(dg_write_file_atomic(SCREENS "/check-sweep.html", kCheck, strlen(kCheck), &err), 0);
    sh(CHROMIUM " --allow-file-access-from-files --enable-logging=stderr --v=0 --virtual-time-budget=10000 "
                "--dump-dom file://" SCREENS "/check-sweep.html > " SCREENS "/dom-sweep.html 2> " SCREENS
                "/console-sweep.txt");
    char *log = slurp(SCREENS "/console-sweep.txt");
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, "CONSOLE")) fail_msg("browser console: %s", line);
    free(log);
    char *dom = slurp(SCREENS "/dom-sweep.html");
    char *a = strstr(dom, "data-result=\"");
    if (!a) fail_msg("the check page set no result (did the iframe load?); see %s/dom-sweep.html", SCREENS);
    a += 13;
    char *e = strchr(a, '"');
    assert_non_null(e);
    *e = 0;
    char *w = a;
    for (char *r = a; *r;) {
        if (strncmp(r, "&quot;", 6) == 0) *w++ = '"', r += 6;
        else *w++ = *r++;
    }
    *w = 0;
    cJSON *res = cJSON_Parse(a);
    if (!res) fail_msg("result is not JSON: %s", a);
    free(dom);

    /* every trial's curve, one point per epoch */
    assert_int_equal(get(res, "n_series")->valueint, x.trials_with_epochs);
    const cJSON *series = get(res, "series");
    assert_int_equal(cJSON_GetArraySize(series), x.trials_with_epochs);
    for (int t = 0; t < x.trials; t++) {
        char name[32];
        snprintf(name, sizeof name, "c%04d r%d", t / 2, t % 2);
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(series, name);
        if (x.trial_epochs[t] == 0) assert_null(n);
        else if (!n || n->valueint != x.trial_epochs[t])
            fail_msg("curve %s: %d points in the browser, %d epochs in the database", name, n ? n->valueint : -1,
                     x.trial_epochs[t]);
    }
    assert_int_equal(get(res, "ends")->valueint, x.stopped_with_epochs);
    assert_int_equal(get(res, "rungs")->valueint, 3);
    /* a point per configuration with a result in each of the 4 parameter charts and the mean +- SD chart; a
     * parallel-coordinates line through 4 parameters and the metric for each */
    assert_int_equal(get(res, "points")->valueint, 5 * x.with_result);
    assert_int_equal(get(res, "pc")->valueint, x.with_result);
    const cJSON *pcp;
    cJSON_ArrayForEach(pcp, get(res, "pc_points")) assert_int_equal(pcp->valueint, 5);
    assert_int_equal(get(res, "rows")->valueint, 1 + x.configs);
    assert_int_equal(get(res, "svgs")->valueint, 1 + 4 + 1 + 1);
    cJSON_Delete(res);

    unlink(SCREENS "/sweep.png");
    sh(CHROMIUM " --window-size=1280,2600 --screenshot=" SCREENS "/sweep.png file://" SCREENS
                "/sweep.html 2>/dev/null");
    char *p;
    size_t n;
    assert_int_equal(dg_read_file(SCREENS "/sweep.png", &p, &n, &err), 0);
    assert_true(n > 8);
    assert_memory_equal(p, "\x89PNG\r\n\x1a\n", 8);
    free(p);
    printf("screenshot: %s\n", SCREENS "/sweep.png");
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_render_sweep)};
    return tu_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
