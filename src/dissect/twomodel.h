/* twomodel.h — what compare.c shares with patch.c's --from-model: the
 * check that two trainers can be fed the same encoded batches. */
#ifndef SOMA_DISSECT_TWOMODEL_H
#define SOMA_DISSECT_TWOMODEL_H
#include "soma.h"

/* x2 agrees with x on the data options that change the encoding and on the
 * input population's size; with pops, also on every non-input population
 * (by name and size, none missing or extra). what names x2 in messages
 * ("MODEL2", "--from-model"). */
int soma__dissect_two_check(const soma_dissect_ctx *x, const soma_dissect_ctx *x2, int pops, const char *what, char *err,
                            size_t errlen);
#endif
