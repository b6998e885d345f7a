/* Tests for experiments/report (digits-report through its library run): the options, what each page holds
 * (SVG curves with one point per epoch, one gallery image per misclassified digit up to --gallery, counted from
 * the run's files here, the command and model summary), and bad input: a run without metrics, a run without
 * result.json, a file that is not a manifest, an output that cannot be written: a message naming the problem,
 * DG_EXIT_FAIL, and no HTML (nor a temporary) left behind, an older page untouched.
 * Rendering in a browser is tests/report/test_report_render.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dg_file.h"
#include "experiments/report/report_cli.h"
#include "report_fixture.h"
#include "testutil.h"

static int parse(rp_report_cli_opts *o, dg_err *err, const char *line) {
    char *argv[64];
    int argc = tu_argv(argv, 64, "digits-report", line);
    memset(err, 0, sizeof *err);
    return rp_report_cli_parse(argc, argv, o, err);
}

/* Parse and run; the page's text (malloc'd) into *html if it was written. */
static int report(const char *line, const char *out, char **html, dg_err *err) {
    rp_report_cli_opts o;
    int rc = parse(&o, err, line);
    if (rc != 0) return rc;
    o.out = NULL;
    unlink(out);
    rc = rp_report_cli_run(&o, err);
    if (html) {
        *html = NULL;
        size_t n;
        if (dg_path_exists(out) && dg_read_file(out, html, &n, err) != 0) fail_msg("%s", err->msg);
    }
    return rc;
}

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* Points of every <polyline class="series">: counts[i] for the i-th; returns how many polylines. */
static int polyline_points(const char *html, int *counts, int max) {
    int n = 0;
    for (const char *p = strstr(html, "<polyline class=\"series\""); p && n < max;
         p = strstr(p + 1, "<polyline class=\"series\"")) {
        const char *a = strstr(p, "points=\"") + 8, *e = strchr(a, '"');
        int k = a == e ? 0 : 1;
        for (const char *q = a; q < e; q++) k += *q == ' ';
        counts[n++] = k;
    }
    return n;
}

/* No file in dir whose name starts with prefix. */
static void assert_no_file(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) fail_msg("%s/%s left behind", dir, e->d_name);
    closedir(d);
}

/* ---- the gallery's images, decoded independently (base64 here, PNG by libpng's simplified API) ---- */

static int b64val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* The 28x28 grey image of a "data:image/png;base64,..." URI starting at uri (up to the closing quote). */
static void decode_digit(const char *uri, uint8_t img[DG_PIXELS]) {
    const char *p = uri + strlen("data:image/png;base64,"), *e = strchr(p, '"');
    assert_non_null(e);
    size_t n = (size_t)(e - p);
    assert_int_equal(n % 4, 0);
    uint8_t *bin = malloc(n);
    size_t len = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) v[k] = p[i + k] == '=' ? 0 : b64val(p[i + k]);
        for (int k = 0; k < 4; k++) assert_true(v[k] >= 0);
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        bin[len++] = (uint8_t)(w >> 16);
        if (p[i + 2] != '=') bin[len++] = (uint8_t)(w >> 8);
        if (p[i + 3] != '=') bin[len++] = (uint8_t)w;
    }
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&im, bin, len)) fail_msg("PNG: %s", im.message);
    assert_int_equal(im.width, 28);
    assert_int_equal(im.height, 28);
    im.format = PNG_FORMAT_GRAY;
    if (!png_image_finish_read(&im, NULL, img, 28, NULL)) fail_msg("PNG: %s", im.message);
    free(bin);
}

/* Every gallery image of a run page shows its dataset row (dark ink on white: 255 - pixel), captioned with the
 * row's true label and the run's prediction for it. Returns how many were checked. */
