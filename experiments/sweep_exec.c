/* experiments/sweep_exec: digits-train processes and their run directories (see sweep_exec.h). */
#define _GNU_SOURCE 1 /* environ, vfork, prctl */
#include "experiments/sweep_exec.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/dg_cli.h"
#include "core/dg_file.h"

void sw_trial_dir(const char *dir, int c, int rep, char *buf, size_t n) {
    snprintf(buf, n, "%s/trials/c%04d-r%d", dir, c, rep);
}

void sw_config_path(const char *dir, int c, const char *ext, char *buf, size_t n) {
    snprintf(buf, n, "%s/configs/c%04d.%s", dir, c, ext);
}

int sw_write_if_changed(const char *path, const char *text, dg_err *err) {
    size_t n = strlen(text), have_n;
    char *have;
    dg_err e;
    if (dg_path_exists(path) && dg_read_file(path, &have, &have_n, &e) == 0) {
        int same = have_n == n && memcmp(have, text, n) == 0;
        free(have);
        if (same) return 0;
    }
    return dg_write_file_atomic(path, text, n, err);
}

int sw_exec_start(const sw_exec_cfg *cfg, const char *run_dir, const char *spec_path, uint64_t seed, int fold,
                  int stop_at, pid_t *pid, dg_err *err) {
    if (dg_mkdirs(run_dir, err) != 0) return -1;
    char log[1024], seed_s[32], split_s[32], frac_s[32], folds_s[16], fold_s[16], stop_s[16], thr_s[16];
    snprintf(log, sizeof log, "%s/train.log", run_dir);
    snprintf(seed_s, sizeof seed_s, "%llu", (unsigned long long)seed);
    snprintf(split_s, sizeof split_s, "%llu", (unsigned long long)cfg->split_seed);
    snprintf(frac_s, sizeof frac_s, "%.17g", cfg->val_frac);
    snprintf(folds_s, sizeof folds_s, "%d", cfg->folds);
    snprintf(fold_s, sizeof fold_s, "%d", fold);
    snprintf(stop_s, sizeof stop_s, "%d", stop_at);
    snprintf(thr_s, sizeof thr_s, "%d", cfg->threads);
    char tb[1100];
    if (cfg->tensorboard && cfg->tensorboard[0]) {
        const char *name = strrchr(run_dir, '/');
        snprintf(tb, sizeof tb, "%s/%s", cfg->tensorboard, name ? name + 1 : run_dir);
    }
    const char *argv[32];
    int a = 0;
    argv[a++] = cfg->train_bin;
    argv[a++] = "--data", argv[a++] = cfg->data;
    argv[a++] = "--model", argv[a++] = spec_path;
    argv[a++] = "--run", argv[a++] = run_dir;
    argv[a++] = "--seed", argv[a++] = seed_s;
    argv[a++] = "--split-seed", argv[a++] = split_s;
    if (cfg->folds) {
        argv[a++] = "--folds", argv[a++] = folds_s;
        argv[a++] = "--fold", argv[a++] = fold_s;
    } else {
        argv[a++] = "--val-frac", argv[a++] = frac_s;
    }
    argv[a++] = "--threads", argv[a++] = thr_s;
    argv[a++] = "--resume";
    argv[a++] = "--quiet";
    if (stop_at) argv[a++] = "--stop-at", argv[a++] = stop_s;
    if (cfg->tensorboard && cfg->tensorboard[0]) argv[a++] = "--tensorboard", argv[a++] = tb;
    argv[a] = NULL;
    /* vfork, not fork: the child borrows the coordinator's memory until it execs, so the coordinator's page tables
     * are neither copied nor write-protected (fork and the copy-on-write faults after it were most of the
     * coordinator's CPU per trial). The child runs only system calls on what is prepared here: it asks for
     * SIGKILL when the coordinator dies (PR_SET_PDEATHSIG, kept across exec, so a killed sweep leaves no trainer
     * behind whatever --train runs) and exits if the coordinator is already gone. The thread count and the
     * OpenMP wait policy travel in its environment (the policy spares digits-train its re-execution). */
    char thr_env[48];
    snprintf(thr_env, sizeof thr_env, "OMP_NUM_THREADS=%d", cfg->threads);
    size_t ne = 0;
    while (environ[ne]) ne++;
    char **envp = malloc((ne + 3) * sizeof *envp);
    if (!envp) return dg_fail(err, "out of memory");
    size_t k = 0;
    int policy = 0;
    for (size_t i = 0; i < ne; i++) {
        if (strncmp(environ[i], "OMP_NUM_THREADS=", 16) == 0) continue;
        policy |= strncmp(environ[i], "OMP_WAIT_POLICY=", 16) == 0 || strncmp(environ[i], "GOMP_SPINCOUNT=", 15) == 0;
        envp[k++] = environ[i];
    }
    envp[k++] = thr_env;
    if (!policy) envp[k++] = "GOMP_SPINCOUNT=" DG_GOMP_SPINCOUNT;
    envp[k] = NULL;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    /* a page reserved for the trainer's last words: on a disk that fills while it runs, its "No space left on
     * device" still reaches the log (sw_exec_disk_full); a disk already full stops the sweep here */
    if (fd >= 0 && fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 4096) != 0 && errno != EOPNOTSUPP && errno != ENOSYS) {
        int e = errno;
        close(fd);
        fd = -1;
        errno = e;
    }
    int nul = fd < 0 ? -1 : open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || nul < 0) {
        dg_fail_errno(err, "%s: cannot %s", fd < 0 ? log : "/dev/null", fd < 0 ? "write" : "open");
        if (fd >= 0) close(fd);
        free(envp);
        return -1;
    }
    /* all signals blocked across vfork (no handler may run in the child on the shared memory); the trainer
     * starts with none blocked (the coordinator blocks SIGCHLD, sweep_cli.c) */
    sigset_t all, none, old;
    sigfillset(&all);
    sigemptyset(&none);
    pid_t parent = getpid();
    volatile int exec_errno = 0;
    fflush(NULL);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t p = vfork();
    if (p == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        dup2(nul, STDIN_FILENO);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(cfg->train_bin, (char *const *)argv, envp);
        exec_errno = errno;
        _exit(127);
    }
    int vfork_errno = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(fd);
    close(nul);
    free(envp);
    if (p < 0) {
        errno = vfork_errno;
        return dg_fail_errno(err, "vfork");
    }
    if (exec_errno) { /* the child has exited; reap it */
        waitpid(p, NULL, 0);
        errno = exec_errno;
        return dg_fail_errno(err, "%s: cannot run", cfg->train_bin);
    }
    *pid = p;
    return 0;
}

