/* dg_tfevents: TFRecord framing, CRC32C and a minimal Event encoder (see core/dg_tfevents.h). */
#include "core/dg_tfevents.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/dg_file.h"

/* ---- CRC32C, bit at a time: event records are a few hundred bytes per epoch, and no table means no shared
 * state to initialize ---- */

uint32_t dg_crc32c(uint32_t crc, const void *data, size_t n) {
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = crc & 1 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return ~crc;
}

uint32_t dg_crc32c_mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

/* ---- protobuf encoding: a cursor that counts what it would write past cap ---- */

typedef struct pb {
    uint8_t *buf;
    size_t cap, len;
} pb;

static void put(pb *b, const void *p, size_t n) {
    if (b->len < b->cap) memcpy(b->buf + b->len, p, b->cap - b->len < n ? b->cap - b->len : n);
    b->len += n;
}

static void put_varint(pb *b, uint64_t v) {
    uint8_t tmp[10];
    int n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) tmp[n] |= 0x80;
        n++;
    } while (v);
    put(b, tmp, (size_t)n);
}

static size_t varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

/* wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
static void put_key(pb *b, int field, int wire) { put_varint(b, (uint64_t)(field << 3 | wire)); }

static void put_le(pb *b, uint64_t v, int bytes) {
    uint8_t tmp[8];
    for (int i = 0; i < bytes; i++) tmp[i] = (uint8_t)(v >> (8 * i));
    put(b, tmp, (size_t)bytes);
}

static size_t value_size(const char *tag) {
    size_t tl = strlen(tag);
    return 1 + varint_size(tl) + tl + 1 + 4; /* tag (field 1), simple_value (field 2, fixed32) */
}

size_t dg_tfevents_encode(uint8_t *buf, size_t cap, double wall_time, int64_t step, const char *file_version,
                          int n, const char *const *tags, const float *values) {
    pb b = {buf, cap, 0};
    uint64_t bits;
    memcpy(&bits, &wall_time, 8);
    put_key(&b, 1, 1);
    put_le(&b, bits, 8);
    if (file_version) {
        size_t fl = strlen(file_version);
        put_key(&b, 3, 2);
        put_varint(&b, fl);
        put(&b, file_version, fl);
        return b.len;
    }
    if (step != 0) { /* proto3: a zero default is not written */
        put_key(&b, 2, 0);
        put_varint(&b, (uint64_t)step);
    }
    size_t summary = 0;
    for (int i = 0; i < n; i++) summary += 1 + varint_size(value_size(tags[i])) + value_size(tags[i]);
    put_key(&b, 5, 2);
    put_varint(&b, summary);
    for (int i = 0; i < n; i++) {
        size_t tl = strlen(tags[i]);
        put_key(&b, 1, 2); /* Summary.value */
        put_varint(&b, value_size(tags[i]));
        put_key(&b, 1, 2); /* Value.tag */
        put_varint(&b, tl);
        put(&b, tags[i], tl);
        uint32_t fb;
        memcpy(&fb, &values[i], 4);
        put_key(&b, 2, 5); /* Value.simple_value */
        put_le(&b, fb, 4);
    }
    return b.len;
}

/* ---- the file ---- */

static int write_record(dg_tfevents *w, const uint8_t *data, size_t n, dg_err *err) {
    uint8_t head[12];
    uint64_t len = n;
    for (int i = 0; i < 8; i++) head[i] = (uint8_t)(len >> (8 * i));
    uint32_t hc = dg_crc32c_mask(dg_crc32c(0, head, 8));
    for (int i = 0; i < 4; i++) head[8 + i] = (uint8_t)(hc >> (8 * i));
    uint32_t dc = dg_crc32c_mask(dg_crc32c(0, data, n));
    uint8_t tail[4];
    for (int i = 0; i < 4; i++) tail[i] = (uint8_t)(dc >> (8 * i));
    if (fwrite(head, 1, 12, w->fp) != 12 || fwrite(data, 1, n, w->fp) != n || fwrite(tail, 1, 4, w->fp) != 4)
        return dg_fail_errno(err, "%s: write failed", w->path);
    return 0;
}

static int sync_file(dg_tfevents *w, dg_err *err) {
    if (fflush(w->fp) != 0 || fsync(fileno(w->fp)) != 0) return dg_fail_errno(err, "%s: write failed", w->path);
    return 0;
}

static int write_event(dg_tfevents *w, double wall_time, int64_t step, const char *file_version, int n,
                       const char *const *tags, const float *values, dg_err *err) {
    uint8_t small[1024];
    size_t need = dg_tfevents_encode(small, sizeof small, wall_time, step, file_version, n, tags, values);
    uint8_t *buf = small;
    if (need > sizeof small) {
        buf = malloc(need);
        if (!buf) return dg_fail(err, "out of memory");
        dg_tfevents_encode(buf, need, wall_time, step, file_version, n, tags, values);
    }
    int rc = write_record(w, buf, need, err);
    if (buf != small) free(buf);
    if (rc == 0) rc = sync_file(w, err);
    return rc;
}

int dg_tfevents_open(dg_tfevents *w, const char *dir, dg_err *err) {
    memset(w, 0, sizeof *w);
    if (dg_mkdirs(dir, err) != 0) return -1;
    char host[256] = "localhost";
    if (gethostname(host, sizeof host) != 0) strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++)
        if (*p == '/') *p = '_';
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int len = snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%lld.%s.%ld", dir, (long long)ts.tv_sec,
                       host, (long)getpid());
    if (len < 0 || (size_t)len >= sizeof w->path) return dg_fail(err, "%s: path too long", dir);
    /* "x": a file of this name (same second, host and pid) is never overwritten. */
    w->fp = fopen(w->path, "wbx");
    if (!w->fp) return dg_fail_errno(err, "%s: cannot create", w->path);
    double now = (double)ts.tv_sec + ts.tv_nsec * 1e-9;
    if (write_event(w, now, 0, "brain.Event:2", 0, NULL, NULL, err) != 0) {
        dg_tfevents_close(w);
        return -1;
    }
    return 0;
}

int dg_tfevents_scalars(dg_tfevents *w, double wall_time, int64_t step, int n, const char *const *tags,
                        const float *values, dg_err *err) {
    if (!w->fp) return dg_fail(err, "event file not open");
    return write_event(w, wall_time, step, NULL, n, tags, values, err);
}

void dg_tfevents_close(dg_tfevents *w) {
    if (w->fp) fclose(w->fp);
    w->fp = NULL;
}
