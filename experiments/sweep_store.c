/* experiments/sweep_store: the sweep's SQLite database (see sweep_store.h). */
#include "experiments/sweep_store.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SW_STMTS 24
#define SW_COMMIT_EVERY 1.0 /* seconds: a batch's writes wait at most this long for their commit */

struct sw_store {
    sqlite3 *db;
    char path[512];
    char host[256];
    int batch;      /* between sw_store_begin and sw_store_commit */
    int in_tx;      /* a batch's transaction is open (begun by its first write) */
    double tx_t0;   /* when it was begun (CLOCK_MONOTONIC) */
    struct {        /* prepared statements, by the address of their SQL text (a literal) */
        const char *sql;
        sqlite3_stmt *s;
    } stmt[SW_STMTS];
};

static double mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int db_fail(sw_store *st, dg_err *err, const char *what) {
    return dg_fail(err, "%s: %s: %s", st->path, what, sqlite3_errmsg(st->db));
}

static int exec(sw_store *st, const char *sql, dg_err *err) {
    char *msg = NULL;
    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        dg_fail(err, "%s: %s", st->path, msg ? msg : sqlite3_errmsg(st->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* Inside a batch, the first write begins its transaction. */
static int tx(sw_store *st, dg_err *err) {
    if (!st->batch || st->in_tx) return 0;
    if (exec(st, "BEGIN IMMEDIATE", err) != 0) return -1;
    st->in_tx = 1;
    st->tx_t0 = mono_now();
    return 0;
}

static int tx_commit(sw_store *st, dg_err *err) {
    if (!st->in_tx) return 0;
    st->in_tx = 0;
    if (exec(st, "COMMIT", err) == 0) return 0;
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

/* A write of several statements: its own transaction outside a batch, part of the batch's inside one. (Not a
 * savepoint: its statement journal cost a heap grow and trim per write.) */
static int part_begin(sw_store *st, dg_err *err) {
    return st->batch ? tx(st, err) : exec(st, "BEGIN IMMEDIATE", err);
}
static int part_end(sw_store *st, dg_err *err) { return st->batch ? 0 : exec(st, "COMMIT", err); }
/* A failed write: its transaction is rolled back, inside a batch the whole batch's (the caller stops; what the
 * batch held is in the run directories). */
static int part_undo(sw_store *st) {
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    st->in_tx = 0;
    return -1;
}

/* Prepare, bind with a tiny format ('i' int64, 'd' double, 's' text or NULL), step to the end. */
static int run(sw_store *st, dg_err *err, const char *sql, const char *fmt, ...) {
    if (tx(st, err) != 0) return -1;
    /* the statements are few and run once or more per trial: prepared once (parsing the SQL cost more than
     * running it) */
    sqlite3_stmt *s = NULL;
    int k = 0;
    for (; k < SW_STMTS && st->stmt[k].sql; k++)
        if (st->stmt[k].sql == sql) {
            s = st->stmt[k].s;
            break;
        }
    if (!s) {
        if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK)
            return db_fail(st, err, "prepare");
        if (k < SW_STMTS) st->stmt[k].sql = sql, st->stmt[k].s = s;
    }
    va_list ap;
    va_start(ap, fmt);
    for (int i = 0; fmt[i]; i++) {
        if (fmt[i] == 'i') sqlite3_bind_int64(s, i + 1, va_arg(ap, int64_t));
        else if (fmt[i] == 'd') sqlite3_bind_double(s, i + 1, va_arg(ap, double));
        else {
            const char *t = va_arg(ap, const char *);
            if (t) sqlite3_bind_text(s, i + 1, t, -1, SQLITE_TRANSIENT);
            else sqlite3_bind_null(s, i + 1);
        }
    }
    va_end(ap);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) db_fail(st, err, "write");
    if (k < SW_STMTS) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    } else {
        sqlite3_finalize(s);
    }
    if (rc == SQLITE_DONE) return 0;
    if (st->in_tx) part_undo(st);
    return -1;
}

static const char *schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS configs(id INTEGER PRIMARY KEY, params TEXT NOT NULL, spec TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS trials(id INTEGER PRIMARY KEY, config INTEGER NOT NULL, replicate INTEGER NOT NULL,"
    " seed INTEGER NOT NULL, fold INTEGER NOT NULL, state TEXT NOT NULL CHECK(state IN"
    " ('waiting','running','complete','pruned','failed')), rung INTEGER NOT NULL DEFAULT -1,"
    " epochs INTEGER NOT NULL DEFAULT 0, reason TEXT, run_dir TEXT NOT NULL, host TEXT, pid INTEGER,"
    " started REAL, heartbeat REAL, lease_until REAL, finished REAL, seconds REAL NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS rungs(trial INTEGER NOT NULL, rung INTEGER NOT NULL, epoch INTEGER NOT NULL,"
    " val_acc REAL, val_loss REAL, PRIMARY KEY(trial, rung));"
    "CREATE TABLE IF NOT EXISTS epochs(trial INTEGER NOT NULL, epoch INTEGER NOT NULL, train_loss REAL,"
    " train_acc REAL, val_loss REAL, val_acc REAL, lr REAL, seconds REAL, PRIMARY KEY(trial, epoch));";

static int meta_get(sw_store *st, const char *key, char *out, size_t n, int *found, dg_err *err) {
    sqlite3_stmt *s;
    *found = 0;
    if (sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE key = ?", -1, &s, NULL) != SQLITE_OK)
        return db_fail(st, err, "read");
    sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        snprintf(out, n, "%s", (const char *)sqlite3_column_text(s, 0));
        *found = 1;
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_fail(st, err, "read");
    return 0;
}

static const char damaged_hint[] =
    " (a damaged sweep.db: move it away and start again; the results are read back from the run directories)";

/* A damaged file (torn, overwritten) fails here, at the start, rather than at whichever write meets the damage. */
static int check(sw_store *st, dg_err *err) {
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "PRAGMA quick_check(1)", -1, &s, NULL) != SQLITE_OK) return db_fail(st, err, "read");
    int rc = sqlite3_step(s);
    char what[256] = "";
    if (rc == SQLITE_ROW) snprintf(what, sizeof what, "%s", (const char *)sqlite3_column_text(s, 0));
    for (char *c = what; *c; c++) /* one line: "*** in database main ***\nPage 2: ..." */
        if (*c == '\n') *c = ' ';
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW) return db_fail(st, err, "read");
    if (strcmp(what, "ok") == 0) return 0;
    return dg_fail(err, "%s: %s%s", st->path, what, damaged_hint);
}

int sw_store_open(sw_store **out, const char *path, uint64_t hash, const char *sweep_file, int *recovered,
                  dg_err *err) {
    *out = NULL;
    sw_store *st = calloc(1, sizeof *st);
    if (!st) return dg_fail(err, "out of memory");
    snprintf(st->path, sizeof st->path, "%s", path);
    if (gethostname(st->host, sizeof st->host - 1) != 0) strcpy(st->host, "?");
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        dg_fail(err, "%s: cannot open: %s", path, st->db ? sqlite3_errmsg(st->db) : "out of memory");
        sw_store_close(st);
        return -1;
    }
    sqlite3_busy_timeout(st->db, 10000);
    char v[128], h[32];
    int found;
    snprintf(h, sizeof h, "%016" PRIx64, hash);
    if (exec(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", err) != 0 || check(st, err) != 0 ||
        exec(st, "BEGIN IMMEDIATE", err) != 0 || exec(st, schema, err) != 0)
        goto fail;
    if (meta_get(st, "schema_version", v, sizeof v, &found, err) != 0) goto fail;
    if (found) {
        long ver = strtol(v, NULL, 10);
        if (ver > SW_SCHEMA_VERSION) {
            dg_fail(err, "%s: written by a newer digits-sweep (schema version %ld; this one reads %d)", path, ver,
                    SW_SCHEMA_VERSION);
            goto fail;
        }
        if (meta_get(st, "sweep_hash", v, sizeof v, &found, err) != 0) goto fail;
        if (!found || strcmp(v, h) != 0) {
            char f[512] = "?";
            meta_get(st, "sweep_file", f, sizeof f, &found, err);
            dg_fail(err,
                    "%s belongs to another sweep (%s, hash %s; %s has hash %s): use another --dir, or the same "
                    "sweep file and base spec",
                    path, f, found ? v : "?", sweep_file, h);
            goto fail;
        }
    } else {
        char ver[16];
        snprintf(ver, sizeof ver, "%d", SW_SCHEMA_VERSION);
        if (run(st, err, "INSERT INTO meta VALUES('schema_version', ?), ('sweep_hash', ?), ('sweep_file', ?)", "sss",
                ver, h, sweep_file) != 0)
            goto fail;
    }
    if (run(st, err, "UPDATE trials SET state = 'waiting', pid = NULL, lease_until = NULL WHERE state = 'running'",
            "") != 0)
        goto fail;
    *recovered = sqlite3_changes(st->db);
    if (exec(st, "COMMIT", err) != 0) goto fail;
    *out = st;
    return 0;
fail:
    if (sqlite3_errcode(st->db) == SQLITE_NOTADB || sqlite3_errcode(st->db) == SQLITE_CORRUPT) {
        char m[sizeof err->msg];
        snprintf(m, sizeof m, "%s", err->msg);
        dg_fail(err, "%s%s", m, damaged_hint);
    }
    sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    sw_store_close(st);
    return -1;
}

void sw_store_close(sw_store *st) {
    if (!st) return;
    if (st->in_tx) { /* every write in it is whole; what a commit cannot keep, the run directories still hold */
        dg_err e;
        sw_store_commit(st, &e);
    }
    for (int k = 0; k < SW_STMTS && st->stmt[k].sql; k++) sqlite3_finalize(st->stmt[k].s);
    if (st->db) sqlite3_close(st->db);
    free(st);
}

void sw_store_begin(sw_store *st) { st->batch = 1; }

int sw_store_commit_due(sw_store *st, dg_err *err) {
    return st->in_tx && mono_now() - st->tx_t0 >= SW_COMMIT_EVERY ? tx_commit(st, err) : 0;
}

int sw_store_commit(sw_store *st, dg_err *err) {
    st->batch = 0;
    return tx_commit(st, err);
}

int sw_store_add_config(sw_store *st, int c, int n_reps, const char *params_json, const char *spec,
                        const uint64_t *seeds, const int *folds, const char *const *run_dirs, dg_err *err) {
    if (part_begin(st, err) != 0) return -1;
    if (run(st, err, "INSERT OR IGNORE INTO configs VALUES(?, ?, ?)", "iss", (int64_t)c, params_json, spec) != 0)
        return part_undo(st);
    for (int r = 0; r < n_reps; r++)
        if (run(st, err,
                "INSERT OR IGNORE INTO trials(id, config, replicate, seed, fold, state, run_dir) "
                "VALUES(?, ?, ?, ?, ?, 'waiting', ?)",
                "iiiiis", (int64_t)c * n_reps + r, (int64_t)c, (int64_t)r, (int64_t)seeds[r], (int64_t)folds[r],
                run_dirs[r]) != 0)
            return part_undo(st);
    return part_end(st, err) == 0 ? 0 : part_undo(st);
}

int sw_store_load(sw_store *st, int n_configs, int n_reps, int n_rungs, int maximize, double *val,
                  unsigned char *have, unsigned char *failed, dg_err *err) {
    size_t nt = (size_t)n_configs * (size_t)n_reps;
    memset(have, 0, nt * (size_t)n_rungs);
    memset(failed, 0, nt);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "SELECT trial, rung, val_acc, val_loss FROM rungs", -1, &s, NULL) != SQLITE_OK)
        return db_fail(st, err, "read");
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t t = sqlite3_column_int64(s, 0), k = sqlite3_column_int64(s, 1);
        if (t < 0 || (size_t)t >= nt || k < 0 || k >= n_rungs) continue;
        size_t i = (size_t)t * (size_t)n_rungs + (size_t)k;
        have[i] = 1;
        val[i] = sqlite3_column_double(s, maximize ? 2 : 3);
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) return db_fail(st, err, "read");
    if (sqlite3_prepare_v2(st->db, "SELECT id FROM trials WHERE state = 'failed'", -1, &s, NULL) != SQLITE_OK)
        return db_fail(st, err, "read");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t t = sqlite3_column_int64(s, 0);
        if (t >= 0 && (size_t)t < nt) failed[t] = 1;
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) return db_fail(st, err, "read");
    return 0;
}

