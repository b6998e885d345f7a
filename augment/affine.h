/* augment/affine: affine maps of the 28x28 plane and the bilinear warp that applies them (with an optional
 * per-pixel displacement field, for elastic distortion).
 *
 * Coordinates: x = column, y = row, pixel centres at the integers 0..27, image centre (13.5, 13.5).
 * A map is 6 numbers {a, b, c, d, e, f}: (x, y) -> (a x + b y + c, d x + e y + f).
 * Transforms are built as FORWARD maps (where a source point lands in the output), composed in the order they are
 * applied, and inverted once: the warp needs the BACKWARD map (output pixel -> source point).
 * Not here: random parameters (augment/policy.h) and the displacement fields (augment/elastic.h).
 */
#ifndef AUG_AFFINE_H
#define AUG_AFFINE_H

#include <stdint.h>

#define AUG_SIDE 28
#define AUG_PIXELS (AUG_SIDE * AUG_SIDE)
#define AUG_CENTRE 13.5
#define AUG_PAD 32 /* row stride of the zero-padded source the warp reads from */

/* f = identity. */
void aug_affine_identity(double f[6]);
/* f = t o f: then rotate by `degrees` counter-clockwise as displayed (y grows downwards) about the centre.
 * Multiples of 90 degrees are exact (rotate 90 is numpy.rot90). */
void aug_affine_rotate(double f[6], double degrees);
/* f = t o f: then scale by sx horizontally and sy vertically about the centre (> 1 enlarges the digit). */
void aug_affine_scale(double f[6], double sx, double sy);
/* f = t o f: then shear horizontally: x += tan(degrees) * (y - centre) (positive leans the top to the left). */
void aug_affine_shear(double f[6], double degrees);
/* f = t o f: then move by (dx, dy) pixels (positive: right, down). */
void aug_affine_shift(double f[6], double dx, double dy);
/* out = a o b (b applied first). out may alias a or b. */
void aug_affine_compose(double out[6], const double a[6], const double b[6]);
/* inv = f^-1; -1 (inv untouched) if f is singular or not finite. */
int aug_affine_invert(double inv[6], const double f[6]);
/* 1 if m is exactly the identity. */
int aug_affine_is_identity(const float m[6]);

/* pad (32,32) = src (28,28) as floats 0..255 at rows/columns 2..29, zeros around: the warp's input. */
void aug_pad_u8(float *pad, const uint8_t *src);

/* dst (28,28) = bilinear sample of the padded source at m(x + dx[y][x], y + dy[y][x]); points outside the image
 * read 0. dx, dy (28,28) may both be NULL (no displacement). Values keep the source's units (0..255).
 * Bilinear weights are exact at integer points: an integer map reproduces pixels exactly. */
void aug_warp(float *dst, const float *pad, const float m[6], const float *dx, const float *dy);
/* The baseline version of aug_warp (aug_warp runs an AVX2 version where the CPU has it; same results). */
void aug_warp_scalar(float *dst, const float *pad, const float m[6], const float *dx, const float *dy);
/* The same with four bounds-checked reads per pixel, straight from src (for tests). */
void aug_warp_ref(float *dst, const uint8_t *src, const float m[6], const float *dx, const float *dy);

#endif
