"""A KafkaEventLogger closed with a short timeout while its writer thread is
stuck in a broker call leaves that thread behind (detached); the logger may
then be deallocated before the thread returns.  What the thread still
touches -- the writer, its sink's config and the producer counters the
logger's stats() read -- must outlive the logger and be freed by the thread
itself: the counters are reference counted (csrc/kafka_sink.h).

Needs a test build (QBEL_TEST_BUILD=1: _core._live_allocations; skipped
elsewhere, failed with QBEL_REQUIRE_TEST_HOOKS=1) for the exact accounting;
under the sanitizer pass (scripts/test.sh) AddressSanitizer also sees any
use of freed counters."""

from __future__ import annotations

import gc
import time

from kafka_fixtures import *  # noqa: F401,F403  (the fixtures: kafka, fresh_kafka, topic, spool)
from kafka_fixtures import FAST_RECOVERY
from querybook_eventlog import KafkaEventLogger
from test_c_leaks import live  # noqa: F401  (the fixture: _core._live_allocations, or skip)


def _stuck_then_dropped(broker, spool, topic_name):
    """Log with the broker paused (the writer thread's connect waits in a
    metadata request for connect_timeout), close(timeout=0.1), drop the
    logger.  Returns the logger's stats at close."""
    logger = KafkaEventLogger(broker.bootstrap, topic_name, spool_dir=spool,
                              config=dict(FAST_RECOVERY), flush_interval=0.05,
                              connect_timeout=4, backoff_max=0.5)
    broker.pause()
    logger.log(uid=1, event_type="API", event_data={"seq": 1})
    time.sleep(0.3)  # the thread is in rd_kafka_metadata now
    started = time.monotonic()
    logger.close(timeout=0.1)
    took = time.monotonic() - started
    stats = logger.stats()
    del logger
    gc.collect()
    assert took < 2, took  # close did not wait for the stuck thread (a bound, not a benchmark)
    return stats


def _settled(allocations, expected, seconds=20):
    deadline = time.monotonic() + seconds
    while allocations() != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return allocations()


def _one_round(broker, spool, allocations, before):
    try:
        stats = _stuck_then_dropped(broker, spool, "events")
        # the thread is still in its connect: the writer it frees at exit,
        # its sink, and the counters the logger gave up are still held
        held = allocations()
        assert held[0] > before[0], (before, held)
    finally:
        broker.resume()  # the metadata request is answered: the thread counts
        # a producer in the counters (freed memory before the fix), sees
        # the stop flag and frees everything on its way out
    assert stats["dropped"] == 0, stats


def test_a_detached_writer_thread_outlives_its_logger(live, fresh_kafka, spool):  # noqa: F811
    broker = fresh_kafka
    broker.create_topic("events", partitions=1)
    # one round to warm up process-lifetime blocks (librdkafka's, the
    # spool's descriptor list), then the count must come back exactly
    _one_round(broker, spool, live, live())
    time.sleep(6)  # the first thread's connect and spooling are over
    before = live()
    for _ in range(2):
        _one_round(broker, spool, live, before)
        assert _settled(live, before) == before, (before, live())
