/* Tests for kaggle/ensemble_cli: digits-ensemble's options (defaults, each bad value and --weights with --method
 * fit a usage error naming the option, no member), its usage text, and runs on tiny run directories written here:
 * three members sharing a hold-out, each wrong on a different validation row, so that the soft vote is right
 * everywhere. Checked: the submission, --probs-out against the mean computed here, the manifest (path, weights,
 * estimate, command), the summary lines, hard vote (given weights, and a case where it differs from the soft vote), fitted weights, --estimate-only to its FILE *, disjoint folds
 * (out-of-fold estimate; nothing to fit on), and inputs that must fail with nothing written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_check.h"
#include "kaggle/ensemble_cli.h"
#include "core/dg_cli.h"
#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "core/dg_npy.h"

#define TMP DIGITS_TEST_TMP "/ensemble_cli"
#define NT 40    /* train rows, label r % 10 */
#define NV 10    /* validation rows per member */
#define NTEST 6  /* test rows */

#define PARSE(o, err, ...)                                                                                         \
    kg_ensemble_cli_parse(ARGC("digits-ensemble", __VA_ARGS__), ARGV("digits-ensemble", __VA_ARGS__), (o), (err))

static void test_parse(void **state) {
    (void)state;
    kg_ensemble_cli_opts o;
    dg_err err = {{0}};
    assert_int_equal(PARSE(&o, &err, "t.npy"), DG_EXIT_OK);
    assert_int_equal(o.method, KG_ENS_SOFT);
    assert_null(o.weights);
    assert_string_equal(o.train, "data/train.npy");
    assert_null(o.sample);
    assert_int_equal(o.rows, 0);
    assert_string_equal(o.output, "submission.csv");
    assert_null(o.manifest);
    assert_null(o.probs_out);
    assert_int_equal(o.estimate_only, 0);
    assert_int_equal(o.n_members, 1);
    assert_string_equal(o.members[0], "t.npy");
    assert_int_equal(o.argc, 2);
    assert_string_equal(o.argv[0], "digits-ensemble");
    assert_true(o.log == stderr);
    assert_true(o.out == stdout);
    assert_int_equal(o.help, 0);
    assert_int_equal(PARSE(&o, &err, "a", "-m", "hard", "-w", "1,2", "--train", "tr.npy", "--sample", "s.csv", "--rows",
                           "28000", "-o", "o.csv", "--manifest", "m.json", "--probs-out", "p.npy", "--estimate-only",
                           "-q", "b=c.npy"),
                     DG_EXIT_OK);
    assert_int_equal(o.method, KG_ENS_HARD);
    assert_string_equal(o.weights, "1,2");
    assert_string_equal(o.train, "tr.npy");
    assert_string_equal(o.sample, "s.csv");
    assert_int_equal(o.rows, 28000);
    assert_string_equal(o.output, "o.csv");
    assert_string_equal(o.manifest, "m.json");
    assert_string_equal(o.probs_out, "p.npy");
    assert_int_equal(o.estimate_only, 1);
    assert_null(o.log);
    assert_int_equal(o.n_members, 2);
    assert_string_equal(o.members[0], "a");
    assert_string_equal(o.members[1], "b=c.npy");
    assert_int_equal(PARSE(&o, &err, "--method", "weighted", "a"), DG_EXIT_OK);
    assert_int_equal(o.method, KG_ENS_FIT);
    assert_string_equal(kg_ens_method_name(o.method), "fit");
    assert_int_equal(PARSE(&o, &err, "-h"), DG_EXIT_OK);
    assert_int_equal(o.help, 1);
}

