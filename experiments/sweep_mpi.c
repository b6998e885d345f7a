/* experiments/sweep_mpi: digits-sweep's coordinator and worker ranks over MPI (see sweep_mpi.h). */
#define _GNU_SOURCE 1 /* sigtimedwait, realpath */
#include "experiments/sweep_mpi.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/dg_progress.h"

int sw_mpi_launched(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

#ifndef DIGITS_MPI

/* Built without MPI: a local sweep, unless a launcher started several copies (each would run the whole sweep). */
int sw_mpi_begin(sw_mpi **m, double lease, dg_err *err) {
    (void)lease;
    *m = NULL;
    if (!sw_mpi_launched()) return SW_MPI_OFF;
    static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        const char *s = getenv(sizes[i]);
        if (s && atoi(s) > 1)
            return dg_fail(err, "this digits-sweep was built without MPI (cmake -DDIGITS_MPI=ON) but started as one "
                                "of %s ranks: each would run the whole sweep; run it without mpirun/srun, or rebuild",
                           s);
    }
    return SW_MPI_OFF;
}
int sw_mpi_workers(const sw_mpi *m) { return 0; }
const char *sw_mpi_where(const sw_mpi *m, int rank) { return "?"; }
int sw_mpi_pid(const sw_mpi *m, int rank) { return 0; }
int sw_mpi_worker(sw_mpi *m, dg_err *err) { return dg_fail(err, "built without MPI"); }
int sw_mpi_send_job(sw_mpi *m, int rank, const sw_exec_cfg *cfg, const sw_job *job, const char *run_dir,
                    const char *spec_path, uint64_t seed, int fold, int stop_at, dg_err *err) {
    return dg_fail(err, "built without MPI");
}
int sw_mpi_wait(sw_mpi *m, double timeout, sw_mpi_outcome *o, dg_err *err) { return dg_fail(err, "built without MPI"); }
void sw_mpi_end(sw_mpi *m) { (void)m; }

#else

#include <mpi.h>

/* Tags: coordinator -> worker, worker -> coordinator. */
enum { TAG_JOB = 1, TAG_STOP = 2, TAG_PING = 3, TAG_DONE = 11, TAG_BEAT = 12, TAG_ERROR = 13 };
#define BEAT_EVERY 1.0 /* seconds between heartbeats (and pings) */

/* A job: this header, then train_bin, data, run_dir, spec, tensorboard root ("": none) as NUL-terminated strings. Every rank runs the same
 * digits-sweep binary, so the layout is the same on both ends. */
typedef struct job_msg {
    int config, rep, rung, fold, stop_at, folds, threads;
    uint64_t seed, split_seed;
    double val_frac;
} job_msg;

/* An outcome: this header, then the reason and the metrics.jsonl text, NUL-terminated. */
typedef struct done_msg {
    int kind, config, rep, rung, epoch;
    double val_acc, val_loss, seconds;
} done_msg;

struct sw_mpi {
    int rank, size, local_workers;
    double lease;
    char (*where)[128];    /* [size] "HOST/rankR" */
    int *pid;              /* [size] each rank's process id */
    double *last_seen;     /* [size] coordinator: when each worker was last heard from */
    unsigned char *dead;   /* [size] coordinator: reported dead */
    char **job_buf;        /* [size] coordinator: the job message in flight to each rank */
    MPI_Request *job_req;  /* [size] */
    double last_ping;
    int no_finalize;       /* a rank died: MPI_Finalize's closing handshake would wait for it forever */
};

/* Payloads of pings, heartbeats and stops: static, so that a freed request may still read them. A stop's says
 * whether a rank died (then nobody calls MPI_Finalize, which would wait for it). */
static const int k_beat = 0, k_died = 1;

static int mpi_fail(dg_err *err, int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "error %d", rc);
    return dg_fail(err, "MPI: %s: %s", what, msg);
}

static void nap(double secs) {
    struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
    nanosleep(&ts, NULL);
}