int sw_store_start(sw_store *st, int trial, int rung, int pid, double now, dg_err *err) {
    return run(st, err,
               "UPDATE trials SET state = 'running', rung = ?, pid = ?, host = ?, started = coalesce(started, ?), "
               "heartbeat = ?, lease_until = ? WHERE id = ?",
               "iisdddi", (int64_t)rung, (int64_t)pid, st->host, now, now, now + 60, (int64_t)trial);
}

int sw_store_heartbeat(sw_store *st, double now, double lease, dg_err *err) {
    return run(st, err, "UPDATE trials SET heartbeat = ?, lease_until = ? WHERE state = 'running'", "dd", now,
               now + lease);
}

int sw_store_result(sw_store *st, int trial, int rung, int epoch, double val_acc, double val_loss, double seconds,
                    const char *metrics_jsonl, const char *state, double now, dg_err *err) {
    if (part_begin(st, err) != 0) return -1;
    if (run(st, err, "INSERT OR REPLACE INTO rungs VALUES(?, ?, ?, ?, ?)", "iiidd", (int64_t)trial, (int64_t)rung,
            (int64_t)epoch, val_acc, val_loss) != 0)
        goto fail;
    /* per-epoch metrics: one JSON object a line (nn/train.h) */
    if (metrics_jsonl) {
        const char *p = metrics_jsonl;
        while (*p) {
            const char *eol = strchr(p, '\n');
            size_t len = eol ? (size_t)(eol - p) : strlen(p);
            char *line = strndup(p, len);
            cJSON *j = line ? cJSON_Parse(line) : NULL;
            free(line);
            if (j) {
                double f[7];
                static const char *const keys[] = {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr",
                                                   "seconds"};
                for (int k = 0; k < 7; k++) {
                    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keys[k]);
                    f[k] = cJSON_IsNumber(v) ? v->valuedouble : 0;
                }
                cJSON_Delete(j);
                if (run(st, err, "INSERT OR REPLACE INTO epochs VALUES(?, ?, ?, ?, ?, ?, ?, ?)", "iidddddd",
                        (int64_t)trial, (int64_t)f[0], f[1], f[2], f[3], f[4], f[5], f[6]) != 0)
                    goto fail;
            }
            p = eol ? eol + 1 : p + len;
        }
    }
    if (run(st, err,
            "UPDATE trials SET state = ?, epochs = ?, seconds = ?, pid = NULL, lease_until = NULL, finished = ? "
            "WHERE id = ?",
            "sidd" "i", state, (int64_t)epoch, seconds, now, (int64_t)trial) != 0)
        goto fail;
    if (part_end(st, err) == 0) return 0;
