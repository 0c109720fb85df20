/* kafka_sink: the Kafka implementation of the sink interface (sink.h) on
 * librdkafka: one idempotent producer (acks=all) that writes batches of
 * event_records to one topic, at least once.
 *
 * Owns: the rd_kafka_t handle, the batch's delivery slots, the envelope
 * buffer, and copies of every configuration string.  Pure C, no Python:
 * every function runs on the writer thread (or on a caller thread that
 * released the GIL for a replay), and a sink is never used by two threads
 * at once.  Compiled only when setup.py found librdkafka (QBEL_HAVE_RDKAFKA).
 *
 * Message: value = the JSON envelope {"created_at": ISO 8601 UTC, "uid",
 * "event_type", "event_data"} built from the record (event_data is the
 * caller's JSON, copied as it is); key = the uid in decimal (none when
 * key_by_uid is false or the uid is null); header "event_id" =
 * "<batch id>-<index in the batch>", the same on every resend of the
 * batch, so a consumer drops duplicates by it.
 *
 * A handle that saw a fatal error, a timed-out or fenced delivery, or a
 * permanent broker rejection is never reused: it is destroyed and the next
 * connect makes a new one (librdkafka's idempotent producer cannot recover
 * from UNKNOWN_PRODUCER_ID after a broker restart).  Messages rejected for
 * good (too large, topic authorization, INVALID_RECORD) are reported as
 * rejections; a broker rejection fails its whole produce request, so each
 * message it failed is sent again alone and only those that fail alone are
 * rejected.
 */
#ifndef QBEL_KAFKA_SINK_H
#define QBEL_KAFKA_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sink.h"

/* What the sinks of one logger report about their producers, for stats():
 * shared by every sink its factory makes (the writer's, a replay's, a
 * forked child's copy), read by the caller thread.  Its own mutex, held for
 * a copy only, never across I/O.  Reference counted: the logger holds one,
 * and every kafka_sink_config that points at them holds one (a writer
 * thread left behind by a timed-out close keeps its sink's config, and so
 * the counters, alive until it exits). */
typedef struct kafka_sink_counters kafka_sink_counters;

typedef struct kafka_sink_report {
    uint64_t producers;    /* producer handles made */
    uint64_t replacements; /* handles destroyed after an error (fatal, timed out, fenced,
                              rejected) and replaced by the next connect */
    qbel_error last_replacement; /* why the last one was; code 0 when none */
    double last_replacement_at;  /* Unix time, 0 when none */
} kafka_sink_report;

/* One reference, or NULL on OOM. */
kafka_sink_counters *kafka_sink_counters_new(void);
/* Any thread.  Another reference to `counters` (may be NULL); returned. */
kafka_sink_counters *kafka_sink_counters_retain(kafka_sink_counters *counters);
/* Any thread.  Drop one reference (NULL: nothing); the last frees them. */
void kafka_sink_counters_release(kafka_sink_counters *counters);
/* Any thread, never blocks for long: a copy of the report. */
void kafka_sink_counters_read(kafka_sink_counters *counters, kafka_sink_report *out);

typedef struct kafka_sink_config {
    char *bootstrap_servers; /* "host:port,host:port" */
    char *topic;
    bool key_by_uid;         /* key = uid (per-user order); false: no key */
    /* librdkafka properties applied after our defaults: names[i] = values[i] */
    size_t setting_count;
    char **setting_names;
    char **setting_values;
    unsigned int connect_timeout_ms; /* bound of the metadata request on connect */
    /* The process the factory was made in (set by kafka_sink_factory).  A
     * producer made in another one (a fork()ed child) gets transactional.id
     * "<id>-<its pid>": a child with the parent's id would fence the
     * parent's producer (and the parent the child's) on every connect. */
    long owner_pid;
    /* NULL: none.  kafka_sink_config_copy takes a reference and
     * kafka_sink_config_free drops it; a config filled by hand (the
     * logger's, on the stack) borrows. */
    kafka_sink_counters *counters;
} kafka_sink_config;

/* Deep-copy `source` into `target`.  0, or -1 on OOM (then `target` holds
 * nothing that needs freeing). */
int kafka_sink_config_copy(kafka_sink_config *target, const kafka_sink_config *source);
void kafka_sink_config_free(kafka_sink_config *config);

/* Does librdkafka accept property `name` = `value`?  0, or -1 with its
 * message in `error` (size bytes).  Any thread. */
int kafka_sink_check_setting(const char *name, const char *value, char *error, size_t size);

/* A factory of sinks for `config` (deep-copied), with the identity
 * "kafka://<bootstrap_servers>#<topic>".  0, or -1 on OOM. */
int kafka_sink_factory(sink_factory *out, const kafka_sink_config *config);

/* librdkafka's version string, e.g. "2.0.2". */
const char *kafka_sink_library_version(void);

#endif
