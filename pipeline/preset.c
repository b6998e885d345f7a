/* pipeline/preset: strict parser of pipeline presets (see preset.h). */
#include "pipeline/preset.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kaggle/predict.h" /* KG_TTA_MAX: the views digits-predict has, so that tta= fails at parse time */
#include "core/dg_cli.h"
#include "core/dg_file.h"

static const char *const kEnsembleNames[] = {"soft", "hard", "fit"};

const char *pl_ensemble_name(pl_ensemble e) {
    return (unsigned)e < 3 ? kEnsembleNames[e] : "?";
}

/* One whitespace-separated word of a line. */
typedef struct tok {
    const char *s;
    int len, col;
} tok;

#define MAX_TOKS 32

typedef struct ctx {
    const char *file;
    int line;
    dg_err *err;
} ctx;

static int fail_at(const ctx *c, int col, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_at(const ctx *c, int col, const char *fmt, ...) {
    char what[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return dg_fail(c->err, "%s:%d:%d: %s", c->file, c->line, col, what);
}

/* Split tok t at '=' into key and value strings (NUL-terminated copies). */
static int split_kv(const ctx *c, const tok *t, char *key, size_t kn, char *val, size_t vn) {
    char w[512];
    if (t->len >= (int)sizeof w) return fail_at(c, t->col, "word too long");
    snprintf(w, sizeof w, "%.*s", t->len, t->s);
    char *eq = strchr(w, '=');
    if (!eq) return fail_at(c, t->col, "\"%s\": expected key=value", w);
    *eq = '\0';
    if (!*w) return fail_at(c, t->col, "\"=%s\": missing key before '='", eq + 1);
    if (!eq[1]) return fail_at(c, t->col, "%s=: missing value", w);
    if (strlen(w) >= kn || strlen(eq + 1) >= vn) return fail_at(c, t->col, "\"%s\": too long", w);
    strcpy(key, w);
    strcpy(val, eq + 1);
    return 0;
}

static int valid_word(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/+", *s)) return 0;
    return 1;
}

/* Parse "1-15" or "1,2,7" (or one number) into seeds; returns the count or -1. */
static int parse_seeds(const char *s, uint64_t *out, int cap) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    const char *dash = strchr(buf, '-');
    if (dash && !strchr(buf, ',')) {
        char a[64], b[64];
        snprintf(a, sizeof a, "%.*s", (int)(dash - buf), buf);
        snprintf(b, sizeof b, "%s", dash + 1);
        uint64_t lo, hi;
        if (dg_parse_u64(a, &lo) != 0 || dg_parse_u64(b, &hi) != 0 || hi < lo || hi - lo >= (uint64_t)cap) return -1;
        for (uint64_t v = lo; v <= hi; v++) out[v - lo] = v;
        return (int)(hi - lo + 1);
    }
    if (strstr(buf, ",,")) return -1;
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == cap || dg_parse_u64(t, &out[n]) != 0) return -1;
        n++;
    }
    return n > 0 && s[strlen(s) - 1] != ',' && s[0] != ',' ? n : -1;
}

