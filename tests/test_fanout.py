"""Fan-out: EVENT_LOGGER_NAME "db,kafka" (or a yaml list) writes every event to
the MySQL table and to Kafka, through a broker restart, checked with SQL and
a real consumer; a member that fails never affects the others; plugins can be
members."""

from __future__ import annotations

import json
import logging

import pytest

from kafka_fixtures import *  # noqa: F401,F403  (the fixtures: kafka, fresh_kafka, topic, spool)
from kafka_fixtures import FAST_RECOVERY, seqs
from querybook_eventlog import BaseEventLogger, _registry, get_event_logger_class
from querybook_eventlog._fanout import FanOutEventLogger, parse_logger_names


@pytest.fixture
def fresh_registry():
    _registry._reset_for_tests()
    yield
    _registry._reset_for_tests()


def db_seqs(server):
    return sorted(int(row[0]) for row in server.sql(
        "SELECT JSON_VALUE(event_data, '$.seq') FROM event_log"))


def test_names_of_several_loggers():
    assert parse_logger_names("db") is None
    assert parse_logger_names("db,kafka") == ["db", "kafka"]
    assert parse_logger_names(" db , kafka ") == ["db", "kafka"]
    assert parse_logger_names("['db', 'kafka']") == ["db", "kafka"]  # a yaml list, str()'d
    assert parse_logger_names(["db", "console"]) == ["db", "console"]
    with pytest.raises(ValueError, match="twice"):
        parse_logger_names("db,db")
    with pytest.raises(ValueError, match="empty"):
        parse_logger_names("db,")


def test_db_and_kafka_through_a_broker_restart(db, fresh_kafka, fresh_registry, monkeypatch,
                                               tmp_path):
    broker = fresh_kafka
    broker.create_topic("events", partitions=3)
    db.add_users(5)
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    monkeypatch.setenv("QBEL_SPOOL_DIR", str(spool))
    monkeypatch.setenv("DATABASE_CONN", db.url)
    monkeypatch.setenv("EVENT_LOGGER_NAME", "db,kafka")
    monkeypatch.setenv("EVENT_LOGGER_KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap)
    monkeypatch.setenv("EVENT_LOGGER_KAFKA_TOPIC", "events")
    monkeypatch.setenv("EVENT_LOGGER_KAFKA_CONFIG", json.dumps(FAST_RECOVERY))
    logger = get_event_logger_class(_registry.configured_logger_name())
    assert isinstance(logger, FanOutEventLogger) and logger.logger_name == "db,kafka"
    assert logger is get_event_logger_class("db,kafka")
    for seq in range(100):
        logger.log(uid=seq % 5 + 1, event_type="API", event_data={"seq": seq})
    assert logger.flush(timeout=60)
    assert sorted(seqs(broker.consume_all("events", expected=100))) == list(range(100))
    broker.kill()
    for seq in range(100, 300):
        logger.log(uid=seq % 5 + 1, event_type="API", event_data={"seq": seq})
    db_member = get_event_logger_class("db")
    assert db_member.flush(timeout=60)  # the table keeps up with Kafka down
    assert db_seqs(db) == list(range(300))
    broker.restart()
    broker.create_topic("events", partitions=3)
    assert logger.flush(timeout=90)
    assert set(range(100, 300)) <= set(seqs(broker.consume_all("events", expected=200)))
    stats = logger.stats()
    assert stats["member_failures"] == {"db": 0, "kafka": 0}
    assert stats["members"]["kafka"]["reconnects"] >= 1
    assert db_seqs(db) == list(range(300))  # exactly once in the table
    logger.close(timeout=10)


class Broken(BaseEventLogger):
    logger_name = "broken"

    def log(self, uid, event_type, event_data, timestamp=None):
        raise RuntimeError("this plugin is down")


class Collecting(BaseEventLogger):
    logger_name = "collecting"

    def __init__(self):
        self.events = []

    def log(self, uid, event_type, event_data, timestamp=None):
        self.events.append((uid, str(event_type), event_data))


def test_a_failing_member_never_affects_the_others(kafka, topic, spool, caplog):
    from querybook_eventlog import KafkaEventLogger

    collecting = Collecting()
    member = KafkaEventLogger(kafka.bootstrap, topic, spool_dir=spool, config=FAST_RECOVERY,
                              flush_interval=0.05)
    fan_out = FanOutEventLogger([Broken(), member, collecting])
    with caplog.at_level(logging.ERROR, logger="querybook_eventlog"):
        for seq in range(20):
            fan_out.log(uid=1, event_type="CLICK", event_data={"seq": seq})
        fan_out.log_api_request(uid=1, route="/datadoc/", method="GET", params={"seq": 20})
    assert fan_out.flush(timeout=30)
    assert len(collecting.events) == 21  # the plugin after the broken one got every event
    envelopes = [json.loads(m["value"]) for m in kafka.consume_all(topic, expected=21)]
    assert sorted(e["event_data"]["seq"] for e in envelopes if e["event_type"] == "CLICK") == list(
        range(20))
    assert [e["event_data"]["route"] for e in envelopes if e["event_type"] == "API"] == ["/datadoc/"]
    assert fan_out.stats()["member_failures"]["broken"] == 21
    reports = [r for r in caplog.records if "broken" in r.getMessage()]
    assert len(reports) == 1  # rate-limited, not one line per event
    assert "this plugin is down" in reports[0].getMessage()
    fan_out.close()


def test_plugins_are_members_by_name(tmp_path, monkeypatch, fresh_registry):
    (tmp_path / "event_logger_plugin.py").write_text(
        "from querybook_eventlog import BaseEventLogger\n"
        "class Listy(BaseEventLogger):\n"
        "    logger_name = 'listy'\n"
        "    def __init__(self): self.events = []\n"
        "    def log(self, uid, event_type, event_data, timestamp=None):\n"
        "        self.events.append(event_data)\n"
        "ALL_PLUGIN_EVENT_LOGGERS = [Listy()]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "event_logger_plugin", raising=False)
    fan_out = get_event_logger_class(["null", "listy"])
    fan_out.log(uid=None, event_type="VIEW", event_data={"x": 1})
    assert [m.logger_name for m in fan_out.members] == ["null", "listy"]
    assert fan_out.members[1].events == [{"x": 1}]
    with pytest.raises(ValueError, match="Unknown event logger name nope"):
        get_event_logger_class("null,nope")
