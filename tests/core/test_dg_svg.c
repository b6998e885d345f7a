/* Tests for core/dg_svg: the growing string and its escaping, nice ticks (checked against hand-worked ranges and
 * against their defining properties on many random ranges), and the charts' structure: points per series, data
 * mapped to the frame's corners, one cell per heatmap entry with the colour ramp's ends, bar heights; a line
 * chart's vertical marks and end marks on the points' scale; scatter points on log and categorical axes with their
 * error bars; parallel coordinates' rows at their axes' ends and middles, drawn in colour order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dg_svg.h"
#include "testutil.h"

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

/* The points attribute of the polyline of series `name`, as a malloc'd copy. */
static char *points_of(const char *svg, const char *name) {
    char key[128];
    snprintf(key, sizeof key, "data-series=\"%s\"", name);
    const char *p = strstr(svg, key);
    assert_non_null(p);
    p = strstr(p, "points=\"");
    assert_non_null(p);
    p += 8;
    const char *e = strchr(p, '"');
    assert_non_null(e);
    char *out = malloc((size_t)(e - p) + 1);
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = 0;
    return out;
}

static int n_points(const char *pts) {
    if (!*pts) return 0;
    return count(pts, " ") + 1;
}

static void test_text_escape_and_growth(void **state) {
    (void)state;
    dg_text t;
    dg_text_init(&t);
    dg_text_escape(&t, "<a href='x'>&\"</a>");
    const char *want = "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;";
    assert_string_equal(t.s, want);
    for (int i = 0; i < 10000; i++) dg_text_printf(&t, "%d,", i % 10);
    assert_int_equal(t.oom, 0);
    assert_int_equal(t.len, strlen(t.s));
    assert_int_equal(t.len, strlen(want) + 20000);
    dg_text_free(&t);
}

static void test_ticks_hand_worked(void **state) {
    (void)state;
    double tk[32], lo, hi;
    int n = dg_svg_ticks(0, 1, 6, tk, &lo, &hi);
    assert_int_equal(n, 6);
    for (int i = 0; i < 6; i++) tu_assert_close(tk[i], 0.2 * i, 0, 1e-12);
    n = dg_svg_ticks(1, 45, 8, tk, &lo, &hi); /* step 5 needs 10 ticks; 10 gives 0..50 */
    assert_int_equal(n, 6);
    tu_assert_exact(lo, 0);
    tu_assert_exact(hi, 50);
    n = dg_svg_ticks(0.9812, 0.9934, 7, tk, &lo, &hi);
    assert_int_equal(n, 4); /* 0.001 and 0.002 need 14 and 8 ticks; 0.005: 0.980..0.995 */
    tu_assert_close(lo, 0.98, 0, 1e-12);
    tu_assert_close(hi, 0.995, 0, 1e-12);
    n = dg_svg_ticks(-3, 7, 6, tk, &lo, &hi); /* step 2: -4..8 (7 ticks) is too many; 5: -5..10 */
    assert_int_equal(n, 4);
    tu_assert_exact(tk[0], -5);
    tu_assert_exact(tk[1], 0);
    n = dg_svg_ticks(2, 2, 5, tk, &lo, &hi); /* a point widens */
    assert_true(n >= 2 && lo < 2 && hi > 2);
    n = dg_svg_ticks(NAN, 1, 5, tk, &lo, &hi);
    tu_assert_exact(lo, 0);
    tu_assert_exact(hi, 1);
}

/* On random ranges: the ticks cover the range, are evenly spaced by 1, 2 or 5 x 10^k, and are at most max. */
static void test_ticks_properties(void **state) {
    (void)state;
    srand(7);
    for (int it = 0; it < 5000; it++) {
        double a = (rand() / (double)RAND_MAX - 0.5) * pow(10, rand() % 8 - 3);
        double b = a + rand() / (double)RAND_MAX * pow(10, rand() % 8 - 4) + 1e-9;
        int max = 3 + rand() % 9;
        double tk[32], lo, hi;
        int n = dg_svg_ticks(a, b, max, tk, &lo, &hi);
        assert_true(n >= 2 && n <= max);

        assert_true(lo <= a + 1e-9 * fabs(a) && hi >= b - 1e-9 * fabs(b));
        /* (ticks are exact multiples, but at 4000 +- 1e-6 their differences carry rounding of ~1e-7 relative) */
        double step = (tk[n - 1] - tk[0]) / (n - 1);
        double m = step / pow(10, floor(log10(step) + 1e-9));
        assert_true(fabs(m - 1) < 1e-4 || fabs(m - 2) < 1e-4 || fabs(m - 5) < 1e-4 || fabs(m - 10) < 1e-3);
        for (int i = 1; i < n; i++) assert_true(fabs(tk[i] - tk[i - 1] - step) < 1e-4 * step);
        tu_assert_close(tk[0], lo, 0, 1e-9 * step);
        tu_assert_close(tk[n - 1], hi, 0, 1e-6 * step);
    }
}

