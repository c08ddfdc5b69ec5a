/* bench_trainer.c — where a training batch spends its time: trains N batches
 * of an experiment file and prints throughput and the time per phase
 * (input GEMM, per-chunk forward/backward, input weight-gradient GEMM,
 * reduction, optimizer, encoding). Usage: bench_trainer FILE.yaml [batches] [threads] */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "soma.h"

void soma__train_profile(const soma_trainer *tr, double out[16]);

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_trainer FILE.yaml [batches] [threads]\n");
        return 2;
    }
    char err[1024];
    soma_net *net;
    soma_data_opts d;
    soma_train_opts o;
    if (soma_experiment_load(argv[1], &net, &d, &o, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    o.max_batches = argc > 2 ? atol(argv[2]) : 100;
    o.threads = argc > 3 ? atoi(argv[3]) : 0;
    soma_dataset tr_ds, te_ds;
    if (soma_data_load(&d, &tr_ds, &te_ds, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    soma_trainer *tr;
    if (soma_train_create(&tr, net, &o, &d)) {
        fprintf(stderr, "%s\n", soma_net_errmsg(net));
        return 1;
    }
    soma_epoch_result r;
    soma_train_epoch(tr, &tr_ds, 0, NULL, NULL, &r);
    double p[16];
    soma__train_profile(tr, p);
    double acc, ips;
    soma_train_evaluate(tr, &te_ds, 2560, &acc, &ips);
    const char *names[] = {"input GEMM", "chunks fwd+bwd", "input dW GEMM", "reduce", "optimizer", "encode"};
    printf("%ld batches of %zu, %d threads: %.0f train samples/s (%.2f ms/batch), %.0f infer samples/s\n", r.batches,
           o.batch, soma_train_options(tr)->threads, r.samples_per_second, 1e3 * r.seconds / (double)r.batches, ips);
    for (int i = 0; i < 6; i++) printf("  %-16s %7.3f ms/batch\n", names[i], 1e3 * p[i] / (double)r.batches);
    const char *inner[] = {"projections fwd", "neurons fwd", "loss+readout", "neurons bwd", "projections bwd"};
    printf("  inside chunks (thread time summed over threads):\n");
    for (int i = 0; i < 5; i++) printf("    %-16s %7.3f ms/batch\n", inner[i], 1e3 * p[8 + i] / (double)r.batches);
    soma_train_free(tr);
    soma_net_free(net);
    soma_data_free(&tr_ds), soma_data_free(&te_ds);
    return 0;
}