fail:
    return part_undo(st);
}

int sw_store_fail(sw_store *st, int trial, const char *reason, double now, dg_err *err) {
    if (run(st, err,
            "UPDATE trials SET state = 'failed', reason = ?, pid = NULL, lease_until = NULL, finished = ? "
            "WHERE id = ?",
            "sdi", reason, now, (int64_t)trial) != 0)
        return -1;
    /* committed at once: unlike a result, a failure is not in the run directory for the next start to find */
    return tx_commit(st, err);
}

int sw_store_unrun(sw_store *st, dg_err *err) {
    return run(st, err, "UPDATE trials SET state = 'waiting', pid = NULL, lease_until = NULL WHERE state = 'running'",
               "");
}

int sw_store_config_state(sw_store *st, int c, const char *state, dg_err *err) {
    return run(st, err, "UPDATE trials SET state = ? WHERE config = ? AND state NOT IN ('failed', 'running') "
                        "AND state <> ?",
               "sis", state, (int64_t)c, state);
}

int sw_store_retry_failed(sw_store *st, dg_err *err) {
    if (run(st, err, "UPDATE trials SET state = 'waiting', reason = NULL WHERE state = 'failed'", "") != 0) return -1;
    return sqlite3_changes(st->db);
}

int sw_store_trial_info(sw_store *st, int trial, char *state, int *epochs, double *seconds, char *reason, int n,
                        dg_err *err) {
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(st->db, "SELECT state, epochs, seconds, reason FROM trials WHERE id = ?", -1, &s, NULL) !=
        SQLITE_OK)
        return db_fail(st, err, "read");
    sqlite3_bind_int64(s, 1, trial);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        snprintf(state, 16, "%s", (const char *)sqlite3_column_text(s, 0));
        *epochs = sqlite3_column_int(s, 1);
        *seconds = sqlite3_column_double(s, 2);
        const unsigned char *r = sqlite3_column_text(s, 3);
        snprintf(reason, (size_t)n, "%s", r ? (const char *)r : "");
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW) return dg_fail(err, "%s: no trial %d", st->path, trial);
    return 0;
}

int sw_store_start_on(sw_store *st, int trial, int rung, const char *host, int pid, double now, dg_err *err) {
    return run(st, err,
               "UPDATE trials SET state = 'running', rung = ?, pid = ?, host = ?, started = coalesce(started, ?), "
               "heartbeat = ?, lease_until = ? WHERE id = ?",
               "iisdddi", (int64_t)rung, (int64_t)pid, host, now, now, now + 60, (int64_t)trial);
}

int sw_store_requeue(sw_store *st, int trial, dg_err *err) {
    return run(st, err,
               "UPDATE trials SET state = 'waiting', pid = NULL, lease_until = NULL WHERE id = ? AND state = 'running'",
               "i", (int64_t)trial);
}
