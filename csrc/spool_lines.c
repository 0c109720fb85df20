/* spool_lines.c: the line format shared by spool and dead-letter files
 * (see spool.h): formatting a record as a line, and parsing one back.
 * Pure functions; any thread. */
#include <jansson.h>

#include "spool.h"
#include "spool_internal.h"
#include "qbel_alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* Append `text` as the body of a JSON string (no quotes).  Valid UTF-8 is
 * copied; a byte that is not part of valid UTF-8 becomes \u00XX, so the
 * output is always valid JSON and nothing is lost silently. */
int
spool_append_json_string(byte_buffer *out, const char *text, size_t length)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *bytes = (const unsigned char *)text;
    size_t i = 0;
    while (i < length) {
        unsigned char c = bytes[i];
        size_t sequence = 0;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            sequence = 1;
        }
        else if (c >= 0xC2 && c <= 0xF4) {
            size_t needed = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            if (i + needed <= length) {
                sequence = needed;
                for (size_t k = 1; k < needed; k++) {
                    if ((bytes[i + k] & 0xC0) != 0x80) {
                        sequence = 0;
                    }
                }
            }
        }
        if (sequence > 0) {
            if (byte_buffer_append(out, bytes + i, sequence) < 0) {
                return -1;
            }
            i += sequence;
            continue;
        }
        char escaped[6] = {'\\', c == '"' ? '"' : '\\', 0, 0, 0, 0};
        size_t escaped_length = 2;
        if (c != '"' && c != '\\') {
            memcpy(escaped, "\\u00", 4);
            escaped[4] = digits[c >> 4];
            escaped[5] = digits[c & 15];
            escaped_length = 6;
        }
        if (byte_buffer_append(out, escaped, escaped_length) < 0) {
            return -1;
        }
        i++;
    }
    return 0;
}

/* "created_at":...,"uid":...,"event_type":...,"batch":... (no braces) */
int
spool_append_record_fields(byte_buffer *out, const event_record *record, const char *batch_id,
                           const char *target)
{
    char head[EVENT_RECORD_HEAD_MAX];
    size_t head_length = event_record_format_head(record, head);
    if (byte_buffer_append(out, head, head_length) < 0 ||
        byte_buffer_append_literal(out, ",\"batch\":\"") < 0 ||
        spool_append_json_string(out, batch_id, strlen(batch_id)) < 0 ||
        byte_buffer_append_char(out, '"') < 0) {
        return -1;
    }
    if (target != NULL &&
        (byte_buffer_append_literal(out, ",\"target\":\"") < 0 ||
         spool_append_json_string(out, target, strlen(target)) < 0 ||
         byte_buffer_append_char(out, '"') < 0)) {
        return -1;
    }
    return 0;
}

int
spool_format_line(byte_buffer *out, const event_record *record, const char *batch_id,
                  const char *target)
{
    if (byte_buffer_append_char(out, '{') < 0 ||
        spool_append_record_fields(out, record, batch_id, target) < 0 ||
        byte_buffer_append_literal(out, ",\"event_data\":") < 0 ||
        byte_buffer_append(out, record->json, record->json_length) < 0 ||
        byte_buffer_append_literal(out, "}\n") < 0) {
        return -1;
    }
    return 0;
}

/* ---- replay ------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date (inverse of
 * event_record.c's civil_from_days). */
static int64_t
days_from_civil(int64_t year, int64_t month, int64_t day)
{
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    int64_t year_of_era = year - era * 400;
    int64_t day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

/* Parse exactly "YYYY-MM-DDTHH:MM:SS.ffffff+00:00".  0 or -1. */
static int
parse_iso_time(const char *text, size_t length, int64_t *out)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddddd+00:00";
    if (length != sizeof(shape) - 1) {
        return -1;
    }
    for (size_t i = 0; i < length; i++) {
        if (shape[i] == 'd' ? (text[i] < '0' || text[i] > '9') : text[i] != shape[i]) {
            return -1;
        }
    }
    int64_t year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, micro = 0;
    for (int i = 0; i < 4; i++) year = year * 10 + (text[i] - '0');
    month = (text[5] - '0') * 10 + (text[6] - '0');
    day = (text[8] - '0') * 10 + (text[9] - '0');
    hour = (text[11] - '0') * 10 + (text[12] - '0');
    minute = (text[14] - '0') * 10 + (text[15] - '0');
    second = (text[17] - '0') * 10 + (text[18] - '0');
    for (int i = 20; i < 26; i++) micro = micro * 10 + (text[i] - '0');
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 ||
        second > 59) {
        return -1;
    }
    int64_t days = days_from_civil(year, month, day);
    *out = ((days * 86400 + hour * 3600 + minute * 60 + second) * 1000000) + micro;
    return 0;
}

