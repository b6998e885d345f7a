/* kaggle/submission: write and check Kaggle submission files (see submission.h). */
#include "kaggle/submission.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dg_file.h"

#define KG_HEADER "ImageId,Label"

/* Take the line starting at text[*pos]; sets [*b, *e) to it without its line end. Returns 0, or -1 with a message
 * if the line has no LF (unterminated last line) or a bare CR where crlf is off. */
static int take_line(const char *text, size_t len, size_t *pos, int crlf, const char *name, size_t lineno,
                     size_t *b, size_t *e, dg_err *err) {
    size_t i = *pos;
    while (i < len && text[i] != '\n') i++;
    if (i == len) return dg_fail(err, "%s:%zu: the last line has no line end (LF)", name, lineno);
    *b = *pos;
    *e = i;
    if (*e > *b && text[*e - 1] == '\r') {
        if (!crlf) return dg_fail(err, "%s:%zu: CRLF line end; expected LF", name, lineno);
        (*e)--;
    }
    *pos = i + 1;
    return 0;
}

int kg_submission_check(const char *text, size_t len, size_t expect_n, int crlf, const char *name, size_t *n,
                        size_t counts[10], dg_err *err) {
    size_t pos = 0, b = 0, e = 0, lineno = 1;
    size_t cnt[10] = {0};
    if (len == 0) return dg_fail(err, "%s:1: empty file; expected the header \"" KG_HEADER "\"", name);
    if (take_line(text, len, &pos, crlf, name, lineno, &b, &e, err) != 0) return -1;
    size_t hl = strlen(KG_HEADER);
    if (e - b != hl || memcmp(text + b, KG_HEADER, hl) != 0)
        return dg_fail(err, "%s:1: header is \"%.*s\"; expected \"" KG_HEADER "\"", name, (int)(e - b > 60 ? 60 : e - b),
                       text + b);
    size_t rows = 0;
    while (pos < len) {
        lineno++;
        if (take_line(text, len, &pos, crlf, name, lineno, &b, &e, err) != 0) return -1;
        /* id: decimal without sign or leading zeros */
        size_t i = b;
        unsigned long long id = 0;
        if (i >= e || text[i] < '1' || text[i] > '9')
            return dg_fail(err, "%s:%zu: \"%.*s\": expected \"ImageId,Label\" with ImageId %zu", name, lineno,
                           (int)(e - b > 60 ? 60 : e - b), text + b, rows + 1);
        while (i < e && text[i] >= '0' && text[i] <= '9') {
            id = id * 10 + (unsigned long long)(text[i] - '0');
            if (id > (1ull << 40)) break;
            i++;
        }
        if (id != rows + 1)
            return dg_fail(err, "%s:%zu: ImageId %.*s; expected %zu (ids must be 1..N in order)", name, lineno,
                           (int)(i - b > 20 ? 20 : i - b), text + b, rows + 1);
        if (i + 2 != e || text[i] != ',' || text[i + 1] < '0' || text[i + 1] > '9')
            return dg_fail(err, "%s:%zu: \"%.*s\": expected \"%zu,L\" with a label L in 0..9", name, lineno,
                           (int)(e - b > 60 ? 60 : e - b), text + b, rows + 1);
        cnt[text[i + 1] - '0']++;
        rows++;
    }
    if (rows == 0) return dg_fail(err, "%s: no rows after the header", name);
    if (expect_n > 0 && rows != expect_n)
        return dg_fail(err, "%s: %zu rows; expected %zu (one per test image)", name, rows, expect_n);
    if (n) *n = rows;
    if (counts) memcpy(counts, cnt, sizeof cnt);
    return 0;
}

int kg_submission_check_file(const char *path, size_t expect_n, int crlf, size_t *n, size_t counts[10], dg_err *err) {
    dg_map m;
    if (dg_map_open(&m, path, err) != 0) return -1;
    int rc = kg_submission_check((const char *)m.data, m.size, expect_n, crlf, path, n, counts, err);
    dg_map_close(&m);
    return rc;
}

int kg_sample_rows(const char *path, size_t *n, dg_err *err) {
    return kg_submission_check_file(path, 0, 1, n, NULL, err);
}

int kg_submission_write_afile(dg_afile *f, const char *path, const uint8_t *labels, size_t n, size_t expect_n,
                              dg_err *err) {
    memset(f, 0, sizeof *f);
    if (n == 0) return dg_fail(err, "%s: no predictions to write", path);
    if (expect_n > 0 && n != expect_n)
        return dg_fail(err, "%s: %zu predictions; the submission needs %zu rows (one per test image)", path, n,
                       expect_n);
    for (size_t i = 0; i < n; i++)
        if (labels[i] > 9) return dg_fail(err, "%s: prediction %zu is label %u; expected 0..9", path, i + 1, labels[i]);
    if (dg_afile_open(f, path, err) != 0) return -1;
    int bad = fputs(KG_HEADER "\n", f->fp) < 0;
    for (size_t i = 0; i < n && !bad; i++) bad = fprintf(f->fp, "%zu,%u\n", i + 1, labels[i]) < 0;
    if (bad || fflush(f->fp) != 0) {
        dg_fail_errno(err, "%s: write failed", path);
        dg_afile_abort(f);
        return -1;
    }
    /* Read back what is on disk and check it before it may appear under its name. */
    if (kg_submission_check_file(f->tmp_path, expect_n ? expect_n : n, 0, NULL, NULL, err) != 0) {
        dg_err_prefix(err, "%s: the written file failed its check", path);
        dg_afile_abort(f);
        return -1;
    }
    return 0;
}

int kg_submission_write(const char *path, const uint8_t *labels, size_t n, size_t expect_n, dg_err *err) {
    dg_afile f = {0};
    if (kg_submission_write_afile(&f, path, labels, n, expect_n, err) != 0) return -1;
    return dg_afile_commit(&f, err);
}
