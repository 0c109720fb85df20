/* kafka_sink.c: the sink interface on librdkafka (see kafka_sink.h for the
 * message format and the handle-replacement rule).
 *
 * Owns: the producer handle, the per-batch delivery slots (freed only after
 * the handle that may still report into them is gone), the envelope
 * buffer, the configuration copy.  Writer thread (or a replaying caller
 * thread without the GIL); no lock: a sink has one user at a time, and
 * librdkafka calls our callbacks only from inside rd_kafka_flush/poll on
 * that same thread.
 */
#ifdef QBEL_HAVE_RDKAFKA

#include "kafka_sink.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qbel_alloc.h"

/* librdkafka's own default is 5 minutes: the spool should take over an
 * outage sooner than that. */
#define KAFKA_DEFAULT_MESSAGE_TIMEOUT_MS "30000"
/* How long write_batch waits beyond message.timeout.ms for the reports. */
#define KAFKA_FLUSH_GRACE_MS 5000
/* Longest single wait for delivery reports: a writer closing past its
 * deadline is noticed within this. */
#define KAFKA_WAIT_SLICE_MS 100
/* produce() retries on a full local queue before giving the batch back. */
#define KAFKA_QUEUE_FULL_RETRIES 50

typedef struct delivery_slot {
    bool done;
    rd_kafka_resp_err_t error;
    rd_kafka_msg_status_t status;
} delivery_slot;

typedef struct kafka_sink {
    sink base;
    kafka_sink_config config;
    rd_kafka_t *producer;
    int message_timeout_ms;
    bool transactional; /* transactional.id set: each batch is one transaction */
    bool fatal; /* the handle reported a fatal error: never reuse it */
    delivery_slot *slots; /* the current batch's; see free_slots */
    size_t slot_capacity;
    char *envelope;
    size_t envelope_capacity;
    qbel_error error;
} kafka_sink;

static const sink_ops kafka_sink_ops;

/* ---- counters shared with the caller side --------------------------------- */

struct kafka_sink_counters {
    pthread_mutex_t lock; /* held for a copy only */
    int references;       /* atomic */
    kafka_sink_report report;
};

kafka_sink_counters *
kafka_sink_counters_new(void)
{
    kafka_sink_counters *counters = qbel_calloc(1, sizeof(*counters));
    if (counters != NULL && pthread_mutex_init(&counters->lock, NULL) != 0) {
        qbel_free(counters);
        counters = NULL;
    }
    if (counters != NULL) {
        counters->references = 1;
    }
    return counters;
}

kafka_sink_counters *
kafka_sink_counters_retain(kafka_sink_counters *counters)
{
    if (counters != NULL) {
        __atomic_add_fetch(&counters->references, 1, __ATOMIC_RELAXED);
    }
    return counters;
}

void
kafka_sink_counters_release(kafka_sink_counters *counters)
{
    if (counters != NULL && __atomic_sub_fetch(&counters->references, 1, __ATOMIC_ACQ_REL) == 0) {
        pthread_mutex_destroy(&counters->lock);
        qbel_free(counters);
    }
}

void
kafka_sink_counters_read(kafka_sink_counters *counters, kafka_sink_report *out)
{
    memset(out, 0, sizeof(*out));
    if (counters == NULL) {
        return;
    }
    /* trylock: in a forked child the parent's writer may have held it */
    if (pthread_mutex_trylock(&counters->lock) == 0) {
        *out = counters->report;
        pthread_mutex_unlock(&counters->lock);
    }
}

/* Writer thread.  A handle was made (error NULL) or retired after `error`. */
static void
count_producer(kafka_sink_counters *counters, const qbel_error *error)
{
    if (counters == NULL) {
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    pthread_mutex_lock(&counters->lock);
    if (error == NULL) {
        counters->report.producers++;
    }
    else {
        counters->report.replacements++;
        counters->report.last_replacement = *error;
        counters->report.last_replacement_at = (double)now.tv_sec + now.tv_nsec / 1e9;
    }
    pthread_mutex_unlock(&counters->lock);
}

/* ---- configuration ------------------------------------------------------ */

static void
free_strings(char **strings, size_t count)
{
    if (strings == NULL) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        qbel_free(strings[i]);
    }
    qbel_free(strings);
}

