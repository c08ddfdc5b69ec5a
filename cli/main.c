/* main.c — the soma command: `soma <command> [args]`. Every command is a
 * thin layer over the public API in soma.h; this file and its siblings are
 * the only places that print or exit. */
#include <stdio.h>
#include <string.h>
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f,
            "soma " SOMA_VERSION_STRING " — an engine for networks of neurons\n"
            "\n"
            "usage:\n"
            "  soma train FILE.yaml [--epochs N] [--max-batches N] [--threads N] [--seed S] [--out DIR] [--data DIR]\n"
            "  soma eval MODEL [--data DIR] [--steps T] [--encoding direct|rate|latency|delta|sequence]\n"
            "                  [--readout count|membrane|last] [--threads N] [--limit N]\n"
            "  soma info MODEL\n"
            "  soma sim FILE.yaml [--time T] [--warmup T] [--threads N] [--seed S] [--out DIR] [--no-record]\n"
            "                     [--csv] [--set NAME] [--param NAME=VALUE]... [--write-connectivity FILE]\n"
            "  soma models [NAME]\n"
            "  soma sites FILE.yaml|MODEL\n"
            "  soma dissect MODEL stats|select|ablate [--data DIR] [--out DIR] [--limit N] [--threads N] ...\n"
            "                  (soma dissect --help for its commands)\n"
            "  soma help\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "train") == 0) return cli_train(argc - 2, argv + 2);
    if (strcmp(cmd, "eval") == 0) return cli_eval(argc - 2, argv + 2);
    if (strcmp(cmd, "info") == 0) return cli_info(argc - 2, argv + 2);
    if (strcmp(cmd, "sim") == 0) return cli_sim(argc - 2, argv + 2);
    if (strcmp(cmd, "models") == 0) return cli_models(argc - 2, argv + 2);
    if (strcmp(cmd, "sites") == 0) return cli_sites(argc - 2, argv + 2);
    if (strcmp(cmd, "dissect") == 0) return cli_dissect(argc - 2, argv + 2);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("soma %s\n", SOMA_VERSION_STRING);
        return 0;
    }
    fprintf(stderr, "soma: unknown command '%s'; expected one of: train, eval, info, sim, models, sites, dissect, help\n", cmd);
    return 2;
}
