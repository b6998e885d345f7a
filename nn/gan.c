/* nn/gan: conditional GAN training and sampling (see nn/gan.h). */
#include "nn/gan.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "core/dg_dataset.h"
#include "core/dg_file.h"
#include "core/dg_png.h"
#include "core/dg_progress.h"
#include "core/dg_rng.h"
#include "nn/checkpoint.h"
#include "nn/net.h"
#include "nn/optim.h"
#include "nn/spec.h"

enum { RNG_GAN_NOISE = DG_RNG_USER + 4, RNG_GAN_GRID = DG_RNG_USER + 5, RNG_GAN_SAMPLE = DG_RNG_USER + 6 };

static const char G_TAG[] = "[generator]\n", D_TAG[] = "[discriminator]\n";

typedef struct gan {
    nn_spec gs, ds;
    nn_net *g, *d;
    nn_optim go, dopt;
    int z_dim;
} gan;

static void gan_free(gan *m) {
    nn_net_free(m->g), nn_net_free(m->d);
    nn_optim_free(&m->go), nn_optim_free(&m->dopt);
    nn_spec_free(&m->gs), nn_spec_free(&m->ds);
    memset(m, 0, sizeof *m);
}

static const char *out_name(nn_output o) {
    return o == NN_OUT_IMAGE ? "image" : o == NN_OUT_LOGIT ? "logit" : "classes";
}

/* The specs must make a generator of 28x28x1 images from a noise vector and a discriminator of such images. */
static int check_specs(const nn_spec *g, const nn_spec *d, dg_err *err) {
    if (g->output != NN_OUT_IMAGE)
        return dg_fail(err, "%s: not a generator ('output image' expected, the spec's output is %s)", g->file,
                       out_name(g->output));
    if (d->output != NN_OUT_LOGIT)
        return dg_fail(err, "%s: not a discriminator ('output logit' expected, the spec's output is %s)", d->file,
                       out_name(d->output));
    if (g->in_h != 1 || g->in_w != 1)
        return dg_fail(err, "%s: a generator's input is a noise vector Zx1x1, not %dx%dx%d", g->file, g->in_c,
                       g->in_h, g->in_w);
    if (d->in_c != 1 || d->in_h != DG_SIDE || d->in_w != DG_SIDE)
        return dg_fail(err, "%s: a discriminator's input is 1x28x28, not %dx%dx%d", d->file, d->in_c, d->in_h,
                       d->in_w);
    return 0;
}

static int make_optim(nn_optim *o, nn_net *net, dg_err *err) {
    const nn_hyper *h = &nn_net_spec(net)->hyper;
    int nt = nn_net_tensor_count(net), nr = 0;
    nn_optim_range *ranges = calloc((size_t)nt + 1, sizeof *ranges);
    if (!ranges) return dg_fail(err, "out of memory");
    for (int i = 0; i < nt; i++) {
        const nn_tensor *t = nn_net_tensor(net, i);
        if (!t->is_buffer) ranges[nr++] = nn_optim_range_make(h, t->offset, t->count, t->decay, t->l2);
    }
    int rc = nn_optim_init(o, h, nn_net_param_count(net), ranges, nr, err);
    free(ranges);
    return rc;
}

/* Nets (and optimizers when train) from two parsed specs; max_batch images per pass. */
static int gan_build(gan *m, int max_batch, int train, dg_err *err) {
    if (check_specs(&m->gs, &m->ds, err) != 0) return -1;
    if (nn_net_create(&m->g, &m->gs, max_batch, err) != 0 || nn_net_create(&m->d, &m->ds, max_batch, err) != 0)
        return -1;
    if (nn_net_output_count(m->g) != DG_PIXELS)
        return dg_fail(err, "%s: the generator makes %zu values per image, not 28x28x1", m->gs.file,
                       nn_net_output_count(m->g));
    m->z_dim = m->gs.in_c;
    if (train && (make_optim(&m->go, m->g, err) != 0 || make_optim(&m->dopt, m->d, err) != 0)) return -1;
    return 0;
}

/* ---- checkpoint ---- */

