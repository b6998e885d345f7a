/* kaggle/ensemble_cli: digits-ensemble's options, usage and run (see ensemble_cli.h). */
#include "kaggle/ensemble_cli.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "kaggle/ensemble.h"
#include "kaggle/submission.h"
#include "core/dg_cli.h"
#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "core/dg_npy.h"

static const char *const kMethodNames[] = {"soft", "hard", "fit"};

static const kg_ensemble_cli_opts kDefaults = {
    .method = KG_ENS_SOFT, .train = "data/train.npy", .output = "submission.csv", .val_pred = "val_pred.npy"};

const char *kg_ens_method_name(kg_ens_method m) {
    return (unsigned)m < sizeof kMethodNames / sizeof *kMethodNames ? kMethodNames[m] : "?";
}

void kg_ensemble_cli_usage(FILE *out) {
    fprintf(out,
            "usage: digits-ensemble [options] MEMBER...\n"
            "  MEMBER is one of\n"
            "    RUN_DIR=TEST.npy   a digits-train run directory (val_pred.npy, val_ids.npy, result.json) and its\n"
            "                       test probabilities (digits-predict -o TEST.npy RUN_DIR)\n"
            "    RUN_DIR            the same, test probabilities from RUN_DIR/test_probs.npy\n"
            "    TEST.npy           test probabilities only (no validation data: no estimate, no fitting)\n"
            "  -m, --method M       soft (mean probability), hard (majority vote, ties by summed probability) or\n"
            "                       fit (soft vote with weights fitted on the members' shared validation rows to\n"
            "                       maximize log-likelihood; never on test data) (default %s)\n"
            "  -w, --weights LIST   given weights for soft/hard, comma-separated, one per member\n"
            "      --train PATH     labelled train dataset the validation ids index (default %s)\n"
            "      --sample PATH    sample_submission.csv: the submission must have its row count and ids\n"
            "      --rows N         the submission must have N rows\n"
            "  -o, --output PATH    submission (default %s)\n"
            "      --manifest PATH  manifest JSON (default: the output with .csv replaced by .manifest.json)\n"
            "      --probs-out PATH also write the ensemble's test probabilities, float32 .npy (N, 10)\n"
            "      --estimate-only  validation estimate only (JSON on stdout); members need no test probabilities\n"
            "      --val-pred NAME  the file in each RUN_DIR with its validation probabilities (default %s);\n"
            "                       e.g. the views the test rows get: digits-predict --ids RUN_DIR/val_ids.npy\n"
            "                       --tta 5 -o RUN_DIR/val_pred_tta5.npy RUN_DIR\n"
            "  -q, --quiet          no summary on stderr\n"
            "  -h, --help\n"
            "Estimate: members holding out the same rows (same --split-seed/--val-frac) give the ensemble accuracy\n"
            "on those rows vs the mean member accuracy; members with disjoint folds give the out-of-fold accuracy.\n",
            kMethodNames[kDefaults.method], kDefaults.train, kDefaults.output, kDefaults.val_pred);
}

/* Given weights: a comma-separated list, one non-negative number per member, normalized to sum 1 into w (m);
 * w NULL: the list is only checked. */
static int parse_weights(const char *s, double *w, int m, dg_err *err) {
    int k = 0;
    double sum = 0, v;
    for (const char *p = s;; p++) { /* fields between commas; an empty one ("1,,2", "1,2,") is an error */
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char tok[64];
        if (len == 0) return dg_fail(err, "--weights %s: weight %d is empty", s, k + 1);
        if (k == m) return dg_fail(err, "--weights %s: more weights than the %d members", s, m);
        if (len < sizeof tok) {
            memcpy(tok, p, len);
            tok[len] = '\0';
        }
        if (len >= sizeof tok || dg_parse_double(tok, 0, 1e9, &v) != 0)
            return dg_fail(err, "--weights %s: \"%.*s\" is not a non-negative number", s, (int)len, p);
        if (w) w[k] = v;
        k++;
        sum += v;
        if (!end) break;
        p = end;
    }
    if (k != m) return dg_fail(err, "--weights %s: %d weights for %d members", s, k, m);
    if (!(sum > 0)) return dg_fail(err, "--weights %s: the weights sum to 0", s);
    for (int j = 0; w && j < m; j++) w[j] /= sum;
    return 0;
}

