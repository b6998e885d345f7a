/* tests/report/report_fixture: what the report tests share: a small labelled dataset with some wrong labels (so a
 * model always misclassifies some validation rows), two finished tiny runs on one hold-out, an ensemble of them
 * (manifest through digits-ensemble's library run), and what each report must show, computed here from the files
 * independently of experiments/report. Header-only: each test is one translation unit. */
#ifndef TESTS_REPORT_FIXTURE_H
#define TESTS_REPORT_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "core/dg_npy.h"
#include "core/dg_rng.h"
#include "kaggle/ensemble_cli.h"
#include "nn/train.h"
#include "testutil.h"

#define RF_TMP DIGITS_TEST_TMP "/report"
#define RF_DATA RF_TMP "/synth.npy"
#define RF_RUN_A RF_TMP "/run_a"
#define RF_RUN_B RF_TMP "/run_b"
#define RF_MANIFEST RF_TMP "/submission.manifest.json"
#define RF_ROWS 600
#define RF_EPOCHS 7
#define RF_TEST_ROWS 40

/* Class c: a bright block at a class-dependent place on noise; every 8th row's label is moved by one, so those
 * rows cannot all be learnt. */
static inline void rf_make_dataset(void) {
    dg_dataset_writer w;
    dg_err err = {{0}};
    assert_int_equal(dg_dataset_writer_open(&w, RF_DATA, 1, &err), 0);
    uint8_t img[DG_PIXELS];
    for (size_t i = 0; i < RF_ROWS; i++) {
        int c = (int)((i * 7) % 10);
        dg_rng r = dg_rng_make(97, DG_RNG_USER, 0, (uint32_t)i);
        for (int p = 0; p < DG_PIXELS; p++) img[p] = (uint8_t)dg_rng_below(&r, 90);
        int y0 = 3 + (c / 5) * 12, x0 = 1 + (c % 5) * 5;
        for (int y = y0; y < y0 + 6; y++)
            for (int x = x0; x < x0 + 5; x++) img[y * DG_SIDE + x] = (uint8_t)(200 + dg_rng_below(&r, 56));
        assert_int_equal(dg_dataset_writer_add(&w, img, i % 8 == 3 ? (c + 1) % 10 : c, &err), 0);
    }
    assert_int_equal(dg_dataset_writer_commit(&w, &err), 0);
}

static inline void rf_train(const char *dir, uint64_t seed) {
    nn_train_opts o;
    nn_train_opts_defaults(&o);
    o.data = RF_DATA;
    o.model = DIGITS_FIXTURES "/spec/tiny.spec";
    o.run_dir = dir;
    o.val_frac = 0.2;
    o.epochs = RF_EPOCHS;
    o.seed = seed;
    o.log = NULL;
    o.command = "digits-train --data synth.npy --model tiny.spec";
    dg_err err = {{0}};
    if (nn_train_run(&o, &err) != 0) fail_msg("%s", err.msg);
}

/* Random probability rows (n, 10) as a member's test predictions. */
static inline void rf_test_probs(const char *path, uint32_t key) {
    float p[RF_TEST_ROWS * 10];
    for (int i = 0; i < RF_TEST_ROWS; i++) {
        dg_rng r = dg_rng_make(key, DG_RNG_USER, 1, (uint32_t)i);
        float s = 0;
        for (int k = 0; k < 10; k++) s += p[i * 10 + k] = dg_rng_uniform(&r) + 0.01f;
        for (int k = 0; k < 10; k++) p[i * 10 + k] /= s;
    }
    size_t shape[2] = {RF_TEST_ROWS, 10};
    dg_err err = {{0}};
    if (dg_npy_save(path, "<f4", shape, 2, p, sizeof(float), &err) != 0) fail_msg("%s", err.msg);
}

/* Everything, built once per build directory (a finished run is not retrained). */
static inline void rf_setup(void) {
    dg_err err = {{0}};
    if (dg_mkdirs(RF_TMP, &err) != 0) fail_msg("%s", err.msg);
    if (dg_path_exists(RF_MANIFEST)) return;
    int rc = system("rm -rf '" RF_TMP "'/run_a '" RF_TMP "'/run_b");
    assert_int_equal(rc, 0);
    rf_make_dataset();
    rf_train(RF_RUN_A, 1);
    rf_train(RF_RUN_B, 2);
    rf_test_probs(RF_TMP "/a_test.npy", 1);
    rf_test_probs(RF_TMP "/b_test.npy", 2);
    char *argv[] = {"digits-ensemble", "--train", RF_DATA, "-o", RF_TMP "/submission.csv", "--quiet",
                    RF_RUN_A "=" RF_TMP "/a_test.npy", RF_RUN_B "=" RF_TMP "/b_test.npy", NULL};
    kg_ensemble_cli_opts eo;
    if (kg_ensemble_cli_parse(8, argv, &eo, &err) != 0 || kg_ensemble_cli_run(&eo, &err) != 0)
        fail_msg("digits-ensemble: %s", err.msg);
}

/* argmax of a probability row, ties to the smaller label */
static inline int rf_argmax(const float *p) {
    int b = 0;
    for (int k = 1; k < 10; k++)
        if (p[k] > p[b]) b = k;
    return b;
}

/* Validation rows of run dir that its val_pred.npy gets wrong. */
static inline size_t rf_run_misses(const char *dir) {
    char p[512];
    dg_err err = {{0}};
    dg_npy_file pred, ids;
    dg_dataset ds;
    snprintf(p, sizeof p, "%s/val_pred.npy", dir);
    assert_int_equal(dg_npy_open(&pred, p, 4, &err), 0);
    snprintf(p, sizeof p, "%s/val_ids.npy", dir);
    assert_int_equal(dg_npy_open(&ids, p, 8, &err), 0);
    assert_int_equal(dg_dataset_open(&ds, RF_DATA, &err), 0);
    size_t n = 0;
    const float *pr = pred.data;
    const int64_t *id = ids.data;
    for (size_t i = 0; i < pred.h.shape[0]; i++) n += rf_argmax(pr + i * 10) != dg_dataset_label(&ds, (size_t)id[i]);
    dg_npy_close(&pred);
    dg_npy_close(&ids);
    dg_dataset_close(&ds);
    return n;
}

/* Rows the equal-weight soft vote of runs A and B gets wrong (both hold out the same rows, in the same order). */
static inline size_t rf_ensemble_misses(void) {
    dg_err err = {{0}};
    dg_npy_file a, b, ids;
    dg_dataset ds;
    assert_int_equal(dg_npy_open(&a, RF_RUN_A "/val_pred.npy", 4, &err), 0);
    assert_int_equal(dg_npy_open(&b, RF_RUN_B "/val_pred.npy", 4, &err), 0);
    assert_int_equal(dg_npy_open(&ids, RF_RUN_A "/val_ids.npy", 8, &err), 0);
    assert_int_equal(dg_dataset_open(&ds, RF_DATA, &err), 0);
    const float *pa = a.data, *pb = b.data;
    const int64_t *id = ids.data;
    size_t n = 0;
    for (size_t i = 0; i < a.h.shape[0]; i++) {
        float m[10];
        for (int k = 0; k < 10; k++) m[k] = (pa[i * 10 + k] + pb[i * 10 + k]) / 2;
        n += rf_argmax(m) != dg_dataset_label(&ds, (size_t)id[i]);
    }
    dg_npy_close(&a);
    dg_npy_close(&b);
    dg_npy_close(&ids);
    dg_dataset_close(&ds);
    return n;
}

#endif
