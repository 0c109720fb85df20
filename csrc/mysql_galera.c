/* mysql_galera: what a Galera cluster asks of the MySQL sink (see
 * mysql_sink_internal.h).
 *
 * Galera (@@wsrep_on, read at connect): marker reads wait for the cluster
 * (wsrep_sync_wait); a certification failure (ER_LOCK_DEADLOCK) is retried
 * at once with jitter; a batch larger than @@wsrep_max_ws_rows or
 * @@wsrep_max_ws_size, or refused with ER_ERROR_DURING_COMMIT, is written
 * in parts, each with the marker "<batch id>/<first>-<last>", so a retry
 * skips the parts that committed.  A COMMIT's OK is checked against its
 * marker, and one node of the cluster prunes the markers.
 *
 * Owns: the split batch's state (split_batch_id, split_rows, part_done,
 * part_rejections) and the list of rows reported during one write_batch
 * call (`reported`), so that a retried transaction reports a row once.
 */
#include "mysql_sink_internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Certification failures (ER_LOCK_DEADLOCK) retried at once, with a random
 * pause of up to CERTIFICATION_JITTER_MS << attempt between tries. */
#define CERTIFICATION_RETRIES 8
#define CERTIFICATION_JITTER_MS 4
/* Write sets keep this share of @@wsrep_max_ws_size for keys and headers. */
#define WS_SIZE_SHARE 2

/* On a Galera node (@@wsrep_on): its write-set limits, and marker reads
 * that wait until this node has applied what the cluster committed before
 * (wsrep_sync_wait=1: reads only; a session setting, nothing replicated).
 * MySQL has no wsrep variables: not Galera. */
mysql_sink_status
mysql_sink_read_galera_settings(mysql_sink *sink)
{
    static const char query[] = "SELECT @@wsrep_on, @@wsrep_max_ws_rows, @@wsrep_max_ws_size";
    sink->galera = false;
    sink->max_ws_rows = sink->max_ws_size = 0;
    if (mysql_real_query(sink->mysql, query, sizeof(query) - 1) != 0) {
        if (mysql_errno(sink->mysql) == ER_UNKNOWN_SYSTEM_VARIABLE) {
            return MYSQL_SINK_OK;
        }
        return mysql_sink_connection_failure(sink);
    }
    MYSQL_RES *result = mysql_store_result(sink->mysql);
    if (result == NULL) {
        return mysql_sink_connection_failure(sink);
    }
    MYSQL_ROW row = mysql_fetch_row(result);
    if (row != NULL && mysql_num_fields(result) == 3 && row[0] != NULL) {
        sink->galera = strcmp(row[0], "1") == 0 || strcmp(row[0], "ON") == 0;
        sink->max_ws_rows = row[1] != NULL ? strtoull(row[1], NULL, 10) : 0;
        sink->max_ws_size = row[2] != NULL ? strtoull(row[2], NULL, 10) : 0;
    }
    mysql_free_result(result);
    if (!sink->galera) {
        sink->max_ws_rows = sink->max_ws_size = 0;
        return MYSQL_SINK_OK;
    }
    return mysql_sink_run_string(sink, "SET SESSION wsrep_sync_wait = 1");
}

/* On Galera, after COMMIT said OK: is the marker there?  Under conflicts a
 * transaction aborted by a replicated write (brute-force abort) has been
 * seen to answer COMMIT with OK and leave nothing behind (MariaDB 10.11,
 * galera-4 26.4): then it is reported as the certification failure it was
 * (ER_LOCK_DEADLOCK) and written again; nothing committed, nothing
 * doubles.  Elsewhere, or without the marker table, OK is OK. */
mysql_sink_status
mysql_sink_check_galera_commit(mysql_sink *sink, const char *batch_id)
{
    if (!sink->galera || sink->marker_state != MYSQL_SINK_MARKER_PRESENT) {
        return MYSQL_SINK_OK;
    }
    mysql_sink_status status = MYSQL_SINK_OK;
    int committed = mysql_sink_marker_committed(sink, batch_id, &status);
    if (committed < 0) {
        return status; /* a connection error: the writer's ambiguous-commit check decides */
    }
    if (committed == 0) {
        mysql_sink_set_error(sink, ER_LOCK_DEADLOCK, "40001",
                             "COMMIT reported success but the cluster rolled the transaction back "
                             "(Galera brute-force abort); writing it again");
        return MYSQL_SINK_SERVER_ERROR;
    }
    return MYSQL_SINK_OK;
}

