/* The stage programs on a full disk, in a read-only directory, and killed (SIGKILL) in the middle of a write.
 *
 * Each stage first writes its outputs once (the previous good files, copied aside); then
 *   - on a full disk (a 2 MiB tmpfs filled up by a filler file, so writes fail with ENOSPC) it must exit 1 with
 *     "No space left on device" (augment: its up-front free-space check), leave every output byte-identical to
 *     its copy and leave no temporary;
 *   - on the same directory remounted read-only it must exit 1 with "Read-only file system", the same way
 *     (a read-only mount, not chmod: CI runs as root, and root ignores permissions);
 *   - and, the disk writable again, a re-run succeeds.
 * digits-report writes one HTML page with its images inline; digits-augment's preview PNG is checked on its own
 * (test_augment_preview_full_and_read_only), since a full disk stops augment at its free-space check before that.
 * digits-train is checked resuming a run stopped after epoch 1, with room for its small files but not for the
 * epoch-2 checkpoint, so the checkpoint write itself meets the full disk. digits-gan train resumes a run stopped
 * after epoch 1 on the full disk and read-only: the epoch-1 files stay, no epoch-2 file appears.
 * digits-gan sample on a full disk stops at its free-space check; digits-gan judge's JSON meets the full disk.
 *
 * Kills: digits-train while writing a checkpoint, digits-ingest while writing its dataset, digits-ensemble while
 * writing its outputs, digits-gan train while writing gan.ckpt (the resumed run's checkpoint is then byte-identical
 * to an uninterrupted run's), digits-gan sample while writing its dataset. The kill lands inside the write by construction: the output's temporary
 * ("<path>.tmp.<pid>", the PID known before exec) is a FIFO this test reads; after some bytes of the file have
 * arrived (its magic checked) the test stops reading, so the writer blocks mid-file, and is killed there. Then the
 * previous outputs are byte-identical, and a re-run succeeds and removes the dead writer's temporaries.
 *
 * The program re-runs itself in a private mount namespace (unshare --mount) for the tmpfs; without one it skips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/dg_npy.h"
#include "nn/train.h"
#include "fi_util.h"
#include "testutil.h"

#define TDIR DIGITS_TEST_TMP "/stages"
#define ERRFILE DIGITS_TEST_TMP "/stages-stderr.txt"
#define IN TDIR "/in"
#define GOOD TDIR "/good"
#define D TDIR "/disk"
#define BIN DIGITS_BIN_DIR
#define SPEC DIGITS_FIXTURES "/spec/tiny.spec"
#define GAN_SPECS "--gen " DIGITS_FIXTURES "/gan/tiny-g.spec --disc " DIGITS_FIXTURES "/gan/tiny-d.spec"
#define NROWS 40
#define ENS_ROWS 20000 /* ensemble kill: outputs far larger than a pipe */

static void mount_disk(void) {
    dg_err err;
    assert_int_equal(dg_mkdirs(D, &err), 0);
    umount2(D, MNT_DETACH);
    if (mount("tmpfs", D, "tmpfs", 0, "size=2m") != 0) fail_msg("mount tmpfs on %s: %s", D, strerror(errno));
}

static void remount(int ro) {
    if (mount(NULL, D, NULL, MS_REMOUNT | (ro ? MS_RDONLY : 0), "size=2m") != 0)
        fail_msg("remount %s %s: %s", D, ro ? "ro" : "rw", strerror(errno));
}

