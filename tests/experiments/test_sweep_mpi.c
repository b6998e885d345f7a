/* Tests for experiments/sweep_mpi (digits-sweep under `mpirun --oversubscribe -np 3` on this machine, real
 * digits-train processes on a small synthetic dataset; built only with -DDIGITS_MPI=ON):
 *   - the shipped smoke sweep finishes with its trials spread over worker ranks 1 and 2 (counted from a log each
 *     trainer launch appends to its run directory, and from the database's host column) and the leaderboard of a
 *     local --workers 2 run of the same sweep;
 *   - mpirun --enable-recovery, worker rank 1 SIGKILLed while it runs a trial: after the lease its trial goes back
 *     to the queue and rank 2 finishes the sweep with the same leaderboard;
 *   - plain mpirun (OpenMPI aborts the whole job when a rank dies), worker rank 1 SIGKILLed: the job ends, nothing
 *     is left running (no trainer, no "running" row once restarted), and the restarted sweep gives the same
 *     leaderboard without starting a finished trial again;
 *   - mpirun -np 1: the sweep runs locally and says so;
 *   - --lease is parsed strictly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/dg_dataset.h"
#include "core/dg_cli.h"
#include "core/dg_file.h"
#include "experiments/sweep_cli.h"
#include "testutil.h"
#include "sweep_test_util.h"

#define TMP DIGITS_TEST_TMP "/sweep_mpi"
#define DATA TMP "/synth.npy"
#define SMOKE DIGITS_SOURCE_DIR "/experiments/sweeps/smoke.sweep"

/* A digits-train wrapper: appends "RANK EPOCHS_DONE STOP_AT FINISHED" to RUN/launches.log (RANK: the MPI rank that
 * started it, from OpenMPI's environment; "local" outside mpirun), writes its parent's pid (the worker rank) to
 * DIR/rankRANK.pid, then runs the real one; on rank 1 when DIR/slow exists, a 30 s "trainer" instead (a process
 * with the run directory on its command line), which only dies early if it dies with its rank. */
#define WRAPPER TMP "/train-logged.sh"
#define WRAPPER_SCRIPT                                                                                              \
    "#!/bin/sh\n"                                                                                                   \
    TU_WRAPPER_ARGS                                                                                                 \
    "rank=${OMPI_COMM_WORLD_RANK:-local}\n"                                                                         \
    TU_WRAPPER_PROGRESS                                                                                             \
    "echo \"$rank $done_ $stop $fin\" >> \"$run/launches.log\"\n"                                                   \
    "echo $PPID > \"$run/../../rank$rank.pid.tmp\" && mv \"$run/../../rank$rank.pid.tmp\" "                         \
    "\"$run/../../rank$rank.pid\"\n"                                                                                \
    "if [ \"$rank\" = 1 ] && [ -f \"$run/../../slow\" ]; then exec sh -c 'sleep 30' \"$run\"; fi\n"                 \
    "[ -n \"$TRAIN_ASAN_OPTIONS\" ] && export ASAN_OPTIONS=\"$TRAIN_ASAN_OPTIONS\"\n"                               \
    TU_WRAPPER_EXEC

static int setup(void **state) {
    (void)state;
    return tu_sweep_fixture(TMP, DATA, WRAPPER, WRAPPER_SCRIPT);
}

/* The sanitizer build: ASAN_OPTIONS for digits-sweep's ranks, with LeakSanitizer and the slow unwinder that sees
 * Open MPI's frames (built without frame pointers) for its suppressions, or without LeakSanitizer (a rank that is
 * killed or a run that is slow enough already). NULL outside the sanitizer build. */
static char asan_leaks[512], asan_noleaks[512];
static const char *rank_asan;