/* A message for nobody's reply (ping, heartbeat, stop): sent and forgotten. */
static void post_int(int dest, int tag, const int *payload) {
    MPI_Request q;
    if (MPI_Isend(payload, 1, MPI_INT, dest, tag, MPI_COMM_WORLD, &q) == MPI_SUCCESS) MPI_Request_free(&q);
}
static void post(int dest, int tag) { post_int(dest, tag, &k_beat); }

int sw_mpi_begin(sw_mpi **m, double lease, dg_err *err) {
    *m = NULL;
    if (!sw_mpi_launched()) return SW_MPI_OFF;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init(NULL, NULL) != MPI_SUCCESS) return dg_fail(err, "MPI_Init failed");
    /* errors come back as codes (a dead peer is then an error on that call, not the end of this process) */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size < 2) {
        MPI_Finalize();
        return SW_MPI_ALONE;
    }
    sw_mpi *s = calloc(1, sizeof *s);
    if (!s) return dg_fail(err, "out of memory");
    s->rank = rank;
    s->size = size;
    s->lease = lease > 0 ? lease : 30;
    s->where = calloc((size_t)size, sizeof *s->where);
    s->last_seen = calloc((size_t)size, sizeof *s->last_seen);
    s->dead = calloc((size_t)size, 1);
    s->pid = calloc((size_t)size, sizeof *s->pid);
    s->job_buf = calloc((size_t)size, sizeof *s->job_buf);
    s->job_req = malloc((size_t)size * sizeof *s->job_req);
    if (!s->where || !s->pid || !s->last_seen || !s->dead || !s->job_buf || !s->job_req) {
        sw_mpi_end(s);
        return dg_fail(err, "out of memory");
    }
    for (int r = 0; r < size; r++) s->job_req[r] = MPI_REQUEST_NULL;
    /* everyone's host name, and how many worker ranks share this node (their default threads split its CPUs) */
    char host[128] = "?";
    gethostname(host, sizeof host - 1);
    char mine[128];
    snprintf(mine, sizeof mine, "%.100s/rank%d", host, rank);
    int rc = MPI_Allgather(mine, sizeof mine, MPI_CHAR, s->where, sizeof mine, MPI_CHAR, MPI_COMM_WORLD);
    int me = (int)getpid();
    if (rc == MPI_SUCCESS) rc = MPI_Allgather(&me, 1, MPI_INT, s->pid, 1, MPI_INT, MPI_COMM_WORLD);
    MPI_Comm node;
    if (rc == MPI_SUCCESS) rc = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    if (rc == MPI_SUCCESS) {
        int w = rank != 0;
        rc = MPI_Allreduce(&w, &s->local_workers, 1, MPI_INT, MPI_SUM, node);
        MPI_Comm_free(&node);
    }
    if (rc != MPI_SUCCESS) {
        mpi_fail(err, rc, "exchanging host names");
        sw_mpi_end(s);
        return -1;
    }
    double now = dg_now();
    for (int r = 0; r < size; r++) s->last_seen[r] = now;
    s->last_ping = now;
    *m = s;
    return rank == 0 ? SW_MPI_COORD : SW_MPI_WORKER;
}

int sw_mpi_workers(const sw_mpi *m) { return m->size - 1; }

const char *sw_mpi_where(const sw_mpi *m, int rank) { return m->where[rank]; }

int sw_mpi_pid(const sw_mpi *m, int rank) { return m->pid[rank]; }

void sw_mpi_end(sw_mpi *m) {
    if (!m) return;
    if (m->rank == 0) {
        for (int r = 1; r < m->size; r++) m->no_finalize |= m->dead[r];
        for (int r = 1; r < m->size; r++)
            if (!m->dead[r]) post_int(r, TAG_STOP, m->no_finalize ? &k_died : &k_beat);
    }
    for (int r = 0; m->job_req && r < m->size; r++)
        if (m->job_req[r] != MPI_REQUEST_NULL) MPI_Request_free(&m->job_req[r]);
    /* With a rank dead (mpirun --enable-recovery), MPI_Finalize would hang: the process just exits, which mpirun
     * accepts in that mode. */
    if (!m->no_finalize) MPI_Finalize();
    for (int r = 0; m->job_buf && r < m->size; r++) free(m->job_buf[r]);
    free(m->job_buf);
    free(m->job_req);
    free(m->where);
    free(m->pid);
    free(m->last_seen);
    free(m->dead);
    free(m);
}

