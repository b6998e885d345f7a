/* experiments/sweep_store: a sweep's database, SQLite (WAL, synchronous=FULL: a committed result survives a kill
 * or a power cut), which users may query (`sqlite3 sweep.db "select ..."`, pandas).
 *
 * Tables (docs/sweeps.md):
 *   meta(key, value)           schema_version, sweep_hash, sweep_file
 *   configs(id, params, spec)  a configuration's parameters (JSON) and its spec text
 *   trials(id, config, replicate, seed, fold, state, rung, epochs, reason, run_dir, host, pid, started, heartbeat,
 *          lease_until, finished, seconds)     one row per configuration x replicate; state is one of
 *          waiting, running, complete, pruned, failed
 *   rungs(trial, rung, epoch, val_acc, val_loss)            a trial's result at each rung it reached
 *   epochs(trial, epoch, train_loss, train_acc, val_loss, val_acc, lr, seconds)   per-epoch metrics
 * Trial id = config * replicates + replicate. Opening a database checks its schema version and the sweep's hash
 * (another sweep's database is an error) and returns the rows left "running" by a coordinator that died to
 * "waiting": only one coordinator holds a sweep (sweep_cli.c locks the directory), so they are stale.
 */
#ifndef SW_STORE_H
#define SW_STORE_H

#include <stdint.h>

#include "core/dg_err.h"

#define SW_SCHEMA_VERSION 1

typedef struct sw_store sw_store;

/* Open or create path. *recovered = trials that were left running. */
int sw_store_open(sw_store **st, const char *path, uint64_t hash, const char *sweep_file, int *recovered,
                  dg_err *err);
void sw_store_close(sw_store *st);

/* Batches: between sw_store_begin and sw_store_commit, writes go into one transaction, begun by the first of
 * them, that sw_store_commit_due commits once it is SW_COMMIT_EVERY (1 s) old, so short trials share one fsync
 * (synchronous=FULL) instead of paying one or three each. A kill before the commit loses only what the run
 * directories still hold, where the next start finds it (sweep_cli.c), and the trial starts, which it makes
 * "waiting" anyway; a failure, which is not in a run directory, commits at once. sw_store_commit commits and ends
 * the batch; sw_store_close commits an open one. A failed commit rolls the transaction back. */
void sw_store_begin(sw_store *st);
int sw_store_commit_due(sw_store *st, dg_err *err);
int sw_store_commit(sw_store *st, dg_err *err);
/* Insert configuration c (if missing) with its replicates' trial rows (waiting). */
int sw_store_add_config(sw_store *st, int c, int n_reps, const char *params_json, const char *spec,
                        const uint64_t *seeds, const int *folds, const char *const *run_dirs, dg_err *err);

/* Fill the caller's arrays (see sw_results in sweep_strategy.h) from the rungs and the failed trials: val is the
 * metric (val_acc when maximize, else val_loss). */
int sw_store_load(sw_store *st, int n_configs, int n_reps, int n_rungs, int maximize, double *val,
                  unsigned char *have, unsigned char *failed, dg_err *err);

/* A trial starts running toward rung: state running, pid, host, lease. */
int sw_store_start(sw_store *st, int trial, int rung, int pid, double now, dg_err *err);
/* The same for a trial that runs elsewhere (an MPI worker rank): host is "HOST/rankR", pid that rank's. */
int sw_store_start_on(sw_store *st, int trial, int rung, const char *host, int pid, double now, dg_err *err);
/* One running trial back to waiting (the rank running it died; the job goes back to the queue). */
int sw_store_requeue(sw_store *st, int trial, dg_err *err);
/* Heartbeat of every running trial: lease_until = now + lease. */
int sw_store_heartbeat(sw_store *st, double now, double lease, dg_err *err);
/* A trial reached rung at epoch: its result, its per-epoch metrics (metrics.jsonl text), its state afterwards
 * ("waiting" or "complete"), in one transaction. */
int sw_store_result(sw_store *st, int trial, int rung, int epoch, double val_acc, double val_loss, double seconds,
                    const char *metrics_jsonl, const char *state, double now, dg_err *err);
/* A trial failed (its reason is kept). */
int sw_store_fail(sw_store *st, int trial, const char *reason, double now, dg_err *err);
/* Running trials back to waiting (a deadline stopped them). */
int sw_store_unrun(sw_store *st, dg_err *err);
/* Mark the trials of configuration c (pruned / complete) unless failed. */
int sw_store_config_state(sw_store *st, int c, const char *state, dg_err *err);
/* Failed trials back to waiting (--retry-failed); their rung results are kept. Returns how many, or -1. */
int sw_store_retry_failed(sw_store *st, dg_err *err);
/* A trial's state, epochs done, seconds and reason (reason[n]). */
int sw_store_trial_info(sw_store *st, int trial, char *state, int *epochs, double *seconds, char *reason, int n,
                        dg_err *err);

#endif
