/* nn/judge: generated digits judged by a trained classifier (see nn/judge.h). */
#include "nn/judge.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <lapack.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "nn/checkpoint.h"
#include "nn/model.h"
#include "nn/split.h"

#define JUDGE_BATCH 256

/* ---- the numbers ---- */

/* BLAS and LAPACK run on one thread in here: OpenBLAS's threaded dsyrk/dgemm/dsyevd round differently by thread
 * count (1e-11 of the FID), and the figures must not depend on it; the matrices are small (the feature dimension
 * squared). Setting OpenBLAS's threads can set OpenMP's too (the OpenMP build), so both are put back. */
typedef struct blas_threads {
    int blas, omp;
} blas_threads;

static blas_threads blas_one_thread(void) {
    blas_threads t = {openblas_get_num_threads(), omp_get_max_threads()};
    openblas_set_num_threads(1);
    return t;
}

static void blas_restore(blas_threads t) {
    openblas_set_num_threads(t.blas);
    omp_set_num_threads(t.omp);
}

int nn_gauss_fit(double *mu, double *cov, const double *x, size_t n, int d, dg_err *err) {
    if (n < 2 || d < 1) return dg_fail(err, "a Gaussian fit needs at least 2 rows (got %zu) of d >= 1 values", n);
    double *xc = calloc(n * (size_t)d, sizeof *xc);
    if (!xc) return dg_fail(err, "out of memory (%zu x %d features)", n, d);
    for (int j = 0; j < d; j++) mu[j] = 0;
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) mu[j] += x[i * (size_t)d + j];
    for (int j = 0; j < d; j++) mu[j] /= (double)n;
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < d; j++) xc[i * (size_t)d + j] = x[i * (size_t)d + j] - mu[j];
    /* cov = xc^T xc / (n - 1): the upper triangle (row-major), then mirrored */
    blas_threads bt = blas_one_thread();
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, (int)n, 1.0 / (double)(n - 1), xc, d, 0.0, cov, d);
    blas_restore(bt);
    for (int i = 0; i < d; i++)
        for (int j = 0; j < i; j++) cov[(size_t)i * d + j] = cov[(size_t)j * d + i];
    free(xc);
    return 0;
}

/* Eigenvalues (ascending) of the symmetric a (d, d) into w; with vectors, a becomes the eigenvectors (column-major:
 * column j, a[j * d .. j * d + d), belongs to w[j]); without, a is destroyed. */
static int sym_eig(double *a, double *w, int d, int vectors, dg_err *err) {
    lapack_int n = d, info = 0, lwork = -1, liwork = -1, iq;
    double q;
    char jobz = vectors ? 'V' : 'N', uplo = 'U';
    LAPACK_dsyevd(&jobz, &uplo, &n, a, &n, w, &q, &lwork, &iq, &liwork, &info); /* workspace query */
    if (info != 0) return dg_fail(err, "LAPACK dsyevd workspace query failed (info %d)", (int)info);
    lwork = (lapack_int)q, liwork = iq;
    double *work = malloc((size_t)lwork * sizeof *work);
    lapack_int *iwork = malloc((size_t)liwork * sizeof *iwork);
    if (!work || !iwork) {
        free(work), free(iwork);
        return dg_fail(err, "out of memory (eigen-decomposition of %d x %d)", d, d);
    }
    LAPACK_dsyevd(&jobz, &uplo, &n, a, &n, w, work, &lwork, iwork, &liwork, &info);
    free(work), free(iwork);
    if (info != 0) return dg_fail(err, "LAPACK dsyevd failed (info %d): the covariance has NaN or Inf?", (int)info);
    return 0;
}

