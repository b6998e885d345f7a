/* nn/schedule: learning-rate schedules (see nn/schedule.h). */
#include "nn/schedule.h"

#include <math.h>

#define PI 3.14159265358979323846

void nn_sched_init(nn_sched *s) {
    s->scale = 1.0;
    s->best = INFINITY;
    s->bad_epochs = 0;
    s->warp_at = 0;
    s->warp_v = 0;
    s->warp_k = 1;
}

/* Position on the spec's curve of run step `at` (the identity until a re-target). */
static double curve_pos(const nn_sched *s, double at) { return s->warp_v + (at - s->warp_at) * s->warp_k; }

void nn_sched_retarget(const nn_hyper *h, nn_sched *s, int done, int new_epochs, int steps_per_epoch) {
    if (h->schedule != NN_SCHED_COSINE && h->schedule != NN_SCHED_ONECYCLE) return;
    double a0 = (double)done * (double)steps_per_epoch;
    double last = (double)h->epochs * (double)steps_per_epoch - 1.0; /* the curve's final step */
    double v0 = curve_pos(s, a0), runs_left = (double)new_epochs * (double)steps_per_epoch - 1.0 - a0;
    if (v0 > last) v0 = last;
    s->warp_at = a0;
    s->warp_v = runs_left > 0 ? v0 : last;
    s->warp_k = runs_left > 0 ? (last - v0) / runs_left : 0;
}

int nn_sched_retargeted(const nn_sched *s) { return s->warp_at != 0 || s->warp_v != 0 || s->warp_k != 1; }

/* torch's _annealing_cos: from start (pct 0) to end (pct 1) along half a cosine. */
static double anneal_cos(double start, double end, double pct) { return end + (start - end) / 2.0 * (cos(PI * pct) + 1.0); }

float nn_sched_lr(const nn_hyper *h, const nn_sched *s, int epoch, int step, int steps_per_epoch) {
    double lr = h->lr;
    double total = (double)h->epochs * (double)steps_per_epoch;
    double at = curve_pos(s, (double)epoch * (double)steps_per_epoch + (double)step);
    switch (h->schedule) {
    case NN_SCHED_CONSTANT: break;
    case NN_SCHED_STEP: lr *= pow((double)h->gamma, (double)(epoch / h->step_epochs)); break;
    case NN_SCHED_EXP: lr *= pow((double)h->gamma, (double)epoch); break;
    case NN_SCHED_COSINE: {
        double t = total > 0 ? at / total : 0;
        if (t > 1) t = 1;
        lr = anneal_cos(lr, (double)h->min_lr, t);
        break;
    }
    case NN_SCHED_ONECYCLE: {
        double peak = h->max_lr > 0 ? (double)h->max_lr : 10.0 * lr;
        double initial = peak / 25.0, final_lr = initial / 1e4;
        double up_end = 0.3 * total - 1.0, down_end = total - 1.0;
        if (at <= up_end)
            lr = anneal_cos(initial, peak, up_end > 0 ? at / up_end : 1.0);
        else
            lr = anneal_cos(peak, final_lr, down_end > up_end ? fmin(1.0, (at - up_end) / (down_end - up_end)) : 1.0);
        break;
    }
    case NN_SCHED_PLATEAU:
        lr *= s->scale;
        if (lr < h->min_lr) lr = h->min_lr;
        break;
    }
    return (float)lr;
}

int nn_sched_epoch_end(const nn_hyper *h, nn_sched *s, double val_loss) {
    if (h->schedule != NN_SCHED_PLATEAU) return 0;
    if (val_loss < s->best * (1.0 - 1e-4)) {
        s->best = val_loss;
        s->bad_epochs = 0;
        return 0;
    }
    s->bad_epochs++;
    if (s->bad_epochs <= h->plateau_patience) return 0;
    s->bad_epochs = 0;
    if ((double)h->lr * s->scale <= (double)h->min_lr) return 0;
    s->scale *= (double)h->gamma;
    return 1;
}
