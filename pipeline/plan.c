/* pipeline/plan: stages, decisions and time estimates for a preset (see plan.h). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "pipeline/plan.h"

#include <cjson/cJSON.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nn/net.h"
#include "nn/spec.h"
#include "core/dg_dataset.h"
#include "core/dg_file.h"

/* ---- small helpers ---- */

/* An argv under construction: strings live in one buffer. */
typedef struct argb {
    const char *v[PL_MAX_ARGS + 1];
    int n;
    char store[32768];
    size_t used;
    int overflow;
} argb;

static void vpush(argb *a, const char *fmt, va_list ap) {
    if (a->n == PL_MAX_ARGS) {
        a->overflow = 1;
        return;
    }
    int k = vsnprintf(a->store + a->used, sizeof a->store - a->used, fmt, ap);
    if (k < 0 || (size_t)k >= sizeof a->store - a->used) {
        a->overflow = 1;
        return;
    }
    a->v[a->n++] = a->store + a->used;
    a->v[a->n] = NULL;
    a->used += (size_t)k + 1;
}

/* Append one word. */
static void push(argb *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void push(argb *a, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vpush(a, fmt, ap);
    va_end(ap);
}

/* Append an option and its value: "--epochs" "16". */
static void push_opt(argb *a, const char *flag, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void push_opt(argb *a, const char *flag, const char *fmt, ...) {
    push(a, "%s", flag);
    va_list ap;
    va_start(ap, fmt);
    vpush(a, fmt, ap);
    va_end(ap);
}

static void path_join(char *out, size_t n, const char *dir, const char *name) {
    snprintf(out, n, "%s/%s", dir, name);
}

/* Model base name: "experiments/models/deotte.spec" -> "deotte". */
static void model_base(char *out, size_t n, const char *model) {
    const char *b = strrchr(model, '/');
    b = b ? b + 1 : model;
    size_t l = strlen(b);
    if (l > 5 && strcmp(b + l - 5, ".spec") == 0) l -= 5;
    snprintf(out, n, "%.*s", (int)l, b);
}

static int is_name(const char *model) {
    size_t l = strlen(model);
    return !strchr(model, '/') && !(l >= 5 && strcmp(model + l - 5, ".spec") == 0);
}

/* Images in a dataset file, or data lines of a CSV (lines after the header). */
static int count_rows(const char *npy, const char *csv, size_t *n, dg_err *err) {
    dg_dataset ds;
    if (dg_path_exists(npy) && dg_dataset_open(&ds, npy, NULL) == 0) {
        *n = ds.n;
        dg_dataset_close(&ds);
        return 0;
    }
    dg_map m;
    if (dg_map_open(&m, csv, err) != 0) return -1;
    size_t lines = 0;
    for (const unsigned char *p = m.data, *end = m.data + m.size; p < end;) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            lines++;
            break;
        }
        lines += nl > p && !(nl == p + 1 && *p == '\r');
        p = nl + 1;
    }
    dg_map_close(&m);
    *n = lines > 0 ? lines - 1 : 0;
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of "key" over every JSON line of the files matching pattern, only lines whose "model" is model and whose
 * "kind" is kind (a line without "kind" is a predict line), when those are given. A line with "jobs" > 1 counts
 * its value / eff. 0 if none. */
static double median_from(const char *pattern, const char *key, const char *model, const char *kind, double eff) {
    glob_t g;
    double *v = NULL;
    size_t nv = 0, cap = 0;
    if (glob(pattern, 0, NULL, &g) != 0) return 0;
    for (size_t f = 0; f < g.gl_pathc; f++) {
        char *text;
        size_t len;
        if (dg_read_file(g.gl_pathv[f], &text, &len, NULL) != 0) continue;
        for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
            cJSON *o = cJSON_Parse(l);
            cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
            cJSON *mo = cJSON_GetObjectItemCaseSensitive(o, "model"), *ki = cJSON_GetObjectItemCaseSensitive(o, "kind");
            cJSON *jobs = cJSON_GetObjectItemCaseSensitive(o, "jobs");
            const char *line_kind = cJSON_IsString(ki) ? ki->valuestring : "predict";
            int ok = cJSON_IsNumber(x) && x->valuedouble > 0 &&
                     (!model || (cJSON_IsString(mo) && strcmp(mo->valuestring, model) == 0)) &&
                     (!kind || strcmp(line_kind, kind) == 0);
            if (ok && nv == cap) {
                cap = cap ? 2 * cap : 64;
                double *nvp = realloc(v, cap * sizeof *v);
                if (!nvp) ok = 0;
                else v = nvp;
            }
            if (ok) v[nv++] = x->valuedouble / (cJSON_IsNumber(jobs) && jobs->valuedouble > 1 ? eff : 1);
            cJSON_Delete(o);
        }
        free(text);
    }
    globfree(&g);
    double med = 0;
    if (nv) {
        qsort(v, nv, sizeof *v, cmp_double);
        med = nv % 2 ? v[nv / 2] : (v[nv / 2 - 1] + v[nv / 2]) / 2;
    }
    free(v);
    return med;
}

