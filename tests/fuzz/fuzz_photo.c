/* fuzz_photo: kaggle/photo (a person's PNG or JPEG through libpng / libjpeg, then the MNIST-like preprocessing).
 * Invariants: kg_photo_load returns one of the documented statuses, with a message when it refuses; a decoded image
 * has 1..KG_PHOTO_MAX_SIDE pixels a side and at most KG_PHOTO_MAX_PIXELS, and TOO_LARGE is only said of a header
 * over those limits; a refused decode leaves nothing and kg_photo_load refuses the same way; an accepted image is
 * 28x28 with its brightest pixel 255, its ink inside a 20x20 box and its centre of mass inside the field; and the
 * image written as PNG (kg_photo_png_encode) decodes to the same pixels. Leaks are errors (libFuzzer's
 * -detect_leaks), which is what the longjmp error paths of libpng and libjpeg are checked for. */
#include <string.h>

#include "core/dg_dataset.h"
#include "fuzz_util.h"
#include "kaggle/photo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t img[DG_PIXELS];
    kg_photo_info info;
    dg_err err = {{0}};
    kg_photo_grey g;
    int st = kg_photo_decode(&g, data, size, &err);
    FZ_CHECK(st == KG_PHOTO_OK || st == KG_PHOTO_BAD || st == KG_PHOTO_TOO_LARGE, "decode status %d", st);
    if (st != KG_PHOTO_OK) {
        FZ_CHECK(g.px == NULL && err.msg[0], "a refused decode left pixels or no message");
        /* kg_photo_load is decode + prepare: it refuses the same way (only checked here, where it is cheap; the
         * preprocessing of a large image costs ~0.1 s under the sanitizers and is not done twice) */
        dg_err e2 = {{0}};
        int lst = kg_photo_load(img, data, size, &info, &e2);
        FZ_CHECK(lst == st && strcmp(err.msg, e2.msg) == 0, "load says %d '%s', decode %d '%s'", lst, e2.msg, st,
                 err.msg);
        return 0;
    }
    FZ_CHECK(g.px && g.w >= 1 && g.h >= 1 && g.w <= KG_PHOTO_MAX_SIDE && g.h <= KG_PHOTO_MAX_SIDE &&
                 (unsigned long)g.w * (unsigned long)g.h <= KG_PHOTO_MAX_PIXELS,
             "decoded %dx%d", g.w, g.h);
    int w = g.w, h = g.h;
    st = kg_photo_prepare(img, &g, &info, &err);
    kg_photo_grey_free(&g);
    FZ_CHECK(st == KG_PHOTO_OK || st == KG_PHOTO_NO_INK || st == KG_PHOTO_SEVERAL, "prepare status %d: %s", st,
             err.msg);
    FZ_CHECK(st == KG_PHOTO_OK || err.msg[0], "status %s without a message", kg_photo_status_name(st));
    FZ_CHECK(info.w == w && info.h == h, "info size %dx%d, decoded %dx%d", info.w, info.h, w, h);
    if (st != KG_PHOTO_OK) return 0;
    FZ_CHECK(info.blobs >= 1 && info.specks >= 0, "%d blobs, %d specks", info.blobs, info.specks);

    /* the 28x28 image */
    int mx = 0, x0 = DG_SIDE, y0 = DG_SIDE, x1 = -1, y1 = -1;
    for (int y = 0; y < DG_SIDE; y++)
        for (int x = 0; x < DG_SIDE; x++) {
            int q = img[y * DG_SIDE + x];
            mx = q > mx ? q : mx;
            if (q) x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1, y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
        }
    FZ_CHECK(mx == 255, "brightest pixel %d", mx);
    FZ_CHECK(x1 - x0 < 20 && y1 - y0 < 20, "ink box %dx%d (at most 20x20)", x1 - x0 + 1, y1 - y0 + 1);
    double cx, cy;
    kg_photo_com(img, &cx, &cy);
    FZ_CHECK(cx >= 0 && cx <= DG_SIDE - 1 && cy >= 0 && cy <= DG_SIDE - 1, "centre of mass (%g, %g)", cx, cy);

    /* written as PNG and read back */
    void *png = NULL;
    size_t n = 0;
    FZ_CHECK(kg_photo_png_encode(&png, &n, img, DG_SIDE, DG_SIDE, &err) == 0, "encode: %s", err.msg);
    FZ_CHECK(kg_photo_decode(&g, png, n, &err) == KG_PHOTO_OK, "own PNG does not decode: %s", err.msg);
    FZ_CHECK(g.w == DG_SIDE && g.h == DG_SIDE && memcmp(g.px, img, DG_PIXELS) == 0, "own PNG reads back different");
    kg_photo_grey_free(&g);
    free(png);
    return 0;
}
