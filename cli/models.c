/* models.c — `soma models [NAME]`: list the neuron models, or one model's
 * parameters (default, unit, valid range, meaning), from the registry. */
#include <string.h>
#include "cli.h"

/* Which executors run the model: a model may fill both halves of the vtable. */
static const char *executors(const soma_model *m) {
    int sim = soma_model_is_simulator(m), train = soma_model_is_trainable(m);
    return sim && train ? "simulator, trainer" : sim ? "simulator" : "trainer";
}

int cli_models(int argc, char **argv) {
    if (argc > 1) {
        fprintf(stderr, "usage: soma models [NAME]\n");
        return 2;
    }
    if (argc == 0) {
        printf("neuron models (soma models NAME for parameters):\n");
        for (size_t i = 0; i < soma_model_count(); i++) {
            const soma_model *m = soma_model_find(soma_model_name_at(i));
            size_t np;
            soma_model_params(m, &np);
            printf("  %-14s %-18s %zu parameters\n", soma_model_name(m), executors(m), np);
        }
        return 0;
    }
    const soma_model *m = soma_model_find(argv[0]);
    if (!m) {
        fprintf(stderr, "soma models: unknown model '%s'; expected one of:", argv[0]);
        for (size_t i = 0; i < soma_model_count(); i++) fprintf(stderr, "%s %s", i ? "," : "", soma_model_name_at(i));
        fputc('\n', stderr);
        return 1;
    }
    size_t np;
    const soma_param_desc *d = soma_model_params(m, &np);
    printf("%s (%s)\n", soma_model_name(m), executors(m));
    for (size_t k = 0; k < np; k++) {
        char unit[16];
        snprintf(unit, sizeof unit, "%s", d[k].unit[0] ? d[k].unit : "-");
        printf("  %-14s %10g %-4s [%g, %g]  %s\n", d[k].name, (double)d[k].def, unit, (double)d[k].lo, (double)d[k].hi,
               d[k].help ? d[k].help : "");
    }
    return 0;
}
