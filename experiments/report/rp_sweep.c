/* experiments/report/rp_sweep: the sweep report (see rp_sweep.h). */
#define _GNU_SOURCE /* asprintf */
#include "experiments/report/rp_sweep.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/dg_file.h"
#include "experiments/report/rp_page.h"
#include "experiments/sweep_file.h"
#include "experiments/sweep_store.h"

#define MAXP SW_MAX_PARAMS

typedef struct trial {
    int id, config, rep, rung, epochs;
    char state[12];
    char *reason;
    double seconds, lease_until;
    int e0, ne; /* its rows in the epoch arrays */
} trial;

typedef struct config {
    int id, n_trials, rung; /* rung: the highest all replicates reached (-1: none) */
    int epochs;
    double mean, sd, seconds;
    const char *state, *reason;
    cJSON *params;
    double pv[MAXP]; /* parameter values: numbers, or category indices */
} config;

typedef struct param {
    char name[64];
    int words, log;
    int n_cat;
    char **cat; /* words, sorted */
} param;

typedef struct sweep {
    char db[1100];
    sqlite3 *h;
    char schema[32], sweep_file[1024], hash[64];
    int have_file, maximize; /* the sweep file loaded with the same hash */
    char strategy[16], file_note[1200];
    int n_rungs, rung_epoch[SW_MAX_RUNGS], eta;
    int nc, nt, ne, np;
    config *c;
    trial *t;
    double *ep_epoch, *ep_val; /* ne: epoch rows by trial, epoch */
    int *ep_trial;
    param p[MAXP];
    int counts[5]; /* waiting, running, complete, pruned, failed */
    int live;
} sweep;

static const char *const kStates[5] = {"waiting", "running", "complete", "pruned", "failed"};

void rp_sweep_db_path(const char *source, char *out, size_t n) {
    struct stat st;
    if (stat(source, &st) == 0 && S_ISDIR(st.st_mode)) snprintf(out, n, "%s/sweep.db", source);
    else snprintf(out, n, "%s", source);
}

static int sql_fail(sweep *s, dg_err *err, const char *what) {
    int code = sqlite3_errcode(s->h);
    if (code == SQLITE_NOTADB || code == SQLITE_CORRUPT || strstr(sqlite3_errmsg(s->h), "no such table"))
        return dg_fail(err, "%s: not a sweep database (%s: %s)", s->db, what, sqlite3_errmsg(s->h));
    return dg_fail(err, "%s: %s: %s", s->db, what, sqlite3_errmsg(s->h));
}

static double now_wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int db_open(sweep *s, const char *source, dg_err *err) {
    rp_sweep_db_path(source, s->db, sizeof s->db);
    if (!dg_path_exists(s->db)) return dg_fail(err, "%s: missing (no sweep database: has digits-sweep run there?)", s->db);
    /* read-only: the report never writes the database (nor creates it) */
    if (sqlite3_open_v2(s->db, &s->h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        return dg_fail(err, "%s: cannot open: %s", s->db, s->h ? sqlite3_errmsg(s->h) : "out of memory");
    sqlite3_busy_timeout(s->h, 10000);
    return 0;
}

static int meta_get(sweep *s, const char *key, char *out, size_t n, dg_err *err) {
    sqlite3_stmt *q;
    out[0] = 0;
    if (sqlite3_prepare_v2(s->h, "SELECT value FROM meta WHERE key = ?", -1, &q, NULL) != SQLITE_OK)
        return sql_fail(s, err, "meta");
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW && sqlite3_column_text(q, 0)) snprintf(out, n, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return sql_fail(s, err, "meta");
    return 0;
}

/* The schema version must be this build's: another version's tables may mean other things. */
static int check_version(sweep *s, dg_err *err) {
    if (meta_get(s, "schema_version", s->schema, sizeof s->schema, err) != 0) return -1;
    if (!s->schema[0]) return dg_fail(err, "%s: not a sweep database (no schema_version in its meta table)", s->db);
    char *end;
    long v = strtol(s->schema, &end, 10);
    if (*end || v != SW_SCHEMA_VERSION)
        return dg_fail(err,
                       "%s: a sweep database of schema version %s; this digits-report reads version %d (written by "
                       "another digits-sweep version)",
                       s->db, s->schema, SW_SCHEMA_VERSION);
    return 0;
}

static int query_live(sweep *s, dg_err *err) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->h, "SELECT count(*) FROM trials WHERE state = 'running' AND lease_until > ?", -1, &q,
                           NULL) != SQLITE_OK)
        return sql_fail(s, err, "trials");
    sqlite3_bind_double(q, 1, now_wall());
    int rc = sqlite3_step(q);
    s->live = rc == SQLITE_ROW && sqlite3_column_int(q, 0) > 0;
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW) return sql_fail(s, err, "trials");
    return 0;
}

