/* mysql_sink: one MariaDB/MySQL connection writing event_record batches into
 * Querybook's event_log, exactly once (see mysql_sink.h for the contract).
 *
 * Owns: the MYSQL handle and its prepared INSERT, the column-wise bind arrays
 * (grown to the largest batch seen), the text-INSERT buffer, the per-batch
 * rejection list, and a deep copy of the configuration.  The password is
 * only ever handed to mysql_real_connect.
 *
 * Threads: every function runs on the writer thread (or a caller thread that
 * released the GIL, e.g. replay); a sink is never shared, so it takes no
 * locks.  Every network call is bounded by the connect/read/write timeouts,
 * so a hung server costs at most a timeout, never a wedged writer.
 *
 * Rows: on MariaDB, one prepared INSERT executed with bulk array binding
 * (STMT_ATTR_ARRAY_SIZE, column-wise); elsewhere multi-row text INSERTs with
 * escaped values.  Either way each execution stays under max_allowed_packet.
 *
 * Several hosts (config.host "h1:p1,h2:p2", a Galera cluster): tried in
 * order from the one last used; a lost connection or a node that is not
 * ready (ER_UNKNOWN_COM_ERROR, Galera's 1047) moves on to the next.
 *
 * Galera (@@wsrep_on, read at connect): marker reads wait for the cluster
 * (wsrep_sync_wait); a certification failure (ER_LOCK_DEADLOCK) is retried
 * at once with jitter; a batch larger than @@wsrep_max_ws_rows or
 * @@wsrep_max_ws_size, or refused with ER_ERROR_DURING_COMMIT, is written
 * in parts, each with the marker "<batch id>/<first>-<last>", so a retry
 * skips the parts that committed.
 */
#include "mysql_sink.h"
#include "defaults.h"
#include "qbel_alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

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

#define DEFAULT_CONNECT_TIMEOUT_S QBEL_DEFAULT_CONNECT_TIMEOUT_S
#define DEFAULT_READ_TIMEOUT_S QBEL_DEFAULT_READ_TIMEOUT_S
#define DEFAULT_WRITE_TIMEOUT_S QBEL_DEFAULT_WRITE_TIMEOUT_S
/* Marker rows only matter for replays and ambiguous commits, which happen
 * within days: housekeeping deletes older ones. */
#define MARKER_KEEP_DAYS 7
/* MySQL's identifier limit is 64, and the marker table appends 13 chars. */
#define MARKER_SUFFIX "_qbel_batches"
#define TABLE_NAME_MAX MYSQL_SINK_TABLE_NAME_MAX
_Static_assert(MYSQL_SINK_TABLE_NAME_MAX + sizeof(MARKER_SUFFIX) - 1 == 64,
               "the marker table's name must fit MySQL's 64 characters");

/* The sink interface's status under this file's older names (the
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
#define FALLBACK_MAX_ALLOWED_PACKET (4UL * 1024 * 1024)
/* Statements larger than this gain no speed, only client memory. */
#define STATEMENT_SIZE_CAP (8UL * 1024 * 1024)
#define INSERT_COLUMNS "(created_at, uid, event_type, event_data)"
/* Certification failures (ER_LOCK_DEADLOCK) retried at once, with a random
 * pause of up to CERTIFICATION_JITTER_MS << attempt between tries. */
#define CERTIFICATION_RETRIES 8
#define CERTIFICATION_JITTER_MS 4
/* Old marker rows deleted this many per transaction (a small write set). */
#define PRUNE_CHUNK_ROWS 1000
#define PRUNE_MAX_CHUNKS 100
/* Write sets keep this share of @@wsrep_max_ws_size for keys and headers. */
#define WS_SIZE_SHARE 2

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
     * skips the parts that committed (see write_in_parts). */
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

/* ------------------------------------------------------------------ config */

static int
copy_string(char **target, const char *source)
{
    *target = NULL;
    if (source == NULL) {
        return 0;
    }
    *target = qbel_strdup(source);
    return *target == NULL ? -1 : 0;
}

int
mysql_sink_config_copy(mysql_sink_config *target, const mysql_sink_config *source)
{
    *target = *source;
    target->host = target->user = target->password = target->database = NULL;
    target->unix_socket = target->ssl_ca = target->ssl_cert = NULL;
    target->ssl_key = target->table = NULL;
    target->ssl_capath = target->ssl_cipher = NULL;
    if (copy_string(&target->host, source->host) < 0 ||
        copy_string(&target->user, source->user) < 0 ||
        copy_string(&target->password, source->password) < 0 ||
        copy_string(&target->database, source->database) < 0 ||
        copy_string(&target->unix_socket, source->unix_socket) < 0 ||
        copy_string(&target->ssl_ca, source->ssl_ca) < 0 ||
        copy_string(&target->ssl_cert, source->ssl_cert) < 0 ||
        copy_string(&target->ssl_key, source->ssl_key) < 0 ||
        copy_string(&target->ssl_capath, source->ssl_capath) < 0 ||
        copy_string(&target->ssl_cipher, source->ssl_cipher) < 0 ||
        copy_string(&target->table, source->table) < 0) {
        mysql_sink_config_free(target);
        return -1;
    }
    return 0;
}

void
mysql_sink_config_free(mysql_sink_config *config)
{
    if (config->password != NULL) {
        /* Do not leave the password lying around in freed heap memory. */
        volatile char *p = config->password;
        while (*p) {
            *p++ = '\0';
        }
    }
    qbel_free(config->host);
    qbel_free(config->user);
    qbel_free(config->password);
    qbel_free(config->database);
    qbel_free(config->unix_socket);
    qbel_free(config->ssl_ca);
    qbel_free(config->ssl_cert);
    qbel_free(config->ssl_key);
    qbel_free(config->ssl_capath);
    qbel_free(config->ssl_cipher);
    qbel_free(config->table);
    config->host = config->user = config->password = config->database = NULL;
    config->unix_socket = config->ssl_ca = config->ssl_cert = NULL;
    config->ssl_key = config->table = NULL;
    config->ssl_capath = config->ssl_cipher = NULL;
}

/* ------------------------------------------------------------------ errors */

static void
set_error(mysql_sink *sink, unsigned int error_number, const char *sqlstate, const char *message)
{
    qbel_error_set(&sink->error, (int)error_number, "%u (%s): %s", error_number,
                   sqlstate != NULL && sqlstate[0] ? sqlstate : "HY000", message);
}

/* Errors after which this connection is unusable, or that a reconnect may
 * cure (a failover leaves the old primary read-only). */
static bool
is_connection_error(unsigned int error_number)
{
    if (error_number >= CR_MIN_ERROR && error_number <= CR_MAX_ERROR) {
        return true; /* every CR_* client error: gone, lost, timeout, out of sync */
    }
    switch (error_number) {
    case ER_CON_COUNT_ERROR:
    case ER_SERVER_SHUTDOWN:
    case ER_ABORTING_CONNECTION:
    case ER_NET_READ_ERROR:
    case ER_NET_READ_INTERRUPTED:
    case ER_NET_ERROR_ON_WRITE:
    case ER_NET_WRITE_INTERRUPTED:
    case ER_OPTION_PREVENTS_STATEMENT: /* read-only */
    case ER_READ_ONLY_MODE:
    case ER_CONNECTION_KILLED:
    case ER_CLIENT_INTERACTION_TIMEOUT:
    case ER_UNKNOWN_COM_ERROR: /* Galera: "WSREP has not yet prepared node" (08S01) */
        return true;
    default:
        return false;
    }
}

