/* kaggle/submission: the submission.csv Kaggle's "Digit Recognizer" accepts, written and checked.
 *
 *   ImageId,Label        header, exactly this
 *   1,7                  one row per test image, ImageId = 1..N in order, Label = 0..9
 *   ...                  LF line ends, a final LF, nothing else
 *
 * A submission is written to a temporary file, read back and checked against these rules (and the row count
 * the caller expects), and only then renamed into place: a wrong file never appears under the real name.
 * This module does not compute predictions; see kaggle/ensemble.h.
 */
#ifndef KG_SUBMISSION_H
#define KG_SUBMISSION_H

#include <stddef.h>
#include <stdint.h>

#include "core/dg_err.h"
#include "core/dg_file.h"

/* Check submission text (len bytes, need not be NUL-terminated): header, ids 1..N in order, labels 0..9.
 * expect_n > 0: exactly that many rows. crlf = 1 accepts CRLF line ends (files others wrote, like Kaggle's
 * sample_submission.csv); our own output is checked with crlf = 0. name is used in messages ("name:line: ...").
 * On success *n (if not NULL) is the number of rows and counts[k] (if not NULL, 10 entries) how many rows have
 * label k. */
int kg_submission_check(const char *text, size_t len, size_t expect_n, int crlf, const char *name, size_t *n,
                        size_t counts[10], dg_err *err);

/* The same for a file on disk. */
int kg_submission_check_file(const char *path, size_t expect_n, int crlf, size_t *n, size_t counts[10], dg_err *err);

/* Rows of a sample submission (e.g. data/sample_submission.csv): same format, CRLF allowed. */
int kg_sample_rows(const char *path, size_t *n, dg_err *err);

/* Write labels (n,) as a submission, atomically: write a temporary, check it (expect_n > 0: row count must be
 * expect_n), then rename onto path. A label outside 0..9 or a wrong count is an error and nothing is written. */
int kg_submission_write(const char *path, const uint8_t *labels, size_t n, size_t expect_n, dg_err *err);
/* The same, written and checked in f's temporary but not committed: for dg_afile_commit_all with other files (on
 * failure nothing is left open). */
int kg_submission_write_afile(dg_afile *f, const char *path, const uint8_t *labels, size_t n, size_t expect_n,
                              dg_err *err);

#endif