/* Fill D up, then free `keep` bytes of it again. */
static void fill(size_t keep) {
    int fd = open(D "/zz-fill", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    static char block[65536];
    size_t total = 0;
    for (;;) {
        ssize_t k = write(fd, block, sizeof block);
        if (k <= 0) break;
        total += (size_t)k;
    }
    if (errno != ENOSPC) fail_msg("filling %s: %s", D, strerror(errno));
    assert_int_equal(ftruncate(fd, (off_t)(total > keep ? total - keep : 0)), 0);
    close(fd);
}

static void unfill(void) { assert_int_equal(unlink(D "/zz-fill"), 0); }

/* Copy every output (names relative to dir) to GOOD. */
static void keep_copies(const char *dir, const char *const *outs) {
    for (int i = 0; outs[i]; i++)
        if (fi_sh("mkdir -p %s && cp %s/%s %s/%s", GOOD, dir, outs[i], GOOD, outs[i]) != 0)
            fail_msg("%s/%s: no output to keep", dir, outs[i]);
}

static void assert_unchanged(const char *dir, const char *const *outs, const char *when) {
    for (int i = 0; outs[i]; i++)
        if (fi_sh("cmp -s %s/%s %s/%s", dir, outs[i], GOOD, outs[i]) != 0)
            fail_msg("%s: %s/%s differs from the previous good file", when, dir, outs[i]);
    fi_assert_clean_dir(dir, NULL, when);
}

typedef struct stage_case {
    const char *name;
    const char *cmd;       /* the command line; %s is D */
    const char *outs[6];   /* in D (train: in D/run) */
    const char *full_msg;  /* what a full disk says */
} stage_case;

static const stage_case cases[] = {
    {"ingest", BIN "/digits-ingest -q -o %s/train.npy " IN "/train.csv", {"train.npy"}, "No space left on device"},
    {"export", BIN "/digits-export -q -f idx -o %s/exp " IN "/data.npy",
     {"exp-images-idx3-ubyte", "exp-labels-idx1-ubyte"}, "No space left on device"},
    {"augment", BIN "/digits-augment -q --data " IN "/data.npy --out %s/aug.npy --params-out %s/aug-params.npy",
     {"aug.npy", "aug-params.npy"}, "are free"},
    {"predict", BIN "/digits-predict -q -d " IN "/data.npy -o %s/probs.npy -l %s/sub.csv " IN "/run",
     {"probs.npy", "sub.csv"}, "No space left on device"},
    {"ensemble", BIN "/digits-ensemble -q -o %s/ens.csv --probs-out %s/ens-probs.npy " IN "/m1.npy " IN "/m2.npy",
     {"ens.csv", "ens.manifest.json", "ens-probs.npy"}, "No space left on device"},
    /* one HTML page, its images inline (base64 PNGs) */
    {"report", BIN "/digits-report --run " IN "/run -o %s/report.html", {"report.html"}, "No space left on device"},
    /* its free-space check comes first */
    {"gan sample", BIN "/digits-gan sample --label all -n 30 -o %s/gen.npy --grid %s/gen.png " IN "/gan",
     {"gen.npy", "gen.png"}, "MB free"},
    {"gan judge", BIN "/digits-gan judge --samples " IN "/data.npy --classifier " IN "/run --real " IN
     "/data.npy --json %s/judge.json", {"judge.json"}, "No space left on device"},
};

static void check_stage(const stage_case *c) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, c->cmd, D, D, D);
    mount_disk();
    if (fi_sh("%s", cmd) != 0) fail_msg("%s: the first run failed: %s", c->name, fi_err_text);
    keep_copies(D, c->outs);

    fill(0);
    int st = fi_sh("%s", cmd);
    unfill();
    if (st != 1 || !strstr(fi_err_text, c->full_msg))
        fail_msg("%s on a full disk: exit %d, stderr \"%s\"; expected 1 and \"%s\"", c->name, st, fi_err_text,
                 c->full_msg);
    assert_unchanged(D, c->outs, c->name);

    remount(1);
    st = fi_sh("%s", cmd);
    remount(0);
    if (st != 1 || !strstr(fi_err_text, "Read-only file system"))
        fail_msg("%s read-only: exit %d, stderr \"%s\"", c->name, st, fi_err_text);
    assert_unchanged(D, c->outs, c->name);

    if (fi_sh("%s", cmd) != 0) fail_msg("%s: the re-run failed: %s", c->name, fi_err_text);
    fi_assert_clean_dir(D, NULL, c->name);
    umount2(D, MNT_DETACH);
}

static void test_full_and_read_only(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_stage(&cases[i]);
}

