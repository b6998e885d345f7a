/* Tests for nn/train: a whole run on a small synthetic dataset (every output file checked), resume after a stop
 * and after kill -9 giving bit-identical results, early stopping keeping the best weights, K-fold, divergence,
 * and the usage errors of the digits-train contract. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nn/checkpoint.h"
#include "nn/model.h"
#include "nn/net.h"
#include "nn/train.h"
#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "core/dg_npy.h"
#include "core/dg_rng.h"
#include "testutil.h"

#define TMP DIGITS_TEST_TMP "/train"
#define DATA TMP "/synth.npy"
#define N_ROWS 600

static int setup(void **state) {
    (void)state;
    dg_err err = {{0}};
    if (dg_mkdirs(TMP, &err) != 0) return -1;
    if (!dg_path_exists(DATA)) tu_blocks_dataset(DATA, N_ROWS, 99, 1);
    return 0;
}

static nn_train_opts opts(const char *dir, const char *model) {
    nn_train_opts o;
    nn_train_opts_defaults(&o);
    o.data = DATA;
    o.model = model;
    o.run_dir = dir;
    o.val_frac = 0.2;
    o.seed = 5;
    o.log = NULL;
    return o;
}

static void assert_same_file(const char *a, const char *b, const char *name) {
    size_t na, nb;
    char *da = tu_slurp(a, name, &na), *db = tu_slurp(b, name, &nb);
    assert_int_equal(na, nb);
    if (memcmp(da, db, na) != 0) fail_msg("%s differs between %s and %s", name, a, b);
    free(da);
    free(db);
}

/* Runs a and b wrote the same metrics.jsonl (lines epochs), every number alike but the timings (from "seconds"
 * on); with `must`, every line contains it. */
static void assert_same_metrics(const char *a, const char *b, int epochs, const char *must) {
    char *ma = tu_slurp(a, "metrics.jsonl", NULL), *mb = tu_slurp(b, "metrics.jsonl", NULL);
    char *sa, *sb;
    char *la = strtok_r(ma, "\n", &sa), *lb = strtok_r(mb, "\n", &sb);
    int lines = 0;
    for (; la && lb; la = strtok_r(NULL, "\n", &sa), lb = strtok_r(NULL, "\n", &sb), lines++) {
        if (must) assert_non_null(strstr(la, must));
        *strstr(la, ",\"seconds\"") = '\0';
        *strstr(lb, ",\"seconds\"") = '\0';
        assert_string_equal(la, lb);
    }
    assert_null(la);
    assert_null(lb);
    assert_int_equal(lines, epochs);
    free(ma);
    free(mb);
}

static cJSON *json_file(const char *dir, const char *name) {
    char *d = tu_slurp(dir, name, NULL);
    cJSON *j = cJSON_Parse(d);
    free(d);
    assert_non_null(j);
    return j;
}

static double num(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    if (!cJSON_IsNumber(v)) fail_msg("no number '%s'", key);
    return v->valuedouble;
}

