/* Tests for kaggle/photo: decoding and the MNIST-style preprocessing of a person's own digit images.
 *
 * Images are drawn here (thick strokes on a big noisy canvas) and encoded with libpng/libjpeg directly, so the
 * checks do not lean on the module's own encoder except where said. What must hold: the ink's centre of mass
 * lands at (14, 14) within 1 px and the ink fits a 20x20 box touching two of its sides (computed here, not with
 * kg_photo_com); dark-on-light and light-on-dark give the same image; grey, RGB, alpha, PNG and JPEG agree; a
 * blank image is "no ink"; two similar blobs side by side are "several digits", a digit in two strokes one above
 * the other is not; a far speck does not move the crop; corrupt, truncated, empty and non-images are clear
 * errors; huge declared dimensions are refused before decoding (files that hold no pixel data at all). On the
 * committed set of tests/fixtures/photo (tests/kaggle/gen_photos.py) every image is usable and centred, and each
 * train.csv digit turned into a photo comes back close to the original 28x28 digit (correlation). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "cli_check.h"
#include "kaggle/photo.h"
#include "kaggle/predict.h"
#include "core/dg_dataset.h"
#include "core/dg_file.h"

#define FIX DIGITS_FIXTURES "/photo/"
#define PI 3.14159265358979323846

/* ---- drawing ---- */

typedef struct canvas {
    int w, h;
    uint8_t *px; /* grey */
} canvas;

static canvas new_canvas(int w, int h, int bg, unsigned noise, uint32_t seed) {
    canvas c = {w, h, malloc((size_t)w * h)};
    assert_non_null(c.px);
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < (size_t)w * h; i++) {
        s = s * 1664525u + 1013904223u;
        int v = bg + (noise ? (int)((s >> 24) % (2 * noise + 1)) - (int)noise : 0);
        c.px[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    return c;
}

/* A stroke of radius r from (x0, y0) to (x1, y1) in grey level ink. */
static void stroke(canvas *c, double x0, double y0, double x1, double y1, double r, int ink) {
    for (int y = 0; y < c->h; y++)
        for (int x = 0; x < c->w; x++) {
            double dx = x1 - x0, dy = y1 - y0, t = ((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy + 1e-12);
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            double ex = x - (x0 + t * dx), ey = y - (y0 + t * dy);
            if (ex * ex + ey * ey <= r * r) c->px[(size_t)y * c->w + x] = (uint8_t)ink;
        }
}

/* A ring (a "0") centred at (cx, cy), radii rx, ry, stroke radius r. */
static void ring(canvas *c, double cx, double cy, double rx, double ry, double r, int ink) {
    for (int k = 0; k < 48; k++) {
        double a0 = k * 2 * PI / 48, a1 = (k + 1) * 2 * PI / 48;
        stroke(c, cx + rx * cos(a0), cy + ry * sin(a0), cx + rx * cos(a1), cy + ry * sin(a1), r, ink);
    }
}

/* A "7": a bar and a slanted stem, in a box at (x, y) of size s. */
static void seven(canvas *c, double x, double y, double s, double r, int ink) {
    stroke(c, x, y, x + s * 0.7, y, r, ink);
    stroke(c, x + s * 0.7, y, x + s * 0.25, y + s, r, ink);
}

/* ---- encoders (libpng, libjpeg) ---- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void buf_put(buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void png_put(png_structp png, png_bytep d, png_size_t n) {
    buf_put(png_get_io_ptr(png), d, n);
}

static void png_noflush(png_structp png) {
    (void)png;
}

/* PNG of w x h pixels with ch channels (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA). */
static buf png_of(const uint8_t *px, int w, int h, int ch) {
    static const int types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                 PNG_COLOR_TYPE_RGBA};
    buf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png))) fail_msg("png encode");
    png_set_write_fn(png, &b, png_put, png_noflush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, types[ch], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, (png_bytep)px + (size_t)y * w * ch);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return b;
}

