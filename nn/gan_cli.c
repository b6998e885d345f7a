/* nn/gan_cli: digits-gan's options and run (see nn/gan_cli.h). */
#include "nn/gan_cli.h"

#include <getopt.h>
#include <string.h>

#include "core/dg_cli.h"
#include "core/dg_progress.h"

#define DEFAULT_GEN "gan-g"
#define DEFAULT_DISC "gan-d"
#define DEFAULT_SEED 1

void nn_gan_cli_usage(FILE *out) {
    fprintf(out,
            "Usage: digits-gan train --data FILE --run DIR [options]\n"
            "       digits-gan sample --label D|all -n N -o FILE [--grid PNG] [--seed S] RUN\n"
            "       digits-gan judge --samples FILE --classifier RUN|MODEL --real FILE [-n N] [--json FILE]\n"
            "\n"
            "train: a conditional GAN (generator and discriminator specs) on a labelled dataset.\n"
            "  --data FILE        labelled dataset (.npy from digits-ingest)\n"
            "  --run DIR          run directory (created): gan.ckpt and metrics.jsonl after every epoch,\n"
            "                     grid-epoch-NNN.png (one row per label, fixed noise)\n"
            "  --gen SPEC         generator spec, a file or a name in experiments/models (default %s)\n"
            "  --disc SPEC        discriminator spec (default %s)\n"
            "  --epochs N         override the generator spec's epochs\n"
            "  --seed S           initialization, order and noise (default %d)\n"
            "  --limit N          train on the dataset's first N rows\n"
            "  --resume           continue DIR from gan.ckpt (bit-identical to an uninterrupted run)\n"
            "  --stop-at E        stop once DIR holds E epochs (a later --resume continues)\n"
            "  --seconds S        stop after the step during which S seconds have passed, even mid-epoch\n"
            "                     (checkpoint of that step; a later --resume continues from it)\n"
            "  --quiet            no per-epoch lines\n"
            "\n"
            "sample: generated digits with their labels, as a labelled dataset (the format digits-train reads).\n"
            "  RUN                a digits-gan run directory or its gan.ckpt\n"
            "  --label D|all      the digit 0..9, or all (image i gets label i %% 10)\n"
            "  -n, --count N      images, 1..%ld\n"
            "  -o, --out FILE     the dataset to write\n"
            "  --grid PNG         also a 10x10 grid of the first 100 (label all: one row per label)\n"
            "  --seed S           the noise (default %d): the same seed gives the same bytes\n"
            "\n"
            "judge: generated digits measured with a trained classifier as the judge (a table on stdout).\n"
            "  --samples FILE     a labelled dataset of generated digits (from sample, or any generator)\n"
            "  --classifier M     a digits-train run directory or its model.safetensors\n"
            "  --real FILE        the dataset the classifier trained on: its validation hold-out gives the\n"
            "                     real digits (digits it never trained on)\n"
            "  --split-seed S     the hold-out (default: the one the model records; 1 if it records none)\n"
            "  --val-frac F       (default: the model's; 0.1 if it records none)\n"
            "  -n, --count N      the first N generated and N real digits (default %d)\n"
            "  --json FILE        also the figures as JSON\n"
            "  Measures: conditional accuracy (share labelled as generated for), digits-FID (Frechet distance of\n"
            "  the classifier's penultimate features, overall and per class), per-class diversity (mean pairwise\n"
            "  feature distance of generated over real digits: 1 as diverse as real, 0 one image repeated).\n"
            "\n"
            "All:\n"
            "  --threads T        threads for OpenMP and OpenBLAS (default: $OMP_NUM_THREADS or all CPUs, now %d)\n"
            "  --help             this text\n"
            "\n"
            "Exit status: 0 done, 1 failure (no partial outputs; a run keeps its last checkpoint), 2 usage error.\n",
            DEFAULT_GEN, DEFAULT_DISC, DEFAULT_SEED, NN_GAN_MAX_SAMPLES, DEFAULT_SEED, NN_JUDGE_DEFAULT_N,
            dg_default_threads());
}

static int bad(dg_err *err, const char *opt, const char *val, const char *what) {
    dg_fail(err, "%s %s: expected %s", opt, val, what);
    return DG_EXIT_USAGE;
}

