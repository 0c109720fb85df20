/* mysql_markers: the marker table `<table>_qbel_batches` (mysql_sink.h says
 * why it exists and what happens without it).
 *
 * Owns: its DDL; the look-up (on each connect and housekeeping pass); a
 * batch's marker row; the read-back after an ambiguous commit
 * (batch_committed); and the pruning of old rows, by one process per server
 * at a time (GET_LOCK) in small transactions.
 */
#include "mysql_sink_internal.h"

#include <stdio.h>
#include <string.h>

/* Old marker rows deleted this many per transaction (a small write set). */
#define PRUNE_CHUNK_ROWS 1000
#define PRUNE_MAX_CHUNKS 100

int
mysql_sink_marker_table_ddl(const char *table, char *out, size_t size)
{
    if (table == NULL || !mysql_sink_table_name_is_valid(table)) {
        return -1;
    }
    /* SQLAlchemy's name for Column(index=True) when it fits in 64 chars */
    char index_name[80];
    int index_length = snprintf(index_name, sizeof(index_name),
                                "ix_%s" MARKER_SUFFIX "_committed_at", table);
    if (index_length < 0 || index_length > 64) {
        snprintf(index_name, sizeof(index_name), "ix" MARKER_SUFFIX "_committed_at");
    }
    return snprintf(out, size,
                    "CREATE TABLE IF NOT EXISTS `%s" MARKER_SUFFIX "` ("
                    "batch_id VARCHAR(64) NOT NULL, "
                    "committed_at DATETIME NOT NULL, "
                    "PRIMARY KEY (batch_id), "
                    "INDEX %s (committed_at)"
                    ") ENGINE=InnoDB DEFAULT CHARSET=ascii COLLATE=ascii_bin",
                    table, index_name);
}

/* Is an error about the marker table being absent (or, with table-level
 * grants, invisible to our user)?  Then the sink writes without it. */
static bool
is_missing_marker_error(unsigned int error_number)
{
    return error_number == ER_NO_SUCH_TABLE || error_number == ER_TABLEACCESS_DENIED_ERROR;
}

/* Run a statement on the marker table.  1 done, 0 the table is missing
 * (marker_state becomes MISSING; no error recorded), -1 failed (status in
 * *status_out). */
int
mysql_sink_run_on_marker_table(mysql_sink *sink, const char *sql, size_t length,
                               mysql_sink_status *status_out)
{
    if (mysql_real_query(sink->mysql, sql, (unsigned long)length) == 0) {
        return 1;
    }
    if (is_missing_marker_error(mysql_errno(sink->mysql))) {
        sink->marker_state = MYSQL_SINK_MARKER_MISSING;
        return 0;
    }
    *status_out = mysql_sink_connection_failure(sink);
    return -1;
}

/* Look the marker table up: PRESENT, or MISSING (no error).  At connect
 * time autocommit is still on, so the SELECT leaves no transaction open;
 * later callers roll back after it. */
mysql_sink_status
mysql_sink_look_up_marker_table(mysql_sink *sink)
{
    char sql[sizeof(sink->marker_quoted) + 32];
    int length = snprintf(sql, sizeof(sql), "SELECT 1 FROM %s LIMIT 0", sink->marker_quoted);
    mysql_sink_status status = MYSQL_SINK_OK;
    int found = mysql_sink_run_on_marker_table(sink, sql, (size_t)length, &status);
    if (found < 0) {
        return status;
    }
    if (found == 1) {
        MYSQL_RES *result = mysql_store_result(sink->mysql);
        if (result == NULL && mysql_field_count(sink->mysql) != 0) {
            return mysql_sink_connection_failure(sink);
        }
        mysql_free_result(result);
        sink->marker_state = MYSQL_SINK_MARKER_PRESENT;
    }
    return MYSQL_SINK_OK;
}

/* 1 inserted (or written without a marker: the table is missing), 0 the
 * marker already exists (the batch committed before), -1 error (status in
 * *status_out). */