static size_t count_lines(const char *path) {
    char *text;
    size_t len, n = 0;
    if (dg_read_file(path, &text, &len, NULL) != 0) return 0;
    for (size_t i = 0; i < len; i++) n += text[i] == '\n';
    free(text);
    return n;
}

/* ---- speeds ---- */

static int speeds_for(pl_plan *plan, pl_member_run *r, dg_err *err) {
    char base[128], pattern[2048];
    model_base(base, sizeof base, r->member->model);
    double eff = plan->preset->jobs_efficiency;
    snprintf(pattern, sizeof pattern, "%s/../*/timings.jsonl", plan->o.work);
    double tr = median_from(pattern, "images_per_s", base, "train", eff);
    double pr = median_from(pattern, "images_per_s", base, "predict", eff);
    snprintf(pattern, sizeof pattern, "%s/../*/members/%s-s*/metrics.jsonl", plan->o.work, base);
    if (tr <= 0) tr = median_from(pattern, "images_per_s", NULL, NULL, eff);
    const pl_speed *conf = NULL;
    for (int i = 0; i < plan->preset->n_speeds; i++)
        if (!strcmp(plan->preset->speeds[i].model, base) || !strcmp(plan->preset->speeds[i].model, r->member->model))
            conf = &plan->preset->speeds[i];
    const char *from_tr = "measured", *from_pr = "measured";
    if (tr <= 0 && conf && conf->train_ips > 0) {
        tr = conf->train_ips;
        from_tr = "preset";
    }
    if (pr <= 0 && conf && conf->predict_ips > 0) {
        pr = conf->predict_ips;
        from_pr = "preset";
    }
    if (tr <= 0 || pr <= 0) {
        nn_spec spec;
        nn_net *net = NULL;
        if (nn_spec_load(&spec, r->spec_path, err) != 0) return -1;
        if (nn_net_create(&net, &spec, 1, err) != 0) {
            nn_spec_free(&spec);
            return -1;
        }
        double flops = (double)nn_net_flops(net);
        nn_net_free(net);
        nn_spec_free(&spec);
        if (flops < 1) flops = 1;
        if (tr <= 0) {
            tr = PL_TRAIN_GFLOPS * 1e9 / (3 * flops);
            from_tr = "FLOPs guess";
        }
        if (pr <= 0) {
            pr = PL_PREDICT_GFLOPS * 1e9 / flops;
            from_pr = "FLOPs guess";
        }
    }
    r->train_ips = tr;
    r->predict_ips = pr;
    if (!strcmp(from_tr, from_pr)) snprintf(r->speed_from, sizeof r->speed_from, "%s", from_tr);
    else snprintf(r->speed_from, sizeof r->speed_from, "train %s, predict %s", from_tr, from_pr);
    return 0;
}

/* ---- building: one function per stage kind ---- */

/* What the stage builders share. */
typedef struct builder {
    pl_plan *plan;
    const pl_preset *p;
    const pl_opts *o;
    dg_err *err;
    char threads[16]; /* every stage's --threads until pl_plan_decide sets the member stages' */
    char train_csv[1100], test_csv[1100], train_npy[1100], test_npy[1100], sample[1100];
    char train_used[1100], test_used[1100]; /* what the members read: the .npy files, or the augmented ones */
    int have_train_csv, have_test_csv, have_sample;
    argb a;                                 /* the command of the step being built */
} builder;

/* Start a step's command: BIN_DIR/exe. */
static argb *command(builder *b, const char *exe) {
    memset(&b->a, 0, sizeof b->a);
    push(&b->a, "%s/%s", b->o->bin_dir, exe);
    return &b->a;
}

/* Append the step with b->a as its command, reading ins and writing outs (NULL-terminated lists; an empty string
 * is left out, for files that only some presets have). NULL on error. */
static pl_step *add_step(builder *b, pl_kind kind, int run, const char *name, const char *const *ins,
                         const char *const *outs) {
    pl_plan *plan = b->plan;
    if (b->a.overflow) {
        dg_fail(b->err, "%s: command too long", name);
        return NULL;
    }
    pl_step *s = &plan->steps[plan->n_steps];
    memset(s, 0, sizeof *s);
    char stamp[1400];
    snprintf(stamp, sizeof stamp, "%s/stamps/%s.stamp", plan->o.work, name);
    if (pl_stage_init(&s->stage, name, stamp, b->a.v, b->err) != 0) return NULL;
    s->kind = kind;
    s->run = run;
    plan->n_steps++;
    for (int i = 0; ins && ins[i]; i++)
        if (ins[i][0] && pl_stage_input(&s->stage, ins[i], b->err) != 0) return NULL;
    for (int i = 0; outs && outs[i]; i++)
        if (outs[i][0] && pl_stage_output(&s->stage, outs[i], b->err) != 0) return NULL;
    return s;
}

