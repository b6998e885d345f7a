/* dg_file: atomic output files and read-only memory maps.
 *
 * Every file the project writes goes through dg_afile: data goes to "<path>.tmp.<pid>" in the same directory,
 * and only dg_afile_commit() (flush, fsync, rename) makes it appear under its real name. A crash, a full disk or a
 * kill -9 leaves either the old file or the new one, never a partial one; dg_afile_abort() removes the temporary.
 */
#ifndef DG_FILE_H
#define DG_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "core/dg_err.h"

typedef struct dg_afile {
    FILE *fp;        /* write through this */
    char *path;      /* final name */
    char *tmp_path;  /* temporary name */
} dg_afile;

/* Open "<path>.tmp.<pid>" for writing. Fails (with the path in the message) if the directory is not writable.
 * Temporaries of the same path left by a process that no longer exists (killed mid-write) are removed first. */
int dg_afile_open(dg_afile *f, const char *path, dg_err *err);
/* Flush, fsync and rename onto the final path; on any failure the temporary is removed. Frees f. */
int dg_afile_commit(dg_afile *f, dg_err *err);
/* Commit n files as one: all are flushed, fsynced and closed before any is renamed, and if a rename fails the
 * files renamed before it are put back as they were (the previous file, or none), so a failure leaves every final
 * name as it was. Renames go in the order given. Frees every f, on success or failure. */
int dg_afile_commit_all(dg_afile *const *fs, int n, dg_err *err);
/* Close and remove the temporary. Safe on a zeroed or already finished dg_afile. */
void dg_afile_abort(dg_afile *f);

/* Write a whole buffer atomically. */
int dg_write_file_atomic(const char *path, const void *data, size_t n, dg_err *err);
/* Largest file dg_read_file reads whole (photos, run files), and largest text file (spec, policy, preset, sweep):
 * a path such as /dev/zero or a wrong file fails with a message instead of filling the memory. */
#define DG_READ_MAX ((size_t)1 << 30)
#define DG_TEXT_MAX ((size_t)16 << 20)

/* Read a whole file (at most DG_READ_MAX bytes) into a malloc'd, NUL-terminated buffer (*n excludes the NUL). */
int dg_read_file(const char *path, char **data, size_t *n, dg_err *err);
/* Read a text file (spec, policy, preset, sweep): like dg_read_file, but at most DG_TEXT_MAX bytes, and a NUL byte
 * inside is an error naming `what`. */
int dg_read_text(const char *path, const char *what, char **text, dg_err *err);

typedef struct dg_map {
    const unsigned char *data;
    size_t size;
} dg_map;

/* Map a file read-only. An empty file maps to {NULL, 0} successfully. */
int dg_map_open(dg_map *m, const char *path, dg_err *err);
void dg_map_close(dg_map *m);

/* 1 if path exists (any type), else 0. */
int dg_path_exists(const char *path);
/* mkdir -p. */
int dg_mkdirs(const char *path, dg_err *err);

#endif
