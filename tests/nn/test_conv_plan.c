/* Tests for the conv dispatcher of nn/layers_conv.c (nnk_conv_choice_get in nn/internal/conv_plan.h): for every
 * convolution of the model specs in experiments/models/ and for shapes that reach each remaining kernel, the
 * kernel of each pass, the batch split, and the workspace (packed-weight slot, group area, total, and
 * nn_conv2d_scratch) of the forward and the backward call, pinned to the values the dispatcher gave when this table
 * was written. A change to the cost rules or the workspace layout must show up here and be deliberate. The AVX2
 * table runs wherever the CPU has AVX2 and FMA (DIGITS_NO_AVX2 is switched off for it and restored after); the
 * portable path (DIGITS_NO_AVX2=1) must run im2col for every pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "nn/internal/conv_plan.h"
#include "testutil.h"

typedef struct plan_row {
    const char *fwd, *dgrad, *wgrad;
    int split, groups, chunk;
    size_t slot, area, floats;
} plan_row;

typedef struct shape_row {
    const char *name;
    int H, W, C, OC, K, stride, pad, B;
    size_t scratch;              /* nn_conv2d_scratch(d, B) */
    plan_row fwd_call, bwd_call; /* nnk_conv_choice_get(d, B, 0) and (d, B, 1) */
} shape_row;

