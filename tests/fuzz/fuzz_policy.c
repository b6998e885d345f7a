/* fuzz_policy: augment/policy (augmentation policy text). Invariants: a parse either fails with a
 * "file:line:col: ..." message or gives at most AUG_MAX_OPS lines with 0 <= p <= 1 and lo <= hi; the canonical
 * text (aug_policy_format) parses back to the same lines and formats to the same text; drawing parameters for an
 * image is pure (the same key gives the same draws) and stays within each line's range. */
#include <math.h>
#include <string.h>

#include "augment/augment.h"
#include "augment/policy.h"
#include "fuzz_util.h"

static char *format(const aug_policy *p) {
    int n = aug_policy_format(p, NULL, 0);
    FZ_CHECK(n >= 0, "aug_policy_format failed");
    char *buf = malloc((size_t)n + 1);
    if (!buf) abort();
    FZ_CHECK(aug_policy_format(p, buf, (size_t)n + 1) == n, "aug_policy_format lengths differ");
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fz_text(data, size);
    aug_policy *p = NULL;
    dg_err err = {{0}};
    if (aug_policy_parse(&p, text, "fuzz.policy", &err) != 0) {
        FZ_CHECK(strncmp(err.msg, "fuzz.policy", 11) == 0, "message does not name the file: %s", err.msg);
        free(text);
        return 0;
    }
    FZ_CHECK(p->n >= 0 && p->n <= AUG_MAX_OPS, "%d lines", p->n);
    for (int i = 0; i < p->n; i++) {
        const aug_op *o = &p->op[i];
        FZ_CHECK(o->p >= 0 && o->p <= 1, "line %d: p = %g", o->line, o->p);
        for (int k = 0; k < 2; k++)
            FZ_CHECK(isfinite(o->lo[k]) && isfinite(o->hi[k]) && o->lo[k] <= o->hi[k], "line %d: range %g..%g",
                     o->line, o->lo[k], o->hi[k]);
    }
    char *canon = format(p);
    aug_policy *q = NULL;
    int rc = aug_policy_parse(&q, canon, "fuzz.policy", &err) /* same name: it is in the text */;
    FZ_CHECK(rc == 0, "the canonical text does not parse: %s\n--- input\n%s\n--- canonical\n%s", err.msg, text, canon);
    FZ_CHECK(q->n == p->n, "%d vs %d lines", q->n, p->n);
    for (int i = 0; i < p->n; i++) {
        const aug_op *a = &p->op[i], *b = &q->op[i];
        FZ_CHECK(a->kind == b->kind && a->p == b->p && a->lo[0] == b->lo[0] && a->hi[0] == b->hi[0] &&
                     a->lo[1] == b->lo[1] && a->hi[1] == b->hi[1],
                 "line %d differs after the round trip:\n%s\n---\n%s", i, text, canon);
    }
    char *again = format(q);
    FZ_CHECK(strcmp(canon, again) == 0, "canonical text is not a fixed point:\n%s\n---\n%s", canon, again);

    aug_draw d1[AUG_MAX_OPS], d2[AUG_MAX_OPS];
    uint32_t id = size ? data[0] : 0;
    aug_draw_ops(p, 7, 3, id, d1);
    aug_draw_ops(q, 7, 3, id, d2);
    FZ_CHECK(memcmp(d1, d2, sizeof(aug_draw) * (size_t)p->n) == 0, "draws differ between equal policies");
    for (int i = 0; i < p->n; i++)
        if (d1[i].applied)
            for (int k = 0; k < (p->op[i].kind == AUG_ZOOM ? 1 : 2); k++) /* zoom: v[1] is v[0] */
                FZ_CHECK(d1[i].v[k] >= p->op[i].lo[k] && d1[i].v[k] <= p->op[i].hi[k],
                         "line %d drew %g outside %g..%g", p->op[i].line, d1[i].v[k], p->op[i].lo[k], p->op[i].hi[k]);
    uint8_t img[28 * 28];
    for (size_t i = 0; i < sizeof img; i++) img[i] = (uint8_t)(i < size ? data[i] : i * 7);
    aug_params a, b;
    aug_sample(p, 7, 3, id, img, &a);
    aug_sample(p, 7, 3, id, img, &b);
    FZ_CHECK(memcmp(&a, &b, sizeof a) == 0, "aug_sample is not pure");
    free(again);
    free(canon);
    aug_policy_free(q);
    aug_policy_free(p);
    free(text);
    return 0;
}
