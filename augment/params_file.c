/* augment/params_file: .npy and .jsonl files of per-image parameters (see params_file.h). */
#include "augment/params_file.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment/elastic.h"
#include "core/dg_cli.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "params_file writes little-endian records by memcpy"
#endif

#define NPY_HEADER 256 /* fixed, so the final count can be written in place */

int aug_params_path_ok(const char *path) { return dg_ends_with(path, ".npy") || dg_ends_with(path, ".jsonl"); }

static int npy_header(aug_params_writer *w) {
    size_t shape[1] = {w->n};
    return dg_npy_write_header(w->f.fp, AUG_PARAMS_DESCR, shape, 1, NPY_HEADER) == NPY_HEADER ? 0 : -1;
}

int aug_params_writer_open(aug_params_writer *w, const char *path, dg_err *err) {
    memset(w, 0, sizeof *w);
    if (!aug_params_path_ok(path)) return dg_fail(err, "%s: a parameters file must end in .npy or .jsonl", path);
    w->jsonl = dg_ends_with(path, ".jsonl");
    if (dg_afile_open(&w->f, path, err) != 0) return -1;
    if (!w->jsonl) {
        w->n = 999999999999u; /* placeholder as wide as any real count */
        if (npy_header(w) != 0) {
            dg_fail_errno(err, "%s: write failed", path);
            dg_afile_abort(&w->f);
            return -1;
        }
        w->n = 0;
    }
    return 0;
}

static const char *kind_name(aug_kind k) {
    static const char *names[] = {"deskew", "rotate", "zoom", "scale", "shear", "shift", "elastic"};
    return names[k];
}

int aug_params_writer_add(aug_params_writer *w, const aug_row *row, const aug_policy *policy, dg_err *err) {
    const aug_params *p = &row->p;
    int bad;
    if (!w->jsonl) {
        unsigned char rec[AUG_PARAMS_RECORD];
        memcpy(rec + 0, &row->src, 4);
        memcpy(rec + 4, &row->copy, 4);
        memcpy(rec + 8, &p->seed, 8);
        memcpy(rec + 16, &p->epoch, 4);
        memcpy(rec + 20, &p->id, 4);
        memcpy(rec + 24, p->m, 24);
        memcpy(rec + 48, &p->alpha, 4);
        memcpy(rec + 52, &p->sigma, 4);
        memcpy(rec + 56, &p->skew, 4);
        bad = fwrite(rec, 1, sizeof rec, w->f.fp) != sizeof rec;
    } else {
        FILE *fp = w->f.fp;
        fprintf(fp, "{\"row\":%zu,\"src\":%u,\"copy\":%d,", w->n, row->src, (int)row->copy);
        if (p->seed < (1ull << 53)) fprintf(fp, "\"seed\":%llu,", (unsigned long long)p->seed);
        else fprintf(fp, "\"seed\":\"%llu\",", (unsigned long long)p->seed);
        fprintf(fp, "\"epoch\":%u,\"id\":%u,\"m\":[%.9g,%.9g,%.9g,%.9g,%.9g,%.9g],\"alpha\":%.9g,\"sigma\":%.9g,"
                    "\"skew\":%.9g,\"ops\":[",
                p->epoch, p->id, p->m[0], p->m[1], p->m[2], p->m[3], p->m[4], p->m[5], p->alpha, p->sigma, p->skew);
        if (policy && row->copy >= 0) {
            aug_draw d[AUG_MAX_OPS];
            aug_draw_ops(policy, p->seed, p->epoch, p->id, d);
            int first = 1;
            for (int i = 0; i < policy->n; i++) {
                if (!d[i].applied) continue;
                aug_kind k = policy->op[i].kind;
                fprintf(fp, "%s[\"%s\"", first ? "" : ",", kind_name(k));
                if (k == AUG_DESKEW) fprintf(fp, ",%.9g", p->skew);
                else if (k == AUG_ROTATE || k == AUG_SHEAR || k == AUG_ZOOM) fprintf(fp, ",%.9g", d[i].v[0]);
                else fprintf(fp, ",%.9g,%.9g", d[i].v[0], d[i].v[1]);
                fputc(']', fp);
                first = 0;
            }
        }
        bad = fputs("]}\n", fp) == EOF;
    }
    if (bad) return dg_fail_errno(err, "%s: write failed", w->f.path);
    w->n++;
    return 0;
}

