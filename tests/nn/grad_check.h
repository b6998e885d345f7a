/* Helpers shared by the layer gradient tests (tests/nn/test_layers*.c): a float dot product accumulated in double,
 * and the central-difference check of an analytic gradient. Include after cmocka.h. */
#ifndef TESTS_NN_GRAD_CHECK_H
#define TESTS_NN_GRAD_CHECK_H

#include <math.h>
#include <omp.h>
#include <stddef.h>

/* Central differences with step FD_H; max |analytic - numeric| must be within FD_TOL of max |numeric|. */
#define FD_H 1e-2f
#define FD_TOL 1e-3

static inline double tu_dot(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* A scalar loss of the current parameters (runs a forward pass). */
typedef double (*loss_fn)(void *ctx);

/* Compare analytic (n) with central differences of f w.r.t. p (n). */
static inline void tu_check_grad(const char *what, float *p, const float *analytic, size_t n, loss_fn f, void *ctx) {
    double max_num = 0.0, max_err = 0.0, max_ana = 0.0;
    /* thousands of tiny forward passes: one thread (results do not depend on it, see test_net.c), so that a busy
     * machine does not turn every OpenMP barrier into a scheduler time slice */
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    for (size_t i = 0; i < n; i++) {
        float keep = p[i];
        p[i] = keep + FD_H;
        double lp = f(ctx);
        p[i] = keep - FD_H;
        double lm = f(ctx);
        p[i] = keep;
        double num = (lp - lm) / (2.0 * FD_H);
        double err = fabs(num - analytic[i]);
        if (fabs(num) > max_num) max_num = fabs(num);
        if (fabs(analytic[i]) > max_ana) max_ana = fabs(analytic[i]);
        if (err > max_err) max_err = err;
    }
    omp_set_num_threads(threads);
    if (!(max_err <= FD_TOL * max_num) || !(max_ana > 1e-3))
        fail_msg("%s: max |analytic - numeric| = %g, max |numeric| = %g, max |analytic| = %g", what, max_err,
                 max_num, max_ana);
}

#endif