/* Start argv (NULL-terminated) with stdout and stderr to log; returns its pid. */
static pid_t spawn(const char *log, char *const argv[]) {
    fflush(NULL);
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (rank_asan) setenv("ASAN_OPTIONS", rank_asan, 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    return p;
}

/* Its exit status; a run that takes over 2 minutes (the whole test takes ~25 s) is killed and fails the test. */
static int wait_status(pid_t p) {
    int st;
    for (int spins = 0;; spins++) {
        pid_t r = waitpid(p, &st, WNOHANG);
        assert_true(r == 0 || r == p);
        if (r == p) return st;
        if (spins == 12000) {
            kill(p, SIGTERM); /* mpirun passes it on to its ranks */
            waitpid(p, &st, 0);
            fail_msg("pid %d ran over 2 minutes", (int)p);
        }
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
}

/* digits-sweep on the smoke sweep into dir: locally (np 0, --workers 2) or under mpirun -np np (recover: with
 * --enable-recovery and a 3 s lease). Returns the pid; the output goes to dir.log. */
static pid_t start_sweep(const char *dir, int np, int recover) {
    static char log[600], nps[16];
    snprintf(log, sizeof log, "%s.log", dir);
    snprintf(nps, sizeof nps, "%d", np);
    char *argv[40];
    int a = 0;
    if (np > 0) {
        argv[a++] = DIGITS_MPIEXEC;
        argv[a++] = "--oversubscribe";
        argv[a++] = "-np", argv[a++] = nps;
        /* shared memory between local ranks without CMA (often not permitted in containers) */
        argv[a++] = "--mca", argv[a++] = "btl", argv[a++] = "self,vader";
        argv[a++] = "--mca", argv[a++] = "btl_vader_single_copy_mechanism", argv[a++] = "none";
        if (recover) argv[a++] = "--enable-recovery";
    }
    argv[a++] = DIGITS_BIN_DIR "/digits-sweep";
    argv[a++] = "--data", argv[a++] = DATA;
    argv[a++] = "--dir", argv[a++] = (char *)dir;
    argv[a++] = "--train", argv[a++] = WRAPPER;
    argv[a++] = "--workers", argv[a++] = "2";
    if (recover) argv[a++] = "--lease", argv[a++] = "3";
    argv[a++] = SMOKE;
    argv[a] = NULL;
    return spawn(log, argv);
}

static void run_sweep_ok(const char *dir, int np, int leaks) {
    if (getenv("ASAN_OPTIONS") && np > 0) rank_asan = leaks ? asan_leaks : asan_noleaks;
    int st = wait_status(start_sweep(dir, np, 0));
    rank_asan = NULL;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char log[600];
        snprintf(log, sizeof log, "%s.log", dir);
        char *t = tu_read(log);
        printf("%s", t);
        free(t);
        fail_msg("digits-sweep in %s (np %d) failed (status 0x%x); its output above", dir, np, st);
    }
}

static void same_board(const char *a_dir, const char *b_dir) {
    char *a = tu_board(a_dir), *b = tu_board(b_dir);
    assert_true(strchr(a, '\n') != NULL && strlen(a) > 50); /* a header and rows */
    assert_string_equal(a, b);
    free(a);
    free(b);
}

/* Launches per rank (index 0..3: ranks 0..3, 4: anything else) over the smoke sweep's run directories; fails on a
 * launch of a trial that had already reached its target. */
static int launches(const char *dir, int per_rank[5]) {
    memset(per_rank, 0, 5 * sizeof *per_rank);
    int n = 0;
    for (int c = 0; c < 4; c++)
        for (int r = 0; r < 2; r++) {
            char path[600];
            snprintf(path, sizeof path, "%s/trials/c%04d-r%d/launches.log", dir, c, r);
            if (!dg_path_exists(path)) fail_msg("%s: trial never ran", path);
            char *t = tu_read(path);
            for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
                char rank[32];
                int done, stop, fin;
                assert_int_equal(sscanf(line, "%31s %d %d %d", rank, &done, &stop, &fin), 4);
                if (fin || (stop > 0 && done >= stop)) fail_msg("%s: a finished trial ran again: '%s'", path, line);
                int k = rank[0] >= '0' && rank[0] <= '3' && rank[1] == '\0' ? rank[0] - '0' : 4;
                per_rank[k]++;
                n++;
            }
            free(t);
        }
    return n;
}

