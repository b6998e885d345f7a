/* nn/checkpoint: sectioned, checksummed, atomically written training state (see nn/checkpoint.h). */
#include "nn/checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dg_file.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "nn/checkpoint writes floats in host order and assumes a little-endian host"
#endif

static const char MAGIC[8] = {'D', 'I', 'G', 'I', 'T', 'C', 'K', 'P'};
#define HEADER_BYTES 32
#define STATE_BYTES 80
#define PLAN_BYTES 28

uint32_t nn_crc32(uint32_t crc, const void *data, size_t n) {
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- writing ---- */

typedef struct writer {
    FILE *fp;
    uint32_t crc;
    uint64_t len;
    int failed;
} writer;

static void put(writer *w, const void *p, size_t n) {
    if (w->failed || n == 0) return;
    if (fwrite(p, 1, n, w->fp) != n) {
        w->failed = 1;
        return;
    }
    w->crc = nn_crc32(w->crc, p, n);
    w->len += n;
}

static void section(writer *w, const char *tag, const void *p, size_t n) {
    char t[8] = {0};
    memcpy(t, tag, strlen(tag) < 8 ? strlen(tag) : 8);
    uint64_t n64 = n;
    put(w, t, 8);
    put(w, &n64, 8);
    put(w, p, n);
}

static void put_le(unsigned char *b, size_t *at, const void *v, size_t n) {
    memcpy(b + *at, v, n);
    *at += n;
}

int nn_ckpt_save(const char *path, const nn_ckpt *c, dg_err *err) {
    dg_afile f;
    if (dg_afile_open(&f, path, err) != 0) return -1;
    unsigned char header[HEADER_BYTES] = {0};
    writer w = {f.fp, 0, 0, fwrite(header, 1, HEADER_BYTES, f.fp) != HEADER_BYTES};
    const char *spec = c->spec_text ? c->spec_text : "", *run = c->run_key ? c->run_key : "";
    const char *metrics = c->metrics ? c->metrics : "";
    section(&w, "spec", spec, strlen(spec));
    section(&w, "run", run, strlen(run));
    unsigned char st[STATE_BYTES] = {0};
    size_t at = 0;
    int32_t bad = c->sched.bad_epochs;
    put_le(st, &at, &c->epoch, 4);
    put_le(st, &at, &c->best_epoch, 4);
    put_le(st, &at, &c->seed, 8);
    put_le(st, &at, &c->seconds, 8);
    put_le(st, &at, &c->opt_t, 8);
    put_le(st, &at, &c->sched.scale, 8);
    put_le(st, &at, &c->sched.best, 8);
    put_le(st, &at, &bad, 4);
    put_le(st, &at, &c->bad_epochs, 4);
    put_le(st, &at, &c->best_val_loss, 8);
    section(&w, "state", st, STATE_BYTES);
    section(&w, "params", c->params, c->n_params * sizeof(float));
    section(&w, "buffers", c->buffers, c->n_buffers * sizeof(float));
    section(&w, "optim", c->opt_state, c->n_opt * sizeof(float));
    if (c->best_params) section(&w, "bestp", c->best_params, c->n_params * sizeof(float));
    if (c->best_buffers) section(&w, "bestb", c->best_buffers, c->n_buffers * sizeof(float));
    section(&w, "metrics", metrics, strlen(metrics));
    if (c->epochs_target) {
        unsigned char pl[PLAN_BYTES];
        at = 0;
        put_le(pl, &at, &c->epochs_target, 4);
        put_le(pl, &at, &c->sched.warp_at, 8);
        put_le(pl, &at, &c->sched.warp_v, 8);
        put_le(pl, &at, &c->sched.warp_k, 8);
        section(&w, "plan", pl, PLAN_BYTES);
    }
    if (c->ema_decay != 0) {
        size_t n = c->n_params + c->n_buffers;
        char tag[8] = "ema";
        uint64_t bytes = 4 + (uint64_t)n * sizeof(float);
        put(&w, tag, 8);
        put(&w, &bytes, 8);
        put(&w, &c->ema_decay, 4);
        put(&w, c->ema, n * sizeof(float));
    }
    if (w.failed) {
        dg_fail_errno(err, "%s: write failed", path);
        dg_afile_abort(&f);
        return -1;
    }
    uint32_t version = NN_CKPT_VERSION;
    memcpy(header, MAGIC, 8);
    memcpy(header + 8, &version, 4);
    memcpy(header + 16, &w.len, 8);
    memcpy(header + 24, &w.crc, 4);
    if (fseek(f.fp, 0, SEEK_SET) != 0 || fwrite(header, 1, HEADER_BYTES, f.fp) != HEADER_BYTES) {
        dg_fail_errno(err, "%s: write failed", path);
        dg_afile_abort(&f);
        return -1;
    }
    return dg_afile_commit(&f, err);
}

/* ---- reading ---- */

typedef struct sec {
    char tag[9];
    const unsigned char *data;
    uint64_t n;
} sec;

#define MAX_SECTIONS 32

static const sec *find(const sec *s, int n, const char *tag) {
    for (int i = 0; i < n; i++)
        if (strcmp(s[i].tag, tag) == 0) return &s[i];
    return NULL;
}

static char *dup_text(const sec *s) {
    char *t = malloc(s->n + 1);
    if (!t) return NULL;
    memcpy(t, s->data, s->n);
    t[s->n] = '\0';
    return t;
}

/* Copy a float section of exactly `count` floats (count from the params section for the optional ones). */
static int get_floats(const sec *s, float **out, size_t *count, const char *path, dg_err *err) {
    if (s->n % sizeof(float)) return dg_fail(err, "%s: section '%s' is not a whole number of floats", path, s->tag);
    size_t n = (size_t)(s->n / sizeof(float));
    if (count) {
        if (*count != (size_t)-1 && *count != n)
            return dg_fail(err, "%s: section '%s' has %zu floats, expected %zu", path, s->tag, n, *count);
        *count = n;
    }
    *out = malloc(n ? n * sizeof(float) : 1);
    if (!*out) return dg_fail(err, "%s: out of memory", path);
    if (n) memcpy(*out, s->data, n * sizeof(float));
    return 0;
}

int nn_ckpt_load(const char *path, nn_ckpt *c, dg_err *err) {
    memset(c, 0, sizeof *c);
    dg_map m;
    if (dg_map_open(&m, path, err) != 0) return -1;
    int rc = -1;
    uint32_t version, crc;
    uint64_t len;
    if (m.size < HEADER_BYTES || memcmp(m.data, MAGIC, 8) != 0) {
        dg_fail(err, "%s: not a digits checkpoint (bad magic)", path);
        goto done;
    }
    memcpy(&version, m.data + 8, 4);
    memcpy(&len, m.data + 16, 8);
    memcpy(&crc, m.data + 24, 4);
    if (version != NN_CKPT_VERSION) {
        dg_fail(err, "%s: checkpoint version %u, this build reads version %d", path, version, NN_CKPT_VERSION);
        goto done;
    }
    if (len != m.size - HEADER_BYTES) {
        dg_fail(err, "%s: %s checkpoint (%zu payload bytes, header says %llu)", path,
                len > m.size - HEADER_BYTES ? "truncated" : "oversized", m.size - HEADER_BYTES,
                (unsigned long long)len);
        goto done;
    }
    if (nn_crc32(0, m.data + HEADER_BYTES, (size_t)len) != crc) {
        dg_fail(err, "%s: corrupted checkpoint (CRC-32 mismatch)", path);
        goto done;
    }
    sec s[MAX_SECTIONS];
    int ns = 0;
    size_t at = HEADER_BYTES;
    while (at < m.size) {
        uint64_t n;
        if (m.size - at < 16 || ns == MAX_SECTIONS) {
            dg_fail(err, "%s: corrupted checkpoint (bad section table)", path);
            goto done;
        }
        memcpy(s[ns].tag, m.data + at, 8);
        s[ns].tag[8] = '\0';
        memcpy(&n, m.data + at + 8, 8);
        at += 16;
        if (n > m.size - at) {
            dg_fail(err, "%s: corrupted checkpoint (section '%s' runs past the end)", path, s[ns].tag);
            goto done;
        }
        s[ns].data = m.data + at;
        s[ns].n = n;
        at += (size_t)n;
        ns++;
    }
    static const char *const required[] = {"spec", "run", "state", "params", "buffers", "optim", "metrics"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!find(s, ns, required[i])) {
            dg_fail(err, "%s: checkpoint has no '%s' section", path, required[i]);
            goto done;
        }
    const sec *st = find(s, ns, "state");
    if (st->n != STATE_BYTES) {
        dg_fail(err, "%s: checkpoint 'state' section has %llu bytes, expected %d", path, (unsigned long long)st->n,
                STATE_BYTES);
        goto done;
    }
    const unsigned char *p = st->data;
    int32_t bad;
    memcpy(&c->epoch, p, 4);
    memcpy(&c->best_epoch, p + 4, 4);
    memcpy(&c->seed, p + 8, 8);
    memcpy(&c->seconds, p + 16, 8);
    memcpy(&c->opt_t, p + 24, 8);
    memcpy(&c->sched.scale, p + 32, 8);
    memcpy(&c->sched.best, p + 40, 8);
    memcpy(&bad, p + 48, 4);
    memcpy(&c->bad_epochs, p + 52, 4);
    memcpy(&c->best_val_loss, p + 56, 8);
    c->sched.bad_epochs = bad;
    c->sched.warp_at = 0;
    c->sched.warp_v = 0;
    c->sched.warp_k = 1;
    const sec *pl = find(s, ns, "plan");
    if (pl) {
        if (pl->n != PLAN_BYTES) {
            dg_fail(err, "%s: checkpoint 'plan' section has %llu bytes, expected %d", path, (unsigned long long)pl->n,
                    PLAN_BYTES);
            goto done;
        }
        memcpy(&c->epochs_target, pl->data, 4);
        memcpy(&c->sched.warp_at, pl->data + 4, 8);
        memcpy(&c->sched.warp_v, pl->data + 12, 8);
        memcpy(&c->sched.warp_k, pl->data + 20, 8);
        if (c->epochs_target == 0 || !isfinite(c->sched.warp_at) || !isfinite(c->sched.warp_v) ||
            !isfinite(c->sched.warp_k)) {
            dg_fail(err, "%s: checkpoint 'plan' section holds a bad value", path);
            goto done;
        }
    }
    c->spec_text = dup_text(find(s, ns, "spec"));
    c->run_key = dup_text(find(s, ns, "run"));
    c->metrics = dup_text(find(s, ns, "metrics"));
    if (!c->spec_text || !c->run_key || !c->metrics) {
        dg_fail(err, "%s: out of memory", path);
        goto done;
    }
    c->n_params = c->n_buffers = (size_t)-1;
    c->n_opt = (size_t)-1;
    if (get_floats(find(s, ns, "params"), &c->params, &c->n_params, path, err) != 0 ||
        get_floats(find(s, ns, "buffers"), &c->buffers, &c->n_buffers, path, err) != 0 ||
        get_floats(find(s, ns, "optim"), &c->opt_state, &c->n_opt, path, err) != 0)
        goto done;
    const sec *bp = find(s, ns, "bestp"), *bb = find(s, ns, "bestb");
    if (bp && get_floats(bp, &c->best_params, &c->n_params, path, err) != 0) goto done;
    if (bb && get_floats(bb, &c->best_buffers, &c->n_buffers, path, err) != 0) goto done;
    const sec *em = find(s, ns, "ema");
    if (em) {
        size_t n = c->n_params + c->n_buffers;
        if (em->n != 4 + (uint64_t)n * sizeof(float)) {
            dg_fail(err, "%s: checkpoint 'ema' section has %llu bytes, expected %zu (decay and %zu floats)", path,
                    (unsigned long long)em->n, 4 + n * sizeof(float), n);
            goto done;
        }
        memcpy(&c->ema_decay, em->data, 4);
        if (!(c->ema_decay > 0 && c->ema_decay < 1)) {
            dg_fail(err, "%s: checkpoint 'ema' section holds the decay %g, expected (0, 1)", path,
                    (double)c->ema_decay);
            goto done;
        }
        c->ema = malloc(n ? n * sizeof(float) : 1);
        if (!c->ema) {
            dg_fail(err, "%s: out of memory", path);
            goto done;
        }
        if (n) memcpy(c->ema, em->data + 4, n * sizeof(float));
    }
    rc = 0;
done:
    dg_map_close(&m);
    if (rc != 0) nn_ckpt_free(c);
    return rc;
}

/* Line `line` (1-based) of text, into buf. */
static void nth_line(const char *text, int line, char *buf, size_t n) {
    for (int i = 1; i < line && text; i++) {
        text = strchr(text, '\n');
        if (text) text++;
    }
    size_t len = text ? strcspn(text, "\n") : 0;
    if (len >= n) len = n - 1;
    if (len) memcpy(buf, text, len);
    buf[len] = '\0';
}

static int first_diff_line(const char *a, const char *b) {
    int line = 1;
    for (; *a && *a == *b; a++, b++)
        if (*a == '\n') line++;
    return line;
}

int nn_ckpt_matches(const nn_ckpt *c, const char *path, const char *spec_text, const char *run_key, dg_err *err) {
    if (strcmp(c->spec_text, spec_text) != 0) {
        int line = first_diff_line(c->spec_text, spec_text);
        char here[160], there[160];
        nth_line(spec_text, line, here, sizeof here);
        nth_line(c->spec_text, line, there, sizeof there);
        dg_fail(err,
                "%s: checkpoint of a different model or hyperparameters (resolved spec line %d: '%s' now, '%s' in "
                "the checkpoint)",
                path, line, here, there);
        return 0;
    }
    if (strcmp(c->run_key, run_key) != 0) {
        dg_fail(err, "%s: checkpoint of a different run ('%s' now, '%s' in the checkpoint)", path, run_key,
                c->run_key);
        return 0;
    }
    return 1;
}

void nn_ckpt_free(nn_ckpt *c) {
    free(c->spec_text);
    free(c->run_key);
    free(c->params);
    free(c->buffers);
    free(c->opt_state);
    free(c->best_params);
    free(c->best_buffers);
    free(c->ema);
    free(c->metrics);
    memset(c, 0, sizeof *c);
}
