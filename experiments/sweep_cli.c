/* experiments/sweep_cli: digits-sweep's options, --help and run (see sweep_cli.h). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "experiments/sweep_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/dg_cli.h"
#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "core/dg_progress.h"
#include "core/dg_rng.h"
#include "experiments/sweep_exec.h"
#include "experiments/sweep_file.h"
#include "experiments/sweep_mpi.h"
#include "experiments/sweep_report.h"
#include "experiments/sweep_store.h"
#include "experiments/sweep_strategy.h"

void sw_cli_usage(FILE *out) {
    fprintf(out,
            "usage: digits-sweep --data FILE.npy [options] SWEEP_FILE\n"
            "\n"
            "Run a hyperparameter sweep (grid, random or ASHA; experiments/sweeps/*.sweep, docs/sweeps.md): each\n"
            "trial is a digits-train process with its own run directory, results go to DIR/sweep.db (SQLite).\n"
            "Killed at any moment and started again, it continues: finished trials are kept, interrupted ones\n"
            "resume from their checkpoints.\n"
            "\n"
            "  --data FILE       labelled dataset (.npy from digits-ingest)\n"
            "  --dir DIR         the sweep's directory (default sweeps/NAME for NAME.sweep): sweep.db, configs/,\n"
            "                    trials/, leaderboard.csv, epochs.csv, best.spec (+ best.policy)\n"
            "  --workers N       trials at once (default 1)\n"
            "  --threads T       threads per trial (default: the file's \"threads\", else CPUs / workers = %d / N)\n"
            "  --retry-failed    run the failed trials again\n"
            "  --train PATH      the digits-train program (default: the one next to digits-sweep)\n"
            "  --top N           leaderboard rows printed (default 20)\n"
            "  --quiet           no line per finished trial, no status lines\n"
            "  --tensorboard TB  each trial also writes its per-epoch scalars to TB/cCCCC-rR (one TensorBoard run\n"
            "                    per trial: tensorboard --logdir TB)\n"
            "  --for D           stop after D (seconds, or with s, m or h: 90m, 8h), as at the file's budget.until\n"
            "                    (the earlier of the two): running trials are stopped and resume at the next start\n"
            "  --lease S         under mpirun/srun: a worker rank silent for S seconds is taken as dead and its\n"
            "                    trial goes back to the queue (default 30; docs/sweeps.md, \"Running on a cluster\")\n"
            "  --help            this text\n"
            "\n"
            "Under mpirun -np N (or srun), rank 0 coordinates and ranks 1..N-1 each run one trial at a time;\n"
            "--workers is then N - 1 and DIR must be on a filesystem every rank sees.\n"
            "\n"
            "Exit status: 0 sweep finished (or stopped at its deadline), 1 failure, 2 usage error.\n",
            dg_default_threads());
}

/* "90", "90s", "1.5m", "8h" -> seconds, in 1 s .. 30 days; 0, or -1 if it is not that. */
static int parse_duration(const char *t, double *secs) {
    char num[64];
    size_t n = strlen(t);
    if (n == 0 || n >= sizeof num) return -1;
    double unit = 1;
    char last = t[n - 1];
    if (last == 's' || last == 'm' || last == 'h') {
        unit = last == 'h' ? 3600 : last == 'm' ? 60 : 1;
        n--;
    }
    memcpy(num, t, n);
    num[n] = '\0';
    double v;
    if (dg_parse_double(num, 0, 1e9, &v) != 0 || !(v * unit >= 1 && v * unit <= 30 * 86400.0)) return -1;
    *secs = v * unit;
    return 0;
}

