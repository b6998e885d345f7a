/* fuzz_checkpoint: nn/checkpoint (a training run's resumable state). So that mutations reach the section parser
 * instead of stopping at the checksum, an input whose reserved header word (bytes 28..31) is zero gets its payload
 * length and CRC-32 set right before it is written; other inputs are written as they are. Invariants: a load either
 * fails with a message naming the file or gives sections of whole floats with best params/buffers as long as
 * params/buffers and an ema decay in (0, 1) exactly when there is an average; saving what was loaded and loading
 * that gives the same values, and the file saved is a fixed point (saving the reloaded state writes the same
 * bytes). */
#include <string.h>

#include "fuzz_util.h"
#include "nn/checkpoint.h"

static int same_floats(const float *a, const float *b, size_t n) {
    return n == 0 || (a && b && memcmp(a, b, n * sizeof(float)) == 0);
}

static void same_ckpt(const nn_ckpt *a, const nn_ckpt *b) {
    FZ_CHECK(strcmp(a->spec_text, b->spec_text) == 0 && strcmp(a->run_key, b->run_key) == 0 &&
                 strcmp(a->metrics, b->metrics) == 0,
             "texts differ after the round trip");
    FZ_CHECK(a->epoch == b->epoch && a->seed == b->seed && memcmp(&a->seconds, &b->seconds, 8) == 0 &&
                 a->opt_t == b->opt_t && memcmp(&a->sched.scale, &b->sched.scale, 8) == 0 &&
                 memcmp(&a->sched.best, &b->sched.best, 8) == 0 && a->sched.bad_epochs == b->sched.bad_epochs &&
                 memcmp(&a->best_val_loss, &b->best_val_loss, 8) == 0 && a->best_epoch == b->best_epoch &&
                 a->bad_epochs == b->bad_epochs,
             "state differs after the round trip");
    FZ_CHECK(a->n_params == b->n_params && a->n_buffers == b->n_buffers && a->n_opt == b->n_opt, "counts differ");
    FZ_CHECK(same_floats(a->params, b->params, a->n_params) && same_floats(a->buffers, b->buffers, a->n_buffers) &&
                 same_floats(a->opt_state, b->opt_state, a->n_opt),
             "floats differ after the round trip");
    FZ_CHECK(!a->best_params == !b->best_params && !a->best_buffers == !b->best_buffers, "best sections differ");
    if (a->best_params) FZ_CHECK(same_floats(a->best_params, b->best_params, a->n_params), "best params differ");
    if (a->best_buffers) FZ_CHECK(same_floats(a->best_buffers, b->best_buffers, a->n_buffers), "best buffers differ");
    FZ_CHECK(a->ema_decay == b->ema_decay && !a->ema == !b->ema, "ema sections differ");
    if (a->ema) FZ_CHECK(same_floats(a->ema, b->ema, a->n_params + a->n_buffers), "ema floats differ");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) abort();
    memcpy(buf, data, size);
    static const uint8_t zero[4];
    if (size >= 32 && memcmp(buf + 28, zero, 4) == 0) {
        uint64_t len = size - 32;
        uint32_t crc = nn_crc32(0, buf + 32, size - 32);
        memcpy(buf + 16, &len, 8);
        memcpy(buf + 24, &crc, 4);
    }
    char path[512], out[512], out2[512];
    fz_file(path, sizeof path, "in.ckpt", buf, size);
    fz_path(out, sizeof out, "out.ckpt");
    fz_path(out2, sizeof out2, "out2.ckpt");
    free(buf);
    nn_ckpt c, d;
    dg_err err = {{0}};
    if (nn_ckpt_load(path, &c, &err) != 0) {
        FZ_CHECK(strstr(err.msg, path) == err.msg, "message does not name the file: %s", err.msg);
        return 0;
    }
    FZ_CHECK(c.spec_text && c.run_key && c.metrics, "a text section is NULL");
    FZ_CHECK((c.n_params == 0 || c.params) && (c.n_buffers == 0 || c.buffers) && (c.n_opt == 0 || c.opt_state),
             "a float section is NULL");
    FZ_CHECK(c.ema_decay == 0 ? !c.ema : c.ema && c.ema_decay > 0 && c.ema_decay < 1, "ema decay %g with ema %p",
             (double)c.ema_decay, (void *)c.ema);
    FZ_CHECK(nn_ckpt_matches(&c, path, c.spec_text, c.run_key, &err) == 1, "a checkpoint does not match itself");
    FZ_CHECK(nn_ckpt_save(out, &c, &err) == 0, "save failed: %s", err.msg);
    FZ_CHECK(nn_ckpt_load(out, &d, &err) == 0, "the saved checkpoint does not load: %s", err.msg);
    same_ckpt(&c, &d);
    FZ_CHECK(nn_ckpt_save(out2, &d, &err) == 0, "save failed: %s", err.msg);
    size_t n1, n2;
    unsigned char *b1 = fz_slurp(out, &n1), *b2 = fz_slurp(out2, &n2);
    FZ_CHECK(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0, "saving a reloaded checkpoint changes its bytes");
    free(b1);
    free(b2);
    nn_ckpt_free(&d);
    nn_ckpt_free(&c);
    return 0;
}
