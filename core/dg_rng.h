/* dg_rng: explicit, keyed, counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
 *
 * There is no hidden state anywhere in the project: every random draw comes from a dg_rng value that a caller
 * built from (seed, purpose, epoch, index). A stream is a pure function of those four numbers, so results do not
 * depend on thread count, batch split or scheduling: sample i of epoch e always sees the same numbers.
 * A dg_rng is a small plain struct: copy it, store it in a checkpoint, restore it.
 */
#ifndef DG_RNG_H
#define DG_RNG_H

#include <stdint.h>

/* What a stream is for: keeps the streams of different uses of one seed independent. */
enum dg_rng_purpose {
    DG_RNG_INIT = 1,    /* weight initialization; index = parameter tensor number */
    DG_RNG_SPLIT = 2,   /* validation split / folds */
    DG_RNG_SHUFFLE = 3, /* per-epoch order of training samples; index 0 */
    DG_RNG_DROPOUT = 4, /* dropout masks; index = global step */
    DG_RNG_AUGMENT = 5, /* augmentation parameters; index = sample id */
    DG_RNG_TTA = 6,     /* test-time augmentation */
    DG_RNG_USER = 16    /* first value free for other uses */
};

typedef struct dg_rng {
    uint32_t key[2]; /* the seed */
    uint32_t ctr[4]; /* ctr[0] block counter, ctr[1] index, ctr[2] epoch, ctr[3] purpose */
    uint32_t buf[4]; /* current block */
    uint32_t pos;    /* next unused word of buf (4 = empty) */
} dg_rng;

/* One Philox4x32-10 block: out = philox(ctr, key). */
void dg_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* The stream for (seed, purpose, epoch, index). */
dg_rng dg_rng_make(uint64_t seed, uint32_t purpose, uint32_t epoch, uint32_t index);

uint32_t dg_rng_u32(dg_rng *r);
uint64_t dg_rng_u64(dg_rng *r);
/* Uniform in [0, 1), 24 random bits. */
float dg_rng_uniform(dg_rng *r);
/* Uniform in [lo, hi). */
float dg_rng_range(dg_rng *r, float lo, float hi);
/* Uniform integer in [0, n), unbiased (n > 0). */
uint32_t dg_rng_below(dg_rng *r, uint32_t n);
/* Standard normal (Box-Muller in double precision). */
float dg_rng_normal(dg_rng *r);
/* Fisher-Yates shuffle of idx[0..n). */
void dg_rng_shuffle_u32(dg_rng *r, uint32_t *idx, uint32_t n);

#endif
