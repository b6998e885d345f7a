/* kaggle/predict: class probabilities of trained models on a set of images, with test-time augmentation.
 *
 * Images come from a dataset file (core/dg_dataset.h: data/test.npy, data/train.npy) or a plain .npy of
 * uint8 images (N, 28, 28), (N, 28, 28, 1) or (N, 784). A model is a model.safetensors file (nn/model.h) or a
 * digits-train run directory holding one. Prediction runs in batches through nn_net_forward in inference mode;
 * with test-time augmentation (TTA) each image is also shown to the net under a few fixed small transforms
 * (1-pixel shifts, +-8 degree rotations, 8% zooms) and the probabilities of all views are averaged. The transforms
 * are fixed, not random, so results are reproducible without any RNG.
 * Writing files and option parsing are in predict_cli.h.
 */
#ifndef KG_PREDICT_H
#define KG_PREDICT_H

#include <stddef.h>
#include <stdint.h>

#include "nn/net.h"
#include "core/dg_dataset.h"
#include "core/dg_err.h"
#include "core/dg_npy.h"

/* Images, read-only and memory-mapped. */
typedef struct kg_images {
    dg_dataset ds;    /* when the file is a dataset */
    dg_npy_file npy;  /* when it is a plain uint8 .npy */
    int is_npy;
    const uint8_t *mem; /* when it wraps images in memory (kg_images_wrap) */
    size_t n;
    int has_labels;
} kg_images;

int kg_images_open(kg_images *im, const char *path, dg_err *err);
void kg_images_close(kg_images *im);
/* Images already in memory: n * DG_PIXELS bytes, unlabelled, borrowed (close does not free them). */
void kg_images_wrap(kg_images *im, const uint8_t *pixels, size_t n);
/* Image i: DG_PIXELS bytes, row-major. */
const uint8_t *kg_images_get(const kg_images *im, size_t i);
/* Label of image i, or -1 if the file has none. */
int kg_images_label(const kg_images *im, size_t i);

/* Test-time augmentation views, in the order --tta K takes them (view 0 is the image itself). */
#define KG_TTA_MAX 9
const char *kg_tta_name(int view);
/* View `view` of one image: dst (28*28,) floats = transformed pixels / 255 (bilinear sampling about the centre,
 * zero outside; integer shifts are exact copies). */
void kg_tta_apply(float *dst, const uint8_t *src, int view);

/* The model file named by arg: arg itself if it is a file, arg/model.safetensors if it is a directory (an
 * unfinished run directory is an error that says so). out gets the path. */
int kg_model_path(char *out, size_t cap, const char *arg, dg_err *err);

/* Check that a net accepts 28x28x1 images (the spec's input) and ends in 10 classes. */
int kg_net_fits(const nn_net *net, const char *name, dg_err *err);

/* Probabilities of one net on images rows[0..n) of im (rows = NULL: images 0..n-1), averaged over the first
 * `tta` views (1..KG_TTA_MAX): probs (n, 10), overwritten. Batches of nn_net_max_batch(net) images. */
int kg_predict_net(float *probs, nn_net *net, const kg_images *im, const int64_t *rows, size_t n, int tta,
                   dg_err *err);

#endif