/* JPEG (quality 85) of w x h pixels, ch 1 (grey) or 3 (RGB). */
static buf jpeg_of(const uint8_t *px, int w, int h, int ch) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    unsigned char *mem = NULL;
    unsigned long n = 0;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &mem, &n);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = ch;
    c.in_color_space = ch == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 85, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)px + (size_t)c.next_scanline * w * ch;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    buf b = {0};
    buf_put(&b, mem, n);
    free(mem);
    return b;
}

/* ---- checks on a 28x28 result ---- */

/* Centre of mass (index coordinates) and the ink's bounding box, computed here. */
static void ink_stats(const uint8_t *img, double *cx, double *cy, int *bw, int *bh) {
    double s = 0, sx = 0, sy = 0;
    int x0 = 28, y0 = 28, x1 = -1, y1 = -1;
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            int v = img[y * 28 + x];
            if (!v) continue;
            s += v, sx += (double)v * x, sy += (double)v * y;
            x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1, y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
        }
    assert_true(s > 0);
    *cx = sx / s, *cy = sy / s, *bw = x1 - x0 + 1, *bh = y1 - y0 + 1;
}

/* MNIST's layout: ink within 20x20 (filling it on the long side), centre of mass at (14, 14) within 1 px, and
 * the full range of grey levels. */
static void assert_mnist_like(const uint8_t *img, const char *what) {
    double cx, cy;
    int bw, bh, mx = 0;
    ink_stats(img, &cx, &cy, &bw, &bh);
    for (int i = 0; i < DG_PIXELS; i++) mx = img[i] > mx ? img[i] : mx;
    if (fabs(cx - 14) > 1 || fabs(cy - 14) > 1 || bw > 20 || bh > 20 || (bw < 19 && bh < 19) || mx != 255)
        fail_msg("%s: centre of mass (%.2f, %.2f), ink box %dx%d, max %d", what, cx, cy, bw, bh, mx);
}

/* Pearson correlation of two 28x28 images, b shifted by (dx, dy) (zero outside). */
static double correlation_at(const uint8_t *a, const uint8_t *b, int dx, int dy) {
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0, bs[DG_PIXELS];
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            int sx = x - dx, sy = y - dy;
            bs[y * 28 + x] = sx < 0 || sy < 0 || sx >= 28 || sy >= 28 ? 0 : b[sy * 28 + sx];
        }
    for (int i = 0; i < DG_PIXELS; i++) ma += a[i], mb += bs[i];
    ma /= DG_PIXELS, mb /= DG_PIXELS;
    for (int i = 0; i < DG_PIXELS; i++)
        sab += (a[i] - ma) * (bs[i] - mb), saa += (a[i] - ma) * (a[i] - ma), sbb += (bs[i] - mb) * (bs[i] - mb);
    return sab / sqrt(saa * sbb);
}

/* The best correlation over placements within 1 px: centring by an integer shift may round a centre of mass at
 * x.5 either way. */
static double correlation(const uint8_t *a, const uint8_t *b) {
    double best = -1;
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) {
            double r = correlation_at(a, b, dx, dy);
            best = r > best ? r : best;
        }
    return best;
}

static int prepare_png(uint8_t *out, const canvas *c, kg_photo_info *info, dg_err *err) {
    buf b = png_of(c->px, c->w, c->h, 1);
    int rc = kg_photo_load(out, b.p, b.n, info, err);
    free(b.p);
    return rc;
}

/* ---- tests ---- */

