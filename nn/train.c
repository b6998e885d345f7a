/* nn/train: the training loop, run directory, metrics, checkpoints, early stopping and resume (see nn/train.h). */
#include "nn/train.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "augment/augment.h"
#include "nn/checkpoint.h"
#include "nn/ema.h"
#include "nn/model.h"
#include "nn/net.h"
#include "nn/optim.h"
#include "nn/schedule.h"
#include "nn/split.h"
#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "core/dg_npy.h"
#include "core/dg_progress.h"
#include "core/dg_rng.h"
#include "core/dg_tfevents.h"
#include "core/dg_cli.h"

/* The stream of --mix rows (core/dg_rng purposes from DG_RNG_USER on are free; nn/gan.c uses + 4..6). */
#define NN_RNG_MIX (DG_RNG_USER + 8)

void nn_train_opts_defaults(nn_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->split_seed = 1;
    o->val_frac = 0.1;
    o->ema = -1;
    o->log = stderr;
}

int nn_train_spec_fits(const nn_spec *spec, dg_err *err) {
    if (spec->in_c != 1 || spec->in_h != DG_SIDE || spec->in_w != DG_SIDE)
        return dg_fail(err, "%s: input %dx%dx%d, but the dataset holds 1x28x28 images", spec->file, spec->in_c,
                       spec->in_h, spec->in_w),
               NN_TRAIN_USAGE;
    if (spec->output != NN_OUT_CLASSES)
        return dg_fail(err, "%s: 'output %s' is a GAN's network; digits-train trains classifiers (10 class logits)",
                       spec->file, spec->output == NN_OUT_LOGIT ? "logit" : "image"),
               NN_TRAIN_USAGE;
    return 0;
}

int nn_train_spec(nn_spec *spec, const nn_train_opts *o, dg_err *err) {
    nn_spec raw;
    if (nn_spec_load(&raw, o->model, err) != 0) return -1;
    nn_hyper *h = &raw.hyper;
    if (o->epochs) h->epochs = o->epochs;
    if (o->batch) h->batch = o->batch;
    if (o->lr > 0) h->lr = o->lr;
    if (o->ema >= 0) h->ema = o->ema;
    if (o->augment) {
        if (strlen(o->augment) >= sizeof h->augment) {
            nn_spec_free(&raw);
            return dg_fail(err, "--augment: '%.40s...' is too long", o->augment), NN_TRAIN_USAGE;
        }
        strcpy(h->augment, strcmp(o->augment, "none") == 0 ? "" : o->augment);
    }
    char *text = nn_spec_format(&raw);
    if (!text) {
        nn_spec_free(&raw);
        return dg_fail(err, "%s: out of memory", raw.file);
    }
    /* Re-parse: the overrides go through the same range checks as the file, and spec->text is the resolved text. */
    char fname[300];
    snprintf(fname, sizeof fname, "%s (with command-line overrides)", raw.file);
    int rc = nn_spec_parse(spec, text, fname, err);
    free(text);
    nn_spec_free(&raw);
    return rc == 0 ? 0 : NN_TRAIN_USAGE;
}

/* ---- small helpers ---- */

typedef struct run_paths {
    char spec[1100], metrics[1100], ckpt[1100], model[1100], val_pred[1100], val_ids[1100], result[1100];
    char invocation[1100], val_pred_live[1100];
} run_paths;

static void make_paths(run_paths *p, const char *dir) {
    snprintf(p->spec, sizeof p->spec, "%s/spec.txt", dir);
    snprintf(p->metrics, sizeof p->metrics, "%s/metrics.jsonl", dir);
    snprintf(p->ckpt, sizeof p->ckpt, "%s/checkpoint.ckpt", dir);
    snprintf(p->model, sizeof p->model, "%s/model.safetensors", dir);
    snprintf(p->val_pred, sizeof p->val_pred, "%s/val_pred.npy", dir);
    snprintf(p->val_ids, sizeof p->val_ids, "%s/val_ids.npy", dir);
    snprintf(p->val_pred_live, sizeof p->val_pred_live, "%s/val_pred_live.npy", dir);
    snprintf(p->result, sizeof p->result, "%s/result.json", dir);
    snprintf(p->invocation, sizeof p->invocation, "%s/invocation.json", dir);
}

