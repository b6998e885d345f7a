/* kaggle/ingest: Kaggle CSV -> dataset file (see ingest.h for what is accepted and how).
 *
 * Layout of the work: read_header() parses line 1 with libcsv and learns the row layout (785 fields with a label, or
 * 784 without). The bytes after the header are cut into ~4 MB chunks at line starts. Threads take chunks in turn
 * and parse each into the thread's record buffer (records in the dataset layout: [label,] 784 pixels), first by
 * fast_row() while lines are plain, then by libcsv (slow_scan) from the first line fast_row() refuses to the end of
 * the chunk. Chunks count lines from 0; deliver(), run in file order (an OpenMP ordered region), turns the first
 * failure into a message with global line numbers, or appends the chunk's records to the dataset writer, so writing
 * one chunk overlaps with parsing the next. The writer commits (renames) only when every chunk was clean.
 */
#include "kaggle/ingest.h"

#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dg_cli.h"
#include "core/dg_dataset.h"
#include "core/dg_progress.h"

#define KG_BLOCK ((size_t)1 << 20) /* pread block */
#define KG_PAD 64                  /* readable bytes past a block, so fast_row may look 16 bytes ahead */
#define KG_MAX_FIELD 1024          /* longest field libcsv may buffer; longer means binary data */
#define KG_NONE ((size_t)-1)
#define KG_LIBCSV_OPTS (CSV_STRICT | CSV_STRICT_FINI | CSV_REPALL_NL)
#define KG_LIBCSV_FIELD_BEGUN 2 /* libcsv's parser state (pstate) inside a field (libcsv.c, 3.0) */

/* ---------------------------------------------------------------------------------------------------------------- */
/* Options and names                                                                                                 */

kg_ingest_opts kg_ingest_opts_default(void) {
    kg_ingest_opts o = {KG_EXPECT_AUTO, 0, 0, (size_t)4 << 20};
    return o;
}

int kg_expect_parse(const char *name, kg_expect *e) {
    if (strcmp(name, "auto") == 0) *e = KG_EXPECT_AUTO;
    else if (strcmp(name, "train") == 0) *e = KG_EXPECT_TRAIN;
    else if (strcmp(name, "test") == 0) *e = KG_EXPECT_TEST;
    else return -1;
    return 0;
}

const char *kg_expect_name(kg_expect e) {
    return e == KG_EXPECT_TRAIN ? "train" : e == KG_EXPECT_TEST ? "test" : "auto";
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Small helpers shared by the header and row parsers                                                               */

/* libcsv: no byte is "space", so " 12" stays " 12" and is rejected instead of silently trimmed. */
static int kg_no_space(unsigned char c) {
    (void)c;
    return 0;
}

/* libcsv grows its field buffer through this; refusing past KG_MAX_FIELD bounds memory on binary input. */
static void *kg_capped_realloc(void *p, size_t n) { return n > KG_MAX_FIELD ? NULL : realloc(p, n); }

static void kg_csv_init(struct csv_parser *p) {
    csv_init(p, KG_LIBCSV_OPTS);
    csv_set_space_func(p, kg_no_space);
    csv_set_realloc_func(p, kg_capped_realloc);
}

/* Why libcsv stopped, as the "found ..." part of a message. */
static const char *kg_csv_problem(struct csv_parser *p) {
    switch (csv_error(p)) {
    case CSV_EPARSE: return "a stray quote (a quote inside an unquoted field, or text after a closing quote)";
    case CSV_ENOMEM:
        return p->quoted ? "a quoted field without its closing quote within 1024 bytes"
                         : "a field longer than 1024 bytes (binary data?)";
    default: return csv_strerror(csv_error(p));
    }
}

/* The value of a plain field: 1 to 3 ASCII digits, at most 255; else -1. */
static int kg_field_value(const uint8_t *s, size_t len) {
    if (len < 1 || len > 3) return -1;
    int v = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)s[i] - '0';
        if (d > 9) return -1;
        v = v * 10 + (int)d;
    }
    return v <= 255 ? v : -1;
}

