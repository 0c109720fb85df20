"""log() argument validation shared by every builtin logger: bad input
raises a TypeError/ValueError naming the bad value and writes nothing."""

import enum
import io
import math

import pytest

import querybook_eventlog as qe
from querybook_eventlog import EventType

MAX_MS = 253402300800000  # 10000-01-01T00:00:00Z in milliseconds


class InfoRecorder:
    """Stands in for a logging.Logger: what format='upstream' calls."""

    def __init__(self):
        self.messages = []

    def info(self, message):
        self.messages.append(message)

    def text(self):
        return "".join(self.messages)


def loggers():
    """(logger, read-what-was-written) for each builtin logger that writes or validates."""
    text, jsonl, upstream = io.StringIO(), io.StringIO(), InfoRecorder()
    return [
        (qe.NullEventLogger(), lambda: ""),
        (qe.ConsoleEventLogger(text), text.getvalue),
        (qe.ConsoleEventLogger(jsonl, format="jsonl"), jsonl.getvalue),
        (qe.ConsoleEventLogger(logger=upstream), upstream.text),
    ]


class Flag(enum.Enum):
    """Another application's EventType-like enum: accepted by value."""

    CLICK = "CLICK"


class Lowercase(enum.Enum):
    CLICK = "click"


class Number(enum.IntEnum):
    CLICK = 3


class StrFlag(str, enum.Enum):
    VIEW = "VIEW"


class FakeMember:
    """Has a .value but is no Enum member."""

    value = "CLICK"

    def __repr__(self):
        return "FakeMember()"


class MyInt(int):
    pass


BAD = [
    # (uid, event_type, event_data, timestamp, exception, text in message)
    (True, "CLICK", {}, None, TypeError, "uid must be an int or None, got bool True"),
    (False, "CLICK", {}, None, TypeError, "got bool False"),
    (2**31, "CLICK", {}, None, ValueError, "2147483648"),
    (-(2**31) - 1, "CLICK", {}, None, ValueError, "-2147483649"),
    (2**70, "CLICK", {}, None, ValueError, str(2**70)),
    (1.0, "CLICK", {}, None, TypeError, "got float 1.0"),
    ("5", "CLICK", {}, None, TypeError, "got str '5'"),
    (1, "click", {}, None, ValueError, "got str 'click'"),
    (1, "Click", {}, None, ValueError, "'Click'"),
    (1, "", {}, None, ValueError, "got str ''"),
    (1, "CLICK\x00", {}, None, ValueError, "'CLICK\\x00'"),
    (1, "\udc80", {}, None, ValueError, "event_type"),
    (1, 3, {}, None, TypeError, "got int 3"),
    (1, None, {}, None, TypeError, "got NoneType None"),
    (1, Lowercase.CLICK, {}, None, ValueError, "Lowercase.CLICK"),
    (1, Number.CLICK, {}, None, ValueError, "Number.CLICK"),
    (1, FakeMember(), {}, None, TypeError, "got FakeMember FakeMember()"),
    (1, b"CLICK", {}, None, TypeError, "b'CLICK'"),
    (1, "CLICK", b"{}", None, TypeError, "event_data must be None or a JSON-encodable value"),
    (1, "CLICK", object(), None, TypeError, "got object <object object"),
    (1, "CLICK", 1j, None, TypeError, "got complex 1j"),
    (1, "CLICK", {}, -1, ValueError, "got int -1"),
    (1, "CLICK", {}, -0.5, ValueError, "-0.5"),
    (1, "CLICK", {}, MAX_MS, ValueError, str(MAX_MS)),
    (1, "CLICK", {}, MAX_MS - 0.0001, ValueError, "timestamp"),
    (1, "CLICK", {}, 2**64, ValueError, "timestamp"),
    (1, "CLICK", {}, math.nan, ValueError, "nan"),
    (1, "CLICK", {}, math.inf, ValueError, "inf"),
    (1, "CLICK", {}, -math.inf, ValueError, "-inf"),
    (1, "CLICK", {}, True, TypeError, "got bool True"),
    (1, "CLICK", {}, "1700000000000", TypeError, "got str"),
    (1, "CLICK", {}, 1j, TypeError, "complex"),
]