int nn_frechet(double *fid, const double *mu1, const double *s1, const double *mu2, const double *s2, int d,
               dg_err *err) {
    size_t dd = (size_t)d * d;
    double *v = malloc(dd * sizeof *v), *t = malloc(dd * sizeof *t), *m = malloc(dd * sizeof *m),
           *w = malloc((size_t)d * sizeof *w);
    int rc = -1;
    blas_threads bt = blas_one_thread();
    if (!v || !t || !m || !w) {
        dg_fail(err, "out of memory (Fréchet distance of dimension %d)", d);
        goto done;
    }
    /* s1 = V diag(l) V^T. Covariances are positive semi-definite; rounding can still give eigenvalues a little
     * below 0 (-1e-16 of the largest, more for a rank-deficient s1, e.g. fewer rows than dimensions). Those are
     * zeros, clamped so their square roots exist. */
    memcpy(v, s1, dd * sizeof *v);
    if (sym_eig(v, w, d, 1, err) != 0) goto done;
    /* W = V diag(sqrt l) (column-major). W^T s2 W = sqrt(L) V^T s2 V sqrt(L) is similar (by V) to
     * s1^(1/2) s2 s1^(1/2), whose eigenvalues are those of s1 s2. */
    for (int j = 0; j < d; j++) {
        double r = sqrt(w[j] > 0 ? w[j] : 0.0);
        for (int i = 0; i < d; i++) v[(size_t)j * d + i] *= r;
    }
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, s2, d, v, d, 0.0, t, d);
    cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, d, d, d, 1.0, v, d, t, d, 0.0, m, d);
    for (int i = 0; i < d; i++) /* symmetric in exact arithmetic; make it so in rounding too */
        for (int j = 0; j < i; j++) {
            double a = 0.5 * (m[(size_t)i * d + j] + m[(size_t)j * d + i]);
            m[(size_t)i * d + j] = m[(size_t)j * d + i] = a;
        }
    if (sym_eig(m, w, d, 0, err) != 0) goto done;
    double tr_sqrt = 0, tr = 0, dmu = 0;
    for (int j = 0; j < d; j++) tr_sqrt += sqrt(w[j] > 0 ? w[j] : 0.0); /* the same clamp, for s1 s2 */
    for (int j = 0; j < d; j++) {
        tr += s1[(size_t)j * d + j] + s2[(size_t)j * d + j];
        dmu += (mu1[j] - mu2[j]) * (mu1[j] - mu2[j]);
    }
    /* A squared distance: for two equal distributions rounding leaves it a hair either side of 0 (-1e-13 would
     * print as -0.0000); below 0 is rounding only, so 0. */
    *fid = fmax(0.0, dmu + tr - 2.0 * tr_sqrt);
    rc = 0;
done:
    blas_restore(bt);
    free(v), free(t), free(m), free(w);
    return rc;
}

double nn_mean_pairwise_dist(const double *x, size_t n, int d) {
    if (n < 2) return 0.0;
    double *row = malloc(n * sizeof *row); /* row i's sum over j > i, added up in order: the same for any threads */
    if (!row) return NAN;
#pragma omp parallel for schedule(dynamic, 16)
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = i + 1; j < n; j++) {
            double q = 0;
            for (int k = 0; k < d; k++) {
                double e = x[i * (size_t)d + k] - x[j * (size_t)d + k];
                q += e * e;
            }
            s += sqrt(q);
        }
        row[i] = s;
    }
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += row[i];
    free(row);
    return sum / ((double)n * (double)(n - 1) / 2.0);
}

/* ---- the measures ---- */

/* The rows of x (n, d) whose label is c, copied into out (at most max rows); returns how many. */
static size_t rows_of(double *out, const double *x, const uint8_t *lab, size_t n, int d, int c, size_t max) {
    size_t k = 0;
    for (size_t i = 0; i < n && k < max; i++)
        if (lab[i] == c) memcpy(out + k++ * (size_t)d, x + i * (size_t)d, (size_t)d * sizeof *out);
    return k;
}

/* The Fréchet distance of two sets of rows (n >= 2 each). */
static int fid_of(double *fid, const double *a, size_t na, const double *b, size_t nb, int d, dg_err *err) {
    size_t dd = (size_t)d * d;
    double *mu1 = malloc((size_t)d * sizeof(double)), *mu2 = malloc((size_t)d * sizeof(double)),
           *s1 = malloc(dd * sizeof(double)), *s2 = malloc(dd * sizeof(double));
    int rc = -1;
    if (!mu1 || !mu2 || !s1 || !s2)
        dg_fail(err, "out of memory (covariances of dimension %d)", d);
    else if (nn_gauss_fit(mu1, s1, a, na, d, err) == 0 && nn_gauss_fit(mu2, s2, b, nb, d, err) == 0)
        rc = nn_frechet(fid, mu1, s1, mu2, s2, d, err);
    free(mu1), free(mu2), free(s1), free(s2);
    return rc;
}

