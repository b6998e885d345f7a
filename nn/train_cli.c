/* nn/train_cli: digits-train's options, --help and run (see nn/train_cli.h). */
#include "nn/train_cli.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "core/dg_cli.h"
#include "nn/calibrate.h"
#include "nn/net.h"
#include "nn/spec.h"

void nn_train_cli_usage(FILE *out) {
    nn_train_opts d;
    nn_train_opts_defaults(&d);
    nn_hyper h;
    nn_hyper_defaults(&h);
    fprintf(out,
            "usage: digits-train --data FILE.npy --model NAME|PATH --run DIR [options]\n"
            "\n"
            "Train a model (experiments/models/NAME.spec, or a spec file) on a labelled dataset, holding out a\n"
            "stratified validation split, checkpointing every epoch into DIR.\n"
            "\n"
            "  --data FILE        labelled dataset (.npy from digits-ingest)\n"
            "  --model NAME|PATH  model spec; a NAME is looked up in $DIGITS_MODELS, ./experiments/models and the\n"
            "                     source tree's experiments/models\n"
            "  --run DIR          run directory (created): spec.txt, metrics.jsonl, checkpoint.ckpt,\n"
            "                     model.safetensors, val_pred.npy, val_ids.npy, result.json (written last)\n"
            "  --seed S           initialization, shuffling, dropout, augmentation (default %llu)\n"
            "  --split-seed S     the validation split (default %llu)\n"
            "  --val-frac F       stratified hold-out fraction in (0, 1) (default %g)\n"
            "  --folds K --fold k stratified K-fold instead: fold k (1..K) validates\n"
            "  --epochs N         override the spec's epochs (spec default %d)\n"
            "  --batch B          override the spec's batch size (spec default %d)\n"
            "  --lr X             override the spec's learning rate (spec default %g)\n"
            "  --augment POLICY   override the spec's augmentation: a preset (kaggle, simard, ciresan), a policy\n"
            "                     file, or none (spec default none)\n"
            "  --ema D            override the spec's ema=: after every step keep a moving average of the weights\n"
            "                     and batch-norm statistics, avg = d avg + (1 - d) live with d = min(D, (1 + k) /\n"
            "                     (10 + k)) at step k (a warm-up); validation, early stopping and the exported\n"
            "                     model use the average, training the live weights. D in (0, 1), 0 off (spec\n"
            "                     default %g)\n"
            "  --threads T        threads for OpenMP and OpenBLAS (default: $OMP_NUM_THREADS or all CPUs, now %d)\n"
            "  --mix FILE         a labelled dataset (e.g. from digits-gan sample) mixed into training batches:\n"
            "  --mix-frac F       the last round(F x batch) rows of each batch come from FILE, F in (0, 1)\n"
            "  --tensorboard TB   also append each epoch's loss, accuracy, lr and images/s to a TensorBoard event\n"
            "                     file in directory TB (tensorboard --logdir TB)\n"
            "  --resume           continue DIR from its checkpoint (bit-identical to an uninterrupted run with the\n"
            "                     same seed and threads); a finished DIR is left as it is\n"
            "  --stop-at E        stop (exit 0, checkpoint kept, no result.json) once DIR holds E epochs; the\n"
            "                     schedule still spans --epochs, so a later --resume continues bit-identically\n"
            "  --deadline T       wall-clock time (UNIX seconds) by which training should end: at an epoch's end,\n"
            "                     when the epochs left would not fit at the pace of the last 3 epochs (their mean),\n"
            "                     the run is shortened, and a shortened run is lengthened back toward its\n"
            "                     epochs when the pace recovers (cosine/onecycle schedules re-targeted to end at\n"
            "                     their final value; printed)\n"
            "  --calibrate S      time S seconds of training steps (and S/4 of inference) of the model, batch and\n"
            "                     augmentation on synthetic images with --threads, print one JSON line, and exit\n"
            "  --summary          print the model's layers, shapes, parameters and FLOPs, and exit\n"
            "  --quiet            no per-epoch lines or progress bar\n"
            "  --help             this text\n"
            "\n"
            "Exit status: 0 result.json written (or stopped by --stop-at), 1 failure (the last good checkpoint\n"
            "stays), 2 usage error.\n",
            (unsigned long long)d.seed, (unsigned long long)d.split_seed, d.val_frac, h.epochs, h.batch,
            (double)h.lr, (double)h.ema, dg_default_threads());
}

static int bad(dg_err *err, const char *opt, const char *val, const char *what) {
    dg_fail(err, "%s %s: expected %s", opt, val, what);
    return DG_EXIT_USAGE;
}

