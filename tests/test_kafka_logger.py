"""KafkaEventLogger against a real broker (Tansu, tests/kafka_broker.py),
checked with a real confluent-kafka consumer: delivery, the message format,
order per key, settings, dead letters, outages, the fatal producer error,
fork."""

from __future__ import annotations

import json
import os

import pytest

from kafka_fixtures import *  # noqa: F401,F403  (the fixtures: kafka, fresh_kafka, topic, spool)
from kafka_fixtures import (FAST_RECOVERY, dead_letters, event_ids, in_a_forked_child,
                            make_logger, restart_under_a_live_logger, seqs)
from conftest import running_under_asan
from querybook_eventlog import KafkaEventLogger


def test_every_event_delivered_once_in_order_per_key(kafka, topic, spool):
    logger = make_logger(kafka, topic, spool, batch_size=97)
    for seq in range(600):
        logger.log(uid=seq % 7 + 1, event_type="VIEW", event_data={"seq": seq, "s": "é" * (seq % 5)})
    logger.log(uid=None, event_type="CLICK", event_data=None)
    assert logger.flush(timeout=60)
    stats = logger.stats()
    assert stats["written"] == 601 and stats["enqueued"] == 601 and stats["dead_lettered"] == 0
    messages = kafka.consume_all(topic, expected=601)
    assert len(messages) == 601
    assert len(set(event_ids(messages))) == 601  # a unique id per event
    keyless = [m for m in messages if m["key"] is None]
    assert len(keyless) == 1
    assert json.loads(keyless[0]["value"]) == {
        "created_at": json.loads(keyless[0]["value"])["created_at"], "uid": None,
        "event_type": "CLICK", "event_data": None}
    keyed = [m for m in messages if m["key"] is not None]
    assert sorted(seqs(keyed)) == list(range(600))
    for message in keyed:
        envelope = json.loads(message["value"])
        assert message["key"] == str(envelope["uid"]).encode()
        assert envelope["event_type"] == "VIEW" and envelope["created_at"].endswith("+00:00")
        assert envelope["event_data"]["s"] == "é" * (envelope["event_data"]["seq"] % 5)
    per_key = {}
    for message in keyed:  # consume_all returns each partition in offset order
        per_key.setdefault(message["key"], []).append(message)
    for key, in_key in per_key.items():
        assert seqs(in_key) == sorted(seqs(in_key)), key
        assert len({m["partition"] for m in in_key}) == 1, key
    logger.close()
    assert logger.closed
    with pytest.raises(ValueError, match="closed"):
        logger.log(uid=1, event_type="API", event_data={})


def test_key_none_sends_no_key(kafka, topic, spool):
    with make_logger(kafka, topic, spool, key=None) as logger:
        for seq in range(30):
            logger.log(uid=5, event_type="API", event_data={"seq": seq})
        assert logger.flush(timeout=30)
    messages = kafka.consume_all(topic, expected=30)
    assert sorted(seqs(messages)) == list(range(30))
    assert all(message["key"] is None for message in messages)


def test_constructing_never_connects_and_bad_arguments_raise(spool):
    # nothing listens on port 1: constructing and flushing an unused logger
    # must not notice
    logger = KafkaEventLogger("127.0.0.1:1", "t", spool_dir=spool)
    assert logger.logger_name == "kafka"
    assert logger.flush(timeout=0) is True
    stats = logger.stats()
    assert stats["enqueued"] == 0 and stats["producers"] == 0
    assert stats["producer_replacements"] == 0 and stats["last_producer_error"] is None
    assert "kafka://127.0.0.1:1#t" in repr(logger)
    logger.close()
    with pytest.raises(ValueError, match="no.such.property"):
        KafkaEventLogger("127.0.0.1:1", config={"no.such.property": 1})
    with pytest.raises(ValueError, match="acks"):
        KafkaEventLogger("127.0.0.1:1", config={"acks": "sometimes"})
    with pytest.raises(TypeError, match="config"):
        KafkaEventLogger("127.0.0.1:1", config=[("acks", "all")])
    with pytest.raises(TypeError):
        KafkaEventLogger("127.0.0.1:1", config={"acks": ["all"]})
    with pytest.raises(ValueError, match="key"):
        KafkaEventLogger("127.0.0.1:1", key="user")
    with pytest.raises(ValueError, match="batch_size"):
        KafkaEventLogger("127.0.0.1:1", batch_size=0)


