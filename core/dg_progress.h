/* dg_progress: a progress bar with rate and ETA on stderr, drawn only when stderr is a terminal (and not more
 * often than 10 times a second). On a pipe or file it prints nothing, so logs stay clean. */
#ifndef DG_PROGRESS_H
#define DG_PROGRESS_H

#include <stddef.h>

typedef struct dg_progress {
    const char *label;
    size_t total;
    double start, last_draw;
    int enabled;
} dg_progress;

double dg_now(void); /* monotonic seconds */
void dg_progress_start(dg_progress *p, const char *label, size_t total);
void dg_progress_update(dg_progress *p, size_t done, const char *extra);
void dg_progress_finish(dg_progress *p);

#endif
