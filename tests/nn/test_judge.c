/* Tests for nn/judge: the Fréchet distance against closed forms (diagonal covariances: sum (sqrt a - sqrt b)^2 +
 * |mu1 - mu2|^2; a 64-dimensional non-diagonal, non-commuting case made of 2x2 blocks under a random rotation,
 * where Tr (S1 S2)^(1/2) = sum over blocks of sqrt(tr(A B) + 2 sqrt(det A det B))), FID(x, x) = 0 to rounding
 * (also with fewer rows than dimensions, a singular covariance), the Gaussian fit against a two-pass covariance,
 * mean pairwise distances on a 3-4-5 triangle, conditional accuracy on a hand-built case, diversity 0 for one
 * image repeated and 1 for the real digits themselves, the penultimate features (logits = final dense layer of the
 * features), and the stage end to end on a small trained classifier, with its refusals. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>

#include "core/dg_cli.h"
#include "core/dg_dataset.h"
#include "core/dg_rng.h"
#include "nn/checkpoint.h"
#include "nn/judge.h"
#include "nn/net.h"
#include "nn/spec.h"
#include "nn/split.h"
#include "nn/train.h"

#define TMP DIGITS_TEST_TMP "/judge"
#define TINY DIGITS_FIXTURES "/spec/tiny.spec"
#define DATA TMP "/blocks.npy"
#define RUN TMP "/clf"
#define NROWS 400

static double unif(dg_rng *r) { return (double)dg_rng_below(r, 1u << 30) / (double)(1u << 30); }
static void fill(double *x, size_t n, int d, uint32_t key);

/* ---- the Fréchet distance ---- */

static void test_frechet_diagonal(void **state) {
    (void)state;
    enum { D = 6 };
    double a[D] = {1, 4, 0.25, 9, 2, 0}, b[D] = {4, 1, 0.25, 1, 3, 5}, mu1[D], mu2[D], s1[D * D] = {0}, s2[D * D] = {0};
    double want = 0;
    for (int i = 0; i < D; i++) {
        mu1[i] = 0.5 * i, mu2[i] = -0.25 * i * i;
        s1[i * D + i] = a[i], s2[i * D + i] = b[i];
        want += (sqrt(a[i]) - sqrt(b[i])) * (sqrt(a[i]) - sqrt(b[i])) + (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]);
    }
    double fid;
    dg_err err = {{0}};
    assert_int_equal(nn_frechet(&fid, mu1, s1, mu2, s2, D, &err), 0);
    tu_assert_close(fid, want, 1e-12, 1e-12);
}

/* q (d, d) row-major: a random orthogonal matrix (Gram-Schmidt, twice, of uniform rows). */
static void random_rotation(double *q, int d, uint64_t seed) {
    dg_rng r = dg_rng_make(seed, DG_RNG_USER, 7, 0);
    for (int i = 0; i < d * d; i++) q[i] = unif(&r) - 0.5;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < d; i++) {
            for (int j = 0; j < i; j++) {
                double dot = 0;
                for (int k = 0; k < d; k++) dot += q[i * d + k] * q[j * d + k];
                for (int k = 0; k < d; k++) q[i * d + k] -= dot * q[j * d + k];
            }
            double nrm = 0;
            for (int k = 0; k < d; k++) nrm += q[i * d + k] * q[i * d + k];
            for (int k = 0; k < d; k++) q[i * d + k] /= sqrt(nrm);
        }
}

/* out = q^T blk q, blk block-diagonal with 2x2 blocks */
static void rotate(double *out, const double *q, const double *blk, int d) {
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++) {
            long double s = 0;
            for (int k = 0; k < d; k++)
                for (int l = (k & ~1); l < (k & ~1) + 2; l++) s += (long double)q[k * d + i] * blk[k * d + l] * q[l * d + j];
            out[i * d + j] = (double)s;
        }
}

