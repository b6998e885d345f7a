/* dg_sink: streaming dataset sinks (see dg_sink.h). */
#include "core/dg_sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "core/dg_npy.h"

#define KG_NPY_HEADER 128                /* fixed, so the final N can be written in place */
#define KG_NPY_PLACEHOLDER 999999999999u /* widest N the fixed header must hold */
#define KG_CSV_LINE (DG_PIXELS * 4 + 8)  /* "255," per field, label, '\n' */

struct dg_sink {
    dg_format fmt;
    int has_labels;
    size_t n;
    dg_dataset_writer ds; /* DG_FMT_DATASET */
    dg_afile img, lab;    /* the other formats: images (or the CSV) and labels */
    char *line;           /* DG_FMT_CSV: one formatted row */
};

int dg_format_parse(const char *name, dg_format *fmt) {
    static const char *names[] = {"dataset", "npy", "idx", "csv"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, names[i]) == 0) {
            *fmt = (dg_format)i;
            return 0;
        }
    return -1;
}

const char *dg_format_name(dg_format fmt) {
    switch (fmt) {
    case DG_FMT_DATASET: return "dataset";
    case DG_FMT_NPY: return "npy";
    case DG_FMT_IDX: return "idx";
    case DG_FMT_CSV: return "csv";
    }
    return "?";
}