int sw_cli_parse(int argc, char **argv, sw_cli_opts *o, dg_err *err) {
    memset(o, 0, sizeof *o);
    o->workers = 1;
    o->top = 20;
    o->status_every = 30;
    o->lease = 30;
    o->out = stdout;
    o->log = stderr;
    enum { O_DATA = 256, O_DIR, O_WORKERS, O_THREADS, O_RETRY, O_TRAIN, O_TOP, O_QUIET, O_HELP, O_LEASE, O_TB, O_FOR };
    static const struct option longopts[] = {
        {"data", required_argument, 0, O_DATA},       {"dir", required_argument, 0, O_DIR},
        {"workers", required_argument, 0, O_WORKERS}, {"threads", required_argument, 0, O_THREADS},
        {"retry-failed", no_argument, 0, O_RETRY},    {"train", required_argument, 0, O_TRAIN},
        {"top", required_argument, 0, O_TOP},         {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, O_HELP},             {"lease", required_argument, 0, O_LEASE},
        {"tensorboard", required_argument, 0, O_TB},  {"for", required_argument, 0, O_FOR},
        {0, 0, 0, 0},
    };
    long v;
    int c;
    dg_cli_getopt_reset();
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_DATA: o->data = optarg; break;
        case O_DIR: o->dir = optarg; break;
        case O_WORKERS:
            if (dg_parse_long(optarg, 1, 1024, &v) != 0)
                return dg_cli_usage(err, "--workers %s: expected an integer in 1..1024", optarg);
            o->workers = (int)v;
            break;
        case O_THREADS:
            if (dg_parse_long(optarg, 1, 1024, &v) != 0)
                return dg_cli_usage(err, "--threads %s: expected an integer in 1..1024", optarg);
            o->threads = (int)v;
            break;
        case O_RETRY: o->retry_failed = 1; break;
        case O_TRAIN: o->train = optarg; break;
        case O_TOP:
            if (dg_parse_long(optarg, 0, 1000000, &v) != 0)
                return dg_cli_usage(err, "--top %s: expected an integer in 0..1000000", optarg);
            o->top = (int)v;
            break;
        case O_QUIET: o->log = NULL; break;
        case O_LEASE:
            if (dg_parse_long(optarg, 1, 86400, &v) != 0)
                return dg_cli_usage(err, "--lease %s: expected seconds in 1..86400", optarg);
            o->lease = (double)v;
            break;
        case O_TB: o->tensorboard = optarg; break;
        case O_FOR:
            if (parse_duration(optarg, &o->run_for) != 0)
                return dg_cli_usage(err, "--for %s: expected a duration from 1 s to 30 days: seconds, or a number "
                                         "followed by s, m or h (90m, 8h)", optarg);
            break;
        case O_HELP: o->help = 1; return 0;
        default: return dg_cli_bad_option(c, argv, "", longopts, err);
        }
    }
    if (optind >= argc) return dg_cli_usage(err, "a sweep file is required");
    if (optind + 1 < argc) return dg_cli_usage(err, "unexpected argument '%s'", argv[optind + 1]);
    o->sweep = argv[optind];
    if (!o->data) return dg_cli_usage(err, "--data is required");
    if (!o->dir) {
        const char *b = strrchr(o->sweep, '/');
        b = b ? b + 1 : o->sweep;
        size_t n = strlen(b);
        if (dg_ends_with(b, ".sweep")) n -= 6;
        snprintf(o->dir_buf, sizeof o->dir_buf, "sweeps/%.*s", (int)n, b);
        o->dir = o->dir_buf;
    }
    return 0;
}

/* ---- the run ---- */

/* Where a job runs: a local slot (pid: a digits-train child of this process) or, under MPI, worker rank
 * (slot index + 1) of sweep_mpi.h (remote: a job is out there; dead: the rank stopped answering). */
typedef struct slot {
    pid_t pid; /* 0: free */
    int remote, dead;
    sw_job job;
    double t0;
} slot;

static int slot_busy(const slot *sl) { return sl->pid != 0 || sl->remote; }

typedef struct sweep {
    const sw_cli_opts *o;
    sw_sweep s;
    sw_store *st;
    sw_exec_cfg ex;
    sw_mpi *mpi;       /* NULL: local slots */
    char dir[512], train[1024], data[1024];
    int reps, n, K, workers;
    double *val;
    unsigned char *have, *failed, *running;
    int *target, *state, *order, *n_order, *last_state, *order0;
    sw_results r;
    sw_decisions d;
    slot *slots;
    struct pend {      /* results read but not yet in the db: committed after the next trainers started, so that
                          the commit's fsync is not on the path from one trial to the next */
        sw_job job;
        int epoch;
        double acc, loss, secs;
        char *metrics;
    } *pend;
    int n_pend;
    double deadline;   /* wall-clock seconds (time()); 0: none */
    double t_start;
    double done_secs, done_epochs; /* the epochs of the jobs finished in this run and their seconds (the pace) */
} sweep;

static void logf_(const sweep *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const sweep *w, const char *fmt, ...) {
    if (!w->o->log) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(w->o->log, fmt, ap);
    va_end(ap);
    fflush(w->o->log);
}

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The first `rows` records of the data (ds, open) as DIR/data.npy (kept across restarts). */
static int subset(sweep *w, const dg_dataset *ds, dg_err *err) {
    snprintf(w->data, sizeof w->data, "%s/data.npy", w->dir);
    if (dg_path_exists(w->data)) return 0;
    if (!ds->has_labels) return dg_fail(err, "%s: no labels (a sweep trains on a labelled dataset)", w->o->data);
    size_t n = (size_t)w->s.rows < ds->n ? (size_t)w->s.rows : ds->n;
    dg_dataset_writer wr;
    int rc = dg_dataset_writer_open(&wr, w->data, 1, err);
    if (rc == 0 && dg_dataset_writer_add_records(&wr, ds->records, n, err) != 0) {
        dg_dataset_writer_abort(&wr);
        rc = -1;
    }
    if (rc == 0) rc = dg_dataset_writer_commit(&wr, err);
    return rc;
}