static int check_run_gallery(const char *html, const char *run_dir) {
    dg_err err = {{0}};
    dg_dataset ds;
    assert_int_equal(dg_dataset_open(&ds, RF_DATA, &err), 0);
    char p[512];
    dg_npy_file pred, ids;
    snprintf(p, sizeof p, "%s/val_pred.npy", run_dir);
    assert_int_equal(dg_npy_open(&pred, p, 4, &err), 0);
    snprintf(p, sizeof p, "%s/val_ids.npy", run_dir);
    assert_int_equal(dg_npy_open(&ids, p, 8, &err), 0);
    int checked = 0;
    for (const char *f = strstr(html, "<figure class=\"digit\">"); f; f = strstr(f + 1, "<figure class=\"digit\">")) {
        uint8_t img[DG_PIXELS];
        decode_digit(strstr(f, "data:image/png;base64,"), img);
        const char *cap = strstr(f, "<figcaption>");
        int truth, guess;
        size_t row;
        if (sscanf(cap, "<figcaption>%d &rarr; <b class=\"bad\">%d</b> (%*d%%)<br>row %zu", &truth, &guess, &row) != 3)
            fail_msg("caption: %.80s", cap);
        assert_true(row < ds.n);
        const uint8_t *src = dg_dataset_image(&ds, row);
        for (int i = 0; i < DG_PIXELS; i++) assert_int_equal(img[i], 255 - src[i]);
        assert_int_equal(truth, dg_dataset_label(&ds, row));
        size_t k = 0;
        while (k < ids.h.shape[0] && ((const int64_t *)ids.data)[k] != (int64_t)row) k++;
        assert_true(k < ids.h.shape[0]);
        assert_int_equal(guess, rf_argmax((const float *)pred.data + k * 10));
        assert_int_not_equal(guess, truth);
        checked++;
    }
    dg_npy_close(&pred);
    dg_npy_close(&ids);
    dg_dataset_close(&ds);
    return checked;
}

static int setup(void **state) {
    (void)state;
    rf_setup();
    return 0;
}

static void test_parse(void **state) {
    (void)state;
    rp_report_cli_opts o;
    dg_err err;
    assert_int_equal(parse(&o, &err, "--run r"), 0);
    assert_int_equal(o.kind, RP_RUN);
    assert_string_equal(o.source, "r");
    assert_null(o.output);
    assert_null(o.data);
    assert_int_equal(o.gallery, 60);
    assert_int_equal(o.count, 16);
    assert_int_equal(o.copies, 5);
    assert_true(o.seed == 1);
    assert_int_equal(o.open, 0);
    assert_ptr_equal(o.out, stdout);
    assert_int_equal(parse(&o, &err, "--augment kaggle --data d -o x.html --count 3 --copies 2 --seed 9 --open"), 0);
    assert_int_equal(o.kind, RP_AUGMENT);
    assert_int_equal(o.count, 3);
    assert_int_equal(o.copies, 2);
    assert_true(o.seed == 9);
    assert_int_equal(o.open, 1);
    assert_string_equal(o.output, "x.html");
    static const struct {
        const char *line, *msg;
    } bad[] = {
        {"", "is required"},
        {"--run a --ensemble b", "give one of"},
        {"--augment kaggle", "--augment needs --data"},
        {"--run a --gallery -1", "--gallery -1: expected"},
        {"--run a --count 0", "--count 0"},
        {"--run a extra", "unexpected argument 'extra'"},
        {"--run a --bogus", "unrecognized option '--bogus'"},
        {"--run", "requires an argument"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse(&o, &err, bad[i].line), DG_EXIT_USAGE);
        if (!strstr(err.msg, bad[i].msg)) fail_msg("'%s': message '%s' lacks '%s'", bad[i].line, err.msg, bad[i].msg);
    }
    assert_int_equal(parse(&o, &err, "--run r --live 30"), 0);
    assert_int_equal(o.live, 30);
    assert_int_equal(parse(&o, &err, "--ensemble m --live 30"), DG_EXIT_USAGE);
    assert_non_null(strstr(err.msg, "--live goes with --run"));
    assert_int_equal(parse(&o, &err, "--run r --live 0"), DG_EXIT_USAGE);
    assert_int_equal(parse(&o, &err, "--help --bogus-after-help"), 0);
    assert_int_equal(o.help, 1);
}

