/* pipeline/driver: stages as child processes, stamps and fingerprints (see driver.h). */
#define _GNU_SOURCE 1 /* prctl, PR_SET_PDEATHSIG */
#include "pipeline/driver.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/dg_file.h"

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

int pl_stage_init(pl_stage *s, const char *name, const char *stamp, const char *const *argv, dg_err *err) {
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    if ((size_t)snprintf(s->stamp, sizeof s->stamp, "%s", stamp) >= sizeof s->stamp)
        return dg_fail(err, "%s: stamp path too long", name);
    for (int i = 0; argv[i]; i++) {
        if (s->argc == PL_MAX_ARGS) {
            pl_stage_free(s);
            return dg_fail(err, "%s: more than %d arguments", name, PL_MAX_ARGS);
        }
        if (!(s->argv[s->argc++] = dup_str(argv[i]))) {
            pl_stage_free(s);
            return dg_fail(err, "%s: out of memory", name);
        }
    }
    if (s->argc == 0) return dg_fail(err, "%s: empty command", name);
    return 0;
}

static int add_file(pl_stage *s, char **list, int *n, const char *path, dg_err *err) {
    if (*n == PL_MAX_FILES) return dg_fail(err, "%s: more than %d files", s->name, PL_MAX_FILES);
    if (!(list[*n] = dup_str(path))) return dg_fail(err, "%s: out of memory", s->name);
    (*n)++;
    return 0;
}

int pl_stage_input(pl_stage *s, const char *path, dg_err *err) {
    return add_file(s, s->inputs, &s->n_in, path, err);
}

int pl_stage_output(pl_stage *s, const char *path, dg_err *err) {
    return add_file(s, s->outputs, &s->n_out, path, err);
}

void pl_stage_free(pl_stage *s) {
    for (int i = 0; i < s->argc + 1 && i < PL_MAX_ARGS + 2; i++) free(s->argv[i]);
    for (int i = 0; i < s->n_in; i++) free(s->inputs[i]);
    for (int i = 0; i < s->n_out; i++) free(s->outputs[i]);
    free(s->in_fp);
    memset(s, 0, sizeof *s);
}

static int is_volatile(const char *a, int *skip_next) {
    *skip_next = 0;
    if (!strcmp(a, "--threads") || !strcmp(a, "--deadline")) {
        *skip_next = 1;
        return 1;
    }
    return !strncmp(a, "--threads=", 10) || !strncmp(a, "--deadline=", 11) || !strcmp(a, "--resume") ||
           !strcmp(a, "--quiet");
}

char *pl_stage_command(const pl_stage *s) {
    size_t cap = 16;
    for (int i = 0; i < s->argc; i++) cap += 4 * strlen(s->argv[i]) + 3;
    char *out = malloc(cap), *p = out;
    if (!out) return NULL;
    *p = '\0';
    for (int i = 0; i < s->argc; i++) {
        const char *a = s->argv[i];
        int skip_next;
        if (i == 0) {
            const char *slash = strrchr(a, '/');
            a = slash ? slash + 1 : a;
        } else if (is_volatile(a, &skip_next)) {
            i += skip_next;
            continue;
        }
        int plain = *a != '\0';
        for (const char *q = a; *q && plain; q++)
            plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./=:,+-@%", *q) != NULL;
        if (p != out) *p++ = ' ';
        if (plain) {
            p += sprintf(p, "%s", a);
        } else {
            *p++ = '\'';
            for (const char *q = a; *q; q++) p += *q == '\'' ? sprintf(p, "'\\''") : sprintf(p, "%c", *q);
            *p++ = '\'';
            *p = '\0';
        }
    }
    return out;
}

/* ---- fingerprints ---- */

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

uint64_t pl_hash(const void *data, size_t n) {
    const uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full, P3 = 0x165667B19E3779F9ull;
    const unsigned char *b = data;
    uint64_t h[4] = {P1 + P2, P2, 0, 0 - P1}; /* four lanes, so the multiplies pipeline */
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        for (int l = 0; l < 4; l++) {
            uint64_t w;
            memcpy(&w, b + i + 8 * l, 8);
            h[l] = rotl64(h[l] + w * P2, 31) * P1;
        }
    }
    uint64_t x = rotl64(h[0], 1) + rotl64(h[1], 7) + rotl64(h[2], 12) + rotl64(h[3], 18) + (uint64_t)n * P3;
    for (; i < n; i++) x = rotl64(x ^ (b[i] * P3), 11) * P1;
    x ^= x >> 33;
    x *= P2;
    x ^= x >> 29;
    x *= P3;
    x ^= x >> 32;
    return x;
}

static int stat_fp(const char *path, pl_fp *fp) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return -1;
    fp->size = (uint64_t)st.st_size;
    fp->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    return 0;
}

