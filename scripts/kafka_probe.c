/* scripts/kafka_probe.c — a small librdkafka driver that shows what the
 * system librdkafka (Debian's librdkafka-dev) does against a broker: the
 * groundwork for issue 8 (KafkaEventLogger).  Not part of the extension.
 *
 * It reads one command a line on stdin and answers with JSON lines on stdout,
 * so a script (tests/kafka/probe_scenarios.py) can kill and restart the
 * broker between commands and see what the producer reports:
 *
 *   producer KEY=VALUE ...        new producer (replaces the old); librdkafka settings
 *   produce TOPIC KEY VALUE [H=V ...]  KEY "-" = none; VALUE "@N" = N bytes of 'x'
 *   burst TOPIC KEY N             N messages "KEY-0".."KEY-<N-1>", one summary line
 *   poll MS | flush MS | outq | fatal | destroy
 *   tx_init MS | tx_begin | tx_commit MS | tx_abort MS
 *   consume TOPIC ISOLATION TIMEOUT_MS   every message from the start, up to EOF
 *   quit
 *
 * Every message gets a sequence number (its opaque) that its delivery report
 * repeats.  Build: cc -Wall -Wextra -Werror -O2 kafka_probe.c $(pkg-config
 * --cflags --libs rdkafka) -o kafka_probe (tests/kafka_broker.py does it).
 */

#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES 65536
#define SHOWN_VALUE_BYTES 80
#define MAX_HEADERS 8

typedef struct probe {
    rd_kafka_t *producer;
    long next_id;
} probe_t;

/* ---- JSON output -------------------------------------------------------- */

static void print_json_string(const char *bytes, size_t size) {
    putchar('"');
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char)bytes[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* A payload as JSON: the bytes when short, else its size only. */
static void print_payload(const char *name, const void *bytes, size_t size) {
    if (bytes == NULL) {
        printf(",\"%s\":null", name);
    } else if (size > SHOWN_VALUE_BYTES) {
        printf(",\"%s_size\":%zu", name, size);
    } else {
        printf(",\"%s\":", name);
        print_json_string(bytes, size);
    }
}

static void print_error_fields(rd_kafka_resp_err_t err) {
    printf("\"err\":\"%s\",\"code\":%d,\"reason\":", rd_kafka_err2name(err), (int)err);
    const char *reason = rd_kafka_err2str(err);
    print_json_string(reason, strlen(reason));
}

static void print_rd_error(const char *event, rd_kafka_error_t *error) {
    if (error == NULL) {
        printf("{\"event\":\"%s\",\"err\":\"NO_ERROR\"}\n", event);
        return;
    }
    printf("{\"event\":\"%s\",\"err\":\"%s\",\"fatal\":%d,\"retriable\":%d,"
           "\"txn_requires_abort\":%d,\"reason\":",
           event, rd_kafka_error_name(error), rd_kafka_error_is_fatal(error),
           rd_kafka_error_is_retriable(error), rd_kafka_error_txn_requires_abort(error));
    const char *reason = rd_kafka_error_string(error);
    print_json_string(reason, strlen(reason));
    printf("}\n");
    rd_kafka_error_destroy(error);
}

static void print_headers(rd_kafka_headers_t *headers) {
    const char *name;
    const void *value;
    size_t size;
    printf(",\"headers\":{");
    for (size_t i = 0; headers && rd_kafka_header_get_all(headers, i, &name, &value, &size) ==
                                      RD_KAFKA_RESP_ERR_NO_ERROR;
         i++) {
        if (i > 0)
            putchar(',');
        print_json_string(name, strlen(name));
        putchar(':');
        if (value == NULL)
            printf("null");
        else
            print_json_string(value, size);
    }
    putchar('}');
}

/* ---- callbacks (run on the thread that calls poll/flush: main) ----------- */

static const char *persistence_name(rd_kafka_msg_status_t status) {
    switch (status) {
    case RD_KAFKA_MSG_STATUS_NOT_PERSISTED:
        return "not_persisted";
    case RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED:
        return "possibly_persisted";
    case RD_KAFKA_MSG_STATUS_PERSISTED:
        return "persisted";
    }
    return "unknown";
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *message, void *opaque) {
    (void)rk;
    (void)opaque;
    printf("{\"event\":\"dr\",\"id\":%ld,", (long)(intptr_t)message->_private);
    print_error_fields(message->err);
    printf(",\"partition\":%d,\"offset\":%lld,\"status\":\"%s\"}\n", (int)message->partition,
           (long long)message->offset, persistence_name(rd_kafka_message_status(message)));
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    (void)opaque;
    printf("{\"event\":\"error\",");
    print_error_fields((rd_kafka_resp_err_t)err);
    printf(",\"detail\":");
    print_json_string(reason, strlen(reason));
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[512];
        rd_kafka_resp_err_t underlying = rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        printf(",\"fatal_err\":\"%s\",\"fatal_reason\":", rd_kafka_err2name(underlying));
        print_json_string(fatal, strlen(fatal));
    }
    printf("}\n");
}

