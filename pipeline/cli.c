/* pipeline/cli: digits-pipeline's options and run (see cli.h). */
#include "pipeline/cli.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dg_cli.h"
#include "core/dg_file.h"
#include "core/dg_progress.h"
#include "pipeline/budget.h"
#include "pipeline/driver.h"
#include "pipeline/plan.h"
#include "pipeline/preset.h"
#include "pipeline/schedule.h"

static const pl_cli_opts kDefaults = {.preset = "default", .data_dir = "data", .output = "submission.csv"};

void pl_usage(FILE *out) {
    fprintf(out,
            "usage: digits-pipeline [options]\n"
            "  Runs ingest -> train members -> predict -> ensemble from a preset and writes a Kaggle submission.\n"
            "  Stages whose inputs have not changed are skipped; re-running after a crash or kill resumes (finished\n"
            "  members are kept, an unfinished one continues from its checkpoint). The plan, with an estimated\n"
            "  time per stage, is printed first.\n"
            "  -p, --preset NAME|PATH  experiments/presets/NAME.preset or a file (default %s;\n"
            "                          also quick, bag5, dense, long, overnight)\n"
            "  -d, --data-dir DIR      train.csv, test.csv, sample_submission.csv; train.npy and test.npy are\n"
            "                          written here (default %s)\n"
            "  -w, --work DIR          run directories, predictions, stamps (default runs/<preset>)\n"
            "  -o, --output PATH       the submission; its manifest goes beside it as *.manifest.json (default %s)\n"
            "      --threads T         threads (default: OMP_NUM_THREADS or all CPUs, now %d); with N jobs each\n"
            "                          member stage gets max(1, T/N)\n"
            "  -j, --jobs N            members (train then predict) at the same time (default: the preset's jobs=,\n"
            "                          else 1); with N > 1 their output lines are prefixed with [member]\n"
            "      --bin-dir DIR       where digits-ingest/-train/-predict/-ensemble are (default: beside this\n"
            "                          program)\n"
            "  -n, --dry-run           print the plan only\n"
            "  -h, --help\n",
            kDefaults.preset, kDefaults.data_dir, kDefaults.output, dg_default_threads());
}

