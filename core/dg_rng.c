/* dg_rng: Philox4x32-10 and the draws built on it (see dg_rng.h). */
#include "core/dg_rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void dg_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

dg_rng dg_rng_make(uint64_t seed, uint32_t purpose, uint32_t epoch, uint32_t index) {
    dg_rng r;
    r.key[0] = (uint32_t)seed;
    r.key[1] = (uint32_t)(seed >> 32);
    r.ctr[0] = 0;
    r.ctr[1] = index;
    r.ctr[2] = epoch;
    r.ctr[3] = purpose;
    r.buf[0] = r.buf[1] = r.buf[2] = r.buf[3] = 0;
    r.pos = 4;
    return r;
}

uint32_t dg_rng_u32(dg_rng *r) {
    if (r->pos >= 4) {
        dg_philox4x32(r->ctr, r->key, r->buf);
        r->ctr[0]++;
        r->pos = 0;
    }
    return r->buf[r->pos++];
}

uint64_t dg_rng_u64(dg_rng *r) {
    uint64_t hi = dg_rng_u32(r);
    return (hi << 32) | dg_rng_u32(r);
}

float dg_rng_uniform(dg_rng *r) { return (float)(dg_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

float dg_rng_range(dg_rng *r, float lo, float hi) { return lo + (hi - lo) * dg_rng_uniform(r); }

uint32_t dg_rng_below(dg_rng *r, uint32_t n) {
    /* Lemire's multiply-shift with rejection: unbiased. */
    uint64_t m = (uint64_t)dg_rng_u32(r) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)dg_rng_u32(r) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

float dg_rng_normal(dg_rng *r) {
    /* u1 in (0, 1] so log() is finite. */
    double u1 = ((double)dg_rng_u32(r) + 1.0) * (1.0 / 4294967296.0);
    double u2 = (double)dg_rng_u32(r) * (1.0 / 4294967296.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void dg_rng_shuffle_u32(dg_rng *r, uint32_t *idx, uint32_t n) {
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = dg_rng_below(r, i);
        uint32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