/* Every configuration's spec (and policy) file, and its trial rows. */
static int add_configs(sweep *w, dg_err *err) {
    sw_value v[SW_MAX_PARAMS];
    uint64_t seeds[1024];
    int folds[1024];
    char dirs[1024][64];
    const char *dp[1024];
    if (w->reps > 1024) return dg_fail(err, "%s: more than 1024 replicates per configuration", w->s.file);
    for (int r = 0; r < w->reps; r++) {
        seeds[r] = sw_rep_seed(&w->s, r);
        folds[r] = sw_rep_fold(&w->s, r);
    }
    char *abs = realpath(w->dir, NULL);
    if (!abs) return dg_fail_errno(err, "%s", w->dir);
    sw_store_begin(w->st); /* one transaction for all the rows */
    int rc = 0;
    for (int c = 0; c < w->n && rc == 0; c++) {
        char sp[1024], pp[1024], name[96], *spec = NULL, *pol = NULL, *json = NULL;
        sw_config_values(&w->s, c, v);
        snprintf(name, sizeof name, "sweep-c%04d", c);
        snprintf(pp, sizeof pp, "%s/configs/c%04d.policy", abs, c);
        sw_config_path(w->dir, c, "spec", sp, sizeof sp);
        rc = sw_config_render(&w->s, v, name, pp, &spec, &pol, err);
        if (rc == 0 && pol) rc = sw_write_if_changed(pp, pol, err);
        if (rc == 0) rc = sw_write_if_changed(sp, spec, err);
        if (rc == 0 && !(json = sw_config_json(&w->s, v))) rc = dg_fail(err, "out of memory");
        for (int r = 0; rc == 0 && r < w->reps; r++) {
            snprintf(dirs[r], sizeof dirs[r], "trials/c%04d-r%d", c, r);
            dp[r] = dirs[r];
        }
        if (rc == 0) rc = sw_store_add_config(w->st, c, w->reps, json, spec, seeds, folds, dp, err);
        free(spec);
        free(pol);
        free(json);
    }
    free(abs);
    if (sw_store_commit(w->st, rc == 0 ? err : &(dg_err){{0}}) != 0) rc = -1;
    return rc;
}

static int stop_epoch(const sweep *w, int rung) {
    /* the last rung trains to the end of the schedule (result.json) */
    return rung == w->K - 1 ? 0 : w->s.rungs[rung];
}

static void params_text(const sweep *w, int c, char *buf, size_t n) {
    sw_value v[SW_MAX_PARAMS];
    sw_config_values(&w->s, c, v);
    buf[0] = '\0';
    for (int j = 0; j < w->s.n_params; j++) {
        char b[80];
        sw_value_format(&v[j], b, sizeof b);
        size_t l = strlen(buf);
        snprintf(buf + l, n - l, "%s%s=%s", j ? " " : "", w->s.params[j].name, b);
    }
}

/* A job reached its rung: the result into the db and the arrays. */
static int record(sweep *w, const sw_job *j, int epoch, double acc, double loss, double secs, const char *metrics,
                  dg_err *err) {
    int t = j->config * w->reps + j->rep;
    const char *state = j->rung == w->K - 1 ? "complete" : "waiting";
    if (sw_store_result(w->st, t, j->rung, epoch, acc, loss, secs, metrics, state, wall_now(), err) != 0) return -1;
    size_t i = (size_t)t * (size_t)w->K + (size_t)j->rung;
    w->val[i] = w->s.maximize ? acc : loss;
    w->have[i] = 1;
    w->done_secs += secs, w->done_epochs += epoch;
    char p[512];
    params_text(w, j->config, p, sizeof p);
    logf_(w, "c%04d r%d rung %d/%d epoch %d: val_acc %.4f val_loss %.4f  %.1f s  [%s]\n", j->config, j->rep,
          j->rung + 1, w->K, epoch, acc, loss, secs, p);
    return 0;
}

/* Commit the pending results. */
static int flush(sweep *w, dg_err *err) {
    int rc = 0;
    for (int i = 0; i < w->n_pend; i++) {
        struct pend *p = &w->pend[i];
        int t = p->job.config * w->reps + p->job.rep;
        const char *state = p->job.rung == w->K - 1 ? "complete" : "waiting";
        if (rc == 0 && sw_store_result(w->st, t, p->job.rung, p->epoch, p->acc, p->loss, p->secs, p->metrics, state,
                                       wall_now(), err) != 0)
            rc = -1;
        free(p->metrics);
    }
    w->n_pend = 0;
    return rc;
}

