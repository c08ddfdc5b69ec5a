/* status.c — status codes: text and symbolic names, generated from the one
 * X-macro list in soma.h so the three can never disagree. */
#include "soma.h"

const char *soma_strerror(int status) {
    switch (status) {
#define X(name, code, msg) case code: return msg;
        SOMA_STATUS_LIST(X)
#undef X
    }
    return "unknown status";
}

const char *soma_status_name(int status) {
    switch (status) {
#define X(name, code, msg) case code: return "SOMA_STATUS_" #name;
        SOMA_STATUS_LIST(X)
#undef X
    }
    return "SOMA_STATUS_UNKNOWN";
}
