/* digits-predict: class probabilities of one or more trained models on a dataset, averaged over the models and
 * (with --tta K) over K fixed views of every image. Writes (N, 10) float32 .npy, optionally labels. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kaggle/ensemble.h"
#include "kaggle/predict.h"
#include "kaggle/submission.h"
#include "nn/model.h"
#include "core/dg_cli.h"
#include "core/dg_npy.h"
#include "core/dg_progress.h"

typedef struct opts {
    const char *data, *output, *labels, *ids;
    int tta, batch, threads, quiet;
} opts;

static const opts kDefaults = {"data/test.npy", NULL, NULL, NULL, 1, 256, 0, 0};

static void usage(FILE *out) {
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

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int main(int argc, char **argv) {
    opts o = kDefaults;
    static const struct option longopts[] = {
        {"data", required_argument, 0, 'd'},   {"output", required_argument, 0, 'o'},
        {"labels", required_argument, 0, 'l'}, {"ids", required_argument, 0, 'I'},
        {"tta", required_argument, 0, 't'},    {"batch", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 'T'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "d:o:l:t:b:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'd': o.data = optarg; break;
        case 'o': o.output = optarg; break;
        case 'l': o.labels = optarg; break;
        case 'I': o.ids = optarg; break;
        case 't':
            if (dg_parse_long(optarg, 1, KG_TTA_MAX, &v) != 0) {
                fprintf(stderr, "digits-predict: --tta %s: expected 1..%d\n", optarg, KG_TTA_MAX);
                return DG_EXIT_USAGE;
            }
            o.tta = (int)v;
            break;
        case 'b':
            if (dg_parse_long(optarg, 1, 65536, &v) != 0) {
                fprintf(stderr, "digits-predict: --batch %s: expected 1..65536\n", optarg);
                return DG_EXIT_USAGE;
            }
            o.batch = (int)v;
            break;
        case 'T':
            if (dg_parse_long(optarg, 1, 1024, &v) != 0) {
                fprintf(stderr, "digits-predict: --threads %s: expected 1..1024\n", optarg);
                return DG_EXIT_USAGE;
            }
            o.threads = (int)v;
            break;
        case 'q': o.quiet = 1; break;
        case 'h': usage(stdout); return DG_EXIT_OK;
        default: usage(stderr); return DG_EXIT_USAGE;
        }
    }
    if (optind >= argc || !o.output) {
        fprintf(stderr, "digits-predict: %s\n", optind >= argc ? "no MODEL given" : "-o PROBS.npy is required");
        usage(stderr);
        return DG_EXIT_USAGE;
    }
    dg_set_threads(o.threads > 0 ? o.threads : dg_default_threads());

    dg_err err = {{0}};
    kg_images im;
    int64_t *ids = NULL;
    float *sum = NULL, *one = NULL;
    uint8_t *lab = NULL;
    int rc = DG_EXIT_FAIL, opened = 0;
    size_t n;
    if (kg_images_open(&im, o.data, &err) != 0) goto done;
    opened = 1;
    if (o.ids) {
        if (dg_npy_load_i64(o.ids, &ids, &n, &err) != 0) goto done;
        for (size_t i = 0; i < n; i++)
            if (ids[i] < 0 || (uint64_t)ids[i] >= im.n) {
                dg_fail(&err, "%s: row id %lld at %zu is outside %s (%zu images)", o.ids, (long long)ids[i], i,
                        o.data, im.n);
                goto done;
            }
    } else {
        n = im.n;
    }
    if (n == 0) {
        dg_fail(&err, "%s: no images to predict", o.ids ? o.ids : o.data);
        goto done;
    }
    sum = calloc(n * DG_CLASSES, sizeof(float));
    one = malloc(n * DG_CLASSES * sizeof(float));
    lab = malloc(n);
    if (!sum || !one || !lab) {
        dg_fail(&err, "out of memory for %zu predictions", n);
        goto done;
    }
    int nmodels = argc - optind;
    double t0 = dg_now();
    for (int mi = 0; mi < nmodels; mi++) {
        const char *arg = argv[optind + mi];
        char path[4096];
        nn_net *net = NULL;
        if (kg_model_path(path, sizeof path, arg, &err) != 0) goto done;
        if (nn_model_load(path, o.batch, &net, &err) != 0) {
            dg_err_prefix(&err, "%s: not a usable model", path);
            goto done;
        }
        int bad = kg_net_fits(net, path, &err) != 0 || kg_predict_net(one, net, &im, ids, n, o.tta, &err) != 0;
        nn_net_free(net);
        if (bad) goto done;
        if (kg_probs_check(one, n, path, &err) != 0) {
            dg_err_prefix(&err, "model output is not a probability distribution");
            goto done;
        }
        if (!o.quiet && im.has_labels) {
            size_t ok = 0;
            for (size_t i = 0; i < n; i++) {
                int best = 0;
                for (int k = 1; k < DG_CLASSES; k++)
                    if (one[i * DG_CLASSES + k] > one[i * DG_CLASSES + best]) best = k;
                ok += best == kg_images_label(&im, ids ? (size_t)ids[i] : i);
            }
            fprintf(stderr, "digits-predict: %s: accuracy %.4f on %zu labelled images (tta %d)\n", path,
                    (double)ok / (double)n, n, o.tta);
        }
        for (size_t k = 0; k < n * DG_CLASSES; k++) sum[k] += one[k] / (float)nmodels;
    }
    kg_argmax(lab, sum, n);
    if (!o.quiet) {
        double dt = dg_now() - t0;
        fprintf(stderr, "digits-predict: %zu images x %d model(s) x %d view(s) in %.2f s (%.0f images/s)\n", n,
                nmodels, o.tta, dt, dt > 0 ? (double)n * nmodels * o.tta / dt : 0.0);
        if (im.has_labels && nmodels > 1) {
            size_t ok = 0;
            for (size_t i = 0; i < n; i++) ok += lab[i] == kg_images_label(&im, ids ? (size_t)ids[i] : i);
            fprintf(stderr, "digits-predict: mean of %d models: accuracy %.4f\n", nmodels, (double)ok / (double)n);
        }
    }
    size_t shape[2] = {n, DG_CLASSES};
    if (o.labels && ends_with(o.labels, ".csv")) {
        if (ids) {
            dg_fail(&err, "%s: a submission needs every image; drop --ids or write labels as .npy", o.labels);
            goto done;
        }
        if (kg_submission_write(o.labels, lab, n, im.n, &err) != 0) goto done;
    }
    if (o.labels && !ends_with(o.labels, ".csv") && dg_npy_save(o.labels, "|u1", shape, 1, lab, 1, &err) != 0)
        goto done;
    if (dg_npy_save(o.output, "<f4", shape, 2, sum, sizeof(float), &err) != 0) goto done;
    rc = DG_EXIT_OK;
done:
    if (rc != DG_EXIT_OK) fprintf(stderr, "digits-predict: %s\n", err.msg);
    if (opened) kg_images_close(&im);
    free(ids);
    free(sum);
    free(one);
    free(lab);
    return rc;
}