static int job_failed(sweep *w, const sw_job *j, const char *reason, dg_err *err) {
    int t = j->config * w->reps + j->rep;
    if (sw_store_fail(w->st, t, reason, wall_now(), err) != 0) return -1;
    w->failed[t] = 1;
    logf_(w, "c%04d r%d rung %d/%d: FAILED: %s\n", j->config, j->rep, j->rung + 1, w->K, reason);
    return 0;
}

/* The job to worker rank (slot index + 1) under MPI: it starts digits-train on its node (sweep_mpi.h). */
static int launch_remote(sweep *w, slot *sl, const sw_job *j, const char *rd, const char *sp, dg_err *err) {
    int t = j->config * w->reps + j->rep, rank = (int)(sl - w->slots) + 1;
    if (sw_mpi_send_job(w->mpi, rank, &w->ex, j, rd, sp, sw_rep_seed(&w->s, j->rep), sw_rep_fold(&w->s, j->rep),
                        stop_epoch(w, j->rung), err) != 0 ||
        sw_store_start_on(w->st, t, j->rung, sw_mpi_where(w->mpi, rank), sw_mpi_pid(w->mpi, rank), wall_now(),
                          err) != 0)
        return -1;
    sl->remote = 1;
    sl->job = *j;
    sl->t0 = dg_now();
    w->running[t] = 1;
    return 1;
}

/* Start a job, or record it at once if its run directory already holds the target (a coordinator killed after
 * the trainer finished and before the db heard of it). */
static int launch(sweep *w, slot *sl, const sw_job *j, dg_err *err) {
    char rd[1024], sp[1024];
    sw_trial_dir(w->dir, j->config, j->rep, rd, sizeof rd);
    sw_config_path(w->dir, j->config, "spec", sp, sizeof sp);
    int epoch;
    double acc, loss, secs;
    char *m = NULL;
    int h = sw_exec_harvest(rd, stop_epoch(w, j->rung), &epoch, &acc, &loss, &secs, &m, err);
    if (h < 0) return -1;
    if (h == 1) {
        int rc = record(w, j, epoch, acc, loss, secs, m, err);
        free(m);
        return rc;
    }
    if (w->mpi) return launch_remote(w, sl, j, rd, sp, err);
    pid_t pid;
    int t = j->config * w->reps + j->rep;
    if (sw_exec_start(&w->ex, rd, sp, sw_rep_seed(&w->s, j->rep), sw_rep_fold(&w->s, j->rep), stop_epoch(w, j->rung),
                      &pid, err) != 0)
        return -1;
    if (sw_store_start(w->st, t, j->rung, (int)pid, wall_now(), err) != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    sl->pid = pid;
    sl->job = *j;
    sl->t0 = dg_now();
    w->running[t] = 1;
    return 1;
}

/* A job reached its target: the arrays now, the db after the next launches (flush); a kill in between finds the
 * result in the run directory when the sweep starts again. Takes metrics. */
static int got_result(sweep *w, const sw_job *j, int epoch, double acc, double loss, double secs, char *metrics) {
    size_t i = ((size_t)j->config * (size_t)w->reps + (size_t)j->rep) * (size_t)w->K + (size_t)j->rung;
    w->val[i] = w->s.maximize ? acc : loss;
    w->have[i] = 1;
    w->done_secs += secs, w->done_epochs += epoch;
    w->pend[w->n_pend++] = (struct pend){*j, epoch, acc, loss, secs, metrics};
    char p[512];
    params_text(w, j->config, p, sizeof p);
    logf_(w, "c%04d r%d rung %d/%d epoch %d: val_acc %.4f val_loss %.4f  %.1f s  [%s]\n", j->config, j->rep,
          j->rung + 1, w->K, epoch, acc, loss, secs, p);
    return 0;
}

/* A worker rank answered (or was found dead): its job's result or failure; a dead rank's job back to the queue. */
static int reap_remote(sweep *w, sw_mpi_outcome *o, dg_err *err) {
    slot *sl = &w->slots[o->rank - 1];
    const sw_job j = sl->job;
    int t = j.config * w->reps + j.rep, had = sl->remote;
    if (o->kind == SW_MPI_DEAD) {
        sl->dead = 1;
        sl->remote = 0;
        if (!had) {
            logf_(w, "sweep: %s; it gets no more trials\n", o->reason);
            return 0;
        }
        w->running[t] = 0;
        logf_(w, "sweep: %s; trial c%04d r%d goes back to the queue\n", o->reason, j.config, j.rep);
        return sw_store_requeue(w->st, t, err);
    }
    if (!had || o->job.config != j.config || o->job.rep != j.rep || o->job.rung != j.rung) { /* not its job */
        free(o->metrics);
        return 0;
    }
    sl->remote = 0;
    w->running[t] = 0;
    if (o->kind == SW_MPI_RESULT) return got_result(w, &j, o->epoch, o->val_acc, o->val_loss, o->seconds, o->metrics);
    return job_failed(w, &j, o->reason, err);
}

/* A trainer exited: its result or its failure. */
static int reap(sweep *w, slot *sl, int status, dg_err *err) {
    const sw_job *j = &sl->job;
    int t = j->config * w->reps + j->rep;
    w->running[t] = 0;
    sl->pid = 0;
    char rd[1024], reason[512];
    sw_trial_dir(w->dir, j->config, j->rep, rd, sizeof rd);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        int epoch;
        double acc, loss, secs;
        char *m = NULL;
        int h = sw_exec_harvest(rd, stop_epoch(w, j->rung), &epoch, &acc, &loss, &secs, &m, err);
        if (h < 0) return -1;
        if (h == 1) return got_result(w, j, epoch, acc, loss, secs, m);
        snprintf(reason, sizeof reason, "digits-train exited 0 without reaching epoch %d", stop_epoch(w, j->rung));
        return job_failed(w, j, reason, err);
    }
    sw_exec_reason(rd, status, reason, sizeof reason);
    if (sw_exec_disk_full(reason))
        return dg_fail(err, "%s: %s: the sweep stops (its finished work is kept; start it again when there is room)",
                       rd, reason);
    return job_failed(w, j, reason, err);
}