static void test_frechet_rotated(void **state) {
    (void)state;
    enum { D = 64 };
    static double q[D * D], b1[D * D], b2[D * D], s1[D * D], s2[D * D];
    double mu1[D], mu2[D], want_tr = 0, want_sqrt = 0, dmu = 0;
    random_rotation(q, D, 5);
    dg_rng r = dg_rng_make(9, DG_RNG_USER, 8, 0);
    for (int k = 0; k < D; k += 2) {
        /* A = R(t) diag(p, p2) R(t)^T, B = R(u) diag(v, v2) R(u)^T with t != u: they do not commute. The last block
         * of A is singular (p2 = 0), a rank-deficient covariance. */
        double t = 3.1 * unif(&r), u = 3.1 * unif(&r), p = 0.1 + 3 * unif(&r), p2 = k == D - 2 ? 0 : 0.1 + unif(&r),
               v = 0.1 + 2 * unif(&r), v2 = 0.1 + 5 * unif(&r);
        double A[4] = {p * cos(t) * cos(t) + p2 * sin(t) * sin(t), (p - p2) * cos(t) * sin(t), 0,
                       p * sin(t) * sin(t) + p2 * cos(t) * cos(t)};
        double B[4] = {v * cos(u) * cos(u) + v2 * sin(u) * sin(u), (v - v2) * cos(u) * sin(u), 0,
                       v * sin(u) * sin(u) + v2 * cos(u) * cos(u)};
        A[2] = A[1], B[2] = B[1];
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) b1[(k + i) * D + k + j] = A[i * 2 + j], b2[(k + i) * D + k + j] = B[i * 2 + j];
        double trab = A[0] * B[0] + A[1] * B[2] + A[2] * B[1] + A[3] * B[3];
        double det = (A[0] * A[3] - A[1] * A[2]) * (B[0] * B[3] - B[1] * B[2]);
        want_sqrt += sqrt(trab + 2 * sqrt(det > 0 ? det : 0));
        want_tr += A[0] + A[3] + B[0] + B[3];
    }
    for (int i = 0; i < D; i++) {
        mu1[i] = unif(&r), mu2[i] = unif(&r);
        dmu += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]);
    }
    rotate(s1, q, b1, D);
    rotate(s2, q, b2, D);
    double fid, want = dmu + want_tr - 2 * want_sqrt;
    dg_err err = {{0}};
    assert_int_equal(nn_frechet(&fid, mu1, s1, mu2, s2, D, &err), 0);
    tu_assert_close(fid, want, 1e-9, 1e-9);
    /* and the same rotated pair is far from its diagonal-only reading */
    assert_true(fabs(want) > 1.0);
}

static void test_gauss_fit(void **state) {
    (void)state;
    enum { N = 37, D = 5 };
    double x[N * D], mu[D], cov[D * D];
    dg_rng r = dg_rng_make(2, DG_RNG_USER, 9, 0);
    for (int i = 0; i < N * D; i++) x[i] = 3 * unif(&r) + (i % D);
    dg_err err = {{0}};
    assert_int_equal(nn_gauss_fit(mu, cov, x, N, D, &err), 0);
    for (int j = 0; j < D; j++) {
        long double m = 0;
        for (int i = 0; i < N; i++) m += x[i * D + j];
        m /= N;
        tu_assert_close(mu[j], (double)m, 1e-13, 0);
    }
    for (int a = 0; a < D; a++)
        for (int b = 0; b < D; b++) {
            long double s = 0;
            for (int i = 0; i < N; i++) s += ((long double)x[i * D + a] - mu[a]) * ((long double)x[i * D + b] - mu[b]);
            tu_assert_close(cov[a * D + b], (double)(s / (N - 1)), 1e-12, 1e-14);
        }
    assert_int_equal(nn_gauss_fit(mu, cov, x, 1, D, &err), -1);
}

static void self_fid(size_t n, int d, double tol) {
    double *x = malloc(n * (size_t)d * sizeof *x), *mu = malloc((size_t)d * sizeof *mu),
           *cov = malloc((size_t)d * d * sizeof *cov);
    assert_non_null(x), assert_non_null(mu), assert_non_null(cov);
    dg_rng r = dg_rng_make(4, DG_RNG_USER, 10, (uint32_t)n);
    for (size_t i = 0; i < n * (size_t)d; i++) x[i] = 2 * unif(&r) * unif(&r) + (double)(i % 3);
    dg_err err = {{0}};
    double fid, tr = 0;
    assert_int_equal(nn_gauss_fit(mu, cov, x, n, d, &err), 0);
    for (int j = 0; j < d; j++) tr += cov[j * d + j];
    assert_int_equal(nn_frechet(&fid, mu, cov, mu, cov, d, &err), 0);
    if (!(fid >= 0 && fid <= tol * tr)) fail_msg("FID(x, x) = %g with n %zu, d %d (trace %g)", fid, n, d, tr);
    free(x), free(mu), free(cov);
}

