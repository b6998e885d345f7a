/* pipeline/budget: epochs from the budget and this machine's measured speed (see budget.h). */
#define _GNU_SOURCE 1 /* pipe2 */
#include "pipeline/budget.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/dg_file.h"
#include "core/dg_progress.h"
#include "pipeline/driver.h"

extern char **environ;

/* ---- the arithmetic ---- */

/* Chains in run order, each to the lane free first; lane_end (jobs) receives each lane's end; lane_of (n_runs, or
 * NULL) each run's lane. Returns the latest end. */
static double lanes(const pl_budget_in *in, int epochs, double *lane_end, int *lane_of) {
    for (int l = 0; l < in->jobs; l++) lane_end[l] = 0;
    for (int i = 0; i < in->n_runs; i++) {
        int f = 0;
        for (int l = 1; l < in->jobs; l++)
            if (lane_end[l] < lane_end[f]) f = l;
        lane_end[f] += in->start_s[i] + epochs * in->epoch_s[i] + in->predict_s[i];
        if (lane_of) lane_of[i] = f;
    }
    double end = 0;
    for (int l = 0; l < in->jobs; l++) end = lane_end[l] > end ? lane_end[l] : end;
    return end;
}

double pl_budget_span(const pl_budget_in *in, int epochs) {
    double lane_end[PL_MAX_JOBS];
    return lanes(in, epochs, lane_end, NULL);
}

int pl_budget_choose(const pl_budget_in *in, pl_budget_out *out, dg_err *err) {
    memset(out, 0, sizeof *out);
    if (in->n_runs < 1 || in->jobs < 1 || in->jobs > PL_MAX_JOBS || in->min_epochs < 1 ||
        in->max_epochs < in->min_epochs)
        return dg_fail(err, "budget: %d runs, %d jobs, epochs %d..%d", in->n_runs, in->jobs, in->min_epochs,
                       in->max_epochs);
    for (int i = 0; i < in->n_runs; i++)
        if (!(in->epoch_s[i] > 0) || !(in->start_s[i] >= 0) || !(in->predict_s[i] >= 0))
            return dg_fail(err, "budget: run %d: epoch %gs, start-up %gs, predict %gs", i, in->epoch_s[i],
                           in->start_s[i], in->predict_s[i]);
    double room = in->budget_s - in->margin_s - in->elapsed_s - in->before_s - in->after_s;
    /* members(E) grows with E: the largest E that fits, by bisection over [min, max]. */
    int lo = in->min_epochs, hi = in->max_epochs;
    out->fits = pl_budget_span(in, lo) <= room;
    if (out->fits)
        while (lo < hi) {
            int mid = lo + (hi - lo + 1) / 2;
            if (pl_budget_span(in, mid) <= room) lo = mid;
            else hi = mid - 1;
        }
    out->epochs = lo;
    out->left_s = in->budget_s - in->elapsed_s;
    out->members_s = pl_budget_span(in, lo);
    out->end_s = in->elapsed_s + in->before_s + out->members_s + in->after_s;
    return 0;
}

void pl_budget_deadlines(const pl_budget_in *in, int epochs, double *deadline_s) {
    double lane_end[PL_MAX_JOBS];
    int lane_of[PL_MAX_MEMBERS * 100];
    int n = in->n_runs < (int)(sizeof lane_of / sizeof *lane_of) ? in->n_runs : (int)(sizeof lane_of / sizeof *lane_of);
    pl_budget_in cut = *in;
    cut.n_runs = n;
    lanes(&cut, epochs, lane_end, lane_of);
    double end = in->budget_s - in->margin_s / 2 - in->after_s;
    for (int i = 0; i < n; i++) {
        double later = 0;
        for (int j = i + 1; j < n; j++)
            if (lane_of[j] == lane_of[i]) later += in->start_s[j] + epochs * in->epoch_s[j] + in->predict_s[j];
        deadline_s[i] = end - later - in->predict_s[i];
    }
}

/* ---- calibration ---- */

static double unix_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* What a calibration measures: a member's model, batch and augmentation. */
static int same_kind(const pl_member *a, const pl_member *b) {
    return !strcmp(a->model, b->model) && a->batch == b->batch && !strcmp(a->augment, b->augment);
}

/* Run digits-train --calibrate for members m[0..n) at once, each with `threads` threads; ips[2k], ips[2k+1]: train
 * and predict images/s of m[k]. */
