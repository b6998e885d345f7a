/* fuzz_spec: nn/spec (model text files). Invariants: a parse either fails with a "file:line: ..." message or gives a
 * spec within the documented limits; its canonical text (nn_spec_format) parses back to the same layers and
 * hyperparameters and formats to the same text again; the hyperparameters' JSON is produced. */
#include <string.h>

#include "fuzz_util.h"
#include "nn/spec.h"

static void same_spec(const nn_spec *a, const nn_spec *b) {
    FZ_CHECK(a->n_layers == b->n_layers, "%d vs %d layers", a->n_layers, b->n_layers);
    FZ_CHECK(a->in_c == b->in_c && a->in_h == b->in_h && a->in_w == b->in_w, "input differs");
    FZ_CHECK(strcmp(a->name, b->name) == 0, "name '%s' vs '%s'", a->name, b->name);
    FZ_CHECK(a->output == b->output, "output %d vs %d", (int)a->output, (int)b->output);
    for (int i = 0; i < a->n_layers; i++) {
        const nn_layer_spec *x = &a->layers[i], *y = &b->layers[i];
        FZ_CHECK(x->kind == y->kind && x->units == y->units && x->filters == y->filters && x->size == y->size &&
                     x->stride == y->stride && x->pad == y->pad && x->rate == y->rate && x->slope == y->slope &&
                     x->momentum == y->momentum && x->eps == y->eps && x->l2 == y->l2 && x->opad == y->opad &&
                     x->classes == y->classes && x->dim == y->dim && x->c == y->c && x->h == y->h && x->w == y->w,
                 "layer %d (%s) differs after the round trip", i, nn_kind_name(x->kind));
    }
    const nn_hyper *h = &a->hyper, *g = &b->hyper;
    FZ_CHECK(h->optimizer == g->optimizer && h->lr == g->lr && h->momentum == g->momentum && h->beta1 == g->beta1 &&
                 h->beta2 == g->beta2 && h->adam_eps == g->adam_eps && h->weight_decay == g->weight_decay &&
                 h->schedule == g->schedule && h->gamma == g->gamma && h->step_epochs == g->step_epochs &&
                 h->min_lr == g->min_lr && h->max_lr == g->max_lr && h->plateau_patience == g->plateau_patience &&
                 h->batch == g->batch && h->epochs == g->epochs && h->label_smoothing == g->label_smoothing &&
                 h->early_stop == g->early_stop && h->ema == g->ema && strcmp(h->augment, g->augment) == 0,
             "hyperparameters differ after the round trip");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fz_text(data, size);
    nn_spec s;
    dg_err err = {{0}};
    if (nn_spec_parse(&s, text, "fuzz.spec", &err) != 0) {
        FZ_CHECK(strncmp(err.msg, "fuzz.spec", 9) == 0, "message does not name the file: %s", err.msg);
        free(text);
        return 0;
    }
    FZ_CHECK(s.n_layers >= 0 && s.n_layers <= NN_MAX_LAYERS, "%d layers", s.n_layers);
    FZ_CHECK(s.hyper.batch >= 1 && s.hyper.epochs >= 1, "batch %d epochs %d", s.hyper.batch, s.hyper.epochs);
    char *canon = nn_spec_format(&s);
    FZ_CHECK(canon != NULL, "nn_spec_format failed");
    nn_spec t;
    int rc = nn_spec_parse(&t, canon, "canonical.spec", &err);
    FZ_CHECK(rc == 0, "the canonical text does not parse: %s\n--- input\n%s\n--- canonical\n%s", err.msg, text, canon);
    same_spec(&s, &t);
    char *again = nn_spec_format(&t);
    FZ_CHECK(again && strcmp(canon, again) == 0, "canonical text is not a fixed point:\n%s\n---\n%s", canon, again);
    char *json = nn_hyper_json(&s.hyper);
    FZ_CHECK(json != NULL, "nn_hyper_json failed");
    free(json);
    free(again);
    free(canon);
    nn_spec_free(&t);
    nn_spec_free(&s);
    free(text);
    return 0;
}
