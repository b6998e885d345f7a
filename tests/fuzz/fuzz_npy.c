/* fuzz_npy: core/dg_npy (the .npy header, from a buffer and from a file). Invariants: a parse either fails with a
 * message naming the file or gives 0..DG_NPY_MAXDIM dimensions, a data offset inside the input, and an element
 * count that a size_t byte count of any record size up to 64 KiB cannot overflow; the header written back by
 * dg_npy_write_header parses to the same descr and shape; dg_npy_open's data lies inside the file and is exactly
 * as long as the shape says; dg_npy_load_i64 copies exactly shape[0] values. */
#include <string.h>

#include "core/dg_npy.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    dg_npy h;
    dg_err err = {{0}};
    if (dg_npy_parse(data, size, &h, "fuzz.npy", &err) != 0) {
        FZ_CHECK(strncmp(err.msg, "fuzz.npy:", 9) == 0, "message does not name the file: %s", err.msg);
    } else {
        FZ_CHECK(h.ndim >= 0 && h.ndim <= DG_NPY_MAXDIM, "ndim %d", h.ndim);
        FZ_CHECK(h.data_offset <= size, "data offset %zu past %zu bytes", h.data_offset, size);
        FZ_CHECK(!h.fortran_order, "a Fortran-ordered array was accepted");
        FZ_CHECK(memchr(h.descr, '\0', sizeof h.descr) != NULL, "descr not terminated");
        size_t count = 1;
        for (int i = 0; i < h.ndim; i++)
            FZ_CHECK(!__builtin_mul_overflow(count, h.shape[i], &count), "element count overflows");
        FZ_CHECK(count == dg_npy_count(&h), "dg_npy_count %zu, product %zu", dg_npy_count(&h), count);
        size_t bytes;
        FZ_CHECK(!__builtin_mul_overflow(count, (size_t)65536, &bytes), "count %zu times a record overflows", count);

        /* Write the header back and parse it again. */
        char *buf = NULL;
        size_t blen = 0;
        FILE *fp = open_memstream(&buf, &blen);
        if (!fp) abort();
        long w = dg_npy_write_header(fp, h.descr, h.shape, h.ndim, 0);
        fclose(fp);
        if (w > 0) { /* -1: the descr is too long for the writer's 512-byte dictionary, which is allowed */
            FZ_CHECK((size_t)w == blen && w % 64 == 0, "wrote %ld bytes, reported %zu", w, blen);
            dg_npy g;
            FZ_CHECK(dg_npy_parse((const unsigned char *)buf, blen, &g, "again.npy", &err) == 0,
                     "the written header does not parse: %s", err.msg);
            FZ_CHECK(strcmp(g.descr, h.descr) == 0 && g.ndim == h.ndim &&
                         memcmp(g.shape, h.shape, sizeof(size_t) * (size_t)h.ndim) == 0 && g.data_offset == blen,
                     "header round trip differs: descr %s vs %s", h.descr, g.descr);
        }
        free(buf);
    }

    char path[512];
    fz_file(path, sizeof path, "in.npy", data, size);
    dg_npy_file f;
    if (dg_npy_open(&f, path, 1, &err) == 0) {
        FZ_CHECK((const unsigned char *)f.data >= f.map.data &&
                     (const unsigned char *)f.data + dg_npy_count(&f.h) == f.map.data + f.map.size,
                 "data of %zu bytes does not end the file", dg_npy_count(&f.h));
        dg_npy_close(&f);
    }
    int64_t *v = NULL;
    size_t n = 0;
    if (dg_npy_load_i64(path, &v, &n, &err) == 0) {
        FZ_CHECK(n * 8 <= size, "%zu int64 values from %zu bytes", n, size);
        if (n) FZ_CHECK(memcmp(v, data + size - n * 8, n * 8) == 0, "values differ from the file's last bytes");
        free(v);
    }
    return 0;
}