/* A field quoted for a message: printable ASCII kept, everything else as \xHH, at most ~40 bytes shown. */
static void kg_quote(const uint8_t *s, size_t len, char *out, size_t cap) {
    size_t n = 0;
    out[n++] = '"';
    for (size_t i = 0; i < len && n + 8 < cap; i++) {
        if (i == 40) {
            n += (size_t)snprintf(out + n, cap - n, "...");
            break;
        }
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\') out[n++] = (char)s[i];
        else n += (size_t)snprintf(out + n, cap - n, "\\x%02x", s[i]);
    }
    if (n + 2 <= cap) out[n++] = '"';
    out[n < cap ? n : cap - 1] = '\0';
}

/* What a rejected value field is: "a negative number \"-3\"", "\"256\" (above 255)", ... */
static void kg_describe(const uint8_t *s, size_t len, int is_label, char *out, size_t cap) {
    char q[256];
    kg_quote(s, len, q, sizeof q);
    if (len == 0) {
        snprintf(out, cap, "an empty field");
        return;
    }
    int digits = 1, tail_digits = len > 1, binary = 0, nul = 0; /* tail: all but the first byte */
    for (size_t i = 0; i < len; i++) {
        if (s[i] == 0) nul = 1;
        if (s[i] < 0x20 || s[i] >= 0x7f) binary = 1;
        if (s[i] < '0' || s[i] > '9') {
            digits = 0;
            if (i > 0) tail_digits = 0;
        }
    }
    if (nul) snprintf(out, cap, "a NUL byte in %s (binary data, not a CSV file?)", q);
    else if (binary) snprintf(out, cap, "binary data %s", q);
    else if (s[0] == '-' && tail_digits) snprintf(out, cap, "a negative number %s", q);
    else if (digits && is_label) snprintf(out, cap, "%s (labels are the digits 0..9)", q);
    else if (digits) snprintf(out, cap, "%s (above 255 or more than 3 digits)", q);
    else snprintf(out, cap, "%s (not an integer)", q);
}

/* Read n bytes at off, retrying short reads; returns bytes read (less only at end of file) or -1. */
static long kg_pread_full(int fd, void *buf, size_t n, off_t off) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, off + (off_t)got);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return (long)got;
}

