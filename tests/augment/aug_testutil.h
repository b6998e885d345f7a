/* Helpers shared by the tests of augment/: synthetic digit-like images. */
#ifndef AUG_TESTUTIL_H
#define AUG_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* A stroke from (x0, y0) to (x1, y1), about 2.5 px wide, anti-aliased, max 255 (drawn with max()). */
static inline void draw_line(uint8_t *img, double x0, double y0, double x1, double y1) {
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            double dx = x1 - x0, dy = y1 - y0, t = ((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy);
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            double d = hypot(x - (x0 + t * dx), y - (y0 + t * dy));
            double v = 255 * fmin(1, fmax(0, 1.8 - d));
            if (v > img[y * 28 + x]) img[y * 28 + x] = (uint8_t)v;
        }
}

/* Image k of a family of "digits": a ring, a bar and a hook, varying with k. Not symmetric under rot90. */
static inline void synth_digit(uint8_t *img, int k) {
    memset(img, 0, 784);
    double a = 0.35 * sin(k * 1.3), r = 4 + (k % 3);
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            double d = fabs(hypot(x - 13 - a * 3, y - 9) - r);
            double v = 255 * fmin(1, fmax(0, 1.6 - d));
            img[y * 28 + x] = (uint8_t)v;
        }
    draw_line(img, 13 + 4 * a + r, 9, 12 - 5 * a, 24);
    draw_line(img, 12 - 5 * a, 24, 18, 23 - (k % 4));
}

#endif