/* ---- coordinator ---- */

/* path made absolute against this process's directory (the other ranks may have another one) */
static int absolute(const char *path, char *buf, size_t n, dg_err *err) {
    if (path[0] == '/') {
        snprintf(buf, n, "%s", path);
        return 0;
    }
    char cwd[1024];
    if (!getcwd(cwd, sizeof cwd)) return dg_fail_errno(err, "getcwd");
    snprintf(buf, n, "%s/%s", cwd, path);
    return 0;
}

int sw_mpi_send_job(sw_mpi *m, int rank, const sw_exec_cfg *cfg, const sw_job *job, const char *run_dir,
                    const char *spec_path, uint64_t seed, int fold, int stop_at, dg_err *err) {
    char s[5][1100];
    if (absolute(cfg->train_bin, s[0], sizeof s[0], err) != 0 || absolute(cfg->data, s[1], sizeof s[1], err) != 0 ||
        absolute(run_dir, s[2], sizeof s[2], err) != 0 || absolute(spec_path, s[3], sizeof s[3], err) != 0)
        return -1;
    s[4][0] = '\0';
    if (cfg->tensorboard && cfg->tensorboard[0] && absolute(cfg->tensorboard, s[4], sizeof s[4], err) != 0) return -1;
    job_msg h = {job->config, job->rep, job->rung, fold, stop_at, cfg->folds, cfg->threads,
                 seed, cfg->split_seed, cfg->val_frac};
    size_t len = sizeof h;
    for (int i = 0; i < 5; i++) len += strlen(s[i]) + 1;
    /* the last job's message was received (its rank answered it), so its request is complete */
    if (m->job_req[rank] != MPI_REQUEST_NULL) MPI_Wait(&m->job_req[rank], MPI_STATUS_IGNORE);
    free(m->job_buf[rank]);
    char *b = m->job_buf[rank] = malloc(len);
    if (!b) return dg_fail(err, "out of memory");
    memcpy(b, &h, sizeof h);
    size_t o = sizeof h;
    for (int i = 0; i < 5; i++) {
        size_t l = strlen(s[i]) + 1;
        memcpy(b + o, s[i], l);
        o += l;
    }
    int rc = MPI_Isend(b, (int)len, MPI_BYTE, rank, TAG_JOB, MPI_COMM_WORLD, &m->job_req[rank]);
    if (rc != MPI_SUCCESS) return mpi_fail(err, rc, m->where[rank]);
    return 0;
}

/* One message from any worker, if there is one: 1 (tag, src, malloc'd payload and its length), 0, or -1. */
static int receive(int from, int *tag, int *src, char **buf, int *len, dg_err *err) {
    int flag = 0;
    MPI_Status st;
    int rc = MPI_Iprobe(from, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
    if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "probe");
    if (!flag) return 0;
    MPI_Get_count(&st, MPI_BYTE, len);
    *buf = malloc((size_t)*len + 1);
    if (!*buf) return dg_fail(err, "out of memory");
    rc = MPI_Recv(*buf, *len, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) {
        free(*buf);
        return mpi_fail(err, rc, "receive");
    }
    (*buf)[*len] = '\0';
    *tag = st.MPI_TAG;
    *src = st.MPI_SOURCE;
    return 1;
}

