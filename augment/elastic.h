/* augment/elastic: elastic distortion fields (Simard, Steinkraus & Platt 2003; Ciresan et al. 2010).
 *
 * A field is two 28x28 arrays of random numbers uniform in [-1, 1), each smoothed by a Gaussian of standard
 * deviation sigma PIXELS (separable, kernel truncated at round(4 sigma) and normalised, borders mirrored as
 * scipy.ndimage's mode "reflect"), then multiplied by alpha PIXELS. Simard's MNIST setting is alpha 34, sigma 4.
 *
 * The random numbers of the image keyed (seed, epoch, id) are Philox blocks 2^31, 2^31 + 1, ... of the stream
 * dg_rng_make(seed, DG_RNG_AUGMENT, epoch, id) (the parameter draws use blocks 0, 1, ...), so the field needs
 * nothing but the key to be regenerated. Each 32-bit word gives two 16-bit numbers; see aug_elastic_noise.
 *
 * The smoothing is done as two small matrix products, S = K U K with K (28,28) the 1-D smoothing operator (the
 * truncated kernel with the mirrored borders folded in): the same numbers as the two 1-D convolutions, in a form
 * that vectorises without gathers. aug_smooth_ref is the direct convolution.
 */
#ifndef AUG_ELASTIC_H
#define AUG_ELASTIC_H

#include <stdint.h>

#include "augment/affine.h"

#define AUG_FIELD_BLOCK0 0x80000000u /* first Philox block counter of a field's random numbers */
#define AUG_NOISE_COUNT 1600         /* numbers drawn per field: 200 blocks x 8; the first 2 x 784 are used */
#define AUG_SIGMA_MAX 100.0f         /* larger sigmas make a field that is flat to within float precision */
#define AUG_KROW 56                  /* row length of the smoothing buffers: two 28-wide halves */

/* Per-thread working memory for one field at a time; aligned for the vector loops. Keeps the smoothing matrix of
 * the last sigma, so a constant sigma costs nothing after the first image. Initialise with
 * aug_elastic_scratch_init before the first use. */
typedef struct aug_elastic_scratch {
    _Alignas(64) float k[AUG_SIDE * AUG_KROW];  /* (28, 56) smoothing matrix, each row twice */
    _Alignas(64) float noise[AUG_NOISE_COUNT];  /* (2, 28, 28) used of it */
    _Alignas(64) float t[AUG_SIDE * AUG_KROW];  /* (28, 56) after the first pass: x field | y field */
    _Alignas(64) float s[AUG_SIDE * AUG_KROW];  /* (28, 56) smoothed: x field | y field */
    float k_sigma;                                  /* sigma of k, or -1 */
} aug_elastic_scratch;

void aug_elastic_scratch_init(aug_elastic_scratch *s);

/* noise (1600) = the key's random numbers in [-1, 1): number n = ((g * 4 + j) * 2 + h) * 8 + l comes from block
 * AUG_FIELD_BLOCK0 + 8 g + l, word j, low (h = 0) or high (h = 1) 16 bits as a signed integer / 32768.
 * noise[0 .. 783] is the x field (28, 28), noise[784 .. 1567] the y field. */
void aug_elastic_noise(float *noise, uint64_t seed, uint32_t epoch, uint32_t id);
/* The baseline version (aug_elastic_noise runs an AVX2 version where the CPU has it; same results). */
void aug_elastic_noise_scalar(float *noise, uint64_t seed, uint32_t epoch, uint32_t id);
/* The same, one Philox block at a time through dg_rng (for tests). */
void aug_elastic_noise_ref(float *noise, uint64_t seed, uint32_t epoch, uint32_t id);

/* k (28, 56): the 1-D smoothing operator K (28, 28) of std sigma (sigma 0: identity), each row written twice
 * (k[i][j] = k[i][28 + j] = weight of input j in output i), the layout aug_smooth2 reads. K is symmetric. */
void aug_gauss_matrix(float *k, float sigma);

/* s (28, 56) = [K ux K | K uy K] for the two fields ux, uy (28, 28): s[y][x] is the x field, s[y][28 + x] the y
 * field; k from aug_gauss_matrix; t (28, 56) is scratch. All four 32-byte aligned. */
void aug_smooth2(float *s, const float *ux, const float *uy, const float *k, float *t);
/* The baseline version of aug_smooth2 (same results). */
void aug_smooth2_scalar(float *s, const float *ux, const float *uy, const float *k, float *t);
/* s (28, 28) = u (28, 28) convolved along rows then columns with the truncated Gaussian, in double. */
void aug_smooth_ref(float *s, const float *u, float sigma);

/* dx, dy (28, 28) = alpha * smoothed noise of the key: the displacement, in pixels, of the point each output
 * pixel samples. alpha 0 gives zeros. */
void aug_elastic_field(float *dx, float *dy, float alpha, float sigma, uint64_t seed, uint32_t epoch, uint32_t id,
                       aug_elastic_scratch *s);

#endif
