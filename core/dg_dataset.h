/* dg_dataset: the project's dataset file, a NumPy structured array in one .npy file.
 *
 *   labelled (train):    dtype [('label', '|u1'), ('image', '|u1', (28, 28))], shape (N,)
 *   unlabelled (test):   dtype [('image', '|u1', (28, 28))],                   shape (N,)
 *
 * Python opens it directly: d = np.load("train.npy", mmap_mode="r"); d["image"], d["label"].
 * Record i is image i of the source CSV (Kaggle ImageId = i + 1). Stages map it read-only, so opening 60000
 * images takes milliseconds; opening validates the header, the size and every label.
 */
#ifndef DG_DATASET_H
#define DG_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "core/dg_err.h"
#include "core/dg_file.h"

#define DG_SIDE 28
#define DG_PIXELS (DG_SIDE * DG_SIDE)
#define DG_CLASSES 10

#define DG_DESCR_LABELLED "[('label', '|u1'), ('image', '|u1', (28, 28))]"
#define DG_DESCR_UNLABELLED "[('image', '|u1', (28, 28))]"

typedef struct dg_dataset {
    dg_map map;
    size_t n;                /* number of images */
    int has_labels;          /* 1 for a labelled dataset */
    size_t stride;           /* bytes per record: 785 labelled, 784 unlabelled */
    const uint8_t *records;  /* first record */
} dg_dataset;

int dg_dataset_open(dg_dataset *ds, const char *path, dg_err *err);
void dg_dataset_close(dg_dataset *ds);

/* Image i: DG_PIXELS bytes, row-major, 0 = background. */
static inline const uint8_t *dg_dataset_image(const dg_dataset *ds, size_t i) {
    return ds->records + i * ds->stride + (size_t)ds->has_labels;
}
/* Label of image i (0..9), or -1 for an unlabelled dataset. */
static inline int dg_dataset_label(const dg_dataset *ds, size_t i) {
    return ds->has_labels ? ds->records[i * ds->stride] : -1;
}

/* Streaming writer: records are appended as they come; the header's N is fixed up at commit, and the file only
 * appears under its name then (write-then-rename). */
typedef struct dg_dataset_writer {
    dg_afile f;
    int has_labels;
    size_t n;
} dg_dataset_writer;

int dg_dataset_writer_open(dg_dataset_writer *w, const char *path, int has_labels, dg_err *err);
/* Append one image (DG_PIXELS bytes); label is ignored for an unlabelled writer. */
int dg_dataset_writer_add(dg_dataset_writer *w, const uint8_t *image, int label, dg_err *err);
/* Append n whole records already in this file's record layout (label byte first when labelled, then DG_PIXELS
 * bytes): one write for many images. Labels are trusted here; dg_dataset_open checks them again. */
int dg_dataset_writer_add_records(dg_dataset_writer *w, const uint8_t *records, size_t n, dg_err *err);
int dg_dataset_writer_commit(dg_dataset_writer *w, dg_err *err);
/* The header's final N, without the commit: w->f is then ready for dg_afile_commit_all (on failure it is aborted). */
int dg_dataset_writer_finish(dg_dataset_writer *w, dg_err *err);
void dg_dataset_writer_abort(dg_dataset_writer *w);

#endif
