/* dg_svg: the growing string and the SVG charts (see core/dg_svg.h). */
#include "core/dg_svg.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- dg_text ---- */

void dg_text_init(dg_text *t) { memset(t, 0, sizeof *t); }

void dg_text_free(dg_text *t) {
    free(t->s);
    memset(t, 0, sizeof *t);
}

static int reserve(dg_text *t, size_t extra) {
    if (t->oom) return -1;
    if (t->len + extra + 1 <= t->cap) return 0;
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + extra + 1) cap *= 2;
    char *s = realloc(t->s, cap);
    if (!s) {
        t->oom = 1;
        return -1;
    }
    t->s = s;
    t->cap = cap;
    return 0;
}

void dg_text_append(dg_text *t, const char *s, size_t n) {
    if (reserve(t, n) != 0) return;
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

void dg_text_printf(dg_text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->oom = 1;
        return;
    }
    if (reserve(t, (size_t)n) != 0) return;
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

void dg_text_escape(dg_text *t, const char *s) {
    if (!s) return;
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '&': dg_text_append(t, "&amp;", 5); break;
        case '<': dg_text_append(t, "&lt;", 4); break;
        case '>': dg_text_append(t, "&gt;", 4); break;
        case '"': dg_text_append(t, "&quot;", 6); break;
        case '\'': dg_text_append(t, "&#39;", 5); break;
        default: dg_text_append(t, p, 1);
        }
    }
}

/* ---- ticks ---- */

int dg_svg_ticks(double lo, double hi, int max_ticks, double *ticks, double *lo_out, double *hi_out) {
    if (max_ticks < 3) max_ticks = 3; /* a range across 0 needs -s, 0, s */
    if (!isfinite(lo) || !isfinite(hi)) lo = 0, hi = 1;
    if (lo > hi) {
        double s = lo;
        lo = hi;
        hi = s;
    }
    if (hi - lo < 1e-12 * fmax(1.0, fabs(lo))) {
        double d = lo == 0 ? 1 : fabs(lo) * 0.1;
        lo -= d / 2;
        hi += d / 2;
    }
    /* The smallest nice step giving at most max_ticks ticks over the rounded-out range. */
    double raw = (hi - lo) / (max_ticks - 1);
    double mag = pow(10, floor(log10(raw)));
    static const double mult[] = {1, 2, 5};
    double step = 0;
    double a = 0, b = 0;
    int n = 0;
    for (int i = 0; i < 64; i++) { /* 1, 2, 5, 10, 20, 50, ... x mag until the ticks fit */
        step = mult[i % 3] * mag * pow(10, i / 3);
        a = floor(lo / step + 1e-9) * step;
        b = ceil(hi / step - 1e-9) * step;
        n = (int)llround((b - a) / step) + 1;
        if (n <= max_ticks) break;
    }
    for (int i = 0; i < n; i++) {
        double v = a + i * step;
        ticks[i] = fabs(v) < step * 1e-9 ? 0 : v; /* no "-0" */
    }
    if (lo_out) *lo_out = a;
    if (hi_out) *hi_out = b;
    return n;
}

/* A tick label: as few digits as the step needs. */
static void tick_label(char *buf, size_t cap, double v, double step) {
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dec > 6) dec = 6;
    if (fabs(v) >= 1e7 || (v != 0 && fabs(v) < 1e-4))
        snprintf(buf, cap, "%.2g", v);
    else
        snprintf(buf, cap, "%.*f", dec, v);
}

/* ---- frame ---- */

enum { ML = 60, MR = 16, MT = 30, MB = 44 };

typedef struct frame {
    int w, h;
    int top;               /* the plot's top edge: MT, lower when a legend row or value labels need room */
    double x0, x1, y0, y1; /* data range */
    int log_x, log_y;      /* the range is then in log10 units */
} frame;

static double px(const frame *f, double x) {
    if (f->log_x) x = log10(x);
    return ML + (x - f->x0) / (f->x1 - f->x0) * (f->w - ML - MR);
}
static double py(const frame *f, double y) {
    if (f->log_y) y = log10(y);
    return f->h - MB - (y - f->y0) / (f->y1 - f->y0) * (f->h - f->top - MB);
}

