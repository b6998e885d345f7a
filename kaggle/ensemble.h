/* kaggle/ensemble: combining the class probabilities of several models, and estimating what that gains.
 *
 * Probabilities are (n, 10) float32, row-major, each row a distribution over the digits 0..9.
 * - soft vote: the (weighted) mean of the members' probabilities;
 * - hard vote: each member votes for its argmax (votes weighted); the most votes wins, ties go to the label with
 *   the larger summed probability, then to the smaller label;
 * - fitted weights: weights on the simplex maximizing the validation log-likelihood of the soft vote.
 *   kg_fit_weights receives only validation predictions and validation labels: there is no parameter through
 *   which test data could reach it.
 * Validation estimates: members trained by digits-train leave val_pred.npy (their probabilities on validation
 * rows) and val_ids.npy (which rows of the train dataset those are). Rows every member saw as validation
 * (same hold-out, different seeds) give the ensemble accuracy against the mean member accuracy; K-fold members
 * with disjoint folds give an out-of-fold accuracy over all rows, each row predicted by the members that held it
 * out. This module does no file naming or command-line handling (see ensemble_cli.h).
 */
#ifndef KG_ENSEMBLE_H
#define KG_ENSEMBLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/dg_err.h"

#define KG_CLASSES 10
#define KG_ROW_SUM_TOL 1e-3 /* |sum of a row - 1| allowed */

/* Check probabilities p (n, 10): every value finite and in [0, 1] (within 1e-6), every row summing to 1 within
 * KG_ROW_SUM_TOL. Messages name `name` and the first bad row. */
int kg_probs_check(const float *p, size_t n, const char *name, dg_err *err);

/* Load a (N, 10) '<f4' .npy file into a malloc'd copy *p (n = N) and check it (kg_probs_check). */
int kg_probs_load(const char *path, float **p, size_t *n, dg_err *err);

/* Labels (n,) = argmax of each row of p (n, 10); ties go to the smaller label. */
void kg_argmax(uint8_t *labels, const float *p, size_t n);

/* Fraction of rows of p (n, 10) whose argmax is y[i]. */
double kg_accuracy(const float *p, const uint8_t *y, size_t n);

/* Mean log p[i][y[i]] over n rows, each probability floored at 1e-7. */
double kg_log_likelihood(const float *p, const uint8_t *y, size_t n);

/* Soft vote: out (n, 10) = sum_j w[j] * members[j] (n, 10) / sum_j w[j]. w = NULL: equal weights. */
void kg_soft_vote(float *out, const float *const *members, const double *w, int m, size_t n);

/* Hard vote: labels (n,) = the label with the most (weighted) votes among members' argmaxes; ties by summed
 * probability, then the smaller label. w = NULL: one vote each. */
void kg_hard_vote(uint8_t *labels, const float *const *members, const double *w, int m, size_t n);

/* Fit weights w (m,) on the simplex maximizing mean log(sum_j w_j val[j][i][y[i]]) over n validation rows, by the
 * EM fixed-point update w_j <- w_j * mean_i(val[j][i][y_i] / mix_i) (monotone; the objective is concave, so it
 * reaches the maximum). At most `iters` updates (0: 1000); stops when no weight moves by more than 1e-9.
 * Validation arrays only: val[j] (n, 10) member j's probabilities, y (n,) the true labels. */
int kg_fit_weights(double *w, const float *const *val, int m, size_t n, const uint8_t *y, int iters, dg_err *err);

/* Honest accuracy of fitted weights: two-fold cross-fitting over the n validation rows (weights fitted on the
 * even rows score the odd rows and vice versa). Returns the accuracy, or -1 on allocation failure. */
double kg_fit_cv_accuracy(const float *const *val, int m, size_t n, const uint8_t *y);

/* One member's validation predictions: pred (nv, 10) for the train rows ids (nv,). */
typedef struct kg_member_val {
    const float *pred;
    const int64_t *ids;
    size_t nv;
} kg_member_val;

/* Rows of the train set held out by every member: ids (ns,) ascending, and for each member j, rows[j][k] = the
 * row of member j's pred holding ids[k]. *ids and each rows[j] are malloc'd (free them; rows is caller-provided,
 * m entries). ns may be 0. Ids outside [0, n_train) or repeated within a member are errors. */
int kg_shared_rows(int64_t **ids, size_t **rows, size_t *ns, const kg_member_val *mv, int m, size_t n_train,
                   dg_err *err);

/* Copy member j's predictions on the shared rows into out (ns, 10). */
void kg_gather(float *out, const kg_member_val *mv, const size_t *rows, size_t ns);

typedef enum kg_est_mode {
    KG_EST_NONE = 0,   /* no validation rows */
    KG_EST_SHARED = 1, /* all members hold out the same rows */
    KG_EST_OOF = 2     /* members hold out different rows (K folds): out-of-fold over their union */
} kg_est_mode;

typedef struct kg_estimate {
    kg_est_mode mode;
    size_t shared_rows;      /* rows held out by every member */
    size_t union_rows;       /* rows held out by at least one member */
    double shared_acc;       /* ensemble accuracy on the shared rows (-1 if none) */
    double shared_member_acc;/* mean member accuracy on the shared rows (-1 if none) */
    double oof_acc;          /* accuracy over the union, each row by the members holding it (-1 if shared) */
    double mean_member_acc;  /* mean over members of their accuracy on their own validation rows */
    double best_member_acc;
    double ensemble_acc;     /* the estimate: shared_acc in KG_EST_SHARED, oof_acc in KG_EST_OOF */
    double gain;             /* ensemble_acc - (shared_member_acc in SHARED, mean_member_acc in OOF) */
    /* Cross-entropy of the true labels (mean -log p, p floored at 1e-12) under the weighted mean of the members'
     * probabilities, on the rows ensemble_acc counts (-1 if none): the plain log-loss (as digits-train's val_loss),
     * less noisy than accuracy when comparing ensembles of like members (label-smoothed ones score higher). */
    double ensemble_loss;
    double mean_member_loss; /* mean over members of their log-loss on their own validation rows */
} kg_estimate;

/* Estimate the ensemble's accuracy from validation predictions. labels (n_train,) are the train set's labels
 * (only rows named in mv[].ids are read). w as in the votes; hard = 1 for hard vote. member_acc (m,) receives
 * each member's accuracy on its own validation rows. */
int kg_estimate_accuracy(kg_estimate *est, double *member_acc, const kg_member_val *mv, int m, const double *w,
                         int hard, const uint8_t *labels, size_t n_train, dg_err *err);

#endif
