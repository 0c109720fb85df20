"""User code that runs in the middle of a C call (a key's __eq__, a
subclass's __str__, an isoformat that mutates) must not crash the process or
corrupt the output."""

import datetime
import decimal
import json

import pytest

import querybook_eventlog as qe


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