static void test_frechet_self_zero(void **state) {
    (void)state;
    self_fid(500, 32, 1e-12);
    self_fid(20, 32, 1e-6); /* rank 19 of 32: the clamped near-zero eigenvalues add at most their square roots */
}

/* The same bits for 1 and 4 threads (OpenBLAS's threaded kernels round by thread count), and the thread count is
 * left as it was. */
static void test_threads(void **state) {
    (void)state;
    enum { N = 3000, D = 128 };
    double *x = malloc((size_t)N * D * sizeof *x), *y = malloc((size_t)N * D * sizeof *y);
    static double mu1[D], mu2[D], s1[D * D], s2[D * D];
    assert_non_null(x), assert_non_null(y);
    fill(x, N, D, 20), fill(y, N, D, 21);
    for (size_t i = 0; i < (size_t)N * D; i++) y[i] *= y[i];
    double fid[2];
    dg_err err = {{0}};
    for (int k = 0; k < 2; k++) {
        int threads = k ? 4 : 1;
        dg_set_threads(threads);
        assert_int_equal(nn_gauss_fit(mu1, s1, x, N, D, &err), 0);
        assert_int_equal(nn_gauss_fit(mu2, s2, y, N, D, &err), 0);
        assert_int_equal(nn_frechet(&fid[k], mu1, s1, mu2, s2, D, &err), 0);
        assert_int_equal(omp_get_max_threads(), threads);
    }
    dg_set_threads(2);
    if (fid[0] != fid[1]) fail_msg("FID %.17g with 1 thread, %.17g with 4", fid[0], fid[1]);
    free(x), free(y);
}

static void test_pairwise(void **state) {
    (void)state;
    double tri[6] = {0, 0, 3, 4, 0, 4}; /* distances 5, 4, 3 */
    tu_assert_close(nn_mean_pairwise_dist(tri, 3, 2), 4.0, 1e-15, 0);
    assert_true(nn_mean_pairwise_dist(tri, 1, 2) == 0.0);
    double same[12] = {1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3};
    assert_true(nn_mean_pairwise_dist(same, 4, 3) == 0.0);
}

/* ---- the measures ---- */

static void fill(double *x, size_t n, int d, uint32_t key) {
    dg_rng r = dg_rng_make(6, DG_RNG_USER, 11, key);
    for (size_t i = 0; i < n * (size_t)d; i++) x[i] = unif(&r);
}

static void test_cond_accuracy(void **state) {
    (void)state;
    enum { D = 3 };
    /* generated: labels 0 0 1 1 1 2, the judge says 0 1 1 1 2 2: 4 of 6; class 0 1/2, class 1 2/3, class 2 1/1 */
    uint8_t gl[6] = {0, 0, 1, 1, 1, 2}, gp[6] = {0, 1, 1, 1, 2, 2};
    /* real: labels 0 1 1 5, predictions 0 1 7 5: 3 of 4 */
    uint8_t rl[4] = {0, 1, 1, 5}, rp[4] = {0, 1, 7, 5};
    double g[6 * D], rf[4 * D];
    fill(g, 6, D, 1), fill(rf, 4, D, 2);
    nn_judge_result r;
    dg_err err = {{0}};
    assert_int_equal(nn_judge_measure(&r, g, gl, gp, 6, rf, rl, rp, 4, D, &err), 0);
    tu_assert_close(r.cond_acc, 4.0 / 6, 1e-15, 0);
    tu_assert_close(r.real_acc, 3.0 / 4, 1e-15, 0);
    tu_assert_close(r.cls[0].cond_acc, 0.5, 1e-15, 0);
    tu_assert_close(r.cls[1].cond_acc, 2.0 / 3, 1e-15, 0);
    tu_assert_close(r.cls[2].cond_acc, 1.0, 1e-15, 0);
    tu_assert_close(r.cls[1].real_acc, 0.5, 1e-15, 0);
    assert_int_equal(r.cls[1].n_gen, 3), assert_int_equal(r.cls[1].n_correct, 2), assert_int_equal(r.cls[1].n_real, 2);
    assert_true(isnan(r.cls[3].cond_acc) && isnan(r.cls[3].real_acc) && isnan(r.cls[3].fid));
    assert_true(isnan(r.cls[2].fid)); /* one generated 2, no real 2 */
    assert_int_equal(r.n_gen, 6), assert_int_equal(r.n_real, 4), assert_int_equal(r.dim, D);
    gl[0] = 10;
    assert_int_equal(nn_judge_measure(&r, g, gl, gp, 6, rf, rl, rp, 4, D, &err), -1);
}