/* Append printf output to a malloc'd string *s (NULL to start). Returns -1 on out of memory. */
static int append(char **s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int append(char **s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    size_t old = *s ? strlen(*s) : 0;
    char *ns = n >= 0 ? realloc(*s, old + (size_t)n + 1) : NULL;
    if (!ns) return -1;
    va_start(ap, fmt);
    vsnprintf(ns + old, (size_t)n + 1, fmt, ap);
    va_end(ap);
    *s = ns;
    return 0;
}

static void logf_(FILE *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(FILE *log, const char *fmt, ...) {
    if (!log) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(log, fmt, ap);
    va_end(ap);
    fflush(log);
}

/* x (n, 28, 28, 1) = images of rows ids[0..n) / 255, augmented if policy is set. An id >= ds->n is row
 * id - ds->n of mix. */
static void load_batch(float *x, uint8_t *y, const uint8_t **src, const dg_dataset *ds, const uint32_t *ids, int n,
                       const aug_policy *policy, uint64_t seed, uint32_t epoch, const dg_dataset *mix) {
    for (int i = 0; i < n; i++) {
        const dg_dataset *d = ids[i] < ds->n ? ds : mix;
        size_t row = ids[i] < ds->n ? ids[i] : ids[i] - ds->n;
        src[i] = dg_dataset_image(d, row);
        y[i] = (uint8_t)dg_dataset_label(d, row);
    }
    if (policy) {
        aug_batch_f32(policy, seed, epoch, ids, src, x, n);
        return;
    }
    for (int i = 0; i < n; i++)
        for (int p = 0; p < DG_PIXELS; p++) x[(size_t)i * DG_PIXELS + p] = (float)src[i][p] / 255.0f;
}

/* Inference over rows ids (n) in batches of B: mean loss, accuracy, and probabilities into probs (n, 10) if set. */
static void evaluate(nn_net *net, const dg_dataset *ds, const uint32_t *ids, size_t n, int B, float *x, uint8_t *y,
                     const uint8_t **src, float *probs, double *loss, double *acc) {
    double sum = 0;
    long correct = 0;
    for (size_t at = 0; at < n; at += (size_t)B) {
        int b = (int)(n - at < (size_t)B ? n - at : (size_t)B);
        load_batch(x, y, src, ds, ids + at, b, NULL, 0, 0, NULL);
        nn_net_forward(net, x, b, 0, 0, 0);
        int c = 0;
        float l = nn_net_loss(net, y, b, 0.0f, &c);
        sum += (double)l * b;
        correct += c;
        if (probs) memcpy(probs + at * DG_CLASSES, nn_net_probs(net), (size_t)b * DG_CLASSES * sizeof(float));
    }
    *loss = sum / (double)n;
    *acc = (double)correct / (double)n;
}

/* 1 if every value of v (n) is finite. An integer max over the magnitude bits, so that it vectorises without
 * -ffast-math: a float is Inf or NaN iff its exponent bits are all ones (magnitude >= 0x7f800000). */
static int all_finite(const float *v, size_t n) {
    uint32_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, v + i, sizeof b);
        b &= 0x7fffffffu;
        worst = b > worst ? b : worst;
    }
    return worst < 0x7f800000u;
}

/* The first tensor (parameter or running statistic) holding a non-finite value, or NULL if all are finite. */
static const nn_tensor *nonfinite_tensor(nn_net *net) {
    const float *p = nn_net_params(net), *b = nn_net_buffers(net);
    if (all_finite(p, nn_net_param_count(net)) && all_finite(b, nn_net_buffer_count(net))) return NULL;
    for (int i = 0; i < nn_net_tensor_count(net); i++) {
        const nn_tensor *t = nn_net_tensor(net, i);
        if (!all_finite((t->is_buffer ? b : p) + t->offset, t->count)) return t;
    }
    return NULL;
}

static int write_text(const char *path, const char *text, dg_err *err) {
    return dg_write_file_atomic(path, text, strlen(text), err);
}

/* ---- the run ---- */

typedef struct run {
    const nn_train_opts *o;
    run_paths paths;
    dg_dataset ds;
    uint8_t *labels;
    nn_split split;
    nn_spec spec;
    nn_net *net;
    nn_optim opt;
    nn_sched sched;
    aug_policy *policy;
    char split_desc[128], run_key[256];
    /* training state that goes into the checkpoint */
    uint32_t epoch; /* epochs completed */
    int epochs_total; /* the spec's epochs, or fewer while the deadline has the run shortened */
    double seconds;
    double best_val_loss;
    uint32_t best_epoch, bad_epochs;
    float *best_params, *best_buffers; /* with ema on, the average's */
    float *ema;         /* (n_params + n_buffers) the moving average of params then buffers; NULL: ema off */
    char *metrics;
    /* batch buffers */
    float *x;           /* (B, 28, 28, 1) */
    uint8_t *y;         /* (B) */
    const uint8_t **src; /* (B) */
    uint32_t *order;    /* (n_train) */
    dg_tfevents tb;     /* open when o->tensorboard is set */
    dg_dataset mix;     /* o->mix, open when set */
    uint32_t *ids;      /* (B) a batch's rows with the mixed ones */
    double pace[NN_TRAIN_PACE_EPOCHS]; /* the last epochs' durations on the deadline's clock, newest last (this
                                          call's only: a resumed run starts measuring again) */
    int n_pace;
} run;

static int save_checkpoint(run *r, dg_err *err) {
    nn_ckpt c;
    memset(&c, 0, sizeof c);
    c.spec_text = r->spec.text;
    c.run_key = r->run_key;
    c.epoch = r->epoch;
    c.seed = r->o->seed;
    c.seconds = r->seconds;
    c.opt_t = r->opt.t;
    c.sched = r->sched;
    c.epochs_target = r->epochs_total != r->spec.hyper.epochs ? (uint32_t)r->epochs_total : 0;
    c.best_val_loss = r->best_val_loss;
    c.best_epoch = r->best_epoch;
    c.bad_epochs = r->bad_epochs;
    c.n_params = nn_net_param_count(r->net);
    c.n_buffers = nn_net_buffer_count(r->net);
    c.n_opt = r->opt.state_count;
    c.params = nn_net_params(r->net);
    c.buffers = nn_net_buffers(r->net);
    c.opt_state = r->opt.state;
    c.best_params = r->best_params;
    c.best_buffers = r->best_buffers;
    c.metrics = r->metrics;
    c.ema_decay = r->ema ? r->spec.hyper.ema : 0.0f;
    c.ema = r->ema;
    return nn_ckpt_save(r->paths.ckpt, &c, err);
}

