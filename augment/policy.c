/* augment/policy: parsing policy text, presets, drawing parameters (see policy.h). */
#include "augment/policy.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/affine.h"
#include "augment/deskew.h"
#include "augment/elastic.h"
#include "core/dg_rng.h"

static const struct {
    const char *name, *text;
} presets[] = {
    {"none", "# none: images pass through unchanged\n"},
    {"kaggle", "# kaggle: the usual Digit Recognizer kernel settings (rotation, zoom, shift)\n"
               "rotate degrees=-10..10\n"
               "zoom 0.9..1.1\n"
               "shift fraction=0.1\n"},
    {"simard", "# simard: elastic distortion of Simard, Steinkraus & Platt 2003 (MNIST: alpha 34, sigma 4 pixels)\n"
               "elastic alpha=34 sigma=4\n"},
    {"ciresan", "# ciresan: Ciresan et al. 2010, rotation, per-axis scaling and elastic distortion\n"
                "rotate degrees=-15..15\n"
                "scale x=0.85..1.15 y=0.85..1.15\n"
                "elastic alpha=36..38 sigma=5..6\n"},
    {"deskew", "# deskew: straighten by image moments (deterministic preprocessing)\n"
               "deskew\n"},
};

const char *aug_policy_preset(const char *name) {
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(name, presets[i].name) == 0) return presets[i].text;
    return NULL;
}

const char *aug_policy_preset_names(void) { return "none, kaggle, simard, ciresan, deskew"; }

static const char *kind_names[] = {"deskew", "rotate", "zoom", "scale", "shear", "shift", "elastic"};

/* ---- parsing ---- */

typedef struct parser {
    const char *file;
    int line;
    const char *line_start;
    dg_err *err;
} parser;