int dg_sink_paths(dg_format fmt, const char *path, int has_labels, char names[2][4096], dg_err *err) {
    size_t len = strlen(path);
    int k = 0, ok = 1;
    switch (fmt) {
    case DG_FMT_DATASET:
    case DG_FMT_CSV: ok = snprintf(names[k++], 4096, "%s", path) < 4096; break;
    case DG_FMT_NPY:
        ok = snprintf(names[k++], 4096, "%s", path) < 4096;
        if (has_labels) {
            size_t stem = len >= 4 && strcmp(path + len - 4, ".npy") == 0 ? len - 4 : len;
            ok = ok && snprintf(names[k++], 4096, "%.*s-labels.npy", (int)stem, path) < 4096;
        }
        break;
    case DG_FMT_IDX:
        ok = snprintf(names[k++], 4096, "%s-images-idx3-ubyte", path) < 4096;
        if (has_labels) ok = ok && snprintf(names[k++], 4096, "%s-labels-idx1-ubyte", path) < 4096;
        break;
    default: return dg_fail(err, "%s: unknown output format %d", path, (int)fmt);
    }
    if (!ok) return dg_fail(err, "%s: path too long", path);
    return k;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The header of an images (labels = 0) or labels (labels = 1) file for n images; 0 or -1. */
static int write_header(dg_sink *s, FILE *fp, int labels, size_t n) {
    if (s->fmt == DG_FMT_NPY) {
        size_t shape[3] = {n, DG_SIDE, DG_SIDE};
        return dg_npy_write_header(fp, "'|u1'", shape, labels ? 1 : 3, KG_NPY_HEADER) == KG_NPY_HEADER ? 0 : -1;
    }
    if (s->fmt == DG_FMT_IDX) {
        uint8_t h[16];
        put_be32(h, labels ? 0x00000801u : 0x00000803u);
        put_be32(h + 4, (uint32_t)n);
        put_be32(h + 8, DG_SIDE);
        put_be32(h + 12, DG_SIDE);
        size_t len = labels ? 8 : 16;
        return fwrite(h, 1, len, fp) == len ? 0 : -1;
    }
    if (s->fmt == DG_FMT_CSV) {
        if (labels) return 0;
        if (s->has_labels && fputs("label,", fp) == EOF) return -1;
        for (int i = 0; i < DG_PIXELS; i++)
            if (fprintf(fp, "pixel%d%c", i, i + 1 < DG_PIXELS ? ',' : '\n') < 0) return -1;
    }
    return 0;
}

static void sink_free(dg_sink *s) {
    free(s->line);
    free(s);
}

int dg_sink_open(dg_sink **out, dg_format fmt, const char *path, int has_labels, dg_err *err) {
    *out = NULL;
    char names[2][4096];
    int nfiles = dg_sink_paths(fmt, path, has_labels, names, err);
    if (nfiles < 0) return -1;
    dg_sink *s = calloc(1, sizeof *s);
    if (!s) return dg_fail(err, "%s: out of memory", path);
    s->fmt = fmt;
    s->has_labels = has_labels ? 1 : 0;
    if (fmt == DG_FMT_DATASET) {
        if (dg_dataset_writer_open(&s->ds, path, s->has_labels, err) != 0) {
            sink_free(s);
            return -1;
        }
        *out = s;
        return 0;
    }
    if (fmt == DG_FMT_CSV && !(s->line = malloc(KG_CSV_LINE))) {
        sink_free(s);
        return dg_fail(err, "%s: out of memory", path);
    }
    if (dg_afile_open(&s->img, names[0], err) != 0) {
        sink_free(s);
        return -1;
    }
    if (write_header(s, s->img.fp, 0, KG_NPY_PLACEHOLDER) != 0) {
        dg_fail_errno(err, "%s: write failed", names[0]);
        dg_sink_abort(s);
        return -1;
    }
    if (nfiles == 2) {
        if (dg_afile_open(&s->lab, names[1], err) != 0) {
            dg_sink_abort(s);
            return -1;
        }
        if (write_header(s, s->lab.fp, 1, KG_NPY_PLACEHOLDER) != 0) {
            dg_fail_errno(err, "%s: write failed", names[1]);
            dg_sink_abort(s);
            return -1;
        }
    }
    *out = s;
    return 0;
}

size_t dg_sink_count(const dg_sink *s) { return s->n; }

/* One CSV row into s->line; returns its length. */
static size_t format_csv_row(const dg_sink *s, const uint8_t *image, int label) {
    static const char digits[] = "0123456789";
    char *p = s->line;
    if (s->has_labels) {
        *p++ = digits[label];
        *p++ = ',';
    }
    for (int i = 0; i < DG_PIXELS; i++) {
        unsigned v = image[i];
        if (v >= 100) *p++ = digits[v / 100];
        if (v >= 10) *p++ = digits[v / 10 % 10];
        *p++ = digits[v % 10];
        *p++ = ',';
    }
    p[-1] = '\n';
    return (size_t)(p - s->line);
}

int dg_sink_add(dg_sink *s, const uint8_t *image, int label, dg_err *err) {
    if (s->has_labels && (label < 0 || label >= DG_CLASSES))
        return dg_fail(err, "%s: image %zu has label %d, expected 0..9",
                       s->fmt == DG_FMT_DATASET ? s->ds.f.path : s->img.path, s->n, label);
    if (s->fmt == DG_FMT_DATASET) {
        if (dg_dataset_writer_add(&s->ds, image, label, err) != 0) return -1;
        s->n++;
        return 0;
    }
    if (s->fmt == DG_FMT_IDX && s->n >= 0xffffffffu)
        return dg_fail(err, "%s: more images than IDX can count", s->img.path);
    if (s->fmt == DG_FMT_CSV) {
        size_t len = format_csv_row(s, image, label);
        if (fwrite(s->line, 1, len, s->img.fp) != len) return dg_fail_errno(err, "%s: write failed", s->img.path);
    } else {
        if (fwrite(image, 1, DG_PIXELS, s->img.fp) != DG_PIXELS)
            return dg_fail_errno(err, "%s: write failed", s->img.path);
        if (s->has_labels && fputc(label, s->lab.fp) == EOF) return dg_fail_errno(err, "%s: write failed", s->lab.path);
    }
    s->n++;
    return 0;
}

int dg_sink_commit_with(dg_sink *s, dg_afile *const *extra, int n_extra, dg_err *err) {
    dg_afile *files[DG_SINK_MAX_EXTRA + 2];
    if (n_extra < 0 || n_extra > DG_SINK_MAX_EXTRA) {
        dg_sink_abort(s);
        return dg_fail(err, "internal: %d extra files for one commit", n_extra);
    }
    int nf = 0;
    for (int i = 0; i < n_extra; i++) files[nf++] = extra[i];
    if (s->fmt == DG_FMT_DATASET) {
        int rc = dg_dataset_writer_finish(&s->ds, err);
        if (rc == 0) {
            files[nf++] = &s->ds.f;
            rc = dg_afile_commit_all(files, nf, err);
        } else {
            for (int i = 0; i < n_extra; i++) dg_afile_abort(extra[i]);
        }
        sink_free(s);
        return rc;
    }
    /* Final counts into the headers. */
    if (s->fmt != DG_FMT_CSV) {
        if (fseek(s->img.fp, 0, SEEK_SET) != 0 || write_header(s, s->img.fp, 0, s->n) != 0) {
            dg_fail_errno(err, "%s: write failed", s->img.path);
            goto fail;
        }
        if (s->lab.fp && (fseek(s->lab.fp, 0, SEEK_SET) != 0 || write_header(s, s->lab.fp, 1, s->n) != 0)) {
            dg_fail_errno(err, "%s: write failed", s->lab.path);
            goto fail;
        }
    }
    /* Images, then labels, as one commit: a failure leaves both final names as they were. */
    files[nf++] = &s->img;
    if (s->lab.fp) files[nf++] = &s->lab;
    int rc = dg_afile_commit_all(files, nf, err);
    sink_free(s);
    return rc;
fail:
    for (int i = 0; i < n_extra; i++) dg_afile_abort(extra[i]);
    dg_sink_abort(s);
    return -1;
}

int dg_sink_commit(dg_sink *s, dg_err *err) { return dg_sink_commit_with(s, NULL, 0, err); }

void dg_sink_abort(dg_sink *s) {
    if (!s) return;
    if (s->fmt == DG_FMT_DATASET) {
        dg_dataset_writer_abort(&s->ds);
    } else {
        dg_afile_abort(&s->img);
        dg_afile_abort(&s->lab);
    }
    sink_free(s);
}