static int db_count(const char *dir, const char *where) {
    char path[600], sql[300];
    snprintf(path, sizeof path, "%s/sweep.db", dir);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM trials WHERE %s", where);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 2000);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int n = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

static void no_trainers_left(const char *needle) {
    int left = 0;
    for (int spins = 0; spins < 300 && (left = tu_processes_with(needle)) > 0; spins++) {
        struct timespec t10 = {0, 10000000};
        nanosleep(&t10, NULL);
    }
    assert_int_equal(left, 0);
}

/* Start the smoke sweep with rank 1's trainers slow, wait for the first (its pid file), SIGKILL worker rank 1. */
static pid_t start_and_kill_rank1(const char *dir, int recover) {
    char pidfile[600];
    dg_err err = {{0}};
    if (dg_mkdirs(dir, &err) != 0) fail_msg("%s", err.msg);
    snprintf(pidfile, sizeof pidfile, "%s/slow", dir);
    tu_put(pidfile, "rank 1's trainers take 30 s\n");
    if (getenv("ASAN_OPTIONS")) rank_asan = asan_noleaks;
    pid_t mpirun = start_sweep(dir, 3, recover);
    rank_asan = NULL;
    snprintf(pidfile, sizeof pidfile, "%s/rank1.pid", dir);
    for (int spins = 0; !dg_path_exists(pidfile); spins++) {
        assert_true(spins < 12000); /* 60 s */
        int st;
        if (waitpid(mpirun, &st, WNOHANG) == mpirun) fail_msg("mpirun ended (0x%x) before rank 1 started a trial", st);
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    char *t = tu_read(pidfile);
    pid_t worker = (pid_t)atoi(t);
    free(t);
    assert_true(worker > 1);
    printf("SIGKILL to worker rank 1 (pid %d)\n", (int)worker);
    assert_int_equal(kill(worker, SIGKILL), 0);
    return mpirun;
}

static void test_spread_and_same_board(void **state) {
    (void)state;
    run_sweep_ok(TMP "/local", 0, 1);
    run_sweep_ok(TMP "/mpi", 3, 1);
    same_board(TMP "/local", TMP "/mpi");
    /* every launch came from worker rank 1 or 2, both had some, none from the coordinator */
    int per[5];
    int n = launches(TMP "/mpi", per);
    printf("launches: %d (rank 1: %d, rank 2: %d)\n", n, per[1], per[2]);
    assert_int_equal(per[1] + per[2], n);
    assert_true(per[1] > 0 && per[2] > 0);
    /* the database says where each trial last ran: HOST/rank1 or HOST/rank2 */
    assert_int_equal(db_count(TMP "/mpi", "host LIKE '%/rank1' OR host LIKE '%/rank2'"), 8);
    assert_int_equal(db_count(TMP "/mpi", "state = 'running'"), 0);
    /* the local run's trials ran locally */
    n = launches(TMP "/local", per);
    assert_int_equal(per[4], n);
}

static void test_dead_rank_recovered(void **state) {
    (void)state;
    pid_t p = start_and_kill_rank1(TMP "/dead", 1);
    int st = wait_status(p);
    char *log = tu_read(TMP "/dead.log");
    printf("mpirun --enable-recovery exit status 0x%x\n", st);
    if (!strstr(log, "rank1 silent for") || !strstr(log, "goes back to the queue"))
        fail_msg("the coordinator did not give up on rank 1:\n%s", log);
    free(log);
    no_trainers_left(TMP "/dead/trials/");
    same_board(TMP "/local", TMP "/dead");
    assert_int_equal(db_count(TMP "/dead", "state = 'running'"), 0);
    /* rank 2 finished the sweep: it ran the trial that rank 1 was running when it died, and every later one */
    int per[5];
    int n = launches(TMP "/dead", per);
    printf("launches: %d (rank 1: %d, rank 2: %d)\n", n, per[1], per[2]);
    assert_int_equal(per[1] + per[2], n);
    assert_true(per[1] >= 1 && per[2] > per[1]);
}

static void test_abort_then_resume(void **state) {
    (void)state;
    pid_t p = start_and_kill_rank1(TMP "/abort", 0);
    int st = wait_status(p);
    printf("plain mpirun exit status 0x%x\n", st);
    /* OpenMPI took the whole job down: no leaderboard, no trainer left behind */
    assert_false(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_false(dg_path_exists(TMP "/abort/leaderboard.csv"));
    no_trainers_left(TMP "/abort/trials/");
    unlink(TMP "/abort/slow");
    run_sweep_ok(TMP "/abort", 3, 0);
    char *log = tu_read(TMP "/abort.log");
    printf("%s", strstr(log, "they resume") ? "the restart found trials left running; they resumed\n" : "");
    free(log);
    same_board(TMP "/local", TMP "/abort");
    assert_int_equal(db_count(TMP "/abort", "state = 'running'"), 0);
    int per[5];
    launches(TMP "/abort", per); /* no finished trial ran again */
}

static void test_one_rank_runs_locally(void **state) {
    (void)state;
    run_sweep_ok(TMP "/np1", 1, 0);
    char *log = tu_read(TMP "/np1.log");
    assert_non_null(strstr(log, "one MPI rank: running locally with --workers 2"));
    free(log);
    same_board(TMP "/local", TMP "/np1");
    int per[5];
    int n = launches(TMP "/np1", per);
    /* its trainers are its own children, started from a process that is MPI rank 0 */
    assert_int_equal(per[0], n);
}

/* --lease: seconds in 1..86400, default 30. */
static void test_lease_option(void **state) {
    (void)state;
    char *ok[] = {"digits-sweep", "--data", "d.npy", "--lease", "5", "x.sweep", NULL};
    char *dflt[] = {"digits-sweep", "--data", "d.npy", "x.sweep", NULL};
    char *zero[] = {"digits-sweep", "--data", "d.npy", "--lease", "0", "x.sweep", NULL};
    char *word[] = {"digits-sweep", "--data", "d.npy", "--lease", "1m", "x.sweep", NULL};
    sw_cli_opts o;
    dg_err err = {{0}};
    assert_int_equal(sw_cli_parse(6, ok, &o, &err), 0);
    assert_true(o.lease == 5);
    assert_int_equal(sw_cli_parse(4, dflt, &o, &err), 0);
    assert_true(o.lease == 30);
    assert_int_equal(sw_cli_parse(6, zero, &o, &err), DG_EXIT_USAGE);
    assert_non_null(strstr(err.msg, "--lease 0: expected seconds in 1..86400"));
    assert_int_equal(sw_cli_parse(6, word, &o, &err), DG_EXIT_USAGE);
    assert_non_null(strstr(err.msg, "--lease 1m: expected seconds"));
}

int main(void) {
    /* CI runs as root; OpenMPI refuses that unless told */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    /* the sanitizer build: Open MPI's own allocations that outlive MPI_Finalize are not digits-sweep's leaks */
    setenv("OMPI_MCA_mca_base_component_disable_dlclose", "1", 1);
    setenv("PMIX_MCA_mca_base_component_disable_dlclose", "1", 1);
    setenv("LSAN_OPTIONS", "suppressions=" DIGITS_SOURCE_DIR "/tests/experiments/lsan_mpi.supp:print_suppressions=0", 1);
    const char *asan = getenv("ASAN_OPTIONS");
    if (asan) { /* the trainers (no MPI in them) keep the suite's options: the wrapper puts them back */
        setenv("TRAIN_ASAN_OPTIONS", asan, 1);
        snprintf(asan_leaks, sizeof asan_leaks, "%s:fast_unwind_on_malloc=0", asan);
        snprintf(asan_noleaks, sizeof asan_noleaks, "%s:detect_leaks=0", asan);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lease_option),
        cmocka_unit_test(test_spread_and_same_board),
        cmocka_unit_test(test_dead_rank_recovered),
        cmocka_unit_test(test_abort_then_resume),
        cmocka_unit_test(test_one_rank_runs_locally),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
