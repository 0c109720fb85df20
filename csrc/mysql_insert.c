/* mysql_insert: a batch's rows into the event table (see
 * mysql_sink_internal.h).
 *
 * Owns: growing the column-wise bind arrays and the text-INSERT buffer
 * (mysql_sink.c frees them with the sink), the per-batch rejection list,
 * and the packet limits: a row no packet can carry is rejected up front.
 *
 * Rows: on MariaDB, one prepared INSERT executed with bulk array binding
 * (STMT_ATTR_ARRAY_SIZE, column-wise); elsewhere multi-row text INSERTs with
 * escaped values.  Either way each execution stays under max_allowed_packet.
 */
#include "mysql_sink_internal.h"
#include "qbel_alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Statements larger than this gain no speed, only client memory. */
#define STATEMENT_SIZE_CAP (8UL * 1024 * 1024)

/* --------------------------------------------------------------- buffers */

int
mysql_sink_grow_array(void *pointer_to_array, size_t count, size_t element_size)
{
    void **array = pointer_to_array;
    if (element_size != 0 && count > SIZE_MAX / element_size) {
        return -1;
    }
    void *grown = qbel_realloc(*array, count * element_size);
    if (grown == NULL) {
        return -1;
    }
    *array = grown;
    return 0;
}

int
mysql_sink_ensure_capacity(mysql_sink *sink, size_t count)
{
    if (count <= sink->capacity) {
        return 0;
    }
    size_t capacity = sink->capacity ? sink->capacity : 256;
    while (capacity < count) {
        capacity = capacity > SIZE_MAX / 2 ? count : capacity * 2;
    }
    if (mysql_sink_grow_array(&sink->row_index, capacity, sizeof(size_t)) < 0 ||
        mysql_sink_grow_array(&sink->times, capacity, sizeof(MYSQL_TIME)) < 0 ||
        mysql_sink_grow_array(&sink->time_pointers, capacity, sizeof(MYSQL_TIME *)) < 0 ||
        mysql_sink_grow_array(&sink->uids, capacity, sizeof(int32_t)) < 0 ||
        mysql_sink_grow_array(&sink->uid_indicators, capacity, sizeof(char)) < 0 ||
        mysql_sink_grow_array(&sink->type_names, capacity, sizeof(const char *)) < 0 ||
        mysql_sink_grow_array(&sink->type_lengths, capacity, sizeof(unsigned long)) < 0 ||
        mysql_sink_grow_array(&sink->type_indicators, capacity, sizeof(char)) < 0 ||
        mysql_sink_grow_array(&sink->json_pointers, capacity, sizeof(const char *)) < 0 ||
        mysql_sink_grow_array(&sink->json_lengths, capacity, sizeof(unsigned long)) < 0 ||
        mysql_sink_grow_array(&sink->json_indicators, capacity, sizeof(char)) < 0 ||
        mysql_sink_grow_array(&sink->rejected, capacity, sizeof(unsigned char)) < 0) {
        /* Arrays that did grow stay valid; capacity keeps the old bound. */
        return -1;
    }
    sink->capacity = capacity;
    return 0;
}

static int
ensure_text_capacity(mysql_sink *sink, size_t needed)
{
    if (needed <= sink->text_capacity) {
        return 0;
    }
    size_t capacity = sink->text_capacity ? sink->text_capacity : 64 * 1024;
    while (capacity < needed) {
        capacity = capacity > SIZE_MAX / 2 ? needed : capacity * 2;
    }
    char *grown = qbel_realloc(sink->text, capacity);
    if (grown == NULL) {
        return -1;
    }
    sink->text = grown;
    sink->text_capacity = capacity;
    return 0;
}

mysql_sink_status
mysql_sink_out_of_memory(mysql_sink *sink)
{
    mysql_sink_set_error(sink, CR_OUT_OF_MEMORY, "HY000", "out of memory");
    return MYSQL_SINK_SERVER_ERROR;
}

/* ------------------------------------------------------------ rejections */

