/* experiments/sweep_strategy: which trial runs next, to which epoch: grid and random (one rung: the whole
 * schedule) and asynchronous successive halving (ASHA) with rungs at epochs and reduction factor eta.
 *
 * Every decision is a pure function of the results known so far, never of the order they arrived in, so a sweep
 * gives the same trials and promotions for any number of workers and any finishing order (docs/sweeps.md):
 *   - rung 0's order is given (the configurations by id, or a shuffle keyed by the sweep seed: sweep_cli.c);
 *     rung k+1's order is the order of promotions out of rung k;
 *   - rung k is read in its order up to the first configuration without a result there (the "prefix");
 *     after the m-th configuration of that prefix, the top floor(m / eta) of the first m (by the mean metric over
 *     the configuration's replicates; ties: lower id) are promoted, those not promoted before appended to rung
 *     k+1's order by id;
 *   - a configuration is pruned once its rung's whole order is final and has results and it was not promoted.
 * Because a result never changes once known, a prefix only grows and every promotion made stays made. Workers
 * start new rung-0 configurations whenever no promotion is runnable, so none waits on a straggler.
 * A failed replicate makes its configuration's result the worst possible at every rung it had not reached.
 * Not here: processes (sweep_exec.h), storage (sweep_store.h).
 */
#ifndef SW_STRATEGY_H
#define SW_STRATEGY_H

/* Outcome of a configuration. */
enum { SW_OPEN = 0, SW_COMPLETE = 1, SW_PRUNED = 2, SW_FAILED = 3 };

/* The results: arrays the caller owns and fills as trials report. Replicate r of configuration c at rung k:
 * have[(c * n_reps + r) * n_rungs + k] and val[...] (the metric, higher is better when maximize);
 * failed[c * n_reps + r]. */
typedef struct sw_results {
    int n_configs, n_reps, n_rungs, eta, maximize;
    const double *val;
    const unsigned char *have;
    const unsigned char *failed;
    const int *order0; /* rung 0's order, a permutation of the configurations (NULL: by id) */
} sw_results;

/* The decisions: target[c] = the highest rung configuration c has been promoted to (0 for all at first);
 * state[c] = SW_OPEN, SW_COMPLETE (results at the last rung), SW_PRUNED or SW_FAILED; promoted_from[c] = order
 * position data for tests: order[k][i] lists rung k's configurations in order (n_order[k] of them).
 * All arrays are the caller's: target, state [n_configs]; order [n_rungs * n_configs]; n_order [n_rungs]. */
typedef struct sw_decisions {
    int *target, *state, *order, *n_order;
} sw_decisions;

/* Compute the decisions from the results. 0, or -1 on out of memory. */
int sw_decide(const sw_results *r, sw_decisions *d);

/* A job: train replicate rep of configuration config up to rung (its epochs). */
typedef struct sw_job {
    int config, rep, rung;
} sw_job;

/* Up to max runnable jobs, most urgent first (higher rungs, then in rung order), skipping those with running[c *
 * n_reps + r] set, those with results at their target, and failed replicates (the other replicates of a failed
 * configuration still reach its target rung). Returns how many. */
int sw_next_jobs(const sw_results *r, const sw_decisions *d, const unsigned char *running, sw_job *jobs, int max);

/* The mean and standard deviation (n - 1 denominator; 0 for one replicate) of configuration c at rung k, or -1 if
 * not every replicate has a result there. */
int sw_config_mean(const sw_results *r, int c, int k, double *mean, double *sd);

#endif
