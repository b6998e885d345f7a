/* digits-pipeline: one command from the competition CSVs to submission.csv. Runs ingest -> train members ->
 * predict -> ensemble as child processes of the sibling executables, from a preset (experiments/presets/), and
 * skips every stage whose inputs have not changed, so re-running after a crash resumes (see pipeline/plan.h,
 * pipeline/driver.h, docs/pipeline.md). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline/dg_cli.h"
#include "pipeline/dg_file.h"
#include "pipeline/dg_progress.h"
#include "pipeline/driver.h"
#include "pipeline/plan.h"
#include "pipeline/preset.h"

typedef struct opts {
    const char *preset, *data_dir, *work, *output, *bin_dir;
    int threads, dry_run;
} opts;

static const opts kDefaults = {"default", "data", NULL, "submission.csv", NULL, 0, 0};

static void usage(FILE *out) {
    fprintf(out,
            "usage: digits-pipeline [options]\n"
            "  Runs ingest -> train members -> predict -> ensemble from a preset and writes a Kaggle submission.\n"
            "  Stages whose inputs have not changed are skipped; re-running after a crash or kill resumes (finished\n"
            "  members are kept, an unfinished one continues from its checkpoint). The plan, with an estimated\n"
            "  time per stage, is printed first.\n"
            "  -p, --preset NAME|PATH  experiments/presets/NAME.preset or a file (default %s; also quick, overnight)\n"
            "  -d, --data-dir DIR      train.csv, test.csv, sample_submission.csv; train.npy and test.npy are\n"
            "                          written here (default %s)\n"
            "  -w, --work DIR          run directories, predictions, stamps (default runs/<preset>)\n"
            "  -o, --output PATH       the submission; its manifest goes beside it as *.manifest.json (default %s)\n"
            "      --threads T         threads for every stage (default: OMP_NUM_THREADS or all CPUs, now %d)\n"
            "      --bin-dir DIR       where digits-ingest/-train/-predict/-ensemble are (default: beside this\n"
            "                          program)\n"
            "  -n, --dry-run           print the plan only\n"
            "  -h, --help\n",
            kDefaults.preset, kDefaults.data_dir, kDefaults.output, dg_default_threads());
}

/* One line about the submission from its manifest. */
static void report_manifest(const char *output) {
    char path[1200];
    size_t ol = strlen(output);
    int csv = ol > 4 && strcmp(output + ol - 4, ".csv") == 0;
    snprintf(path, sizeof path, "%.*s.manifest.json", (int)(csv ? ol - 4 : ol), output);
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
    printf("submission %s: %d rows; manifest %s\n", output, cJSON_IsNumber(rows) ? rows->valueint : -1, path);
    if (cJSON_IsString(mode) && cJSON_IsNumber(acc) && cJSON_IsNumber(mean) && cJSON_IsNumber(gain))
        printf("estimated accuracy %.4f (%s validation), mean member %.4f, ensemble gain %+.4f\n", acc->valuedouble,
               mode->valuestring, mean->valuedouble, gain->valuedouble);
    cJSON_Delete(m);
}

