/* Tests for kaggle/ingest: every accepted CSV variant gives the exact pixels; every bad input (one fixture each in
 * tests/fixtures/ingest, made by make_fixtures.py there) is rejected with one line naming file, line and column and
 * leaves no output; messages and outputs do not depend on threads, chunking or the fast scanner (checked against
 * the libcsv-only reference); and the real train.csv round-trips bit-exactly through the dataset back to CSV. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dg_sink.h"
#include "kaggle/ingest.h"
#include "core/dg_dataset.h"
#include "core/dg_rng.h"
#include "testutil.h"

#define FIX DIGITS_FIXTURES "/ingest/"
#define TMP DIGITS_TEST_TMP "/ingest_"

/* The pixels make_fixtures.py writes: image r (labels 3, 7, 0), pixel p. */
static int fixture_pixel(int r, int p) {
    int y = p / 28, x = p % 28;
    return (y >= 8 && y <= 20 && x >= 10 && x <= 17) ? (p * 31 + r * 17) % 256 : 0;
}
static const int fixture_labels[3] = {3, 7, 0};

/* The ways of running one ingest that must all agree. */
typedef struct mode {
    int threads, reference;
    size_t chunk_bytes;
} mode;
static const mode modes[] = {
    {1, 0, 4u << 20}, /* defaults, one thread */
    {2, 0, 4u << 20},
    {1, 1, 4u << 20}, /* libcsv only */
    {3, 0, 1500},     /* tiny chunks: a cut near every line */
    {2, 1, 1000},
    {4, 0, 5000},
    {2, 0, 20000}, /* ~12 lines a chunk */
};
#define NMODES (int)(sizeof modes / sizeof modes[0])
/* The modes the bigger generated files go through (fewer, to keep the suite fast under sanitizers). */
static const int gen_modes[] = {0, 2, 3, 6};
#define NGEN (int)(sizeof gen_modes / sizeof gen_modes[0])

static int run_ingest(const char *csv, const char *out, kg_expect expect, const mode *m, kg_ingest_stats *st,
                      dg_err *err) {
    kg_ingest_opts o = kg_ingest_opts_default();
    o.expect = expect;
    o.threads = m->threads;
    o.reference = m->reference;
    o.chunk_bytes = m->chunk_bytes;
    return kg_ingest_ex(csv, out, &o, st, err);
}

/* No file under out, and no temporary of it ("<out>.tmp.<pid>"). */
static void assert_no_output(const char *out) {
    assert_false(dg_path_exists(out));
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)getpid());
    assert_false(dg_path_exists(tmp));
}

static void check_fixture_dataset(const char *out, int labelled) {
    dg_err err;
    dg_dataset ds;
    assert_int_equal(dg_dataset_open(&ds, out, &err), 0);
    assert_int_equal(ds.n, 3);
    assert_int_equal(ds.has_labels, labelled);
    for (int r = 0; r < 3; r++) {
        assert_int_equal(dg_dataset_label(&ds, (size_t)r), labelled ? fixture_labels[r] : -1);
        const uint8_t *im = dg_dataset_image(&ds, (size_t)r);
        for (int p = 0; p < DG_PIXELS; p++) assert_int_equal(im[p], fixture_pixel(r, p));
    }
    dg_dataset_close(&ds);
}