static char *joined_specs(const gan *m) {
    char *g = nn_spec_format(&m->gs), *d = nn_spec_format(&m->ds), *s = NULL;
    if (g && d && (s = malloc(strlen(G_TAG) + strlen(g) + strlen(D_TAG) + strlen(d) + 1)))
        sprintf(s, "%s%s%s%s", G_TAG, g, D_TAG, d);
    free(g), free(d);
    return s;
}

static int concat2(float **out, const float *a, size_t na, const float *b, size_t nb) {
    *out = malloc((na + nb ? na + nb : 1) * sizeof(float));
    if (!*out) return -1;
    if (na) memcpy(*out, a, na * sizeof(float));
    if (nb) memcpy(*out + na, b, nb * sizeof(float));
    return 0;
}

static int save_ckpt(const char *path, gan *m, uint32_t epoch, uint64_t seed, const char *run_key, dg_err *err) {
    nn_ckpt c;
    memset(&c, 0, sizeof c);
    c.spec_text = joined_specs(m);
    c.run_key = (char *)run_key;
    c.epoch = epoch;
    c.seed = seed;
    c.opt_t = m->go.t;
    c.best_val_loss = 0;
    c.n_params = nn_net_param_count(m->g) + nn_net_param_count(m->d);
    c.n_buffers = nn_net_buffer_count(m->g) + nn_net_buffer_count(m->d);
    c.n_opt = m->go.state_count + m->dopt.state_count;
    int rc = -1;
    if (!c.spec_text ||
        concat2(&c.params, nn_net_params(m->g), nn_net_param_count(m->g), nn_net_params(m->d),
                nn_net_param_count(m->d)) != 0 ||
        concat2(&c.buffers, nn_net_buffers(m->g), nn_net_buffer_count(m->g), nn_net_buffers(m->d),
                nn_net_buffer_count(m->d)) != 0 ||
        concat2(&c.opt_state, m->go.state, m->go.state_count, m->dopt.state, m->dopt.state_count) != 0)
        dg_fail(err, "out of memory");
    else
        rc = nn_ckpt_save(path, &c, err);
    free(c.spec_text), free(c.params), free(c.buffers), free(c.opt_state);
    return rc;
}

/* Load a checkpoint's specs into m (unbuilt). path names the file in messages. */
static int parse_ckpt_specs(gan *m, const nn_ckpt *c, const char *path, dg_err *err) {
    const char *t = c->spec_text ? c->spec_text : "";
    const char *dpart = strstr(t, D_TAG);
    if (strncmp(t, G_TAG, strlen(G_TAG)) != 0 || !dpart)
        return dg_fail(err, "%s: not a digits-gan checkpoint (a classifier's? its spec has no generator and "
                            "discriminator)", path);
    size_t gl = (size_t)(dpart - t) - strlen(G_TAG);
    char *gtext = strndup(t + strlen(G_TAG), gl);
    if (!gtext) return dg_fail(err, "out of memory");
    int rc = nn_spec_parse(&m->gs, gtext, path, err);
    free(gtext);
    if (rc != 0) return -1;
    return nn_spec_parse(&m->ds, dpart + strlen(D_TAG), path, err);
}

static int restore_ckpt(gan *m, const nn_ckpt *c, const char *path, dg_err *err) {
    size_t gp = nn_net_param_count(m->g), dp = nn_net_param_count(m->d);
    size_t gb = nn_net_buffer_count(m->g), db = nn_net_buffer_count(m->d);
    size_t go = m->go.state_count, dn = m->dopt.state_count;
    int train = m->go.n != 0; /* sampling builds no optimizers and ignores their state */
    if (c->n_params != gp + dp || c->n_buffers != gb + db || (train && c->n_opt != go + dn))
        return dg_fail(err, "%s: its tensors do not fit the networks of its specs (corrupted)", path);
    memcpy(nn_net_params(m->g), c->params, gp * sizeof(float));
    memcpy(nn_net_params(m->d), c->params + gp, dp * sizeof(float));
    if (gb) memcpy(nn_net_buffers(m->g), c->buffers, gb * sizeof(float));
    if (db) memcpy(nn_net_buffers(m->d), c->buffers + gb, db * sizeof(float));
    if (train) {
        memcpy(m->go.state, c->opt_state, go * sizeof(float));
        memcpy(m->dopt.state, c->opt_state + go, dn * sizeof(float));
        m->go.t = m->dopt.t = c->opt_t;
    }
    return 0;
}

