/* kaggle/photo: decoding a person's digit image and making it MNIST-like (see photo.h). */
#include "kaggle/photo.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which needs FILE */

#include <jerror.h>
#include <jpeglib.h>
#include <stdlib.h>
#include <string.h>

#include "core/dg_dataset.h"

const char *kg_photo_status_name(int status) {
    switch (status) {
    case KG_PHOTO_OK: return "ok";
    case KG_PHOTO_TOO_LARGE: return "too_large";
    case KG_PHOTO_NO_INK: return "no_ink";
    case KG_PHOTO_SEVERAL: return "several_digits";
    default: return "bad_image";
    }
}

void kg_photo_grey_free(kg_photo_grey *g) {
    free(g->px);
    memset(g, 0, sizeof *g);
}

static int size_check(long w, long h, const char *fmt, dg_err *err) {
    if (w < 1 || h < 1) return dg_fail(err, "%s image of %ldx%ld pixels: empty", fmt, w, h), KG_PHOTO_BAD;
    if (w > KG_PHOTO_MAX_SIDE || h > KG_PHOTO_MAX_SIDE || (unsigned long)w * (unsigned long)h > KG_PHOTO_MAX_PIXELS) {
        dg_fail(err, "%s image of %ldx%ld pixels is too large (at most %d a side and %u Mpx); not decoded", fmt, w,
                h, KG_PHOTO_MAX_SIDE, KG_PHOTO_MAX_PIXELS >> 20);
        return KG_PHOTO_TOO_LARGE;
    }
    return KG_PHOTO_OK;
}

/* Luminance of RGB (Rec. 601, as libjpeg's grey conversion). */
static uint8_t luma(const uint8_t *p) {
    return (uint8_t)((299u * p[0] + 587u * p[1] + 114u * p[2] + 500u) / 1000u);
}

/* px (w*h*ch, ch 1..4: grey, grey+alpha, RGB, RGBA) to grey. Alpha is composited onto the background opposite to
 * the mean colour of the opaque pixels (the ink of a drawing on a transparent canvas). */
static void to_grey(uint8_t *dst, const uint8_t *px, size_t n, int ch) {
    int alpha = ch == 2 || ch == 4;
    double ink = 0, wsum = 0;
    int translucent = 0;
    for (size_t i = 0; alpha && i < n; i++) {
        const uint8_t *p = px + i * (size_t)ch;
        uint8_t a = p[ch - 1];
        if (a < 250) translucent = 1;
        if (a >= 128) ink += (ch == 4 ? luma(p) : p[0]) * (double)a, wsum += a;
    }
    int bg = wsum > 0 && ink / wsum < 128 ? 255 : 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = px + i * (size_t)ch;
        unsigned l = ch >= 3 ? luma(p) : p[0];
        if (alpha && translucent) {
            unsigned a = p[ch - 1];
            l = (l * a + (unsigned)bg * (255u - a) + 127u) / 255u;
        }
        dst[i] = (uint8_t)l;
    }
}

/* ---- PNG ---- */

typedef struct mem_reader {
    const uint8_t *p;
    size_t n, at;
} mem_reader;

static void png_read_mem(png_structp png, png_bytep out, png_size_t len) {
    mem_reader *r = png_get_io_ptr(png);
    if (len > r->n - r->at) png_error(png, "truncated file");
    memcpy(out, r->p + r->at, len);
    r->at += len;
}

typedef struct png_errbuf {
    char msg[200];
} png_errbuf;

static void png_on_error(png_structp png, png_const_charp msg) {
    png_errbuf *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png, (void)msg;
}

