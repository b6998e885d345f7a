/* digits-ensemble: combine the class probabilities of several models into submission.csv (+ a manifest), with a
 * validation estimate of the ensemble's accuracy (see kaggle/ensemble_cli.h). */
#include <stdio.h>

#include "kaggle/ensemble_cli.h"
#include "core/dg_cli.h"

int main(int argc, char **argv) {
    dg_stage_init("digits-ensemble", argv);
    kg_ensemble_cli_opts o;
    dg_err err = {{0}};
    int rc = kg_ensemble_cli_parse(argc, argv, &o, &err);
    if (rc == DG_EXIT_OK && o.help) {
        kg_ensemble_cli_usage(stdout);
        return DG_EXIT_OK;
    }
    if (rc == DG_EXIT_OK) rc = kg_ensemble_cli_run(&o, &err);
    return dg_cli_exit("digits-ensemble", rc, &err);
}