static void open_svg(dg_text *t, const dg_svg_axes *ax, int *w, int *h, const char *kind) {
    *w = ax && ax->width > 0 ? ax->width : 520;
    *h = ax && ax->height > 0 ? ax->height : 300;
    dg_text_printf(t,
                   "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart %s\" viewBox=\"0 0 %d %d\" "
                   "width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">\n",
                   kind, *w, *h, *w, *h);
    if (ax && ax->title) {
        dg_text_printf(t, "<text class=\"title\" x=\"%d\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" "
                          "font-weight=\"bold\">", *w / 2);
        dg_text_escape(t, ax->title);
        dg_text_printf(t, "</text>\n");
    }
}

static void axis_labels(dg_text *t, const dg_svg_axes *ax, int w, int h) {
    if (ax && ax->xlabel) {
        dg_text_printf(t, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (ML + w - MR) / 2, h - 6);
        dg_text_escape(t, ax->xlabel);
        dg_text_printf(t, "</text>\n");
    }
    if (ax && ax->ylabel) {
        dg_text_printf(t, "<text x=\"12\" y=\"%d\" text-anchor=\"middle\" transform=\"rotate(-90 12 %d)\">",
                       (MT + h - MB) / 2, (MT + h - MB) / 2);
        dg_text_escape(t, ax->ylabel);
        dg_text_printf(t, "</text>\n");
    }
}

/* ---- line chart ---- */

static int usable(const dg_svg_axes *ax, double x, double y) {
    return isfinite(x) && isfinite(y) && !(ax && ax->log_y && y <= 0);
}

/* Ticks of a log10 range [lo, hi] (log units): whole decades, with 2x and 5x between them when there are at most
 * few of them; *a and *b receive the covering decades. */
static int log_ticks(double lo, double hi, int few_max, double *ticks, double *a, double *b) {
    if (!isfinite(lo) || !isfinite(hi)) lo = 0, hi = 1;
    *a = floor(lo);
    *b = ceil(hi);
    if (*b <= *a) *b = *a + 1;
    int n = 0, few = *b - *a <= few_max;
    for (double e = *a; e <= *b + 1e-9 && n < 30; e += 1) {
        ticks[n++] = e;
        if (few && e < *b - 0.5) ticks[n++] = e + log10(2.0), ticks[n++] = e + log10(5.0);
    }
    return n;
}

void dg_svg_line_chart(dg_text *t, const dg_svg_axes *ax, const dg_svg_series *s, int ns) {
    dg_svg_line_chart_ex(t, ax, s, ns, NULL);
}