/* member / members: model=.. seed=..|seeds=.. [epochs=..] [augment=..] [batch=..] [lr=..] */
static int parse_member(pl_preset *p, const ctx *c, const tok *t, int nt, int many) {
    pl_member m;
    memset(&m, 0, sizeof m);
    m.line = c->line;
    uint64_t seeds[PL_MAX_MEMBERS];
    int nseeds = 0, have_model = 0;
    unsigned seen = 0;
    for (int i = 1; i < nt; i++) {
        char key[64], val[512];
        if (split_kv(c, &t[i], key, sizeof key, val, sizeof val) != 0) return -1;
        static const char *const keys[] = {"model", "seed", "seeds", "epochs", "augment", "batch", "lr"};
        int k = 0;
        while (k < 7 && strcmp(key, keys[k]) != 0) k++;
        if (k == 7 || (many && k == 1) || (!many && k == 2))
            return fail_at(c, t[i].col, "unknown key \"%s\"; expected model, %s, epochs, augment, batch or lr", key,
                           many ? "seeds" : "seed");
        if (seen & (1u << k)) return fail_at(c, t[i].col, "%s given twice", key);
        seen |= 1u << k;
        long v;
        switch (k) {
        case 0:
            if (!valid_word(val) || strlen(val) >= sizeof m.model)
                return fail_at(c, t[i].col, "model=%s: expected a model name or spec path", val);
            strcpy(m.model, val);
            have_model = 1;
            break;
        case 1:
            if (dg_parse_u64(val, &seeds[0]) != 0)
                return fail_at(c, t[i].col, "seed=%s: expected a non-negative integer", val);
            nseeds = 1;
            break;
        case 2:
            nseeds = parse_seeds(val, seeds, PL_MAX_MEMBERS);
            if (nseeds < 0)
                return fail_at(c, t[i].col, "seeds=%s: expected a range like 1-15 or a list like 1,2,5", val);
            break;
        case 3:
            if (dg_parse_long(val, 1, 100000, &v) != 0)
                return fail_at(c, t[i].col, "epochs=%s: expected an integer 1..100000", val);
            m.epochs = (int)v;
            break;
        case 4:
            if (!valid_word(val) || strlen(val) >= sizeof m.augment)
                return fail_at(c, t[i].col, "augment=%s: expected a policy name, \"none\" or a policy file", val);
            strcpy(m.augment, val);
            break;
        case 5:
            if (dg_parse_long(val, 1, 65536, &v) != 0)
                return fail_at(c, t[i].col, "batch=%s: expected an integer 1..65536", val);
            m.batch = (int)v;
            break;
        case 6:
            if (dg_parse_double(val, 1e-9, 10, &m.lr) != 0)
                return fail_at(c, t[i].col, "lr=%s: expected a learning rate in (0, 10]", val);
            break;
        }
    }
    if (!have_model) return fail_at(c, t[0].col, "%s: model=NAME is required", many ? "members" : "member");
    if (!nseeds) return fail_at(c, t[0].col, "%s: %s is required", many ? "members" : "member",
                                many ? "seeds=RANGE" : "seed=S");
    for (int s = 0; s < nseeds; s++) {
        for (int j = 0; j < p->n_members; j++) {
            if (strcmp(p->members[j].model, m.model) == 0 && p->members[j].seed == seeds[s]) {
                return fail_at(c, t[0].col, "member model=%s seed=%llu already given at line %d (use another seed)",
                               m.model, (unsigned long long)seeds[s], p->members[j].line);
            }
        }
        if (p->n_members == PL_MAX_MEMBERS) return fail_at(c, t[0].col, "more than %d members", PL_MAX_MEMBERS);
        m.seed = seeds[s];
        p->members[p->n_members++] = m;
    }
    return 0;
}

static int parse_split(pl_preset *p, const ctx *c, const tok *t, int nt, int *split_line) {
    if (*split_line) return fail_at(c, t[0].col, "split given twice (first at line %d)", *split_line);
    *split_line = c->line;
    int have_frac = 0;
    for (int i = 1; i < nt; i++) {
        char key[64], val[512];
        if (split_kv(c, &t[i], key, sizeof key, val, sizeof val) != 0) return -1;
        long v;
        if (!strcmp(key, "val-frac")) {
            if (dg_parse_double(val, 1e-6, 0.9, &p->val_frac) != 0)
                return fail_at(c, t[i].col, "val-frac=%s: expected a fraction in (0, 0.9]", val);
            have_frac = 1;
        } else if (!strcmp(key, "folds")) {
            if (dg_parse_long(val, 2, 100, &v) != 0)
                return fail_at(c, t[i].col, "folds=%s: expected an integer 2..100", val);
            p->folds = (int)v;
        } else if (!strcmp(key, "split-seed")) {
            if (dg_parse_u64(val, &p->split_seed) != 0)
                return fail_at(c, t[i].col, "split-seed=%s: expected a non-negative integer", val);
        } else {
            return fail_at(c, t[i].col, "unknown key \"%s\"; expected val-frac, folds or split-seed", key);
        }
    }
    if (have_frac && p->folds) return fail_at(c, t[0].col, "split: val-frac and folds exclude each other");
    return 0;
}

