"""ConsoleEventLogger: line formats, colour rules, one event = one line,
streams, Python subclasses, leaks; NullEventLogger basics."""

import contextlib
import datetime
import gc
import io
import json
import logging
import re
import sys
import tracemalloc

import pytest

import querybook_eventlog as qe
from querybook_eventlog import _settings
from querybook_eventlog import EventType

TEXT_LINE = re.compile(
    r"^created_at: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d), uid=(None|-?\d+), "
    r"event_type=EventType\.(API|WEBSOCKET|VIEW|CLICK), event_data=(.*)$"
)
YELLOW, RESET = "\x1b[33;20m", "\x1b[0m"


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


class WriteOnly:
    """The least a stream needs: write()."""

    def __init__(self):
        self.parts = []

    def write(self, text):
        self.parts.append(text)


def parse_text(line):
    match = TEXT_LINE.match(line)
    assert match, line
    created_at, uid, event_type, data = match.groups()
    return created_at, uid, event_type, json.loads(data)


def test_text_line_exact():
    stream = io.StringIO()
    qe.ConsoleEventLogger(stream).log(5, EventType.CLICK, {"a": 1}, 1700000000000)
    assert stream.getvalue() == (
        'created_at: 2023-11-14 22:13:20, uid=5, event_type=EventType.CLICK, event_data={"a":1}\n'
    )


def test_text_line_parses_back():
    stream = io.StringIO()
    data = {
        "path": "/datadoc/1/",
        "component": "datadoc",
        "element": "run_button",
        "aux": {"cell": 3, "ok": True, "ratio": 0.5, "none": None, "list": [1, "二"]},
    }
    logger = qe.ConsoleEventLogger(stream)
    logger.log(uid=-7, event_type="VIEW", event_data=data)
    logger.log(None, EventType.API, None, timestamp=0)
    first, second = stream.getvalue().splitlines()
    created_at, uid, event_type, parsed = parse_text(first)
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    assert abs(
        datetime.datetime.strptime(created_at, "%Y-%m-%d %H:%M:%S") - now
    ) < datetime.timedelta(seconds=5)
    assert (uid, event_type, parsed) == ("-7", "VIEW", data)
    assert parse_text(second) == ("1970-01-01 00:00:00", "None", "API", None)  # None is null


def test_jsonl_line():
    stream = io.StringIO()
    logger = qe.ConsoleEventLogger(stream, format="jsonl")
    assert logger.format == "jsonl"
    logger.log(5, EventType.CLICK, {"a": [1, {"b": None}]}, 1700000000000)
    logger.log(None, "WEBSOCKET", None, 1700000000123.4567)
    lines = stream.getvalue().split("\n")
    assert lines[-1] == ""
    assert lines[0] == (
        '{"created_at":"2023-11-14T22:13:20.000000+00:00","uid":5,"event_type":"CLICK",'
        '"event_data":{"a":[1,{"b":null}]}}'
    )
    assert json.loads(lines[1]) == {
        "created_at": "2023-11-14T22:13:20.123457+00:00",
        "uid": None,
        "event_type": "WEBSOCKET",
        "event_data": None,
    }
    parsed = datetime.datetime.fromisoformat(json.loads(lines[1])["created_at"])
    assert parsed == datetime.datetime(
        2023, 11, 14, 22, 13, 20, 123457, tzinfo=datetime.timezone.utc
    )


@pytest.mark.parametrize(
    "timestamp, expected",
    [
        (0, "1970-01-01 00:00:00"),
        (999, "1970-01-01 00:00:00"),
        (1000, "1970-01-01 00:00:01"),
        (1700000000999.9, "2023-11-14 22:13:20"),
        (951782400000, "2000-02-29 00:00:00"),
        (253402300799999, "9999-12-31 23:59:59"),
        (1e12, "2001-09-09 01:46:40"),
    ],
)
def test_timestamp_to_created_at(timestamp, expected):
    stream = io.StringIO()
    qe.ConsoleEventLogger(stream).log(1, "CLICK", {}, timestamp)
    assert parse_text(stream.getvalue().rstrip("\n"))[0] == expected
    ours = datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=timestamp)
    assert ours.strftime("%Y-%m-%d %H:%M:%S") == expected


