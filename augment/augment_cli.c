/* augment/augment_cli: digits-augment's options, --help and run (see augment/augment_cli.h). */
#include "augment/augment_cli.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "augment/augment.h"
#include "augment/params_file.h"
#include "core/dg_cli.h"
#include "core/dg_dataset.h"
#include "core/dg_png.h"
#include "core/dg_progress.h"
#include "core/dg_sink.h"

static const aug_cli_opts defaults = {
    .format = "dataset", .policy = "kaggle", .copies = 1, .batch = 1024, .preview_rows = 10, .preview_copies = 8,
    .seed = 1,
};

void aug_cli_usage(FILE *fp) {
    const aug_cli_opts *d = &defaults;
    fprintf(fp,
            "usage: digits-augment --data IN.npy --out OUT [options]\n"
            "       digits-augment --data IN.npy --out OUT --replay PARAMS.npy|.jsonl [--format F]\n"
            "\n"
            "Expand a dataset file (from digits-ingest) with random distortions: rows are the originals (with\n"
            "--keep-originals), then copy 0 of every image, copy 1, ... Copy c of image i uses the random stream\n"
            "(seed, augment, epoch + c, i), as digits-train --augment does in epoch + c.\n"
            "\n"
            "  -d, --data FILE          input dataset (.npy from digits-ingest; labelled or not)\n"
            "  -o, --out PATH           output path (see --format)\n"
            "  -f, --format F           dataset | npy | idx | csv (default %s; see digits-export --help)\n"
            "  -p, --policy P           preset (%s) or policy file (default %s)\n"
            "  -n, --copies N           augmented copies of each image, 1..%d (default %ld)\n"
            "  -k, --keep-originals     also write the original images, first (default: %s)\n"
            "  -s, --seed S             random seed (default %llu)\n"
            "  -e, --epoch E            epoch of copy 0 (default %ld)\n"
            "      --params-out FILE    store every output image's parameters (.npy or .jsonl) for --replay\n"
            "      --replay FILE        regenerate the images a --params-out file describes (no policy needed)\n"
            "      --preview PNG        a grid: originals (left column) beside their first copies\n"
            "      --preview-rows R     images in the preview (default %ld)\n"
            "      --preview-copies C   copies per image in the preview (default %ld)\n"
            "  -b, --batch B            images per parallel batch (default %ld; output does not depend on it)\n"
            "  -t, --threads T          threads (default: OMP_NUM_THREADS or all CPUs; output does not depend on it)\n"
            "  -q, --quiet              no progress bar and no summary\n"
            "  -h, --help               this text\n"
            "\n"
            "Exit status: 0 done, 1 failure (nothing written), 2 bad usage.\n",
            d->format, aug_policy_preset_names(), d->policy, AUG_CLI_MAX_COPIES, d->copies, d->keep ? "yes" : "no",
            (unsigned long long)d->seed, d->epoch, d->preview_rows, d->preview_copies, d->batch);
}

static int usage_error(dg_err *err, const char *what, const char *arg) {
    dg_fail(err, "%s, got \"%s\"", what, arg);
    return DG_EXIT_USAGE;
}

