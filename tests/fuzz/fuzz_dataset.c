/* fuzz_dataset: core/dg_dataset (the dataset .npy every stage maps) and kaggle/predict's kg_images_open (a dataset
 * or a plain uint8 image array). Invariants: an opened dataset's records lie inside the file and every label is
 * 0..9; writing its records with dg_dataset_writer and opening that file gives the same images and labels. */
#include <string.h>

#include "core/dg_dataset.h"
#include "fuzz_util.h"
#include "kaggle/predict.h"

static const uint8_t *data_begin(const kg_images *im) { return im->is_npy ? im->npy.map.data : im->ds.map.data; }
static const uint8_t *data_end(const kg_images *im) {
    return im->is_npy ? im->npy.map.data + im->npy.map.size : im->ds.map.data + im->ds.map.size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512], out[512];
    fz_file(path, sizeof path, "in.npy", data, size);
    fz_path(out, sizeof out, "out.npy");
    dg_err err = {{0}};
    dg_dataset ds;
    if (dg_dataset_open(&ds, path, &err) == 0) {
        FZ_CHECK(ds.stride == DG_PIXELS + (size_t)ds.has_labels, "stride %zu", ds.stride);
        FZ_CHECK(ds.n <= size / ds.stride, "%zu records in %zu bytes", ds.n, size);
        FZ_CHECK(ds.records + ds.n * ds.stride == ds.map.data + ds.map.size, "records do not end the file");
        dg_dataset_writer w;
        FZ_CHECK(dg_dataset_writer_open(&w, out, ds.has_labels, &err) == 0, "%s", err.msg);
        for (size_t i = 0; i < ds.n; i++) {
            int label = dg_dataset_label(&ds, i);
            FZ_CHECK(ds.has_labels ? label >= 0 && label < DG_CLASSES : label == -1, "record %zu label %d", i, label);
            FZ_CHECK(dg_dataset_writer_add(&w, dg_dataset_image(&ds, i), label, &err) == 0, "%s", err.msg);
        }
        FZ_CHECK(dg_dataset_writer_commit(&w, &err) == 0, "%s", err.msg);
        dg_dataset again;
        FZ_CHECK(dg_dataset_open(&again, out, &err) == 0, "the rewritten dataset does not open: %s", err.msg);
        FZ_CHECK(again.n == ds.n && again.has_labels == ds.has_labels, "n %zu vs %zu", again.n, ds.n);
        FZ_CHECK(ds.n == 0 || memcmp(again.records, ds.records, ds.n * ds.stride) == 0, "records differ");
        dg_dataset_close(&again);
        dg_dataset_close(&ds);
    } else {
        FZ_CHECK(strstr(err.msg, path) == err.msg, "message does not name the file: %s", err.msg);
    }
    kg_images im;
    if (kg_images_open(&im, path, &err) == 0) {
        FZ_CHECK(im.n <= size / DG_PIXELS, "%zu images in %zu bytes", im.n, size);
        if (im.n) {
            const uint8_t *last = kg_images_get(&im, im.n - 1);
            FZ_CHECK(last >= data_begin(&im) && last + DG_PIXELS <= data_end(&im), "image %zu outside the file",
                     im.n - 1);
        }
        kg_images_close(&im);
    }
    return 0;
}
