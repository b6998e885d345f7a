/* nn/spec: strict parser and canonical writer of model spec files (see nn/spec.h, docs/spec-format.md).
 *
 * Not here: shape checking (nn_net_create does it, naming layer.line) and training itself.
 */
#include "nn/spec.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dg_cli.h"
#include "core/dg_file.h"

/* ---- names ---- */

static const char *const opt_names[] = {"sgd", "momentum", "nesterov", "adam", "adamw"};
static const char *const sched_names[] = {"constant", "step", "exp", "cosine", "onecycle", "plateau"};

const char *nn_optimizer_name(nn_optimizer o) {
    return (unsigned)o < sizeof opt_names / sizeof opt_names[0] ? opt_names[o] : "?";
}
const char *nn_schedule_name(nn_schedule s) {
    return (unsigned)s < sizeof sched_names / sizeof sched_names[0] ? sched_names[s] : "?";
}

void nn_hyper_defaults(nn_hyper *h) {
    memset(h, 0, sizeof *h);
    h->optimizer = NN_ADAM;
    h->lr = 1e-3f;
    h->momentum = 0.9f;
    h->beta1 = 0.9f;
    h->beta2 = 0.999f;
    h->adam_eps = 1e-8f;
    h->weight_decay = 0.0f;
    h->schedule = NN_SCHED_CONSTANT;
    h->gamma = 0.1f;
    h->step_epochs = 10;
    h->min_lr = 0.0f;
    h->max_lr = 0.0f;
    h->plateau_patience = 3;
    h->batch = 64;
    h->epochs = 10;
    h->label_smoothing = 0.0f;
    h->early_stop = 0;
    h->ema = 0.0f;
    h->augment[0] = '\0';
}

/* ---- key tables: each statement's keys, their types, ranges and where they go ---- */

typedef enum key_type { T_INT, T_FLOAT, T_PAD, T_OPT, T_SCHED, T_STR } key_type;

typedef struct key_def {
    const char *key;
    key_type type;
    double lo, hi; /* allowed range, inclusive unless lo_open / hi_open */
    int lo_open, hi_open;
    int required;
    size_t off; /* offsetof into nn_layer_spec (layers) or nn_hyper (train) */
} key_def;

#define L(field) offsetof(nn_layer_spec, field)
#define H(field) offsetof(nn_hyper, field)

