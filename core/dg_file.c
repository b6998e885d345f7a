/* dg_file: write-then-rename outputs and read-only maps (see dg_file.h). */
#include "core/dg_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

int dg_afile_open(dg_afile *f, const char *path, dg_err *err) {
    memset(f, 0, sizeof *f);
    size_t n = strlen(path) + 32;
    f->path = dup_str(path);
    f->tmp_path = calloc(1, n);
    if (!f->path || !f->tmp_path) {
        dg_afile_abort(f);
        return dg_fail(err, "%s: out of memory", path);
    }
    snprintf(f->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    f->fp = fopen(f->tmp_path, "wb");
    if (!f->fp) {
        dg_fail_errno(err, "%s: cannot write", path);
        dg_afile_abort(f);
        return -1;
    }
    return 0;
}

int dg_afile_commit(dg_afile *f, dg_err *err) {
    int rc = 0;
    if (!f->fp) return dg_fail(err, "internal: commit of a closed file");
    if (fflush(f->fp) != 0 || ferror(f->fp)) {
        rc = dg_fail_errno(err, "%s: write failed", f->path);
    } else if (fsync(fileno(f->fp)) != 0 && errno != EINVAL && errno != EROFS) {
        rc = dg_fail_errno(err, "%s: fsync failed", f->path);
    }
    if (fclose(f->fp) != 0 && rc == 0) rc = dg_fail_errno(err, "%s: close failed", f->path);
    f->fp = NULL;
    if (rc == 0 && rename(f->tmp_path, f->path) != 0) rc = dg_fail_errno(err, "%s: rename failed", f->path);
    if (rc != 0) unlink(f->tmp_path);
    free(f->path);
    free(f->tmp_path);
    f->path = f->tmp_path = NULL;
    return rc;
}

void dg_afile_abort(dg_afile *f) {
    if (f->fp) {
        fclose(f->fp);
        f->fp = NULL;
    }
    if (f->tmp_path) unlink(f->tmp_path);
    free(f->path);
    free(f->tmp_path);
    f->path = f->tmp_path = NULL;
}

int dg_write_file_atomic(const char *path, const void *data, size_t n, dg_err *err) {
    dg_afile f = {0};
    if (dg_afile_open(&f, path, err) != 0) return -1;
    if (n && fwrite(data, 1, n, f.fp) != n) {
        dg_fail_errno(err, "%s: write failed", path);
        dg_afile_abort(&f);
        return -1;
    }
    return dg_afile_commit(&f, err);
}

int dg_read_file(const char *path, char **data, size_t *n, dg_err *err) {
    *data = NULL;
    *n = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return dg_fail_errno(err, "%s: cannot open", path);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(fp);
        return dg_fail(err, "%s: out of memory", path);
    }
    for (;;) {
        if (len == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(fp);
                return dg_fail(err, "%s: out of memory", path);
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0) break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(buf);
        return dg_fail_errno(err, "%s: read failed", path);
    }
    buf[len] = '\0';
    *data = buf;
    *n = len;
    return 0;
}

int dg_read_text(const char *path, const char *what, char **text, dg_err *err) {
    size_t n;
    if (dg_read_file(path, text, &n, err) != 0) return -1;
    if (strlen(*text) != n) {
        free(*text);
        *text = NULL;
        return dg_fail(err, "%s: contains a NUL byte; not a %s", path, what);
    }
    return 0;
}

int dg_map_open(dg_map *m, const char *path, dg_err *err) {
    m->data = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return dg_fail_errno(err, "%s: cannot open", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return dg_fail_errno(err, "%s: cannot stat", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return dg_fail(err, "%s: not a regular file", path);
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            return dg_fail_errno(err, "%s: cannot map", path);
        }
        m->data = p;
        m->size = (size_t)st.st_size;
    }
    close(fd);
    return 0;
}

void dg_map_close(dg_map *m) {
    if (m->data) munmap((void *)m->data, m->size);
    m->data = NULL;
    m->size = 0;
}

int dg_path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int dg_mkdirs(const char *path, dg_err *err) {
    char *p = dup_str(path);
    if (!p) return dg_fail(err, "%s: out of memory", path);
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                dg_fail_errno(err, "%s: cannot create directory", p);
                free(p);
                return -1;
            }
            *s = c;
            if (c == '\0') break;
        }
    }
    free(p);
    return 0;
}
