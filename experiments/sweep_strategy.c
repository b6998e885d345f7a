/* experiments/sweep_strategy: grid, random and ASHA decisions as pure functions of the results
 * (see sweep_strategy.h for the rule). */
#include "experiments/sweep_strategy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static size_t at(const sw_results *r, int c, int rep, int k) {
    return ((size_t)c * (size_t)r->n_reps + (size_t)rep) * (size_t)r->n_rungs + (size_t)k;
}

static int config_failed(const sw_results *r, int c) {
    for (int rep = 0; rep < r->n_reps; rep++)
        if (r->failed[(size_t)c * (size_t)r->n_reps + (size_t)rep]) return 1;
    return 0;
}

int sw_config_mean(const sw_results *r, int c, int k, double *mean, double *sd) {
    double s = 0, s2 = 0;
    for (int rep = 0; rep < r->n_reps; rep++) {
        if (!r->have[at(r, c, rep, k)]) return -1;
        s += r->val[at(r, c, rep, k)];
    }
    double m = s / r->n_reps;
    for (int rep = 0; rep < r->n_reps; rep++) {
        double d = r->val[at(r, c, rep, k)] - m;
        s2 += d * d;
    }
    *mean = m;
    *sd = r->n_reps > 1 ? sqrt(s2 / (r->n_reps - 1)) : 0;
    return 0;
}

/* Configuration c's score at rung k (higher is better): 1 and the score if known, 0 if not yet. A failed
 * configuration without a full result there scores -inf. */
static int score(const sw_results *r, int c, int k, double *out) {
    double m, sd;
    if (sw_config_mean(r, c, k, &m, &sd) == 0) {
        *out = r->maximize ? m : -m;
        return 1;
    }
    if (config_failed(r, c)) {
        *out = -INFINITY;
        return 1;
    }
    return 0;
}

typedef struct ranked {
    int c;
    double s;
} ranked;

/* Better first; ties: lower id. */
static int cmp_ranked(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return (x->c > y->c) - (x->c < y->c);
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int sw_decide(const sw_results *r, sw_decisions *d) {
    int n = r->n_configs, K = r->n_rungs;
    ranked *buf = malloc(((size_t)n + 1) * sizeof *buf);
    int *fresh = malloc(((size_t)n + 1) * sizeof *fresh);
    unsigned char *promoted = calloc((size_t)n + 1, 1);
    if (!buf || !fresh || !promoted) {
        free(buf);
        free(fresh);
        free(promoted);
        return -1;
    }
    for (int c = 0; c < n; c++) {
        d->target[c] = 0;
        d->order[c] = r->order0 ? r->order0[c] : c;
        d->state[c] = SW_OPEN;
    }
    d->n_order[0] = n;
    int final = 1; /* rung k's order is final (all of rung k-1 processed) */
    for (int k = 0; k + 1 < K; k++) {
        int *ord = d->order + (size_t)k * (size_t)n, *next = d->order + (size_t)(k + 1) * (size_t)n;
        int nn = 0, m = 0;
        memset(promoted, 0, (size_t)n);
        for (; m < d->n_order[k]; m++) {
            double s;
            if (!score(r, ord[m], k, &s)) break;
            buf[m].c = ord[m];
            buf[m].s = s;
            int top = (m + 1) / r->eta;
            if (top == 0) continue;
            /* the top floor((m + 1) / eta) of the first m + 1 (O(m log m) each: fine for thousands of trials) */
            ranked *tmp = malloc((size_t)(m + 1) * sizeof *tmp);
            if (!tmp) {
                free(buf);
                free(fresh);
                free(promoted);
                return -1;
            }
            memcpy(tmp, buf, (size_t)(m + 1) * sizeof *tmp);
            qsort(tmp, (size_t)(m + 1), sizeof *tmp, cmp_ranked);
            int nf = 0;
            for (int q = 0; q < top; q++)
                if (tmp[q].s > -INFINITY && !promoted[tmp[q].c]) fresh[nf++] = tmp[q].c;
            free(tmp);
            qsort(fresh, (size_t)nf, sizeof *fresh, cmp_int);
            for (int q = 0; q < nf; q++) {
                promoted[fresh[q]] = 1;
                next[nn++] = fresh[q];
                d->target[fresh[q]] = k + 1;
            }
        }
        d->n_order[k + 1] = nn;
        int processed = final && m == d->n_order[k];
        if (processed)
            for (int q = 0; q < d->n_order[k]; q++)
                if (!promoted[ord[q]]) d->state[ord[q]] = SW_PRUNED;
        final = processed;
    }
    for (int c = 0; c < n; c++) {
        double s;
        if (config_failed(r, c)) d->state[c] = SW_FAILED;
        else if (d->target[c] == K - 1 && score(r, c, K - 1, &s)) d->state[c] = SW_COMPLETE;
    }
    free(buf);
    free(fresh);
    free(promoted);
    return 0;
}

int sw_next_jobs(const sw_results *r, const sw_decisions *d, const unsigned char *running, sw_job *jobs, int max) {
    int nj = 0, n = r->n_configs;
    for (int k = r->n_rungs - 1; k >= 0 && nj < max; k--) {
        const int *ord = d->order + (size_t)k * (size_t)n;
        for (int i = 0; i < d->n_order[k] && nj < max; i++) {
            int c = ord[i];
            /* a failed configuration's other replicates still reach its target, so that what runs does not
               depend on when the failure arrived */
            if (d->target[c] != k || (d->state[c] != SW_OPEN && d->state[c] != SW_FAILED)) continue;
            for (int rep = 0; rep < r->n_reps && nj < max; rep++) {
                size_t t = (size_t)c * (size_t)r->n_reps + (size_t)rep;
                if (running[t] || r->failed[t] || r->have[at(r, c, rep, k)]) continue;
                jobs[nj].config = c;
                jobs[nj].rep = rep;
                jobs[nj].rung = k;
                nj++;
            }
        }
    }
    return nj;
}