static void test_full_run(void **state) {
    (void)state;
    const char *dir = TMP "/full";
    tu_rm_run(dir);
    nn_train_opts o = opts(dir, DIGITS_FIXTURES "/spec/tiny.spec");
    dg_err err = {{0}};
    if (nn_train_run(&o, &err) != 0) fail_msg("%s", err.msg);
    /* result.json */
    cJSON *res = json_file(dir, "result.json");
    double val_acc = num(res, "val_acc");
    assert_true(val_acc > 0.9); /* the synthetic classes are easy: it must have learned */
    assert_int_equal((int)num(res, "epochs"), 4);
    assert_int_equal((int)num(res, "seed"), 5);
    assert_true(num(res, "seconds") >= 0); /* a time: present, not negative (no bound on how long it takes) */
    assert_string_equal(cJSON_GetObjectItem(res, "split")->valuestring, "val-frac 0.2 split-seed 1");
    assert_string_equal(cJSON_GetObjectItem(res, "model")->valuestring, "model.safetensors");
    /* metrics.jsonl: one object per epoch with every field; training loss falls. */
    char *m = tu_slurp(dir, "metrics.jsonl", NULL);
    int lines = 0;
    double first_loss = 0, last_loss = 0, last_val_acc = 0;
    for (char *line = strtok(m, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        assert_non_null(j);
        assert_int_equal((int)num(j, "epoch"), ++lines);
        static const char *keys[] = {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds",
                                     "images_per_s"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) (void)num(j, keys[k]);
        if (lines == 1) first_loss = num(j, "train_loss");
        last_loss = num(j, "train_loss");
        last_val_acc = num(j, "val_acc");
        /* schedule=exp gamma=0.9, printed with %.6g: half a unit of the 6th digit is at most 5e-6 relative */
        tu_assert_close(num(j, "lr"), 0.003 * pow(0.9, lines - 1), 5e-6, 0);
        cJSON_Delete(j);
    }
    free(m);
    assert_int_equal(lines, 4);
    assert_true(last_loss < first_loss);
    /* no early stopping: the final model is the last epoch's, its accuracy the same double printed the same way */
    tu_assert_exact(last_val_acc, val_acc);
    /* val_ids / val_pred */
    dg_npy_file ids, pred;
    assert_int_equal(dg_npy_open(&ids, TMP "/full/val_ids.npy", 8, &err), 0);
    assert_int_equal(dg_npy_open(&pred, TMP "/full/val_pred.npy", 4, &err), 0);
    assert_true(dg_npy_is(&ids.h, "<i8"));
    assert_true(dg_npy_is(&pred.h, "<f4"));
    assert_int_equal(ids.h.ndim, 1);
    assert_int_equal(ids.h.shape[0], N_ROWS / 5);
    assert_int_equal(pred.h.ndim, 2);
    assert_int_equal(pred.h.shape[0], N_ROWS / 5);
    assert_int_equal(pred.h.shape[1], 10);
    const int64_t *id = ids.data;
    const float *pr = pred.data;
    dg_dataset ds;
    assert_int_equal(dg_dataset_open(&ds, DATA, &err), 0);
    int correct = 0;
    for (size_t i = 0; i < ids.h.shape[0]; i++) {
        if (i) assert_true(id[i] > id[i - 1]);
        float s = 0;
        int best = 0;
        for (int k = 0; k < 10; k++) {
            s += pr[i * 10 + k];
            if (pr[i * 10 + k] > pr[i * 10 + best]) best = k;
        }
        assert_float_equal(s, 1.0f, 1e-5);
        correct += best == dg_dataset_label(&ds, (size_t)id[i]);
    }
    tu_assert_close((double)correct / (double)ids.h.shape[0], val_acc, 0, 1e-6); /* printed %.6f: within 5e-7 */
    /* The saved model reproduces val_pred. */
    nn_net *net;
    assert_int_equal(nn_model_load(TMP "/full/model.safetensors", 8, &net, &err), 0);
    float x[8 * DG_PIXELS];
    for (int i = 0; i < 8; i++)
        for (int p = 0; p < DG_PIXELS; p++) x[i * DG_PIXELS + p] = dg_dataset_image(&ds, (size_t)id[i])[p] / 255.0f;
    nn_net_forward(net, x, 8, 0, 0, 0);
    const float *probs = nn_net_probs(net);
    for (int i = 0; i < 80; i++) assert_float_equal(probs[i], pr[i], 1e-6);
    nn_net_free(net);
    char *v;
    assert_int_equal(nn_model_meta(TMP "/full/model.safetensors", "val_split", &v, &err), 0);
    assert_string_equal(v, "val-frac 0.2 split-seed 1");
    free(v);
    assert_int_equal(nn_model_meta(TMP "/full/model.safetensors", "seed", &v, &err), 0);
    assert_string_equal(v, "5");
    free(v);
    dg_npy_close(&ids);
    dg_npy_close(&pred);
    dg_dataset_close(&ds);
    /* spec.txt is the resolved spec, which parses back. */
    char *spec_txt = tu_slurp(dir, "spec.txt", NULL);
    nn_spec s;
    assert_int_equal(nn_spec_parse(&s, spec_txt, "spec.txt", &err), 0);
    assert_int_equal(s.hyper.batch, 32);
    assert_int_equal(s.hyper.epochs, 4);
    nn_spec_free(&s);
    free(spec_txt);
    /* A finished run: --resume is a no-op, a new run into it a usage error. */
    o.resume = 1;
    assert_int_equal(nn_train_run(&o, &err), 0);
    o.resume = 0;
    assert_int_equal(nn_train_run(&o, &err), NN_TRAIN_USAGE);
    assert_non_null(strstr(err.msg, "already holds a finished run"));
    cJSON_Delete(res);
}

/* Stop after 1 and then 2 more epochs, resume: the same bits as an uninterrupted run. */
static void test_resume_identical(void **state) {
    (void)state;
    const char *a = TMP "/ra", *b = TMP "/rb";
    tu_rm_run(a);
    tu_rm_run(b);
    dg_err err = {{0}};
    nn_train_opts oa = opts(a, DIGITS_FIXTURES "/spec/tinycnn.spec");
    nn_train_opts ob = opts(b, DIGITS_FIXTURES "/spec/tinycnn.spec");
    oa.epochs = ob.epochs = 4;
    oa.folds = ob.folds = 3;
    oa.fold = ob.fold = 2;
    if (nn_train_run(&oa, &err) != 0) fail_msg("%s", err.msg);
    ob.stop_after = 1;
    assert_int_equal(nn_train_run(&ob, &err), 1);
    assert_false(dg_path_exists(TMP "/rb/result.json"));
    nn_ckpt c;
    assert_int_equal(nn_ckpt_load(TMP "/rb/checkpoint.ckpt", &c, &err), 0);
    assert_int_equal(c.epoch, 1);
    nn_ckpt_free(&c);
    /* Without --resume the unfinished run is not overwritten. */
    ob.stop_after = 0;
    assert_int_equal(nn_train_run(&ob, &err), NN_TRAIN_USAGE);
    assert_non_null(strstr(err.msg, "pass --resume"));
    ob.resume = 1;
    /* stop_at counts the run's epochs in all (1 before this call): one more epoch, then nothing more to do. */
    ob.stop_at = 2;
    for (int k = 0; k < 2; k++) {
        assert_int_equal(nn_train_run(&ob, &err), 1);
        assert_int_equal(nn_ckpt_load(TMP "/rb/checkpoint.ckpt", &c, &err), 0);
        assert_int_equal(c.epoch, 2);
        nn_ckpt_free(&c);
    }
    ob.stop_at = 0;
    if (nn_train_run(&ob, &err) != 0) fail_msg("%s", err.msg);
    assert_same_file(a, b, "model.safetensors");
    assert_same_file(a, b, "val_pred.npy");
    assert_same_file(a, b, "val_ids.npy");
    assert_same_file(a, b, "spec.txt");
    cJSON *res = json_file(b, "result.json");
    assert_string_equal(cJSON_GetObjectItem(res, "split")->valuestring, "fold 2/3 split-seed 1");
    cJSON_Delete(res);
    /* metrics.jsonl has the same epochs and numbers except the timings. */
    assert_same_metrics(a, b, 4, NULL);
    /* A checkpoint of another run is refused with a clear message. */
    tu_rm_run(b);
    ob.resume = 0;
    ob.stop_after = 1;
    assert_int_equal(nn_train_run(&ob, &err), 1);
    ob.resume = 1;
    ob.seed = 6;
    ob.stop_after = 0;
    assert_int_equal(nn_train_run(&ob, &err), -1);
    assert_non_null(strstr(err.msg, "checkpoint of a different run ('seed 6;"));
    ob.seed = 5;
    ob.lr = 0.5f;
    assert_int_equal(nn_train_run(&ob, &err), -1);
    assert_non_null(strstr(err.msg, "different model or hyperparameters"));
    assert_non_null(strstr(err.msg, "lr=0.5"));
}

/* kill -9 of a digits-train process in the middle of a run, then --resume: the same bits as an uninterrupted run.
 * The kill must land mid-run, so the test proves it did: the child is killed as soon as its first checkpoint
 * appears, then the run directory must hold no result.json and a checkpoint of 1..KILL_EPOCHS-1 epochs. A child
 * that finished first (or died on its own) is no proof: the test tries again, and fails if no try landed. */
#define KILL_EPOCHS 12
#define KILL_TRIES 5

static void test_kill_and_resume(void **state) {
    (void)state;
    const char *bin = DIGITS_BIN_DIR "/digits-train";
    if (access(bin, X_OK) != 0) tu_skip("kill test: %s not built", bin);
    const char *a = TMP "/kill_full", *b = TMP "/killed";
    char cmd[2048], epochs[16];
    snprintf(epochs, sizeof epochs, "%d", KILL_EPOCHS);
    /* the uninterrupted run, through the same program and options */
    tu_rm_run(a);
    snprintf(cmd, sizeof cmd,
             "%s --data %s --model %s/spec/tiny.spec --run %s --seed 5 --val-frac 0.2 --epochs %s --quiet", bin,
             DATA, DIGITS_FIXTURES, a, epochs);
    assert_int_equal(system(cmd), 0);
    uint32_t killed_at = 0;
    for (int try = 0; try < KILL_TRIES && !killed_at; try++) {
        tu_rm_run(b);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            execl(bin, bin, "--data", DATA, "--model", DIGITS_FIXTURES "/spec/tiny.spec", "--run", b, "--seed", "5",
                  "--val-frac", "0.2", "--epochs", epochs, "--quiet", (char *)NULL);
            _exit(127);
        }
        /* checkpoint.ckpt appears by rename, complete, at the end of epoch 1 */
        int status = 0, exited = 0;
        struct timespec ts = {0, 100000};
        for (long i = 0; i < 600000 && !dg_path_exists(TMP "/killed/checkpoint.ckpt"); i++) {
            if (waitpid(pid, &status, WNOHANG) == pid) {
                exited = 1;
                break;
            }
            nanosleep(&ts, NULL);
        }
        if (!exited) {
            kill(pid, SIGKILL);
            assert_int_equal(waitpid(pid, &status, 0), pid);
        }
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
            fprintf(stderr, "kill test, try %d: the child ended on its own (status %d) before the kill\n", try + 1,
                    status);
            continue;
        }
        if (dg_path_exists(TMP "/killed/result.json")) {
            fprintf(stderr, "kill test, try %d: the run had finished when the kill landed\n", try + 1);
            continue;
        }
        nn_ckpt c;
        dg_err err = {{0}};
        if (nn_ckpt_load(TMP "/killed/checkpoint.ckpt", &c, &err) != 0) fail_msg("%s", err.msg);
        if (c.epoch >= 1 && c.epoch < KILL_EPOCHS)
            killed_at = c.epoch;
        else
            fprintf(stderr, "kill test, try %d: checkpoint of epoch %u\n", try + 1, c.epoch);
        nn_ckpt_free(&c);
    }
    if (!killed_at) fail_msg("no kill of %d landed between epoch 1 and epoch %d", KILL_TRIES, KILL_EPOCHS);
    print_message("kill landed after epoch %u of %d\n", killed_at, KILL_EPOCHS);
    snprintf(cmd, sizeof cmd,
             "%s --data %s --model %s/spec/tiny.spec --run %s --seed 5 --val-frac 0.2 --epochs %s --quiet --resume",
             bin, DATA, DIGITS_FIXTURES, b, epochs);
    assert_int_equal(system(cmd), 0);
    assert_true(dg_path_exists(TMP "/killed/result.json"));
    assert_same_file(a, b, "model.safetensors");
    assert_same_file(a, b, "val_pred.npy");
    cJSON *res = json_file(b, "result.json");
    assert_int_equal((int)num(res, "epochs"), KILL_EPOCHS);
    cJSON_Delete(res);
}