/* Turn one complete line (without its newline) into a record and its batch
 * id.  NULL with `why` filled when the line is not one of ours. */
event_record *
spool_parse_line(const char *line, size_t length, char batch_id[SINK_BATCH_ID_MAX + 1],
                 char target[SINK_IDENTITY_MAX], char *why, size_t why_size)
{
    static const char marker[] = ",\"event_data\":";
    event_record *record = NULL;
    json_t *fields = NULL;
    const char *found = memmem(line, length, marker, sizeof(marker) - 1);
    if (found == NULL || length < 2 || line[length - 1] != '}') {
        snprintf(why, why_size, "not a spool line (no trailing event_data)");
        return NULL;
    }
    size_t prefix_length = (size_t)(found - line);
    const char *data = found + sizeof(marker) - 1;
    size_t data_length = (size_t)(line + length - 1 - data);
    while (data_length > 0 && (*data == ' ')) {
        data++;
        data_length--;
    }
    while (data_length > 0 && data[data_length - 1] == ' ') {
        data_length--;
    }
    /* any JSON value, passed on verbatim (the server checks it: a JSON
     * column rejects invalid text, and the row is dead-lettered); `null`
     * becomes SQL NULL when inserted */
    if (data_length == 0) {
        snprintf(why, why_size, "event_data is empty");
        return NULL;
    }
    /* the fields before event_data, closed into an object of their own */
    char inline_block[256];
    byte_buffer head;
    byte_buffer_init(&head, inline_block, sizeof(inline_block));
    if (byte_buffer_append(&head, line, prefix_length) < 0 ||
        byte_buffer_append_char(&head, '}') < 0) {
        snprintf(why, why_size, "out of memory");
        goto done;
    }
    json_error_t error;
    fields = json_loadb(head.data, head.length, JSON_REJECT_DUPLICATES, &error);
    if (fields == NULL || !json_is_object(fields)) {
        snprintf(why, why_size, "unparsable fields: %s", fields ? "not an object" : error.text);
        goto done;
    }
    json_t *created_at = json_object_get(fields, "created_at");
    json_t *uid = json_object_get(fields, "uid");
    json_t *event_type = json_object_get(fields, "event_type");
    json_t *batch = json_object_get(fields, "batch");
    int64_t created_at_us;
    if (!json_is_string(created_at) ||
        parse_iso_time(json_string_value(created_at), json_string_length(created_at),
                       &created_at_us) < 0) {
        snprintf(why, why_size, "bad created_at");
        goto done;
    }
    if (!(json_is_null(uid) ||
          (json_is_integer(uid) && json_integer_value(uid) >= INT32_MIN &&
           json_integer_value(uid) <= INT32_MAX))) {
        snprintf(why, why_size, "bad uid");
        goto done;
    }
    int type = json_is_string(event_type) ? event_type_from_name(json_string_value(event_type),
                                                                  json_string_length(event_type))
                                          : -1;
    if (type < 0) {
        snprintf(why, why_size, "bad event_type");
        goto done;
    }
    if (batch != NULL && (!json_is_string(batch) ||
                          json_string_length(batch) > SINK_BATCH_ID_MAX)) {
        snprintf(why, why_size, "bad batch id");
        goto done;
    }
    /* absent in lines from before targets were recorded: "" */
    json_t *target_field = json_object_get(fields, "target");
    if (target_field != NULL &&
        (!json_is_string(target_field) || json_string_length(target_field) >= SINK_IDENTITY_MAX ||
         strlen(json_string_value(target_field)) != json_string_length(target_field))) {
        snprintf(why, why_size, "bad target");
        goto done;
    }
    const char *target_text = target_field ? json_string_value(target_field) : "";
    memcpy(target, target_text, strlen(target_text) + 1);
    const char *batch_text = batch ? json_string_value(batch) : "";
    memcpy(batch_id, batch_text, strlen(batch_text) + 1);
    record = event_record_new(created_at_us, json_is_null(uid) ? 0 : (int32_t)json_integer_value(uid),
                              json_is_null(uid), type, data, data_length);
    if (record == NULL) {
        snprintf(why, why_size, "out of memory");
    }
done:
    json_decref(fields);
    byte_buffer_release(&head);
    return record;
}