static const key_def conv_keys[] = {
    {"filters", T_INT, 1, 65536, 0, 0, 1, L(filters)},
    {"size", T_INT, 1, 64, 0, 0, 1, L(size)},
    {"stride", T_INT, 1, 64, 0, 0, 0, L(stride)},
    {"pad", T_PAD, 0, 64, 0, 0, 0, L(pad)},
    {"l2", T_FLOAT, 0, 1, 0, 0, 0, L(l2)},
    {NULL, 0, 0, 0, 0, 0, 0, 0},
};
static const key_def dense_keys[] = {
    {"units", T_INT, 1, 1 << 20, 0, 0, 1, L(units)},
    {"l2", T_FLOAT, 0, 1, 0, 0, 0, L(l2)},
    {NULL, 0, 0, 0, 0, 0, 0, 0},
};
static const key_def pool_keys[] = {
    {"size", T_INT, 1, 64, 0, 0, 0, L(size)},
    {"stride", T_INT, 1, 64, 0, 0, 0, L(stride)},
    {NULL, 0, 0, 0, 0, 0, 0, 0},
};
static const key_def bn_keys[] = {
    {"momentum", T_FLOAT, 0, 1, 0, 0, 0, L(momentum)},
    {"eps", T_FLOAT, 0, 1, 1, 0, 0, L(eps)},
    {NULL, 0, 0, 0, 0, 0, 0, 0},
};
static const key_def dropout_keys[] = {
    {"rate", T_FLOAT, 0, 1, 0, 1, 1, L(rate)},
    {NULL, 0, 0, 0, 0, 0, 0, 0},
};
static const key_def leaky_keys[] = {
    {"slope", T_FLOAT, 0, 1, 0, 0, 0, L(slope)},
    {NULL, 0, 0, 0, 0, 0, 0, 0},
};
static const key_def deconv_keys[] = {
    {"filters", T_INT, 1, 65536, 0, 0, 1, L(filters)},
    {"size", T_INT, 1, 64, 0, 0, 1, L(size)},
    {"stride", T_INT, 1, 64, 0, 0, 0, L(stride)},
    {"pad", T_INT, 0, 64, 0, 0, 0, L(pad)},
    {"opad", T_INT, 0, 63, 0, 0, 0, L(opad)},
    {"l2", T_FLOAT, 0, 1, 0, 0, 0, L(l2)},
    {NULL, 0, 0, 0, 0, 0, 0, 0},
};
static const key_def embed_keys[] = {
    {"classes", T_INT, 1, 256, 0, 0, 1, L(classes)},
    {"dim", T_INT, 1, 65536, 0, 0, 1, L(dim)},
    {NULL, 0, 0, 0, 0, 0, 0, 0},
};
static const key_def reshape_keys[] = {
    {"c", T_INT, 1, 1 << 20, 0, 0, 1, L(c)},
    {"h", T_INT, 1, 65536, 0, 0, 1, L(h)},
    {"w", T_INT, 1, 65536, 0, 0, 1, L(w)},
    {NULL, 0, 0, 0, 0, 0, 0, 0},
};
static const key_def no_keys[] = {
    {NULL, 0, 0, 0, 0, 0, 0, 0},
};
static const key_def train_keys[] = {
    {"optimizer", T_OPT, 0, 0, 0, 0, 0, H(optimizer)},
    {"lr", T_FLOAT, 0, 10, 1, 0, 0, H(lr)},
    {"momentum", T_FLOAT, 0, 1, 0, 1, 0, H(momentum)},
    {"beta1", T_FLOAT, 0, 1, 0, 1, 0, H(beta1)},
    {"beta2", T_FLOAT, 0, 1, 0, 1, 0, H(beta2)},
    {"eps", T_FLOAT, 0, 1, 1, 0, 0, H(adam_eps)},
    {"weight_decay", T_FLOAT, 0, 1, 0, 0, 0, H(weight_decay)},
    {"schedule", T_SCHED, 0, 0, 0, 0, 0, H(schedule)},
    {"gamma", T_FLOAT, 0, 10, 1, 0, 0, H(gamma)},
    {"step_epochs", T_INT, 1, 100000, 0, 0, 0, H(step_epochs)},
    {"min_lr", T_FLOAT, 0, 10, 0, 0, 0, H(min_lr)},
    {"max_lr", T_FLOAT, 0, 10, 0, 0, 0, H(max_lr)},
    {"patience", T_INT, 0, 100000, 0, 0, 0, H(plateau_patience)},
    {"batch", T_INT, 1, 65536, 0, 0, 0, H(batch)},
    {"epochs", T_INT, 1, 100000, 0, 0, 0, H(epochs)},
    {"label_smoothing", T_FLOAT, 0, 1, 0, 1, 0, H(label_smoothing)},
    {"early_stop", T_INT, 0, 100000, 0, 0, 0, H(early_stop)},
    {"augment", T_STR, 0, 0, 0, 0, 0, H(augment)},
    {"ema", T_FLOAT, 0, 1, 0, 1, 0, H(ema)},
    {NULL, 0, 0, 0, 0, 0, 0, 0},
};

typedef struct layer_word {
    const char *word;
    nn_kind kind;
    const key_def *keys;
} layer_word;

static const layer_word layer_words[] = {
    {"dense", NN_DENSE, dense_keys},        {"conv", NN_CONV, conv_keys},
    {"maxpool", NN_MAXPOOL, pool_keys},     {"avgpool", NN_AVGPOOL, pool_keys},
    {"batchnorm", NN_BATCHNORM, bn_keys},   {"dropout", NN_DROPOUT, dropout_keys},
    {"relu", NN_RELU, no_keys},             {"leakyrelu", NN_LEAKYRELU, leaky_keys},
    {"tanh", NN_TANH, no_keys},             {"sigmoid", NN_SIGMOID, no_keys},
    {"flatten", NN_FLATTEN, no_keys},       {"deconv", NN_DECONV, deconv_keys},
    {"embed", NN_EMBED, embed_keys},        {"reshape", NN_RESHAPE, reshape_keys},
};
#define N_LAYER_WORDS (sizeof layer_words / sizeof layer_words[0])

