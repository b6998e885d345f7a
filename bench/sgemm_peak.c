/* sgemm_peak: the machine's single-precision GEMM throughput through OpenBLAS, the ceiling our training
 * kernels are measured against. Prints OpenBLAS's chosen kernel (core name), then GFLOPS for square and for
 * training-shaped GEMMs at the current thread count (OMP_NUM_THREADS).
 * usage: sgemm_peak [N (default 2048)] [repeats (default 5)] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/dg_cli.h"
#include "core/dg_progress.h"

char *openblas_get_corename(void);
int openblas_get_num_threads(void);

static double gflops(int m, int n, int k, int reps) {
    float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n);
    float *c = malloc(sizeof(float) * (size_t)m * n);
    if (!a || !b || !c) return 0;
    for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)(i % 17) * 0.01f;
    for (size_t i = 0; i < (size_t)k * n; i++) b[i] = (float)(i % 13) * 0.01f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n); /* warm up */
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = dg_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
        t = dg_now() - t;
        if (t < best) best = t;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * m * n * k / best * 1e-9;
}

int main(int argc, char **argv) {
    long n = 2048, reps = 5;
    if ((argc > 1 && dg_parse_long(argv[1], 16, 16384, &n) != 0) ||
        (argc > 2 && dg_parse_long(argv[2], 1, 1000, &reps) != 0)) {
        fprintf(stderr, "usage: sgemm_peak [N (16..16384, default 2048)] [repeats (default 5)]\n");
        return 2;
    }
    dg_set_threads(dg_default_threads());
    printf("openblas_core=%s threads=%d\n", openblas_get_corename(), openblas_get_num_threads());
    printf("sgemm %ldx%ldx%ld: %.1f GFLOPS\n", n, n, n, gflops((int)n, (int)n, (int)n, (int)reps));
    /* deotte conv2 at batch 64: (B*24*24, 288) x (288, 32) */
    printf("sgemm 36864x32x288 (deotte conv2 fwd, batch 64): %.1f GFLOPS\n", gflops(36864, 32, 288, (int)reps));
    printf("sgemm 200x800x784 (mlp800 fwd, batch 200): %.1f GFLOPS\n", gflops(200, 800, 784, (int)reps));
    return 0;
}