/* librdkafka's own log lines go to stderr, where the driver keeps them. */
static void on_log(const rd_kafka_t *rk, int level, const char *facility, const char *text) {
    (void)rk;
    fprintf(stderr, "rdkafka %d %s: %s\n", level, facility, text);
}

/* ---- commands ------------------------------------------------------------ */

static int set_config(rd_kafka_conf_t *conf, const char *pair) {
    char name[256];
    const char *equals = strchr(pair, '=');
    char errstr[512];
    if (equals == NULL || (size_t)(equals - pair) >= sizeof name) {
        printf("{\"event\":\"usage\",\"detail\":\"expected KEY=VALUE\"}\n");
        return -1;
    }
    memcpy(name, pair, (size_t)(equals - pair));
    name[equals - pair] = '\0';
    if (rd_kafka_conf_set(conf, name, equals + 1, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        printf("{\"event\":\"config_error\",\"detail\":");
        print_json_string(errstr, strlen(errstr));
        printf("}\n");
        return -1;
    }
    return 0;
}

static rd_kafka_t *new_client(rd_kafka_type_t type, char **pairs, int count) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    if (type == RD_KAFKA_PRODUCER)
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    for (int i = 0; i < count; i++) {
        if (set_config(conf, pairs[i]) != 0) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr); /* takes conf on success */
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        printf("{\"event\":\"new_error\",\"detail\":");
        print_json_string(errstr, strlen(errstr));
        printf("}\n");
    }
    return rk;
}

static void destroy_producer(probe_t *probe) {
    if (probe->producer == NULL)
        return;
    int left = rd_kafka_outq_len(probe->producer);
    rd_kafka_destroy(probe->producer);
    probe->producer = NULL;
    printf("{\"event\":\"destroyed\",\"outq_before\":%d}\n", left);
}

static void command_producer(probe_t *probe, char **args, int count) {
    destroy_producer(probe);
    probe->producer = new_client(RD_KAFKA_PRODUCER, args, count);
    printf("{\"event\":\"producer\",\"ok\":%s}\n", probe->producer ? "true" : "false");
}

/* A VALUE of "@N" is N bytes of 'x' (malloc'd into *owned); else the text. */
static const char *payload_of(const char *spec, size_t *size, char **owned) {
    *owned = NULL;
    if (spec[0] != '@') {
        *size = strlen(spec);
        return spec;
    }
    *size = strtoull(spec + 1, NULL, 10);
    *owned = malloc(*size ? *size : 1);
    if (*owned == NULL)
        return NULL;
    memset(*owned, 'x', *size);
    return *owned;
}