/* Configurations newly pruned or complete: their trials' state in the db. */
static int sync_states(sweep *w, int *decided, dg_err *err) {
    *decided = 0;
    for (int c = 0; c < w->n; c++) {
        int s = w->state[c];
        if (s != SW_OPEN) (*decided)++;
        if (s == w->last_state[c]) continue;
        if ((s == SW_PRUNED || s == SW_COMPLETE) &&
            sw_store_config_state(w->st, c, s == SW_PRUNED ? "pruned" : "complete", err) != 0)
            return -1;
        w->last_state[c] = s;
    }
    return 0;
}

/* The status line's estimate: the epochs each open configuration's trials still train to reach their current
 * target rung (a running trial's own metrics.jsonl says how far it has got), at the running trials' recent pace
 * (their last SW_PACE_EPOCHS epochs; before any has one, the mean of the finished jobs' epochs), as the workers would
 * share them out. */
static void status_line(sweep *w, int decided, int running) {
    int comp = 0, pruned = 0, failed = 0, n_left = 0, n_recent = 0;
    double secs = w->done_secs, epochs = w->done_epochs, recent = 0;
    int *left = malloc(((size_t)w->n * (size_t)w->reps + 1) * sizeof *left);
    for (int c = 0; c < w->n; c++) {
        comp += w->state[c] == SW_COMPLETE;
        pruned += w->state[c] == SW_PRUNED;
        failed += w->state[c] == SW_FAILED;
        if (w->state[c] != SW_OPEN) continue;
        int tr = w->target[c];
        sw_value vals[SW_MAX_PARAMS];
        sw_config_values(&w->s, c, vals);
        int target = sw_config_epochs(&w->s, vals, tr); /* a swept train.epochs, not the base spec's */
        for (int r = 0; r < w->reps; r++) {
            int hi = 0, t = c * w->reps + r;
            for (int k = 0; k < w->K; k++)
                if (w->have[((size_t)c * (size_t)w->reps + (size_t)r) * (size_t)w->K + (size_t)k])
                    hi = sw_config_epochs(&w->s, vals, k);
            if (w->running[t]) {
                char rd[1024];
                int e;
                double sec, rec;
                sw_trial_dir(w->dir, c, r, rd, sizeof rd);
                sw_exec_progress(rd, &e, &sec, &rec);
                if (e > hi) hi = e;
                secs += sec, epochs += e;
                if (rec > 0) recent += rec, n_recent++;
            }
            if (left && target > hi) left[n_left++] = target - hi;
        }
    }
    char eta[160] = "ETA unknown";
    if (left && epochs > 0) {
        double pace = n_recent ? recent / n_recent : secs / epochs, t = sw_eta(left, n_left, w->workers, pace);
        snprintf(eta, sizeof eta, "about %.0f min left for the configurations open now (%.0f s per epoch)", t / 60,
                 pace);
    }
    free(left);
    char dl[128] = "";
    if (w->deadline > 0) {
        double to_go = w->deadline - wall_now();
        snprintf(dl, sizeof dl, "; deadline in %dh%02dm", (int)(to_go / 3600), (int)(to_go / 60) % 60);
    }
    logf_(w, "sweep: %d/%d configurations decided (%d complete, %d pruned, %d failed), %d trials running; %s%s\n",
          decided, w->n, comp, pruned, failed, running, eta, dl);
}

