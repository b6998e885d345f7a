/* augment: random geometric transforms of 28x28 digits, sampled from a keyed RNG and applied deterministically.
 *
 * This header is the part the train stage uses (fresh distortions every epoch). The parameters of image `id` in
 * `epoch` come from dg_rng(seed, DG_RNG_AUGMENT, epoch, id) alone, so the output is bit-identical whatever the
 * thread count or batch split.
 */
#ifndef AUG_AUGMENT_H
#define AUG_AUGMENT_H

#include <stdint.h>

#include "pipeline/dg_err.h"

typedef struct aug_policy aug_policy;

/* A preset name (see augment/policy.h: "kaggle", "simard", "ciresan", ...) or a policy file path. */
int aug_policy_load(aug_policy **policy, const char *name_or_path, dg_err *err);
void aug_policy_free(aug_policy *policy);

/* Augment n images: dst[i*784 ..] = policy(src[i]) in [0, 1] floats, parameters keyed by (seed, epoch, ids[i]).
 * Runs OpenMP-parallel over images; safe to call from one thread while no other uses dst. */
void aug_batch_f32(const aug_policy *policy, uint64_t seed, uint32_t epoch, const uint32_t *ids,
                   const uint8_t *const *src, float *dst, int n);

#endif
