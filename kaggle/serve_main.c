/* digits-serve: a local page to draw a digit on (or drop a photo) and see the models' prediction, and
 * POST /predict for tools (see kaggle/serve_cli.h and kaggle/serve.h). */
#include <stdio.h>

#include "kaggle/serve_cli.h"
#include "core/dg_cli.h"

int main(int argc, char **argv) {
    dg_stage_init("digits-serve", argv);
    kg_serve_cli_opts o;
    dg_err err = {{0}};
    int rc = kg_serve_cli_parse(argc, argv, &o, &err);
    if (rc == DG_EXIT_OK && o.help) kg_serve_cli_usage(stdout);
    else if (rc == DG_EXIT_OK) rc = kg_serve_cli_run(&o, &err);
    kg_serve_cli_free(&o);
    return dg_cli_exit("digits-serve", rc, &err);
}
