/* net_speed: training and inference throughput of nn/net (forward + loss + backward + Adam step per batch) on
 * random inputs, for the shipped deotte, mlp800 and lenet5 architectures or any spec file. Prints training images
 * per second (over the whole run, and from the median and fastest step: on a shared machine those are less
 * disturbed by other processes) and inference images per second. With --ema D each step also updates a moving
 * average of the weights and batch-norm statistics (nn/ema.h, as digits-train's ema=D), timed on its own.
 *
 * usage: net_speed [--model deotte|mlp800|lenet5|PATH.spec] [--batch B] [--threads T] [--seconds S] [--ema D]
 */
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/ema.h"
#include "nn/net.h"
#include "nn/optim.h"
#include "nn/spec.h"
#include "core/dg_cli.h"
#include "core/dg_rng.h"
#include "bench_time.h"

static const char *const DEOTTE =
    "name deotte\ninput 1x28x28\n"
    "conv filters=32 size=3\nrelu\nbatchnorm\nconv filters=32 size=3\nrelu\nbatchnorm\n"
    "conv filters=32 size=5 stride=2 pad=2\nrelu\nbatchnorm\ndropout rate=0.4\n"
    "conv filters=64 size=3\nrelu\nbatchnorm\nconv filters=64 size=3\nrelu\nbatchnorm\n"
    "conv filters=64 size=5 stride=2 pad=2\nrelu\nbatchnorm\ndropout rate=0.4\n"
    "conv filters=128 size=4\nrelu\nbatchnorm\nflatten\ndropout rate=0.4\ndense units=10\n"
    "train optimizer=adam lr=0.001\n";
static const char *const MLP800 =
    "name mlp800\ninput 1x28x28\nflatten\ndense units=800\nrelu\ndense units=10\ntrain optimizer=adam lr=0.001\n";
static const char *const LENET5 =
    "name lenet5\ninput 1x28x28\nconv filters=6 size=5 pad=2\ntanh\navgpool size=2\nconv filters=16 size=5\ntanh\n"
    "avgpool size=2\nflatten\ndense units=120\ntanh\ndense units=84\ntanh\ndense units=10\n"
    "train optimizer=adam lr=0.001\n";

