/* experiments/report/rp_ensemble: the report of a digits-ensemble result, from its submission.manifest.json and
 * the members' run directories it names: the members (validation accuracy, weight, test agreement), how often
 * each pair of members agrees on the rows all of them held out, the estimate, and the digits the ensemble (its
 * method and weights, kaggle/ensemble.h) still gets wrong on those rows. Members without a run directory have no
 * validation rows: then the page says so and shows the manifest's numbers only. */
#ifndef RP_ENSEMBLE_H
#define RP_ENSEMBLE_H

#include "core/dg_err.h"
#include "core/dg_svg.h"

typedef struct rp_ensemble_opts {
    const char *manifest;
    const char *data;  /* the labelled train dataset; NULL: the "data" the first member's model file records */
    int gallery_max;
} rp_ensemble_opts;

int rp_ensemble_report(dg_text *t, const rp_ensemble_opts *o, dg_err *err);

#endif
