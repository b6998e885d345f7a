/* experiments/report/rp_sweep: the report of a digits-sweep directory, read from its sweep.db (SQLite, opened
 * read-only; the tables are in experiments/sweep_store.h and docs/sweeps.md) in one read transaction, so a
 * running coordinator's commits land wholly before or after: the leaderboard (configuration, parameters, metric
 * mean +- SD over the replicates at the highest rung all of them reached, epochs, training time, state with a
 * failure's reason), the metric of every trial over its epochs (ASHA's rungs as vertical marks; a pruned or failed
 * trial's line ends in a circle), the metric against each parameter (log axis for a log_uniform one, words as
 * categories), parallel coordinates, and mean +- SD per configuration.
 * What the database does not hold, the metric and the parameters' distributions, comes from the sweep file that
 * meta.sweep_file names when it still loads with the database's sweep_hash; otherwise the page says so and
 * assumes val_acc and linear axes.
 * A database of another schema version, or a file that is not a sweep database, is an error naming it. */
#ifndef RP_SWEEP_H
#define RP_SWEEP_H

#include <stddef.h>

#include "core/dg_err.h"
#include "core/dg_svg.h"

typedef struct rp_sweep_opts {
    const char *source; /* the sweep directory (its sweep.db) or the database file itself */
    int refresh;        /* > 0: while the sweep is live, the page reloads itself every refresh seconds */
} rp_sweep_opts;

/* The database of a --sweep source: source/sweep.db for a directory, source itself otherwise. */
void rp_sweep_db_path(const char *source, char *out, size_t n);

/* Append the whole page to t; *live (may be NULL) = 1 when a trial is running under an unexpired lease (a
 * coordinator is at work). 0 or -1 (message in err). */
int rp_sweep_report(dg_text *t, const rp_sweep_opts *o, int *live, dg_err *err);

/* Whether the sweep is live (as above), with one query. 0 or -1. */
int rp_sweep_live(const char *source, int *live, dg_err *err);

#endif