int main(int argc, char **argv) {
    opts o = kDefaults;
    enum { O_THREADS = 256, O_BIN_DIR };
    static const struct option longopts[] = {
        {"preset", required_argument, 0, 'p'}, {"data-dir", required_argument, 0, 'd'},
        {"work", required_argument, 0, 'w'},   {"output", required_argument, 0, 'o'},
        {"threads", required_argument, 0, O_THREADS}, {"bin-dir", required_argument, 0, O_BIN_DIR},
        {"dry-run", no_argument, 0, 'n'},      {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "p:d:w:o:nh", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': o.preset = optarg; break;
        case 'd': o.data_dir = optarg; break;
        case 'w': o.work = optarg; break;
        case 'o': o.output = optarg; break;
        case O_THREADS:
            if (dg_parse_long(optarg, 1, 1024, &v) != 0) {
                fprintf(stderr, "digits-pipeline: --threads %s: expected 1..1024\n", optarg);
                return DG_EXIT_USAGE;
            }
            o.threads = (int)v;
            break;
        case O_BIN_DIR: o.bin_dir = optarg; break;
        case 'n': o.dry_run = 1; break;
        case 'h': usage(stdout); return DG_EXIT_OK;
        default: usage(stderr); return DG_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "digits-pipeline: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return DG_EXIT_USAGE;
    }
    dg_err err = {{0}};
    pl_preset *preset = malloc(sizeof *preset);
    pl_plan plan;
    pl_opts po;
    memset(&plan, 0, sizeof plan);
    memset(&po, 0, sizeof po);
    int rc = DG_EXIT_FAIL;
    if (!preset) {
        dg_fail(&err, "out of memory");
        goto done;
    }
    if (pl_preset_load(preset, o.preset, &err) != 0) goto done;
    if (o.bin_dir) snprintf(po.bin_dir, sizeof po.bin_dir, "%s", o.bin_dir);
    else if (pl_exe_dir(po.bin_dir, sizeof po.bin_dir, &err) != 0) goto done;
    snprintf(po.data_dir, sizeof po.data_dir, "%s", o.data_dir);
    if (o.work) snprintf(po.work, sizeof po.work, "%s", o.work);
    else snprintf(po.work, sizeof po.work, "runs/%s", preset->name);
    snprintf(po.output, sizeof po.output, "%s", o.output);
    po.threads = o.threads > 0 ? o.threads : dg_default_threads();

    if (pl_plan_build(&plan, preset, &po, &err) != 0 || pl_plan_decide(&plan, &err) != 0) goto done;
    pl_plan_print(&plan, stdout);
    if (preset->budget_minutes > 0 && plan.total_s > preset->budget_minutes * 60)
        fprintf(stderr, "digits-pipeline: warning: the estimate exceeds the preset's budget_minutes=%g\n",
                preset->budget_minutes);
    if (o.dry_run) {
        rc = DG_EXIT_OK;
        goto done;
    }
    /* Every executable a stage will run must be there before anything starts. */
    for (int i = 0; i < plan.n_steps; i++) {
        if (plan.steps[i].action == PL_SKIP || plan.steps[i].action == PL_FINISH) continue;
        if (access(plan.steps[i].stage.argv[0], X_OK) != 0) {
            dg_fail_errno(&err, "%s: cannot run %s (build it, or point --bin-dir at the build's bin/)",
                          plan.steps[i].stage.name, plan.steps[i].stage.argv[0]);
            goto done;
        }
    }
    if (dg_mkdirs(po.work, &err) != 0) goto done;
    double t_all = dg_now();
    for (int i = 0; i < plan.n_steps; i++) {
        pl_step *s = &plan.steps[i];
        pl_action a;
        char why[256];
        if (pl_stage_decide(&s->stage, &a, why, sizeof why, &err) != 0) goto done;
        if (a == PL_SKIP) {
            printf("[%d/%d] %s: up to date\n", i + 1, plan.n_steps, s->stage.name);
            continue;
        }
        char est[32] = "?";
        if (s->estimate_s > 0) pl_format_seconds(est, sizeof est, s->estimate_s);
        printf("[%d/%d] %s: %s (%s), estimate %s\n", i + 1, plan.n_steps, s->stage.name, pl_action_name(a), why, est);
        fflush(stdout);
        double t0 = dg_now();
        if (pl_stage_execute(&s->stage, a, &err) != 0) {
            dg_err_prefix(&err, "stage %s failed (re-run the same command to resume)", s->stage.name);
            goto done;
        }
        double dt = dg_now() - t0;
        char took[32];
        pl_format_seconds(took, sizeof took, dt);
        printf("[%d/%d] %s: done in %s\n", i + 1, plan.n_steps, s->stage.name, took);
        if (a != PL_FINISH && pl_plan_record_timing(&plan, s, dt, &err) != 0) goto done;
    }
    char took[32];
    pl_format_seconds(took, sizeof took, dg_now() - t_all);
    printf("pipeline %s finished in %s\n", preset->name, took);
    report_manifest(po.output);
    rc = DG_EXIT_OK;
done:
    fflush(stdout);
    if (rc != DG_EXIT_OK) fprintf(stderr, "digits-pipeline: %s\n", err.msg);
    pl_plan_free(&plan);
    free(preset);
    return rc;
}
