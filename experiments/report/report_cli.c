/* experiments/report/report_cli: digits-report's options, --help and run (see report_cli.h). */
#define _POSIX_C_SOURCE 200809L /* nanosleep, st_mtim */
#include "experiments/report/report_cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/dg_cli.h"
#include "core/dg_file.h"
#include "core/dg_svg.h"
#include "experiments/report/rp_augment.h"
#include "experiments/report/rp_ensemble.h"
#include "experiments/report/rp_page.h"
#include "experiments/report/rp_run.h"
#include "experiments/report/rp_sweep.h"

static const rp_report_cli_opts kDefaults = {.gallery = 60, .count = 16, .copies = 5, .seed = 1, .follow_idle = 3600};

void rp_report_cli_usage(FILE *out) {
    fprintf(out,
            "usage: digits-report (--run DIR | --ensemble MANIFEST | --sweep DIR | --augment POLICY) [options]\n"
            "\n"
            "One self-contained HTML page (inline SVG and PNG; no network needed to view it):\n"
            "  --run DIR            a finished digits-train run: learning curves, confusion matrix, per-class\n"
            "                       accuracy, misclassified validation digits, model summary, timings, command\n"
            "  --ensemble MANIFEST  a digits-ensemble manifest (submission.manifest.json): members, weights,\n"
            "                       agreement, the estimate, the hold-out digits the ensemble still gets wrong\n"
            "  --sweep DIR          a digits-sweep directory (its sweep.db, read-only) or database: leaderboard,\n"
            "                       metric per trial over epochs with ASHA's rungs, metric against each parameter,\n"
            "                       parallel coordinates, mean +- SD per configuration\n"
            "  --augment POLICY     a policy (preset or file): dataset rows beside augmented copies and what each\n"
            "                       copy drew\n"
            "Options:\n"
            "  -o, --output FILE    the page (default DIR/report.html for --run and --sweep DIR, report.html\n"
            "                       otherwise)\n"
            "  --data FILE          the dataset (default: the one the run's model file records; required for\n"
            "                       --augment)\n"
            "  --gallery N          at most N mistaken digits (default %d)\n"
            "  --count N            --augment: rows shown (default %d)\n"
            "  --copies N           --augment: copies of each row (default %d)\n"
            "  --seed S             --augment: the draws' seed (default %llu)\n"
            "  --live S             --run: accept a running training (no result.json yet): the curves so far, and a\n"
            "                       page that reloads itself every S seconds (rerun digits-report to refresh it);\n"
            "                       --sweep: the page of a running sweep reloads itself every S seconds\n"
            "  --follow S           --run, --sweep: keep the page current while the training or sweep runs: render\n"
            "                       again whenever its files change (checked every S seconds; the page reloads\n"
            "                       itself every S seconds meanwhile) and return when the run has written\n"
            "                       result.json or the sweep has no trial running, and nothing changed for S\n"
            "                       seconds (a run that stops changing for %d s is left as it is)\n"
            "  --open               print the page's file:// URL\n"
            "  --help               this text\n"
            "\n"
            "Exit status: 0 page written, 1 failure (nothing written; with --follow, the last good page stays), 2\n"
            "usage error.\n",
            kDefaults.gallery, kDefaults.count, kDefaults.copies, (unsigned long long)kDefaults.seed,
            kDefaults.follow_idle);
}

static int bad(dg_err *err, const char *opt, const char *val, const char *what) {
    return dg_cli_usage(err, "%s %s: expected %s", opt, val, what);
}

