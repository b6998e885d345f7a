/* nn/judge: generated digits measured with a trained classifier as the judge (digits-gan judge).
 *
 * Given a labelled dataset of generated digits (each labelled with the digit it was generated for), a classifier
 * (a digits-train model) and the dataset it was trained on:
 *   - conditional accuracy: the share of generated digits the classifier labels as their stated label, overall and
 *     per class;
 *   - digits-FID: the Fréchet distance between Gaussian fits of the classifier's penultimate features (the input
 *     of its final dense layer) of the generated digits and of real digits the classifier never trained on, the
 *     first N of its validation hold-out (the split nn/split gave digits-train, read from the model's metadata):
 *     |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), in double precision, the square root's trace by LAPACK
 *     eigen-decompositions; overall and per class;
 *   - per-class diversity: the mean pairwise Euclidean distance of the features of a class's generated digits
 *     over the same for its real digits (1 = as diverse as real; a generator that draws one perfect 7 scores 0).
 * Not here: the stage's options (nn/gan_cli.h).
 */
#ifndef NN_JUDGE_H
#define NN_JUDGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/dg_err.h"
#include "nn/net.h"

#define NN_JUDGE_DEFAULT_N 10000
#define NN_JUDGE_DIV_MAX 1000 /* diversity: pairs among the first this many digits of a class (O(n^2) pairs) */

/* ---- the numbers, on explicit buffers ---- */

/* mu (d) and the unbiased covariance cov (d, d) (divided by n - 1, as numpy.cov) of the rows of x (n, d); n >= 2. */
int nn_gauss_fit(double *mu, double *cov, const double *x, size_t n, int d, dg_err *err);

/* *fid = |mu1 - mu2|^2 + Tr(s1 + s2 - 2 (s1 s2)^(1/2)) for symmetric positive semi-definite s1, s2 (d, d).
 * Tr (s1 s2)^(1/2) is the sum of the square roots of the eigenvalues of s1^(1/2) s2 s1^(1/2) (LAPACK dsyevd).
 * Never below 0 (rounding's negatives are returned as 0). */
int nn_frechet(double *fid, const double *mu1, const double *s1, const double *mu2, const double *s2, int d,
               dg_err *err);

/* The mean Euclidean distance over all pairs of rows of x (n, d); 0 when n < 2, NAN when out of memory. */
double nn_mean_pairwise_dist(const double *x, size_t n, int d);

/* ---- the measures ---- */

typedef struct nn_judge_class {
    size_t n_gen, n_real;   /* digits of this label among the judged ones */
    size_t n_correct;       /* generated digits the classifier labels as this label */
    double cond_acc;        /* n_correct / n_gen (NAN when n_gen is 0) */
    double real_acc;        /* the classifier's accuracy on this class's real digits (NAN when none) */
    double fid;             /* the class's digits-FID (NAN with fewer than 2 digits on a side) */
    double dist_gen, dist_real; /* mean pairwise feature distance (first NN_JUDGE_DIV_MAX), NAN with fewer than 2 */
    double diversity;       /* dist_gen / dist_real (NAN when undefined) */
} nn_judge_class;

typedef struct nn_judge_result {
    size_t n_gen, n_real;
    int dim;                /* feature dimension */
    double cond_acc, real_acc, fid;
    double min_diversity;   /* the lowest class diversity (NAN if none is defined) */
    int min_diversity_class;
    nn_judge_class cls[10];
} nn_judge_result;

/* The measures from features and labels: gen (n_gen, d) with the labels they were generated for (gl) and the
 * classifier's predictions (gp); real (n_real, d) with their true labels (rl) and predictions (rp). Labels 0..9.
 * n_gen and n_real >= 2. */
int nn_judge_measure(nn_judge_result *r, const double *gen, const uint8_t *gl, const uint8_t *gp, size_t n_gen,
                     const double *real, const uint8_t *rl, const uint8_t *rp, size_t n_real, int d, dg_err *err);

/* The classifier's penultimate features and predictions of n images (n, 784 bytes): feats (n, *d) doubles (malloc'd
 * into *feats), preds (n). The features are the input of the net's last dense layer; a net without one is an error. */
int nn_judge_features(nn_net *net, const uint8_t *const *images, size_t n, double **feats, int *d, uint8_t *preds,
                      dg_err *err);

/* ---- the stage ---- */

typedef struct nn_judge_opts {
    const char *samples;    /* labelled dataset of generated digits */
    const char *classifier; /* digits-train run directory or model.safetensors */
    const char *real;       /* the dataset the classifier was trained on (its hold-out gives the real digits) */
    uint64_t split_seed;    /* the hold-out; must agree with the model's metadata when it records its split */
    double val_frac;
    int split_seed_set, val_frac_set; /* given explicitly (otherwise the model's, or 1 and 0.1) */
    long n;                 /* the first n generated and the first n real hold-out digits */
    const char *json;       /* written atomically, or NULL */
    FILE *report;           /* the table; NULL: none */
} nn_judge_opts;

int nn_judge(const nn_judge_opts *o, nn_judge_result *r, dg_err *err);

#endif