int rp_sweep_live(const char *source, int *live, dg_err *err) {
    sweep s;
    memset(&s, 0, sizeof s);
    int rc = db_open(&s, source, err);
    if (rc == 0) rc = check_version(&s, err);
    if (rc == 0) rc = query_live(&s, err);
    *live = s.live;
    sqlite3_close(s.h);
    return rc;
}

/* ---- reading ---- */

static int count_rows(sweep *s, const char *table, int *n, dg_err *err) {
    char sql[80];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->h, sql, -1, &q, NULL) != SQLITE_OK) return sql_fail(s, err, table);
    int rc = sqlite3_step(q);
    *n = rc == SQLITE_ROW ? sqlite3_column_int(q, 0) : 0;
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW) return sql_fail(s, err, table);
    return 0;
}

static int read_tables(sweep *s, dg_err *err) {
    if (count_rows(s, "configs", &s->nc, err) != 0 || count_rows(s, "trials", &s->nt, err) != 0 ||
        count_rows(s, "epochs", &s->ne, err) != 0)
        return -1;
    s->c = calloc((size_t)s->nc + 1, sizeof *s->c);
    s->t = calloc((size_t)s->nt + 1, sizeof *s->t);
    s->ep_epoch = malloc(((size_t)s->ne + 1) * 2 * sizeof(double));
    s->ep_trial = malloc(((size_t)s->ne + 1) * sizeof(int));
    if (!s->c || !s->t || !s->ep_epoch || !s->ep_trial) return dg_fail(err, "out of memory");
    s->ep_val = s->ep_epoch + s->ne + 1;
    sqlite3_stmt *q;
    int rc, i = 0;
    if (sqlite3_prepare_v2(s->h, "SELECT id, params FROM configs ORDER BY id", -1, &q, NULL) != SQLITE_OK)
        return sql_fail(s, err, "configs");
    while ((rc = sqlite3_step(q)) == SQLITE_ROW && i < s->nc) {
        config *c = &s->c[i++];
        c->id = sqlite3_column_int(q, 0);
        const char *js = (const char *)sqlite3_column_text(q, 1);
        c->params = js ? cJSON_Parse(js) : NULL;
        if (!cJSON_IsObject(c->params)) {
            sqlite3_finalize(q);
            return dg_fail(err, "%s: configuration %d: parameters are not a JSON object", s->db, c->id);
        }
        c->rung = -1;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return sql_fail(s, err, "configs");
    s->nc = i;
    i = 0;
    if (sqlite3_prepare_v2(s->h,
                           "SELECT id, config, replicate, state, rung, epochs, reason, seconds, lease_until FROM trials "
                           "ORDER BY id",
                           -1, &q, NULL) != SQLITE_OK)
        return sql_fail(s, err, "trials");
    while ((rc = sqlite3_step(q)) == SQLITE_ROW && i < s->nt) {
        trial *t = &s->t[i++];
        t->id = sqlite3_column_int(q, 0);
        t->config = sqlite3_column_int(q, 1);
        t->rep = sqlite3_column_int(q, 2);
        const char *st = (const char *)sqlite3_column_text(q, 3);
        snprintf(t->state, sizeof t->state, "%s", st ? st : "?");
        t->rung = sqlite3_column_int(q, 4);
        t->epochs = sqlite3_column_int(q, 5);
        const char *r = (const char *)sqlite3_column_text(q, 6);
        t->reason = r ? strdup(r) : NULL;
        t->seconds = sqlite3_column_double(q, 7);
        t->lease_until = sqlite3_column_type(q, 8) == SQLITE_NULL ? 0 : sqlite3_column_double(q, 8);
        t->e0 = -1;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return sql_fail(s, err, "trials");
    s->nt = i;
    /* per-epoch metric */
    const char *col = s->maximize ? "val_acc" : "val_loss";
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT trial, epoch, %s FROM epochs ORDER BY trial, epoch", col);
    if (sqlite3_prepare_v2(s->h, sql, -1, &q, NULL) != SQLITE_OK) return sql_fail(s, err, "epochs");
    i = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW && i < s->ne) {
        s->ep_trial[i] = sqlite3_column_int(q, 0);
        s->ep_epoch[i] = sqlite3_column_int(q, 1);
        s->ep_val[i] = sqlite3_column_type(q, 2) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 2);
        i++;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return sql_fail(s, err, "epochs");
    s->ne = i;
    /* trials are sorted by id and epoch rows by trial: one merge */
    for (int a = 0, k = 0; a < s->nt; a++) {
        while (k < s->ne && s->ep_trial[k] < s->t[a].id) k++;
        if (k < s->ne && s->ep_trial[k] == s->t[a].id) {
            s->t[a].e0 = k;
            while (k < s->ne && s->ep_trial[k] == s->t[a].id) k++, s->t[a].ne++;
        }
    }
    /* rung epochs (as reached; the sweep file's when it is known) */
    if (!s->have_file) {
        if (sqlite3_prepare_v2(s->h, "SELECT rung, max(epoch) FROM rungs GROUP BY rung ORDER BY rung", -1, &q,
                               NULL) != SQLITE_OK)
            return sql_fail(s, err, "rungs");
        s->n_rungs = 0;
        while ((rc = sqlite3_step(q)) == SQLITE_ROW && s->n_rungs < SW_MAX_RUNGS)
            s->rung_epoch[s->n_rungs++] = sqlite3_column_int(q, 1);
        sqlite3_finalize(q);
        if (rc != SQLITE_DONE && rc != SQLITE_ROW) return sql_fail(s, err, "rungs");
    }
    return 0;
}

/* Mean and SD (n - 1) of each configuration at the highest rung where every replicate has a result. */
static int read_rungs(sweep *s, dg_err *err) {
    int nr = s->n_rungs > 0 ? s->n_rungs : 1;
    /* metric of trial index a at rung k: val[a * nr + k] (NaN: none) */
    double *val = malloc(((size_t)s->nt * (size_t)nr + 1) * sizeof *val);
    if (!val) return dg_fail(err, "out of memory");
    for (size_t i = 0; i < (size_t)s->nt * (size_t)nr; i++) val[i] = NAN;
    sqlite3_stmt *q;
    int rc;
    const char *sql = s->maximize ? "SELECT trial, rung, val_acc FROM rungs" : "SELECT trial, rung, val_loss FROM rungs";
    if (sqlite3_prepare_v2(s->h, sql, -1, &q, NULL) != SQLITE_OK) {
        free(val);
        return sql_fail(s, err, "rungs");
    }
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int id = sqlite3_column_int(q, 0), k = sqlite3_column_int(q, 1);
        if (k < 0 || k >= nr || sqlite3_column_type(q, 2) == SQLITE_NULL) continue;
        /* trials are sorted by id: binary search */
        int lo = 0, hi = s->nt - 1;
        while (lo <= hi) {
            int mid = (lo + hi) / 2;
            if (s->t[mid].id == id) {
                val[(size_t)mid * (size_t)nr + (size_t)k] = sqlite3_column_double(q, 2);
                break;
            }
            if (s->t[mid].id < id) lo = mid + 1;
            else hi = mid - 1;
        }
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        free(val);
        return sql_fail(s, err, "rungs");
    }
    for (int i = 0; i < s->nc; i++) {
        config *c = &s->c[i];
        int any[5] = {0};
        c->n_trials = 0;
        for (int a = 0; a < s->nt; a++) {
            trial *t = &s->t[a];
            if (t->config != c->id) continue;
            c->n_trials++;
            for (int k = 0; k < 5; k++) any[k] |= strcmp(t->state, kStates[k]) == 0;
            if (t->epochs > c->epochs) c->epochs = t->epochs;
            c->seconds += t->seconds;
            if (strcmp(t->state, "failed") == 0 && !c->reason) c->reason = t->reason ? t->reason : "";
        }
        c->state = any[4] ? "failed" : any[1] ? "running" : any[2] && !any[0] && !any[3] ? "complete"
                 : any[3] ? "pruned" : "waiting";
        for (int k = nr - 1; k >= 0 && c->rung < 0 && c->n_trials > 0; k--) {
            double sum = 0, sq = 0;
            int m = 0, all = 1;
            for (int a = 0; a < s->nt && all; a++) {
                if (s->t[a].config != c->id) continue;
                double v = val[(size_t)a * (size_t)nr + (size_t)k];
                if (!isfinite(v)) all = 0;
                else sum += v, m++;
            }
            if (!all || m == 0) continue;
            c->rung = k;
            c->mean = sum / m;
            for (int a = 0; a < s->nt; a++)
                if (s->t[a].config == c->id) {
                    double d = val[(size_t)a * (size_t)nr + (size_t)k] - c->mean;
                    sq += d * d;
                }
            c->sd = m > 1 ? sqrt(sq / (m - 1)) : 0;
        }
    }
    free(val);
    for (int a = 0; a < s->nt; a++)
        for (int k = 0; k < 5; k++) s->counts[k] += strcmp(s->t[a].state, kStates[k]) == 0;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The parameters: the sweep file's order when it is known, else the first configuration's keys then any others;
 * a parameter with any word value is categorical (its values as words, sorted). */
static int read_params(sweep *s, const sw_sweep *sf, dg_err *err) {
    s->np = 0;
    if (sf) {
        for (int j = 0; j < sf->n_params && s->np < MAXP; j++) {
            param *p = &s->p[s->np++];
            snprintf(p->name, sizeof p->name, "%s", sf->params[j].name);
            p->log = sf->params[j].dist == SW_LOG_UNIFORM;
        }
    }
    for (int i = 0; i < s->nc; i++) {
        const cJSON *it;
        cJSON_ArrayForEach(it, s->c[i].params) {
            int found = 0;
            for (int j = 0; j < s->np && !found; j++) found = strcmp(s->p[j].name, it->string) == 0;
            if (!found && s->np < MAXP) snprintf(s->p[s->np++].name, sizeof s->p[0].name, "%s", it->string);
        }
    }
    for (int j = 0; j < s->np; j++) {
        param *p = &s->p[j];
        for (int i = 0; i < s->nc; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(s->c[i].params, p->name);
            if (v && !cJSON_IsNumber(v)) p->words = 1;
        }
        if (!p->words) {
            for (int i = 0; i < s->nc; i++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(s->c[i].params, p->name);
                s->c[i].pv[j] = v ? v->valuedouble : NAN;
            }
            continue;
        }
        p->log = 0;
        p->cat = calloc((size_t)s->nc + 1, sizeof *p->cat);
        if (!p->cat) return dg_fail(err, "out of memory");
        for (int i = 0; i < s->nc; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(s->c[i].params, p->name);
            char buf[96];
            if (!v) continue;
            if (cJSON_IsString(v)) snprintf(buf, sizeof buf, "%s", v->valuestring);
            else if (cJSON_IsNumber(v)) snprintf(buf, sizeof buf, "%g", v->valuedouble);
            else snprintf(buf, sizeof buf, "?");
            int found = 0;
            for (int k = 0; k < p->n_cat && !found; k++) found = strcmp(p->cat[k], buf) == 0;
            if (!found && !(p->cat[p->n_cat++] = strdup(buf))) return dg_fail(err, "out of memory");
        }
        qsort(p->cat, (size_t)p->n_cat, sizeof *p->cat, cmp_str);
        for (int i = 0; i < s->nc; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(s->c[i].params, p->name);
            char buf[96];
            s->c[i].pv[j] = NAN;
            if (!v) continue;
            if (cJSON_IsString(v)) snprintf(buf, sizeof buf, "%s", v->valuestring);
            else if (cJSON_IsNumber(v)) snprintf(buf, sizeof buf, "%g", v->valuedouble);
            else snprintf(buf, sizeof buf, "?");
            for (int k = 0; k < p->n_cat; k++)
                if (strcmp(p->cat[k], buf) == 0) s->c[i].pv[j] = k;
        }
    }
    return 0;
}

/* The sweep file, when it still is the one the database was made from. */
static void load_sweep_file(sweep *s, sw_sweep *sf, int *loaded) {
    *loaded = 0;
    s->maximize = 1;
    snprintf(s->strategy, sizeof s->strategy, "?");
    if (meta_get(s, "sweep_file", s->sweep_file, sizeof s->sweep_file, &(dg_err){{0}}) != 0 || !s->sweep_file[0]) {
        snprintf(s->file_note, sizeof s->file_note, "the database names no sweep file");
        return;
    }
    dg_err e = {{0}};
    if (!dg_path_exists(s->sweep_file)) {
        snprintf(s->file_note, sizeof s->file_note, "sweep file %.1000s not found from here", s->sweep_file);
        return;
    }
    if (sw_sweep_load(sf, s->sweep_file, &e) != 0) {
        snprintf(s->file_note, sizeof s->file_note, "sweep file: %.1000s", e.msg);
        return;
    }
    char h[32];
    snprintf(h, sizeof h, "%016" PRIx64, sf->hash);
    if (strcmp(h, s->hash) != 0) {
        snprintf(s->file_note, sizeof s->file_note, "sweep file %.1000s has changed since (hash %s, database %s)",
                 s->sweep_file, h, s->hash);
        sw_sweep_free(sf);
        return;
    }
    *loaded = 1;
    s->have_file = 1;
    s->maximize = sf->maximize;
    snprintf(s->strategy, sizeof s->strategy, "%s",
             sf->strategy == SW_ASHA ? "asha" : sf->strategy == SW_RANDOM ? "random" : "grid");
    s->n_rungs = sf->n_rungs;
    for (int k = 0; k < sf->n_rungs; k++) s->rung_epoch[k] = sf->rungs[k];
    s->eta = sf->eta;
}

static void sweep_free(sweep *s) {
    for (int i = 0; s->c && i < s->nc; i++) cJSON_Delete(s->c[i].params);
    for (int a = 0; s->t && a < s->nt; a++) free(s->t[a].reason);
    for (int j = 0; j < s->np; j++) {
        for (int k = 0; s->p[j].cat && k < s->p[j].n_cat; k++) free(s->p[j].cat[k]);
        free(s->p[j].cat);
    }
    free(s->c);
    free(s->t);
    free(s->ep_epoch);
    free(s->ep_trial);
    if (s->h) sqlite3_close(s->h);
}

/* ---- the page ---- */

static int maximize_cmp; /* (qsort's context) */

static int cmp_config(const void *a, const void *b) {
    const config *x = *(config *const *)a, *y = *(config *const *)b;
    if (x->rung != y->rung) return x->rung > y->rung ? -1 : 1;
    if (x->rung >= 0 && x->mean != y->mean) return (x->mean > y->mean) == maximize_cmp ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static const char *state_color(const char *st) {
    return strcmp(st, "complete") == 0 ? "#1f77b4"
         : strcmp(st, "pruned") == 0   ? "#9a9a9a"
         : strcmp(st, "failed") == 0   ? "#d62728"
         : strcmp(st, "running") == 0  ? "#2ca02c"
                                       : "#bcbd22";
}

/* Colour of a configuration by the rung its result is at: the top rung dark blue, lower ones lighter. */
static const char *rung_color(const sweep *s, int rung) {
    static const char *const ramp[4] = {"#c6dbef", "#6baed6", "#2171b5", "#08306b"};
    int nr = s->n_rungs > 0 ? s->n_rungs : 1;
    if (rung >= nr - 1) return ramp[3];
    int k = 3 - (nr - 1 - rung);
    return ramp[k < 0 ? 0 : k];
}

static void param_text(const sweep *s, const config *c, int j, char *buf, size_t n) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(c->params, s->p[j].name);
    if (!v) snprintf(buf, n, "-");
    else if (cJSON_IsString(v)) snprintf(buf, n, "%s", v->valuestring);
    else if (cJSON_IsNumber(v)) snprintf(buf, n, "%.6g", v->valuedouble);
    else snprintf(buf, n, "?");
}

static void leaderboard(dg_text *t, const sweep *s, config *const *rank, const char *metric) {
    rp_section(t, "leaderboard", "Leaderboard");
    dg_text_printf(t, "<p class=\"note\">Ranked by the highest rung every replicate reached, then %s (%s is better); "
                      "the metric is the mean &plusmn; SD over the replicates at that rung.</p>\n",
                   metric, s->maximize ? "higher" : "lower");
    /* a long board scrolls in its own box, so the charts stay near the top */
    dg_text_printf(t, "<div style=\"max-height:560px;overflow-y:auto;display:inline-block\">\n"
                      "<table class=\"leaderboard\" style=\"white-space:nowrap\">\n<tr><th>rank</th><th>config</th>");
    for (int j = 0; j < s->np; j++) {
        dg_text_printf(t, "<th>");
        dg_text_escape(t, s->p[j].name);
        dg_text_printf(t, "</th>");
    }
    dg_text_printf(t, "<th>%s mean &plusmn; SD</th><th>replicates</th><th>rung (epoch)</th><th>epochs</th>"
                      "<th>time</th><th>state</th></tr>\n", metric);
    char buf[128];
    for (int i = 0; i < s->nc; i++) {
        const config *c = rank[i];
        dg_text_printf(t, "<tr><td class=\"num\">%d</td><td class=\"num\">%d</td>", i + 1, c->id);
        for (int j = 0; j < s->np; j++) {
            param_text(s, c, j, buf, sizeof buf);
            dg_text_printf(t, "<td%s>", s->p[j].words ? "" : " class=\"num\"");
            dg_text_escape(t, buf);
            dg_text_printf(t, "</td>");
        }
        if (c->rung >= 0)
            dg_text_printf(t, "<td class=\"num\">%.4f &plusmn; %.4f</td>", c->mean, c->sd);
        else
            dg_text_printf(t, "<td class=\"num\">-</td>");
        dg_text_printf(t, "<td class=\"num\">%d</td>", c->n_trials);
        if (c->rung >= 0 && c->rung < s->n_rungs)
            dg_text_printf(t, "<td class=\"num\">%d (%d)</td>", c->rung, s->rung_epoch[c->rung]);
        else if (c->rung >= 0)
            dg_text_printf(t, "<td class=\"num\">%d</td>", c->rung);
        else
            dg_text_printf(t, "<td class=\"num\">-</td>");
        dg_text_printf(t, "<td class=\"num\">%d</td><td class=\"num\">%.1f s</td><td class=\"state-%s%s\">%s", c->epochs,
                       c->seconds, c->state, strcmp(c->state, "failed") == 0 ? " bad" : "", c->state);
        if (c->reason) {
            dg_text_printf(t, ": ");
            dg_text_escape(t, c->reason);
        }
        dg_text_printf(t, "</td></tr>\n");
    }
    dg_text_printf(t, "</table></div>\n");
}

static int trial_curves(dg_text *t, const sweep *s, const char *metric, dg_err *err) {
    rp_section(t, "curves", "Metric per trial over epochs");
    dg_svg_series *ser = calloc((size_t)s->nt + 1, sizeof *ser);
    unsigned char *end = calloc((size_t)s->nt + 1, 1);
    char (*names)[32] = calloc((size_t)s->nt + 1, sizeof *names);
    if (!ser || !end || !names) {
        free(ser), free(end), free(names);
        return dg_fail(err, "out of memory");
    }
    int ns = 0;
    for (int a = 0; a < s->nt; a++) {
        const trial *tr = &s->t[a];
        if (tr->ne == 0) continue;
        snprintf(names[ns], sizeof names[ns], "c%04d r%d", tr->config, tr->rep);
        ser[ns] = (dg_svg_series){names[ns], s->ep_epoch + tr->e0, s->ep_val + tr->e0, tr->ne,
                                  state_color(tr->state), 0};
        end[ns] = strcmp(tr->state, "pruned") == 0 || strcmp(tr->state, "failed") == 0;
        ns++;
    }
    double marks[SW_MAX_RUNGS];
    for (int k = 0; k < s->n_rungs; k++) marks[k] = s->rung_epoch[k];
    dg_svg_line_opts lo = {1, marks, s->n_rungs, "rung at", end, 1.2, 0.7};
    dg_svg_axes ax = {"Validation metric of every trial", "epoch", metric, 1000, 420, 0, 0, 0};
    dg_text_printf(t, "<div class=\"charts\">\n");
    dg_svg_line_chart_ex(t, &ax, ser, ns, &lo);
    dg_text_printf(t, "</div>\n<p class=\"note\">%d trials with epochs; colour by state: "
                      "<span style=\"color:#1f77b4\">complete</span>, <span style=\"color:#9a9a9a\">pruned</span>, "
                      "<span style=\"color:#d62728\">failed</span>, <span style=\"color:#2ca02c\">running</span>; a "
                      "circle marks where a pruned or failed trial stopped; dashed red lines are the rungs.</p>\n",
                   ns);
    free(ser);
    free(end);
    free(names);
    return 0;
}

static int param_charts(dg_text *t, const sweep *s, config *const *rank, int nres, const char *metric, dg_err *err) {
    rp_section(t, "params", "Metric against each parameter");
    if (s->np == 0) {
        dg_text_printf(t, "<p class=\"note\">No swept parameters.</p>\n");
        return 0;
    }
    double *x = malloc(((size_t)nres + 1) * 2 * sizeof *x);
    const char **colors = calloc((size_t)nres + 1, sizeof *colors);
    char **tips = calloc((size_t)nres + 1, sizeof *tips);
    if (!x || !colors || !tips) {
        free(x), free(colors), free(tips);
        return dg_fail(err, "out of memory");
    }
    double *y = x + nres + 1;
    for (int i = 0; i < nres; i++) {
        y[i] = rank[i]->mean;
        colors[i] = rung_color(s, rank[i]->rung);
        if (asprintf(&tips[i], "c%04d rung %d: %.4f", rank[i]->id, rank[i]->rung, rank[i]->mean) < 0) tips[i] = NULL;
    }
    dg_text_printf(t, "<p class=\"note\">One point per configuration with a result, at the highest rung all its "
                      "replicates reached (darker: a higher rung).</p>\n<div class=\"charts\">\n");
    for (int j = 0; j < s->np; j++) {
        for (int i = 0; i < nres; i++) x[i] = rank[i]->pv[j];
        dg_svg_points p = {x, y, NULL, nres, s->p[j].log, (const char *const *)s->p[j].cat, s->p[j].n_cat,
                           (const char *const *)tips, colors};
        char title[128];
        snprintf(title, sizeof title, "%s against %s%s", metric, s->p[j].name, s->p[j].log ? " (log)" : "");
        dg_svg_axes ax = {title, s->p[j].name, metric, 420, 280, 0, 0, 0};
        dg_svg_scatter(t, &ax, &p);
    }
    dg_text_printf(t, "</div>\n");
    for (int i = 0; i < nres; i++) free(tips[i]);
    free(x);
    free(colors);
    free(tips);
    return 0;
}

static int parallel(dg_text *t, const sweep *s, config *const *rank, int nres, const char *metric, dg_err *err) {
    rp_section(t, "parallel", "Parallel coordinates");
    int na = s->np + 1;
    double *v = malloc(((size_t)nres * (size_t)na + 1) * sizeof *v);
    double *col = malloc(((size_t)nres + 1) * sizeof *col);
    char **tips = calloc((size_t)nres + 1, sizeof *tips);
    dg_svg_pc_axis axes[MAXP + 1];
    if (!v || !col || !tips) {
        free(v), free(col), free(tips);
        return dg_fail(err, "out of memory");
    }
    for (int j = 0; j < s->np; j++)
        axes[j] = (dg_svg_pc_axis){s->p[j].name, s->p[j].log, (const char *const *)s->p[j].cat, s->p[j].n_cat};
    axes[s->np] = (dg_svg_pc_axis){metric, 0, NULL, 0};
    for (int i = 0; i < nres; i++) {
        for (int j = 0; j < s->np; j++) v[(size_t)i * (size_t)na + (size_t)j] = rank[i]->pv[j];
        v[(size_t)i * (size_t)na + (size_t)s->np] = rank[i]->mean;
        col[i] = s->maximize ? rank[i]->mean : -rank[i]->mean;
        if (asprintf(&tips[i], "c%04d: %.4f", rank[i]->id, rank[i]->mean) < 0) tips[i] = NULL;
    }
    dg_svg_axes ax = {"Configurations across the parameters (colour: the metric, dark blue best)", NULL, NULL,
                      na > 4 ? 1000 : 760, 380, 0, 0, 0};
    dg_text_printf(t, "<div class=\"charts\">\n");
    dg_svg_parallel(t, &ax, axes, na, v, nres, col, (const char *const *)tips);
    dg_text_printf(t, "</div>\n");
    for (int i = 0; i < nres; i++) free(tips[i]);
    free(v);
    free(col);
    free(tips);
    return 0;
}

static int mean_sd(dg_text *t, const sweep *s, config *const *rank, int nres, const char *metric, dg_err *err) {
    rp_section(t, "replicates", "Mean and SD per configuration");
    double *x = malloc(((size_t)nres + 1) * 3 * sizeof *x);
    const char **colors = calloc((size_t)nres + 1, sizeof *colors);
    char **tips = calloc((size_t)nres + 1, sizeof *tips);
    if (!x || !colors || !tips) {
        free(x), free(colors), free(tips);
        return dg_fail(err, "out of memory");
    }
    double *y = x + nres + 1, *e = y + nres + 1;
    for (int i = 0; i < nres; i++) {
        x[i] = i + 1;
        y[i] = rank[i]->mean;
        e[i] = rank[i]->sd;
        colors[i] = rung_color(s, rank[i]->rung);
        if (asprintf(&tips[i], "rank %d, c%04d: %.4f +- %.4f over %d", i + 1, rank[i]->id, rank[i]->mean, rank[i]->sd,
                     rank[i]->n_trials) < 0)
            tips[i] = NULL;
    }
    dg_svg_points p = {x, y, e, nres, 0, NULL, 0, (const char *const *)tips, colors};
    dg_svg_axes ax = {"Mean ± SD over the replicates, by rank", "rank", metric, 1000, 320, 0, 0, 0};
    dg_text_printf(t, "<div class=\"charts\">\n");
    dg_svg_scatter(t, &ax, &p);
    dg_text_printf(t, "</div>\n");
    for (int i = 0; i < nres; i++) free(tips[i]);
    free(x);
    free(colors);
    free(tips);
    return 0;
}

int rp_sweep_report(dg_text *t, const rp_sweep_opts *o, int *live, dg_err *err) {
    sweep s;
    memset(&s, 0, sizeof s);
    sw_sweep sf;
    int loaded = 0, rc = -1;
    config **rank = NULL;
    if (live) *live = 0;
    if (db_open(&s, o->source, err) != 0) goto done;
    /* one read transaction: the coordinator's commits land wholly before or after it */
    if (sqlite3_exec(s.h, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        sql_fail(&s, err, "begin");
        goto done;
    }
    if (check_version(&s, err) != 0 || meta_get(&s, "sweep_hash", s.hash, sizeof s.hash, err) != 0) goto done;
    load_sweep_file(&s, &sf, &loaded);
    if (read_tables(&s, err) != 0 || read_rungs(&s, err) != 0 || read_params(&s, loaded ? &sf : NULL, err) != 0 ||
        query_live(&s, err) != 0)
        goto done;
    sqlite3_exec(s.h, "COMMIT", NULL, NULL, NULL);
    rank = malloc(((size_t)s.nc + 1) * sizeof *rank);
    if (!rank) {
        dg_fail(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < s.nc; i++) rank[i] = &s.c[i];
    maximize_cmp = s.maximize;
    qsort(rank, (size_t)s.nc, sizeof *rank, cmp_config);
    int nres = 0;
    while (nres < s.nc && rank[nres]->rung >= 0) nres++;
    const char *metric = s.maximize ? "val_acc" : "val_loss";

    char title[1200], sub[600];
    snprintf(title, sizeof title, "Sweep %s", s.sweep_file[0] ? s.sweep_file : s.db);
    snprintf(sub, sizeof sub,
             "%s: %d configurations, %d trials (%d complete, %d pruned, %d failed, %d running, %d waiting); %s%s",
             s.live ? "running" : "not running", s.nc, s.nt, s.counts[2], s.counts[3], s.counts[4], s.counts[1],
             s.counts[0], s.live && o->refresh > 0 ? "this page reloads itself; " : "", metric);
    rp_page_begin(t, title, sub, s.live ? o->refresh : 0);

    rp_section(t, "about", "Sweep");
    char rungs[256] = "", eta[16] = "-", nres_s[32];
    for (int k = 0; k < s.n_rungs; k++) {
        size_t l = strlen(rungs);
        snprintf(rungs + l, sizeof rungs - l, "%s%d", k ? ", " : "", s.rung_epoch[k]);
    }
    if (s.eta > 0) snprintf(eta, sizeof eta, "%d", s.eta);
    snprintf(nres_s, sizeof nres_s, "%d of %d", nres, s.nc);
    const char *keys[] = {"database", "sweep file", "sweep hash", "schema version", "strategy", "rungs (epochs)",
                          "eta", "metric", "configurations with a result"};
    const char *vals[] = {s.db, s.sweep_file[0] ? s.sweep_file : "-", s.hash, s.schema, s.strategy,
                          rungs[0] ? rungs : "-", eta, s.maximize ? "val_acc (higher is better)" : "val_loss (lower is better)",
                          nres_s};
    rp_kv_table(t, keys, vals, 9);
    if (!s.have_file) {
        dg_text_printf(t, "<p class=\"note bad\">");
        dg_text_escape(t, s.file_note);
        dg_text_printf(t, ": the metric is taken to be val_acc, parameter axes are linear, and the rungs are the "
                          "epochs reached.</p>\n");
    }
    leaderboard(t, &s, rank, metric);
    if (trial_curves(t, &s, metric, err) != 0 || param_charts(t, &s, rank, nres, metric, err) != 0 ||
        parallel(t, &s, rank, nres, metric, err) != 0 || mean_sd(t, &s, rank, nres, metric, err) != 0)
        goto done;
    rp_page_end(t);
    if (t->oom) {
        dg_fail(err, "out of memory building the page");
        goto done;
    }
    if (live) *live = s.live;
    rc = 0;
done:
    free(rank);
    if (loaded) sw_sweep_free(&sf);
    sweep_free(&s);
    return rc;
}
