/* Checks of the pure-C internals that Python cannot reach: allocation
 * failure in the byte buffer and event records, size overflow, and the UTC
 * calendar arithmetic across its whole range.  Built with -DQBEL_TEST_HOOKS and
 * csrc/qbel_alloc.c: the test build's allocator fails the Nth allocation on
 * demand (the chaos allocator) and counts live blocks, which must be back to
 * zero after every check.  Run by tests/test_c_internals.py. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../csrc/byte_buffer.h"
#include "../../csrc/event_record.h"
#include "../../csrc/qbel_alloc.h"
#include "../../csrc/qbel_error.h"
#include "../../csrc/sink.h"

static int failures = 0;
#define CHECK(condition)                                                        \
    do {                                                                        \
        if (!(condition)) {                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #condition); \
            failures++;                                                         \
        }                                                                       \
    } while (0)

static void
test_buffer_inline_then_heap(void)
{
    char inline_block[8];
    byte_buffer buffer;
    byte_buffer_init(&buffer, inline_block, sizeof inline_block);
    CHECK(byte_buffer_append(&buffer, "1234567", 7) == 0);
    CHECK(buffer.data == inline_block);
    CHECK(byte_buffer_append(&buffer, "89", 2) == 0);
    CHECK(buffer.data != inline_block && !buffer.data_is_inline);
    CHECK(buffer.length == 9 && memcmp(buffer.data, "123456789", 9) == 0);
    for (int i = 0; i < 10000; i++) {
        CHECK(byte_buffer_append_char(&buffer, (char)('a' + i % 26)) == 0);
    }
    CHECK(buffer.length == 10009 && buffer.data[10008] == 'a' + 9999 % 26);
    byte_buffer_release(&buffer);
    CHECK(buffer.data == NULL && buffer.length == 0 && buffer.capacity == 0);
}

static void
test_buffer_allocation_failure_keeps_contents(void)
{
    char inline_block[4];
    byte_buffer buffer;
    byte_buffer_init(&buffer, inline_block, sizeof inline_block);
    CHECK(byte_buffer_append(&buffer, "abc", 3) == 0);
    qbel_alloc_fail_at(1);
    CHECK(byte_buffer_append(&buffer, "defgh", 5) == -1); /* inline -> heap fails */
    CHECK(buffer.length == 3 && buffer.data == inline_block);
    CHECK(byte_buffer_append(&buffer, "defgh", 5) == 0);
    qbel_alloc_fail_at(1);
    CHECK(byte_buffer_reserve(&buffer, 1000) == -1); /* realloc fails */
    CHECK(buffer.length == 8 && memcmp(buffer.data, "abcdefgh", 8) == 0);
    qbel_alloc_fail_at(0);
    byte_buffer_release(&buffer);
}

static void
test_buffer_size_overflow(void)
{
    byte_buffer buffer;
    byte_buffer_init(&buffer, NULL, 0);
    CHECK(byte_buffer_append(&buffer, "a", 1) == 0);
    CHECK(byte_buffer_reserve(&buffer, SIZE_MAX) == -1);
    CHECK(byte_buffer_reserve(&buffer, SIZE_MAX / 2) == -1);
    CHECK(buffer.length == 1);
    byte_buffer_release(&buffer);
}

static void
test_event_record(void)
{
    qbel_alloc_fail_at(1);
    CHECK(event_record_new(0, 1, false, EVENT_TYPE_CLICK, "{}", 2) == NULL);
    CHECK(event_record_new(0, 1, false, EVENT_TYPE_CLICK, "{}", SIZE_MAX - 4) == NULL);
    event_record *record = event_record_new(5, -7, false, EVENT_TYPE_API, "{\"a\":1}", 7);
    CHECK(record != NULL && record->json[7] == '\0' && record->uid == -7);
    CHECK(event_record_footprint(record) == sizeof(event_record) + 8);
    event_record_free(record);
    CHECK(strcmp(event_type_name(EVENT_TYPE_WEBSOCKET), "WEBSOCKET") == 0);
    CHECK(event_type_name(4) == NULL && event_type_name(-1) == NULL);
    CHECK(event_type_from_name("VIEW", 4) == EVENT_TYPE_VIEW);
    CHECK(event_type_from_name("VIE", 3) == -1 && event_type_from_name("view", 4) == -1);
}