int aug_params_writer_finish(aug_params_writer *w, dg_err *err) {
    if (!w->jsonl && (fseek(w->f.fp, 0, SEEK_SET) != 0 || npy_header(w) != 0)) {
        dg_fail_errno(err, "%s: write failed", w->f.path);
        dg_afile_abort(&w->f);
        return -1;
    }
    return 0;
}

int aug_params_writer_commit(aug_params_writer *w, dg_err *err) {
    if (aug_params_writer_finish(w, err) != 0) return -1;
    return dg_afile_commit(&w->f, err);
}

void aug_params_writer_abort(aug_params_writer *w) { dg_afile_abort(&w->f); }

/* ---- reading ---- */

static void strip_spaces(const char *in, char *out, size_t cap) {
    size_t n = 0;
    for (; *in && n + 1 < cap; in++)
        if (*in != ' ') out[n++] = *in;
    out[n] = '\0';
}

int aug_params_reader_open(aug_params_reader *r, const char *path, dg_err *err) {
    memset(r, 0, sizeof *r);
    r->path = path;
    if (!aug_params_path_ok(path)) return dg_fail(err, "%s: a parameters file must end in .npy or .jsonl", path);
    r->jsonl = dg_ends_with(path, ".jsonl");
    if (!r->jsonl) {
        if (dg_npy_open(&r->npy, path, 0, err) != 0) return -1;
        char got[256], want[256];
        strip_spaces(r->npy.h.descr, got, sizeof got);
        strip_spaces(AUG_PARAMS_DESCR, want, sizeof want);
        if (strcmp(got, want) != 0 || r->npy.h.ndim != 1 || r->npy.h.fortran_order) {
            dg_npy_close(&r->npy);
            return dg_fail(err, "%s: not a digits-augment parameters file (dtype %s, %d dimensions)", path,
                           r->npy.h.descr, r->npy.h.ndim);
        }
        r->n = r->npy.h.shape[0];
        size_t have = r->npy.map.size - r->npy.h.data_offset;
        if (have != r->n * AUG_PARAMS_RECORD) {
            dg_npy_close(&r->npy);
            return dg_fail(err, "%s: %zu bytes of records, %zu rows need %zu (truncated?)", path, have, r->n,
                           r->n * AUG_PARAMS_RECORD);
        }
        return 0;
    }
    r->fp = fopen(path, "rb");
    if (!r->fp) return dg_fail_errno(err, "%s: cannot read", path);
    int c, last = '\n';
    while ((c = getc(r->fp)) != EOF) {
        if (c == '\n') r->n++;
        last = c;
    }
    if (last != '\n') r->n++;
    if (ferror(r->fp) || fseek(r->fp, 0, SEEK_SET) != 0) {
        fclose(r->fp);
        r->fp = NULL;
        return dg_fail_errno(err, "%s: read failed", path);
    }
    return 0;
}

static int check_row(const aug_params_reader *r, const aug_row *row, dg_err *err) {
    const aug_params *p = &row->p;
    for (int i = 0; i < 6; i++)
        if (!isfinite(p->m[i])) return dg_fail(err, "%s: row %zu: the map is not finite", r->path, r->next);
    if (!isfinite(p->alpha) || p->alpha < 0 || p->alpha > 1000)
        return dg_fail(err, "%s: row %zu: alpha must be in [0, 1000]", r->path, r->next);
    if (!isfinite(p->sigma) || p->sigma < 0 || p->sigma > AUG_SIGMA_MAX)
        return dg_fail(err, "%s: row %zu: sigma must be in [0, 100]", r->path, r->next);
    if (!isfinite(p->skew)) return dg_fail(err, "%s: row %zu: skew is not finite", r->path, r->next);
    return 0;
}