/* digits-augment's preview PNG (written by libpng) on the full disk, its other outputs elsewhere: the free-space
 * check counts the dataset and parameters only, so it passes and the PNG's own writes meet the full disk; the
 * outputs are one commit, so the dataset must stay as it was too. */
#define AUG_OUT TDIR "/aug_out"
#define PREVIEW_CMD BIN "/digits-augment -q --data " IN "/data.npy --out " AUG_OUT "/aug.npy --preview " D "/preview.png"

static void test_augment_preview_full_and_read_only(void **state) {
    (void)state;
    const char *in_d[] = {"preview.png", NULL}, *in_out[] = {"aug.npy", NULL};
    mount_disk();
    fi_sh("rm -rf %s %s && mkdir -p %s", AUG_OUT, GOOD, AUG_OUT);
    if (fi_sh("%s", PREVIEW_CMD) != 0) fail_msg("augment --preview: the first run failed: %s", fi_err_text);
    keep_copies(D, in_d);
    keep_copies(AUG_OUT, in_out);
    struct stat st_png;
    assert_int_equal(stat(D "/preview.png", &st_png), 0);
    assert_true(st_png.st_size > 16384); /* beyond stdio's buffer: libpng's writes themselves meet the full disk */

    fill(0);
    int st = fi_sh("%s", PREVIEW_CMD);
    unfill();
    if (st != 1 || !strstr(fi_err_text, "preview.png") || !strstr(fi_err_text, "No space left on device"))
        fail_msg("augment --preview on a full disk: exit %d, stderr \"%s\"", st, fi_err_text);
    assert_unchanged(D, in_d, "augment --preview, full disk");
    assert_unchanged(AUG_OUT, in_out, "augment --preview, full disk");

    remount(1);
    st = fi_sh("%s", PREVIEW_CMD);
    remount(0);
    if (st != 1 || !strstr(fi_err_text, "Read-only file system"))
        fail_msg("augment --preview read-only: exit %d, stderr \"%s\"", st, fi_err_text);
    assert_unchanged(D, in_d, "augment --preview, read-only");
    assert_unchanged(AUG_OUT, in_out, "augment --preview, read-only");

    if (fi_sh("%s", PREVIEW_CMD) != 0) fail_msg("augment --preview: the re-run failed: %s", fi_err_text);
    fi_assert_clean_dir(D, in_d, "augment --preview re-run");
    fi_assert_clean_dir(AUG_OUT, in_out, "augment --preview re-run");
    umount2(D, MNT_DETACH);
}

/* A run directory stopped after epoch 1 of 3 (as a kill after the checkpoint leaves it). */
static void stopped_run(const char *dir) {
    nn_train_opts o;
    nn_train_opts_defaults(&o);
    o.data = IN "/data.npy";
    o.model = SPEC;
    o.run_dir = dir;
    o.epochs = 3;
    o.batch = 8;
    o.val_frac = 0.25;
    o.stop_after = 1;
    o.log = NULL;
    dg_err err = {{0}};
    if (nn_train_run(&o, &err) != 1) fail_msg("stopped run in %s: %s", dir, err.msg);
}

#define RUN_FILES {"spec.txt", "metrics.jsonl", "checkpoint.ckpt", NULL}
#define TRAIN_CMD BIN "/digits-train --quiet --data " IN "/data.npy --model " SPEC " --epochs 3 --batch 8 " \
                      "--val-frac 0.25 --resume --run "

static void test_train_checkpoint_full_and_read_only(void **state) {
    (void)state;
    const char *outs[] = RUN_FILES;
    mount_disk();
    stopped_run(D "/run");
    keep_copies(D "/run", outs);
    /* room for spec.txt and metrics.jsonl (a page each), not for the checkpoint */
    fill(16384);
    int st = fi_sh("%s%s", TRAIN_CMD, D "/run");
    unfill();
    if (st != 1 || !strstr(fi_err_text, "checkpoint.ckpt") || !strstr(fi_err_text, "No space left on device"))
        fail_msg("train on a full disk: exit %d, stderr \"%s\"", st, fi_err_text);
    assert_unchanged(D "/run", outs, "train, full disk");

    remount(1);
    st = fi_sh("%s%s", TRAIN_CMD, D "/run");
    remount(0);
    if (st != 1 || !strstr(fi_err_text, "Read-only file system"))
        fail_msg("train read-only: exit %d, stderr \"%s\"", st, fi_err_text);
    assert_unchanged(D "/run", outs, "train, read-only");

    if (fi_sh("%s%s", TRAIN_CMD, D "/run") != 0) fail_msg("train: the re-run failed: %s", fi_err_text);
    assert_true(dg_path_exists(D "/run/result.json"));
    fi_assert_clean_dir(D "/run", NULL, "train re-run");
    umount2(D, MNT_DETACH);
}

