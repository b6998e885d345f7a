/* experiments/sweep_mpi: digits-sweep over MPI ranks (`mpirun -np N digits-sweep ...`, or srun).
 *
 * Rank 0 is the coordinator: it owns DIR/sweep.db and every decision (sweep_cli.c, sweep_strategy.h) and hands
 * one job at a time to each of ranks 1..N-1. A worker rank starts digits-train for the job on its own node
 * (sweep_exec.h), waits for it, and sends back the harvest (epoch, val_acc, val_loss, seconds and the
 * metrics.jsonl text) or the reason it failed. Run directories are DIR/trials/... on a filesystem every rank sees;
 * paths travel absolute. A promoted trial resumes from its checkpoint on whichever rank gets it.
 *
 * Liveness: every worker sends a heartbeat each second and the coordinator pings each worker each second. A
 * worker the coordinator has not heard from for `lease` seconds is dead: sw_mpi_wait reports it once (its job goes
 * back to the queue in sweep_cli.c) and it gets no more jobs. A worker that has not heard from the coordinator
 * for 10 leases kills its trainer and exits. Whether the job survives a rank's death at all is mpirun's
 * choice: OpenMPI 4 aborts the whole job unless it runs with --enable-recovery (docs/sweeps.md).
 *
 * Built without DIGITS_MPI, sw_mpi_begin returns SW_MPI_OFF outside an MPI launcher and an error inside one of
 * more than one rank. Not here: what runs (sweep_strategy.h), the database (sweep_store.h).
 */
#ifndef SW_MPI_H
#define SW_MPI_H

#include <stdint.h>

#include "core/dg_err.h"
#include "experiments/sweep_exec.h"
#include "experiments/sweep_strategy.h"

typedef struct sw_mpi sw_mpi;

enum {
    SW_MPI_OFF = 0,    /* not started by an MPI launcher: a local sweep */
    SW_MPI_ALONE = 1,  /* one rank (mpirun -np 1): MPI is closed again, the sweep runs locally */
    SW_MPI_COORD = 2,  /* rank 0 of several */
    SW_MPI_WORKER = 3, /* rank 1..N-1 */
};

/* Whether this process was started by an MPI launcher (mpirun/mpiexec, srun with PMI/PMIx): its environment. */
int sw_mpi_launched(void);

/* MPI_Init when launched by one; *m is NULL unless the role is SW_MPI_COORD or SW_MPI_WORKER. lease: seconds of
 * silence after which a rank is taken as dead. Returns the role, or -1 (err). Collective over all ranks. */
int sw_mpi_begin(sw_mpi **m, double lease, dg_err *err);

/* The worker ranks (N - 1). */
int sw_mpi_workers(const sw_mpi *m);

/* "HOST/rankR": where rank runs (for the trials' host column). */
const char *sw_mpi_where(const sw_mpi *m, int rank);
/* That rank's process id. */
int sw_mpi_pid(const sw_mpi *m, int rank);

/* A worker's whole life: jobs until the coordinator says stop. 0, or -1 (err: the coordinator went silent, or
 * MPI failed). */
int sw_mpi_worker(sw_mpi *m, dg_err *err);

/* Coordinator: send rank (1..N-1) a job; its arguments are sw_exec_start's (threads 0: the worker's CPUs / the
 * worker ranks on its node). Relative paths are made absolute against this process's directory. */
int sw_mpi_send_job(sw_mpi *m, int rank, const sw_exec_cfg *cfg, const sw_job *job, const char *run_dir,
                    const char *spec_path, uint64_t seed, int fold, int stop_at, dg_err *err);

/* What came back from a worker rank. */
enum {
    SW_MPI_RESULT = 1,  /* the job reached its target: epoch, val_acc, val_loss, seconds, metrics */
    SW_MPI_FAILED = 2,  /* digits-train failed (reason), or exited 0 short of its target */
    SW_MPI_DEAD = 3,    /* the rank was silent for the lease: its job (if any) did not finish */
};
typedef struct sw_mpi_outcome {
    int kind, rank;
    sw_job job;         /* RESULT, FAILED: the job it answers */
    int epoch;
    double val_acc, val_loss, seconds;
    char *metrics;      /* RESULT: the metrics.jsonl text, malloc'd: the caller frees it */
    char reason[512];   /* FAILED */
} sw_mpi_outcome;

/* Coordinator: wait up to timeout seconds for a worker's outcome (also sends the pings and reads heartbeats).
 * 1 (o filled), 0 (nothing yet), -1 (err: a worker could not run its job, e.g. no digits-train on its node, or
 * MPI failed). A dead rank is reported once. */
int sw_mpi_wait(sw_mpi *m, double timeout, sw_mpi_outcome *o, dg_err *err);

/* Coordinator: tell every live worker to stop (killing its trainer, if any); then, on every rank, MPI_Finalize.
 * NULL is a no-op. */
void sw_mpi_end(sw_mpi *m);

#endif
