/* experiments/report/rp_augment: originals beside augmented copies (see rp_augment.h). */
#include "experiments/report/rp_augment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "augment/augment.h"
#include "augment/policy.h"
#include "core/dg_dataset.h"
#include "experiments/report/rp_page.h"

static const char *const kKind[] = {"deskew", "rotate", "zoom", "scale", "shear", "shift", "elastic"};

/* What the lines drew, as caption HTML (escaping is not needed: names and numbers only). */
static void describe(char *buf, size_t cap, const aug_policy *p, const aug_draw *d) {
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < p->n && at < cap; i++) {
        const aug_op *op = &p->op[i];
        const char *name = op->kind <= AUG_ELASTIC ? kKind[op->kind] : "?";
        int n;
        if (!d[i].applied)
            n = snprintf(buf + at, cap - at, "%s &ndash;<br>", name);
        else if (op->kind == AUG_DESKEW)
            n = snprintf(buf + at, cap - at, "deskew<br>");
        else if (op->kind == AUG_ROTATE || op->kind == AUG_SHEAR)
            n = snprintf(buf + at, cap - at, "%s %.1f&deg;<br>", name, (double)d[i].v[0]);
        else if (op->kind == AUG_ZOOM)
            n = snprintf(buf + at, cap - at, "zoom %.2f<br>", (double)d[i].v[0]);
        else if (op->kind == AUG_SHIFT)
            n = snprintf(buf + at, cap - at, "shift %.1f,%.1f<br>", (double)d[i].v[0], (double)d[i].v[1]);
        else if (op->kind == AUG_ELASTIC)
            n = snprintf(buf + at, cap - at, "&alpha;%.0f &sigma;%.1f<br>", (double)d[i].v[0], (double)d[i].v[1]);
        else
            n = snprintf(buf + at, cap - at, "%s %.2f,%.2f<br>", name, (double)d[i].v[0], (double)d[i].v[1]);
        if (n < 0) break;
        at += (size_t)n;
    }
}

int rp_augment_report(dg_text *t, const rp_augment_opts *o, dg_err *err) {
    aug_policy *p = NULL;
    dg_dataset ds;
    if (aug_policy_load(&p, o->policy, err) != 0) return -1;
    if (dg_dataset_open(&ds, o->data, err) != 0) {
        aug_policy_free(p);
        return -1;
    }
    int rc = -1;
    aug_draw draws[AUG_MAX_OPS];
    char *canon = NULL;
    aug_scratch *s = aligned_alloc(64, (sizeof(aug_scratch) + 63) / 64 * 64);
    int count = o->count < (int)ds.n ? o->count : (int)ds.n;
    if (!s) {
        dg_fail(err, "out of memory");
        goto done;
    }
    aug_scratch_init(s);
    int need = aug_policy_format(p, NULL, 0);
    canon = malloc((size_t)need + 1);
    if (!canon) {
        dg_fail(err, "out of memory");
        goto done;
    }
    aug_policy_format(p, canon, (size_t)need + 1);
    char title[400], sub[200];
    snprintf(title, sizeof title, "Augmentation: %s", o->policy);
    snprintf(sub, sizeof sub, "%d rows of %s, %d copies each (copy k drawn as epoch k), seed %llu", count, o->data,
             o->copies, (unsigned long long)o->seed);
    rp_page_begin(t, title, sub, 0);
    rp_section(t, "policy", "Policy");
    rp_pre(t, aug_policy_is_none(p) ? "(none: images pass unchanged)\n" : canon);
    rp_section(t, "samples", "Originals and augmented copies");
    dg_text_printf(t, "<div class=\"gallery\" id=\"augmented\">\n");
    uint8_t out[DG_PIXELS];
    char cap[1024];
    for (int r = 0; r < count; r++) {
        const uint8_t *src = dg_dataset_image(&ds, (size_t)r);
        dg_text_printf(t, "<div class=\"pair\">");
        if (ds.has_labels)
            snprintf(cap, sizeof cap, "<b>row %d</b><br>label %d", r, dg_dataset_label(&ds, (size_t)r));
        else
            snprintf(cap, sizeof cap, "<b>row %d</b>", r);
        if (rp_digit(t, src, cap, err) != 0) goto done;
        for (int k = 0; k < o->copies; k++) {
            aug_params prm;
            aug_sample(p, o->seed, (uint32_t)k, (uint32_t)r, src, &prm);
            aug_draw_ops(p, o->seed, (uint32_t)k, (uint32_t)r, draws);
            aug_apply_u8(out, src, &prm, s);
            describe(cap, sizeof cap, p, draws);
            if (rp_digit(t, out, cap, err) != 0) goto done;
        }
        dg_text_printf(t, "</div>\n");
    }
    dg_text_printf(t, "</div>\n");
    rp_page_end(t);
    if (t->oom) {
        dg_fail(err, "out of memory");
        goto done;
    }
    rc = 0;
done:
    free(s);
    free(canon);
    dg_dataset_close(&ds);
    aug_policy_free(p);
    return rc;
}
