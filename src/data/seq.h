/* seq.h — loaders of sequence data sets (event streams binned into time
 * steps, sensor windows). Each fills train and/or test (either may be NULL)
 * from opts->dir with seq = n*steps*dim floats, steps (opts->steps for binned
 * events, the file's own for CSV windows; the sequence encoding pads or cuts), x = NULL,
 * labels in y and classes = 1 + the largest label; on error it returns a
 * status with "FILE: sample K: reason" in err and frees what it allocated. */
#ifndef SOMA_SEQ_H
#define SOMA_SEQ_H
#include "soma.h"

typedef int (*soma__seq_loader)(const soma_data_opts *opts, soma_dataset *train, soma_dataset *test, char *err,
                                size_t errlen);

/* SHD: DIR/shd_train.h5, DIR/shd_test.h5 (HDF5: /spikes/times, /spikes/units, /labels); 700 channels. */
int soma__load_shd(const soma_data_opts *opts, soma_dataset *train, soma_dataset *test, char *err, size_t errlen);
/* N-MNIST: DIR/{Train,Test}/<digit>/<file>.bin, 5-byte events; 2 x 34 x 34 channels. */
int soma__load_nmnist(const soma_data_opts *opts, soma_dataset *train, soma_dataset *test, char *err, size_t errlen);
/* CSV windows: DIR/train.csv, DIR/test.csv (see csv.c for the columns). */
int soma__load_csv(const soma_data_opts *opts, soma_dataset *train, soma_dataset *test, char *err, size_t errlen);
/* SHD-Adding: SHD pairs, label (y1 mod 10) + (y2 mod 10), 19 classes; data.steps split in two halves. */
int soma__load_shd_adding(const soma_data_opts *opts, soma_dataset *train, soma_dataset *test, char *err,
                          size_t errlen);
/* recall: a generated delayed-recall task (no files; see recall.c). */
int soma__load_recall(const soma_data_opts *opts, soma_dataset *train, soma_dataset *test, char *err, size_t errlen);
/* Build the adding pairs of one split (see adding.c); key picks the fixed pairing. */
int soma__adding_build(const soma_dataset *src, uint64_t key, soma_dataset *out, char *err, size_t errlen);
#endif