void dg_svg_line_chart_ex(dg_text *t, const dg_svg_axes *ax, const dg_svg_series *s, int ns,
                          const dg_svg_line_opts *o) {
    frame f;
    memset(&f, 0, sizeof f);
    open_svg(t, ax, &f.w, &f.h, "line");
    int legend = ns > 1 && !(o && o->no_legend);
    f.top = legend ? MT + 16 : MT; /* a legend row above the plot */
    f.log_y = ax && ax->log_y;
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < s[k].n; i++) {
            if (!usable(ax, s[k].x[i], s[k].y[i])) continue;
            double y = f.log_y ? log10(s[k].y[i]) : s[k].y[i];
            xlo = fmin(xlo, s[k].x[i]), xhi = fmax(xhi, s[k].x[i]);
            ylo = fmin(ylo, y), yhi = fmax(yhi, y);
        }
    if (ax && ax->ymin < ax->ymax) {
        ylo = f.log_y ? log10(ax->ymin) : ax->ymin;
        yhi = f.log_y ? log10(ax->ymax) : ax->ymax;
    }
    double xt[32], yt[32];
    int nx = dg_svg_ticks(xlo, xhi, 8, xt, &f.x0, &f.x1);
    /* Whole-number x (epochs): no ticks between them. */
    int integral = isfinite(xlo);
    for (int k = 0; k < ns && integral; k++)
        for (int i = 0; i < s[k].n && integral; i++)
            if (usable(ax, s[k].x[i], s[k].y[i])) integral = s[k].x[i] == floor(s[k].x[i]);
    if (integral && nx > 1 && xt[1] - xt[0] < 1) {
        f.x0 = floor(xlo);
        f.x1 = fmax(ceil(xhi), f.x0 + 1);
        nx = 0;
        for (double v = f.x0; v <= f.x1 && nx < 32; v += 1) xt[nx++] = v;
    }
    int ny;
    if (f.log_y) { /* decades */
        ny = log_ticks(ylo, yhi, 3, yt, &f.y0, &f.y1);
    } else {
        ny = dg_svg_ticks(ylo, yhi, 7, yt, &f.y0, &f.y1);
    }
    int L = ML, R = f.w - MR, T = f.top, B = f.h - MB;
    dg_text_printf(t, "<g class=\"grid\" stroke=\"#ddd\">\n");
    for (int i = 0; i < ny; i++) {
        double y = f.log_y ? py(&f, pow(10, yt[i])) : py(&f, yt[i]);
        dg_text_printf(t, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", L, y, R, y);
    }
    for (int i = 0; i < nx; i++) {
        double x = px(&f, xt[i]);
        dg_text_printf(t, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>\n", x, T, x, B);
    }
    dg_text_printf(t, "</g>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n",
                   L, T, R - L, B - T);
    char lab[64];
    dg_text_printf(t, "<g class=\"ticks\" fill=\"#333\">\n");
    for (int i = 0; i < ny; i++) {
        if (f.log_y)
            snprintf(lab, sizeof lab, "%.3g", pow(10, yt[i]));
        else
            tick_label(lab, sizeof lab, yt[i], ny > 1 ? yt[1] - yt[0] : 1);
        double y = f.log_y ? py(&f, pow(10, yt[i])) : py(&f, yt[i]);
        dg_text_printf(t, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", L - 4, y + 4, lab);
    }
    for (int i = 0; i < nx; i++) {
        tick_label(lab, sizeof lab, xt[i], nx > 1 ? xt[1] - xt[0] : 1);
        dg_text_printf(t, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", px(&f, xt[i]), B + 14, lab);
    }
    dg_text_printf(t, "</g>\n");
    axis_labels(t, ax, f.w, f.h);
    for (int i = 0; o && i < o->n_xmarks; i++) {
        double v = o->xmarks[i];
        if (!isfinite(v) || v < f.x0 || v > f.x1) continue;
        dg_text_printf(t, "<line class=\"xmark\" x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#d62728\" "
                          "stroke-width=\"1.2\" stroke-dasharray=\"2 3\"/>",
                       px(&f, v), T, px(&f, v), B);
        int right = v < (f.x0 + f.x1) / 2; /* the label inside the plot */
        dg_text_printf(t, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"%s\" fill=\"#d62728\" font-size=\"9\">",
                       px(&f, v) + (right ? 3 : -3), T + 10, right ? "start" : "end");
        dg_text_escape(t, o->xmark_label ? o->xmark_label : "");
        dg_text_printf(t, " %g</text>\n", v);
    }
    double sw = o && o->stroke_width > 0 ? o->stroke_width : 1.8;
    char opacity[40] = "";
    if (o && o->opacity > 0 && o->opacity < 1) snprintf(opacity, sizeof opacity, " stroke-opacity=\"%.2f\"", o->opacity);
    for (int k = 0; k < ns; k++) {
        const char *color = s[k].color ? s[k].color : "#1f77b4";
        dg_text_printf(t, "<polyline class=\"series\" data-series=\"");
        dg_text_escape(t, s[k].name ? s[k].name : "");
        dg_text_printf(t, "\" fill=\"none\" stroke=\"");
        dg_text_escape(t, color);
        dg_text_printf(t, "\" stroke-width=\"%.2g\"%s%s points=\"", sw, opacity,
                       s[k].dashed ? " stroke-dasharray=\"5 3\"" : "");
        int first = 1, last = -1;
        for (int i = 0; i < s[k].n; i++) {
            if (!usable(ax, s[k].x[i], s[k].y[i])) continue;
            dg_text_printf(t, "%s%.1f,%.1f", first ? "" : " ", px(&f, s[k].x[i]), py(&f, s[k].y[i]));
            first = 0;
            last = i;
        }
        dg_text_printf(t, "\"/>\n");
        if (o && o->end_mark && o->end_mark[k] && last >= 0) {
            dg_text_printf(t, "<circle class=\"end\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"none\" stroke=\"",
                           px(&f, s[k].x[last]), py(&f, s[k].y[last]));
            dg_text_escape(t, color);
            dg_text_printf(t, "\"/>\n");
        }
    }
    /* Legend: one row between the title and the plot, from the plot's left edge. */
    int lx = L;
    for (int k = 0; k < ns && legend; k++) {
        const char *color = s[k].color ? s[k].color : "#1f77b4";
        int y = MT + 6;
        dg_text_printf(t, "<g class=\"legend\"><line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"", lx, y - 4,
                       lx + 20, y - 4);
        dg_text_escape(t, color);
        dg_text_printf(t, "\" stroke-width=\"2\"%s/><text x=\"%d\" y=\"%d\">",
                       s[k].dashed ? " stroke-dasharray=\"5 3\"" : "", lx + 24, y);
        dg_text_escape(t, s[k].name ? s[k].name : "");
        dg_text_printf(t, "</text></g>\n");
        lx += 34 + 7 * (int)strlen(s[k].name ? s[k].name : "");
    }
    dg_text_printf(t, "</svg>\n");
}

/* ---- heatmap ---- */

/* White (u = 0) to #08306b (u = 1). */
static void ramp(double u, int rgb[3]) {
    static const int hi[3] = {8, 48, 107};
    if (!isfinite(u) || u < 0) u = 0;
    if (u > 1) u = 1;
    for (int c = 0; c < 3; c++) rgb[c] = (int)lround(255 + (hi[c] - 255) * u);
}

void dg_svg_heatmap(dg_text *t, const dg_svg_axes *ax, const double *v, int rows, int cols,
                    const char *const *row_labels, const char *const *col_labels, const char *fmt) {
    int w, h;
    open_svg(t, ax, &w, &h, "heatmap");
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < rows * cols; i++)
        if (isfinite(v[i])) lo = fmin(lo, v[i]), hi = fmax(hi, v[i]);
    if (ax && ax->ymin < ax->ymax) lo = ax->ymin, hi = ax->ymax; /* a fixed colour range */
    int flat = !(hi > lo); /* all equal: mid colour */
    if (flat) hi = lo + 1;
    double cw = (double)(w - ML - MR) / (cols > 0 ? cols : 1), ch = (double)(h - MT - MB) / (rows > 0 ? rows : 1);
    char buf[64];
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            double val = v[(size_t)r * (size_t)cols + (size_t)c];
            double u = flat ? 0.5 : (val - lo) / (hi - lo);
            int rgb[3];
            ramp(u, rgb);
            double x = ML + c * cw, y = MT + r * ch;
            dg_text_printf(t,
                           "<rect class=\"cell\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                           "fill=\"rgb(%d,%d,%d)\" stroke=\"#fff\"><title>",
                           x, y, cw, ch, rgb[0], rgb[1], rgb[2]);
            if (row_labels) dg_text_escape(t, row_labels[r]);
            dg_text_printf(t, " / ");
            if (col_labels) dg_text_escape(t, col_labels[c]);
            dg_text_printf(t, ": %g</title></rect>\n", val);
            if (fmt && isfinite(val)) {
                snprintf(buf, sizeof buf, fmt, val);
                dg_text_printf(t, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"%s\">", x + cw / 2,
                               y + ch / 2 + 4, u > 0.5 ? "#fff" : "#222");
                dg_text_escape(t, buf);
                dg_text_printf(t, "</text>\n");
            }
        }
    dg_text_printf(t, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n", ML, MT,
                   w - ML - MR, h - MT - MB);
    for (int r = 0; r < rows && row_labels; r++) {
        dg_text_printf(t, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">", ML - 4, MT + (r + 0.5) * ch + 4);
        dg_text_escape(t, row_labels[r]);
        dg_text_printf(t, "</text>\n");
    }
    for (int c = 0; c < cols && col_labels; c++) {
        dg_text_printf(t, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", ML + (c + 0.5) * cw, h - MB + 14);
        dg_text_escape(t, col_labels[c]);
        dg_text_printf(t, "</text>\n");
    }
    axis_labels(t, ax, w, h);
    dg_text_printf(t, "</svg>\n");
}

/* ---- bars ---- */

void dg_svg_bars(dg_text *t, const dg_svg_axes *ax, const double *v, int n, const char *const *labels,
                 const char *fmt) {
    frame f;
    memset(&f, 0, sizeof f);
    open_svg(t, ax, &f.w, &f.h, "bars");
    f.top = MT + 12; /* room for the value labels above a full bar */
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) lo = fmin(lo, v[i]), hi = fmax(hi, v[i]);
    if (ax && ax->ymin < ax->ymax) lo = ax->ymin, hi = ax->ymax;
    else lo = fmin(lo, 0);
    double yt[32];
    int ny = dg_svg_ticks(lo, hi, 6, yt, &f.y0, &f.y1);
    f.x0 = 0;
    f.x1 = n > 0 ? n : 1;
    int L = ML, R = f.w - MR, B = f.h - MB;
    char lab[64];
    for (int i = 0; i < ny; i++) {
        double y = py(&f, yt[i]);
        tick_label(lab, sizeof lab, yt[i], ny > 1 ? yt[1] - yt[0] : 1);
        dg_text_printf(t,
                       "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                       "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                       L, y, R, y, L - 4, y + 4, lab);
    }
    double bw = (px(&f, 1) - px(&f, 0));
    for (int i = 0; i < n; i++) {
        double val = isfinite(v[i]) ? v[i] : f.y0;
        double base = f.y0 <= 0 && 0 <= f.y1 ? 0 : f.y0; /* bars grow from 0 when it is in range */
        double y = py(&f, fmax(val, f.y0)), y0 = py(&f, base);
        double top = fmin(y, y0), height = fabs(y0 - y);
        dg_text_printf(t,
                       "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#4c78a8\">"
                       "<title>",
                       px(&f, i) + bw * 0.15, top, bw * 0.7, height);
        if (labels) dg_text_escape(t, labels[i]);
        dg_text_printf(t, ": %g</title></rect>\n", v[i]);
        if (fmt) {
            snprintf(lab, sizeof lab, fmt, v[i]);
            dg_text_printf(t, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"9\">",
                           px(&f, i) + bw / 2, top - 3);
            dg_text_escape(t, lab);
            dg_text_printf(t, "</text>\n");
        }
        if (labels) {
            dg_text_printf(t, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", px(&f, i) + bw / 2, B + 14);
            dg_text_escape(t, labels[i]);
            dg_text_printf(t, "</text>\n");
        }
    }
    dg_text_printf(t, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#444\"/>\n", L, B, R, B);
    axis_labels(t, ax, f.w, f.h);
    dg_text_printf(t, "</svg>\n");
}

/* ---- scatter ---- */

static int point_ok(const dg_svg_axes *ax, const dg_svg_points *p, int i) {
    double x = p->x[i], y = p->y[i];
    if (!isfinite(x) || !isfinite(y)) return 0;
    if (p->log_x && !p->categories && x <= 0) return 0;
    if (ax && ax->log_y && y <= 0) return 0;
    if (p->categories && (x < 0 || x >= p->n_categories)) return 0;
    return 1;
}

void dg_svg_scatter(dg_text *t, const dg_svg_axes *ax, const dg_svg_points *p) {
    frame f;
    memset(&f, 0, sizeof f);
    open_svg(t, ax, &f.w, &f.h, "scatter");
    f.top = MT;
    f.log_x = p->log_x && !p->categories;
    f.log_y = ax && ax->log_y;
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int i = 0; i < p->n; i++) {
        if (!point_ok(ax, p, i)) continue;
        double x = f.log_x ? log10(p->x[i]) : p->x[i];
        double e = p->yerr && isfinite(p->yerr[i]) ? fabs(p->yerr[i]) : 0;
        double ya = p->y[i] - e, yb = p->y[i] + e;
        if (f.log_y) ya = ya > 0 ? log10(ya) : log10(p->y[i]), yb = log10(yb);
        xlo = fmin(xlo, x), xhi = fmax(xhi, x);
        ylo = fmin(ylo, ya), yhi = fmax(yhi, yb);
    }
    if (ax && ax->ymin < ax->ymax) {
        ylo = f.log_y ? log10(ax->ymin) : ax->ymin;
        yhi = f.log_y ? log10(ax->ymax) : ax->ymax;
    }
    double xt[32], yt[32];
    int nx, ny;
    if (p->categories) {
        f.x0 = -0.5;
        f.x1 = p->n_categories > 0 ? p->n_categories - 0.5 : 0.5;
        nx = 0;
    } else if (f.log_x) {
        nx = log_ticks(xlo, xhi, f.w >= 600 ? 3 : 2, xt, &f.x0, &f.x1); /* room for 2x, 5x labels */
    } else {
        nx = dg_svg_ticks(xlo, xhi, 8, xt, &f.x0, &f.x1);
        /* whole-number x (ranks, counts): no ticks between them */
        int integral = isfinite(xlo);
        for (int i = 0; i < p->n && integral; i++)
            if (point_ok(ax, p, i)) integral = p->x[i] == floor(p->x[i]);
        if (integral && nx > 1 && xt[1] - xt[0] < 1) {
            f.x0 = floor(xlo);
            f.x1 = fmax(ceil(xhi), f.x0 + 1);
            nx = 0;
            for (double v = f.x0; v <= f.x1 && nx < 32; v += 1) xt[nx++] = v;
        }
    }
    if (f.log_y) ny = log_ticks(ylo, yhi, 3, yt, &f.y0, &f.y1);
    else ny = dg_svg_ticks(ylo, yhi, 7, yt, &f.y0, &f.y1);
    /* a margin of 3% inside the frame, so no point sits on its edge */
    if (!p->categories) {
        double d = 0.03 * (f.x1 - f.x0);
        f.x0 -= d, f.x1 += d;
    }
    double dy = 0.03 * (f.y1 - f.y0);
    f.y0 -= dy, f.y1 += dy;
    int L = ML, R = f.w - MR, T = f.top, B = f.h - MB;
    char lab[64];
    dg_text_printf(t, "<g class=\"grid\" stroke=\"#ddd\">\n");
    for (int i = 0; i < ny; i++) {
        double y = f.log_y ? py(&f, pow(10, yt[i])) : py(&f, yt[i]);
        dg_text_printf(t, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", L, y, R, y);
    }
    for (int i = 0; i < nx; i++) {
        double x = f.log_x ? px(&f, pow(10, xt[i])) : px(&f, xt[i]);
        dg_text_printf(t, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\"/>\n", x, T, x, B);
    }
    dg_text_printf(t, "</g>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n",
                   L, T, R - L, B - T);
    dg_text_printf(t, "<g class=\"ticks\" fill=\"#333\">\n");
    for (int i = 0; i < ny; i++) {
        if (f.log_y) snprintf(lab, sizeof lab, "%.3g", pow(10, yt[i]));
        else tick_label(lab, sizeof lab, yt[i], ny > 1 ? yt[1] - yt[0] : 1);
        double y = f.log_y ? py(&f, pow(10, yt[i])) : py(&f, yt[i]);
        dg_text_printf(t, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", L - 4, y + 4, lab);
    }
    for (int i = 0; i < nx; i++) {
        if (f.log_x) snprintf(lab, sizeof lab, "%.3g", pow(10, xt[i]));
        else tick_label(lab, sizeof lab, xt[i], nx > 1 ? xt[1] - xt[0] : 1);
        double x = f.log_x ? px(&f, pow(10, xt[i])) : px(&f, xt[i]);
        dg_text_printf(t, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x, B + 14, lab);
    }
    for (int i = 0; p->categories && i < p->n_categories; i++) {
        dg_text_printf(t, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", px(&f, i), B + 14);
        dg_text_escape(t, p->categories[i]);
        dg_text_printf(t, "</text>\n");
    }
    dg_text_printf(t, "</g>\n");
    axis_labels(t, ax, f.w, f.h);
    for (int i = 0; i < p->n; i++) {
        if (!point_ok(ax, p, i)) continue;
        const char *color = p->colors && p->colors[i] ? p->colors[i] : "#1f77b4";
        double x = px(&f, p->x[i]), y = py(&f, p->y[i]);
        if (p->yerr && isfinite(p->yerr[i]) && p->yerr[i] != 0) {
            double e = fabs(p->yerr[i]);
            double ya = p->y[i] - e, yb = p->y[i] + e;
            if (f.log_y && ya <= 0) ya = p->y[i];
            dg_text_printf(t, "<line class=\"err\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"", x,
                           py(&f, ya), x, py(&f, yb));
            dg_text_escape(t, color);
            dg_text_printf(t, "\"/>");
        }
        dg_text_printf(t, "<circle class=\"point\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"", x, y);
        dg_text_escape(t, color);
        dg_text_printf(t, "\" fill-opacity=\"0.7\">");
        if (p->tips) {
            dg_text_printf(t, "<title>");
            dg_text_escape(t, p->tips[i]);
            dg_text_printf(t, "</title>");
        }
        dg_text_printf(t, "</circle>\n");
    }
    dg_text_printf(t, "</svg>\n");
}

/* ---- parallel coordinates ---- */

/* Light orange (u = 0) to dark blue (u = 1). */
static void ramp2(double u, int rgb[3]) {
    static const int lo[3] = {253, 174, 97}, hi[3] = {8, 48, 107};
    if (!isfinite(u) || u < 0) u = 0;
    if (u > 1) u = 1;
    for (int c = 0; c < 3; c++) rgb[c] = (int)lround(lo[c] + (hi[c] - lo[c]) * u);
}

typedef struct pc_rank {
    double key;
    int i;
} pc_rank;

static int pc_cmp(const void *a, const void *b) {
    const pc_rank *x = a, *y = b;
    int xf = isfinite(x->key), yf = isfinite(y->key);
    if (xf != yf) return xf ? 1 : -1; /* rows without a colour value first (underneath) */
    if (xf && x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* The value's place on an axis, 0 (bottom) .. 1 (top), or NaN when it has none. */
static double pc_unit(const dg_svg_pc_axis *a, double v, double lo, double hi) {
    if (!isfinite(v)) return NAN;
    if (a->categories) {
        if (v < 0 || v >= a->n_categories) return NAN;
        return a->n_categories > 1 ? v / (a->n_categories - 1) : 0.5;
    }
    if (a->log) {
        if (v <= 0) return NAN;
        v = log10(v);
    }
    return hi > lo ? (v - lo) / (hi - lo) : 0.5;
}

void dg_svg_parallel(dg_text *t, const dg_svg_axes *ax, const dg_svg_pc_axis *axes, int n_axes, const double *v,
                     int n, const double *color_by, const char *const *tips) {
    int w, h;
    open_svg(t, ax, &w, &h, "parallel");
    if (n_axes < 1) {
        dg_text_printf(t, "</svg>\n");
        return;
    }
    double *lo = malloc(2 * (size_t)n_axes * sizeof *lo);
    pc_rank *order = malloc(((size_t)n + 1) * sizeof *order);
    if (!lo || !order) {
        free(lo);
        free(order);
        t->oom = 1;
        return;
    }
    double *hi = lo + n_axes;
    for (int k = 0; k < n_axes; k++) {
        lo[k] = INFINITY, hi[k] = -INFINITY;
        for (int i = 0; i < n; i++) {
            double x = v[(size_t)i * (size_t)n_axes + (size_t)k];
            if (!isfinite(x) || (axes[k].log && x <= 0)) continue;
            if (axes[k].log) x = log10(x);
            lo[k] = fmin(lo[k], x), hi[k] = fmax(hi[k], x);
        }
    }
    double clo = INFINITY, chi = -INFINITY;
    for (int i = 0; color_by && i < n; i++)
        if (isfinite(color_by[i])) clo = fmin(clo, color_by[i]), chi = fmax(chi, color_by[i]);
    int L = ML, R = w - MR, T = MT + 8, B = h - MB;
    double step = n_axes > 1 ? (double)(R - L) / (n_axes - 1) : 0;
    double x0 = n_axes > 1 ? L : (L + R) / 2.0;
    /* the rows, the best coloured last (on top) */
    for (int i = 0; i < n; i++) order[i] = (pc_rank){color_by ? color_by[i] : 0, i};
    qsort(order, (size_t)n, sizeof *order, pc_cmp);
    for (int q = 0; q < n; q++) {
        int i = order[q].i;
        int rgb[3] = {31, 119, 180};
        if (color_by) ramp2(chi > clo ? (color_by[i] - clo) / (chi - clo) : 1, rgb);
        dg_text_printf(t, "<polyline class=\"pc-line\" fill=\"none\" stroke=\"rgb(%d,%d,%d)\" stroke-opacity=\"0.6\" "
                          "points=\"", rgb[0], rgb[1], rgb[2]);
        int first = 1;
        for (int k = 0; k < n_axes; k++) {
            double u = pc_unit(&axes[k], v[(size_t)i * (size_t)n_axes + (size_t)k], lo[k], hi[k]);
            if (!isfinite(u)) continue;
            dg_text_printf(t, "%s%.1f,%.1f", first ? "" : " ", x0 + k * step, B - u * (B - T));
            first = 0;
        }
        dg_text_printf(t, "\">");
        if (tips) {
            dg_text_printf(t, "<title>");
            dg_text_escape(t, tips[i]);
            dg_text_printf(t, "</title>");
        }
        dg_text_printf(t, "</polyline>\n");
    }
    /* the axes over the lines: a line, the name under it, the ends (or the words) beside it */
    char lab[64];
    for (int k = 0; k < n_axes; k++) {
        double x = x0 + k * step;
        const char *anchor = k == n_axes - 1 && n_axes > 1 ? "end" : "start";
        double tx = k == n_axes - 1 && n_axes > 1 ? x - 3 : x + 3;
        dg_text_printf(t, "<g class=\"pc-axis\"><line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#444\"/>"
                          "<text x=\"%.1f\" y=\"%d\" text-anchor=\"%s\" font-weight=\"bold\">",
                       x, T, x, B, x, B + 16, n_axes == 1 ? "middle" : k == 0 ? "start" : k == n_axes - 1 ? "end" : "middle");
        dg_text_escape(t, axes[k].name ? axes[k].name : "");
        dg_text_printf(t, "</text>\n");
        if (axes[k].categories) {
            for (int c = 0; c < axes[k].n_categories; c++) {
                double u = axes[k].n_categories > 1 ? (double)c / (axes[k].n_categories - 1) : 0.5;
                dg_text_printf(t, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"9\">", tx,
                               B - u * (B - T) + 3, anchor);
                dg_text_escape(t, axes[k].categories[c]);
                dg_text_printf(t, "</text>");
            }
        } else if (lo[k] <= hi[k]) {
            double ends[2] = {lo[k], hi[k]};
            for (int e = 0; e < (hi[k] > lo[k] ? 2 : 1); e++) {
                double val = axes[k].log ? pow(10, ends[e]) : ends[e];
                snprintf(lab, sizeof lab, "%.4g", val);
                double u = hi[k] > lo[k] ? e : 0.5;
                dg_text_printf(t, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" font-size=\"9\">%s</text>", tx,
                               B - u * (B - T) + (e ? 9 : -2), anchor, lab);
            }
        }
        dg_text_printf(t, "</g>\n");
    }
    free(lo);
    free(order);
    dg_text_printf(t, "</svg>\n");
}