/* Class 3's generated digits are one real 3 repeated: diversity 0 and the lowest; class 4's are the real 4s
 * themselves: diversity 1 and FID 0; the other classes are random. */
static void test_diversity(void **state) {
    (void)state;
    enum { D = 4, N = 200 };
    static double g[N * D], rf[N * D];
    uint8_t gl[N], rl[N], gp[N], rp[N];
    fill(g, N, D, 3), fill(rf, N, D, 4);
    for (int i = 0; i < N; i++) gl[i] = rl[i] = gp[i] = rp[i] = (uint8_t)(i % 10);
    for (int i = 0; i < N; i++) {
        if (gl[i] == 3) memcpy(g + i * D, rf + 3 * D, D * sizeof *g);
        if (gl[i] == 4) memcpy(g + i * D, rf + i * D, D * sizeof *g);
    }
    nn_judge_result r;
    dg_err err = {{0}};
    assert_int_equal(nn_judge_measure(&r, g, gl, gp, N, rf, rl, rp, N, D, &err), 0);
    assert_true(r.cls[3].dist_gen == 0.0 && r.cls[3].diversity == 0.0);
    assert_int_equal(r.min_diversity_class, 3);
    assert_true(r.min_diversity == 0.0);
    assert_true(r.cls[4].diversity == 1.0);
    assert_true(fabs(r.cls[4].fid) < 1e-12);
    for (int c = 0; c < 10; c++)
        if (c != 3 && c != 4 && !(r.cls[c].diversity > 0.5 && r.cls[c].diversity < 2))
            fail_msg("class %d: diversity %g of two random sets", c, r.cls[c].diversity);
}

/* ---- the features ---- */

static void test_features(void **state) {
    (void)state;
    nn_spec s;
    nn_net *net;
    dg_err err = {{0}};
    if (nn_spec_load(&s, TINY, &err) != 0 || nn_net_create(&net, &s, 8, &err) != 0) fail_msg("%s", err.msg);
    nn_net_init(net, 3);
    size_t n0;
    assert_null(nn_net_layer_input(net, 5, &n0)); /* no forward yet */
    enum { N = 19 }; /* three batches of 8, the last partial */
    static uint8_t pix[N][DG_PIXELS];
    const uint8_t *img[N];
    dg_rng r = dg_rng_make(1, DG_RNG_USER, 12, 0);
    for (int i = 0; i < N; i++) {
        for (int p = 0; p < DG_PIXELS; p++) pix[i][p] = (uint8_t)dg_rng_below(&r, 256);
        img[i] = pix[i];
    }
    double *f;
    int d;
    uint8_t pred[N];
    assert_int_equal(nn_judge_features(net, img, N, &f, &d, pred, &err), 0);
    assert_int_equal(d, 16);
    /* the final dense layer's weights (10, 16) and bias (10): the last two tensors of tiny */
    int nt = nn_net_tensor_count(net);
    const nn_tensor *wt = nn_net_tensor(net, nt - 2), *bt = nn_net_tensor(net, nt - 1);
    assert_int_equal(wt->shape[0], 10), assert_int_equal(wt->shape[1], 16), assert_int_equal(bt->count, 10);
    const float *w = nn_net_params(net) + wt->offset, *b = nn_net_params(net) + bt->offset;
    float x[DG_PIXELS];
    int nonzero = 0;
    for (int i = 0; i < N; i++) {
        for (int p = 0; p < DG_PIXELS; p++) x[p] = pix[i][p] / 255.0f;
        const float *logits = nn_net_forward(net, x, 1, 0, 0, 0);
        int best = 0;
        for (int c = 0; c < 10; c++) {
            double z = b[c];
            for (int k = 0; k < 16; k++) z += (double)w[c * 16 + k] * f[i * 16 + k];
            tu_assert_close(z, logits[c], 1e-4, 1e-5);
            if (logits[c] > logits[best]) best = c;
        }
        assert_int_equal(pred[i], best);
        for (int k = 0; k < 16; k++) nonzero += f[i * 16 + k] != 0;
    }
    assert_true(nonzero > N * 4); /* not all zero (ReLU features) */
    assert_null(nn_net_layer_input(net, 6, &n0));
    assert_int_equal(n0, 0);
    free(f);
    nn_net_free(net);
    nn_spec_free(&s);
}