@pytest.mark.parametrize(
    "timestamp", [0, 1, 1700000000123, 1700000000123.5, 1234.0004, 253402300799999]
)
def test_fractional_milliseconds_in_jsonl(timestamp):
    stream = io.StringIO()
    qe.ConsoleEventLogger(stream, format="jsonl").log(1, "CLICK", {}, timestamp)
    created_at = json.loads(stream.getvalue())["created_at"]
    expected = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(
        milliseconds=timestamp
    )
    assert datetime.datetime.fromisoformat(created_at) == expected


def test_newlines_and_control_characters_cannot_split_lines():
    stream = io.StringIO()
    nasty = {"a": "x\ny\r\nz", "b": "\x1b[31mred\x00\x7f", "c\n": "\x0b\x0c", "d": "\t"}
    for format in ("text", "jsonl"):
        qe.ConsoleEventLogger(stream, format=format).log(1, "CLICK", nasty)
    text = stream.getvalue()
    assert text.count("\n") == 2 and text.endswith("\n")
    assert not any(chr(code) in text for code in range(32) if code != 10)
    text_line, jsonl_line = text.split("\n")[:2]
    assert parse_text(text_line)[3] == nasty
    assert json.loads(jsonl_line)["event_data"] == nasty


def test_unicode_line_separators_escaped():
    stream = io.StringIO()
    nasty = {"a": "\x85\u2028\u2029\x9b"}
    qe.ConsoleEventLogger(stream).log(1, "CLICK", nasty)
    line = stream.getvalue()
    assert len(line.splitlines()) == 1 and "\x9b" not in line
    assert parse_text(line.rstrip("\n"))[3] == nasty


def test_unicode_data_written_as_str():
    stream = io.StringIO()
    qe.ConsoleEventLogger(stream).log(1, "CLICK", {"名前": "値 🎉"})
    assert parse_text(stream.getvalue().rstrip("\n"))[3] == {"名前": "値 🎉"}


def test_one_write_call_per_event():
    stream = WriteOnly()
    logger = qe.ConsoleEventLogger(stream)
    logger.log(1, "CLICK", {"a": "b"})
    logger.log_api_request(2, "/query/", "POST", {"q": "x" * 200})
    logger.log_websocket_event(3, "/ns/ev", [1], {"k": 2})
    assert len(stream.parts) == 3
    assert all(
        type(part) is str and part.endswith("\n") and part.count("\n") == 1 for part in stream.parts
    )
    api = parse_text(stream.parts[1].rstrip("\n"))
    assert api[2] == "API"
    assert api[3] == {"method": "POST", "route": "/query/", "params": {"q": "x" * 128 + "..."}}
    assert parse_text(stream.parts[2].rstrip("\n"))[3] == {
        "route": "/ns/ev",
        "args": [1],
        "kwargs": {"k": 2},
    }


def test_denied_api_request_writes_nothing():
    stream = io.StringIO()
    qe.ConsoleEventLogger(stream).log_api_request(1, "/admin/users/", "GET", {})
    assert stream.getvalue() == ""


# ---- colour ---------------------------------------------------------------


def test_color_true_wraps_line_not_newline():
    stream = io.StringIO()
    qe.ConsoleEventLogger(stream, color=True).log(5, "CLICK", {"a": 1}, 1700000000000)
    assert stream.getvalue() == (
        YELLOW + "created_at: 2023-11-14 22:13:20, uid=5, event_type=EventType.CLICK, "
        'event_data={"a":1}' + RESET + "\n"
    )