/* deotte and deotte-fast share their layers; deotte-lite and deotte-lite-oc differ in the two stride-2 ones. */
static const shape_row rows[] = {
    {"deotte c1 28x28x1 -> 26x26x32", 28, 28, 1, 32, 3, 1, 0, 64, 393216,
     {"gconv", "rowseg", "gconv", 0, 8, 8, 768, 12144, 98688},
     {"gconv", "rowseg", "gconv", 0, 8, 8, 768, 12144, 98688}},
    {"deotte c2 26x26x32 -> 24x24x32", 26, 26, 32, 32, 3, 1, 0, 64, 1402368,
     {"wino4", "wino4_t", "wino4", 0, 8, 2, 36864, 158064, 1338240},
     {"wino4", "wino4_t", "wino4", 0, 8, 2, 36864, 158064, 1338240}},
    {"deotte c3 24x24x32 -> 12x12x32 5x5/2", 24, 24, 32, 32, 5, 2, 2, 64, 2455168,
     {"s2d_wino4", "scatter", "gconv", 0, 8, 1, 147456, 177328, 1860992},
     {"gconv", "s2d_wino4", "s2d_wino2", 0, 8, 1, 147456, 251600, 2455168}},
    {"deotte c4 12x12x32 -> 10x10x64", 12, 12, 32, 64, 3, 1, 0, 64, 1838208,
     {"wino2", "wino4_t", "wino2", 0, 8, 8, 73728, 211344, 1838208},
     {"wino2", "wino4_t", "wino2", 0, 8, 8, 73728, 211344, 1838208}},
    {"deotte c5 10x10x64 -> 8x8x64", 10, 10, 64, 64, 3, 1, 0, 64, 2043648,
     {"wino4", "wino2_t", "wino2", 0, 8, 7, 147456, 218592, 2043648},
     {"wino4", "wino2_t", "wino2", 0, 8, 7, 147456, 218592, 2043648}},
    {"deotte c6 8x8x64 -> 4x4x64 5x5/2", 8, 8, 64, 64, 5, 2, 2, 64, 3291904,
     {"gconv", "scatter", "gconv", 1, 1, 64, 102400, 1285440, 1490240},
     {"gconv", "s2d_wino2", "gconv", 0, 8, 5, 262144, 313184, 3291904}},
    {"deotte c7 4x4x64 -> 1x1x128", 4, 4, 64, 128, 4, 1, 0, 64, 1054720,
     {"gconv", "scatter", "gconv", 1, 1, 64, 131072, 264896, 527040},
     {"gconv", "scatter", "gconv", 1, 1, 64, 131072, 264896, 527040}},
    {"deotte-lite c3 24x24x32 -> 12x12x32 3x3/2", 24, 24, 32, 32, 3, 2, 1, 64, 738816,
     {"gconv", "scatter", "gconv", 0, 8, 2, 9216, 52928, 441856},
     {"gconv", "scatter", "gconv", 0, 8, 2, 9216, 52928, 441856}},
    {"deotte-lite c6 8x8x64 -> 4x4x64 3x3/2", 8, 8, 64, 64, 3, 2, 1, 64, 931136,
     {"gconv", "scatter", "gconv", 1, 1, 64, 36864, 857408, 931136},
     {"gconv", "scatter", "gconv", 1, 1, 64, 36864, 857408, 931136}},
    {"deotte c2, 40 images", 26, 26, 32, 32, 3, 1, 0, 40, 1402368,
     {"wino4", "wino4_t", "wino4", 0, 8, 2, 36864, 158064, 1338240},
     {"wino4", "wino4_t", "wino4", 0, 8, 2, 36864, 158064, 1338240}},
    {"deotte c3, 40 images", 24, 24, 32, 32, 5, 2, 2, 40, 2455168,
     {"s2d_wino4", "scatter", "gconv", 0, 8, 1, 147456, 177328, 1860992},
     {"gconv", "s2d_wino4", "s2d_wino2", 0, 8, 1, 147456, 251600, 2455168}},
    {"deotte c5, 1 image", 10, 10, 64, 64, 3, 1, 0, 1, 496464,
     {"wino4", "wino2_t", "wino2", 0, 1, 1, 147456, 201552, 496464},
     {"wino4", "wino2_t", "wino2", 0, 1, 1, 147456, 201552, 496464}},
    {"deotte c7, 3 images", 4, 4, 64, 128, 4, 1, 0, 3, 400112,
     {"gconv", "scatter", "gconv", 1, 1, 3, 131072, 137968, 400112},
     {"gconv", "scatter", "gconv", 1, 1, 3, 131072, 137968, 400112}},
    {"lenet5 c1 28x28x1 -> 28x28x6 5x5 pad 2", 28, 28, 1, 6, 5, 1, 2, 64, 785664,
     {"planar", "rowseg", "sconv", 0, 8, 8, 240, 14816, 119008},
     {"planar", "rowseg", "sconv", 0, 8, 8, 240, 14816, 119008}},
    {"lenet5 c2 14x14x6 -> 10x10x16 5x5", 14, 14, 6, 16, 5, 1, 0, 64, 739968,
     {"gconv", "rowseg", "gconv", 0, 8, 8, 2560, 12704, 106752},
     {"gconv", "rowseg", "gconv", 0, 8, 8, 2560, 12704, 106752}},
    {"deepdigits c2 26x26x32 -> 24x24x64", 26, 26, 32, 64, 3, 1, 0, 64, 1957248,
     {"wino4", "wino4_t", "wino2", 0, 8, 2, 73728, 226224, 1957248},
     {"wino4", "wino4_t", "wino2", 0, 8, 2, 73728, 226224, 1957248}},
    {"deepdigits c3 12x12x64 -> 10x10x128", 12, 12, 64, 128, 3, 1, 0, 64, 4155264,
     {"wino2", "wino4_t", "wino2", 0, 8, 5, 294912, 445680, 4155264},
     {"wino2", "wino4_t", "wino2", 0, 8, 5, 294912, 445680, 4155264}},
    {"deepdigits c4 10x10x128 -> 8x8x256", 10, 10, 128, 256, 3, 1, 0, 64, 11398144,
     {"wino4", "wino2_t", "wino2", 0, 8, 3, 1179648, 1129856, 11398144},
     {"wino4", "wino2_t", "wino2", 0, 8, 3, 1179648, 1129856, 11398144}},
    {"vgg-ls c1 28x28x1 -> 28x28x32 pad 1", 28, 28, 1, 32, 3, 1, 1, 64, 455424,
     {"gconv", "rowseg", "gconv", 0, 8, 8, 768, 13936, 113024},
     {"gconv", "rowseg", "gconv", 0, 8, 8, 768, 13936, 113024}},
    {"vgg-ls c2 28x28x32 -> 28x28x32 pad 1", 28, 28, 32, 32, 3, 1, 1, 64, 1881600,
     {"wino4", "wino4_t", "wino4", 0, 8, 1, 36864, 186848, 1568512},
     {"wino4", "wino4_t", "wino4", 0, 8, 1, 36864, 186848, 1568512}},
    {"vgg-ls c3 14x14x32 -> 14x14x64 pad 1", 14, 14, 32, 64, 3, 1, 1, 64, 1543808,
     {"wino2", "wino2_t", "wino2", 0, 8, 5, 32768, 184784, 1543808},
     {"wino2", "wino2_t", "wino2", 0, 8, 5, 32768, 184784, 1543808}},
    {"vgg-ls c4 14x14x64 -> 14x14x64 pad 1", 14, 14, 64, 64, 3, 1, 1, 64, 2006656,
     {"wino2", "wino2_t", "wino2", 0, 8, 2, 65536, 234448, 2006656},
     {"wino2", "wino2_t", "wino2", 0, 8, 2, 65536, 234448, 2006656}},
    {"vgg-ls c5 7x7x64 -> 5x5x128 (Winograd weight gradient, scatter)", 7, 7, 64, 128, 3, 1, 0, 64, 3353216,
     {"wino2", "scatter", "wino2", 0, 8, 8, 131072, 386384, 3353216},
     {"wino2", "scatter", "wino2", 0, 8, 8, 131072, 386384, 3353216}},
    {"small OC 12x12x16 -> 10x10x8", 12, 12, 16, 8, 3, 1, 0, 64, 700800,
     {"sconv", "scatter", "sconv", 0, 8, 8, 1152, 20432, 165760},
     {"sconv", "scatter", "sconv", 0, 8, 8, 1152, 20432, 165760}},
    {"small C and OC 12x12x8 -> 12x12x8 pad 1", 12, 12, 8, 8, 3, 1, 1, 64, 668544,
     {"sconv", "rowseg", "sconv", 0, 8, 8, 576, 14336, 115840},
     {"sconv", "rowseg", "sconv", 0, 8, 8, 576, 14336, 115840}},
    {"planar 3x3 pad 1 1 -> 4", 16, 16, 1, 4, 3, 1, 1, 64, 148096,
     {"planar", "rowseg", "sconv", 0, 8, 8, 96, 4736, 38080},
     {"planar", "rowseg", "sconv", 0, 8, 8, 96, 4736, 38080}},
    {"gather 5x5 pad 2 16 -> 16", 12, 12, 16, 16, 5, 1, 2, 64, 512768,
     {"gconv", "gather", "gconv", 0, 8, 8, 6400, 40528, 337024},
     {"gconv", "gather", "gconv", 0, 8, 8, 6400, 40528, 337024}},
    {"split gather 4x4x64 -> 4x4x64 pad 1", 4, 4, 64, 64, 3, 1, 1, 64, 887808,
     {"gconv", "gather", "gconv", 1, 1, 64, 36864, 334144, 407872},
     {"gconv", "gather", "gconv", 1, 1, 64, 36864, 334144, 407872}},
    {"split scatter 8x8x32 -> 3x3x32 3x3/2", 8, 8, 32, 32, 3, 2, 0, 64, 292576,
     {"gconv", "scatter", "gconv", 1, 1, 64, 9216, 274144, 292576},
     {"gconv", "scatter", "gconv", 1, 1, 64, 9216, 274144, 292576}},
    {"wino4 3x3 pad 1 24x24x32", 24, 24, 32, 32, 3, 1, 1, 64, 1684352,
     {"wino4", "wino4_t", "wino4", 0, 8, 2, 36864, 201328, 1684352},
     {"wino4", "wino4_t", "wino4", 0, 8, 2, 36864, 201328, 1684352}},
    {"1x1 8x8x32 -> 8x8x64", 8, 8, 32, 64, 1, 1, 0, 64, 290304,
     {"gconv", "gather", "gconv", 0, 8, 8, 2048, 35776, 290304},
     {"gconv", "gather", "gconv", 0, 8, 8, 2048, 35776, 290304}},
    {"s2d 6x6/2 16x16x16 -> 8x8x32", 16, 16, 16, 32, 6, 2, 2, 64, 1585280,
     {"s2d_wino4", "scatter", "gconv", 0, 8, 7, 73728, 122816, 1203712},
     {"gconv", "s2d_wino4", "s2d_wino2", 0, 8, 7, 73728, 170512, 1585280}},
    {"s2d small C 5x5/2 12x12x4 -> 6x6x16", 12, 12, 4, 16, 5, 2, 2, 64, 391936,
     {"gconv", "rowseg", "gconv", 0, 8, 8, 1920, 10304, 86272},
     {"gconv", "s2d_wino2", "s2d_wino2", 0, 8, 8, 4096, 47456, 391936}},
    {"s2d split 5x5/2 7x7x32 -> 4x4x32", 7, 7, 32, 32, 5, 2, 2, 64, 984576,
     {"gconv", "scatter", "gconv", 1, 1, 64, 25600, 522400, 573600},
     {"gconv", "s2d_wino2", "gconv", 0, 8, 8, 65536, 98496, 984576}},
};