static char **
copy_strings(char *const *source, size_t count)
{
    char **copy = qbel_calloc(count > 0 ? count : 1, sizeof(char *));
    if (copy == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        copy[i] = qbel_strdup(source[i]);
        if (copy[i] == NULL) {
            free_strings(copy, count);
            return NULL;
        }
    }
    return copy;
}

void
kafka_sink_config_free(kafka_sink_config *config)
{
    qbel_free(config->bootstrap_servers);
    qbel_free(config->topic);
    free_strings(config->setting_names, config->setting_count);
    free_strings(config->setting_values, config->setting_count);
    kafka_sink_counters_release(config->counters);
    memset(config, 0, sizeof(*config));
}

int
kafka_sink_config_copy(kafka_sink_config *target, const kafka_sink_config *source)
{
    memset(target, 0, sizeof(*target));
    target->key_by_uid = source->key_by_uid;
    target->connect_timeout_ms = source->connect_timeout_ms;
    target->owner_pid = source->owner_pid;
    target->counters = kafka_sink_counters_retain(source->counters);
    target->setting_count = source->setting_count;
    target->bootstrap_servers = qbel_strdup(source->bootstrap_servers ? source->bootstrap_servers : "");
    target->topic = qbel_strdup(source->topic ? source->topic : "");
    target->setting_names = copy_strings(source->setting_names, source->setting_count);
    target->setting_values = copy_strings(source->setting_values, source->setting_count);
    if (target->bootstrap_servers == NULL || target->topic == NULL ||
        target->setting_names == NULL || target->setting_values == NULL) {
        kafka_sink_config_free(target);
        return -1;
    }
    return 0;
}

int
kafka_sink_check_setting(const char *name, const char *value, char *error, size_t size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_res_t result = rd_kafka_conf_set(conf, name, value, error, size);
    rd_kafka_conf_destroy(conf);
    return result == RD_KAFKA_CONF_OK ? 0 : -1;
}

const char *
kafka_sink_library_version(void)
{
    return rd_kafka_version_str();
}

/* ---- librdkafka callbacks (inside rd_kafka_flush/poll, writer thread) ---- */

static void
on_delivery(rd_kafka_t *producer, const rd_kafka_message_t *message, void *opaque)
{
    (void)producer;
    (void)opaque;
    delivery_slot *slot = message->_private;
    if (slot != NULL) {
        slot->done = true;
        slot->error = message->err;
        slot->status = rd_kafka_message_status(message);
    }
}

static void
on_error(rd_kafka_t *producer, int code, const char *reason, void *opaque)
{
    kafka_sink *self = opaque;
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[256];
        rd_kafka_resp_err_t original = rd_kafka_fatal_error(producer, fatal, sizeof(fatal));
        self->fatal = true;
        qbel_error_set(&self->error, original != 0 ? (int)original : code,
                       "kafka: fatal producer error %s: %s (a new producer is made)",
                       rd_kafka_err2name(original), fatal);
        return;
    }
    qbel_error_set(&self->error, code, "kafka: %s: %s", rd_kafka_err2name(code), reason);
}

/* librdkafka would print to stderr; what matters reaches on_error. */
static void
on_log(const rd_kafka_t *producer, int level, const char *facility, const char *message)
{
    (void)producer;
    (void)level;
    (void)facility;
    (void)message;
}

/* ---- the handle ------------------------------------------------------------ */

static int
set_property(rd_kafka_conf_t *conf, const char *name, const char *value, qbel_error *error)
{
    char reason[256];
    if (rd_kafka_conf_set(conf, name, value, reason, sizeof(reason)) != RD_KAFKA_CONF_OK) {
        qbel_error_set(error, QBEL_ERROR_OTHER, "kafka: config %s: %s", name, reason);
        return -1;
    }
    return 0;
}

