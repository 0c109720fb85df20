"""Issue 8's "done when": a Querybook configured with EVENT_LOGGER_NAME
db,kafka (in querybook_config.yaml, Kafka settings there too) writes every
event to the table and to the topic, across a broker outage and restart:
the process that ran during the outage spools its Kafka events at exit, the
next one sends them.  Counted with SQL and a real consumer.  The Querybook
tree and database are tests/test_querybook_dropin.py's fixtures."""

from __future__ import annotations

import json

from kafka_fixtures import *  # noqa: F401,F403  (the fixtures: kafka, fresh_kafka, topic, spool)
from kafka_fixtures import FAST_RECOVERY, event_ids
from test_querybook_dropin import (  # noqa: F401  (module fixtures used by name)
    AUTHENTICATED_API,
    BEACON,
    SUBSCRIBE,
    adopted,
    app_config,
    assert_no_errors,
    beacon,
    events,
    original,
    qb_db,
    qb_python,
    read_rows,
)

STEPS = AUTHENTICATED_API + [SUBSCRIBE, beacon(BEACON, uid=5)]  # 6 events a run


def test_db_and_kafka_in_querybook_through_a_broker_restart(adopted, events, fresh_kafka):  # noqa: F811
    broker = fresh_kafka
    broker.create_topic("qb_events", partitions=3)
    adopted.write_config(app_config(
        events, EVENT_LOGGER_NAME="db,kafka",
        EVENT_LOGGER_KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
        EVENT_LOGGER_KAFKA_TOPIC="qb_events",
        EVENT_LOGGER_KAFKA_CONFIG=json.dumps(dict(FAST_RECOVERY, **{"message.timeout.ms": 3000}))))
    result, process = adopted.drive(STEPS, flush=30, cwd="/")
    assert result["logger_name"] == "db,kafka" and result["flushed"] is True, result
    assert_no_errors(process)
    assert len(broker.consume_all("qb_events", expected=6)) == 6
    assert len(read_rows(adopted, events.app_url)) == 6

    broker.kill()  # the second process runs while the broker is down
    result, process = adopted.drive(STEPS, cwd="/")
    assert [status for status, _ in result["responses"]][:2] == [200, 200]
    assert len(read_rows(adopted, events.app_url)) == 12  # the table did not wait for Kafka

    broker.restart()  # an empty broker: the first run's messages are gone with it
    broker.create_topic("qb_events", partitions=3)
    result, process = adopted.drive(STEPS, flush=60, cwd="/")
    assert result["flushed"] is True, result
    rows = read_rows(adopted, events.app_url)
    assert len(rows) == 18
    messages = broker.consume_all("qb_events", expected=12)
    ids = set(event_ids(messages))
    assert len(ids) == 12  # runs 2 (spooled, replayed by run 3) and 3, each event once by id
    kafka_events = sorted((json.loads(m["value"])["uid"], json.loads(m["value"])["event_type"])
                          for m in {dict(m["headers"])["event_id"]: m for m in messages}.values())
    db_events = sorted((row[0], row[1]) for row in rows[6:])
    assert kafka_events == db_events
