/* kaggle/ensemble: votes, weight fitting and validation estimates (see ensemble.h). */
#include "kaggle/ensemble.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dg_npy.h"

#define KG_P_FLOOR 1e-7

int kg_probs_check(const float *p, size_t n, const char *name, dg_err *err) {
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < KG_CLASSES; k++) {
            float v = p[i * KG_CLASSES + k];
            if (!isfinite(v))
                return dg_fail(err, "%s: row %zu, class %d is %s; expected a probability", name, i, k,
                               isnan(v) ? "NaN" : "infinite");
            if (v < -1e-6f || v > 1 + 1e-6f)
                return dg_fail(err, "%s: row %zu, class %d is %g; expected a probability in [0, 1]", name, i, k,
                               (double)v);
            s += v;
        }
        if (fabs(s - 1) > KG_ROW_SUM_TOL)
            return dg_fail(err, "%s: row %zu sums to %.6f; expected probabilities summing to 1 (softmax outputs)",
                           name, i, s);
    }
    return 0;
}

int kg_probs_load(const char *path, float **p, size_t *n, dg_err *err) {
    *p = NULL;
    *n = 0;
    dg_npy_file f;
    if (dg_npy_open(&f, path, 0, err) != 0) return -1;
    if (!dg_npy_is(&f.h, "<f4") || f.h.fortran_order || f.h.ndim != 2 || f.h.shape[1] != KG_CLASSES) {
        char shape[64] = "";
        int k = 0;
        for (int i = 0; i < f.h.ndim && k < (int)sizeof shape - 24; i++)
            k += snprintf(shape + k, sizeof shape - (size_t)k, "%s%zu", i ? ", " : "", f.h.shape[i]);
        dg_fail(err, "%s: array %s (%s); expected class probabilities, float32 (N, 10)", path, f.h.descr, shape);
        dg_npy_close(&f);
        return -1;
    }
    size_t rows = f.h.shape[0];
    if (f.map.size - f.h.data_offset != rows * KG_CLASSES * sizeof(float)) {
        dg_npy_close(&f);
        return dg_fail(err, "%s: data size does not match its shape (truncated?)", path);
    }
    if (rows == 0) {
        dg_npy_close(&f);
        return dg_fail(err, "%s: no rows", path);
    }
    float *buf = malloc(rows * KG_CLASSES * sizeof(float));
    if (!buf) {
        dg_npy_close(&f);
        return dg_fail(err, "%s: out of memory", path);
    }
    memcpy(buf, f.data, rows * KG_CLASSES * sizeof(float));
    dg_npy_close(&f);
    if (kg_probs_check(buf, rows, path, err) != 0) {
        free(buf);
        return -1;
    }
    *p = buf;
    *n = rows;
    return 0;
}

static int argmax10(const float *row) {
    int best = 0;
    for (int k = 1; k < KG_CLASSES; k++)
        if (row[k] > row[best]) best = k;
    return best;
}

void kg_argmax(uint8_t *labels, const float *p, size_t n) {
    for (size_t i = 0; i < n; i++) labels[i] = (uint8_t)argmax10(p + i * KG_CLASSES);
}

double kg_accuracy(const float *p, const uint8_t *y, size_t n) {
    if (n == 0) return 0;
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) ok += argmax10(p + i * KG_CLASSES) == y[i];
    return (double)ok / (double)n;
}

double kg_log_likelihood(const float *p, const uint8_t *y, size_t n) {
    if (n == 0) return 0;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += log(fmax(p[i * KG_CLASSES + y[i]], KG_P_FLOOR));
    return s / (double)n;
}

void kg_soft_vote(float *out, const float *const *members, const double *w, int m, size_t n) {
    double wsum = 0;
    for (int j = 0; j < m; j++) wsum += w ? w[j] : 1.0;
    for (size_t i = 0; i < n * KG_CLASSES; i++) {
        double s = 0;
        for (int j = 0; j < m; j++) s += (w ? w[j] : 1.0) * members[j][i];
        out[i] = (float)(s / wsum);
    }
}

