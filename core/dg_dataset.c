/* dg_dataset: reading and writing the project's dataset file (see dg_dataset.h). */
#include "core/dg_dataset.h"

#include <string.h>

#include "core/dg_npy.h"

#define HEADER_BYTES 128 /* fixed, so the final N can be written in place */

/* descr with whitespace removed and '<u1' / 'u1' spelled '|u1', so equivalent spellings compare equal. */
static void normalize_descr(const char *in, char *out, size_t cap) {
    size_t n = 0;
    for (const char *p = in; *p && n + 4 < cap; p++) {
        if (*p == ' ') continue;
        if (*p == '\'' && (strncmp(p, "'<u1'", 5) == 0 || strncmp(p, "'u1'", 4) == 0)) {
            memcpy(out + n, "'|u1'", 5);
            n += 5;
            p += (p[1] == 'u') ? 3 : 4;
            continue;
        }
        out[n++] = *p;
    }
    out[n] = '\0';
}

int dg_dataset_open(dg_dataset *ds, const char *path, dg_err *err) {
    memset(ds, 0, sizeof *ds);
    if (dg_map_open(&ds->map, path, err) != 0) return -1;
    dg_npy h;
    if (dg_npy_parse(ds->map.data, ds->map.size, &h, path, err) != 0) goto fail;
    char got[256], lab[256], unl[256];
    normalize_descr(h.descr, got, sizeof got);
    normalize_descr(DG_DESCR_LABELLED, lab, sizeof lab);
    normalize_descr(DG_DESCR_UNLABELLED, unl, sizeof unl);
    if (strcmp(got, lab) == 0) {
        ds->has_labels = 1;
    } else if (strcmp(got, unl) != 0) {
        dg_fail(err, "%s: not a digits dataset (dtype %s; expected %s or %s)", path, h.descr, DG_DESCR_LABELLED,
                DG_DESCR_UNLABELLED);
        goto fail;
    }
    if (h.ndim != 1) {
        dg_fail(err, "%s: not a digits dataset (a dataset is 1-dimensional, this has %d dimensions)", path, h.ndim);
        goto fail;
    }
    ds->n = h.shape[0];
    ds->stride = DG_PIXELS + (size_t)ds->has_labels;
    size_t want = ds->n * ds->stride, have = ds->map.size - h.data_offset;
    if (have != want) {
        dg_fail(err, "%s: %zu bytes of records, %zu images need %zu (truncated or corrupted)", path, have, ds->n, want);
        goto fail;
    }
    ds->records = ds->map.data + h.data_offset;
    if (ds->has_labels)
        for (size_t i = 0; i < ds->n; i++)
            if (ds->records[i * ds->stride] >= DG_CLASSES) {
                dg_fail(err, "%s: record %zu has label %u, expected 0..9", path, i, ds->records[i * ds->stride]);
                goto fail;
            }
    return 0;
fail:
    dg_dataset_close(ds);
    return -1;
}

void dg_dataset_close(dg_dataset *ds) {
    dg_map_close(&ds->map);
    ds->records = NULL;
    ds->n = 0;
}

static int write_header(dg_dataset_writer *w) {
    size_t shape[1] = {w->n};
    return dg_npy_write_header(w->f.fp, w->has_labels ? DG_DESCR_LABELLED : DG_DESCR_UNLABELLED, shape, 1,
                               HEADER_BYTES) == HEADER_BYTES
               ? 0
               : -1;
}

int dg_dataset_writer_open(dg_dataset_writer *w, const char *path, int has_labels, dg_err *err) {
    memset(w, 0, sizeof *w);
    w->has_labels = has_labels ? 1 : 0;
    if (dg_afile_open(&w->f, path, err) != 0) return -1;
    /* Placeholder N wide enough that the final one fits in the same 128 bytes. */
    w->n = 999999999999u;
    if (write_header(w) != 0) {
        dg_fail_errno(err, "%s: write failed", path);
        dg_afile_abort(&w->f);
        return -1;
    }
    w->n = 0;
    return 0;
}

int dg_dataset_writer_add(dg_dataset_writer *w, const uint8_t *image, int label, dg_err *err) {
    if (w->has_labels) {
        if (label < 0 || label >= DG_CLASSES) return dg_fail(err, "%s: label %d outside 0..9", w->f.path, label);
        if (fputc(label, w->f.fp) == EOF) return dg_fail_errno(err, "%s: write failed", w->f.path);
    }
    if (fwrite(image, 1, DG_PIXELS, w->f.fp) != DG_PIXELS) return dg_fail_errno(err, "%s: write failed", w->f.path);
    w->n++;
    return 0;
}

int dg_dataset_writer_add_records(dg_dataset_writer *w, const uint8_t *records, size_t n, dg_err *err) {
    size_t stride = DG_PIXELS + (size_t)w->has_labels;
    if (n && fwrite(records, stride, n, w->f.fp) != n) return dg_fail_errno(err, "%s: write failed", w->f.path);
    w->n += n;
    return 0;
}

int dg_dataset_writer_finish(dg_dataset_writer *w, dg_err *err) {
    if (fseek(w->f.fp, 0, SEEK_SET) != 0 || write_header(w) != 0) {
        dg_fail_errno(err, "%s: write failed", w->f.path);
        dg_afile_abort(&w->f);
        return -1;
    }
    return 0;
}

int dg_dataset_writer_commit(dg_dataset_writer *w, dg_err *err) {
    if (dg_dataset_writer_finish(w, err) != 0) return -1;
    return dg_afile_commit(&w->f, err);
}

void dg_dataset_writer_abort(dg_dataset_writer *w) { dg_afile_abort(&w->f); }