/* A "7" drawn off-centre on a big noisy light canvas, and the same inverted: same image, polarity found. */
static void test_polarity_and_layout(void **state) {
    (void)state;
    canvas dark = new_canvas(400, 300, 225, 12, 1), light = new_canvas(400, 300, 30, 12, 1);
    seven(&dark, 240, 40, 150, 9, 40);
    seven(&light, 240, 40, 150, 9, 215);
    uint8_t a[DG_PIXELS], b[DG_PIXELS];
    kg_photo_info ia, ib;
    dg_err err = {{0}};
    assert_int_equal(prepare_png(a, &dark, &ia, &err), KG_PHOTO_OK);
    assert_int_equal(prepare_png(b, &light, &ib, &err), KG_PHOTO_OK);
    assert_int_equal(ia.inverted, 1);
    assert_int_equal(ib.inverted, 0);
    assert_int_equal(ia.w, 400);
    assert_int_equal(ia.h, 300);
    assert_mnist_like(a, "dark on light");
    assert_mnist_like(b, "light on dark");
    double r = correlation(a, b);
    if (r < 0.95) fail_msg("dark-on-light and light-on-dark differ: correlation %.3f", r);
    /* the 7 upright: a wide bar in its top rows, its stem's end at the bottom left */
    int y0 = 28, y1 = -1, x0 = 28, x1 = -1;
    for (int i = 0; i < DG_PIXELS; i++)
        if (a[i]) y0 = i / 28 < y0 ? i / 28 : y0, y1 = i / 28, x0 = i % 28 < x0 ? i % 28 : x0, x1 = i % 28 > x1 ? i % 28 : x1;
    int bar = 0, bottom_right = 0;
    for (int x = 0; x < 28; x++) bar += a[(y0 + 1) * 28 + x] > 128;
    for (int x = (x0 + x1) / 2 + 1; x < 28; x++) bottom_right += a[y1 * 28 + x] > 0;
    if (bar < 8 || bottom_right) fail_msg("top row: %d inked pixels; bottom row right half: %d", bar, bottom_right);
    free(dark.px), free(light.px);
}

/* A 28x28 MNIST-like input stays itself (no blur, no filter): the same layout. */
static void test_small_input(void **state) {
    (void)state;
    canvas c = new_canvas(28, 28, 0, 0, 0);
    ring(&c, 14, 14, 5, 9, 1.2, 255);
    uint8_t out[DG_PIXELS];
    kg_photo_info info;
    dg_err err = {{0}};
    assert_int_equal(prepare_png(out, &c, &info, &err), KG_PHOTO_OK);
    assert_int_equal(info.inverted, 0);
    assert_mnist_like(out, "28x28 ring");
    free(c.px);
}

/* Grey PNG, RGB PNG (coloured ink on coloured paper), RGBA PNG with transparent background, grey JPEG, RGB JPEG:
 * the same digit. */
static void test_formats_agree(void **state) {
    (void)state;
    int w = 240, h = 240;
    canvas g = new_canvas(w, h, 230, 0, 0);
    ring(&g, 120, 110, 45, 70, 8, 30);
    uint8_t *rgb = malloc((size_t)w * h * 3), *rgba = malloc((size_t)w * h * 4);
    assert_non_null(rgb);
    assert_non_null(rgba);
    for (int i = 0; i < w * h; i++) {
        int ink = g.px[i] < 128;
        rgb[3 * i] = ink ? 20 : 240, rgb[3 * i + 1] = ink ? 40 : 230, rgb[3 * i + 2] = ink ? 160 : 200; /* blue pen */
        rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = 0;                                         /* black ink */
        rgba[4 * i + 3] = ink ? 255 : 0; /* on a transparent canvas */
    }
    uint8_t ref[DG_PIXELS], out[DG_PIXELS];
    dg_err err = {{0}};
    kg_photo_info info;
    assert_int_equal(prepare_png(ref, &g, &info, &err), KG_PHOTO_OK);
    assert_mnist_like(ref, "grey PNG");
    buf bufs[4] = {png_of(rgb, w, h, 3), png_of(rgba, w, h, 4), jpeg_of(g.px, w, h, 1), jpeg_of(rgb, w, h, 3)};
    const char *names[4] = {"RGB PNG", "RGBA PNG", "grey JPEG", "RGB JPEG"};
    for (int k = 0; k < 4; k++) {
        int rc = kg_photo_load(out, bufs[k].p, bufs[k].n, &info, &err);
        if (rc != KG_PHOTO_OK) fail_msg("%s: %s", names[k], err.msg);
        assert_mnist_like(out, names[k]);
        double r = correlation(ref, out);
        if (r < 0.95) fail_msg("%s differs from the grey PNG: correlation %.3f", names[k], r);
        free(bufs[k].p);
    }
    free(g.px), free(rgb), free(rgba);
}