/* Resolve RUN (a directory or a checkpoint file) to the checkpoint's path. */
static int ckpt_path(const char *run, char *path, size_t n, dg_err *err) {
    struct stat st;
    if (stat(run, &st) != 0) return dg_fail_errno(err, "%s: cannot open", run);
    if (!S_ISDIR(st.st_mode)) {
        snprintf(path, n, "%s", run);
        return 0;
    }
    snprintf(path, n, "%s/%s", run, NN_GAN_CKPT);
    if (dg_path_exists(path)) return 0;
    char other[4096];
    snprintf(other, sizeof other, "%s/checkpoint.ckpt", run);
    if (dg_path_exists(other))
        return dg_fail(err, "%s: a digits-train run (checkpoint.ckpt), not a digits-gan run (no %s)", run,
                       NN_GAN_CKPT);
    return dg_fail(err, "%s: not a digits-gan run (no %s)", run, NN_GAN_CKPT);
}

/* ---- images ---- */

/* Generator forward (inference) of n images: noise (n, z_dim), labels (n) -> pixels (n, 784) as bytes. */
static int generate(gan *m, const float *z, const uint8_t *labels, size_t n, uint8_t *pix, dg_err *err) {
    int mb = nn_net_max_batch(m->g);
    for (size_t i = 0; i < n; i += (size_t)mb) {
        int b = (int)(n - i < (size_t)mb ? n - i : (size_t)mb);
        const float *img = nn_net_forward_cond(m->g, z + i * (size_t)m->z_dim, labels + i, b, 0, 0, 0);
        if (!img) return dg_fail(err, "generator forward failed (labels out of the embedding's range?)");
        for (size_t k = 0; k < (size_t)b * DG_PIXELS; k++) {
            float v = (img[k] + 1.0f) * 127.5f;
            pix[i * DG_PIXELS + k] = (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : lrintf(v));
        }
    }
    return 0;
}

static void noise_of(float *z, int z_dim, uint64_t seed, uint32_t purpose, uint32_t epoch, uint32_t index) {
    dg_rng r = dg_rng_make(seed, purpose, epoch, index);
    for (int k = 0; k < z_dim; k++) z[k] = dg_rng_normal(&r);
}

/* A 10x10 grid of images (cell (r, c) = image order[r * 10 + c]; fewer images leave black cells), white gaps, as a
 * grey PNG into fp. */
static int write_grid(FILE *fp, const char *path, const uint8_t *pix, size_t n, const size_t *order,
                      dg_err *err) {
    enum { GAP = 2, CELLS = 10 };
    int w = GAP + CELLS * (DG_SIDE + GAP), h = w;
    uint8_t *img = malloc((size_t)w * (size_t)h);
    if (!img) return dg_fail(err, "%s: out of memory", path);
    memset(img, 255, (size_t)w * (size_t)h);
    for (int r = 0; r < CELLS; r++)
        for (int c = 0; c < CELLS; c++) {
            size_t i = order[r * CELLS + c];
            int x0 = GAP + c * (DG_SIDE + GAP), y0 = GAP + r * (DG_SIDE + GAP);
            for (int y = 0; y < DG_SIDE; y++)
                for (int x = 0; x < DG_SIDE; x++)
                    img[(size_t)(y0 + y) * (size_t)w + (size_t)(x0 + x)] =
                        i < n ? pix[i * DG_PIXELS + (size_t)(y * DG_SIDE + x)] : 0;
        }
    int rc = dg_png_write_gray(fp, path, img, w, h, err);
    free(img);
    return rc;
}

/* The fixed-noise grid after an epoch: row r = label r, column c = fixed noise vector c. */
static int epoch_grid(gan *m, const char *path, uint64_t seed, dg_err *err) {
    float *z = malloc(100 * (size_t)m->z_dim * sizeof(float));
    uint8_t labels[100], *pix = malloc(100 * DG_PIXELS);
    size_t order[100];
    int rc = -1;
    if (!z || !pix) {
        dg_fail(err, "out of memory");
        goto done;
    }
    for (int i = 0; i < 100; i++) {
        labels[i] = (uint8_t)(i / 10);
        order[i] = (size_t)i;
        noise_of(z + (size_t)i * (size_t)m->z_dim, m->z_dim, seed, RNG_GAN_GRID, 0, (uint32_t)(i % 10));
    }
    if (generate(m, z, labels, 100, pix, err) != 0) goto done;
    dg_afile f;
    if (dg_afile_open(&f, path, err) != 0) goto done;
    if (write_grid(f.fp, path, pix, 100, order, err) != 0) {
        dg_afile_abort(&f);
        goto done;
    }
    rc = dg_afile_commit(&f, err);
done:
    free(z), free(pix);
    return rc;
}

