/* experiments/sweep_file: a sweep file (JSON, read with cJSON) and the configurations it describes.
 *
 * The format is in docs/sweeps.md. Every error names the sweep file, line and column ("file:line:col: ..."): cJSON's
 * syntax errors through cJSON_GetErrorPtr, semantic ones at the offending key. A swept spec key is checked by
 * nn/spec's own parser (the base spec's canonical text with the override applied), and a swept policy variable by
 * augment/policy's, when the file is loaded, so a typo fails before anything is trained.
 * Configuration i's values are a pure function of (file, sweep seed, i): grid order, or dg_rng draws keyed by
 * (seed, SW_RNG_PARAMS, i, parameter). Not here: which configurations run how long (sweep_strategy.h).
 */
#ifndef SW_FILE_H
#define SW_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "core/dg_err.h"

#define SW_MAX_PARAMS 32
#define SW_MAX_VALUES 64
#define SW_MAX_RUNGS 16
#define SW_RNG_PARAMS 101 /* dg_rng purpose of the random strategy's draws (index = configuration) */
#define SW_RNG_SEEDS 102  /* dg_rng purpose of the training seeds of the replicates */
#define SW_RNG_ORDER 103  /* dg_rng purpose of ASHA's rung-0 order (sweep_cli.c) */

typedef enum sw_strategy { SW_GRID, SW_RANDOM, SW_ASHA } sw_strategy;
typedef enum sw_dist { SW_VALUES, SW_UNIFORM, SW_LOG_UNIFORM, SW_INT } sw_dist;

/* One value of a parameter: a number (is_int: written without a decimal point) or a word. */
typedef struct sw_value {
    int is_str, is_int;
    double num;
    char str[64];
} sw_value;

typedef struct sw_param {
    char name[64];    /* "train.lr", "layer2.units", "model", or a policy variable ("rotate" for ${rotate}) */
    int layer;        /* layerN: N (1-based statement among the layers); 0 for train.KEY; -1 policy variable;
                         -2 "model" (the base spec itself: a list of spec names or paths) */
    char key[32];     /* the spec key (lr, units, ...) or the variable name */
    sw_dist dist;
    int is_list;      /* given as a plain list [...] (not {"choice": [...]}) */
    int n_values;     /* SW_VALUES: grid values (grid) or choices (random, asha) */
    sw_value values[SW_MAX_VALUES];
    double lo, hi;    /* uniform, log_uniform, int */
    int line, col;    /* of the parameter's key in the sweep file */
} sw_param;

typedef struct sw_sweep {
    char file[512];
    char *text;           /* the sweep file's text (owned) */
    uint64_t hash;        /* FNV-1a of the sweep text and the base spec's canonical text */
    char model[256];      /* base spec name or path as written */
    char *base_spec;      /* canonical text of the base spec (owned) */
    char *model_specs[SW_MAX_VALUES]; /* with a "model" parameter: the canonical text of each of its values */
    int model_epochs[SW_MAX_VALUES];  /* ... and the epochs of its schedule */
    char *policy;         /* policy template, lines joined with '\n', or NULL (owned) */
    int n_params;
    sw_param params[SW_MAX_PARAMS];
    sw_strategy strategy;
    int grid_configs;     /* configurations are the grid of the lists: grid, or asha with only plain lists */
    int n_rungs;
    int rungs[SW_MAX_RUNGS]; /* epochs at which ASHA compares; grid/random: one rung, the spec's epochs */
    int eta;
    int n_configs;        /* configurations to run (grid: product of the values, capped by budget trials) */
    long budget_epochs;   /* 0: none (already folded into n_configs) */
    int until_min;        /* deadline as minutes after midnight, local time; -1: none */
    int maximize;         /* metric: 1 val_acc, 0 val_loss */
    double val_frac;
    int folds;            /* 0: hold-out val_frac */
    uint64_t split_seed;
    int seeds;            /* training seeds per configuration */
    uint64_t seed;        /* the sweep's own seed */
    long rows;            /* train on the first rows of the data (0: all) */
    int threads;          /* threads per trial (0: cores / workers) */
} sw_sweep;

/* Read and check a sweep file. Free with sw_sweep_free. */
int sw_sweep_load(sw_sweep *s, const char *path, dg_err *err);
/* Parse sweep text (fname in messages); a relative model path (one with a '/' or ending in .spec) is taken
 * relative to dir (NULL: as is). */
int sw_sweep_parse(sw_sweep *s, const char *text, const char *fname, const char *dir, dg_err *err);
void sw_sweep_free(sw_sweep *s);
/* budget.until's deadline: the first moment at until_min (minutes after midnight, local time) after now, today or
 * tomorrow; a sweep started at 23:00 with "until": "07:00" stops the next morning, one started at 07:00 exactly stops
 * the morning after. mktime normalises the day, so a month's or a daylight-saving change's edge is its concern. */
time_t sw_until_deadline(int until_min, time_t now);

/* Replicates per configuration: seeds x max(folds, 1). Replicate r trains with seed sw_rep_seed and fold
 * sw_rep_fold (1..folds, or 0 for the hold-out). */
int sw_reps(const sw_sweep *s);
uint64_t sw_rep_seed(const sw_sweep *s, int rep);
int sw_rep_fold(const sw_sweep *s, int rep);

/* Configuration i's value of every parameter (vals has n_params entries). Pure. */
void sw_config_values(const sw_sweep *s, int i, sw_value *vals);
/* The epochs a trial of the configuration with these values has trained when it reaches rung k: ASHA's rungs;
 * grid and random (one rung): the configuration's own schedule, a swept train.epochs, else its "model" value's
 * spec's, else the base spec's. */
int sw_config_epochs(const sw_sweep *s, const sw_value *vals, int rung);
/* Write a value as text ("0.01", "64", "cosine"). */
void sw_value_format(const sw_value *v, char *buf, size_t n);
/* The configuration's spec text (canonical base + overrides; "augment=POLICY_PATH" when policy_path is given and
 * the sweep has a policy template) and policy text (NULL without a template); both malloc'd and checked by the
 * spec and policy parsers. name: the spec's model name. */
int sw_config_render(const sw_sweep *s, const sw_value *vals, const char *name, const char *policy_path,
                     char **spec_text, char **policy_text, dg_err *err);
/* The parameters as a JSON object text ({"train.lr":0.01,...}), malloc'd. */
char *sw_config_json(const sw_sweep *s, const sw_value *vals);

/* line:col of offset off in text. */
void sw_text_pos(const char *text, size_t off, int *line, int *col);

#endif