/* Errors caused by one row's values: retrying row by row isolates them. */
static bool
is_row_error(unsigned int error_number)
{
    switch (error_number) {
    case ER_BAD_NULL_ERROR:
    case ER_DUP_ENTRY: /* a unique key on a user's table */
    case ER_TOO_BIG_ROWSIZE:
    case ER_NET_PACKET_TOO_LARGE:
    case ER_NO_REFERENCED_ROW:
    case ER_WARN_DATA_OUT_OF_RANGE:
    case WARN_DATA_TRUNCATED: /* an unknown ENUM value in strict mode */
    case ER_TRUNCATED_WRONG_VALUE:
    case ER_INVALID_CHARACTER_STRING:
    case ER_WARN_ALLOWED_PACKET_OVERFLOWED:
    case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD:
    case ER_ILLEGAL_VALUE_FOR_TYPE:
    case ER_DATA_TOO_LONG:
    case ER_WRONG_VALUE_FOR_TYPE:
    case ER_NO_REFERENCED_ROW_2:
    case ER_DATA_OUT_OF_RANGE:
    case ER_INVALID_JSON_TEXT:
    case ER_INVALID_JSON_CHARSET:
    case ER_CHECK_CONSTRAINT_VIOLATED:
    case ER_CONSTRAINT_FAILED: /* MariaDB's json_valid check */
        return true;
    default:
        return false;
    }
}

static void mysql_sink_close_connection(mysql_sink *sink);
static const sink_ops mysql_sink_ops;

/* Record an error, drop the connection when it is unusable, classify. */
static mysql_sink_status
classify(mysql_sink *sink, unsigned int error_number, const char *sqlstate, const char *message)
{
    set_error(sink, error_number, sqlstate, message);
    if (is_connection_error(error_number)) {
        mysql_sink_close_connection(sink);
        sink->failover_pending = true;
        return MYSQL_SINK_CONNECTION_ERROR;
    }
    return MYSQL_SINK_SERVER_ERROR;
}

static mysql_sink_status
connection_failure(mysql_sink *sink)
{
    MYSQL *mysql = sink->mysql;
    return classify(sink, mysql_errno(mysql), mysql_sqlstate(mysql), mysql_error(mysql));
}

static mysql_sink_status
statement_failure(mysql_sink *sink)
{
    MYSQL_STMT *stmt = sink->insert_stmt;
    return classify(sink, mysql_stmt_errno(stmt), mysql_stmt_sqlstate(stmt),
                    mysql_stmt_error(stmt));
}

/* ------------------------------------------------------------- lifecycle */

bool
mysql_sink_table_name_is_valid(const char *name)
{
    size_t length = name == NULL ? 0 : strlen(name);
    if (length == 0 || length > TABLE_NAME_MAX || (name[0] >= '0' && name[0] <= '9')) {
        return false;
    }
    for (size_t i = 0; i < length; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_')) {
            return false;
        }
    }
    return true;
}

/* Split config.host into hosts[]/ports[]: a host list ("h1:p1,[v6]:p2",
 * Connector/C's spelling, as parse_database_url writes it; a missing port
 * is 3306), else the one host with config.port.  0, or -1 on OOM or a
 * malformed list. */
static int
parse_host_list(mysql_sink *sink)
{
    const char *list = sink->config.host;
    size_t count = 1;
    for (const char *c = list; c != NULL && *c; c++) {
        count += *c == ',';
    }
    sink->hosts = qbel_calloc(count, sizeof(char *));
    sink->ports = qbel_calloc(count, sizeof(unsigned int));
    if (sink->hosts == NULL || sink->ports == NULL) {
        return -1;
    }
    sink->host_count = count;
    if (count == 1) {
        sink->ports[0] = sink->config.port;
        return copy_string(&sink->hosts[0], list);
    }
    const char *entry = list;
    for (size_t i = 0; i < count; i++) {
        const char *end = strchr(entry, ',');
        end = end != NULL ? end : entry + strlen(entry);
        const char *host = entry, *host_end, *colon;
        if (*entry == '[') {
            host = entry + 1;
            host_end = memchr(host, ']', (size_t)(end - host));
            if (host_end == NULL || (host_end + 1 < end && host_end[1] != ':')) {
                return -1;
            }
            colon = host_end + 1 < end ? host_end + 1 : NULL;
        }
        else {
            colon = memchr(entry, ':', (size_t)(end - entry));
            host_end = colon != NULL ? colon : end;
        }
        unsigned long port = 3306;
        if (colon != NULL) {
            char *stop;
            port = strtoul(colon + 1, &stop, 10);
            if (stop != end || stop == colon + 1 || port == 0 || port > 65535) {
                return -1;
            }
        }
        size_t length = (size_t)(host_end - host);
        if (length == 0 || (sink->hosts[i] = qbel_malloc(length + 1)) == NULL) {
            return -1;
        }
        memcpy(sink->hosts[i], host, length);
        sink->hosts[i][length] = '\0';
        sink->ports[i] = (unsigned int)port;
        entry = end + 1;
    }
    return 0;
}

static void
free_host_list(mysql_sink *sink)
{
    for (size_t i = 0; sink->hosts != NULL && i < sink->host_count; i++) {
        qbel_free(sink->hosts[i]);
    }
    qbel_free(sink->hosts);
    qbel_free(sink->ports);
    sink->hosts = NULL;
    sink->ports = NULL;
    sink->host_count = 0;
}

