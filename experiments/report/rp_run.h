/* experiments/report/rp_run: the report of one finished digits-train run directory (nn/train.h lists its files):
 * learning curves (loss and accuracy, train and validation, learning rate) per epoch, the confusion matrix and
 * per-class accuracy of val_pred.npy against the dataset's labels, a gallery of misclassified validation digits
 * (true, predicted, confidence; the most confident mistakes first), the model summary (layers, shapes, parameters,
 * FLOPs), timings, and the command and hardware from invocation.json.
 * Everything is read and checked before any HTML is built: a run without metrics or without result.json (not
 * finished yet) is an error naming the file, unless `live` asks for the page of a running training. */
#ifndef RP_RUN_H
#define RP_RUN_H

#include "core/dg_err.h"
#include "core/dg_svg.h"

typedef struct rp_run_opts {
    const char *run_dir;
    const char *data;  /* the labelled dataset val_ids index; NULL: the "data" the model file records (a relative
                          one found from invocation.json's cwd if it is not found from here) */
    int gallery_max;   /* at most this many misclassified digits (0: none) */
    int live;          /* > 0: an unfinished run (no result.json) is allowed: its curves so far, model summary from
                          spec.txt, and a page that reloads itself every `live` seconds */
} rp_run_opts;

/* Append the whole page to t. 0 or -1 (message in err). */
int rp_run_report(dg_text *t, const rp_run_opts *o, dg_err *err);

#endif