static void test_accepted_variants(void **state) {
    (void)state;
    static const char *train[] = {"good_train.csv",         "good_crlf.csv",
                                  "good_bare_cr.csv",       "good_bom.csv",
                                  "good_bom_crlf.csv",      "good_no_final_newline.csv",
                                  "good_crlf_no_final_newline.csv", "good_trailing_blank.csv",
                                  "good_quoted.csv",        "good_leading_zeros.csv"};
    const char *out = TMP "good.npy";
    for (size_t i = 0; i < sizeof train / sizeof train[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, FIX "%s", train[i]);
        for (int m = 0; m < NMODES; m++) {
            for (int e = 0; e < 2; e++) {
                dg_err err = {{0}};
                kg_ingest_stats st;
                int rc = run_ingest(path, out, e ? KG_EXPECT_TRAIN : KG_EXPECT_AUTO, &modes[m], &st, &err);
                if (rc != 0) fail_msg("%s (mode %d): %s", train[i], m, err.msg);
                assert_int_equal(st.rows, 3);
                assert_int_equal(st.has_labels, 1);
                check_fixture_dataset(out, 1);
                unlink(out);
            }
        }
    }
    /* The plain file never needs libcsv for its rows; the quoted one does. */
    dg_err err;
    kg_ingest_stats st;
    assert_int_equal(run_ingest(FIX "good_train.csv", out, KG_EXPECT_AUTO, &modes[0], &st, &err), 0);
    assert_int_equal(st.libcsv_rows, 0);
    assert_int_equal(run_ingest(FIX "good_quoted.csv", out, KG_EXPECT_AUTO, &modes[0], &st, &err), 0);
    assert_int_equal(st.libcsv_rows, 3);
    assert_int_equal(run_ingest(FIX "good_crlf.csv", out, KG_EXPECT_AUTO, &modes[0], &st, &err), 0);
    assert_int_equal(st.libcsv_rows, 0); /* CRLF is on the fast path too */
    unlink(out);
    for (int m = 0; m < NMODES; m++) {
        for (int e = 0; e < 2; e++) {
            assert_int_equal(run_ingest(FIX "good_test.csv", out, e ? KG_EXPECT_TEST : KG_EXPECT_AUTO, &modes[m], &st,
                                        &err),
                             0);
            assert_int_equal(st.has_labels, 0);
            check_fixture_dataset(out, 0);
            unlink(out);
        }
    }
}

typedef struct bad_case {
    const char *file;
    kg_expect expect;
    const char *where; /* ":line:col:" */
    const char *what;  /* a phrase the message must contain */
} bad_case;

static const bad_case bad_cases[] = {
    {"bad_empty.csv", KG_EXPECT_AUTO, ":1:1:", "empty file"},
    {"bad_bom_only.csv", KG_EXPECT_AUTO, ":1:1:", "empty file"},
    {"bad_header_only.csv", KG_EXPECT_AUTO, ":2:1:", "header only"},
    {"bad_header_wrong.csv", KG_EXPECT_AUTO, ":1:6:", "expected header field \"pixel4\", found \"pixel44\""},
    {"bad_header_missing.csv", KG_EXPECT_AUTO, ":1:1:", "missing header"},
    {"bad_header_short.csv", KG_EXPECT_AUTO, ":1:785:", "found 784 fields"},
    {"bad_header_blank_line.csv", KG_EXPECT_AUTO, ":1:1:", "empty line"},
    {"bad_too_few_fields.csv", KG_EXPECT_AUTO, ":3:785:", "expected a row of 785 fields"},
    {"bad_crlf_too_few.csv", KG_EXPECT_AUTO, ":3:785:", "found 784 fields"},
    {"bad_bare_cr_too_few.csv", KG_EXPECT_AUTO, ":4:785:", "found 784 fields"},
    {"bad_too_many_fields.csv", KG_EXPECT_AUTO, ":2:786:", "found more fields"},
    {"bad_non_integer.csv", KG_EXPECT_AUTO, ":3:100:", "\"1.5\" (not an integer)"},
    {"bad_negative.csv", KG_EXPECT_AUTO, ":2:2:", "negative number \"-3\""},
    {"bad_pixel_256.csv", KG_EXPECT_AUTO, ":4:785:", "expected an integer 0..255 (column pixel783), found \"256\""},
    {"bad_label_10.csv", KG_EXPECT_AUTO, ":3:1:", "expected a label 0..9"},
    {"bad_empty_field.csv", KG_EXPECT_AUTO, ":2:3:", "empty field"},
    {"bad_space.csv", KG_EXPECT_AUTO, ":3:7:", "\" 12\" (not an integer)"},
    {"bad_nul.csv", KG_EXPECT_AUTO, ":2:50:", "NUL byte"},
    {"bad_stray_quote.csv", KG_EXPECT_AUTO, ":2:20:", "stray quote"},
    {"bad_long_field.csv", KG_EXPECT_AUTO, ":2:3:", "longer than 1024 bytes"},
    {"bad_unterminated_quote.csv", KG_EXPECT_AUTO, ":4:10:", "closing quote"},
    {"bad_blank_line.csv", KG_EXPECT_AUTO, ":3:1:", "empty line"},
    {"bad_truncated.csv", KG_EXPECT_AUTO, ":4:", "truncated last row"},
    {"bad_binary.csv", KG_EXPECT_AUTO, ":1:1:", "binary data"},
    {"good_test.csv", KG_EXPECT_TRAIN, ":1:1:", "this is an unlabelled test.csv"},
    {"good_train.csv", KG_EXPECT_TEST, ":1:1:", "this is a labelled train.csv"},
};

