/* digits-gan: train a conditional GAN on a labelled dataset, or sample labelled digits from one (nn/gan_cli.h).
 * Exit 0 on success, 1 on failure, 2 on a usage error. */
#include <stdio.h>

#include "core/dg_cli.h"
#include "nn/gan_cli.h"

int main(int argc, char **argv) {
    dg_stage_init("digits-gan", argv);
    nn_gan_cli_opts o;
    dg_err err = {{0}};
    int rc = nn_gan_cli_parse(argc, argv, &o, &err);
    if (rc == DG_EXIT_OK && o.help) {
        nn_gan_cli_usage(stdout);
        return DG_EXIT_OK;
    }
    if (rc == DG_EXIT_OK) {
        dg_set_threads(o.threads);
        rc = nn_gan_cli_run(&o, &err);
    }
    return dg_cli_exit("digits-gan", rc, &err);
}