static void test_blank(void **state) {
    (void)state;
    canvas flat = new_canvas(300, 300, 240, 0, 0), noisy = new_canvas(300, 300, 200, 15, 3),
           black = new_canvas(28, 28, 0, 0, 0);
    canvas *cs[3] = {&flat, &noisy, &black};
    for (int k = 0; k < 3; k++) {
        uint8_t out[DG_PIXELS];
        dg_err err = {{0}};
        assert_int_equal(prepare_png(out, cs[k], NULL, &err), KG_PHOTO_NO_INK);
        assert_has(err.msg, "no ink");
        free(cs[k]->px);
    }
}

static void test_several_digits(void **state) {
    (void)state;
    canvas two = new_canvas(400, 200, 235, 8, 4);
    ring(&two, 110, 100, 40, 65, 7, 30);
    seven(&two, 230, 35, 130, 7, 30);
    uint8_t out[DG_PIXELS];
    dg_err err = {{0}};
    assert_int_equal(prepare_png(out, &two, NULL, &err), KG_PHOTO_SEVERAL);
    assert_has(err.msg, "several digits");
    /* a "5" whose flag is a separate stroke above the body is one digit */
    canvas five = new_canvas(300, 300, 235, 8, 5);
    stroke(&five, 110, 60, 200, 60, 8, 30);  /* flag, apart from the rest */
    stroke(&five, 105, 90, 100, 150, 8, 30); /* down */
    ring(&five, 145, 195, 45, 45, 8, 30);    /* belly */
    err.msg[0] = '\0';
    if (prepare_png(out, &five, NULL, &err) != KG_PHOTO_OK) fail_msg("a 5 in strokes: %s", err.msg);
    assert_mnist_like(out, "5 in strokes");
    free(two.px), free(five.px);
}

/* Specks (dust, a dot of noise) are erased: far ones do not move the crop, one inside it does not show. */
static void test_specks(void **state) {
    (void)state;
    canvas c = new_canvas(300, 300, 230, 0, 0), d = new_canvas(300, 300, 230, 0, 0);
    ring(&c, 150, 150, 40, 60, 7, 30);
    ring(&d, 150, 150, 40, 60, 7, 30);
    stroke(&d, 20, 20, 21, 21, 3, 30);
    stroke(&d, 280, 270, 280, 270, 2, 30);
    stroke(&d, 150, 150, 151, 150, 3, 30); /* inside the ring's hole: within the crop, still a speck */
    uint8_t a[DG_PIXELS], b[DG_PIXELS];
    kg_photo_info ia, ib;
    dg_err err = {{0}};
    assert_int_equal(prepare_png(a, &c, &ia, &err), KG_PHOTO_OK);
    assert_int_equal(prepare_png(b, &d, &ib, &err), KG_PHOTO_OK);
    assert_int_equal(ia.specks, 0);
    assert_int_equal(ib.specks, 3);
    assert_memory_equal(a, b, DG_PIXELS);
    free(c.px), free(d.px);
}

/* Thin and thick pens come out with strokes near MNIST's: ink covers a similar share of the 28x28 image. */
static void test_stroke_width(void **state) {
    (void)state;
    double share[3];
    const double radius[3] = {1.0, 6.0, 40.0};
    for (int k = 0; k < 3; k++) {
        canvas c = new_canvas(600, 600, 230, 0, 0);
        ring(&c, 300, 300, 120, 200, radius[k], 30);
        uint8_t out[DG_PIXELS];
        dg_err err = {{0}};
        if (prepare_png(out, &c, NULL, &err) != KG_PHOTO_OK) fail_msg("pen %g: %s", radius[k], err.msg);
        int ink = 0;
        for (int i = 0; i < DG_PIXELS; i++) ink += out[i] >= 128;
        share[k] = ink / (double)DG_PIXELS;
        free(c.px);
    }
    /* MNIST digits: about 10-20% of the pixels at >= 128; a 2 px pen on 600 px without the filter gives ~1% */
    for (int k = 0; k < 3; k++)
        if (share[k] < 0.06 || share[k] > 0.35) fail_msg("pen radius %g: %.3f of the pixels inked", radius[k], share[k]);
}

