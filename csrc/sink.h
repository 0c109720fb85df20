/* sink: the seam between the writer (queue, thread, spool, replay) and the
 * server it writes to.  The writer, the queue and the spool know this
 * header only; each kind of output (MySQL today: mysql_sink.c) is one C
 * file that fills a sink_ops table and a sink_factory, plus its Python
 * type.
 *
 * Owns: nothing but the factory's configuration copy and identity string
 * (sink.c); a sink owns whatever its implementation allocates.
 *
 * Threads: a sink is used by one thread at a time (the writer thread, or a
 * caller thread that released the GIL for a replay) and never needs the
 * GIL.  Every blocking call of an implementation is bounded by its own
 * timeouts.
 *
 * Exactly-once: every batch carries a batch id (1..SINK_BATCH_ID_MAX ASCII
 * chars) that the sink commits atomically with the rows (MySQL: a marker
 * row in the same transaction).  After a connection error during a commit
 * the writer reconnects and asks sink_batch_committed() before writing the
 * batch again.  When the sink cannot keep batch ids (sink_delivery says
 * SINK_AT_LEAST_ONCE), batch_committed answers 0 and a batch whose outcome
 * was lost is written again.
 *
 * Identity: a sink_factory carries the target's identity, e.g.
 * "mysql://user@host:3306/db#event_log" (never a password).  Every spool
 * and dead-letter line is tagged with it, and a replay writes a line only
 * into the target it names.
 */
#ifndef QBEL_SINK_H
#define QBEL_SINK_H

#include <stdbool.h>
#include <stddef.h>

#include "event_record.h"
#include "qbel_error.h"

#define SINK_BATCH_ID_MAX 64
#define SINK_ERROR_MAX QBEL_ERROR_MAX
/* Longest identity string (with its NUL); longer ones are cut. */
#define SINK_IDENTITY_MAX 512

typedef enum sink_status {
    SINK_OK = 0,
    /* The connection failed or broke; reconnect and retry.  For a commit
     * this is ambiguous: ask sink_batch_committed() first. */
    SINK_CONNECTION_ERROR = 1,
    /* Anything else the server refused (a missing table, bad credentials):
     * reported through last_error, retried after backoff. */
    SINK_SERVER_ERROR = 2,
} sink_status;

/* What the current (or last) connection can promise. */
typedef enum sink_delivery {
    SINK_DELIVERY_UNKNOWN = -1, /* not connected yet */
    SINK_AT_LEAST_ONCE = 0,     /* batch ids cannot be kept (MySQL: no marker table) */
    SINK_EXACTLY_ONCE = 1,
} sink_delivery;

/* A row the server rejected for good, as reported during write_batch. */
typedef struct sink_rejection {
    const event_record *record;
    char error[SINK_ERROR_MAX]; /* the server's reason */
} sink_rejection;

typedef void (*sink_rejection_callback)(void *context, const sink_rejection *rejection);

typedef struct sink sink;

/* The operations of one kind of sink.  Every function pointer is set. */
typedef struct sink_ops {
    const char *kind; /* "mysql" */
    /* Connect if not connected.  Idempotent. */
    sink_status (*connect)(sink *self);
    bool (*is_connected)(const sink *self);
    void (*disconnect)(sink *self);
    /* Write `count` records in one atomic unit with the batch id.  Rows the
     * server rejects for a row-level reason are reported through
     * `on_rejected` (before the commit; `context` passed through) and left
     * out; the others commit.  *rejected_count_out gets their number.
     * SINK_OK when committed (or found committed before: nothing written
     * twice), SINK_CONNECTION_ERROR (possibly ambiguous), SINK_SERVER_ERROR
     * (nothing committed). */
    sink_status (*write_batch)(sink *self, const char *batch_id, event_record *const *records,
                               size_t count, sink_rejection_callback on_rejected, void *context,
                               size_t *rejected_count_out);
    /* 1 when `batch_id` committed, 0 when not (or when nothing can tell:
     * SINK_AT_LEAST_ONCE), -1 on error (status in *status_out). */
    int (*batch_committed)(sink *self, const char *batch_id, sink_status *status_out);
    /* Periodic upkeep (MySQL: prune old marker rows, look for a marker
     * table created since).  Best effort. */
    sink_status (*housekeeping)(sink *self);
    sink_delivery (*delivery)(const sink *self);
    /* The last error ("" / code 0 when none); never holds a password. */
    const qbel_error *(*last_error)(const sink *self);
    /* Close (politely) and free. */
    void (*free)(sink *self);
    /* In a forked child: drop the parent's connection without talking to
     * the server, then free. */
    void (*abandon)(sink *self);
} sink_ops;