static int restore_checkpoint(run *r, dg_err *err) {
    nn_ckpt c;
    if (nn_ckpt_load(r->paths.ckpt, &c, err) != 0) return -1;
    int rc = -1;
    size_t np = nn_net_param_count(r->net), nb = nn_net_buffer_count(r->net);
    /* EMA on or off, or another decay, changes the spec's train line too; say so before the spec comparison does,
     * in words. A checkpoint without an "ema" section (EMA off, or written before the key existed) has 0. */
    float want = r->ema ? r->spec.hyper.ema : 0.0f;
    if (c.ema_decay != want) {
        dg_fail(err,
                "%s: checkpoint of a run with ema=%g, this run has ema=%g (the spec's train line, or --ema): resume "
                "with the checkpoint's setting, or start a new --run",
                r->paths.ckpt, (double)c.ema_decay, (double)want);
        goto done;
    }
    if (!nn_ckpt_matches(&c, r->paths.ckpt, r->spec.text, r->run_key, err)) goto done;
    if (c.n_params != np || c.n_buffers != nb || c.n_opt != r->opt.state_count ||
        (r->best_params && c.epoch > 0 && (!c.best_params || !c.best_buffers))) {
        dg_fail(err, "%s: checkpoint holds %zu parameters, %zu buffers, %zu optimizer floats; the net needs %zu, %zu, %zu",
                r->paths.ckpt, c.n_params, c.n_buffers, c.n_opt, np, nb, r->opt.state_count);
        goto done;
    }
    memcpy(nn_net_params(r->net), c.params, np * sizeof(float));
    memcpy(nn_net_buffers(r->net), c.buffers, nb * sizeof(float));
    if (c.n_opt) memcpy(r->opt.state, c.opt_state, c.n_opt * sizeof(float));
    if (r->best_params && c.best_params) {
        memcpy(r->best_params, c.best_params, np * sizeof(float));
        memcpy(r->best_buffers, c.best_buffers, nb * sizeof(float));
    }
    if (r->ema) memcpy(r->ema, c.ema, (np + nb) * sizeof(float));
    r->opt.t = c.opt_t;
    r->sched = c.sched;
    if (c.epochs_target) r->epochs_total = (int)c.epochs_target;
    r->epoch = c.epoch;
    r->seconds = c.seconds;
    r->best_val_loss = c.best_val_loss;
    r->best_epoch = c.best_epoch;
    r->bad_epochs = c.bad_epochs;
    free(r->metrics);
    r->metrics = c.metrics;
    c.metrics = NULL;
    rc = 0;
done:
    nn_ckpt_free(&c);
    return rc;
}

/* invocation.json: the command, where and when it ran, and on what machine (for reports and reruns). */
static int write_invocation(const run *r, dg_err *err) {
    const nn_train_opts *o = r->o;
    cJSON *j = cJSON_CreateObject();
    if (!j) return dg_fail(err, "out of memory");
    cJSON_AddItemToObject(j, "command", o->command ? cJSON_CreateString(o->command) : cJSON_CreateNull());
    char buf[512];
    cJSON_AddStringToObject(j, "cwd", getcwd(buf, sizeof buf) ? buf : "");
    time_t now = time(NULL);
    struct tm tmv;
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tmv));
    cJSON_AddStringToObject(j, "started", buf);
    cJSON_AddStringToObject(j, "version", DIGITS_VERSION);
    struct utsname u;
    if (uname(&u) == 0) {
        snprintf(buf, sizeof buf, "%s (%s %s %s)", u.nodename, u.sysname, u.release, u.machine);
        cJSON_AddStringToObject(j, "host", buf);
    }
    char cpu[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        while (fgets(buf, sizeof buf, f)) {
            char *c = strchr(buf, ':');
            if (strncmp(buf, "model name", 10) == 0 && c) {
                c += strspn(c + 1, " \t") + 1;
                c[strcspn(c, "\n")] = 0;
                snprintf(cpu, sizeof cpu, "%s", c);
                break;
            }
        }
        fclose(f);
    }
    cJSON_AddStringToObject(j, "cpu", cpu);
    cJSON_AddNumberToObject(j, "cpus", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddNumberToObject(j, "threads", omp_get_max_threads());
    cJSON_AddStringToObject(j, "blas", dg_blas_is_openmp() ? "OpenBLAS (OpenMP)" : "OpenBLAS (not the OpenMP build)");
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return dg_fail(err, "out of memory");
    int rc = write_text(r->paths.invocation, text, err);
    free(text);
    return rc;
}