static void command_produce(probe_t *probe, char **args, int count) {
    if (count < 3) {
        printf("{\"event\":\"usage\",\"detail\":\"produce TOPIC KEY VALUE [H=V ...]\"}\n");
        return;
    }
    size_t size;
    char *owned;
    const char *value = payload_of(args[2], &size, &owned);
    if (value == NULL) {
        printf("{\"event\":\"produce\",\"err\":\"out of memory\"}\n");
        return;
    }
    rd_kafka_headers_t *headers = rd_kafka_headers_new(MAX_HEADERS);
    for (int i = 3; i < count && i < 3 + MAX_HEADERS; i++) {
        const char *equals = strchr(args[i], '=');
        if (equals != NULL)
            rd_kafka_header_add(headers, args[i], equals - args[i], equals + 1, -1);
    }
    long id = probe->next_id++;
    int has_key = strcmp(args[1], "-") != 0;
    rd_kafka_resp_err_t err = rd_kafka_producev(
        probe->producer, RD_KAFKA_V_TOPIC(args[0]), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(has_key ? args[1] : NULL, has_key ? strlen(args[1]) : 0),
        RD_KAFKA_V_VALUE((void *)value, size), RD_KAFKA_V_HEADERS(headers),
        RD_KAFKA_V_OPAQUE((void *)(intptr_t)id), RD_KAFKA_V_END);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_headers_destroy(headers); /* producev took them only on success */
    free(owned);
    printf("{\"event\":\"produce\",\"id\":%ld,", id);
    print_error_fields(err);
    printf("}\n");
}

