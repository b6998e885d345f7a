/* Tests for kaggle/ensemble: votes on hand-made probabilities with known answers, probability checks, weight
 * fitting (validation arrays only; picks the better member), and the validation estimates (shared hold-out and
 * disjoint K folds). */
#include <sys/wait.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kaggle/ensemble.h"
#include "kaggle/submission.h"
#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "core/dg_npy.h"
#include "testutil.h"

/* Accuracies (ratios of counts) and mixture weights (normalized each EM step) are doubles from a few operations on
 * values up to 1: rel and abs TU_REL_F64 (1e-12), a few thousand ulps; the abs part for a gain of 0. */
#define assert_ratio(x, want) tu_assert_close((x), (want), TU_REL_F64, TU_REL_F64)

/* Row with probability hi on class a, lo on class b, the rest spread evenly. */
static void row(float *r, int a, float hi, int b, float lo) {
    float rest = (1 - hi - lo) / 8;
    for (int k = 0; k < 10; k++) r[k] = rest;
    r[a] = hi;
    r[b] = lo;
}

static void test_soft_vote_known(void **state) {
    (void)state;
    /* 2 rows, 3 members. Row 0: members say 1 (0.6), 1 (0.5), 2 (0.9) -> soft: class 2 has (0.3+0.3+0.9)/3 = 0.5
     * vs class 1 (0.6+0.5+0.05)/3 = 0.383; hard vote says 1 (two votes). */
    float a[20], b[20], c[20];
    row(a, 1, 0.6f, 2, 0.3f);
    row(b, 1, 0.5f, 2, 0.3f);
    row(c, 2, 0.9f, 1, 0.05f);
    row(a + 10, 4, 0.9f, 5, 0.05f);
    row(b + 10, 4, 0.9f, 5, 0.05f);
    row(c + 10, 4, 0.9f, 5, 0.05f);
    const float *m[3] = {a, b, c};
    float out[20];
    kg_soft_vote(out, m, NULL, 3, 2);
    assert_float_equal(out[2], 0.5f, 1e-6);
    assert_float_equal(out[1], (0.6f + 0.5f + 0.05f) / 3, 1e-6);
    assert_float_equal(out[14], 0.9f, 1e-6);
    uint8_t lab[2];
    kg_argmax(lab, out, 2);
    assert_int_equal(lab[0], 2);
    assert_int_equal(lab[1], 4);
    kg_hard_vote(lab, m, NULL, 3, 2);
    assert_int_equal(lab[0], 1);
    assert_int_equal(lab[1], 4);
    /* weights: member c counted 0 -> soft vote of a and b -> class 1 */
    double w[3] = {1, 1, 0};
    kg_soft_vote(out, m, w, 3, 2);
    assert_float_equal(out[1], 0.55f, 1e-6);
    kg_argmax(lab, out, 2);
    assert_int_equal(lab[0], 1);
    /* weighted hard vote: c weighs more than a and b together */
    double w2[3] = {1, 1, 3};
    kg_hard_vote(lab, m, w2, 3, 2);
    assert_int_equal(lab[0], 2);
}

static void test_hard_vote_tie_by_summed_probability(void **state) {
    (void)state;
    /* 2 members disagree: 3 (0.55) vs 8 (0.95). One vote each: tie, broken by summed probability -> 8. */
    float a[10], b[10];
    row(a, 3, 0.55f, 8, 0.40f);
    row(b, 8, 0.95f, 3, 0.01f);
    const float *m[2] = {a, b};
    uint8_t lab;
    kg_hard_vote(&lab, m, NULL, 2, 1);
    assert_int_equal(lab, 8);
    /* 4 members: 2 votes for 6, 2 for 0, summed probability favours 0 */
    float c[4][10];
    row(c[0], 6, 0.5f, 0, 0.45f);
    row(c[1], 6, 0.5f, 0, 0.45f);
    row(c[2], 0, 0.9f, 6, 0.05f);
    row(c[3], 0, 0.9f, 6, 0.05f);
    const float *m4[4] = {c[0], c[1], c[2], c[3]};
    kg_hard_vote(&lab, m4, NULL, 4, 1);
    assert_int_equal(lab, 0);
}

