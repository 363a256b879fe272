/* The table of samples (see samples.h). */
#include "samples.h"

#include <string.h>

const sample *const samples_all[] = {
    &sample_chaining,
    &sample_fan_out_fan_in,
    &sample_human_interaction,
    &sample_monitor,
    &sample_saga,
    &sample_sub_orchestrations,
    &sample_event_driven,
    &sample_entity_counter,
    &sample_bank_transfer,
    NULL,
};

const sample *samples_find(const char *name)
{
    for (size_t i = 0; samples_all[i] != NULL; i++) {
        if (strcmp(samples_all[i]->name, name) == 0) {
            return samples_all[i];
        }
    }
    return NULL;
}

dt_status samples_add_all(dt_worker *w)
{
    for (size_t i = 0; samples_all[i] != NULL; i++) {
        dt_status st = samples_all[i]->add(w);
        if (st != DT_OK) {
            return st;
        }
    }
    return DT_OK;
}
