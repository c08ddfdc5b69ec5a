/* sim_spike_source.c — the simulator's spike source: a population that
 * emits the spikes set with soma_net_set_spikes. The engine recognises
 * &soma__model_spike_source and plays those spikes itself, so the model has
 * no parameters, ports, state or step function (sim_step NULL).
 */
#include "models/model.h"

const soma_model soma__model_spike_source = {
    .name = "spike_source",
    .n_params = 0,
    .n_state = 0,
    .spiking = 1,
    .n_ports = 0,
    .weight_unit = "",
};