static nn_conv_dims row_dims(const shape_row *r) {
    nn_conv_dims d = {.H = r->H, .W = r->W, .C = r->C, .OC = r->OC, .KH = r->K, .KW = r->K, .stride = r->stride,
                      .pad = r->pad};
    assert_int_equal(nn_conv_dims_finish(&d), 0);
    return d;
}

static void expect_plan(const char *name, const char *call, const nnk_conv_choice *c, const plan_row *want) {
    if (strcmp(c->fwd, want->fwd) || strcmp(c->dgrad, want->dgrad) || strcmp(c->wgrad, want->wgrad) ||
        c->split != want->split || c->groups != want->groups || c->chunk != want->chunk || c->slot != want->slot ||
        c->area != want->area || c->floats != want->floats)
        fail_msg("%s, %s call: got {%s, %s, %s, split %d, %d groups of %d, slot %zu, area %zu, %zu floats}, "
                 "pinned {%s, %s, %s, split %d, %d groups of %d, slot %zu, area %zu, %zu floats}",
                 name, call, c->fwd, c->dgrad, c->wgrad, c->split, c->groups, c->chunk, c->slot, c->area, c->floats,
                 want->fwd, want->dgrad, want->wgrad, want->split, want->groups, want->chunk, want->slot, want->area,
                 want->floats);
}