/* A digits-gan run of the tiny GAN stopped after epoch 1 of 2. */
#define GAN_TRAIN BIN "/digits-gan train --quiet --data " IN "/data.npy " GAN_SPECS " --epochs 2 --run "
#define GAN_FILES {"gan.ckpt", "metrics.jsonl", "grid-epoch-001.png", NULL}

static void stopped_gan(const char *dir) {
    if (fi_sh("rm -rf %s && " GAN_TRAIN "%s --stop-at 1", dir, dir) != 0) fail_msg("stopped GAN run: %s", fi_err_text);
}

static void test_gan_train_full_and_read_only(void **state) {
    (void)state;
    const char *outs[] = GAN_FILES;
    mount_disk();
    stopped_gan(D "/gan");
    keep_copies(D "/gan", outs);
    fill(0);
    int st = fi_sh(GAN_TRAIN "%s --resume", D "/gan");
    unfill();
    if (st != 1 || !strstr(fi_err_text, "No space left on device"))
        fail_msg("gan train on a full disk: exit %d, stderr \"%s\"", st, fi_err_text);
    assert_unchanged(D "/gan", outs, "gan train, full disk");
    fi_assert_clean_dir(D "/gan", outs, "gan train, full disk"); /* no epoch-2 grid either */

    remount(1);
    st = fi_sh(GAN_TRAIN "%s --resume", D "/gan");
    remount(0);
    if (st != 1 || !strstr(fi_err_text, "Read-only file system"))
        fail_msg("gan train read-only: exit %d, stderr \"%s\"", st, fi_err_text);
    assert_unchanged(D "/gan", outs, "gan train, read-only");
    fi_assert_clean_dir(D "/gan", outs, "gan train, read-only");

    /* room for the epoch-2 grid and metrics, not for the checkpoint (as large as epoch 1's): the checkpoint write
     * itself meets the full disk. It is the run's commit point: the failed epoch's grid and metrics line may stay,
     * for the resume to rewrite. */
    struct stat cs;
    assert_int_equal(stat(D "/gan/gan.ckpt", &cs), 0);
    fill((size_t)cs.st_size - 4096);
    st = fi_sh(GAN_TRAIN "%s --resume", D "/gan");
    unfill();
    if (st != 1 || !strstr(fi_err_text, "gan.ckpt") || !strstr(fi_err_text, "No space left on device"))
        fail_msg("gan train, checkpoint on a full disk: exit %d, stderr \"%s\"", st, fi_err_text);
    const char *ck[] = {"gan.ckpt", "grid-epoch-001.png", NULL};
    assert_unchanged(D "/gan", ck, "gan train, checkpoint on a full disk");

    if (fi_sh(GAN_TRAIN "%s --resume", D "/gan") != 0) fail_msg("gan train: the re-run failed: %s", fi_err_text);
    assert_int_equal(tu_count_lines(D "/gan/metrics.jsonl"), 2);
    const char *done[] = {"gan.ckpt", "metrics.jsonl", "grid-epoch-001.png", "grid-epoch-002.png", NULL};
    fi_assert_clean_dir(D "/gan", done, "gan train re-run");
    umount2(D, MNT_DETACH);
}

/* ---- kills mid-write ---- */

/* Start argv (a stage) with the temporary of `out` made a FIFO first; read `want` bytes of the file from it,
 * check its first 4 KiB hold `mark`, then SIGKILL the writer, which is now blocked in the middle of the file (the
 * file is larger than want plus a pipe's buffer, and nobody reads any more). Fails unless the kill was what
 * ended it. */
