/* augment/deskew: moment-based deskewing (see deskew.h). */
#include "augment/deskew.h"

#include <math.h>
#include <stddef.h>

#include "augment/affine.h"

double aug_skew(const uint8_t *src, double *cx, double *cy) {
    double m00 = 0, m10 = 0, m01 = 0;
    for (int y = 0; y < AUG_SIDE; y++)
        for (int x = 0; x < AUG_SIDE; x++) {
            double v = src[y * AUG_SIDE + x];
            m00 += v;
            m10 += v * x;
            m01 += v * y;
        }
    if (m00 <= 0) {
        *cx = *cy = AUG_CENTRE;
        return 0;
    }
    double mx = m10 / m00, my = m01 / m00, mu11 = 0, mu02 = 0;
    for (int y = 0; y < AUG_SIDE; y++)
        for (int x = 0; x < AUG_SIDE; x++) {
            double v = src[y * AUG_SIDE + x];
            mu11 += v * (x - mx) * (y - my);
            mu02 += v * (y - my) * (y - my);
        }
    *cx = mx;
    *cy = my;
    if (mu02 <= 1e-9 * m00) return 0; /* a horizontal line: no vertical extent to straighten */
    double s = mu11 / mu02;
    return s > AUG_DESKEW_MAX ? AUG_DESKEW_MAX : s < -AUG_DESKEW_MAX ? -AUG_DESKEW_MAX : s;
}

void aug_deskew_compose(double m[6], double skew, double cy) {
    double d[6] = {1, skew, -skew * cy, 0, 1, 0};
    aug_affine_compose(m, d, m);
}

void aug_deskew_u8(uint8_t *dst, const uint8_t *src) {
    double cx, cy, md[6];
    double s = aug_skew(src, &cx, &cy);
    aug_affine_identity(md);
    aug_deskew_compose(md, s, cy);
    float m[6], pad[AUG_PAD * AUG_PAD], out[AUG_PIXELS];
    for (int i = 0; i < 6; i++) m[i] = (float)md[i];
    aug_pad_u8(pad, src);
    aug_warp(out, pad, m, NULL, NULL);
    for (int i = 0; i < AUG_PIXELS; i++) {
        float v = out[i] + 0.5f;
        dst[i] = v >= 255.0f ? 255 : (uint8_t)v;
    }
}
