/* mysql_sink_internal: what the MySQL sink's files share (mysql_sink.c,
 * mysql_connect.c, mysql_insert.c, mysql_markers.c, mysql_galera.c): the
 * sink's struct, the limits more than one file needs, and the functions
 * each file offers the others, each with its contract.  Nothing outside
 * the MySQL sink includes it.
 *
 * Threads: as every sink (sink.h), one thread at a time, never the GIL;
 * no function here takes a lock.  Statuses: MYSQL_SINK_OK, or the error
 * recorded in sink->error (mysql_sink_set_error) and classified
 * (mysql_sink_classify: a connection error has closed the connection).
 */
#ifndef QBEL_MYSQL_SINK_INTERNAL_H
#define QBEL_MYSQL_SINK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include "event_record.h"
#include "mysql_sink.h"
#include "sink.h"

/* MySQL's codes that MariaDB's mysqld_error.h does not define. */
#ifndef ER_CLIENT_INTERACTION_TIMEOUT
#define ER_CLIENT_INTERACTION_TIMEOUT 4031
#endif
#ifndef ER_INVALID_JSON_TEXT
#define ER_INVALID_JSON_TEXT 3140
#endif
#ifndef ER_INVALID_JSON_CHARSET
#define ER_INVALID_JSON_CHARSET 3144
#endif
#ifndef ER_CHECK_CONSTRAINT_VIOLATED
#define ER_CHECK_CONSTRAINT_VIOLATED 3819
#endif

/* MySQL's identifier limit is 64, and the marker table appends 13 chars. */
#define MARKER_SUFFIX "_qbel_batches"
#define TABLE_NAME_MAX MYSQL_SINK_TABLE_NAME_MAX
_Static_assert(MYSQL_SINK_TABLE_NAME_MAX + sizeof(MARKER_SUFFIX) - 1 == 64,
               "the marker table's name must fit MySQL's 64 characters");

/* The sink interface's status under the MySQL sink's older names (the
 * connection options code uses them). */
typedef sink_status mysql_sink_status;
#define MYSQL_SINK_OK SINK_OK
#define MYSQL_SINK_CONNECTION_ERROR SINK_CONNECTION_ERROR
#define MYSQL_SINK_SERVER_ERROR SINK_SERVER_ERROR
typedef sink_delivery mysql_sink_marker_state;
#define MYSQL_SINK_MARKER_UNKNOWN SINK_DELIVERY_UNKNOWN
#define MYSQL_SINK_MARKER_MISSING SINK_AT_LEAST_ONCE
#define MYSQL_SINK_MARKER_PRESENT SINK_EXACTLY_ONCE
typedef sink_rejection mysql_sink_rejection;
typedef struct mysql_sink mysql_sink;
/* Room for the statement header, the marker and per-packet overhead. */
#define PACKET_HEADROOM 4096
/* Per-row protocol overhead beyond the JSON in either path (quoted date,
 * uid, type, separators, length prefixes, indicators). */
#define ROW_OVERHEAD 96
#define INSERT_COLUMNS "(created_at, uid, event_type, event_data)"

struct mysql_sink {
    sink base; /* first: a mysql_sink is a sink */
    mysql_sink_config config;
    MYSQL *mysql;              /* NULL while disconnected */
    MYSQL_STMT *insert_stmt;   /* bulk path only; prepared per connection */
    bool bulk_enabled;         /* false: text INSERT even on MariaDB (test_text_insert) */
    bool server_supports_bulk; /* of the current connection */
    unsigned long max_allowed_packet;
#ifdef QBEL_TEST_HOOKS
    unsigned int commits_until_fault; /* test fault injection counter */
#endif
    /* Marker table of the current connection (mysql_sink_marker_state):
     * looked up on every connect, since the operator may create it later. */
    mysql_sink_marker_state marker_state;

    char table_quoted[TABLE_NAME_MAX + 3];                       /* `event_log` */
    char marker_quoted[TABLE_NAME_MAX + sizeof(MARKER_SUFFIX) + 2]; /* `event_log_qbel_batches` */

    /* Column-wise bind arrays, `capacity` rows each.  Row k of the arrays is
     * record row_index[k] of the current batch (rejected rows are left out).
     * Connector/C reads DATETIME parameters through an array of pointers. */
    size_t capacity;
    size_t *row_index;
    MYSQL_TIME *times;
    MYSQL_TIME **time_pointers;
    int32_t *uids;
    char *uid_indicators;
    const char **type_names;
    unsigned long *type_lengths;
    char *type_indicators;
    const char **json_pointers;
    unsigned long *json_lengths;
    char *json_indicators; /* STMT_INDICATOR_NULL for event_data `null` */
    unsigned char *rejected; /* per record of the batch: 1 when rejected */

