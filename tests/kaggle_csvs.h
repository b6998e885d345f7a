/* tests/kaggle_csvs: a tiny Kaggle-shaped competition for the tests that run digits-pipeline end to end
 * (tests/pipeline/, tests/experiments/). Include after cmocka.h. */
#ifndef TESTS_KAGGLE_CSVS_H
#define TESTS_KAGGLE_CSVS_H

#include <stdio.h>

/* dir/train.csv (200 labelled rows), dir/test.csv (30 rows) and dir/sample_submission.csv: digit d is a vertical
 * bar at column 3 (d + 2), and with cross_bars also a horizontal bar at row 3 d, on black. */
static inline void tu_kaggle_csvs(const char *dir, int cross_bars) {
    char p[3][512];
    snprintf(p[0], sizeof p[0], "%s/train.csv", dir);
    snprintf(p[1], sizeof p[1], "%s/test.csv", dir);
    snprintf(p[2], sizeof p[2], "%s/sample_submission.csv", dir);
    FILE *tr = fopen(p[0], "w"), *te = fopen(p[1], "w"), *sa = fopen(p[2], "w");
    assert_true(tr && te && sa);
    fprintf(tr, "label");
    for (int q = 0; q < 784; q++) fprintf(tr, ",pixel%d", q), fprintf(te, "%spixel%d", q ? "," : "", q);
    fprintf(tr, "\n");
    fprintf(te, "\n");
    fprintf(sa, "ImageId,Label\n");
    for (int i = 0; i < 230; i++) {
        int label = i % 10;
        FILE *f = i < 200 ? tr : te;
        if (i < 200) fprintf(f, "%d", label);
        for (int q = 0; q < 784; q++) {
            int x = q % 28, y = q / 28;
            int on = (x / 3 == label + 2 && y > 4 && y < 24) || (cross_bars && y / 3 == label && x > 6);
            fprintf(f, "%s%d", (i < 200 || q) ? "," : "", on ? 255 - (i * 7 + q) % 50 : 0);
        }
        fprintf(f, "\n");
        if (i >= 200) fprintf(sa, "%d,0\n", i - 199);
    }
    assert_int_equal(fclose(tr) | fclose(te) | fclose(sa), 0);
}

#endif
