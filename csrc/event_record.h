/* event_record: one validated, encoded event, ready for the writer thread.
 *
 * Owns nothing but itself: the record is one malloc block holding its fields
 * and the event_data JSON (NUL-terminated for convenience; json_length does
 * not count the NUL).  At any time exactly one place owns a record: the
 * caller that made it, the event queue, a writer batch, or nobody (freed).
 * No Python object is ever reachable from a record.
 */
#ifndef QBEL_EVENT_RECORD_H
#define QBEL_EVENT_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "byte_buffer.h"

enum event_type_code {
    EVENT_TYPE_API = 0,
    EVENT_TYPE_WEBSOCKET = 1,
    EVENT_TYPE_VIEW = 2,
    EVENT_TYPE_CLICK = 3,
};
#define EVENT_TYPE_COUNT 4

/* "API", "WEBSOCKET", "VIEW", "CLICK"; NULL for an invalid code. */
const char *event_type_name(int code);
/* The code for a name (exact, case-sensitive), or -1. */
int event_type_from_name(const char *name, size_t length);

typedef struct event_record {
    struct event_record *next; /* link while queued or batched */
    int64_t created_at_us;     /* UTC, microseconds since the epoch */
    int32_t uid;
    bool uid_is_null;
    uint8_t event_type;        /* enum event_type_code */
    size_t json_length;
    char json[];               /* event_data, compact UTF-8 JSON (any value) */
} event_record;

/* malloc a record and copy `json` into it.  NULL when malloc fails. */
event_record *event_record_new(int64_t created_at_us, int32_t uid, bool uid_is_null,
                               int event_type, const char *json, size_t json_length);

/* Bytes a buffer leaves free at its start for event_record_from_buffer_take. */
#define EVENT_RECORD_HEADER_SIZE offsetof(event_record, json)

/* A record from `buffer`, which holds EVENT_RECORD_HEADER_SIZE bytes of room
 * and then the event_data JSON: the buffer's heap block becomes the record
 * (no copy of the JSON), or an inline block is copied into a new one.
 * Consumes the buffer even when it fails: it is released and empty after.
 * NULL when malloc fails. */
event_record *event_record_from_buffer_take(int64_t created_at_us, int32_t uid,
                                            bool uid_is_null, int event_type,
                                            byte_buffer *buffer);

void event_record_free(event_record *record);

/* True when event_data is JSON `null` (event_data=None): the row stores
 * SQL NULL, as upstream's nullable JSON column does for None. */
static inline bool
event_record_data_is_null(const event_record *record)
{
    return record->json_length == 4 && memcmp(record->json, "null", 4) == 0;
}

/* Bytes a record accounts for in the queue's memory bound. */
static inline size_t
event_record_footprint(const event_record *record)
{
    return sizeof(event_record) + record->json_length + 1;
}

/* Format created_at_us as "YYYY-MM-DD HH:MM:SS" (19 chars + NUL) in UTC. */
void event_time_format_sql(int64_t created_at_us, char out[20]);

/* Format as ISO 8601 "YYYY-MM-DDTHH:MM:SS.ffffff+00:00" (32 chars + NUL). */
void event_time_format_iso(int64_t created_at_us, char out[33]);

/* Longest event_record_format_head output, with its NUL. */
#define EVENT_RECORD_HEAD_MAX 96

/* The record's fields as JSON members, no braces:
 * "created_at":"<ISO 8601 UTC>","uid":<n or null>,"event_type":"<name>"
 * -- the spool line's and the Kafka envelope's head.  Its length. */
size_t event_record_format_head(const event_record *record, char out[EVENT_RECORD_HEAD_MAX]);

/* Broken-down UTC time of created_at_us. */
typedef struct event_civil_time {
    int year, month, day, hour, minute, second, microsecond;
} event_civil_time;
void event_time_to_civil(int64_t created_at_us, event_civil_time *out);

/* Current UTC time in microseconds since the epoch. */
int64_t event_time_now_us(void);

#endif
