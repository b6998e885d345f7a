/* kaggle/serve_cli: digits-serve's options, usage and run (see serve_cli.h). */
#include "kaggle/serve_cli.h"

#include <getopt.h>
#include <signal.h>
#include <stdlib.h>

#include "kaggle/predict.h"
#include "core/dg_cli.h"

static const kg_serve_config kDefaults = {.host = "127.0.0.1", .port = 8080, .tta = 1, .threads = 2,
                                          .max_body = 10u << 20, .timeout_s = 10, .max_conns = 64};

void kg_serve_cli_usage(FILE *out) {
    fprintf(out,
            "usage: digits-serve [options] MODEL...\n"
            "  A local page where you draw a digit (or drop a photo of one) and see what the models say, and\n"
            "  POST /predict for tools: an image body (image/png, image/jpeg) or JSON {\"image\": base64};\n"
            "  the answer is JSON with the digit, the probabilities and the 28x28 image the models saw.\n"
            "  MODEL is a model.safetensors file or a digits-train run directory; probabilities are averaged.\n"
            "      --host ADDR      numeric IPv4 address to listen on (default %s: this machine only)\n"
            "  -p, --port N         port, 0 for any free one (default %d)\n"
            "  -m, --models PATH    a model, as MODEL (repeatable)\n"
            "  -t, --tta K          test-time augmentation views, 1..%d (default %d)\n"
            "      --threads T      request threads, each with its own copy of the nets (default %d)\n"
            "      --max-body B     largest request body in bytes (default %zu)\n"
            "      --timeout S      drop a connection silent for S seconds (default %d)\n"
            "      --max-conns N    open connections at most (default %d)\n"
            "  -h, --help\n"
            "Stops on Ctrl-C (SIGINT) or SIGTERM.\n",
            kDefaults.host, kDefaults.port, KG_TTA_MAX, kDefaults.tta, kDefaults.threads, kDefaults.max_body,
            kDefaults.timeout_s, kDefaults.max_conns);
}

static int add_model(kg_serve_cli_opts *o, const char *m, dg_err *err) {
    const char **mm = realloc(o->models, sizeof *mm * (size_t)(o->c.n_models + 1));
    if (!mm) return dg_cli_usage(err, "out of memory for model %s", m);
    o->models = mm;
    o->models[o->c.n_models++] = m;
    o->c.models = (char *const *)o->models;
    return 0;
}

void kg_serve_cli_free(kg_serve_cli_opts *o) {
    free(o->models);
    o->models = NULL;
    o->c.models = NULL;
    o->c.n_models = 0;
}

int kg_serve_cli_parse(int argc, char **argv, kg_serve_cli_opts *o, dg_err *err) {
    o->c = kDefaults;
    o->models = NULL;
    o->out = stdout;
    o->help = 0;
    static const char shortopts[] = ":p:m:t:h";
    static const struct option longopts[] = {
        {"host", required_argument, 0, 'H'},      {"port", required_argument, 0, 'p'},
        {"models", required_argument, 0, 'm'},    {"tta", required_argument, 0, 't'},
        {"threads", required_argument, 0, 'T'},   {"max-body", required_argument, 0, 'B'},
        {"timeout", required_argument, 0, 'O'},   {"max-conns", required_argument, 0, 'C'},
        {"help", no_argument, 0, 'h'},            {0, 0, 0, 0}};
    int c;
    long v;
    dg_cli_getopt_reset();
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        switch (c) {
        case 'H': o->c.host = optarg; break;
        case 'p':
            if (dg_parse_long(optarg, 0, 65535, &v) != 0) return dg_cli_usage(err, "--port %s: expected 0..65535", optarg);
            o->c.port = (int)v;
            break;
        case 'm':
            if (add_model(o, optarg, err) != 0) return DG_EXIT_USAGE;
            break;
        case 't':
            if (dg_parse_long(optarg, 1, KG_TTA_MAX, &v) != 0)
                return dg_cli_usage(err, "--tta %s: expected 1..%d", optarg, KG_TTA_MAX);
            o->c.tta = (int)v;
            break;
        case 'T':
            if (dg_parse_long(optarg, 1, 256, &v) != 0) return dg_cli_usage(err, "--threads %s: expected 1..256", optarg);
            o->c.threads = (int)v;
            break;
        case 'B':
            if (dg_parse_long(optarg, 1, 1L << 30, &v) != 0)
                return dg_cli_usage(err, "--max-body %s: expected 1..%ld bytes", optarg, 1L << 30);
            o->c.max_body = (size_t)v;
            break;
        case 'O':
            if (dg_parse_long(optarg, 1, 3600, &v) != 0) return dg_cli_usage(err, "--timeout %s: expected 1..3600", optarg);
            o->c.timeout_s = (int)v;
            break;
        case 'C':
            if (dg_parse_long(optarg, 1, 10000, &v) != 0)
                return dg_cli_usage(err, "--max-conns %s: expected 1..10000", optarg);
            o->c.max_conns = (int)v;
            break;
        case 'h': o->help = 1; return DG_EXIT_OK;
        default: return dg_cli_bad_option(c, argv, shortopts, longopts, err);
        }
    }
    for (int i = optind; i < argc; i++)
        if (add_model(o, argv[i], err) != 0) return DG_EXIT_USAGE;
    if (o->c.n_models == 0) return dg_cli_usage(err, "no MODEL given");
    return DG_EXIT_OK;
}

int kg_serve_cli_run(const kg_serve_cli_opts *o, dg_err *err) {
    /* block the stop signals in every thread (the server's threads inherit the mask); this one waits for them */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    kg_server *s;
    if (kg_server_start(&s, &o->c, err) != 0) return DG_EXIT_FAIL;
    fprintf(o->out, "digits-serve: listening on http://%s:%d/ (%d model(s), %d thread(s))\n", o->c.host,
            kg_server_port(s), o->c.n_models, o->c.threads);
    fflush(o->out);
    int sig = 0;
    sigwait(&stop, &sig);
    kg_server_stop(s);
    return DG_EXIT_OK;
}
