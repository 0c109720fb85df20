/* sink.c: the sink factory's copy and lifetime (see sink.h).  The sinks
 * themselves live in one file per kind (mysql_sink.c, kafka_sink.c). */
#include "sink.h"

#include <string.h>

#include "qbel_alloc.h"

int
sink_factory_init(sink_factory *out, const sink_kind *kind, const void *config,
                  const char *identity)
{
    memset(out, 0, sizeof(*out));
    out->kind = kind;
    out->config = qbel_calloc(1, kind->config_size);
    if (out->config != NULL && kind->copy_config(out->config, config) < 0) {
        qbel_free(out->config);
        out->config = NULL;
    }
    out->identity = qbel_strdup(identity);
    if (out->config == NULL || out->identity == NULL) {
        sink_factory_free(out);
        return -1;
    }
    return 0;
}

int
sink_factory_copy(sink_factory *target, const sink_factory *source)
{
    if (source->config == NULL) {
        memset(target, 0, sizeof(*target));
        return 0;
    }
    return sink_factory_init(target, source->kind, source->config,
                             source->identity != NULL ? source->identity : "");
}

void
sink_factory_free(sink_factory *factory)
{
    if (factory->config != NULL) {
        factory->kind->clear_config(factory->config);
        qbel_free(factory->config);
    }
    qbel_free(factory->identity);
    memset(factory, 0, sizeof(*factory));
}

sink *
sink_factory_make(const sink_factory *factory)
{
    return factory->config != NULL ? factory->kind->make(factory->config) : NULL;
}

const char *
sink_factory_identity(const sink_factory *factory)
{
    return factory->identity != NULL ? factory->identity : "";
}