int nn_judge_measure(nn_judge_result *r, const double *gen, const uint8_t *gl, const uint8_t *gp, size_t n_gen,
                     const double *real, const uint8_t *rl, const uint8_t *rp, size_t n_real, int d, dg_err *err) {
    memset(r, 0, sizeof *r);
    r->n_gen = n_gen, r->n_real = n_real, r->dim = d;
    for (size_t i = 0; i < n_gen; i++)
        if (gl[i] > 9 || gp[i] > 9) return dg_fail(err, "generated digit %zu: label %d, prediction %d", i, gl[i], gp[i]);
    for (size_t i = 0; i < n_real; i++)
        if (rl[i] > 9 || rp[i] > 9) return dg_fail(err, "real digit %zu: label %d, prediction %d", i, rl[i], rp[i]);
    size_t ok_gen = 0, ok_real = 0, real_ok_c[10] = {0};
    for (size_t i = 0; i < n_gen; i++) {
        r->cls[gl[i]].n_gen++;
        if (gp[i] == gl[i]) r->cls[gl[i]].n_correct++, ok_gen++;
    }
    for (size_t i = 0; i < n_real; i++) {
        r->cls[rl[i]].n_real++;
        if (rp[i] == rl[i]) real_ok_c[rl[i]]++, ok_real++;
    }
    r->cond_acc = n_gen ? (double)ok_gen / (double)n_gen : NAN;
    r->real_acc = n_real ? (double)ok_real / (double)n_real : NAN;
    if (n_gen < 2 || n_real < 2) return dg_fail(err, "the digits-FID needs at least 2 generated and 2 real digits");
    if (fid_of(&r->fid, gen, n_gen, real, n_real, d, err) != 0) return -1;

    size_t most = 0;
    for (int c = 0; c < 10; c++) {
        if (r->cls[c].n_gen > most) most = r->cls[c].n_gen;
        if (r->cls[c].n_real > most) most = r->cls[c].n_real;
    }
    double *a = malloc((most ? most : 1) * (size_t)d * sizeof *a), *b = malloc((most ? most : 1) * (size_t)d * sizeof *b);
    if (!a || !b) {
        free(a), free(b);
        return dg_fail(err, "out of memory (features of one class)");
    }
    r->min_diversity = NAN, r->min_diversity_class = -1;
    int rc = 0;
    for (int c = 0; c < 10 && rc == 0; c++) {
        nn_judge_class *k = &r->cls[c];
        k->cond_acc = k->n_gen ? (double)k->n_correct / (double)k->n_gen : NAN;
        k->real_acc = k->n_real ? (double)real_ok_c[c] / (double)k->n_real : NAN;
        k->fid = k->dist_gen = k->dist_real = k->diversity = NAN;
        size_t na = rows_of(a, gen, gl, n_gen, d, c, most), nb = rows_of(b, real, rl, n_real, d, c, most);
        if (na >= 2 && nb >= 2) rc = fid_of(&k->fid, a, na, b, nb, d, err);
        if (na >= 2) k->dist_gen = nn_mean_pairwise_dist(a, na < NN_JUDGE_DIV_MAX ? na : NN_JUDGE_DIV_MAX, d);
        if (nb >= 2) k->dist_real = nn_mean_pairwise_dist(b, nb < NN_JUDGE_DIV_MAX ? nb : NN_JUDGE_DIV_MAX, d);
        if (na >= 2 && nb >= 2 && k->dist_real > 0) k->diversity = k->dist_gen / k->dist_real;
        if (!isnan(k->diversity) && (isnan(r->min_diversity) || k->diversity < r->min_diversity))
            r->min_diversity = k->diversity, r->min_diversity_class = c;
    }
    free(a), free(b);
    return rc;
}

