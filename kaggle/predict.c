/* kaggle/predict: batched, test-time-augmented inference (see predict.h). */
#include "kaggle/predict.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nn/spec.h"

int kg_images_open(kg_images *im, const char *path, dg_err *err) {
    memset(im, 0, sizeof *im);
    dg_npy_file f;
    if (dg_npy_open(&f, path, 0, err) != 0) return -1;
    int structured = f.h.descr[0] == '[';
    if (structured) {
        dg_npy_close(&f);
        if (dg_dataset_open(&im->ds, path, err) != 0) return -1;
        im->n = im->ds.n;
        im->has_labels = im->ds.has_labels;
        return 0;
    }
    size_t n = f.h.ndim >= 1 ? f.h.shape[0] : 0;
    int ok = dg_npy_is(&f.h, "|u1") && !f.h.fortran_order &&
             ((f.h.ndim == 2 && f.h.shape[1] == DG_PIXELS) ||
              (f.h.ndim == 3 && f.h.shape[1] == DG_SIDE && f.h.shape[2] == DG_SIDE) ||
              (f.h.ndim == 4 && f.h.shape[1] == DG_SIDE && f.h.shape[2] == DG_SIDE && f.h.shape[3] == 1));
    if (!ok) {
        dg_fail(err, "%s: array %s with %d dimensions; expected a digits dataset or uint8 images (N, 28, 28)", path,
                f.h.descr, f.h.ndim);
        dg_npy_close(&f);
        return -1;
    }
    if (f.map.size - f.h.data_offset != n * DG_PIXELS) {
        dg_npy_close(&f);
        return dg_fail(err, "%s: data is %zu bytes, the shape needs %zu (truncated?)", path,
                       f.map.size - f.h.data_offset, n * DG_PIXELS);
    }
    im->npy = f;
    im->is_npy = 1;
    im->n = n;
    return 0;
}

void kg_images_wrap(kg_images *im, const uint8_t *pixels, size_t n) {
    memset(im, 0, sizeof *im);
    im->mem = pixels;
    im->n = n;
}

void kg_images_close(kg_images *im) {
    if (im->mem) { /* borrowed */
    } else if (im->is_npy) dg_npy_close(&im->npy);
    else dg_dataset_close(&im->ds);
    memset(im, 0, sizeof *im);
}

const uint8_t *kg_images_get(const kg_images *im, size_t i) {
    if (im->mem) return im->mem + i * DG_PIXELS;
    return im->is_npy ? (const uint8_t *)im->npy.data + i * DG_PIXELS : dg_dataset_image(&im->ds, i);
}

int kg_images_label(const kg_images *im, size_t i) {
    return im->is_npy || im->mem ? -1 : dg_dataset_label(&im->ds, i);
}

/* The views: shift (dx, dy) in pixels, rotation in degrees (counter-clockwise), zoom factor. */
static const struct {
    const char *name;
    float dx, dy, deg, zoom;
} kg_views[KG_TTA_MAX] = {
    {"identity", 0, 0, 0, 1},     {"shift right 1", 1, 0, 0, 1}, {"shift left 1", -1, 0, 0, 1},
    {"shift down 1", 0, 1, 0, 1}, {"shift up 1", 0, -1, 0, 1},   {"rotate +8", 0, 0, 8, 1},
    {"rotate -8", 0, 0, -8, 1},   {"zoom 1.08", 0, 0, 0, 1.08f}, {"zoom 0.92", 0, 0, 0, 0.92f},
};

const char *kg_tta_name(int view) {
    return view >= 0 && view < KG_TTA_MAX ? kg_views[view].name : "?";
}

static float pixel(const uint8_t *src, int x, int y) {
    return x < 0 || y < 0 || x >= DG_SIDE || y >= DG_SIDE ? 0.0f : (float)src[y * DG_SIDE + x];
}

void kg_tta_apply(float *dst, const uint8_t *src, int view) {
    if (view <= 0 || view >= KG_TTA_MAX) {
        for (int i = 0; i < DG_PIXELS; i++) dst[i] = (float)src[i] / 255.0f;
        return;
    }
    const double c = (DG_SIDE - 1) / 2.0; /* 13.5: the centre between pixel centres */
    double a = kg_views[view].deg * 3.14159265358979323846 / 180.0, z = kg_views[view].zoom;
    /* Inverse map: output (x, y) -> source = R(-a) ((x, y) - c - d) / z + c. Image y points down, so a
     * counter-clockwise rotation on screen is a clockwise one in (x, y). */
    double ca = cos(a) / z, sa = sin(a) / z;
    for (int y = 0; y < DG_SIDE; y++) {
        for (int x = 0; x < DG_SIDE; x++) {
            double u = x - c - kg_views[view].dx, v = y - c - kg_views[view].dy;
            double sx = ca * u - sa * v + c, sy = sa * u + ca * v + c;
            double fx0 = floor(sx), fy0 = floor(sy);
            int x0 = (int)fx0, y0 = (int)fy0;
            float fx = (float)(sx - fx0), fy = (float)(sy - fy0);
            float top = pixel(src, x0, y0) * (1 - fx) + (fx > 0 ? pixel(src, x0 + 1, y0) * fx : 0.0f);
            float bot = fy > 0 ? pixel(src, x0, y0 + 1) * (1 - fx) + (fx > 0 ? pixel(src, x0 + 1, y0 + 1) * fx : 0.0f)
                               : 0.0f;
            dst[y * DG_SIDE + x] = (top * (1 - fy) + bot * fy) / 255.0f;
        }
    }
}