static void test_probs_check(void **state) {
    (void)state;
    dg_err err;
    float p[30];
    row(p, 0, 0.9f, 1, 0.05f);
    row(p + 10, 1, 0.9f, 2, 0.05f);
    row(p + 20, 2, 0.9f, 3, 0.05f);
    assert_int_equal(kg_probs_check(p, 3, "x", &err), 0);
    p[13] = NAN;
    assert_int_equal(kg_probs_check(p, 3, "x", &err), -1);
    assert_non_null(strstr(err.msg, "row 1, class 3 is NaN"));
    row(p + 10, 1, 0.9f, 2, 0.05f);
    p[25] += 0.1f;
    assert_int_equal(kg_probs_check(p, 3, "x", &err), -1);
    assert_non_null(strstr(err.msg, "row 2 sums to 1.1"));
    row(p + 20, 2, 0.9f, 3, 0.05f);
    p[0] = -0.5f;
    p[1] = 1.45f;
    assert_int_equal(kg_probs_check(p, 3, "x", &err), -1);
    assert_non_null(strstr(err.msg, "[0, 1]"));
}

static void test_probs_load(void **state) {
    (void)state;
    dg_err err;
    float p[20];
    row(p, 0, 0.9f, 1, 0.05f);
    row(p + 10, 1, 0.9f, 2, 0.05f);
    size_t shape[2] = {2, 10};
    const char *path = DIGITS_TEST_TMP "/kg_probs.npy";
    assert_int_equal(dg_npy_save(path, "<f4", shape, 2, p, 4, &err), 0);
    float *q;
    size_t n;
    assert_int_equal(kg_probs_load(path, &q, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(p, q, sizeof p);
    free(q);
    /* wrong shape */
    size_t shape2[2] = {4, 5};
    assert_int_equal(dg_npy_save(path, "<f4", shape2, 2, p, 4, &err), 0);
    assert_int_equal(kg_probs_load(path, &q, &n, &err), -1);
    assert_non_null(strstr(err.msg, "(N, 10)"));
    /* wrong dtype */
    double d[10] = {1};
    size_t shape3[2] = {1, 10};
    assert_int_equal(dg_npy_save(path, "<f8", shape3, 2, d, 8, &err), 0);
    assert_int_equal(kg_probs_load(path, &q, &n, &err), -1);
    assert_non_null(strstr(err.msg, "float32"));
    /* NaN inside */
    p[3] = NAN;
    assert_int_equal(dg_npy_save(path, "<f4", shape, 2, p, 4, &err), 0);
    assert_int_equal(kg_probs_load(path, &q, &n, &err), -1);
    assert_non_null(strstr(err.msg, "NaN"));
    unlink(path);
}

/* 200 validation rows, 3 members: A right on 95% of rows, B right on 70%, C uniform noise. Fitted weights must
 * favour A, and the fitted soft vote must not be worse than A alone. */
static void test_fit_weights_picks_better_member(void **state) {
    (void)state;
    enum { N = 200 };
    float *a = malloc(N * 10 * sizeof(float)), *b = malloc(N * 10 * sizeof(float)), *c = malloc(N * 10 * sizeof(float));
    uint8_t y[N];
    for (int i = 0; i < N; i++) {
        y[i] = (uint8_t)(i % 10);
        int wrong = (y[i] + 1) % 10;
        if (i % 20 == 0) row(a + i * 10, wrong, 0.8f, y[i], 0.1f);
        else row(a + i * 10, y[i], 0.8f, wrong, 0.1f);
        if (i % 10 < 3) row(b + i * 10, wrong, 0.6f, y[i], 0.2f);
        else row(b + i * 10, y[i], 0.6f, wrong, 0.2f);
        for (int k = 0; k < 10; k++) c[i * 10 + k] = 0.1f;
    }
    const float *m[3] = {a, b, c};
    double w[3];
    dg_err err;
    assert_int_equal(kg_fit_weights(w, m, 3, N, y, 0, &err), 0);
    assert_ratio(w[0] + w[1] + w[2], 1.0);
    assert_true(w[0] > 0.6);
    assert_true(w[0] > w[1]);
    assert_true(w[0] > w[2]);
    for (int j = 0; j < 3; j++) assert_true(w[j] >= 0);
    float *mix = malloc(N * 10 * sizeof(float));
    kg_soft_vote(mix, m, w, 3, N);
    double acc_fit = kg_accuracy(mix, y, N), acc_a = kg_accuracy(a, y, N);
    assert_ratio(acc_a, 0.95);
    assert_true(acc_fit >= acc_a);
    double ll_fit = kg_log_likelihood(mix, y, N);
    kg_soft_vote(mix, m, NULL, 3, N);
    assert_true(ll_fit > kg_log_likelihood(mix, y, N)); /* better than equal weights */
    /* the cross-fitted estimate is a real accuracy */
    double cv = kg_fit_cv_accuracy(m, 3, N, y);
    assert_true(cv >= 0.9 && cv <= 1.0);
    /* fitting needs rows */
    assert_int_equal(kg_fit_weights(w, m, 3, 0, y, 0, &err), -1);
    assert_non_null(strstr(err.msg, "no validation rows"));
    free(a);
    free(b);
    free(c);
    free(mix);
}

/* Exact optimum: with two members, one always assigning p=1 to the truth, EM puts all weight on it. */
static void test_fit_weights_exact(void **state) {
    (void)state;
    float a[30], b[30];
    uint8_t y[3] = {2, 5, 7};
    for (int i = 0; i < 3; i++) {
        for (int k = 0; k < 10; k++) a[i * 10 + k] = k == y[i] ? 1.0f : 0.0f;
        for (int k = 0; k < 10; k++) b[i * 10 + k] = 0.1f;
    }
    const float *m[2] = {a, b};
    double w[2];
    assert_int_equal(kg_fit_weights(w, m, 2, 3, y, 5000, NULL), 0);
    assert_true(w[0] > 0.999);
    assert_ratio(w[0] + w[1], 1.0);
}

/* Shared hold-out: 3 members, same 10 validation ids (in different orders), each wrong on a different row: the
 * soft vote is right everywhere. Member accuracy 0.9, ensemble 1.0, gain 0.1. */
static void test_estimate_shared(void **state) {
    (void)state;
    enum { NT = 30, NV = 10 };
    uint8_t labels[NT];
    for (int r = 0; r < NT; r++) labels[r] = (uint8_t)((r * 3) % 10);
    int64_t ids[3][NV];
    float pred[3][NV * 10];
    kg_member_val mv[3];
    for (int j = 0; j < 3; j++) {
        for (int k = 0; k < NV; k++) {
            int kk = j == 1 ? NV - 1 - k : k; /* member 1 lists the rows backwards */
            int64_t id = 2 + 2 * kk;          /* train rows 2, 4, ..., 20 */
            ids[j][k] = id;
            int y = labels[id];
            if (kk == j) row(pred[j] + k * 10, (y + 1) % 10, 0.6f, y, 0.3f);
            else row(pred[j] + k * 10, y, 0.7f, (y + 1) % 10, 0.2f);
        }
        mv[j] = (kg_member_val){pred[j], ids[j], NV};
    }
    kg_estimate est;
    double acc[3];
    dg_err err;
    assert_int_equal(kg_estimate_accuracy(&est, acc, mv, 3, NULL, 0, labels, NT, &err), 0);
    assert_int_equal(est.mode, KG_EST_SHARED);
    assert_int_equal(est.shared_rows, NV);
    assert_int_equal(est.union_rows, NV);
    for (int j = 0; j < 3; j++) assert_ratio(acc[j], 0.9);
    assert_ratio(est.mean_member_acc, 0.9);
    assert_ratio(est.shared_member_acc, 0.9);
    assert_ratio(est.ensemble_acc, 1.0);
    assert_ratio(est.gain, 0.1);
    /* log-loss: each member gives the label 0.7 on 9 rows and 0.3 on one; the mix gives (0.7+0.7+0.3)/3 on the three
     * rows where one member errs, 0.7 on the other seven */
    assert_ratio(est.mean_member_loss, (9 * -log((double)0.7f) - log((double)0.3f)) / 10);
    assert_ratio(est.ensemble_loss, (3 * -log((2.0 * 0.7f + (double)0.3f) / 3) + 7 * -log((double)0.7f)) / 10);
    assert_int_equal(kg_estimate_accuracy(&est, acc, mv, 3, NULL, 1, labels, NT, &err), 0);
    assert_ratio(est.ensemble_acc, 1.0); /* a hard vote: its loss is the mix's */
    assert_ratio(est.ensemble_loss, (3 * -log((2.0 * 0.7f + (double)0.3f) / 3) + 7 * -log((double)0.7f)) / 10);
    /* weights: all on member 0, the mix is member 0 */
    const double w0[3] = {1, 0, 0};
    assert_int_equal(kg_estimate_accuracy(&est, acc, mv, 3, w0, 0, labels, NT, &err), 0);
    assert_ratio(est.ensemble_acc, 0.9);
    assert_ratio(est.ensemble_loss, (9 * -log((double)0.7f) - log((double)0.3f)) / 10);
    /* shared rows and gather line up member rows by train id */
    int64_t *sid;
    size_t *rows[3], ns;
    assert_int_equal(kg_shared_rows(&sid, rows, &ns, mv, 3, NT, &err), 0);
    assert_int_equal(ns, NV);
    assert_int_equal(sid[0], 2);
    assert_int_equal(rows[0][0], 0);
    assert_int_equal(rows[1][0], NV - 1);
    float g[NV * 10];
    kg_gather(g, &mv[1], rows[1], ns);
    assert_memory_equal(g, pred[1] + (NV - 1) * 10, 10 * sizeof(float));
    free(sid);
    for (int j = 0; j < 3; j++) free(rows[j]);
    /* an id outside the train set is an error */
    ids[2][4] = NT;
    assert_int_equal(kg_estimate_accuracy(&est, acc, mv, 3, NULL, 0, labels, NT, &err), -1);
    assert_non_null(strstr(err.msg, "outside the train set"));
    ids[2][4] = ids[2][3];
    assert_int_equal(kg_estimate_accuracy(&est, acc, mv, 3, NULL, 0, labels, NT, &err), -1);
    assert_non_null(strstr(err.msg, "twice"));
}

/* K folds: 2 members with disjoint validation rows {0..4} and {5..9}; member 1 is wrong on 1 of 5 rows, member 2
 * on 2 of 5. Out-of-fold accuracy = 7/10, mean member accuracy (0.8 + 0.6) / 2 = 0.7, gain 0. */
static void test_estimate_folds(void **state) {
    (void)state;
    enum { NT = 10 };
    uint8_t labels[NT] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    int64_t ids[2][5];
    float pred[2][50];
    kg_member_val mv[2];
    for (int j = 0; j < 2; j++) {
        for (int k = 0; k < 5; k++) {
            int64_t id = j * 5 + k;
            ids[j][k] = id;
            int wrong = j == 0 ? k == 0 : k < 2;
            int y = labels[id];
            row(pred[j] + k * 10, wrong ? (y + 3) % 10 : y, 0.8f, wrong ? y : (y + 3) % 10, 0.1f);
        }
        mv[j] = (kg_member_val){pred[j], ids[j], 5};
    }
    kg_estimate est;
    double acc[2];
    dg_err err;
    assert_int_equal(kg_estimate_accuracy(&est, acc, mv, 2, NULL, 0, labels, NT, &err), 0);
    assert_int_equal(est.mode, KG_EST_OOF);
    assert_int_equal(est.shared_rows, 0);
    assert_int_equal(est.union_rows, 10);
    assert_ratio(acc[0], 0.8);
    assert_ratio(acc[1], 0.6);
    assert_ratio(est.oof_acc, 0.7);
    assert_ratio(est.ensemble_acc, 0.7);
    assert_ratio(est.gain, 0.0);
    assert_true(est.shared_acc < 0);
    /* out-of-fold log-loss: 7 rows at p = 0.8, 3 at 0.1, each from its one member */
    assert_ratio(est.ensemble_loss, (7 * -log((double)0.8f) - 3 * log((double)0.1f)) / 10);
    assert_ratio(est.mean_member_loss, ((4 * -log((double)0.8f) - log((double)0.1f)) / 5 + (3 * -log((double)0.8f) - 2 * log((double)0.1f)) / 5) / 2);
}

/* digits-ensemble end to end: 3 run directories sharing a hold-out, each wrong on a different validation row;
 * the submission, its manifest and estimate; and bad inputs that must leave nothing behind. */
#define ETMP DIGITS_TEST_TMP "/kg_ens"

static void save_probs(const char *path, const float *p, size_t n) {
    dg_err err;
    size_t shape[2] = {n, 10};
    assert_int_equal(dg_npy_save(path, "<f4", shape, 2, p, 4, &err), 0);
}

static int run(const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, DIGITS_BIN_DIR "/digits-ensemble -q %s 2> " ETMP "/err.txt", args);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void assert_err_has(const char *want) {
    char *msg;
    size_t n;
    dg_err err;
    assert_int_equal(dg_read_file(ETMP "/err.txt", &msg, &n, &err), 0);
    if (!strstr(msg, want)) {
        print_error("stderr \"%s\" lacks \"%s\"\n", msg, want);
        fail();
    }
    free(msg);
}

static void test_stage_binary(void **state) {
    (void)state;
    dg_err err;
    assert_int_equal(system("rm -rf " ETMP " && mkdir -p " ETMP), 0);
    enum { NT = 40, NV = 10, NTEST = 6 };
    /* train dataset: labels r % 10 */
    dg_dataset_writer w;
    uint8_t img[DG_PIXELS] = {0};
    assert_int_equal(dg_dataset_writer_open(&w, ETMP "/train.npy", 1, &err), 0);
    for (int r = 0; r < NT; r++) assert_int_equal(dg_dataset_writer_add(&w, img, r % 10, &err), 0);
    assert_int_equal(dg_dataset_writer_commit(&w, &err), 0);
    /* sample submission with NTEST rows */
    const char *sample = "ImageId,Label\n1,0\n2,0\n3,0\n4,0\n5,0\n6,0\n";
    assert_int_equal(dg_write_file_atomic(ETMP "/sample.csv", sample, strlen(sample), &err), 0);
    for (int j = 0; j < 3; j++) {
        char dir[512], path[600];
        snprintf(dir, sizeof dir, ETMP "/run%d", j);
        assert_int_equal(dg_mkdirs(dir, &err), 0);
        int64_t ids[NV];
        float vp[NV * 10], tp[NTEST * 10];
        for (int k = 0; k < NV; k++) {
            ids[k] = 3 * k + 1;
            int y = (int)(ids[k] % 10);
            if (k == j) row(vp + k * 10, (y + 1) % 10, 0.6f, y, 0.3f);
            else row(vp + k * 10, y, 0.7f, (y + 1) % 10, 0.2f);
        }
        /* test: every member says label i for row i, except member j says 9 on row j */
        for (int i = 0; i < NTEST; i++) row(tp + i * 10, i == j ? 9 : i, 0.8f, i == j ? i : 9, 0.1f);
        snprintf(path, sizeof path, "%s/val_pred.npy", dir);
        save_probs(path, vp, NV);
        size_t ishape[1] = {NV};
        snprintf(path, sizeof path, "%s/val_ids.npy", dir);
        assert_int_equal(dg_npy_save(path, "<i8", ishape, 1, ids, 8, &err), 0);
        snprintf(path, sizeof path, "%s/test_probs.npy", dir);
        save_probs(path, tp, NTEST);
        snprintf(path, sizeof path, "%s/result.json", dir);
        char json[256];
        int len = snprintf(json, sizeof json, "{\"val_acc\":0.9,\"seed\":%d,\"split\":\"val-frac 0.25 split-seed 1\"}", j + 1);
        assert_int_equal(dg_write_file_atomic(path, json, (size_t)len, &err), 0);
    }
    const char *members = ETMP "/run0 " ETMP "/run1=" ETMP "/run1/test_probs.npy " ETMP "/run2";
    char args[2048];
    snprintf(args, sizeof args, "--train " ETMP "/train.npy --sample " ETMP "/sample.csv -o " ETMP "/sub.csv %s",
             members);
    assert_int_equal(run(args), 0);
    char *sub;
    size_t n;
    assert_int_equal(dg_read_file(ETMP "/sub.csv", &sub, &n, &err), 0);
    assert_string_equal(sub, "ImageId,Label\n1,0\n2,1\n3,2\n4,3\n5,4\n6,5\n");
    free(sub);
    char *man;
    assert_int_equal(dg_read_file(ETMP "/sub.manifest.json", &man, &n, &err), 0);
    assert_non_null(strstr(man, "\"mode\":\t\"shared-holdout\""));
    assert_non_null(strstr(man, "\"ensemble_acc\":\t1"));
    assert_non_null(strstr(man, "\"mean_member_acc\":\t0.9"));
    assert_non_null(strstr(man, "\"seed\":\t3"));
    assert_non_null(strstr(man, "digits-ensemble -q --train"));
    free(man);
    /* fitted weights and hard vote run too */
    snprintf(args, sizeof args, "-m fit --train " ETMP "/train.npy --rows 6 -o " ETMP "/fit.csv %s", members);
    assert_int_equal(run(args), 0);
    snprintf(args, sizeof args, "-m hard --train " ETMP "/train.npy --rows 6 -o " ETMP "/hard.csv %s", members);
    assert_int_equal(run(args), 0);
    assert_int_equal(kg_submission_check_file(ETMP "/hard.csv", 6, 0, NULL, NULL, &err), 0);

    /* bad inputs: nothing written */
    float p[7 * 10];
    for (int i = 0; i < 7; i++) row(p + i * 10, i % 10, 0.8f, (i + 1) % 10, 0.1f);
    save_probs(ETMP "/seven.npy", p, 7);
    save_probs(ETMP "/six.npy", p, 6);
    p[13] = NAN;
    save_probs(ETMP "/nan.npy", p, 6);
    p[13] = 0.2f; /* row 1 now sums to 1.2 - 0.0125 */
    save_probs(ETMP "/sum.npy", p, 6);
    assert_int_equal(run("-o " ETMP "/bad.csv " ETMP "/six.npy " ETMP "/seven.npy"), 1);
    assert_err_has("different lengths");
    assert_int_equal(run("-o " ETMP "/bad.csv " ETMP "/six.npy " ETMP "/nan.npy"), 1);
    assert_err_has("NaN");
    assert_int_equal(run("-o " ETMP "/bad.csv " ETMP "/six.npy " ETMP "/sum.npy"), 1);
    assert_err_has("sums to");
    assert_int_equal(run("--sample " ETMP "/sample.csv -o " ETMP "/bad.csv " ETMP "/seven.npy"), 1);
    assert_err_has("submission needs 6");
    assert_int_equal(run("--rows 5 -o " ETMP "/bad.csv " ETMP "/six.npy"), 1);
    assert_int_equal(run("-m fit -o " ETMP "/bad.csv " ETMP "/six.npy"), 1);
    assert_err_has("needs validation predictions");
    assert_int_equal(run("-w 1,2 -o " ETMP "/bad.csv " ETMP "/six.npy"), 2); /* a usage error */
    assert_err_has("more weights than the 1 members");
    assert_false(dg_path_exists(ETMP "/bad.csv"));
    assert_false(dg_path_exists(ETMP "/bad.manifest.json"));
    assert_int_equal(run("-m avg x.npy"), 2);
    assert_int_equal(run("-w 1,3 -o " ETMP "/ok.csv " ETMP "/six.npy " ETMP "/six.npy"), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_soft_vote_known),
        cmocka_unit_test(test_hard_vote_tie_by_summed_probability),
        cmocka_unit_test(test_probs_check),
        cmocka_unit_test(test_probs_load),
        cmocka_unit_test(test_fit_weights_picks_better_member),
        cmocka_unit_test(test_fit_weights_exact),
        cmocka_unit_test(test_estimate_shared),
        cmocka_unit_test(test_estimate_folds),
        cmocka_unit_test(test_stage_binary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