int pl_fingerprint(const char *path, pl_fp *fp, dg_err *err) {
    memset(fp, 0, sizeof *fp);
    if (stat_fp(path, fp) != 0) return dg_fail_errno(err, "%s: not a readable file", path);
    dg_map m;
    if (dg_map_open(&m, path, err) != 0) return -1;
    fp->hash = pl_hash(m.data, m.size);
    dg_map_close(&m);
    return 0;
}

/* ---- stamps ---- */

typedef struct stamp {
    int running;
    char *command;
    int n_in, n_out;
    char *in_path[PL_MAX_FILES], *out_path[PL_MAX_FILES];
    pl_fp in_fp[PL_MAX_FILES], out_fp[PL_MAX_FILES];
} stamp;

static void stamp_free(stamp *st) {
    free(st->command);
    for (int i = 0; i < st->n_in; i++) free(st->in_path[i]);
    for (int i = 0; i < st->n_out; i++) free(st->out_path[i]);
    memset(st, 0, sizeof *st);
}

/* Read a stamp; returns 1 if read, 0 if absent or malformed (a malformed stamp is treated as absent). */
static int stamp_read(const char *path, stamp *st) {
    memset(st, 0, sizeof *st);
    char *text;
    size_t n;
    if (!dg_path_exists(path) || dg_read_file(path, &text, &n, NULL) != 0) return 0;
    int ok = 1, line = 0, have_state = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && ok; l = strtok_r(NULL, "\n", &save), line++) {
        if (line == 0) {
            ok = strcmp(l, "digits-stamp 1") == 0;
        } else if (!strncmp(l, "state ", 6)) {
            st->running = strcmp(l + 6, "running") == 0;
            ok = st->running || strcmp(l + 6, "done") == 0;
            have_state = 1;
        } else if (!strncmp(l, "command ", 8)) {
            ok = !st->command && (st->command = dup_str(l + 8)) != NULL;
        } else if (!strncmp(l, "in ", 3) || !strncmp(l, "out ", 4)) {
            int is_in = l[0] == 'i';
            unsigned long long size, hash;
            long long mt;
            int used = 0;
            int *cnt = is_in ? &st->n_in : &st->n_out;
            if (*cnt == PL_MAX_FILES || sscanf(l + (is_in ? 3 : 4), "%llu %lld %llx %n", &size, &mt, &hash, &used) != 3 ||
                used == 0) {
                ok = 0;
                break;
            }
            pl_fp fp = {size, mt, hash};
            char *p = dup_str(l + (is_in ? 3 : 4) + used);
            if (!p) {
                ok = 0;
                break;
            }
            if (is_in) {
                st->in_fp[*cnt] = fp;
                st->in_path[*cnt] = p;
            } else {
                st->out_fp[*cnt] = fp;
                st->out_path[*cnt] = p;
            }
            (*cnt)++;
        } else {
            ok = 0;
        }
    }
    free(text);
    if (!ok || !have_state || !st->command) {
        stamp_free(st);
        return 0;
    }
    return 1;
}

static int parent_mkdirs(const char *path, dg_err *err) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = '\0';
    return dg_mkdirs(dir, err);
}

static int stamp_write(const pl_stage *s, int running, const pl_fp *in_fp, const pl_fp *out_fp, dg_err *err) {
    char *cmd = pl_stage_command(s);
    if (!cmd) return dg_fail(err, "%s: out of memory", s->name);
    if (parent_mkdirs(s->stamp, err) != 0) {
        free(cmd);
        return -1;
    }
    dg_afile f;
    if (dg_afile_open(&f, s->stamp, err) != 0) {
        free(cmd);
        return -1;
    }
    fprintf(f.fp, "digits-stamp 1\nstate %s\ncommand %s\n", running ? "running" : "done", cmd);
    free(cmd);
    for (int i = 0; i < s->n_in; i++)
        fprintf(f.fp, "in %llu %lld %016llx %s\n", (unsigned long long)in_fp[i].size, (long long)in_fp[i].mtime_ns,
                (unsigned long long)in_fp[i].hash, s->inputs[i]);
    for (int i = 0; out_fp && i < s->n_out; i++)
        fprintf(f.fp, "out %llu %lld %016llx %s\n", (unsigned long long)out_fp[i].size, (long long)out_fp[i].mtime_ns,
                (unsigned long long)out_fp[i].hash, s->outputs[i]);
    return dg_afile_commit(&f, err);
}

/* 1 if the file at path still has fingerprint want: same size and mtime, or the same content hash. */
static int still_same(const char *path, const pl_fp *want) {
    pl_fp now;
    if (stat_fp(path, &now) != 0) return 0;
    if (now.size != want->size) return 0;
    if (now.mtime_ns == want->mtime_ns) return 1;
    pl_fp full;
    return pl_fingerprint(path, &full, NULL) == 0 && full.hash == want->hash;
}

