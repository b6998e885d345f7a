/* augment_speed: images per second of augment/ (aug_batch_u8 / aug_batch_f32) per policy and thread count.
 *
 *   augment_speed [--data train.npy] [--images N] [--policy P]... [--threads T]... [--batch B] [--repeat R] [--f32]
 *
 * Prints one line per (policy, threads): "policy=simard threads=1 images=20000 seconds=0.123 images_per_s=162000
 * cpu_seconds=0.121 images_per_cpu_s=165000 output=u8". The best of R repeats is reported; images_per_cpu_s divides
 * by the CPU time of the process (all threads), which other processes on a shared machine do not inflate.
 * Without --data, synthetic strokes are used.
 */
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "augment/augment.h"
#include "core/dg_cli.h"
#include "core/dg_dataset.h"
#include "core/dg_progress.h"

static void usage(FILE *fp) {
    fprintf(fp, "usage: augment_speed [--data FILE.npy] [--images N (20000)] [--policy P (simard, kaggle)]...\n"
                "                     [--threads T (1, 2)]... [--batch B (1024)] [--repeat R (3)] [--f32]\n");
}

/* CPU seconds used by the whole process (all threads): unaffected by other processes on a shared machine. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Synthetic 28x28 digits: a thick slanted stroke and a ring, varying with i. */
static void synth(uint8_t *img, int i) {
    memset(img, 0, DG_PIXELS);
    double a = 0.3 * sin(i * 0.7), r = 5 + (i % 4);
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            double d1 = fabs((x - 14) - a * (y - 14)), d2 = fabs(hypot(x - 14, y - 9) - r);
            double v = fmax(0, 1 - fmin(d1, d2) / 2.0);
            img[y * 28 + x] = (uint8_t)(255 * v);
        }
}

int main(int argc, char **argv) {
    const char *data = NULL, *policies[16];
    int npol = 0, threads[8], nthr = 0, f32 = 0;
    long images = 20000, batch = 1024, repeat = 3;
    static const struct option opts[] = {{"data", required_argument, 0, 'd'},   {"images", required_argument, 0, 'n'},
                                         {"policy", required_argument, 0, 'p'}, {"threads", required_argument, 0, 't'},
                                         {"batch", required_argument, 0, 'b'},  {"repeat", required_argument, 0, 'r'},
                                         {"f32", no_argument, 0, 'f'},          {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'n':
            if (dg_parse_long(optarg, 1, 10000000, &images) != 0) goto bad;
            break;
        case 'p':
            if (npol == 16) goto bad;
            policies[npol++] = optarg;
            break;
        case 't':
            if (nthr == 8 || dg_parse_long(optarg, 1, 256, &v) != 0) goto bad;
            threads[nthr++] = (int)v;
            break;
        case 'b':
            if (dg_parse_long(optarg, 1, 1 << 20, &batch) != 0) goto bad;
            break;
        case 'r':
            if (dg_parse_long(optarg, 1, 100, &repeat) != 0) goto bad;
            break;
        case 'f': f32 = 1; break;
        case 'h': usage(stdout); return 0;
        default: goto bad;
        }
    }
    if (optind != argc) goto bad;
    if (!npol) policies[npol++] = "simard", policies[npol++] = "kaggle";
    if (!nthr) threads[nthr++] = 1, threads[nthr++] = 2;

    uint8_t *pool = malloc((size_t)images * DG_PIXELS);
    const uint8_t **src = malloc(sizeof *src * (size_t)batch);
    uint32_t *ids = malloc(sizeof *ids * (size_t)batch);
    uint8_t *dst8 = malloc((size_t)batch * DG_PIXELS);
    float *dst32 = malloc(sizeof(float) * (size_t)batch * DG_PIXELS);
    if (!pool || !src || !ids || !dst8 || !dst32) return 1;
    dg_err err;
    if (data) {
        dg_dataset ds;
        if (dg_dataset_open(&ds, data, &err) != 0) {
            fprintf(stderr, "augment_speed: %s\n", err.msg);
            return 1;
        }
        for (long i = 0; i < images; i++) memcpy(pool + i * DG_PIXELS, dg_dataset_image(&ds, (size_t)i % ds.n), DG_PIXELS);
        dg_dataset_close(&ds);
    } else {
        for (long i = 0; i < images; i++) synth(pool + i * DG_PIXELS, (int)i);
    }
    unsigned checksum = 0;
    for (int pi = 0; pi < npol; pi++) {
        aug_policy *pol;
        if (aug_policy_load(&pol, policies[pi], &err) != 0) {
            fprintf(stderr, "augment_speed: %s\n", err.msg);
            return 1;
        }
        for (int ti = 0; ti < nthr; ti++) {
            omp_set_num_threads(threads[ti]);
            double best = 1e30, best_cpu = 1e30;
            for (long r = 0; r < repeat; r++) {
                double t0 = dg_now(), c0 = cpu_now();
                for (long b0 = 0; b0 < images; b0 += batch) {
                    int n = (int)(images - b0 < batch ? images - b0 : batch);
                    for (int i = 0; i < n; i++) {
                        src[i] = pool + (size_t)(b0 + i) * DG_PIXELS;
                        ids[i] = (uint32_t)(b0 + i);
                    }
                    if (f32) {
                        aug_batch_f32(pol, 1, (uint32_t)r, ids, src, dst32, n);
                        checksum += (unsigned)(dst32[0] * 255);
                    } else {
                        aug_batch_u8(pol, 1, (uint32_t)r, ids, src, dst8, NULL, n);
                        checksum += dst8[400];
                    }
                }
                double t = dg_now() - t0, tc = cpu_now() - c0;
                if (t < best) best = t;
                if (tc < best_cpu) best_cpu = tc;
            }
            printf("policy=%s threads=%d images=%ld seconds=%.4f images_per_s=%.0f cpu_seconds=%.4f "
                   "images_per_cpu_s=%.0f%s\n",
                   policies[pi], threads[ti], images, best, images / best, best_cpu, images / best_cpu,
                   f32 ? " output=f32" : " output=u8");
            fflush(stdout);
        }
        aug_policy_free(pol);
    }
    fprintf(stderr, "(checksum %u)\n", checksum);
    free(pool), free(src), free(ids), free(dst8), free(dst32);
    return 0;
bad:
    usage(stderr);
    return 2;
}