static int last_dense(const nn_net *net) {
    const nn_spec *s = nn_net_spec(net);
    int k = -1;
    for (int i = 0; i < s->n_layers; i++)
        if (s->layers[i].kind == NN_DENSE) k = i;
    return k;
}

int nn_judge_features(nn_net *net, const uint8_t *const *images, size_t n, double **feats, int *d, uint8_t *preds,
                      dg_err *err) {
    *feats = NULL, *d = 0;
    int layer = last_dense(net), mb = nn_net_max_batch(net);
    if (layer < 0)
        return dg_fail(err, "%s: the classifier has no dense layer, so no penultimate features (the input of its "
                            "final dense layer)", nn_net_spec(net)->file);
    float *x = malloc((size_t)mb * DG_PIXELS * sizeof *x);
    if (!x) return dg_fail(err, "out of memory");
    int rc = 0;
    for (size_t i0 = 0; i0 < n && rc == 0; i0 += (size_t)mb) {
        int b = (int)(n - i0 < (size_t)mb ? n - i0 : (size_t)mb);
        for (int j = 0; j < b; j++)
            for (int p = 0; p < DG_PIXELS; p++) x[(size_t)j * DG_PIXELS + p] = (float)images[i0 + j][p] / 255.0f;
        const float *logits = nn_net_forward(net, x, b, 0, 0, 0);
        size_t dim;
        const float *f = logits ? nn_net_layer_input(net, layer, &dim) : NULL;
        if (!f) {
            rc = dg_fail(err, "the classifier's forward pass failed");
            break;
        }
        if (!*feats) {
            *d = (int)dim;
            if (!(*feats = malloc((n ? n : 1) * dim * sizeof **feats))) {
                rc = dg_fail(err, "out of memory (%zu x %zu features)", n, dim);
                break;
            }
        }
        for (size_t k = 0; k < (size_t)b * dim; k++) (*feats)[i0 * dim + k] = f[k];
        for (int j = 0; j < b; j++) {
            int best = 0;
            for (int c = 1; c < 10; c++)
                if (logits[j * 10 + c] > logits[j * 10 + best]) best = c;
            preds[i0 + (size_t)j] = (uint8_t)best;
        }
    }
    free(x);
    if (rc != 0) free(*feats), *feats = NULL;
    return rc;
}

/* ---- the stage ---- */

/* The model file of a --classifier argument, or a clear refusal of what it is instead. */
static int classifier_path(const char *arg, char *out, size_t cap, dg_err *err) {
    struct stat st;
    if (stat(arg, &st) != 0) return dg_fail_errno(err, "%s: cannot open the classifier", arg);
    if (S_ISDIR(st.st_mode)) {
        snprintf(out, cap, "%s/model.safetensors", arg);
        if (dg_path_exists(out)) return 0;
        char other[4200];
        snprintf(other, sizeof other, "%s/gan.ckpt", arg);
        if (dg_path_exists(other))
            return dg_fail(err, "%s: a digits-gan run (gan.ckpt), not a classifier; the judge is a digits-train run",
                           arg);
        snprintf(other, sizeof other, "%s/checkpoint.ckpt", arg);
        if (dg_path_exists(other))
            return dg_fail(err, "%s: a digits-train run that has not finished (no model.safetensors yet)", arg);
        return dg_fail(err, "%s: not a digits-train run directory (no model.safetensors)", arg);
    }
    snprintf(out, cap, "%s", arg);
    FILE *fp = fopen(arg, "rb");
    char magic[8] = {0};
    if (fp) {
        size_t k = fread(magic, 1, sizeof magic, fp);
        fclose(fp);
        if (k == sizeof magic && memcmp(magic, "DIGITCKP", 8) == 0) {
            nn_ckpt c;
            memset(&c, 0, sizeof c);
            dg_err e2;
            int gan = nn_ckpt_load(arg, &c, &e2) == 0 && c.spec_text && !strncmp(c.spec_text, "[generator]", 11);
            nn_ckpt_free(&c);
            return gan ? dg_fail(err, "%s: a digits-gan checkpoint, not a classifier model", arg)
                       : dg_fail(err, "%s: a training checkpoint, not a model (give the finished run's directory "
                                      "or its model.safetensors)", arg);
        }
    }
    return 0;
}