/* Set up everything before the first epoch. Returns 0, -1 or NN_TRAIN_USAGE; *done = 1 if the run is complete. */
static int setup(run *r, int *done, dg_err *err) {
    const nn_train_opts *o = r->o;
    *done = 0;
    if (!o->data || !o->model || !o->run_dir) return dg_fail(err, "--data, --model and --run are required"), NN_TRAIN_USAGE;
    if (o->folds == 0 && !(o->val_frac > 0 && o->val_frac < 1))
        return dg_fail(err, "--val-frac %g: expected a number in (0, 1)", o->val_frac), NN_TRAIN_USAGE;
    if (o->folds != 0 && (o->folds < 2 || o->fold < 1 || o->fold > o->folds))
        return dg_fail(err, "--folds %d --fold %d: expected K >= 2 and k in 1..K", o->folds, o->fold), NN_TRAIN_USAGE;
    int rc = nn_train_spec(&r->spec, o, err);
    if (rc != 0) return rc;
    const nn_hyper *h = &r->spec.hyper;
    if ((rc = nn_train_spec_fits(&r->spec, err)) != 0) return rc;
    if (h->augment[0] && aug_policy_load(&r->policy, h->augment, err) != 0) return NN_TRAIN_USAGE;
    if (dg_dataset_open(&r->ds, o->data, err) != 0) return -1;
    if (!r->ds.has_labels)
        return dg_fail(err, "%s: an unlabelled dataset; training needs labels (the train set)", o->data),
               NN_TRAIN_USAGE;
    r->labels = malloc(r->ds.n ? r->ds.n : 1);
    if (!r->labels) return dg_fail(err, "out of memory");
    for (size_t i = 0; i < r->ds.n; i++) r->labels[i] = (uint8_t)dg_dataset_label(&r->ds, i);
    if (o->folds) {
        if (nn_split_kfold(&r->split, r->labels, r->ds.n, DG_CLASSES, o->folds, o->fold, o->split_seed, err) != 0)
            return NN_TRAIN_USAGE;
        snprintf(r->split_desc, sizeof r->split_desc, "fold %d/%d split-seed %llu", o->fold, o->folds,
                 (unsigned long long)o->split_seed);
    } else {
        if (nn_split_holdout(&r->split, r->labels, r->ds.n, DG_CLASSES, o->val_frac, o->split_seed, err) != 0)
            return NN_TRAIN_USAGE;
        snprintf(r->split_desc, sizeof r->split_desc, "val-frac %g split-seed %llu", o->val_frac,
                 (unsigned long long)o->split_seed);
    }
    if ((size_t)h->batch > r->split.n_train)
        return dg_fail(err, "batch %d is larger than the %zu training rows of %s", h->batch, r->split.n_train,
                       o->data),
               NN_TRAIN_USAGE;
    snprintf(r->run_key, sizeof r->run_key, "seed %llu; %s; data %zu rows, labels crc32 %08x",
             (unsigned long long)o->seed, r->split_desc, r->ds.n, nn_crc32(0, r->labels, r->ds.n));
    if (o->mix) {
        if (!(o->mix_frac > 0 && o->mix_frac < 1))
            return dg_fail(err, "--mix-frac %g: expected a number in (0, 1)", o->mix_frac), NN_TRAIN_USAGE;
        if (dg_dataset_open(&r->mix, o->mix, err) != 0) return -1;
        if (!r->mix.has_labels || r->mix.n == 0)
            return dg_fail(err, "%s: %s; --mix needs labelled digits", o->mix,
                           r->mix.has_labels ? "an empty dataset" : "an unlabelled dataset"),
                   NN_TRAIN_USAGE;
        if (r->ds.n + r->mix.n > UINT32_MAX) return dg_fail(err, "%s: too many rows to mix", o->mix), -1;
        size_t len = strlen(r->run_key);
        uint32_t crc = 0;
        for (size_t i = 0; i < r->mix.n; i++) crc = nn_crc32(crc, r->mix.records + i * r->mix.stride, 1);
        snprintf(r->run_key + len, sizeof r->run_key - len, "; mix %zu rows, labels crc32 %08x, frac %g", r->mix.n,
                 crc, o->mix_frac);
    }

    make_paths(&r->paths, o->run_dir);
    if (dg_mkdirs(o->run_dir, err) != 0) return -1;
    if (dg_path_exists(r->paths.result)) {
        if (o->resume) {
            logf_(o->log, "%s: run already complete (result.json exists); nothing to do\n", o->run_dir);
            *done = 1;
            return 0;
        }
        return dg_fail(err, "%s already holds a finished run (result.json); choose another --run", o->run_dir),
               NN_TRAIN_USAGE;
    }
    int have_ckpt = dg_path_exists(r->paths.ckpt);
    if (have_ckpt && !o->resume)
        return dg_fail(err,
                       "%s holds an unfinished run (checkpoint.ckpt): pass --resume to continue it, or choose "
                       "another --run",
                       o->run_dir),
               NN_TRAIN_USAGE;

    if (nn_net_create(&r->net, &r->spec, h->batch, err) != 0) return -1;
    nn_net_init(r->net, o->seed);
    int nt = nn_net_tensor_count(r->net), nr = 0;
    nn_optim_range *ranges = malloc(((size_t)nt + 1) * sizeof *ranges);
    if (!ranges) return dg_fail(err, "out of memory");
    for (int i = 0; i < nt; i++) {
        const nn_tensor *t = nn_net_tensor(r->net, i);
        if (!t->is_buffer) ranges[nr++] = nn_optim_range_make(h, t->offset, t->count, t->decay, t->l2);
    }
    rc = nn_optim_init(&r->opt, h, nn_net_param_count(r->net), ranges, nr, err);
    free(ranges);
    if (rc != 0) return -1;
    nn_sched_init(&r->sched);
    r->epochs_total = h->epochs;
    r->best_val_loss = INFINITY;
    size_t np = nn_net_param_count(r->net), nb = nn_net_buffer_count(r->net);
    if (h->early_stop) {
        r->best_params = malloc((np ? np : 1) * sizeof(float));
        r->best_buffers = malloc((nb ? nb : 1) * sizeof(float));
        if (!r->best_params || !r->best_buffers) return dg_fail(err, "out of memory");
    }
    if (h->ema > 0) {
        /* the average starts as the initial weights (a resume overwrites it with the checkpoint's) */
        r->ema = malloc((np + nb ? np + nb : 1) * sizeof(float));
        if (!r->ema) return dg_fail(err, "out of memory");
        memcpy(r->ema, nn_net_params(r->net), np * sizeof(float));
        memcpy(r->ema + np, nn_net_buffers(r->net), nb * sizeof(float));
    }
    r->metrics = calloc(1, 1);
    size_t B = (size_t)h->batch;
    r->x = malloc(B * DG_PIXELS * sizeof *r->x);
    r->y = malloc(B);
    r->src = malloc(B * sizeof *r->src);
    r->order = malloc(r->split.n_train * sizeof *r->order);
    r->ids = malloc(B * sizeof *r->ids);
    if (!r->metrics || !r->x || !r->y || !r->src || !r->order || !r->ids) return dg_fail(err, "out of memory");

    if (have_ckpt) {
        if (restore_checkpoint(r, err) != 0) return -1;
        logf_(o->log, "%s: resuming after epoch %u of %d\n", o->run_dir, r->epoch, r->epochs_total);
    } else if (o->resume) {
        logf_(o->log, "%s: no checkpoint; starting from scratch\n", o->run_dir);
    }
    if (write_text(r->paths.spec, r->spec.text, err) != 0) return -1;
    if (write_text(r->paths.metrics, r->metrics, err) != 0) return -1;
    if (!dg_path_exists(r->paths.invocation) && write_invocation(r, err) != 0) return -1;
    if (o->tensorboard && dg_tfevents_open(&r->tb, o->tensorboard, err) != 0) return -1;
    return 0;
}