/* On-the-fly augmentation: keyed by (seed, epoch, row), so a resumed run is still bit-identical; and it really
 * changes what the net sees. */
static void test_augment(void **state) {
    (void)state;
    const char *a = TMP "/aug_a", *b = TMP "/aug_b", *c = TMP "/aug_c";
    tu_rm_run(a);
    tu_rm_run(b);
    tu_rm_run(c);
    dg_err err = {{0}};
    nn_train_opts oa = opts(a, DIGITS_FIXTURES "/spec/tiny.spec"), ob = opts(b, DIGITS_FIXTURES "/spec/tiny.spec"),
                  oc = opts(c, DIGITS_FIXTURES "/spec/tiny.spec");
    oa.augment = ob.augment = "kaggle";
    oc.augment = "none";
    oa.epochs = ob.epochs = oc.epochs = 2;
    if (nn_train_run(&oa, &err) != 0) fail_msg("%s", err.msg);
    ob.stop_after = 1;
    assert_int_equal(nn_train_run(&ob, &err), 1);
    ob.stop_after = 0;
    ob.resume = 1;
    if (nn_train_run(&ob, &err) != 0) fail_msg("%s", err.msg);
    if (nn_train_run(&oc, &err) != 0) fail_msg("%s", err.msg);
    assert_same_file(a, b, "model.safetensors");
    assert_same_file(a, b, "val_pred.npy");
    char *sa = tu_slurp(a, "val_pred.npy", NULL), *sc = tu_slurp(c, "val_pred.npy", NULL);
    assert_memory_not_equal(sa + 128, sc + 128, 4 * 10 * (N_ROWS / 5));
    free(sa);
    free(sc);
    char *spec = tu_slurp(a, "spec.txt", NULL);
    assert_non_null(strstr(spec, " augment=kaggle\n"));
    free(spec);
    spec = tu_slurp(c, "spec.txt", NULL);
    assert_non_null(strstr(spec, " augment=none\n"));
    free(spec);
    cJSON *res = json_file(a, "result.json");
    assert_true(num(res, "val_acc") > 0.5);
    cJSON_Delete(res);
}