static void test_run_page(void **state) {
    (void)state;
    dg_err err;
    char *html;
    const char *out = RF_TMP "/run_a.html";
    assert_int_equal(report("--run " RF_RUN_A " -o " RF_TMP "/run_a.html", out, &html, &err), DG_EXIT_OK);
    assert_non_null(html);
    int pts[16];
    assert_int_equal(polyline_points(html, pts, 16), 6); /* loss x2, accuracy x2, lr, images/s */
    for (int i = 0; i < 6; i++) assert_int_equal(pts[i], RF_EPOCHS);
    size_t misses = rf_run_misses(RF_RUN_A);
    assert_true(misses > 0 && misses < 60); /* the moved labels: some, fewer than the gallery's limit */
    assert_int_equal(count(html, "<img class=\"digit\""), (int)misses);
    assert_int_equal(check_run_gallery(html, RF_RUN_A), (int)misses);
    assert_int_equal(count(html, "class=\"cell\""), 100);
    assert_int_equal(count(html, "class=\"bar\""), 10);
    assert_non_null(strstr(html, "digits-train --data synth.npy --model tiny.spec")); /* invocation.json */
    assert_non_null(strstr(html, "trainable parameters"));                              /* nn_net_summary */
    assert_non_null(strstr(html, "data:image/png;base64,iVBORw0KGgo"));                 /* PNG signature */
    /* nothing from the network: no external sources, links, stylesheets or scripts */
    static const char *const ext[] = {"src=\"http", "href=", "url(", "<link", "<script", "@import"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (strstr(html, ext[i])) fail_msg("the page holds '%s'", ext[i]);
    free(html);
    /* --gallery limits the images; the default output is DIR/report.html */
    assert_int_equal(report("--run " RF_RUN_A " --gallery 3", RF_RUN_A "/report.html", &html, &err), DG_EXIT_OK);
    assert_int_equal(count(html, "<img class=\"digit\""), 3);
    free(html);
}

static void test_open_prints_url(void **state) {
    (void)state;
    char *argv[] = {"digits-report", "--run", RF_RUN_A, "-o", RF_TMP "/open.html", "--open", NULL};
    rp_report_cli_opts o;
    dg_err err = {{0}};
    assert_int_equal(rp_report_cli_parse(6, argv, &o, &err), 0);
    char buf[2048] = {0};
    o.out = fmemopen(buf, sizeof buf - 1, "w");
    assert_int_equal(rp_report_cli_run(&o, &err), DG_EXIT_OK);
    fclose(o.out);
    assert_string_equal(buf, "file://" RF_TMP "/open.html\n");
}

static void test_ensemble_page(void **state) {
    (void)state;
    dg_err err;
    char *html;
    const char *out = RF_TMP "/ens.html";
    if (report("--ensemble " RF_MANIFEST " -o " RF_TMP "/ens.html", out, &html, &err) != DG_EXIT_OK)
        fail_msg("%s", err.msg);
    size_t misses = rf_ensemble_misses();
    assert_true(misses > 0 && misses < 60);
    assert_int_equal(count(html, "<img class=\"digit\""), (int)misses);
    assert_int_equal(count(html, "class=\"cell\""), 4);  /* 2 x 2 agreement */
    assert_int_equal(count(html, "class=\"bar\""), 2);   /* member accuracies */
    assert_int_equal(count(html, "<tr><td class=\"num\">"), 2);
    assert_non_null(strstr(html, "shared-holdout"));
    free(html);
}

/* A manifest whose estimate read other validation probabilities (digits-ensemble --val-pred, as the pipeline does
 * with TTA): the page reads the same files. Here they are right on every row, so the gallery is empty. */
static void test_ensemble_page_val_pred(void **state) {
    (void)state;
    dg_err err = {{0}};
    dg_dataset ds;
    assert_int_equal(dg_dataset_open(&ds, RF_DATA, &err), 0);
    const char *runs[2] = {RF_RUN_A, RF_RUN_B};
    for (int r = 0; r < 2; r++) {
        char p[512];
        dg_npy_file ids;
        snprintf(p, sizeof p, "%s/val_ids.npy", runs[r]);
        assert_int_equal(dg_npy_open(&ids, p, 8, &err), 0);
        size_t n = ids.h.shape[0];
        float *right = calloc(n * 10, sizeof *right);
        assert_non_null(right);
        const int64_t *id = ids.data;
        for (size_t i = 0; i < n; i++) right[i * 10 + dg_dataset_label(&ds, (size_t)id[i])] = 1;
        dg_npy_close(&ids);
        size_t shape[2] = {n, 10};
        snprintf(p, sizeof p, "%s/val_pred_right.npy", runs[r]);
        assert_int_equal(dg_npy_save(p, "<f4", shape, 2, right, 4, &err), 0);
        free(right);
    }
    dg_dataset_close(&ds);
    char *argv[] = {"digits-ensemble", "--train", RF_DATA, "-o", RF_TMP "/right.csv", "--quiet", "--val-pred",
                    "val_pred_right.npy", RF_RUN_A "=" RF_TMP "/a_test.npy", RF_RUN_B "=" RF_TMP "/b_test.npy", NULL};
    kg_ensemble_cli_opts eo;
    if (kg_ensemble_cli_parse(10, argv, &eo, &err) != 0 || kg_ensemble_cli_run(&eo, &err) != 0)
        fail_msg("digits-ensemble: %s", err.msg);
    char *html;
    if (report("--ensemble " RF_TMP "/right.manifest.json -o " RF_TMP "/right.html", RF_TMP "/right.html", &html,
               &err) != DG_EXIT_OK)
        fail_msg("%s", err.msg);
    assert_true(rf_ensemble_misses() > 0); /* val_pred.npy's vote does miss some */
    assert_int_equal(count(html, "<img class=\"digit\""), 0);
    free(html);
}

/* K-fold members hold out disjoint rows: the page says so, with no agreement matrix and no gallery. */
static void test_ensemble_disjoint_folds(void **state) {
    (void)state;
    dg_err err = {{0}};
    const char *dirs[2] = {RF_TMP "/fold1", RF_TMP "/fold2"};
    for (int f = 0; f < 2; f++) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dirs[f]);
        assert_int_equal(system(cmd), 0);
        nn_train_opts o;
        nn_train_opts_defaults(&o);
        o.data = RF_DATA;
        o.model = DIGITS_FIXTURES "/spec/tiny.spec";
        o.run_dir = dirs[f];
        o.folds = 2;
        o.fold = f + 1;
        o.epochs = 2;
        o.log = NULL;
        if (nn_train_run(&o, &err) != 0) fail_msg("%s", err.msg);
    }
    char *argv[] = {"digits-ensemble", "--train", RF_DATA, "-o", RF_TMP "/folds.csv", "--quiet",
                    RF_TMP "/fold1=" RF_TMP "/a_test.npy", RF_TMP "/fold2=" RF_TMP "/b_test.npy", NULL};
    kg_ensemble_cli_opts eo;
    if (kg_ensemble_cli_parse(8, argv, &eo, &err) != 0 || kg_ensemble_cli_run(&eo, &err) != 0)
        fail_msg("digits-ensemble: %s", err.msg);
    char *html;
    if (report("--ensemble " RF_TMP "/folds.manifest.json -o " RF_TMP "/folds.html", RF_TMP "/folds.html", &html,
               &err) != DG_EXIT_OK)
        fail_msg("%s", err.msg);
    assert_non_null(strstr(html, "out-of-fold"));
    assert_non_null(strstr(html, "No row is held out by every member"));
    assert_int_equal(count(html, "class=\"cell\""), 0);
    assert_int_equal(count(html, "<img"), 0);
    assert_int_equal(count(html, "class=\"bar\""), 2);
    free(html);
}

