/* nn/split: which rows of a labelled dataset train and which validate, stratified by class, from a seed.
 *
 * Both splits first shuffle each class's rows with dg_rng(seed, DG_RNG_SPLIT, 0, class) and lay the classes one
 * after another (class 0's shuffled rows, then class 1's, ...). Position p of that sequence then goes
 *   hold-out:  to validation iff floor((p + 1) f) > floor(p f)      -> exactly floor(n f) rows, every class within
 *                                                                      one row of f times its size
 *   K-fold:    to fold p mod K (folds numbered 1..K)                -> fold sizes within one of n / K
 * so a split is a pure function of (labels, seed, f or K) and the K folds partition the rows.
 * Returned index lists are sorted ascending.
 */
#ifndef NN_SPLIT_H
#define NN_SPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "core/dg_err.h"

typedef struct nn_split {
    uint32_t *train; /* (n_train) row indices, ascending */
    uint32_t *val;   /* (n_val) row indices, ascending */
    size_t n_train, n_val;
} nn_split;

/* labels (n) in 0..n_classes-1. val_frac in (0, 1); both parts must be non-empty. */
int nn_split_holdout(nn_split *s, const uint8_t *labels, size_t n, int n_classes, double val_frac, uint64_t seed,
                     dg_err *err);

/* Fold `fold` (1..folds) of a stratified `folds`-fold split validates; the other folds train. folds >= 2. */
int nn_split_kfold(nn_split *s, const uint8_t *labels, size_t n, int n_classes, int folds, int fold, uint64_t seed,
                   dg_err *err);

void nn_split_free(nn_split *s);

#endif