    /* Rejections of the current batch, reported before COMMIT. */
    mysql_sink_rejection *rejections;
    size_t rejection_count, rejection_capacity;

    char *text;          /* multi-row INSERT being built (text path) */
    size_t text_length, text_capacity;

    /* The hosts to try, in order (one unless config.host is a host list),
     * and the index of the one to try first. */
    char **hosts;
    unsigned int *ports;
    size_t host_count, host_next;
    bool failover_pending; /* the connection was lost: start at the next host */

    /* Galera facts of the current connection (0: no limit). */
    bool galera;
    unsigned long long max_ws_rows, max_ws_size;
    /* A batch being written in parts: a retry of it goes the same way and
     * skips the parts that committed (see mysql_sink_write_in_parts). */
    char split_batch_id[SINK_BATCH_ID_MAX + 1];
    size_t split_rows;         /* rows per part after ER_ERROR_DURING_COMMIT; 0: none */
    unsigned char *part_done;  /* per record of the split batch */
    size_t part_done_capacity;
    /* rejections of committed parts of split_batch_id, reported again on a retry */
    struct part_rejection *part_rejections;
    size_t part_rejection_count, part_rejection_capacity;
    /* records reported through on_rejected during this write_batch call:
     * a retried transaction does not report a row twice */
    const event_record **reported;
    size_t reported_count, reported_capacity;
    unsigned int random_state;

    /* "<errno> (<sqlstate>): <message>"; code: the server's or client's
     * error number (ER_* / CR_*) */
    qbel_error error;
};

struct part_rejection {
    size_t index; /* in the split batch */
    char error[SINK_ERROR_MAX];
};

/* ---- mysql_connect.c: connecting, errors, statements ---- */

/* Record "<errno> (<sqlstate>): <message>" as the last error. */
void mysql_sink_set_error(mysql_sink *sink, unsigned int error_number, const char *sqlstate,
                          const char *message);
/* Is the connection unusable after this error (or may a reconnect cure it)? */
bool mysql_sink_is_connection_error(unsigned int error_number);
/* Record the error; on a connection error close the connection and fail
 * over at the next connect.  CONNECTION_ERROR or SERVER_ERROR. */
mysql_sink_status mysql_sink_classify(mysql_sink *sink, unsigned int error_number,
                                      const char *sqlstate, const char *message);
/* mysql_sink_classify of the connection's / the prepared INSERT's error. */
mysql_sink_status mysql_sink_connection_failure(mysql_sink *sink);
mysql_sink_status mysql_sink_statement_failure(mysql_sink *sink);
/* Close the connection and its statement (polite: COM_QUIT); idempotent. */
void mysql_sink_close_connection(mysql_sink *sink);
/* Run one statement on the connection (results are the caller's to read). */
mysql_sink_status mysql_sink_run(mysql_sink *sink, const char *sql, size_t length);
mysql_sink_status mysql_sink_run_string(mysql_sink *sink, const char *sql);
/* Roll back after a failure, keeping last_error; closes a connection the
 * rollback found broken (sink->mysql is NULL then). */
void mysql_sink_rollback_quietly(mysql_sink *sink);
/* Connect if not connected, failing over along the host list. */
mysql_sink_status mysql_sink_connect(mysql_sink *sink);

/* ---- mysql_insert.c: buffers, rejections, the INSERT paths ---- */

/* Resize *pointer_to_array to `count` elements (overflow-checked); the
 * array stays as it was on failure.  0 or -1. */
int mysql_sink_grow_array(void *pointer_to_array, size_t count, size_t element_size);
/* The bind arrays for `count` rows.  0 or -1 (OOM). */
int mysql_sink_ensure_capacity(mysql_sink *sink, size_t count);
/* Record CR_OUT_OF_MEMORY: SERVER_ERROR. */
mysql_sink_status mysql_sink_out_of_memory(mysql_sink *sink);
/* Reject record `record_number` with `error` (marks sink->rejected).  0 or -1 (OOM). */
int mysql_sink_add_rejection_text(mysql_sink *sink, size_t record_number,
                                  event_record *const *records, const char *error);
/* Reject up front the rows no packet can carry.  0 or -1 (OOM). */
int mysql_sink_reject_unsendable_rows(mysql_sink *sink, event_record *const *records,
                                      size_t count);
