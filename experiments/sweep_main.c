/* digits-sweep: a hyperparameter sweep of digits-train runs (see experiments/sweep_cli.h, docs/sweeps.md). */
#include <stdio.h>

#include "core/dg_cli.h"
#include "experiments/sweep_cli.h"

int main(int argc, char **argv) {
    dg_stage_init("digits-sweep", argv);
    sw_cli_opts o;
    dg_err err = {{0}};
    int rc = sw_cli_parse(argc, argv, &o, &err);
    if (rc == DG_EXIT_OK && o.help) {
        sw_cli_usage(stdout);
        return DG_EXIT_OK;
    }
    if (rc == DG_EXIT_OK) rc = sw_cli_run(&o, &err);
    return dg_cli_exit("digits-sweep", rc, &err);
}