/* The hold-out or fold sizes from n_train. */
static void split_sizes(pl_plan *plan) {
    const pl_preset *p = plan->preset;
    if (p->folds) plan->n_val = plan->n_train / (size_t)p->folds;
    else plan->n_val = (size_t)(p->val_frac * (double)plan->n_train + 0.5);
    plan->n_fit = plan->n_train - plan->n_val;
}

/* The data files, their sizes and the split. */
static int plan_data(builder *b) {
    const pl_opts *o = b->o;
    pl_plan *plan = b->plan;
    path_join(b->train_csv, sizeof b->train_csv, o->data_dir, "train.csv");
    path_join(b->test_csv, sizeof b->test_csv, o->data_dir, "test.csv");
    path_join(b->train_npy, sizeof b->train_npy, o->data_dir, "train.npy");
    path_join(b->test_npy, sizeof b->test_npy, o->data_dir, "test.npy");
    path_join(b->sample, sizeof b->sample, o->data_dir, "sample_submission.csv");
    snprintf(b->train_used, sizeof b->train_used, "%s", b->train_npy);
    snprintf(b->test_used, sizeof b->test_used, "%s", b->test_npy);
    b->have_train_csv = dg_path_exists(b->train_csv);
    b->have_test_csv = dg_path_exists(b->test_csv);
    b->have_sample = dg_path_exists(b->sample);
    if (!b->have_train_csv && !dg_path_exists(b->train_npy))
        return dg_fail(b->err, "%s: not found (nor %s): unzip the competition's train.csv, test.csv and "
                               "sample_submission.csv into %s", b->train_csv, b->train_npy, o->data_dir);
    if (!b->have_test_csv && !dg_path_exists(b->test_npy))
        return dg_fail(b->err, "%s: not found (nor %s): unzip the competition files into %s", b->test_csv,
                       b->test_npy, o->data_dir);
    if (count_rows(b->train_npy, b->train_csv, &plan->n_train, b->err) != 0) return -1;
    if (count_rows(b->test_npy, b->test_csv, &plan->n_test, b->err) != 0) return -1;
    if (plan->n_train < 10 || plan->n_test < 1)
        return dg_fail(b->err, "%s: %zu training and %zu test images: too few", o->data_dir, plan->n_train,
                       plan->n_test);
    split_sizes(plan);
    return 0;
}

/* ingest-train, ingest-test: CSV -> .npy, for each CSV there is. */
static int add_ingest(builder *b) {
    for (int t = 0; t < 2; t++) {
        if (!(t == 0 ? b->have_train_csv : b->have_test_csv)) continue;
        const char *csv = t == 0 ? b->train_csv : b->test_csv, *npy = t == 0 ? b->train_npy : b->test_npy;
        argb *a = command(b, "digits-ingest");
        push_opt(a, "--expect", "%s", t == 0 ? "train" : "test");
        push_opt(a, "--threads", "%s", b->threads);
        push_opt(a, "-o", "%s", npy);
        push(a, "%s", csv);
        if (!add_step(b, PL_INGEST, -1, t == 0 ? "ingest-train" : "ingest-test", (const char *[]){csv, NULL},
                      (const char *[]){npy, NULL}))
            return -1;
    }
    return 0;
}

/* augment-train[, augment-test]: the preset's offline augmentation; the members then read its output, and the
 * training set grows to (copies + originals) x n_train. */
static int add_augment(builder *b) {
    const pl_augment *ag = &b->p->augment;
    pl_plan *plan = b->plan;
    if (!ag->on) return 0;
    for (int t = 0; t < (ag->both ? 2 : 1); t++) {
        char *used = t == 0 ? b->train_used : b->test_used;
        const char *src = t == 0 ? b->train_npy : b->test_npy;
        snprintf(used, sizeof b->train_used, "%s/data/%s-aug.npy", b->o->work, t == 0 ? "train" : "test");
        argb *a = command(b, "digits-augment");
        push_opt(a, "--data", "%s", src);
        push_opt(a, "--out", "%s", used);
        push_opt(a, "--policy", "%s", ag->policy);
        push_opt(a, "--copies", "%d", ag->copies);
        if (ag->originals) push(a, "--keep-originals");
        push_opt(a, "--seed", "%llu", (unsigned long long)ag->seed);
        push_opt(a, "--threads", "%s", b->threads);
        pl_step *s = add_step(b, PL_AUGMENT, -1, t == 0 ? "augment-train" : "augment-test",
                              (const char *[]){src, strchr(ag->policy, '/') ? ag->policy : "", NULL},
                              (const char *[]){used, NULL});
        if (!s) return -1;
        s->images = (t == 0 ? plan->n_train : plan->n_test) * (size_t)ag->copies;
    }
    plan->n_train *= (size_t)(ag->copies + ag->originals);
    split_sizes(plan);
    return 0;
}

