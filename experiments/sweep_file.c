/* experiments/sweep_file: sweep files and their configurations (see sweep_file.h, docs/sweeps.md). */
#include "experiments/sweep_file.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment.h"
#include "augment/policy.h"
#include "core/dg_cli.h"
#include "core/dg_file.h"
#include "core/dg_rng.h"
#include "nn/spec.h"

void sw_text_pos(const char *text, size_t off, int *line, int *col) {
    int l = 1, c = 1;
    for (size_t i = 0; i < off && text[i]; i++) {
        if (text[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

/* Offset of the key path[0] / path[1] / ... in JSON text: each "name" followed by ':' searched after the previous
 * one (cJSON keeps no positions). Returns the offset of the last found key's quote (0 if none). */
static size_t key_offset(const char *text, const char *const *path, int n) {
    size_t at = 0, found = 0;
    for (int k = 0; k < n; k++) {
        char pat[80];
        snprintf(pat, sizeof pat, "\"%s\"", path[k]);
        const char *p = text + at;
        for (;;) {
            const char *q = strstr(p, pat);
            if (!q) return found;
            const char *r = q + strlen(pat);
            while (*r == ' ' || *r == '\t' || *r == '\n' || *r == '\r') r++;
            if (*r == ':') {
                found = (size_t)(q - text);
                at = (size_t)(r - text);
                break;
            }
            p = q + 1;
        }
    }
    return found;
}

/* "file:line:col: message" at the key path. */
__attribute__((format(printf, 5, 6))) static int fail_at(dg_err *err, const sw_sweep *s, const char *const *path,
                                                         int n, const char *fmt, ...) {
    int line, col;
    sw_text_pos(s->text, key_offset(s->text, path, n), &line, &col);
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return dg_fail(err, "%s:%d:%d: %s", s->file, line, col, msg);
}
#define FAIL1(k, ...) fail_at(err, s, (const char *const[]){k}, 1, __VA_ARGS__)
#define FAIL2(k1, k2, ...) fail_at(err, s, (const char *const[]){k1, k2}, 2, __VA_ARGS__)

static uint64_t fnv1a(uint64_t h, const char *t) {
    for (; *t; t++) h = (h ^ (unsigned char)*t) * 1099511628211ULL;
    return h;
}

/* An integer-valued JSON number in [lo, hi]. */
static int get_int(const cJSON *j, long lo, long hi, long *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double v = j->valuedouble;
    if (!(v >= (double)lo && v <= (double)hi) || v != floor(v)) return -1;
    *out = (long)v;
    return 0;
}

/* Round to the 6 significant digits a value is written with, so the spec, the leaderboard and the JSON agree. */
static double round6(double v) {
    char b[64];
    snprintf(b, sizeof b, "%.6g", v);
    return strtod(b, NULL);
}

void sw_value_format(const sw_value *v, char *buf, size_t n) {
    if (v->is_str)
        snprintf(buf, n, "%s", v->str);
    else if (v->is_int)
        snprintf(buf, n, "%.0f", v->num);
    else
        snprintf(buf, n, "%.6g", v->num);
}

static int parse_value(const cJSON *j, sw_value *v) {
    memset(v, 0, sizeof *v);
    if (cJSON_IsString(j)) {
        size_t len = strlen(j->valuestring);
        if (len == 0 || len >= sizeof v->str || strpbrk(j->valuestring, " \t\n#=")) return -1;
        v->is_str = 1;
        strcpy(v->str, j->valuestring);
        return 0;
    }
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble)) return -1;
    v->num = j->valuedouble;
    v->is_int = v->num == floor(v->num) && fabs(v->num) < 1e15;
    if (!v->is_int) v->num = round6(v->num);
    return 0;
}

/* One entry of "params": an array of values, or {"uniform"|"log_uniform"|"int"|"choice": [...]}. */
static int parse_param(sw_sweep *s, const cJSON *j, sw_param *p, dg_err *err) {
    const char *nm = j->string;
    if (strlen(nm) >= sizeof p->name) return FAIL2("params", nm, "params \"%s\": name too long", nm);
    strcpy(p->name, nm);
    int line, col;
    sw_text_pos(s->text, key_offset(s->text, (const char *const[]){"params", nm}, 2), &line, &col);
    p->line = line;
    p->col = col;
    const char *dot = strchr(nm, '.');
    if (strncmp(nm, "train.", 6) == 0) {
        p->layer = 0;
        snprintf(p->key, sizeof p->key, "%s", nm + 6);
    } else if (strncmp(nm, "layer", 5) == 0 && dot) {
        char num[16];
        size_t k = (size_t)(dot - nm - 5);
        long n;
        if (k == 0 || k >= sizeof num) return FAIL2("params", nm, "params \"%s\": expected layerN.KEY", nm);
        memcpy(num, nm + 5, k);
        num[k] = '\0';
        char *end;
        n = strtol(num, &end, 10);
        if (*end || n < 1 || n > NN_MAX_LAYERS)
            return FAIL2("params", nm, "params \"%s\": expected layerN.KEY with N in 1..%d", nm, NN_MAX_LAYERS);
        p->layer = (int)n;
        snprintf(p->key, sizeof p->key, "%s", dot + 1);
    } else if (strcmp(nm, "model") == 0) {
        p->layer = -2;
        snprintf(p->key, sizeof p->key, "model");
    } else if (!dot) {
        p->layer = -1;
        snprintf(p->key, sizeof p->key, "%s", nm);
    } else {
        return FAIL2("params", nm, "params \"%s\": expected train.KEY, layerN.KEY or a policy variable", nm);
    }
    if (!p->key[0]) return FAIL2("params", nm, "params \"%s\": empty key", nm);
    const cJSON *vals = j;
    p->dist = SW_VALUES;
    if (cJSON_IsObject(j)) {
        if (cJSON_GetArraySize(j) != 1)
            return FAIL2("params", nm,
                         "params \"%s\": expected one of \"uniform\", \"log_uniform\", \"int\", \"choice\"", nm);
        const cJSON *d = j->child;
        const char *kind = d->string;
        if (strcmp(kind, "choice") == 0) {
            vals = d;
        } else {
            p->dist = strcmp(kind, "uniform") == 0       ? SW_UNIFORM
                      : strcmp(kind, "log_uniform") == 0 ? SW_LOG_UNIFORM
                      : strcmp(kind, "int") == 0         ? SW_INT
                                                         : SW_VALUES;
            if (p->dist == SW_VALUES)
                return fail_at(err, s, (const char *const[]){"params", nm, kind}, 3,
                               "params \"%s\": unknown distribution \"%s\" (expected uniform, log_uniform, int, "
                               "choice)",
                               nm, kind);
            if (!cJSON_IsArray(d) || cJSON_GetArraySize(d) != 2 || !cJSON_IsNumber(d->child) ||
                !cJSON_IsNumber(d->child->next))
                return fail_at(err, s, (const char *const[]){"params", nm, kind}, 3,
                               "params \"%s\": %s expects [low, high]", nm, kind);
            p->lo = d->child->valuedouble;
            p->hi = d->child->next->valuedouble;
            if (!isfinite(p->lo) || !isfinite(p->hi) || !(p->lo < p->hi) ||
                (p->dist == SW_INT && (p->lo != floor(p->lo) || p->hi != floor(p->hi))))
                return fail_at(err, s, (const char *const[]){"params", nm, kind}, 3,
                               "params \"%s\": %s [%g, %g] is an empty range (expected low < high%s)", nm, kind,
                               p->lo, p->hi, p->dist == SW_INT ? ", integers" : "");
            /* a draw is lo + u * (hi - lo), and an int draw takes one of hi - lo + 1 values from a 32-bit draw */
            if (!isfinite(p->hi - p->lo) || (p->dist == SW_INT && p->hi - p->lo >= 4294967295.0))
                return fail_at(err, s, (const char *const[]){"params", nm, kind}, 3,
                               "params \"%s\": %s [%g, %g] is too wide (%s)", nm, kind, p->lo, p->hi,
                               p->dist == SW_INT ? "at most 2^32 - 1 integers" : "hi - lo must be finite");
            if (p->dist == SW_LOG_UNIFORM && p->lo <= 0)
                return fail_at(err, s, (const char *const[]){"params", nm, kind}, 3,
                               "params \"%s\": log_uniform needs a positive low bound, not %g", nm, p->lo);
            return 0;
        }
    }
    if (!cJSON_IsArray(vals))
        return FAIL2("params", nm, "params \"%s\": expected an array of values or a distribution object", nm);
    p->is_list = vals == j;
    int n = cJSON_GetArraySize(vals);
    if (n == 0) return FAIL2("params", nm, "params \"%s\": no values (a grid of 0 values)", nm);
    if (n > SW_MAX_VALUES) return FAIL2("params", nm, "params \"%s\": more than %d values", nm, SW_MAX_VALUES);
    p->n_values = 0;
    for (const cJSON *v = vals->child; v; v = v->next)
        if (parse_value(v, &p->values[p->n_values++]) != 0)
            return FAIL2("params", nm, "params \"%s\": value %d: expected a finite number or a word", nm,
                         p->n_values);
    return 0;
}

static const char *const top_keys[] = {"about", "model", "policy", "params", "strategy", "asha", "budget",
                                       "metric", "split", "seeds", "seed", "rows", "threads", NULL};

static int known(const char *k, const char *const *list) {
    for (; *list; list++)
        if (strcmp(k, *list) == 0) return 1;
    return 0;
}

static int check_keys(sw_sweep *s, const cJSON *obj, const char *parent, const char *const *list, dg_err *err) {
    for (const cJSON *c = obj->child; c; c = c->next) {
        if (known(c->string, list)) continue;
        char valid[256] = "";
        for (const char *const *l = list; *l; l++) {
            strncat(valid, *l, sizeof valid - strlen(valid) - 3);
            if (l[1]) strcat(valid, ", ");
        }
        if (parent) return FAIL2(parent, c->string, "%s: unknown key \"%s\" (expected %s)", parent, c->string, valid);
        return FAIL1(c->string, "unknown key \"%s\" (expected %s)", c->string, valid);
    }
    return 0;
}

/* Replace or append KEY=VALUE in statement `line` of a canonical spec (a malloc'd copy). */
static char *spec_set(const char *text, int layer, const char *key, const char *value) {
    size_t n = strlen(text);
    char *out = malloc(n + strlen(key) + strlen(value) + 4);
    if (!out) return NULL;
    const char *p = text;
    char *o = out;
    int layers = 0;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        int is_meta = (len >= 5 && strncmp(p, "name ", 5) == 0) || (len >= 6 && strncmp(p, "input ", 6) == 0);
        int is_train = len >= 5 && strncmp(p, "train", 5) == 0 && (len == 5 || p[5] == ' ');
        int target = 0;
        if (!is_meta && !is_train && len > 0) target = ++layers == layer;
        if (is_train && layer == 0) target = 1;
        if (!target) {
            memcpy(o, p, len);
            o += len;
        } else {
            /* copy the words, replacing KEY=... */
            size_t kl = strlen(key);
            int done = 0;
            const char *w = p, *end = p + len;
            while (w < end) {
                const char *we = w;
                while (we < end && *we != ' ') we++;
                if (!done && (size_t)(we - w) > kl && strncmp(w, key, kl) == 0 && w[kl] == '=') {
                    o += sprintf(o, "%s=%s", key, value);
                    done = 1;
                } else {
                    memcpy(o, w, (size_t)(we - w));
                    o += we - w;
                }
                if (we < end) *o++ = ' ';
                w = we < end ? we + 1 : we;
            }
            if (!done) o += sprintf(o, " %s=%s", key, value);
        }
        if (eol) *o++ = '\n';
        p = eol ? eol + 1 : p + len;
    }
    *o = '\0';
    return out;
}

/* Replace every ${name} in the policy template by the configuration's values. */
static char *policy_subst(const sw_sweep *s, const sw_value *vals) {
    size_t cap = strlen(s->policy) * 2 + 256, n = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    for (const char *p = s->policy; *p;) {
        int j = -1;
        if (p[0] == '$' && p[1] == '{') {
            for (int k = 0; k < s->n_params; k++) {
                const sw_param *q = &s->params[k];
                size_t l = strlen(q->key);
                if (q->layer == -1 && strncmp(p + 2, q->key, l) == 0 && p[2 + l] == '}') j = k;
            }
        }
        char buf[80];
        const char *src = p;
        size_t len = 1;
        if (j >= 0) {
            sw_value_format(&vals[j], buf, sizeof buf);
            src = buf;
            len = strlen(buf);
            p += strlen(s->params[j].key) + 3;
        } else {
            p++;
        }
        if (n + len + 1 > cap) {
            cap = cap * 2 + len;
            char *t = realloc(out, cap);
            if (!t) {
                free(out);
                return NULL;
            }
            out = t;
        }
        memcpy(out + n, src, len);
        n += len;
    }
    out[n] = '\0';
    return out;
}

int sw_config_epochs(const sw_sweep *s, const sw_value *vals, int rung) {
    int last = s->n_rungs - 1;
    if (s->strategy == SW_ASHA || rung < last) return s->rungs[rung];
    int e = s->rungs[last];
    for (int j = 0; j < s->n_params; j++) {
        const sw_param *p = &s->params[j];
        if (p->layer == -2) {
            for (int k = 0; k < p->n_values; k++)
                if (strcmp(p->values[k].str, vals[j].str) == 0 && s->model_epochs[k] > 0) e = s->model_epochs[k];
        }
    }
    for (int j = 0; j < s->n_params; j++) /* a swept train.epochs overrides the model's */
        if (s->params[j].layer == 0 && strcmp(s->params[j].key, "epochs") == 0 && !vals[j].is_str)
            e = (int)vals[j].num;
    return e;
}

int sw_config_render(const sw_sweep *s, const sw_value *vals, const char *name, const char *policy_path,
                     char **spec_text, char **policy_text, dg_err *err) {
    *spec_text = NULL;
    *policy_text = NULL;
    const char *base = s->base_spec;
    for (int j = 0; j < s->n_params; j++)
        if (s->params[j].layer == -2)
            for (int k = 0; k < s->params[j].n_values; k++)
                if (strcmp(s->params[j].values[k].str, vals[j].str) == 0 && s->model_specs[k]) base = s->model_specs[k];
    char *t = spec_set(base, -3, "", ""); /* a copy */
    char buf[600];
    for (int j = 0; t && j < s->n_params; j++) {
        if (s->params[j].layer < 0) continue; /* policy variables and the model */
        sw_value_format(&vals[j], buf, sizeof buf);
        char *u = spec_set(t, s->params[j].layer, s->params[j].key, buf);
        free(t);
        t = u;
    }
    if (t && s->strategy == SW_ASHA) {
        snprintf(buf, sizeof buf, "%d", s->rungs[s->n_rungs - 1]);
        char *u = spec_set(t, 0, "epochs", buf);
        free(t);
        t = u;
    }
    if (t && s->policy && policy_path) {
        char *u = spec_set(t, 0, "augment", policy_path);
        free(t);
        t = u;
    }
    if (!t) return dg_fail(err, "out of memory");
    /* the name line */
    if (name && strncmp(t, "name ", 5) == 0) {
        char *eol = strchr(t, '\n');
        size_t rest = eol ? strlen(eol) : 0;
        char *u = malloc(strlen(name) + rest + 8);
        if (!u) {
            free(t);
            return dg_fail(err, "out of memory");
        }
        sprintf(u, "name %s%s", name, eol ? eol : "");
        free(t);
        t = u;
    }
    nn_spec spec;
    if (nn_spec_parse(&spec, t, "spec", err) != 0) {
        free(t);
        return -1;
    }
    nn_spec_free(&spec);
    if (s->policy) {
        char *pt = policy_subst(s, vals);
        if (!pt) {
            free(t);
            return dg_fail(err, "out of memory");
        }
        aug_policy *pol;
        if (aug_policy_parse(&pol, pt, "policy", err) != 0) {
            free(t);
            free(pt);
            return -1;
        }
        aug_policy_free(pol);
        *policy_text = pt;
    }
    *spec_text = t;
    return 0;
}

char *sw_config_json(const sw_sweep *s, const sw_value *vals) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    for (int j = 0; j < s->n_params; j++) {
        if (vals[j].is_str)
            cJSON_AddStringToObject(o, s->params[j].name, vals[j].str);
        else
            cJSON_AddNumberToObject(o, s->params[j].name, vals[j].num);
    }
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return t;
}