static int calibrate_together(const pl_plan *plan, const pl_member *const *m, int n, int threads, double seconds,
                              double *ips, dg_err *err) {
    pid_t pid[PL_MAX_JOBS];
    int fd[PL_MAX_JOBS], started = 0, rc = 0;
    for (int k = 0; k < n; k++) {
        char exe[1100], thr[16], secs[32], batch[16];
        snprintf(exe, sizeof exe, "%s/digits-train", plan->o.bin_dir);
        snprintf(thr, sizeof thr, "%d", threads);
        snprintf(secs, sizeof secs, "%g", seconds);
        snprintf(batch, sizeof batch, "%d", m[k]->batch);
        char *argv[16];
        int a = 0;
        argv[a++] = exe;
        argv[a++] = "--model";
        argv[a++] = (char *)m[k]->model;
        if (m[k]->batch) {
            argv[a++] = "--batch";
            argv[a++] = batch;
        }
        if (m[k]->augment[0]) {
            argv[a++] = "--augment";
            argv[a++] = (char *)m[k]->augment;
        }
        argv[a++] = "--seed";
        argv[a++] = "1";
        argv[a++] = "--threads";
        argv[a++] = thr;
        argv[a++] = "--calibrate";
        argv[a++] = secs;
        argv[a] = NULL;
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) {
            rc = dg_fail_errno(err, "calibration: cannot make a pipe");
            break;
        }
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
        int e = posix_spawn(&pid[k], exe, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(p[1]);
        if (e != 0) {
            close(p[0]);
            errno = e;
            rc = dg_fail_errno(err, "calibration: cannot run %s", exe);
            break;
        }
        fd[k] = p[0];
        started++;
    }
    for (int k = 0; k < started; k++) {
        char buf[4096];
        size_t len = 0;
        for (;;) {
            ssize_t got = read(fd[k], buf + len, sizeof buf - 1 - len);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) break;
            len += (size_t)got;
            if (len == sizeof buf - 1) break;
        }
        buf[len] = '\0';
        close(fd[k]);
        int status;
        while (waitpid(pid[k], &status, 0) < 0 && errno == EINTR) {}
        if (rc != 0) continue;
        cJSON *j = cJSON_Parse(buf);
        cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "train_ips");
        cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "predict_ips");
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !cJSON_IsNumber(t) || !cJSON_IsNumber(p) ||
            !(t->valuedouble > 0) || !(p->valuedouble > 0))
            rc = dg_fail(err, "calibration of %s failed (digits-train --calibrate; its messages are above)",
                         m[k]->model);
        else {
            ips[2 * k] = t->valuedouble;
            ips[2 * k + 1] = p->valuedouble;
        }
        cJSON_Delete(j);
    }
    return rc;
}

/* Per run: calibrated train and predict images/s (cal[2i], cal[2i+1]) of its member as the member stages will run:
 * `jobs` calibrations side by side, each kind of member at least once, the slots filled round-robin. */
static int calibrate(const pl_plan *plan, double seconds, double *cal, dg_err *err) {
    const pl_preset *p = plan->preset;
    const pl_member *kinds[PL_MAX_MEMBERS];
    double sum[2 * PL_MAX_MEMBERS] = {0};
    int count[PL_MAX_MEMBERS] = {0}, nk = 0;
    for (int i = 0; i < p->n_members; i++) {
        int k = 0;
        while (k < nk && !same_kind(kinds[k], &p->members[i])) k++;
        if (k == nk) kinds[nk++] = &p->members[i];
    }
    int jobs = plan->jobs, slots = nk > jobs ? nk : jobs;
    slots = (slots + jobs - 1) / jobs * jobs; /* whole batches of `jobs` */
    for (int b = 0; b < slots; b += jobs) {
        const pl_member *m[PL_MAX_JOBS];
        double ips[2 * PL_MAX_JOBS];
        for (int k = 0; k < jobs; k++) m[k] = kinds[(b + k) % nk];
        if (calibrate_together(plan, m, jobs, plan->job_threads, seconds, ips, err) != 0) return -1;
        for (int k = 0; k < jobs; k++) {
            int kind = (b + k) % nk;
            sum[2 * kind] += ips[2 * k];
            sum[2 * kind + 1] += ips[2 * k + 1];
            count[kind]++;
        }
    }
    for (int i = 0; i < plan->n_runs; i++) {
        int k = 0;
        while (!same_kind(kinds[k], plan->runs[i].member)) k++;
        cal[2 * i] = sum[2 * k] / count[k];
        cal[2 * i + 1] = sum[2 * k + 1] / count[k];
    }
    return 0;
}