const char *nn_kind_name(nn_kind k) {
    for (size_t i = 0; i < N_LAYER_WORDS; i++)
        if (layer_words[i].kind == k) return layer_words[i].word;
    return "?";
}

/* ---- parser ---- */

typedef struct parser {
    const char *fname;
    int line;
    const char *line_start; /* in the mutable copy, for columns */
    dg_err *err;
} parser;

static int perr(const parser *p, const char *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(const parser *p, const char *at, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int col = at ? (int)(at - p->line_start) + 1 : 1;
    return dg_fail(p->err, "%s:%d:%d: %s", p->fname, p->line, col, msg);
}

static void list_keys(const key_def *keys, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = '\0';
    for (const key_def *k = keys; k->key && len < n; k++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? ", " : "", k->key);
    if (!keys[0].key) snprintf(buf, n, "none");
}

static int parse_value(const parser *p, const key_def *k, const char *val, void *base) {
    char *dst = (char *)base + k->off;
    switch (k->type) {
    case T_INT: {
        long v;
        if (dg_parse_long(val, (long)k->lo, (long)k->hi, &v) != 0)
            return perr(p, val, "%s=%s: expected an integer in %ld..%ld", k->key, val, (long)k->lo, (long)k->hi);
        *(int *)dst = (int)v;
        return 0;
    }
    case T_PAD: {
        long v;
        if (strcmp(val, "same") == 0) {
            *(int *)dst = -1;
            return 0;
        }
        if (dg_parse_long(val, (long)k->lo, (long)k->hi, &v) != 0)
            return perr(p, val, "%s=%s: expected 'same' or an integer in %ld..%ld", k->key, val, (long)k->lo,
                        (long)k->hi);
        *(int *)dst = (int)v;
        return 0;
    }
    case T_FLOAT: {
        /* the range is checked on the float that is stored, so that "momentum=0.99999999" (1.0f) cannot slip
         * into [0, 1) and a spec's canonical text always parses again */
        double v;
        float f = 0, lo = (float)k->lo, hi = (float)k->hi;
        if (dg_parse_double(val, k->lo, k->hi, &v) != 0 || ((f = (float)v), f < lo || f > hi) ||
            (k->lo_open && f <= lo) || (k->hi_open && f >= hi) || (v != 0 && f == 0.0f))
            return perr(p, val, "%s=%s: expected a number in %c%g, %g%c", k->key, val, k->lo_open ? '(' : '[', k->lo,
                        k->hi, k->hi_open ? ')' : ']');
        *(float *)dst = f;
        return 0;
    }
    case T_OPT:
        for (size_t i = 0; i < sizeof opt_names / sizeof opt_names[0]; i++)
            if (strcmp(val, opt_names[i]) == 0) {
                *(nn_optimizer *)dst = (nn_optimizer)i;
                return 0;
            }
        return perr(p, val, "optimizer=%s: expected sgd, momentum, nesterov, adam or adamw", val);
    case T_SCHED:
        for (size_t i = 0; i < sizeof sched_names / sizeof sched_names[0]; i++)
            if (strcmp(val, sched_names[i]) == 0) {
                *(nn_schedule *)dst = (nn_schedule)i;
                return 0;
            }
        return perr(p, val, "schedule=%s: expected constant, step, exp, cosine, onecycle or plateau", val);
    case T_STR: {
        size_t n = strlen(val);
        if (n >= sizeof((nn_hyper *)0)->augment)
            return perr(p, val, "%s: value longer than %zu characters", k->key,
                        sizeof((nn_hyper *)0)->augment - 1);
        for (size_t i = 0; i < n; i++)
            if (!isgraph((unsigned char)val[i]) || val[i] == '"' || val[i] == '\\')
                return perr(p, val + i, "%s=%s: unexpected character", k->key, val);
        /* "none" is stored as "" (no augmentation). */
        strcpy(dst, strcmp(val, "none") == 0 ? "" : val);
        return 0;
    }
    }
    return perr(p, val, "internal: bad key type");
}

/* Parse the key=value tokens tok[0..n) of statement `word` into base using keys. */
static int parse_keys(const parser *p, const char *word, const key_def *keys, char **tok, int n, void *base) {
    unsigned seen = 0;
    for (int i = 0; i < n; i++) {
        char *eq = strchr(tok[i], '=');
        if (!eq) {
            char names[256];
            list_keys(keys, names, sizeof names);
            return perr(p, tok[i], "%s: expected key=value, got '%s' (keys: %s)", word, tok[i], names);
        }
        if (eq == tok[i]) return perr(p, tok[i], "%s: missing key before '='", word);
        *eq = '\0';
        const char *val = eq + 1;
        int ki = -1;
        for (int j = 0; keys[j].key; j++)
            if (strcmp(keys[j].key, tok[i]) == 0) ki = j;
        if (ki < 0) {
            char names[256];
            list_keys(keys, names, sizeof names);
            return perr(p, tok[i], "%s: unknown key '%s' (keys: %s)", word, tok[i], names);
        }
        if (seen & (1u << ki)) return perr(p, tok[i], "%s: duplicate key '%s'", word, tok[i]);
        seen |= 1u << ki;
        if (!*val) return perr(p, val, "%s: missing value for '%s'", word, tok[i]);
        if (parse_value(p, &keys[ki], val, base) != 0) return -1;
    }
    for (int j = 0; keys[j].key; j++)
        if (keys[j].required && !(seen & (1u << j)))
            return perr(p, NULL, "%s: missing required key '%s='", word, keys[j].key);
    return 0;
}

static void layer_defaults(nn_layer_spec *l, nn_kind kind, int line) {
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->line = line;
    l->stride = kind == NN_CONV || kind == NN_DECONV ? 1 : 0; /* pools: 0 = same as size, fixed after parsing */
    l->size = (kind == NN_MAXPOOL || kind == NN_AVGPOOL) ? 2 : 0;
    l->momentum = 0.1f;
    l->eps = 1e-5f;
    l->slope = 0.01f;
}

static int valid_name(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.') return 0;
    return 1;
}

static void default_name(char *name, size_t n, const char *fname) {
    const char *base = strrchr(fname, '/');
    base = base ? base + 1 : fname;
    size_t len = strcspn(base, ".");
    if (len == 0 || base[0] == '<') {
        snprintf(name, n, "model");
        return;
    }
    if (len >= n) len = n - 1;
    memcpy(name, base, len);
    name[len] = '\0';
    if (!valid_name(name)) snprintf(name, n, "model");
}

#define MAX_TOKENS 64

static const char *const output_names[] = {"classes", "logit", "image"};

static int parse_line(parser *p, nn_spec *spec, char *s, int *seen_name, int *seen_input, int *seen_train,
                      int *seen_output) {
    char *tok[MAX_TOKENS];
    int n = 0;
    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == '\r') s++;
        if (!*s) break;
        if (n == MAX_TOKENS) return perr(p, s, "too many words on one line (at most %d)", MAX_TOKENS);
        tok[n++] = s;
        while (*s && *s != ' ' && *s != '\t' && *s != '\r') s++;
        if (*s) *s++ = '\0';
    }
    if (n == 0) return 0;
    const char *word = tok[0];
    if (strcmp(word, "name") == 0) {
        if (*seen_name) return perr(p, tok[0], "duplicate 'name' statement (first on line %d)", *seen_name);
        if (n != 2) return perr(p, n > 2 ? tok[2] : NULL, "name: expected exactly one value, e.g. 'name lenet5'");
        if (!valid_name(tok[1]) || strlen(tok[1]) >= sizeof spec->name)
            return perr(p, tok[1], "name: '%s' must be 1..%zu letters, digits, '_', '-' or '.'", tok[1],
                        sizeof spec->name - 1);
        strcpy(spec->name, tok[1]);
        *seen_name = p->line;
        return 0;
    }
    if (strcmp(word, "input") == 0) {
        if (*seen_input) return perr(p, tok[0], "duplicate 'input' statement (first on line %d)", *seen_input);
        if (spec->n_layers > 0) return perr(p, tok[0], "input: must come before the first layer");
        if (n != 2) return perr(p, n > 2 ? tok[2] : NULL, "input: expected CxHxW, e.g. 'input 1x28x28'");
        long v[3];
        char *part = tok[1];
        for (int i = 0; i < 3; i++) {
            char *x = i < 2 ? strchr(part, 'x') : NULL;
            if (i < 2 && !x) return perr(p, tok[1], "input: expected CxHxW, e.g. 'input 1x28x28', got '%s'", tok[1]);
            if (x) *x = '\0';
            if (dg_parse_long(part, 1, i == 0 ? 4096 : 65536, &v[i]) != 0)
                return perr(p, part, "input: '%s' is not a positive size", part);
            part = x ? x + 1 : part;
        }
        spec->in_c = (int)v[0];
        spec->in_h = (int)v[1];
        spec->in_w = (int)v[2];
        *seen_input = p->line;
        return 0;
    }
    if (strcmp(word, "output") == 0) {
        if (*seen_output) return perr(p, tok[0], "duplicate 'output' statement (first on line %d)", *seen_output);
        if (n != 2) return perr(p, n > 2 ? tok[2] : NULL, "output: expected classes, logit or image");
        int k = -1;
        for (int i = 0; i < 3; i++)
            if (strcmp(tok[1], output_names[i]) == 0) k = i;
        if (k < 0) return perr(p, tok[1], "output: '%s' is not classes, logit or image", tok[1]);
        spec->output = (nn_output)k;
        *seen_output = p->line;
        return 0;
    }
    if (strcmp(word, "train") == 0) {
        if (*seen_train) return perr(p, tok[0], "duplicate 'train' statement (first on line %d)", *seen_train);
        *seen_train = p->line;
        return parse_keys(p, word, train_keys, tok + 1, n - 1, &spec->hyper);
    }
    for (size_t i = 0; i < N_LAYER_WORDS; i++) {
        if (strcmp(word, layer_words[i].word) != 0) continue;
        if (spec->n_layers == NN_MAX_LAYERS) return perr(p, tok[0], "too many layers (at most %d)", NN_MAX_LAYERS);
        nn_layer_spec *l = &spec->layers[spec->n_layers];
        layer_defaults(l, layer_words[i].kind, p->line);
        if (parse_keys(p, word, layer_words[i].keys, tok + 1, n - 1, l) != 0) return -1;
        if ((l->kind == NN_MAXPOOL || l->kind == NN_AVGPOOL) && l->stride == 0) l->stride = l->size;
        spec->n_layers++;
        return 0;
    }
    return perr(p, tok[0],
                "unknown statement '%s' (expected name, input, output, train, conv, deconv, dense, embed, maxpool, "
                "avgpool, batchnorm, dropout, relu, leakyrelu, tanh, sigmoid, flatten or reshape)",
                word);
}

