/* experiments/report/rp_page: the HTML page every report is, built in a dg_text (core/dg_svg.h) and written
 * atomically: the head with its inline style, sections, tables, digits as PNG data URIs, and the file itself.
 * A page needs nothing from the network. Not here: what a report shows (rp_run, rp_augment, rp_ensemble). */
#ifndef RP_PAGE_H
#define RP_PAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/dg_err.h"
#include "core/dg_svg.h"

/* <!DOCTYPE html> ... <body><h1>title</h1>; subtitle (may be NULL) under it; refresh > 0: the page reloads
 * itself every refresh seconds (a running training's page). */
void rp_page_begin(dg_text *t, const char *title, const char *subtitle, int refresh);
/* The footer and </body></html>. */
void rp_page_end(dg_text *t);
/* <h2 id="id">title</h2> */
void rp_section(dg_text *t, const char *id, const char *title);
/* A two-column table of key/value rows (n pairs; values escaped). */
void rp_kv_table(dg_text *t, const char *const *keys, const char *const *values, int n);
/* <pre> with text escaped. */
void rp_pre(dg_text *t, const char *text);

/* A grey image (h, w), 0 = background, as "data:image/png;base64,..." (white background, dark ink). -1 if libpng
 * fails (message in err). */
int rp_png_data_uri(dg_text *t, const uint8_t *img, int w, int h, dg_err *err);
/* <figure class="digit"><img class="digit" src=PNG alt=caption><figcaption>caption</figcaption></figure> for a
 * 28x28 digit; caption may hold markup the caller built (not escaped). */
int rp_digit(dg_text *t, const uint8_t *img, const char *caption_html, dg_err *err);

/* Write the page to path atomically (core/dg_file.h): nothing under path unless the whole page is there. */
int rp_page_write(const dg_text *t, const char *path, dg_err *err);

#endif