static void test_avx2_plans_pinned(void **state) {
    (void)state;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) tu_skip("this CPU has no AVX2+FMA: the AVX2 plans cannot be chosen here");
    tu_env saved;
    tu_env_set(&saved, "DIGITS_NO_AVX2", "0");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const shape_row *r = &rows[i];
        nn_conv_dims d = row_dims(r);
        nnk_conv_choice f = nnk_conv_choice_get(&d, r->B, 0), b = nnk_conv_choice_get(&d, r->B, 1);
        expect_plan(r->name, "forward", &f, &r->fwd_call);
        expect_plan(r->name, "backward", &b, &r->bwd_call);
        size_t scratch = nn_conv2d_scratch(&d, r->B);
        if (scratch != r->scratch) fail_msg("%s: nn_conv2d_scratch %zu, pinned %zu", r->name, scratch, r->scratch);
        assert_true(f.floats <= scratch && b.floats <= scratch);
    }
    tu_env_restore(&saved);
}

static void test_portable_plans_im2col(void **state) {
    (void)state;
    tu_env saved;
    tu_env_set(&saved, "DIGITS_NO_AVX2", "1");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const shape_row *r = &rows[i];
        nn_conv_dims d = row_dims(r);
        for (int backward = 0; backward < 2; backward++) {
            nnk_conv_choice c = nnk_conv_choice_get(&d, r->B, backward);
            assert_string_equal(c.fwd, "im2col");
            assert_string_equal(c.dgrad, "im2col");
            assert_string_equal(c.wgrad, "im2col");
            assert_int_equal(c.split, 0);
            assert_true(c.floats > 0 && c.floats <= nn_conv2d_scratch(&d, r->B));
        }
    }
    tu_env_restore(&saved);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avx2_plans_pinned),
        cmocka_unit_test(test_portable_plans_im2col),
    };
    return tu_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
