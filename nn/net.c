/* nn/net: a feed-forward network built from an nn_spec (see net.h); the kernels are in nn/layers.h.
 *
 * Each spec layer is one op. Shapes are per image (H, W, C), NHWC. Decisions made here:
 *  - dense flattens its input implicitly (NHWC order), so `flatten` is optional and costs nothing (an alias);
 *  - conv pad=same (-1) means (size - 1) / 2 on every side: the output is ceil(in / stride) for odd sizes;
 *  - an activation right after a conv or dense layer is fused into that layer's output stage, and a batch norm
 *    right after such a layer gets its batch statistics from that same pass (one pass over memory instead of 3);
 *  - dropout in inference, flatten and fused activations have no memory of their own (their output aliases the
 *    input); every other op owns an output buffer for max_batch images, kept until backward;
 *  - the network input is copied in, so the caller's buffer may change between forward and backward.
 * Memory: params, grads, buffers: one allocation each; everything else (activations, masks, gradients,
 * scratch) one arena. Forward and backward allocate nothing.
 */
#include "nn/net.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layers.h"
#include "core/dg_rng.h"

#define N_CLASSES 10
#define MAX_TENSORS (4 * NN_MAX_LAYERS)

typedef enum tensor_role { ROLE_WEIGHT, ROLE_BIAS, ROLE_BN_SCALE, ROLE_BN_SHIFT, ROLE_BN_MEAN, ROLE_BN_VAR,
                           ROLE_EMBED } tensor_role;

typedef struct nn_op {
    nn_kind kind;
    int li;                    /* index into spec.layers */
    int ih, iw, ic, oh, ow, oc; /* input and output image shapes */
    size_t in_n, out_n;        /* floats per image */
    nn_conv_dims cd;           /* conv */
    nn_deconv_dims dd;         /* deconv */
    int classes, dim;          /* embed */
    int size, stride;          /* pooling */
    nn_act act;                /* conv/dense: fused activation; activation layers: their function */
    float slope;
    int fused;                 /* activation applied by the previous conv/dense: no work of its own */
    int bn_fused_stats;        /* batch norm whose batch statistics come from the previous layer's output stage */
    int stats_to;              /* conv/dense: the op index of that batch norm, or -1 */
    int need_dx;               /* some earlier op has parameters: backward must produce d(input) */
    int grad_from;             /* conv/dense: index of the batch norm whose backward applies this layer's activation
                                * derivative and computes its bias gradient (when it produces d(input)), or -1 */
    int has_params;
    float rate, momentum, eps;
    float *w, *b, *dw, *db, *rmean, *rvar; /* conv/dense weight, bias; batch norm scale, shift, running stats */
    float *buf;                /* own output (max_batch, out_n), NULL for aliasing ops */
    float *mean, *invstd;      /* batch norm (C): the statistics used by the last forward */
    double *stats;             /* batch norm (2, C): batch sum and sum of squares */
    uint8_t *mask;             /* dropout (max_batch, out_n) */
    int32_t *argmax;           /* max pooling (max_batch, out_n) */
    float *x, *y;              /* input and output of the last forward */
    int dropped;               /* dropout was active in the last forward */
} nn_op;

struct nn_net {
    nn_spec spec;
    int max_batch;
    int n_ops;
    nn_op ops[NN_MAX_LAYERS];
    int n_tensors;
    nn_tensor tensors[MAX_TENSORS];
    tensor_role roles[MAX_TENSORS];
    size_t n_params, n_buffers;
    float *params, *grads, *buffers;
    void *arena;
    float *input;              /* (max_batch, in_h, in_w, in_c) */
    float *gbuf[2];            /* gradient ping-pong buffers (max_batch, largest activation) */
    float *probs;              /* (max_batch, 10) */
    float *scratch;
    float *logits;             /* the output of the last forward (B, out_n) */
    uint8_t *cond;             /* (max_batch) the labels of the last forward, for nets with an embed layer */
    int has_embed;
    size_t out_n;              /* output values per image */
    int last_B, last_training, have_loss;
};

static int is_act(nn_kind k) { return k == NN_RELU || k == NN_LEAKYRELU || k == NN_TANH || k == NN_SIGMOID; }
/* layers with weights and a bias whose output stage takes a fused activation and batch statistics */
static int is_linear(nn_kind k) { return k == NN_CONV || k == NN_DENSE || k == NN_DECONV; }

static nn_act act_of(nn_kind k) {
    switch (k) {
    case NN_RELU: return NN_ACT_RELU;
    case NN_LEAKYRELU: return NN_ACT_LEAKY;
    case NN_TANH: return NN_ACT_TANH;
    case NN_SIGMOID: return NN_ACT_SIGMOID;
    default: return NN_ACT_NONE;
    }
}

