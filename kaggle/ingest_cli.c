/* kaggle/ingest_cli: digits-ingest's options, usage and run (see ingest_cli.h). */
#include "kaggle/ingest_cli.h"

#include <getopt.h>

#include "core/dg_cli.h"

void kg_ingest_cli_usage(FILE *out) {
    fprintf(out,
            "usage: digits-ingest [--expect train|test|auto] [--threads N] [--reference] -o OUT.npy IN.csv\n"
            "\n"
            "Convert a Kaggle Digit Recognizer CSV (train.csv: label,pixel0..pixel783; test.csv: pixel0..pixel783)\n"
            "into a dataset file (NumPy structured array, see core/dg_dataset.h). A malformed file is rejected\n"
            "with one line naming file:line:column and what was expected; no output file is left behind.\n"
            "\n"
            "  -o, --output PATH   dataset file to write (required)\n"
            "  -e, --expect KIND   train (labelled), test (unlabelled) or auto (from the header) [%s]\n"
            "  -t, --threads N     threads parsing chunks of the file in parallel [%d = OMP_NUM_THREADS or online CPUs]\n"
            "      --reference     parse every row with libcsv (no fast scanner); same output, slower\n"
            "  -q, --quiet         no summary line\n"
            "  -h, --help          this text\n",
            kg_expect_name(kg_ingest_opts_default().expect), dg_default_threads());
}

int kg_ingest_cli_parse(int argc, char **argv, kg_ingest_cli_opts *o, dg_err *err) {
    *o = (kg_ingest_cli_opts){.ingest = kg_ingest_opts_default(), .log = stderr};
    static const struct option longopts[] = {{"output", required_argument, 0, 'o'},
                                             {"expect", required_argument, 0, 'e'},
                                             {"threads", required_argument, 0, 't'},
                                             {"reference", no_argument, 0, 'r'},
                                             {"quiet", no_argument, 0, 'q'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    int c;
    long v;
    dg_cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":o:e:t:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': o->output = optarg; break;
        case 'e':
            if (kg_expect_parse(optarg, &o->ingest.expect) != 0)
                return dg_cli_usage(err, "--expect: expected train, test or auto, found \"%s\"", optarg);
            break;
        case 't':
            if (dg_parse_long(optarg, 1, 1024, &v) != 0)
                return dg_cli_usage(err, "--threads: expected an integer 1..1024, found \"%s\"", optarg);
            o->ingest.threads = (int)v;
            break;
        case 'r': o->ingest.reference = 1; break;
        case 'q': o->log = NULL; break;
        case 'h': o->help = 1; return DG_EXIT_OK;
        default: return dg_cli_bad_option(c, argv, ":o:e:t:qh", longopts, err);
        }
    }
    if (!o->output || optind + 1 != argc) return dg_cli_usage(err, "expected -o OUT.npy and one input CSV");
    o->input = argv[optind];
    return DG_EXIT_OK;
}

int kg_ingest_cli_run(const kg_ingest_cli_opts *o, dg_err *err) {
    kg_ingest_stats st;
    if (kg_ingest_ex(o->input, o->output, &o->ingest, &st, err) != 0) return DG_EXIT_FAIL;
    if (o->log)
        fprintf(o->log,
                "digits-ingest: %s -> %s: %zu %s rows, %.1f MB in %.3f s (%.0f MB/s, %d threads, %d chunks%s)\n",
                o->input, o->output, st.rows, st.has_labels ? "labelled" : "unlabelled", st.bytes / 1e6, st.seconds,
                st.bytes / 1e6 / (st.seconds > 0 ? st.seconds : 1e-9), st.threads, st.chunks,
                o->ingest.reference ? ", libcsv only" : "");
    return DG_EXIT_OK;
}