/* A member's spec file (absolute, so that stamps do not depend on the working directory) and its epochs. */
static int member_spec(builder *b, const pl_member *m, char *spec_path, size_t n, int *spec_epochs) {
    const pl_preset *p = b->p;
    if (is_name(m->model)) {
        if (nn_spec_find(m->model, spec_path, n, b->err) != 0) return dg_err_prefix(b->err, "%s:%d", p->file, m->line);
    } else {
        snprintf(spec_path, n, "%s", m->model);
    }
    char abs_path[PATH_MAX];
    if (realpath(spec_path, abs_path)) snprintf(spec_path, n, "%s", abs_path);
    nn_spec spec;
    if (nn_spec_load(&spec, spec_path, b->err) != 0)
        return dg_err_prefix(b->err, "%s:%d: model %s", p->file, m->line, m->model);
    *spec_epochs = spec.hyper.epochs;
    nn_spec_free(&spec);
    return 0;
}

/* The next run: member m on fold k (1..K, or 1 without folds), with its planning speeds. */
static pl_member_run *new_run(builder *b, const pl_member *m, int k, const char *spec_path, int spec_epochs) {
    pl_plan *plan = b->plan;
    const pl_preset *p = b->p;
    pl_member_run *r = &plan->runs[plan->n_runs++];
    char base[128];
    model_base(base, sizeof base, m->model);
    if (p->folds) snprintf(r->name, sizeof r->name, "%s-s%llu-f%d", base, (unsigned long long)m->seed, k);
    else snprintf(r->name, sizeof r->name, "%s-s%llu", base, (unsigned long long)m->seed);
    snprintf(r->run_dir, sizeof r->run_dir, "%s/members/%s", b->o->work, r->name);
    snprintf(r->pred, sizeof r->pred, "%s/preds/%s.npy", b->o->work, r->name);
    r->member = m;
    r->fold = p->folds ? k : 0;
    r->epochs = m->epochs ? m->epochs : spec_epochs;
    snprintf(r->spec_path, sizeof r->spec_path, "%s", spec_path);
    return speeds_for(plan, r, b->err) == 0 ? r : NULL;
}

/* train-NAME: digits-train of run ri into its run directory; resumable from its checkpoint. */
static int add_train(builder *b, int ri) {
    const pl_preset *p = b->p;
    const pl_member_run *r = &b->plan->runs[ri];
    const pl_member *m = r->member;
    argb *a = command(b, "digits-train");
    push_opt(a, "--data", "%s", b->train_used);
    push_opt(a, "--model", "%s", m->model);
    push_opt(a, "--run", "%s", r->run_dir);
    push_opt(a, "--seed", "%llu", (unsigned long long)m->seed);
    push_opt(a, "--split-seed", "%llu", (unsigned long long)p->split_seed);
    if (p->folds) {
        push_opt(a, "--folds", "%d", p->folds);
        push_opt(a, "--fold", "%d", r->fold);
    } else {
        push_opt(a, "--val-frac", "%.10g", p->val_frac);
    }
    push_opt(a, "--epochs", "%d", r->epochs);
    if (m->batch) push_opt(a, "--batch", "%d", m->batch);
    if (m->lr > 0) push_opt(a, "--lr", "%.10g", m->lr);
    if (m->augment[0]) push_opt(a, "--augment", "%s", m->augment);
    push_opt(a, "--threads", "%s", b->threads);
    char name[300], out[4][1500];
    static const char *const outs[] = {"result.json", "model.safetensors", "val_pred.npy", "val_ids.npy"};
    for (int i = 0; i < 4; i++) path_join(out[i], sizeof out[i], r->run_dir, outs[i]);
    snprintf(name, sizeof name, "train-%s", r->name);
    const char *policy_file = strchr(m->augment, '/') ? m->augment : "";
    pl_step *s = add_step(b, PL_TRAIN, ri, name, (const char *[]){b->train_used, r->spec_path, policy_file, NULL},
                          (const char *[]){out[0], out[1], out[2], out[3], NULL});
    if (!s) return -1;
    snprintf(s->stage.own_dir, sizeof s->stage.own_dir, "%s", r->run_dir);
    path_join(s->stage.done_file, sizeof s->stage.done_file, r->run_dir, "result.json");
    path_join(s->stage.resume_file, sizeof s->stage.resume_file, r->run_dir, "checkpoint.ckpt");
    snprintf(s->stage.resume_arg, sizeof s->stage.resume_arg, "--resume");
    s->images = (size_t)r->epochs * b->plan->n_fit;
    return 0;
}

