/* pipeline/driver: run pipeline stages as child processes and skip those whose inputs have not changed.
 *
 * A stage is a command (argv, argv[0] an executable path) with the files it reads (inputs) and writes
 * (outputs). After a stage succeeds, the driver writes its stamp file:
 *
 *     digits-stamp 1
 *     state done                                (or "state running" while it runs)
 *     command <the command line, see below>
 *     in <size> <mtime_ns> <hash> <path>         one line per input, in order
 *     out <size> <mtime_ns> <hash> <path>        one line per output, in order
 *
 * hash is a 64-bit content hash (hex). A stage is up to date when its stamp says done, the command line is the
 * same and every input and output still has the recorded fingerprint: same size and mtime, or, when those moved,
 * the same content hash (so re-creating an identical file does not re-run anything). The command line recorded
 * is argv with argv[0] reduced to its base name and the options that do not change results dropped: --threads N,
 * --resume, --quiet and --deadline T (a time; a run it shortened says so in its own files).
 *
 * Interrupted stages: before starting, the driver writes the stamp with "state running" and the inputs. If the
 * pipeline dies, the next run finds that stamp; when the command and inputs are unchanged:
 *   - a stage with a done_file (e.g. a train run's result.json) that exists is complete: only the stamp is written;
 *   - a stage with a resume_file (e.g. checkpoint.ckpt) that exists is re-run with resume_arg (--resume) appended;
 *   - otherwise it is re-run.
 * When the command or the inputs changed, a stage's own directory (own_dir, e.g. a train run directory) that
 * holds results of the old command is moved aside to "<own_dir>.stale-N", never deleted, and the stage runs
 * fresh.
 */
#ifndef PL_DRIVER_H
#define PL_DRIVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/dg_err.h"

#define PL_MAX_ARGS 256
#define PL_MAX_FILES 1024

/* A file's fingerprint. */
typedef struct pl_fp {
    uint64_t size;
    int64_t mtime_ns;
    uint64_t hash;
} pl_fp;

typedef struct pl_stage {
    char name[128];                 /* for messages: "train deotte-s1" */
    char stamp[1024];               /* stamp file path */
    int argc;
    char *argv[PL_MAX_ARGS + 2];    /* argv[argc] = NULL; room for resume_arg */
    int n_in, n_out;
    char *inputs[PL_MAX_FILES];
    char *outputs[PL_MAX_FILES];
    char own_dir[1600];             /* "" if the stage has no directory of its own */
    char done_file[1600];           /* "" if none */
    char resume_file[1600];         /* "" if none */
    char resume_arg[32];            /* appended when resuming, e.g. "--resume" */
    double estimate_s;              /* seconds this stage is expected to take (for the plan) */
    pl_fp *in_fp;                   /* between pl_stage_start and pl_stage_finish: the inputs' fingerprints */
} pl_stage;

/* Build a stage (all strings copied; free with pl_stage_free). argv is NULL-terminated. */
int pl_stage_init(pl_stage *s, const char *name, const char *stamp, const char *const *argv, dg_err *err);
int pl_stage_input(pl_stage *s, const char *path, dg_err *err);
int pl_stage_output(pl_stage *s, const char *path, dg_err *err);
void pl_stage_free(pl_stage *s);

/* The command line as recorded in stamps (see above): malloc'd. */
char *pl_stage_command(const pl_stage *s);

/* 64-bit content hash of a whole file (and its size and mtime). */
int pl_fingerprint(const char *path, pl_fp *fp, dg_err *err);
/* The hash of a buffer (the same function pl_fingerprint uses). */
uint64_t pl_hash(const void *data, size_t n);

typedef enum pl_action {
    PL_SKIP,    /* up to date */
    PL_RUN,     /* run from scratch */
    PL_RESUME,  /* interrupted with a resume_file: run with resume_arg */
    PL_FINISH   /* interrupted after its done_file appeared: just record it */
} pl_action;

const char *pl_action_name(pl_action a);

/* Decide what to do with a stage. why (may be NULL) receives a short reason ("inputs unchanged",
 * "data/train.npy changed", "no stamp", ...). Reads files only; changes nothing. */
int pl_stage_decide(const pl_stage *s, pl_action *action, char *why, size_t why_n, dg_err *err);

/* Carry out a decided action: PL_SKIP does nothing; PL_RUN moves a stale own_dir aside if the stamp does not
 * match, creates the outputs' directories, writes the "running" stamp, runs the command (fork/exec; the child gets
 * SIGTERM if the driver dies), checks the exit status and that every output exists, and writes the "done" stamp;
 * PL_RESUME the same with resume_arg; PL_FINISH checks the outputs and writes the stamp. A failed command leaves
 * the "running" stamp. */
int pl_stage_execute(pl_stage *s, pl_action action, dg_err *err);

/* pl_stage_execute in two halves, for running several stages at once:
 * pl_stage_start does everything up to the fork for PL_RUN or PL_RESUME (moving a stale own_dir aside, the
 * outputs' directories, the "running" stamp) and returns the child in *pid without waiting. out_fd < 0: the child
 * shares our stdout and stderr; else both go to out_fd (e.g. a pipe's write end; the caller closes its copy).
 * pl_stage_finish takes the child's wait status (0 for PL_FINISH, which needs no start) and does the rest: the
 * status check, the outputs, the "done" stamp. Every pl_stage_start needs its pl_stage_finish (or pl_stage_free). */
int pl_stage_start(pl_stage *s, pl_action action, int out_fd, pid_t *pid, dg_err *err);
int pl_stage_finish(pl_stage *s, int status, dg_err *err);

/* Directory of the running executable (from /proc/self/exe), for locating sibling stage binaries. */
int pl_exe_dir(char *dir, size_t n, dg_err *err);

#endif
