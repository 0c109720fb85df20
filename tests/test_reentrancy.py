"""User code that runs in the middle of a C call (a key's __eq__, a
subclass's __str__, an isoformat that mutates) must not crash the process or
corrupt the output."""

import datetime
import decimal
import enum
import io
import json

import pytest

import querybook_eventlog as qe
from querybook_eventlog import _core


class ClearingKey:
    """A key equal to nothing whose __eq__ empties and refills its dict."""

    armed = False

    def __init__(self, rule):
        self.rule = rule

    def __hash__(self):
        return hash("route")

    def __eq__(self, other):
        if ClearingKey.armed:
            ClearingKey.armed = False
            self.rule.clear()
            self.rule["route"] = "/a"
            self.rule["method"] = "*"
            for i in range(1000):  # reuse the memory of what was freed
                "".join(["zz", str(i)])
        return False


class HostileRules(qe.BaseEventLogger):
    def __init__(self):
        self.logged = 0

    logger_name = "hostile"

    def log(self, uid, event_type, event_data, timestamp=None):
        self.logged += 1

    @property
    def _api_allow_list(self):
        rule = {}
        rule[ClearingKey(rule)] = 1
        rule["type"] = "".join(["pre", "fix"])  # owned by the dict alone
        rule["route"] = "/a"
        rule["method"] = "*"
        ClearingKey.armed = True
        return [rule]


def test_rule_dict_emptied_during_lookup_does_not_crash():
    logger = HostileRules()
    for _ in range(20):
        logger.log_api_request(1, "/abc", "GET", {})
    assert logger.logged == 20  # "prefix" rule on "/a" matched each time


def test_decimal_subclass_str_cannot_forge_json():
    class Forged(decimal.Decimal):
        def __str__(self):
            return '1,"uid":999\n'

    out = qe.dumps({"a": Forged(1), "b": decimal.Decimal("1E+2"), "c": decimal.Decimal("-0.50")})
    assert out == b'{"a":1,"b":1E+2,"c":-0.50}'
    assert json.loads(out) == {"a": 1, "b": 100, "c": -0.5}


def test_dict_growing_during_encoding_raises_like_json():
    target = {}

    class Mutating(datetime.date):
        def isoformat(self):
            target["late"] = 1
            return "2020-01-01"

    target["when"] = Mutating(2020, 1, 1)
    with pytest.raises(RuntimeError, match="changed size"):
        qe.dumps(target)


def test_console_stream_that_logs_recursively(tmp_path):
    lines = []

    class Reentrant:
        depth = 0

        def write(self, text):
            lines.append(text)
            if Reentrant.depth < 3:
                Reentrant.depth += 1
                console.log(uid=1, event_type="VIEW", event_data={"depth": Reentrant.depth})

    console = qe.ConsoleEventLogger(stream=Reentrant(), color=False)
    console.log(uid=1, event_type="VIEW", event_data={"depth": 0})
    assert len(lines) == 4
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)


def test_console_stream_write_raising_propagates():
    class Broken:
        def write(self, text):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        qe.ConsoleEventLogger(stream=Broken()).log(uid=1, event_type="VIEW", event_data={})


# ---- the application's EventType switched from user code --------------------

def make_event_type_class():
    """A fresh Querybook-like EventType class (only the module state and the
    caller hold it)."""
    return enum.Enum("EventType", [(name, name) for name in ("API", "WEBSOCKET", "VIEW", "CLICK")])


class SwitchingLogger(qe.BaseEventLogger):
    """A plugin whose log() switches the application's EventType and drops
    every other reference to the member it was handed."""

    logger_name = "switching"

    def __init__(self):
        self.seen = []

    def log(self, uid, event_type, event_data, timestamp=None):
        _core._set_application_event_type(make_event_type_class())
        for _ in range(1000):
            "".join(["zz", str(_)])
        self.seen.append(event_type.value)


def test_log_switching_application_event_type_mid_call():
    logger = SwitchingLogger()
    try:
        _core._set_application_event_type(make_event_type_class())
        for _ in range(20):
            logger.log_api_request(1, "/q/", "GET", {})
            logger.log_websocket_event(1, "/ns/e", [], {})
            qe.log_client_events(logger, 1, '[{"type": "VIEW"}, {"type": "CLICK"}]')
    finally:
        _core._set_application_event_type(None)
    assert logger.seen == ["API", "WEBSOCKET", "VIEW", "CLICK"] * 20


class SwitchingKey(str):
    """An instance-dict key whose __eq__ switches the application's EventType
    while log_api_request looks for a patched log()."""

    def __hash__(self):
        return hash("log")

    def __eq__(self, other):
        _core._set_application_event_type(make_event_type_class())
        return False


def test_override_lookup_switching_application_event_type():
    stream = io.StringIO()
    logger = qe.ConsoleEventLogger(stream, format="jsonl")
    logger.__dict__[SwitchingKey("x")] = 1
    try:
        for _ in range(20):
            logger.log_api_request(1, "/q/", "GET", {})
    finally:
        _core._set_application_event_type(None)
    assert [json.loads(line)["event_type"] for line in stream.getvalue().splitlines()] == (
        ["API"] * 20)


def test_upstream_format_switching_event_type_mid_message():
    class Uid(int):
        def __format__(self, spec):
            _core._set_application_event_type(make_event_type_class())
            return "u"

    messages = []
    logger = qe.ConsoleEventLogger(logger=type("L", (), {"info": staticmethod(messages.append)}))
    first = make_event_type_class()
    try:
        _core._set_application_event_type(first)
        logger.log(Uid(1), first.CLICK, {"a": 1}, 0)
    finally:
        _core._set_application_event_type(None)
    assert messages == [
        "\x1b[33;20mConsoleEventLogger - created_at: 1970-01-01 00:00:00, uid=u, "
        "event_type=EventType.CLICK, event_data={'a': 1}\x1b[0m"
    ]


def test_instance_dict_replaced_during_lookup():
    class Replacer(str):
        def __hash__(self):
            return hash("log")

        def __eq__(self, other):
            logger.__dict__ = {}
            return False

    stream = io.StringIO()
    logger = qe.ConsoleEventLogger(stream, format="jsonl")
    logger.__dict__[Replacer("x")] = 1
    logger.log_api_request(1, "/q/", "GET", {})
    assert json.loads(stream.getvalue())["event_type"] == "API"
