/* Tests for core/dg_file: atomic writes (the temporary never shows under the final name, abort leaves nothing),
 * several files committed as one, and the whole-file readers' limits. */
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
#include <unistd.h>

#include "core/dg_file.h"

#define TDIR DIGITS_TEST_TMP "/core_file"

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static void fresh_dir(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    assert_int_equal(system(cmd), 0);
}

static void test_write_read_round_trip(void **state) {
    (void)state;
    fresh_dir(TDIR "/rt");
    const char text[] = "line one\nline two\n";
    dg_err err = {0};
    assert_int_equal(dg_write_file_atomic(TDIR "/rt/a.txt", text, sizeof text - 1, &err), 0);
    char *data;
    size_t n;
    assert_int_equal(dg_read_file(TDIR "/rt/a.txt", &data, &n, &err), 0);
    assert_int_equal(n, sizeof text - 1);
    assert_memory_equal(data, text, n);
    assert_int_equal(data[n], '\0');
    free(data);
    assert_int_equal(count_entries(TDIR "/rt"), 1); /* no temporary left */
}

static void test_abort_keeps_the_old_file(void **state) {
    (void)state;
    fresh_dir(TDIR "/ab");
    dg_err err = {0};
    assert_int_equal(dg_write_file_atomic(TDIR "/ab/f", "old", 3, &err), 0);
    dg_afile f;
    assert_int_equal(dg_afile_open(&f, TDIR "/ab/f", &err), 0);
    fputs("new, half written", f.fp);
    assert_int_equal(count_entries(TDIR "/ab"), 2); /* f and its temporary */
    dg_afile_abort(&f);
    assert_int_equal(count_entries(TDIR "/ab"), 1);
    char *data;
    size_t n;
    assert_int_equal(dg_read_file(TDIR "/ab/f", &data, &n, &err), 0);
    assert_string_equal(data, "old");
    free(data);
}

static void test_commit_all(void **state) {
    (void)state;
    fresh_dir(TDIR "/all");
    dg_err err = {0};
    dg_afile a, b;
    assert_int_equal(dg_afile_open(&a, TDIR "/all/a", &err), 0);
    assert_int_equal(dg_afile_open(&b, TDIR "/all/b", &err), 0);
    fputs("A", a.fp);
    fputs("B", b.fp);
    dg_afile *fs[] = {&a, &b};
    assert_int_equal(dg_afile_commit_all(fs, 2, &err), 0);
    char *data;
    size_t n;
    assert_int_equal(dg_read_file(TDIR "/all/a", &data, &n, &err), 0);
    assert_string_equal(data, "A");
    free(data);
    assert_int_equal(dg_read_file(TDIR "/all/b", &data, &n, &err), 0);
    assert_string_equal(data, "B");
    free(data);
    assert_int_equal(count_entries(TDIR "/all"), 2);
}

static void test_read_errors(void **state) {
    (void)state;
    fresh_dir(TDIR "/err");
    dg_err err = {0};
    char *data = (char *)1;
    size_t n = 7;
    assert_int_equal(dg_read_file(TDIR "/err/missing", &data, &n, &err), -1);
    assert_null(data);
    assert_non_null(strstr(err.msg, "missing: cannot open"));
    /* A text file with a NUL byte is not text. */
    assert_int_equal(dg_write_file_atomic(TDIR "/err/nul.spec", "a\0b", 3, &err), 0);
    assert_int_equal(dg_read_text(TDIR "/err/nul.spec", "spec file", &data, &err), -1);
    assert_non_null(strstr(err.msg, "contains a NUL byte; not a spec file"));
    /* An endless file (a spec path that names /dev/zero) fails at the text limit instead of filling the memory. */
    assert_int_equal(dg_read_text("/dev/zero", "spec file", &data, &err), -1);
    assert_null(data);
    assert_non_null(strstr(err.msg, "/dev/zero: larger than 16 MiB; not a spec file"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_read_round_trip),
        cmocka_unit_test(test_abort_keeps_the_old_file),
        cmocka_unit_test(test_commit_all),
        cmocka_unit_test(test_read_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