static mysql_sink *
mysql_sink_create(const mysql_sink_config *config)
{
    const char *table = config->table != NULL ? config->table : QBEL_DEFAULT_TABLE;
    if (!mysql_sink_table_name_is_valid(table)) {
        /* The Python layer validates first; this only guards the SQL we build. */
        return NULL;
    }
    mysql_sink *sink = qbel_calloc(1, sizeof(*sink));
    if (sink == NULL) {
        return NULL;
    }
    if (mysql_sink_config_copy(&sink->config, config) < 0) {
        qbel_free(sink);
        return NULL;
    }
    sink->base.ops = &mysql_sink_ops;
    if (parse_host_list(sink) < 0) {
        free_host_list(sink);
        mysql_sink_config_free(&sink->config);
        qbel_free(sink);
        return NULL;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    sink->random_state = (unsigned int)now.tv_nsec ^ (unsigned int)getpid() ^
                         (unsigned int)(uintptr_t)sink;
#ifdef QBEL_TEST_HOOKS
    sink->bulk_enabled = !config->test_text_insert;
#else
    sink->bulk_enabled = true;
#endif
    sink->marker_state = MYSQL_SINK_MARKER_UNKNOWN;
    snprintf(sink->table_quoted, sizeof(sink->table_quoted), "`%s`", table);
    snprintf(sink->marker_quoted, sizeof(sink->marker_quoted), "`%s" MARKER_SUFFIX "`", table);
    return sink;
}

static void
free_buffers(mysql_sink *sink)
{
    qbel_free(sink->row_index);
    qbel_free(sink->times);
    qbel_free(sink->time_pointers);
    qbel_free(sink->uids);
    qbel_free(sink->uid_indicators);
    qbel_free(sink->type_names);
    qbel_free(sink->type_lengths);
    qbel_free(sink->type_indicators);
    qbel_free(sink->json_pointers);
    qbel_free(sink->json_lengths);
    qbel_free(sink->json_indicators);
    qbel_free(sink->rejected);
    qbel_free(sink->rejections);
    qbel_free(sink->text);
    qbel_free(sink->part_done);
    qbel_free(sink->part_rejections);
    qbel_free(sink->reported);
}

int
mysql_sink_library_init(void)
{
    return mysql_library_init(0, NULL, NULL) == 0 ? 0 : -1;
}

static void
mysql_sink_free(mysql_sink *sink)
{
    if (sink == NULL) {
        return;
    }
    mysql_sink_close_connection(sink);
    free_buffers(sink);
    free_host_list(sink);
    mysql_sink_config_free(&sink->config);
    qbel_free(sink);
}

static void
mysql_sink_abandon(mysql_sink *sink)
{
    if (sink == NULL) {
        return;
    }
    if (sink->mysql != NULL) {
        /* The child shares the parent's socket, and the parent's writer
         * thread may have been inside a Connector/C call on this handle at
         * the moment of fork, leaving it half-updated.  Anything mysql_close
         * sent (COM_QUIT, a TLS close_notify) would end the parent's
         * session, and freeing a half-updated handle may misbehave.  So
         * close our copy of the descriptor only and leak the handle: a few
         * KiB once per fork of a process that had a connection. */
        my_socket fd = mysql_get_socket(sink->mysql);
        if (fd >= 0) {
            close(fd);
        }
        sink->mysql = NULL;
        sink->insert_stmt = NULL;
    }
    mysql_sink_free(sink);
}

static void
mysql_sink_close_connection(mysql_sink *sink)
{
    if (sink->insert_stmt != NULL) {
        mysql_stmt_close(sink->insert_stmt);
        sink->insert_stmt = NULL;
    }
    if (sink->mysql != NULL) {
        mysql_close(sink->mysql);
        sink->mysql = NULL;
    }
    sink->server_supports_bulk = false;
}

static void
mysql_sink_disconnect(mysql_sink *sink)
{
    mysql_sink_close_connection(sink);
}

static bool
mysql_sink_is_connected(const mysql_sink *sink)
{
    return sink->mysql != NULL;
}

static mysql_sink_marker_state
mysql_sink_marker_table_state(const mysql_sink *sink)
{
    return sink->marker_state;
}

static bool
mysql_sink_uses_bulk_binding(const mysql_sink *sink)
{
    return sink->bulk_enabled && sink->server_supports_bulk && sink->insert_stmt != NULL;
}

/* ------------------------------------------------------------- connecting */

static mysql_sink_status
run(mysql_sink *sink, const char *sql, size_t length)
{
    if (mysql_real_query(sink->mysql, sql, length) != 0) {
        return connection_failure(sink);
    }
    return MYSQL_SINK_OK;
}

static mysql_sink_status
run_string(mysql_sink *sink, const char *sql)
{
    return run(sink, sql, strlen(sql));
}

/* Roll back after a failure; the original error stays in last_error. */
static void
rollback_quietly(mysql_sink *sink)
{
    if (sink->mysql != NULL && mysql_rollback(sink->mysql) != 0 &&
        is_connection_error(mysql_errno(sink->mysql))) {
        mysql_sink_close_connection(sink);
        sink->failover_pending = true;
    }
}

static mysql_sink_status
read_max_allowed_packet(mysql_sink *sink)
{
    mysql_sink_status status = run_string(sink, "SELECT @@max_allowed_packet");
    if (status != MYSQL_SINK_OK) {
        return status;
    }
    MYSQL_RES *result = mysql_store_result(sink->mysql);
    if (result == NULL) {
        return connection_failure(sink);
    }
    MYSQL_ROW row = mysql_fetch_row(result);
    unsigned long value = row != NULL && row[0] != NULL ? strtoul(row[0], NULL, 10) : 0;
    mysql_free_result(result);
    sink->max_allowed_packet = value > 2 * PACKET_HEADROOM ? value : FALLBACK_MAX_ALLOWED_PACKET;
    return MYSQL_SINK_OK;
}

/* On a Galera node (@@wsrep_on): its write-set limits, and marker reads
 * that wait until this node has applied what the cluster committed before
 * (wsrep_sync_wait=1: reads only; a session setting, nothing replicated).
 * MySQL has no wsrep variables: not Galera. */
static mysql_sink_status
read_galera_settings(mysql_sink *sink)
{
    static const char query[] = "SELECT @@wsrep_on, @@wsrep_max_ws_rows, @@wsrep_max_ws_size";
    sink->galera = false;
    sink->max_ws_rows = sink->max_ws_size = 0;
    if (mysql_real_query(sink->mysql, query, sizeof(query) - 1) != 0) {
        if (mysql_errno(sink->mysql) == ER_UNKNOWN_SYSTEM_VARIABLE) {
            return MYSQL_SINK_OK;
        }
        return connection_failure(sink);
    }
    MYSQL_RES *result = mysql_store_result(sink->mysql);
    if (result == NULL) {
        return connection_failure(sink);
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
    return run_string(sink, "SET SESSION wsrep_sync_wait = 1");
}

static bool
server_supports_bulk(MYSQL *mysql)
{
    unsigned long capabilities = 0, extended = 0;
    if (mariadb_get_infov(mysql, MARIADB_CONNECTION_SERVER_CAPABILITIES, &capabilities) ||
        mariadb_get_infov(mysql, MARIADB_CONNECTION_EXTENDED_SERVER_CAPABILITIES, &extended)) {
        return false;
    }
    /* A MariaDB server clears CLIENT_MYSQL and announces bulk operations in
     * its extended capabilities (what MARIADB_STMT_BULK_SUPPORTED checks). */
    return !(capabilities & CLIENT_MYSQL) &&
           (extended & (MARIADB_CLIENT_STMT_BULK_OPERATIONS >> 32)) != 0;
}

static mysql_sink_status
prepare_insert(mysql_sink *sink)
{
    char sql[sizeof(sink->table_quoted) + 128];
    int length = snprintf(sql, sizeof(sql), "INSERT INTO %s " INSERT_COLUMNS " VALUES (?,?,?,?)",
                          sink->table_quoted);
    sink->insert_stmt = mysql_stmt_init(sink->mysql);
    if (sink->insert_stmt == NULL) {
        return connection_failure(sink);
    }
    if (mysql_stmt_prepare(sink->insert_stmt, sql, (unsigned long)length) != 0) {
        mysql_sink_status status = statement_failure(sink);
        if (sink->insert_stmt != NULL) {
            mysql_stmt_close(sink->insert_stmt);
            sink->insert_stmt = NULL;
        }
        return status;
    }
    return MYSQL_SINK_OK;
}

static mysql_sink_status
set_option(mysql_sink *sink, MYSQL *mysql, enum mysql_option option, const void *value)
{
    if (mysql_optionsv(mysql, option, value) != 0) {
        set_error(sink, mysql_errno(mysql), mysql_sqlstate(mysql),
                  "cannot set a connection option");
        return MYSQL_SINK_SERVER_ERROR;
    }
    return MYSQL_SINK_OK;
}

const char *
mysql_sink_ssl_mode_name(mysql_sink_ssl_mode mode)
{
    static const char *const names[MYSQL_SINK_SSL_MODE_COUNT] = {
        "DISABLED", "PREFERRED", "REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"};
    return (unsigned)mode < MYSQL_SINK_SSL_MODE_COUNT ? names[mode] : "?";
}

/* Connector/C 3.3 falls back to plaintext when the server offers no TLS
 * unless the certificate is verified or a fingerprint is set, and then
 * authenticates in the clear (caching_sha2_password even sends the password,
 * taking the asked-for TLS for granted).  It refuses before authenticating
 * when a fingerprint option is set at all, yet compares fingerprints only
 * when it is non-empty: an empty one makes REQUIRED and VERIFY_CA refuse a
 * server without TLS as VERIFY_IDENTITY does.  3.4 compares any
 * fingerprint set (and refuses by default), so the empty one is 3.3 only;
 * check_tls_outcome stays the guarantee on every version. */
static mysql_sink_status
refuse_plaintext_before_auth(mysql_sink *sink, MYSQL *mysql)
{
    if (mysql_get_client_version() >= 30400) {
        return MYSQL_SINK_OK;
    }
    return set_option(sink, mysql, MARIADB_OPT_TLS_PEER_FP, "");
}

/* The TLS half of apply_options, per mysql_sink_ssl_mode.  Connector/C
 * verifies the chain whenever a CA is given (SSL_VERIFY_PEER) and the host
 * name only with MYSQL_OPT_SSL_VERIFY_SERVER_CERT; both switches are set
 * explicitly, since 3.4 verifies by default and 3.3 does not. */
static mysql_sink_status
apply_tls_options(mysql_sink *sink, MYSQL *mysql)
{
    const mysql_sink_config *c = &sink->config;
    my_bool use_tls = c->ssl_mode != MYSQL_SINK_SSL_DISABLED;
    my_bool verify_identity = c->ssl_mode == MYSQL_SINK_SSL_VERIFY_IDENTITY;
    mysql_sink_status status = MYSQL_SINK_OK;
    if ((status = set_option(sink, mysql, MYSQL_OPT_SSL_ENFORCE, &use_tls)) ||
        (status = set_option(sink, mysql, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify_identity)) ||
        !use_tls) {
        return status;
    }
    if ((c->ssl_ca && (status = set_option(sink, mysql, MYSQL_OPT_SSL_CA, c->ssl_ca))) ||
        (c->ssl_capath &&
         (status = set_option(sink, mysql, MYSQL_OPT_SSL_CAPATH, c->ssl_capath))) ||
        (c->ssl_cert && (status = set_option(sink, mysql, MYSQL_OPT_SSL_CERT, c->ssl_cert))) ||
        (c->ssl_key && (status = set_option(sink, mysql, MYSQL_OPT_SSL_KEY, c->ssl_key))) ||
        (c->ssl_cipher &&
         (status = set_option(sink, mysql, MYSQL_OPT_SSL_CIPHER, c->ssl_cipher)))) {
        return status;
    }
    if (c->ssl_mode == MYSQL_SINK_SSL_REQUIRED || c->ssl_mode == MYSQL_SINK_SSL_VERIFY_CA) {
        return refuse_plaintext_before_auth(sink, mysql);
    }
    return MYSQL_SINK_OK;
}

/* After mysql_real_connect: a connection that ssl_mode says must be
 * encrypted and is not is refused before anything is sent on it. */
static mysql_sink_status
check_tls_outcome(mysql_sink *sink, MYSQL *mysql)
{
    mysql_sink_ssl_mode mode = sink->config.ssl_mode;
    if (mode < MYSQL_SINK_SSL_REQUIRED || mysql_get_ssl_cipher(mysql) != NULL) {
        return MYSQL_SINK_OK;
    }
    char message[160];
    snprintf(message, sizeof(message),
             "TLS is required (ssl_mode=%s) but the server did not encrypt the connection; "
             "nothing was sent", mysql_sink_ssl_mode_name(mode));
    set_error(sink, CR_SSL_CONNECTION_ERROR, "HY000", message);
    return MYSQL_SINK_SERVER_ERROR;
}

static mysql_sink_status
apply_options(mysql_sink *sink, MYSQL *mysql)
{
    const mysql_sink_config *c = &sink->config;
    unsigned int connect_timeout =
        c->connect_timeout_s ? c->connect_timeout_s : DEFAULT_CONNECT_TIMEOUT_S;
    unsigned int read_timeout = c->read_timeout_s ? c->read_timeout_s : DEFAULT_READ_TIMEOUT_S;
    unsigned int write_timeout = c->write_timeout_s ? c->write_timeout_s : DEFAULT_WRITE_TIMEOUT_S;
    my_bool no = 0;
    unsigned int no_local_infile = 0;
    mysql_sink_status status = MYSQL_SINK_OK;
    if ((status = set_option(sink, mysql, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout)) ||
        (status = set_option(sink, mysql, MYSQL_OPT_READ_TIMEOUT, &read_timeout)) ||
        (status = set_option(sink, mysql, MYSQL_OPT_WRITE_TIMEOUT, &write_timeout)) ||
        /* We reconnect ourselves: a silent reconnect would lose the
         * transaction and the session settings. */
        (status = set_option(sink, mysql, MYSQL_OPT_RECONNECT, &no)) ||
        /* Always utf8mb4, whatever charset the URL names: any other
         * connection charset refuses or mangles some text. */
        (status = set_option(sink, mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4")) ||
        /* A hostile server may answer any query with a LOAD DATA LOCAL
         * request for a client file; we never need it. */
        (status = set_option(sink, mysql, MYSQL_OPT_LOCAL_INFILE, &no_local_infile))) {
        return status;
    }
    return apply_tls_options(sink, mysql);
}

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

/* The event table (Querybook's schema minus the foreign key: there may be
 * no user table) and the marker table: create_table=True only, for
 * standalone use.  Inside Querybook the writer never runs DDL (its user
 * may only SELECT, INSERT, UPDATE and DELETE). */
static mysql_sink_status
create_tables(mysql_sink *sink)
{
    char sql[1024];
    const char *table = sink->config.table != NULL ? sink->config.table : QBEL_DEFAULT_TABLE;
    int length = snprintf(sql, sizeof(sql),
                          "CREATE TABLE IF NOT EXISTS %s ("
                          "id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, "
                          "created_at DATETIME NULL, uid INT NULL, "
                          "event_type ENUM('API','WEBSOCKET','VIEW','CLICK') NULL, "
                          "event_data JSON NULL, INDEX ix_%s_event_type (event_type)) "
                          "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
                          sink->table_quoted, table);
    mysql_sink_status status = run(sink, sql, (size_t)length);
    if (status != MYSQL_SINK_OK) {
        return status;
    }
    length = mysql_sink_marker_table_ddl(table, sql, sizeof(sql));
    if (length < 0 || (size_t)length >= sizeof(sql)) {
        set_error(sink, 0, "HY000", "invalid table name");
        return MYSQL_SINK_SERVER_ERROR;
    }
    return run(sink, sql, (size_t)length);
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
static int
run_on_marker_table(mysql_sink *sink, const char *sql, size_t length,
                    mysql_sink_status *status_out)
{
    if (mysql_real_query(sink->mysql, sql, (unsigned long)length) == 0) {
        return 1;
    }
    if (is_missing_marker_error(mysql_errno(sink->mysql))) {
        sink->marker_state = MYSQL_SINK_MARKER_MISSING;
        return 0;
    }
    *status_out = connection_failure(sink);
    return -1;
}

/* Look the marker table up: PRESENT, or MISSING (no error).  At connect
 * time autocommit is still on, so the SELECT leaves no transaction open;
 * later callers roll back after it. */
static mysql_sink_status
look_up_marker_table(mysql_sink *sink)
{
    char sql[sizeof(sink->marker_quoted) + 32];
    int length = snprintf(sql, sizeof(sql), "SELECT 1 FROM %s LIMIT 0", sink->marker_quoted);
    mysql_sink_status status = MYSQL_SINK_OK;
    int found = run_on_marker_table(sink, sql, (size_t)length, &status);
    if (found < 0) {
        return status;
    }
    if (found == 1) {
        MYSQL_RES *result = mysql_store_result(sink->mysql);
        if (result == NULL && mysql_field_count(sink->mysql) != 0) {
            return connection_failure(sink);
        }
        mysql_free_result(result);
        sink->marker_state = MYSQL_SINK_MARKER_PRESENT;
    }
    return MYSQL_SINK_OK;
}

/* Session settings, the packet limit, the marker table look-up (and with
 * create_table both tables) and the prepared INSERT: everything a fresh
 * connection needs. */
static mysql_sink_status
set_up_session(mysql_sink *sink)
{
    mysql_sink_status status;
    /* UTC so UTC_TIMESTAMP and DATETIME agree; strict so a bad value is an
     * error we can dead-letter, not a silently truncated row. */
    if ((status = run_string(sink, "SET SESSION time_zone = '+00:00', "
                                   "sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'")) !=
        MYSQL_SINK_OK) {
        return status;
    }
    if ((status = read_max_allowed_packet(sink)) != MYSQL_SINK_OK ||
        (status = read_galera_settings(sink)) != MYSQL_SINK_OK) {
        return status;
    }
    sink->split_rows = 0;
    if (sink->config.create_table && (status = create_tables(sink)) != MYSQL_SINK_OK) {
        return status;
    }
    sink->marker_state = MYSQL_SINK_MARKER_UNKNOWN;
    if ((status = look_up_marker_table(sink)) != MYSQL_SINK_OK) {
        return status;
    }
    if (mysql_autocommit(sink->mysql, 0) != 0) {
        return connection_failure(sink);
    }
    sink->server_supports_bulk = server_supports_bulk(sink->mysql);
    if (sink->server_supports_bulk) {
        return prepare_insert(sink);
    }
    return MYSQL_SINK_OK;
}

/* Connect to hosts[index]. */
static mysql_sink_status
connect_to(mysql_sink *sink, size_t index)
{
    const mysql_sink_config *c = &sink->config;
    MYSQL *mysql = mysql_init(NULL);
    if (mysql == NULL) {
        set_error(sink, CR_OUT_OF_MEMORY, "HY000", "mysql_init: out of memory");
        return MYSQL_SINK_SERVER_ERROR;
    }
    mysql_sink_status status = apply_options(sink, mysql);
    if (status != MYSQL_SINK_OK) {
        mysql_close(mysql);
        return status;
    }
    if (mysql_real_connect(mysql, sink->hosts[index], c->user, c->password, c->database,
                           sink->ports[index], c->unix_socket, 0) == NULL) {
        unsigned int error_number = mysql_errno(mysql);
        set_error(sink, error_number, mysql_sqlstate(mysql), mysql_error(mysql));
        mysql_close(mysql);
        /* Bad credentials or an unknown database will not heal by reconnecting now. */
        return is_connection_error(error_number) ? MYSQL_SINK_CONNECTION_ERROR
                                                 : MYSQL_SINK_SERVER_ERROR;
    }
    status = check_tls_outcome(sink, mysql);
    if (status != MYSQL_SINK_OK) {
        mysql_close(mysql);
        return status;
    }
    sink->mysql = mysql;
    status = set_up_session(sink);
    if (status != MYSQL_SINK_OK) {
        mysql_sink_close_connection(sink);
        return status;
    }
    return MYSQL_SINK_OK;
}

/* Connect, trying the hosts in order from the one last used (after a lost
 * connection: from the next one).  A host that refuses, is gone or is not
 * ready is passed over; any other error (bad credentials) stops the round. */
static mysql_sink_status
mysql_sink_connect(mysql_sink *sink)
{
    if (sink->mysql != NULL) {
        return MYSQL_SINK_OK;
    }
    if (sink->failover_pending && sink->host_count > 1) {
        sink->host_next = (sink->host_next + 1) % sink->host_count;
    }
    mysql_sink_status status = MYSQL_SINK_CONNECTION_ERROR;
    for (size_t tried = 0; tried < sink->host_count; tried++) {
        size_t index = (sink->host_next + tried) % sink->host_count;
        sink->failover_pending = false;
        status = connect_to(sink, index);
        if (status == MYSQL_SINK_OK) {
            sink->host_next = index;
            break;
        }
        if (status != MYSQL_SINK_CONNECTION_ERROR) {
            break;
        }
    }
    sink->failover_pending = false;
    return status;
}

/* --------------------------------------------------------------- buffers */

static int
grow_array(void *pointer_to_array, size_t count, size_t element_size)
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

static int
ensure_capacity(mysql_sink *sink, size_t count)
{
    if (count <= sink->capacity) {
        return 0;
    }
    size_t capacity = sink->capacity ? sink->capacity : 256;
    while (capacity < count) {
        capacity = capacity > SIZE_MAX / 2 ? count : capacity * 2;
    }
    if (grow_array(&sink->row_index, capacity, sizeof(size_t)) < 0 ||
        grow_array(&sink->times, capacity, sizeof(MYSQL_TIME)) < 0 ||
        grow_array(&sink->time_pointers, capacity, sizeof(MYSQL_TIME *)) < 0 ||
        grow_array(&sink->uids, capacity, sizeof(int32_t)) < 0 ||
        grow_array(&sink->uid_indicators, capacity, sizeof(char)) < 0 ||
        grow_array(&sink->type_names, capacity, sizeof(const char *)) < 0 ||
        grow_array(&sink->type_lengths, capacity, sizeof(unsigned long)) < 0 ||
        grow_array(&sink->type_indicators, capacity, sizeof(char)) < 0 ||
        grow_array(&sink->json_pointers, capacity, sizeof(const char *)) < 0 ||
        grow_array(&sink->json_lengths, capacity, sizeof(unsigned long)) < 0 ||
        grow_array(&sink->json_indicators, capacity, sizeof(char)) < 0 ||
        grow_array(&sink->rejected, capacity, sizeof(unsigned char)) < 0) {
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

static mysql_sink_status
out_of_memory(mysql_sink *sink)
{
    set_error(sink, CR_OUT_OF_MEMORY, "HY000", "out of memory");
    return MYSQL_SINK_SERVER_ERROR;
}

/* ------------------------------------------------------------ rejections */

static int
add_rejection_text(mysql_sink *sink, size_t record_number, event_record *const *records,
                   const char *error)
{
    if (sink->rejection_count == sink->rejection_capacity) {
        size_t capacity = sink->rejection_capacity ? sink->rejection_capacity * 2 : 8;
        if (grow_array(&sink->rejections, capacity, sizeof(mysql_sink_rejection)) < 0) {
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
    return add_rejection_text(sink, record_number, records, error);
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
static int
reject_unsendable_rows(mysql_sink *sink, event_record *const *records, size_t count)
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

/* Fill the column arrays with the batch's not-rejected records; returns how
 * many rows were filled. */
static size_t
fill_columns(mysql_sink *sink, event_record *const *records, size_t count)
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
        return statement_failure(sink);
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
static mysql_sink_status
insert_bulk(mysql_sink *sink, size_t rows)
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
static mysql_sink_status
insert_text(mysql_sink *sink, event_record *const *records, size_t count)
{
    size_t limit = statement_size_limit(sink);
    size_t rows_in_statement = 0;
    if (start_insert_text(sink) < 0) {
        return out_of_memory(sink);
    }
    for (size_t i = 0; i < count; i++) {
        if (sink->rejected[i]) {
            continue;
        }
        size_t before = sink->text_length;
        if (append_row_text(sink, records[i], rows_in_statement > 0) < 0) {
            return out_of_memory(sink);
        }
        if (rows_in_statement > 0 && sink->text_length > limit) {
            /* Send what fits, then start the next statement with this row. */
            mysql_sink_status status = run(sink, sink->text, before);
            if (status != MYSQL_SINK_OK) {
                return status;
            }
            rows_in_statement = 0;
            if (start_insert_text(sink) < 0 || append_row_text(sink, records[i], false) < 0) {
                return out_of_memory(sink);
            }
        }
        rows_in_statement++;
    }
    if (rows_in_statement > 0) {
        return run(sink, sink->text, sink->text_length);
    }
    return MYSQL_SINK_OK;
}

/* One record alone, for the row-by-row retry. */
static mysql_sink_status
insert_one(mysql_sink *sink, event_record *const *records, size_t record_number,
           size_t column_row)
{
    if (mysql_sink_uses_bulk_binding(sink)) {
        return execute_bulk(sink, column_row, 1);
    }
    if (start_insert_text(sink) < 0 || append_row_text(sink, records[record_number], false) < 0) {
        return out_of_memory(sink);
    }
    return run(sink, sink->text, sink->text_length);
}

/* ------------------------------------------------------------------ batch */

/* 1 inserted (or written without a marker: the table is missing), 0 the
 * marker already exists (the batch committed before), -1 error (status in
 * *status_out). */
static int
insert_marker(mysql_sink *sink, const char *batch_id, mysql_sink_status *status_out)
{
    char escaped[2 * MYSQL_SINK_BATCH_ID_MAX + 1];
    char sql[sizeof(escaped) + sizeof(sink->marker_quoted) + 96];
    size_t id_length = strlen(batch_id);
    if (id_length == 0 || id_length > MYSQL_SINK_BATCH_ID_MAX) {
        set_error(sink, 0, "HY000", "invalid batch id (1 to 64 characters)");
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
        *status_out = connection_failure(sink);
        return -1;
    }
    sink->marker_state = MYSQL_SINK_MARKER_PRESENT;
    return 1;
}

#ifdef QBEL_TEST_HOOKS
/* The injected fault (see mysql_sink_config): COMMIT reaches the server,
 * its reply never reaches us.  The server commits, we see the connection
 * lost and cannot know — exactly what the marker row resolves. */
static mysql_sink_status
commit_then_cut_connection(mysql_sink *sink)
{
    if (mysql_send_query(sink->mysql, "COMMIT", 6) != 0) {
        return connection_failure(sink);
    }
    shutdown(mysql_get_socket(sink->mysql), SHUT_RDWR);
    (void)mysql_read_query_result(sink->mysql);
    /* the OK may have arrived before the shutdown (a slow client): the
     * read then succeeds and mysql_errno is 0, which is no connection
     * error.  The fault is a lost reply either way. */
    return classify(sink, CR_SERVER_LOST, "HY000",
                    "Lost connection to server after COMMIT (injected)");
}

#endif

static mysql_sink_status
commit(mysql_sink *sink)
{
#ifdef QBEL_TEST_HOOKS
    unsigned int every = sink->config.test_drop_after_commit_every;
    if (every > 0 && ++sink->commits_until_fault >= every) {
        sink->commits_until_fault = 0;
        return commit_then_cut_connection(sink);
    }
#endif
    if (mysql_commit(sink->mysql) != 0) {
        return connection_failure(sink);
    }
    return MYSQL_SINK_OK;
}

static void
report_rejections(mysql_sink *sink,
                  void (*on_rejected)(void *context, const mysql_sink_rejection *rejection),
                  void *context)
{
    if (on_rejected == NULL) {
        return;
    }
    for (size_t i = 0; i < sink->rejection_count; i++) {
        on_rejected(context, &sink->rejections[i]);
    }
}

/* Rows one by one in a new transaction: each failed single-row INSERT rolls
 * back only itself, so the good rows commit with the marker.  A row that
 * kills the connection (an oversized packet the server refuses by hanging
 * up) is rejected and the pass restarts on a new connection. */
static mysql_sink_status
write_row_by_row(mysql_sink *sink, const char *batch_id, event_record *const *records,
                 size_t count, bool *already_committed)
{
    for (;;) {
        mysql_sink_status status = mysql_sink_connect(sink);
        if (status != MYSQL_SINK_OK) {
            return status;
        }
        int marker = insert_marker(sink, batch_id, &status);
        if (marker <= 0) {
            *already_committed = marker == 0;
            return marker == 0 ? MYSQL_SINK_OK : status;
        }
        size_t rows = fill_columns(sink, records, count);
        bool restart = false;
        for (size_t k = 0; k < rows && !restart; k++) {
            size_t i = sink->row_index[k];
            status = insert_one(sink, records, i, k);
            if (status == MYSQL_SINK_OK) {
                continue;
            }
            unsigned int error_number = (unsigned int)sink->error.code;
            bool too_large = error_number == ER_NET_PACKET_TOO_LARGE ||
                             error_number == ER_WARN_ALLOWED_PACKET_OVERFLOWED;
            if (status != MYSQL_SINK_SERVER_ERROR && !too_large) {
                return status;
            }
            if (!is_row_error(error_number)) {
                return status;
            }
            if (add_rejection_text(sink, i, records, sink->error.message) < 0) {
                rollback_quietly(sink);
                return out_of_memory(sink);
            }
            if (too_large && sink->mysql != NULL && mysql_ping(sink->mysql) != 0) {
                mysql_sink_close_connection(sink);
                restart = true; /* the transaction died with the connection */
            }
        }
        if (!restart) {
            return MYSQL_SINK_OK;
        }
    }
}

static int mysql_sink_batch_committed(mysql_sink *sink, const char *batch_id,
                                      mysql_sink_status *status_out);

/* On Galera, after COMMIT said OK: is the marker there?  Under conflicts a
 * transaction aborted by a replicated write (brute-force abort) has been
 * seen to answer COMMIT with OK and leave nothing behind (MariaDB 10.11,
 * galera-4 26.4): then it is reported as the certification failure it was
 * (ER_LOCK_DEADLOCK) and written again; nothing committed, nothing
 * doubles.  Elsewhere, or without the marker table, OK is OK. */
static mysql_sink_status
check_galera_commit(mysql_sink *sink, const char *batch_id)
{
    if (!sink->galera || sink->marker_state != MYSQL_SINK_MARKER_PRESENT) {
        return MYSQL_SINK_OK;
    }
    mysql_sink_status status = MYSQL_SINK_OK;
    int committed = mysql_sink_batch_committed(sink, batch_id, &status);
    if (committed < 0) {
        return status; /* a connection error: the writer's ambiguous-commit check decides */
    }
    if (committed == 0) {
        set_error(sink, ER_LOCK_DEADLOCK, "40001",
                  "COMMIT reported success but the cluster rolled the transaction back "
                  "(Galera brute-force abort); writing it again");
        return MYSQL_SINK_SERVER_ERROR;
    }
    return MYSQL_SINK_OK;
}

/* One transaction: the records and the marker `batch_id`, committed or not
 * at all (mysql_sink_write_batch's contract for one part). */
static mysql_sink_status
write_transaction(mysql_sink *sink, const char *batch_id, event_record *const *records,
                  size_t count,
                  void (*on_rejected)(void *context, const mysql_sink_rejection *rejection),
                  void *context, size_t *rejected_count_out)
{
    if (rejected_count_out != NULL) {
        *rejected_count_out = 0;
    }
    sink->rejection_count = 0;
    mysql_sink_status status = mysql_sink_connect(sink);
    if (status != MYSQL_SINK_OK) {
        return status;
    }
    if (ensure_capacity(sink, count) < 0) {
        return out_of_memory(sink);
    }
    if (count > 0) {
        memset(sink->rejected, 0, count);
    }
    if (reject_unsendable_rows(sink, records, count) < 0) {
        return out_of_memory(sink);
    }
    int marker = insert_marker(sink, batch_id, &status);
    if (marker < 0) {
        rollback_quietly(sink);
        return status;
    }
    if (marker == 0) {
        /* The marker commits in the same transaction as the rows, so they
         * are in the table already: writing them again would double them. */
        rollback_quietly(sink);
        sink->rejection_count = 0;
        return MYSQL_SINK_OK;
    }
    if (mysql_sink_uses_bulk_binding(sink)) {
        status = insert_bulk(sink, fill_columns(sink, records, count));
    }
    else {
        status = insert_text(sink, records, count);
    }
    if (status != MYSQL_SINK_OK) {
        unsigned int error_number = (unsigned int)sink->error.code;
        rollback_quietly(sink);
        if (status != MYSQL_SINK_SERVER_ERROR || !is_row_error(error_number)) {
            return status;
        }
        bool already_committed = false;
        status = write_row_by_row(sink, batch_id, records, count, &already_committed);
        if (status != MYSQL_SINK_OK) {
            rollback_quietly(sink);
            return status;
        }
        if (already_committed) {
            rollback_quietly(sink);
            sink->rejection_count = 0;
            return MYSQL_SINK_OK;
        }
    }
    report_rejections(sink, on_rejected, context);
    if (rejected_count_out != NULL) {
        *rejected_count_out = sink->rejection_count;
    }
    status = commit(sink);
    if (status != MYSQL_SINK_OK) {
        rollback_quietly(sink);
        return status;
    }
    return check_galera_commit(sink, batch_id);
}

/* ------------------------------------------------- retries and parts */

/* A uniformly random number in [0, bound). */
static unsigned int
random_below(mysql_sink *sink, unsigned int bound)
{
    return bound > 1 ? (unsigned int)rand_r(&sink->random_state) % bound : 0;
}

static void
sleep_ms(unsigned int milliseconds)
{
    struct timespec pause = {milliseconds / 1000, (long)(milliseconds % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
    }
}

/* What on_rejected gets through forward_rejection: the caller's callback,
 * called once per record however often a transaction is retried. */
typedef struct rejection_forward {
    mysql_sink *sink;
    void (*on_rejected)(void *context, const mysql_sink_rejection *rejection);
    void *context;
} rejection_forward;

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
        if (grow_array(&sink->reported, capacity, sizeof(*sink->reported)) < 0) {
            /* forwarding twice beats not forwarding: the caller counts rows */
            forward->on_rejected(forward->context, rejection);
            return;
        }
        sink->reported_capacity = capacity;
    }
    sink->reported[sink->reported_count++] = rejection->record;
    forward->on_rejected(forward->context, rejection);
}

/* write_transaction, again at once (after a random pause of a few
 * milliseconds) while Galera's certification refuses it: another node
 * committed a conflicting write first, and nothing of ours committed.  Not
 * the connection backoff: the cluster is healthy. */
static mysql_sink_status
write_certified(mysql_sink *sink, const char *batch_id, event_record *const *records,
                size_t count, rejection_forward *forward, size_t *rejected_count_out)
{
    for (unsigned int attempt = 0;; attempt++) {
        mysql_sink_status status =
            write_transaction(sink, batch_id, records, count,
                              forward->on_rejected != NULL ? forward_rejection : NULL, forward,
                              rejected_count_out);
        if (status != MYSQL_SINK_SERVER_ERROR || sink->error.code != ER_LOCK_DEADLOCK ||
            attempt + 1 >= CERTIFICATION_RETRIES) {
            return status;
        }
        sleep_ms(1 + random_below(sink, CERTIFICATION_JITTER_MS << attempt));
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
static bool
fits_one_transaction(const mysql_sink *sink, event_record *const *records, size_t count)
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

/* The SELECT of `batch_id`'s marker and its parts' ("<id>/<first>-<last>":
 * between "<id>/" and "<id>0" in the binary collation). */
static int
format_marker_query(mysql_sink *sink, const char *batch_id, const char *suffix, char *sql,
                    size_t size)
{
    char escaped[2 * MYSQL_SINK_BATCH_ID_MAX + 1];
    mysql_real_escape_string(sink->mysql, escaped, batch_id, (unsigned long)strlen(batch_id));
    return snprintf(sql, size,
                    "SELECT batch_id FROM %s WHERE batch_id = '%s' OR "
                    "(batch_id >= '%s/' AND batch_id < '%s0')%s",
                    sink->marker_quoted, escaped, escaped, escaped, suffix);
}

/* Read which parts of `batch_id` committed: marks their records in
 * part_done.  1 the whole batch committed (its own marker), 0 not (or only
 * parts), -1 error (status in *status_out).  Ends the read's transaction. */
static int
read_committed_parts(mysql_sink *sink, const char *batch_id, size_t count,
                     mysql_sink_status *status_out)
{
    char sql[6 * MYSQL_SINK_BATCH_ID_MAX + sizeof(sink->marker_quoted) + 128];
    int length = format_marker_query(sink, batch_id, " LOCK IN SHARE MODE", sql, sizeof(sql));
    int ran = run_on_marker_table(sink, sql, (size_t)length, status_out);
    if (ran <= 0) {
        if (ran == 0) {
            rollback_quietly(sink);
        }
        return ran;
    }
    MYSQL_RES *result = mysql_store_result(sink->mysql);
    if (result == NULL) {
        *status_out = connection_failure(sink);
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
        *status_out = connection_failure(sink);
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
            if (grow_array(&sink->part_rejections, capacity, sizeof(struct part_rejection)) < 0) {
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
static mysql_sink_status
write_in_parts(mysql_sink *sink, const char *batch_id, event_record *const *records,
               size_t count, rejection_forward *forward, size_t *rejected_count_out)
{
    size_t rejected = 0;
    mysql_sink_status status = MYSQL_SINK_OK;
    if (strcmp(sink->split_batch_id, batch_id) != 0) {
        snprintf(sink->split_batch_id, sizeof(sink->split_batch_id), "%s", batch_id);
        sink->part_rejection_count = 0;
    }
    if (count > sink->part_done_capacity) {
        if (grow_array(&sink->part_done, count, 1) < 0) {
            return out_of_memory(sink);
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
            set_error(sink, ER_ERROR_DURING_COMMIT, "HY000",
                      "the batch is larger than the cluster's write-set limit and its id is "
                      "too long to name its parts");
            return MYSQL_SINK_SERVER_ERROR;
        }
        size_t part_rejected = 0;
        status = write_certified(sink, part_id, records + first, end - first, forward,
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
            return out_of_memory(sink);
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

static mysql_sink_status
mysql_sink_write_batch(mysql_sink *sink, const char *batch_id, event_record *const *records,
                       size_t count,
                       void (*on_rejected)(void *context, const mysql_sink_rejection *rejection),
                       void *context, size_t *rejected_count_out)
{
    if (rejected_count_out != NULL) {
        *rejected_count_out = 0;
    }
    sink->reported_count = 0;
    rejection_forward forward = {sink, on_rejected, context};
    mysql_sink_status status = mysql_sink_connect(sink);
    if (status != MYSQL_SINK_OK) {
        return status;
    }
    if (strcmp(sink->split_batch_id, batch_id) != 0 && fits_one_transaction(sink, records, count)) {
        status = write_certified(sink, batch_id, records, count, &forward, rejected_count_out);
        if (status != MYSQL_SINK_SERVER_ERROR || sink->error.code != ER_ERROR_DURING_COMMIT ||
            count < 2) {
            return status;
        }
        /* the write set was refused as too large: nothing committed */
        sink->split_rows = count / 2;
        status = mysql_sink_connect(sink);
        if (status != MYSQL_SINK_OK) {
            return status;
        }
    }
    return write_in_parts(sink, batch_id, records, count, &forward, rejected_count_out);
}

/* ----------------------------------------------------------- housekeeping */

static int
mysql_sink_batch_committed(mysql_sink *sink, const char *batch_id, mysql_sink_status *status_out)
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
    /* A locking read waits for the old session's transaction if the server
     * is still finishing it; a plain read could say "not committed" just
     * before that COMMIT lands.  On Galera, wsrep_sync_wait makes it wait
     * for what other nodes committed too.  Markers of parts mean the batch
     * was being written in parts: the next write of it goes the same way
     * and skips them. */
    int length = format_marker_query(sink, batch_id, " LOCK IN SHARE MODE", sql, sizeof(sql));
    int ran = run_on_marker_table(sink, sql, (size_t)length, status_out);
    if (ran < 0) {
        return -1;
    }
    int found = 0;
    if (ran == 1) {
        MYSQL_RES *result = mysql_store_result(sink->mysql);
        if (result == NULL) {
            *status_out = connection_failure(sink);
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
        *status_out = connection_failure(sink);
        return -1;
    }
    *status_out = MYSQL_SINK_OK;
    return found;
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
        if (is_connection_error(mysql_errno(sink->mysql))) {
            *status_out = connection_failure(sink);
            return -1;
        }
        rollback_quietly(sink);
        return 0;
    }
    MYSQL_RES *result = mysql_store_result(sink->mysql);
    if (result == NULL) {
        *status_out = connection_failure(sink);
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
        is_connection_error(mysql_errno(sink->mysql))) {
        mysql_sink_close_connection(sink); /* the server drops the lock with the session */
        sink->failover_pending = true;
    }
}

/* 1 when the first row of `sql` (a read) is "1" or any row at all
 * (want_one false); 0 not; -1 error (status in *status_out).  Ends the
 * read's transaction. */
static int
read_flag(mysql_sink *sink, const char *sql, bool want_one, mysql_sink_status *status_out)
{
    if (mysql_real_query(sink->mysql, sql, (unsigned long)strlen(sql)) != 0) {
        *status_out = connection_failure(sink);
        rollback_quietly(sink);
        return -1;
    }
    MYSQL_RES *result = mysql_store_result(sink->mysql);
    if (result == NULL) {
        *status_out = connection_failure(sink);
        return -1;
    }
    MYSQL_ROW row = mysql_fetch_row(result);
    int flag = row != NULL && (!want_one || (row[0] != NULL && strcmp(row[0], "1") == 0));
    mysql_free_result(result);
    rollback_quietly(sink);
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
static int
galera_prune_is_ours(mysql_sink *sink, int days, mysql_sink_status *status_out)
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
        sleep_ms(random_below(sink, 1000));
    }
    static const char read_committed[] = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED";
    rollback_quietly(sink); /* SET TRANSACTION is refused inside a transaction */
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
                rollback_quietly(sink);
                return sink->mysql != NULL ? MYSQL_SINK_OK : MYSQL_SINK_CONNECTION_ERROR;
            }
            mysql_sink_status status = connection_failure(sink);
            rollback_quietly(sink);
            return status;
        }
        my_ulonglong deleted = mysql_affected_rows(sink->mysql);
        if (mysql_commit(sink->mysql) != 0) {
            unsigned int error_number = mysql_errno(sink->mysql);
            if (error_number == ER_LOCK_DEADLOCK) { /* certification: another node pruned */
                rollback_quietly(sink);
                return sink->mysql != NULL ? MYSQL_SINK_OK : MYSQL_SINK_CONNECTION_ERROR;
            }
            mysql_sink_status status = connection_failure(sink);
            rollback_quietly(sink);
            return status;
        }
        if (deleted < chunk) {
            break;
        }
    }
    return MYSQL_SINK_OK;
}

static mysql_sink_status
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
        status = look_up_marker_table(sink);
        rollback_quietly(sink); /* the look-up's transaction (autocommit is off) */
        if (status != MYSQL_SINK_OK || sink->mysql == NULL) {
            return status != MYSQL_SINK_OK ? status : MYSQL_SINK_CONNECTION_ERROR;
        }
        if (sink->marker_state == MYSQL_SINK_MARKER_MISSING) {
            return MYSQL_SINK_OK;
        }
    }
    if (sink->galera) {
        int ours = galera_prune_is_ours(sink, days, &status);
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

/* ------------------------------------------------------- the sink interface */

static mysql_sink *
of(sink *base)
{
    return (mysql_sink *)base;
}

static const mysql_sink *
of_const(const sink *base)
{
    return (const mysql_sink *)base;
}

static sink_status
ops_connect(sink *self)
{
    return mysql_sink_connect(of(self));
}

static bool
ops_is_connected(const sink *self)
{
    return mysql_sink_is_connected(of_const(self));
}

static void
ops_disconnect(sink *self)
{
    mysql_sink_disconnect(of(self));
}

static sink_status
ops_write_batch(sink *self, const char *batch_id, event_record *const *records, size_t count,
                sink_rejection_callback on_rejected, void *context, size_t *rejected_count_out)
{
    return mysql_sink_write_batch(of(self), batch_id, records, count, on_rejected, context,
                                  rejected_count_out);
}

static int
ops_batch_committed(sink *self, const char *batch_id, sink_status *status_out)
{
    return mysql_sink_batch_committed(of(self), batch_id, status_out);
}

static sink_status
ops_housekeeping(sink *self)
{
    return mysql_sink_prune_markers(of(self), MARKER_KEEP_DAYS);
}

static sink_delivery
ops_delivery(const sink *self)
{
    return mysql_sink_marker_table_state(of_const(self));
}

static const qbel_error *
ops_last_error(const sink *self)
{
    return &of_const(self)->error;
}

static void
ops_free(sink *self)
{
    mysql_sink_free(of(self));
}

static void
ops_abandon(sink *self)
{
    mysql_sink_abandon(of(self));
}

static const sink_ops mysql_sink_ops = {
    .kind = "mysql",
    .connect = ops_connect,
    .is_connected = ops_is_connected,
    .disconnect = ops_disconnect,
    .write_batch = ops_write_batch,
    .batch_committed = ops_batch_committed,
    .housekeeping = ops_housekeeping,
    .delivery = ops_delivery,
    .last_error = ops_last_error,
    .free = ops_free,
    .abandon = ops_abandon,
};

sink *
mysql_sink_new(const mysql_sink_config *config)
{
    mysql_sink *made = mysql_sink_create(config);
    return made != NULL ? &made->base : NULL;
}

/* ------------------------------------------------------------- the factory */

static sink *
factory_make(const void *config)
{
    return mysql_sink_new(config);
}

static void *
factory_copy_config(const void *config)
{
    mysql_sink_config *copy = qbel_calloc(1, sizeof(*copy));
    if (copy != NULL && mysql_sink_config_copy(copy, config) < 0) {
        qbel_free(copy);
        copy = NULL;
    }
    return copy;
}

static void
factory_free_config(void *config)
{
    mysql_sink_config_free(config);
    qbel_free(config);
}

int
mysql_sink_identity(const mysql_sink_config *config, char *out, size_t size)
{
    const char *user = config->user != NULL ? config->user : "";
    const char *host = config->host != NULL ? config->host : "localhost";
    const char *database = config->database != NULL ? config->database : "";
    const char *table = config->table != NULL ? config->table : QBEL_DEFAULT_TABLE;
    char port[16] = "";
    /* a host list carries its ports and names the target whichever host
     * is in use: spooled lines replay after a failover */
    if (config->unix_socket == NULL && strchr(host, ',') == NULL) {
        snprintf(port, sizeof(port), ":%u", config->port != 0 ? config->port : 3306);
    }
    return snprintf(out, size, "mysql://%s%s%s%s/%s%s%s#%s", user, *user ? "@" : "", host, port,
                    database, config->unix_socket != NULL ? "?unix_socket=" : "",
                    config->unix_socket != NULL ? config->unix_socket : "", table);
}

int
mysql_sink_factory(sink_factory *out, const mysql_sink_config *config)
{
    memset(out, 0, sizeof(*out));
    const char *table = config->table != NULL ? config->table : QBEL_DEFAULT_TABLE;
    if (!mysql_sink_table_name_is_valid(table)) {
        return -1;
    }
    char identity[SINK_IDENTITY_MAX];
    mysql_sink_identity(config, identity, sizeof(identity));
    out->make = factory_make;
    out->copy_config = factory_copy_config;
    out->free_config = factory_free_config;
    out->config = factory_copy_config(config);
    out->identity = qbel_strdup(identity);
    if (out->config == NULL || out->identity == NULL) {
        sink_factory_free(out);
        return -1;
    }
    return 0;
}
