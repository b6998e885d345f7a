/* nn/optim: optimizers on ONE flat parameter vector (PyTorch semantics, so runs compare with torch.optim).
 *
 *   sgd       p -= lr * g
 *   momentum  b = mu * b + g;                p -= lr * b                        (torch SGD, dampening 0)
 *   nesterov  b = mu * b + g;                p -= lr * (g + mu * b)             (torch SGD, nesterov=True)
 *   adam      m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *             p -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps)        (torch Adam)
 *   adamw     p *= 1 - lr * wd, then the adam step without wd in g             (torch AdamW)
 *
 * Regularization is per range of the vector (one range per nn_tensor): g += l2 * p where l2 is the coupled L2
 * (spec weight_decay for sgd/momentum/nesterov/adam, plus the layer's l2=), and the decoupled decay of AdamW.
 * Both apply only to tensors with decay = 1 (weights); biases and batch-norm parameters are never decayed.
 * Optimizer state (momentum buffer, or Adam's m and v) lives in ONE allocation of the same layout as the params.
 * Not here: learning-rate schedules (nn/schedule.h).
 */
#ifndef NN_OPTIM_H
#define NN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "nn/spec.h"
#include "core/dg_err.h"

typedef struct nn_optim_range {
    size_t offset, count; /* floats, into the parameter vector */
    float l2;             /* coupled L2: g += l2 * p */
    float decay;          /* decoupled weight decay (AdamW): p *= 1 - lr * decay */
} nn_optim_range;

typedef struct nn_optim {
    nn_optimizer kind;
    float momentum, beta1, beta2, eps;
    size_t n;             /* parameters */
    float *state;         /* momentum: (n) buffer; adam/adamw: (2, n) m then v; sgd: NULL */
    size_t state_count;   /* floats in state */
    uint64_t t;           /* steps taken so far */
    int n_ranges;
    nn_optim_range *ranges; /* sorted, covering [0, n) exactly (gaps filled with l2 = decay = 0) */
} nn_optim;

/* The regularization of one tensor under hyperparameters h: decay_flag from nn_tensor.decay, layer_l2 from the
 * spec's l2= of its layer. */
nn_optim_range nn_optim_range_make(const nn_hyper *h, size_t offset, size_t count, int decay_flag, float layer_l2);

/* Set up for n parameters; ranges (may be NULL/0) must not overlap or leave [0, n). State starts at zero. */
int nn_optim_init(nn_optim *o, const nn_hyper *h, size_t n, const nn_optim_range *ranges, int n_ranges,
                  dg_err *err);
void nn_optim_free(nn_optim *o);

/* One update of params (n) from grads (n) at learning rate lr (grads are not modified). Element-wise, so the
 * result does not depend on the thread count. */
void nn_optim_step(nn_optim *o, float *params, const float *grads, float lr);

#endif
