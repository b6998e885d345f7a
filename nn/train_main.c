/* digits-train: train one model on a labelled dataset into a run directory (see nn/train.h for the directory).
 * Parse, set threads, run; the options and the work are nn/train_cli.h. Exit 0 once result.json is written (or the
 * --summary printed), 1 on failure, 2 on a usage error. */
#include <stdio.h>

#include "core/dg_cli.h"
#include "nn/train_cli.h"

int main(int argc, char **argv) {
    dg_stage_init("digits-train", argv);
    nn_train_cli_opts o;
    dg_err err = {{0}};
    int rc = nn_train_cli_parse(argc, argv, &o, &err);
    if (rc == DG_EXIT_OK && o.help) {
        nn_train_cli_usage(stdout);
        return DG_EXIT_OK;
    }
    if (rc == DG_EXIT_OK) {
        o.out = stdout;
        dg_set_threads(o.threads);
        rc = nn_train_cli_run(&o, &err);
    }
    return dg_cli_exit("digits-train", rc, &err);
}