/* The calendar arithmetic must agree with gmtime_r over 1970..9999. */
static void
test_time_against_gmtime(void)
{
    const int64_t last = 253402300799LL; /* 9999-12-31 23:59:59 */
    for (int64_t seconds = 0; seconds <= last; seconds += 86399LL * 7 + 12345) {
        time_t t = (time_t)seconds;
        struct tm expected;
        gmtime_r(&t, &expected);
        event_civil_time got;
        event_time_to_civil(seconds * 1000000 + 123456, &got);
        if (got.year != expected.tm_year + 1900 || got.month != expected.tm_mon + 1 ||
            got.day != expected.tm_mday || got.hour != expected.tm_hour ||
            got.minute != expected.tm_min || got.second != expected.tm_sec ||
            got.microsecond != 123456) {
            fprintf(stderr, "time mismatch at %lld\n", (long long)seconds);
            failures++;
            break;
        }
    }
    char sql[20], iso[33];
    event_time_format_sql(1700000000123456LL, sql);
    CHECK(strcmp(sql, "2023-11-14 22:13:20") == 0);
    event_time_format_iso(1700000000123456LL, iso);
    CHECK(strcmp(iso, "2023-11-14T22:13:20.123456+00:00") == 0);
    event_time_format_sql(last * 1000000 + 999999, sql);
    CHECK(strcmp(sql, "9999-12-31 23:59:59") == 0);
    event_time_format_iso(0, iso);
    CHECK(strcmp(iso, "1970-01-01T00:00:00.000000+00:00") == 0);
    int64_t now = event_time_now_us();
    CHECK(now > 1700000000000000LL);
}

/* A sink of the smallest kind, to check the interface's contract: the
 * factory copies and frees an opaque config, and makes sinks that carry
 * it; sink_* dispatch through the ops table. */
typedef struct memory_sink {
    sink base;
    char *name; /* from the config */
    size_t written;
    qbel_error error;
} memory_sink;

static sink_status
memory_connect(sink *self)
{
    (void)self;
    return SINK_OK;
}

static bool
memory_is_connected(const sink *self)
{
    (void)self;
    return true;
}

static void
memory_disconnect(sink *self)
{
    (void)self;
}

static sink_status
memory_write_batch(sink *self, const char *batch_id, event_record *const *records, size_t count,
                   sink_rejection_callback on_rejected, void *context, size_t *rejected_out)
{
    (void)batch_id;
    (void)records;
    (void)on_rejected;
    (void)context;
    ((memory_sink *)self)->written += count;
    *rejected_out = 0;
    return SINK_OK;
}

static int
memory_batch_committed(sink *self, const char *batch_id, sink_status *status_out)
{
    (void)self;
    (void)batch_id;
    *status_out = SINK_OK;
    return 0;
}

static sink_status
memory_housekeeping(sink *self)
{
    qbel_error_set(&((memory_sink *)self)->error, 42, "housekeeping of %s", "memory");
    return SINK_SERVER_ERROR;
}

static sink_delivery
memory_delivery(const sink *self)
{
    (void)self;
    return SINK_EXACTLY_ONCE;
}

static const qbel_error *
memory_last_error(const sink *self)
{
    return &((const memory_sink *)self)->error;
}

static void
memory_free(sink *self)
{
    qbel_free(((memory_sink *)self)->name);
    qbel_free(self);
}

static const sink_ops memory_ops = {
    "memory",          memory_connect,      memory_is_connected, memory_disconnect,
    memory_write_batch, memory_batch_committed, memory_housekeeping, memory_delivery,
    memory_last_error, memory_free,         memory_free,
};

typedef struct memory_config {
    char *name;
} memory_config;

static sink *
memory_make(const void *config)
{
    memory_sink *made = qbel_calloc(1, sizeof(*made));
    if (made == NULL || (made->name = qbel_strdup(((const memory_config *)config)->name)) == NULL) {
        qbel_free(made);
        return NULL;
    }
    made->base.ops = &memory_ops;
    return &made->base;
}