int sw_reps(const sw_sweep *s) { return s->seeds * (s->folds ? s->folds : 1); }

uint64_t sw_rep_seed(const sw_sweep *s, int rep) {
    int f = s->folds ? s->folds : 1;
    dg_rng r = dg_rng_make(s->seed, SW_RNG_SEEDS, 0, (uint32_t)(rep / f));
    return 1 + dg_rng_u32(&r);
}

int sw_rep_fold(const sw_sweep *s, int rep) { return s->folds ? rep % s->folds + 1 : 0; }

static double u01(dg_rng *r) { return (double)(dg_rng_u64(r) >> 11) * 0x1p-53; }

void sw_config_values(const sw_sweep *s, int i, sw_value *vals) {
    if (s->grid_configs) {
        long rem = i;
        for (int j = s->n_params - 1; j >= 0; j--) {
            const sw_param *p = &s->params[j];
            vals[j] = p->values[rem % p->n_values];
            rem /= p->n_values;
        }
        return;
    }
    for (int j = 0; j < s->n_params; j++) {
        const sw_param *p = &s->params[j];
        dg_rng r = dg_rng_make(s->seed, SW_RNG_PARAMS, (uint32_t)i, (uint32_t)j);
        sw_value *v = &vals[j];
        memset(v, 0, sizeof *v);
        switch (p->dist) {
        case SW_VALUES: *v = p->values[dg_rng_below(&r, (uint32_t)p->n_values)]; break;
        case SW_UNIFORM: v->num = round6(p->lo + u01(&r) * (p->hi - p->lo)); break;
        case SW_LOG_UNIFORM: v->num = round6(exp(log(p->lo) + u01(&r) * (log(p->hi) - log(p->lo)))); break;
        case SW_INT:
            v->is_int = 1;
            v->num = p->lo + (double)dg_rng_below(&r, (uint32_t)(p->hi - p->lo + 1));
            break;
        }
    }
}

