/* dg_cli: strict number parsing and thread settings (see dg_cli.h). */
#define _GNU_SOURCE /* feenableexcept */
#include "core/dg_cli.h"

#include <ctype.h>
#include <errno.h>
#include <fenv.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cblas.h of some builds lacks these */
void openblas_set_num_threads(int num_threads);
int openblas_get_parallel(void);
char *openblas_get_config(void);

int dg_parse_long(const char *s, long lo, long hi, long *out) {
    if (!s || !*s || isspace((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int dg_parse_u64(const char *s, uint64_t *out) {
    if (!s || !isdigit((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = (uint64_t)v;
    return 0;
}

int dg_parse_double(const char *s, double lo, double hi, double *out) {
    if (!s || !*s || isspace((unsigned char)*s)) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int dg_parse_float(const char *s, double lo, double hi, float *out) {
    double v;
    if (dg_parse_double(s, lo, hi, &v) != 0) return -1;
    *out = (float)v;
    return 0;
}

int dg_default_threads(void) {
    long v;
    const char *env = getenv("OMP_NUM_THREADS");
    if (env && dg_parse_long(env, 1, 1024, &v) == 0) return (int)v;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int dg_blas_is_openmp(void) { return openblas_get_parallel() == 2; }

void dg_set_threads(int n) {
    if (n < 1) n = 1;
    omp_set_num_threads(n);
    openblas_set_num_threads(dg_blas_is_openmp() ? n : 1);
}

void dg_stage_init(const char *prog, char **argv) {
    if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT") &&
        setenv("GOMP_SPINCOUNT", DG_GOMP_SPINCOUNT, 0) == 0) {
        execv("/proc/self/exe", argv);
        /* exec failed: this process keeps libgomp's default; its children (if any) get the setting */
    }
    const char *trap = getenv("DIGITS_TRAP_FE");
    if (trap && strcmp(trap, "1") == 0) {
        /* Before any OpenMP region: the pool's threads inherit this thread's floating-point environment. */
        if (feenableexcept(FE_INVALID | FE_DIVBYZERO | FE_OVERFLOW) == -1)
            fprintf(stderr, "%s: note: DIGITS_TRAP_FE=1, but floating-point traps cannot be enabled here\n", prog);
        else
            fprintf(stderr, "%s: note: DIGITS_TRAP_FE=1: invalid operation, division by zero and overflow raise "
                            "SIGFPE\n", prog);
    }
    if (!dg_blas_is_openmp()) {
        int par = openblas_get_parallel();
        fprintf(stderr,
                "%s: note: the OpenBLAS loaded is the %s build (%s), not the OpenMP one; BLAS runs on one thread "
                "(install libopenblas-openmp-dev and rebuild)\n",
                prog, par == 1 ? "pthread" : par == 0 ? "single-threaded" : "unknown", openblas_get_config());
    }
}

int dg_cli_exit(const char *prog, int rc, const dg_err *err) {
    if (rc == DG_EXIT_OK) return rc;
    const char *msg = err && err->msg[0] ? err->msg : "failed";
    fprintf(stderr, "%s: %s%s\n", prog, msg, rc == DG_EXIT_USAGE ? " (see --help)" : "");
    return rc;
}

void dg_cli_getopt_reset(void) {
    optind = 0;
    opterr = 0;
}

int dg_cli_bad_option(int c, char *const *argv, const char *shortopts, const struct option *longopts, dg_err *err) {
    /* getopt_long has moved past a long option it rejects (optopt: 0 if unknown, else the option's val); inside a
     * bundle of short options ("-qz") argv[optind - 1] may be an earlier word, so a long option is recognised by
     * its val as well as its "--". */
    if (optind < 1) return dg_cli_usage(err, "invalid option");
    const char *a = argv[optind - 1];
    const char *eq = strchr(a, '=');
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    int is_long = strncmp(a, "--", 2) == 0 && len > 2;
    if (is_long && optopt == 0) {
        char alts[512] = "";
        size_t n = 0;
        for (const struct option *l = longopts; l && l->name && n < sizeof alts; l++)
            if (strncmp(l->name, a + 2, len - 2) == 0)
                n += (size_t)snprintf(alts + n, sizeof alts - n, " '--%s'", l->name);
        if (alts[0] && strchr(alts + 1, ' '))
            return dg_cli_usage(err, "option '%.*s' is ambiguous; possibilities:%s", (int)len, a, alts);
        return dg_cli_usage(err, "unrecognized option '%.*s'", (int)len, a);
    }
    for (const struct option *l = longopts; is_long && l && l->name; l++) {
        if (l->val != optopt || strncmp(l->name, a + 2, len - 2) != 0) continue;
        if (eq) return dg_cli_usage(err, "option '--%s' doesn't allow an argument", l->name);
        return dg_cli_usage(err, "option '--%s' requires an argument", l->name);
    }
    int known = optopt > 0 && optopt < 256 && shortopts && strchr(shortopts, optopt) != NULL;
    if (c == ':' || known) return dg_cli_usage(err, "option requires an argument -- '%c'", optopt);
    return dg_cli_usage(err, "invalid option -- '%c'", optopt > 0 && optopt < 256 ? optopt : '?');
}

int dg_cli_usage(dg_err *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return DG_EXIT_USAGE;
}

int dg_ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

char *dg_cli_join_command(int argc, char *const *argv) {
    size_t cap = 16;
    for (int i = 0; i < argc; i++) cap += 4 * strlen(argv[i]) + 3;
    char *s = malloc(cap), *p = s;
    if (!s) return NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int plain = *a != '\0';
        for (const char *q = a; *q && plain; q++) plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                                "0123456789_./=:,+-@%", *q) != NULL;
        if (i) *p++ = ' ';
        if (plain) {
            p += sprintf(p, "%s", a);
        } else {
            *p++ = '\'';
            for (const char *q = a; *q; q++) p += *q == '\'' ? sprintf(p, "'\\''") : sprintf(p, "%c", *q);
            *p++ = '\'';
        }
    }
    *p = '\0';
    return s;
}