static void check_rejected(const char *path, kg_expect expect, const char *where, const char *what, const mode *m) {
    const char *out = TMP "bad.npy";
    unlink(out);
    dg_err err = {{0}};
    kg_ingest_stats st;
    int rc = run_ingest(path, out, expect, m, &st, &err);
    if (rc != -1) fail_msg("%s: accepted (rc %d, %zu rows)", path, rc, st.rows);
    char want[1024];
    snprintf(want, sizeof want, "%s%s", path, where); /* "<file>:<line>:<col>:" at the start */
    if (strncmp(err.msg, want, strlen(want)) != 0 || !strstr(err.msg, what) || strchr(err.msg, '\n'))
        fail_msg("%s (threads %d, reference %d, chunk %zu):\n  message  %s\n  expected %s ... %s", path, m->threads,
                 m->reference, m->chunk_bytes, err.msg, want, what);
    assert_no_output(out);
}

static void test_rejected_fixtures(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, FIX "%s", bad_cases[i].file);
        for (int m = 0; m < NMODES; m++)
            check_rejected(path, bad_cases[i].expect, bad_cases[i].where, bad_cases[i].what, &modes[m]);
    }
}

/* A line end inside a quoted field is an error where it occurs, in every mode. libcsv used to carry the quoted field
 * over the line end when the whole file was one chunk, and reported something later (here: the field "1\n2" is not
 * an integer), while chunks cut at that line end reported the open quote: found by tests/fuzz/fuzz_ingest
 * (corpus/ingest/crash-quote-across-line-end, a stray quote several lines later against the open quote). */
static void test_quoted_field_across_line_end(void **state) {
    (void)state;
    const char *path = TMP "quote_eol.csv";
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("label", fp);
    for (int i = 0; i < DG_PIXELS; i++) fprintf(fp, ",pixel%d", i);
    for (int r = 0; r < 3; r++) {
        fputs("\n7", fp);
        for (int i = 0; i < DG_PIXELS; i++) fputs(r == 0 && i == 1 ? ",\"1\n2\"" : ",0", fp);
    }
    fputs("\n", fp);
    assert_int_equal(fclose(fp), 0);
    for (int m = 0; m < NMODES; m++)
        check_rejected(path, KG_EXPECT_AUTO, ":2:3:", "expected a closing quote, found none (a quoted field runs past its line)",
                       &modes[m]);
    for (int m = 0; m < NMODES; m++)
        check_rejected(DIGITS_SOURCE_DIR "/tests/fuzz/corpus/ingest/crash-quote-across-line-end", KG_EXPECT_AUTO,
                       ":2:192:", "a quoted field runs past its line", &modes[m]);
}

static void test_missing_input_and_unwritable_output(void **state) {
    (void)state;
    dg_err err;
    const char *out = TMP "never.npy";
    assert_int_equal(kg_ingest(FIX "no_such_file.csv", out, KG_EXPECT_AUTO, 1, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "no_such_file.csv: cannot open"));
    assert_no_output(out);
    assert_int_equal(kg_ingest(DIGITS_FIXTURES, out, KG_EXPECT_AUTO, 1, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "not a regular file"));
    const char *bad_out = DIGITS_TEST_TMP "/no_such_dir/out.npy";
    assert_int_equal(kg_ingest(FIX "good_train.csv", bad_out, KG_EXPECT_AUTO, 1, NULL, &err), -1);
    assert_non_null(strstr(err.msg, bad_out));
    assert_non_null(strstr(err.msg, "cannot write"));
    assert_no_output(bad_out);
    /* A failed ingest leaves an existing output as it was (write-then-rename). */
    assert_int_equal(kg_ingest(FIX "good_train.csv", out, KG_EXPECT_AUTO, 1, NULL, &err), 0);
    assert_int_equal(kg_ingest(FIX "bad_negative.csv", out, KG_EXPECT_AUTO, 1, NULL, &err), -1);
    check_fixture_dataset(out, 1);
    unlink(out);
}

