/* digits-train: train one model on a labelled dataset into a run directory (see nn/train.h for the directory).
 * Options parsing, thread setup and exit codes only; the work is nn_train_run. Exit 0 once result.json is written,
 * 1 on failure, 2 on a usage error. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/net.h"
#include "nn/spec.h"
#include "nn/train.h"
#include "core/dg_cli.h"

static void usage(FILE *out) {
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
            "  --threads T        threads for OpenMP and OpenBLAS (default: $OMP_NUM_THREADS or all CPUs, now %d)\n"
            "  --resume           continue DIR from its checkpoint (bit-identical to an uninterrupted run with the\n"
            "                     same seed and threads); a finished DIR is left as it is\n"
            "  --summary          print the model's layers, shapes, parameters and FLOPs, and exit\n"
            "  --quiet            no per-epoch lines or progress bar\n"
            "  --help             this text\n"
            "\n"
            "Exit status: 0 result.json written, 1 failure (the last good checkpoint stays), 2 usage error.\n",
            (unsigned long long)d.seed, (unsigned long long)d.split_seed, d.val_frac, h.epochs, h.batch,
            (double)h.lr, dg_default_threads());
}

static int bad(const char *opt, const char *val, const char *what) {
    fprintf(stderr, "digits-train: %s %s: expected %s (see --help)\n", opt, val, what);
    return DG_EXIT_USAGE;
}

int main(int argc, char **argv) {
    nn_train_opts o;
    nn_train_opts_defaults(&o);
    int threads = dg_default_threads(), summary = 0, quiet = 0, have_frac = 0;
    enum { O_DATA = 256, O_MODEL, O_RUN, O_SEED, O_SPLIT_SEED, O_VAL_FRAC, O_FOLDS, O_FOLD, O_EPOCHS, O_BATCH, O_LR,
           O_AUGMENT, O_THREADS, O_RESUME, O_SUMMARY, O_QUIET, O_HELP };
    static const struct option longopts[] = {
        {"data", required_argument, 0, O_DATA},       {"model", required_argument, 0, O_MODEL},
        {"run", required_argument, 0, O_RUN},         {"seed", required_argument, 0, O_SEED},
        {"split-seed", required_argument, 0, O_SPLIT_SEED}, {"val-frac", required_argument, 0, O_VAL_FRAC},
        {"folds", required_argument, 0, O_FOLDS},     {"fold", required_argument, 0, O_FOLD},
        {"epochs", required_argument, 0, O_EPOCHS},   {"batch", required_argument, 0, O_BATCH},
        {"lr", required_argument, 0, O_LR},           {"augment", required_argument, 0, O_AUGMENT},
        {"threads", required_argument, 0, O_THREADS}, {"resume", no_argument, 0, O_RESUME},
        {"summary", no_argument, 0, O_SUMMARY},       {"quiet", no_argument, 0, O_QUIET},
        {"help", no_argument, 0, O_HELP},             {0, 0, 0, 0},
    };
    long v;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_DATA: o.data = optarg; break;
        case O_MODEL: o.model = optarg; break;
        case O_RUN: o.run_dir = optarg; break;
        case O_SEED:
            if (dg_parse_u64(optarg, &o.seed) != 0) return bad("--seed", optarg, "an unsigned integer");
            break;
        case O_SPLIT_SEED:
            if (dg_parse_u64(optarg, &o.split_seed) != 0) return bad("--split-seed", optarg, "an unsigned integer");
            break;
        case O_VAL_FRAC:
            if (dg_parse_double(optarg, 0, 1, &o.val_frac) != 0 || o.val_frac <= 0 || o.val_frac >= 1)
                return bad("--val-frac", optarg, "a number in (0, 1)");
            have_frac = 1;
            break;
        case O_FOLDS:
            if (dg_parse_long(optarg, 2, 1000, &v) != 0) return bad("--folds", optarg, "an integer in 2..1000");
            o.folds = (int)v;
            break;
        case O_FOLD:
            if (dg_parse_long(optarg, 1, 1000, &v) != 0) return bad("--fold", optarg, "an integer in 1..K");
            o.fold = (int)v;
            break;
        case O_EPOCHS:
            if (dg_parse_long(optarg, 1, 100000, &v) != 0) return bad("--epochs", optarg, "an integer in 1..100000");
            o.epochs = (int)v;
            break;
        case O_BATCH:
            if (dg_parse_long(optarg, 1, 65536, &v) != 0) return bad("--batch", optarg, "an integer in 1..65536");
            o.batch = (int)v;
            break;
        case O_LR:
            if (dg_parse_float(optarg, 0, 10, &o.lr) != 0 || o.lr <= 0)
                return bad("--lr", optarg, "a number in (0, 10]");
            break;
        case O_AUGMENT: o.augment = optarg; break;
        case O_THREADS:
            if (dg_parse_long(optarg, 1, 1024, &v) != 0) return bad("--threads", optarg, "an integer in 1..1024");
            threads = (int)v;
            break;
        case O_RESUME: o.resume = 1; break;
        case O_SUMMARY: summary = 1; break;
        case O_QUIET: quiet = 1; break;
        case O_HELP: usage(stdout); return DG_EXIT_OK;
        default: usage(stderr); return DG_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "digits-train: unexpected argument '%s' (see --help)\n", argv[optind]);
        return DG_EXIT_USAGE;
    }
    if (!o.model) {
        fprintf(stderr, "digits-train: --model is required (see --help)\n");
        return DG_EXIT_USAGE;
    }
    if ((o.folds != 0) != (o.fold != 0)) {
        fprintf(stderr, "digits-train: --folds K and --fold k go together (see --help)\n");
        return DG_EXIT_USAGE;
    }
    if (o.folds && have_frac) {
        fprintf(stderr, "digits-train: --val-frac and --folds exclude each other\n");
        return DG_EXIT_USAGE;
    }
    if (o.folds && o.fold > o.folds) {
        fprintf(stderr, "digits-train: --fold %d: expected 1..%d\n", o.fold, o.folds);
        return DG_EXIT_USAGE;
    }
    dg_set_threads(threads);
    dg_err err = {{0}};
    if (summary) {
        nn_spec spec;
        nn_net *net;
        int rc = nn_train_spec(&spec, &o, &err);
        if (rc != 0) {
            fprintf(stderr, "digits-train: %s\n", err.msg);
            return rc == NN_TRAIN_USAGE ? DG_EXIT_USAGE : DG_EXIT_FAIL;
        }
        rc = nn_net_create(&net, &spec, spec.hyper.batch, &err);
        if (rc != 0) {
            nn_spec_free(&spec);
            fprintf(stderr, "digits-train: %s\n", err.msg);
            return DG_EXIT_FAIL;
        }
        nn_net_summary(net, stdout);
        nn_net_free(net);
        nn_spec_free(&spec);
        return DG_EXIT_OK;
    }
    if (!o.data || !o.run_dir) {
        fprintf(stderr, "digits-train: --data and --run are required (see --help)\n");
        return DG_EXIT_USAGE;
    }
    if (quiet) o.log = NULL;
    int rc = nn_train_run(&o, &err);
    if (rc == 0) return DG_EXIT_OK;
    fprintf(stderr, "digits-train: %s\n", err.msg);
    return rc == NN_TRAIN_USAGE ? DG_EXIT_USAGE : DG_EXIT_FAIL;
}
