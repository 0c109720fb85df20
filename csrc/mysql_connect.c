/* mysql_connect: the MySQL sink's connection (see mysql_sink_internal.h).
 *
 * Owns: opening it (options and timeouts, TLS per ssl_mode, the session
 * settings, the packet limit, the marker table look-up, the prepared
 * INSERT; with create_table the tables), closing it, and the error
 * classification that decides when a connection is unusable.
 *
 * Several hosts (config.host "h1:p1,h2:p2", a Galera cluster; the list is
 * parsed when the sink is made, in mysql_sink.c): tried in order from the
 * one last used; a lost connection or a node that is not ready
 * (ER_UNKNOWN_COM_ERROR, Galera's 1047) moves on to the next.
 */
#include "mysql_sink_internal.h"
#include "defaults.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CONNECT_TIMEOUT_S QBEL_DEFAULT_CONNECT_TIMEOUT_S
#define DEFAULT_READ_TIMEOUT_S QBEL_DEFAULT_READ_TIMEOUT_S
#define DEFAULT_WRITE_TIMEOUT_S QBEL_DEFAULT_WRITE_TIMEOUT_S
#define FALLBACK_MAX_ALLOWED_PACKET (4UL * 1024 * 1024)

/* ------------------------------------------------------------------ errors */

void
mysql_sink_set_error(mysql_sink *sink, unsigned int error_number, const char *sqlstate,
                     const char *message)
{
    qbel_error_set(&sink->error, (int)error_number, "%u (%s): %s", error_number,
                   sqlstate != NULL && sqlstate[0] ? sqlstate : "HY000", message);
}

/* Errors after which this connection is unusable, or that a reconnect may
 * cure (a failover leaves the old primary read-only). */
bool
mysql_sink_is_connection_error(unsigned int error_number)
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

/* Record an error, drop the connection when it is unusable, classify. */
mysql_sink_status
mysql_sink_classify(mysql_sink *sink, unsigned int error_number, const char *sqlstate,
                    const char *message)
{
    mysql_sink_set_error(sink, error_number, sqlstate, message);
    if (mysql_sink_is_connection_error(error_number)) {
        mysql_sink_close_connection(sink);
        sink->failover_pending = true;
        return MYSQL_SINK_CONNECTION_ERROR;
    }
    return MYSQL_SINK_SERVER_ERROR;
}

mysql_sink_status
mysql_sink_connection_failure(mysql_sink *sink)
{
    MYSQL *mysql = sink->mysql;
    return mysql_sink_classify(sink, mysql_errno(mysql), mysql_sqlstate(mysql), mysql_error(mysql));
}

mysql_sink_status
mysql_sink_statement_failure(mysql_sink *sink)
{
    MYSQL_STMT *stmt = sink->insert_stmt;
    return mysql_sink_classify(sink, mysql_stmt_errno(stmt), mysql_stmt_sqlstate(stmt),
                               mysql_stmt_error(stmt));
}

void
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

/* ------------------------------------------------------------- connecting */

mysql_sink_status
mysql_sink_run(mysql_sink *sink, const char *sql, size_t length)
{
    if (mysql_real_query(sink->mysql, sql, length) != 0) {
        return mysql_sink_connection_failure(sink);
    }
    return MYSQL_SINK_OK;
}

mysql_sink_status
mysql_sink_run_string(mysql_sink *sink, const char *sql)
{
    return mysql_sink_run(sink, sql, strlen(sql));
}

/* Roll back after a failure; the original error stays in last_error. */
void
mysql_sink_rollback_quietly(mysql_sink *sink)
{
    if (sink->mysql != NULL && mysql_rollback(sink->mysql) != 0 &&
        mysql_sink_is_connection_error(mysql_errno(sink->mysql))) {
        mysql_sink_close_connection(sink);
        sink->failover_pending = true;
    }
}

static mysql_sink_status
read_max_allowed_packet(mysql_sink *sink)
{
    mysql_sink_status status = mysql_sink_run_string(sink, "SELECT @@max_allowed_packet");
    if (status != MYSQL_SINK_OK) {
        return status;
    }
    MYSQL_RES *result = mysql_store_result(sink->mysql);
    if (result == NULL) {
        return mysql_sink_connection_failure(sink);
    }
    MYSQL_ROW row = mysql_fetch_row(result);
    unsigned long value = row != NULL && row[0] != NULL ? strtoul(row[0], NULL, 10) : 0;
    mysql_free_result(result);
    sink->max_allowed_packet = value > 2 * PACKET_HEADROOM ? value : FALLBACK_MAX_ALLOWED_PACKET;
    return MYSQL_SINK_OK;
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
        return mysql_sink_connection_failure(sink);
    }
    if (mysql_stmt_prepare(sink->insert_stmt, sql, (unsigned long)length) != 0) {
        mysql_sink_status status = mysql_sink_statement_failure(sink);
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
        mysql_sink_set_error(sink, mysql_errno(mysql), mysql_sqlstate(mysql),
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
    mysql_sink_set_error(sink, CR_SSL_CONNECTION_ERROR, "HY000", message);
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
    mysql_sink_status status = mysql_sink_run(sink, sql, (size_t)length);
    if (status != MYSQL_SINK_OK) {
        return status;
    }
    length = mysql_sink_marker_table_ddl(table, sql, sizeof(sql));
    if (length < 0 || (size_t)length >= sizeof(sql)) {
        mysql_sink_set_error(sink, 0, "HY000", "invalid table name");
        return MYSQL_SINK_SERVER_ERROR;
    }
    return mysql_sink_run(sink, sql, (size_t)length);
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
    if ((status = mysql_sink_run_string(sink, "SET SESSION time_zone = '+00:00', "
                                   "sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'")) !=
        MYSQL_SINK_OK) {
        return status;
    }
    if ((status = read_max_allowed_packet(sink)) != MYSQL_SINK_OK ||
        (status = mysql_sink_read_galera_settings(sink)) != MYSQL_SINK_OK) {
        return status;
    }
    sink->split_rows = 0;
    if (sink->config.create_table && (status = create_tables(sink)) != MYSQL_SINK_OK) {
        return status;
    }
    sink->marker_state = MYSQL_SINK_MARKER_UNKNOWN;
    if ((status = mysql_sink_look_up_marker_table(sink)) != MYSQL_SINK_OK) {
        return status;
    }
    if (mysql_autocommit(sink->mysql, 0) != 0) {
        return mysql_sink_connection_failure(sink);
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
        mysql_sink_set_error(sink, CR_OUT_OF_MEMORY, "HY000", "mysql_init: out of memory");
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
        mysql_sink_set_error(sink, error_number, mysql_sqlstate(mysql), mysql_error(mysql));
        mysql_close(mysql);
        /* Bad credentials or an unknown database will not heal by reconnecting now. */
        return mysql_sink_is_connection_error(error_number) ? MYSQL_SINK_CONNECTION_ERROR
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
mysql_sink_status
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