void kg_hard_vote(uint8_t *labels, const float *const *members, const double *w, int m, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double votes[KG_CLASSES] = {0}, mass[KG_CLASSES] = {0};
        for (int j = 0; j < m; j++) {
            const float *row = members[j] + i * KG_CLASSES;
            votes[argmax10(row)] += w ? w[j] : 1.0;
            for (int k = 0; k < KG_CLASSES; k++) mass[k] += (w ? w[j] : 1.0) * row[k];
        }
        int best = 0;
        for (int k = 1; k < KG_CLASSES; k++)
            if (votes[k] > votes[best] || (votes[k] == votes[best] && mass[k] > mass[best])) best = k;
        labels[i] = (uint8_t)best;
    }
}

int kg_fit_weights(double *w, const float *const *val, int m, size_t n, const uint8_t *y, int iters, dg_err *err) {
    if (m < 1) return dg_fail(err, "weight fitting: no members");
    if (n == 0) return dg_fail(err, "weight fitting: no validation rows shared by all members");
    if (iters <= 0) iters = 1000;
    /* q[j][i] = member j's probability of the true label of row i, floored. */
    double *q = malloc((size_t)m * n * sizeof(double));
    double *nw = malloc((size_t)m * sizeof(double));
    if (!q || !nw) {
        free(q);
        free(nw);
        return dg_fail(err, "weight fitting: out of memory");
    }
    for (int j = 0; j < m; j++)
        for (size_t i = 0; i < n; i++) q[(size_t)j * n + i] = fmax(val[j][i * KG_CLASSES + y[i]], KG_P_FLOOR);
    for (int j = 0; j < m; j++) w[j] = 1.0 / m;
    for (int it = 0; it < iters; it++) {
        for (int j = 0; j < m; j++) nw[j] = 0;
        for (size_t i = 0; i < n; i++) {
            double mix = 0;
            for (int j = 0; j < m; j++) mix += w[j] * q[(size_t)j * n + i];
            for (int j = 0; j < m; j++) nw[j] += w[j] * q[(size_t)j * n + i] / mix;
        }
        double moved = 0, s = 0;
        for (int j = 0; j < m; j++) s += nw[j];
        for (int j = 0; j < m; j++) {
            double v = nw[j] / s;
            moved = fmax(moved, fabs(v - w[j]));
            w[j] = v;
        }
        if (moved <= 1e-9) break;
    }
    free(q);
    free(nw);
    return 0;
}

double kg_fit_cv_accuracy(const float *const *val, int m, size_t n, const uint8_t *y) {
    if (n < 2 || m < 1) return -1;
    size_t half[2] = {(n + 1) / 2, n / 2};
    float *buf = malloc((size_t)m * half[0] * KG_CLASSES * sizeof(float));
    const float **sub = malloc((size_t)m * sizeof *sub);
    uint8_t *ys = malloc(half[0]);
    double *w = malloc((size_t)m * sizeof(double));
    float *mix = malloc(KG_CLASSES * sizeof(float));
    size_t ok = 0;
    int fail = !buf || !sub || !ys || !w || !mix;
    for (int part = 0; part < 2 && !fail; part++) {
        /* fit on rows i with i % 2 == part, score rows with i % 2 != part */
        for (int j = 0; j < m; j++) {
            float *dst = buf + (size_t)j * half[0] * KG_CLASSES;
            for (size_t i = (size_t)part, k = 0; i < n; i += 2, k++) {
                memcpy(dst + k * KG_CLASSES, val[j] + i * KG_CLASSES, KG_CLASSES * sizeof(float));
                ys[k] = y[i];
            }
            sub[j] = dst;
        }
        if (kg_fit_weights(w, sub, m, half[part], ys, 0, NULL) != 0) {
            fail = 1;
            break;
        }
        for (size_t i = (size_t)(1 - part); i < n; i += 2) {
            for (int k = 0; k < KG_CLASSES; k++) mix[k] = 0;
            for (int j = 0; j < m; j++)
                for (int k = 0; k < KG_CLASSES; k++) mix[k] += (float)w[j] * val[j][i * KG_CLASSES + k];
            ok += argmax10(mix) == y[i];
        }
    }
    free(buf);
    free(sub);
    free(ys);
    free(w);
    free(mix);
    return fail ? -1 : (double)ok / (double)n;
}

