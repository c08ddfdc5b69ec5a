/* shd.c — placeholder until the loader lands: reports that the format is not supported yet. */
#include <stdio.h>
#include "data/seq.h"

int soma__load_shd(const soma_data_opts *opts, soma_dataset *train, soma_dataset *test, char *err, size_t errlen) {
    (void)opts, (void)train, (void)test;
    if (err && errlen) snprintf(err, errlen, "the shd loader is not built yet");
    return SOMA_STATUS_UNSUPPORTED;
}
