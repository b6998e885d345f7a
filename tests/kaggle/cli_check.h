/* Helpers for the tests of the kaggle/ stage parsers and runs (tests/kaggle/test_*_cli.c): argv from string
 * literals, the text a run wrote to a FILE *, and "this text contains that" with both printed on failure.
 * Include after cmocka.h. */
#ifndef TESTS_KAGGLE_CLI_CHECK_H
#define TESTS_KAGGLE_CLI_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A mutable argv (getopt permutes it) and its count: ARGC(...), ARGV(...) with the same string literals. */
#define ARGV(...) ((char *[]){__VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)))

/* Everything written to f (a tmpfile()), malloc'd and NUL-terminated; f is closed. */
static inline char *cli_check_drain(FILE *f) {
    long n = ftell(f);
    char *s = malloc(n > 0 ? (size_t)n + 1 : 1);
    assert_non_null(s);
    rewind(f);
    size_t got = n > 0 ? fread(s, 1, (size_t)n, f) : 0;
    s[got] = '\0';
    fclose(f);
    return s;
}

/* Fails, printing both, unless text contains want. */
#define assert_has(text, want)                                                                                     \
    do {                                                                                                           \
        const char *t_ = (text), *w_ = (want);                                                                     \
        if (!t_ || !strstr(t_, w_)) {                                                                              \
            print_error("\"%s\" lacks \"%s\"\n", t_ ? t_ : "(null)", w_);                                          \
            fail();                                                                                                \
        }                                                                                                          \
    } while (0)

#endif
