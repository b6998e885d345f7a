/* digits-ensemble: combine the class probabilities of several models into submission.csv (+ a manifest), with a
 * validation estimate of the ensemble's accuracy. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
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

typedef enum method { M_SOFT, M_HARD, M_FIT } method;
static const char *const kMethodNames[] = {"soft", "hard", "fit"};

typedef struct opts {
    method method;
    const char *weights, *train, *sample, *output, *manifest, *probs_out;
    long rows;
    int estimate_only, quiet;
} opts;

static const opts kDefaults = {M_SOFT, NULL, "data/train.npy", NULL, "submission.csv", NULL, NULL, 0, 0, 0};

static void usage(FILE *out) {
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
            "  -q, --quiet          no summary on stderr\n"
            "  -h, --help\n"
            "Estimate: members holding out the same rows (same --split-seed/--val-frac) give the ensemble accuracy\n"
            "on those rows vs the mean member accuracy; members with disjoint folds give the out-of-fold accuracy.\n",
            kMethodNames[kDefaults.method], kDefaults.train, kDefaults.output);
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
    double val_acc;     /* recomputed on its validation rows */
    double agree;       /* fraction of test rows where its argmax equals the ensemble's label */
} member;

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Resolve one MEMBER argument and load what it names. */
static int load_member(member *mb, const char *arg, int need_test, dg_err *err) {
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
        snprintf(p, sizeof p, "%s/val_pred.npy", mb->run);
        if (kg_probs_load(p, &mb->val_p, &mb->nv, err) != 0) return -1;
        size_t ni;
        snprintf(p, sizeof p, "%s/val_ids.npy", mb->run);
        if (dg_npy_load_i64(p, &mb->val_ids, &ni, err) != 0) return -1;
        if (ni != mb->nv)
            return dg_fail(err, "%s: %zu validation ids for %zu validation predictions (val_pred.npy)", p, ni, mb->nv);
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

static int parse_weights(const char *s, double *w, int m, dg_err *err) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", s);
    int k = 0;
    double sum = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (k == m) return dg_fail(err, "--weights %s: more weights than the %d members", s, m);
        if (dg_parse_double(tok, 0, 1e9, &w[k]) != 0)
            return dg_fail(err, "--weights %s: \"%s\" is not a non-negative number", s, tok);
        sum += w[k++];
    }
    if (k != m) return dg_fail(err, "--weights %s: %d weights for %d members", s, k, m);
    if (!(sum > 0)) return dg_fail(err, "--weights %s: the weights sum to 0", s);
    for (int j = 0; j < m; j++) w[j] /= sum;
    return 0;
}

/* argv joined with shell quoting where needed. */
static char *join_command(int argc, char **argv) {
    size_t cap = 16;
    for (int i = 0; i < argc; i++) cap += 4 * strlen(argv[i]) + 3;
    char *s = malloc(cap), *p = s;
    if (!s) return NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int plain = *a != '\0';
        for (const char *q = a; *q && plain; q++) plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                                "0123456789_./=:,+-@%", *q) != NULL;
        if (i) *p++ = ' ';
        if (plain) {
            p += sprintf(p, "%s", a);
        } else {
            *p++ = '\'';
            for (const char *q = a; *q; q++) p += *q == '\'' ? sprintf(p, "'\\''") : sprintf(p, "%c", *q);
            *p++ = '\'';
        }
    }
    *p = '\0';
    return s;
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

