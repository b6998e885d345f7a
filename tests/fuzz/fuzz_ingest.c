/* fuzz_ingest: kaggle/ingest (the Kaggle CSV), differentially. Every input is ingested three ways: libcsv alone
 * (the reference), the fast scanner with the default 4 MB chunk, and the fast scanner with 700-byte chunks (a cut
 * near every line, so rows straddle chunk boundaries). Invariants: all three agree on success or failure, on the
 * message, on the row count and on every byte of the dataset written; a failure leaves no output file; a success
 * gives a dataset that dg_dataset_open accepts with as many rows and the labelled/unlabelled kind ingest reported.
 * One thread each: the fuzzer wants determinism, and the thread split is the unit tests' business. */
#include <string.h>

#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "fuzz_util.h"
#include "kaggle/ingest.h"

typedef struct run {
    int rc;
    dg_err err;
    kg_ingest_stats st;
    unsigned char *bytes;
    size_t n;
} run;

static void ingest(run *r, const char *csv, const char *out, int reference, size_t chunk) {
    kg_ingest_opts o = kg_ingest_opts_default();
    o.threads = 1;
    o.reference = reference;
    if (chunk) o.chunk_bytes = chunk;
    memset(r, 0, sizeof *r);
    r->rc = kg_ingest_ex(csv, out, &o, &r->st, &r->err);
    if (r->rc == 0) {
        r->bytes = fz_slurp(out, &r->n);
        FZ_CHECK(r->bytes != NULL, "ingest succeeded but %s cannot be read", out);
        unlink(out);
    } else {
        FZ_CHECK(!dg_path_exists(out), "a failed ingest left %s", out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char csv[512], out[512];
    fz_file(csv, sizeof csv, "in.csv", data, size);
    fz_path(out, sizeof out, "out.npy");
    run ref, fast, tiny;
    ingest(&ref, csv, out, 1, 0);
    ingest(&fast, csv, out, 0, 0);
    ingest(&tiny, csv, out, 0, 700);
    const run *other[2] = {&fast, &tiny};
    const char *name[2] = {"fast path", "fast path, 700-byte chunks"};
    for (int i = 0; i < 2; i++) {
        const run *o = other[i];
        FZ_CHECK(o->rc == ref.rc, "libcsv says %d (%s), the %s %d (%s)", ref.rc, ref.rc ? ref.err.msg : "ok", name[i],
                 o->rc, o->rc ? o->err.msg : "ok");
        if (ref.rc != 0) {
            FZ_CHECK(strcmp(o->err.msg, ref.err.msg) == 0, "messages differ:\n libcsv: %s\n %s: %s", ref.err.msg,
                     name[i], o->err.msg);
        } else {
            FZ_CHECK(o->st.rows == ref.st.rows && o->st.has_labels == ref.st.has_labels, "%zu vs %zu rows",
                     o->st.rows, ref.st.rows);
            FZ_CHECK(o->n == ref.n && memcmp(o->bytes, ref.bytes, ref.n) == 0, "the %s wrote other bytes", name[i]);
        }
    }
    if (ref.rc == 0) {
        dg_write_file_atomic(out, ref.bytes, ref.n, NULL);
        dg_dataset ds;
        dg_err err = {{0}};
        FZ_CHECK(dg_dataset_open(&ds, out, &err) == 0, "the ingested dataset does not open: %s", err.msg);
        FZ_CHECK(ds.n == ref.st.rows && ds.has_labels == ref.st.has_labels, "dataset has %zu rows, ingest said %zu",
                 ds.n, ref.st.rows);
        FZ_CHECK(ds.n >= 1, "an ingest with no rows succeeded");
        dg_dataset_close(&ds);
        unlink(out);
    } else {
        FZ_CHECK(strstr(ref.err.msg, csv) == ref.err.msg, "message does not name the file: %s", ref.err.msg);
    }
    free(ref.bytes);
    free(fast.bytes);
    free(tiny.bytes);
    return 0;
}