int aug_cli_parse(int argc, char **argv, aug_cli_opts *o, dg_err *err) {
    *o = defaults;
    o->threads = dg_default_threads();
    o->log = stderr;
    enum { O_PARAMS = 256, O_REPLAY, O_PREVIEW, O_PREVIEW_ROWS, O_PREVIEW_COPIES };
    static const char shortopts[] = "d:o:f:p:n:ks:e:b:t:qh";
    static const struct option longopts[] = {{"data", required_argument, 0, 'd'},
                                             {"out", required_argument, 0, 'o'},
                                             {"format", required_argument, 0, 'f'},
                                             {"policy", required_argument, 0, 'p'},
                                             {"copies", required_argument, 0, 'n'},
                                             {"keep-originals", no_argument, 0, 'k'},
                                             {"seed", required_argument, 0, 's'},
                                             {"epoch", required_argument, 0, 'e'},
                                             {"params-out", required_argument, 0, O_PARAMS},
                                             {"replay", required_argument, 0, O_REPLAY},
                                             {"preview", required_argument, 0, O_PREVIEW},
                                             {"preview-rows", required_argument, 0, O_PREVIEW_ROWS},
                                             {"preview-copies", required_argument, 0, O_PREVIEW_COPIES},
                                             {"batch", required_argument, 0, 'b'},
                                             {"threads", required_argument, 0, 't'},
                                             {"quiet", no_argument, 0, 'q'},
                                             {"help", no_argument, 0, 'h'},
                                             {0, 0, 0, 0}};
    int c, policy_given = 0, copies_given = 0;
    const char *bad = NULL;
    dg_cli_getopt_reset();
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        switch (c) {
        case 'd': o->data = optarg; break;
        case 'o': o->out = optarg; break;
        case 'f': o->format = optarg; break;
        case 'p':
            o->policy = optarg;
            policy_given = 1;
            break;
        case 'n':
            copies_given = 1;
            if (dg_parse_long(optarg, 1, AUG_CLI_MAX_COPIES, &o->copies) != 0)
                bad = "--copies: expected an integer 1..100000";
            break;
        case 'k': o->keep = 1; break;
        case 's':
            if (dg_parse_u64(optarg, &o->seed) != 0) bad = "--seed: expected a non-negative integer";
            break;
        case 'e':
            if (dg_parse_long(optarg, 0, 4000000000L, &o->epoch) != 0) bad = "--epoch: expected an integer >= 0";
            break;
        case O_PARAMS: o->params_out = optarg; break;
        case O_REPLAY: o->replay = optarg; break;
        case O_PREVIEW: o->preview = optarg; break;
        case O_PREVIEW_ROWS:
            if (dg_parse_long(optarg, 1, 100, &o->preview_rows) != 0) bad = "--preview-rows: expected 1..100";
            break;
        case O_PREVIEW_COPIES:
            if (dg_parse_long(optarg, 1, 100, &o->preview_copies) != 0) bad = "--preview-copies: expected 1..100";
            break;
        case 'b':
            if (dg_parse_long(optarg, 1, 1 << 20, &o->batch) != 0) bad = "--batch: expected an integer 1..1048576";
            break;
        case 't':
            if (dg_parse_long(optarg, 1, 1024, &o->threads) != 0) bad = "--threads: expected an integer 1..1024";
            break;
        case 'q': o->quiet = 1; break;
        case 'h': o->help = 1; return 0;
        default: return dg_cli_bad_option(c, argv, shortopts, longopts, err);
        }
        if (bad) return usage_error(err, bad, optarg);
    }
    if (o->quiet) o->log = NULL;
    dg_format fmt;
    if (dg_format_parse(o->format, &fmt) != 0)
        return usage_error(err, "--format: expected dataset, npy, idx or csv", o->format);
    if (optind != argc || !o->data || !o->out)
        return dg_fail(err, "expected --data IN.npy and --out PATH%s",
                       optind != argc ? " (and no other arguments)" : ""),
               DG_EXIT_USAGE;
    if (o->epoch + o->copies - 1 > (long)UINT32_MAX)
        return dg_fail(err, "--epoch %ld with --copies %ld goes past epoch %lu", o->epoch, o->copies,
                       (unsigned long)UINT32_MAX),
               DG_EXIT_USAGE;
    if (o->replay && (policy_given || copies_given || o->keep || o->preview))
        return dg_fail(err, "--replay takes the parameters from its file: no --policy, --copies, --keep-originals or "
                            "--preview"),
               DG_EXIT_USAGE;
    if (o->params_out && !aug_params_path_ok(o->params_out))
        return usage_error(err, "--params-out: expected a name ending in .npy or .jsonl", o->params_out);
    return 0;
}

static volatile sig_atomic_t interrupted = 0;
static void on_signal(int sig) { interrupted = sig; }

/* Everything a run writes, so a failure anywhere can remove it all. */
typedef struct outputs {
    dg_sink *sink;
    aug_params_writer params;
    int params_open;
    dg_afile preview;
    int preview_open;
} outputs;

static void abort_all(outputs *o) {
    dg_sink_abort(o->sink);
    o->sink = NULL;
    if (o->params_open) aug_params_writer_abort(&o->params);
    o->params_open = 0;
    if (o->preview_open) dg_afile_abort(&o->preview);
    o->preview_open = 0;
}

/* Fail if the output files of about `bytes` would not fit in the free space of path's directory. */
static int check_space(const char *path, double bytes, dg_err *err) {
    char *copy = strdup(path);
    if (!copy) return dg_fail(err, "out of memory");
    const char *dir = dirname(copy);
    struct statvfs st;
    if (statvfs(dir, &st) != 0) {
        dg_fail_errno(err, "%s: cannot check free space", dir);
        free(copy);
        return -1;
    }
    double avail = (double)st.f_bavail * (double)st.f_frsize;
    int rc = 0;
    if (bytes > avail)
        rc = dg_fail(err, "%s: the output needs about %.0f MB but only %.0f MB are free there (fewer --copies?)", dir,
                     bytes / 1e6, avail / 1e6);
    free(copy);
    return rc;
}