int nn_spec_parse(nn_spec *spec, const char *text, const char *fname, dg_err *err) {
    memset(spec, 0, sizeof *spec);
    if (!fname) fname = "<string>";
    snprintf(spec->file, sizeof spec->file, "%s", fname);
    spec->in_c = 1;
    spec->in_h = spec->in_w = 28;
    nn_hyper_defaults(&spec->hyper);
    size_t len = strlen(text);
    char *copy = malloc(len + 1);
    spec->text = malloc(len + 1);
    if (!copy || !spec->text) {
        free(copy);
        nn_spec_free(spec);
        return dg_fail(err, "%s: out of memory", fname);
    }
    memcpy(copy, text, len + 1);
    memcpy(spec->text, text, len + 1);
    parser p = {fname, 0, copy, err};
    int seen_name = 0, seen_input = 0, seen_train = 0, seen_output = 0, rc = 0;
    char *s = copy;
    while (rc == 0 && *s) {
        char *nl = strchr(s, '\n');
        if (nl) *nl = '\0';
        p.line++;
        p.line_start = s;
        char *hash = strchr(s, '#');
        if (hash) *hash = '\0';
        rc = parse_line(&p, spec, s, &seen_name, &seen_input, &seen_train, &seen_output);
        if (!nl) break;
        s = nl + 1;
    }
    if (rc == 0 && spec->n_layers == 0) {
        p.line = p.line ? p.line : 1;
        p.line_start = NULL;
        rc = dg_fail(err, "%s: no layers (expected lines like 'dense units=10')", fname);
    }
    if (rc == 0 && !seen_name) default_name(spec->name, sizeof spec->name, fname);
    free(copy);
    if (rc != 0) nn_spec_free(spec);
    return rc;
}