int main(int argc, char **argv) {
    const char *model = "deotte";
    int batch = 64, threads = 2;
    double seconds = 3.0, ema_d = 0;
    int infer_too = 1;
    static const struct option opts[] = {{"model", required_argument, 0, 'm'}, {"batch", required_argument, 0, 'b'},
                                         {"threads", required_argument, 0, 't'},
                                         {"seconds", required_argument, 0, 's'}, {"help", no_argument, 0, 'h'},
                                         {"train-only", no_argument, 0, 'T'}, {"ema", required_argument, 0, 'e'},
                                         {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "m:b:t:s:hTe:", opts, NULL)) != -1;) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'b': batch = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'T': infer_too = 0; break;
        case 'e': ema_d = atof(optarg); break;
        case 'h':
            printf("usage: net_speed [--model deotte|mlp800|lenet5|PATH.spec (%s)] [--batch B (%d)] [--threads T (%d)]"
                   " [--seconds S (%g)] [--train-only] [--ema D (0: off)]\n",
                   model, batch, threads, seconds);
            return 0;
        default: return 2;
        }
    }
    if (batch < 1 || threads < 1 || !(ema_d >= 0 && ema_d < 1)) return 2;
    dg_set_threads(threads); /* as the stages: OpenBLAS on one thread if it is not the OpenMP build */
    nn_spec spec;
    dg_err err;
    int rc;
    if (strcmp(model, "deotte") == 0)
        rc = nn_spec_parse(&spec, DEOTTE, "deotte", &err);
    else if (strcmp(model, "mlp800") == 0)
        rc = nn_spec_parse(&spec, MLP800, "mlp800", &err);
    else if (strcmp(model, "lenet5") == 0)
        rc = nn_spec_parse(&spec, LENET5, "lenet5", &err);
    else
        rc = nn_spec_load(&spec, model, &err);
    nn_net *net;
    if (rc != 0 || nn_net_create(&net, &spec, batch, &err) != 0) {
        fprintf(stderr, "net_speed: %s\n", err.msg);
        return 1;
    }
    nn_net_init(net, 1);
    nn_optim opt;
    if (nn_optim_init(&opt, &spec.hyper, nn_net_param_count(net), NULL, 0, &err) != 0) {
        fprintf(stderr, "net_speed: %s\n", err.msg);
        return 1;
    }
    size_t in_n = (size_t)spec.in_h * spec.in_w * spec.in_c;
    float *x = malloc(sizeof(float) * batch * in_n);
    uint8_t *y = malloc((size_t)batch);
    dg_rng r = dg_rng_make(1, DG_RNG_USER, 0, 0);
    for (size_t i = 0; i < batch * in_n; i++) x[i] = dg_rng_uniform(&r);
    for (int i = 0; i < batch; i++) y[i] = (uint8_t)dg_rng_below(&r, 10);
    size_t np = nn_net_param_count(net), nb = nn_net_buffer_count(net);
    float *ema = ema_d > 0 ? malloc((np + nb) * sizeof(float)) : NULL;
    if (ema) {
        memcpy(ema, nn_net_params(net), np * sizeof(float));
        memcpy(ema + np, nn_net_buffers(net), nb * sizeof(float));
    }

    /* mean over the run, and the median step: on a shared machine the median is less disturbed by others */
    double t0 = 0, loss = 0, times[4096], ema_times[4096];
    long steps = 0;
    for (long s = 0;; s++) {
        double ts = now();
        if (s == 3) t0 = ts;
        nn_net_forward(net, x, batch, 1, 1, (uint64_t)s);
        loss = nn_net_loss(net, y, batch, 0.0f, NULL);
        nn_net_backward(net);
        nn_optim_step(&opt, nn_net_params(net), nn_net_grads(net), 1e-3f);
        double te = now();
        if (ema) {
            float d = nn_ema_decay((float)ema_d, opt.t);
            nn_ema_update(ema, nn_net_params(net), np, d);
            nn_ema_update(ema + np, nn_net_buffers(net), nb, d);
        }
        if (s >= 3) {
            double t1 = now();
            ema_times[steps % 4096] = t1 - te;
            times[steps++ % 4096] = t1 - ts;
            if (now() - t0 >= seconds) break;
        }
    }
    double train = steps * batch / (now() - t0);
    long nt = steps < 4096 ? steps : 4096;
    qsort(times, (size_t)nt, sizeof(double), cmp_double);
    qsort(ema_times, (size_t)nt, sizeof(double), cmp_double);
    double train_median = batch / times[nt / 2], train_best = batch / times[0];
    long ni = 0;
    t0 = now();
    while (infer_too && now() - t0 < seconds / 2) {
        nn_net_forward(net, x, batch, 0, 0, 0);
        ni++;
    }
    double infer = infer_too ? ni * batch / (now() - t0) : 0.0;
    printf("model=%s batch=%d threads=%d train_img_s=%.0f (median step %.0f, best %.0f) infer_img_s=%.0f (loss %.3f, "
           "%.1f MFLOP/image fwd)\n",
           spec.name, batch, threads, train, train_median, train_best, infer, loss, (double)nn_net_flops(net) / 1e6);
    if (ema)
        printf("ema=%g over %zu params + %zu buffers: median %.1f us per step = %.3f%% of the median step (%.1f ms)\n",
               ema_d, np, nb, 1e6 * ema_times[nt / 2], 100 * ema_times[nt / 2] / times[nt / 2], 1e3 * times[nt / 2]);
    nn_optim_free(&opt);
    nn_net_free(net);
    nn_spec_free(&spec);
    free(x);
    free(y);
    free(ema);
    return 0;
}