/* 0 if the two files have the same bytes; else the offset of the first difference + 1. */
static size_t compare_files(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    assert_non_null(fa);
    assert_non_null(fb);
    static uint8_t ba[1 << 16], bb[1 << 16];
    size_t off = 0, diff = 0;
    for (;;) {
        size_t na = fread(ba, 1, sizeof ba, fa), nb = fread(bb, 1, sizeof bb, fb);
        size_t n = na < nb ? na : nb;
        for (size_t i = 0; i < n && !diff; i++)
            if (ba[i] != bb[i]) diff = off + i + 1;
        if (!diff && na != nb) diff = off + n + 1;
        if (diff || na == 0) break;
        off += n;
    }
    fclose(fa);
    fclose(fb);
    return diff;
}

/* ---- generated files: many rows, so chunk boundaries fall everywhere ---------------------------------------- */

#define GEN_ROWS 300
#ifndef KG_MUTATIONS
#define KG_MUTATIONS 400 /* damaged files tried by test_mutations_agree */
#endif

/* The pixels of generated row r: 80% zeros, the rest any of 0..255 (made once, see gen_table). */
static uint8_t gen_px[GEN_ROWS][DG_PIXELS];

static void gen_table(void) {
    static int done;
    if (done) return;
    for (int r = 0; r < GEN_ROWS; r++)
        for (int p = 0; p < DG_PIXELS; p++) {
            dg_rng g = dg_rng_make(7, DG_RNG_USER, (uint32_t)r, (uint32_t)p);
            uint32_t u = dg_rng_u32(&g);
            gen_px[r][p] = (u % 5 == 0) ? (uint8_t)(u >> 8) : 0;
        }
    done = 1;
}

/* Write a train.csv of GEN_ROWS rows; row bad_row (0-based, -1 for none) gets field bad_col (1-based) replaced by
 * bad_text; blank_before (-1 for none) puts `blanks` empty lines before that row; eol is "\n" or "\r\n". */
static void gen_csv_blanks(const char *path, const char *eol, int bad_row, int bad_col, const char *bad_text,
                           int blank_before, int blanks, int trailing_blanks) {
    gen_table();
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("label", fp);
    for (int p = 0; p < DG_PIXELS; p++) fprintf(fp, ",pixel%d", p);
    fputs(eol, fp);
    char line[8192];
    for (int r = 0; r < GEN_ROWS; r++) {
        if (r == blank_before)
            for (int i = 0; i < blanks; i++) fputs(eol, fp);
        size_t n = 0;
        for (int col = 1; col <= DG_PIXELS + 1; col++) {
            if (col > 1) line[n++] = ',';
            if (r == bad_row && col == bad_col) {
                memcpy(line + n, bad_text, strlen(bad_text));
                n += strlen(bad_text);
                continue;
            }
            unsigned v = col == 1 ? (unsigned)(r % 10) : gen_px[r][col - 2];
            if (v >= 100) line[n++] = (char)('0' + v / 100);
            if (v >= 10) line[n++] = (char)('0' + v / 10 % 10);
            line[n++] = (char)('0' + v % 10);
        }
        fwrite(line, 1, n, fp);
        fputs(eol, fp);
    }
    for (int i = 0; i < trailing_blanks; i++) fputs(eol, fp);
    fclose(fp);
}

static void gen_csv(const char *path, const char *eol, int bad_row, int bad_col, const char *bad_text,
                    int blank_before, int trailing_blanks) {
    gen_csv_blanks(path, eol, bad_row, bad_col, bad_text, blank_before, 1, trailing_blanks);
}

static void check_gen_dataset(const char *out) {
    dg_err err;
    dg_dataset ds;
    assert_int_equal(dg_dataset_open(&ds, out, &err), 0);
    assert_int_equal(ds.n, GEN_ROWS);
    for (int r = 0; r < GEN_ROWS; r++) {
        assert_int_equal(dg_dataset_label(&ds, (size_t)r), r % 10);
        assert_memory_equal(dg_dataset_image(&ds, (size_t)r), gen_px[r], DG_PIXELS);
    }
    dg_dataset_close(&ds);
}

