"""Random input never crashes the process: every call either succeeds or
raises a clear TypeError/ValueError (or, for the browser batch, rejects the
element with a reason)."""

import datetime
import decimal
import enum
import io
import json
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import querybook_eventlog as qe

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Color(enum.Enum):
    RED = "red"


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.binary(max_size=8),
    st.decimals(), st.datetimes(), st.dates(), st.uuids(), st.just(Color.RED),
    st.just(object()), st.complex_numbers(max_magnitude=1e6),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=2),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.one_of(st.text(max_size=5), st.integers(), st.none(),
                                  st.tuples(st.integers())), children, max_size=4),
    ),
    max_leaves=20,
)


@FUZZ
@given(values)
def test_dumps_valid_json_or_clear_error(value):
    try:
        out = qe.dumps(value)
    except (TypeError, ValueError):
        return
    json.loads(out.decode("utf-8"))


@FUZZ
@given(uid=values, event_type=st.one_of(values, st.sampled_from(list(qe.EventType)),
                                         st.sampled_from(["API", "VIEW", "click"])),
       event_data=st.one_of(values, st.dictionaries(st.text(max_size=5), values, max_size=3)),
       timestamp=st.one_of(values, st.floats(), st.integers()))
def test_log_succeeds_or_raises_clearly(uid, event_type, event_data, timestamp):
    stream = io.StringIO()
    console = qe.ConsoleEventLogger(stream=stream, color=False)
    for logger in (qe.NullEventLogger(), console):
        try:
            logger.log(uid=uid, event_type=event_type, event_data=event_data, timestamp=timestamp)
        except (TypeError, ValueError):
            continue
    written = stream.getvalue()
    assert written.count("\n") <= 1  # one event, one line, or nothing


@FUZZ
@given(st.one_of(
    st.binary(max_size=200),
    st.lists(st.one_of(
        st.dictionaries(st.sampled_from(["type", "data", "timestamp", "x"]),
                        st.one_of(st.sampled_from(["VIEW", "CLICK", "API", "nope"]),
                                  st.integers(), st.floats(allow_nan=False),
                                  st.dictionaries(st.text(max_size=4), st.integers(),
                                                  max_size=3),
                                  st.none(), st.text(max_size=4)),
                        max_size=4),
        st.integers(), st.text(max_size=3)), max_size=6).map(
            lambda items: json.dumps(items).encode()),
))
def test_client_batches_never_crash(body):
    recorder = []

    class Recorder(qe.BaseEventLogger):
        logger_name = "recorder"

        def log(self, uid, event_type, event_data, timestamp=None):
            recorder.append(event_type)

    try:
        logged, rejected = qe.log_client_events(Recorder(), 1, body)
    except ValueError:
        assert recorder == []
        return
    assert logged == len(recorder)
    assert all(isinstance(index, int) and reason for index, reason in rejected)
    logged_null, _ = qe.log_client_events(qe.NullEventLogger(), 1, body)
    assert logged_null <= logged + len(rejected)


def test_extension_types_in_event_data_reach_the_console():
    stream = io.StringIO()
    qe.ConsoleEventLogger(stream=stream, format="jsonl").log(
        uid=1, event_type="CLICK", timestamp=0,
        event_data={"when": datetime.date(2024, 1, 2), "id": uuid.UUID(int=1),
                    "n": decimal.Decimal("1.5"), "c": Color.RED, "t": (1, 2)})
    record = json.loads(stream.getvalue())
    assert record["event_data"] == {"when": "2024-01-02",
                                    "id": "00000000-0000-0000-0000-000000000001",
                                    "n": 1.5, "c": "red", "t": [1, 2]}
    assert record["created_at"] == "1970-01-01T00:00:00.000000+00:00"
