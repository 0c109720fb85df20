/* defaults: every default value of the DB logger, its writer and its MySQL
 * sink, in one place.  db_logger.c applies them to the Python arguments,
 * the writer and the sink fall back on them for a zero in their configs,
 * and _core._db_defaults() shows them to the tests that pin them against
 * the documented signature.  No other file may spell one of these numbers.
 */
#ifndef QBEL_DEFAULTS_H
#define QBEL_DEFAULTS_H

#define QBEL_DEFAULT_TABLE "event_log"
#define QBEL_DEFAULT_BATCH_SIZE 2000
#define QBEL_DEFAULT_FLUSH_INTERVAL_S 1.0
#define QBEL_DEFAULT_MAX_QUEUE_BYTES ((size_t)64 << 20)
/* max_event_bytes=None: no limit of our own below MariaDB's largest
 * max_allowed_packet; the writer splits batches by the server's own limit
 * and dead-letters a row the server cannot take.  Also the largest int. */
#define QBEL_DEFAULT_MAX_EVENT_BYTES_CAP ((size_t)1 << 30)
#define QBEL_DEFAULT_CONNECT_TIMEOUT_S 5
#define QBEL_DEFAULT_READ_TIMEOUT_S 30
#define QBEL_DEFAULT_WRITE_TIMEOUT_S 30
#define QBEL_DEFAULT_EXIT_TIMEOUT_S 5.0
#define QBEL_DEFAULT_SYNC_TIMEOUT_S 30.0
#define QBEL_DEFAULT_BACKOFF_INITIAL_S 0.1
#define QBEL_DEFAULT_BACKOFF_MAX_S 30.0
/* durability=None and no QBEL_DURABILITY: "process" — a killed process
 * loses nothing log() accepted, at about the in-memory queue's cost and
 * within max_queue_bytes (durable_journal.h; the README's Reliability
 * section).  Where no journal can be kept (spool_dir=None, or a bound
 * below durable_journal_smallest_bound()) this default yields to "memory";
 * see journal_possible in db_logger.c. */
#define QBEL_DEFAULT_DURABILITY "process"
/* The default spool directory's name: <base>/querybook_eventlog-<euid>. */
#define QBEL_DEFAULT_SPOOL_DIR_NAME "querybook_eventlog"

#endif
