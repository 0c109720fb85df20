/* writer_replay.c: writer_replay_directory, the replay command's glue —
 * one sink from the factory, the dead-letter file, every unclaimed spool
 * file.  Runs on a caller thread with the GIL released. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "event_queue.h"
#include "qbel_alloc.h"
#include "spool.h"
#include "writer_internal.h"

/* spool_replay_context.should_stop: the caller's give_up flag. */
static bool
replay_should_stop(void *argument)
{
    return __atomic_load_n((const int *)argument, __ATOMIC_ACQUIRE) != 0;
}

int64_t
writer_replay_directory(const writer_config *config, bool adopt_all, const int *give_up,
                        qbel_error *error)
{
    if (config->spool_dir == NULL) {
        qbel_error_set(error, ENOENT, "no spool directory");
        return -1;
    }
    dead_letter letters;
    if (dead_letter_init(&letters, config->spool_dir, sink_factory_identity(&config->sink)) < 0) {
        qbel_error_set(error, ENOMEM, "out of memory");
        return -1;
    }
    int64_t replayed = -1;
    sink *sink = sink_factory_make(&config->sink);
    if (sink == NULL) {
        qbel_error_set(error, ENOMEM, "out of memory");
        goto done;
    }
    sink->give_up = give_up; /* as the writer thread's sink gets its stop flag */
    if (sink_connect(sink) != SINK_OK) {
        qbel_error_set(error, sink->ops->last_error(sink)->code, "connecting: %s",
                       sink_last_error(sink));
        goto done;
    }
    spool_replay_context context = {.sink = sink,
                                    .target = sink_factory_identity(&config->sink),
                                    .dir = config->spool_dir,
                                    .adopt_all = adopt_all,
                                    .letters = &letters,
                                    .should_stop = give_up != NULL ? replay_should_stop : NULL,
                                    .argument = (void *)give_up};
    spool_replay_result result;
    memset(&result, 0, sizeof(result));
    if (spool_replay_directory(&context, config->spool_dir, &result) < 0 ||
        durable_replay_directory(&context, config->spool_dir, &result) < 0) {
        *error = context.error;
        goto done;
    }
    replayed = (int64_t)result.replayed;
done:
    if (sink != NULL) {
        sink_free(sink);
    }
    dead_letter_close(&letters);
    return replayed;
}
