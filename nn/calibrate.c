/* nn/calibrate: timed training and inference steps on synthetic images (see nn/calibrate.h). */
#include "nn/calibrate.h"

#include <stdlib.h>
#include <string.h>

#include "augment/augment.h"
#include "core/dg_dataset.h"
#include "core/dg_progress.h"
#include "core/dg_rng.h"
#include "nn/net.h"
#include "nn/optim.h"
#include "nn/schedule.h"

int nn_calibrate(const nn_train_opts *o, double seconds, nn_calibration *c, dg_err *err) {
    memset(c, 0, sizeof *c);
    nn_spec spec;
    int rc = nn_train_spec(&spec, o, err);
    if (rc != 0) return rc;
    if ((rc = nn_train_spec_fits(&spec, err)) != 0) { /* the synthetic batch below is 1x28x28 digits */
        nn_spec_free(&spec);
        return rc;
    }
    const nn_hyper *h = &spec.hyper;
    int B = h->batch;
    aug_policy *policy = NULL;
    nn_net *net = NULL;
    nn_optim opt;
    memset(&opt, 0, sizeof opt);
    nn_optim_range *ranges = NULL;
    uint8_t *pix = malloc((size_t)B * DG_PIXELS), *y = malloc((size_t)B);
    const uint8_t **src = malloc((size_t)B * sizeof *src);
    uint32_t *ids = malloc((size_t)B * sizeof *ids);
    float *x = malloc((size_t)B * DG_PIXELS * sizeof *x);
    rc = -1;
    if (!pix || !y || !src || !ids || !x) {
        dg_fail(err, "out of memory");
        goto done;
    }
    if (h->augment[0] && aug_policy_load(&policy, h->augment, err) != 0) {
        rc = NN_TRAIN_USAGE;
        goto done;
    }
    if (nn_net_create(&net, &spec, B, err) != 0) goto done;
    nn_net_init(net, o->seed);
    int nt = nn_net_tensor_count(net), nr = 0;
    ranges = malloc(((size_t)nt + 1) * sizeof *ranges);
    if (!ranges) {
        dg_fail(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < nt; i++) {
        const nn_tensor *t = nn_net_tensor(net, i);
        if (!t->is_buffer) ranges[nr++] = nn_optim_range_make(h, t->offset, t->count, t->decay, t->l2);
    }
    if (nn_optim_init(&opt, h, nn_net_param_count(net), ranges, nr, err) != 0) goto done;
    /* Synthetic digits: a bright square at a random place on a dark background, random labels. Their flat
     * activations make every data-dependent branch predictable, so a kernel that branches on values is timed
     * here faster than it runs on real digits (max pooling did: vgg-ls's epochs ran 8-11% over their plan, see
     * bench/RESULTS.md, "Max pooling without branches"): kernels select. */
    dg_rng rng = dg_rng_make(o->seed, DG_RNG_USER, 0, 0);
    for (int i = 0; i < B; i++) {
        uint8_t *im = pix + (size_t)i * DG_PIXELS;
        memset(im, 0, DG_PIXELS);
        int r0 = 4 + (int)dg_rng_below(&rng, 10), c0 = 4 + (int)dg_rng_below(&rng, 10);
        for (int r = r0; r < r0 + 10; r++) memset(im + r * DG_SIDE + c0, 255, 10);
        src[i] = im;
        ids[i] = (uint32_t)i;
        y[i] = (uint8_t)dg_rng_below(&rng, DG_CLASSES);
    }
    nn_sched sched;
    nn_sched_init(&sched);
    float lr = nn_sched_lr(h, &sched, 0, 0, 1);
    double t0 = 0;
    for (int s = 0;; s++) {
        if (s == 1) t0 = dg_now();
        if (s > 3 && dg_now() - t0 >= seconds) {
            c->train_steps = s - 1;
            c->train_ips = (double)c->train_steps * B / (dg_now() - t0);
            break;
        }
        if (policy) aug_batch_f32(policy, o->seed, (uint32_t)s, ids, src, x, B);
        else
            for (size_t k = 0; k < (size_t)B * DG_PIXELS; k++) x[k] = (float)pix[k] / 255.0f;
        nn_net_forward(net, x, B, 1, o->seed, (uint64_t)s);
        nn_net_loss(net, y, B, h->label_smoothing, NULL);
        nn_net_backward(net);
        nn_optim_step(&opt, nn_net_params(net), nn_net_grads(net), lr);
    }
    for (int s = 0;; s++) {
        if (s == 1) t0 = dg_now();
        if (s > 3 && dg_now() - t0 >= seconds / 4) {
            c->predict_steps = s - 1;
            c->predict_ips = (double)c->predict_steps * B / (dg_now() - t0);
            break;
        }
        for (size_t k = 0; k < (size_t)B * DG_PIXELS; k++) x[k] = (float)pix[k] / 255.0f;
        nn_net_forward(net, x, B, 0, 0, 0);
    }
    c->batch = B;
    rc = 0;
done:
    free(ranges);
    nn_optim_free(&opt);
    if (net) nn_net_free(net);
    if (policy) aug_policy_free(policy);
    nn_spec_free(&spec);
    free(pix);
    free(y);
    free(src);
    free(ids);
    free(x);
    return rc;
}