const char *pl_action_name(pl_action a) {
    switch (a) {
    case PL_SKIP: return "skip";
    case PL_RUN: return "run";
    case PL_RESUME: return "resume";
    case PL_FINISH: return "finish";
    }
    return "?";
}

static void say(char *why, size_t n, const char *fmt, const char *arg) {
    if (why && n) snprintf(why, n, fmt, arg);
}

/* Do the stamp's command and inputs match the stage? On mismatch, says why. */
static int stamp_matches(const pl_stage *s, const stamp *st, char *why, size_t why_n) {
    char *cmd = pl_stage_command(s);
    int same = cmd && strcmp(cmd, st->command) == 0;
    free(cmd);
    if (!same) {
        say(why, why_n, "command changed%s", "");
        return 0;
    }
    if (st->n_in != s->n_in) {
        say(why, why_n, "inputs changed%s", "");
        return 0;
    }
    for (int i = 0; i < s->n_in; i++) {
        if (strcmp(st->in_path[i], s->inputs[i]) != 0) {
            say(why, why_n, "inputs changed%s", "");
            return 0;
        }
        if (!dg_path_exists(s->inputs[i])) {
            say(why, why_n, "%s not there yet", s->inputs[i]);
            return 0;
        }
        if (!still_same(s->inputs[i], &st->in_fp[i])) {
            say(why, why_n, "%s changed", s->inputs[i]);
            return 0;
        }
    }
    return 1;
}

int pl_stage_decide(const pl_stage *s, pl_action *action, char *why, size_t why_n, dg_err *err) {
    stamp st;
    *action = PL_RUN;
    if (!stamp_read(s->stamp, &st)) {
        say(why, why_n, "not run before%s", "");
        return 0;
    }
    if (!stamp_matches(s, &st, why, why_n)) {
        stamp_free(&st);
        return 0;
    }
    if (st.running) {
        stamp_free(&st);
        if (s->done_file[0] && dg_path_exists(s->done_file)) {
            *action = PL_FINISH;
            say(why, why_n, "interrupted after %s was written", s->done_file);
        } else if (s->resume_file[0] && dg_path_exists(s->resume_file)) {
            *action = PL_RESUME;
            say(why, why_n, "interrupted; resuming from %s", s->resume_file);
        } else {
            say(why, why_n, "interrupted%s", "");
        }
        return 0;
    }
    int ok = st.n_out == s->n_out;
    for (int i = 0; ok && i < s->n_out; i++) {
        if (strcmp(st.out_path[i], s->outputs[i]) != 0) {
            say(why, why_n, "outputs changed%s", "");
            ok = 0;
        } else if (!dg_path_exists(s->outputs[i])) {
            say(why, why_n, "%s missing", s->outputs[i]);
            ok = 0;
        } else if (!still_same(s->outputs[i], &st.out_fp[i])) {
            say(why, why_n, "%s was modified", s->outputs[i]);
            ok = 0;
        }
    }
    if (ok && st.n_out != s->n_out) say(why, why_n, "outputs changed%s", "");
    stamp_free(&st);
    if (ok) {
        *action = PL_SKIP;
        say(why, why_n, "up to date%s", "");
    }
    (void)err;
    return 0;
}

static int dir_nonempty(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
    char probe[1200];
    static const char *const names[] = {"result.json", "checkpoint.ckpt", "metrics.jsonl", "model.safetensors",
                                        "spec.txt"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(probe, sizeof probe, "%s/%s", path, names[i]);
        if (dg_path_exists(probe)) return 1;
    }
    return 0;
}

static int move_aside(const char *dir, dg_err *err) {
    char to[1200];
    for (int k = 1; k < 10000; k++) {
        snprintf(to, sizeof to, "%s.stale-%d", dir, k);
        if (dg_path_exists(to)) continue;
        if (rename(dir, to) != 0) return dg_fail_errno(err, "%s: cannot move aside to %s", dir, to);
        return 0;
    }
    return dg_fail(err, "%s: too many stale copies", dir);
}

/* fork/exec argv; the child gets SIGTERM when the driver dies, and writes to out_fd if >= 0. */
static int spawn_child(char *const *argv, const char *name, int out_fd, pid_t *pid, dg_err *err) {
    fflush(NULL);
    pid_t parent = getpid();
    *pid = fork();
    if (*pid < 0) return dg_fail_errno(err, "%s: fork failed", name);
    if (*pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* the stage dies with the driver */
        if (getppid() != parent) _exit(126);
        if (out_fd >= 0 && (dup2(out_fd, STDOUT_FILENO) < 0 || dup2(out_fd, STDERR_FILENO) < 0)) _exit(126);
        execv(argv[0], argv);
        fprintf(stderr, "%s: cannot run %s: %s\n", name, argv[0], strerror(errno));
        _exit(127);
    }
    return 0;
}

