/* digits-pipeline: one command from the competition CSVs to submission.csv (see pipeline/cli.h,
 * docs/pipeline.md). */
#include <stdio.h>

#include "core/dg_cli.h"
#include "pipeline/cli.h"

int main(int argc, char **argv) {
    dg_stage_init("digits-pipeline", argv);
    pl_cli_opts o;
    dg_err err = {{0}};
    int rc = pl_parse(argc, argv, &o, &err);
    if (rc == DG_EXIT_OK && o.help) {
        pl_usage(stdout);
        return DG_EXIT_OK;
    }
    if (rc == DG_EXIT_OK) rc = pl_run(&o, stdout, stderr, &err);
    return dg_cli_exit("digits-pipeline", rc, &err);
}