/* A digits-predict step of run ri's model with the preset's TTA: on rows `data` (all of them, or those `ids` lists)
 * into `out`, n_rows images; named PREFIX-NAME. */
static int add_predict_step(builder *b, int ri, const char *prefix, const char *data, const char *ids,
                            const char *out, size_t n_rows) {
    const pl_member_run *r = &b->plan->runs[ri];
    argb *a = command(b, "digits-predict");
    push_opt(a, "--data", "%s", data);
    if (ids) push_opt(a, "--ids", "%s", ids);
    push_opt(a, "-o", "%s", out);
    push_opt(a, "--tta", "%d", b->p->tta);
    push_opt(a, "--threads", "%s", b->threads);
    push(a, "%s", r->run_dir);
    char name[300], model[1500];
    snprintf(name, sizeof name, "%s-%s", prefix, r->name);
    path_join(model, sizeof model, r->run_dir, "model.safetensors");
    pl_step *s = add_step(b, PL_PREDICT, ri, name, (const char *[]){data, model, ids, NULL}, (const char *[]){out, NULL});
    if (!s) return -1;
    s->images = n_rows * (size_t)b->p->tta;
    return 0;
}

/* The file in a run directory with its validation probabilities as the ensemble's estimate reads them: with TTA,
 * the views the test rows get (predict-val-NAME), so that the estimate is of the submission's recipe. */
static void val_pred_name(const pl_preset *p, char *buf, size_t n) {
    if (p->tta > 1) snprintf(buf, n, "val_pred_tta%d.npy", p->tta);
    else snprintf(buf, n, "val_pred.npy");
}

/* predict-NAME on the test set, and with TTA predict-val-NAME on the run's own validation rows. */
static int add_predicts(builder *b, int ri) {
    const pl_member_run *r = &b->plan->runs[ri];
    if (add_predict_step(b, ri, "predict", b->test_used, NULL, r->pred, b->plan->n_test) != 0) return -1;
    if (b->p->tta <= 1) return 0;
    char file[64], out[1500], ids[1500];
    val_pred_name(b->p, file, sizeof file);
    path_join(out, sizeof out, r->run_dir, file);
    path_join(ids, sizeof ids, r->run_dir, "val_ids.npy");
    return add_predict_step(b, ri, "predict-val", b->train_used, ids, out, b->plan->n_val);
}

/* A member's runs (one per fold), each a train step then a predict step (and with TTA, one on its validation
 * rows). */
static int add_member(builder *b, const pl_member *m) {
    char spec_path[PATH_MAX];
    int spec_epochs = 0;
    if (member_spec(b, m, spec_path, sizeof spec_path, &spec_epochs) != 0) return -1;
    for (int k = 1; k <= (b->p->folds ? b->p->folds : 1); k++) {
        if (!new_run(b, m, k, spec_path, spec_epochs)) return -1;
        if (add_train(b, b->plan->n_runs - 1) != 0 || add_predicts(b, b->plan->n_runs - 1) != 0) return -1;
    }
    return 0;
}

/* ensemble: digits-ensemble of every run's validation and test predictions -> the submission and its manifest. */
static int add_ensemble(builder *b) {
    pl_plan *plan = b->plan;
    argb *a = command(b, "digits-ensemble");
    push_opt(a, "--method", "%s", pl_ensemble_name(b->p->ensemble));
    push_opt(a, "--train", "%s", b->train_used);
    char val_pred[64];
    val_pred_name(b->p, val_pred, sizeof val_pred);
    if (b->p->tta > 1) push_opt(a, "--val-pred", "%s", val_pred);
    if (b->have_sample) push_opt(a, "--sample", "%s", b->sample);
    else push_opt(a, "--rows", "%zu", plan->n_test);
    push_opt(a, "-o", "%s", b->o->output);
    for (int i = 0; i < plan->n_runs; i++) push(a, "%s=%s", plan->runs[i].run_dir, plan->runs[i].pred);
    char manifest[1100];
    pl_manifest_path(manifest, sizeof manifest, b->o->output);
    pl_step *s = add_step(b, PL_ENSEMBLE, -1, "ensemble",
                          (const char *[]){b->train_used, b->have_sample ? b->sample : "", NULL}, NULL);
    if (!s) return -1;
    for (int i = 0; i < plan->n_runs; i++) {
        const char *const ins[] = {"result.json", val_pred, "val_ids.npy"};
        char f[1500];
        for (int j = 0; j < 3; j++) {
            path_join(f, sizeof f, plan->runs[i].run_dir, ins[j]);
            if (pl_stage_input(&s->stage, f, b->err) != 0) return -1;
        }
        if (pl_stage_input(&s->stage, plan->runs[i].pred, b->err) != 0) return -1;
    }
    if (pl_stage_output(&s->stage, b->o->output, b->err) != 0 || pl_stage_output(&s->stage, manifest, b->err) != 0)
        return -1;
    return 0;
}

