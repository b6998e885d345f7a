/* augment/policy: augmentation policies (a list of random transforms) and the drawing of their parameters.
 *
 * A policy is a small text file, one transform per line, applied in the order written ('#' starts a comment):
 *
 *     deskew                           straighten by image moments (augment/deskew.h); must come first
 *     rotate degrees=-10..10 p=1       counter-clockwise degrees; a single value A means -A..A
 *     zoom 0.9..1.1                    one factor for both axes (> 1 enlarges)
 *     scale x=0.85..1.15 y=0.85..1.15  independent factors per axis ("scale 0.85..1.15" sets both)
 *     shear degrees=5                  horizontal shear, x += tan(angle) * (y - centre); A means -A..A
 *     shift fraction=0.1               independent x and y moves; fraction of 28 px or pixels=P; A means -A..A
 *     elastic alpha=34 sigma=4 p=0.5   Simard elastic distortion, alpha and sigma in pixels; must come last
 *
 * A value is a number or a range LO..HI drawn uniformly; p (default 1) is the probability that the line applies.
 * The value before any key= is the line's main value (degrees, factor, or both scale factors). All affine lines
 * are composed into one 2x3 matrix about the image centre and the elastic field is applied on top, so an image is
 * resampled once, whatever the number of lines. Errors: "file:line:col: what was expected".
 *
 * Presets (files with the same text are in experiments/policies/):
 *     none      nothing (images pass through unchanged)
 *     kaggle    rotate -10..10, zoom 0.9..1.1, shift 10% (the usual Digit Recognizer kernel settings)
 *     simard    elastic alpha 34 sigma 4 (Simard et al. 2003)
 *     ciresan   rotate -15..15, scale 0.85..1.15 per axis, elastic alpha 36..38 sigma 5..6 (Ciresan et al. 2010)
 *     deskew    deskew only (deterministic preprocessing, for training and test images alike)
 *
 * Drawing: image `id` of `epoch` uses the stream dg_rng_make(seed, DG_RNG_AUGMENT, epoch, id); every line draws
 * three uniforms in order (apply?, first value, second value) whether it applies or not, so changing one line's
 * probability does not move the draws of the others.
 */
#ifndef AUG_POLICY_H
#define AUG_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "core/dg_err.h"

#define AUG_MAX_OPS 32

typedef enum aug_kind { AUG_DESKEW, AUG_ROTATE, AUG_ZOOM, AUG_SCALE, AUG_SHEAR, AUG_SHIFT, AUG_ELASTIC } aug_kind;

/* One line. The two values by kind: rotate, shear: degrees; zoom: factor; scale: x, y factors; shift: x, y
 * pixels; elastic: alpha, sigma (pixels); deskew: none. */
typedef struct aug_op {
    aug_kind kind;
    float p;             /* probability of applying, 0..1 */
    float lo[2], hi[2];  /* the ranges drawn from (lo == hi: fixed) */
    int line;            /* in the policy text */
} aug_op;

typedef struct aug_policy {
    int n;
    aug_op op[AUG_MAX_OPS];
    char source[256]; /* preset name or file path */
} aug_policy;

/* What one image got: everything needed to regenerate it from its source image. */
typedef struct aug_params {
    float m[6];         /* backward map, output pixel -> source point (affine.h), deskew included */
    float alpha, sigma; /* elastic distortion in pixels; alpha 0: none */
    float skew;         /* the skew deskew removed (0: none) */
    uint64_t seed;      /* the key the elastic field is drawn from */
    uint32_t epoch, id;
} aug_params;

/* What one line drew. */
typedef struct aug_draw {
    int applied;
    float v[2]; /* the line's values (see aug_op), meaningful when applied */
} aug_draw;

/* Parse policy text; `file` names it in error messages. *policy is malloc'd; free with aug_policy_free. */
int aug_policy_parse(struct aug_policy **policy, const char *text, const char *file, dg_err *err);
/* The built-in text of a preset, or NULL. */
const char *aug_policy_preset(const char *name);
/* The preset names, comma separated, for messages and --help. */
const char *aug_policy_preset_names(void);
/* Write the policy as canonical text (one line per transform, every key explicit, shift in pixels); returns the
 * length it needs (like snprintf). */
int aug_policy_format(const struct aug_policy *policy, char *buf, size_t cap);
/* 1 if the policy has no lines (images pass unchanged). */
int aug_policy_is_none(const struct aug_policy *policy);

/* Draw the lines of image (seed, epoch, id); draws has policy->n entries. Pure. */
void aug_draw_ops(const struct aug_policy *policy, uint64_t seed, uint32_t epoch, uint32_t id, aug_draw *draws);
/* The parameters of image (seed, epoch, id), whose source image src (28,28) is needed only for deskew. Pure. */
void aug_sample(const struct aug_policy *policy, uint64_t seed, uint32_t epoch, uint32_t id, const uint8_t *src,
                aug_params *params);
/* Parameters that leave an image unchanged (identity map, no distortion). */
void aug_params_identity(aug_params *params);

#endif