static int decode_png(kg_photo_grey *out, const uint8_t *data, size_t n, dg_err *err) {
    /* the IHDR chunk comes first (signature, length, "IHDR", width, height): read the size before libpng does */
    if (n >= 24 && memcmp(data + 12, "IHDR", 4) == 0) {
        unsigned long w = (unsigned long)data[16] << 24 | (unsigned long)data[17] << 16 | data[18] << 8 | data[19];
        unsigned long h = (unsigned long)data[20] << 24 | (unsigned long)data[21] << 16 | data[22] << 8 | data[23];
        int st = size_check((long)w, (long)h, "PNG", err);
        if (st != KG_PHOTO_OK) return st;
    }
    mem_reader r = {data, n, 0};
    png_errbuf e = {{0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &e, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *volatile px = NULL;
    png_bytep *volatile rows = NULL;
    volatile int rc = KG_PHOTO_BAD;
    if (!png || !info) {
        dg_fail(err, "PNG: out of memory");
        goto done;
    }
    if (setjmp(png_jmpbuf(png))) {
        dg_fail(err, "PNG: corrupt or truncated image: %s", e.msg);
        goto done;
    }
    png_set_read_fn(png, &r, png_read_mem);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int st = size_check((long)w, (long)h, "PNG", err);
    if (st != KG_PHOTO_OK) {
        rc = st;
        goto done;
    }
    png_set_expand(png);   /* palette -> RGB, grey < 8 bits -> 8, tRNS -> alpha */
    png_set_strip_16(png); /* 16 -> 8 bits */
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int ch = png_get_channels(png, info);
    if (ch < 1 || ch > 4 || png_get_rowbytes(png, info) != (size_t)w * (size_t)ch) {
        dg_fail(err, "PNG: unexpected layout after conversion (%d channels)", ch);
        goto done;
    }
    px = malloc((size_t)w * h * (size_t)ch);
    rows = malloc(sizeof(png_bytep) * h);
    if (!px || !rows) {
        dg_fail(err, "PNG: out of memory for %ux%u pixels", (unsigned)w, (unsigned)h);
        goto done;
    }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = px + (size_t)y * w * (size_t)ch;
    png_read_image(png, rows);
    out->px = malloc((size_t)w * h);
    if (!out->px) {
        dg_fail(err, "PNG: out of memory for %ux%u pixels", (unsigned)w, (unsigned)h);
        goto done;
    }
    to_grey(out->px, px, (size_t)w * h, ch);
    out->w = (int)w;
    out->h = (int)h;
    rc = KG_PHOTO_OK;
done:
    png_destroy_read_struct(&png, &info, NULL);
    free(px);
    free(rows);
    return rc;
}

/* ---- JPEG ---- */

typedef struct jpeg_errmgr {
    struct jpeg_error_mgr pub;
    jmp_buf jmp;
    char msg[JMSG_LENGTH_MAX];
    int truncated;
} jpeg_errmgr;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_errmgr *e = (jpeg_errmgr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    longjmp(e->jmp, 1);
}

static void jpeg_on_message(j_common_ptr cinfo, int level) {
    jpeg_errmgr *e = (jpeg_errmgr *)cinfo->err;
    if (level == -1 && cinfo->err->msg_code == JWRN_JPEG_EOF) e->truncated = 1; /* libjpeg would pad with grey */
}

static int decode_jpeg(kg_photo_grey *out, const uint8_t *data, size_t n, dg_err *err) {
    struct jpeg_decompress_struct cinfo;
    jpeg_errmgr e;
    memset(&e, 0, sizeof e);
    uint8_t *volatile px = NULL;
    volatile int rc = KG_PHOTO_BAD;
    cinfo.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = jpeg_on_error;
    e.pub.emit_message = jpeg_on_message;
    if (setjmp(e.jmp)) {
        dg_fail(err, "JPEG: corrupt or truncated image: %s", e.msg);
        goto done;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)n);
    jpeg_read_header(&cinfo, TRUE);
    int st = size_check((long)cinfo.image_width, (long)cinfo.image_height, "JPEG", err);
    if (st != KG_PHOTO_OK) {
        rc = st;
        goto done;
    }
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        dg_fail(err, "JPEG: CMYK images are not supported; save it as RGB or grey");
        goto done;
    }
    cinfo.out_color_space = JCS_GRAYSCALE;
    /* decode at the smallest DCT scale that still gives the working resolution */
    unsigned side = cinfo.image_width > cinfo.image_height ? cinfo.image_width : cinfo.image_height;
    cinfo.scale_num = 1;
    cinfo.scale_denom = 1;
    while (cinfo.scale_denom < 8 && side / (cinfo.scale_denom * 2) >= KG_PHOTO_WORK) cinfo.scale_denom *= 2;
    jpeg_start_decompress(&cinfo);
    size_t w = cinfo.output_width, h = cinfo.output_height;
    px = malloc(w * h);
    if (!px || cinfo.output_components != 1) {
        dg_fail(err, "JPEG: out of memory for %zux%zu pixels", w, h);
        goto done;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = px + (size_t)cinfo.output_scanline * w;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    if (e.truncated) {
        dg_fail(err, "JPEG: truncated image (the data ends before the last pixel)");
        goto done;
    }
    out->px = px;
    out->w = (int)w;
    out->h = (int)h;
    px = NULL;
    rc = KG_PHOTO_OK;
done:
    jpeg_destroy_decompress(&cinfo);
    free(px);
    return rc;
}

int kg_photo_decode(kg_photo_grey *out, const void *data, size_t n, dg_err *err) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const uint8_t *p = data;
    memset(out, 0, sizeof *out);
    if (n == 0) return dg_fail(err, "empty image (0 bytes)"), KG_PHOTO_BAD;
    if (n >= 8 && memcmp(p, png_sig, 8) == 0) return decode_png(out, p, n, err);
    if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff) return decode_jpeg(out, p, n, err);
    return dg_fail(err, "not a PNG or JPEG image (%zu bytes starting %02x %02x %02x %02x)", n, p[0],
                   n > 1 ? p[1] : 0, n > 2 ? p[2] : 0, n > 3 ? p[3] : 0),
           KG_PHOTO_BAD;
}

