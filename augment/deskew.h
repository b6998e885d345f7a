/* augment/deskew: straighten slanted digits with image moments (the classic MNIST preprocessing, e.g. LeCun et
 * al. 1998's "deslanted" data): find the horizontal shear that makes the intensity's principal axis vertical and
 * undo it about the centroid, so the centroid stays put.
 *
 * Deterministic (no randomness): usable on the training and the test images alike.
 */
#ifndef AUG_DESKEW_H
#define AUG_DESKEW_H

#include <stdint.h>

#define AUG_DESKEW_MAX 1.0 /* |skew| is clamped to 1 (45 degrees) */

/* The skew of src (28,28): mu11 / mu02 of the intensity (x right, y down), clamped to +-AUG_DESKEW_MAX; 0 for a
 * blank image. The centroid goes to *cx, *cy. A digit whose top leans right has a negative skew. */
double aug_skew(const uint8_t *src, double *cx, double *cy);

/* m = m_deskew o m: compose the deskew backward map (u, v) -> (u + skew (v - cy), v) after backward map m. */
void aug_deskew_compose(double m[6], double skew, double cy);

/* dst (28,28) = src deskewed, rounded to uint8. */
void aug_deskew_u8(uint8_t *dst, const uint8_t *src);

#endif