int nn_train_cli_parse(int argc, char **argv, nn_train_cli_opts *o, dg_err *err) {
    memset(o, 0, sizeof *o);
    nn_train_opts_defaults(&o->train);
    o->threads = dg_default_threads();
    char *cmd = dg_cli_join_command(argc, argv);
    if (!cmd) return dg_fail(err, "out of memory"), DG_EXIT_FAIL;
    if (strlen(cmd) >= sizeof o->command) strcpy(cmd + sizeof o->command - 5, " ...");
    strcpy(o->command, cmd);
    free(cmd);
    nn_train_opts *t = &o->train;
    int have_frac = 0, quiet = 0;
    enum { O_DATA = 256, O_MODEL, O_RUN, O_SEED, O_SPLIT_SEED, O_VAL_FRAC, O_FOLDS, O_FOLD, O_EPOCHS, O_BATCH, O_LR,
           O_AUGMENT, O_THREADS, O_RESUME, O_STOP_AT, O_SUMMARY, O_QUIET, O_HELP,
           O_TENSORBOARD, O_DEADLINE, O_CALIBRATE, O_MIX, O_MIX_FRAC, O_EMA };
    static const struct option longopts[] = {
        {"data", required_argument, 0, O_DATA},       {"model", required_argument, 0, O_MODEL},
        {"run", required_argument, 0, O_RUN},         {"seed", required_argument, 0, O_SEED},
        {"split-seed", required_argument, 0, O_SPLIT_SEED}, {"val-frac", required_argument, 0, O_VAL_FRAC},
        {"folds", required_argument, 0, O_FOLDS},     {"fold", required_argument, 0, O_FOLD},
        {"epochs", required_argument, 0, O_EPOCHS},   {"batch", required_argument, 0, O_BATCH},
        {"lr", required_argument, 0, O_LR},           {"augment", required_argument, 0, O_AUGMENT},
        {"threads", required_argument, 0, O_THREADS}, {"resume", no_argument, 0, O_RESUME},
        {"stop-at", required_argument, 0, O_STOP_AT},
        {"summary", no_argument, 0, O_SUMMARY},       {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, O_HELP},
        {"tensorboard", required_argument, 0, O_TENSORBOARD},
        {"deadline", required_argument, 0, O_DEADLINE}, {"calibrate", required_argument, 0, O_CALIBRATE},
        {"mix", required_argument, 0, O_MIX},         {"mix-frac", required_argument, 0, O_MIX_FRAC},
        {"ema", required_argument, 0, O_EMA},
        {0, 0, 0, 0},
    };
    long v;
    int c;
    dg_cli_getopt_reset();
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_DATA: t->data = optarg; break;
        case O_MODEL: t->model = optarg; break;
        case O_RUN: t->run_dir = optarg; break;
        case O_SEED:
            if (dg_parse_u64(optarg, &t->seed) != 0) return bad(err, "--seed", optarg, "an unsigned integer");
            break;
        case O_SPLIT_SEED:
            if (dg_parse_u64(optarg, &t->split_seed) != 0)
                return bad(err, "--split-seed", optarg, "an unsigned integer");
            break;
        case O_VAL_FRAC:
            if (dg_parse_double(optarg, 0, 1, &t->val_frac) != 0 || t->val_frac <= 0 || t->val_frac >= 1)
                return bad(err, "--val-frac", optarg, "a number in (0, 1)");
            have_frac = 1;
            break;
        case O_FOLDS:
            if (dg_parse_long(optarg, 2, 1000, &v) != 0) return bad(err, "--folds", optarg, "an integer in 2..1000");
            t->folds = (int)v;
            break;
        case O_FOLD:
            if (dg_parse_long(optarg, 1, 1000, &v) != 0) return bad(err, "--fold", optarg, "an integer in 1..K");
            t->fold = (int)v;
            break;
        case O_EPOCHS:
            if (dg_parse_long(optarg, 1, 100000, &v) != 0)
                return bad(err, "--epochs", optarg, "an integer in 1..100000");
            t->epochs = (int)v;
            break;
        case O_BATCH:
            if (dg_parse_long(optarg, 1, 65536, &v) != 0) return bad(err, "--batch", optarg, "an integer in 1..65536");
            t->batch = (int)v;
            break;
        case O_LR:
            if (dg_parse_float(optarg, 0, 10, &t->lr) != 0 || t->lr <= 0)
                return bad(err, "--lr", optarg, "a number in (0, 10]");
            break;
        case O_AUGMENT: t->augment = optarg; break;
        case O_EMA:
            /* the range on the float that is stored, as the spec's parser checks it */
            if (dg_parse_float(optarg, 0, 1, &t->ema) != 0 || t->ema >= 1)
                return bad(err, "--ema", optarg, "0 (off) or a decay in (0, 1)");
            break;
        case O_THREADS:
            if (dg_parse_long(optarg, 1, 1024, &v) != 0)
                return bad(err, "--threads", optarg, "an integer in 1..1024");
            o->threads = (int)v;
            break;
        case O_RESUME: t->resume = 1; break;
        case O_STOP_AT:
            if (dg_parse_long(optarg, 1, 100000, &v) != 0)
                return bad(err, "--stop-at", optarg, "an integer in 1..100000");
            t->stop_at = (int)v;
            break;
        case O_SUMMARY: o->summary = 1; break;
        case O_QUIET: quiet = 1; break;
        case O_HELP: o->help = 1; return 0;
        case O_TENSORBOARD: t->tensorboard = optarg; break;
        case O_DEADLINE:
            if (dg_parse_double(optarg, 1, 1e11, &t->deadline) != 0)
                return bad(err, "--deadline", optarg, "UNIX seconds (a number > 0)");
            break;
        case O_CALIBRATE:
            if (dg_parse_double(optarg, 0.01, 600, &o->calibrate) != 0)
                return bad(err, "--calibrate", optarg, "seconds in [0.01, 600]");
            break;
        case O_MIX: t->mix = optarg; break;
        case O_MIX_FRAC:
            if (dg_parse_double(optarg, 0, 1, &t->mix_frac) != 0 || t->mix_frac <= 0 || t->mix_frac >= 1)
                return bad(err, "--mix-frac", optarg, "a number in (0, 1)");
            break;
        default: return dg_cli_bad_option(c, argv, "", longopts, err);
        }
    }
    if (quiet) t->log = NULL;
    if (optind < argc) return dg_fail(err, "unexpected argument '%s'", argv[optind]), DG_EXIT_USAGE;
    if (!t->model) return dg_fail(err, "--model is required"), DG_EXIT_USAGE;
    if ((t->mix != NULL) != (t->mix_frac > 0))
        return dg_fail(err, "--mix FILE and --mix-frac F go together"), DG_EXIT_USAGE;
    if ((t->folds != 0) != (t->fold != 0))
        return dg_fail(err, "--folds K and --fold k go together"), DG_EXIT_USAGE;
    if (t->folds && have_frac) return dg_fail(err, "--val-frac and --folds exclude each other"), DG_EXIT_USAGE;
    if (t->folds && t->fold > t->folds)
        return dg_fail(err, "--fold %d: expected 1..%d", t->fold, t->folds), DG_EXIT_USAGE;
    if (!o->summary && !o->calibrate && (!t->data || !t->run_dir))
        return dg_fail(err, "--data and --run are required"), DG_EXIT_USAGE;
    return 0;
}