int
mysql_sink_add_rejection_text(mysql_sink *sink, size_t record_number, event_record *const *records,
                              const char *error)
{
    if (sink->rejection_count == sink->rejection_capacity) {
        size_t capacity = sink->rejection_capacity ? sink->rejection_capacity * 2 : 8;
        if (mysql_sink_grow_array(&sink->rejections, capacity, sizeof(mysql_sink_rejection)) < 0) {
            return -1;
        }
        sink->rejection_capacity = capacity;
    }
    mysql_sink_rejection *rejection = &sink->rejections[sink->rejection_count++];
    rejection->record = records[record_number];
    snprintf(rejection->error, sizeof(rejection->error), "%s", error);
    sink->rejected[record_number] = 1;
    return 0;
}

static int
add_rejection(mysql_sink *sink, size_t record_number, event_record *const *records,
              unsigned int error_number, const char *sqlstate, const char *message)
{
    char error[MYSQL_SINK_ERROR_MAX];
    snprintf(error, sizeof(error), "%u (%s): %s", error_number, sqlstate, message);
    return mysql_sink_add_rejection_text(sink, record_number, records, error);
}

/* The largest row either path can send within max_allowed_packet. */
static size_t
row_size_limit(const mysql_sink *sink)
{
    return sink->max_allowed_packet - PACKET_HEADROOM;
}

/* Bytes mysql_real_escape_string adds to a record's JSON (one backslash
 * per NUL, newline, carriage return, backslash, quote or ^Z). */
static size_t
escape_growth(const event_record *record)
{
    size_t growth = 0;
    for (size_t i = 0; i < record->json_length; i++) {
        switch (record->json[i]) {
        case '\0':
        case '\n':
        case '\r':
        case '\\':
        case '\'':
        case '"':
        case '\032':
            growth++;
            break;
        default:
            break;
        }
    }
    return growth;
}

/* Reject up front the rows that cannot be sent: one that does not fit in a
 * packet would make the server drop the connection, and a year outside
 * DATETIME's range cannot even be formatted. */
int
mysql_sink_reject_unsendable_rows(mysql_sink *sink, event_record *const *records, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        event_civil_time civil;
        event_time_to_civil(records[i]->created_at_us, &civil);
        if (civil.year < 1000 || civil.year > 9999) {
            if (add_rejection(sink, i, records, ER_TRUNCATED_WRONG_VALUE, "22007",
                              "Incorrect datetime value: year outside 1000..9999 for column "
                              "`created_at`") < 0) {
                return -1;
            }
            continue;
        }
        size_t footprint = records[i]->json_length + ROW_OVERHEAD;
        if (!sink->bulk_enabled || !sink->server_supports_bulk) {
            footprint += escape_growth(records[i]);
        }
        if (footprint > row_size_limit(sink)) {
            char message[200];
            snprintf(message, sizeof(message),
                     "Got a packet bigger than 'max_allowed_packet' bytes (a row of %zu bytes; "
                     "max_allowed_packet is %lu)",
                     records[i]->json_length, sink->max_allowed_packet);
            if (add_rejection(sink, i, records, ER_NET_PACKET_TOO_LARGE, "08S01", message) < 0) {
                return -1;
            }
        }
    }
    return 0;
}

/* -------------------------------------------------------------- bulk path */

bool
mysql_sink_uses_bulk_binding(const mysql_sink *sink)
{
    return sink->bulk_enabled && sink->server_supports_bulk && sink->insert_stmt != NULL;
}

/* Fill the column arrays with the batch's not-rejected records; returns how
 * many rows were filled. */