/* The hold-out the classifier was trained without: the model's "val_split" metadata ("val-frac F split-seed S" or
 * "fold K/N split-seed S"), checked against the options given, or the options (defaults 0.1, 1) for a model that
 * does not record it. Checks the model's "train_rows" against the dataset. */
static int real_split(nn_split *sp, char *desc, size_t cap, const nn_judge_opts *o, const char *model,
                      const uint8_t *labels, size_t n, dg_err *err) {
    char *vs = NULL, *rows = NULL;
    if (nn_model_meta(model, "val_split", &vs, err) != 0 || nn_model_meta(model, "train_rows", &rows, err) != 0) {
        free(vs);
        return -1;
    }
    double frac = o->val_frac_set ? o->val_frac : 0.1;
    unsigned long long seed = o->split_seed_set ? o->split_seed : 1;
    int fold = 0, folds = 0, rc = 0;
    if (vs) {
        double mf;
        unsigned long long ms;
        char tail;
        if (sscanf(vs, "val-frac %lf split-seed %llu %c", &mf, &ms, &tail) == 2) {
            if ((o->val_frac_set && o->val_frac != mf) || (o->split_seed_set && o->split_seed != ms)) {
                char given[96] = "";
                if (o->val_frac_set) snprintf(given, sizeof given, "--val-frac %g", o->val_frac);
                if (o->split_seed_set)
                    snprintf(given + strlen(given), sizeof given - strlen(given), "%s--split-seed %llu",
                             given[0] ? " " : "", (unsigned long long)o->split_seed);
                rc = dg_fail(err, "%s was trained with the hold-out 'val-frac %g split-seed %llu', not %s: the judge "
                                  "would see digits it trained on", model, mf, ms, given);
            }
            frac = mf, seed = ms;
        } else if (sscanf(vs, "fold %d/%d split-seed %llu %c", &fold, &folds, &ms, &tail) == 3) {
            if (o->val_frac_set || (o->split_seed_set && o->split_seed != ms))
                rc = dg_fail(err, "%s was trained on the split '%s'; --val-frac/--split-seed do not name it", model, vs);
            seed = ms;
        } else {
            rc = dg_fail(err, "%s: unknown val_split metadata '%s'", model, vs);
        }
    }
    if (rc == 0) {
        rc = folds ? nn_split_kfold(sp, labels, n, DG_CLASSES, folds, fold, seed, err)
                   : nn_split_holdout(sp, labels, n, DG_CLASSES, frac, seed, err);
        if (folds) snprintf(desc, cap, "fold %d/%d split-seed %llu", fold, folds, seed);
        else snprintf(desc, cap, "val-frac %g split-seed %llu", frac, seed);
    }
    if (rc == 0 && rows && strtoull(rows, NULL, 10) != sp->n_train)
        rc = dg_fail(err, "%s was trained on %s rows, but its split of %s leaves %zu: not the dataset it was "
                          "trained on", model, rows, o->real, sp->n_train);
    if (rc == 0 && !vs && o->report)
        fprintf(o->report, "note: %s does not record its hold-out; using %s\n", model, desc);
    free(vs), free(rows);
    return rc;
}

static void add_num(cJSON *o, const char *key, double v) {
    if (isnan(v)) cJSON_AddNullToObject(o, key);
    else cJSON_AddNumberToObject(o, key, v);
}

