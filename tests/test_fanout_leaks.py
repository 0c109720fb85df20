"""The fan-out's shared encoding gives back every byte and reference it
takes: C memory through a test build's counter (tests/test_c_leaks.py
explains it; skipped in a release build unless QBEL_REQUIRE_TEST_HOOKS=1),
Python references everywhere."""

from __future__ import annotations

import gc
import logging
import sys

import pytest

from kafka_fixtures import *  # noqa: F401,F403  (the fixtures: kafka, topic, spool)
from kafka_fixtures import make_logger
from querybook_eventlog import BaseEventLogger, DBEventLogger
from querybook_eventlog._fanout import FanOutEventLogger
from test_c_leaks import assert_balanced, large_event, live, small_event  # noqa: F401


class Raising(BaseEventLogger):
    logger_name = "raising"

    def log(self, uid, event_type, event_data, timestamp=None):
        raise RuntimeError("down")


def fan_out_round(fan_out, seed):
    fan_out.log(uid=None, event_type="CLICK", event_data=large_event(seed))  # past the inline block
    for i in range(50):
        fan_out.log(None, "VIEW", small_event(seed * 1000 + i))
    fan_out.log(uid=None, event_type="VIEW", event_data={"bad": object()})  # no member encodes it
    fan_out.log(uid=None, event_type="NOPE", event_data={})  # invalid: the per-member path
    fan_out.log(uid=None, event_type="VIEW", event_data={"big": "x" * 5000})  # too big for db
    fan_out.log_api_request(None, "/datadoc/", "GET", {"q": "z" * 200, "seed": seed})
    fan_out.log_api_request(None, "/announcement/", "GET", {})  # denied by db only
    fan_out.log_api_request(None, "/datadoc/", "GET", {"bad": object()})
    fan_out.log_websocket_event(None, "/datadoc/run", [seed], {"k": large_event(seed)})


def test_fan_out_db_and_kafka_balanced(live, db, kafka, topic, spool, tmp_path,  # noqa: F811
                                       monkeypatch):
    # pytest's log capture keeps each failure report's exception, whose
    # traceback keeps the fan-out and its members (and their writers) alive
    monkeypatch.setattr(logging.getLogger("querybook_eventlog"), "propagate", False)
    seeds = iter(range(10**9))

    def fan_out_round_trip():
        members = [DBEventLogger(db.url, spool_dir=str(tmp_path / "db_spool"),
                                 flush_interval=0.05, max_event_bytes=4000),
                   make_logger(kafka, topic, spool), Raising()]
        fan_out = FanOutEventLogger(members)
        for _ in range(2):
            fan_out_round(fan_out, next(seeds))
            assert fan_out.flush(timeout=60)
        fan_out.close(timeout=10)
        del fan_out, members
        gc.collect()

    assert_balanced(live, fan_out_round_trip, repeat=3)


def test_fan_out_keeps_no_references(db, tmp_path):
    members = (DBEventLogger(db.url, spool_dir=str(tmp_path / "db_spool"), flush_interval=0.05,
                             max_event_bytes=4000), Raising())
    fan_out = FanOutEventLogger(members)
    data, bad, too_big = small_event(1), {"bad": object()}, {"big": "x" * 5000}
    fan_out_round(fan_out, 0)

    def counts():
        gc.collect()
        return [sys.getrefcount(x) for x in (data, bad, too_big, members[0], members[1])]

    def rounds(n):
        for _ in range(n):
            fan_out.log(None, "VIEW", data)
            fan_out.log(None, "VIEW", bad)
            fan_out.log(None, "VIEW", too_big)

    rounds(1)  # warm up
    before = counts()
    rounds(100)
    assert counts() == before
    assert fan_out.stats()["member_failures"] == {"db": 6 + 2 * 101, "raising": 58 + 3 * 101}
    with pytest.raises(KeyboardInterrupt):  # not an Exception: it reaches the caller

        class Interrupting(BaseEventLogger):
            logger_name = "interrupting"

            def log(self, uid, event_type, event_data, timestamp=None):
                raise KeyboardInterrupt

        FanOutEventLogger([Interrupting(), members[0]]).log(None, "VIEW", data)
    fan_out.close(timeout=10)