size_t
mysql_sink_fill_columns(mysql_sink *sink, event_record *const *records, size_t count)
{
    size_t rows = 0;
    for (size_t i = 0; i < count; i++) {
        if (sink->rejected[i]) {
            continue;
        }
        const event_record *record = records[i];
        event_civil_time civil;
        event_time_to_civil(record->created_at_us, &civil);
        MYSQL_TIME *time = &sink->times[rows];
        memset(time, 0, sizeof(*time));
        time->year = (unsigned int)civil.year;
        time->month = (unsigned int)civil.month;
        time->day = (unsigned int)civil.day;
        time->hour = (unsigned int)civil.hour;
        time->minute = (unsigned int)civil.minute;
        time->second = (unsigned int)civil.second;
        time->time_type = MYSQL_TIMESTAMP_DATETIME;
        /* DATETIME keeps whole seconds: drop microseconds rather than let
         * the server round 23:59:59.6 into the next day. */
        sink->time_pointers[rows] = time;
        sink->uids[rows] = record->uid;
        sink->uid_indicators[rows] =
            record->uid_is_null ? STMT_INDICATOR_NULL : STMT_INDICATOR_NONE;
        const char *type_name = event_type_name(record->event_type);
        sink->type_names[rows] = type_name != NULL ? type_name : "";
        sink->type_lengths[rows] = type_name != NULL ? (unsigned long)strlen(type_name) : 0;
        sink->type_indicators[rows] = type_name != NULL ? STMT_INDICATOR_NONE : STMT_INDICATOR_NULL;
        sink->json_pointers[rows] = record->json;
        sink->json_lengths[rows] = (unsigned long)record->json_length;
        sink->json_indicators[rows] =
            event_record_data_is_null(record) ? STMT_INDICATOR_NULL : STMT_INDICATOR_NONE;
        sink->row_index[rows] = i;
        rows++;
    }
    return rows;
}

/* Execute the prepared INSERT for column rows [first, first + rows). */
static mysql_sink_status
execute_bulk(mysql_sink *sink, size_t first, size_t rows)
{
    MYSQL_BIND bind[4];
    memset(bind, 0, sizeof(bind));
    bind[0].buffer_type = MYSQL_TYPE_DATETIME;
    bind[0].buffer = &sink->time_pointers[first];
    bind[1].buffer_type = MYSQL_TYPE_LONG;
    bind[1].buffer = &sink->uids[first];
    bind[1].u.indicator = &sink->uid_indicators[first];
    bind[2].buffer_type = MYSQL_TYPE_STRING;
    bind[2].buffer = (void *)&sink->type_names[first];
    bind[2].length = &sink->type_lengths[first];
    bind[2].u.indicator = &sink->type_indicators[first];
    bind[3].buffer_type = MYSQL_TYPE_STRING;
    bind[3].buffer = (void *)&sink->json_pointers[first];
    bind[3].length = &sink->json_lengths[first];
    bind[3].u.indicator = &sink->json_indicators[first];
    unsigned int array_size = (unsigned int)rows;
    if (mysql_stmt_attr_set(sink->insert_stmt, STMT_ATTR_ARRAY_SIZE, &array_size) ||
        mysql_stmt_bind_param(sink->insert_stmt, bind) ||
        mysql_stmt_execute(sink->insert_stmt)) {
        return mysql_sink_statement_failure(sink);
    }
    return MYSQL_SINK_OK;
}

/* Bytes per statement: under max_allowed_packet, at most STATEMENT_SIZE_CAP
 * (one larger row still goes alone). */
static size_t
statement_size_limit(const mysql_sink *sink)
{
    size_t limit = row_size_limit(sink);
    return limit < STATEMENT_SIZE_CAP ? limit : STATEMENT_SIZE_CAP;
}

/* All filled rows, in executions that each fit in one packet. */
mysql_sink_status
mysql_sink_insert_bulk(mysql_sink *sink, size_t rows)
{
    size_t limit = statement_size_limit(sink);
    size_t first = 0;
    while (first < rows) {
        size_t bytes = 0, end = first;
        while (end < rows && end - first < UINT32_MAX) {
            size_t footprint = sink->json_lengths[end] + ROW_OVERHEAD;
            if (end > first && bytes + footprint > limit) {
                break;
            }
            bytes += footprint;
            end++;
        }
        mysql_sink_status status = execute_bulk(sink, first, end - first);
        if (status != MYSQL_SINK_OK) {
            return status;
        }
        first = end;
    }
    return MYSQL_SINK_OK;
}

/* -------------------------------------------------------------- text path */

static int
append_text(mysql_sink *sink, const char *text, size_t length)
{
    if (length > SIZE_MAX - sink->text_length ||
        ensure_text_capacity(sink, sink->text_length + length) < 0) {
        return -1;
    }
    memcpy(sink->text + sink->text_length, text, length);
    sink->text_length += length;
    return 0;
}