static int sweep_loop(sweep *w, dg_err *err) {
    double last_beat = dg_now(), last_status = dg_now();
    sw_job *jobs = malloc((size_t)w->workers * sizeof *jobs);
    if (!jobs) return dg_fail(err, "out of memory");
    /* SIGCHLD is blocked and waited for with sigtimedwait: a trainer's end is seen at once (a polling sleep would
     * add its half-period to every trial), and the loop wakes at least every 0.5 s for heartbeats and status */
    sigset_t chld, old_mask;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old_mask);
    int rc = 0, dirty = 1;
    for (;;) {
        /* decide again only when a result or a failure came in */
        if (dirty && sw_decide(&w->r, &w->d) != 0) {
            rc = dg_fail(err, "out of memory");
            break;
        }
        dirty = 0;
        int decided = 0, running = 0;
        for (int c = 0; c < w->n; c++) decided += w->state[c] != SW_OPEN;
        for (int i = 0; i < w->workers; i++) running += slot_busy(&w->slots[i]);
        if (w->deadline > 0 && wall_now() >= w->deadline) {
            if ((rc = flush(w, err)) != 0) break;
            for (int i = 0; i < w->workers; i++)
                if (w->slots[i].pid) {
                    kill(w->slots[i].pid, SIGTERM);
                    waitpid(w->slots[i].pid, NULL, 0);
                    w->slots[i].pid = 0;
                }
            for (int i = 0; i < w->workers; i++) w->slots[i].remote = 0; /* sw_mpi_end stops them */
            rc = sw_store_unrun(w->st, err);
            logf_(w, "sweep: deadline reached with %d of %d configurations decided; run again to go on\n", decided,
                  w->n);
            break;
        }
        int live = 0, harvested = 0;
        for (int i = 0; i < w->workers; i++) live += !w->slots[i].dead;
        int nfree = live - running;
        /* the starts, results and states go into a batch, committed once a second (after the launches) */
        sw_store_begin(w->st);
        if (nfree > 0) {
            int nj = sw_next_jobs(&w->r, &w->d, w->running, jobs, nfree);
            for (int q = 0; q < nj && rc == 0; q++) {
                slot *sl = NULL;
                for (int i = 0; i < w->workers; i++)
                    if (!slot_busy(&w->slots[i]) && !w->slots[i].dead) {
                        sl = &w->slots[i];
                        break;
                    }
                int l = launch(w, sl, &jobs[q], err);
                if (l < 0) rc = -1;
                harvested += l == 0;
            }
            if (rc != 0) break;
            if (harvested) {
                dirty = 1; /* a result found in a run directory changes the decisions */
                continue;
            }
        }
        if ((rc = flush(w, err)) != 0 || (rc = sync_states(w, &decided, err)) != 0 ||
            (rc = sw_store_commit_due(w->st, err)) != 0)
            break;
        running = 0;
        for (int i = 0; i < w->workers; i++) running += slot_busy(&w->slots[i]);
        if (running == 0) {
            if (decided == w->n) break;
            if (live == 0) {
                rc = dg_fail(err, "every worker rank stopped answering; run the sweep again to go on");
                break;
            }
            /* nothing runnable and nothing running, yet undecided: cannot happen with a consistent db */
            rc = dg_fail(err, "%s: %d configurations undecided with nothing to run (a damaged sweep.db?)", w->dir,
                         w->n - decided);
            break;
        }
        int status;
        pid_t p = w->mpi ? 0 : waitpid(-1, &status, WNOHANG);
        if (p < 0 && errno != EINTR) {
            rc = dg_fail_errno(err, "waitpid");
            break;
        }
        if (p > 0) {
            for (int i = 0; i < w->workers; i++)
                if (w->slots[i].pid == p) {
                    rc = reap(w, &w->slots[i], status, err);
                    break;
                }
            if (rc != 0) break;
            dirty = 1;
            continue;
        }
        if (w->mpi) { /* the remote slots: an answer, or 0.5 s of pings and heartbeats */
            sw_mpi_outcome out;
            int got = sw_mpi_wait(w->mpi, 0.5, &out, err);
            if (got < 0 || (got > 0 && reap_remote(w, &out, err) != 0)) {
                rc = -1;
                break;
            }
            if (got > 0) {
                dirty = 1;
                continue;
            }
        } else {
            struct timespec ts = {0, 500 * 1000 * 1000};
            sigtimedwait(&chld, NULL, &ts);
        }
        double now = dg_now();
        if (now - last_beat >= 5) {
            if ((rc = sw_store_heartbeat(w->st, wall_now(), 60, err)) != 0) break;
            last_beat = now;
        }
        if (now - last_status >= w->o->status_every) {
            status_line(w, decided, running);
            last_status = now;
        }
    }
    dg_err e2;
    if (flush(w, rc == 0 ? err : &e2) != 0) rc = -1;
    if (sw_store_commit(w->st, rc == 0 ? err : &e2) != 0) rc = -1;
    free(jobs);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    return rc;
}

