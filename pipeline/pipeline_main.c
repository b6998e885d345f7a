/* digits-pipeline: one command from the competition CSVs to submission.csv. Runs ingest -> train members ->
 * predict -> ensemble as child processes of the sibling executables, from a preset (experiments/presets/), and
 * skips every stage whose inputs have not changed, so re-running after a crash resumes (see pipeline/plan.h,
 * pipeline/driver.h, docs/pipeline.md). With jobs > 1 the members' chains run that many at a time: one loop
 * starts what may start, then waits for any child (waitpid(-1)), copying the piped output of concurrent children
 * line by line with a "[member] " prefix. */
#define _GNU_SOURCE 1 /* pipe2 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/dg_cli.h"
#include "core/dg_file.h"
#include "core/dg_progress.h"
#include "pipeline/driver.h"
#include "pipeline/plan.h"
#include "pipeline/preset.h"

typedef struct opts {
    const char *preset, *data_dir, *work, *output, *bin_dir;
    int threads, jobs, dry_run;
} opts;

static const opts kDefaults = {"default", "data", NULL, "submission.csv", NULL, 0, 0, 0};

static void usage(FILE *out) {
    fprintf(out,
            "usage: digits-pipeline [options]\n"
            "  Runs ingest -> train members -> predict -> ensemble from a preset and writes a Kaggle submission.\n"
            "  Stages whose inputs have not changed are skipped; re-running after a crash or kill resumes (finished\n"
            "  members are kept, an unfinished one continues from its checkpoint). The plan, with an estimated\n"
            "  time per stage, is printed first.\n"
            "  -p, --preset NAME|PATH  experiments/presets/NAME.preset or a file (default %s; also quick, overnight)\n"
            "  -d, --data-dir DIR      train.csv, test.csv, sample_submission.csv; train.npy and test.npy are\n"
            "                          written here (default %s)\n"
            "  -w, --work DIR          run directories, predictions, stamps (default runs/<preset>)\n"
            "  -o, --output PATH       the submission; its manifest goes beside it as *.manifest.json (default %s)\n"
            "      --threads T         threads (default: OMP_NUM_THREADS or all CPUs, now %d); with N jobs each\n"
            "                          member stage gets max(1, T/N)\n"
            "  -j, --jobs N            members (train then predict) at the same time (default: the preset's jobs=,\n"
            "                          else 1); with N > 1 their output lines are prefixed with [member]\n"
            "      --bin-dir DIR       where digits-ingest/-train/-predict/-ensemble are (default: beside this\n"
            "                          program)\n"
            "  -n, --dry-run           print the plan only\n"
            "  -h, --help\n",
            kDefaults.preset, kDefaults.data_dir, kDefaults.output, dg_default_threads());
}

/* One line about the submission from its manifest. */
static void report_manifest(const char *output) {
    char path[1200];
    size_t ol = strlen(output);
    int csv = ol > 4 && strcmp(output + ol - 4, ".csv") == 0;
    snprintf(path, sizeof path, "%.*s.manifest.json", (int)(csv ? ol - 4 : ol), output);
    char *text;
    size_t n;
    if (dg_read_file(path, &text, &n, NULL) != 0) return;
    cJSON *m = cJSON_Parse(text);
    free(text);
    cJSON *est = cJSON_GetObjectItemCaseSensitive(m, "estimate");
    cJSON *mode = cJSON_GetObjectItemCaseSensitive(est, "mode");
    cJSON *acc = cJSON_GetObjectItemCaseSensitive(est, "ensemble_acc");
    cJSON *mean = cJSON_GetObjectItemCaseSensitive(est, "mean_member_acc");
    cJSON *gain = cJSON_GetObjectItemCaseSensitive(est, "gain");
    cJSON *rows = cJSON_GetObjectItemCaseSensitive(m, "rows");
    printf("submission %s: %d rows; manifest %s\n", output, cJSON_IsNumber(rows) ? rows->valueint : -1, path);
    if (cJSON_IsString(mode) && cJSON_IsNumber(acc) && cJSON_IsNumber(mean) && cJSON_IsNumber(gain))
        printf("estimated accuracy %.4f (%s validation), mean member %.4f, ensemble gain %+.4f\n", acc->valuedouble,
               mode->valuestring, mean->valuedouble, gain->valuedouble);
    cJSON_Delete(m);
}