void pl_manifest_path(char *out, size_t n, const char *output) {
    size_t ol = strlen(output);
    int csv = ol > 4 && strcmp(output + ol - 4, ".csv") == 0;
    snprintf(out, n, "%.*s.manifest.json", (int)(csv ? ol - 4 : ol), output);
}

int pl_plan_build(pl_plan *plan, const pl_preset *p, const pl_opts *o, dg_err *err) {
    memset(plan, 0, sizeof *plan);
    plan->o = *o;
    plan->preset = p;
    builder *b = calloc(1, sizeof *b);
    if (!b) return dg_fail(err, "out of memory");
    b->plan = plan;
    b->p = p;
    b->o = o;
    b->err = err;
    snprintf(b->threads, sizeof b->threads, "%d", o->threads);
    int rc = -1;
    if (plan_data(b) != 0) goto done;
    int n_runs = p->n_members * (p->folds ? p->folds : 1);
    plan->runs = calloc((size_t)n_runs, sizeof *plan->runs);
    /* 2 ingest, 2 augment, ensemble; per run train, predict and with TTA predict-val */
    plan->steps = calloc((size_t)(5 + 3 * n_runs), sizeof *plan->steps);
    if (!plan->runs || !plan->steps) {
        dg_fail(err, "out of memory");
        goto done;
    }
    if (add_ingest(b) != 0 || add_augment(b) != 0) goto done;
    for (int mi = 0; mi < p->n_members; mi++)
        if (add_member(b, &p->members[mi]) != 0) goto done;
    rc = add_ensemble(b);
done:
    free(b);
    return rc;
}

/* ---- deciding and estimating ---- */

static int written_by_running_step(const pl_plan *plan, int upto, const char *path, int *by) {
    for (int i = 0; i < upto; i++) {
        const pl_step *s = &plan->steps[i];
        if (s->action == PL_SKIP) continue;
        for (int j = 0; j < s->stage.n_out; j++)
            if (!strcmp(s->stage.outputs[j], path)) {
                *by = i;
                return 1;
            }
    }
    return 0;
}

/* Replace the value after "--threads" in a stage's command. */
static int set_threads(pl_stage *st, int threads, dg_err *err) {
    for (int i = 1; i + 1 < st->argc; i++) {
        if (strcmp(st->argv[i], "--threads") != 0) continue;
        char v[16];
        snprintf(v, sizeof v, "%d", threads);
        char *d = strdup(v);
        if (!d) return dg_fail(err, "out of memory");
        free(st->argv[i + 1]);
        st->argv[i + 1] = d;
    }
    return 0;
}

/* After the decisions: jobs, the member stages' threads, their estimates as they will run, and the total. */
static int plan_jobs(pl_plan *plan, dg_err *err) {
    int busy = 0; /* members with a stage to run */
    for (int r = 0; r < plan->n_runs; r++) {
        int work = 0;
        for (int i = 0; i < plan->n_steps; i++) {
            const pl_step *s = &plan->steps[i];
            work |= s->run == r && (s->action == PL_RUN || s->action == PL_RESUME);
        }
        busy += work;
    }
    int T = plan->o.threads;
    plan->jobs = plan->o.jobs < busy ? plan->o.jobs : busy;
    if (plan->jobs < 1) plan->jobs = 1;
    plan->job_threads = T;
    if (plan->jobs > 1) plan->job_threads = T / plan->jobs > 1 ? T / plan->jobs : 1;
    int lanes = plan->jobs < T ? plan->jobs : T;
    double speedup = lanes > 1 ? lanes * plan->preset->jobs_efficiency : 1;
    plan->job_slowdown = plan->jobs / speedup;
    double *lane_end = calloc((size_t)plan->jobs, sizeof *lane_end);
    if (!lane_end) return dg_fail(err, "out of memory");
    plan->total_s = 0;
    for (int i = 0; i < plan->n_steps; i++) {
        pl_step *s = &plan->steps[i];
        if (s->run < 0) plan->total_s += s->estimate_s;
        else if (set_threads(&s->stage, plan->job_threads, err) != 0) {
            free(lane_end);
            return -1;
        }
    }
    for (int r = 0; r < plan->n_runs; r++) {
        double chain = 0;
        for (int i = 0; i < plan->n_steps; i++) {
            pl_step *s = &plan->steps[i];
            if (s->run != r) continue;
            s->estimate_s *= plan->job_slowdown;
            chain += s->estimate_s;
        }
        int first_free = 0;
        for (int l = 1; l < plan->jobs; l++)
            if (lane_end[l] < lane_end[first_free]) first_free = l;
        lane_end[first_free] += chain;
    }
    double members = 0;
    for (int l = 0; l < plan->jobs; l++) members = lane_end[l] > members ? lane_end[l] : members;
    plan->total_s += members;
    for (int i = 0; i < plan->n_steps; i++) plan->steps[i].stage.estimate_s = plan->steps[i].estimate_s;
    free(lane_end);
    return 0;
}

