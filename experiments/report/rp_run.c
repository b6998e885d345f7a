/* experiments/report/rp_run: the training-run report (see rp_run.h). */
#include "experiments/report/rp_run.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "core/dg_npy.h"
#include "experiments/report/rp_common.h"
#include "experiments/report/rp_page.h"
#include "nn/model.h"
#include "nn/net.h"
#include "nn/spec.h"

/* metrics.jsonl as columns; every line must be an object with every key. */
typedef struct curves {
    int n;
    double *epoch, *train_loss, *train_acc, *val_loss, *val_acc, *lr, *seconds, *ips;
} curves;

static void curves_free(curves *c) {
    free(c->epoch);
    memset(c, 0, sizeof *c);
}

static int read_curves(curves *c, const char *path, dg_err *err) {
    memset(c, 0, sizeof *c);
    char *text;
    if (!dg_path_exists(path)) return dg_fail(err, "%s: missing (no metrics: has this run trained an epoch?)", path);
    if (dg_read_text(path, "metrics", &text, err) != 0) return -1;
    int lines = 0;
    for (char *p = text; *p; p++) lines += *p == '\n';
    if (lines == 0) {
        free(text);
        return dg_fail(err, "%s: empty (no epoch finished yet)", path);
    }
    static const char *keys[7] = {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_s"};
    c->epoch = malloc(8 * (size_t)lines * sizeof(double));
    if (!c->epoch) {
        free(text);
        return dg_fail(err, "out of memory");
    }
    double *cols[7];
    for (int k = 0; k < 7; k++) cols[k] = c->epoch + (size_t)(k + 1) * (size_t)lines;
    c->train_loss = cols[0], c->train_acc = cols[1], c->val_loss = cols[2], c->val_acc = cols[3], c->lr = cols[4];
    c->seconds = cols[5], c->ips = cols[6];
    int rc = 0, ln = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && rc == 0; line = strtok_r(NULL, "\n", &save)) {
        ln++;
        cJSON *j = cJSON_Parse(line);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "epoch");
        if (!cJSON_IsNumber(e)) {
            rc = dg_fail(err, "%s:%d: not a metrics object with an \"epoch\"", path, ln);
        } else {
            c->epoch[c->n] = e->valuedouble;
            for (int k = 0; k < 7 && rc == 0; k++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[k]);
                if (!cJSON_IsNumber(v))
                    rc = dg_fail(err, "%s:%d: no number \"%s\"", path, ln, keys[k]);
                else
                    cols[k][c->n] = v->valuedouble;
            }
            c->n++;
        }
        cJSON_Delete(j);
    }
    free(text);
    if (rc != 0) curves_free(c);
    return rc;
}

static void learning_curves(dg_text *t, const curves *c) {
    rp_section(t, "curves", "Learning curves");
    dg_text_printf(t, "<div class=\"charts\">\n");
    dg_svg_series loss[2] = {{"train", c->epoch, c->train_loss, c->n, "#1f77b4", 0},
                             {"validation", c->epoch, c->val_loss, c->n, "#d62728", 1}};
    dg_svg_axes ax = {"Loss", "epoch", "cross-entropy", 0, 0, 0, 0, 0};
    dg_svg_line_chart(t, &ax, loss, 2);
    double *tr = malloc(2 * (size_t)c->n * sizeof *tr);
    if (!tr) {
        t->oom = 1;
        return;
    }
    for (int i = 0; i < c->n; i++) tr[i] = 100 * c->train_acc[i], tr[c->n + i] = 100 * c->val_acc[i];
    dg_svg_series acc[2] = {{"train", c->epoch, tr, c->n, "#1f77b4", 0},
                            {"validation", c->epoch, tr + c->n, c->n, "#d62728", 1}};
    dg_svg_axes ax2 = {"Accuracy", "epoch", "%", 0, 0, 0, 0, 0};
    dg_svg_line_chart(t, &ax2, acc, 2);
    free(tr);
    dg_svg_series lr = {"lr", c->epoch, c->lr, c->n, "#2ca02c", 0};
    dg_svg_axes ax3 = {"Learning rate (first step of each epoch)", "epoch", "lr", 0, 0, 0, 0, 1};
    dg_svg_line_chart(t, &ax3, &lr, 1);
    dg_svg_series ips = {"images/s", c->epoch, c->ips, c->n, "#9467bd", 0};
    dg_svg_axes ax4 = {"Training speed", "epoch", "images/s", 0, 0, 0, 0, 0};
    dg_svg_line_chart(t, &ax4, &ips, 1);
    dg_text_printf(t, "</div>\n");
}