/* Fail with "<where>: <what>; the run diverged ..." and say which checkpoint is left: a diverged epoch writes
 * nothing, so the run directory keeps the checkpoint (and metrics) of the last good epoch. A --resume would only
 * diverge again: the spec (with its lr) is part of the checkpoint, so a lower --lr needs a new --run. */
static int diverged(const run *r, dg_err *err, const char *where, const char *what) {
    if (r->epoch == 0)
        return dg_fail(err, "%s: %s; the run diverged (try a lower --lr, in a new --run). No checkpoint was written",
                       where, what);
    return dg_fail(err, "%s: %s; the run diverged (try a lower --lr, in a new --run). %s keeps the checkpoint of "
                        "epoch %u",
                   where, what, r->o->run_dir, r->epoch);
}

static double wall_now(const nn_train_opts *o) {
    if (o->clock) return o->clock(o->clock_arg);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double nn_train_pace(const double *epoch_s, int n) {
    if (n <= 0) return 0;
    int k = n < NN_TRAIN_PACE_EPOCHS ? n : NN_TRAIN_PACE_EPOCHS;
    double sum = 0;
    for (int i = n - k; i < n; i++) sum += epoch_s[i];
    return sum / k;
}

int nn_train_replan(int done, int total, int max, double epoch_s, double left_s) {
    if (done >= total || !(epoch_s > 0)) return total;
    if ((double)(total - done) * epoch_s <= left_s) {
        if (total >= max) return total; /* the plan fits: keep it */
        /* a shortened run whose pace recovered: back toward max, keeping a share of the time left in hand */
        double fit = floor((1.0 - NN_TRAIN_LENGTHEN_SLACK) * left_s / epoch_s);
        int n = fit < (double)(max - done) ? done + (int)fit : max;
        return n > total ? n : total;
    }
    double fit = left_s > 0 ? floor(left_s / epoch_s) : 0;
    int n = fit < (double)(total - done) ? done + (int)fit : total;
    return n > done ? n : done + 1;
}

/* At the end of an epoch that took epoch_s on the deadline's clock: shorten the run if what is left does not fit at
 * the pace of the last few epochs (one slow epoch alone, e.g. a burst of another process, does not cut three), or
 * lengthen a shortened one back toward the spec's epochs once the pace has recovered. */
static void replan(run *r, int steps, double epoch_s) {
    const nn_train_opts *o = r->o;
    if (r->n_pace == NN_TRAIN_PACE_EPOCHS) memmove(r->pace, r->pace + 1, (NN_TRAIN_PACE_EPOCHS - 1) * sizeof *r->pace);
    else r->n_pace++;
    r->pace[r->n_pace - 1] = epoch_s;
    double pace = nn_train_pace(r->pace, r->n_pace);
    int done = (int)r->epoch, total = r->epochs_total;
    double left = o->deadline - wall_now(o);
    int n = nn_train_replan(done, total, r->spec.hyper.epochs, pace, left);
    if (n == total) return;
    nn_sched_retarget(&r->spec.hyper, &r->sched, done, n, steps);
    r->epochs_total = n;
    logf_(o->log,
          "re-plan: epoch %d took %.1f s (%.1f s a mean of the last %d) and %.0f s are left before the deadline: "
          "%d epochs in all instead of %d%s%s\n",
          done, epoch_s, pace, r->n_pace, left, n, total, n > total ? " (the pace recovered)" : "",
          r->spec.hyper.schedule == NN_SCHED_COSINE || r->spec.hyper.schedule == NN_SCHED_ONECYCLE
              ? " (learning-rate schedule re-targeted to end at its final value)" : "");
}

/* Exchange the net's weights and buffers with the moving average's (twice: back as they were, bit for bit). */
static void ema_swap(run *r) {
    size_t np = nn_net_param_count(r->net);
    nn_ema_swap(nn_net_params(r->net), r->ema, np);
    nn_ema_swap(nn_net_buffers(r->net), r->ema + np, nn_net_buffer_count(r->net));
}

static int train_epoch(run *r, dg_err *err) {
    const nn_hyper *h = &r->spec.hyper;
    const nn_train_opts *o = r->o;
    uint32_t e = r->epoch;
    size_t n = r->split.n_train;
    int B = h->batch, steps = (int)((n + (size_t)B - 1) / (size_t)B);
    double t0 = dg_now(), wall0 = wall_now(o);
    memcpy(r->order, r->split.train, n * sizeof *r->order);
    dg_rng rng = dg_rng_make(o->seed, DG_RNG_SHUFFLE, e, 0);
    dg_rng_shuffle_u32(&rng, r->order, (uint32_t)n);
    char label[48];
    snprintf(label, sizeof label, "epoch %u/%d", e + 1, r->epochs_total);
    dg_progress bar;
    dg_progress_start(&bar, label, n);
    if (!o->log) bar.enabled = 0;
    double loss_sum = 0;
    long correct = 0;
    float *params = nn_net_params(r->net), *grads = nn_net_grads(r->net);
    float lr0 = nn_sched_lr(h, &r->sched, (int)e, 0, steps);
    for (int s = 0; s < steps; s++) {
        size_t at = (size_t)s * (size_t)B;
        int b = (int)(n - at < (size_t)B ? n - at : (size_t)B);
        const uint32_t *ids = r->order + at;
        if (o->mix) {
            /* the batch's last rows from the mix dataset (ids past the training set's rows) */
            int k = (int)lround(o->mix_frac * b);
            memcpy(r->ids, ids, (size_t)b * sizeof *r->ids);
            dg_rng mr = dg_rng_make(o->seed, NN_RNG_MIX, e, (uint32_t)s);
            for (int j = b - k; j < b; j++)
                r->ids[j] = (uint32_t)(r->ds.n + dg_rng_below(&mr, (uint32_t)r->mix.n));
            ids = r->ids;
        }
        load_batch(r->x, r->y, r->src, &r->ds, ids, b, r->policy, o->seed, e, &r->mix);
        uint64_t step = (uint64_t)e * (uint64_t)steps + (uint64_t)s;
        nn_net_forward(r->net, r->x, b, 1, o->seed, step);
        int c = 0;
        float loss = nn_net_loss(r->net, r->y, b, h->label_smoothing, &c);
        char where[64], what[160];
        snprintf(where, sizeof where, "epoch %u step %d of %d", e + 1, s + 1, steps);
        if (!isfinite(loss)) {
            dg_progress_finish(&bar);
            snprintf(what, sizeof what, "training loss is %g", (double)loss);
            return diverged(r, err, where, what);
        }
        nn_net_backward(r->net);
        nn_optim_step(&r->opt, params, grads, nn_sched_lr(h, &r->sched, (int)e, s, steps));
        /* Weights can overflow (a huge gradient or lr) while this step's loss was still finite; stop at the step
         * that did it, before the next forward turns it into a NaN loss or a checkpoint saves it. */
        const nn_tensor *bad = nonfinite_tensor(r->net);
        if (bad) {
            dg_progress_finish(&bar);
            snprintf(what, sizeof what, "%s holds non-finite values after the optimizer step (training loss was %g)",
                     bad->name, (double)loss);
            return diverged(r, err, where, what);
        }
        if (r->ema) {
            /* after the optimizer's step opt.t (1-based), the live batch-norm statistics of this forward included */
            float d = nn_ema_decay(h->ema, r->opt.t);
            size_t np = nn_net_param_count(r->net);
            nn_ema_update(r->ema, params, np, d);
            nn_ema_update(r->ema + np, nn_net_buffers(r->net), nn_net_buffer_count(r->net), d);
        }
        loss_sum += (double)loss * b;
        correct += c;
        if (bar.enabled) {
            char extra[64];
            snprintf(extra, sizeof extra, "loss %.4f acc %.2f%%", loss_sum / (double)(at + (size_t)b),
                     100.0 * (double)correct / (double)(at + (size_t)b));
            dg_progress_update(&bar, at + (size_t)b, extra);
        }
    }
    dg_progress_finish(&bar);
    double train_secs = dg_now() - t0;
    /* Validation: of the live weights, and with ema on then of the average (swapped into the net and back). */
    double val_loss, val_acc, live_loss = 0, live_acc = 0;
    evaluate(r->net, &r->ds, r->split.val, r->split.n_val, B, r->x, r->y, r->src, NULL, &val_loss, &val_acc);
    if (r->ema) {
        live_loss = val_loss;
        live_acc = val_acc;
        ema_swap(r);
        evaluate(r->net, &r->ds, r->split.val, r->split.n_val, B, r->x, r->y, r->src, NULL, &val_loss, &val_acc);
    }
    if (!isfinite(val_loss) || !isfinite(val_acc) || !isfinite(live_loss) || !isfinite(live_acc)) {
        if (r->ema) ema_swap(r);
        char where[64], what[96];
        snprintf(where, sizeof where, "epoch %u validation (after step %d of %d)", e + 1, steps, steps);
        snprintf(what, sizeof what, "validation loss is %g, accuracy %g", r->ema ? live_loss : val_loss,
                 r->ema ? live_acc : val_acc);
        return diverged(r, err, where, what);
    }
    double secs = dg_now() - t0, ips = train_secs > 0 ? (double)n / train_secs : 0;
    double train_loss = loss_sum / (double)n, train_acc = (double)correct / (double)n;
    r->seconds += secs;
    nn_sched_epoch_end(h, &r->sched, val_loss);
    r->epoch = e + 1;
    if (val_loss < r->best_val_loss) {
        r->best_val_loss = val_loss;
        r->best_epoch = e + 1;
        r->bad_epochs = 0;
        if (r->best_params) {
            /* the net holds the evaluated weights: the average's when ema is on */
            memcpy(r->best_params, params, nn_net_param_count(r->net) * sizeof(float));
            memcpy(r->best_buffers, nn_net_buffers(r->net), nn_net_buffer_count(r->net) * sizeof(float));
        }
    } else {
        r->bad_epochs++;
    }
    if (r->ema) ema_swap(r);
    char live[96] = "";
    if (r->ema)
        snprintf(live, sizeof live, ",\"val_loss_live\":%.6f,\"val_acc_live\":%.6f", live_loss, live_acc);
    if (append(&r->metrics,
               "{\"epoch\":%u,\"train_loss\":%.6f,\"train_acc\":%.6f,\"val_loss\":%.6f,\"val_acc\":%.6f%s,"
               "\"lr\":%.6g,\"seconds\":%.3f,\"images_per_s\":%.1f}\n",
               e + 1, train_loss, train_acc, val_loss, val_acc, live, (double)lr0, secs, ips) != 0)
        return dg_fail(err, "out of memory");
    if (r->ema)
        snprintf(live, sizeof live, " (EMA; live %.4f %6.2f%%)", live_loss, 100 * live_acc);
    logf_(o->log,
          "epoch %3u/%d  train loss %.4f acc %6.2f%%  val loss %.4f acc %6.2f%%%s  lr %.3g  %.1f s  %.0f img/s%s\n",
          e + 1, r->epochs_total, train_loss, 100 * train_acc, val_loss, 100 * val_acc, live, (double)lr0, secs, ips,
          r->best_epoch == e + 1 && h->early_stop ? "  (best)" : "");
    if (o->deadline > 0) replan(r, steps, wall_now(o) - wall0);
    if (save_checkpoint(r, err) != 0) return -1;
    if (write_text(r->paths.metrics, r->metrics, err) != 0) return -1;
    if (r->tb.fp) {
        static const char *const tags[6] = {"loss/train", "loss/val", "accuracy/train", "accuracy/val", "lr",
                                            "images_per_s"};
        const float v[6] = {(float)train_loss, (float)val_loss, (float)train_acc, (float)val_acc, lr0, (float)ips};
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (dg_tfevents_scalars(&r->tb, (double)ts.tv_sec + ts.tv_nsec * 1e-9, e + 1, 6, tags, v, err) != 0)
            return -1;
    }
    return 0;
}

/* The final model and its validation outputs; result.json last. */
static int finish(run *r, dg_err *err) {
    const nn_hyper *h = &r->spec.hyper;
    const nn_train_opts *o = r->o;
    size_t shape[2] = {r->split.n_val, DG_CLASSES};
    if (r->ema) {
        /* the net still holds the live weights of the last epoch: their validation probabilities first, so that
         * the average and the live weights of one run can be voted and compared like two members */
        float *live = malloc(r->split.n_val * DG_CLASSES * sizeof *live);
        if (!live) return dg_fail(err, "out of memory");
        double live_loss, live_acc;
        evaluate(r->net, &r->ds, r->split.val, r->split.n_val, h->batch, r->x, r->y, r->src, live, &live_loss,
                 &live_acc);
        int rc = dg_npy_save(r->paths.val_pred_live, "<f4", shape, 2, live, sizeof(float), err);
        free(live);
        if (rc != 0) return -1;
    }
    if (r->best_params && r->best_epoch > 0) {
        memcpy(nn_net_params(r->net), r->best_params, nn_net_param_count(r->net) * sizeof(float));
        memcpy(nn_net_buffers(r->net), r->best_buffers, nn_net_buffer_count(r->net) * sizeof(float));
        logf_(o->log, "keeping the %sweights of epoch %u (best validation loss %.4f)\n", r->ema ? "averaged " : "",
              r->best_epoch, r->best_val_loss);
    } else if (r->ema) {
        size_t np = nn_net_param_count(r->net);
        memcpy(nn_net_params(r->net), r->ema, np * sizeof(float));
        memcpy(nn_net_buffers(r->net), r->ema + np, nn_net_buffer_count(r->net) * sizeof(float));
    }
    size_t nv = r->split.n_val;
    float *probs = malloc(nv * DG_CLASSES * sizeof *probs);
    int64_t *ids = malloc(nv * sizeof *ids);
    int rc = -1;
    char *meta = NULL, *result = NULL;
    if (!probs || !ids) {
        dg_fail(err, "out of memory");
        goto done;
    }
    double val_loss, val_acc;
    evaluate(r->net, &r->ds, r->split.val, nv, h->batch, r->x, r->y, r->src, probs, &val_loss, &val_acc);
    for (size_t i = 0; i < nv; i++) ids[i] = r->split.val[i];
    cJSON *m = cJSON_CreateObject();
    if (m) {
        char buf[64];
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)o->seed);
        cJSON_AddStringToObject(m, "seed", buf);
        snprintf(buf, sizeof buf, "%.6f", val_acc);
        cJSON_AddStringToObject(m, "val_accuracy", buf);
        snprintf(buf, sizeof buf, "%.6f", val_loss);
        cJSON_AddStringToObject(m, "val_loss", buf);
        cJSON_AddStringToObject(m, "val_split", r->split_desc);
        snprintf(buf, sizeof buf, "%u", r->epoch);
        cJSON_AddStringToObject(m, "epochs", buf);
        snprintf(buf, sizeof buf, "%u", r->best_params ? r->best_epoch : r->epoch);
        cJSON_AddStringToObject(m, "weights_of_epoch", buf);
        snprintf(buf, sizeof buf, "%zu", r->split.n_train);
        cJSON_AddStringToObject(m, "train_rows", buf);
        if (r->ema) {
            snprintf(buf, sizeof buf, "%g", (double)h->ema);
            cJSON_AddStringToObject(m, "ema", buf); /* the weights are the moving average of decay ema */
        }
        cJSON_AddStringToObject(m, "data", o->data);
        meta = cJSON_PrintUnformatted(m);
        cJSON_Delete(m);
    }
    if (!meta) {
        dg_fail(err, "out of memory");
        goto done;
    }
    if (nn_model_save(r->paths.model, r->net, meta, err) != 0) goto done;
    if (dg_npy_save(r->paths.val_pred, "<f4", shape, 2, probs, sizeof(float), err) != 0) goto done;
    if (dg_npy_save(r->paths.val_ids, "<i8", shape, 1, ids, sizeof(int64_t), err) != 0) goto done;
    if (append(&result,
               "{\"val_acc\":%.6f,\"val_loss\":%.6f,\"epochs\":%u,\"seconds\":%.3f,\"seed\":%llu,\"split\":\"%s\","
               "\"model\":\"model.safetensors\"}\n",
               val_acc, val_loss, r->epoch, r->seconds, (unsigned long long)o->seed, r->split_desc) != 0) {
        dg_fail(err, "out of memory");
        goto done;
    }
    if (write_text(r->paths.result, result, err) != 0) goto done;
    logf_(o->log, "%s: val acc %.2f%% loss %.4f after %u epochs, %.1f s\n", o->run_dir, 100 * val_acc, val_loss,
          r->epoch, r->seconds);
    rc = 0;