static void test_bad_files(void **state) {
    (void)state;
    canvas c = new_canvas(120, 120, 230, 0, 0);
    ring(&c, 60, 60, 20, 35, 5, 30);
    buf png = png_of(c.px, 120, 120, 1), jpg = jpeg_of(c.px, 120, 120, 1);
    uint8_t out[DG_PIXELS];
    static const struct {
        int which; /* 0 png, 1 jpeg, 2 literal */
        size_t keep;
        const char *lit, *want;
        int rc;
    } cases[] = {
        {2, 0, "", "empty image", KG_PHOTO_BAD},
        {2, 0, "hello, I am text", "not a PNG or JPEG", KG_PHOTO_BAD},
        {2, 0, "GIF89a....", "not a PNG or JPEG", KG_PHOTO_BAD},
        {0, 8, NULL, "PNG: corrupt or truncated", KG_PHOTO_BAD},
        {0, 40, NULL, "PNG: corrupt or truncated", KG_PHOTO_BAD},
        {0, (size_t)-200, NULL, "PNG: corrupt or truncated", KG_PHOTO_BAD},
        {1, 3, NULL, "JPEG: corrupt or truncated", KG_PHOTO_BAD},
        {1, (size_t)-300, NULL, "JPEG: truncated", KG_PHOTO_BAD},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const buf *b = cases[i].which == 0 ? &png : &jpg;
        const void *data = cases[i].which == 2 ? (const void *)cases[i].lit : b->p;
        size_t n = cases[i].which == 2 ? strlen(cases[i].lit)
                   : cases[i].keep > b->n ? b->n - (size_t)-cases[i].keep : cases[i].keep;
        dg_err err = {{0}};
        int rc = kg_photo_load(out, data, n, NULL, &err);
        if (rc != cases[i].rc) fail_msg("case %zu: rc %d (%s)", i, rc, err.msg);
        assert_has(err.msg, cases[i].want);
    }
    /* a corrupt byte inside the PNG's image data: its checksum fails */
    png.p[png.n - 20] ^= 0x55;
    dg_err err = {{0}};
    assert_int_equal(kg_photo_load(out, png.p, png.n, NULL, &err), KG_PHOTO_BAD);
    assert_has(err.msg, "PNG: corrupt");
    free(png.p), free(jpg.p), free(c.px);
}

/* CRC-32 of PNG chunks (ISO 3309), bit by bit. */
static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return c ^ 0xffffffffu;
}

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* A PNG of a signature and a valid IHDR chunk claiming w x h, and NO image data: refused as too large (not as
 * truncated) means the size was checked before any decoding. */
static void test_huge_declared(void **state) {
    (void)state;
    static const uint32_t sizes[][2] = {{20000, 20000}, {10001, 10}, {6000, 6000}, {0x7fffffff, 1}};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        uint8_t f[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        put32(f + 8, 13);
        memcpy(f + 12, "IHDR", 4);
        put32(f + 16, sizes[k][0]);
        put32(f + 20, sizes[k][1]);
        f[24] = 8, f[25] = 0; /* 8-bit grey */
        put32(f + 29, crc32_of(f + 12, 17));
        uint8_t out[DG_PIXELS];
        dg_err err = {{0}};
        int rc = kg_photo_load(out, f, sizeof f, NULL, &err);
        if (rc != KG_PHOTO_TOO_LARGE) fail_msg("%ux%u: rc %d: %s", sizes[k][0], sizes[k][1], rc, err.msg);
        assert_has(err.msg, "too large");
    }
    /* a real JPEG whose frame header is changed to 20000x20000 */
    canvas c = new_canvas(64, 64, 230, 0, 0);
    ring(&c, 32, 32, 10, 20, 3, 30);
    buf j = jpeg_of(c.px, 64, 64, 1);
    size_t sof = 0;
    for (size_t i = 2; i + 9 < j.n && !sof; i++)
        if (j.p[i] == 0xff && j.p[i + 1] == 0xc0) sof = i;
    assert_true(sof > 0);
    j.p[sof + 5] = 20000 >> 8, j.p[sof + 6] = 20000 & 255, j.p[sof + 7] = 20000 >> 8, j.p[sof + 8] = 20000 & 255;
    uint8_t out[DG_PIXELS];
    dg_err err = {{0}};
    assert_int_equal(kg_photo_load(out, j.p, j.n, NULL, &err), KG_PHOTO_TOO_LARGE);
    assert_has(err.msg, "20000x20000 pixels is too large");
    free(j.p), free(c.px);
}