static int read_opt(const char *dir, const char *name, char **text, dg_err *err) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    *text = NULL;
    if (!dg_path_exists(path)) return 0;
    size_t n;
    if (dg_read_file(path, text, &n, err) != 0) return -1;
    return 1;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* The line of text at *p as JSON (NULL where it does not parse: a line being written), *p moved past it; the text is
 * left as it was. */
static cJSON *json_line(char **p) {
    char *eol = strchr(*p, '\n');
    if (eol) *eol = '\0';
    cJSON *j = cJSON_Parse(*p);
    if (eol) *eol = '\n';
    *p = eol ? eol + 1 : *p + strlen(*p);
    return j;
}

int sw_exec_harvest(const char *run_dir, int stop_at, int *epoch, double *val_acc, double *val_loss,
                    double *seconds, char **metrics, dg_err *err) {
    char *m = NULL, *res = NULL;
    *metrics = NULL;
    if (read_opt(run_dir, "metrics.jsonl", &m, err) < 0) return -1;
    if (read_opt(run_dir, "result.json", &res, err) < 0) {
        free(m);
        return -1;
    }
    double secs = 0;
    int found = 0, last = 0;
    for (char *p = m; p && *p;) {
        cJSON *j = json_line(&p);
        if (!j) continue;
        int e = (int)num(j, "epoch");
        if (stop_at == 0 || e <= stop_at) secs += num(j, "seconds");
        if (e > last) last = e;
        if (stop_at && e == stop_at) {
            *epoch = e;
            *val_acc = num(j, "val_acc");
            *val_loss = num(j, "val_loss");
            found = 1;
        }
        cJSON_Delete(j);
    }
    if (!found && res && (stop_at == 0 || last < stop_at)) {
        cJSON *j = cJSON_Parse(res);
        if (!j) {
            free(m);
            free(res);
            return dg_fail(err, "%s/result.json: not JSON", run_dir);
        }
        *epoch = (int)num(j, "epochs");
        *val_acc = num(j, "val_acc");
        *val_loss = num(j, "val_loss");
        cJSON_Delete(j);
        found = 1;
    }
    free(res);
    if (!found) {
        free(m);
        return 0;
    }
    *seconds = secs;
    *metrics = m;
    return 1;
}