static void test_line_chart_points(void **state) {
    (void)state;
    double x[45], y1[45], y2[45];
    for (int i = 0; i < 45; i++) {
        x[i] = i + 1;
        y1[i] = 1.0 / (i + 1);
        y2[i] = i == 10 ? NAN : 0.5;
    }
    dg_svg_series s[2] = {{"train <loss>", x, y1, 45, "#123456", 0}, {"val", x, y2, 45, NULL, 1}};
    dg_svg_axes ax = {"Loss & co", "epoch", "loss", 0, 0, 0, 0, 0};
    dg_text t = {0};
    dg_svg_line_chart(&t, &ax, s, 2);
    assert_int_equal(t.oom, 0);
    assert_non_null(strstr(t.s, "<svg "));
    assert_non_null(strstr(t.s, "Loss &amp; co"));
    assert_int_equal(count(t.s, "<polyline"), 2);
    char *p1 = points_of(t.s, "train &lt;loss&gt;");
    char *p2 = points_of(t.s, "val");
    assert_int_equal(n_points(p1), 45);
    assert_int_equal(n_points(p2), 44); /* the NaN is left out */
    /* x 1..45 -> ticks 0..50 over [60, 504]; y 1/45..1 -> ticks 0..1 over [256, 46] (520 x 300 frame, the plot
     * below the title and the legend row) */
    double a, b;
    assert_int_equal(sscanf(p1, "%lf,%lf", &a, &b), 2);
    tu_assert_close(a, 60 + 1.0 / 50 * 444, 0, 0.06);
    tu_assert_close(b, 46, 0, 0.06);
    free(p1);
    free(p2);
    assert_int_equal(count(t.s, "class=\"legend\""), 2);
    assert_int_equal(count(t.s, "stroke-dasharray"), 2); /* the dashed series and its legend line */
    dg_text_free(&t);

    /* log y: values <= 0 are left out. */
    double y3[4] = {1, 0.1, 0, 0.001};
    dg_svg_series s3 = {"lr", x, y3, 4, NULL, 0};
    dg_svg_axes lg = {NULL, NULL, NULL, 400, 200, 0, 0, 1};
    dg_text u = {0};
    dg_svg_line_chart(&u, &lg, &s3, 1);
    char *p3 = points_of(u.s, "lr");
    assert_int_equal(n_points(p3), 3);
    assert_non_null(strstr(u.s, "viewBox=\"0 0 400 200\""));
    assert_int_equal(count(u.s, "class=\"legend\""), 0); /* one series: no legend */
    /* 0.001..1: decades with 2x and 5x between them */
    static const char *const labels[] = {">0.001</text>", ">0.002</text>", ">0.005</text>", ">0.01</text>",
                                         ">0.5</text>", ">1</text>"};
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++)
        if (!strstr(u.s, labels[i])) fail_msg("no tick label %s", labels[i]);
    free(p3);
    /* whole-number x over 1..4: ticks 1, 2, 3, 4 only (not 1.5, 2.5) */
    assert_non_null(strstr(u.s, "text-anchor=\"middle\">4</text>"));
    assert_null(strstr(u.s, ">1.5</text>"));
    assert_null(strstr(u.s, ">2.5</text>"));
    dg_text_free(&u);
}