/* 0 if a wait status says success, else -1 with the reason. */
static int check_status(int status, char *const *argv, const char *name, dg_err *err) {
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        return dg_fail(err, "%s: could not start %s", name, argv[0]);
    if (WIFEXITED(status)) return dg_fail(err, "%s: %s exited with status %d", name, argv[0], WEXITSTATUS(status));
    return dg_fail(err, "%s: %s killed by signal %d", name, argv[0], WIFSIGNALED(status) ? WTERMSIG(status) : -1);
}

static int fingerprint_all(char *const *paths, int n, pl_fp *fp, const char *name, const char *what, dg_err *err) {
    for (int i = 0; i < n; i++) {
        if (pl_fingerprint(paths[i], &fp[i], err) != 0)
            return dg_err_prefix(err, "%s: %s", name, what);
    }
    return 0;
}

/* Fingerprint the inputs into s->in_fp (allocated here, freed by pl_stage_finish). */
static int fingerprint_inputs(pl_stage *s, dg_err *err) {
    free(s->in_fp);
    if (!(s->in_fp = calloc((size_t)s->n_in + 1, sizeof *s->in_fp))) return dg_fail(err, "%s: out of memory", s->name);
    if (fingerprint_all(s->inputs, s->n_in, s->in_fp, s->name, "input missing", err) != 0) {
        free(s->in_fp);
        s->in_fp = NULL;
        return -1;
    }
    return 0;
}

int pl_stage_start(pl_stage *s, pl_action action, int out_fd, pid_t *pid, dg_err *err) {
    *pid = 0;
    if (action != PL_RUN && action != PL_RESUME) return dg_fail(err, "%s: nothing to start for %s", s->name,
                                                                 pl_action_name(action));
    if (fingerprint_inputs(s, err) != 0) return -1;
    int rc = -1;
    if (action == PL_RUN && s->own_dir[0] && dir_nonempty(s->own_dir) && move_aside(s->own_dir, err) != 0) goto fail;
    for (int i = 0; i < s->n_out; i++)
        if (parent_mkdirs(s->outputs[i], err) != 0) goto fail;
    if (stamp_write(s, 1, s->in_fp, NULL, err) != 0) goto fail;
    int resumed = action == PL_RESUME && s->resume_arg[0];
    if (resumed && !(s->argv[s->argc] = dup_str(s->resume_arg))) {
        dg_fail(err, "%s: out of memory", s->name);
        goto fail;
    }
    rc = spawn_child(s->argv, s->name, out_fd, pid, err);
    if (resumed) {
        free(s->argv[s->argc]);
        s->argv[s->argc] = NULL;
    }
    if (rc == 0) return 0;
fail:
    free(s->in_fp);
    s->in_fp = NULL;
    return -1;
}

int pl_stage_finish(pl_stage *s, int status, dg_err *err) {
    pl_fp *out_fp = calloc((size_t)s->n_out + 1, sizeof *out_fp);
    int rc = -1;
    if (!out_fp) {
        dg_fail(err, "%s: out of memory", s->name);
        goto done;
    }
    if (check_status(status, s->argv, s->name, err) != 0) goto done;
    if (!s->in_fp && fingerprint_inputs(s, err) != 0) goto done; /* PL_FINISH: nothing was started */
    if (fingerprint_all(s->outputs, s->n_out, out_fp, s->name, "the stage succeeded but did not write an output",
                        err) != 0)
        goto done;
    rc = stamp_write(s, 0, s->in_fp, out_fp, err);
done:
    free(out_fp);
    free(s->in_fp);
    s->in_fp = NULL;
    return rc;
}

int pl_stage_execute(pl_stage *s, pl_action action, dg_err *err) {
    if (action == PL_SKIP) return 0;
    int status = 0;
    if (action == PL_RUN || action == PL_RESUME) {
        pid_t pid;
        if (pl_stage_start(s, action, -1, &pid, err) != 0) return -1;
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR) {
                dg_fail_errno(err, "%s: waitpid failed", s->name);
                free(s->in_fp);
                s->in_fp = NULL;
                return -1;
            }
        }
    }
    return pl_stage_finish(s, status, err);
}

int pl_exe_dir(char *dir, size_t n, dg_err *err) {
    ssize_t k = readlink("/proc/self/exe", dir, n - 1);
    if (k <= 0) return dg_fail_errno(err, "/proc/self/exe: cannot read");
    dir[k] = '\0';
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    return 0;
}