/* ------------------------------------------------- retries and parts */

/* A uniformly random number in [0, bound). */
unsigned int
mysql_sink_random_below(mysql_sink *sink, unsigned int bound)
{
    return bound > 1 ? (unsigned int)rand_r(&sink->random_state) % bound : 0;
}

void
mysql_sink_sleep_ms(unsigned int milliseconds)
{
    struct timespec pause = {milliseconds / 1000, (long)(milliseconds % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
    }
}

static void
forward_rejection(void *argument, const mysql_sink_rejection *rejection)
{
    rejection_forward *forward = argument;
    mysql_sink *sink = forward->sink;
    for (size_t i = 0; i < sink->reported_count; i++) {
        if (sink->reported[i] == rejection->record) {
            return;
        }
    }
    if (sink->reported_count == sink->reported_capacity) {
        size_t capacity = sink->reported_capacity ? sink->reported_capacity * 2 : 16;
        if (mysql_sink_grow_array(&sink->reported, capacity, sizeof(*sink->reported)) < 0) {
            /* forwarding twice beats not forwarding: the caller counts rows */
            forward->on_rejected(forward->context, rejection);
            return;
        }
        sink->reported_capacity = capacity;
    }
    sink->reported[sink->reported_count++] = rejection->record;
    forward->on_rejected(forward->context, rejection);
}

/* mysql_sink_write_transaction, again at once (after a random pause of a few
 * milliseconds) while Galera's certification refuses it: another node
 * committed a conflicting write first, and nothing of ours committed.  Not
 * the connection backoff: the cluster is healthy. */
mysql_sink_status
mysql_sink_write_certified(mysql_sink *sink, const char *batch_id, event_record *const *records,
                           size_t count, rejection_forward *forward, size_t *rejected_count_out)
{
    for (unsigned int attempt = 0;; attempt++) {
        mysql_sink_status status = mysql_sink_write_transaction(
            sink, batch_id, records, count, forward->on_rejected != NULL ? forward_rejection : NULL,
            forward, rejected_count_out);
        if (status != MYSQL_SINK_SERVER_ERROR || sink->error.code != ER_LOCK_DEADLOCK ||
            attempt + 1 >= CERTIFICATION_RETRIES) {
            return status;
        }
        mysql_sink_sleep_ms(1 + mysql_sink_random_below(sink, CERTIFICATION_JITTER_MS << attempt));
    }
}

/* Rows per part: under @@wsrep_max_ws_rows with the marker row, and under
 * what a refused commit taught (split_rows). */
static size_t
part_row_limit(const mysql_sink *sink)
{
    size_t limit = SIZE_MAX;
    if (sink->max_ws_rows > 1 && sink->max_ws_rows - 1 < (unsigned long long)limit) {
        limit = (size_t)(sink->max_ws_rows - 1);
    }
    if (sink->split_rows > 0 && sink->split_rows < limit) {
        limit = sink->split_rows;
    }
    return limit;
}

static size_t
part_byte_limit(const mysql_sink *sink)
{
    unsigned long long limit = sink->max_ws_size / WS_SIZE_SHARE;
    return sink->max_ws_size == 0 || limit > SIZE_MAX ? SIZE_MAX : (size_t)limit;
}

/* The end of the part that starts at `first`: within the limits, and
 * before the next record of a part that committed already. */
static size_t
part_end(const mysql_sink *sink, event_record *const *records, size_t count, size_t first)
{
    size_t rows = part_row_limit(sink), byte_limit = part_byte_limit(sink), bytes = 0;
    size_t end = first;
    while (end < count && end - first < rows && !sink->part_done[end]) {
        size_t footprint = records[end]->json_length + ROW_OVERHEAD;
        if (end > first && footprint > byte_limit - bytes) {
            break;
        }
        bytes += footprint < byte_limit - bytes ? footprint : byte_limit - bytes;
        end++;
    }
    return end;
}

/* Does the batch fit in one write set? */
bool
mysql_sink_fits_one_transaction(const mysql_sink *sink, event_record *const *records, size_t count)
{
    if (count > part_row_limit(sink)) {
        return false;
    }
    size_t byte_limit = part_byte_limit(sink), bytes = 0;
    for (size_t i = 0; i < count && byte_limit != SIZE_MAX; i++) {
        bytes += records[i]->json_length + ROW_OVERHEAD;
        if (bytes > byte_limit) {
            return false;
        }
    }
    return true;
}

/* Read which parts of `batch_id` committed: marks their records in
 * part_done.  1 the whole batch committed (its own marker), 0 not (or only
 * parts), -1 error (status in *status_out).  Ends the read's transaction. */
static int
read_committed_parts(mysql_sink *sink, const char *batch_id, size_t count,
                     mysql_sink_status *status_out)
{
    char sql[6 * MYSQL_SINK_BATCH_ID_MAX + sizeof(sink->marker_quoted) + 128];
    int length =
        mysql_sink_format_marker_query(sink, batch_id, " LOCK IN SHARE MODE", sql, sizeof(sql));
    int ran = mysql_sink_run_on_marker_table(sink, sql, (size_t)length, status_out);
    if (ran <= 0) {
        if (ran == 0) {
            mysql_sink_rollback_quietly(sink);
        }
        return ran;
    }
    MYSQL_RES *result = mysql_store_result(sink->mysql);
    if (result == NULL) {
        *status_out = mysql_sink_connection_failure(sink);
        return -1;
    }
    size_t id_length = strlen(batch_id);
    int whole = 0;
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(result)) != NULL) {
        if (row[0] == NULL) {
            continue;
        }
        if (strcmp(row[0], batch_id) == 0) {
            whole = 1;
            continue;
        }
        size_t first, last;
        char end;
        if (strncmp(row[0], batch_id, id_length) == 0 && row[0][id_length] == '/' &&
            sscanf(row[0] + id_length + 1, "%zu-%zu%c", &first, &last, &end) == 2 &&
            first <= last && last < count) {
            memset(sink->part_done + first, 1, last - first + 1);
        }
    }
    mysql_free_result(result);
    if (mysql_rollback(sink->mysql) != 0) {
        *status_out = mysql_sink_connection_failure(sink);
        return -1;
    }
    return whole;
}