/* ---- preprocessing ---- */

/* Box-average src (sw x sh) down by an integer factor k into dst (ceil(sw/k) x ceil(sh/k)). */
static void box_down(float *dst, const uint8_t *src, int sw, int sh, int k) {
    int dw = (sw + k - 1) / k, dh = (sh + k - 1) / k;
    for (int y = 0; y < dh; y++)
        for (int x = 0; x < dw; x++) {
            double s = 0;
            int c = 0;
            for (int yy = y * k; yy < sh && yy < (y + 1) * k; yy++)
                for (int xx = x * k; xx < sw && xx < (x + 1) * k; xx++) s += src[(size_t)yy * sw + xx], c++;
            dst[(size_t)y * dw + x] = (float)(s / c);
        }
}

/* 3x3 box blur (edges average what exists). */
static void blur3(float *dst, const float *src, int w, int h) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float s = 0;
            int c = 0;
            for (int yy = y - 1; yy <= y + 1; yy++)
                for (int xx = x - 1; xx <= x + 1; xx++)
                    if (xx >= 0 && yy >= 0 && xx < w && yy < h) s += src[(size_t)yy * w + xx], c++;
            dst[(size_t)y * w + x] = s / (float)c;
        }
}

/* Median of the border ring (b pixels wide) of a w x h image with values in [0, 255]. */
static float border_median(const float *v, int w, int h) {
    unsigned hist[256] = {0}, n = 0;
    int b = (w < h ? w : h) / 32;
    if (b < 1) b = 1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (x < b || y < b || x >= w - b || y >= h - b) {
                int q = (int)lrintf(v[(size_t)y * w + x]);
                hist[q < 0 ? 0 : q > 255 ? 255 : q]++, n++;
            }
    unsigned acc = 0;
    for (int q = 0; q < 256; q++)
        if ((acc += hist[q]) * 2 >= n) return (float)q;
    return 255;
}

/* Separable square max (dilate > 0) or min (erode) filter of radius r on v (w x h), in place; tmp: w*h floats.
 * The naive version (2r+1 comparisons a pixel and pass); morph below gives the same values in O(1). */
static void morph_ref(float *v, float *tmp, int w, int h, int r, int dilate) {
    for (int pass = 0; pass < 2; pass++) {
        const float *s = pass ? tmp : v;
        float *d = pass ? v : tmp;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float m = s[(size_t)y * w + x];
                for (int t = -r; t <= r; t++) {
                    int xx = pass ? x : x + t, yy = pass ? y + t : y;
                    if (xx < 0 || yy < 0 || xx >= w || yy >= h) continue; /* outside: no contribution */
                    float q = s[(size_t)yy * w + xx];
                    m = dilate ? (q > m ? q : m) : (q < m ? q : m);
                }
                d[(size_t)y * w + x] = m;
            }
    }
}

static float pick(float a, float b, int dilate) { return dilate ? (a > b ? a : b) : (a < b ? a : b); }