static int parse_speed(pl_preset *p, const ctx *c, const tok *t, int nt) {
    if (p->n_speeds == PL_MAX_SPEEDS) return fail_at(c, t[0].col, "too many speed lines");
    pl_speed s;
    memset(&s, 0, sizeof s);
    s.line = c->line;
    for (int i = 1; i < nt; i++) {
        char key[64], val[512];
        if (split_kv(c, &t[i], key, sizeof key, val, sizeof val) != 0) return -1;
        if (!strcmp(key, "model")) {
            if (!valid_word(val) || strlen(val) >= sizeof s.model)
                return fail_at(c, t[i].col, "model=%s: expected a model name", val);
            strcpy(s.model, val);
        } else if (!strcmp(key, "train") || !strcmp(key, "predict")) {
            double v;
            if (dg_parse_double(val, 1e-3, 1e9, &v) != 0)
                return fail_at(c, t[i].col, "%s=%s: expected images per second > 0", key, val);
            if (key[0] == 't') s.train_ips = v;
            else s.predict_ips = v;
        } else {
            return fail_at(c, t[i].col, "unknown key \"%s\"; expected model, train or predict", key);
        }
    }
    if (!s.model[0]) return fail_at(c, t[0].col, "speed: model=NAME is required");
    if (s.train_ips == 0 && s.predict_ips == 0)
        return fail_at(c, t[0].col, "speed: give train=IMAGES_PER_S and/or predict=IMAGES_PER_S");
    for (int j = 0; j < p->n_speeds; j++)
        if (!strcmp(p->speeds[j].model, s.model)) return fail_at(c, t[0].col, "speed for %s given twice", s.model);
    p->speeds[p->n_speeds++] = s;
    return 0;
}

/* augment policy=P [copies=N] [originals=yes|no] [seed=S] [apply=train|both] */
static int parse_augment(pl_preset *p, const ctx *c, const tok *t, int nt) {
    pl_augment *a = &p->augment;
    if (a->on) return fail_at(c, t[0].col, "augment given twice (first at line %d)", a->line);
    memset(a, 0, sizeof *a);
    a->on = 1;
    a->line = c->line;
    a->copies = 1;
    a->seed = 1;
    int originals = -1;
    for (int i = 1; i < nt; i++) {
        char key[64], val[512];
        long v;
        if (split_kv(c, &t[i], key, sizeof key, val, sizeof val) != 0) return -1;
        if (!strcmp(key, "policy")) {
            if (!valid_word(val) || strlen(val) >= sizeof a->policy)
                return fail_at(c, t[i].col, "policy=%s: expected a policy name or file", val);
            strcpy(a->policy, val);
        } else if (!strcmp(key, "copies")) {
            if (dg_parse_long(val, 1, 1000, &v) != 0)
                return fail_at(c, t[i].col, "copies=%s: expected an integer 1..1000", val);
            a->copies = (int)v;
        } else if (!strcmp(key, "originals")) {
            if (strcmp(val, "yes") && strcmp(val, "no"))
                return fail_at(c, t[i].col, "originals=%s: expected yes or no", val);
            originals = val[0] == 'y';
        } else if (!strcmp(key, "seed")) {
            if (dg_parse_u64(val, &a->seed) != 0)
                return fail_at(c, t[i].col, "seed=%s: expected a non-negative integer", val);
        } else if (!strcmp(key, "apply")) {
            if (strcmp(val, "train") && strcmp(val, "both"))
                return fail_at(c, t[i].col, "apply=%s: expected train or both", val);
            a->both = val[0] == 'b';
        } else {
            return fail_at(c, t[i].col, "unknown key \"%s\"; expected policy, copies, originals, seed or apply", key);
        }
    }
    if (!a->policy[0]) return fail_at(c, t[0].col, "augment: policy=NAME is required");
    a->originals = originals >= 0 ? originals : !a->both;
    if (a->both && (a->copies != 1 || a->originals))
        return fail_at(c, t[0].col, "augment apply=both needs copies=1 and originals=no (one test row per test image)");
    return 0;
}