/* Keep the rejections of a part that committed (indices in the batch), to
 * report them again if the batch is retried. */
static int
keep_part_rejections(mysql_sink *sink, event_record *const *records, size_t first, size_t rows)
{
    for (size_t r = 0; r < sink->rejection_count; r++) {
        size_t index = first;
        while (index < first + rows && records[index] != sink->rejections[r].record) {
            index++;
        }
        if (sink->part_rejection_count == sink->part_rejection_capacity) {
            size_t capacity = sink->part_rejection_capacity ? sink->part_rejection_capacity * 2 : 8;
            if (mysql_sink_grow_array(&sink->part_rejections, capacity,
                                      sizeof(struct part_rejection)) < 0) {
                return -1;
            }
            sink->part_rejection_capacity = capacity;
        }
        struct part_rejection *kept = &sink->part_rejections[sink->part_rejection_count++];
        kept->index = index;
        memcpy(kept->error, sink->rejections[r].error, sizeof(kept->error));
    }
    return 0;
}

/* A batch too large for one write set, in parts of its own markers.  A
 * retry of the same batch (after any error, or found by batch_committed
 * in another process) reads which parts committed and writes the others,
 * reporting the rejections of the committed ones again; a part refused with
 * ER_ERROR_DURING_COMMIT is halved, down to one row. */