/* In a process other than the factory's (a fork()ed child): the
 * transactional.id `id` made the child's own (see kafka_sink.h). */
static int
set_child_transactional_id(kafka_sink *self, rd_kafka_conf_t *conf, size_t id_size)
{
    long pid = (long)getpid();
    if (self->config.owner_pid == 0 || self->config.owner_pid == pid) {
        return 0;
    }
    size_t own_size = id_size + 24;
    char *own = qbel_malloc(own_size);
    if (own == NULL) {
        qbel_error_set(&self->error, QBEL_ERROR_OTHER, "kafka: out of memory");
        return -1;
    }
    size_t size = id_size;
    int status = -1;
    if (rd_kafka_conf_get(conf, "transactional.id", own, &size) == RD_KAFKA_CONF_OK) {
        snprintf(own + strlen(own), own_size - strlen(own), "-%ld", pid);
        status = set_property(conf, "transactional.id", own, &self->error);
    }
    qbel_free(own);
    return status;
}

/* The producer's configuration: our defaults, then the user's settings. */
static rd_kafka_conf_t *
make_conf(kafka_sink *self)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const kafka_sink_config *config = &self->config;
    if (set_property(conf, "bootstrap.servers", config->bootstrap_servers, &self->error) < 0 ||
        set_property(conf, "acks", "all", &self->error) < 0 ||
        set_property(conf, "enable.idempotence", "true", &self->error) < 0 ||
        set_property(conf, "message.timeout.ms", KAFKA_DEFAULT_MESSAGE_TIMEOUT_MS, &self->error) <
            0 ||
        set_property(conf, "linger.ms", "5", &self->error) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    for (size_t i = 0; i < config->setting_count; i++) {
        if (set_property(conf, config->setting_names[i], config->setting_values[i],
                         &self->error) < 0) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    char value[64];
    size_t size = sizeof(value);
    self->message_timeout_ms = 30000;
    if (rd_kafka_conf_get(conf, "message.timeout.ms", value, &size) == RD_KAFKA_CONF_OK) {
        self->message_timeout_ms = atoi(value);
    }
    size_t id_size = 0; /* with its NUL */
    self->transactional =
        rd_kafka_conf_get(conf, "transactional.id", NULL, &id_size) == RD_KAFKA_CONF_OK &&
        id_size > 1;
    if (self->transactional && set_child_transactional_id(self, conf, id_size) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_opaque(conf, self);
    return conf;
}

/* Forget every slot of the last batch: only once no handle can report
 * into them (the handle is gone, or every report was served). */
static void
reset_slots(kafka_sink *self, size_t count)
{
    memset(self->slots, 0, count * sizeof(delivery_slot));
}

static void
kafka_disconnect(sink *base)
{
    kafka_sink *self = (kafka_sink *)base;
    if (self->producer == NULL) {
        return;
    }
    /* purge what is queued or in flight (a broker that stops answering
     * would otherwise keep them for message.timeout.ms), then destroy: no
     * report arrives after this, and the slots outlive the handle.  A
     * purged message may still have reached the broker: at least once.
     * The purge reports are served for a moment only (they are not needed
     * once the batch goes back), and not at all when the writer is closing
     * past its deadline.  Destroying a purged handle does not wait for the
     * broker: its threads only close their sockets. */
    rd_kafka_purge(self->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    if (!sink_should_give_up(base)) {
        rd_kafka_flush(self->producer, 1000);
    }
    rd_kafka_destroy(self->producer);
    self->producer = NULL;
    self->fatal = false;
}

/* Destroy a handle that failed (see kafka_sink.h): counted, with the error. */
static void
retire_producer(kafka_sink *self)
{
    if (self->producer != NULL) {
        count_producer(self->config.counters, &self->error);
        kafka_disconnect(&self->base);
    }
}

/* ---- transactions (transactional.id set) ---------------------------------- */

/* Take librdkafka's `error` (destroyed here) as the sink's error. */
static void
take_txn_error(kafka_sink *self, const char *what, rd_kafka_error_t *error)
{
    qbel_error_set(&self->error, (int)rd_kafka_error_code(error), "kafka: %s: %s%s", what,
                   rd_kafka_error_string(error),
                   rd_kafka_error_is_fatal(error) ? " (fatal: a new producer is made)" : "");
    rd_kafka_error_destroy(error);
}

/* On connect: fences any older producer of the transactional.id and
 * finishes (aborts, or completes a prepared commit of) its last
 * transaction.  0, or -1 with the handle destroyed. */
static int
init_transactions(kafka_sink *self)
{
    rd_kafka_error_t *error =
        rd_kafka_init_transactions(self->producer, (int)self->config.connect_timeout_ms);
    if (error == NULL) {
        return 0;
    }
    take_txn_error(self, "init_transactions", error);
    kafka_disconnect(&self->base);
    return -1;
}

/* Begin one transaction (no-op when not transactional).  0, or -1 with the
 * handle retired. */
static int
txn_begin(kafka_sink *self)
{
    if (!self->transactional) {
        return 0;
    }
    rd_kafka_error_t *error = rd_kafka_begin_transaction(self->producer);
    if (error == NULL) {
        return 0;
    }
    take_txn_error(self, "begin_transaction", error);
    retire_producer(self);
    return -1;
}

/* Abort the open transaction (no-op when not transactional): its messages
 * are never shown to read_committed consumers.  An abort that fails leaves
 * the handle unusable (seen after a broker restart): it is retired, and the
 * next handle's init_transactions aborts the transaction instead. */
static void
txn_abort(kafka_sink *self)
{
    if (!self->transactional || self->producer == NULL) {
        return;
    }
    rd_kafka_error_t *error =
        rd_kafka_abort_transaction(self->producer, (int)self->config.connect_timeout_ms);
    if (error != NULL) {
        take_txn_error(self, "abort_transaction", error);
        retire_producer(self);
    }
}

/* Commit the open transaction (no-op when not transactional).  0 when
 * committed; -1 when not (aborted, or the handle retired after a fatal
 * error, when the outcome is not known: then the batch is sent again, at
 * least once). */
static int
txn_commit(kafka_sink *self)
{
    if (!self->transactional) {
        return 0;
    }
    for (int attempt = 0;; attempt++) {
        rd_kafka_error_t *error =
            rd_kafka_commit_transaction(self->producer, self->message_timeout_ms);
        if (error == NULL) {
            return 0;
        }
        bool retriable = rd_kafka_error_is_retriable(error) && attempt < 2;
        bool abortable = rd_kafka_error_txn_requires_abort(error);
        take_txn_error(self, "commit_transaction", error);
        if (retriable && !sink_should_give_up(&self->base)) {
            continue;
        }
        if (abortable) {
            txn_abort(self);
        }
        else {
            retire_producer(self);
        }
        return -1;
    }
}

static bool
kafka_is_connected(const sink *base)
{
    const kafka_sink *self = (const kafka_sink *)base;
    return self->producer != NULL && !self->fatal;
}

static sink_status
kafka_connect(sink *base)
{
    kafka_sink *self = (kafka_sink *)base;
    if (kafka_is_connected(base)) {
        return SINK_OK;
    }
    retire_producer(self); /* fatal: never reused */
    rd_kafka_conf_t *conf = make_conf(self);
    if (conf == NULL) {
        return SINK_SERVER_ERROR;
    }
    char reason[512];
    self->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, reason, sizeof(reason));
    if (self->producer == NULL) {
        rd_kafka_conf_destroy(conf);
        qbel_error_set(&self->error, QBEL_ERROR_OTHER, "kafka: cannot make a producer: %s",
                       reason);
        return SINK_SERVER_ERROR;
    }
    /* a bounded round trip, so that a broker that is down hands the batch
     * to the spool within the connect timeout, not message.timeout.ms */
    const struct rd_kafka_metadata *metadata = NULL;
    rd_kafka_resp_err_t error =
        rd_kafka_metadata(self->producer, 0, NULL, &metadata, (int)self->config.connect_timeout_ms);
    if (error != RD_KAFKA_RESP_ERR_NO_ERROR) {
        qbel_error_set(&self->error, (int)error, "kafka: %s unreachable: %s",
                       self->config.bootstrap_servers, rd_kafka_err2str(error));
        kafka_disconnect(base);
        return SINK_CONNECTION_ERROR;
    }
    rd_kafka_metadata_destroy(metadata);
    if (self->transactional && init_transactions(self) < 0) {
        return SINK_CONNECTION_ERROR;
    }
    count_producer(self->config.counters, NULL);
    return SINK_OK;
}

/* ---- one batch ------------------------------------------------------------- */

static int
reserve_slots(kafka_sink *self, size_t count)
{
    if (count > self->slot_capacity) {
        delivery_slot *grown = qbel_realloc(self->slots, count * sizeof(delivery_slot));
        if (grown == NULL) {
            return -1;
        }
        self->slots = grown;
        self->slot_capacity = count;
    }
    reset_slots(self, count);
    return 0;
}

/* The envelope of `record` in self->envelope; its length, or -1 on OOM. */
static long
format_envelope(kafka_sink *self, const event_record *record)
{
    size_t need = record->json_length + 160;
    if (need > self->envelope_capacity) {
        char *grown = qbel_realloc(self->envelope, need);
        if (grown == NULL) {
            return -1;
        }
        self->envelope = grown;
        self->envelope_capacity = need;
    }
    static const char data_key[] = ",\"event_data\":";
    char head[EVENT_RECORD_HEAD_MAX];
    size_t head_length = event_record_format_head(record, head);
    size_t prefix = 1 + head_length + sizeof(data_key) - 1;
    if (prefix + record->json_length + 1 > self->envelope_capacity) {
        return -1;
    }
    char *out = self->envelope;
    out[0] = '{';
    memcpy(out + 1, head, head_length);
    memcpy(out + 1 + head_length, data_key, sizeof(data_key) - 1);
    memcpy(out + prefix, record->json, record->json_length);
    out[prefix + record->json_length] = '}';
    return (long)(prefix + record->json_length + 1);
}

/* Rejected for good: sending again would fail again. */
static bool
is_permanent(rd_kafka_resp_err_t error)
{
    switch (error) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
        return true;
    default:
        return false;
    }
}

/* produce() one record into slot `slot`.  RD_KAFKA_RESP_ERR_NO_ERROR when
 * queued; a permanent error (the record is rejected at once); or another
 * error (the batch goes back to the writer). */
static rd_kafka_resp_err_t
produce_one(kafka_sink *self, const char *batch_id, size_t index, const event_record *record,
            delivery_slot *slot)
{
    long length = format_envelope(self, record);
    if (length < 0) {
        qbel_error_set(&self->error, QBEL_ERROR_OTHER, "kafka: out of memory for a message");
        return RD_KAFKA_RESP_ERR__FAIL;
    }
    char event_id[SINK_BATCH_ID_MAX + 24];
    int id_length = snprintf(event_id, sizeof(event_id), "%s-%zu", batch_id, index);
    char key[16];
    int key_length = 0;
    if (self->config.key_by_uid && !record->uid_is_null) {
        key_length = snprintf(key, sizeof(key), "%" PRId32, record->uid);
    }
    const void *key_bytes = key_length > 0 ? (const void *)key : NULL;
    rd_kafka_resp_err_t error = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (int attempt = 0; attempt <= KAFKA_QUEUE_FULL_RETRIES; attempt++) {
        error = rd_kafka_producev(
            self->producer, RD_KAFKA_V_TOPIC(self->config.topic),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE(self->envelope, (size_t)length),
            RD_KAFKA_V_KEY(key_bytes, (size_t)key_length),
            RD_KAFKA_V_HEADER("event_id", event_id, (ssize_t)id_length),
            RD_KAFKA_V_OPAQUE(slot), RD_KAFKA_V_END);
        if (error != RD_KAFKA_RESP_ERR__QUEUE_FULL || sink_should_give_up(&self->base)) {
            break;
        }
        rd_kafka_poll(self->producer, 100); /* let the queue drain */
    }
    if (error != RD_KAFKA_RESP_ERR_NO_ERROR) {
        slot->done = true;
        slot->error = error;
        slot->status = RD_KAFKA_MSG_STATUS_NOT_PERSISTED;
        qbel_error_set(&self->error, (int)error, "kafka: produce to %s: %s", self->config.topic,
                       rd_kafka_err2str(error));
    }
    return error;
}

/* Wait for the reports of every queued message, in slices so that a
 * writer closing past its deadline is noticed within one.  0 when all
 * arrived; -1 when some did not within message.timeout.ms and the grace,
 * or the writer gave up (then the batch goes back to it, to the spool). */
static int
await_reports(kafka_sink *self)
{
    int budget_ms = self->message_timeout_ms + KAFKA_FLUSH_GRACE_MS;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (sink_should_give_up(&self->base)) {
            qbel_error_set(&self->error, RD_KAFKA_RESP_ERR__TIMED_OUT,
                           "kafka: closing past the exit timeout with %d messages unacknowledged "
                           "(their batch goes to the spool)",
                           rd_kafka_outq_len(self->producer));
            return -1;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        long waited_ms = (long)(now.tv_sec - start.tv_sec) * 1000 +
                         (now.tv_nsec - start.tv_nsec) / 1000000;
        long slice_ms = budget_ms - waited_ms;
        if (slice_ms > KAFKA_WAIT_SLICE_MS) {
            slice_ms = KAFKA_WAIT_SLICE_MS;
        }
        if (rd_kafka_flush(self->producer, slice_ms > 0 ? (int)slice_ms : 0) ==
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            return 0;
        }
        if (slice_ms <= 0) {
            qbel_error_set(&self->error, RD_KAFKA_RESP_ERR__TIMED_OUT,
                           "kafka: no delivery report within %d ms", budget_ms);
            return -1;
        }
    }
}

static void
reject(const event_record *record, rd_kafka_resp_err_t error, sink_rejection_callback on_rejected,
       void *context)
{
    sink_rejection rejection;
    rejection.record = record;
    snprintf(rejection.error, sizeof(rejection.error), "kafka: %s: %s", rd_kafka_err2name(error),
             rd_kafka_err2str(error));
    on_rejected(context, &rejection);
}

/* Each record whose slot failed permanently, again alone on a fresh handle
 * (a broker rejection fails its whole request; in a transaction, alone in
 * its own): rejected when it fails alone too.  SINK_OK, or
 * SINK_CONNECTION_ERROR when one failed otherwise. */
static sink_status
resend_alone(kafka_sink *self, const char *batch_id, event_record *const *records, size_t count,
             const bool *retry, sink_rejection_callback on_rejected, void *context,
             size_t *rejected)
{
    delivery_slot slot;
    retire_producer(self); /* a rejection fences the idempotent producer */
    for (size_t i = 0; i < count; i++) {
        if (!retry[i]) {
            continue;
        }
        sink_status status = kafka_connect(&self->base);
        if (status != SINK_OK || txn_begin(self) < 0) {
            return SINK_CONNECTION_ERROR;
        }
        memset(&slot, 0, sizeof(slot));
        rd_kafka_resp_err_t error = produce_one(self, batch_id, i, records[i], &slot);
        if (error == RD_KAFKA_RESP_ERR_NO_ERROR && await_reports(self) < 0) {
            retire_producer(self);
            return SINK_CONNECTION_ERROR;
        }
        if (slot.error == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (txn_commit(self) < 0) {
                return SINK_CONNECTION_ERROR;
            }
            continue;
        }
        txn_abort(self);
        qbel_error_set(&self->error, (int)slot.error, "kafka: %s rejected a message: %s",
                       self->config.topic, rd_kafka_err2name(slot.error));
        if (!is_permanent(slot.error)) {
            retire_producer(self);
            return SINK_CONNECTION_ERROR;
        }
        reject(records[i], slot.error, on_rejected, context);
        (*rejected)++;
        if (error == RD_KAFKA_RESP_ERR_NO_ERROR) {
            retire_producer(self); /* the broker rejected it: fenced again */
        }
    }
    return SINK_OK;
}

/* One pass over the batch: produce every record not in `skip` (NULL:
 * none) and wait for the reports.  A record refused before it left (larger
 * than message.max.bytes) is rejected at once and added to `skip`.  Sets
 * retry[i] for each record the broker failed permanently (*retry_count).
 * 0, or -1 when a message must be sent again (the batch goes back). */
static int
produce_pass(kafka_sink *self, const char *batch_id, event_record *const *records, size_t count,
             bool *skip, bool *retry, size_t *retry_count, sink_rejection_callback on_rejected,
             void *context, size_t *rejected)
{
    reset_slots(self, count);
    for (size_t i = 0; i < count; i++) {
        if (skip[i]) {
            continue;
        }
        rd_kafka_resp_err_t error = produce_one(self, batch_id, i, records[i], &self->slots[i]);
        if (error != RD_KAFKA_RESP_ERR_NO_ERROR && is_permanent(error)) {
            reject(records[i], error, on_rejected, context);
            self->slots[i].error = RD_KAFKA_RESP_ERR_NO_ERROR; /* settled */
            skip[i] = true;
            (*rejected)++;
        }
        else if (error != RD_KAFKA_RESP_ERR_NO_ERROR) {
            return -1;
        }
    }
    if (await_reports(self) < 0) {
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        const delivery_slot *slot = &self->slots[i];
        if (skip[i] || slot->error == RD_KAFKA_RESP_ERR_NO_ERROR) {
            continue;
        }
        if (!is_permanent(slot->error) || self->fatal) {
            qbel_error_set(&self->error, (int)slot->error, "kafka: delivery to %s failed: %s (%s)",
                           self->config.topic, rd_kafka_err2name(slot->error),
                           slot->status == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED
                               ? "possibly persisted: resent, at least once"
                               : "not persisted: resent");
            return -1;
        }
        retry[i] = true;
        (*retry_count)++;
    }
    return self->fatal ? -1 : 0;
}

static sink_status
kafka_write_batch(sink *base, const char *batch_id, event_record *const *records, size_t count,
                  sink_rejection_callback on_rejected, void *context, size_t *rejected_count_out)
{
    kafka_sink *self = (kafka_sink *)base;
    *rejected_count_out = 0;
    sink_status status = kafka_connect(base);
    if (status != SINK_OK) {
        return status;
    }
    bool *skip = qbel_calloc(count, sizeof(bool));
    bool *retry = qbel_calloc(count, sizeof(bool));
    if (reserve_slots(self, count) < 0 || skip == NULL || retry == NULL) {
        qbel_free(skip);
        qbel_free(retry);
        qbel_error_set(&self->error, QBEL_ERROR_OTHER, "kafka: out of memory for a batch");
        return SINK_SERVER_ERROR;
    }
    size_t rejected = 0, retry_count = 0;
    if (txn_begin(self) < 0) {
        status = SINK_CONNECTION_ERROR;
    }
    else if (produce_pass(self, batch_id, records, count, skip, retry, &retry_count, on_rejected,
                          context, &rejected) < 0) {
        retire_producer(self); /* an open transaction is aborted by the next handle's init */
        status = SINK_CONNECTION_ERROR;
    }
    else if (retry_count == 0) {
        status = txn_commit(self) < 0 ? SINK_CONNECTION_ERROR : SINK_OK;
    }
    else {
        /* a permanent failure of a produce request: those messages again
         * alone; in a transaction the others were aborted with them and go
         * again in one transaction of their own */
        txn_abort(self);
        status = resend_alone(self, batch_id, records, count, retry, on_rejected, context,
                              &rejected);
        if (status == SINK_OK && self->transactional) {
            for (size_t i = 0; i < count; i++) {
                skip[i] = skip[i] || retry[i];
            }
            retry_count = 0;
            memset(retry, 0, count * sizeof(bool));
            if (kafka_connect(base) != SINK_OK || txn_begin(self) < 0 ||
                produce_pass(self, batch_id, records, count, skip, retry, &retry_count,
                             on_rejected, context, &rejected) < 0 ||
                retry_count > 0 || txn_commit(self) < 0) {
                retire_producer(self);
                status = SINK_CONNECTION_ERROR;
            }
        }
    }
    qbel_free(skip);
    qbel_free(retry);
    *rejected_count_out = status == SINK_OK ? rejected : 0;
    return status;
}

static int
kafka_batch_committed(sink *base, const char *batch_id, sink_status *status_out)
{
    (void)base;
    (void)batch_id;
    *status_out = SINK_OK;
    return 0; /* at least once: nothing can tell */
}

static sink_status
kafka_housekeeping(sink *base)
{
    kafka_sink *self = (kafka_sink *)base;
    if (self->producer != NULL) {
        rd_kafka_poll(self->producer, 0);
    }
    return SINK_OK;
}

static sink_delivery
kafka_delivery(const sink *base)
{
    const kafka_sink *self = (const kafka_sink *)base;
    return self->producer != NULL ? SINK_AT_LEAST_ONCE : SINK_DELIVERY_UNKNOWN;
}

static const qbel_error *
kafka_last_error(const sink *base)
{
    return &((const kafka_sink *)base)->error;
}

static void
free_fields(kafka_sink *self)
{
    kafka_sink_config_free(&self->config);
    qbel_free(self->slots);
    qbel_free(self->envelope);
    qbel_free(self);
}

static void
kafka_free(sink *base)
{
    kafka_disconnect(base);
    free_fields((kafka_sink *)base);
}

/* Fork child: the handle's threads do not exist here; destroying it would
 * wait for them.  It is left behind (librdkafka handles are not
 * fork-safe) and the child's writer makes its own. */
static void
kafka_abandon(sink *base)
{
    ((kafka_sink *)base)->producer = NULL;
    free_fields((kafka_sink *)base);
}

static const sink_ops kafka_sink_ops = {
    .kind = "kafka",
    .connect = kafka_connect,
    .is_connected = kafka_is_connected,
    .disconnect = kafka_disconnect,
    .write_batch = kafka_write_batch,
    .batch_committed = kafka_batch_committed,
    .housekeeping = kafka_housekeeping,
    .delivery = kafka_delivery,
    .last_error = kafka_last_error,
    .free = kafka_free,
    .abandon = kafka_abandon,
};

/* ---- the factory ---------------------------------------------------------- */

static sink *
kind_make(const void *config)
{
    kafka_sink *self = qbel_calloc(1, sizeof(*self));
    if (self == NULL) {
        return NULL;
    }
    if (kafka_sink_config_copy(&self->config, config) < 0) {
        qbel_free(self);
        return NULL;
    }
    self->base.ops = &kafka_sink_ops;
    self->message_timeout_ms = 30000;
    return &self->base;
}

static int
kind_copy_config(void *target, const void *source)
{
    return kafka_sink_config_copy(target, source);
}

static void
kind_clear_config(void *config)
{
    kafka_sink_config_free(config);
}

static const sink_kind kafka_kind = {sizeof(kafka_sink_config), kind_copy_config,
                                     kind_clear_config, kind_make};

int
kafka_sink_factory(sink_factory *out, const kafka_sink_config *config)
{
    char identity[SINK_IDENTITY_MAX];
    snprintf(identity, sizeof(identity), "kafka://%s#%s",
             config->bootstrap_servers ? config->bootstrap_servers : "",
             config->topic ? config->topic : "");
    if (sink_factory_init(out, &kafka_kind, config, identity) < 0) {
        return -1;
    }
    ((kafka_sink_config *)out->config)->owner_pid = (long)getpid();
    return 0;
}

#endif /* QBEL_HAVE_RDKAFKA */
