"""EventType interop: members of any enum.Enum count by value, and
_set_application_event_type chooses the members handed to Python log()."""

import enum
import gc
import io
import json
import sys

import pytest

from app_event_type import QuerybookEventType

import querybook_eventlog as qe
from querybook_eventlog import EventType, _core



class Recorder(qe.BaseEventLogger):
    logger_name = "recorder"

    def __init__(self):
        self.calls = []

    def log(self, uid, event_type, event_data, timestamp=None):
        self.calls.append((uid, event_type, event_data, timestamp))



def jsonl_event_types(*event_types):
    stream = io.StringIO()
    logger = qe.ConsoleEventLogger(stream, format="jsonl")
    for event_type in event_types:
        logger.log(1, event_type, {}, 0)
    return [json.loads(line)["event_type"] for line in stream.getvalue().splitlines()]


def test_any_enum_member_by_value_on_every_builtin_logger():
    class Other(enum.Enum):
        CLICK = "CLICK"
        VIEW = "VIEW"
        NOPE = "NOPE"

    assert jsonl_event_types(QuerybookEventType.API, Other.CLICK, Other.VIEW, "WEBSOCKET") == [
        "API", "CLICK", "VIEW", "WEBSOCKET"]
    null = qe.NullEventLogger()
    null.log(1, QuerybookEventType.WEBSOCKET, {})
    with pytest.raises(ValueError, match="Other.NOPE"):
        null.log(1, Other.NOPE, {})


def test_enum_member_judged_by_value_not_name():
    class Renamed(enum.Enum):
        PAGE_VIEW = "VIEW"
        VIEW = "CLICK"

    assert jsonl_event_types(Renamed.PAGE_VIEW, Renamed.VIEW) == ["VIEW", "CLICK"]


def test_value_property_that_raises_propagates():
    class Broken(enum.Enum):
        CLICK = "CLICK"

        @property
        def value(self):
            raise LookupError("no value")

    with pytest.raises(LookupError, match="no value"):
        qe.NullEventLogger().log(1, Broken.CLICK, {})


def test_default_python_log_gets_our_members():
    recorder = Recorder()
    recorder.log_api_request(1, "/q/", "GET", {})
    recorder.log_websocket_event(1, "/ns/e", [], {})
    qe.log_client_events(recorder, 1, '[{"type": "VIEW"}, {"type": "CLICK", "data": 1}]')
    assert [call[1] for call in recorder.calls] == [
        EventType.API, EventType.WEBSOCKET, EventType.VIEW, EventType.CLICK]
    assert all(type(call[1]) is EventType for call in recorder.calls)


def test_application_members_handed_to_python_log(app_event_type):
    recorder = Recorder()
    recorder.log_api_request(1, "/q/", "GET", {})
    recorder.log_websocket_event(1, "/ns/e", [], {})
    qe.log_client_events(recorder, 1, '[{"type": "VIEW"}, {"type": "CLICK", "data": 1}]')
    assert [call[1] for call in recorder.calls] == [
        QuerybookEventType.API, QuerybookEventType.WEBSOCKET, QuerybookEventType.VIEW,
        QuerybookEventType.CLICK]
    # upstream-style comparisons in plugins hold
    assert recorder.calls[0][1] == QuerybookEventType.API
    # builtin loggers take both classes' members and the strings
    assert jsonl_event_types(QuerybookEventType.API, EventType.API, "API") == ["API"] * 3


def test_application_members_through_python_subclass_of_builtin(app_event_type):
    class Tap(qe.ConsoleEventLogger):
        def log(self, uid, event_type, event_data, timestamp=None):
            self.seen = event_type
            super().log(uid, event_type, event_data, timestamp)

    stream = io.StringIO()
    tap = Tap(stream, format="jsonl")
    tap.log_api_request(1, "/q/", "GET", {})
    assert tap.seen is QuerybookEventType.API
    assert json.loads(stream.getvalue())["event_type"] == "API"


def test_none_restores_ours():
    _core._set_application_event_type(QuerybookEventType)
    _core._set_application_event_type(None)
    recorder = Recorder()
    recorder.log_api_request(1, "/q/", "GET", {})
    assert recorder.calls[0][1] is EventType.API


class Missing(enum.Enum):
    API = "API"
    WEBSOCKET = "WEBSOCKET"
    VIEW = "VIEW"


class WrongValue(enum.Enum):
    API = "API"
    WEBSOCKET = "WEBSOCKET"
    VIEW = "VIEW"
    CLICK = "click"


class NotEnum:
    API = "API"
    WEBSOCKET = "WEBSOCKET"
    VIEW = "VIEW"
    CLICK = "CLICK"


class Swapped(enum.Enum):
    API = "API"
    WEBSOCKET = "WEBSOCKET"
    VIEW = "CLICK"
    CLICK = "VIEW"


@pytest.mark.parametrize("bad, exception, text", [
    (Missing, AttributeError, "CLICK"),
    (WrongValue, ValueError, "WrongValue.CLICK"),
    (NotEnum, TypeError, "enum.Enum member"),
    (Swapped, ValueError, "Swapped.VIEW"),
    (42, AttributeError, "API"),
])
def test_bad_application_class_changes_nothing(app_event_type, bad, exception, text):
    with pytest.raises(exception, match=text):
        _core._set_application_event_type(bad)
    recorder = Recorder()
    recorder.log_api_request(1, "/q/", "GET", {})
    assert recorder.calls[0][1] is QuerybookEventType.API


def test_application_class_reference_is_owned():
    class Temporary(enum.Enum):
        API = "API"
        WEBSOCKET = "WEBSOCKET"
        VIEW = "VIEW"
        CLICK = "CLICK"

    member = Temporary.API
    before = sys.getrefcount(member)
    _core._set_application_event_type(Temporary)
    after_set = sys.getrefcount(member)
    recorder = Recorder()
    recorder.log_api_request(1, "/q/", "GET", {})
    assert recorder.calls[0][1] is member
    _core._set_application_event_type(None)
    recorder.calls.clear()
    gc.collect()
    after_reset = sys.getrefcount(member)
    assert (after_set, after_reset) == (before + 1, before)
