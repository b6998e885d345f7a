/* digits-predict: class probabilities of one or more trained models on a dataset, averaged over the models and
 * (with --tta K) over K fixed views of every image. Writes (N, 10) float32 .npy, optionally labels (see
 * kaggle/predict_cli.h). */
#include <stdio.h>

#include "kaggle/predict_cli.h"
#include "core/dg_cli.h"

int main(int argc, char **argv) {
    dg_stage_init("digits-predict", argv);
    kg_predict_cli_opts o;
    dg_err err = {{0}};
    int rc = kg_predict_cli_parse(argc, argv, &o, &err);
    if (rc == DG_EXIT_OK && o.help) {
        kg_predict_cli_usage(stdout);
        kg_predict_cli_free(&o);
        return DG_EXIT_OK;
    }
    if (rc == DG_EXIT_OK) {
        dg_set_threads(o.threads > 0 ? o.threads : dg_default_threads());
        rc = kg_predict_cli_run(&o, &err);
    }
    kg_predict_cli_free(&o);
    return dg_cli_exit("digits-predict", rc, &err);
}