/* One line of n values (stride apart) through the running max/min of width 2r+1 (van Herk / Gil-Werman): the line
 * padded by r values that never win on each side is cut into blocks of 2r+1; g holds the max from each block's
 * start, h the max to its end, and a window [i, i+2r] of the padded line is h[i] with g[i+2r]. g, h: n+2r floats. */
static void morph_line(float *dst, const float *src, size_t stride, int n, int r, int dilate, float *g, float *h) {
    int m = n + 2 * r, k = 2 * r + 1;
    float none = dilate ? -INFINITY : INFINITY;
    for (int j = 0; j < m; j++) {
        float p = j >= r && j < n + r ? src[(size_t)(j - r) * stride] : none;
        g[j] = j % k == 0 ? p : pick(g[j - 1], p, dilate);
    }
    for (int j = m - 1; j >= 0; j--) {
        float p = j >= r && j < n + r ? src[(size_t)(j - r) * stride] : none;
        h[j] = j % k == k - 1 || j == m - 1 ? p : pick(h[j + 1], p, dilate);
    }
    for (int i = 0; i < n; i++) dst[(size_t)i * stride] = pick(h[i], g[i + 2 * r], dilate);
}

/* morph_ref's filter in O(w*h) whatever r: rows of v into tmp, then columns of tmp into v. */
static void morph(float *v, float *tmp, int w, int h, int r, int dilate) {
    int side = w > h ? w : h;
    float *g = malloc(2 * ((size_t)side + 2 * (size_t)r) * sizeof(float));
    if (!g) { /* the naive filter needs no memory of its own */
        morph_ref(v, tmp, w, h, r, dilate);
        return;
    }
    float *hh = g + side + 2 * (size_t)r;
    for (int y = 0; y < h; y++) morph_line(tmp + (size_t)y * w, v + (size_t)y * w, 1, w, r, dilate, g, hh);
    for (int x = 0; x < w; x++) morph_line(v + x, tmp + x, (size_t)w, h, r, dilate, g, hh);
    free(g);
}

/* Area-averaging resample of src (sw x sh) to dst (dw x dh): every output pixel is the mean of the source area it
 * covers (fractional pixels weighted by coverage), the anti-aliasing MNIST's 20x20 fit used. */
static void area_resample(float *dst, const float *src, int sw, int sh, int dw, int dh, float *tmp) {
    /* rows: (sh, dw) into tmp; then columns */
    double fx = (double)sw / dw, fy = (double)sh / dh;
    for (int y = 0; y < sh; y++)
        for (int x = 0; x < dw; x++) {
            double a = x * fx, b = (x + 1) * fx, s = 0;
            for (int i = (int)floor(a); i < sw && i < (int)ceil(b); i++) {
                double lo = i > a ? i : a, hi = i + 1 < b ? i + 1 : b;
                if (hi > lo) s += src[(size_t)y * sw + i] * (hi - lo);
            }
            tmp[(size_t)y * dw + x] = (float)(s / fx);
        }
    for (int y = 0; y < dh; y++)
        for (int x = 0; x < dw; x++) {
            double a = y * fy, b = (y + 1) * fy, s = 0;
            for (int i = (int)floor(a); i < sh && i < (int)ceil(b); i++) {
                double lo = i > a ? i : a, hi = i + 1 < b ? i + 1 : b;
                if (hi > lo) s += tmp[(size_t)i * dw + x] * (hi - lo);
            }
            dst[(size_t)y * dw + x] = (float)(s / fy);
        }
}

typedef struct blob {
    int area, x0, y0, x1, y1; /* bounding box, inclusive */
} blob;