/* The module's PNG encoder round-trips through its decoder. */
static void test_png_encode(void **state) {
    (void)state;
    uint8_t img[DG_PIXELS];
    for (int i = 0; i < DG_PIXELS; i++) img[i] = (uint8_t)(i * 7);
    void *png = NULL;
    size_t n = 0;
    dg_err err = {{0}};
    assert_int_equal(kg_photo_png_encode(&png, &n, img, 28, 28, &err), 0);
    kg_photo_grey g;
    assert_int_equal(kg_photo_decode(&g, png, n, &err), KG_PHOTO_OK);
    assert_int_equal(g.w, 28);
    assert_int_equal(g.h, 28);
    assert_memory_equal(g.px, img, DG_PIXELS);
    kg_photo_grey_free(&g);
    free(png);
}

/* The committed set: every image is usable and MNIST-like, and each train.csv digit made into a photo comes back
 * close to its original. */
static void test_fixture_set(void **state) {
    (void)state;
    FILE *f = fopen(FIX "labels.csv", "r");
    assert_non_null(f);
    kg_images src;
    dg_err err = {{0}};
    if (kg_images_open(&src, FIX "sources.npy", &err) != 0) fail_msg("%s", err.msg);
    char line[512];
    int n = 0, n_train = 0;
    double worst = 1, sum = 0;
    assert_non_null(fgets(line, sizeof line, f)); /* header */
    while (fgets(line, sizeof line, f)) {
        char name[128], path[256];
        assert_int_equal(sscanf(line, "%127[^,]", name), 1);
        snprintf(path, sizeof path, FIX "%s", name);
        char *data;
        size_t len;
        assert_int_equal(dg_read_file(path, &data, &len, &err), 0);
        uint8_t out[DG_PIXELS];
        if (kg_photo_load(out, data, len, NULL, &err) != KG_PHOTO_OK) fail_msg("%s", err.msg);
        assert_mnist_like(out, name);
        if (strncmp(name, "train-", 6) == 0) {
            double r = correlation(out, kg_images_get(&src, (size_t)n_train++));
            worst = r < worst ? r : worst;
            sum += r;
        }
        free(data);
        n++;
    }
    fclose(f);
    assert_true(n >= 50);
    assert_int_equal((size_t)n_train, src.n);
    print_message("%d images; train digits vs originals: correlation mean %.3f, worst %.3f\n", n, sum / n_train,
                  worst);
    /* thickened/thinned strokes and JPEG lower it; a misplaced or mis-scaled digit would be far below */
    if (sum / n_train < 0.75 || worst < 0.5) fail_msg("mean %.3f worst %.3f", sum / n_train, worst);
    kg_images_close(&src);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_polarity_and_layout), cmocka_unit_test(test_small_input),
        cmocka_unit_test(test_formats_agree),       cmocka_unit_test(test_blank),
        cmocka_unit_test(test_several_digits),      cmocka_unit_test(test_specks),
        cmocka_unit_test(test_stroke_width),        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_huge_declared),       cmocka_unit_test(test_png_encode),
        cmocka_unit_test(test_fixture_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