/* Prepared INSERT with bulk array binding on this connection? */
bool mysql_sink_uses_bulk_binding(const mysql_sink *sink);
/* The not-rejected records into the bind arrays: how many rows. */
size_t mysql_sink_fill_columns(mysql_sink *sink, event_record *const *records, size_t count);
/* The filled rows, in executions that each fit in one packet. */
mysql_sink_status mysql_sink_insert_bulk(mysql_sink *sink, size_t rows);
/* The not-rejected records, in multi-row text INSERTs that each fit. */
mysql_sink_status mysql_sink_insert_text(mysql_sink *sink, event_record *const *records,
                                         size_t count);
/* Record `record_number` (bind-array row `column_row`) alone. */
mysql_sink_status mysql_sink_insert_one(mysql_sink *sink, event_record *const *records,
                                        size_t record_number, size_t column_row);

/* ---- mysql_markers.c: the marker table ---- */

/* Run a statement on the marker table.  1 done, 0 the table is missing
 * (marker_state MISSING), -1 failed (status in *status_out). */
int mysql_sink_run_on_marker_table(mysql_sink *sink, const char *sql, size_t length,
                                   mysql_sink_status *status_out);
/* Set marker_state to PRESENT or MISSING (a missing table is no error). */
mysql_sink_status mysql_sink_look_up_marker_table(mysql_sink *sink);
/* The batch's marker row in the open transaction.  1 inserted (or no
 * marker table), 0 it exists (committed before), -1 error (*status_out). */
int mysql_sink_insert_marker(mysql_sink *sink, const char *batch_id,
                             mysql_sink_status *status_out);
/* The SELECT of `batch_id`'s marker and its parts' markers, then `suffix`,
 * as snprintf into `sql`. */
int mysql_sink_format_marker_query(mysql_sink *sink, const char *batch_id, const char *suffix,
                                   char *sql, size_t size);
/* 1 committed, 0 not (or nothing can tell), -1 error (*status_out).
 * A locking read: it waits for a transaction another session may still be
 * committing (the ambiguous-commit check after a reconnect). */
int mysql_sink_batch_committed(mysql_sink *sink, const char *batch_id,
                               mysql_sink_status *status_out);
/* The same as a plain read, taking no lock: for this session's own
 * transaction, which has ended (the read-back after COMMIT on Galera). */
int mysql_sink_marker_committed(mysql_sink *sink, const char *batch_id,
                                mysql_sink_status *status_out);
/* Housekeeping: delete marker rows older than `days`; best effort. */
mysql_sink_status mysql_sink_prune_markers(mysql_sink *sink, int days);

/* ---- mysql_galera.c: Galera's rules ---- */

/* What on_rejected gets through forward_rejection: the caller's callback,
 * called once per record however often a transaction is retried. */
typedef struct rejection_forward {
    mysql_sink *sink;
    void (*on_rejected)(void *context, const mysql_sink_rejection *rejection);
    void *context;
} rejection_forward;

/* At connect: is this a Galera node, its write-set limits, and
 * wsrep_sync_wait for marker reads. */
mysql_sink_status mysql_sink_read_galera_settings(mysql_sink *sink);
/* After COMMIT said OK on Galera: SERVER_ERROR (ER_LOCK_DEADLOCK) when the
 * marker is not there after all. */
mysql_sink_status mysql_sink_check_galera_commit(mysql_sink *sink, const char *batch_id);
/* A uniformly random number in [0, bound). */
unsigned int mysql_sink_random_below(mysql_sink *sink, unsigned int bound);
void mysql_sink_sleep_ms(unsigned int milliseconds);
/* mysql_sink_write_transaction, retried while certification refuses it. */
mysql_sink_status mysql_sink_write_certified(mysql_sink *sink, const char *batch_id,
                                             event_record *const *records, size_t count,
                                             rejection_forward *forward,
                                             size_t *rejected_count_out);
/* Does the batch fit in one write set? */
bool mysql_sink_fits_one_transaction(const mysql_sink *sink, event_record *const *records,
                                     size_t count);
/* The batch in parts of their own markers, skipping committed parts. */
mysql_sink_status mysql_sink_write_in_parts(mysql_sink *sink, const char *batch_id,
                                            event_record *const *records, size_t count,
                                            rejection_forward *forward,
                                            size_t *rejected_count_out);
/* Is the marker cleanup this node's to run?  1 yes, 0 no, -1 error. */
int mysql_sink_galera_prune_is_ours(mysql_sink *sink, int days, mysql_sink_status *status_out);

/* ---- mysql_sink.c: the batch ---- */

/* One transaction: the records and the marker `batch_id`, committed or not
 * at all (the write_batch contract of sink.h for one part). */
mysql_sink_status mysql_sink_write_transaction(
    mysql_sink *sink, const char *batch_id, event_record *const *records, size_t count,
    void (*on_rejected)(void *context, const mysql_sink_rejection *rejection), void *context,
    size_t *rejected_count_out);

#endif
