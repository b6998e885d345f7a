/* nn/split: stratified hold-out and K-fold splits (see nn/split.h). */
#include "nn/split.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dg_rng.h"

/* order (n): rows grouped by class, each class's rows shuffled with its own keyed stream. */
static int stratified_order(uint32_t *order, const uint8_t *labels, size_t n, int n_classes, uint64_t seed,
                            dg_err *err) {
    size_t *start = calloc((size_t)n_classes + 1, sizeof *start);
    if (!start) return dg_fail(err, "split: out of memory");
    for (size_t i = 0; i < n; i++) {
        if (labels[i] >= n_classes) {
            free(start);
            return dg_fail(err, "split: row %zu has label %d, expected 0..%d", i, labels[i], n_classes - 1);
        }
        start[labels[i] + 1]++;
    }
    for (int c = 0; c < n_classes; c++) start[c + 1] += start[c];
    size_t *fill = malloc((size_t)n_classes * sizeof *fill);
    if (!fill) {
        free(start);
        return dg_fail(err, "split: out of memory");
    }
    memcpy(fill, start, (size_t)n_classes * sizeof *fill);
    for (size_t i = 0; i < n; i++) order[fill[labels[i]]++] = (uint32_t)i;
    for (int c = 0; c < n_classes; c++) {
        dg_rng r = dg_rng_make(seed, DG_RNG_SPLIT, 0, (uint32_t)c);
        dg_rng_shuffle_u32(&r, order + start[c], (uint32_t)(start[c + 1] - start[c]));
    }
    free(fill);
    free(start);
    return 0;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Distribute order (n) into s by in_val(p). */
static int split_by(nn_split *s, const uint32_t *order, size_t n, const unsigned char *is_val, dg_err *err) {
    size_t nv = 0;
    for (size_t p = 0; p < n; p++) nv += is_val[p];
    s->n_val = nv;
    s->n_train = n - nv;
    s->val = malloc((nv ? nv : 1) * sizeof *s->val);
    s->train = malloc((n - nv ? n - nv : 1) * sizeof *s->train);
    if (!s->val || !s->train) {
        nn_split_free(s);
        return dg_fail(err, "split: out of memory");
    }
    size_t iv = 0, it = 0;
    for (size_t p = 0; p < n; p++) {
        if (is_val[p])
            s->val[iv++] = order[p];
        else
            s->train[it++] = order[p];
    }
    qsort(s->val, nv, sizeof *s->val, cmp_u32);
    qsort(s->train, n - nv, sizeof *s->train, cmp_u32);
    return 0;
}

static int split_common(nn_split *s, const uint8_t *labels, size_t n, int n_classes, uint64_t seed, double frac,
                        int folds, int fold, dg_err *err) {
    memset(s, 0, sizeof *s);
    if (n > UINT32_MAX) return dg_fail(err, "split: %zu rows is more than 2^32 - 1", n);
    if (n_classes < 1 || n_classes > 256) return dg_fail(err, "split: %d classes, expected 1..256", n_classes);
    uint32_t *order = malloc((n ? n : 1) * sizeof *order);
    unsigned char *is_val = malloc(n ? n : 1);
    if (!order || !is_val) {
        free(order);
        free(is_val);
        return dg_fail(err, "split: out of memory");
    }
    int rc = stratified_order(order, labels, n, n_classes, seed, err);
    if (rc == 0) {
        for (size_t p = 0; p < n; p++)
            is_val[p] = folds ? (unsigned char)((int)(p % (size_t)folds) == fold - 1)
                              : (unsigned char)(floor((double)(p + 1) * frac) > floor((double)p * frac));
        rc = split_by(s, order, n, is_val, err);
    }
    free(order);
    free(is_val);
    return rc;
}

int nn_split_holdout(nn_split *s, const uint8_t *labels, size_t n, int n_classes, double val_frac, uint64_t seed,
                     dg_err *err) {
    memset(s, 0, sizeof *s);
    if (!(val_frac > 0 && val_frac < 1)) return dg_fail(err, "validation fraction %g: expected a number in (0, 1)", val_frac);
    if (split_common(s, labels, n, n_classes, seed, val_frac, 0, 0, err) != 0) return -1;
    if (s->n_val == 0 || s->n_train == 0) {
        size_t nv = s->n_val;
        nn_split_free(s);
        return dg_fail(err, "validation fraction %g of %zu rows leaves %s empty", val_frac, n,
                       nv == 0 ? "the validation set" : "the training set");
    }
    return 0;
}

int nn_split_kfold(nn_split *s, const uint8_t *labels, size_t n, int n_classes, int folds, int fold, uint64_t seed,
                   dg_err *err) {
    memset(s, 0, sizeof *s);
    if (folds < 2) return dg_fail(err, "%d folds: expected at least 2", folds);
    if (fold < 1 || fold > folds) return dg_fail(err, "fold %d: expected 1..%d", fold, folds);
    if ((size_t)folds > n) return dg_fail(err, "%d folds of %zu rows: some folds would be empty", folds, n);
    return split_common(s, labels, n, n_classes, seed, 0, folds, fold, err);
}

void nn_split_free(nn_split *s) {
    free(s->train);
    free(s->val);
    s->train = s->val = NULL;
    s->n_train = s->n_val = 0;
}