/* map[j][r] = row of member j's pred for train row r, or -1. One allocation of m * n_train entries. */
static int32_t *member_maps(const kg_member_val *mv, int m, size_t n_train, dg_err *err) {
    int32_t *map = malloc((size_t)m * n_train * sizeof(int32_t));
    if (!map) {
        dg_fail(err, "validation rows: out of memory");
        return NULL;
    }
    memset(map, 0xff, (size_t)m * n_train * sizeof(int32_t));
    for (int j = 0; j < m; j++) {
        int32_t *mj = map + (size_t)j * n_train;
        for (size_t k = 0; k < mv[j].nv; k++) {
            int64_t id = mv[j].ids[k];
            if (id < 0 || (uint64_t)id >= n_train) {
                free(map);
                dg_fail(err, "member %d: validation id %lld at row %zu is outside the train set (0..%zu)", j + 1,
                        (long long)id, k, n_train - 1);
                return NULL;
            }
            if (mj[id] >= 0) {
                dg_fail(err, "member %d: validation id %lld appears twice (rows %d and %zu)", j + 1, (long long)id,
                        mj[id], k);
                free(map);
                return NULL;
            }
            mj[id] = (int32_t)k;
        }
    }
    return map;
}

int kg_shared_rows(int64_t **ids, size_t **rows, size_t *ns, const kg_member_val *mv, int m, size_t n_train,
                   dg_err *err) {
    *ids = NULL;
    *ns = 0;
    for (int j = 0; j < m; j++) rows[j] = NULL;
    int32_t *map = member_maps(mv, m, n_train, err);
    if (!map) return -1;
    size_t cnt = 0;
    for (size_t r = 0; r < n_train; r++) {
        int all = 1;
        for (int j = 0; j < m && all; j++) all = map[(size_t)j * n_train + r] >= 0;
        cnt += (size_t)all;
    }
    *ids = malloc((cnt ? cnt : 1) * sizeof(int64_t));
    int fail = !*ids;
    for (int j = 0; j < m && !fail; j++) fail = !(rows[j] = malloc((cnt ? cnt : 1) * sizeof(size_t)));
    if (fail) {
        free(map);
        free(*ids);
        *ids = NULL;
        for (int j = 0; j < m; j++) {
            free(rows[j]);
            rows[j] = NULL;
        }
        return dg_fail(err, "validation rows: out of memory");
    }
    size_t k = 0;
    for (size_t r = 0; r < n_train; r++) {
        int all = 1;
        for (int j = 0; j < m && all; j++) all = map[(size_t)j * n_train + r] >= 0;
        if (!all) continue;
        (*ids)[k] = (int64_t)r;
        for (int j = 0; j < m; j++) rows[j][k] = (size_t)map[(size_t)j * n_train + r];
        k++;
    }
    *ns = cnt;
    free(map);
    return 0;
}

void kg_gather(float *out, const kg_member_val *mv, const size_t *rows, size_t ns) {
    for (size_t k = 0; k < ns; k++)
        memcpy(out + k * KG_CLASSES, mv->pred + rows[k] * KG_CLASSES, KG_CLASSES * sizeof(float));
}

/* Negative log of a probability, floored at 1e-12 so that a member certain of a wrong class costs ~27.6, not inf. */
static double nll(double p) { return -log(p > 1e-12 ? p : 1e-12); }

/* Label of one row from the members covering it (cover[j] = member j's pred row or -1); *p_label receives the
 * weighted mean probability the members give the true label y (the soft vote's, whatever the vote). */