static void test_parse_errors(void **state) {
    (void)state;
    kg_ensemble_cli_opts o;
    dg_err err;
    assert_int_equal(PARSE(&o, &err, "-m", "avg", "x.npy"), DG_EXIT_USAGE);
    assert_has(err.msg, "--method avg: expected soft, hard or fit");
    assert_int_equal(PARSE(&o, &err, "--rows", "0", "x.npy"), DG_EXIT_USAGE);
    assert_has(err.msg, "--rows 0: expected a positive integer");
    assert_int_equal(PARSE(&o, &err, "--rows", "12x", "x.npy"), DG_EXIT_USAGE);
    assert_has(err.msg, "--rows 12x");
    assert_int_equal(PARSE(&o, &err, "--rows", "-3", "x.npy"), DG_EXIT_USAGE);
    assert_has(err.msg, "--rows -3");
    assert_int_equal(PARSE(&o, &err, "-o", "s.csv"), DG_EXIT_USAGE);
    assert_has(err.msg, "no MEMBER given");
    assert_int_equal(PARSE(&o, &err, "-w", "1,2", "-m", "fit", "a", "b"), DG_EXIT_USAGE);
    assert_has(err.msg, "--weights and --method fit exclude each other");
    assert_int_equal(PARSE(&o, &err, "-m", "fit", "--weights", "1,2", "a", "b"), DG_EXIT_USAGE);
    assert_has(err.msg, "--weights and --method fit exclude each other");
    /* --weights is checked against the member count before anything is loaded */
    assert_int_equal(PARSE(&o, &err, "-w", "1,2,3", "a", "b"), DG_EXIT_USAGE);
    assert_has(err.msg, "--weights 1,2,3: more weights than the 2 members");
    assert_int_equal(PARSE(&o, &err, "-w", "1", "a", "b"), DG_EXIT_USAGE);
    assert_has(err.msg, "--weights 1: 1 weights for 2 members");
    assert_int_equal(PARSE(&o, &err, "-w", "1,-2", "a", "b"), DG_EXIT_USAGE);
    assert_has(err.msg, "--weights 1,-2: \"-2\" is not a non-negative number");
    assert_int_equal(PARSE(&o, &err, "-w", "1,x", "a", "b"), DG_EXIT_USAGE);
    assert_has(err.msg, "--weights 1,x: \"x\" is not a non-negative number");
    assert_int_equal(PARSE(&o, &err, "-w", "1,,2", "a", "b"), DG_EXIT_USAGE);
    assert_has(err.msg, "--weights 1,,2: weight 2 is empty");
    assert_int_equal(PARSE(&o, &err, "-w", "1,2,", "a", "b"), DG_EXIT_USAGE);
    assert_has(err.msg, "--weights 1,2,: weight 3 is empty");
    assert_int_equal(PARSE(&o, &err, "-w", "", "a", "b"), DG_EXIT_USAGE);
    assert_has(err.msg, "--weights : weight 1 is empty");
    assert_int_equal(PARSE(&o, &err, "-w", "1,0.00000000000000000000000000000000000000000000000000000000000000001", "a",
                           "b"),
                     DG_EXIT_USAGE);
    assert_has(err.msg, "is not a non-negative number");
    assert_int_equal(PARSE(&o, &err, "-w", "0,0", "a", "b"), DG_EXIT_USAGE);
    assert_has(err.msg, "--weights 0,0: the weights sum to 0");
    assert_int_equal(PARSE(&o, &err, "-w", "0,2.5", "a", "b"), DG_EXIT_OK);
    assert_int_equal(PARSE(&o, &err, "--m", "x", "a"), DG_EXIT_USAGE); /* a prefix of two long options */
    assert_has(err.msg, "'--m'");
    assert_int_equal(PARSE(&o, &err, "a", "--train"), DG_EXIT_USAGE);
    assert_has(err.msg, "option '--train' requires an argument");
}

static void test_usage(void **state) {
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    kg_ensemble_cli_usage(f);
    char *text = cli_check_drain(f);
    assert_has(text, "usage: digits-ensemble [options] MEMBER...");
    assert_has(text, "never on test data) (default soft)");
    assert_has(text, "validation ids index (default data/train.npy)");
    assert_has(text, "submission (default submission.csv)");
    free(text);
}

