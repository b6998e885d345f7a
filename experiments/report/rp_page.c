/* experiments/report/rp_page: HTML page helpers and PNG data URIs (see rp_page.h). */
#include "experiments/report/rp_page.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dg_file.h"
#include "core/dg_png.h"

static const char kStyle[] =
    "body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}"
    "h1{font-size:22px;margin-bottom:4px}h2{font-size:17px;border-bottom:1px solid #ccc;padding-bottom:3px;"
    "margin-top:28px}.sub{color:#666;margin-top:0}"
    "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}"
    "th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "pre{background:#f7f7f7;padding:8px;font-size:12px;overflow-x:auto;white-space:pre-wrap}"
    ".charts{display:flex;flex-wrap:wrap;gap:12px}.chart{border:1px solid #eee;max-width:100%;height:auto}"
    ".gallery{display:flex;flex-wrap:wrap;gap:6px}figure.digit{margin:0;text-align:center;font-size:11px;width:72px}"
    "img.digit{width:56px;height:56px;image-rendering:pixelated;border:1px solid #ccc}"
    ".pair{display:flex;gap:4px;align-items:flex-start;border:1px solid #eee;padding:4px}"
    ".bad{color:#b00}.note{color:#666;font-size:13px}";

void rp_page_begin(dg_text *t, const char *title, const char *subtitle, int refresh) {
    dg_text_printf(t, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    if (refresh > 0) dg_text_printf(t, "<meta http-equiv=\"refresh\" content=\"%d\">", refresh);
    dg_text_printf(t, "<title>");
    dg_text_escape(t, title);
    dg_text_printf(t, "</title>\n<style>%s</style></head>\n<body>\n<h1>", kStyle);
    dg_text_escape(t, title);
    dg_text_printf(t, "</h1>\n");
    if (subtitle) {
        dg_text_printf(t, "<p class=\"sub\">");
        dg_text_escape(t, subtitle);
        dg_text_printf(t, "</p>\n");
    }
}

void rp_page_end(dg_text *t) {
    dg_text_printf(t, "<p class=\"note\">digits-report %s</p>\n</body></html>\n", DIGITS_VERSION);
}

void rp_section(dg_text *t, const char *id, const char *title) {
    dg_text_printf(t, "<h2 id=\"%s\">", id);
    dg_text_escape(t, title);
    dg_text_printf(t, "</h2>\n");
}

void rp_kv_table(dg_text *t, const char *const *keys, const char *const *values, int n) {
    dg_text_printf(t, "<table class=\"kv\">\n");
    for (int i = 0; i < n; i++) {
        dg_text_printf(t, "<tr><th>");
        dg_text_escape(t, keys[i]);
        dg_text_printf(t, "</th><td>");
        dg_text_escape(t, values[i] ? values[i] : "");
        dg_text_printf(t, "</td></tr>\n");
    }
    dg_text_printf(t, "</table>\n");
}

void rp_pre(dg_text *t, const char *text) {
    dg_text_printf(t, "<pre>");
    dg_text_escape(t, text);
    dg_text_printf(t, "</pre>\n");
}

/* ---- PNG in memory (core/dg_png into an open_memstream), then base64 ---- */

static void base64(dg_text *t, const unsigned char *p, size_t n) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char q[4];
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        q[0] = b64[v >> 18 & 63];
        q[1] = b64[v >> 12 & 63];
        q[2] = i + 1 < n ? b64[v >> 6 & 63] : '=';
        q[3] = i + 2 < n ? b64[v & 63] : '=';
        dg_text_append(t, q, 4);
    }
}

int rp_png_data_uri(dg_text *t, const uint8_t *img, int w, int h, dg_err *err) {
    char *png = NULL;
    size_t len = 0;
    uint8_t *inv = malloc((size_t)w * (size_t)h);
    FILE *f = inv ? open_memstream(&png, &len) : NULL;
    if (!f) {
        free(inv);
        return dg_fail(err, "out of memory");
    }
    for (size_t i = 0; i < (size_t)w * (size_t)h; i++) inv[i] = (uint8_t)(255 - img[i]); /* dark ink on white */
    int rc = dg_png_write_gray(f, "a PNG in memory", inv, w, h, err);
    if (fclose(f) != 0 && rc == 0) rc = dg_fail(err, "a PNG in memory: out of memory");
    if (rc == 0) {
        dg_text_printf(t, "data:image/png;base64,");
        base64(t, (const unsigned char *)png, len);
    }
    free(png);
    free(inv);
    return rc;
}

int rp_digit(dg_text *t, const uint8_t *img, const char *caption_html, dg_err *err) {
    dg_text_printf(t, "<figure class=\"digit\"><img class=\"digit\" alt=\"digit\" src=\"");
    if (rp_png_data_uri(t, img, 28, 28, err) != 0) return -1;
    dg_text_printf(t, "\"><figcaption>%s</figcaption></figure>\n", caption_html ? caption_html : "");
    return 0;
}

int rp_page_write(const dg_text *t, const char *path, dg_err *err) {
    if (t->oom || !t->s) return dg_fail(err, "%s: out of memory building the page", path);
    return dg_write_file_atomic(path, t->s, t->len, err);
}