def test_color_false_never_colours_even_on_tty(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream = FakeTTY()
    qe.ConsoleEventLogger(stream, color=False).log(5, "CLICK", {})
    assert "\x1b" not in stream.getvalue()


def test_auto_colour_on_tty(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    tty, plain, bare = FakeTTY(), io.StringIO(), WriteOnly()
    for stream in (tty, plain, bare):
        qe.ConsoleEventLogger(stream).log(5, "CLICK", {})
    assert tty.getvalue().startswith(YELLOW) and tty.getvalue().endswith(RESET + "\n")
    assert "\x1b" not in plain.getvalue()
    assert "\x1b" not in bare.parts[0]


def test_no_color_env_disables_auto_colour(monkeypatch):
    stream = FakeTTY()
    logger = qe.ConsoleEventLogger(stream)
    monkeypatch.setenv("NO_COLOR", "1")
    logger.log(5, "CLICK", {})
    monkeypatch.delenv("NO_COLOR")
    logger.log(5, "CLICK", {})
    first, second = stream.getvalue().splitlines()
    assert "\x1b" not in first
    assert second.startswith(YELLOW)
    monkeypatch.setenv("NO_COLOR", "1")
    forced = io.StringIO()
    qe.ConsoleEventLogger(forced, color=True).log(5, "CLICK", {})
    assert forced.getvalue().startswith(YELLOW)  # explicit color=True wins


def test_jsonl_not_coloured_automatically(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    stream = FakeTTY()
    qe.ConsoleEventLogger(stream, format="jsonl").log(5, "CLICK", {})
    json.loads(stream.getvalue())


def test_tty_answer_follows_the_stream(monkeypatch, capsys):
    monkeypatch.delenv("NO_COLOR", raising=False)
    logger = qe.ConsoleEventLogger(format="text")
    tty = FakeTTY()
    with contextlib.redirect_stderr(tty):
        logger.log(1, "CLICK", {})
    logger.log(2, "CLICK", {})  # capsys's stderr is not a tty
    assert tty.getvalue().startswith(YELLOW)
    assert capsys.readouterr().err.startswith("created_at: ")


# ---- streams --------------------------------------------------------------


def test_default_stream_is_sys_stderr_at_each_call(capsys):
    logger = qe.ConsoleEventLogger(format="text")
    assert logger.stream is None
    logger.log(1, "CLICK", {"n": 1})
    redirected = io.StringIO()
    with contextlib.redirect_stderr(redirected):
        logger.log(2, "CLICK", {"n": 2})
    logger.log(3, "CLICK", {"n": 3})
    captured = capsys.readouterr()
    assert [parse_text(line)[3]["n"] for line in captured.err.splitlines()] == [1, 3]
    assert parse_text(redirected.getvalue().rstrip("\n"))[3] == {"n": 2}
    assert captured.out == ""


def test_missing_stderr_is_not_an_error(monkeypatch):
    monkeypatch.setattr(sys, "stderr", None)
    qe.ConsoleEventLogger(format="text").log(1, "CLICK", {})


def test_real_file(tmp_path):
    path = tmp_path / "events.log"
    with open(path, "w", encoding="utf-8") as file:
        logger = qe.ConsoleEventLogger(file, format="jsonl")
        for uid in range(3):
            logger.log(uid, "VIEW", {"i": uid})
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["uid"] for line in lines] == [0, 1, 2]


def test_stream_errors_propagate():
    class Failing:
        def write(self, text):
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        qe.ConsoleEventLogger(Failing()).log(1, "CLICK", {})


def test_encoder_error_writes_nothing():
    stream = io.StringIO()
    with pytest.raises(TypeError):
        qe.ConsoleEventLogger(stream).log(1, "CLICK", {"b": b"bytes"})
    assert stream.getvalue() == ""


# ---- construction, repr, attributes -----------------------------------------


def test_constructor_arguments():
    stream = io.StringIO()
    logger = qe.ConsoleEventLogger(stream, color=True, format="text")
    assert (logger.stream, logger.color, logger.format) == (stream, True, "text")
    assert logger.logger_name == "console"
    assert repr(logger) == "<ConsoleEventLogger format='text'>"
    assert repr(qe.ConsoleEventLogger(format="jsonl")) == "<ConsoleEventLogger format='jsonl'>"
    assert qe.ConsoleEventLogger().color is None
    default = qe.ConsoleEventLogger()
    assert (default.format, default.stream, default.logger) == ("upstream", None, None)
    assert repr(default) == "<ConsoleEventLogger format='upstream'>"
    assert qe.ConsoleEventLogger(stream, format=None).format == "text"
    assert qe.ConsoleEventLogger(None, format=None).format == "upstream"
    with pytest.raises(ValueError, match="format"):
        qe.ConsoleEventLogger(format="json")
    with pytest.raises(ValueError, match="format"):
        qe.ConsoleEventLogger(format=b"text")
    with pytest.raises(ValueError, match="stream"):
        qe.ConsoleEventLogger(stream, format="upstream")
    with pytest.raises(ValueError, match="logger"):
        qe.ConsoleEventLogger(stream, logger=logging.getLogger("x"))
    with pytest.raises(ValueError, match="logger"):
        qe.ConsoleEventLogger(format="jsonl", logger=logging.getLogger("x"))
    with pytest.raises(TypeError, match="info"):
        qe.ConsoleEventLogger(logger=object())
    with pytest.raises(TypeError):
        qe.ConsoleEventLogger(stream, True)  # color is keyword-only
    with pytest.raises(TypeError, match="color"):
        qe.ConsoleEventLogger(color="yes")
    with pytest.raises(TypeError, match="write"):
        qe.ConsoleEventLogger(object())
    assert qe.ConsoleEventLogger.__doc__ and qe.ConsoleEventLogger.log.__doc__
    assert isinstance(logger, qe.BaseEventLogger)


def test_python_subclass_overriding_log_gets_python_call():
    class Prefixed(qe.ConsoleEventLogger):
        def __init__(self, stream):
            super().__init__(stream, format="jsonl")
            self.seen = []

        def log(self, uid, event_type, event_data, timestamp=None):
            self.seen.append((uid, event_type, event_data))
            super().log(uid, event_type, dict(event_data, extra=True), timestamp)

    stream = io.StringIO()
    logger = Prefixed(stream)
    logger.log_api_request(4, "/q/", "GET", {"a": 1})
    logger.log_websocket_event(5, "/ns/e", [], {})
    assert logger.seen == [
        (4, EventType.API, {"method": "GET", "route": "/q/", "params": {"a": 1}}),
        (5, EventType.WEBSOCKET, {"route": "/ns/e", "args": [], "kwargs": {}}),
    ]
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event_data"]["extra"] for line in lines] == [True, True]
    assert repr(logger) == "<Prefixed format='jsonl'>"


def test_python_subclass_skipping_init_still_works():
    class NoInit(qe.ConsoleEventLogger):
        def __init__(self):
            pass

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    target = _settings.console_logger()  # the default's target, configured as standalone
    target.addHandler(handler)
    try:
        NoInit().log(1, "CLICK", {}, 0)
    finally:
        target.removeHandler(handler)
    assert NoInit().format == "upstream"
    assert [record.getMessage() for record in records] == [
        YELLOW + "NoInit - created_at: 1970-01-01 00:00:00, uid=1, event_type=CLICK, "
        "event_data={}" + RESET
    ]


def test_null_logger():
    null = qe.NullEventLogger()
    assert null.logger_name == "null"
    assert repr(null) == "<NullEventLogger>"
    assert null.log(1, EventType.CLICK, {"a": 1}) is None
    null.log(uid=None, event_type="API", event_data=None, timestamp=5)
    with pytest.raises(TypeError):
        qe.NullEventLogger(1)
    with pytest.raises(TypeError, match="missing required argument 'event_data'"):
        null.log(1, "CLICK")
    with pytest.raises(TypeError, match="at most 4"):
        null.log(1, "CLICK", {}, None, 5)
    assert qe.NullEventLogger.__doc__ and qe.NullEventLogger.log.__doc__


# ---- leaks ----------------------------------------------------------------


def test_console_refcounts_and_memory():
    stream = io.StringIO()
    logger = qe.ConsoleEventLogger(stream)
    jsonl = qe.ConsoleEventLogger(stream, format="jsonl", color=True)
    event_data = {"path": "/datadoc/1/", "component": "x", "aux": {"n": [1, 2]}}
    params = {"q": "s" * 300}

    def run(count):
        for _ in range(count):
            logger.log(1, EventType.CLICK, event_data)
            jsonl.log(1, "VIEW", event_data, 1700000000000)
            logger.log_api_request(1, "/q/", "GET", params)
            try:
                logger.log(1, "CLICK", {"bad": object()})
            except TypeError:
                pass
            stream.seek(0)
            stream.truncate()

    run(1)  # the logger caches the stream it asked isatty()
    before = (sys.getrefcount(event_data), sys.getrefcount(params), sys.getrefcount(stream))
    run(1000)
    assert (sys.getrefcount(event_data), sys.getrefcount(params), sys.getrefcount(stream)) == before
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        run(10000)
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert growth < 64 * 1024


def test_logger_with_cycle_through_stream_is_collected():
    import weakref

    class Holder(io.StringIO):
        pass

    stream = Holder()
    logger = qe.ConsoleEventLogger(stream)
    stream.logger = logger
    ref = weakref.ref(logger)
    del logger, stream
    gc.collect()
    assert ref() is None
