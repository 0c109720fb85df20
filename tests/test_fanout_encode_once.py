"""Fan-out log() validates and encodes each event once: the DB and Kafka
members queue copies of the same bytes (checked in the table and with a
real consumer), each still applies its own size limit, a closed member
never affects the other, and an invalid event is still reported by each
member."""

from __future__ import annotations

import datetime
import json

from kafka_fixtures import *  # noqa: F401,F403  (the fixtures: kafka, topic, spool)
from kafka_fixtures import make_logger
from querybook_eventlog import BaseEventLogger, DBEventLogger
from querybook_eventlog._fanout import FanOutEventLogger


class CountedDict(dict):
    """A dict subclass: the encoder calls its items(), so each call is one
    encoding of it."""

    encodings = 0

    def items(self):
        type(self).encodings += 1
        return super().items()


class Collecting(BaseEventLogger):
    logger_name = "collecting"

    def __init__(self):
        self.events = []

    def log(self, uid, event_type, event_data, timestamp=None):
        self.events.append((uid, event_type, event_data, timestamp))


def db_member(db, tmp_path, **options):
    return DBEventLogger(db.url, spool_dir=str(tmp_path / "db_spool"), flush_interval=0.05,
                         **options)


def table_rows(db):
    return [(row[0] and int(row[0]), row[1], json.loads(row[2])) for row in db.sql(
        "SELECT uid, event_type, event_data FROM event_log ORDER BY id")]


def table_json(db):
    return [row[0] for row in db.sql("SELECT event_data FROM event_log ORDER BY id")]


def envelopes(kafka, topic, expected):
    return [json.loads(m["value"]) for m in kafka.consume_all(topic, expected=expected)]


def test_each_event_encoded_once_and_both_members_get_the_same(db, kafka, topic, spool,
                                                               tmp_path):
    db.add_users(3)
    CountedDict.encodings = 0
    plugin = Collecting()
    fan_out = FanOutEventLogger([db_member(db, tmp_path), make_logger(kafka, topic, spool),
                                 plugin])
    sent = [CountedDict(seq=seq, text="é\u2028\"x\"", nested={"f": seq / 3, "l": [1, None]})
            for seq in range(50)]
    for seq, data in enumerate(sent):
        fan_out.log(uid=seq % 3 + 1, event_type="VIEW", event_data=data,
                    timestamp=1_700_000_000_000 + seq * 1000)
    assert CountedDict.encodings == 50  # one encoding per event for two writer-backed members
    assert fan_out.flush(timeout=60)
    rows = table_rows(db)
    values = sorted((m["value"].decode() for m in kafka.consume_all(topic, expected=50)),
                    key=lambda value: json.loads(value)["event_data"]["seq"])
    # the very same bytes: the envelope ends with the row's event_data text
    assert [value.endswith(f',"event_data":{text}}}') for value, text in zip(
        values, table_json(db))] == [True] * 50
    messages = [json.loads(value) for value in values]
    assert len(rows) == len(messages) == 50
    for (uid, event_type, data), envelope, original in zip(rows, messages, sent):
        assert (uid, event_type, data) == (envelope["uid"], envelope["event_type"],
                                           envelope["event_data"])
        assert data == dict(original)
        assert envelope["created_at"].startswith("2023-11-14T22:")
    # the plugin got the Python objects as passed
    assert [event[2] for event in plugin.events] == sent
    assert all(event[1] == "VIEW" and event[3] is not None for event in plugin.events)
    assert fan_out.stats()["member_failures"] == {"db": 0, "kafka": 0, "collecting": 0}
    fan_out.close(timeout=10)


def test_a_closed_member_never_affects_the_other(db, kafka, topic, spool, tmp_path):
    db.add_users(1)
    db_logger = db_member(db, tmp_path)
    kafka_logger = make_logger(kafka, topic, spool)
    fan_out = FanOutEventLogger([db_logger, kafka_logger])
    fan_out.log(uid=1, event_type="CLICK", event_data={"seq": 0})
    db_logger.close(timeout=10)
    for seq in range(1, 20):
        fan_out.log(uid=1, event_type="CLICK", event_data={"seq": seq})
    assert kafka_logger.flush(timeout=60)
    assert sorted(e["event_data"]["seq"] for e in envelopes(kafka, topic, 20)) == list(range(20))
    assert [row[2]["seq"] for row in table_rows(db)] == [0]
    assert fan_out.stats()["member_failures"] == {"db": 19, "kafka": 0}
    kafka_logger.close(timeout=10)
    # and the other way round: the first member closed, the second still writes
    other = FanOutEventLogger([kafka_logger, db_member(db, tmp_path / "2")])
    other.log(uid=1, event_type="CLICK", event_data={"seq": 100})
    assert other.flush(timeout=60)
    assert [row[2]["seq"] for row in table_rows(db)] == [0, 100]
    assert other.stats()["member_failures"] == {"kafka": 1, "db": 0}
    other.close(timeout=10)


def test_each_member_keeps_its_own_size_limit(db, kafka, topic, spool, tmp_path):
    db.add_users(1)
    fan_out = FanOutEventLogger([db_member(db, tmp_path, max_event_bytes=100),
                                 make_logger(kafka, topic, spool)])
    fan_out.log(uid=1, event_type="API", event_data={"big": "x" * 500})
    fan_out.log(uid=1, event_type="API", event_data={"small": 1})
    assert fan_out.flush(timeout=60)
    assert [row[2] for row in table_rows(db)] == [{"small": 1}]
    assert [e["event_data"] for e in envelopes(kafka, topic, 2)] in (
        [{"big": "x" * 500}, {"small": 1}], [{"small": 1}, {"big": "x" * 500}])
    assert fan_out.stats()["member_failures"] == {"db": 1, "kafka": 0}
    fan_out.close(timeout=10)