int rp_report_cli_parse(int argc, char **argv, rp_report_cli_opts *o, dg_err *err) {
    *o = kDefaults;
    o->out = stdout;
    enum { O_RUN = 256, O_ENSEMBLE, O_AUGMENT, O_DATA, O_GALLERY, O_COUNT, O_COPIES, O_SEED, O_OPEN, O_HELP, O_LIVE,
           O_SWEEP, O_FOLLOW };
    static const char shortopts[] = "o:";
    static const struct option longopts[] = {
        {"run", required_argument, 0, O_RUN},         {"ensemble", required_argument, 0, O_ENSEMBLE},
        {"augment", required_argument, 0, O_AUGMENT}, {"output", required_argument, 0, 'o'},
        {"data", required_argument, 0, O_DATA},       {"gallery", required_argument, 0, O_GALLERY},
        {"count", required_argument, 0, O_COUNT},     {"copies", required_argument, 0, O_COPIES},
        {"seed", required_argument, 0, O_SEED},       {"open", no_argument, 0, O_OPEN},
        {"help", no_argument, 0, O_HELP},             {"live", required_argument, 0, O_LIVE},
        {"sweep", required_argument, 0, O_SWEEP},     {"follow", required_argument, 0, O_FOLLOW},
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
        case O_SWEEP: k = RP_SWEEP; break;
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
        case O_FOLLOW:
            if (dg_parse_long(optarg, 1, 86400, &v) != 0) return bad(err, "--follow", optarg, "seconds in 1..86400");
            o->follow = (int)v;
            break;
        case O_HELP: o->help = 1; return 0;
        default: return dg_cli_bad_option(c, argv, shortopts, longopts, err);
        }
        if (k != RP_NONE) {
            if (o->kind != RP_NONE) return dg_cli_usage(err, "give one of --run, --ensemble, --sweep and --augment");
            o->kind = k;
            o->source = optarg;
        }
    }
    if (optind < argc) return dg_cli_usage(err, "unexpected argument '%s'", argv[optind]);
    if (o->kind == RP_NONE)
        return dg_cli_usage(err, "one of --run DIR, --ensemble MANIFEST, --sweep DIR, --augment POLICY is required");
    if (o->kind == RP_AUGMENT && !o->data) return dg_cli_usage(err, "--augment needs --data FILE");
    if (o->live && o->kind != RP_RUN && o->kind != RP_SWEEP) return dg_cli_usage(err, "--live goes with --run or --sweep");
    if (o->follow && o->kind != RP_RUN && o->kind != RP_SWEEP)
        return dg_cli_usage(err, "--follow goes with --run or --sweep");
    return 0;
}

/* One page: built whole, then written atomically. *live: the run or sweep is still going. */
static int render(const rp_report_cli_opts *o, const char *out_path, int refresh, int *live, dg_err *err) {
    dg_text t = {0};
    int rc;
    *live = 0;
    if (o->kind == RP_RUN) {
        rp_run_opts r = {o->source, o->data, o->gallery, refresh};
        rc = rp_run_report(&t, &r, err);
        char p[4200];
        snprintf(p, sizeof p, "%s/result.json", o->source);
        *live = !dg_path_exists(p);
    } else if (o->kind == RP_ENSEMBLE) {
        rp_ensemble_opts e = {o->source, o->data, o->gallery};
        rc = rp_ensemble_report(&t, &e, err);
    } else if (o->kind == RP_AUGMENT) {
        rp_augment_opts a = {o->source, o->data, o->count, o->copies, o->seed};
        rc = rp_augment_report(&t, &a, err);
    } else if (o->kind == RP_SWEEP) {
        rp_sweep_opts w = {o->source, refresh};
        rc = rp_sweep_report(&t, &w, live, err);
    } else {
        return dg_cli_usage(err, "nothing to report");
    }
    if (rc == 0) rc = rp_page_write(&t, out_path, err);
    dg_text_free(&t);
    return rc;
}

/* What --follow watches: the files' sizes and change times, folded into one number. */
static unsigned long long watch_sig(const rp_report_cli_opts *o) {
    char p[3][4200];
    if (o->kind == RP_SWEEP) {
        rp_sweep_db_path(o->source, p[0], sizeof p[0] - 8);
        snprintf(p[1], sizeof p[1], "%.4090s-wal", p[0]);
        p[2][0] = 0;
    } else {
        snprintf(p[0], sizeof p[0], "%s/metrics.jsonl", o->source);
        snprintf(p[1], sizeof p[1], "%s/result.json", o->source);
        snprintf(p[2], sizeof p[2], "%s/spec.txt", o->source);
    }
    unsigned long long h = 1469598103934665603ULL;
    for (int i = 0; i < 3; i++) {
        struct stat st;
        unsigned long long v[3] = {0, 0, 0};
        if (p[i][0] && stat(p[i], &st) == 0)
            v[0] = (unsigned long long)st.st_size, v[1] = (unsigned long long)st.st_mtim.tv_sec,
            v[2] = (unsigned long long)st.st_mtim.tv_nsec + 1;
        for (int k = 0; k < 3; k++) h = (h ^ v[k]) * 1099511628211ULL;
    }
    return h;
}

