/* nn/checkpoint: the resumable state of a training run in one self-checking file.
 *
 * Layout (all integers little-endian):
 *   0   "DIGITCKP"            magic
 *   8   u32 version (1)       a newer or older layout is rejected, never misread
 *   12  u32 0                 reserved
 *   16  u64 payload bytes     the file is exactly 32 + this long (shorter: truncated)
 *   24  u32 CRC-32 (zlib polynomial) of the payload
 *   28  u32 0                 reserved
 *   32  payload: sections, each  char tag[8] (NUL-padded), u64 n, n bytes
 *       "spec"    resolved spec text          "run"     what else must match to resume (seed, split, data)
 *       "state"   epoch, seed, seconds, optimizer step count, schedule and early-stopping state (fixed fields)
 *       "params"  (n_params) f32              "buffers" (n_buffers) f32
 *       "optim"   (n_opt) f32                 "bestp" / "bestb" best-validation params / buffers (optional)
 *       "metrics" metrics.jsonl text so far
 *       "plan"    (optional, only once a run was shortened) u32 epochs the run now ends after, f64 x 3 the
 *                 schedule's re-target map (nn_sched warp_at, warp_v, warp_k)
 *       "ema"     (optional, only in a run with ema=D on) f32 D, then the moving average (nn/ema.h) of the
 *                 params and of the buffers: (n_params + n_buffers) f32
 * Unknown sections are skipped, so later versions can add some without breaking old readers.
 * Not here: what the floats mean (nn/train.c) or how the file is named.
 */
#ifndef NN_CHECKPOINT_H
#define NN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "nn/schedule.h"
#include "core/dg_err.h"

#define NN_CKPT_VERSION 1

typedef struct nn_ckpt {
    char *spec_text;      /* the resolved spec the run trains */
    char *run_key;        /* everything else that must match to resume (seed, split, dataset size) */
    uint32_t epoch;       /* epochs completed */
    uint64_t seed;
    double seconds;       /* training time so far */
    uint64_t opt_t;       /* optimizer steps taken */
    nn_sched sched;       /* without a "plan" section the re-target map is the identity */
    uint32_t epochs_target; /* a shortened run's epochs in all; 0: the spec's (no "plan" section) */
    double best_val_loss; /* early stopping: best validation loss so far (INFINITY: none yet) */
    uint32_t best_epoch;  /* 1-based epoch of best_val_loss (0: none) */
    uint32_t bad_epochs;  /* epochs since best_val_loss improved */
    size_t n_params, n_buffers, n_opt;
    float *params;        /* (n_params) */
    float *buffers;       /* (n_buffers) */
    float *opt_state;     /* (n_opt) */
    float *best_params;   /* (n_params) or NULL */
    float *best_buffers;  /* (n_buffers) or NULL */
    char *metrics;        /* metrics.jsonl so far */
    float ema_decay;      /* the run's ema= decay D; 0: no "ema" section (EMA off, or a checkpoint from before) */
    float *ema;           /* (n_params + n_buffers) the average of params then buffers, or NULL when ema_decay = 0 */
} nn_ckpt;

/* CRC-32 (the zlib/PNG polynomial), continuing from crc (0 to start). */
uint32_t nn_crc32(uint32_t crc, const void *data, size_t n);

/* Write atomically (write-then-rename): the old checkpoint stays until the new one is complete. The pointers of
 * c are only read; NULL strings are written as empty. */
int nn_ckpt_save(const char *path, const nn_ckpt *c, dg_err *err);

/* Read and verify (magic, version, length, checksum, sections). Fills *c with malloc'd copies (nn_ckpt_free). */
int nn_ckpt_load(const char *path, nn_ckpt *c, dg_err *err);

/* 1 if c was written for this spec text and run key; else 0 with a message naming the first difference. */
int nn_ckpt_matches(const nn_ckpt *c, const char *path, const char *spec_text, const char *run_key, dg_err *err);

void nn_ckpt_free(nn_ckpt *c);

#endif
