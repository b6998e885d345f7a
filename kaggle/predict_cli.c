/* kaggle/predict_cli: digits-predict's options, usage and run (see predict_cli.h). */
#include "kaggle/predict_cli.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "kaggle/ensemble.h"
#include "kaggle/photo.h"
#include "kaggle/predict.h"
#include "kaggle/submission.h"
#include "nn/model.h"
#include "core/dg_cli.h"
#include "core/dg_npy.h"
#include "core/dg_file.h"
#include "core/dg_progress.h"

static const kg_predict_cli_opts kDefaults = {.data = "data/test.npy", .tta = 1, .batch = 256};

void kg_predict_cli_usage(FILE *out) {
    fprintf(out,
            "usage: digits-predict [options] -o PROBS.npy MODEL...\n"
            "       digits-predict --image FILE [--image FILE...] [--json] [--debug-out DIR] MODEL...\n"
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
            "  -i, --image FILE     classify a photo or drawing of one digit (PNG or JPEG, any size, dark on light\n"
            "                       or light on dark) instead of a dataset; repeatable. The image is made like\n"
            "                       MNIST (ink cropped, fitted into 20x20, centred by its centre of mass in 28x28);\n"
            "                       the digit and the probabilities go to stdout (-o optional)\n"
            "      --json           with --image: one JSON object per image\n"
            "      --debug-out DIR  with --image: write the 28x28 image each model saw, DIR/NAME.28x28.png\n"
            "  -h, --help\n"
            "On labelled data (e.g. data/train.npy --ids run/val_ids.npy) the accuracy is printed to stderr.\n"
            "Nothing is written unless every model loads, fits the images and gives valid probabilities.\n",
            kDefaults.data, KG_TTA_MAX, kDefaults.tta, kDefaults.batch, dg_default_threads());
}

int kg_predict_cli_parse(int argc, char **argv, kg_predict_cli_opts *o, dg_err *err) {
    *o = kDefaults;
    o->log = stderr;
    o->out = stdout;
    static const struct option longopts[] = {
        {"data", required_argument, 0, 'd'},    {"output", required_argument, 0, 'o'},
        {"labels", required_argument, 0, 'l'},  {"ids", required_argument, 0, 'I'},
        {"tta", required_argument, 0, 't'},     {"batch", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 'T'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},          {"image", required_argument, 0, 'i'},
        {"json", no_argument, 0, 'J'},          {"debug-out", required_argument, 0, 'D'},
        {0, 0, 0, 0}};
    int c;
    long v;
    dg_cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":d:o:l:t:b:qhi:", longopts, NULL)) != -1) {
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
        case 'i': {
            const char **im = realloc(o->images, sizeof *im * (size_t)(o->n_images + 1));
            if (!im) return dg_cli_usage(err, "out of memory for --image %s", optarg);
            o->images = im;
            o->images[o->n_images++] = optarg;
            break;
        }
        case 'J': o->json = 1; break;
        case 'D': o->debug_out = optarg; break;
        case 'h': o->help = 1; return DG_EXIT_OK;
        default: return dg_cli_bad_option(c, argv, ":d:o:l:t:b:qhi:", longopts, err);
        }
    }
    if (optind >= argc) return dg_cli_usage(err, "no MODEL given");
    if (!o->output && !o->n_images) return dg_cli_usage(err, "-o PROBS.npy is required");
    if ((o->json || o->debug_out) && !o->n_images) return dg_cli_usage(err, "--json and --debug-out need --image");
    o->models = argv + optind;
    o->n_models = argc - optind;
    return DG_EXIT_OK;
}

void kg_predict_cli_free(kg_predict_cli_opts *o) {
    free(o->images);
    o->images = NULL;
    o->n_images = 0;
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

/* One image file made MNIST-like into px; its status (kaggle/photo.h), the message in err. */
static int load_image(uint8_t *px, const char *path, kg_photo_info *info, dg_err *err) {
    struct stat st;
    char *data = NULL;
    size_t len = 0;
    memset(info, 0, sizeof *info);
    if (stat(path, &st) != 0) return dg_fail_errno(err, "%s: cannot open", path), KG_PHOTO_BAD;
    if (st.st_size > (off_t)KG_PHOTO_MAX_BYTES)
        return dg_fail(err, "%s: %lld bytes is too large for an image of one digit (at most %u MB)", path,
                       (long long)st.st_size, KG_PHOTO_MAX_BYTES >> 20),
               KG_PHOTO_TOO_LARGE;
    if (dg_read_file(path, &data, &len, err) != 0) return KG_PHOTO_BAD;
    int rc = kg_photo_load(px, data, len, info, err);
    free(data);
    if (rc != KG_PHOTO_OK) dg_err_prefix(err, "%s", path);
    return rc;
}

/* DIR/NAME.28x28.png for image file `path` (NAME: its base name without the extension). */
static int write_debug(const char *dir, const char *path, const uint8_t *px, dg_err *err) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    int len = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
    char out[4096];
    if ((size_t)snprintf(out, sizeof out, "%s/%.*s.28x28.png", dir, len, base) >= sizeof out)
        return dg_fail(err, "%s: path too long", dir);
    void *png = NULL;
    size_t n = 0;
    if (kg_photo_png_encode(&png, &n, px, DG_SIDE, DG_SIDE, err) != 0) return -1;
    int rc = dg_write_file_atomic(out, png, n, err);
    free(png);
    return rc;
}