static double bytes_per_image(dg_format fmt, int labelled) {
    switch (fmt) {
    case DG_FMT_CSV: return 2.0 * DG_PIXELS + 4; /* MNIST rows average under 2 bytes a pixel */
    default: return DG_PIXELS + (labelled ? 1 : 0);
    }
}

/* ---- preview ---- */

#define CELL 56 /* 28 px at 2x */
#define GAP 2

static int write_preview(outputs *o, const char *path, const aug_policy *pol, const aug_cli_opts *op,
                         const dg_dataset *ds, dg_err *err) {
    int rows = (int)((size_t)op->preview_rows < ds->n ? (size_t)op->preview_rows : ds->n);
    int copies = (int)(op->preview_copies < op->copies ? op->preview_copies : op->copies);
    int cols = 1 + copies;
    int w = GAP + cols * (CELL + GAP) + 2 * GAP, h = GAP + rows * (CELL + GAP);
    uint8_t *img = malloc((size_t)w * (size_t)h);
    aug_scratch *s = aligned_alloc(64, (sizeof(aug_scratch) + 63) / 64 * 64); /* aligned for the vector loops */
    if (!img || !s) {
        free(img), free(s);
        return dg_fail(err, "%s: out of memory", path);
    }
    memset(img, 96, (size_t)w * (size_t)h); /* grey lines between black cells */
    aug_scratch_init(s);
    for (int r = 0; r < rows; r++) {
        /* spread the rows over the dataset */
        size_t i = rows > 1 ? (size_t)r * (ds->n - 1) / (size_t)(rows - 1) : 0;
        const uint8_t *src = dg_dataset_image(ds, i);
        for (int c = 0; c < cols; c++) {
            uint8_t cell[DG_PIXELS];
            if (c == 0) {
                memcpy(cell, src, DG_PIXELS);
            } else {
                aug_params p;
                aug_sample(pol, op->seed, (uint32_t)(op->epoch + c - 1), (uint32_t)i, src, &p);
                aug_apply_u8(cell, src, &p, s);
            }
            int x0 = GAP + c * (CELL + GAP) + (c > 0 ? 2 * GAP : 0), y0 = GAP + r * (CELL + GAP);
            for (int y = 0; y < CELL; y++)
                for (int x = 0; x < CELL; x++)
                    img[(size_t)(y0 + y) * (size_t)w + (size_t)(x0 + x)] = cell[(y / 2) * 28 + x / 2];
        }
    }
    free(s);
    int rc = dg_png_write_gray(o->preview.fp, path, img, w, h, err);
    free(img);
    return rc;
}

/* ---- the two modes ---- */

static int add_row(outputs *o, const uint8_t *image, int label, const aug_row *row, const aug_policy *pol,
                   dg_err *err) {
    if (dg_sink_add(o->sink, image, label, err) != 0) return -1;
    if (o->params_open && aug_params_writer_add(&o->params, row, pol, err) != 0) return -1;
    return 0;
}

/* Batch k of the run: copy c (-1: originals), first image b0, nb images. */
static void batch_of(size_t k, size_t n, size_t B, int keep, long *c, size_t *b0, int *nb) {
    size_t per_copy = (n + B - 1) / B;
    *c = (long)(k / per_copy) - (keep ? 1 : 0);
    *b0 = (k % per_copy) * B;
    *nb = (int)(n - *b0 < B ? n - *b0 : B);
}

/* Write batch k (images in buf, parameters in params) to the outputs. */
static int write_batch(outputs *o, const aug_policy *pol, const aug_cli_opts *op, const dg_dataset *ds, size_t k,
                       const uint8_t *buf, const aug_params *params, dg_err *err) {
    long c;
    size_t b0;
    int nb;
    batch_of(k, ds->n, (size_t)op->batch, op->keep, &c, &b0, &nb);
    for (int i = 0; i < nb; i++) {
        aug_row row;
        row.src = (uint32_t)(b0 + (size_t)i);
        row.copy = (int32_t)c;
        row.p = params[i];
        const uint8_t *img = c >= 0 ? buf + (size_t)i * DG_PIXELS : dg_dataset_image(ds, b0 + (size_t)i);
        if (add_row(o, img, dg_dataset_label(ds, b0 + (size_t)i), &row, pol, err) != 0) return -1;
    }
    return 0;
}

