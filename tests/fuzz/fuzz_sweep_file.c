/* fuzz_sweep_file: experiments/sweep_file (JSON through cJSON, then each swept value put into the base spec and the
 * policy template and parsed by nn/spec and augment/policy). The input is written as fuzz.sweep into the scratch
 * directory, beside two small specs it can name (base.spec, b2.spec; named models such as mlp2 come from
 * experiments/models). Invariants: a load either fails with "FILE:LINE:COL: ..." whose position lies inside the
 * text (only a NUL byte, which makes it no text file, is reported without one), or gives a sweep within the
 * documented limits (parameters, rungs, eta, split, seeds, budget, a grid of at most 10^6 configurations capped by
 * its trials); configurations are pure (the same index gives the same values), drawn values lie in their
 * distribution's range and grid values are the listed ones; every configuration the harness renders either fails
 * with a message or gives a spec and policy that nn/spec and augment/policy accept, and its JSON parses. */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#include "augment/augment.h"
#include "augment/policy.h"
#include "experiments/sweep_file.h"
#include "fuzz_util.h"
#include "nn/spec.h"

static sw_sweep s;

static const char *const kBase = "name base\ninput 1x28x28\nflatten\ndense units=16\nrelu\ndropout rate=0.2\n"
                                 "dense units=10\ntrain optimizer=adam lr=0.01 batch=32 epochs=4\n";
static const char *const kB2 = "name b2\ninput 1x28x28\nflatten\ndense units=16\nrelu\ndropout rate=0.1\n"
                               "dense units=8\nrelu\ndense units=10\ntrain optimizer=sgd lr=0.1 epochs=3\n";

static double round6(double v) {
    char b[64];
    snprintf(b, sizeof b, "%.6g", v);
    return strtod(b, NULL);
}

/* "FILE:LINE:COL: " at the start of msg, with the position inside text. */
static void check_position(const char *msg, const char *file, const char *text) {
    size_t fl = strlen(file);
    FZ_CHECK(strncmp(msg, file, fl) == 0 && msg[fl] == ':', "message does not name the file: %s", msg);
    int line = 0, col = 0, used = 0;
    FZ_CHECK(sscanf(msg + fl, ":%d:%d:%n", &line, &col, &used) == 2 && used > 0, "no line:col: %s", msg);
    int lines = 1;
    for (const char *p = text; *p; p++) lines += *p == '\n';
    FZ_CHECK(line >= 1 && line <= lines && col >= 1, "position %d:%d outside the text (%d lines): %s", line, col,
             lines, msg);
}