/* Whether the run or sweep is still going, without rendering. */
static int still_live(const rp_report_cli_opts *o, int *live, dg_err *err) {
    if (o->kind == RP_SWEEP) return rp_sweep_live(o->source, live, err);
    char p[4200];
    snprintf(p, sizeof p, "%s/result.json", o->source);
    *live = !dg_path_exists(p);
    return 0;
}

/* Render on every change until the run or sweep is over; the last page carries no reload. */
static int follow(const rp_report_cli_opts *o, const char *out_path, dg_err *err) {
    unsigned long long last = 0;
    int live = 1, first = 1, failures = 0;
    double idle = 0;
    /* a training or sweep just started may not have written its first file yet: wait for it */
    char key[4200];
    if (!dg_path_exists(o->source)) return dg_fail(err, "%s: missing", o->source);
    if (o->kind == RP_SWEEP) rp_sweep_db_path(o->source, key, sizeof key);
    else snprintf(key, sizeof key, "%s/metrics.jsonl", o->source);
    while (!dg_path_exists(key)) {
        if (idle >= o->follow_idle) return dg_fail(err, "%s: missing after %d s of --follow", key, o->follow_idle);
        struct timespec ts = {o->follow, 0};
        nanosleep(&ts, NULL);
        idle += o->follow;
    }
    idle = 0;
    unsigned long long prev = 0; /* the signature one poll ago */
    for (int poll = 0;; poll++) {
        unsigned long long sig = watch_sig(o);
        int was_live = live;
        if (!first && still_live(o, &live, err) != 0) return -1;
        if (first || sig != last || (was_live && !live)) {
            /* the first page must render (bad input fails at once); a later failure may be a file caught
               between two writes: the page stays as it was and the next poll tries again, five times */
            if (render(o, out_path, o->follow, &live, err) != 0) {
                if (first || ++failures >= 5) return -1;
                live = 1;
            } else {
                last = sig;
                failures = 0;
                idle = 0;
            }
            first = 0;
        }
        /* over once it is not live and nothing changed for a whole interval (a sweep between its database's
           creation and its first trial is not live yet) */
        if (!live && poll > 0 && sig == prev) return 0;
        prev = sig;
        if (o->kind == RP_RUN && idle >= o->follow_idle) return 0;
        struct timespec ts = {o->follow, 0};
        nanosleep(&ts, NULL);
        idle += o->follow;
    }
}

int rp_report_cli_run(const rp_report_cli_opts *o, dg_err *err) {
    char out_path[4200];
    struct stat st;
    if (o->output)
        snprintf(out_path, sizeof out_path, "%s", o->output);
    else if (o->kind == RP_RUN || (o->kind == RP_SWEEP && stat(o->source, &st) == 0 && S_ISDIR(st.st_mode)))
        snprintf(out_path, sizeof out_path, "%s/report.html", o->source);
    else
        snprintf(out_path, sizeof out_path, "report.html");
    int rc, live;
    if (o->follow) rc = follow(o, out_path, err);
    else rc = render(o, out_path, o->live, &live, err);
    if (rc != 0) return rc == DG_EXIT_USAGE ? rc : DG_EXIT_FAIL;
    if (o->open && o->out) {
        char cwd[4096] = "";
        if (out_path[0] != '/' && !getcwd(cwd, sizeof cwd)) cwd[0] = '\0';
        fprintf(o->out, "file://%s%s%s\n", cwd, cwd[0] ? "/" : "", out_path);
    }
    return DG_EXIT_OK;
}
