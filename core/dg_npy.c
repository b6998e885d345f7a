/* dg_npy: .npy header parsing and writing (see dg_npy.h and numpy/lib/format.py). */
#include "core/dg_npy.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char NPY_MAGIC[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n')) c->p++;
}

static int take(cursor *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted Python string ('...' or "..."), no escapes. */
static int take_str(cursor *c, char *out, size_t cap) {
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return 0;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap) return 0;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return 0;
    c->p++;
    out[n] = '\0';
    return 1;
}

/* The raw text of a balanced [...] literal, or a quoted string with its quotes. */
static int take_descr(cursor *c, char *out, size_t cap) {
    skip_ws(c);
    const char *start = c->p;
    if (c->p < c->end && *c->p == '[') {
        int depth = 0;
        char q = 0;
        for (; c->p < c->end; c->p++) {
            char ch = *c->p;
            if (q) {
                if (ch == q) q = 0;
            } else if (ch == '\'' || ch == '"') {
                q = ch;
            } else if (ch == '[' || ch == '(') {
                depth++;
            } else if (ch == ']' || ch == ')') {
                if (--depth == 0) {
                    c->p++;
                    break;
                }
            }
        }
        if (depth != 0) return 0;
    } else {
        char tmp[64];
        if (!take_str(c, tmp, sizeof tmp)) return 0;
    }
    size_t n = (size_t)(c->p - start);
    if (n + 1 > cap) return 0;
    memcpy(out, start, n);
    out[n] = '\0';
    return 1;
}

static int take_shape(cursor *c, dg_npy *h) {
    if (!take(c, '(')) return 0;
    h->ndim = 0;
    for (;;) {
        skip_ws(c);
        if (take(c, ')')) return 1;
        if (c->p >= c->end || !isdigit((unsigned char)*c->p)) return 0;
        uint64_t v = 0;
        while (c->p < c->end && isdigit((unsigned char)*c->p)) {
            if (v > (UINT64_MAX - 9) / 10) return 0;
            v = v * 10 + (uint64_t)(*c->p++ - '0');
        }
        if (c->p < c->end && *c->p == 'L') c->p++; /* Python 2 longs */
        if (h->ndim >= DG_NPY_MAXDIM) return 0;
        h->shape[h->ndim++] = (size_t)v;
        if (!take(c, ',')) return take(c, ')');
    }
}

int dg_npy_parse(const unsigned char *buf, size_t n, dg_npy *h, const char *path, dg_err *err) {
    memset(h, 0, sizeof *h);
    if (n < 10 || memcmp(buf, NPY_MAGIC, 6) != 0) return dg_fail(err, "%s: not a .npy file (bad magic)", path);
    unsigned major = buf[6];
    size_t hlen, pre;
    if (major == 1) {
        hlen = (size_t)buf[8] | ((size_t)buf[9] << 8);
        pre = 10;
    } else if (major == 2 || major == 3) {
        if (n < 12) return dg_fail(err, "%s: truncated .npy header", path);
        hlen = (size_t)buf[8] | ((size_t)buf[9] << 8) | ((size_t)buf[10] << 16) | ((size_t)buf[11] << 24);
        pre = 12;
    } else {
        return dg_fail(err, "%s: unsupported .npy version %u", path, major);
    }
    if (hlen > n - pre) return dg_fail(err, "%s: truncated .npy header", path);
    for (size_t i = pre; i < pre + hlen; i++)
        if ((buf[i] < 0x20 && buf[i] != '\t' && buf[i] != '\n' && buf[i] != '\r') || buf[i] == 0x7f)
            return dg_fail(err, "%s: control character 0x%02x in the .npy header at offset %zu", path, buf[i], i);
    cursor c = {(const char *)buf + pre, (const char *)buf + pre + hlen};
    int have_descr = 0, have_order = 0, have_shape = 0;
    if (!take(&c, '{')) return dg_fail(err, "%s: .npy header is not a dictionary", path);
    for (;;) {
        if (take(&c, '}')) break;
        char key[32];
        if (!take_str(&c, key, sizeof key) || !take(&c, ':'))
            return dg_fail(err, "%s: malformed .npy header near offset %ld", path, (long)(c.p - (const char *)buf));
        if (strcmp(key, "descr") == 0 && !have_descr) {
            if (!take_descr(&c, h->descr, sizeof h->descr)) return dg_fail(err, "%s: bad .npy descr", path);
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0 && !have_order) {
            skip_ws(&c);
            if (c.end - c.p >= 4 && memcmp(c.p, "True", 4) == 0) {
                h->fortran_order = 1;
                c.p += 4;
            } else if (c.end - c.p >= 5 && memcmp(c.p, "False", 5) == 0) {
                c.p += 5;
            } else {
                return dg_fail(err, "%s: bad .npy fortran_order", path);
            }
            have_order = 1;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            if (!take_shape(&c, h)) return dg_fail(err, "%s: bad .npy shape", path);
            have_shape = 1;
        } else {
            return dg_fail(err, "%s: unexpected key '%s' in .npy header", path, key);
        }
        if (!take(&c, ',')) {
            if (!take(&c, '}')) return dg_fail(err, "%s: malformed .npy header", path);
            break;
        }
    }
    if (!have_descr || !have_order || !have_shape) return dg_fail(err, "%s: .npy header lacks a key", path);
    if (h->fortran_order) return dg_fail(err, "%s: Fortran-ordered arrays are not supported", path);
    size_t count = 1;
    for (int i = 0; i < h->ndim; i++) {
        if (h->shape[i] == 0) continue;
        if (h->shape[i] > DG_NPY_MAX_COUNT / count)
            return dg_fail(err, "%s: .npy shape has more than %zu elements", path, (size_t)DG_NPY_MAX_COUNT);
        count *= h->shape[i];
    }
    h->data_offset = pre + hlen;
    return 0;
}