/* A status line on stdout, flushed at once so that it keeps its place among the stages' stderr lines. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/* A stage that is running. */
typedef struct child {
    pid_t pid;       /* 0: a free slot */
    int step;
    pl_action action;
    double t0;
    int fd;          /* read end of the pipe carrying its stdout and stderr; -1: it writes to ours */
    char line[4096]; /* the start of a line not yet complete */
    size_t n;
} child;

/* Copy a child's complete lines from its pipe to stderr, each prefixed with "[prefix] ". final (the child has
 * exited): take what is left without waiting for processes it may have left behind, and close the pipe. */
static void pump(child *k, const char *prefix, int final) {
    for (;;) {
        ssize_t got = read(k->fd, k->line + k->n, sizeof k->line - 1 - k->n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && errno == EAGAIN && !final) return;
        if (got <= 0) break;
        k->n += (size_t)got;
        char *start = k->line, *nl;
        while ((nl = memchr(start, '\n', k->n - (size_t)(start - k->line))) != NULL) {
            fprintf(stderr, "[%s] %.*s\n", prefix, (int)(nl - start), start);
            start = nl + 1;
        }
        k->n -= (size_t)(start - k->line);
        memmove(k->line, start, k->n);
        if (k->n == sizeof k->line - 1) { /* a very long line goes out in pieces */
            fprintf(stderr, "[%s] %.*s\n", prefix, (int)k->n, k->line);
            k->n = 0;
        }
    }
    if (k->n) fprintf(stderr, "[%s] %.*s\n", prefix, (int)k->n, k->line);
    k->n = 0;
    close(k->fd);
    k->fd = -1;
}

/* Wait for any child to exit (waitpid(-1)), meanwhile copying the piped children's output. Returns its slot. */
static int wait_any(child *kids, int nk, const pl_plan *plan, int *status, dg_err *err) {
    for (;;) {
        struct pollfd pf[PL_MAX_JOBS];
        int slot[PL_MAX_JOBS], np = 0;
        for (int k = 0; k < nk; k++) {
            if (!kids[k].pid || kids[k].fd < 0) continue;
            pf[np] = (struct pollfd){.fd = kids[k].fd, .events = POLLIN};
            slot[np++] = k;
        }
        if (np > 0 && poll(pf, (nfds_t)np, 200) > 0)
            for (int i = 0; i < np; i++)
                if (pf[i].revents) pump(&kids[slot[i]], plan->runs[plan->steps[kids[slot[i]].step].run].name, 0);
        pid_t pid = waitpid(-1, status, np > 0 ? WNOHANG : 0);
        if (pid < 0 && errno != EINTR) return dg_fail_errno(err, "waitpid failed");
        for (int k = 0; pid > 0 && k < nk; k++) {
            if (kids[k].pid != pid) continue;
            if (kids[k].fd >= 0) pump(&kids[k], plan->runs[plan->steps[kids[k].step].run].name, 1);
            return k;
        }
    }
}

/* May step i start? A step of no member (ingest, augment, ensemble) waits for every earlier step, and every later
 * step waits for it; a member's stage waits for that member's earlier stage. */
static int ready(const pl_plan *plan, const char *state, int i) {
    int ri = plan->steps[i].run;
    for (int j = 0; j < i; j++) {
        int rj = plan->steps[j].run;
        if (state[j] != 'd' && (rj < 0 || ri < 0 || rj == ri)) return 0;
    }
    return 1;
}

/* Run the plan's stages, the members' chains up to plan->jobs at a time, each stage re-decided when its turn
 * comes. On the first failure the other running stages get SIGTERM (their stamps stay "running", so the next run
 * resumes them) and, once they have exited, that failure is returned. */
