/* pipeline/schedule: run a decided plan's stages as child processes, the members' chains up to plan->jobs at a
 * time.
 *
 * One loop starts every step that may start (a step of no member (ingest, augment, ensemble) waits for every
 * earlier step, and every later step waits for it; a member's stage waits for that member's earlier stage), then
 * waits for any child (waitpid(-1)). Each step is re-decided (pl_stage_decide) when its turn comes. With jobs > 1
 * the member stages' stdout and stderr come through pipes and are copied to `log` line by line, each prefixed
 * with "[member] "; with jobs = 1 the children write to this process's stdout and stderr directly.
 * On the first failure the other running stages get SIGTERM (their stamps stay "running", so the next run resumes
 * them) and, once they have exited, that failure is returned.
 */
#ifndef PL_SCHEDULE_H
#define PL_SCHEDULE_H

#include <stdio.h>

#include "core/dg_err.h"
#include "pipeline/plan.h"

/* Run the plan (after pl_plan_decide). Status lines ("[3/7] train-mlp2-s1: done in 4s") go to out, flushed each
 * time so that they keep their place among the children's lines; the piped children's lines go to log.
 * Records each finished train and predict step's speed (pl_plan_record_timing). 0, or -1 with err. */
int pl_schedule_run(pl_plan *plan, FILE *out, FILE *log, dg_err *err);

#endif
