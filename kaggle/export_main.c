/* digits-export: a dataset file -> CSV, .npy, IDX or another dataset file (see kaggle/export_cli.h,
 * core/dg_sink.h). */
#include <stdio.h>

#include "kaggle/export_cli.h"
#include "core/dg_cli.h"

int main(int argc, char **argv) {
    dg_stage_init("digits-export", argv);
    kg_export_cli_opts o;
    dg_err err = {{0}};
    int rc = kg_export_cli_parse(argc, argv, &o, &err);
    if (rc == DG_EXIT_OK && o.help) {
        kg_export_cli_usage(stdout);
        return DG_EXIT_OK;
    }
    if (rc == DG_EXIT_OK) rc = kg_export_cli_run(&o, &err);
    return dg_cli_exit("digits-export", rc, &err);
}