int main(int argc, char **argv) {
    opts o = kDefaults;
    static const struct option longopts[] = {
        {"method", required_argument, 0, 'm'},   {"weights", required_argument, 0, 'w'},
        {"train", required_argument, 0, 'T'},    {"sample", required_argument, 0, 'S'},
        {"rows", required_argument, 0, 'R'},     {"output", required_argument, 0, 'o'},
        {"manifest", required_argument, 0, 'M'}, {"probs-out", required_argument, 0, 'P'},
        {"estimate-only", no_argument, 0, 'E'},  {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "m:w:o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (!strcmp(optarg, "soft")) o.method = M_SOFT;
            else if (!strcmp(optarg, "hard")) o.method = M_HARD;
            else if (!strcmp(optarg, "fit") || !strcmp(optarg, "weighted")) o.method = M_FIT;
            else {
                fprintf(stderr, "digits-ensemble: --method %s: expected soft, hard or fit\n", optarg);
                return DG_EXIT_USAGE;
            }
            break;
        case 'w': o.weights = optarg; break;
        case 'T': o.train = optarg; break;
        case 'S': o.sample = optarg; break;
        case 'R':
            if (dg_parse_long(optarg, 1, 1L << 40, &o.rows) != 0) {
                fprintf(stderr, "digits-ensemble: --rows %s: expected a positive integer\n", optarg);
                return DG_EXIT_USAGE;
            }
            break;
        case 'o': o.output = optarg; break;
        case 'M': o.manifest = optarg; break;
        case 'P': o.probs_out = optarg; break;
        case 'E': o.estimate_only = 1; break;
        case 'q': o.quiet = 1; break;
        case 'h': usage(stdout); return DG_EXIT_OK;
        default: usage(stderr); return DG_EXIT_USAGE;
        }
    }
    int m = argc - optind;
    if (m < 1) {
        fprintf(stderr, "digits-ensemble: no MEMBER given\n");
        usage(stderr);
        return DG_EXIT_USAGE;
    }
    if (o.weights && o.method == M_FIT) {
        fprintf(stderr, "digits-ensemble: --weights and --method fit exclude each other\n");
        return DG_EXIT_USAGE;
    }

    dg_err err = {{0}};
    int rc = DG_EXIT_FAIL, ds_open = 0, with_val = 0;
    member *mb = calloc((size_t)m, sizeof *mb);
    double *w = calloc((size_t)m, sizeof(double));
    double *member_acc = calloc((size_t)m, sizeof(double));
    kg_member_val *mv = calloc((size_t)m, sizeof *mv);
    const float **tp = calloc((size_t)m, sizeof *tp);
    float *ens = NULL, *gathered = NULL;
    uint8_t *lab = NULL, *labels = NULL, *ys = NULL;
    int64_t *sid = NULL;
    size_t **rows = calloc((size_t)m, sizeof *rows), ns = 0;
    char *cmd = join_command(argc, argv), manifest_path[4200];
    cJSON *man = NULL;
    dg_afile mf = {0};
    dg_dataset ds;
    kg_estimate est;
    double cv_fit = -1;
    memset(&est, 0, sizeof est);
    if (!mb || !w || !member_acc || !mv || !tp || !rows || !cmd) {
        dg_fail(&err, "out of memory");
        goto done;
    }
    /* Load and check every member before anything is computed or written. */
    for (int j = 0; j < m; j++) {
        if (load_member(&mb[j], argv[optind + j], !o.estimate_only, &err) != 0) {
            dg_err_prefix(&err, "member %d", j + 1);
            goto done;
        }
        with_val += mb[j].nv > 0;
        if (!o.estimate_only && !mb[j].test_p) {
            dg_fail(&err, "member %d (%s): no test probabilities", j + 1, argv[optind + j]);
            goto done;
        }
        if (!o.estimate_only && mb[j].n_test != mb[0].n_test) {
            dg_fail(&err, "member %d (%s): %zu test rows, member 1 (%s) has %zu: probabilities of different lengths",
                    j + 1, mb[j].test, mb[j].n_test, mb[0].test, mb[0].n_test);
            goto done;
        }
    }
    if (with_val && with_val != m) {
        dg_fail(&err, "%d of %d members are run directories with validation predictions: give all members as run "
                      "directories, or none", with_val, m);
        goto done;
    }
    if ((o.method == M_FIT || o.estimate_only) && !with_val) {
        dg_fail(&err, "%s needs validation predictions: give members as run directories (RUN_DIR=TEST.npy)",
                o.estimate_only ? "--estimate-only" : "--method fit");
        goto done;
    }
    size_t expect = 0;
    if (o.sample && kg_sample_rows(o.sample, &expect, &err) != 0) goto done;
    if (o.rows && expect && (size_t)o.rows != expect) {
        dg_fail(&err, "--rows %ld but %s has %zu rows", o.rows, o.sample, expect);
        goto done;
    }
    if (o.rows) expect = (size_t)o.rows;
    size_t n = o.estimate_only ? 0 : mb[0].n_test;
    if (!o.estimate_only && expect && n != expect) {
        dg_fail(&err, "the members have %zu test rows but the submission needs %zu (%s): wrong test set?", n, expect,
                o.sample ? o.sample : "--rows");
        goto done;
    }
    /* Validation: labels of the train rows the members held out. */
    if (with_val) {
        if (dg_dataset_open(&ds, o.train, &err) != 0) goto done;
        ds_open = 1;
        if (!ds.has_labels) {
            dg_fail(&err, "%s: unlabelled; --train must be the labelled train dataset the runs trained on", o.train);
            goto done;
        }
        labels = malloc(ds.n);
        if (!labels) {
            dg_fail(&err, "out of memory");
            goto done;
        }
        for (size_t r = 0; r < ds.n; r++) labels[r] = (uint8_t)dg_dataset_label(&ds, r);
        for (int j = 0; j < m; j++) mv[j] = (kg_member_val){mb[j].val_p, mb[j].val_ids, mb[j].nv};
    }
    /* Weights. */
    for (int j = 0; j < m; j++) w[j] = 1.0 / m;
    if (o.weights && parse_weights(o.weights, w, m, &err) != 0) goto done;
    if (o.method == M_FIT) {
        if (kg_shared_rows(&sid, rows, &ns, mv, m, ds.n, &err) != 0) goto done;
        if (ns == 0) {
            dg_fail(&err, "--method fit: the members share no validation rows (K-fold members hold out disjoint "
                          "folds); weights can only be fitted on rows every member held out: use --method soft");
            goto done;
        }
        gathered = malloc((size_t)m * ns * KG_CLASSES * sizeof(float));
        ys = malloc(ns);
        const float **vp = (const float **)tp; /* reused as the member pointer list for the fit */
        if (!gathered || !ys) {
            dg_fail(&err, "out of memory");
            goto done;
        }
        for (int j = 0; j < m; j++) {
            kg_gather(gathered + (size_t)j * ns * KG_CLASSES, &mv[j], rows[j], ns);
            vp[j] = gathered + (size_t)j * ns * KG_CLASSES;
        }
        for (size_t k = 0; k < ns; k++) ys[k] = labels[sid[k]];
        /* Validation arrays only: member probabilities on shared validation rows and their labels. */
        if (kg_fit_weights(w, vp, m, ns, ys, 0, &err) != 0) goto done;
        cv_fit = kg_fit_cv_accuracy(vp, m, ns, ys);
    }
    if (with_val &&
        kg_estimate_accuracy(&est, member_acc, mv, m, w, o.method == M_HARD, labels, ds.n, &err) != 0)
        goto done;
    for (int j = 0; j < m; j++) mb[j].val_acc = with_val ? member_acc[j] : -1;

    /* Test predictions. */
    if (!o.estimate_only) {
        ens = malloc(n * KG_CLASSES * sizeof(float));
        lab = malloc(n);
        if (!ens || !lab) {
            dg_fail(&err, "out of memory");
            goto done;
        }
        for (int j = 0; j < m; j++) tp[j] = mb[j].test_p;
        kg_soft_vote(ens, tp, w, m, n);
        if (o.method == M_HARD) kg_hard_vote(lab, tp, w, m, n);
        else kg_argmax(lab, ens, n);
        for (int j = 0; j < m; j++) {
            size_t same = 0;
            uint8_t l;
            for (size_t i = 0; i < n; i++) {
                kg_argmax(&l, mb[j].test_p + i * KG_CLASSES, 1);
                same += l == lab[i];
            }
            mb[j].agree = (double)same / (double)n;
        }
    }

    /* Manifest. */
    man = cJSON_CreateObject();
    cJSON_AddStringToObject(man, "format", "digits-ensemble");
    cJSON_AddStringToObject(man, "version", DIGITS_VERSION);
    char when[64];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    cJSON_AddStringToObject(man, "created", when);
    cJSON_AddStringToObject(man, "command", cmd);
    cJSON_AddStringToObject(man, "method", kMethodNames[o.method]);
    cJSON_AddStringToObject(man, "weights_from", o.method == M_FIT ? "fitted on shared validation rows"
                                                 : o.weights        ? "given"
                                                                    : "equal");
    if (!o.estimate_only) {
        cJSON_AddStringToObject(man, "submission", o.output);
        cJSON_AddNumberToObject(man, "rows", (double)n);
        size_t counts[10] = {0};
        for (size_t i = 0; i < n; i++) counts[lab[i]]++;
        cJSON *lc = cJSON_AddArrayToObject(man, "label_counts");
        for (int k = 0; k < 10; k++) cJSON_AddItemToArray(lc, cJSON_CreateNumber((double)counts[k]));
    }
    cJSON *arr = cJSON_AddArrayToObject(man, "members");
    for (int j = 0; j < m; j++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddItemToObject(e, "run", mb[j].run[0] ? cJSON_CreateString(mb[j].run) : cJSON_CreateNull());
        cJSON_AddItemToObject(e, "test_probs",
                              mb[j].test_p ? cJSON_CreateString(mb[j].test) : cJSON_CreateNull());
        cJSON_AddNumberToObject(e, "weight", w[j]);
        if (mb[j].result) {
            static const char *const keys[] = {"seed", "split", "model", "epochs", "val_loss", "seconds"};
            for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
                cJSON *v = cJSON_GetObjectItemCaseSensitive(mb[j].result, keys[k]);
                if (v) cJSON_AddItemToObject(e, keys[k], cJSON_Duplicate(v, 1));
            }
            cJSON *v = cJSON_GetObjectItemCaseSensitive(mb[j].result, "val_acc");
            if (v) cJSON_AddItemToObject(e, "val_acc_reported", cJSON_Duplicate(v, 1));
        }
        if (mb[j].nv) {
            cJSON_AddNumberToObject(e, "val_acc", mb[j].val_acc);
            cJSON_AddNumberToObject(e, "val_rows", (double)mb[j].nv);
        }
        if (mb[j].test_p) cJSON_AddNumberToObject(e, "test_agreement", mb[j].agree);
        cJSON_AddItemToArray(arr, e);
    }
    cJSON_AddItemToObject(man, "estimate", estimate_json(&est, cv_fit));
    char *json = cJSON_Print(man);
    if (!json) {
        dg_fail(&err, "out of memory");
        goto done;
    }
    if (o.estimate_only) {
        printf("%s\n", json);
        free(json);
        rc = DG_EXIT_OK;
        goto done;
    }
    if (o.manifest) {
        snprintf(manifest_path, sizeof manifest_path, "%s", o.manifest);
    } else {
        size_t len = strlen(o.output);
        int csv = len > 4 && strcmp(o.output + len - 4, ".csv") == 0;
        snprintf(manifest_path, sizeof manifest_path, "%.*s.manifest.json", (int)(csv ? len - 4 : len), o.output);
    }
    /* Write order: manifest to its temporary, the probabilities, the submission (checked, then renamed), and the
     * manifest renamed last: a manifest never describes a submission that is not there. */
    int bad = dg_afile_open(&mf, manifest_path, &err) != 0;
    if (!bad && (fputs(json, mf.fp) < 0 || fputc('\n', mf.fp) == EOF)) bad = dg_fail_errno(&err, "%s: write failed",
                                                                                       manifest_path);
    free(json);
    size_t shape[2] = {n, KG_CLASSES};
    if (!bad && o.probs_out) bad = dg_npy_save(o.probs_out, "<f4", shape, 2, ens, sizeof(float), &err) != 0;
    if (!bad) bad = kg_submission_write(o.output, lab, n, expect, &err) != 0;
    if (bad) {
        dg_afile_abort(&mf);
        goto done;
    }
    if (dg_afile_commit(&mf, &err) != 0) goto done;
    if (!o.quiet) {
        fprintf(stderr, "digits-ensemble: %d members, %s vote%s -> %s (%zu rows), manifest %s\n", m,
                o.method == M_HARD ? "hard" : "soft", o.method == M_FIT ? " with fitted weights" : "", o.output, n,
                manifest_path);
    }
    rc = DG_EXIT_OK;
