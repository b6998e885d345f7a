/* core/dg_png: see dg_png.h. */
#include "core/dg_png.h"

#include <errno.h>
#include <png.h>
#include <stdlib.h>

typedef struct png_out {
    FILE *fp;
    int errnum;    /* errno of the failed write; 0: libpng's own error */
    char msg[160]; /* libpng's message */
} png_out;

static void png_out_write(png_structp png, png_bytep data, png_size_t n) {
    png_out *po = png_get_io_ptr(png);
    if (fwrite(data, 1, n, po->fp) != n) {
        po->errnum = errno ? errno : EIO;
        png_error(png, "write failed");
    }
}

static void png_out_flush(png_structp png) {
    (void)png; /* the commit flushes, and checks it */
}

static void png_out_error(png_structp png, png_const_charp msg) {
    png_out *po = png_get_error_ptr(png);
    snprintf(po->msg, sizeof po->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_out_warning(png_structp png, png_const_charp msg) {
    (void)png, (void)msg;
}

int dg_png_write_gray(FILE *fp, const char *path, const uint8_t *img, int w, int h, dg_err *err) {
    png_bytep *rowp = malloc(sizeof(png_bytep) * (size_t)h);
    if (!rowp) return dg_fail(err, "%s: out of memory", path);
    for (int y = 0; y < h; y++) rowp[y] = (png_bytep)img + (size_t)y * (size_t)w;
    int rc = -1;
    png_out po = {fp, 0, ""};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &po, png_out_error, png_out_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        dg_fail(err, "%s: out of memory", path);
    } else if (setjmp(png_jmpbuf(png))) {
        if (po.errnum) {
            errno = po.errnum;
            dg_fail_errno(err, "%s: write failed", path);
        } else {
            dg_fail(err, "%s: PNG write failed: %s", path, po.msg);
        }
    } else {
        png_set_write_fn(png, &po, png_out_write, png_out_flush);
        png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, info);
        png_write_image(png, rowp);
        png_write_end(png, NULL);
        rc = 0;
    }
    png_destroy_write_struct(&png, &info);
    free(rowp);
    return rc;
}
