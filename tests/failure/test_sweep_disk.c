/* digits-sweep on a disk that fills in the middle of a sweep, and in a directory that cannot be written.
 *
 * The sweep (4 configurations, one worker) runs on a 16 MiB tmpfs through a trainer wrapper that logs every
 * launch outside the tmpfs and, at the third launch, fills the disk but for 64 KiB before it executes digits-train
 * (room for the coordinator's commits, none for the trainer's checkpoint). Then:
 *   - the sweep exits 1 with "No space left on device" and says it stops: the third trial is not FAILED (a rerun
 *     would not retry it), the first two trials' run directories hold their results;
 *   - on the same directory remounted read-only, it exits 1 with "Read-only file system" and changes nothing
 *     (a read-only mount, not chmod: CI runs as root, and root ignores permissions);
 *   - with room again it finishes: four complete configurations, the first two never launched again, the third
 *     launched a second time, nothing failed.
 * The program re-runs itself in a private mount namespace (unshare --mount) for the tmpfs, as test_stages.c
 * does; without one it skips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fi_util.h"
#include "testutil.h"

#define TDIR DIGITS_TEST_TMP "/sweep_disk"
#define D TDIR "/disk"
#define ERRFILE DIGITS_TEST_TMP "/sweep_disk-stderr.txt"
#define LAUNCHES TDIR "/launches.log"

#define SWEEP                                                                                                       \
    DIGITS_BIN_DIR "/digits-sweep --quiet --data " TDIR "/data.npy --train " TDIR "/train.sh --dir " D "/s " TDIR  \
                   "/lr.sweep"

/* How often a trial's run directory (by name, c0002-r0) was launched, from LAUNCHES. */
static int launches(const char *trial) {
    size_t n;
    char *t = fi_slurp(LAUNCHES, &n);
    int k = 0;
    for (char *line = t ? strtok(t, "\n") : NULL; line; line = strtok(NULL, "\n")) k += strcmp(line, trial) == 0;
    free(t);
    return k;
}

/* One number from the sweep's database. */
static int db_count(const char *sql) {
    sqlite3 *db;
    int n = -1;
    if (sqlite3_open_v2(D "/s/sweep.db", &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *s;
        if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) == SQLITE_OK) {
            if (sqlite3_step(s) == SQLITE_ROW) n = sqlite3_column_int(s, 0);
            sqlite3_finalize(s);
        }
    }
    sqlite3_close(db);
    return n;
}