static void test_generated_all_modes_agree(void **state) {
    (void)state;
    const char *csv = TMP "gen.csv", *out = TMP "gen.npy";
    static const char *eols[] = {"\n", "\r\n"};
    for (int e = 0; e < 2; e++) {
        for (int tb = 0; tb < 3; tb += 2) {
            gen_csv(csv, eols[e], -1, 0, NULL, -1, tb);
            for (int m = 0; m < NMODES; m++) {
                dg_err err = {{0}};
                kg_ingest_stats st;
                if (run_ingest(csv, out, KG_EXPECT_TRAIN, &modes[m], &st, &err) != 0) fail_msg("%s", err.msg);
                assert_int_equal(st.rows, GEN_ROWS);
                if (!modes[m].reference) assert_int_equal(st.libcsv_rows, 0); /* plain rows: all on the fast path */
                check_gen_dataset(out);
                unlink(out);
            }
        }
    }
    unlink(csv);
}

/* Errors deep in a file carry their global line number whichever chunk (and thread) found them. */
static void test_generated_error_lines(void **state) {
    (void)state;
    const char *csv = TMP "genbad.csv";
    struct {
        int row, col;
        const char *text;
        int blank_before;
        const char *where, *what;
    } cases[] = {
        {236, 400, "256", -1, ":238:400:", "found \"256\""},
        {0, 2, "x", -1, ":2:2:", "not an integer"},
        {299, 785, "7,8", -1, ":301:786:", "found more fields"},
        {150, 1, "\"10\"", -1, ":152:1:", "label 0..9"},
        {-1, 0, NULL, 120, ":122:1:", "empty line"},
        {77, 33, "\"5", -1, ":79:33:", "closing quote"},
    };
    static const char *eols[] = {"\n", "\r\n"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int e = 0; e < 2; e++) {
            gen_csv(csv, eols[e], cases[i].row, cases[i].col, cases[i].text, cases[i].blank_before, 0);
            for (int g = 0; g < NGEN; g++)
                check_rejected(csv, KG_EXPECT_TRAIN, cases[i].where, cases[i].what, &modes[gen_modes[g]]);
        }
    }
    unlink(csv);
}

/* Cuts around empty lines: a run of empty lines cut between two chunks is an error at its first line when a row
 * follows (the first chunk only sees empty lines at its end, the second starts with more of them); empty lines at
 * the very end are accepted. The chunk sizes put a cut inside the 300-line run for many of them. */
static void test_empty_lines_across_chunks(void **state) {
    (void)state;
    const char *csv = TMP "genblank.csv", *out = TMP "genblank.npy";
    for (int e = 0; e < 2; e++) {
        const char *eol = e ? "\r\n" : "\n";
        gen_csv_blanks(csv, eol, -1, 0, NULL, 5, 300, 0); /* empty lines 7..306, before row 5 */
        for (size_t cb = 1400; cb < 4000; cb += 197) {
            mode m = {2, 0, cb};
            check_rejected(csv, KG_EXPECT_TRAIN, ":7:1:", "found an empty line", &m);
        }
        gen_csv_blanks(csv, eol, -1, 0, NULL, -1, 0, 300); /* 300 empty lines at the end */
        for (size_t cb = 1400; cb < 4000; cb += 197) {
            mode m = {2, 0, cb};
            dg_err err = {{0}};
            kg_ingest_stats st;
            if (run_ingest(csv, out, KG_EXPECT_TRAIN, &m, &st, &err) != 0) fail_msg("%s", err.msg);
            assert_int_equal(st.rows, GEN_ROWS);
            unlink(out);
        }
    }
    unlink(csv);
}

/* Random damage to a good file (bytes replaced, inserted, deleted, the end cut off): never a crash; the fast path
 * and the libcsv reference give the same verdict and the same message; any chunking and thread count give the same
 * verdict at the same file:line:column; and whatever is accepted gives the same bytes. */
