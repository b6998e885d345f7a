/* experiments/sweep_report: leaderboard, best spec, per-epoch curves (see sweep_report.h). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "experiments/sweep_report.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dg_file.h"
#include "experiments/sweep_exec.h"

const char *sw_state_name(int state) {
    return state == SW_COMPLETE ? "complete" : state == SW_PRUNED ? "pruned" : state == SW_FAILED ? "failed" : "open";
}

static int maximize_;

static int cmp_row(const void *a, const void *b) {
    const sw_row *x = a, *y = b;
    if (x->rung != y->rung) return x->rung > y->rung ? -1 : 1;
    if (x->rung >= 0 && x->mean != y->mean) return (x->mean > y->mean) == maximize_ ? -1 : 1;
    return (x->config > y->config) - (x->config < y->config);
}

int sw_report_rows(const sw_sweep *s, const sw_results *r, const sw_decisions *d, sw_store *st, sw_row **out,
                   dg_err *err) {
    int n = r->n_configs;
    sw_row *rows = calloc((size_t)n + 1, sizeof *rows);
    if (!rows) return dg_fail(err, "out of memory");
    for (int c = 0; c < n; c++) {
        sw_row *w = &rows[c];
        w->config = c;
        w->state = d->state[c];
        w->rung = -1;
        for (int k = r->n_rungs - 1; k >= 0; k--)
            if (sw_config_mean(r, c, k, &w->mean, &w->sd) == 0) {
                w->rung = k;
                break;
            }
        for (int rep = 0; rep < r->n_reps; rep++) {
            char state[16], reason[256];
            int epochs;
            double secs;
            if (sw_store_trial_info(st, c * r->n_reps + rep, state, &epochs, &secs, reason, sizeof reason, err) != 0) {
                free(rows);
                return -1;
            }
            if (epochs > w->epochs) w->epochs = epochs;
            w->seconds += secs;
            if (strcmp(state, "failed") == 0 && !w->reason[0]) snprintf(w->reason, sizeof w->reason, "%s", reason);
        }
    }
    maximize_ = s->maximize;
    qsort(rows, (size_t)n, sizeof *rows, cmp_row);
    *out = rows;
    return n;
}

/* CSV field: quoted when it holds a comma, a quote or a newline. */
static void csv_str(FILE *f, const char *t) {
    if (!strpbrk(t, ",\"\n")) {
        fputs(t, f);
        return;
    }
    fputc('"', f);
    for (; *t; t++) {
        if (*t == '"') fputc('"', f);
        fputc(*t, f);
    }
    fputc('"', f);
}

static int write_leaderboard(const sw_sweep *s, const sw_row *rows, int n, const char *dir, dg_err *err) {
    char path[1024];
    snprintf(path, sizeof path, "%s/leaderboard.csv", dir);
    dg_afile f;
    if (dg_afile_open(&f, path, err) != 0) return -1;
    const char *metric = s->maximize ? "val_acc" : "val_loss";
    fprintf(f.fp, "rank,config,state,rung,epochs,%s_mean,%s_sd,replicates,seconds", metric, metric);
    for (int j = 0; j < s->n_params; j++) {
        fputc(',', f.fp);
        csv_str(f.fp, s->params[j].name);
    }
    fprintf(f.fp, ",reason\n");
    for (int i = 0; i < n; i++) {
        const sw_row *w = &rows[i];
        fprintf(f.fp, "%d,%d,%s,%d,%d,", i + 1, w->config, sw_state_name(w->state), w->rung, w->epochs);
        if (w->rung >= 0) fprintf(f.fp, "%.6f,%.6f", w->mean, w->sd);
        else fputc(',', f.fp);
        fprintf(f.fp, ",%d,%.3f", sw_reps(s), w->seconds);
        sw_value v[SW_MAX_PARAMS];
        sw_config_values(s, w->config, v);
        for (int j = 0; j < s->n_params; j++) {
            char b[80];
            sw_value_format(&v[j], b, sizeof b);
            fputc(',', f.fp);
            csv_str(f.fp, b);
        }
        fputc(',', f.fp);
        csv_str(f.fp, w->reason);
        fputc('\n', f.fp);
    }
    return dg_afile_commit(&f, err);
}