void nn_spec_free(nn_spec *spec) {
    free(spec->text);
    spec->text = NULL;
}

/* ---- finding a model by name ---- */

static int try_path(char *path, size_t n, const char *dir, const char *name, char *looked, size_t looked_n) {
    if (!dir || !*dir) return 0;
    int w = snprintf(path, n, "%s/%s.spec", dir, name);
    if (w < 0 || (size_t)w >= n) return 0;
    size_t l = strlen(looked);
    snprintf(looked + l, looked_n - l, "%s%s", l ? ", " : "", dir);
    return access(path, R_OK) == 0;
}

static void parent_dir(char *s, int levels) {
    for (int i = 0; i < levels; i++) {
        char *slash = strrchr(s, '/');
        if (!slash) {
            s[0] = '\0';
            return;
        }
        *slash = '\0';
    }
}

int nn_spec_find(const char *name, char *path, size_t n, dg_err *err) {
    if (!valid_name(name)) return dg_fail(err, "model name '%s': expected letters, digits, '_', '-' or '.'", name);
    char looked[2048] = "";
    char dir[1024];
    if (try_path(path, n, getenv("DIGITS_MODELS"), name, looked, sizeof looked)) return 0;
    if (try_path(path, n, "experiments/models", name, looked, sizeof looked)) return 0;
    ssize_t k = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (k > 0) {
        dir[k] = '\0';
        parent_dir(dir, 1);
        size_t l = strlen(dir);
        snprintf(dir + l, sizeof dir - l, "/../../experiments/models");
        if (try_path(path, n, dir, name, looked, sizeof looked)) return 0;
    }
    /* The source tree this library was built from (this file is <src>/nn/spec.c). */
    snprintf(dir, sizeof dir, "%s", __FILE__);
    if (dir[0] == '/') {
        parent_dir(dir, 2);
        size_t l = strlen(dir);
        snprintf(dir + l, sizeof dir - l, "/experiments/models");
        if (try_path(path, n, dir, name, looked, sizeof looked)) return 0;
    }
    return dg_fail(err, "model '%s' not found: no %s.spec in %s (set DIGITS_MODELS or pass a path)", name, name,
                   looked);
}