static char *result_json(const nn_judge_result *r, const nn_judge_opts *o, const char *model, const char *split,
                         int layer) {
    cJSON *j = cJSON_CreateObject(), *pc = cJSON_CreateArray();
    if (!j || !pc) {
        cJSON_Delete(j), cJSON_Delete(pc);
        return NULL;
    }
    cJSON_AddStringToObject(j, "samples", o->samples);
    cJSON_AddStringToObject(j, "classifier", model);
    cJSON_AddStringToObject(j, "real", o->real);
    cJSON_AddStringToObject(j, "split", split);
    cJSON_AddNumberToObject(j, "n_generated", (double)r->n_gen);
    cJSON_AddNumberToObject(j, "n_real", (double)r->n_real);
    cJSON_AddNumberToObject(j, "feature_dim", r->dim);
    cJSON_AddNumberToObject(j, "feature_layer", layer);
    add_num(j, "cond_accuracy", r->cond_acc);
    add_num(j, "real_accuracy", r->real_acc);
    add_num(j, "fid", r->fid);
    add_num(j, "min_diversity", r->min_diversity);
    if (r->min_diversity_class >= 0) cJSON_AddNumberToObject(j, "min_diversity_label", r->min_diversity_class);
    else cJSON_AddNullToObject(j, "min_diversity_label");
    cJSON_AddNumberToObject(j, "diversity_max_per_class", NN_JUDGE_DIV_MAX);
    for (int c = 0; c < 10; c++) {
        const nn_judge_class *k = &r->cls[c];
        cJSON *e = cJSON_CreateObject();
        if (!e) continue;
        cJSON_AddNumberToObject(e, "label", c);
        cJSON_AddNumberToObject(e, "n_generated", (double)k->n_gen);
        cJSON_AddNumberToObject(e, "n_real", (double)k->n_real);
        add_num(e, "cond_accuracy", k->cond_acc);
        add_num(e, "real_accuracy", k->real_acc);
        add_num(e, "fid", k->fid);
        add_num(e, "dist_generated", k->dist_gen);
        add_num(e, "dist_real", k->dist_real);
        add_num(e, "diversity", k->diversity);
        cJSON_AddItemToArray(pc, e);
    }
    cJSON_AddItemToObject(j, "per_class", pc);
    char *s = cJSON_Print(j);
    cJSON_Delete(j);
    return s;
}

static void cell(FILE *f, const char *fmt, double v, int width) {
    if (isnan(v)) fprintf(f, "%*s", width, "-");
    else fprintf(f, fmt, width, v);
}

static void report(FILE *f, const nn_judge_result *r, const nn_judge_opts *o, const char *model, const char *split,
                   int layer) {
    fprintf(f, "%zu generated digits of %s against %zu held-out real digits of %s (%s)\n", r->n_gen, o->samples,
            r->n_real, o->real, split);
    fprintf(f, "judge %s: features are the %d inputs of layer %d (its final dense layer)\n", model, r->dim,
            layer + 1);
    fprintf(f, "conditional accuracy %.2f%%  (the judge on the real digits: %.2f%%)\n", 100 * r->cond_acc,
            100 * r->real_acc);
    fprintf(f, "digits-FID %.4f\n", r->fid);
    fprintf(f, "label  generated   real  cond.acc  real.acc        FID  diversity\n");
    for (int c = 0; c < 10; c++) {
        const nn_judge_class *k = &r->cls[c];
        fprintf(f, "%5d  %9zu  %5zu", c, k->n_gen, k->n_real);
        cell(f, "  %*.2f%%", 100 * k->cond_acc, 7);
        cell(f, "  %*.2f%%", 100 * k->real_acc, 7);
        cell(f, "  %*.4f", k->fid, 9);
        cell(f, "  %*.3f", k->diversity, 9);
        fputc('\n', f);
    }
    if (r->min_diversity_class >= 0)
        fprintf(f, "lowest diversity %.3f (label %d); 1 = as diverse as the real digits, 0 = one image repeated\n",
                r->min_diversity, r->min_diversity_class);
}

