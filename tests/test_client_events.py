"""The browser's batched VIEW/CLICK events (POST /ds/context_log/)."""

import json

import pytest

import querybook_eventlog as qe


class Recorder(qe.BaseEventLogger):
    def __init__(self):
        self.events = []

    @property
    def logger_name(self):
        return "recorder"

    def log(self, uid, event_type, event_data, timestamp=None):
        if isinstance(event_data, dict) and event_data.get("explode"):
            raise RuntimeError("plugin refused")
        self.events.append((uid, event_type, event_data, timestamp))


def test_good_batch_logged_in_order():
    recorder = Recorder()
    body = json.dumps([
        {"type": "VIEW", "data": {"path": "/datadoc/1/"}, "timestamp": 1700000000000},
        {"type": "CLICK", "data": {"path": "/", "component": "Nav", "element": "btn",
                                   "aux": {"n": 1.5, "ok": True, "none": None, "l": [1, "x"]}},
         "timestamp": 1700000000001.5},
    ]).encode()
    logged, rejected = qe.log_client_events(recorder, 9, body)
    assert (logged, rejected) == (2, [])
    assert recorder.events[0] == (9, qe.EventType.VIEW, {"path": "/datadoc/1/"}, 1700000000000)
    uid, event_type, data, timestamp = recorder.events[1]
    assert event_type is qe.EventType.CLICK and timestamp == 1700000000001.5
    assert data == {"path": "/", "component": "Nav", "element": "btn",
                    "aux": {"n": 1.5, "ok": True, "none": None, "l": [1, "x"]}}
    assert list(data) == ["path", "component", "element", "aux"]


def test_bad_elements_rejected_one_by_one_rest_logged():
    recorder = Recorder()
    body = json.dumps([
        {"type": "CLICK", "data": {"i": 0}},
        "not an object",
        {"type": "HOVER", "data": {}},
        {"data": {}},
        {"type": "VIEW", "data": [1]},
        {"type": "VIEW", "data": {}, "timestamp": "yesterday"},
        {"type": "VIEW", "data": {"explode": True}},
        {"type": "VIEW", "data": {"i": 7}},
    ])
    logged, rejected = qe.log_client_events(recorder, 1, body)
    assert logged == 3
    assert [event[2] for event in recorder.events] == [{"i": 0}, [1], {"i": 7}]
    reasons = dict(rejected)
    assert sorted(reasons) == [1, 2, 3, 5, 6]
    assert "not an object" in reasons[1]
    assert "not one of" in reasons[2]
    assert "missing" in reasons[3]
    assert "timestamp" in reasons[5]
    assert "plugin refused" in reasons[6]


def test_builtin_logger_validation_rejects_element():
    body = '[{"type":"VIEW","data":{},"timestamp":-5},{"type":"VIEW","data":{}},' \
           '{"type":"VIEW","data":{},"timestamp":1e300}]'
    logged, rejected = qe.log_client_events(qe.NullEventLogger(), 1, body)
    assert logged == 1
    assert [index for index, _ in rejected] == [0, 2]
    assert all(reason.startswith("ValueError") for _, reason in rejected)


def test_builtin_logger_fast_path(capsys):
    import io
    stream = io.StringIO()
    console = qe.ConsoleEventLogger(stream=stream, color=False)
    logged, rejected = qe.log_client_events(console, 3, '[{"type":"CLICK","data":{"a":"\\n"}}]')
    assert (logged, rejected) == (1, [])
    line = stream.getvalue()
    assert line.count("\n") == 1 and 'event_data={"a":"\\n"}' in line


@pytest.mark.parametrize("body", [b"", b"{", b'{"type":"CLICK"}', b"[1,", "[\ud800]".encode(
    "utf-8", "surrogatepass")])
def test_malformed_body_logs_nothing(body):
    recorder = Recorder()
    with pytest.raises(ValueError):
        qe.log_client_events(recorder, 1, body)
    assert recorder.events == []


def test_argument_errors():
    with pytest.raises(TypeError):
        qe.log_client_events(object(), 1, b"[]")
    with pytest.raises(TypeError):
        qe.log_client_events(Recorder(), 1, 12)
    assert qe.log_client_events(Recorder(), 1, bytearray(b"[]")) == (0, [])
    assert qe.log_client_events(Recorder(), 1, memoryview(b" [ ] ")) == (0, [])


def test_data_any_json_value_missing_or_null_is_none():
    recorder = Recorder()
    body = json.dumps([
        {"type": "VIEW"},
        {"type": "VIEW", "data": None},
        {"type": "CLICK", "data": "button"},
        {"type": "CLICK", "data": 3},
        {"type": "CLICK", "data": 2.5},
        {"type": "CLICK", "data": False},
        {"type": "CLICK", "data": [1, {"a": None}]},
    ])
    logged, rejected = qe.log_client_events(recorder, 1, body)
    assert (logged, rejected) == (7, [])
    assert [event[2] for event in recorder.events] == [
        None, None, "button", 3, 2.5, False, [1, {"a": None}]]


def test_data_null_reaches_builtin_logger_as_json_null():
    import io

    stream = io.StringIO()
    logger = qe.ConsoleEventLogger(stream, format="jsonl")
    qe.log_client_events(logger, 1, '[{"type": "VIEW"}, {"type": "CLICK", "data": [1]}]')
    assert [json.loads(line)["event_data"] for line in stream.getvalue().splitlines()] == [
        None, [1]]
    assert '"event_data":null}' in stream.getvalue()