/* adapt epochs=MIN-MAX [margin=F] [calibrate=SECONDS] */
static int parse_adapt(pl_preset *p, const ctx *c, const tok *t, int nt) {
    pl_adapt *a = &p->adapt;
    if (a->on) return fail_at(c, t[0].col, "adapt given twice (first at line %d)", a->line);
    a->on = 1;
    a->line = c->line;
    a->margin = PL_ADAPT_MARGIN;
    a->calibrate_s = PL_ADAPT_CALIBRATE_S;
    for (int i = 1; i < nt; i++) {
        char key[64], val[512];
        if (split_kv(c, &t[i], key, sizeof key, val, sizeof val) != 0) return -1;
        if (!strcmp(key, "epochs")) {
            char *dash = strchr(val, '-');
            long lo, hi;
            if (dash) *dash = '\0';
            if (!dash || dg_parse_long(val, 1, 100000, &lo) != 0 || dg_parse_long(dash + 1, 1, 100000, &hi) != 0 ||
                hi < lo) {
                if (dash) *dash = '-';
                return fail_at(c, t[i].col, "epochs=%s: expected MIN-MAX, 1 <= MIN <= MAX <= 100000", val);
            }
            a->min_epochs = (int)lo;
            a->max_epochs = (int)hi;
        } else if (!strcmp(key, "margin")) {
            if (dg_parse_double(val, 0, 0.9, &a->margin) != 0)
                return fail_at(c, t[i].col, "margin=%s: expected a fraction of the budget in [0, 0.9]", val);
        } else if (!strcmp(key, "calibrate")) {
            if (dg_parse_double(val, 0.05, 120, &a->calibrate_s) != 0)
                return fail_at(c, t[i].col, "calibrate=%s: expected seconds in [0.05, 120]", val);
        } else {
            return fail_at(c, t[i].col, "unknown key \"%s\"; expected epochs, margin or calibrate", key);
        }
    }
    if (!a->min_epochs) return fail_at(c, t[0].col, "adapt: epochs=MIN-MAX is required");
    return 0;
}

/* A line of settings: key=value ... */
static int parse_settings(pl_preset *p, const ctx *c, const tok *t, int nt, unsigned *seen) {
    for (int i = 0; i < nt; i++) {
        char key[64], val[512];
        if (split_kv(c, &t[i], key, sizeof key, val, sizeof val) != 0) return -1;
        static const char *const keys[] = {"tta", "ensemble", "budget_minutes", "jobs", "jobs_efficiency"};
        int k = 0;
        while (k < 5 && strcmp(key, keys[k]) != 0) k++;
        if (k == 5)
            return fail_at(c, t[i].col,
                           "unknown setting \"%s\"; expected tta, ensemble, budget_minutes, jobs or jobs_efficiency",
                           key);
        if (*seen & (1u << k)) return fail_at(c, t[i].col, "%s given twice", key);
        *seen |= 1u << k;
        long v;
        if (k == 0) {
            if (dg_parse_long(val, 1, KG_TTA_MAX, &v) != 0)
                return fail_at(c, t[i].col, "tta=%s: expected 1..%d views", val, KG_TTA_MAX);
            p->tta = (int)v;
        } else if (k == 1) {
            int e = 0;
            while (e < 3 && strcmp(val, kEnsembleNames[e]) != 0) e++;
            if (e == 3) return fail_at(c, t[i].col, "ensemble=%s: expected soft, hard or fit", val);
            p->ensemble = (pl_ensemble)e;
        } else if (k == 2) {
            if (dg_parse_double(val, 1e-3, 1e7, &p->budget_minutes) != 0)
                return fail_at(c, t[i].col, "budget_minutes=%s: expected minutes > 0", val);
        } else if (k == 3) {
            if (dg_parse_long(val, 1, PL_MAX_JOBS, &v) != 0)
                return fail_at(c, t[i].col, "jobs=%s: expected an integer 1..%d", val, PL_MAX_JOBS);
            p->jobs = (int)v;
        } else {
            if (dg_parse_double(val, 0.01, 1, &p->jobs_efficiency) != 0)
                return fail_at(c, t[i].col, "jobs_efficiency=%s: expected a fraction in [0.01, 1]", val);
        }
    }
    return 0;
}

