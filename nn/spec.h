/* nn/spec: a model described in a small text file (experiments/models/NAME.spec), parsed strictly.
 *
 * One statement per line, `keyword key=value ...`, '#' starts a comment. Unknown keywords or keys, bad numbers,
 * missing values and impossible shapes are errors "file:line: message". The parsed nn_spec holds the layers and
 * the training hyperparameters; the spec's own text is kept so a saved model describes itself.
 * (The grammar is documented in docs/spec-format.md.)
 */
#ifndef NN_SPEC_H
#define NN_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/dg_err.h"

#define NN_MAX_LAYERS 64

typedef enum nn_kind {
    NN_DENSE,     /* units */
    NN_CONV,      /* filters, size, stride, pad (pad = -1: 'same') */
    NN_MAXPOOL,   /* size, stride */
    NN_AVGPOOL,   /* size, stride */
    NN_BATCHNORM, /* momentum, eps; over channels after conv, over features after dense */
    NN_DROPOUT,   /* rate */
    NN_RELU,
    NN_LEAKYRELU, /* slope */
    NN_TANH,
    NN_SIGMOID,
    NN_FLATTEN,
    NN_DECONV,    /* filters, size, stride, pad, opad: transposed convolution (nn_deconv2d_forward) */
    NN_EMBED,     /* classes, dim: the label's learned embedding appended to every pixel's channels */
    NN_RESHAPE    /* c, h, w: the same values seen as (h, w, c) in NHWC order (free) */
} nn_kind;

/* What a network's output is, and so which loss the net provides. */
typedef enum nn_output {
    NN_OUT_CLASSES, /* 10 logits, softmax cross-entropy (nn_net_loss): a classifier (the default) */
    NN_OUT_LOGIT,   /* one logit, sigmoid cross-entropy (nn_net_loss_bce): a GAN's discriminator */
    NN_OUT_IMAGE    /* any shape, no loss: the caller gives the gradient (nn_net_backward_from): a GAN's generator */
} nn_output;

typedef struct nn_layer_spec {
    nn_kind kind;
    int line;                 /* line in the spec file, for error messages */
    int units;                /* dense */
    int filters, size, stride, pad;
    int opad;                 /* deconv output padding */
    int classes, dim;         /* embed: number of labels, values per label */
    int c, h, w;              /* reshape */
    float rate;               /* dropout probability of zeroing */
    float slope;              /* leaky ReLU negative slope */
    float momentum, eps;      /* batch norm: running = (1 - momentum) * running + momentum * batch (PyTorch) */
    float l2;                 /* extra L2 on this layer's weights (added to the global weight decay) */
} nn_layer_spec;

typedef enum nn_optimizer { NN_SGD, NN_MOMENTUM, NN_NESTEROV, NN_ADAM, NN_ADAMW } nn_optimizer;
typedef enum nn_schedule { NN_SCHED_CONSTANT, NN_SCHED_STEP, NN_SCHED_EXP, NN_SCHED_COSINE, NN_SCHED_ONECYCLE,
                           NN_SCHED_PLATEAU } nn_schedule;

typedef struct nn_hyper {
    nn_optimizer optimizer;
    float lr, momentum, beta1, beta2, adam_eps;
    float weight_decay;       /* L2 (sgd/adam) or decoupled (adamw); applies to weights, not biases or BN */
    nn_schedule schedule;
    float gamma;              /* step/exp/plateau factor */
    int step_epochs;          /* step: multiply by gamma every step_epochs */
    float min_lr;             /* cosine floor */
    float max_lr;             /* one-cycle peak (0: 10 x lr) */
    int plateau_patience;
    int batch, epochs;
    float label_smoothing;
    int early_stop;           /* stop after this many epochs without a better validation loss (0: off) */
    float ema;                /* decay D of an exponential moving average of the weights (nn/ema.h), in [0, 1);
                                 0: off. On, the average is what is evaluated and exported */
    char augment[256];        /* augmentation policy (preset name or file), "" for none */
} nn_hyper;

typedef struct nn_spec {
    char name[64];
    int in_c, in_h, in_w;     /* input, 1x28x28 for digits */
    nn_output output;         /* `output classes|logit|image` (classes) */
    int n_layers;
    nn_layer_spec layers[NN_MAX_LAYERS];
    nn_hyper hyper;
    char file[256];           /* where it came from ("<string>" if parsed from text) */
    char *text;               /* the source text (owned; nn_spec_free) */
} nn_spec;

/* Defaults for every hyperparameter (documented in --help of digits-train). */
void nn_hyper_defaults(nn_hyper *h);
/* Parse spec text; fname is used in messages. Fills *spec (free with nn_spec_free). */
int nn_spec_parse(nn_spec *spec, const char *text, const char *fname, dg_err *err);
/* Read and parse a file; a bare name (no '/', no ".spec") is looked up in experiments/models/. */
int nn_spec_load(nn_spec *spec, const char *path_or_name, dg_err *err);
void nn_spec_free(nn_spec *spec);

/* Where a bare model name is looked up, in order: $DIGITS_MODELS, ./experiments/models, the running binary's
 * ../../experiments/models, and the source tree's experiments/models. Writes the found path into path[n]. */
int nn_spec_find(const char *name, char *path, size_t n, dg_err *err);

/* The canonical text of a spec: every layer and every hyperparameter written out explicitly, so it parses back to
 * the same nn_spec (comments are dropped). malloc'd; NULL on out of memory. */
char *nn_spec_format(const nn_spec *spec);

/* The hyperparameters as a JSON object text (malloc'd; NULL on out of memory). */
char *nn_hyper_json(const nn_hyper *h);

/* Names used in spec files ("adam", "cosine", ...). */
const char *nn_optimizer_name(nn_optimizer o);
const char *nn_schedule_name(nn_schedule s);
const char *nn_kind_name(nn_kind k);

#endif