/* Row r of a probability table: hi on class a, lo on class b, the rest spread evenly. */
static void row(float *r, int a, float hi, int b, float lo) {
    float rest = (1.0f - hi - lo) / 8.0f;
    for (int k = 0; k < 10; k++) r[k] = rest;
    r[a] = hi;
    r[b] = lo;
}

static void save_probs(const char *path, const float *p, size_t n) {
    dg_err err;
    size_t shape[2] = {n, 10};
    assert_int_equal(dg_npy_save(path, "<f4", shape, 2, p, 4, &err), 0);
}

static float test_probs[3][NTEST * 10];

/* TMP/train.npy, TMP/sample.csv (NTEST rows), and run directories TMP/run0..2 holding out ids first + step * k
 * (k < NV): member j is wrong on validation row j; on test row i every member says i, except member j on row j. */
static void write_runs(const char *prefix, int64_t first, int64_t step) {
    dg_err err;
    dg_dataset_writer w;
    uint8_t img[DG_PIXELS] = {0};
    assert_int_equal(dg_dataset_writer_open(&w, TMP "/train.npy", 1, &err), 0);
    for (int r = 0; r < NT; r++) assert_int_equal(dg_dataset_writer_add(&w, img, r % 10, &err), 0);
    assert_int_equal(dg_dataset_writer_commit(&w, &err), 0);
    const char *sample = "ImageId,Label\n1,0\n2,0\n3,0\n4,0\n5,0\n6,0\n";
    assert_int_equal(dg_write_file_atomic(TMP "/sample.csv", sample, strlen(sample), &err), 0);
    for (int j = 0; j < 3; j++) {
        char dir[512], path[600];
        snprintf(dir, sizeof dir, "%s%d", prefix, j);
        assert_int_equal(dg_mkdirs(dir, &err), 0);
        int64_t ids[NV];
        float vp[NV * 10];
        for (int k = 0; k < NV; k++) {
            ids[k] = first + step * k + (step == 1 ? NV * j : 0);
            int y = (int)(ids[k] % 10);
            if (k == j) row(vp + k * 10, (y + 1) % 10, 0.6f, y, 0.3f);
            else row(vp + k * 10, y, 0.7f, (y + 1) % 10, 0.2f);
        }
        for (int i = 0; i < NTEST; i++) row(test_probs[j] + i * 10, i == j ? 9 : i, 0.8f, i == j ? i : 9, 0.1f);
        snprintf(path, sizeof path, "%s/val_pred.npy", dir);
        save_probs(path, vp, NV);
        size_t ishape[1] = {NV};
        snprintf(path, sizeof path, "%s/val_ids.npy", dir);
        assert_int_equal(dg_npy_save(path, "<i8", ishape, 1, ids, 8, &err), 0);
        snprintf(path, sizeof path, "%s/test_probs.npy", dir);
        save_probs(path, test_probs[j], NTEST);
        snprintf(path, sizeof path, "%s/result.json", dir);
        char json[256];
        int len = snprintf(json, sizeof json, "{\"val_acc\":0.9,\"seed\":%d,\"model\":\"tiny\"}", j + 1);
        assert_int_equal(dg_write_file_atomic(path, json, (size_t)len, &err), 0);
    }
}

static char *read_text(const char *path) {
    dg_err err;
    char *s;
    size_t n;
    if (dg_read_file(path, &s, &n, &err) != 0) {
        print_error("%s\n", err.msg);
        fail();
    }
    return s;
}