static void command_consume(char **args, int count) {
    if (count < 3) {
        printf("{\"event\":\"usage\",\"detail\":\"consume TOPIC ISOLATION TIMEOUT_MS\"}\n");
        return;
    }
    char isolation[64], bootstrap[300];
    const char *servers = getenv("KAFKA_PROBE_BOOTSTRAP");
    snprintf(isolation, sizeof isolation, "isolation.level=%s", args[1]);
    snprintf(bootstrap, sizeof bootstrap, "bootstrap.servers=%s", servers ? servers : "");
    char *pairs[] = {bootstrap, isolation, "group.id=kafka-probe", "enable.partition.eof=true",
                     "enable.auto.commit=false", "fetch.wait.max.ms=50"};
    rd_kafka_t *consumer = new_client(RD_KAFKA_CONSUMER, pairs, 6);
    if (consumer == NULL)
        return;
    int timeout_ms = atoi(args[2]);
    rd_kafka_topic_t *topic = rd_kafka_topic_new(consumer, args[0], NULL);
    const rd_kafka_metadata_t *metadata = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(consumer, 0, topic, &metadata, timeout_ms);
    int partitions = err ? 0 : metadata->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *assignment = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(assignment, args[0], p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    if (metadata)
        rd_kafka_metadata_destroy(metadata);
    rd_kafka_topic_destroy(topic);
    rd_kafka_assign(consumer, assignment);
    rd_kafka_topic_partition_list_destroy(assignment);
    int eofs = 0, messages = 0, waited = 0;
    while (partitions > 0 && eofs < partitions && waited < timeout_ms) {
        rd_kafka_message_t *message = rd_kafka_consumer_poll(consumer, 100);
        if (message == NULL) {
            waited += 100;
            continue;
        }
        if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (message->err) {
            printf("{\"event\":\"consume_error\",");
            print_error_fields(message->err);
            printf("}\n");
        } else {
            rd_kafka_headers_t *headers = NULL;
            rd_kafka_message_headers(message, &headers);
            printf("{\"event\":\"msg\",\"partition\":%d,\"offset\":%lld", (int)message->partition,
                   (long long)message->offset);
            print_payload("key", message->key, message->key_len);
            print_payload("value", message->payload, message->len);
            print_headers(headers);
            printf("}\n");
            messages++;
        }
        rd_kafka_message_destroy(message);
    }
    printf("{\"event\":\"consumed\",\"messages\":%d,\"partitions\":%d,\"eof\":%d,", messages,
           partitions, eofs);
    print_error_fields(err);
    printf("}\n");
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
}

static void command_burst(probe_t *probe, char **args, int count) {
    if (count < 3) {
        printf("{\"event\":\"usage\",\"detail\":\"burst TOPIC KEY N\"}\n");
        return;
    }
    long total = atol(args[2]), queued = 0;
    rd_kafka_resp_err_t first_error = RD_KAFKA_RESP_ERR_NO_ERROR;
    char value[300];
    for (long i = 0; i < total; i++) {
        int size = snprintf(value, sizeof value, "%s-%ld", args[1], i);
        rd_kafka_resp_err_t err = rd_kafka_producev(
            probe->producer, RD_KAFKA_V_TOPIC(args[0]), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(args[1], strlen(args[1])), RD_KAFKA_V_VALUE(value, (size_t)size),
            RD_KAFKA_V_OPAQUE((void *)(intptr_t)probe->next_id++), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            queued++;
        else if (first_error == RD_KAFKA_RESP_ERR_NO_ERROR)
            first_error = err;
    }
    printf("{\"event\":\"burst\",\"queued\":%ld,", queued);
    print_error_fields(first_error);
    printf("}\n");
}

/* Commands that need a producer; 0 when `verb` is not one of them. */
static int producer_command(probe_t *probe, const char *verb, char **args, int count) {
    int ms = count > 0 ? atoi(args[0]) : 0;
    rd_kafka_t *rk = probe->producer;
    if (strcmp(verb, "produce") == 0) {
        command_produce(probe, args, count);
    } else if (strcmp(verb, "burst") == 0) {
        command_burst(probe, args, count);
    } else if (strcmp(verb, "poll") == 0) {
        int served = rd_kafka_poll(rk, ms);
        printf("{\"event\":\"poll\",\"served\":%d,\"outq\":%d}\n", served, rd_kafka_outq_len(rk));
    } else if (strcmp(verb, "flush") == 0) {
        rd_kafka_resp_err_t err = rd_kafka_flush(rk, ms);
        printf("{\"event\":\"flush\",");
        print_error_fields(err);
        printf(",\"outq\":%d}\n", rd_kafka_outq_len(rk));
    } else if (strcmp(verb, "outq") == 0) {
        printf("{\"event\":\"outq\",\"outq\":%d}\n", rd_kafka_outq_len(rk));
    } else if (strcmp(verb, "fatal") == 0) {
        char reason[512] = "";
        rd_kafka_resp_err_t err = rd_kafka_fatal_error(rk, reason, sizeof reason);
        printf("{\"event\":\"fatal\",\"err\":\"%s\",\"reason\":", rd_kafka_err2name(err));
        print_json_string(reason, strlen(reason));
        printf("}\n");
    } else if (strcmp(verb, "tx_init") == 0) {
        print_rd_error("tx_init", rd_kafka_init_transactions(rk, ms));
    } else if (strcmp(verb, "tx_begin") == 0) {
        print_rd_error("tx_begin", rd_kafka_begin_transaction(rk));
    } else if (strcmp(verb, "tx_commit") == 0) {
        print_rd_error("tx_commit", rd_kafka_commit_transaction(rk, ms));
    } else if (strcmp(verb, "tx_abort") == 0) {
        print_rd_error("tx_abort", rd_kafka_abort_transaction(rk, ms));
    } else {
        return 0;
    }
    return 1;
}

static int split_words(char *line, char **words, int max_words) {
    int count = 0;
    for (char *word = strtok(line, " \t\r\n"); word && count < max_words;
         word = strtok(NULL, " \t\r\n"))
        words[count++] = word;
    return count;
}

int main(void) {
    static char line[LINE_MAX_BYTES];
    char *words[64];
    probe_t probe = {NULL, 0};
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("{\"event\":\"ready\",\"librdkafka\":\"%s\"}\n", rd_kafka_version_str());
    while (fgets(line, sizeof line, stdin) != NULL) {
        int count = split_words(line, words, 64);
        if (count == 0)
            continue;
        const char *verb = words[0];
        if (strcmp(verb, "quit") == 0)
            break;
        if (strcmp(verb, "producer") == 0) {
            command_producer(&probe, words + 1, count - 1);
        } else if (strcmp(verb, "destroy") == 0) {
            destroy_producer(&probe);
        } else if (strcmp(verb, "consume") == 0) {
            command_consume(words + 1, count - 1);
        } else if (probe.producer == NULL) {
            printf("{\"event\":\"usage\",\"detail\":\"no producer: run 'producer' first\"}\n");
        } else if (!producer_command(&probe, verb, words + 1, count - 1)) {
            printf("{\"event\":\"usage\",\"detail\":\"unknown command\"}\n");
        }
        printf("{\"event\":\"done\"}\n");
    }
    destroy_producer(&probe);
    return 0;
}