/* 8-connected blobs of v > 0: lab (w*h) gets 1-based blob numbers (0 = background), *blobs a malloc'd array. */
static int label_blobs(int *lab, blob **blobs, int *nb, const float *v, int w, int h) {
    size_t n = (size_t)w * h;
    int *stack = malloc(n * sizeof(int));
    int cap = 16, count = 0;
    blob *b = malloc((size_t)cap * sizeof *b);
    if (!stack || !b) {
        free(stack), free(b);
        return -1;
    }
    memset(lab, 0, n * sizeof(int));
    for (size_t i = 0; i < n; i++) {
        if (v[i] <= 0 || lab[i]) continue;
        if (count == cap) {
            blob *nbp = realloc(b, (size_t)(cap *= 2) * sizeof *b);
            if (!nbp) {
                free(stack), free(b);
                return -1;
            }
            b = nbp;
        }
        blob *cur = &b[count++];
        *cur = (blob){0, w, h, -1, -1};
        size_t top = 0;
        stack[top++] = (int)i;
        lab[i] = count;
        while (top) {
            int p = stack[--top], x = p % w, y = p / w;
            cur->area++;
            if (x < cur->x0) cur->x0 = x;
            if (x > cur->x1) cur->x1 = x;
            if (y < cur->y0) cur->y0 = y;
            if (y > cur->y1) cur->y1 = y;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int xx = x + dx, yy = y + dy;
                    if (xx < 0 || yy < 0 || xx >= w || yy >= h) continue;
                    size_t q = (size_t)yy * w + xx;
                    if (v[q] > 0 && !lab[q]) lab[q] = count, stack[top++] = (int)q;
                }
        }
    }
    free(stack);
    *blobs = b;
    *nb = count;
    return 0;
}

/* Two blobs that look like two digits: similar ink (the smaller at least half the larger), disjoint columns, and
 * each at least 60% as tall as both together (a digit broken into two strokes has pieces one above the other). */
static int side_by_side(const blob *a, const blob *big) {
    int top = a->y0 < big->y0 ? a->y0 : big->y0, bottom = a->y1 > big->y1 ? a->y1 : big->y1;
    double tall = 0.6 * (bottom - top + 1);
    return a->area * 2 >= big->area && (a->x1 < big->x0 || a->x0 > big->x1) && a->y1 - a->y0 + 1 >= tall &&
           big->y1 - big->y0 + 1 >= tall;
}

void kg_photo_com(const uint8_t *img, double *cx, double *cy) {
    double s = 0, sx = 0, sy = 0;
    for (int y = 0; y < DG_SIDE; y++)
        for (int x = 0; x < DG_SIDE; x++) {
            double q = img[y * DG_SIDE + x];
            s += q, sx += q * x, sy += q * y;
        }
    *cx = s > 0 ? sx / s : -1;
    *cy = s > 0 ? sy / s : -1;
}

#define NO_INK_CONTRAST 40.0f /* grey levels between background and the brightest (blurred) ink */

