/* event_record: allocation, event type names and UTC time formatting. */
#include "event_record.h"
#include "qbel_alloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const event_type_names[EVENT_TYPE_COUNT] = {"API", "WEBSOCKET", "VIEW",
                                                               "CLICK"};

const char *
event_type_name(int code)
{
    if (code < 0 || code >= EVENT_TYPE_COUNT) {
        return NULL;
    }
    return event_type_names[code];
}

int
event_type_from_name(const char *name, size_t length)
{
    for (int code = 0; code < EVENT_TYPE_COUNT; code++) {
        if (strlen(event_type_names[code]) == length &&
            memcmp(event_type_names[code], name, length) == 0) {
            return code;
        }
    }
    return -1;
}

event_record *
event_record_new(int64_t created_at_us, int32_t uid, bool uid_is_null, int event_type,
                 const char *json, size_t json_length)
{
    if (json_length > SIZE_MAX - sizeof(event_record) - 1) {
        return NULL;
    }
    event_record *record = qbel_malloc(sizeof(event_record) + json_length + 1);
    if (record == NULL) {
        return NULL;
    }
    record->next = NULL;
    record->created_at_us = created_at_us;
    record->uid = uid;
    record->uid_is_null = uid_is_null;
    record->event_type = (uint8_t)event_type;
    record->json_length = json_length;
    memcpy(record->json, json, json_length);
    record->json[json_length] = '\0';
    return record;
}

event_record *
event_record_from_buffer_take(int64_t created_at_us, int32_t uid, bool uid_is_null,
                              int event_type, byte_buffer *buffer)
{
    if (buffer->length < EVENT_RECORD_HEADER_SIZE || byte_buffer_append_char(buffer, '\0') < 0) {
        byte_buffer_release(buffer);
        return NULL;
    }
    size_t size = buffer->length;
    size_t capacity = buffer->capacity;
    event_record *record;
    if (buffer->data_is_inline) {
        /* on the caller's inline block: small, so one copy is cheap */
        record = qbel_malloc(size);
        if (record != NULL) {
            memcpy(record->json, buffer->data + EVENT_RECORD_HEADER_SIZE,
                   size - EVENT_RECORD_HEADER_SIZE);
        }
        byte_buffer_release(buffer);
        if (record == NULL) {
            return NULL;
        }
    }
    else {
        record = (event_record *)(void *)byte_buffer_detach(buffer);
        /* doubling may have left up to half the block unused: give it back
         * (in place for the allocators we run on) while the record waits */
        if (capacity - size > size / 4 + 4096) {
            event_record *shrunk = qbel_realloc(record, size);
            if (shrunk != NULL) {
                record = shrunk;
            }
        }
    }
    record->next = NULL;
    record->created_at_us = created_at_us;
    record->uid = uid;
    record->uid_is_null = uid_is_null;
    record->event_type = (uint8_t)event_type;
    record->json_length = size - EVENT_RECORD_HEADER_SIZE - 1;
    return record;
}

void
event_record_free(event_record *record)
{
    qbel_free(record);
}

/* Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
 * algorithm): exact for every year we accept, with no dependence on the
 * C library's time_t range or time zone. */
static void
civil_from_days(int64_t days, int *year, int *month, int *day)
{
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t day_of_era = days - era * 146097;
    int64_t year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    int64_t month_index = (5 * day_of_year + 2) / 153;
    *day = (int)(day_of_year - (153 * month_index + 2) / 5 + 1);
    *month = (int)(month_index < 10 ? month_index + 3 : month_index - 9);
    *year = (int)(year_of_era + era * 400 + (*month <= 2));
}

void
event_time_to_civil(int64_t created_at_us, event_civil_time *out)
{
    int64_t seconds = created_at_us / 1000000;
    int64_t microsecond = created_at_us % 1000000;
    if (microsecond < 0) {
        microsecond += 1000000;
        seconds -= 1;
    }
    int64_t days = seconds / 86400;
    int64_t second_of_day = seconds % 86400;
    if (second_of_day < 0) {
        second_of_day += 86400;
        days -= 1;
    }
    civil_from_days(days, &out->year, &out->month, &out->day);
    out->hour = (int)(second_of_day / 3600);
    out->minute = (int)(second_of_day / 60 % 60);
    out->second = (int)(second_of_day % 60);
    out->microsecond = (int)microsecond;
}

/* Write `value` as exactly `width` decimal digits (zero-padded). */
static char *
put_digits(char *out, int value, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = (char)('0' + value % 10);
        value /= 10;
    }
    return out + width;
}

/* "YYYY-MM-DD?HH:MM:SS" with `separator` between date and time. */
static char *
put_date_time(char *out, const event_civil_time *t, char separator)
{
    out = put_digits(out, t->year, 4);
    *out++ = '-';
    out = put_digits(out, t->month, 2);
    *out++ = '-';
    out = put_digits(out, t->day, 2);
    *out++ = separator;
    out = put_digits(out, t->hour, 2);
    *out++ = ':';
    out = put_digits(out, t->minute, 2);
    *out++ = ':';
    return put_digits(out, t->second, 2);
}

void
event_time_format_sql(int64_t created_at_us, char out[20])
{
    event_civil_time t;
    event_time_to_civil(created_at_us, &t);
    *put_date_time(out, &t, ' ') = '\0';
}

void
event_time_format_iso(int64_t created_at_us, char out[33])
{
    event_civil_time t;
    event_time_to_civil(created_at_us, &t);
    char *end = put_date_time(out, &t, 'T');
    *end++ = '.';
    end = put_digits(end, t.microsecond, 6);
    memcpy(end, "+00:00", 7);
}

int64_t
event_time_now_us(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

size_t
event_record_format_head(const event_record *record, char out[EVENT_RECORD_HEAD_MAX])
{
    char created_at[33];
    char uid[16];
    event_time_format_iso(record->created_at_us, created_at);
    if (record->uid_is_null) {
        memcpy(uid, "null", 5);
    }
    else {
        snprintf(uid, sizeof(uid), "%" PRId32, record->uid);
    }
    const char *type = event_type_name(record->event_type);
    int length = snprintf(out, EVENT_RECORD_HEAD_MAX,
                          "\"created_at\":\"%s\",\"uid\":%s,\"event_type\":\"%s\"", created_at, uid,
                          type != NULL ? type : "");
    return length > 0 ? (size_t)length : 0; /* at most 14+32+9+11+15+9+1 < 96: never cut */
}