static int json_num(const cJSON *o, const char *key, double lo, double hi, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi)) return -1;
    *out = v->valuedouble;
    return 0;
}

int aug_params_reader_next(aug_params_reader *r, aug_row *row, dg_err *err) {
    if (r->next >= r->n) return 0;
    memset(row, 0, sizeof *row);
    aug_params *p = &row->p;
    if (!r->jsonl) {
        const unsigned char *rec = (const unsigned char *)r->npy.data + r->next * AUG_PARAMS_RECORD;
        memcpy(&row->src, rec + 0, 4);
        memcpy(&row->copy, rec + 4, 4);
        memcpy(&p->seed, rec + 8, 8);
        memcpy(&p->epoch, rec + 16, 4);
        memcpy(&p->id, rec + 20, 4);
        memcpy(p->m, rec + 24, 24);
        memcpy(&p->alpha, rec + 48, 4);
        memcpy(&p->sigma, rec + 52, 4);
        memcpy(&p->skew, rec + 56, 4);
    } else {
        ssize_t len = getline(&r->line, &r->cap, r->fp);
        if (len < 0) return dg_fail(err, "%s:%zu: unexpected end of file", r->path, r->next + 1);
        cJSON *o = cJSON_Parse(r->line);
        double v[8];
        const cJSON *m = o ? cJSON_GetObjectItemCaseSensitive(o, "m") : NULL;
        const cJSON *seed = o ? cJSON_GetObjectItemCaseSensitive(o, "seed") : NULL;
        int ok = o && json_num(o, "src", 0, 4294967295.0, &v[0]) == 0 &&
                 json_num(o, "copy", -1, 2147483647.0, &v[1]) == 0 && json_num(o, "epoch", 0, 4294967295.0, &v[2]) == 0 &&
                 json_num(o, "id", 0, 4294967295.0, &v[3]) == 0 && json_num(o, "alpha", -INFINITY, INFINITY, &v[4]) == 0 &&
                 json_num(o, "sigma", -INFINITY, INFINITY, &v[5]) == 0 &&
                 json_num(o, "skew", -INFINITY, INFINITY, &v[6]) == 0 && cJSON_IsArray(m) && cJSON_GetArraySize(m) == 6;
        if (ok) {
            row->src = (uint32_t)v[0];
            row->copy = (int32_t)v[1];
            p->epoch = (uint32_t)v[2];
            p->id = (uint32_t)v[3];
            p->alpha = (float)v[4];
            p->sigma = (float)v[5];
            p->skew = (float)v[6];
            for (int i = 0; i < 6 && ok; i++) {
                const cJSON *e = cJSON_GetArrayItem(m, i);
                ok = cJSON_IsNumber(e);
                if (ok) p->m[i] = (float)e->valuedouble;
            }
            if (cJSON_IsNumber(seed) && seed->valuedouble >= 0 && seed->valuedouble < 9007199254740992.0)
                p->seed = (uint64_t)seed->valuedouble;
            else if (cJSON_IsString(seed)) {
                char *end;
                unsigned long long s = strtoull(seed->valuestring, &end, 10);
                ok = ok && *seed->valuestring && !*end;
                p->seed = s;
            } else
                ok = 0;
        }
        cJSON_Delete(o);
        if (!ok)
            return dg_fail(err, "%s:%zu: expected a parameters object (src, copy, seed, epoch, id, m[6], alpha, sigma, "
                                "skew)", r->path, r->next + 1);
    }
    if (check_row(r, row, err) != 0) return -1;
    r->next++;
    return 1;
}

void aug_params_reader_close(aug_params_reader *r) {
    if (!r->jsonl) dg_npy_close(&r->npy);
    if (r->fp) fclose(r->fp);
    free(r->line);
    r->fp = NULL;
    r->line = NULL;
}
