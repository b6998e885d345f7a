/* dg_tfevents: TensorBoard event files with scalar summaries, so `tensorboard --logdir DIR` plots a run.
 *
 * File: DIR/events.out.tfevents.<unix seconds>.<host>.<pid>, a sequence of TFRecords, each
 *     uint64 length (little-endian) | uint32 masked CRC32C of those 8 bytes | data | uint32 masked CRC32C of data
 * (mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8), where data is a serialized tensorflow.Event:
 *     Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
 *     Summary { repeated Value value = 1; }
 *     Value   { string tag = 1; float simple_value = 2; }
 * The first record carries file_version "brain.Event:2", as TensorFlow writes it. Only these fields are encoded
 * (a hand encoder of five protobuf fields; tests/core/test_dg_tfevents.c decodes its output with python3-protobuf).
 *
 * Unlike the project's other outputs this file is appended to, not renamed into place: TensorBoard reads event
 * files as logs that grow, keeping its position, so a file replaced by rename would never show new epochs while
 * a run goes on. Each dg_tfevents_scalars call writes whole records and flushes and fsyncs them; a crash can leave
 * at most one torn record at the end, which readers detect by its CRC. Each writer opens a new file (the pid is in
 * the name), so a resumed run adds a file beside the first and TensorBoard merges them by step.
 * Not here: what a training run logs (nn/train.c). */
#ifndef DG_TFEVENTS_H
#define DG_TFEVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/dg_err.h"

/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78) of n bytes, continuing from crc (0 to start):
 * dg_crc32c(0, "123456789", 9) == 0xE3069283. */
uint32_t dg_crc32c(uint32_t crc, const void *data, size_t n);
/* TFRecord's masked CRC. */
uint32_t dg_crc32c_mask(uint32_t crc);

/* Serialize an Event with wall_time, step and a Summary of n scalar values (tags[i], values[i]) into buf (cap
 * bytes); returns the size it needs (like snprintf: nothing past cap is written). file_version: an Event with only
 * wall_time and file_version instead (n, tags, values ignored) when not NULL. */
size_t dg_tfevents_encode(uint8_t *buf, size_t cap, double wall_time, int64_t step, const char *file_version,
                          int n, const char *const *tags, const float *values);

typedef struct dg_tfevents {
    FILE *fp;
    char path[1200];
} dg_tfevents;

/* Create dir (mkdir -p) and a new event file in it holding the file_version record. */
int dg_tfevents_open(dg_tfevents *w, const char *dir, dg_err *err);
/* One Event at (wall_time, step) holding n scalars; written, flushed and fsynced. */
int dg_tfevents_scalars(dg_tfevents *w, double wall_time, int64_t step, int n, const char *const *tags,
                        const float *values, dg_err *err);
/* Close the file (safe on a zeroed writer). */
void dg_tfevents_close(dg_tfevents *w);

#endif