static int
start_insert_text(mysql_sink *sink)
{
    static const char columns[] = " " INSERT_COLUMNS " VALUES ";
    sink->text_length = 0;
    if (append_text(sink, "INSERT INTO ", 12) < 0 ||
        append_text(sink, sink->table_quoted, strlen(sink->table_quoted)) < 0 ||
        append_text(sink, columns, sizeof(columns) - 1) < 0) {
        return -1;
    }
    return 0;
}

/* Append "(...)" for `record`, with `separator` before it. */
static int
append_row_text(mysql_sink *sink, const event_record *record, bool separator)
{
    size_t json_room;
    if (record->json_length > (SIZE_MAX - 128) / 2) {
        return -1;
    }
    json_room = 2 * record->json_length + 1;
    if (ensure_text_capacity(sink, sink->text_length + json_room + 128) < 0) {
        return -1;
    }
    char created_at[20];
    event_time_format_sql(record->created_at_us, created_at);
    const char *type_name = event_type_name(record->event_type);
    char *out = sink->text + sink->text_length;
    int prefix;
    if (record->uid_is_null) {
        prefix = sprintf(out, "%s('%s',NULL,", separator ? "," : "", created_at);
    }
    else {
        prefix = sprintf(out, "%s('%s',%ld,", separator ? "," : "", created_at, (long)record->uid);
    }
    out += prefix;
    if (type_name != NULL) {
        out += sprintf(out, "'%s',", type_name);
    }
    else {
        out += sprintf(out, "NULL,");
    }
    if (event_record_data_is_null(record)) {
        memcpy(out, "NULL)", 5);
        sink->text_length = (size_t)(out + 5 - sink->text);
        return 0;
    }
    *out++ = '\'';
    unsigned long escaped = mysql_real_escape_string(sink->mysql, out, record->json,
                                                     (unsigned long)record->json_length);
    if (escaped == (unsigned long)-1) {
        return -1;
    }
    out += escaped;
    *out++ = '\'';
    *out++ = ')';
    sink->text_length = (size_t)(out - sink->text);
    return 0;
}

/* All not-rejected records in multi-row INSERTs under max_allowed_packet. */
mysql_sink_status
mysql_sink_insert_text(mysql_sink *sink, event_record *const *records, size_t count)
{
    size_t limit = statement_size_limit(sink);
    size_t rows_in_statement = 0;
    if (start_insert_text(sink) < 0) {
        return mysql_sink_out_of_memory(sink);
    }
    for (size_t i = 0; i < count; i++) {
        if (sink->rejected[i]) {
            continue;
        }
        size_t before = sink->text_length;
        if (append_row_text(sink, records[i], rows_in_statement > 0) < 0) {
            return mysql_sink_out_of_memory(sink);
        }
        if (rows_in_statement > 0 && sink->text_length > limit) {
            /* Send what fits, then start the next statement with this row. */
            mysql_sink_status status = mysql_sink_run(sink, sink->text, before);
            if (status != MYSQL_SINK_OK) {
                return status;
            }
            rows_in_statement = 0;
            if (start_insert_text(sink) < 0 || append_row_text(sink, records[i], false) < 0) {
                return mysql_sink_out_of_memory(sink);
            }
        }
        rows_in_statement++;
    }
    if (rows_in_statement > 0) {
        return mysql_sink_run(sink, sink->text, sink->text_length);
    }
    return MYSQL_SINK_OK;
}

/* One record alone, for the row-by-row retry. */
mysql_sink_status
mysql_sink_insert_one(mysql_sink *sink, event_record *const *records, size_t record_number,
                      size_t column_row)
{
    if (mysql_sink_uses_bulk_binding(sink)) {
        return execute_bulk(sink, column_row, 1);
    }
    if (start_insert_text(sink) < 0 || append_row_text(sink, records[record_number], false) < 0) {
        return mysql_sink_out_of_memory(sink);
    }
    return mysql_sink_run(sink, sink->text, sink->text_length);
}
