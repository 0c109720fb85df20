/* mysql_sink: one MariaDB/MySQL connection writing event_record batches into
 * Querybook's event_log, exactly once (see mysql_sink.h for the contract).
 * This file holds the sink's lifecycle (configuration copy, host list,
 * create, free, abandon), the batch write orchestration (one transaction of
 * rows and marker, the row-by-row retry, commit), the sink interface and the
 * factory.  The other concerns have a file each, sharing
 * mysql_sink_internal.h: mysql_connect.c (connect, failover, TLS, error
 * classification), mysql_insert.c (the INSERT paths within the packet
 * limit), mysql_markers.c (the marker table) and mysql_galera.c (Galera).
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
 */
#include "mysql_sink_internal.h"
#include "defaults.h"
#include "qbel_alloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Marker rows only matter for replays and ambiguous commits, which happen
 * within days: housekeeping deletes older ones. */
#define MARKER_KEEP_DAYS 7

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

/* ------------------------------------------------------------- lifecycle */

static const sink_ops mysql_sink_ops;

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

/* ------------------------------------------------------------------ batch */

#ifdef QBEL_TEST_HOOKS
/* The injected fault (see mysql_sink_config): COMMIT reaches the server,
 * its reply never reaches us.  The server commits, we see the connection
 * lost and cannot know — exactly what the marker row resolves. */
static mysql_sink_status
commit_then_cut_connection(mysql_sink *sink)
{
    if (mysql_send_query(sink->mysql, "COMMIT", 6) != 0) {
        return mysql_sink_connection_failure(sink);
    }
    shutdown(mysql_get_socket(sink->mysql), SHUT_RDWR);
    (void)mysql_read_query_result(sink->mysql);
    /* the OK may have arrived before the shutdown (a slow client): the
     * read then succeeds and mysql_errno is 0, which is no connection
     * error.  The fault is a lost reply either way. */
    return mysql_sink_classify(sink, CR_SERVER_LOST, "HY000",
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
        return mysql_sink_connection_failure(sink);
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
        int marker = mysql_sink_insert_marker(sink, batch_id, &status);
        if (marker <= 0) {
            *already_committed = marker == 0;
            return marker == 0 ? MYSQL_SINK_OK : status;
        }
        size_t rows = mysql_sink_fill_columns(sink, records, count);
        bool restart = false;
        for (size_t k = 0; k < rows && !restart; k++) {
            size_t i = sink->row_index[k];
            status = mysql_sink_insert_one(sink, records, i, k);
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
            if (mysql_sink_add_rejection_text(sink, i, records, sink->error.message) < 0) {
                mysql_sink_rollback_quietly(sink);
                return mysql_sink_out_of_memory(sink);
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

/* One transaction: the records and the marker `batch_id`, committed or not
 * at all (mysql_sink_write_batch's contract for one part). */
mysql_sink_status
mysql_sink_write_transaction(mysql_sink *sink, const char *batch_id,
                             event_record *const *records, size_t count,
                             void (*on_rejected)(void *context,
                                                 const mysql_sink_rejection *rejection),
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
    if (mysql_sink_ensure_capacity(sink, count) < 0) {
        return mysql_sink_out_of_memory(sink);
    }
    if (count > 0) {
        memset(sink->rejected, 0, count);
    }
    if (mysql_sink_reject_unsendable_rows(sink, records, count) < 0) {
        return mysql_sink_out_of_memory(sink);
    }
    int marker = mysql_sink_insert_marker(sink, batch_id, &status);
    if (marker < 0) {
        mysql_sink_rollback_quietly(sink);
        return status;
    }
    if (marker == 0) {
        /* The marker commits in the same transaction as the rows, so they
         * are in the table already: writing them again would double them. */
        mysql_sink_rollback_quietly(sink);
        sink->rejection_count = 0;
        return MYSQL_SINK_OK;
    }
    if (mysql_sink_uses_bulk_binding(sink)) {
        status = mysql_sink_insert_bulk(sink, mysql_sink_fill_columns(sink, records, count));
    }
    else {
        status = mysql_sink_insert_text(sink, records, count);
    }
    if (status != MYSQL_SINK_OK) {
        unsigned int error_number = (unsigned int)sink->error.code;
        mysql_sink_rollback_quietly(sink);
        if (status != MYSQL_SINK_SERVER_ERROR || !is_row_error(error_number)) {
            return status;
        }
        bool already_committed = false;
        status = write_row_by_row(sink, batch_id, records, count, &already_committed);
        if (status != MYSQL_SINK_OK) {
            mysql_sink_rollback_quietly(sink);
            return status;
        }
        if (already_committed) {
            mysql_sink_rollback_quietly(sink);
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
        mysql_sink_rollback_quietly(sink);
        return status;
    }
    return mysql_sink_check_galera_commit(sink, batch_id);
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
    if (strcmp(sink->split_batch_id, batch_id) != 0 &&
        mysql_sink_fits_one_transaction(sink, records, count)) {
        status = mysql_sink_write_certified(sink, batch_id, records, count, &forward,
                                            rejected_count_out);
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
    return mysql_sink_write_in_parts(sink, batch_id, records, count, &forward, rejected_count_out);
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

static int
kind_copy_config(void *target, const void *source)
{
    return mysql_sink_config_copy(target, source);
}

static void
kind_clear_config(void *config)
{
    mysql_sink_config_free(config);
}

static sink *
kind_make(const void *config)
{
    return mysql_sink_new(config);
}

static const sink_kind mysql_kind = {sizeof(mysql_sink_config), kind_copy_config,
                                     kind_clear_config, kind_make};

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
    return sink_factory_init(out, &mysql_kind, config, identity);
}