int sw_mpi_wait(sw_mpi *m, double timeout, sw_mpi_outcome *o, dg_err *err) {
    memset(o, 0, sizeof *o);
    double t0 = dg_now();
    for (;;) {
        double now = dg_now();
        if (now - m->last_ping >= BEAT_EVERY) {
            for (int r = 1; r < m->size; r++)
                if (!m->dead[r]) post(r, TAG_PING);
            m->last_ping = now;
        }
        int tag = 0, src = 0, len = 0;
        char *b = NULL;
        int got = receive(MPI_ANY_SOURCE, &tag, &src, &b, &len, err);
        if (got < 0) return -1;
        if (got) {
            if (src <= 0 || src >= m->size || m->dead[src]) { /* a rank given up on: not listened to */
                free(b);
                continue;
            }
            m->last_seen[src] = dg_now();
            if (tag == TAG_ERROR) {
                dg_fail(err, "%s: %s", m->where[src], b);
                free(b);
                return -1;
            }
            if (tag != TAG_DONE || (size_t)len < sizeof(done_msg)) {
                free(b);
                continue;
            }
            done_msg h;
            memcpy(&h, b, sizeof h);
            const char *reason = b + sizeof h;
            const char *metrics = reason + strlen(reason) < b + len ? reason + strlen(reason) + 1 : "";
            o->kind = h.kind;
            o->rank = src;
            o->job = (sw_job){h.config, h.rep, h.rung};
            o->epoch = h.epoch;
            o->val_acc = h.val_acc;
            o->val_loss = h.val_loss;
            o->seconds = h.seconds;
            snprintf(o->reason, sizeof o->reason, "%.*s", (int)sizeof o->reason - 1, reason);
            if (h.kind == SW_MPI_RESULT && !(o->metrics = strdup(metrics))) {
                free(b);
                return dg_fail(err, "out of memory");
            }
            free(b);
            return 1;
        }
        for (int r = 1; r < m->size; r++)
            if (!m->dead[r] && now - m->last_seen[r] > m->lease) {
                m->dead[r] = 1;
                post(r, TAG_STOP); /* if it is only slow, it stops its trainer (the job runs elsewhere) and exits */
                o->kind = SW_MPI_DEAD;
                o->rank = r;
                snprintf(o->reason, sizeof o->reason, "%s silent for %.0f s", m->where[r], now - m->last_seen[r]);
                return 1;
            }
        if (now - t0 >= timeout) return 0;
        nap(0.005);
    }
}

/* ---- worker ---- */

/* Send the coordinator a message and see it through (a large one waits for the coordinator's receive), beating
 * meanwhile; gives up after the lease. */
static int send_up(sw_mpi *m, int tag, const char *b, size_t len, dg_err *err) {
    MPI_Request q;
    int rc = MPI_Isend(b, (int)len, MPI_BYTE, 0, tag, MPI_COMM_WORLD, &q);
    if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "send to rank 0");
    double t0 = dg_now(), beat = t0;
    for (;;) {
        int done = 0;
        rc = MPI_Test(&q, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(err, rc, "send to rank 0");
        if (done) return 0;
        double now = dg_now();
        if (now - t0 > m->lease) {
            MPI_Request_free(&q);
            return dg_fail(err, "%s: rank 0 took no message for %.0f s", m->where[m->rank], now - t0);
        }
        if (now - beat >= BEAT_EVERY) {
            post(0, TAG_BEAT);
            beat = now;
        }
        nap(0.002);
    }
}

static int send_done(sw_mpi *m, const job_msg *j, int kind, int epoch, double acc, double loss, double secs,
                     const char *reason, const char *metrics, dg_err *err) {
    done_msg h = {kind, j->config, j->rep, j->rung, epoch, acc, loss, secs};
    if (!metrics) metrics = "";
    size_t lr = strlen(reason) + 1, lm = strlen(metrics) + 1, len = sizeof h + lr + lm;
    char *b = malloc(len);
    if (!b) return dg_fail(err, "out of memory");
    memcpy(b, &h, sizeof h);
    memcpy(b + sizeof h, reason, lr);
    memcpy(b + sizeof h + lr, metrics, lm);
    int rc = send_up(m, TAG_DONE, b, len, err);
    free(b);
    return rc;
}