int kg_photo_prepare(uint8_t *out, const kg_photo_grey *g, kg_photo_info *info, dg_err *err) {
    kg_photo_info inf = {g->w, g->h, 0, 0, 0, 0};
    int side = g->w > g->h ? g->w : g->h, k = (side + KG_PHOTO_WORK - 1) / KG_PHOTO_WORK;
    int w = (g->w + k - 1) / k, h = (g->h + k - 1) / k;
    size_t n = (size_t)w * h;
    float *v = malloc(n * sizeof(float)), *t = malloc(n * sizeof(float)), *u = malloc(n * sizeof(float));
    int *lab = malloc(n * sizeof(int));
    blob *b = NULL;
    int nb = 0, rc = KG_PHOTO_BAD;
    if (!v || !t || !u || !lab) {
        dg_fail(err, "out of memory preparing a %dx%d image", w, h);
        goto done;
    }
    box_down(v, g->px, g->w, g->h, k);
    if (side >= 100) { /* photo-sized: take out pixel noise; small images (a 28x28 digit) are left sharp */
        blur3(t, v, w, h);
        memcpy(v, t, n * sizeof(float));
    }
    /* polarity: ink bright on dark, as MNIST */
    float bg = border_median(v, w, h);
    if (bg > 127.5f) {
        inf.inverted = 1;
        for (size_t i = 0; i < n; i++) v[i] = 255.0f - v[i];
        bg = 255.0f - bg;
    }
    if (side >= 100) {
        /* uneven lighting and shadows: subtract the background's slow variations, the grey-level opening with a
         * radius far wider than a stroke (white top-hat), so a darker corner is not taken for ink */
        memcpy(t, v, n * sizeof(float));
        int r = (w > h ? w : h) / 12;
        morph(t, u, w, h, r, 0);
        morph(t, u, w, h, r, 1);
        for (size_t i = 0; i < n; i++) v[i] -= t[i];
        bg = border_median(v, w, h);
    }
    float peak = 0;
    for (size_t i = 0; i < n; i++) peak = v[i] > peak ? v[i] : peak;
    if (peak - bg < NO_INK_CONTRAST) {
        dg_fail(err, "no ink: the image is blank (contrast %.0f of 255 between background and the darkest mark)",
                (double)(peak - bg));
        rc = KG_PHOTO_NO_INK;
        goto done;
    }
    float thr = bg + 0.3f * (peak - bg);
    for (size_t i = 0; i < n; i++) v[i] = v[i] > thr ? (v[i] - thr) / (peak - thr) * 255.0f : 0.0f;
    /* blobs: ink closer than ~1% of the image belongs together (a faint stroke broken by the threshold is one);
     * labelled on a dilated copy, measured on the ink itself */
    int gap = (w > h ? w : h) / 80;
    memcpy(t, v, n * sizeof(float));
    if (gap > 0) morph(t, u, w, h, gap, 1);
    if (label_blobs(lab, &b, &nb, t, w, h) != 0) {
        dg_fail(err, "out of memory labelling a %dx%d image", w, h);
        goto done;
    }
    for (int i = 0; i < nb; i++) b[i] = (blob){0, w, h, -1, -1};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            if (v[i] <= 0) {
                lab[i] = 0;
                continue;
            }
            blob *cur = &b[lab[i] - 1];
            cur->area++;
            cur->x0 = x < cur->x0 ? x : cur->x0, cur->x1 = x > cur->x1 ? x : cur->x1;
            cur->y0 = y < cur->y0 ? y : cur->y0, cur->y1 = y > cur->y1 ? y : cur->y1;
        }
    int big = 0;
    for (int i = 1; i < nb; i++) big = b[i].area > b[big].area ? i : big;
    if (nb == 0 || b[big].area < 3 || (size_t)b[big].area * 5000 < n) {
        dg_fail(err, "no ink: nothing larger than a speck (%d pixels) on the %dx%d image", nb ? b[big].area : 0, w, h);
        rc = KG_PHOTO_NO_INK;
        goto done;
    }
    int x0 = w, y0 = h, x1 = -1, y1 = -1, area = 0;
    for (int i = 0; i < nb; i++) {
        if (b[i].area < KG_PHOTO_SPECK * b[big].area) {
            inf.specks++;
            continue;
        }
        if (i != big && side_by_side(&b[i], &b[big])) {
            dg_fail(err, "several digits: %d separate blobs of similar size side by side (%d and %d pixels); "
                         "show one digit at a time", 2, b[big].area, b[i].area);
            rc = KG_PHOTO_SEVERAL;
            goto done;
        }
        inf.blobs++;
        area += b[i].area;
        x0 = b[i].x0 < x0 ? b[i].x0 : x0, y0 = b[i].y0 < y0 ? b[i].y0 : y0;
        x1 = b[i].x1 > x1 ? b[i].x1 : x1, y1 = b[i].y1 > y1 ? b[i].y1 : y1;
    }
    int perim = 0;
    for (size_t i = 0; i < n; i++) {
        if (!lab[i]) continue;
        if (b[lab[i] - 1].area < KG_PHOTO_SPECK * b[big].area) {
            v[i] = 0; /* erase specks */
            lab[i] = 0;
        }
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            if (lab[i] && (x == 0 || y == 0 || x == w - 1 || y == h - 1 || !lab[i - 1] || !lab[i + 1] ||
                           !lab[i - (size_t)w] || !lab[i + (size_t)w]))
                perim++;
        }
    /* stroke width: ink area over half its boundary (a stroke of width s and length L: ~L*s / L) */
    double stroke = perim > 0 ? 2.0 * area / perim : 1.0, scale = 20.0 / ((x1 - x0 > y1 - y0 ? x1 - x0 : y1 - y0) + 1);
    if (stroke * scale < 1.6) inf.stroke_filter = (int)ceil((2.2 / scale - stroke) / 2);
    else if (stroke * scale > 5.0) inf.stroke_filter = -(int)floor((stroke - 3.0 / scale) / 2);
    if (inf.stroke_filter) {
        int r = abs(inf.stroke_filter);
        morph(v, t, w, h, r, inf.stroke_filter > 0);
        x0 = w, y0 = h, x1 = -1, y1 = -1; /* the ink's box again */
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                if (v[(size_t)y * w + x] > 0) {
                    x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
                    y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
                }
        if (x1 < 0) {
            dg_fail(err, "no ink: the strokes vanished when thinned");
            rc = KG_PHOTO_NO_INK;
            goto done;
        }
    }
    /* crop, fit into 20x20 keeping the aspect ratio */
    int bw = x1 - x0 + 1, bh = y1 - y0 + 1, bs = bw > bh ? bw : bh;
    int ow = (int)lround(bw * 20.0 / bs), oh = (int)lround(bh * 20.0 / bs);
    ow = ow < 1 ? 1 : ow, oh = oh < 1 ? 1 : oh;
    for (int y = 0; y < bh; y++) memmove(v + (size_t)y * bw, v + (size_t)(y0 + y) * w + x0, (size_t)bw * sizeof(float));
    float small[20 * 20], *tmp = malloc((size_t)bh * (size_t)ow * sizeof(float)); /* (bh, ow) */
    if (!tmp) {
        dg_fail(err, "out of memory fitting a %dx%d crop", bw, bh);
        goto done;
    }
    area_resample(small, v, bw, bh, ow, oh, tmp);
    free(tmp);
    float mx = 0;
    double s = 0, sx = 0, sy = 0;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
            float q = small[y * ow + x];
            mx = q > mx ? q : mx;
            s += q, sx += (double)q * x, sy += (double)q * y;
        }
    if (s <= 0) {
        dg_fail(err, "no ink left after fitting into 20x20");
        rc = KG_PHOTO_NO_INK;
        goto done;
    }
    /* centre of mass to (14, 14) by an integer shift, kept inside the 28x28 field */
    int ox = (int)lround(14.0 - sx / s), oy = (int)lround(14.0 - sy / s);
    ox = ox < 0 ? 0 : ox > DG_SIDE - ow ? DG_SIDE - ow : ox;
    oy = oy < 0 ? 0 : oy > DG_SIDE - oh ? DG_SIDE - oh : oy;
    memset(out, 0, DG_PIXELS);
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            out[(oy + y) * DG_SIDE + ox + x] = (uint8_t)lrintf(small[y * ow + x] / mx * 255.0f);
    rc = KG_PHOTO_OK;
