/* Renders each digits-report page (a run, an ensemble, an augmentation policy; built by the stage binary) in
 * Debian's headless Chromium and checks what the browser made of it: no console message at all (the pages have
 * no scripts, so any message is the engine's complaint, e.g. a malformed SVG attribute), every SVG curve with one
 * point per epoch as the browser parsed its points, and every gallery image decoded as a 28x28 PNG, counted
 * against numbers computed here from the run's files. Screenshots go to build/tests/tmp/report/screens/ (run.png, ensemble.png,
 * augment.png).
 * The check page loads the three reports in iframes and reads their DOM (--allow-file-access-from-files). */
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
#include "report_fixture.h"
#include "testutil.h"
#include "render_util.h"

#define SCREENS RF_TMP "/screens"
#define CHROMIUM "timeout 180 chromium --headless --disable-gpu --no-sandbox --hide-scrollbars --mute-audio " \
                 "--no-first-run --user-data-dir=" RF_TMP "/chromium-profile"

static const char kCheck[] =
    "<!DOCTYPE html><html><body>\n"
    "<iframe id=\"run\" src=\"run.html\"></iframe><iframe id=\"ensemble\" src=\"ensemble.html\"></iframe>"
    "<iframe id=\"augment\" src=\"augment.html\"></iframe>\n<script>\n"
    "const res = {};\n"
    "function look(k) {\n"
    "  const d = document.getElementById(k).contentDocument;\n"
    "  const imgs = [...d.querySelectorAll('img.digit')];\n"
    "  res[k] = {polylines: [...d.querySelectorAll('polyline.series')].map(p => p.points.numberOfItems),\n"
    "            svgs: d.querySelectorAll('svg').length,\n"
    "            imgs: imgs.length,\n"
    "            decoded: imgs.filter(i => i.complete && i.naturalWidth === 28 && i.naturalHeight === 28).length};\n"
    "  if (Object.keys(res).length === 3) document.body.setAttribute('data-result', JSON.stringify(res));\n"
    "}\n"
    "for (const k of ['run', 'ensemble', 'augment']) {\n"
    "  const f = document.getElementById(k);\n"
    "  if (f.contentDocument && f.contentDocument.readyState === 'complete' && f.contentDocument.body &&\n"
    "      f.contentDocument.body.childElementCount) look(k); else f.addEventListener('load', () => look(k));\n"
    "}\n</script></body></html>\n";

static void test_render_all_kinds(void **state) {
    (void)state;
    rf_setup();
    dg_err err = {{0}};
    assert_int_equal(dg_mkdirs(SCREENS, &err), 0);
    rr_sh("command -v chromium >/dev/null || { echo 'chromium is not installed (apt-get install chromium)'; exit 1; }");
    /* the pages, by the stage program */
    rr_sh(DIGITS_BIN_DIR "/digits-report --run " RF_RUN_A " -o " SCREENS "/run.html");
    rr_sh(DIGITS_BIN_DIR "/digits-report --ensemble " RF_MANIFEST " -o " SCREENS "/ensemble.html");
    rr_sh(DIGITS_BIN_DIR "/digits-report --augment kaggle --data " RF_DATA " --count 5 --copies 4 -o " SCREENS
                         "/augment.html");
    assert_int_equal(dg_write_file_atomic(SCREENS "/check.html", kCheck, strlen(kCheck), &err), 0);

    /* one browser run: the DOM after load, and the console on stderr */
    cJSON *res = rr_browser_result(CHROMIUM, SCREENS, "check.html", "dom.html", "console.txt");

    const cJSON *run = rr_get(res, "run"), *ens = rr_get(res, "ensemble"), *aug = rr_get(res, "augment");
    const cJSON *pl = rr_get(run, "polylines");
    assert_int_equal(cJSON_GetArraySize(pl), 6);
    for (int i = 0; i < 6; i++) assert_int_equal(cJSON_GetArrayItem(pl, i)->valueint, RF_EPOCHS);
    int run_misses = (int)rf_run_misses(RF_RUN_A), ens_misses = (int)rf_ensemble_misses();
    assert_true(run_misses > 0);
    assert_int_equal(rr_get(run, "imgs")->valueint, run_misses);
    assert_int_equal(rr_get(run, "decoded")->valueint, run_misses);
    assert_int_equal(rr_get(run, "svgs")->valueint, 6); /* 4 curves, confusion matrix, per-class bars */
    assert_true(ens_misses > 0);
    assert_int_equal(rr_get(ens, "imgs")->valueint, ens_misses);
    assert_int_equal(rr_get(ens, "decoded")->valueint, ens_misses);
    assert_int_equal(rr_get(ens, "svgs")->valueint, 2);
    assert_int_equal(rr_get(aug, "imgs")->valueint, 5 * (1 + 4));
    assert_int_equal(rr_get(aug, "decoded")->valueint, 5 * (1 + 4));
    cJSON_Delete(res);

    /* screenshots (CI keeps them as artifacts) */
    static const char *const kinds[3] = {"run", "ensemble", "augment"};
    static const int heights[3] = {2300, 1300, 1100};
    for (int k = 0; k < 3; k++) {
        char png[512], html[512];
        snprintf(png, sizeof png, SCREENS "/%s.png", kinds[k]);
        snprintf(html, sizeof html, SCREENS "/%s.html", kinds[k]);
        rr_screenshot(CHROMIUM, heights[k], png, html);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_render_all_kinds)};
    return tu_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
