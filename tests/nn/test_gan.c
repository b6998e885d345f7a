/* Tests for nn/gan: a tiny conditional GAN (tests/fixtures/gan) trains on a synthetic dataset with finite losses
 * that change and both nets' parameters moved off their initialization; a run stopped after one epoch and resumed
 * writes a checkpoint byte-identical to an uninterrupted run's, and so does a run stopped by its deadline after
 * every step; sampling is reproducible from the seed and gives
 * the labels asked for; bad inputs fail with a clear message and leave no output. */
#include "testutil.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include "nn/checkpoint.h"
#include "nn/gan.h"
#include "nn/net.h"
#include "nn/spec.h"

#define TMP DIGITS_TEST_TMP "/gan"
#define G_SPEC DIGITS_FIXTURES "/gan/tiny-g.spec"
#define D_SPEC DIGITS_FIXTURES "/gan/tiny-d.spec"
#define DATA TMP "/blocks.npy"

/* tu_slurp, kept out of line (inlined, GCC 12 takes its result for a pointer to its local). */
__attribute__((noinline)) static char *slurp(const char *dir, const char *name, size_t *n) {
    return tu_slurp(dir, name, n);
}

static nn_gan_train_opts train_opts(const char *run) {
    nn_gan_train_opts o = {0};
    o.data = DATA, o.run = run, o.gen = G_SPEC, o.disc = D_SPEC, o.seed = 3;
    return o;
}

static void train_ok(const nn_gan_train_opts *o) {
    dg_err err = {{0}};
    if (nn_gan_train(o, &err) != 0) fail_msg("nn_gan_train: %s", err.msg);
}

static int setup(void **state) {
    (void)state;
    if (system("rm -rf " TMP " && mkdir -p " TMP) != 0) return -1;
    tu_blocks_dataset(DATA, 64, 11, 1); /* 64 rows, batch 16: 4 steps an epoch */
    return 0;
}

/* One number of a metrics.jsonl line: "key":value. */
static double metric(const char *line, const char *key) {
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(line, k);
    if (!p) fail_msg("no %s in %s", key, line);
    return strtod(p + strlen(k), NULL);
}

/* Parameters of a net made from spec file and initialized as nn_gan_train does (seed), compared with a span of a
 * checkpoint's parameters: the count of values that differ. */
static size_t moved(const char *spec_path, uint64_t seed, const float *ckpt_params, size_t *n) {
    nn_spec s;
    nn_net *net;
    dg_err err = {{0}};
    if (nn_spec_load(&s, spec_path, &err) != 0 || nn_net_create(&net, &s, 16, &err) != 0) fail_msg("%s", err.msg);
    nn_net_init(net, seed);
    *n = nn_net_param_count(net);
    size_t diff = 0;
    for (size_t i = 0; i < *n; i++) diff += nn_net_params(net)[i] != ckpt_params[i];
    nn_net_free(net);
    nn_spec_free(&s);
    return diff;
}