done:
    if (info) *info = inf;
    free(v);
    free(t);
    free(u);
    free(lab);
    free(b);
    return rc;
}

int kg_photo_load(uint8_t *out, const void *data, size_t n, kg_photo_info *info, dg_err *err) {
    kg_photo_grey g;
    int rc = kg_photo_decode(&g, data, n, err);
    if (rc != KG_PHOTO_OK) {
        if (info) memset(info, 0, sizeof *info);
        return rc;
    }
    rc = kg_photo_prepare(out, &g, info, err);
    kg_photo_grey_free(&g);
    return rc;
}

/* ---- PNG out ---- */

typedef struct mem_writer {
    uint8_t *p;
    size_t n, cap;
    int oom;
} mem_writer;

static void png_write_mem(png_structp png, png_bytep data, png_size_t len) {
    mem_writer *m = png_get_io_ptr(png);
    if (m->n + len > m->cap) {
        size_t cap = (m->cap ? m->cap * 2 : 1024) + len;
        uint8_t *p = realloc(m->p, cap);
        if (!p) {
            m->oom = 1;
            png_error(png, "out of memory");
        }
        m->p = p, m->cap = cap;
    }
    memcpy(m->p + m->n, data, len);
    m->n += len;
}

static void png_flush_mem(png_structp png) {
    (void)png;
}

int kg_photo_png_encode(void **out, size_t *n, const uint8_t *px, int w, int h, dg_err *err) {
    mem_writer m = {0};
    *out = NULL;
    *n = 0;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc = -1;
    if (!png || !info) {
        dg_fail(err, "PNG: out of memory");
    } else if (setjmp(png_jmpbuf(png))) {
        dg_fail(err, "PNG: encoding failed%s", m.oom ? ": out of memory" : "");
        free(m.p);
        m.p = NULL;
    } else {
        png_set_write_fn(png, &m, png_write_mem, png_flush_mem);
        png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, info);
        for (int y = 0; y < h; y++) png_write_row(png, px + (size_t)y * w);
        png_write_end(png, NULL);
        *out = m.p;
        *n = m.n;
        rc = 0;
    }
    png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
    return rc;
}