static void test_heatmap_cells_and_ramp(void **state) {
    (void)state;
    double v[3 * 4];
    for (int i = 0; i < 12; i++) v[i] = i;
    const char *rows[3] = {"r0", "r1", "r2"}, *cols[4] = {"c0", "c1", "c2", "c<3>"};
    dg_svg_axes ax = {"cm", "predicted", "true", 0, 0, 0, 0, 0};
    dg_text t = {0};
    dg_svg_heatmap(&t, &ax, v, 3, 4, rows, cols, "%.0f");
    assert_int_equal(count(t.s, "class=\"cell\""), 12);
    assert_int_equal(count(t.s, "fill=\"rgb(255,255,255)\""), 1);
    assert_int_equal(count(t.s, "fill=\"rgb(8,48,107)\""), 1);
    assert_non_null(strstr(t.s, "c&lt;3&gt;"));
    assert_non_null(strstr(t.s, ">11</text>"));
    dg_text_free(&t);
    /* a fixed colour range clamps; equal values take the middle of the ramp */
    dg_svg_axes fixed = {NULL, NULL, NULL, 0, 0, 0, 5, 0};
    dg_svg_heatmap(&t, &fixed, v, 3, 4, NULL, NULL, NULL);
    assert_int_equal(count(t.s, "fill=\"rgb(255,255,255)\""), 1); /* 0 */
    assert_int_equal(count(t.s, "fill=\"rgb(8,48,107)\""), 7);    /* 5..11 */
    dg_text_free(&t);
    double same[4] = {100, 100, 100, 100};
    dg_svg_heatmap(&t, &ax, same, 2, 2, NULL, NULL, NULL);
    assert_int_equal(count(t.s, "fill=\"rgb(132,152,181)\""), 4);
    dg_text_free(&t);
}

static void test_bars(void **state) {
    (void)state;
    double v[3] = {0.5, 1.0, 0.25};
    dg_svg_axes ax = {NULL, NULL, NULL, 0, 0, 0, 1, 0};
    dg_text t = {0};
    dg_svg_bars(&t, &ax, v, 3, NULL, "%.2f");
    assert_int_equal(count(t.s, "class=\"bar\""), 3);
    /* heights proportional to the values over [0, 1] (214 px of plot height under the value labels' row) */
    const char *p = t.s;
    double want[3] = {107, 214, 53.5};
    for (int i = 0; i < 3; i++) {
        p = strstr(p, "class=\"bar\"");
        assert_non_null(p);
        const char *h = strstr(p, "height=\"");
        double hv = atof(h + 8);
        tu_assert_close(hv, want[i], 0, 0.06);
        p++;
    }
    dg_text_free(&t);
}

/* The n-th (0-based) match of `attr="` after each occurrence of `key`, as a number. */
static double attr_after(const char *s, const char *key, int nth, const char *attr) {
    const char *p = s;
    for (int i = 0; i <= nth; i++) {
        p = strstr(p, key);
        if (!p) fail_msg("no %d-th '%s'", nth, key);
        if (i < nth) p++;
    }
    char a[32];
    snprintf(a, sizeof a, " %s=\"", attr);
    const char *v = strstr(p, a);
    assert_non_null(v);
    return atof(v + strlen(a));
}

