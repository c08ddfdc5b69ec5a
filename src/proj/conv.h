/* conv.h — 2-D convolution projections (im2col + BLAS) with optional
 * average/sum pooling, one image at a time. */
#ifndef SOMA_CONV_H
#define SOMA_CONV_H
#include "net/net.h"

/* Floats of workspace one image needs: cols (C_in*k*k x OH*OW) and the
 * unpooled output or its gradient (C_out x OH*OW), each. */
size_t soma__conv_cols_size(const soma__proj *p);
size_t soma__conv_out_size(const soma__proj *p);

/* out[C_out][PH*PW] = pool(W * im2col(x)) + b for one image x[C_in][H][W].
 * cols and tmp: workspaces of the sizes above. */
void soma__conv_forward(const soma__proj *p, const float *x, float *out, float *cols, float *tmp);

/* Backward of one image given dout = dL/dout [C_out][PH*PW]:
 * dw [C_out][C_in*k*k] += dL/dW, db [C_out] += dL/db (db may be NULL);
 * dx [C_in][H][W] = dL/dx if dx is not NULL (overwritten).
 * cols, tmp and dcols are workspaces (cols size, out size, cols size). */
void soma__conv_backward(const soma__proj *p, const float *x, const float *dout, float *dw, float *db, float *dx,
                         float *cols, float *tmp, float *dcols);
#endif