static int run_sweep(const sw_cli_opts *o, sw_mpi *mpi, dg_err *err) {
    sweep w;
    memset(&w, 0, sizeof w);
    w.o = o;
    w.mpi = mpi;
    w.t_start = dg_now();
    int rc = DG_EXIT_FAIL, lock = -1;
    if (sw_sweep_load(&w.s, o->sweep, err) != 0) return DG_EXIT_FAIL;
    /* the dataset must open before anything is created for the sweep (kept open for subset) */
    dg_dataset probe;
    if (dg_dataset_open(&probe, o->data, err) != 0) {
        sw_sweep_free(&w.s);
        return DG_EXIT_FAIL;
    }
    snprintf(w.dir, sizeof w.dir, "%s", o->dir);
    char p[1100];
    if (dg_mkdirs(w.dir, err) != 0) goto done;
    snprintf(p, sizeof p, "%s/configs", w.dir);
    if (dg_mkdirs(p, err) != 0) goto done;
    snprintf(p, sizeof p, "%s/trials", w.dir);
    if (dg_mkdirs(p, err) != 0) goto done;
    /* one coordinator per sweep: the lock is released when the process dies, however it dies */
    snprintf(p, sizeof p, "%s/sweep.lock", w.dir);
    lock = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock < 0) {
        dg_fail_errno(err, "%s: cannot open", p);
        goto done;
    }
    if (flock(lock, LOCK_EX | LOCK_NB) != 0) {
        dg_fail(err, "%s: another digits-sweep is running this sweep", w.dir);
        goto done;
    }
    /* the trainer */
    if (o->train) {
        snprintf(w.train, sizeof w.train, "%s", o->train);
    } else {
        ssize_t k = readlink("/proc/self/exe", w.train, sizeof w.train - 32);
        if (k <= 0) {
            dg_fail_errno(err, "/proc/self/exe: cannot read");
            goto done;
        }
        w.train[k] = '\0';
        char *slash = strrchr(w.train, '/');
        strcpy(slash ? slash + 1 : w.train, "digits-train");
    }
    if (access(w.train, X_OK) != 0) {
        dg_fail_errno(err, "%s: cannot run", w.train);
        goto done;
    }
    if (w.s.rows > 0) {
        if (subset(&w, &probe, err) != 0) goto done;
    } else {
        char *abs = realpath(o->data, NULL);
        if (!abs) {
            dg_fail_errno(err, "%s", o->data);
            goto done;
        }
        snprintf(w.data, sizeof w.data, "%s", abs);
        free(abs);
    }
    dg_dataset_close(&probe);
    w.workers = mpi ? sw_mpi_workers(mpi) : o->workers;
    int threads = o->threads ? o->threads : w.s.threads;
    if (!threads && !mpi) { /* under MPI, 0: each worker rank splits its node's CPUs (sweep_mpi.h) */
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cpus > w.workers ? (int)(cpus / w.workers) : 1;
    }
    w.ex = (sw_exec_cfg){w.train, w.data, w.s.val_frac, w.s.folds, w.s.split_seed, threads, o->tensorboard};
    snprintf(p, sizeof p, "%s/sweep.db", w.dir);
    int recovered = 0;
    if (sw_store_open(&w.st, p, w.s.hash, w.s.file, &recovered, err) != 0) goto done;
    if (recovered) logf_(&w, "sweep: %d trials were running when the last coordinator stopped; they resume\n", recovered);
    w.reps = sw_reps(&w.s);
    w.n = w.s.n_configs;
    w.K = w.s.n_rungs;
    if (add_configs(&w, err) != 0) goto done;
    if (o->retry_failed) {
        int k = sw_store_retry_failed(w.st, err);
        if (k < 0) goto done;
        logf_(&w, "sweep: %d failed trials run again\n", k);
    }
    size_t nt = (size_t)w.n * (size_t)w.reps;
    w.val = calloc(nt * (size_t)w.K + 1, sizeof *w.val);
    w.have = calloc(nt * (size_t)w.K + 1, 1);
    w.failed = calloc(nt + 1, 1);
    w.running = calloc(nt + 1, 1);
    w.target = calloc((size_t)w.n + 1, sizeof(int));
    w.state = calloc((size_t)w.n + 1, sizeof(int));
    w.last_state = calloc((size_t)w.n + 1, sizeof(int));
    w.order = calloc((size_t)w.n * (size_t)w.K + 1, sizeof(int));
    w.n_order = calloc((size_t)w.K, sizeof(int));
    w.slots = calloc((size_t)w.workers, sizeof *w.slots);
    w.pend = calloc((size_t)w.workers, sizeof *w.pend);
    if (!w.val || !w.have || !w.failed || !w.running || !w.target || !w.state || !w.last_state || !w.order ||
        !w.n_order || !w.slots || !w.pend) {
        dg_fail(err, "out of memory");
        goto done;
    }
    if (sw_store_load(w.st, w.n, w.reps, w.K, w.s.maximize, w.val, w.have, w.failed, err) != 0) goto done;
    /* ASHA reads rung 0 in a shuffled order keyed by the sweep seed: in a grid's order (sorted by each
     * parameter) the better configurations would arrive last and each would look promotable */
    w.order0 = calloc((size_t)w.n + 1, sizeof(int));
    if (!w.order0) {
        dg_fail(err, "out of memory");
        goto done;
    }
    {
        uint32_t *perm = malloc(((size_t)w.n + 1) * sizeof *perm);
        if (!perm) {
            dg_fail(err, "out of memory");
            goto done;
        }
        for (int c = 0; c < w.n; c++) perm[c] = (uint32_t)c;
        if (w.K > 1) {
            dg_rng rng = dg_rng_make(w.s.seed, SW_RNG_ORDER, 0, 0);
            dg_rng_shuffle_u32(&rng, perm, (uint32_t)w.n);
        }
        for (int c = 0; c < w.n; c++) w.order0[c] = (int)perm[c];
        free(perm);
    }
    w.r = (sw_results){w.n, w.reps, w.K, w.s.eta, w.s.maximize, w.val, w.have, w.failed, w.order0};
    w.d = (sw_decisions){w.target, w.state, w.order, w.n_order};
    for (int c = 0; c < w.n; c++) w.last_state[c] = -1;
    if (w.s.until_min >= 0) w.deadline = (double)sw_until_deadline(w.s.until_min, time(NULL));
    double for_end = o->run_for > 0 ? wall_now() + o->run_for : 0; /* --for's deadline; the earlier one counts */
    if (for_end > 0 && (w.deadline == 0 || for_end < w.deadline)) w.deadline = for_end;
    char thr[32] = "CPUs/ranks per node"; /* under MPI without a threads setting */
    if (threads) snprintf(thr, sizeof thr, "%d", threads);
    logf_(&w, "sweep %s: %d configurations x %d replicates, %s, %d %s x %s threads, in %s\n", w.s.file, w.n,
          w.reps, w.s.strategy == SW_GRID ? "grid" : w.s.strategy == SW_RANDOM ? "random" : "asha", w.workers,
          mpi ? "MPI worker ranks" : "workers", thr, w.dir);
    if (sweep_loop(&w, err) != 0) goto done;
    {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double cpu = (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
                     1e-6 * (double)ru.ru_stime.tv_usec,
               wall = dg_now() - w.t_start;
        logf_(&w, "sweep: done in %.1f s; the coordinator used %.2f s of CPU (%.2f%% of a core)\n", wall, cpu,
              wall > 0 ? 100 * cpu / wall : 0);
    }
    sw_row *rows;
    int n = sw_report_rows(&w.s, &w.r, &w.d, w.st, &rows, err);
    if (n < 0) goto done;
    int wr = sw_report_write(&w.s, rows, n, w.dir, err);
    if (wr == 0 && o->out) sw_report_print(&w.s, rows, n, o->top, o->out);
    free(rows);
    if (wr != 0) goto done;
    rc = DG_EXIT_OK;
done:
    dg_dataset_close(&probe);
    for (int i = 0; w.slots && i < w.workers; i++)
        if (w.slots[i].pid) {
            kill(w.slots[i].pid, SIGKILL);
            waitpid(w.slots[i].pid, NULL, 0);
        }
    if (w.st) {
        dg_err e2;
        sw_store_unrun(w.st, &e2);
    }
    sw_store_close(w.st);
    if (lock >= 0) close(lock);
    free(w.val);
    free(w.have);
    free(w.failed);
    free(w.running);
    free(w.target);
    free(w.state);
    free(w.last_state);
    free(w.order);
    free(w.n_order);
    free(w.slots);
    free(w.pend);
    free(w.order0);
    sw_sweep_free(&w.s);
    return rc;
}

int sw_cli_run(const sw_cli_opts *o, dg_err *err) {
    /* under mpirun/srun: rank 0 runs the sweep with the other ranks as its workers, which only run jobs */
    sw_mpi *mpi = NULL;
    int role = sw_mpi_begin(&mpi, o->lease, err);
    if (role < 0) return DG_EXIT_FAIL;
    if (role == SW_MPI_ALONE && o->log) {
        fprintf(o->log, "sweep: one MPI rank: running locally with --workers %d (mpirun -np N gives N - 1 worker "
                        "ranks)\n", o->workers);
        fflush(o->log);
    }
    int rc = role == SW_MPI_WORKER ? (sw_mpi_worker(mpi, err) == 0 ? DG_EXIT_OK : DG_EXIT_FAIL)
                                   : run_sweep(o, mpi, err);
    sw_mpi_end(mpi);
    return rc;
}
