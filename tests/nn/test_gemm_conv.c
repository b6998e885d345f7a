/* Tests for nn/gemm_conv's Winograd weight transforms: the AVX2 packing (4 output channels per double vector) gives
 * the same bits as the scalar code (ranges that are not multiples of 4), for F(2x2, 3x3) and F(4x4, 3x3), plain and
 * transposed. The convolutions themselves are checked against the naive ones in tests/nn/test_layers.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "nn/internal/gemm_conv.h"
#include "testutil.h"
#include "core/dg_rng.h"

typedef void pack_fn(float *u, const float *w, const nn_conv_dims *d, int transposed, int oc0, int oc1);

static void pack_case(pack_fn *pack, int npos, int C, int OC, int transposed) {
    nn_conv_dims d = {.H = 8, .W = 8, .C = C, .OC = OC, .KH = 3, .KW = 3, .stride = 1};
    assert_int_equal(nn_conv_dims_finish(&d), 0);
    size_t wn = (size_t)9 * C * OC, un = (size_t)npos * C * OC;
    float *w = malloc(sizeof(float) * wn), *u1 = malloc(sizeof(float) * un), *u2 = malloc(sizeof(float) * un);
    dg_rng r = dg_rng_make(5, DG_RNG_USER, 0, (uint32_t)npos);
    for (size_t i = 0; i < wn; i++) w[i] = dg_rng_range(&r, -1.0f, 1.0f);
    memset(u1, 0xff, sizeof(float) * un);
    memset(u2, 0, sizeof(float) * un);
    pack(u1, w, &d, transposed, 0, OC); /* vector path */
    for (int oc = 0; oc < OC; oc++) pack(u2, w, &d, transposed, oc, oc + 1); /* scalar path */
    assert_memory_equal(u1, u2, sizeof(float) * un);
    free(w), free(u1), free(u2);
}

static void test_pack_vector_equals_scalar(void **state) {
    (void)state;
    if (!nnk_wino_ok(&(nn_conv_dims){.C = 16, .OC = 16, .KH = 3, .KW = 3, .stride = 1}))
        tu_skip("the Winograd packing needs AVX2+FMA (this CPU lacks them, or DIGITS_NO_AVX2 is set)");
    for (int t = 0; t < 2; t++) {
        pack_case(nnk_wino_pack, 16, 16, 32, t);
        pack_case(nnk_wino4_pack, 36, 16, 32, t);
        pack_case(nnk_wino4_pack, 36, 32, 16, t);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_pack_vector_equals_scalar)};
    return tu_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