static void test_run_shared(void **state) {
    (void)state;
    kg_ensemble_cli_opts o;
    dg_err err = {{0}};
    assert_int_equal(system("rm -rf " TMP " && mkdir -p " TMP), 0);
    write_runs(TMP "/run", 1, 3);
    /* soft vote, default manifest path, --probs-out */
    assert_int_equal(PARSE(&o, &err, "--train", TMP "/train.npy", "--sample", TMP "/sample.csv", "-o", TMP "/sub.csv",
                           "--probs-out", TMP "/p.npy", TMP "/run0", TMP "/run1=" TMP "/run1/test_probs.npy",
                           TMP "/run2"),
                     DG_EXIT_OK);
    o.log = tmpfile();
    assert_non_null(o.log);
    assert_int_equal(kg_ensemble_cli_run(&o, &err), DG_EXIT_OK);
    char *log = cli_check_drain(o.log);
    char *sub = read_text(TMP "/sub.csv");
    assert_string_equal(sub, "ImageId,Label\n1,0\n2,1\n3,2\n4,3\n5,4\n6,5\n");
    free(sub);
    dg_npy_file f;
    assert_int_equal(dg_npy_open(&f, TMP "/p.npy", 4, &err), 0);
    assert_int_equal(f.h.shape[0], NTEST);
    for (int i = 0; i < NTEST * 10; i++)
        assert_float_equal(((const float *)f.data)[i],
                           (test_probs[0][i] + test_probs[1][i] + test_probs[2][i]) / 3.0f, 1e-6);
    dg_npy_close(&f);
    char *man = read_text(TMP "/sub.manifest.json");
    assert_has(man, "\"command\":\t\"digits-ensemble --train " TMP "/train.npy --sample " TMP "/sample.csv -o ");
    assert_has(man, "\"method\":\t\"soft\"");
    assert_has(man, "\"weights_from\":\t\"equal\"");
    assert_has(man, "\"rows\":\t6");
    assert_has(man, "\"label_counts\":\t[1, 1, 1, 1, 1, 1, 0, 0, 0, 0]");
    assert_has(man, "\"mode\":\t\"shared-holdout\"");
    assert_has(man, "\"ensemble_acc\":\t1");
    assert_has(man, "\"mean_member_acc\":\t0.9");
    assert_has(man, "\"ensemble_loss\":\t0.42006");
    assert_has(man, "\"mean_member_loss\":\t0.44140");
    assert_has(man, "\"model\":\t\"tiny\"");
    assert_has(man, "\"test_agreement\":\t0.83");
    free(man);
    assert_has(log, "digits-ensemble: 3 members, soft vote -> " TMP "/sub.csv (6 rows), manifest " TMP
                    "/sub.manifest.json\n");
    assert_has(log, "  member 2: weight 0.3333  val acc 0.9000 on 10 rows  " TMP "/run1\n");
    /* log-loss: the mix gives the label (0.7+0.7+0.3)/3 on the 3 rows where a member errs, 0.7 on 7; each member 0.7
     * on 9 rows, 0.3 on 1 */
    assert_has(log, "  estimate (shared hold-out, 10 rows): ensemble 1.0000 (0 errors) vs mean member 0.9000: gain "
                    "+0.1000; log-loss 0.42007 vs mean member 0.44140\n");
    free(log);

    /* hard vote with given weights, manifest where asked: member 3 alone outvotes the others on row 3 */
    assert_int_equal(PARSE(&o, &err, "-q", "-m", "hard", "-w", "1,1,2.5", "--train", TMP "/train.npy", "--rows", "6",
                           "-o", TMP "/hard.csv", "--manifest", TMP "/hard.json", TMP "/run0", TMP "/run1", TMP "/run2"),
                     DG_EXIT_OK);
    assert_int_equal(kg_ensemble_cli_run(&o, &err), DG_EXIT_OK);
    sub = read_text(TMP "/hard.csv");
    assert_string_equal(sub, "ImageId,Label\n1,0\n2,1\n3,9\n4,3\n5,4\n6,5\n");
    free(sub);
    man = read_text(TMP "/hard.json");
    assert_has(man, "\"method\":\t\"hard\"");
    assert_has(man, "\"weights_from\":\t\"given\"");
    assert_has(man, "\"weight\":\t0.5");
    free(man);
    assert_false(dg_path_exists(TMP "/hard.manifest.json"));

    /* hard and soft vote part ways: two members lean to 1, one is sure of 2 */
    float lean[2 * 10], sure[2 * 10];
    for (int i = 0; i < 2; i++) {
        row(lean + i * 10, 1, 0.45f, 2, 0.40f);
        row(sure + i * 10, 2, 0.95f, 1, 0.0f);
    }
    save_probs(TMP "/lean.npy", lean, 2);
    save_probs(TMP "/sure.npy", sure, 2);
    assert_int_equal(PARSE(&o, &err, "-q", "-m", "hard", "-o", TMP "/split.csv", TMP "/lean.npy", TMP "/lean.npy",
                           TMP "/sure.npy"),
                     DG_EXIT_OK);
    assert_int_equal(kg_ensemble_cli_run(&o, &err), DG_EXIT_OK);
    sub = read_text(TMP "/split.csv");
    assert_string_equal(sub, "ImageId,Label\n1,1\n2,1\n");
    free(sub);
    assert_int_equal(PARSE(&o, &err, "-q", "-o", TMP "/split.csv", TMP "/lean.npy", TMP "/lean.npy", TMP "/sure.npy"),
                     DG_EXIT_OK);
    assert_int_equal(kg_ensemble_cli_run(&o, &err), DG_EXIT_OK);
    sub = read_text(TMP "/split.csv");
    assert_string_equal(sub, "ImageId,Label\n1,2\n2,2\n");
    free(sub);
    man = read_text(TMP "/split.manifest.json");
    assert_has(man, "\"mode\":\t\"none\"");
    assert_has(man, "\"run\":\tnull");
    free(man);

    /* fitted weights: run2's validation predictions are made worse (wrong on 6 of its 10 rows), so the fit gives it
     * less weight than the others */
    float vp[NV * 10];
    for (int k = 0; k < NV; k++) {
        int y = (int)((1 + 3 * k) % 10);
        if (k < 6) row(vp + k * 10, (y + 1) % 10, 0.6f, y, 0.3f);
        else row(vp + k * 10, y, 0.7f, (y + 1) % 10, 0.2f);
    }
    save_probs(TMP "/run2/val_pred.npy", vp, NV);
    assert_int_equal(PARSE(&o, &err, "-m", "fit", "--train", TMP "/train.npy", "-o", TMP "/fit.csv", TMP "/run0",
                           TMP "/run1", TMP "/run2"),
                     DG_EXIT_OK);
    o.log = tmpfile();
    assert_int_equal(kg_ensemble_cli_run(&o, &err), DG_EXIT_OK);
    log = cli_check_drain(o.log);
    assert_has(log, "3 members, soft vote with fitted weights -> ");
    assert_has(log, "  fitted weights, 2-fold cross-fitted accuracy: ");
    free(log);
    man = read_text(TMP "/fit.manifest.json");
    assert_has(man, "\"weights_from\":\t\"fitted on shared validation rows\"");
    assert_has(man, "\"fit_crossval_acc\":");
    cJSON *doc = cJSON_Parse(man), *members = cJSON_GetObjectItemCaseSensitive(doc, "members");
    assert_int_equal(cJSON_GetArraySize(members), 3);
    double w[3], sum = 0;
    for (int j = 0; j < 3; j++) {
        w[j] = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(members, j), "weight"));
        sum += w[j];
    }
    assert_float_equal(sum, 1.0, 1e-9);
    assert_float_equal(w[0], w[1], 1e-6); /* run0 and run1 are alike */
    assert_true(w[2] < 0.2);
    cJSON_Delete(doc);
    free(man);

    /* --estimate-only: the JSON to o.out, no test probabilities needed, nothing written */
    assert_int_equal(PARSE(&o, &err, "-q", "--estimate-only", "--train", TMP "/train.npy", "-o", TMP "/none.csv",
                           TMP "/run0", TMP "/run1", TMP "/run2"),
                     DG_EXIT_OK);
    o.out = tmpfile();
    assert_int_equal(kg_ensemble_cli_run(&o, &err), DG_EXIT_OK);
    char *json = cli_check_drain(o.out);
    assert_has(json, "\"format\":\t\"digits-ensemble\"");
    assert_has(json, "\"mode\":\t\"shared-holdout\"");
    assert_has(json, "\"test_probs\":\tnull");
    assert_null(strstr(json, "\"submission\""));
    free(json);
    assert_false(dg_path_exists(TMP "/none.csv"));
    assert_false(dg_path_exists(TMP "/none.manifest.json"));

    /* --val-pred: the estimate reads that file in each run directory (here wrong on every row) and says which */
    for (int j = 0; j < 3; j++) {
        char path[600];
        int64_t *ids;
        size_t ni;
        snprintf(path, sizeof path, TMP "/run%d/val_ids.npy", j);
        assert_int_equal(dg_npy_load_i64(path, &ids, &ni, &err), 0);
        assert_int_equal(ni, NV);
        float wrong[NV * 10];
        for (int k = 0; k < NV; k++) {
            int y = (int)(ids[k] % 10); /* train.npy's label of row r is r % 10 */
            row(wrong + k * 10, (y + 1) % 10, 0.9f, y, 0.05f);
        }
        free(ids);
        snprintf(path, sizeof path, TMP "/run%d/val_pred_tta5.npy", j);
        save_probs(path, wrong, NV);
    }
    assert_int_equal(PARSE(&o, &err, "-q", "--estimate-only", "--val-pred", "val_pred_tta5.npy", "--train",
                           TMP "/train.npy", TMP "/run0", TMP "/run1", TMP "/run2"),
                     DG_EXIT_OK);
    o.out = tmpfile();
    assert_int_equal(kg_ensemble_cli_run(&o, &err), DG_EXIT_OK);
    json = cli_check_drain(o.out);
    assert_has(json, "\"val_pred\":\t\"val_pred_tta5.npy\"");
    assert_has(json, "\"ensemble_acc\":\t0,");
    free(json);
    assert_int_equal(PARSE(&o, &err, "-q", "--estimate-only", "--val-pred", "nope.npy", "--train", TMP "/train.npy",
                           TMP "/run0"),
                     DG_EXIT_OK);
    o.out = tmpfile();
    assert_int_equal(kg_ensemble_cli_run(&o, &err), DG_EXIT_FAIL);
    assert_has(err.msg, "run0/nope.npy");
    fclose(o.out);
    assert_int_equal(PARSE(&o, &err, "--val-pred", "sub/val.npy", TMP "/run0"), DG_EXIT_USAGE);
    assert_has(err.msg, "--val-pred sub/val.npy: expected a file name inside each run directory");
}

