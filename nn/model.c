/* nn/model: models as safetensors files (see nn/model.h).
 *
 * File: u64 little-endian N, then N bytes of JSON header (padded with spaces to a multiple of 8), then the tensor
 * data, contiguous, in the order of nn_net_tensor (params and buffers), each F32 little-endian:
 *   {"__metadata__": {"format": "digits-model", ...}, "conv1.weight": {"dtype": "F32", "shape": [...],
 *    "data_offsets": [begin, end]}, ...}     offsets are bytes relative to the start of the data.
 * Not here: choosing what goes into the metadata beyond the spec (the train stage passes extra_meta).
 */
#include "nn/model.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dg_file.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "nn/model writes F32 tensors in host order and assumes a little-endian host"
#endif

#ifndef DIGITS_VERSION
#define DIGITS_VERSION "unknown"
#endif

#define MAX_HEADER (100u << 20) /* safetensors' own limit */

static const float *tensor_data(nn_net *net, const nn_tensor *t) {
    return (t->is_buffer ? nn_net_buffers(net) : nn_net_params(net)) + t->offset;
}

/* Add extra_meta's members to meta as strings (numbers and other values as their JSON text). */
static int add_extra(cJSON *meta, const char *extra_meta, const char *path, dg_err *err) {
    if (!extra_meta) return 0;
    cJSON *x = cJSON_Parse(extra_meta);
    if (!x || !cJSON_IsObject(x)) {
        cJSON_Delete(x);
        return dg_fail(err, "%s: extra metadata is not a JSON object: %.80s", path, extra_meta);
    }
    for (cJSON *it = x->child; it; it = it->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(meta, it->string);
        if (cJSON_IsString(it)) {
            cJSON_AddStringToObject(meta, it->string, it->valuestring);
        } else {
            char *s = cJSON_PrintUnformatted(it);
            if (!s) {
                cJSON_Delete(x);
                return dg_fail(err, "%s: out of memory", path);
            }
            cJSON_AddStringToObject(meta, it->string, s);
            free(s);
        }
    }
    cJSON_Delete(x);
    return 0;
}

int nn_model_save(const char *path, nn_net *net, const char *extra_meta, dg_err *err) {
    const nn_spec *spec = nn_net_spec(net);
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_CreateObject();
    char *hyper = nn_hyper_json(&spec->hyper), *header = NULL;
    int rc = -1;
    if (!root || !meta || !hyper) {
        cJSON_Delete(meta);
        meta = NULL;
        dg_fail(err, "%s: out of memory", path);
        goto done;
    }
    cJSON_AddItemToObject(root, "__metadata__", meta);
    cJSON_AddStringToObject(meta, "format", "digits-model");
    cJSON_AddStringToObject(meta, "version", DIGITS_VERSION);
    cJSON_AddStringToObject(meta, "spec", spec->text ? spec->text : "");
    cJSON_AddStringToObject(meta, "spec_name", spec->name);
    cJSON_AddStringToObject(meta, "hyper", hyper);
    if (add_extra(meta, extra_meta, path, err) != 0) goto done;
    size_t at = 0;
    int nt = nn_net_tensor_count(net);
    for (int i = 0; i < nt; i++) {
        const nn_tensor *t = nn_net_tensor(net, i);
        cJSON *o = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *offs = cJSON_CreateArray();
        if (!o || !shape || !offs) {
            cJSON_Delete(o);
            cJSON_Delete(shape);
            cJSON_Delete(offs);
            dg_fail(err, "%s: out of memory", path);
            goto done;
        }
        cJSON_AddStringToObject(o, "dtype", "F32");
        for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber(t->shape[d]));
        cJSON_AddItemToObject(o, "shape", shape);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)at));
        at += t->count * sizeof(float);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)at));
        cJSON_AddItemToObject(o, "data_offsets", offs);
        cJSON_AddItemToObject(root, t->name, o);
    }
    header = cJSON_PrintUnformatted(root);
    if (!header) {
        dg_fail(err, "%s: out of memory", path);
        goto done;
    }
    size_t hlen = strlen(header), padded = (hlen + 7) / 8 * 8;
    uint64_t n64 = padded;
    dg_afile f;
    if (dg_afile_open(&f, path, err) != 0) goto done;
    int ok = fwrite(&n64, 8, 1, f.fp) == 1 && fwrite(header, 1, hlen, f.fp) == hlen;
    for (size_t i = hlen; ok && i < padded; i++) ok = fputc(' ', f.fp) != EOF;
    for (int i = 0; ok && i < nt; i++) {
        const nn_tensor *t = nn_net_tensor(net, i);
        ok = fwrite(tensor_data(net, t), sizeof(float), t->count, f.fp) == t->count;
    }
    if (!ok) {
        dg_fail_errno(err, "%s: write failed", path);
        dg_afile_abort(&f);
        goto done;
    }
    rc = dg_afile_commit(&f, err);
