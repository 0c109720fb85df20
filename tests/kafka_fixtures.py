"""Kafka fixtures for tests/test_kafka_*.py and tests/test_fanout*.py (imported
by those modules; conftest.py belongs to everyone): a session broker shared
by the ordinary tests, each test on its own topic, and a function-scoped
broker for the tests that kill or restart it.  Real Tansu broker
(tests/kafka_broker.py), real librdkafka; nothing mocked."""

from __future__ import annotations

import os
import uuid

import pytest

from kafka_broker import KafkaBroker

__all__ = ["kafka", "fresh_kafka", "topic", "spool"]  # what a test module star-imports

# librdkafka settings that make recovery after an outage take seconds, as
# docs/kafka-groundwork.md recommends for tests.
FAST_RECOVERY = {
    "message.timeout.ms": 6000,
    "reconnect.backoff.ms": 50,
    "reconnect.backoff.max.ms": 500,
    "topic.metadata.refresh.interval.ms": 1000,
}


@pytest.fixture(scope="session")
def kafka():
    broker = KafkaBroker()
    broker.start()
    yield broker
    broker.cleanup()


@pytest.fixture
def fresh_kafka():
    broker = KafkaBroker()
    broker.start()
    yield broker
    broker.cleanup()


@pytest.fixture
def topic(kafka):
    name = f"t_{uuid.uuid4().hex[:16]}"
    kafka.create_topic(name, partitions=3)
    return name


@pytest.fixture
def spool(tmp_path):
    path = tmp_path / "spool"
    path.mkdir(mode=0o700)
    return str(path)


def make_logger(broker, topic_name, spool_dir, **options):
    """A KafkaEventLogger for tests: FAST_RECOVERY under `config`, short
    flush interval, connect timeout and backoff unless given."""
    from querybook_eventlog import KafkaEventLogger

    config = dict(FAST_RECOVERY)
    config.update(options.pop("config", {}))
    options.setdefault("flush_interval", 0.05)
    options.setdefault("connect_timeout", 2)
    options.setdefault("backoff_max", 0.5)
    return KafkaEventLogger(broker.bootstrap, topic_name, spool_dir=spool_dir, config=config,
                            **options)


def restart_under_a_live_logger(broker, logger, flush_timeout):
    """Events 0-49 to a one-partition topic "events", flushed; the broker
    restarted (empty: every producer and transactional id forgotten), the
    topic made again; events 50-149 (uid 1), flushed.  The stats after."""
    for seq in range(50):
        logger.log(uid=1, event_type="API", event_data={"seq": seq})
    assert logger.flush(timeout=30)
    broker.restart()
    broker.create_topic("events", partitions=1)
    for seq in range(50, 150):
        logger.log(uid=1, event_type="API", event_data={"seq": seq})
    assert logger.flush(timeout=flush_timeout)
    return logger.stats()


def in_a_forked_child(body):
    """Run body() (returns an exit status, 0 for success) in a fork()ed
    child that exits with it at once; assert it exited with 0."""
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            status = body()
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


def seqs(messages):
    """event_data["seq"] of each consumed message, in order."""
    import json

    return [json.loads(message["value"])["event_data"]["seq"] for message in messages]


def event_ids(messages):
    return [dict(message["headers"])["event_id"] for message in messages]


def dead_letters(spool_dir):
    import glob
    import json

    letters = []
    for path in glob.glob(os.path.join(spool_dir, "qbel-dead-*.jsonl")):
        with open(path) as lines:
            letters += [json.loads(line) for line in lines]
    return letters
