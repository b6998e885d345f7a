/* dg_svg: a small SVG writer for the project's pictures (learning curves, confusion matrices, bar charts), and
 * the growing string it writes into.
 *
 * Every chart is one <svg> element with a viewBox, so it scales with the page. Plot coordinates come from "nice"
 * ticks (1, 2, 5 x 10^k) covering the data. What a test or a reader can rely on:
 *   - a line chart draws each series as one <polyline class="series" data-series="NAME" points="x,y x,y ...">,
 *     one point per finite (x, y); non-finite values are left out;
 *   - a heatmap draws one <rect class="cell"> per cell, row-major;
 *   - a bar chart draws one <rect class="bar"> per value;
 *   - a scatter plot draws one <circle class="point"> per finite point (and one <line class="err"> per error bar);
 *   - parallel coordinates draw one <polyline class="pc-line" points="..."> per row, one point per finite value;
 *   - a line chart's vertical marks are <line class="xmark">, its end marks <circle class="end">;
 *   - all text is XML-escaped.
 * Not here: the page around the charts (experiments/report), raster images (PNG via libpng there). */
#ifndef DG_SVG_H
#define DG_SVG_H

#include <stddef.h>

/* A growing NUL-terminated string. A failed allocation sets oom and makes later appends no-ops, so a caller
 * checks once at the end. Zero-initialize, or dg_text_init. */
typedef struct dg_text {
    char *s;
    size_t len, cap;
    int oom;
} dg_text;

void dg_text_init(dg_text *t);
void dg_text_free(dg_text *t);
/* printf-style append. */
void dg_text_printf(dg_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append n raw bytes. */
void dg_text_append(dg_text *t, const char *s, size_t n);
/* Append s with & < > " ' escaped (for XML/HTML text and attribute values). */
void dg_text_escape(dg_text *t, const char *s);

/* Nice ticks covering [lo, hi]: at most max_ticks values (at least 3 are allowed: a range across 0 needs -s, 0, s) k * step with step = 1, 2 or 5 x 10^e,
 * written to ticks; returns their count. *lo_out and *hi_out receive the covering range (the first and last tick
 * rounded outward). lo == hi is widened to a unit range around it; non-finite input gives the range [0, 1]. */
int dg_svg_ticks(double lo, double hi, int max_ticks, double *ticks, double *lo_out, double *hi_out);

/* A line: n points (x[i], y[i]); color is any SVG color ("#1f77b4"); dashed draws it dashed. */
typedef struct dg_svg_series {
    const char *name;
    const double *x, *y;
    int n;
    const char *color;
    int dashed;
} dg_svg_series;

typedef struct dg_svg_axes {
    const char *title, *xlabel, *ylabel; /* may be NULL */
    int width, height;                   /* the viewBox (0: 520 x 300) */
    double ymin, ymax;                   /* fixed y range (heatmap: colour range) when ymin < ymax; otherwise
                                            fitted to the data */
    int log_y;                           /* logarithmic y axis (values <= 0 are left out) */
} dg_svg_axes;

/* Line chart of ns series with axes, ticks, grid and a legend. When every x is a whole number (epochs), x ticks
 * are whole numbers too. */
void dg_svg_line_chart(dg_text *t, const dg_svg_axes *ax, const dg_svg_series *s, int ns);

/* Heatmap of v (rows, cols) row-major, white (min) to dark blue (max), or over [ax->ymin, ax->ymax] when that is
 * set (values outside are clamped); all values equal: a mid blue. The value is printed in each cell when fmt is set
 * (e.g. "%.0f"); row/column labels are arrays of rows / cols strings (may be NULL). */
void dg_svg_heatmap(dg_text *t, const dg_svg_axes *ax, const double *v, int rows, int cols,
                    const char *const *row_labels, const char *const *col_labels, const char *fmt);

/* Vertical bars v (n) with labels (n, may be NULL), value printed above each with fmt (may be NULL). */
void dg_svg_bars(dg_text *t, const dg_svg_axes *ax, const double *v, int n, const char *const *labels,
                 const char *fmt);

/* Line-chart extras (dg_svg_line_chart_ex; NULL: none). */
typedef struct dg_svg_line_opts {
    int no_legend;                 /* no legend row (many series: the page says what they are) */
    const double *xmarks;          /* n_xmarks vertical marks across the plot at these x (e.g. ASHA's rungs), */
    int n_xmarks;                  /* each labelled with xmark_label and its x ("rung 6") */
    const char *xmark_label;
    const unsigned char *end_mark; /* ns flags, may be NULL: a circle at the flagged series' last point (a trial
                                      that stopped there) */
    double stroke_width;           /* 0: 1.8 */
    double opacity;                /* of the series' strokes; 0: 1 */
} dg_svg_line_opts;

/* dg_svg_line_chart with extras. */
void dg_svg_line_chart_ex(dg_text *t, const dg_svg_axes *ax, const dg_svg_series *s, int ns,
                          const dg_svg_line_opts *o);

/* Points (x[i], y[i]) for dg_svg_scatter. */
typedef struct dg_svg_points {
    const double *x, *y;           /* n; a point with a non-finite coordinate is left out */
    const double *yerr;            /* NULL, or n half-lengths: an error bar y +- yerr for each point (mean +- SD) */
    int n;
    int log_x;                     /* logarithmic x axis (x <= 0 left out) */
    const char *const *categories; /* non-NULL: a categorical x axis; x[i] is an index into the n_categories words,
                                      spread evenly (a point jittered by nothing: the same word, the same column) */
    int n_categories;
    const char *const *tips;       /* n hover texts (<title>), may be NULL */
    const char *const *colors;     /* n colours, may be NULL (all #1f77b4) */
} dg_svg_points;

/* Scatter plot with axes, ticks and grid; ax->log_y gives a logarithmic y axis. */
void dg_svg_scatter(dg_text *t, const dg_svg_axes *ax, const dg_svg_points *p);

/* One vertical axis of a parallel-coordinates chart. */
typedef struct dg_svg_pc_axis {
    const char *name;
    int log;                       /* logarithmic (values <= 0 left out) */
    const char *const *categories; /* non-NULL: the values are indices into these n_categories words */
    int n_categories;
} dg_svg_pc_axis;

/* Parallel coordinates: n rows of v (n, n_axes) row-major, each a polyline across the n_axes vertical axes, each
 * axis scaled to its own range (bottom: smallest) and labelled with its ends (or its words). color_by (n, may be
 * NULL) colours the rows from light orange (smallest) to dark blue (largest), drawn in that order so the largest
 * are on top; tips (n, may be NULL) are hover texts. */
void dg_svg_parallel(dg_text *t, const dg_svg_axes *ax, const dg_svg_pc_axis *axes, int n_axes, const double *v,
                     int n, const double *color_by, const char *const *tips);

#endif
