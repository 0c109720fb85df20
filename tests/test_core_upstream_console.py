"""ConsoleEventLogger's default format, 'upstream': the message upstream's
ConsoleEventLogger.log builds, byte for byte, through logger.info()."""

import datetime
import enum
import gc
import io
import logging
import sys
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app_event_type import QuerybookEventType

import querybook_eventlog as qe
from querybook_eventlog import EventType, _core, _settings

YELLOW, RESET = "\x1b[33;20m", "\x1b[0m"
QUERYBOOK_FORMAT = '[%(asctime)s] - %(name)s - %(levelname)-8s"%(message)s"'
QUERYBOOK_DATE_FORMAT = "%Y-%m-%d %a %H:%M:%S"



def upstream_message(class_name, uid, event_type, event_data, timestamp=None):
    """Upstream's console_event_logger.py, verbatim but for utcfromtimestamp's
    deprecation (fromtimestamp with UTC rounds the same way)."""
    if timestamp is None:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    else:
        now = datetime.datetime.fromtimestamp(timestamp / 1000, datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%S"
        )
    event = f"created_at: {now}, uid={uid}, event_type={event_type}, event_data={event_data}"
    return f"{YELLOW}{class_name} - {event}{RESET}"


class InfoRecorder:
    def __init__(self):
        self.messages = []

    def info(self, message):
        self.messages.append(message)



def test_exact_upstream_message():
    recorder = InfoRecorder()
    logger = qe.ConsoleEventLogger(logger=recorder)
    logger.log(5, EventType.CLICK, {"path": "/", "n": [1, 2.5, None, True]}, 1700000000000)
    assert recorder.messages == [
        "\x1b[33;20mConsoleEventLogger - created_at: 2023-11-14 22:13:20, uid=5, "
        "event_type=EventType.CLICK, event_data={'path': '/', 'n': [1, 2.5, None, True]}"
        "\x1b[0m"
    ]


class Odd(int):
    def __str__(self):
        return "odd\ud800"


class StrClick(str, enum.Enum):
    CLICK = "CLICK"


CASES = [
    (5, EventType.CLICK, {"a": 1}, 1700000000000),
    (None, "VIEW", None, 0),
    (-7, QuerybookEventType.API, {"params": {"q": "x" * 300}, "f": 1e-7}, 1700000000999.9),
    (2**31 - 1, StrClick.CLICK, [1, "二", {"k": None}], 951782400000),
    (0, "WEBSOCKET", "just a string", 253402300799999),
    (Odd(3), EventType.VIEW, {"s": "quote ' and \" and \n"}, 999.9999999),
    (1, "CLICK", {"nan": float("nan"), "big": 10**30}, 1e12),
    (1, "API", 12.5, 1),
    (1, "API", True, 1234.0004),
]


@pytest.mark.parametrize("uid, event_type, event_data, timestamp", CASES,
                         ids=[str(i) for i in range(len(CASES))])
def test_same_as_upstream(uid, event_type, event_data, timestamp):
    recorder = InfoRecorder()
    qe.ConsoleEventLogger(logger=recorder).log(uid, event_type, event_data, timestamp)
    assert recorder.messages == [
        upstream_message("ConsoleEventLogger", uid, event_type, event_data, timestamp)
    ]


def test_now_when_no_timestamp():
    recorder = InfoRecorder()
    before = upstream_message("ConsoleEventLogger", 1, "VIEW", {})
    qe.ConsoleEventLogger(logger=recorder).log(1, "VIEW", {})
    after = upstream_message("ConsoleEventLogger", 1, "VIEW", {})
    assert recorder.messages[0] in (before, after)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    uid=st.none() | st.integers(-(2**31), 2**31 - 1),
    event_type=st.sampled_from(list(EventType) + list(QuerybookEventType)
                               + ["API", "WEBSOCKET", "VIEW", "CLICK"]),
    event_data=json_values,
    timestamp=st.integers(0, 253402300799999) | st.floats(0, 253402300799999),
)
def test_same_as_upstream_property(uid, event_type, event_data, timestamp):
    recorder = InfoRecorder()
    qe.ConsoleEventLogger(logger=recorder).log(uid, event_type, event_data, timestamp)
    assert recorder.messages == [
        upstream_message("ConsoleEventLogger", uid, event_type, event_data, timestamp)
    ]


def test_color_false_drops_codes_true_keeps_them():
    plain, colored = InfoRecorder(), InfoRecorder()
    qe.ConsoleEventLogger(logger=plain, color=False).log(5, "CLICK", {}, 0)
    qe.ConsoleEventLogger(logger=colored, color=True).log(5, "CLICK", {}, 0)
    expected = upstream_message("ConsoleEventLogger", 5, "CLICK", {}, 0)
    assert colored.messages == [expected]
    assert plain.messages == [expected[len(YELLOW):-len(RESET)]]