int pl_parse(int argc, char **argv, pl_cli_opts *o, dg_err *err) {
    *o = kDefaults;
    enum { O_THREADS = 256, O_BIN_DIR };
    static const struct option longopts[] = {
        {"preset", required_argument, 0, 'p'}, {"data-dir", required_argument, 0, 'd'},
        {"work", required_argument, 0, 'w'},   {"output", required_argument, 0, 'o'},
        {"threads", required_argument, 0, O_THREADS}, {"bin-dir", required_argument, 0, O_BIN_DIR},
        {"jobs", required_argument, 0, 'j'},   {"dry-run", no_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    dg_cli_getopt_reset();
    int c;
    long v;
    while ((c = getopt_long(argc, argv, ":p:d:w:o:j:nh", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': o->preset = optarg; break;
        case 'd': o->data_dir = optarg; break;
        case 'w': o->work = optarg; break;
        case 'o': o->output = optarg; break;
        case O_THREADS:
            if (dg_parse_long(optarg, 1, 1024, &v) != 0)
                return dg_fail(err, "--threads %s: expected 1..1024", optarg), DG_EXIT_USAGE;
            o->threads = (int)v;
            break;
        case 'j':
            if (dg_parse_long(optarg, 1, PL_MAX_JOBS, &v) != 0)
                return dg_fail(err, "--jobs %s: expected 1..%d", optarg, PL_MAX_JOBS), DG_EXIT_USAGE;
            o->jobs = (int)v;
            break;
        case O_BIN_DIR: o->bin_dir = optarg; break;
        case 'n': o->dry_run = 1; break;
        case 'h': o->help = 1; return DG_EXIT_OK;
        default: return dg_cli_bad_option(c, argv, ":p:d:w:o:j:nh", longopts, err);
        }
    }
    if (optind != argc) return dg_fail(err, "unexpected argument \"%s\"", argv[optind]), DG_EXIT_USAGE;
    return DG_EXIT_OK;
}

/* One line about the submission from its manifest. */
static void report_manifest(const char *output, FILE *out) {
    char path[1200];
    pl_manifest_path(path, sizeof path, output);
    char *text;
    size_t n;
    if (dg_read_file(path, &text, &n, NULL) != 0) return;
    cJSON *m = cJSON_Parse(text);
    free(text);
    cJSON *est = cJSON_GetObjectItemCaseSensitive(m, "estimate");
    cJSON *mode = cJSON_GetObjectItemCaseSensitive(est, "mode");
    cJSON *acc = cJSON_GetObjectItemCaseSensitive(est, "ensemble_acc");
    cJSON *mean = cJSON_GetObjectItemCaseSensitive(est, "mean_member_acc");
    cJSON *gain = cJSON_GetObjectItemCaseSensitive(est, "gain");
    cJSON *rows = cJSON_GetObjectItemCaseSensitive(m, "rows");
    cJSON *vp = cJSON_GetObjectItemCaseSensitive(m, "val_pred"); /* val_pred_ttaK.npy: through the test rows' views */
    fprintf(out, "submission %s: %d rows; manifest %s\n", output, cJSON_IsNumber(rows) ? rows->valueint : -1, path);
    if (cJSON_IsString(mode) && cJSON_IsNumber(acc) && cJSON_IsNumber(mean) && cJSON_IsNumber(gain))
        fprintf(out, "estimated accuracy %.4f (%s validation%s%s), mean member %.4f, ensemble gain %+.4f\n",
                acc->valuedouble, mode->valuestring, cJSON_IsString(vp) ? ", " : "",
                cJSON_IsString(vp) ? vp->valuestring : "", mean->valuedouble, gain->valuedouble);
    cJSON_Delete(m);
}

/* The plan's options from the command line's and the preset's. */
static int resolve(const pl_cli_opts *o, const pl_preset *preset, pl_opts *po, dg_err *err) {
    memset(po, 0, sizeof *po);
    if (o->bin_dir) snprintf(po->bin_dir, sizeof po->bin_dir, "%s", o->bin_dir);
    else if (pl_exe_dir(po->bin_dir, sizeof po->bin_dir, err) != 0) return -1;
    snprintf(po->data_dir, sizeof po->data_dir, "%s", o->data_dir);
    if (o->work) snprintf(po->work, sizeof po->work, "%s", o->work);
    else snprintf(po->work, sizeof po->work, "runs/%s", preset->name);
    snprintf(po->output, sizeof po->output, "%s", o->output);
    po->threads = o->threads > 0 ? o->threads : dg_default_threads();
    po->jobs = o->jobs > 0 ? o->jobs : preset->jobs;
    return 0;
}

/* Every executable a stage will run must be there before anything starts. */
static int check_executables(const pl_plan *plan, dg_err *err) {
    for (int i = 0; i < plan->n_steps; i++) {
        const pl_step *s = &plan->steps[i];
        if (s->action == PL_SKIP || s->action == PL_FINISH) continue;
        if (access(s->stage.argv[0], X_OK) != 0)
            return dg_fail_errno(err, "%s: cannot run %s (build it, or point --bin-dir at the build's bin/)",
                                 s->stage.name, s->stage.argv[0]);
    }
    return 0;
}

int pl_run(const pl_cli_opts *o, FILE *out, FILE *log, dg_err *err) {
    pl_preset *preset = malloc(sizeof *preset);
    pl_plan plan;
    pl_opts po;
    memset(&plan, 0, sizeof plan);
    int rc = DG_EXIT_FAIL;
    if (!preset) {
        dg_fail(err, "out of memory");
        goto done;
    }
    if (pl_preset_load(preset, o->preset, err) != 0 || resolve(o, preset, &po, err) != 0) goto done;
    if (pl_plan_build(&plan, preset, &po, err) != 0 || pl_plan_decide(&plan, err) != 0) goto done;
    if (preset->adapt.on && pl_budget_plan(&plan, preset, o->dry_run, out, err) != 0) goto done;
    pl_plan_print(&plan, out);
    fflush(out);
    if (preset->budget_minutes > 0 && plan.total_s > preset->budget_minutes * 60)
        fprintf(log, "digits-pipeline: warning: the estimate exceeds the preset's budget_minutes=%g\n",
                preset->budget_minutes);
    if (o->dry_run) {
        rc = DG_EXIT_OK;
        goto done;
    }
    if (check_executables(&plan, err) != 0 || dg_mkdirs(po.work, err) != 0) goto done;
    double t_all = dg_now();
    if (pl_schedule_run(&plan, out, log, err) != 0) goto done;
    char took[32];
    pl_format_seconds(took, sizeof took, dg_now() - t_all);
    fprintf(out, "pipeline %s finished in %s\n", preset->name, took);
    report_manifest(po.output, out);
    rc = DG_EXIT_OK;
done:
    fflush(out);
    pl_plan_free(&plan);
    free(preset);
    return rc;
}