static void test_full_then_read_only(void **state) {
    (void)state;
    dg_err err;
    assert_int_equal(dg_mkdirs(D, &err), 0);
    umount2(D, MNT_DETACH);
    if (mount("tmpfs", D, "tmpfs", 0, "size=16m") != 0) fail_msg("mount tmpfs on %s: %s", D, strerror(errno));
    fi_write(TDIR "/fill-at", "3");

    /* the disk fills while the third trial starts, but for 64 KiB: room for the database's commits, not for the
     * trainer's checkpoint, so the trainer meets it and the coordinator must recognise it */
    int st = fi_sh("%s", SWEEP);
    if (st != 1 || !strstr(fi_err_text, "No space left on device") || !strstr(fi_err_text, "the sweep stops"))
        fail_msg("full disk: exit %d, stderr \"%s\"", st, fi_err_text);
    assert_int_equal(launches("c0000-r0"), 1);
    assert_int_equal(launches("c0001-r0"), 1);
    assert_int_equal(launches("c0002-r0"), 1);
    assert_int_equal(launches("c0003-r0"), 0);
    assert_true(dg_path_exists(D "/s/trials/c0000-r0/result.json"));
    assert_true(dg_path_exists(D "/s/trials/c0001-r0/result.json"));
    assert_false(dg_path_exists(D "/s/leaderboard.csv"));
    unlink(TDIR "/fill-at");
    unlink(D "/zz-fill");
    assert_int_equal(db_count("SELECT count(*) FROM trials WHERE state IN ('failed', 'running')"), 0);

    /* read-only: an error, and nothing changes */
    assert_int_equal(fi_sh("(cd %s && find . -type f | sort | xargs md5sum > %s/before.txt)", D, TDIR), 0);
    if (mount(NULL, D, NULL, MS_REMOUNT | MS_RDONLY, "size=16m") != 0) fail_msg("remount ro: %s", strerror(errno));
    st = fi_sh("%s", SWEEP);
    if (mount(NULL, D, NULL, MS_REMOUNT, "size=16m") != 0) fail_msg("remount rw: %s", strerror(errno));
    if (st != 1 || !strstr(fi_err_text, "Read-only file system"))
        fail_msg("read-only: exit %d, stderr \"%s\"", st, fi_err_text);
    assert_int_equal(fi_sh("(cd %s && find . -type f | sort | xargs md5sum | cmp -s - %s/before.txt)", D, TDIR), 0);
    assert_int_equal(launches("c0003-r0"), 0);

    /* room again: it finishes, running only what had not finished */
    if (fi_sh("%s", SWEEP) != 0) fail_msg("the re-run failed: %s", fi_err_text);
    assert_int_equal(launches("c0000-r0"), 1);
    assert_int_equal(launches("c0001-r0"), 1);
    assert_int_equal(launches("c0002-r0"), 2);
    assert_int_equal(launches("c0003-r0"), 1);
    assert_int_equal(db_count("SELECT count(*) FROM trials WHERE state = 'complete'"), 4);
    assert_int_equal(db_count("SELECT count(*) FROM trials WHERE state <> 'complete'"), 0);
    assert_true(dg_path_exists(D "/s/leaderboard.csv"));
    assert_true(dg_path_exists(D "/s/best.spec"));
    umount2(D, MNT_DETACH);
}

static int setup(void **state) {
    (void)state;
    umount2(D, MNT_DETACH);
    if (fi_sh("rm -rf %s && mkdir -p %s", TDIR, TDIR) != 0) return -1;
    fi_make_dataset(TDIR "/data.npy", 200);
    fi_write(TDIR "/lin.spec", "name lin\nflatten\ndense units=16\nrelu\ndense units=10\n"
                               "train optimizer=momentum lr=0.01 batch=16 epochs=2\n");
    fi_write(TDIR "/lr.sweep", "{\"model\": \"lin.spec\", \"params\": {\"train.lr\": [0.01, 0.02, 0.03, 0.04]},"
                               " \"threads\": 1}\n");
    /* the launch log lives outside the tmpfs; at launch N (TDIR/fill-at) the disk is filled first */
    fi_write(TDIR "/train.sh", "#!/bin/sh\n"
                               "run=; prev=\n"
                               "for a in \"$@\"; do [ \"$prev\" = --run ] && run=$a; prev=$a; done\n"
                               "basename \"$run\" >> " LAUNCHES "\n"
                               "n=$(wc -l < " LAUNCHES ")\n"
                               "if [ -f " TDIR "/fill-at ] && [ \"$n\" -eq \"$(cat " TDIR "/fill-at)\" ]; then\n"
                               "  dd if=/dev/zero of=" D "/zz-fill bs=64k status=none 2>/dev/null\n"
                               "  truncate -s -64K " D "/zz-fill\n"
                               "fi\n"
                               "exec " DIGITS_BIN_DIR "/digits-train \"$@\"\n");
    return chmod(TDIR "/train.sh", 0755);
}


int main(int argc, char **argv) {
    (void)argc;
    if (!fi_enter_namespace(argv)) {
        const struct CMUnitTest none[] = {cmocka_unit_test(fi_test_no_namespace)};
        return tu_exit(cmocka_run_group_tests(none, NULL, NULL));
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_full_then_read_only)};
    return tu_exit(cmocka_run_group_tests(tests, setup, NULL));
}
