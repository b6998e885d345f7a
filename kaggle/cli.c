/* kaggle/cli: shared pieces of the kaggle/ stage option parsers (see cli.h). */
#include "kaggle/cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void kg_cli_getopt_reset(void) {
    optind = 0;
    opterr = 0;
}

int kg_cli_bad_option(int c, char *const *argv, dg_err *err) {
    /* After getopt_long returns, argv[optind - 1] is the element it was reading, except inside a bundle of short
     * options ("-qz") whose rest is still to come; optopt names a bad short option. */
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    if (c == ':') return kg_cli_usage_fail(err, "option '%s' requires an argument", arg);
    if (optopt == 0) return kg_cli_usage_fail(err, "unrecognized option '%s'", arg);
    const char *eq = strchr(arg, '=');
    if (strncmp(arg, "--", 2) == 0 && eq)
        return kg_cli_usage_fail(err, "option '%.*s' takes no argument", (int)(eq - arg), arg);
    return kg_cli_usage_fail(err, "invalid option '-%c'", optopt);
}

int kg_cli_usage_fail(dg_err *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return DG_EXIT_USAGE;
}

int kg_ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}