int pl_preset_parse(pl_preset *p, const char *text, const char *fname, dg_err *err) {
    memset(p, 0, sizeof *p);
    snprintf(p->file, sizeof p->file, "%s", fname);
    const char *base = strrchr(fname, '/');
    base = base ? base + 1 : fname;
    size_t bl = strlen(base);
    if (bl > 7 && strcmp(base + bl - 7, ".preset") == 0) bl -= 7;
    snprintf(p->name, sizeof p->name, "%.*s", (int)bl, base);
    p->val_frac = 0.1;
    p->split_seed = 1;
    p->tta = 1;
    p->ensemble = PL_ENS_SOFT;
    p->jobs = 1;
    p->jobs_efficiency = PL_JOBS_EFFICIENCY;
    ctx c = {fname, 0, err};
    int split_line = 0;
    unsigned settings_seen = 0;
    const char *s = text;
    while (*s) {
        c.line++;
        const char *eol = strchr(s, '\n');
        size_t len = eol ? (size_t)(eol - s) : strlen(s);
        tok t[MAX_TOKS];
        int nt = 0;
        for (size_t i = 0; i < len;) {
            if (s[i] == '#') break;
            if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r') {
                i++;
                continue;
            }
            size_t j = i;
            while (j < len && s[j] != ' ' && s[j] != '\t' && s[j] != '\r' && s[j] != '#') j++;
            if (nt == MAX_TOKS) return fail_at(&c, (int)i + 1, "too many words on one line");
            t[nt++] = (tok){s + i, (int)(j - i), (int)i + 1};
            i = j;
        }
        if (nt > 0) {
            char kw[32];
            snprintf(kw, sizeof kw, "%.*s", t[0].len, t[0].s);
            int rc;
            if (memchr(t[0].s, '=', (size_t)t[0].len)) rc = parse_settings(p, &c, t, nt, &settings_seen);
            else if (!strcmp(kw, "member")) rc = parse_member(p, &c, t, nt, 0);
            else if (!strcmp(kw, "members")) rc = parse_member(p, &c, t, nt, 1);
            else if (!strcmp(kw, "split")) rc = parse_split(p, &c, t, nt, &split_line);
            else if (!strcmp(kw, "speed")) rc = parse_speed(p, &c, t, nt);
            else if (!strcmp(kw, "augment")) rc = parse_augment(p, &c, t, nt);
            else if (!strcmp(kw, "adapt")) rc = parse_adapt(p, &c, t, nt);
            else
                rc = fail_at(&c, t[0].col,
                             "unknown statement \"%s\"; expected split, member, members, augment, speed, adapt or a "
                             "setting "
                             "(tta=, ensemble=, budget_minutes=, jobs=, jobs_efficiency=)", kw);
            if (rc != 0) return -1;
        }
        s += len;
        if (*s == '\n') s++;
    }
    if (p->n_members == 0) return dg_fail(err, "%s:%d: no member or members line: a preset needs at least one", fname,
                                          c.line ? c.line : 1);
    if (p->adapt.on && p->budget_minutes <= 0)
        return dg_fail(err, "%s:%d: adapt needs budget_minutes= (the time it plans for)", fname, p->adapt.line);
    return 0;
}

static int try_dir(char *path, size_t n, const char *dir, const char *name, char *looked, size_t ln) {
    if (!dir || !*dir) return 0;
    snprintf(path, n, "%s/%s.preset", dir, name);
    size_t l = strlen(looked);
    snprintf(looked + l, ln - l, "%s%s", l ? ", " : "", dir);
    return access(path, R_OK) == 0;
}

int pl_preset_find(const char *name, char *path, size_t n, dg_err *err) {
    size_t len = strlen(name);
    if (strchr(name, '/') || (len >= 7 && strcmp(name + len - 7, ".preset") == 0)) {
        if ((size_t)snprintf(path, n, "%s", name) >= n) return dg_fail(err, "%s: path too long", name);
        return 0;
    }
    if (!valid_word(name)) return dg_fail(err, "preset name '%s': expected letters, digits, '_', '-' or '.'", name);
    char looked[2048] = "", dir[1024];
    if (try_dir(path, n, getenv("DIGITS_PRESETS"), name, looked, sizeof looked)) return 0;
    if (try_dir(path, n, "experiments/presets", name, looked, sizeof looked)) return 0;
    ssize_t k = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (k > 0) {
        dir[k] = '\0';
        char *slash = strrchr(dir, '/');
        if (slash) {
            snprintf(slash, sizeof dir - (size_t)(slash - dir), "/../../experiments/presets");
            if (try_dir(path, n, dir, name, looked, sizeof looked)) return 0;
        }
    }
    snprintf(dir, sizeof dir, "%s", __FILE__); /* <src>/pipeline/preset.c */
    for (int i = 0; i < 2; i++) {
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
    }
    if (dir[0] == '/') {
        size_t l = strlen(dir);
        snprintf(dir + l, sizeof dir - l, "/experiments/presets");
        if (try_dir(path, n, dir, name, looked, sizeof looked)) return 0;
    }
    return dg_fail(err, "preset '%s' not found: no %s.preset in %s (set DIGITS_PRESETS or pass a path)", name, name,
                   looked);
}

int pl_preset_load(pl_preset *p, const char *name_or_path, dg_err *err) {
    char path[1024];
    if (pl_preset_find(name_or_path, path, sizeof path, err) != 0) return -1;
    char *text;
    if (dg_read_text(path, "preset file", &text, err) != 0) return -1;
    int rc = pl_preset_parse(p, text, path, err);
    free(text);
    return rc;
}