int
mysql_sink_insert_marker(mysql_sink *sink, const char *batch_id, mysql_sink_status *status_out)
{
    char escaped[2 * MYSQL_SINK_BATCH_ID_MAX + 1];
    char sql[sizeof(escaped) + sizeof(sink->marker_quoted) + 96];
    size_t id_length = strlen(batch_id);
    if (id_length == 0 || id_length > MYSQL_SINK_BATCH_ID_MAX) {
        mysql_sink_set_error(sink, 0, "HY000", "invalid batch id (1 to 64 characters)");
        *status_out = MYSQL_SINK_SERVER_ERROR;
        return -1;
    }
    if (sink->marker_state == MYSQL_SINK_MARKER_MISSING) {
        return 1; /* at-least-once until a reconnect finds the table */
    }
    mysql_real_escape_string(sink->mysql, escaped, batch_id, (unsigned long)id_length);
    int length = snprintf(sql, sizeof(sql),
                          "INSERT INTO %s (batch_id, committed_at) VALUES ('%s', UTC_TIMESTAMP())",
                          sink->marker_quoted, escaped);
    if (mysql_real_query(sink->mysql, sql, (unsigned long)length) != 0) {
        unsigned int error_number = mysql_errno(sink->mysql);
        if (error_number == ER_DUP_ENTRY) {
            return 0;
        }
        if (is_missing_marker_error(error_number)) {
            /* dropped since we connected: the statement failed alone, the
             * transaction goes on without a marker */
            sink->marker_state = MYSQL_SINK_MARKER_MISSING;
            return 1;
        }
        *status_out = mysql_sink_connection_failure(sink);
        return -1;
    }
    sink->marker_state = MYSQL_SINK_MARKER_PRESENT;
    return 1;
}

/* The SELECT of `batch_id`'s marker and its parts' ("<id>/<first>-<last>":
 * between "<id>/" and "<id>0" in the binary collation). */
int
mysql_sink_format_marker_query(mysql_sink *sink, const char *batch_id, const char *suffix,
                               char *sql, size_t size)
{
    char escaped[2 * MYSQL_SINK_BATCH_ID_MAX + 1];
    mysql_real_escape_string(sink->mysql, escaped, batch_id, (unsigned long)strlen(batch_id));
    return snprintf(sql, size,
                    "SELECT batch_id FROM %s WHERE batch_id = '%s' OR "
                    "(batch_id >= '%s/' AND batch_id < '%s0')%s",
                    sink->marker_quoted, escaped, escaped, escaped, suffix);
}

/* ----------------------------------------------------------- housekeeping */

/* Before a locking read: end any open transaction (SET TRANSACTION is
 * refused inside one) and make the next one READ COMMITTED.  A plain read
 * needs neither: it follows a COMMIT or the previous look-up's rollback, so
 * it starts a fresh snapshot anyway.  0, or -1 with *status_out set. */
static int
begin_locking_read(mysql_sink *sink, mysql_sink_status *status_out)
{
    static const char read_committed[] = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED";
    if (mysql_rollback(sink->mysql) != 0 ||
        mysql_real_query(sink->mysql, read_committed, sizeof(read_committed) - 1) != 0) {
        *status_out = mysql_sink_connection_failure(sink);
        return -1;
    }
    return 0;
}

/* Is `batch_id`'s marker (or one of its parts') there?  `locking`: a
 * locking read at READ COMMITTED (see mysql_sink_batch_committed); else a
 * plain read in a fresh snapshot. */