static int fail_at(const parser *ps, const char *at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_at(const parser *ps, const char *at, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return dg_fail(ps->err, "%s:%d:%d: %s", ps->file, ps->line, (int)(at - ps->line_start) + 1, msg);
}

/* A token: [s, s + n). */
typedef struct token {
    const char *s;
    int n;
} token;

/* Parse a number that fills the whole of [s, s + n). */
static int parse_num(const char *s, int n, double *out) {
    char buf[64];
    if (n <= 0 || n >= (int)sizeof buf) return -1;
    memcpy(buf, s, (size_t)n);
    buf[n] = '\0';
    if (isspace((unsigned char)buf[0])) return -1;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (*end || errno == ERANGE) return -1;
    *out = v;
    return 0;
}

/* A value: "A" (single = 1) or "LO..HI" (single = 0). */
static int parse_value(const parser *ps, token v, const char *key, double *lo, double *hi, int *single) {
    const char *dots = NULL;
    for (int i = 0; i + 1 < v.n; i++)
        if (v.s[i] == '.' && v.s[i + 1] == '.') {
            dots = v.s + i;
            break;
        }
    if (!dots) {
        if (parse_num(v.s, v.n, lo) != 0)
            return fail_at(ps, v.s, "%s: expected a number or a range LO..HI, got '%.*s'", key, v.n, v.s);
        *hi = *lo;
        *single = 1;
    } else {
        int nl = (int)(dots - v.s);
        if (parse_num(v.s, nl, lo) != 0 || parse_num(dots + 2, v.n - nl - 2, hi) != 0)
            return fail_at(ps, v.s, "%s: expected a range LO..HI of two numbers, got '%.*s'", key, v.n, v.s);
        *single = 0;
    }
    if (isnan(*lo) || isnan(*hi)) return fail_at(ps, v.s, "%s: NaN is not a valid value", key);
    if (!isfinite(*lo) || !isfinite(*hi)) return fail_at(ps, v.s, "%s: the value must be finite", key);
    if (!*single && *lo > *hi)
        return fail_at(ps, v.s, "%s: bad range %.*s (the low end is above the high end)", key, v.n, v.s);
    return 0;
}

/* Check lo..hi within [min, max] (inclusive unless open). */
static int check_bounds(const parser *ps, token v, const char *key, double lo, double hi, double min, double max,
                        int open_min, const char *what) {
    /* checked on the floats that are stored too: "zoom 9e-80" is above 0 as a double but 0 as a float */
    float lf = (float)lo, hf = (float)hi, mn = (float)min, mx = (float)max;
    if (lo < min || (open_min && lo == min) || hi > max || lf < mn || (open_min && lf <= mn) || hf > mx)
        return fail_at(ps, v.s, "%s must be %s (got %.*s)", key, what, v.n, v.s);
    return 0;
}

/* The keys each kind takes; the first is its main (positional) key, "" if it has none. */
static const char *const kind_keys[][4] = {
    [AUG_DESKEW] = {"", NULL},
    [AUG_ROTATE] = {"degrees", NULL},
    [AUG_ZOOM] = {"factor", NULL},
    [AUG_SCALE] = {"", "x", "y", NULL},
    [AUG_SHEAR] = {"degrees", NULL},
    [AUG_SHIFT] = {"", "fraction", "pixels", NULL},
    [AUG_ELASTIC] = {"", "alpha", "sigma", NULL},
};

static int parse_line(const parser *ps, token *tok, int ntok, aug_op *op) {
    int kind = -1;
    for (int k = 0; k < (int)(sizeof kind_names / sizeof kind_names[0]); k++)
        if ((int)strlen(kind_names[k]) == tok[0].n && strncmp(kind_names[k], tok[0].s, (size_t)tok[0].n) == 0)
            kind = k;
    if (kind < 0)
        return fail_at(ps, tok[0].s, "unknown transform '%.*s' (expected deskew, rotate, zoom, scale, shear, shift "
                                     "or elastic)", tok[0].n, tok[0].s);
    memset(op, 0, sizeof *op);
    op->kind = (aug_kind)kind;
    op->p = 1;
    op->line = ps->line;
    const char *const *keys = kind_keys[kind];
    /* Defaults: no change. */
    if (kind == AUG_ZOOM || kind == AUG_SCALE) op->lo[0] = op->hi[0] = op->lo[1] = op->hi[1] = 1;
    int seen[5] = {0}, seen_p = 0;
    char expected[96] = "";
    for (int k = 0; keys[k]; k++)
        if (keys[k][0]) snprintf(expected + strlen(expected), sizeof expected - strlen(expected), "%s=, ", keys[k]);
    snprintf(expected + strlen(expected), sizeof expected - strlen(expected), "p=");

    for (int t = 1; t < ntok; t++) {
        token a = tok[t];
        const char *eq = memchr(a.s, '=', (size_t)a.n);
        token key = {a.s, eq ? (int)(eq - a.s) : 0}, val = a;
        if (eq) val = (token){eq + 1, a.n - key.n - 1};
        int slot = -1;
        const char *kname;
        if (!eq) {
            if (!keys[0][0] && kind != AUG_SCALE)
                return fail_at(ps, a.s, "%s takes no positional value; expected %s", kind_names[kind], expected);
            slot = 0;
            kname = keys[0][0] ? keys[0] : "x and y";
        } else if (key.n == 1 && key.s[0] == 'p') {
            slot = 4;
            kname = "p";
        } else {
            for (int k = 0; keys[k]; k++)
                if (keys[k][0] && (int)strlen(keys[k]) == key.n && strncmp(keys[k], key.s, (size_t)key.n) == 0)
                    slot = k;
            if (slot < 0)
                return fail_at(ps, a.s, "unknown key '%.*s' for %s (expected %s)", key.n, key.s, kind_names[kind],
                               expected);
            kname = keys[slot];
        }
        if (val.n == 0) return fail_at(ps, a.s, "%s: missing value after '='", kname);
        int dup = slot == 4 ? seen_p : seen[slot];
        if (kind == AUG_SCALE && slot != 4) dup = dup || seen[0] || (slot == 0 && (seen[1] || seen[2]));
        if (dup) return fail_at(ps, a.s, "%s given twice", kname);
        if (slot == 4) seen_p = 1;
        else seen[slot] = 1;

        double lo = 0, hi = 0;
        int single = 1;
        if (parse_value(ps, val, kname, &lo, &hi, &single) != 0) return -1;
        if (slot == 4) {
            if (!single) return fail_at(ps, val.s, "p: expected one probability, not a range");
            if (lo < 0 || lo > 1) return fail_at(ps, val.s, "probability p must be in [0, 1] (got %.*s)", val.n, val.s);
            op->p = (float)lo;
            continue;
        }
        switch (kind) {
        case AUG_ROTATE:
        case AUG_SHEAR: {
            double lim = kind == AUG_ROTATE ? 360 : 75;
            if (single) {
                if (lo < 0) return fail_at(ps, val.s, "%s: a single value A means -A..A and must be >= 0", kname);
                lo = -hi;
            }
            if (check_bounds(ps, val, kname, lo, hi, -lim, lim, 0, kind == AUG_ROTATE ? "within -360..360"
                                                                                      : "within -75..75") != 0)
                return -1;
            op->lo[0] = (float)lo, op->hi[0] = (float)hi;
            break;
        }
        case AUG_ZOOM:
        case AUG_SCALE:
            if (check_bounds(ps, val, kname, lo, hi, 0, 10, 1, "a factor in (0, 10]") != 0) return -1;
            for (int i = 0; i < 2; i++)
                if (kind == AUG_ZOOM || slot == 0 || slot == i + 1) op->lo[i] = (float)lo, op->hi[i] = (float)hi;
            break;
        case AUG_SHIFT: {
            if (seen[1] && seen[2]) return fail_at(ps, a.s, "shift: give fraction= or pixels=, not both");
            if (single) {
                if (lo < 0) return fail_at(ps, val.s, "%s: a single value A means -A..A and must be >= 0", kname);
                lo = -hi;
            }
            double unit = slot == 1 ? AUG_SIDE : 1;
            if (check_bounds(ps, val, kname, lo, hi, -AUG_SIDE / unit, AUG_SIDE / unit, 0,
                             slot == 1 ? "within -1..1" : "within -28..28") != 0)
                return -1;
            op->lo[0] = op->lo[1] = (float)(lo * unit);
            op->hi[0] = op->hi[1] = (float)(hi * unit);
            break;
        }
        case AUG_ELASTIC:
            if (slot == 1 && check_bounds(ps, val, kname, lo, hi, 0, 1000, 0, ">= 0 and <= 1000 pixels") != 0)
                return -1;
            if (slot == 2 && check_bounds(ps, val, kname, lo, hi, 0, AUG_SIGMA_MAX, 0, ">= 0 and <= 100 pixels") != 0)
                return -1;
            op->lo[slot - 1] = (float)lo, op->hi[slot - 1] = (float)hi;
            break;
        default:
            break;
        }
    }
    if (kind == AUG_SHIFT && !seen[1] && !seen[2])
        return fail_at(ps, tok[0].s, "shift needs fraction=F or pixels=P");
    if (kind == AUG_ELASTIC && (!seen[1] || !seen[2]))
        return fail_at(ps, tok[0].s, "elastic needs alpha= and sigma= (pixels; Simard: alpha=34 sigma=4)");
    if ((kind == AUG_ROTATE || kind == AUG_SHEAR || kind == AUG_ZOOM) && !seen[0])
        return fail_at(ps, tok[0].s, "%s needs a value (%s=...)", kind_names[kind], keys[0]);
    if (kind == AUG_SCALE && !seen[0] && !seen[1] && !seen[2])
        return fail_at(ps, tok[0].s, "scale needs a value (x=..., y=... or one range for both)");
    return 0;
}

int aug_policy_parse(aug_policy **policy, const char *text, const char *file, dg_err *err) {
    *policy = NULL;
    aug_policy *pol = calloc(1, sizeof *pol);
    if (!pol) return dg_fail(err, "%s: out of memory", file);
    snprintf(pol->source, sizeof pol->source, "%s", file);
    parser ps = {file, 0, text, err};
    const char *p = text;
    int elastic_line = 0;
    while (*p) {
        ps.line++;
        ps.line_start = p;
        const char *eol = strchr(p, '\n');
        if (!eol) eol = p + strlen(p);
        size_t len = (size_t)(eol - p);
        if (len && p[len - 1] == '\r') len--;
        const char *hash = memchr(p, '#', len), *end = hash ? hash : p + len;
        token tok[16];
        int ntok = 0;
        for (const char *q = p; q < end; q++)
            if (!isprint((unsigned char)*q) && *q != '\t') {
                fail_at(&ps, q, "unexpected character 0x%02x", (unsigned char)*q);
                goto fail;
            }
        for (const char *q = p; q < end;) {
            if (*q == ' ' || *q == '\t') {
                q++;
                continue;
            }
            const char *s = q;
            while (q < end && *q != ' ' && *q != '\t') q++;
            if (ntok == 16) {
                fail_at(&ps, s, "too many values on one line");
                goto fail;
            }
            tok[ntok++] = (token){s, (int)(q - s)};
        }
        p = *eol ? eol + 1 : eol;
        if (ntok == 0) continue;
        if (pol->n == AUG_MAX_OPS) {
            fail_at(&ps, tok[0].s, "too many transforms (at most %d)", AUG_MAX_OPS);
            goto fail;
        }
        aug_op *op = &pol->op[pol->n];
        if (parse_line(&ps, tok, ntok, op) != 0) goto fail;
        if (elastic_line) {
            fail_at(&ps, tok[0].s, "%s after elastic (line %d): elastic must be the last transform",
                    kind_names[op->kind], elastic_line);
            goto fail;
        }
        if (op->kind == AUG_DESKEW && pol->n > 0) {
            fail_at(&ps, tok[0].s, "deskew must be the first transform (it measures the source image)");
            goto fail;
        }
        if (op->kind == AUG_ELASTIC) elastic_line = ps.line;
        pol->n++;
    }
    *policy = pol;
    return 0;
fail:
    free(pol);
    return -1;
}

int aug_policy_format(const aug_policy *pol, char *buf, size_t cap) {
    size_t n = 0;
#define OUT(...)                                                                                                   \
    do {                                                                                                           \
        int k_ = snprintf(buf ? buf + (n < cap ? n : cap) : NULL, n < cap ? cap - n : 0, __VA_ARGS__);            \
        if (k_ > 0) n += (size_t)k_;                                                                               \
    } while (0)
    OUT("# policy %s\n", pol->source);
    for (int i = 0; i < pol->n; i++) {
        const aug_op *op = &pol->op[i];
        OUT("%s", kind_names[op->kind]);
        switch (op->kind) {
        case AUG_ROTATE:
        case AUG_SHEAR: OUT(" degrees=%.9g..%.9g", op->lo[0], op->hi[0]); break;
        case AUG_ZOOM: OUT(" factor=%.9g..%.9g", op->lo[0], op->hi[0]); break;
        case AUG_SCALE: OUT(" x=%.9g..%.9g y=%.9g..%.9g", op->lo[0], op->hi[0], op->lo[1], op->hi[1]); break;
        case AUG_SHIFT: OUT(" pixels=%.9g..%.9g", op->lo[0], op->hi[0]); break;
        case AUG_ELASTIC: OUT(" alpha=%.9g..%.9g sigma=%.9g..%.9g", op->lo[0], op->hi[0], op->lo[1], op->hi[1]); break;
        default: break;
        }
        OUT(" p=%.9g\n", op->p);
    }
#undef OUT
    if (buf && cap) buf[n < cap ? n : cap - 1] = '\0';
    return (int)n;
}

int aug_policy_is_none(const aug_policy *pol) { return pol->n == 0; }

/* ---- drawing ---- */

void aug_draw_ops(const aug_policy *pol, uint64_t seed, uint32_t epoch, uint32_t id, aug_draw *draws) {
    dg_rng r = dg_rng_make(seed, DG_RNG_AUGMENT, epoch, id);
    for (int i = 0; i < pol->n; i++) {
        const aug_op *op = &pol->op[i];
        float u = dg_rng_uniform(&r);
        float a = dg_rng_range(&r, op->lo[0], op->hi[0]);
        float b = dg_rng_range(&r, op->lo[1], op->hi[1]);
        draws[i].applied = u < op->p;
        draws[i].v[0] = a;
        /* zoom: one factor; shift: independent x and y from the same range */
        draws[i].v[1] = op->kind == AUG_ZOOM ? a : b;
    }
}

void aug_params_identity(aug_params *p) {
    memset(p, 0, sizeof *p);
    p->m[0] = p->m[4] = 1;
}

void aug_sample(const aug_policy *pol, uint64_t seed, uint32_t epoch, uint32_t id, const uint8_t *src,
                aug_params *p) {
    aug_draw draws[AUG_MAX_OPS];
    aug_draw_ops(pol, seed, epoch, id, draws);
    aug_params_identity(p);
    p->seed = seed;
    p->epoch = epoch;
    p->id = id;
    double f[6], m[6];
    aug_affine_identity(f);
    int deskew = 0;
    for (int i = 0; i < pol->n; i++) {
        if (!draws[i].applied) continue;
        const float *v = draws[i].v;
        switch (pol->op[i].kind) {
        case AUG_DESKEW: deskew = 1; break;
        case AUG_ROTATE: aug_affine_rotate(f, v[0]); break;
        case AUG_ZOOM:
        case AUG_SCALE: aug_affine_scale(f, v[0], v[1]); break;
        case AUG_SHEAR: aug_affine_shear(f, v[0]); break;
        case AUG_SHIFT: aug_affine_shift(f, v[0], v[1]); break;
        case AUG_ELASTIC:
            p->alpha = v[0];
            p->sigma = v[1];
            break;
        }
    }
    if (aug_affine_invert(m, f) != 0) aug_affine_identity(m); /* unreachable: the parser keeps maps invertible */
    if (deskew) {
        double cx, cy;
        double s = aug_skew(src, &cx, &cy);
        aug_deskew_compose(m, s, cy);
        p->skew = (float)s;
    }
    for (int i = 0; i < 6; i++) p->m[i] = (float)m[i];
}