/* The job's outcome once its trainer exited: what the local loop of sweep_cli.c would record. */
static int finish_job(sw_mpi *m, const job_msg *j, const char *run_dir, int status, dg_err *err) {
    char reason[512];
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        int epoch = 0;
        double acc = 0, loss = 0, secs = 0;
        char *metrics = NULL;
        dg_err e;
        int h = sw_exec_harvest(run_dir, j->stop_at, &epoch, &acc, &loss, &secs, &metrics, &e);
        if (h < 0) return send_up(m, TAG_ERROR, e.msg, strlen(e.msg) + 1, err);
        if (h == 1) {
            int rc = send_done(m, j, SW_MPI_RESULT, epoch, acc, loss, secs, "", metrics, err);
            free(metrics);
            return rc;
        }
        snprintf(reason, sizeof reason, "digits-train exited 0 without reaching epoch %d", j->stop_at);
    } else {
        sw_exec_reason(run_dir, status, reason, sizeof reason);
    }
    return send_done(m, j, SW_MPI_FAILED, 0, 0, 0, 0, reason, NULL, err);
}

static void stop_trainer(pid_t *pid) {
    if (*pid <= 0) return;
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = 0;
}

int sw_mpi_worker(sw_mpi *m, dg_err *err) {
    sigset_t chld, old_mask;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigprocmask(SIG_BLOCK, &chld, &old_mask);
    pid_t pid = 0;
    job_msg job = {0};
    char run_dir[1100] = "";
    double last_heard = dg_now(), last_beat = 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int default_threads = cpus > m->local_workers && m->local_workers > 0 ? (int)(cpus / m->local_workers) : 1;
    int rc = 0;
    for (;;) {
        double now = dg_now();
        if (now - last_beat >= BEAT_EVERY) {
            post(0, TAG_BEAT);
            last_beat = now;
        }
        int tag = 0, src = 0, len = 0, stop = 0, got = 0;
        char *b = NULL;
        while (!stop && (got = receive(0, &tag, &src, &b, &len, err)) == 1) {
            last_heard = dg_now();
            if (tag == TAG_STOP) {
                stop = 1;
                if ((size_t)len >= sizeof(int) && memcmp(b, &k_died, sizeof(int)) == 0) m->no_finalize = 1;
            }
            if (tag == TAG_JOB && (size_t)len > sizeof job && !pid) {
                memcpy(&job, b, sizeof job);
                const char *train = b + sizeof job, *data = train + strlen(train) + 1,
                           *rd = data + strlen(data) + 1, *spec = rd + strlen(rd) + 1,
                           *tb = spec + strlen(spec) + 1;
                snprintf(run_dir, sizeof run_dir, "%s", rd);
                sw_exec_cfg cfg = {train, data, job.val_frac, job.folds, job.split_seed,
                                   job.threads > 0 ? job.threads : default_threads, tb};
                dg_err e;
                if (sw_exec_start(&cfg, run_dir, spec, job.seed, job.fold, job.stop_at, &pid, &e) != 0) {
                    pid = 0;
                    if (send_up(m, TAG_ERROR, e.msg, strlen(e.msg) + 1, err) != 0) stop = rc = -1;
                }
            }
            free(b);
        }
        if (got < 0) rc = -1;
        if (stop || rc != 0) break;
        if (pid) {
            int status;
            pid_t p = waitpid(pid, &status, WNOHANG);
            if (p == pid) {
                pid = 0;
                if (finish_job(m, &job, run_dir, status, err) != 0) {
                    rc = -1;
                    break;
                }
                continue;
            }
        }
        /* rank 0 may be busy for a while without pinging (creating a large sweep's configurations on a slow
           filesystem, writing the leaderboard): a worker waits 10 leases before it takes rank 0 as gone */
        if (dg_now() - last_heard > 10 * m->lease) {
            m->no_finalize = 1;
            rc = dg_fail(err, "%s: no word from the coordinator (rank 0) for %.0f s; stopping", m->where[m->rank],
                         dg_now() - last_heard);
            break;
        }
        if (pid) {
            struct timespec ts = {0, 20 * 1000 * 1000}; /* a trainer's end is seen at once, a message within 20 ms */
            sigtimedwait(&chld, NULL, &ts);
        } else {
            nap(0.005);
        }
    }
    stop_trainer(&pid);
    sigprocmask(SIG_SETMASK, &old_mask, NULL);
    return rc;
}

#endif