def test_subclass_name_in_message():
    class KafkaConsole(qe.ConsoleEventLogger):
        pass

    recorder = InfoRecorder()
    KafkaConsole(logger=recorder).log(5, EventType.VIEW, {"a": 1}, 0)
    assert recorder.messages == [upstream_message("KafkaConsole", 5, EventType.VIEW, {"a": 1}, 0)]
    KafkaConsole.__name__ = "Renamed"
    KafkaConsole(logger=recorder).log(5, EventType.VIEW, {"a": 1}, 0)
    assert recorder.messages[1] == upstream_message("Renamed", 5, EventType.VIEW, {"a": 1}, 0)


def after_created_at(message):
    """The message from ", uid=" on (created_at is "now" in these calls)."""
    return message[message.index(", uid="):]


def test_api_and_websocket_through_c_dispatch():
    recorder = InfoRecorder()
    logger = qe.ConsoleEventLogger(logger=recorder)
    logger.log_api_request(3, "/query/", "POST", {"q": "x" * 200})
    logger.log_websocket_event(4, "/datadoc/subscribe", [1], {"k": 2})
    logger.log_api_request(3, "/admin/x", "GET", {})  # denied
    pruned = {"method": "POST", "route": "/query/", "params": {"q": "x" * 128 + "..."}}
    websocket = {"route": "/datadoc/subscribe", "args": [1], "kwargs": {"k": 2}}
    assert [after_created_at(message) for message in recorder.messages] == [
        after_created_at(upstream_message("ConsoleEventLogger", 3, EventType.API, pruned)),
        after_created_at(upstream_message("ConsoleEventLogger", 4, EventType.WEBSOCKET,
                                          websocket)),
    ]
    assert all(message.startswith(YELLOW + "ConsoleEventLogger - created_at: ")
               for message in recorder.messages)


def test_application_event_type_printed(app_event_type):
    recorder = InfoRecorder()
    logger = qe.ConsoleEventLogger(logger=recorder, color=False)
    logger.log_api_request(3, "/q/", "GET", {})
    logger.log(3, QuerybookEventType.CLICK, {}, 0)
    assert "event_type=QuerybookEventType.API," in recorder.messages[0]
    assert recorder.messages[1] == upstream_message(
        "ConsoleEventLogger", 3, QuerybookEventType.CLICK, {}, 0)[len(YELLOW):-len(RESET)]


def test_event_type_shown_as_an_f_string_shows_it():
    """f"{x}" is format(x, ''), not str(x): they differ for str-mixin enums
    before 3.11 (Querybook runs 3.10) and for a custom __format__."""

    class Formatted(enum.Enum):
        VIEW = "VIEW"

        def __format__(self, spec):
            return "formatted"

    class Uid(int):
        def __format__(self, spec):
            return "uid-format"

    recorder = InfoRecorder()
    logger = qe.ConsoleEventLogger(logger=recorder)
    logger.log(1, StrClick.CLICK, {}, 0)
    logger.log(Uid(4), Formatted.VIEW, {}, 0)
    assert recorder.messages == [
        upstream_message("ConsoleEventLogger", 1, StrClick.CLICK, {}, 0),
        upstream_message("ConsoleEventLogger", Uid(4), Formatted.VIEW, {}, 0),
    ]
    assert "uid=uid-format, event_type=formatted, " in recorder.messages[1]


def test_application_str_mixin_members_formatted_once(app_event_type):
    class Mixed(str, enum.Enum):
        API = "API"
        WEBSOCKET = "WEBSOCKET"
        VIEW = "VIEW"
        CLICK = "CLICK"

    _core._set_application_event_type(Mixed)
    recorder = InfoRecorder()
    qe.ConsoleEventLogger(logger=recorder).log_websocket_event(1, "/r", [], {})
    assert f", event_type={Mixed.WEBSOCKET}, " in recorder.messages[0]


def test_custom_str_of_event_type_member():
    class Fancy(enum.Enum):
        CLICK = "CLICK"

        def __str__(self):
            return f"fancy<{self.value}>"

    recorder = InfoRecorder()
    qe.ConsoleEventLogger(logger=recorder).log(1, Fancy.CLICK, {}, 0)
    assert "event_type=fancy<CLICK>, " in recorder.messages[0]
    assert recorder.messages == [upstream_message("ConsoleEventLogger", 1, Fancy.CLICK, {}, 0)]