static int
look_up_marker(mysql_sink *sink, const char *batch_id, bool locking,
               mysql_sink_status *status_out)
{
    mysql_sink_status unused;
    if (status_out == NULL) {
        status_out = &unused;
    }
    *status_out = mysql_sink_connect(sink);
    if (*status_out != MYSQL_SINK_OK) {
        return -1;
    }
    size_t id_length = strlen(batch_id);
    if (id_length > MYSQL_SINK_BATCH_ID_MAX) {
        return 0; /* such a marker is never written */
    }
    if (sink->marker_state == MYSQL_SINK_MARKER_MISSING) {
        return 0; /* nothing can tell: write it again (at-least-once) */
    }
    char sql[6 * MYSQL_SINK_BATCH_ID_MAX + sizeof(sink->marker_quoted) + 128];
    /* Markers of parts mean the batch was being written in parts: the next
     * write of it goes the same way and skips them. */
    int length = mysql_sink_format_marker_query(sink, batch_id, locking ? " LOCK IN SHARE MODE" : "",
                                                sql, sizeof(sql));
    if (locking && begin_locking_read(sink, status_out) < 0) {
        return -1;
    }
    int ran = mysql_sink_run_on_marker_table(sink, sql, (size_t)length, status_out);
    if (ran < 0) {
        return -1;
    }
    int found = 0;
    if (ran == 1) {
        MYSQL_RES *result = mysql_store_result(sink->mysql);
        if (result == NULL) {
            *status_out = mysql_sink_connection_failure(sink);
            return -1;
        }
        MYSQL_ROW row;
        bool parts = false;
        while ((row = mysql_fetch_row(result)) != NULL) {
            if (row[0] != NULL && strcmp(row[0], batch_id) == 0) {
                found = 1;
            }
            else {
                parts = true;
            }
        }
        mysql_free_result(result);
        if (!found && parts && strcmp(sink->split_batch_id, batch_id) != 0) {
            snprintf(sink->split_batch_id, sizeof(sink->split_batch_id), "%s", batch_id);
            sink->part_rejection_count = 0;
        }
    }
    /* End the read's transaction so no later read sees this snapshot. */
    if (mysql_rollback(sink->mysql) != 0) {
        *status_out = mysql_sink_connection_failure(sink);
        return -1;
    }
    *status_out = MYSQL_SINK_OK;
    return found;
}

/* A locking read waits for the old session's transaction if the server is
 * still finishing it; a plain read could say "not committed" just before
 * that COMMIT lands.  At READ COMMITTED it locks only the marker rows it
 * finds, no gaps: at REPEATABLE READ its next-key locks covered the gap
 * after the batch id, and on Galera a marker another node committed into
 * that gap, applied here, had to brute-force abort the read.  On Galera,
 * wsrep_sync_wait makes it wait for what other nodes committed too. */
int
mysql_sink_batch_committed(mysql_sink *sink, const char *batch_id, mysql_sink_status *status_out)
{
    return look_up_marker(sink, batch_id, true, status_out);
}

int
mysql_sink_marker_committed(mysql_sink *sink, const char *batch_id, mysql_sink_status *status_out)
{
    return look_up_marker(sink, batch_id, false, status_out);
}

/* The marker table's prune lock (GET_LOCK, per server: one process of a
 * node prunes at a time, the others skip).  1 taken, 0 held by another
 * (or the function refused), -1 connection error (status in *status_out). */
static int
take_prune_lock(mysql_sink *sink, mysql_sink_status *status_out)
{
    char sql[sizeof(sink->marker_quoted) + 96];
    int length = snprintf(sql, sizeof(sql), "SELECT GET_LOCK('qbel_prune:%s', 0)",
                          sink->marker_quoted);
    if (mysql_real_query(sink->mysql, sql, (unsigned long)length) != 0) {
        if (mysql_sink_is_connection_error(mysql_errno(sink->mysql))) {
            *status_out = mysql_sink_connection_failure(sink);
            return -1;
        }
        mysql_sink_rollback_quietly(sink);
        return 0;
    }
    MYSQL_RES *result = mysql_store_result(sink->mysql);
    if (result == NULL) {
        *status_out = mysql_sink_connection_failure(sink);
        return -1;
    }
    MYSQL_ROW row = mysql_fetch_row(result);
    int taken = row != NULL && row[0] != NULL && strcmp(row[0], "1") == 0;
    mysql_free_result(result);
    return taken;
}

static void
release_prune_lock(mysql_sink *sink)
{
    char sql[sizeof(sink->marker_quoted) + 96];
    int length = snprintf(sql, sizeof(sql), "DO RELEASE_LOCK('qbel_prune:%s')",
                          sink->marker_quoted);
    if (sink->mysql != NULL && mysql_real_query(sink->mysql, sql, (unsigned long)length) != 0 &&
        mysql_sink_is_connection_error(mysql_errno(sink->mysql))) {
        mysql_sink_close_connection(sink); /* the server drops the lock with the session */
        sink->failover_pending = true;
    }
}

/* Delete marker rows older than `days` in small transactions (small write
 * sets, under wsrep_max_ws_rows); on Galera after a random pause of up to a
 * second.  Should another node delete them first anyway, Galera refuses
 * ours (ER_LOCK_DEADLOCK): that is the work done, not an error, and
 * last_error is left alone.
 *
 * Each DELETE runs at READ COMMITTED: at the default REPEATABLE READ a
 * range DELETE (or the full scan the optimizer picks on a small table)
 * takes gap locks over the marker table, and the markers other nodes
 * commit meanwhile, applied here, must then brute-force abort it. */
