/* cli.h — the soma command's subcommands and small shared helpers. */
#ifndef SOMA_CLI_H
#define SOMA_CLI_H
#include <stdio.h>
#include "soma.h"

int cli_train(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_sim(int argc, char **argv);
int cli_models(int argc, char **argv);
int cli_sites(int argc, char **argv);

/* Parse a non-negative integer option value; prints an error and returns -1 if bad. */
long cli_long(const char *opt, const char *val, long lo, long hi);
/* Peak resident set size of this process, in bytes. */
long long cli_peak_rss(void);
/* Write text to path atomically (temp file + rename). 0 on success. */
int cli_write_atomic(const char *path, const char *text);
/* mkdir -p. 0 on success. */
int cli_mkdirs(const char *path);
/* Print the architecture of a net. */
void cli_print_net(FILE *f, soma_net *net);
#endif
