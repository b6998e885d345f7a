/* digits-export: a dataset file -> CSV, .npy, IDX or another dataset file (see core/dg_sink.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "core/dg_sink.h"
#include "core/dg_dataset.h"
#include "core/dg_progress.h"

static void usage(FILE *fp) {
    fprintf(fp,
            "usage: digits-export --format csv|npy|idx|dataset -o PATH IN.npy\n"
            "\n"
            "Write the images (and labels) of a dataset file (from digits-ingest or digits-augment) as:\n"
            "  csv      PATH: Kaggle CSV label,pixel0..pixel783 (pixel0..pixel783 without labels), LF line ends\n"
            "  npy      PATH: (N,28,28) uint8 images; labels in PATH with .npy replaced by -labels.npy: (N,) uint8\n"
            "  idx      PATH-images-idx3-ubyte and PATH-labels-idx1-ubyte (MNIST IDX)\n"
            "  dataset  PATH: a copy in the dataset format\n"
            "All files appear only when complete (write-then-rename).\n"
            "\n"
            "  -f, --format FMT    output format (required)\n"
            "  -o, --output PATH   output path (required)\n"
            "  -q, --quiet         no summary line\n"
            "  -h, --help          this text\n");
}

int main(int argc, char **argv) {
    const char *out = NULL, *fmt_name = NULL;
    int quiet = 0;
    static const struct option longopts[] = {{"format", required_argument, 0, 'f'},
                                             {"output", required_argument, 0, 'o'},
                                             {"quiet", no_argument, 0, 'q'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "f:o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': fmt_name = optarg; break;
        case 'o': out = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return DG_EXIT_OK;
        default: usage(stderr); return DG_EXIT_USAGE;
        }
    }
    dg_format fmt;
    if (!fmt_name || dg_format_parse(fmt_name, &fmt) != 0) {
        fprintf(stderr, "digits-export: --format: expected csv, npy, idx or dataset, found %s%s%s\n",
                fmt_name ? "\"" : "", fmt_name ? fmt_name : "nothing", fmt_name ? "\"" : "");
        return DG_EXIT_USAGE;
    }
    if (!out || optind + 1 != argc) {
        fprintf(stderr, "digits-export: expected -o PATH and one input dataset\n");
        usage(stderr);
        return DG_EXIT_USAGE;
    }
    double t0 = dg_now();
    dg_err err;
    dg_dataset ds;
    if (dg_dataset_open(&ds, argv[optind], &err) != 0) {
        fprintf(stderr, "digits-export: %s\n", err.msg);
        return DG_EXIT_FAIL;
    }
    dg_sink *s;
    if (dg_sink_open(&s, fmt, out, ds.has_labels, &err) != 0) {
        fprintf(stderr, "digits-export: %s\n", err.msg);
        dg_dataset_close(&ds);
        return DG_EXIT_FAIL;
    }
    for (size_t i = 0; i < ds.n; i++) {
        if (dg_sink_add(s, dg_dataset_image(&ds, i), dg_dataset_label(&ds, i), &err) != 0) {
            fprintf(stderr, "digits-export: %s\n", err.msg);
            dg_sink_abort(s);
            dg_dataset_close(&ds);
            return DG_EXIT_FAIL;
        }
    }
    size_t n = ds.n;
    int labelled = ds.has_labels;
    dg_dataset_close(&ds);
    if (dg_sink_commit(s, &err) != 0) {
        fprintf(stderr, "digits-export: %s\n", err.msg);
        return DG_EXIT_FAIL;
    }
    if (!quiet) {
        char names[2][4096];
        int k = dg_sink_paths(fmt, out, labelled, names, &err);
        fprintf(stderr, "digits-export: %s -> %s%s%s: %zu %s images (%s) in %.3f s\n", argv[optind], names[0],
                k == 2 ? " + " : "", k == 2 ? names[1] : "", n, labelled ? "labelled" : "unlabelled",
                dg_format_name(fmt), dg_now() - t0);
    }
    return DG_EXIT_OK;
}