static mysql_sink_status
delete_old_markers(mysql_sink *sink, int days)
{
    unsigned long long chunk = PRUNE_CHUNK_ROWS;
    if (sink->max_ws_rows > 0 && sink->max_ws_rows < chunk) {
        chunk = sink->max_ws_rows;
    }
    char sql[sizeof(sink->marker_quoted) + 160];
    int length = snprintf(sql, sizeof(sql),
                          "DELETE FROM %s WHERE committed_at < UTC_TIMESTAMP() - INTERVAL %d DAY "
                          "LIMIT %llu",
                          sink->marker_quoted, days < 0 ? 0 : days, chunk);
    if (sink->galera) {
        mysql_sink_sleep_ms(mysql_sink_random_below(sink, 1000));
    }
    static const char read_committed[] = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED";
    mysql_sink_rollback_quietly(sink); /* SET TRANSACTION is refused inside a transaction */
    if (sink->mysql == NULL) {
        return MYSQL_SINK_CONNECTION_ERROR;
    }
    for (int round = 0; round < PRUNE_MAX_CHUNKS; round++) {
        if (mysql_real_query(sink->mysql, read_committed, sizeof(read_committed) - 1) != 0 ||
            mysql_real_query(sink->mysql, sql, (unsigned long)length) != 0) {
            unsigned int error_number = mysql_errno(sink->mysql);
            if (is_missing_marker_error(error_number) || error_number == ER_LOCK_DEADLOCK ||
                error_number == ER_LOCK_WAIT_TIMEOUT) {
                if (is_missing_marker_error(error_number)) {
                    sink->marker_state = MYSQL_SINK_MARKER_MISSING;
                }
                mysql_sink_rollback_quietly(sink);
                return sink->mysql != NULL ? MYSQL_SINK_OK : MYSQL_SINK_CONNECTION_ERROR;
            }
            mysql_sink_status status = mysql_sink_connection_failure(sink);
            mysql_sink_rollback_quietly(sink);
            return status;
        }
        my_ulonglong deleted = mysql_affected_rows(sink->mysql);
        if (mysql_commit(sink->mysql) != 0) {
            unsigned int error_number = mysql_errno(sink->mysql);
            if (error_number == ER_LOCK_DEADLOCK) { /* certification: another node pruned */
                mysql_sink_rollback_quietly(sink);
                return sink->mysql != NULL ? MYSQL_SINK_OK : MYSQL_SINK_CONNECTION_ERROR;
            }
            mysql_sink_status status = mysql_sink_connection_failure(sink);
            mysql_sink_rollback_quietly(sink);
            return status;
        }
        if (deleted < chunk) {
            break;
        }
    }
    return MYSQL_SINK_OK;
}

mysql_sink_status
mysql_sink_prune_markers(mysql_sink *sink, int days)
{
    mysql_sink_status status = mysql_sink_connect(sink);
    if (status != MYSQL_SINK_OK) {
        return status;
    }
    if (sink->marker_state == MYSQL_SINK_MARKER_MISSING) {
        /* housekeeping is also when a long-lived connection looks again:
         * an operator who creates the table gets exactly-once back within
         * the prune interval, not only at the next reconnect */
        status = mysql_sink_look_up_marker_table(sink);
        mysql_sink_rollback_quietly(sink); /* the look-up's transaction (autocommit is off) */
        if (status != MYSQL_SINK_OK || sink->mysql == NULL) {
            return status != MYSQL_SINK_OK ? status : MYSQL_SINK_CONNECTION_ERROR;
        }
        if (sink->marker_state == MYSQL_SINK_MARKER_MISSING) {
            return MYSQL_SINK_OK;
        }
    }
    if (sink->galera) {
        int ours = mysql_sink_galera_prune_is_ours(sink, days, &status);
        if (ours <= 0) {
            return ours == 0 ? MYSQL_SINK_OK : status;
        }
    }
    int lock = take_prune_lock(sink, &status);
    if (lock <= 0) {
        return lock == 0 ? MYSQL_SINK_OK : status;
    }
    status = delete_old_markers(sink, days);
    release_prune_lock(sink);
    return status;
}
