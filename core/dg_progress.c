/* dg_progress: terminal progress bar (see dg_progress.h). */
#include "core/dg_progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

double dg_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void dg_progress_start(dg_progress *p, const char *label, size_t total) {
    p->label = label;
    p->total = total;
    p->start = dg_now();
    p->last_draw = 0;
    p->enabled = isatty(STDERR_FILENO);
}

void dg_progress_update(dg_progress *p, size_t done, const char *extra) {
    if (!p->enabled) return;
    double now = dg_now();
    if (now - p->last_draw < 0.1 && done < p->total) return;
    p->last_draw = now;
    double frac = p->total ? (double)done / (double)p->total : 1.0;
    if (frac > 1) frac = 1;
    char bar[31];
    int fill = (int)(frac * 30);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    double el = now - p->start, rate = el > 0 ? (double)done / el : 0;
    double eta = rate > 0 ? (double)(p->total - (done < p->total ? done : p->total)) / rate : 0;
    fprintf(stderr, "\r%s [%s] %5.1f%% %zu/%zu %.0f/s ETA %02d:%02d %s\033[K", p->label ? p->label : "", bar,
            100 * frac, done, p->total, rate, (int)eta / 60, (int)eta % 60, extra ? extra : "");
    fflush(stderr);
}

void dg_progress_finish(dg_progress *p) {
    if (!p->enabled) return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
}
