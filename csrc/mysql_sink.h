/* mysql_sink: one MySQL/MariaDB connection that writes batches of
 * event_records into Querybook's event_log table, exactly once.
 *
 * Owns: the MYSQL handle, its prepared statements and bind arrays, and
 * copies of every configuration string.  Pure C, no Python: every function
 * runs on the writer thread (or on a caller thread that released the GIL,
 * e.g. the replay CLI), and a sink is never used by two threads at once.
 *
 * Exactly-once: each batch carries a batch id (<= 64 ASCII chars) that is
 * inserted into the marker table `<table>_qbel_batches` in the same
 * transaction as the rows.  After a connection error during COMMIT the
 * writer reconnects and asks mysql_sink_batch_committed() before retrying.
 *
 * The marker table belongs to the operator's schema
 * (mysql_sink_marker_table_ddl); the sink never creates it except with
 * create_table.  When it is missing (ER_NO_SUCH_TABLE, or
 * ER_TABLEACCESS_DENIED_ERROR with table-level grants) the connection
 * writes without markers: every event still lands, but a batch whose
 * COMMIT outcome was lost is written again (at-least-once).  Each connect
 * and each prune looks for the table again, so creating it restores
 * exactly-once.
 */
#ifndef QBEL_MYSQL_SINK_H
#define QBEL_MYSQL_SINK_H

#include <stdbool.h>
#include <stddef.h>

#include "event_record.h"

#define MYSQL_SINK_BATCH_ID_MAX 64
#define MYSQL_SINK_ERROR_MAX 512

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
    char *host;        /* NULL: localhost */
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
    /* Fault injection for the tests only (env QBEL_TEST_DROP_AFTER_COMMIT,
     * read by db_logger.c): every Nth COMMIT is sent and then the
     * connection is cut before its reply — the ambiguous commit.  0: off. */
    unsigned int test_drop_after_commit_every;
    /* Tests only (env QBEL_TEST_TEXT_INSERT=1): use the multi-row text
     * INSERT even on MariaDB, as on servers without bulk binding. */
    bool test_text_insert;
} mysql_sink_config;

/* Deep-copy `source` into `target` (strings strdup'd).  0, or -1 on OOM
 * (then `target` holds nothing that needs freeing). */
int mysql_sink_config_copy(mysql_sink_config *target, const mysql_sink_config *source);
void mysql_sink_config_free(mysql_sink_config *config);

typedef enum mysql_sink_status {
    MYSQL_SINK_OK = 0,
    /* The connection failed or broke; reconnect and retry.  For a commit
     * this is ambiguous: check mysql_sink_batch_committed() first. */
    MYSQL_SINK_CONNECTION_ERROR = 1,
    /* Anything else the server refused that retrying will not fix (a
     * missing table, bad credentials, a syntax error): reported through
     * last_error, retried after backoff. */
    MYSQL_SINK_SERVER_ERROR = 2,
} mysql_sink_status;

typedef struct mysql_sink mysql_sink;

/* A rejected row as reported by mysql_sink_write_batch. */
typedef struct mysql_sink_rejection {
    const event_record *record;
    char error[MYSQL_SINK_ERROR_MAX]; /* "<errno> (<sqlstate>): <message>" */
} mysql_sink_rejection;

/* Initialise Connector/C once per process, before any thread may call
 * mysql_init (its lazy initialisation is not thread-safe).  0 or -1. */
int mysql_sink_library_init(void);

/* New, unconnected sink.  NULL on OOM. */
mysql_sink *mysql_sink_new(const mysql_sink_config *config);
/* Close (sending COM_QUIT) and free. */
void mysql_sink_free(mysql_sink *sink);
/* In a forked child: drop the parent's connection without talking to the
 * server (close our copy of the socket only), then free. */
void mysql_sink_abandon(mysql_sink *sink);

/* Connect if not connected (applying every timeout and TLS option), read
 * @@max_allowed_packet, look for the marker table (creating both tables
 * first with create_table).  Idempotent. */
mysql_sink_status mysql_sink_connect(mysql_sink *sink);
bool mysql_sink_is_connected(const mysql_sink *sink);
void mysql_sink_disconnect(mysql_sink *sink);

/* Write `count` records (a NULL-terminated chain via ->next is NOT used;
 * `records` is an array) in one transaction together with the marker row
 * `batch_id`.  When the server rejects the batch for a row-level reason
 * (foreign key, range, size), the transaction is retried row by row: good
 * rows land in the same transaction as the marker, each bad row is reported
 * through `on_rejected` (called before COMMIT; `context` passed through).
 * `rejected_count_out` receives the number of rejected rows.
 * Returns OK when committed, CONNECTION_ERROR (possibly ambiguous), or
 * SERVER_ERROR (rolled back). */
mysql_sink_status mysql_sink_write_batch(mysql_sink *sink, const char *batch_id,
                                         event_record *const *records, size_t count,
                                         void (*on_rejected)(void *context,
                                                             const mysql_sink_rejection *rejection),
                                         void *context, size_t *rejected_count_out);

/* After an ambiguous failure: 1 if the marker row `batch_id` exists (the
 * batch committed), 0 if not or when the marker table is missing (the
 * batch is then written again), -1 on error (status in *status_out). */
int mysql_sink_batch_committed(mysql_sink *sink, const char *batch_id,
                               mysql_sink_status *status_out);

/* Delete marker rows older than `days` days (housekeeping, best effort).
 * When the marker table was missing, look for it again first (a
 * long-lived connection thus finds a table created later); OK without
 * deleting anything while it is still missing. */
mysql_sink_status mysql_sink_prune_markers(mysql_sink *sink, int days);

typedef enum mysql_sink_marker_state {
    MYSQL_SINK_MARKER_UNKNOWN = -1, /* not connected yet */
    MYSQL_SINK_MARKER_MISSING = 0,  /* writing without markers: at-least-once */
    MYSQL_SINK_MARKER_PRESENT = 1,
} mysql_sink_marker_state;

/* What the current (or last) connection found. */
mysql_sink_marker_state mysql_sink_marker_table_state(const mysql_sink *sink);

/* The CREATE TABLE statement of `table`'s marker table, as snprintf into
 * `out`: the length it needs (excluding the NUL), or -1 for a table name
 * that is not a valid identifier.  Columns: batch_id VARCHAR(64) NOT NULL
 * (primary key), committed_at DATETIME NOT NULL (indexed); InnoDB, so it
 * commits with the rows; ascii with a binary collation. */
int mysql_sink_marker_table_ddl(const char *table, char *out, size_t size);

/* The last error, "<errno> (<sqlstate>): <message>", with the password
 * never included; "" when none. */
const char *mysql_sink_last_error(const mysql_sink *sink);

/* True when the server supports MariaDB bulk array binding. */
bool mysql_sink_uses_bulk_binding(const mysql_sink *sink);

/* Force the multi-row text INSERT path (for tests and benchmarks). */
void mysql_sink_set_bulk_binding_enabled(mysql_sink *sink, bool enabled);

#endif