/* ---- training ---- */

/* metrics.jsonl: the first `keep` lines of the existing file (a resumed run's epochs), then `add`. */
static int write_metrics(const char *path, uint32_t keep, const char *add, dg_err *err) {
    char *old = NULL;
    size_t n = 0, cut = 0;
    if (keep && dg_path_exists(path)) {
        if (dg_read_file(path, &old, &n, err) != 0) return -1;
        for (uint32_t l = 0; l < keep && cut < n; l++) {
            const char *nl = memchr(old + cut, '\n', n - cut);
            cut = nl ? (size_t)(nl - old) + 1 : n;
        }
    }
    dg_afile f;
    if (dg_afile_open(&f, path, err) != 0) {
        free(old);
        return -1;
    }
    if ((cut && fwrite(old, 1, cut, f.fp) != cut) || fputs(add, f.fp) < 0) {
        dg_afile_abort(&f);
        free(old);
        return dg_fail_errno(err, "%s: cannot write", path);
    }
    free(old);
    return dg_afile_commit(&f, err);
}

static float mean_sigmoid(const float *z, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += 1.0 / (1.0 + exp(-(double)z[i]));
    return (float)(s / n);
}

int nn_gan_train(const nn_gan_train_opts *o, dg_err *err) {
    gan m;
    memset(&m, 0, sizeof m);
    dg_dataset ds;
    memset(&ds, 0, sizeof ds);
    nn_ckpt c;
    memset(&c, 0, sizeof c);
    float *x = NULL, *z = NULL, *ones = NULL, *zeros = NULL, *dsum = NULL, *dimg = NULL, *fake = NULL;
    uint32_t *idx = NULL;
    uint8_t *lab = NULL;
    char path[4096], mpath[4096], key[256];
    int rc = -1;

    if (nn_spec_load(&m.gs, o->gen, err) != 0 || nn_spec_load(&m.ds, o->disc, err) != 0) goto done;
    if (check_specs(&m.gs, &m.ds, err) != 0) goto done;
    if (dg_dataset_open(&ds, o->data, err) != 0) goto done;
    if (!ds.has_labels) {
        dg_fail(err, "%s: an unlabelled dataset; a conditional GAN needs labels", o->data);
        goto done;
    }
    size_t rows = o->limit && o->limit < ds.n ? o->limit : ds.n;
    int B = m.gs.hyper.batch, epochs = o->epochs ? o->epochs : m.gs.hyper.epochs;
    if (rows < (size_t)B) {
        dg_fail(err, "%s: %zu rows, fewer than one batch of %d", o->data, rows, B);
        goto done;
    }
    if (gan_build(&m, B < 100 ? 100 : B, 1, err) != 0) goto done;
    snprintf(key, sizeof key, "digits-gan seed=%llu rows=%zu epochs=%d", (unsigned long long)o->seed, rows, epochs);
    snprintf(path, sizeof path, "%s/%s", o->run, NN_GAN_CKPT);
    snprintf(mpath, sizeof mpath, "%s/metrics.jsonl", o->run);

    int steps = (int)(rows / (size_t)B), zd = m.z_dim, s0 = 0;
    uint32_t start = 0;
    if (o->resume) {
        if (nn_ckpt_load(path, &c, err) != 0) goto done;
        char *text = joined_specs(&m);
        int ok = text && nn_ckpt_matches(&c, path, text, key, err);
        free(text);
        if (!ok) {
            if (!err->msg[0]) dg_fail(err, "out of memory");
            goto done;
        }
        if (restore_ckpt(&m, &c, path, err) != 0) goto done;
        start = c.epoch;
        /* a deadline's stop: the optimizer's step count places it inside the next epoch */
        uint64_t done_steps = (uint64_t)c.epoch * (uint64_t)steps;
        if (c.opt_t < done_steps || c.opt_t - done_steps >= (uint64_t)steps) {
            dg_fail(err, "%s: %llu optimizer steps do not fit %u epochs of %d steps (corrupted)", path,
                    (unsigned long long)c.opt_t, c.epoch, steps);
            goto done;
        }
        s0 = (int)(c.opt_t - done_steps);
    } else {
        if (dg_path_exists(path)) {
            dg_fail(err, "%s: already holds a run (use --resume, or another directory)", o->run);
            goto done;
        }
        if (dg_mkdirs(o->run, err) != 0) goto done;
        nn_net_init(m.g, o->seed);
        nn_net_init(m.d, o->seed + 1);
    }

    size_t nd = nn_net_param_count(m.d);
    x = malloc((size_t)B * DG_PIXELS * sizeof(float));
    fake = malloc((size_t)B * DG_PIXELS * sizeof(float));
    dimg = malloc((size_t)B * DG_PIXELS * sizeof(float));
    z = malloc((size_t)B * (size_t)zd * sizeof(float));
    ones = malloc((size_t)B * sizeof(float));
    zeros = calloc((size_t)B, sizeof(float));
    dsum = malloc((nd ? nd : 1) * sizeof(float));
    idx = malloc(rows * sizeof(uint32_t));
    lab = malloc((size_t)B);
    if (!x || !fake || !dimg || !z || !ones || !zeros || !dsum || !idx || !lab) {
        dg_fail(err, "out of memory");
        goto done;
    }
    for (int b = 0; b < B; b++) ones[b] = 1.0f;
    uint32_t stop = o->stop_at && (uint32_t)o->stop_at < (uint32_t)epochs ? (uint32_t)o->stop_at : (uint32_t)epochs;
    int timed_out = 0;
    for (uint32_t ep = start; ep < stop && !timed_out; ep++, s0 = 0) {
        double t0 = dg_now(), sld = 0, slg = 0, sdr = 0, sdf = 0;
        int s_end = steps;
        for (size_t i = 0; i < rows; i++) idx[i] = (uint32_t)i;
        dg_rng sh = dg_rng_make(o->seed, DG_RNG_SHUFFLE, ep, 0);
        dg_rng_shuffle_u32(&sh, idx, (uint32_t)rows);
        dg_progress prog;
        dg_progress_start(&prog, "gan", (size_t)steps);
        for (int s = s0; s < steps; s++) {
            uint64_t step = (uint64_t)ep * (uint64_t)steps + (uint64_t)s;
            for (int b = 0; b < B; b++) {
                size_t r = idx[(size_t)s * (size_t)B + (size_t)b];
                const uint8_t *p = dg_dataset_image(&ds, r);
                for (int k = 0; k < DG_PIXELS; k++) x[(size_t)b * DG_PIXELS + (size_t)k] = p[k] / 127.5f - 1.0f;
                lab[b] = (uint8_t)dg_dataset_label(&ds, r);
                noise_of(z + (size_t)b * (size_t)zd, zd, o->seed, RNG_GAN_NOISE, ep, (uint32_t)(s * B + b));
            }
            /* 1. D on real images */
            const float *out = nn_net_forward_cond(m.d, x, lab, B, 1, o->seed, 2 * step);
            if (!out) goto forward_failed;
            sdr += mean_sigmoid(out, B);
            float l_real = nn_net_loss_bce(m.d, ones, B);
            nn_net_backward(m.d);
            memcpy(dsum, nn_net_grads(m.d), nd * sizeof(float));
            /* 2. D on G's images of the same labels; one step on D with both gradients */
            const float *img = nn_net_forward_cond(m.g, z, lab, B, 1, o->seed, step);
            if (!img) goto forward_failed;
            memcpy(fake, img, (size_t)B * DG_PIXELS * sizeof(float));
            out = nn_net_forward_cond(m.d, fake, lab, B, 1, o->seed, 2 * step + 1);
            if (!out) goto forward_failed;
            sdf += mean_sigmoid(out, B);
            float l_fake = nn_net_loss_bce(m.d, zeros, B);
            nn_net_backward(m.d);
            const float *gd = nn_net_grads(m.d);
            for (size_t k = 0; k < nd; k++) dsum[k] += gd[k];
            nn_optim_step(&m.dopt, nn_net_params(m.d), dsum, m.ds.hyper.lr);
            /* 3. G through the updated D, non-saturating loss; D's parameter gradients are not needed (not computed) */
            out = nn_net_forward_cond(m.d, fake, lab, B, 1, o->seed, 2 * step + 1);
            if (!out) goto forward_failed;
            float l_g = nn_net_loss_bce(m.d, ones, B);
            nn_net_input_grad(m.d, dimg);
            if (nn_net_output_grad(m.g, dimg, B) != 0) goto forward_failed;
            nn_net_backward(m.g);
            nn_optim_step(&m.go, nn_net_params(m.g), nn_net_grads(m.g), m.gs.hyper.lr);
            sld += (double)l_real + (double)l_fake;
            slg += l_g;
            if (!isfinite(l_real) || !isfinite(l_fake) || !isfinite(l_g)) {
                dg_fail(err, "epoch %u step %d: a loss is not finite (D %g + %g, G %g)", ep + 1, s + 1,
                        (double)l_real, (double)l_fake, (double)l_g);
                goto done;
            }
            dg_progress_update(&prog, (size_t)s + 1, NULL);
            if (o->deadline > 0 && s + 1 < steps && dg_now() >= o->deadline) {
                s_end = s + 1, timed_out = 1;
                break;
            }
        }
        dg_progress_finish(&prog);
        int n = s_end - s0, whole = s_end == steps;
        double secs = dg_now() - t0, ips = secs > 0 ? (double)n * B / secs : 0;
        char line[512], gpath[4096];
        snprintf(line, sizeof line,
                 "{\"epoch\":%u,\"loss_d\":%.6g,\"loss_g\":%.6g,\"d_real\":%.6g,\"d_fake\":%.6g,"
                 "\"images_per_s\":%.1f,\"steps\":%d,\"seconds\":%.3f%s}\n",
                 ep + 1, sld / n, slg / n, sdr / n, sdf / n, ips, n, secs, whole ? "" : ",\"partial\":true");
        snprintf(gpath, sizeof gpath, "%s/grid-epoch-%03u.png", o->run, ep + 1);
        if (epoch_grid(&m, gpath, o->seed, err) != 0 || write_metrics(mpath, ep, line, err) != 0 ||
            save_ckpt(path, &m, whole ? ep + 1 : ep, o->seed, key, err) != 0)
            goto done;
        if (o->log)
            fprintf(o->log, "epoch %u/%d: loss_d %.4f loss_g %.4f D(x) %.3f D(G(z)) %.3f, %.0f images/s%s\n", ep + 1,
                    epochs, sld / n, slg / n, sdr / n, sdf / n, ips, whole ? "" : " (deadline: a part of the epoch)");
        if (o->deadline > 0 && ep + 1 < stop && dg_now() >= o->deadline) timed_out = 1;
    }
    if (timed_out && o->log) fprintf(o->log, "stopped at the deadline after %llu steps (--resume continues)\n",
                                     (unsigned long long)m.go.t);
    rc = 0;
    goto done;
forward_failed:
    dg_fail(err, "%s: a forward pass failed (a label outside the specs' embed classes?)", o->data);
done:
    nn_ckpt_free(&c);
    dg_dataset_close(&ds);
    gan_free(&m);
    free(x), free(z), free(ones), free(zeros), free(dsum), free(dimg), free(fake), free(idx), free(lab);
    return rc;
}

