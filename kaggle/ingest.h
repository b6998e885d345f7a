/* kaggle/ingest: Kaggle "Digit Recognizer" CSV -> the project's dataset file (core/dg_dataset.h).
 *
 * Reads train.csv ("label,pixel0,...,pixel783", labelled) or test.csv ("pixel0,...,pixel783", unlabelled) and
 * writes one dataset .npy through dg_dataset_writer (write-then-rename: on any error no output file appears).
 *
 * Accepted: LF or CRLF line ends (a bare CR too), a UTF-8 BOM, quoted fields ("12", "label"), a missing final
 * newline, blank lines at the very end. Everything else is rejected with ONE line
 *     "<file>:<line>:<column>: expected <what>, found <what>"
 * where line is the 1-based line of the file and column the 1-based CSV field number (field 1 = "label" in a
 * train.csv). Rejected: a missing, empty or non-regular file; a header only; a wrong or missing header; a
 * test.csv where a train.csv is expected and the reverse; a row with too few or too many fields (incl. a truncated
 * last row); a pixel that is not a plain integer 0..255 (no sign, no spaces, no decimals, at most 3 digits); a label
 * outside 0..9; an empty line followed by more rows; NUL bytes and other binary data; malformed quoting.
 *
 * How: the header is parsed with libcsv. The data rows are cut into ~4 MB chunks at line boundaries, parsed by
 * `threads` OpenMP threads, each chunk read with pread() in 1 MB blocks (the CSV is never mapped or loaded whole),
 * and appended to the output in file order while later chunks are still being parsed. Each chunk starts on a fast
 * scanner that only accepts the plain form Kaggle ships (digits, commas, LF or CRLF); at the first line it does not
 * accept, the chunk continues on a streaming libcsv parser, which handles quoting and produces every error message. The libcsv path alone (opts.reference = 1) is the reference the tests
 * compare the fast path with: both give the same bytes and the same messages.
 */
#ifndef KG_INGEST_H
#define KG_INGEST_H

#include <stddef.h>

#include "core/dg_err.h"

typedef enum kg_expect {
    KG_EXPECT_AUTO = 0, /* decide from the header */
    KG_EXPECT_TRAIN,    /* labelled: header "label,pixel0,...,pixel783" */
    KG_EXPECT_TEST      /* unlabelled: header "pixel0,...,pixel783" */
} kg_expect;

/* "auto" | "train" | "test" -> *e; -1 if unknown. */
int kg_expect_parse(const char *name, kg_expect *e);
const char *kg_expect_name(kg_expect e);

typedef struct kg_ingest_opts {
    kg_expect expect;     /* default KG_EXPECT_AUTO */
    int threads;          /* threads parsing chunks in parallel; <= 0: dg_default_threads() */
    int reference;        /* 1: libcsv for every row (no fast scanner); same output, slower */
    size_t chunk_bytes;   /* the rows are cut into chunks of about this size (default 4 MB; tests use tiny ones) */
} kg_ingest_opts;

typedef struct kg_ingest_stats {
    size_t rows;          /* images written */
    int has_labels;       /* 1 for a train.csv */
    size_t bytes;         /* size of the CSV */
    size_t libcsv_rows;   /* rows that went through the libcsv parser (0 for a plain Kaggle file) */
    int chunks;           /* byte ranges the rows were cut into */
    int threads;          /* threads that parsed them */
    double seconds;       /* wall time, open to commit */
} kg_ingest_stats;

/* Defaults as documented above. */
kg_ingest_opts kg_ingest_opts_default(void);

/* Ingest csv_path into the dataset file out_path. stats may be NULL. Returns 0, or -1 with err set (and no
 * out_path created; an existing out_path is left as it was). */
int kg_ingest_ex(const char *csv_path, const char *out_path, const kg_ingest_opts *opts, kg_ingest_stats *stats,
                 dg_err *err);

/* kg_ingest_ex with default options but expect and threads. */
int kg_ingest(const char *csv_path, const char *out_path, kg_expect expect, int threads, kg_ingest_stats *stats,
              dg_err *err);

#endif
