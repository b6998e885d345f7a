/* kaggle/photo: a person's own digit (a photo or a drawing, PNG or JPEG, any size) made into the 28x28 MNIST-style
 * image the models were trained on.
 *
 * Decoding: the header's dimensions are checked against KG_PHOTO_MAX_SIDE / KG_PHOTO_MAX_PIXELS BEFORE any pixel
 * is decoded, so a file claiming 20000x20000 costs nothing. Colour becomes luminance (Rec. 601); an alpha channel
 * is composited onto the background opposite to the ink (a drawing of black strokes on a transparent canvas is
 * black on white, white strokes are white on black).
 *
 * Preprocessing (kg_photo_prepare), MNIST's own recipe after making the photo look like MNIST:
 *   1. images larger than KG_PHOTO_WORK pixels a side are box-averaged down to it (bounded work and memory);
 *   2. polarity: the background is the median of the border ring; a light background means dark ink, inverted
 *      so that ink is bright (MNIST: 0 = background);
 *   3. photo-sized images (100 px or more) lose their slow background variations (uneven lighting, a shadow): the
 *      grey-level opening with a radius of 1/12 of the image is subtracted (white top-hat);
 *   4. contrast: after a 3x3 blur of photo-sized images, the background level (border median) -> 0 and the
 *      brightest ink -> 255; below 30% of that range is background (paper texture, sensor noise); a range under
 *      40 grey levels, or no blob over 1/5000 of the image, is "no ink";
 *   5. ink = 8-connected blobs of the thresholded mask, joined where less than 1/80 of the image apart; blobs under
 *      KG_PHOTO_SPECK of the largest are specks and erased; a second blob at least half the size of the largest,
 *      beside it (disjoint columns) and about as tall, means several digits, which is refused;
 *   6. strokes much thinner or thicker than MNIST's (about 2.5 px in the 20x20 box) are dilated or eroded;
 *   7. crop to the ink, fit into 20x20 keeping the aspect ratio (area averaging), and place in 28x28 so that the
 *      centre of mass of the ink is at pixel (14, 14) (as integer shifts, the way MNIST did).
 */
#ifndef KG_PHOTO_H
#define KG_PHOTO_H

#include <stddef.h>
#include <stdint.h>

#include "core/dg_err.h"

#define KG_PHOTO_MAX_SIDE 10000          /* refused above this width or height, before decoding */
#define KG_PHOTO_MAX_PIXELS (24u << 20) /* and above this many pixels (24 Mpx) */
#define KG_PHOTO_WORK 512                /* working resolution: larger images are box-averaged down to this side */
#define KG_PHOTO_SPECK 0.1               /* blobs smaller than this fraction of the largest are specks */

/* Why an image was refused; 0 = usable. Negative, so `if (rc < 0)` tests failure; the message is in err. */
typedef enum kg_photo_status {
    KG_PHOTO_OK = 0,
    KG_PHOTO_BAD = -1,       /* not a PNG or JPEG, corrupt, truncated, or out of memory */
    KG_PHOTO_TOO_LARGE = -2, /* declared dimensions over the limits (refused before decoding) */
    KG_PHOTO_NO_INK = -3,    /* a blank image: nothing to classify */
    KG_PHOTO_SEVERAL = -4,   /* several separate blobs of similar size: several digits, out of scope */
} kg_photo_status;

/* A short name of a status for JSON: "ok", "bad_image", "too_large", "no_ink", "several_digits". */
const char *kg_photo_status_name(int status);

#define KG_PHOTO_MAX_BYTES (64u << 20) /* image files larger than this are refused unread */

/* A decoded image: grey (w * h) bytes, row-major, 0 = black. */
typedef struct kg_photo_grey {
    uint8_t *px;
    int w, h;
} kg_photo_grey;

/* What preprocessing found, for messages and --json/debug output. */
typedef struct kg_photo_info {
    int w, h;          /* decoded size */
    int inverted;      /* 1: the background was light (dark ink), inverted */
    int blobs;         /* blobs kept as the digit */
    int specks;        /* small blobs erased */
    int stroke_filter; /* > 0: strokes dilated by that many working pixels; < 0: eroded */
} kg_photo_info;

/* Decode a PNG or JPEG held in memory (format from its signature). Returns KG_PHOTO_OK, KG_PHOTO_BAD or
 * KG_PHOTO_TOO_LARGE. out->px is malloc'd; free with kg_photo_grey_free. */
int kg_photo_decode(kg_photo_grey *out, const void *data, size_t n, dg_err *err);
void kg_photo_grey_free(kg_photo_grey *g);

/* The 28x28 image (DG_PIXELS bytes, 0 = background) of a decoded image, as described above. info may be NULL.
 * Returns KG_PHOTO_OK, KG_PHOTO_NO_INK, KG_PHOTO_SEVERAL or KG_PHOTO_BAD (out of memory). */
int kg_photo_prepare(uint8_t *out, const kg_photo_grey *g, kg_photo_info *info, dg_err *err);

/* Decode and prepare in one call (file contents in, 28x28 out). */
int kg_photo_load(uint8_t *out, const void *data, size_t n, kg_photo_info *info, dg_err *err);

/* A grey image (w x h bytes) as a PNG in memory: *png malloc'd, *n its size. 0 or -1. */
int kg_photo_png_encode(void **png, size_t *n, const uint8_t *px, int w, int h, dg_err *err);

/* Centre of mass (x, y) in pixel indices of a 28x28 image; -1 for both if it has no ink. */
void kg_photo_com(const uint8_t *img, double *cx, double *cy);

#endif