int kg_model_path(char *out, size_t cap, const char *arg, dg_err *err) {
    struct stat st;
    if (stat(arg, &st) != 0) return dg_fail_errno(err, "%s: cannot open model", arg);
    if (S_ISDIR(st.st_mode)) {
        if ((size_t)snprintf(out, cap, "%s/model.safetensors", arg) >= cap) return dg_fail(err, "%s: path too long", arg);
        if (!dg_path_exists(out)) {
            char ck[4096];
            snprintf(ck, sizeof ck, "%s/checkpoint.ckpt", arg);
            if (dg_path_exists(ck))
                return dg_fail(err, "%s: run directory without model.safetensors: the run has not finished "
                                    "(resume it with digits-train --resume)", arg);
            return dg_fail(err, "%s: directory without model.safetensors; expected a digits-train run directory",
                           arg);
        }
        return 0;
    }
    if ((size_t)snprintf(out, cap, "%s", arg) >= cap) return dg_fail(err, "%s: path too long", arg);
    return 0;
}

int kg_net_fits(const nn_net *net, const char *name, dg_err *err) {
    const nn_spec *s = nn_net_spec(net);
    if (s->output != NN_OUT_CLASSES)
        return dg_fail(err, "%s: a GAN's %s ('output %s'), not a classifier", name,
                       s->output == NN_OUT_LOGIT ? "discriminator" : "generator",
                       s->output == NN_OUT_LOGIT ? "logit" : "image");
    if (s->in_h != DG_SIDE || s->in_w != DG_SIDE || s->in_c != 1)
        return dg_fail(err, "%s: the model takes %dx%dx%d inputs; these images are 28x28x1", name, s->in_h, s->in_w,
                       s->in_c);
    for (int l = s->n_layers - 1; l >= 0; l--) {
        if (s->layers[l].kind == NN_DENSE) {
            if (s->layers[l].units != DG_CLASSES)
                return dg_fail(err, "%s: the model ends in %d outputs; digits need 10", name, s->layers[l].units);
            break;
        }
        if (s->layers[l].kind == NN_CONV) break;
    }
    return 0;
}

int kg_predict_net(float *probs, nn_net *net, const kg_images *im, const int64_t *rows, size_t n, int tta,
                   dg_err *err) {
    if (tta < 1 || tta > KG_TTA_MAX) return dg_fail(err, "tta %d: expected 1..%d views", tta, KG_TTA_MAX);
    for (size_t i = 0; rows && i < n; i++)
        if (rows[i] < 0 || (uint64_t)rows[i] >= im->n)
            return dg_fail(err, "row id %lld at %zu is outside the %zu images", (long long)rows[i], i, im->n);
    int bmax = nn_net_max_batch(net);
    float *x = malloc((size_t)bmax * DG_PIXELS * sizeof(float)); /* (B, 28, 28, 1) */
    if (!x) return dg_fail(err, "predict: out of memory for a batch of %d images", bmax);
    memset(probs, 0, n * DG_CLASSES * sizeof(float));
    for (size_t b0 = 0; b0 < n; b0 += (size_t)bmax) {
        int B = (int)(n - b0 < (size_t)bmax ? n - b0 : (size_t)bmax);
        for (int v = 0; v < tta; v++) {
#pragma omp parallel for schedule(static)
            for (int i = 0; i < B; i++) {
                size_t r = rows ? (size_t)rows[b0 + (size_t)i] : b0 + (size_t)i;
                kg_tta_apply(x + (size_t)i * DG_PIXELS, kg_images_get(im, r), v);
            }
            nn_net_forward(net, x, B, 0, 0, 0);
            const float *p = nn_net_probs(net); /* (B, 10) */
            for (size_t k = 0; k < (size_t)B * DG_CLASSES; k++) probs[b0 * DG_CLASSES + k] += p[k] / (float)tta;
        }
    }
    free(x);
    return 0;
}
