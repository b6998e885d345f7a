/* experiments/report/rp_augment: the report of an augmentation policy: dataset rows (the first `count`) beside
 * `copies` augmented copies each (copy k drawn as epoch k, the training loop's keys (seed, epoch, row)), each copy
 * captioned with what every policy line drew (augment/policy.h aug_draw_ops), and the policy's canonical text. */
#ifndef RP_AUGMENT_H
#define RP_AUGMENT_H

#include <stdint.h>

#include "core/dg_err.h"
#include "core/dg_svg.h"

typedef struct rp_augment_opts {
    const char *policy; /* preset name or policy file */
    const char *data;   /* dataset (labelled or not) */
    int count, copies;  /* originals shown, copies of each */
    uint64_t seed;
} rp_augment_opts;

int rp_augment_report(dg_text *t, const rp_augment_opts *o, dg_err *err);

#endif