static int vote_row(const kg_member_val *mv, const int32_t *cover, int m, const double *w, int hard, int y,
                    double *p_label) {
    double votes[KG_CLASSES] = {0}, mass[KG_CLASSES] = {0}, wsum = 0;
    for (int j = 0; j < m; j++) {
        if (cover[j] < 0) continue;
        const float *row = mv[j].pred + (size_t)cover[j] * KG_CLASSES;
        double wj = w ? w[j] : 1.0;
        votes[argmax10(row)] += wj;
        wsum += wj;
        for (int k = 0; k < KG_CLASSES; k++) mass[k] += wj * row[k];
    }
    *p_label = wsum > 0 ? mass[y] / wsum : 0;
    int best = 0;
    for (int k = 1; k < KG_CLASSES; k++) {
        if (hard ? (votes[k] > votes[best] || (votes[k] == votes[best] && mass[k] > mass[best])) : mass[k] > mass[best])
            best = k;
    }
    return best;
}

int kg_estimate_accuracy(kg_estimate *est, double *member_acc, const kg_member_val *mv, int m, const double *w,
                         int hard, const uint8_t *labels, size_t n_train, dg_err *err) {
    memset(est, 0, sizeof *est);
    est->shared_acc = est->shared_member_acc = est->oof_acc = est->ensemble_acc = est->gain = -1;
    est->mean_member_acc = est->best_member_acc = -1;
    est->ensemble_loss = est->mean_member_loss = -1;
    if (m < 1) return dg_fail(err, "estimate: no members");
    int32_t *map = member_maps(mv, m, n_train, err);
    if (!map) return -1;
    int32_t *cover = malloc((size_t)m * sizeof(int32_t));
    if (!cover) {
        free(map);
        return dg_fail(err, "estimate: out of memory");
    }
    double mean = 0, best = -1, mean_loss = 0;
    for (int j = 0; j < m; j++) {
        size_t ok = 0;
        double loss = 0;
        for (size_t k = 0; k < mv[j].nv; k++) {
            const float *row = mv[j].pred + k * KG_CLASSES;
            uint8_t y = labels[mv[j].ids[k]];
            ok += argmax10(row) == y;
            loss += nll(row[y]);
        }
        member_acc[j] = mv[j].nv ? (double)ok / (double)mv[j].nv : -1;
        mean += member_acc[j];
        mean_loss += mv[j].nv ? loss / (double)mv[j].nv : 0;
        best = fmax(best, member_acc[j]);
    }
    est->mean_member_acc = mean / m;
    est->mean_member_loss = mean_loss / m;
    est->best_member_acc = best;
    size_t ok_shared = 0, ok_union = 0;
    double member_ok_shared = 0, loss_shared = 0, loss_union = 0;
    for (size_t r = 0; r < n_train; r++) {
        int any = 0, all = 1;
        for (int j = 0; j < m; j++) {
            cover[j] = map[(size_t)j * n_train + r];
            any |= cover[j] >= 0;
            all &= cover[j] >= 0;
        }
        if (!any) continue;
        double p_label;
        int ok = vote_row(mv, cover, m, w, hard, labels[r], &p_label) == labels[r];
        est->union_rows++;
        ok_union += (size_t)ok;
        loss_union += nll(p_label);
        if (all) {
            est->shared_rows++;
            ok_shared += (size_t)ok;
            loss_shared += nll(p_label);
            for (int j = 0; j < m; j++)
                member_ok_shared += argmax10(mv[j].pred + (size_t)cover[j] * KG_CLASSES) == labels[r];
        }
    }
    free(map);
    free(cover);
    if (est->shared_rows) {
        est->shared_acc = (double)ok_shared / (double)est->shared_rows;
        est->shared_member_acc = member_ok_shared / ((double)est->shared_rows * m);
    }
    if (est->union_rows == 0) {
        est->mode = KG_EST_NONE;
    } else if (est->shared_rows == est->union_rows) {
        est->mode = KG_EST_SHARED;
        est->ensemble_acc = est->shared_acc;
        est->ensemble_loss = loss_shared / (double)est->shared_rows;
        est->gain = est->shared_acc - est->shared_member_acc;
    } else {
        est->mode = KG_EST_OOF;
        est->oof_acc = (double)ok_union / (double)est->union_rows;
        est->ensemble_acc = est->oof_acc;
        est->ensemble_loss = loss_union / (double)est->union_rows;
        est->gain = est->oof_acc - est->mean_member_acc;
    }
    return 0;
}