static void test_line_chart_extras(void **state) {
    (void)state;
    double x[5] = {1, 2, 3, 4, 5}, y[5] = {0.1, 0.2, 0.3, 0.4, 0.5};
    dg_svg_series s[3] = {{"a", x, y, 5, NULL, 0}, {"b", x, y, 3, NULL, 0}, {"c", x, y, 2, NULL, 0}};
    double marks[3] = {2, 4, 100}; /* 100 is outside the plot: not drawn */
    unsigned char end[3] = {0, 1, 0};
    dg_svg_line_opts o = {1, marks, 3, "rung", end, 1.2, 0.5};
    dg_text t = {0};
    dg_svg_line_chart_ex(&t, NULL, s, 3, &o);
    assert_int_equal(t.oom, 0);
    assert_int_equal(count(t.s, "class=\"legend\""), 0);
    assert_int_equal(count(t.s, "class=\"xmark\""), 2);
    assert_non_null(strstr(t.s, ">rung 4</text>"));
    assert_int_equal(count(t.s, "class=\"end\""), 1);
    assert_int_equal(count(t.s, "stroke-opacity=\"0.50\""), 3);
    /* the end mark sits on series b's last point */
    char *pb = points_of(t.s, "b");
    const char *last = strrchr(pb, ' ') + 1;
    double lx, ly;
    assert_int_equal(sscanf(last, "%lf,%lf", &lx, &ly), 2);
    tu_assert_close(attr_after(t.s, "class=\"end\"", 0, "cx"), lx, 0, 0.051);
    tu_assert_close(attr_after(t.s, "class=\"end\"", 0, "cy"), ly, 0, 0.051);
    /* the marks at x = 2 and 4 on the same scale as the points (series a's 2nd and 4th) */
    char *pa = points_of(t.s, "a");
    double ax[5], ay;
    const char *q = pa;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(sscanf(q, "%lf,%lf", &ax[i], &ay), 2);
        q = strchr(q, ' ') ? strchr(q, ' ') + 1 : q;
    }
    tu_assert_close(attr_after(t.s, "class=\"xmark\"", 0, "x1"), ax[1], 0, 0.051);
    tu_assert_close(attr_after(t.s, "class=\"xmark\"", 1, "x1"), ax[3], 0, 0.051);
    free(pa);
    free(pb);
    dg_text_free(&t);
    /* without options: the plain chart, legend included */
    dg_svg_line_chart_ex(&t, NULL, s, 3, NULL);
    assert_int_equal(count(t.s, "class=\"legend\""), 3);
    assert_int_equal(count(t.s, "class=\"xmark\""), 0);
    dg_text_free(&t);
}

static void test_scatter(void **state) {
    (void)state;
    /* log x: 1, 10, 100 evenly spaced; x <= 0 and NaN left out */
    double x[6] = {1, 10, 100, 0, -1, NAN}, y[6] = {0, 0.5, 1, 0.5, 0.5, 0.5};
    dg_svg_points p = {x, y, NULL, 6, 1, NULL, 0, NULL, NULL};
    dg_text t = {0};
    dg_svg_scatter(&t, NULL, &p);
    assert_int_equal(t.oom, 0);
    assert_int_equal(count(t.s, "class=\"point\""), 3);
    double c0 = attr_after(t.s, "class=\"point\"", 0, "cx"), c1 = attr_after(t.s, "class=\"point\"", 1, "cx"),
           c2 = attr_after(t.s, "class=\"point\"", 2, "cx");
    assert_true(c0 < c1 && c1 < c2);
    tu_assert_close(c1, (c0 + c2) / 2, 0, 0.11);
    double y0 = attr_after(t.s, "class=\"point\"", 0, "cy"), y1 = attr_after(t.s, "class=\"point\"", 1, "cy"),
           y2 = attr_after(t.s, "class=\"point\"", 2, "cy");
    assert_true(y0 > y2); /* larger y is higher up */
    tu_assert_close(y1, (y0 + y2) / 2, 0, 0.11);
    assert_non_null(strstr(t.s, ">10</text>"));
    /* inside the frame (60..504, 30..256), not on its edges */
    assert_true(c0 > 60.5 && c2 < 503.5 && y2 > 30.5 && y0 < 255.5);
    dg_text_free(&t);
    /* linear x: the same x values are no longer evenly spaced */
    p.log_x = 0;
    dg_svg_scatter(&t, NULL, &p);
    assert_int_equal(count(t.s, "class=\"point\""), 5);
    dg_text_free(&t);

    /* categories: a word's points share a column at the middle of its band; out-of-range indices left out */
    double cx[6] = {0, 1, 0, 1, 2, -1}, cy[6] = {1, 2, 3, 4, 5, 6}, e[6] = {0.5, 0, NAN, 0, 0, 0};
    const char *words[2] = {"adam", "s<gd>"};
    const char *tips[6] = {"t0", "t1", "t2", "t3", "t4", "t5"};
    const char *colors[6] = {"#111111", "#222222", "#333333", "#444444", "#555555", "#666666"};
    dg_svg_points c = {cx, cy, e, 6, 1 /* ignored with categories */, words, 2, tips, colors};
    dg_svg_scatter(&t, NULL, &c);
    assert_int_equal(count(t.s, "class=\"point\""), 4);
    assert_non_null(strstr(t.s, ">s&lt;gd&gt;</text>"));
    tu_assert_close(attr_after(t.s, "class=\"point\"", 0, "cx"), 60 + 0.25 * 444, 0, 0.051);
    tu_assert_close(attr_after(t.s, "class=\"point\"", 2, "cx"), 60 + 0.25 * 444, 0, 0.051);
    tu_assert_close(attr_after(t.s, "class=\"point\"", 1, "cx"), 60 + 0.75 * 444, 0, 0.051);
    assert_int_equal(count(t.s, "<title>t"), 4);
    assert_non_null(strstr(t.s, "fill=\"#444444\""));
    /* one error bar (the others are 0 or NaN), centred on its point */
    assert_int_equal(count(t.s, "class=\"err\""), 1);
    double ey1 = attr_after(t.s, "class=\"err\"", 0, "y1"), ey2 = attr_after(t.s, "class=\"err\"", 0, "y2");
    tu_assert_close((ey1 + ey2) / 2, attr_after(t.s, "class=\"point\"", 0, "cy"), 0, 0.11);
    assert_true(fabs(ey1 - ey2) > 1);
    dg_text_free(&t);
}