static void kill_mid_write(char *const argv[], const char *out, const char *mark, size_t want) {
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char c;
        close(go[1]);
        if (read(go[0], &c, 1) != 1) _exit(120);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        execv(argv[0], argv);
        _exit(121);
    }
    close(go[0]);
    char fifo[4200];
    snprintf(fifo, sizeof fifo, "%s.tmp.%ld", out, (long)pid);
    if (mkfifo(fifo, 0644) != 0) fail_msg("mkfifo %s: %s", fifo, strerror(errno));
    int fd = open(fifo, O_RDWR); /* never blocks, never sees EOF */
    assert_true(fd >= 0);
    assert_int_equal(write(go[1], "x", 1), 1);
    close(go[1]);
    char *buf = malloc(want);
    size_t got = 0;
    while (got < want) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, 120000);
        if (r <= 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fail_msg("%s: no data from the writer in 120 s (%zu bytes so far)", out, got);
        }
        ssize_t k = read(fd, buf + got, want - got);
        assert_true(k > 0);
        got += (size_t)k;
    }
    int found = 0;
    for (size_t i = 0; !found && i + strlen(mark) <= 4096 && i + strlen(mark) <= got; i++)
        found = memcmp(buf + i, mark, strlen(mark)) == 0;
    if (!found) fail_msg("%s: the first bytes read lack \"%s\": not the file being written", out, mark);
    free(buf);
    assert_int_equal(kill(pid, SIGKILL), 0);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) fail_msg("%s: the writer ended on its own (status %d)", out, st);
    close(fd);
    assert_true(dg_path_exists(fifo)); /* the dead writer's temporary, for the re-run to remove */
    print_message("%s: killed after %zu bytes of the file\n", out, got);
}

static void test_kill_checkpoint(void **state) {
    (void)state;
    const char *dir = TDIR "/kill_train";
    const char *outs[] = RUN_FILES;
    fi_sh("rm -rf %s %s", dir, GOOD);
    stopped_run(dir);
    keep_copies(dir, outs);
    char *argv[] = {BIN "/digits-train", "--quiet", "--data", IN "/data.npy", "--model", SPEC, "--epochs", "3",
                    "--batch", "8", "--val-frac", "0.25", "--resume", "--run", (char *)dir, NULL};
    kill_mid_write(argv, TDIR "/kill_train/checkpoint.ckpt", "name tiny", 16384);
    /* the epoch-1 checkpoint and the files beside it are intact (the FIFO aside) */
    for (int i = 0; outs[i]; i++)
        if (fi_sh("cmp -s %s/%s %s/%s", dir, outs[i], GOOD, outs[i]) != 0) fail_msg("%s changed by the kill", outs[i]);
    if (fi_sh(TRAIN_CMD "%s", dir) != 0) fail_msg("train after the kill: %s", fi_err_text);
    assert_true(dg_path_exists(TDIR "/kill_train/result.json"));
    fi_assert_clean_dir(dir, NULL, "train re-run after a kill");
}

/* digits-gan train killed inside its epoch-2 checkpoint: gan.ckpt stays the epoch-1 one; the resumed run then ends
 * with a checkpoint byte-identical to an uninterrupted run's and one metrics line per epoch. */