static void test_trains(void **state) {
    (void)state;
    nn_gan_train_opts o = train_opts(TMP "/a");
    train_ok(&o);
    char *m = slurp(TMP "/a", "metrics.jsonl", NULL);
    char *l2 = strchr(m, '\n');
    assert_non_null(l2);
    l2++;
    assert_non_null(strchr(l2, '\n'));
    assert_string_equal(strchr(l2, '\n') + 1, ""); /* two lines, one per epoch */
    const char *keys[] = {"loss_d", "loss_g", "d_real", "d_fake"};
    for (int k = 0; k < 4; k++) {
        double a = metric(m, keys[k]), b = metric(l2, keys[k]);
        assert_true(isfinite(a) && isfinite(b));
        if (a == b) fail_msg("%s did not change between epochs: %g", keys[k], a);
    }
    /* D's mean probabilities lie in (0, 1); BCE of a logit is > 0; D's loss is the sum of two */
    assert_true(metric(m, "d_real") > 0 && metric(m, "d_real") < 1 && metric(m, "d_fake") > 0);
    assert_true(metric(m, "loss_d") > 0 && metric(m, "loss_g") > 0);
    assert_int_equal((int)metric(l2, "epoch"), 2);
    assert_true(metric(l2, "images_per_s") > 0);
    free(m);
    /* both nets trained: their parameters left the initialization (G seed 3, D seed 4) */
    nn_ckpt c;
    dg_err err = {{0}};
    if (nn_ckpt_load(TMP "/a/gan.ckpt", &c, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(c.epoch, 2);
    assert_int_equal(c.opt_t, 8); /* 2 epochs of 4 steps */
    size_t ng, nd;
    size_t dg = moved(G_SPEC, 3, c.params, &ng);
    size_t dd = moved(D_SPEC, 4, c.params + ng, &nd);
    assert_int_equal(c.n_params, ng + nd);
    if (dg < ng / 2 || dd < nd / 2) fail_msg("G moved %zu of %zu parameters, D %zu of %zu", dg, ng, dd, nd);
    nn_ckpt_free(&c);
    /* a grid per epoch: a PNG of 302x302 (10 cells of 28 px, gaps of 2) */
    for (int e = 1; e <= 2; e++) {
        char name[64];
        snprintf(name, sizeof name, "grid-epoch-%03d.png", e);
        size_t n;
        unsigned char *png = (unsigned char *)slurp(TMP "/a", name, &n);
        assert_true(n > 33);
        assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
        assert_int_equal((png[16] << 24) | (png[17] << 16) | (png[18] << 8) | png[19], 302);
        assert_int_equal((png[20] << 24) | (png[21] << 16) | (png[22] << 8) | png[23], 302);
        free(png);
    }
}

static void test_resume_bit_identical(void **state) {
    (void)state;
    /* "a" is the uninterrupted 2-epoch run of test_trains */
    nn_gan_train_opts o = train_opts(TMP "/b");
    o.stop_at = 1;
    train_ok(&o);
    size_t n1;
    char *one = slurp(TMP "/b", "gan.ckpt", &n1);
    o.stop_at = 0;
    o.resume = 1;
    train_ok(&o);
    size_t na, nb;
    char *a = slurp(TMP "/a", "gan.ckpt", &na), *b = slurp(TMP "/b", "gan.ckpt", &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    assert_true(n1 == na && memcmp(one, a, na) != 0); /* the resume did train the second epoch */
    char *ga = slurp(TMP "/a", "grid-epoch-002.png", &na), *gb = slurp(TMP "/b", "grid-epoch-002.png", &nb);
    assert_int_equal(na, nb);
    assert_memory_equal(ga, gb, na);
    char *m = slurp(TMP "/b", "metrics.jsonl", NULL);
    assert_non_null(strstr(m, "{\"epoch\":1,"));
    assert_non_null(strstr(m, "{\"epoch\":2,"));
    free(one), free(a), free(b), free(ga), free(gb), free(m);
    /* a second resume of a finished run does nothing and changes nothing */
    train_ok(&o);
    char *again = slurp(TMP "/b", "gan.ckpt", &nb);
    a = slurp(TMP "/a", "gan.ckpt", &na);
    assert_memory_equal(a, again, na);
    free(a), free(again);
}

/* A deadline already passed (1 s after boot on the monotonic clock) stops training after one step, mid-epoch: the
 * checkpoint holds that step (0 whole epochs, 1 optimizer step) and samples; resumed with the same deadline again
 * and again, the run advances one step at a time, across the epoch boundary, and ends byte-identical to the
 * uninterrupted run "a". */
static void test_deadline(void **state) {
    (void)state;
    nn_gan_train_opts o = train_opts(TMP "/d");
    o.deadline = 1.0;
    train_ok(&o);
    nn_ckpt c;
    dg_err err = {{0}};
    if (nn_ckpt_load(TMP "/d/gan.ckpt", &c, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(c.epoch, 0);
    assert_int_equal(c.opt_t, 1);
    nn_ckpt_free(&c);
    char *m = slurp(TMP "/d", "metrics.jsonl", NULL);
    assert_non_null(strstr(m, "{\"epoch\":1,"));
    assert_non_null(strstr(m, "\"steps\":1,"));
    assert_non_null(strstr(m, "\"partial\":true}\n"));
    assert_string_equal(strchr(m, '\n') + 1, ""); /* one line */
    free(m);
    assert_true(dg_path_exists(TMP "/d/grid-epoch-001.png"));
    nn_gan_sample_opts s = {.run = TMP "/d", .out = TMP "/d/s.npy", .label = 3, .n = 5, .seed = 1};
    if (nn_gan_sample(&s, &err) != 0) fail_msg("%s", err.msg);
    o.resume = 1;
    int runs = 1;
    for (;; runs++) {
        if (nn_ckpt_load(TMP "/d/gan.ckpt", &c, &err) != 0) fail_msg("%s", err.msg);
        uint64_t t = c.opt_t;
        nn_ckpt_free(&c);
        if (t == 8) break;
        assert_int_equal(t, runs); /* one step per run */
        train_ok(&o);
    }
    assert_int_equal(runs, 8);
    size_t na, nd;
    char *a = slurp(TMP "/a", "gan.ckpt", &na), *d = slurp(TMP "/d", "gan.ckpt", &nd);
    assert_int_equal(na, nd);
    assert_memory_equal(a, d, na);
    free(a), free(d);
    m = slurp(TMP "/d", "metrics.jsonl", NULL);
    char *l2 = strchr(m, '\n');
    assert_non_null(l2);
    assert_null(strstr(m, "partial")); /* both epochs whole; each line covers the steps of its last run */
    assert_int_equal((int)metric(m, "steps"), 1);
    assert_int_equal((int)metric(l2 + 1, "epoch"), 2);
    assert_string_equal(strchr(l2 + 1, '\n') + 1, "");
    free(m);
}

static void test_sample(void **state) {
    (void)state;
    nn_gan_sample_opts s = {.run = TMP "/a", .out = TMP "/s1.npy", .grid = TMP "/s1.png", .label = -1, .n = 25,
                            .seed = 5};
    dg_err err = {{0}};
    if (nn_gan_sample(&s, &err) != 0) fail_msg("%s", err.msg);
    s.out = TMP "/s2.npy", s.grid = NULL;
    if (nn_gan_sample(&s, &err) != 0) fail_msg("%s", err.msg);
    s.out = TMP "/s3.npy", s.seed = 6;
    if (nn_gan_sample(&s, &err) != 0) fail_msg("%s", err.msg);
    s.out = TMP "/s4.npy", s.seed = 5, s.label = 7, s.run = TMP "/a/gan.ckpt"; /* the checkpoint file works too */
    if (nn_gan_sample(&s, &err) != 0) fail_msg("%s", err.msg);
    size_t n1, n2, n3;
    char *f1 = slurp(TMP, "s1.npy", &n1), *f2 = slurp(TMP, "s2.npy", &n2), *f3 = slurp(TMP, "s3.npy", &n3);
    assert_int_equal(n1, n2);
    assert_memory_equal(f1, f2, n1); /* same seed: same bytes */
    assert_int_equal(n1, n3);
    assert_true(memcmp(f1, f3, n1) != 0); /* another seed: other digits */
    free(f1), free(f2), free(f3);
    dg_dataset d;
    if (dg_dataset_open(&d, TMP "/s1.npy", &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(d.n, 25);
    size_t distinct = 0;
    for (size_t i = 0; i < d.n; i++) {
        assert_int_equal(dg_dataset_label(&d, i), (int)(i % 10));
        distinct += i > 0 && memcmp(dg_dataset_image(&d, i), dg_dataset_image(&d, i - 1), DG_PIXELS) != 0;
    }
    assert_int_equal(distinct, 24);
    dg_dataset_close(&d);
    if (dg_dataset_open(&d, TMP "/s4.npy", &err) != 0) fail_msg("%s", err.msg);
    for (size_t i = 0; i < d.n; i++) assert_int_equal(dg_dataset_label(&d, i), 7);
    dg_dataset_close(&d);
    assert_true(dg_path_exists(TMP "/s1.png"));
}

/* A failing call: the message holds want, and none of the outputs exists. */
static void sample_fails(nn_gan_sample_opts s, const char *want) {
    dg_err err = {{0}};
    unlink(s.out);
    if (s.grid) unlink(s.grid);
    assert_int_equal(nn_gan_sample(&s, &err), -1);
    if (!strstr(err.msg, want)) fail_msg("message '%s' lacks '%s'", err.msg, want);
    assert_false(dg_path_exists(s.out));
    if (s.grid) assert_false(dg_path_exists(s.grid));
}

static void test_bad_input(void **state) {
    (void)state;
    nn_gan_sample_opts s = {.run = TMP "/a", .out = TMP "/bad.npy", .grid = TMP "/bad.png", .label = 10, .n = 5};
    sample_fails(s, "label 10: expected 0..9 or all");
    s.label = 1, s.n = 0;
    sample_fails(s, "n 0: expected 1..");
    s.n = 5;
    /* a checkpoint cut in half */
    size_t n;
    char *ck = slurp(TMP "/a", "gan.ckpt", &n);
    dg_err err = {{0}};
    if (dg_mkdirs(TMP "/cut", &err) != 0 || dg_write_file_atomic(TMP "/cut/gan.ckpt", ck, n / 2, &err) != 0)
        fail_msg("%s", err.msg);
    free(ck);
    s.run = TMP "/cut";
    sample_fails(s, "truncated");
    /* a classifier's run directory, and a classifier's checkpoint file given as the run */
    nn_ckpt c = {0};
    c.spec_text = "input 1x28x28\ndense units=10\n";
    if (dg_mkdirs(TMP "/clf", &err) != 0 || nn_ckpt_save(TMP "/clf/checkpoint.ckpt", &c, &err) != 0)
        fail_msg("%s", err.msg);
    s.run = TMP "/clf";
    sample_fails(s, "a digits-train run (checkpoint.ckpt), not a digits-gan run");
    s.run = TMP "/clf/checkpoint.ckpt";
    sample_fails(s, "not a digits-gan checkpoint");

    /* training: a classifier spec where a generator is expected, the reverse, an existing run without --resume */
    nn_gan_train_opts o = train_opts(TMP "/t");
    o.gen = DIGITS_FIXTURES "/spec/tiny.spec";
    assert_int_equal(nn_gan_train(&o, &err), -1);
    assert_non_null(strstr(err.msg, "not a generator ('output image' expected, the spec's output is classes)"));
    o.gen = G_SPEC, o.disc = G_SPEC;
    assert_int_equal(nn_gan_train(&o, &err), -1);
    assert_non_null(strstr(err.msg, "not a discriminator ('output logit' expected, the spec's output is image)"));
    assert_false(dg_path_exists(TMP "/t"));
    o = train_opts(TMP "/a");
    assert_int_equal(nn_gan_train(&o, &err), -1);
    assert_non_null(strstr(err.msg, "already holds a run (use --resume"));
    /* resuming with another seed is refused by the checkpoint's run key */
    o.resume = 1, o.seed = 4;
    assert_int_equal(nn_gan_train(&o, &err), -1);
    assert_non_null(strstr(err.msg, "seed"));
}

/* More images than the disk holds: refused before anything is written. */
/* More images than the disk holds are refused before anything is written. The output goes to /dev/shm (a tmpfs of
 * half the memory: 12 GB on the 24 GB machines, so -n stays below the largest -n that sample accepts, which a
 * build directory on a large disk would not); a broken check would fill it, so its directory is removed after. */
static void test_disk_check(void **state) {
    (void)state;
    char dir[64], out[96], grid[96];
    snprintf(dir, sizeof dir, "/dev/shm/digits-test-gan-%d", (int)getpid());
    snprintf(out, sizeof out, "%s/big.npy", dir);
    snprintf(grid, sizeof grid, "%s/big.png", dir);
    if (mkdir(dir, 0755) != 0) fail_msg("mkdir %s failed", dir);
    struct statvfs sv;
    if (statvfs(dir, &sv) != 0) fail_msg("statvfs %s failed", dir);
    double avail = (double)sv.f_bavail * (double)sv.f_frsize;
    long n = (long)(avail / (DG_PIXELS + 1)) + 1000;
    if (n > NN_GAN_MAX_SAMPLES) {
        rmdir(dir);
        fail_msg("/dev/shm has %.0f GB free: more than the largest -n fills", avail / 1e9);
    }
    nn_gan_sample_opts s = {.run = TMP "/a", .out = out, .grid = grid, .label = -1, .n = n};
    sample_fails(s, "images need");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trains),
        cmocka_unit_test(test_resume_bit_identical),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_sample),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_disk_check),
    };
    return tu_exit(cmocka_run_group_tests(tests, setup, NULL));
}