static int run_plan(pl_plan *plan, dg_err *err) {
    int n = plan->n_steps, nk = plan->jobs, running = 0, failed = 0, stopped = 0;
    char *state = malloc((size_t)n); /* 'w'aiting, 'r'unning, 'd'one */
    child *kids = calloc((size_t)nk, sizeof *kids);
    if (!state || !kids) {
        free(state);
        free(kids);
        return dg_fail(err, "out of memory");
    }
    memset(state, 'w', (size_t)n);
    for (;;) {
        for (int i = 0; i < n && !failed && running < nk; i++) {
            if (state[i] != 'w' || !ready(plan, state, i)) continue;
            pl_step *s = &plan->steps[i];
            pl_action a;
            char why[256], est[32] = "?";
            if (pl_stage_decide(&s->stage, &a, why, sizeof why, err) != 0) {
                failed = 1;
                break;
            }
            if (a == PL_SKIP) {
                say("[%d/%d] %s: up to date\n", i + 1, n, s->stage.name);
                state[i] = 'd';
                continue;
            }
            if (s->estimate_s > 0) pl_format_seconds(est, sizeof est, s->estimate_s);
            say("[%d/%d] %s: %s (%s), estimate %s\n", i + 1, n, s->stage.name, pl_action_name(a), why, est);
            if (a == PL_FINISH) { /* nothing to run: record it */
                if (pl_stage_finish(&s->stage, 0, err) != 0) {
                    dg_err_prefix(err, "stage %s failed (re-run the same command to resume)", s->stage.name);
                    failed = 1;
                    break;
                }
                say("[%d/%d] %s: recorded\n", i + 1, n, s->stage.name);
                state[i] = 'd';
                continue;
            }
            int k = 0;
            while (kids[k].pid) k++;
            int fds[2] = {-1, -1};
            if (s->run >= 0 && nk > 1 && (pipe2(fds, O_CLOEXEC) != 0 || fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0)) {
                dg_fail_errno(err, "%s: cannot make a pipe", s->stage.name);
                failed = 1;
                break;
            }
            pid_t pid;
            int bad = pl_stage_start(&s->stage, a, fds[1], &pid, err);
            if (fds[1] >= 0) close(fds[1]);
            if (bad) {
                if (fds[0] >= 0) close(fds[0]);
                dg_err_prefix(err, "stage %s failed (re-run the same command to resume)", s->stage.name);
                failed = 1;
                break;
            }
            kids[k] = (child){.pid = pid, .step = i, .action = a, .t0 = dg_now(), .fd = fds[0]};
            state[i] = 'r';
            running++;
        }
        if (failed && !stopped) {
            for (int k = 0; k < nk; k++) {
                if (!kids[k].pid) continue;
                say("[%d/%d] %s: stopping it (SIGTERM)\n", kids[k].step + 1, n, plan->steps[kids[k].step].stage.name);
                kill(kids[k].pid, SIGTERM);
            }
            stopped = 1;
        }
        if (running == 0) break;
        int status;
        dg_err e = {{0}};
        int k = wait_any(kids, nk, plan, &status, &e);
        if (k < 0) {
            if (!failed) *err = e;
            failed = 1;
            break; /* the children die with us (PR_SET_PDEATHSIG) */
        }
        child *c = &kids[k];
        pl_step *s = &plan->steps[c->step];
        double dt = dg_now() - c->t0;
        c->pid = 0;
        running--;
        state[c->step] = 'd';
        if (pl_stage_finish(&s->stage, status, &e) == 0) {
            char took[32];
            pl_format_seconds(took, sizeof took, dt);
            say("[%d/%d] %s: done in %s\n", c->step + 1, n, s->stage.name, took);
            if (pl_plan_record_timing(plan, s, dt, &e) == 0) continue;
        } else if (stopped) {
            say("[%d/%d] %s: stopped (%s); the next run resumes it\n", c->step + 1, n, s->stage.name, e.msg);
            continue;
        } else {
            say("[%d/%d] %s: failed\n", c->step + 1, n, s->stage.name);
            dg_err_prefix(&e, "stage %s failed (re-run the same command to resume)", s->stage.name);
        }
        if (!failed) *err = e;
        failed = 1;
    }
    free(state);
    free(kids);
    return failed ? -1 : 0;
}