static void test_kill_gan_checkpoint(void **state) {
    (void)state;
    const char *dir = TDIR "/kill_gan", *whole = TDIR "/kill_gan_whole";
    fi_sh("rm -rf %s", GOOD);
    stopped_gan(dir);
    const char *ck[] = {"gan.ckpt", NULL};
    keep_copies(dir, ck);
    char *argv[] = {BIN "/digits-gan", "train", "--quiet", "--data", IN "/data.npy", "--gen",
                    DIGITS_FIXTURES "/gan/tiny-g.spec", "--disc", DIGITS_FIXTURES "/gan/tiny-d.spec", "--epochs", "2",
                    "--resume", "--run", (char *)dir, NULL};
    /* 85 KB: 4 KiB read plus a 64 KiB pipe leave the writer blocked inside the file */
    kill_mid_write(argv, TDIR "/kill_gan/gan.ckpt", "[generator]", 4096);
    if (fi_sh("cmp -s %s/gan.ckpt %s/gan.ckpt", dir, GOOD) != 0) fail_msg("gan.ckpt changed by the kill");
    if (fi_sh(GAN_TRAIN "%s --resume", dir) != 0) fail_msg("gan train after the kill: %s", fi_err_text);
    if (fi_sh("rm -rf %s && " GAN_TRAIN "%s", whole, whole) != 0) fail_msg("gan train: %s", fi_err_text);
    if (fi_sh("cmp -s %s/gan.ckpt %s/gan.ckpt", dir, whole) != 0)
        fail_msg("the resumed run's gan.ckpt differs from an uninterrupted run's");
    assert_int_equal(tu_count_lines(TDIR "/kill_gan/metrics.jsonl"), 2);
    fi_assert_clean_dir(dir, NULL, "gan train re-run after a kill");
}

/* digits-gan sample killed in the middle of its dataset: the previous file stays. */
static void test_kill_gan_sample(void **state) {
    (void)state;
    const char *dir = TDIR "/kill_sample", *outs[] = {"gen.npy", NULL};
    const char *cmd = BIN "/digits-gan sample --label all -n 300 -o " TDIR "/kill_sample/gen.npy " IN "/gan";
    fi_sh("rm -rf %s %s && mkdir -p %s", dir, GOOD, dir);
    if (fi_sh("%s", cmd) != 0) fail_msg("gan sample: %s", fi_err_text);
    keep_copies(dir, outs);
    char *argv[] = {BIN "/digits-gan", "sample", "--label", "all", "-n", "300", "--seed", "2",
                    "-o", TDIR "/kill_sample/gen.npy", IN "/gan", NULL};
    kill_mid_write(argv, TDIR "/kill_sample/gen.npy", "NUMPY", 16384);
    if (fi_sh("cmp -s %s/gen.npy %s/gen.npy", dir, GOOD) != 0) fail_msg("gen.npy changed by the kill");
    if (fi_sh("%s", cmd) != 0) fail_msg("gan sample after the kill: %s", fi_err_text);
    fi_assert_clean_dir(dir, NULL, "gan sample re-run after a kill");
}

static void test_kill_ingest(void **state) {
    (void)state;
    const char *outs[] = {"train.npy", NULL};
    fi_sh("rm -rf %s %s && mkdir -p %s", TDIR "/kill_ingest", GOOD, TDIR "/kill_ingest");
    if (fi_sh(BIN "/digits-ingest -q -o %s/train.npy " IN "/big.csv", TDIR "/kill_ingest") != 0)
        fail_msg("ingest: %s", fi_err_text);
    keep_copies(TDIR "/kill_ingest", outs);
    char *argv[] = {BIN "/digits-ingest", "-q", "-o", TDIR "/kill_ingest/train.npy", IN "/big.csv", NULL};
    kill_mid_write(argv, TDIR "/kill_ingest/train.npy", "NUMPY", 16384);
    if (fi_sh("cmp -s %s/train.npy %s/train.npy", TDIR "/kill_ingest", GOOD) != 0) fail_msg("train.npy changed");
    if (fi_sh(BIN "/digits-ingest -q -o %s/train.npy " IN "/big.csv", TDIR "/kill_ingest") != 0)
        fail_msg("ingest after the kill: %s", fi_err_text);
    fi_assert_clean_dir(TDIR "/kill_ingest", NULL, "ingest re-run after a kill");
}

