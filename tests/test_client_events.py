"""The browser's batched VIEW/CLICK events (POST /ds/context_log/)."""

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# ---- issue 7, finding 11: what jansson cannot hold is one element's fault ----

DEEP = "[" * 3000 + "]" * 3000


def test_element_jansson_cannot_hold_is_rejected_alone():
    """A NUL in a key, a number out of range or a lone surrogate rejected the
    whole batch; now only its element, with the reason, and the rest land."""
    recorder = Recorder()
    body = ('[{"type":"VIEW","data":{"i":0}},'
            '{"type":"VIEW","data":{"a\\u0000b":1}},'
            '{"type":"CLICK","data":{"n":1e400}},'
            '{"type":"VIEW","data":{"i":3}},'
            '{"type":"VIEW","data":{"big":100000000000000000000000}},'
            '{"type":"VIEW","data":"\\ud800"},'
            '{"type":"VIEW","data":{},"timestamp":-1e400},'
            '{"type":"VIEW","data":' + DEEP + '},'
            '{"type":"VIEW","data":{"i":8, "s":"\\u0000 in a value is fine"}}]')
    logged, rejected = qe.log_client_events(recorder, 5, body)
    assert logged == 3
    assert [event[2]["i"] for event in recorder.events] == [0, 3, 8]
    reasons = dict(rejected)
    assert [index for index, _ in rejected] == [1, 2, 4, 5, 6, 7]  # in order
    assert "NUL byte in object key" in reasons[1]
    assert "real number overflow" in reasons[2] and "overflow" in reasons[6]
    assert "too big integer" in reasons[4]
    assert "invalid Unicode" in reasons[5]
    assert "depth" in reasons[7]


def test_rejected_elements_through_the_builtin_fast_path():
    stream = io.StringIO()
    console = qe.ConsoleEventLogger(stream, format="jsonl")
    body = b'[{"type":"VIEW","data":{"k\\u0000":1}},{"type":"CLICK","data":{"ok":1}},1e999]'
    logged, rejected = qe.log_client_events(console, 1, body)
    assert logged == 1 and [index for index, _ in rejected] == [0, 2]
    assert [json.loads(line)["event_data"] for line in stream.getvalue().splitlines()] == [
        {"ok": 1}]


@pytest.mark.parametrize("body", [
    b'[{"type":"VIEW","data":{}},',
    b'[{"type":"VIEW","data":{}},]',
    b'[{"type":"VIEW","data":{}},,{"type":"VIEW"}]',
    b'[{"type":"VIEW","data":{}} {"type":"VIEW"}]',
    b'[{"type":"VIEW","data":{}}}',
    b'[{"type":"VIEW","data":{}}]]',
    b'[{"type":"VIEW","data":{}}] x',
    b'[{"type":"VIEW","data":{}}, {"type":"VIEW","data":[1}]',
    b'[{"type":"VIEW","data":{}}, {"type":"VIEW","data":"unterminated]',
    b'[{"type":"VIEW","data":{}}, {"type":"VIEW","data":"\xff"}]',  # not UTF-8: not JSON text
    b'[{"type":"VIEW","data":{}}, {"type":"VIEW","data":tru}]',
    b'[{"type":"VIEW","data":{}}, {"type":"VIEW","data":{"a\\u0000":1}]',
    b'[{"type":"VIEW","data":{}}, 1e400',
    b'[{"type":"VIEW","data":{}}, \x00]',
    b'\xef\xbb\xbf[{"type":"VIEW","data":{}}]',
    b'[{"type":"VIEW","data":{}}, "\\x"]',
    b'[{"type":"VIEW","data":{}}, "\\u12G4"]',
])
def test_a_body_that_is_not_json_logs_nothing_even_after_good_elements(body):
    recorder = Recorder()
    with pytest.raises(ValueError, match="not JSON|not a JSON array"):
        qe.log_client_events(recorder, 1, body)
    assert recorder.events == []


def test_whitespace_and_empty_arrays():
    recorder = Recorder()
    assert qe.log_client_events(recorder, 1, b" \r\n\t[ \n ] \n") == (0, [])
    assert qe.log_client_events(recorder, 1, b'\n[\n {"type" : "VIEW"} ,\n\t{"type":"CLICK"}\n]\n') \
        == (2, [])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 63), 2 ** 63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.sampled_from('ab",[]{}\\:/ é🚀\u0000\n')),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(alphabet=st.sampled_from('k",[]{}\\ é'), max_size=4), children,
                      max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["VIEW", "CLICK"]), json_values), max_size=6),
       st.sampled_from([None, 0, 2]))
def test_any_well_formed_batch_is_split_as_json_reads_it(events, indent):
    """Brackets, commas and quotes inside strings and keys never cut an
    element: every element arrives as json.loads reads it."""
    body = json.dumps([{"type": kind, "data": data} for kind, data in events], indent=indent)
    recorder = Recorder()
    logged, rejected = qe.log_client_events(recorder, 1, body.encode())
    assert (logged, rejected) == (len(events), [])
    assert [event[2] for event in recorder.events] == [
        element["data"] for element in json.loads(body)]


def test_db_logger_writes_the_good_elements_only(db, tmp_path):
    logger = qe.DBEventLogger(db.url, spool_dir=str(tmp_path))
    try:
        body = ('[{"type":"VIEW","data":{"seq":1}},{"type":"VIEW","data":{"\\u0000":2}},'
                '{"type":"CLICK","data":{"seq":3,"x":1e400}},{"type":"CLICK","data":{"seq":4}}]')
        logged, rejected = qe.log_client_events(logger, None, body)
        assert logged == 2 and [index for index, _ in rejected] == [1, 2]
        assert logger.flush(timeout=30), logger.stats()["last_error"]
    finally:
        logger.close(timeout=10)
    rows = db.sql("SELECT event_type, JSON_VALUE(event_data, '$.seq') FROM event_log ORDER BY id")
    assert rows == [["VIEW", "1"], ["CLICK", "4"]]
