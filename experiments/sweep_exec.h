/* experiments/sweep_exec: one trial = one digits-train process with its own run directory.
 *
 * A trial toward rung epoch E runs `digits-train --resume --stop-at E ...` (the last rung without --stop-at, so it
 * writes result.json): the spec's schedule spans the last rung's epochs, and a promoted trial continues its run
 * directory from the checkpoint, bit-identically. The child (vfork) gets SIGKILL when the coordinator dies
 * (PR_SET_PDEATHSIG), so a killed sweep leaves no trainer behind, only checkpoints. Its stdout and stderr go to
 * RUN/train.log. Not here: what to run (sweep_strategy.h).
 */
#ifndef SW_EXEC_H
#define SW_EXEC_H

#include <stdint.h>
#include <sys/types.h>

#include "core/dg_err.h"

typedef struct sw_exec_cfg {
    const char *train_bin; /* digits-train (or a wrapper with its options) */
    const char *data;      /* dataset .npy */
    double val_frac;
    int folds;             /* 0: hold-out */
    uint64_t split_seed;
    int threads;           /* per trial */
    const char *tensorboard; /* NULL, or a directory: trial DIR/trials/NAME writes its events to TENSORBOARD/NAME */
} sw_exec_cfg;

/* Where a sweep in dir keeps trial (c, rep): DIR/trials/cCCCC-rR; and configuration c's spec and policy:
 * DIR/configs/cCCCC.spec, .policy. */
void sw_trial_dir(const char *dir, int c, int rep, char *buf, size_t n);
void sw_config_path(const char *dir, int c, const char *ext, char *buf, size_t n);

/* Write a configuration's file (atomically, fsync'd) unless it already holds exactly text: a restarted sweep
 * does not rewrite and sync hundreds of unchanged files. */
int sw_write_if_changed(const char *path, const char *text, dg_err *err);

/* Start digits-train for run_dir (spec_path, seed, fold 1..folds or 0) up to stop_at epochs (0: to the end). */
int sw_exec_start(const sw_exec_cfg *cfg, const char *run_dir, const char *spec_path, uint64_t seed, int fold,
                  int stop_at, pid_t *pid, dg_err *err);

/* What a run directory holds at a target: returns 1 and fills epoch, val_acc, val_loss, seconds (summed over the
 * epochs) and metrics (the metrics.jsonl text, malloc'd) once the run reached stop_at epochs (0: result.json),
 * or finished earlier (early stopping); 0 if not reached yet; -1 on a read error. */
int sw_exec_harvest(const char *run_dir, int stop_at, int *epoch, double *val_acc, double *val_loss,
                    double *seconds, char **metrics, dg_err *err);

/* How far a trial has got: the highest epoch in run_dir's metrics.jsonl, the sum of those epochs' "seconds", and the
 * mean of the last SW_PACE_EPOCHS of them (all 0 without the file, or where it cannot be read). What the sweep's
 * status line paces its estimate on: the recent epochs, so that a past slow spell (another job on the machine) does
 * not weigh on the estimate after it ended. */
#define SW_PACE_EPOCHS 3
void sw_exec_progress(const char *run_dir, int *epochs, double *seconds, double *recent);

/* Seconds until trials with left[0..n) epochs still to train are done on `workers` trainers at `pace` seconds per
 * epoch, each trial taken whole by the trainer that is free first, the longest first; 0 for none. left is
 * reordered. */
double sw_eta(int *left, int n, int workers, double pace);

/* Why a trial failed: its wait status and the last line of RUN/train.log (digits-train's message). */
void sw_exec_reason(const char *run_dir, int status, char *reason, size_t n);
/* 1 if that reason is the disk's, not the trial's (no space, quota, read-only file system): the sweep stops and the
 * trial stays to run again, instead of being FAILED. (sw_exec_start reserves a page of train.log so that the
 * trainer's message gets there on a full disk.) */
int sw_exec_disk_full(const char *reason);

#endif
