/* pipeline/schedule: the plan's stages as concurrent child processes (see schedule.h). */
#define _GNU_SOURCE 1 /* pipe2 */
#include "pipeline/schedule.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/dg_progress.h"
#include "pipeline/driver.h"

/* A status line, flushed at once so that it keeps its place among the stages' lines. */
static void say(FILE *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(FILE *out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fflush(out);
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

/* Copy a child's complete lines from its pipe to log, each prefixed with "[prefix] ". final (the child has
 * exited): take what is left without waiting for processes it may have left behind, and close the pipe. */
static void pump(child *k, const char *prefix, int final, FILE *log) {
    for (;;) {
        ssize_t got = read(k->fd, k->line + k->n, sizeof k->line - 1 - k->n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && errno == EAGAIN && !final) return;
        if (got <= 0) break;
        k->n += (size_t)got;
        char *start = k->line, *nl;
        while ((nl = memchr(start, '\n', k->n - (size_t)(start - k->line))) != NULL) {
            fprintf(log, "[%s] %.*s\n", prefix, (int)(nl - start), start);
            start = nl + 1;
        }
        k->n -= (size_t)(start - k->line);
        memmove(k->line, start, k->n);
        if (k->n == sizeof k->line - 1) { /* a very long line goes out in pieces */
            fprintf(log, "[%s] %.*s\n", prefix, (int)k->n, k->line);
            k->n = 0;
        }
    }
    if (k->n) fprintf(log, "[%s] %.*s\n", prefix, (int)k->n, k->line);
    k->n = 0;
    close(k->fd);
    k->fd = -1;
}

static const char *member_name(const pl_plan *plan, const child *k) {
    return plan->runs[plan->steps[k->step].run].name;
}

/* Wait for any child to exit (waitpid(-1)), meanwhile copying the piped children's output. Returns its slot. */
static int wait_any(child *kids, int nk, const pl_plan *plan, int *status, FILE *log, dg_err *err) {
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
                if (pf[i].revents) pump(&kids[slot[i]], member_name(plan, &kids[slot[i]]), 0, log);
        pid_t pid = waitpid(-1, status, np > 0 ? WNOHANG : 0);
        if (pid < 0 && errno != EINTR) return dg_fail_errno(err, "waitpid failed");
        for (int k = 0; pid > 0 && k < nk; k++) {
            if (kids[k].pid != pid) continue;
            if (kids[k].fd >= 0) pump(&kids[k], member_name(plan, &kids[k]), 1, log);
            return k;
        }
    }
}

/* May step i start? (see schedule.h) */
static int ready(const pl_plan *plan, const char *state, int i) {
    int ri = plan->steps[i].run;
    for (int j = 0; j < i; j++) {
        int rj = plan->steps[j].run;
        if (state[j] != 'd' && (rj < 0 || ri < 0 || rj == ri)) return 0;
    }
    return 1;
}

/* Decide step i afresh and start it (or record it when there is nothing to run). Returns 0 with *started set when
 * a child now runs in kids[slot], or -1 with err. */
static int start_step(pl_plan *plan, int i, child *kids, int nk, char *state, int *started, FILE *out, dg_err *err) {
    int n = plan->n_steps;
    pl_step *s = &plan->steps[i];
    pl_action a;
    char why[256], est[32] = "?";
    *started = 0;
    if (pl_stage_decide(&s->stage, &a, why, sizeof why, err) != 0) return -1;
    if (a == PL_SKIP) {
        say(out, "[%d/%d] %s: up to date\n", i + 1, n, s->stage.name);
        state[i] = 'd';
        return 0;
    }
    if (s->estimate_s > 0) pl_format_seconds(est, sizeof est, s->estimate_s);
    say(out, "[%d/%d] %s: %s (%s), estimate %s\n", i + 1, n, s->stage.name, pl_action_name(a), why, est);
    if (a == PL_FINISH) { /* nothing to run: record it */
        if (pl_stage_finish(&s->stage, 0, err) != 0)
            return dg_err_prefix(err, "stage %s failed (re-run the same command to resume)", s->stage.name);
        say(out, "[%d/%d] %s: recorded\n", i + 1, n, s->stage.name);
        state[i] = 'd';
        return 0;
    }
    int k = 0;
    while (kids[k].pid) k++;
    int fds[2] = {-1, -1};
    if (s->run >= 0 && nk > 1 && (pipe2(fds, O_CLOEXEC) != 0 || fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0))
        return dg_fail_errno(err, "%s: cannot make a pipe", s->stage.name);
    pid_t pid;
    int bad = pl_stage_start(&s->stage, a, fds[1], &pid, err);
    if (fds[1] >= 0) close(fds[1]);
    if (bad) {
        if (fds[0] >= 0) close(fds[0]);
        return dg_err_prefix(err, "stage %s failed (re-run the same command to resume)", s->stage.name);
    }
    kids[k] = (child){.pid = pid, .step = i, .action = a, .t0 = dg_now(), .fd = fds[0]};
    state[i] = 'r';
    *started = 1;
    return 0;
}

int pl_schedule_run(pl_plan *plan, FILE *out, FILE *log, dg_err *err) {
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
            int started;
            if (start_step(plan, i, kids, nk, state, &started, out, err) != 0) failed = 1;
            running += started;
        }
        if (failed && !stopped) {
            for (int k = 0; k < nk; k++) {
                if (!kids[k].pid) continue;
                say(out, "[%d/%d] %s: stopping it (SIGTERM)\n", kids[k].step + 1, n,
                    plan->steps[kids[k].step].stage.name);
                kill(kids[k].pid, SIGTERM);
            }
            stopped = 1;
        }
        if (running == 0) break;
        int status;
        dg_err e = {{0}};
        int k = wait_any(kids, nk, plan, &status, log, &e);
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
            say(out, "[%d/%d] %s: done in %s\n", c->step + 1, n, s->stage.name, took);
            if (pl_plan_record_timing(plan, s, dt, &e) == 0) continue;
        } else if (stopped) {
            say(out, "[%d/%d] %s: stopped (%s); the next run resumes it\n", c->step + 1, n, s->stage.name, e.msg);
            continue;
        } else {
            say(out, "[%d/%d] %s: failed\n", c->step + 1, n, s->stage.name);
            dg_err_prefix(&e, "stage %s failed (re-run the same command to resume)", s->stage.name);
        }
        if (!failed) *err = e;
        failed = 1;
    }
    free(state);
    free(kids);
    return failed ? -1 : 0;
}