/* A misclassified validation row. */
typedef struct miss {
    size_t row; /* of the dataset */
    int truth, pred;
    float conf;
} miss;

static int by_confidence(const void *a, const void *b) {
    const miss *x = a, *y = b;
    if (x->conf != y->conf) return x->conf < y->conf ? 1 : -1;
    return x->row < y->row ? -1 : x->row > y->row;
}

int rp_run_report(dg_text *t, const rp_run_opts *o, dg_err *err) {
    char path[4200], model_path[4200], data_abs[8300];
    curves c;
    snprintf(path, sizeof path, "%s/metrics.jsonl", o->run_dir);
    if (read_curves(&c, path, err) != 0) return -1;
    int rc = -1;
    cJSON *result = NULL, *inv = NULL;
    char *spec = NULL, *data_meta = NULL, *summary = NULL;
    size_t summary_len = 0;
    dg_npy_file pred = {0}, ids = {0};
    int pred_open = 0, ids_open = 0, ds_open = 0;
    dg_dataset ds;
    nn_net *net = NULL;
    miss *misses = NULL;

    size_t nv = 0, nm = 0;
    double cm[100] = {0};
    const char *data = o->data;
    snprintf(path, sizeof path, "%s/result.json", o->run_dir);
    int finished = dg_path_exists(path);
    if (!finished && !o->live) {
        dg_fail(err, "%s: not a finished run (no result.json yet); report it when digits-train has finished, or "
                     "use --live for the curves so far",
                o->run_dir);
        goto done;
    }
    if (finished && !(result = rp_read_json(path, err))) goto done;
    snprintf(path, sizeof path, "%s/invocation.json", o->run_dir);
    if (dg_path_exists(path) && !(inv = rp_read_json(path, err))) goto done;
    snprintf(path, sizeof path, "%s/spec.txt", o->run_dir);
    if (dg_read_text(path, "spec", &spec, err) != 0) goto done;
    if (!finished) { /* the model summary from the spec; no validation outputs yet */
        nn_spec sp;
        snprintf(path, sizeof path, "%s/spec.txt", o->run_dir);
        if (nn_spec_parse(&sp, spec, path, err) != 0) goto done;
        int r = nn_net_create(&net, &sp, 1, err);
        nn_spec_free(&sp);
        if (r != 0) goto done;
        goto summarize;
    }
    snprintf(model_path, sizeof model_path, "%s/model.safetensors", o->run_dir);
    if (nn_model_load(model_path, 1, &net, err) != 0) goto done;
    if (!data) {
        if (nn_model_meta(model_path, "data", &data_meta, err) != 0) {
            dg_err_prefix(err, "no --data given, and the model does not say which dataset it was trained on");
            goto done;
        }
        data = data_meta;
        /* a relative path is relative to where digits-train ran */
        const cJSON *cwd = cJSON_GetObjectItemCaseSensitive(inv, "cwd");
        if (data[0] != '/' && !dg_path_exists(data) && cJSON_IsString(cwd)) {
            snprintf(data_abs, sizeof data_abs, "%s/%s", cwd->valuestring, data_meta);
            data = data_abs;
        }
    }
    snprintf(path, sizeof path, "%s/val_pred.npy", o->run_dir);
    if (dg_npy_open(&pred, path, 4, err) != 0) goto done;
    pred_open = 1;
    snprintf(path, sizeof path, "%s/val_ids.npy", o->run_dir);
    if (dg_npy_open(&ids, path, 8, err) != 0) goto done;
    ids_open = 1;
    if (!dg_npy_is(&pred.h, "<f4") || pred.h.ndim != 2 || pred.h.shape[1] != 10 || !dg_npy_is(&ids.h, "<i8") ||
        ids.h.ndim != 1 || ids.h.shape[0] != pred.h.shape[0]) {
        dg_fail(err, "%s: val_pred.npy (N, 10) <f4 and val_ids.npy (N,) <i8 do not match", o->run_dir);
        goto done;
    }
    if (dg_dataset_open(&ds, data, err) != 0) goto done;
    ds_open = 1;
    if (!ds.has_labels) {
        dg_fail(err, "%s: unlabelled; the report needs the labelled dataset the run was trained on", data);
        goto done;
    }
    nv = pred.h.shape[0];
    const float *p = pred.data;
    const int64_t *id = ids.data;
    misses = malloc((nv ? nv : 1) * sizeof *misses);
    if (!misses) {
        dg_fail(err, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nv; i++) {
        if (id[i] < 0 || (size_t)id[i] >= ds.n) {
            dg_fail(err, "%s/val_ids.npy: row %zu names dataset row %lld, but %s has %zu rows", o->run_dir, i,
                    (long long)id[i], data, ds.n);
            goto done;
        }
        int best = 0;
        for (int k = 1; k < 10; k++)
            if (p[i * 10 + k] > p[i * 10 + best]) best = k;
        int truth = dg_dataset_label(&ds, (size_t)id[i]);
        cm[truth * 10 + best] += 1;
        if (best != truth) misses[nm++] = (miss){(size_t)id[i], truth, best, p[i * 10 + best]};
    }
    qsort(misses, nm, sizeof *misses, by_confidence);
summarize:;
    FILE *ms = open_memstream(&summary, &summary_len);
    if (!ms) {
        dg_fail(err, "out of memory");
        goto done;
    }
    nn_net_summary(net, ms);
    fclose(ms);

    /* ---- the page ---- */
    char title[600], buf[256];
    snprintf(title, sizeof title, "Run %s", o->run_dir);
    const cJSON *va = cJSON_GetObjectItemCaseSensitive(result, "val_acc");
    if (finished)
        snprintf(buf, sizeof buf, "validation accuracy %.2f%% on %zu rows, %zu misclassified, %d epochs",
                 cJSON_IsNumber(va) ? 100 * va->valuedouble : NAN, nv, nm, c.n);
    else
        snprintf(buf, sizeof buf, "running: %d epochs so far, validation accuracy %.2f%% after the last; this page "
                                  "reloads every %d s",
                 c.n, 100 * c.val_acc[c.n - 1], o->live);
    rp_page_begin(t, title, buf, finished ? 0 : o->live);
    learning_curves(t, &c);
    if (!finished) goto model;

    rp_section(t, "confusion", "Confusion matrix and per-class accuracy (validation)");
    static const char *const digits[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    double per[10];
    for (int r = 0; r < 10; r++) {
        double row = 0;
        for (int k = 0; k < 10; k++) row += cm[r * 10 + k];
        per[r] = row > 0 ? 100 * cm[r * 10 + r] / row : NAN;
    }
    dg_text_printf(t, "<div class=\"charts\">\n");
    dg_svg_axes cax = {"Confusion matrix (rows: true, columns: predicted)", "predicted", "true", 460, 420, 0, 0, 0};
    dg_svg_heatmap(t, &cax, cm, 10, 10, digits, digits, "%.0f");
    dg_svg_axes bax = {"Per-class accuracy", "digit", "%", 460, 300, 0, 0, 0};
    double lo = 100;
    for (int r = 0; r < 10; r++)
        if (isfinite(per[r])) lo = fmin(lo, per[r]);
    bax.ymin = fmax(0, floor(lo / 5) * 5 - 5);
    bax.ymax = 100;
    dg_svg_bars(t, &bax, per, 10, digits, "%.1f");
    dg_text_printf(t, "</div>\n");

    int shown = (int)(nm < (size_t)o->gallery_max ? nm : (size_t)o->gallery_max);
    rp_section(t, "gallery", "Misclassified validation digits");
    dg_text_printf(t, "<p class=\"note\">%d of %zu, most confident mistakes first: true &rarr; predicted "
                      "(confidence), dataset row.</p>\n<div class=\"gallery\" id=\"misclassified\">\n",
                   shown, nm);
    for (int i = 0; i < shown; i++) {
        snprintf(buf, sizeof buf, "%d &rarr; <b class=\"bad\">%d</b> (%.0f%%)<br>row %zu", misses[i].truth,
                 misses[i].pred, 100.0 * misses[i].conf, misses[i].row);
        if (rp_digit(t, dg_dataset_image(&ds, misses[i].row), buf, err) != 0) goto done;
    }
    dg_text_printf(t, "</div>\n");

model:
    rp_section(t, "model", "Model");
    rp_pre(t, summary);
    dg_text_printf(t, "<details><summary>Resolved spec (spec.txt)</summary>\n");
    rp_pre(t, spec);
    dg_text_printf(t, "</details>\n");

    rp_section(t, "timing", "Timings");
    double total = 0, ips = 0;
    for (int i = 0; i < c.n; i++) total += c.seconds[i], ips += c.ips[i];
    char v[4][96];
    snprintf(v[0], sizeof v[0], "%.1f s", total);
    snprintf(v[1], sizeof v[1], "%.2f s", total / c.n);
    snprintf(v[2], sizeof v[2], "%.0f images/s", ips / c.n);
    const cJSON *secs = cJSON_GetObjectItemCaseSensitive(result, "seconds");
    if (cJSON_IsNumber(secs))
        snprintf(v[3], sizeof v[3], "%.1f s", secs->valuedouble);
    else
        snprintf(v[3], sizeof v[3], "(running)");
    const char *tk[4] = {"epochs (sum of metrics.jsonl)", "per epoch (mean)", "training speed (mean)",
                         "result.json seconds"};
    const char *tv[4] = {v[0], v[1], v[2], v[3]};
    rp_kv_table(t, tk, tv, 4);

    rp_section(t, "invocation", "Command and hardware");
    if (inv) {
        static const char *const keys[] = {"command", "cwd", "started", "version", "host", "cpu", "cpus",
                                           "threads", "blas"};
        const char *kv[9];
        char nums[3][32];
        int nn = 0;
        for (int k = 0; k < 9; k++) {
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(inv, keys[k]);
            if (cJSON_IsString(x))
                kv[k] = x->valuestring;
            else if (cJSON_IsNumber(x) && nn < 3)
                snprintf(nums[nn], sizeof nums[nn], "%g", x->valuedouble), kv[k] = nums[nn++];
            else
                kv[k] = "(not recorded)";
        }
        rp_kv_table(t, keys, kv, 9);
    } else {
        dg_text_printf(t, "<p class=\"note\">Not recorded: this run has no invocation.json (made by an older "
                          "digits-train).</p>\n");
    }
    const char *dk[2] = {"dataset", "run directory"};
    const char *dv[2] = {data, o->run_dir};
    rp_kv_table(t, dk, dv, 2);
    rp_page_end(t);
    if (t->oom) {
        dg_fail(err, "out of memory");
        goto done;
    }
    rc = 0;
done:
    curves_free(&c);
    cJSON_Delete(result);
    cJSON_Delete(inv);
    free(spec);
    free(data_meta);
    free(summary);
    free(misses);
    if (pred_open) dg_npy_close(&pred);
    if (ids_open) dg_npy_close(&ids);
    if (ds_open) dg_dataset_close(&ds);
    if (net) nn_net_free(net);
    return rc;
}
