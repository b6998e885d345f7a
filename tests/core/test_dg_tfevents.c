/* Tests for core/dg_tfevents: CRC32C against published vectors, the Event encoding against hand-worked bytes,
 * and whole event files decoded independently by tests/core/decode_tfevents.py (python3-protobuf; its own CRC32C):
 * both CRCs of every record, protobuf re-encoding to the same bytes, and every wall time, step, tag and value
 * equal to what was written. A file with one flipped byte must be rejected by the decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "core/dg_file.h"
#include "core/dg_tfevents.h"
#include "testutil.h"

/* Debian's python3-protobuf is installed for the system interpreter. */
#define PYTHON "/usr/bin/python3"
#define DECODER DIGITS_SOURCE_DIR "/tests/core/decode_tfevents.py"

static void test_crc32c_vectors(void **state) {
    (void)state;
    assert_int_equal(dg_crc32c(0, "123456789", 9), 0xE3069283u);
    uint8_t zeros[32] = {0}, ones[32];
    memset(ones, 0xff, sizeof ones);
    assert_int_equal(dg_crc32c(0, zeros, 32), 0x8A9136AAu); /* RFC 3720 B.4 */
    assert_int_equal(dg_crc32c(0, ones, 32), 0x62A8AB43u);
    assert_int_equal(dg_crc32c(dg_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    assert_int_equal(dg_crc32c_mask(0), 0xa282ead8u);
    assert_int_equal(dg_crc32c_mask(0x00008000u), 0xa282ead8u + 1u);
}

static void test_encode_bytes(void **state) {
    (void)state;
    /* wall 1.0, step 3, one value "a" = 1.0f */
    static const uint8_t want[] = {0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x03, 0x2a, 0x0a, 0x0a, 0x08,
                                   0x0a, 0x01, 'a', 0x15, 0, 0, 0x80, 0x3f};
    const char *tags[] = {"a"};
    float v[] = {1.0f};
    uint8_t buf[64];
    memset(buf, 0xee, sizeof buf);
    size_t n = dg_tfevents_encode(buf, sizeof buf, 1.0, 3, NULL, 1, tags, v);
    assert_int_equal(n, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    /* Too small a buffer: the size is still returned and nothing is written past cap. */
    memset(buf, 0xee, sizeof buf);
    assert_int_equal(dg_tfevents_encode(buf, 5, 1.0, 3, NULL, 1, tags, v), sizeof want);
    assert_memory_equal(buf, want, 5);
    assert_int_equal(buf[5], 0xee);
    /* the file_version event */
    n = dg_tfevents_encode(buf, sizeof buf, 0.5, 0, "brain.Event:2", 0, NULL, NULL);
    assert_int_equal(n, 9 + 2 + 13);
    assert_int_equal(buf[9], 0x1a);
    assert_int_equal(buf[10], 13);
    assert_memory_equal(buf + 11, "brain.Event:2", 13);
}

/* The one event file in dir (path into out). */
static void only_file(const char *dir, char *out, size_t cap) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "events.out.tfevents.", 20) != 0) continue;
        snprintf(out, cap, "%s/%s", dir, e->d_name);
        found++;
    }
    closedir(d);
    assert_int_equal(found, 1);
}

/* Run the decoder on path; its stdout into out (malloc'd), its exit status returned. */
static int decode(const char *path, char **out) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s '%s'", PYTHON, DECODER, path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while ((k = fread(buf + n, 1, cap - 1 - n, p)) > 0) n += k;
    buf[n] = 0;
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_file_decoded_by_protobuf(void **state) {
    (void)state;
    const char *dir = DIGITS_TEST_TMP "/tfevents/run";
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", DIGITS_TEST_TMP "/tfevents");
    assert_int_equal(system(cmd), 0);
    dg_err err;
    dg_tfevents w;
    assert_int_equal(dg_tfevents_open(&w, dir, &err), 0);
    const char *tags[4] = {"loss/train", "accuracy/val", "lr", "images_per_s"};
    const int64_t steps[3] = {1, 45, (int64_t)1 << 40};
    const double walls[3] = {1765000000.25, 1765000012.5, 1765001234.125};
    float vals[3][4] = {{2.302585f, 0.1f, 1e-3f, 12345.678f},
                        {0.0123f, 0.99357f, 1e-7f, 0.0f},
                        {-1.5f, 1.0f, 3.0e38f, 1e-30f}};
    for (int i = 0; i < 3; i++) assert_int_equal(dg_tfevents_scalars(&w, walls[i], steps[i], 4, tags, vals[i], &err), 0);
    dg_tfevents_close(&w);

    char path[1200];
    only_file(dir, path, sizeof path);
    char *out;
    int st = decode(path, &out);
    if (st != 0) fail_msg("decoder exit %d (is python3-protobuf installed for " PYTHON "?)\n%s", st, out);
    /* line 1: the version record; then one line per scalars call */
    char *save = NULL, *line = strtok_r(out, "\n", &save);
    assert_non_null(line);
    assert_non_null(strstr(line, "version "));
    assert_non_null(strstr(line, " brain.Event:2"));
    for (int i = 0; i < 3; i++) {
        line = strtok_r(NULL, "\n", &save);
        assert_non_null(line);
        char *tok_save = NULL, *tok = strtok_r(line, " ", &tok_save);
        assert_string_equal(tok, "scalars");
        tu_assert_exact(strtod(strtok_r(NULL, " ", &tok_save), NULL), walls[i]);
        assert_true(strtoll(strtok_r(NULL, " ", &tok_save), NULL, 10) == steps[i]);
        for (int k = 0; k < 4; k++) {
            tok = strtok_r(NULL, " ", &tok_save);
            assert_non_null(tok);
            char *eq = strchr(tok, '=');
            assert_non_null(eq);
            *eq = 0;
            assert_string_equal(tok, tags[k]);
            tu_assert_exact((float)strtod(eq + 1, NULL), vals[i][k]);
        }
        assert_null(strtok_r(NULL, " ", &tok_save));
    }
    assert_null(strtok_r(NULL, "\n", &save));
    free(out);

    /* One flipped bit anywhere in a record's data fails the decoder's CRC check. */
    char *data;
    size_t n;
    assert_int_equal(dg_read_file(path, &data, &n, &err), 0);
    data[n - 10] ^= 0x01;
    char bad[1300];
    snprintf(bad, sizeof bad, "%s/../corrupt", dir);
    assert_int_equal(dg_write_file_atomic(bad, data, n, &err), 0);
    free(data);
    st = decode(bad, &out);
    assert_int_equal(st, 1);
    free(out);
}

static void test_open_fails_cleanly(void **state) {
    (void)state;
    dg_err err;
    dg_tfevents w;
    assert_int_equal(dg_tfevents_open(&w, "/proc/no/such/dir", &err), -1);
    assert_non_null(strstr(err.msg, "/proc/no"));
    dg_tfevents_close(&w);
    float v = 1;
    const char *t = "x";
    assert_int_equal(dg_tfevents_scalars(&w, 0, 1, 1, &t, &v, &err), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vectors),
        cmocka_unit_test(test_encode_bytes),
        cmocka_unit_test(test_file_decoded_by_protobuf),
        cmocka_unit_test(test_open_fails_cleanly),
    };
    return tu_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
