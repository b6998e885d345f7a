/* experiments/report/report_cli: digits-report's options, --help and run (see report_cli.h). */
#include "experiments/report/report_cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dg_cli.h"
#include "core/dg_svg.h"
#include "experiments/report/rp_augment.h"
#include "experiments/report/rp_ensemble.h"
#include "experiments/report/rp_page.h"
#include "experiments/report/rp_run.h"

static const rp_report_cli_opts kDefaults = {.gallery = 60, .count = 16, .copies = 5, .seed = 1};

void rp_report_cli_usage(FILE *out) {
    fprintf(out,
            "usage: digits-report (--run DIR | --ensemble MANIFEST | --augment POLICY) [options]\n"
            "\n"
            "One self-contained HTML page (inline SVG and PNG; no network needed to view it):\n"
            "  --run DIR            a finished digits-train run: learning curves, confusion matrix, per-class\n"
            "                       accuracy, misclassified validation digits, model summary, timings, command\n"
            "  --ensemble MANIFEST  a digits-ensemble manifest (submission.manifest.json): members, weights,\n"
            "                       agreement, the estimate, the hold-out digits the ensemble still gets wrong\n"
            "  --augment POLICY     a policy (preset or file): dataset rows beside augmented copies and what each\n"
            "                       copy drew\n"
            "Options:\n"
            "  -o, --output FILE    the page (default DIR/report.html for --run, report.html otherwise)\n"
            "  --data FILE          the dataset (default: the one the run's model file records; required for\n"
            "                       --augment)\n"
            "  --gallery N          at most N mistaken digits (default %d)\n"
            "  --count N            --augment: rows shown (default %d)\n"
            "  --copies N           --augment: copies of each row (default %d)\n"
            "  --seed S             --augment: the draws' seed (default %llu)\n"
            "  --live S             --run: accept a running training (no result.json yet): the curves so far, and a\n"
            "                       page that reloads itself every S seconds (rerun digits-report to refresh it)\n"
            "  --open               print the page's file:// URL\n"
            "  --help               this text\n"
            "\n"
            "Exit status: 0 page written, 1 failure (nothing written), 2 usage error.\n",
            kDefaults.gallery, kDefaults.count, kDefaults.copies, (unsigned long long)kDefaults.seed);
}

static int bad(dg_err *err, const char *opt, const char *val, const char *what) {
    return dg_cli_usage(err, "%s %s: expected %s", opt, val, what);
}

int rp_report_cli_parse(int argc, char **argv, rp_report_cli_opts *o, dg_err *err) {
    *o = kDefaults;
    o->out = stdout;
    enum { O_RUN = 256, O_ENSEMBLE, O_AUGMENT, O_DATA, O_GALLERY, O_COUNT, O_COPIES, O_SEED, O_OPEN, O_HELP, O_LIVE };
    static const char shortopts[] = "o:";
    static const struct option longopts[] = {
        {"run", required_argument, 0, O_RUN},         {"ensemble", required_argument, 0, O_ENSEMBLE},
        {"augment", required_argument, 0, O_AUGMENT}, {"output", required_argument, 0, 'o'},
        {"data", required_argument, 0, O_DATA},       {"gallery", required_argument, 0, O_GALLERY},
        {"count", required_argument, 0, O_COUNT},     {"copies", required_argument, 0, O_COPIES},
        {"seed", required_argument, 0, O_SEED},       {"open", no_argument, 0, O_OPEN},
        {"help", no_argument, 0, O_HELP},             {"live", required_argument, 0, O_LIVE},
        {0, 0, 0, 0},
    };
    long v;
    int c;
    dg_cli_getopt_reset();
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        rp_kind k = RP_NONE;
        switch (c) {
        case O_RUN: k = RP_RUN; break;
        case O_ENSEMBLE: k = RP_ENSEMBLE; break;
        case O_AUGMENT: k = RP_AUGMENT; break;
        case 'o': o->output = optarg; break;
        case O_DATA: o->data = optarg; break;
        case O_GALLERY:
            if (dg_parse_long(optarg, 0, 100000, &v) != 0) return bad(err, "--gallery", optarg, "an integer in 0..100000");
            o->gallery = (int)v;
            break;
        case O_COUNT:
            if (dg_parse_long(optarg, 1, 10000, &v) != 0) return bad(err, "--count", optarg, "an integer in 1..10000");
            o->count = (int)v;
            break;
        case O_COPIES:
            if (dg_parse_long(optarg, 1, 100, &v) != 0) return bad(err, "--copies", optarg, "an integer in 1..100");
            o->copies = (int)v;
            break;
        case O_SEED:
            if (dg_parse_u64(optarg, &o->seed) != 0) return bad(err, "--seed", optarg, "an unsigned integer");
            break;
        case O_OPEN: o->open = 1; break;
        case O_LIVE:
            if (dg_parse_long(optarg, 1, 86400, &v) != 0) return bad(err, "--live", optarg, "seconds in 1..86400");
            o->live = (int)v;
            break;
        case O_HELP: o->help = 1; return 0;
        default: return dg_cli_bad_option(c, argv, shortopts, longopts, err);
        }
        if (k != RP_NONE) {
            if (o->kind != RP_NONE) return dg_cli_usage(err, "give one of --run, --ensemble and --augment");
            o->kind = k;
            o->source = optarg;
        }
    }
    if (optind < argc) return dg_cli_usage(err, "unexpected argument '%s'", argv[optind]);
    if (o->kind == RP_NONE) return dg_cli_usage(err, "one of --run DIR, --ensemble MANIFEST, --augment POLICY is required");
    if (o->kind == RP_AUGMENT && !o->data) return dg_cli_usage(err, "--augment needs --data FILE");
    if (o->live && o->kind != RP_RUN) return dg_cli_usage(err, "--live goes with --run");
    return 0;
}

int rp_report_cli_run(const rp_report_cli_opts *o, dg_err *err) {
    char out_path[4200];
    if (o->output)
        snprintf(out_path, sizeof out_path, "%s", o->output);
    else if (o->kind == RP_RUN)
        snprintf(out_path, sizeof out_path, "%s/report.html", o->source);
    else
        snprintf(out_path, sizeof out_path, "report.html");
    dg_text t = {0};
    int rc;
    if (o->kind == RP_RUN) {
        rp_run_opts r = {o->source, o->data, o->gallery, o->live};
        rc = rp_run_report(&t, &r, err);
    } else if (o->kind == RP_ENSEMBLE) {
        rp_ensemble_opts e = {o->source, o->data, o->gallery};
        rc = rp_ensemble_report(&t, &e, err);
    } else if (o->kind == RP_AUGMENT) {
        rp_augment_opts a = {o->source, o->data, o->count, o->copies, o->seed};
        rc = rp_augment_report(&t, &a, err);
    } else {
        return dg_cli_usage(err, "nothing to report");
    }
    if (rc == 0) rc = rp_page_write(&t, out_path, err);
    dg_text_free(&t);
    if (rc != 0) return DG_EXIT_FAIL;
    if (o->open && o->out) {
        char cwd[4096] = "";
        if (out_path[0] != '/' && !getcwd(cwd, sizeof cwd)) cwd[0] = '\0';
        fprintf(o->out, "file://%s%s%s\n", cwd, cwd[0] ? "/" : "", out_path);
    }
    return DG_EXIT_OK;
}