int nn_spec_load(nn_spec *spec, const char *path_or_name, dg_err *err) {
    memset(spec, 0, sizeof *spec);
    char path[1024];
    size_t len = strlen(path_or_name);
    int is_name = !strchr(path_or_name, '/') && !(len >= 5 && strcmp(path_or_name + len - 5, ".spec") == 0);
    if (is_name) {
        if (nn_spec_find(path_or_name, path, sizeof path, err) != 0) return -1;
    } else {
        snprintf(path, sizeof path, "%s", path_or_name);
    }
    char *text;
    if (dg_read_text(path, "spec file", &text, err) != 0) return -1;
    int rc = nn_spec_parse(spec, text, path, err);
    free(text);
    return rc;
}

/* ---- canonical text ---- */

/* The shortest decimal that reads back as the same float. */
static void fmt_float(char *buf, size_t n, float f) {
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, n, "%.*g", prec, (double)f);
        if ((float)strtod(buf, NULL) == f) return;
    }
}

typedef struct strbuf {
    char *s;
    size_t len, cap;
    int oom;
} strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->oom = 1;
            return;
        }
        if (b->s && b->len + (size_t)w < b->cap) {
            b->len += (size_t)w;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap <= b->len + (size_t)w) cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
}

static void sb_key_float(strbuf *b, const char *key, float v) {
    char f[32];
    fmt_float(f, sizeof f, v);
    sb_printf(b, " %s=%s", key, f);
}