static int
memory_copy_config(void *target, const void *source)
{
    memory_config *copy = target;
    copy->name = qbel_strdup(((const memory_config *)source)->name);
    return copy->name != NULL ? 0 : -1;
}

static void
memory_clear_config(void *config)
{
    qbel_free(((memory_config *)config)->name);
}

static const sink_kind memory_kind = {sizeof(memory_config), memory_copy_config,
                                      memory_clear_config, memory_make};

static void
test_sink_factory_and_dispatch(void)
{
    char name[] = "cfg";
    memory_config config = {name};
    sink_factory factory = {&memory_kind, &config, "memory://here#t"};
    sink_factory copy;
    /* every allocation of the copy failing in turn: -1, nothing held */
    for (long n = 1; n <= 3; n++) {
        qbel_alloc_fail_at(n);
        CHECK(sink_factory_copy(&copy, &factory) == -1);
        CHECK(copy.config == NULL && copy.identity == NULL);
        qbel_alloc_fail_at(0);
    }
    CHECK(sink_factory_copy(&copy, &factory) == 0);
    CHECK(copy.config != &config);
    CHECK(((memory_config *)copy.config)->name != name);
    CHECK(strcmp(((memory_config *)copy.config)->name, "cfg") == 0);
    CHECK(strcmp(sink_factory_identity(&copy), "memory://here#t") == 0);
    sink *made = sink_factory_make(&copy);
    CHECK(made != NULL && strcmp(made->ops->kind, "memory") == 0);
    size_t rejected = 1;
    CHECK(sink_connect(made) == SINK_OK && sink_is_connected(made));
    CHECK(sink_write_batch(made, "b", NULL, 3, NULL, NULL, &rejected) == SINK_OK);
    CHECK(rejected == 0 && ((memory_sink *)made)->written == 3);
    CHECK(sink_get_delivery(made) == SINK_EXACTLY_ONCE);
    CHECK(sink_housekeeping(made) == SINK_SERVER_ERROR);
    CHECK(strcmp(sink_last_error(made), "housekeeping of memory") == 0);
    CHECK(made->ops->last_error(made)->code == 42);
    sink_free(made);
    sink_factory_free(&copy);
    sink_factory_free(&copy); /* a freed factory is a zeroed one */
    CHECK(strcmp(sink_factory_identity(&copy), "") == 0 && sink_factory_make(&copy) == NULL);
}

static void
test_error_channel(void)
{
    qbel_error error;
    qbel_error_clear(&error);
    CHECK(!qbel_error_is_set(&error) && error.message[0] == '\0');
    qbel_error_set(&error, 0, "no code of its own");
    CHECK(error.code == QBEL_ERROR_OTHER && qbel_error_is_set(&error));
    char long_text[2 * QBEL_ERROR_MAX];
    memset(long_text, 'x', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    qbel_error_set(&error, 5, "%s", long_text);
    CHECK(error.code == 5 && strlen(error.message) == QBEL_ERROR_MAX - 1);
}

/* Every check must give back what it took. */
static void
run(const char *name, void (*check)(void))
{
    check();
    qbel_alloc_fail_at(0);
    long long blocks, bytes;
    qbel_alloc_live(&blocks, &bytes);
    if (blocks != 0 || bytes != 0) {
        fprintf(stderr, "%s: %lld block(s), %lld byte(s) still live\n", name, blocks, bytes);
        failures++;
    }
}

int
main(void)
{
    run("buffer_inline_then_heap", test_buffer_inline_then_heap);
    run("buffer_allocation_failure_keeps_contents", test_buffer_allocation_failure_keeps_contents);
    run("buffer_size_overflow", test_buffer_size_overflow);
    run("event_record", test_event_record);
    run("time_against_gmtime", test_time_against_gmtime);
    run("sink_factory_and_dispatch", test_sink_factory_and_dispatch);
    run("error_channel", test_error_channel);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    puts("c internals: all checks passed");
    return 0;
}
