/* kaggle/export_cli: digits-export's options, usage and run (see export_cli.h). */
#include "kaggle/export_cli.h"

#include <getopt.h>

#include "core/dg_cli.h"
#include "core/dg_dataset.h"
#include "core/dg_progress.h"

void kg_export_cli_usage(FILE *out) {
    fprintf(out,
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

int kg_export_cli_parse(int argc, char **argv, kg_export_cli_opts *o, dg_err *err) {
    *o = (kg_export_cli_opts){.format = DG_FMT_DATASET, .log = stderr};
    const char *fmt_name = NULL;
    static const struct option longopts[] = {{"format", required_argument, 0, 'f'},
                                             {"output", required_argument, 0, 'o'},
                                             {"quiet", no_argument, 0, 'q'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    int c;
    dg_cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":f:o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': fmt_name = optarg; break;
        case 'o': o->output = optarg; break;
        case 'q': o->log = NULL; break;
        case 'h': o->help = 1; return DG_EXIT_OK;
        default: return dg_cli_bad_option(c, argv, ":f:o:qh", longopts, err);
        }
    }
    if (!fmt_name || dg_format_parse(fmt_name, &o->format) != 0)
        return dg_cli_usage(err, "--format: expected csv, npy, idx or dataset, found %s%s%s",
                                 fmt_name ? "\"" : "", fmt_name ? fmt_name : "nothing", fmt_name ? "\"" : "");
    if (!o->output || optind + 1 != argc) return dg_cli_usage(err, "expected -o PATH and one input dataset");
    o->input = argv[optind];
    return DG_EXIT_OK;
}

int kg_export_cli_run(const kg_export_cli_opts *o, dg_err *err) {
    double t0 = dg_now();
    dg_dataset ds;
    dg_sink *s;
    if (dg_dataset_open(&ds, o->input, err) != 0) return DG_EXIT_FAIL;
    if (dg_sink_open(&s, o->format, o->output, ds.has_labels, err) != 0) {
        dg_dataset_close(&ds);
        return DG_EXIT_FAIL;
    }
    for (size_t i = 0; i < ds.n; i++) {
        if (dg_sink_add(s, dg_dataset_image(&ds, i), dg_dataset_label(&ds, i), err) != 0) {
            dg_sink_abort(s);
            dg_dataset_close(&ds);
            return DG_EXIT_FAIL;
        }
    }
    size_t n = ds.n;
    int labelled = ds.has_labels;
    dg_dataset_close(&ds);
    if (dg_sink_commit(s, err) != 0) return DG_EXIT_FAIL;
    if (o->log) {
        char names[2][4096];
        dg_err ignored;
        int k = dg_sink_paths(o->format, o->output, labelled, names, &ignored);
        fprintf(o->log, "digits-export: %s -> %s%s%s: %zu %s images (%s) in %.3f s\n", o->input,
                k >= 1 ? names[0] : o->output, k == 2 ? " + " : "", k == 2 ? names[1] : "", n,
                labelled ? "labelled" : "unlabelled", dg_format_name(o->format), dg_now() - t0);
    }
    return DG_EXIT_OK;
}
