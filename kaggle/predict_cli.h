/* kaggle/predict_cli: the digits-predict stage (class probabilities of one or more models on a set of images,
 * averaged over the models and over TTA views) as library calls: its options, its usage text and its run;
 * predict_main.c only strings them together. The prediction itself is kaggle/predict.h. */
#ifndef KG_PREDICT_CLI_H
#define KG_PREDICT_CLI_H

#include <stdio.h>

#include "core/dg_err.h"

typedef struct kg_predict_cli_opts {
    const char *data;         /* -d: images (default data/test.npy) */
    const char *output;       /* -o: probabilities, float32 .npy (N, 10) (required, unless --image) */
    const char *labels;       /* -l: also the labels, PATH.csv as a submission, else uint8 .npy (N,); or NULL */
    const char *ids;          /* --ids: int64 .npy of the rows to predict; NULL: all */
    int tta;                  /* views per image, 1..KG_TTA_MAX (default 1) */
    int batch;                /* images per forward pass (default 256) */
    int threads;              /* --threads; 0: dg_default_threads() (the main sets the pool) */
    const char **images;      /* --image FILE (repeatable): PNG/JPEG photos or drawings instead of -d; NULL: none */
    int n_images;
    int json;                 /* --json: with --image, one JSON object per image on `out` instead of text */
    const char *debug_out;    /* --debug-out DIR: with --image, write each 28x28 image classified as PNG */
    FILE *out;                /* --image results: stdout */
    char *const *models;      /* MODEL arguments: model.safetensors files or run directories */
    int n_models;
    FILE *log;                /* accuracy and summary lines: stderr; NULL with --quiet */
    int help;                 /* --help given: print the usage, do nothing else */
} kg_predict_cli_opts;

/* Defaults, then argv (see core/dg_cli.h for the shape). 0, or DG_EXIT_USAGE with the message in err.
 * o->images is malloc'd when --image is given: free it with kg_predict_cli_free. */
int kg_predict_cli_parse(int argc, char **argv, kg_predict_cli_opts *o, dg_err *err);
/* The usage text with the defaults. */
void kg_predict_cli_usage(FILE *out);
void kg_predict_cli_free(kg_predict_cli_opts *o);
/* Predict with every model, write o->output (and o->labels). Nothing is written unless every model loads, fits
 * the images and gives valid probabilities. DG_EXIT_OK or DG_EXIT_FAIL.
 * With --image: each file is made MNIST-like (kaggle/photo.h) and classified; the digit and probabilities go to
 * o->out (text or JSON lines). An image that cannot be classified (not an image, blank, several digits) gets its
 * message there and makes the run DG_EXIT_FAIL, after the others are done; err then names the first failure. */
int kg_predict_cli_run(const kg_predict_cli_opts *o, dg_err *err);

#endif