done:
    free(header);
    free(hyper);
    cJSON_Delete(root);
    return rc;
}

/* ---- reading ---- */

typedef struct st_file {
    dg_map map;
    cJSON *header;
    const unsigned char *data; /* tensor bytes */
    size_t data_size;
} st_file;

static void st_close(st_file *f) {
    cJSON_Delete(f->header);
    dg_map_close(&f->map);
    memset(f, 0, sizeof *f);
}

static int st_open(st_file *f, const char *path, dg_err *err) {
    memset(f, 0, sizeof *f);
    if (dg_map_open(&f->map, path, err) != 0) return -1;
    uint64_t hlen;
    if (f->map.size < 8) {
        st_close(f);
        return dg_fail(err, "%s: not a safetensors file (%zu bytes)", path, f->map.size);
    }
    memcpy(&hlen, f->map.data, 8);
    if (hlen > MAX_HEADER || hlen > f->map.size - 8 || hlen < 2 || f->map.data[8] != '{') {
        st_close(f);
        return dg_fail(err,
                       "%s: not a safetensors file (its first 8 bytes give a header of %llu bytes; the file has %zu, "
                       "and the header must start with '{')",
                       path, (unsigned long long)hlen, f->map.size);
    }
    f->header = cJSON_ParseWithLength((const char *)f->map.data + 8, (size_t)hlen);
    if (!f->header || !cJSON_IsObject(f->header)) {
        st_close(f);
        return dg_fail(err, "%s: not a safetensors file (header is not a JSON object)", path);
    }
    f->data = f->map.data + 8 + hlen;
    f->data_size = f->map.size - 8 - (size_t)hlen;
    return 0;
}