/* A few values each parameter can take (the grid values or choices, or the range's ends). */
static int candidates(const sw_param *p, sw_value *out) {
    if (p->dist == SW_VALUES) {
        memcpy(out, p->values, (size_t)p->n_values * sizeof *out);
        return p->n_values;
    }
    memset(out, 0, 2 * sizeof *out);
    out[0].num = p->lo;
    out[1].num = p->hi;
    out[0].is_int = out[1].is_int = p->dist == SW_INT;
    return 2;
}

/* Every parameter's candidates rendered and parsed (the others at their first), errors at the parameter. */
static int check_params(sw_sweep *s, dg_err *err) {
    sw_value base[SW_MAX_PARAMS], cand[SW_MAX_VALUES];
    for (int j = 0; j < s->n_params; j++) {
        candidates(&s->params[j], cand);
        base[j] = cand[0];
        const sw_param *p = &s->params[j];
        if (p->layer == -1) {
            char pat[80];
            snprintf(pat, sizeof pat, "${%s}", p->key);
            if (!s->policy || !strstr(s->policy, pat))
                return dg_fail(err, "%s:%d:%d: params \"%s\": not a spec key (train.KEY or layerN.KEY) and no %s in "
                                    "\"policy\"",
                               s->file, p->line, p->col, p->name, pat);
        }
        if (s->strategy == SW_ASHA && p->layer == 0 && strcmp(p->key, "epochs") == 0)
            return dg_fail(err, "%s:%d:%d: params \"train.epochs\": ASHA's rungs set the epochs (asha.rungs)",
                           s->file, p->line, p->col);
        if (s->strategy == SW_GRID && p->dist != SW_VALUES)
            return dg_fail(err, "%s:%d:%d: params \"%s\": a grid needs a list of values, not a distribution",
                           s->file, p->line, p->col, p->name);
    }
    for (int j = 0; j < s->n_params; j++) {
        int n = candidates(&s->params[j], cand);
        for (int k = 0; k < n; k++) {
            sw_value v[SW_MAX_PARAMS];
            memcpy(v, base, sizeof v);
            v[j] = cand[k];
            char *st, *pt;
            dg_err e = {{0}};
            if (sw_config_render(s, v, NULL, "/dev/null", &st, &pt, &e) != 0) {
                char vb[80];
                sw_value_format(&cand[k], vb, sizeof vb);
                return dg_fail(err, "%s:%d:%d: params \"%s\" = %s: %s", s->file, s->params[j].line,
                               s->params[j].col, s->params[j].name, vb, e.msg);
            }
            free(st);
            free(pt);
        }
    }
    /* the template with no variable at all must parse too (a typo in a fixed line) */
    return 0;
}