static void test_kill_ensemble(void **state) {
    (void)state;
    const char *dir = TDIR "/kill_ens";
    const char *outs[] = {"sub.csv", "sub.manifest.json", "probs.npy", NULL};
    fi_sh("rm -rf %s %s && mkdir -p %s", dir, GOOD, dir);
    const char *cmd = BIN "/digits-ensemble -q -o " TDIR "/kill_ens/sub.csv --probs-out " TDIR
                          "/kill_ens/probs.npy " IN "/big1.npy " IN "/big2.npy";
    if (fi_sh("%s", cmd) != 0) fail_msg("ensemble: %s", fi_err_text);
    keep_copies(dir, outs);
    char *argv[] = {BIN "/digits-ensemble", "-q", "-o", TDIR "/kill_ens/sub.csv", "--probs-out",
                    TDIR "/kill_ens/probs.npy", IN "/big1.npy", IN "/big2.npy", NULL};
    kill_mid_write(argv, TDIR "/kill_ens/probs.npy", "NUMPY", 16384);
    for (int i = 0; outs[i]; i++)
        if (fi_sh("cmp -s %s/%s %s/%s", dir, outs[i], GOOD, outs[i]) != 0) fail_msg("%s changed by the kill", outs[i]);
    if (fi_sh("%s", cmd) != 0) fail_msg("ensemble after the kill: %s", fi_err_text);
    fi_assert_clean_dir(dir, NULL, "ensemble re-run after a kill");
}

/* ---- inputs ---- */

static void write_csv(const char *path, int rows) {
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("label", fp);
    for (int p = 0; p < DG_PIXELS; p++) fprintf(fp, ",pixel%d", p);
    fputc('\n', fp);
    for (int r = 0; r < rows; r++) {
        fprintf(fp, "%d", r % 10);
        for (int p = 0; p < DG_PIXELS; p++) fprintf(fp, ",%d", (r * 31 + p * 7) % 256);
        fputc('\n', fp);
    }
    assert_int_equal(fclose(fp), 0);
}

static void write_probs(const char *path, size_t n, int shift) {
    float *p = malloc(n * 10 * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n * 10; i++) p[i] = (i % 10 == (i / 10 + (size_t)shift) % 10) ? 0.91f : 0.01f;
    size_t shape[2] = {n, 10};
    dg_err err;
    if (dg_npy_save(path, "<f4", shape, 2, p, sizeof(float), &err) != 0) fail_msg("%s", err.msg);
    free(p);
}

static int setup(void **state) {
    (void)state;
    dg_err err = {{0}};
    umount2(D, MNT_DETACH);
    if (fi_sh("rm -rf %s && mkdir -p %s", TDIR, IN) != 0) return -1;
    fi_make_dataset(IN "/data.npy", NROWS);
    write_csv(IN "/train.csv", 30);
    write_csv(IN "/big.csv", 400); /* a 314 KB dataset */
    write_probs(IN "/m1.npy", NROWS, 0);
    write_probs(IN "/m2.npy", NROWS, 1);
    write_probs(IN "/big1.npy", ENS_ROWS, 0);
    write_probs(IN "/big2.npy", ENS_ROWS, 1);
    if (fi_sh(BIN "/digits-train --quiet --data %s/data.npy --model %s --run %s/run --epochs 1 --batch 8 "
              "--val-frac 0.25",
              IN, SPEC, IN) != 0 ||
        fi_sh(BIN "/digits-gan train --quiet --data %s/data.npy " GAN_SPECS " --run %s/gan --epochs 1", IN, IN) != 0) {
        fprintf(stderr, "setup: %s\n", fi_err_text);
        return -1;
    }
    (void)err;
    return 0;
}


int main(int argc, char **argv) {
    (void)argc;
    if (!fi_enter_namespace(argv)) {
        const struct CMUnitTest none[] = {cmocka_unit_test(fi_test_no_namespace)};
        return tu_exit(cmocka_run_group_tests(none, NULL, NULL));
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_and_read_only),
        cmocka_unit_test(test_train_checkpoint_full_and_read_only),
        cmocka_unit_test(test_augment_preview_full_and_read_only),
        cmocka_unit_test(test_kill_checkpoint),
        cmocka_unit_test(test_kill_ingest),
        cmocka_unit_test(test_kill_ensemble),
        cmocka_unit_test(test_gan_train_full_and_read_only),
        cmocka_unit_test(test_kill_gan_checkpoint),
        cmocka_unit_test(test_kill_gan_sample),
    };
    return tu_exit(cmocka_run_group_tests(tests, setup, NULL));
}