/* ---- the stage ---- */

static int setup(void **state) {
    (void)state;
    if (system("rm -rf " TMP " && mkdir -p " TMP) != 0) return -1;
    tu_blocks_dataset(DATA, NROWS, 13, 1);
    nn_train_opts o = {0};
    o.data = DATA, o.model = TINY, o.run_dir = RUN, o.seed = 1, o.split_seed = 3, o.val_frac = 0.25, o.epochs = 2;
    dg_err err = {{0}};
    if (nn_train_run(&o, &err) != 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* A labelled dataset of the rows of DATA named by idx (n). */
static void subset(const char *path, const uint32_t *idx, size_t n, int repeat_first_of_label) {
    dg_dataset ds;
    dg_dataset_writer w;
    dg_err err = {{0}};
    if (dg_dataset_open(&ds, DATA, &err) != 0 || dg_dataset_writer_open(&w, path, 1, &err) != 0) fail_msg("%s", err.msg);
    size_t first = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t row = idx[i];
        if (dg_dataset_label(&ds, row) == repeat_first_of_label) {
            if (first == (size_t)-1) first = row;
            row = first;
        }
        if (dg_dataset_writer_add(&w, dg_dataset_image(&ds, row), dg_dataset_label(&ds, idx[i]), &err) != 0)
            fail_msg("%s", err.msg);
    }
    if (dg_dataset_writer_commit(&w, &err) != 0) fail_msg("%s", err.msg);
    dg_dataset_close(&ds);
}

static nn_split holdout(void) {
    dg_dataset ds;
    dg_err err = {{0}};
    if (dg_dataset_open(&ds, DATA, &err) != 0) fail_msg("%s", err.msg);
    uint8_t lab[NROWS];
    for (size_t i = 0; i < NROWS; i++) lab[i] = (uint8_t)dg_dataset_label(&ds, i);
    nn_split sp;
    if (nn_split_holdout(&sp, lab, NROWS, 10, 0.25, 3, &err) != 0) fail_msg("%s", err.msg);
    dg_dataset_close(&ds);
    return sp;
}

static double jnum(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) fail_msg("JSON: no number %s", k);
    return v->valuedouble;
}

/* The hold-out's own digits as the "generated" ones: FID 0, every diversity 1, conditional accuracy = the judge's
 * accuracy on them. Then class 7 drawn as one image repeated: its diversity 0. */
static void test_stage(void **state) {
    (void)state;
    nn_split sp = holdout();
    subset(TMP "/gen.npy", sp.val, sp.n_val, -1);
    nn_judge_opts o = {.samples = TMP "/gen.npy", .classifier = RUN, .real = DATA, .n = 10000,
                       .json = TMP "/j.json", .report = stdout};
    nn_judge_result r;
    dg_err err = {{0}};
    if (nn_judge(&o, &r, &err) != 0) fail_msg("nn_judge: %s", err.msg);
    assert_int_equal(r.n_gen, sp.n_val), assert_int_equal(r.n_real, sp.n_val);
    assert_true(fabs(r.fid) < 1e-9);
    assert_true(r.cond_acc == r.real_acc);
    assert_true(r.cond_acc > 0.5); /* two epochs learn the blocks */
    for (int c = 0; c < 10; c++) assert_true(r.cls[c].diversity == 1.0);
    char *js = tu_read(TMP "/j.json");
    cJSON *j = cJSON_Parse(js);
    assert_non_null(j);
    tu_assert_close(jnum(j, "cond_accuracy"), r.cond_acc, 1e-12, 0);
    tu_assert_close(jnum(j, "n_real"), (double)sp.n_val, 0, 0);
    tu_assert_close(jnum(j, "feature_dim"), 16, 0, 0);
    const cJSON *pc = cJSON_GetObjectItemCaseSensitive(j, "per_class");
    assert_int_equal(cJSON_GetArraySize(pc), 10);
    tu_assert_close(jnum(cJSON_GetArrayItem(pc, 4), "diversity"), 1.0, 0, 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "split")->valuestring, "val-frac 0.25 split-seed 3");
    cJSON_Delete(j);
    free(js);

    subset(TMP "/gen7.npy", sp.val, sp.n_val, 7);
    o.samples = TMP "/gen7.npy", o.n = 50; /* the first 50 of each side */
    if (nn_judge(&o, &r, &err) != 0) fail_msg("nn_judge: %s", err.msg);
    assert_int_equal(r.n_gen, 50), assert_int_equal(r.n_real, 50);
    /* the repeated image's features agree to float rounding: the net's kernels may round a row differently by its
     * place in the batch */
    if (!(r.cls[7].diversity < 1e-5)) fail_msg("one 7 repeated: diversity %g", r.cls[7].diversity);
    assert_int_equal(r.min_diversity_class, 7);
    assert_true(r.fid > 0);
    nn_split_free(&sp);
}

