/* mysql_sink: the MySQL/MariaDB implementation of the sink interface
 * (sink.h): one connection that writes batches of event_records into
 * Querybook's event_log table, exactly once.
 *
 * Owns: the MYSQL handle, its prepared statements and bind arrays, and
 * copies of every configuration string.  Pure C, no Python: every function
 * runs on the writer thread (or on a caller thread that released the GIL,
 * e.g. the replay CLI), and a sink is never used by two threads at once.
 * Only the DB logger's Python type (db_logger.c) and module setup include
 * this header; the writer, the queue and the spool know sink.h alone.
 *
 * Exactly-once: the batch id is inserted into the marker table
 * `<table>_qbel_batches` in the same transaction as the rows.
 *
 * The marker table belongs to the operator's schema
 * (mysql_sink_marker_table_ddl); the sink never creates it except with
 * create_table.  When it is missing (ER_NO_SUCH_TABLE, or
 * ER_TABLEACCESS_DENIED_ERROR with table-level grants) the connection
 * writes without markers (SINK_AT_LEAST_ONCE): every event still lands,
 * but a batch whose COMMIT outcome was lost is written again.  Each connect
 * and each housekeeping pass looks for the table again, so creating it
 * restores exactly-once.
 */
#ifndef QBEL_MYSQL_SINK_H
#define QBEL_MYSQL_SINK_H

#include <stdbool.h>
#include <stddef.h>

#include "event_record.h"
#include "sink.h"

/* The identity's and the rejection's limits are the sink interface's. */
#define MYSQL_SINK_BATCH_ID_MAX SINK_BATCH_ID_MAX
#define MYSQL_SINK_ERROR_MAX SINK_ERROR_MAX

/* TLS as MySQL's --ssl-mode names it; parse_database_url resolves every
 * other way of asking (ssl_verify_cert, ssl_check_hostname, a bare ssl_ca)
 * into one of these.  From REQUIRED up, a connection that is not encrypted
 * is refused and nothing is written on it. */
typedef enum mysql_sink_ssl_mode {
    MYSQL_SINK_SSL_DISABLED = 0,  /* plaintext, never TLS */
    MYSQL_SINK_SSL_PREFERRED,     /* TLS when the server offers it, unverified; else plaintext */
    MYSQL_SINK_SSL_REQUIRED,      /* TLS; the chain is verified only when ssl_ca/capath is given */
    MYSQL_SINK_SSL_VERIFY_CA,     /* TLS, the chain verified against ssl_ca/capath */
    MYSQL_SINK_SSL_VERIFY_IDENTITY, /* TLS, the chain and the host name verified */
} mysql_sink_ssl_mode;
#define MYSQL_SINK_SSL_MODE_COUNT (MYSQL_SINK_SSL_VERIFY_IDENTITY + 1)

/* "DISABLED" ... "VERIFY_IDENTITY", as ssl_mode is written in a URL. */
const char *mysql_sink_ssl_mode_name(mysql_sink_ssl_mode mode);

typedef struct mysql_sink_config {
    char *host;        /* NULL: localhost; or a host list "h1:p1,h2:p2,[v6]:p3" (every
                        * port given: parse_database_url's spelling), tried in order,
                        * failing over on a lost connection or a node not ready */
    unsigned int port; /* 0: default */
    char *user;
    char *password;    /* never printed, logged or put into an error */
    char *database;
    char *unix_socket;
    mysql_sink_ssl_mode ssl_mode;
    char *ssl_ca, *ssl_capath, *ssl_cert, *ssl_key, *ssl_cipher; /* NULL: none */
    char *table;          /* validated identifier, default "event_log" */
    unsigned int connect_timeout_s, read_timeout_s, write_timeout_s;
    bool create_table;    /* CREATE TABLE IF NOT EXISTS <table> and its marker table on
                           * connect (standalone use; otherwise no DDL ever) */
#ifdef QBEL_TEST_HOOKS
    /* Test builds only (QBEL_TEST_BUILD=1), from env QBEL_TEST_DROP_AFTER_COMMIT
     * read by db_logger.c: every Nth COMMIT is sent and then the connection
     * is cut before its reply — the ambiguous commit.  0: off. */
    unsigned int test_drop_after_commit_every;
    /* Test builds only (env QBEL_TEST_TEXT_INSERT=1): use the multi-row text
     * INSERT even on MariaDB, as on servers without bulk binding. */
    bool test_text_insert;
#endif
} mysql_sink_config;

/* Deep-copy `source` into `target` (strings strdup'd).  0, or -1 on OOM
 * (then `target` holds nothing that needs freeing). */
int mysql_sink_config_copy(mysql_sink_config *target, const mysql_sink_config *source);
void mysql_sink_config_free(mysql_sink_config *config);

/* Initialise Connector/C once per process, before any thread may call
 * mysql_init (its lazy initialisation is not thread-safe).  0 or -1. */
int mysql_sink_library_init(void);

/* Is `name` a table name this sink accepts: 1..MYSQL_SINK_TABLE_NAME_MAX
 * ASCII letters, digits and underscores, not starting with a digit?  The
 * one rule, used by the Python type's checks and by the SQL we build. */
#define MYSQL_SINK_TABLE_NAME_MAX 51 /* 64, MySQL's limit, minus "_qbel_batches" */
bool mysql_sink_table_name_is_valid(const char *name);

/* A new, unconnected sink writing to `config` (deep-copied), as the
 * generic sink.  NULL on OOM or an invalid table name. */
sink *mysql_sink_new(const mysql_sink_config *config);

/* A factory of sinks for `config` (deep-copied), with the identity
 * "mysql://user@host:port/database#table" (host "localhost" when unset,
 * port 3306 when unset; a host list as it is, "mysql://u@h1:p1,h2:p2/db#t",
 * the same whichever host is in use; with a socket no port but "?unix_socket=PATH"
 * before the "#"; never the password).  0, or -1 on OOM or an invalid table name. */
int mysql_sink_factory(sink_factory *out, const mysql_sink_config *config);

/* The identity of `config` into `out` (see mysql_sink_factory): the length
 * it needs, like snprintf. */
int mysql_sink_identity(const mysql_sink_config *config, char *out, size_t size);

/* The CREATE TABLE statement of `table`'s marker table, as snprintf into
 * `out`: the length it needs (excluding the NUL), or -1 for a table name
 * that is not valid.  Columns: batch_id VARCHAR(64) NOT NULL (primary
 * key), committed_at DATETIME NOT NULL (indexed); InnoDB, so it commits
 * with the rows; ascii with a binary collation. */
int mysql_sink_marker_table_ddl(const char *table, char *out, size_t size);

#endif