/* All batches, with writing overlapped: while one thread writes batch k - 1, the others (and then it) augment
 * batch k into the other buffer. The barrier at the end of each batch's loop orders the two. */
static int run_policy(outputs *o, const aug_policy *pol, const aug_cli_opts *op, const dg_dataset *ds, dg_progress *pg,
                      dg_err *err) {
    size_t n = ds->n, B = (size_t)op->batch;
    size_t nbatches = (size_t)(op->copies + op->keep) * ((n + B - 1) / B);
    uint8_t *buf[2] = {malloc(B * DG_PIXELS), malloc(B * DG_PIXELS)};
    aug_params *params[2] = {malloc(sizeof(aug_params) * B), malloc(sizeof(aug_params) * B)};
    _Atomic int failed = 0; /* set by the writer thread, read by all */
    if (!buf[0] || !buf[1] || !params[0] || !params[1]) {
        free(buf[0]), free(buf[1]), free(params[0]), free(params[1]);
        return dg_fail(err, "out of memory for a batch of %zu images", B);
    }
#pragma omp parallel
    {
        aug_scratch s;
        aug_scratch_init(&s);
        for (size_t k = 0; k <= nbatches; k++) {
#pragma omp single nowait
            if (k > 0 && !failed) {
                if (interrupted) {
                    dg_fail(err, "interrupted by signal %d", (int)interrupted);
                    failed = 1;
                } else if (write_batch(o, pol, op, ds, k - 1, buf[(k - 1) % 2], params[(k - 1) % 2], err) != 0) {
                    failed = 1;
                } else {
                    size_t per_copy = (n + B - 1) / B; /* rows written: k batches */
                    dg_progress_update(pg, (k / per_copy) * n + (k % per_copy) * B, NULL);
                }
            }
            long c = 0;
            size_t b0 = 0;
            int nb = 0;
            if (k < nbatches) batch_of(k, n, B, op->keep, &c, &b0, &nb);
            uint8_t *out = buf[k % 2];
            aug_params *prm = params[k % 2];
#pragma omp for schedule(dynamic, 16)
            for (int i = 0; i < nb; i++) {
                if (failed) continue;
                const uint8_t *src = dg_dataset_image(ds, b0 + (size_t)i);
                uint32_t id = (uint32_t)(b0 + (size_t)i);
                if (c < 0) {
                    aug_params_identity(&prm[i]);
                    prm[i].seed = op->seed;
                    prm[i].id = id;
                    continue;
                }
                aug_sample(pol, op->seed, (uint32_t)(op->epoch + c), id, src, &prm[i]);
                aug_apply_u8(out + (size_t)i * DG_PIXELS, src, &prm[i], &s);
            }
        }
    }
    free(buf[0]), free(buf[1]), free(params[0]), free(params[1]);
    return failed ? -1 : 0;
}

static int run_replay(outputs *o, aug_params_reader *rd, const aug_cli_opts *op, const dg_dataset *ds, dg_progress *pg,
                      dg_err *err) {
    size_t B = (size_t)op->batch, done = 0;
    const uint8_t **src = malloc(sizeof *src * B);
    uint8_t *buf = malloc(B * DG_PIXELS);
    aug_row *rows = malloc(sizeof *rows * B);
    aug_params *params = malloc(sizeof *params * B);
    int rc = -1;
    if (!src || !buf || !rows || !params) {
        dg_fail(err, "out of memory for a batch of %zu images", B);
        goto out;
    }
    for (;;) {
        if (interrupted) {
            dg_fail(err, "interrupted by signal %d", (int)interrupted);
            goto out;
        }
        int nb = 0, got = 0;
        while (nb < (int)B && (got = aug_params_reader_next(rd, &rows[nb], err)) == 1) {
            if (rows[nb].src >= ds->n) {
                dg_fail(err, "%s: row %zu: source image %u, but %s has %zu images", op->replay, rd->next - 1,
                        rows[nb].src, op->data, ds->n);
                goto out;
            }
            src[nb] = dg_dataset_image(ds, rows[nb].src);
            params[nb] = rows[nb].p;
            nb++;
        }
        if (nb < (int)B && got < 0) goto out;
        if (nb == 0) break;
        aug_replay_u8(params, src, buf, nb);
        for (int i = 0; i < nb; i++)
            if (add_row(o, buf + (size_t)i * DG_PIXELS, dg_dataset_label(ds, rows[i].src), &rows[i], NULL, err) != 0)
                goto out;
        done += (size_t)nb;
        dg_progress_update(pg, done, NULL);
    }
    rc = 0;
out:
    free(src), free(buf), free(rows), free(params);
    return rc;
}