static void check_config(int i) {
    sw_value v[SW_MAX_PARAMS], w[SW_MAX_PARAMS];
    sw_config_values(&s, i, v);
    sw_config_values(&s, i, w);
    FZ_CHECK(memcmp(v, w, sizeof(sw_value) * (size_t)s.n_params) == 0, "configuration %d is not pure", i);
    for (int j = 0; j < s.n_params; j++) {
        const sw_param *p = &s.params[j];
        if (p->dist == SW_VALUES) {
            int found = 0;
            for (int k = 0; k < p->n_values && !found; k++) found = memcmp(&p->values[k], &v[j], sizeof *v) == 0;
            FZ_CHECK(found, "configuration %d: %s is not one of its values", i, p->name);
        } else {
            FZ_CHECK(!v[j].is_str && isfinite(v[j].num), "configuration %d: %s not a number", i, p->name);
            /* uniform draws are written with 6 digits (round6 is monotonic); integers are not rounded */
            double lo = p->dist == SW_INT ? p->lo : round6(p->lo), hi = p->dist == SW_INT ? p->hi : round6(p->hi);
            FZ_CHECK(v[j].num >= lo && v[j].num <= hi, "configuration %d: %s = %.17g outside [%g, %g]", i, p->name,
                     v[j].num, p->lo, p->hi);
            if (p->dist == SW_INT) FZ_CHECK(v[j].num == floor(v[j].num), "%s = %g not an integer", p->name, v[j].num);
        }
    }
    char *spec_text = NULL, *policy_text = NULL;
    dg_err err = {{0}};
    if (sw_config_render(&s, v, "fuzzcfg", "/dev/null", &spec_text, &policy_text, &err) != 0) {
        FZ_CHECK(err.msg[0] && !spec_text && !policy_text, "render failed without a message or left text");
        return;
    }
    nn_spec spec;
    FZ_CHECK(nn_spec_parse(&spec, spec_text, "cfg", &err) == 0, "rendered spec does not parse: %s", err.msg);
    FZ_CHECK(strcmp(spec.name, "fuzzcfg") == 0, "rendered spec named '%s'", spec.name);
    if (s.strategy == SW_ASHA)
        FZ_CHECK(spec.hyper.epochs == s.rungs[s.n_rungs - 1], "ASHA spec trains %d epochs, last rung %d",
                 spec.hyper.epochs, s.rungs[s.n_rungs - 1]);
    nn_spec_free(&spec);
    FZ_CHECK((policy_text != NULL) == (s.policy != NULL), "policy text without a template or the reverse");
    if (policy_text) {
        aug_policy *pol;
        FZ_CHECK(aug_policy_parse(&pol, policy_text, "policy", &err) == 0, "rendered policy: %s", err.msg);
        aug_policy_free(pol);
    }
    free(spec_text);
    free(policy_text);
    char *json = sw_config_json(&s, v);
    FZ_CHECK(json, "no JSON");
    cJSON *j = cJSON_Parse(json);
    FZ_CHECK(cJSON_IsObject(j) && cJSON_GetArraySize(j) == s.n_params, "configuration JSON: %s", json);
    cJSON_Delete(j);
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int ready;
    char path[512];
    if (!ready) {
        fz_file(path, sizeof path, "base.spec", (const uint8_t *)kBase, strlen(kBase));
        fz_file(path, sizeof path, "b2.spec", (const uint8_t *)kB2, strlen(kB2));
        ready = 1;
    }
    fz_file(path, sizeof path, "fuzz.sweep", data, size);
    dg_err err = {{0}};
    if (sw_sweep_load(&s, path, &err) != 0) {
        if (memchr(data, 0, size)) {
            FZ_CHECK(strncmp(err.msg, path, strlen(path)) == 0, "message does not name the file: %s", err.msg);
        } else {
            char *text = fz_text(data, size);
            check_position(err.msg, path, text);
            free(text);
        }
        FZ_CHECK(s.text == NULL && s.base_spec == NULL && s.policy == NULL, "a failed load left memory");
        return 0;
    }
    FZ_CHECK(s.base_spec && s.n_params >= 0 && s.n_params <= SW_MAX_PARAMS, "%d params", s.n_params);
    FZ_CHECK(s.n_rungs >= 1 && s.n_rungs <= SW_MAX_RUNGS && s.rungs[0] >= 1, "%d rungs from %d", s.n_rungs,
             s.rungs[0]);
    for (int k = 1; k < s.n_rungs; k++) FZ_CHECK(s.rungs[k] > s.rungs[k - 1], "rungs not increasing");
    FZ_CHECK(s.strategy == SW_ASHA || s.n_rungs == 1, "%d rungs without ASHA", s.n_rungs);
    FZ_CHECK(s.eta >= 2 && s.eta <= 100, "eta %d", s.eta);
    FZ_CHECK(s.seeds >= 1 && s.seeds <= 100, "seeds %d", s.seeds);
    FZ_CHECK(s.folds == 0 ? s.val_frac > 0 && s.val_frac < 1 : s.folds >= 2 && s.folds <= 1000, "split %g / %d",
             s.val_frac, s.folds);
    FZ_CHECK(s.threads >= 0 && s.threads <= 1024 && s.rows >= 0 && s.rows <= 100000000, "threads %d rows %ld",
             s.threads, s.rows);
    FZ_CHECK(s.until_min >= -1 && s.until_min < 24 * 60, "until %d", s.until_min);
    FZ_CHECK(sw_reps(&s) >= 1, "%d replicates", sw_reps(&s));
    FZ_CHECK(s.n_configs >= 1, "%d configurations", s.n_configs);
    if (s.grid_configs) {
        double n = 1;
        for (int j = 0; j < s.n_params; j++) {
            FZ_CHECK(s.params[j].dist == SW_VALUES && s.params[j].n_values >= 1, "grid parameter %s not a list",
                     s.params[j].name);
            n *= s.params[j].n_values;
        }
        FZ_CHECK(n <= 1000000 && s.n_configs <= n, "%d configurations of a grid of %.0f", s.n_configs, n);
    }
    for (int r = 0; r < sw_reps(&s) && r < 8; r++) {
        int f = sw_rep_fold(&s, r);
        FZ_CHECK(s.folds ? f >= 1 && f <= s.folds : f == 0, "replicate %d fold %d", r, f);
    }
    /* a few configurations: the first, the last, and some between */
    int idx[] = {0, 1, s.n_configs / 2, s.n_configs - 1};
    for (int k = 0; k < 4; k++)
        if (idx[k] < s.n_configs) check_config(idx[k]);
    sw_sweep_free(&s);
    return 0;
}
