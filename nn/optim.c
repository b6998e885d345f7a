/* nn/optim: SGD, momentum, Nesterov, Adam and AdamW on one flat vector (see nn/optim.h). */
#include "nn/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

nn_optim_range nn_optim_range_make(const nn_hyper *h, size_t offset, size_t count, int decay_flag, float layer_l2) {
    nn_optim_range r = {offset, count, 0.0f, 0.0f};
    if (!decay_flag) return r;
    r.l2 = layer_l2;
    if (h->optimizer == NN_ADAMW)
        r.decay = h->weight_decay;
    else
        r.l2 += h->weight_decay;
    return r;
}

static int cmp_range(const void *a, const void *b) {
    const nn_optim_range *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int nn_optim_init(nn_optim *o, const nn_hyper *h, size_t n, const nn_optim_range *ranges, int n_ranges,
                  dg_err *err) {
    memset(o, 0, sizeof *o);
    o->kind = h->optimizer;
    o->momentum = h->momentum;
    o->beta1 = h->beta1;
    o->beta2 = h->beta2;
    o->eps = h->adam_eps;
    o->n = n;
    nn_optim_range *sorted = malloc(((size_t)n_ranges + 1) * sizeof *sorted);
    /* At most one gap before each range and one after the last. */
    o->ranges = malloc(((size_t)n_ranges * 2 + 1) * sizeof *o->ranges);
    if (!sorted || !o->ranges) {
        free(sorted);
        nn_optim_free(o);
        return dg_fail(err, "optimizer: out of memory");
    }
    if (n_ranges) memcpy(sorted, ranges, (size_t)n_ranges * sizeof *sorted);
    qsort(sorted, (size_t)n_ranges, sizeof *sorted, cmp_range);
    size_t at = 0;
    for (int i = 0; i < n_ranges; i++) {
        const nn_optim_range *r = &sorted[i];
        if (r->offset < at || r->offset + r->count > n || r->count > n) {
            dg_fail(err, "optimizer: parameter range [%zu, %zu) overlaps another or leaves [0, %zu)", r->offset,
                    r->offset + r->count, n);
            free(sorted);
            nn_optim_free(o);
            return -1;
        }
        if (r->offset > at) o->ranges[o->n_ranges++] = (nn_optim_range){at, r->offset - at, 0.0f, 0.0f};
        if (r->count) o->ranges[o->n_ranges++] = *r;
        at = r->offset + r->count;
    }
    if (at < n) o->ranges[o->n_ranges++] = (nn_optim_range){at, n - at, 0.0f, 0.0f};
    free(sorted);
    switch (o->kind) {
    case NN_SGD: o->state_count = 0; break;
    case NN_MOMENTUM:
    case NN_NESTEROV: o->state_count = n; break;
    case NN_ADAM:
    case NN_ADAMW: o->state_count = 2 * n; break;
    }
    if (o->state_count) {
        o->state = calloc(o->state_count, sizeof *o->state);
        if (!o->state) {
            nn_optim_free(o);
            return dg_fail(err, "optimizer: out of memory for %zu floats of state", 2 * n);
        }
    }
    return 0;
}

void nn_optim_free(nn_optim *o) {
    free(o->state);
    free(o->ranges);
    o->state = NULL;
    o->ranges = NULL;
    o->n_ranges = 0;
}

/* Parallel only where a range is big enough to pay for it. */
#define PAR_MIN 32768

/* p (count), g (count), b (count) momentum buffer. */
static void step_sgd(float *restrict p, const float *restrict g, float *restrict b, size_t count, float lr,
                     float l2, float mu, int kind) {
    long n = (long)count;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (long i = 0; i < n; i++) {
        float gi = g[i] + l2 * p[i];
        if (kind == NN_SGD) {
            p[i] -= lr * gi;
        } else {
            float bi = mu * b[i] + gi;
            b[i] = bi;
            p[i] -= lr * (kind == NN_NESTEROV ? gi + mu * bi : bi);
        }
    }
}

/* p, g, m, v (count). step_size = lr / (1 - b1^t), bc2_sqrt = sqrt(1 - b2^t), shrink = 1 - lr * decay. */
static void step_adam(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, size_t count,
                      float l2, float shrink, float b1, float b2, float eps, float step_size, float bc2_sqrt) {
    long n = (long)count;
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (long i = 0; i < n; i++) {
        float pi = p[i] * shrink;
        float gi = g[i] + l2 * p[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi - step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
    }
}

void nn_optim_step(nn_optim *o, float *params, const float *grads, float lr) {
    o->t++;
    if (o->kind == NN_ADAM || o->kind == NN_ADAMW) {
        double bc1 = 1.0 - pow((double)o->beta1, (double)o->t);
        double bc2 = 1.0 - pow((double)o->beta2, (double)o->t);
        float step_size = (float)((double)lr / bc1), bc2_sqrt = (float)sqrt(bc2);
        float *m = o->state, *v = o->state + o->n;
        for (int r = 0; r < o->n_ranges; r++) {
            const nn_optim_range *rg = &o->ranges[r];
            size_t off = rg->offset;
            float shrink = o->kind == NN_ADAMW ? 1.0f - lr * rg->decay : 1.0f;
            step_adam(params + off, grads + off, m + off, v + off, rg->count, rg->l2, shrink, o->beta1, o->beta2,
                      o->eps, step_size, bc2_sqrt);
        }
        return;
    }
    for (int r = 0; r < o->n_ranges; r++) {
        const nn_optim_range *rg = &o->ranges[r];
        size_t off = rg->offset;
        step_sgd(params + off, grads + off, o->state ? o->state + off : NULL, rg->count, lr, rg->l2, o->momentum,
                 (int)o->kind);
    }
}