done:
    if (rc == DG_EXIT_OK && !o.quiet && with_val) {
        for (int j = 0; j < m; j++)
            fprintf(stderr, "  member %d: weight %.4f  val acc %.4f on %zu rows  %s\n", j + 1, w[j], mb[j].val_acc,
                    mb[j].nv, mb[j].run);
        if (est.mode == KG_EST_SHARED)
            fprintf(stderr, "  estimate (shared hold-out, %zu rows): ensemble %.4f vs mean member %.4f: gain %+.4f\n",
                    est.shared_rows, est.ensemble_acc, est.shared_member_acc, est.gain);
        else if (est.mode == KG_EST_OOF)
            fprintf(stderr, "  estimate (out-of-fold, %zu rows): ensemble %.4f vs mean member %.4f: gain %+.4f\n",
                    est.union_rows, est.ensemble_acc, est.mean_member_acc, est.gain);
        if (cv_fit >= 0) fprintf(stderr, "  fitted weights, 2-fold cross-fitted accuracy: %.4f\n", cv_fit);
    }
    if (rc != DG_EXIT_OK) fprintf(stderr, "digits-ensemble: %s\n", err.msg);
    for (int j = 0; mb && j < m; j++) free_member(&mb[j]);
    for (int j = 0; rows && j < m; j++) free(rows[j]);
    if (ds_open) dg_dataset_close(&ds);
    cJSON_Delete(man);
    free(mb);
    free(w);
    free(member_acc);
    free(mv);
    free(tp);
    free(ens);
    free(gathered);
    free(lab);
    free(labels);
    free(ys);
    free(sid);
    free(rows);
    free(cmd);
    return rc;
}
