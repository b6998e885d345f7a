/* gan_speed: forward + backward throughput of a small conditional DCGAN generator in nn/net (no optimizer step),
 * beside bench/gan_peer.py (the same network in PyTorch); bench/gan_bench.sh runs both.
 *
 * The generator: noise 100 + a 10-value label embedding -> dense 7x7x128 -> batch norm, ReLU -> deconv 64 4x4
 * stride 2 (14x14x64) -> batch norm, ReLU -> deconv 1 4x4 stride 2 (28x28x1) -> tanh. Each step: forward in
 * training mode, a fixed output gradient (as a discriminator would give), backward to every parameter. Prints
 * images per second over the run and from the median and fastest step (less disturbed on a shared machine).
 *
 * usage: gan_speed [--batch B (64)] [--threads T (2)] [--seconds S (5)]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nn/net.h"
#include "nn/spec.h"
#include "core/dg_cli.h"
#include "core/dg_rng.h"
#include "bench_time.h"

static const char *const GEN =
    "name dcgan_g\ninput 100x1x1\noutput image\n"
    "embed classes=10 dim=10\ndense units=6272\nreshape c=128 h=7 w=7\nbatchnorm\nrelu\n"
    "deconv filters=64 size=4 stride=2 pad=1\nbatchnorm\nrelu\n"
    "deconv filters=1 size=4 stride=2 pad=1\ntanh\n";

int main(int argc, char **argv) {
    int batch = 64, threads = 2;
    double seconds = 5.0;
    static const struct option opts[] = {{"batch", required_argument, 0, 'b'},
                                         {"threads", required_argument, 0, 't'},
                                         {"seconds", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "b:t:s:h", opts, NULL)) != -1;) {
        switch (c) {
        case 'b': batch = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'h':
            printf("usage: gan_speed [--batch B (%d)] [--threads T (%d)] [--seconds S (%g)]\n", batch, threads,
                   seconds);
            return 0;
        default: return 2;
        }
    }
    if (batch < 1 || threads < 1 || !(seconds > 0)) return 2;
    dg_set_threads(threads);
    nn_spec spec;
    dg_err err;
    nn_net *net;
    if (nn_spec_parse(&spec, GEN, "dcgan_g", &err) != 0 || nn_net_create(&net, &spec, batch, &err) != 0) {
        fprintf(stderr, "gan_speed: %s\n", err.msg);
        return 1;
    }
    nn_net_init(net, 1);
    const size_t out_n = nn_net_output_count(net);
    float *z = malloc(sizeof(float) * batch * 100), *dout = malloc(sizeof(float) * batch * out_n);
    uint8_t *labels = malloc((size_t)batch);
    dg_rng r = dg_rng_make(1, DG_RNG_USER, 0, 0);
    for (int i = 0; i < batch * 100; i++) z[i] = dg_rng_range(&r, -1, 1);
    for (size_t i = 0; i < batch * out_n; i++) dout[i] = dg_rng_range(&r, -1e-3f, 1e-3f);
    for (int i = 0; i < batch; i++) labels[i] = (uint8_t)(i % 10);
    double t0 = 0, times[4096];
    long steps = 0;
    for (long s = 0;; s++) {
        double ts = now();
        if (s == 3) t0 = ts;
        nn_net_forward_cond(net, z, labels, batch, 1, 1, (uint64_t)s);
        nn_net_output_grad(net, dout, batch);
        nn_net_backward(net);
        if (s >= 3) {
            times[steps++ % 4096] = now() - ts;
            if (now() - t0 >= seconds) break;
        }
    }
    double rate = steps * batch / (now() - t0);
    long nt = steps < 4096 ? steps : 4096;
    qsort(times, (size_t)nt, sizeof(double), cmp_double);
    printf("impl=c batch=%d threads=%d fwd_bwd_img_s=%.0f (median step %.0f, best %.0f) steps=%ld (%.2f MFLOP/image "
           "fwd)\n",
           batch, threads, rate, batch / times[nt / 2], batch / times[0], steps, (double)nn_net_flops(net) / 1e6);
    nn_net_free(net);
    nn_spec_free(&spec);
    free(z), free(dout), free(labels);
    return 0;
}
