/* kaggle/predict_cli: digits-predict's options, usage and run (see predict_cli.h). */
#include "kaggle/predict_cli.h"

#include <getopt.h>
#include <stdlib.h>

#include "kaggle/ensemble.h"
#include "kaggle/predict.h"
#include "kaggle/submission.h"
#include "nn/model.h"
#include "core/dg_cli.h"
#include "core/dg_npy.h"
#include "core/dg_progress.h"

static const kg_predict_cli_opts kDefaults = {.data = "data/test.npy", .tta = 1, .batch = 256};

void kg_predict_cli_usage(FILE *out) {
    fprintf(out,
            "usage: digits-predict [options] -o PROBS.npy MODEL...\n"
            "  MODEL is a model.safetensors file or a digits-train run directory. The probabilities of all\n"
            "  models are averaged (a soft-vote ensemble of equal weights).\n"
            "  -d, --data PATH      images: a dataset file or uint8 .npy (N,28,28) (default %s)\n"
            "  -o, --output PATH    class probabilities, float32 .npy (N, 10) (required)\n"
            "  -l, --labels PATH    also the predicted labels: PATH.csv as a Kaggle submission (ImageId,Label),\n"
            "                       anything else as uint8 .npy (N,)\n"
            "      --ids PATH       predict only these rows: int64 .npy (n,) such as a run's val_ids.npy\n"
            "  -t, --tta K          test-time augmentation: average over the first K of %d fixed views\n"
            "                       (identity, 1-px shifts right/left/down/up, rotations +-8 deg, zoom 1.08/0.92)\n"
            "                       (default %d: no augmentation)\n"
            "  -b, --batch B        images per forward pass (default %d)\n"
            "      --threads T      threads (default: OMP_NUM_THREADS or all CPUs, now %d)\n"
            "  -q, --quiet          no progress or summary on stderr\n"
            "  -h, --help\n"
            "On labelled data (e.g. data/train.npy --ids run/val_ids.npy) the accuracy is printed to stderr.\n"
            "Nothing is written unless every model loads, fits the images and gives valid probabilities.\n",
            kDefaults.data, KG_TTA_MAX, kDefaults.tta, kDefaults.batch, dg_default_threads());
}

int kg_predict_cli_parse(int argc, char **argv, kg_predict_cli_opts *o, dg_err *err) {
    *o = kDefaults;
    o->log = stderr;
    static const struct option longopts[] = {
        {"data", required_argument, 0, 'd'},    {"output", required_argument, 0, 'o'},
        {"labels", required_argument, 0, 'l'},  {"ids", required_argument, 0, 'I'},
        {"tta", required_argument, 0, 't'},     {"batch", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 'T'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    int c;
    long v;
    dg_cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":d:o:l:t:b:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': o->data = optarg; break;
        case 'o': o->output = optarg; break;
        case 'l': o->labels = optarg; break;
        case 'I': o->ids = optarg; break;
        case 't':
            if (dg_parse_long(optarg, 1, KG_TTA_MAX, &v) != 0)
                return dg_cli_usage(err, "--tta %s: expected 1..%d", optarg, KG_TTA_MAX);
            o->tta = (int)v;
            break;
        case 'b':
            if (dg_parse_long(optarg, 1, 65536, &v) != 0)
                return dg_cli_usage(err, "--batch %s: expected 1..65536", optarg);
            o->batch = (int)v;
            break;
        case 'T':
            if (dg_parse_long(optarg, 1, 1024, &v) != 0)
                return dg_cli_usage(err, "--threads %s: expected 1..1024", optarg);
            o->threads = (int)v;
            break;
        case 'q': o->log = NULL; break;
        case 'h': o->help = 1; return DG_EXIT_OK;
        default: return dg_cli_bad_option(c, argv, ":d:o:l:t:b:qh", longopts, err);
        }
    }
    if (optind >= argc) return dg_cli_usage(err, "no MODEL given");
    if (!o->output) return dg_cli_usage(err, "-o PROBS.npy is required");
    o->models = argv + optind;
    o->n_models = argc - optind;
    return DG_EXIT_OK;
}

/* The rows to predict: ids from o->ids (checked against the n_images images), or all (*ids = NULL). */
static int load_rows(int64_t **ids, size_t *n, const kg_predict_cli_opts *o, size_t n_images, dg_err *err) {
    *ids = NULL;
    *n = n_images;
    if (o->ids) {
        if (dg_npy_load_i64(o->ids, ids, n, err) != 0) return -1;
        for (size_t i = 0; i < *n; i++)
            if ((*ids)[i] < 0 || (uint64_t)(*ids)[i] >= n_images)
                return dg_fail(err, "%s: row id %lld at %zu is outside %s (%zu images)", o->ids,
                               (long long)(*ids)[i], i, o->data, n_images);
    }
    if (*n == 0) return dg_fail(err, "%s: no images to predict", o->ids ? o->ids : o->data);
    return 0;
}

