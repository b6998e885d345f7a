/* digits-augment: expand a dataset with random distortions, or regenerate one from stored parameters.
 * Parse, set threads, run; the options and the work are augment/augment_cli.h. Exit 0 done, 1 failure (nothing
 * written), 2 usage error. */
#include <stdio.h>

#include "augment/augment_cli.h"
#include "core/dg_cli.h"

int main(int argc, char **argv) {
    dg_stage_init("digits-augment", argv);
    aug_cli_opts o;
    dg_err err = {{0}};
    int rc = aug_cli_parse(argc, argv, &o, &err);
    if (rc == DG_EXIT_OK && o.help) {
        aug_cli_usage(stdout);
        return DG_EXIT_OK;
    }
    if (rc == DG_EXIT_OK) {
        dg_set_threads((int)o.threads);
        rc = aug_cli_run(&o, &err);
    }
    return dg_cli_exit("digits-augment", rc, &err);
}