int pl_plan_decide(pl_plan *plan, dg_err *err) {
    for (int i = 0; i < plan->n_steps; i++) {
        pl_step *s = &plan->steps[i];
        if (pl_stage_decide(&s->stage, &s->action, s->why, sizeof s->why, err) != 0) return -1;
        if (s->action == PL_SKIP || s->action == PL_FINISH) {
            int by;
            for (int j = 0; j < s->stage.n_in; j++) {
                if (written_by_running_step(plan, i, s->stage.inputs[j], &by)) {
                    s->action = PL_RUN;
                    snprintf(s->why, sizeof s->why, "after %s", plan->steps[by].stage.name);
                    break;
                }
            }
        }
        double est = 0;
        const pl_member_run *r = s->run >= 0 ? &plan->runs[s->run] : NULL;
        if (s->action == PL_RUN || s->action == PL_RESUME) {
            switch (s->kind) {
            case PL_INGEST: {
                struct stat st;
                est = 0.5 + (stat(s->stage.inputs[0], &st) == 0 ? (double)st.st_size / 300e6 : 0);
                break;
            }
            case PL_TRAIN: {
                int epochs = r->epochs;
                if (s->action == PL_RESUME) {
                    char mpath[1500];
                    snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", r->run_dir);
                    size_t done = count_lines(mpath);
                    epochs = done >= (size_t)epochs ? 0 : epochs - (int)done;
                }
                est = 2 + epochs * ((double)plan->n_fit / r->train_ips + (double)plan->n_val / r->predict_ips);
                break;
            }
            case PL_PREDICT: est = 1 + (double)s->images / r->predict_ips; break;
            case PL_AUGMENT: est = 1 + (double)s->images / PL_AUGMENT_IPS; break;
            case PL_ENSEMBLE: est = 1; break;
            }
        }
        s->estimate_s = est;
    }
    return plan_jobs(plan, err);
}

void pl_format_seconds(char *buf, size_t n, double s) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t % 3600 + 30) / 60 > 59 ? 59 : (t % 3600 + 30) / 60);
    else if (t >= 60) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, n, "%lds", t);
}