/* ---- sampling ---- */

int nn_gan_sample(const nn_gan_sample_opts *o, dg_err *err) {
    if (o->label < -1 || o->label > 9) return dg_fail(err, "label %d: expected 0..9 or all", o->label);
    if (o->n < 1 || o->n > NN_GAN_MAX_SAMPLES)
        return dg_fail(err, "n %ld: expected 1..%ld images", o->n, NN_GAN_MAX_SAMPLES);
    char path[4096];
    if (ckpt_path(o->run, path, sizeof path, err) != 0) return -1;
    gan m;
    memset(&m, 0, sizeof m);
    nn_ckpt c;
    memset(&c, 0, sizeof c);
    dg_dataset_writer w;
    memset(&w, 0, sizeof w);
    dg_afile gf;
    memset(&gf, 0, sizeof gf);
    float *z = NULL;
    uint8_t *pix = NULL, *lab = NULL, *grid_pix = NULL, *rec = NULL;
    int rc = -1, wopen = 0;
    if (nn_ckpt_load(path, &c, err) != 0 || parse_ckpt_specs(&m, &c, path, err) != 0 ||
        gan_build(&m, 100, 0, err) != 0 || restore_ckpt(&m, &c, path, err) != 0)
        goto done;

    /* free space: the dataset's records and header, and the grid (< 100 KB) */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", o->out);
    char *slash = strrchr(dir, '/');
    if (slash) *(slash == dir ? slash + 1 : slash) = '\0';
    else snprintf(dir, sizeof dir, ".");
    struct statvfs sv;
    double need = (double)o->n * (DG_PIXELS + 1) + 4096 + (o->grid ? 100000 : 0);
    if (statvfs(dir, &sv) == 0 && need > (double)sv.f_bavail * (double)sv.f_frsize) {
        dg_fail(err, "%s: %ld images need %.1f MB, %s has %.1f MB free", o->out, o->n, need / 1e6, dir,
                (double)sv.f_bavail * (double)sv.f_frsize / 1e6);
        goto done;
    }

    const size_t chunk = 1000;
    z = malloc(chunk * (size_t)m.z_dim * sizeof(float));
    pix = malloc(chunk * DG_PIXELS);
    lab = malloc(chunk);
    rec = malloc(chunk * (DG_PIXELS + 1));
    grid_pix = calloc(100, DG_PIXELS);
    if (!z || !pix || !lab || !rec || !grid_pix) {
        dg_fail(err, "out of memory");
        goto done;
    }
    if (dg_dataset_writer_open(&w, o->out, 1, err) != 0) goto done;
    wopen = 1;
    for (size_t i0 = 0; i0 < (size_t)o->n; i0 += chunk) {
        size_t k = (size_t)o->n - i0 < chunk ? (size_t)o->n - i0 : chunk;
        for (size_t j = 0; j < k; j++) {
            size_t i = i0 + j;
            lab[j] = (uint8_t)(o->label >= 0 ? o->label : (int)(i % 10));
            noise_of(z + j * (size_t)m.z_dim, m.z_dim, o->seed, RNG_GAN_SAMPLE, 0, (uint32_t)i);
        }
        if (generate(&m, z, lab, k, pix, err) != 0) goto done;
        for (size_t j = 0; j < k; j++) {
            rec[j * (DG_PIXELS + 1)] = lab[j];
            memcpy(rec + j * (DG_PIXELS + 1) + 1, pix + j * DG_PIXELS, DG_PIXELS);
            if (i0 + j < 100) memcpy(grid_pix + (i0 + j) * DG_PIXELS, pix + j * DG_PIXELS, DG_PIXELS);
        }
        if (dg_dataset_writer_add_records(&w, rec, k, err) != 0) goto done;
    }
    if (o->grid) {
        size_t order[100];
        /* label all: row r holds label r (images r, r + 10, ...); one label: the first 100 in reading order */
        for (int r = 0; r < 10; r++)
            for (int col = 0; col < 10; col++) order[r * 10 + col] = (size_t)(o->label >= 0 ? r * 10 + col : col * 10 + r);
        if (dg_afile_open(&gf, o->grid, err) != 0 ||
            write_grid(gf.fp, o->grid, grid_pix, (size_t)o->n < 100 ? (size_t)o->n : 100, order, err) != 0)
            goto done;
        if (dg_dataset_writer_finish(&w, err) != 0) {
            wopen = 0;
            goto done;
        }
        wopen = 0;
        dg_afile *fs[2] = {&w.f, &gf};
        if (dg_afile_commit_all(fs, 2, err) != 0) goto done;
    } else {
        wopen = 0;
        if (dg_dataset_writer_commit(&w, err) != 0) goto done;
    }
    rc = 0;
done:
    if (wopen) dg_dataset_writer_abort(&w);
    if (rc != 0) dg_afile_abort(&gf);
    nn_ckpt_free(&c);
    gan_free(&m);
    free(z), free(pix), free(lab), free(rec), free(grid_pix);
    return rc;
}
