/* util.c — helpers of the soma command: option parsing, atomic text files,
 * memory use, and printing a network. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli.h"

long cli_long(const char *opt, const char *val, long lo, long hi) {
    if (!val) {
        fprintf(stderr, "soma: %s needs a value\n", opt);
        return -1;
    }
    char *end;
    errno = 0;
    long v = strtol(val, &end, 10);
    if (errno || end == val || *end || v < lo || v > hi) {
        fprintf(stderr, "soma: %s '%s': expected an integer in [%ld, %ld]\n", opt, val, lo, hi);
        return -1;
    }
    return v;
}

long long cli_peak_rss(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return (long long)ru.ru_maxrss * 1024LL;
}

int cli_write_atomic(const char *path, const char *text) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    size_t n = strlen(text);
    /* errno of the first step that failed survives for the caller's message */
    int e = 0;
    if (fwrite(text, 1, n, f) != n || fflush(f) != 0 || fsync(fileno(f)) != 0) e = errno ? errno : EIO;
    if (fclose(f) != 0 && !e) e = errno;
    if (!e && rename(tmp, path) != 0) e = errno;
    if (e) {
        remove(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

int cli_mkdirs(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
    return 0;
}

void cli_print_net(FILE *f, soma_net *net) {
    size_t np = soma_net_pop_count(net);
    fprintf(f, "populations:\n");
    for (size_t i = 0; i < np; i++) {
        soma_pop_info pi;
        soma_net_pop_info(net, i, &pi);
        fprintf(f, "  %-12s %-10s %6zu neurons%s", pi.name, pi.model, pi.size, pi.recurrent ? "  recurrent" : "");
        size_t dims[3], ndims = 1;
        if (soma_net_get_shape(net, i, dims, &ndims) == 0 && ndims > 1) {
            fprintf(f, "  shape [%zu", dims[0]);
            for (size_t k = 1; k < ndims; k++) fprintf(f, ", %zu", dims[k]);
            fprintf(f, "]");
        }
        size_t nd;
        const soma_param_desc *d = soma_model_params(soma_model_find(pi.model), &nd);
        for (size_t k = 0; k < nd; k++) {
            float v;
            soma_net_get_param(net, i, d[k].name, &v);
            if (d[k].choices) fprintf(f, "  %s=%s", d[k].name, d[k].choices[(int)v]);
            else fprintf(f, "  %s=%g", d[k].name, v);
            soma_learn l = soma_net_get_learn(net, i, d[k].name);
            if (l) fprintf(f, "(learned per %s)", l == SOMA_LEARN_NEURON ? "neuron" : "layer");
        }
        fprintf(f, "\n");
    }
    fprintf(f, "projections:\n");
    for (size_t i = 0; i < soma_net_proj_count(net); i++) {
        size_t a, b;
        int bias;
        soma_net_proj_info(net, i, &a, &b, &bias);
        soma_pop_info pa, pb;
        soma_net_pop_info(net, a, &pa);
        soma_net_pop_info(net, b, &pb);
        soma_conv cv;
        if (soma_net_proj_conv(net, i, &cv) == 1) {
            fprintf(f, "  %s -> %s  conv %zux%zu, stride %zu, padding %zu", pa.name, pb.name, cv.kernel, cv.kernel,
                    cv.stride, cv.padding);
            if (cv.pool) fprintf(f, ", %s pool %zux%zu", soma_pool_name(cv.pool), cv.pool_size, cv.pool_size);
            fprintf(f, "%s\n", bias ? " + bias" : "");
        } else
            fprintf(f, "  %s -> %s  dense %zu x %zu%s\n", pa.name, pb.name, pb.size, pa.size, bias ? " + bias" : "");
    }
    fprintf(f, "parameters:\n");
    size_t nt = soma_net_tensor_count(net);
    for (size_t i = 0; i < nt; i++) {
        soma_tensor t;
        soma_net_tensor(net, i, &t);
        fprintf(f, "  %-28s %zu x %zu\n", t.name, t.rows, t.cols);
    }
    fprintf(f, "total learnable parameters: %zu\n", soma_net_param_count(net));
}