static void test_run_folds(void **state) {
    (void)state;
    kg_ensemble_cli_opts o;
    dg_err err = {{0}};
    assert_int_equal(system("rm -rf " TMP " && mkdir -p " TMP), 0);
    write_runs(TMP "/fold", 0, 1); /* member j holds out rows 10j..10j+9 */
    assert_int_equal(PARSE(&o, &err, "--train", TMP "/train.npy", "-o", TMP "/sub.csv", TMP "/fold0", TMP "/fold1",
                           TMP "/fold2"),
                     DG_EXIT_OK);
    o.log = tmpfile();
    assert_int_equal(kg_ensemble_cli_run(&o, &err), DG_EXIT_OK);
    char *log = cli_check_drain(o.log);
    assert_has(log, "  estimate (out-of-fold, 30 rows): ensemble 0.9000 (3 errors) vs mean member 0.9000: gain +0.0000; "
                    "log-loss 0.44140 vs mean member 0.44140\n");
    free(log);
    assert_int_equal(PARSE(&o, &err, "-q", "-m", "fit", "--train", TMP "/train.npy", "-o", TMP "/fit.csv",
                           TMP "/fold0", TMP "/fold1", TMP "/fold2"),
                     DG_EXIT_OK);
    assert_int_equal(kg_ensemble_cli_run(&o, &err), DG_EXIT_FAIL);
    assert_has(err.msg, "--method fit: the members share no validation rows");
    assert_false(dg_path_exists(TMP "/fit.csv"));
}