def test_a_bad_event_is_reported_by_every_member_and_nothing_is_queued(db, tmp_path):
    plugin = Collecting()
    fan_out = FanOutEventLogger([db_member(db, tmp_path), plugin])
    fan_out.log(uid=1, event_type="NOPE", event_data={})  # invalid for the builtin member
    fan_out.log(uid=None, event_type="VIEW", event_data={"bad": object()})  # not encodable
    assert fan_out.flush(timeout=30)
    assert table_rows(db) == []
    assert [event[1] for event in plugin.events] == ["NOPE", "VIEW"]  # plugins decide for themselves
    assert fan_out.stats()["member_failures"] == {"db": 2, "collecting": 0}
    fan_out.close(timeout=10)


class CountedDate(datetime.date):
    """The encoder calls a date subclass's isoformat(): one call, one encoding."""

    encodings = 0

    def isoformat(self):
        type(self).encodings += 1
        return super().isoformat()


def test_api_requests_and_websocket_events_encoded_once_with_each_members_rules(
        db, kafka, topic, spool, tmp_path):
    db.add_users(1)
    plugin = Collecting()
    fan_out = FanOutEventLogger([db_member(db, tmp_path), make_logger(kafka, topic, spool),
                                 plugin])
    CountedDate.encodings = 0
    day = CountedDate(2024, 5, 6)
    fan_out.log_api_request(uid=1, route="/datadoc/", method="GET",
                            params={"day": day, "q": "x" * 200})
    # the DB logger denies this route (upstream's list), Kafka does not
    fan_out.log_api_request(uid=1, route="/announcement/", method="GET", params={"day": day})
    fan_out.log_websocket_event(uid=1, route="/datadoc/run", args=[day], kwargs={"k": 1})
    assert CountedDate.encodings == 3  # once per event, however many members wrote it
    assert fan_out.flush(timeout=60)
    expected_api = {"method": "GET", "route": "/datadoc/",
                    "params": {"day": "2024-05-06", "q": "x" * 128 + "..."}}
    expected_ws = {"route": "/datadoc/run", "args": ["2024-05-06"], "kwargs": {"k": 1}}
    assert [row[1:] for row in table_rows(db)] == [("API", expected_api),
                                                   ("WEBSOCKET", expected_ws)]
    messages = envelopes(kafka, topic, 3)
    assert sorted((e["event_type"], e["event_data"]["route"]) for e in messages) == [
        ("API", "/announcement/"), ("API", "/datadoc/"), ("WEBSOCKET", "/datadoc/run")]
    assert [e["event_data"] for e in messages if e["event_data"]["route"] == "/datadoc/"] == [
        expected_api]
    # the plugin's own log() got the built event_data (as its own log_api_request would)
    assert [(str(event[1]), event[2]["route"]) for event in plugin.events] == [
        ("EventType.API", "/datadoc/"), ("EventType.API", "/announcement/"),
        ("EventType.WEBSOCKET", "/datadoc/run")]
    assert fan_out.stats()["member_failures"] == {"db": 0, "kafka": 0, "collecting": 0}
    fan_out.close(timeout=10)


class OwnApiRequests(BaseEventLogger):
    logger_name = "own"

    def __init__(self):
        self.calls = []

    def log(self, uid, event_type, event_data, timestamp=None):
        raise AssertionError("not called: log_api_request is overridden")

    def log_api_request(self, uid, route, method, params):
        self.calls.append((uid, route, method, params))
        if route == "/fail/":
            raise RuntimeError("own failure")


def test_a_member_overriding_log_api_request_gets_the_arguments(db, tmp_path):
    own = OwnApiRequests()
    fan_out = FanOutEventLogger([own, db_member(db, tmp_path)])
    params = {"a": "y" * 300}
    fan_out.log_api_request(uid=None, route="/fail/", method="POST", params=params)
    fan_out.log_api_request(uid=None, route="/ok/", method="GET", params=params)
    assert own.calls == [(None, "/fail/", "POST", params), (None, "/ok/", "GET", params)]
    assert own.calls[0][3] is params  # not pruned: the member's own method does that
    assert fan_out.flush(timeout=30)
    assert [row[2]["route"] for row in table_rows(db)] == ["/fail/", "/ok/"]
    assert fan_out.stats()["member_failures"] == {"own": 1, "db": 0}
    fan_out.close(timeout=10)


def test_user_code_logging_the_same_object_while_it_is_encoded(db, tmp_path):
    """A date subclass whose isoformat() logs the event that holds it to
    another logger, while the fan-out's shared encoding of it is under way:
    that logger encodes on its own (its row says "inner"), and the fan-out's
    members share the outer encoding ("outer")."""
    db.add_users(1)
    side_logger = db_member(db, tmp_path / "side")
    nested = []

    class Reentrant(datetime.date):
        def isoformat(self):
            if nested:
                return "inner"
            nested.append(True)
            side_logger.log(uid=1, event_type="VIEW", event_data=event)
            return "outer"

    event = {"day": Reentrant(2024, 1, 2), "tail": "t" * 3000}  # past the inline block
    fan_out = FanOutEventLogger([db_member(db, tmp_path), make_logger_for_db_only(db, tmp_path)])
    fan_out.log(uid=1, event_type="VIEW", event_data=event)
    assert fan_out.flush(timeout=30) and side_logger.flush(timeout=30)
    assert sorted(row[2]["day"] for row in table_rows(db)) == ["inner", "outer", "outer"]
    assert all(row[2]["tail"] == "t" * 3000 for row in table_rows(db))
    fan_out.close(timeout=10)
    side_logger.close(timeout=10)


def make_logger_for_db_only(db, tmp_path):
    return db_member(db, tmp_path / "second")