/* ---- budget.json ---- */

static uint64_t preset_hash(const pl_preset *p) {
    char *text;
    size_t n;
    if (dg_read_file(p->file, &text, &n, NULL) != 0) return 0;
    uint64_t h = pl_hash(text, n);
    free(text);
    return h;
}

/* A kept choice for this preset text and these runs: 1 with *epochs, cal and *when; 0 if none or another's. */
static int read_kept(const char *path, uint64_t hash, const pl_plan *plan, int *epochs, double *cal, char *when,
                     size_t when_n) {
    char *text;
    size_t n;
    if (!dg_path_exists(path) || dg_read_file(path, &text, &n, NULL) != 0) return 0;
    cJSON *j = cJSON_Parse(text);
    free(text);
    char want[32];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)hash);
    cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "preset_hash"), *e = cJSON_GetObjectItemCaseSensitive(j, "epochs");
    cJSON *w = cJSON_GetObjectItemCaseSensitive(j, "chosen"), *runs = cJSON_GetObjectItemCaseSensitive(j, "runs");
    int ok = cJSON_IsString(h) && !strcmp(h->valuestring, want) && cJSON_IsNumber(e) && e->valueint >= 1 &&
             cJSON_IsString(w) && cJSON_IsArray(runs) && cJSON_GetArraySize(runs) == plan->n_runs;
    for (int i = 0; ok && i < plan->n_runs; i++) {
        cJSON *r = cJSON_GetArrayItem(runs, i);
        cJSON *nm = cJSON_GetObjectItemCaseSensitive(r, "name"), *t = cJSON_GetObjectItemCaseSensitive(r, "train_ips");
        cJSON *p = cJSON_GetObjectItemCaseSensitive(r, "predict_ips");
        ok = cJSON_IsString(nm) && !strcmp(nm->valuestring, plan->runs[i].name) && cJSON_IsNumber(t) &&
             t->valuedouble > 0 && cJSON_IsNumber(p) && p->valuedouble > 0;
        if (ok) {
            cal[2 * i] = t->valuedouble;
            cal[2 * i + 1] = p->valuedouble;
        }
    }
    if (ok) {
        *epochs = e->valueint;
        snprintf(when, when_n, "%s", w->valuestring);
    }
    cJSON_Delete(j);
    return ok;
}

static int write_kept(const char *path, uint64_t hash, const pl_plan *plan, const pl_budget_in *in,
                      const pl_budget_out *out, const double *cal, dg_err *err) {
    cJSON *j = cJSON_CreateObject();
    char buf[64];
    snprintf(buf, sizeof buf, "%016llx", (unsigned long long)hash);
    cJSON_AddStringToObject(j, "preset", plan->preset->file);
    cJSON_AddStringToObject(j, "preset_hash", buf);
    time_t now = time(NULL);
    struct tm tmv;
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tmv));
    cJSON_AddStringToObject(j, "chosen", buf);
    cJSON_AddNumberToObject(j, "epochs", out->epochs);
    cJSON_AddBoolToObject(j, "fits", out->fits);
    cJSON_AddNumberToObject(j, "budget_s", in->budget_s);
    cJSON_AddNumberToObject(j, "elapsed_s", in->elapsed_s);
    cJSON_AddNumberToObject(j, "margin_s", in->margin_s);
    cJSON_AddNumberToObject(j, "planned_end_s", out->end_s);
    cJSON_AddNumberToObject(j, "jobs", plan->jobs);
    cJSON_AddNumberToObject(j, "threads_per_job", plan->job_threads);
    cJSON *runs = cJSON_AddArrayToObject(j, "runs");
    for (int i = 0; i < plan->n_runs; i++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "name", plan->runs[i].name);
        cJSON_AddNumberToObject(r, "train_ips", cal[2 * i]);
        cJSON_AddNumberToObject(r, "predict_ips", cal[2 * i + 1]);
        cJSON_AddNumberToObject(r, "epoch_s", in->epoch_s[i]);
        cJSON_AddItemToArray(runs, r);
    }
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return dg_fail(err, "out of memory");
    size_t n = strlen(text);
    text[n] = '\n'; /* cJSON_Print leaves no final newline; overwrite its NUL, write n + 1 bytes */
    int rc = dg_write_file_atomic(path, text, n + 1, err);
    free(text);
    return rc;
}

