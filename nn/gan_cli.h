/* nn/gan_cli: the digits-gan stage's options and run (the stage shape of core/dg_cli.h):
 *   digits-gan train --data FILE --run DIR [--gen SPEC] [--disc SPEC] [--epochs N] [--seed S] [--resume]
 *                    [--seconds S] ...
 *   digits-gan sample --label D|all -n N -o FILE [--grid PNG] [--seed S] RUN
 *   digits-gan judge --samples GEN.npy --classifier RUN|MODEL --real TRAIN.npy [-n N] [--json OUT] ...
 * The work is nn/gan.h and nn/judge.h. */
#ifndef NN_GAN_CLI_H
#define NN_GAN_CLI_H

#include <stdio.h>

#include "core/dg_err.h"
#include "nn/gan.h"
#include "nn/judge.h"

typedef enum nn_gan_cmd { NN_GAN_TRAIN, NN_GAN_SAMPLE, NN_GAN_JUDGE } nn_gan_cmd;

typedef struct nn_gan_cli_opts {
    nn_gan_cmd cmd;
    nn_gan_train_opts train;   /* --quiet sets train.log to NULL (default stderr) */
    nn_gan_sample_opts sample;
    double seconds;            /* --seconds (0: none): train.deadline is set from it when the run starts */
    nn_judge_opts judge;       /* the table goes to judge.report (default stdout) */
    int threads;               /* --threads (default dg_default_threads()); the caller sets them */
    int help;                  /* --help: print nn_gan_cli_usage and do nothing else */
} nn_gan_cli_opts;

/* argv[1] is the command (train | sample | judge). DG_EXIT_USAGE with the message in err on bad usage. */
int nn_gan_cli_parse(int argc, char **argv, nn_gan_cli_opts *o, dg_err *err);
void nn_gan_cli_usage(FILE *out);
/* DG_EXIT_OK or DG_EXIT_FAIL. */
int nn_gan_cli_run(const nn_gan_cli_opts *o, dg_err *err);

#endif