/* Every trial's metrics.jsonl as one CSV. */
static int write_epochs(const sw_sweep *s, const char *dir, dg_err *err) {
    char path[1024];
    snprintf(path, sizeof path, "%s/epochs.csv", dir);
    dg_afile f;
    if (dg_afile_open(&f, path, err) != 0) return -1;
    static const char *const keys[] = {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"};
    fprintf(f.fp, "config,replicate,epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds\n");
    for (int c = 0; c < s->n_configs; c++)
        for (int rep = 0; rep < sw_reps(s); rep++) {
            char rd[1024], mp[1100];
            sw_trial_dir(dir, c, rep, rd, sizeof rd);
            snprintf(mp, sizeof mp, "%s/metrics.jsonl", rd);
            if (!dg_path_exists(mp)) continue;
            char *text;
            size_t len;
            if (dg_read_file(mp, &text, &len, err) != 0) {
                dg_afile_abort(&f);
                return -1;
            }
            for (char *p = strtok(text, "\n"); p; p = strtok(NULL, "\n")) {
                cJSON *j = cJSON_Parse(p);
                if (!j) continue;
                fprintf(f.fp, "%d,%d", c, rep);
                for (int k = 0; k < 7; k++) {
                    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[k]);
                    fprintf(f.fp, ",%.9g", cJSON_IsNumber(v) ? v->valuedouble : NAN);
                }
                fputc('\n', f.fp);
                cJSON_Delete(j);
            }
            free(text);
        }
    return dg_afile_commit(&f, err);
}

int sw_report_write(const sw_sweep *s, const sw_row *rows, int n, const char *dir, dg_err *err) {
    if (write_leaderboard(s, rows, n, dir, err) != 0 || write_epochs(s, dir, err) != 0) return -1;
    if (n == 0 || rows[0].state != SW_COMPLETE) return 0;
    /* the best configuration as a spec of its own (and its policy next to it) */
    sw_value v[SW_MAX_PARAMS];
    sw_config_values(s, rows[0].config, v);
    char pol[1024], path[1024], name[80], *spec, *ptext;
    snprintf(pol, sizeof pol, "%s/best.policy", dir);
    char *abs = realpath(dir, NULL);
    if (abs) {
        snprintf(pol, sizeof pol, "%s/best.policy", abs);
        free(abs);
    }
    const char *base = strncmp(s->base_spec, "name ", 5) == 0 ? s->base_spec + 5 : "model";
    size_t bl = strcspn(base, "\n");
    snprintf(name, sizeof name, "%.*s-best", (int)(bl > 60 ? 60 : bl), base);
    if (sw_config_render(s, v, name, pol, &spec, &ptext, err) != 0) return -1;
    int rc = 0;
    if (ptext) rc = dg_write_file_atomic(pol, ptext, strlen(ptext), err);
    snprintf(path, sizeof path, "%s/best.spec", dir);
    if (rc == 0) {
        char head[800];
        snprintf(head, sizeof head, "# the best configuration of sweep %s (configuration %d, %s %.6f)\n", s->file,
                 rows[0].config, s->maximize ? "val_acc" : "val_loss", rows[0].mean);
        size_t hl = strlen(head), sl = strlen(spec);
        char *all = malloc(hl + sl + 1);
        if (!all) rc = dg_fail(err, "out of memory");
        else {
            memcpy(all, head, hl);
            memcpy(all + hl, spec, sl + 1);
            rc = dg_write_file_atomic(path, all, hl + sl, err);
            free(all);
        }
    }
    free(spec);
    free(ptext);
    return rc;
}

void sw_report_print(const sw_sweep *s, const sw_row *rows, int n, int top, FILE *out) {
    const char *metric = s->maximize ? "val_acc" : "val_loss";
    if (top <= 0) return;
    fprintf(out, "%4s %6s %-9s %6s %-21s %9s  %s\n", "rank", "config", "state", "epochs", metric, "seconds",
            "parameters");
    for (int i = 0; i < n && i < top; i++) {
        const sw_row *w = &rows[i];
        char m[64] = "-";
        if (w->rung >= 0) snprintf(m, sizeof m, "%.4f ± %.4f", w->mean, w->sd);
        char params[512] = "";
        sw_value v[SW_MAX_PARAMS];
        sw_config_values(s, w->config, v);
        for (int j = 0; j < s->n_params; j++) {
            char b[80];
            sw_value_format(&v[j], b, sizeof b);
            size_t l = strlen(params);
            snprintf(params + l, sizeof params - l, "%s%s=%s", j ? " " : "", s->params[j].name, b);
        }
        fprintf(out, "%4d %6d %-9s %6d %-21s %9.1f  %s%s%s\n", i + 1, w->config, sw_state_name(w->state), w->epochs,
                m, w->seconds, params, w->reason[0] ? "  # " : "", w->reason);
    }
}