/* ---- the plan ---- */

/* Append "--deadline T" to a train stage's command (the driver leaves it out of the stamp: see driver.h). */
static int add_deadline(pl_stage *st, double t, dg_err *err) {
    if (st->argc + 3 > PL_MAX_ARGS) return dg_fail(err, "%s: command too long", st->name);
    char v[32];
    snprintf(v, sizeof v, "%.3f", t);
    char *a = strdup("--deadline"), *b = strdup(v);
    if (!a || !b) {
        free(a);
        free(b);
        return dg_fail(err, "out of memory");
    }
    st->argv[st->argc++] = a;
    st->argv[st->argc++] = b;
    st->argv[st->argc] = NULL;
    return 0;
}

/* The budget's start: DIGITS_RUN_START if it is a sane time, else now. */
static double budget_start(double now, FILE *out) {
    const char *s = getenv("DIGITS_RUN_START");
    if (!s || !*s) return now;
    char *end;
    double t = strtod(s, &end);
    if (*end || !(t > 0) || t > now + 1 || now - t > 7 * 86400) {
        fprintf(out, "budget   DIGITS_RUN_START=%s is not a recent UNIX time: the budget starts now\n", s);
        return now;
    }
    return t;
}

int pl_budget_plan(pl_plan *plan, pl_preset *preset, int dry_run, FILE *out, dg_err *err) {
    const pl_adapt *ad = &preset->adapt;
    double now = unix_now(), t0 = budget_start(now, out);
    char path[1200], when[64] = "", exe[1100];
    snprintf(path, sizeof path, "%s/budget.json", plan->o.work);
    snprintf(exe, sizeof exe, "%s/digits-train", plan->o.bin_dir);
    int n = plan->n_runs, rc = -1, epochs = 0;
    double *cal = calloc((size_t)(5 * n), sizeof *cal), *start_s = cal + 2 * n, *epoch_s = start_s + n,
           *predict_s = epoch_s + n;
    double *deadline = calloc((size_t)n, sizeof *deadline);
    if (!cal || !deadline) {
        dg_fail(err, "out of memory");
        goto done;
    }
    uint64_t hash = preset_hash(preset);
    int kept = read_kept(path, hash, plan, &epochs, cal, when, sizeof when);
    int jobs = plan->jobs, threads = plan->job_threads;
    if (!kept) {
        if (dry_run && access(exe, X_OK) != 0) {
            fprintf(out, "budget   no %s to calibrate with: the plan below keeps the preset's epochs\n", exe);
            rc = 0;
            goto done;
        }
        double c0 = dg_now();
        if (calibrate(plan, ad->calibrate_s, cal, err) != 0) goto done;
        fprintf(out, "calibrated %d member(s) side by side, %d thread(s) each, in %.0fs:", jobs, threads,
                dg_now() - c0);
        for (int i = 0; i < n; i++) {
            int dup = 0;
            for (int j = 0; j < i && !dup; j++) dup = same_kind(plan->runs[j].member, plan->runs[i].member);
            if (!dup)
                fprintf(out, " %s train %.0f img/s, predict %.0f img/s;", plan->runs[i].member->model, cal[2 * i],
                        cal[2 * i + 1]);
        }
        fprintf(out, "\n");
    } else {
        fprintf(out, "kept     the plan of %s (%s): %d epochs per member; delete it to plan again\n", path, when,
                epochs);
    }
    /* The plan as it will run: the calibrated speeds are side by side already, so member stages take
     * images / calibrated speed (the plan's estimates divide by speed alone x job_slowdown). */
    for (int i = 0; i < n; i++) {
        start_s[i] = 2;
        epoch_s[i] = (double)plan->n_fit / cal[2 * i] + (double)plan->n_val / cal[2 * i + 1];
        predict_s[i] = 1 + (double)plan->n_test * preset->tta / cal[2 * i + 1];
        if (preset->tta > 1) /* and its validation rows with the same views (predict-val-NAME) */
            predict_s[i] += 1 + (double)plan->n_val * preset->tta / cal[2 * i + 1];
    }
    pl_budget_in in = {.budget_s = preset->budget_minutes * 60, .elapsed_s = unix_now() - t0,
                       .margin_s = ad->margin * preset->budget_minutes * 60, .jobs = jobs, .n_runs = n,
                       .start_s = start_s, .epoch_s = epoch_s, .predict_s = predict_s,
                       .min_epochs = ad->min_epochs, .max_epochs = ad->max_epochs};
    int first_member = plan->n_steps;
    for (int i = 0; i < plan->n_steps; i++)
        if (plan->steps[i].run >= 0 && i < first_member) first_member = i;
    for (int i = 0; i < plan->n_steps; i++)
        if (plan->steps[i].run < 0) *(i < first_member ? &in.before_s : &in.after_s) += plan->steps[i].estimate_s;
    pl_budget_out bo;
    if (kept) in.min_epochs = in.max_epochs = epochs;
    if (pl_budget_choose(&in, &bo, err) != 0) goto done;
    char b[32], el[32], left[32], mar[32], ep[32], mem[32], end[32], spare[32];
    pl_format_seconds(b, sizeof b, in.budget_s);
    pl_format_seconds(el, sizeof el, in.elapsed_s);
    pl_format_seconds(left, sizeof left, bo.left_s);
    pl_format_seconds(mar, sizeof mar, in.margin_s);
    pl_format_seconds(ep, sizeof ep, epoch_s[0]);
    pl_format_seconds(mem, sizeof mem, bo.members_s);
    pl_format_seconds(end, sizeof end, bo.end_s);
    pl_format_seconds(spare, sizeof spare, fabs(in.budget_s - bo.end_s));
    fprintf(out, "budget   %s for the whole run, started %s ago%s: %s left; margin %s (%.0f%%); before the members "
                 "%.0fs, after them %.0fs\n",
            b, el, getenv("DIGITS_RUN_START") ? " (DIGITS_RUN_START)" : " (this program's start)", left, mar,
            100 * ad->margin, in.before_s, in.after_s);
    fprintf(out, "epochs   %d per member (adapt %d..%d)%s: an epoch %s, predict %.0fs; members %s -> planned end %s "
                 "of %s, %s %s",
            bo.epochs, ad->min_epochs, ad->max_epochs, kept ? " (kept)" : "", ep, predict_s[0], mem, end, b, spare,
            bo.end_s <= in.budget_s ? "to spare" : "OVER");
    if (!kept && bo.epochs < ad->max_epochs && bo.fits) {
        char nx[32];
        pl_format_seconds(nx, sizeof nx, bo.end_s - bo.members_s + pl_budget_span(&in, bo.epochs + 1));
        fprintf(out, "; %d would end at %s", bo.epochs + 1, nx);
    }
    fprintf(out, "%s\n",
            bo.fits ? "" : "\n         even the fewest epochs do not fit the budget: planning them anyway");
    pl_budget_deadlines(&in, bo.epochs, deadline);

    /* Rebuild with the chosen epochs, then the calibrated speeds (as speeds alone: x job_slowdown). */
    for (int i = 0; i < preset->n_members; i++) preset->members[i].epochs = bo.epochs;
    pl_opts o = plan->o;
    pl_plan_free(plan);
    if (pl_plan_build(plan, preset, &o, err) != 0 || pl_plan_decide(plan, err) != 0) goto done;
    for (int i = 0; i < n; i++) {
        plan->runs[i].train_ips = cal[2 * i] * plan->job_slowdown;
        plan->runs[i].predict_ips = cal[2 * i + 1] * plan->job_slowdown;
        snprintf(plan->runs[i].speed_from, sizeof plan->runs[i].speed_from, "calibrated side by side, x%.2f",
                 plan->job_slowdown);
    }
    if (pl_plan_decide(plan, err) != 0) goto done;
    for (int i = 0; i < plan->n_steps; i++) {
        pl_step *s = &plan->steps[i];
        if (s->kind != PL_TRAIN) continue;
        if (add_deadline(&s->stage, t0 + deadline[s->run], err) != 0) goto done;
        char d[32];
        pl_format_seconds(d, sizeof d, deadline[s->run]);
        fprintf(out,
                "deadline %s: %s after the start (fewer epochs if the machine slows down, back up to the plan if it "
                "recovers)\n",
                s->stage.name, d);
    }
    if (!kept && !dry_run &&
        (dg_mkdirs(plan->o.work, err) != 0 || write_kept(path, hash, plan, &in, &bo, cal, err) != 0))
        goto done;
    fprintf(out, "\n");
    rc = 0;
done:
    free(cal);
    free(deadline);
    return rc;
}
