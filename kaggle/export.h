/* kaggle/export: streaming dataset sinks, one image at a time, in the formats other tools read.
 *
 *   dataset  PATH: the project's dataset file (pipeline/dg_dataset.h)
 *   npy      PATH: (N, 28, 28) uint8 images; with labels also PATH with ".npy" replaced by "-labels.npy"
 *            (PATH + "-labels.npy" if PATH does not end in ".npy"): (N,) uint8
 *   idx      PATH-images-idx3-ubyte (magic 0x00000803, N, 28, 28) and, with labels, PATH-labels-idx1-ubyte
 *            (magic 0x00000801, N): the MNIST IDX files, big-endian counts
 *   csv      PATH: Kaggle CSV "label,pixel0,...,pixel783" (or "pixel0,...,pixel783" without labels), LF line ends,
 *            a final newline; a train.csv written back from its dataset is byte-identical to Kaggle's file
 *
 * Every file is written through dg_afile: nothing appears under its real name before kg_sink_commit(), and
 * kg_sink_abort() (or any failure) removes the temporaries. N is not needed up front: headers are rewritten with the
 * final count at commit.
 */
#ifndef KG_EXPORT_H
#define KG_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "pipeline/dg_err.h"

typedef enum kg_format { KG_FMT_DATASET, KG_FMT_NPY, KG_FMT_IDX, KG_FMT_CSV } kg_format;

/* "dataset" | "npy" | "idx" | "csv" -> *fmt; -1 if unknown. */
int kg_format_parse(const char *name, kg_format *fmt);
const char *kg_format_name(kg_format fmt);

typedef struct kg_sink kg_sink;

/* Open a sink writing fmt at path; has_labels: 1 to keep a label per image. */
int kg_sink_open(kg_sink **s, kg_format fmt, const char *path, int has_labels, dg_err *err);
/* Append one image (784 bytes, row-major) and its label (0..9; ignored without labels). */
int kg_sink_add(kg_sink *s, const uint8_t *image, int label, dg_err *err);
/* Write the final headers and make all files appear (write-then-rename). Frees s, also on failure. */
int kg_sink_commit(kg_sink *s, dg_err *err);
/* Remove the temporaries. Frees s. NULL is allowed. */
void kg_sink_abort(kg_sink *s);
/* Images added so far. */
size_t kg_sink_count(const kg_sink *s);

/* The file names a sink writes for (fmt, path, has_labels): up to 2, into names[0..1].
 * Returns how many, or -1 if a name does not fit. */
int kg_sink_paths(kg_format fmt, const char *path, int has_labels, char names[2][4096], dg_err *err);

#endif