int nn_gan_cli_parse(int argc, char **argv, nn_gan_cli_opts *o, dg_err *err) {
    memset(o, 0, sizeof *o);
    o->threads = dg_default_threads();
    o->train.gen = DEFAULT_GEN;
    o->train.disc = DEFAULT_DISC;
    o->train.seed = DEFAULT_SEED;
    o->train.log = stderr;
    o->sample.seed = DEFAULT_SEED;
    o->sample.label = -2; /* not given */
    o->judge.n = NN_JUDGE_DEFAULT_N;
    o->judge.report = stdout;
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        o->help = 1;
        return 0;
    }
    if (argc < 2) return dg_cli_usage(err, "expected a command: train, sample or judge");
    if (!strcmp(argv[1], "train")) o->cmd = NN_GAN_TRAIN;
    else if (!strcmp(argv[1], "sample")) o->cmd = NN_GAN_SAMPLE;
    else if (!strcmp(argv[1], "judge")) o->cmd = NN_GAN_JUDGE;
    else return dg_cli_usage(err, "'%s': expected a command, train, sample or judge", argv[1]);

    enum { O_DATA = 256, O_RUN, O_GEN, O_DISC, O_EPOCHS, O_SEED, O_LIMIT, O_RESUME, O_STOP_AT, O_QUIET, O_LABEL,
           O_GRID, O_THREADS, O_HELP, O_SAMPLES, O_CLASSIFIER, O_REAL, O_SPLIT_SEED, O_VAL_FRAC, O_JSON,
           O_SECONDS };
    static const struct option longopts[] = {
        {"data", required_argument, 0, O_DATA},     {"run", required_argument, 0, O_RUN},
        {"gen", required_argument, 0, O_GEN},       {"disc", required_argument, 0, O_DISC},
        {"epochs", required_argument, 0, O_EPOCHS}, {"seed", required_argument, 0, O_SEED},
        {"limit", required_argument, 0, O_LIMIT},   {"resume", no_argument, 0, O_RESUME},
        {"stop-at", required_argument, 0, O_STOP_AT}, {"quiet", no_argument, 0, O_QUIET},
        {"label", required_argument, 0, O_LABEL},   {"count", required_argument, 0, 'n'},
        {"out", required_argument, 0, 'o'},         {"grid", required_argument, 0, O_GRID},
        {"threads", required_argument, 0, O_THREADS}, {"help", no_argument, 0, O_HELP},
        {"samples", required_argument, 0, O_SAMPLES}, {"classifier", required_argument, 0, O_CLASSIFIER},
        {"real", required_argument, 0, O_REAL},     {"split-seed", required_argument, 0, O_SPLIT_SEED},
        {"val-frac", required_argument, 0, O_VAL_FRAC}, {"json", required_argument, 0, O_JSON},
        {"seconds", required_argument, 0, O_SECONDS},
        {0, 0, 0, 0},
    };
    static const char shortopts[] = "n:o:";
    /* which commands take an option: a bit per command */
    enum { TR = 1 << NN_GAN_TRAIN, SA = 1 << NN_GAN_SAMPLE, JU = 1 << NN_GAN_JUDGE };
    static const char *const cmd_name[] = {"train", "sample", "judge"};
    int train = o->cmd == NN_GAN_TRAIN, c, quiet = 0;
    long v;
    dg_cli_getopt_reset();
    /* argv + 1: the command is getopt's program name */
    while ((c = getopt_long(argc - 1, argv + 1, shortopts, longopts, NULL)) != -1) {
        int only = TR | SA | JU; /* the commands that take this option */
        switch (c) {
        case O_DATA: o->train.data = optarg, only = TR; break;
        case O_RUN: o->train.run = optarg, only = TR; break;
        case O_GEN: o->train.gen = optarg, only = TR; break;
        case O_DISC: o->train.disc = optarg, only = TR; break;
        case O_EPOCHS:
            if (dg_parse_long(optarg, 1, 100000, &v) != 0)
                return bad(err, "--epochs", optarg, "an integer in 1..100000");
            o->train.epochs = (int)v, only = TR;
            break;
        case O_LIMIT:
            if (dg_parse_long(optarg, 1, 1000000000L, &v) != 0)
                return bad(err, "--limit", optarg, "an integer in 1..1000000000");
            o->train.limit = (size_t)v, only = TR;
            break;
        case O_RESUME: o->train.resume = 1, only = TR; break;
        case O_STOP_AT:
            if (dg_parse_long(optarg, 1, 100000, &v) != 0)
                return bad(err, "--stop-at", optarg, "an integer in 1..100000");
            o->train.stop_at = (int)v, only = TR;
            break;
        case O_QUIET: quiet = 1, only = TR; break;
        case O_SECONDS:
            if (dg_parse_double(optarg, 0.001, 1e9, &o->seconds) != 0)
                return bad(err, "--seconds", optarg, "a number of seconds in 0.001..1e9");
            only = TR;
            break;
        case O_SEED:
            if (dg_parse_u64(optarg, &o->train.seed) != 0) return bad(err, "--seed", optarg, "an unsigned integer");
            o->sample.seed = o->train.seed;
            only = TR | SA;
            break;
        case O_LABEL:
            if (!strcmp(optarg, "all")) o->sample.label = -1;
            else if (dg_parse_long(optarg, 0, 9, &v) == 0) o->sample.label = (int)v;
            else return bad(err, "--label", optarg, "a digit 0..9 or all");
            only = SA;
            break;
        case 'n':
            if (o->cmd == NN_GAN_JUDGE) {
                if (dg_parse_long(optarg, 2, NN_GAN_MAX_SAMPLES, &v) != 0) {
                    dg_fail(err, "-n %s: expected an integer in 2..%ld", optarg, NN_GAN_MAX_SAMPLES);
                    return DG_EXIT_USAGE;
                }
                o->judge.n = v;
                break;
            }
            if (dg_parse_long(optarg, 1, NN_GAN_MAX_SAMPLES, &v) != 0) {
                dg_fail(err, "-n %s: expected an integer in 1..%ld", optarg, NN_GAN_MAX_SAMPLES);
                return DG_EXIT_USAGE;
            }
            o->sample.n = v, only = SA;
            break;
        case O_SAMPLES: o->judge.samples = optarg, only = JU; break;
        case O_CLASSIFIER: o->judge.classifier = optarg, only = JU; break;
        case O_REAL: o->judge.real = optarg, only = JU; break;
        case O_JSON: o->judge.json = optarg, only = JU; break;
        case O_SPLIT_SEED:
            if (dg_parse_u64(optarg, &o->judge.split_seed) != 0)
                return bad(err, "--split-seed", optarg, "an unsigned integer");
            o->judge.split_seed_set = 1, only = JU;
            break;
        case O_VAL_FRAC:
            if (dg_parse_double(optarg, 0, 1, &o->judge.val_frac) != 0 || o->judge.val_frac <= 0 ||
                o->judge.val_frac >= 1)
                return bad(err, "--val-frac", optarg, "a number in (0, 1)");
            o->judge.val_frac_set = 1, only = JU;
            break;
        case 'o': o->sample.out = optarg, only = SA; break;
        case O_GRID: o->sample.grid = optarg, only = SA; break;
        case O_THREADS:
            if (dg_parse_long(optarg, 1, 1024, &v) != 0)
                return bad(err, "--threads", optarg, "an integer in 1..1024");
            o->threads = (int)v;
            break;
        case O_HELP: o->help = 1; return 0;
        default: return dg_cli_bad_option(c, argv + 1, shortopts, longopts, err);
        }
        if (!(only & (1 << o->cmd))) {
            const char *name = "?";
            for (const struct option *l = longopts; l->name; l++)
                if (l->val == c) name = l->name;
            char cmds[32] = "";
            for (int k = 0; k < 3; k++)
                if (only & (1 << k))
                    snprintf(cmds + strlen(cmds), sizeof cmds - strlen(cmds), "%s%s", cmds[0] ? " and " : "",
                             cmd_name[k]);
            return dg_cli_usage(err, "--%s is an option of digits-gan %s", name, cmds);
        }
    }
    if (quiet) o->train.log = NULL;
    int rest = argc - 1 - optind;
    if (train) {
        if (rest > 0) return dg_cli_usage(err, "unexpected argument '%s'", argv[1 + optind]);
        if (!o->train.data || !o->train.run) return dg_cli_usage(err, "train: --data and --run are required");
    } else if (o->cmd == NN_GAN_JUDGE) {
        if (rest > 0) return dg_cli_usage(err, "unexpected argument '%s'", argv[1 + optind]);
        if (!o->judge.samples || !o->judge.classifier || !o->judge.real)
            return dg_cli_usage(err, "judge: --samples, --classifier and --real are required");
    } else {
        if (rest != 1) return dg_cli_usage(err, "sample: expected one RUN (a digits-gan run directory)");
        o->sample.run = argv[1 + optind];
        if (o->sample.label == -2) return dg_cli_usage(err, "sample: --label D|all is required");
        if (!o->sample.n) return dg_cli_usage(err, "sample: -n N is required");
        if (!o->sample.out) return dg_cli_usage(err, "sample: -o FILE is required");
    }
    return 0;
}

int nn_gan_cli_run(const nn_gan_cli_opts *o, dg_err *err) {
    nn_gan_train_opts t = o->train;
    if (o->seconds > 0) t.deadline = dg_now() + o->seconds;
    nn_judge_result r;
    int rc = o->cmd == NN_GAN_TRAIN    ? nn_gan_train(&t, err)
             : o->cmd == NN_GAN_SAMPLE ? nn_gan_sample(&o->sample, err)
                                       : nn_judge(&o->judge, &r, err);
    return rc == 0 ? DG_EXIT_OK : DG_EXIT_FAIL;
}
