/* nn/ema: the moving average's decay and update (see nn/ema.h). */
#include "nn/ema.h"

float nn_ema_decay(float D, uint64_t k) {
    double w = (1.0 + (double)k) / (10.0 + (double)k);
    return w < (double)D ? (float)w : D;
}

void nn_ema_update(float *ema, const float *live, size_t n, float d) {
    const float a = 1.0f - d;
    for (size_t i = 0; i < n; i++) ema[i] = d * ema[i] + a * live[i];
}

void nn_ema_swap(float *a, float *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float t = a[i];
        a[i] = b[i];
        b[i] = t;
    }
}