int kg_ensemble_cli_parse(int argc, char **argv, kg_ensemble_cli_opts *o, dg_err *err) {
    *o = kDefaults;
    o->log = stderr;
    o->out = stdout;
    static const struct option longopts[] = {
        {"method", required_argument, 0, 'm'},   {"weights", required_argument, 0, 'w'},
        {"train", required_argument, 0, 'T'},    {"sample", required_argument, 0, 'S'},
        {"rows", required_argument, 0, 'R'},     {"output", required_argument, 0, 'o'},
        {"manifest", required_argument, 0, 'M'}, {"probs-out", required_argument, 0, 'P'},
        {"estimate-only", no_argument, 0, 'E'},  {"quiet", no_argument, 0, 'q'},
        {"val-pred", required_argument, 0, 'V'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    dg_cli_getopt_reset();
    while ((c = getopt_long(argc, argv, ":m:w:o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (!strcmp(optarg, "soft")) o->method = KG_ENS_SOFT;
            else if (!strcmp(optarg, "hard")) o->method = KG_ENS_HARD;
            else if (!strcmp(optarg, "fit") || !strcmp(optarg, "weighted")) o->method = KG_ENS_FIT;
            else return dg_cli_usage(err, "--method %s: expected soft, hard or fit", optarg);
            break;
        case 'w': o->weights = optarg; break;
        case 'T': o->train = optarg; break;
        case 'S': o->sample = optarg; break;
        case 'R':
            if (dg_parse_long(optarg, 1, 1L << 40, &o->rows) != 0)
                return dg_cli_usage(err, "--rows %s: expected a positive integer", optarg);
            break;
        case 'o': o->output = optarg; break;
        case 'M': o->manifest = optarg; break;
        case 'P': o->probs_out = optarg; break;
        case 'E': o->estimate_only = 1; break;
        case 'V':
            if (!optarg[0] || strchr(optarg, '/'))
                return dg_cli_usage(err, "--val-pred %s: expected a file name inside each run directory", optarg);
            o->val_pred = optarg;
            break;
        case 'q': o->log = NULL; break;
        case 'h': o->help = 1; return DG_EXIT_OK;
        default: return dg_cli_bad_option(c, argv, ":m:w:o:qh", longopts, err);
        }
    }
    if (optind >= argc) return dg_cli_usage(err, "no MEMBER given");
    if (o->weights && o->method == KG_ENS_FIT)
        return dg_cli_usage(err, "--weights and --method fit exclude each other");
    o->members = argv + optind;
    o->n_members = argc - optind;
    if (o->weights) { /* checked here, before any member is loaded: a wrong list is a usage error */
        if (parse_weights(o->weights, NULL, o->n_members, err) != 0) return DG_EXIT_USAGE;
    }
    o->argc = argc;
    o->argv = argv;
    return DG_EXIT_OK;
}

typedef struct member {
    char run[4096];     /* run directory, "" if none */
    char test[4096];    /* test probabilities, "" if none */
    float *test_p;      /* (n_test, 10) */
    size_t n_test;
    float *val_p;       /* (nv, 10) */
    int64_t *val_ids;   /* (nv,) */
    size_t nv;
    cJSON *result;      /* result.json */
    double val_acc;     /* recomputed on its validation rows; -1 without */
    double agree;       /* fraction of test rows where its argmax equals the ensemble's label */
} member;

/* One run of the stage: what is loaded and computed, step by step. */
typedef struct ens {
    const kg_ensemble_cli_opts *o;
    int m;                 /* members */
    member *mb;            /* (m,) */
    double *w;             /* (m,) weights, summing to 1 */
    kg_member_val *mv;     /* (m,) validation predictions */
    int with_val;          /* members with validation predictions: 0 or m */
    size_t n;              /* test rows (0 with estimate_only) */
    size_t expect;         /* rows the submission must have; 0: any */
    dg_dataset ds;         /* the train dataset, open if ds_open */
    int ds_open;
    uint8_t *labels;       /* (ds.n,) its labels */
    kg_estimate est;
    double cv_fit;         /* 2-fold cross-fitted accuracy of fitted weights; -1 if not fitted */
    float *probs;          /* (n, 10) the ensemble's test probabilities */
    uint8_t *lab;          /* (n,) its labels */
    char manifest_path[4200];
} ens;

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Resolve one MEMBER argument and load what it names. */
static int load_member(member *mb, const char *arg, int need_test, const char *val_pred, dg_err *err) {
    memset(mb, 0, sizeof *mb);
    const char *eq = strchr(arg, '=');
    if (eq && !dg_path_exists(arg)) {
        snprintf(mb->run, sizeof mb->run, "%.*s", (int)(eq - arg), arg);
        snprintf(mb->test, sizeof mb->test, "%s", eq + 1);
        if (!is_dir(mb->run)) return dg_fail(err, "%s: not a run directory (in member \"%s\")", mb->run, arg);
    } else if (is_dir(arg)) {
        snprintf(mb->run, sizeof mb->run, "%s", arg);
        if (need_test) snprintf(mb->test, sizeof mb->test, "%s/test_probs.npy", arg);
    } else {
        snprintf(mb->test, sizeof mb->test, "%s", arg);
    }
    if (mb->run[0]) {
        char p[4200];
        char *text;
        size_t len;
        snprintf(p, sizeof p, "%s/result.json", mb->run);
        if (dg_read_file(p, &text, &len, err) != 0)
            return dg_err_prefix(err, "%s: not a finished digits-train run", mb->run);
        mb->result = cJSON_Parse(text);
        free(text);
        if (!cJSON_IsObject(mb->result)) return dg_fail(err, "%s: not a JSON object", p);
        snprintf(p, sizeof p, "%s/%s", mb->run, val_pred);
        if (kg_probs_load(p, &mb->val_p, &mb->nv, err) != 0) return -1;
        size_t ni;
        snprintf(p, sizeof p, "%s/val_ids.npy", mb->run);
        if (dg_npy_load_i64(p, &mb->val_ids, &ni, err) != 0) return -1;
        if (ni != mb->nv)
            return dg_fail(err, "%s: %zu validation ids for %zu validation predictions (%s)", p, ni, mb->nv, val_pred);
    }
    if (mb->test[0] && need_test && kg_probs_load(mb->test, &mb->test_p, &mb->n_test, err) != 0) return -1;
    return 0;
}

static void free_member(member *mb) {
    free(mb->test_p);
    free(mb->val_p);
    free(mb->val_ids);
    cJSON_Delete(mb->result);
}

/* Load and check every member before anything is computed: test probabilities of one length, validation
 * predictions from all members or none, and from all where the method or --estimate-only needs them. */
static int load_members(ens *e, dg_err *err) {
    const kg_ensemble_cli_opts *o = e->o;
    for (int j = 0; j < e->m; j++) {
        member *mb = &e->mb[j];
        if (load_member(mb, o->members[j], !o->estimate_only, o->val_pred, err) != 0)
            return dg_err_prefix(err, "member %d", j + 1);
        e->with_val += mb->nv > 0;
        if (!o->estimate_only && !mb->test_p)
            return dg_fail(err, "member %d (%s): no test probabilities", j + 1, o->members[j]);
        if (!o->estimate_only && mb->n_test != e->mb[0].n_test)
            return dg_fail(err, "member %d (%s): %zu test rows, member 1 (%s) has %zu: probabilities of different "
                                "lengths", j + 1, mb->test, mb->n_test, e->mb[0].test, e->mb[0].n_test);
        e->mv[j] = (kg_member_val){mb->val_p, mb->val_ids, mb->nv};
    }
    if (e->with_val && e->with_val != e->m)
        return dg_fail(err, "%d of %d members are run directories with validation predictions: give all members as "
                            "run directories, or none", e->with_val, e->m);
    if ((o->method == KG_ENS_FIT || o->estimate_only) && !e->with_val)
        return dg_fail(err, "%s needs validation predictions: give members as run directories (RUN_DIR=TEST.npy)",
                       o->estimate_only ? "--estimate-only" : "--method fit");
    e->n = o->estimate_only ? 0 : e->mb[0].n_test;
    return 0;
}

/* The row count the submission must have (--sample, --rows), checked against the members' test rows. */
static int check_rows(ens *e, dg_err *err) {
    const kg_ensemble_cli_opts *o = e->o;
    if (o->sample && kg_sample_rows(o->sample, &e->expect, err) != 0) return -1;
    if (o->rows && e->expect && (size_t)o->rows != e->expect)
        return dg_fail(err, "--rows %ld but %s has %zu rows", o->rows, o->sample, e->expect);
    if (o->rows) e->expect = (size_t)o->rows;
    if (!o->estimate_only && e->expect && e->n != e->expect)
        return dg_fail(err, "the members have %zu test rows but the submission needs %zu (%s): wrong test set?", e->n,
                       e->expect, o->sample ? o->sample : "--rows");
    return 0;
}

/* Labels of the train rows the members held out. */
static int load_labels(ens *e, dg_err *err) {
    const char *train = e->o->train;
    if (dg_dataset_open(&e->ds, train, err) != 0) return -1;
    e->ds_open = 1;
    if (!e->ds.has_labels)
        return dg_fail(err, "%s: unlabelled; --train must be the labelled train dataset the runs trained on", train);
    e->labels = malloc(e->ds.n);
    if (!e->labels) return dg_fail(err, "out of memory");
    for (size_t r = 0; r < e->ds.n; r++) e->labels[r] = (uint8_t)dg_dataset_label(&e->ds, r);
    return 0;
}

/* Fitted weights, from validation arrays only: the members' probabilities on the rows all of them held out, and
 * those rows' labels. */
static int fit_weights(ens *e, dg_err *err) {
    int m = e->m, rc = -1;
    int64_t *sid = NULL;
    size_t **rows = calloc((size_t)m, sizeof *rows), ns = 0;
    const float **vp = calloc((size_t)m, sizeof *vp);
    float *gathered = NULL;
    uint8_t *ys = NULL;
    if (!rows || !vp) {
        dg_fail(err, "out of memory");
        goto done;
    }
    if (kg_shared_rows(&sid, rows, &ns, e->mv, m, e->ds.n, err) != 0) goto done;
    if (ns == 0) {
        dg_fail(err, "--method fit: the members share no validation rows (K-fold members hold out disjoint folds); "
                     "weights can only be fitted on rows every member held out: use --method soft");
        goto done;
    }
    gathered = malloc((size_t)m * ns * KG_CLASSES * sizeof(float));
    ys = malloc(ns);
    if (!gathered || !ys) {
        dg_fail(err, "out of memory");
        goto done;
    }
    for (int j = 0; j < m; j++) {
        kg_gather(gathered + (size_t)j * ns * KG_CLASSES, &e->mv[j], rows[j], ns);
        vp[j] = gathered + (size_t)j * ns * KG_CLASSES;
    }
    for (size_t k = 0; k < ns; k++) ys[k] = e->labels[sid[k]];
    if (kg_fit_weights(e->w, vp, m, ns, ys, 0, err) != 0) goto done;
    e->cv_fit = kg_fit_cv_accuracy(vp, m, ns, ys);
    rc = 0;
done:
    for (int j = 0; rows && j < m; j++) free(rows[j]);
    free(rows);
    free(vp);
    free(sid);
    free(gathered);
    free(ys);
    return rc;
}

/* Weights (equal, given or fitted), then the validation estimate and each member's own validation accuracy. */
static int weigh(ens *e, dg_err *err) {
    const kg_ensemble_cli_opts *o = e->o;
    for (int j = 0; j < e->m; j++) e->w[j] = 1.0 / e->m;
    if (o->weights && parse_weights(o->weights, e->w, e->m, err) != 0) return -1;
    if (o->method == KG_ENS_FIT && fit_weights(e, err) != 0) return -1;
    double *member_acc = calloc((size_t)e->m, sizeof(double));
    if (!member_acc) return dg_fail(err, "out of memory");
    int bad = e->with_val && kg_estimate_accuracy(&e->est, member_acc, e->mv, e->m, e->w, o->method == KG_ENS_HARD,
                                                  e->labels, e->ds.n, err) != 0;
    for (int j = 0; j < e->m; j++) e->mb[j].val_acc = e->with_val ? member_acc[j] : -1;
    free(member_acc);
    return bad ? -1 : 0;
}

/* The ensemble's test probabilities and labels, and each member's agreement with those labels. */
static int vote(ens *e, dg_err *err) {
    size_t n = e->n;
    int m = e->m;
    const float **tp = calloc((size_t)m, sizeof *tp);
    e->probs = malloc(n * KG_CLASSES * sizeof(float));
    e->lab = malloc(n);
    if (!tp || !e->probs || !e->lab) {
        free(tp);
        return dg_fail(err, "out of memory");
    }
    for (int j = 0; j < m; j++) tp[j] = e->mb[j].test_p;
    kg_soft_vote(e->probs, tp, e->w, m, n);
    if (e->o->method == KG_ENS_HARD) kg_hard_vote(e->lab, tp, e->w, m, n);
    else kg_argmax(e->lab, e->probs, n);
    free(tp);
    for (int j = 0; j < m; j++) {
        size_t same = 0;
        uint8_t l;
        for (size_t i = 0; i < n; i++) {
            kg_argmax(&l, e->mb[j].test_p + i * KG_CLASSES, 1);
            same += l == e->lab[i];
        }
        e->mb[j].agree = (double)same / (double)n;
    }
    return 0;
}

static cJSON *estimate_json(const kg_estimate *e, double cv_fit) {
    cJSON *o = cJSON_CreateObject();
    const char *mode = e->mode == KG_EST_SHARED ? "shared-holdout" : e->mode == KG_EST_OOF ? "out-of-fold" : "none";
    cJSON_AddStringToObject(o, "mode", mode);
    if (e->mode != KG_EST_NONE) {
        cJSON_AddNumberToObject(o, "ensemble_acc", e->ensemble_acc);
        cJSON_AddNumberToObject(o, "mean_member_acc", e->mean_member_acc);
        cJSON_AddNumberToObject(o, "best_member_acc", e->best_member_acc);
        cJSON_AddNumberToObject(o, "gain", e->gain);
        cJSON_AddNumberToObject(o, "ensemble_loss", e->ensemble_loss);
        cJSON_AddNumberToObject(o, "mean_member_loss", e->mean_member_loss);
        cJSON_AddNumberToObject(o, "shared_rows", (double)e->shared_rows);
        cJSON_AddNumberToObject(o, "union_rows", (double)e->union_rows);
        if (e->shared_rows) {
            cJSON_AddNumberToObject(o, "shared_acc", e->shared_acc);
            cJSON_AddNumberToObject(o, "shared_member_acc", e->shared_member_acc);
        }
        if (e->mode == KG_EST_OOF) cJSON_AddNumberToObject(o, "oof_acc", e->oof_acc);
        if (cv_fit >= 0) cJSON_AddNumberToObject(o, "fit_crossval_acc", cv_fit);
    }
    return o;
}

/* The manifest JSON text (malloc'd): what was combined, how, and the estimate. NULL if out of memory. */
static char *manifest_text(const ens *e) {
    const kg_ensemble_cli_opts *o = e->o;
    char *cmd = dg_cli_join_command(o->argc, o->argv);
    if (!cmd) return NULL;
    cJSON *man = cJSON_CreateObject();
    cJSON_AddStringToObject(man, "format", "digits-ensemble");
    cJSON_AddStringToObject(man, "version", DIGITS_VERSION);
    char when[64];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    cJSON_AddStringToObject(man, "created", when);
    cJSON_AddStringToObject(man, "command", cmd);
    free(cmd);
    cJSON_AddStringToObject(man, "method", kMethodNames[o->method]);
    cJSON_AddStringToObject(man, "val_pred", o->val_pred); /* which validation probabilities the estimate used */
    cJSON_AddStringToObject(man, "weights_from", o->method == KG_ENS_FIT ? "fitted on shared validation rows"
                                                 : o->weights            ? "given"
                                                                         : "equal");
    if (!o->estimate_only) {
        cJSON_AddStringToObject(man, "submission", o->output);
        cJSON_AddNumberToObject(man, "rows", (double)e->n);
        size_t counts[10] = {0};
        for (size_t i = 0; i < e->n; i++) counts[e->lab[i]]++;
        cJSON *lc = cJSON_AddArrayToObject(man, "label_counts");
        for (int k = 0; k < 10; k++) cJSON_AddItemToArray(lc, cJSON_CreateNumber((double)counts[k]));
    }
    cJSON *arr = cJSON_AddArrayToObject(man, "members");
    for (int j = 0; j < e->m; j++) {
        const member *mb = &e->mb[j];
        cJSON *it = cJSON_CreateObject();
        cJSON_AddItemToObject(it, "run", mb->run[0] ? cJSON_CreateString(mb->run) : cJSON_CreateNull());
        cJSON_AddItemToObject(it, "test_probs", mb->test_p ? cJSON_CreateString(mb->test) : cJSON_CreateNull());
        cJSON_AddNumberToObject(it, "weight", e->w[j]);
        if (mb->result) {
            static const char *const keys[] = {"seed", "split", "model", "epochs", "val_loss", "seconds"};
            for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
                cJSON *v = cJSON_GetObjectItemCaseSensitive(mb->result, keys[k]);
                if (v) cJSON_AddItemToObject(it, keys[k], cJSON_Duplicate(v, 1));
            }
            cJSON *v = cJSON_GetObjectItemCaseSensitive(mb->result, "val_acc");
            if (v) cJSON_AddItemToObject(it, "val_acc_reported", cJSON_Duplicate(v, 1));
        }
        if (mb->nv) {
            cJSON_AddNumberToObject(it, "val_acc", mb->val_acc);
            cJSON_AddNumberToObject(it, "val_rows", (double)mb->nv);
        }
        if (mb->test_p) cJSON_AddNumberToObject(it, "test_agreement", mb->agree);
        cJSON_AddItemToArray(arr, it);
    }
    cJSON_AddItemToObject(man, "estimate", estimate_json(&e->est, e->cv_fit));
    char *json = cJSON_Print(man);
    cJSON_Delete(man);
    return json;
}

/* Every output is written (the submission checked) to its temporary, then all are renamed as one, the manifest
 * last: a manifest never describes a submission that is not there. */
static int write_outputs(ens *e, const char *json, dg_err *err) {
    const kg_ensemble_cli_opts *o = e->o;
    if (o->manifest) {
        snprintf(e->manifest_path, sizeof e->manifest_path, "%s", o->manifest);
    } else {
        size_t len = strlen(o->output);
        int csv = len > 4 && strcmp(o->output + len - 4, ".csv") == 0;
        snprintf(e->manifest_path, sizeof e->manifest_path, "%.*s.manifest.json", (int)(csv ? len - 4 : len),
                 o->output);
    }
    dg_afile mf = {0};
    if (dg_afile_open(&mf, e->manifest_path, err) != 0) return -1;
    int bad = 0;
    if (fputs(json, mf.fp) < 0 || fputc('\n', mf.fp) == EOF)
        bad = dg_fail_errno(err, "%s: write failed", e->manifest_path);
    size_t shape[2] = {e->n, KG_CLASSES};
    dg_afile pf = {0}, sf = {0};
    if (!bad && o->probs_out)
        bad = dg_npy_write_afile(&pf, o->probs_out, "<f4", shape, 2, e->probs, sizeof(float), err) != 0;
    if (!bad) bad = kg_submission_write_afile(&sf, o->output, e->lab, e->n, e->expect, err) != 0;
    if (bad) {
        dg_afile_abort(&mf);
        dg_afile_abort(&pf);
        return -1;
    }
    /* One commit, the manifest renamed last: a failure leaves all three final names as they were. */
    dg_afile *files[3];
    int nf = 0;
    if (o->probs_out) files[nf++] = &pf;
    files[nf++] = &sf;
    files[nf++] = &mf;
    return dg_afile_commit_all(files, nf, err);
}

static void print_summary(const ens *e, FILE *log) {
    const kg_ensemble_cli_opts *o = e->o;
    if (!o->estimate_only)
        fprintf(log, "digits-ensemble: %d members, %s vote%s -> %s (%zu rows), manifest %s\n", e->m,
                o->method == KG_ENS_HARD ? "hard" : "soft", o->method == KG_ENS_FIT ? " with fitted weights" : "",
                o->output, e->n, e->manifest_path);
    if (!e->with_val) return;
    for (int j = 0; j < e->m; j++)
        fprintf(log, "  member %d: weight %.4f  val acc %.4f on %zu rows  %s\n", j + 1, e->w[j], e->mb[j].val_acc,
                e->mb[j].nv, e->mb[j].run);
    const kg_estimate *est = &e->est;
    if (est->mode == KG_EST_SHARED)
        fprintf(log,
                "  estimate (shared hold-out, %zu rows): ensemble %.4f (%.0f errors) vs mean member %.4f: gain %+.4f;"
                " log-loss %.5f vs mean member %.5f\n",
                est->shared_rows, est->ensemble_acc, (1 - est->ensemble_acc) * (double)est->shared_rows,
                est->shared_member_acc, est->gain, est->ensemble_loss, est->mean_member_loss);
    else if (est->mode == KG_EST_OOF)
        fprintf(log,
                "  estimate (out-of-fold, %zu rows): ensemble %.4f (%.0f errors) vs mean member %.4f: gain %+.4f;"
                " log-loss %.5f vs mean member %.5f\n",
                est->union_rows, est->ensemble_acc, (1 - est->ensemble_acc) * (double)est->union_rows,
                est->mean_member_acc, est->gain, est->ensemble_loss, est->mean_member_loss);
    if (e->cv_fit >= 0) fprintf(log, "  fitted weights, 2-fold cross-fitted accuracy: %.4f\n", e->cv_fit);
}

int kg_ensemble_cli_run(const kg_ensemble_cli_opts *o, dg_err *err) {
    ens e = {.o = o, .m = o->n_members, .cv_fit = -1};
    int rc = DG_EXIT_FAIL;
    char *json = NULL;
    if (e.m < 1) {
        dg_fail(err, "no MEMBER given");
        return DG_EXIT_USAGE;
    }
    e.mb = calloc((size_t)e.m, sizeof *e.mb);
    e.w = calloc((size_t)e.m, sizeof *e.w);
    e.mv = calloc((size_t)e.m, sizeof *e.mv);
    if (!e.mb || !e.w || !e.mv) {
        dg_fail(err, "out of memory");
        goto done;
    }
    if (load_members(&e, err) != 0 || check_rows(&e, err) != 0) goto done;
    if (e.with_val && load_labels(&e, err) != 0) goto done;
    if (weigh(&e, err) != 0) goto done;
    if (!o->estimate_only && vote(&e, err) != 0) goto done;
    json = manifest_text(&e);
    if (!json) {
        dg_fail(err, "out of memory");
        goto done;
    }
    if (o->estimate_only) fprintf(o->out, "%s\n", json);
    else if (write_outputs(&e, json, err) != 0) goto done;
    if (o->log) print_summary(&e, o->log);
    rc = DG_EXIT_OK;
done:
    free(json);
    for (int j = 0; e.mb && j < e.m; j++) free_member(&e.mb[j]);
    if (e.ds_open) dg_dataset_close(&e.ds);
    free(e.mb);
    free(e.w);
    free(e.mv);
    free(e.labels);
    free(e.probs);
    free(e.lab);
    return rc;
}
