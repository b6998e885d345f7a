/* fuzz_preset: pipeline/preset (what digits-pipeline runs). There is no writer, so the invariants are the documented
 * limits: a parse either fails with a "file:line..." message or gives 1..PL_MAX_MEMBERS members with a model each
 * and no (model, seed) pair twice, a hold-out fraction in (0, 0.9] or 2..100 folds, 1..PL_MAX_JOBS jobs, an
 * efficiency in [0.01, 1], apply=both only with copies=1 originals=no; and parsing is deterministic (the same text
 * gives the same values). */
#include <string.h>

#include "fuzz_util.h"
#include "pipeline/preset.h"

static pl_preset a, b; /* ~30 KB each: static, not on the stack */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fz_text(data, size);
    dg_err err = {{0}};
    int rc = pl_preset_parse(&a, text, "fuzz.preset", &err);
    if (rc != 0) {
        FZ_CHECK(strncmp(err.msg, "fuzz.preset:", 12) == 0, "message does not name the file: %s", err.msg);
        free(text);
        return 0;
    }
    FZ_CHECK(a.n_members >= 1 && a.n_members <= PL_MAX_MEMBERS, "%d members", a.n_members);
    for (int i = 0; i < a.n_members; i++) {
        FZ_CHECK(a.members[i].model[0] != '\0', "member %d has no model", i);
        for (int j = 0; j < i; j++)
            FZ_CHECK(strcmp(a.members[i].model, a.members[j].model) != 0 || a.members[i].seed != a.members[j].seed,
                     "member %s seed %llu twice", a.members[i].model, (unsigned long long)a.members[i].seed);
    }
    if (a.folds == 0)
        FZ_CHECK(a.val_frac > 0 && a.val_frac <= 0.9, "val_frac %g", a.val_frac);
    else
        FZ_CHECK(a.folds >= 2 && a.folds <= 100, "%d folds", a.folds);
    FZ_CHECK(a.jobs >= 1 && a.jobs <= PL_MAX_JOBS, "jobs %d", a.jobs);
    FZ_CHECK(a.jobs_efficiency >= 0.01 && a.jobs_efficiency <= 1, "jobs_efficiency %g", a.jobs_efficiency);
    FZ_CHECK(a.tta >= 1, "tta %d", a.tta);
    FZ_CHECK(a.n_speeds >= 0 && a.n_speeds <= PL_MAX_SPEEDS, "%d speeds", a.n_speeds);
    if (a.augment.on && a.augment.both)
        FZ_CHECK(a.augment.copies == 1 && !a.augment.originals, "apply=both with copies=%d originals=%d",
                 a.augment.copies, a.augment.originals);
    FZ_CHECK(pl_preset_parse(&b, text, "fuzz.preset", &err) == 0, "second parse failed: %s", err.msg);
    int same = a.n_members == b.n_members && a.val_frac == b.val_frac && a.folds == b.folds &&
               a.split_seed == b.split_seed && a.tta == b.tta && a.ensemble == b.ensemble && a.jobs == b.jobs &&
               a.jobs_efficiency == b.jobs_efficiency && a.budget_minutes == b.budget_minutes &&
               a.n_speeds == b.n_speeds && a.augment.on == b.augment.on && a.augment.copies == b.augment.copies &&
               a.augment.seed == b.augment.seed && strcmp(a.augment.policy, b.augment.policy) == 0;
    for (int i = 0; same && i < a.n_members; i++) {
        const pl_member *x = &a.members[i], *y = &b.members[i];
        same = strcmp(x->model, y->model) == 0 && x->seed == y->seed && x->epochs == y->epochs &&
               strcmp(x->augment, y->augment) == 0 && x->batch == y->batch && x->lr == y->lr && x->line == y->line;
    }
    for (int i = 0; same && i < a.n_speeds; i++)
        same = strcmp(a.speeds[i].model, b.speeds[i].model) == 0 && a.speeds[i].train_ips == b.speeds[i].train_ips &&
               a.speeds[i].predict_ips == b.speeds[i].predict_ips;
    FZ_CHECK(same, "two parses of the same text differ");
    free(text);
    return 0;
}