int aug_cli_run(const aug_cli_opts *op, dg_err *err) {
    dg_format fmt;
    if (dg_format_parse(op->format, &fmt) != 0)
        return usage_error(err, "--format: expected dataset, npy, idx or csv", op->format);
    if (!op->data || !op->out) return dg_fail(err, "expected --data IN.npy and --out PATH"), DG_EXIT_USAGE;

    double t0 = dg_now();
    aug_policy *pol = NULL;
    aug_params_reader rd;
    int have_reader = 0;
    dg_dataset ds;
    memset(&ds, 0, sizeof ds);
    outputs o;
    memset(&o, 0, sizeof o);
    int rc = DG_EXIT_FAIL;
    void (*old_int)(int) = SIG_ERR, (*old_term)(int) = SIG_ERR;
    interrupted = 0;

    if (op->replay) {
        if (aug_params_reader_open(&rd, op->replay, err) != 0) goto fail;
        have_reader = 1;
    } else if (aug_policy_load(&pol, op->policy, err) != 0) {
        goto fail;
    }
    if (dg_dataset_open(&ds, op->data, err) != 0) goto fail;
    if (ds.n == 0) {
        dg_fail(err, "%s: the dataset has no images", op->data);
        goto fail;
    }
    size_t rows = op->replay ? rd.n : ds.n * (size_t)(op->copies + op->keep);
    double need = (double)rows * bytes_per_image(fmt, ds.has_labels) + 4096;
    if (op->params_out) need += (double)rows * (strstr(op->params_out, ".jsonl") ? 400 : AUG_PARAMS_RECORD);
    if (check_space(op->out, need, err) != 0) goto fail;

    /* Open every output first: an unwritable path fails before any work. */
    if (dg_sink_open(&o.sink, fmt, op->out, ds.has_labels, err) != 0) goto fail;
    if (op->params_out) {
        if (aug_params_writer_open(&o.params, op->params_out, err) != 0) goto fail;
        o.params_open = 1;
    }
    if (op->preview) {
        if (dg_afile_open(&o.preview, op->preview, err) != 0) goto fail;
        o.preview_open = 1;
    }
    old_int = signal(SIGINT, on_signal);
    old_term = signal(SIGTERM, on_signal);

    dg_progress pg;
    dg_progress_start(&pg, "augment", rows);
    if (op->quiet) pg.enabled = 0;
    int ok = op->replay ? run_replay(&o, &rd, op, &ds, &pg, err) : run_policy(&o, pol, op, &ds, &pg, err);
    dg_progress_finish(&pg);
    if (ok != 0) goto fail;
    if (op->preview && write_preview(&o, op->preview, pol, op, &ds, err) != 0) goto fail;
    if (interrupted) {
        dg_fail(err, "interrupted by signal %d", (int)interrupted);
        goto fail;
    }

    /* One commit for every file, the dataset renamed last: a failure leaves each final name as it was (no
     * dataset without its parameters, no previous file removed). */
    if (o.params_open && aug_params_writer_finish(&o.params, err) != 0) {
        o.params_open = 0;
        goto fail;
    }
    dg_afile *extra[2];
    int n_extra = 0;
    if (o.preview_open) extra[n_extra++] = &o.preview;
    if (o.params_open) extra[n_extra++] = &o.params.f;
    o.preview_open = o.params_open = 0;
    dg_sink *sink = o.sink;
    o.sink = NULL;
    if (dg_sink_commit_with(sink, extra, n_extra, err) != 0) goto fail;

    if (op->log) {
        double t = dg_now() - t0;
        fprintf(op->log, "digits-augment: %s -> %s (%s): %zu images (%s%s) in %.2f s, %.0f images/s\n", op->data,
                op->out, dg_format_name(fmt), rows, op->replay ? "replay of " : "policy ",
                op->replay ? op->replay : op->policy, t, (double)rows / (t > 0 ? t : 1e-9));
    }
    rc = DG_EXIT_OK;
    goto done;

fail:
    abort_all(&o);
done:
    if (old_int != SIG_ERR) signal(SIGINT, old_int);
    if (old_term != SIG_ERR) signal(SIGTERM, old_term);
    if (have_reader) aug_params_reader_close(&rd);
    dg_dataset_close(&ds);
    aug_policy_free(pol);
    return rc;
}