size_t dg_npy_count(const dg_npy *h) {
    size_t n = 1;
    for (int i = 0; i < h->ndim; i++) n *= h->shape[i];
    return n;
}

int dg_npy_is(const dg_npy *h, const char *type) {
    char want[64];
    snprintf(want, sizeof want, "'%s'", type);
    if (strcmp(h->descr, want) == 0) return 1;
    if (type[0] == '|' && (type[1] == 'u' || type[1] == 'i' || type[1] == 'b') && type[2] == '1') {
        snprintf(want, sizeof want, "'<%s'", type + 1);
        if (strcmp(h->descr, want) == 0) return 1;
    }
    return 0;
}

long dg_npy_write_header(FILE *fp, const char *descr, const size_t *shape, int ndim, size_t total) {
    char dict[512];
    int k = snprintf(dict, sizeof dict, "{'descr': %s, 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < ndim && k > 0 && (size_t)k < sizeof dict; i++)
        k += snprintf(dict + k, sizeof dict - (size_t)k, "%zu%s", shape[i], ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
    if (k > 0 && (size_t)k < sizeof dict) k += snprintf(dict + k, sizeof dict - (size_t)k, "), }");
    if (k <= 0 || (size_t)k >= sizeof dict) return -1;
    size_t need = 10 + (size_t)k + 1; /* magic, version, length, dict, '\n' */
    if (total == 0) total = (need + 63) / 64 * 64;
    if (total < need || total % 64 != 0 || total - 10 > 65535) return -1;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    size_t hlen = total - 10;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    if (fwrite(pre, 1, 10, fp) != 10 || fwrite(dict, 1, (size_t)k, fp) != (size_t)k) return -1;
    for (size_t i = 10 + (size_t)k; i + 1 < total; i++)
        if (fputc(' ', fp) == EOF) return -1;
    if (fputc('\n', fp) == EOF) return -1;
    return (long)total;
}

int dg_npy_write_afile(dg_afile *f, const char *path, const char *type, const size_t *shape, int ndim,
                       const void *data, size_t elem_size, dg_err *err) {
    char descr[64];
    snprintf(descr, sizeof descr, "'%s'", type);
    size_t count = 1;
    for (int i = 0; i < ndim; i++) count *= shape[i];
    if (dg_afile_open(f, path, err) != 0) return -1;
    if (dg_npy_write_header(f->fp, descr, shape, ndim, 0) < 0 ||
        (count && fwrite(data, elem_size, count, f->fp) != count)) {
        dg_fail_errno(err, "%s: write failed", path);
        dg_afile_abort(f);
        return -1;
    }
    return 0;
}

int dg_npy_save(const char *path, const char *type, const size_t *shape, int ndim, const void *data, size_t elem_size,
                dg_err *err) {
    dg_afile f = {0};
    if (dg_npy_write_afile(&f, path, type, shape, ndim, data, elem_size, err) != 0) return -1;
    return dg_afile_commit(&f, err);
}

int dg_npy_open(dg_npy_file *f, const char *path, size_t elem_size, dg_err *err) {
    memset(f, 0, sizeof *f);
    if (dg_map_open(&f->map, path, err) != 0) return -1;
    if (dg_npy_parse(f->map.data, f->map.size, &f->h, path, err) != 0) {
        dg_map_close(&f->map);
        return -1;
    }
    if (elem_size) {
        size_t want = dg_npy_count(&f->h) * elem_size;
        size_t have = f->map.size - f->h.data_offset;
        if (have != want) {
            dg_map_close(&f->map);
            return dg_fail(err, "%s: data is %zu bytes, the header's shape needs %zu (truncated or corrupted)", path,
                           have, want);
        }
    }
    f->data = f->map.data + f->h.data_offset;
    return 0;
}

int dg_npy_load_i64(const char *path, int64_t **values, size_t *n, dg_err *err) {
    dg_npy_file f;
    if (dg_npy_open(&f, path, 8, err) != 0) return -1;
    if (!dg_npy_is(&f.h, "<i8") || f.h.ndim != 1) {
        dg_fail(err, "%s: array %s with %d dimensions; expected int64 row ids (n,)", path, f.h.descr, f.h.ndim);
        dg_npy_close(&f);
        return -1;
    }
    *n = f.h.shape[0];
    *values = malloc((*n ? *n : 1) * sizeof(int64_t));
    if (!*values) {
        dg_npy_close(&f);
        return dg_fail(err, "%s: out of memory", path);
    }
    memcpy(*values, f.data, *n * sizeof(int64_t));
    dg_npy_close(&f);
    return 0;
}

void dg_npy_close(dg_npy_file *f) {
    dg_map_close(&f->map);
    f->data = NULL;
}
