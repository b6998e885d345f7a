/* dg_err: error reporting for library code.
 *
 * Library functions never print or exit. A function that can fail takes a `dg_err *` as its last argument,
 * fills it with a one-line message ("file:line:col: what was expected") and returns -1 (or NULL). Stage mains
 * print err.msg to stderr and map failures to exit codes (DG_EXIT_*). A NULL `dg_err *` is allowed. */
#ifndef DG_ERR_H
#define DG_ERR_H

#include <stddef.h>

enum { DG_EXIT_OK = 0, DG_EXIT_FAIL = 1, DG_EXIT_USAGE = 2 };

typedef struct dg_err {
    char msg[1024];
} dg_err;

/* Format a message into err (printf-style). Always returns -1 so callers can `return dg_fail(err, ...)`. */
int dg_fail(dg_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Like dg_fail, appending ": strerror(errno)". */
int dg_fail_errno(dg_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix an existing message: "prefix: old message". Returns -1. */
int dg_err_prefix(dg_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