/* A spec name or path (relative to dir when it has a '/' or ends in .spec) as canonical text; its epochs. */
static int load_spec(const sw_sweep *s, const char *model, const char *dir, char **text, int *epochs, dg_err *err) {
    (void)s;
    char path[1024];
    if (dir && model[0] != '/' && (strchr(model, '/') || dg_ends_with(model, ".spec")))
        snprintf(path, sizeof path, "%s/%s", dir, model);
    else
        snprintf(path, sizeof path, "%s", model);
    nn_spec spec;
    if (nn_spec_load(&spec, path, err) != 0) return -1;
    *text = nn_spec_format(&spec);
    if (epochs) *epochs = spec.hyper.epochs;
    nn_spec_free(&spec);
    if (!*text) return dg_fail(err, "out of memory");
    return 0;
}

static int parse_until(const char *t, int *min) {
    int h, m;
    char tail;
    if (strlen(t) != 5 || sscanf(t, "%2d:%2d%c", &h, &m, &tail) != 2 || h < 0 || h > 23 || m < 0 || m > 59)
        return -1;
    *min = h * 60 + m;
    return 0;
}

time_t sw_until_deadline(int until_min, time_t now) {
    time_t t = now;
    for (int day = 0; day < 2 && t <= now; day++) { /* today's, else tomorrow's */
        struct tm tm;
        localtime_r(&now, &tm);
        tm.tm_mday += day;
        tm.tm_hour = until_min / 60;
        tm.tm_min = until_min % 60;
        tm.tm_sec = 0;
        tm.tm_isdst = -1;
        t = mktime(&tm);
    }
    return t;
}