int main(int argc, char **argv) {
    opts o = kDefaults;
    enum { O_THREADS = 256, O_BIN_DIR };
    static const struct option longopts[] = {
        {"preset", required_argument, 0, 'p'}, {"data-dir", required_argument, 0, 'd'},
        {"work", required_argument, 0, 'w'},   {"output", required_argument, 0, 'o'},
        {"threads", required_argument, 0, O_THREADS}, {"bin-dir", required_argument, 0, O_BIN_DIR},
        {"jobs", required_argument, 0, 'j'},   {"dry-run", no_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "p:d:w:o:j:nh", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': o.preset = optarg; break;
        case 'd': o.data_dir = optarg; break;
        case 'w': o.work = optarg; break;
        case 'o': o.output = optarg; break;
        case O_THREADS:
            if (dg_parse_long(optarg, 1, 1024, &v) != 0) {
                fprintf(stderr, "digits-pipeline: --threads %s: expected 1..1024\n", optarg);
                return DG_EXIT_USAGE;
            }
            o.threads = (int)v;
            break;
        case 'j':
            if (dg_parse_long(optarg, 1, PL_MAX_JOBS, &v) != 0) {
                fprintf(stderr, "digits-pipeline: --jobs %s: expected 1..%d\n", optarg, PL_MAX_JOBS);
                return DG_EXIT_USAGE;
            }
            o.jobs = (int)v;
            break;
        case O_BIN_DIR: o.bin_dir = optarg; break;
        case 'n': o.dry_run = 1; break;
        case 'h': usage(stdout); return DG_EXIT_OK;
        default: usage(stderr); return DG_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "digits-pipeline: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return DG_EXIT_USAGE;
    }
    dg_err err = {{0}};
    pl_preset *preset = malloc(sizeof *preset);
    pl_plan plan;
    pl_opts po;
    memset(&plan, 0, sizeof plan);
    memset(&po, 0, sizeof po);
    int rc = DG_EXIT_FAIL;
    if (!preset) {
        dg_fail(&err, "out of memory");
        goto done;
    }
    if (pl_preset_load(preset, o.preset, &err) != 0) goto done;
    if (o.bin_dir) snprintf(po.bin_dir, sizeof po.bin_dir, "%s", o.bin_dir);
    else if (pl_exe_dir(po.bin_dir, sizeof po.bin_dir, &err) != 0) goto done;
    snprintf(po.data_dir, sizeof po.data_dir, "%s", o.data_dir);
    if (o.work) snprintf(po.work, sizeof po.work, "%s", o.work);
    else snprintf(po.work, sizeof po.work, "runs/%s", preset->name);
    snprintf(po.output, sizeof po.output, "%s", o.output);
    po.threads = o.threads > 0 ? o.threads : dg_default_threads();
    po.jobs = o.jobs > 0 ? o.jobs : preset->jobs;

    if (pl_plan_build(&plan, preset, &po, &err) != 0 || pl_plan_decide(&plan, &err) != 0) goto done;
    pl_plan_print(&plan, stdout);
    if (preset->budget_minutes > 0 && plan.total_s > preset->budget_minutes * 60)
        fprintf(stderr, "digits-pipeline: warning: the estimate exceeds the preset's budget_minutes=%g\n",
                preset->budget_minutes);
    if (o.dry_run) {
        rc = DG_EXIT_OK;
        goto done;
    }
    /* The stages inherit this environment. libgomp's threads spin ~300000 times at every barrier before they
     * sleep: when another process takes a core, the spinning thread steals it from the one it waits for and a
     * 2-thread digits-train collapsed from ~2300 to ~310 images/s. GOMP_SPINCOUNT=1000 costs 5-7% on an idle
     * machine and keeps 1.5-1.7x more throughput beside one busy process (deotte-lite, batch 64, 2 threads,
     * docs/pipeline.md). A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins. */
    if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT")) setenv("GOMP_SPINCOUNT", "1000", 0);
    /* Every executable a stage will run must be there before anything starts. */
    for (int i = 0; i < plan.n_steps; i++) {
        if (plan.steps[i].action == PL_SKIP || plan.steps[i].action == PL_FINISH) continue;
        if (access(plan.steps[i].stage.argv[0], X_OK) != 0) {
            dg_fail_errno(&err, "%s: cannot run %s (build it, or point --bin-dir at the build's bin/)",
                          plan.steps[i].stage.name, plan.steps[i].stage.argv[0]);
            goto done;
        }
    }
    if (dg_mkdirs(po.work, &err) != 0) goto done;
    double t_all = dg_now();
    if (run_plan(&plan, &err) != 0) goto done;
    char took[32];
    pl_format_seconds(took, sizeof took, dg_now() - t_all);
    printf("pipeline %s finished in %s\n", preset->name, took);
    report_manifest(po.output);
    rc = DG_EXIT_OK;
done:
    fflush(stdout);
    if (rc != DG_EXIT_OK) fprintf(stderr, "digits-pipeline: %s\n", err.msg);
    pl_plan_free(&plan);
    free(preset);
    return rc;
}
