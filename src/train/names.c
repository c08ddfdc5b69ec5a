/* names.c — name tables of the trainer's enums (losses, optimizers,
 * schedules) and the default training options. */
#include <string.h>
#include "core/names.h"
#include "soma.h"

static const char *const losses[] = {"ce_rate", "ce_count", "mse_count", "ce_mem", "ce_last"};
static const char *const optimizers[] = {"sgd", "adam", "adamw"};
static const char *const schedules[] = {"constant", "step", "cosine"};

int soma_loss_find(const char *name) { return soma__name_find(losses, 5, name); }
const char *soma_loss_name(int l) { return soma__name_at(losses, 5, l); }
int soma_optimizer_find(const char *name) { return soma__name_find(optimizers, 3, name); }
const char *soma_optimizer_name(int o) { return soma__name_at(optimizers, 3, o); }
int soma_schedule_find(const char *name) { return soma__name_find(schedules, 3, name); }
const char *soma_schedule_name(int s) { return soma__name_at(schedules, 3, s); }

void soma_train_opts_default(soma_train_opts *o) {
    memset(o, 0, sizeof *o);
    o->epochs = 1;
    o->batch = 128;
    o->loss = SOMA_LOSS_CE_RATE;
    o->optimizer = SOMA_OPTIMIZER_ADAM;
    o->lr = 5e-4f;
    o->momentum = 0.9f;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
    o->weight_decay = 0.0f;
    o->clip_norm = 0.0f;
    o->schedule = SOMA_SCHEDULE_CONSTANT;
    o->step_size = 1;
    o->gamma = 0.5f;
    o->lr_min = 0.0f;
    o->rate_penalty = 0.0f;
    o->surrogate = SOMA_SURROGATE_FAST_SIGMOID;
    o->surrogate_param = 0.0f; /* the surrogate's own default */
    o->correct_rate = 0.8f;
    o->incorrect_rate = 0.2f;
    o->threads = 0;
    o->seed = 1;
    o->max_batches = 0;
}