/* The points attribute of the n-th pc-line. */
static char *pc_points(const char *s, int nth) {
    const char *p = s;
    for (int i = 0; i <= nth; i++) {
        p = strstr(p + (i > 0), "class=\"pc-line\"");
        assert_non_null(p);
    }
    p = strstr(p, "points=\"") + 8;
    const char *e = strchr(p, '"');
    char *out = malloc((size_t)(e - p) + 1);
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = 0;
    return out;
}

static void test_parallel(void **state) {
    (void)state;
    const char *words[3] = {"x", "y", "z"};
    dg_svg_pc_axis axes[3] = {{"a", 0, NULL, 0}, {"b", 1, NULL, 0}, {"c", 0, words, 3}};
    /* rows: all at the bottom; all at the top; all in the middle (b on a log axis); a missing a */
    double v[4 * 3] = {0, 1, 0, 10, 100, 2, 5, 10, 1, NAN, 10, 1};
    double colour[4] = {0, 3, 1, 2};
    dg_text t = {0};
    dg_svg_parallel(&t, NULL, axes, 3, v, 4, colour, NULL);
    assert_int_equal(t.oom, 0);
    assert_int_equal(count(t.s, "class=\"pc-line\""), 4);
    assert_int_equal(count(t.s, "class=\"pc-axis\""), 3);
    /* drawn by colour, smallest first: rows 0, 2, 3, 1; axes at x 60, 282, 504; y from 256 (bottom) to 38 (top) */
    static const char *const want[4] = {"60.0,256.0 282.0,256.0 504.0,256.0", "60.0,147.0 282.0,147.0 504.0,147.0",
                                        "282.0,147.0 504.0,147.0", "60.0,38.0 282.0,38.0 504.0,38.0"};
    for (int i = 0; i < 4; i++) {
        char *pts = pc_points(t.s, i);
        assert_string_equal(pts, want[i]);
        free(pts);
    }
    /* the colour ramp's ends: the smallest light orange, the largest dark blue */
    const char *first = strstr(t.s, "class=\"pc-line\""), *lastl = first;
    for (const char *q = first; q; q = strstr(q + 1, "class=\"pc-line\"")) lastl = q;
    assert_true(strncmp(strstr(first, "stroke=\""), "stroke=\"rgb(253,174,97)\"", 24) == 0);
    assert_true(strncmp(strstr(lastl, "stroke=\""), "stroke=\"rgb(8,48,107)\"", 22) == 0);
    /* the axes' ends and words */
    assert_non_null(strstr(t.s, ">100</text>"));
    assert_non_null(strstr(t.s, ">z</text>"));
    dg_text_free(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_escape_and_growth), cmocka_unit_test(test_ticks_hand_worked),
        cmocka_unit_test(test_ticks_properties),       cmocka_unit_test(test_line_chart_points),
        cmocka_unit_test(test_heatmap_cells_and_ramp), cmocka_unit_test(test_bars),
        cmocka_unit_test(test_line_chart_extras),      cmocka_unit_test(test_scatter),
        cmocka_unit_test(test_parallel),
    };
    return tu_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
