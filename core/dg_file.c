/* dg_file: write-then-rename outputs and read-only maps (see dg_file.h). */
#include "core/dg_file.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
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

/* Remove "<path>.tmp.<pid>" and "<path>.old.<pid>" files (dg_afile_commit_all's saved copies) whose process is gone:
 * a writer killed before its rename. Those of a live process, or of a PID now reused by another process, stay. */
static void remove_stale_temps(const char *path) {
    char *copy = dup_str(path);
    if (!copy) return;
    char *slash = strrchr(copy, '/');
    const char *dir = ".", *base = copy;
    if (slash) {
        *slash = '\0';
        dir = slash == copy ? "/" : copy;
        base = slash + 1;
    }
    size_t blen = strlen(base);
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            const char *name = e->d_name;
            if (strncmp(name, base, blen) != 0) continue;
            if (strncmp(name + blen, ".tmp.", 5) != 0 && strncmp(name + blen, ".old.", 5) != 0) continue;
            const char *digits = name + blen + 5;
            char *end;
            errno = 0;
            long pid = strtol(digits, &end, 10);
            if (digits[0] < '1' || digits[0] > '9' || *end != '\0' || errno || pid <= 0 || (pid_t)pid != pid)
                continue;
            if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
            size_t n = strlen(dir) + strlen(name) + 2;
            char *full = malloc(n);
            if (full) {
                snprintf(full, n, "%s/%s", dir, name);
                unlink(full);
                free(full);
            }
        }
        closedir(d);
    }
    free(copy);
}

int dg_afile_open(dg_afile *f, const char *path, dg_err *err) {
    memset(f, 0, sizeof *f);
    remove_stale_temps(path);
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

/* Flush, fsync and close f's stream, keeping the temporary. */
static int finish(dg_afile *f, dg_err *err) {
    int rc = 0;
    if (!f->fp) return dg_fail(err, "internal: commit of a closed file");
    if (fflush(f->fp) != 0 || ferror(f->fp)) {
        rc = dg_fail_errno(err, "%s: write failed", f->path);
    } else if (fsync(fileno(f->fp)) != 0 && errno != EINVAL && errno != EROFS) {
        rc = dg_fail_errno(err, "%s: fsync failed", f->path);
    }
    if (fclose(f->fp) != 0 && rc == 0) rc = dg_fail_errno(err, "%s: close failed", f->path);
    f->fp = NULL;
    return rc;
}

static void release(dg_afile *f) {
    free(f->path);
    free(f->tmp_path);
    f->path = f->tmp_path = NULL;
}

int dg_afile_commit(dg_afile *f, dg_err *err) {
    dg_afile *one[1] = {f};
    return dg_afile_commit_all(one, 1, err);
}

int dg_afile_commit_all(dg_afile *const *fs, int n, dg_err *err) {
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) rc = finish(fs[i], err);
    /* Keep each final file that exists as "<path>.old.<pid>" (a hard link) until every rename is done, so a failed
     * rename can put the earlier ones back. One file needs none: its rename is atomic. */
    char **old = n > 1 && rc == 0 ? calloc((size_t)n, sizeof *old) : NULL;
    if (n > 1 && rc == 0 && !old) rc = dg_fail(err, "%s: out of memory", fs[0]->path);
    for (int i = 0; i < n && rc == 0 && old; i++) {
        size_t len = strlen(fs[i]->path) + 32;
        old[i] = malloc(len);
        if (!old[i]) {
            rc = dg_fail(err, "%s: out of memory", fs[i]->path);
            break;
        }
        snprintf(old[i], len, "%s.old.%ld", fs[i]->path, (long)getpid());
        unlink(old[i]);
        /* No previous file, or a file system without hard links: nothing to put back for this one. */
        if (link(fs[i]->path, old[i]) != 0) old[i][0] = '\0';
    }
    int renamed = 0;
    for (; rc == 0 && renamed < n; renamed++)
        if (rename(fs[renamed]->tmp_path, fs[renamed]->path) != 0)
            rc = dg_fail_errno(err, "%s: rename failed", fs[renamed]->path);
    if (rc != 0) {
        /* Put back what the renames before the failed one replaced (renamed - 1 of them). */
        for (int i = 0; i + 1 < renamed; i++) {
            if (old && old[i] && old[i][0]) rename(old[i], fs[i]->path);
            else unlink(fs[i]->path);
        }
        for (int i = renamed > 0 ? renamed - 1 : 0; i < n; i++) {
            if (fs[i]->fp) fclose(fs[i]->fp);
            fs[i]->fp = NULL;
            if (fs[i]->tmp_path) unlink(fs[i]->tmp_path);
        }
    }
    for (int i = 0; old && i < n; i++) {
        if (old[i] && old[i][0]) unlink(old[i]);
        free(old[i]);
    }
    free(old);
    for (int i = 0; i < n; i++) release(fs[i]);
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

/* Read at most max bytes; a longer file (or an endless one such as /dev/zero) is an error naming what it is not. */
static int read_file_max(const char *path, size_t max, const char *what, char **data, size_t *n, dg_err *err) {
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
        if (len > max) {
            free(buf);
            fclose(fp);
            return dg_fail(err, "%s: larger than %zu MiB; not a %s", path, max >> 20, what);
        }
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

int dg_read_file(const char *path, char **data, size_t *n, dg_err *err) {
    return read_file_max(path, DG_READ_MAX, "file this program reads", data, n, err);
}

int dg_read_text(const char *path, const char *what, char **text, dg_err *err) {
    size_t n;
    if (read_file_max(path, DG_TEXT_MAX, what, text, &n, err) != 0) return -1;
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