@pytest.mark.parametrize("uid, event_type, event_data, timestamp, exception, message", BAD)
def test_bad_input_raises_and_writes_nothing(
    uid, event_type, event_data, timestamp, exception, message
):
    for logger, written in loggers():
        with pytest.raises(exception) as info:
            logger.log(uid, event_type, event_data, timestamp)
        assert message in str(info.value), (logger, str(info.value))
        with pytest.raises(exception):
            logger.log(uid=uid, event_type=event_type, event_data=event_data, timestamp=timestamp)
        assert written() == ""


def test_year_10000_rejected_9999_accepted():
    stream = io.StringIO()
    logger = qe.ConsoleEventLogger(stream)
    with pytest.raises(ValueError, match="1970..9999"):
        logger.log(1, "CLICK", {}, MAX_MS)
    logger.log(1, "CLICK", {}, MAX_MS - 1)
    assert stream.getvalue().startswith("created_at: 9999-12-31 23:59:59")


GOOD = [
    (0, "CLICK", {}, None),
    (2**31 - 1, "API", {}, 0),
    (-(2**31), "WEBSOCKET", None, 0.0),
    (None, "VIEW", {"a": 1}, 1700000000000),
    (MyInt(3), EventType.CLICK, {}, MyInt(5)),
    (1, EventType.API, {}, 1.5),
    (1, "CLICK", {}, MAX_MS - 1),
    (1, Flag.CLICK, {}, None),
    (1, StrFlag.VIEW, {}, None),
    (1, "CLICK", [], None),
    (1, "CLICK", [("a", 1)], None),
    (1, "CLICK", "{}", None),
    (1, "CLICK", 3, None),
    (1, "CLICK", 2.5, None),
    (1, "CLICK", True, None),
    (1, "CLICK", None, None),
    (1, "CLICK", (1, 2), None),
]


@pytest.mark.parametrize("uid, event_type, event_data, timestamp", GOOD)
def test_good_input_accepted(uid, event_type, event_data, timestamp):
    for logger, _written in loggers():
        assert logger.log(uid, event_type, event_data, timestamp) is None


def test_event_type_members_and_values_are_equivalent():
    for member in EventType:
        by_member, by_value = io.StringIO(), io.StringIO()
        qe.ConsoleEventLogger(by_member).log(1, member, {}, 0)
        qe.ConsoleEventLogger(by_value).log(1, member.value, {}, 0)
        assert by_member.getvalue() == by_value.getvalue()
        assert f"event_type=EventType.{member.name}," in by_member.getvalue()


def test_dict_subclass_event_data_accepted():
    class Data(dict):
        pass

    stream = io.StringIO()
    qe.ConsoleEventLogger(stream, format="jsonl").log(1, "CLICK", Data(a=1))
    assert '"event_data":{"a":1}' in stream.getvalue()


def test_long_bad_value_is_cut_in_message():
    with pytest.raises(TypeError) as info:
        qe.NullEventLogger().log(1, "CLICK", b"x" * 10000)
    assert len(str(info.value)) < 200 and str(info.value).endswith("...")


def test_validation_in_log_api_request_paths():
    stream = io.StringIO()
    logger = qe.ConsoleEventLogger(stream)
    with pytest.raises(TypeError, match="uid"):
        logger.log_api_request(1.5, "/query/", "GET", {})
    with pytest.raises(ValueError, match="uid"):
        logger.log_websocket_event(2**31, "/ns/e", [], {})
    assert stream.getvalue() == ""


def test_event_data_any_json_value_and_none_is_null():
    values = [None, {"a": 1}, [1, "x"], "text", 7, 2.5, True, False, (1, 2)]
    jsonl = io.StringIO()
    upstream = InfoRecorder()
    for value in values:
        qe.ConsoleEventLogger(jsonl, format="jsonl").log(1, "CLICK", value, 0)
        qe.ConsoleEventLogger(logger=upstream, color=False).log(1, "CLICK", value, 0)
    encoded = [line.split('"event_data":', 1)[1][:-1] for line in jsonl.getvalue().splitlines()]
    assert encoded == ["null", '{"a":1}', '[1,"x"]', '"text"', "7", "2.5", "true", "false",
                       "[1,2]"]
    assert [message.split("event_data=", 1)[1] for message in upstream.messages] == [
        str(value) for value in values
    ]
    assert qe.dumps(None) == b"null"
