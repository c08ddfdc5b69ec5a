/* conv.h — 2-D convolution projections (im2col + BLAS, or along the
 * nonzero inputs) with optional max/average/sum pooling, n images per call. */
#ifndef SOMA_CONV_H
#define SOMA_CONV_H
#include <stdint.h>
#include "net/net.h"

/* Floats of workspace ONE image needs: cols (the largest of im2col's
 * C_in*k*k x OH*OW and the spike path's buffers, see conv.c) and the
 * unpooled output or its gradient (C_out x OH*OW). n images need n times them. */
size_t soma__conv_cols_size(const soma__proj *p);
size_t soma__conv_out_size(const soma__proj *p);

/* Inputs take the spike path where conv.c's cost model says it is cheaper
 * than im2col + GEMM; tests set this to 1 (always im2col + GEMM) or 2
 * (always the spike path) to compare. */
extern int soma__conv_sparse_mode;

/* Images per call the trainer uses (workspaces are sized for it). */
#define SOMA_CONV_IMAGES 16

/* For n images x + i*xs ([C_in][H][W] each): out + i*os = pool(W * im2col(x)) + b.
 * cols and tmp: workspaces of n times the sizes above. Max pooling writes
 * the position of each maximum in its window to arg + i*os (laid out like
 * out; NULL for the other poolings). */
void soma__conv_forward(const soma__proj *p, const float *x, size_t xs, float *out, size_t os, size_t n, float *cols,
                        float *tmp, uint8_t *arg);

/* Backward of n images given dout + i*ds = dL/dout [C_out][PH*PW]:
 * dw [C_out][C_in*k*k] += dL/dW, db [C_out] += dL/db (db may be NULL);
 * dx + i*xs = dL/dx if dx is not NULL (overwritten).
 * arg: the forward's max-pooling positions (laid out like dout; NULL otherwise).
 * cols, tmp and dcols are workspaces (n times: cols size, out size, cols size). */
void soma__conv_backward(const soma__proj *p, const float *x, size_t xs, const float *dout, size_t ds, size_t n,
                         const uint8_t *arg, float *dw, float *db, float *dx, float *cols, float *tmp, float *dcols);
#endif