mysql_sink_status
mysql_sink_write_in_parts(mysql_sink *sink, const char *batch_id, event_record *const *records,
                          size_t count, rejection_forward *forward, size_t *rejected_count_out)
{
    size_t rejected = 0;
    mysql_sink_status status = MYSQL_SINK_OK;
    if (strcmp(sink->split_batch_id, batch_id) != 0) {
        snprintf(sink->split_batch_id, sizeof(sink->split_batch_id), "%s", batch_id);
        sink->part_rejection_count = 0;
    }
    if (count > sink->part_done_capacity) {
        if (mysql_sink_grow_array(&sink->part_done, count, 1) < 0) {
            return mysql_sink_out_of_memory(sink);
        }
        sink->part_done_capacity = count;
    }
    memset(sink->part_done, 0, count);
    int whole = read_committed_parts(sink, batch_id, count, &status);
    if (whole != 0) {
        sink->split_batch_id[0] = '\0';
        return whole < 0 ? status : MYSQL_SINK_OK;
    }
    for (size_t r = 0; r < sink->part_rejection_count; r++) {
        struct part_rejection *kept = &sink->part_rejections[r];
        if (kept->index < count && sink->part_done[kept->index]) {
            mysql_sink_rejection again = {.record = records[kept->index]};
            memcpy(again.error, kept->error, sizeof(again.error));
            if (forward->on_rejected != NULL) {
                forward_rejection(forward, &again);
            }
            rejected++;
        }
    }
    size_t first = 0;
    while (first < count) {
        if (sink->part_done[first]) {
            first++;
            continue;
        }
        size_t end = part_end(sink, records, count, first);
        char part_id[SINK_BATCH_ID_MAX + 1];
        int length = snprintf(part_id, sizeof(part_id), "%s/%zu-%zu", batch_id, first, end - 1);
        if (length < 0 || (size_t)length >= sizeof(part_id)) {
            mysql_sink_set_error(sink, ER_ERROR_DURING_COMMIT, "HY000",
                                 "the batch is larger than the cluster's write-set limit and "
                                 "its id is too long to name its parts");
            return MYSQL_SINK_SERVER_ERROR;
        }
        size_t part_rejected = 0;
        status = mysql_sink_write_certified(sink, part_id, records + first, end - first, forward,
                                            &part_rejected);
        if (status == MYSQL_SINK_SERVER_ERROR && sink->error.code == ER_ERROR_DURING_COMMIT &&
            end - first > 1) {
            sink->split_rows = (end - first) / 2; /* smaller parts, at once */
            continue;
        }
        if (status != MYSQL_SINK_OK) {
            return status;
        }
        if (keep_part_rejections(sink, records, first, end - first) < 0) {
            return mysql_sink_out_of_memory(sink);
        }
        rejected += part_rejected;
        memset(sink->part_done + first, 1, end - first);
        first = end;
    }
    sink->split_batch_id[0] = '\0';
    sink->part_rejection_count = 0;
    if (rejected_count_out != NULL) {
        *rejected_count_out = rejected;
    }
    return MYSQL_SINK_OK;
}

/* 1 when the first row of `sql` (a read) is "1" or any row at all
 * (want_one false); 0 not; -1 error (status in *status_out).  Ends the
 * read's transaction. */
static int
read_flag(mysql_sink *sink, const char *sql, bool want_one, mysql_sink_status *status_out)
{
    if (mysql_real_query(sink->mysql, sql, (unsigned long)strlen(sql)) != 0) {
        *status_out = mysql_sink_connection_failure(sink);
        mysql_sink_rollback_quietly(sink);
        return -1;
    }
    MYSQL_RES *result = mysql_store_result(sink->mysql);
    if (result == NULL) {
        *status_out = mysql_sink_connection_failure(sink);
        return -1;
    }
    MYSQL_ROW row = mysql_fetch_row(result);
    int flag = row != NULL && (!want_one || (row[0] != NULL && strcmp(row[0], "1") == 0));
    mysql_free_result(result);
    mysql_sink_rollback_quietly(sink);
    if (sink->mysql == NULL) {
        *status_out = MYSQL_SINK_CONNECTION_ERROR;
        return -1;
    }
    return flag;
}

/* On Galera, is the marker cleanup ours to run?  On the node of
 * wsrep_local_index 0 only (one node of the cluster, so the DELETEs of two
 * nodes never conflict in certification), or on any node once rows a day
 * past the limit show that node 0 has nobody pruning.  Reads only.
 * 1 yes, 0 no, -1 error (status in *status_out). */
int
mysql_sink_galera_prune_is_ours(mysql_sink *sink, int days, mysql_sink_status *status_out)
{
    int first = read_flag(sink,
                          "SELECT VARIABLE_VALUE = '0' FROM information_schema.GLOBAL_STATUS "
                          "WHERE VARIABLE_NAME = 'WSREP_LOCAL_INDEX'",
                          true, status_out);
    if (first != 0) {
        return first;
    }
    char sql[sizeof(sink->marker_quoted) + 128];
    snprintf(sql, sizeof(sql),
             "SELECT 1 FROM %s WHERE committed_at < UTC_TIMESTAMP() - INTERVAL %d DAY LIMIT 1",
             sink->marker_quoted, (days < 0 ? 0 : days) + 1);
    return read_flag(sink, sql, false, status_out);
}
