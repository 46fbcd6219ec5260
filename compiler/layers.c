/* The table of layer kinds (layers.def), looked up by name. */
#include <string.h>

#include "layers.h"

static const dnic_layer_kind *const KINDS[] = {
#define DNIC_LAYER(name) &dnic_layer_##name,
#include "layers.def"
#undef DNIC_LAYER
};

const char *const dnic_layer_kind_names[] = {
#define DNIC_LAYER(name) #name,
#include "layers.def"
#undef DNIC_LAYER
};

const int dnic_layer_kind_count = (int)(sizeof KINDS / sizeof KINDS[0]);

const dnic_layer_kind *dnic_layer_kind_find(const char *name)
{
    for (int i = 0; i < dnic_layer_kind_count; i++)
        if (strcmp(KINDS[i]->name, name) == 0)
            return KINDS[i];
    return NULL;
}
