/* dg_npy: the NumPy .npy format (version 1.0 written; 1.0, 2.0 and 3.0 read).
 *
 * NumPy opens everything we write with np.load(); we open what NumPy writes, as long as it is C-ordered. The
 * header is parsed strictly: a malformed one is an error naming the file and what was wrong, never a crash.
 */
#ifndef DG_NPY_H
#define DG_NPY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/dg_err.h"
#include "core/dg_file.h"

#define DG_NPY_MAXDIM 8
/* The most elements a shape may describe (product of its non-zero dimensions): far more than any file holds, and
 * small enough that count * an element size below 64 KiB cannot overflow a size_t in any caller's size check. */
#define DG_NPY_MAX_COUNT (SIZE_MAX >> 16)

typedef struct dg_npy {
    char descr[256];   /* the descr value as written: "'<f4'" or "[('label', '|u1'), ...]" */
    int fortran_order;
    int ndim;
    size_t shape[DG_NPY_MAXDIM];
    size_t data_offset; /* where the array data starts in the file */
} dg_npy;

/* Parse a .npy header from the first n bytes of a file. Rejected besides a malformed dictionary: control
 * characters in the header text other than tab, newline and carriage return (NumPy writes ASCII; a NUL would cut the
 * descr short) and a shape of more than DG_NPY_MAX_COUNT elements. */
int dg_npy_parse(const unsigned char *buf, size_t n, dg_npy *h, const char *path, dg_err *err);

/* Number of elements (product of shape; 1 for a scalar). */
size_t dg_npy_count(const dg_npy *h);

/* 1 if the descr is exactly the simple type given without quotes (e.g. "<f4", "|u1"); "|u1" also matches "<u1". */
int dg_npy_is(const dg_npy *h, const char *type);

/* Write a version 1.0 header of exactly `total` bytes (a multiple of 64, large enough) to fp, or, with total = 0,
 * the shortest valid one. descr is the literal value ("'<f4'" for a simple type). Returns the bytes written or -1.
 * A fixed `total` lets a streaming writer rewrite the header with the final shape in place. */
long dg_npy_write_header(FILE *fp, const char *descr, const size_t *shape, int ndim, size_t total);

/* Write a whole C-ordered array to path atomically. type is a simple dtype without quotes ("<f4", "|u1"). */
int dg_npy_save(const char *path, const char *type, const size_t *shape, int ndim, const void *data, size_t elem_size,
                dg_err *err);
/* The same written into f's temporary, not committed: for dg_afile_commit_all with other files (on failure f is
 * aborted). */
int dg_npy_write_afile(dg_afile *f, const char *path, const char *type, const size_t *shape, int ndim,
                       const void *data, size_t elem_size, dg_err *err);

/* A mapped .npy file. */
typedef struct dg_npy_file {
    dg_map map;
    dg_npy h;
    const void *data; /* points into map at h.data_offset */
} dg_npy_file;

/* Map and parse; checks that the data section has exactly count*elem_size bytes (elem_size = 0 skips it). */
int dg_npy_open(dg_npy_file *f, const char *path, size_t elem_size, dg_err *err);
void dg_npy_close(dg_npy_file *f);

/* Load a 1-D int64 array (row ids such as a run's val_ids.npy) into a malloc'd copy. */
int dg_npy_load_i64(const char *path, int64_t **values, size_t *n, dg_err *err);

#endif