/* 1 (stopped by --stop-at, as asked) is a success. */
static int exit_code(int train_rc) {
    return train_rc == 0 || train_rc == 1 ? DG_EXIT_OK : train_rc == NN_TRAIN_USAGE ? DG_EXIT_USAGE : DG_EXIT_FAIL;
}

/* The model o->train would train: its layers, shapes, parameters and FLOPs, to o->out. */
static int summary(const nn_train_cli_opts *o, dg_err *err) {
    if (!o->train.model) return dg_fail(err, "--model is required"), DG_EXIT_USAGE;
    nn_spec spec;
    int rc = nn_train_spec(&spec, &o->train, err);
    if (rc != 0) return exit_code(rc);
    nn_net *net;
    if (nn_net_create(&net, &spec, spec.hyper.batch, err) != 0) {
        nn_spec_free(&spec);
        return DG_EXIT_FAIL;
    }
    if (o->out) nn_net_summary(net, o->out);
    nn_net_free(net);
    nn_spec_free(&spec);
    return DG_EXIT_OK;
}

/* The model's training and inference speed with the threads set, as one JSON line to o->out. */
static int calibrate(const nn_train_cli_opts *o, dg_err *err) {
    nn_calibration c;
    int rc = nn_calibrate(&o->train, o->calibrate, &c, err);
    if (rc != 0) return exit_code(rc);
    cJSON *j = cJSON_CreateObject();
    if (j) {
        cJSON_AddStringToObject(j, "model", o->train.model);
        cJSON_AddNumberToObject(j, "batch", c.batch);
        cJSON_AddNumberToObject(j, "threads", o->threads);
        cJSON_AddNumberToObject(j, "train_ips", c.train_ips);
        cJSON_AddNumberToObject(j, "predict_ips", c.predict_ips);
        cJSON_AddNumberToObject(j, "train_steps", c.train_steps);
        cJSON_AddNumberToObject(j, "predict_steps", c.predict_steps);
    }
    char *text = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!text) return dg_fail(err, "out of memory"), DG_EXIT_FAIL;
    if (o->out) {
        fprintf(o->out, "%s\n", text);
        fflush(o->out);
    }
    free(text);
    return DG_EXIT_OK;
}

int nn_train_cli_run(const nn_train_cli_opts *o, dg_err *err) {
    if (o->summary) return summary(o, err);
    if (o->calibrate > 0) return calibrate(o, err);
    nn_train_opts t = o->train;
    t.command = o->command[0] ? o->command : NULL;
    return exit_code(nn_train_run(&t, err));
}