/* Inputs that fail at run time: each names what is wrong, and nothing is written. */
static void test_run_errors(void **state) {
    (void)state;
    kg_ensemble_cli_opts o;
    dg_err err = {{0}};
    assert_int_equal(system("rm -rf " TMP " && mkdir -p " TMP), 0);
    write_runs(TMP "/run", 1, 3);
    float p[7 * 10];
    for (int i = 0; i < 7; i++) row(p + i * 10, i % 10, 0.8f, (i + 1) % 10, 0.1f);
    save_probs(TMP "/six.npy", p, 6);
    save_probs(TMP "/seven.npy", p, 7);
    static const struct {
        const char *a, *b, *m1, *m2, *want;
    } cases[] = {
        {"-w", "1,2", TMP "/six.npy", TMP "/six.npy", NULL},
        {"-m", "fit", TMP "/six.npy", TMP "/six.npy", "--method fit needs validation predictions"},
        {"-m", "soft", TMP "/six.npy", TMP "/seven.npy", "probabilities of different lengths"},
        {"-m", "soft", TMP "/run0", TMP "/six.npy", "1 of 2 members are run directories"},
        {"--rows", "5", TMP "/six.npy", TMP "/six.npy", "the submission needs 5 (--rows)"},
        {"--sample", TMP "/seven.npy", TMP "/six.npy", TMP "/six.npy", "seven.npy"},
        {"--train", TMP "/six.npy", TMP "/run0", TMP "/run1", "six.npy"},
        {"-m", "soft", TMP "/run0", TMP "/nothing", "member 2"},
        {"-m", "soft", TMP "/nothing=" TMP "/six.npy", TMP "/six.npy", "nothing: not a run directory"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(PARSE(&o, &err, "-q", (char *)cases[i].a, (char *)cases[i].b, "-o", TMP "/bad.csv",
                               "--probs-out", TMP "/bad.npy", (char *)cases[i].m1, (char *)cases[i].m2),
                         DG_EXIT_OK);
        int rc = kg_ensemble_cli_run(&o, &err);
        if (!cases[i].want) { /* the control case: the same command line with good values succeeds */
            assert_int_equal(rc, DG_EXIT_OK);
            assert_int_equal(system("rm -f " TMP "/bad.csv " TMP "/bad.npy " TMP "/bad.manifest.json"), 0);
            continue;
        }
        assert_int_equal(rc, DG_EXIT_FAIL);
        assert_has(err.msg, cases[i].want);
        assert_false(dg_path_exists(TMP "/bad.csv"));
        assert_false(dg_path_exists(TMP "/bad.npy"));
        assert_false(dg_path_exists(TMP "/bad.manifest.json"));
    }
    /* --rows against --sample */
    assert_int_equal(PARSE(&o, &err, "-q", "--rows", "7", "--sample", TMP "/sample.csv", "-o", TMP "/bad.csv",
                           TMP "/six.npy"),
                     DG_EXIT_OK);
    assert_int_equal(kg_ensemble_cli_run(&o, &err), DG_EXIT_FAIL);
    assert_has(err.msg, "--rows 7 but " TMP "/sample.csv has 6 rows");
    /* a run with no member (opts built by hand) is a usage error */
    o.n_members = 0;
    assert_int_equal(kg_ensemble_cli_run(&o, &err), DG_EXIT_USAGE);
    assert_has(err.msg, "no MEMBER given");
    assert_false(dg_path_exists(TMP "/bad.csv"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),         cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_usage),
        cmocka_unit_test(test_run_shared),    cmocka_unit_test(test_run_folds),    cmocka_unit_test(test_run_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