static void test_augment_page(void **state) {
    (void)state;
    dg_err err;
    char *html;
    const char *out = RF_TMP "/aug.html";
    if (report("--augment kaggle --data " RF_DATA " --count 4 --copies 3 -o " RF_TMP "/aug.html", out, &html, &err) !=
        DG_EXIT_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(count(html, "<img class=\"digit\""), 4 * (1 + 3));
    assert_int_equal(count(html, "class=\"pair\""), 4);
    assert_int_equal(count(html, "rotate "), 4 * 3 + 1); /* one caption per copy, and the policy text */
    free(html);
}

/* A copy of run A without some files. */
static void broken_run(const char *dir, const char *drop) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s' && rm -f '%s/%s' '%s/report.html'", dir, RF_RUN_A, dir,
             dir, drop, dir);
    assert_int_equal(system(cmd), 0);
}

static void test_bad_input(void **state) {
    (void)state;
    dg_err err;
    char *html;
    /* no metrics */
    broken_run(RF_TMP "/no_metrics", "metrics.jsonl");
    assert_int_equal(report("--run " RF_TMP "/no_metrics", RF_TMP "/no_metrics/report.html", &html, &err),
                     DG_EXIT_FAIL);
    assert_null(html);
    assert_non_null(strstr(err.msg, "no_metrics/metrics.jsonl: missing"));
    assert_no_file(RF_TMP "/no_metrics", "report.html");
    /* empty metrics */
    broken_run(RF_TMP "/empty_metrics", "metrics.jsonl");
    assert_int_equal(dg_write_file_atomic(RF_TMP "/empty_metrics/metrics.jsonl", "", 0, &err), 0);
    assert_int_equal(report("--run " RF_TMP "/empty_metrics", RF_TMP "/empty_metrics/report.html", &html, &err),
                     DG_EXIT_FAIL);
    assert_non_null(strstr(err.msg, "empty"));
    assert_no_file(RF_TMP "/empty_metrics", "report.html");
    /* half-written: no result.json yet */
    broken_run(RF_TMP "/unfinished", "result.json");
    assert_int_equal(report("--run " RF_TMP "/unfinished", RF_TMP "/unfinished/report.html", &html, &err),
                     DG_EXIT_FAIL);
    assert_non_null(strstr(err.msg, "not a finished run (no result.json yet)"));
    assert_no_file(RF_TMP "/unfinished", "report.html");
    /* ... which --live accepts: the curves so far and the model from spec.txt, reloading itself */
    char *live;
    assert_int_equal(report("--run " RF_TMP "/unfinished --live 30", RF_TMP "/unfinished/report.html", &live, &err),
                     DG_EXIT_OK);
    assert_non_null(strstr(live, "<meta http-equiv=\"refresh\" content=\"30\">"));
    assert_non_null(strstr(live, "running: 7 epochs so far"));
    assert_non_null(strstr(live, "trainable parameters"));
    int pts[16];
    assert_int_equal(polyline_points(live, pts, 16), 6);
    for (int i = 0; i < 6; i++) assert_int_equal(pts[i], RF_EPOCHS);
    assert_int_equal(count(live, "<img"), 0);
    free(live);
    /* a finished run's page does not reload */
    assert_int_equal(report("--run " RF_RUN_A " --live 30 -o " RF_TMP "/done.html", RF_TMP "/done.html", &live, &err),
                     DG_EXIT_OK);
    assert_null(strstr(live, "http-equiv"));
    free(live);
    /* not a manifest */
    assert_int_equal(report("--ensemble " RF_RUN_A "/result.json -o " RF_TMP "/bad_ens.html", RF_TMP "/bad_ens.html",
                            &html, &err),
                     DG_EXIT_FAIL);
    assert_non_null(strstr(err.msg, "not a digits-ensemble manifest"));
    assert_no_file(RF_TMP, "bad_ens.html");
    /* an output that cannot be written: its directory is a file */
    assert_int_equal(report("--run " RF_RUN_A " -o " RF_DATA "/report.html", RF_DATA "/report.html", NULL, &err),
                     DG_EXIT_FAIL);
    assert_non_null(strstr(err.msg, RF_DATA "/report.html"));
    /* a failed report leaves an older page as it was */
    const char *keep = RF_TMP "/keep.html";
    assert_int_equal(dg_write_file_atomic(keep, "old", 3, &err), 0);
    rp_report_cli_opts o;
    assert_int_equal(parse(&o, &err, "--run " RF_TMP "/unfinished -o " RF_TMP "/keep.html"), 0);
    assert_int_equal(rp_report_cli_run(&o, &err), DG_EXIT_FAIL);
    size_t n;
    char *old;
    assert_int_equal(dg_read_file(keep, &old, &n, &err), 0);
    assert_string_equal(old, "old");
    free(old);
    assert_no_file(RF_TMP, "keep.html.tmp");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),         cmocka_unit_test(test_run_page),
        cmocka_unit_test(test_open_prints_url), cmocka_unit_test(test_ensemble_page),
        cmocka_unit_test(test_ensemble_page_val_pred), cmocka_unit_test(test_ensemble_disjoint_folds), cmocka_unit_test(test_augment_page),  cmocka_unit_test(test_bad_input),
    };
    return tu_exit(cmocka_run_group_tests(tests, setup, NULL));
}
