/* digits-ingest: Kaggle train.csv / test.csv -> dataset .npy (see kaggle/ingest_cli.h, kaggle/ingest.h). */
#include <stdio.h>

#include "kaggle/ingest_cli.h"
#include "core/dg_cli.h"

int main(int argc, char **argv) {
    dg_stage_init("digits-ingest", argv);
    kg_ingest_cli_opts o;
    dg_err err = {{0}};
    int rc = kg_ingest_cli_parse(argc, argv, &o, &err);
    if (rc == DG_EXIT_OK && o.help) {
        kg_ingest_cli_usage(stdout);
        return DG_EXIT_OK;
    }
    if (rc == DG_EXIT_OK) {
        if (o.ingest.threads <= 0) o.ingest.threads = dg_default_threads();
        dg_set_threads(o.ingest.threads);
        rc = kg_ingest_cli_run(&o, &err);
    }
    return dg_cli_exit("digits-ingest", rc, &err);
}
