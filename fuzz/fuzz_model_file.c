/* fuzz_model_file.c — libFuzzer harness for the native model file reader
 * (soma_model_load), whose CRC the harness does not need to pass: inputs
 * with a wrong checksum exercise the header checks, and the seed corpus
 * (saved models) reaches the payload. Run: make fuzz. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "soma.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    if (!path[0]) snprintf(path, sizeof path, "/tmp/soma-fuzz-model-%d.soma", (int)getpid());
    /* Half the inputs get a correct header length and CRC, so that the
     * mutations reach the payload parser past the checksum. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    if (size > 28 && (size & 1)) {
        uint64_t len = size - 28;
        for (int k = 0; k < 8; k++) buf[16 + k] = (uint8_t)(len >> (8 * k));
        uint32_t crc = (uint32_t)crc32(0L, buf + 28, (uInt)len);
        for (int k = 0; k < 4; k++) buf[24 + k] = (uint8_t)(crc >> (8 * k));
    }
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(buf, 1, size, f);
        fclose(f);
        soma_net *net = NULL;
        soma_data_opts d;
        soma_train_opts t;
        char err[512];
        if (soma_model_load(path, &net, &d, &t, err, sizeof err) == 0) soma_net_free(net);
    }
    free(buf);
    return 0;
}