/* One result line: text or JSON. probs NULL: the image failed with status and message msg. */
static void print_result(FILE *out, int json, const char *path, const float *probs, const kg_photo_info *info,
                         int status, const char *msg) {
    int d = 0;
    for (int k = 1; probs && k < DG_CLASSES; k++) d = probs[k] > probs[d] ? k : d;
    if (!json) {
        if (!probs) {
            fprintf(out, "%s: %s\n", path, msg);
            return;
        }
        fprintf(out, "%s: %d (p=%.3f) ", path, d, (double)probs[d]);
        for (int k = 0; k < DG_CLASSES; k++) fprintf(out, " %d:%.3f", k, (double)probs[k]);
        fprintf(out, "\n");
        return;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "file", path);
    if (probs) {
        cJSON_AddNumberToObject(j, "digit", d);
        cJSON *p = cJSON_AddArrayToObject(j, "probabilities");
        for (int k = 0; k < DG_CLASSES; k++) cJSON_AddItemToArray(p, cJSON_CreateNumber(round(probs[k] * 1e6) / 1e6));
        cJSON_AddBoolToObject(j, "inverted", info->inverted);
    } else {
        cJSON_AddStringToObject(j, "error", kg_photo_status_name(status));
        cJSON_AddStringToObject(j, "message", msg);
    }
    char *text = cJSON_PrintUnformatted(j);
    if (text) fprintf(out, "%s\n", text);
    free(text);
    cJSON_Delete(j);
}

/* --image: classify each file with the mean of the models (see predict_cli.h). */
static int run_images(const kg_predict_cli_opts *o, dg_err *err) {
    size_t n = (size_t)o->n_images, ok = 0;
    uint8_t *px = calloc(n, DG_PIXELS);
    int *status = calloc(n, sizeof(int));
    kg_photo_info *info = calloc(n, sizeof *info);
    dg_err *msg = calloc(n, sizeof *msg);
    float *sum = calloc(n * DG_CLASSES, sizeof(float)), *one = calloc(n * DG_CLASSES, sizeof(float));
    int rc = DG_EXIT_FAIL, m = o->n_models;
    if (!px || !status || !info || !msg || !sum || !one) {
        dg_fail(err, "out of memory for %zu images", n);
        goto done;
    }
    if (o->debug_out && dg_mkdirs(o->debug_out, err) != 0) goto done;
    for (size_t i = 0; i < n; i++) { /* the usable images first, packed */
        status[i] = load_image(px + ok * DG_PIXELS, o->images[i], &info[i], &msg[i]);
        if (status[i] == KG_PHOTO_OK) ok++;
    }
    if (ok) {
        kg_images im;
        kg_images_wrap(&im, px, ok);
        for (int j = 0; j < m; j++) {
            char path[4096];
            if (predict_model(one, o->models[j], o, &im, NULL, ok, path, sizeof path, err) != 0) goto done;
            for (size_t k = 0; k < ok * DG_CLASSES; k++) sum[k] += one[k] / (float)m;
        }
    }
    int failed = 0;
    for (size_t i = 0, r = 0; i < n; i++) {
        if (status[i] != KG_PHOTO_OK) {
            print_result(o->out, o->json, o->images[i], NULL, &info[i], status[i], msg[i].msg);
            if (!failed++) *err = msg[i];
            continue;
        }
        if (o->debug_out && write_debug(o->debug_out, o->images[i], px + r * DG_PIXELS, err) != 0) goto done;
        print_result(o->out, o->json, o->images[i], sum + r * DG_CLASSES, &info[i], 0, NULL);
        r++;
    }
    if (o->output) {
        size_t shape[2] = {ok, DG_CLASSES};
        if (dg_npy_save(o->output, "<f4", shape, 2, sum, sizeof(float), err) != 0) goto done;
    }
    if (failed > 1) dg_err_prefix(err, "%d of %zu images could not be classified; the first", failed, n);
    rc = failed ? DG_EXIT_FAIL : DG_EXIT_OK;
done:
    free(px);
    free(status);
    free(info);
    free(msg);
    free(sum);
    free(one);
    return rc;
}

int kg_predict_cli_run(const kg_predict_cli_opts *o, dg_err *err) {
    if (o->n_images) return run_images(o, err);
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