static void test_early_stop(void **state) {
    (void)state;
    const char *dir = TMP "/es";
    tu_rm_run(dir);
    dg_err err = {{0}};
    char spec[] = "name es\nflatten\ndense units=32\nrelu\ndense units=10\n"
                  "train optimizer=sgd lr=2 batch=16 epochs=12 early_stop=2\n";
    assert_int_equal(dg_write_file_atomic(TMP "/es.spec", spec, strlen(spec), &err), 0);
    nn_train_opts o = opts(dir, TMP "/es.spec");
    if (nn_train_run(&o, &err) != 0) fail_msg("%s", err.msg);
    /* Replay the rule on metrics.jsonl: stop once 2 epochs pass without a lower val_loss; keep the best. */
    char *m = tu_slurp(dir, "metrics.jsonl", NULL);
    int lines = 0, best_epoch = 0, bad = 0, stopped_at = 0;
    double best = INFINITY;
    for (char *line = strtok(m, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        double vl = num(j, "val_loss");
        lines++;
        if (vl < best) {
            best = vl;
            best_epoch = lines;
            bad = 0;
        } else if (++bad == 2 && !stopped_at) {
            stopped_at = lines;
        }
        cJSON_Delete(j);
    }
    free(m);
    assert_int_equal(lines, stopped_at ? stopped_at : 12);
    cJSON *res = json_file(dir, "result.json");
    assert_int_equal((int)num(res, "epochs"), lines);
    assert_float_equal(num(res, "val_loss"), best, 2e-6);
    cJSON_Delete(res);
    char *v;
    assert_int_equal(nn_model_meta(TMP "/es/model.safetensors", "weights_of_epoch", &v, &err), 0);
    assert_int_equal(atoi(v), best_epoch);
    free(v);
}

static void test_diverges(void **state) {
    (void)state;
    const char *dir = TMP "/nan";
    tu_rm_run(dir);
    dg_err err = {{0}};
    /* A deep linear net (leaky slope 1) whose learning rate grows 10x per epoch: it trains, then the weights
     * grow geometrically until the loss overflows. */
    char spec[] = "name nan\nflatten\ndense units=64\nleakyrelu slope=1\ndense units=64\nleakyrelu slope=1\n"
                  "dense units=64\nleakyrelu slope=1\ndense units=10\n"
                  "train optimizer=momentum lr=0.001 schedule=exp gamma=10 batch=16 epochs=8 label_smoothing=0.2\n";
    assert_int_equal(dg_write_file_atomic(TMP "/nan.spec", spec, strlen(spec), &err), 0);
    nn_train_opts o = opts(dir, TMP "/nan.spec");
    assert_int_equal(nn_train_run(&o, &err), -1);
    assert_non_null(strstr(err.msg, "the run diverged (try a lower --lr, in a new --run)"));
    assert_false(dg_path_exists(TMP "/nan/result.json"));
    /* The last good checkpoint stays, and it is the epoch before the one that diverged. */
    nn_ckpt c;
    assert_int_equal(nn_ckpt_load(TMP "/nan/checkpoint.ckpt", &c, &err), 0);
    assert_true(c.epoch >= 1);
    char want[64];
    snprintf(want, sizeof want, "epoch %u ", c.epoch + 1);
    assert_non_null(strstr(err.msg, want));
    snprintf(want, sizeof want, "keeps the checkpoint of epoch %u", c.epoch);
    assert_non_null(strstr(err.msg, want));
    for (size_t i = 0; i < c.n_params; i++) assert_true(isfinite(c.params[i]));
    nn_ckpt_free(&c);
}

/* --tensorboard: each epoch's scalars in an event file, decoded by tests/core/decode_tfevents.py (python3-protobuf)
 * and equal to metrics.jsonl's; a run stopped and resumed adds a second file with the later epochs. And
 * invocation.json records the command, kept from the first call. */
static void test_tensorboard_and_invocation(void **state) {
    (void)state;
    const char *dir = TMP "/tb", *tb = TMP "/tb_events";
    tu_rm_run(dir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tb);
    assert_int_equal(system(cmd), 0);
    nn_train_opts o = opts(dir, DIGITS_FIXTURES "/spec/tiny.spec");
    o.tensorboard = tb;
    o.command = "digits-train --run 'a b'";
    o.stop_after = 2;
    dg_err err = {{0}};
    assert_int_equal(nn_train_run(&o, &err), 1);
    sleep(1); /* the resumed writer's file name differs by its second (the pid is the same) */
    o.stop_after = 0;
    o.resume = 1;
    o.command = "a later command";
    if (nn_train_run(&o, &err) != 0) fail_msg("%s", err.msg);
    cJSON *inv = json_file(dir, "invocation.json");
    assert_string_equal(cJSON_GetObjectItem(inv, "command")->valuestring, "digits-train --run 'a b'");
    assert_true(cJSON_IsString(cJSON_GetObjectItem(inv, "cpu")));
    assert_true(num(inv, "threads") >= 1);
    cJSON_Delete(inv);

    /* the metrics, epoch by epoch */
    double want[5][7];
    char *m = tu_slurp(dir, "metrics.jsonl", NULL);
    int ne = 0;
    static const char *keys[6] = {"train_loss", "val_loss", "train_acc", "val_acc", "lr", "images_per_s"};
    for (char *line = strtok(m, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        assert_true(ne < 4);
        for (int k = 0; k < 6; k++) want[ne][k] = num(j, keys[k]);
        cJSON_Delete(j);
        ne++;
    }
    free(m);
    assert_int_equal(ne, 4);
    /* the event files, in name order (= time order) */
    struct dirent **names;
    int nf = scandir(tb, &names, NULL, alphasort), files = 0, seen = 0;
    for (int f = 0; f < nf; f++) {
        if (strncmp(names[f]->d_name, "events.out.tfevents.", 20) == 0) {
            files++;
            snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/core/decode_tfevents.py '%s/%s'", DIGITS_SOURCE_DIR,
                     tb, names[f]->d_name);
            FILE *p = popen(cmd, "r");
            assert_non_null(p);
            char line[1024];
            while (fgets(line, sizeof line, p)) {
                if (strncmp(line, "version ", 8) == 0) continue;
                char *save = NULL;
                assert_string_equal(strtok_r(line, " \n", &save), "scalars");
                (void)strtok_r(NULL, " \n", &save); /* wall time */
                int step = atoi(strtok_r(NULL, " \n", &save));
                assert_int_equal(step, seen + 1); /* epochs 1, 2 in the first file, 3, 4 in the second */
                static const char *tags[6] = {"loss/train", "loss/val", "accuracy/train", "accuracy/val", "lr",
                                              "images_per_s"};
                for (int k = 0; k < 6; k++) {
                    char *tok = strtok_r(NULL, " \n", &save);
                    assert_non_null(tok);
                    char *eq = strchr(tok, '=');
                    *eq = 0;
                    assert_string_equal(tok, tags[k]);
                    /* metrics.jsonl prints 6 decimals (images/s 1, lr 6 digits); the event holds the float */
                    double tol = k == 5 ? 0.05 + 1e-6 * want[seen][k] : k == 4 ? 1e-5 * want[seen][k] : 6e-7;
                    tu_assert_close(strtod(eq + 1, NULL), want[seen][k], 1e-7, tol);
                }
                seen++;
            }
            assert_int_equal(WEXITSTATUS(pclose(p)), 0);
        }
        free(names[f]);
    }
    free(names);
    assert_int_equal(files, 2);
    assert_int_equal(seen, 4);
}

static void test_usage_errors(void **state) {
    (void)state;
    const char *dir = TMP "/usage";
    dg_err err = {{0}};
    nn_train_opts o = opts(dir, DIGITS_FIXTURES "/spec/tiny.spec");
    o.batch = N_ROWS; /* larger than the 480 training rows */
    assert_int_equal(nn_train_run(&o, &err), NN_TRAIN_USAGE);
    assert_non_null(strstr(err.msg, "batch 600 is larger than the 480 training rows"));
    o = opts(dir, DIGITS_FIXTURES "/spec/tiny.spec");
    o.val_frac = 1.0;
    assert_int_equal(nn_train_run(&o, &err), NN_TRAIN_USAGE);
    assert_non_null(strstr(err.msg, "--val-frac 1: expected a number in (0, 1)"));
    o.val_frac = 0.1;
    o.folds = 5;
    o.fold = 6;
    assert_int_equal(nn_train_run(&o, &err), NN_TRAIN_USAGE);
    assert_non_null(strstr(err.msg, "k in 1..K"));
    o = opts(dir, DIGITS_FIXTURES "/spec/tiny.spec");
    o.augment = "no_such_policy";
    assert_int_equal(nn_train_run(&o, &err), NN_TRAIN_USAGE);
    assert_non_null(strstr(err.msg, "no_such_policy"));
    o = opts(dir, "no_such_model_anywhere");
    assert_int_equal(nn_train_run(&o, &err), -1);
    assert_non_null(strstr(err.msg, "model 'no_such_model_anywhere' not found"));
    o = opts(dir, DIGITS_FIXTURES "/spec/tiny.spec");
    o.data = TMP "/missing.npy";
    assert_int_equal(nn_train_run(&o, &err), -1);
    assert_non_null(strstr(err.msg, "missing.npy"));
    assert_false(dg_path_exists(dir)); /* nothing created on a usage error */
}

/* P(class) of an all-background image under the model of run dir. */
static float blank_prob(const char *dir, int cls) {
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    nn_net *net;
    dg_err err = {{0}};
    if (nn_model_load(path, 1, &net, &err) != 0) fail_msg("%s", err.msg);
    float x[DG_PIXELS] = {0};
    nn_net_forward(net, x, 1, 0, 0, 0);
    float p = nn_net_probs(net)[cls];
    nn_net_free(net);
    return p;
}

/* --mix: rows of a second dataset reach training with their labels, a mixed run resumes bit-identically, and its
 * checkpoint refuses another mix. The mix file's digits are all background labelled 3, which the training set
 * never shows: only mixed rows can teach the model that a blank image is a 3. */
static void test_mix(void **state) {
    (void)state;
    const char *mix = TMP "/mix3.npy", *a = TMP "/mixa", *b = TMP "/mixb", *c = TMP "/mix0";
    dg_dataset_writer w;
    dg_err err = {{0}};
    uint8_t blank[DG_PIXELS] = {0};
    if (dg_dataset_writer_open(&w, mix, 1, &err) != 0) fail_msg("%s", err.msg);
    for (int i = 0; i < 20; i++)
        if (dg_dataset_writer_add(&w, blank, 3, &err) != 0) fail_msg("%s", err.msg);
    if (dg_dataset_writer_commit(&w, &err) != 0) fail_msg("%s", err.msg);
    tu_rm_run(a), tu_rm_run(b), tu_rm_run(c);
    nn_train_opts oa = opts(a, DIGITS_FIXTURES "/spec/tiny.spec"), ob = opts(b, DIGITS_FIXTURES "/spec/tiny.spec");
    nn_train_opts oc = opts(c, DIGITS_FIXTURES "/spec/tiny.spec");
    oa.epochs = ob.epochs = oc.epochs = 2;
    oa.mix = ob.mix = mix;
    oa.mix_frac = ob.mix_frac = 0.25;
    if (nn_train_run(&oa, &err) != 0) fail_msg("%s", err.msg);
    if (nn_train_run(&oc, &err) != 0) fail_msg("%s", err.msg);
    float pa = blank_prob(a, 3), pc = blank_prob(c, 3);
    /* with the mix a blank image is a 3 (P > 1/2: the argmax); without it, it is not */
    if (!(pa > 0.5f && pc < 0.5f)) fail_msg("P(3 | blank) = %g with the mix, %g without", (double)pa, (double)pc);
    ob.stop_after = 1;
    assert_int_equal(nn_train_run(&ob, &err), 1);
    ob.stop_after = 0;
    ob.resume = 1;
    ob.mix_frac = 0.5;
    assert_int_equal(nn_train_run(&ob, &err), -1);
    assert_non_null(strstr(err.msg, "frac 0.5"));
    ob.mix_frac = 0.25;
    if (nn_train_run(&ob, &err) != 0) fail_msg("%s", err.msg);
    assert_same_file(a, b, "model.safetensors");
    /* an unlabelled mix file is a usage error */
    if (dg_dataset_writer_open(&w, TMP "/mixu.npy", 0, &err) != 0 || dg_dataset_writer_add(&w, blank, -1, &err) != 0 ||
        dg_dataset_writer_commit(&w, &err) != 0)
        fail_msg("%s", err.msg);
    tu_rm_run(c);
    oc.mix = TMP "/mixu.npy";
    oc.mix_frac = 0.25;
    assert_int_equal(nn_train_run(&oc, &err), NN_TRAIN_USAGE);
    assert_non_null(strstr(err.msg, "mixu.npy: an unlabelled dataset; --mix needs labelled digits"));
}

/* metrics.jsonl's number `key` of every epoch, into v (n). Returns the epochs. */
static int metric_column(const char *dir, const char *key, double *v, int n) {
    char *m = tu_slurp(dir, "metrics.jsonl", NULL);
    int lines = 0;
    for (char *line = strtok(m, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        assert_non_null(j);
        assert_true(lines < n);
        v[lines++] = num(j, key);
        cJSON_Delete(j);
    }
    free(m);
    return lines;
}

/* The moving average of a run checked by hand. With one step per epoch (batch = the 480 training rows) the live
 * weights after each step are those of the same run without EMA (training continues on the live weights), read
 * from its checkpoint after each epoch. The average of the initial weights and those, with the warm-up
 * d_k = min(D, (1 + k) / (10 + k)) in double, must be the EMA run's: in its checkpoint and in model.safetensors,
 * parameters and batch-norm running statistics alike. D = 0.3 takes the warm-up for k = 1, 2 and D after. */
#define HAND_STEPS 4
#define HAND_D 0.3

static void test_ema_by_hand(void **state) {
    (void)state;
    const char *a = TMP "/ema_live", *b = TMP "/ema_on";
    tu_rm_run(a);
    tu_rm_run(b);
    dg_err err = {{0}};
    nn_train_opts oa = opts(a, DIGITS_FIXTURES "/spec/tiny.spec"), ob = opts(b, DIGITS_FIXTURES "/spec/tiny.spec");
    oa.batch = ob.batch = N_ROWS - N_ROWS / 5;
    oa.epochs = ob.epochs = HAND_STEPS;
    ob.ema = (float)HAND_D;
    /* the initial weights: where the average starts */
    nn_spec spec;
    if (nn_train_spec(&spec, &oa, &err) != 0) fail_msg("%s", err.msg);
    nn_net *net;
    if (nn_net_create(&net, &spec, 1, &err) != 0) fail_msg("%s", err.msg);
    nn_net_init(net, oa.seed);
    size_t np = nn_net_param_count(net), nb = nn_net_buffer_count(net);
    assert_true(nb > 0); /* tiny.spec has batch norm: its running statistics are averaged too */
    double *want = malloc((np + nb) * sizeof *want);
    float *live = malloc((np + nb) * sizeof *live);
    assert_non_null(want);
    assert_non_null(live);
    for (size_t i = 0; i < np; i++) want[i] = nn_net_params(net)[i];
    for (size_t i = 0; i < nb; i++) want[np + i] = nn_net_buffers(net)[i];
    nn_net_free(net);
    nn_spec_free(&spec);
    /* the run without EMA, one epoch (= one step) at a time */
    oa.resume = 1;
    for (int k = 1; k <= HAND_STEPS; k++) {
        oa.stop_at = k;
        assert_int_equal(nn_train_run(&oa, &err), k < HAND_STEPS ? 1 : 0);
        nn_ckpt c;
        if (nn_ckpt_load(TMP "/ema_live/checkpoint.ckpt", &c, &err) != 0) fail_msg("%s", err.msg);
        assert_int_equal(c.epoch, k);
        assert_int_equal(c.opt_t, k);
        assert_null(c.ema); /* EMA off: no "ema" section */
        double d = fmin(HAND_D, (1.0 + k) / (10.0 + k));
        for (size_t i = 0; i < np; i++) want[i] = d * want[i] + (1 - d) * c.params[i];
        for (size_t i = 0; i < nb; i++) want[np + i] = d * want[np + i] + (1 - d) * c.buffers[i];
        memcpy(live, c.params, np * sizeof(float));
        memcpy(live + np, c.buffers, nb * sizeof(float));
        nn_ckpt_free(&c);
    }
    /* the check can tell: the average is far (against the tolerance below) from the last live weights, in the
     * parameters and the statistics */
    double dp = 0, db = 0;
    for (size_t i = 0; i < np; i++) dp = fmax(dp, fabs(want[i] - live[i]));
    for (size_t i = 0; i < nb; i++) db = fmax(db, fabs(want[np + i] - live[np + i]));
    if (!(dp > 1e-4 && db > 1e-4)) fail_msg("average and live weights differ by only %g, %g", dp, db);
    /* the run with EMA, uninterrupted */
    if (nn_train_run(&ob, &err) != 0) fail_msg("%s", err.msg);
    nn_ckpt c;
    if (nn_ckpt_load(TMP "/ema_on/checkpoint.ckpt", &c, &err) != 0) fail_msg("%s", err.msg);
    tu_assert_exact(c.ema_decay, (float)HAND_D);
    assert_non_null(c.ema);
    for (size_t i = 0; i < np + nb; i++) tu_assert_close(c.ema[i], want[i], 1e-5, 1e-6);
    /* training went on on the live weights: the same bits as the run without EMA */
    assert_memory_equal(c.params, live, np * sizeof(float));
    assert_memory_equal(c.buffers, live + np, nb * sizeof(float));
    nn_ckpt_free(&c);
    /* the exported model is the average */
    if (nn_model_load(TMP "/ema_on/model.safetensors", 8, &net, &err) != 0) fail_msg("%s", err.msg);
    for (size_t i = 0; i < np; i++) tu_assert_close(nn_net_params(net)[i], want[i], 1e-5, 1e-6);
    for (size_t i = 0; i < nb; i++) tu_assert_close(nn_net_buffers(net)[i], want[np + i], 1e-5, 1e-6);
    char *v;
    assert_int_equal(nn_model_meta(TMP "/ema_on/model.safetensors", "ema", &v, &err), 0);
    assert_string_equal(v, "0.3");
    free(v);
    /* val_pred.npy is that model's */
    dg_npy_file ids, pred;
    assert_int_equal(dg_npy_open(&ids, TMP "/ema_on/val_ids.npy", 8, &err), 0);
    assert_int_equal(dg_npy_open(&pred, TMP "/ema_on/val_pred.npy", 4, &err), 0);
    dg_dataset ds;
    assert_int_equal(dg_dataset_open(&ds, DATA, &err), 0);
    const int64_t *id = ids.data;
    float x[8 * DG_PIXELS];
    for (int i = 0; i < 8; i++)
        for (int p = 0; p < DG_PIXELS; p++) x[i * DG_PIXELS + p] = dg_dataset_image(&ds, (size_t)id[i])[p] / 255.0f;
    nn_net_forward(net, x, 8, 0, 0, 0);
    for (int i = 0; i < 80; i++) tu_assert_close(nn_net_probs(net)[i], ((const float *)pred.data)[i], 0, 1e-6);
    nn_net_free(net);
    /* val_pred_live.npy: the live weights' probabilities, the same bits as the run without EMA's val_pred.npy (which
     * writes no val_pred_live.npy) */
    dg_npy_file live_pred, plain_pred;
    assert_int_equal(dg_npy_open(&live_pred, TMP "/ema_on/val_pred_live.npy", 4, &err), 0);
    assert_int_equal(dg_npy_open(&plain_pred, TMP "/ema_live/val_pred.npy", 4, &err), 0);
    assert_int_equal(live_pred.h.shape[0], pred.h.shape[0]);
    assert_int_equal(live_pred.h.shape[1], 10);
    assert_memory_equal(live_pred.data, plain_pred.data, pred.h.shape[0] * 10 * sizeof(float));
    assert_true(memcmp(live_pred.data, pred.data, pred.h.shape[0] * 10 * sizeof(float)) != 0);
    dg_npy_close(&live_pred);
    dg_npy_close(&plain_pred);
    assert_int_equal(access(TMP "/ema_live/val_pred_live.npy", F_OK), -1);
    dg_npy_close(&ids);
    dg_npy_close(&pred);
    dg_dataset_close(&ds);
    /* metrics.jsonl: val_* are the average's, val_*_live the live weights' (= the run without EMA's val_*); the
     * result is the last epoch's average */
    double va[HAND_STEPS], vb[HAND_STEPS], la[HAND_STEPS], lb[HAND_STEPS], ea[HAND_STEPS];
    assert_int_equal(metric_column(a, "val_loss", va, HAND_STEPS), HAND_STEPS);
    assert_int_equal(metric_column(b, "val_loss_live", vb, HAND_STEPS), HAND_STEPS);
    assert_int_equal(metric_column(a, "val_acc", la, HAND_STEPS), HAND_STEPS);
    assert_int_equal(metric_column(b, "val_acc_live", lb, HAND_STEPS), HAND_STEPS);
    assert_int_equal(metric_column(b, "val_loss", ea, HAND_STEPS), HAND_STEPS);
    for (int k = 0; k < HAND_STEPS; k++) {
        tu_assert_exact(vb[k], va[k]);
        tu_assert_exact(lb[k], la[k]);
    }
    assert_true(ea[HAND_STEPS - 1] != va[HAND_STEPS - 1]);
    cJSON *res = json_file(b, "result.json");
    tu_assert_exact(num(res, "val_loss"), ea[HAND_STEPS - 1]);
    cJSON_Delete(res);
    free(want);
    free(live);
}

/* A run with EMA stopped (after 1, then 2 epochs in all) and resumed: the same bits as one that never stopped.
 * A checkpoint's EMA setting that differs from the run's is refused, naming both; a run without EMA writes no
 * "ema" section and no ema= in its spec, so its checkpoint is in the layout of before EMA existed. */
static void test_ema_resume(void **state) {
    (void)state;
    const char *a = TMP "/ema_ra", *b = TMP "/ema_rb";
    tu_rm_run(a);
    tu_rm_run(b);
    dg_err err = {{0}};
    nn_train_opts oa = opts(a, DIGITS_FIXTURES "/spec/tinycnn.spec");
    nn_train_opts ob = opts(b, DIGITS_FIXTURES "/spec/tinycnn.spec");
    oa.epochs = ob.epochs = 4;
    oa.ema = ob.ema = 0.9f;
    if (nn_train_run(&oa, &err) != 0) fail_msg("%s", err.msg);
    ob.stop_after = 1;
    assert_int_equal(nn_train_run(&ob, &err), 1);
    ob.stop_after = 0;
    ob.resume = 1;
    /* another decay, or EMA off, is refused */
    ob.ema = 0.95f;
    assert_int_equal(nn_train_run(&ob, &err), -1);
    assert_non_null(strstr(err.msg, "checkpoint of a run with ema=0.9, this run has ema=0.95"));
    ob.ema = 0;
    assert_int_equal(nn_train_run(&ob, &err), -1);
    assert_non_null(strstr(err.msg, "checkpoint of a run with ema=0.9, this run has ema=0 "));
    ob.ema = 0.9f;
    ob.stop_at = 2;
    assert_int_equal(nn_train_run(&ob, &err), 1);
    nn_ckpt c;
    assert_int_equal(nn_ckpt_load(TMP "/ema_rb/checkpoint.ckpt", &c, &err), 0);
    assert_int_equal(c.epoch, 2);
    tu_assert_exact(c.ema_decay, 0.9f);
    nn_ckpt_free(&c);
    ob.stop_at = 0;
    if (nn_train_run(&ob, &err) != 0) fail_msg("%s", err.msg);
    assert_same_file(a, b, "model.safetensors");
    assert_same_file(a, b, "val_pred.npy");
    assert_same_file(a, b, "spec.txt");
    /* the checkpoints (which differ in their timings): the same live weights and the same average */
    nn_ckpt ca;
    assert_int_equal(nn_ckpt_load(TMP "/ema_ra/checkpoint.ckpt", &ca, &err), 0);
    assert_int_equal(nn_ckpt_load(TMP "/ema_rb/checkpoint.ckpt", &c, &err), 0);
    assert_int_equal(ca.n_params + ca.n_buffers, c.n_params + c.n_buffers);
    assert_memory_equal(ca.params, c.params, c.n_params * sizeof(float));
    assert_memory_equal(ca.ema, c.ema, (c.n_params + c.n_buffers) * sizeof(float));
    nn_ckpt_free(&ca);
    nn_ckpt_free(&c);
    char *spec = tu_slurp(a, "spec.txt", NULL);
    assert_non_null(strstr(spec, " ema=0.9\n"));
    free(spec);
    /* metrics.jsonl: the same numbers, the live figures included, except the timings */
    assert_same_metrics(a, b, 4, "\"val_acc_live\":");
    /* an EMA-less checkpoint (the layout from before EMA) refuses a run with EMA, and resumes one without */
    tu_rm_run(b);
    ob = opts(b, DIGITS_FIXTURES "/spec/tinycnn.spec");
    ob.epochs = 2;
    ob.stop_after = 1;
    assert_int_equal(nn_train_run(&ob, &err), 1);
    assert_int_equal(nn_ckpt_load(TMP "/ema_rb/checkpoint.ckpt", &c, &err), 0);
    assert_null(c.ema);
    tu_assert_exact(c.ema_decay, 0);
    assert_null(strstr(c.spec_text, "ema"));
    nn_ckpt_free(&c);
    ob.stop_after = 0;
    ob.resume = 1;
    ob.ema = 0.9f;
    assert_int_equal(nn_train_run(&ob, &err), -1);
    assert_non_null(strstr(err.msg, "checkpoint of a run with ema=0, this run has ema=0.9"));
    ob.ema = -1;
    if (nn_train_run(&ob, &err) != 0) fail_msg("%s", err.msg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_run),    cmocka_unit_test(test_resume_identical),
        cmocka_unit_test(test_kill_and_resume), cmocka_unit_test(test_augment), cmocka_unit_test(test_early_stop),
        cmocka_unit_test(test_diverges),    cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_tensorboard_and_invocation), cmocka_unit_test(test_mix),
        cmocka_unit_test(test_ema_by_hand), cmocka_unit_test(test_ema_resume),
    };
    return tu_exit(cmocka_run_group_tests(tests, setup, NULL));
}