def test_lone_surrogate_carried_like_an_f_string():
    recorder = InfoRecorder()
    qe.ConsoleEventLogger(logger=recorder).log(Odd(1), "CLICK", {}, 0)
    assert "uid=odd\ud800," in recorder.messages[0]


def test_errors_log_nothing():
    recorder = InfoRecorder()
    logger = qe.ConsoleEventLogger(logger=recorder)

    class BadRepr(dict):
        def __repr__(self):
            raise RuntimeError("no repr")

    with pytest.raises(RuntimeError, match="no repr"):
        logger.log(1, "CLICK", BadRepr(), 0)
    with pytest.raises(ValueError):
        logger.log(1, "HOVER", {}, 0)
    with pytest.raises(TypeError):
        logger.log(1, "CLICK", {1, object()}, 0)  # not encodable: validation says no
    assert recorder.messages == []

    class Failing:
        def info(self, message):
            raise OSError("handler broke")

    with pytest.raises(OSError, match="handler broke"):
        qe.ConsoleEventLogger(logger=Failing()).log(1, "CLICK", {}, 0)


def querybook_logger(name, stream):
    """A logger set up as Querybook's lib.logger does (one stream handler)."""
    logger = logging.getLogger(name)
    logger.handlers.clear()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(QUERYBOOK_FORMAT, QUERYBOOK_DATE_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def test_through_a_real_logging_logger():
    ours, theirs = io.StringIO(), io.StringIO()
    our_logger = querybook_logger("test.qbel.ours", ours)
    their_logger = querybook_logger("test.qbel.theirs", theirs)
    qe.ConsoleEventLogger(logger=our_logger).log(5, EventType.CLICK, {"a": [1]}, 1700000000000)
    their_logger.info(upstream_message("ConsoleEventLogger", 5, EventType.CLICK, {"a": [1]},
                                       1700000000000))
    strip = lambda text: text.split("] - ", 1)[1]  # noqa: E731  (asctime differs)
    assert strip(ours.getvalue()).replace("ours", "theirs") == strip(theirs.getvalue())
    assert ours.getvalue().endswith(RESET + '"\n')


def test_default_target_is_asked_at_each_event(monkeypatch):
    """logger=None: querybook_eventlog._settings.console_logger() at each
    event, whose answer follows Querybook's context."""
    first, second = InfoRecorder(), InfoRecorder()
    logger = qe.ConsoleEventLogger()
    monkeypatch.setattr(_settings, "get_logger", lambda name: first)
    logger.log(1, "CLICK", {}, 0)
    monkeypatch.setattr(_settings, "get_logger", lambda name: second)
    logger.log(2, "CLICK", {}, 0)
    assert len(first.messages) == 1 and len(second.messages) == 1
    assert "uid=2," in second.messages[0]


def test_default_logger_name_and_level():
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    target = _settings.console_logger()
    target.addHandler(handler)
    try:
        qe.ConsoleEventLogger().log(5, "VIEW", {"x": 1}, 0)
    finally:
        target.removeHandler(handler)
    assert [(record.name, record.levelno) for record in records] == [
        ("querybook_eventlog.console", logging.INFO)
    ]
    assert records[0].getMessage() == upstream_message("ConsoleEventLogger", 5, "VIEW",
                                                        {"x": 1}, 0)


def test_upstream_refcounts_and_memory():
    recorder = InfoRecorder()
    logger = qe.ConsoleEventLogger(logger=recorder)
    event_data = {"path": "/datadoc/1/", "aux": {"n": [1, 2.5]}}
    uid = 123456

    def run(count):
        for _ in range(count):
            logger.log(uid, EventType.CLICK, event_data)
            logger.log(None, "VIEW", None, 1700000000000)
            logger.log_api_request(1, "/q/", "GET", event_data)
            try:
                logger.log(uid, "CLICK", {"bad": object()}.keys())
            except TypeError:
                pass
            recorder.messages.clear()

    run(1)
    before = (sys.getrefcount(event_data), sys.getrefcount(uid), sys.getrefcount(recorder))
    run(1000)
    assert (sys.getrefcount(event_data), sys.getrefcount(uid),
            sys.getrefcount(recorder)) == before
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        run(10000)
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert growth < 64 * 1024


def test_logger_cycle_collected():
    import weakref

    class Holder(InfoRecorder):
        pass

    target = Holder()
    logger = qe.ConsoleEventLogger(logger=target)
    target.owner = logger
    ref = weakref.ref(logger)
    del logger, target
    gc.collect()
    assert ref() is None
