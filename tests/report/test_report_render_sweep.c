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
#include "render_util.h"

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

static void test_render_sweep(void **state) {
    (void)state;
    dg_err err = {{0}};
    assert_int_equal(dg_mkdirs(SCREENS, &err), 0);
    rr_sh("command -v chromium >/dev/null || { echo 'chromium is not installed (apt-get install chromium)'; exit 1; }");
    sf_expect x;
    sf_make(SWEEP, 30, 5, 11, &x);
    rr_sh(DIGITS_BIN_DIR "/digits-report --sweep " SWEEP " -o " SCREENS "/sweep.html");
    assert_int_equal(dg_write_file_atomic(SCREENS "/check-sweep.html", kCheck, strlen(kCheck), &err), 0);
    cJSON *res = rr_browser_result(CHROMIUM, SCREENS, "check-sweep.html", "dom-sweep.html", "console-sweep.txt");

    /* every trial's curve, one point per epoch */
    assert_int_equal(rr_get(res, "n_series")->valueint, x.trials_with_epochs);
    const cJSON *series = rr_get(res, "series");
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
    assert_int_equal(rr_get(res, "ends")->valueint, x.stopped_with_epochs);
    assert_int_equal(rr_get(res, "rungs")->valueint, 3);
    /* a point per configuration with a result in each of the 4 parameter charts and the mean +- SD chart; a
     * parallel-coordinates line through 4 parameters and the metric for each */
    assert_int_equal(rr_get(res, "points")->valueint, 5 * x.with_result);
    assert_int_equal(rr_get(res, "pc")->valueint, x.with_result);
    const cJSON *pcp;
    cJSON_ArrayForEach(pcp, rr_get(res, "pc_points")) assert_int_equal(pcp->valueint, 5);
    assert_int_equal(rr_get(res, "rows")->valueint, 1 + x.configs);
    assert_int_equal(rr_get(res, "svgs")->valueint, 1 + 4 + 1 + 1);
    cJSON_Delete(res);

    rr_screenshot(CHROMIUM, 2600, SCREENS "/sweep.png", SCREENS "/sweep.html");
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_render_sweep)};
    return tu_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