static const char *meta_str(const st_file *f, const char *key) {
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(f->header, "__metadata__");
    cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Check one header entry against tensor t and copy its data into dst (t->count floats). */
static int load_tensor(const st_file *f, const cJSON *o, const nn_tensor *t, float *dst, size_t *begin,
                       size_t *end, const char *path, dg_err *err) {
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(o, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(o, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(o, "data_offsets");
    if (!cJSON_IsString(dtype) || strcmp(dtype->valuestring, "F32") != 0)
        return dg_fail(err, "%s: tensor '%s' has dtype %s, expected F32", path, t->name,
                       cJSON_IsString(dtype) ? dtype->valuestring : "(none)");
    char want[64] = "", got[64] = "";
    size_t wl = 0, gl = 0;
    for (int d = 0; d < t->ndim; d++)
        wl += (size_t)snprintf(want + wl, sizeof want - wl, "%s%d", d ? "," : "", t->shape[d]);
    int ok = cJSON_IsArray(shape) && cJSON_GetArraySize(shape) == t->ndim;
    const cJSON *it;
    int d = 0;
    cJSON_ArrayForEach(it, shape) {
        if (gl < sizeof got) gl += (size_t)snprintf(got + gl, sizeof got - gl, "%s%g", d ? "," : "", it->valuedouble);
        if (!cJSON_IsNumber(it) || d >= t->ndim || it->valuedouble != (double)t->shape[d]) ok = 0;
        d++;
    }
    if (!ok) return dg_fail(err, "%s: tensor '%s' has shape (%s), the spec needs (%s)", path, t->name, got, want);
    const cJSON *ob = cJSON_IsArray(offs) && cJSON_GetArraySize(offs) == 2 ? cJSON_GetArrayItem(offs, 0) : NULL;
    const cJSON *oe = ob ? cJSON_GetArrayItem(offs, 1) : NULL;
    /* Offsets are whole numbers of bytes: a string or 0.5 is not an offset. */
    if (!cJSON_IsNumber(ob) || !cJSON_IsNumber(oe) || ob->valuedouble != floor(ob->valuedouble) ||
        oe->valuedouble != floor(oe->valuedouble))
        return dg_fail(err, "%s: tensor '%s' has no valid data_offsets", path, t->name);
    double b = ob->valuedouble, e = oe->valuedouble;
    if (!(b >= 0 && e >= b && e <= (double)f->data_size) || e - b != (double)(t->count * sizeof(float)))
        return dg_fail(err, "%s: tensor '%s' has data_offsets [%.0f, %.0f] outside the %zu data bytes (truncated?)",
                       path, t->name, b, e, f->data_size);
    memcpy(dst, f->data + (size_t)b, t->count * sizeof(float));
    *begin = (size_t)b;
    *end = (size_t)e;
    return 0;
}

int nn_model_load(const char *path, int max_batch, nn_net **out, dg_err *err) {
    *out = NULL;
    st_file f;
    if (st_open(&f, path, err) != 0) return -1;
    const char *format = meta_str(&f, "format"), *text = meta_str(&f, "spec");
    if (!format || strcmp(format, "digits-model") != 0 || !text) {
        st_close(&f);
        return dg_fail(err, "%s: a safetensors file, but not a digits model (no __metadata__ format=digits-model "
                            "with a spec)", path);
    }
    char fname[1100];
    snprintf(fname, sizeof fname, "%s[spec]", path);
    nn_spec spec;
    nn_net *net = NULL;
    if (nn_spec_parse(&spec, text, fname, err) != 0) {
        st_close(&f);
        return -1;
    }
    int rc = nn_net_create(&net, &spec, max_batch, err);
    nn_spec_free(&spec);
    if (rc != 0) {
        st_close(&f);
        return -1;
    }
    int nt = nn_net_tensor_count(net);
    size_t *range = malloc(2 * sizeof(size_t) * (size_t)(nt ? nt : 1)), covered = 0;
    if (!range) rc = dg_fail(err, "%s: out of memory", path);
    for (int i = 0; i < nt && rc == 0; i++) {
        const nn_tensor *t = nn_net_tensor(net, i);
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(f.header, t->name);
        if (!o) {
            rc = dg_fail(err, "%s: tensor '%s' of the spec is missing", path, t->name);
            break;
        }
        float *dst = (t->is_buffer ? nn_net_buffers(net) : nn_net_params(net)) + t->offset;
        rc = load_tensor(&f, o, t, dst, &range[2 * i], &range[2 * i + 1], path, err);
        /* safetensors: the tensors tile the data, no two share a byte (no holes either: see the total below). */
        for (int j = 0; j < i && rc == 0; j++)
            if (range[2 * i] < range[2 * j + 1] && range[2 * j] < range[2 * i + 1])
                rc = dg_fail(err, "%s: tensors '%s' and '%s' overlap in the data", path, nn_net_tensor(net, j)->name,
                             t->name);
        if (rc == 0) covered += range[2 * i + 1] - range[2 * i];
    }
    free(range);
    if (rc == 0) {
        for (const cJSON *it = f.header->child; it; it = it->next) {
            if (strcmp(it->string, "__metadata__") == 0) continue;
            int known = 0;
            for (int i = 0; i < nt && !known; i++) known = strcmp(nn_net_tensor(net, i)->name, it->string) == 0;
            if (!known) {
                rc = dg_fail(err, "%s: tensor '%s' is not in the spec", path, it->string);
                break;
            }
        }
    }
    if (rc == 0 && covered != f.data_size)
        rc = dg_fail(err, "%s: %zu data bytes, the tensors cover %zu", path, f.data_size, covered);
    st_close(&f);
    if (rc != 0) {
        nn_net_free(net);
        return -1;
    }
    *out = net;
    return 0;
}

int nn_model_meta(const char *path, const char *key, char **value, dg_err *err) {
    *value = NULL;
    st_file f;
    if (st_open(&f, path, err) != 0) return -1;
    const char *v = meta_str(&f, key);
    if (v) {
        size_t n = strlen(v) + 1;
        *value = malloc(n);
        if (!*value) {
            st_close(&f);
            return dg_fail(err, "%s: out of memory", path);
        }
        memcpy(*value, v, n);
    }
    st_close(&f);
    return 0;
}