static void test_mutations_agree(void **state) {
    (void)state;
    dg_err err;
    char *good;
    size_t n;
    assert_int_equal(dg_read_file(FIX "good_train.csv", &good, &n, &err), 0);
    static const char alphabet[] = "0123456789,,,\n\n\r\"\" -.x\xef\xff";
    char *buf = malloc(n + 16);
    assert_non_null(buf);
    const char *csv = TMP "mut.csv";
    const char *outs[3] = {TMP "mut0.npy", TMP "mut1.npy", TMP "mut2.npy"};
    static const mode mm[3] = {{1, 0, 4u << 20}, {1, 1, 4u << 20}, {3, 0, 1500}};
    int accepted = 0, rejected = 0;
    for (uint32_t it = 0; it < KG_MUTATIONS; it++) {
        dg_rng g = dg_rng_make(11, DG_RNG_USER, 0, it);
        memcpy(buf, good, n);
        size_t len = n;
        int edits = 1 + (int)dg_rng_below(&g, 3);
        for (int e = 0; e < edits && len > 1; e++) {
            /* Mostly near line ends and the start, where the interesting cases are. */
            size_t at = dg_rng_below(&g, 4) == 0 ? dg_rng_below(&g, (uint32_t)len) : 0;
            if (!at) {
                uint32_t line = dg_rng_below(&g, 4);
                at = 0;
                for (uint32_t k = 0; k < line && at < len; k++) {
                    char *nl = memchr(buf + at, '\n', len - at);
                    at = nl ? (size_t)(nl - buf) + 1 : len;
                }
                at = at + dg_rng_below(&g, 12);
                if (at > 6) at -= 6;
                if (at >= len) at = len - 1;
            }
            char c = alphabet[dg_rng_below(&g, sizeof alphabet - 1)];
            switch (dg_rng_below(&g, 4)) {
            case 0: buf[at] = c; break;
            case 1: memmove(buf + at + 1, buf + at, len - at); buf[at] = c; len++; break;
            case 2: memmove(buf + at, buf + at + 1, len - at - 1); len--; break;
            default: len = at + 1; break;
            }
            if (len > n + 8) len = n + 8;
        }
        FILE *fp = fopen(csv, "wb");
        assert_non_null(fp);
        assert_int_equal(fwrite(buf, 1, len, fp), len);
        fclose(fp);
        int rc[3];
        dg_err e3[3];
        for (int m = 0; m < 3; m++) {
            unlink(outs[m]);
            memset(&e3[m], 0, sizeof e3[m]);
            rc[m] = run_ingest(csv, outs[m], KG_EXPECT_AUTO, &mm[m], NULL, &e3[m]);
        }
        for (int m = 1; m < 3; m++) {
            if (rc[m] != rc[0]) fail_msg("mutation %u: rc %d vs %d: %s | %s", it, rc[0], rc[m], e3[0].msg, e3[m].msg);
        }
        if (rc[0] == 0) {
            accepted++;
            for (int m = 1; m < 3; m++) assert_int_equal(compare_files(outs[0], outs[m]), 0);
        } else {
            rejected++;
            if (strcmp(e3[0].msg, e3[1].msg) != 0) fail_msg("mutation %u:\n  fast %s\n  ref  %s", it, e3[0].msg, e3[1].msg);
            /* Same "file:line:col:" under another chunking. */
            size_t pre = strlen(csv);
            const char *a = e3[0].msg + pre, *b = e3[2].msg + pre;
            size_t la = strspn(a, ":0123456789"), lb = strspn(b, ":0123456789");
            if (la != lb || strncmp(a, b, la) != 0) fail_msg("mutation %u:\n  one chunk %s\n  chunks    %s", it, e3[0].msg, e3[2].msg);
            for (int m = 0; m < 3; m++) assert_false(dg_path_exists(outs[m]));
        }
        for (int m = 0; m < 3; m++) unlink(outs[m]);
    }
    print_message("mutations: %d accepted, %d rejected\n", accepted, rejected);
    assert_true(accepted > 10 && rejected > 100); /* both sides exercised */
    free(buf);
    free(good);
    unlink(csv);
}

/* ---- the real train.csv ------------------------------------------------------------------------------------- */

/* data/train.csv of the source tree, else unzipped from ../shared/data/digit-recognizer.zip into the test tmp dir;
 * NULL if neither exists. */