int sw_exec_disk_full(const char *reason) {
    static const int errs[] = {ENOSPC, EDQUOT, EROFS};
    for (size_t i = 0; i < sizeof errs / sizeof *errs; i++)
        if (strstr(reason, strerror(errs[i]))) return 1;
    return 0;
}

void sw_exec_progress(const char *run_dir, int *epochs, double *seconds, double *recent) {
    *epochs = 0, *seconds = 0, *recent = 0;
    double last[SW_PACE_EPOCHS] = {0};
    int lines = 0;
    char *m = NULL;
    dg_err err;
    if (read_opt(run_dir, "metrics.jsonl", &m, &err) != 1) return;
    for (char *p = m; *p;) {
        cJSON *j = json_line(&p);
        if (!j) continue;
        int e = (int)num(j, "epoch");
        if (e > *epochs) *epochs = e;
        *seconds += last[lines++ % SW_PACE_EPOCHS] = num(j, "seconds");
        cJSON_Delete(j);
    }
    free(m);
    int k = lines < SW_PACE_EPOCHS ? lines : SW_PACE_EPOCHS;
    for (int i = 0; i < k; i++) *recent += last[i] / k;
}

static int cmp_desc(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x < y) - (x > y);
}

double sw_eta(int *left, int n, int workers, double pace) {
    if (n <= 0 || workers < 1 || !(pace > 0)) return 0;
    qsort(left, (size_t)n, sizeof *left, cmp_desc);
    enum { MAXW = 1024 };
    double load[MAXW] = {0}, end = 0;
    const int w = workers < MAXW ? workers : MAXW;
    for (int i = 0; i < n; i++) {
        int k = 0;
        for (int j = 1; j < w; j++)
            if (load[j] < load[k]) k = j;
        load[k] += left[i] > 0 ? left[i] : 0;
        if (load[k] > end) end = load[k];
    }
    return end * pace;
}

void sw_exec_reason(const char *run_dir, int status, char *reason, size_t n) {
    char last[512] = "";
    char *log = NULL;
    dg_err e;
    if (read_opt(run_dir, "train.log", &log, &e) == 1 && log) {
        size_t len = strlen(log);
        while (len && (log[len - 1] == '\n' || log[len - 1] == '\r')) log[--len] = '\0';
        char *nl = strrchr(log, '\n');
        /* the progress bar rewrites its line with '\r': keep what follows the last one */
        char *line = nl ? nl + 1 : log;
        char *cr = strrchr(line, '\r');
        snprintf(last, sizeof last, "%s", cr ? cr + 1 : line);
    }
    free(log);
    if (WIFSIGNALED(status))
        snprintf(reason, n, "killed by signal %d (%s)%s%s", WTERMSIG(status), strsignal(WTERMSIG(status)),
                 last[0] ? ": " : "", last);
    else
        snprintf(reason, n, "exit %d: %s", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                 last[0] ? last : "(no message)");
}