static const char *kind_name(nn_kind k) {
    static const char *const names[] = {"dense", "conv", "maxpool", "avgpool", "batchnorm", "dropout", "relu",
                                        "leakyrelu", "tanh", "sigmoid", "flatten", "deconv", "embed", "reshape"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Shapes of every op; errors name the spec file and line. */
/* The most values one image may have at the input or at any layer's output, and the most parameters plus buffers a
 * net may have (1 GiB of floats each; the shipped models are below 2^22): a spec beyond them is an error, not an
 * allocation of terabytes. */
#define NN_MAX_VALUES ((size_t)1 << 28)
#define NN_MAX_PARAMS ((size_t)1 << 28)

static int plan_shapes(nn_net *net, dg_err *err) {
    const nn_spec *s = &net->spec;
    const char *file = s->file[0] ? s->file : "<spec>";
    int h = s->in_h, w = s->in_w, c = s->in_c;
    if (h < 1 || w < 1 || c < 1) return dg_fail(err, "%s: bad input shape %dx%dx%d", file, c, h, w);
    /* The input is held to the same bound as every layer's output, which also keeps h * w * c (flatten, dense
     * fan-in) within int. */
    if ((size_t)h * w * c > NN_MAX_VALUES)
        return dg_fail(err, "%s: input %dx%dx%d is too large (more than %zu values)", file, c, h, w, NN_MAX_VALUES);
    if (s->n_layers < 1 || s->n_layers > NN_MAX_LAYERS)
        return dg_fail(err, "%s: a network needs 1 to %d layers, not %d", file, NN_MAX_LAYERS, s->n_layers);
    net->n_ops = s->n_layers;
    for (int i = 0; i < s->n_layers; i++) {
        const nn_layer_spec *L = &s->layers[i];
        nn_op *op = &net->ops[i];
        memset(op, 0, sizeof *op);
        op->kind = L->kind;
        op->li = i;
        op->stats_to = -1;
        op->grad_from = -1;
        op->ih = h, op->iw = w, op->ic = c;
        switch (L->kind) {
        case NN_CONV: {
            if (L->filters < 1 || L->size < 1 || L->stride < 1)
                return dg_fail(err, "%s:%d: conv needs filters >= 1, size >= 1 and stride >= 1", file, L->line);
            int pad = L->pad < 0 ? (L->size - 1) / 2 : L->pad;
            if (pad >= L->size)
                return dg_fail(err, "%s:%d: conv pad=%d must be smaller than its size %d", file, L->line, pad,
                               L->size);
            nn_conv_dims d = {.H = h, .W = w, .C = c, .OC = L->filters, .KH = L->size, .KW = L->size,
                              .stride = L->stride, .pad = pad};
            if (nn_conv_dims_finish(&d) != 0) {
                if (pad > 0)
                    return dg_fail(err, "%s:%d: conv %dx%d does not fit a %dx%d input padded by %d", file, L->line,
                                   L->size, L->size, h, w, pad);
                return dg_fail(err, "%s:%d: conv %dx%d does not fit a %dx%d input", file, L->line, L->size, L->size,
                               h, w);
            }
            op->cd = d;
            h = d.OH, w = d.OW, c = d.OC;
            break;
        }
        case NN_DECONV: {
            if (L->filters < 1 || L->size < 1 || L->stride < 1 || L->pad < 0)
                return dg_fail(err, "%s:%d: deconv needs filters >= 1, size >= 1, stride >= 1 and pad >= 0", file,
                               L->line);
            if (L->pad >= L->size)
                return dg_fail(err, "%s:%d: deconv pad=%d must be smaller than its size %d", file, L->line, L->pad,
                               L->size);
            if (L->opad >= L->stride)
                return dg_fail(err, "%s:%d: deconv opad=%d must be smaller than its stride %d", file, L->line,
                               L->opad, L->stride);
            nn_deconv_dims d = {.H = h, .W = w, .C = c, .OC = L->filters, .KH = L->size, .KW = L->size,
                                .stride = L->stride, .pad = L->pad, .opad = L->opad};
            if (nn_deconv_dims_finish(&d) != 0)
                return dg_fail(err, "%s:%d: deconv size=%d stride=%d pad=%d opad=%d on a %dx%d input gives no output "
                               "(output side (in - 1) stride - 2 pad + size + opad)", file, L->line, L->size,
                               L->stride, L->pad, L->opad, h, w);
            op->dd = d;
            h = d.OH, w = d.OW, c = d.OC;
            break;
        }
        case NN_EMBED:
            if (L->classes < 1 || L->classes > 256 || L->dim < 1)
                return dg_fail(err, "%s:%d: embed needs classes in 1..256 and dim >= 1", file, L->line);
            if (net->has_embed)
                return dg_fail(err, "%s:%d: a network takes its labels once: at most one embed layer", file, L->line);
            net->has_embed = 1;
            op->classes = L->classes, op->dim = L->dim;
            if ((size_t)c + L->dim > NN_MAX_VALUES)
                return dg_fail(err, "%s:%d: embed dim=%d is too large", file, L->line, L->dim);
            c += L->dim;
            break;
        case NN_RESHAPE:
            if ((size_t)L->c * L->h * L->w != (size_t)h * w * c)
                return dg_fail(err, "%s:%d: reshape to %dx%dx%d (CxHxW) needs %zu values; its input %dx%dx%d has %zu",
                               file, L->line, L->c, L->h, L->w, (size_t)L->c * L->h * L->w, c, h, w,
                               (size_t)h * w * c);
            h = L->h, w = L->w, c = L->c;
            break;
        case NN_DENSE:
            if (L->units < 1) return dg_fail(err, "%s:%d: dense needs units >= 1", file, L->line);
            h = 1, w = 1, c = L->units;
            break;
        case NN_MAXPOOL:
        case NN_AVGPOOL: {
            int stride = L->stride > 0 ? L->stride : L->size;
            if (L->size < 1) return dg_fail(err, "%s:%d: %s needs size >= 1", file, L->line, kind_name(L->kind));
            if (L->size > h || L->size > w)
                return dg_fail(err, "%s:%d: %s %dx%d does not fit a %dx%d input", file, L->line, kind_name(L->kind),
                               L->size, L->size, h, w);
            op->size = L->size;
            op->stride = stride;
            h = (h - L->size) / stride + 1;
            w = (w - L->size) / stride + 1;
            break;
        }
        case NN_BATCHNORM:
            if (!(L->eps > 0.0f) || !(L->momentum >= 0.0f && L->momentum <= 1.0f))
                return dg_fail(err, "%s:%d: batchnorm needs eps > 0 and momentum in [0, 1]", file, L->line);
            op->momentum = L->momentum;
            op->eps = L->eps;
            break;
        case NN_DROPOUT:
            if (!(L->rate >= 0.0f && L->rate < 1.0f))
                return dg_fail(err, "%s:%d: dropout rate must be in [0, 1)", file, L->line);
            op->rate = L->rate;
            break;
        case NN_RELU:
        case NN_LEAKYRELU:
        case NN_TANH:
        case NN_SIGMOID:
            op->act = act_of(L->kind);
            op->slope = L->slope;
            break;
        case NN_FLATTEN: c = h * w * c, h = 1, w = 1; break;
        default: return dg_fail(err, "%s:%d: unknown layer kind %d", file, L->line, (int)L->kind);
        }
        op->oh = h, op->ow = w, op->oc = c;
        op->in_n = (size_t)op->ih * op->iw * op->ic;
        op->out_n = (size_t)h * w * c;
        if (op->out_n > NN_MAX_VALUES)
            return dg_fail(err, "%s:%d: %s output %dx%dx%d is too large", file, L->line, kind_name(L->kind), h, w, c);
    }
    net->out_n = (size_t)h * w * c;
    const int last = s->layers[s->n_layers - 1].line;
    if (s->output == NN_OUT_CLASSES && net->out_n != N_CLASSES)
        return dg_fail(err, "%s:%d: the network ends in %dx%dx%d = %zu outputs; it must end in %d (one per digit)",
                       file, last, h, w, c, net->out_n, N_CLASSES);
    if (s->output == NN_OUT_LOGIT && net->out_n != 1)
        return dg_fail(err, "%s:%d: the network ends in %dx%dx%d = %zu outputs; 'output logit' needs exactly 1", file,
                       last, h, w, c, net->out_n);
    if ((unsigned)s->output > NN_OUT_IMAGE) return dg_fail(err, "%s: unknown output kind %d", file, (int)s->output);
    return 0;
}

/* Fusion and backward needs. */
static void plan_fusion(nn_net *net) {
    int params_before = 0;
    for (int i = 0; i < net->n_ops; i++) {
        nn_op *op = &net->ops[i];
        if (is_act(op->kind) && i > 0) {
            nn_op *p = &net->ops[i - 1];
            if (is_linear(p->kind) && p->act == NN_ACT_NONE) {
                p->act = op->act;
                p->slope = op->slope;
                op->fused = 1;
            }
        }
        if (op->kind == NN_BATCHNORM && i > 0) {
            int p = i - 1;
            if (net->ops[p].fused) p--;
            if (is_linear(net->ops[p].kind)) {
                net->ops[p].stats_to = i;
                op->bn_fused_stats = 1;
                net->ops[p].grad_from = i;
            }
        }
        op->has_params = is_linear(op->kind) || op->kind == NN_BATCHNORM || op->kind == NN_EMBED;
        op->need_dx = params_before;
        params_before |= op->has_params;
    }
}

static void add_tensor(nn_net *net, const char *base, const char *suffix, int ndim, const int *shape, int is_buffer,
                       int decay, float l2, int layer, tensor_role role) {
    nn_tensor *t = &net->tensors[net->n_tensors];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s.%s", base, suffix);
    t->ndim = ndim;
    t->count = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        t->count *= (size_t)shape[i];
    }
    t->is_buffer = is_buffer;
    t->decay = decay;
    t->l2 = decay ? l2 : 0.0f;
    t->layer = layer;
    if (is_buffer) {
        t->offset = net->n_buffers;
        net->n_buffers += t->count;
    } else {
        t->offset = net->n_params;
        net->n_params += t->count;
    }
    net->roles[net->n_tensors++] = role;
}

static void plan_tensors(nn_net *net) {
    int n_conv = 0, n_dense = 0, n_bn = 0, n_deconv = 0, n_embed = 0;
    char base[32];
    for (int i = 0; i < net->n_ops; i++) {
        nn_op *op = &net->ops[i];
        float l2 = net->spec.layers[i].l2;
        if (op->kind == NN_CONV) {
            snprintf(base, sizeof base, "conv%d", ++n_conv);
            int ws[4] = {op->cd.OC, op->cd.KH, op->cd.KW, op->cd.C}, bs[1] = {op->cd.OC};
            add_tensor(net, base, "weight", 4, ws, 0, 1, l2, i, ROLE_WEIGHT);
            add_tensor(net, base, "bias", 1, bs, 0, 0, 0.0f, i, ROLE_BIAS);
        } else if (op->kind == NN_DECONV) {
            snprintf(base, sizeof base, "deconv%d", ++n_deconv);
            int ws[4] = {op->dd.C, op->dd.KH, op->dd.KW, op->dd.OC}, bs[1] = {op->dd.OC};
            add_tensor(net, base, "weight", 4, ws, 0, 1, l2, i, ROLE_WEIGHT);
            add_tensor(net, base, "bias", 1, bs, 0, 0, 0.0f, i, ROLE_BIAS);
        } else if (op->kind == NN_EMBED) {
            snprintf(base, sizeof base, "embed%d", ++n_embed);
            int ws[2] = {op->classes, op->dim};
            add_tensor(net, base, "weight", 2, ws, 0, 0, 0.0f, i, ROLE_EMBED);
        } else if (op->kind == NN_DENSE) {
            snprintf(base, sizeof base, "dense%d", ++n_dense);
            int ws[2] = {op->oc, (int)op->in_n}, bs[1] = {op->oc};
            add_tensor(net, base, "weight", 2, ws, 0, 1, l2, i, ROLE_WEIGHT);
            add_tensor(net, base, "bias", 1, bs, 0, 0, 0.0f, i, ROLE_BIAS);
        } else if (op->kind == NN_BATCHNORM) {
            snprintf(base, sizeof base, "bn%d", ++n_bn);
            int cs[1] = {op->oc};
            add_tensor(net, base, "weight", 1, cs, 0, 0, 0.0f, i, ROLE_BN_SCALE);
            add_tensor(net, base, "bias", 1, cs, 0, 0, 0.0f, i, ROLE_BN_SHIFT);
            add_tensor(net, base, "running_mean", 1, cs, 1, 0, 0.0f, i, ROLE_BN_MEAN);
            add_tensor(net, base, "running_var", 1, cs, 1, 0, 0.0f, i, ROLE_BN_VAR);
        }
    }
}

/* Bump allocator over the arena: with base NULL it only measures. */
typedef struct carver {
    char *base;
    size_t off;
} carver;

static void *carve(carver *c, size_t bytes) {
    void *p = c->base ? c->base + c->off : NULL;
    c->off += (bytes + 63) & ~(size_t)63;
    return p;
}

static void plan_memory(nn_net *net, carver *cv) {
    const int MB = net->max_batch;
    size_t max_n = (size_t)net->spec.in_h * net->spec.in_w * net->spec.in_c, scratch = 0;
    net->input = carve(cv, sizeof(float) * MB * max_n);
    net->cond = carve(cv, (size_t)MB);
    for (int i = 0; i < net->n_ops; i++) {
        nn_op *op = &net->ops[i];
        size_t act_bytes = sizeof(float) * MB * op->out_n, need = 0;
        if (op->out_n > max_n) max_n = op->out_n;
        op->buf = NULL;
        switch (op->kind) {
        case NN_CONV:
            op->buf = carve(cv, act_bytes);
            need = nn_conv2d_scratch(&op->cd, MB);
            break;
        case NN_DENSE:
            op->buf = carve(cv, act_bytes);
            need = nn_dense_scratch(MB, (int)op->in_n, op->oc);
            break;
        case NN_DECONV:
            op->buf = carve(cv, act_bytes);
            need = nn_deconv2d_scratch(&op->dd, MB);
            break;
        case NN_EMBED: op->buf = carve(cv, act_bytes); break;
        case NN_BATCHNORM:
            op->buf = carve(cv, act_bytes);
            op->mean = carve(cv, sizeof(float) * op->oc);
            op->invstd = carve(cv, sizeof(float) * op->oc);
            op->stats = carve(cv, sizeof(double) * 2 * op->oc);
            need = nn_batchnorm_scratch((size_t)MB * op->oh * op->ow, op->oc);
            break;
        case NN_DROPOUT:
            op->buf = carve(cv, act_bytes);
            op->mask = carve(cv, (size_t)MB * op->out_n);
            break;
        case NN_MAXPOOL:
            op->buf = carve(cv, act_bytes);
            op->argmax = carve(cv, sizeof(int32_t) * MB * op->out_n);
            break;
        case NN_AVGPOOL: op->buf = carve(cv, act_bytes); break;
        case NN_RELU:
        case NN_LEAKYRELU:
        case NN_TANH:
        case NN_SIGMOID:
            if (!op->fused) op->buf = carve(cv, act_bytes);
            break;
        default: break;
        }
        if (need > scratch) scratch = need;
    }
    net->gbuf[0] = carve(cv, sizeof(float) * MB * max_n);
    net->gbuf[1] = carve(cv, sizeof(float) * MB * max_n);
    net->probs = carve(cv, sizeof(float) * MB * N_CLASSES);
    net->scratch = carve(cv, sizeof(float) * align16(scratch + 16));
}

int nn_net_create(nn_net **out, const nn_spec *spec, int max_batch, dg_err *err) {
    *out = NULL;
    if (max_batch < 1 || max_batch > (1 << 20))
        return dg_fail(err, "nn_net_create: max_batch %d is not in [1, %d]", max_batch, 1 << 20);
    nn_net *net = calloc(1, sizeof *net);
    if (!net) return dg_fail(err, "nn_net_create: out of memory");
    net->spec = *spec;
    net->spec.text = NULL;
    if (spec->text && !(net->spec.text = strdup(spec->text))) {
        free(net);
        return dg_fail(err, "nn_net_create: out of memory");
    }
    if (net->spec.in_h == 0 && net->spec.in_w == 0 && net->spec.in_c == 0)
        net->spec.in_h = net->spec.in_w = 28, net->spec.in_c = 1;
    net->max_batch = max_batch;
    if (plan_shapes(net, err) != 0) {
        nn_net_free(net);
        return -1;
    }
    plan_fusion(net);
    plan_tensors(net);
    if (net->n_params > NN_MAX_PARAMS || net->n_buffers > NN_MAX_PARAMS) {
        dg_fail(err, "%s: the network has %zu parameters and %zu buffer values, more than %zu",
                net->spec.file[0] ? net->spec.file : "<spec>", net->n_params, net->n_buffers, NN_MAX_PARAMS);
        nn_net_free(net);
        return -1;
    }
    carver cv = {NULL, 0};
    plan_memory(net, &cv);
    net->params = calloc(net->n_params ? net->n_params : 1, sizeof(float));
    net->grads = calloc(net->n_params ? net->n_params : 1, sizeof(float));
    net->buffers = calloc(net->n_buffers ? net->n_buffers : 1, sizeof(float));
    if (posix_memalign(&net->arena, 64, cv.off) != 0) net->arena = NULL;
    if (!net->params || !net->grads || !net->buffers || !net->arena) {
        nn_net_free(net);
        return dg_fail(err, "nn_net_create: out of memory (%zu MB of activations for batch %d)", cv.off >> 20,
                       max_batch);
    }
    memset(net->arena, 0, cv.off);
    cv = (carver){net->arena, 0};
    plan_memory(net, &cv);
    /* Point every op at its tensors. */
    for (int t = 0; t < net->n_tensors; t++) {
        const nn_tensor *T = &net->tensors[t];
        nn_op *op = &net->ops[T->layer];
        float *p = T->is_buffer ? net->buffers + T->offset : net->params + T->offset;
        float *g = T->is_buffer ? NULL : net->grads + T->offset;
        switch (net->roles[t]) {
        case ROLE_WEIGHT:
        case ROLE_EMBED:
        case ROLE_BN_SCALE: op->w = p, op->dw = g; break;
        case ROLE_BIAS:
        case ROLE_BN_SHIFT: op->b = p, op->db = g; break;
        case ROLE_BN_MEAN: op->rmean = p; break;
        case ROLE_BN_VAR: op->rvar = p; break;
        }
    }
    nn_net_init(net, 0);
    *out = net;
    return 0;
}

void nn_net_free(nn_net *net) {
    if (!net) return;
    free(net->spec.text);
    free(net->params);
    free(net->grads);
    free(net->buffers);
    free(net->arena);
    free(net);
}

const nn_spec *nn_net_spec(const nn_net *net) { return &net->spec; }
int nn_net_max_batch(const nn_net *net) { return net->max_batch; }
size_t nn_net_param_count(const nn_net *net) { return net->n_params; }
size_t nn_net_buffer_count(const nn_net *net) { return net->n_buffers; }
float *nn_net_params(nn_net *net) { return net->params; }
float *nn_net_grads(nn_net *net) { return net->grads; }
float *nn_net_buffers(nn_net *net) { return net->buffers; }
int nn_net_tensor_count(const nn_net *net) { return net->n_tensors; }
const nn_tensor *nn_net_tensor(const nn_net *net, int i) {
    return i >= 0 && i < net->n_tensors ? &net->tensors[i] : NULL;
}

/* The activation that follows weight layer i (skipping batch norm, dropout, pooling and flatten): 1 for the ReLU
 * family (He init), 0 otherwise (Glorot). */
static int relu_family_after(const nn_net *net, int i) {
    for (int j = i + 1; j < net->n_ops; j++) {
        nn_kind k = net->ops[j].kind;
        if (k == NN_RELU || k == NN_LEAKYRELU) return 1;
        if (k == NN_BATCHNORM || k == NN_DROPOUT || k == NN_MAXPOOL || k == NN_AVGPOOL || k == NN_FLATTEN) continue;
        return 0;
    }
    return 0;
}

void nn_net_init(nn_net *net, uint64_t seed) {
    for (int t = 0; t < net->n_tensors; t++) {
        const nn_tensor *T = &net->tensors[t];
        float *p = T->is_buffer ? net->buffers + T->offset : net->params + T->offset;
        float v = 0.0f;
        switch (net->roles[t]) {
        case ROLE_WEIGHT: {
            const nn_op *op = &net->ops[T->layer];
            double fan_in, fan_out;
            if (op->kind == NN_CONV) {
                fan_in = (double)op->cd.KH * op->cd.KW * op->cd.C;
                fan_out = (double)op->cd.KH * op->cd.KW * op->cd.OC;
            } else if (op->kind == NN_DECONV) { /* an output pixel sums about C KH KW / stride^2 products */
                fan_in = (double)op->dd.KH * op->dd.KW * op->dd.C / ((double)op->dd.stride * op->dd.stride);
                fan_out = (double)op->dd.KH * op->dd.KW * op->dd.OC;
            } else {
                fan_in = (double)op->in_n;
                fan_out = (double)op->oc;
            }
            float limit = (float)(relu_family_after(net, T->layer) ? sqrt(6.0 / fan_in) : sqrt(6.0 / (fan_in + fan_out)));
            dg_rng r = dg_rng_make(seed, DG_RNG_INIT, 0, (uint32_t)t);
            for (size_t i = 0; i < T->count; i++) p[i] = dg_rng_range(&r, -limit, limit);
            continue;
        }
        case ROLE_EMBED: { /* variance 1, as PyTorch's nn.Embedding (N(0, 1)) */
            const float limit = sqrtf(3.0f);
            dg_rng r = dg_rng_make(seed, DG_RNG_INIT, 0, (uint32_t)t);
            for (size_t i = 0; i < T->count; i++) p[i] = dg_rng_range(&r, -limit, limit);
            continue;
        }
        case ROLE_BN_SCALE:
        case ROLE_BN_VAR: v = 1.0f; break;
        default: v = 0.0f; break;
        }
        for (size_t i = 0; i < T->count; i++) p[i] = v;
    }
}

const float *nn_net_forward(nn_net *net, const float *x, int B, int training, uint64_t seed, uint64_t step) {
    return nn_net_forward_cond(net, x, NULL, B, training, seed, step);
}

const float *nn_net_forward_cond(nn_net *net, const float *x, const uint8_t *labels, int B, int training,
                                 uint64_t seed, uint64_t step) {
    if (B < 1 || B > net->max_batch) return NULL;
    if (net->has_embed) {
        if (!labels) return NULL;
        for (int i = 0; i < net->n_ops; i++)
            if (net->ops[i].kind == NN_EMBED)
                for (int b = 0; b < B; b++)
                    if (labels[b] >= net->ops[i].classes) return NULL;
        memcpy(net->cond, labels, (size_t)B);
    }
    const nn_spec *s = &net->spec;
    memcpy(net->input, x, sizeof(float) * B * s->in_h * s->in_w * s->in_c);
    float *cur = net->input;
    for (int i = 0; i < net->n_ops; i++) {
        nn_op *op = &net->ops[i];
        float *y = op->buf;
        size_t N = (size_t)B * op->oh * op->ow; /* rows of (N, C) */
        op->x = cur;
        switch (op->kind) {
        case NN_CONV:
        case NN_DENSE: {
            double *st = training && op->stats_to >= 0 ? net->ops[op->stats_to].stats : NULL;
            if (op->kind == NN_CONV)
                nn_conv2d_forward(y, st, net->scratch, cur, op->w, op->b, B, &op->cd, op->act, op->slope);
            else
                nn_dense_forward(y, st, net->scratch, cur, op->w, op->b, B, (int)op->in_n, op->oc, op->act,
                                 op->slope);
            break;
        }
        case NN_DECONV: {
            double *st = training && op->stats_to >= 0 ? net->ops[op->stats_to].stats : NULL;
            nn_deconv2d_forward(y, st, net->scratch, cur, op->w, op->b, B, &op->dd, op->act, op->slope);
            break;
        }
        case NN_EMBED:
            nn_embed_forward(y, cur, op->w, net->cond, B, (size_t)op->ih * op->iw, op->ic, op->dim);
            break;
        case NN_BATCHNORM:
            if (training) {
                if (!op->bn_fused_stats) nn_batchnorm_stats(op->stats, net->scratch, cur, N, op->oc);
                nn_batchnorm_forward_train(y, op->mean, op->invstd, op->rmean, op->rvar, net->scratch, op->stats, cur,
                                           op->w, op->b, N, op->oc, op->momentum, op->eps);
            } else {
                nn_batchnorm_forward_eval(y, op->mean, op->invstd, net->scratch, cur, op->w, op->b, op->rmean,
                                          op->rvar, N, op->oc, op->eps);
            }
            break;
        case NN_DROPOUT:
            op->dropped = training && op->rate > 0.0f;
            if (op->dropped)
                nn_dropout_forward(y, op->mask, cur, B, op->out_n, op->rate, seed, step, (uint32_t)i);
            else
                y = cur;
            break;
        case NN_RELU:
        case NN_LEAKYRELU:
        case NN_TANH:
        case NN_SIGMOID:
            if (op->fused)
                y = cur;
            else
                nn_act_forward(y, cur, (size_t)B * op->out_n, op->act, op->slope);
            break;
        case NN_MAXPOOL:
            nn_maxpool_forward(y, op->argmax, cur, B, op->ih, op->iw, op->ic, op->size, op->stride, op->oh, op->ow);
            break;
        case NN_AVGPOOL:
            nn_avgpool_forward(y, cur, B, op->ih, op->iw, op->ic, op->size, op->stride, op->oh, op->ow);
            break;
        default: y = cur; break; /* flatten */
        }
        op->y = y;
        cur = y;
    }
    net->logits = cur;
    net->last_B = B;
    net->last_training = training;
    net->have_loss = 0;
    return cur;
}

const float *nn_net_probs(nn_net *net) {
    if (!net->logits || net->spec.output != NN_OUT_CLASSES) return NULL;
    nn_softmax(net->probs, net->logits, net->last_B, N_CLASSES);
    return net->probs;
}

float nn_net_loss(nn_net *net, const uint8_t *labels, int B, float label_smoothing, int *correct) {
    if (!net->logits || B != net->last_B || net->spec.output != NN_OUT_CLASSES) return NAN;
    float loss = nn_softmax_xent(net->probs, net->gbuf[0], correct, net->logits, labels, B, N_CLASSES,
                                 label_smoothing);
    net->have_loss = 1;
    return loss;
}

float nn_net_loss_bce(nn_net *net, const float *targets, int B) {
    if (!net->logits || B != net->last_B || net->spec.output != NN_OUT_LOGIT) return NAN;
    for (int b = 0; b < B; b++)
        if (!(targets[b] >= 0.0f && targets[b] <= 1.0f)) return NAN;
    float loss = nn_bce_logits(net->gbuf[0], net->logits, targets, B);
    net->have_loss = 1;
    return loss;
}

int nn_net_output_grad(nn_net *net, const float *dout, int B) {
    if (!net->logits || B != net->last_B) return -1;
    memcpy(net->gbuf[0], dout, sizeof(float) * (size_t)B * net->out_n);
    net->have_loss = 1;
    return 0;
}

/* The backward pass; with dinput (B, in_n) not NULL every op produces its input gradient (need), down to the
 * network's input. params 0: no parameter gradients, only what leads to dinput (batch norm's are cheap and kept). */
static void backward(nn_net *net, float *dinput, int params) {
    if (!net->have_loss) return;
    const int B = net->last_B, all = dinput != NULL;
#define NEED_DX(o) ((o)->need_dx || all)
    int gi = 0;
    float *g = net->gbuf[0];
    for (int i = net->n_ops - 1; i >= 0; i--) {
        nn_op *op = &net->ops[i];
        if (!NEED_DX(op) && !op->has_params) break; /* nothing before this op has parameters */
        float *other = net->gbuf[gi ^ 1], *dx = NEED_DX(op) ? other : NULL;
        size_t N = (size_t)B * op->oh * op->ow;
        /* a conv/dense whose batch norm already applied its activation derivative and summed its bias gradient */
        int done = op->grad_from >= 0 && NEED_DX(&net->ops[op->grad_from]);
        float *dw = params ? op->dw : NULL, *db = params ? op->db : NULL;
        switch (op->kind) {
        case NN_CONV:
            nn_conv2d_backward(dx, dw, done ? NULL : db, net->scratch, g, op->y, op->x, op->w, B, &op->cd,
                               done ? NN_ACT_NONE : op->act, op->slope);
            break;
        case NN_DENSE:
            nn_dense_backward(dx, dw, done ? NULL : db, net->scratch, g, op->y, op->x, op->w, B, (int)op->in_n, op->oc,
                              done ? NN_ACT_NONE : op->act, op->slope);
            break;
        case NN_DECONV:
            nn_deconv2d_backward(dx, dw, done ? NULL : db, net->scratch, g, op->y, op->x, op->w, B, &op->dd,
                                 done ? NN_ACT_NONE : op->act, op->slope);
            break;
        case NN_EMBED:
            nn_embed_backward(dx, dw, g, net->cond, B, (size_t)op->ih * op->iw, op->ic, op->dim, op->classes);
            break;
        case NN_BATCHNORM: {
            /* fused with the conv/dense before it (see plan_fusion): its activation derivative and bias gradient */
            const nn_op *p = op->bn_fused_stats ? &net->ops[i - 1 - (net->ops[i - 1].fused ? 1 : 0)] : NULL;
            nn_batchnorm_backward(NEED_DX(op) ? g : NULL, op->dw, op->db, p ? p->db : NULL, net->scratch, g, op->x,
                                  op->mean, op->invstd, op->w, N, op->oc, net->last_training,
                                  p ? p->act : NN_ACT_NONE, p ? p->slope : 0.0f);
            dx = NULL;
            break;
        }
        case NN_DROPOUT:
            if (op->dropped) nn_dropout_backward(g, g, op->mask, B, op->out_n, op->rate);
            dx = NULL;
            break;
        case NN_RELU:
        case NN_LEAKYRELU:
        case NN_TANH:
        case NN_SIGMOID:
            if (!op->fused) nn_act_backward(g, g, op->y, (size_t)B * op->out_n, op->act, op->slope);
            dx = NULL;
            break;
        case NN_MAXPOOL:
            if (dx) nn_maxpool_backward(dx, g, op->argmax, B, op->ih, op->iw, op->ic, op->oh, op->ow);
            break;
        case NN_AVGPOOL:
            if (dx) nn_avgpool_backward(dx, g, B, op->ih, op->iw, op->ic, op->size, op->stride, op->oh, op->ow);
            break;
        default: dx = NULL; break; /* flatten */
        }
        if (dx) {
            g = dx;
            gi ^= 1;
        }
    }
    if (dinput) memcpy(dinput, g, sizeof(float) * (size_t)B * net->spec.in_h * net->spec.in_w * net->spec.in_c);
#undef NEED_DX
}

void nn_net_backward(nn_net *net) { backward(net, NULL, 1); }

void nn_net_backward_input(nn_net *net, float *dx) { backward(net, dx, 1); }

void nn_net_input_grad(nn_net *net, float *dx) { backward(net, dx, 0); }

/* Forward FLOPs per image of op i (multiply-add = 2). */
static uint64_t op_flops(const nn_op *op) {
    uint64_t out = op->out_n;
    switch (op->kind) {
    case NN_CONV: return out * (2ull * op->cd.KH * op->cd.KW * op->cd.C + 1);
    case NN_DECONV: /* the multiply-adds of the convolution it is the input gradient of, plus the bias */
        return (uint64_t)op->dd.H * op->dd.W * op->dd.C * 2ull * op->dd.KH * op->dd.KW * op->dd.OC + out;
    case NN_DENSE: return out * (2ull * op->in_n + 1);
    case NN_BATCHNORM: return 2 * out;
    case NN_MAXPOOL:
    case NN_AVGPOOL: return out * (uint64_t)op->size * op->size;
    case NN_RELU:
    case NN_LEAKYRELU:
    case NN_TANH:
    case NN_SIGMOID: return out;
    default: return 0; /* dropout is free in inference, flatten is free */
    }
}

uint64_t nn_net_flops(const nn_net *net) {
    uint64_t f = 0;
    for (int i = 0; i < net->n_ops; i++) f += op_flops(&net->ops[i]);
    return f;
}

static size_t op_params(const nn_net *net, int i) {
    size_t n = 0;
    for (int t = 0; t < net->n_tensors; t++)
        if (net->tensors[t].layer == i && !net->tensors[t].is_buffer) n += net->tensors[t].count;
    return n;
}

void nn_net_summary(const nn_net *net, FILE *out) {
    const nn_spec *s = &net->spec;
    fprintf(out, "model %s: input %dx%dx%d (HxWxC), batches up to %d\n", s->name[0] ? s->name : "?", s->in_h, s->in_w,
            s->in_c, net->max_batch);
    fprintf(out, "%3s  %-28s %-14s %10s %14s\n", "#", "layer", "output", "params", "FLOPs");
    for (int i = 0; i < net->n_ops; i++) {
        const nn_op *op = &net->ops[i];
        char what[64], shape[32];
        switch (op->kind) {
        case NN_CONV:
            snprintf(what, sizeof what, "conv %d %dx%d stride %d pad %d", op->cd.OC, op->cd.KH, op->cd.KW,
                     op->cd.stride, op->cd.pad);
            break;
        case NN_DENSE: snprintf(what, sizeof what, "dense %d", op->oc); break;
        case NN_DECONV:
            snprintf(what, sizeof what, "deconv %d %dx%d stride %d pad %d", op->dd.OC, op->dd.KH, op->dd.KW,
                     op->dd.stride, op->dd.pad);
            break;
        case NN_EMBED: snprintf(what, sizeof what, "embed %d x %d", op->classes, op->dim); break;
        case NN_MAXPOOL:
        case NN_AVGPOOL:
            snprintf(what, sizeof what, "%s %dx%d stride %d", kind_name(op->kind), op->size, op->size, op->stride);
            break;
        case NN_DROPOUT: snprintf(what, sizeof what, "dropout %g", (double)op->rate); break;
        case NN_LEAKYRELU: snprintf(what, sizeof what, "leakyrelu %g", (double)op->slope); break;
        default: snprintf(what, sizeof what, "%s", kind_name(op->kind)); break;
        }
        snprintf(shape, sizeof shape, "%dx%dx%d", op->oh, op->ow, op->oc);
        fprintf(out, "%3d  %-28s %-14s %10zu %14llu\n", i + 1, what, shape, op_params(net, i),
                (unsigned long long)op_flops(op));
    }
    fprintf(out, "total: %zu trainable parameters, %zu buffer values, %llu forward FLOPs per image (%.2f MFLOP)\n",
            net->n_params, net->n_buffers, (unsigned long long)nn_net_flops(net), (double)nn_net_flops(net) / 1e6);
}

size_t nn_net_output_count(const nn_net *net) { return net->out_n; }

const float *nn_net_layer_input(const nn_net *net, int layer, size_t *in_n) {
    *in_n = 0;
    if (!net->logits || layer < 0 || layer >= net->n_ops) return NULL;
    const nn_op *op = &net->ops[layer];
    *in_n = op->in_n;
    return op->x;
}