/* Probabilities of model `arg` on the rows, checked: probs (n, 10). */
static int predict_model(float *probs, const char *arg, const kg_predict_cli_opts *o, const kg_images *im,
                         const int64_t *ids, size_t n, char *path, size_t cap, dg_err *err) {
    nn_net *net = NULL;
    if (kg_model_path(path, cap, arg, err) != 0) return -1;
    if (nn_model_load(path, o->batch, &net, err) != 0) return dg_err_prefix(err, "not a usable model");
    int bad = kg_net_fits(net, path, err) != 0 || kg_predict_net(probs, net, im, ids, n, o->tta, err) != 0;
    nn_net_free(net);
    if (bad) return -1;
    if (kg_probs_check(probs, n, path, err) != 0)
        return dg_err_prefix(err, "model output is not a probability distribution");
    return 0;
}

/* Write the labels (a submission for .csv, else uint8 .npy) and the probabilities. */
static int write_outputs(const kg_predict_cli_opts *o, const float *probs, const uint8_t *lab, size_t n,
                         size_t n_images, int subset, dg_err *err) {
    size_t shape[2] = {n, DG_CLASSES};
    dg_afile lf = {0}, pf = {0};
    if (o->labels && dg_ends_with(o->labels, ".csv")) {
        if (subset) return dg_fail(err, "internal: a submission of a subset");
        if (kg_submission_write_afile(&lf, o->labels, lab, n, n_images, err) != 0) return -1;
    }
    if (o->labels && !dg_ends_with(o->labels, ".csv") &&
        dg_npy_write_afile(&lf, o->labels, "|u1", shape, 1, lab, 1, err) != 0)
        return -1;
    if (dg_npy_write_afile(&pf, o->output, "<f4", shape, 2, probs, sizeof(float), err) != 0) {
        dg_afile_abort(&lf);
        return -1;
    }
    /* Both files as one commit: a failure leaves both final names as they were. */
    dg_afile *files[2] = {&pf, &lf};
    return dg_afile_commit_all(files, o->labels ? 2 : 1, err);
}

int kg_predict_cli_run(const kg_predict_cli_opts *o, dg_err *err) {
    kg_images im;
    int64_t *ids = NULL;
    float *sum = NULL, *one = NULL;
    uint8_t *lab = NULL, *truth = NULL;
    int rc = DG_EXIT_FAIL, m = o->n_models;
    /* A usage error, found before any work. */
    if (o->ids && o->labels && dg_ends_with(o->labels, ".csv")) {
        dg_fail(err, "%s: a submission needs every image; drop --ids or write labels as .npy", o->labels);
        return DG_EXIT_USAGE;
    }
    size_t n;
    if (kg_images_open(&im, o->data, err) != 0) return DG_EXIT_FAIL;
    if (load_rows(&ids, &n, o, im.n, err) != 0) goto done;
    sum = calloc(n * DG_CLASSES, sizeof(float));
    one = malloc(n * DG_CLASSES * sizeof(float));
    lab = malloc(n);
    int scored = im.has_labels && o->log; /* accuracies are only printed */
    truth = scored ? malloc(n) : NULL;
    if (!sum || !one || !lab || (scored && !truth)) {
        dg_fail(err, "out of memory for %zu predictions", n);
        goto done;
    }
    for (size_t i = 0; truth && i < n; i++) truth[i] = (uint8_t)kg_images_label(&im, ids ? (size_t)ids[i] : i);
    double t0 = dg_now();
    for (int j = 0; j < m; j++) {
        char path[4096];
        if (predict_model(one, o->models[j], o, &im, ids, n, path, sizeof path, err) != 0) goto done;
        if (o->log && truth)
            fprintf(o->log, "digits-predict: %s: accuracy %.4f on %zu labelled images (tta %d)\n", path,
                    kg_accuracy(one, truth, n), n, o->tta);
        for (size_t k = 0; k < n * DG_CLASSES; k++) sum[k] += one[k] / (float)m;
    }
    kg_argmax(lab, sum, n);
    if (o->log) {
        double dt = dg_now() - t0;
        fprintf(o->log, "digits-predict: %zu images x %d model(s) x %d view(s) in %.2f s (%.0f images/s)\n", n, m,
                o->tta, dt, dt > 0 ? (double)n * m * o->tta / dt : 0.0);
        if (truth && m > 1)
            fprintf(o->log, "digits-predict: mean of %d models: accuracy %.4f\n", m, kg_accuracy(sum, truth, n));
    }
    if (write_outputs(o, sum, lab, n, im.n, ids != NULL, err) != 0) goto done;
    rc = DG_EXIT_OK;
done:
    kg_images_close(&im);
    free(ids);
    free(sum);
    free(one);
    free(lab);
    free(truth);
    return rc;
}