/* "785 fields (label,pixel0..pixel783)" */
static const char *kg_row_shape(int has_labels) {
    return has_labels ? "785 fields (label,pixel0..pixel783)" : "784 fields (pixel0..pixel783)";
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Header                                                                                                           */

typedef struct kg_hdr {
    kg_expect expect;
    int has_labels; /* decided by field 1 */
    int nf;         /* fields per row once decided */
    size_t f;       /* fields seen */
    int done, failed, term;
    size_t err_col;
    char err_text[640];
} kg_hdr;

static void hdr_fail(kg_hdr *h, size_t col, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void hdr_fail(kg_hdr *h, size_t col, const char *fmt, ...) {
    if (h->failed) return;
    h->failed = 1;
    h->err_col = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->err_text, sizeof h->err_text, fmt, ap);
    va_end(ap);
}

static int hdr_is(const uint8_t *s, size_t len, const char *name) {
    return len == strlen(name) && memcmp(s, name, len) == 0;
}

static void hdr_field(void *sv, size_t len, void *data) {
    kg_hdr *h = data;
    const uint8_t *s = sv;
    if (h->done || h->failed) return;
    char q[256];
    kg_quote(s, len, q, sizeof q);
    if (h->f == 0) {
        int train = hdr_is(s, len, "label"), test = hdr_is(s, len, "pixel0");
        if (!train && !test) {
            const char *want = h->expect == KG_EXPECT_TRAIN  ? "\"label\" (a train.csv header)"
                               : h->expect == KG_EXPECT_TEST ? "\"pixel0\" (a test.csv header)"
                                                              : "\"label\" (train.csv) or \"pixel0\" (test.csv)";
            int number = kg_field_value(s, len) >= 0, binary = 0;
            for (size_t i = 0; i < len; i++) binary |= s[i] < 0x20 || s[i] >= 0x7f;
            hdr_fail(h, 1, "expected header field %s, found %s%s%s", want, binary ? "binary data " : "", q,
                     number ? " (missing header line?)" : binary ? " (not a CSV file?)" : "");
            return;
        }
        if (h->expect == KG_EXPECT_TRAIN && test) {
            hdr_fail(h, 1,
                     "expected a train.csv header (\"label,pixel0,...\"), found \"pixel0\": this is an unlabelled "
                     "test.csv (use --expect test or auto)");
            return;
        }
        if (h->expect == KG_EXPECT_TEST && train) {
            hdr_fail(h, 1,
                     "expected a test.csv header (\"pixel0,...\"), found \"label\": this is a labelled train.csv (use "
                     "--expect train or auto)");
            return;
        }
        h->has_labels = train;
        h->nf = train ? DG_PIXELS + 1 : DG_PIXELS;
        h->f = 1;
        return;
    }
    if (h->f >= (size_t)h->nf) {
        hdr_fail(h, h->f + 1, "expected a header of %s, found more fields: %s", kg_row_shape(h->has_labels), q);
        return;
    }
    char want[32];
    snprintf(want, sizeof want, "pixel%zu", h->f - (size_t)h->has_labels);
    if (!hdr_is(s, len, want)) {
        hdr_fail(h, h->f + 1, "expected header field \"%s\", found %s", want, q);
        return;
    }
    h->f++;
}

static void hdr_row(int c, void *data) {
    kg_hdr *h = data;
    if (h->done || h->failed) return;
    if (h->f == 0) {
        hdr_fail(h, 1, "expected the header line (label,pixel0..pixel783 or pixel0..pixel783), found an empty line");
        return;
    }
    if (h->f != (size_t)h->nf) {
        hdr_fail(h, h->f + 1, "expected a header of %s, found %zu fields", kg_row_shape(h->has_labels), h->f);
        return;
    }
    h->done = 1;
    h->term = c;
}

/* Parse line 1. On success sets *has_labels and *data_start (the offset of line 2). */
static int read_header(int fd, const char *path, size_t size, kg_expect expect, int *has_labels, size_t *data_start,
                       dg_err *err) {
    enum { HB = 65536 };
    uint8_t *buf = malloc(HB);
    if (!buf) return dg_fail(err, "%s: out of memory", path);
    kg_hdr h = {.expect = expect};
    struct csv_parser p;
    kg_csv_init(&p);
    size_t off = 0, pos = 0; /* buf[0] is file offset off; next unparsed byte is buf[pos] */
    long n = kg_pread_full(fd, buf, HB, 0);
    int rc = -1, io = 0;
    if (n < 0) {
        io = 1;
        goto out;
    }
    if (n >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF) pos = 3; /* UTF-8 BOM */
    if (size <= pos) {
        dg_fail(err, "%s:1:1: expected a header line (label,pixel0..pixel783 or pixel0..pixel783), found an empty file",
                path);
        goto out;
    }
    while (!h.done && !h.failed) {
        if (pos == (size_t)n) {
            off += (size_t)n;
            n = kg_pread_full(fd, buf, HB, (off_t)off);
            pos = 0;
            if (n < 0) {
                io = 1;
                goto out;
            }
            if (n == 0) {
                if (csv_fini(&p, hdr_field, hdr_row, &h) != 0)
                    hdr_fail(&h, h.f + 1, "expected a closing quote, found the end of the file");
                break;
            }
        }
        size_t end = pos;
        while (end < (size_t)n && buf[end] != '\n' && buf[end] != '\r') end++;
        if (end < (size_t)n) end++; /* through the line end, so libcsv ends the row there and stops */
        size_t used = csv_parse(&p, buf + pos, end - pos, hdr_field, hdr_row, &h);
        if (used < end - pos && !h.failed) hdr_fail(&h, h.f + 1, "expected a header field, found %s", kg_csv_problem(&p));
        pos = end;
    }
    if (h.failed) {
        dg_fail(err, "%s:1:%zu: %s", path, h.err_col, h.err_text);
        goto out;
    }
    if (!h.done) {
        dg_fail(err, "%s:1:1: expected a header line (label,pixel0..pixel783 or pixel0..pixel783), found %s", path,
                h.f ? "an incomplete one" : "nothing");
        goto out;
    }
    /* A CR ended the header: a following LF belongs to it (CRLF). */
    if (h.term == '\r') {
        uint8_t c;
        if (pos < (size_t)n) c = buf[pos];
        else if (kg_pread_full(fd, &c, 1, (off_t)(off + pos)) != 1) c = 0;
        if (c == '\n') pos++;
    }
    *has_labels = h.has_labels;
    *data_start = off + pos;
    rc = 0;
out:
    if (io) dg_fail_errno(err, "%s: read failed", path);
    csv_free(&p);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Rows                                                                                                             */

/* One byte range of the data section and what parsing it gave. Lines are counted from 0 at the chunk's start. */
typedef struct kg_chunk {
    size_t begin, end;      /* [begin, end) of the file; begin is a line start */
    uint8_t *recs;          /* (cap, nf) records in dataset layout: [label,] 784 pixels */
    size_t rows, cap;
    size_t lines;           /* line ends consumed */
    size_t libcsv_rows;     /* rows parsed by libcsv */
    size_t trailing_blank;  /* local line of an empty line not followed by a row in this chunk, or KG_NONE */
    int failed, io_errno;   /* io_errno: a read failed (no line/column in the message) */
    size_t err_line, err_col;
    char err_text[640];
} kg_chunk;

static void chunk_fail(kg_chunk *c, size_t line, size_t col, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void chunk_fail(kg_chunk *c, size_t line, size_t col, const char *fmt, ...) {
    if (c->failed) return;
    c->failed = 1;
    c->err_line = line;
    c->err_col = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err_text, sizeof c->err_text, fmt, ap);
    va_end(ap);
}

/* Room for one more record; 0 or -1 (out of memory, recorded as the chunk's failure). */
static int chunk_reserve(kg_chunk *c, int nf) {
    if (c->rows < c->cap) return 0;
    size_t cap = c->cap + c->cap / 2 + 16;
    uint8_t *r = realloc(c->recs, cap * (size_t)nf);
    if (!r) {
        chunk_fail(c, c->lines, 1, "out of memory for %zu rows", cap);
        return -1;
    }
    c->recs = r;
    c->cap = cap;
    return 0;
}

/* Fast path. Parse one plain line: nf fields of 1..3 ASCII digits separated by ',' and ended by "\n" or "\r\n",
 * into rec (nf bytes). The caller guarantees a '\n' at or after p and KG_PAD readable bytes past the buffer.
 * Returns the first byte after the line, or NULL for anything else (the line then goes to libcsv, which accepts it
 * if it is valid CSV, e.g. quoted, and otherwise says what is wrong). Runs of "0," (most of an MNIST row) are taken
 * 8 fields at a time. */
static const uint8_t *fast_row(const uint8_t *p, uint8_t *rec, int nf, int has_labels) {
    uint64_t z8; /* "0,0,0,0," */
    memcpy(&z8, "0,0,0,0,", 8);
    int i = 0;
    for (;;) {
        if (i + 8 < nf) {
            uint64_t a, b;
            memcpy(&a, p, 8);
            memcpy(&b, p + 8, 8);
            if (a == z8) {
                if (b == z8) {
                    memset(rec + i, 0, 8);
                    i += 8;
                    p += 16;
                    continue;
                }
            }
        }
        unsigned v = (unsigned)p[0] - '0';
        if (v > 9) return NULL;
        unsigned d = (unsigned)p[1] - '0';
        if (d <= 9) {
            v = v * 10 + d;
            d = (unsigned)p[2] - '0';
            if (d <= 9) {
                v = v * 10 + d;
                if (v > 255) return NULL;
                p += 3;
            } else {
                p += 2;
            }
        } else {
            p += 1;
        }
        rec[i++] = (uint8_t)v;
        if (*p == ',') {
            if (i == nf) return NULL;
            p++;
            continue;
        }
        if (i != nf || (has_labels && rec[0] > 9)) return NULL;
        if (*p == '\n') return p + 1;
        if (*p == '\r' && p[1] == '\n') return p + 2;
        return NULL;
    }
}

/* Run fast_row over the chunk's lines. Returns the offset of the first line it did not take (c->end when it took
 * all): the rest of the chunk goes to libcsv. */
static size_t fast_scan(int fd, kg_chunk *c, uint8_t *buf, int nf, int has_labels) {
    size_t base = c->begin, next = c->begin, have = 0, pos = 0;
    for (;;) {
        if (pos > 0) {
            memmove(buf, buf + pos, have - pos);
            base += pos;
            have -= pos;
            pos = 0;
        }
        size_t want = KG_BLOCK - have;
        if (want > c->end - next) want = c->end - next;
        if (want == 0) break; /* chunk read, or one line longer than a block */
        long n = kg_pread_full(fd, buf + have, want, (off_t)next);
        if (n <= 0) break; /* libcsv re-reads from here and reports the error */
        have += (size_t)n;
        next += (size_t)n;
        size_t lim = have;
        while (lim > 0 && buf[lim - 1] != '\n') lim--;
        const uint8_t *p = buf, *stop = buf + lim;
        while (p < stop) {
            if (chunk_reserve(c, nf) != 0) break;
            const uint8_t *q = fast_row(p, c->recs + c->rows * (size_t)nf, nf, has_labels);
            if (!q) break;
            c->rows++;
            c->lines++;
            p = q;
        }
        pos = (size_t)(p - buf);
        if (p < stop) break;
    }
    return base + pos;
}

/* libcsv callbacks' state for one chunk. */
typedef struct kg_rowctx {
    kg_chunk *c;
    int nf, has_labels;
    size_t f;        /* fields of the current row so far */
    int cr_pending;  /* the last row ended with CR: an LF next completes that line end */
    size_t blank;    /* local line of an empty line not yet followed by a row, or KG_NONE */
} kg_rowctx;

static void slow_field(void *sv, size_t len, void *data) {
    kg_rowctx *x = data;
    kg_chunk *c = x->c;
    if (c->failed) return;
    const uint8_t *s = sv;
    if (x->f == 0) { /* a row begins */
        if (x->cr_pending) {
            c->lines++; /* a bare CR ended the previous line */
            x->cr_pending = 0;
        }
        if (x->blank != KG_NONE) {
            chunk_fail(c, x->blank, 1, "expected a row of %s, found an empty line", kg_row_shape(x->has_labels));
            return;
        }
        if (chunk_reserve(c, x->nf) != 0) return;
    }
    if (x->f >= (size_t)x->nf) {
        char q[256];
        kg_quote(s, len, q, sizeof q);
        chunk_fail(c, c->lines, x->f + 1, "expected a row of %s, found more fields: %s", kg_row_shape(x->has_labels),
                   q);
        return;
    }
    int is_label = x->has_labels && x->f == 0;
    int v = kg_field_value(s, len);
    if (v < 0 || (is_label && v > 9)) {
        char what[384];
        kg_describe(s, len, is_label, what, sizeof what);
        if (is_label) chunk_fail(c, c->lines, 1, "expected a label 0..9 (column label), found %s", what);
        else
            chunk_fail(c, c->lines, x->f + 1, "expected an integer 0..255 (column pixel%zu), found %s",
                       x->f - (size_t)x->has_labels, what);
        return;
    }
    c->recs[c->rows * (size_t)x->nf + x->f] = (uint8_t)v;
    x->f++;
}

static void slow_row(int ch, void *data) {
    kg_rowctx *x = data;
    kg_chunk *c = x->c;
    if (c->failed) return;
    if (x->f == 0) { /* libcsv reports every line end (CSV_REPALL_NL): an empty row */
        if (x->cr_pending) {
            x->cr_pending = 0;
            c->lines++;
            if (ch == '\n') return; /* the LF of a CRLF */
        }
        if (x->blank == KG_NONE) x->blank = c->lines;
        if (ch == '\n') c->lines++;
        else if (ch == '\r') x->cr_pending = 1;
        return;
    }
    if (x->f != (size_t)x->nf) {
        chunk_fail(c, c->lines, x->f + 1, "expected a row of %s, found %zu field%s%s", kg_row_shape(x->has_labels),
                   x->f, x->f == 1 ? "" : "s", ch == -1 ? " and the end of the file (truncated last row)" : "");
        return;
    }
    c->rows++;
    c->libcsv_rows++;
    x->f = 0;
    if (ch == '\n') c->lines++;
    else if (ch == '\r') x->cr_pending = 1;
}

/* libcsv from byte `from` to the end of the chunk. */
static void slow_scan(int fd, kg_chunk *c, size_t from, int nf, int has_labels) {
    uint8_t *buf = malloc(KG_BLOCK);
    if (!buf) {
        chunk_fail(c, c->lines, 1, "out of memory");
        return;
    }
    struct csv_parser p;
    kg_csv_init(&p);
    kg_rowctx x = {c, nf, has_labels, 0, 0, KG_NONE};
    size_t off = from;
    while (off < c->end && !c->failed) {
        size_t want = c->end - off < KG_BLOCK ? c->end - off : KG_BLOCK;
        long n = kg_pread_full(fd, buf, want, (off_t)off);
        if (n <= 0) {
            c->io_errno = n < 0 ? errno : EIO;
            chunk_fail(c, c->lines, 1, "read failed");
            break;
        }
        /* One line at a time, so that a line end libcsv took into a quoted field is an error at once: the rows are cut
         * into chunks at line ends, and a quoted field carried over one would make the result depend on where the
         * cuts fell (libcsv's state FIELD_BEGUN with quoted set: inside the quotes). */
        for (size_t at = 0, e; at < (size_t)n && !c->failed; at = e) {
            for (e = at; e < (size_t)n && buf[e] != '\n' && buf[e] != '\r'; e++) {}
            int eol = e < (size_t)n;
            e += (size_t)eol;
            size_t used = csv_parse(&p, buf + at, e - at, slow_field, slow_row, &x);
            if (used < e - at && !c->failed)
                chunk_fail(c, c->lines, x.f + 1, "expected a CSV field, found %s", kg_csv_problem(&p));
            else if (eol && !c->failed && p.quoted && p.pstate == KG_LIBCSV_FIELD_BEGUN)
                chunk_fail(c, c->lines, x.f + 1,
                           "expected a closing quote, found none (a quoted field runs past its line)");
        }
        off += (size_t)n;
    }
    if (!c->failed && csv_fini(&p, slow_field, slow_row, &x) != 0)
        chunk_fail(c, c->lines, x.f + 1, "expected a closing quote, found none (a quoted field runs past its line)");
    if (!c->failed) {
        if (x.cr_pending) c->lines++;
        c->trailing_blank = x.blank;
    }
    csv_free(&p);
    free(buf);
}

/* Per-thread buffers, reused from chunk to chunk. */
typedef struct kg_worker {
    uint8_t *block; /* KG_BLOCK + KG_PAD bytes for fast_scan */
    uint8_t *recs;  /* (cap, nf) records of the chunk being parsed */
    size_t cap;
} kg_worker;

static void parse_chunk(int fd, kg_chunk *c, kg_worker *wk, int nf, int has_labels, int reference) {
    c->trailing_blank = KG_NONE;
    size_t need = (c->end - c->begin) / (2 * (size_t)nf) + 1; /* a valid row has at least 2 bytes per field */
    if (wk->cap < need) {
        free(wk->recs);
        wk->recs = malloc(need * (size_t)nf);
        wk->cap = wk->recs ? need : 0;
    }
    c->recs = wk->recs;
    c->cap = wk->cap;
    size_t from = c->begin;
    if (!reference && wk->block) from = fast_scan(fd, c, wk->block, nf, has_labels);
    if (!c->failed && from < c->end) slow_scan(fd, c, from, nf, has_labels);
    wk->recs = c->recs; /* possibly grown */
    wk->cap = c->cap;
}

/* The offset just past the first '\n' at or after `at` (a line start), or size. */
static size_t next_line_start(int fd, size_t at, size_t size) {
    uint8_t buf[4096];
    while (at < size) {
        long n = kg_pread_full(fd, buf, sizeof buf, (off_t)at);
        if (n <= 0) return size;
        const uint8_t *nl = memchr(buf, '\n', (size_t)n);
        if (nl) return at + (size_t)(nl - buf) + 1;
        at += (size_t)n;
    }
    return size;
}

/* What has been delivered so far, in file order (touched only inside the ordered region). */
typedef struct kg_sofar {
    int stop;          /* a failure was reported: parse and write nothing more */
    size_t line0;      /* 1-based line of the next chunk's first line */
    size_t pending;    /* line of an empty line not yet followed by a row, or KG_NONE */
    size_t rows, libcsv_rows;
} kg_sofar;

/* Take chunk c, the next in file order: turn its failure into a message with global line numbers, or append its
 * records to the writer. The records are already in the writer's record layout, so a whole chunk goes to the
 * writer in one write (60000 separate 785-byte writes cost more than the parse). Returns 0 or -1. */
static int deliver(kg_sofar *so, const kg_chunk *c, dg_dataset_writer *w, int nf, int has_labels, const char *path,
                   dg_err *err) {
    if (so->pending != KG_NONE && (c->rows > 0 || c->failed))
        return dg_fail(err, "%s:%zu:1: expected a row of %s, found an empty line", path, so->pending,
                       kg_row_shape(has_labels));
    if (c->failed) {
        if (c->io_errno) {
            errno = c->io_errno;
            return dg_fail_errno(err, "%s: read failed", path);
        }
        return dg_fail(err, "%s:%zu:%zu: %s", path, so->line0 + c->err_line, c->err_col, c->err_text);
    }
    (void)nf; /* the chunk's records are already in the dataset's record layout */
    if (dg_dataset_writer_add_records(w, c->recs, c->rows, err) != 0) return -1;
    if (so->pending == KG_NONE && c->trailing_blank != KG_NONE) so->pending = so->line0 + c->trailing_blank;
    so->line0 += c->lines;
    so->rows += c->rows;
    so->libcsv_rows += c->libcsv_rows;
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------------- */

int kg_ingest_ex(const char *csv_path, const char *out_path, const kg_ingest_opts *opts_in, kg_ingest_stats *stats,
                 dg_err *err) {
    double t0 = dg_now();
    kg_ingest_opts opts = opts_in ? *opts_in : kg_ingest_opts_default();
    if (stats) memset(stats, 0, sizeof *stats);
    int fd = open(csv_path, O_RDONLY);
    if (fd < 0) return dg_fail_errno(err, "%s: cannot open", csv_path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return dg_fail_errno(err, "%s: cannot stat", csv_path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return dg_fail(err, "%s: not a regular file (expected a CSV file)", csv_path);
    }
    size_t size = (size_t)st.st_size;
#ifdef POSIX_FADV_SEQUENTIAL
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    int has_labels = 0;
    size_t data_start = 0;
    if (read_header(fd, csv_path, size, opts.expect, &has_labels, &data_start, err) != 0) {
        close(fd);
        return -1;
    }
    int nf = DG_PIXELS + has_labels;

    dg_dataset_writer w;
    if (dg_dataset_writer_open(&w, out_path, has_labels, err) != 0) {
        close(fd);
        return -1;
    }

    /* Cut the data section into chunks at line starts. */
    int threads = opts.threads > 0 ? opts.threads : dg_default_threads();
    size_t data = size - data_start, cb = opts.chunk_bytes ? opts.chunk_bytes : 1;
    size_t nchz = (data + cb - 1) / cb;
    if (nchz > 65536) nchz = 65536;
    if (nchz < 1) nchz = 1;
    int nch = (int)nchz;
    kg_chunk *ch = calloc((size_t)nch, sizeof *ch);
    if (!ch) {
        dg_dataset_writer_abort(&w);
        close(fd);
        return dg_fail(err, "%s: out of memory", csv_path);
    }
    size_t prev = data_start;
    for (int k = 0; k < nch; k++) {
        ch[k].begin = prev;
        size_t cut = k + 1 == nch ? size : data_start + data / (size_t)nch * (size_t)(k + 1);
        if (k + 1 < nch) cut = cut <= prev ? prev : next_line_start(fd, cut - 1, size);
        ch[k].end = cut;
        prev = cut;
    }
    if (threads > nch) threads = nch;

    /* Threads parse chunks in any order; the ordered region hands them to deliver() in file order, so writing chunk k
     * overlaps with parsing chunk k+1. */
    kg_sofar so = {0, 2, KG_NONE, 0, 0};
    int rc = 0;
#pragma omp parallel num_threads(threads)
    {
        kg_worker wk = {malloc(KG_BLOCK + KG_PAD), NULL, 0};
        if (wk.block) memset(wk.block, 0, KG_BLOCK + KG_PAD);
#pragma omp for schedule(dynamic, 1) ordered
        for (int k = 0; k < nch; k++) {
            int stop;
#pragma omp atomic read
            stop = so.stop;
            if (!stop) parse_chunk(fd, &ch[k], &wk, nf, has_labels, opts.reference);
#pragma omp ordered
            {
                if (!so.stop && deliver(&so, &ch[k], &w, nf, has_labels, csv_path, err) != 0) {
                    rc = -1;
#pragma omp atomic write
                    so.stop = 1;
                }
            }
        }
        free(wk.block);
        free(wk.recs);
    }
    free(ch);
    close(fd);
    if (rc == 0 && so.rows == 0)
        rc = dg_fail(err, "%s:2:1: expected data rows after the header, found none (header only)", csv_path);
    if (rc != 0) {
        dg_dataset_writer_abort(&w);
        return -1;
    }
    if (dg_dataset_writer_commit(&w, err) != 0) return -1;
    if (stats) {
        stats->rows = so.rows;
        stats->has_labels = has_labels;
        stats->bytes = size;
        stats->libcsv_rows = so.libcsv_rows;
        stats->chunks = nch;
        stats->threads = threads;
        stats->seconds = dg_now() - t0;
    }
    return 0;
}

int kg_ingest(const char *csv_path, const char *out_path, kg_expect expect, int threads, kg_ingest_stats *stats,
              dg_err *err) {
    kg_ingest_opts o = kg_ingest_opts_default();
    o.expect = expect;
    o.threads = threads;
    return kg_ingest_ex(csv_path, out_path, &o, stats, err);
}
