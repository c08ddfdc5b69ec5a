/* cli.h — the soma command's subcommands and small shared helpers. */
#ifndef SOMA_CLI_H
#define SOMA_CLI_H
#include <stdio.h>
#include "soma.h"

int cli_train(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_sim(int argc, char **argv);
/* soma sim MODEL.soma, or a network file whose network has an input
 * population: the network run on data-set samples (sim_model.c). */
int cli_sim_model(int argc, char **argv);
/* 1 if the FILE among soma sim's arguments is such a file. */
int cli_sim_dataset_file(int argc, char **argv);
int cli_models(int argc, char **argv);
int cli_sites(int argc, char **argv);
/* soma dissect MODEL stats|select|ablate (dissect.c). */
int cli_dissect(int argc, char **argv);
/* dissect path (cli/dissect_path.c), after the statistics' pass */
int cli_dissect_path(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s, const char *model,
                     size_t cls, const char *out);
/* soma dissect MODEL prune (dissect_prune.c). */
int cli_dissect_prune(int argc, char **argv);
/* soma dissect FILE.yaml lesion|stimulate (dissect_lesion.c): argv[0] the file, argv[1] the command. */
int cli_dissect_lesion(int argc, char **argv);
/* soma dissect MODEL sparsify ... (dissect_sparsify.c; argv as cli_dissect's). */
int cli_dissect_sparsify(int argc, char **argv);
/* soma dissect MODEL edit ... (dissect_edit.c; argv as cli_dissect's). */
int cli_dissect_edit(int argc, char **argv);
/* select|ablate's selection with --by probe's (--z, --l2) and --by impact's
 * (--candidates-pct) options (dissect_probe.c); the check runs at parse
 * time (2 with a message if an option is bad or belongs to another method). */
int cli_dissect_probe_check(int by, const char *z, const char *l2, const char *cand);
int cli_dissect_select_by(const soma_dissect_ctx *x, const soma_dissect_opts *o, const soma_dissect_stats *s, int by,
                          size_t cls, size_t top, double top_pct, int per_pop, const char *z, const char *l2,
                          const char *cand, soma_dissect_neuron *out, double *val, size_t cap, size_t *n, char *err,
                          size_t errlen);
/* soma dissect MODEL compare MODEL2 (dissect_compare.c; argv as cli_dissect's), and
 * patch --from-model MODEL2 (the second model loaded there; exit status). */
int cli_dissect_compare(int argc, char **argv);
int cli_dissect_patch_from_model(const soma_dissect_ctx *x, const soma_dissect_opts *o, const char *model, const char *site,
                                 const char *model2, size_t samples, int cls, const char *out);

/* The command line of `soma sim FILE [options]`. */
typedef struct cli_sim_args {
    const char *file, *out, *conn_out, *time_s, *warm_s;
    long threads, seed; /* -1: the file's */
    int no_record, csv;
    const char *ov[64]; /* --param NAME=VALUE and --set NAME (as "set=NAME") */
    size_t nov;
    char setbuf[160];
} cli_sim_args;
/* Parse the options (after "sim"); prints and returns 2 if they are bad. */
int cli_sim_parse(int argc, char **argv, cli_sim_args *a);
/* Build net (borrowed) in the simulator, run it as fo and the options say
 * (the options' --time/--warmup override fo), print progress and the
 * results, write the outputs; the exit status of `soma sim`. */
int cli_sim_run(const cli_sim_args *a, const soma_net *net, soma_sim_file_opts *fo);

/* Parse a non-negative integer option value; prints an error and returns -1 if bad. */
long cli_long(const char *opt, const char *val, long lo, long hi);
/* Peak resident set size of this process, in bytes. */
long long cli_peak_rss(void);
/* Write text to path atomically (temp file, fsync, rename). 0 on success;
 * -1 with errno set (the temporary file removed, path untouched). */
int cli_write_atomic(const char *path, const char *text);
/* mkdir -p. 0 on success. */
int cli_mkdirs(const char *path);
/* Print the architecture of a net. */
void cli_print_net(FILE *f, soma_net *net);
#endif