done:
    free(probs);
    free(ids);
    free(meta);
    free(result);
    return rc;
}

static void run_free(run *r) {
    dg_tfevents_close(&r->tb);
    if (r->policy) aug_policy_free(r->policy);
    nn_optim_free(&r->opt);
    if (r->net) nn_net_free(r->net);
    nn_spec_free(&r->spec);
    nn_split_free(&r->split);
    dg_dataset_close(&r->ds);
    dg_dataset_close(&r->mix);
    free(r->ids);
    free(r->labels);
    free(r->best_params);
    free(r->best_buffers);
    free(r->ema);
    free(r->metrics);
    free(r->x);
    free(r->y);
    free(r->src);
    free(r->order);
}

int nn_train_run(const nn_train_opts *o, dg_err *err) {
    run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    int done = 0;
    int rc = setup(&r, &done, err);
    if (rc == 0 && !done) {
        const nn_hyper *h = &r.spec.hyper;
        int now = 0;
        while (rc == 0 && (int)r.epoch < r.epochs_total && !(h->early_stop && (int)r.bad_epochs >= h->early_stop)) {
            if ((o->stop_after && now == o->stop_after) || (o->stop_at && (int)r.epoch >= o->stop_at)) {
                logf_(o->log, "%s: stopping after epoch %u as asked; --resume continues\n", o->run_dir, r.epoch);
                run_free(&r);
                return 1;
            }
            rc = train_epoch(&r, err);
            now++;
        }
        if (rc == 0 && h->early_stop && (int)r.bad_epochs >= h->early_stop && (int)r.epoch < r.epochs_total)
            logf_(o->log, "early stop: no better validation loss for %d epochs\n", h->early_stop);
        if (rc == 0) rc = finish(&r, err);
    }
    run_free(&r);
    return rc;
}