int sw_sweep_parse(sw_sweep *s, const char *text, const char *fname, const char *dir, dg_err *err) {
    memset(s, 0, sizeof *s);
    snprintf(s->file, sizeof s->file, "%s", fname);
    s->text = strdup(text);
    if (!s->text) return dg_fail(err, "out of memory");
    s->until_min = -1;
    s->maximize = 1;
    s->val_frac = 0.1;
    s->split_seed = 1;
    s->seeds = 1;
    s->seed = 1;
    s->eta = 3;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= text && at <= text + strlen(text) ? (size_t)(at - text) : 0;
        int line, col;
        sw_text_pos(text, off, &line, &col);
        sw_sweep_free(s);
        return dg_fail(err, "%s:%d:%d: JSON syntax error", fname, line, col);
    }
    int rc = -1;
    long v;
    if (!cJSON_IsObject(root)) {
        dg_fail(err, "%s:1:1: expected a JSON object", fname);
        goto done;
    }
    if (check_keys(s, root, NULL, top_keys, err) != 0) goto done;
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsString(j) || !j->valuestring[0] || strlen(j->valuestring) >= sizeof s->model) {
        if (j) FAIL1("model", "model: expected a spec name or path");
        else dg_fail(err, "%s:1:1: \"model\" (the base spec) is required", fname);
        goto done;
    }
    snprintf(s->model, sizeof s->model, "%s", j->valuestring);
    {
        dg_err e = {{0}};
        if (load_spec(s, s->model, dir, &s->base_spec, &s->rungs[0], &e) != 0) {
            FAIL1("model", "model: %s", e.msg);
            goto done;
        }
        s->n_rungs = 1;
    }
    if ((j = cJSON_GetObjectItemCaseSensitive(root, "policy"))) {
        size_t n = 0;
        if (cJSON_IsString(j)) {
            s->policy = strdup(j->valuestring);
        } else if (cJSON_IsArray(j)) {
            for (const cJSON *l = j->child; l; l = l->next) {
                if (!cJSON_IsString(l)) {
                    FAIL1("policy", "policy: expected lines (strings)");
                    goto done;
                }
                n += strlen(l->valuestring) + 1;
            }
            s->policy = calloc(1, n + 1);
            if (s->policy)
                for (const cJSON *l = j->child; l; l = l->next) strcat(strcat(s->policy, l->valuestring), "\n");
        } else {
            FAIL1("policy", "policy: expected a string or an array of lines");
            goto done;
        }
        if (!s->policy) {
            dg_fail(err, "out of memory");
            goto done;
        }
    }
    if ((j = cJSON_GetObjectItemCaseSensitive(root, "strategy"))) {
        const char *t = cJSON_IsString(j) ? j->valuestring : "";
        if (strcmp(t, "grid") == 0) s->strategy = SW_GRID;
        else if (strcmp(t, "random") == 0) s->strategy = SW_RANDOM;
        else if (strcmp(t, "asha") == 0) s->strategy = SW_ASHA;
        else {
            FAIL1("strategy", "strategy: expected \"grid\", \"random\" or \"asha\"");
            goto done;
        }
    }
    j = cJSON_GetObjectItemCaseSensitive(root, "asha");
    if (j && s->strategy != SW_ASHA) {
        FAIL1("asha", "asha: only with \"strategy\": \"asha\"");
        goto done;
    }
    if (s->strategy == SW_ASHA) {
        if (!cJSON_IsObject(j)) {
            dg_fail(err, "%s:1:1: \"asha\": {\"rungs\": [...], \"eta\": N} is required with strategy asha", fname);
            goto done;
        }
        if (check_keys(s, j, "asha", (const char *const[]){"rungs", "eta", NULL}, err) != 0) goto done;
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "rungs");
        int n = cJSON_IsArray(r) ? cJSON_GetArraySize(r) : 0;
        if (n < 2 || n > SW_MAX_RUNGS) {
            FAIL2("asha", "rungs", "asha.rungs: expected 2..%d increasing epochs", SW_MAX_RUNGS);
            goto done;
        }
        s->n_rungs = 0;
        for (const cJSON *e = r->child; e; e = e->next) {
            if (get_int(e, 1, 100000, &v) != 0 || (s->n_rungs && v <= s->rungs[s->n_rungs - 1])) {
                FAIL2("asha", "rungs", "asha.rungs: expected 2..%d increasing epochs", SW_MAX_RUNGS);
                goto done;
            }
            s->rungs[s->n_rungs++] = (int)v;
        }
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "eta");
        if (e) {
            if (get_int(e, 2, 100, &v) != 0) {
                FAIL2("asha", "eta", "asha.eta: expected an integer in 2..100");
                goto done;
            }
            s->eta = (int)v;
        }
    }
    if ((j = cJSON_GetObjectItemCaseSensitive(root, "metric"))) {
        const char *t = cJSON_IsString(j) ? j->valuestring : "";
        if (strcmp(t, "val_acc") == 0) s->maximize = 1;
        else if (strcmp(t, "val_loss") == 0) s->maximize = 0;
        else {
            FAIL1("metric", "metric: expected \"val_acc\" or \"val_loss\"");
            goto done;
        }
    }
    if ((j = cJSON_GetObjectItemCaseSensitive(root, "split"))) {
        if (!cJSON_IsObject(j) ||
            check_keys(s, j, "split", (const char *const[]){"val_frac", "folds", "split_seed", NULL}, err) != 0) {
            if (!cJSON_IsObject(j)) FAIL1("split", "split: expected an object");
            goto done;
        }
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "val_frac"), *k = cJSON_GetObjectItemCaseSensitive(j, "folds"),
                    *ss = cJSON_GetObjectItemCaseSensitive(j, "split_seed");
        if (f && k) {
            FAIL2("split", "folds", "split: val_frac and folds exclude each other");
            goto done;
        }
        if (f) {
            if (!cJSON_IsNumber(f) || !(f->valuedouble > 0 && f->valuedouble < 1)) {
                FAIL2("split", "val_frac", "split.val_frac: expected a number in (0, 1)");
                goto done;
            }
            s->val_frac = f->valuedouble;
        }
        if (k) {
            if (get_int(k, 2, 1000, &v) != 0) {
                FAIL2("split", "folds", "split.folds: expected an integer in 2..1000");
                goto done;
            }
            s->folds = (int)v;
        }
        if (ss) {
            if (get_int(ss, 0, 1L << 52, &v) != 0) {
                FAIL2("split", "split_seed", "split.split_seed: expected a non-negative integer");
                goto done;
            }
            s->split_seed = (uint64_t)v;
        }
    }
    struct { const char *k; long lo, hi; } ints[] = {
        {"seeds", 1, 100}, {"seed", 0, 1L << 52}, {"rows", 0, 100000000}, {"threads", 1, 1024}};
    long iv[4] = {s->seeds, (long)s->seed, 0, 0};
    for (int q = 0; q < 4; q++) {
        if (!(j = cJSON_GetObjectItemCaseSensitive(root, ints[q].k))) continue;
        if (get_int(j, ints[q].lo, ints[q].hi, &iv[q]) != 0) {
            FAIL1(ints[q].k, "%s: expected an integer in %ld..%ld", ints[q].k, ints[q].lo, ints[q].hi);
            goto done;
        }
    }
    s->seeds = (int)iv[0];
    s->seed = (uint64_t)iv[1];
    s->rows = iv[2];
    s->threads = (int)iv[3];
    /* params */
    j = cJSON_GetObjectItemCaseSensitive(root, "params");
    if (j && !cJSON_IsObject(j)) {
        FAIL1("params", "params: expected an object");
        goto done;
    }
    if (j) {
        for (const cJSON *p = j->child; p; p = p->next) {
            if (s->n_params == SW_MAX_PARAMS) {
                FAIL2("params", p->string, "params: more than %d parameters", SW_MAX_PARAMS);
                goto done;
            }
            if (parse_param(s, p, &s->params[s->n_params], err) != 0) goto done;
            for (int q = 0; q < s->n_params; q++)
                if (strcmp(s->params[q].name, p->string) == 0) {
                    FAIL2("params", p->string, "params \"%s\": given twice", p->string);
                    goto done;
                }
            s->n_params++;
        }
    }
    for (int q = 0; q < s->n_params; q++) {
        sw_param *mp = &s->params[q];
        if (mp->layer != -2) continue;
        if (mp->dist != SW_VALUES) {
            dg_fail(err, "%s:%d:%d: params \"model\": expected a list of spec names or paths", fname, mp->line, mp->col);
            goto done;
        }
        for (int k = 0; k < mp->n_values; k++) {
            if (!mp->values[k].is_str) {
                dg_fail(err, "%s:%d:%d: params \"model\": value %d: expected a spec name or path", fname, mp->line,
                        mp->col, k + 1);
                goto done;
            }
            if (load_spec(s, mp->values[k].str, dir, &s->model_specs[k], &s->model_epochs[k], err) != 0) {
                dg_err_prefix(err, "%s:%d:%d: params \"model\"", fname, mp->line, mp->col);
                goto done;
            }
        }
    }
    if (check_params(s, err) != 0) goto done;
    /* budget */
    long trials = 0;
    if ((j = cJSON_GetObjectItemCaseSensitive(root, "budget"))) {
        if (!cJSON_IsObject(j)) {
            FAIL1("budget", "budget: expected an object");
            goto done;
        }
        if (check_keys(s, j, "budget", (const char *const[]){"trials", "epochs", "until", NULL}, err) != 0) goto done;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "trials"), *e = cJSON_GetObjectItemCaseSensitive(j, "epochs"),
                    *u = cJSON_GetObjectItemCaseSensitive(j, "until");
        if (t && get_int(t, 1, 1000000, &trials) != 0) {
            FAIL2("budget", "trials", "budget.trials: expected an integer in 1..1000000");
            goto done;
        }
        if (e && get_int(e, 1, 1000000000, &s->budget_epochs) != 0) {
            FAIL2("budget", "epochs", "budget.epochs: expected an integer in 1..1000000000");
            goto done;
        }
        if (u && (!cJSON_IsString(u) || parse_until(u->valuestring, &s->until_min) != 0)) {
            FAIL2("budget", "until", "budget.until: expected a time HH:MM");
            goto done;
        }
    }
    /* configurations */
    int reps = sw_reps(s);
    s->grid_configs = s->strategy == SW_GRID;
    if (s->strategy == SW_ASHA) {
        s->grid_configs = 1;
        for (int q = 0; q < s->n_params; q++) s->grid_configs &= s->params[q].is_list;
    }
    if (s->grid_configs) {
        double n = 1;
        for (int q = 0; q < s->n_params; q++) n *= s->params[q].n_values;
        if (n > 1000000) {
            FAIL1("params", "params: a grid of %.0f configurations (at most 1000000)", n);
            goto done;
        }
        s->n_configs = (int)n;
        if (trials && trials < s->n_configs) s->n_configs = (int)trials;
    } else {
        s->n_configs = (int)trials;
    }
    if (s->budget_epochs) {
        /* epochs per configuration: its spec's (the largest a swept epochs can take), or ASHA's expected cost */
        double per = s->rungs[s->n_rungs - 1];
        if (s->strategy == SW_ASHA) {
            per = 0;
            for (int k = 0; k < s->n_rungs; k++)
                per += (s->rungs[k] - (k ? s->rungs[k - 1] : 0)) / pow(s->eta, k);
        } else {
            for (int q = 0; q < s->n_params; q++)
                if (s->params[q].layer == -2) /* each model's own schedule */
                    for (int k = 0; k < s->params[q].n_values; k++)
                        if (s->model_epochs[k] > per) per = s->model_epochs[k];
            for (int q = 0; q < s->n_params; q++)
                if (s->params[q].layer == 0 && strcmp(s->params[q].key, "epochs") == 0) {
                    sw_value c[SW_MAX_VALUES];
                    int n = candidates(&s->params[q], c);
                    for (int k = 0; k < n; k++)
                        if (!c[k].is_str && c[k].num > per) per = c[k].num;
                }
        }
        long n = (long)floor((double)s->budget_epochs / (per * reps));
        if (n < 1) {
            FAIL2("budget", "epochs", "budget.epochs: %ld epochs do not pay for one configuration (%.1f epochs)",
                  s->budget_epochs, per * reps);
            goto done;
        }
        if (s->n_configs == 0 || n < s->n_configs) s->n_configs = (int)n;
    }
    if (s->n_configs == 0) {
        if (cJSON_GetObjectItemCaseSensitive(root, "budget"))
            FAIL1("budget", "budget: random and asha need \"trials\" or \"epochs\"");
        else
            dg_fail(err, "%s:1:1: \"budget\": random and asha need \"trials\" or \"epochs\"", fname);
        goto done;
    }
    s->hash = fnv1a(fnv1a(1469598103934665603ULL, text), s->base_spec);
    for (int k = 0; k < SW_MAX_VALUES; k++)
        if (s->model_specs[k]) s->hash = fnv1a(s->hash, s->model_specs[k]);
    rc = 0;
done:
    cJSON_Delete(root);
    if (rc != 0) sw_sweep_free(s);
    return rc;
}

int sw_sweep_load(sw_sweep *s, const char *path, dg_err *err) {
    char *text;
    memset(s, 0, sizeof *s);
    if (dg_read_text(path, "sweep file", &text, err) != 0) return -1;
    char dir[512];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else strcpy(dir, ".");
    int rc = sw_sweep_parse(s, text, path, dir, err);
    free(text);
    return rc;
}

void sw_sweep_free(sw_sweep *s) {
    free(s->text);
    free(s->base_spec);
    free(s->policy);
    s->text = s->base_spec = s->policy = NULL;
    for (int k = 0; k < SW_MAX_VALUES; k++) {
        free(s->model_specs[k]);
        s->model_specs[k] = NULL;
    }
}
