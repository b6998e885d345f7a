/* augment/params_file: the per-image parameters of an augmented dataset, stored so any image can be regenerated
 * from its source image alone (digits-augment --params-out, --replay).
 *
 * Two formats, chosen by the file name:
 *   FILE.npy    a NumPy structured array, one record per output image (np.load(FILE) reads it):
 *               [('src', '<u4'), ('copy', '<i4'), ('seed', '<u8'), ('epoch', '<u4'), ('id', '<u4'),
 *                ('m', '<f4', (6,)), ('alpha', '<f4'), ('sigma', '<f4'), ('skew', '<f4')]
 *   FILE.jsonl  one JSON object per line with the same fields, plus "row" and "ops": what each policy line drew,
 *               e.g. {"row":0,"src":0,"copy":0,"seed":1,"epoch":0,"id":0,"m":[...],"alpha":34,"sigma":4,
 *               "skew":0,"ops":[["rotate",-3.25],["zoom",1.04],["shift",1.5,-0.75],["elastic",34,4]]}
 *               (numbers printed with 9 significant digits, so the floats read back exactly; a seed above 2^53 is
 *               written as a string).
 * src is the row of the source dataset, copy the copy number (-1 for an original kept as is); m, alpha, sigma and
 * the key (seed, epoch, id) are aug_params (augment/policy.h).
 */
#ifndef AUG_PARAMS_FILE_H
#define AUG_PARAMS_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "augment/policy.h"
#include "core/dg_err.h"
#include "core/dg_file.h"
#include "core/dg_npy.h"

#define AUG_PARAMS_DESCR                                                                                          \
    "[('src', '<u4'), ('copy', '<i4'), ('seed', '<u8'), ('epoch', '<u4'), ('id', '<u4'), ('m', '<f4', (6,)), "   \
    "('alpha', '<f4'), ('sigma', '<f4'), ('skew', '<f4')]"
#define AUG_PARAMS_RECORD 60 /* bytes per .npy record */

typedef struct aug_row {
    uint32_t src;  /* row of the source dataset */
    int32_t copy;  /* copy number, -1: the original */
    aug_params p;
} aug_row;

/* Streaming writer; the file appears at commit (write-then-rename). */
typedef struct aug_params_writer {
    dg_afile f;
    int jsonl;
    size_t n;
} aug_params_writer;

/* 1 if path ends in ".npy" or ".jsonl" (the formats a params file can have). */
int aug_params_path_ok(const char *path);
int aug_params_writer_open(aug_params_writer *w, const char *path, dg_err *err);
/* Append one row; policy (may be NULL) adds the "ops" of a copy to a .jsonl row. */
int aug_params_writer_add(aug_params_writer *w, const aug_row *row, const aug_policy *policy, dg_err *err);
int aug_params_writer_commit(aug_params_writer *w, dg_err *err);
/* The final header without the commit: w->f is then ready for dg_afile_commit_all (on failure it is aborted). */
int aug_params_writer_finish(aug_params_writer *w, dg_err *err);
void aug_params_writer_abort(aug_params_writer *w);

/* Reader: rows in order. */
typedef struct aug_params_reader {
    int jsonl;
    const char *path;
    size_t n;     /* rows in the file */
    size_t next;  /* rows read so far */
    dg_npy_file npy;
    FILE *fp;
    char *line;
    size_t cap;
} aug_params_reader;

int aug_params_reader_open(aug_params_reader *r, const char *path, dg_err *err);
/* 1: *row filled; 0: no more rows; -1: a malformed row (message names the file and line or record). The values
 * are checked (finite map, alpha >= 0, sigma within 0..100). */
int aug_params_reader_next(aug_params_reader *r, aug_row *row, dg_err *err);
void aug_params_reader_close(aug_params_reader *r);

#endif
