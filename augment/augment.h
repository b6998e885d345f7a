/* augment: random geometric transforms of 28x28 digits, sampled from a keyed RNG and applied deterministically.
 *
 * This header is the part the train stage uses (fresh distortions every epoch). The parameters of image `id` in
 * `epoch` come from dg_rng(seed, DG_RNG_AUGMENT, epoch, id) alone, so the output is bit-identical whatever the
 * thread count or batch split.
 */
#ifndef AUG_AUGMENT_H
#define AUG_AUGMENT_H

#include <stdint.h>

#include "augment/elastic.h"
#include "augment/policy.h"
#include "core/dg_err.h"

typedef struct aug_policy aug_policy;

/* A preset name (see augment/policy.h: "kaggle", "simard", "ciresan", ...) or a policy file path. */
int aug_policy_load(aug_policy **policy, const char *name_or_path, dg_err *err);
void aug_policy_free(aug_policy *policy);

/* Augment n images: dst[i*784 ..] = policy(src[i]) in [0, 1] floats, parameters keyed by (seed, epoch, ids[i]).
 * Runs OpenMP-parallel over images; safe to call from one thread while no other uses dst. */
void aug_batch_f32(const aug_policy *policy, uint64_t seed, uint32_t epoch, const uint32_t *ids,
                   const uint8_t *const *src, float *dst, int n);

/* ---- the rest of the augment API (beyond the train stage's contract) ---- */

/* The same with uint8 output (rounded to nearest); params (n) receives each image's parameters if not NULL. */
void aug_batch_u8(const aug_policy *policy, uint64_t seed, uint32_t epoch, const uint32_t *ids,
                  const uint8_t *const *src, uint8_t *dst, aug_params *params, int n);
/* Regenerate images from stored parameters: dst[i*784 ..] = the image params[i] describe, from src[i]. */
void aug_replay_u8(const aug_params *params, const uint8_t *const *src, uint8_t *dst, int n);

/* Per-thread working memory of one image at a time (no allocation per image). 64-byte aligned: declare it
 * (the compiler aligns it) or use aligned_alloc(64, ...), not plain malloc. */
typedef struct aug_scratch {
    aug_elastic_scratch el;
    _Alignas(64) float pad[AUG_PAD * AUG_PAD]; /* (32, 32) padded source */
    _Alignas(64) float dx[AUG_PIXELS];         /* (28, 28) displacement */
    _Alignas(64) float dy[AUG_PIXELS];
    _Alignas(64) float out[AUG_PIXELS];        /* (28, 28) result, 0..255 */
} aug_scratch;

void aug_scratch_init(aug_scratch *s);
/* s->out (28,28) = src (28,28) transformed as params says, values 0..255 (not rounded). Deterministic. */
void aug_apply(const uint8_t *src, const aug_params *params, aug_scratch *s);
/* dst (28,28) = aug_apply's result rounded to the nearest integer. */
void aug_apply_u8(uint8_t *dst, const uint8_t *src, const aug_params *params, aug_scratch *s);
/* dst (28,28) = aug_apply's result / 255 (so identity parameters give exactly pixel / 255.0f). */
void aug_apply_f32(float *dst, const uint8_t *src, const aug_params *params, aug_scratch *s);

#endif
