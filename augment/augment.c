/* augment: applying parameters to images, and the OpenMP batch functions (see augment.h). */
#include "augment/augment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/affine.h"
#include "core/dg_file.h"

int aug_policy_load(aug_policy **policy, const char *name_or_path, dg_err *err) {
    *policy = NULL;
    const char *text = aug_policy_preset(name_or_path);
    if (text) {
        char src[80];
        snprintf(src, sizeof src, "preset:%s", name_or_path);
        if (aug_policy_parse(policy, text, src, err) != 0) return -1;
        snprintf((*policy)->source, sizeof (*policy)->source, "%s", name_or_path);
        return 0;
    }
    if (!dg_path_exists(name_or_path))
        return dg_fail(err, "%s: not a policy preset (%s) and no such file", name_or_path, aug_policy_preset_names());
    char *data;
    if (dg_read_text(name_or_path, "policy file", &data, err) != 0) return -1;
    int rc = aug_policy_parse(policy, data, name_or_path, err);
    free(data);
    return rc;
}

void aug_policy_free(aug_policy *policy) { free(policy); }

void aug_scratch_init(aug_scratch *s) {
    memset(s, 0, sizeof *s);
    aug_elastic_scratch_init(&s->el);
}

void aug_apply(const uint8_t *src, const aug_params *p, aug_scratch *s) {
    if (p->alpha == 0 && aug_affine_is_identity(p->m)) {
        for (int i = 0; i < AUG_PIXELS; i++) s->out[i] = (float)src[i];
        return;
    }
    aug_pad_u8(s->pad, src);
    if (p->alpha != 0) {
        aug_elastic_field(s->dx, s->dy, p->alpha, p->sigma, p->seed, p->epoch, p->id, &s->el);
        aug_warp(s->out, s->pad, p->m, s->dx, s->dy);
    } else {
        aug_warp(s->out, s->pad, p->m, NULL, NULL);
    }
}

void aug_apply_u8(uint8_t *dst, const uint8_t *src, const aug_params *p, aug_scratch *s) {
    aug_apply(src, p, s);
    for (int i = 0; i < AUG_PIXELS; i++) {
        float v = s->out[i] + 0.5f; /* out >= 0: bilinear weights are never negative */
        dst[i] = v >= 255.0f ? 255 : (uint8_t)v;
    }
}

void aug_apply_f32(float *dst, const uint8_t *src, const aug_params *p, aug_scratch *s) {
    aug_apply(src, p, s);
    for (int i = 0; i < AUG_PIXELS; i++) dst[i] = s->out[i] / 255.0f;
}

/* Small batches stay on the calling thread: a parallel region costs more than a few images. Images are handed out
 * in chunks as threads come free (dynamic), so a thread the OS preempts does not hold up the batch; each image's
 * result depends only on its own key, so the split does not change the output. */
#define PAR_MIN 8

void aug_batch_f32(const aug_policy *policy, uint64_t seed, uint32_t epoch, const uint32_t *ids,
                   const uint8_t *const *src, float *dst, int n) {
#pragma omp parallel if (n >= PAR_MIN)
    {
        aug_scratch s;
        aug_scratch_init(&s);
#pragma omp for schedule(dynamic, 16)
        for (int i = 0; i < n; i++) {
            aug_params p;
            aug_sample(policy, seed, epoch, ids[i], src[i], &p);
            aug_apply_f32(dst + (size_t)i * AUG_PIXELS, src[i], &p, &s);
        }
    }
}

void aug_batch_u8(const aug_policy *policy, uint64_t seed, uint32_t epoch, const uint32_t *ids,
                  const uint8_t *const *src, uint8_t *dst, aug_params *params, int n) {
#pragma omp parallel if (n >= PAR_MIN)
    {
        aug_scratch s;
        aug_scratch_init(&s);
#pragma omp for schedule(dynamic, 16)
        for (int i = 0; i < n; i++) {
            aug_params p;
            aug_sample(policy, seed, epoch, ids[i], src[i], &p);
            aug_apply_u8(dst + (size_t)i * AUG_PIXELS, src[i], &p, &s);
            if (params) params[i] = p;
        }
    }
}

void aug_replay_u8(const aug_params *params, const uint8_t *const *src, uint8_t *dst, int n) {
#pragma omp parallel if (n >= PAR_MIN)
    {
        aug_scratch s;
        aug_scratch_init(&s);
#pragma omp for schedule(dynamic, 16)
        for (int i = 0; i < n; i++) aug_apply_u8(dst + (size_t)i * AUG_PIXELS, src[i], &params[i], &s);
    }
}
