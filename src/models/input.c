/* input.c — the input pseudo-model: a population whose activity is the
 * encoded data (currents or spikes). It has no state and no parameters;
 * executors copy the data into its output instead of stepping it. */
#include "models/model.h"

const soma_model soma__model_input = {
    .name = "input",
    .params = NULL,
    .n_params = 0,
    .n_state = 0,
    .state_names = NULL,
    .spiking = 0,
    .forward = NULL,
    .backward = NULL,
};
