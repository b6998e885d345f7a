/* dg_sink: streaming dataset sinks, one image at a time, in the formats other tools read.
 *
 *   dataset  PATH: the project's dataset file (core/dg_dataset.h)
 *   npy      PATH: (N, 28, 28) uint8 images; with labels also PATH with ".npy" replaced by "-labels.npy"
 *            (PATH + "-labels.npy" if PATH does not end in ".npy"): (N,) uint8
 *   idx      PATH-images-idx3-ubyte (magic 0x00000803, N, 28, 28) and, with labels, PATH-labels-idx1-ubyte
 *            (magic 0x00000801, N): the MNIST IDX files, big-endian counts
 *   csv      PATH: Kaggle CSV "label,pixel0,...,pixel783" (or "pixel0,...,pixel783" without labels), LF line ends,
 *            a final newline; a train.csv written back from its dataset is byte-identical to Kaggle's file
 *
 * Every file is written through dg_afile: nothing appears under its real name before dg_sink_commit(), and
 * dg_sink_abort() (or any failure) removes the temporaries. N is not needed up front: headers are rewritten with the
 * final count at commit.
 */
#ifndef DG_SINK_H
#define DG_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "core/dg_err.h"
#include "core/dg_file.h"

typedef enum dg_format { DG_FMT_DATASET, DG_FMT_NPY, DG_FMT_IDX, DG_FMT_CSV } dg_format;

/* "dataset" | "npy" | "idx" | "csv" -> *fmt; -1 if unknown. */
int dg_format_parse(const char *name, dg_format *fmt);
const char *dg_format_name(dg_format fmt);

typedef struct dg_sink dg_sink;

/* Open a sink writing fmt at path; has_labels: 1 to keep a label per image. */
int dg_sink_open(dg_sink **s, dg_format fmt, const char *path, int has_labels, dg_err *err);
/* Append one image (784 bytes, row-major) and its label (0..9; ignored without labels). */
int dg_sink_add(dg_sink *s, const uint8_t *image, int label, dg_err *err);
/* Write the final headers and make all files appear (write-then-rename). Frees s, also on failure. */
int dg_sink_commit(dg_sink *s, dg_err *err);
/* The same, committing up to DG_SINK_MAX_EXTRA other finished files (written, not committed) with the sink's as one
 * (dg_afile_commit_all; the extras are renamed first): a failure leaves every final name as it was. Frees s and the
 * extras, on success or failure. */
#define DG_SINK_MAX_EXTRA 4
int dg_sink_commit_with(dg_sink *s, dg_afile *const *extra, int n_extra, dg_err *err);
/* Remove the temporaries. Frees s. NULL is allowed. */
void dg_sink_abort(dg_sink *s);
/* Images added so far. */
size_t dg_sink_count(const dg_sink *s);

/* The file names a sink writes for (fmt, path, has_labels): up to 2, into names[0..1].
 * Returns how many, or -1 if a name does not fit. */
int dg_sink_paths(dg_format fmt, const char *path, int has_labels, char names[2][4096], dg_err *err);

#endif