char *nn_spec_format(const nn_spec *spec) {
    strbuf b = {0};
    sb_printf(&b, "name %s\ninput %dx%dx%d\n", spec->name, spec->in_c, spec->in_h, spec->in_w);
    /* written only when not the default, so that classifiers' canonical text (in checkpoints) is unchanged */
    if (spec->output != NN_OUT_CLASSES && (unsigned)spec->output < 3)
        sb_printf(&b, "output %s\n", output_names[spec->output]);
    for (int i = 0; i < spec->n_layers; i++) {
        const nn_layer_spec *l = &spec->layers[i];
        sb_printf(&b, "%s", nn_kind_name(l->kind));
        switch (l->kind) {
        case NN_DENSE:
            sb_printf(&b, " units=%d", l->units);
            if (l->l2 != 0) sb_key_float(&b, "l2", l->l2);
            break;
        case NN_CONV:
            sb_printf(&b, " filters=%d size=%d stride=%d", l->filters, l->size, l->stride);
            if (l->pad < 0)
                sb_printf(&b, " pad=same");
            else
                sb_printf(&b, " pad=%d", l->pad);
            if (l->l2 != 0) sb_key_float(&b, "l2", l->l2);
            break;
        case NN_DECONV:
            sb_printf(&b, " filters=%d size=%d stride=%d pad=%d opad=%d", l->filters, l->size, l->stride, l->pad,
                      l->opad);
            if (l->l2 != 0) sb_key_float(&b, "l2", l->l2);
            break;
        case NN_EMBED: sb_printf(&b, " classes=%d dim=%d", l->classes, l->dim); break;
        case NN_RESHAPE: sb_printf(&b, " c=%d h=%d w=%d", l->c, l->h, l->w); break;
        case NN_MAXPOOL:
        case NN_AVGPOOL: sb_printf(&b, " size=%d stride=%d", l->size, l->stride); break;
        case NN_BATCHNORM:
            sb_key_float(&b, "momentum", l->momentum);
            sb_key_float(&b, "eps", l->eps);
            break;
        case NN_DROPOUT: sb_key_float(&b, "rate", l->rate); break;
        case NN_LEAKYRELU: sb_key_float(&b, "slope", l->slope); break;
        case NN_RELU:
        case NN_TANH:
        case NN_SIGMOID:
        case NN_FLATTEN: break;
        }
        sb_printf(&b, "\n");
    }
    const nn_hyper *h = &spec->hyper;
    sb_printf(&b, "train optimizer=%s", nn_optimizer_name(h->optimizer));
    sb_key_float(&b, "lr", h->lr);
    sb_key_float(&b, "momentum", h->momentum);
    sb_key_float(&b, "beta1", h->beta1);
    sb_key_float(&b, "beta2", h->beta2);
    sb_key_float(&b, "eps", h->adam_eps);
    sb_key_float(&b, "weight_decay", h->weight_decay);
    sb_printf(&b, " schedule=%s", nn_schedule_name(h->schedule));
    sb_key_float(&b, "gamma", h->gamma);
    sb_printf(&b, " step_epochs=%d", h->step_epochs);
    sb_key_float(&b, "min_lr", h->min_lr);
    sb_key_float(&b, "max_lr", h->max_lr);
    sb_printf(&b, " patience=%d batch=%d epochs=%d", h->plateau_patience, h->batch, h->epochs);
    sb_key_float(&b, "label_smoothing", h->label_smoothing);
    sb_printf(&b, " early_stop=%d augment=%s", h->early_stop, h->augment[0] ? h->augment : "none");
    /* written only when on, so that the canonical text of a spec without EMA (kept in checkpoints, model files and
     * pipeline stamps) is the same as before the key existed */
    if (h->ema != 0) sb_key_float(&b, "ema", h->ema);
    sb_printf(&b, "\n");
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

static void json_float(cJSON *o, const char *key, float v) {
    char f[32];
    fmt_float(f, sizeof f, v);
    cJSON_AddNumberToObject(o, key, strtod(f, NULL));
}

char *nn_hyper_json(const nn_hyper *h) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "optimizer", nn_optimizer_name(h->optimizer));
    json_float(o, "lr", h->lr);
    json_float(o, "momentum", h->momentum);
    json_float(o, "beta1", h->beta1);
    json_float(o, "beta2", h->beta2);
    json_float(o, "eps", h->adam_eps);
    json_float(o, "weight_decay", h->weight_decay);
    cJSON_AddStringToObject(o, "schedule", nn_schedule_name(h->schedule));
    json_float(o, "gamma", h->gamma);
    cJSON_AddNumberToObject(o, "step_epochs", h->step_epochs);
    json_float(o, "min_lr", h->min_lr);
    json_float(o, "max_lr", h->max_lr);
    cJSON_AddNumberToObject(o, "patience", h->plateau_patience);
    cJSON_AddNumberToObject(o, "batch", h->batch);
    cJSON_AddNumberToObject(o, "epochs", h->epochs);
    json_float(o, "label_smoothing", h->label_smoothing);
    cJSON_AddNumberToObject(o, "early_stop", h->early_stop);
    cJSON_AddStringToObject(o, "augment", h->augment[0] ? h->augment : "none");
    if (h->ema != 0) json_float(o, "ema", h->ema);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}
