/* experiments/sweep_report: a sweep's results: the leaderboard (terminal and DIR/leaderboard.csv), the best
 * configuration as a ready-to-train spec (DIR/best.spec, and DIR/best.policy when the sweep has a policy
 * template), and the per-epoch curves of every trial (DIR/epochs.csv) for a report stage. Files are written
 * atomically (core/dg_file.h). Not here: running anything.
 */
#ifndef SW_REPORT_H
#define SW_REPORT_H

#include <stdio.h>

#include "core/dg_err.h"
#include "experiments/sweep_file.h"
#include "experiments/sweep_store.h"
#include "experiments/sweep_strategy.h"

/* One configuration on the leaderboard: its best-known rung (the highest where every replicate has a result). */
typedef struct sw_row {
    int config, state, rung; /* rung -1: no result */
    int epochs;              /* epochs trained (largest over the replicates) */
    double mean, sd;         /* the metric over the replicates at rung */
    double seconds;          /* training time summed over the replicates */
    char reason[256];        /* a failed replicate's reason */
} sw_row;

/* The leaderboard, best first: higher rung first, then the metric, then the lower id. *rows malloc'd. */
int sw_report_rows(const sw_sweep *s, const sw_results *r, const sw_decisions *d, sw_store *st, sw_row **rows,
                   dg_err *err);
/* leaderboard.csv, epochs.csv and best.spec (+ best.policy) in dir. */
int sw_report_write(const sw_sweep *s, const sw_row *rows, int n, const char *dir, dg_err *err);
/* The first `top` rows as a table. */
void sw_report_print(const sw_sweep *s, const sw_row *rows, int n, int top, FILE *out);
/* "complete", "pruned", "failed", "open". */
const char *sw_state_name(int state);

#endif