void pl_plan_print(const pl_plan *plan, FILE *out) {
    const pl_preset *p = plan->preset;
    fprintf(out, "preset   %s (%s)\n", p->name, p->file);
    fprintf(out, "data     %s: %zu training images, %zu test images\n", plan->o.data_dir, plan->n_train,
            plan->n_test);
    if (p->folds)
        fprintf(out, "split    %d folds (split-seed %llu): each run fits %zu, validates %zu\n", p->folds,
                (unsigned long long)p->split_seed, plan->n_fit, plan->n_val);
    else
        fprintf(out, "split    hold-out %g (split-seed %llu): fit %zu, validate %zu\n", p->val_frac,
                (unsigned long long)p->split_seed, plan->n_fit, plan->n_val);
    if (p->augment.on)
        fprintf(out, "augment  offline: policy %s, %d copies%s, applied to %s%s\n", p->augment.policy,
                p->augment.copies,
                p->augment.originals ? " + originals" : "", p->augment.both ? "train and test" : "train",
                p->augment.both ? "" : " (validation estimate optimistic: copies of validation images are trained on)");
    fprintf(out, "members  %d model(s) x %d fold(s) = %d run(s); tta %d; ensemble %s\n", p->n_members,
            p->folds ? p->folds : 1, plan->n_runs, p->tta, pl_ensemble_name(p->ensemble));
    fprintf(out, "work     %s; output %s; %d thread(s)\n", plan->o.work, plan->o.output, plan->o.threads);
    if (plan->jobs > 1)
        fprintf(out, "jobs     %d members at a time, %d thread(s) each: a member stage takes x%.2f its time alone "
                     "(jobs_efficiency %.2f)\n", plan->jobs, plan->job_threads, plan->job_slowdown,
                p->jobs_efficiency);
    else
        fprintf(out, "jobs     1: members one after another, %d thread(s)%s\n", plan->job_threads,
                plan->o.jobs > 1 ? " (more jobs asked, but at most one member has work)" : "");
    fprintf(out, "\n");
    fprintf(out, "  %-28s %-7s %9s  %s\n", "stage", "action", "estimate", "why / what");
    for (int i = 0; i < plan->n_steps; i++) {
        const pl_step *s = &plan->steps[i];
        char est[32] = "-";
        if (s->estimate_s > 0) pl_format_seconds(est, sizeof est, s->estimate_s);
        char what[512] = "";
        if (s->kind == PL_TRAIN) {
            const pl_member_run *r = &plan->runs[s->run];
            char fold[32] = "";
            if (r->fold) snprintf(fold, sizeof fold, ", fold %d/%d", r->fold, p->folds);
            snprintf(what, sizeof what, " [%s seed %llu%s, %d epochs, augment %s]", r->member->model,
                     (unsigned long long)r->member->seed, fold, r->epochs,
                     r->member->augment[0] ? r->member->augment : "(spec)");
        }
        fprintf(out, "  %-28s %-7s %9s  %s%s\n", s->stage.name, pl_action_name(s->action), est, s->why, what);
    }
    char tot[32];
    pl_format_seconds(tot, sizeof tot, plan->total_s);
    fprintf(out, "  %-28s %-7s %9s", plan->jobs > 1 ? "total (members in parallel)" : "total", "", tot);
    if (p->budget_minutes > 0) {
        char b[32];
        pl_format_seconds(b, sizeof b, p->budget_minutes * 60);
        fprintf(out, "  budget %s: %s", b, plan->total_s <= p->budget_minutes * 60 ? "fits" : "OVER BUDGET");
    }
    fprintf(out, "\n\nspeeds (images/s of one stage alone on this machine; see docs/pipeline.md):\n");
    for (int i = 0; i < plan->n_runs; i++) {
        int dup = 0;
        for (int j = 0; j < i && !dup; j++) dup = !strcmp(plan->runs[j].member->model, plan->runs[i].member->model);
        if (dup) continue;
        const pl_member_run *r = &plan->runs[i];
        char ep[32], ep_jobs[64] = "";
        double epoch_s = (double)plan->n_fit / r->train_ips + (double)plan->n_val / r->predict_ips;
        pl_format_seconds(ep, sizeof ep, epoch_s);
        if (plan->jobs > 1 && plan->job_slowdown > 1) { /* what the members' own epoch lines will show */
            char side[32];
            pl_format_seconds(side, sizeof side, epoch_s * plan->job_slowdown);
            snprintf(ep_jobs, sizeof ep_jobs, ", %s with %d side by side", side, plan->jobs);
        }
        fprintf(out, "  %-12s train %8.0f  predict %8.0f  (%s): %s per epoch alone%s\n", r->member->model,
                r->train_ips, r->predict_ips, r->speed_from, ep, ep_jobs);
    }
}

int pl_plan_record_timing(const pl_plan *plan, const pl_step *step, double seconds, dg_err *err) {
    if ((step->kind != PL_PREDICT && step->kind != PL_TRAIN) || step->run < 0 || seconds <= 0) return 0;
    const pl_member_run *r = &plan->runs[step->run];
    double ips = (double)step->images / seconds;
    if (step->kind == PL_TRAIN) {
        char metrics[1500];
        snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", r->run_dir);
        ips = median_from(metrics, "images_per_s", NULL, NULL, 1);
        if (ips <= 0) return 0;
    }
    char path[1200], base[128];
    snprintf(path, sizeof path, "%s/timings.jsonl", plan->o.work);
    model_base(base, sizeof base, r->member->model);
    char *old = NULL;
    size_t n = 0;
    if (dg_path_exists(path) && dg_read_file(path, &old, &n, err) != 0) return -1;
    size_t cap = n + 512;
    char *buf = malloc(cap);
    if (!buf) {
        free(old);
        return dg_fail(err, "out of memory");
    }
    int k = snprintf(buf, cap, "%s{\"stage\":\"%s\",\"kind\":\"%s\",\"model\":\"%s\",\"images\":%zu,\"seconds\":%.3f,"
                               "\"images_per_s\":%.1f,\"threads\":%d,\"jobs\":%d}\n",
                     old ? old : "", step->stage.name, step->kind == PL_TRAIN ? "train" : "predict", base, step->images,
                     seconds, ips, plan->job_threads, plan->jobs);
    free(old);
    int rc = dg_write_file_atomic(path, buf, (size_t)k, err);
    free(buf);
    return rc;
}

void pl_plan_free(pl_plan *plan) {
    for (int i = 0; plan->steps && i < plan->n_steps; i++) pl_stage_free(&plan->steps[i].stage);
    free(plan->steps);
    free(plan->runs);
    memset(plan, 0, sizeof *plan);
}