static const char *find_train_csv(void) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/data/train.csv", DIGITS_SOURCE_DIR);
    if (dg_path_exists(path)) return path;
    char zip[4096], cmd[9000];
    snprintf(zip, sizeof zip, "%s/../shared/data/digit-recognizer.zip", DIGITS_SOURCE_DIR);
    if (!dg_path_exists(zip)) return NULL;
    snprintf(path, sizeof path, "%s/ingest_real/train.csv", DIGITS_TEST_TMP);
    if (dg_path_exists(path)) return path;
    snprintf(cmd, sizeof cmd, "unzip -o -q '%s' train.csv -d '%s/ingest_real'", zip, DIGITS_TEST_TMP);
    if (system(cmd) != 0 || !dg_path_exists(path)) return NULL;
    return path;
}

static void test_real_train_csv_round_trip(void **state) {
    (void)state;
    const char *train = find_train_csv();
    if (!train) {
        tu_skip("no data/train.csv and no ../shared/data/digit-recognizer.zip next to the source tree; run `make -f "
                "Makefile.data` to get the data");
    }
    const char *out = TMP "real.npy", *back = TMP "real_back.csv";
    dg_err err;
    kg_ingest_stats st;
    if (kg_ingest(train, out, KG_EXPECT_TRAIN, 2, &st, &err) != 0) fail_msg("%s", err.msg);
    assert_true(st.rows > 0);
    assert_int_equal(st.has_labels, 1);
    dg_dataset ds;
    assert_int_equal(dg_dataset_open(&ds, out, &err), 0);
    assert_int_equal(ds.n, st.rows);
    dg_sink *s;
    assert_int_equal(dg_sink_open(&s, DG_FMT_CSV, back, 1, &err), 0);
    for (size_t i = 0; i < ds.n; i++)
        assert_int_equal(dg_sink_add(s, dg_dataset_image(&ds, i), dg_dataset_label(&ds, i), &err), 0);
    assert_int_equal(dg_sink_commit(s, &err), 0);
    dg_dataset_close(&ds);
    size_t diff = compare_files(train, back);
    if (diff) {
        /* Only line ends may differ (a CRLF copy): then the values must be equal. */
        const char *again = TMP "real_again.npy";
        assert_int_equal(kg_ingest(back, again, KG_EXPECT_TRAIN, 2, NULL, &err), 0);
        assert_int_equal(compare_files(out, again), 0);
        print_message("note: %s differs from the exported CSV at byte %zu (line ends?); values are identical\n", train,
                      diff - 1);
        unlink(again);
    }
    print_message("round trip: %s, %zu rows, ingest %.3f s, %s\n", train, st.rows, st.seconds,
                  diff ? "value-identical" : "byte-identical");
    unlink(out);
    unlink(back);
}

/* A small round trip that always runs: fixture CSV -> dataset -> CSV gives the same bytes. */
static void test_fixture_round_trip(void **state) {
    (void)state;
    static const char *files[] = {"good_train.csv", "good_test.csv"};
    for (int f = 0; f < 2; f++) {
        char path[512];
        snprintf(path, sizeof path, FIX "%s", files[f]);
        const char *out = TMP "rt.npy", *back = TMP "rt.csv";
        dg_err err;
        assert_int_equal(kg_ingest(path, out, KG_EXPECT_AUTO, 2, NULL, &err), 0);
        dg_dataset ds;
        assert_int_equal(dg_dataset_open(&ds, out, &err), 0);
        dg_sink *s;
        assert_int_equal(dg_sink_open(&s, DG_FMT_CSV, back, ds.has_labels, &err), 0);
        for (size_t i = 0; i < ds.n; i++)
            assert_int_equal(dg_sink_add(s, dg_dataset_image(&ds, i), dg_dataset_label(&ds, i), &err), 0);
        assert_int_equal(dg_sink_commit(s, &err), 0);
        dg_dataset_close(&ds);
        assert_int_equal(compare_files(path, back), 0);
        unlink(out);
        unlink(back);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepted_variants),
        cmocka_unit_test(test_rejected_fixtures),
        cmocka_unit_test(test_missing_input_and_unwritable_output),
        cmocka_unit_test(test_quoted_field_across_line_end),
        cmocka_unit_test(test_generated_all_modes_agree),
        cmocka_unit_test(test_generated_error_lines),
        cmocka_unit_test(test_empty_lines_across_chunks),
        cmocka_unit_test(test_mutations_agree),
        cmocka_unit_test(test_fixture_round_trip),
        cmocka_unit_test(test_real_train_csv_round_trip),
    };
    return tu_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
