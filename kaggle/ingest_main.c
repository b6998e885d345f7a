/* digits-ingest: Kaggle train.csv / test.csv -> dataset .npy (see kaggle/ingest.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "kaggle/ingest.h"
#include "core/dg_cli.h"

static void usage(FILE *fp, const kg_ingest_opts *d) {
    fprintf(fp,
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
            kg_expect_name(d->expect), dg_default_threads());
}

int main(int argc, char **argv) {
    kg_ingest_opts o = kg_ingest_opts_default();
    const char *out = NULL;
    int quiet = 0;
    static const struct option longopts[] = {{"output", required_argument, 0, 'o'},
                                             {"expect", required_argument, 0, 'e'},
                                             {"threads", required_argument, 0, 't'},
                                             {"reference", no_argument, 0, 'r'},
                                             {"quiet", no_argument, 0, 'q'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "o:e:t:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'e':
            if (kg_expect_parse(optarg, &o.expect) != 0) {
                fprintf(stderr, "digits-ingest: --expect: expected train, test or auto, found \"%s\"\n", optarg);
                return DG_EXIT_USAGE;
            }
            break;
        case 't':
            if (dg_parse_long(optarg, 1, 1024, &v) != 0) {
                fprintf(stderr, "digits-ingest: --threads: expected an integer 1..1024, found \"%s\"\n", optarg);
                return DG_EXIT_USAGE;
            }
            o.threads = (int)v;
            break;
        case 'r': o.reference = 1; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout, &o); return DG_EXIT_OK;
        default: usage(stderr, &o); return DG_EXIT_USAGE;
        }
    }
    if (!out || optind + 1 != argc) {
        fprintf(stderr, "digits-ingest: expected -o OUT.npy and one input CSV\n");
        usage(stderr, &o);
        return DG_EXIT_USAGE;
    }
    if (o.threads <= 0) o.threads = dg_default_threads();
    dg_set_threads(o.threads);
    kg_ingest_stats st;
    dg_err err;
    if (kg_ingest_ex(argv[optind], out, &o, &st, &err) != 0) {
        fprintf(stderr, "digits-ingest: %s\n", err.msg);
        return DG_EXIT_FAIL;
    }
    if (!quiet)
        fprintf(stderr, "digits-ingest: %s -> %s: %zu %s rows, %.1f MB in %.3f s (%.0f MB/s, %d threads, %d chunks%s)\n",
                argv[optind], out, st.rows, st.has_labels ? "labelled" : "unlabelled", st.bytes / 1e6, st.seconds,
                st.bytes / 1e6 / (st.seconds > 0 ? st.seconds : 1e-9), st.threads, st.chunks,
                o.reference ? ", libcsv only" : "");
    return DG_EXIT_OK;
}