def test_settings_from_the_environment_on_first_use(kafka, topic, spool, monkeypatch):
    monkeypatch.setenv("EVENT_LOGGER_KAFKA_BOOTSTRAP_SERVERS", kafka.bootstrap)
    monkeypatch.setenv("EVENT_LOGGER_KAFKA_TOPIC", topic)
    monkeypatch.setenv("EVENT_LOGGER_KAFKA_CONFIG", json.dumps(FAST_RECOVERY))
    logger = KafkaEventLogger(spool_dir=spool, flush_interval=0.05)
    logger.log(uid=3, event_type="API", event_data={"seq": 0})
    assert logger.flush(timeout=30)
    assert kafka.bootstrap in repr(logger) and topic in repr(logger)
    assert seqs(kafka.consume_all(topic, expected=1)) == [0]
    logger.close()

    monkeypatch.setenv("EVENT_LOGGER_KAFKA_CONFIG", "[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        KafkaEventLogger(spool_dir=spool).log(uid=1, event_type="API", event_data={})
    monkeypatch.delenv("EVENT_LOGGER_KAFKA_BOOTSTRAP_SERVERS")
    with pytest.raises(RuntimeError, match="EVENT_LOGGER_KAFKA_BOOTSTRAP_SERVERS"):
        KafkaEventLogger(spool_dir=spool).log(uid=1, event_type="API", event_data={})


def test_a_message_too_large_is_a_dead_letter_and_the_rest_arrive(kafka, topic, spool):
    logger = make_logger(kafka, topic, spool, config={"message.max.bytes": 10000})
    for seq in range(40):
        data = {"seq": seq, "blob": "x" * (20000 if seq in (7, 30) else 10)}
        logger.log(uid=seq % 3 + 1, event_type="API", event_data=data)
    assert logger.flush(timeout=30)
    stats = logger.stats()
    assert stats["dead_lettered"] == 2 and stats["written"] == 38
    assert sorted(seqs(kafka.consume_all(topic, expected=38))) == [
        s for s in range(40) if s not in (7, 30)]
    letters = dead_letters(spool)
    assert sorted(letter["event_data"]["seq"] for letter in letters) == [7, 30]
    assert all("MSG_SIZE_TOO_LARGE" in letter["reason"] for letter in letters)
    logger.close()


def test_a_record_the_broker_rejects_is_a_dead_letter_alone(tmp_path, spool):
    """The broker's schema rejects uid > 1000 with INVALID_RECORD, which fails
    the whole produce request: only the bad records may become dead letters."""
    from kafka_broker import KafkaBroker

    schema = {"type": "object", "properties": {
        "value": {"type": "object", "properties": {"uid": {"maximum": 1000}}}}}
    with KafkaBroker(schemas={"strict": schema}) as broker:
        broker.create_topic("strict", partitions=1)
        logger = make_logger(broker, "strict", spool, batch_size=50)
        bad = {5, 23}
        for seq in range(30):
            logger.log(uid=5000 if seq in bad else seq + 1, event_type="API",
                       event_data={"seq": seq})
        assert logger.flush(timeout=60)
        stats = logger.stats()
        assert stats["dead_lettered"] == 2, stats
        assert "INVALID_RECORD" in stats["last_producer_error"], stats  # a fenced handle retired
        letters = dead_letters(spool)
        assert sorted(letter["event_data"]["seq"] for letter in letters) == sorted(bad)
        assert all("INVALID_RECORD" in letter["reason"] for letter in letters)
        delivered = seqs(broker.consume_all("strict", expected=28))
        # at least once: the good records of a rejected request may arrive twice
        assert set(delivered) == set(range(30)) - bad
        logger.close()


def test_broker_killed_mid_stream_spools_then_replays(fresh_kafka, spool):
    broker = fresh_kafka
    broker.create_topic("events", partitions=3)
    logger = make_logger(broker, "events", spool, batch_size=100)
    for seq in range(200):
        logger.log(uid=seq % 5 + 1, event_type="API", event_data={"seq": seq})
    assert logger.flush(timeout=30)
    assert sorted(seqs(broker.consume_all("events", expected=200))) == list(range(200))
    broker.kill()
    for seq in range(200, 700):
        logger.log(uid=seq % 5 + 1, event_type="API", event_data={"seq": seq})
    assert not logger.flush(timeout=3)  # nothing can be acknowledged now
    broker.restart()  # an empty broker: what was acked before the kill is gone
    broker.create_topic("events", partitions=3)
    assert logger.flush(timeout=90)
    stats = logger.stats()
    delivered = seqs(broker.consume_all("events", expected=500))
    # none lost; duplicates allowed only as at-least-once resends (same event id)
    assert set(range(200, 700)) <= set(delivered)
    assert stats["retries"] >= 1 and stats["reconnects"] >= 1
    assert stats["dropped"] == 0 and stats["dead_lettered"] == 0
    logger.close()


def test_restart_under_a_live_producer_makes_a_new_one(fresh_kafka, spool):
    """A restart forgets the producer id: the old idempotent handle can never
    deliver again (UNKNOWN_PRODUCER_ID / timeouts); the logger replaces it."""
    broker = fresh_kafka
    broker.create_topic("events", partitions=1)
    logger = make_logger(broker, "events", spool, batch_size=50)
    stats = restart_under_a_live_logger(broker, logger, flush_timeout=90)
    assert stats["reconnects"] >= 1 and stats["retries"] >= 1, stats
    # the old handle was retired with its error, which stays in stats()
    assert stats["producer_replacements"] >= 1 and stats["producers"] >= 2, stats
    assert stats["last_producer_error"].startswith("kafka:"), stats
    assert stats["last_producer_error_at"] > 0 and stats["last_error"] is None, stats
    delivered = seqs(broker.consume_all("events", expected=100))
    assert set(range(50, 150)) <= set(delivered)
    ordered = []
    for seq in delivered:  # one key, one partition: in order, resends aside
        if seq not in ordered:
            ordered.append(seq)
    assert ordered == sorted(ordered)
    logger.close()


@pytest.mark.filterwarnings(  # the point of the test: the writer's and librdkafka's threads
    "ignore:This process .* is multi-threaded, use of fork:DeprecationWarning")
def test_a_forked_child_logs_through_its_own_producer(kafka, topic, spool):
    if running_under_asan():  # see ALLOWED_SKIPS in conftest.py
        pytest.skip("libasan's false report in a forked child's librdkafka thread")
    logger = make_logger(kafka, topic, spool)
    logger.log(uid=1, event_type="API", event_data={"seq": 0, "who": "parent"})
    assert logger.flush(timeout=30)

    def child():
        for seq in range(1, 21):
            logger.log(uid=2, event_type="API", event_data={"seq": seq, "who": "child"})
        status = 0 if logger.flush(timeout=30) else 2
        logger.close()
        return status

    in_a_forked_child(child)
    logger.log(uid=1, event_type="API", event_data={"seq": 21, "who": "parent"})
    assert logger.flush(timeout=30)
    messages = kafka.consume_all(topic, expected=22)
    assert sorted(seqs(messages)) == list(range(22))
    logger.close()


def test_what_a_closed_logger_spooled_is_sent_by_the_next_one(fresh_kafka, spool):
    broker = fresh_kafka
    broker.create_topic("events", partitions=3)
    bootstrap = broker.bootstrap
    broker.kill()
    first = make_logger(broker, "events", spool, connect_timeout=0.5)
    for seq in range(300):
        first.log(uid=seq % 4 + 1, event_type="WEBSOCKET", event_data={"seq": seq})
    first.close(timeout=0)  # nothing acknowledged: everything to the spool
    assert first.stats()["written"] == 0
    broker.restart()
    broker.create_topic("events", partitions=3)
    assert broker.bootstrap == bootstrap
    second = make_logger(broker, "events", spool)  # same target: it adopts the spool
    second.log(uid=1, event_type="API", event_data={"seq": 300})
    assert second.flush(timeout=60)
    delivered = seqs(broker.consume_all("events", expected=301))
    assert set(delivered) == set(range(301))
    assert second.stats()["replayed"] >= 300
    second.close()


def _paused_mid_stream(broker, logger, first, last):
    """Pause the broker (SIGSTOP: connections stay open, nothing answered)
    and log events first..last-1, so that a batch waits for its delivery
    reports when the logger closes."""
    broker.pause()
    for seq in range(first, last):
        logger.log(uid=seq % 5 + 1, event_type="API", event_data={"seq": seq})
    assert not logger.flush(timeout=0.5)  # in flight: nothing can be acknowledged


def _replayed_by_the_next_logger(broker, spool, expected):
    second = make_logger(broker, "events", spool)
    second.log(uid=1, event_type="API", event_data={"seq": expected})
    assert second.flush(timeout=90)
    messages = broker.consume_all("events", expected=expected + 1)
    # none missing: every event once at least (a purged in-flight message
    # may have reached the broker too: at least once, with the same event_id)
    assert set(seqs(messages)) == set(range(expected + 1))
    ids_per_seq = {}
    for seq, event_id in zip(seqs(messages), event_ids(messages)):
        ids_per_seq.setdefault(seq, set()).add(event_id)
    assert all(len(ids) == 1 for ids in ids_per_seq.values()), ids_per_seq
    assert second.stats()["dropped"] == 0
    second.close()


def test_close_with_the_broker_paused_returns_within_its_timeout(fresh_kafka, spool):
    """message.timeout.ms is 30 s here: the writer thread would wait 35 s
    for delivery reports.  close(timeout=1) makes the sink give up, purge
    and destroy its producer, and the in-flight batch goes to the spool."""
    import time

    broker = fresh_kafka
    broker.create_topic("events", partitions=3)
    logger = make_logger(broker, "events", spool, batch_size=100,
                         config={"message.timeout.ms": 30000})
    for seq in range(50):
        logger.log(uid=seq % 5 + 1, event_type="API", event_data={"seq": seq})
    assert logger.flush(timeout=30)
    _paused_mid_stream(broker, logger, 50, 350)
    started = time.monotonic()
    logger.close(timeout=1)
    took = time.monotonic() - started
    stats = logger.stats()
    broker.resume()
    assert took < 10, took  # a correctness bound, not a benchmark
    # the thread gave up its wait and handed the batch back (not left
    # behind, detached, still waiting)
    assert "closing past the exit timeout" in (stats["last_error"] or ""), stats
    assert stats["dropped"] == 0 and stats["written"] == 50, stats
    assert stats["spooled"] >= 300 - 100, stats  # the batch and the queue behind it
    _replayed_by_the_next_logger(broker, spool, 350)


EXIT_CHILD = r"""
import atexit, json, sys
from querybook_eventlog import KafkaEventLogger
bootstrap, spool, config = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
# registered before the logger's own exit hook, so it runs after it
atexit.register(lambda: print(json.dumps(logger.stats()), flush=True))
logger = KafkaEventLogger(bootstrap, "events", spool_dir=spool, config=config, exit_timeout=1,
                          flush_interval=0.05, connect_timeout=2, batch_size=100)
for seq in range(50):
    logger.log(uid=seq % 5 + 1, event_type="API", event_data={"seq": seq})
assert logger.flush(timeout=30)
print("ready", flush=True)
sys.stdin.readline()  # the broker is paused now
for seq in range(50, 350):
    logger.log(uid=seq % 5 + 1, event_type="API", event_data={"seq": seq})
assert not logger.flush(timeout=0.5)
print("exiting", flush=True)
"""


def test_interpreter_exit_with_the_broker_paused_is_bounded_by_exit_timeout(fresh_kafka,
                                                                           spool):
    import subprocess
    import sys
    import time

    broker = fresh_kafka
    broker.create_topic("events", partitions=3)
    config = dict(FAST_RECOVERY, **{"message.timeout.ms": 30000})
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": repo}
    child = subprocess.Popen(
        [sys.executable, "-c", EXIT_CHILD, broker.bootstrap, spool, json.dumps(config)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "ready"
        broker.pause()
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "exiting"
        started = time.monotonic()
        output, _ = child.communicate(timeout=60)
        took = time.monotonic() - started
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        broker.resume()
    assert child.returncode == 0
    assert took < 10, took  # a correctness bound, not a benchmark
    stats = json.loads(output.strip().splitlines()[-1])
    assert "closing past the exit timeout" in (stats["last_error"] or ""), stats
    assert stats["dropped"] == 0 and stats["written"] == 50, stats
    _replayed_by_the_next_logger(broker, spool, 350)
