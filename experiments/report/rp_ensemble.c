/* experiments/report/rp_ensemble: members, agreement, estimate and the ensemble's hold-out mistakes (see
 * rp_ensemble.h). */
#include "experiments/report/rp_ensemble.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dg_dataset.h"
#include "core/dg_npy.h"
#include "experiments/report/rp_common.h"
#include "experiments/report/rp_page.h"
#include "kaggle/ensemble.h"
#include "nn/model.h"

#define MAX_MEMBERS 64

static double num_or_nan(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str_or(const cJSON *o, const char *key, const char *dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

static void pct(char *buf, size_t cap, double v) {
    if (isfinite(v))
        snprintf(buf, cap, "%.2f%%", 100 * v);
    else
        snprintf(buf, cap, "&ndash;");
}

int rp_ensemble_report(dg_text *t, const rp_ensemble_opts *o, dg_err *err) {
    cJSON *man = rp_read_json(o->manifest, err);
    if (!man) return -1;
    int rc = -1, m = 0, with_run = 0, ds_open = 0;
    float *val_p[MAX_MEMBERS] = {0}, *gathered[MAX_MEMBERS] = {0}, *vote = NULL;
    int64_t *val_ids[MAX_MEMBERS] = {0}, *shared = NULL;
    size_t *rows[MAX_MEMBERS] = {0}, ns = 0;
    kg_member_val mv[MAX_MEMBERS];
    double w[MAX_MEMBERS];
    uint8_t *labels = NULL, *hard = NULL;
    char *data_meta = NULL;
    dg_dataset ds;
    const cJSON *members = cJSON_GetObjectItemCaseSensitive(man, "members");
    const char *fmt = str_or(man, "format", "");
    if (strcmp(fmt, "digits-ensemble") != 0 || !cJSON_IsArray(members)) {
        dg_fail(err, "%s: not a digits-ensemble manifest (no \"format\": \"digits-ensemble\" and \"members\")",
                o->manifest);
        goto done;
    }
    m = cJSON_GetArraySize(members);
    if (m < 1 || m > MAX_MEMBERS) {
        dg_fail(err, "%s: %d members (expected 1..%d)", o->manifest, m, MAX_MEMBERS);
        goto done;
    }
    const char *method = str_or(man, "method", "soft");
    /* the validation probabilities the estimate used: with TTA the views the test rows got (digits-ensemble
     * --val-pred), so that this page shows the same votes as the estimate */
    const char *val_pred = str_or(man, "val_pred", "val_pred.npy");
    if (!val_pred[0] || strchr(val_pred, '/')) {
        dg_fail(err, "%s: \"val_pred\": \"%s\" is not a file name", o->manifest, val_pred);
        goto done;
    }
    for (int j = 0; j < m; j++) {
        const cJSON *it = cJSON_GetArrayItem(members, j);
        w[j] = num_or_nan(it, "weight");
        if (!isfinite(w[j]) || w[j] < 0) {
            dg_fail(err, "%s: member %d has no weight", o->manifest, j + 1);
            goto done;
        }
        const char *run = str_or(it, "run", NULL);
        if (!run) continue;
        with_run++;
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", run, val_pred);
        if (kg_probs_load(p, &val_p[j], &mv[j].nv, err) != 0) goto done;
        size_t ni;
        snprintf(p, sizeof p, "%s/val_ids.npy", run);
        if (dg_npy_load_i64(p, &val_ids[j], &ni, err) != 0) goto done;
        if (ni != mv[j].nv) {
            dg_fail(err, "%s: %zu ids for %zu predictions", p, ni, mv[j].nv);
            goto done;
        }
        mv[j].pred = val_p[j];
        mv[j].ids = val_ids[j];
        if (!o->data && !data_meta) {
            snprintf(p, sizeof p, "%s/model.safetensors", run);
            if (nn_model_meta(p, "data", &data_meta, err) != 0) {
                dg_err_prefix(err, "no --data given, and member %d's model does not name its dataset", j + 1);
                goto done;
            }
        }
    }
    if (with_run && with_run != m) {
        dg_fail(err, "%s: %d of %d members have run directories; the hold-out view needs all or none", o->manifest,
                with_run, m);
        goto done;
    }
    const char *data = o->data ? o->data : data_meta;
    if (with_run) {
        if (dg_dataset_open(&ds, data, err) != 0) goto done;
        ds_open = 1;
        if (!ds.has_labels) {
            dg_fail(err, "%s: unlabelled; the report needs the labelled train dataset", data);
            goto done;
        }
        labels = malloc(ds.n ? ds.n : 1);
        if (!labels) {
            dg_fail(err, "out of memory");
            goto done;
        }
        for (size_t r = 0; r < ds.n; r++) labels[r] = (uint8_t)dg_dataset_label(&ds, r);
        if (kg_shared_rows(&shared, rows, &ns, mv, m, ds.n, err) != 0) goto done;
        for (int j = 0; j < m; j++) {
            gathered[j] = malloc((ns ? ns : 1) * 10 * sizeof(float));
            if (!gathered[j]) {
                dg_fail(err, "out of memory");
                goto done;
            }
            kg_gather(gathered[j], &mv[j], rows[j], ns);
        }
        vote = malloc((ns ? ns : 1) * 10 * sizeof(float));
        hard = malloc(ns ? ns : 1);
        if (!vote || !hard) {
            dg_fail(err, "out of memory");
            goto done;
        }
        kg_soft_vote(vote, (const float *const *)gathered, w, m, ns);
        if (strcmp(method, "hard") == 0)
            kg_hard_vote(hard, (const float *const *)gathered, w, m, ns);
        else
            kg_argmax(hard, vote, ns);
    }

    /* ---- the page ---- */
    const cJSON *est = cJSON_GetObjectItemCaseSensitive(man, "estimate");
    char title[4300], sub[600], a[64], b[64];
    snprintf(title, sizeof title, "Ensemble %s", o->manifest);
    snprintf(sub, sizeof sub, "%d members, %s vote, weights %s; submission %s", m, method,
             str_or(man, "weights_from", "?"), str_or(man, "submission", "(none)"));
    rp_page_begin(t, title, sub, 0);
    rp_section(t, "estimate", "Estimate (validation)");
    static const char *const ek[] = {"mode", "ensemble accuracy", "mean member accuracy", "best member accuracy",
                                     "gain", "rows held out by every member", "rows held out by any member"};
    char ev[7][64];
    snprintf(ev[0], sizeof ev[0], "%s", str_or(est, "mode", "none"));
    snprintf(ev[1], sizeof ev[1], "%.4f%%", 100 * num_or_nan(est, "ensemble_acc"));
    snprintf(ev[2], sizeof ev[2], "%.4f%%", 100 * num_or_nan(est, "mean_member_acc"));
    snprintf(ev[3], sizeof ev[3], "%.4f%%", 100 * num_or_nan(est, "best_member_acc"));
    snprintf(ev[4], sizeof ev[4], "%+.4f points", 100 * num_or_nan(est, "gain"));
    snprintf(ev[5], sizeof ev[5], "%.0f", num_or_nan(est, "shared_rows"));
    snprintf(ev[6], sizeof ev[6], "%.0f", num_or_nan(est, "union_rows"));
    const char *evp[7] = {ev[0], ev[1], ev[2], ev[3], ev[4], ev[5], ev[6]};
    rp_kv_table(t, ek, evp, 7);

    rp_section(t, "members", "Members");
    dg_text_printf(t, "<table id=\"members\"><tr><th>#</th><th>run</th><th>epochs</th><th>seed</th><th>validation "
                      "accuracy</th><th>weight</th><th>test agreement with the ensemble</th></tr>\n");
    double accs[MAX_MEMBERS];
    const char *names[MAX_MEMBERS];
    char namebuf[MAX_MEMBERS][8];
    for (int j = 0; j < m; j++) {
        const cJSON *it = cJSON_GetArrayItem(members, j);
        accs[j] = 100 * num_or_nan(it, "val_acc");
        snprintf(namebuf[j], sizeof namebuf[j], "%d", j + 1);
        names[j] = namebuf[j];
        pct(a, sizeof a, num_or_nan(it, "val_acc"));
        pct(b, sizeof b, num_or_nan(it, "test_agreement"));
        dg_text_printf(t, "<tr><td class=\"num\">%d</td><td>", j + 1);
        dg_text_escape(t, str_or(it, "run", str_or(it, "test_probs", "")));
        dg_text_printf(t,
                       "</td><td class=\"num\">%.0f</td><td class=\"num\">%.0f</td><td class=\"num\">%s</td>"
                       "<td class=\"num\">%.4f</td><td class=\"num\">%s</td></tr>\n",
                       num_or_nan(it, "epochs"), num_or_nan(it, "seed"), a, w[j], b);
    }
    dg_text_printf(t, "</table>\n<div class=\"charts\">\n");
    dg_svg_axes bax = {"Member validation accuracy", "member", "%", 460, 280, 0, 0, 0};
    double lo = 100;
    for (int j = 0; j < m; j++)
        if (isfinite(accs[j])) lo = fmin(lo, accs[j]);
    bax.ymin = fmax(0, floor(lo) - 1);
    bax.ymax = 100;
    if (with_run) dg_svg_bars(t, &bax, accs, m, names, "%.2f");

    if (with_run && ns == 0) {
        dg_text_printf(t, "<p class=\"note\">No row is held out by every member (K folds?): no agreement matrix and "
                          "no gallery; the estimate above is out-of-fold.</p>\n");
    } else if (with_run) {
        double *agree = calloc((size_t)m * (size_t)m, sizeof *agree);
        uint8_t *am = malloc((size_t)m * (ns ? ns : 1));
        if (!agree || !am) {
            free(agree);
            free(am);
            dg_fail(err, "out of memory");
            goto done;
        }
        for (int j = 0; j < m; j++) kg_argmax(am + (size_t)j * ns, gathered[j], ns);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++) {
                size_t same = 0;
                for (size_t r = 0; r < ns; r++) same += am[(size_t)i * ns + r] == am[(size_t)j * ns + r];
                agree[i * m + j] = ns ? 100.0 * (double)same / (double)ns : NAN;
            }
        double amin = 100;
        for (int i = 0; i < m * m; i++)
            if (isfinite(agree[i])) amin = fmin(amin, agree[i]);
        /* colours over [a round number below the lowest agreement, 100] */
        dg_svg_axes hax = {"Agreement between members on the shared hold-out (%)", "member", "member", 460, 400,
                           fmin(90, floor(amin / 5) * 5), 100, 0};
        dg_svg_heatmap(t, &hax, agree, m, m, names, names, m <= 12 ? "%.1f" : NULL);
        free(agree);
        free(am);
    }
    dg_text_printf(t, "</div>\n");

    rp_section(t, "gallery", "Hold-out digits the ensemble still gets wrong");
    if (!with_run) {
        dg_text_printf(t, "<p class=\"note\">The members are test probabilities only: no validation rows.</p>\n");
    } else if (ns == 0) {
        dg_text_printf(t, "<p class=\"note\">No shared hold-out rows.</p>\n");
    } else {
        size_t wrong = 0;
        for (size_t r = 0; r < ns; r++) wrong += hard[r] != labels[shared[r]];
        int shown = 0;
        dg_text_printf(t, "<p class=\"note\">%zu of the %zu rows every member held out; showing %zu: true &rarr; "
                          "ensemble (its probability), dataset row.</p>\n<div class=\"gallery\" id=\"wrong\">\n",
                       wrong, ns, wrong < (size_t)o->gallery_max ? wrong : (size_t)o->gallery_max);
        char cap[256];
        for (size_t r = 0; r < ns && shown < o->gallery_max; r++) {
            int y = labels[shared[r]], p = hard[r];
            if (p == y) continue;
            snprintf(cap, sizeof cap, "%d &rarr; <b class=\"bad\">%d</b> (%.0f%%)<br>row %lld", y, p,
                     100.0 * vote[r * 10 + (size_t)p], (long long)shared[r]);
            if (rp_digit(t, dg_dataset_image(&ds, (size_t)shared[r]), cap, err) != 0) goto done;
            shown++;
        }
        dg_text_printf(t, "</div>\n");
    }
    rp_section(t, "command", "Command");
    rp_pre(t, str_or(man, "command", "(not recorded)"));
    rp_page_end(t);
    if (t->oom) {
        dg_fail(err, "out of memory");
        goto done;
    }
    rc = 0;
done:
    for (int j = 0; j < MAX_MEMBERS; j++) {
        free(val_p[j]);
        free(val_ids[j]);
        free(rows[j]);
        free(gathered[j]);
    }
    free(shared);
    free(vote);
    free(hard);
    free(labels);
    free(data_meta);
    if (ds_open) dg_dataset_close(&ds);
    cJSON_Delete(man);
    return rc;
}