int nn_judge(const nn_judge_opts *o, nn_judge_result *r, dg_err *err) {
    memset(r, 0, sizeof *r);
    if (o->n < 2) return dg_fail(err, "n %ld: the judge needs at least 2 digits a side", o->n);
    char model[4096];
    dg_dataset gen, real;
    memset(&gen, 0, sizeof gen), memset(&real, 0, sizeof real);
    nn_net *net = NULL;
    nn_split sp;
    memset(&sp, 0, sizeof sp);
    dg_afile jf;
    memset(&jf, 0, sizeof jf);
    uint8_t *rlab_all = NULL, *gl = NULL, *gp = NULL, *rl = NULL, *rp = NULL;
    const uint8_t **img = NULL;
    double *gf = NULL, *rf = NULL;
    char *js = NULL, split[96] = "";
    int rc = -1, dg = 0, dr = 0;

    if (dg_dataset_open(&gen, o->samples, err) != 0) goto done;
    if (!gen.has_labels) {
        dg_fail(err, "%s: an unlabelled dataset; the judge needs the label each digit was generated for", o->samples);
        goto done;
    }
    if (gen.n < 2) {
        dg_fail(err, "%s: %zu digits; the judge needs at least 2", o->samples, gen.n);
        goto done;
    }
    if (classifier_path(o->classifier, model, sizeof model, err) != 0) goto done;
    if (nn_model_load(model, JUDGE_BATCH, &net, err) != 0) {
        dg_err_prefix(err, "not a usable classifier");
        goto done;
    }
    const nn_spec *s = nn_net_spec(net);
    if (s->output != NN_OUT_CLASSES || s->in_c != 1 || s->in_h != DG_SIDE || s->in_w != DG_SIDE) {
        dg_fail(err, "%s: not a digit classifier (it must take 1x28x28 images and give 10 classes)", model);
        goto done;
    }
    if (dg_dataset_open(&real, o->real, err) != 0) goto done;
    if (!real.has_labels) {
        dg_fail(err, "%s: an unlabelled dataset; the real digits come from the labelled set the classifier trained on",
                o->real);
        goto done;
    }
    if (!(rlab_all = malloc(real.n ? real.n : 1))) {
        dg_fail(err, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < real.n; i++) rlab_all[i] = (uint8_t)dg_dataset_label(&real, i);
    if (real_split(&sp, split, sizeof split, o, model, rlab_all, real.n, err) != 0) goto done;
    if (o->json && dg_afile_open(&jf, o->json, err) != 0) goto done; /* a bad output path fails before the work */

    size_t ng = gen.n < (size_t)o->n ? gen.n : (size_t)o->n, nr = sp.n_val < (size_t)o->n ? sp.n_val : (size_t)o->n;
    if (nr < 2) {
        dg_fail(err, "%s: the hold-out %s has %zu digits; the judge needs at least 2", o->real, split, sp.n_val);
        goto done;
    }
    size_t most = ng > nr ? ng : nr;
    gl = malloc(ng), gp = malloc(ng), rl = malloc(nr), rp = malloc(nr), img = malloc(most * sizeof *img);
    if (!gl || !gp || !rl || !rp || !img) {
        dg_fail(err, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < ng; i++) img[i] = dg_dataset_image(&gen, i), gl[i] = (uint8_t)dg_dataset_label(&gen, i);
    if (nn_judge_features(net, img, ng, &gf, &dg, gp, err) != 0) goto done;
    for (size_t i = 0; i < nr; i++) img[i] = dg_dataset_image(&real, sp.val[i]), rl[i] = rlab_all[sp.val[i]];
    if (nn_judge_features(net, img, nr, &rf, &dr, rp, err) != 0) goto done;
    if (nn_judge_measure(r, gf, gl, gp, ng, rf, rl, rp, nr, dg, err) != 0) goto done;
    int layer = last_dense(net);
    if (o->report) report(o->report, r, o, model, split, layer);
    if (o->json) {
        if (!(js = result_json(r, o, model, split, layer))) {
            dg_fail(err, "out of memory");
            goto done;
        }
        size_t len = strlen(js);
        if (fwrite(js, 1, len, jf.fp) != len || fputc('\n', jf.fp) == EOF) {
            dg_fail_errno(err, "%s: cannot write", o->json);
            goto done;
        }
        if (dg_afile_commit(&jf, err) != 0) goto done;
    }
    rc = 0;
done:
    if (rc != 0) dg_afile_abort(&jf);
    dg_dataset_close(&gen), dg_dataset_close(&real);
    nn_net_free(net);
    nn_split_free(&sp);
    free(rlab_all), free(gl), free(gp), free(rl), free(rp), free(img), free(gf), free(rf);
    cJSON_free(js);
    return rc;
}
