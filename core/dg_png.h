/* dg_png: a grey image written as PNG into an open file (an dg_afile's, so the caller commits or aborts it).
 *
 * libpng's output goes through our own checked fwrite (png_init_io's would be libpng's: unchecked flushes, a bare
 * "Write Error", and out of reach of tests/failure's short-write shim); libpng's messages are kept in the error,
 * never printed. */
#ifndef DG_PNG_H
#define DG_PNG_H

#include <stdint.h>
#include <stdio.h>

#include "core/dg_err.h"

/* w x h 8-bit grey pixels, row-major, into fp; path names the file in messages ("PATH: write failed: <errno>" or
 * "PATH: PNG write failed: <libpng's message>"). */
int dg_png_write_gray(FILE *fp, const char *path, const uint8_t *img, int w, int h, dg_err *err);

#endif