static void judge_fails(nn_judge_opts o, const char *want) {
    nn_judge_result r;
    dg_err err = {{0}};
    unlink(TMP "/bad.json");
    o.json = TMP "/bad.json";
    assert_int_equal(nn_judge(&o, &r, &err), -1);
    if (!strstr(err.msg, want)) fail_msg("message '%s' lacks '%s'", err.msg, want);
    assert_false(dg_path_exists(TMP "/bad.json"));
}

static void test_refusals(void **state) {
    (void)state;
    nn_judge_opts o = {.samples = DATA, .classifier = RUN, .real = DATA, .n = 100};
    /* a hold-out other than the model's would show the judge digits it trained on */
    o.val_frac = 0.1, o.val_frac_set = 1;
    judge_fails(o, "was trained with the hold-out 'val-frac 0.25 split-seed 3', not --val-frac 0.1");
    o.val_frac_set = 0, o.split_seed = 4, o.split_seed_set = 1;
    judge_fails(o, "the judge would see digits it trained on");
    o.split_seed_set = 0;
    /* another dataset than the one it trained on */
    tu_blocks_dataset(TMP "/other.npy", 300, 13, 1);
    o.real = TMP "/other.npy";
    judge_fails(o, "was trained on 300 rows, but its split");
    o.real = DATA;
    /* a GAN run or checkpoint as the classifier */
    nn_ckpt c = {0};
    c.spec_text = "[generator]\ninput 100x1x1\n[discriminator]\ninput 1x28x28\n";
    dg_err err = {{0}};
    if (dg_mkdirs(TMP "/gan", &err) != 0 || nn_ckpt_save(TMP "/gan/gan.ckpt", &c, &err) != 0) fail_msg("%s", err.msg);
    o.classifier = TMP "/gan";
    judge_fails(o, "a digits-gan run (gan.ckpt), not a classifier");
    o.classifier = TMP "/gan/gan.ckpt";
    judge_fails(o, "a digits-gan checkpoint, not a classifier model");
    o.classifier = RUN "/checkpoint.ckpt";
    judge_fails(o, "a training checkpoint, not a model");
    o.classifier = TMP;
    judge_fails(o, "not a digits-train run directory");
    o.classifier = DATA;
    judge_fails(o, "not a usable classifier");
    o.classifier = RUN;
    /* samples without labels */
    dg_dataset_writer w;
    uint8_t img[DG_PIXELS] = {0};
    if (dg_dataset_writer_open(&w, TMP "/unl.npy", 0, &err) != 0 || dg_dataset_writer_add(&w, img, 0, &err) != 0 ||
        dg_dataset_writer_add(&w, img, 0, &err) != 0 || dg_dataset_writer_commit(&w, &err) != 0)
        fail_msg("%s", err.msg);
    o.samples = TMP "/unl.npy";
    judge_fails(o, "an unlabelled dataset; the judge needs the label each digit was generated for");
    o.samples = DATA, o.n = 1;
    judge_fails(o, "n 1: the judge needs at least 2");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frechet_diagonal), cmocka_unit_test(test_frechet_rotated),
        cmocka_unit_test(test_gauss_fit),        cmocka_unit_test(test_frechet_self_zero),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_pairwise),         cmocka_unit_test(test_cond_accuracy),
        cmocka_unit_test(test_diversity),        cmocka_unit_test(test_features),
        cmocka_unit_test(test_stage),            cmocka_unit_test(test_refusals),
    };
    return tu_exit(cmocka_run_group_tests(tests, setup, NULL));
}
