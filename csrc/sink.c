/* sink.c: the sink factory's copy and lifetime (see sink.h).  The sinks
 * themselves live in one file per kind (mysql_sink.c). */
#include "sink.h"

#include <string.h>

#include "qbel_alloc.h"

int
sink_factory_copy(sink_factory *target, const sink_factory *source)
{
    memset(target, 0, sizeof(*target));
    if (source->config == NULL) {
        return 0;
    }
    target->make = source->make;
    target->copy_config = source->copy_config;
    target->free_config = source->free_config;
    target->config = source->copy_config(source->config);
    target->identity = qbel_strdup(source->identity != NULL ? source->identity : "");
    if (target->config == NULL || target->identity == NULL) {
        sink_factory_free(target);
        return -1;
    }
    return 0;
}

void
sink_factory_free(sink_factory *factory)
{
    if (factory->config != NULL) {
        factory->free_config(factory->config);
    }
    qbel_free(factory->identity);
    memset(factory, 0, sizeof(*factory));
}

sink *
sink_factory_make(const sink_factory *factory)
{
    return factory->config != NULL ? factory->make(factory->config) : NULL;
}

const char *
sink_factory_identity(const sink_factory *factory)
{
    return factory->identity != NULL ? factory->identity : "";
}
