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

static void sh(const char *cmd) {
    int st = system(cmd);
    if (st != 0) fail_msg("'%s' exited %d", cmd, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* A text file. */
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

static void test_render_all_kinds(void **state) {
    (void)state;
    rf_setup();
    dg_err err = {{0}};
    assert_int_equal(dg_mkdirs(SCREENS, &err), 0);
    sh("command -v chromium >/dev/null || { echo 'chromium is not installed (apt-get install chromium)'; exit 1; }");
    /* the pages, by the stage program */
    sh(DIGITS_BIN_DIR "/digits-report --run " RF_RUN_A " -o " SCREENS "/run.html");
    sh(DIGITS_BIN_DIR "/digits-report --ensemble " RF_MANIFEST " -o " SCREENS "/ensemble.html");
    sh(DIGITS_BIN_DIR "/digits-report --augment kaggle --data " RF_DATA " --count 5 --copies 4 -o " SCREENS
                      "/augment.html");
    assert_int_equal(dg_write_file_atomic(SCREENS "/check.html", kCheck, strlen(kCheck), &err), 0);

    /* one browser run: the DOM after load, and the console on stderr */
    sh(CHROMIUM " --allow-file-access-from-files --enable-logging=stderr --v=0 --virtual-time-budget=10000 "
                "--dump-dom file://" SCREENS "/check.html > " SCREENS "/dom.html 2> " SCREENS "/console.txt");
    char *log = slurp(SCREENS "/console.txt");
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, "CONSOLE")) fail_msg("browser console: %s", line);
    free(log);
    char *dom = slurp(SCREENS "/dom.html");
    char *a = strstr(dom, "data-result=\"");
    if (!a) fail_msg("the check page set no result (did the iframes load?); see %s/dom.html", SCREENS);
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
    free(dom);

    const cJSON *run = get(res, "run"), *ens = get(res, "ensemble"), *aug = get(res, "augment");
    const cJSON *pl = get(run, "polylines");
    assert_int_equal(cJSON_GetArraySize(pl), 6);
    for (int i = 0; i < 6; i++) assert_int_equal(cJSON_GetArrayItem(pl, i)->valueint, RF_EPOCHS);
    int run_misses = (int)rf_run_misses(RF_RUN_A), ens_misses = (int)rf_ensemble_misses();
    assert_true(run_misses > 0);
    assert_int_equal(get(run, "imgs")->valueint, run_misses);
    assert_int_equal(get(run, "decoded")->valueint, run_misses);
    assert_int_equal(get(run, "svgs")->valueint, 6); /* 4 curves, confusion matrix, per-class bars */
    assert_true(ens_misses > 0);
    assert_int_equal(get(ens, "imgs")->valueint, ens_misses);
    assert_int_equal(get(ens, "decoded")->valueint, ens_misses);
    assert_int_equal(get(ens, "svgs")->valueint, 2);
    assert_int_equal(get(aug, "imgs")->valueint, 5 * (1 + 4));
    assert_int_equal(get(aug, "decoded")->valueint, 5 * (1 + 4));
    cJSON_Delete(res);

    /* screenshots (CI keeps them as artifacts) */
    static const char *const kinds[3] = {"run", "ensemble", "augment"};
    static const int heights[3] = {2300, 1300, 1100};
    for (int k = 0; k < 3; k++) {
        char cmd[2048], png[512];
        snprintf(png, sizeof png, SCREENS "/%s.png", kinds[k]);
        unlink(png);
        snprintf(cmd, sizeof cmd, CHROMIUM " --window-size=1280,%d --screenshot=%s file://" SCREENS "/%s.html 2>/dev/null",
                 heights[k], png, kinds[k]);
        sh(cmd);
        char *p;
        size_t n;
        assert_int_equal(dg_read_file(png, &p, &n, &err), 0);
        assert_true(n > 8);
        assert_memory_equal(p, "\x89PNG\r\n\x1a\n", 8);
        free(p);
        printf("screenshot: %s\n", png);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_render_all_kinds)};
    return tu_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
