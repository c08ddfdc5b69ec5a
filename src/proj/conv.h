/* conv.h — 2-D convolution projections (im2col + BLAS, or along the
 * nonzero inputs) with optional max/average/sum pooling, n images per call. */
#ifndef SOMA_CONV_H
#define SOMA_CONV_H
#include <stddef.h>
#include <stdint.h>
#include "soma.h"

/* Which kernels a convolution runs. AUTO: the spike path where conv.c's
 * cost model says it is cheaper than im2col + GEMM; tests and benchmarks
 * force GEMM (always im2col + GEMM) or SPIKES (always the spike path) to
 * compare them. */
typedef enum soma__conv_path {
    SOMA__CONV_PATH_AUTO = 0,
    SOMA__CONV_PATH_GEMM = 1,
    SOMA__CONV_PATH_SPIKES = 2
} soma__conv_path;

/* All the kernels read about one convolution, owned by the caller (the
 * trainer builds one per convolution layer from its projection, see
 * soma__proj_conv_plan in net/net.h). The weights are borrowed. */
typedef struct soma__conv_plan {
    soma_conv cv;        /* kernel, stride, padding, pool; pool_size is 1 without pooling */
    size_t cin, ih, iw;  /* input [cin][ih][iw] */
    size_t cout, oh, ow; /* convolution output [cout][oh][ow] */
    size_t ph, pw;       /* pooled output [cout][ph][pw] */
    const float *w;      /* weights [cout][cin*k*k] (torch's [cout][cin][k][k]) */
    const float *b;      /* bias [cout], or NULL */
    int path;            /* soma__conv_path */
} soma__conv_plan;

/* Floats of workspace ONE image needs: cols (the largest of im2col's
 * C_in*k*k x OH*OW and the spike path's buffers, see conv.c) and the
 * unpooled output or its gradient (C_out x OH*OW). n images need n times them. */
size_t soma__conv_cols_size(const soma__conv_plan *p);
size_t soma__conv_out_size(const soma__conv_plan *p);

/* Images per call the trainer uses (workspaces are sized for it). */
#define SOMA_CONV_IMAGES 16

/* For n images x + i*xs ([C_in][H][W] each): out + i*os = pool(W * im2col(x)) + b.
 * cols and tmp: workspaces of n times the sizes above. Max pooling writes
 * the position of each maximum in its window to arg + i*os (laid out like
 * out; NULL for the other poolings). */
void soma__conv_forward(const soma__conv_plan *p, const float *x, size_t xs, float *out, size_t os, size_t n,
                        float *cols, float *tmp, uint8_t *arg);

/* Backward of n images given dout + i*ds = dL/dout [C_out][PH*PW]:
 * dw [C_out][C_in*k*k] += dL/dW, db [C_out] += dL/db (db may be NULL);
 * dx + i*xs = dL/dx if dx is not NULL (overwritten).
 * arg: the forward's max-pooling positions (laid out like dout; NULL otherwise).
 * cols, tmp and dcols are workspaces (n times: cols size, out size, cols size). */
void soma__conv_backward(const soma__conv_plan *p, const float *x, size_t xs, const float *dout, size_t ds, size_t n,
                         const uint8_t *arg, float *dw, float *db, float *dx, float *cols, float *tmp, float *dcols);
#endif