/* Every implementation's struct starts with this (zeroed, then ops set). */
struct sink {
    const sink_ops *ops;
    /* Set by the sink's user, NULL for none (the writer: its stop flag).
     * Nonzero (read atomically) once the user is closing past its deadline:
     * a wait longer than a short slice gives up then, returning
     * SINK_CONNECTION_ERROR, and the batch goes back to the user. */
    const int *give_up;
};

/* Any thread: has the sink's user asked it to give up its waits? */
static inline bool
sink_should_give_up(const sink *self)
{
    return self->give_up != NULL && __atomic_load_n(self->give_up, __ATOMIC_ACQUIRE) != 0;
}

static inline sink_status
sink_connect(sink *self)
{
    return self->ops->connect(self);
}

static inline bool
sink_is_connected(const sink *self)
{
    return self->ops->is_connected(self);
}

static inline void
sink_disconnect(sink *self)
{
    self->ops->disconnect(self);
}

static inline sink_status
sink_write_batch(sink *self, const char *batch_id, event_record *const *records, size_t count,
                 sink_rejection_callback on_rejected, void *context, size_t *rejected_count_out)
{
    return self->ops->write_batch(self, batch_id, records, count, on_rejected, context,
                                  rejected_count_out);
}

static inline int
sink_batch_committed(sink *self, const char *batch_id, sink_status *status_out)
{
    return self->ops->batch_committed(self, batch_id, status_out);
}

static inline sink_status
sink_housekeeping(sink *self)
{
    return self->ops->housekeeping(self);
}

static inline sink_delivery
sink_get_delivery(const sink *self)
{
    return self->ops->delivery(self);
}

static inline const char *
sink_last_error(const sink *self)
{
    return self->ops->last_error(self)->message;
}

static inline void
sink_free(sink *self)
{
    if (self != NULL) {
        self->ops->free(self);
    }
}

static inline void
sink_abandon(sink *self)
{
    if (self != NULL) {
        self->ops->abandon(self);
    }
}

/* What a kind of sink tells the factory: how large its configuration is,
 * how to deep-copy and release one, and how to make a sink from one.
 * `config` is opaque to everything but these functions. */
typedef struct sink_kind {
    size_t config_size;
    /* Deep-copy `source` into the zeroed `target`: 0, or -1 on OOM (then
     * `target` holds nothing that needs freeing). */
    int (*copy_config)(void *target, const void *source);
    void (*clear_config)(void *config); /* what it holds, not itself */
    sink *(*make)(const void *config);  /* NULL on OOM or a bad config */
} sink_kind;

/* How to make sinks of one target: the writer makes a fresh one per thread
 * (and after fork), the replay path one of its own. */
typedef struct sink_factory {
    const sink_kind *kind;
    void *config;   /* owned */
    char *identity; /* owned: the target, no password (see above) */
} sink_factory;

/* A factory of `kind` with a deep copy of `config` and `identity`.  0, or
 * -1 on OOM (then `out` holds nothing that needs freeing). */
int sink_factory_init(sink_factory *out, const sink_kind *kind, const void *config,
                      const char *identity);

/* Deep-copy `source` into `target`.  0, or -1 on OOM (then `target` holds
 * nothing that needs freeing). */
int sink_factory_copy(sink_factory *target, const sink_factory *source);

/* Free what the factory owns; safe on a zeroed factory. */
void sink_factory_free(sink_factory *factory);

/* A new, unconnected sink; NULL on OOM. */
sink *sink_factory_make(const sink_factory *factory);

/* The identity; "" for a zeroed factory. */
const char *sink_factory_identity(const sink_factory *factory);

#endif
